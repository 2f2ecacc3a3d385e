#!/usr/bin/env bash
# Recommendation serving benchmark: GET /v1/users/{id}/recommendations with SASRec over the Amazon
# Video Games catalogue (~24k items), item-CF and trending, on a server holding the Video Games
# interactions as events. Builds Release, imports ../shared/datasets/amazon-sequences/Video.txt
# (sequence format) once, installs the SASRec artifact MODEL (trains one first when absent:
# `persona train sasrec`, ~minutes), starts `persona serve`, waits until trending/item-CF are
# rebuilt from the log, then drives it with persona_loadgen:
#   (a) open loop at RATE req/s, blend (the default variant: sasrec + item_cf + trending)
#   (b) open loop at RATE req/s, source=sasrec only
#   (c) closed loop, blend (max throughput)
# and prints the table BENCHMARKS.md keeps.
#
#   bash bench/recommend_http.sh
#   RATE=2000 DURATION=20 bash bench/recommend_http.sh
#
# Environment: PERSONA / LOADGEN (prebuilt Release binaries; skips the build), RATE (1000), DURATION (20) seconds per run, WARMUP (3), CONNS (16),
# MODEL (/tmp/persona-rec-bench/video-sasrec.psm), BENCH_WORK (/tmp/persona-rec-bench).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RATE=${RATE:-1000}
DURATION=${DURATION:-20}
WARMUP=${WARMUP:-3}
CONNS=${CONNS:-16}
WORK=${BENCH_WORK:-/tmp/persona-rec-bench}
MODEL=${MODEL:-$WORK/video-sasrec.psm}
VIDEO=$ROOT/../shared/datasets/amazon-sequences/Video.txt
BUILD=${BUILD:-build-release}
P=${PERSONA:-$ROOT/$BUILD/persona}
L=${LOADGEN:-$ROOT/$BUILD/persona_loadgen}

[ -f "$VIDEO" ] || { echo "skip: $VIDEO is absent"; exit 0; }
if [ -z "${PERSONA:-}" ]; then
  echo "== build ($BUILD, Release)"
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  ninja -C "$BUILD" -j2 persona persona_loadgen
fi

mkdir -p "$WORK"
DATA=$WORK/db-video
if [ ! -f "$DATA/.imported" ]; then
  echo "== import $VIDEO -> $DATA"
  rm -rf "$DATA"
  "$P" import --data "$DATA" --format sequence --quiet "$VIDEO"
  cut -d' ' -f1 "$VIDEO" | sort -u >"$WORK/users.txt"
  touch "$DATA/.imported"
fi
if [ ! -f "$MODEL" ]; then
  echo "== train SASRec on $VIDEO -> $MODEL"
  "$P" train sasrec --input "$VIDEO" --out "$MODEL"
fi
mkdir -p "$DATA/models/sasrec"
cp "$MODEL" "$DATA/models/sasrec/$(basename "$MODEL")"

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
"$P" serve --data "$DATA" --port 0 >"$OUT" 2>"$WORK/serve.err" &
SERVER_PID=$!
for _ in $(seq 1 600); do
  grep -q "listening on" "$OUT" && grep -q "item-CF rebuilt" "$WORK/serve.err" && break
  kill -0 "$SERVER_PID" 2>/dev/null || { echo "persona serve exited:"; tail -20 "$WORK/serve.err"; exit 1; }
  sleep 0.1
done
grep -v '^{' "$WORK/serve.err" | grep "recommend:" || true
PORT=$(sed -nE 's/.*listening on https?:\/\/[^ ]*:([0-9]+).*/\1/p' "$OUT" | head -1)

RESULTS=$WORK/results.jsonl
: >"$RESULTS"
run() {  # run LABEL loadgen-args...
  local label=$1
  shift
  echo "== $label"
  "$L" --port "$PORT" -d "$DURATION" --warmup "$WARMUP" --users "$WORK/users.txt" \
    --label "$label" "$@" --json | tee -a "$RESULTS"
}
run "blend open ${RATE}/s" -c "$CONNS" --rate "$RATE" --path '/v1/users/{user}/recommendations?k=10'
run "sasrec open ${RATE}/s" -c "$CONNS" --rate "$RATE" \
  --path '/v1/users/{user}/recommendations?k=10&source=sasrec'
run "blend closed" -c "$CONNS" --path '/v1/users/{user}/recommendations?k=10'
stop_server

echo
echo "== summary ($(nproc) cores; server and load generator share them)"
python3 - "$RESULTS" <<'PY'
import json, sys
def ms(us):
    return "%.2f ms" % (us / 1000.0) if us >= 1000 else "%d us" % us
print("| run | req/s | p50 | p90 | p99 | p99.9 | max | errors |")
print("|---|---|---|---|---|---|---|---|")
for line in open(sys.argv[1]):
    if not line.strip():
        continue
    r = json.loads(line)
    lat = r["latency_us"]
    print("| %s | %.0f | %s | %s | %s | %s | %s | %s |" % (r["label"], r["rps"], ms(lat["p50"]),
          ms(lat["p90"]), ms(lat["p99"]), ms(lat["p999"]), ms(lat["max"]), r["errors"]))
PY
