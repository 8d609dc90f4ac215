#!/usr/bin/env bash
# Fault injection with real processes, sockets and kills (needs root: BPF
# agents, a tmpfs for the database). Several agents on this host stream
# through a TCP proxy the script controls (tests/workloads/tcp_proxy.cc) to
# one aggregator whose database lives on a small tmpfs, while pipe loads
# come and go. Then, in turn:
#   kills      the aggregator is killed with SIGKILL at random moments and
#              restarted on the same file;
#   partition  the proxy swallows everything (a black hole), then resets
#              every connection: agents keep measuring, buffer within their
#              budget (one agent's budget is small: it overflows, resends a
#              snapshot and its hosts' losses say how many reports it folded);
#   disk       the database's filesystem fills up, then turns read-only: the
#              aggregator refuses to acknowledge what it cannot store, says
#              why, and catches up once space returns;
#   corrupt    a database file of garbage, and one cut short, at start: a
#              one-line error and exit status 1, no crash;
#   flood      an agent with small tables under a flood of processes: it keeps
#              running, counts what overflowed, its memory stays bounded.
# After every fault the aggregator's bytes for each host must equal the
# agent's own total for the same report, to the byte. Prints the faults
# injected, reports sent, built and stored, and the bytes that differ (0).
#   tests/faults/faults.sh BUILD_DIR [--short]
#     --short: 4 kills, a 40-second black hole and 10 seconds of resets (the
#     CI run); by default 10 kills, 2 minutes and 30 seconds.
set -euo pipefail
build=$(cd "$1" && pwd)
kills=10 partition_seconds=120
[[ ${2:-} == --short ]] && kills=4 partition_seconds=40
fail() { echo "faults: FAIL: $*" >&2; exit 1; }
source "$(dirname "$0")/../daemons.sh"
[[ $(id -u) == 0 ]] || fail "needs root (BPF agents, a tmpfs)"
cluster=faults
apq=$build/cli/apq
disk=$(mktemp -d)
mount -t tmpfs -o size=48m apq-faults "$disk"
trap 'cleanup; umount "$disk" && rmdir "$disk"' EXIT  # cleanup stops the processes first
db=$disk/apq.db
faults=0 differing_bytes=0 checks=0

log() { echo "faults: $*"; }

# Value of a metric line that starts with PREFIX in the text on stdin.
metric() { awk -v p="$1" 'index($0, p) == 1 { print $NF; exit }'; }

# The aggregator, always on the same port: $port (gRPC), $http (/metrics).
aggregator_pid=
start_aggregator_on() {
  rm -f "$work/aggregator.ready"
  "$build/aggregator/apq-aggregator" --listen "127.0.0.1:$1" --http 127.0.0.1:0 --db "$db" \
    --fresh-seconds 600 --ready-file "$work/aggregator.ready" 2>>"$work/aggregator.log" &
  aggregator_pid=$!
  pids+=($aggregator_pid)
  local tenth
  for tenth in $(seq 1 600); do
    if grep -qs "ready=1" "$work/aggregator.ready"; then
      port=$(ready_fact "$work/aggregator.ready" grpc_port)
      http=$(ready_fact "$work/aggregator.ready" http_port)
      return 0
    fi
    kill -0 "$aggregator_pid" 2>/dev/null || break
    sleep 0.1
  done
  fail "aggregator did not start: $(tail -n 5 "$work/aggregator.log")"
}

# Agents by host name: their metrics ports.
declare -A metrics_port
start_fault_agent() {  # HOST [FLAGS...]
  local host=$1
  shift
  "$build/agent/apq-agent" --aggregator "127.0.0.1:$proxy_port" --cluster "$cluster" --host "$host" --interval 2 \
    --sample-bytes 0 --metrics 127.0.0.1:0 --ready-file "$work/agent-$host.ready" "$@" 2>"$work/agent-$host.log" &
  pids+=($!)
  wait_for "ready=1" "$work/agent-$host.ready" 60 || fail "agent $host did not start: $(cat "$work/agent-$host.log")"
  metrics_port[$host]=$(ready_fact "$work/agent-$host.ready" metrics_port)
}
agent_metrics() { curl -sf "http://127.0.0.1:${metrics_port[$1]}/metrics"; }

