//! The `cow-api` capability against a mock orderbook: every error mapping, every refused
//! path and method, order validation, and dry runs.

use nexum_core::{ChainConfig, Outcome};
use nexum_tests::anvil::{Anvil, CHAIN_ID};
use nexum_tests::engine::{TestEngine, TestModule, boot, test_config};
use serde_json::{Value, json};
use std::time::Duration;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The `cow-probe` fixture, declaring the test chain (cow-api serves declared chains only).
fn probe() -> TestModule {
    let mut module = TestModule::new(
        "cow-probe",
        "probe",
        &["cow-api", "local-store", "logging"],
        "",
    );
    module.manifest = module.manifest.replace(
        "[capabilities]\n",
        &format!("[capabilities]\nchains = [{CHAIN_ID}]\n"),
    );
    module
}

/// An engine whose chain `CHAIN_ID` has its orderbook at `orderbook_url`.
async fn engine(anvil: &Anvil, orderbook_url: &str, dry_run: bool, timeout_ms: u64) -> TestEngine {
    let mut config = test_config();
    let mut chain = ChainConfig::new(&anvil.ws_url()).unwrap();
    chain.orderbook_url = Some(orderbook_url.to_string());
    chain.dry_run = Some(dry_run);
    chain.request_timeout_ms = timeout_ms;
    config.chains.insert(CHAIN_ID, chain);
    boot(vec![probe()], config).await.unwrap()
}

async fn ask(engine: &TestEngine, command_text: &str) -> Value {
    let key = command_text.split(' ').nth(1).unwrap().to_string();
    let outcome = engine.run("probe", command_text).await;
    assert_eq!(outcome, Outcome::Handled, "{command_text}");
    serde_json::from_str(&engine.read("probe", &key).expect("an answer")).unwrap()
}

/// A well-formed EIP-1271 `OrderCreation`.
fn order_json() -> Value {
    json!({
        "sellToken": "0x0101010101010101010101010101010101010101",
        "buyToken": "0x0202020202020202020202020202020202020202",
        "sellAmount": "1000",
        "buyAmount": "900",
        "validTo": 2_000_000_000u32.min(u32::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 3600).unwrap()),
        "appData": "{}",
        "appDataHash": "0xb48d38f93eaa084033fc5970bf96e559c33c4cdc07d889ab00b4d63f9590739d",
        "feeAmount": "0",
        "kind": "sell",
        "partiallyFillable": false,
        "sellTokenBalance": "erc20",
        "buyTokenBalance": "erc20",
        "signingScheme": "eip1271",
        "signature": "0xabcdef",
        "from": "0x0000000000000000000000000000000000000a11",
    })
}

