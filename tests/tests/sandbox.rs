//! The sandbox against a hostile module author. Each test mounts one class of attack with
//! more than one payload, from a compiled guest (or, for attacks a compiler would not
//! produce, a component written by hand), and fails while the hole is open:
//!
//! 1. `cow-api` reaching hosts other than the orderbook;
//! 2. secrets (API keys in node and orderbook URLs) reaching a module, a log, `/healthz`,
//!    `/metrics` or an error;
//! 3. state-changing orderbook requests leaving the host in a dry run;
//! 4. deletes and churn growing the state directory past the store quota;
//! 5. memory beyond `memory_bytes` through many memories or many instances;
//! 6. a module's own error text escaping the log size;
//! 7. batches, answers, the metrics listener, undeclared chains, forged log lines, and
//!    log bytes beyond the budget.
//!
//! Figures (state directory size, log bytes) are printed, to compare before and after.

use nexum_core::{ChainConfig, EngineConfig, Event, ModuleStatus, Outcome, Tick};
use nexum_host::Runtime;
use nexum_tests::anvil::{Anvil, CHAIN_ID, free_port};
use nexum_tests::components;
use nexum_tests::engine::{TestModule, TestRuntime, run, test_config};
use nexum_tests::logs::capture;
use nexum_tests::proxy::Proxy;
use nexum_tests::telemetry::wait_for_metric;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn tick(command: &str) -> Event {
    Event::Tick(Tick {
        fired_at: 0,
        schedule: command.to_string(),
    })
}

/// Runs `command` in `module` and returns the JSON it stored under its second word.
async fn ask(runtime: &TestRuntime, module: &str, command: &str) -> Value {
    let outcome = runtime.runtime.dispatch(module, tick(command)).await;
    assert_eq!(
        outcome,
        Ok(Outcome::Handled),
        "{}",
        command.chars().take(120).collect::<String>()
    );
    let key = command.split(' ').nth(1).unwrap();
    serde_json::from_str(&runtime.read(module, key).expect("an answer was stored")).unwrap()
}

/// A `cow-probe` named `cow` that declares the test chain.
fn cow_probe() -> TestModule {
    let mut module = TestModule::new(
        "cow-probe",
        "cow",
        &["cow-api", "local-store", "logging"],
        "",
    );
    module.manifest = module.manifest.replace(
        "[capabilities]\n",
        &format!("[capabilities]\nchains = [{CHAIN_ID}]\n"),
    );
    module
}

/// A `chain-probe` named `chain` that declares the test chain, with extra `[limits]`.
fn chain_probe(limits: &str) -> TestModule {
    let mut module = TestModule::new(
        "chain-probe",
        "chain",
        &["chain", "local-store", "logging"],
        limits,
    );
    module.manifest = module.manifest.replace(
        "[capabilities]\n",
        &format!("[capabilities]\nchains = [{CHAIN_ID}]\n"),
    );
    module
}

fn attacker(extra: &str) -> TestModule {
    TestModule::new("attacker", "attacker", &["local-store", "logging"], extra)
}

fn chain_config(rpc_url: &str, orderbook_url: Option<String>, dry_run: bool) -> ChainConfig {
    let mut chain = ChainConfig::new(rpc_url).unwrap();
    chain.orderbook_url = orderbook_url;
    chain.dry_run = Some(dry_run);
    chain.request_timeout_ms = 2_000;
    chain
}

/// A server that answers 200 to anything and records what reached it.
async fn recording_server(body: &str) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_body_string(body))
        .mount(&server)
        .await;
    server
}

// 1. cow-api reaches only the orderbook.

