//! Ingestion: decode → validate → check site, key and origin → enrich → WAL.
//! The HTTP handler (`crate::api::events`) only extracts request facts and maps the outcome.

pub mod enrich;
pub mod live;
pub mod quarantine;
pub mod validate;

use std::collections::HashSet;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::Serialize;

use self::enrich::{geo::Geo, referrer, ua::UaParser, visitor};
use self::validate::{BodyError, ItemError, split_body, validate_item};
use crate::clock::SharedClock;
use crate::model::{Event, ORIGIN_BROWSER, ORIGIN_SERVER, WireEvent};
use crate::sites::{Site, Sites};
use crate::wal::Wal;

/// How far a client clock may be off before `client_ts` is dropped (the server time `ts`
/// is what reports use either way).
const CLIENT_TS_PAST: i64 = 7 * 24 * 3600 * 1_000_000;
const CLIENT_TS_FUTURE: i64 = 3600 * 1_000_000;
/// How many client event ids are remembered to answer retries without storing them again.
const RECENT_IDS: usize = 100_000;

/// Facts about the HTTP request, taken by the handler.
#[derive(Clone, Debug, Default)]
pub struct RequestMeta {
    /// Client address (from the socket, or X-Forwarded-For with --trust-proxy). Used for
    /// GeoIP, the visitor hash and rate limits; never stored.
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    pub origin: Option<String>,
    pub write_key: Option<String>,
    /// The browser sent `DNT: 1` or `Sec-GPC: 1` (Do-Not-Track, Global Privacy Control).
    pub privacy_signal: bool,
}

/// What becomes of browser events sent with Do-Not-Track or Global Privacy Control.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DntMode {
    /// Acknowledge and drop them (counted in `footfall_dnt_dropped_total`).
    #[default]
    Drop,
    /// Keep them, cookieless: a first-party `visitor_id` in them is ignored.
    Cookieless,
}

/// What a request achieved.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// Valid events taken: stored, already stored (a retry), or dropped as bots.
    pub accepted: usize,
    pub rejected: Vec<ItemError>,
    #[serde(skip)]
    pub bots: usize,
    /// Dropped for Do-Not-Track / Global Privacy Control.
    #[serde(skip)]
    pub dnt: usize,
    #[serde(skip)]
    pub stored: usize,
}

/// Why a request was refused as a whole.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Body(#[from] BodyError),
    #[error("no event in the request was valid")]
    NothingValid { rejected: Vec<ItemError> },
    #[error("no event in the request is for a site this key or origin may write to")]
    Forbidden { rejected: Vec<ItemError> },
    #[error("the write key is not valid")]
    BadWriteKey,
    #[error("too many requests; retry after {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error(transparent)]
    Wal(#[from] crate::wal::Error),
}

/// The facts of one request that every item's handling needs.
struct RequestCtx<'a> {
    meta: &'a RequestMeta,
    /// The site whose write key the request carries.
    authed: Option<&'a Site>,
    now: i64,
    /// When the client sent the request, by its own clock: the latest `sent_at` of its items.
    sent_at: Option<i64>,
}

/// What becomes of one item of a request (the `String` is its site id).
enum Fate {
    Rejected {
        error: ItemError,
        forbidden: bool,
    },
    /// A retry of an event stored moments ago: acknowledged, not stored again.
    Duplicate(String),
    /// Valid, but a bot's: acknowledged and dropped.
    Bot(String),
    /// Valid, but the browser asked not to be tracked: acknowledged and dropped.
    DoNotTrack(String),
    /// Enriched and pushed onto the request's events; `client_id`: the client sent the
    /// event_id, so a retry can be recognised.
    Stored {
        site: String,
        client_id: bool,
    },
}

/// Rate limits; 0 turns one off.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Requests per second from one IP (browser requests; keyed requests are exempt).
    pub per_ip: u32,
    /// Requests per second for one site.
    pub per_site: u32,
}

