//! The orderbooks: one per configured chain (the crate's production deployment, or the
//! engine's `orderbook_url`), generic requests, and order submission — validated as an
//! `OrderCreation` first, or only logged in a dry run.
//!
//! A module's path is hostile: the request goes out only if the URL it *resolves* to keeps
//! the orderbook's scheme, host, port and path prefix. Redirects are not followed, and in a
//! dry run nothing but `GET` leaves the host (the transport refuses it).

use super::transport::CallTransport;
use cowprotocol::chain::Chain;
use cowprotocol::contracts::GPV2_SETTLEMENT;
use cowprotocol::domain::settlement_domain;
use cowprotocol::error::{ApiError, Error};
use cowprotocol::order_book::{OrderBookApi, OrderCreation};
use cowprotocol::transport::{HttpMethod, HttpRequest, HttpTransport};
use nexum_core::bounded;
use nexum_core::host_rules::orderbook::{self as rules, Method};
use nexum_core::redact::Secrets;
use nexum_core::{ChainId, EngineConfig, Limits};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

/// Why a `cow-api` call did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CowFailure {
    /// No orderbook for that chain.
    Unsupported(String),
    /// The method or path is not allowed.
    Denied(String),
    /// The request or the order is malformed.
    InvalidInput(String),
    /// 429, with the server's `Retry-After` when it sent one.
    RateLimited(Option<Duration>),
    /// No answer within the deadline.
    Timeout,
    /// The orderbook could not be reached.
    Unavailable(String),
    /// The orderbook's own error document.
    Rejected {
        status: u16,
        error_type: String,
        description: String,
        data: Option<String>,
    },
    /// Any other non-2xx answer.
    Http { status: u16, body: Option<String> },
}

/// Where one chain's orderbook is, and whether orders are only logged.
#[derive(Debug, Clone)]
struct Orderbook {
    base_url: url::Url,
    chain: Option<Chain>,
    dry_run: bool,
    timeout: Duration,
}

/// The orderbooks of the configured chains, for the whole engine.
pub(crate) struct Orderbooks {
    client: reqwest::Client,
    configured: BTreeMap<ChainId, Orderbook>,
    /// The secret parts of `orderbook_url`s, scrubbed from every error.
    secrets: Secrets,
}

impl Orderbooks {
    /// One orderbook per `[chains.<id>]`: its `orderbook_url`, else the crate's deployment
    /// for that chain. Chains outside the config have none.
    pub fn configure(config: &EngineConfig) -> Self {
        let mut secrets = Secrets::default();
        let mut configured = BTreeMap::new();
        for (&chain_id, chain) in &config.chains {
            let known = Chain::try_from(chain_id).ok();
            let base_url = match &chain.orderbook_url {
                Some(url) => {
                    secrets.add_url(url);
                    url.parse().ok()
                }
                None => known.map(Chain::orderbook_base_url),
            };
            if let Some(base_url) = base_url {
                configured.insert(
                    chain_id,
                    Orderbook {
                        base_url: with_trailing_slash(base_url),
                        chain: known,
                        dry_run: config.is_dry_run(chain_id),
                        timeout: Duration::from_millis(chain.request_timeout_ms),
                    },
                );
            }
        }
        Self {
            client: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                // A redirect would be a request to a URL nobody checked.
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("a reqwest client with default TLS builds"),
            configured,
            secrets,
        }
    }

    fn orderbook(&self, chain_id: ChainId) -> Result<&Orderbook, CowFailure> {
        self.configured.get(&chain_id).ok_or_else(|| {
            CowFailure::Unsupported(format!(
                "chain {chain_id} has no CoW Protocol orderbook; set [chains.{chain_id}] orderbook_url in engine.toml"
            ))
        })
    }
}

/// Whether `url` stays under `base`: same scheme, host and port, no user info, and a path
/// inside the base path. Checked on the resolved URL, after `..`, `%2e` and friends.
fn stays_under(url: &url::Url, base: &url::Url) -> bool {
    url.scheme() == base.scheme()
        && url.host() == base.host()
        && url.port_or_known_default() == base.port_or_known_default()
        && url.username() == base.username()
        && url.password() == base.password()
        && url.path().starts_with(base.path())
}

fn with_trailing_slash(mut url: url::Url) -> url::Url {
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url
}

/// One module's access to the orderbooks.
#[derive(Clone)]
pub(crate) struct CowAccess {
    orderbooks: Arc<Orderbooks>,
    module: Arc<str>,
    /// The chains the module declared; no other chain's orderbook is served.
    declared: Arc<BTreeSet<ChainId>>,
    /// Largest path, body or order the module may send.
    max_request: usize,
    /// Largest answer handed back to the module.
    max_answer: usize,
}

impl CowAccess {
    pub fn new(
        orderbooks: Arc<Orderbooks>,
        module: &str,
        declared: BTreeSet<ChainId>,
        limits: &Limits,
    ) -> Self {
        Self {
            orderbooks,
            module: module.into(),
            declared: Arc::new(declared),
            max_request: usize::try_from(limits.request_bytes).unwrap_or(usize::MAX),
            max_answer: usize::try_from(limits.answer_bytes).unwrap_or(usize::MAX),
        }
    }

