#!/usr/bin/env bash
# Issue 14: throughput and tail latency with the whole product switched on. The demo that
# scripts/run.sh builds (1M generated events, ~39k users with profiles; SASRec, propensity, churn,
# segments, next category and review sentiment trained on it), the default config (access log on,
# here to a file), 20 saved audiences, then, against `persona serve`:
#   1. HTTP batch ingest: persona_loadgen, POST /v1/events, 1,000 uniformly random generated events
#      per request (random users over 50k, random items over 100k), closed loop;
#   2. the same ingest from a realistic stream: `persona replay --rate 0` of a generated file that
#      continues the demo (Zipf items, sessions), batches of 1,000;
#   3. profile reads, full profile (predictions included): wrk -t1 -c16 over the demo's users, and
#      persona_loadgen open loop at READ_RATE req/s;
#   4. mixed 90% reads / 10% writes (batches of 100), for MIX_SECONDS (>= one checkpoint interval,
#      1 min by default), with the last checkpoint's breakdown (where the writer's pause went);
#   5. memory: RSS and the per-component split of /v1/stats.
# Reads and the mix run on a fresh copy of the demo (not on the state the ingest runs grew).
#
#   bash bench/full_product.sh
#   DURATION=10 MIX_SECONDS=30 bash bench/full_product.sh     # quicker
#
# Environment: WORK (/tmp/persona-full) DURATION (15) READ_RATE (30000) MIX_SECONDS (70)
# TRAIN_MINUTES (2, for the demo's SASRec) PORT (18190).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
P=$ROOT/build-release/persona
L=$ROOT/build-release/persona_loadgen
WORK=${WORK:-/tmp/persona-full}
DURATION=${DURATION:-15}
READ_RATE=${READ_RATE:-30000}
MIX_SECONDS=${MIX_SECONDS:-70}
TRAIN_MINUTES=${TRAIN_MINUTES:-2}
PORT=${PORT:-18190}
[ -x "$P" ] && [ -x "$L" ] || { echo "build first: cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release && ninja -C build-release persona persona_loadgen"; exit 2; }
command -v wrk >/dev/null || { echo "needs wrk: apt-get install -y wrk"; exit 2; }
mkdir -p "$WORK"
DEMO=$WORK/demo
if [ ! -f "$DEMO/.built" ]; then
  echo "== demo (as scripts/run.sh builds it)"
  rm -rf "$DEMO" && mkdir -p "$DEMO"
  "$P" gen --events 1000000 --users 50000 --seed 7 --out "$DEMO/events.jsonl" --truth "$DEMO/truth.jsonl" --quiet
  "$P" import --data "$DEMO/db" --format jsonl --tag-rules config/tags.rules --quiet "$DEMO/events.jsonl"
  "$P" train sasrec --data "$DEMO/db" --time-limit "$TRAIN_MINUTES"
  for m in propensity churn; do
    "$P" train $m --data "$DEMO/db" --cutoff 2017-11-30T00:00:00Z --cutoff 2017-12-01T00:00:00Z --horizon 2d
  done
  "$P" train segments --data "$DEMO/db"
  "$P" train next-category --data "$DEMO/db"
  R=../shared/datasets/reviews
  if [ -f "$R/amazon_cells_labelled.txt" ]; then
    "$P" train sentiment --data "$DEMO/db" --corpus "$R/amazon_cells_labelled.txt" \
      --corpus "$R/yelp_labelled.txt" --corpus "$R/amazon_musical_instruments_5core.jsonl"
  fi
  # The stream that continues the demo (run.sh's live traffic): 12 hours after its end.
  "$P" gen --events 1000000 --users 50000 --seed 8 --start-ms 1512345600000 --span-ms 43200000 \
    --out "$DEMO/live.jsonl" --quiet
  grep -o '"user_id":"[^"]*"' "$DEMO/events.jsonl" | cut -d'"' -f4 | sort -u >"$DEMO/users.txt"
  touch "$DEMO/.built"
