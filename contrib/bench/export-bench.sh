#!/usr/bin/env bash
# Export benchmark (issue: hardlink export): `chantal repo export` of a 3,000-package version
# (the small fixture, synced from nginx) and of the 17,649-package CS9 AppStream version
# (catalogue rows from common/examples/bench_versions.rs; its pool files are created empty,
# which costs a hardlink exactly what a full file does). Targets: <= 0.2 s and <= 1 s.
# Usage: contrib/bench/export-bench.sh [ROUNDS]   (env: BENCH_DIR)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/contrib/lib/deps.sh"
. "$ROOT/contrib/bench/lib.sh"
ROUNDS=${1:-5}
W="$BENCH_DIR/work-export"
PORT=18083

ensure_deps postgresql runuser createrepo_c rpmbuild nginx
bench_build
rm -rf "$W"
bench_pg_start
bench_nginx_start "$PORT" "$BENCH_DIR"
trap bench_stop EXIT

psql -q "host=$W user=chantal dbname=postgres" -c "CREATE DATABASE export"
DB="host=$W user=chantal dbname=export"
"$ROOT/target/release/examples/bench_versions" "$DB" "$W/storage" "$CS9" > "$W/prepare.out"
psql -At "$DB" -c "SELECT DISTINCT b.path FROM blobs b" | while read -r p; do
    f="$W/storage/data/$p"; [ -e "$f" ] || { mkdir -p "$(dirname "$f")"; : > "$f"; }
done
mkdir -p "$W/chantal/conf.d"
cat > "$W/chantal/config.yaml" <<YAML
include: conf.d/*.yaml
storage: {base_path: $W/storage}
database: {url: "$DB"}
YAML
printf 'name: cs9\nupstream:\n  url: file:///nonexistent/cs9\npublish:\n  latest_path: %s/published/cs9\n' "$W" > "$W/chantal/conf.d/cs9.yaml"
printf 'name: small\nupstream:\n  url: http://127.0.0.1:%s/small\npublish:\n  latest_path: %s/published/small\n' "$PORT" "$W" > "$W/chantal/conf.d/small.yaml"
export CHANTAL_CONFIG="$W/chantal/config.yaml"
"$CHANTAL" -q repo sync --repo-id small

RESULTS="$W/results.tsv"; : > "$RESULTS"
for round in $(seq 1 "$ROUNDS"); do
    for r in small cs9; do
        t=$(mktemp)
        /usr/bin/time -f "%e %M" -o "$t" "$CHANTAL" repo export --repo-id "$r" > "$W/last.out"
        read -r secs kb < <(tail -n 1 "$t"); rm -f "$t"
        inner=$(grep -o 'files in [0-9.]* s' "$W/last.out" | awk '{print $3}')
        printf '%s\t%s\t%s\t%s\n' "$r" "$secs" "$inner" "$((kb / 1024))" >> "$RESULTS"
        printf '  %-6s wall %6.3f s  export %6.3f s  %4d MB  (%s)\n' "$r" "$secs" "$inner" "$((kb / 1024))" "$(cat "$W/last.out")" >&2
    done
done
echo "median of $ROUNDS rounds"
python3 - "$RESULTS" <<'PYSUM'
import sys, statistics, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    r, wall, inner, mb = line.split()
    rows[r].append((float(wall), float(inner), int(mb)))
print("| repository | packages | repo export wall (s) | export itself (s) | peak RSS (MB) |")
print("|---|---|---|---|---|")
for r, n in (("small", "3,000"), ("cs9", "17,649")):
    v = rows[r]
    print(f"| {r} | {n} | {statistics.median(x[0] for x in v):.3f} | {statistics.median(x[1] for x in v):.3f} | {statistics.median(x[2] for x in v):.0f} |")
PYSUM
