//! The key layout of the engine's records, here and nowhere else.
//!
//! A subscription's records are keyed by its position key
//! ([`Subscription::position_key`](nexum_core::Subscription::position_key)): what it reads,
//! not its place in the manifest. Stores written before that used the manifest index
//! (`cursor/<module>/0000`); they are adopted once per module.

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

/// Every cursor of a module (older stores named them by manifest index).
pub(crate) fn cursors_of(module: &str) -> String {
    format!("cursor/{module}/")
}

/// Every delivery record of a module.
pub(crate) fn delivered_of(module: &str) -> String {
    format!("delivered/{module}/")
}

/// Marks that a module's index-keyed records were adopted.
pub(crate) fn adopted(module: &str) -> String {
    format!("adopted/{module}")
}

/// The token of a module's last commit on a shared store: each commit names the one it
/// follows, so a commit whose answer was lost can be told apart from one that never ran.
pub(crate) fn last_commit(module: &str) -> String {
    format!("commit/{module}")
}
