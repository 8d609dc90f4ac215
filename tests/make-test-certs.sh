#!/usr/bin/env bash
# Makes throwaway certificates for the TLS tests in DIR: a CA (ca.pem) that
# signs a server certificate for localhost and 127.0.0.1 (server.pem,
# server.key) and a client certificate (client.pem, client.key); and a second,
# unrelated CA with a client certificate of its own (rogue-ca.pem,
# rogue-client.pem, rogue-client.key). Valid for one day.
#   tests/make-test-certs.sh DIR
set -euo pipefail
dir=$1
mkdir -p "$dir"
cd "$dir"
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
ca() {  # NAME
  key "$1.key"
  openssl req -x509 -new -key "$1.key" -out "$1.pem" -days 1 -subj "/CN=apq test $1"
}
signed() {  # NAME CA EXTENSIONS
  key "$1.key"
  openssl req -new -key "$1.key" -out "$1.csr" -subj "/CN=apq test $1"
  printf '%s\n' "$3" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial -out "$1.pem" -days 1 \
    -extfile "$1.ext" 2>/dev/null
}
ca ca
signed server ca "subjectAltName=DNS:localhost,IP:127.0.0.1"
signed client ca "extendedKeyUsage=clientAuth"
ca rogue-ca
signed rogue-client rogue-ca "extendedKeyUsage=clientAuth"