#[tokio::test]
async fn cow_api_never_reaches_another_host_or_leaves_the_api_prefix() {
    let anvil = Anvil::spawn().await;
    let elsewhere = recording_server("secret from elsewhere").await;
    let orderbook = MockServer::start().await;
    // The orderbook redirects one path to the other host.
    Mock::given(wiremock::matchers::path("/prefix/api/v1/redirect"))
        .respond_with(
            ResponseTemplate::new(302)
                .insert_header("location", format!("{}/stolen", elsewhere.uri()).as_str()),
        )
        .mount(&orderbook)
        .await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_body_string("orderbook"))
        .mount(&orderbook)
        .await;
    let elsewhere_port = elsewhere.address().port();

    // An https base: `http:host:port/…` is then an absolute URL to another host.
    let mut config = test_config();
    config.chains.insert(
        CHAIN_ID,
        chain_config(
            &anvil.ws_url(),
            Some("https://127.0.0.1:9/prefix/".into()),
            false,
        ),
    );
    let runtime = run(vec![cow_probe()], config).await;
    for (i, payload) in [
        format!("GET http:127.0.0.1:{elsewhere_port}/stolen"),
        format!("POST http:127.0.0.1:{elsewhere_port}/ {{\"method\":\"eth_sendTransaction\"}}"),
        format!("GET HTTP:127.0.0.1:{elsewhere_port}/stolen"),
    ]
    .iter()
    .enumerate()
    {
        let answer = ask(
            &runtime,
            "cow",
            &format!("request k{i} {CHAIN_ID} {payload}"),
        )
        .await;
        assert!(answer["fault"]["denied"].is_string(), "{payload}: {answer}");
    }
    runtime.stop().await;

    // An http base with a path prefix: encoded and plain dot segments, and redirects.
    let mut config = test_config();
    config.chains.insert(
        CHAIN_ID,
        chain_config(
            &anvil.ws_url(),
            Some(format!("{}/prefix/", orderbook.uri())),
            false,
        ),
    );
    let runtime = run(vec![cow_probe()], config).await;
    for (i, path) in [
        "api/%2e%2e/%2e%2e/stolen",
        "api/v1/../../../stolen",
        "./../stolen",
    ]
    .iter()
    .enumerate()
    {
        let answer = ask(
            &runtime,
            "cow",
            &format!("request p{i} {CHAIN_ID} GET {path}"),
        )
        .await;
        assert!(answer["fault"]["denied"].is_string(), "{path}: {answer}");
    }
    let redirected = ask(
        &runtime,
        "cow",
        &format!("request r {CHAIN_ID} GET api/v1/redirect"),
    )
    .await;
    assert_eq!(redirected["http"]["status"], 302, "{redirected}");
    let fine = ask(
        &runtime,
        "cow",
        &format!("request f {CHAIN_ID} GET api/v1/version"),
    )
    .await;
    assert_eq!(fine["ok"], "orderbook");
    runtime.stop().await;

    let reached: Vec<String> = elsewhere
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| format!("{} {}", r.method, r.url))
        .collect();
    assert!(
        reached.is_empty(),
        "requests reached another host: {reached:?}"
    );
    for request in orderbook.received_requests().await.unwrap_or_default() {
        assert!(
            request.url.path().starts_with("/prefix/"),
            "a request left the API prefix: {}",
            request.url
        );
    }
}

// 2. Secrets never leave the config.

