#!/usr/bin/env bash
# Benchmark (not a test): apq diff and history top over history of
# realistic size, generated straight into the aggregator's SQLite schema:
# HOSTS hosts on two kernel builds, PATHS distinct paths, DAYS days of hourly
# rows (cluster_hours, and each host's 17 rows an hour in host_hours) and
# the last 48 h of minute samples (cluster_minutes). Prints row counts and
# the wall time of each query as the CLI sees it.
#   scripts/bench-history.sh [HOSTS] [DAYS] [PATHS]     (default 1000 14 200)
# Needs the sqlite3 command (Debian's sqlite3).
set -euo pipefail
cd "$(dirname "$0")/.."
hosts=${1:-1000} days=${2:-14} paths=${3:-200}
command -v sqlite3 >/dev/null || { echo "bench-history: needs sqlite3 (apt-get install sqlite3)" >&2; exit 2; }
[[ -x build/aggregator/apq-aggregator ]] || bash scripts/build.sh >&2
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
db=$work/apq.db

# The schema, as the aggregator makes it.
build/aggregator/apq-aggregator --listen 127.0.0.1:0 --db "$db" 2>"$work/schema.log" &
for _ in $(seq 1 100); do grep -q "listening on port" "$work/schema.log" && break; sleep 0.1; done
kill %1; wait %1 2>/dev/null || true

now_ms=$(($(date +%s) * 1000))
hour=$((now_ms / 3600000)) minute=$((now_ms / 60000))
start=$(date +%s.%N)
sqlite3 "$db" <<SQL
PRAGMA journal_mode=WAL;
PRAGMA synchronous=OFF;
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < $hosts - 1)
  INSERT INTO hosts (host_id, cluster, name) SELECT i + 1, 'bench', 'host-' || i FROM n;
INSERT INTO epochs (epoch_id, host_id, boot_id, agent_instance, kernel_release, build_id, sample_bytes, last_report_ms)
  SELECT host_id, host_id, 'boot', 1, iif(host_id % 2, '5.10.0-182', '6.6.0-28'), iif(host_id % 2, x'aa01', x'bb02'),
         524288, $now_ms FROM hosts;
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < $paths - 1)
  INSERT INTO paths (path_id, folded, leaf)
  SELECT i + 1, 'entry_SYSCALL_64;do_syscall_64;caller' || (i % 20) || ';fn' || i, 'fn' || i FROM n;
-- Hourly cluster rows: every path on both builds, every hour.
WITH RECURSIVE h(t) AS (SELECT $hour - $days * 24 UNION ALL SELECT t + 1 FROM h WHERE t < $hour),
  b(id) AS (VALUES (x'aa01'), (x'bb02'))
  INSERT INTO cluster_hours SELECT t, 'bench', b.id, p.path_id, (p.path_id * 4096.0) * $hosts / 2, 0, $hosts / 2,
         (p.path_id * 4096.0) * $hosts / 2, 0, $hosts / 2 FROM h, b, paths p;
-- Each host's 17 rows an hour.
WITH RECURSIVE h(t) AS (SELECT $hour - $days * 24 UNION ALL SELECT t + 1 FROM h WHERE t < $hour),
  k(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM k WHERE j < 16)
  INSERT INTO host_hours SELECT t, e.host_id, (e.host_id + j) % $paths + 1, e.build_id, 4096.0 * (j + 1), 0,
         4096.0 * (j + 1), 0 FROM h, epochs e, k;
-- Minute samples of the last 48 h.
WITH RECURSIVE m(t) AS (SELECT $minute - 48 * 60 UNION ALL SELECT t + 1 FROM m WHERE t < $minute),
  b(id) AS (VALUES (x'aa01'), (x'bb02'))
  INSERT INTO cluster_minutes SELECT t, 'bench', b.id, p.path_id, (p.path_id * 4096.0) * $hosts / 2, 0, $hosts / 2
  FROM m, b, paths p;
WITH RECURSIVE m(t) AS (SELECT $minute - 48 * 60 UNION ALL SELECT t + 1 FROM m WHERE t < $minute)
  INSERT INTO cluster_samples SELECT t, 'bench', $hosts FROM m;
COMMIT;
SQL
echo "bench-history: generated in $(echo "$(date +%s.%N) - $start" | bc) s: $hosts hosts, $paths paths, $days days;" \
  "rows: cluster_hours $(sqlite3 "$db" 'SELECT count(*) FROM cluster_hours')," \
  "host_hours $(sqlite3 "$db" 'SELECT count(*) FROM host_hours')," \
  "cluster_minutes $(sqlite3 "$db" 'SELECT count(*) FROM cluster_minutes'); file $(du -h "$db" | cut -f1)"

build/aggregator/apq-aggregator --listen 127.0.0.1:0 --db "$db" 2>"$work/aggregator.log" &
for _ in $(seq 1 300); do grep -q "listening on port" "$work/aggregator.log" && break; sleep 0.1; done
port=$(sed -n 's/.*listening on port \([0-9]*\),.*/\1/p' "$work/aggregator.log")
timed() {
  local what=$1
  shift
  local t0 t1
  t0=$(date +%s.%N)
  build/cli/apq "$@" --aggregator "127.0.0.1:$port" --cluster bench --timeout 600 >"$work/out" || {
    echo "bench-history: $what failed" >&2
    return 1
  }
  t1=$(date +%s.%N)
  printf "bench-history: %-60s %6.2f s, %d lines\n" "$what" "$(echo "$t1 - $t0" | bc)" "$(wc -l <"$work/out")"
}
timed "diff build=aa01 -> build=bb02, newest minute sample" diff --before build=aa01 --after build=bb02 --top 20
timed "diff by function, same" diff --before build=aa01 --after build=bb02 --by function --top 20
timed "diff 14d..7d -> 7d..0s, hourly rows" diff --before "$((days * 24))h..$((days * 12))h" --after "$((days * 12))h..0s" --top 20
timed "diff release=5.10.0-182 -> release=6.6.0-28, 24 h range" diff --before "24h..0s,release=5.10.0-182" --after "24h..0s,release=6.6.0-28" --top 20
timed "diff --by host, 24 h of host rows" diff --before "48h..24h" --after "24h..0s" --by host --top 20
timed "diff host=host-1, 7 d of its rows" diff --before "336h..168h,host=host-1" --after "168h..0s,host=host-1" --top 20
timed "top --since 168h (hourly peaks)" top --since 168h --class all --top 20
