//! Reading a running engine's `/metrics`, to wait for a value instead of sleeping.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The value of the sample of `name` whose labels include every `labels` pair, if served.
pub async fn metric(addr: SocketAddr, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let body = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    body.lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .find(|line| {
            labels
                .iter()
                .all(|(k, v)| line.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

/// Waits up to `timeout` until the sample of `name` with `labels` is at least `at_least`;
/// returns whether it got there.
pub async fn wait_for_metric(
    addr: SocketAddr,
    name: &str,
    labels: &[(&str, &str)],
    at_least: f64,
    timeout: Duration,
) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if metric(addr, name, labels)
            .await
            .is_some_and(|value| value >= at_least)
        {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
