//! Modules shipped by digest, as an operator deploys them: `nexum push` to a real OCI
//! registry, `nexum run` of an engine.toml that names only `oci://` sources on a machine
//! that never had the files, a tag moved to other bytes refused before compilation, a
//! registry that went away (warm cache: boots; cold cache: one line naming the module and
//! source), HTTP(S) sources checked and repaired, and a reload that upgrades by digest.

use nexum_tests::anvil::free_port;
use nexum_tests::guests;
use nexum_tests::process::Process;
use nexum_tests::registry::Registry;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

const NEXUM: &str = env!("CARGO_BIN_EXE_nexum");
const WAIT: Duration = Duration::from_secs(60);

fn nexum(args: &[&str]) -> Output {
    Command::new(NEXUM)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("running nexum")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn digest(path: &Path) -> String {
    nexum_core::ComponentDigest::of(&std::fs::read(path).unwrap()).to_string()
}

/// `nexum push GUEST oci://…`; returns the pin it printed.
fn push(guest: &str, reference: &str) -> String {
    let wasm = guests::wasm(guest);
    let output = nexum(&["push", wasm.to_str().unwrap(), reference]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let out = text(&output.stdout);
    let pin = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("sha256 = \""))
        .and_then(|l| l.strip_suffix('"'))
        .unwrap_or_else(|| panic!("no pin in {out}"))
        .to_string();
    assert_eq!(pin, digest(&wasm), "the pin is the component's sha256");
    pin
}

/// An engine.toml in a fresh `dir` with one module `name` from `source` pinned to `pin`,
/// its manifest (a heartbeat's: store, logs, a tick every second) beside it; `extra` goes
/// after `[engine]`.
fn engine(dir: &Path, name: &str, source: &str, pin: &str, extra: &str) -> PathBuf {
    std::fs::write(
        dir.join(format!("{name}.toml")),
        format!(
            "[module]\nname = \"{name}\"\nversion = \"1.0.0\"\n\n[capabilities]\nrequired = [\"local-store\", \"logging\"]\n\n\
             [[subscription]]\nkind = \"cron\"\nschedule = \"* * * * * *\"\n"
        ),
    )
    .unwrap();
    let path = dir.join("engine.toml");
    std::fs::write(
        &path,
        format!(
            "[engine]\nstate_dir = \"state\"\nrequire_pins = true\n{extra}\n\n\
             [[modules]]\nsource = \"{source}\"\nsha256 = \"{pin}\"\nmanifest = \"{name}.toml\"\n"
        ),
    )
    .unwrap();
    path
}

/// `nexum run engine` until `name` beats, then a clean stop.
fn run_until_it_beats(engine: &Path, name: &str) {
    let mut command = Command::new(NEXUM);
    command.arg("run").arg(engine).env_remove("RUST_LOG");
    let mut running = Process::spawn(command);
    running.wait_for_count(&["beat #", &format!("module=\"{name}\"")], 1, WAIT);
    assert_eq!(running.signal("-TERM").code(), Some(0));
}

#[test]
fn push_then_run_from_oci_sources_only_then_without_the_registry() {
    let mut registry = Registry::start();
    let source = format!("oci://{}/keepers/heartbeat:1.0.0", registry.host());
    let pin = push("heartbeat", &source);

    // A machine that never had the files: only engine.toml and the manifest.
    let machine = tempfile::tempdir().unwrap();
    let engine = engine(machine.path(), "heartbeat", &source, &pin, "");
    run_until_it_beats(&engine, "heartbeat");
    let hex = pin.strip_prefix("sha256:").unwrap();
    let stored = machine
        .path()
        .join(format!("state/content/sha256/{hex}.wasm"));
    assert_eq!(digest(&stored), pin);

    // The registry goes away: the warm content store boots without it.
    registry.stop();
    run_until_it_beats(&engine, "heartbeat");

    // A second machine, cold, while the registry is down: one line, module and source.
    let cold = tempfile::tempdir().unwrap();
    let cold_engine = engine_in(cold.path(), &source, &pin);
    let output = nexum(&["run", cold_engine.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let said = text(&output.stderr);
    let last = said.trim().lines().last().unwrap();
    assert!(
        last.starts_with(&format!(
            "error: module heartbeat (source {source}): cannot fetch {pin}: registry: "
        )) && last.ends_with("the content store has no copy of it"),
        "{said}"
    );
    assert!(
        !cold.path().join("state").exists(),
        "a failed boot leaves no state"
    );
}

fn engine_in(dir: &Path, source: &str, pin: &str) -> PathBuf {
    engine(dir, "heartbeat", source, pin, "")
}

#[test]
fn a_tag_moved_to_other_bytes_is_refused_before_anything_is_stored_or_compiled() {
    let registry = Registry::start();
    let source = format!("oci://{}/keepers/heartbeat:1.0.0", registry.host());
    let vetted = push("heartbeat", &source);
    // Someone pushes other bytes under the same tag.
    let swapped = push("probe", &source);
    let machine = tempfile::tempdir().unwrap();
    let engine = engine(machine.path(), "heartbeat", &source, &vetted, "");
    for command in ["fetch", "run"] {
        let output = nexum(&[command, engine.to_str().unwrap()]);
        assert_eq!(output.status.code(), Some(1), "{command}");
        let said = text(&output.stderr);
        assert!(
            said.contains(&format!(
                "module heartbeat (source {source}): cannot fetch {vetted}: the registry's artifact is {swapped}, not the pinned {vetted} (did the tag move?); refused before download"
            )),
            "{command}: {said}"
        );
    }
    assert!(!machine.path().join("state/content/sha256").exists());
    // `nexum check` is offline: it says what is missing and how to get it.
    let output = nexum(&["check", engine.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stdout).contains(&format!(
            "error  heartbeat: its component ({source}) is not in the content store yet; `nexum fetch {}` fetches it",
            engine.display()
        )),
        "{}",
        text(&output.stdout)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_sources_are_checked_repaired_when_damaged_and_pruned() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    let wasm = guests::wasm_bytes("heartbeat");
    Mock::given(method("GET"))
        .and(path("/heartbeat.wasm"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(wasm.clone()))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/tampered.wasm"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(guests::wasm_bytes("probe")))
        .mount(&server)
        .await;
    let pin = nexum_core::ComponentDigest::of(&wasm).to_string();
    let machine = tempfile::tempdir().unwrap();
    let source = format!("{}/heartbeat.wasm?token=s3cret", server.uri());
    let engine = engine(machine.path(), "heartbeat", &source, &pin, "");
    let fetch = |args: &[&str]| {
        let mut all = vec!["fetch", engine.to_str().unwrap()];
        all.extend_from_slice(args);
        let output = nexum(&all);
        assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
        text(&output.stdout)
    };
    assert!(fetch(&[]).contains(&format!("fetched   heartbeat {pin}")));
    assert!(fetch(&[]).contains(&format!("present   heartbeat {pin}")));
    // A damaged copy is noticed and fetched again.
    let hex = pin.strip_prefix("sha256:").unwrap();
    let stored = machine
        .path()
        .join(format!("state/content/sha256/{hex}.wasm"));
    std::fs::write(&stored, b"not the component").unwrap();
    assert!(fetch(&[]).contains(&format!("repaired  heartbeat {pin}")));
    assert_eq!(digest(&stored), pin);
    // What no module names any more goes with --prune.
    let stale = stored.with_file_name(format!("{}.wasm", "ab".repeat(32)));
    std::fs::write(&stale, b"old").unwrap();
    assert!(fetch(&["--prune"]).contains(&format!("removed   {}", stale.display())));
    assert!(stored.is_file() && !stale.exists());

    // A server that serves other bytes is refused with both digests, and no secret shown.
    let other = tempfile::tempdir().unwrap();
    let tampered = format!("{}/tampered.wasm?token=s3cret", server.uri());
    let refused = engine_in(other.path(), &tampered, &pin);
    let output = nexum(&["fetch", refused.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let said = text(&output.stderr);
    assert!(
        said.contains(&format!(
            "it serves {}, not the pinned {pin}; refusing it (nothing stored or compiled)",
            digest(&guests::wasm("probe"))
        )),
        "{said}"
    );
    assert!(!said.contains("s3cret"), "{said}");
}

#[test]
fn a_reload_that_changes_a_source_and_its_pin_upgrades_the_module() {
    let registry = Registry::start();
    let v1 = format!("oci://{}/keepers/ticker:1", registry.host());
    let v2 = format!("oci://{}/keepers/ticker:2", registry.host());
    let pin1 = push("heartbeat", &v1);
    let pin2 = push("recorder", &v2);
    let machine = tempfile::tempdir().unwrap();
    let admin = free_port();
    let extra = format!("[admin]\naddr = \"127.0.0.1:{admin}\"");
    let engine = engine(machine.path(), "ticker", &v1, &pin1, &extra);
    let mut command = Command::new(NEXUM);
    command.arg("run").arg(&engine).env_remove("RUST_LOG");
    let mut running = Process::spawn(command);
    running.wait_for_count(&["running; press ctrl-c"], 1, WAIT);

    let text_now = std::fs::read_to_string(&engine).unwrap();
    std::fs::write(&engine, text_now.replace(&v1, &v2).replace(&pin1, &pin2)).unwrap();
    let output = nexum(&["reload", engine.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout).contains("upgraded: ticker"),
        "{}",
        text(&output.stdout)
    );
    assert_eq!(running_component(admin, "ticker"), pin2);

    // A source whose bytes are not the pin is refused whole; the module runs on as it was.
    let text_now = std::fs::read_to_string(&engine).unwrap();
    let wrong = format!("sha256:{}", "ab".repeat(32));
    std::fs::write(&engine, text_now.replace(&pin2, &wrong)).unwrap();
    let output = nexum(&["reload", engine.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains(&format!(
            "reload refused, nothing changed: module ticker (source {v2}): cannot fetch {wrong}: the registry's artifact is {pin2}"
        )),
        "{}",
        text(&output.stderr)
    );
    assert_eq!(running_component(admin, "ticker"), pin2);
    assert_eq!(running.signal("-TERM").code(), Some(0));
}

/// The digest of the component `module` runs, from the admin API's status.
fn running_component(admin: u16, module: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", admin)).unwrap();
    stream
        .write_all(b"GET /v1/status HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let body = answer.split("\r\n\r\n").nth(1).expect("a body");
    let status: serde_json::Value = serde_json::from_str(body).unwrap();
    status["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == module)
        .unwrap_or_else(|| panic!("{module} not running: {status}"))["component"]
        .as_str()
        .unwrap()
        .to_string()
}
