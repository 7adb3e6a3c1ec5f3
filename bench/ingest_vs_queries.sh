#!/usr/bin/env bash
# Ingest latency while queries run (issue 11's goal: p99 within 2x of idle). Starts the release
# collector, sends 10,000 single-event POSTs one after another over one keep-alive connection and
# times each, first idle, then while two CPU-bound SQL queries run without pause; prints p50 and
# p99 of both and their ratio.
# Usage: bash bench/ingest_vs_queries.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/footfall-target}"
cargo build --release --bin footfall
BIN="$CARGO_TARGET_DIR/release/footfall"
WORK=$(mktemp -d)
ADDR=127.0.0.1:18095
cleanup() { kill "${FF_PID:-}" 2>/dev/null || true; wait "${FF_PID:-}" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
RUST_LOG=warn "$BIN" serve --data "$WORK/data" --listen "$ADDR" --rate-limit-ip 0 --rate-limit-site 0 & FF_PID=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://$ADDR/healthz" && break; sleep 0.1; done
READ=$("$BIN" site list --data "$WORK/data" | python3 -c 'import json, sys; print([s for s in json.load(sys.stdin) if s["id"] == "default"][0]["read_key"])')
python3 - "$ADDR" "$READ" <<'PY'
import http.client, json, sys, threading, time
addr, key = sys.argv[1], sys.argv[2]
host, port = addr.split(":")
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"

def run(tag, n=10000):
    c = http.client.HTTPConnection(host, int(port))
    times = []
    for i in range(n):
        body = json.dumps({"site": "default", "name": "pageview", "url": f"https://shop.example/{tag}/{i}"})
        t = time.perf_counter()
        c.request("POST", "/api/event", body, {"content-type": "text/plain", "user-agent": UA})
        r = c.getresponse(); r.read()
        times.append(time.perf_counter() - t)
        assert r.status == 202, r.status
    times.sort()
    return times[len(times) // 2] * 1000, times[len(times) * 99 // 100] * 1000

stop = False
def heavy():
    while not stop:
        c = http.client.HTTPConnection(host, int(port), timeout=60)
        c.request("POST", "/api/sql", json.dumps({"sql": "SELECT count(*) AS n FROM generate_series(1, 1000000000000) WHERE value % 7 = 3"}),
                  {"authorization": f"Bearer {key}", "content-type": "application/json"})
        c.getresponse().read()

idle = run("idle")
threads = [threading.Thread(target=heavy, daemon=True) for _ in range(2)]
for t in threads: t.start()
time.sleep(1)
loaded = run("loaded")
stop = True
print(f"ingest latency, 10,000 sequential single events: idle p50 {idle[0]:.2f} ms p99 {idle[1]:.2f} ms; "
      f"with two CPU-bound queries p50 {loaded[0]:.2f} ms p99 {loaded[1]:.2f} ms; p99 ratio {loaded[1] / idle[1]:.2f} (goal <= 2)")
PY
