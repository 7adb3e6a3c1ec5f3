//! Every path footfall writes under its data directory, in one place.
//!
//! ```text
//! <data>/LOCK                                       held by the process that owns the data dir
//! <data>/sites.json                                 site registry (atomic replace)
//! <data>/salts.json                                 today's and yesterday's visitor-id salts
//! <data>/wal/<seq>.wal                              write-ahead log segments
//! <data>/events/site=<site>/date=<YYYY-MM-DD>/<ulid>.parquet
//! <data>/events/site=<site>/date=<YYYY-MM-DD>/.<ulid>.parquet.tmp   being written
//! <data>/sessions/v<N>/site=<site>/date=<YYYY-MM-DD>/<ulid>.parquet   session hours of the events file <ulid>
//! <data>/identities/site=<site>/map.parquet         visitor → user links (identity map, atomic replace)
//! <data>/staging/<ulid>/                            compaction output before it is swapped in
//! ```
//! Site ids are validated [`SiteId`]s, so no raw input ever becomes a path fragment.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use ulid::Ulid;

use crate::model::SiteId;

/// Version of the session-hours columns (`store::sessions`); part of their directory's path.
/// 2: `entry_page`, `entry_ts` and `first_path` added; 3: `visit_first_ts` and `visit_last_ts`.
pub const SESSION_HOURS_VERSION: u32 = 3;

/// The data directory and everything under it.
#[derive(Clone, Debug)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// A data directory rooted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }
    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn lock_file(&self) -> PathBuf {
        self.root.join("LOCK")
    }
    pub fn sites_file(&self) -> PathBuf {
        self.root.join("sites.json")
    }
    /// `rejected/`: the refused events kept per site (`ingest::quarantine`).
    pub fn rejected_dir(&self) -> PathBuf {
        self.root.join("rejected")
    }
    /// `audit.log`: one JSON line per deletion (when, site, counts; no ids).
    pub fn audit_log(&self) -> PathBuf {
        self.root.join("audit.log")
    }
    pub fn salts_file(&self) -> PathBuf {
        self.root.join("salts.json")
    }
    pub fn wal_dir(&self) -> PathBuf {
        self.root.join("wal")
    }
    pub fn events_dir(&self) -> PathBuf {
        self.root.join("events")
    }
    /// `models`: every site's last prediction fit (the SQL table `predictions` lists it).
    pub fn models_dir(&self) -> PathBuf {
        self.root.join("models")
    }
    /// `models/site=<site>`: a site's last prediction fit (`model.json`, `people.parquet`).
    pub fn model_dir(&self, site: &SiteId) -> PathBuf {
        self.models_dir().join(format!("site={site}"))
    }
    /// `sessions/v<N>`: the session hours of layout version [`SESSION_HOURS_VERSION`]. A new
    /// version starts empty, so readers use events until compaction has rebuilt each partition.
    pub fn sessions_dir(&self) -> PathBuf {
        self.root.join("sessions").join(format!("v{SESSION_HOURS_VERSION}"))
    }
    /// `sessions/site=<site>/date=<YYYY-MM-DD>`: the session hours of a partition's files.
    pub fn sessions_partition_dir(&self, site: &SiteId, date: NaiveDate) -> PathBuf {
        self.sessions_dir().join(format!("site={site}")).join(format!("date={}", date.format("%Y-%m-%d")))
    }
    pub fn identities_dir(&self) -> PathBuf {
        self.root.join("identities")
    }
    /// `identities/site=<site>/map.parquet`: the site's identity map.
    pub fn identity_map_file(&self, site: &SiteId) -> PathBuf {
        self.identities_dir().join(format!("site={site}")).join("map.parquet")
    }
    /// `once/site=<site>/`: the site's ledger of events that happen once, one file per UTC day
    /// of their first copies (`<YYYY-MM-DD>.parquet`).
    pub fn once_ledger_dir(&self, site: &SiteId) -> PathBuf {
        self.root.join("once").join(format!("site={site}"))
    }
    pub fn staging_dir(&self) -> PathBuf {
        self.root.join("staging")
    }
    /// `events/site=<site>/date=<YYYY-MM-DD>`
    pub fn partition_dir(&self, site: &SiteId, date: NaiveDate) -> PathBuf {
        self.events_dir().join(format!("site={site}")).join(format!("date={}", date.format("%Y-%m-%d")))
    }
    /// The Parquet file `id` of a partition.
    pub fn data_file(&self, site: &SiteId, date: NaiveDate, id: Ulid) -> PathBuf {
        self.partition_dir(site, date).join(format!("{id}.parquet"))
    }
    /// Where a data file is written before its rename.
    pub fn temp_file(final_path: &Path) -> PathBuf {
        let name = final_path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
        final_path.with_file_name(format!(".{name}.tmp"))
    }
    /// Every partition on disk, sorted.
    pub fn partitions(&self) -> std::io::Result<Vec<(SiteId, NaiveDate)>> {
        let mut out = Vec::new();
        let events = self.events_dir();
        if !events.exists() {
            return Ok(out);
        }
        for site_entry in std::fs::read_dir(&events)? {
            let site_path = site_entry?.path();
            let Some(site) = site_path.file_name().and_then(|n| n.to_str()).and_then(parse_site_dir) else { continue };
            out.extend(self.site_dates(&site)?.into_iter().map(|d| (site.clone(), d)));
        }
        out.sort();
        Ok(out)
    }
    /// Every data file of `site` on the UTC dates in `dates`, date by date.
    pub fn site_files(
        &self,
        site: &SiteId,
        dates: impl std::ops::RangeBounds<NaiveDate>,
    ) -> std::io::Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        for date in self.site_dates(site)? {
            if dates.contains(&date) {
                out.extend(data_files(&self.partition_dir(site, date))?);
            }
        }
        Ok(out)
    }
    /// The dates of one site's partitions on disk, sorted.
    pub fn site_dates(&self, site: &SiteId) -> std::io::Result<Vec<NaiveDate>> {
        let dir = self.events_dir().join(format!("site={site}"));
        let mut out = Vec::new();
        if !dir.exists() {
            return Ok(out);
        }
        for entry in std::fs::read_dir(&dir)? {
            if let Some(date) = entry?.file_name().to_str().and_then(parse_date_dir) {
                out.push(date);
            }
        }
        out.sort();
        Ok(out)
    }
}

