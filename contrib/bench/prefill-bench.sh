#!/usr/bin/env bash
# Prefilling a new latest/ (issue 29): what a reader's first open of each file costs right after
# latest moves, with chantal-fs giving the kernel the new tree's entries first (the default)
# and without (--prefill-entries 0), and how much kernel memory the prefilled entries hold.
# The repository is fs50k (50,001 packages of 4 KiB); latest moves between two versions (one
# package, the 1 GiB one, filtered out, then back) once per round. Both daemons serve the same
# catalogue; the pool's files are in the page cache throughout (read once before), so the figure is the
# requests, not the disk. Per round and daemon: open+read of the 50,000 small files through
# latest/ (contrib/bench/readall.py), the kernel memory the prefilled entries hold (FUSE
# inodes and dentries made, from /proc/slabinfo; the unused entries of the previous version are
# dropped first with `echo 2 > drop_caches`), and the daemon's log line for the prefill.
# Usage: contrib/bench/prefill-bench.sh [ROUNDS]   (env: BENCH_DIR, BACKENDS)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/contrib/lib/deps.sh"
. "$ROOT/contrib/bench/lib.sh"
ROUNDS=${1:-3}
W="$BENCH_DIR/work-prefill"

[ "$(id -u)" -eq 0 ] || die "run as root (dropping the kernel's caches)"
ensure_deps postgresql runuser createrepo_c rpmbuild fusermount3
bench_build
UP="$BENCH_DIR/fs50k"

declare -A FS_PID=()
cleanup() {
    local m
    for m in "${!FS_PID[@]}"; do kill "${FS_PID[$m]}" 2>/dev/null && wait "${FS_PID[$m]}" 2>/dev/null; done
    bench_stop
}
for m in "$W"/mnt-*; do if mountpoint -q "$m"; then umount -l "$m"; fi; done
rm -rf "$W"
bench_pg_start
trap cleanup EXIT

# slab_kb: the kernel's slab memory (kB), all caches. It also grows with what the sync itself
# touches (the pool's and the catalogue's entries), so the prefill's own cost is counted apart:
# fuse_objects prints the FUSE inodes in use (only FUSE mounts make them, and the plain
# daemon's were dropped) and the bytes of one FUSE inode plus one dentry, what each prefilled
# entry holds (names longer than 40 bytes add a small allocation of their own).
slab_kb() { awk '/^Slab:/ {print $2}' /proc/meminfo; }
fuse_objects() {
    awk '$1 == "fuse_inode" { n = $2; fi = $4 } $1 == "dentry" { d = $4 } END { print n, fi + d }' /proc/slabinfo
}
RESULTS="$W/results.tsv"; : > "$RESULTS"
record() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >> "$RESULTS"; printf '  %-22s %-34s %s\n' "$1" "$2" "$3" >&2; }
(cd "$UP/Packages" && ls | grep '^small-' | sed 's|^|Packages/|') > "$W/list"

