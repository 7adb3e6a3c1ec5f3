//! Sites and their keys, persisted in `<data>/sites.json` (replaced atomically).
//!
//! A site has a write key (server-side ingestion) and a read key (queries), and the domains
//! its pages are served from (CORS and origin checks for browser events). A site with no
//! domains accepts browser events from any origin, as the `default` site does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::fsutil::write_atomic;
use crate::model::SiteId;

/// Site registry errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("site {0} already exists")]
    Exists(SiteId),
    #[error("no site {0}: add it with `footfall site add {0}`")]
    NotFound(SiteId),
    #[error("site {0} has no share link {1:?}")]
    NoShare(SiteId, String),
    #[error("a share link's name must be 1 to 100 characters")]
    BadShareName,
    #[error("site {0} has {MAX_SHARES} share links, the most it may keep; revoke one first")]
    TooManyShares(SiteId),
    #[error("invalid domain {0:?}: give a host name such as shop.example")]
    BadDomain(String),
    #[error("sites file {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("sites file {path} is not valid: {source}")]
    Corrupt { path: PathBuf, source: serde_json::Error },
}

/// `Result` with the registry's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One site.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Site {
    pub id: SiteId,
    pub domains: Vec<String>,
    pub write_key: String,
    pub read_key: String,
    pub created_at: String,
    /// The first day of the site's weeks, in every weekly bucket of its reports.
    #[serde(default)]
    pub week_start: WeekStart,
    /// Days of events kept: older days are dropped by the background task (none: kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<u32>,
    /// View-only share links: each key reads this site's reports and nothing else.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shares: Vec<Share>,
}

/// A view-only share link of one site. Its key (`ffv_…`) reads the site's reports, segment sizes
/// and saved views; it cannot run SQL, see people's ids, export people or change anything.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Share {
    /// What revoking names (`shr_` and 12 hex digits); not a secret.
    pub id: String,
    pub name: String,
    pub key: String,
    pub created_at: String,
}

/// Most share links per site.
pub const MAX_SHARES: usize = 50;

/// The first day of a week: Monday (ISO, the default) or Sunday (the US, many shops).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum WeekStart {
    #[default]
    Monday,
    Sunday,
}

impl WeekStart {
    pub fn weekday(self) -> chrono::Weekday {
        match self {
            Self::Monday => chrono::Weekday::Mon,
            Self::Sunday => chrono::Weekday::Sun,
        }
    }
}

impl Site {
    /// Whether a browser page at `origin` (e.g. `https://www.shop.example`) may send events.
    pub fn allows_origin(&self, origin: &str) -> bool {
        if self.domains.is_empty() {
            return true;
        }
        let host = url::Url::parse(origin).ok().and_then(|u| u.host_str().map(str::to_owned));
        let Some(host) = host else { return false };
        self.domains.iter().any(|d| crate::ingest::enrich::referrer::is_same_or_subdomain(&host, d))
    }
}

#[derive(Default, Serialize, Deserialize)]
struct SitesFile {
    sites: BTreeMap<SiteId, Site>,
}

/// The sites as last read, and the file's modification time then.
type Loaded = (BTreeMap<SiteId, Arc<Site>>, Option<SystemTime>);

/// The registry. Reloads the file when another process (`footfall site add`) changed it.
pub struct Sites {
    path: PathBuf,
    state: RwLock<Loaded>,
}

fn key(prefix: &str) -> String {
    random_id(prefix, 24)
}

/// A fresh random key with `prefix` (e.g. `ffa` for the demo's admin key).
pub fn new_key(prefix: &str) -> String {
    key(prefix)
}

fn random_id(prefix: &str, bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    getrandom::fill(&mut b).expect("the OS random source works");
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{prefix}_{hex}")
}

