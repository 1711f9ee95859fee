//! Hostile modules beside a healthy one: the engine stays up, the hostile module is cut,
//! restarted with growing backoff and quarantined (or its call is cut and the limit
//! reported), nothing of a failed call is stored, and the healthy module's events keep
//! being handled in time — measured against its latency when it runs alone.

use nexum_core::{EngineConfig, Lifecycle, ModuleEvent, ModuleStatus, Outcome};
use nexum_tests::engine::{TestEngine, TestModule, boot, command, test_config};
use nexum_tests::memory::own_peak_rss_kib;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

/// Healthy events measured per scenario, one every `HEALTHY_EVERY`.
const HEALTHY_EVENTS: usize = 60;
const HEALTHY_EVERY: Duration = Duration::from_millis(20);
/// How much a hostile neighbour may add to the healthy module's p90 dispatch latency. (Of
/// 60 samples the p99 is the maximum: one scheduler stall on a busy machine would decide
/// the test. A neighbour that really held the healthy module up moves the p90.)
const LATENCY_BOUND: Duration = Duration::from_millis(100);

fn config() -> EngineConfig {
    let mut config = test_config();
    config.supervision.restart_backoff_ms = 50;
    config.supervision.restart_backoff_max_ms = 5_000;
    config.supervision.quarantine_after = 4;
    config.supervision.retry_attempts = 1;
    config.limits.fuel_per_event = 50_000_000;
    config.limits.memory_bytes = 32 * 1024 * 1024;
    config.limits.event_timeout_ms = 500;
    config.limits.store_total_bytes = 1024 * 1024;
    config.limits.log_lines_per_second = 200;
    config
}

fn hostile(behaviour: &str, extra: &str) -> TestModule {
    TestModule::new(
        "hostile",
        "hostile",
        &["local-store", "logging"],
        &format!("[config]\nbehaviour = \"{behaviour}\"\n{extra}\n"),
    )
}

fn healthy() -> TestModule {
    TestModule::probe("healthy")
}

/// Dispatch latencies of the healthy module, in order.
async fn measure_healthy(engine: &TestEngine) -> Vec<Duration> {
    let mut latencies = Vec::with_capacity(HEALTHY_EVENTS);
    for i in 0..HEALTHY_EVENTS {
        let started = Instant::now();
        let outcome = engine
            .run("healthy", &format!("count n; set last {i}"))
            .await;
        latencies.push(started.elapsed());
        assert_eq!(outcome, Outcome::Handled);
        tokio::time::sleep(HEALTHY_EVERY).await;
    }
    assert_eq!(
        engine.read("healthy", "n").as_deref(),
        Some(&*HEALTHY_EVENTS.to_string())
    );
    latencies
}

fn p90(latencies: &[Duration]) -> Duration {
    let mut sorted = latencies.to_vec();
    sorted.sort();
    sorted[(sorted.len() * 90 / 100).min(sorted.len() - 1)]
}

/// The healthy module's p90 latency alone (measured once per test process).
async fn baseline() -> Duration {
    static BASELINE: tokio::sync::OnceCell<Duration> = tokio::sync::OnceCell::const_new();
    *BASELINE
        .get_or_init(|| async {
            let engine = boot(vec![healthy()], config()).await.unwrap();
            p90(&measure_healthy(&engine).await)
        })
        .await
}

/// Everything a scenario observed.
struct Observed {
    engine: Arc<TestEngine>,
    lifecycle: Vec<ModuleEvent>,
}

