#!/usr/bin/env bash
# HTTP service benchmark: builds Release, replays a demo stream into a data directory, starts
# `persona serve` on a free port and drives it with persona_loadgen (and wrk as a cross-check):
#
#   (a) profile reads: closed loop for max throughput, open loop at READ_RATE req/s and at 70% of
#       the measured maximum (p99 is the number that matters); wrk on the same route
#   (b) batch ingest: POST /v1/events with 1,000 generated events per request, closed loop
#   (c) mixed: 90% profile reads, 10% ingest batches of 100 events, closed loop
#
# then stops the server with SIGTERM (graceful drain + checkpoint) and prints a summary table.
#
#   bash bench/http.sh
#   DURATION=10 EVENTS=500000 bash bench/http.sh       # quicker
#
# Environment: EVENTS (2000000) USERS (50000) demo size; DURATION (20) seconds per run, WARMUP (3);
# READ_RATE (30000) READ_CONNS (16) INGEST_CONNS (8) INGEST_BATCH (1000) MIX_BATCH (100);
# LOADGEN_THREADS (1); WRK_SECONDS (10; 0 = skip wrk); BENCH_WORK (/tmp/persona-http-bench: data,
# logs, results.jsonl); REGEN=1 rebuilds the data; SERVE_ARGS extra flags for `persona serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
EVENTS=${EVENTS:-2000000}
USERS=${USERS:-50000}
DURATION=${DURATION:-20}
WARMUP=${WARMUP:-3}
READ_RATE=${READ_RATE:-30000}
READ_CONNS=${READ_CONNS:-16}
INGEST_CONNS=${INGEST_CONNS:-8}
INGEST_BATCH=${INGEST_BATCH:-1000}
MIX_BATCH=${MIX_BATCH:-100}
LOADGEN_THREADS=${LOADGEN_THREADS:-1}
WRK_SECONDS=${WRK_SECONDS:-10}
WORK=${BENCH_WORK:-/tmp/persona-http-bench}
BUILD=build-release
P=$ROOT/$BUILD/persona
L=$ROOT/$BUILD/persona_loadgen

echo "== build ($BUILD, Release)"
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C "$BUILD" -j2 persona persona_loadgen

mkdir -p "$WORK"
DATA=$WORK/db-$EVENTS-$USERS
if [ -n "${REGEN:-}" ] || [ ! -f "$DATA/.imported" ]; then
  echo "== demo data: $EVENTS events, $USERS users -> $DATA"
  rm -rf "$DATA" "$WORK/events.jsonl"
  "$P" gen --events "$EVENTS" --users "$USERS" --seed 7 --out "$WORK/events.jsonl" --quiet
  "$P" import --data "$DATA" --format jsonl --tag-rules config/tags.rules --quiet "$WORK/events.jsonl"
  # The users the data knows, for the read templates (reads of unknown users would be 404s).
  grep -o '"user_id":"[^"]*"' "$WORK/events.jsonl" | cut -d'"' -f4 | sort -u >"$WORK/users.txt"
  rm -f "$WORK/events.jsonl"
  touch "$DATA/.imported"
fi
echo "   $(wc -l <"$WORK/users.txt") users with profiles"

SERVER_PID=""
stop_server() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID" || true
  fi
  SERVER_PID=""
}
trap stop_server EXIT

echo "== start persona serve"
OUT=$WORK/serve.out
: >"$OUT"
# The access log (JSON lines on stderr by default) stays on, as in production; it goes to a file.
# shellcheck disable=SC2086
"$P" serve --data "$DATA" --port 0 --tag-rules config/tags.rules ${SERVE_ARGS:-} \
  >"$OUT" 2>"$WORK/serve.err" &
SERVER_PID=$!
for _ in $(seq 1 600); do
  grep -q "listening on" "$OUT" && break
  kill -0 "$SERVER_PID" 2>/dev/null || { echo "persona serve exited:"; tail -20 "$WORK/serve.err"; exit 1; }
  sleep 0.1
done
grep -q "listening on" "$OUT" || { echo "persona serve did not start in 60 s"; exit 1; }
PORT=$(sed -nE 's/.*listening on https?:\/\/[^ ]*:([0-9]+).*/\1/p' "$OUT" | head -1)
echo "   listening on port $PORT (pid $SERVER_PID)"

RESULTS=$WORK/results.jsonl
: >"$RESULTS"
run() {  # run LABEL loadgen-args...
  local label=$1
  shift
  echo "== $label"
  "$L" --port "$PORT" -t "$LOADGEN_THREADS" -d "$DURATION" --warmup "$WARMUP" \
    --users "$WORK/users.txt" --label "$label" "$@" --json | tee -a "$RESULTS"
}

