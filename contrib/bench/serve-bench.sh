#!/usr/bin/env bash
# Serving benchmark (issue: serving at fleet scale): nginx, configured exactly as
# contrib/nginx/chantal.conf ships it (only `listen` and `root` differ), serving the same
# content side by side from (a) the native directory, (b) bindfs over it, (c) chantal-fs on
# each catalogue backend, (d) the hardlink export; load from wrk on 127.0.0.1:
#   fleet  64 connections, repeated GETs of a hot set: repomd.xml, the repodata files and
#          200 packages of 4-200 KiB (the monthly-update pattern)
#   cold   each of 50,000 small packages fetched once, after dropping the kernel's caches
#          (at most COLD_SECONDS, default 30: on a virtual disk the whole list takes minutes
#          per path; the rate is over what was fetched)
#   large  8 connections, 128 MiB packages
# Reports requests/s and MB/s per case, chantal-fs CPU seconds per 10,000 requests, the cold
# case's disk reads per request (the whole machine's, from the block device's counters), and
# the ratio to native. The last line is `serve: fleet R1 cold R2 large R3`: chantal-fs (SQLite) /
# native, requests/s (large: MB/s), two decimals.
# Before serving, it times `repo sync` of the large repository (8 x 128 MiB, file://) on each
# backend against `dd conv=fsync` of the same size to the same file system, in the same run.
# Usage: contrib/bench/serve-bench.sh [ROUNDS]
#   (env: BENCH_DIR, BACKENDS, CASES (default "fleet cold large"), ONLY (the paths to load,
#   default all), FS_ARGS (chantal-fs options), DURATION and COLD_SECONDS seconds)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/contrib/lib/deps.sh"
. "$ROOT/contrib/bench/lib.sh"
ROUNDS=${1:-3}
DURATION=${DURATION:-10}
COLD_SECONDS=${COLD_SECONDS:-30}
CASES=${CASES:-fleet cold large}
W="$BENCH_DIR/work-serve"
PORT0=18090

[ "$(id -u)" -eq 0 ] || die "run as root (FUSE mounts with allow_other, dropping caches)"
ensure_deps postgresql runuser createrepo_c rpmbuild nginx bindfs wrk fusermount3
bench_build

# The hot set's 200 packages, 4 to 200 KiB each (made once).
HOT="$BENCH_DIR/hot200"
if [ ! -f "$HOT/repodata/repomd.xml" ]; then
    log "building 200 packages of 4-200 KiB (once)"
    top=$(mktemp -d)
    {
        printf 'Name: hot\nVersion: 1.0\nRelease: 1\nSummary: bench\nLicense: MIT\nBuildArch: noarch\n'
        printf '%%define _binary_payload w0.ufdio\n%%description\nbench\n'
        for i in $(seq 1 200); do printf '%%package -n hot%s\nSummary: bench\n%%description -n hot%s\nbench\n' "$i" "$i"; done
        printf '%%install\n'
        for i in $(seq 1 200); do
            printf 'mkdir -p %%{buildroot}/opt/hot%s; head -c %s /dev/urandom > %%{buildroot}/opt/hot%s/data\n' "$i" "$(( (4 + (i - 1) * 196 / 199) * 1024 - 1500 ))" "$i"
        done
        for i in $(seq 1 200); do printf '%%files -n hot%s\n/opt/hot%s/data\n' "$i" "$i"; done
    } > "$top/hot.spec"
    rpmbuild --quiet --define "_topdir $top" -bb "$top/hot.spec" >/dev/null 2>&1
    rm -rf "$HOT"; mkdir -p "$HOT/Packages"
    find "$top/RPMS" -name 'hot*.rpm' -exec mv {} "$HOT/Packages/" \;
    createrepo_c --quiet --no-database "$HOT"
    rm -rf "$top"
fi
REPOS="hot200 fs50k bulk"

declare -A FS_PID=()
cleanup() {
    local b
    # nginx first: it keeps files open (open_file_cache), which would hold every mount busy.
    bench_stop
    for b in "${!FS_PID[@]}"; do kill "${FS_PID[$b]}" 2>/dev/null && wait "${FS_PID[$b]}" 2>/dev/null; done
    if mountpoint -q "$W/bindfs"; then umount "$W/bindfs" || umount -l "$W/bindfs"; fi
}
for m in "$W"/mnt-* "$W/bindfs"; do if mountpoint -q "$m"; then umount -l "$m"; fi; done
rm -rf "$W"
bench_pg_start
trap cleanup EXIT

# The native tree: the upstreams' files hard-linked into <repo>/latest/, the layout every
# other path has.
for r in $REPOS; do
    mkdir -p "$W/native/$r"
    cp -al "$BENCH_DIR/$r" "$W/native/$r/latest"