# Waits until HOST's newest report is acknowledged and the aggregator holds
# exactly that report, then adds |agent's bytes - aggregator's bytes| to
# differing_bytes. The agent is read before and after the aggregator; a
# report built meanwhile makes it try again.
check_host() {
  local host=$1 before after sequence bytes unacked stored stored_bytes deadline=$((SECONDS + 120))
  # A report built between the reads (f-small builds 4 a second) misses the
  # window; a retry a random fraction of an interval later is another phase.
  while ((SECONDS < deadline)); do
    before=$(agent_metrics "$host") || { sleep 0.2; continue; }
    unacked=$(metric apq_agent_unacknowledged_reports <<<"$before")
    sequence=$(metric apq_agent_last_report_sequence <<<"$before")
    bytes=$(metric apq_agent_outstanding_bytes <<<"$before")
    if [[ $unacked != 0 ]]; then sleep 0.2; continue; fi
    stored=$(curl -sf "http://127.0.0.1:$http/metrics" |
      metric "apq_host_stored_sequence{cluster=\"$cluster\",host=\"$host\"") || true
    stored_bytes=$("$apq" top --aggregator "127.0.0.1:$port" --cluster "$cluster" --by host --host "$host" \
      --class all --top 0 --format json 2>/dev/null | grep -o '"bytes_outstanding":[0-9.e+]*' |
      cut -d: -f2 | awk '{ s += $1 } END { printf "%.0f", s }') || true
    after=$(agent_metrics "$host") || continue
    if [[ $(metric apq_agent_last_report_sequence <<<"$after") != "$sequence" || $stored != "$sequence" ]]; then
      sleep "0.$((RANDOM % 10))"
      continue
    fi
    local difference=$((bytes > stored_bytes ? bytes - stored_bytes : stored_bytes - bytes))
    differing_bytes=$((differing_bytes + difference))
    checks=$((checks + 1))
    [[ $difference == 0 ]] || log "  $host: report $sequence: agent $bytes bytes, aggregator $stored_bytes"
    return 0
  done
  fail "$host: no acknowledged report matched the aggregator's in 120 s (last: agent report $sequence," \
    "$unacked unacknowledged; aggregator stored ${stored:-none}); $(tail -n 3 "$work/agent-$host.log")"
}
hosts=(f-1 f-2 f-3 f-small)
check_all() { for host in "${hosts[@]}"; do check_host "$host"; done; }

# Pipe loads that come and go, so every report differs from the last.
churn() {
  while true; do
    "$build/tests/apq-hold-pipes" --pipes $((RANDOM % 8 + 1)) --hold-seconds $((RANDOM % 4 + 1)) >/dev/null 2>&1 || true
  done
}

port=0
start_aggregator_on 0
"$build/tests/apq-test-proxy" --target "127.0.0.1:$port" >"$work/proxy.out" 2>&1 &
proxy=$!
pids+=($proxy)
wait_for "proxy on port" "$work/proxy.out" 60 || fail "proxy did not start"
proxy_port=$(sed -n 's/proxy on port \([0-9]*\)/\1/p' "$work/proxy.out")
start_fault_agent f-1
start_fault_agent f-2
start_fault_agent f-3
# Classified every second, its reports carry the host's meminfo: they fill
# the smallest budget in a few tens of seconds of partition.
start_fault_agent f-small --buffer-bytes 65536 --interval 0.25 --classify-interval 1
churn &
churner=$!
pids+=($churner)
check_all
log "streaming: ${#hosts[@]} agents through the proxy, aggregator on a 48 MiB tmpfs"

# 1. SIGKILL at random moments.
for round in $(seq 1 "$kills"); do
  sleep "$((RANDOM % 30 / 10)).$((RANDOM % 10))"
  kill -9 "$aggregator_pid"
  wait "$aggregator_pid" 2>/dev/null || true
  faults=$((faults + 1))
  sleep "$((RANDOM % 20 / 10)).$((RANDOM % 10))"
  start_aggregator_on "$port"
  check_all
  log "kill $round of $kills: restarted, every host matches"
done

