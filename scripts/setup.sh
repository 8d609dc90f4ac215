#!/usr/bin/env bash
# Installs every Debian package apq's build, tests and benchmarks need.
# Idempotent: packages already present are left alone. Needs root.
set -euo pipefail

packages=(
  build-essential cmake pkg-config ninja-build
  clang-19 llvm-19 libclang-rt-19-dev clang-format-19 bpftool libbpf-dev libelf-dev zlib1g-dev
  libgrpc++-dev libgrpc-dev protobuf-compiler protobuf-compiler-grpc libprotobuf-dev
  libabsl-dev libsqlite3-dev sqlite3
  libgtest-dev libgmock-dev nlohmann-json3-dev
  python3 procps util-linux time openssl help2man systemd
  rpm rpm2cpio cpio git
  golang-go libcpp-httplib-dev prometheus curl chromium
  qemu-system-x86 busybox-static cpio xz-utils
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: need root to install: ${missing[*]}" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The web view's browser test drives Debian's Chromium with npm's
# playwright-core (its own browser download cannot be reached here).
web_tests="$(cd "$(dirname "$0")/.." && pwd)/tests/web"
if [[ ! -d $web_tests/node_modules/playwright-core ]]; then
  (cd "$web_tests" && npm ci --no-audit --no-fund >/dev/null)
fi
