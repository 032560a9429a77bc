# Shared by the benchmark scripts (sourced after contrib/lib/deps.sh, with $ROOT set): the
# paths every script uses, the build, a private PostgreSQL cluster and a private nginx under a
# work directory $W, both stopped by bench_stop, and a catalogue per backend. $BACKENDS lists
# the catalogue backends chantal is measured on (default: both, "postgresql sqlite").

BACKENDS=${BACKENDS:-postgresql sqlite}
export BENCH_DIR=${BENCH_DIR:-/var/tmp/chantal-bench}
# The real CS9 AppStream primary.xml.gz (17,649 packages) of the project's fixtures.
CS9="$ROOT/tests/fixtures/cs9/appstream/repodata/c03bb2ebc33bbee3046da091b45d90717273a43d3641a9d84e6eede05637bc8a-primary.xml.gz"
# CHANTAL / CHANTAL_FS: another build to measure (a "before" binary), default this tree's.
CHANTAL=${CHANTAL:-$ROOT/target/release/chantal}
CHANTAL_FS=${CHANTAL_FS:-$ROOT/target/release/chantal-fs}

# bench_build: the benchmark fixtures (made once) and chantal's release binaries and examples
# (BUILD=0 skips the build: measuring copied binaries while the tree is being edited).
bench_build() {
    "$ROOT/contrib/bench/build-fixtures.sh" >/dev/null
    [ "${BUILD:-1}" = 0 ] && return 0
    log "building chantal (release)"
    (cd "$ROOT" && cargo build --release --quiet --bins --examples)
}

run_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

# bench_pg_start: a cluster in $W/pg (created once), socket in $W, superuser `chantal`.
bench_pg_start() {
    PGBIN=$(pg_bindir)
    mkdir -p "$W"
    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 || useradd --system postgres
        chown postgres: "$W"
    fi
    if [ ! -f "$W/pg/PG_VERSION" ]; then
        run_pg "$PGBIN/initdb" -D "$W/pg" -U chantal --auth=trust -E UTF8 --no-locale >/dev/null
    fi
    if ! run_pg "$PGBIN/pg_ctl" -D "$W/pg" status >/dev/null 2>&1; then
        run_pg "$PGBIN/pg_ctl" -D "$W/pg" -l "$W/pg.log" -w -o "-c listen_addresses='' -k $W" start >/dev/null
    fi
}

# bench_db BACKEND NAME: prints the database URL of an empty catalogue called NAME on BACKEND:
# a fresh database in the private cluster, or a SQLite file $W/NAME.db (removed first).
bench_db() {
    case $1 in
        postgresql)
            psql -q "host=$W user=chantal dbname=postgres" -c "DROP DATABASE IF EXISTS $2" \
                -c "CREATE DATABASE $2" >/dev/null 2>&1
            echo "host=$W user=chantal dbname=$2" ;;
        sqlite)
            rm -rf "$W/$2.db" "$W/$2.db-wal" "$W/$2.db-shm" "$W/$2.db-locks"
            echo "sqlite://$W/$2.db" ;;
        *) die "unknown backend $1 (BACKENDS: postgresql sqlite)" ;;
    esac
}

# bench_nginx_start PORT ROOT: nginx (as root, sendfile on, no access log) serving ROOT on
# 127.0.0.1:PORT, configured in $W/nginx.
bench_nginx_start() {
    mkdir -p "$W/nginx"
    cat > "$W/nginx/nginx.conf" <<CONF
user root;
worker_processes 2;
pid $W/nginx/nginx.pid;
error_log $W/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off; sendfile on; tcp_nopush on; keepalive_requests 100000;
  client_body_temp_path $W/nginx/body; proxy_temp_path $W/nginx/proxy;
  fastcgi_temp_path $W/nginx/fcgi; uwsgi_temp_path $W/nginx/uwsgi; scgi_temp_path $W/nginx/scgi;
  server { listen 127.0.0.1:$1; root $2; }
}
CONF
    /usr/sbin/nginx -c "$W/nginx/nginx.conf"
}

