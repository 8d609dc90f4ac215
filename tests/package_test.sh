#!/usr/bin/env bash
# Package tier: rpmbuild builds the openEuler packages from the source tree
# (deploy/apq.spec.in, configured into BUILD_DIR/deploy/apq.spec) and the
# result is inspected as an operator would: files, configuration, the
# aggregator's user, and binaries that run.
#   tests/package_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
source=$(cd "$2" && pwd)
top=$(mktemp -d)
trap 'rm -rf "$top"' EXIT
fail() { echo "package: $*" >&2; exit 1; }

spec=$build/deploy/apq.spec
version=$(sed -n 's/^Version: *//p' "$spec")
mkdir -p "$top"/{SOURCES,BUILD,RPMS,SRPMS,SPECS}
# The tree as git knows it (tracked and new files, not ignored ones).
git -C "$source" ls-files --cached --others --exclude-standard -z |
  tar -C "$source" --null -T - --transform "s,^,apq-$version/," -czf "$top/SOURCES/apq-$version.tar.gz"
# Debian's rpm lacks systemd-rpm-macros (openEuler has them): the same
# paths, and scriptlets that do nothing in a build root.
macros=(--define "_unitdir /usr/lib/systemd/system" --define "_sysusersdir /usr/lib/sysusers.d")
for m in systemd_post systemd_preun systemd_postun_with_restart; do macros+=(--define "$m() :"); done
# --nodeps: the build dependencies are openEuler's names; setup.sh installs
# Debian's equivalents.
rpmbuild -bb --nodeps --define "_topdir $top" --define "_smp_mflags -j2" "${macros[@]}" "$spec" \
  >"$top/rpmbuild.log" 2>&1 || { tail -n 40 "$top/rpmbuild.log"; fail "rpmbuild failed"; }

rpm_of() { ls "$top"/RPMS/*/"$1"-"$version"-*.rpm 2>/dev/null | head -n 1; }
cli=$(rpm_of apq) agent=$(rpm_of apq-agent) aggregator=$(rpm_of apq-aggregator)
[[ -f $cli && -f $agent && -f $aggregator ]] || fail "expected apq, apq-agent and apq-aggregator packages: $(ls -R "$top/RPMS")"

expect_files() {  # PACKAGE FILE...
  local package=$1 listed
  shift
  listed=$(rpm -qlp "$package")
  # Man pages are compressed where the distribution's rpm does it (openEuler).
  for file in "$@"; do grep -qxE "$file(\.gz)?" <<<"$listed" || fail "$(basename "$package") lacks $file: $listed"; done
}
expect_files "$cli" /usr/bin/apq /usr/share/man/man1/apq.1 /usr/share/doc/apq/README.md
expect_files "$agent" /usr/bin/apq-agent /usr/lib/systemd/system/apq-agent.service /etc/apq/agent.flags \
  /usr/share/man/man1/apq-agent.1
expect_files "$aggregator" /usr/bin/apq-aggregator /usr/lib/systemd/system/apq-aggregator.service \
  /etc/apq/aggregator.flags /usr/lib/sysusers.d/apq.conf /usr/share/man/man1/apq-aggregator.1
[[ $(rpm -qcp "$agent") == /etc/apq/agent.flags ]] || fail "agent.flags is not marked as configuration"
[[ $(rpm -qcp "$aggregator") == /etc/apq/aggregator.flags ]] || fail "aggregator.flags is not marked as configuration"
rpm -qp --scripts "$aggregator" | grep -q 'useradd -r -g apq' || fail "the aggregator package does not create its user"

# What is inside runs, and the units start what was installed.
mkdir "$top/root"
for package in "$cli" "$agent" "$aggregator"; do (cd "$top/root" && rpm2cpio "$package" | cpio -idm --quiet); done
for binary in apq apq-agent apq-aggregator; do
  [[ $("$top/root/usr/bin/$binary" --version) == "$binary $version" ]] || fail "$binary --version"
done
grep -q '^ExecStart=/usr/bin/apq-aggregator ' "$top/root/usr/lib/systemd/system/apq-aggregator.service" ||
  fail "the aggregator unit does not start /usr/bin/apq-aggregator"
grep -q '^User=apq$' "$top/root/usr/lib/systemd/system/apq-aggregator.service" || fail "the aggregator unit's user"
for package in "$cli" "$agent" "$aggregator"; do
  echo "$(basename "$package"): $(rpm -qlp "$package" | wc -l) files"
done
echo "package: passed"
