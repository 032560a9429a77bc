#!/usr/bin/env bash
# chantal-fs benchmark (issue: chantal-fs), side by side in one run on the same files:
#   native  the upstream directory itself (ext4/xfs, the page cache warm)
#   bindfs  bindfs -r over that directory (the generic FUSE baseline)
#   chantal chantal-fs serving the same packages synced into the pool (<repo>/latest/)
# Figures: nginx -> curl of a 1 GiB package; `ls -l` of a 50,001-entry Packages/; open+read of
# 50,000 small (4 KiB) packages; first lookup in a 100,000-package version after a fresh mount;
# chantal-fs's RSS before and after that version's tree is built (and CS9 AppStream's, 17,649).
# Usage: contrib/bench/fs-bench.sh [ROUNDS]   (env: BENCH_DIR)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/contrib/lib/deps.sh"
. "$ROOT/contrib/bench/lib.sh"
ROUNDS=${1:-5}
export BENCH_DIR=${BENCH_DIR:-/var/tmp/chantal-bench}
W="$BENCH_DIR/work-fs"
PORT=18082
CS9="$ROOT/../shared/fixtures/cs9/appstream/repodata/c03bb2ebc33bbee3046da091b45d90717273a43d3641a9d84e6eede05637bc8a-primary.xml.gz"

[ "$(id -u)" -eq 0 ] || die "run as root (FUSE mounts with allow_other, nginx reading them)"
ensure_deps postgresql runuser createrepo_c rpmbuild nginx bindfs curl fusermount3
"$ROOT/contrib/bench/build-fixtures.sh" >/dev/null
UP="$BENCH_DIR/fs50k"
(cd "$ROOT" && cargo build --release --quiet --bins --examples)
CHANTAL="$ROOT/target/release/chantal"
CHANTAL_FS="$ROOT/target/release/chantal-fs"

FS_PID=
cleanup() {
    if [ -n "$FS_PID" ]; then kill "$FS_PID" 2>/dev/null && wait "$FS_PID" 2>/dev/null; fi
    if mountpoint -q "$W/bindfs"; then umount "$W/bindfs"; fi
    bench_stop
}
for m in "$W/mnt" "$W/bindfs"; do if mountpoint -q "$m"; then umount -l "$m"; fi; done
rm -rf "$W"
bench_pg_start
mkdir -p "$W/mnt" "$W/bindfs" "$W/www"
trap cleanup EXIT
psql -q "host=$W user=chantal dbname=postgres" -c "CREATE DATABASE fs"
DB="host=$W user=chantal dbname=fs"

