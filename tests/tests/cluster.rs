//! A runtime on a shared PostgreSQL store, as an embedder starts it: modules come with
//! their leases, which stay renewed while the node is busy; state lives in the database;
//! a lost database shows in `/healthz` and stops the modules.

use nexum_core::{ClusterConfig, Event, Lifecycle, Outcome, SharedStore, Tick};
use nexum_tests::engine::{TestModule, run, test_config, wait_until};
use nexum_tests::postgres::{
    fresh_database, handled_through, query_texts, recorded_logs, server_url,
};
use std::time::Duration;

/// Test defaults for one node named `solo` on the store at `url`, with a 1.5 s lease
/// renewed every 300 ms.
fn solo_node(url: impl Into<String>) -> nexum_core::EngineConfig {
    let mut config = test_config();
    config.store = Some(SharedStore::new(url.into()).unwrap());
    config.cluster = ClusterConfig {
        node: Some("solo".into()),
        lease_ms: 1500,
        renew_ms: 300,
    };
    config
}

/// Waits until the runtime's health names its shared store (30 s at most).
async fn wait_for_store_problem(runtime: &nexum_host::Runtime) {
    let noticed = wait_until(Duration::from_secs(30), || {
        runtime
            .health()
            .reasons
            .iter()
            .any(|r| r.starts_with("shared store: "))
    })
    .await;
    assert!(noticed, "{:?}", runtime.health());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_lives_in_the_shared_store_and_a_lost_database_shows_in_healthz_and_stops_the_module()
{
    let url = fresh_database();
    let mut config = solo_node(url.clone());
    config.metrics_addr = Some("127.0.0.1:0".parse().unwrap());
    let running = run(vec![TestModule::probe("probe")], config).await;

    // The module starts once this node holds its lease.
    let started = wait_until(Duration::from_secs(30), || {
        running.runtime.modules().iter().any(|m| m.name == "probe")
    })
    .await;
    assert!(
        started,
        "the module never came: {:?}",
        running.runtime.modules()
    );
    let tick = Event::Tick(Tick {
        fired_at: 0,
        schedule: "set greeting hello".into(),
    });
    assert_eq!(
        running.runtime.dispatch("probe", tick).await.unwrap(),
        Outcome::Handled
    );
    let stored = query_texts(
        &url,
        "SELECT convert_from(value, 'UTF8') FROM nexum_entries WHERE space = 'module:probe' AND key = 'greeting'::bytea",
    );
    assert_eq!(stored, ["hello"]);
    assert!(
        running.runtime.health().is_ok(),
        "{:?}",
        running.runtime.health()
    );

    // The database goes away: /healthz says so.
    let name = url.rsplit('/').next().unwrap().to_string();
    query_texts(
        &format!("{}/postgres", server_url()),
        &format!("DROP DATABASE {name} WITH (FORCE)"),
    );
    wait_for_store_problem(&running.runtime).await;
    let healthz = reqwest::get(format!(
        "http://{}/healthz",
        running.runtime.metrics_addr().unwrap()
    ))
    .await
    .unwrap();
    assert_eq!(healthz.status(), 503);
    assert!(healthz.text().await.unwrap().contains("shared store: "));
    // Without the store for most of a lease, the node can no longer know the module is
    // still its own: it stops it.
    let stood_down = wait_until(Duration::from_secs(30), || {
        running.runtime.modules().iter().all(|m| m.name != "probe")
    })
    .await;
    assert!(
        stood_down,
        "the module still runs without its lease: {:?}",
        running.runtime.modules()
    );
    running.stop().await;
}

/// A node busy starting a module whose `init` outlasts a lease keeps renewing the leases
/// it holds: otherwise another node would take its running modules away from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_stay_renewed_while_a_module_takes_longer_than_a_lease_to_start() {
    let url = fresh_database();
    let config = solo_node(url.clone());
    // Placement takes the modules in name order: the quick one runs before the slow one
    // starts.
    let slow = TestModule::new(
        "probe",
        "b-slow",
        &["local-store", "logging"],
        "[config]\ninit = \"sleep 4000\"\n",
    );
    let running = run(vec![TestModule::probe("a-quick"), slow], config).await;
    let is_running = |name: &str| running.runtime.modules().iter().any(|m| m.name == name);
    assert!(
        wait_until(Duration::from_secs(30), || is_running("a-quick")).await,
        "a-quick never started"
    );
    // Until the slow one has started, the quick one's lease must never run out.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut checks = 0;
    while !is_running("b-slow") {
        assert!(std::time::Instant::now() < deadline, "b-slow never started");
        // Unexpired, never taken again (epoch 1), and the node seen within a lease.
        let held = tokio::task::block_in_place(|| {
            query_texts(
                &url,
                "SELECT (l.expires_at > now())::text || ' ' || l.epoch || ' '
                        || (n.seen_at > now() - interval '1500 milliseconds')::text
                 FROM nexum_leases l, nexum_nodes n
                 WHERE l.module = 'a-quick' AND n.node = 'solo'",
            )
        });
        assert_eq!(
            held,
            ["true 1 true"],
            "a-quick's lease or the node's heartbeat ran out while b-slow started (check {checks})"
        );
        checks += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(checks > 0, "b-slow started before it was watched");
    running.stop().await;
}

/// Modules placed on a node in one round start side by side: a slow `init` holds up no
/// other module's start (placement takes modules in name order, the slow one first).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_slow_to_start_holds_up_no_other_taken_in_the_same_round() {
    let mut config = solo_node(fresh_database());
    // A heartbeat late on a busy machine must not end the round before b-quick is taken.
    config.cluster.lease_ms = 10_000;
    config.cluster.renew_ms = 1_000;
    let slow = TestModule::new(
        "probe",
        "a-slow",
        &["local-store", "logging"],
        "[config]\ninit = \"sleep 8000\"\n",
    );
    let running = run(vec![slow, TestModule::probe("b-quick")], config).await;
    let is_running = |name: &str| running.runtime.modules().iter().any(|m| m.name == name);
    assert!(
        wait_until(Duration::from_secs(30), || is_running("b-quick")).await,
        "b-quick never started"
    );
    assert!(
        !is_running("a-slow"),
        "b-quick started only once a-slow had"
    );
    assert!(
        wait_until(Duration::from_secs(30), || is_running("a-slow")).await,
        "a-slow never started"
    );
    running.stop().await;
}

