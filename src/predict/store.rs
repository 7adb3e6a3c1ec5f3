//! Where a fit lives: `models/site=<site>/model.json` and `people.parquet` under the data
//! directory (people first, then the model, each written to a temporary file and renamed, so a
//! reader sees a whole fit or the previous one), and the server's background refits.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Builder, RecordBatch, StringBuilder, UInt64Builder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::{Config, Model, Person};
use crate::model::SiteId;
use crate::store::paths::DataDir;

/// The columns of `people.parquet` (and of the SQL table `predictions`, with `site`).
pub fn people_schema() -> SchemaRef {
    let f = |n: &str| Field::new(n, DataType::Float64, true);
    let t = |n: &str| Field::new(n, DataType::Utf8, true);
    Arc::new(Schema::new(vec![
        Field::new("person_id", DataType::Utf8, false),
        Field::new("orders", DataType::UInt64, false),
        Field::new("revenue", DataType::Float64, false),
        f("frequency"),
        f("recency_days"),
        f("age_days"),
        f("p_alive"),
        f("expected_purchases"),
        f("expected_order_value"),
        f("predicted_value"),
        f("purchase_probability"),
        t("top_features"),
        t("top_category"),
        f("category_share"),
        t("recent_products"),
        t("bought_products"),
    ]))
}

fn batch(people: &[Person]) -> Result<RecordBatch, arrow::error::ArrowError> {
    let text = |f: &dyn Fn(&Person) -> Option<String>| {
        let mut b = StringBuilder::new();
        people.iter().for_each(|p| b.append_option(f(p)));
        Arc::new(b.finish()) as ArrayRef
    };
    let num = |f: &dyn Fn(&Person) -> Option<f64>| {
        let mut b = Float64Builder::new();
        people.iter().for_each(|p| b.append_option(f(p)));
        Arc::new(b.finish()) as ArrayRef
    };
    let list = |v: &[String]| (!v.is_empty()).then(|| v.join(" "));
    let mut orders = UInt64Builder::new();
    people.iter().for_each(|p| orders.append_value(p.orders));
    RecordBatch::try_new(
        people_schema(),
        vec![
            text(&|p| Some(p.person_id.clone())),
            Arc::new(orders.finish()),
            num(&|p| Some(p.revenue)),
            num(&|p| p.frequency),
            num(&|p| p.recency_days),
            num(&|p| p.age_days),
            num(&|p| p.p_alive),
            num(&|p| p.expected_purchases),
            num(&|p| p.expected_order_value),
            num(&|p| p.predicted_value),
            num(&|p| p.purchase_probability),
            text(&|p| p.top_features.clone()),
            text(&|p| p.top_category.clone()),
            num(&|p| p.category_share),
            text(&|p| list(&p.recent_products)),
            text(&|p| list(&p.bought_products)),
        ],
    )
}

fn io(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

fn replace(path: &Path, write: impl FnOnce(std::fs::File) -> std::io::Result<()>) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    write(std::fs::File::create(&tmp)?)?;
    std::fs::rename(&tmp, path)
}

/// Write a fit of `site`.
pub fn save(data: &DataDir, site: &SiteId, model: &Model, people: &[Person]) -> std::io::Result<()> {
    let dir = data.model_dir(site);
    std::fs::create_dir_all(&dir)?;
    let b = batch(people).map_err(io)?;
    replace(&dir.join("people.parquet"), |f| {
        let mut w = parquet::arrow::ArrowWriter::try_new(f, b.schema(), None).map_err(io)?;
        w.write(&b).map_err(io)?;
        w.close().map_err(io)?;
        Ok(())
    })?;
    replace(&dir.join("model.json"), |f| serde_json::to_writer(std::io::BufWriter::new(f), model).map_err(io))
}

/// One fit of a site at a time in this process: a report asking for a first fit while the
/// background one runs waits for it instead of fitting again.
fn fitting(data: &DataDir, site: &SiteId) -> Arc<tokio::sync::Mutex<()>> {
    type Locks = std::sync::Mutex<std::collections::HashMap<(std::path::PathBuf, String), Arc<tokio::sync::Mutex<()>>>>;
    static LOCKS: std::sync::LazyLock<Locks> = std::sync::LazyLock::new(Locks::default);
    let mut locks = LOCKS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    locks.entry((data.root().to_owned(), site.as_str().to_owned())).or_default().clone()
}

/// Fit `site` and save the fit (readers of `predictions` and the reports see it at once; a
/// server then [`super::recommend::install`]s it).
pub async fn refit(
    env: &crate::reports::Env,
    site: &SiteId,
    config: &Config,
) -> crate::reports::Result<(Model, Vec<Person>)> {
    let lock = fitting(&env.data, site);
    let _one = lock.lock().await;
    fit_and_save(env, site, config).await
}

