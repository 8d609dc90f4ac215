#!/usr/bin/env bash
# README command 2: builds apq and runs every test tier: unit tests (no
# root); the root tier, which loads the real BPF programs on this kernel; and
# the guest tier, the root tier again inside Debian's 6.1 and openEuler's
# 5.10 and 6.6 kernels under qemu, where the fentry/fexit hooks can load;
# the openEuler packages built by rpmbuild; and the libFuzzer targets.
set -euo pipefail
cd "$(dirname "$0")/.."

# Every test stops what it started, pass or fail: at the end, no qemu,
# agent, aggregator or workload that was not running before may be left.
ours() { ps -eo pid=,comm= | awk '$2 ~ /^(qemu-system-|apq-)/ { print $1 }' | sort; }
running_before=$(ours)
left_running() {
  local left
  left=$(comm -13 <(echo "$running_before") <(ours) | xargs -r ps -o pid=,etime=,args= -p || true)
  [[ -z $left ]] && return 0
  echo "== FAILED: processes the tests started are still running:" >&2
  echo "$left" >&2
  return 1
}
# Checked however the tiers end, passed or failed.
trap 'status=$?; echo "== leftovers (every qemu, agent, aggregator and workload the tests started has stopped?)"; left_running || status=1; exit $status' EXIT

bash scripts/build.sh
cd build
echo "== unit tests"
ctest -L unit --output-on-failure
echo "== root tier (real BPF programs, this kernel)"
ctest -L root --output-on-failure
echo "== packages (rpmbuild of the openEuler packages from this tree)"
ctest -L package --output-on-failure
echo "== fuzzing (libFuzzer with ASan and UBSan, each target briefly)"
cd .. && bash scripts/fuzz.sh 20 && cd build
echo "== guest tier (real BPF programs; Debian 6.1, openEuler 22.03 SP3 and 24.03 under qemu)"
ctest -L guest --output-on-failure
