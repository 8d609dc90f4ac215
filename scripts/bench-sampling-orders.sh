#!/usr/bin/env bash
# Sampled-mode accuracy per allocation order (not a test): TRIALS runs of
# apq-agent --local --sample-bytes N while one apq-hold-pipes per order 3..9
# holds empty pipes whose rings are single allocations of that order (a pipe
# of 2^(order-2) MiB; fs.pipe-max-size is raised for the run and restored).
# Prints each order's estimate against the truth and the standard error its
# sampling probability implies, then the mean error per order. Needs root.
#   scripts/bench-sampling-orders.sh [TRIALS] [N]
set -euo pipefail
cd "$(dirname "$0")/.."
trials=${1:-10}
sample_bytes=${2:-524288}
bash scripts/build.sh >/dev/null
workdir=$(mktemp -d)
saved_max=$(cat /proc/sys/fs/pipe-max-size)
trap 'echo "$saved_max" >/proc/sys/fs/pipe-max-size; kill $(jobs -p) 2>/dev/null || true; rm -rf "$workdir"' EXIT
echo $((128 << 20)) >/proc/sys/fs/pipe-max-size
loads="3:1500 4:800 5:400 6:200 7:100 8:50 9:25"  # order:pipes, ~50 MiB each
echo "apq sampling per order: $trials trials, --sample-bytes $sample_bytes, loads (order:rings) $loads"

for trial in $(seq 1 "$trials"); do
  build/agent/apq-agent --local --duration 3600 --format json --top 0 --class all --sample-bytes "$sample_bytes" \
    >"$workdir/report.json" 2>"$workdir/agent.err" &
  agent=$!
  for _ in $(seq 1 600); do grep -q "tracing started" "$workdir/agent.err" && break; sleep 0.1; done
  holders=()
  : >"$workdir/loads"
  for load in $loads; do
    order=${load%:*} pipes=${load#*:}
    build/tests/apq-hold-pipes --pipes "$pipes" --pipe-bytes $(((1 << 20 << order) >> 2)) --fill-bytes 0 \
      --hold-seconds 60 >"$workdir/hold.$order" &
    holders+=($!)
    for _ in $(seq 1 600); do grep -q ready "$workdir/hold.$order" && break; sleep 0.1; done
    echo "$order $pipes $(awk '{print $2}' "$workdir/hold.$order")" >>"$workdir/loads"
  done
  kill -TERM "$agent"
  wait "$agent"
  kill "${holders[@]}" 2>/dev/null || true
  wait "${holders[@]}" 2>/dev/null || true
  python3 - "$workdir/report.json" "$workdir/loads" "$sample_bytes" "$trial" >>"$workdir/trials" <<'PY'
import json, math, sys
report = json.load(open(sys.argv[1])); n = int(sys.argv[3])
for line in open(sys.argv[2]):
    order, pipes, pid = map(int, line.split())
    size = 4096 << order; truth = pipes * size
    estimate = sum(p["bytes"] for path in report["top"]["entries"] if "pipe_resize_ring" in path["key"].split(";")
                   for p in path["processes"] if p["tgid"] == pid)
    prob = -math.expm1(-size / n)
    se = math.sqrt((1 - prob) / (pipes * prob))
    print(f"{sys.argv[4]} {order} {estimate / truth - 1:.5f} {se:.5f}")
PY
  awk -v t="$trial" '$1 == t {printf "trial %2d order %d: error %+7.2f%%  (standard error %.2f%%)\n", t, $2, 100 * $3, 100 * $4}' \
    "$workdir/trials"
done
echo "summary (mean error over trials, and the standard error of that mean):"
awk '{n[$2]++; s[$2] += $3; se[$2] = $4} END {for (o in n) printf "order %d: mean error %+6.2f%% +- %.2f%%, %d trials\n", o, 100 * s[o] / n[o], 100 * se[o] / sqrt(n[o]), n[o]}' \
  "$workdir/trials" | sort -k2 -n