/// A database that stops answering (hung, or the network drops everything) leaves the
/// node unable to know it still owns its module: it stops it before its lease could run out
/// and another node take it, and runs it again once the database answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_database_stops_the_module_within_a_lease_and_it_comes_back() {
    use nexum_tests::postgres::PostgresServer;

    nexum_tests::logs::print_from_env();
    let server = tokio::task::block_in_place(PostgresServer::start);
    let config = solo_node(format!("{}/postgres", server.url));
    let running = run(vec![TestModule::probe("probe")], config).await;
    let is_running = || running.runtime.modules().iter().any(|m| m.name == "probe");
    assert!(
        wait_until(Duration::from_secs(30), is_running).await,
        "the module never started"
    );

    let frozen_at = std::time::Instant::now();
    let frozen = server.freeze();
    let stopped = wait_until(Duration::from_secs(30), || !is_running()).await;
    let after = frozen_at.elapsed();
    drop(frozen);
    assert!(stopped, "the module still runs with its database silent");
    // Its last renewal was at most a round before the freeze: the lease ran out by 1.5 s
    // after it. A slack of a second for a busy machine.
    assert!(
        after < Duration::from_millis(2500),
        "the module stopped {after:?} after the database went silent"
    );
    assert!(
        wait_until(Duration::from_secs(30), is_running).await,
        "the module did not come back with its database"
    );
    running.stop().await;
}

/// Modules in a long call when the database goes silent do not hold up the stopping of the
/// node's other modules. Three of each, so that stopping them one after another in any
/// order (the node's own is random) fails this but one time in twenty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modules_busy_in_a_call_do_not_hold_up_the_others_stopping_when_the_database_goes_silent() {
    // Each busy call waits 3 s on the host's clock, touching no store.
    let outcomes = idle_modules_stop_beside_busy_ones("sleep 3000").await;
    for outcome in outcomes {
        assert_eq!(outcome.unwrap(), Outcome::Handled);
    }
}

