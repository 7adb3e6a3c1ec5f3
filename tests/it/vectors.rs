//! Enrichment against published test vectors: uap-core, isbot, MaxMind.
//! Run with `--nocapture` to see the pass rates.

use std::collections::{BTreeMap, BTreeSet};

use footfall::ingest::enrich::geo::{Geo, GeoInfo};
use footfall::ingest::enrich::ua::{UaParser, uap_extract};
use serde_yaml::Value as Yaml;

use crate::support::shared;

fn yaml(rel: &str) -> Yaml {
    serde_yaml::from_str(&std::fs::read_to_string(shared(rel)).expect("vector file")).expect("yaml")
}

fn text(v: &Yaml, key: &str) -> Option<String> {
    match v.get(key)? {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn rate(name: &str, passed: usize, total: usize, failures: &[String]) -> f64 {
    let r = passed as f64 / total as f64;
    println!("{name}: {passed}/{total} ({:.2}%)", r * 100.0);
    for f in failures.iter().take(5) {
        println!("  e.g. {f}");
    }
    r
}

fn cases(rel: &str) -> Vec<Yaml> {
    yaml(rel).get("test_cases").and_then(Yaml::as_sequence).cloned().expect("test_cases")
}

#[test]
fn uap_core_browser_vectors() {
    let (mut ok, mut fails) = (0, Vec::new());
    let all = cases("ua/uap-core/test_ua.yaml");
    for c in &all {
        let ua = text(c, "user_agent_string").unwrap_or_default();
        let got = uap_extract(&ua).0;
        let got = (
            got.as_ref().map(|v| v.family.clone()),
            got.as_ref().and_then(|v| v.major.clone()),
            got.as_ref().and_then(|v| v.minor.clone()),
            got.as_ref().and_then(|v| v.patch.clone()),
        );
        let want = (text(c, "family"), text(c, "major"), text(c, "minor"), text(c, "patch"));
        let got = (got.0.or(Some("Other".into())), got.1, got.2, got.3);
        if got == want { ok += 1 } else { fails.push(format!("{ua}: got {got:?}, want {want:?}")) }
    }
    assert!(rate("uap-core test_ua.yaml", ok, all.len(), &fails) >= 0.99);
}

#[test]
fn uap_core_os_vectors() {
    let (mut ok, mut fails) = (0, Vec::new());
    let all = cases("ua/uap-core/test_os.yaml");
    for c in &all {
        let ua = text(c, "user_agent_string").unwrap_or_default();
        let o = uap_extract(&ua).1;
        let got = (
            Some(o.as_ref().map_or("Other".to_owned(), |v| v.os.clone())),
            o.as_ref().and_then(|v| v.major.clone()),
            o.as_ref().and_then(|v| v.minor.clone()),
            o.as_ref().and_then(|v| v.patch.clone()),
            o.as_ref().and_then(|v| v.patch_minor.clone()),
        );
        let want = (text(c, "family"), text(c, "major"), text(c, "minor"), text(c, "patch"), text(c, "patch_minor"));
        if got == want { ok += 1 } else { fails.push(format!("{ua}: got {got:?}, want {want:?}")) }
    }
    assert!(rate("uap-core test_os.yaml", ok, all.len(), &fails) >= 0.99);
}

#[test]
fn uap_core_device_vectors() {
    let (mut ok, mut fails) = (0, Vec::new());
    let all = cases("ua/uap-core/test_device.yaml");
    for c in &all {
        let ua = text(c, "user_agent_string").unwrap_or_default();
        let d = uap_extract(&ua).2;
        let got = (
            Some(d.as_ref().map_or("Other".to_owned(), |v| v.device.clone())),
            d.as_ref().and_then(|v| v.brand.clone()),
            d.as_ref().and_then(|v| v.model.clone()),
        );
        let want = (text(c, "family"), text(c, "brand"), text(c, "model"));
        if got == want { ok += 1 } else { fails.push(format!("{ua}: got {got:?}, want {want:?}")) }
    }
    assert!(rate("uap-core test_device.yaml", ok, all.len(), &fails) >= 0.99);
}

fn isbot_agents(rel: &str) -> Vec<String> {
    let Yaml::Mapping(m) = yaml(rel) else { panic!("{rel} is a mapping") };
    m.values()
        .flat_map(|v| match v {
            Yaml::Sequence(s) => s.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect(),
            Yaml::String(s) => vec![s.clone()],
            _ => vec![],
        })
        .collect()
}

#[test]
fn isbot_crawlers_are_all_flagged() {
    let p = UaParser::new();
    let all = isbot_agents("ua/isbot/crawlers.yml");
    let missed: Vec<String> = all.iter().filter(|ua| !p.parse(ua).is_bot).cloned().collect();
    let r = rate("isbot crawlers.yml flagged", all.len() - missed.len(), all.len(), &missed);
    assert!(all.len() > 500, "the fixture parsed into hundreds of crawlers");
    assert_eq!(r, 1.0, "every crawler must be flagged");
}

#[test]
fn isbot_browsers_all_pass() {
    let p = UaParser::new();
    let all = isbot_agents("ua/isbot/browsers.yml");
    let flagged: Vec<String> = all.iter().filter(|ua| p.parse(ua).is_bot).cloned().collect();
    let r = rate("isbot browsers.yml passed", all.len() - flagged.len(), all.len(), &flagged);
    assert!(all.len() > 100);
    assert_eq!(r, 1.0, "no browser may be flagged");
}

fn expected_geo(record: &serde_json::Value) -> GeoInfo {
    let country = record.pointer("/country/iso_code").and_then(|v| v.as_str()).map(str::to_owned);
    let sub = record.pointer("/subdivisions/0/iso_code").and_then(|v| v.as_str());
    GeoInfo {
        region: country.as_ref().zip(sub).map(|(c, s)| format!("{c}-{s}")),
        country,
        city: record.pointer("/city/names/en").and_then(|v| v.as_str()).map(str::to_owned),
    }
}

#[test]
fn geoip_lookup_vectors() {
    let vectors: BTreeMap<String, serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(shared("geoip/lookup_vectors.json")).expect("vectors"))
            .expect("json");
    let mut checked = BTreeSet::new();
    for (db, v) in &vectors {
        let kind = v.pointer("/metadata/database_type").and_then(|t| t.as_str()).unwrap_or_default();
        let path = shared(&format!("geoip/{db}.mmdb"));
        if !(kind.contains("City") || kind.contains("Country")) {
            let err = Geo::open(&path).err().expect("a database without locations is refused");
            assert!(err.to_string().contains("no location data"), "{err}");
            continue;
        }
        let geo = Geo::open(&path).expect("test database opens");
        let all = v["vectors"].as_array().expect("vectors");
        let mut fails = Vec::new();
        for t in all {
            let ip = t["ip"].as_str().expect("ip").parse().expect("ip parses");
            let (got, want) = (geo.lookup(ip), expected_geo(&t["record"]));
            if got != want {
                fails.push(format!("{ip}: got {got:?}, want {want:?}"));
            }
        }
        assert_eq!(rate(&format!("GeoIP {db}"), all.len() - fails.len(), all.len(), &fails), 1.0);
        checked.insert(db.clone());
    }
    assert_eq!(checked.len(), 4, "two City and two Country databases are checked");
    let boxford =
        Geo::open(&shared("geoip/GeoLite2-City-Test.mmdb")).expect("db").lookup("2.125.160.216".parse().expect("ip"));
    assert_eq!(
        boxford,
        GeoInfo { country: Some("GB".into()), region: Some("GB-ENG".into()), city: Some("Boxford".into()) }
    );
}

#[test]
fn corrupt_geoip_databases_fail_clearly() {
    for name in ["GeoIP2-City-Test-Broken-Double-Format.mmdb", "GeoIP2-City-Test-Invalid-Node-Count.mmdb"] {
        let path = shared(&format!("geoip/{name}"));
        let err = Geo::open(&path).err().expect("corrupt database is refused");
        let msg = err.to_string();
        println!("{name}: {msg}");
        assert!(msg.contains(name) && msg.contains("cannot be used"), "{msg}");
    }
    assert!(Geo::open(&shared("geoip/missing.mmdb")).is_err());
}

/// The wire schema and the Arrow storage schema describe the same event.
#[test]
fn wire_schema_and_arrow_schema_agree() {
    let schema: serde_json::Value = serde_json::from_str(footfall::ingest::validate::EVENT_SCHEMA).expect("schema");
    let props = schema.pointer("/$defs/event/properties").and_then(|p| p.as_object()).expect("event properties");
    let arrow = footfall::model::schema::file_schema();
    let mut columns: BTreeSet<String> = arrow.fields().iter().map(|f| f.name().clone()).collect();
    columns.extend(footfall::model::schema::partition_fields().iter().map(|f| f.name().clone()));
    // Wire fields stored under another name, or only used to derive columns.
    let renamed =
        BTreeMap::from([("timestamp", "client_ts"), ("sent_at", "ts"), ("user_agent", "browser"), ("ip", "country")]);
    for name in props.keys() {
        let col = renamed.get(name.as_str()).copied().unwrap_or(name);
        assert!(columns.contains(col), "wire field {name} has no storage column {col}");
    }
    let derived = [
        "date",
        "ts",
        "path",
        "hostname",
        "source",
        "medium",
        "campaign",
        "term",
        "content",
        "channel",
        "country",
        "region",
        "city",
        "browser",
        "browser_version",
        "os",
        "os_version",
        "device",
        // The person, resolved from the identity map when the row is written.
        "person_id",
        // `server` when the request carried the site's write key, else `browser`.
        "origin",
    ];
    for col in &columns {
        let from_wire = props.contains_key(col) || renamed.values().any(|c| c == col);
        assert!(
            from_wire || derived.contains(&col.as_str()),
            "column {col} comes from neither the wire nor enrichment"
        );
    }
    let wire_items: BTreeSet<&str> = schema
        .pointer("/$defs/event/properties/items/items/properties")
        .and_then(|p| p.as_object())
        .expect("items")
        .keys()
        .map(String::as_str)
        .collect();
    let arrow::datatypes::DataType::List(item) = arrow.field_with_name("items").expect("items").data_type() else {
        panic!("items is a list")
    };
    let arrow::datatypes::DataType::Struct(fields) = item.data_type() else { panic!("item is a struct") };
    let arrow_items: BTreeSet<&str> = fields.iter().map(|f| f.name().as_str()).collect();
    assert_eq!(wire_items, arrow_items);
}