log "catalogue: repositories big (100,000 packages) and cs9 (17,649), rows only"
"$ROOT/target/release/examples/bench_versions" "$DB" "$W/storage" "$CS9" > "$W/prepare.out"
mkdir -p "$W/chantal/conf.d"
cat > "$W/chantal/config.yaml" <<YAML
include: conf.d/*.yaml
storage: {base_path: $W/storage}
database: {url: "$DB"}
YAML
for r in cs9 big; do printf 'name: %s\nupstream:\n  url: file:///nonexistent/%s\n' "$r" "$r" > "$W/chantal/conf.d/$r.yaml"; done
printf 'name: fs50k\nupstream:\n  url: file://%s\n' "$UP" > "$W/chantal/conf.d/fs50k.yaml"
export CHANTAL_CONFIG="$W/chantal/config.yaml"
log "syncing fs50k (50,001 packages, 1.2 GiB) into the pool"
"$CHANTAL" -q repo sync --repo-id fs50k

start_fs() {
    "$CHANTAL_FS" "$W/mnt" 2>>"$W/chantal-fs.log" &
    FS_PID=$!
    local i
    for i in $(seq 1 200); do [ -d "$W/mnt/fs50k/latest" ] && return 0; sleep 0.05; done
    die "chantal-fs did not come up (see $W/chantal-fs.log)"
}
stop_fs() { kill "$FS_PID"; wait "$FS_PID" || true; FS_PID=; }
rss_mb() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$FS_PID/status"; }

start_fs
bindfs -r "$UP" "$W/bindfs"
ln -s "$UP" "$W/www/native"
ln -s "$W/bindfs" "$W/www/bindfs"
ln -s "$W/mnt/fs50k/latest" "$W/www/chantal"
bench_nginx_start "$PORT" "$W/www"

(cd "$UP/Packages" && ls | grep '^small-') > "$W/small.list"
# Plain open/read/close, as nginx or dnf do (Python's open() would add an isatty ioctl).
cat > "$W/readall.py" <<'PY'
import os, sys, time
d, names = sys.argv[1], open(sys.argv[2]).read().split()
t = time.perf_counter()
for n in names:
    fd = os.open(os.path.join(d, n), os.O_RDONLY)
    while os.read(fd, 65536):
        pass
    os.close(fd)
print(f"{time.perf_counter() - t:.3f}")
PY
secs() { local s e; s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N); awk -v s="$s" -v e="$e" 'BEGIN { printf "%.3f", (e - s) / 1e9 }'; }
dir_of() { case $1 in native) echo "$UP" ;; bindfs) echo "$W/bindfs" ;; chantal) echo "$W/mnt/fs50k/latest" ;; esac; }

RESULTS="$W/results.tsv"; : > "$RESULTS"
record() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >> "$RESULTS"; printf '  %-8s %-34s %s\n' "$1" "$2" "$3" >&2; }

log "warming the page cache (every file read once through each path)"
for t in native bindfs chantal; do
    curl -s -o /dev/null "http://127.0.0.1:$PORT/$t/Packages/huge-1.0-1.noarch.rpm"
    python3 "$W/readall.py" "$(dir_of $t)/Packages" "$W/small.list" >/dev/null
done

# Dentries and inodes (not the page cache) are dropped before a "cold" figure, for all three
# alike: the file system is asked for every name again. (This drops them machine-wide.)
drop_dentries() { sync; echo 2 > /proc/sys/vm/drop_caches; }
for round in $(seq 1 "$ROUNDS"); do
    log "round $round/$ROUNDS"
    for t in native bindfs chantal; do
        d=$(dir_of "$t")
        # The second of two downloads: the page cache holds the file for all three alike.
        curl -s -o /dev/null "http://127.0.0.1:$PORT/$t/Packages/huge-1.0-1.noarch.rpm"
        speed=$(curl -s -o /dev/null -w '%{speed_download}' "http://127.0.0.1:$PORT/$t/Packages/huge-1.0-1.noarch.rpm")
        record "$t" "nginx->curl 1 GiB (MB/s)" "$(awk -v b="$speed" 'BEGIN { printf "%d", b / 1e6 }')"
        drop_dentries
        record "$t" "ls -l 50,001 entries, cold (s)" "$(secs ls -l --color=never "$d/Packages")"
        drop_dentries
        record "$t" "open+read 50,000 x 4 KiB, cold (s)" "$(python3 "$W/readall.py" "$d/Packages" "$W/small.list")"
        record "$t" "open+read 50,000 x 4 KiB, again (s)" "$(python3 "$W/readall.py" "$d/Packages" "$W/small.list")"
    done
    # A fresh daemon: the first lookup in a 100,000-package version builds its tree.
    stop_fs; start_fs
    before=$(rss_mb)
    first=$(python3 -c 'import os, sys, time
t = time.perf_counter(); os.stat(sys.argv[1]); print(f"{time.perf_counter() - t:.3f}")' "$W/mnt/big/latest/Packages")
    record chantal "first lookup, 100,000 pkgs (s)" "$first"
    record chantal "RSS after mount (MB)" "$before"
    record chantal "RSS + 100,000-pkg tree (MB)" "$(rss_mb)"
    ls "$W/mnt/cs9/latest" >/dev/null
    record chantal "RSS + CS9 17,649-pkg tree (MB)" "$(rss_mb)"
done

echo
echo "kernel $(uname -r); chantal-fs $(grep -o 'reads: .*' "$W/chantal-fs.log" | tail -1)"
echo "median of $ROUNDS rounds"
python3 - "$RESULTS" <<'PYSUM'
import sys, statistics, collections
rows = collections.defaultdict(dict)
order = []
for line in open(sys.argv[1]):
    tool, case, v = line.rstrip("\n").split("\t")
    if case not in order:
        order.append(case)
    rows[case].setdefault(tool, []).append(float(v))
print("| figure | native | bindfs | chantal-fs |")
print("|---|---|---|---|")
for case in order:
    cells = []
    for tool in ("native", "bindfs", "chantal"):
        v = rows[case].get(tool)
        cells.append(f"{statistics.median(v):g}" if v else "-")
    print(f"| {case} | " + " | ".join(cells) + " |")
PYSUM
