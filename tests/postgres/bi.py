"""What a BI tool or a notebook does against footfall's Postgres door, with the libraries they use
(psycopg 3, SQLAlchemy 2, pandas), started by tests/it/postgres.rs.

Usage: python bi.py HOST PORT USER PASSWORD FUNNEL_SQL_FILE
Prints one JSON object: what each step returned. Any failure raises (exit 1) with the statement."""
import json
import sys

import pandas as pd
import psycopg
import sqlalchemy as sa

# The statements Metabase (through the Postgres JDBC driver), Grafana and DBeaver send when they
# connect and introspect, as datafusion-postgres's own client tests list them, on the events view.
CONNECT = [
    "SET extra_float_digits = 3",
    "SET application_name = 'Metabase v0.55.1'",
    "SHOW TRANSACTION ISOLATION LEVEL",
    "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ UNCOMMITTED",
    "SELECT current_schema(), session_user",
    "SHOW search_path",
    "show timezone",
    "SELECT * FROM pg_catalog.pg_settings where name='standard_conforming_strings'",
    """SELECT nspname AS "TABLE_SCHEM", current_database() AS "TABLE_CATALOG" FROM pg_catalog.pg_namespace
       WHERE nspname <> 'pg_toast' ORDER BY "TABLE_SCHEM" """,
    """SELECT "n"."nspname" AS "schema", "c"."relname" AS "name",
         CASE "c"."relkind" WHEN 'r' THEN 'TABLE' WHEN 'v' THEN 'VIEW' ELSE NULL END AS "type"
       FROM "pg_catalog"."pg_class" AS "c" INNER JOIN "pg_catalog"."pg_namespace" AS "n" ON "c"."relnamespace" = "n"."oid"
       WHERE ("n"."nspname" !~ '^pg_') AND ("n"."nspname" <> 'information_schema') AND c.relkind in ('r', 'p', 'v', 'f', 'm')
         AND ("n"."nspname" IN ('public')) ORDER BY "type" ASC, "schema" ASC, "name" ASC""",
    """SELECT quote_ident(table_name) AS "table" FROM information_schema.tables
       WHERE quote_ident(table_schema) NOT IN ('information_schema', 'pg_catalog') ORDER BY 1""",
    """SELECT quote_ident(column_name) AS "column", data_type AS "type" FROM information_schema.columns
       WHERE quote_ident(table_schema) = 'public' AND quote_ident(table_name) = 'events'""",
    "SELECT c.oid, c.relname FROM pg_catalog.pg_class c WHERE c.relname = 'events'",
    "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_catalog.pg_attribute a "
    "JOIN pg_catalog.pg_class c ON a.attrelid = c.oid WHERE c.relname = 'events' AND a.attnum > 0 ORDER BY a.attnum",
    "SELECT version()",
]


def main():
    host, port, user, password, funnel_file = sys.argv[1:6]
    funnel_sql = open(funnel_file).read()
    out = {}
    with psycopg.connect(host=host, port=port, user=user, password=password, dbname="footfall",
                         sslmode="disable", autocommit=True) as conn:
        out["connect"] = []
        for sql in CONNECT:
            try:
                cur = conn.execute(sql)
                rows = cur.fetchall() if cur.description else []
            except Exception as e:  # name the statement that failed
                raise SystemExit(f"{sql}\n  failed: {e!r}")
            out["connect"].append(len(rows))
        out["tables"] = sorted(r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'").fetchall())
        # A prepared statement with parameters, prepared server-side (Parse once, Bind/Execute twice).
        q = "SELECT count(*) AS n FROM events WHERE name = %s AND date >= %s"
        out["prepared"] = [conn.execute(q, (name, "2026-01-01"), prepare=True).fetchone()[0]
                           for name in ("purchase", "pageview")]
        out["sites"] = [r[0] for r in conn.execute("SELECT DISTINCT site FROM events ORDER BY 1").fetchall()]
        out["funnel_psycopg"] = [list(r) for r in conn.execute(funnel_sql).fetchall()]
        # Writes are refused, and the connection stays usable.
        try:
            conn.execute("CREATE TABLE t AS SELECT 1")
            out["create"] = "accepted"
        except psycopg.Error as e:
            out["create"] = f"{e.sqlstate}: {e.diag.message_primary}"
        out["after_refusal"] = conn.execute("SELECT 1").fetchone()[0]

    engine = sa.create_engine(f"postgresql+psycopg://{user}:{password}@{host}:{port}/footfall?sslmode=disable")
    inspector = sa.inspect(engine)
    out["sqlalchemy_views"] = sorted(inspector.get_view_names())
    out["sqlalchemy_tables"] = sorted(inspector.get_table_names())
    out["sqlalchemy_columns"] = [c["name"] for c in inspector.get_columns("events")][:4]
    with engine.connect() as conn:
        frame = pd.read_sql(sa.text("SELECT name, count(*) AS n FROM events WHERE name IN (:a, :b) GROUP BY name ORDER BY name"),
                            conn, params={"a": "add_to_cart", "b": "purchase"})
        out["pandas_params"] = frame.to_dict(orient="records")
        funnel = pd.read_sql(sa.text(funnel_sql), conn)
        out["funnel_pandas"] = funnel.astype(int).values.tolist()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
