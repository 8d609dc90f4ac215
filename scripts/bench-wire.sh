#!/usr/bin/env bash
# Wire size (not a test): one agent streams to a fresh local aggregator for
# SECONDS at --interval INTERVAL, in sampled (default) and exact mode, on
# this host as it is (quiet) and while it is busy (a new process every
# second pushing pipe data and faulting anonymous memory, so new series
# appear every interval); prints bytes sent per interval, with and without
# the symbol table (uploaded once per build for the whole fleet). Needs root.
#   scripts/bench-wire.sh [SECONDS] [INTERVAL]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
interval=${2:-10}
bash scripts/build.sh >/dev/null
workdir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$workdir"' EXIT

busy_host() {  # until killed: a short-lived allocating process every second
  while true; do
    build/tests/apq-churn --pipe $((64 << 20)) >/dev/null &
    build/tests/apq-churn --fault $((64 << 20)) >/dev/null &
    sleep 1
  done
}

echo "apq wire size: ${seconds} s at --interval ${interval}, $(uname -r)"
for load in quiet busy; do
  for mode in 524288 0; do
    rm -f "$workdir"/apq.db*
    build/aggregator/apq-aggregator --listen 127.0.0.1:0 --db "$workdir/apq.db" 2>"$workdir/aggregator.err" &
    aggregator=$!
    for _ in $(seq 1 100); do grep -q "listening on port" "$workdir/aggregator.err" && break; sleep 0.1; done
    port=$(sed -n 's/.*listening on port \([0-9]*\),.*/\1/p' "$workdir/aggregator.err")
    busy=
    if [[ $load == busy ]]; then
      busy_host &
      busy=$!
    fi
    build/agent/apq-agent --aggregator "127.0.0.1:$port" --cluster bench --host "bench-$mode" --interval "$interval" \
      --duration "$seconds" --sample-bytes "$mode" 2>"$workdir/agent.err"
    [[ -z $busy ]] || { kill "$busy"; wait "$busy" 2>/dev/null || true; }
    kill "$aggregator"
    wait "$aggregator" || true
    sent=$(sed -n 's/.*sent \([0-9]*\) bytes.* over \([0-9]*\) intervals/\1 \2/p' "$workdir/agent.err")
    symbols=$(python3 - "$workdir/apq.db" <<'PY'
import sqlite3, sys
print(sum(len(r[0]) for r in sqlite3.connect(sys.argv[1]).execute("SELECT symbols FROM symbol_tables")))
PY
)
    read -r bytes n <<<"$sent"
    echo "$load, sample-bytes=$mode: $bytes bytes in $n intervals: $((bytes / n)) bytes/interval;" \
      "without the symbol upload ($symbols bytes, once per build): $(((bytes - symbols) / n)) bytes/interval"
  done
done
