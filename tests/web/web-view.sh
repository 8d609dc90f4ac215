#!/usr/bin/env bash
# Root tier: an aggregator with its web view, an agent, 16 pipes of 1 MiB
# held, and a real browser (tests/web/web_view_test.mjs) that must see them.
# The screenshot is kept: BUILD_DIR/artifacts/web-view.png.
#   tests/web/web-view.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "web-view: $*" >&2; exit 1; }
[[ -d $here/node_modules/playwright-core ]] || fail "playwright-core is not installed: run scripts/setup.sh"

"$build/aggregator/apq-aggregator" --listen 127.0.0.1:0 --http 127.0.0.1:0 --db "$work/apq.db" --sample-seconds 1 \
  2>"$work/aggregator.log" &
pids+=($!)
for _ in $(seq 1 100); do grep -q "listening on port" "$work/aggregator.log" && break; sleep 0.1; done
port=$(sed -n 's/.*listening on port \([0-9]*\),.*/\1/p' "$work/aggregator.log")
http=$(sed -n 's/.*http on port \([0-9]*\) .*/\1/p' "$work/aggregator.log")
[[ -n $port && -n $http ]] || fail "aggregator did not start: $(cat "$work/aggregator.log")"
"$build/agent/apq-agent" --aggregator "127.0.0.1:$port" --cluster ci --host host-a --interval 1 --sample-bytes 0 --classify-interval 2 \
  2>"$work/agent.log" &
pids+=($!)
for _ in $(seq 1 600); do grep -q "tracing started" "$work/agent.log" && break; sleep 0.1; done
grep -q "tracing started" "$work/agent.log" || fail "agent did not start: $(cat "$work/agent.log")"
"$build/tests/apq-hold-pipes" --pipes 16 --hold-seconds 120 >"$work/pipes.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do grep -q ready "$work/pipes.log" && break; sleep 0.1; done
mkdir -p "$build/artifacts"
node "$here/web_view_test.mjs" "http://127.0.0.1:$http" $((16 << 20)) "$build/artifacts/web-view.png"