/// Runs `module` beside the healthy one, feeding it an event every 30 ms while the healthy
/// module is measured; checks the healthy module kept its latency.
async fn beside_healthy(module: TestModule) -> Observed {
    let engine = Arc::new(boot(vec![module, healthy()], config()).await.unwrap());
    let mut lifecycle_rx = engine.runtime.lifecycle();
    let pump_engine = engine.clone();
    let pump = tokio::spawn(async move {
        loop {
            let _ = pump_engine
                .runtime
                .try_dispatch("hostile", command("misbehave"));
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    });
    let latencies = measure_healthy(&engine).await;
    // Slow failures (a 500 ms deadline each) take longer than the measurement to exhaust
    // the module's restarts; keep feeding it until it settles (or 15 s pass).
    let deadline = Instant::now() + Duration::from_secs(15);
    while engine.runtime.modules()[0].status == ModuleStatus::Restarting
        || (engine.runtime.modules()[0].totals.trapped > 0
            && engine.runtime.modules()[0].status != ModuleStatus::Quarantined
            && engine.read("hostile", "worked").is_none())
    {
        if Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    pump.abort();
    let solo = baseline().await;
    let beside = p90(&latencies);
    eprintln!("healthy p90 dispatch latency: alone {solo:?}, beside the hostile module {beside:?}");
    assert!(
        beside <= solo + LATENCY_BOUND,
        "the healthy module slowed from {solo:?} to {beside:?} (bound: +{LATENCY_BOUND:?})"
    );
    let lifecycle = drain(&mut lifecycle_rx)
        .into_iter()
        .filter(|e| e.module == "hostile")
        .collect();
    Observed { engine, lifecycle }
}

fn drain(rx: &mut broadcast::Receiver<ModuleEvent>) -> Vec<ModuleEvent> {
    let mut events = Vec::new();
    while let Ok(event) = rx.try_recv() {
        events.push(event);
    }
    events
}

/// The module trapped with `reason`, was restarted with non-decreasing, growing delays, and
/// was quarantined; its store holds nothing of the failed calls.
fn assert_restarted_then_quarantined(observed: &Observed, reason: &str) {
    let traps: Vec<&String> = observed
        .lifecycle
        .iter()
        .filter_map(|e| match &e.change {
            Lifecycle::Trapped { reason } => Some(reason),
            _ => None,
        })
        .collect();
    assert!(!traps.is_empty(), "no trap: {:?}", observed.lifecycle);
    assert!(
        traps.iter().all(|r| r.contains(reason)),
        "traps {traps:?} do not say {reason:?}"
    );
    let delays: Vec<u64> = observed
        .lifecycle
        .iter()
        .filter_map(|e| match e.change {
            Lifecycle::Restarting { delay_ms } => Some(delay_ms),
            _ => None,
        })
        .collect();
    eprintln!("restart delays (ms): {delays:?}");
    assert!(delays.len() >= 3, "{delays:?}");
    assert!(
        delays.windows(2).all(|w| w[0] <= w[1]),
        "backoff did not grow: {delays:?}"
    );
    assert!(delays.last() > delays.first(), "{delays:?}");
    assert!(
        matches!(
            observed.lifecycle.last().map(|e| &e.change),
            Some(Lifecycle::Quarantined { .. })
        ),
        "{:?}",
        observed.lifecycle
    );
    let info = &observed.engine.runtime.modules()[0];
    assert_eq!(info.status, ModuleStatus::Quarantined);
    assert_eq!(
        observed.engine.read("hostile", "partial"),
        None,
        "a failed call's write was kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fuel_bomb_is_cut_restarted_and_quarantined() {
    let observed = beside_healthy(hostile("fuel-bomb", "")).await;
    assert_restarted_then_quarantined(&observed, "fuel exhausted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_bomb_is_cut_restarted_and_quarantined() {
    let observed = beside_healthy(hostile("memory-bomb", "")).await;
    assert_restarted_then_quarantined(&observed, "memory limit of 33554432 bytes exceeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stack_overflow_is_cut_restarted_and_quarantined() {
    let observed = beside_healthy(hostile("stack-overflow", "")).await;
    assert_restarted_then_quarantined(&observed, "stack overflow");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_panicking_on_every_event_is_restarted_and_quarantined() {
    let observed = beside_healthy(hostile("panic", "")).await;
    assert_restarted_then_quarantined(&observed, "unreachable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_host_caller_is_cut_at_its_deadline() {
    let observed = beside_healthy(hostile("slow-host", "")).await;
    assert_restarted_then_quarantined(&observed, "deadline of 500 ms exceeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flaky_module_recovers_after_restarts_with_growing_backoff() {
    let observed = beside_healthy(hostile("flaky", "fail_boots = 3")).await;
    let delays: Vec<u64> = observed
        .lifecycle
        .iter()
        .filter_map(|e| match e.change {
            Lifecycle::Restarting { delay_ms } => Some(delay_ms),
            _ => None,
        })
        .collect();
    assert_eq!(delays.len(), 3, "{:?}", observed.lifecycle);
    assert!(delays.windows(2).all(|w| w[0] <= w[1]), "{delays:?}");
    assert_eq!(
        observed.engine.read("hostile", "worked").as_deref(),
        Some("true")
    );
    assert_eq!(
        observed.engine.runtime.modules()[0].status,
        ModuleStatus::Running
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_flood_is_rate_limited_and_counted() {
    let observed = beside_healthy(hostile("log-flood", "")).await;
    let info = &observed.engine.runtime.modules()[0];
    assert_eq!(info.status, ModuleStatus::Running);
    assert!(info.totals.handled > 0);
    eprintln!(
        "log lines dropped from the flood: {}",
        info.log_lines_dropped
    );
    assert!(
        info.log_lines_dropped > 10_000,
        "{}",
        info.log_lines_dropped
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_flood_is_refused_without_partial_writes() {
    let observed = beside_healthy(hostile("store-flood", "")).await;
    assert!(
        observed
            .engine
            .runtime
            .list("hostile", "flood/")
            .unwrap()
            .is_empty(),
        "flood keys were kept"
    );
    assert_eq!(observed.engine.read("hostile", "partial"), None);
    assert_eq!(observed.engine.read("hostile", "big"), None);
    let skipped = observed
        .lifecycle
        .iter()
        .find_map(|e| match &e.change {
            Lifecycle::Skipped { reason } => Some(reason.clone()),
            _ => None,
        })
        .expect("the failing event was skipped");
    assert!(
        skipped.contains("store quota of 1048576 bytes"),
        "{skipped}"
    );
    let info = &observed.engine.runtime.modules()[0];
    assert_eq!(info.status, ModuleStatus::Running);
    assert!(info.store_bytes < 1024, "{}", info.store_bytes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_init_failure_quarantines_only_that_module() {
    let observed = beside_healthy(hostile("init-failure", "")).await;
    assert_eq!(
        observed.engine.runtime.modules()[0].status,
        ModuleStatus::Quarantined
    );
}

/// Every hostile fixture at once beside the healthy module, in one engine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peak_memory_with_every_hostile_fixture_loaded_stays_bounded() {
    const BOUND_MIB: u64 = 768;
    let behaviours = [
        "fuel-bomb",
        "memory-bomb",
        "stack-overflow",
        "panic",
        "flaky",
        "log-flood",
        "store-flood",
        "slow-host",
        "init-failure",
    ];
    let mut modules: Vec<TestModule> = behaviours
        .iter()
        .map(|b| {
            let mut m = hostile(b, "");
            m.manifest = m
                .manifest
                .replace("name = \"hostile\"", &format!("name = \"{b}\""));
            m
        })
        .collect();
    modules.push(healthy());
    let engine = Arc::new(boot(modules, config()).await.unwrap());
    let pump_engine = engine.clone();
    let pump = tokio::spawn(async move {
        loop {
            for b in behaviours {
                let _ = pump_engine.runtime.try_dispatch(b, command("misbehave"));
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    });
    measure_healthy(&engine).await;
    pump.abort();
    let peak = own_peak_rss_kib() / 1024;
    eprintln!("peak resident memory with all hostile fixtures: {peak} MiB (bound {BOUND_MIB} MiB)");
    assert!(peak < BOUND_MIB, "{peak} MiB");
}