fn limiter<K: std::hash::Hash + Eq + Clone>(per_second: u32) -> Option<DefaultKeyedRateLimiter<K>> {
    let rate = NonZeroU32::new(per_second)?;
    let twice = NonZeroU32::MIN.saturating_add(1);
    // Bursts of up to two seconds' worth: a page load fires a few events at once.
    Some(RateLimiter::keyed(Quota::per_second(rate).allow_burst(rate.saturating_mul(twice))))
}

/// Everything ingestion needs, built once at start-up.
pub struct Ingestor {
    pub sites: Arc<Sites>,
    ua: UaParser,
    geo: Option<Geo>,
    salts: visitor::Salts,
    sessions: visitor::Sessions,
    pub clock: SharedClock,
    wal: Wal,
    recent: quick_cache::sync::Cache<(String, String), ()>,
    per_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    per_site: Option<DefaultKeyedRateLimiter<String>>,
    dnt: DntMode,
    quarantine: Option<quarantine::Quarantine>,
    /// Who is on each site now (the live view).
    pub live: live::Live,
}

/// The parts an [`Ingestor`] is made of.
pub struct IngestorParts {
    pub sites: Arc<Sites>,
    pub geo: Option<Geo>,
    pub salts: visitor::Salts,
    pub clock: SharedClock,
    pub wal: Wal,
    pub limits: Limits,
    pub dnt: DntMode,
}

fn retry_after(not_until: &governor::NotUntil<governor::clock::QuantaInstant>) -> Error {
    let wait: Duration =
        not_until.wait_time_from(governor::clock::Clock::now(&governor::clock::DefaultClock::default()));
    Error::RateLimited { retry_after_secs: wait.as_secs().max(1) }
}

impl Ingestor {
    pub fn new(p: IngestorParts) -> Self {
        Self {
            sites: p.sites,
            ua: UaParser::new(),
            geo: p.geo,
            salts: p.salts,
            sessions: visitor::Sessions::default(),
            clock: p.clock,
            wal: p.wal,
            recent: quick_cache::sync::Cache::new(RECENT_IDS),
            per_ip: limiter(p.limits.per_ip),
            per_site: limiter(p.limits.per_site),
            dnt: p.dnt,
            quarantine: None,
            live: live::Live::default(),
        }
    }

    /// Keep refused events in `q` (the server keeps them under its data directory).
    #[must_use]
    pub fn with_quarantine(mut self, q: quarantine::Quarantine) -> Self {
        self.quarantine = Some(q);
        self
    }

    /// The refused events kept for `site`, newest first.
    pub fn rejected(&self, site: &str, limit: usize) -> Vec<serde_json::Value> {
        self.quarantine.as_ref().map(|q| q.list(site, limit)).unwrap_or_default()
    }

    /// Count each refusal by reason and keep the items of existing sites in the quarantine.
    /// The items are made again by `again` (the body parsed again: refusals are rare, and the
    /// accepted path never pays for this).
    fn refused(
        &self,
        again: impl FnOnce() -> Vec<serde_json::Value>,
        rejected: &[ItemError],
        authed: Option<&Site>,
        now: i64,
    ) {
        for e in rejected {
            metrics::counter!("footfall_events_rejected_by_reason_total", "reason" => quarantine::reason(e))
                .increment(1);
        }
        let Some(q) = &self.quarantine else { return };
        let items = again();
        for e in rejected {
            let item = items.get(e.index).cloned();
            let named = item.as_ref().and_then(|i| i.get("site")).and_then(|s| s.as_str()).map(str::to_owned);
            let site = authed.map(|s| s.id.to_string()).or(named).filter(|s| self.sites.get(s).is_some());
            if let Some(site) = site {
                q.keep(&site, item, e, now);
            }
        }
    }

