#!/usr/bin/env bash
# Soak: the release collector for MINUTES (default 30) under mixed load (not run in CI):
# - ingestion: wrk, 4 connections posting batches of 10 events every 40 ms each (~1,000 events/s)
#   to site `default`;
# - queries: two loops, one SQL and one report after another (trends, funnel, retention,
#   an analyst GROUP BY), as a dashboard and an analyst would, over site `shop`: a generated shop
#   of SOAK_EVENTS (default 1,000,000) events over the last 14 days, written before the start.
#   The queries' work is then the same all along, so a growing RSS means a leak, not a bigger
#   store (SOAK_QUERY_SITE=default queries the growing site instead).
# Every 10 s it records the collector's RSS; at the end it prints RSS after warm-up (the first
# 5 minutes, or a sixth of a shorter run), the spread around its mean (goal: within +-10%), and
# every error: non-2xx answers to ingestion and to queries, flush errors. The samples go to
# $OUT (default bench/soak-rss.csv, not committed).
# Usage: bash bench/soak.sh [minutes]
set -euo pipefail
cd "$(dirname "$0")/.."
MIN="${1:-30}"
OUT="${OUT:-bench/soak-rss.csv}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/footfall-target}"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release --bin footfall
BIN="$CARGO_TARGET_DIR/release/footfall"
WORK=$(mktemp -d)
ADDR=127.0.0.1:18090
cleanup() {
  kill "${WRK_PID:-}" "${Q1:-}" "${Q2:-}" 2>/dev/null || true
  kill "${FF_PID:-}" 2>/dev/null || true
  wait "${FF_PID:-}" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

QSITE="${SOAK_QUERY_SITE:-shop}"
"$BIN" site add default --data "$WORK/data" > /dev/null
"$BIN" site add shop --data "$WORK/data" > /dev/null
"$BIN" bench gen --data "$WORK/data" --site shop --events "${SOAK_EVENTS:-1000000}" --visitors 100000 --days 14 \
  --start "$(date -u -d '13 days ago' +%F)" > /dev/null
RUST_LOG=warn "$BIN" serve --data "$WORK/data" --listen "$ADDR" --rate-limit-ip 0 --rate-limit-site 0 \
  > "$WORK/serve.log" 2>&1 & FF_PID=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://$ADDR/healthz" && break; sleep 0.1; done
READ=$("$BIN" site list --data "$WORK/data" | python3 -c 'import json, sys; print([s for s in json.load(sys.stdin) if s["id"] == sys.argv[1]][0]["read_key"])' "$QSITE")

SECS=$((MIN * 60))
wrk -t2 -c4 -d"${SECS}s" -s bench/soak.lua "http://$ADDR/api/event" > "$WORK/wrk.txt" & WRK_PID=$!

TODAY=$(date -u +%F); WEEK=$(date -u -d '13 days ago' +%F)
RANGE="\"date_range\": {\"from\": \"$WEEK\", \"to\": \"$TODAY\"}"
query_loop() { # $1: file of request lines "PATH<TAB>JSON"; counts answers by status in $2
  local end=$((SECONDS + SECS))
  while [ $SECONDS -lt $end ]; do
    while IFS=$'\t' read -r path body; do
      code=$(curl -s -o /dev/null -w '%{http_code}' -m 60 -H "authorization: Bearer $READ" -d "$body" "http://$ADDR$path")
      echo "$code" >> "$2"
    done < "$1"
  done
}
printf '%s\t%s\n' \
  /api/reports/trends "{\"site\": \"$QSITE\", $RANGE, \"breakdown\": \"channel\"}" \
  /api/reports/funnel "{\"site\": \"$QSITE\", $RANGE, \"steps\": [{\"event\": \"product_view\"}, {\"event\": \"add_to_cart\"}, {\"event\": \"checkout_start\"}]}" \
  > "$WORK/q1.txt"
printf '%s\t%s\n' \
  /api/sql '{"sql": "SELECT path, count(*) AS n FROM events GROUP BY path ORDER BY n DESC LIMIT 20"}' \
  /api/reports/retention "{\"site\": \"$QSITE\", $RANGE, \"period\": \"day\", \"periods\": 7}" \
  > "$WORK/q2.txt"
query_loop "$WORK/q1.txt" "$WORK/codes1.txt" & Q1=$!
query_loop "$WORK/q2.txt" "$WORK/codes2.txt" & Q2=$!

echo "seconds,rss_kb,wal_bytes" > "$OUT"
START=$SECONDS
while kill -0 "$WRK_PID" 2>/dev/null; do
  RSS=$(awk '/^VmRSS/ {print $2}' "/proc/$FF_PID/status")
  WAL=$(curl -s "http://$ADDR/healthz" | python3 -c 'import json,sys; print(json.load(sys.stdin)["wal_bytes"])' 2>/dev/null || echo -1)
  echo "$((SECONDS - START)),$RSS,$WAL" >> "$OUT"
  sleep 10
done
wait "$Q1" "$Q2" 2>/dev/null || true

METRICS=$(curl -s "http://$ADDR/metrics")
metric() { echo "$METRICS" | awk -v m="$1" '$1 == m {print $2}' | head -1; }
NON2XX=$(awk '/Non-2xx/ {print $NF}' "$WORK/wrk.txt"); NON2XX=${NON2XX:-0}
SOCKERR=$(awk '/Socket errors/ {print $0}' "$WORK/wrk.txt")
REQS=$(awk '/requests in/ {print $1}' "$WORK/wrk.txt")
QOK=$(cat "$WORK"/codes*.txt | grep -c '^200$' || true)
QBAD=$(cat "$WORK"/codes*.txt | grep -vc '^200$' || true)
WARM=$(( SECS / 6 < 300 ? SECS / 6 : 300 ))
python3 - "$OUT" "$WARM" <<PY
import csv, sys
rows = [r for r in csv.DictReader(open(sys.argv[1])) if int(r["seconds"]) >= int(sys.argv[2])]
rss = [int(r["rss_kb"]) / 1024 for r in rows]
mean = sum(rss) / len(rss)
print(f"soak: $MIN min; RSS after {int(sys.argv[2])} s warm-up: mean {mean:.1f} MB, min {min(rss):.1f}, max {max(rss):.1f} "
      f"({(min(rss) / mean - 1) * 100:+.1f}% / {(max(rss) / mean - 1) * 100:+.1f}%, goal within +-10%); "
      f"first {rss[0]:.1f} MB, last {rss[-1]:.1f} MB over {len(rss)} samples")
PY
echo "ingest: $REQS requests of 10 events, non-2xx: $NON2XX ${SOCKERR:+($SOCKERR)}"
echo "queries (site $QSITE): $QOK answered 200, $QBAD other (codes: $(cat "$WORK"/codes*.txt | sort | uniq -c | tr '\n' ' '))"
echo "events stored: $(metric footfall_events_accepted_total), flush errors: $(metric footfall_flush_errors_total), WAL records lost: $(metric footfall_wal_records_lost_total)"
echo "server log errors: $(grep -c ' ERROR ' "$WORK/serve.log" || true)"