done
mkdir -p "$W/bindfs"
bindfs -r "$W/native" "$W/bindfs"

for b in $BACKENDS; do
    DB=$(bench_db "$b" serve)
    mkdir -p "$W/$b/conf.d" "$W/mnt-$b"
    cat > "$W/$b/config.yaml" <<YAML
include: conf.d/*.yaml
storage: {base_path: $W/storage}
database: {url: "$DB"}
YAML
    for r in $REPOS; do
        printf 'name: %s\nupstream:\n  url: file://%s\n' "$r" "$BENCH_DIR/$r" > "$W/$b/conf.d/$r.yaml"
        if [ "$b" = sqlite ]; then
            printf 'publish:\n  latest_path: %s\n' "$W/export/$r/latest" >> "$W/$b/conf.d/$r.yaml"
        fi
    done
    CHANTAL_CONFIG="$W/$b/config.yaml" "$CHANTAL" -q init
done

# repo sync of the large repository against the disk's durable write rate, each into an empty
# pool (the sources are read once first, so both start from the page cache; dd writes the
# same bytes, one stream, one fsync at the end).
cat "$BENCH_DIR"/bulk/Packages/* > /dev/null
BULK_BYTES=$(du -cb "$BENCH_DIR"/bulk/Packages/* | awk 'END {print $1}')
mb_per_s() { awk -v b="$BULK_BYTES" -v s="$1" 'BEGIN { printf "%.1f", b / 1048576 / s }'; }
declare -A SYNC_RATE=()
mkdir -p "$W/storage"
# The virtual disks this runs on vary run to run (one 1 GiB dd took 2.5 s, the next 0.4 s):
# three dd runs, the median compared.
DD_RATES=""
for _ in 1 2 3; do
    start=$(date +%s.%N)
    cat "$BENCH_DIR"/bulk/Packages/* | dd of="$W/storage/dd.test" bs=1M iflag=fullblock conv=fsync status=none
    DD_RATES="$DD_RATES $(mb_per_s "$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')")"
    rm -f "$W/storage/dd.test"
done
DD_RATE=$(tr ' ' '\n' <<<"$DD_RATES" | grep . | sort -n | sed -n 2p)
for b in $BACKENDS; do
    # A scratch storage and catalogue of its own, removed afterwards: each backend's sync
    # writes every file.
    log "timing repo sync of bulk into an empty pool, catalogue on $b"
    T="$W/synctime-$b"
    mkdir -p "$T/conf.d"
    printf 'include: conf.d/*.yaml\nstorage: {base_path: %s}\ndatabase: {url: "%s"}\n' \
        "$T/storage" "$(bench_db "$b" synctime)" > "$T/config.yaml"
    printf 'name: bulk\nupstream:\n  url: file://%s\n' "$BENCH_DIR/bulk" > "$T/conf.d/bulk.yaml"
    CHANTAL_CONFIG="$T/config.yaml" "$CHANTAL" -q init
    start=$(date +%s.%N)
    CHANTAL_CONFIG="$T/config.yaml" "$CHANTAL" -q repo sync --repo-id bulk
    SYNC_RATE[$b]=$(mb_per_s "$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')")
    rm -rf "$T"
done
for b in $BACKENDS; do
    log "syncing $REPOS into the pool, catalogue on $b"
    CHANTAL_CONFIG="$W/$b/config.yaml" "$CHANTAL" -q repo sync --all
done

start_fs() {
    # shellcheck disable=SC2086 # FS_ARGS: extra chantal-fs options, word-split on purpose
    CHANTAL_CONFIG="$W/$1/config.yaml" "$CHANTAL_FS" ${FS_ARGS:-} "$W/mnt-$1" 2>>"$W/chantal-fs-$1.log" &
    FS_PID[$1]=$!
    local i
    for i in $(seq 1 200); do [ -f "$W/mnt-$1/hot200/latest/repodata/repomd.xml" ] && return 0; sleep 0.05; done
    die "chantal-fs did not come up (see $W/chantal-fs-$1.log)"
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

TOOLS="native bindfs"
declare -A ROOTDIR=([native]="$W/native" [bindfs]="$W/bindfs" [export]="$W/export")
for b in $BACKENDS; do
    start_fs "$b"
    TOOLS="$TOOLS chantal-$b"
    ROOTDIR[chantal-$b]="$W/mnt-$b"
done
if [ -d "$W/export/hot200/latest" ]; then TOOLS="$TOOLS export"; fi

# One nginx, one server per path, each the shipped site with only listen and root changed.
declare -A PORT=()
servers=()
n=0
for t in $TOOLS; do
    PORT[$t]=$((PORT0 + n)); n=$((n + 1))
    servers+=("${PORT[$t]}=${ROOTDIR[$t]}")
done
bench_shipped_nginx "${servers[@]}"

# Paths, relative to a server's root.
{
    echo "/hot200/latest/repodata/repomd.xml"
    (cd "$W/native/hot200/latest" && find repodata -type f ! -name repomd.xml | sed 's|^|/hot200/latest/|')
    (cd "$W/native/hot200/latest" && find Packages -name '*.rpm' | sed 's|^|/hot200/latest/|')
} > "$W/fleet.list"
(cd "$W/native/fs50k/latest/Packages" && ls | grep '^small-' | sed 's|^|/fs50k/latest/Packages/|') > "$W/cold.list"
(cd "$W/native/bulk/latest/Packages" && ls | sed 's|^|/bulk/latest/Packages/|') > "$W/large.list"

# wrk: every thread walks the list from its own offset; `once` stops a thread at the end of
# its share (the cold case), else it cycles. wrk always reports over its whole -d, so the cold
# case times itself: from each thread's first request to its last response (a monotonic
# clock through LuaJIT's ffi), printed by done() as `ONCE <seconds> <responses>`.
cat > "$W/paths.lua" <<'LUA'
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } timespec;
int clock_gettime(int clk, timespec *ts);
]]
local function now()
  local ts = ffi.new("timespec")
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
end
local paths, n, once = {}, 0, os.getenv("ONCE") == "1"
for line in io.lines(os.getenv("LIST")) do n = n + 1; paths[n] = line end
local threads, counter = {}, 0
function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end
function init(args)
  local nthreads = tonumber(os.getenv("THREADS"))
  local share = math.ceil(n / nthreads)
  first = (id - 1) * share + 1
  last = math.min(id * share, n)
  i = first
  want = last - first + 1
  got = 0
  started = 0
  finished = 0
end
function request()
  if started == 0 then started = now() end
  -- Past the end the list starts over; the cold case stops at its last response instead
  -- (stopping here would drop the responses still in flight). The few repeats sent before
  -- that arrives are cached files, a rounding error on 25,000 per thread.
  if i > last then i = first end
  local p = paths[i]
  i = i + 1
  return wrk.format("GET", p)
end
if once then
  function response(status, headers, body)
    got = got + 1
    if got == want then
      finished = now()
      wrk.thread:stop()
    end
  end
end
-- A thread that stops keeps its globals for done() to read.
function done(summary, latency, requests)
  if not once then return end
  local s, f, total = math.huge, 0, 0
  for _, t in ipairs(threads) do
    s = math.min(s, t:get("started"))
    f = math.max(f, t:get("finished"))
    total = total + t:get("got")
  end
  if f == 0 then f = s end
  io.write(string.format("ONCE %.3f %d\n", f - s, total))
end
LUA

# The block device under $W, for the cold case's disk reads per request (none on a file system
# without one, such as an overlay).
DISK_STAT=/sys/class/block/$(basename "$(findmnt -no SOURCE --target "$W" 2>/dev/null || echo none)")/stat
disk_reads() { if [ -r "$DISK_STAT" ]; then awk '{print $1}' "$DISK_STAT"; else echo 0; fi; }
RESULTS="$W/results.tsv"; : > "$RESULTS"
record() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >> "$RESULTS"; printf '  %-18s %-30s %s\n' "$1" "$2" "$3" >&2; }
# run TOOL CASE LIST CONNECTIONS ONCE: wrk against one server; records requests/s, MB/s,
# for chantal-fs its CPU seconds per 10,000 requests, and for the cold case the disk reads per
# request.
run() {
    local t=$1 case=$2 list=$3 conns=$4 once=$5 threads=2 out pid="" before=0 reads
    case $t in chantal-*) pid=${FS_PID[${t#chantal-}]}; before=$(cpu_ticks "$pid") ;; esac
    reads=$(disk_reads)
    local secs; secs=$( [ "$once" = 1 ] && echo "$COLD_SECONDS" || echo "$DURATION" )
    # (timeout: a wrk whose connections all failed has been seen not to stop at -d)
    out=$(LIST="$list" ONCE="$once" THREADS="$threads" timeout $((secs + 60)) wrk -t "$threads" \
        -c "$conns" -d "${secs}s" --timeout 30s --latency -s "$W/paths.lua" "http://127.0.0.1:${PORT[$t]}" 2>&1) || true
    local rps mbs reqs
    rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    reqs=$(awk '/requests in/ {print $1}' <<<"$out")
    mbs=$(awk '/^Transfer\/sec:/ {v=$2; u=substr(v, length(v)-1); x=substr(v, 1, length(v)-2)+0;
        if (u=="GB") x*=1024; else if (u=="KB") x/=1024; else if (u!="MB") x/=1048576; printf "%.1f", x}' <<<"$out")
    if [ "$once" = 1 ]; then
        # Over the time the list took (or COLD_SECONDS, if it did not finish).
        read -r _ took got < <(grep '^ONCE ' <<<"$out" || echo "ONCE 0 0")
        if awk -v t="$took" 'BEGIN { exit !(t > 0) }'; then
            rps=$(awk -v t="$took" -v g="$got" 'BEGIN { printf "%.2f", g / t }')
            mbs=$(awk -v t="$took" '/requests in/ {v=$5; sub(/read$/, "", v); u=substr(v, length(v)-1);
                x=substr(v, 1, length(v)-2)+0; if (u=="GB") x*=1024; else if (u=="KB") x/=1024;
                else if (u!="MB") x/=1048576; printf "%.1f", x / t}' <<<"$out")
        fi
        [ "${got:-0}" -gt 0 ] && reqs=$got
        if [ -r "$DISK_STAT" ] && [ "${got:-0}" -gt 0 ]; then
            record "$t" "$case disk reads/req" "$(awk -v a="$reads" -v b="$(disk_reads)" -v r="$got" \
                'BEGIN { printf "%.2f", (b - a) / r }')"
        fi
    fi

    if grep -qE 'Non-2xx|Socket errors' <<<"$out"; then
        echo "WARNING: $t $case: $(grep -E 'Non-2xx|Socket errors' <<<"$out" | tr -s ' ' | tr '\n' ';') (see $W/nginx/error.log)" >&2
    fi
    record "$t" "$case req/s" "${rps:-0}"
    record "$t" "$case MB/s" "${mbs:-0}"
    if [ -n "$pid" ] && [ "${reqs:-0}" -gt 0 ]; then
        local hz; hz=$(getconf CLK_TCK)
        record "$t" "$case CPU s/10k req" "$(awk -v a="$before" -v b="$(cpu_ticks "$pid")" -v hz="$hz" -v r="$reqs" \
            'BEGIN { printf "%.3f", (b - a) / hz * 10000 / r }')"
    fi
}

for round in $(seq 1 "$ROUNDS"); do
    log "round $round/$ROUNDS"
    for t in $TOOLS; do
        if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $t "* ]]; then continue; fi
        case " $CASES " in *" fleet "*)
            # Warm: one pass over the hot set, then the measured run.
            LIST="$W/fleet.list" ONCE=1 THREADS=1 wrk -t 1 -c 1 -d 30s -s "$W/paths.lua" "http://127.0.0.1:${PORT[$t]}" >/dev/null 2>&1 || true
            run "$t" fleet "$W/fleet.list" 64 0 ;;
        esac
        case " $CASES " in *" cold "*)
            sync; echo 3 > /proc/sys/vm/drop_caches
            run "$t" cold "$W/cold.list" 64 1 ;;
        esac
        case " $CASES " in *" large "*) run "$t" large "$W/large.list" 8 0 ;; esac
    done
done

echo
echo "kernel $(uname -r); chantal-fs $(grep -ho '\<reads: .*' "$W"/chantal-fs-*.log | tail -1); wrk, ${DURATION}s per case (cold: at most ${COLD_SECONDS}s)"
echo "median of $ROUNDS rounds"
printf 'repo sync of bulk (%s MiB): dd conv=fsync %s MB/s (median of%s)' "$((BULK_BYTES / 1048576))" "$DD_RATE" "$DD_RATES"
for b in $BACKENDS; do
    printf ', %s %s MB/s (%s of dd)' "$b" "${SYNC_RATE[$b]}" "$(awk -v s="${SYNC_RATE[$b]}" -v d="$DD_RATE" 'BEGIN { printf "%.2f", s / d }')"
done
echo
bench_table "$RESULTS" $TOOLS
python3 - "$RESULTS" <<'PYSUM'
import sys, statistics, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    tool, case, v = line.rstrip("\n").split("\t")
    rows[(case, tool)].append(float(v))
def ratio(case, tool="chantal-sqlite"):
    n, c = rows.get((case, "native")), rows.get((case, tool))
    return statistics.median(c) / statistics.median(n) if n and c else 0.0
r = (ratio("fleet req/s"), ratio("cold req/s"), ratio("large MB/s"))
print("ratio to native (chantal-fs SQLite): fleet %.2f, cold %.2f, large %.2f (MB/s)" % r)
print("serve: fleet %.2f cold %.2f large %.2f" % r)
PYSUM
