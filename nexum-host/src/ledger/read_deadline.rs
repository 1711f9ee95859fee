//! The deadline of the module call a storage read is made for.
//!
//! A module's call has a wall-clock deadline that covers its host calls, and a `local-store`
//! read is one. A read from a shared database is a wait on the network, which the timer
//! around the call cannot cut (the host call holds the thread), so the read itself must give
//! up in time. The deadline travels beside the read rather than through the `Storage`
//! seam: only a remote backend has anything to give up, and only reads may give up (a
//! commit given up on could still land). It is set on the thread for the span of one
//! synchronous host call, which cannot move to another thread meanwhile.
//!
//! Whose failure a read given up on is: the store's when the database left it unanswered
//! for a good while (the call is run again once the store answers, never charged to the
//! module), the module's own when the call had spent its time before the read (the call
//! then ends as any call past its deadline does, or a slow module would be run again for
//! ever instead of being restarted and, in the end, quarantined).

use std::cell::Cell;
use std::time::{Duration, Instant};

/// The deadline of the reads being made on this thread, and what happened to them.
#[derive(Clone, Copy)]
struct CallReads {
    deadline: Instant,
    /// A read given up on with at least this much time before the deadline when it began
    /// is the store's failure.
    store_answers_within: Duration,
    /// A read was given up on with less time than that: the call ran out of time.
    out_of_time: bool,
}

thread_local! {
    static CALL_READS: Cell<Option<CallReads>> = const { Cell::new(None) };
}

/// Runs `read` (storage reads for a module's call) with `deadline` as their deadline; a
/// read given up on with at least `store_answers_within` left when it began is the store's
/// failure. Also says whether a read was given up on with less: the call ran out of time.
pub(crate) fn within<T>(
    deadline: Instant,
    store_answers_within: Duration,
    read: impl FnOnce() -> T,
) -> (T, bool) {
    /// Puts back what was there before, also if `read` panics.
    struct Restore(Option<CallReads>);
    impl Drop for Restore {
        fn drop(&mut self) {
            CALL_READS.set(self.0);
        }
    }
    let _restore = Restore(CALL_READS.replace(Some(CallReads {
        deadline,
        store_answers_within,
        out_of_time: false,
    })));
    let done = read();
    let out_of_time = CALL_READS.get().is_some_and(|reads| reads.out_of_time);
    (done, out_of_time)
}

/// The deadline of the reads being made on this thread, if they are made for a call.
pub(crate) fn current() -> Option<Instant> {
    CALL_READS.get().map(|reads| reads.deadline)
}

/// Notes that a read which had `left` before the deadline when it began was given up on;
/// `true` when that is the store's failure rather than the call's running out of time.
pub(crate) fn given_up(left: Duration) -> bool {
    let Some(mut reads) = CALL_READS.get() else {
        return true;
    };
    if left >= reads.store_answers_within {
        return true;
    }
    reads.out_of_time = true;
    CALL_READS.set(Some(reads));
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_holds_only_inside_its_span_and_nested_spans_restore_the_outer_one() {
        let outer = Instant::now() + Duration::from_secs(2);
        let inner = Instant::now() + Duration::from_secs(1);
        let second = Duration::from_secs(1);
        assert_eq!(current(), None);
        within(outer, second, || {
            assert_eq!(current(), Some(outer));
            within(inner, second, || assert_eq!(current(), Some(inner)));
            assert_eq!(current(), Some(outer));
        });
        assert_eq!(current(), None);
        let _ = std::panic::catch_unwind(|| within(outer, second, || panic!("a read panicked")));
        assert_eq!(current(), None);
    }

    #[test]
    fn a_read_given_up_on_late_in_the_call_is_the_calls_running_out_of_time() {
        let deadline = Instant::now() + Duration::from_secs(2);
        let second = Duration::from_secs(1);
        let (store_failed, out_of_time) = within(deadline, second, || given_up(second));
        assert!(store_failed && !out_of_time);
        let (store_failed, out_of_time) =
            within(deadline, second, || given_up(Duration::from_millis(999)));
        assert!(!store_failed && out_of_time);
        // Outside a call every read given up on is the store's.
        assert!(given_up(Duration::ZERO));
    }
}
