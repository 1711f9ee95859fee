//! The timer around a guest call, set only once the call waits.
//!
//! A call's deadline is enforced two ways: the epoch interrupts guest code that runs past it
//! (the engine's watchdog), and a timer cuts a call that waits past it in a host call (a
//! chain read, say), where no guest code runs to check the epoch. A call that makes no
//! chain or orderbook request and runs under a slice of fuel never waits: it ends on its
//! first poll. Building tokio's timer for each of them (a look-up of the runtime's handle,
//! a timer entry made and dropped unused) was some 660 instructions per event in the
//! dispatch benchmark, for a timer that never fired.

use std::future::Future;
use std::pin::pin;
use std::task::Poll;
use std::time::Instant;
use tokio::task::{Unconstrained, unconstrained};
use tokio::time::{Sleep, sleep_until};

/// The call was still waiting at its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PastDeadline;

/// Runs `call`, cut at `deadline` if it is then still waiting. The call is polled first, as
/// `tokio::time::timeout` does: a call that ends on its first poll returns its output even
/// past the deadline (the epoch judges guest code that ran too long). The timer is polled
/// outside the task's cooperative budget, so a call that spends the budget cannot hide it.
pub(crate) async fn within_deadline<F: Future>(
    deadline: Instant,
    call: F,
) -> Result<F::Output, PastDeadline> {
    let mut call = pin!(call);
    let mut timer = pin!(None::<Unconstrained<Sleep>>);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(output) = call.as_mut().poll(cx) {
            return Poll::Ready(Ok(output));
        }
        if timer.is_none() {
            timer.set(Some(unconstrained(sleep_until(deadline.into()))));
        }
        let timer = timer.as_mut().as_pin_mut().expect("set above");
        timer.poll(cx).map(|()| Err(PastDeadline))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn a_call_that_ends_at_once_keeps_its_output_even_past_the_deadline() {
        let past = Instant::now() - Duration::from_secs(1);
        assert_eq!(within_deadline(past, async { 7 }).await, Ok(7));
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_that_waits_past_the_deadline_is_cut() {
        let deadline = Instant::now() + Duration::from_millis(50);
        let waits = within_deadline(deadline, std::future::pending::<()>());
        // An outer bound, so that a timer never set fails the test instead of hanging it.
        let cut = tokio::time::timeout(Duration::from_secs(60), waits).await;
        assert_eq!(cut, Ok(Err(PastDeadline)));
    }

    /// A call that spends the task's whole cooperative budget on every poll (here on an
    /// always-ready channel) would starve a timer polled within the budget.
    #[tokio::test]
    async fn a_call_that_spends_the_task_budget_is_still_cut() {
        let deadline = Instant::now() + Duration::from_millis(50);
        let (ready, mut take) = tokio::sync::mpsc::unbounded_channel::<()>();
        let busy = async move {
            loop {
                ready.send(()).unwrap();
                take.recv().await;
            }
        };
        let cut = tokio::time::timeout(Duration::from_secs(30), within_deadline(deadline, busy));
        assert_eq!(cut.await, Ok(Err(PastDeadline)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_that_waits_but_ends_in_time_returns_its_output() {
        let deadline = Instant::now() + Duration::from_millis(50);
        let call = async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            "done"
        };
        assert_eq!(within_deadline(deadline, call).await, Ok("done"));
    }
}
