#!/usr/bin/env bash
# Two `persona serve` instances in one consumer group on `persona kafka-mock` (issue 15, scale-out):
#  1. combine delay: an item pair viewed by a user that instance B owns, until instance A's
#     /v1/items/{id}/similar shows it (B shares its partitions' state every share_interval);
#  2. a user's profile read through the instance that does NOT own it (forwarded) vs the owner;
#  3. a partition move: B leaves (SIGTERM, or SIGKILL with MOVE_SIGNAL=KILL) and A takes its
#     partitions over, re-consuming them from the topic, until A has caught up with every end
#     offset (A holds an older state of them from the first rebalance, which the topic updates);
#  4. a new instance C with an empty data directory joins: the partitions it gets are restored
#     from the changelog topic (A's checkpoints) instead of re-consuming the events topic, until
#     C is ready.
#
#   EVENTS=1000000 USERS=100000 PARTITIONS=48 bash bench/kafka_cluster.sh
#
# The mock keeps ~5 MB per partition (it has no compaction), so a large stream needs many
# partitions to stay whole, and the changelog (a few full checkpoints per partition) needs
# partitions of at most ~1,000 users.
# Needs a Release build in build-rel (ninja -C build-rel persona persona_loadgen).
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${EVENTS:-200000}
USERS=${USERS:-20000}
PARTITIONS=${PARTITIONS:-12}
SHARE=${SHARE_INTERVAL:-2s}
PROBES=${PROBES:-20}
MOVE_SIGNAL=${MOVE_SIGNAL:-TERM}
WORK=${WORK:-/tmp/persona-kafka-cluster}
P=${PERSONA:-./build-rel/persona}
L=${LOADGEN:-./build-rel/persona_loadgen}
rm -rf "$WORK" && mkdir -p "$WORK"
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
now() { date +%s.%N; }
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill -9 $p 2>/dev/null || true; done' EXIT

"$P" kafka-mock --topic persona-events --partitions "$PARTITIONS" --also-topic persona-changelog \
  >"$WORK/mock.out" 2>/dev/null &
PIDS+=($!)
until grep -q '^bootstrap ' "$WORK/mock.out"; do sleep 0.05; done
BROKERS=$(awk '/^bootstrap /{print $2}' "$WORK/mock.out")
"$P" gen --events "$EVENTS" --users "$USERS" --items $((USERS / 4 + 100)) --seed 5 \
  --out "$WORK/events.jsonl" --quiet
"$P" kafka-produce --brokers "$BROKERS" --topic persona-events "$WORK/events.jsonl" 2>&1 | tail -1
cat >"$WORK/persona.toml" <<EOF
[server]
access_log = ""
[kafka]
share_interval = "$SHARE"
[kafka.client]
"fetch.wait.max.ms" = 5
"session.timeout.ms" = 6000
"heartbeat.interval.ms" = 500
"partition.assignment.strategy" = "roundrobin"
EOF
start() {  # name port
  "$P" serve --data "$WORK/$1" --port "$2" --config "$WORK/persona.toml" \
    --kafka-brokers "$BROKERS" --quiet >"$WORK/$1.log" 2>&1 &
  PIDS+=($!)
  echo $!
}
PA=$(free_port); PB=$(free_port)
A=http://127.0.0.1:$PA; B=http://127.0.0.1:$PB
t0=$(now)
start a "$PA" >/dev/null
BPID=$(start b "$PB")
owned() {  # url -> partitions owned
  curl -sf "$1/v1/stats" | python3 -c '
import json,sys
d=json.load(sys.stdin)
print(" ".join(str(p["partition"]) for p in d["kafka"]["partitions"] if p["assigned"]))'
}
until curl -sf "$A/readyz" >/dev/null 2>&1 && curl -sf "$B/readyz" >/dev/null 2>&1 &&
  [ -n "$(owned "$A")" ] && [ -n "$(owned "$B")" ]; do sleep 0.2; done
echo "both instances ready after $(python3 -c "print(round($(now)-$t0,1))") s;" \
  "A owns [$(owned "$A")], B owns [$(owned "$B")]"

# Users by owner (Kafka's murmur2 partitioner, as the producer used).
python3 - "$WORK/events.jsonl" "$PARTITIONS" "$(owned "$B")" "$WORK" <<'EOF'
import json, sys
def murmur2(data):
    m, r = 0x5bd1e995, 24
    h = (0x9747b28c ^ len(data)) & 0xffffffff
    n4 = len(data) // 4
    for i in range(n4):
        k = int.from_bytes(data[4 * i:4 * i + 4], "little")
        k = (k * m) & 0xffffffff
        k ^= k >> r
        k = (k * m) & 0xffffffff
        h = (h * m) & 0xffffffff
        h ^= k
    rest, i = len(data) % 4, n4 * 4
    if rest == 3: h ^= data[i + 2] << 16
    if rest >= 2: h ^= data[i + 1] << 8
    if rest >= 1:
        h ^= data[i]
        h = (h * m) & 0xffffffff
    h ^= h >> 13
    h = (h * m) & 0xffffffff
    h ^= h >> 15
    return h
