#!/usr/bin/env bash
# Builds every module (examples and test fixtures) for wasm32-wasip2, installing the target
# if needed, and copies the examples to build/modules/ for the example engine configs.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
build_modules
say "modules are in build/modules/"
