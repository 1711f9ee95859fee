//! How chain reads are retried, written once: a node that fails is asked again after 250 ms,
//! the wait doubling up to 30 s, for as long as it takes — delivery never skips a block
//! because a read failed.

use backon::{BackoffBuilder, ExponentialBuilder};
use std::future::Future;
use std::time::Duration;

/// The waits between attempts: 250 ms doubling to 30 s, without end.
pub(crate) fn backoff() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::new()
        .with_min_delay(Duration::from_millis(250))
        .with_max_delay(Duration::from_secs(30))
        .without_max_times()
        .build()
}

/// Calls `attempt` until it succeeds, waiting [`backoff`] between failures and telling
/// `failed` about each one.
pub(crate) async fn until_ok<T, E, F, Fut>(
    mut attempt: F,
    mut failed: impl FnMut(&E, Duration),
) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut waits = backoff();
    loop {
        match attempt().await {
            Ok(value) => return value,
            Err(e) => {
                let wait = waits.next().unwrap_or(Duration::from_secs(30));
                failed(&e, wait);
                tokio::time::sleep(wait).await;
            }
        }
    }
}
