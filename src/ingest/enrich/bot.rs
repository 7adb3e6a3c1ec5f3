//! Bot detection with isbot's pattern list (Unlicense, `data/ua/isbot-patterns.json`).
//!
//! isbot's patterns are JavaScript regexes. All but six compile as they are with the `regex`
//! crate and are joined into one case-insensitive alternation. The six that use look-around
//! (which `regex` does not support, by design: it guarantees linear time) are rewritten here
//! as a plain core pattern plus literal checks on the text just before and after each match.

use regex::Regex;

const PATTERNS_JSON: &str = include_str!("../../../data/ua/isbot-patterns.json");

/// A look-around pattern of isbot's, rewritten.
struct LookAround {
    /// isbot's original pattern, to recognise it in the list.
    original: &'static str,
    core: &'static str,
    /// The match is not a bot match if the text before it ends with one of these.
    not_after: &'static [&'static str],
    /// ... or the text after it starts with one of these.
    not_before: &'static [&'static str],
}

const LOOK_AROUND: [LookAround; 6] = [
    LookAround { original: "(?:^|[^g])news(?!sapphire)", core: "news", not_after: &["g"], not_before: &["sapphire"] },
    LookAround {
        original: "(?<! channel/|google/)google(?!(?:wv|app|/google| pixel))",
        core: "google",
        not_after: &[" channel/", "google/"],
        not_before: &["wv", "app", "/google", " pixel"],
    },
    LookAround {
        original: "(?<! cu)bots?(?:\\b|_)",
        core: "bots?(?:(?-u:\\b)|_)",
        not_after: &[" cu"],
        not_before: &[],
    },
    LookAround { original: "(?<!cam)scan", core: "scan", not_after: &["cam"], not_before: &[] },
    LookAround { original: "(?<!lib)http", core: "http", not_after: &["lib"], not_before: &[] },
    LookAround { original: "java(?!;)", core: "java", not_after: &[], not_before: &[";"] },
];

struct CompiledLookAround {
    core: Regex,
    not_after: &'static [&'static str],
    not_before: &'static [&'static str],
}

/// JavaScript reads a `-` right after a class escape inside brackets (`[\w\d-.]`) as a
/// literal dash; the `regex` crate wants it escaped.
fn js_to_rust(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '\\'
            && let Some(n) = chars.next()
        {
            out.push(n);
            if "wdsWDS".contains(n) && chars.peek() == Some(&'-') {
                chars.next();
                out.push_str("\\-");
            }
        }
    }
    out
}

/// isbot's list, compiled.
pub struct BotList {
    plain: Regex,
    look_around: Vec<CompiledLookAround>,
}

impl Default for BotList {
    fn default() -> Self {
        Self::new()
    }
}

impl BotList {
    /// Compile the vendored list.
    pub fn new() -> Self {
        let all: Vec<String> =
            serde_json::from_str(PATTERNS_JSON).expect("vendored isbot list is a JSON array of strings");
        let plain: Vec<String> = all
            .iter()
            .filter(|p| !LOOK_AROUND.iter().any(|l| l.original == p.as_str()))
            .map(|p| js_to_rust(p))
            .collect();
        let plain = Regex::new(&format!("(?i)(?:{})", plain.join("|"))).expect("isbot plain patterns compile");
        let look_around = LOOK_AROUND
            .iter()
            .filter(|l| all.iter().any(|p| p == l.original))
            .map(|l| CompiledLookAround {
                core: Regex::new(l.core).expect("rewritten core compiles"),
                not_after: l.not_after,
                not_before: l.not_before,
            })
            .collect();
        Self { plain, look_around }
    }

    /// Whether `ua` matches any of isbot's patterns.
    pub fn is_bot(&self, ua: &str) -> bool {
        if self.plain.is_match(ua) {
            return true;
        }
        let lower = ua.to_ascii_lowercase();
        self.look_around.iter().any(|l| {
            l.core.find_iter(&lower).any(|m| {
                let before = &lower[..m.start()];
                let after = &lower[m.end()..];
                !l.not_after.iter().any(|s| before.ends_with(s)) && !l.not_before.iter().any(|s| after.starts_with(s))
            })
        })
    }

    /// How many of the vendored patterns were rewritten (all six are expected to be present).
    pub fn look_around_count(&self) -> usize {
        self.look_around.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[test]
    fn js_class_dash_is_escaped() {
        assert_eq!(js_to_rust(r"[\w\d-.]+"), r"[\w\d\-.]+");
        assert_eq!(js_to_rust(r"a\-b\\d-"), r"a\-b\\d-");
    }

    #[test]
    fn every_look_around_pattern_is_in_the_vendored_list() {
        assert_eq!(BotList::new().look_around_count(), LOOK_AROUND.len());
    }

    #[rstest]
    #[case("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", true)]
    #[case("Googlebot-News", true)]
    #[case("Mozilla/5.0 (Linux; Android 10) Chrome/90.0 Mobile Safari/537.36 GoogleApp/1", false)]
    #[case("python-requests/2.31.0", true)]
    #[case("Java/1.8.0_151", true)]
    #[case("Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0", false)]
    #[case(
        "Mozilla/5.0 (iPhone; CPU iPhone OS 16_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 NewsSapphire/5.0",
        false
    )]
    #[case(
        "Mozilla/5.0 (Linux; Android 9; CUBOT X19) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/74.0.3729.136 Mobile Safari/537.36",
        false
    )]
    #[case(
        "Mozilla/5.0 (Linux; Android 9; Pixel) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/74.0 Mobile Safari/537.36 mybot",
        true
    )]
    #[case(
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/74.0 Safari/537.36 securityscan/1.0",
        true
    )]
    fn known_agents(#[case] ua: &str, #[case] bot: bool) {
        assert_eq!(BotList::new().is_bot(ua), bot, "{ua}");
    }
}
