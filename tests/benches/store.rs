//! `local-store` at scale: a module holding 1,000,000 keys, through the real host (compiled
//! probe guest, fjall on disk, the SDK's page iterator and batches).
//!
//! `cargo bench -p nexum-tests --bench store`
//!
//! Prints the time to page through every key, to count them (and a prefix of 10,000), to
//! write 1,000 keys in one batch against one `set` call each, and the host's peak resident
//! memory while the module walks all of them (Linux: `VmHWM`, reset before the walk).
//! Then the cost of `[engine] durability`: calls that each commit one write, buffered
//! against fsynced.

use nexum_core::{Durability, Outcome};
use nexum_tests::engine::{TestEngine, TestModule, boot, boot_in, test_config};
use std::time::{Duration, Instant};

const KEYS: usize = 1_000_000;
const PER_CALL: usize = 10_000;
const ROUNDS: usize = 15;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(bench());
}

async fn bench() {
    let mut config = test_config();
    config.limits.store_total_bytes = 1024 * 1024 * 1024;
    config.limits.fuel_per_event = 200_000_000_000;
    config.limits.event_timeout_ms = 600_000;
    let engine = boot(vec![TestModule::probe("keeper")], config)
        .await
        .expect("booting the probe");

    let started = Instant::now();
    for part in 0..KEYS / PER_CALL {
        run(&engine, &format!("fill k/{part:03}/ {PER_CALL}")).await;
    }
    println!(
        "fill: {KEYS} keys in {} batches of {PER_CALL}: {:.2} s",
        KEYS / PER_CALL,
        started.elapsed().as_secs_f64()
    );

    let baseline = rss_kib("VmRSS");
    reset_peak_rss();
    let walk = timed(&engine, "walk k/ walked").await;
    let peak = rss_kib("VmHWM");
    assert_eq!(engine.read("keeper", "walked"), Some(KEYS.to_string()));
    println!(
        "walk: all {KEYS} entries, page by page: {:.2} s; host RSS {} MiB before, peak {} MiB during",
        walk.as_secs_f64(),
        baseline / 1024,
        peak / 1024
    );

    let count_all = timed(&engine, "tally k/ n").await;
    assert_eq!(engine.read("keeper", "n"), Some(KEYS.to_string()));
    let count_prefix = timed(&engine, "tally k/042/ n").await;
    assert_eq!(engine.read("keeper", "n"), Some(PER_CALL.to_string()));
    println!(
        "count: all {KEYS} keys {:.0} ms; a prefix of {PER_CALL} {:.1} ms",
        ms(count_all),
        ms(count_prefix)
    );

    let mut batched = Vec::new();
    let mut each = Vec::new();
    for round in 0..ROUNDS {
        batched.push(timed(&engine, &format!("fill b{round}/ 1000")).await);
        each.push(timed(&engine, &format!("fill-each e{round}/ 1000")).await);
    }
    println!(
        "write 1000 keys (median of {ROUNDS} calls): one batch {:.1} ms, one set each {:.1} ms",
        ms(median(batched)),
        ms(median(each))
    );
    drop(engine);

    for durability in [Durability::Buffered, Durability::Sync] {
        let (p50, p99) = one_write_calls(durability).await;
        println!(
            "one call committing one write, durability {durability:?}: p50 {:.2} ms, p99 {:.2} ms",
            ms(p50),
            ms(p99)
        );
    }
}

/// Latency of calls that each commit one write, under `durability`, on a disk-backed
/// state directory (beside the build, not a tmpfs).
async fn one_write_calls(durability: Durability) -> (Duration, Duration) {
    let mut config = test_config();
    config.durability = durability;
    let dir = tempfile::tempdir_in(nexum_tests::guests::guest_target_dir().parent().unwrap())
        .expect("a state directory beside the build");
    let engine = boot_in(dir, vec![TestModule::probe("keeper")], config)
        .await
        .expect("booting the probe");
    let mut samples = Vec::new();
    for i in 0..300 {
        samples.push(timed(&engine, &format!("set k {i}")).await);
    }
    samples.sort();
    (
        samples[samples.len() / 2],
        samples[samples.len() * 99 / 100],
    )
}

async fn run(engine: &TestEngine, script: &str) {
    let outcome = engine.run("keeper", script).await;
    assert_eq!(outcome, Outcome::Handled, "{script}");
}

async fn timed(engine: &TestEngine, script: &str) -> Duration {
    let started = Instant::now();
    run(engine, script).await;
    started.elapsed()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// A field of `/proc/self/status` in KiB.
fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .expect("reading /proc/self/status")
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

/// Resets `VmHWM` to the current RSS, so the next peak is the walk's own.
fn reset_peak_rss() {
    std::fs::write("/proc/self/clear_refs", "5").expect("resetting the peak RSS");
}
