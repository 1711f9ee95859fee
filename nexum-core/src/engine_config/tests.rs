use super::*;
use crate::manifest::ModuleManifest;

const EXAMPLE: &str = r#"
[engine]
state_dir = "./data"
log_level = "info"
log_format = "json"
metrics_addr = "127.0.0.1:9100"

[chains.1]
rpc_url = "wss://node.example/v1/${API_KEY}"
orderbook_url = "https://orderbook.example"

[limits]
fuel_per_event = 1000000000
memory_bytes = 67108864
event_timeout_ms = 30000

[[modules]]
path = "modules/twap/twap.wasm"
manifest = "modules/twap/module.toml"

[[modules]]
path = "/abs/other.wasm"
"#;

fn env(name: &str) -> Option<String> {
    (name == "API_KEY").then(|| "k3y".to_string())
}

fn parse(text: &str) -> Result<EngineConfig, ConfigError> {
    EngineConfig::parse(Path::new("conf/engine.toml"), text, &env)
}

#[test]
fn parses_the_design_example() {
    let c = parse(EXAMPLE).unwrap();
    assert_eq!(c.state_dir, Path::new("conf/./data"));
    assert_eq!(c.log_format, LogFormat::Json);
    assert_eq!(c.metrics_addr, Some("127.0.0.1:9100".parse().unwrap()));
    assert_eq!(c.chains[&1].rpc_url, "wss://node.example/v1/k3y");
    assert_eq!(c.limits.memory_bytes, 67_108_864);
    assert_eq!(c.modules[0].path, Path::new("conf/modules/twap/twap.wasm"));
    assert_eq!(
        c.modules[0].manifest.as_deref(),
        Some(Path::new("conf/modules/twap/module.toml"))
    );
    assert_eq!(c.modules[1].path, Path::new("/abs/other.wasm"));
    assert_eq!(c.modules[1].manifest, None);
}

#[test]
fn an_empty_file_gets_defaults() {
    let c = parse("").unwrap();
    assert_eq!(c.state_dir, Path::new("conf/data"));
    assert_eq!(c.limits, Limits::default());
    assert!(c.chains.is_empty());
}

#[test]
fn errors_name_file_field_and_reason() {
    let cases = [
        (
            "[chains.1]\nrpc_url = \"${MISSING}\"\n",
            "conf/engine.toml: `chains.1.rpc_url`: environment variable `MISSING` is not set",
        ),
        (
            "[chains.1]\nrpc_url = \"ftp://x\"\n",
            "conf/engine.toml: `chains.1.rpc_url`: unsupported scheme `ftp`",
        ),
        (
            "[chains.1]\nrpc_url = \"not a url\"\n",
            "conf/engine.toml: `chains.1.rpc_url`: invalid URL",
        ),
        (
            "[chains.mainnet]\nrpc_url = \"ws://x\"\n",
            "conf/engine.toml: `chains.mainnet`: chain ids are positive integers",
        ),
        (
            "[chains.1]\nrpc = \"ws://x\"\n",
            "conf/engine.toml: `chains.1.rpc`: unknown field `rpc`",
        ),
        (
            "[engine]\nmetrics_addr = \"localhost\"\n",
            "conf/engine.toml: `engine.metrics_addr`: expected host:port",
        ),
        (
            "[engine]\nlog_format = \"xml\"\n",
            "conf/engine.toml: `engine.log_format`: unknown variant `xml`",
        ),
        (
            "[limits]\nfuel_per_event = 0\n",
            "conf/engine.toml: `limits.fuel_per_event`: must be greater than 0",
        ),
        (
            "[limits]\nmemory = 1\n",
            "conf/engine.toml: `limits.memory`: unknown field `memory`",
        ),
        (
            "[[modules]]\nmanifest = \"m.toml\"\n",
            "conf/engine.toml: `modules[0]`: needs `path` (a component file) or `source` (an OCI reference or an HTTPS address)",
        ),
        (
            "[[modules]]\npath = \"m.wasm\"\nsource = \"oci://r.example/k/m:1\"\n",
            "conf/engine.toml: `modules[0]`: set `path` (a component file) or `source` (an OCI reference or an HTTPS address), not both",
        ),
        (
            "[[modules]]\nsource = \"oci://r.example/k/m:1\"\nmanifest = \"m.toml\"\n",
            "conf/engine.toml: `modules[0].sha256`: required with `source`: a fetched component is trusted by its digest",
        ),
        (
            "[[modules]]\nsource = \"https://cdn.example/m.wasm\"\nsha256 = \"sha256:00000000000000000000000000000000000000000000000000000000000000ff\"\n",
            "conf/engine.toml: `modules[0].manifest`: required with `source`",
        ),
        (
            "[[modules]]\nsource = \"ftp://x/m.wasm\"\n",
            "conf/engine.toml: `modules[0].source`: unsupported scheme `ftp`",
        ),
        (
            "[engin]\n",
            "conf/engine.toml: `engin`: unknown field `engin`",
        ),
        (
            "[[modules]]\npath = \"m.wasm\"\nsha256 = \"abc\"\n",
            "conf/engine.toml: `modules[0].sha256`: expected \"sha256:<64 hex digits>\", found \"abc\"",
        ),
        (
            "[engine]\nrequire_pins = true\n[[modules]]\npath = \"a.wasm\"\nsha256 = \"sha256:00000000000000000000000000000000000000000000000000000000000000ff\"\n[[modules]]\npath = \"b.wasm\"\n",
            "conf/engine.toml: `modules[1].sha256`: missing: engine.require_pins is on, so every module needs the sha256 of its component here (`nexum hash b.wasm` prints it)",
        ),
    ];
    for (text, expected) in cases {
        let err = parse(text).unwrap_err().to_string();
        assert!(
            err.starts_with(expected),
            "for {text:?}:\n  got      {err}\n  expected {expected}"
        );
    }
}

