//! Saved segments of each site, kept in `<data>/segments.json` beside the sites registry
//! (`sites.json`), and the dashboard's saved views in `<data>/views.json` the same way; each file
//! replaced atomically on every change. What a definition means and whether it is valid is the
//! caller's business ([`crate::reports::segments::save`] checks a segment first); this module
//! keeps the files: ids, names, times, the per-site limit.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::clock::SharedClock;
use crate::model::SiteId;
use crate::store::paths::DataDir;

/// Most saved segments per site.
pub const MAX_PER_SITE: usize = 200;

/// A segment saved for a site.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Saved {
    pub id: String,
    pub name: String,
    pub definition: serde_json::Value,
    pub created_at: String,
    pub updated_at: String,
}

/// Errors of the saved-segments file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read or written (the message names it).
    #[error("{0}")]
    Io(String),
    /// The request is not valid; `field` names the offending part.
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every site's saved segments, as kept in the file.
type SavedFile = BTreeMap<String, BTreeMap<String, Saved>>;

/// Which file: saved segments or saved dashboard views.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Segments,
    Views,
}

impl Kind {
    fn file(self) -> &'static str {
        match self {
            Self::Segments => "segments.json",
            Self::Views => "views.json",
        }
    }
    /// The id of a name with nothing usable in it.
    fn fallback_id(self) -> &'static str {
        match self {
            Self::Segments => "segment",
            Self::Views => "view",
        }
    }
}

fn io(kind: Kind) -> impl Fn(&dyn std::fmt::Display) -> Error {
    move |e| Error::Io(format!("{}: {e}", kind.file()))
}

fn load(data: &DataDir, kind: Kind) -> Result<SavedFile> {
    match std::fs::read(data.root().join(kind.file())) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| io(kind)(&e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(SavedFile::new()),
        Err(e) => Err(io(kind)(&e)),
    }
}

/// The saved segments (or views) of `site`, by name (readers need no [`SavedSegments`]: the
/// file is replaced atomically).
pub fn saved(data: &DataDir, kind: Kind, site: &SiteId) -> Result<Vec<Saved>> {
    let mut v: Vec<Saved> =
        load(data, kind)?.remove(site.as_str()).map(|m| m.into_values().collect()).unwrap_or_default();
    v.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
    Ok(v)
}

/// The writer of a data directory's saved segments (or views).
pub struct SavedSegments {
    data: DataDir,
    kind: Kind,
    clock: SharedClock,
    /// Serialises read-modify-write of the file within this process.
    lock: Mutex<()>,
}

impl SavedSegments {
    /// The saved segments' writer.
    pub fn new(data: DataDir, clock: SharedClock) -> Self {
        Self::of(Kind::Segments, data, clock)
    }

    /// The writer of one kind of saved definitions.
    pub fn of(kind: Kind, data: DataDir, clock: SharedClock) -> Self {
        Self { data, kind, clock, lock: Mutex::new(()) }
    }

    fn now(&self) -> String {
        chrono::DateTime::from_timestamp_micros(self.clock.now_micros())
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }

