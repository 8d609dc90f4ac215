#!/usr/bin/env bash
# Guest tier: boots a kernel under qemu (TCG) with the built binaries in an
# initramfs and runs the root tier there. Guest kernels allow fentry/fexit
# (this CI host's kernel does not), so the bulk, contiguous and migration
# hooks are exercised for real, and the tracker is checked on the kernels
# apq's users run. Needs root (apt-get download).
#   tests/guest/run-guest-tests.sh BUILD_DIR KERNEL[+page_owner] [GTEST_FILTER]
# With APQ_GUEST_RUN=SCRIPT, the guest runs that shell script (with the
# build directory as $1, then the words of APQ_GUEST_RUN_ARGS; busybox and
# bpftool at hand) instead of the root tier, and the run passes if it exits
# 0: the guest benchmarks and the cross-kernel test use it. With
# APQ_GUEST_NET=1 the guest has a network device on qemu's user-mode
# network, where the gateway 10.0.2.2 is this machine's loopback (nothing
# else is reachable).
# KERNEL: debian-6.1 (Debian's newest 6.1 package, fetched once), or the
# name of a directory of the shared kernels (openeuler-22.03-sp3,
# openeuler-24.03), found in $APQ_SHARED_KERNELS or ../shared/kernels beside
# the source tree. +page_owner boots with page_owner=on: the kernel's own
# record of every page, the ground truth of the page_owner test (it also
# turns bulk allocations into traced single pages, so the other tests boot
# without it).
set -euo pipefail
build=$(cd "$1" && pwd)
kernel=${2%+page_owner}
filter=${3:-*}
source_dir=$(cd "$(dirname "$0")/../.." && pwd)
shared_kernels=${APQ_SHARED_KERNELS:-$source_dir/../shared/kernels}
cache=$build/guest
mkdir -p "$cache"

# Prints the path of an uncompressed kernel for KERNEL, fetching or
# unpacking it into the cache once.
debian_6_1_kernel() {
  find_package() {
    apt-cache search --names-only '^linux-image-6\.1\.[0-9.]+-[0-9]+-amd64$' | cut -d' ' -f1 | sort -V | tail -n 1
  }
  local package
  package=$(find_package)
  if [[ -z $package ]]; then  # lists never fetched on this machine
    apt-get update -qq
    package=$(find_package)
  fi
  [[ -n $package ]] || { echo "guest: no linux-image-6.1 package in Debian's lists" >&2; return 1; }
  if [[ ! -s $cache/$package.vmlinux ]]; then
    echo "guest: fetching $package" >&2
    rm -rf "$cache/pkg" && mkdir -p "$cache/pkg"
    (cd "$cache" && apt-get download -q "$package" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2 || true)
    dpkg-deb -x "$cache"/"$package"_*.deb "$cache/pkg"
    local image offset
    image=$(ls "$cache"/pkg/boot/vmlinuz-*)
    # Boot the uncompressed kernel: decompressing under TCG costs ~2 s.
    offset=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$image" | head -n 1 | cut -d: -f1)
    tail -c +$((offset + 1)) "$image" | xz -dc --single-stream >"$cache/$package.vmlinux" 2>/dev/null || true
    rm -rf "$cache/pkg" "$cache"/*.deb
    [[ -s $cache/$package.vmlinux ]] || { echo "guest: could not unpack $image" >&2; return 1; }
  fi
  echo "$cache/$package.vmlinux"
}

shared_kernel() {
  local image=$shared_kernels/$1/vmlinux.pvh.xz
  [[ -s $image ]] || { echo "guest: no kernel image $image" >&2; return 1; }
  if [[ ! -s $cache/$1.vmlinux || $image -nt $cache/$1.vmlinux ]]; then
    xz -dc "$image" >"$cache/$1.vmlinux.tmp" && mv "$cache/$1.vmlinux.tmp" "$cache/$1.vmlinux"
  fi
  echo "$cache/$1.vmlinux"
}

append="console=ttyS0 panic=-1 quiet"
[[ $2 == *+page_owner ]] && append="$append page_owner=on"
case $kernel in
  debian-6.1) vmlinux=$(debian_6_1_kernel) ;;
  openeuler-*) vmlinux=$(shared_kernel "$kernel") ;;
  *) echo "guest: unknown kernel '$kernel' (debian-6.1, openeuler-22.03-sp3, openeuler-24.03)" >&2; exit 2 ;;
esac

root=$cache/initramfs-$2
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
for binary in agent/apq-agent cli/apq tests/apq-hold-pipes tests/apq-hold-maps tests/apq-hold-anon tests/apq-hold-sockets tests/apq-churn \
  tests/agent_root_test; do
  copy_with_libraries "$build/$binary"
done
copy_with_libraries /usr/bin/setpriv
copy_with_libraries /usr/sbin/bpftool
run="$build/tests/agent_root_test --gtest_color=no --gtest_filter='$filter'"
if [[ -n ${APQ_GUEST_RUN:-} ]]; then
  cp "$APQ_GUEST_RUN" "$root/guest-run.sh"
  run="sh /guest-run.sh $build ${APQ_GUEST_RUN_ARGS:-}"
fi
nic=(-nic none)
if [[ ${APQ_GUEST_NET:-0} == 1 ]]; then
  nic=(-netdev user,id=n0 -device virtio-net-pci,netdev=n0)
fi
cat >"$root/init" <<INIT
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tracefs tracefs /sys/kernel/tracing
mount -t debugfs debugfs /sys/kernel/debug
mount -t cgroup2 cgroup2 /sys/fs/cgroup
ip link set lo up  # the socket tests talk over loopback
if ip link show eth0 >/dev/null 2>&1; then  # qemu's user-mode network (APQ_GUEST_NET=1)
  ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2
fi
# Run in a memory cgroup of its own, as services do: the root cgroup's
# pages are not charged, and the held-at-start test reads the charges.
echo +memory >/sys/fs/cgroup/cgroup.subtree_control && mkdir /sys/fs/cgroup/apq && echo \$\$ >/sys/fs/cgroup/apq/cgroup.procs
echo "APQ-GUEST-KERNEL \$(uname -r)"
$run
echo "APQ-GUEST-RESULT rc=\$?"
poweroff -f
INIT
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet) >"$cache/initramfs-$2.cpio"

echo "guest: booting $2 ($(basename "$vmlinux"): $append)"
log=$cache/console-$2.log
# The guest stops with this script, however it ends: killed with its
# process group (--foreground keeps timeout, and so qemu, in it) or not.
qemu=
trap '[[ -z $qemu ]] || kill "$qemu" 2>/dev/null || true' EXIT
trap 'exit 143' TERM INT
timeout --foreground 1500 qemu-system-x86_64 -accel tcg,thread=multi -cpu max -smp 2 -m 3072 -M pc "${nic[@]}" \
  -nographic -no-reboot -kernel "$vmlinux" -initrd "$cache/initramfs-$2.cpio" -append "$append" >"$log" 2>&1 &
qemu=$!
wait "$qemu" || true
qemu=
tr -d '\r' <"$log" | grep -vE '^\[ *[0-9]+\.[0-9]+\]' || true
result=$(tr -d '\r' <"$log" | grep -oE 'APQ-GUEST-RESULT rc=[0-9]+' | tail -n 1)
[[ $result == "APQ-GUEST-RESULT rc=0" ]] || { echo "guest: tests failed or did not finish on $2 (${result:-no result})" >&2; exit 1; }
