//! The admin API: a running engine seen and steered by its operator, over HTTP with JSON.
//! Off unless `[admin]` is set; a bearer token is required when one is configured (always,
//! off loopback). Served by `http_endpoint`, with its limits on slow and many clients.
//!
//! | request | answer |
//! |---|---|
//! | `GET /v1/status` | modules (status, counters, each subscription's position and lag), health |
//! | `GET /v1/modules/NAME/keys?prefix=P&after=K` | a page of the module's keys with sizes |
//! | `GET /v1/modules/NAME/value?key=K` | one value (text, or hex when not UTF-8) |
//! | `GET /v1/dead-letters[?module=NAME&after=C]` | a page of skipped events, oldest first |
//! | `GET /v1/backup` | the whole state as one backup file, read at one instant |
//! | `POST /v1/modules/NAME/replay` | hands the module its dead letters again |
//! | `POST /v1/modules/NAME/restart` | a fresh instance (out of quarantine) |
//! | `POST /v1/reload` | re-reads engine.toml and applies it (see `Runtime::reload`) |
//!
//! Everything read is read-only; names and keys from the request are checked like a
//! module's own (a module name must be valid and loaded).

mod routes;
mod status;

use crate::http_endpoint::{self, ServeError};
use crate::runtime::Parts;
use nexum_core::AdminConfig;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use status::{ModuleStatusReport, StatusReport, SubscriptionReport};

/// How long one admin connection may stay open: a backup of a large state streams for as
/// long as the client reads it. Connections are few (loopback, or a token) and each still
/// must send its headers within seconds.
const ADMIN_CONNECTION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3600);

/// Binds `config.addr` and serves the admin API until `stop`; returns the bound address.
pub(crate) async fn serve(
    config: AdminConfig,
    parts: Arc<Parts>,
    stop: watch::Receiver<bool>,
) -> Result<(SocketAddr, JoinHandle<()>), ServeError> {
    let (listener, bound) = http_endpoint::bind("admin", config.addr).await?;
    tracing::info!(addr = %bound, token = config.token.is_some(), "serving the admin API");
    let token: Arc<Option<String>> = Arc::new(config.token);
    let task = http_endpoint::spawn(
        listener,
        "admin",
        ADMIN_CONNECTION_TIMEOUT,
        stop,
        move |request| {
            let parts = parts.clone();
            let token = token.clone();
            async move { routes::answer(request, &parts, token.as_deref()).await }
        },
    );
    Ok((bound, task))
}
