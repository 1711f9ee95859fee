//! `nexum new`: a module scaffolded from each template builds for wasm32-wasip2, passes its
//! native unit tests, and runs under `nexum run` without edits.

use nexum_tests::anvil::Anvil;
use nexum_tests::guests;
use nexum_tests::process::Process;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const NEXUM: &str = env!("CARGO_BIN_EXE_nexum");

fn cargo() -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    // Share compiled dependencies with the guest build of the test suite.
    command.env("CARGO_TARGET_DIR", guests::guest_target_dir());
    command
}

/// Scaffolds `name` from `template` in `dir`, builds it, runs its tests; returns its wasm.
fn scaffold(dir: &Path, name: &str, template: &str) -> std::path::PathBuf {
    let output = Command::new(NEXUM)
        .args(["new", name, "--template", template, "--dir"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let root = dir.join(name);
    // Resolve dependencies to the versions the workspace is tested with.
    std::fs::copy(
        guests::workspace_root().join("Cargo.lock"),
        root.join("Cargo.lock"),
    )
    .unwrap();
    let build = cargo()
        .current_dir(&root)
        .args(["build", "--quiet", "--target", "wasm32-wasip2", "--release"])
        .output()
        .unwrap();
    assert!(
        build.status.success(),
        "{template}: build failed:\n{}",
        String::from_utf8_lossy(&build.stderr)
    );
    let test = cargo()
        .current_dir(&root)
        .args(["test", "--quiet"])
        .output()
        .unwrap();
    assert!(
        test.status.success(),
        "{template}: tests failed:\n{}{}",
        String::from_utf8_lossy(&test.stdout),
        String::from_utf8_lossy(&test.stderr)
    );
    guests::guest_target_dir()
        .join("wasm32-wasip2/release")
        .join(format!("{}.wasm", name.replace('-', "_")))
}

/// Runs `nexum run <wasm> module.toml [chain]` until a log line contains every one of
/// `needles`.
fn runs_until(root: &Path, wasm: &Path, chain: Option<String>, needles: &[&str]) {
    let mut command = Command::new(NEXUM);
    command
        .current_dir(root)
        .arg("run")
        .arg(wasm)
        .arg("module.toml")
        .env_remove("RUST_LOG");
    if let Some(chain) = chain {
        command.args(["--chain", &chain]);
    }
    let mut nexum = Process::spawn(command);
    nexum.wait_for_count(needles, 1, Duration::from_secs(30));
    assert_eq!(nexum.signal("-TERM").code(), Some(0));
}

#[test]
fn the_cron_template_builds_tests_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = scaffold(dir.path(), "my-heartbeat", "cron");
    runs_until(&dir.path().join("my-heartbeat"), &wasm, None, &["beat #1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_block_template_builds_tests_and_runs() {
    let anvil = Anvil::spawn_with(&["--block-time", "1"]).await;
    let dir = tempfile::tempdir().unwrap();
    let wasm = scaffold(dir.path(), "my-blocks", "block");
    runs_until(
        &dir.path().join("my-blocks"),
        &wasm,
        Some(format!("31337={}", anvil.ws_url())),
        // The module's own line, with the block's hash: the engine's line announcing the
        // subscription also says "on chain 31337", and comes while it is still starting
        // (a SIGTERM then exits 1).
        &["on chain 31337", " 0x"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_logs_template_builds_tests_and_runs() {
    let anvil = Anvil::spawn().await;
    let emitter = anvil.deploy_emitter().await;
    assert_eq!(
        emitter.to_string(),
        "0x5FbDB2315678afecb367f032d93F642f64180aa3",
        "where the template looks"
    );
    let dir = tempfile::tempdir().unwrap();
    let wasm = tokio::task::spawn_blocking({
        let dir = dir.path().to_path_buf();
        move || scaffold(&dir, "my-counter", "logs")
    })
    .await
    .unwrap();
    let mut command = Command::new(NEXUM);
    command
        .current_dir(dir.path().join("my-counter"))
        .arg("run")
        .arg(&wasm)
        .arg("module.toml")
        .args(["--chain", &format!("31337={}", anvil.ws_url())])
        .env_remove("RUST_LOG");
    let mut nexum = Process::spawn(command);
    // The module starts at the head it saw when it was started: an event after that is its.
    nexum
        .wait_for("running; press ctrl-c to stop", Duration::from_secs(60))
        .await;
    anvil.ping(emitter, 1, b"hello").await;
    nexum.wait_for("Ping #", Duration::from_secs(30)).await;
    assert_eq!(nexum.signal("-TERM").code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_twap_template_builds_tests_and_runs() {
    let anvil = Anvil::spawn_with(&["--chain-id", "1", "--block-time", "1"]).await;
    let dir = tempfile::tempdir().unwrap();
    let wasm = scaffold(dir.path(), "my-twap", "twap");
    runs_until(
        &dir.path().join("my-twap"),
        &wasm,
        Some(format!("1={}", anvil.ws_url())),
        &["running; press ctrl-c to stop"],
    );
}

#[test]
fn new_refuses_a_bad_name_or_an_existing_directory() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(NEXUM)
        .args(["new", "Bad Name", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "error: invalid module name \"Bad Name\": use 1-64 characters of a-z, 0-9, `_` and `-`\n"
    );
    std::fs::create_dir(dir.path().join("taken")).unwrap();
    let output = Command::new(NEXUM)
        .args(["new", "taken", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        format!(
            "error: {} already exists\n",
            dir.path().join("taken").display()
        )
    );
}
