//! A module's lane: its worker behind a lock, and a count of the jobs ahead of a new one.
//!
//! A source that waits for each outcome (a chain driver, a replay) would otherwise hand
//! every event to the worker's task and be woken again by its reply: two thread switches
//! per event, most of the host's cost for a cheap call. When nothing is queued or running
//! for the module, an awaited dispatch runs the call in the caller's task instead, holding
//! the same lock the worker's task takes for each queued job, so the module still sees one
//! event at a time, in dispatch order.

use super::worker::Worker;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use tokio::sync::OwnedMutexGuard;

/// A module's worker and the jobs dispatched to it that have not finished.
pub(crate) struct Lane {
    worker: Arc<tokio::sync::Mutex<Worker>>,
    /// Jobs queued or running: counted before they are queued (or run in place), uncounted
    /// by whoever ran them before the worker's lock is released.
    pending: AtomicUsize,
}

impl Lane {
    pub fn new(worker: Worker) -> Self {
        Self {
            worker: Arc::new(tokio::sync::Mutex::new(worker)),
            pending: AtomicUsize::new(0),
        }
    }

    /// The worker, for the next queued job (after those ahead of it have finished).
    pub async fn lock(&self) -> OwnedMutexGuard<Worker> {
        self.worker.clone().lock_owned().await
    }

    /// The worker, if no job is queued or running: the caller may run its job in place and
    /// must call [`Lane::finished`] before releasing it. A job queued from then on waits
    /// for the lock, so it runs after this one.
    pub fn claim_idle(&self) -> Option<OwnedMutexGuard<Worker>> {
        let worker = self.worker.clone().try_lock_owned().ok()?;
        self.pending
            .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire)
            .ok()
            .map(|_| worker)
    }

    /// Counts a job about to be queued.
    pub fn queued(&self) {
        self.pending.fetch_add(1, Ordering::AcqRel);
    }

    /// Uncounts a job that ran, or that could not be queued.
    pub fn finished(&self) {
        self.pending.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A future that, if dropped before it completes, is finished by a task of its own: a call
/// a caller stopped waiting for (a source being stopped, say) still ends and commits as it
/// would have in the worker's task, and its lock is held until then.
pub(crate) struct RunToCompletion<T: Send + 'static> {
    future: Option<Pin<Box<dyn Future<Output = T> + Send>>>,
}

impl<T: Send + 'static> RunToCompletion<T> {
    pub fn new(future: impl Future<Output = T> + Send + 'static) -> Self {
        Self {
            future: Some(Box::pin(future)),
        }
    }
}

impl<T: Send + 'static> Future for RunToCompletion<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let Some(future) = self.future.as_mut() else {
            panic!("RunToCompletion polled after it completed");
        };
        let output = std::task::ready!(future.as_mut().poll(cx));
        self.future = None;
        Poll::Ready(output)
    }
}

impl<T: Send + 'static> Drop for RunToCompletion<T> {
    fn drop(&mut self) {
        if let Some(future) = self.future.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(future);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RunToCompletion;
    use tokio::sync::oneshot;

    #[tokio::test]
    async fn a_dropped_future_still_runs_to_its_end() {
        let (release, released) = oneshot::channel::<()>();
        let (done, finished) = oneshot::channel();
        let mut running = RunToCompletion::new(async move {
            released.await.unwrap();
            done.send("finished").unwrap();
        });
        // The caller gives up while the future waits.
        assert!(futures::poll!(&mut running).is_pending());
        drop(running);
        release.send(()).unwrap();
        assert_eq!(finished.await.unwrap(), "finished");
    }

    #[tokio::test]
    async fn a_completed_future_yields_its_output() {
        assert_eq!(RunToCompletion::new(async { 7 }).await, 7);
    }
}
