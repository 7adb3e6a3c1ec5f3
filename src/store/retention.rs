//! Retention: a site keeps `retention_days` days of events (`footfall site set S
//! --retention-days N`); older days are dropped, each partition whole (its events and its
//! session hours), by `serve`'s background task and by `footfall compact`.
//!
//! A day is kept while it is within the last N UTC days counting today: with N = 30 on
//! 2026-03-31, 2026-03-02 is the oldest day kept. A partition disappears in one rename (to a
//! staging directory, then removed), so a reader lists it whole or not at all.

use chrono::NaiveDate;

use super::parquet::io_err;
use super::paths::DataDir;
use super::{Result, StoreGuard};
use crate::model::SiteId;

/// Drop the days of `site` older than `keep_days` days before `today` (UTC); returns them.
pub fn drop_expired(
    data: &DataDir,
    guard: &StoreGuard,
    site: &SiteId,
    keep_days: u32,
    today: NaiveDate,
) -> Result<Vec<NaiveDate>> {
    let oldest_kept = today - chrono::Duration::days(i64::from(keep_days.max(1)) - 1);
    let _g = guard.lock().unwrap_or_else(|p| p.into_inner());
    let expired: Vec<NaiveDate> =
        data.site_dates(site).map_err(io_err(&data.events_dir()))?.into_iter().filter(|d| *d < oldest_kept).collect();
    for date in &expired {
        for dir in [data.partition_dir(site, *date), data.sessions_partition_dir(site, *date)] {
            super::compact::remove_whole(data, &dir)?;
        }
    }
    Ok(expired)
}

/// Apply every site's retention on `today`; returns the days dropped.
pub fn apply(data: &DataDir, guard: &StoreGuard, sites: &crate::sites::Sites, today: NaiveDate) -> Result<usize> {
    let mut dropped = 0;
    for site in sites.list() {
        if let Some(days) = site.retention_days {
            let gone = drop_expired(data, guard, &site.id, days, today)?;
            if !gone.is_empty() {
                tracing::info!(site = %site.id, days = gone.len(), oldest = %gone[0], "dropped days past the site's retention");
            }
            dropped += gone.len();
        }
    }
    Ok(dropped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Event;
    use crate::wal::SegmentHeader;

    #[test]
    fn days_older_than_the_retention_go_whole_and_the_rest_stay() {
        let tmp = tempfile::tempdir().expect("tmp");
        let data = DataDir::new(tmp.path());
        let day = |d: u32| NaiveDate::from_ymd_opt(2026, 3, d).expect("date");
        let events: Vec<Event> = [1, 2, 3, 31]
            .iter()
            .map(|&d| Event {
                event_id: format!("e{d}"),
                site: "shop".into(),
                ts: day(d).and_hms_opt(12, 0, 0).expect("t").and_utc().timestamp_micros(),
                name: "pageview".into(),
                visitor_id: "v".into(),
                session_id: format!("s{d}"),
                ..Event::default()
            })
            .collect();
        super::super::flush_events(&data, SegmentHeader { created_ms: 1, seq: 1 }, events).expect("flush");
        let site = SiteId::parse("shop").expect("site");
        // 30 days counting Mar 31: Mar 2 to Mar 31.
        let gone = drop_expired(&data, &StoreGuard::default(), &site, 30, day(31)).expect("drop");
        assert_eq!(gone, vec![day(1)]);
        assert_eq!(data.site_dates(&site).expect("dates"), vec![day(2), day(3), day(31)]);
        assert!(!data.sessions_partition_dir(&site, day(1)).exists());
        assert!(data.sessions_partition_dir(&site, day(2)).exists());
        assert!(drop_expired(&data, &StoreGuard::default(), &site, 30, day(31)).expect("drop").is_empty());
    }
}