#[test]
fn admit_checks_chains_and_limits() {
    let engine = parse("[chains.1]\nrpc_url = \"ws://127.0.0.1:8545\"\n").unwrap();
    let manifest = |body: &str| {
        ModuleManifest::parse(
            Path::new("m/module.toml"),
            &format!("[module]\nname = \"m\"\nversion = \"1\"\n{body}"),
        )
        .unwrap()
    };

    let ok = manifest(
        "[[subscription]]\nkind = \"block\"\nchain_id = 1\n[limits]\nfuel_per_event = 5\n",
    );
    assert_eq!(engine.admit(&ok).unwrap().fuel_per_event, 5);

    let unknown_chain = manifest("[[subscription]]\nkind = \"block\"\nchain_id = 10\n");
    assert_eq!(
        engine.admit(&unknown_chain).unwrap_err().to_string(),
        "m/module.toml: `subscription[0].chain_id`: chain 10 has no RPC configured in the engine (add [chains.10] with an rpc_url to engine.toml; for one module run on its own: --chain 10=URL)"
    );

    let greedy = manifest("[limits]\nmemory_bytes = 999999999999\n");
    assert_eq!(
        engine.admit(&greedy).unwrap_err().to_string(),
        "m/module.toml: `limits.memory_bytes`: asks for 999999999999 but the engine allows at most 67108864"
    );
}

#[test]
fn boot_plan_reads_manifests_and_warns_on_the_legacy_name() {
    let dir = tempfile::tempdir().unwrap();
    let engine_file = dir.path().join("engine.toml");
    std::fs::create_dir(dir.path().join("a")).unwrap();
    std::fs::create_dir(dir.path().join("b")).unwrap();
    std::fs::write(
        dir.path().join("a/module.toml"),
        "[module]\nname = \"a\"\nversion = \"1\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("b/nexum.toml"),
        "[module]\nname = \"b\"\nversion = \"1\"\n",
    )
    .unwrap();
    let text = "[[modules]]\npath = \"a/a.wasm\"\n[[modules]]\npath = \"b/b.wasm\"\n";
    let config = EngineConfig::parse(&engine_file, text, &env).unwrap();
    let (plan, warnings) = crate::plan::BootPlan::from_config(&config).unwrap();
    assert_eq!(plan.modules.len(), 2);
    assert_eq!(plan.modules[1].manifest.name.as_str(), "b");
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0].contains("`nexum.toml` is deprecated"),
        "{}",
        warnings[0]
    );

    let missing =
        EngineConfig::parse(&engine_file, "[[modules]]\npath = \"c/c.wasm\"\n", &env).unwrap();
    let err = crate::plan::BootPlan::from_config(&missing)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`modules[0].manifest`: no module.toml beside"),
        "{err}"
    );
}

#[test]
fn dry_run_is_global_with_per_chain_overrides() {
    let c = parse(
        "[engine]\ndry_run = true\n[chains.1]\nrpc_url = \"ws://x\"\n[chains.100]\nrpc_url = \"ws://y\"\ndry_run = false\n",
    )
    .unwrap();
    assert!(c.is_dry_run(1));
    assert!(!c.is_dry_run(100));
    assert!(c.is_dry_run(5));
}

