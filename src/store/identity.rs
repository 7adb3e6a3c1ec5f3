//! Who a person is, resolved once: the per-site identity map (visitor → user).
//!
//! An `identify` event links its visitor to a user id. The **earliest** identify of a visitor
//! wins (by `ts`, then `event_id`): a later login on the same device by someone else does not
//! re-attribute that visitor's history. A person is `u:<user_id>` for an identified visitor
//! (or any event carrying a user id) and `v:<visitor_id>` otherwise ([`crate::model::person_id`]).
//!
//! How it is kept (docs/adr/0004-people-resolved-once.md):
//! - The flusher folds each segment's identify events into the map **before** it writes the
//!   segment's rows, saves the map, and stamps every row's `person_id` from it. Rows of the same
//!   flush as the identify (and every later one) are stamped as the person.
//! - Rows written before their visitor's identify keep `v:<visitor>` on disk. Queries correct
//!   them: the `events` table's `person_id` is `footfall_person(...)`, which looks the visitor of
//!   every row without a user id up in the map (see `query::person`). That is what makes
//!   stitching retroactive: a login today re-attributes last week's anonymous visits at once.
//! - Compaction re-stamps the rows it rewrites, so the stored column converges on the map.
//!
//! On disk: `identities/site=<site>/map.parquet` (path in [`super::paths`]), one row per
//! identified visitor: `visitor_id`, `user_id`, `identified_at` (the winning identify's `ts`),
//! `event_id` (its id, the tie-break), sorted by visitor; replaced atomically. (The `identities`
//! SQL view states the same rule over the identify events; a test checks the two agree.) A site
//! whose store predates the map (schema version 1) has no file;
//! [`IdentityMap::load_or_rebuild`] rebuilds it from the site's identify events.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use super::Result;
use super::held::{Held, SiteFile};
use super::parquet::{column, read_columns, text_column, write_site_file};
use super::paths::DataDir;
use crate::model::{Event, SiteId, person_id};

/// The winning identify of one visitor.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Link {
    user_id: String,
    ts: i64,
    event_id: String,
}

/// One site's identity map.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IdentityMap {
    links: HashMap<String, Link>,
}

/// The schema of the map file.
pub fn map_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("visitor_id", DataType::Utf8, false),
        Field::new("user_id", DataType::Utf8, false),
        Field::new("identified_at", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
        Field::new("event_id", DataType::Utf8, false),
    ]))
}

impl IdentityMap {
    /// Identified visitors.
    pub fn len(&self) -> usize {
        self.links.len()
    }

    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    /// Take one identify into account; `true` if the map changed.
    pub fn link(&mut self, visitor_id: &str, user_id: &str, ts: i64, event_id: &str) -> bool {
        let new = Link { user_id: user_id.to_owned(), ts, event_id: event_id.to_owned() };
        match self.links.get_mut(visitor_id) {
            Some(old) if (old.ts, old.event_id.as_str()) <= (ts, event_id) => false,
            Some(old) => {
                *old = new;
                true
            }
            None => {
                self.links.insert(visitor_id.to_owned(), new);
                true
            }
        }
    }

    /// Take an event into account if it is an identify with a user id; `true` if the map changed.
    pub fn observe(&mut self, e: &Event) -> bool {
        match (e.name.as_str(), e.user_id.as_deref()) {
            ("identify", Some(user)) => self.link(&e.visitor_id, user, e.ts, &e.event_id),
            _ => false,
        }
    }

    /// The user `visitor_id` was identified as.
    pub fn user_of(&self, visitor_id: &str) -> Option<&str> {
        self.links.get(visitor_id).map(|l| l.user_id.as_str())
    }

    /// The person of an event: its own user, else its visitor's user, else the visitor.
    pub fn person_of(&self, user_id: Option<&str>, visitor_id: &str) -> String {
        person_id(user_id.or_else(|| self.user_of(visitor_id)), visitor_id)
    }

    /// Drop every link of `visitors` and every link to `user`; `true` if the map changed.
    pub fn forget(&mut self, user: Option<&str>, visitors: &std::collections::HashSet<String>) -> bool {
        let before = self.links.len();
        self.links.retain(|v, l| !visitors.contains(v) && Some(l.user_id.as_str()) != user);
        self.links.len() != before
    }