    /// Forget rate-limit state of IPs and sites that have been quiet (call every minute or so;
    /// without it the per-IP table grows with every address ever seen).
    pub fn housekeeping(&self) {
        if let Some(l) = &self.per_ip {
            l.retain_recent();
            l.shrink_to_fit();
        }
        if let Some(l) = &self.per_site {
            l.retain_recent();
        }
    }

    /// Handle one request body. Valid events are made durable before this returns `Ok`.
    pub async fn ingest(&self, body: &[u8], meta: &RequestMeta) -> Result<Outcome, Error> {
        let items = split_body(body)?;
        self.ingest_items(items, meta, || split_body(body).unwrap_or_default()).await
    }

    /// [`Ingestor::ingest`] of items already parsed (the Segment API maps its calls to events
    /// and hands them over as they are). `again` makes the items once more, for the quarantine,
    /// only when some are refused: what is kept is what the client sent.
    pub async fn ingest_items(
        &self,
        items: Vec<serde_json::Value>,
        meta: &RequestMeta,
        again: impl FnOnce() -> Vec<serde_json::Value>,
    ) -> Result<Outcome, Error> {
        let authed =
            meta.write_key.as_deref().map(|k| self.sites.by_write_key(k).ok_or(Error::BadWriteKey)).transpose()?;
        if let (None, Some(ip), Some(l)) = (&authed, meta.ip, &self.per_ip) {
            l.check_key(&ip).map_err(|n| retry_after(&n))?;
        }
        let now = self.clock.now_micros();
        let mut out = Outcome::default();
        let mut events = Vec::with_capacity(items.len());
        let mut client_ids = Vec::new();
        let mut forbidden = 0;
        let mut rate_checked = HashSet::new();
        let sent_at = items
            .iter()
            .filter_map(|v| v.get("sent_at"))
            .filter_map(|v| serde_json::from_value::<crate::model::ClientTs>(v.clone()).ok()?.to_micros())
            .max();
        let ctx = RequestCtx { meta, authed: authed.as_deref(), now, sent_at };
        for (index, item) in items.into_iter().enumerate() {
            let site = match self.triage(index, item, &ctx, &mut events) {
                Fate::Rejected { error, forbidden: f } => {
                    forbidden += usize::from(f);
                    out.rejected.push(error);
                    continue;
                }
                Fate::Duplicate(site) => {
                    metrics::counter!("footfall_events_duplicate_total").increment(1);
                    site
                }
                Fate::Bot(site) => {
                    out.bots += 1;
                    site
                }
                Fate::DoNotTrack(site) => {
                    out.dnt += 1;
                    site
                }
                Fate::Stored { site, client_id } => {
                    if let Some(e) = events.last().filter(|_| client_id) {
                        client_ids.push((site.clone(), e.event_id.clone()));
                    }
                    site
                }
            };
            out.accepted += 1;
            if let Some(l) = &self.per_site
                && rate_checked.insert(site.clone())
            {
                l.check_key(&site).map_err(|n| retry_after(&n))?;
            }
        }
        metrics::counter!("footfall_events_rejected_total").increment(out.rejected.len() as u64);
        if !out.rejected.is_empty() {
            self.refused(again, &out.rejected, authed.as_deref(), now);
        }
        metrics::counter!("footfall_bots_dropped_total").increment(out.bots as u64);
        metrics::counter!("footfall_dnt_dropped_total").increment(out.dnt as u64);
        if out.accepted == 0 {
            let rejected = std::mem::take(&mut out.rejected);
            return Err(if forbidden == rejected.len() {
                Error::Forbidden { rejected }
            } else {
                Error::NothingValid { rejected }
            });
        }
        out.stored = events.len();
        keep_order(&mut events);
        if !events.is_empty() {
            // The visitor is on the site whether or not the log takes the events.
            self.live.saw(&events, now);
            self.wal.append(events).await?;
        }
        for key in client_ids {
            self.recent.insert(key, ());
        }
        metrics::counter!("footfall_events_accepted_total").increment(out.stored as u64);
        Ok(out)
    }

