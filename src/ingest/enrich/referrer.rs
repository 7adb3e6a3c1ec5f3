//! Referrer, UTM tags and click ids → source, medium, campaign, term, content and a channel
//! following GA4's default channel group rules, plus URL clean-up (PII query keys removed).

use url::Url;

/// The acquisition fields of an event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Acquisition {
    pub source: Option<String>,
    pub medium: Option<String>,
    pub campaign: Option<String>,
    pub term: Option<String>,
    pub content: Option<String>,
    pub channel: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Search,
    Social,
    Video,
    Shopping,
    Email,
    Ai,
}

/// Our own small list: domain suffix → (source name, kind). First match wins, so more
/// specific hosts come before their parents (gemini.google.com before google.).
const DOMAINS: &[(&str, &str, Kind)] = &[
    ("chatgpt.com", "chatgpt", Kind::Ai),
    ("chat.openai.com", "chatgpt", Kind::Ai),
    ("perplexity.ai", "perplexity", Kind::Ai),
    ("claude.ai", "claude", Kind::Ai),
    ("gemini.google.com", "gemini", Kind::Ai),
    ("copilot.microsoft.com", "copilot", Kind::Ai),
    ("mail.google.com", "gmail", Kind::Email),
    ("outlook.live.com", "outlook", Kind::Email),
    ("mail.yahoo.com", "yahoo mail", Kind::Email),
    ("shopping.google.", "google shopping", Kind::Shopping),
    ("google.", "google", Kind::Search),
    ("bing.com", "bing", Kind::Search),
    ("duckduckgo.com", "duckduckgo", Kind::Search),
    ("search.yahoo.com", "yahoo", Kind::Search),
    ("yahoo.", "yahoo", Kind::Search),
    ("yandex.", "yandex", Kind::Search),
    ("baidu.com", "baidu", Kind::Search),
    ("ecosia.org", "ecosia", Kind::Search),
    ("search.brave.com", "brave", Kind::Search),
    ("startpage.com", "startpage", Kind::Search),
    ("qwant.com", "qwant", Kind::Search),
    ("naver.com", "naver", Kind::Search),
    ("seznam.cz", "seznam", Kind::Search),
    ("facebook.com", "facebook", Kind::Social),
    ("instagram.com", "instagram", Kind::Social),
    ("t.co", "twitter", Kind::Social),
    ("twitter.com", "twitter", Kind::Social),
    ("x.com", "twitter", Kind::Social),
    ("linkedin.com", "linkedin", Kind::Social),
    ("lnkd.in", "linkedin", Kind::Social),
    ("pinterest.", "pinterest", Kind::Social),
    ("reddit.com", "reddit", Kind::Social),
    ("tiktok.com", "tiktok", Kind::Social),
    ("threads.net", "threads", Kind::Social),
    ("bsky.app", "bluesky", Kind::Social),
    ("mastodon.social", "mastodon", Kind::Social),
    ("vk.com", "vk", Kind::Social),
    ("whatsapp.com", "whatsapp", Kind::Social),
    ("youtube.com", "youtube", Kind::Video),
    ("youtu.be", "youtube", Kind::Video),
    ("vimeo.com", "vimeo", Kind::Video),
    ("twitch.tv", "twitch", Kind::Video),
    ("amazon.", "amazon", Kind::Shopping),
    ("ebay.", "ebay", Kind::Shopping),
    ("etsy.com", "etsy", Kind::Shopping),
];

/// Short utm_source spellings in common use (GA4's source lists include them).
const SOURCE_ALIASES: &[(&str, Kind)] =
    &[("ig", Kind::Social), ("fb", Kind::Social), ("tw", Kind::Social), ("li", Kind::Social), ("yt", Kind::Video)];

/// The kind of a source name, a domain, or an alias (utm_source values are matched too).
/// `lower` is already in lower case ([`channel`] lowercases once).
fn kind_of_source(lower: &str) -> Option<Kind> {
    DOMAINS
        .iter()
        .find(|(_, name, _)| *name == lower)
        .map(|(_, _, k)| *k)
        .or_else(|| SOURCE_ALIASES.iter().find(|(a, _)| *a == lower).map(|(_, k)| *k))
        .or_else(|| lookup_host(lower).map(|(_, k)| k))
}

