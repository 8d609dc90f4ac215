#!/usr/bin/env bash
# Root tier: an aggregator with its web view, an agent, 16 pipes of 1 MiB
# held, and a real browser (tests/web/web_view_test.mjs) that must see them.
# The screenshot is kept: BUILD_DIR/artifacts/web-view.png.
#   tests/web/web-view.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
fail() { echo "web-view: $*" >&2; exit 1; }
[[ -d $here/node_modules/playwright-core ]] || fail "playwright-core is not installed: run scripts/setup.sh"
source "$here/../daemons.sh"
cluster=ci
start_aggregator "$build" --http 127.0.0.1:0 --sample-seconds 1
[[ -n $http ]] || fail "the aggregator serves no HTTP: $(cat "$work/aggregator.log")"
start_agent "$build" host-a --classify-interval 2
"$build/tests/apq-hold-pipes" --pipes 16 --hold-seconds 120 >"$work/pipes.log" 2>&1 &
workload=$!
pids+=("$workload")
wait_for ready "$work/pipes.log" 60 || fail "the pipe workload did not start"
mkdir -p "$build/artifacts"
node "$here/web_view_test.mjs" "http://127.0.0.1:$http" "$workload" $((16 << 20)) "$build/artifacts/web-view.png"
