//! Secrets never leave the config. Node and orderbook URLs carry API keys in their path
//! (`/v3/<key>`), query (`?apikey=…`) or user info, so nexum shows a URL by one rule only:
//! scheme, host and port, then `/…` when anything followed. Free text from HTTP clients and
//! nodes (error messages, response bodies) is scrubbed the same way before anyone sees it:
//! a module, a log line, `/healthz`, a metric or a config error.

/// What stands in for the hidden part of a URL.
pub const HIDDEN: &str = "…";

/// Fragments shorter than this are not treated as secrets on their own (`v3`, `rpc`):
/// replacing them everywhere would mangle messages without protecting anything.
const MIN_SECRET_LEN: usize = 6;

/// `text` as a URL shown without credentials: `https://host:port/…` (or `https://host` when
/// nothing follows the authority). Text that is not a URL is hidden whole.
pub fn url(text: &str) -> String {
    match url::Url::parse(text) {
        Ok(url) => redact_parsed(&url),
        Err(_) => HIDDEN.to_string(),
    }
}

fn redact_parsed(url: &url::Url) -> String {
    let Some(host) = url.host_str() else {
        return format!("{}:{HIDDEN}", url.scheme());
    };
    let authority = match url.port() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    };
    let has_more = !matches!(url.path(), "" | "/")
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some();
    if has_more {
        format!("{authority}/{HIDDEN}")
    } else {
        authority
    }
}

/// The secrets of a set of configured URLs, to scrub from free text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Secrets {
    /// Longest first, so a fragment inside a longer one does not leave a piece behind.
    fragments: Vec<String>,
}

impl Secrets {
    /// Learns the secret parts of `text` (a URL from the config): its user info, its path
    /// and query as a whole, and each path segment and query value long enough to be a key.
    pub fn add_url(&mut self, text: &str) {
        let Ok(url) = url::Url::parse(text) else {
            self.add(text);
            return;
        };
        self.add(text);
        self.add(url.username());
        if let Some(password) = url.password() {
            self.add(password);
        }
        self.add(url.path().trim_matches('/'));
        if let Some(query) = url.query() {
            self.add(query);
            // Both as written (`%2B`, `+`) and decoded: an error may echo either.
            for pair in query.split('&') {
                self.add(pair);
                if let Some((_, value)) = pair.split_once('=') {
                    self.add(value);
                }
            }
            for (_, value) in url.query_pairs() {
                self.add(&value);
            }
        }
        for segment in url.path().split('/') {
            self.add(segment);
        }
    }

    /// Learns `value` (say, a value substituted from the environment) as a secret.
    pub fn add(&mut self, value: &str) {
        if value.chars().count() < MIN_SECRET_LEN || self.fragments.iter().any(|f| f == value) {
            return;
        }
        self.fragments.push(value.to_string());
        self.fragments.sort_by_key(|f| std::cmp::Reverse(f.len()));
    }

    /// Whether nothing was learned.
    pub fn is_empty(&self) -> bool {
        self.fragments.is_empty()
    }

    /// `text` with every URL redacted and every known secret replaced by [`HIDDEN`].
    pub fn scrub(&self, text: &str) -> String {
        let mut out = scrub_urls(text);
        for fragment in &self.fragments {
            if out.contains(fragment.as_str()) {
                out = out.replace(fragment.as_str(), HIDDEN);
            }
        }
        out
    }
}

/// `text` with every `scheme://…` URL in it shown by [`url()`]'s rule.
pub fn scrub_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        // The scheme: the letters, digits, `+`, `-` and `.` right before `://`.
        let scheme_start = rest[..at]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
            .map_or(0, |i| i + 1);
        let end = rest[at..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '<' | '>' | ')'))
            .map_or(rest.len(), |i| at + i);
        // Punctuation right after a URL ends the sentence, not the URL.
        let end = scheme_start
            + rest[scheme_start..end]
                .trim_end_matches(['.', ',', ';', ':', '!', '?'])
                .len();
        let end = end.max(at + 3);
        out.push_str(&rest[..scheme_start]);
        let candidate = &rest[scheme_start..end];
        if scheme_start == at {
            // `://` with no scheme before it: not a URL, but what follows may still be secret.
            out.push_str("://");
            out.push_str(HIDDEN);
        } else {
            out.push_str(&url(candidate));
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_scheme_host_and_port_only() {
        assert_eq!(
            url("https://mainnet.infura.io/v3/0123456789abcdef"),
            "https://mainnet.infura.io/…"
        );
        assert_eq!(url("wss://node.example:8546"), "wss://node.example:8546");
        assert_eq!(url("http://127.0.0.1:8545/"), "http://127.0.0.1:8545");
        assert_eq!(
            url("http://127.0.0.1:8545/?apikey=SECRET"),
            "http://127.0.0.1:8545/…"
        );
        assert_eq!(
            url("https://user:pw@node.example/"),
            "https://node.example/…"
        );
        assert_eq!(url("not a url with a key"), HIDDEN);
    }

    #[test]
    fn free_text_loses_every_url_and_every_learned_secret() {
        let mut secrets = Secrets::default();
        secrets.add_url("https://eth.example/v2/KEY-0123456789?token=TOKEN-abcdef");
        let text = "error sending request for url (https://eth.example/v2/KEY-0123456789?token=TOKEN-abcdef): \
                    connection refused; the provider said: invalid key KEY-0123456789 or TOKEN-abcdef";
        let scrubbed = secrets.scrub(text);
        assert!(!scrubbed.contains("KEY-0123456789"), "{scrubbed}");
        assert!(!scrubbed.contains("TOKEN-abcdef"), "{scrubbed}");
        assert!(
            scrubbed.contains("(https://eth.example/…)"),
            "the host stays for the operator: {scrubbed}"
        );
        // Short path segments are not secrets and are left alone in prose.
        assert!(secrets.scrub("v2 of the api").contains("v2"));
    }

    #[test]
    fn text_without_urls_is_unchanged() {
        assert_eq!(scrub_urls("no url here: a:b"), "no url here: a:b");
        assert_eq!(scrub_urls("odd ://x"), "odd ://…");
        assert_eq!(
            scrub_urls("a ws://h:1/p and http://h/q?x=1"),
            "a ws://h:1/… and http://h/…"
        );
        assert_eq!(
            scrub_urls("in gopher://x: expected; see https://h/k."),
            "in gopher://x: expected; see https://h/…."
        );
    }
}
