//! The key layout of the engine's records, here and nowhere else.
//!
//! A subscription's records are keyed by its position key
//! ([`Subscription::position_key`](nexum_core::Subscription::position_key)): what it reads,
//! not its place in the manifest. Stores written before that used the manifest index
//! (`cursor/<module>/0000`); they are adopted once per module.

use super::records::SubscriptionId;

/// Digits of a record number in a key: zero-padded, so that keys sort as numbers do (20
/// digits hold any `u64`).
const NUMBER_DIGITS: usize = 20;

/// `parts` joined, with room for `more` bytes. A cursor and a delivery record are keyed
/// with every commit of a subscription: built here in one allocation rather than through
/// `format!`, whose zero padding and growing buffer cost more than the key.
fn joined(parts: &[&str], more: usize) -> String {
    let mut key = String::with_capacity(parts.iter().map(|p| p.len()).sum::<usize>() + more);
    for part in parts {
        key.push_str(part);
    }
    key
}

/// Appends `number` zero-padded to [`NUMBER_DIGITS`] digits.
fn push_number(key: &mut String, mut number: u64) {
    let mut digits = [b'0'; NUMBER_DIGITS];
    for digit in digits.iter_mut().rev() {
        *digit = b'0' + (number % 10) as u8;
        number /= 10;
    }
    key.extend(digits.iter().map(|&d| char::from(d)));
}

pub(crate) fn cursor(id: &SubscriptionId) -> String {
    joined(&["cursor/", &id.module, "/", &id.position], 0)
}

pub(crate) fn start(id: &SubscriptionId) -> String {
    format!("start/{}/{}", id.module, id.position)
}

pub(crate) fn delivered_prefix(id: &SubscriptionId) -> String {
    delivered_prefix_with_room(id, 0)
}

/// [`delivered_prefix`], with room for `more` bytes after it.
fn delivered_prefix_with_room(id: &SubscriptionId, more: usize) -> String {
    joined(&["delivered/", &id.module, "/", &id.position, "/"], more)
}

pub(crate) fn delivered(id: &SubscriptionId, number: u64) -> String {
    let mut key = delivered_prefix_with_room(id, NUMBER_DIGITS);
    push_number(&mut key, number);
    key
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The keys built by hand are those `format!` gave (stores written before hold them).
    #[test]
    fn hand_built_keys_match_the_formatted_layout() {
        let id = SubscriptionId {
            module: "keeper".into(),
            position: "logs:1:0xabc".into(),
        };
        assert_eq!(cursor(&id), format!("cursor/{}/{}", id.module, id.position));
        for number in [0, 7, 19_000_000, u64::MAX / 3, u64::MAX] {
            assert_eq!(
                delivered(&id, number),
                format!("delivered/{}/{}/{number:020}", id.module, id.position)
            );
            assert!(delivered(&id, number).starts_with(&delivered_prefix(&id)));
        }
        assert!(
            delivered(&id, 9) < delivered(&id, 10),
            "keys sort as numbers"
        );
    }
}
