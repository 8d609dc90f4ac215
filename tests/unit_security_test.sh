#!/usr/bin/env bash
# Unit tier: the systemd units in deploy/ stay hardened. Each template is
# rendered as CMake's configure_file would (@APQ_BINDIR@ -> /usr/bin) and
# scored by `systemd-analyze security --offline=true` (systemd 250 or later);
# a unit fails if its overall exposure rises above its threshold, or if
# systemd ignores any of its lines (a misspelt or unknown setting).
#   tests/unit_security_test.sh SOURCE_DIR
set -euo pipefail
source=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Exposure thresholds, tenths of systemd's 0-10 scale (what --threshold
# takes): just above what the units score with systemd 252. The agent needs
# root, BPF, perf events and kernel logs' CAP_SYSLOG (kallsyms), which is
# most of its score; the aggregator needs only its network.
declare -A threshold=([apq-agent.service]=24 [apq-aggregator.service]=12)

command -v systemd-analyze >/dev/null || { echo "systemd-analyze is not installed"; exit 1; }
version=$(systemd-analyze --version | sed -n '1s/^systemd \([0-9]*\).*/\1/p')
((version >= 250)) || { echo "systemd-analyze $version lacks security --offline (250 or later)"; exit 1; }

passed=0
failed=0
units=("$source"/deploy/*.service.in)
((${#units[@]} == ${#threshold[@]})) || { echo "deploy/ has ${#units[@]} unit templates, thresholds name ${#threshold[@]}"; exit 1; }
for template in "${units[@]}"; do
  unit=$(basename "${template%.in}")
  sed 's|@APQ_BINDIR@|/usr/bin|g' "$template" >"$work/$unit"
  if leftover=$(grep -o '@[A-Za-z_]*@' "$work/$unit"); then
    echo "$unit: no value for $(sort -u <<<"$leftover" | tr '\n' ' ')(add it to this test)"
    failed=$((failed + 1))
    continue
  fi
  limit=${threshold[$unit]:-}
  [[ -n $limit ]] || { echo "$unit: no threshold"; failed=$((failed + 1)); continue; }
  status=0
  systemd-analyze security --offline=true --threshold="$limit" "$work/$unit" >"$work/$unit.out" 2>"$work/$unit.err" ||
    status=$?
  overall=$(grep -h 'Overall exposure level' "$work/$unit.out" "$work/$unit.err" || true)
  echo "${overall:-$unit: no overall exposure level} (threshold $((limit / 10)).$((limit % 10)))"
  # Lines systemd ignores are warnings on stderr, e.g. "Unknown key".
  ignored=$(grep -v 'Overall exposure level' "$work/$unit.err" || true)
  if [[ -n $ignored ]]; then
    echo "$unit: systemd does not take every line:"
    echo "$ignored"
    failed=$((failed + 1))
  elif ((status != 0)) || [[ -z $overall ]]; then
    echo "$unit: exposure above $((limit / 10)).$((limit % 10)) (or not scored); the settings that add to it:"
    grep '✗' "$work/$unit.out" || cat "$work/$unit.out" "$work/$unit.err"
    failed=$((failed + 1))
  else
    passed=$((passed + 1))
  fi
done
echo "$passed passed, $failed failed"
((failed == 0 && passed > 0))
