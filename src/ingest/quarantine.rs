//! Quarantine: the events ingestion refused, kept with the reason so a site owner can see later
//! what was refused and why (as Snowplow keeps failed events and PostHog shows ingestion
//! warnings).
//!
//! Per site, the newest [`CAP`] refusals, oldest dropped first, in
//! `<data>/rejected/site=<site>.jsonl`: one JSON object per line with `at`, `reason`, `field`,
//! `message` and the refused `item` as sent, less its `ip` (the raw IP is never kept) and cut
//! to [`MAX_ITEM_BYTES`]. An item sent with a write key is that site's (its backend sent it);
//! a browser's item is kept under the site it names if that site exists, else nowhere (it is
//! nobody's to read). Every refusal is counted by reason in
//! `footfall_events_rejected_by_reason_total`. Appending is one small write per refusal; the
//! file is rewritten to the newest [`CAP`] lines once it holds twice as many.

use std::collections::{HashMap, VecDeque};
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Mutex;

use serde_json::{Value, json};

use super::validate::ItemError;

/// Refusals kept per site.
pub const CAP: usize = 1_000;
/// The longest item kept, as JSON text; a longer one is kept as its first bytes.
pub const MAX_ITEM_BYTES: usize = 4_096;

/// A refusal's kind, for `/metrics` (a small fixed set, whatever the item held).
pub fn reason(error: &ItemError) -> &'static str {
    if error.field == "site" {
        "site"
    } else if error.field == "authorization" {
        "authorization"
    } else if error.message.starts_with("unknown field") {
        "unknown_field"
    } else if error.message.ends_with("is required") {
        "missing_field"
    } else {
        "invalid_value"
    }
}

struct Site {
    lines: VecDeque<String>,
    /// Lines in the file (kept ones and dropped ones not yet rewritten away).
    in_file: usize,
}

/// The refused events of every site of a data directory.
pub struct Quarantine {
    dir: PathBuf,
    sites: Mutex<HashMap<String, Site>>,
}

impl Quarantine {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir, sites: Mutex::new(HashMap::new()) }
    }

    fn file(&self, site: &str) -> PathBuf {
        self.dir.join(format!("site={site}.jsonl"))
    }

    fn load(&self, site: &str) -> Site {
        let text = std::fs::read_to_string(self.file(site)).unwrap_or_default();
        let all: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
        let lines = all[all.len().saturating_sub(CAP)..].iter().map(|l| (*l).to_owned()).collect();
        Site { lines, in_file: all.len() }
    }

    /// Keep one refused item of `site` (a site that exists), refused at `now` (µs).
    pub fn keep(&self, site: &str, item: Option<Value>, error: &ItemError, now: i64) {
        let item = item.map(|mut v| {
            if let Some(o) = v.as_object_mut() {
                o.remove("ip");
            }
            let text = v.to_string();
            if text.len() <= MAX_ITEM_BYTES {
                v
            } else {
                let cut = (0..=MAX_ITEM_BYTES).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
                Value::String(text[..cut].to_owned())
            }
        });
        let at = chrono::DateTime::from_timestamp_micros(now).unwrap_or_default().to_rfc3339();
        let line = json!({"at": at, "reason": reason(error), "field": error.field, "message": error.message,
                          "item": item})
        .to_string();
        let mut sites = self.sites.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let s = sites.entry(site.to_owned()).or_insert_with(|| self.load(site));
        s.lines.push_back(line.clone());
        if s.lines.len() > CAP {
            s.lines.pop_front();
        }
        let path = self.file(site);
        let written = if s.in_file + 1 >= 2 * CAP {
            let mut text = s.lines.iter().fold(String::new(), |acc, l| acc + l + "\n");
            text.shrink_to_fit();
            crate::fsutil::write_atomic(&path, text.as_bytes()).map(|()| s.lines.len())
        } else {
            std::fs::create_dir_all(&self.dir)
                .and_then(|()| std::fs::OpenOptions::new().create(true).append(true).open(&path))
                .and_then(|mut f| writeln!(f, "{line}"))
                .map(|()| s.in_file + 1)
        };
        match written {
            Ok(n) => s.in_file = n,
            Err(e) => tracing::warn!(error = %e, path = %path.display(), "could not keep a refused event"),
        }
    }

    /// The refusals kept for `site`, newest first, at most `limit`.
    pub fn list(&self, site: &str, limit: usize) -> Vec<Value> {
        let mut sites = self.sites.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let s = sites.entry(site.to_owned()).or_insert_with(|| self.load(site));
        s.lines.iter().rev().take(limit).filter_map(|l| serde_json::from_str(l).ok()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(i: usize) -> ItemError {
        ItemError { index: i, field: "name".into(), message: "name is required".into() }
    }

    #[test]
    fn keeps_the_newest_per_site_without_the_ip_across_restarts() {
        let tmp = tempfile::tempdir().expect("tmp");
        let q = Quarantine::new(tmp.path().join("rejected"));
        for i in 0..(2 * CAP + 5) {
            q.keep("shop", Some(json!({"site": "shop", "n": i, "ip": "81.2.69.160"})), &error(i), 1_000_000);
        }
        q.keep("blog", Some(json!({"site": "blog"})), &error(0), 1_000_000);
        let list = q.list("shop", usize::MAX);
        assert_eq!(list.len(), CAP);
        assert_eq!(list[0]["item"]["n"], 2 * CAP + 4, "newest first");
        assert_eq!(list[CAP - 1]["item"]["n"], CAP + 5, "the oldest dropped first");
        assert_eq!((list[0]["reason"].as_str(), list[0]["field"].as_str()), (Some("missing_field"), Some("name")));
        assert_eq!(q.list("blog", 10).len(), 1);
        // The file stays bounded, holds no IP, and a new process reads the same.
        let text = std::fs::read_to_string(tmp.path().join("rejected/site=shop.jsonl")).expect("file");
        assert!(text.lines().count() < 2 * CAP, "{}", text.lines().count());
        assert!(!text.contains("81.2.69.160"));
        let again = Quarantine::new(tmp.path().join("rejected"));
        assert_eq!(again.list("shop", usize::MAX), list);
    }

    #[test]
    fn a_huge_item_is_cut() {
        let tmp = tempfile::tempdir().expect("tmp");
        let q = Quarantine::new(tmp.path().to_owned());
        q.keep("shop", Some(json!({"name": "é".repeat(10_000)})), &error(0), 0);
        let kept = &q.list("shop", 1)[0]["item"];
        assert!(kept.as_str().is_some_and(|s| s.len() <= MAX_ITEM_BYTES && s.starts_with("{\"name\"")), "{kept}");
    }
}
