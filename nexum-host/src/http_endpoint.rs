//! The one way nexum serves HTTP (`/metrics`, `/healthz`, the admin API).
//!
//! An endpoint may be reachable by more than its intended client, so it holds out against
//! slow or many clients: headers must arrive within [`HEADER_TIMEOUT`], a connection serves
//! one request and lives at most as long as its endpoint allows ([`CONNECTION_TIMEOUT`] for
//! `/metrics`; longer for the admin API, whose backups stream), at most [`MAX_CONNECTIONS`] are
//! served at once (more are answered `503` at once rather than left waiting), and a failing
//! `accept` (out of file descriptors) backs off instead of spinning.

use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

/// How long a client may take to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one connection may stay open (a reload of large modules fits in it).
pub(crate) const CONNECTION_TIMEOUT: Duration = Duration::from_secs(120);
/// Connections served at once; more wait in the listen backlog.
const MAX_CONNECTIONS: usize = 32;
/// What a client gets when every slot is taken.
const BUSY_RESPONSE: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 5\r\nconnection: close\r\n\r\nbusy\n";
/// Longest pause after a failed `accept`.
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// Why an endpoint could not start.
#[derive(Debug, thiserror::Error)]
#[error("{endpoint} endpoint on {addr}: {error}")]
pub struct ServeError {
    endpoint: &'static str,
    addr: SocketAddr,
    error: std::io::Error,
}

/// Listens on `addr` for the endpoint `name`; returns the bound address (port 0 picks one).
pub(crate) async fn bind(
    endpoint: &'static str,
    addr: SocketAddr,
) -> Result<(TcpListener, SocketAddr), ServeError> {
    let failed = |error| ServeError {
        endpoint,
        addr,
        error,
    };
    let listener = TcpListener::bind(addr).await.map_err(failed)?;
    let bound = listener.local_addr().map_err(failed)?;
    Ok((listener, bound))
}

/// The body of every answer: whole, or streamed as it is produced (a backup).
pub(crate) type Body = BoxBody<Bytes, std::io::Error>;

/// A response with `body`.
pub(crate) fn reply(
    status: StatusCode,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(
            Full::new(body.into())
                .map_err(|never| match never {})
                .boxed(),
        )
        .expect("a static response builds")
}

/// A `200` response whose body is the chunks `chunks` yields, sent as they come; it ends
/// when the sender is dropped, and breaks off at an `Err` (the connection closes without
/// the body's end, so no client takes a cut answer for a whole one). A client that goes
/// away closes the receiver, so the producer learns to stop.
pub(crate) fn stream(
    content_type: &str,
    chunks: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
) -> Response<Body> {
    let frames = futures::stream::unfold(chunks, |mut chunks| async move {
        let chunk = chunks.recv().await?;
        Some((chunk.map(Frame::data), chunks))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", content_type)
        .body(StreamBody::new(frames).boxed())
        .expect("a static response builds")
}

/// Serves `listener` with `answer` until `stop`; `name` labels log lines; a connection
/// lives at most `connection_timeout`.
pub(crate) fn spawn<A, F>(
    listener: TcpListener,
    name: &'static str,
    connection_timeout: Duration,
    mut stop: watch::Receiver<bool>,
    answer: A,
) -> JoinHandle<()>
where
    A: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(10);
        loop {
            let accepted = tokio::select! {
                _ = stop.wait_for(|s| *s) => break,
                accepted = listener.accept() => accepted,
            };
            let mut stream = match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(endpoint = name, error = %e, retry_in_ms = backoff.as_millis() as u64, "accept failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_ACCEPT_BACKOFF);
                    continue;
                }
            };
            backoff = Duration::from_millis(10);
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                // Full: say so and close, so a client learns at once instead of waiting.
                let _ = tokio::time::timeout(
                    Duration::from_millis(100),
                    stream.write_all(BUSY_RESPONSE),
                )
                .await;
                continue;
            };
            let answer = answer.clone();
            tokio::spawn(async move {
                let _slot = slot;
                let service = service_fn(move |request| {
                    let response = answer(request);
                    async move { Ok::<_, Infallible>(response.await) }
                });
                let connection = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .keep_alive(false)
                    .header_read_timeout(HEADER_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service);
                let _ = tokio::time::timeout(connection_timeout, connection).await;
            });
        }
    })
}
