//! What a module may ask of the orderbook: four methods, relative API paths only.

use cowprotocol::transport::HttpMethod;

/// The HTTP method named `method` (case-insensitive), if modules may use it.
pub(crate) fn method(method: &str) -> Result<HttpMethod, String> {
    match method.to_ascii_uppercase().as_str() {
        "GET" => Ok(HttpMethod::Get),
        "POST" => Ok(HttpMethod::Post),
        "PUT" => Ok(HttpMethod::Put),
        "DELETE" => Ok(HttpMethod::Delete),
        _ => Err(format!(
            "method `{}` is not allowed: use GET, POST, PUT or DELETE",
            crate::bounded::cut(method, 16)
        )),
    }
}

/// The wire name of `method`.
pub(crate) fn name(method: HttpMethod) -> &'static str {
    match method {
        HttpMethod::Get => "GET",
        HttpMethod::Post => "POST",
        HttpMethod::Put => "PUT",
        HttpMethod::Delete => "DELETE",
    }
}

/// Checks that `path` is a relative API path (like `api/v1/orders/0x…?x=1`) and returns it
/// without a leading slash: no scheme, host, `..`, backslash, fragment or control character.
pub(crate) fn relative(path: &str) -> Result<&str, String> {
    let refuse = |why: &str| {
        Err(format!(
            "path {:?} is not allowed: {why}",
            crate::bounded::cut(path, 256)
        ))
    };
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
            "",
            "/",
        ] {
            assert!(relative(bad).is_err(), "{bad:?} passed");
        }
    }

    #[test]
    fn only_four_methods() {
        assert_eq!(method("get").unwrap(), HttpMethod::Get);
        assert_eq!(method("DELETE").unwrap(), HttpMethod::Delete);
        assert!(method("PATCH").unwrap_err().contains("not allowed"));
        assert!(method("CONNECT").is_err());
    }
}
