#!/usr/bin/env bash
# Guest tier: boots Debian's newest 6.1 kernel under qemu (TCG) with the
# built binaries in an initramfs and runs the root tier there. 6.1 allows
# fentry/fexit (this CI host's kernel does not), so the bulk, contiguous and
# migration hooks are exercised for real, and the tracker is checked on a
# second kernel. Needs root (apt-get download).
#   tests/guest/run-guest-tests.sh BUILD_DIR [GTEST_FILTER]
set -euo pipefail
build=$(cd "$1" && pwd)
filter=${2:-*}
cache=$build/guest
mkdir -p "$cache"

find_package() {
  apt-cache search --names-only '^linux-image-6\.1\.[0-9.]+-[0-9]+-amd64$' | cut -d' ' -f1 | sort -V | tail -n 1
}
package=$(find_package)
if [[ -z $package ]]; then  # lists never fetched on this machine
  apt-get update -qq
  package=$(find_package)
fi
[[ -n $package ]] || { echo "guest: no linux-image-6.1 package in Debian's lists" >&2; exit 1; }
if [[ ! -s $cache/$package.vmlinux ]]; then
  echo "guest: fetching $package"
  rm -rf "$cache/pkg" && mkdir -p "$cache/pkg"
  (cd "$cache" && apt-get download -q "$package" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
  dpkg-deb -x "$cache"/"$package"_*.deb "$cache/pkg"
  image=$(ls "$cache"/pkg/boot/vmlinuz-*)
  # Boot the uncompressed kernel: decompressing under TCG costs ~2 s.
  offset=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$image" | head -n 1 | cut -d: -f1)
  tail -c +$((offset + 1)) "$image" | xz -dc --single-stream >"$cache/$package.vmlinux" 2>/dev/null || true
  rm -rf "$cache/pkg" "$cache"/*.deb
  [[ -s $cache/$package.vmlinux ]] || { echo "guest: could not unpack $image" >&2; exit 1; }
fi

root=$cache/initramfs
rm -rf "$root" && mkdir -p "$root"/{bin,dev,proc,sys,tmp,etc}  # the initramfs root is writable: /tmp needs no mount
cp /bin/busybox "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
  [[ $applet == busybox ]] || ln -sf busybox "$root/bin/$applet"
done
copy_with_libraries() {
  local file=$1
  mkdir -p "$root$(dirname "$file")"
  cp -L "$file" "$root$file"
  for lib in $(ldd "$file" | grep -oE '/[^ ]+\.so[^ ]*'); do
    [[ -e $root$lib ]] && continue
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
}
for binary in agent/apq-agent tests/apq-hold-pipes tests/apq-hold-maps tests/apq-hold-anon tests/apq-churn \
  tests/agent_root_test; do
  copy_with_libraries "$build/$binary"
done
copy_with_libraries /usr/bin/setpriv
cat >"$root/init" <<INIT
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tracefs tracefs /sys/kernel/tracing
mount -t debugfs debugfs /sys/kernel/debug
mount -t cgroup2 cgroup2 /sys/fs/cgroup
echo "APQ-GUEST-KERNEL \$(uname -r)"
$build/tests/agent_root_test --gtest_color=no --gtest_filter='$filter'
echo "APQ-GUEST-RESULT rc=\$?"
poweroff -f
INIT
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet) >"$cache/initramfs.cpio"

echo "guest: booting $package"
log=$cache/console.log
timeout 1500 qemu-system-x86_64 -accel tcg,thread=multi -cpu max -smp 2 -m 3072 -M pc -nic none -nographic \
  -no-reboot -kernel "$cache/$package.vmlinux" -initrd "$cache/initramfs.cpio" \
  -append "console=ttyS0 panic=-1 quiet" >"$log" 2>&1 || true
tr -d '\r' <"$log" | grep -vE '^\[ *[0-9]+\.[0-9]+\]' || true
result=$(tr -d '\r' <"$log" | grep -oE 'APQ-GUEST-RESULT rc=[0-9]+' | tail -n 1)
[[ $result == "APQ-GUEST-RESULT rc=0" ]] || { echo "guest: tests failed or did not finish (${result:-no result})" >&2; exit 1; }