/// Normalise a domain argument: lower case, no scheme, path or port.
pub fn normalize_domain(d: &str) -> Result<String> {
    let d = d.trim().to_ascii_lowercase();
    let with_scheme = if d.contains("://") { d.clone() } else { format!("https://{d}") };
    let host = url::Url::parse(&with_scheme).ok().and_then(|u| u.host_str().map(str::to_owned));
    match host {
        Some(h) if !h.is_empty() => Ok(h.strip_prefix("www.").unwrap_or(&h).to_owned()),
        _ => Err(Error::BadDomain(d)),
    }
}

impl Sites {
    /// Open the registry at `path` (empty if the file does not exist yet).
    pub fn open(path: &Path) -> Result<Self> {
        let (sites, mtime) = read_file(path)?;
        Ok(Self { path: path.to_owned(), state: RwLock::new((sites, mtime)) })
    }

    fn reload_if_changed(&self) {
        let mtime = std::fs::metadata(&self.path).and_then(|m| m.modified()).ok();
        let current = self.state.read().unwrap_or_else(|p| p.into_inner()).1;
        if mtime != current {
            match read_file(&self.path) {
                Ok(fresh) => *self.state.write().unwrap_or_else(|p| p.into_inner()) = fresh,
                Err(e) => tracing::error!(error = %e, "could not reload sites"),
            }
        }
    }

    /// Look a site up (re-reading the file once if it is not known yet).
    pub fn get(&self, id: &str) -> Option<Arc<Site>> {
        let find = || {
            let st = self.state.read().unwrap_or_else(|p| p.into_inner());
            SiteId::parse(id).ok().and_then(|id| st.0.get(&id).cloned())
        };
        find().or_else(|| {
            self.reload_if_changed();
            find()
        })
    }

    /// The site a write key belongs to. The file is checked first (one `stat`), so a key
    /// rotated or a site removed by another process is refused at once.
    pub fn by_write_key(&self, key: &str) -> Option<Arc<Site>> {
        self.reload_if_changed();
        self.find(|s| keys_match(&s.write_key, key))
    }

    /// The site a read key belongs to (the file checked first, as [`Sites::by_write_key`]).
    pub fn by_read_key(&self, key: &str) -> Option<Arc<Site>> {
        self.reload_if_changed();
        self.find(|s| keys_match(&s.read_key, key))
    }

    /// The site a share link's key belongs to (the file checked first, as [`Sites::by_write_key`]).
    pub fn by_share_key(&self, key: &str) -> Option<Arc<Site>> {
        self.reload_if_changed();
        self.find(|s| s.shares.iter().any(|sh| keys_match(&sh.key, key)))
    }

