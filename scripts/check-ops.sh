#!/usr/bin/env bash
# Checks what an operator deploys from deploy/ and docs/production.md: the alert rules
# (promtool check and unit tests), the Prometheus config of the handbook, the systemd unit
# (systemd-analyze verify, and its stop timeout against the drain nexum prints), and every
# `sh` block of the handbook, run in order in one shell against a scratch copy of its
# layout with the handbook's own engine.toml. `scripts/test.sh` runs it.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$ROOT"

ensure_promtool
ensure_systemd_analyze
HANDBOOK="$ROOT/docs/production.md"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
cargo build --quiet -p nexum-cli
NEXUM="$TARGET/debug/nexum"

SCRATCH="$(mktemp -d)"
ENGINE_PID=""
cleanup() {
    if [ -n "$ENGINE_PID" ]; then kill -9 "$ENGINE_PID" 2>/dev/null || true; fi
    rm -rf "$SCRATCH"
}
trap cleanup EXIT

# The Nth fenced block of LANG in the handbook (1-based).
block() {
    awk -v lang="$1" -v want="$2" '
        $0 == "```" lang { n++; inside = (n == want); next }
        /^```/ { inside = 0; next }
        inside { print }
    ' "$HANDBOOK"
}

# The handbook's paths, moved under the scratch directory.
relocate() {
    sed -e "s|/etc/nexum|$SCRATCH/etc/nexum|g" \
        -e "s|/var/lib/nexum|$SCRATCH/var/lib/nexum|g" \
        -e "s|/var/backups/nexum|$SCRATCH/var/backups/nexum|g"
}

fail() { echo "check-ops: $*" >&2; exit 1; }

say "promtool: alert rules and their unit tests"
(cd deploy/prometheus && promtool check rules nexum-alerts.yml && promtool test rules nexum-alerts.test.yml)

say "promtool: the handbook's Prometheus config"
block yaml 1 | sed "s|/etc/prometheus/nexum-alerts.yml|$ROOT/deploy/prometheus/nexum-alerts.yml|" \
    > "$SCRATCH/prometheus.yml"
promtool check config "$SCRATCH/prometheus.yml"

say "grafana: the dashboard is JSON and queries only metrics nexum exports"
python3 - "$ROOT" <<'PY'
import json, re, sys
root = sys.argv[1]
names = set(re.findall(r'"(nexum_[a-z_]+)"', open(f"{root}/nexum-host/src/telemetry/names.rs").read()))
dashboard = json.load(open(f"{root}/deploy/grafana/nexum-dashboard.json"))
rules = open(f"{root}/deploy/prometheus/nexum-alerts.yml").read()
exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
used = set(re.findall(r"\bnexum_[a-z_]+", " ".join(exprs) + rules))
histogram = {n + s for n in names for s in ("_bucket", "_sum", "_count")}
unknown = sorted(used - names - histogram)
if unknown:
    sys.exit(f"dashboard or alerts use metrics nexum does not export: {unknown}")
print(f"  {len(dashboard['panels'])} panels and the alert rules use {len(used)} metric names, all exported")
PY

say "systemd-analyze verify deploy/systemd/nexum.service"
mkdir -p "$SCRATCH/unit"
sed "s|/usr/local/bin/nexum|$NEXUM|" deploy/systemd/nexum.service > "$SCRATCH/unit/nexum.service"
verified="$(systemd-analyze verify "$SCRATCH/unit/nexum.service" 2>&1)" || fail "$verified"
[ -z "$verified" ] || fail "systemd-analyze verify warns: $verified"
stop_timeout="$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s$/\1/p' deploy/systemd/nexum.service)"
[ -n "$stop_timeout" ] || fail "the unit has no TimeoutStopSec=<N>s"

say "the handbook's commands, against a scratch layout"
mkdir -p "$SCRATCH/etc/nexum/modules" "$SCRATCH/var/lib" "$SCRATCH/var/backups/nexum"
[ -f build/modules/heartbeat.wasm ] || build_modules
cp build/modules/heartbeat.wasm "$SCRATCH/etc/nexum/modules/heartbeat.wasm"
cp examples/heartbeat/module.toml "$SCRATCH/etc/nexum/modules/heartbeat.toml"
# The service's environment file, as the handbook lays it out.
printf 'NEXUM_ADMIN_TOKEN=%s\n' "check-ops-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')" \
    > "$SCRATCH/etc/nexum/env"
chmod 0640 "$SCRATCH/etc/nexum/env"
pin="$("$NEXUM" hash "$SCRATCH/etc/nexum/modules/heartbeat.wasm")"
block toml 1 | relocate | sed "s|sha256:@HEARTBEAT_SHA256@|$pin|" > "$SCRATCH/etc/nexum/engine.toml"
export PATH="$TARGET/debug:$PATH"

# The service, as systemd would run it; waits for `line` in its log (60 s at most).
start_engine() {
    : > "$SCRATCH/run.log"
    nexum run "$SCRATCH/etc/nexum/engine.toml" >> "$SCRATCH/run.log" 2>&1 &
    ENGINE_PID=$!
}
wait_line() {
    local waited=0
    until grep -q -- "$1" "$SCRATCH/run.log"; do
        kill -0 "$ENGINE_PID" 2>/dev/null || { cat "$SCRATCH/run.log" >&2; fail "nexum exited before printing '$1'"; }
        [ "$waited" -lt 600 ] || { cat "$SCRATCH/run.log" >&2; fail "no '$1' within 60 s"; }
        sleep 0.1
        waited=$((waited + 1))
    done
}
stop_engine() {
    kill -TERM "$ENGINE_PID"
    wait "$ENGINE_PID" || fail "nexum did not stop cleanly"
    ENGINE_PID=""
}

echo "  before every deploy"
eval "$(block sh 1 | relocate)"
start_engine
wait_line '"message":"running; press ctrl-c'
drain="$(grep -o 'a stop waits up to [0-9]* s' "$SCRATCH/run.log" | grep -o '[0-9]*')"
[ -n "$drain" ] || fail "nexum did not print its shutdown drain"
[ "$drain" -lt "$stop_timeout" ] || fail "the unit's TimeoutStopSec=${stop_timeout}s is not above the drain of ${drain} s"
# A beat's call starts only after the one before it committed: from #3 on, the store holds
# at least two.
wait_line 'beat #3'
echo "  a backup while the engine runs"
eval "$(block sh 2 | relocate)"
[ -s "$BACKUP" ] || fail "no backup at $BACKUP"
stop_engine
echo "  a restore into an empty state directory"
mv "$SCRATCH/var/lib/nexum" "$SCRATCH/var/lib/nexum.old"
install -d -m 0700 "$SCRATCH/var/lib/nexum"
eval "$(block sh 3 | relocate)"
start_engine
wait_line 'beat #'
first="$(grep -o 'beat #[0-9]*' "$SCRATCH/run.log" | head -1 | grep -o '[0-9]*')"
[ "$first" -ge 3 ] || fail "the restored heartbeat started over at beat #$first"
stop_engine
say "operations checks passed (drain ${drain} s < TimeoutStopSec ${stop_timeout} s; restored heartbeat went on at beat #$first)"
