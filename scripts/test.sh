#!/usr/bin/env bash
# The whole test suite: set-up, formatting, lints, then every test (unit, end to end,
# compiled guests, a real store). `.ci/run` calls this.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$ROOT"

# A run from a fresh clone compiles everything once: incremental caches would only add
# gigabytes of disk (a CI run once ran out of it) and time to that one build.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
mkdir -p "$TARGET_DIR"
say "disk free where the build goes: $(df -h --output=avail "$TARGET_DIR" | tail -1 | tr -d ' ')"

ensure_wasm_target
ensure_anvil
ensure_postgres
ensure_promtool
ensure_systemd_analyze
ensure_registry
export PATH="$TOOLS/bin:$PATH"

say "cargo fmt --check"
cargo fmt --all -- --check

say "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --quiet -- -D warnings
# The SDK alone, as a keeper that does not trade builds it: without its `cow` feature
# (in the workspace, feature unification always turns it on).
cargo clippy -p nexum-guest --all-targets --quiet -- -D warnings

say "cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet

build_modules
start_test_postgres

say "cargo test"
cargo test --workspace --quiet

say "operations: alert rules, dashboard, service unit, the production handbook's commands"
bash "$ROOT/scripts/check-ops.sh"

say "all tests passed (target dir: $(du -sh "$TARGET_DIR" | cut -f1), disk free: $(df -h --output=avail "$TARGET_DIR" | tail -1 | tr -d ' '))"
