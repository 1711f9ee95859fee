#!/usr/bin/env bash
# The demo: builds the example modules and nexum, starts a local chain (Anvil) with the test
# contract, emits events on a timer and runs nexum so blocks, logs and cron ticks visibly
# reach the modules. Stop it with ctrl-c.
#
#   scripts/demo.sh            run until ctrl-c
#   scripts/demo.sh 20         run for 20 seconds
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$ROOT"

ensure_anvil
build_modules
say "building nexum and the demo driver"
cargo build --quiet -p nexum-cli -p nexum-tests --bin nexum --bin nexum-demo
bin="${CARGO_TARGET_DIR:-$ROOT/target}/debug"

say "running: anvil (a block every 2 s), the test contract, and nexum with heartbeat, block-logger and event-counter"
exec "$bin/nexum-demo" "$bin/nexum" "$@"
