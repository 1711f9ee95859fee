//! The `chain` capability against a real Anvil: reads, reverts, refusals, batches on the wire.

use alloy_primitives::Address;
use alloy_sol_types::{SolCall, SolError};
use nexum_core::{ChainConfig, EngineConfig, Outcome};
use nexum_tests::anvil::{Anvil, CHAIN_ID, Emitter};
use nexum_tests::engine::{TestEngine, TestModule, boot, test_config};
use nexum_tests::proxy::Proxy;
use serde_json::{Value, json};

/// The chain-probe module declaring `CHAIN_ID` (read-only, no subscription).
fn declared_probe() -> TestModule {
    TestModule {
        guest: "chain-probe",
        manifest: format!(
            "[module]\nname = \"probe\"\nversion = \"0.1.0\"\n\n[capabilities]\nrequired = [\"chain\", \"local-store\", \"logging\"]\nchains = [{CHAIN_ID}]\n"
        ),
    }
}

fn config_for(url: &str) -> EngineConfig {
    let mut config = test_config();
    config
        .chains
        .insert(CHAIN_ID, ChainConfig::new(url).unwrap());
    config
}

async fn ask(engine: &TestEngine, command_text: &str) -> Value {
    let key = command_text.split(' ').nth(1).unwrap().to_string();
    let outcome = engine.run("probe", command_text).await;
    assert_eq!(outcome, Outcome::Handled, "{command_text}");
    serde_json::from_str(&engine.read("probe", &key).expect("an answer")).unwrap()
}

/// Every chain helper of the SDK, from a compiled guest, against Anvil: what passes its
/// native tests under `TestHost` must pass under the real host.
#[tokio::test]
async fn every_sdk_chain_helper_works_against_a_real_node() {
    let anvil = Anvil::spawn().await;
    let emitter = anvil.deploy_emitter().await;
    let from = anvil.block_number().await;
    anvil.ping(emitter, 7, b"one").await;
    anvil.burst(emitter, 2).await;
    let engine = boot(vec![declared_probe()], config_for(&anvil.ws_url()))
        .await
        .unwrap();

    let head = anvil.block_number().await;
    assert_eq!(
        ask(&engine, &format!("block-number n {CHAIN_ID}")).await,
        json!({ "ok": head })
    );
    let typed = ask(&engine, &format!("typed t {CHAIN_ID} eth_chainId []")).await;
    assert_eq!(typed, json!({ "ok": format!("{CHAIN_ID:#x}") }));
    assert_eq!(
        ask(&engine, &format!("count c {CHAIN_ID} {emitter}")).await,
        json!({ "ok": "2" })
    );
    let pings = ask(&engine, &format!("pings p {CHAIN_ID} {emitter} {from}")).await;
    let seqs: Vec<&str> = pings["ok"]
        .as_array()
        .unwrap_or_else(|| panic!("{pings}"))
        .iter()
        .map(|p| p["seq"].as_str().unwrap())
        .collect();
    assert_eq!(seqs, ["7", "0", "1"]);
    for ping in pings["ok"].as_array().unwrap() {
        assert_eq!(
            ping["emitter"].as_str().unwrap().to_lowercase(),
            emitter.to_string().to_lowercase()
        );
        assert_eq!(ping["topics"], 3);
    }
    let batch = ask(
        &engine,
        &format!("batch b {CHAIN_ID} eth_blockNumber [] | eth_chainId null"),
    )
    .await;
    assert_eq!(
        batch,
        json!({ "ok": [{ "ok": format!("{head:#x}") }, { "ok": format!("{CHAIN_ID:#x}") }] })
    );
}

#[tokio::test]
async fn eth_call_returns_data_and_reverts_come_back_decoded() {
    let anvil = Anvil::spawn().await;
    let emitter = anvil.deploy_emitter().await;
    anvil.burst(emitter, 3).await;
    let engine = boot(vec![declared_probe()], config_for(&anvil.ws_url()))
        .await
        .unwrap();

    let count = Emitter::countCall {}.abi_encode();
    let answer = ask(
        &engine,
        &format!("call count {CHAIN_ID} {emitter} 0x{}", hex::encode(count)),
    )
    .await;
    assert_eq!(answer, json!({ "ok": format!("0x{:064x}", 3) }));

    let fail = Emitter::failCall { why: "nope".into() }.abi_encode();
    let answer = ask(
        &engine,
        &format!("call fail {CHAIN_ID} {emitter} 0x{}", hex::encode(fail)),
    )
    .await;
    let expected_data = format!(
        "0x{}",
        hex::encode(alloy_sol_types::Revert::from("nope").abi_encode())
    );
    assert_eq!(answer["reverted"]["data"], expected_data, "{answer}");
    assert_eq!(answer["reverted"]["reason"], "revert: nope");

    // The raw error as the contract defines it: rpc with code, message and revert bytes.
    let custom = Emitter::failCustomCall {
        at: alloy_primitives::U256::from(9),
    }
    .abi_encode();
    let params =
        json!([{ "to": emitter, "input": format!("0x{}", hex::encode(custom)) }, "latest"]);
    let answer = ask(&engine, &format!("raw custom {CHAIN_ID} eth_call {params}")).await;
    let rpc = &answer["err"]["rpc"];
    assert_eq!(rpc["code"], 3, "{answer}");
    let data = rpc["data"].as_str().unwrap();
    let expected = SolError::abi_encode(&Emitter::TooEarly {
        at: alloy_primitives::U256::from(9),
    });
    assert_eq!(data, format!("0x{}", hex::encode(expected)));
}

