//! Operating a running engine as an operator does: reload by SIGHUP and `nexum reload`,
//! and the admin API behind `nexum status`, `store`, `dead-letters`, `replay` and
//! `restart`. The real binary, compiled guests, a real Anvil.

use alloy_primitives::Address;
use nexum_host::Ledger;
use nexum_host::core::ModuleName;
use nexum_tests::anvil::{Anvil, CHAIN_ID, free_port, hex_u64};
use nexum_tests::engine::live_logs_in;
use nexum_tests::guests;
use nexum_tests::process::Process;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const NEXUM: &str = env!("CARGO_BIN_EXE_nexum");

fn nexum(args: &[&str]) -> Output {
    Command::new(NEXUM)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("running nexum")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// `nexum run engine` (killed when dropped, panics included).
fn start(engine: &Path) -> Process {
    let mut command = Command::new(NEXUM);
    command.arg("run").arg(engine).env_remove("RUST_LOG");
    let mut process = Process::spawn(command);
    process.wait_for_blocking("running; press ctrl-c", Duration::from_secs(60));
    process
}

/// A recorder module `name` reading `emitter`'s logs from `start`; `extra` goes at the
/// end of its manifest (its `[config]`, say). Written to `dir/NAME.toml`.
fn recorder_manifest(
    dir: &Path,
    name: &str,
    version: &str,
    emitter: Address,
    start: u64,
    extra: &str,
) {
    std::fs::write(
        dir.join(format!("{name}.toml")),
        format!(
            "[module]\nname = \"{name}\"\nversion = \"{version}\"\n\n[capabilities]\nrequired = [\"local-store\", \"logging\"]\n\n\
             [[subscription]]\nkind = \"log\"\nchain_id = {CHAIN_ID}\naddress = \"{emitter}\"\nstart_block = {start}\n{extra}"
        ),
    )
    .unwrap();
}

/// An engine.toml in `dir` with the admin API on `admin`, a chain at `rpc_url` (if any)
/// and one `recorder` module per manifest name in `modules` (`dir/NAME.toml`); `extra`
/// goes after `[engine]`.
fn engine_toml(
    dir: &Path,
    admin: u16,
    rpc_url: Option<&str>,
    modules: &[&str],
    extra: &str,
) -> PathBuf {
    let mut text = format!(
        "[engine]\nstate_dir = \"state\"\n{extra}\n[admin]\naddr = \"127.0.0.1:{admin}\"\n\n"
    );
    if let Some(url) = rpc_url {
        text.push_str(&format!("[chains.{CHAIN_ID}]\nrpc_url = \"{url}\"\n\n"));
    }
    for name in modules {
        text.push_str(&format!(
            "[[modules]]\npath = {:?}\nmanifest = \"{name}.toml\"\n\n",
            guests::wasm("recorder")
        ));
    }
    let path = dir.join("engine.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `GET /v1/status` of the engine whose admin API is on `port`.
async fn status(port: u16) -> Value {
    reqwest::get(format!("http://127.0.0.1:{port}/v1/status"))
        .await
        .expect("the admin API answers")
        .json()
        .await
        .expect("status is JSON")
}

/// The last block each module's first subscription has handled.
fn handled(status: &Value) -> BTreeMap<String, u64> {
    status["modules"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| {
            let handled = m["subscriptions"][0]["handled_through"].as_u64()?;
            Some((m["name"].as_str().unwrap().to_string(), handled))
        })
        .collect()
}

/// Waits until every module in `modules` has handled `block` (30 s at most).
async fn wait_handled(port: u16, modules: &[&str], block: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = status(port).await;
        let handled = handled(&status);
        if modules
            .iter()
            .all(|m| handled.get(*m).is_some_and(|h| *h >= block))
        {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "not all of {modules:?} handled block {block}: {status:#}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The chain's `(block, log index)` of `emitter` from `from` on.
async fn chain_logs(anvil: &Anvil, emitter: Address, from: u64) -> BTreeSet<(u64, u64)> {
    let to = anvil.block_number().await;
    anvil
        .log_positions(emitter, from, to)
        .await
        .into_iter()
        .collect()
}

/// Every `(block, log index)` a recorder received, in arrival order, with repeats.
fn received(ledger: &Ledger, module: &str) -> Vec<(u64, u64)> {
    let name = ModuleName::new(module).unwrap();
    let read = |key: &str| ledger.read(&name, key).unwrap().map(|v| text(&v));
    let n: usize = read("n").map_or(0, |n| n.parse().unwrap());
    (0..n)
        .flat_map(|i| {
            let event: Value = serde_json::from_str(&read(&format!("e/{i:08}")).unwrap()).unwrap();
            event["logs"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|l| (l["block"].as_u64().unwrap(), l["index"].as_u64().unwrap()))
        })
        .collect()
}

/// p50 and max of `values`, in milliseconds.
fn p50_max(values: &mut [Duration]) -> (u128, u128) {
    values.sort();
    (
        values[values.len() / 2].as_millis(),
        values.last().unwrap().as_millis(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_upgrades_one_module_of_three_while_logs_flow() {
    let anvil = Anvil::spawn().await;
    let emitter = anvil.deploy_emitter().await;
    let from = anvil.block_number().await + 1;
    let dir = tempfile::tempdir().unwrap();
    let admin = free_port();
    for name in ["steady-a", "steady-b", "upgraded"] {
        recorder_manifest(dir.path(), name, "0.1.0", emitter, from, "");
    }
    let engine = engine_toml(
        dir.path(),
        admin,
        Some(&anvil.ws_url()),
        &["steady-a", "steady-b", "upgraded"],
        "",
    );
    let mut nexum = start(&engine);

    // When each ping's block was mined, and when each module first reported it handled.
    let mined: Arc<Mutex<BTreeMap<u64, Instant>>> = Arc::default();
    let seen: Arc<Mutex<BTreeMap<(String, u64), Instant>>> = Arc::default();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (seen, done) = (seen.clone(), done.clone());
        tokio::spawn(async move {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let now = Instant::now();
                for (module, block) in handled(&status(admin).await) {
                    seen.lock().unwrap().entry((module, block)).or_insert(now);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    const PINGS: u64 = 60;
    let mut last = 0;
    let mut reloaded_at = None;
    for seq in 0..PINGS {
        let receipt = anvil.ping(emitter, seq, b"flowing").await;
        last = hex_u64(&receipt["blockNumber"]);
        mined.lock().unwrap().insert(last, Instant::now());
        if seq == PINGS / 3 {
            // The new version of one module: a new manifest (and so a new instance).
            recorder_manifest(dir.path(), "upgraded", "0.2.0", emitter, from, "");
            reloaded_at = Some(Instant::now());
            nexum.send("-HUP");
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let line = nexum.wait_for_blocking("SIGHUP: reloaded", Duration::from_secs(30));
    assert!(
        line.contains(
            "added: none; upgraded: upgraded; removed: none; unchanged: steady-a, steady-b"
        ),
        "{line}"
    );
    let status = wait_handled(admin, &["steady-a", "steady-b", "upgraded"], last).await;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    watcher.await.unwrap();
    let versions: Vec<&str> = status["modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["0.1.0", "0.1.0", "0.2.0"]);

    // The two that were not upgraded never paused: every block reached them about as fast
    // during the reload as before and after it.
    let (mined, seen) = (mined.lock().unwrap().clone(), seen.lock().unwrap().clone());
    let latency = |module: &str| -> Vec<Duration> {
        mined
            .iter()
            .map(|(block, at)| {
                let reached = seen
                    .iter()
                    .filter(|((m, b), _)| m == module && b >= block)
                    .map(|(_, t)| *t)
                    .min()
                    .unwrap_or_else(|| panic!("{module} never handled block {block}"));
                reached.saturating_duration_since(*at)
            })
            .collect()
    };
    for module in ["steady-a", "steady-b", "upgraded"] {
        let (p50, max) = p50_max(&mut latency(module));
        println!("{module}: mined → handled p50 {p50} ms, max {max} ms");
    }
    let reload_took = reloaded_at.unwrap().elapsed();
    println!(
        "reload sent {} ms before the end of the run",
        reload_took.as_millis()
    );
    for module in ["steady-a", "steady-b"] {
        let (_, max) = p50_max(&mut latency(module));
        assert!(
            max < 2_000,
            "{module} paused for {max} ms during the reload"
        );
    }

    assert_eq!(nexum.signal("-INT").code(), Some(0));
    // Nothing lost, nothing twice: each module received every log of the chain once.
    let expected = chain_logs(&anvil, emitter, from).await;
    assert_eq!(expected.len() as u64, PINGS);
    let ledger = Ledger::open(&dir.path().join("state")).unwrap();
    for module in ["steady-a", "steady-b", "upgraded"] {
        assert_eq!(live_logs_in(&ledger, module), expected, "{module}");
        let received = received(&ledger, module);
        assert_eq!(
            received.len(),
            expected.len(),
            "{module} received a log twice: {received:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_is_replayed_through_the_admin_api_after_the_module_is_fixed() {
    let anvil = Anvil::spawn().await;
    let emitter = anvil.deploy_emitter().await;
    let from = anvil.block_number().await + 1;
    let dir = tempfile::tempdir().unwrap();
    let admin = free_port();
    // It fails every time at the second ping's block.
    let failing = from + 1;
    recorder_manifest(
        dir.path(),
        "flaky",
        "0.1.0",
        emitter,
        from,
        &format!("\n[config]\nfail_at_block = {failing}\n"),
    );
    let engine = engine_toml(
        dir.path(),
        admin,
        Some(&anvil.ws_url()),
        &["flaky"],
        "\n[supervision]\nretry_attempts = 1\nretry_backoff_ms = 10\n",
    );
    let engine_arg = engine.to_str().unwrap();
    let mut running = start(&engine);
    let mut last = 0;
    for seq in 0..3 {
        last = hex_u64(&anvil.ping(emitter, seq, b"x").await["blockNumber"]);
    }
    assert_eq!(last, from + 2, "one ping per block");
    let status = wait_handled(admin, &["flaky"], last).await;
    assert_eq!(status["modules"][0]["dead_letters"], 1, "{status:#}");

    // Read live, while the engine runs.
    let letters = nexum(&["dead-letters", engine_arg]);
    assert_eq!(letters.status.code(), Some(0), "{}", text(&letters.stderr));
    let listed = text(&letters.stdout);
    assert!(
        listed.contains(&format!("1 log(s) of block {failing} on chain {CHAIN_ID}  after 2 attempt(s): internal: asked to fail at block {failing}")),
        "{listed}"
    );
    assert!(listed.ends_with("1 dead letter(s)\n"), "{listed}");
    let keys = nexum(&["store", engine_arg, "flaky", "list", "live/"]);
    assert!(
        text(&keys.stdout).ends_with("2 key(s)\n"),
        "{}",
        text(&keys.stdout)
    );

    // Fix the module, reload, replay.
    recorder_manifest(dir.path(), "flaky", "0.1.1", emitter, from, "");
    let reload = nexum(&["reload", engine_arg]);
    assert_eq!(
        text(&reload.stdout),
        "reloaded: added: none; upgraded: flaky; removed: none; unchanged: none\n",
        "{}",
        text(&reload.stderr)
    );
    let replay = nexum(&["replay", engine_arg, "flaky"]);
    assert_eq!(
        text(&replay.stdout),
        "flaky: 1 handled, 0 failed again (dead-lettered anew), 0 kept\n",
        "{}",
        text(&replay.stderr)
    );
    let letters = nexum(&["dead-letters", engine_arg]);
    assert_eq!(text(&letters.stdout), "0 dead letter(s)\n");
    let keys = nexum(&["store", engine_arg, "flaky", "list", "live/"]);
    assert!(
        text(&keys.stdout).ends_with("3 key(s)\n"),
        "{}",
        text(&keys.stdout)
    );
    let value = nexum(&["store", engine_arg, "flaky", "get", "n"]);
    assert_eq!(
        text(&value.stdout),
        "3\n",
        "two live events and the replayed one"
    );

    let live = nexum(&["status", engine_arg]);
    let live = text(&live.stdout);
    assert!(live.starts_with("engine running: healthy\n"), "{live}");
    assert!(live.contains("flaky  0.1.1  running  handled 1"), "{live}");
    assert!(
        live.contains(&format!("handled through {last}, head {last}, lag 0")),
        "{live}"
    );

    assert_eq!(running.signal("-TERM").code(), Some(0));
    // Stopped: status reads the files; replay says it needs a running engine.
    let stopped = nexum(&["status", engine_arg]);
    let stopped = text(&stopped.stdout);
    assert!(
        stopped.starts_with(&format!(
            "engine not running (nothing answers at 127.0.0.1:{admin}); from the state in "
        )),
        "{stopped}"
    );
    assert!(
        stopped.contains("flaky  dead letters: 0\n  [0] "),
        "{stopped}"
    );
    assert!(
        stopped.contains(&format!("handled through block {last}")),
        "{stopped}"
    );
    let replay = nexum(&["replay", engine_arg, "flaky"]);
    assert_eq!(replay.status.code(), Some(1));
    assert_eq!(
        text(&replay.stderr),
        format!(
            "error: replay needs a running engine, and nothing answers at 127.0.0.1:{admin}: start it (`nexum run {engine_arg}`), then try again\n"
        )
    );
}

#[test]
fn a_reload_that_changes_engine_settings_or_breaks_a_manifest_is_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let admin = free_port();
    let cron = |name: &str| {
        std::fs::write(
            dir.path().join(format!("{name}.toml")),
            format!(
                "[module]\nname = \"{name}\"\nversion = \"0.1.0\"\n\n[capabilities]\nrequired = [\"local-store\", \"logging\"]\n\n\
                 [[subscription]]\nkind = \"cron\"\nschedule = \"0 0 1 1 *\"\n"
            ),
        )
        .unwrap();
    };
    cron("first");
    let engine = engine_toml(dir.path(), admin, None, &["first"], "");
    let engine_arg = engine.to_str().unwrap();
    let mut running = start(&engine);

    // An engine setting changed beside a new module: refused, by signal and by command.
    cron("second");
    engine_toml(
        dir.path(),
        admin,
        None,
        &["first", "second"],
        "log_level = \"debug\"",
    );
    running.send("-HUP");
    let line = running.wait_for_blocking("SIGHUP: reload refused", Duration::from_secs(30));
    assert!(
        line.contains(&format!(
            "SIGHUP: reload refused, nothing changed: {engine_arg}: engine.log_level changed; engine settings apply only at a restart"
        )),
        "{line}"
    );
    let refused = nexum(&["reload", engine_arg]);
    assert_eq!(refused.status.code(), Some(1));
    assert_eq!(
        text(&refused.stderr),
        format!(
            "error: reload refused, nothing changed: {engine_arg}: engine.log_level changed; engine settings apply only at a restart\n"
        )
    );

    // A broken manifest: refused whole, naming the file and field.
    std::fs::write(
        dir.path().join("second.toml"),
        "[module]\nname = \"Second!\"\nversion = \"0.1.0\"\n",
    )
    .unwrap();
    engine_toml(dir.path(), admin, None, &["first", "second"], "");
    let refused = nexum(&["reload", engine_arg]);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = text(&refused.stderr);
    assert!(
        stderr.starts_with(&format!(
            "error: reload refused, nothing changed: {}: `module.name`: invalid module name",
            dir.path().join("second.toml").display()
        )),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let status = nexum(&["status", engine_arg]);
    let status = text(&status.stdout);
    assert!(status.contains("first  0.1.0  running"), "{status}");
    assert!(!status.contains("second"), "{status}");

    // A valid change: one module out, one in.
    cron("second");
    engine_toml(dir.path(), admin, None, &["second"], "");
    let applied = nexum(&["reload", engine_arg]);
    assert_eq!(
        text(&applied.stdout),
        "reloaded: added: second; upgraded: none; removed: first; unchanged: none\n",
        "{}",
        text(&applied.stderr)
    );
    let status = nexum(&["status", engine_arg]);
    let status = text(&status.stdout);
    assert!(status.contains("second  0.1.0  running"), "{status}");
    assert!(!status.contains("first"), "{status}");

    // Two modules on the one runtime worker `nexum run` started for one: applied, and said
    // (on a machine with a core to spare).
    cron("first");
    engine_toml(dir.path(), admin, None, &["first", "second"], "");
    let applied = nexum(&["reload", engine_arg]);
    assert!(
        text(&applied.stdout).starts_with("reloaded: added: first; upgraded: none; removed: none;"),
        "{}{}",
        text(&applied.stdout),
        text(&applied.stderr)
    );
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores > 1 && std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        let line = running.wait_for_blocking("runtime worker", Duration::from_secs(30));
        assert!(
            line.contains(&format!(
                "2 modules now share 1 runtime worker(s) on {cores} cores"
            )),
            "{line}"
        );
    }
    assert_eq!(running.signal("-TERM").code(), Some(0));
}

#[tokio::test]
async fn the_admin_api_asks_for_its_token_and_the_cli_sends_it() {
    let dir = tempfile::tempdir().unwrap();
    let admin = free_port();
    std::fs::write(
        dir.path().join("solo.toml"),
        "[module]\nname = \"solo\"\nversion = \"0.1.0\"\n\n[capabilities]\nrequired = [\"local-store\", \"logging\"]\n",
    )
    .unwrap();
    let engine = engine_toml(dir.path(), admin, None, &["solo"], "");
    let with_token = std::fs::read_to_string(&engine).unwrap().replace(
        "[admin]\n",
        "[admin]\ntoken = \"${ADMIN_TOKEN_FOR_TEST}\"\n",
    );
    std::fs::write(&engine, with_token).unwrap();
    let secret = "a-token-long-enough-to-count";
    let mut command = Command::new(NEXUM);
    command
        .arg("run")
        .arg(&engine)
        .env_remove("RUST_LOG")
        .env("ADMIN_TOKEN_FOR_TEST", secret);
    let mut running = Process::spawn(command);
    running.wait_for_blocking("running; press ctrl-c", Duration::from_secs(60));

    let url = format!("http://127.0.0.1:{admin}/v1/status");
    let client = reqwest::Client::new();
    let without = client.get(&url).send().await.unwrap();
    assert_eq!(without.status(), 401);
    let wrong = client
        .get(&url)
        .bearer_auth("a-token-long-enough-to-fail")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let right = client.get(&url).bearer_auth(secret).send().await.unwrap();
    assert_eq!(right.status(), 200);
    let unknown = client
        .post(format!("http://127.0.0.1:{admin}/v1/modules/nobody/replay"))
        .bearer_auth(secret)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    assert_eq!(
        unknown.text().await.unwrap(),
        r#"{"error":"no module named \"nobody\""}"#
    );

    let status = Command::new(NEXUM)
        .args(["status", engine.to_str().unwrap()])
        .env("ADMIN_TOKEN_FOR_TEST", secret)
        .output()
        .unwrap();
    assert!(
        text(&status.stdout).contains("solo  0.1.0  running"),
        "{}",
        text(&status.stderr)
    );
    assert_eq!(running.signal("-TERM").code(), Some(0));
    assert!(
        running.output().iter().all(|line| !line.contains(secret)),
        "the token was logged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_logs_flow_restores_into_a_fresh_state_dir_and_resumes_exactly_once() {
    let anvil = Anvil::spawn().await;
    let emitter = anvil.deploy_emitter().await;
    let from = anvil.block_number().await + 1;
    let dir = tempfile::tempdir().unwrap();
    let admin = free_port();
    recorder_manifest(dir.path(), "rec", "0.1.0", emitter, from, "");
    let engine = engine_toml(dir.path(), admin, Some(&anvil.ws_url()), &["rec"], "");
    let mut running = start(&engine);
    for _ in 0..20 {
        anvil.burst(emitter, 4).await;
    }
    // The module has state to back up (on a busy machine its first commit can come after
    // the twentieth block).
    wait_handled(admin, &["rec"], from).await;

    // The backup is taken through the admin API while logs keep coming.
    let backup = dir.path().join("state.nxb");
    let taking = Command::new(NEXUM)
        .args(["backup", engine.to_str().unwrap(), backup.to_str().unwrap()])
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    for _ in 0..20 {
        anvil.burst(emitter, 4).await;
    }
    let taken = taking.wait_with_output().unwrap();
    assert_eq!(taken.status.code(), Some(0), "{}", text(&taken.stderr));
    assert!(
        text(&taken.stdout).starts_with(&format!("backup written to {}: ", backup.display()))
            && text(&taken.stdout).contains("modules: rec"),
        "{}",
        text(&taken.stdout)
    );
    // A second backup to the same file is refused: a backup never replaces one.
    let again = nexum(&["backup", engine.to_str().unwrap(), backup.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again.stderr).contains("a backup never replaces a file"));
    for _ in 0..10 {
        anvil.burst(emitter, 4).await;
    }
    let last = anvil.block_number().await;
    wait_handled(admin, &["rec"], last).await;
    assert_eq!(running.signal("-TERM").code(), Some(0));

    // Another machine: an empty state dir, the backup restored into it.
    let fresh = tempfile::tempdir().unwrap();
    let admin2 = free_port();
    recorder_manifest(fresh.path(), "rec", "0.1.0", emitter, from, "");
    let engine2 = engine_toml(fresh.path(), admin2, Some(&anvil.ws_url()), &["rec"], "");
    // An altered backup is refused before anything is written.
    let altered = fresh.path().join("altered.nxb");
    let mut bytes = std::fs::read(&backup).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&altered, bytes).unwrap();
    let refused = nexum(&[
        "restore",
        engine2.to_str().unwrap(),
        altered.to_str().unwrap(),
    ]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused.stderr).contains("not a valid nexum backup"),
        "{}",
        text(&refused.stderr)
    );
    assert!(!fresh.path().join("state").exists());
    // A content store filled ahead (`nexum fetch`) does not count as state, and stays.
    let fetched = fresh.path().join("state/content/sha256/fetched.wasm");
    std::fs::create_dir_all(fetched.parent().unwrap()).unwrap();
    std::fs::write(&fetched, b"component").unwrap();
    let restored = nexum(&[
        "restore",
        engine2.to_str().unwrap(),
        backup.to_str().unwrap(),
    ]);
    assert_eq!(
        restored.status.code(),
        Some(0),
        "{}",
        text(&restored.stderr)
    );
    assert!(text(&restored.stdout).starts_with("restored into "));
    assert_eq!(std::fs::read(&fetched).unwrap(), b"component");
    // A state dir that holds something is never overwritten.
    let twice = nexum(&[
        "restore",
        engine2.to_str().unwrap(),
        backup.to_str().unwrap(),
    ]);
    assert_eq!(twice.status.code(), Some(1));
    assert!(
        text(&twice.stderr).contains("is not empty"),
        "{}",
        text(&twice.stderr)
    );

    // The restored engine resumes from the backup's cursors: the logs after the backup
    // come again from the chain, and the module ends with each log exactly once.
    let mut resumed = start(&engine2);
    for _ in 0..10 {
        anvil.burst(emitter, 4).await;
    }
    let last = anvil.block_number().await;
    wait_handled(admin2, &["rec"], last).await;
    assert_eq!(resumed.signal("-TERM").code(), Some(0));
    let ledger = Ledger::open(&fresh.path().join("state")).unwrap();
    let chain: Vec<(u64, u64)> = chain_logs(&anvil, emitter, from)
        .await
        .into_iter()
        .collect();
    assert_eq!(chain.len(), 60 * 5);
    assert_eq!(
        received(&ledger, "rec"),
        chain,
        "not every log exactly once, in order"
    );
}
