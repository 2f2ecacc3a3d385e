#!/usr/bin/env bash
# Kafka consumption with the whole product on (issue 15): a generated stream (native JSON, keyed by
# user_id) is produced by `persona kafka-produce` to a topic of `persona kafka-mock` (librdkafka's
# mock cluster, a separate process on this machine: it takes CPU a real broker would not) while
# `persona serve --kafka-brokers`, with every operator of the product (profiles, tag rules,
# predictions, recommendations, saved audiences), consumes it; timed from the first produce to the
# last event applied. The mock broker keeps only ~5 MB per partition (older messages are deleted),
# so the stream is consumed while it is produced, as in production, not from a pre-filled backlog;
# a consumer that fell that far behind would show `skipped` > 0.
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
PORT=$(free_port)
# The mock broker does not answer a waiting fetch when data arrives (a real broker does).
printf '[server]\naccess_log = ""\n[kafka.client]\n"fetch.wait.max.ms" = 5\n' >"$WORK/persona.toml"
"$P" serve --data "$WORK/db" --port "$PORT" --kafka-brokers "$BROKERS" --config "$WORK/persona.toml" \
  >"$WORK/serve.log" 2>&1 &
SERVER=$!
until curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1; do
  kill -0 "$SERVER" 2>/dev/null || { cat "$WORK/serve.log"; exit 1; }
  sleep 0.05
done
kafka() { curl -sf "http://127.0.0.1:$PORT/v1/stats" | python3 -c "
import json, sys
k = json.load(sys.stdin)['kafka']
print($1)"; }
start=$(date +%s.%N)
"$P" kafka-produce --brokers "$BROKERS" --topic persona-events --quiet "$WORK/events.jsonl" \
  >"$WORK/produce.out"
produced_s=$(echo "$(date +%s.%N) - $start" | bc)
# Every message consumed and applied (duplicates in the stream are dropped, so count offsets).
until [ "$(kafka "sum(max(0, p['next_offset']) for p in k['partitions'])")" -ge "$EVENTS" ]; do
  sleep 0.02
done
secs=$(echo "$(date +%s.%N) - $start" | bc)
kafka "f\"events=$EVENTS partitions=$PARTITIONS produced_in=${produced_s}s applied_in=${secs}s \" +
       f\"rate={k['events'] / $secs:,.0f} events/s (produce -> applied, whole product; producer, \" +
       f\"mock broker and service share the 2 cores) applied={k['events']} \" +
       f\"messages={k['messages']} dead_letters={k['dead_letters']} skipped={k['skipped']}\""
kill -TERM "$SERVER"; wait "$SERVER" 2>/dev/null || true
SERVER=
