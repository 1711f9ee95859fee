//! `nexum dev`, as a module author meets it: from an empty folder, `nexum new` and then the
//! two commands it prints (`cd NAME`, `nexum dev`). The module — Rust, JavaScript or
//! Python — is built, run against the local chain `nexum dev` starts, sees blocks and logs,
//! keeps state in its store, reads chain state, and is rebuilt and restarted on an edit with
//! its state kept. When `nexum dev` stops, so does its chain.

use nexum_tests::anvil::{Anvil, anvil_binary};
use nexum_tests::guests;
use nexum_tests::process::Process;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

const NEXUM: &str = env!("CARGO_BIN_EXE_nexum");
/// A first build installs the template's toolchain (componentize-js from npm,
/// componentize-py from PyPI) and compiles a 12–18 MB component.
const FIRST_BUILD: Duration = Duration::from_secs(600);
const REBUILD: Duration = Duration::from_secs(300);
const SOON: Duration = Duration::from_secs(60);
/// What `nexum dev` says when a build or start failed.
const BUILD_FAILED: &str = "waiting for a change";
/// Anvil's first dev account, which deploys and calls the contract.
const DEV_ACCOUNT: &str = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266";

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `nexum new NAME --template TEMPLATE` in `dir`; checks it prints the two commands.
fn scaffold(dir: &Path, name: &str, template: &str) -> PathBuf {
    let output = Command::new(NEXUM)
        .current_dir(dir)
        .args(["new", name, "--template", template])
        .output()
        .unwrap();
    let said = text(&output);
    assert!(output.status.success(), "{said}");
    assert!(
        said.contains(&format!("cd {name}")) && said.contains("nexum dev"),
        "the scaffold names the two commands: {said}"
    );
    dir.join(name)
}

/// `nexum dev` in `root`, with Anvil on PATH as an author who installed Foundry has it.
fn dev(root: &Path) -> Process {
    Process::spawn(dev_command(root))
}

