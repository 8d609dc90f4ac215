#!/usr/bin/env bash
# End to end across kernels: one aggregator on this host; an agent here
# (this kernel) and agents in guests booted from openEuler 22.03 (5.10) and
# 24.03 (6.6), reaching the aggregator only through qemu's user-mode network
# (the gateway 10.0.2.2 is this machine's loopback). Each holds the same
# hidden load, 16 pipes of 1 MiB. `apq diff --before build=5.10 --after
# build=6.6` must match the pipe path across the builds with 16 MiB per host
# on each side, and a path of one kernel only (6.18's anon_pipe_write
# against 5.10's pipe_write) must show as vanished and new.
#   tests/e2e/cross-kernel-diff.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
source_dir=$(cd "$(dirname "$0")/../.." && pwd)
fail() { echo "cross-kernel: $*" >&2; exit 1; }
source "$source_dir/tests/daemons.sh"
cluster=e2e
start_aggregator "$build" --sample-seconds 5
apq() { "$build/cli/apq" "$@" --aggregator "127.0.0.1:$port" --cluster e2e; }
start_agent "$build" this-kernel --interval 2
"$build/tests/apq-hold-pipes" --pipes 16 --hold-seconds 600 >"$work/pipes.out" 2>&1 &  # traced: after the start
pids+=($!)

guest_seconds=600  # longer than the checks below can take; the guests are killed when they end
for kernel in openeuler-22.03-sp3 openeuler-24.03; do
  setsid env APQ_GUEST_NET=1 APQ_GUEST_RUN="$source_dir/tests/e2e/guest-agent.sh" \
    APQ_GUEST_RUN_ARGS="$port $kernel $guest_seconds" \
    "$source_dir/tests/guest/run-guest-tests.sh" "$build" "$kernel" >"$work/guest-$kernel.log" 2>&1 &
  pids+=($!)
done

# The build IDs of the three hosts, once all report (apq hosts: HOST KERNEL BUILD ...).
declare -A build_of=()
for _ in $(seq 1 120); do
  while read -r host _ build_id _; do build_of[$host]=$build_id; done < <(apq hosts | tail -n +2)
  [[ ${#build_of[@]} -eq 3 ]] && break
  sleep 2
done
if [[ ${#build_of[@]} -ne 3 ]]; then
  tail -n 30 "$work"/guest-*.log >&2
  fail "not every host reported: $(apq hosts | tail -n +2 | awk '{print $1}' | xargs)"
fi
apq hosts

# Per host of each side, by function: the guests' pipe writer, matched, 16
# MiB to within 1% (other writes to pipes in the guests are few). Table
# rows (--bytes): BEFORE AFTER CHANGE [STD.ERR] HOSTS [STATUS] KEY, bytes
# per host; STD.ERR only from sampled hosts, STATUS only for new/vanished.
want=$((16 << 20))
row() {  # row BEFORE_BUILD AFTER_BUILD BY KEY
  apq diff --before "build=$1" --after "build=$2" --by "$3" --top 0 --bytes | awk -v k="$4" 'NR > 2 && $NF == k'
}
in_range() { awk -v w=$want -v v="$1" 'BEGIN { exit !(v >= w && v <= w * 1.01) }'; }
old=${build_of[openeuler-22.03-sp3]} new=${build_of[openeuler-24.03]} here=${build_of[this-kernel]}
ok=0
for _ in $(seq 1 40); do
  line=$(row "$old" "$new" function pipe_write)
  read -r before after _ <<<"${line:-0 0}"
  if in_range "$before" && in_range "$after" && ! grep -qwE 'new|vanished' <<<"$line"; then ok=1; break; fi  # matched
  sleep 3
done
if [[ $ok != 1 ]]; then
  apq diff --before "build=$old" --after "build=$new" --top 8 >&2
  tail -n 20 "$work"/guest-*.log >&2
  fail "pipe_write is not matched at 16 MiB per host on 5.10 and 6.6: '$line'"
fi
echo "cross-kernel: 5.10 -> 6.6 by function: $line"
apq diff --before "build=$old" --after "build=$new" --by function --top 6

# By stack the two kernels' pipe paths differ (5.10 writes through
# new_sync_write): both are shown, one vanished and one new, never dropped.
apq diff --before "build=$old" --after "build=$new" --top 4
stacks=$(apq diff --before "build=$old" --after "build=$new" --format folded | grep -E ";pipe_write " || true)
[[ $(wc -l <<<"$stacks") == 2 ]] || fail "by stack, the pipe paths of 5.10 and 6.6 should be two rows: '$stacks'"
awk -v w=$want '($2 == 0 && $3 >= w) || ($3 == 0 && $2 >= w) { n++ } END { exit n != 2 }' <<<"$stacks" ||
  fail "by stack, the pipe paths should be one vanished and one new: '$stacks'"

# A function of one kernel only: this kernel (6.5+) writes pipes through
# anon_pipe_write, 5.10 through pipe_write: vanished and new.
gone=$(row "$here" "$old" function anon_pipe_write) came=$(row "$here" "$old" function pipe_write)
[[ $gone == *vanished* && $came == *new* ]] || fail "anon_pipe_write vanished / pipe_write new: '$gone' / '$came'"
apq diff --before "build=$here" --after "build=$old" --by function --top 4
echo "cross-kernel: passed"