#[tokio::test]
async fn api_keys_in_node_and_orderbook_urls_appear_nowhere() {
    const NODE_KEY: &str = "NODEKEY0123456789";
    const BOOK_KEY: &str = "BOOKKEY9876543210";
    let (logs, _guard) = capture();
    let anvil = Anvil::spawn().await;
    let proxy = Proxy::start(anvil.port()).await;
    let dead = free_port();

    let mut config = test_config();
    config.metrics_addr = Some("127.0.0.1:0".parse().unwrap());
    config.chains.insert(
        CHAIN_ID,
        chain_config(
            &format!("http://127.0.0.1:{}/?apikey={NODE_KEY}", proxy.port()),
            Some(format!("http://127.0.0.1:{dead}/v3/{BOOK_KEY}/")),
            false,
        ),
    );
    let runtime = run(vec![chain_probe(""), cow_probe()], config).await;
    let working = ask(
        &runtime,
        "chain",
        &format!("raw before {CHAIN_ID} eth_blockNumber []"),
    )
    .await;
    assert!(working["ok"].is_string(), "{working}");

    proxy.cut();
    let chain_fault = ask(
        &runtime,
        "chain",
        &format!("raw after {CHAIN_ID} eth_blockNumber []"),
    )
    .await;
    assert!(
        chain_fault["err"]["fault"]["unavailable"].is_string(),
        "{chain_fault}"
    );
    let cow_fault = ask(
        &runtime,
        "cow",
        &format!("request k {CHAIN_ID} GET api/v1/version"),
    )
    .await;
    assert!(cow_fault["fault"]["unavailable"].is_string(), "{cow_fault}");

    let base = format!("http://{}", runtime.runtime.metrics_addr().unwrap());
    let health = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert_eq!(health.status(), 503);
    let health = health.text().await.unwrap();
    assert!(health.contains("chain 31337"), "{health}");
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    runtime.runtime.shutdown().await;

    // A boot that cannot reach its node, with the key in the path.
    let mut config = test_config();
    config.state_dir = tempfile::tempdir().unwrap().keep().join("state");
    config.chains.insert(
        CHAIN_ID,
        chain_config(
            &format!("http://127.0.0.1:{dead}/v3/{NODE_KEY}"),
            None,
            false,
        ),
    );
    let boot_error = match Runtime::builder(config).start().await {
        Err(e) => e.to_string(),
        Ok(_) => panic!("booted against a dead node"),
    };
    assert!(
        boot_error.contains(&format!("127.0.0.1:{dead}")),
        "{boot_error}"
    );

    // Config errors that would echo a substituted value.
    let env = |name: &str| (name == "NODE_KEY").then(|| NODE_KEY.to_string());
    let mut config_errors = Vec::new();
    for text in [
        "[chains.1]\nrpc_url = \"ftp://node.example/${NODE_KEY}\"",
        "[chains.1]\nrpc_url = \"https://node.example/${NODE_KEY}\"\nrequest_timeout_ms = \"${NODE_KEY}\"",
        "[chains.1]\nrpc_url = \"https://node.example/v3/${NODE_KEY}\"\norderbook_url = \"file:///${NODE_KEY}\"",
    ] {
        let error = EngineConfig::parse(Path::new("engine.toml"), text, &env).unwrap_err();
        config_errors.push(error.to_string());
    }

    let mut everything: Vec<String> = logs.lines().iter().map(|l| l.text()).collect();
    everything.extend([
        chain_fault.to_string(),
        cow_fault.to_string(),
        health,
        metrics,
        boot_error,
    ]);
    everything.extend(config_errors);
    for text in &everything {
        assert!(
            !text.contains(NODE_KEY) && !text.contains(BOOK_KEY),
            "a key leaked: {text}"
        );
    }
    println!(
        "secrets: checked {} log lines, 2 module faults, /healthz, /metrics, a boot error and 3 config errors",
        logs.lines().len()
    );
}

// 3. A dry run sends nothing that changes state.

#[tokio::test]
async fn a_dry_run_sends_no_state_changing_request_of_any_method() {
    let anvil = Anvil::spawn().await;
    let orderbook = recording_server("{}").await;
    let mut config = test_config();
    config.chains.insert(
        CHAIN_ID,
        chain_config(&anvil.ws_url(), Some(orderbook.uri()), true),
    );
    let runtime = run(vec![cow_probe()], config).await;
    for method in ["POST", "PUT", "DELETE", "post"] {
        let answer = ask(
            &runtime,
            "cow",
            &format!("request {method}x {CHAIN_ID} {method} api/v1/orders {{}}"),
        )
        .await;
        assert!(
            answer["fault"]["denied"]
                .as_str()
                .is_some_and(|m| m.contains("dry run")),
            "{method}: {answer}"
        );
    }
    let read = ask(
        &runtime,
        "cow",
        &format!("request g {CHAIN_ID} GET api/v1/version"),
    )
    .await;
    assert_eq!(read["ok"], "{}");
    runtime.stop().await;
    let methods: Vec<String> = orderbook
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| r.method.to_string())
        .collect();
    assert_eq!(methods, ["GET"], "only the read may leave in a dry run");
}

// 4. The store quota bounds what a module leaves on disk.

fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let meta = entry.metadata().unwrap();
        total += if meta.is_dir() {
            dir_bytes(&entry.path())
        } else {
            meta.len()
        };
    }
    total
}

