#!/usr/bin/env bash
# Produce -> applied latency on a Kafka-fed service (issue 15): `persona serve --kafka-brokers` on
# `persona kafka-mock` (librdkafka's mock cluster, a separate process on this machine), loaded
# open-loop by persona_loadgen with POST /v1/events?wait=applied: each request is answered once its
# events were acknowledged by the broker, consumed back from the topic and applied by the owner
# (this instance owns every partition), so its latency is produce -> visible in the profile.
#
#   RATE=1000 EVENTS_PER_REQUEST=100 bash bench/kafka_latency.sh   # 100k events/s
#
# Needs a Release build in build-rel (ninja -C build-rel persona persona_loadgen).
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${RATE:-1000}
PER=${EVENTS_PER_REQUEST:-100}
SECONDS_=${DURATION:-15}
PARTITIONS=${PARTITIONS:-2}
WORK=${WORK:-/tmp/persona-kafka-latency}
P=${PERSONA:-./build-rel/persona}
L=${LOADGEN:-./build-rel/persona_loadgen}
rm -rf "$WORK" && mkdir -p "$WORK"
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
"$P" kafka-mock --topic persona-events --partitions "$PARTITIONS" >"$WORK/mock.out" 2>/dev/null &
MOCK=$!
trap 'kill $MOCK 2>/dev/null || true; [ -n "${SERVER:-}" ] && kill $SERVER 2>/dev/null || true' EXIT
until grep -q '^bootstrap ' "$WORK/mock.out"; do sleep 0.05; done
BROKERS=$(awk '/^bootstrap /{print $2}' "$WORK/mock.out")
PORT=$(free_port)
# The mock broker does not answer a waiting fetch when data arrives (a real broker does): without
# a short fetch.wait.max.ms every poll would add up to librdkafka's default 500 ms.
printf '[server]\naccess_log = ""\n[kafka]\nlinger = "1ms"\n[kafka.client]\n"fetch.wait.max.ms" = 5\n' \
  >"$WORK/persona.toml"
"$P" serve --data "$WORK/db" --port "$PORT" --config "$WORK/persona.toml" \
  --kafka-brokers "$BROKERS" --quiet >"$WORK/serve.log" 2>&1 &
SERVER=$!
until curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1; do
  kill -0 "$SERVER" 2>/dev/null || { cat "$WORK/serve.log"; exit 1; }
  sleep 0.05
done
echo "rate=$RATE req/s x $PER events = $((RATE * PER)) events/s, produce -> applied (POST ?wait=applied):"
"$L" --port "$PORT" -c 16 -d "$SECONDS_" --rate "$RATE" --method POST \
  --path '/v1/events?wait=applied' --gen-events "$PER" --user-count 100000
curl -sf "http://127.0.0.1:$PORT/v1/stats" | python3 -c "
import json, sys
k = json.load(sys.stdin)['kafka']
print('consumed', k['messages'], 'messages, lag', k['lag'], ', dead letters', k['dead_letters'],
      ', skipped', k['skipped'])"
