#!/usr/bin/env bash
# Kafka consumption with the whole product on (issue 15): a generated stream (native JSON, keyed by
# user_id) is produced by `persona kafka-produce` to a topic of `persona kafka-mock` (librdkafka's
# mock cluster, a separate process on this machine: it takes CPU a real broker would not), then
# `persona serve --kafka-brokers` starts on an empty data directory with every operator of the
# product (profiles, tag rules, predictions, recommendations, saved audiences) and is timed from
# exec to /readyz = 200, which it answers once the backlog is durable and applied.
#
#   EVENTS=1000000 PARTITIONS=2 bash bench/kafka_consume.sh
#
# Needs a Release build in build-rel (ninja -C build-rel persona).
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${EVENTS:-1000000}
PARTITIONS=${PARTITIONS:-2}
WORK=${WORK:-/tmp/persona-kafka-bench}
P=${PERSONA:-./build-rel/persona}
rm -rf "$WORK" && mkdir -p "$WORK"
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
"$P" gen --events "$EVENTS" --users $((EVENTS / 100)) --items $((EVENTS / 25)) --format jsonl \
  --out "$WORK/events.jsonl" --quiet
"$P" kafka-mock --topic persona-events --partitions "$PARTITIONS" >"$WORK/mock.out" 2>/dev/null &
MOCK=$!
trap 'kill $MOCK 2>/dev/null || true; [ -n "${SERVER:-}" ] && kill $SERVER 2>/dev/null || true' EXIT
until grep -q '^bootstrap ' "$WORK/mock.out"; do sleep 0.05; done
BROKERS=$(awk '/^bootstrap /{print $2}' "$WORK/mock.out")
"$P" kafka-produce --brokers "$BROKERS" --topic persona-events --quiet "$WORK/events.jsonl"
PORT=$(free_port)
start=$(date +%s.%N)
"$P" serve --data "$WORK/db" --port "$PORT" --kafka-brokers "$BROKERS" --quiet \
  >"$WORK/serve.log" 2>&1 &
SERVER=$!
until curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1; do
  kill -0 "$SERVER" 2>/dev/null || { cat "$WORK/serve.log"; exit 1; }
  sleep 0.05
done
secs=$(echo "$(date +%s.%N) - $start" | bc)
stats=$(curl -sf "http://127.0.0.1:$PORT/v1/stats")
python3 - "$secs" "$EVENTS" <<PY
import json, sys
secs, events = float(sys.argv[1]), int(sys.argv[2])
k = json.loads('''$stats''')["kafka"]
print(f"events={events} partitions=$PARTITIONS ready_after={secs:.2f}s "
      f"rate={k['events'] / secs:,.0f} events/s (whole product, exec to /readyz) "
      f"messages={k['messages']} events_applied={k['events']} dead_letters={k['dead_letters']}")
PY
kill -TERM "$SERVER"; wait "$SERVER" 2>/dev/null || true
SERVER=
