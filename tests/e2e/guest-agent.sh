# Runs inside a guest (tests/guest/run-guest-tests.sh with APQ_GUEST_NET=1):
# streams to the host's aggregator through qemu's user-mode network and,
# once tracing has started, holds a known hidden load (16 pipes of 1 MiB),
# until SECONDS have passed.
#   guest-agent.sh BUILD PORT HOST SECONDS
build=$1 port=$2 host=$3 seconds=$4
"$build/agent/apq-agent" --aggregator "10.0.2.2:$port" --cluster e2e --host "$host" --interval 2 --sample-bytes 0 \
  --classify-interval 5 --duration "$seconds" --ready-file /tmp/agent.ready 2>/tmp/agent.err &
agent=$!
i=0
while ! grep -qs "ready=1" /tmp/agent.ready && [ $i -lt 300 ]; do sleep 1; i=$((i + 1)); done
"$build/tests/apq-hold-pipes" --pipes 16 --hold-seconds "$seconds" >/tmp/pipes.out 2>&1 &
wait $agent
rc=$?
cat /tmp/agent.err
exit $rc
