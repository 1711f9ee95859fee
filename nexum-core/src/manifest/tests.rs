use super::*;
use alloy_primitives::{address, b256};

const FULL: &str = r#"
[module]
name = "twap-keeper"
version = "0.1.0"
component = "sha256:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

[capabilities]
required = ["chain", "local-store", "logging", "cow-api"]

[[subscription]]
kind = "block"
chain_id = 1

[[subscription]]
kind = "log"
chain_id = 1
addresses = ["0xfdaFc9d1902f4e0b84f65F49f244b32b31013b74"]
event = "ConditionalOrderCreated(address,(address,bytes32,bytes))"
start_block = 19000000

[[subscription]]
kind = "cron"
schedule = "*/5 * * * *"

[limits]
fuel_per_event = 500000000

[config]
owner = "0xabc"
"#;

fn parse(text: &str) -> Result<ModuleManifest, ConfigError> {
    ModuleManifest::parse(Path::new("mods/module.toml"), text)
}

/// Parses `FULL` with `edit` applied and returns the error as displayed.
fn error_of(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

#[test]
fn parses_the_design_example() {
    let m = parse(FULL).unwrap();
    assert_eq!(m.name.as_str(), "twap-keeper");
    assert_eq!(m.capabilities.len(), 4);
    assert_eq!(m.subscriptions.len(), 3);
    let Subscription::Log(log) = &m.subscriptions[1] else {
        panic!("expected a log subscription")
    };
    assert_eq!(
        log.filter.addresses,
        vec![address!("0xfdaFc9d1902f4e0b84f65F49f244b32b31013b74")]
    );
    // keccak256("ConditionalOrderCreated(address,(address,bytes32,bytes))")
    assert_eq!(
        log.filter.topics,
        vec![vec![b256!(
            "0x2cceac5555b0ca45a3744ced542f54b56ad2eb45e521962372eef212a2cbf361"
        )]]
    );
    assert_eq!(log.start_block, Some(19_000_000));
    assert_eq!(m.limits.fuel_per_event, Some(500_000_000));
    assert_eq!(m.config, vec![("owner".to_string(), "0xabc".to_string())]);
    assert_eq!(m.chains().into_iter().collect::<Vec<_>>(), vec![1]);
}

#[test]
fn single_address_and_topic_alternatives() {
    let m = parse(
        r#"
        [module]
        name = "x"
        version = "1"
        [[subscription]]
        kind = "log"
        chain_id = 5
        address = "0x00000000000000000000000000000000000000aa"
        topics = [[], ["0x000000000000000000000000000000000000000000000000000000000000000a", "0x000000000000000000000000000000000000000000000000000000000000000b"]]
        "#,
    )
    .unwrap();
    let Subscription::Log(log) = &m.subscriptions[0] else {
        panic!()
    };
    assert_eq!(log.filter.addresses.len(), 1);
    assert!(log.filter.topics[0].is_empty());
    assert_eq!(log.filter.topics[1].len(), 2);
}

#[test]
fn unknown_top_level_key_names_it() {
    let err = error_of(&format!("{FULL}\n[extra]\nx = 1\n"));
    assert!(err.starts_with("mods/module.toml:"), "{err}");
    assert!(err.contains("unknown field `extra`"), "{err}");
}

#[test]
fn unknown_subscription_key_names_the_field() {
    let err = error_of(
        "[module]\nname = \"a\"\nversion = \"1\"\n[[subscription]]\nkind = \"block\"\nchain_id = 1\nchian = 2\n",
    );
    assert!(err.contains("`subscription[0].chian`"), "{err}");
    assert!(err.contains("unknown field `chian`"), "{err}");
}

#[test]
fn unknown_kind_is_refused() {
    let err =
        error_of("[module]\nname = \"a\"\nversion = \"1\"\n[[subscription]]\nkind = \"mempool\"\n");
    assert_eq!(
        err,
        "mods/module.toml: `subscription[0].kind`: unknown kind `mempool`: expected `block`, `log` or `cron`"
    );
}

#[test]
fn field_of_another_kind_is_refused() {
    let err = error_of(
        "[module]\nname = \"a\"\nversion = \"1\"\n[[subscription]]\nkind = \"cron\"\nschedule = \"* * * * *\"\nchain_id = 1\n",
    );
    assert_eq!(
        err,
        "mods/module.toml: `subscription[0].chain_id`: not allowed in a `cron` subscription"
    );
}

#[test]
fn malformed_values_name_field_and_reason() {
    let base = "[module]\nname = \"a\"\nversion = \"1\"\n[[subscription]]\n";
    let cases = [
        (
            "kind = \"log\"\nchain_id = 1\naddresses = [\"0x1234\"]\n",
            "`subscription[0].addresses[0]`: invalid address \"0x1234\"",
        ),
        (
            "kind = \"log\"\nchain_id = 1\naddress = \"0xfdafc9d1902f4e0b84f65F49f244b32b31013b74\"\n",
            "not a valid EIP-55 checksum",
        ),
        (
            "kind = \"log\"\nchain_id = 1\ntopics = [[\"0xzz\"]]\n",
            "`subscription[0].topics[0][0]`: invalid topic",
        ),
        (
            "kind = \"log\"\nchain_id = 1\ntopics = [[], [], [], [], []]\n",
            "`subscription[0].topics`: at most 4 topic positions",
        ),
        (
            "kind = \"log\"\nchain_id = 1\nevent = \"Transfer(address,,)\"\n",
            "`subscription[0].event`: invalid event signature",
        ),
        (
            "kind = \"log\"\nchain_id = 1\n",
            "`subscription[0].addresses`: a log subscription needs",
        ),
        (
            "kind = \"cron\"\nschedule = \"*/5 * *\"\n",
            "`subscription[0].schedule`: invalid cron expression",
        ),
        ("kind = \"block\"\n", "`subscription[0].chain_id`: missing"),
        (
            "kind = \"block\"\nchain_id = -1\n",
            "`subscription[0].chain_id`",
        ),
    ];
    for (body, expected) in cases {
        let err = error_of(&format!("{base}{body}"));
        assert!(err.contains(expected), "for {body:?}: {err}");
        assert!(err.starts_with("mods/module.toml: "), "{err}");
    }
}

#[test]
fn module_section_is_validated() {
    let err = error_of("[module]\nname = \"Bad Name\"\nversion = \"1\"\n");
    assert!(err.contains("`module.name`: invalid module name"), "{err}");
    let err = error_of("[module]\nname = \"a\"\nversion = \"1\"\ncomponent = \"md5:00\"\n");
    assert!(
        err.contains("`module.component`: expected \"sha256:"),
        "{err}"
    );
    let err = error_of("[module]\nname = \"a\"\n");
    assert!(err.contains("missing field `version`"), "{err}");
    let err = error_of(
        "[module]\nname = \"a\"\nversion = \"1\"\n[capabilities]\nrequired = [\"filesystem\"]\n",
    );
    assert!(
        err.contains("`capabilities.required[0]`: unknown capability `filesystem`"),
        "{err}"
    );
    let err = error_of("[module]\nname = \"a\"\nversion = \"1\"\n[limits]\nfuel = 1\n");
    assert!(err.contains("`limits.fuel`: unknown field `fuel`"), "{err}");
}

#[test]
fn syntax_errors_give_line_and_column() {
    let err = error_of("[module]\nname = \"a\nversion = \"1\"\n");
    assert!(
        err.starts_with("mods/module.toml: invalid TOML at line 2"),
        "{err}"
    );
}

#[test]
fn locates_current_and_legacy_manifests() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("m.wasm");
    assert!(ManifestLocation::beside(&wasm).is_err());
    std::fs::write(dir.path().join(LEGACY_MANIFEST_FILE), "").unwrap();
    assert!(ManifestLocation::beside(&wasm).unwrap().legacy);
    std::fs::write(dir.path().join(MANIFEST_FILE), "").unwrap();
    let found = ManifestLocation::beside(&wasm).unwrap();
    assert!(!found.legacy);
    assert_eq!(found.path, dir.path().join(MANIFEST_FILE));
}

