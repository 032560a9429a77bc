#!/usr/bin/env bash
# Cold reads through a mount at a given concurrency: drops the kernel's caches, then opens and
# reads each file named in LIST (one name per line, relative to DIR) with READERS readers at
# once (`cat`, 250 names each), and prints the files per second and the machine's CPU over the
# run: busy, idle and iowait, in ticks of both CPUs. serve-bench's cold case goes through two
# nginx workers, about two opens at a time; this shows what more readers get, e.g. through
# chantal-fs against the native tree of the same files (serve-bench leaves both, and a
# catalogue to mount, under $BENCH_DIR/work-serve).
# Usage: contrib/bench/cold-read.sh DIR LIST [READERS]   (as root: it writes drop_caches)
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 DIR LIST [READERS]" >&2; exit 2; }
DIR=$1 LIST=$(realpath "$2") READERS=${3:-16}
[ "$(id -u)" -eq 0 ] || { echo "run as root (drop_caches)" >&2; exit 1; }
cd "$DIR"
files=$(wc -l < "$LIST")
sync
echo 3 > /proc/sys/vm/drop_caches
read -r _ u n s i w q sq st _ < /proc/stat
start=$(date +%s.%N)
xargs -a "$LIST" -P "$READERS" -n 250 cat > /dev/null
end=$(date +%s.%N)
read -r _ u2 n2 s2 i2 w2 q2 sq2 st2 _ < /proc/stat
awk -v a="$start" -v b="$end" -v f="$files" -v r="$READERS" \
    'BEGIN { printf "%d files, %d readers: %.2f s, %.0f files/s\n", f, r, b - a, f / (b - a) }'
echo "CPU ticks: busy $(( (u2 + n2 + s2 + q2 + sq2 + st2) - (u + n + s + q + sq + st) )), idle $((i2 - i)), iowait $((w2 - w))"