/// The same with each busy call reading its store while the database is silent: the read
/// waits for the database, which must not hold up the runtime's other work (there are more
/// such calls than runtime threads).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_waiting_on_a_silent_database_do_not_hold_up_the_others_stopping() {
    idle_modules_stop_beside_busy_ones("count reads").await;
}

/// A store read is a host call, and a call's deadline covers its host calls: a read waiting
/// on a silent database gives up at the deadline. So the node stops within its drain time,
/// database silent or not, instead of waiting for the database to answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_waiting_on_a_silent_database_ends_at_the_calls_deadline_and_the_node_stops() {
    nexum_tests::logs::print_from_env();
    let (server, running) = probe_with_one_second_calls().await;
    let drain = running.runtime.shutdown_drain();
    let mut lines = running.runtime.log_lines();

    let frozen = server.freeze();
    {
        // Queued before the stop, so the stop lets it run: it reads the silent store.
        let mut call = std::pin::pin!(
            running
                .runtime
                .dispatch("probe", tick("log reading; count reads"))
        );
        assert!(futures::poll!(call.as_mut()).is_pending());
        assert!(logged(&mut lines, "reading").await, "the call never began");
    }
    let began = std::time::Instant::now();
    let stopped = tokio::time::timeout(drain, running.stop()).await;
    let took = began.elapsed();
    drop(frozen);
    assert!(
        stopped.is_ok(),
        "the node was still stopping {took:?} into a silent database (drain {drain:?})"
    );
}

/// A read the silent database leaves unanswered is the store's failure, even when the call
/// had spent most of its time before it: the call runs again once the store answers and is
/// never charged to the module (a module is quarantined for its own failures, never for
/// the store's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_left_unanswered_at_the_end_of_a_call_is_the_stores_failure_not_the_modules() {
    nexum_tests::logs::print_from_env();
    let (server, running) = probe_with_one_second_calls().await;
    let mut changes = running.runtime.lifecycle();

    let frozen = server.freeze();
    let outcome = {
        let mut call = std::pin::pin!(
            running
                .runtime
                .dispatch("probe", tick("sleep 900; count reads"))
        );
        assert!(futures::poll!(call.as_mut()).is_pending());
        // The call given up on as the store's failure, a fresh instance starts to run it
        // again; charged to the module, it traps.
        let next = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                match changes.recv().await.map(|event| event.change) {
                    Ok(change @ (Lifecycle::Started | Lifecycle::Trapped { .. })) => {
                        return change;
                    }
                    Ok(_) => {}
                    Err(e) => panic!("lifecycle: {e}"),
                }
            }
        })
        .await;
        drop(frozen);
        assert_eq!(next.expect("the call did not end"), Lifecycle::Started);
        tokio::time::timeout(Duration::from_secs(30), call)
            .await
            .expect("the call never ran again")
    };
    assert_eq!(outcome.unwrap(), Outcome::Handled);
    let probe = running
        .runtime
        .modules()
        .into_iter()
        .find(|m| m.name == "probe");
    assert_eq!(probe.map(|m| m.totals.trapped), Some(0));
    running.stop().await;
}

/// A read the store answers within its least wait, past the call's deadline, is the
/// call's time running out: the call ends as past its deadline (not the store's failure,
/// and its writes are not committed). The store is held up by a table lock the test
/// releases once the deadline has passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_answered_past_the_deadline_ends_the_call_as_past_its_deadline() {
    nexum_tests::logs::print_from_env();
    let server = tokio::task::block_in_place(nexum_tests::postgres::PostgresServer::start);
    let url = format!("{}/postgres", server.url);
    let mut config = solo_node(url.clone());
    // A least wait of a second.
    config.limits.event_timeout_ms = 2000;
    config.cluster.lease_ms = 60_000;
    config.cluster.renew_ms = 20_000;
    let running = run(vec![TestModule::probe("probe")], config).await;
    let is_running = || running.runtime.modules().iter().any(|m| m.name == "probe");
    assert!(
        wait_until(Duration::from_secs(30), is_running).await,
        "the module never started"
    );
    let mut lines = running.runtime.log_lines();
    let mut changes = running.runtime.lifecycle();
    let lock = TableLock::take(&url, "nexum_entries");
    let trapped = {
        // Its read begins 100 ms before the deadline: it may wait a second.
        let mut call = std::pin::pin!(
            running
                .runtime
                .dispatch("probe", tick("sleep 1900; log reading; count reads"))
        );
        assert!(futures::poll!(call.as_mut()).is_pending());
        assert!(logged(&mut lines, "reading").await, "the call never read");
        // Past the deadline, well within the read's least wait.
        tokio::time::sleep(Duration::from_millis(400)).await;
        drop(lock);
        tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                match changes.recv().await.map(|event| event.change) {
                    Ok(Lifecycle::Trapped { reason }) => return Ok(reason),
                    Ok(Lifecycle::Started) => return Err("ran again as the store's failure"),
                    Ok(_) => {}
                    Err(e) => panic!("lifecycle: {e}"),
                }
            }
        })
        .await
        .expect("the call did not end")
    };
    let reason = trapped.unwrap();
    assert!(reason.contains("deadline of 2000 ms exceeded"), "{reason}");
    running.stop().await;
}

