//! Forgetting a person (GDPR art. 17, 152-FZ art. 21): every event of one person removed from
//! the site's Parquet files, its session hours and its identity map, with an audit line that
//! holds no personal data.
//!
//! A person is a user id with every visitor id linked to it (an `identify`, or an event that
//! carries the user id), or a visitor id never linked to a user. The caller flushes the
//! write-ahead log first, so what the log held is in the files ([`crate::server`], the CLI).
//!
//! Each partition holding the person is rewritten as compaction rewrites one: the kept rows in
//! one new file in a staging directory swapped with the partition in one rename, then its
//! session hours rebuilt. Partitions without the person are only read (two columns).

use std::collections::{HashMap, HashSet};
use std::io::Write as _;
use std::path::PathBuf;

use arrow::array::{Array, BooleanArray, RecordBatch};

use super::held::SiteFile as _;
use super::identity::IdentityMap;
use super::parquet::{io_err, read_columns, read_files, text_column};
use super::paths::{DataDir, data_files};
use super::{Result, StoreGuard};
use crate::model::SiteId;

/// Who to forget.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    /// A user id (the site's own customer id): with every visitor id linked to it.
    User(String),
    /// A visitor id: the whole person when it is linked to a user, else that visitor.
    Visitor(String),
}

impl Subject {
    /// A person id as reports show it: `u:<user id>` or `v:<visitor id>`.
    pub fn parse_person(id: &str) -> Option<Self> {
        match id.split_once(':') {
            Some(("u", u)) if !u.is_empty() => Some(Self::User(u.to_owned())),
            Some(("v", v)) if !v.is_empty() => Some(Self::Visitor(v.to_owned())),
            _ => None,
        }
    }
}

/// What forgetting did (counts only: this is what the audit log keeps).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Forgotten {
    /// Events removed.
    pub events: usize,
    /// Partitions (site, day) rewritten.
    pub partitions: usize,
    /// Visitor ids (devices) the person had.
    pub visitors: usize,
}

/// The person's ids: the user (if any) and every visitor id linked to it.
pub struct Person {
    pub user: Option<String>,
    pub visitors: HashSet<String>,
}

impl Person {
    /// Whether a row with this user id and visitor id is the person's.
    fn holds(&self, user: Option<&str>, visitor: &str) -> bool {
        (user.is_some() && user == self.user.as_deref()) || self.visitors.contains(visitor)
    }
}

/// Call `f` with the (user id, visitor id) of every row of `files` (two columns read).
fn each_row(files: &[PathBuf], mut f: impl FnMut(Option<&str>, &str)) -> Result<()> {
    for file in files {
        for b in read_columns(file, &["user_id", "visitor_id"])? {
            let (users, visitors) = (text_column(&b, "user_id")?, text_column(&b, "visitor_id")?);
            for i in 0..b.num_rows() {
                f(users.is_valid(i).then(|| users.value(i)), visitors.value(i));
            }
        }
    }
    Ok(())
}

/// Resolve `who` on `site`: the identity map's links, and the visitors of every event that
/// carries the user id (read from the site's files once: two columns). A visitor is its user's
/// when an `identify` linked them, or when its events carry exactly one user id (a device
/// shared by several users is forgotten alone, never with the others' data).
pub fn resolve(data: &DataDir, site: &SiteId, map: &IdentityMap, who: &Subject) -> Result<Person> {
    let files = data.site_files(site, ..).map_err(io_err(&data.events_dir()))?;
    // The user ids each visitor's events carry.
    let mut users_of: HashMap<String, HashSet<String>> = HashMap::new();
    each_row(&files, |user, visitor| {
        let Some(u) = user else { return };
        match users_of.get_mut(visitor) {
            Some(users) if users.contains(u) => {}
            Some(users) => {
                users.insert(u.to_owned());
            }
            None => {
                users_of.insert(visitor.to_owned(), HashSet::from([u.to_owned()]));
            }
        }
    })?;
    let user = match who {
        Subject::User(u) => Some(u.clone()),
        Subject::Visitor(v) => map.user_of(v).map(str::to_owned).or_else(|| {
            users_of.get(v).filter(|users| users.len() == 1).and_then(|users| users.iter().next().cloned())
        }),
    };
    let mut visitors: HashSet<String> = match (&user, who) {
        (Some(u), _) => map.users().filter(|(_, x)| x == u).map(|(v, _)| v.to_owned()).collect(),
        (None, Subject::Visitor(v)) => HashSet::from([v.clone()]),
        (None, Subject::User(_)) => HashSet::new(),
    };
    if let Some(u) = &user {
        visitors.extend(users_of.into_iter().filter(|(_, users)| users.contains(u)).map(|(v, _)| v));
    }
    Ok(Person { user, visitors })
}

