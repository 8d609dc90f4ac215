#!/usr/bin/env bash
# Unit tier: hostile flag files. Each binary is given flag files of random
# bytes, one line of 1 MiB, a file that includes itself and two that include
# each other, NUL bytes, unknown flags, values of the wrong type and a file
# that does not exist. Every run must end within 10 s with exit status 1 or 2
# and a short error on stderr: no crash (a signal), no hang, no start.
#   tests/flag_files_test.sh BUILD_DIR
set -euo pipefail
build=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=0 runs=0

cases=()
for seed in $(seq 1 12); do
  head -c $((seed * 341)) /dev/urandom >"$work/random-$seed"
  cases+=("random-$seed")
done
head -c 1048576 /dev/zero | tr '\0' 'a' >"$work/long-line" && cases+=(long-line)
echo "--flagfile=$work/self" >"$work/self" && cases+=(self)
echo "--flagfile=$work/ping" >"$work/pong"
echo "--flagfile=$work/pong" >"$work/ping" && cases+=(ping)
printf -- '--cluster=a\0b\n--no_such\0flag\n' >"$work/nul" && cases+=(nul)
printf -- '--no_such_flag=1\n' >"$work/unknown" && cases+=(unknown)
printf -- '--interval=soon\n--top=-x\n--max_hosts_per_cluster=many\n' >"$work/bad-values" && cases+=(bad-values)
cases+=(missing)

for binary in agent/apq-agent aggregator/apq-aggregator cli/apq; do
  for name in "${cases[@]}"; do
    runs=$((runs + 1))
    status=0
    # --version: a file that parses would make the binary print its version and exit 0.
    # SIGKILL: the daemons block SIGTERM before they parse their flags.
    timeout -s KILL 30 "$build/$binary" --flagfile="$work/$name" --version >"$work/out" 2>"$work/err" </dev/null || status=$?
    lines=$(wc -l <"$work/err")
    if [[ $status == 0 && $name == unknown ]] || [[ $status != 0 && $status != 1 && $status != 2 ]] ||
      ((status != 0 && lines == 0)) || ((lines > 5)); then
      echo "FAIL $binary with flag file '$name': exit $status, $lines lines: $(head -c 300 "$work/err")"
      failed=$((failed + 1))
    fi
  done
done
echo "flag files: $runs runs, $failed failed"
((failed == 0))
