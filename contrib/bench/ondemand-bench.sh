#!/usr/bin/env bash
# On-demand serving benchmark: one 128 MiB package behind nginx (the upstream, 127.0.0.1), and a
# chantal mirror of it with `download.policy: on_demand` (chantal fetchd, chantal-fs, and nginx
# with the shipped site in front), each figure the time `curl` takes to GET the package:
#   direct     from the upstream nginx itself
#   first      through the mirror, on-demand: the first read, fetched while it streams
#   second     through the mirror again: from the pool
#   immediate  through the mirror, the same package synced with `policy: immediate`
# Every round starts from an empty storage, with the page cache dropped before `direct` and
# `first` (the upstream's file is read from disk in both). Median MB/s over ROUNDS (default 5).
# Usage: contrib/bench/ondemand-bench.sh [ROUNDS]   (env: BENCH_DIR)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/contrib/lib/deps.sh"
. "$ROOT/contrib/bench/lib.sh"
ROUNDS=${1:-5}
W="$BENCH_DIR/work-ondemand"
UP=18181
MIRROR=18182

ensure_deps nginx fusermount3 curl
[ "$(id -u)" -eq 0 ] || die "run as root (drop_caches, mounting)"
bench_build
mkdir -p "$W"

# The upstream: one package of random bytes, and its repodata (sha256, as RHEL and EPEL list).
if [ ! -f "$W/up/repodata/repomd.xml" ]; then
    log "making the 128 MiB upstream package"
    mkdir -p "$W/up/Packages"
    head -c $((128 << 20)) /dev/urandom > "$W/up/Packages/big-1.0-1.noarch.rpm"
    python3 - "$W/up" <<'PY'
import gzip, hashlib, os, sys
out = sys.argv[1]
pkg = os.path.join(out, "Packages/big-1.0-1.noarch.rpm")
h = hashlib.sha256()
with open(pkg, "rb") as f:
    for b in iter(lambda: f.read(1 << 20), b""):
        h.update(b)
size = os.path.getsize(pkg)
docs = {
    "primary": f'<?xml version="1.0" encoding="UTF-8"?>\n<metadata xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="1">\n<package type="rpm"><name>big</name><arch>noarch</arch><version epoch="0" ver="1.0" rel="1"/><checksum type="sha256" pkgid="YES">{h.hexdigest()}</checksum><summary>big</summary><description>big</description><packager></packager><url></url><time file="1700000000" build="1700000000"/><size package="{size}" installed="{size}" archive="{size}"/><location href="Packages/big-1.0-1.noarch.rpm"/><format><rpm:license>MIT</rpm:license></format></package>\n</metadata>\n',
    "filelists": f'<?xml version="1.0" encoding="UTF-8"?>\n<filelists xmlns="http://linux.duke.edu/metadata/filelists" packages="1">\n<package pkgid="{h.hexdigest()}" name="big" arch="noarch"><version epoch="0" ver="1.0" rel="1"/></package>\n</filelists>\n',
    "other": f'<?xml version="1.0" encoding="UTF-8"?>\n<otherdata xmlns="http://linux.duke.edu/metadata/other" packages="1">\n<package pkgid="{h.hexdigest()}" name="big" arch="noarch"><version epoch="0" ver="1.0" rel="1"/></package>\n</otherdata>\n',
}
os.makedirs(os.path.join(out, "repodata"), exist_ok=True)
data = ""
for kind, text in docs.items():
    raw = text.encode()
    gz = gzip.compress(raw)
    s = hashlib.sha256(gz).hexdigest()
    name = f"repodata/{s}-{kind}.xml.gz"
    open(os.path.join(out, name), "wb").write(gz)
    data += f'  <data type="{kind}">\n    <checksum type="sha256">{s}</checksum>\n    <open-checksum type="sha256">{hashlib.sha256(raw).hexdigest()}</open-checksum>\n    <location href="{name}"/>\n    <timestamp>1700000000</timestamp>\n    <size>{len(gz)}</size>\n    <open-size>{len(raw)}</open-size>\n  </data>\n'
