#!/usr/bin/env bash
# Postgres wire benchmark: the 4-step window_funnel (and the other SQL-level bench queries) over
# the wire with psycopg against `footfall serve --pg-listen`, next to the same SQL run in process
# (`footfall bench query`, what `footfall query` runs), on the generated bench store; plus a BI
# tool's connect-and-introspect sequence (tests/postgres/bi.py's statements) and the server's
# peak RSS. Checks that both return the same rows.
# Usage: bash bench/postgres.sh [STORE] [RUNS] (defaults: the 10M-event store of bench/query.sh, 5)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${1:-$HOME/.cache/footfall-bench/10000000-1000000}"; RUNS="${2:-5}"
[ -f "$DATA/.complete" ] || { echo "no bench store at $DATA: run bash bench/query.sh first" >&2; exit 1; }
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/footfall-target}"
cargo build --release --bin footfall
BIN="$CARGO_TARGET_DIR/release/footfall"
PY=$(bash tests/pyenv.sh postgres tests/postgres/requirements.txt)

OUT=$(mktemp -d)
for q in funnel_sql retention_sql trends_sql; do
  "$BIN" bench query "$q" --runs "$RUNS" --data "$DATA" > "$OUT/$q.json"
done
# A copy of the store's directory tree by hard links: serve takes the data directory's lock and
# may write (sites.json), and the bench store stays as it was.
SERVE="$OUT/serve"; cp -al "$DATA" "$SERVE"
KEY="bench-admin-key-$(date +%s)"
"$BIN" serve --data "$SERVE" --listen 127.0.0.1:0 --pg-listen 127.0.0.1:55433 --admin-key "$KEY" > "$OUT/serve.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true; rm -rf "$OUT"' EXIT
for _ in $(seq 1 100); do grep -q "speaking Postgres" "$OUT/serve.log" && break; sleep 0.1; done
"$PY" - "$OUT" "$RUNS" "$KEY" "$PID" <<'PY'
import json, statistics, sys, time
import psycopg
out, runs, key, pid = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
sys.path.insert(0, "tests/postgres")
def rss_mb():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) // 1024
t = time.perf_counter()
conn = psycopg.connect(host="127.0.0.1", port=55433, user="footfall_admin", password=key, dbname="footfall",
                       sslmode="disable", autocommit=True)
connect_s = time.perf_counter() - t
from bi import CONNECT as statements  # tests/postgres/bi.py: what BI tools send when they connect
t = time.perf_counter()
for sql in statements:
    cur = conn.execute(sql)
    if cur.description:
        cur.fetchall()
introspect_s = time.perf_counter() - t
print(json.dumps({"query": "connect", "scram_login_s": round(connect_s, 4), "introspect_s": round(introspect_s, 3),
                  "statements": len(statements)}))
for q in ("funnel_sql", "retention_sql", "trends_sql"):
    local = json.load(open(f"{out}/{q}.json"))
    times, rows = [], None
    for _ in range(runs):
        t = time.perf_counter()
        rows = conn.execute(local["sql"]).fetchall()
        times.append(time.perf_counter() - t)
    wire = statistics.median(times)
    same = [[int(v) if isinstance(v, (int, float)) or str(v).isdigit() else str(v) for v in r] for r in rows]
    print(json.dumps({"query": q, "wire_median_s": round(wire, 3), "in_process_median_s": round(local["median_s"], 3),
                      "wire_over_in_process": round(wire / local["median_s"], 2), "rows": len(rows),
                      "local_result": local["result"] if q == "funnel_sql" else None,
                      "wire_rows": same if q == "funnel_sql" else None}))
print(json.dumps({"query": "server", "peak_rss_mb": rss_mb()}))
PY