#[tokio::test]
async fn writes_and_node_administration_are_denied() {
    let anvil = Anvil::spawn().await;
    let engine = boot(vec![declared_probe()], config_for(&anvil.ws_url()))
        .await
        .unwrap();
    for (key, method) in [
        ("send", "eth_sendTransaction"),
        ("sign", "personal_sign"),
        ("admin", "admin_peers"),
        ("mine", "evm_mine"),
    ] {
        let answer = ask(&engine, &format!("raw {key} {CHAIN_ID} {method} []")).await;
        let denied = answer["err"]["fault"]["denied"]
            .as_str()
            .unwrap_or_else(|| panic!("{method}: {answer}"));
        assert!(
            denied.starts_with(&format!("method `{method}` is not allowed")),
            "{denied}"
        );
    }
    assert_eq!(anvil.block_number().await, 0, "nothing reached the node");
}

#[tokio::test]
async fn chains_the_module_did_not_declare_are_unsupported() {
    let anvil = Anvil::spawn().await;
    let engine = boot(vec![declared_probe()], config_for(&anvil.ws_url()))
        .await
        .unwrap();
    let answer = ask(&engine, "raw other 5 eth_blockNumber []").await;
    let message = answer["err"]["fault"]["unsupported"].as_str().unwrap();
    assert!(
        message.starts_with("chain 5 is not declared by this module"),
        "{message}"
    );
}

#[tokio::test]
async fn bad_params_are_invalid_input() {
    let anvil = Anvil::spawn().await;
    let engine = boot(vec![declared_probe()], config_for(&anvil.ws_url()))
        .await
        .unwrap();
    let answer = ask(
        &engine,
        &format!("raw bad {CHAIN_ID} eth_getBalance [not json"),
    )
    .await;
    assert!(
        answer["err"]["fault"]["invalid-input"]
            .as_str()
            .unwrap()
            .contains("not valid JSON"),
        "{answer}"
    );
    let answer = ask(&engine, &format!("raw scalar {CHAIN_ID} eth_getBalance 5")).await;
    assert!(
        answer["err"]["fault"]["invalid-input"]
            .as_str()
            .unwrap()
            .contains("array or object"),
        "{answer}"
    );
}

#[tokio::test]
async fn a_batch_is_one_http_request_with_per_entry_results() {
    let anvil = Anvil::spawn().await;
    anvil.mine(5).await;
    let proxy = Proxy::start(anvil.port()).await;
    let engine = boot(
        vec![declared_probe()],
        config_for(&format!("http://127.0.0.1:{}", proxy.port())),
    )
    .await
    .unwrap();
    proxy.clear_sent();
    let zero = Address::ZERO;
    let answer = ask(
        &engine,
        &format!(
            "batch b {CHAIN_ID} eth_blockNumber [] | eth_sendTransaction [] | eth_getBalance [\"{zero}\",\"latest\"] | eth_getBlockByNumber [\"0xffff\",false] | eth_call [{{\"to\":\"{zero}\"}},\"0xbadtag\"]"
        ),
    )
    .await;
    let results = answer["ok"]
        .as_array()
        .unwrap_or_else(|| panic!("{answer}"));
    assert_eq!(results.len(), 5);
    assert_eq!(results[0]["ok"], "0x5");
    assert!(
        results[1]["err"]["fault"]["denied"].is_string(),
        "{}",
        results[1]
    );
    assert!(results[2]["ok"].is_string());
    assert_eq!(results[3]["ok"], Value::Null);
    assert!(
        results[4]["err"]["rpc"]["code"].is_number(),
        "{}",
        results[4]
    );

    // On the wire: one HTTP POST carrying a JSON array of the four allowed calls.
    let sent = proxy.sent();
    assert_eq!(sent.matches("POST ").count(), 1, "{sent}");
    let body = &sent[sent.find("\r\n\r\n").unwrap() + 4..];
    let batch: Value = serde_json::from_str(body).unwrap();
    let methods: Vec<&str> = batch
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["method"].as_str().unwrap())
        .collect();
    assert_eq!(
        methods,
        [
            "eth_blockNumber",
            "eth_getBalance",
            "eth_getBlockByNumber",
            "eth_call"
        ]
    );
}

#[tokio::test]
async fn a_node_serving_another_chain_is_a_clear_boot_error() {
    let anvil = Anvil::spawn().await;
    let mut config = test_config();
    config
        .chains
        .insert(1, ChainConfig::new(&anvil.ws_url()).unwrap());
    let err = match boot(vec![], config).await {
        Ok(_) => panic!("boot should fail"),
        Err(e) => e.to_string(),
    };
    assert_eq!(
        err,
        format!(
            "chain 1: the node at ws://127.0.0.1:{} serves chain 31337, not 1; fix the rpc_url of [chains.1] in the engine config",
            anvil.port()
        )
    );
}

#[tokio::test]
async fn an_unreachable_node_is_a_clear_boot_error() {
    let port = nexum_tests::anvil::free_port();
    let mut config = test_config();
    config.chains.insert(
        CHAIN_ID,
        ChainConfig::new(&format!("http://127.0.0.1:{port}")).unwrap(),
    );
    let err = match boot(vec![], config).await {
        Ok(_) => panic!("boot should fail"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.starts_with(&format!(
            "chain {CHAIN_ID}: cannot reach the node at http://127.0.0.1:{port}"
        )),
        "{err}"
    );
}
