//! `nexum check`, `inspect`, `hash`, `store` and `dead-letters`: happy paths and error cases,
//! with their exact messages and exit codes.

use nexum_tests::guests;
use nexum_tests::process::Process;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const NEXUM: &str = env!("CARGO_BIN_EXE_nexum");

fn nexum(args: &[&str]) -> Output {
    Command::new(NEXUM)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("running nexum")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

fn digest(path: &Path) -> String {
    nexum_core::ComponentDigest::of(&std::fs::read(path).unwrap()).to_string()
}

/// A directory with an engine.toml listing `modules` (name, guest, manifest extra).
fn engine_dir(modules: &[(&str, &str, &str)], engine_extra: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = format!("[engine]\nstate_dir = \"state\"\n{engine_extra}\n");
    for (name, guest, extra) in modules {
        let manifest = dir.path().join(format!("{name}.toml"));
        std::fs::write(
            &manifest,
            format!("[module]\nname = \"{name}\"\nversion = \"1.0.0\"\n{extra}\n"),
        )
        .unwrap();
        engine.push_str(&format!(
            "\n[[modules]]\npath = {:?}\nmanifest = {:?}\n",
            guests::wasm(guest),
            manifest
        ));
    }
    let path = dir.path().join("engine.toml");
    std::fs::write(&path, engine).unwrap();
    (dir, path)
}

const STORE_AND_LOGS: &str = "[capabilities]\nrequired = [\"local-store\", \"logging\"]\n";

#[test]
fn check_prints_one_line_per_module_and_exits_0_when_all_is_well() {
    let (_dir, engine) = engine_dir(&[("beat", "heartbeat", STORE_AND_LOGS)], "");
    let output = nexum(&["check", engine.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        format!(
            "ok     beat 1.0.0 [local-store, logging] {}; subscriptions: none\n1 module(s) checked, 0 problem(s)\n",
            digest(&guests::wasm("heartbeat"))
        )
    );
}

/// Adds `sha256 = "<pin>"` to the `[[modules]]` entry of `name` in `engine`.
fn pin_in_engine(engine: &Path, name: &str, pin: &str) {
    let text = std::fs::read_to_string(engine).unwrap();
    let manifest_line = text
        .lines()
        .find(|l| l.starts_with("manifest = ") && l.contains(&format!("{name}.toml")))
        .unwrap()
        .to_string();
    let pinned = text.replace(
        &manifest_line,
        &format!("{manifest_line}\nsha256 = \"{pin}\""),
    );
    std::fs::write(engine, pinned).unwrap();
}

#[test]
fn a_pin_in_engine_toml_refuses_a_component_swapped_with_its_manifest() {
    // The operator vetted the heartbeat; the artifact store now serves another component,
    // with a module.toml that pins the swapped bytes.
    let vetted = digest(&guests::wasm("heartbeat"));
    let swapped = guests::wasm("probe");
    let (_dir, engine) = engine_dir(
        &[(
            "beat",
            "probe",
            &format!("component = \"{}\"\n{STORE_AND_LOGS}", digest(&swapped)),
        )],
        "",
    );
    pin_in_engine(&engine, "beat", &vetted);
    let refused = format!(
        "{}: `modules[0].sha256`: sha256 mismatch: pinned to {vetted} but {} is {}; refusing it",
        engine.display(),
        swapped.display(),
        digest(&swapped)
    );
    let output = nexum(&["check", engine.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stdout(&output).lines().next().unwrap(),
        format!("error  beat: {refused}")
    );
    let output = nexum(&["run", engine.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains(&refused), "{}", stderr(&output));
}

#[test]
fn require_pins_wants_a_pin_in_engine_toml_for_every_module() {
    let (_dir, engine) = engine_dir(
        &[
            ("beat", "heartbeat", STORE_AND_LOGS),
            ("other", "heartbeat", STORE_AND_LOGS),
        ],
        "require_pins = true",
    );
    pin_in_engine(&engine, "beat", &digest(&guests::wasm("heartbeat")));
    let output = nexum(&["check", engine.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output).trim(),
        format!(
            "error: {}: `modules[1].sha256`: missing: engine.require_pins is on, so every module needs the sha256 of its component here (`nexum hash {}` prints it)",
            engine.display(),
            guests::wasm("heartbeat").display()
        )
    );
    // Pinned, both load.
    pin_in_engine(&engine, "other", &digest(&guests::wasm("heartbeat")));
    let output = nexum(&["check", engine.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

#[test]
fn check_lists_every_problem_and_exits_1() {
    let wrong = format!("[module]\ncomponent = \"sha256:{}\"\n", "00".repeat(32));
    let (dir, engine) = engine_dir(
        &[
            ("good", "heartbeat", STORE_AND_LOGS),
            ("pinned", "heartbeat", STORE_AND_LOGS),
            (
                "sneaky",
                "chain-caller",
                "[capabilities]\nrequired = [\"logging\"]\n",
            ),
            (
                "far",
                "probe",
                &format!("{STORE_AND_LOGS}[[subscription]]\nkind = \"block\"\nchain_id = 10\n"),
            ),
        ],
        "",
    );
    // Pin a wrong digest in one manifest.
    let pinned = dir.path().join("pinned.toml");
    let text = std::fs::read_to_string(&pinned)
        .unwrap()
        .replace("[module]\n", &wrong);
    std::fs::write(&pinned, text).unwrap();

    let output = nexum(&["check", engine.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let lines: Vec<String> = stdout(&output).lines().map(str::to_string).collect();
    assert!(lines[0].starts_with("ok     good 1.0.0"), "{lines:?}");
    assert_eq!(
        lines[1],
        format!(
            "error  pinned: {}: `module.component`: sha256 mismatch: the manifest pins sha256:{} but {} is {}",
            pinned.display(),
            "00".repeat(32),
            guests::wasm("heartbeat").display(),
            digest(&guests::wasm("heartbeat"))
        )
    );
    assert_eq!(
        lines[2],
        format!(
            "error  sneaky: {}: `capabilities.required`: {} imports `nexum:host/chain@0.2.1`, which needs the `chain` capability; add \"chain\" to [capabilities] required",
            dir.path().join("sneaky.toml").display(),
            guests::wasm("chain-caller").display()
        )
    );
    assert_eq!(
        lines[3],
        format!(
            "error  far: {}: `subscription[0].chain_id`: chain 10 has no RPC configured in the engine (add [chains.10] with an rpc_url to engine.toml; for one module run on its own: --chain 10=URL)",
            dir.path().join("far.toml").display()
        )
    );
    assert_eq!(lines[4], "4 module(s) checked, 3 problem(s)");
    assert_eq!(
        stderr(&output),
        format!("error: {}: 3 problem(s) found\n", engine.display())
    );
    // Nothing was written: check is offline.
    assert!(!dir.path().join("state").exists());
}

#[test]
fn check_of_a_missing_file_or_bad_config_is_one_message_and_exit_1() {
    let output = nexum(&["check", "/nonexistent/engine.toml"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        "error: /nonexistent/engine.toml: cannot read file: No such file or directory (os error 2)\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let engine = dir.path().join("engine.toml");
    std::fs::write(&engine, "[chains.1]\nrpc_url = \"gopher://x\"\n").unwrap();
    let output = nexum(&["check", engine.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        format!(
            "error: {}: `chains.1.rpc_url`: unsupported scheme `gopher` in gopher://x: expected one of ws, wss, http, https\n",
            engine.display()
        )
    );
}

#[test]
fn check_of_a_module_manifest_checks_that_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("watcher.toml");
    std::fs::write(
        &manifest,
        "[module]\nname = \"watcher\"\nversion = \"0.1.0\"\n\n[capabilities]\nrequired = [\"logging\", \"local-store\"]\n\n\
         [[subscription]]\nkind = \"block\"\nchain_id = 1\n",
    )
    .unwrap();
    let output = nexum(&["check", manifest.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let out = stdout(&output);
    assert!(
        out.starts_with("ok     watcher 0.1.0: capabilities ")
            && out.contains("1 subscription(s)")
            && out.contains("needs an RPC for chain(s) 1")
            && out.contains("--chain ID=URL"),
        "{out}"
    );

    // What the manifest gets wrong is one line naming its file and field.
    std::fs::write(
        &manifest,
        "[module]\nname = \"watcher\"\nversion = \"0.1.0\"\n\n[capabilities]\nrequired = [\"telepathy\"]\n",
    )
    .unwrap();
    let output = nexum(&["check", manifest.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.starts_with(&format!(
            "error: {}: `capabilities.required",
            manifest.display()
        )) && err.contains("telepathy")
            && err.lines().count() == 1,
        "{err}"
    );
}

#[test]
fn inspect_describes_a_component() {
    let wasm = guests::wasm("twap-keeper");
    let output = nexum(&["inspect", wasm.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains("world      nexum:cow/cow-module@0.2.1\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!("sha256     {}\n", digest(&wasm))),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "size       {} bytes\n",
            std::fs::metadata(&wasm).unwrap().len()
        )),
        "{text}"
    );
    assert!(
        text.contains("  nexum:cow/cow-api@0.2.1  (capability `cow-api`)\n"),
        "{text}"
    );
    assert!(text.contains("exports\n  init\n  on-event\n"), "{text}");
    let heartbeat = nexum(&["inspect", guests::wasm("heartbeat").to_str().unwrap()]);
    assert!(stdout(&heartbeat).contains("world      nexum:host/event-module@0.2.1\n"));
}

#[test]
fn inspect_and_hash_refuse_what_is_not_a_component() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"\0asm junk").unwrap();
    let output = nexum(&["inspect", junk.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).starts_with(&format!(
            "error: {}: not a valid WebAssembly component: ",
            junk.display()
        )),
        "{}",
        stderr(&output)
    );
    let output = nexum(&["hash", "/nonexistent.wasm"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        "error: /nonexistent.wasm: cannot read: No such file or directory (os error 2)\n"
    );
}

#[test]
fn hash_prints_the_pin_for_module_toml() {
    let wasm = guests::wasm("heartbeat");
    let output = nexum(&["hash", wasm.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(stdout(&output), format!("{}\n", digest(&wasm)));
}

/// Runs nexum on `engine` until it prints a line containing `needle`, then stops it with
/// SIGTERM.
fn run_until(engine: &Path, needle: &str) {
    let mut command = Command::new(NEXUM);
    command
        .args(["run", engine.to_str().unwrap()])
        .env_remove("RUST_LOG");
    let mut nexum = Process::spawn(command);
    nexum.wait_for_blocking(needle, std::time::Duration::from_secs(30));
    assert_eq!(nexum.signal("-TERM").code(), Some(0));
}

#[test]
fn store_lists_and_reads_a_module_s_keys_after_a_run() {
    let cron = "[[subscription]]\nkind = \"cron\"\nschedule = \"* * * * * *\"\n";
    let (_dir, engine) = engine_dir(
        &[("beat", "heartbeat", &format!("{STORE_AND_LOGS}{cron}"))],
        "",
    );
    run_until(&engine, "beat #2");
    let output = nexum(&["store", engine.to_str().unwrap(), "beat"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let listing = stdout(&output);
    assert!(listing.starts_with("beats  ("), "{listing}");
    assert!(listing.ends_with("1 key(s)\n"), "{listing}");
    let output = nexum(&["store", engine.to_str().unwrap(), "beat", "get", "beats"]);
    let beats: u64 = stdout(&output).trim().parse().unwrap();
    assert!(beats >= 2, "{beats}");
    let output = nexum(&["store", engine.to_str().unwrap(), "beat", "get", "nope"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        "error: module `beat` has no key \"nope\"\n"
    );

    // The same state read by its folder, as after `nexum run module.wasm` or `nexum dev`.
    let state = engine.parent().unwrap().join("state");
    let state = state.to_str().unwrap();
    let output = nexum(&["store", "--state-dir", state, "beat", "get", "beats"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output).trim().parse::<u64>().unwrap(), beats);
    // A folder that holds no state is refused, and left as it was.
    let empty = tempfile::tempdir().unwrap();
    let output = nexum(&[
        "store",
        "--state-dir",
        empty.path().to_str().unwrap(),
        "beat",
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("no nexum state there"),
        "{}",
        stderr(&output)
    );
    assert_eq!(std::fs::read_dir(empty.path()).unwrap().count(), 0);
    let output = nexum(&["store", "--state-dir", state]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("name the module"),
        "{}",
        stderr(&output)
    );
    let output = nexum(&[
        "store",
        engine.to_str().unwrap(),
        "beat",
        "--state-dir",
        state,
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("not both"), "{}", stderr(&output));
}

#[test]
fn dead_letters_lists_skipped_events() {
    // The probe reads each tick's schedule as a command: "* * * * * *" is not one.
    let cron = "[[subscription]]\nkind = \"cron\"\nschedule = \"* * * * * *\"\n";
    let (_dir, engine) = engine_dir(
        &[("confused", "probe", &format!("{STORE_AND_LOGS}{cron}"))],
        "[supervision]\nretry_attempts = 0\n",
    );
    run_until(&engine, "event skipped and dead-lettered");
    let output = nexum(&["dead-letters", engine.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    let first = text.lines().next().unwrap();
    assert!(
        first.contains("  confused  subscription 0  tick \"* * * * * *\" at ")
            && first.ends_with("after 1 attempt(s): invalid input: unknown command `*`"),
        "{text}"
    );
    let output = nexum(&[
        "dead-letters",
        engine.to_str().unwrap(),
        "--module",
        "other",
    ]);
    assert_eq!(stdout(&output), "0 dead letter(s)\n");
    let state = engine.parent().unwrap().join("state");
    let output = nexum(&["dead-letters", "--state-dir", state.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), text);
}

/// `nexum check` and `nexum run` of `engine`: both exit 1, and `needle` is in what each says.
fn both_refuse(engine: &Path, needle: &str) {
    let engine = engine.to_str().unwrap();
    let checked = nexum(&["check", engine]);
    let said = format!("{}{}", stdout(&checked), stderr(&checked));
    assert_eq!(checked.status.code(), Some(1), "check: {said}");
    assert!(
        said.contains(needle),
        "check does not say {needle:?}:\n{said}"
    );
    let ran = nexum(&["run", engine]);
    let said = stderr(&ran);
    assert_eq!(ran.status.code(), Some(1), "run: {said}");
    let last = said.trim().lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: ") && last.contains(needle),
        "run does not end with {needle:?}:\n{said}"
    );
}

#[test]
fn check_refuses_what_run_refuses() {
    // No modules at all.
    let (_dir, engine) = engine_dir(&[], "");
    both_refuse(&engine, "engine.toml: no [[modules]] to run");

    // A log level that is not a filter.
    let (_dir, engine) = engine_dir(
        &[("beat", "heartbeat", STORE_AND_LOGS)],
        "log_level = \"info,[{\"",
    );
    both_refuse(
        &engine,
        "engine.log_level \"info,[{\" is not a valid filter",
    );

    // A module limit of zero.
    let (_dir, engine) = engine_dir(
        &[(
            "beat",
            "heartbeat",
            "[capabilities]\nrequired = [\"local-store\", \"logging\"]\n[limits]\nfuel_per_event = 0\n",
        )],
        "",
    );
    both_refuse(&engine, "`limits.fuel_per_event`: must be greater than 0");

    // One chain under two spellings.
    let (_dir, engine) = engine_dir(
        &[("beat", "heartbeat", STORE_AND_LOGS)],
        "\n[chains.01]\nrpc_url = \"ws://127.0.0.1:1\"\n[chains.1]\nrpc_url = \"ws://127.0.0.1:2\"\n",
    );
    both_refuse(
        &engine,
        "`chains.1`: chain 1 is already configured by [chains.01]",
    );
}

#[test]
fn check_warns_about_a_capability_declared_but_not_imported() {
    let (dir, engine) = engine_dir(
        &[(
            "beat",
            "heartbeat",
            "[capabilities]\nrequired = [\"local-store\", \"logging\", \"chain\"]\n",
        )],
        "",
    );
    let output = nexum(&["check", engine.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains(&format!(
            "warn   beat: {}: `capabilities.required` declares \"chain\", which the component does not import; remove it\n",
            dir.path().join("beat.toml").display()
        )),
        "{text}"
    );
    assert_eq!(text.matches("warn ").count(), 1, "{text}");
}

/// Linux's ETXTBSY: the file to execute is open for writing.
const ETXTBSY: i32 = 26;

/// Runs the nexum binary as an unprivileged user (root ignores permission bits): a copy of
/// it in `dir`, which is opened to everyone, under `setpriv` when this test runs as root.
fn nexum_unprivileged(dir: &Path, args: &[&str]) -> Output {
    use std::os::unix::fs::PermissionsExt;
    let binary = dir.join("nexum");
    std::fs::copy(NEXUM, &binary).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let as_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    let command = || {
        let mut command = if as_root {
            let mut setpriv = Command::new("setpriv");
            setpriv.args(["--reuid=65534", "--regid=65534", "--clear-groups"]);
            setpriv.arg(&binary);
            setpriv
        } else {
            Command::new(&binary)
        };
        command.args(args).current_dir(dir).env_remove("RUST_LOG");
        command
    };
    // The copy was just written: a process another test forks meanwhile briefly holds its
    // write handle, and executing it then fails with ETXTBSY ("Text file busy"). Tried
    // again, every 20 ms for up to 10 s, until it runs.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match command().output() {
            Ok(output)
                if output.status.code() == Some(126)
                    && stderr(&output).contains("Text file busy") => {}
            Err(e) if e.raw_os_error() == Some(ETXTBSY) => {}
            Ok(output) => return output,
            Err(e) => panic!("running nexum unprivileged (setpriv is part of util-linux): {e}"),
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{binary:?} stayed busy"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn a_read_only_state_dir_is_one_line_that_names_the_os_reason() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, _) = engine_dir(&[("beat", "heartbeat", STORE_AND_LOGS)], "");
    // The component beside the engine, readable by anyone.
    let wasm = dir.path().join("beat.wasm");
    std::fs::copy(guests::wasm("heartbeat"), &wasm).unwrap();
    std::fs::write(
        dir.path().join("engine.toml"),
        "[engine]\nstate_dir = \"state\"\n\n[[modules]]\npath = \"beat.wasm\"\nmanifest = \"beat.toml\"\n",
    )
    .unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o555)).unwrap();

    let ran = nexum_unprivileged(dir.path(), &["run", "engine.toml"]);
    assert_eq!(ran.status.code(), Some(1));
    let said = stderr(&ran);
    let errors: Vec<&str> = said.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(
        errors,
        ["error: state directory state: store: Permission denied (os error 13)"],
        "{said}"
    );
    assert!(!said.contains("Os {"), "{said}");

    let read = nexum_unprivileged(dir.path(), &["store", "engine.toml", "beat"]);
    assert_eq!(read.status.code(), Some(1));
    assert_eq!(
        stderr(&read),
        "error: cannot open the state in state: store: Permission denied (os error 13)\n"
    );
}

#[test]
fn a_worker_count_that_is_not_a_whole_number_above_0_is_refused_without_a_panic() {
    for value in ["two", "0", ""] {
        let output = Command::new(NEXUM)
            .args(["hash", "m.wasm"])
            .env("TOKIO_WORKER_THREADS", value)
            .output()
            .expect("running nexum");
        assert_eq!(output.status.code(), Some(1), "{value:?}");
        assert_eq!(
            stderr(&output),
            format!("error: TOKIO_WORKER_THREADS must be a whole number above 0, not `{value}`\n")
        );
    }
}