path, n, b_parts, work = sys.argv[1], int(sys.argv[2]), set(map(int, sys.argv[3].split())), sys.argv[4]
users = set()
with open(path) as f:
    for line in f:
        users.add(json.loads(line)["user_id"])
with open(work + "/users_b.txt", "w") as out_b, open(work + "/users_a.txt", "w") as out_a:
    for u in sorted(users):
        (out_b if (murmur2(u.encode()) & 0x7fffffff) % n in b_parts else out_a).write(u + "\n")
EOF
UB=$(head -1 "$WORK/users_b.txt")
echo "users owned by B: $(wc -l <"$WORK/users_b.txt"), by A: $(wc -l <"$WORK/users_a.txt")"

# 1. Combine delay. Each probe is a different user of B's (one user's burst of probes would be
# flagged as a bot, and flagged events do not train item-CF).
delays=()
for i in $(seq 1 "$PROBES"); do
  x="probe-$i-x"; y="probe-$i-y"; UB=$(sed -n "$((i + 1))p" "$WORK/users_b.txt")
  curl -sf -X POST "$B/v1/events?wait=applied" -H 'Content-Type: application/x-ndjson' \
    --data-binary "{\"user_id\":\"$UB\",\"type\":\"view\",\"item_id\":\"$x\",\"ts\":$(date +%s%3N)}
{\"user_id\":\"$UB\",\"type\":\"view\",\"item_id\":\"$y\",\"ts\":$(($(date +%s%3N) + 1))}" >/dev/null
  s=$(now)
  until curl -sf "$A/v1/items/$x/similar?limit=5" | grep -q "$y"; do sleep 0.02; done
  delays+=("$(python3 -c "print(round($(now)-$s,3))")")
done
echo "combine delay (B applied -> visible in A's similar items), share_interval=$SHARE, $PROBES probes:"
printf '%s\n' "${delays[@]}" | python3 -c '
import sys
v=sorted(float(x) for x in sys.stdin)
print("  min %.3f s  p50 %.3f s  max %.3f s" % (v[0], v[len(v)//2], v[-1]))'

# 2. Forwarded reads vs the owner's.
echo "profile reads of B's users (closed loop, 16 connections, 10 s):"
"$L" --url "$B" -c 16 -d 10 --path '/v1/users/{user}/profile' --users "$WORK/users_b.txt" \
  --label "B (owner)" | grep -E "req/s|p50|p99" | head -3
"$L" --url "$A" -c 16 -d 10 --path '/v1/users/{user}/profile' --users "$WORK/users_b.txt" \
  --label "A (forwards to B)" | grep -E "req/s|p50|p99" | head -3

# 3. Partition move.
moved=$(owned "$B")
total_events=$(curl -sf "$B/v1/stats" | python3 -c '
import json,sys
d=json.load(sys.stdin)
print(sum(p["next_offset"] for p in d["kafka"]["partitions"] if p["assigned"]))')
s=$(now)
kill -"$MOVE_SIGNAL" "$BPID"
until curl -sf "$A/v1/stats" | python3 -c '
import json,sys
d=json.load(sys.stdin)
ps=d["kafka"]["partitions"]
sys.exit(0 if all(p["assigned"] and p["end_offset"] >= 0 and p["next_offset"] >= p["end_offset"] for p in ps) else 1)'; do
  sleep 0.1
done
secs=$(python3 -c "print(round($(now)-$s,2))")
users_moved=$(wc -l <"$WORK/users_b.txt")
echo "move (SIG$MOVE_SIGNAL B): A owns every partition and caught up after $secs s;" \
  "B's partitions [$moved] held $users_moved users and $total_events messages, re-consumed by A"
curl -sf "$A/v1/users/$UB/profile" >/dev/null && echo "B's user $UB served by A"

# 4. A new instance joins with no state: its partitions come from the changelog.
PC=$(free_port); C=http://127.0.0.1:$PC
s=$(now)
start c "$PC" >/dev/null
until curl -sf "$C/readyz" >/dev/null 2>&1 && [ -n "$(owned "$C")" ]; do sleep 0.1; done
secs=$(python3 -c "print(round($(now)-$s,2))")
curl -sf "$C/v1/stats" | python3 -c '
import json,sys
d=json.load(sys.stdin)
c=d.get("changelog") or {}
k=d["kafka"]
owned=[p["partition"] for p in k["partitions"] if p["assigned"]]
print("join: C (empty data directory) ready after %s s owning %d partitions; restored %d of them "
      "from the changelog (%d profiles; restores %.2f s, assignments in all %.2f s), consumed %d "
      "messages of the events topic" %
      (sys.argv[1], len(owned), c.get("restores", 0), c.get("restored_profiles", 0),
       c.get("restore_seconds_total", 0), c.get("assign_seconds_total", 0), k["messages"]))' "$secs"