/// `host` is `domain` or a subdomain of it.
pub fn is_same_or_subdomain(host: &str, domain: &str) -> bool {
    host.strip_suffix(domain).is_some_and(|rest| rest.is_empty() || rest.ends_with('.'))
}

fn host_matches(host: &str, pattern: &str) -> bool {
    match pattern.strip_suffix('.') {
        // "google." matches google.com and www.google.co.uk, not googleusercontent.com:
        // the labels of `prefix`, followed by at least one more label.
        Some(prefix) => host.match_indices(prefix).any(|(i, _)| {
            let after = &host[i + prefix.len()..];
            (i == 0 || host.as_bytes()[i - 1] == b'.') && after.len() > 1 && after.starts_with('.')
        }),
        None => is_same_or_subdomain(host, pattern),
    }
}

fn lookup_host(host: &str) -> Option<(&'static str, Kind)> {
    DOMAINS.iter().find(|(pat, _, _)| host_matches(host, pat)).map(|(_, name, kind)| (*name, *kind))
}

/// Click ids that identify the ad network (and that the click was paid, except fbclid,
/// which Meta adds to organic links too).
const CLICK_IDS: &[(&str, &str, &str)] = &[
    ("gclid", "google", "cpc"),
    ("gbraid", "google", "cpc"),
    ("wbraid", "google", "cpc"),
    ("msclkid", "bing", "cpc"),
    ("yclid", "yandex", "cpc"),
    ("ttclid", "tiktok", "paid"),
    ("twclid", "twitter", "paid"),
    ("fbclid", "facebook", "referral"),
];

/// Query keys never stored (lower case). Values containing '@' are dropped too.
const PII_KEYS: &[&str] = &[
    "email",
    "e-mail",
    "mail",
    "email_address",
    "password",
    "pass",
    "passwd",
    "pwd",
    "token",
    "access_token",
    "id_token",
    "auth",
    "apikey",
    "api_key",
    "phone",
    "tel",
    "mobile",
    "ssn",
    "first_name",
    "last_name",
    "firstname",
    "lastname",
    "address",
    "zip",
    "postcode",
];

/// A page URL with PII query parameters removed, plus its path and host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CleanUrl {
    pub url: String,
    pub path: String,
    pub hostname: Option<String>,
}

/// Remove PII query parameters and the fragment.
pub fn clean_url(url: &Url) -> CleanUrl {
    let mut u = url.clone();
    u.set_fragment(None);
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, v)| !PII_KEYS.contains(&k.to_ascii_lowercase().as_str()) && !v.contains('@'))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if kept.is_empty() {
        u.set_query(None);
    } else {
        u.query_pairs_mut().clear().extend_pairs(kept);
    }
    CleanUrl { url: u.to_string(), path: u.path().to_owned(), hostname: u.host_str().map(str::to_owned) }
}

/// Referrer as stored: scheme, host and path only (another site's query may hold anything).
pub fn clean_referrer(referrer: &Url) -> String {
    let mut r = referrer.clone();
    r.set_query(None);
    r.set_fragment(None);
    r.to_string()
}

/// The query parameters that attribution reads, decoded once per page URL.
#[derive(Default)]
struct Params(Vec<(String, String)>);

