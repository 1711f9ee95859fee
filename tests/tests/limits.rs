//! Limits end to end: each limit stops only the offending module's call, and a spinning
//! module does not hold up another module's events — with code from either compiler
//! (`[engine] compiler`), since each compiles the fuel and epoch checks in on its own.

use nexum_core::{Compiler, Lifecycle, Outcome};
use nexum_tests::engine::{TestModule, boot, command, test_config};
use std::time::{Duration, Instant};

/// Boots a probe `bad` (which will hit a limit) beside a probe `good`, quarantining on the
/// first trap so each outcome is reported at once.
async fn pair(
    compiler: Compiler,
    limits: impl FnOnce(&mut nexum_core::Limits),
) -> nexum_tests::engine::TestEngine {
    let mut config = test_config();
    config.compiler = compiler;
    config.supervision.quarantine_after = 1;
    limits(&mut config.limits);
    boot(
        vec![TestModule::probe("bad"), TestModule::probe("good")],
        config,
    )
    .await
    .unwrap()
}

/// Runs `script` in `bad` while `good` keeps handling events; returns `bad`'s outcome and
/// checks that every one of `good`'s events was handled meanwhile.
async fn offend_while_good_runs(engine: &nexum_tests::engine::TestEngine, script: &str) -> Outcome {
    let bad = engine.runtime.dispatch("bad", command(script));
    let good = async {
        for i in 0..20 {
            let outcome = engine.run("good", &format!("count n; set last {i}")).await;
            assert_eq!(outcome, Outcome::Handled);
        }
    };
    let (bad, ()) = tokio::join!(bad, good);
    assert_eq!(engine.read("good", "n").as_deref(), Some("20"));
    bad.unwrap()
}

async fn fuel_exhaustion_stops_only_the_offending_call(compiler: Compiler) {
    let engine = pair(compiler, |l| l.fuel_per_event = 20_000_000).await;
    let outcome = offend_while_good_runs(&engine, "set partial 1; spin").await;
    assert_eq!(
        outcome,
        Outcome::Trapped("fuel exhausted (limit 20000000)".into())
    );
    assert_eq!(engine.read("bad", "partial"), None);
}

async fn the_memory_cap_stops_only_the_offending_call(compiler: Compiler) {
    let engine = pair(compiler, |l| l.memory_bytes = 16 * 1024 * 1024).await;
    let outcome = offend_while_good_runs(&engine, "set partial 1; grow 64000000").await;
    assert_eq!(
        outcome,
        Outcome::Trapped("memory limit of 16777216 bytes exceeded".into())
    );
    assert_eq!(engine.read("bad", "partial"), None);
}