# bench_shipped_nginx PORT=ROOT...: one nginx (as root, no access log) with a server per pair,
# each contrib/nginx/chantal.conf as shipped but for `listen` (127.0.0.1:PORT) and `root`,
# configured in $W/nginx and stopped by bench_stop.
bench_shipped_nginx() {
    local pair
    mkdir -p "$W/nginx"
    {
        echo "user root; worker_processes 2; pid $W/nginx/nginx.pid; error_log $W/nginx/error.log;"
        echo "events { worker_connections 4096; }"
        echo "http { access_log off; client_body_temp_path $W/nginx/body; proxy_temp_path $W/nginx/proxy;"
        echo "  fastcgi_temp_path $W/nginx/fcgi; uwsgi_temp_path $W/nginx/uwsgi; scgi_temp_path $W/nginx/scgi;"
        for pair in "$@"; do
            sed -e "s|listen 80;|listen 127.0.0.1:${pair%%=*};|" -e "s|root /srv/chantal;|root ${pair#*=};|" \
                "$ROOT/contrib/nginx/chantal.conf"
        done
        echo "}"
    } > "$W/nginx/nginx.conf"
    /usr/sbin/nginx -c "$W/nginx/nginx.conf"
}

# measure TOOL REPO CASE CMD... (after setting $RESULTS and $W): runs CMD, records wall seconds
# and peak RSS (MB) in $RESULTS and on stderr.
measure() {
    local tool=$1 repo=$2 case=$3; shift 3
    local t; t=$(mktemp)
    if ! /usr/bin/time -f "%e %M" -o "$t" "$@" >"$W/last.out" 2>&1; then
        echo "FAILED: $tool $repo $case" >&2; tail -5 "$W/last.out" >&2
    fi
    read -r secs kb < <(tail -n 1 "$t"); rm -f "$t"
    printf '%s\t%s\t%s\t%s\t%s\n' "$tool" "$repo" "$case" "$secs" "$((kb / 1024))" >> "$RESULTS"
    printf '  %-18s %-9s %-6s %6.2f s %5d MB\n' "$tool" "$repo" "$case" "$secs" "$((kb / 1024))" >&2
}
# settle: waits for written data to leave the page cache ($SETTLE seconds after sync).
settle() { sync; sleep "$SETTLE"; }
# discard DIR: out of the way now, deleted at the end.
discard() { if [ -e "$1" ]; then mkdir -p "$W/trash"; mv "$1" "$(mktemp -u -p "$W/trash")"; fi; }

# bench_stop: stops what bench_pg_start and bench_nginx_start started.
bench_stop() {
    if [ -f "$W/nginx/nginx.pid" ]; then kill "$(cat "$W/nginx/nginx.pid")" 2>/dev/null || true; fi
    run_pg "$(pg_bindir)/pg_ctl" -D "$W/pg" -m fast stop >/dev/null 2>&1 || true
}

# bench_table RESULTS TOOL...: the median of each figure (rows of RESULTS: tool, figure,
# value, tab-separated) as a Markdown table, a column per tool, figures in first-seen order.
bench_table() {
    local results=$1; shift
    python3 - "$results" "$@" <<'PYSUM'
import sys, statistics, collections
tools = sys.argv[2:]
rows = collections.defaultdict(dict)
order = []
for line in open(sys.argv[1]):
    tool, case, v = line.rstrip("\n").split("\t")
    if case not in order:
        order.append(case)
    rows[case].setdefault(tool, []).append(float(v))
print("| figure | " + " | ".join(tools) + " |")
print("|---" * (len(tools) + 1) + "|")
for case in order:
    cells = []
    for tool in tools:
        v = rows[case].get(tool)
        cells.append(f"{statistics.median(v):g}" if v else "-")
    print(f"| {case} | " + " | ".join(cells) + " |")
PYSUM
}
