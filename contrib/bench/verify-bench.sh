#!/usr/bin/env bash
# pool verify benchmark: `chantal pool verify` against the disk's read rate (cat to /dev/null)
# and against sha256sum (one process, and one per core), over the same pool files: the bench
# fixture's 8 x 128 MiB and 3,000 small packages, synced once into a SQLite catalogue.
# Each figure cold (page cache dropped: needs root) and warm; median of ROUNDS rounds, MB/s.
# Usage: contrib/bench/verify-bench.sh [ROUNDS]   (env: BENCH_DIR)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/contrib/lib/deps.sh"
. "$ROOT/contrib/bench/lib.sh"
ROUNDS=${1:-3}
W="$BENCH_DIR/work-verify"

ensure_deps createrepo_c rpmbuild
bench_build
mkdir -p "$W"
cat > "$W/config.yaml" <<CONF
storage:
  base_path: $W/store
include: $W/conf.d/*.yaml
CONF
mkdir -p "$W/conf.d"
printf 'name: bulk\nupstream:\n  url: file://%s/bulk\n' "$BENCH_DIR" > "$W/conf.d/bulk.yaml"
printf 'name: small\nupstream:\n  url: file://%s/small\n' "$BENCH_DIR" > "$W/conf.d/small.yaml"
C=("$CHANTAL" --config "$W/config.yaml" -q)
"${C[@]}" init >/dev/null
"${C[@]}" repo sync --all >/dev/null
FILES="$W/files"
find "$W/store/data/sha256" -type f -print0 > "$FILES"
BYTES=$(find "$W/store/data/sha256" -type f -printf '%s\n' | awk '{s += $1} END {print s}')
NFILES=$(tr -cd '\0' < "$FILES" | wc -c)
log "$NFILES pool files, $((BYTES / 1048576)) MiB"

cold() {
    if [ "$(id -u)" -eq 0 ]; then sync; echo 3 > /proc/sys/vm/drop_caches; fi
}
RESULTS=$(mktemp)
# run TOOL FIGURE CMD...: MB/s of CMD over the pool files.
run() {
    local tool=$1 figure=$2; shift 2
    local start end
    start=$(date +%s.%N)
    "$@" >/dev/null 2>&1 || true
    end=$(date +%s.%N)
    python3 -c "import sys; print(f'{sys.argv[1]}\t{sys.argv[2]}\t{int(sys.argv[3]) / 1e6 / (float(sys.argv[5]) - float(sys.argv[4])):.0f}')" \
        "$tool" "$figure" "$BYTES" "$start" "$end" >> "$RESULTS"
    tail -n 1 "$RESULTS" >&2
}
NPROC=$(nproc)
for round in $(seq 1 "$ROUNDS"); do
    log "round $round of $ROUNDS"
    cold; run "cat" "cold MB/s" sh -c "xargs -0 cat < '$FILES'"
    cold; run "sha256sum" "cold MB/s" sh -c "xargs -0 sha256sum < '$FILES'"
    cold; run "sha256sum -P$NPROC" "cold MB/s" sh -c "xargs -0 -P $NPROC -n 64 sha256sum < '$FILES'"
    cold; run "chantal pool verify" "cold MB/s" "${C[@]}" pool verify
    run "cat" "warm MB/s" sh -c "xargs -0 cat < '$FILES'"
    run "sha256sum" "warm MB/s" sh -c "xargs -0 sha256sum < '$FILES'"
    run "sha256sum -P$NPROC" "warm MB/s" sh -c "xargs -0 -P $NPROC -n 64 sha256sum < '$FILES'"
    run "chantal pool verify" "warm MB/s" "${C[@]}" pool verify
done
echo "median of $ROUNDS rounds; $NFILES files, $((BYTES / 1048576)) MiB; higher is better"
# bench_table takes rows tool, figure, value.
bench_table "$RESULTS" "cat" "sha256sum" "sha256sum -P$NPROC" "chantal pool verify"
/usr/bin/time -f "chantal pool verify (warm): %e s, peak RSS %M KB" "${C[@]}" pool verify
rm -f "$RESULTS"
