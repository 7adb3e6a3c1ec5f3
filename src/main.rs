//! The `footfall` command: parse arguments, set up logging, call into the library.

use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use footfall::config::{BenchCommand, Cli, Command, SegmentCommand, SiteCommand};
use footfall::model::SiteId;
use footfall::store::{Flusher, StoreGuard, compact, paths::DataDir};
use footfall::wal::{FsyncMode, Wal, WalOptions};
use footfall::{clock::SystemClock, server, sites::Sites};
use tokio::signal::unix::{SignalKind, signal};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match Cli::parse().command {
        Command::Serve(args) => serve(args).await,
        Command::Site(SiteCommand::Add { id, domains, week_start, data }) => {
            let id = SiteId::parse(&id)?;
            let sites = Sites::open(&DataDir::new(&data.data).sites_file())?;
            let mut site = sites.add(id, &domains)?;
            if week_start != site.week_start {
                site = sites.set_week_start(&site.id, week_start)?;
            }
            println!(
                "site:       {}\ndomains:    {}\nweek start: {:?}\nwrite key:  {}\nread key:   {}",
                site.id,
                site.domains.join(", "),
                site.week_start,
                site.write_key,
                site.read_key
            );
            Ok(())
        }
        Command::Site(SiteCommand::Set { id, week_start, retention_days, keep_forever, data }) => {
            let id = SiteId::parse(&id)?;
            let sites = Sites::open(&DataDir::new(&data.data).sites_file())?;
            let mut site = sites.get(id.as_str()).with_context(|| format!("no site {id}"))?.as_ref().clone();
            if let Some(w) = week_start {
                site = sites.set_week_start(&id, w)?;
            }
            if retention_days.is_some() || keep_forever {
                site = sites.set_retention(&id, retention_days)?;
            }
            let kept = site.retention_days.map_or_else(|| "everything".to_owned(), |d| format!("{d} days"));
            println!("site:       {}\nweek start: {:?}\nkeeps:      {kept}", site.id, site.week_start);
            Ok(())
        }
        Command::Site(SiteCommand::RotateKeys { id, data }) => {
            let site = Sites::open(&DataDir::new(&data.data).sites_file())?.rotate_keys(&SiteId::parse(&id)?)?;
            println!("site:       {}\nwrite key:  {}\nread key:   {}", site.id, site.write_key, site.read_key);
            Ok(())
        }
        Command::Site(SiteCommand::Remove { id, yes_delete_data, data }) => {
            remove_site_cmd(&id, yes_delete_data, &data.data).await
        }
        Command::Site(SiteCommand::List { data }) => {
            let sites = server::open_sites(&DataDir::new(&data.data))?;
            println!("{}", serde_json::to_string_pretty(&sites.list())?);
            Ok(())
        }
        Command::Segment(cmd) => segment_cmd(cmd),
        Command::Compact(args) => compact_cmd(&DataDir::new(&args.data)).await,
        Command::Forget(args) => forget_cmd(args).await,
        Command::Predict(args) => predict_cmd(args).await,
        Command::Export(args) => export_cmd(args).await,
        Command::Import(args) => import_cmd(args).await,
        Command::Rejected(args) => {
            let site = SiteId::parse(&args.site)?;
            let q = footfall::ingest::quarantine::Quarantine::new(DataDir::new(&args.data.data).rejected_dir());
            for r in q.list(site.as_str(), args.limit) {
                println!("{r}");
            }
            Ok(())
        }
        Command::Query(args) => query_cmd(args).await,
        Command::Report(args) => report_cmd(args).await,
        Command::Demo(args) => demo(args).await,
        Command::Bench(BenchCommand::Gen(args)) => bench_gen(&args),
        Command::Bench(BenchCommand::Query(args)) => {
            if args.print_sql {
                let sql = footfall::bench::sql(&args.query, &args.site, args.start, args.weeks)
                    .with_context(|| format!("{:?} is not an SQL-level query", args.query))?;
                println!("{sql}");
                return Ok(());
            }
            let data = DataDir::new(&args.data.data);
            let store = footfall::bench::Store { data: &data, site: &args.site, start: args.start, weeks: args.weeks };
            let v = footfall::bench::run_query(store, &args.query, args.runs).await?;
            println!("{v}");
            Ok(())
        }
    }
}

