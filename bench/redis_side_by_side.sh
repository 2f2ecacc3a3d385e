#!/usr/bin/env bash
# Persona against the Redis profile updaters users would otherwise run (../shared/baselines/
# redis-profile: five pipelined commands per event, or one Lua script per event), on the same
# Taobao-format file, in one run on this machine, rounds alternating. Persona's figure is the wall
# time of the whole `persona import` process (parse, validate, dedup, durable log, every profile
# feature and the same stream operators as `serve`: predictions' learners, trending, item-CF,
# saved audiences; closing checkpoint included). The Redis figures time only the Redis side
# (command generation in Python is not timed), as the baseline's scripts do.
#
#   bash bench/redis_side_by_side.sh                       # 2M synthetic events, 20k users
#   FILE=../shared/datasets/taobao/UserBehavior-by-user.csv bash bench/redis_side_by_side.sh
#
# Environment: EVENTS (2000000) USERS (20000) ROUNDS (2) SYNC (none|interval; interval) WORK
# (/tmp/persona-redis). Needs redis-server (apt-get install redis-server) and a Release build.
set -euo pipefail
cd "$(dirname "$0")/.."
P=${PERSONA:-./build-release/persona}
BASE=${BASELINES:-../shared/baselines/redis-profile}
EVENTS=${EVENTS:-2000000}
USERS=${USERS:-20000}
ROUNDS=${ROUNDS:-2}
SYNC=${SYNC:-interval}
WORK=${WORK:-/tmp/persona-redis}
[ -x "$P" ] || { echo "build first: cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release && ninja -C build-release persona"; exit 2; }
[ -d "$BASE" ] || { echo "skipped: $BASE (the Redis baseline) is absent"; exit 0; }
command -v redis-server >/dev/null || { echo "needs redis-server: apt-get install -y redis-server"; exit 2; }
mkdir -p "$WORK"
FILE=${FILE:-$WORK/taobao-$EVENTS.csv}
if [ ! -f "$FILE" ]; then
  "$P" gen --events "$EVENTS" --users "$USERS" --seed 7 --format taobao --out "$FILE" --quiet
fi
n=$(wc -l <"$FILE")
echo "file: $FILE ($n events)"
for round in $(seq "$ROUNDS"); do
  echo "== round $round"
  bash "$BASE/run-plain.sh" "$FILE"
  bash "$BASE/run.sh" "$FILE"
  rm -rf "$WORK/db"
  s=$(date +%s.%N)
  "$P" import --data "$WORK/db" --format taobao --sync "$SYNC" --quiet "$FILE" >"$WORK/import.log" 2>&1
  e=$(date +%s.%N)
  python3 -c "import sys; n,s,e=int(sys.argv[1]),float(sys.argv[2]),float(sys.argv[3]); print(f'persona import (sync=$SYNC, all operators): {n} events in {e-s:.2f} s = {n/(e-s):,.0f} events/s (whole process)')" "$n" "$s" "$e"
done
# What each side keeps per user, for the "far more profile features" half of the comparison.
u=$(head -1 "$FILE" | cut -d, -f1)
echo "== one profile: Redis keeps p:$u (counters, first/last seen, sessions), ic:$u / ii:$u (decayed"
echo "   category and item interest), r:$u (recent items). Persona's sections for the same user:"
"$P" profile --data "$WORK/db" "$u" 2>/dev/null | python3 -c "import json,sys; d=json.load(sys.stdin); print('  ', len(d), 'sections:', ', '.join(d.keys()))" || true
