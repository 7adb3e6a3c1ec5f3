//! Cookieless visitor ids and 30-minute sessions.
//!
//! Without a first-party id (sent only after consent), a visitor is
//! `SipHash-2-4(key = daily salt)(site, ip, user agent)`, 128 bits, hex. Salts are random,
//! one per UTC day; yesterday's is kept so a visit that crosses midnight keeps its id, and
//! older salts are destroyed, so ids cannot be linked across days and the IP cannot be
//! recovered from them. Salts persist in `<data>/salts.json` (replaced atomically) so a
//! restart does not split visitors.

use std::collections::HashMap;
use std::hash::Hasher;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use siphasher::sip128::{Hasher128, SipHasher24};

use crate::fsutil::write_atomic;

/// Inactivity that ends a session.
pub const SESSION_TIMEOUT_MICROS: i64 = 30 * 60 * 1_000_000;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Salt {
    day: NaiveDate,
    key: [u8; 16],
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct SaltState {
    today: Option<Salt>,
    yesterday: Option<Salt>,
}

/// The daily salts.
pub struct Salts {
    path: Option<PathBuf>,
    state: Mutex<SaltState>,
}

fn random_key() -> [u8; 16] {
    let mut k = [0u8; 16];
    getrandom::fill(&mut k).expect("the OS random source works");
    k
}

impl Salts {
    /// Salts persisted at `path` (loaded if present).
    pub fn load(path: &Path) -> std::io::Result<Self> {
        let state = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "salts file unreadable; starting with fresh salts");
                SaltState::default()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => SaltState::default(),
            Err(e) => return Err(e),
        };
        Ok(Self { path: Some(path.to_owned()), state: Mutex::new(state) })
    }

    /// Salts kept in memory only (tests).
    pub fn in_memory() -> Self {
        Self { path: None, state: Mutex::new(SaltState::default()) }
    }

    /// Today's salt and, if it exists, yesterday's; rotates (and destroys older salts) when
    /// `day` is new.
    pub fn for_day(&self, day: NaiveDate) -> ([u8; 16], Option<[u8; 16]>) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if st.today.as_ref().is_none_or(|s| s.day < day) {
            let previous = st.today.take().filter(|s| day.pred_opt() == Some(s.day));
            *st = SaltState { today: Some(Salt { day, key: random_key() }), yesterday: previous };
            if let Some(path) = &self.path {
                let bytes = serde_json::to_vec(&*st).expect("salts serialize");
                if let Err(e) = write_atomic(path, &bytes) {
                    tracing::error!(error = %e, "could not persist visitor salts; ids will change at restart");
                }
            }
        }
        let today = st.today.as_ref().map(|s| s.key).expect("set above");
        (today, st.yesterday.as_ref().map(|s| s.key))
    }
}

/// The cookieless visitor id for one salt.
pub fn visitor_hash(salt: &[u8; 16], site: &str, ip: Option<IpAddr>, user_agent: &str) -> String {
    let mut h = SipHasher24::new_with_key(salt);
    h.write(site.as_bytes());
    h.write_u8(0);
    match ip {
        Some(IpAddr::V4(v4)) => h.write(&v4.octets()),
        Some(IpAddr::V6(v6)) => h.write(&v6.octets()),
        None => h.write_u8(0xff),
    }
    h.write_u8(0);
    h.write(user_agent.as_bytes());
    format!("{:032x}", h.finish128().as_u128())
}

struct Open {
    session_id: String,
    last_ts: i64,
}

/// Server-side sessions: a visitor's session ends after 30 minutes without events.
#[derive(Default)]
pub struct Sessions {
    /// site → visitor → open session
    open: Mutex<HashMap<String, HashMap<String, Open>>>,
}

