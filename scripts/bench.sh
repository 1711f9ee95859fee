#!/usr/bin/env bash
# The workload benchmark (tests/benches/workloads.rs): nexum (production profile, PGO) against Anvil —
# loss, latency from the node's own push, CPU of the drive phase, peak RSS, threads, and a
# 100,000-log backfill; beside them the machine's floor, a bare reader of each workload.
# Installs what it needs, like the other scripts. Arguments pick rows (words of their
# labels; `!word` for words they must not hold).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$ROOT"
# Absolute: the benchmark runs from tests/, and builds its test modules under this too.
CARGO_TARGET_DIR="$(realpath -m "${CARGO_TARGET_DIR:-$ROOT/target}")"
export CARGO_TARGET_DIR

ensure_wasm_target
ensure_anvil
export PATH="$TOOLS/bin:$PATH"
build_modules
# What operators install (docs/production.md): the production profile built with
# profile-guided optimisation (scripts/build-pgo.sh, about 25 minutes cold on 2 cores).
# `NEXUM_BENCH_PGO=0` measures the plain production build instead (about 13 minutes);
# `NEXUM_BIN=<path>` measures a binary already built.
if [ -n "${NEXUM_BIN:-}" ]; then
    say "measuring $NEXUM_BIN"
elif [ "${NEXUM_BENCH_PGO:-1}" = 0 ]; then
    say "building nexum (production profile)"
    cargo build --profile production --quiet -p nexum-cli
    export NEXUM_BIN="$CARGO_TARGET_DIR/production/nexum"
else
    bash "$ROOT/scripts/build-pgo.sh"
    export NEXUM_BIN="$CARGO_TARGET_DIR/pgo/nexum"
fi
say "running the workloads"
cargo bench --quiet -p nexum-tests --bench workloads -- "$@"
