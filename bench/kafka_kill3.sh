#!/usr/bin/env bash
# Issue 15's long test: three `persona serve` instances in one consumer group consume 1M events
# that kcat produced (murmur2 keys); one instance is killed with SIGKILL mid-stream and its
# partitions move to the survivors (restored from the changelog where a survivor has no state of
# them, else brought up to date from the topic). Then the group's state must equal one instance's
# that consumed the same messages alone: every message applied exactly once (accepted = messages,
# no duplicate with de-duplication off), sampled users' profiles byte-identical, trending and the
# audience count identical through either survivor.
#
#   EVENTS=1000000 USERS=100000 PARTITIONS=48 bash bench/kafka_kill3.sh
#
# Needs a Release build in build-rel (ninja -C build-rel persona) and kcat. The mock keeps ~5 MB per
# partition, hence 48 partitions for 1M events.
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${EVENTS:-1000000}
USERS=${USERS:-100000}
PARTITIONS=${PARTITIONS:-48}
SAMPLE=${SAMPLE:-3000}
WORK=${WORK:-/tmp/persona-kafka-kill3}
P=${PERSONA:-./build-rel/persona}
rm -rf "$WORK" && mkdir -p "$WORK"
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
now() { date +%s.%N; }
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill -9 $p 2>/dev/null || true; done' EXIT

"$P" kafka-mock --topic persona-events --partitions "$PARTITIONS" --also-topic group-changelog \
  --also-topic single-changelog >"$WORK/mock.out" 2>/dev/null &
PIDS+=($!)
until grep -q '^bootstrap ' "$WORK/mock.out"; do sleep 0.05; done
BROKERS=$(awk '/^bootstrap /{print $2}' "$WORK/mock.out")
"$P" gen --events "$EVENTS" --users "$USERS" --items $((USERS / 4 + 100)) --seed 15 \
  --out "$WORK/events.jsonl" --quiet
python3 - "$WORK" "$SAMPLE" <<'EOF'
import json, random, sys
work, sample = sys.argv[1], int(sys.argv[2])
users = set()
with open(work + "/events.jsonl") as f, open(work + "/keyed.tsv", "w") as out:
    for line in f:
        u = json.loads(line)["user_id"]
        users.add(u)
        out.write(u + "\t" + line)
random.seed(3)
with open(work + "/sample.json", "w") as out:
    json.dump(random.sample(sorted(users), min(sample, len(users))), out)
EOF
s=$(now)
kcat -P -b "$BROKERS" -t persona-events -l -K $'\t' -X partitioner=murmur2_random \
  -X enable.idempotence=true "$WORK/keyed.tsv"
echo "kcat produced $EVENTS events in $(python3 -c "print(round($(now)-$s,1))") s"
cat >"$WORK/persona.toml" <<EOF
dedup_window = "0s"
dedup_recent_events = 0
checkpoint_every_events = 20000
[server]
access_log = ""
[kafka.client]
"fetch.wait.max.ms" = 5
"session.timeout.ms" = 6000
"heartbeat.interval.ms" = 500
"partition.assignment.strategy" = "roundrobin"
EOF
start() {  # name port group
  "$P" serve --data "$WORK/$1" --port "$2" --config "$WORK/persona.toml" \
    --kafka-brokers "$BROKERS" --kafka-group "$3" --quiet >"$WORK/$1.log" 2>&1 &
  PIDS+=($!)
  echo $!
}
# Applied offsets: "partition next_offset" for the partitions an instance owns.
caught_up() {  # url...
  python3 - "$@" <<'EOF'
import json, sys, urllib.request
ends, nexts = {}, {}
for url in sys.argv[1:]:
    try:
        d = json.load(urllib.request.urlopen(url + "/v1/stats", timeout=5))
    except Exception:
        sys.exit(1)
    for p in d["kafka"]["partitions"]:
        if p["assigned"]:
            nexts[p["partition"]] = p["next_offset"]
            ends[p["partition"]] = p["end_offset"]
ok = len(nexts) == int(len(d["kafka"]["partitions"])) and all(
    ends[p] >= 0 and nexts[p] >= ends[p] for p in nexts)
sys.exit(0 if ok else 1)
EOF
}
digest() {  # url -> digest of the sampled users' profiles, trending, audience count, totals
  python3 - "$1" "$WORK/sample.json" <<'EOF'
import hashlib, json, sys, urllib.request
url, users = sys.argv[1], json.load(open(sys.argv[2]))
def post(path, body):
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req, timeout=60))
h = hashlib.sha256()
for i in range(0, len(users), 500):
    r = post("/v1/profiles:batchGet", {"user_ids": users[i:i + 500],
                                       "fields": "stats,funnel,consumption,interests,sequence"})
    for p in r["profiles"]:
        h.update(json.dumps(p, sort_keys=True).encode())
