#!/usr/bin/env python3
"""Where a report's time goes: runs `footfall report KIND` for its SQL, then each statement under
EXPLAIN ANALYZE (each in its own `footfall query` process, parameters inlined), and prints the
statement's wall time and its most expensive operators by elapsed compute (summed over the
query's threads, so it can exceed the wall time; a scan's decoding shows as `processing`).

Usage: python3 bench/explain.py BIN DATA KIND 'REQUEST-JSON' [TOP]
Example:
  python3 bench/explain.py ~/.cache/footfall-target/release/footfall \
    ~/.cache/footfall-bench/10000000-1000000 funnel \
    '{"site":"bench","date_range":{"from":"2026-01-05","to":"2026-03-01"},
      "steps":[{"event":"product_view"},{"event":"purchase"}]}'
"""
import json
import re
import subprocess
import sys
import time

UNITS = {"ns": 1e-9, "µs": 1e-6, "ms": 1e-3, "s": 1.0}


def seconds(text):
    m = re.fullmatch(r"([0-9.]+)(ns|µs|ms|s)", text)
    return float(m.group(1)) * UNITS[m.group(2)] if m else 0.0


def literal(value):
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if value is None:
        return "NULL"
    return str(value)


def inline(sql, params):
    # $10 before $1: replace the longest placeholders first.
    for i in sorted(range(len(params)), reverse=True):
        sql = sql.replace(f"${i + 1}", literal(params[i]))
    return sql


def statements(report):
    sql = report.get("sql")
    items = sql if isinstance(sql, list) else [sql]
    for item in items:
        if isinstance(item, dict):
            yield inline(item["sql"], item.get("params", []))
        elif isinstance(item, str):
            yield item


def operators(plan):
    for line in plan.splitlines():
        name = re.match(r"\s*([A-Za-z]+)", line)
        metrics = re.search(r"metrics=\[(.*)\]\s*$", line)
        if not name or not metrics:
            continue
        m = dict(kv.split("=", 1) for kv in re.split(r", (?=[a-z_]+=)", metrics.group(1)) if "=" in kv)
        compute = seconds(m.get("elapsed_compute", "0s")) + seconds(m.get("time_elapsed_processing", "0s"))
        detail = line.strip()[len(name.group(1)):].split("metrics=")[0].strip(": ,")[:110]
        yield compute, name.group(1), m.get("output_rows", "?"), detail


def main():
    binary, data, kind, body = sys.argv[1:5]
    top = int(sys.argv[5]) if len(sys.argv) > 5 else 6
    t = time.time()
    out = subprocess.run([binary, "report", kind, "--format", "json", body, "--data", data],
                         check=True, capture_output=True, text=True).stdout
    print(f"# report {kind}: {time.time() - t:.2f} s as one process")
    for i, sql in enumerate(statements(json.loads(out)), 1):
        t = time.time()
        res = subprocess.run([binary, "query", "--data", data, "--format", "json", "EXPLAIN ANALYZE " + sql],
                             capture_output=True, text=True)
        wall = time.time() - t
        if res.returncode != 0:
            print(f"## statement {i}: failed: {res.stderr.strip()[:300]}")
            continue
        plan = "\n".join(r["plan"] for r in json.loads(res.stdout))
        first = " ".join(sql.split())[:160]
        print(f"## statement {i}: {wall:.2f} s  ({first}…)")
        for compute, name, rows, detail in sorted(operators(plan), reverse=True)[:top]:
            print(f"  {compute:7.3f} s  {name:<22} rows={rows:<9} {detail}")


if __name__ == "__main__":
    main()
