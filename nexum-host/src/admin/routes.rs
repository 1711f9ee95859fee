//! The admin API's requests and answers; see the module docs of `admin` for the table.

use crate::http_endpoint::{Body, reply, stream};
use crate::runtime::{Parts, RuntimeError};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use nexum_core::ModuleName;
use nexum_core::host_rules::store::{CURSOR_MAX_BYTES, PAGE_MAX_BYTES, PAGE_MAX_ENTRIES};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;

/// A JSON answer.
fn json<T: Serialize>(status: StatusCode, body: &T) -> Response<Body> {
    let text = serde_json::to_vec(body).expect("admin answers serialise");
    reply(status, "application/json", text)
}

/// A JSON error: `{"error": "…"}`.
fn error(status: StatusCode, message: impl std::fmt::Display) -> Response<Body> {
    json(status, &serde_json::json!({ "error": message.to_string() }))
}

fn runtime_error(e: RuntimeError) -> Response<Body> {
    match e {
        RuntimeError::UnknownModule(_) => error(StatusCode::NOT_FOUND, e),
        RuntimeError::ShuttingDown => error(StatusCode::SERVICE_UNAVAILABLE, e),
        other => error(StatusCode::INTERNAL_SERVER_ERROR, other),
    }
}

/// Whether the request carries the token (compared in constant time).
fn authorised(request: &Request<Incoming>, token: Option<&str>) -> bool {
    let Some(token) = token else {
        return true;
    };
    let Some(given) = request
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    let (given, token) = (given.as_bytes(), token.as_bytes());
    given.len() == token.len()
        && given
            .iter()
            .zip(token)
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}

/// Whether the request could come from a web page: browsers send `Origin` with
/// cross-site requests, and a page that rebinds its own DNS name to loopback sends its name
/// as `Host`. Without a token, only loopback is protected, so neither may pass.
fn from_a_browser(request: &Request<Incoming>, token: Option<&str>) -> bool {
    if request.headers().contains_key(hyper::header::ORIGIN) {
        return true;
    }
    if token.is_some() {
        return false;
    }
    let host = request
        .headers()
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    !(name == "localhost" || name.parse::<std::net::IpAddr>().is_ok())
}

/// Answers one request.
pub(super) async fn answer(
    request: Request<Incoming>,
    parts: &Arc<Parts>,
    token: Option<&str>,
) -> Response<Body> {
    if from_a_browser(&request, token) {
        return error(
            StatusCode::FORBIDDEN,
            "requests from web pages are refused (Origin header, or a Host that is not an address)",
        );
    }
    if !authorised(&request, token) {
        return error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong token (send Authorization: Bearer <token>)",
        );
    }
    let query: HashMap<String, String> = request
        .uri()
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let path: Vec<&str> = request.uri().path().trim_matches('/').split('/').collect();
    let method = request.method().clone();
    match (method, path.as_slice()) {
        (Method::GET, ["v1", "status"]) => match parts.status() {
            Ok(status) => json(StatusCode::OK, &status),
            Err(e) => runtime_error(e),
        },
        (Method::GET, ["v1", "dead-letters"]) => {
            let module = query.get("module").map(String::as_str);
            if let Some(module) = module
                && let Err(e) = parts.loaded(module)
            {
                return runtime_error(e);
            }
            dead_letters(parts, module, query.get("after").map(String::as_str))
        }
        (Method::GET, ["v1", "backup"]) => backup(parts),
        (Method::GET, ["v1", "modules", module, "keys"]) => keys(parts, module, &query),
        (Method::GET, ["v1", "modules", module, "value"]) => value(parts, module, &query),
        (Method::POST, ["v1", "modules", module, "replay"]) => {
            match parts.clone().replay_to_the_end(module).await {
                Ok(report) => json(StatusCode::OK, &report),
                Err(e) => runtime_error(e),
            }
        }
        (Method::POST, ["v1", "modules", module, "restart"]) => {
            match parts.clone().restart_module_to_the_end(module).await {
                Ok(()) => json(StatusCode::OK, &serde_json::json!({ "restarted": module })),
                Err(e) => runtime_error(e),
            }
        }
        (Method::POST, ["v1", "reload"]) => {
            match parts.clone().reload_config_file_to_the_end().await {
                Ok(report) => json(StatusCode::OK, &report),
                Err(e) => error(StatusCode::CONFLICT, e),
            }
        }
        (_, ["v1", "status" | "dead-letters" | "backup"])
        | (_, ["v1", "modules", _, "keys" | "value"]) => {
            error(StatusCode::METHOD_NOT_ALLOWED, "GET only")
        }
        (_, ["v1", "reload"]) | (_, ["v1", "modules", _, "replay" | "restart"]) => {
            error(StatusCode::METHOD_NOT_ALLOWED, "POST only")
        }
        _ => error(
            StatusCode::NOT_FOUND,
            "unknown path; see the admin API table in the README",
        ),
    }
}