    /// The orderbook of `chain_id`, if the module declared that chain.
    fn orderbook(&self, chain_id: ChainId) -> Result<&Orderbook, CowFailure> {
        if !self.declared.contains(&chain_id) {
            return Err(CowFailure::Unsupported(
                nexum_core::host_rules::undeclared_chain(chain_id),
            ));
        }
        self.orderbooks.orderbook(chain_id)
    }

    fn check_size(&self, what: &str, len: usize) -> Result<(), CowFailure> {
        if len > self.max_request {
            return Err(CowFailure::InvalidInput(format!(
                "the {what} is {len} bytes; the limit is {}",
                self.max_request
            )));
        }
        Ok(())
    }

    fn transport(&self, orderbook: &Orderbook) -> CallTransport {
        CallTransport::new(
            self.orderbooks.client.clone(),
            orderbook.dry_run,
            self.max_answer,
        )
    }

    /// A call to a relative API path; the body on 2xx.
    pub async fn request(
        &self,
        chain_id: ChainId,
        method: &str,
        path: &str,
        body: Option<String>,
    ) -> Result<String, CowFailure> {
        let orderbook = self.orderbook(chain_id)?;
        let method = wire_method(rules::method(method).map_err(CowFailure::Denied)?);
        self.check_size("path", path.len())?;
        let path = rules::relative(path).map_err(CowFailure::Denied)?;
        let url = orderbook.base_url.join(path).map_err(|e| {
            CowFailure::InvalidInput(format!("path {:?}: {e}", bounded::cut(path, 256)))
        })?;
        if !stays_under(&url, &orderbook.base_url) {
            return Err(CowFailure::Denied(format!(
                "path {:?} resolves outside the orderbook's API",
                bounded::cut(path, 256)
            )));
        }
        if let Some(body) = &body {
            self.check_size("body", body.len())?;
        }
        let json_body = match body {
            Some(body) => {
                serde_json::from_str::<serde_json::Value>(&body)
                    .map_err(|e| CowFailure::InvalidInput(format!("the body is not JSON: {e}")))?;
                Some(body.into_bytes())
            }
            None => None,
        };
        let transport = self.transport(orderbook);
        let request = HttpRequest {
            method,
            url,
            json_body,
            bearer: None,
        };
        let response = tokio::time::timeout(orderbook.timeout, transport.execute(request))
            .await
            .map_err(|_| CowFailure::Timeout)?
            .map_err(|e| self.transport_failure(&transport, &e))?;
        if (200..300).contains(&response.status) {
            return Ok(response.body);
        }
        Err(status_failure(
            response.status,
            response.body,
            transport.retry_after(),
        ))
    }

    /// Validates `order` as an `OrderCreation` and posts it (or, in a dry run, logs it).
    /// Returns the order UID.
    pub async fn submit_order(
        &self,
        chain_id: ChainId,
        order: &[u8],
    ) -> Result<String, CowFailure> {
        let orderbook = self.orderbook(chain_id)?;
        self.check_size("order", order.len())?;
        let order = parse_order(order)?;
        if orderbook.dry_run {
            let domain = match orderbook.chain {
                Some(chain) => chain.settlement_domain(),
                None => settlement_domain(chain_id, GPV2_SETTLEMENT),
            };
            let uid = order.order_data().uid(&domain, order.from).to_string();
            // The fields that identify the order, not the whole document: its app data is
            // the module's free text and could be large.
            tracing::info!(
                module = &*self.module,
                chain = chain_id,
                uid,
                sell_token = %order.sell_token,
                buy_token = %order.buy_token,
                sell_amount = %order.sell_amount,
                buy_amount = %order.buy_amount,
                valid_to = order.valid_to,
                "dry run: order validated and not sent"
            );
            return Ok(uid);
        }
        let transport = self.transport(orderbook);
        let mut api =
            OrderBookApi::new_with_transport(orderbook.base_url.clone(), transport.clone());
        if let Some(chain) = orderbook.chain {
            api = api.with_chain_hint(chain);
        }
        match tokio::time::timeout(orderbook.timeout, api.post_order(&order)).await {
            Err(_) => Err(CowFailure::Timeout),
            Ok(Ok(uid)) => {
                tracing::info!(module = &*self.module, chain = chain_id, uid = %uid, "order submitted");
                Ok(uid.to_string())
            }
            Ok(Err(Error::OrderbookApi { status, api })) => {
                Err(rejection(status, api, transport.retry_after()))
            }
            Ok(Err(Error::UnexpectedStatus { status, body })) => {
                Err(status_failure(status, body, transport.retry_after()))
            }
            Ok(Err(e)) => Err(self.transport_failure(&transport, &e)),
        }
    }

