#!/usr/bin/env bash
# Runs every test: unit, conformance (skipped when ../shared/conformance is absent) and
# integration (each script skips, saying why, when the machine lacks what it needs).
# Expects scripts/setup.sh to have run; rebuilds what changed first.
set -euo pipefail
cd "$(dirname "$0")/.."

cmake --build build -j "$(nproc)"
ctest --test-dir build --output-on-failure -j "$(nproc)" "$@"