#[test]
fn logs_are_cross_checked_unless_a_chain_turns_it_off() {
    let c = parse(
        "[chains.1]\nrpc_url = \"ws://x\"\n[chains.100]\nrpc_url = \"ws://y\"\ncross_check_logs = false\n",
    )
    .unwrap();
    assert!(c.chains[&1].cross_check_logs);
    assert!(!c.chains[&100].cross_check_logs);
    let err = parse("[chains.1]\nrpc_url = \"ws://x\"\ncross_check_logs = \"no\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("cross_check_logs"), "{err}");
}

#[test]
fn durability_is_buffered_by_default_and_can_be_sync() {
    let c = parse("").unwrap();
    assert_eq!(
        (c.durability, c.durability_window_ms),
        (Durability::Buffered, DEFAULT_DURABILITY_WINDOW_MS)
    );
    let c = parse("[engine]\ndurability = \"sync\"\n").unwrap();
    assert_eq!(c.durability, Durability::Sync);
    let c = parse("[engine]\ndurability_window_ms = 50\n").unwrap();
    assert_eq!(c.durability_window_ms, 50);
    let zero = parse("[engine]\ndurability_window_ms = 0\n")
        .unwrap_err()
        .to_string();
    assert!(
        zero.starts_with("conf/engine.toml: `engine.durability_window_ms`: must be greater than 0"),
        "{zero}"
    );
    let unknown = parse("[engine]\ndurability = \"always\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        unknown.contains("`engine.durability`") && unknown.contains("`buffered` or `sync`"),
        "{unknown}"
    );
}

#[test]
fn the_compiler_is_winch_on_x86_64_unless_another_is_asked_for() {
    let default = if cfg!(target_arch = "x86_64") {
        Compiler::Winch
    } else {
        Compiler::Cranelift
    };
    assert_eq!(parse("").unwrap().compiler, default);
    for (name, compiler) in [
        ("winch", Compiler::Winch),
        ("cranelift", Compiler::Cranelift),
    ] {
        let c = parse(&format!("[engine]\ncompiler = \"{name}\"\n")).unwrap();
        assert_eq!(c.compiler, compiler);
    }
    let unknown = parse("[engine]\ncompiler = \"llvm\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        unknown.contains("`engine.compiler`") && unknown.contains("`cranelift` or `winch`"),
        "{unknown}"
    );
}

#[test]
fn the_admin_api_needs_a_token_off_loopback_and_never_shows_it() {
    let loopback = parse("[admin]\naddr = \"127.0.0.1:9101\"\n").unwrap();
    assert_eq!(
        loopback.admin,
        Some(AdminConfig {
            addr: "127.0.0.1:9101".parse().unwrap(),
            token: None
        })
    );
    let error = |text: &str| parse(text).unwrap_err().to_string();
    assert_eq!(
        error("[admin]\naddr = \"0.0.0.0:9101\"\n"),
        "conf/engine.toml: `admin.token`: required when the admin API listens on 0.0.0.0:9101, which is not a loopback address (set token = \"${NEXUM_ADMIN_TOKEN}\")"
    );
    assert_eq!(
        error("[admin]\naddr = \"0.0.0.0:9101\"\ntoken = \"short\"\n"),
        "conf/engine.toml: `admin.token`: must be at least 16 characters long"
    );
    assert_eq!(
        error("[admin]\naddr = \"localhost\"\n"),
        "conf/engine.toml: `admin.addr`: expected host:port such as \"127.0.0.1:9101\", found \"localhost\""
    );
    let open =
        parse("[admin]\naddr = \"0.0.0.0:9101\"\ntoken = \"${API_KEY}-and-more-text\"\n").unwrap();
    let shown = format!("{open:?}");
    assert!(!shown.contains("k3y-and-more-text"), "{shown}");
    assert_eq!(
        open.admin.unwrap().token.as_deref(),
        Some("k3y-and-more-text")
    );
}

#[test]
fn a_shared_store_is_a_postgres_url_shown_without_its_password() {
    let config = parse(
        "[engine]\nstore = \"postgres://nexum:${API_KEY}@db.internal:5432/nexum\"\n[cluster]\nnode = \"a-1\"\nlease_ms = 3000\n",
    )
    .unwrap();
    let store = config.store.clone().unwrap();
    assert_eq!(
        store.connection_string(),
        "postgres://nexum:k3y@db.internal:5432/nexum"
    );
    assert!(!format!("{config:?}").contains("k3y"));
    assert_eq!(store.to_string(), "postgres://db.internal:5432/…");
    assert_eq!(
        config.cluster,
        ClusterConfig {
            node: Some("a-1".into()),
            lease_ms: 3000,
            renew_ms: 750
        }
    );
    let error = |text: &str| parse(text).unwrap_err().to_string();
    assert!(
        error("[engine]\nstore = \"mysql://db\"\n")
            .starts_with("conf/engine.toml: `engine.store`: unsupported scheme `mysql`"),
        "{}",
        error("[engine]\nstore = \"mysql://db\"\n")
    );
    assert_eq!(
        error("[cluster]\nlease_ms = 3000\nrenew_ms = 2000\n"),
        "conf/engine.toml: `cluster.renew_ms`: must be greater than 0 and at most a third of lease_ms (3000)"
    );
    assert_eq!(
        error("[cluster]\nnode = \"a b\"\n"),
        "conf/engine.toml: `cluster.node`: use 1-128 characters of letters, digits, `-`, `_` and `.`"
    );
}