#[test]
fn extra_chains_are_declared_chains() {
    let m = parse("[module]\nname = \"a\"\nversion = \"1\"\n[capabilities]\nrequired = [\"chain\"]\nchains = [100]\n[[subscription]]\nkind = \"block\"\nchain_id = 1\n")
        .unwrap();
    assert_eq!(m.chains().into_iter().collect::<Vec<_>>(), vec![1, 100]);
}

#[test]
fn start_block_is_a_number_or_latest() {
    let log = |start: &str| {
        parse(&format!(
            "[module]\nname = \"m\"\nversion = \"1\"\n[[subscription]]\nkind = \"log\"\nchain_id = 1\naddress = \"0x0000000000000000000000000000000000000001\"\nstart_block = {start}\n"
        ))
    };
    let start = |manifest: ModuleManifest| match &manifest.subscriptions[0] {
        Subscription::Log(log) => log.start_block,
        other => panic!("{other:?}"),
    };
    assert_eq!(start(log("19000000").unwrap()), Some(19_000_000));
    assert_eq!(start(log("\"latest\"").unwrap()), None);
    let error = log("\"earliest\"").unwrap_err().to_string();
    assert!(
        error.contains("`subscription[0].start_block`")
            && error.contains("\"earliest\" is not a block"),
        "{error}"
    );
}

#[test]
fn the_seed_formats_event_signature_is_topic_0() {
    let seed = |extra: &str| {
        format!(
            "[module]\nname = \"x\"\nversion = \"1\"\n[[subscription]]\nkind = \"log\"\nchain_id = 1\n\
             address = \"0xfdaFc9d1902f4e0b84f65F49f244b32b31013b74\"\n{extra}"
        )
    };
    let by_hash = parse(&seed(
        "event_signature = \"0x2cceac5555b0ca45a3744ced542f54b56ad2eb45e521962372eef212a2cbf361\"\n",
    ))
    .unwrap();
    let by_text = parse(&seed(
        "event = \"ConditionalOrderCreated(address,(address,bytes32,bytes))\"\n",
    ))
    .unwrap();
    assert_eq!(by_hash.subscriptions, by_text.subscriptions);

    let both = error_of(&seed(
        "event = \"Ping(uint256)\"\nevent_signature = \"0x2cceac5555b0ca45a3744ced542f54b56ad2eb45e521962372eef212a2cbf361\"\n",
    ));
    assert!(
        both.contains(
            "`subscription[0].event_signature`: `event` and `event_signature` both set topic 0"
        ),
        "{both}"
    );
    let short = error_of(&seed("event_signature = \"0x1234\"\n"));
    assert!(
        short.contains("`subscription[0].event_signature`"),
        "{short}"
    );
}