fn segment_cmd(cmd: SegmentCommand) -> anyhow::Result<()> {
    use footfall::reports::segments;
    match cmd {
        SegmentCommand::List { site, data } => {
            let list = segments::catalogue(&DataDir::new(&data.data), &SiteId::parse(&site)?)?;
            println!("{}", serde_json::to_string_pretty(&list)?);
        }
        SegmentCommand::Save { site, name, definition, id, data } => {
            let text = match definition.strip_prefix('@') {
                Some(path) => std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?,
                None => definition,
            };
            let def: serde_json::Value = serde_json::from_str(&text).context("the definition is not JSON")?;
            let store = footfall::saved_segments::SavedSegments::new(DataDir::new(&data.data), Arc::new(SystemClock));
            let saved = segments::save(&store, &SiteId::parse(&site)?, id.as_deref(), &name, &def)?
                .with_context(|| format!("no saved segment {:?}", id.unwrap_or_default()))?;
            println!("{}", serde_json::to_string_pretty(&saved)?);
        }
        SegmentCommand::Delete { site, id, data } => {
            let store = footfall::saved_segments::SavedSegments::new(DataDir::new(&data.data), Arc::new(SystemClock));
            if !store.delete(&SiteId::parse(&site)?, &id)? {
                anyhow::bail!("no saved segment {id:?} for site {site:?}");
            }
            println!("deleted {id}");
        }
    }
    Ok(())
}