/// Remove every event of `who` from `site`: its rows in every partition, its session hours and
/// its identity map links; then append an audit line (time, site, counts). Holds the store
/// guard throughout, so the flusher and the compactor wait.
pub fn forget(data: &DataDir, guard: &StoreGuard, site: &SiteId, who: &Subject, now: i64) -> Result<Forgotten> {
    let _g = guard.lock().unwrap_or_else(|p| p.into_inner());
    let mut map = IdentityMap::check_out(data, site)?;
    let person = resolve(data, site, &map, who)?;
    let mut done = Forgotten { visitors: person.visitors.len(), ..Forgotten::default() };
    for date in data.site_dates(site).map_err(io_err(&data.events_dir()))? {
        let dir = data.partition_dir(site, date);
        let files = data_files(&dir).map_err(io_err(&dir))?;
        let mut found = false;
        each_row(&files, |user, visitor| found |= person.holds(user, visitor))?;
        if found {
            done.events += rewrite_without(data, site, date, &files, &person)?;
            done.partitions += 1;
        }
    }
    if map.forget(person.user.as_deref(), &person.visitors) {
        map.save(data, site)?;
    }
    map.check_in(data, site);
    // The site's predictions hold a row per person: dropped, so the next fit is made without
    // them (until then reports fit anew and recommendations answer 404).
    crate::predict::store::remove(data, site).map_err(io_err(&data.model_dir(site)))?;
    audit(data, site, &done, now)?;
    Ok(done)
}

/// Rewrite one partition without the person's rows; returns how many were removed.
fn rewrite_without(
    data: &DataDir,
    site: &SiteId,
    date: chrono::NaiveDate,
    files: &[PathBuf],
    person: &Person,
) -> Result<usize> {
    let all = read_files(files)?;
    let (users, visitors) = (text_column(&all, "user_id")?, text_column(&all, "visitor_id")?);
    let keep: BooleanArray = (0..all.num_rows())
        .map(|i| Some(!person.holds(users.is_valid(i).then(|| users.value(i)), visitors.value(i))))
        .collect();
    let kept: RecordBatch = arrow::compute::filter_record_batch(&all, &keep)?;
    super::compact::replace_partition(data, site, date, &kept)?;
    Ok(all.num_rows() - kept.num_rows())
}

/// Remove every file of a site's data: its events and session hours (every layout version),
/// identity map and once-ledger; then an audit line. Returns the days it had.
pub fn remove_site(data: &DataDir, guard: &StoreGuard, site: &SiteId, now: i64) -> Result<usize> {
    let _g = guard.lock().unwrap_or_else(|p| p.into_inner());
    let days = data.site_dates(site).map_err(io_err(&data.events_dir()))?.len();
    let dir_name = format!("site={site}");
    let mut dirs = vec![data.events_dir().join(&dir_name), data.identities_dir().join(&dir_name), data.model_dir(site)];
    dirs.push(data.once_ledger_dir(site));
    if let Ok(versions) = std::fs::read_dir(data.root().join("sessions")) {
        dirs.extend(versions.flatten().map(|v| v.path().join(&dir_name)));
    }
    for dir in dirs {
        super::compact::remove_whole(data, &dir)?;
    }
    write_audit(
        data,
        serde_json::json!({"at": at(now), "action": "remove_site", "site": site.as_str(), "days": days}),
    )?;
    Ok(days)
}

fn at(now: i64) -> String {
    chrono::DateTime::from_timestamp_micros(now).unwrap_or_default().to_rfc3339()
}

/// One JSON line in `<data>/audit.log`: when, what, which site, how many; never an id.
pub fn audit(data: &DataDir, site: &SiteId, done: &Forgotten, now: i64) -> Result<()> {
    write_audit(
        data,
        serde_json::json!({"at": at(now), "action": "forget", "site": site.as_str(), "events": done.events,
                           "partitions": done.partitions, "visitors": done.visitors}),
    )
}

fn write_audit(data: &DataDir, line: serde_json::Value) -> Result<()> {
    let path = data.audit_log();
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&path).map_err(io_err(&path))?;
    writeln!(f, "{line}").and_then(|()| f.sync_data()).map_err(io_err(&path))
}
