#!/usr/bin/env bash
# Restart benchmark (issue: defects found as a new user, item 2): what restarting chantal-fs
# costs clients that keep requesting through nginx, configured as contrib/nginx/chantal.conf
# ships it (only `listen` and `root` differ). A restart is done as systemd does it: SIGTERM,
# wait for the old daemon to exit, start the new one. Per backend and round:
#   exit     ms from SIGTERM until the old daemon has exited
#   gap      ms from SIGTERM until the new daemon serves (the mount point is empty meanwhile)
#   404      requests nginx answered 404 during that restart (4 keep-alive clients fetching the
#            3,000 small packages of the bench fixture in a loop); any other failure is
#            reported as an error
#   idle     ms from SIGTERM until exit when nginx holds files open (open_file_cache) and no
#            request is under way
# The last line is `restart: exit E ms, gap G ms, idle exit I ms, 404 N per restart` (SQLite,
# medians).
# Usage: contrib/bench/restart-bench.sh [ROUNDS]   (env: BENCH_DIR, BACKENDS)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/contrib/lib/deps.sh"
. "$ROOT/contrib/bench/lib.sh"
ROUNDS=${1:-5}
W="$BENCH_DIR/work-restart"
PORT=18190

[ "$(id -u)" -eq 0 ] || die "run as root (FUSE mounts with allow_other)"
ensure_deps postgresql runuser createrepo_c rpmbuild nginx fusermount3
bench_build

FS_PID=
cleanup() {
    if [ -f "$W/load.stop" ] || [ -d "$W" ]; then touch "$W/load.stop" 2>/dev/null || true; fi
    bench_stop
    if [ -n "$FS_PID" ]; then kill "$FS_PID" 2>/dev/null && wait "$FS_PID" 2>/dev/null || true; fi
    for m in "$W"/mnt-*; do if mountpoint -q "$m"; then umount -l "$m"; fi; done
}
for m in "$W"/mnt-*; do if mountpoint -q "$m"; then umount -l "$m"; fi; done
rm -rf "$W"
mkdir -p "$W"
bench_pg_start
trap cleanup EXIT

# nginx serves whichever mount point is linked at $W/root (started with the first backend).
# The load: keep-alive clients fetching every package in turn, logging (time, status).
cat > "$W/load.py" <<'PY'
import http.client, os, sys, threading, time
port, names, out, stop = int(sys.argv[1]), open(sys.argv[2]).read().split(), sys.argv[3], sys.argv[4]
log, lock = [], threading.Lock()
def client(k):
    c = http.client.HTTPConnection("127.0.0.1", port)
    i, mine = k, []
    while not os.path.exists(stop):
        c.request("GET", names[i % len(names)])
        r = c.getresponse(); r.read()
        mine.append((time.time(), r.status)); i += 1
    with lock: log.extend(mine)
ts = [threading.Thread(target=client, args=(k,)) for k in range(4)]
for t in ts: t.start()
for t in ts: t.join()
with open(out, "w") as f:
    for t, s in sorted(log): f.write(f"{t:.6f} {s}\n")
PY

# Wall-clock seconds (bash's own, no process spawned: the figures are tens of ms).
now() { echo "$EPOCHREALTIME"; }
ms() { python3 -c "print(round(($2 - $1) * 1000))"; }
start_fs() {  # start_fs BACKEND: starts chantal-fs, waits until it serves
    "$CHANTAL_FS" --config "$W/$1/config.yaml" "$W/mnt-$1" 2>>"$W/$1/fs.log" &
    FS_PID=$!
    until [ -f "$W/mnt-$1/small/latest/repodata/repomd.xml" ]; do sleep 0.005; done
}
stop_fs() {  # stop_fs: SIGTERM, waits for the exit; sets SIGNALLED and EXITED
    SIGNALLED=$(now); kill -TERM "$FS_PID"; wait "$FS_PID" || die "chantal-fs exited $?"
    EXITED=$(now)
}

RESULTS="$W/results.tsv"; : > "$RESULTS"
for b in $BACKENDS; do
    log "backend $b"
    mkdir -p "$W/$b/storage" "$W/mnt-$b" "$W/$b/conf.d"
    printf 'include: conf.d/*.yaml\nstorage:\n  base_path: %s\ndatabase:\n  url: %s\n' \
        "$W/$b/storage" "$(bench_db "$b" restart)" > "$W/$b/config.yaml"
    printf 'name: small\nupstream:\n  url: file://%s\n' "$BENCH_DIR/small" > "$W/$b/conf.d/small.yaml"
    "$CHANTAL" --config "$W/$b/config.yaml" -q init
    "$CHANTAL" --config "$W/$b/config.yaml" -q repo sync --repo-id small
    ln -sfn "$W/mnt-$b" "$W/root"
    if [ -f "$W/nginx/nginx.pid" ] && kill -0 "$(cat "$W/nginx/nginx.pid")" 2>/dev/null; then
        /usr/sbin/nginx -c "$W/nginx/nginx.conf" -s reload; sleep 0.5
    else
        bench_shipped_nginx "$PORT=$W/root"
    fi
    start_fs "$b"
    ls "$W/mnt-$b/small/latest/Packages" | sed 's|^|/small/latest/Packages/|' > "$W/names"
    for r in $(seq 1 "$ROUNDS"); do
        rm -f "$W/load.stop"
        python3 "$W/load.py" "$PORT" "$W/names" "$W/load.log" "$W/load.stop" &
        load=$!
        sleep 1
        stop_fs; t0=$SIGNALLED; t1=$EXITED
        start_fs "$b"; t2=$(now)
        sleep 1
        touch "$W/load.stop"; wait "$load"
        read -r n404 nother < <(awk -v a="$t0" -v z="$t2" '$2 == 404 {n++} $2 != 200 && $2 != 404 {o++} END {print n+0, o+0}' "$W/load.log")
        [ "$nother" -eq 0 ] || log "WARNING: $nother answers neither 200 nor 404"
        # Idle: nginx keeps files open, nobody requests.
        sleep 0.5
        stop_fs; i0=$SIGNALLED; i1=$EXITED
        start_fs "$b"
        printf '%s\texit ms\t%s\n%s\tgap ms\t%s\n%s\t404 per restart\t%s\n%s\tidle exit ms\t%s\n' \
            "$b" "$(ms "$t0" "$t1")" "$b" "$(ms "$t0" "$t2")" "$b" "$n404" "$b" "$(ms "$i0" "$i1")" >> "$RESULTS"
        log "$b round $r: exit $(ms "$t0" "$t1") ms, gap $(ms "$t0" "$t2") ms, $n404 x 404, idle exit $(ms "$i0" "$i1") ms"
    done
    kill -TERM "$FS_PID"; wait "$FS_PID" || true; FS_PID=
done
# shellcheck disable=SC2086
bench_table "$RESULTS" $BACKENDS
python3 - "$RESULTS" <<'PY'
import sys, statistics, collections
v = collections.defaultdict(list)
for line in open(sys.argv[1]):
    b, fig, x = line.rstrip("\n").split("\t")
    if b == "sqlite":
        v[fig].append(float(x))
m = lambda k: round(statistics.median(v[k])) if v[k] else "-"
print(f"restart: exit {m('exit ms')} ms, gap {m('gap ms')} ms, idle exit {m('idle exit ms')} ms, 404 {m('404 per restart')} per restart")
PY
