//! JSON-RPC over HTTP, with what alloy's own HTTP transport does not give nexum: a cap on the
//! size of an answer (a broken or hostile node cannot exhaust the host's memory), no
//! redirects (a redirect is a request to a URL nobody configured), and errors that never
//! carry the node's URL (hosted nodes put the API key in it).

use alloy_json_rpc::{RequestPacket, ResponsePacket};
use alloy_transport::{TransportError, TransportErrorKind, TransportFut, TransportResult};
use std::task::{Context, Poll};
use std::time::Duration;
use tower::Service;

/// The largest answer read from a node, for any caller; the same bound a websocket message
/// has. A module's own (smaller) `answer_bytes` is checked after.
pub(crate) const MAX_NODE_ANSWER: usize = 64 * 1024 * 1024;

/// An HTTP transport to one node.
#[derive(Clone)]
pub(crate) struct CappedHttp {
    client: reqwest::Client,
    url: url::Url,
    max_answer: usize,
}

impl CappedHttp {
    pub fn new(url: url::Url) -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a reqwest client with default TLS builds");
        Self {
            client,
            url,
            max_answer: MAX_NODE_ANSWER,
        }
    }

    async fn send(self, request: RequestPacket) -> TransportResult<ResponsePacket> {
        let body = serde_json::to_vec(&request).map_err(TransportError::ser_err)?;
        let mut response = self
            .client
            .post(self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(without_url)?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse().ok())
            .map(Duration::from_secs);
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(without_url)? {
            if body.len() + chunk.len() > self.max_answer {
                return Err(TransportErrorKind::custom_str(&format!(
                    "the node's answer exceeds {} bytes",
                    self.max_answer
                )));
            }
            body.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            // Some nodes answer JSON-RPC errors with a non-2xx status.
            if let Ok(answer) = serde_json::from_slice::<ResponsePacket>(&body)
                && answer.is_error()
            {
                return Ok(answer);
            }
            return Err(TransportErrorKind::http_error_with_retry_after(
                status.as_u16(),
                String::from_utf8_lossy(&body).into_owned(),
                retry_after,
            ));
        }
        serde_json::from_slice(&body)
            .map_err(|e| TransportError::deser_err(e, String::from_utf8_lossy(&body)))
    }
}

fn without_url(error: reqwest::Error) -> TransportError {
    TransportErrorKind::custom(error.without_url())
}

impl Service<RequestPacket> for CappedHttp {
    type Response = ResponsePacket;
    type Error = TransportError;
    type Future = TransportFut<'static>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: RequestPacket) -> Self::Future {
        Box::pin(self.clone().send(request))
    }
}