# 2. Partition: a black hole, then resets.
max_unacked_bytes() {  # each agent's unacknowledged bytes now, its budget and its queued reports
  local host metrics
  for host in "${hosts[@]}"; do
    metrics=$(agent_metrics "$host") || continue
    echo "$(metric apq_agent_unacknowledged_bytes <<<"$metrics") $(metric apq_agent_buffer_bytes <<<"$metrics")" \
      "$(metric apq_agent_unacknowledged_reports <<<"$metrics") $host"
  done
}
intervals_of() { agent_metrics "$1" | metric apq_agent_intervals_total; }
partition() {  # SIGNAL NAME SECONDS
  local signal=$1 name=$2 seconds=$3 host second line dropped
  declare -A intervals_before
  for host in "${hosts[@]}"; do intervals_before[$host]=$(intervals_of "$host"); done
  kill "-$signal" "$proxy"
  faults=$((faults + 1))
  # At least `seconds`, and until the small agent has overflowed its budget
  # (its reports' size varies with the load): at most 3 minutes.
  # A counter never goes back (Prometheus would take that for a restart).
  for second in $(seq 1 180); do
    if dropped=$(agent_metrics f-small | metric 'apq_agent_losses_total{counter="reports_dropped"}') && [[ -n $dropped ]]; then
      ((dropped >= dropped_seen)) || fail "$name: f-small's reports_dropped went back from $dropped_seen to $dropped"
      dropped_seen=$dropped
    fi
    ((second <= seconds || dropped_seen == 0)) || break
    sleep 1
    while read -r line; do
      read -r unacked budget reports host <<<"$line"
      # One snapshot is the least an agent can hold, even when it is larger than the budget.
      ((unacked <= budget || reports == 1)) ||
        fail "$name: $host holds $unacked unacknowledged bytes in $reports reports, over its budget of $budget"
    done < <(max_unacked_bytes)
  done
  for host in "${hosts[@]}"; do
    # An interval is 2 s; a stream swallowed by the black hole may hold the
    # agent's loop until its keepalive gives up (2 x 10 s), and a loaded
    # machine is slower: half the intervals is what measuring on means.
    (($(intervals_of "$host") >= ${intervals_before[$host]} + second / 4 - 12)) ||
      fail "$name: $host stopped measuring ($(intervals_of "$host") intervals, ${intervals_before[$host]} before)"
  done
  kill -HUP "$proxy"
  check_all
  log "partition ($name, $second s): agents kept measuring within their budgets, caught up, every host matches"
}
dropped_seen=0
partition USR2 "black hole" "$partition_seconds"
partition USR1 "connections reset" $((partition_seconds / 4))
dropped=$(agent_metrics f-small | metric 'apq_agent_losses_total{counter="reports_dropped"}')
((dropped >= dropped_seen)) || fail "f-small's reports_dropped went back from $dropped_seen to $dropped"
((dropped > 0)) || fail "f-small (64 KiB budget, a report every 0.25 s) never overflowed in 3 minutes: the partition did not test resynchronization"
"$apq" hosts --aggregator "127.0.0.1:$port" --cluster "$cluster" --format json | grep -q '"reports_dropped"' ||
  fail "the aggregator does not show f-small's folded reports"
log "f-small folded $dropped reports into snapshots; its losses say so at the aggregator"

# 3. The database's disk full, then read-only. SQLite appends to its
# write-ahead log and reuses it after each checkpoint, so a full disk
# bites when the files must grow: here when the aggregator starts on a
# filesystem with no space left (as systemd restarts it), which must fail
# with one line saying why, without touching the database; once space
# returns it starts, and every host catches up.
kill -9 "$aggregator_pid" && wait "$aggregator_pid" 2>/dev/null || true
dd if=/dev/zero of="$disk/filler" bs=1M 2>/dev/null || true
faults=$((faults + 1))
set +e
timeout -s KILL 20 "$build/aggregator/apq-aggregator" --listen "127.0.0.1:$port" --db "$disk/new.db" >"$work/full.out" 2>&1
status=$?
set -e
[[ $status == 1 && $(wc -l <"$work/full.out") == 1 ]] && grep -q "full" "$work/full.out" ||
  fail "full disk: exit $status: $(head -c 500 "$work/full.out")"
# Every agent builds a report while no aggregator runs: none is acknowledged.
for host in "${hosts[@]}"; do
  deadline=$((SECONDS + 30))
  until (($(agent_metrics "$host" | metric apq_agent_unacknowledged_reports) > 0)); do
    ((SECONDS < deadline)) || fail "full disk: $host's reports were acknowledged while no aggregator could store them"
    sleep 0.5
  done
done
log "full disk: $(cat "$work/full.out")"
rm -f "$disk/filler" "$disk"/new.db*
start_aggregator_on "$port"
check_all
log "full disk: space back, the aggregator started and every host matches"

