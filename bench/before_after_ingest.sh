#!/usr/bin/env bash
# Ingest throughput of two `persona` builds side by side, in one run on the same machine (this
# machine is noisy: only a same-run comparison means anything). For each build:
#   - `persona import` of the same generated stream into a fresh data directory (wall time);
#   - `persona serve` on that directory (its full pipeline: predictions, recommendations, saved
#     audiences) driven by persona_loadgen with POST /v1/events batches of 1,000 generated events,
#     closed loop, ROUNDS alternating rounds (before, after, before, after, ...).
#
#   BEFORE=/work/base/build-rel/persona AFTER=build-rel/persona LOADGEN=build-rel/persona_loadgen \
#     bash bench/before_after_ingest.sh
#
# Environment: EVENTS (1000000) USERS (40000) DURATION (15) ROUNDS (2) WORK (/tmp/persona-ba).
set -euo pipefail
BEFORE=${BEFORE:?path of the baseline persona binary}
AFTER=${AFTER:?path of the persona binary under test}
LOADGEN=${LOADGEN:?path of persona_loadgen}
EVENTS=${EVENTS:-1000000}
USERS=${USERS:-40000}
DURATION=${DURATION:-15}
ROUNDS=${ROUNDS:-2}
WORK=${WORK:-/tmp/persona-ba}
rm -rf "$WORK"
mkdir -p "$WORK"
"$AFTER" gen --events "$EVENTS" --users "$USERS" --seed 7 --out "$WORK/events.jsonl" --quiet
printf '[server]\naccess_log = ""\n' >"$WORK/noaccess.toml"

for which in before after; do
  bin=$BEFORE
  [ "$which" = after ] && bin=$AFTER
  start=$(date +%s.%N)
  "$bin" import --data "$WORK/db-$which" --format jsonl --quiet "$WORK/events.jsonl"
  end=$(date +%s.%N)
  echo "import $which: $(echo "$EVENTS / ($end - $start)" | bc) events/s ($(echo "$end - $start" | bc) s)"
done

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
run_round() {
  local which=$1 bin=$2 port
  port=$(free_port)
  "$bin" serve --data "$WORK/db-$which" --port "$port" --config "$WORK/noaccess.toml" --quiet \
    >"$WORK/serve-$which.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 600); do
    curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  "$LOADGEN" --port "$port" -c 8 -d "$DURATION" --method POST --path /v1/events \
    --gen-events 1000 --user-count 50000 --label "$which" --json | tee -a "$WORK/results.jsonl"
  kill -TERM "$pid"
  wait "$pid" || true
}
for r in $(seq 1 "$ROUNDS"); do
  run_round before "$BEFORE"
  run_round after "$AFTER"
done
python3 - "$WORK/results.jsonl" <<'EOF'
import json, sys, collections
rates = collections.defaultdict(list)
for line in open(sys.argv[1]):
    try:
        r = json.loads(line)
    except ValueError:
        continue
    rates[r.get("label")].append(r.get("events_per_s") or 0)
for label, xs in rates.items():
    print(f"HTTP ingest {label}: " + ", ".join(f"{x:,.0f}" for x in xs) + " events/s")
EOF
