#!/usr/bin/env bash
# Sets up dependencies, builds Persona (Release), generates a demo event stream with planted ground
# truth, replays it into ./data/demo/db, trains a first SASRec recommendation model on the demo
# users' sequences (time-limited; TRAIN_MINUTES=0 skips it) and the prediction models (propensity,
# churn, segments, next category, review sentiment: seconds each), and starts the HTTP service on it
# (http://127.0.0.1:8080, PORT=... to change) with live traffic: `persona replay` streams a second
# generated stream, which continues the demo in time, at REPLAY_RATE events/s (default 2000; 0 = no
# live traffic), repeating it shifted in time so that the repeats are new events. Ctrl-C (or
# SIGTERM) stops both cleanly: the replay waits for its batches in flight, then the server drains,
# checkpoints and exits.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C build-release persona
P=./build-release/persona
DATA=${DATA_DIR:-data/demo}
PORT=${PORT:-8080}
# The demo marker names the store format: a demo written by an older Persona (format 1, before the
# versioned checkpoints) is rebuilt rather than refused at start.
if [ -f "$DATA/db/.persona-demo-loaded" ] && [ ! -f "$DATA/db/.persona-demo-format-2" ]; then
  echo "--- the demo in $DATA was written by an older Persona (store format 1): rebuilding it"
  rm -f "$DATA/db/.persona-demo-loaded"
fi
if [ ! -f "$DATA/db/.persona-demo-loaded" ]; then
  rm -rf "$DATA" && mkdir -p "$DATA"
  $P gen --events 1000000 --users 50000 --seed 7 --out "$DATA/events.jsonl" --truth "$DATA/truth.jsonl"
  $P import --data "$DATA/db" --format jsonl --tag-rules config/tags.rules "$DATA/events.jsonl"
  touch "$DATA/db/.persona-demo-loaded" "$DATA/db/.persona-demo-format-2"
fi
TRAIN_MINUTES=${TRAIN_MINUTES:-3}
if [ "$TRAIN_MINUTES" != 0 ] && ! ls "$DATA"/db/models/sasrec/*.psm >/dev/null 2>&1; then
  # The limit is checked between epochs: the first epoch always completes (~2-5 min on the demo).
  echo "--- training a first SASRec model on the demo sequences (~$TRAIN_MINUTES min)"
  $P train sasrec --data "$DATA/db" --time-limit "$TRAIN_MINUTES"
fi
if [ "$TRAIN_MINUTES" != 0 ] && ! ls "$DATA"/db/models/propensity/*.pgbm >/dev/null 2>&1; then
  # The demo spans 2017-11-25 .. 12-04: two cutoffs with a 2-day label window each.
  echo "--- training prediction models on the demo (propensity, churn, segments, next category)"
  for m in propensity churn; do
    $P train $m --data "$DATA/db" --cutoff 2017-11-30T00:00:00Z --cutoff 2017-12-01T00:00:00Z --horizon 2d
  done
  $P train segments --data "$DATA/db"
  $P train next-category --data "$DATA/db"
  R=../shared/datasets/reviews
  if [ -f "$R/amazon_cells_labelled.txt" ]; then
    echo "--- training the review-sentiment model (English corpora)"
    $P train sentiment --data "$DATA/db" --corpus "$R/amazon_cells_labelled.txt" \
      --corpus "$R/yelp_labelled.txt" --corpus "$R/amazon_musical_instruments_5core.jsonl"
  fi
fi
USER_ID=$(head -1 "$DATA/truth.jsonl" | sed -E 's/.*"user_id":"([^"]+)".*/\1/')
cat <<EOT
--- demo data loaded: $DATA/db (ground truth of planted users: $DATA/truth.jsonl)
--- dashboard: open http://127.0.0.1:$PORT/ in a browser
--- try, in another terminal:
  curl -s localhost:$PORT/v1/users/$USER_ID/profile
  curl -s 'localhost:$PORT/v1/users/$USER_ID/timeline?limit=5'
  curl -s -XPOST localhost:$PORT/v1/events -H 'Content-Type: application/json' \\
       -d '{"user_id":"$USER_ID","type":"view","item_id":"42","category_path":"c1.c1_1","ts":"2017-12-04T00:00:00Z"}'
  curl -s 'localhost:$PORT/v1/users/$USER_ID/recommendations?k=5'
  curl -s 'localhost:$PORT/v1/trending?k=5'
  curl -s localhost:$PORT/v1/users/$USER_ID/predictions
  curl -s localhost:$PORT/v1/segments
  curl -s 'localhost:$PORT/v1/forecast?period=hour&horizon=6'
  curl -s -XPOST localhost:$PORT/v1/audiences:query -d '{"condition":"buyer and lifecycle = \\"active\\" and interest.category(\\"c1\\") > 0.2","sample":3}'
  curl -s -XPOST localhost:$PORT/v1/audiences -d '{"name":"Big spenders","condition":"rfm.monetary_30d >= 500"}'
  curl -s localhost:$PORT/metrics | grep persona_events_total
  API reference: docs/openapi.yaml