    /// A failure before any answer: the dry run's refusal, or the way to the orderbook.
    /// Its text is scrubbed of URLs and the configured secrets.
    fn transport_failure(&self, transport: &CallTransport, error: &Error) -> CowFailure {
        if let Some(method) = transport.refused_in_dry_run() {
            return CowFailure::Denied(rules::dry_run_refusal(method));
        }
        match transport_failure(error) {
            CowFailure::Unavailable(m) => {
                CowFailure::Unavailable(self.orderbooks.secrets.scrub(&m))
            }
            other => other,
        }
    }
}

/// cowprotocol's name for `method`.
fn wire_method(method: Method) -> HttpMethod {
    match method {
        Method::Get => HttpMethod::Get,
        Method::Post => HttpMethod::Post,
        Method::Put => HttpMethod::Put,
        Method::Delete => HttpMethod::Delete,
    }
}

/// Parses `bytes` as an `OrderCreation` by the shared rule.
fn parse_order(bytes: &[u8]) -> Result<OrderCreation, CowFailure> {
    rules::parse_order(bytes).map_err(CowFailure::InvalidInput)
}

fn rejection(status: u16, api: ApiError, retry_after: Option<Duration>) -> CowFailure {
    if status == 429 {
        return CowFailure::RateLimited(retry_after);
    }
    CowFailure::Rejected {
        status,
        error_type: api.error_type,
        description: api.description,
        data: api.data.map(|d| d.to_string()),
    }
}

/// A non-2xx answer: the orderbook's error document when it is one.
fn status_failure(status: u16, body: String, retry_after: Option<Duration>) -> CowFailure {
    if status == 429 {
        return CowFailure::RateLimited(retry_after);
    }
    match serde_json::from_str::<ApiError>(&body) {
        Ok(api) => rejection(status, api, retry_after),
        Err(_) => CowFailure::Http {
            status,
            body: (!body.is_empty()).then_some(body),
        },
    }
}

fn transport_failure(error: &Error) -> CowFailure {
    match error {
        Error::Transport(e) if e.is_timeout() => CowFailure::Timeout,
        Error::Transport(e) => CowFailure::Unavailable(format!("orderbook unreachable: {e}")),
        Error::TransportFailed(m) => CowFailure::Unavailable(m.clone()),
        Error::ResponseTooLarge { max } => {
            CowFailure::Unavailable(format!("the orderbook's answer exceeded {max} bytes"))
        }
        Error::Serde(e) => CowFailure::Unavailable(format!("malformed orderbook answer: {e}")),
        Error::OrderCreationInvalid { field, reason } => {
            CowFailure::InvalidInput(format!("invalid OrderCreation: {field} {reason}"))
        }
        Error::VerifyOwner(e) => CowFailure::InvalidInput(format!("invalid OrderCreation: {e}")),
        Error::Signature(e) => CowFailure::InvalidInput(format!("invalid OrderCreation: {e}")),
        other => CowFailure::Unavailable(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_documents_become_rejections_and_others_http_failures() {
        let doc =
            r#"{"errorType":"InsufficientAllowance","description":"no allowance","data":{"x":1}}"#;
        assert_eq!(
            status_failure(400, doc.into(), None),
            CowFailure::Rejected {
                status: 400,
                error_type: "InsufficientAllowance".into(),
                description: "no allowance".into(),
                data: Some(r#"{"x":1}"#.into()),
            }
        );
        assert_eq!(
            status_failure(502, "bad gateway".into(), None),
            CowFailure::Http {
                status: 502,
                body: Some("bad gateway".into())
            }
        );
        assert_eq!(
            status_failure(429, doc.into(), Some(Duration::from_secs(3))),
            CowFailure::RateLimited(Some(Duration::from_secs(3)))
        );
    }

    #[test]
    fn only_urls_under_the_orderbook_base_pass() {
        let base: url::Url = "https://user:pw@api.example:8443/mainnet/".parse().unwrap();
        let under = |path: &str| stays_under(&base.join(path).unwrap(), &base);
        assert!(under("api/v1/orders"));
        assert!(under("api/v1/orders?owner=0x1"));
        // Same scheme as the base: a relative path, so it stays.
        assert!(under("https:evil.example/api"));
        for escape in [
            "http:evil.example/api",
            "//evil.example/mainnet/api",
            "/other/api",
            "../api",
            "api/%2e%2e/%2e%2e/x",
            "https://api.example:8443/mainnet/api",
            "https://api.example/mainnet/api",
        ] {
            assert!(!under(escape), "{escape} escaped the check");
        }
    }

    #[test]
    fn malformed_orders_name_the_field() {
        let CowFailure::InvalidInput(message) =
            parse_order(br#"{"sellToken":"0x12"}"#).unwrap_err()
        else {
            panic!()
        };
        assert!(message.contains("at `sellToken`"), "{message}");
        let CowFailure::InvalidInput(message) = parse_order(b"not json").unwrap_err() else {
            panic!()
        };
        assert!(
            message.starts_with("not a valid OrderCreation"),
            "{message}"
        );
    }
}
