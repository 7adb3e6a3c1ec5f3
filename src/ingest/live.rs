//! The live view: who is on each site now. Every stored event a browser sent updates its
//! visitor's last time and page in memory; a read counts the visitors seen in the last
//! [`WINDOW_MICROS`] by the ingestor's clock. Nothing is read from disk, so polling it every few
//! seconds costs a lock and a pass over the site's recent visitors.
//!
//! Memory is bounded: entries older than the window are dropped on every read and every
//! [`PRUNE_EVERY`] updates, and a site keeps at most [`MAX_PER_SITE`] visitors (the oldest go
//! first).

use std::collections::HashMap;
use std::sync::Mutex;

use serde::Serialize;

use crate::model::{Event, ORIGIN_SERVER};

/// "Now" is the last five minutes, as Plausible's realtime view counts it.
pub const WINDOW_MICROS: i64 = 5 * 60 * 1_000_000;
const PRUNE_EVERY: usize = 10_000;
const MAX_PER_SITE: usize = 100_000;

#[derive(Clone)]
struct Seen {
    ts: i64,
    page: Option<String>,
    country: Option<String>,
    device: Option<String>,
}

#[derive(Default)]
struct State {
    sites: HashMap<String, HashMap<String, Seen>>,
    updates: usize,
}

/// Who is on each site now.
#[derive(Default)]
pub struct Live(Mutex<State>);

/// A value and how many current visitors have it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Count {
    pub value: String,
    pub visitors: usize,
}

/// The live view of one site.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct LiveView {
    pub window_seconds: i64,
    /// Visitors with an event in the window.
    pub visitors: usize,
    /// The page each is on (their latest page), most visitors first, then by name; at most 20.
    pub pages: Vec<Count>,
    pub countries: Vec<Count>,
    pub devices: Vec<Count>,
}

impl Live {
    /// Take stored events into account (the backend's, sent with a write key, are not visits).
    pub fn saw(&self, events: &[Event], now: i64) {
        let mut st = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for e in events.iter().filter(|e| e.origin.as_deref() != Some(ORIGIN_SERVER)) {
            // On the ingest path: a known site and visitor are updated in place, not re-keyed.
            if !st.sites.contains_key(&e.site) {
                st.sites.insert(e.site.clone(), HashMap::new());
            }
            let site = st.sites.get_mut(&e.site).expect("inserted above");
            match site.get_mut(&e.visitor_id) {
                Some(seen) => {
                    seen.ts = e.ts;
                    if e.path.is_some() {
                        seen.page.clone_from(&e.path);
                    }
                    seen.country.clone_from(&e.country);
                    seen.device.clone_from(&e.device);
                }
                None => {
                    let seen =
                        Seen { ts: e.ts, page: e.path.clone(), country: e.country.clone(), device: e.device.clone() };
                    site.insert(e.visitor_id.clone(), seen);
                }
            }
            if site.len() > MAX_PER_SITE {
                prune(site, now);
                if site.len() > MAX_PER_SITE {
                    let mut times: Vec<i64> = site.values().map(|s| s.ts).collect();
                    times.sort_unstable();
                    let cut = times[times.len() - MAX_PER_SITE];
                    site.retain(|_, s| s.ts >= cut);
                }
            }
        }
        st.updates += events.len();
        if st.updates >= PRUNE_EVERY {
            st.updates = 0;
            for site in st.sites.values_mut() {
                prune(site, now);
            }
            st.sites.retain(|_, s| !s.is_empty());
        }
    }

    /// The visitors of `site` in the window ending at `now`.
    pub fn view(&self, site: &str, now: i64) -> LiveView {
        let mut st = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let site = st.sites.entry(site.to_owned()).or_default();
        prune(site, now);
        let seen: Vec<&Seen> = site.values().collect();
        let count = |f: &dyn Fn(&Seen) -> Option<&String>| {
            let mut by: HashMap<&str, usize> = HashMap::new();
            for s in &seen {
                *by.entry(f(s).map_or("(none)", String::as_str)).or_default() += 1;
            }
            let mut v: Vec<Count> =
                by.into_iter().map(|(value, visitors)| Count { value: value.to_owned(), visitors }).collect();
            v.sort_by(|a, b| b.visitors.cmp(&a.visitors).then_with(|| a.value.cmp(&b.value)));
            v.truncate(20);
            v
        };
        LiveView {
            window_seconds: WINDOW_MICROS / 1_000_000,
            visitors: seen.len(),
            pages: count(&|s| s.page.as_ref()),
            countries: count(&|s| s.country.as_ref()),
            devices: count(&|s| s.device.as_ref()),
        }
    }
}

fn prune(site: &mut HashMap<String, Seen>, now: i64) {
    site.retain(|_, s| s.ts > now - WINDOW_MICROS);
}