/// An `ACCESS EXCLUSIVE` lock on a table, held by a transaction of its own until dropped:
/// every statement touching the table waits meanwhile.
struct TableLock(
    Option<std::sync::mpsc::Sender<()>>,
    Option<std::thread::JoinHandle<()>>,
);

impl TableLock {
    fn take(url: &str, table: &str) -> Self {
        let (url, table) = (url.to_string(), table.to_string());
        let (locked, taken) = std::sync::mpsc::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let holder = std::thread::spawn(move || {
            let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            let mut tx = client.transaction().unwrap();
            tx.batch_execute(&format!("LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
                .unwrap();
            locked.send(()).unwrap();
            let _ = released.recv();
            tx.commit().unwrap();
        });
        taken
            .recv_timeout(Duration::from_secs(30))
            .expect("the table lock was not taken");
        Self(Some(release), Some(holder))
    }
}

impl Drop for TableLock {
    fn drop(&mut self) {
        drop(self.0.take());
        if let Some(holder) = self.1.take() {
            let _ = holder.join();
        }
    }
}

/// Text only a module's commit statement holds (its turn check): the proxy acts on it.
const MODULE_COMMIT: &str = "AND value = $10";

/// `url` with its server reached through `proxy`.
fn through(proxy: &nexum_tests::proxy::Proxy, url: &str) -> String {
    let (server, database) = url.rsplit_once('/').unwrap();
    let (host, _) = server.rsplit_once(':').unwrap();
    format!("{host}:{}/{database}", proxy.port())
}

/// The server's port in `url`.
fn port_of(url: &str) -> u16 {
    let (server, _) = url.rsplit_once('/').unwrap();
    server.rsplit_once(':').unwrap().1.parse().unwrap()
}

/// The probe's `hits` counter, as stored.
fn hits(url: &str) -> Vec<String> {
    query_texts(
        url,
        "SELECT convert_from(value, 'UTF8') FROM nexum_entries
         WHERE space = 'module:probe' AND key = 'hits'::bytea",
    )
}

/// One node running the probe on a fresh database it reaches through a proxy; the
/// database's own address.
async fn probe_behind_a_proxy() -> (
    nexum_tests::proxy::Proxy,
    String,
    nexum_tests::engine::TestRuntime,
) {
    let url = fresh_database();
    let proxy = nexum_tests::proxy::Proxy::start(port_of(&url)).await;
    let running = run(
        vec![TestModule::probe("probe")],
        solo_node(through(&proxy, &url)),
    )
    .await;
    let is_running = || running.runtime.modules().iter().any(|m| m.name == "probe");
    assert!(
        wait_until(Duration::from_secs(30), is_running).await,
        "the module never started"
    );
    (proxy, url, running)
}

/// A commit can land and its answer be lost on the way back: the node sees the connection
/// fail and cannot tell. It learns whether the commit landed before it runs the call again:
/// the call runs once and its writes land once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_whose_answer_is_lost_is_not_made_again() {
    nexum_tests::logs::print_from_env();
    let (proxy, url, running) = probe_behind_a_proxy().await;
    let mut lines = running.runtime.log_lines();

    proxy.lose_answer_to(MODULE_COMMIT);
    let outcome = running
        .runtime
        .dispatch("probe", tick("log counting; count hits"))
        .await;
    assert_eq!(outcome.unwrap(), Outcome::Handled);
    assert_eq!(proxy.answers_lost(), 1, "no commit's answer was lost");
    assert_eq!(tokio::task::block_in_place(|| hits(&url)), ["1"]);
    let mut runs = 0;
    loop {
        match lines.try_recv() {
            Ok(line) => runs += usize::from(line.message == "counting"),
            Err(tokio::sync::broadcast::error::TryRecvError::Lagged(n)) => {
                panic!("{n} log lines were missed: the calls cannot be counted")
            }
            Err(_) => break,
        }
    }
    assert_eq!(runs, 1, "the call ran again after its commit had landed");
    running.stop().await;
}

/// A commit the node gave up on can still reach the database later, after the call ran
/// again and committed, and after the next call too: it must not land then (here it
/// would set the counter back).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_given_up_on_that_arrives_late_does_not_land() {
    nexum_tests::logs::print_from_env();
    let (proxy, url, running) = probe_behind_a_proxy().await;

