#!/usr/bin/env bash
# Unit tier, the CLI side: every flag a binary defines is in its --help with
# a meaning (and so in its man page), one command's help lists its own
# flags, and bad usage exits 2.
#   tests/help_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
source=$2
passed=0
failed=0
ok() { passed=$((passed + 1)); }
bad() { echo "help: $*"; failed=$((failed + 1)); }

flags_of() {  # SOURCE_FILE...: the ABSL_FLAG names, with dashes
  for file in "$@"; do sed -n 's/^ABSL_FLAG([^,]*, *\([a-z_0-9]*\),.*/\1/p' "$source/$file"; done | tr _ -
}
documents_all() {  # BINARY SOURCE_FILE...
  local binary=$1 help
  shift
  help=$("$build/$binary" --help) || { bad "$binary --help failed"; return; }
  [[ $help == *"Exit status:"* ]] && ok || bad "$binary --help has no exit statuses"
  local flag count=0
  for flag in $(flags_of "$@"); do
    count=$((count + 1))
    # The flag's line, then its meaning indented below it.
    if grep -A1 -E "^  --$flag( |\$)" <<<"$help" | tail -n 1 | grep -qE '^        [A-Za-z]'; then ok; else
      bad "$binary --help does not document --$flag"
    fi
  done
  ((count > 3)) || bad "found only $count flags of $binary in $*"
  local man="$build/man/${binary##*/}.1"
  if [[ -s $man ]] && grep -q 'Exit status' "$man"; then ok; else bad "no man page $man"; fi
}
documents_all cli/apq cli/commands.cc common/client_tls_flags.cc
documents_all agent/apq-agent agent/main.cc common/client_tls_flags.cc
documents_all aggregator/apq-aggregator aggregator/main.cc

apq=$build/cli/apq
for help in "$("$apq" help top)" "$("$apq" top --help)"; do
  [[ $help == *"Usage: apq top"* && $help == *"  --at"* && $help == *"  --cluster"* && $help != *"  --before"* ]] &&
    ok || bad "apq's help of top should list top's flags and the common ones, not diff's: $help"
done
[[ $("$apq" help diff) == *"  --before"* ]] && ok || bad "apq help diff lacks --before"
[[ $("$apq" --version) =~ ^apq\ [0-9]+\.[0-9]+\.[0-9]+$ ]] && ok || bad "apq --version: $("$apq" --version)"
status=0
"$apq" help nosuch >/dev/null 2>&1 || status=$?
((status == 2)) && ok || bad "apq help nosuch exited $status, not 2"
status=0
"$apq" top --no-such-flag >/dev/null 2>&1 || status=$?
((status == 2)) && ok || bad "an unknown flag exited $status, not 2"
status=0
"$apq" top --cluster c --by nothing >/dev/null 2>&1 || status=$?
((status == 2)) && ok || bad "a bad --by exited $status, not 2"

echo "$passed passed, $failed failed"
((failed == 0))
