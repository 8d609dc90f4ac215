#!/usr/bin/env bash
# Unit tier: deploy/apq-certs makes a CA, aggregator, agent and reader
# certificates that openssl verifies and that carry the names and URIs they
# should; refuses bad words (exit 2) and a second CA; rotates leaves
# (keeping the previous pair) and the CA (a bundle that trusts both).
#   tests/apq_certs_test.sh [APQ_CERTS]   (default: deploy/apq-certs beside tests/)
set -euo pipefail
certs=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/deploy/apq-certs}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
tls=$dir/tls
passed=0
failed=0
ok() { passed=$((passed + 1)); }
bad() { echo "apq-certs test: FAILED: $*"; failed=$((failed + 1)); }
check() {  # DESCRIPTION COMMAND...: passes when the command succeeds
  local what=$1
  shift
  if "$@" >/dev/null 2>&1; then ok; else bad "$what"; fi
}
status_of() {  # COMMAND...: its exit status, output to $dir/out
  local status=0
  "$@" >"$dir/out" 2>&1 || status=$?
  echo "$status"
}
exits() {  # STATUS COMMAND...
  local want=$1 got
  shift
  got=$(status_of "$@")
  if [[ $got == "$want" ]]; then ok; else bad "'${*#"$certs"}' exited $got, not $want: $(tail -n 2 "$dir/out")"; fi
}
verifies() {  # CAFILE CERT
  check "openssl verify -CAfile ${1#"$dir"/} ${2#"$dir"/}" openssl verify -CAfile "$1" "$2"
}
exts() { openssl x509 -in "$1" -noout -ext subjectAltName,extendedKeyUsage 2>/dev/null; }
sans() { openssl x509 -in "$1" -noout -ext subjectAltName 2>/dev/null | sed -n 's/^ \{1,\}//p'; }
serial() { openssl x509 -in "$1" -noout -serial; }
mode() { stat -c %a "$1"; }
has() {  # WHAT TEXT NEEDLE
  if [[ $2 == *"$3"* ]]; then ok; else bad "$1 lacks '$3': ${2//$'\n'/ }"; fi
}

# --help
exits 0 "$certs" --help
has "--help" "$(cat "$dir/out")" "apq-certs init"

# init makes a CA, and refuses a second one.
exits 0 "$certs" init "$tls"
check "ca.crt and ca.key written" test -s "$tls/ca.crt" -a -s "$tls/ca.key"
verifies "$tls/ca.crt" "$tls/ca.crt"
ca_text=$(openssl x509 -in "$tls/ca.crt" -noout -subject -ext basicConstraints,keyUsage)
has "the CA" "$ca_text" "CA:TRUE"
has "the CA" "$ca_text" "Certificate Sign, CRL Sign"
has "the CA" "$ca_text" "apq CA "
has "the CA key" "$(openssl pkey -in "$tls/ca.key" -noout -text 2>&1)" "P-256"
first_ca=$(serial "$tls/ca.crt")
exits 1 "$certs" init "$tls"
has "init again" "$(cat "$dir/out")" "--rotate"
[[ $(serial "$tls/ca.crt") == "$first_ca" ]] && ok || bad "init again changed ca.crt"

# The aggregator: DNS and IP names, serverAuth.
exits 0 "$certs" aggregator "$tls" agg.example.net 10.0.0.5 fd00::5
[[ $(grep -c "^wrote " "$dir/out") == 2 ]] && ok || bad "aggregator should print 2 lines: $(cat "$dir/out")"
verifies "$tls/ca.crt" "$tls/aggregator.crt"
[[ $(sans "$tls/aggregator.crt") == "DNS:agg.example.net, IP Address:10.0.0.5, IP Address:FD00:0:0:0:0:0:0:5" ]] && ok ||
  bad "aggregator SANs: $(sans "$tls/aggregator.crt")"
has "aggregator.crt" "$(exts "$tls/aggregator.crt")" "TLS Web Server Authentication"
has "aggregator.crt" "$(openssl x509 -in "$tls/aggregator.crt" -noout -subject)" "CN = agg.example.net"

# An agent: exactly its cluster and host, clientAuth.
exits 0 "$certs" agent "$tls" prod web-17
verifies "$tls/ca.crt" "$tls/agent-prod-web-17.crt"
[[ $(sans "$tls/agent-prod-web-17.crt") == "URI:apq://agent/prod/web-17" ]] && ok ||
  bad "agent SAN: $(sans "$tls/agent-prod-web-17.crt")"
agent_exts=$(exts "$tls/agent-prod-web-17.crt")
has "agent-prod-web-17.crt" "$agent_exts" "TLS Web Client Authentication"
[[ $agent_exts != *"Server Authentication"* ]] && ok || bad "the agent's certificate is a server's: ${agent_exts//$'\n'/ }"
has "agent-prod-web-17.crt" "$(openssl x509 -in "$tls/agent-prod-web-17.crt" -noout -subject)" "CN = agent web-17"
# Any host of a cluster.
exits 0 "$certs" agent --days 30 "$tls" prod '*'
[[ $(sans "$tls/agent-prod-any.crt") == "URI:apq://agent/prod/*" ]] && ok ||
  bad "agent '*' SAN: $(sans "$tls/agent-prod-any.crt" 2>&1)"
# agent-prod-any is host '*' of prod; a host named "any" must not replace it.
exits 1 "$certs" agent "$tls" prod any
[[ $(sans "$tls/agent-prod-any.crt") == "URI:apq://agent/prod/*" ]] && ok || bad "host 'any' replaced host '*'"

