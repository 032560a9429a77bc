#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what a fresh machine lacks (PostgreSQL server,
# createrepo_c, nginx, openssl, dnf, rpm, rpmsign, gnupg, fuse3, bindfs, faketime, chromium,
# debootstrap, systemd-container; productmd from PyPI in a virtual environment), then cargo fmt
# --check, clippy with warnings as errors, and every test against real services, once with a
# PostgreSQL catalogue and once with SQLite; then the packages, built and installed in a guest.
# Ends with one summary line "tests: N passed, N failed" and a non-zero exit on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
. contrib/lib/deps.sh

ensure_deps postgresql runuser setsid createrepo_c nginx openssl dnf rpm rpmsign gpg dnf-plugins-core fusermount3 bindfs faketime chromium
export PATH="$PATH:$(pg_bindir)"
# Users other than root mount FUSE through the setuid fusermount3, which needs /dev/fuse open
# to all, as fuse3's udev rule leaves it (mode 0666); some containers create it 0600.
if [ -c /dev/fuse ] && [ "$(stat -c %a /dev/fuse)" != 666 ]; then
    as_root chmod 0666 /dev/fuse
fi
# productmd (from PyPI: no distribution packages it) writes and checks the installer trees of
# the tests, in a virtual environment of its own.
PRODUCTMD_VENV=${CHANTAL_PRODUCTMD_VENV:-/var/tmp/chantal-test-venv}
if ! "$PRODUCTMD_VENV/bin/python" -c 'import productmd.treeinfo' 2>/dev/null; then
    log "installing productmd into $PRODUCTMD_VENV"
    python3 -m venv "$PRODUCTMD_VENV" 2>/dev/null || { pkg_install python3-venv && python3 -m venv "$PRODUCTMD_VENV"; }
    "$PRODUCTMD_VENV/bin/pip" install --quiet productmd
fi
export CHANTAL_TEST_PYTHON="$PRODUCTMD_VENV/bin/python"

log "self-contained tree"
# Everything the tests and benchmarks read is in the repository (tests/fixtures/): a clone has
# nothing beside it, so no file may reach for a directory next to the checkout. (CI machines
# happen to have one, which hid such references once.)
if grep -rnIE --exclude-dir=target --exclude-dir=.git '\.\./shared' . >&2; then
    echo "the lines above refer to a directory outside the repository: carry the data in tests/fixtures/" >&2
    exit 1
fi
log "cargo fmt --check"
cargo fmt --all -- --check
log "crate boundaries"
# chantal-fs serves files: no async runtime or HTTP client of its own, never the sync crate;
# and nothing below common pulls in an HTTP client. (tokio does reach chantal-fs through the
# blocking postgres client, which runs it internally.)
if cargo tree -p chantal-fs -e normal --depth 1 --prefix none | grep -qE '^(tokio|reqwest|chantal-sync) ' \
    || cargo tree -p chantal-common -e normal --prefix none | grep -qE '^reqwest '; then
    echo "crate boundary broken: see docs/ARCHITECTURE.md" >&2
    exit 1
fi
log "module circles"
# Inside each crate, top-level modules depend one way (the catalogue never on the config, the
# trust code never on the engine...).
python3 contrib/lib/module-cycles.py common/src sync/src fs/src
log "cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
log "cargo build"
cargo build --workspace --quiet

# The whole suite once per catalogue backend (tests/src/db.rs reads CHANTAL_TEST_BACKEND).
mkdir -p target
: > target/test-output.log
status=0
for backend in postgresql sqlite; do
    log "cargo test (catalogue: $backend)"
    CHANTAL_TEST_BACKEND=$backend cargo test --workspace --lib --bins --tests --no-fail-fast 2>&1 \
        | tee -a target/test-output.log || status=$?
done

# The .deb and the .rpm, built from the debug binaries just tested (the same files as a
# release's; contrib/package/build.sh makes the release ones), with their file lists checked.
log "packages (deb, rpm)"
CHANTAL_PACKAGE_PROFILE=dev contrib/package/check.sh 2>&1 | tee -a target/test-output.log \
    | grep -E '^(packages:|==)' || true
grep -qx 'packages: ok' target/test-output.log || status=1
# Those packages installed on a real systemd (a Debian guest under systemd-nspawn): the units
# started as docs/INSTALL.md says, nginx serving through the unit-started mount.
log "system test (the packages installed in a guest)"
contrib/package/system-test.sh 2>&1 | tee -a target/test-output.log | grep -E '^(system test:|  guest:)' || true
grep -qE '^system test: (ok|skipped)' target/test-output.log || status=1

count() {
    awk -v what="$1" '/^test result: /{for(i=1;i<NF;i++) if($(i+1) ~ "^" what) n+=$i} END{print n+0}' \
        target/test-output.log
}
passed=$(count passed)
failed=$(count failed)
echo
echo "tests: $passed passed, $failed failed"
if [ "$status" -ne 0 ] || [ "$failed" -ne 0 ] || [ "$passed" -eq 0 ]; then
    exit 1
fi
