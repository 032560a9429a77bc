#!/usr/bin/env bash
# Builds chantal's packages from one asset list (sync/Cargo.toml's package.metadata):
#   target/package/chantal_<version>_<arch>.deb    (cargo-deb)
#   target/package/chantal-<version>-1.<arch>.rpm   (cargo-generate-rpm)
# with both binaries, the systemd units, the system user (sysusers.d), the directories
# (tmpfiles.d), /etc/chantal/config.yaml, the nginx site, man pages and shell completions
# generated from the binaries. Installs cargo-deb and cargo-generate-rpm if missing. Prints each
# package's file list (dpkg -c, rpm -qpl when rpm is installed).
# Usage: contrib/package/build.sh   (env: CHANTAL_PACKAGE_PROFILE, default dist; contrib/test.sh
# checks the packaging with `dev`, the build it has already made, which has the same files)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
. contrib/lib/deps.sh

for tool in cargo-deb cargo-generate-rpm; do
    if ! command -v "$tool" >/dev/null; then
        log "installing $tool"
        # A debug build of the tool: a third of the build time, and it has little to do.
        cargo install --debug --locked --quiet "$tool"
    fi
done
PROFILE=${CHANTAL_PACKAGE_PROFILE:-dist}
log "building chantal (profile $PROFILE)"
cargo build --profile "$PROFILE" --locked --quiet -p chantal-sync -p chantal-fs
case $PROFILE in dev) B=target/debug ;; *) B=target/$PROFILE ;; esac

A=target/package
rm -rf "$A"
mkdir -p "$A/man" "$A/completions"
log "man pages and completions"
"$B/chantal" -q manpages "$A/man"
"$B/chantal-fs" --man-page > "$A/man/chantal-fs.1"
gzip -9n "$A"/man/*.1
"$B/chantal" completions bash > "$A/completions/chantal.bash"
"$B/chantal" completions zsh > "$A/completions/_chantal"
"$B/chantal" completions fish > "$A/completions/chantal.fish"

log "chantal.deb"
cargo deb --no-build --quiet --profile "$PROFILE" -p chantal-sync --output "$A/"
log "chantal.rpm"
if [ "$PROFILE" = dev ]; then
    # The check's debug binaries carry hundreds of MB of debug information, which cargo-deb
    # strips and cargo-generate-rpm does not: the rpm takes stripped copies, stored as they are.
    S="$A/stage"
    mkdir -p "$S/debug"
    strip -o "$S/debug/chantal" "$B/chantal"
    strip -o "$S/debug/chantal-fs" "$B/chantal-fs"
    cargo generate-rpm --profile dev --target-dir "$S" --payload-compress none -p sync --output "$A/"
else
    cargo generate-rpm --profile "$PROFILE" -p sync --output "$A/"
fi

for deb in "$A"/*.deb; do
    echo "== $deb"
    dpkg -c "$deb"
done
for rpm in "$A"/*.rpm; do
    echo "== $rpm"
    if command -v rpm >/dev/null; then rpm -qpl "$rpm"; fi
done
