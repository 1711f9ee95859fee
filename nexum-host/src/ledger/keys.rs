//! The key layout of the engine's records, here and nowhere else.
//!
//! A subscription's records are keyed by its position key
//! ([`Subscription::position_key`](nexum_core::Subscription::position_key)): what it reads,
//! not its place in the manifest. Stores written before that used the manifest index; they
//! are adopted once by [`super::Ledger::adopt_legacy_positions`].

use super::records::SubscriptionId;

pub(crate) fn cursor(id: &SubscriptionId) -> String {
    format!("cursor/{}/{}", id.module, id.position)
}

pub(crate) fn start(id: &SubscriptionId) -> String {
    format!("start/{}/{}", id.module, id.position)
}

pub(crate) fn delivered_prefix(id: &SubscriptionId) -> String {
    format!("delivered/{}/{}/", id.module, id.position)
}

pub(crate) fn delivered(id: &SubscriptionId, number: u64) -> String {
    format!("{}{number:020}", delivered_prefix(id))
}

/// The prefix of one module's dead letters, or of all.
pub(crate) fn dead_letters(module: Option<&str>) -> String {
    match module {
        Some(module) => format!("deadletter/{module}/"),
        None => "deadletter/".to_string(),
    }
}

/// One dead letter: ordered by time, then by a sequence within the process.
pub(crate) fn dead_letter(module: &str, at_ms: u64, sequence: u64) -> String {
    format!("{}{at_ms:020}-{sequence:010}", dead_letters(Some(module)))
}

/// Bytes a module has committed (its quota's usage).
pub(crate) fn usage(module: &str) -> String {
    format!("usage/{module}")
}

/// The position name older stores used: the subscription's index in the manifest.
pub(crate) fn legacy_position(index: usize) -> String {
    format!("{index:04}")
}
