#!/usr/bin/env bash
# Ingest benchmark: footfall's POST /api/event (single events and batches of 100, --fsync batch)
# against a bare axum handler that only answers 204. The servers run pinned to CPU 0
# ("one core"); wrk runs on CPU 1. Prints events/s, p50/p99 latency, RSS and the ratio.
# Usage: bash bench/ingest.sh [seconds-per-run]   (default 15)
set -euo pipefail
cd "$(dirname "$0")/.."
DUR="${1:-15}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/footfall-target}"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release --bin footfall --example bare_server
BIN="$CARGO_TARGET_DIR/release/footfall"
BARE="$CARGO_TARGET_DIR/release/examples/bare_server"
WORK=$(mktemp -d)
FF_ADDR=127.0.0.1:18080
BARE_ADDR=127.0.0.1:18081
cleanup() {
  kill "${FF_PID:-}" "${BARE_PID:-}" 2>/dev/null || true
  wait "${FF_PID:-}" "${BARE_PID:-}" 2>/dev/null || true   # footfall flushes before it exits
  rm -rf "$WORK"
}
trap cleanup EXIT

wait_up() { for _ in $(seq 100); do curl -s -o /dev/null "http://$1/" && return 0; sleep 0.1; done; echo "server at $1 did not start" >&2; exit 1; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
# run_wrk ADDR SCRIPT [CONNECTIONS] -> "req/s p50 p99"
run_wrk() {
  taskset -c 1 wrk -t1 -c"${3:-64}" -d"${DUR}s" --latency -s "$2" "http://$1/api/event" > "$WORK/wrk.txt"
  local non2xx; non2xx=$(awk '/Non-2xx/ {print $NF}' "$WORK/wrk.txt")
  [ -z "$non2xx" ] || { echo "wrk saw $non2xx non-2xx answers:" >&2; cat "$WORK/wrk.txt" >&2; exit 1; }
  awk '/Requests\/sec/ {rps=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} END {print rps, p50, p99}' "$WORK/wrk.txt"
}

RUST_LOG=warn taskset -c 0 "$BIN" serve --data "$WORK/data" --listen "$FF_ADDR" --fsync batch \
  --rate-limit-ip 0 --rate-limit-site 0 --flush-interval 2 & FF_PID=$!
taskset -c 0 "$BARE" "$BARE_ADDR" >/dev/null & BARE_PID=$!
wait_up "$FF_ADDR"; wait_up "$BARE_ADDR"
sleep 2
IDLE_KB=$(rss_kb "$FF_PID")

read -r BARE_RPS BARE_P50 BARE_P99 < <(run_wrk "$BARE_ADDR" bench/event.lua)
read -r ONE_RPS ONE_P50 ONE_P99 < <(run_wrk "$FF_ADDR" bench/event.lua)
read -r B_RPS B_P50 B_P99 < <(run_wrk "$FF_ADDR" bench/batch100.lua)
# Latency of batches at a backend-like concurrency: with 64 connections of 100 events each,
# Little's law alone puts p50 at 6,400 events / throughput.
read -r L_RPS L_P50 L_P99 < <(run_wrk "$FF_ADDR" bench/batch100.lua 8)
PEAK_KB=$(hwm_kb "$FF_PID")
sleep 3
STORED=$(find "$WORK/data/events" -name '*.parquet' | wc -l)

awk -v d="$DUR" -v bare="$BARE_RPS" -v bp50="$BARE_P50" -v bp99="$BARE_P99" \
    -v one="$ONE_RPS" -v p50="$ONE_P50" -v p99="$ONE_P99" \
    -v b="$B_RPS" -v bb50="$B_P50" -v bb99="$B_P99" -v l="$L_RPS" -v l50="$L_P50" -v l99="$L_P99" -v idle="$IDLE_KB" -v peak="$PEAK_KB" -v files="$STORED" 'BEGIN {
  printf "ingest bench: %ss per run, wrk -t1 -c64 (unless noted) on CPU 1, servers on CPU 0, --fsync batch\n", d
  printf "%-28s %14s %12s %9s %9s\n", "run", "requests/s", "events/s", "p50", "p99"
  printf "%-28s %14.0f %12.0f %9s %9s\n", "bare axum 204 handler", bare, bare, bp50, bp99
  printf "%-28s %14.0f %12.0f %9s %9s\n", "footfall single events", one, one, p50, p99
  printf "%-28s %14.0f %12.0f %9s %9s\n", "footfall batches of 100", b, b * 100, bb50, bb99
  printf "%-28s %14.0f %12.0f %9s %9s\n", "footfall batches, 8 conns", l, l * 100, l50, l99
  printf "single-event ratio to bare handler: %.2f (goal >= 0.5)\n", one / bare
  printf "batch events/s: %.0f at 64 conns, %.0f at 8 conns with p99 %s (goal >= 200000, p99 < 20ms)\n", b * 100, l * 100, l99
  printf "collector RSS idle: %.1f MB (goal < 50), peak under load: %.1f MB (goal < 200)\n", idle / 1024, peak / 1024
  printf "parquet files written during the run: %d\n", files
}'