impl Sessions {
    /// Pick the visitor id and session for an event at `ts`. `candidates` are the visitor ids
    /// this visitor may have: today's first, then yesterday's. An open session under any of
    /// them continues (so midnight does not split a visit); otherwise a new session starts
    /// under the first candidate.
    pub fn resolve(&self, site: &str, candidates: &[String], ts: i64) -> (String, String) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let visitors = match open.get_mut(site) {
            Some(v) => v,
            None => open.entry(site.to_owned()).or_default(),
        };
        if visitors.len() > 100_000 {
            visitors.retain(|_, s| ts - s.last_ts <= SESSION_TIMEOUT_MICROS);
        }
        for v in candidates {
            if let Some(s) = visitors.get_mut(v.as_str())
                && ts - s.last_ts <= SESSION_TIMEOUT_MICROS
            {
                s.last_ts = s.last_ts.max(ts);
                return (v.clone(), s.session_id.clone());
            }
        }
        let visitor = candidates.first().cloned().unwrap_or_default();
        let session_id = ulid::Ulid::from_parts(u64::try_from(ts / 1000).unwrap_or(0), rand_u128()).to_string();
        visitors.insert(visitor.clone(), Open { session_id: session_id.clone(), last_ts: ts });
        (visitor, session_id)
    }
}

fn rand_u128() -> u128 {
    rand::random()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 5, d).expect("date")
    }

    #[test]
    fn hash_depends_on_every_input() {
        let s = [7u8; 16];
        let ip: IpAddr = "203.0.113.9".parse().expect("ip");
        let base = visitor_hash(&s, "shop", Some(ip), "UA");
        assert_eq!(base.len(), 32);
        assert_eq!(base, visitor_hash(&s, "shop", Some(ip), "UA"));
        assert_ne!(base, visitor_hash(&[8u8; 16], "shop", Some(ip), "UA"));
        assert_ne!(base, visitor_hash(&s, "shop2", Some(ip), "UA"));
        assert_ne!(base, visitor_hash(&s, "shop", Some("203.0.113.10".parse().expect("ip")), "UA"));
        assert_ne!(base, visitor_hash(&s, "shop", Some(ip), "UA2"));
        assert!(!base.contains("203"));
    }

    #[test]
    fn salts_rotate_daily_keep_yesterday_and_destroy_older() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("salts.json");
        let salts = Salts::load(&path).expect("load");
        let (d1, prev) = salts.for_day(day(1));
        assert_eq!(prev, None);
        assert_eq!(salts.for_day(day(1)).0, d1);
        let (d2, prev) = salts.for_day(day(2));
        assert_ne!(d2, d1);
        assert_eq!(prev, Some(d1));
        // Persisted: a restart sees the same salts.
        assert_eq!(Salts::load(&path).expect("load").for_day(day(2)), (d2, Some(d1)));
        // Two days later: nothing older than yesterday survives, on disk either.
        let (d4, prev) = salts.for_day(day(4));
        assert_eq!(prev, None);
        let on_disk = std::fs::read_to_string(&path).expect("read");
        let d1_json = serde_json::to_string(&d1).expect("json");
        assert!(!on_disk.contains(&d1_json[1..d1_json.len() - 1]));
        assert_ne!(d4, d2);
    }

    #[test]
    fn sessions_split_after_thirty_idle_minutes() {
        let s = Sessions::default();
        let v = vec!["v1".to_owned()];
        let (_, a) = s.resolve("shop", &v, 0);
        let (_, b) = s.resolve("shop", &v, SESSION_TIMEOUT_MICROS);
        assert_eq!(a, b);
        let (_, c) = s.resolve("shop", &v, 2 * SESSION_TIMEOUT_MICROS + 1);
        assert_ne!(b, c);
        let (_, other_site) = s.resolve("blog", &v, 2 * SESSION_TIMEOUT_MICROS + 2);
        assert_ne!(c, other_site);
    }

    #[test]
    fn a_visit_across_midnight_keeps_yesterdays_id() {
        let s = Sessions::default();
        let (v, a) = s.resolve("shop", &["yesterday-id".to_owned()], 100);
        let (v2, b) = s.resolve("shop", &["today-id".to_owned(), "yesterday-id".to_owned()], 200);
        assert_eq!((v2.as_str(), &b), ("yesterday-id", &a));
        assert_eq!(v, "yesterday-id");
        let (v3, _) = s.resolve("shop", &["today-id".to_owned(), "other".to_owned()], 300);
        assert_eq!(v3, "today-id");
    }
}