fi
cat >"$WORK/users.lua" <<LUA
local users = {}
for line in io.lines("$DEMO/users.txt") do users[#users+1] = line end
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", "/v1/users/" .. users[(i % #users) + 1] .. "/profile")
end
LUA

SERVER=""
stop_server() {
  if [ -n "$SERVER" ] && kill -0 "$SERVER" 2>/dev/null; then kill -TERM "$SERVER"; wait "$SERVER" || true; fi
  SERVER=""
}
trap stop_server EXIT
start_server() {  # a fresh copy of the demo, default config, 20 saved audiences
  stop_server
  rm -rf "$WORK/run" && cp -r "$DEMO/db" "$WORK/run"
  "$P" serve --data "$WORK/run" --tag-rules config/tags.rules --port "$PORT" >"$WORK/serve.out" 2>"$WORK/access.log" &
  SERVER=$!
  for _ in $(seq 300); do curl -sf "localhost:$PORT/readyz" >/dev/null && break; sleep 0.2; done
  local i=0
  while IFS= read -r c; do
    i=$((i + 1))
    curl -sf -XPOST "localhost:$PORT/v1/audiences" \
      -d "{\"name\":\"bench $i\",\"condition\":$(python3 -c 'import json,sys;print(json.dumps(sys.argv[1]))' "$c")}" >/dev/null
  done <<'CONDITIONS'
buyer
lifecycle = "active"
lifecycle = "dormant"
rfm.monetary_30d >= 500
views_30d >= 50 and purchases_30d = 0
interest.category("c1") > 0.2
interest.category("c2") > 0.2
interest.category("c3") > 0.3
price_tier = "budget"
price_tier = "premium"
orders >= 2
rfm_f >= 4 and rfm_r >= 4
sessions >= 10
carts_7d >= 1 and purchases_7d = 0
lifecycle = "new"
reviews >= 1
monetary_30d > 1000 and purchases_30d >= 3
views_1d >= 10
interest.category("c4") > 0.1 and buyer
not buyer and views_7d >= 5
CONDITIONS
  echo "   server up on :$PORT with $(curl -s "localhost:$PORT/v1/audiences" | grep -o '"id"' | wc -l) saved audiences"
}
cat >"$WORK/breakdown.py" <<'PY'
import json, sys
d = json.load(sys.stdin)
for p in d["per_partition"]:
    c = p["last_checkpoint"]
    ops = ", ".join("%s %.2f s/%.1f MB" % (o["name"], o["seconds"], o["bytes"] / 1e6)
                    for o in c["operators"] if o["bytes"] > 100)
    print("   partition %d: %d checkpoints, last %.2f s = profiles %.2f s (%d profiles, %.1f MB), %s, "
          "meta %.2f s/%.1f MB, commit %.2f s, cleanup %.2f s" % (
              p["partition"], p["checkpoints"], p["last_checkpoint_seconds"], c["profiles_seconds"],
              c["profiles"], c["profile_bytes"] / 1e6, ops, c["meta_seconds"], c["meta_bytes"] / 1e6,
              c["commit_seconds"], c.get("cleanup_seconds", 0)))
PY
checkpoint_breakdown() { curl -s "localhost:$PORT/v1/stats" | python3 "$WORK/breakdown.py"; }

echo "== 1. HTTP batch ingest, loadgen (uniform random events), ${DURATION}s"
start_server
"$L" --port "$PORT" -c 8 -d "$DURATION" --method POST --path /v1/events --gen-events 1000 --user-count 50000 2>&1 | grep -E "latency|events "
echo "== 2. HTTP batch ingest, persona replay --rate 0 of the demo's continuation, ${DURATION}s"
"$P" replay --url "http://127.0.0.1:$PORT" --rate 0 --batch 1000 --connections 8 --duration "$DURATION" -q "$DEMO/live.jsonl" | grep -E "accepted|events/s|latency"
checkpoint_breakdown

echo "== 3. profile reads, full profile"
start_server
wrk -t1 -c16 -d"$DURATION" -s "$WORK/users.lua" --latency "http://127.0.0.1:$PORT" | grep -E "Requests/sec|  50%|  99%"
"$L" --port "$PORT" -c 16 -R "$READ_RATE" -d "$DURATION" --users "$DEMO/users.txt" --path '/v1/users/{user}/profile' 2>&1 | grep -E "requests|latency"

echo "== 4. mixed 90/10, ${MIX_SECONDS}s"
start_server
"$L" --port "$PORT" -c 16 -d "$MIX_SECONDS" --users "$DEMO/users.txt" --mix read=90,write=10 --gen-events 100 2>&1 | grep -E "requests|latency|events "
checkpoint_breakdown

echo "== 5. memory"
curl -s "localhost:$PORT/v1/stats" | python3 -c '
import json, sys
d = json.load(sys.stdin)
m = {}
for p in d["per_partition"]:
    for k, v in p["memory_bytes"].items(): m[k] = m.get(k, 0) + v
n = d["totals"]["profiles"]
print(f"   {n} profiles; per profile: " + ", ".join(f"{k} {v / n:.0f} B" for k, v in m.items()))'
echo "   RSS $(( $(grep VmRSS /proc/$SERVER/status | awk '{print $2}') / 1024 )) MB"
stop_server
