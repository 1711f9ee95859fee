#!/usr/bin/env bash
# Builds the production nexum binary with profile-guided optimisation (PGO): an instrumented
# build runs the benchmark's workloads once against Anvil (a module on blocks and logs that
# logs and commits per event; chain reads; a backfill), and the final build lays out and
# inlines the code by what those runs executed. Measured on 2 cores against the plain
# production build, on the workloads it was trained on: CPU of the 3,000-log drive
# 0.18–0.22 → 0.16–0.17 s, whole-run peak RSS 28–31 → 21–23 MiB (README, Benchmarks). It
# takes about twice as long: two production builds, the benchmark's own build and a few
# minutes of training, some 25 minutes cold on 2 cores.
#
# The binary lands in target/pgo/nexum (under CARGO_TARGET_DIR when set). Installs what it
# needs, like the other scripts: the wasm32-wasip2 target, the test modules and Anvil (for
# the training run; npm installs Anvil), and the Rust toolchain's llvm-tools
# (llvm-profdata merges the profiles).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$ROOT"

# Absolute: the training run starts nexum from the tests' directory, and rustc resolves a
# profile path from each crate's.
TARGET_DIR="$(realpath -m "${CARGO_TARGET_DIR:-$ROOT/target}")"
case "$TARGET_DIR" in
    *[[:space:]]*)
        echo "build-pgo.sh: the target directory '$TARGET_DIR' holds whitespace, which RUSTFLAGS cannot carry" >&2
        exit 1
        ;;
esac
# The benchmark (the training run) builds its test modules under it too.
export CARGO_TARGET_DIR="$TARGET_DIR"
HOST="$(rustc -vV | sed -n 's/^host: //p')"
# The instrumented build has a target directory of its own, so that neither build throws
# away the other's artifacts.
INSTRUMENTED_DIR="$TARGET_DIR/pgo-instrumented"
PROFILES="$TARGET_DIR/pgo-profiles"
OUT="$TARGET_DIR/pgo"

# llvm-profdata of the toolchain's own LLVM (`LLVM_PROFDATA` overrides where it is; it must
# read the profiles of rustc's LLVM version).
ensure_llvm_profdata() {
    if [ -n "${LLVM_PROFDATA:-}" ]; then
        LLVM_PROFDATA="$(command -v "$LLVM_PROFDATA")" \
            || { echo "build-pgo.sh: LLVM_PROFDATA names no program" >&2; exit 1; }
        return
    fi
    LLVM_PROFDATA="$(rustc --print sysroot)/lib/rustlib/$HOST/bin/llvm-profdata"
    if [ ! -x "$LLVM_PROFDATA" ]; then
        command -v rustup >/dev/null || {
            echo "build-pgo.sh: llvm-profdata is not at $LLVM_PROFDATA and rustup is missing to install llvm-tools; set LLVM_PROFDATA" >&2
            exit 1
        }
        say "installing the Rust toolchain's llvm-tools (llvm-profdata)"
        rustup component add llvm-tools
    fi
    [ -x "$LLVM_PROFDATA" ] || { echo "llvm-profdata not found at $LLVM_PROFDATA" >&2; exit 1; }
}

ensure_llvm_profdata
ensure_anvil
export PATH="$TOOLS/bin:$PATH"
build_modules

# `--target` keeps the flags off build scripts and proc macros, which run on the build
# machine and are no part of the binary.
say "building instrumented nexum (production profile, 1 of 2)"
rm -rf "$PROFILES"
mkdir -p "$PROFILES/raw"
RUSTFLAGS="${RUSTFLAGS:-} -Cprofile-generate=$PROFILES/raw" \
    CARGO_TARGET_DIR="$INSTRUMENTED_DIR" \
    cargo build --profile production --quiet -p nexum-cli --target "$HOST"

say "training: the benchmark's workloads on the instrumented binary"
# Every row the benchmark has but the floors, which run no nexum: blocks and logs, with
# and without the cross-check, chain reads, both compilers, two workers, and the backfill.
# nexum writes its profile when it exits (the benchmark stops it with SIGTERM).
NEXUM_BIN="$INSTRUMENTED_DIR/$HOST/production/nexum" \
    cargo bench --quiet -p nexum-tests --bench workloads -- '!floor'
compgen -G "$PROFILES/raw/*.profraw" >/dev/null || { echo "the training run wrote no profile" >&2; exit 1; }
"$LLVM_PROFDATA" merge -o "$PROFILES/merged.profdata" "$PROFILES"/raw/*.profraw
# Named by its content: the flags, and so cargo's fingerprint of every crate, change with
# the profile, so no crate keeps code laid out by an earlier run's.
PROFDATA="$PROFILES/nexum-$(sha256sum "$PROFILES/merged.profdata" | cut -c1-16).profdata"
mv "$PROFILES/merged.profdata" "$PROFDATA"

say "building nexum with the profile (production profile, 2 of 2)"
RUSTFLAGS="${RUSTFLAGS:-} -Cprofile-use=$PROFDATA" \
    cargo build --profile production --quiet -p nexum-cli --target "$HOST"
mkdir -p "$OUT"
# Through a new file: the old one may be running.
cp "$TARGET_DIR/$HOST/production/nexum" "$OUT/nexum.new"
mv "$OUT/nexum.new" "$OUT/nexum"
say "built $OUT/nexum"
