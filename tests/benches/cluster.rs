//! The shared store's cost: calls that each commit one write on PostgreSQL against the
//! embedded fjall store, and how many such commits per second a node sustains with
//! several modules committing at once.
//!
//! `cargo bench -p nexum-tests --bench cluster` (starts its own PostgreSQL, as the tests do)
//!
//! Failover time after a node dies is measured by the cluster tests
//! (`nexum-cli/tests/cluster.rs`), which print it.

use nexum_core::{ClusterConfig, EngineConfig, Outcome, SharedStore};
use nexum_tests::engine::{TestEngine, TestModule, boot, command, test_config, wait_until};
use std::time::{Duration, Instant};

const CALLS: usize = 500;
const MODULES: usize = 8;
const SUSTAINED: Duration = Duration::from_secs(3);

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(bench());
}

fn shared(config: &mut EngineConfig) {
    let url = tokio::task::block_in_place(nexum_tests::postgres::fresh_database);
    config.store = Some(SharedStore::new(url).expect("a postgres URL"));
    config.cluster = ClusterConfig {
        node: Some("bench".into()),
        lease_ms: 10_000,
        renew_ms: 2_000,
    };
}

async fn bench() {
    for (label, on_postgres) in [("fjall (buffered)", false), ("PostgreSQL", true)] {
        let mut config = test_config();
        if on_postgres {
            shared(&mut config);
        }
        let modules: Vec<TestModule> = (0..MODULES)
            .map(|i| TestModule::probe(&format!("keeper-{i}")))
            .collect();
        let engine = boot(modules, config).await.expect("booting the probes");
        let all_running = wait_until(Duration::from_secs(30), || {
            engine.runtime.modules().len() == MODULES
        })
        .await;
        assert!(all_running, "the modules did not start");

        let mut samples = Vec::with_capacity(CALLS);
        for i in 0..CALLS {
            let started = Instant::now();
            call(&engine, "keeper-0", &format!("set k {i}")).await;
            samples.push(started.elapsed());
        }
        samples.sort();
        println!(
            "{label}: one call committing one write: p50 {:.2} ms, p99 {:.2} ms",
            ms(samples[CALLS / 2]),
            ms(samples[CALLS * 99 / 100])
        );

        let until = Instant::now() + SUSTAINED;
        let committed: usize = futures::future::join_all((0..MODULES).map(|m| {
            let engine = &engine;
            async move {
                let mut n = 0;
                while Instant::now() < until {
                    call(engine, &format!("keeper-{m}"), &format!("set k {n}")).await;
                    n += 1;
                }
                n
            }
        }))
        .await
        .into_iter()
        .sum();
        println!(
            "{label}: {MODULES} modules committing at once: {:.0} commits/s",
            committed as f64 / SUSTAINED.as_secs_f64()
        );
        engine.runtime.shutdown().await;
    }
}

async fn call(engine: &TestEngine, module: &str, script: &str) {
    let outcome = engine
        .runtime
        .dispatch(module, command(script))
        .await
        .expect("dispatching");
    assert_eq!(outcome, Outcome::Handled, "{script}");
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