#[tokio::test]
async fn deletes_and_churn_cannot_grow_the_state_past_the_quota() {
    let mut config = test_config();
    config.limits.store_total_bytes = 1024 * 1024;
    config.limits.fuel_per_event = 20_000_000_000;
    let runtime = run(vec![attacker("")], config).await;
    let state = runtime.dir.path().join("state");
    let before = dir_bytes(&state);
    for attack in [
        "delete-missing 10000 1000",
        "delete-missing 10000 999",
        "churn 5000 1000",
        "churn 5000 900",
    ] {
        let outcome = runtime.runtime.dispatch("attacker", tick(attack)).await;
        assert_eq!(outcome, Ok(Outcome::Handled), "{attack}");
    }
    let runtime_dir = runtime.stop().await;
    let after = dir_bytes(&runtime_dir.path().join("state"));
    println!(
        "store: state dir {} KiB before, {} KiB after ~40 MB of deletes and churn under a 1 MiB quota",
        before / 1024,
        after / 1024
    );
    assert!(
        after < before + 4 * 1024 * 1024,
        "the state dir grew by {} bytes under a 1 MiB quota",
        after - before
    );
}

// 5. memory_bytes bounds the whole module.

/// A component with the exports of a nexum module whose instantiation creates `hoards`
/// extra core instances, each with a memory of `pages` 64 KiB pages.
fn hoarding_component(hoards: usize, pages: u32) -> Vec<u8> {
    let text = String::from_utf8(hoarding_component_text(hoards, pages)).unwrap();
    wat::parse_str(&text).expect("the hoarding component is valid")
}

/// The text of [`hoarding_component`].
fn hoarding_component_text(hoards: usize, pages: u32) -> Vec<u8> {
    let mut body = format!("  (core module $hoard (memory {pages}))\n");
    for _ in 0..hoards {
        body.push_str("  (core instance (instantiate $hoard))\n");
    }
    components::module_text(&body).into_bytes()
}

async fn start_hoarder(component: Vec<u8>, memory_bytes: u64) -> (Runtime, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config();
    config.state_dir = dir.path().join("state");
    config.limits.memory_bytes = memory_bytes;
    let manifest = "[module]\nname = \"hoarder\"\nversion = \"0.1.0\"\n";
    let runtime = Runtime::builder(config)
        .module_bytes(component, manifest, "hoarder.toml")
        .unwrap()
        .start()
        .await
        .unwrap();
    (runtime, dir)
}

#[tokio::test]
async fn memory_bytes_bounds_all_memories_and_instances_of_a_module_together() {
    const MIB: u64 = 1024 * 1024;
    // Within the limit, the hand-made module is a working module: the control case.
    let (runtime, _dir) = start_hoarder(hoarding_component(2, 16), 16 * MIB).await;
    assert_eq!(runtime.modules()[0].status, ModuleStatus::Running);
    assert_eq!(
        runtime.dispatch("hoarder", tick("x")).await,
        Ok(Outcome::Handled)
    );
    runtime.shutdown().await;

    // Thirty memories of 4 MiB each under a 16 MiB limit: each alone fits, together not.
    let (runtime, _dir) = start_hoarder(hoarding_component(30, 64), 16 * MIB).await;
    let info = &runtime.modules()[0];
    assert_eq!(info.status, ModuleStatus::Quarantined, "{info:?}");
    runtime.shutdown().await;

    // Many small instances: the count itself is bounded.
    let (runtime, _dir) = start_hoarder(hoarding_component(500, 1), 64 * MIB).await;
    assert_eq!(runtime.modules()[0].status, ModuleStatus::Quarantined);
    runtime.shutdown().await;

    // A 64-bit table (whose overflowing grows once fooled the accounting): not loaded.
    let wat = String::from_utf8(hoarding_component_text(1, 1))
        .unwrap()
        .replace(
            "(core module $hoard (memory 1))",
            "(core module $hoard (table i64 1 funcref))",
        );
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config();
    config.state_dir = dir.path().join("state");
    let refused = Runtime::builder(config)
        .module_bytes(
            wat::parse_str(&wat).expect("valid text"),
            "[module]\nname = \"wide\"\nversion = \"0.1.0\"\n",
            "wide.toml",
        )
        .unwrap()
        .start()
        .await;
    assert!(
        refused.is_err(),
        "a component with a 64-bit table was loaded"
    );
    println!(
        "memory: peak RSS of the test process {} KiB",
        nexum_tests::memory::own_peak_rss_kib()
    );
}

// 6. A module's error text is cut like a log line.

