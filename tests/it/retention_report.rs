//! The retention report against a per-person loop: for random visitors with history before the
//! range, by day and by week (the range starting mid-week), in UTC and Berlin time (in January
//! and across the change to summer time), with and without a breakdown, every cohort's size and its people in each later period are those the
//! loop counts.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, Duration, NaiveDate, TimeZone};
use chrono_tz::Tz;
use footfall::model::Event;
use footfall::reports::retention::{RetentionRequest, retention};
use footfall::store::flush_events;
use footfall::store::paths::DataDir;
use footfall::wal::SegmentHeader;
use proptest::prelude::*;
use serde_json::json;

/// 2026-01-01T00:00:00Z in microseconds.
const JAN1: i64 = 1_767_225_600 * 1_000_000;
const MINUTE: i64 = 60_000_000;
const FROM: (u32, u32) = (1, 7);
const TO: (u32, u32) = (1, 13);
const PERIODS: usize = 4;
/// Days from Jan 1 to Mar 22: the range then spans Europe's change to summer time (Mar 29),
/// where a local day is 23 hours.
const SPRING: i64 = 80;

/// (visitor, minute since Jan 1 00:00 UTC, device).
type Row = (usize, i64, &'static str);

fn arb_rows() -> impl Strategy<Value = Vec<Row>> {
    prop::collection::vec((0..12usize, 0..(16 * 24 * 60i64), prop::sample::select(vec!["desktop", "mobile"])), 1..80)
}

fn day(t: (u32, u32)) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, t.0, t.1).expect("date")
}

/// Cohort rows (day, first device or none, size, people per period) counted person by person.
fn reference(
    rows: &[Row],
    tz: Tz,
    by_device: bool,
    week: bool,
    shift: i64,
) -> Vec<(String, Option<String>, u64, Vec<u64>)> {
    let day = |t| day(t) + Duration::days(shift);
    let midnight = |d: NaiveDate| {
        tz.from_local_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight")).earliest().expect("local").timestamp_micros()
    };
    let local_day = |ts: i64| chrono::DateTime::from_timestamp_micros(ts).expect("ts").with_timezone(&tz).date_naive();
    let (start, end) = (midnight(day(FROM)), midnight(day(TO) + Duration::days(1)));
    // A period: its first day (Monday for weeks); the last return period ends `PERIODS` after
    // the last cohort period.
    let step = if week { 7 } else { 1 };
    let bucket =
        |d: NaiveDate| if week { d - Duration::days(i64::from(d.weekday().num_days_from_monday())) } else { d };
    let returns_end = midnight(bucket(day(TO)) + Duration::days(step * PERIODS as i64));
    let mut by_visitor: BTreeMap<usize, Vec<(i64, &str)>> = BTreeMap::new();
    for (i, &(v, minute, device)) in rows.iter().enumerate() {
        by_visitor.entry(v).or_default().push((JAN1 + (shift * 24 * 60 + minute) * MINUTE + i as i64, device));
    }
    let mut cohorts: BTreeMap<(NaiveDate, Option<String>), Vec<u64>> = BTreeMap::new();
    for events in by_visitor.values_mut() {
        events.sort();
        let Some(&(first, device)) = events.iter().find(|(ts, _)| *ts < end) else { continue };
        if first < start {
            continue;
        }
        let cohort = bucket(local_day(first));
        let active: BTreeSet<NaiveDate> = events
            .iter()
            .filter(|(ts, _)| (start..returns_end).contains(ts))
            .map(|(ts, _)| bucket(local_day(*ts)))
            .collect();
        let cells = cohorts.entry((cohort, by_device.then(|| device.to_owned()))).or_insert_with(|| vec![0; PERIODS]);
        cells[0] += 1;
        for (k, cell) in cells.iter_mut().enumerate().skip(1) {
            *cell += u64::from(active.contains(&(cohort + Duration::days(step * k as i64))));
        }
    }
    cohorts.into_iter().map(|((d, v), cells)| (d.to_string(), v, cells[0], cells)).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn first_time_retention_matches_a_per_person_loop(
        rows in arb_rows(),
        tz in prop::sample::select(vec!["UTC", "Europe/Berlin"]),
        by_device in any::<bool>(),
        week in any::<bool>(),
        spring in any::<bool>(),
    ) {
        let shift = if spring { SPRING } else { 0 };
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = DataDir::new(tmp.path());
        let events: Vec<Event> = rows
            .iter()
            .enumerate()
            .map(|(i, &(v, minute, device))| Event {
                event_id: format!("e{i:03}"),
                site: "shop".into(),
                visitor_id: format!("v{v}"),
                session_id: format!("s{v}"),
                ts: JAN1 + (shift * 24 * 60 + minute) * MINUTE + i as i64,
                name: "pageview".into(),
                device: Some(device.into()),
                ..Default::default()
            })
            .collect();
        flush_events(&data, SegmentHeader { created_ms: 1, seq: 1 }, events).expect("flush");
        let range = (day(FROM) + Duration::days(shift), day(TO) + Duration::days(shift));
        let mut body = json!({"site": "shop", "date_range": {"from": range.0, "to": range.1}, "timezone": tz,
            "period": if week { "week" } else { "day" }, "periods": PERIODS});
        if by_device {
            body["breakdown"] = json!("device");
        }
        let req: RetentionRequest = footfall::reports::parse_request(body.to_string().as_bytes()).expect("request");
        let env = crate::support::report_env(&data, JAN1 + 365 * 24 * 60 * MINUTE);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let r = rt.block_on(retention(&env, &req)).expect("retention");
        // Within a day the report orders breakdown values by size; the loop by value.
        let mut got: Vec<_> = r
            .cohorts
            .iter()
            .filter(|c| c.size > 0)
            .map(|c| (c.cohort.clone(), c.breakdown_value.clone(), c.size, c.values.iter().map(|v| v.people).collect::<Vec<_>>()))
            .collect();
        got.sort();
        prop_assert_eq!(got, reference(&rows, tz.parse().expect("tz"), by_device, week, shift));
    }
}
