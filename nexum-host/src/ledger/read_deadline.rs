//! How long a storage read made for a module's call may wait for the database.
//!
//! A module's call has a wall-clock deadline that covers its host calls, and a `local-store`
//! read is one. A read from a shared database is a wait on the network, which the timer
//! around the call cannot cut (the host call holds the thread), so the read itself must give
//! up in time. The deadline travels beside the read rather than through the `Storage`
//! seam: only a remote backend has anything to give up, and only reads may give up (a
//! commit given up on could still land). It is set on the thread for the span of one
//! synchronous host call, which cannot move to another thread meanwhile.
//!
//! A read given up on is the store's failure: the call runs again once the store answers
//! and is never charged to the module. So that only a store that is failing is blamed, a
//! read always has a short while to answer (a second, or half the call's time if that is
//! less), past the deadline if need be: a call that spent its own time before it read gets
//! its answer and then ends as any call past its deadline does (restarted, in the end
//! quarantined), instead of being run again for ever as the store's failure.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// The deadline of the reads being made on this thread, and their shortest wait.
#[derive(Clone, Copy)]
struct CallReads {
    deadline: Instant,
    /// A read waits at least this long, even past the deadline.
    least: Duration,
}

thread_local! {
    static CALL_READS: Cell<Option<CallReads>> = const { Cell::new(None) };
}

/// Runs `read` (storage reads for a module's call) with `deadline` as their deadline; each
/// still waits at least `least` for its answer.
pub(crate) fn within<T>(deadline: Instant, least: Duration, read: impl FnOnce() -> T) -> T {
    /// Puts back what was there before, also if `read` panics.
    struct Restore(Option<CallReads>);
    impl Drop for Restore {
        fn drop(&mut self) {
            CALL_READS.set(self.0);
        }
    }
    let _restore = Restore(CALL_READS.replace(Some(CallReads { deadline, least })));
    read()
}

/// How long a read begun now on this thread may wait for its answer: `None` when it is not
/// made for a call (it waits as long as it takes).
pub(crate) fn wait() -> Option<Duration> {
    CALL_READS.get().map(|reads| {
        reads
            .deadline
            .saturating_duration_since(Instant::now())
            .max(reads.least)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_holds_only_inside_its_span_and_nested_spans_restore_the_outer_one() {
        let far = Instant::now() + Duration::from_secs(60);
        let second = Duration::from_secs(1);
        assert_eq!(wait(), None);
        within(far, second, || {
            assert!(wait().is_some_and(|w| w > Duration::from_secs(50)));
            within(Instant::now(), second, || assert_eq!(wait(), Some(second)));
            assert!(wait().is_some_and(|w| w > Duration::from_secs(50)));
        });
        assert_eq!(wait(), None);
        let _ = std::panic::catch_unwind(|| within(far, second, || panic!("a read panicked")));
        assert_eq!(wait(), None);
    }
}
