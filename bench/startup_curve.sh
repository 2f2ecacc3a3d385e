#!/usr/bin/env bash
# Start-up time against history (issue 13, item 4): for each stream size, a synthetic Taobao-format
# stream (users = events / 100, items = events / 25) is imported through the full pipeline
# (`persona import` opens the same operators as `serve`), then `persona serve` is started on the
# data directory and timed until /readyz answers 200 (state complete: checkpoints loaded, log tail
# replayed), twice: after a clean stop (checkpoint at the end), and after `kill -9` in the middle of
# an HTTP ingest of 200k more events (checkpoint + tail). Prints one line per size and start.
#
#   SIZES="1000000 10000000" bash bench/startup_curve.sh        # numbers go to BENCHMARKS.md
#   SIZES=100000000 bash bench/startup_curve.sh                 # ~20 min, ~8 GB under $WORK
#
# Needs a Release build in build-rel (cmake -S . -B build-rel -G Ninja -DCMAKE_BUILD_TYPE=Release
# && ninja -C build-rel persona persona_loadgen).
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=${SIZES:-"1000000 10000000"}
WORK=${WORK:-/tmp/persona-startup}
P=${PERSONA:-./build-rel/persona}
L=${LOADGEN:-./build-rel/persona_loadgen}
mkdir -p "$WORK"
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
# Starts serve on $1 and sets READY_S to the seconds until /readyz is 200, SERVER_PID and PORT.
time_ready() {
  local data=$1 port start
  port=$(free_port)
  start=$(date +%s.%N)
  "$P" serve --data "$data" --port "$port" >"$WORK/serve.log" 2>&1 &
  SERVER_PID=$!
  PORT=$port
  until curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; do
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/serve.log"; exit 1; }
    sleep 0.05
  done
  READY_S=$(echo "$(date +%s.%N) - $start" | bc)
}
for n in $SIZES; do
  file="$WORK/events-$n.csv"
  data="$WORK/db-$n"
  if [ ! -f "$data/.imported" ]; then
    rm -rf "$data"
    [ -f "$file" ] || "$P" gen --events "$n" --users $((n / 100)) --items $((n / 25)) \
      --format taobao --out "$file" --quiet
    /usr/bin/time -f "import $n: %e s wall, max RSS %M KB" \
      "$P" import --data "$data" --format taobao --quiet "$file"
    touch "$data/.imported"
  fi
  du_gb=$(du -sb "$data" | awk '{printf "%.2f", $1 / 1e9}')
  time_ready "$data"
  clean=$READY_S
  rss=$(ps -o rss= -p "$SERVER_PID" | awk '{printf "%.0f", $1 / 1024}')
  # Crash in the middle of more ingest: the next start replays the tail after the checkpoint.
  "$L" --port "$PORT" -c 4 -d 5 --warmup 0 --method POST --path /v1/events --gen-events 1000 \
    --user-count $((n / 100)) >/dev/null 2>&1 || true
  kill -9 "$SERVER_PID"
  wait "$SERVER_PID" 2>/dev/null || true
  time_ready "$data"
  crashed=$READY_S
  tail_events=$(grep -o 'recovered [0-9]* events' "$WORK/serve.log" | awk '{print $2}' || true)
  kill -TERM "$SERVER_PID"
  wait "$SERVER_PID" 2>/dev/null || true
  echo "events=$n store=${du_gb}GB ready_after_clean_stop=${clean}s rss=${rss}MB ready_after_kill9=${crashed}s (tail ${tail_events:-0} events)"
done
