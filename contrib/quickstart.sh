#!/usr/bin/env bash
# The main job on a fresh machine: install what is missing, build chantal, start a private
# PostgreSQL (unless $CHANTAL_DATABASE_URL names one), build a small file:// upstream from the
# project's test RPMs, write an example configuration, initialise the catalogue, sync the
# repository twice (the second run is a no-op) and show the result.
#
# Everything lives in $CHANTAL_QUICKSTART_DIR (default /var/tmp/chantal-quickstart); running the
# script again reuses it. Stop the private database with:
#   contrib/quickstart.sh stop
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
. contrib/lib/deps.sh

QS=${CHANTAL_QUICKSTART_DIR:-/var/tmp/chantal-quickstart}
PGDATA="$QS/pg"

run_pg() {  # PostgreSQL refuses to run as root: use the postgres user then.
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

if [ "${1:-}" = stop ]; then
    if [ -f "$PGDATA/postmaster.pid" ]; then
        run_pg "$(pg_bindir)/pg_ctl" -D "$PGDATA" -m fast -w stop
    fi
    exit 0
fi

ensure_deps postgresql runuser createrepo_c
PGBIN=$(pg_bindir)

log "building chantal (release)"
cargo build --release --quiet --bins
CHANTAL="$ROOT/target/release/chantal"

mkdir -p "$QS"
if [ -z "${CHANTAL_DATABASE_URL:-}" ]; then
    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
        chown postgres: "$QS"
    fi
    if [ ! -f "$PGDATA/PG_VERSION" ]; then
        log "creating a private PostgreSQL cluster in $PGDATA"
        run_pg "$PGBIN/initdb" -D "$PGDATA" -U chantal --auth=trust -E UTF8 --no-locale >/dev/null
    fi
    if ! run_pg "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
        log "starting PostgreSQL (unix socket in $QS)"
        run_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$QS/postgresql.log" -w \
            -o "-c listen_addresses='' -k $QS" start >/dev/null
    fi
    DB_URL="host=$QS user=chantal dbname=postgres"
else
    DB_URL=$CHANTAL_DATABASE_URL
fi

log "building the example upstream $QS/upstream from tests/data/rpms"
rm -rf "$QS/upstream"
mkdir -p "$QS/upstream/Packages" "$QS/conf.d"
cp "$ROOT"/tests/data/rpms/*.rpm "$QS/upstream/Packages/"
createrepo_c --quiet --no-database "$QS/upstream"

cat > "$QS/config.yaml" <<YAML
include: conf.d/*.yaml
storage:
  base_path: $QS/storage
database:
  url: "$DB_URL"
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
"$CHANTAL" repo list
echo
echo "configuration: $QS/config.yaml (export CHANTAL_CONFIG=$QS/config.yaml to use it)"
