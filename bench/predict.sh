#!/usr/bin/env bash
# Predictions benchmark on the generated bench store (the 10M-event shop of bench/query.sh):
# 1. `footfall predict` (the fit the server runs in the background): wall time, the fit's own
#    stages, and peak RSS (goal: < 30 s and < 1 GB);
# 2. the predictions and affinities reports (`footfall bench query`, median of RUNS);
# 3. `GET /api/sites/bench/recommendations` under 200 concurrent connections with wrk (Debian's
#    `wrk`), for products and for people, latency percentiles (goal: p99 < 50 ms).
# Usage: bash bench/predict.sh [STORE] [RUNS] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${1:-$HOME/.cache/footfall-bench/10000000-1000000}"; RUNS="${2:-5}"; SECS="${3:-20}"
[ -f "$DATA/.complete" ] || { echo "no bench store at $DATA: run bash bench/query.sh first" >&2; exit 1; }
command -v wrk > /dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/footfall-target}"
cargo build --release --bin footfall
BIN="$CARGO_TARGET_DIR/release/footfall"
OUT=$(mktemp -d)
# A copy of the store by hard links: the fit writes models/, serve takes the lock; the bench
# store stays as it was.
SERVE="$OUT/serve"; cp -al "$DATA" "$SERVE"
trap 'kill $PID 2>/dev/null || true; rm -rf "$OUT"' EXIT
PID=

echo "== fit (footfall predict)"
/usr/bin/env time -f "fit: %e s wall, peak RSS %M KB" "$BIN" predict --site bench --data "$SERVE" > "$OUT/model.json" 2> "$OUT/fit.err"
grep -E "^fit:|fitted" "$OUT/fit.err"
python3 - "$OUT/model.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
c = m["customers"]; p = m["propensity"]
print("stages:", ", ".join(f"{n} {s:.2f} s" for n, s in m["stages"]))
print("buyers", c["buyers"], "repeat", c["repeat_buyers"], "BG/NBD", c["bgnbd"], "Gamma-Gamma", c["gamma_gamma"])
print("propensity AUC", p and p["auc"], "train", p and p["train_people"], "holdout", p and p["holdout_people"])
print("orders", m["orders"], "pairs", len(m["bought_together"]), "sessions", m["sessions"], "viewed pairs", len(m["viewed_together"]))
PY

echo "== reports (median of $RUNS)"
for q in report_predictions report_affinities; do
  "$BIN" bench query "$q" --runs "$RUNS" --data "$SERVE"
done

echo "== recommendations under 200 connections ($SECS s each)"
KEY="bench-admin-key-$(date +%s)"
"$BIN" serve --data "$SERVE" --listen 127.0.0.1:58080 --admin-key "$KEY" --predict-interval 0 > "$OUT/serve.log" 2>&1 &
PID=$!
for _ in $(seq 1 100); do grep -q "footfall is listening" "$OUT/serve.log" && break; sleep 0.1; done
URL=http://127.0.0.1:58080/api/sites/bench/recommendations
# The first request loads the saved fit into memory (once after a start); time it apart.
curl -s -o /dev/null -w "first request (loads the fit): %{time_total} s\n" -H "authorization: Bearer $KEY" "$URL?product=$(python3 -c "import json; print(json.load(open('$OUT/model.json'))['products'][0]['id'])")"
PRODUCTS=$(python3 -c "import json; print(' '.join(p['id'] for p in json.load(open('$OUT/model.json'))['products'][:200]))")
PEOPLE=$("$BIN" query "SELECT person_id FROM predictions WHERE site = 'bench' AND recent_products IS NOT NULL ORDER BY person_id LIMIT 200" --format csv --data "$SERVE" | tail -n +2 | tr '\n' ' ')
cat > "$OUT/paths.lua" <<LUA
local ids = {}
for w in string.gmatch("$PRODUCTS", "%S+") do ids[#ids + 1] = "product=" .. w end
local people = {}
for w in string.gmatch("$PEOPLE", "%S+") do people[#people + 1] = "person=" .. w end
local list = os.getenv("KIND") == "person" and people or ids
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", "/api/sites/bench/recommendations?" .. list[(n % #list) + 1], {["authorization"] = "Bearer $KEY"})
end
LUA
for kind in product person; do
  echo "-- by $kind"
  KIND=$kind wrk -t 2 -c 200 -d "${SECS}s" --latency -s "$OUT/paths.lua" "$URL" | grep -E "Latency|50%|90%|99%|Requests/sec|Non-2xx|Socket errors"
done
echo "server peak RSS: $(grep VmHWM /proc/$PID/status | awk '{print $2}') KB"