trending = urllib.request.urlopen(url + "/v1/trending?limit=100", timeout=30).read()
count = post("/v1/audiences:query", {"condition": "events >= 5", "sample": 0, "page_size": 0})["count"]
print("profiles %s trending %s audience(events>=5) %d" %
      (h.hexdigest()[:16], hashlib.sha256(trending).hexdigest()[:16], count))
EOF
}
totals() {  # url... -> accepted and duplicates summed over the partitions each owns
  python3 - "$@" <<'EOF'
import json, sys, urllib.request
acc = dup = 0
for url in sys.argv[1:]:
    d = json.load(urllib.request.urlopen(url + "/v1/stats", timeout=5))
    owned = {p["partition"] for p in d["kafka"]["partitions"] if p["assigned"]}
    for p in d["per_partition"]:
        if p["partition"] in owned:
            acc += p["accepted"]; dup += p["duplicates"]
print("accepted %d duplicates %d" % (acc, dup))
EOF
}

# Reference: one instance alone.
PS=$(free_port); S=http://127.0.0.1:$PS
s=$(now)
start single "$PS" single >/dev/null
until curl -sf "$S/readyz" >/dev/null 2>&1 && caught_up "$S"; do sleep 0.2; done
echo "single instance: consumed everything in $(python3 -c "print(round($(now)-$s,1))") s;" \
  "$(totals "$S")"
REF=$(digest "$S")
echo "single instance: $REF"
kill -TERM "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true

# The group: three instances, one killed mid-stream.
PA=$(free_port); PB=$(free_port); PC=$(free_port)
A=http://127.0.0.1:$PA; B=http://127.0.0.1:$PB; C=http://127.0.0.1:$PC
s=$(now)
start a "$PA" group >/dev/null
BPID=$(start b "$PB" group)
start c "$PC" group >/dev/null
applied_by() {  # url -> messages applied by it so far
  curl -sf "$1/v1/stats" | python3 -c '
import json,sys
d=json.load(sys.stdin); print(d["kafka"]["messages"])' 2>/dev/null || echo 0
}
# Kill b once it applied a third of its share.
until [ "$(applied_by "$B")" -ge $((EVENTS / 9)) ]; do sleep 0.05; done
before=$(applied_by "$B")
kill -KILL "$BPID"
k=$(now)
echo "killed b (SIGKILL) $(python3 -c "print(round($k-$s,1))") s after the group started;" \
  "it had applied $before messages"
until caught_up "$A" "$C"; do sleep 0.2; done
echo "survivors own every partition and caught up $(python3 -c "print(round($(now)-$k,1))") s" \
  "after the kill; $(totals "$A" "$C")"
for u in "$A" "$C"; do
  curl -sf "$u/v1/stats" | python3 -c '
import json,sys
c=json.load(sys.stdin).get("changelog") or {}
print("  %s: changelog transactions %d, restores %d (%d profiles, %.2f s), failures %d" % (
    sys.argv[1], c.get("transactions",0), c.get("restores",0), c.get("restored_profiles",0),
    c.get("restore_seconds_total",0), c.get("failures",0)))' "$u"
done
sleep 3  # shared state (trending) combines within share_interval
for u in "$A" "$C"; do
  GOT=$(digest "$u")
  if [ "$GOT" = "$REF" ]; then verdict="equal"; else verdict="DIFFERENT"; fi
  echo "through $u: $GOT -> $verdict to the single instance"
done
