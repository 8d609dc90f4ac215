#!/usr/bin/env bash
# Sampled-mode accuracy (not a test): TRIALS runs of apq-agent --local
# --sample-bytes N while apq-hold-pipes holds MIB MiB, each printing the
# pipe-path estimate for the workload against the truth, the reported
# standard error, and sqrt(N/B). Needs root.
#   scripts/bench-sampling.sh [TRIALS] [MIB] [N]
set -euo pipefail
cd "$(dirname "$0")/.."
trials=${1:-10}
mib=${2:-256}
sample_bytes=${3:-524288}
bash scripts/build.sh >/dev/null
workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT

echo "apq sampling: $trials trials, $mib MiB of pipe buffers, --sample-bytes $sample_bytes, sqrt(N/B) = $(
  awk -v n="$sample_bytes" -v b="$mib" 'BEGIN {printf "%.2f%%", 100 * sqrt(n / (b * 1048576))}')"
for trial in $(seq 1 "$trials"); do
  build/agent/apq-agent --local --duration 4 --format json --top 0 --sample-bytes "$sample_bytes" \
    >"$workdir/report.json" 2>"$workdir/agent.err" &
  agent=$!
  for _ in $(seq 1 600); do grep -q "tracing started" "$workdir/agent.err" && break; sleep 0.1; done
  build/tests/apq-hold-pipes --pipes "$mib" --hold-seconds 8 >"$workdir/hold.out" &
  holder=$!
  wait "$agent"
  pid=$(awk '{print $2}' "$workdir/hold.out")
  kill "$holder" 2>/dev/null || true
  wait "$holder" 2>/dev/null || true
  python3 - "$workdir/report.json" "$pid" "$mib" "$trial" <<'PY'
import json, math, sys
report = json.load(open(sys.argv[1])); pid = int(sys.argv[2]); truth = int(sys.argv[3]) << 20
estimate = variance = 0.0
for path in report["top"]["entries"]:
    if not any(f in ("anon_pipe_write", "pipe_write") for f in path["key"].split(";")):
        continue
    variance += path["standard_error"] ** 2
    estimate += sum(p["bytes"] for p in path["processes"] if p["tgid"] == pid)
print(f"trial {sys.argv[4]:>2}: estimate/truth {estimate / truth:.4f}  error {100 * (estimate / truth - 1):+6.2f}%  "
      f"reported standard error {100 * math.sqrt(variance) / truth:.2f}%")
PY
done
