//! What the store's writers (the flusher, the compactor) hold between runs: a per-site file's
//! contents in memory, handed back with the file's stamp and used again only while the file is
//! unchanged (the identity map, the once-ledger). Reading a large one for every flush costs
//! more than the flush.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex};

use super::Result;
use super::identity::{Stamp, file_stamp};
use super::paths::DataDir;
use crate::model::SiteId;

type Slots<T> = Mutex<HashMap<PathBuf, (Stamp, T)>>;

/// Held values by file path.
pub(crate) struct Held<T>(LazyLock<Slots<T>>);

impl<T> Held<T> {
    pub(crate) const fn new() -> Self {
        Self(LazyLock::new(Slots::default))
    }

    /// The value held for `path`, if the file is as it was when the value was handed back.
    pub(crate) fn take(&self, path: &Path) -> Option<T> {
        let held = self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(path);
        match held {
            Some((stamp, value)) if stamp.is_some() && stamp == file_stamp(path) => Some(value),
            _ => None,
        }
    }

    /// Hand `value` back for `path` (after any change to it was saved there).
    pub(crate) fn put(&self, path: PathBuf, value: T) {
        let stamp = file_stamp(&path);
        self.0.lock().unwrap_or_else(|p| p.into_inner()).insert(path, (stamp, value));
    }
}

/// A per-site file that writers check out, change, save and check in (see [`Held`]).
pub(crate) trait SiteFile: Sized + 'static {
    /// The file of `site`.
    fn path(data: &DataDir, site: &SiteId) -> PathBuf;
    /// What writers hold of this kind.
    fn held() -> &'static Held<Self>;
    /// The file's contents, if it exists.
    fn load(data: &DataDir, site: &SiteId) -> Result<Option<Self>>;
    /// Rebuilt from the site's data files (a store written before the file existed).
    fn rebuild(data: &DataDir, site: &SiteId) -> Result<Self>;
    /// Write the file atomically.
    fn save(&self, data: &DataDir, site: &SiteId) -> Result<()>;

    /// For a writer (under the store guard): what the last writer checked in, while the file
    /// is as it left it; else the file; else rebuilt and saved, so that happens once.
    fn check_out(data: &DataDir, site: &SiteId) -> Result<Self> {
        if let Some(held) = Self::held().take(&Self::path(data, site)) {
            return Ok(held);
        }
        if let Some(loaded) = Self::load(data, site)? {
            return Ok(loaded);
        }
        let rebuilt = Self::rebuild(data, site)?;
        rebuilt.save(data, site)?;
        Ok(rebuilt)
    }

    /// Hand it back after a writer is done with it (and has saved any change).
    fn check_in(self, data: &DataDir, site: &SiteId) {
        Self::held().put(Self::path(data, site), self);
    }
}
