#!/usr/bin/env bash
# README command 2: builds apq and runs every test tier: unit tests (no
# root); the root tier, which loads the real BPF programs on this kernel; and
# the guest tier, the root tier again inside Debian's 6.1 and openEuler's
# 5.10 and 6.6 kernels under qemu, where the fentry/fexit hooks can load;
# the openEuler packages built by rpmbuild; and the libFuzzer targets.
set -euo pipefail
cd "$(dirname "$0")/.."
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