EOT
# Live traffic: 500k events of the same 50k users over the 12 hours after the demo's last day
# (the demo spans 2017-11-25 .. 12-04; another seed gives other event ids), generated once.
REPLAY_RATE=${REPLAY_RATE:-2000}
LIVE="$DATA/live.jsonl"
if [ "$REPLAY_RATE" != 0 ] && [ ! -f "$LIVE" ]; then
  echo "--- generating the live stream for persona replay ($LIVE)"
  $P gen --events 500000 --users 50000 --seed 8 --start-ms 1512345600000 --span-ms 43200000 \
    --quiet --out "$LIVE.tmp"
  mv "$LIVE.tmp" "$LIVE"
fi
# The server and the replay run in sessions of their own, so that a Ctrl-C reaches only this script,
# which stops them in order: the replay first (it waits for its batches in flight), then the server
# (drain, checkpoint); the script exits with the server's status.
DETACH=""
command -v setsid >/dev/null 2>&1 && DETACH=setsid
$DETACH $P serve --data "$DATA/db" --tag-rules config/tags.rules --port "$PORT" &
SERVER=$!
REPLAY=""
stop() {
  trap - INT TERM HUP
  if [ -n "$REPLAY" ]; then
    kill -TERM "$REPLAY" 2>/dev/null || true
    wait "$REPLAY" 2>/dev/null || true
  fi
  kill -TERM "$SERVER" 2>/dev/null || true
  rc=0
  wait "$SERVER" || rc=$?
  exit "$rc"
}
trap stop INT TERM HUP
# GET /readyz over bash's /dev/tcp (no curl needed): true once the server answers 200.
ready() {
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT" &&
    printf 'GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3 &&
    read -r _ status _ <&3 && [ "$status" = 200 ]) 2>/dev/null
}
until ready; do
  if ! kill -0 "$SERVER" 2>/dev/null; then
    rc=0
    wait "$SERVER" || rc=$?
    echo "--- the server exited (status $rc) before it was ready" >&2
    exit $((rc == 0 ? 1 : rc))
  fi
  sleep 0.5
done
if [ "$REPLAY_RATE" != 0 ]; then
  $DETACH $P replay --url "http://127.0.0.1:$PORT" --rate "$REPLAY_RATE" --loop-shift "$LIVE" \
    >"$DATA/replay.log" 2>&1 &
  REPLAY=$!
  echo "--- live traffic: persona replay at $REPLAY_RATE events/s (progress: $DATA/replay.log; REPLAY_RATE=0 turns it off)"
fi
rc=0
wait "$SERVER" || rc=$?
# The server ended on its own: stop the replay too.
if [ -n "$REPLAY" ]; then
  kill -TERM "$REPLAY" 2>/dev/null || true
  wait "$REPLAY" 2>/dev/null || true
fi
exit "$rc"