    /// Validate, authorize, deduplicate and enrich one item; a kept event goes onto `events`.
    fn triage(&self, index: usize, item: serde_json::Value, ctx: &RequestCtx<'_>, events: &mut Vec<Event>) -> Fate {
        let mut wire = match validate_item(index, item) {
            Ok(w) => w,
            Err(error) => return Fate::Rejected { error, forbidden: false },
        };
        let site = match self.authorize(&wire, ctx.authed, ctx.meta) {
            Ok(site) => site.id.to_string(),
            Err((field, message)) => {
                let error = ItemError { index, field: field.into(), message };
                return Fate::Rejected { error, forbidden: field == "site" };
            }
        };
        if let Some(id) = &wire.event_id
            && self.recent.get(&(wire.site.clone(), id.clone())).is_some()
        {
            return Fate::Duplicate(site);
        }
        if ctx.authed.is_none() && ctx.meta.privacy_signal {
            match self.dnt {
                DntMode::Drop => return Fate::DoNotTrack(site),
                DntMode::Cookieless => wire.visitor_id = None,
            }
        }
        let client_id = wire.event_id.is_some();
        match self.enrich(wire, ctx) {
            Some(mut event) => {
                let once = once_id(&event);
                let derived = once.is_some();
                if let Some(id) = once {
                    if self.recent.get(&(site.clone(), id.clone())).is_some() {
                        return Fate::Duplicate(site);
                    }
                    event.event_id = id;
                }
                events.push(event);
                Fate::Stored { site, client_id: client_id || derived }
            }
            None => Fate::Bot(site),
        }
    }

    /// May this request write this event? Err is (field, message).
    fn authorize(
        &self,
        w: &WireEvent,
        authed: Option<&Site>,
        meta: &RequestMeta,
    ) -> Result<Arc<Site>, (&'static str, String)> {
        let Some(site) = self.sites.get(&w.site) else {
            return Err(("site", format!("unknown site {:?}; create it with `footfall site add {}`", w.site, w.site)));
        };
        match authed {
            Some(a) if a.id != site.id => {
                return Err(("site", format!("the write key does not belong to site {:?}", w.site)));
            }
            Some(_) => {}
            None => {
                if let Some(origin) = meta.origin.as_deref().filter(|o| !site.allows_origin(o)) {
                    return Err(("site", format!("origin {origin} is not one of site {:?}'s domains", w.site)));
                }
                for (field, set) in [("ip", w.ip.is_some()), ("user_agent", w.user_agent.is_some())] {
                    if set {
                        return Err((field, format!("{field} may only be sent by server-side calls with a write key")));
                    }
                }
            }
        }
        Ok(site)
    }