PROFILE='/v1/users/{user}/profile'
run "read closed" -c "$READ_CONNS" --path "$PROFILE"
run "read open ${READ_RATE}/s" -c "$READ_CONNS" --rate "$READ_RATE" --path "$PROFILE"
# The target rate may exceed what this machine sustains (then the open loop's latency is the
# backlog); the tail at 70% of the measured maximum is the number to compare across changes.
SUSTAINED=$(head -1 "$RESULTS" | python3 -c 'import json,sys; print(int(json.load(sys.stdin)["rps"] * 0.7))')
[ "$SUSTAINED" -gt 0 ] && run "read open ${SUSTAINED}/s (70% of max)" -c "$READ_CONNS" --rate "$SUSTAINED" --path "$PROFILE"
run "ingest closed x$INGEST_BATCH" -c "$INGEST_CONNS" --method POST --path /v1/events \
  --gen-events "$INGEST_BATCH" --timeout 30
run "mixed 90/10 closed" -c "$READ_CONNS" --mix read=90,write=10 --gen-events "$MIX_BATCH"

WRK_LINE=""
if [ "$WRK_SECONDS" != 0 ] && command -v wrk >/dev/null; then
  echo "== wrk -t2 -c$READ_CONNS -d${WRK_SECONDS}s (profile reads, rotating users)"
  cat >"$WORK/profile.lua" <<'LUA'
-- Rotates through the users file, starting at a random offset per wrk thread.
local users = {}
for line in io.lines(os.getenv("USERS_FILE")) do users[#users + 1] = line end
local i = math.random(#users)
request = function()
  i = i % #users + 1
  return wrk.format("GET", "/v1/users/" .. users[i] .. "/profile")
end
LUA
  USERS_FILE=$WORK/users.txt wrk -t2 -c"$READ_CONNS" -d"${WRK_SECONDS}s" --latency \
    -s "$WORK/profile.lua" "http://127.0.0.1:$PORT" | tee "$WORK/wrk.txt"
  WRK_LINE=$(python3 - "$WORK/wrk.txt" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
rps = re.search(r"Requests/sec:\s+([\d.]+)", t)
p = dict(re.findall(r"^\s+(50|90|99)%\s+(\S+)", t, re.M))
non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", t)
print("wrk closed (cross-check)|%s|%s|%s|%s|%s" % (
    rps.group(1) if rps else "?", p.get("50", "?"), p.get("90", "?"), p.get("99", "?"),
    non2xx.group(1) if non2xx else "0"))
PY
)
fi

echo "== stop (SIGTERM: drain + checkpoint)"
t0=$(date +%s.%N)
stop_server
echo "   stopped in $(python3 -c "import time; print('%.2f s' % (time.time() - $t0))")"
tail -3 "$WORK/serve.err" | grep -v '^{' || true

echo
echo "== summary ($(nproc) cores; server and load generator share them)"
python3 - "$RESULTS" "$WRK_LINE" <<'PY'
import json, sys
def ms(us):
    if us >= 1000000:
        return "%.2f s" % (us / 1e6)
    return "%.2f ms" % (us / 1000.0) if us >= 1000 else "%d us" % us
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print("| run | req/s | p50 | p90 | p99 | p99.9 | max | errors | events/s |")
print("|---|---|---|---|---|---|---|---|---|")
for r in rows:
    lat = r["latency_us"]
    ev = "%.0f" % r["events_per_s"] if "events_per_s" in r else ""
    err = str(r["errors"]) + (" (%d not sent)" % r["missed"] if r.get("missed") else "")
    print("| %s | %.0f | %s | %s | %s | %s | %s | %s | %s |" % (
        r["label"], r["rps"], ms(lat["p50"]), ms(lat["p90"]), ms(lat["p99"]), ms(lat["p999"]),
        ms(lat["max"]), err, ev))
    for name, t in sorted(r.get("templates", {}).items()):
        lat = t["latency_us"]
        print("|   %s | %.0f | %s | %s | %s | %s | %s | | %s |" % (
            name, t["rps"], ms(lat["p50"]), ms(lat["p90"]), ms(lat["p99"]), ms(lat["p999"]),
            ms(lat["max"]), "%.0f" % t["events_per_s"] if "events_per_s" in t else ""))
if sys.argv[2]:
    name, rps, p50, p90, p99, non2xx = sys.argv[2].split("|")
    print("| %s | %s | %s | %s | %s | | | %s | |" % (name, rps, p50, p90, p99, non2xx))
PY
