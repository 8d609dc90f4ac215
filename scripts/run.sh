#!/usr/bin/env bash
# README command 1: builds apq and runs its embedded default on this host:
# an aggregator on a SQLite file (build/embedded/apq.db), one agent
# streaming to it, and `apq top` of this host's hidden pages (counted by no
# /proc/meminfo field) every 5 s until Ctrl-C.
#   scripts/run.sh                  embedded default, until Ctrl-C
#   scripts/run.sh --seconds 30     ... for 30 s, then one last top
#   scripts/run.sh --local [FLAGS]  the agent alone (apq-agent --local FLAGS)
# Needs root (BPF). APQ_SAMPLE_BYTES sets the agent's --sample-bytes
# (default 0: exact); APQ_CLASS the pages shown (hidden, visible or all).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh >&2
if [[ ${1:-} == --local ]]; then
  shift
  exec build/agent/apq-agent --local "$@"
fi
seconds=0
if [[ ${1:-} == --seconds ]]; then
  seconds=${2:?--seconds needs a number}
  shift 2
fi
[[ $# -eq 0 ]] || { echo "usage: scripts/run.sh [--seconds S] | --local [apq-agent flags]" >&2; exit 2; }

state=build/embedded
mkdir -p "$state"
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT
trap 'exit 0' INT TERM
rm -f "$state/aggregator.ready"
build/aggregator/apq-aggregator --listen 127.0.0.1:0 --db "$state/apq.db" --ready-file "$state/aggregator.ready" \
  2>"$state/aggregator.log" &
pids+=($!)
for _ in $(seq 1 100); do grep -qs "ready=1" "$state/aggregator.ready" && break; sleep 0.1; done
port=$(sed -n 's/^grpc_port=//p' "$state/aggregator.ready" 2>/dev/null)
[[ -n $port ]] || { cat "$state/aggregator.log" >&2; exit 1; }
build/agent/apq-agent --aggregator "127.0.0.1:$port" --cluster embedded --host "$(hostname)" --interval 5 \
  --sample-bytes "${APQ_SAMPLE_BYTES:-0}" 2>"$state/agent.log" &
pids+=($!)
for _ in $(seq 1 300); do grep -q "connected to" "$state/agent.log" && break; sleep 0.1; done
grep -q "connected to" "$state/agent.log" || { cat "$state/agent.log" >&2; exit 1; }
echo "apq: aggregator 127.0.0.1:$port (database $state/apq.db), agent streaming as embedded/$(hostname)" >&2
start=$SECONDS
while true; do
  sleep 5
  build/cli/apq top --aggregator "127.0.0.1:$port" --cluster embedded --top 20 --class "${APQ_CLASS:-hidden}"
  echo
  if ((seconds > 0 && SECONDS - start >= seconds)); then break; fi
done