    /// A new view-only share link for a site.
    pub fn add_share(&self, id: &SiteId, name: &str) -> Result<Share> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(Error::BadShareName);
        }
        let share = Share {
            id: random_id("shr", 6),
            name: name.to_owned(),
            key: key("ffv"),
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        };
        self.try_update(id, |s| {
            if s.shares.len() >= MAX_SHARES {
                return Err(Error::TooManyShares(s.id.clone()));
            }
            s.shares.push(share.clone());
            Ok(())
        })?;
        Ok(share)
    }

    /// Revoke a share link: its key stops working at once (here, and in any server over the
    /// same file at its next request).
    pub fn revoke_share(&self, id: &SiteId, share: &str) -> Result<Share> {
        let mut gone = None;
        self.try_update(id, |s| {
            let i = s
                .shares
                .iter()
                .position(|sh| sh.id == share)
                .ok_or_else(|| Error::NoShare(s.id.clone(), share.to_owned()))?;
            gone = Some(s.shares.remove(i));
            Ok(())
        })?;
        gone.ok_or_else(|| Error::NoShare(id.clone(), share.to_owned()))
    }

    /// The first site matching `pred`, re-reading the file once if none does.
    fn find(&self, pred: impl Fn(&Site) -> bool) -> Option<Arc<Site>> {
        let find = || self.state.read().unwrap_or_else(|p| p.into_inner()).0.values().find(|s| pred(s)).cloned();
        find().or_else(|| {
            self.reload_if_changed();
            find()
        })
    }

    /// Whether any site accepts browser events from `origin` (the CORS check).
    /// The file is re-read only when no known site matches (a site added by `footfall site
    /// add` while serving), not on every browser request: an origin, unlike a key, grants
    /// nothing that a rotation must take away at once.
    pub fn any_allows_origin(&self, origin: &str) -> bool {
        self.find(|s| s.allows_origin(origin)).is_some()
    }

    /// Every site, by id.
    pub fn list(&self) -> Vec<Site> {
        self.reload_if_changed();
        self.state.read().unwrap_or_else(|p| p.into_inner()).0.values().map(|s| Site::clone(s)).collect()
    }

    /// Register a site with fresh keys and persist the registry.
    pub fn add(&self, id: SiteId, domains: &[String]) -> Result<Site> {
        self.reload_if_changed();
        let mut domains = domains.iter().map(|d| normalize_domain(d)).collect::<Result<Vec<_>>>()?;
        domains.sort();
        domains.dedup();
        let mut st = self.state.write().unwrap_or_else(|p| p.into_inner());
        if st.0.contains_key(&id) {
            return Err(Error::Exists(id));
        }
        let site = Site {
            id: id.clone(),
            domains,
            write_key: key("ffw"),
            read_key: key("ffr"),
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            week_start: WeekStart::default(),
            retention_days: None,
            shares: Vec::new(),
        };
        let mut next = st.0.clone();
        next.insert(id, Arc::new(site.clone()));
        self.save(&mut st, next)?;
        Ok(site)
    }

    /// Set the first day of a site's weeks and persist the registry.
    pub fn set_week_start(&self, id: &SiteId, week_start: WeekStart) -> Result<Site> {
        self.update(id, |s| s.week_start = week_start)
    }

    /// New write and read keys for a site; the old ones stop working at once, in this process
    /// and (at their next request) in any server over the same file.
    pub fn rotate_keys(&self, id: &SiteId) -> Result<Site> {
        self.update(id, |s| {
            s.write_key = key("ffw");
            s.read_key = key("ffr");
        })
    }

    /// Take a site out of the registry (its keys stop working); its data is the caller's.
    pub fn remove(&self, id: &SiteId) -> Result<Site> {
        self.reload_if_changed();
        let mut st = self.state.write().unwrap_or_else(|p| p.into_inner());
        let Some(old) = st.0.get(id).cloned() else { return Err(Error::NotFound(id.clone())) };
        let mut next = st.0.clone();
        next.remove(id);
        self.save(&mut st, next)?;
        Ok(Site::clone(&old))
    }

    /// Keep `days` days of the site's events (`None`: keep everything).
    pub fn set_retention(&self, id: &SiteId, days: Option<u32>) -> Result<Site> {
        self.update(id, |s| s.retention_days = days)
    }

    /// Change one site's settings and persist the registry.
    fn update(&self, id: &SiteId, change: impl FnOnce(&mut Site)) -> Result<Site> {
        self.try_update(id, |s| {
            change(s);
            Ok(())
        })
    }

    /// Change one site's settings and persist the registry, unless `change` refuses: then
    /// nothing is written.
    fn try_update(&self, id: &SiteId, change: impl FnOnce(&mut Site) -> Result<()>) -> Result<Site> {
        self.reload_if_changed();
        let mut st = self.state.write().unwrap_or_else(|p| p.into_inner());
        let Some(old) = st.0.get(id) else { return Err(Error::NotFound(id.clone())) };
        let mut site = Site::clone(old);
        change(&mut site)?;
        let mut next = st.0.clone();
        next.insert(id.clone(), Arc::new(site.clone()));
        self.save(&mut st, next)?;
        Ok(site)
    }

    fn save(&self, st: &mut Loaded, next: BTreeMap<SiteId, Arc<Site>>) -> Result<()> {
        let file = SitesFile { sites: next.iter().map(|(k, v)| (k.clone(), Site::clone(v))).collect() };
        let bytes = serde_json::to_vec_pretty(&file).expect("sites serialize");
        write_atomic(&self.path, &bytes).map_err(|source| Error::Io { path: self.path.clone(), source })?;
        let mtime = std::fs::metadata(&self.path).and_then(|m| m.modified()).ok();
        *st = (next, mtime);
        Ok(())
    }
}

