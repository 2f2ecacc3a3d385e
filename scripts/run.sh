#!/usr/bin/env bash
# Sets up dependencies, builds Persona (Release), generates a demo event stream with planted ground
# truth, replays it into ./data/demo, and shows what the engine knows: stats, a profile, a timeline.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C build-release persona
P=./build-release/persona
DATA=${DATA_DIR:-data/demo}
rm -rf "$DATA" && mkdir -p "$DATA"
$P gen --events 2000000 --users 50000 --seed 7 --out "$DATA/events.jsonl" --truth "$DATA/truth.jsonl"
$P import --data "$DATA/db" --format jsonl --tag-rules config/tags.rules "$DATA/events.jsonl"
$P stats --data "$DATA/db" --tag-rules config/tags.rules
USER_ID=$(head -1 "$DATA/truth.jsonl" | sed -E 's/.*"user_id":"([^"]+)".*/\1/')
echo "--- ground truth for $USER_ID: $(head -1 "$DATA/truth.jsonl")"
$P profile --data "$DATA/db" --tag-rules config/tags.rules "$USER_ID"
$P timeline --data "$DATA/db" --limit 5 "$USER_ID"
