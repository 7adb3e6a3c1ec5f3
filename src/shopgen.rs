//! A deterministic generator of online-shop traffic, written straight to the store: the data
//! behind `footfall bench gen` (and the demo).
//!
//! Each day gets a share of the events by weekday (weekends are quieter); each session picks a
//! visitor (newer visitors more often, older ones come back less and less), a channel with its
//! source, medium and campaign, and walks landing page → more pages → product views → add to
//! cart → checkout → purchase with drop-offs at each step. Buyers log in (`identify`) before
//! checking out (the landing page and each product page also report how far they were read and
//! for how long, as `$engagement`), and one person in seven also shops on a second device, logging in there (so
//! identity stitching makes the two devices one person); refunds come from the shop's backend
//! (`origin` `server`) an hour after the order; visitors in the `checkout-button` experiment
//! see `$exposure` with variant `control` or `green`, and green converts better. Same seed and sizes → the same events
//! (each day has its own random stream, seeded from the seed and the day).

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use siphasher::sip::SipHasher13;
use std::hash::Hasher;

use crate::model::{Event, Item, ORIGIN_BROWSER, ORIGIN_SERVER};

/// What to generate.
#[derive(Clone, Debug)]
pub struct ShopConfig {
    pub site: String,
    pub seed: u64,
    /// Roughly this many events in all (sessions are whole, so a little more).
    pub events: u64,
    /// Distinct visitors to draw from.
    pub visitors: u64,
    pub start: NaiveDate,
    pub days: u32,
}

/// Products: (id, name, category, price).
const CATEGORIES: [(&str, f64); 6] =
    [("mugs", 14.0), ("teapots", 39.0), ("tea", 9.5), ("coffee", 12.0), ("kettles", 59.0), ("gifts", 24.0)];
const PRODUCTS_PER_CATEGORY: u64 = 20;
const PAGES: [&str; 6] = ["/", "/about", "/blog/brewing-guide", "/shipping", "/sale", "/contact"];
/// How often each of [`PAGES`] is where a visit starts: most visits land on the home page.
const LANDING: [u32; 6] = [45, 5, 18, 5, 22, 5];

/// (channel, source, medium, campaign, weight, intent): intent scales the chances of browsing
/// products, adding to the cart and checking out (newsletter readers buy more than social
/// scrollers).
type Channel = (&'static str, Option<&'static str>, Option<&'static str>, Option<&'static str>, u32, f64);
const CHANNELS: [Channel; 8] = [
    ("Organic Search", Some("google"), Some("organic"), None, 32, 1.0),
    ("Direct", None, None, None, 22, 1.1),
    ("Paid Search", Some("google"), Some("cpc"), Some("winter_sale"), 11, 1.15),
    ("Email", Some("newsletter"), Some("email"), Some("weekly_digest"), 10, 1.3),
    ("Organic Social", Some("instagram"), Some("social"), None, 8, 0.7),
    ("Paid Social", Some("facebook"), Some("paid_social"), Some("retargeting"), 7, 0.85),
    ("Referral", Some("teablog.example"), Some("referral"), None, 5, 0.9),
    ("AI Assistants", Some("chatgpt.com"), Some("referral"), None, 5, 1.05),
];
/// (country, region as ISO 3166-2 like GeoIP enrichment writes it, city, weight)
const PLACES: [(&str, &str, &str, u32); 8] = [
    ("DE", "DE-BE", "Berlin", 28),
    ("US", "US-CA", "San Francisco", 20),
    ("GB", "GB-ENG", "London", 15),
    ("FR", "FR-IDF", "Paris", 14),
    ("NL", "NL-NH", "Amsterdam", 7),
    ("ES", "ES-MD", "Madrid", 6),
    ("IT", "IT-25", "Milan", 5),
    ("PL", "PL-14", "Warsaw", 5),
];
/// (device, browser, os, weight)
const DEVICES: [(&str, &str, &str, u32); 6] = [
    ("Mobile", "Mobile Safari", "iOS", 30),
    ("Mobile", "Chrome Mobile", "Android", 25),
    ("Desktop", "Chrome", "Windows", 22),
    ("Desktop", "Safari", "Mac OS X", 10),
    ("Desktop", "Firefox", "Linux", 6),
    ("Tablet", "Mobile Safari", "iOS", 7),
];

