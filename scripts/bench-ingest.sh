#!/usr/bin/env bash
# Ingestion benchmark (not a test): apq-fleet-load's synthetic agents stream
# to an aggregator on a fresh database in a temporary directory; prints the
# reports acknowledged per second (each one committed to SQLite before its
# ack) and the ack latency, the aggregator's CPU, threads and memory, and
# query times while ingesting beside the same queries once ingestion has
# stopped (the baseline, same hosts in memory).
# Target from the fleet issue: 10,000 hosts every 10 s, 1,000 reports/s.
# History samples of the fleet are taken every SAMPLE_SECONDS (the
# aggregator's default is 60); the aggregator logs each one that takes 1 s
# or more.
#   scripts/bench-ingest.sh [AGENTS] [SECONDS] [INTERVAL] [SAMPLE_SECONDS]   (INTERVAL 0: as fast as acked)
set -euo pipefail
cd "$(dirname "$0")/.."
agents=${1:-100}
seconds=${2:-10}
interval=${3:-0}
sample_seconds=${4:-60}
bash scripts/build.sh >/dev/null
workdir=$(mktemp -d -p "${APQ_BENCH_DIR:-/var/tmp}")
trap 'kill $(jobs -p) 2>/dev/null || true; [[ -n ${APQ_BENCH_KEEP:-} ]] || rm -rf "$workdir"' EXIT
build/aggregator/apq-aggregator --listen 127.0.0.1:0 --db "$workdir/apq.db" --sample-seconds "$sample_seconds" \
  2>"$workdir/aggregator.err" &
aggregator=$!
for _ in $(seq 1 100); do grep -q "listening on port" "$workdir/aggregator.err" && break; sleep 0.1; done
port=$(sed -n 's/.*listening on port \([0-9]*\),.*/\1/p' "$workdir/aggregator.err")
echo "apq ingest: database on $(df --output=source "$workdir" | tail -n 1), $(nproc) CPUs"

cpu_seconds() {  # user + system CPU of a process, in seconds
  awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); print ($12 + $13) / hz }' "/proc/$1/stat"
}
queries() {  # times each fleet query once; prints "name seconds" lines
  local -a names=(top top-by-function top-by-host hosts top-since-10m)
  local -a commands=("top --top 10" "top --by function --top 10" "top --by host --top 10" "hosts"
                     "top --since 10m --top 10")
  for i in "${!names[@]}"; do
    local start
    start=$(date +%s.%N)
    # shellcheck disable=SC2086
    build/cli/apq ${commands[$i]} --aggregator "127.0.0.1:$port" --cluster load >/dev/null
    echo "${names[$i]} $(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { print e - s }')"
  done
}

build/tests/apq-fleet-load --aggregator "127.0.0.1:$port" --agents "$agents" --seconds "$seconds" \
  --interval "$interval" >"$workdir/load.out" &
load=$!
for _ in $(seq 1 6000); do grep -q "connected in" "$workdir/load.out" && break; sleep 0.1; done
cat "$workdir/load.out"
cpu_start=$(cpu_seconds "$aggregator")
sleep $((seconds / 2))
queries >"$workdir/busy"
threads=$(awk '/^Threads/ { print $2 }' "/proc/$aggregator/status")
resident=$(awk '/^VmRSS/ { printf "%.0f MiB", $2 / 1024 }' "/proc/$aggregator/status")
wait "$load"
cpu_end=$(cpu_seconds "$aggregator")
tail -n +2 "$workdir/load.out"
echo "aggregator: $(awk -v a="$cpu_start" -v b="$cpu_end" -v s="$seconds" 'BEGIN { printf "%.2f", (b - a) / s }') CPUs busy while ingesting," \
  "mid-run $threads threads and $resident resident," \
  "database $(du -sm "$workdir" | cut -f1) MiB"
echo "history samples every $sample_seconds s; slow ones (1 s or more): $(grep -c "slow history sample" "$workdir/aggregator.err" || true)"
grep "slow history sample\|not stored" "$workdir/aggregator.err" | sed 's/^/  /' || true
sleep 1
queries >"$workdir/idle"
echo "query ($agents hosts): seconds while ingesting / seconds after (baseline) = ratio"
join "$workdir/busy" "$workdir/idle" | awk '{ printf "  %-16s %6.3f / %6.3f = %.2fx\n", $1, $2, $3, $2 / $3 }'
