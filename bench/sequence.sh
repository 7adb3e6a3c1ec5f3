#!/usr/bin/env bash
# Pattern aggregates benchmark (issue 19): on the generated store, footfall's three-step
# sequence_match per visitor with a time constraint next to the three-step window_funnel over
# the same rows, and ClickHouse's own sequenceMatch and windowFunnel (chDB, PyPI, in a venv)
# on the same Parquet files, in one run. Checks that footfall and ClickHouse find the same
# visitors. The same rows grouped by visitor with min(ts) is timed too: the floor of both.
# Usage: bash bench/sequence.sh [EVENTS] [VISITORS] [RUNS] (defaults: 10000000 1000000 5)
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS="${1:-10000000}"; VISITORS="${2:-1000000}"; RUNS="${3:-5}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/footfall-target}"
cargo build --release --bin footfall
BIN="$CARGO_TARGET_DIR/release/footfall"
PY="$(bash tests/pyenv.sh clickhouse tests/clickhouse/requirements.txt)"
DATA="${FOOTFALL_BENCH_DATA:-$HOME/.cache/footfall-bench/$EVENTS-$VISITORS}"
if [ ! -f "$DATA/.complete" ]; then
  rm -rf "$DATA"
  "$BIN" bench gen --events "$EVENTS" --visitors "$VISITORS" --data "$DATA" 2>&1 | tr '\r' '\n' | tail -1
  touch "$DATA/.complete"
fi
OUT=$(mktemp -d)
for round in 1 2; do
  for q in visitors_sql funnel3_sql sequence_sql; do "$BIN" bench query "$q" --runs "$RUNS" --data "$DATA" >> "$OUT/footfall.$round.jsonl"; done
  "$PY" bench/chdb_queries.py "$DATA" bench 2026-01-05 8 "$RUNS" visitors_sql funnel3_sql sequence_sql >> "$OUT/chdb.$round.jsonl"
done
cat "$OUT"/*.jsonl
python3 - "$OUT" <<'PY'
import glob, json, sys
rows = [json.loads(l) for f in sorted(glob.glob(sys.argv[1] + "/*.jsonl")) for l in open(f)]
def med(engine, q):
    xs = sorted(x for r in rows if r["query"] == q and r.get("engine", "footfall") == engine for x in r["runs_s"])
    return xs[len(xs) // 2]
def res(engine, q):
    # footfall prints rows as objects, chdb_queries.py as lists of values
    out = next(r["result"] for r in rows if r["query"] == q and r.get("engine", "footfall") == engine)
    return [sorted(map(str, r.values() if isinstance(r, dict) else r)) for r in out]
def rss(engine, q):
    return round(max(r["peak_rss_mb"] for r in rows if r["query"] == q and r.get("engine", "footfall") == engine))
print("\n| query | footfall s | chDB s | footfall ÷ chDB | footfall RSS MB | chDB RSS MB | same result |")
print("|---|---:|---:|---:|---:|---:|---|")
for q, name in [("visitors_sql", "the same rows grouped by visitor, min(ts) (the floor)"), ("funnel3_sql", "3-step window_funnel / windowFunnel, 600 s"), ("sequence_sql", "sequence_match '(?1)(?t<=600)(?2).*(?3)'")]:
    f, c = med("footfall", q), med("chdb", q)
    same = "yes" if res("footfall", q) == res("chdb", q) else f"NO: {res('footfall', q)} vs {res('chdb', q)}"
    print(f"| {name} | {f:.3f} | {c:.3f} | {f / c:.2f} | {rss('footfall', q)} | {rss('chdb', q)} | {same} |")
print(f"\nsequence_match ÷ window_funnel (footfall): {med('footfall', 'sequence_sql') / med('footfall', 'funnel3_sql'):.2f}")
PY
