#!/usr/bin/env bash
# Ingestion rate (not a test): apq-fleet-load's synthetic agents stream to an
# aggregator on a fresh database in a temporary directory; prints reports
# acknowledged per second (each one committed to SQLite before its ack).
# Also times apq top while ingesting. Target from the fleet issue: 1,000
# reports/s (10,000 hosts every 10 s).
#   scripts/bench-ingest.sh [AGENTS] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
agents=${1:-100}
seconds=${2:-10}
bash scripts/build.sh >/dev/null
workdir=$(mktemp -d -p "${APQ_BENCH_DIR:-/var/tmp}")
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$workdir"' EXIT
build/aggregator/apq-aggregator --listen 127.0.0.1:0 --db "$workdir/apq.db" 2>"$workdir/aggregator.err" &
for _ in $(seq 1 100); do grep -q "listening on port" "$workdir/aggregator.err" && break; sleep 0.1; done
port=$(sed -n 's/.*listening on port \([0-9]*\),.*/\1/p' "$workdir/aggregator.err")
echo "apq ingest: database on $(df --output=source "$workdir" | tail -n 1), $(nproc) CPUs"
build/tests/apq-fleet-load --aggregator "127.0.0.1:$port" --agents "$agents" --seconds "$seconds" &
load=$!
# Queries while ingesting: apq top over every host, three times mid-run.
sleep $((seconds / 2))
for _ in 1 2 3; do
  /usr/bin/time -f "apq top --cluster load ($agents hosts) while ingesting: %e s" \
    build/cli/apq top --aggregator "127.0.0.1:$port" --cluster load --top 10 >/dev/null
done
wait "$load"
