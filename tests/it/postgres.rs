//! The Postgres wire protocol (`serve --pg-listen`): Debian's psql, then psycopg + SQLAlchemy +
//! pandas from PyPI, against a footfall started here over two generated shops. What they read is
//! checked against the same SQL run the way `footfall query` runs it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use arrow::array::AsArray;
use footfall::model::SiteId;
use footfall::query::{Scope, output};
use footfall::server::postgres::ADMIN_USER;
use footfall::sites::{Site, Sites};
use footfall::store::paths::DataDir;
use serde_json::Value;

use crate::support::{TestServer, options};

const ADMIN_KEY: &str = "admin-key-for-the-postgres-tests";

struct Shops {
    dir: tempfile::TempDir,
    srv: TestServer,
    pg: SocketAddr,
    bench: Site,
    other: Site,
    start: chrono::NaiveDate,
}

/// Two generated shops, `bench` (two weeks) and `other` (one week), served with Postgres on.
async fn serve_two_shops() -> Shops {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = DataDir::new(dir.path());
    let start = chrono::NaiveDate::from_ymd_opt(2026, 1, 5).expect("date");
    for (site, seed, events, visitors, days) in [("bench", 5, 20_000, 2_000, 14), ("other", 6, 2_000, 200, 7)] {
        let cfg = footfall::shopgen::ShopConfig { site: site.into(), seed, events, visitors, start, days };
        footfall::bench::generate(&data, &cfg, |_, _| {}).expect("generate");
    }
    let sites = Sites::open(&data.sites_file()).expect("sites");
    let bench = sites.add(SiteId::parse("bench").expect("id"), &[]).expect("add");
    let other = sites.add(SiteId::parse("other").expect("id"), &[]).expect("add");
    let mut opts = options(dir.path());
    opts.pg_listen = Some("127.0.0.1:0".parse().expect("addr"));
    opts.admin_key = Some(ADMIN_KEY.to_owned());
    let srv = TestServer::start(opts).await;
    let pg = srv.running.as_ref().and_then(|r| r.pg_addr).expect("Postgres is on");
    Shops { dir, srv, pg, bench, other, start }
}

/// `psql` (Debian's postgresql-client) as `user` with `password`, unaligned, tuples only.
fn psql(pg: SocketAddr, user: &str, password: &str, args: &[&str]) -> Output {
    Command::new("psql")
        .env("PGPASSWORD", password)
        .env("PGCONNECT_TIMEOUT", "10")
        .arg(format!("host={} port={} user={user} dbname=footfall sslmode=disable", pg.ip(), pg.port()))
        .args(["-X", "-A", "-t", "-F", ",", "-v", "ON_ERROR_STOP=1"])
        .args(args)
        .output()
        .expect("psql runs (apt-get install postgresql-client)")
}

fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Rows of `sql` run as `footfall query` runs it (every site), as `a,b` lines.
async fn local_rows(data: &Path, sql: &str) -> Vec<String> {
    let out = footfall::query::run_scoped_sql(&DataDir::new(data), &Scope::All, sql.to_owned(), Default::default())
        .await
        .expect("query");
    let csv = output::render(&out.batches, output::Format::Csv).expect("csv");
    csv.lines().skip(1).map(str::to_owned).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_reads_its_site_runs_the_funnel_as_footfall_query_does_and_cannot_write() {
    let shops = serve_two_shops().await;
    let (pg, key) = (shops.pg, shops.bench.read_key.as_str());
    // The 4-step window_funnel of the benches, over the wire and locally: the same levels.
    let funnel = footfall::bench::sql("funnel_sql", "bench", shops.start, 3).expect("sql");
    let out = psql(pg, "bench", key, &["-c", &funnel]);
    let (got, err) = text(&out);
    assert!(out.status.success(), "{err}");
    let expected = local_rows(shops.dir.path(), &funnel).await;
    assert_eq!(got.lines().collect::<Vec<_>>(), expected);
    assert_eq!(expected.len(), 4, "four levels reached: {expected:?}");

    // The pattern aggregates over the wire: the same answers as locally, and an event list as a
    // Postgres array of timestamps with the events' own times.
    let args = "ts, name = 'product_view', name = 'add_to_cart', name = 'purchase'";
    let pattern = format!(
        "SELECT count(*) FILTER (WHERE m) AS matched, sum(c) AS carts FROM (
           SELECT visitor_id, sequence_match('(?1)(?t<=600)(?2).*(?3)', {args}) AS m,
                  sequence_count('(?1).*(?2)', {args}) AS c
           FROM events WHERE site = 'bench' GROUP BY visitor_id)"
    );
    let out = psql(pg, "bench", key, &["-c", &pattern]);
    let (got, err) = text(&out);
    assert!(out.status.success(), "{err}");
    let expected = local_rows(shops.dir.path(), &pattern).await;
    assert_eq!(got.lines().collect::<Vec<_>>(), expected);
    assert!(!expected[0].starts_with("0,"), "some visitors match: {expected:?}");
    let events = format!(
        "SELECT visitor_id, sequence_match_events('(?1)(?t<=600)(?2)', {args}) AS e FROM events
         WHERE site = 'bench' GROUP BY visitor_id HAVING sequence_match('(?1)(?t<=600)(?2)', {args})
         ORDER BY visitor_id LIMIT 1"
    );
    let out = psql(pg, "bench", key, &["-c", &events]);
    let (got, err) = text(&out);
    assert!(out.status.success(), "{err}");
    let (visitor, array) = got.trim().split_once(',').expect("two columns");
    let wire: Vec<i64> = array
        .trim_matches(['{', '}'])
        .split(',')
        .map(|t| {
            let t = t.trim_matches('"');
            chrono::DateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.f%#z")
                .unwrap_or_else(|e| panic!("{t}: {e}"))
                .timestamp_micros()
        })
        .collect();
    let local =
        footfall::query::run_scoped_sql(&DataDir::new(shops.dir.path()), &Scope::All, events, Default::default())
            .await
            .expect("query");
    let b = &local.batches[0];
    assert_eq!(visitor, b.column(0).as_string::<i32>().value(0));
    let list = b.column(1).as_list::<i32>().value(0);
    let list = arrow::compute::cast(&list, &arrow::datatypes::DataType::Int64).expect("cast");
    assert_eq!(wire, list.as_primitive::<arrow::datatypes::Int64Type>().values().to_vec());
    assert_eq!(wire.len(), 2, "a view and an add to cart: {got}");

    // A list of structs (`items`) and a map (`props`), which Postgres has no type for, as JSON.
    let out = psql(
        pg,
        "bench",
        key,
        &[
            "-c",
            "SELECT items FROM events WHERE name = 'purchase' LIMIT 1",
            "-c",
            "SELECT props FROM events WHERE name = '$exposure' LIMIT 1",
        ],
    );
    let (got, err) = text(&out);
    assert!(out.status.success(), "{err}");
    let lines: Vec<Value> =
        got.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"))).collect();
    assert!(lines[0][0]["id"].is_string() && lines[0][0]["price"].is_number(), "{got}");
    assert!(lines[1]["experiment"].is_string() && lines[1]["variant"].is_string(), "{got}");

    // The site's own rows only: the other site's are not in its `events`.
    let out = psql(
        pg,
        "bench",
        key,
        &["-c", "SELECT DISTINCT site FROM events", "-c", "SELECT count(*) FROM events WHERE site = 'other'"],
    );
    assert_eq!(text(&out).0, "bench\n0\n", "{}", text(&out).1);

    // psql's own catalog queries: the views and a view's columns with Postgres types.
    let out = psql(pg, "bench", key, &["-c", "\\dv", "-c", "\\d events"]);
    let (got, err) = text(&out);
    assert!(out.status.success(), "{err}");
    for line in [
        "public,events,view,",
        "public,identities,view,",
        "revenue,numeric",
        "ts,timestamp with time zone",
        "date,date",
    ] {
        assert!(got.contains(line), "{line:?} missing from:\n{got}");
    }

    // Writes of every kind are refused, and nothing is written.
    let file = shops.dir.path().join("copied.csv");
    for sql in [
        "CREATE TABLE t AS SELECT 1".to_owned(),
        format!("COPY (SELECT 1) TO '{}'", file.display()),
        "INSERT INTO events (name) VALUES ('x')".to_owned(),
        "DROP VIEW events".to_owned(),
    ] {
        let out = psql(pg, "bench", key, &["-c", &sql]);
        let (_, err) = text(&out);
        assert!(!out.status.success() && err.contains("ERROR"), "{sql} was not refused: {err}");
    }
    assert!(!file.exists());
    let out = psql(pg, "bench", key, &["-c", "SELECT count(*) FROM events WHERE site = 'bench' AND name = 'x'"]);
    assert_eq!(text(&out).0, "0\n");

    // A DataFusion setting is accepted and ignored (it would lift the memory limit); the
    // Postgres ones behave as Postgres's.
    let out = psql(
        pg,
        "bench",
        key,
        &[
            "-q",
            "-c",
            "SET datafusion.runtime.memory_limit = '100G'",
            "-c",
            "SET application_name = 'notebook'",
            "-c",
            "SHOW application_name",
        ],
    );
    assert_eq!(text(&out).0, "notebook\n", "{}", text(&out).1);

    // The row limit of /api/sql: 100,000 rows, and a NOTICE saying so.
    let out = psql(pg, "bench", key, &["-c", "SELECT value FROM generate_series(1, 100005)"]);
    let (got, err) = text(&out);
    assert!(out.status.success(), "{err}");
    assert_eq!(got.lines().count(), 100_000);
    assert!(err.contains("NOTICE:  footfall: the result was cut at 100000 rows"), "{err}");
    shops.srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_keys_are_refused_and_the_admin_user_sees_every_site() {
    let shops = serve_two_shops().await;
    let pg = shops.pg;
    let refused = |user: &str, password: &str| {
        let out = psql(pg, user, password, &["-c", "SELECT 1"]);
        let (_, err) = text(&out);
        assert!(!out.status.success(), "{user} logged in with a wrong key");
        assert!(err.contains(&format!("Password authentication failed for user \"{user}\"")), "{user}: {err}");
    };
    refused("bench", &shops.other.read_key); // another site's read key
    refused("bench", &shops.bench.write_key); // its own write key: writes, not reads
    refused("nosuch", &shops.bench.read_key); // no such site: the same answer
    refused(ADMIN_USER, &shops.bench.read_key);
    let out =
        psql(pg, ADMIN_USER, ADMIN_KEY, &["-c", "SELECT site, count(*) > 0 FROM events GROUP BY site ORDER BY site"]);
    assert_eq!(text(&out).0, "bench,t\nother,t\n", "{}", text(&out).1);
    // Each site's key reads its own.
    let out = psql(pg, "other", &shops.other.read_key, &["-c", "SELECT DISTINCT site FROM events"]);
    assert_eq!(text(&out).0, "other\n", "{}", text(&out).1);
    shops.srv.shutdown().await;
}

/// psycopg, SQLAlchemy and pandas, pinned (tests/postgres/requirements.txt).
fn python_with_bi_libraries() -> PathBuf {
    crate::support::python_venv("postgres")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psycopg_sqlalchemy_and_pandas_connect_introspect_and_query() {
    let python = python_with_bi_libraries();
    let shops = serve_two_shops().await;
    let funnel = footfall::bench::sql("funnel_sql", "bench", shops.start, 3).expect("sql");
    let funnel_file = shops.dir.path().join("funnel.sql");
    std::fs::write(&funnel_file, &funnel).expect("write");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/postgres/bi.py");
    let out = Command::new(&python)
        .arg(&script)
        .args([&shops.pg.ip().to_string(), &shops.pg.port().to_string(), "bench", &shops.bench.read_key])
        .arg(&funnel_file)
        .output()
        .expect("python runs");
    let (said, err) = text(&out);
    assert!(out.status.success(), "{said}{err}");
    let got: Value = serde_json::from_str(said.trim()).expect("one JSON object");

    // Every statement of the connect-and-introspect sequence ran (the script stops at a failure).
    assert_eq!(got["connect"].as_array().map(Vec::len), Some(15), "{got}");
    let names = |v: &Value| {
        v.as_array().expect("list").iter().map(|s| s.as_str().expect("name").to_owned()).collect::<Vec<_>>()
    };
    assert_eq!(names(&got["tables"]), ["events", "identities", "person_events", "predictions", "session_hours"]);
    assert_eq!(names(&got["sqlalchemy_views"]), ["events", "identities", "person_events", "session_hours"]);
    assert_eq!(names(&got["sqlalchemy_columns"]), ["event_id", "ts", "client_ts", "name"]);
    assert_eq!(names(&got["sites"]), ["bench"]);

    // The prepared statement, executed twice with different parameters.
    let count = |name: &str| {
        format!("SELECT count(*) FROM events WHERE site = 'bench' AND name = '{name}' AND date >= DATE '2026-01-01'")
    };
    let purchases = local_rows(shops.dir.path(), &count("purchase")).await;
    let pageviews = local_rows(shops.dir.path(), &count("pageview")).await;
    assert_eq!(
        got["prepared"],
        serde_json::json!([purchases[0].parse::<u64>().expect("n"), pageviews[0].parse::<u64>().expect("n")])
    );

    // The funnel through psycopg and through pandas.read_sql: footfall query's numbers.
    let expected: Vec<Vec<u64>> = local_rows(shops.dir.path(), &funnel)
        .await
        .iter()
        .map(|line| line.split(',').map(|n| n.parse().expect("number")).collect())
        .collect();
    assert_eq!(got["funnel_psycopg"], serde_json::json!(expected));
    assert_eq!(got["funnel_pandas"], serde_json::json!(expected));

    // pandas with bound parameters.
    let carts = local_rows(shops.dir.path(), &count("add_to_cart")).await;
    assert_eq!(got["pandas_params"][0]["name"], "add_to_cart");
    assert_eq!(got["pandas_params"][0]["n"].to_string(), carts[0]);

    // A write is refused with Postgres's read-only SQLSTATE, and the connection goes on.
    assert!(got["create"].as_str().is_some_and(|s| s.starts_with("25006: only read-only queries")), "{got}");
    assert_eq!(got["after_refusal"], 1);
    shops.srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_certificate_every_connection_uses_tls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sites = Sites::open(&DataDir::new(dir.path()).sites_file()).expect("sites");
    let shop = sites.add(SiteId::parse("shop").expect("id"), &[]).expect("add");
    let tls = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/postgres/tls");
    let mut opts = options(dir.path());
    opts.pg_listen = Some("127.0.0.1:0".parse().expect("addr"));
    opts.pg_tls = Some(footfall::server::postgres::TlsFiles { cert: tls.join("cert.pem"), key: tls.join("key.pem") });
    let srv = TestServer::start(opts).await;
    let pg = srv.running.as_ref().and_then(|r| r.pg_addr).expect("Postgres is on");
    let connect = |mode: &str| {
        Command::new("psql")
            .env("PGPASSWORD", &shop.read_key)
            .arg(format!("host={} port={} user=shop sslmode={mode}", pg.ip(), pg.port()))
            .args(["-X", "-c", "\\conninfo", "-c", "SELECT 1"])
            .output()
            .expect("psql runs")
    };
    // psql asks for TLS the Postgres way (SSLRequest) and gets it.
    let out = connect("require");
    assert!(out.status.success(), "{}", text(&out).1);
    assert!(text(&out).0.contains("SSL connection (protocol: TLSv1.3"), "{}", text(&out).0);
    // libpq 17+'s direct TLS (no SSLRequest; ALPN `postgresql`), through psycopg's libpq.
    let python = python_with_bi_libraries();
    let direct = Command::new(&python)
        .args([
            "-c",
            "import psycopg, sys; c = psycopg.connect(host=sys.argv[1], port=int(sys.argv[2]), user='shop', password=sys.argv[3], \
             dbname='footfall', sslmode='require', sslnegotiation='direct'); print(c.pgconn.ssl_in_use, c.execute('SELECT 1').fetchone()[0])",
        ])
        .args([&pg.ip().to_string(), &pg.port().to_string(), &shop.read_key])
        .output()
        .expect("python runs");
    assert_eq!(text(&direct).0.trim(), "True 1", "{}", text(&direct).1);
    // Without TLS the login is refused before any key is checked.
    let out = connect("disable");
    assert!(!out.status.success());
    assert!(text(&out).1.contains("requires TLS (sslmode=require)"), "{}", text(&out).1);
    srv.shutdown().await;
}
