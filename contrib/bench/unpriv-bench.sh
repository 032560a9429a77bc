#!/usr/bin/env bash
# What chantal-fs without CAP_SYS_ADMIN costs (docs/INSTALL.md): the same pool (the chantal-fs
# bench fixture: 50,000 packages of 4 KiB and one of 1 GiB, synced into a SQLite catalogue
# owned by an unprivileged user) served by two chantal-fs mounts: one started as root (FUSE
# passthrough: the kernel reads files straight from the pool), one started as that user
# (mounted through fusermount3; the kernel refuses passthrough, every read goes through the
# daemon). Both are read by the unprivileged user: the 1 GiB file twice (the second read's
# MB/s), and 50,000 small files opened and read (seconds). Medians of ROUNDS rounds.
# Usage: contrib/bench/unpriv-bench.sh [ROUNDS]   (as root; env: BENCH_DIR)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/contrib/lib/deps.sh"
. "$ROOT/contrib/bench/lib.sh"
ROUNDS=${1:-3}
W="$BENCH_DIR/work-unpriv"
USER_=chantal-bench

[ "$(id -u)" -eq 0 ] || die "run as root (one of the two mounts is root's)"
ensure_deps createrepo_c rpmbuild fusermount3 runuser
bench_build
UP="$BENCH_DIR/fs50k"
# fuse3's udev rule leaves /dev/fuse open to all; some containers create it 0600.
[ "$(stat -c %a /dev/fuse)" = 666 ] || chmod 0666 /dev/fuse
getent passwd "$USER_" >/dev/null || useradd --system --no-create-home --shell /usr/sbin/nologin "$USER_"
for m in "$W"/mnt-*; do if mountpoint -q "$m"; then umount -l "$m"; fi; done
rm -rf "$W"; mkdir -p "$W/conf.d" "$W/mnt-root" "$W/mnt-user"
chmod 755 "$W"
printf 'include: conf.d/*.yaml\nstorage:\n  base_path: %s/store\n' "$W" > "$W/config.yaml"
printf 'name: fs50k\nupstream:\n  url: file://%s\n' "$UP" > "$W/conf.d/fs50k.yaml"
mkdir -p "$W/store"; chown -R "$USER_": "$W/store" "$W/mnt-user"
as_user() { runuser -u "$USER_" -- "$@"; }
as_user "$CHANTAL" --config "$W/config.yaml" -q init
log "syncing the fixture into the pool (once)"
as_user "$CHANTAL" --config "$W/config.yaml" -q repo sync --repo-id fs50k

PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT
"$CHANTAL_FS" --config "$W/config.yaml" "$W/mnt-root" 2>"$W/fs-root.log" &
PIDS+=($!)
as_user "$CHANTAL_FS" --config "$W/config.yaml" --no-allow-other "$W/mnt-user" 2>"$W/fs-user.log" &
# The daemon itself, not runuser: runuser does not pass SIGTERM on to it.
for _ in $(seq 1 50); do
    child=$(pgrep -P $! || true)
    [ -n "$child" ] && break
    sleep 0.1
done
PIDS+=(${child:-$!})
for m in root user; do
    for _ in $(seq 1 100); do
        as_user test -e "$W/mnt-$m/fs50k/latest/repodata/repomd.xml" && break
        sleep 0.1
    done
done
(cd "$UP/Packages" && ls | grep '^small-') > "$W/small.list"
# Copied beside the pool: the unprivileged reader may not see into the checkout.
cp "$ROOT/contrib/bench/readall.py" "$W/readall.py"
cat > "$W/readbig.py" <<'PY'
import os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
t = time.perf_counter(); n = 0
while True:
    b = os.read(fd, 1 << 20)
    if not b:
        break
    n += len(b)
print(f"{n / 1e6 / (time.perf_counter() - t):.0f}")
PY
chmod 644 "$W"/*.py "$W/small.list"
RESULTS=$(mktemp)
record() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >> "$RESULTS"; printf '  %-24s %-36s %s\n' "$1" "$2" "$3" >&2; }
for round in $(seq 1 "$ROUNDS"); do
    log "round $round/$ROUNDS"
    for m in root user; do
        d="$W/mnt-$m/fs50k/latest/Packages"
        label=$([ "$m" = root ] && echo "as root (passthrough)" || echo "as $USER_ (no passthrough)")
        as_user python3 "$W/readbig.py" "$d/huge-1.0-1.noarch.rpm" >/dev/null
        record "$label" "read 1 GiB, warm (MB/s)" "$(as_user python3 "$W/readbig.py" "$d/huge-1.0-1.noarch.rpm")"
        record "$label" "open+read 50,000 x 4 KiB, warm (s)" "$(as_user python3 "$W/readall.py" "$d" "$W/small.list")"
    done
done
echo "median of $ROUNDS rounds"
bench_table "$RESULTS" "as root (passthrough)" "as $USER_ (no passthrough)"
grep -h 'passthrough' "$W"/fs-*.log | sort | uniq -c | head -5 || true
rm -f "$RESULTS"