    fn write(&self, file: &SavedFile) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(file).map_err(|e| io(self.kind)(&e))?;
        crate::fsutil::write_atomic(&self.data.root().join(self.kind.file()), &bytes).map_err(|e| io(self.kind)(&e))
    }

    /// Save a (checked) definition for `site`: a new one without `id` (its id made from the name,
    /// never one of `reserved`), or a change to `id`. `None` when `id` names no saved segment.
    pub fn save(
        &self,
        site: &SiteId,
        id: Option<&str>,
        name: &str,
        def: &serde_json::Value,
        reserved: &[&str],
    ) -> Result<Option<Saved>> {
        if name.trim().is_empty() || name.len() > 200 {
            return Err(Error::Invalid { field: "name", message: "give a name of 1 to 200 characters".into() });
        }
        let _guard = self.lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut file = load(&self.data, self.kind)?;
        let segs = file.entry(site.as_str().to_owned()).or_default();
        let now = self.now();
        let saved = match id {
            Some(id) => {
                let Some(s) = segs.get_mut(id) else { return Ok(None) };
                s.name = name.trim().to_owned();
                s.definition = def.clone();
                s.updated_at = now;
                s.clone()
            }
            None if segs.len() >= MAX_PER_SITE => {
                return Err(Error::Invalid {
                    field: "name",
                    message: format!(
                        "site {site} has {MAX_PER_SITE} saved {}, the most it may keep; delete one first",
                        self.kind.file().trim_end_matches(".json")
                    ),
                });
            }
            None => {
                let id = new_id(name, self.kind.fallback_id(), |id| segs.contains_key(id) || reserved.contains(&id));
                let s = Saved {
                    id: id.clone(),
                    name: name.trim().to_owned(),
                    definition: def.clone(),
                    created_at: now.clone(),
                    updated_at: now,
                };
                segs.insert(id, s.clone());
                s
            }
        };
        self.write(&file)?;
        Ok(Some(saved))
    }

    /// Delete every saved segment of a site (the site is being removed); how many there were.
    pub fn delete_site(&self, site: &SiteId) -> Result<usize> {
        let _guard = self.lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut file = load(&self.data, self.kind)?;
        let n = file.remove(site.as_str()).map_or(0, |m| m.len());
        if n > 0 {
            self.write(&file)?;
        }
        Ok(n)
    }

    /// Delete a saved segment; false when there was none.
    pub fn delete(&self, site: &SiteId, id: &str) -> Result<bool> {
        let _guard = self.lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut file = load(&self.data, self.kind)?;
        let found = file.get_mut(site.as_str()).is_some_and(|m| m.remove(id).is_some());
        if found {
            self.write(&file)?;
        }
        Ok(found)
    }
}

/// An id from a name (`Big spenders!` → `big-spenders`), numbered past the ones `taken`.
fn new_id(name: &str, fallback: &str, taken: impl Fn(&str) -> bool) -> String {
    let base: String = name
        .trim()
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .split('-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    let base = if base.is_empty() { fallback.to_owned() } else { base };
    let mut id = base.clone();
    let mut n = 2;
    while taken(&id) {
        id = format!("{base}-{n}");
        n += 1;
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;
    use std::sync::Arc;

    #[test]
    fn ids_names_times_and_the_per_site_limit() {
        let tmp = tempfile::tempdir().expect("tempdir");
        // 2026-01-01T00:00:00Z
        let store = SavedSegments::new(DataDir::new(tmp.path()), Arc::new(FixedClock::new(1_767_225_600_000_000)));
        let site = SiteId::parse("shop").expect("id");
        let def = serde_json::json!({"type": "orders", "at_least": 3});
        let a = store.save(&site, None, "Big spenders!", &def, &["vip"]).expect("save").expect("saved");
        assert_eq!((a.id.as_str(), a.created_at.as_str()), ("big-spenders", "2026-01-01T00:00:00Z"));
        let b = store.save(&site, None, "big spenders", &def, &[]).expect("save").expect("saved");
        assert_eq!(b.id, "big-spenders-2");
        assert_eq!(store.save(&site, None, "VIP", &def, &["vip"]).expect("save").expect("saved").id, "vip-2");
        assert!(store.save(&site, Some("nope"), "x", &def, &[]).expect("save").is_none());
        assert!(matches!(store.save(&site, None, " ", &def, &[]), Err(Error::Invalid { field: "name", .. })));
        assert_eq!(saved(&DataDir::new(tmp.path()), Kind::Segments, &site).expect("list").len(), 3);
        assert!(store.delete(&site, "big-spenders-2").expect("delete"));
        assert!(!store.delete(&site, "big-spenders-2").expect("delete"));
        for i in 0..MAX_PER_SITE - 2 {
            store.save(&site, None, &format!("s{i}"), &def, &[]).expect("save");
        }
        assert!(matches!(store.save(&site, None, "one too many", &def, &[]), Err(Error::Invalid { .. })));
        let other = SiteId::parse("blog").expect("id");
        assert!(store.save(&other, None, "fine", &def, &[]).expect("another site has room").is_some());
    }
}