# Read-only: the kernel refuses to remount a filesystem read-only while the
# aggregator holds the database open for writing, so the aggregator is
# restarted on a read-only view of the same directory: it must refuse to
# run (one line saying why) or run without acknowledging anything, then
# catch up once it is back on the writable one.
kill "$aggregator_pid" && wait "$aggregator_pid" 2>/dev/null || true
mkdir -p "$work/ro"
mount --bind "$disk" "$work/ro" && mount -o remount,bind,ro "$work/ro"
faults=$((faults + 1))
set +e
timeout 20 "$build/aggregator/apq-aggregator" --listen "127.0.0.1:$port" --db "$work/ro/apq.db" >"$work/ro.out" 2>&1
status=$?
set -e
umount "$work/ro"
if [[ $status == 124 ]]; then
  grep -qi "readonly\|read-only" "$work/ro.out" || fail "read-only: it ran 20 s without saying why nothing is stored"
elif [[ $status != 1 || $(wc -l <"$work/ro.out") != 1 ]] || ! grep -qi "readonly\|read-only" "$work/ro.out"; then
  fail "read-only: exit $status: $(head -c 500 "$work/ro.out")"
fi
log "read-only database: $(head -n 1 "$work/ro.out")"
start_aggregator_on "$port"
check_all
log "read-only: back on the writable file, every host matches"

# 4. Corrupted database files at start.
kill "$churner" 2>/dev/null || true
for corruption in garbage truncated; do
  bad=$work/$corruption.db
  if [[ $corruption == garbage ]]; then
    head -c 1048576 /dev/urandom >"$bad"
  else
    sqlite_size=$(stat -c %s "$db")
    cp "$db" "$bad" && truncate -s $((sqlite_size / 3)) "$bad"
  fi
  faults=$((faults + 1))
  set +e
  timeout 30 "$build/aggregator/apq-aggregator" --listen 127.0.0.1:0 --db "$bad" >"$work/corrupt.out" 2>&1
  status=$?
  set -e
  [[ $status == 1 && $(wc -l <"$work/corrupt.out") == 1 ]] ||
    fail "$corruption database: exit $status, $(wc -l <"$work/corrupt.out") lines: $(head -c 500 "$work/corrupt.out")"
  log "corrupt database ($corruption): $(cat "$work/corrupt.out")"
done

# 5. A flood of processes on an agent with small tables.
start_fault_agent f-flood --max-owners 512 --max-stacks 128
hosts+=(f-flood)
faults=$((faults + 1))
for wave in 1 2 3 4 5; do
  for i in $(seq 1 200); do "$build/tests/apq-hold-pipes" --pipes 1 --hold-seconds 1 >/dev/null 2>&1 & done
  sleep 1.5
done
deadline=$((SECONDS + 60))
while true; do  # the overflow shows in the agent's next reports
  flood=$(agent_metrics f-flood) || fail "the flooded agent stopped answering: $(tail -n 5 "$work/agent-f-flood.log")"
  owners_full=$(metric 'apq_agent_losses_total{counter="owner_table_full"}' <<<"$flood")
  stacks_full=$(metric 'apq_agent_losses_total{counter="stack_table_full"}' <<<"$flood")
  ((owners_full + stacks_full == 0)) || break
  ((SECONDS < deadline)) || fail "flood: nothing overflowed 512 owners and 128 stacks"
  sleep 1
done
agent_pid=$(pgrep -f -- "--host f-flood" | head -n 1)
peak_kib=$(awk '/VmHWM/ { print $2 }' "/proc/$agent_pid/status")
((peak_kib < 256 * 1024)) || fail "flood: the agent peaked at $peak_kib KiB, over 256 MiB"
check_host f-flood
log "flood: 1000 processes; owner-table-full $owners_full pages, stack-table-full $stacks_full; peak memory $((peak_kib / 1024)) MiB"

# Totals.
check_all
sent=0 built=0 stored=0  # stored: each host's newest stored report (after a snapshot, folded ones are skipped)
aggregator_metrics=$(curl -sf "http://127.0.0.1:$http/metrics")
for host in "${hosts[@]}"; do
  metrics=$(agent_metrics "$host")
  sent=$((sent + $(metric apq_agent_reports_sent_total <<<"$metrics")))
  built=$((built + $(metric apq_agent_last_report_sequence <<<"$metrics")))
  stored=$((stored + $(metric "apq_host_stored_sequence{cluster=\"$cluster\",host=\"$host\"" <<<"$aggregator_metrics")))
done
echo "faults injected: $faults"
echo "reports built by the agents: $built"
echo "reports sent (resends included): $sent"
echo "newest report stored, summed over the hosts: $stored (reports an agent folded into a snapshot count here too)"
echo "checks of every host against its agent: $checks"
echo "bytes that differ from the agents' own totals: $differing_bytes"
((differing_bytes == 0)) || fail "stored totals differ from the agents' by $differing_bytes bytes"