fn dev_command(root: &Path) -> Command {
    let anvil_dir = anvil_binary().parent().unwrap().to_path_buf();
    let path = std::env::join_paths(std::iter::once(anvil_dir).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .unwrap();
    let mut command = Command::new(NEXUM);
    command
        .current_dir(root)
        .arg("dev")
        .env("PATH", path)
        .env_remove("RUST_LOG");
    command
}

/// Waits for `nexum dev` to say where its local chain is, and connects to it.
async fn local_chain(dev: &mut Process) -> Anvil {
    let line = dev.wait_for("dev: local chain 31337 at ", SOON).await;
    let url = line
        .split(" at ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    Anvil::connect(url).await
}

/// Stops `nexum dev` with `signal` (`-INT` as ctrl-c, `-TERM` as a service manager), and
/// checks it exits cleanly and its chain goes with it.
fn stop(mut dev: Process, anvil: &Anvil, signal: &str) {
    assert_eq!(
        dev.signal(signal).code(),
        Some(0),
        "{}",
        dev.output().join("\n")
    );
    // The chain is killed as nexum dev exits; give the kernel a moment to close its port.
    let deadline = std::time::Instant::now() + SOON;
    while std::net::TcpStream::connect(("127.0.0.1", anvil.port())).is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "the local chain outlived nexum dev"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Appends a line to a source file, as an editor's save would.
fn edit(path: &Path, line: &str) {
    let mut source = std::fs::read_to_string(path).unwrap();
    source.push_str(line);
    std::fs::write(path, source).unwrap();
}

/// The counter template of `template`, from `nexum new` to a restart under `nexum dev`.
async fn the_counter_template_runs_under_dev(template: &str, tests: &[&str], source: &str) {
    let dir = tempfile::tempdir().unwrap();
    let root = scaffold(dir.path(), "counter", template);

    // Its own tests, with the fake host, under plain Node or CPython.
    let tested = Command::new(tests[0])
        .args(&tests[1..])
        .current_dir(&root)
        .output()
        .unwrap();
    assert!(
        tested.status.success(),
        "{template} tests:\n{}",
        text(&tested)
    );

    let mut dev = dev(&root);
    let anvil = local_chain(&mut dev).await;
    dev.wait_for_unless("counter ready (read_count=true)", BUILD_FAILED, FIRST_BUILD)
        .await;
    dev.wait_for("dev: running ", SOON).await;
    dev.wait_for(" block ", SOON).await;

    let emitter = anvil.deploy_emitter().await;
    assert_eq!(
        emitter.to_string(),
        "0x5FbDB2315678afecb367f032d93F642f64180aa3",
        "the template's module.toml names the first contract of a fresh chain"
    );
    anvil.ping(emitter, 7, b"").await;
    dev.wait_for(&format!("Ping #7 from {DEV_ACCOUNT} (1 so far)"), SOON)
        .await;
    dev.wait_for("the contract's own count is 0", SOON).await;

    // An edit: rebuilt, restarted, and the store's count carries on.
    edit(&root.join(source), "\n");
    dev.wait_for("changed; rebuilding", SOON).await;
    dev.wait_for_unless("counter ready (read_count=true)", BUILD_FAILED, REBUILD)
        .await;
    anvil.burst(emitter, 1).await;
    dev.wait_for(&format!("Ping #0 from {DEV_ACCOUNT} (2 so far)"), SOON)
        .await;
    dev.wait_for("Pong #1: \"burst\" (1 so far)", SOON).await;
    dev.wait_for("the contract's own count is 1", SOON).await;
    stop(dev, &anvil, "-INT");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_javascript_module_from_the_template_runs_and_restarts_under_dev() {
    the_counter_template_runs_under_dev("js", &["npm", "test"], "src/module.js").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_python_module_from_the_template_runs_and_restarts_under_dev() {
    the_counter_template_runs_under_dev(
        "py",
        &["python3", "-m", "unittest", "discover", "-s", "tests"],
        "module.py",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rust_module_is_rebuilt_on_an_edit_and_a_broken_one_keeps_the_last_good_build() {
    let dir = tempfile::tempdir().unwrap();
    let root = scaffold(dir.path(), "beat", "cron");
    // Resolve dependencies to the versions the workspace is tested with, and share its
    // compiled ones.
    std::fs::copy(
        guests::workspace_root().join("Cargo.lock"),
        root.join("Cargo.lock"),
    )
    .unwrap();
    let mut command = dev_command(&root);
    command.env("CARGO_TARGET_DIR", guests::guest_target_dir());
    let mut dev = Process::spawn(command);
    let anvil = local_chain(&mut dev).await;
    dev.wait_for_unless("heartbeat beat #2", BUILD_FAILED, FIRST_BUILD)
        .await;

    // A change that does not compile: said, and the running build keeps beating.
    let lib = root.join("src/lib.rs");
    let good = std::fs::read_to_string(&lib).unwrap();
    edit(&lib, "\nfn broken( {\n");
    dev.wait_for("the last good build keeps running", REBUILD)
        .await;
    let line = dev.wait_for("heartbeat beat #", SOON).await;

    // Fixed and changed: rebuilt, restarted, and the count in its store goes on.
    std::fs::write(&lib, good.replace("{} beat #{beats}", "{} tock #{beats}")).unwrap();
    let tock = dev.wait_for("heartbeat tock #", REBUILD).await;
    let number = |line: &str, word: &str| -> u64 {
        let after = line.split(word).nth(1).unwrap();
        after.split_whitespace().next().unwrap().parse().unwrap()
    };
    assert!(
        number(&tock, "tock #") > number(&line, "beat #"),
        "the count starts over: {line} / {tock}"
    );

    // A broken manifest is refused before the running build is stopped.
    edit(&root.join("module.toml"), "\n[[[\n");
    dev.wait_for("the last good build keeps running", REBUILD)
        .await;
    let tock = dev.wait_for("heartbeat tock #", SOON).await;
    assert_eq!(
        dev.output()
            .iter()
            .filter(|l| l.contains("stopping the running version"))
            .count(),
        1,
        "only the fixed build replaced a running one"
    );
    stop(dev, &anvil, "-TERM");

    // What it kept, read by its folder.
    let output = Command::new(NEXUM)
        .current_dir(&root)
        .args(["store", "--state-dir", "data/anvil", "beat", "get", "beats"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let kept: u64 = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap();
    assert!(kept >= number(&tock, "tock #"), "{kept}");
}
