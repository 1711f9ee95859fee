//! What a module may ask of the orderbook (`cow-api.request`): four methods, relative API
//! paths only. The host checks the URL a path resolves to as well; this is the first,
//! friendlier line.

use crate::bounded::cut;
use std::fmt;

/// The methods a module may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`: the only one sent in a dry run.
    Get,
    /// `POST`.
    Post,
    /// `PUT`.
    Put,
    /// `DELETE`.
    Delete,
}

impl Method {
    /// Whether requests of this method change state (all but `GET`).
    pub fn changes_state(self) -> bool {
        self != Method::Get
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        })
    }
}

/// Why a state-changing request is refused in a dry run.
pub fn dry_run_refusal(method: Method) -> String {
    format!("dry run: {method} requests change state and are not sent")
}

/// Parses `bytes` (what a module hands `submit-order`) as an `OrderCreation`, naming the
/// field at fault.
pub fn parse_order(bytes: &[u8]) -> Result<cowprotocol::order_book::OrderCreation, String> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            String::new()
        } else {
            format!(" at `{path}`")
        };
        format!("not a valid OrderCreation{field}: {}", e.inner())
    })
}

/// The method named `method` (case-insensitive), if modules may use it.
pub fn method(method: &str) -> Result<Method, String> {
    match method.to_ascii_uppercase().as_str() {
        "GET" => Ok(Method::Get),
        "POST" => Ok(Method::Post),
        "PUT" => Ok(Method::Put),
        "DELETE" => Ok(Method::Delete),
        _ => Err(format!(
            "method `{}` is not allowed: use GET, POST, PUT or DELETE",
            cut(method, 16)
        )),
    }
}

/// Checks that `path` is a relative API path (like `api/v1/orders/0x…?x=1`) and returns it
/// without a leading slash: no scheme, host, `..`, backslash, fragment or control character.
pub fn relative(path: &str) -> Result<&str, String> {
    let refuse = |why: &str| Err(format!("path {:?} is not allowed: {why}", cut(path, 256)));
    if path.chars().any(|c| c.is_control()) {
        return refuse("it contains control characters");
    }
    if path.contains("://") || path.starts_with("//") {
        return refuse("only relative API paths are served, without scheme or host");
    }
    if path.contains('\\') || path.contains('#') || path.contains('@') {
        return refuse("it contains `\\`, `#` or `@`");
    }
    let trimmed = path.trim_start_matches('/');
    let route = trimmed.split('?').next().unwrap_or_default();
    if route
        .split('/')
        .any(|segment| segment == ".." || segment == ".")
    {
        return refuse("`.` and `..` segments are not allowed");
    }
    if route.contains("%2e")
        || route.contains("%2E")
        || route.contains("%2f")
        || route.contains("%2F")
    {
        return refuse("encoded dots and slashes are not allowed");
    }
    if route.is_empty() {
        return refuse("it is empty");
    }
    // What remains must look like the orderbook's own routes: no percent-encoding, no
    // characters a proxy in front of the orderbook might read differently.
    if let Some(c) = route
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.' | '~')))
    {
        return refuse(&format!(
            "its route contains {c:?}, which API routes do not use"
        ));
    }
    let query = trimmed.split_once('?').map_or("", |(_, q)| q);
    if let Some(c) = query.chars().find(|c| {
        !(c.is_ascii_alphanumeric()
            || matches!(c, '-' | '_' | '.' | '~' | '=' | '&' | ',' | '%' | '+' | ':'))
    }) {
        return refuse(&format!("its query contains {c:?}"));
    }
    Ok(trimmed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_pass() {
        assert_eq!(relative("api/v1/orders").unwrap(), "api/v1/orders");
        assert_eq!(
            relative("/api/v1/orders/0xab?x=1").unwrap(),
            "api/v1/orders/0xab?x=1"
        );
    }

    #[test]
    fn everything_that_leaves_the_api_is_refused() {
        for bad in [
            "https://evil.example/api",
            "//evil.example/api",
            "api/../../admin",
            "api/./v1",
            "api/v1/%2e%2e/x",
            "api\\v1",
            "api/v1#frag",
            "user@evil.example/api",
            "api/v1/\n",
            "api/v1/%5c..",
            "api/v1/%252e%252e/x",
            "api/v1/..;/x",
            "api/v1/orders/é",
            "api/v1/x?a=<script>",
            "",
            "/",
        ] {
            assert!(relative(bad).is_err(), "{bad:?} passed");
        }
    }

    #[test]
    fn only_four_methods() {
        assert_eq!(method("get").unwrap(), Method::Get);
        assert_eq!(method("DELETE").unwrap(), Method::Delete);
        assert!(method("PATCH").unwrap_err().contains("not allowed"));
        assert!(method("CONNECT").is_err());
    }
}