#[tokio::test]
async fn a_2xx_returns_the_body_and_errors_map_to_the_contract() {
    let anvil = Anvil::spawn().await;
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/version"))
        .respond_with(ResponseTemplate::new(200).set_body_string("1.2.3"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/rejects"))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"errorType": "InvalidQuote", "description": "stale", "data": {"x": 1}}),
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/broken"))
        .respond_with(ResponseTemplate::new(502).set_body_string("bad gateway"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/busy"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "7"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/slow"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
        .mount(&server)
        .await;
    let engine = engine(&anvil, &server.uri(), false, 500).await;

    assert_eq!(
        ask(&engine, &format!("request v {CHAIN_ID} GET api/v1/version")).await,
        json!({ "ok": "1.2.3" })
    );
    assert_eq!(
        ask(&engine, &format!("request r {CHAIN_ID} GET api/v1/rejects")).await,
        json!({ "rejected": { "status": 400, "error_type": "InvalidQuote", "description": "stale", "data": "{\"x\":1}" } })
    );
    assert_eq!(
        ask(&engine, &format!("request b {CHAIN_ID} GET api/v1/broken")).await,
        json!({ "http": { "status": 502, "body": "bad gateway" } })
    );
    assert_eq!(
        ask(&engine, &format!("request l {CHAIN_ID} GET api/v1/busy")).await,
        json!({ "fault": { "rate-limited": 7000 } })
    );
    assert_eq!(
        ask(&engine, &format!("request t {CHAIN_ID} GET api/v1/slow")).await,
        json!({ "fault": "timeout" })
    );
    let unknown = ask(&engine, "request u 31338 GET api/v1/version").await;
    let message = unknown["fault"]["unsupported"].as_str().unwrap();
    assert!(
        message.starts_with("chain 31338 is not declared by this module"),
        "{unknown}"
    );
}

#[tokio::test]
async fn an_unreachable_orderbook_is_unavailable() {
    let anvil = Anvil::spawn().await;
    let port = nexum_tests::anvil::free_port();
    let engine = engine(&anvil, &format!("http://127.0.0.1:{port}"), false, 2_000).await;
    let answer = ask(&engine, &format!("request x {CHAIN_ID} GET api/v1/version")).await;
    assert!(
        answer["fault"]["unavailable"]
            .as_str()
            .unwrap()
            .contains("unreachable"),
        "{answer}"
    );
}

#[tokio::test]
async fn paths_and_methods_outside_the_api_are_denied_before_anything_is_sent() {
    let anvil = Anvil::spawn().await;
    let server = MockServer::start().await;
    let engine = engine(&anvil, &server.uri(), false, 2_000).await;
    for (key, method, path) in [
        ("scheme", "GET", "https://elsewhere.example/api/v1/version"),
        ("host", "GET", "//elsewhere.example/api"),
        ("dots", "GET", "api/../../etc/passwd"),
        ("encoded", "GET", "api/v1/%2e%2e/x"),
        ("control", "GET", "api/v1/\u{7}"),
        ("patch", "PATCH", "api/v1/orders"),
        ("connect", "CONNECT", "api/v1/orders"),
    ] {
        let answer = ask(
            &engine,
            &format!("request {key} {CHAIN_ID} {method} {path}"),
        )
        .await;
        assert!(
            answer["fault"]["denied"]
                .as_str()
                .unwrap()
                .contains("is not allowed"),
            "{key}: {answer}"
        );
    }
    assert!(
        server.received_requests().await.unwrap().is_empty(),
        "a refused request reached the orderbook"
    );
    let bad_body = ask(
        &engine,
        &format!("request body {CHAIN_ID} POST api/v1/quote not-json"),
    )
    .await;
    assert!(
        bad_body["fault"]["invalid-input"]
            .as_str()
            .unwrap()
            .starts_with("the body is not JSON"),
        "{bad_body}"
    );
}

#[tokio::test]
async fn submit_order_validates_then_posts_and_returns_the_uid() {
    let anvil = Anvil::spawn().await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/orders"))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(json!(format!("0x{}", "ab".repeat(56)))),
        )
        .expect(1)
        .mount(&server)
        .await;
    let engine = engine(&anvil, &server.uri(), false, 2_000).await;
    let answer = ask(&engine, &format!("submit ok {CHAIN_ID} {}", order_json())).await;
    assert_eq!(answer, json!({ "ok": format!("0x{}", "ab".repeat(56)) }));
    let posted: Value =
        serde_json::from_slice(&server.received_requests().await.unwrap()[0].body).unwrap();
    assert_eq!(posted["signingScheme"], "eip1271");

    let mut missing = order_json();
    missing.as_object_mut().unwrap().remove("sellAmount");
    let answer = ask(&engine, &format!("submit missing {CHAIN_ID} {missing}")).await;
    assert!(
        answer["fault"]["invalid-input"]
            .as_str()
            .unwrap()
            .contains("missing field `sellAmount`"),
        "{answer}"
    );
    let mut wrong = order_json();
    wrong["kind"] = json!("sideways");
    let answer = ask(&engine, &format!("submit wrong {CHAIN_ID} {wrong}")).await;
    assert!(
        answer["fault"]["invalid-input"]
            .as_str()
            .unwrap()
            .contains("at `kind`"),
        "{answer}"
    );
    let answer = ask(&engine, &format!("submit junk {CHAIN_ID} not an order")).await;
    assert!(
        answer["fault"]["invalid-input"]
            .as_str()
            .unwrap()
            .starts_with("not a valid OrderCreation"),
        "{answer}"
    );
}

#[tokio::test]
async fn submit_order_maps_orderbook_rejections() {
    let anvil = Anvil::spawn().await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/orders"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(json!({"errorType": "DuplicatedOrder", "description": "exists"})),
        )
        .mount(&server)
        .await;
    let engine = engine(&anvil, &server.uri(), false, 2_000).await;
    let answer = ask(&engine, &format!("submit dup {CHAIN_ID} {}", order_json())).await;
    assert_eq!(answer["rejected"]["error_type"], "DuplicatedOrder");
    assert_eq!(answer["rejected"]["status"], 400);
}

#[tokio::test]
async fn a_dry_run_sends_nothing_and_returns_the_local_uid() {
    let anvil = Anvil::spawn().await;
    let server = MockServer::start().await;
    let engine = engine(&anvil, &server.uri(), true, 2_000).await;
    let answer = ask(&engine, &format!("submit dry {CHAIN_ID} {}", order_json())).await;
    let uid = answer["ok"].as_str().unwrap();
    let order: cowprotocol::order_book::OrderCreation =
        serde_json::from_value(order_json()).unwrap();
    assert_eq!(uid, nexum_tests::orderbook::uid_of(&order, CHAIN_ID));
    assert!(server.received_requests().await.unwrap().is_empty());
}
