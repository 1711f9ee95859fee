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
//! Whose failure a read given up on is must not depend on what else the call did: a read
//! always gets a short while to answer (its *least wait*: a second, or half the call's time
//! if that is less), past the deadline if need be, and one the store leaves unanswered that
//! long is the store's failure (the call runs again once the store answers, never charged
//! to the module). No read of a call waits beyond the deadline plus one least wait, however
//! many it makes: one begun too late to get its least wait, and given up on, is the call's
//! own time running out. A call any of whose reads ended past its deadline ends as a call
//! past its deadline, whatever it returns.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// The deadline of the reads being made on this thread, and what became of them.
#[derive(Clone, Copy)]
struct CallReads {
    deadline: Instant,
    least: Duration,
    /// A read ended after the deadline.
    past_deadline: bool,
}

thread_local! {
    static CALL_READS: Cell<Option<CallReads>> = const { Cell::new(None) };
}

/// Runs `read` (storage reads for a module's call) with `deadline` as their deadline and
/// `least` as each one's least wait; also says whether a read ended past the deadline.
pub(crate) fn within<T>(deadline: Instant, least: Duration, read: impl FnOnce() -> T) -> (T, bool) {
    /// Puts back what was there before, also if `read` panics.
    struct Restore(Option<CallReads>);
    impl Drop for Restore {
        fn drop(&mut self) {
            CALL_READS.set(self.0);
        }
    }
    let _restore = Restore(CALL_READS.replace(Some(CallReads {
        deadline,
        least,
        past_deadline: false,
    })));
    let done = read();
    let past = CALL_READS.get().is_some_and(|reads| reads.past_deadline);
    (done, past)
}

/// How long a read begun now may wait for its answer, and whether that is its whole least
/// wait (given up on, it is then the store's failure); `None` when it is not made for a
/// call (it waits as long as it takes).
pub(crate) fn begin() -> Option<(Duration, bool)> {
    let reads = CALL_READS.get()?;
    let now = Instant::now();
    let until = reads
        .deadline
        .max(now + reads.least)
        .min(reads.deadline + reads.least);
    let wait = until.saturating_duration_since(now);
    Some((wait, wait >= reads.least))
}

/// Notes that a read has ended (answered or given up on).
pub(crate) fn end() {
    if let Some(mut reads) = CALL_READS.get()
        && Instant::now() > reads.deadline
    {
        reads.past_deadline = true;
        CALL_READS.set(Some(reads));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_holds_only_inside_its_span_and_nested_spans_restore_the_outer_one() {
        let far = Instant::now() + Duration::from_secs(60);
        let second = Duration::from_secs(1);
        assert_eq!(begin(), None);
        within(far, second, || {
            assert!(begin().is_some_and(|(wait, full)| wait > Duration::from_secs(50) && full));
            within(Instant::now(), second, || {
                assert!(begin().is_some_and(|(wait, _)| wait <= second));
            });
            assert!(begin().is_some_and(|(wait, _)| wait > Duration::from_secs(50)));
        });
        assert_eq!(begin(), None);
        let _ = std::panic::catch_unwind(|| within(far, second, || panic!("a read panicked")));
        assert_eq!(begin(), None);
    }

    #[test]
    fn reads_past_the_deadline_share_one_least_wait_and_are_noted() {
        let second = Duration::from_secs(1);
        // The deadline has passed: a first read gets (nearly) its least wait…
        let deadline = Instant::now();
        let ((wait, full), past) = within(deadline, second, || {
            let first = begin().unwrap();
            end();
            first
        });
        assert!(
            wait > Duration::from_millis(900) && wait <= second,
            "{wait:?}"
        );
        assert!(!full || wait == second);
        assert!(past, "a read that ended past the deadline was not noted");
        // …and none waits beyond the deadline plus one least wait.
        let long_gone = Instant::now() - Duration::from_secs(5);
        let ((wait, full), _) = within(long_gone, second, || begin().unwrap());
        assert_eq!((wait, full), (Duration::ZERO, false));
        // Well before the deadline: up to it, a whole least wait, nothing noted.
        let ahead = Instant::now() + Duration::from_secs(30);
        let ((wait, full), past) = within(ahead, second, || {
            let first = begin().unwrap();
            end();
            first
        });
        assert!(wait > Duration::from_secs(29) && full && !past);
    }
}