    proxy.hold_next(MODULE_COMMIT);
    for _ in 0..2 {
        let outcome = running.runtime.dispatch("probe", tick("count hits")).await;
        assert_eq!(outcome.unwrap(), Outcome::Handled);
    }
    assert_eq!(proxy.requests_held(), 1, "no commit was held back");
    assert_eq!(tokio::task::block_in_place(|| hits(&url)), ["2"]);
    proxy.release_held();
    let answered = wait_until(Duration::from_secs(30), || proxy.held_answered() == 1).await;
    assert!(answered, "the database never answered the late commit");
    // It ran (and answered one row: refused) rather than failing.
    let answers = proxy.held_answers();
    assert!(answers[0].contains("SELECT 1"), "{answers:?}");
    assert_eq!(
        tokio::task::block_in_place(|| hits(&url)),
        ["2"],
        "the late commit landed"
    );
    running.stop().await;
}

/// Waits (30 s at most) for the module to log `message`; whether it did.
async fn logged(
    lines: &mut tokio::sync::broadcast::Receiver<nexum_core::LogLine>,
    message: &str,
) -> bool {
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match lines.recv().await {
                Ok(line) if line.message == message => return,
                Ok(_) => {}
                Err(e) => panic!("log lines: {e}"),
            }
        }
    })
    .await
    .is_ok()
}

fn tick(script: &str) -> Event {
    Event::Tick(Tick {
        fired_at: 0,
        schedule: script.into(),
    })
}

/// A PostgreSQL server of its own, and one node running the probe with calls of 1 s, on a
/// lease of a minute (the node does not stand down in the database's silence).
async fn probe_with_one_second_calls() -> (
    nexum_tests::postgres::PostgresServer,
    nexum_tests::engine::TestRuntime,
) {
    let server = tokio::task::block_in_place(nexum_tests::postgres::PostgresServer::start);
    let mut config = solo_node(format!("{}/postgres", server.url));
    config.limits.event_timeout_ms = 1000;
    config.cluster.lease_ms = 60_000;
    config.cluster.renew_ms = 20_000;
    let running = run(vec![TestModule::probe("probe")], config).await;
    let is_running = || running.runtime.modules().iter().any(|m| m.name == "probe");
    assert!(
        wait_until(Duration::from_secs(30), is_running).await,
        "the module never started"
    );
    (server, running)
}