/// Parse `site=<id>`.
pub fn parse_site_dir(name: &str) -> Option<SiteId> {
    SiteId::parse(name.strip_prefix("site=")?).ok()
}

/// Parse `date=<YYYY-MM-DD>`.
pub fn parse_date_dir(name: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(name.strip_prefix("date=")?, "%Y-%m-%d").ok()
}

/// The committed Parquet files of a partition directory, sorted by name (ULID, so by age).
pub fn data_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    if !dir.exists() {
        return Ok(out);
    }
    for entry in std::fs::read_dir(dir)? {
        let p = entry?.path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.ends_with(".parquet") && !name.starts_with('.') {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(s: &str) -> SiteId {
        SiteId::parse(s).expect("valid site")
    }

    #[test]
    fn partition_layout_is_hive_style() {
        let d = DataDir::new("/data");
        let date = NaiveDate::from_ymd_opt(2026, 3, 7).expect("date");
        assert_eq!(d.partition_dir(&site("shop"), date), PathBuf::from("/data/events/site=shop/date=2026-03-07"));
        let id = Ulid::from_parts(1, 2);
        let f = d.data_file(&site("shop"), date, id);
        assert_eq!(f, PathBuf::from(format!("/data/events/site=shop/date=2026-03-07/{id}.parquet")));
        assert_eq!(d.identity_map_file(&site("shop")), PathBuf::from("/data/identities/site=shop/map.parquet"));
        assert_eq!(
            DataDir::temp_file(&f),
            PathBuf::from(format!("/data/events/site=shop/date=2026-03-07/.{id}.parquet.tmp"))
        );
    }

    #[test]
    fn partition_names_parse_back_and_reject_junk() {
        assert_eq!(parse_site_dir("site=shop-2"), Some(site("shop-2")));
        assert_eq!(parse_site_dir("site=../x"), None);
        assert_eq!(parse_site_dir("shop"), None);
        assert_eq!(parse_date_dir("date=2026-02-28"), NaiveDate::from_ymd_opt(2026, 2, 28));
        assert_eq!(parse_date_dir("date=2026-02-30"), None);
    }

    #[test]
    fn listing_skips_temp_files_and_finds_partitions() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let d = DataDir::new(tmp.path());
        let date = NaiveDate::from_ymd_opt(2026, 1, 2).expect("date");
        let dir = d.partition_dir(&site("a"), date);
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("01A.parquet"), b"x").expect("write");
        std::fs::write(dir.join(".01B.parquet.tmp"), b"x").expect("write");
        std::fs::create_dir_all(d.events_dir().join("site=a").join("notes")).expect("mkdir");
        assert_eq!(data_files(&dir).expect("list"), vec![dir.join("01A.parquet")]);
        assert_eq!(d.partitions().expect("partitions"), vec![(site("a"), date)]);
        assert_eq!(d.site_dates(&site("a")).expect("dates"), vec![date]);
        assert!(d.site_dates(&site("b")).expect("dates").is_empty());
    }
}