#[tokio::test]
async fn a_module_error_text_is_cut_before_it_is_logged_or_dead_lettered() {
    let (logs, _guard) = capture();
    let mut config = test_config();
    config.supervision.retry_attempts = 2;
    config.metrics_addr = Some("127.0.0.1:0".parse().unwrap());
    let runtime = run(vec![attacker("")], config).await;
    let mut reasons = Vec::new();
    for bytes in [1024 * 1024, 100_000] {
        let outcome = runtime
            .runtime
            .dispatch("attacker", tick(&format!("fail-with {bytes}")))
            .await
            .unwrap();
        let Outcome::Failed(reason) = outcome else {
            panic!("expected a failure, got {outcome:?}")
        };
        reasons.push(reason);
    }
    let letters = runtime.runtime.dead_letters(Some("attacker")).unwrap();
    // Each is counted for alerting (other tests of this process may add to the count).
    let counted = wait_for_metric(
        runtime.runtime.metrics_addr().unwrap(),
        "nexum_dead_letters_total",
        &[("module", "attacker")],
        2.0,
        Duration::from_secs(10),
    )
    .await;
    assert!(
        counted,
        "nexum_dead_letters_total did not count the dead letters"
    );
    let logged: usize = logs.lines().iter().map(|l| l.text().len()).sum();
    let lettered: usize = letters.iter().map(|l| l.reason.len()).sum();
    println!(
        "error text: {logged} bytes logged and {lettered} bytes dead-lettered for errors of 1 MiB and 100 kB, 3 attempts each"
    );
    runtime.stop().await;
    for reason in &reasons {
        assert!(reason.len() < 9 * 1024, "{} bytes of reason", reason.len());
        assert!(reason.contains("bytes in all"), "{}", &reason[..100]);
    }
    assert_eq!(letters.len(), 2);
    assert!(lettered < 18 * 1024, "{lettered} bytes dead-lettered");
    assert!(logged < 128 * 1024, "{logged} bytes logged");
}

#[tokio::test]
async fn a_module_failing_every_event_keeps_a_bounded_number_of_dead_letters() {
    let runtime = run(vec![attacker("")], test_config()).await;
    for i in 0..1_005 {
        let attack = if i < 5 { "fail-with 5" } else { "fail-with 10" };
        runtime
            .runtime
            .dispatch("attacker", tick(attack))
            .await
            .unwrap();
    }
    let kept = runtime.runtime.dead_letters(Some("attacker")).unwrap();
    runtime.stop().await;
    assert_eq!(kept.len(), 1_000);
    // The oldest went first.
    assert!(kept.iter().all(|l| l.reason.contains("EEEEEEEEEE")));
}

/// Dead letters are read and replayed a page at a time (a module may keep a thousand, each
/// with its whole event): every letter once, in order, and a replay hands back the letters
/// there when it began, not those it records anew.
#[tokio::test]
async fn dead_letters_are_paged_and_a_replay_hands_each_back_once() {
    let runtime = run(vec![attacker("")], test_config()).await;
    for _ in 0..250 {
        let outcome = runtime
            .runtime
            .dispatch("attacker", tick("fail-with 5"))
            .await
            .unwrap();
        assert!(matches!(outcome, Outcome::Failed(_)), "{outcome:?}");
    }
    let paged = |runtime: &nexum_host::Runtime| {
        let (mut letters, mut pages, mut after) = (Vec::new(), 0, None::<String>);
        loop {
            let page = runtime
                .dead_letter_page(Some("attacker"), after.as_deref())
                .unwrap();
            assert!(page.letters.len() <= 100, "{} letters", page.letters.len());
            pages += 1;
            letters.extend(page.letters);
            match page.next {
                Some(next) => after = Some(next),
                None => return (letters, pages),
            }
        }
    };
    let (letters, pages) = paged(&runtime.runtime);
    assert_eq!(pages, 3);
    assert_eq!(
        letters,
        runtime.runtime.dead_letters(Some("attacker")).unwrap()
    );
    let ids: std::collections::BTreeSet<_> = letters.iter().map(|l| l.id.clone()).collect();
    assert_eq!(ids.len(), 250);

    // Still failing: each letter fails again once and is recorded anew.
    // A replay that handed back the letters it records anew would never end.
    let replay = runtime.runtime.replay_dead_letters("attacker");
    let report = tokio::time::timeout(std::time::Duration::from_secs(60), replay)
        .await
        .expect("the replay did not end")
        .unwrap();
    assert_eq!(
        (report.handled, report.failed_again, report.kept),
        (0, 250, 0)
    );
    let (after_replay, _) = paged(&runtime.runtime);
    runtime.stop().await;
    assert_eq!(after_replay.len(), 250);
    assert!(
        after_replay.iter().all(|l| !ids.contains(&l.id)),
        "a letter there before the replay was not handed back"
    );
}

