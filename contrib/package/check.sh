#!/usr/bin/env bash
# Builds the packages (build.sh) and checks them: each holds every file an installation
# needs (dpkg -c, rpm -qpl), the .deb's binaries run, and the systemd units' exposure
# (`systemd-analyze security --offline`) stays within what docs/INSTALL.md reports.
# Run by contrib/test.sh; prints "packages: ok" or the first problem, exit 1.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
. contrib/lib/deps.sh
ensure_deps rpm dpkg-deb
out=$(contrib/package/build.sh)
A=target/package
deb=$(ls "$A"/*.deb)
rpm=$(ls "$A"/*.rpm)
deb_files=$(dpkg -c "$deb" | awk '{print $6}' | sed 's|^\./|/|')
rpm_files=$(rpm -qpl "$rpm")
fail() { echo "packages: $*" >&2; exit 1; }
for f in /usr/bin/chantal /usr/bin/chantal-fs \
         /usr/lib/systemd/system/chantal-sync.service /usr/lib/systemd/system/chantal-sync.timer \
         /usr/lib/systemd/system/chantal-fs.service /usr/lib/systemd/system/chantal-fetchd.service \
         /usr/lib/sysusers.d/chantal.conf /usr/lib/tmpfiles.d/chantal.conf \
         /etc/chantal/config.yaml /etc/chantal/conf.d/README \
         /usr/share/man/man1/chantal.1.gz /usr/share/man/man1/chantal-repo-sync.1.gz \
         /usr/share/man/man1/chantal-pool-verify.1.gz /usr/share/man/man1/chantal-fs.1.gz \
         /usr/share/bash-completion/completions/chantal /usr/share/fish/vendor_completions.d/chantal.fish \
         /usr/share/doc/chantal/README.md /usr/share/doc/chantal/examples/config.yaml; do
    grep -qx "$f" <<<"$deb_files" || fail "$deb lacks $f"
    grep -qx "$f" <<<"$rpm_files" || fail "$rpm lacks $f"
done
grep -qx /etc/nginx/sites-available/chantal <<<"$deb_files" || fail "$deb lacks the nginx site"
grep -qx /etc/nginx/conf.d/chantal.conf <<<"$rpm_files" || fail "$rpm lacks the nginx site"
grep -qx /usr/share/zsh/vendor-completions/_chantal <<<"$deb_files" || fail "$deb lacks zsh completion"
grep -qx /usr/share/zsh/site-functions/_chantal <<<"$rpm_files" || fail "$rpm lacks zsh completion"
# Configuration files survive upgrades and edits.
rpm -qpc "$rpm" | grep -qx /etc/chantal/config.yaml || fail "$rpm: config.yaml is not %config"
dpkg-deb -I "$deb" conffiles | grep -qx /etc/chantal/config.yaml || fail "$deb: config.yaml is not a conffile"
# The scriptlets create the user and the directories.
rpm -qp --scripts "$rpm" | grep -q systemd-sysusers || fail "$rpm: no user creation"
dpkg-deb -I "$deb" postinst | grep -q systemd-sysusers || fail "$deb: no user creation"
# The packaged binaries run.
x=$(mktemp -d); trap 'rm -rf "$x"' EXIT
dpkg-deb -x "$deb" "$x"
"$x/usr/bin/chantal" --version | grep -q '^chantal ' || fail "packaged chantal does not run"
"$x/usr/bin/chantal-fs" --version | grep -q '^chantal-fs ' || fail "packaged chantal-fs does not run"
# Hardening of the units, as docs/INSTALL.md reports it.
if command -v systemd-analyze >/dev/null; then
    systemd-analyze security --offline=true --threshold=20 contrib/systemd/chantal-sync.service >/dev/null \
        || fail "chantal-sync.service: exposure above 2.0"
    systemd-analyze security --offline=true --threshold=40 contrib/systemd/chantal-fs.service >/dev/null \
        || fail "chantal-fs.service: exposure above 4.0"
    systemd-analyze security --offline=true --threshold=20 contrib/systemd/chantal-fetchd.service >/dev/null \
        || fail "chantal-fetchd.service: exposure above 2.0"
fi
echo "== $deb"; dpkg -c "$deb" | awk '{print $6}'
echo "== $rpm"; rpm -qpl "$rpm"
echo "packages: ok"
