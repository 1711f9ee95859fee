//! `/metrics` and `/healthz` during a real Anvil run.

use nexum_core::ChainConfig;
use nexum_tests::anvil::{Anvil, CHAIN_ID};
use nexum_tests::engine::{TestModule, run, test_config};
use nexum_tests::proxy::Proxy;
use std::time::Duration;

/// The value of the sample `name{labels}` in Prometheus text, if present.
fn sample(metrics: &str, name_and_labels: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(name_and_labels))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_with_the_chain_and_health_follows_the_node() {
    let anvil = Anvil::spawn().await;
    let proxy = Proxy::start(anvil.port()).await;
    let mut config = test_config();
    let mut chain = ChainConfig::new(&format!("ws://127.0.0.1:{}", proxy.port())).unwrap();
    chain.poll_interval_ms = 200;
    chain.request_timeout_ms = 1_000;
    config.chains.insert(CHAIN_ID, chain);
    config.metrics_addr = Some("127.0.0.1:0".parse().unwrap());
    let module = TestModule::new(
        "recorder",
        "blocks",
        &["local-store", "logging"],
        &format!("[[subscription]]\nkind = \"block\"\nchain_id = {CHAIN_ID}\n"),
    );
    let runtime = run(vec![module], config).await;
    let base = format!(
        "http://{}",
        runtime.runtime.metrics_addr().expect("metrics are served")
    );
    let http = reqwest::Client::new();
    let get = |path: &'static str| {
        let http = http.clone();
        let url = format!("{base}{path}");
        async move {
            let response = http.get(url).send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };

    let start = anvil.block_number().await;
    runtime.wait_for_block("blocks", start).await;
    let (status, first) = get("/metrics").await;
    assert_eq!(status, 200);
    // Counters that alerts watch are served from the start, so their first rise shows.
    for series in [
        r#"nexum_dead_letters_total{module="blocks"}"#,
        r#"nexum_chain_reconnects_total{chain="31337"}"#,
    ] {
        assert!(
            sample(&first, series).is_some(),
            "{series} missing:\n{first}"
        );
    }
    anvil.mine(3).await;
    runtime.wait_for_block("blocks", start + 3).await;
    let (_, second) = get("/metrics").await;

    let handled = r#"nexum_events_handled_total{module="blocks"}"#;
    let head = r#"nexum_chain_head{chain="31337"}"#;
    assert!(
        sample(&second, handled).unwrap() >= sample(&first, handled).unwrap() + 3.0,
        "{second}"
    );
    assert!(
        sample(&second, head).unwrap() >= sample(&first, head).unwrap() + 3.0,
        "{second}"
    );
    assert!(
        second.contains(r#"nexum_dispatch_duration_seconds_bucket{module="blocks""#),
        "{second}"
    );
    assert!(
        second.contains(
            r#"nexum_rpc_requests_total{chain="31337",method="eth_getBlockByNumber",outcome="ok"}"#
        ),
        "{second}"
    );
    assert!(
        second.contains(r#"nexum_chain_delivered_height{chain="31337",module="blocks"}"#),
        "{second}"
    );
    assert_eq!(
        sample(&second, r#"nexum_module_quarantined{module="blocks"}"#),
        Some(0.0)
    );
    assert!(sample(&second, r#"nexum_store_bytes{module="blocks"}"#).unwrap() > 0.0);
    assert_eq!(
        sample(&second, r#"nexum_store_limit_bytes{module="blocks"}"#),
        Some(test_config().limits.store_total_bytes as f64)
    );

    assert_eq!(
        get("/healthz").await,
        (200, r#"{"status":"ok","reasons":[]}"#.to_string())
    );

    // The node goes away: health turns 503 with the reason.
    proxy.cut();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let mut last = get("/healthz").await;
    while last.0 != 503 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        last = get("/healthz").await;
    }
    assert_eq!(last.0, 503, "still {last:?}");
    assert!(
        last.1.contains(r#""status":"unhealthy""#) && last.1.contains("chain 31337: "),
        "{}",
        last.1
    );

    // It comes back: 200 again.
    proxy.restore();
    let healthy = wait_until_async(Duration::from_secs(30), || async {
        get("/healthz").await.0 == 200
    })
    .await;
    assert!(healthy, "health did not recover");
    let (_, after) = get("/metrics").await;
    assert!(
        sample(&after, r#"nexum_rpc_requests_total{chain="31337",method="eth_getBlockByNumber",outcome="error"}"#).is_some()
            || sample(&after, r#"nexum_rpc_requests_total{chain="31337",method="eth_getBlockByNumber",outcome="timeout"}"#).is_some(),
        "{after}"
    );
}

async fn wait_until_async<F, Fut>(timeout: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        if condition().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}
