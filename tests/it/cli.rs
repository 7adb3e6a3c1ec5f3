//! The `footfall` command itself.

use std::process::Command;

use crate::support::shared;

fn footfall(args: &[&str], data: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_footfall")).args(args).arg("--data").arg(data).output().expect("run footfall")
}

#[test]
fn site_add_prints_keys_and_persists() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = footfall(
        &["site", "add", "shop", "--domain", "shop.example", "--domain", "https://www.shop.example/"],
        dir.path(),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let line = |label: &str| text.lines().find_map(|l| l.strip_prefix(label)).map(str::trim).map(str::to_owned);
    let write_key = line("write key:").expect("write key printed");
    let read_key = line("read key:").expect("read key printed");
    assert!(write_key.starts_with("ffw_") && read_key.starts_with("ffr_"), "{text}");
    assert_eq!(line("domains:").as_deref(), Some("shop.example"));

    let again = footfall(&["site", "add", "shop"], dir.path());
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("site shop already exists"));
    let bad = footfall(&["site", "add", "Shop_1"], dir.path());
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("site id must be"));

    let list = footfall(&["site", "list"], dir.path());
    let sites: serde_json::Value = serde_json::from_slice(&list.stdout).expect("site list is JSON");
    assert_eq!(sites[0]["id"], "shop");
    assert_eq!(sites[0]["write_key"], write_key.as_str());
    assert_eq!(
        (line("week start:").as_deref(), &sites[0]["week_start"]),
        (Some("Monday"), &serde_json::json!("monday"))
    );

    // Weeks from Sunday, for every weekly report of the site.
    let set = footfall(&["site", "set", "shop", "--week-start", "sunday"], dir.path());
    assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
    let list = footfall(&["site", "list"], dir.path());
    let sites: serde_json::Value = serde_json::from_slice(&list.stdout).expect("site list is JSON");
    assert_eq!(
        (&sites[0]["week_start"], &sites[0]["write_key"]),
        (&serde_json::json!("sunday"), &serde_json::json!(write_key))
    );
    let missing = footfall(&["site", "set", "nope", "--week-start", "sunday"], dir.path());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no site nope"), "{missing:?}");
    // Retention: a number of days, or everything again; a setting must be named.
    let set = footfall(&["site", "set", "shop", "--retention-days", "400"], dir.path());
    assert!(String::from_utf8_lossy(&set.stdout).contains("keeps:      400 days"), "{set:?}");
    let list = footfall(&["site", "list"], dir.path());
    let sites: serde_json::Value = serde_json::from_slice(&list.stdout).expect("site list is JSON");
    assert_eq!(
        (&sites[0]["retention_days"], &sites[0]["week_start"]),
        (&serde_json::json!(400), &serde_json::json!("sunday"))
    );
    let set = footfall(&["site", "set", "shop", "--keep-forever"], dir.path());
    assert!(String::from_utf8_lossy(&set.stdout).contains("keeps:      everything"), "{set:?}");
    for bad in [&["--retention-days", "0"][..], &[]] {
        let out = footfall(&[&["site", "set", "shop"][..], bad].concat(), dir.path());
        assert!(!out.status.success(), "{bad:?} is refused");
    }
}

#[test]
fn a_corrupt_geoip_database_stops_start_up_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = shared("geoip/GeoIP2-City-Test-Broken-Double-Format.mmdb");
    let out = Command::new(env!("CARGO_BIN_EXE_footfall"))
        .args(["serve", "--listen", "127.0.0.1:0", "--geoip"])
        .arg(&db)
        .arg("--data")
        .arg(dir.path())
        .output()
        .expect("run footfall");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("GeoIP database") && err.contains("cannot be used") && !err.contains("panicked"), "{err}");
}

#[test]
fn a_second_process_cannot_open_the_same_data_dir() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _lock = footfall::server::lock_data_dir(&footfall::store::paths::DataDir::new(dir.path())).expect("lock");
    let out = footfall(&["compact"], dir.path());
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("in use by another footfall process"));
}

#[test]
fn segments_are_saved_listed_and_deleted_from_the_command_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = footfall(
        &["segment", "save", "--site", "shop", "--name", "VIP buyers", r#"{"type": "orders", "at_least": 3}"#],
        dir.path(),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let saved: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(saved["id"], "vip-buyers");
    let bad = footfall(&["segment", "save", "--site", "shop", "--name", "x", r#"{"type": "orders"}"#], dir.path());
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("at_least or at_most"));
    let list = footfall(&["segment", "list", "--site", "shop"], dir.path());
    let v: serde_json::Value = serde_json::from_slice(&list.stdout).expect("json");
    assert_eq!(
        (v["saved"][0]["name"].clone(), v["templates"].as_array().map(Vec::len)),
        (serde_json::json!("VIP buyers"), Some(10))
    );
    assert!(footfall(&["segment", "delete", "--site", "shop", "vip-buyers"], dir.path()).status.success());
    assert!(!footfall(&["segment", "delete", "--site", "shop", "vip-buyers"], dir.path()).status.success());
}
