#!/usr/bin/env bash
# Wire size (not a test): one agent streams to a local aggregator for
# SECONDS at --interval INTERVAL, in sampled (default) and exact mode, while
# this host does whatever it does; prints bytes sent per interval, with and
# without the first interval (which carries the symbol table). Needs root.
#   scripts/bench-wire.sh [SECONDS] [INTERVAL]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
interval=${2:-10}
bash scripts/build.sh >/dev/null
workdir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$workdir"' EXIT
build/aggregator/apq-aggregator --listen 127.0.0.1:0 --db "$workdir/apq.db" 2>"$workdir/aggregator.err" &
for _ in $(seq 1 100); do grep -q "listening on port" "$workdir/aggregator.err" && break; sleep 0.1; done
port=$(sed -n 's/.*listening on port \([0-9]*\),.*/\1/p' "$workdir/aggregator.err")
echo "apq wire size: ${seconds} s at --interval ${interval}, $(uname -r)"
for mode in 524288 0; do
  build/agent/apq-agent --aggregator "127.0.0.1:$port" --cluster bench --host "bench-$mode" --interval "$interval" \
    --duration "$seconds" --sample-bytes "$mode" 2>"$workdir/agent.err"
  sent=$(sed -n 's/.*sent \([0-9]*\) bytes.* over \([0-9]*\) intervals/\1 \2/p' "$workdir/agent.err")
  symbols=$(python3 - "$workdir/apq.db" <<'PY'
import sqlite3, sys
print(sum(len(r[0]) for r in sqlite3.connect(sys.argv[1]).execute("SELECT symbols FROM symbol_tables")))
PY
)
  read -r bytes n <<<"$sent"
  echo "sample-bytes=$mode: $bytes bytes in $n intervals: $((bytes / n)) bytes/interval; without the symbol upload ($symbols bytes, once per build): $(((bytes - symbols) / n)) bytes/interval"
  sqlite3 "$workdir/apq.db" "DELETE FROM symbol_tables" 2>/dev/null || python3 -c "import sqlite3;c=sqlite3.connect('$workdir/apq.db');c.execute('DELETE FROM symbol_tables');c.commit()"
done
