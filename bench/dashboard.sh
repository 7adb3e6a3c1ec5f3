#!/usr/bin/env bash
# Dashboard benchmark: starts `footfall demo` (release build, default shop) and loads the
# dashboard in Debian's Chromium LOADS times, printing how long the demo took to be ready and,
# per load, when the overview numbers, the chart and all nine tables were on screen (ms from
# navigation start). Usage: bash bench/dashboard.sh [LOADS] [STORE [SITE]] (default 5 loads of
# the demo; with STORE, `footfall serve` over that data directory instead, showing SITE (default
# bench) over the 30 days ending on its last day: bash bench/dashboard.sh 5 ~/.cache/footfall-bench/10000000-1000000).
set -euo pipefail
cd "$(dirname "$0")/.."
LOADS="${1:-5}"
STORE="${2:-}"
SITE="${3:-bench}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/footfall-target}"
cargo build --release --bin footfall
(cd dashboard && npm ci --no-audit --no-fund --silent)
BIN="$CARGO_TARGET_DIR/release/footfall"
TMP=$(mktemp -d)
OUT="$TMP/out"
if [ -n "$STORE" ]; then
  # An existing store (the bench store of bench/query.sh): serve it with an admin key and open
  # the 30 days that end on its last day.
  KEY="dashboard-bench-admin-key"
  "$BIN" site list --data "$STORE" | grep -q "\"id\": \"$SITE\"" || "$BIN" site add "$SITE" --data "$STORE" > /dev/null
  LAST=$(ls "$STORE/events/site=$SITE" | sed 's/date=//' | sort | tail -1)
  FIRST=$(date -d "$LAST - 29 days" +%F)
  FOOTFALL_ADMIN_KEY="$KEY" "$BIN" serve --data "$STORE" --listen 127.0.0.1:0 > "$OUT" 2>/dev/null &
else
  "$BIN" demo --data "$TMP/demo" --listen 127.0.0.1:0 > "$OUT" 2>/dev/null &
fi
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$TMP"' EXIT
until grep -q "listening on" "$OUT"; do sleep 0.1; done
head -1 "$OUT"
if [ -n "$STORE" ]; then
  BASE=$(grep -o 'listening on http://[^ ]*' "$OUT" | head -1 | cut -d' ' -f3)
  URL="$BASE/?site=$SITE&range=custom&from=$FIRST&to=$LAST#key=$KEY"
  echo "store: $STORE ($(du -sh "$STORE/events" | cut -f1) of events), $FIRST to $LAST"
else
  URL=$(grep -o 'dashboard: [^ ]*' "$OUT" | cut -d' ' -f2)
  du -sh "$TMP/demo/events" | cut -f1 | sed 's/^/demo data on disk: /'
fi
node bench/dashboard.mjs "$URL" "$LOADS"
