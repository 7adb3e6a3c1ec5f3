//! `footfall demo`: a populated shop in seconds. The data directory is filled with
//! [`crate::shopgen`]'s shop (site `shop`, 9 weeks ending now by default: a catalog of 120 products in 6
//! categories, weekly and daily seasonality, search/social/e-mail/paid channels with UTM
//! campaigns, 8 countries, 3 device kinds, product view → cart → checkout → purchase with
//! drop-offs, logins, returning buyers and the `checkout-button` experiment in which `green`
//! converts better), then footfall serves it like `footfall serve`.
//!
//! The directory holds a `demo.json` marker; a directory without one that is not empty is
//! refused, so the demo never overwrites real data. Each start regenerates the events, so the
//! last day always ends at the current time.

use std::path::Path;

use anyhow::{Context, bail};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::model::SiteId;
use crate::shopgen::ShopConfig;
use crate::sites::Sites;
use crate::store::paths::DataDir;

/// The demo's site id.
pub const SITE: &str = "shop";

/// What the demo generates.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DemoConfig {
    pub seed: u64,
    pub events: u64,
    pub visitors: u64,
    pub days: u32,
}

/// The prepared demo.
#[derive(Debug)]
pub struct Prepared {
    pub events: usize,
    pub read_key: String,
    pub shop: ShopConfig,
}

const MARKER: &str = "demo.json";

/// Fill `data` with the demo shop, its last day ending at `now`.
pub fn prepare(data: &DataDir, cfg: &DemoConfig, now: DateTime<Utc>) -> anyhow::Result<Prepared> {
    let root = data.root();
    claim(root)?;
    for dir in [data.events_dir(), data.wal_dir(), data.staging_dir()] {
        if dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("removing the previous demo's {}", dir.display()))?;
        }
    }
    let days = cfg.days.max(1);
    let shop = ShopConfig {
        site: SITE.to_owned(),
        seed: cfg.seed,
        events: cfg.events,
        visitors: cfg.visitors.max(1),
        start: now.date_naive() - Duration::days(i64::from(days) - 1),
        days,
    };
    let events = crate::bench::generate_until(data, &shop, now.timestamp_micros(), |_, _| {})?;
    let sites = Sites::open(&data.sites_file())?;
    let site = match sites.get(SITE) {
        Some(s) => (*s).clone(),
        None => sites.add(SiteId::parse(SITE)?, &[])?,
    };
    crate::fsutil::write_atomic(&root.join(MARKER), &serde_json::to_vec_pretty(cfg)?)?;
    Ok(Prepared { events, read_key: site.read_key, shop })
}

/// Make `root` the demo's: create it, or accept it if it is empty or already a demo's.
fn claim(root: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
    let is_demo = root.join(MARKER).exists();
    let empty = std::fs::read_dir(root)?.next().is_none();
    if !is_demo && !empty {
        bail!(
            "{} is not empty and is not a demo's data directory (no {MARKER}); the demo regenerates its data \
             at every start, so give it a directory of its own with --data",
            root.display()
        );
    }
    // Written first: a demo interrupted while generating can be started again.
    if !is_demo {
        std::fs::write(root.join(MARKER), b"{}")?;
    }
    Ok(())
}

/// Pages the demo's live visitors browse.
const LIVE_PAGES: [&str; 8] = [
    "/",
    "/sale",
    "/products/teapots-3",
    "/products/kettles-14",
    "/cart",
    "/blog/brewing-guide",
    "/about",
    "/shipping",
];
/// Browsers they browse with (one visitor per user agent and address).
const LIVE_AGENTS: [&str; 3] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
];

/// The live view's visitors: every `every`, a few of a small crowd of visitors (documentation
/// addresses, so no real place) open a page, through the ingestor as a browser's events would
/// arrive, so a newcomer's Live tab moves. Stored like any event; `footfall demo --no-live`
/// leaves them out (the browser tests compare figures that must not move under them).
pub async fn live_visitors(ingestor: std::sync::Arc<crate::ingest::Ingestor>, every: std::time::Duration) {
    let mut tick: u64 = 0;
    loop {
        tokio::time::sleep(every).await;
        tick += 1;
        // 3 of 14 visitors each tick, each on a page that moves on as ticks pass.
        for k in 0..3u64 {
            let v = (tick * 5 + k * 7) % 14;
            let page = LIVE_PAGES[((tick / 2 + v * 3) % LIVE_PAGES.len() as u64) as usize];
            let body =
                serde_json::json!({"site": SITE, "name": "pageview", "url": format!("https://shop.example{page}")});
            let meta = crate::ingest::RequestMeta {
                ip: Some(std::net::IpAddr::from([203, 0, 113, 10 + v as u8])),
                user_agent: Some(LIVE_AGENTS[(v % 3) as usize].to_owned()),
                origin: Some("https://shop.example".into()),
                write_key: None,
                privacy_signal: false,
            };
            if let Err(e) = ingestor.ingest(body.to_string().as_bytes(), &meta).await {
                tracing::debug!(error = %e, "a demo live visitor's pageview was refused");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_a_directory_that_is_not_a_demo() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("sites.json"), "{}").expect("write");
        let err = claim(dir.path()).expect_err("refused");
        assert!(err.to_string().contains("not a demo's data directory"), "{err}");
        let empty = tempfile::tempdir().expect("tempdir");
        claim(empty.path()).expect("an empty directory is fine");
        claim(empty.path()).expect("and again, now that it is a demo's");
    }
}
