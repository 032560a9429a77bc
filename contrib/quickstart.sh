#!/usr/bin/env bash
# The main job on a fresh machine: install what is missing, build chantal, build a small file://
# upstream from the project's test RPMs, write an example configuration (the catalogue is the
# embedded SQLite default, <storage>/catalog.db, unless $CHANTAL_DATABASE_URL names a
# PostgreSQL database), initialise it, sync the repository twice (the second run is a no-op),
# freeze a snapshot, serve everything through chantal-fs and a private nginx, and print the URL
# to point dnf at. No database server is needed.
#
# Everything lives in $CHANTAL_QUICKSTART_DIR (default /var/tmp/chantal-quickstart); running the
# script again reuses it. nginx listens on 127.0.0.1:$CHANTAL_QUICKSTART_PORT (default 8080).
# Stop nginx and chantal-fs (unmounting) with:
#   contrib/quickstart.sh stop
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
. contrib/lib/deps.sh

QS=${CHANTAL_QUICKSTART_DIR:-/var/tmp/chantal-quickstart}
PORT=${CHANTAL_QUICKSTART_PORT:-8080}
MNT="$QS/mnt"

# Stops what an earlier run started (by its recorded PID) and unmounts.
stop_serving() {
    if [ -f "$QS/nginx/nginx.pid" ]; then
        kill "$(cat "$QS/nginx/nginx.pid")" 2>/dev/null || true
        rm -f "$QS/nginx/nginx.pid"
    fi
    if [ -f "$QS/chantal-fs.pid" ]; then
        local pid; pid=$(cat "$QS/chantal-fs.pid")
        if kill "$pid" 2>/dev/null; then  # SIGTERM: chantal-fs unmounts and exits
            for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        fi
        rm -f "$QS/chantal-fs.pid"
    fi
    if mountpoint -q "$MNT" 2>/dev/null; then umount -l "$MNT" 2>/dev/null || fusermount3 -uz "$MNT" || true; fi
}

if [ "${1:-}" = stop ]; then
    stop_serving
    exit 0
fi

# rpm: createrepo_c reads rpm's configuration (/usr/lib/rpm/rpmrc) and complains without it.
ensure_deps createrepo_c rpm nginx fusermount3 curl

log "building chantal and chantal-fs (release)"
cargo build --release --quiet --bins
CHANTAL="$ROOT/target/release/chantal"
CHANTAL_FS="$ROOT/target/release/chantal-fs"

mkdir -p "$QS"
DB_YAML=""
if [ -n "${CHANTAL_DATABASE_URL:-}" ]; then
    DB_YAML=$(printf 'database:\n  url: "%s"' "$CHANTAL_DATABASE_URL")
fi

# The example upstream is made once (again only if the RPMs it is made from changed): a second
# run then finds it unchanged, and its sync is "up to date".
mkdir -p "$QS/conf.d"
if [ -f "$QS/upstream/repodata/repomd.xml" ] && diff -q -r "$ROOT/tests/data/rpms" "$QS/upstream/Packages" >/dev/null 2>&1; then
    log "example upstream $QS/upstream is there already"
else
    log "building the example upstream $QS/upstream from tests/data/rpms"
    rm -rf "$QS/upstream"
    mkdir -p "$QS/upstream/Packages"
    cp "$ROOT"/tests/data/rpms/*.rpm "$QS/upstream/Packages/"
    createrepo_c --quiet --no-database "$QS/upstream"
fi

cat > "$QS/config.yaml" <<YAML
include: conf.d/*.yaml
storage:
  base_path: $QS/storage
$DB_YAML
YAML
cat > "$QS/conf.d/example.yaml" <<YAML
name: example
type: rpm
upstream:
  url: file://$QS/upstream
rpm:
  architectures: [x86_64]
retention:
  policy: mirror
YAML

export CHANTAL_CONFIG="$QS/config.yaml"
"$CHANTAL" init
"$CHANTAL" repo sync --repo-id example
"$CHANTAL" repo sync --repo-id example
SNAP="quickstart-$(date +%Y-%m-%d)"
if ! "$CHANTAL" snapshot list --repo-id example | grep -qw -- "$SNAP"; then
    "$CHANTAL" snapshot create --repo-id example --name "$SNAP"
fi
"$CHANTAL" repo list
"$CHANTAL" db status | head -1

stop_serving
log "serving $MNT with chantal-fs (log: $QS/chantal-fs.log)"
mkdir -p "$MNT"
fs_args=()
# Without root, only this user may read the mount (nginx below runs as this user too).
[ "$(id -u)" -eq 0 ] || fs_args+=(--no-allow-other)
setsid "$CHANTAL_FS" "${fs_args[@]}" "$MNT" >>"$QS/chantal-fs.log" 2>&1 < /dev/null &
echo $! > "$QS/chantal-fs.pid"
for _ in $(seq 1 100); do [ -f "$MNT/example/latest/repodata/repomd.xml" ] && break; sleep 0.1; done
[ -f "$MNT/example/latest/repodata/repomd.xml" ] || die "chantal-fs did not come up: see $QS/chantal-fs.log"

log "serving $MNT with nginx on 127.0.0.1:$PORT"
mkdir -p "$QS/nginx"
cat > "$QS/nginx/nginx.conf" <<CONF
worker_processes 1;
pid $QS/nginx/nginx.pid;
error_log $QS/nginx/error.log;
events { worker_connections 64; }
http {
    access_log $QS/nginx/access.log;
    sendfile on;
    client_body_temp_path $QS/nginx/body; proxy_temp_path $QS/nginx/proxy;
    fastcgi_temp_path $QS/nginx/fastcgi; uwsgi_temp_path $QS/nginx/uwsgi; scgi_temp_path $QS/nginx/scgi;
    # The shipped site, with only listen and root changed.
$(sed -e "s|listen 80;|listen 127.0.0.1:$PORT;|" -e "s|root /srv/chantal;|root $MNT;|" contrib/nginx/chantal.conf)
}
CONF
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
"$NGINX" -q -c "$QS/nginx/nginx.conf" -e "$QS/nginx/error.log" \
    || die "nginx did not start (port $PORT in use? set CHANTAL_QUICKSTART_PORT)"
URL="http://127.0.0.1:$PORT/example/latest/"
curl -fsS -o /dev/null "${URL}repodata/repomd.xml" || die "nginx does not serve $URL: see $QS/nginx/error.log"

echo
echo "configuration: $QS/config.yaml (export CHANTAL_CONFIG=$QS/config.yaml to use it)"
echo "serving:       $URL"
echo "snapshot:      http://127.0.0.1:$PORT/example/snapshots/$SNAP/"
echo "try:           dnf --repofrompath=example,$URL --repo=example list available"
echo "stop:          contrib/quickstart.sh stop"
