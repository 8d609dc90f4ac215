#!/usr/bin/env bash
# Unit tier: every flag the deploy/ flag files set is a flag of the binary
# that reads them (a misspelt flag would stop the daemon at boot).
#   tests/deploy_flags_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
source=$2
passed=0
failed=0
check() {  # FLAGFILE BINARY
  local known
  # --help shows flags with dashes; flag files spell them with underscores.
  known=$({ "$build/$2" --help 2>&1 || true; } | sed -n 's/^ *--\([a-z0-9-]*\).*/\1/p' | tr - _)
  for flag in $(sed -n 's/^--\([a-z_0-9]*\)=.*/\1/p' "$source/deploy/$1"); do
    if grep -qx "$flag" <<<"$known"; then
      passed=$((passed + 1))
    else
      echo "deploy/$1 sets --$flag, which $2 does not have"
      failed=$((failed + 1))
    fi
  done
}
check agent.flags agent/apq-agent
check aggregator.flags aggregator/apq-aggregator
echo "$passed passed, $failed failed"
((failed == 0 && passed > 0))
