#!/usr/bin/env bash
# Issue-2 scale run: replay a large synthetic Taobao-format stream through `persona import` under
# each sync policy, then measure recovery of a data directory that exists only as a log.
#
#   EVENTS=100000000 bash bench/scale.sh        # numbers go to BENCHMARKS.md
#
# Needs a Release build (bash scripts/run.sh builds one) and ~6 GB free under $WORK.
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${EVENTS:-20000000}
WORK=${WORK:-/tmp/persona-scale}
P=./build-release/persona
[ -x "$P" ] || { echo "build first: cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release && ninja -C build-release persona"; exit 2; }
mkdir -p "$WORK"
FILE="$WORK/events-$EVENTS.csv"
if [ ! -f "$FILE" ]; then
  echo "== gen $EVENTS events (taobao format, $((EVENTS / 100)) users)"
  /usr/bin/time -f "gen: %e s, max RSS %M KB" \
    $P gen --events "$EVENTS" --users $((EVENTS / 100)) --items $((EVENTS / 25)) \
      --format taobao --out "$FILE" --quiet
fi
ls -l "$FILE"

for sync in none interval; do
  rm -rf "$WORK/db-$sync"
  echo "== import, sync=$sync"
  /usr/bin/time -f "import: %e s wall, %U s user, %S s sys, max RSS %M KB" \
    $P import --data "$WORK/db-$sync" --format taobao --sync "$sync" --quiet "$FILE"
done

echo "== state per user after import (sync=interval)"
$P stats --data "$WORK/db-interval" | python3 -c '
import json, sys
d = json.load(sys.stdin)
t = d["totals"]
print("profiles", t["profiles"], "profile_bytes_per_user %.0f" % t["profile_bytes_per_user"],
      "state_bytes_per_user %.0f" % t["state_bytes_per_user"])
for p in d["per_partition"]:
    print(" partition", p["partition"], p["memory_bytes"])'

echo "== recovery: log only (no checkpoint)"
cat > "$WORK/nockpt.toml" <<'TOML'
checkpoint_interval = "0ms"
checkpoint_every_events = 0
checkpoint_on_close = false
TOML
rm -rf "$WORK/db-log"
$P import --data "$WORK/db-log" --format taobao --sync none --config "$WORK/nockpt.toml" --quiet "$FILE" >/dev/null
# `stats` opens the engine, which replays the whole log, and reports how long that took.
$P stats --data "$WORK/db-log" --config "$WORK/nockpt.toml" | python3 -c '
import json, sys; d = json.load(sys.stdin)
print("recovered_events", d["recovered_events"], "in %.2f s = %.0f events/s" %
      (d["recovery_seconds"], d["recovered_events_per_second"]))'
