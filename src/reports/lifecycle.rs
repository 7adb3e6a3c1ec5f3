//! Lifecycle: per period, how the active people split into **new** (their first event ever is
//! in this period), **returning** (active in the previous period too), **resurrecting** (not
//! active in the previous period, but before it), and the **dormant** ones (active in the
//! previous period, not in this one). "Active" means any event, or the `event` given (with its
//! filters), after the global filters. `quick_ratio` is (new + resurrecting) ÷ dormant: above 1
//! the active base grows.

use std::collections::HashMap;

use chrono::{Duration, NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};

use super::sql::MAX_MASK_PERIODS;
use super::{Checked, DateRange, Env, EventMatch, Filter, Period, RanSql, Result, Rows, Sql, invalid, round2, run};

fn default_period() -> Period {
    Period::Week
}

/// `POST /api/reports/lifecycle`.
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LifecycleRequest {
    pub site: String,
    pub date_range: DateRange,
    #[serde(default = "super::utc")]
    pub timezone: String,
    #[serde(default)]
    pub filters: Vec<Filter>,
    /// Only people in this segment: a definition or a template id (see segments).
    #[serde(default)]
    pub segment: Option<serde_json::Value>,
    /// day, week (default) or month.
    #[serde(default = "default_period")]
    pub period: Period,
    /// What counts as being active (default: any event).
    #[serde(default)]
    pub event: Option<EventMatch>,
}

/// The activity condition, filters, site parameter and last UTC date of a request's SQL.
struct Conditions {
    active: String,
    filters: String,
    site: String,
    last_date: NaiveDate,
}

/// One period.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct LifecyclePeriod {
    pub period: String,
    pub new: u64,
    pub returning: u64,
    pub resurrecting: u64,
    pub dormant: u64,
    /// new + returning + resurrecting.
    pub active: u64,
    /// (new + resurrecting) ÷ dormant; none without dormant people.
    pub quick_ratio: Option<f64>,
    /// False for the period still running.
    pub complete: bool,
}

/// The report.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct LifecycleResponse {
    pub period: Period,
    pub timezone: String,
    pub periods: Vec<LifecyclePeriod>,
    pub sql: Vec<RanSql>,
}

impl LifecycleRequest {
    fn check(&self) -> Result<Checked> {
        let (c, _) = super::check_common(&self.site, self.date_range, &self.timezone, &self.filters, None)?;
        if self.period == Period::Hour {
            return Err(invalid("period", "lifecycle periods are day, week or month"));
        }
        Ok(c)
    }

    /// Local starts: the period before the range, then every period of the range.
    fn starts(&self, c: &Checked) -> Vec<NaiveDateTime> {
        let mut starts = c.period_starts(self.period, self.date_range);
        let first = starts.first().copied().unwrap_or_default();
        starts.insert(0, c.period_start(self.period, first - Duration::seconds(1)));
        starts
    }

    /// What both forms of the SQL select by, bound in `q`.
    fn conditions(&self, c: &Checked, q: &mut Sql) -> Result<Conditions> {
        let active = match &self.event {
            Some(m) => format!(" AND {}", m.condition(q, "event")?),
            None => String::new(),
        };
        let filters = c.filters_sql(q);
        let site = q.bind(c.site.as_str());
        let (_, end) = c.bounds(self.date_range);
        let last_date = (end - Duration::microseconds(1)).date_naive();
        Ok(Conditions { active, filters, site, last_date })
    }

    /// The SQL over up to [`MAX_MASK_PERIODS`] periods (the one before the range included): one aggregation by person over every
    /// row up to the range's end, giving the first time ever and a bit per period active in
    /// (`bit_or`), then the people counted per (bits, first period): a few thousand rows
    /// instead of one per person and period, and no join. Over `session_hours` when `sessions`.
    fn mask_sql(&self, c: &Checked, starts: &[NaiveDateTime], sessions: bool) -> Result<(String, Sql)> {
        let mut q = Sql::default();
        let (_, end) = c.bounds(self.date_range);
        let start = c.midnight(starts[0].date());
        let (table, time) = if sessions { ("session_hours", "hour") } else { ("events", "ts") };
        let Conditions { active, filters, site, last_date } = self.conditions(c, &mut q)?;
        // A period's index: its local start (as `bucket_sql` gives it, an instant) looked up
        // among the starts, so any time zone and period length is exact.
        let index = |t: &str| {
            let whens: String = starts
                .iter()
                .enumerate()
                .map(|(i, s)| format!(" WHEN {} THEN {i}", c.midnight(s.date()).timestamp_micros()))
                .collect();
            format!("CASE CAST({} AS BIGINT){whens} END", c.bucket_sql(self.period, t))
        };
        let sql = format!(
            "WITH per AS (
  SELECT person_id, min({time}) AS first_t,
    bit_or(CASE WHEN {time} >= {start_ts} THEN CAST(1 AS BIGINT) << {row_index} END) AS mask
  FROM {table}
  WHERE site = {site} AND date <= DATE '{last_date}' AND {time} < {end_ts}{active}{filters}
  GROUP BY person_id
)
SELECT mask, {first_index} AS first_i, count(*) AS people
FROM per WHERE person_id IS NOT NULL AND mask <> 0
GROUP BY mask, first_i",
            start_ts = super::ts_literal(start),
            end_ts = super::ts_literal(end),
            row_index = index(time),
            first_index = index("first_t"),
        );
        Ok((sql, q))
    }

    /// The SQL past [`MAX_MASK_PERIODS`]: each person's active periods and the period of their
    /// first activity ever, over `session_hours` when `sessions` (any activity, session-level
    /// filters) or events.
    fn sql(&self, c: &Checked, from: NaiveDateTime, sessions: bool) -> Result<(String, Sql)> {
        let mut q = Sql::default();
        let (_, end) = c.bounds(self.date_range);
        let start = c.midnight(from.date());
        let (table, time) = if sessions { ("session_hours", "hour") } else { ("events", "ts") };
        let range = c.range_sql_on(&mut q, start, end, time);
        let Conditions { active, filters, site, last_date } = self.conditions(c, &mut q)?;
        // The first period of a person is the period of their first time (periods only grow
        // with time), so the minimum is taken before bucketing: one bucket per person, not per row.
        let sql = format!(
            "WITH act AS (
  SELECT DISTINCT person_id, {bucket} AS p FROM {table}
  WHERE {range}{active}{filters}
),
firsts AS (
  SELECT person_id, min({time}) AS first_t FROM {table}
  WHERE site = {site} AND date <= DATE '{last_date}' AND {time} < {end_ts}{active}{filters}
  GROUP BY person_id
)
SELECT a.person_id, a.p, {first_p} AS first_p FROM act a JOIN firsts f ON a.person_id = f.person_id
ORDER BY a.person_id, a.p",
            bucket = c.bucket_sql(self.period, time),
            first_p = c.bucket_sql(self.period, "f.first_t"),
            end_ts = super::ts_literal(end),
        );
        Ok((sql, q))
    }
}

