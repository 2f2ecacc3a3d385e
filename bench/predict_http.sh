#!/usr/bin/env bash
# Prediction serving latency over HTTP: imports the taobao slice, trains every prediction model on
# it (seconds), starts `persona serve`, and drives GET /v1/users/{id}/predictions (GBDT propensity
# and churn over the live profile, next category, segment, keywords) with persona_loadgen at a
# fixed open-loop rate and closed-loop, then prints a table. PERSONA/LOADGEN point at prebuilt
# binaries (else build-release is built). RATE, DURATION, CONNS as in bench/recommend_http.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RATE=${RATE:-1000}
DURATION=${DURATION:-20}
WARMUP=${WARMUP:-3}
CONNS=${CONNS:-16}
WORK=${BENCH_WORK:-/tmp/persona-predict-bench}
TAOBAO=$ROOT/../shared/datasets/taobao/UserBehavior-by-user.csv
BUILD=${BUILD:-build-release}
P=${PERSONA:-$ROOT/$BUILD/persona}
L=${LOADGEN:-$ROOT/$BUILD/persona_loadgen}

[ -f "$TAOBAO" ] || { echo "skip: $TAOBAO is absent"; exit 0; }
if [ -z "${PERSONA:-}" ]; then
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  ninja -C "$BUILD" -j2 persona persona_loadgen
fi
rm -rf "$WORK" && mkdir -p "$WORK"
DATA=$WORK/db
"$P" import --data "$DATA" --format taobao --quiet "$TAOBAO"
cut -d, -f1 "$TAOBAO" | sort -u >"$WORK/users.txt"
for m in propensity churn; do
  "$P" train $m --data "$DATA" --cutoff 2017-11-29T00:00:00Z --cutoff 2017-11-30T00:00:00Z \
    --horizon 2d -q
done
"$P" train segments --data "$DATA" -q
"$P" train next-category --data "$DATA" -q

"$P" serve --data "$DATA" --port 0 >"$WORK/serve.out" 2>"$WORK/serve.err" &
SERVER_PID=$!
trap 'kill -TERM $SERVER_PID 2>/dev/null; wait $SERVER_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
  grep -q "listening on" "$WORK/serve.out" && grep -q "item-CF rebuilt" "$WORK/serve.err" && break
  sleep 0.1
done
PORT=$(sed -nE 's/.*listening on https?:\/\/[^ ]*:([0-9]+).*/\1/p' "$WORK/serve.out" | head -1)
RESULTS=$WORK/results.jsonl
run() {  # run LABEL loadgen-args...
  local label=$1
  shift
  "$L" --port "$PORT" -d "$DURATION" --warmup "$WARMUP" --users "$WORK/users.txt" \
    --label "$label" "$@" --json | tee -a "$RESULTS"
}
run "predictions open ${RATE}/s" -c "$CONNS" --rate "$RATE" --path '/v1/users/{user}/predictions'
run "predictions closed" -c "$CONNS" --path '/v1/users/{user}/predictions'
run "profile+predictions open ${RATE}/s" -c "$CONNS" --rate "$RATE" \
  --path '/v1/users/{user}/profile?fields=identity,predictions'
echo "== summary ($(nproc) cores; server and load generator share them)"
python3 - "$RESULTS" <<'PY'
import json, sys
def ms(us):
    return "%.2f ms" % (us / 1000.0) if us >= 1000 else "%d us" % us
print("| run | req/s | p50 | p90 | p99 | p99.9 | max | errors |")
print("|---|---|---|---|---|---|---|---|")
for line in open(sys.argv[1]):
    if line.strip():
        r = json.loads(line); lat = r["latency_us"]
        print("| %s | %.0f | %s | %s | %s | %s | %s | %s |" % (r["label"], r["rps"], ms(lat["p50"]),
              ms(lat["p90"]), ms(lat["p99"]), ms(lat["p999"]), ms(lat["max"]), r["errors"]))
PY
