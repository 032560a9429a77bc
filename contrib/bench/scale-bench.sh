#!/usr/bin/env bash
# Figures for docs/SCALE-OUT.md, in one run:
#   catalogue   what one sync of a 50,000-package repository costs a PostgreSQL catalogue:
#               statements and rows (pg_stat_statements), transactions and rows written
#               (pg_stat_database); for the first sync and for a no-op one
#   frontend    requests/s one frontend serves through nginx (wrk, 64 connections, DURATION
#               seconds) for a hot set (repomd.xml, the repodata files, 200 packages of 4 KiB),
#               from the native directory and from chantal-fs on each backend, with chantal-fs's
#               CPU seconds per 10,000 requests
#   capacity    contrib/bench/capacity.py (pool and rows for BaseOS + AppStream + EPEL 9 with 24
#               monthly snapshots, from the CS9 fixture's sizes)
# Usage: contrib/bench/scale-bench.sh [DURATION]   (env: BENCH_DIR, BACKENDS)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/contrib/lib/deps.sh"
. "$ROOT/contrib/bench/lib.sh"
DURATION=${1:-10}
W="$BENCH_DIR/work-scale"
PORT=18084

[ "$(id -u)" -eq 0 ] || die "run as root (FUSE mounts with allow_other, nginx reading them)"
ensure_deps postgresql runuser nginx wrk fusermount3 curl
log "building chantal (release)"
(cd "$ROOT" && cargo build --release --quiet --bins)
UP="$BENCH_DIR/scale50k"
if [ ! -f "$UP/repodata/repomd.xml" ]; then
    log "generating 50,000 packages of 4 KiB in $UP"
    rm -rf "$UP"
    python3 "$ROOT/contrib/bench/gen_files.py" "$UP" 49999 4096 4096
fi

declare -A FS_PID=()
cleanup() {
    local b
    for b in "${!FS_PID[@]}"; do kill "${FS_PID[$b]}" 2>/dev/null && wait "${FS_PID[$b]}" 2>/dev/null; done
    if [ -f "$W/nginx/nginx.pid" ]; then kill "$(cat "$W/nginx/nginx.pid")" 2>/dev/null || true; fi
    run_pg "$(pg_bindir)/pg_ctl" -D "$W/pg" -m fast stop >/dev/null 2>&1 || true
}
for m in "$W"/mnt-*; do if mountpoint -q "$m"; then umount -l "$m"; fi; done
rm -rf "$W"
mkdir -p "$W"
trap cleanup EXIT

# A cluster of its own, with pg_stat_statements.
PGBIN=$(pg_bindir)
if [ "$(id -u)" -eq 0 ]; then id postgres >/dev/null 2>&1 || useradd --system postgres; chown postgres: "$W"; fi
run_pg "$PGBIN/initdb" -D "$W/pg" -U chantal --auth=trust -E UTF8 --no-locale >/dev/null
run_pg "$PGBIN/pg_ctl" -D "$W/pg" -l "$W/pg.log" -w \
    -o "-c listen_addresses='' -k $W -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=top" \
    start >/dev/null
psql -q "host=$W user=chantal dbname=postgres" -c "CREATE DATABASE scale" >/dev/null
PGURL="host=$W user=chantal dbname=scale"
q() { psql -qAt "$PGURL" -c "$1"; }
q "CREATE EXTENSION pg_stat_statements" >/dev/null

