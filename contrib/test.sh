#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what a fresh machine lacks (PostgreSQL server,
# createrepo_c, nginx, openssl, dnf, rpm), then cargo fmt --check, clippy with warnings as errors, and
# every test against real services.
# Ends with one summary line "tests: N passed, N failed" and a non-zero exit on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
. contrib/lib/deps.sh

ensure_deps postgresql runuser setsid createrepo_c nginx openssl dnf rpm fusermount3
export PATH="$PATH:$(pg_bindir)"

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
log "cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
log "cargo build"
cargo build --workspace --quiet

log "cargo test"
mkdir -p target
status=0
cargo test --workspace --lib --bins --tests --no-fail-fast 2>&1 | tee target/test-output.log || status=$?

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