# A reader: one URI per cluster.
exits 0 "$certs" reader "$tls" alice prod staging
verifies "$tls/ca.crt" "$tls/reader-alice.crt"
[[ $(sans "$tls/reader-alice.crt") == "URI:apq://reader/prod, URI:apq://reader/staging" ]] && ok ||
  bad "reader SANs: $(sans "$tls/reader-alice.crt")"
has "reader-alice.crt" "$(exts "$tls/reader-alice.crt")" "TLS Web Client Authentication"
exits 0 "$certs" reader "$tls" ops '*'
[[ $(sans "$tls/reader-ops.crt") == "URI:apq://reader/*" ]] && ok || bad "reader '*' SAN: $(sans "$tls/reader-ops.crt")"

# Bad words and bad usage exit 2 with one line, and write nothing.
files_before=$(ls -A "$tls")
exits 2 "$certs" agent "$tls" 'pr/od' web-17
[[ $(wc -l <"$dir/out") == 1 ]] && ok || bad "bad usage should be one line: $(cat "$dir/out")"
has "a bad cluster's error" "$(cat "$dir/out")" "pr/od"
exits 2 "$certs" agent "$tls" prod '-web'
exits 2 "$certs" agent "$tls" prod 'web 17'
exits 2 "$certs" agent "$tls" prod '../x'
exits 2 "$certs" reader "$tls" 'al:ice' prod
exits 2 "$certs" reader "$tls" alice 'prod*'
exits 2 "$certs" aggregator "$tls" 'agg_!'
exits 2 "$certs" aggregator "$tls" 10.0.0.300
exits 2 "$certs" agent "$tls" prod
exits 2 "$certs" agent --days 0 "$tls" prod web-17
exits 2 "$certs" nosuch "$tls"
exits 2 "$certs"
[[ $(ls -A "$tls") == "$files_before" ]] && ok || bad "bad usage wrote files: $(ls -A "$tls")"
# A leaf without a CA fails.
mkdir "$dir/empty"
exits 1 "$certs" agent "$dir/empty" prod web-17

# Modes.
for key in "$tls"/*.key; do [[ $(mode "$key") == 600 ]] && ok || bad "${key#"$dir"/} is mode $(mode "$key")"; done
for crt in "$tls"/*.crt; do [[ $(mode "$crt") == 644 ]] && ok || bad "${crt#"$dir"/} is mode $(mode "$crt")"; done

# Re-running agent rotates it and keeps the previous pair.
old_serial=$(serial "$tls/agent-prod-web-17.crt")
old_key=$(openssl pkey -in "$tls/agent-prod-web-17.key" -pubout)
exits 0 "$certs" agent "$tls" prod web-17
new_serial=$(serial "$tls/agent-prod-web-17.crt")
[[ $new_serial != "$old_serial" ]] && ok || bad "the rotated agent certificate kept serial $old_serial"
[[ $(serial "$tls/agent-prod-web-17.crt.previous" 2>&1) == "$old_serial" ]] && ok || bad "no agent-prod-web-17.crt.previous of the old serial"
[[ $(openssl pkey -in "$tls/agent-prod-web-17.key.previous" -pubout 2>&1) == "$old_key" ]] && ok ||
  bad "agent-prod-web-17.key.previous is not the old key"
[[ $(openssl pkey -in "$tls/agent-prod-web-17.key" -pubout) != "$old_key" ]] && ok || bad "the rotated agent kept its key"
[[ $(mode "$tls/agent-prod-web-17.key.previous") == 600 ]] && ok || bad "agent-prod-web-17.key.previous is not 0600"
[[ $(sans "$tls/agent-prod-web-17.crt") == "URI:apq://agent/prod/web-17" ]] && ok || bad "the rotated agent's SAN"
[[ -z $(find "$tls" -name '.apq-certs*') ]] && ok || bad "temporary files left in $tls"

# init --rotate: ca.crt trusts the new and the previous CA; new leaves are
# signed by the new one.
exits 0 "$certs" init --rotate "$tls"
[[ $(grep -c 'BEGIN CERTIFICATE' "$tls/ca.crt") == 2 ]] && ok || bad "the rotated ca.crt is not a bundle of two"
[[ $(serial "$tls/ca-previous.crt" 2>&1) == "$first_ca" ]] && ok || bad "ca-previous.crt is not the first CA"
[[ $(serial "$tls/ca.crt") != "$first_ca" ]] && ok || bad "ca.crt does not start with a new CA"
check "ca-previous.key written" test -s "$tls/ca-previous.key"
[[ $(mode "$tls/ca-previous.key") == 600 && $(mode "$tls/ca.key") == 600 ]] && ok || bad "CA keys after rotation not 0600"
verifies "$tls/ca.crt" "$tls/agent-prod-web-17.crt"
verifies "$tls/ca.crt" "$tls/aggregator.crt"
exits 0 "$certs" agent "$tls" prod web-18
verifies "$tls/ca.crt" "$tls/agent-prod-web-18.crt"
[[ $(openssl x509 -in "$tls/agent-prod-web-18.crt" -noout -issuer) == \
  "$(openssl x509 -in "$tls/ca.crt" -noout -subject | sed 's/^subject/issuer/')" ]] && ok ||
  bad "the new leaf is not signed by the new CA"
if openssl verify -CAfile "$tls/ca-previous.crt" "$tls/agent-prod-web-18.crt" >/dev/null 2>&1; then
  bad "the new leaf verifies against the previous CA alone"
else ok; fi

if ((failed)); then
  echo "apq-certs test: $passed checks passed, $failed failed"
  exit 1
fi
echo "apq-certs test: $passed checks passed"
