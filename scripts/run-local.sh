#!/usr/bin/env bash
# README command 1: builds apq and shows the top kernel call paths of this
# host by outstanding page-allocator bytes (apq-agent --local), refreshed
# every 5 s until Ctrl-C. Extra arguments go to apq-agent, e.g.
#   scripts/run-local.sh --duration 15 --format folded
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh >&2
exec build/agent/apq-agent --local "$@"