/// Run a lifecycle report.
pub async fn lifecycle(env: &Env, req: &LifecycleRequest) -> Result<LifecycleResponse> {
    lifecycle_with(env, req, true).await
}

/// A lifecycle report counted from bits per person when `masks` allows it (up to
/// [`MAX_MASK_PERIODS`] periods), else from one row per person and period. The answer does not
/// depend on it (a property test compares the two).
pub async fn lifecycle_with(env: &Env, req: &LifecycleRequest, masks: bool) -> Result<LifecycleResponse> {
    let mut c = req.check()?;
    c.prepare(req.segment.as_ref(), env)?;
    let starts = req.starts(&c);
    // Session hours hold every activity (not one event's) and the session-level dimensions.
    let range = DateRange { from: starts[0].date(), to: req.date_range.to };
    let sessions = req.event.is_none() && c.session_hours_answer(&env.data, range, &[], Some(NaiveDate::MIN));
    let masks = masks && starts.len() <= MAX_MASK_PERIODS;
    let (sql, q) = if masks { req.mask_sql(&c, &starts, sessions)? } else { req.sql(&c, starts[0], sessions)? };
    let ctx = env.session(&c.site).await?;
    let batches = run(&ctx, &sql, &q, &env.limits).await?;
    // Groups of people alike: their active periods (indexes into `starts`), the index of their
    // first ever, and how many they are.
    let mut people: Vec<(Vec<bool>, Option<usize>, u64)> = Vec::new();
    if masks {
        Rows::new(&batches).each(|r| {
            let mask = r.micros("mask").unwrap_or(0);
            let active = (0..starts.len()).map(|i| (mask >> i) & 1 == 1).collect();
            let first = r.micros("first_i").and_then(|i| usize::try_from(i).ok());
            people.push((active, first, r.u64("people")));
        });
    } else {
        let index: HashMap<NaiveDateTime, usize> = starts.iter().enumerate().map(|(i, t)| (*t, i)).collect();
        let mut by_person: HashMap<String, (Vec<bool>, Option<usize>)> = HashMap::new();
        Rows::new(&batches).each(|r| {
            let (Some(person), Some(p)) = (r.text("person_id"), c.bucket_of(r, "p")) else { return };
            let first = c.bucket_of(r, "first_p").and_then(|f| index.get(&f).copied());
            let e = by_person.entry(person).or_insert_with(|| (vec![false; starts.len()], first));
            if let Some(&i) = index.get(&p) {
                e.0[i] = true;
            }
        });
        people.extend(by_person.into_values().map(|(active, first)| (active, first, 1)));
    }
    // The period before the range is read whole, so only the end can cut one.
    let until = c.complete_until(req.date_range, env.now());
    let mut periods: Vec<LifecyclePeriod> = starts[1..]
        .iter()
        .map(|t| LifecyclePeriod {
            period: req.period.label(*t),
            new: 0,
            returning: 0,
            resurrecting: 0,
            dormant: 0,
            active: 0,
            quick_ratio: None,
            complete: req.period.next(*t) <= until,
        })
        .collect();
    for (active, first, n) in &people {
        for k in 1..starts.len() {
            let out = &mut periods[k - 1];
            match (active[k], active[k - 1]) {
                (true, _) if *first == Some(k) => out.new += n,
                (true, true) => out.returning += n,
                (true, false) => out.resurrecting += n,
                (false, true) => out.dormant += n,
                (false, false) => {}
            }
        }
    }
    for p in &mut periods {
        p.active = p.new + p.returning + p.resurrecting;
        p.quick_ratio = (p.dormant > 0).then(|| round2((p.new + p.resurrecting) as f64 / p.dormant as f64));
    }
    Ok(LifecycleResponse {
        period: req.period,
        timezone: c.tz.name().to_owned(),
        periods,
        sql: vec![RanSql { sql, params: q.params }],
    })
}
