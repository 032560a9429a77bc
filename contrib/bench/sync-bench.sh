#!/usr/bin/env bash
# Sync benchmark: chantal against dnf reposync and the original Python chantal (PyPI 1.6.5),
# side by side and interleaved, on the same upstreams served by nginx on 127.0.0.1:
#   small   3,000 small RPMs          cold sync, no-op resync, peak RSS
#   bulk    8 x 128 MiB RPMs          cold sync (MB/s), no-op resync, peak RSS
#   meta100k repodata of 100,000 packages: metadata phase (chantal --dry-run; Python
#            chantal's `repo check-updates`; `zcat` of its three files, the floor of any
#            streaming parser), and chantal's whole sync of it with
#            `download.policy: on_demand` (metadata, 100,000 absent packages, the commit)
# plus a parse of the real CentOS Stream 9 AppStream primary.xml.gz.
#
# Every cold run starts from an empty pool and catalogue, after `sync` and a settle pause.
# Earlier runs' trees are moved aside, not deleted, until the end: ext4 allocates inodes slowly
# right after thousands were freed, whoever allocates them, which made whichever tool ran
# after a deletion up to 3x slower.
# chantal runs once per catalogue backend in $BACKENDS (default "postgresql sqlite"); COMPARE=0
# skips dnf and Python chantal, COMPARE=dnf skips Python chantal only.
# REPOS (default "small bulk") chooses the package cases; META=0 skips meta100k.
# Usage: contrib/bench/sync-bench.sh [ROUNDS]   (env: BENCH_DIR, SETTLE seconds, BACKENDS, COMPARE,
# REPOS, META)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/contrib/lib/deps.sh"
. "$ROOT/contrib/bench/lib.sh"
ROUNDS=${1:-3}
SETTLE=${SETTLE:-10}
COMPARE=${COMPARE:-1}
META=${META:-1}
REPOS=${REPOS-small bulk}
PORT=18080
W="$BENCH_DIR/work"

ensure_deps postgresql runuser createrepo_c rpmbuild nginx dnf
dnf reposync --help >/dev/null 2>&1 || pkg_install dnf-plugins-core
bench_build
PGBIN=$(pg_bindir)

PY="$BENCH_DIR/pychantal/bin/python"
if [ ! -x "$BENCH_DIR/pychantal/bin/chantal" ]; then
    log "installing the original Python chantal 1.6.5 in a venv"
    python3 -m venv "$BENCH_DIR/pychantal"
    "$BENCH_DIR/pychantal/bin/pip" install -q --ignore-requires-python chantal==1.6.5
fi

bench_pg_start
psql_admin() { psql -q "host=$W user=chantal dbname=postgres" "$@" >/dev/null 2>&1; }
bench_nginx_start "$PORT" "$BENCH_DIR" 2>/dev/null || true
trap bench_stop EXIT
BASE="http://127.0.0.1:$PORT"

