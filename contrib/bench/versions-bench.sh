#!/usr/bin/env bash
# Version and snapshot benchmark (issue: snapshots, retention, repodata):
#   - snapshot create on a 100,000-package repository (target <= 10 ms, independent of size);
#   - package search by name, capability and file in that catalogue (target <= 100 ms by name);
#   - snapshot diff of two 17,649-package versions (the real CS9 AppStream set; <= 0.3 s);
#   - repodata written for the CS9 AppStream set (<= 1.5 s);
#   - against the original Python chantal's `snapshot create` + `publish snapshot` on the same
#     3,000-package repository (synced by both, served by nginx on 127.0.0.1).
# chantal runs once per catalogue backend in $BACKENDS (default "postgresql sqlite").
# Usage: contrib/bench/versions-bench.sh [ROUNDS]   (env: BENCH_DIR, BACKENDS)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/contrib/lib/deps.sh"
. "$ROOT/contrib/bench/lib.sh"
ROUNDS=${1:-5}
W="$BENCH_DIR/work-versions"
PORT=18081

ensure_deps postgresql runuser createrepo_c rpmbuild nginx
bench_build
PY="$BENCH_DIR/pychantal/bin/python"
if [ ! -x "$BENCH_DIR/pychantal/bin/chantal" ]; then
    python3 -m venv "$BENCH_DIR/pychantal"
    "$BENCH_DIR/pychantal/bin/pip" install -q --ignore-requires-python chantal==1.6.5
fi

rm -rf "$W"
bench_pg_start
bench_nginx_start "$PORT" "$BENCH_DIR"
trap bench_stop EXIT

RESULTS="$W/results.tsv"; : > "$RESULTS"
measure() {
    local tool=$1 case=$2; shift 2
    local t; t=$(mktemp)
    if ! /usr/bin/time -f "%e %M" -o "$t" "$@" >"$W/last.out" 2>&1; then
        echo "FAILED: $tool $case" >&2; tail -5 "$W/last.out" >&2
    fi
    read -r secs kb < <(tail -n 1 "$t"); rm -f "$t"
    printf '%s\t%s\t%s\t%s\n' "$tool" "$case" "$secs" "$((kb / 1024))" >> "$RESULTS"
    printf '  %-18s %-28s %6.3f s %5d MB\n' "$tool" "$case" "$secs" "$((kb / 1024))" >&2
}

psql -q "host=$W user=chantal dbname=postgres" -c "CREATE DATABASE pyv"
# Per backend: the catalogue state (CS9 AppStream x2 versions, a 100,000-package repository)
# and the 3,000-package repository synced over HTTP, each in $W/<backend>/.
for b in $BACKENDS; do
    DB=$(bench_db "$b" versions)
    log "preparing catalogue state on $b (CS9 AppStream x2 versions, 100,000-package repository)"
    mkdir -p "$W/$b/chantal/conf.d"
    "$ROOT/target/release/examples/bench_versions" "$DB" "$W/$b/storage" "$CS9" | tee "$W/$b/prepare.out" >&2
    cat > "$W/$b/chantal/config.yaml" <<YAML
include: conf.d/*.yaml
storage: {base_path: $W/$b/storage}
database: {url: "$DB"}
YAML
    for r in cs9 big; do printf 'name: %s\nupstream:\n  url: file:///nonexistent/%s\n' "$r" "$r" > "$W/$b/chantal/conf.d/$r.yaml"; done
    printf 'name: small\nupstream:\n  url: http://127.0.0.1:%s/small\n' "$PORT" > "$W/$b/chantal/conf.d/small.yaml"
    CHANTAL_CONFIG="$W/$b/chantal/config.yaml" "$CHANTAL" -q repo sync --repo-id small
done

cat > "$W/py.yaml" <<YAML
database: {url: "postgresql+psycopg2://chantal@/pyv?host=$W"}
storage: {base_path: $W/py/storage, published_path: $W/py/published}
download: {parallel: 10}
repositories:
  - {id: small, name: small, type: rpm, feed: "http://127.0.0.1:$PORT/small", mode: mirror, enabled: true}
YAML
"$PY" -c "
from sqlalchemy import create_engine
from chantal.db.models import Base
Base.metadata.create_all(create_engine('postgresql+psycopg2://chantal@/pyv?host=$W'))"
cat > "$W/py.py" <<'PYRUN'
import sys
import chantal.db.migrations as m
m.db_needs_upgrade = lambda url: False  # the wheel ships no Alembic migrations
from chantal.cli.main import cli
sys.exit(cli())
PYRUN
PYC=("$PY" "$W/py.py" --config "$W/py.yaml")
"${PYC[@]}" repo sync --repo-id small >/dev/null

for round in $(seq 1 "$ROUNDS"); do
    for b in $BACKENDS; do
        export CHANTAL_CONFIG="$W/$b/chantal/config.yaml"
        measure "chantal/$b" "snapshot create (100k pkgs)" "$CHANTAL" -q snapshot create --repo-id big --name "b$round"
        measure "chantal/$b" "snapshot create (3k pkgs)" "$CHANTAL" -q snapshot create --repo-id small --name "s$round"
        measure "chantal/$b" "snapshot diff (2x17,649)" "$CHANTAL" -q snapshot diff --from cs9-v1 --to latest --repo-id cs9
        # A catalogue of 117,649 packages (big and CS9): by name, by capability, by file.
        measure "chantal/$b" "package search name (117k pkgs)" "$CHANTAL" -q package search 'gen-09999*'
        measure "chantal/$b" "package search --provides (117k)" "$CHANTAL" -q package search --provides 'libcurl.so.4()(64bit)'
        measure "chantal/$b" "package search --file (117k)" "$CHANTAL" -q package search --file /usr/bin/gcc
    done
    measure python "snapshot create (3k pkgs)" "${PYC[@]}" snapshot create --repo-id small --name "s$round"
    measure python "publish snapshot (3k pkgs)" "${PYC[@]}" publish snapshot --snapshot "s$round" --repo-id small
done
echo
for b in $BACKENDS; do echo "$b:"; grep -hE "written in|snapshot create" "$W/$b/prepare.out"; done
echo "median of $ROUNDS rounds (wall seconds incl. process start / peak RSS MB)"
python3 - "$RESULTS" <<'PYSUM'
import sys, statistics, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    tool, case, secs, mb = line.rstrip("\n").split("\t")
    rows[(case, tool)].append((float(secs), int(mb)))
print("| case | tool | wall (s) | peak RSS (MB) |")
print("|---|---|---|---|")
for (case, tool), v in sorted(rows.items()):
    print(f"| {case} | {tool} | {statistics.median(x[0] for x in v):.3f} | {statistics.median(x[1] for x in v):.0f} |")
PYSUM
