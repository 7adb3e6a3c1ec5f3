//! The event model: the validated wire event, the enriched event we store, and the
//! Arrow storage schema (see [`schema`]).

pub mod schema;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A site id: `[a-z0-9-]{1,64}`. Checked before it is ever used in a path.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SiteId(String);

/// Why a string is not a site id.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("site id must be 1 to 64 characters of a-z, 0-9 and '-', got {0:?}")]
pub struct InvalidSiteId(pub String);

impl SiteId {
    /// Validate `s` as a site id.
    pub fn parse(s: &str) -> Result<Self, InvalidSiteId> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok { Ok(Self(s.to_owned())) } else { Err(InvalidSiteId(s.to_owned())) }
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SiteId {
    type Error = InvalidSiteId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<SiteId> for String {
    fn from(s: SiteId) -> Self {
        s.0
    }
}

impl fmt::Display for SiteId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A property value as sent: string, number, boolean or null. Stored as text.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum PropValue {
    /// JSON string
    Str(String),
    /// JSON number
    Num(serde_json::Number),
    /// JSON boolean
    Bool(bool),
    /// JSON null
    Null,
}

impl PropValue {
    /// The text stored for this value (`None` for null).
    pub fn into_text(self) -> Option<String> {
        match self {
            Self::Str(s) => Some(s),
            Self::Num(n) => Some(n.to_string()),
            Self::Bool(b) => Some(b.to_string()),
            Self::Null => None,
        }
    }
}

/// Client timestamp: RFC 3339 text or epoch milliseconds.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum ClientTs {
    /// milliseconds since the Unix epoch
    Millis(i64),
    /// RFC 3339 date-time
    Text(String),
}

impl ClientTs {
    /// Microseconds since the epoch, if the value is a valid time.
    pub fn to_micros(&self) -> Option<i64> {
        match self {
            Self::Millis(ms) => ms.checked_mul(1000),
            Self::Text(s) => chrono::DateTime::parse_from_rfc3339(s).ok().map(|t| t.timestamp_micros()),
        }
    }
}

/// One event as the wire contract (`schemas/event.schema.json`) defines it. Only built from
/// JSON that passed schema validation.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireEvent {
    pub event_id: Option<String>,
    pub site: String,
    pub name: String,
    pub url: Option<String>,
    pub referrer: Option<String>,
    pub timestamp: Option<ClientTs>,
    /// When the client sent the request, by its clock (the latest in a request counts; read
    /// from the request before the items are parsed).
    #[serde(default)]
    pub sent_at: Option<ClientTs>,
    pub visitor_id: Option<String>,
    pub session_id: Option<String>,
    pub user_id: Option<String>,
    #[serde(default)]
    pub props: BTreeMap<String, PropValue>,
    pub revenue: Option<f64>,
    pub currency: Option<String>,
    pub order_id: Option<String>,
    #[serde(default)]
    pub items: Vec<Item>,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
}

/// An e-commerce line item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Item {
    pub id: String,
    pub name: Option<String>,
    pub category: Option<String>,
    pub price: Option<f64>,
    pub quantity: Option<i64>,
}

/// An enriched event: what the WAL holds and what becomes one Parquet row.
/// Holds no IP address, by construction. Absent values are left out of the WAL's JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct Event {
    pub event_id: String,
    pub site: String,
    /// Server receive time, microseconds since the epoch (UTC).
    pub ts: i64,
    /// Client clock, microseconds since the epoch, when sent and within the skew bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ts: Option<i64>,
    pub name: String,
    pub visitor_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    pub session_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub medium: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revenue: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<Item>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub props: BTreeMap<String, String>,
    /// Who sent it: [`ORIGIN_BROWSER`] (the snippet, a pixel, any call without a key) or
    /// [`ORIGIN_SERVER`] (a call with the site's write key: its backend). `None` in rows stored
    /// before footfall kept it (read as a browser's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
}

/// [`Event::origin`] of an event sent by a browser.
pub const ORIGIN_BROWSER: &str = "browser";
/// [`Event::origin`] of an event sent by the site's backend (with its write key).
pub const ORIGIN_SERVER: &str = "server";

/// The person an event belongs to, given the user it carries or its visitor was identified as:
/// `u:<user_id>` for an identified person, else `v:<visitor_id>`. The prefixes keep a
/// user id from ever colliding with a visitor id.
pub fn person_id(user_id: Option<&str>, visitor_id: &str) -> String {
    match user_id {
        Some(u) => format!("u:{u}"),
        None => format!("v:{visitor_id}"),
    }
}

impl Event {
    /// UTC calendar day of `ts`: the `date` partition.
    pub fn date(&self) -> chrono::NaiveDate {
        chrono::DateTime::from_timestamp_micros(self.ts).map(|t| t.date_naive()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("default", true)]
    #[case("shop-1", true)]
    #[case("", false)]
    #[case("Shop", false)]
    #[case("../etc", false)]
    #[case("a/b", false)]
    #[case("site=x", false)]
    fn site_id_validation(#[case] input: &str, #[case] ok: bool) {
        assert_eq!(SiteId::parse(input).is_ok(), ok);
    }

    #[test]
    fn site_id_length_bound() {
        assert!(SiteId::parse(&"a".repeat(64)).is_ok());
        assert!(SiteId::parse(&"a".repeat(65)).is_err());
    }

    #[test]
    fn client_ts_forms() {
        assert_eq!(ClientTs::Millis(1_700_000_000_123).to_micros(), Some(1_700_000_000_123_000));
        assert_eq!(ClientTs::Text("2023-11-14T22:13:20.5Z".into()).to_micros(), Some(1_700_000_000_500_000));
        assert_eq!(ClientTs::Text("yesterday".into()).to_micros(), None);
    }

    #[test]
    fn date_is_utc_day() {
        let e = Event { ts: 1_700_000_000_000_000, ..Default::default() }; // 2023-11-14T22:13:20Z
        assert_eq!(e.date().to_string(), "2023-11-14");
    }
}