open(os.path.join(out, "repodata/repomd.xml"), "w").write(
    f'<?xml version="1.0" encoding="UTF-8"?>\n<repomd xmlns="http://linux.duke.edu/metadata/repo">\n  <revision>1</revision>\n{data}</repomd>\n')
PY
fi

FS_PID=
FETCHD_PID=
stop_all() {
    [ -n "$FETCHD_PID" ] && kill "$FETCHD_PID" 2>/dev/null && wait "$FETCHD_PID" 2>/dev/null || true
    if [ -n "$FS_PID" ]; then
        kill "$FS_PID" 2>/dev/null || true
        wait "$FS_PID" 2>/dev/null || true
    fi
    mountpoint -q "$W/mnt" 2>/dev/null && umount -l "$W/mnt" || true
    FS_PID= FETCHD_PID=
}
trap 'stop_all; bench_stop' EXIT
bench_shipped_nginx "$UP=$W/up" "$MIRROR=$W/mnt"

RESULTS="$W/results.tsv"
: > "$RESULTS"
get() {  # FIGURE URL: records the MB/s of one GET
    local secs mbs
    secs=$(curl -sS -o /dev/null -w '%{time_total}' "$2")
    mbs=$(python3 -c "print(f'{134.217728 / $secs:.1f}')")
    printf 'mirror\t%s\t%s\n' "$1" "$mbs" >> "$RESULTS"
    printf '  %-10s %6.3f s  %7s MB/s\n' "$1" "$secs" "$mbs" >&2
}
for round in $(seq 1 "$ROUNDS"); do
    log "round $round of $ROUNDS"
    stop_all
    rm -rf "$W/storage" "$W/conf.d"
    mkdir -p "$W/conf.d" "$W/mnt"
    cat > "$W/config.yaml" <<YAML
include: conf.d/*.yaml
storage: {base_path: $W/storage}
YAML
    printf 'name: od\nupstream:\n  url: http://127.0.0.1:%s/\ndownload:\n  policy: on_demand\n' "$UP" > "$W/conf.d/od.yaml"
    printf 'name: im\nupstream:\n  url: http://127.0.0.1:%s/\n' "$UP" > "$W/conf.d/im.yaml"
    export CHANTAL_CONFIG="$W/config.yaml"
    "$CHANTAL" -q init
    "$CHANTAL" -q repo sync --repo-id od
    "$CHANTAL_FS" "$W/mnt" 2>"$W/fs.log" &
    FS_PID=$!
    "$CHANTAL" fetchd 2>"$W/fetchd.log" &
    FETCHD_PID=$!
    for _ in $(seq 1 100); do
        [ -S "$W/storage/run/fetchd.sock" ] && [ -f "$W/mnt/od/latest/repodata/repomd.xml" ] && break
        sleep 0.1
    done
    sync; echo 3 > /proc/sys/vm/drop_caches
    get direct "http://127.0.0.1:$UP/Packages/big-1.0-1.noarch.rpm"
    sync; echo 3 > /proc/sys/vm/drop_caches
    get first "http://127.0.0.1:$MIRROR/od/latest/Packages/big-1.0-1.noarch.rpm"
    get second "http://127.0.0.1:$MIRROR/od/latest/Packages/big-1.0-1.noarch.rpm"
    # The same file, synced at once by a repository with the default policy (it is in the
    # pool already: the sync only names it).
    "$CHANTAL" -q repo sync --repo-id im
    for _ in $(seq 1 100); do [ -f "$W/mnt/im/latest/repodata/repomd.xml" ] && break; sleep 0.1; done
    get immediate "http://127.0.0.1:$MIRROR/im/latest/Packages/big-1.0-1.noarch.rpm"
done
stop_all
echo
echo "median of $ROUNDS rounds, MB/s of one GET of the 128 MiB package (first / direct is the target's ratio)"
bench_table "$RESULTS" mirror
