#!/usr/bin/env bash
# Disk use under a long stream with log retention (issue 13, item 5): a synthetic Taobao-format
# stream is imported in CHUNKS consecutive parts into one data directory with
# `[store] log_retention_bytes` set; after each part (whose close checkpoints and applies
# retention) the data directory's size and the retained log (from `persona stats`) are printed.
# Without retention the same run grows linearly (RETENTION_BYTES=0 shows it).
#
#   bash bench/disk_curve.sh                      # 20M events in 10 parts, 256 MiB per partition
#   EVENTS=40000000 CHUNKS=20 bash bench/disk_curve.sh
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${EVENTS:-20000000}
CHUNKS=${CHUNKS:-10}
RETENTION_BYTES=${RETENTION_BYTES:-268435456}
WORK=${WORK:-/tmp/persona-disk}
P=${PERSONA:-./build-rel/persona}
USERS=${USERS:-$((EVENTS / 100))}
mkdir -p "$WORK"
file="$WORK/events-$EVENTS-$USERS.csv"
[ -f "$file" ] || "$P" gen --events "$EVENTS" --users "$USERS" --items $((EVENTS / 25)) \
  --format taobao --out "$file" --quiet
rm -rf "$WORK/db" "$WORK"/part-*
lines=$(wc -l <"$file")
split -d -l $(((lines + CHUNKS - 1) / CHUNKS)) "$file" "$WORK/part-"
printf '[store]\nlog_retention_bytes = %s\n' "$RETENTION_BYTES" >"$WORK/retention.toml"
done_events=0
for part in "$WORK"/part-*; do
  "$P" import --data "$WORK/db" --config "$WORK/retention.toml" --format taobao --quiet "$part"
  done_events=$((done_events + $(wc -l <"$part")))
  size=$(du -sb "$WORK/db" | awk '{printf "%.0f", $1 / 1048576}')
  log=$("$P" stats --data "$WORK/db" --config "$WORK/retention.toml" | python3 -c '
import json, sys
d = json.load(sys.stdin)
parts = d.get("per_partition", [])
print(sum(p.get("log", {}).get("bytes", 0) for p in parts) // 1048576,
      sum(p.get("log", {}).get("trimmed_segments", 0) for p in parts))')
  echo "events=$done_events disk_MiB=$size retained_log_MiB=${log% *} (retention $((RETENTION_BYTES / 1048576)) MiB per partition)"
done
