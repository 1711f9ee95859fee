#!/usr/bin/env bash
# Rebuilds the checked-in bytecode of the test contracts in tests/contracts/ with the pinned
# solc. Run it after editing a .sol file there, and commit the .bin and .abi it writes.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
ensure_solc
cd "$ROOT/tests/contracts"
out="$(mktemp -d)"
for sol in *.sol; do
    node "$TOOLS/solc/node_modules/solc/solc.js" --optimize --bin --abi -o "$out" "$sol"
    name="${sol%.sol}"
    cp "$out/${name}_sol_${name}.bin" "$name.bin"
    cp "$out/${name}_sol_${name}.abi" "$name.abi"
    say "built $name.bin"
done
rm -rf "$out"
