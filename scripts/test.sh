#!/usr/bin/env bash
# README command 2: builds apq and runs every test tier: unit tests (no
# root) and the root tier, which loads the real BPF programs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
cd build
echo "== unit tests"
ctest -L unit --output-on-failure
echo "== root tier (real BPF programs)"
ctest -L root --output-on-failure
