#!/usr/bin/env bash
# BPF cost per event inside a guest kernel (not a test): boots KERNEL under
# qemu (tests/guest/run-guest-tests.sh), turns on kernel.bpf_stats_enabled,
# and pushes MIB MiB through a pipe under apq-agent --local in exact and in
# sampled mode; prints each program's nanoseconds per run (run_time_ns /
# run_cnt, as bpftool reports them). On kernels before 6.7 this includes the
# skipped-run witnesses (apq_witness_*), whose cost is the price of counting
# skipped runs there. TCG timings are slower than hardware: read the ratios
# between programs of one run, not the absolute figures. Needs root.
#   scripts/bench-guest-bpf-cost.sh [KERNEL] [MIB]
set -euo pipefail
cd "$(dirname "$0")/.."
kernel=${1:-openeuler-24.03}
mib=${2:-256}
bash scripts/build.sh >/dev/null
workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT
cat >"$workdir/guest-run.sh" <<GUEST
build=\$1
echo 1 >/proc/sys/kernel/bpf_stats_enabled
for mode in exact sampled; do
  flags=""
  [ \$mode = sampled ] && flags="--sample-bytes 524288"
  \$build/agent/apq-agent --local --duration 3600 --format json --class all \$flags >/dev/null 2>/tmp/agent.err &
  agent=\$!
  while ! grep -q "tracing started" /tmp/agent.err; do sleep 0.2; done
  \$build/tests/apq-churn --pipe $((mib << 20)) >/dev/null
  bpftool prog show | grep -E "name apq_" | sed "s/^/APQ-COST \$mode /"
  kill -INT \$agent; wait \$agent
done
GUEST
APQ_GUEST_RUN="$workdir/guest-run.sh" tests/guest/run-guest-tests.sh build "$kernel" >"$workdir/console" 2>&1 || {
  tail -n 30 "$workdir/console" >&2
  exit 1
}
echo "BPF cost per run on $kernel under TCG, $mib MiB through a pipe (bpftool run_time_ns / run_cnt):"
grep -a 'APQ-COST' "$workdir/console" | tr -d '\r' |
  awk '{n = ""; t = 0; c = 0
        for (i = 1; i <= NF; i++) {if ($i == "name") n = $(i + 1); if ($i == "run_time_ns") t = $(i + 1); if ($i == "run_cnt") c = $(i + 1)}
        if (c > 0) printf "%-8s %-28s %10d runs %8.0f ns/run\n", $2, n, c, t / c}'
