#!/usr/bin/env bash
# Dashboard benchmark: starts `footfall demo` (release build, default shop) and loads the
# dashboard in Debian's Chromium LOADS times, printing how long the demo took to be ready and,
# per load, when the overview numbers, the chart and all nine tables were on screen (ms from
# navigation start). Usage: bash bench/dashboard.sh [LOADS] (default 5).
set -euo pipefail
cd "$(dirname "$0")/.."
LOADS="${1:-5}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/footfall-target}"
cargo build --release --bin footfall
(cd dashboard && npm ci --no-audit --no-fund --silent)
DATA=$(mktemp -d)
OUT=$(mktemp)
"$CARGO_TARGET_DIR/release/footfall" demo --data "$DATA/demo" --listen 127.0.0.1:0 > "$OUT" 2>/dev/null &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DATA" "$OUT"' EXIT
until grep -q "listening on" "$OUT"; do sleep 0.1; done
head -1 "$OUT"
URL=$(grep -o 'dashboard: [^ ]*' "$OUT" | cut -d' ' -f2)
du -sh "$DATA/demo/events" | cut -f1 | sed 's/^/demo data on disk: /'
node bench/dashboard.mjs "$URL" "$LOADS"
