# Sourced by the end-to-end scripts (after they define fail): a work
# directory removed at exit, background processes killed at exit, and the
# aggregator and an agent started as the scripts need them.

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# wait_for TEXT FILE [SECONDS]: true once FILE contains TEXT.
wait_for() {
  local tenth
  for tenth in $(seq 1 $((${3:-10} * 10))); do grep -qs "$1" "$2" && return 0; sleep 0.1; done
  return 1
}

# ready_fact FILE NAME: a fact of a daemon's --ready-file (grpc_port, ...).
ready_fact() { sed -n "s/^$2=//p" "$1"; }

# start_aggregator BUILD_DIR [FLAGS...]: on free ports; sets $port (gRPC) and,
# with --http, $http.
start_aggregator() {
  local build=$1
  shift
  rm -f "$work/aggregator.ready"
  "$build/aggregator/apq-aggregator" --listen 127.0.0.1:0 --db "$work/apq.db" --ready-file "$work/aggregator.ready" \
    "$@" 2>"$work/aggregator.log" &
  pids+=($!)
  wait_for "ready=1" "$work/aggregator.ready" 60 || fail "aggregator did not start: $(cat "$work/aggregator.log")"
  port=$(ready_fact "$work/aggregator.ready" grpc_port)
  http=$(ready_fact "$work/aggregator.ready" http_port)
}

# start_agent BUILD_DIR HOST [FLAGS...]: streams to $port as cluster $cluster.
start_agent() {
  local build=$1 host=$2
  shift 2
  "$build/agent/apq-agent" --aggregator "127.0.0.1:$port" --cluster "$cluster" --host "$host" --interval 1 \
    --sample-bytes 0 --ready-file "$work/agent-$host.ready" "$@" 2>"$work/agent-$host.log" &
  pids+=($!)
  wait_for "ready=1" "$work/agent-$host.ready" 60 || fail "agent did not start: $(cat "$work/agent-$host.log")"
}