    /// Enrich a validated event; `None` for a bot.
    fn enrich(&self, w: WireEvent, ctx: &RequestCtx<'_>) -> Option<Event> {
        // With a write key the request comes from the site's backend: its own User-Agent
        // (python-requests, curl...) says nothing about the visitor, only the body's does.
        let (meta, authed, now) = (ctx.meta, ctx.authed.is_some(), ctx.now);
        let ua_str = if authed { w.user_agent.as_deref() } else { meta.user_agent.as_deref() }.unwrap_or("");
        let ip = if authed { w.ip.as_deref().and_then(|s| s.parse().ok()).or(meta.ip) } else { meta.ip };
        let ua = self.ua.parse(ua_str);
        if ua.is_bot {
            return None;
        }
        let geo = match (&self.geo, ip) {
            (Some(g), Some(ip)) => g.lookup(ip),
            _ => Default::default(),
        };
        let candidates = match &w.visitor_id {
            Some(v) => vec![v.clone()],
            None => {
                let day = chrono::DateTime::from_timestamp_micros(now).unwrap_or_default().date_naive();
                let (today, yesterday) = self.salts.for_day(day);
                let mut c = vec![visitor::visitor_hash(&today, &w.site, ip, ua_str)];
                c.extend(yesterday.map(|y| visitor::visitor_hash(&y, &w.site, ip, ua_str)));
                c
            }
        };
        let (visitor_id, session_id) = match &w.session_id {
            Some(s) => (candidates[0].clone(), s.clone()),
            None => self.sessions.resolve(&w.site, &candidates, now),
        };
        let sent = w.timestamp.as_ref().and_then(|t| t.to_micros());
        let client_ts = sent.filter(|c| (now - CLIENT_TS_PAST..=now + CLIENT_TS_FUTURE).contains(c));
        // Its age when the request left the client, by the client's own clock, whatever that
        // clock's error (Segment's `receivedAt - (sentAt - originalTimestamp)`); without both
        // times, or with an age out of bounds, the receive time.
        let ts = match (sent, ctx.sent_at) {
            (Some(t), Some(s)) if (0..=CLIENT_TS_PAST).contains(&(s - t)) => now - (s - t),
            _ => now,
        };
        let now_ms = u64::try_from(now / 1000).unwrap_or(0);
        let mut e = Event {
            event_id: w.event_id.unwrap_or_else(|| ulid::Ulid::from_parts(now_ms, rand_bits()).to_string()),
            site: w.site,
            ts,
            client_ts,
            name: w.name,
            visitor_id,
            user_id: w.user_id,
            session_id,
            country: geo.country,
            region: geo.region,
            city: geo.city,
            revenue: w.revenue,
            currency: w.currency,
            order_id: w.order_id,
            items: w.items,
            props: w.props.into_iter().filter_map(|(k, v)| v.into_text().map(|t| (k, t))).collect(),
            origin: Some(if authed { ORIGIN_SERVER } else { ORIGIN_BROWSER }.to_owned()),
            ..Event::default()
        };
        referrer::page_fields(w.url.as_deref(), w.referrer.as_deref(), &mut e);
        ua.apply(&mut e);
        // Scroll depth past 100% (a page that grew while it was read) is 100%.
        if e.name == "$engagement"
            && let Some(s) = e.props.get_mut("scroll")
            && s.parse::<f64>().is_ok_and(|v| v > 100.0)
        {
            *s = "100".into();
        }
        Some(e)
    }
}

/// The id of an event that is one thing however often it is sent: a purchase per order id, a
/// refund per order id and `refund_id` property (else per order id and amount), an experiment
/// exposure per session and experiment. Derived from what makes it one, so the recent-id
/// cache, the flusher's dedupe by id and the once-ledger (`store::once`) keep a single copy.
fn once_id(e: &Event) -> Option<String> {
    use std::hash::Hasher;
    let mut h = siphasher::sip::SipHasher13::new_with_keys(0x6f6e_6365, 0x6964);
    let prefix = match e.name.as_str() {
        "purchase" => {
            h.write(e.order_id.as_deref()?.as_bytes());
            "order"
        }
        "refund" => {
            h.write(e.order_id.as_deref()?.as_bytes());
            h.write_u8(0);
            match e.props.get("refund_id") {
                Some(id) => h.write(id.as_bytes()),
                None => h.write(format!("amount:{:?}", e.revenue).as_bytes()),
            }
            "refund"
        }
        "$exposure" => {
            h.write(e.session_id.as_bytes());
            h.write_u8(0);
            h.write(e.props.get("experiment")?.as_bytes());
            "exposure"
        }
        _ => return None,
    };
    h.write_u8(0);
    h.write(e.site.as_bytes());
    Some(format!("{prefix}-{:016x}", h.finish()))
}

/// Events of one request at the same instant keep the request's order: the k-th of a run of
/// equal times gets k microseconds more (a batch without client times is one such run).
fn keep_order(events: &mut [Event]) {
    let mut run = (i64::MIN, 0);
    for e in events {
        if e.ts == run.0 {
            run.1 += 1;
            e.ts += run.1;
        } else {
            run = (e.ts, 0);
        }
    }
}

fn rand_bits() -> u128 {
    rand::random()
}
