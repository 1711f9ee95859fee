#!/usr/bin/env bash
# The workload benchmark (tests/benches/workloads.rs): nexum (production profile) against Anvil —
# loss, latency from the node's own push, CPU of the drive phase, peak RSS, threads, and a
# 100,000-log backfill. Installs what it needs, like the other scripts. Arguments pick rows
# (words of their labels; `!word` for words they must not hold).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$ROOT"

ensure_wasm_target
ensure_anvil
export PATH="$TOOLS/bin:$PATH"
build_modules
# The build operators run (Cargo.toml, `[profile.production]`): about 13 minutes cold on 2 cores.
say "building nexum (production profile)"
cargo build --profile production --quiet -p nexum-cli
say "running the workloads"
cargo bench --quiet -p nexum-tests --bench workloads -- "$@"
