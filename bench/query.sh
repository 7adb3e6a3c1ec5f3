#!/usr/bin/env bash
# Query benchmark: generates a shop's traffic (footfall bench gen, deterministic), then times
# footfall's queries (median of RUNS, each query in its own process so its peak RSS is its
# own) next to DuckDB's fastest equivalent SQL on the same Parquet files (PyPI duckdb,
# installed into a venv here). Checks that both engines return the same funnel and retention,
# and for the reports (DuckDB reading footfall's identity map) the same people and sessions of
# the trends report, people per funnel step, and the retention cohort's people per week.
# Usage: bash bench/query.sh [EVENTS] [VISITORS] [RUNS] [QUERIES...]
#        (defaults: 10000000 1000000 5, every query)
# The generated store is kept in ~/.cache/footfall-bench/<events>-<visitors> for the next run.
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS="${1:-10000000}"; VISITORS="${2:-1000000}"; RUNS="${3:-5}"; shift $(( $# < 3 ? $# : 3 ))
QUERIES=("$@")
[ ${#QUERIES[@]} -gt 0 ] || QUERIES=(bare_scan funnel_sql retention_sql trends_sql funnel3_sql sequence_sql sequence_count_sql sequence_events_sql report_funnel report_retention report_trends report_trends_by_channel report_experiment report_attribution report_ecommerce report_lifecycle report_paths segment_viewed_not_bought segment_vip)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/footfall-target}"
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
cargo build --release --bin footfall
BIN="$CARGO_TARGET_DIR/release/footfall"
VENV="$HOME/.cache/footfall-bench-venv"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q duckdb==2.0.0 pytz==2026.6
DATA="${FOOTFALL_BENCH_DATA:-$HOME/.cache/footfall-bench/$EVENTS-$VISITORS}"
if [ ! -f "$DATA/.complete" ]; then
  rm -rf "$DATA"
  /usr/bin/env time -f "generator: %e s, peak RSS %M KB" "$BIN" bench gen --events "$EVENTS" --visitors "$VISITORS" --data "$DATA" 2>&1 | tr '\r' '\n' | tail -2
  touch "$DATA/.complete"
fi
echo "store: $(du -sh "$DATA/events" | cut -f1), $(find "$DATA/events" -name '*.parquet' | wc -l) files"
OUT=$(mktemp -d)
for q in "${QUERIES[@]}"; do
  "$BIN" bench query "$q" --runs "$RUNS" --data "$DATA" | tee -a "$OUT/footfall.jsonl"
  case "$q" in report_trends|report_funnel|report_retention|bare_scan|funnel_sql|retention_sql|trends_sql) "$VENV/bin/python" bench/duckdb_queries.py "$DATA" bench 2026-01-05 8 "$RUNS" "$q" | tee -a "$OUT/duckdb.jsonl" ;; *) ;; esac
done
python3 - "$OUT/footfall.jsonl" "$OUT/duckdb.jsonl" "$EVENTS" <<'PY'
import json, sys
ff = {j["query"]: j for j in map(json.loads, open(sys.argv[1]))}
try:
    dk = {j["query"]: j for j in map(json.loads, open(sys.argv[2]))}
except FileNotFoundError:
    dk = {}
bare = ff.get("bare_scan", {}).get("median_s")
print(f"\n{int(sys.argv[3]):,} events; median seconds; peak RSS of the process running the query\n")
print("| query | footfall s | × bare scan | DuckDB s | footfall ÷ DuckDB | footfall RSS MB | DuckDB RSS MB | same result |")
print("|---|---:|---:|---:|---:|---:|---:|---|")
for q, j in ff.items():
    d = dk.get(q)
    x = f"{j['median_s'] / bare:.2f}" if bare else "-"
    ds = f"{d['median_s']:.3f}" if d else "-"
    ratio = f"{j['median_s'] / d['median_s']:.2f}" if d else "-"
    drss = f"{d['peak_rss_mb']:.0f}" if d else "-"
    same = "-"
    if d and q in ("funnel_sql", "retention_sql", "bare_scan"):
        norm = lambda r: json.dumps(r, sort_keys=True, default=str).replace("T", " ").replace("Z", "+00:00")
        same = "yes" if norm(j["result"]) == norm(d["result"]) else f"NO: {j['result']} vs {d['result']}"
    if d and q in ("report_funnel", "report_retention"):
        ours = j["result"] if q == "report_funnel" else j["result"][0]
        same = "yes" if ours == d["result"] else f"NO: {ours} vs {d['result']}"
    if d and q == "report_trends":
        ours = j["result"][0][1:]
        theirs = [d["result"]["visitors"], d["result"]["sessions"]]
        same = "yes (visitors, sessions)" if ours == theirs else f"NO: {ours} vs {theirs}"
    print(f"| {q} | {j['median_s']:.3f} | {x} | {ds} | {ratio} | {j['peak_rss_mb']:.0f} | {drss} | {same} |")
PY
rm -rf "$OUT"
