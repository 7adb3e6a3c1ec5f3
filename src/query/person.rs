//! The `person_id` of the `events` table: the person stored with each row, corrected by the
//! site's identity map at query time (see `store::identity` and docs/adr/0004).
//!
//! A row written before its visitor's `identify` holds `v:<visitor>` on disk; the map says the
//! visitor is `u:<user>` now. [`ResolvePerson`] (`footfall_person(site, person_id, visitor_id,
//! user_id)` in plans) returns, per row: the stored person when the row carries its own user id;
//! else the map's person for its visitor; else the stored person; and for rows of schema
//! version 1 (no stored person) the same rule computed from `user_id` and `visitor_id`. When a
//! site has no identified visitor and every row has its stored person, the stored column is
//! returned as it is.
//!
//! A site's map is read the first time a session's query needs it (a query that never reads
//! `person_id` never loads one), through a process-wide cache that re-reads a file when its
//! inode, size or modification time changes (every save renames a new file into place).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex};

use arrow::array::{Array, ArrayRef, AsArray, StringArray, StringBuilder};
use arrow::compute::kernels::cast::cast;
use arrow::datatypes::DataType;
use datafusion::common::{Result, exec_datafusion_err};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility, col,
};

use crate::model::{SiteId, person_id};
use crate::store::identity::{IdentityMap, Stamp, file_stamp};
use crate::store::paths::DataDir;

/// Identified visitor → person id (`u:<user>`), for one site: the two columns, and a hash table
/// of row numbers keyed by the visitor's hash (no allocation per visitor: 181k visitors load in
/// a few milliseconds where a map of boxed strings took 0.3 s and 60 MB).
#[derive(Debug)]
struct Lookup {
    table: hashbrown::HashTable<u32>,
    visitors: StringArray,
    persons: StringArray,
    hasher: ahash::RandomState,
}

impl Lookup {
    fn new(visitors: StringArray, users: &StringArray) -> Self {
        let persons: StringArray = users.iter().map(|u| u.map(|u| person_id(Some(u), ""))).collect();
        let hasher = ahash::RandomState::new();
        let mut table = hashbrown::HashTable::with_capacity(visitors.len());
        for i in 0..visitors.len() {
            let h = hasher.hash_one(visitors.value(i));
            table.insert_unique(h, i as u32, |&j| hasher.hash_one(visitors.value(j as usize)));
        }
        Self { table, visitors, persons, hasher }
    }

    fn from_map(map: &IdentityMap) -> Self {
        let (visitors, users): (Vec<&str>, Vec<&str>) = map.users().unzip();
        Self::new(StringArray::from(visitors), &StringArray::from(users))
    }

    fn get(&self, visitor: &str) -> Option<&str> {
        let h = self.hasher.hash_one(visitor);
        let i = *self.table.find(h, |&i| self.visitors.value(i as usize) == visitor)?;
        Some(self.persons.value(i as usize))
    }

    fn is_empty(&self) -> bool {
        self.visitors.is_empty()
    }
}

/// The scalar function that resolves each row's person.
#[derive(Debug)]
pub(crate) struct ResolvePerson {
    signature: Signature,
    data: DataDir,
    /// The maps loaded so far, by site, with the stamp of the file each was read from.
    sites: Mutex<HashMap<String, (Stamp, Arc<Lookup>)>>,
}

impl PartialEq for ResolvePerson {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl Eq for ResolvePerson {}

impl Hash for ResolvePerson {
    fn hash<H: Hasher>(&self, state: &mut H) {
        std::ptr::hash(self, state);
    }
}

impl ResolvePerson {
    /// The function over the identity maps of `data`.
    pub(crate) fn new(data: &DataDir) -> Self {
        Self { signature: Signature::any(4, Volatility::Immutable), data: data.clone(), sites: Mutex::default() }
    }

