#!/usr/bin/env bash
# Overhead benchmark (not a test): page-allocator churn run alternately
# without tracing and under apq-agent --local in each mode, in the same
# script, so the figures are ratios measured side by side. Prints the median
# of traced/untraced for each workload and mode. Needs root.
#   scripts/bench-overhead.sh [ROUNDS] [BYTES]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-7}
bytes=${2:-$((2 << 30))}
bash scripts/build.sh >/dev/null
agent=build/agent/apq-agent
churn=build/tests/apq-churn

declare -A modes=([exact]="--sample-bytes 0" [sampled-512KiB]="--sample-bytes 524288")
workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT

run_once() {  # workload mode -> seconds
  local workload=$1 mode=$2 agent_pid=""
  if [[ $mode != untraced ]]; then
    # shellcheck disable=SC2086
    "$agent" --local --interval 3600 --format json ${modes[$mode]} >/dev/null 2>"$workdir/agent.err" &
    agent_pid=$!
    for _ in $(seq 1 600); do grep -q "tracing started" "$workdir/agent.err" && break; sleep 0.1; done
    grep -q "tracing started" "$workdir/agent.err" || { cat "$workdir/agent.err" >&2; exit 1; }
  fi
  "$churn" "--$workload" "$bytes"
  if [[ -n $agent_pid ]]; then kill -INT "$agent_pid"; wait "$agent_pid" || true; fi
}

median() { sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

echo "apq overhead: $rounds alternating rounds, $((bytes >> 20)) MiB per run, $(uname -r), $(nproc) CPUs"
for workload in pipe fault; do
  for round in $(seq 1 "$rounds"); do
    for mode in untraced exact sampled-512KiB; do
      echo "$mode $(run_once "$workload" "$mode")" >>"$workdir/$workload.times"
    done
  done
  base=$(awk '$1=="untraced"{print $2}' "$workdir/$workload.times" | median)
  printf '%-6s untraced median %.3f s (%.2f us per 4 KiB page)\n' "$workload" "$base" \
    "$(echo "$base $bytes" | awk '{print $1 * 1e6 / ($2 / 4096)}')"
  for mode in exact sampled-512KiB; do
    # Ratio per round against that round's untraced run, then the median.
    paste <(awk '$1=="untraced"{print $2}' "$workdir/$workload.times") \
          <(awk -v m="$mode" '$1==m{print $2}' "$workdir/$workload.times") |
      awk '{print $2/$1}' | median | xargs printf "%-6s %-15s traced/untraced median %.2fx\n" "$workload" "$mode"
    awk -v m="$mode" '$1==m{print $2}' "$workdir/$workload.times" | median |
      awk -v b="$base" -v n="$bytes" -v w="$workload" -v m="$mode" \
        '{printf "%-6s %-15s adds %.2f us per page (median run %.3f s)\n", w, m, ($1 - b) * 1e6 / (n / 4096), $1}'
  done
done
