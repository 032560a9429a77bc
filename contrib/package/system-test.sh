#!/usr/bin/env bash
# The install an operator does, on a real systemd: boots a fresh Debian guest (debootstrap,
# systemd-nspawn, a private network), installs a package that contrib/package/build.sh made,
# and runs contrib/package/system-test-guest.sh inside it: `systemctl enable --now
# chantal-sync.timer chantal-fs`, syncs from an HTTP upstream as the hardened unit, and checks
# that nginx serves through the mount the unit made, across a new version and a restart.
# Twice, each in a guest of its own: the .deb (dpkg), then the .rpm (rpm, with its scriptlet
# and its nginx site in conf.d/; --nodeps, as the guest's rpm database knows no Debian package).
#
# Needs root, the host's Debian/Ubuntu mirror (the guest is the host's own release), and the
# built packages (target/package/). Prints "system test: ok" or the first problem
# with the guest's journal of chantal's units, exit 1. On a host without apt (RHEL family) it
# says it is skipped: the guest is made with debootstrap.
# Usage: contrib/package/system-test.sh   (env: CHANTAL_SYSTEST_MIRROR, CHANTAL_SYSTEST_SUITE;
# CHANTAL_SYSTEST_KEEP=SECONDS keeps a failed guest running that long, to look around in it)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
. contrib/lib/deps.sh

fail() { echo "system test: $*" >&2; exit 1; }
if ! command -v apt-get >/dev/null; then
    echo "system test: skipped (the guest is a Debian/Ubuntu one, made with debootstrap)"
    exit 0
fi
[ "$(id -u)" -eq 0 ] || fail "needs root (debootstrap, systemd-nspawn)"
ensure_deps debootstrap systemd-nspawn createrepo_c
deb=$(ls target/package/chantal_*.deb 2>/dev/null | head -n 1)
rpm=$(ls target/package/chantal-*.rpm 2>/dev/null | head -n 1)
[ -n "$deb" ] && [ -n "$rpm" ] || fail "no packages in target/package/: run contrib/package/build.sh first"