impl Params {
    fn of(url: Option<&Url>) -> Self {
        let Some(url) = url.filter(|u| u.query().is_some()) else { return Self::default() };
        let wanted = |k: &str| k.starts_with("utm_") || CLICK_IDS.iter().any(|(c, _, _)| *c == k);
        Self(
            url.query_pairs()
                .filter(|(k, v)| wanted(k) && !v.is_empty())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    fn get(&self, key: &str) -> Option<String> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    }
}

fn strip_www(host: &str) -> &str {
    host.strip_prefix("www.").unwrap_or(host)
}

/// Attribute a page view: `page` is the landing URL, `referrer` the raw document.referrer.
/// An event's page and acquisition fields from its raw URL and referrer: what live and
/// imported events both get.
pub fn page_fields(url: Option<&str>, referrer: Option<&str>, e: &mut crate::model::Event) {
    let page = url.and_then(|u| Url::parse(u).ok());
    let refr = referrer.filter(|r| !r.is_empty()).and_then(|r| Url::parse(r).ok());
    let acq = attribute(page.as_ref(), refr.as_ref());
    if let Some(c) = page.as_ref().map(clean_url) {
        (e.url, e.path, e.hostname) = (Some(c.url), Some(c.path), c.hostname);
    }
    e.referrer = refr.as_ref().map(clean_referrer);
    (e.source, e.medium, e.campaign, e.term, e.content) = (acq.source, acq.medium, acq.campaign, acq.term, acq.content);
    e.channel = Some(acq.channel);
}

pub fn attribute(page: Option<&Url>, referrer: Option<&Url>) -> Acquisition {
    let page_host = page.and_then(|u| u.host_str()).map(strip_www);
    let ref_host = referrer.and_then(|u| u.host_str()).map(strip_www);
    let internal =
        matches!((page_host, ref_host), (Some(p), Some(r)) if is_same_or_subdomain(r, p) || is_same_or_subdomain(p, r));
    let ref_host = if internal { None } else { ref_host };
    let params = Params::of(page);
    let click = CLICK_IDS.iter().find(|(k, _, _)| params.get(k).is_some());

    let mut source = params.get("utm_source");
    let mut medium = params.get("utm_medium");
    if source.is_none()
        && let Some((_, s, m)) = click
    {
        source = Some((*s).to_owned());
        medium = medium.or_else(|| Some((*m).to_owned()));
    }
    let known = ref_host.and_then(lookup_host);
    if source.is_none() {
        source = known.map(|(name, _)| name.to_owned()).or_else(|| ref_host.map(str::to_owned));
    }
    if medium.is_none() {
        medium = match (known, ref_host) {
            // As GA4 does: search engines are "organic", every other referrer "referral";
            // the channel rules then look at the source's kind.
            (Some((_, Kind::Search)), _) => Some("organic".into()),
            (Some(_), _) | (None, Some(_)) => Some("referral".into()),
            (None, None) => None,
        };
    }
    let campaign = params.get("utm_campaign");
    let channel = channel(source.as_deref(), medium.as_deref(), campaign.as_deref()).to_owned();
    Acquisition { source, medium, campaign, term: params.get("utm_term"), content: params.get("utm_content"), channel }
}

fn is_paid(medium: &str) -> bool {
    // GA4: ^(.*cp.*|ppc|retargeting|paid.*)$
    medium.contains("cp") || medium == "ppc" || medium == "retargeting" || medium.starts_with("paid")
}

fn is_shopping_campaign(campaign: &str) -> bool {
    // GA4: ^(.*(([^a-df-z]|^)shop|shopping).*)$
    let c = campaign.as_bytes();
    campaign.contains("shopping")
        || campaign.match_indices("shop").any(|(i, _)| i == 0 || !matches!(c[i - 1], b'a'..=b'd' | b'f'..=b'z'))
}

fn is_email(s: &str) -> bool {
    ["email", "e-mail", "e_mail", "e mail"].iter().any(|e| s.contains(e))
}

/// GA4's default channel group, evaluated in GA4's order, with "AI Assistants" (AI chat
/// products sending visitors) placed before the organic rules.
pub fn channel(source: Option<&str>, medium: Option<&str>, campaign: Option<&str>) -> &'static str {
    let s = source.unwrap_or("").to_ascii_lowercase();
    let m = medium.unwrap_or("").to_ascii_lowercase();
    let c = campaign.unwrap_or("").to_ascii_lowercase();
    let kind = kind_of_source(&s);
    let paid = is_paid(&m);
    if (s.is_empty() || s == "(direct)") && (m.is_empty() || m == "(none)" || m == "(not set)") {
        return "Direct";
    }
    if c.contains("cross-network") {
        return "Cross-network";
    }
    match (kind, paid) {
        (Some(Kind::Shopping), true) => return "Paid Shopping",
        _ if paid && is_shopping_campaign(&c) => return "Paid Shopping",
        (Some(Kind::Search), true) => return "Paid Search",
        (Some(Kind::Social), true) => return "Paid Social",
        (Some(Kind::Video), true) => return "Paid Video",
        _ => {}
    }
    if ["display", "banner", "expandable", "interstitial", "cpm"].contains(&m.as_str()) {
        return "Display";
    }
    if paid {
        return "Paid Other";
    }
    if kind == Some(Kind::Ai) {
        return "AI Assistants";
    }
    if kind == Some(Kind::Shopping) || is_shopping_campaign(&c) {
        return "Organic Shopping";
    }
    if kind == Some(Kind::Social)
        || ["social", "social-network", "social-media", "sm", "social network", "social media"].contains(&m.as_str())
    {
        return "Organic Social";
    }
    if kind == Some(Kind::Video) || m.contains("video") {
        return "Organic Video";
    }
    if kind == Some(Kind::Search) || m == "organic" {
        return "Organic Search";
    }
    if kind == Some(Kind::Email) || is_email(&s) || is_email(&m) {
        return "Email";
    }
    if m == "affiliate" {
        return "Affiliates";
    }
    if ["referral", "app", "link"].contains(&m.as_str()) {
        return "Referral";
    }
    if m == "audio" {
        return "Audio";
    }
    if s == "sms" || m == "sms" {
        return "SMS";
    }
    if m.ends_with("push") || m.contains("mobile") || m.contains("notification") || s == "firebase" {
        return "Mobile Push Notifications";
    }
    "Unassigned"
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn u(s: &str) -> Url {
        Url::parse(s).expect("url")
    }