async fn the_deadline_stops_a_spinning_call(compiler: Compiler) {
    let engine = pair(compiler, |l| {
        l.event_timeout_ms = 300;
        l.fuel_per_event = u64::MAX;
    })
    .await;
    let started = Instant::now();
    let outcome = offend_while_good_runs(&engine, "set partial 1; spin").await;
    assert_eq!(
        outcome,
        Outcome::Trapped("deadline of 300 ms exceeded".into())
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(engine.read("bad", "partial"), None);
}

/// Fuel counts instructions, not time: one `memory.fill` of 16 MiB costs one unit of fuel
/// (a pass of the loop some 30) and milliseconds of work. The deadline must still hold (a
/// clock, not fuel): with yields on fuel alone the first check came after ~30,000 fills.
async fn the_deadline_stops_a_call_that_burns_little_fuel(compiler: Compiler) {
    let engine = pair(compiler, |l| {
        l.event_timeout_ms = 300;
        l.fuel_per_event = u64::MAX;
    })
    .await;
    let started = Instant::now();
    let outcome = tokio::time::timeout(
        Duration::from_secs(30),
        offend_while_good_runs(&engine, "set partial 1; churn 16777216"),
    )
    .await
    .expect("the call was not cut at its deadline");
    assert_eq!(
        outcome,
        Outcome::Trapped("deadline of 300 ms exceeded".into())
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(engine.read("bad", "partial"), None);
}

async fn the_deadline_covers_time_spent_waiting_in_host_calls(compiler: Compiler) {
    let engine = pair(compiler, |l| l.event_timeout_ms = 300).await;
    let started = Instant::now();
    let outcome = offend_while_good_runs(&engine, "set partial 1; sleep 10000").await;
    assert_eq!(
        outcome,
        Outcome::Trapped("deadline of 300 ms exceeded".into())
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(engine.read("bad", "partial"), None);
}

async fn a_stack_overflow_stops_only_the_offending_call(compiler: Compiler) {
    let engine = pair(compiler, |_| {}).await;
    let outcome = offend_while_good_runs(&engine, "set partial 1; recurse").await;
    // Rust keeps large frames on a shadow stack in linear memory, so running out of it
    // shows as an out-of-bounds access rather than a wasm stack overflow.
    assert!(
        matches!(outcome, Outcome::Trapped(ref r) if r.contains("stack overflow") || r.contains("out of bounds")),
        "{outcome:?}"
    );
    assert_eq!(engine.read("bad", "partial"), None);
}

/// On a single-threaded executor, a module spinning until its deadline must still let
/// another module's events through (the guest yields every slice of fuel), and must still
/// be cut at its deadline with no other thread to fire the timer.
async fn a_spinning_module_does_not_hold_up_others_on_one_thread(compiler: Compiler) {
    let engine = pair(compiler, |l| {
        l.event_timeout_ms = 3_000;
        l.fuel_per_event = u64::MAX;
    })
    .await;
    let engine = std::sync::Arc::new(engine);
    let mut lines = engine.runtime.log_lines();
    let mut lifecycle = engine.runtime.lifecycle();
    let spinning_since = Instant::now();
    engine
        .runtime
        .try_dispatch("bad", command("log spinning; spin"))
        .unwrap();
    // `bad` is spinning once it said so.
    tokio::time::timeout(Duration::from_secs(30), async {
        while lines.recv().await.expect("log lines").message != "spinning" {}
    })
    .await
    .expect("`bad` never started spinning");
    // Drive `good` from a task of its own, as event sources do.
    let driver = engine.clone();
    let elapsed = tokio::spawn(async move {
        let started = Instant::now();
        for i in 0..20 {
            let outcome = driver.run("good", &format!("count n; set last {i}")).await;
            assert_eq!(outcome, Outcome::Handled);
        }
        started.elapsed()
    })
    .await
    .unwrap();
    eprintln!("20 events beside a spinning module on one thread: {elapsed:?}");
    assert!(
        elapsed < Duration::from_millis(1_500),
        "20 events took {elapsed:?} beside a spinning module (its deadline is 3 s)"
    );
    assert_eq!(engine.read("good", "n").as_deref(), Some("20"));
    let trapped = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let event = lifecycle.recv().await.expect("lifecycle events");
            if let (true, Lifecycle::Trapped { reason }) = (event.module == "bad", event.change) {
                return reason;
            }
        }
    })
    .await
    .expect("the spinning module was never cut");
    let cut_after = spinning_since.elapsed();
    eprintln!("the spinner was cut after {cut_after:?} (deadline 3 s)");
    assert_eq!(trapped, "deadline of 3000 ms exceeded");
    assert!(
        cut_after < Duration::from_secs(6),
        "cut after {cut_after:?}, its deadline is 3 s"
    );
}

#[tokio::test]
async fn a_manifest_may_lower_its_limits() {
    let mut config = test_config();
    config.supervision.quarantine_after = 1;
    let module = TestModule::new(
        "probe",
        "frugal",
        &["local-store", "logging"],
        "[limits]\nfuel_per_event = 5000000\n",
    );
    let engine = boot(vec![module], config).await.unwrap();
    let info = &engine.runtime.modules()[0];
    assert_eq!(info.limits.fuel_per_event, 5_000_000);
    let outcome = engine.run("frugal", "spin").await;
    assert_eq!(
        outcome,
        Outcome::Trapped("fuel exhausted (limit 5000000)".into())
    );
}

/// Runs each test above once per compiler, as `<test>::cranelift` and `<test>::winch`.
macro_rules! on_each_compiler {
    ($flavor:meta; $($test:ident),* $(,)?) => {$(
        mod $test {
            use nexum_core::Compiler;

            #[$flavor]
            async fn cranelift() {
                super::$test(Compiler::Cranelift).await
            }

            #[$flavor]
            async fn winch() {
                super::$test(Compiler::Winch).await
            }
        }
    )*};
}

on_each_compiler!(tokio::test(flavor = "multi_thread", worker_threads = 2); fuel_exhaustion_stops_only_the_offending_call, the_memory_cap_stops_only_the_offending_call, the_deadline_stops_a_spinning_call, the_deadline_stops_a_call_that_burns_little_fuel, the_deadline_covers_time_spent_waiting_in_host_calls, a_stack_overflow_stops_only_the_offending_call);
on_each_compiler!(tokio::test(flavor = "current_thread"); a_spinning_module_does_not_hold_up_others_on_one_thread);