# The guest is the host's own release (Debian's or Ubuntu's main archive unless told otherwise).
. /etc/os-release
SUITE=${CHANTAL_SYSTEST_SUITE:-${VERSION_CODENAME:-bookworm}}
case "${ID:-debian}" in
    ubuntu) MIRROR=${CHANTAL_SYSTEST_MIRROR:-http://archive.ubuntu.com/ubuntu} ;;
    *) MIRROR=${CHANTAL_SYSTEST_MIRROR:-http://deb.debian.org/debian} ;;
esac

W=$(mktemp -d /var/tmp/chantal-systest.XXXXXX)
NSPAWN_PID=
stop_guest() {
    if [ -n "$NSPAWN_PID" ] && kill -0 "$NSPAWN_PID" 2>/dev/null; then
        # SIGTERM asks the guest's systemd to power off, which stops chantal-fs (unmounting).
        kill "$NSPAWN_PID" 2>/dev/null || true
        for _ in $(seq 1 300); do kill -0 "$NSPAWN_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$NSPAWN_PID" 2>/dev/null || true
        wait "$NSPAWN_PID" 2>/dev/null || true
    fi
    NSPAWN_PID=
}
cleanup() { stop_guest; rm -rf --one-file-system "$W"; }
trap cleanup EXIT

# A guest made once is kept in target/ (a tarball keyed by the release and the package list):
# each package's guest starts from it, and running the test again locally starts in seconds.
PACKAGES=systemd,systemd-sysv,dbus,nginx,fuse3,curl,procps,rpm,ca-certificates
CACHE="target/systest-$SUITE-$(printf '%s %s' "$MIRROR" "$PACKAGES" | sha256sum | cut -c1-12).tar"
if [ ! -f "$CACHE" ]; then
    log "system test: debootstrap $SUITE from $MIRROR"
    mkdir -p "$W/bootstrap"
    debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$W/bootstrap" "$MIRROR" \
        > "$W/debootstrap.log" 2>&1 \
        || { tail -n 20 "$W/debootstrap.log" >&2; fail "debootstrap $SUITE failed"; }
    rm -f target/systest-*.tar
    tar -C "$W/bootstrap" -cf "$CACHE.tmp" . && mv "$CACHE.tmp" "$CACHE"
    rm -rf --one-file-system "$W/bootstrap"
fi

# The upstream, as the guest's nginx serves it on 127.0.0.1:8081: two states, so the second
# sync commits a new version (hello-1.1 appears) that the running mount must show.
mkdir -p "$W/srv/upstream-1/Packages" "$W/srv/upstream-2/Packages"
cp tests/data/rpms/*.rpm "$W/srv/upstream-2/Packages/"
cp tests/data/rpms/*.rpm "$W/srv/upstream-1/Packages/"
rm "$W/srv/upstream-1/Packages/hello-1.1-1.noarch.rpm"
createrepo_c --quiet --no-database "$W/srv/upstream-1"
createrepo_c --quiet --no-database "$W/srv/upstream-2"

# Without a systemd on the host (a container), nspawn can neither register the guest nor give
# it a scope unit of its own.
flags=()
if [ ! -d /run/systemd/system ]; then flags+=(--register=no --keep-unit); fi

# run_guest PACKAGE: a fresh guest, PACKAGE installed in it, the guest script's checks.
run_guest() {
    local pkg=$1 G="$W/root" leader= state=
    rm -rf --one-file-system "$G"
    mkdir -p "$G"
    tar -C "$G" -xf "$CACHE"
    cp -a "$W/srv/upstream-1" "$W/srv/upstream-2" "$G/srv/"
    ln -s upstream-1 "$G/srv/upstream"
    cp "$pkg" "$G/root/"
    cp contrib/package/system-test-guest.sh "$G/root/system-test-guest.sh"

    log "system test: booting a guest for $(basename "$pkg")"
    systemd-nspawn -q -D "$G" -b -M "chantal-systest-$$" --private-network --console=read-only \
        --bind=/dev/fuse --property='DeviceAllow=/dev/fuse rwm' "${flags[@]}" \
        > "$W/console.log" 2>&1 &
    NSPAWN_PID=$!
    # The guest's init: nspawn's child once it has booted.
    for _ in $(seq 1 300); do
        kill -0 "$NSPAWN_PID" 2>/dev/null || { tail -n 30 "$W/console.log" >&2; fail "the guest did not boot"; }
        leader=$(pgrep -P "$NSPAWN_PID" -x systemd || true)
        [ -n "$leader" ] && break
        sleep 0.2
    done
    [ -n "$leader" ] || fail "the guest's systemd did not start"
    # is-system-running --wait needs the guest's manager to listen first: ask until it answers.
    for _ in $(seq 1 120); do
        state=$(timeout 120 nsenter -t "$leader" -a systemctl is-system-running --wait 2>/dev/null || true)
        case "$state" in running|degraded|maintenance|stopping) break ;; esac
        sleep 1
    done
    case "$state" in
        running|degraded) ;;
        *) tail -n 30 "$W/console.log" >&2; fail "the guest's systemd did not finish booting (state: ${state:-none})" ;;
    esac

    guest() { nsenter -t "$leader" -a env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"; }
    if ! guest bash /root/system-test-guest.sh "/root/$(basename "$pkg")"; then
        echo "--- the guest's journal of chantal's units and nginx:" >&2
        guest journalctl --no-pager -n 80 -u chantal-sync.service -u chantal-fs.service -u nginx.service >&2 || true
        if [ -n "${CHANTAL_SYSTEST_KEEP:-}" ]; then
            # For a developer: look around with `nsenter -t <pid> -a bash` meanwhile.
            echo "the guest is kept running for ${CHANTAL_SYSTEST_KEEP} s: nsenter -t $leader -a bash" >&2
            sleep "$CHANTAL_SYSTEST_KEEP"
        fi
        fail "$(basename "$pkg") installed did not work as docs/INSTALL.md says (above)"
    fi
    stop_guest
}

run_guest "$deb"
run_guest "$rpm"
echo "system test: ok"