/// Three modules busy with `script`, three idle; the database freezes just before the busy
/// calls begin. Checks that the idle ones stop within 2.5 s while the busy ones still run, and
/// that every module comes back once the database answers; the busy calls' outcomes.
async fn idle_modules_stop_beside_busy_ones(
    script: &str,
) -> Vec<Result<Outcome, nexum_core::DispatchError>> {
    use nexum_tests::postgres::PostgresServer;

    nexum_tests::logs::print_from_env();
    let server = tokio::task::block_in_place(PostgresServer::start);
    let config = solo_node(format!("{}/postgres", server.url));
    let busy = ["busy-1", "busy-2", "busy-3"];
    let idle = ["idle-1", "idle-2", "idle-3"];
    let modules = busy.iter().chain(&idle).map(|name| TestModule::probe(name));
    let running = run(modules.collect(), config).await;
    let running_now = |name: &str| running.runtime.modules().iter().any(|m| m.name == name);
    let all_running = || busy.iter().chain(&idle).all(|name| running_now(name));
    assert!(
        wait_until(Duration::from_secs(30), all_running).await,
        "the modules never all started"
    );

    let (outcomes, (stopped, after, busy_still_running)) = {
        let mut busy_calls = std::pin::pin!(futures::future::join_all(busy.iter().map(|name| {
            running.runtime.dispatch(
                name,
                Event::Tick(Tick {
                    fired_at: 0,
                    schedule: script.into(),
                }),
            )
        })));
        // The database freezes, then the first poll hands the calls to the modules.
        let frozen_at = std::time::Instant::now();
        let frozen = server.freeze();
        assert!(futures::poll!(busy_calls.as_mut()).is_pending());
        // Watched from this thread rather than a runtime task: a runtime whose threads all wait
        // on the database must fail this, not hang it.
        let watched = tokio::task::block_in_place(|| {
            let idle_stopped = || idle.iter().all(|name| !running_now(name));
            while !idle_stopped() && frozen_at.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(10));
            }
            let after = frozen_at.elapsed();
            let busy_still_running = busy.iter().all(|name| running_now(name));
            drop(frozen);
            (idle_stopped(), after, busy_still_running)
        });
        (busy_calls.await, watched)
    };
    assert!(stopped, "the idle modules still ran 10 s into the silence");
    assert!(
        after < Duration::from_millis(2500),
        "the idle modules stopped {after:?} after the database went silent"
    );
    // The busy modules' calls were under way all along.
    assert!(
        busy_still_running,
        "a busy module stopped before the others"
    );
    assert!(
        wait_until(Duration::from_secs(30), all_running).await,
        "the modules did not come back with their database"
    );
    running.stop().await;
    outcomes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_mid_run_loses_nothing_and_doubles_nothing() {
    use nexum_tests::anvil::{Anvil, CHAIN_ID, hex_u64};
    use nexum_tests::postgres::PostgresServer;

    nexum_tests::logs::print_from_env();
    // A server of this test's own, to restart.
    let mut server = tokio::task::block_in_place(PostgresServer::start);
    let url = format!("{}/postgres", server.url);
    let anvil = Anvil::spawn().await;
    let emitter = anvil.deploy_emitter().await;
    let from = anvil.block_number().await + 1;
    let mut config = solo_node(url.clone());
    config.chains.insert(
        CHAIN_ID,
        nexum_core::ChainConfig::new(&anvil.ws_url()).unwrap(),
    );
    let recorder = TestModule::new(
        "recorder",
        "rec",
        &["local-store", "logging"],
        &format!(
            "[[subscription]]\nkind = \"log\"\nchain_id = {CHAIN_ID}\naddress = \"{emitter}\"\nstart_block = {from}\n"
        ),
    );
    let running = run(vec![recorder], config).await;
    for seq in 0..15 {
        anvil.ping(emitter, seq, b"before").await;
    }
    // The database dies while logs keep coming: commits fail and must not skip anything.
    tokio::task::block_in_place(|| server.kill());
    for seq in 15..30 {
        anvil.ping(emitter, seq, b"during").await;
    }
    wait_for_store_problem(&running.runtime).await;
    tokio::task::block_in_place(|| server.start_again());
    let mut last = 0;
    for seq in 30..45 {
        last = hex_u64(&anvil.ping(emitter, seq, b"after").await["blockNumber"]);
    }
    let delivered = wait_until(Duration::from_secs(60), || {
        handled_through(&url, "rec").is_some_and(|n| n >= last)
    })
    .await;
    assert!(
        delivered,
        "delivery did not resume after the database restart"
    );
    running.stop().await;

    let chain: Vec<(u64, u64)> = anvil
        .log_positions(emitter, from, last)
        .await
        .into_iter()
        .collect();
    let recorded = recorded_logs(&url, "rec");
    assert_eq!(chain.len(), 45);
    assert_eq!(
        recorded, chain,
        "each log once, in order, across the restart"
    );
}
