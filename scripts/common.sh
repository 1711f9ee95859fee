# Shared set-up steps for the project's scripts. Source it; do not run it.
# Everything it installs goes into the git-ignored tools/ folder or the Rust toolchain.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/tools"
ANVIL_VERSION="1.7.1"
SOLC_VERSION="0.8.28"
ANVIL="$TOOLS/bin/anvil"
# Guests build into their own target directory (the same rule as tests/src/guests.rs).
GUEST_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}/guests"
GUESTS=(heartbeat block-logger event-counter twap-keeper probe chain-caller noop recorder chain-probe cow-probe hostile ext-user attacker latency-probe)
EXAMPLES=(heartbeat block-logger event-counter twap-keeper)

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

ensure_wasm_target() {
    if ! rustup target list --installed | grep -qx wasm32-wasip2; then
        say "installing the wasm32-wasip2 Rust target"
        rustup target add wasm32-wasip2
    fi
}

# Anvil, pinned, from npm, into tools/ (no lockfile is written).
ensure_anvil() {
    if [ -x "$ANVIL" ] && "$ANVIL" --version 2>/dev/null | grep -q "$ANVIL_VERSION"; then
        return
    fi
    say "installing anvil $ANVIL_VERSION into tools/"
    command -v npm >/dev/null || { echo "npm is needed to install anvil" >&2; exit 1; }
    # Each npm tool gets its own prefix: npm prunes what a prefix's package.json lacks.
    mkdir -p "$TOOLS/anvil" "$TOOLS/bin"
    npm install --silent --no-audit --no-fund --no-save --no-package-lock \
        --prefix "$TOOLS/anvil" "@foundry-rs/anvil-linux-amd64@$ANVIL_VERSION"
    local bin="$TOOLS/anvil/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
    chmod +x "$bin"
    ln -sf "$bin" "$ANVIL"
    "$ANVIL" --version >/dev/null
}

# solc-js, pinned, from npm, into tools/ (only needed to rebuild the test contracts).
ensure_solc() {
    local solcjs="$TOOLS/solc/node_modules/solc/solc.js"
    if [ -f "$solcjs" ] && node "$solcjs" --version 2>/dev/null | grep -q "$SOLC_VERSION"; then
        return
    fi
    say "installing solc $SOLC_VERSION into tools/"
    mkdir -p "$TOOLS/solc"
    npm install --silent --no-audit --no-fund --no-save --no-package-lock \
        --prefix "$TOOLS/solc" "solc@$SOLC_VERSION"
}

# PostgreSQL, for the tests of nodes sharing a store: the system's package.
ensure_postgres() {
    if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null; then
        return
    fi
    say "installing PostgreSQL (Debian package postgresql)"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q postgresql >/dev/null
}

# A Debian package, installed when `command` is missing.
ensure_debian_package() {
    local command="$1" package="$2"
    command -v "$command" >/dev/null && return
    say "installing $package (Debian package)"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "$package" >/dev/null
    command -v "$command" >/dev/null || { echo "$package did not provide $command" >&2; exit 1; }
}

# promtool, to check and unit-test the alert rules: the system's prometheus package.
ensure_promtool() { ensure_debian_package promtool prometheus; }

# systemd-analyze, to verify the service unit: the system's systemd package.
ensure_systemd_analyze() { ensure_debian_package systemd-analyze systemd; }

# An OCI registry for the tests of modules shipped by digest: the CNCF distribution
# registry, Debian's docker-registry package.
ensure_registry() { ensure_debian_package docker-registry docker-registry; }

# Starts one PostgreSQL server for the whole test run (it dies with this script) and
# exports its address for every test binary.
start_test_postgres() {
    say "starting PostgreSQL for the test run"
    (cd "$ROOT" && cargo build --quiet -p nexum-tests --bin nexum-test-postgres)
    # Its data lives in a directory of this run's, removed with the server.
    TEST_POSTGRES_DIR="$(mktemp -d)"
    chmod 755 "$TEST_POSTGRES_DIR"   # the server runs as an unprivileged user under it
    local url_file="$TEST_POSTGRES_DIR/url"
    TMPDIR="$TEST_POSTGRES_DIR" "${CARGO_TARGET_DIR:-$ROOT/target}/debug/nexum-test-postgres" "$url_file" &
    TEST_POSTGRES_PID=$!
    trap 'kill "$TEST_POSTGRES_PID" 2>/dev/null || true; wait "$TEST_POSTGRES_PID" 2>/dev/null || true; rm -rf "$TEST_POSTGRES_DIR"' EXIT
    local waited=0
    until [ -s "$url_file" ]; do
        kill -0 "$TEST_POSTGRES_PID" 2>/dev/null || { echo "the test PostgreSQL server did not start" >&2; exit 1; }
        [ "$waited" -lt 600 ] || { echo "the test PostgreSQL server did not start within 60 s" >&2; exit 1; }
        sleep 0.1
        waited=$((waited + 1))
    done
    NEXUM_TEST_POSTGRES_URL="$(cat "$url_file")"
    export NEXUM_TEST_POSTGRES_URL
}

# Compiles every guest crate for wasm32-wasip2 and copies the examples to build/modules/.
build_modules() {
    ensure_wasm_target
    say "building modules for wasm32-wasip2"
    local args=()
    for g in "${GUESTS[@]}"; do args+=(-p "$g"); done
    (cd "$ROOT" && cargo build --quiet --target wasm32-wasip2 --profile guest \
        --target-dir "$GUEST_TARGET_DIR" "${args[@]}")
    mkdir -p "$ROOT/build/modules"
    for e in "${EXAMPLES[@]}"; do
        cp "$GUEST_TARGET_DIR/wasm32-wasip2/guest/${e//-/_}.wasm" "$ROOT/build/modules/$e.wasm"
    done
}
