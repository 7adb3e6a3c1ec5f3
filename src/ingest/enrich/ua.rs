//! User agent → browser, version, OS, device type, with uap-core's regexes (`ua-parser`),
//! and bot detection with isbot's list (see [`super::bot`]). Results are cached per UA string.

use std::sync::{Arc, LazyLock};

use ua_parser::{Extractor, Regexes};

use super::bot::BotList;

/// uap-core's `regexes.yaml` (Apache-2.0), shipped in the binary.
const REGEXES_YAML: &str = include_str!("../../../data/ua/regexes.yaml");
const CACHE_ENTRIES: usize = 20_000;

static EXTRACTOR: LazyLock<Extractor<'static>> = LazyLock::new(|| {
    let regexes: Regexes<'static> = serde_yaml::from_str(REGEXES_YAML).expect("vendored regexes.yaml parses");
    Extractor::try_from(regexes).expect("vendored regexes.yaml compiles")
});

/// What a user agent says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UaInfo {
    pub browser: Option<String>,
    pub browser_version: Option<String>,
    pub os: Option<String>,
    pub os_version: Option<String>,
    /// `Desktop`, `Mobile` or `Tablet`.
    pub device: Option<String>,
    pub is_bot: bool,
}

impl UaInfo {
    /// Set an event's browser, OS and device fields from this user agent.
    pub fn apply(&self, e: &mut crate::model::Event) {
        e.browser.clone_from(&self.browser);
        e.browser_version.clone_from(&self.browser_version);
        e.os.clone_from(&self.os);
        e.os_version.clone_from(&self.os_version);
        e.device.clone_from(&self.device);
    }
}

/// Parses user agents, with a cache.
pub struct UaParser {
    cache: quick_cache::sync::Cache<String, Arc<UaInfo>>,
    bots: BotList,
}

impl Default for UaParser {
    fn default() -> Self {
        Self::new()
    }
}

impl UaParser {
    /// Compile the regexes (about a second, once per process) and the bot list.
    pub fn new() -> Self {
        LazyLock::force(&EXTRACTOR);
        Self { cache: quick_cache::sync::Cache::new(CACHE_ENTRIES), bots: BotList::new() }
    }

    /// Parse `ua`, using the cache.
    pub fn parse(&self, ua: &str) -> Arc<UaInfo> {
        if let Some(hit) = self.cache.get(ua) {
            return hit;
        }
        let info = Arc::new(self.parse_uncached(ua));
        self.cache.insert(ua.to_owned(), info.clone());
        info
    }

    fn parse_uncached(&self, ua: &str) -> UaInfo {
        // Devices are typed from the UA's own markers; uap-core's device family is not used:
        // its "Spider" family flags real browsers that isbot's list passes (5 of isbot's 555
        // browser fixtures) and catches no crawler that isbot's list misses.
        let (browser, os, _device) = EXTRACTOR.extract(ua);
        let known = |s: &str| (s != "Other").then(|| s.to_owned());
        UaInfo {
            browser: browser.as_ref().and_then(|b| known(&b.family)),
            browser_version: browser.as_ref().and_then(|b| version(b.major, b.minor)),
            os: os.as_ref().and_then(|o| known(&o.os)),
            os_version: os.as_ref().and_then(|o| version(o.major.as_deref(), o.minor.as_deref())),
            device: (!ua.is_empty()).then(|| device_type(ua).to_owned()),
            is_bot: self.bots.is_bot(ua),
        }
    }
}

fn version(major: Option<&str>, minor: Option<&str>) -> Option<String> {
    match (major, minor) {
        (Some(ma), Some(mi)) if !mi.is_empty() => Some(format!("{ma}.{mi}")),
        (Some(ma), _) if !ma.is_empty() => Some(ma.to_owned()),
        _ => None,
    }
}

/// Desktop, Mobile or Tablet from the UA's own markers (the approach of Matomo and most
/// device detectors: tablets first, since tablet UAs also say "Android" or "Mobile").
pub fn device_type(ua: &str) -> &'static str {
    let l = ua.to_ascii_lowercase();
    let tablet = l.contains("ipad")
        || l.contains("tablet")
        || l.contains("kindle")
        || l.contains("silk/")
        || l.contains("playbook")
        || (l.contains("android") && !l.contains("mobile"));
    if tablet {
        "Tablet"
    } else if l.contains("mobi")
        || l.contains("iphone")
        || l.contains("ipod")
        || l.contains("android")
        || l.contains("windows phone")
    {
        "Mobile"
    } else {
        "Desktop"
    }
}

/// Full uap-core values for a UA, as the uap-core test vectors state them.
/// Returns (browser family, major, minor, patch), (os, major, minor, patch, patch_minor),
/// (device family, brand, model).
pub type UapTriple =
    (Option<ua_parser::user_agent::Value>, Option<ua_parser::os::Value>, Option<ua_parser::device::Value>);

/// Run uap-core's three extractors on `ua` without footfall's post-processing.
pub fn uap_extract(ua: &str) -> UapTriple {
    let (b, o, d) = EXTRACTOR.extract(ua);
    (b.map(|v| v.into_owned()), o.map(|v| v.into_owned()), d.map(|v| v.into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const CHROME_WIN: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.130 Safari/537.36";
    const SAFARI_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1.2 Mobile/15E148 Safari/604.1";
    const IPAD: &str = "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1";
    const ANDROID_TABLET: &str = "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Safari/537.36";
    const GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

    #[rstest]
    #[case(CHROME_WIN, Some("Chrome"), Some("120.0"), Some("Windows"), Some("10"), "Desktop", false)]
    #[case(SAFARI_IPHONE, Some("Mobile Safari"), Some("17.1"), Some("iOS"), Some("17.1"), "Mobile", false)]
    #[case(IPAD, Some("Mobile Safari"), Some("16.6"), Some("iOS"), Some("16.6"), "Tablet", false)]
    #[case(ANDROID_TABLET, Some("Chrome"), Some("119.0"), Some("Android"), Some("13"), "Tablet", false)]
    #[case(GOOGLEBOT, Some("Googlebot"), Some("2.1"), None, None, "Desktop", true)]
    fn parses_common_agents(
        #[case] ua: &str,
        #[case] browser: Option<&str>,
        #[case] version: Option<&str>,
        #[case] os: Option<&str>,
        #[case] os_version: Option<&str>,
        #[case] device: &str,
        #[case] bot: bool,
    ) {
        let p = UaParser::new();
        let info = p.parse(ua);
        assert_eq!(info.browser.as_deref(), browser);
        assert_eq!(info.browser_version.as_deref(), version);
        assert_eq!(info.os.as_deref(), os);
        assert_eq!(info.os_version.as_deref(), os_version);
        assert_eq!(info.device.as_deref(), Some(device));
        assert_eq!(info.is_bot, bot);
    }

    #[test]
    fn empty_and_unknown_agents_give_nothing() {
        let p = UaParser::new();
        let info = p.parse("");
        assert_eq!(*info, UaInfo::default());
        let info = p.parse("curiosity/0.1");
        assert_eq!(info.browser, None);
    }

    #[test]
    fn cache_returns_the_same_answer() {
        let p = UaParser::new();
        let a = p.parse(CHROME_WIN);
        let b = p.parse(CHROME_WIN);
        assert!(Arc::ptr_eq(&a, &b));
    }
}
