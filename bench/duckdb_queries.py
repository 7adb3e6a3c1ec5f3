"""DuckDB's fastest equivalents of `footfall bench query`'s SQL, on the same Parquet files.

Usage: python duckdb_queries.py DATA_DIR SITE START WEEKS RUNS
Prints one JSON line per query: median and every run's seconds, the result, peak RSS.
DuckDB has no window_funnel or retention function, so the funnel is the usual chain of joins
(each entry's earliest next step inside the window, then the furthest level per visitor) and
retention is one bool_or per week. `report_trends`, `report_funnel` and `report_retention` are
the reports' people-level numbers (trends: totals and daily series; funnel: people per step;
retention: the first week's cohort per week), with each event's person taken from footfall's
identity map file.
"""
import datetime as dt
import json
import resource
import statistics
import sys
import time

import duckdb

data, site, start, weeks, runs = sys.argv[1], sys.argv[2], dt.date.fromisoformat(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
end = start + dt.timedelta(weeks=weeks) - dt.timedelta(days=1)
con = duckdb.connect()
con.execute(
    f"CREATE VIEW events AS SELECT * FROM read_parquet('{data}/events/site=*/date=*/*.parquet', hive_partitioning = true)"
)
rng = f"site = '{site}' AND date BETWEEN DATE '{start}' AND DATE '{end}'"
# The funnel enters in the range and may convert up to a day (its window) after it.
funnel_rng = f"site = '{site}' AND date BETWEEN DATE '{start}' AND DATE '{end + dt.timedelta(days=1)}'"
steps = "'product_view', 'add_to_cart', 'checkout_start', 'purchase'"
weeks8 = [(start + dt.timedelta(weeks=w), start + dt.timedelta(weeks=w, days=6)) for w in range(8)]

# Each event's person: its own user, else the user the identity map links its visitor to, else
# its visitor (footfall's rule, docs/adr/0004).
people = f"""m AS (
  SELECT visitor_id, user_id FROM read_parquet('{data}/identities/site=*/map.parquet', hive_partitioning = true)
  WHERE site = '{site}')"""
person = "CASE WHEN e.user_id IS NOT NULL THEN 'u:' || e.user_id WHEN m.user_id IS NOT NULL THEN 'u:' || m.user_id ELSE 'v:' || e.visitor_id END"


def funnel(key, source):
    """The 4-step funnel (1-day window) per `key` over `source` (key, ts, name, date)."""
    return f"""e AS ({source}),
s1 AS (SELECT {key}, ts AS t1 FROM e WHERE name = 'product_view' AND date <= DATE '{end}'),
s2 AS (SELECT s1.{key}, s1.t1, min(e.ts) AS t2 FROM s1 JOIN e ON e.{key} = s1.{key}
       AND e.name = 'add_to_cart' AND e.ts >= s1.t1 AND e.ts <= s1.t1 + INTERVAL 1 DAY GROUP BY ALL),
s3 AS (SELECT s2.{key}, s2.t1, min(e.ts) AS t3 FROM s2 JOIN e ON e.{key} = s2.{key}
       AND e.name = 'checkout_start' AND e.ts >= s2.t2 AND e.ts <= s2.t1 + INTERVAL 1 DAY GROUP BY ALL),
s4 AS (SELECT DISTINCT s3.{key}, s3.t1 FROM s3 JOIN e ON e.{key} = s3.{key}
       AND e.name = 'purchase' AND e.ts >= s3.t3 AND e.ts <= s3.t1 + INTERVAL 1 DAY),
levels AS (
  SELECT s1.{key}, max(CASE WHEN s4.{key} IS NOT NULL THEN 4 WHEN s3.{key} IS NOT NULL THEN 3
                            WHEN s2.{key} IS NOT NULL THEN 2 ELSE 1 END) AS level
  FROM s1 LEFT JOIN s2 USING ({key}, t1) LEFT JOIN s3 USING ({key}, t1) LEFT JOIN s4 USING ({key}, t1)
  GROUP BY s1.{key})"""


def retention(key, source):
    """People of the first week's cohort active in each of the 8 weeks, per `key` over `source`."""
    return (
        "SELECT "
        + ", ".join(["sum(c0::INT) AS week0"] + [f"sum((c0 AND c{k})::INT) AS week{k}" for k in range(1, 8)])
        + f" FROM (SELECT {key}, "
        + ", ".join(f"bool_or(date BETWEEN DATE '{a}' AND DATE '{b}') AS c{k}" for k, (a, b) in enumerate(weeks8))
        + f" FROM ({source}) GROUP BY {key})"
    )


QUERIES = {
    "bare_scan": f"""SELECT count(*) AS events, min(ts) AS first_ts, sum(length(visitor_id)) AS id_bytes
FROM events WHERE {funnel_rng} AND name IN ({steps})""",
    "funnel_sql": f"""WITH {funnel("visitor_id", f"SELECT visitor_id, ts, name, date FROM events WHERE {funnel_rng} AND name IN ({steps})")}
SELECT level, count(*) AS visitors FROM levels GROUP BY level ORDER BY level""",
    "retention_sql": retention("visitor_id", f"SELECT visitor_id, date FROM events WHERE {rng}"),
    # The funnel and retention reports' people: the same queries, per person.
    "report_funnel": f"""WITH {people}, {funnel("person_id", f"SELECT {person} AS person_id, e.ts, e.name, e.date FROM events e LEFT JOIN m ON e.visitor_id = m.visitor_id WHERE {funnel_rng} AND name IN ({steps})")}
SELECT count(*) AS step1, count(*) FILTER (WHERE level >= 2) AS step2, count(*) FILTER (WHERE level >= 3) AS step3,
  count(*) FILTER (WHERE level >= 4) AS step4 FROM levels""",
    "report_retention": f"WITH {people} "
    + retention("person_id", f"SELECT {person} AS person_id, e.date FROM events e LEFT JOIN m ON e.visitor_id = m.visitor_id WHERE {rng}"),
    "trends_sql": f"""SELECT date, channel, count(DISTINCT visitor_id) AS visitors,
  count(*) FILTER (WHERE name = 'pageview') AS pageviews
FROM events WHERE {rng} GROUP BY date, channel ORDER BY date, channel""",
    # footfall's trends report (every default metric, UTC days) for people: the person of each
    # event from footfall's identity map file, sessions' bounce and duration over the range, then
    # the totals and the daily series in one statement (GROUPING SETS). Checked against the
    # report's visitors and sessions.
    "report_trends": f"""WITH {people},
ev AS (
  SELECT {person} AS person_id, e.session_id, e.name, e.ts, e.date
  FROM events e LEFT JOIN m ON e.visitor_id = m.visitor_id WHERE {rng}),
s AS (
  SELECT session_id, count(*) FILTER (WHERE name = 'pageview') AS pageviews,
    count(*) FILTER (WHERE NOT starts_with(name, '$')) AS interactions,
    (epoch_us(max(ts)) - epoch_us(min(ts))) / 1e6 AS duration
  FROM ev GROUP BY session_id),
g AS (
  SELECT date, session_id, person_id, count(*) FILTER (WHERE name = 'pageview') AS pageviews, true AS in_day
  FROM ev GROUP BY GROUPING SETS ((date, session_id, person_id), (session_id, person_id)))
SELECT g.date, count(DISTINCT g.person_id) AS visitors, count(DISTINCT g.session_id) AS sessions,
  sum(g.pageviews) AS pageviews,
  round(100.0 * count(DISTINCT CASE WHEN s.pageviews = 1 AND s.interactions = 1 THEN g.session_id END)
        / count(DISTINCT CASE WHEN s.pageviews > 0 THEN g.session_id END), 2) AS bounce_rate,
  round(avg(s.duration), 2) AS visit_duration
FROM g JOIN s USING (session_id)
GROUP BY g.date, (g.date IS NULL) ORDER BY g.date NULLS FIRST""",
}

only = sys.argv[6:] or list(QUERIES)
for name in only:
    times, rows = [], None
    for _ in range(runs):
        t = time.perf_counter()
        rel = con.execute(QUERIES[name])
        cols = [d[0] for d in rel.description]
        rows = rel.fetchall()
        times.append(time.perf_counter() - t)
    if name == "report_trends":
        # The totals row (no date) and how many days the series has.
        totals = dict(zip(cols, rows[0]))
        result = {"visitors": totals["visitors"], "sessions": totals["sessions"], "pageviews": totals["pageviews"],
                  "bounce_rate": totals["bounce_rate"], "visit_duration": totals["visit_duration"], "days": len(rows) - 1}
    elif name in ("report_funnel", "report_retention"):
        result = list(rows[0])
    else:
        result = [dict(zip(cols, r)) for r in rows] if len(rows) <= 20 else {"rows": len(rows)}
    print(json.dumps({
        "query": name,
        "median_s": statistics.median(times),
        "runs_s": times,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "result": result,
    }, default=str), flush=True)