fn bench_gen(args: &footfall::config::BenchGenArgs) -> anyhow::Result<()> {
    let cfg = footfall::shopgen::ShopConfig {
        site: SiteId::parse(&args.site)?.as_str().to_owned(),
        seed: args.seed,
        events: args.events,
        visitors: args.visitors.max(1),
        start: args.start,
        days: args.days.max(1),
    };
    let t = std::time::Instant::now();
    let data = DataDir::new(&args.data.data);
    let n = footfall::bench::generate(&data, &cfg, |day, written| {
        eprint!("\rday {}/{}: {written} events", day + 1, cfg.days);
    })?;
    eprintln!();
    println!(
        "wrote {n} events of {} visitors over {} days from {} for site {} to {} in {:.1} s",
        cfg.visitors,
        cfg.days,
        cfg.start,
        cfg.site,
        data.events_dir().display(),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn report_cmd(args: footfall::config::ReportArgs) -> anyhow::Result<()> {
    use footfall::config::ReportFormat;
    use footfall::reports::{self, Env};
    let body = match args.request.as_str() {
        "-" => std::io::read_to_string(std::io::stdin()).context("reading the request from stdin")?,
        r => match r.strip_prefix('@') {
            Some(path) => std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?,
            None => r.to_owned(),
        },
    };
    let env = Env {
        data: DataDir::new(&args.data.data),
        scope: footfall::query::Scope::All,
        limits: footfall::query::QueryLimits {
            timeout: std::time::Duration::from_secs_f64(args.timeout.max(0.001)),
            ..Default::default()
        },
        now_micros: footfall::clock::Clock::now_micros(&SystemClock),
    };
    let report = reports::registry::find(&args.kind).context("no such report")?;
    let ran = (report.run)(env, body.into_bytes()).await?;
    match args.format {
        ReportFormat::Json => println!("{}", ran.json(true)?),
        ReportFormat::Table => {
            let (text, ran_sql) = ran.text();
            print!("{text}");
            if args.show_sql {
                for sql in ran_sql {
                    println!("\n-- SQL\n{}\n-- params: {:?}", sql.sql, sql.params);
                }
            }
        }
    }
    Ok(())
}

async fn query_cmd(args: footfall::config::QueryArgs) -> anyhow::Result<()> {
    use footfall::query::{self, QueryLimits, Scope, output};
    let scope = if args.sites.is_empty() {
        Scope::All
    } else {
        Scope::Sites(args.sites.iter().map(|s| SiteId::parse(s)).collect::<Result<_, _>>()?)
    };
    let limits = QueryLimits {
        max_rows: args.max_rows,
        timeout: std::time::Duration::from_secs_f64(args.timeout.max(0.001)),
        ..QueryLimits::default()
    };
    let out = query::run_scoped_sql(&DataDir::new(&args.data.data), &scope, args.sql.clone(), limits).await?;
    print!("{}", output::render(&out.batches, args.format)?);
    if args.format == output::Format::Table {
        println!();
    }
    if out.truncated {
        eprintln!("(output cut at {} rows; use --max-rows for more)", limits.max_rows);
    }
    Ok(())
}

async fn serve(args: footfall::config::ServeArgs) -> anyhow::Result<()> {
    // Handlers first: a SIGTERM that arrives as soon as we announce the address must still
    // get the graceful path (finish requests, flush), not the default kill.
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let running = server::start(args.options(), Arc::new(SystemClock)).await?;
    println!("footfall listening on http://{}", running.addr);
    if let Some(pg) = running.pg_addr {
        println!("footfall speaking Postgres on {pg} (user: a site id, password: its read key)");
    }
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("shutting down: finishing requests, then flushing");
    running.shutdown().await;
    Ok(())
}

async fn demo(args: footfall::config::DemoArgs) -> anyhow::Result<()> {
    use footfall::demo::{DemoConfig, prepare};
    let t = std::time::Instant::now();
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let cfg = DemoConfig { seed: args.seed, events: args.events, visitors: args.visitors, days: args.days };
    let data = DataDir::new(&args.data);
    eprintln!("generating the demo shop in {} ...", args.data.display());
    let ready = tokio::task::spawn_blocking(move || prepare(&data, &cfg, chrono::Utc::now())).await??;
    // A fresh admin key each start: it saves segments on the dashboard, which a read key may not.
    let admin = footfall::sites::new_key("ffa");
    // Served exactly as `footfall serve --data <demo dir> --listen <addr> --admin-key <key>` would be.
    let serve = ServeOnly::try_parse_from([
        "footfall-demo",
        "--data",
        &args.data.to_string_lossy(),
        "--listen",
        &args.listen.to_string(),
        "--admin-key",
        &admin,
    ])?;
    let running = server::start(serve.args.options(), Arc::new(SystemClock)).await?;
    let live = (!args.no_live).then(|| {
        tokio::spawn(footfall::demo::live_visitors(running.ingestor.clone(), std::time::Duration::from_secs(3)))
    });
    let url = format!("http://{}", running.addr);
    println!(
        "footfall demo: {} events of site {:?}, {} to today, ready in {:.1} s\n\
         dashboard: {url}/#key={}\n\
         read key:  {}\n\
         admin key: {admin} (saves segments; sign in with it, or open {url}/#key={admin})\n\
         footfall listening on {url}",
        ready.events,
        footfall::demo::SITE,
        ready.shop.start,
        t.elapsed().as_secs_f64(),
        ready.read_key,
        ready.read_key,
    );
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    if let Some(live) = live {
        live.abort();
    }
    running.shutdown().await;
    Ok(())
}

/// `footfall serve`'s options alone, to serve the demo with `serve`'s defaults.
#[derive(clap::Parser)]
struct ServeOnly {
    #[command(flatten)]
    args: footfall::config::ServeArgs,
}

/// `footfall predict`: fit a site's models now and save them (readers see the new fit at once).
async fn predict_cmd(args: footfall::config::PredictArgs) -> anyhow::Result<()> {
    let site = SiteId::parse(&args.site)?;
    let config = footfall::predict::Config {
        purchase_window_days: args.purchase_window_days.clamp(1, 365),
        value_horizon_days: args.value_horizon_days.clamp(1, 3650),
    };
    let env = footfall::reports::Env {
        data: DataDir::new(&args.data.data),
        scope: footfall::query::Scope::All,
        limits: footfall::query::QueryLimits { timeout: std::time::Duration::from_secs(3600), ..Default::default() },
        now_micros: footfall::clock::Clock::now_micros(&SystemClock),
    };
    let (model, people) = footfall::predict::refit(&env, &site, &config).await?;
    println!("{}", serde_json::to_string_pretty(&model)?);
    eprintln!("fitted {} people in {:.1} s", people.len(), model.seconds);
    Ok(())
}

/// `footfall forget`: flush the write-ahead log (so what it holds is in the files), then forget.
async fn forget_cmd(args: footfall::config::ForgetArgs) -> anyhow::Result<()> {
    let data = DataDir::new(&args.data.data);
    let site = SiteId::parse(&args.site)?;
    let who = args.person.subject().context("name the person with --user or --visitor")?;
    let (_lock, guard, _) = take_store(&data, "footfall forget").await?;
    let now = chrono::Utc::now().timestamp_micros();
    let done =
        tokio::task::spawn_blocking(move || footfall::store::forget::forget(&data, &guard, &site, &who, now)).await??;
    println!(
        "forgot {} events on {} devices, rewrote {} partitions (logged in audit.log)",
        done.events, done.visitors, done.partitions
    );
    Ok(())
}

/// `footfall site remove`: flush the log (its events of the site go with the rest), take the
/// site out of the registry, then delete its data.
async fn remove_site_cmd(id: &str, confirmed: bool, dir: &std::path::Path) -> anyhow::Result<()> {
    let site = SiteId::parse(id)?;
    let data = DataDir::new(dir);
    let sites = Sites::open(&data.sites_file())?;
    sites.get(site.as_str()).with_context(|| format!("no site {site}"))?;
    anyhow::ensure!(confirmed, "removing site {site} deletes all of its data: add --yes-delete-data to confirm");
    let (_lock, guard, _) = take_store(&data, "footfall site remove").await?;
    sites.remove(&site)?;
    use footfall::saved_segments::{Kind, SavedSegments};
    let segments = SavedSegments::new(data.clone(), Arc::new(SystemClock)).delete_site(&site)?;
    let views = SavedSegments::of(Kind::Views, data.clone(), Arc::new(SystemClock)).delete_site(&site)?;
    let now = chrono::Utc::now().timestamp_micros();
    let days = footfall::store::forget::remove_site(&data, &guard, &site, now)?;
    println!(
        "removed site {site}: {days} days of events, {segments} saved segments, {views} saved views (logged in audit.log)"
    );
    Ok(())
}

/// `footfall import`: under the data directory's lock, with a progress bar on stderr.
async fn import_cmd(args: footfall::config::ImportArgs) -> anyhow::Result<()> {
    use footfall::import::{ImportOptions, import};
    let data = DataDir::new(&args.data.data);
    let site = SiteId::parse(&args.site)?;
    let _lock = server::lock_data_dir(&data)
        .context("footfall import needs the data directory to itself (a running server takes POST /api/import)")?;
    compact::clean_leftovers(&data)?;
    let (input, size) = if args.file.as_os_str() == "-" {
        (footfall::import::Input::Stream(Box::new(std::io::BufReader::new(std::io::stdin()))), None)
    } else {
        let f = std::fs::File::open(&args.file).with_context(|| format!("opening {}", args.file.display()))?;
        let size = f.metadata().ok().map(|m| m.len());
        (footfall::import::Input::File(f), size)
    };
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(indicatif::ProgressStyle::with_template("{spinner} {msg} [{elapsed_precise}]")?);
    if let Some(size) = size {
        bar.set_message(format!("importing {} ({} MB)", args.file.display(), size >> 20));
    }
    let opts = ImportOptions { site, format: args.format, map: args.map, max_errors: args.max_errors };
    let started = std::time::Instant::now();
    let report = tokio::task::spawn_blocking({
        let bar = bar.clone();
        move || {
            import(&data, &StoreGuard::default(), &opts, input, |rows| {
                bar.set_message(format!("{rows} rows"));
                bar.tick();
            })
        }
    })
    .await??;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    for e in &report.errors {
        eprintln!("line {}: {}: {}", e.line, if e.field.is_empty() { "row" } else { &e.field }, e.message);
    }
    if report.error_count > report.errors.len() {
        eprintln!("… and {} more bad rows", report.error_count - report.errors.len());
    }
    println!(
        "imported {} events from {} rows ({} skipped, {} bad) into {} days in {:.1} s ({:.0} rows/s); those days now hold {} events",
        report.imported,
        report.rows,
        report.skipped,
        report.error_count,
        report.days,
        secs,
        report.rows as f64 / secs.max(1e-9),
        report.stored_in_days
    );
    anyhow::ensure!(!report.stopped, "stopped after more than {} bad rows (--max-errors)", args.max_errors);
    Ok(())
}

/// `footfall export`.
async fn export_cmd(args: footfall::config::ExportArgs) -> anyhow::Result<()> {
    use footfall::export::{ExportRequest, export};
    use footfall::store::forget::Subject;
    let data = DataDir::new(&args.data.data);
    let person = match (args.user, args.visitor) {
        (Some(u), _) => Some(Subject::User(u)),
        (None, Some(v)) => Some(Subject::Visitor(v)),
        (None, None) => None,
    };
    let req = ExportRequest { site: SiteId::parse(&args.site)?, from: args.from, to: args.to, person };
    let rows = match &args.out {
        Some(path) => {
            let f = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
            export(&data, &req, args.format, std::io::BufWriter::new(f)).await?
        }
        None => export(&data, &req, args.format, std::io::BufWriter::new(std::io::stdout())).await?,
    };
    eprintln!("exported {rows} events");
    Ok(())
}

/// An offline command's hold on the data directory (`who` names it if a server has it): its
/// lock, a crash's leftovers cleared, and what the write-ahead log held flushed (the rows).
async fn take_store(data: &DataDir, who: &str) -> anyhow::Result<(std::fs::File, StoreGuard, usize)> {
    let lock = server::lock_data_dir(data).with_context(|| format!("{who} needs the data directory to itself"))?;
    compact::clean_leftovers(data)?;
    let opts = WalOptions { fsync: FsyncMode::Always, max_bytes: u64::MAX, flush_after_events: u64::MAX };
    let wal = Wal::open(&data.wal_dir(), opts, Arc::new(SystemClock))?;
    let guard = StoreGuard::default();
    let rows = Flusher::new(data.clone(), wal, guard.clone()).flush().await?;
    Ok((lock, guard, rows))
}

async fn compact_cmd(data: &DataDir) -> anyhow::Result<()> {
    let (_lock, guard, rows) = take_store(data, "footfall compact").await?;
    if rows > 0 {
        println!("flushed {rows} events from the write-ahead log");
    }
    let sites = Sites::open(&data.sites_file())?;
    let today = chrono::Utc::now().date_naive();
    let (done, dropped) = tokio::task::spawn_blocking({
        let data = data.clone();
        move || -> anyhow::Result<_> {
            let dropped = footfall::store::retention::apply(&data, &guard, &sites, today)?;
            Ok((compact::compact_all(&data, &guard)?, dropped))
        }
    })
    .await??;
    if dropped > 0 {
        println!("dropped {dropped} days past their site's retention");
    }
    for c in &done {
        println!(
            "{} {}: {} files, {} rows -> 1 file, {} rows",
            c.site, c.date, c.files_before, c.rows_before, c.rows_after
        );
    }
    println!("compacted {} partitions", done.len());
    Ok(())
}
