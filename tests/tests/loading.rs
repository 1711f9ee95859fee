//! Loading modules: capability checks, digests, manifests against the engine, and that
//! nothing starts half-loaded.

use nexum_core::{ChainConfig, Outcome};
use nexum_tests::engine::{TestModule, boot, boot_at, command, test_config};
use nexum_tests::{components, guests};
use sha2::{Digest, Sha256};

async fn boot_error(modules: Vec<TestModule>, config: nexum_core::EngineConfig) -> String {
    match boot(modules, config).await {
        Ok(_) => panic!("boot should have failed"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn importing_an_undeclared_capability_is_refused_at_load() {
    let module = TestModule::new("chain-caller", "caller", &["logging"], "");
    let err = boot_error(vec![module], test_config()).await;
    assert!(err.contains(".toml: `capabilities.required`: "), "{err}");
    assert!(
        err.contains("imports `nexum:host/chain@0.2.1`, which needs the `chain` capability; add \"chain\" to [capabilities] required"),
        "{err}"
    );
}

#[tokio::test]
async fn a_declared_capability_loads_and_unconfigured_chains_answer_unsupported() {
    let module = TestModule::new("chain-caller", "caller", &["chain", "logging"], "");
    let engine = boot(vec![module], test_config()).await.unwrap();
    let outcome = engine.run("caller", "").await;
    assert_eq!(outcome, Outcome::Handled);
}

#[tokio::test]
async fn a_component_that_does_not_match_its_pinned_sha256_is_refused() {
    let wrong = format!("sha256:{}", "00".repeat(32));
    let mut module = TestModule::probe("pinned");
    module.manifest = module.manifest.replace(
        "version = \"0.1.0\"",
        &format!("version = \"0.1.0\"\ncomponent = \"{wrong}\""),
    );
    let err = boot_error(vec![module], test_config()).await;
    assert!(
        err.contains("`module.component`: sha256 mismatch: the manifest pins sha256:0000"),
        "{err}"
    );
    assert!(err.contains("probe.wasm is sha256:"), "{err}");
}

#[tokio::test]
async fn a_component_matching_its_pinned_sha256_loads() {
    let digest = format!(
        "sha256:{}",
        hex::encode(Sha256::digest(guests::wasm_bytes("probe")))
    );
    let mut module = TestModule::probe("pinned");
    module.manifest = module.manifest.replace(
        "version = \"0.1.0\"",
        &format!("version = \"0.1.0\"\ncomponent = \"{digest}\""),
    );
    let engine = boot(vec![module], test_config()).await.unwrap();
    assert_eq!(engine.runtime.modules()[0].component.to_string(), digest);
}

#[tokio::test]
async fn a_subscription_to_an_unconfigured_chain_is_refused() {
    let module = TestModule::new(
        "probe",
        "p",
        &["local-store", "logging"],
        "[[subscription]]\nkind = \"block\"\nchain_id = 10\n",
    );
    let err = boot_error(vec![module], test_config()).await;
    assert!(
        err.contains("`subscription[0].chain_id`: chain 10 has no RPC configured in the engine"),
        "{err}"
    );
}

#[tokio::test]
async fn a_subscription_to_a_configured_chain_is_admitted() {
    let anvil = nexum_tests::anvil::Anvil::spawn().await;
    let mut config = test_config();
    config
        .chains
        .insert(31337, ChainConfig::new(&anvil.ws_url()).unwrap());
    let module = TestModule::new(
        "probe",
        "p",
        &["local-store", "logging"],
        "[[subscription]]\nkind = \"block\"\nchain_id = 31337\n",
    );
    boot(vec![module], config).await.unwrap();
}

#[tokio::test]
async fn asking_for_more_than_the_engine_allows_is_refused() {
    let module = TestModule::new(
        "probe",
        "greedy",
        &["local-store", "logging"],
        "[limits]\nmemory_bytes = 1000000000000\n",
    );
    let err = boot_error(vec![module], test_config()).await;
    assert!(
        err.contains(
            "`limits.memory_bytes`: asks for 1000000000000 but the engine allows at most 67108864"
        ),
        "{err}"
    );
}

#[tokio::test]
async fn duplicate_module_names_are_refused() {
    let err = boot_error(
        vec![TestModule::probe("twin"), TestModule::probe("twin")],
        test_config(),
    )
    .await;
    assert!(
        err.contains("`module.name`: `twin` is already the name of the module in"),
        "{err}"
    );
}

#[tokio::test]
async fn bytes_that_are_not_a_binary_component_are_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("module.toml");
    std::fs::write(&manifest, "[module]\nname = \"m\"\nversion = \"1\"\n").unwrap();
    let cases: [(&str, Vec<u8>, &str); 4] = [
        (
            "fake.wasm",
            b"not wasm at all".to_vec(),
            "not a WebAssembly binary (components are loaded in binary form only; build for wasm32-wasip2)",
        ),
        (
            "text.wasm",
            b"(component)".to_vec(),
            "not a WebAssembly binary (components are loaded in binary form only; build for wasm32-wasip2)",
        ),
        (
            "empty.wasm",
            Vec::new(),
            "not a WebAssembly binary (components are loaded in binary form only; build for wasm32-wasip2)",
        ),
        (
            "core.wasm",
            wat::parse_str("(module)").unwrap(),
            "a core WebAssembly module, not a component (build for wasm32-wasip2, or wrap it with `wasm-tools component new`)",
        ),
    ];
    for (name, bytes, reason) in cases {
        let file = dir.path().join(name);
        std::fs::write(&file, bytes).unwrap();
        let mut config = test_config();
        config.state_dir = dir.path().join("state");
        let builder = nexum_host::RuntimeBuilder::new(config)
            .module_file(&file, &manifest)
            .unwrap();
        let err = match builder.start().await {
            Ok(_) => panic!("{name} should have been refused"),
            Err(e) => e.to_string(),
        };
        assert_eq!(
            err,
            format!(
                "{}: not a valid WebAssembly component: {reason}",
                file.display()
            )
        );
    }
}

#[tokio::test]
async fn nothing_starts_when_one_module_fails_to_load() {
    let counting = || {
        TestModule::new(
            "probe",
            "counting",
            &["local-store", "logging"],
            "[config]\ninit = \"count boots\"\n",
        )
    };
    let broken = TestModule::new("chain-caller", "broken", &["logging"], "");
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    // The broken module comes second: the first was already loaded when boot failed.
    let err = match boot_at(&state, dir.path(), vec![counting(), broken], test_config()).await {
        Ok(_) => panic!("boot should have failed"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("capabilities.required"), "{err}");
    assert!(
        !state.exists(),
        "a failed boot left a state directory behind"
    );

    // `counting` never ran its init: booting it alone in the same place counts the first boot.
    let engine = boot_at(&state, dir.path(), vec![counting()], test_config())
        .await
        .unwrap();
    let boots = engine.runtime.read("counting", "boots").unwrap();
    assert_eq!(boots.as_deref(), Some(&b"1"[..]));
}

#[tokio::test]
async fn a_failed_start_leaves_no_state_directory_cache_or_lock() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let unreachable = || {
        let mut config = test_config();
        let dead = nexum_tests::anvil::free_port();
        config.chains.insert(
            31337,
            nexum_core::ChainConfig::new(&format!("http://127.0.0.1:{dead}")).unwrap(),
        );
        config
    };
    let module = || TestModule::probe("p");

    // A fresh directory: the node is unreachable once modules are compiled and the store
    // is open; nothing of that stays.
    assert!(
        boot_at(&state, dir.path(), vec![module()], unreachable())
            .await
            .is_err()
    );
    assert!(!state.exists(), "a failed boot left {}", state.display());

    // An existing directory stays, unlocked: the next start (or `nexum store`) opens it.
    let engine = boot_at(&state, dir.path(), vec![module()], test_config())
        .await
        .unwrap();
    engine.runtime.shutdown().await;
    assert!(
        boot_at(&state, dir.path(), vec![module()], unreachable())
            .await
            .is_err()
    );
    assert!(state.exists());
    nexum_host::Ledger::open(&state).expect("no lock left behind");
}

#[tokio::test]
async fn a_module_whose_init_fails_is_quarantined_and_the_others_start() {
    let failing = TestModule::new(
        "probe",
        "failing",
        &["local-store", "logging"],
        "[config]\ninit = \"fail\"\n",
    );
    let engine = boot(vec![failing, TestModule::probe("fine")], test_config())
        .await
        .unwrap();
    let modules = engine.runtime.modules();
    assert_eq!(modules[0].status, nexum_core::ModuleStatus::Quarantined);
    assert_eq!(modules[1].status, nexum_core::ModuleStatus::Running);
    assert_eq!(
        engine.runtime.dispatch("failing", command("")).await,
        Err(nexum_core::DispatchError::Closed)
    );
    assert_eq!(
        engine.runtime.dispatch("fine", command("set a 1")).await,
        Ok(Outcome::Handled)
    );
}

/// A module built against `nexum:host@0.2.0`, whose `local-store` had only `get`, `set`,
/// `delete` and `list-keys`: it imports the old interface (here just `get`) by its old
/// version, and links against today's additive 0.2.1.
const LEGACY_0_2_0_STORE: &str = r#"  (type $store-0-2-0 (instance
    (alias outer 1 $fault (type $outer-fault))
    (export "fault" (type $f (eq $outer-fault)))
    (export "get" (func (param "key" string) (result (result (option (list u8)) (error $f)))))
  ))
  (import "nexum:host/local-store@0.2.0" (instance $store (type $store-0-2-0)))