/// Chunks of a backup on their way to the client: a slow client holds the snapshot
/// reader back instead of letting the backup pile up in memory.
const BACKUP_CHUNKS_IN_FLIGHT: usize = 16;
const BACKUP_CHUNK_BYTES: usize = 64 * 1024;

/// Streams a backup of the whole state, read at one instant while the engine runs. A
/// failure half-way breaks the connection off, and the backup lacks its trailer, which
/// every reader of backups refuses.
fn backup(parts: &Arc<Parts>) -> Response<Body> {
    if parts.shares_store() {
        return error(StatusCode::CONFLICT, crate::BackupError::Shared);
    }
    let (sender, chunks) = tokio::sync::mpsc::channel(BACKUP_CHUNKS_IN_FLIGHT);
    let parts = parts.clone();
    tokio::task::spawn_blocking(move || {
        let out =
            std::io::BufWriter::with_capacity(BACKUP_CHUNK_BYTES, ChunkSender(sender.clone()));
        match parts.backup(out) {
            Ok(summary) => tracing::info!(%summary, "admin: backup sent"),
            Err(e) => {
                tracing::warn!(error = %e, "admin: backup not completed");
                let _ = sender.blocking_send(Err(std::io::Error::other(e.to_string())));
            }
        }
    });
    stream("application/octet-stream", chunks)
}

/// Hands what is written to it to the response, chunk by chunk.
struct ChunkSender(tokio::sync::mpsc::Sender<std::io::Result<Bytes>>);

impl std::io::Write for ChunkSender {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")
            })?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A page of dead letters after the cursor `after` ([`crate::Ledger::dead_letter_page`]).
fn dead_letters(parts: &Parts, module: Option<&str>, after: Option<&str>) -> Response<Body> {
    if after.map_or(0, str::len) > CURSOR_MAX_BYTES {
        return error(
            StatusCode::BAD_REQUEST,
            format!("after may hold at most {CURSOR_MAX_BYTES} bytes"),
        );
    }
    match parts.ledger().dead_letter_page(module, after) {
        Ok(page) => json(StatusCode::OK, &page),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

/// One page of keys.
#[derive(Serialize)]
struct KeysPage {
    /// Keys with their value sizes, in key order.
    keys: Vec<KeySize>,
    /// Pass as `after` for the next page; absent on the last page.
    next: Option<String>,
}

#[derive(Serialize)]
struct KeySize {
    key: String,
    bytes: usize,
}

fn keys(parts: &Parts, module: &str, query: &HashMap<String, String>) -> Response<Body> {
    let name = match parts.loaded(module) {
        Ok(name) => name,
        Err(e) => return runtime_error(e),
    };
    let prefix = query.get("prefix").map(String::as_str).unwrap_or("");
    let after = query.get("after").map(String::as_str);
    if prefix.len() + after.map_or(0, str::len) > CURSOR_MAX_BYTES {
        return error(
            StatusCode::BAD_REQUEST,
            format!("prefix and after may hold at most {CURSOR_MAX_BYTES} bytes"),
        );
    }
    let wanted = PAGE_MAX_ENTRIES as usize;
    match parts
        .ledger()
        .module_entries_after(&name, prefix, after, wanted + 1, PAGE_MAX_BYTES)
    {
        Ok(mut entries) => {
            let bytes: u64 = entries
                .iter()
                .map(|(k, v)| (k.len() + v.len()) as u64)
                .sum();
            let more = entries.len() > wanted || bytes >= PAGE_MAX_BYTES;
            entries.truncate(wanted);
            let next = more
                .then(|| entries.last().map(|(k, _)| k.clone()))
                .flatten();
            let keys = entries
                .into_iter()
                .map(|(key, value)| KeySize {
                    key,
                    bytes: value.len(),
                })
                .collect();
            json(StatusCode::OK, &KeysPage { keys, next })
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

fn value(parts: &Parts, module: &str, query: &HashMap<String, String>) -> Response<Body> {
    let name: ModuleName = match parts.loaded(module) {
        Ok(name) => name,
        Err(e) => return runtime_error(e),
    };
    let Some(key) = query.get("key") else {
        return error(StatusCode::BAD_REQUEST, "missing ?key=");
    };
    match parts.ledger().read(&name, key) {
        Ok(Some(value)) => {
            let body = match String::from_utf8(value) {
                Ok(text) => serde_json::json!({ "key": key, "text": text }),
                Err(e) => serde_json::json!({ "key": key, "hex": hex::encode(e.as_bytes()) }),
            };
            json(StatusCode::OK, &body)
        }
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            format!("module `{module}` has no key {key:?}"),
        ),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}