    /// The lookup of `site` (a value of the partition column), loaded on first use and again
    /// whenever its map file changes. The function lives as long as the process's kept
    /// session base ([`super::session`]), so every batch checks the file's stamp (one `stat`
    /// per batch of rows): a query that spans a save reads the map as saved when each batch
    /// is resolved.
    fn site(&self, site: &str) -> Result<Arc<Lookup>> {
        let id = SiteId::parse(site).map_err(|e| exec_datafusion_err!("{e}"))?;
        let stamp = file_stamp(&self.data.identity_map_file(&id));
        let mut sites = self.sites.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((held, hit)) = sites.get(site)
            && *held == stamp
        {
            return Ok(hit.clone());
        }
        let found = lookup(&self.data, &id).map_err(|e| exec_datafusion_err!("identity map of {site}: {e}"))?;
        sites.insert(site.to_owned(), (stamp, found.clone()));
        Ok(found)
    }

    /// `footfall_person(site, person_id, visitor_id, user_id)` as an expression.
    pub(crate) fn expr(this: Arc<Self>) -> Expr {
        ScalarUDF::new_from_shared_impl(this).call(vec![
            col("site"),
            col("person_id"),
            col("visitor_id"),
            col("user_id"),
        ])
    }
}

/// Lookups by map file, with the file's modification time and size when read.
type Cache = Mutex<HashMap<PathBuf, (Stamp, Arc<Lookup>)>>;

/// A site's lookup, from the cache while its map file is unchanged.
fn lookup(data: &DataDir, site: &SiteId) -> crate::store::Result<Arc<Lookup>> {
    static CACHE: LazyLock<Cache> = LazyLock::new(Default::default);
    let path = data.identity_map_file(site);
    let stamp = file_stamp(&path);
    if stamp.is_none() {
        // No map file (a store written before maps existed): rebuild it, uncached.
        return Ok(Arc::new(Lookup::from_map(&IdentityMap::load_or_rebuild(data, site)?)));
    }
    let cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((held, hit)) = cache.get(&path)
        && *held == stamp
    {
        return Ok(hit.clone());
    }
    drop(cache);
    let built = match IdentityMap::load_columns(data, site)? {
        Some((visitors, users)) => Arc::new(Lookup::new(visitors, &users)),
        None => Arc::new(Lookup::from_map(&IdentityMap::default())),
    };
    CACHE.lock().unwrap_or_else(|p| p.into_inner()).insert(path, (stamp, built.clone()));
    Ok(built)
}

impl ScalarUDFImpl for ResolvePerson {
    fn name(&self) -> &str {
        "footfall_person"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let text = |a: &ArrayRef| -> Result<ArrayRef> { Ok(cast(a, &DataType::Utf8)?) };
        let [site, stored, visitor, user] = [&arrays[0], &arrays[1], &arrays[2], &arrays[3]].map(text);
        let (site, stored, visitor, user) = (site?, stored?, visitor?, user?);
        let (site, stored_s, visitor, user) =
            (site.as_string::<i32>(), stored.as_string::<i32>(), visitor.as_string::<i32>(), user.as_string::<i32>());
        let n = stored_s.len();
        if n == 0 {
            return Ok(ColumnarValue::Array(stored));
        }
        // One site per batch (it is a partition column) is the usual case.
        let one_site = site.null_count() == 0 && (0..n).all(|i| site.value(i) == site.value(0));
        if one_site && stored_s.null_count() == 0 && self.site(site.value(0))?.is_empty() {
            return Ok(ColumnarValue::Array(stored));
        }
        let mut current: Option<(&str, Arc<Lookup>)> = None;
        let mut out = StringBuilder::with_capacity(n, stored_s.value_data().len().max(n * 18));
        for i in 0..n {
            if visitor.is_null(i) {
                return Err(exec_datafusion_err!("a stored row has no visitor_id"));
            }
            let v = visitor.value(i);
            let stored_i = (!stored_s.is_null(i)).then(|| stored_s.value(i));
            if !user.is_null(i) {
                match stored_i {
                    Some(p) => out.append_value(p),
                    None => out.append_value(person_id(Some(user.value(i)), v)),
                }
                continue;
            }
            if !site.is_null(i) && current.as_ref().is_none_or(|(c, _)| *c != site.value(i)) {
                current = Some((site.value(i), self.site(site.value(i))?));
            }
            match (current.as_ref().and_then(|(_, m)| m.get(v)), stored_i) {
                (Some(p), _) => out.append_value(p),
                (None, Some(p)) => out.append_value(p),
                (None, None) => out.append_value(person_id(None, v)),
            }
        }
        let out: StringArray = out.finish();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}