fn read_file(path: &Path) -> Result<Loaded> {
    match std::fs::read(path) {
        Ok(bytes) => {
            let f: SitesFile =
                serde_json::from_slice(&bytes).map_err(|source| Error::Corrupt { path: path.to_owned(), source })?;
            let sites = f.sites.into_iter().map(|(k, v)| (k, Arc::new(v))).collect();
            Ok((sites, std::fs::metadata(path).and_then(|m| m.modified()).ok()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((BTreeMap::new(), None)),
        Err(source) => Err(Error::Io { path: path.to_owned(), source }),
    }
}

/// Whether a key sent by a client is `expected`, in time that does not depend on where they
/// differ (no byte-by-byte guessing from response times).
pub fn keys_match(expected: &str, sent: &str) -> bool {
    use subtle::ConstantTimeEq;
    expected.len() == sent.len() && bool::from(expected.as_bytes().ct_eq(sent.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> SiteId {
        SiteId::parse(s).expect("id")
    }

    #[test]
    fn add_persists_and_issues_distinct_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sites.json");
        let sites = Sites::open(&path).expect("open");
        let a = sites.add(id("shop"), &["https://www.Shop.example/".into()]).expect("add");
        assert_eq!(a.domains, vec!["shop.example"]);
        assert!(a.write_key.starts_with("ffw_") && a.read_key.starts_with("ffr_"));
        assert_ne!(a.write_key, a.read_key);
        assert!(matches!(sites.add(id("shop"), &[]), Err(Error::Exists(_))));
        let reopened = Sites::open(&path).expect("open");
        assert_eq!(reopened.get("shop").as_deref(), Some(&a));
        assert_eq!(reopened.by_write_key(&a.write_key).map(|s| s.id.clone()), Some(id("shop")));
        assert_eq!(reopened.by_write_key(&a.read_key), None);
        assert_eq!(reopened.by_read_key(&a.read_key).map(|s| s.id.clone()), Some(id("shop")));
        assert_eq!(reopened.by_read_key(&a.write_key), None);
        assert!(keys_match("ffr_abc", "ffr_abc"));
        assert!(!keys_match("ffr_abc", "ffr_abd") && !keys_match("ffr_abc", "ffr_ab") && !keys_match("", "x"));
    }

    #[test]
    fn another_process_adding_a_site_is_seen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sites.json");
        let running = Sites::open(&path).expect("open");
        assert_eq!(running.get("blog"), None);
        Sites::open(&path).expect("open").add(id("blog"), &[]).expect("add");
        assert!(running.get("blog").is_some());
    }

    #[test]
    fn cors_sees_a_domain_added_by_another_process() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sites.json");
        let running = Sites::open(&path).expect("open");
        running.add(id("shop"), &["shop.example".into()]).expect("add");
        assert!(running.any_allows_origin("https://shop.example"));
        assert!(!running.any_allows_origin("https://blog.example"));
        Sites::open(&path).expect("open").add(id("blog"), &["blog.example".into()]).expect("add");
        assert!(running.any_allows_origin("https://blog.example"));
    }

    #[test]
    fn origins_are_checked_against_domains() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sites = Sites::open(&dir.path().join("s.json")).expect("open");
        let s = sites.add(id("shop"), &["shop.example".into()]).expect("add");
        assert!(s.allows_origin("https://shop.example"));
        assert!(s.allows_origin("https://www.shop.example"));
        assert!(!s.allows_origin("https://evilshop.example"));
        assert!(!s.allows_origin("https://shop.example.evil.test"));
        let open = sites.add(id("open"), &[]).expect("add");
        assert!(open.allows_origin("https://anything.test"));
        assert!(matches!(normalize_domain("://"), Err(Error::BadDomain(_))));
    }
}
