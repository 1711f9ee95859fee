//! Compiled guests: every example and fixture module, built from source for
//! `wasm32-wasip2` with the `guest` profile.
//!
//! The first caller in a process builds them all (cargo makes concurrent builds from other
//! test processes wait); later calls only look the files up. They are built into their own
//! target directory so the nested cargo never waits on the lock of the outer `cargo test`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Every guest crate in the workspace.
pub const GUESTS: &[&str] = &[
    "heartbeat",
    "block-logger",
    "event-counter",
    "twap-keeper",
    "probe",
    "chain-caller",
    "noop",
    "recorder",
    "chain-probe",
    "cow-probe",
    "hostile",
    "ext-user",
    "attacker",
    "latency-probe",
];

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the workspace root")
        .to_path_buf()
}

/// The target directory guests are built into: `$CARGO_TARGET_DIR/guests`, else
/// `target/guests` in the workspace (the same rule as `scripts/build-modules.sh`).
pub fn guest_target_dir() -> PathBuf {
    let base = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    base.join("guests")
}

/// The compiled component of guest crate `name` (building all guests on first use).
pub fn wasm(name: &str) -> PathBuf {
    assert!(
        GUESTS.contains(&name),
        "unknown guest `{name}`; add it to GUESTS"
    );
    let dir = BUILT.get_or_init(build_all);
    let path = dir.join(format!("{}.wasm", name.replace('-', "_")));
    assert!(
        path.is_file(),
        "{} was not produced by the guest build",
        path.display()
    );
    path
}

/// The bytes of guest `name`.
pub fn wasm_bytes(name: &str) -> Vec<u8> {
    std::fs::read(wasm(name)).expect("reading a built guest")
}

static BUILT: OnceLock<PathBuf> = OnceLock::new();

fn build_all() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let target_dir = guest_target_dir();
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace_root())
        .args([
            "build",
            "--target",
            "wasm32-wasip2",
            "--profile",
            "guest",
            "--target-dir",
        ])
        .arg(&target_dir);
    for guest in GUESTS {
        command.args(["-p", guest]);
    }
    let output = command.output().expect("running cargo to build the guests");
    assert!(
        output.status.success(),
        "building the guests failed (is the wasm32-wasip2 target installed? \
         `rustup target add wasm32-wasip2`):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    target_dir.join("wasm32-wasip2").join("guest")
}