for b in $BACKENDS; do
    DB=$(bench_db "$b" prefill)
    C="$W/$b"
    mkdir -p "$C/conf.d" "$W/mnt-$b-prefill" "$W/mnt-$b-plain"
    printf 'include: conf.d/*.yaml\nstorage: {base_path: %s}\ndatabase: {url: "%s"}\n' "$W/storage" "$DB" > "$C/config.yaml"
    repo_yaml() { # FILTERED (0/1)
        printf 'name: fs50k\nupstream:\n  url: file://%s\n' "$UP" > "$C/conf.d/fs50k.yaml"
        if [ "$1" = 1 ]; then printf 'filters:\n  exclude: ["huge"]\n' >> "$C/conf.d/fs50k.yaml"; fi
    }
    repo_yaml 0
    CHANTAL_CONFIG="$C/config.yaml" "$CHANTAL" -q init
    log "syncing fs50k into the pool, catalogue on $b"
    CHANTAL_CONFIG="$C/config.yaml" "$CHANTAL" -q repo sync --repo-id fs50k
    for kind in prefill plain; do
        args=()
        [ "$kind" = plain ] && args=(--prefill-entries 0)
        CHANTAL_CONFIG="$C/config.yaml" "$CHANTAL_FS" "${args[@]}" "$W/mnt-$b-$kind" 2> "$W/fs-$b-$kind.log" &
        FS_PID[$b-$kind]=$!
    done
    for kind in prefill plain; do
        for _ in $(seq 1 200); do [ -f "$W/mnt-$b-$kind/fs50k/latest/repodata/repomd.xml" ] && break; sleep 0.05; done
        [ -f "$W/mnt-$b-$kind/fs50k/latest/repodata/repomd.xml" ] || die "chantal-fs did not come up (see $W/fs-$b-$kind.log)"
        # The pool's files into the page cache (and latest/ shown, so that its move is told).
        python3 "$ROOT/contrib/bench/readall.py" "$W/mnt-$b-$kind/fs50k/latest" "$W/list" > /dev/null
    done
    filtered=0
    for round in $(seq 1 "$ROUNDS"); do
        log "round $round/$ROUNDS ($b)"
        filtered=$((1 - filtered))
        repo_yaml "$filtered"
        sync; echo 2 > /proc/sys/vm/drop_caches
        # A client's fetch of repomd.xml: the daemons prefill only a latest/ read since the
        # last move (the prefill's own listing does not count).
        for kind in prefill plain; do cat "$W/mnt-$b-$kind/fs50k/latest/repodata/repomd.xml" > /dev/null; done
        before=$(slab_kb)
        read -r fuse_before _ < <(fuse_objects)
        n=$(grep -c 'prefilled ' "$W/fs-$b-prefill.log" || true)
        CHANTAL_CONFIG="$C/config.yaml" "$CHANTAL" -q repo sync --repo-id fs50k
        for _ in $(seq 1 600); do
            [ "$(grep -c 'prefilled ' "$W/fs-$b-prefill.log" || true)" -gt "$n" ] && break
            sleep 0.05
        done
        [ "$(grep -c 'prefilled ' "$W/fs-$b-prefill.log" || true)" -gt "$n" ] ||
            die "no prefill after latest moved (see $W/fs-$b-prefill.log)"
        line=$(grep 'prefilled ' "$W/fs-$b-prefill.log" | tail -1)
        entries=$(sed -n 's/.*prefilled \([0-9]*\) entries.*/\1/p' <<<"$line")
        secs=$(sed -n 's/.* in \([0-9.]*\) s.*/\1/p' <<<"$line")
        after=$(slab_kb)
        read -r fuse_after per_entry < <(fuse_objects)
        record "chantal-$b" "prefill: entries" "$entries"
        record "chantal-$b" "prefill: seconds" "$secs"
        record "chantal-$b" "prefill: FUSE inodes made" "$((fuse_after - fuse_before))"
        record "chantal-$b" "prefill: inode+dentry MB per 100,000" \
            "$(awk -v n="$((fuse_after - fuse_before))" -v e="$entries" -v b="$per_entry" 'BEGIN { printf "%.1f", n * b / 1e6 * 100000 / e }')"
        record "chantal-$b" "sync+prefill: Slab MB per 100,000" \
            "$(awk -v a="$after" -v b="$before" -v n="$entries" 'BEGIN { printf "%.1f", (a - b) * 1024 / 1e6 * 100000 / n }')"
        # Then each daemon's first reads of the new latest/, in alternating order.
        order="prefill plain"; [ $((round % 2)) = 0 ] && order="plain prefill"
        for kind in $order; do
            for _ in $(seq 1 200); do
                grep -q "latest is now version $((round + 1))" "$W/fs-$b-$kind.log" && break; sleep 0.05
            done
            record "chantal-$b" "first open+read, $kind (s)" \
                "$(python3 "$ROOT/contrib/bench/readall.py" "$W/mnt-$b-$kind/fs50k/latest" "$W/list")"
        done
    done
done

echo
echo "kernel $(uname -r)"; python3 "$ROOT/contrib/bench/wakeup.py" | sed "s/^/machine: /"
echo "median of $ROUNDS rounds"
python3 - "$RESULTS" <<'PY'
import sys, statistics, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    tool, case, v = line.rstrip("\n").split("\t")
    rows[(tool, case)].append(float(v))
for (tool, case), v in rows.items():
    print(f"{tool:22} {case:38} {statistics.median(v):10.3f}   ({', '.join(f'{x:g}' for x in v)})")
for tool in sorted({t for t, _ in rows}):
    p, q = rows.get((tool, "first open+read, prefill (s)")), rows.get((tool, "first open+read, plain (s)"))
    if p and q:
        print(f"prefill: {tool} first reads {statistics.median(p):.2f} s against {statistics.median(q):.2f} s "
              f"({statistics.median(q) / statistics.median(p):.2f}x), "
              f"{statistics.median(rows[(tool, 'prefill: inode+dentry MB per 100,000')]):.0f} MB of kernel objects per 100,000 entries")
PY
