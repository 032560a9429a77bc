#!/usr/bin/env bash
# Bundle and verify-tree benchmark, each against the tools that bound it, same files, same run:
#   - `chantal bundle create` of the 3,000-package `small` repository (one snapshot) against
#     `cp -a` of the same pool files;
#   - `chantal bundle import` of that bundle into an empty catalogue against `cp -a` of the
#     bundle's blobs and `sha256sum` of them (import hashes every byte);
#   - `chantal verify-tree` of a 17,649-package tree (`v17k`: 17,648 x 32 KiB + 1 MiB) served
#     by the shipped nginx over chantal-fs on 127.0.0.1, against `sha256sum` of the same pool
#     files.
# On each backend of $BACKENDS (default both). Page cache dropped before each figure (root);
# median of ROUNDS rounds, MB/s (higher is better).
# Usage: contrib/bench/bundle-bench.sh [ROUNDS]   (env: BENCH_DIR, BACKENDS)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/contrib/lib/deps.sh"
. "$ROOT/contrib/bench/lib.sh"
ROUNDS=${1:-3}
W="$BENCH_DIR/work-bundle"
PORT=18231

ensure_deps createrepo_c rpmbuild nginx
bench_build
if [ ! -f "$BENCH_DIR/v17k/repodata/repomd.xml" ]; then
    log "writing the 17,649-package upstream v17k"
    rm -rf "$BENCH_DIR/v17k"
    python3 "$ROOT/contrib/bench/gen_files.py" "$BENCH_DIR/v17k" 17648 32768 1048576
fi
mkdir -p "$W" "$W/mnt"
FS_PID=
trap 'if [ -n "$FS_PID" ]; then kill "$FS_PID" 2>/dev/null || true; fi; bench_stop' EXIT
bench_pg_start

cold() { if [ "$(id -u)" -eq 0 ]; then sync; echo 3 > /proc/sys/vm/drop_caches; fi; }
RESULTS=$(mktemp)
# rate TOOL FIGURE BYTES CMD...: records MB/s of CMD over BYTES.
rate() {
    local tool=$1 figure=$2 bytes=$3; shift 3
    local start end
    start=$(date +%s.%N)
    if ! "$@" >"$W/last.out" 2>&1; then echo "FAILED: $tool $figure" >&2; tail -5 "$W/last.out" >&2; fi
    end=$(date +%s.%N)
    python3 -c "import sys; print(f'{sys.argv[1]}\t{sys.argv[2]}\t{int(sys.argv[3]) / 1e6 / (float(sys.argv[5]) - float(sys.argv[4])):.0f}')" \
        "$tool" "$figure" "$bytes" "$start" "$end" >> "$RESULTS"
    tail -n 1 "$RESULTS" >&2
}

for backend in $BACKENDS; do
    B="$W/$backend"
    rm -rf "$B"; mkdir -p "$B/conf.d" "$B/in-conf.d"
    for side in out in; do
        db=$(bench_db "$backend" "bundle_${side}")
        conf=conf.d; [ "$side" = in ] && conf=in-conf.d
        printf 'storage:\n  base_path: %s/store-%s\ndatabase:\n  url: "%s"\ninclude: %s/%s/*.yaml\n' \
            "$B" "$side" "$db" "$B" "$conf" > "$B/config-$side.yaml"
    done
    printf 'name: small\nupstream:\n  url: file://%s/small\n' "$BENCH_DIR" > "$B/conf.d/small.yaml"
    printf 'name: v17k\nupstream:\n  url: file://%s/v17k\n' "$BENCH_DIR" > "$B/conf.d/v17k.yaml"
    printf 'name: small\nenabled: false\nupstream:\n  url: http://127.0.0.1:9/\n' > "$B/in-conf.d/small.yaml"
    OUT=("$CHANTAL" --config "$B/config-out.yaml" -q)
    IN=("$CHANTAL" --config "$B/config-in.yaml" -q)
    "${OUT[@]}" init >/dev/null
    "${OUT[@]}" repo sync --all >/dev/null
    "${OUT[@]}" snapshot create --repo-id small --name jan >/dev/null
    # The pool files of small's snapshot: what a bundle carries.
    FILES="$B/small-files"
    "${OUT[@]}" bundle create --output "$B/probe" --snapshot jan --repo-id small >/dev/null
    find "$B/probe/blobs" -type f -print0 > "$FILES.bundle"
    (cd "$B/probe/blobs" && find . -type f -printf '%f\n') | while read -r sha; do
        ls "$B/store-out/data/sha256/${sha:0:2}/${sha:2:2}/${sha}"_* ; done | tr '\n' '\0' > "$FILES"
    BYTES=$(xargs -0 stat -c %s < "$FILES" | awk '{s += $1} END {print s}')
    NFILES=$(tr -cd '\0' < "$FILES" | wc -c)
    log "$backend: bundle of $NFILES files, $((BYTES / 1048576)) MiB"
    find "$B/store-out/data/sha256" -type f \( -name '*_small-*' -o -name '*_huge-*' \) -print0 > "$B/v17-files"
    V17_BYTES=$(xargs -0 stat -c %s < "$B/v17-files" | awk '{s += $1} END {print s}')
    "$CHANTAL_FS" --config "$B/config-out.yaml" "$W/mnt" >"$B/fs.log" 2>&1 &
    FS_PID=$!
    for _ in $(seq 100); do [ -f "$W/mnt/v17k/latest/.chantal/manifest.json" ] && break; sleep 0.1; done
    bench_shipped_nginx "$PORT=$W/mnt"
    for round in $(seq 1 "$ROUNDS"); do
        log "$backend: round $round of $ROUNDS"
        rm -rf "$B/cp" "$B/bundle" "$B/cp-in"
        cold; rate "cp -a" "$backend create MB/s" "$BYTES" sh -c "mkdir -p '$B/cp' && xargs -0 cp -a -t '$B/cp' < '$FILES'"
        cold; rate "chantal" "$backend create MB/s" "$BYTES" "${OUT[@]}" bundle create --output "$B/bundle" --snapshot jan --repo-id small
        cold; rate "cp -a" "$backend import MB/s" "$BYTES" cp -a "$B/bundle/blobs" "$B/cp-in"
        cold; rate "sha256sum" "$backend import MB/s" "$BYTES" sh -c "xargs -0 sha256sum < '$FILES.bundle'"
        rm -rf "$B/store-in"; db=$(bench_db "$backend" bundle_in)
        "${IN[@]}" init >/dev/null
        cold; rate "chantal" "$backend import MB/s" "$BYTES" "${IN[@]}" bundle import "$B/bundle"
        cold; rate "sha256sum" "$backend verify-tree MB/s" "$V17_BYTES" sh -c "xargs -0 sha256sum < '$B/v17-files'"
        cold; rate "chantal" "$backend verify-tree MB/s" "$V17_BYTES" "$CHANTAL" -q verify-tree "http://127.0.0.1:$PORT/v17k/latest/"
    done
    if [ -f "$W/nginx/nginx.pid" ]; then kill "$(cat "$W/nginx/nginx.pid")"; sleep 0.5; fi
    kill "$FS_PID"; wait "$FS_PID" || true
done
echo "median of $ROUNDS rounds; bundle: 3,000-package small repository; verify-tree: 17,649 files over nginx; MB/s, higher is better"
bench_table "$RESULTS" "cp -a" "sha256sum" "chantal"
rm -f "$RESULTS"