    #[rstest]
    #[case("https://shop.example/", None, None, None, "Direct")]
    #[case("https://shop.example/", Some("https://www.google.com/"), Some("google"), Some("organic"), "Organic Search")]
    #[case(
        "https://shop.example/",
        Some("https://www.google.co.uk/search"),
        Some("google"),
        Some("organic"),
        "Organic Search"
    )]
    #[case(
        "https://shop.example/?gclid=abc",
        Some("https://www.google.com/"),
        Some("google"),
        Some("cpc"),
        "Paid Search"
    )]
    #[case("https://shop.example/?msclkid=1", None, Some("bing"), Some("cpc"), "Paid Search")]
    #[case(
        "https://shop.example/?utm_source=Facebook&utm_medium=CPC",
        None,
        Some("Facebook"),
        Some("CPC"),
        "Paid Social"
    )]
    #[case("https://shop.example/?yclid=1", None, Some("yandex"), Some("cpc"), "Paid Search")]
    #[case(
        "https://shop.example/?fbclid=x",
        Some("https://l.facebook.com/"),
        Some("facebook"),
        Some("referral"),
        "Organic Social"
    )]
    #[case(
        "https://shop.example/?utm_source=facebook&utm_medium=paid_social",
        None,
        Some("facebook"),
        Some("paid_social"),
        "Paid Social"
    )]
    #[case(
        "https://shop.example/?utm_source=newsletter&utm_medium=email",
        None,
        Some("newsletter"),
        Some("email"),
        "Email"
    )]
    #[case(
        "https://shop.example/?utm_source=partner&utm_medium=affiliate",
        None,
        Some("partner"),
        Some("affiliate"),
        "Affiliates"
    )]
    #[case("https://shop.example/?utm_source=gdn&utm_medium=display", None, Some("gdn"), Some("display"), "Display")]
    #[case("https://shop.example/", Some("https://chatgpt.com/"), Some("chatgpt"), Some("referral"), "AI Assistants")]
    #[case(
        "https://shop.example/",
        Some("https://gemini.google.com/app"),
        Some("gemini"),
        Some("referral"),
        "AI Assistants"
    )]
    #[case(
        "https://shop.example/",
        Some("https://news.ycombinator.com/item?id=1"),
        Some("news.ycombinator.com"),
        Some("referral"),
        "Referral"
    )]
    #[case(
        "https://shop.example/",
        Some("https://www.youtube.com/watch?v=1"),
        Some("youtube"),
        Some("referral"),
        "Organic Video"
    )]
    #[case("https://shop.example/cart", Some("https://shop.example/product/1"), None, None, "Direct")]
    #[case("https://shop.example/", Some("https://blog.shop.example/"), None, None, "Direct")]
    #[case(
        "https://shop.example/",
        Some("https://mail.google.com/mail/u/0/"),
        Some("gmail"),
        Some("referral"),
        "Email"
    )]
    #[case(
        "https://shop.example/",
        Some("https://www.instagram.com/"),
        Some("instagram"),
        Some("referral"),
        "Organic Social"
    )]
    #[case(
        "https://shop.example/",
        Some("https://www.amazon.de/"),
        Some("amazon"),
        Some("referral"),
        "Organic Shopping"
    )]
    #[case(
        "https://shop.example/",
        Some("https://googleusercontent.com/"),
        Some("googleusercontent.com"),
        Some("referral"),
        "Referral"
    )]
    fn attribution(
        #[case] page: &str,
        #[case] referrer: Option<&str>,
        #[case] source: Option<&str>,
        #[case] medium: Option<&str>,
        #[case] channel: &str,
    ) {
        let r = referrer.map(u);
        let a = attribute(Some(&u(page)), r.as_ref());
        assert_eq!((a.source.as_deref(), a.medium.as_deref(), a.channel.as_str()), (source, medium, channel));
    }

    #[rstest]
    #[case("google.com", "google.", true)]
    #[case("www.google.co.uk", "google.", true)]
    #[case("googleusercontent.com", "google.", false)]
    #[case("mygoogle.com", "google.", false)]
    #[case("google", "google.", false)]
    #[case("l.facebook.com", "facebook.com", true)]
    #[case("notfacebook.com", "facebook.com", false)]
    #[case("t.co", "t.co", true)]
    #[case("bt.co", "t.co", false)]
    fn host_patterns(#[case] host: &str, #[case] pattern: &str, #[case] want: bool) {
        assert_eq!(host_matches(host, pattern), want);
    }

    #[test]
    fn utm_fields_are_kept() {
        let a = attribute(
            Some(&u(
                "https://s.example/?utm_source=ig&utm_medium=cpc&utm_campaign=spring&utm_term=mugs&utm_content=v2",
            )),
            None,
        );
        assert_eq!(a.campaign.as_deref(), Some("spring"));
        assert_eq!(a.term.as_deref(), Some("mugs"));
        assert_eq!(a.content.as_deref(), Some("v2"));
        assert_eq!(a.channel, "Paid Social");
    }

    #[rstest]
    #[case("cpc", "spring_shopping", "Paid Shopping")]
    #[case("cpc", "eshop", "Paid Shopping")]
    #[case("cpc", "workshop", "Paid Other")]
    #[case("ppc", "x", "Paid Other")]
    #[case("sms", "x", "SMS")]
    #[case("web_push", "x", "Mobile Push Notifications")]
    #[case("podcast", "cross-network", "Cross-network")]
    #[case("weird", "x", "Unassigned")]
    fn channel_rules(#[case] medium: &str, #[case] campaign: &str, #[case] want: &str) {
        assert_eq!(channel(Some("someone"), Some(medium), Some(campaign)), want);
    }

    #[test]
    fn urls_lose_pii_and_fragments() {
        let c = clean_url(&u("https://shop.example/checkout?email=a%40b.c&step=2&Token=x&ref=me%40x.io#top"));
        assert_eq!(c.url, "https://shop.example/checkout?step=2");
        assert_eq!(c.path, "/checkout");
        assert_eq!(c.hostname.as_deref(), Some("shop.example"));
        assert_eq!(clean_url(&u("https://shop.example/a?email=x")).url, "https://shop.example/a");
        assert_eq!(clean_referrer(&u("https://www.google.com/search?q=my+name#x")), "https://www.google.com/search");
    }
}