/// The last fit of `site`; if there is none, one made now (and installed for recommendations),
/// or the one another task of this process is making. `true` when this call made it.
pub async fn last_or_fit(env: &crate::reports::Env, site: &SiteId) -> crate::reports::Result<(Model, bool)> {
    if let Some(m) = load(&env.data, site) {
        return Ok((m, false));
    }
    let lock = fitting(&env.data, site);
    let _one = lock.lock().await;
    if let Some(m) = load(&env.data, site) {
        return Ok((m, false));
    }
    let (model, people) = fit_and_save(env, site, &Config::default()).await?;
    super::recommend::install(&env.data, site, &model, &people);
    Ok((model, true))
}

async fn fit_and_save(
    env: &crate::reports::Env,
    site: &SiteId,
    config: &Config,
) -> crate::reports::Result<(Model, Vec<Person>)> {
    let (model, people) = super::fit(env, site, config).await?;
    save(&env.data, site, &model, &people)
        .map_err(|source| crate::query::Error::Io { path: env.data.model_dir(site), source })?;
    Ok((model, people))
}

/// The last fit of `site`, if any.
pub fn load(data: &DataDir, site: &SiteId) -> Option<Model> {
    let bytes = std::fs::read(data.model_dir(site).join("model.json")).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// When the last fit of `site` was written (to notice a new one).
pub(crate) fn stamp(data: &DataDir, site: &SiteId) -> Option<std::time::SystemTime> {
    std::fs::metadata(data.model_dir(site).join("model.json")).and_then(|m| m.modified()).ok()
}

/// Forget every fit of `site` (after a person is erased: the next fit is made without them).
pub fn remove(data: &DataDir, site: &SiteId) -> std::io::Result<()> {
    match std::fs::remove_dir_all(data.model_dir(site)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The per-person rows of the last fit of `site`.
pub fn load_people(data: &DataDir, site: &SiteId) -> std::io::Result<Vec<Person>> {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Float64Type, UInt64Type};
    let f = std::fs::File::open(data.model_dir(site).join("people.parquet"))?;
    let reader =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f).map_err(io)?.build().map_err(io)?;
    let mut out = Vec::new();
    for b in reader {
        let b = b.map_err(io)?;
        let text = |n: &str, i: usize| {
            let c = b.column_by_name(n)?.as_string::<i32>();
            (!c.is_null(i)).then(|| c.value(i).to_owned())
        };
        let num = |n: &str, i: usize| {
            let c = b.column_by_name(n)?.as_primitive::<Float64Type>();
            (!c.is_null(i)).then(|| c.value(i))
        };
        let list =
            |n: &str, i: usize| text(n, i).map(|s| s.split(' ').map(str::to_owned).collect()).unwrap_or_default();
        let orders = b.column_by_name("orders").map(|c| c.as_primitive::<UInt64Type>().clone());
        for i in 0..b.num_rows() {
            out.push(Person {
                person_id: text("person_id", i).unwrap_or_default(),
                orders: orders.as_ref().map_or(0, |o| o.value(i)),
                revenue: num("revenue", i).unwrap_or(0.0),
                frequency: num("frequency", i),
                recency_days: num("recency_days", i),
                age_days: num("age_days", i),
                p_alive: num("p_alive", i),
                expected_purchases: num("expected_purchases", i),
                expected_order_value: num("expected_order_value", i),
                predicted_value: num("predicted_value", i),
                purchase_probability: num("purchase_probability", i),
                top_features: text("top_features", i),
                top_category: text("top_category", i),
                category_share: num("category_share", i),
                recent_products: list("recent_products", i),
                bought_products: list("bought_products", i),
            });
        }
    }
    Ok(out)
}

/// Refit every site of `data` every `every`, starting now, on the query runtime; each fit is
/// saved and its recommendations index replaces the previous one. A failed fit is logged and
/// the previous fit stays.
pub async fn refresher(
    data: DataDir,
    limits: crate::query::QueryLimits,
    config: Config,
    every: std::time::Duration,
    now_micros: impl Fn() -> i64 + Send + 'static,
) {
    loop {
        let sites: Vec<SiteId> = match data.partitions() {
            Ok(p) => {
                let mut s: Vec<SiteId> = p.into_iter().map(|(s, _)| s).collect();
                s.sort_by(|a, b| a.as_str().cmp(b.as_str()));
                s.dedup();
                s
            }
            Err(e) => {
                tracing::warn!(error = %e, "predictions: cannot list the sites");
                Vec::new()
            }
        };
        for site in sites {
            let env = crate::reports::Env {
                data: data.clone(),
                scope: crate::query::Scope::All,
                limits,
                now_micros: now_micros(),
            };
            match refit(&env, &site, &config).await {
                Ok((model, people)) => {
                    super::recommend::install(&data, &site, &model, &people);
                    tracing::info!(site = %site, seconds = model.seconds, people = people.len(), "predictions refitted");
                }
                Err(e) => tracing::warn!(site = %site, error = %e, "predictions: fit failed"),
            }
        }
        tokio::time::sleep(every).await;
    }
}
