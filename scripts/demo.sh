#!/usr/bin/env bash
# The demo: builds the example modules and nexum, then runs them so you can watch events
# reach modules. Stop it with ctrl-c (state is kept in build/data; run again to resume).
#
#   scripts/demo.sh            run until ctrl-c
#   scripts/demo.sh 20         run for 20 seconds
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$ROOT"

duration="${1:-}"
build_modules
say "building nexum"
cargo build --quiet -p nexum-cli
nexum="${CARGO_TARGET_DIR:-$ROOT/target}/debug/nexum"

say "running the heartbeat module (a cron tick every 2 s); ctrl-c stops"
if [ -n "$duration" ]; then
    "$nexum" run examples/heartbeat/engine.toml &
    pid=$!
    sleep "$duration"
    kill -INT "$pid"
    wait "$pid"
else
    exec "$nexum" run examples/heartbeat/engine.toml
fi
