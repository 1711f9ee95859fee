#!/usr/bin/env bash
# The whole test suite: set-up, formatting, lints, then every test (unit, end to end,
# compiled guests, a real store). `.ci/run` calls this.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$ROOT"

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

say "all tests passed"