    /// Every identified visitor with its user.
    pub fn users(&self) -> impl Iterator<Item = (&str, &str)> {
        self.links.iter().map(|(v, l)| (v.as_str(), l.user_id.as_str()))
    }

    /// The site's map file, if it has one.
    pub fn load(data: &DataDir, site: &SiteId) -> Result<Option<Self>> {
        let path = data.identity_map_file(site);
        if !path.exists() {
            return Ok(None);
        }
        let mut map = Self::default();
        for b in read_columns(&path, &["visitor_id", "user_id", "identified_at", "event_id"])? {
            map.fold_rows(&b, None)?;
        }
        Ok(Some(map))
    }

    /// The `visitor_id` and `user_id` columns of the site's map file, if it has one (what a
    /// reader needs, without building the map).
    pub fn load_columns(data: &DataDir, site: &SiteId) -> Result<Option<(StringArray, StringArray)>> {
        let path = data.identity_map_file(site);
        if !path.exists() {
            return Ok(None);
        }
        let batches = read_columns(&path, &["visitor_id", "user_id"])?;
        let (mut visitors, mut users) = (Vec::new(), Vec::new());
        for b in &batches {
            visitors.push(Arc::new(text_column(b, "visitor_id")?) as ArrayRef);
            users.push(Arc::new(text_column(b, "user_id")?) as ArrayRef);
        }
        let concat = |parts: Vec<ArrayRef>| -> Result<StringArray> {
            let refs: Vec<&dyn Array> = parts.iter().map(AsRef::as_ref).collect();
            Ok(match refs.is_empty() {
                true => StringArray::from(Vec::<&str>::new()),
                false => arrow::compute::concat(&refs)?.as_string::<i32>().clone(),
            })
        };
        Ok(Some((concat(visitors)?, concat(users)?)))
    }

    /// The site's map: its file, else rebuilt from the identify events in the site's data files
    /// (a store written before the map existed, or one whose map file was removed).
    pub fn load_or_rebuild(data: &DataDir, site: &SiteId) -> Result<Self> {
        match Self::load(data, site)? {
            Some(map) => Ok(map),
            None => Self::rebuild_from_events(data, site),
        }
    }

    fn rebuild_from_events(data: &DataDir, site: &SiteId) -> Result<Self> {
        let mut map = Self::default();
        let site_dir = data.events_dir().join(format!("site={site}"));
        for file in data.site_files(site, ..).map_err(super::parquet::io_err(&site_dir))? {
            for b in super::parquet::read_columns_or_skip(&file, &["name", "visitor_id", "user_id", "ts", "event_id"])?
            {
                map.fold_rows(&b, Some("name"))?;
            }
        }
        Ok(map)
    }

    /// Fold rows of (visitor_id, user_id, ts or identified_at, event_id) into the map; with
    /// `name_col`, only rows whose name is `identify`.
    fn fold_rows(&mut self, b: &RecordBatch, name_col: Option<&'static str>) -> Result<()> {
        let text = |n: &'static str| text_column(b, n);
        let (visitor, user, event) = (text("visitor_id")?, text("user_id")?, text("event_id")?);
        let ts_col = match b.column_by_name("identified_at") {
            Some(c) => c,
            None => column(b, "ts")?,
        };
        let ts = arrow::compute::cast(ts_col, &DataType::Int64)?;
        let ts = ts.as_primitive::<arrow::datatypes::Int64Type>();
        let names = name_col.map(text).transpose()?;
        for i in 0..b.num_rows() {
            if names.as_ref().is_some_and(|n| n.is_null(i) || n.value(i) != "identify") || user.is_null(i) {
                continue;
            }
            self.link(visitor.value(i), user.value(i), ts.value(i), event.value(i));
        }
        Ok(())
    }

    /// Write the map file atomically.
    pub fn save(&self, data: &DataDir, site: &SiteId) -> Result<()> {
        let mut rows: Vec<(&String, &Link)> = self.links.iter().collect();
        rows.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let cols: Vec<ArrayRef> = vec![
            Arc::new(rows.iter().map(|(v, _)| Some(v.as_str())).collect::<StringArray>()),
            Arc::new(rows.iter().map(|(_, l)| Some(l.user_id.as_str())).collect::<StringArray>()),
            Arc::new(
                TimestampMicrosecondArray::from(rows.iter().map(|(_, l)| l.ts).collect::<Vec<_>>())
                    .with_timezone("UTC"),
            ),
            Arc::new(rows.iter().map(|(_, l)| Some(l.event_id.as_str())).collect::<StringArray>()),
        ];
        let batch = RecordBatch::try_new(map_schema(), cols)?;
        write_site_file(&data.identity_map_file(site), &batch)
    }

