#!/usr/bin/env bash
# chantal-fs benchmark (issue: chantal-fs), side by side in one run on the same files:
#   native  the upstream directory itself (ext4/xfs, the page cache warm)
#   bindfs  bindfs -r over that directory (the generic FUSE baseline)
#   chantal chantal-fs serving the same packages synced into the pool (<repo>/latest/)
# Figures: nginx -> curl of a 1 GiB package; `ls -l` of a 50,001-entry Packages/ (cold, then at
# once again with the kernel's caches warm); open+read of
# 50,000 small (4 KiB) packages; first lookup in a 100,000-package version after a fresh mount;
# chantal-fs's RSS before and after that version's tree is built (and CS9 AppStream's, 17,649);
# and the machine's cross-CPU wake-up time (contrib/bench/wakeup.py), which sets the cost of
# every FUSE request.
# chantal-fs runs once per catalogue backend in $BACKENDS (default "postgresql sqlite"), the
# two catalogues recording the same pool.
# Usage: contrib/bench/fs-bench.sh [ROUNDS]   (env: BENCH_DIR, BACKENDS, and FS_ARGS: more
# chantal-fs arguments, e.g. FS_ARGS="--threads 2")
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/contrib/lib/deps.sh"
. "$ROOT/contrib/bench/lib.sh"
ROUNDS=${1:-5}
W="$BENCH_DIR/work-fs"
PORT=18082

[ "$(id -u)" -eq 0 ] || die "run as root (FUSE mounts with allow_other, nginx reading them)"
ensure_deps postgresql runuser createrepo_c rpmbuild nginx bindfs curl fusermount3
bench_build
UP="$BENCH_DIR/fs50k"

declare -A FS_PID=()
cleanup() {
    local b
    for b in "${!FS_PID[@]}"; do
        kill "${FS_PID[$b]}" 2>/dev/null && wait "${FS_PID[$b]}" 2>/dev/null
    done
    if mountpoint -q "$W/bindfs"; then umount "$W/bindfs"; fi
    bench_stop
}
for m in "$W"/mnt-* "$W/bindfs"; do if mountpoint -q "$m"; then umount -l "$m"; fi; done
rm -rf "$W"
bench_pg_start
mkdir -p "$W/bindfs" "$W/www"
trap cleanup EXIT

# One catalogue per backend, all on the one pool in $W/storage.
for b in $BACKENDS; do
    DB=$(bench_db "$b" fs)
    log "catalogue on $b: repositories big (100,000 packages) and cs9 (17,649), rows only"
    mkdir -p "$W/$b/conf.d" "$W/mnt-$b"
    "$ROOT/target/release/examples/bench_versions" "$DB" "$W/storage" "$CS9" > "$W/$b/prepare.out"
    cat > "$W/$b/config.yaml" <<YAML