// 7. The smaller holes.

#[tokio::test]
async fn batches_and_answers_are_capped() {
    let anvil = Anvil::spawn().await;
    let mut config = test_config();
    config
        .chains
        .insert(CHAIN_ID, chain_config(&anvil.ws_url(), None, false));
    let runtime = run(vec![chain_probe("[limits]\nanswer_bytes = 400\n")], config).await;
    let requests_before = runtime.runtime.chain_status(CHAIN_ID).unwrap().requests;
    for entries in [101, 5000] {
        let calls = vec!["eth_blockNumber []"; entries].join(" | ");
        let answer = ask(
            &runtime,
            "chain",
            &format!("batch b{entries} {CHAIN_ID} {calls}"),
        )
        .await;
        assert!(
            answer["err"]["fault"]["invalid-input"]
                .as_str()
                .is_some_and(|m| m.contains("rpc_batch_max")),
            "{entries} entries: {}",
            answer.to_string().chars().take(300).collect::<String>()
        );
    }
    assert_eq!(
        runtime.runtime.chain_status(CHAIN_ID).unwrap().requests,
        requests_before,
        "a refused batch must not reach the node"
    );
    let params = format!("[\"{}\"]", "0".repeat(2 * 1024 * 1024));
    let big = ask(
        &runtime,
        "chain",
        &format!("raw big {CHAIN_ID} eth_getBalance {params}"),
    )
    .await;
    assert!(
        big["err"]["fault"]["invalid-input"]
            .as_str()
            .is_some_and(|m| m.contains("request_bytes")),
        "{}",
        big.to_string().chars().take(300).collect::<String>()
    );
    for params in ["[\"latest\", true]", "[\"0x0\", true]"] {
        let answer = ask(
            &runtime,
            "chain",
            &format!("raw a {CHAIN_ID} eth_getBlockByNumber {params}"),
        )
        .await;
        assert!(
            answer["err"]["fault"]["unavailable"]
                .as_str()
                .is_some_and(|m| m.contains("answer_bytes")),
            "{answer}"
        );
    }
    let small = ask(
        &runtime,
        "chain",
        &format!("raw s {CHAIN_ID} eth_chainId []"),
    )
    .await;
    assert_eq!(small["ok"], "0x7a69");
    runtime.stop().await;
}