    /// `batch` (of the file schema) with every row's `person_id` stamped from this map.
    pub fn stamp(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        // Without links every row's person is its own, which `to_record_batch` already wrote:
        // only rows read from files of schema version 1 (NULL) need one.
        if self.is_empty() && column(batch, "person_id")?.null_count() == 0 {
            return Ok(batch.clone());
        }
        let (visitor, user) = (text_column(batch, "visitor_id")?, text_column(batch, "user_id")?);
        let persons: StringArray = (0..batch.num_rows())
            .map(|i| Some(self.person_of((!user.is_null(i)).then(|| user.value(i)), visitor.value(i))))
            .collect();
        let idx = batch.schema().index_of("person_id")?;
        let mut cols = batch.columns().to_vec();
        cols[idx] = Arc::new(persons);
        Ok(RecordBatch::try_new(batch.schema(), cols)?)
    }
}

/// What tells one version of a map file from another (see [`file_stamp`]).
pub(crate) type Stamp = Option<(u64, std::time::SystemTime, u64)>;

/// The maps writers hold between flushes. Reading the file of 181k identified visitors took
/// 0.3 s, too much for every flush.
static HELD: Held<IdentityMap> = Held::new();

impl SiteFile for IdentityMap {
    fn path(data: &DataDir, site: &SiteId) -> std::path::PathBuf {
        data.identity_map_file(site)
    }
    fn held() -> &'static Held<Self> {
        &HELD
    }
    fn load(data: &DataDir, site: &SiteId) -> Result<Option<Self>> {
        IdentityMap::load(data, site)
    }
    fn rebuild(data: &DataDir, site: &SiteId) -> Result<Self> {
        IdentityMap::rebuild_from_events(data, site)
    }
    fn save(&self, data: &DataDir, site: &SiteId) -> Result<()> {
        IdentityMap::save(self, data, site)
    }
}

/// A file's inode, modification time and size. Every save renames a new file into place, so
/// the inode changes even where two saves fall in the same clock tick with the same size.
pub(crate) fn file_stamp(path: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.ino(), m.modified().ok()?, m.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_earliest_identify_wins_whatever_the_arrival_order() {
        let mut m = IdentityMap::default();
        assert!(m.link("v1", "bob", 20, "e2"));
        // An earlier identify arriving later (an import) replaces it; a later one does not.
        assert!(m.link("v1", "ann", 10, "e9"));
        assert!(!m.link("v1", "cid", 30, "e0"));
        // At the same instant the smaller event id wins, as `ORDER BY ts, event_id` would.
        assert!(m.link("v1", "dan", 10, "e1"));
        assert!(!m.link("v1", "eve", 10, "e5"));
        assert_eq!(m.user_of("v1"), Some("dan"));
        assert_eq!(m.person_of(None, "v1"), "u:dan");
        assert_eq!(m.person_of(Some("zed"), "v1"), "u:zed");
        assert_eq!(m.person_of(None, "v2"), "v:v2");
    }

    #[test]
    fn saves_and_loads_back() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = DataDir::new(tmp.path());
        let site = SiteId::parse("s").expect("site");
        assert_eq!(IdentityMap::load(&data, &site).expect("load"), None);
        let mut m = IdentityMap::default();
        m.link("v1", "ann", 10, "e1");
        m.link("v2", "bob", 11, "e2");
        m.save(&data, &site).expect("save");
        assert_eq!(IdentityMap::load(&data, &site).expect("load"), Some(m.clone()));
        // A save of a map of the same size within the same clock tick is still told apart.
        let path = data.identity_map_file(&site);
        let before = file_stamp(&path);
        m.link("v1", "aaa", 1, "e0");
        m.save(&data, &site).expect("save");
        assert!(before.is_some() && before != file_stamp(&path));
    }
}
