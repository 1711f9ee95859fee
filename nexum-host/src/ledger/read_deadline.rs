//! The deadline of the module call a storage read is made for.
//!
//! A module's call has a wall-clock deadline that covers its host calls, and a `local-store`
//! read is one. A read from a shared database is a wait on the network, which the timer
//! around the call cannot cut (the host call holds the thread), so the read itself must give
//! up in time. The deadline travels beside the read rather than through the `Storage`
//! seam: only a remote backend has anything to give up, and only reads may give up (a
//! commit given up on could still land). It is set on the thread for the span of one
//! synchronous host call, which cannot move to another thread meanwhile.

use std::cell::Cell;
use std::time::Instant;

thread_local! {
    static READ_DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Runs `read` (storage reads for a module's call) with `deadline` as their deadline.
pub(crate) fn within<T>(deadline: Instant, read: impl FnOnce() -> T) -> T {
    /// Puts back the deadline before, also if `read` panics.
    struct Restore(Option<Instant>);
    impl Drop for Restore {
        fn drop(&mut self) {
            READ_DEADLINE.set(self.0);
        }
    }
    let _restore = Restore(READ_DEADLINE.replace(Some(deadline)));
    read()
}

/// The deadline of the reads being made on this thread, if they are made for a call.
pub(crate) fn current() -> Option<Instant> {
    READ_DEADLINE.get()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_deadline_holds_only_inside_its_span_and_nested_spans_restore_the_outer_one() {
        let outer = Instant::now() + Duration::from_secs(2);
        let inner = Instant::now() + Duration::from_secs(1);
        assert_eq!(current(), None);
        within(outer, || {
            assert_eq!(current(), Some(outer));
            within(inner, || assert_eq!(current(), Some(inner)));
            assert_eq!(current(), Some(outer));
        });
        assert_eq!(current(), None);
        let _ = std::panic::catch_unwind(|| within(outer, || panic!("a read panicked")));
        assert_eq!(current(), None);
    }
}
