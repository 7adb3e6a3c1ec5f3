"""ClickHouse's own pattern and funnel aggregates (chDB, in process) on footfall's Parquet files.

Usage: python chdb_queries.py DATA_DIR SITE START WEEKS RUNS QUERY...
QUERY: sequence_sql (sequenceMatch), funnel3_sql (windowFunnel) or visitors_sql (the same rows
grouped by visitor with min(ts), the floor of the other two), the same SQL as `footfall bench
query` runs. ClickHouse's sequenceMatch and windowFunnel take a DateTime
(whole seconds), so the time is `toDateTime(ts)`, as footfall's time constraints count whole
seconds too. Prints one JSON line per query: median and every run's seconds, the result rows
(as footfall prints them), peak RSS.
"""
import datetime as dt
import json
import resource
import statistics
import sys
import time

import chdb

data, site, start, weeks, runs = sys.argv[1], sys.argv[2], dt.date.fromisoformat(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
end = start + dt.timedelta(weeks=weeks) - dt.timedelta(days=1)
events = f"file('{data}/events/site={site}/date=*/*.parquet', Parquet)"
where = f"site = '{site}' AND date BETWEEN '{start}' AND '{end}' AND name IN ('product_view', 'add_to_cart', 'purchase')"
conds = "name = 'product_view', name = 'add_to_cart', name = 'purchase'"
SQL = {
    "sequence_sql": f"""SELECT matched = 1 AS matched, count() AS visitors FROM (
  SELECT visitor_id, sequenceMatch('(?1)(?t<=600)(?2).*(?3)')(toDateTime(ts), {conds}) AS matched
  FROM {events} WHERE {where} GROUP BY visitor_id)
GROUP BY matched ORDER BY matched""",
    "funnel3_sql": f"""SELECT level, count() AS visitors FROM (
  SELECT visitor_id, windowFunnel(600)(toDateTime(ts), {conds}) AS level
  FROM {events} WHERE {where} GROUP BY visitor_id)
GROUP BY level ORDER BY level""",
    "visitors_sql": f"""SELECT count() AS visitors, max(first_ts) AS last_first_ts FROM (
  SELECT visitor_id, min(ts) AS first_ts FROM {events} WHERE {where} GROUP BY visitor_id)""",
}

sess = chdb.session.Session()
for q in sys.argv[6:]:
    times, rows = [], None
    for _ in range(max(runs, 1)):
        t = time.perf_counter()
        out = sess.query(SQL[q], "JSONCompact")
        times.append(time.perf_counter() - t)
        data = json.loads(out.data())["data"]
        if q == "visitors_sql":
            # footfall prints the time as RFC 3339 in UTC
            rows = [[int(r[0]), r[1].replace(" ", "T") + "Z"] for r in data]
        else:
            rows = [[bool(r[0]) if q == "sequence_sql" else int(r[0]), int(r[1])] for r in data]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"query": q, "engine": "chdb", "median_s": round(statistics.median(times), 3),
                      "runs_s": [round(x, 3) for x in times], "result": rows, "peak_rss_mb": round(peak)}))