setup() { # BACKEND DBURL
    mkdir -p "$W/$1/conf.d" "$W/mnt-$1"
    cat > "$W/$1/config.yaml" <<YAML
include: conf.d/*.yaml
storage: {base_path: $W/storage-$1}
database: {url: "$2"}
YAML
    printf 'name: scale50k\nupstream:\n  url: file://%s\n' "$UP" > "$W/$1/conf.d/scale50k.yaml"
    CHANTAL_CONFIG="$W/$1/config.yaml" "$CHANTAL" -q init
}

# --- catalogue work per sync (PostgreSQL)
setup postgresql "$PGURL"
measure() { # LABEL
    q "SELECT pg_stat_statements_reset()" >/dev/null
    q "SELECT pg_stat_reset()" >/dev/null
    local t0 t1
    t0=$(date +%s.%N)
    CHANTAL_CONFIG="$W/postgresql/config.yaml" "$CHANTAL" -q repo sync --repo-id scale50k
    t1=$(date +%s.%N)
    sleep 1  # statistics reach pg_stat_database at the end of each backend's transactions
    local stmts xacts
    stmts=$(q "SELECT sum(calls) || ' statements, ' || sum(rows) || ' rows' FROM pg_stat_statements s
                 JOIN pg_database d ON d.oid = s.dbid
                WHERE d.datname = 'scale' AND s.query NOT LIKE '%pg_stat%'")
    xacts=$(q "SELECT xact_commit || ' commits, ' || tup_inserted || ' inserted, ' || tup_updated
                      || ' updated, ' || tup_deleted || ' deleted'
                 FROM pg_stat_database WHERE datname = 'scale'")
    printf '%-22s %6.2f s  %s; %s\n' "$1" "$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b - a}')" "$stmts" "$xacts"
    q "SELECT calls, rows, left(regexp_replace(query, '\s+', ' ', 'g'), 110) FROM pg_stat_statements s
         JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = 'scale' AND s.query NOT LIKE '%pg_stat%'
        ORDER BY rows DESC, calls DESC LIMIT 12" > "$W/statements-${1// /-}.txt"
}
echo "== catalogue work per sync of 50,000 packages (PostgreSQL)"
measure "first sync"
measure "no-op sync"
echo "   (the statements with the most rows: $W/statements-*.txt)"

for b in $BACKENDS; do
    if [ "$b" = sqlite ]; then
        setup sqlite "$(bench_db sqlite scale)"
        CHANTAL_CONFIG="$W/sqlite/config.yaml" "$CHANTAL" -q repo sync --repo-id scale50k
    fi
done

# --- requests per second through nginx
HOT="$W/hot.txt"
{
    echo "/repodata/repomd.xml"
    sed -n 's:.*<location href="\([^"]*\)"/>.*:/\1:p' "$UP/repodata/repomd.xml"
    ls "$UP/Packages" | sed -n '1,200s:^:/Packages/:p'
} > "$HOT"
cat > "$W/hot.lua" <<'LUA'
local paths = {}
for line in io.lines(os.getenv("HOT")) do paths[#paths + 1] = os.getenv("PREFIX") .. line end
local i = math.random(#paths)
request = function()
    i = i % #paths + 1
    return wrk.format("GET", paths[i])
end
LUA
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
run_wrk() { # LABEL ROOT PREFIX [PID]
    bench_nginx_start "$PORT" "$2"
    local prefix=$3 pid=${4:-}
    for p in $(head -3 "$HOT"); do curl -fsS -o /dev/null "http://127.0.0.1:$PORT$prefix$p"; done
    local c0=0 c1=0
    [ -n "$pid" ] && c0=$(cpu "$pid")
    local out
    out=$(HOT=$HOT PREFIX=$prefix wrk -t 2 -c 64 -d "${DURATION}s" -s "$W/hot.lua" "http://127.0.0.1:$PORT/")
    [ -n "$pid" ] && c1=$(cpu "$pid")
    kill "$(cat "$W/nginx/nginx.pid")"; sleep 0.5
    local rps mbs reqs
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    mbs=$(echo "$out" | awk '/Transfer\/sec/ {print $2}')
    reqs=$(echo "$out" | awk '/requests in/ {print $1}')
    local per=""
    if [ -n "$pid" ]; then
        per=$(awk -v c0="$c0" -v c1="$c1" -v hz="$hz" -v n="$reqs" 'BEGIN{printf "%.2f", (c1 - c0) / hz * 10000 / n}')
        per=", chantal-fs CPU ${per} s per 10,000 requests"
    fi
    printf '%-22s %10s requests/s  %8s/s%s\n' "$1" "$rps" "$mbs" "$per"
}
echo "== one frontend through nginx: hot set of $(wc -l < "$HOT") files, 64 connections, ${DURATION} s"
run_wrk "native" "$UP" ""
for b in $BACKENDS; do
    CHANTAL_CONFIG="$W/$b/config.yaml" setsid "$CHANTAL_FS" "$W/mnt-$b" 2> "$W/fs-$b.log" &
    FS_PID[$b]=$!
    for _ in $(seq 100); do [ -f "$W/mnt-$b/scale50k/latest/repodata/repomd.xml" ] && break; sleep 0.1; done
    run_wrk "chantal-fs ($b)" "$W/mnt-$b" "/scale50k/latest" "${FS_PID[$b]}"
done

echo "== capacity model (contrib/bench/capacity.py)"
python3 "$ROOT/contrib/bench/capacity.py"