RESULTS="$W/results.tsv"
: > "$RESULTS"
# chantal_fresh BACKEND: an empty pool and catalogue.
chantal_fresh() {
    local url; url=$(bench_db "$1" bench)
    discard "$W/chantal"; mkdir -p "$W/chantal/conf.d"
    cat > "$W/chantal/config.yaml" <<YAML
include: conf.d/*.yaml
storage: {base_path: $W/chantal/storage}
database: {url: "$url"}
YAML
    for r in small bulk meta100k; do
        printf 'name: %s\nupstream:\n  url: %s/%s\n' "$r" "$BASE" "$r" > "$W/chantal/conf.d/$r.yaml"
    done
    CHANTAL_CONFIG="$W/chantal/config.yaml" "$CHANTAL" -q init
}
pychantal_fresh() {
    psql_admin -c "DROP DATABASE IF EXISTS pybench" -c "CREATE DATABASE pybench"
    discard "$W/py"; mkdir -p "$W/py"
    cat > "$W/py/config.yaml" <<YAML
database: {url: "postgresql+psycopg2://chantal@/pybench?host=$W"}
storage: {base_path: $W/py/storage, published_path: $W/py/published}
download: {parallel: 10}
repositories:
YAML
    for r in small bulk meta100k; do
        printf '  - {id: %s, name: %s, type: rpm, feed: "%s/%s", mode: mirror, enabled: true}\n' "$r" "$r" "$BASE" "$r" >> "$W/py/config.yaml"
    done
    # Schema from its models, and the repository rows its `repo sync` would create (its
    # `repo check-updates`, used for the metadata phase, exits 0 doing nothing without them).
    "$PY" -c "
from sqlalchemy import create_engine
from sqlalchemy.orm import Session
from chantal.db.models import Base, Repository
e = create_engine('postgresql+psycopg2://chantal@/pybench?host=$W')
Base.metadata.create_all(e)
with Session(e) as s:
    for r in ('small', 'bulk', 'meta100k'):
        s.add(Repository(repo_id=r, name=r, type='rpm', feed='$BASE/' + r, enabled=True, mode='MIRROR'))
    s.commit()"
    # The wheel ships no Alembic migrations, so its startup schema check cannot run: the
    # schema was created from its models above.
    cat > "$W/py/run.py" <<'PYRUN'
import sys
import chantal.db.migrations as m
m.db_needs_upgrade = lambda url: False
from chantal.cli.main import cli
sys.exit(cli())
PYRUN
}
PYC=("$PY" "$W/py/run.py" --config "$W/py/config.yaml")
cat > "$W/dnf-sync" <<DNF
#!/bin/sh
exec dnf -q reposync --releasever=9 --setopt=reposdir=/dev/null --setopt=cachedir="$W/dnf/cache" \\
    --repofrompath="\$1,$BASE/\$1" --repo="\$1" -p "$W/dnf/out" --norepopath
DNF
chmod +x "$W/dnf-sync"

for round in $(seq 1 "$ROUNDS"); do
    log "round $round of $ROUNDS"
    # Backends take turns going first.
    order=$BACKENDS
    if [ $((round % 2)) -eq 0 ]; then order=$(printf '%s\n' $BACKENDS | tac | xargs); fi
    for repo in $REPOS; do
        for b in $order; do
            chantal_fresh "$b"; settle
            measure "chantal/$b" "$repo" cold env CHANTAL_CONFIG="$W/chantal/config.yaml" "$CHANTAL" -q repo sync --repo-id "$repo"
            measure "chantal/$b" "$repo" noop env CHANTAL_CONFIG="$W/chantal/config.yaml" "$CHANTAL" -q repo sync --repo-id "$repo"
        done
        [ "$COMPARE" != 0 ] || continue
        discard "$W/dnf"; settle
        measure dnf "$repo" cold "$W/dnf-sync" "$repo"
        measure dnf "$repo" noop "$W/dnf-sync" "$repo"
        [ "$COMPARE" = 1 ] || continue
        pychantal_fresh; settle
        measure python "$repo" cold "${PYC[@]}" repo sync --repo-id "$repo"
        measure python "$repo" noop "${PYC[@]}" repo sync --repo-id "$repo"
    done
    [ "$META" = 1 ] || continue
    for b in $order; do
        chantal_fresh "$b"; settle
        measure "chantal/$b" meta100k meta env CHANTAL_CONFIG="$W/chantal/config.yaml" "$CHANTAL" -q repo sync --repo-id meta100k --dry-run
        # The floor of any streaming parse: decompressing the same three files, in the same
        # state of the page cache, right after.
        measure zcat meta100k meta sh -c 'zcat "$@" >/dev/null' zcat \
            "$BENCH_DIR"/meta100k/repodata/*-primary.xml.gz \
            "$BENCH_DIR"/meta100k/repodata/*-filelists.xml.gz \
            "$BENCH_DIR"/meta100k/repodata/*-other.xml.gz
        # The whole on-demand sync: no package is downloaded, every one is committed.
        chantal_fresh "$b"
        printf 'download:\n  policy: on_demand\n' >> "$W/chantal/conf.d/meta100k.yaml"
        settle
        measure "chantal/$b" meta100k on_demand env CHANTAL_CONFIG="$W/chantal/config.yaml" "$CHANTAL" -q repo sync --repo-id meta100k
        measure "chantal/$b" meta100k on_demand-noop env CHANTAL_CONFIG="$W/chantal/config.yaml" "$CHANTAL" -q repo sync --repo-id meta100k
    done
    if [ "$COMPARE" = 1 ]; then
        pychantal_fresh; settle
        measure python meta100k meta "${PYC[@]}" repo check-updates --repo-id meta100k
    fi
done
if [ -f "$CS9" ]; then
    for round in $(seq 1 "$ROUNDS"); do
        measure chantal cs9 parse "$ROOT/target/release/examples/parse_primary" "$CS9"
    done
fi
rm -rf "$W/chantal" "$W/py" "$W/dnf" "$W/trash"

echo
echo "median of $ROUNDS rounds (wall seconds / peak RSS MB); bulk MB/s = 1024 MiB / cold seconds"
python3 - "$RESULTS" <<'PYSUM'
import sys, statistics, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    tool, repo, case, secs, mb = line.split("\t")
    rows[(repo, case, tool)].append((float(secs), int(mb)))
print("| repository | case | tool | wall (s) | peak RSS (MB) | rate |")
print("|---|---|---|---|---|---|")
for (repo, case, tool), v in sorted(rows.items()):
    s = statistics.median(x[0] for x in v)
    m = statistics.median(x[1] for x in v)
    rate = f"{1024 * 1.048576 / s:.0f} MB/s" if repo == "bulk" and case == "cold" and s > 0 else ""
    print(f"| {repo} | {case} | {tool} | {s:.2f} | {m:.0f} | {rate} |")
zcat = rows.get(("meta100k", "meta", "zcat"))
if zcat:
    floor = statistics.median(x[0] for x in zcat)
    for (repo, case, tool), v in sorted(rows.items()):
        if (repo, case) == ("meta100k", "meta") and tool.startswith("chantal/"):
            s = statistics.median(x[0] for x in v)
            print(f"meta: {tool} {s / floor:.2f}x zcat")
dnf = rows.get(("small", "cold", "dnf"))
if dnf:
    d = statistics.median(x[0] for x in dnf)
    for (repo, case, tool), v in sorted(rows.items()):
        if (repo, case) == ("small", "cold") and tool.startswith("chantal/"):
            s = statistics.median(x[0] for x in v)
            print(f"small: {tool} {d / s:.2f}x dnf")
PYSUM