"#;

#[tokio::test]
async fn a_module_built_against_the_0_2_0_contract_still_links() {
    let component = wat::parse_str(components::module_text(LEGACY_0_2_0_STORE))
        .expect("the legacy component is valid");
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config();
    config.state_dir = dir.path().join("state");
    let manifest = "[module]\nname = \"legacy\"\nversion = \"0.1.0\"\n\
        [capabilities]\nrequired = [\"local-store\"]\n";
    let runtime = nexum_host::Runtime::builder(config)
        .module_bytes(component, manifest, "legacy.toml")
        .unwrap()
        .start()
        .await
        .expect("a 0.2.0 module links against the 0.2.1 host");
    let tick = nexum_core::Event::Tick(nexum_core::Tick {
        fired_at: 0,
        schedule: "x".into(),
    });
    assert_eq!(runtime.dispatch("legacy", tick).await, Ok(Outcome::Handled));
    runtime.shutdown().await;
}

#[tokio::test]
async fn require_pins_holds_for_modules_an_embedder_adds_in_code() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config();
    config.state_dir = dir.path().join("state");
    config.require_pins = true;
    let manifest = "[module]\nname = \"probe\"\nversion = \"0.1.0\"\n[capabilities]\nrequired = [\"local-store\", \"logging\"]\n";
    let unpinned = nexum_host::RuntimeBuilder::new(config.clone())
        .module_bytes(guests::wasm_bytes("probe"), manifest, "probe.toml")
        .unwrap()
        .start()
        .await;
    let err = unpinned
        .err()
        .expect("an unpinned module is refused")
        .to_string();
    assert!(
        err.contains("`engine.require_pins`: module `probe` has no sha256 pin"),
        "{err}"
    );
    let bytes = guests::wasm_bytes("probe");
    let pinned = nexum_core::ModuleSpec {
        pin: Some(nexum_core::Pin {
            digest: nexum_core::ComponentDigest::of(&bytes),
            file: "service.rs".into(),
            field: "probe".into(),
        }),
        wasm: nexum_core::WasmSource::Bytes(bytes),
        manifest: nexum_core::ModuleManifest::parse(std::path::Path::new("probe.toml"), manifest)
            .unwrap(),
    };
    let runtime = nexum_host::RuntimeBuilder::new(config)
        .module(pinned)
        .start()
        .await
        .expect("a pinned module starts");
    runtime.shutdown().await;
}

/// Modules start side by side: a slow `init` holds up no other module's (the slow one is
/// first in the configuration).
#[tokio::test(flavor = "current_thread")]
async fn a_module_slow_to_start_holds_up_no_other_at_boot() {
    let (captured, _guard) = nexum_tests::logs::capture();
    let slow = TestModule::new(
        "probe",
        "slow",
        &["local-store", "logging"],
        "[config]\ninit = \"sleep 2000; log slow up\"\n",
    );
    let quick = TestModule::new(
        "probe",
        "quick",
        &["local-store", "logging"],
        "[config]\ninit = \"log quick up\"\n",
    );
    let engine = boot(vec![slow, quick], test_config()).await.unwrap();
    let ups: Vec<String> = captured
        .lines()
        .into_iter()
        .filter(|l| l.message.ends_with(" up"))
        .map(|l| l.message)
        .collect();
    assert_eq!(ups, ["quick up", "slow up"]);
    // The configuration's order still holds.
    let names: Vec<String> = engine
        .runtime
        .modules()
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(names, ["slow", "quick"]);
    engine.runtime.shutdown().await;
}