#[tokio::test]
async fn the_metrics_listener_drops_clients_that_never_finish_their_headers() {
    let mut config = test_config();
    config.metrics_addr = Some("127.0.0.1:0".parse().unwrap());
    let runtime = run(vec![TestModule::probe("p")], config).await;
    let addr = runtime.runtime.metrics_addr().unwrap();

    let silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut trickle = tokio::net::TcpStream::connect(addr).await.unwrap();
    trickle
        .write_all(b"GET /healthz HTTP/1.1\r\n")
        .await
        .unwrap();
    let mut idle: Vec<_> = Vec::new();
    for _ in 0..40 {
        idle.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    // Every slot is taken: a newcomer is told so at once, not left waiting.
    let full = tokio::time::timeout(Duration::from_secs(5), async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        answer
    })
    .await
    .expect("a full endpoint answers at once");
    assert!(full.starts_with("HTTP/1.1 503"), "{full}");

    let deadline = Duration::from_secs(15);
    let closed = |mut stream: tokio::net::TcpStream, feed: bool| async move {
        let mut buf = [0u8; 256];
        loop {
            if feed && stream.write_all(b"X").await.is_err() {
                return true;
            }
            match tokio::time::timeout(Duration::from_millis(500), stream.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) | Err(_) => {}
            }
        }
    };
    let (silent_closed, trickle_closed) = tokio::join!(
        tokio::time::timeout(deadline, closed(silent, false)),
        tokio::time::timeout(deadline, closed(trickle, true)),
    );
    assert!(silent_closed.is_ok(), "a silent client was never dropped");
    assert!(
        trickle_closed.is_ok(),
        "a trickling client was never dropped"
    );
    // Once the idle clients are dropped, scrapes are served again.
    let served = tokio::time::timeout(deadline, async {
        loop {
            if let Ok(health) = reqwest::get(format!("http://{addr}/healthz")).await
                && health.status() == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(
        served.is_ok(),
        "scrapes were not served after the idle clients left"
    );
    drop(idle);
    runtime.stop().await;
}

#[tokio::test]
async fn cow_api_serves_only_the_chains_a_module_declared() {
    let anvil = Anvil::spawn().await;
    let orderbook = recording_server("orderbook").await;
    let mut config = test_config();
    config.chains.insert(
        CHAIN_ID,
        chain_config(&anvil.ws_url(), Some(orderbook.uri()), false),
    );
    let mut undeclared = TestModule::new(
        "cow-probe",
        "cow",
        &["cow-api", "local-store", "logging"],
        "",
    );
    undeclared.manifest.push('\n');
    let runtime = run(vec![undeclared], config).await;
    // Chain 1 and 100 have production orderbooks; the test chain has the mock. None is
    // declared by this module.
    for chain in [1, 100, CHAIN_ID] {
        let answer = ask(
            &runtime,
            "cow",
            &format!("request c{chain} {chain} GET api/v1/version"),
        )
        .await;
        assert!(
            answer["fault"]["unsupported"].is_string(),
            "chain {chain}: {answer}"
        );
    }
    runtime.stop().await;
    assert!(orderbook.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn module_log_lines_cannot_forge_host_lines_or_exceed_the_byte_budget() {
    let (logs, _guard) = capture();
    let runtime = run(vec![attacker("")], test_config()).await;
    let mut lines = runtime.runtime.log_lines();
    assert_eq!(
        runtime
            .runtime
            .dispatch("attacker", tick("forge-log"))
            .await,
        Ok(Outcome::Handled)
    );
    let forged = lines.recv().await.unwrap().message;
    let forged_logs: Vec<String> = logs
        .of_module("attacker")
        .into_iter()
        .map(|l| l.message)
        .collect();

    let before: usize = logs
        .of_module("attacker")
        .iter()
        .map(|l| l.message.len())
        .sum();
    for attack in ["log-bytes 1000 8000", "log-bytes 20000 100"] {
        assert_eq!(
            runtime.runtime.dispatch("attacker", tick(attack)).await,
            Ok(Outcome::Handled)
        );
    }
    let logged: usize = logs
        .of_module("attacker")
        .iter()
        .map(|l| l.message.len())
        .sum::<usize>()
        - before;
    println!("log budget: {logged} bytes logged of ~10 MB attempted");
    for line in forged_logs.iter().chain([&forged]) {
        assert!(!line.contains('\n') && !line.contains('\u{1b}'), "{line:?}");
    }
    // One second's burst of bytes (32 KiB by default) plus refills while it runs, and the
    // "dropped" notices.
    assert!(logged < 256 * 1024, "{logged} bytes logged");
    runtime.stop().await;
}

// WASI: nothing granted.

#[tokio::test]
async fn wasi_grants_no_files_environment_arguments_or_sockets() {
    // Something listens: a refusal can only come from the sandbox, not from the port.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let runtime = run(vec![attacker("")], test_config()).await;
    let got = ask(&runtime, "attacker", &format!("escape e {port}")).await;
    runtime.stop().await;
    let reached = tokio::time::timeout(Duration::from_millis(100), listener.accept()).await;
    assert!(reached.is_err(), "the module connected to the listener");
    for attempt in [
        "read_passwd",
        "read_relative",
        "write_tmp",
        "list_cwd",
        "tcp",
        "udp",
        "dns",
    ] {
        assert!(
            got[attempt]
                .as_str()
                .is_some_and(|s| s.starts_with("refused")),
            "{attempt}: {got}"
        );
    }
    assert_eq!(got["env"], 0, "{got}");
    assert_eq!(got["args"], 0, "{got}");
    assert!(
        got["clock_secs"].as_u64().unwrap() > 1_700_000_000,
        "clocks are granted: {got}"
    );
}