include: conf.d/*.yaml
storage: {base_path: $W/storage}
database: {url: "$DB"}
YAML
    for r in cs9 big; do printf 'name: %s\nupstream:\n  url: file:///nonexistent/%s\n' "$r" "$r" > "$W/$b/conf.d/$r.yaml"; done
    printf 'name: fs50k\nupstream:\n  url: file://%s\n' "$UP" > "$W/$b/conf.d/fs50k.yaml"
    log "syncing fs50k (50,001 packages, 1.2 GiB) into the pool, catalogue on $b"
    CHANTAL_CONFIG="$W/$b/config.yaml" "$CHANTAL" -q repo sync --repo-id fs50k
done

# start_fs BACKEND / stop_fs BACKEND / rss_mb BACKEND
start_fs() {
    # shellcheck disable=SC2086 # FS_ARGS is a list of words
    CHANTAL_CONFIG="$W/$1/config.yaml" "$CHANTAL_FS" ${FS_ARGS:-} "$W/mnt-$1" 2>>"$W/chantal-fs-$1.log" &
    FS_PID[$1]=$!
    local i
    for i in $(seq 1 200); do [ -d "$W/mnt-$1/fs50k/latest" ] && return 0; sleep 0.05; done
    die "chantal-fs did not come up (see $W/chantal-fs-$1.log)"
}
stop_fs() { kill "${FS_PID[$1]}"; wait "${FS_PID[$1]}" || true; unset "FS_PID[$1]"; }
rss_mb() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/${FS_PID[$1]}/status"; }

TOOLS="native bindfs"
for b in $BACKENDS; do
    start_fs "$b"
    ln -s "$W/mnt-$b/fs50k/latest" "$W/www/chantal-$b"
    TOOLS="$TOOLS chantal-$b"
done
bindfs -r "$UP" "$W/bindfs"
ln -s "$UP" "$W/www/native"
ln -s "$W/bindfs" "$W/www/bindfs"
bench_nginx_start "$PORT" "$W/www"

(cd "$UP/Packages" && ls | grep '^small-') > "$W/small.list"
cp "$ROOT/contrib/bench/readall.py" "$W/readall.py"
secs() { local s e; s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N); awk -v s="$s" -v e="$e" 'BEGIN { printf "%.3f", (e - s) / 1e9 }'; }
dir_of() { case $1 in native) echo "$UP" ;; bindfs) echo "$W/bindfs" ;; chantal-*) echo "$W/mnt-${1#chantal-}/fs50k/latest" ;; esac; }

# What one FUSE request costs depends on how fast one CPU wakes a task on another (a request
# is a wake-up each way); measured before the rounds, printed with the results.
python3 "$ROOT/contrib/bench/wakeup.py" > "$W/wakeup.txt"
RESULTS="$W/results.tsv"; : > "$RESULTS"
record() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >> "$RESULTS"; printf '  %-18s %-34s %s\n' "$1" "$2" "$3" >&2; }

log "warming the page cache (every file read once through each path)"
for t in $TOOLS; do
    curl -s -o /dev/null "http://127.0.0.1:$PORT/$t/Packages/huge-1.0-1.noarch.rpm"
    python3 "$W/readall.py" "$(dir_of $t)/Packages" "$W/small.list" >/dev/null
done

# Dentries and inodes (not the page cache) are dropped before a "cold" figure, for all three
# alike: the file system is asked for every name again. (This drops them machine-wide.)
drop_dentries() { sync; echo 2 > /proc/sys/vm/drop_caches; }
for round in $(seq 1 "$ROUNDS"); do
    log "round $round/$ROUNDS"
    for t in $TOOLS; do
        d=$(dir_of "$t")
        # The second of two downloads: the page cache holds the file for all three alike.
        curl -s -o /dev/null "http://127.0.0.1:$PORT/$t/Packages/huge-1.0-1.noarch.rpm"
        speed=$(curl -s -o /dev/null -w '%{speed_download}' "http://127.0.0.1:$PORT/$t/Packages/huge-1.0-1.noarch.rpm")
        record "$t" "nginx->curl 1 GiB (MB/s)" "$(awk -v b="$speed" 'BEGIN { printf "%d", b / 1e6 }')"
        drop_dentries
        record "$t" "ls -l 50,001 entries, cold (s)" "$(secs ls -l --color=never "$d/Packages")"
        record "$t" "ls -l 50,001 entries, again (s)" "$(secs ls -l --color=never "$d/Packages")"
        drop_dentries
        record "$t" "open+read 50,000 x 4 KiB, cold (s)" "$(python3 "$W/readall.py" "$d/Packages" "$W/small.list")"
        record "$t" "open+read 50,000 x 4 KiB, again (s)" "$(python3 "$W/readall.py" "$d/Packages" "$W/small.list")"
    done
    for b in $BACKENDS; do
        # A fresh daemon: the first lookup in a 100,000-package version builds its tree.
        stop_fs "$b"; start_fs "$b"
        before=$(rss_mb "$b")
        first=$(python3 -c 'import os, sys, time
t = time.perf_counter(); os.stat(sys.argv[1]); print(f"{time.perf_counter() - t:.3f}")' "$W/mnt-$b/big/latest/Packages")
        record "chantal-$b" "first lookup, 100,000 pkgs (s)" "$first"
        record "chantal-$b" "RSS after mount (MB)" "$before"
        record "chantal-$b" "RSS + 100,000-pkg tree (MB)" "$(rss_mb "$b")"
        ls "$W/mnt-$b/cs9/latest" >/dev/null
        record "chantal-$b" "RSS + CS9 17,649-pkg tree (MB)" "$(rss_mb "$b")"
    done
done

echo
echo "kernel $(uname -r); chantal-fs ${FS_ARGS:+$FS_ARGS; }$(cat "$W"/chantal-fs-*.log | grep -o '\<reads: .*' | tail -1)"
sed 's/^/machine: /' "$W/wakeup.txt"
echo "median of $ROUNDS rounds"
bench_table "$RESULTS" $TOOLS