/// Where people click, as the click add-on (`/h.js`) reports it: (selector, centre as a fraction
/// of the page's width, centre in CSS pixels from the top on a desktop, width as a fraction,
/// height in pixels, nothing happens when it is clicked). Phones and tablets lay the same page
/// out taller ([`TALLER`]).
type Spot = (&'static str, f64, f64, f64, f64, bool);
const HOME_SPOTS: [Spot; 4] = [
    ("#hero-cta", 0.5, 420.0, 0.2, 56.0, false),
    ("#search", 0.8, 40.0, 0.2, 36.0, false),
    ("#top>nav:nth-of-type(1)>a:nth-of-type(2)", 0.3, 40.0, 0.08, 24.0, false),
    ("[data-heatmap=\"winter-banner\"]", 0.5, 900.0, 0.9, 240.0, true),
];
const PRODUCT_SPOTS: [Spot; 4] = [
    ("[data-heatmap=\"add-to-cart\"]", 0.75, 520.0, 0.25, 48.0, false),
    ("#gallery>img:nth-of-type(1)", 0.3, 400.0, 0.4, 480.0, true),
    ("#size-guide", 0.75, 600.0, 0.15, 24.0, false),
    ("#delivery-terms", 0.5, 1400.0, 0.6, 32.0, false),
];
const PAGE_SPOTS: [Spot; 3] = [
    ("#top>nav:nth-of-type(1)>a:nth-of-type(1)", 0.2, 40.0, 0.08, 24.0, false),
    ("#top>nav:nth-of-type(1)>a:nth-of-type(3)", 0.4, 40.0, 0.08, 24.0, false),
    ("main:nth-of-type(1)>p:nth-of-type(2)", 0.5, 700.0, 0.8, 120.0, true),
];
/// How much taller a page is laid out on a (desktop, tablet, phone).
const TALLER: [(&str, &str, f64); 3] =
    [("Desktop", "desktop", 1.0), ("Tablet", "tablet", 1.3), ("Mobile", "mobile", 2.0)];

/// The `$click` props of a view's clicks: from a hash, so the day's random stream stays what it
/// was. Up to three clicks on the page's spots; one view of a product page in 25 rages at the
/// add-to-cart button (three clicks, the third flagged, as the add-on does).
fn click_props(h: u64, spots: &[Spot], product: bool, device: &str) -> Vec<BTreeMap<String, String>> {
    let (_, vw, taller) = TALLER.iter().find(|t| t.0 == device).copied().unwrap_or(TALLER[0]);
    let one = |k: u64, spot: &Spot| {
        let (selector, x, y, w, height, dead) = *spot;
        let j = hash(&[h, k]);
        let (ex, ey) = ((j % 101) as f64 / 100.0, ((j >> 8) % 101) as f64 / 100.0);
        let mut p = BTreeMap::new();
        p.insert("selector".to_owned(), selector.to_owned());
        p.insert("ex".to_owned(), ex.to_string());
        p.insert("ey".to_owned(), ey.to_string());
        p.insert("x".to_owned(), (((x + (ex - 0.5) * w) * 1000.0).round() / 1000.0).to_string());
        p.insert("y".to_owned(), ((y + (ey - 0.5) * height) * taller).round().to_string());
        p.insert("vw".to_owned(), vw.to_owned());
        if dead {
            p.insert("dead".to_owned(), "true".to_owned());
        }
        p
    };
    if product && h.is_multiple_of(25) {
        let mut burst: Vec<_> = (0..3).map(|k| one(k, &spots[0])).collect();
        burst[2].insert("rage".to_owned(), "true".to_owned());
        return burst;
    }
    (0..(h >> 16) % 4).map(|k| one(k, &spots[(hash(&[h, k, 1]) % spots.len() as u64) as usize])).collect()
}

/// The generator's event writer: (out, time, name, fill).
type Push<'a> = dyn FnMut(&mut Vec<Event>, i64, &str, &dyn Fn(&mut Event)) + 'a;

/// The second device of someone whose first is `DEVICES[i]`: a phone beside a computer, a
/// computer beside a phone or tablet.
const SECOND_DEVICE: [usize; 6] = [2, 3, 1, 0, 1, 2];

fn pick<T>(rng: &mut StdRng, items: &[T], weight: impl Fn(&T) -> u32) -> usize {
    let total: u32 = items.iter().map(&weight).sum();
    let mut r = rng.random_range(0..total.max(1));
    for (i, it) in items.iter().enumerate() {
        let w = weight(it);
        if r < w {
            return i;
        }
        r -= w;
    }
    items.len() - 1
}

fn hash(parts: &[u64]) -> u64 {
    let mut h = SipHasher13::new_with_keys(0x666f_6f74, 0x6661_6c6c);
    for p in parts {
        h.write_u64(*p);
    }
    h.finish()
}

/// Weekday weights, Monday first.
const WEEKDAY: [f64; 7] = [1.0, 1.02, 1.0, 0.98, 0.95, 0.8, 0.85];

impl ShopConfig {
    fn day_weight(&self, day: u32) -> f64 {
        let d = self.start + chrono::Duration::days(i64::from(day));
        WEEKDAY[d.weekday().num_days_from_monday() as usize]
    }

    /// Events to aim for on `day` (0-based).
    fn day_target(&self, day: u32) -> u64 {
        let total: f64 = (0..self.days).map(|d| self.day_weight(d)).sum();
        ((self.events as f64) * self.day_weight(day) / total).round() as u64
    }

    /// The visitors that exist by `day`: a fifth at the start, the rest arrive evenly.
    fn born(&self, day: u32) -> u64 {
        let share = 0.2 + 0.8 * f64::from(day + 1) / f64::from(self.days.max(1));
        ((self.visitors as f64 * share) as u64).clamp(1, self.visitors.max(1))
    }

    /// Every event of `day` (0-based), in session order.
    pub fn day(&self, day: u32) -> Vec<Event> {
        let mut rng = StdRng::seed_from_u64(hash(&[self.seed, u64::from(day)]));
        let date = self.start + chrono::Duration::days(i64::from(day));
        let midnight = date.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc().timestamp_micros();
        let target = self.day_target(day);
        let born = self.born(day);
        let mut out = Vec::with_capacity(target as usize + 64);
        let mut session = 0u64;
        while (out.len() as u64) < target {
            // Newer visitors are likelier: 1 - u² leans toward the top of [0, born).
            let u: f64 = rng.random();
            let v = ((born as f64) * (1.0 - u * u)) as u64;
            let v = v.min(born - 1);
            // Traffic peaks in the evening: start times lean late with a sine bump.
            let hour_frac: f64 = {
                let x: f64 = rng.random();
                (x + 0.15 * (std::f64::consts::PI * x).sin()).clamp(0.0, 0.999)
            };
            let start = midnight + (hour_frac * 86_400e6) as i64;
            self.session(&mut rng, &mut out, v, day, session, start);
            session += 1;
        }
        out
    }

    fn session(&self, rng: &mut StdRng, out: &mut Vec<Event>, v: u64, day: u32, n: u64, start: i64) {
        let vh = hash(&[self.seed, v]);
        // One person in seven also shops on a second device (a phone beside a laptop, say) and
        // logs in there at once, so their two visitor ids are one person: a third of their
        // sessions. Decided by hashes, not the day's random stream, which stays as it was.
        let second_device =
            (vh >> 28).is_multiple_of(7) && hash(&[self.seed, v, u64::from(day), n, 5]).is_multiple_of(3);
        let visitor_id = match second_device {
            false => format!("{vh:016x}"),
            true => format!("{:016x}", hash(&[self.seed, v, 2])),
        };
        let session_id = format!("{:016x}", hash(&[self.seed, v, u64::from(day), n]));
        let (country, region, city, _) = PLACES[(vh % 100) as usize % PLACES.len()];
        let place = PLACES[pick(rng, &PLACES, |p| p.3)];
        // A visitor mostly stays in one place; a few sessions come from elsewhere.
        let (country, region, city) =
            if rng.random_bool(0.9) { (country, region, city) } else { (place.0, place.1, place.2) };
        let first = ((vh >> 8) % 100) as usize % DEVICES.len();
        let (device, browser, os, _) = DEVICES[if second_device { SECOND_DEVICE[first] } else { first }];
        let (channel, source, medium, campaign, _, intent) = CHANNELS[pick(rng, &CHANNELS, |c| c.4)];
        let user_id = format!("u{v:08}");
        // Half the visitors are in the experiment, split evenly.
        let variant = match (vh >> 20) % 4 {
            0 => Some("control"),
            1 => Some("green"),
            _ => None,
        };
        let mut t = start;
        let mut seq = 0u32;
        let mut push = |out: &mut Vec<Event>, t: i64, name: &str, f: &dyn Fn(&mut Event)| {
            let mut e = Event {
                event_id: ulid::Ulid::from_parts(
                    (t / 1000) as u64,
                    u128::from(hash(&[self.seed, v, n, u64::from(day), u64::from(seq)])),
                )
                .to_string(),
                site: self.site.clone(),
                ts: t,
                name: name.to_owned(),
                visitor_id: visitor_id.clone(),
                session_id: session_id.clone(),
                source: source.map(str::to_owned),
                medium: medium.map(str::to_owned),
                campaign: campaign.map(str::to_owned),
                channel: Some(channel.to_owned()),
                country: Some(country.to_owned()),
                region: Some(region.to_owned()),
                city: Some(city.to_owned()),
                device: Some(device.to_owned()),
                browser: Some(browser.to_owned()),
                os: Some(os.to_owned()),
                hostname: Some("shop.example".to_owned()),
                origin: Some(ORIGIN_BROWSER.to_owned()),
                ..Event::default()
            };
            f(&mut e);
            seq += 1;
            out.push(e);
        };
        let page = |e: &mut Event, path: &str| {
            e.path = Some(path.to_owned());
            e.url = Some(format!("https://shop.example{path}"));
        };
        let step = |rng: &mut StdRng, t: &mut i64| *t += rng.random_range(5_000_000..120_000_000);
        let landing = PAGES[pick(rng, &LANDING, |w| *w)];
        push(out, t, "pageview", &|e| {
            page(e, landing);
            e.referrer = source.map(|s| format!("https://{s}/"));
        });
        // How far the page was read and for how long, as the snippet reports on leaving it:
        // from hashes, so the day's random stream is what it was.
        let read = |k: u64| {
            let h = hash(&[self.seed, v, n, u64::from(day), k]);
            ((20 + h % 81).to_string(), (3 + (h >> 8) % 90).to_string())
        };
        let (scroll, seconds) = read(0);
        let clicks = |out: &mut Vec<Event>, push: &mut Push<'_>, t: i64, path: &str, k: u64| {
            let spots: &[Spot] = match path {
                "/" => &HOME_SPOTS,
                p if p.starts_with("/products/") => &PRODUCT_SPOTS,
                _ => &PAGE_SPOTS,
            };
            for (i, props) in click_props(
                hash(&[self.seed, v, n, u64::from(day), k, 7]),
                spots,
                path.starts_with("/products/"),
                device,
            )
            .into_iter()
            .enumerate()
            {
                push(out, t + 300_000 + 150_000 * i as i64, "$click", &|e| {
                    page(e, path);
                    e.props = props.clone();
                });
            }
        };
        clicks(out, &mut push, t, landing, 0);
        push(out, t + 1_000_000, "$engagement", &|e| {
            page(e, landing);
            e.props.insert("scroll".into(), scroll.clone());
            e.props.insert("seconds".into(), seconds.clone());
        });
        if second_device {
            push(out, t + 500_000, "identify", &|e| e.user_id = Some(user_id.clone()));
        }
        for _ in 0..rng.random_range(0..4) {
            step(rng, &mut t);
            let p = PAGES[rng.random_range(0..PAGES.len())];
            push(out, t, "pageview", &|e| page(e, p));
        }
        if !rng.random_bool((0.55 * intent).min(0.95)) {
            return;
        }
        let mut cart: Vec<Item> = Vec::new();
        for _ in 0..rng.random_range(1..4) {
            let (cat, base) = CATEGORIES[rng.random_range(0..CATEGORIES.len())];
            let k = rng.random_range(0..PRODUCTS_PER_CATEGORY);
            let id = format!("{cat}-{k:02}");
            let price = ((base * (0.7 + 0.03 * k as f64)) * 100.0).round() / 100.0;
            let item = Item {
                id: id.clone(),
                name: Some(format!("{cat} #{k}")),
                category: Some(cat.to_owned()),
                price: Some(price),
                quantity: Some(1),
            };
            step(rng, &mut t);
            let path = format!("/products/{id}");
            push(out, t, "pageview", &|e| page(e, &path));
            push(out, t + 200_000, "product_view", &|e| {
                page(e, &path);
                e.items = vec![item.clone()];
            });
            let (scroll, seconds) = read(1 + k);
            clicks(out, &mut push, t, &path, 1 + k);
            push(out, t + 1_000_000, "$engagement", &|e| {
                page(e, &path);
                e.props.insert("scroll".into(), scroll.clone());
                e.props.insert("seconds".into(), seconds.clone());
            });
            if rng.random_bool((0.3 * intent).min(0.95)) {
                step(rng, &mut t);
                let qty = if rng.random_bool(0.2) { 2 } else { 1 };
                let item = Item { quantity: Some(qty), ..item };
                push(out, t, "add_to_cart", &|e| {
                    page(e, &path);
                    e.items = vec![item.clone()];
                    e.revenue = item.price.map(|p| p * qty as f64);
                    e.currency = Some("EUR".into());
                });
                cart.push(item);
            }
        }
        if let Some(variant) = variant {
            push(out, t + 100_000, "$exposure", &|e| {
                e.props.insert("experiment".into(), "checkout-button".into());
                e.props.insert("variant".into(), variant.into());
            });
        }
        if cart.is_empty() || !rng.random_bool((0.55 * intent).min(0.95)) {
            return;
        }
        step(rng, &mut t);
        let identified = rng.random_bool(0.7);
        if identified {
            push(out, t, "identify", &|e| e.user_id = Some(user_id.clone()));
        }
        let uid = identified.then(|| user_id.clone());
        let total: f64 = cart.iter().map(|i| i.price.unwrap_or(0.0) * i.quantity.unwrap_or(1) as f64).sum();
        let total = (total * 100.0).round() / 100.0;
        push(out, t + 1_000_000, "checkout_start", &|e| {
            page(e, "/checkout");
            e.user_id.clone_from(&uid);
            e.items.clone_from(&cart);
            e.revenue = Some(total);
            e.currency = Some("EUR".into());
        });
        let p_buy = if variant == Some("green") { 0.66 } else { 0.58 };
        if !rng.random_bool(p_buy) {
            return;
        }
        step(rng, &mut t);
        let order_id = format!("o{:012x}", hash(&[self.seed, v, n, u64::from(day), 7]) >> 16);
        push(out, t, "purchase", &|e| {
            page(e, "/checkout/thanks");
            e.user_id.clone_from(&uid);
            e.items.clone_from(&cart);
            e.revenue = Some(total);
            e.currency = Some("EUR".into());
            e.order_id = Some(order_id.clone());
        });
        if rng.random_bool(0.03) {
            // Refunds come from the shop's backend, an hour later, in the order's session.
            push(out, t + 3_600_000_000, "refund", &|e| {
                e.origin = Some(ORIGIN_SERVER.to_owned());
                e.user_id.clone_from(&uid);
                e.revenue = Some(total);
                e.currency = Some("EUR".into());
                e.order_id = Some(order_id.clone());
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(seed: u64) -> ShopConfig {
        ShopConfig {
            site: "shop".into(),
            seed,
            events: 26_000,
            visitors: 2_000,
            start: NaiveDate::from_ymd_opt(2026, 1, 5).expect("date"),
            days: 7,
        }
    }

    #[test]
    fn same_seed_same_events_other_seed_other_events() {
        let a: Vec<Event> = (0..7).flat_map(|d| cfg(1).day(d)).collect();
        let b: Vec<Event> = (0..7).flat_map(|d| cfg(1).day(d)).collect();
        let c: Vec<Event> = (0..7).flat_map(|d| cfg(2).day(d)).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn sizes_and_shape_are_realistic() {
        let c = cfg(7);
        let events: Vec<Event> = (0..7).flat_map(|d| c.day(d)).collect();
        // About the events asked for (sessions are whole).
        assert!((26_000..26_300).contains(&events.len()), "{}", events.len());
        let count = |n: &str| events.iter().filter(|e| e.name == n).count();
        let (views, carts, checkouts, buys) =
            (count("product_view"), count("add_to_cart"), count("checkout_start"), count("purchase"));
        // The funnel narrows at every step.
        assert!(
            views > carts && carts > checkouts && checkouts > buys && buys > 0,
            "{views} {carts} {checkouts} {buys}"
        );
        let visitors: std::collections::HashSet<&str> = events.iter().map(|e| e.visitor_id.as_str()).collect();
        assert!(visitors.len() > 500 && visitors.len() <= 2_000, "{}", visitors.len());
        // Event ids are unique; every event is inside its day or just after (a late session).
        let ids: std::collections::HashSet<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
        assert_eq!(ids.len(), events.len());
        // Landing and product pages report how far they were read (20-100%) and for how long.
        let reads: Vec<(u32, u32)> = events
            .iter()
            .filter(|e| e.name == "$engagement")
            .map(|e| (e.props["scroll"].parse().expect("scroll"), e.props["seconds"].parse().expect("seconds")))
            .collect();
        assert!(reads.len() > count("product_view"), "{} $engagement events", reads.len());
        assert!(reads.iter().all(|(s, t)| (20..=100).contains(s) && (3..93).contains(t)));
        // Clicks (the heatmap add-on's): on the pages read, in the page's viewport class, with
        // rage bursts at the add-to-cart button and dead clicks on what does nothing.
        let clicks: Vec<&Event> = events.iter().filter(|e| e.name == "$click").collect();
        assert!(clicks.len() > count("product_view"), "{} clicks", clicks.len());
        for c in &clicks {
            let vw = TALLER.iter().find(|t| Some(t.0) == c.device.as_deref()).map(|t| t.1);
            assert_eq!(c.props.get("vw").map(String::as_str), vw);
            let x: f64 = c.props["x"].parse().expect("x");
            assert!((0.0..=1.0).contains(&x) && c.props["y"].parse::<f64>().expect("y") >= 0.0);
        }
        let rage: Vec<&&Event> = clicks.iter().filter(|c| c.props.contains_key("rage")).collect();
        assert!(!rage.is_empty() && rage.iter().all(|c| c.props["selector"] == "[data-heatmap=\"add-to-cart\"]"));
        assert!(clicks.iter().any(|c| c.props.get("dead").is_some_and(|d| d == "true")));
        // Refunds are the backend's, everything else the browser's.
        for e in &events {
            let want = if e.name == "refund" { ORIGIN_SERVER } else { ORIGIN_BROWSER };
            assert_eq!(e.origin.as_deref(), Some(want), "{}", e.name);
        }
        // Some people log in on two devices: one user id, two visitor ids, two kinds of device.
        let mut devices: std::collections::HashMap<&str, std::collections::BTreeSet<(&str, &str)>> =
            std::collections::HashMap::new();
        for e in events.iter().filter(|e| e.name == "identify") {
            let user = e.user_id.as_deref().expect("an identify names its user");
            devices.entry(user).or_default().insert((e.visitor_id.as_str(), e.device.as_deref().unwrap_or("")));
        }
        let two: Vec<_> = devices.values().filter(|d| d.len() == 2).collect();
        // 10 or more with this seed (26,000 events, a fifth of them clicks); fewer would mean the
        // feature went missing.
        assert!(two.len() >= 10, "{} people on two devices", two.len());
        assert!(two.iter().all(|d| d.iter().map(|x| x.1).collect::<std::collections::HashSet<_>>().len() == 2));
        assert!(devices.values().all(|d| d.len() <= 2));
        // Purchases carry revenue equal to their items.
        for e in events.iter().filter(|e| e.name == "purchase") {
            let items: f64 = e.items.iter().map(|i| i.price.unwrap_or(0.0) * i.quantity.unwrap_or(1) as f64).sum();
            assert!((e.revenue.unwrap_or(0.0) - items).abs() < 0.01);
        }
    }
}
