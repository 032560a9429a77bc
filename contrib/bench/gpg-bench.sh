#!/usr/bin/env bash
# Signature checking benchmark (issue: trust): the 3,000-package benchmark repository, every
# package signed (RSA 4096, as Red Hat's release key), served by nginx on 127.0.0.1; chantal's
# cold sync and no-op resync with rpm.gpgcheck off and on, interleaved (the order alternates
# per round), each cold run from an empty pool and catalogue after `sync` and a settle pause.
# The signed copy and its key are made once, with gpg and rpmsign, in $BENCH_DIR.
# Last line: `gpgcheck: cold +P% noop +Q%` (medians, on against off).
# Usage: contrib/bench/gpg-bench.sh [ROUNDS]   (env: BENCH_DIR, SETTLE seconds, BACKENDS)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/contrib/lib/deps.sh"
. "$ROOT/contrib/bench/lib.sh"
ROUNDS=${1:-5}
SETTLE=${SETTLE:-10}
PORT=18084
W="$BENCH_DIR/work-gpg"

ensure_deps postgresql runuser createrepo_c rpmbuild rpmsign gpg nginx
bench_build
SIGNED="$BENCH_DIR/small-signed"
KEY="$BENCH_DIR/small-signed.asc"
if [ ! -f "$SIGNED/repodata/repomd.xml" ]; then
    log "signing the 3,000 benchmark packages (once)"
    GH="$BENCH_DIR/gpg-home"
    rm -rf "$GH" "$SIGNED"; mkdir -p "$GH" "$SIGNED"; chmod 700 "$GH"
    gpg --homedir "$GH" --batch --pinentry-mode loopback --passphrase '' \
        --quick-gen-key "chantal bench <bench@chantal.test>" rsa4096 sign never 2>/dev/null
    FPR=$(gpg --homedir "$GH" --with-colons --list-keys bench@chantal.test | awk -F: '/^fpr/{print $10; exit}')
    gpg --homedir "$GH" --armor --export "$FPR" > "$KEY"
    cp -r "$BENCH_DIR/small/Packages" "$SIGNED/"
    find "$SIGNED/Packages" -name '*.rpm' -print0 | xargs -0 -n 500 rpmsign \
        --define "_gpg_path $GH" --define "_gpg_name $FPR" --define "__gpg /usr/bin/gpg" \
        --define "_gpg_sign_cmd_extra_args --batch" --addsign 2>&1 >/dev/null \
        | { grep -v 'GPG_TTY' || true; } >&2
    createrepo_c --quiet --no-database "$SIGNED"
    # The agent rpmsign started would otherwise stay, polling, under every later measurement.
    gpgconf --homedir "$GH" --kill gpg-agent
fi

mkdir -p "$W"
bench_pg_start
bench_nginx_start "$PORT" "$BENCH_DIR" 2>/dev/null || true
trap bench_stop EXIT
RESULTS="$W/results.tsv"
: > "$RESULTS"

# fresh BACKEND MODE: an empty pool and catalogue, the repository with gpgcheck MODE (on/off).
fresh() {
    local url; url=$(bench_db "$1" gpgbench)
    discard "$W/chantal"; mkdir -p "$W/chantal/conf.d"
    cat > "$W/chantal/config.yaml" <<YAML
include: conf.d/*.yaml
storage: {base_path: $W/chantal/storage}
database: {url: "$url"}
YAML
    printf 'name: small\nupstream:\n  url: http://127.0.0.1:%s/small-signed\n' "$PORT" \
        > "$W/chantal/conf.d/small.yaml"
    if [ "$2" = on ]; then
        printf 'rpm:\n  gpgcheck: true\n  gpgkeys: [%s]\n' "$KEY" >> "$W/chantal/conf.d/small.yaml"
    fi
    CHANTAL_CONFIG="$W/chantal/config.yaml" "$CHANTAL" -q init
}

for round in $(seq 1 "$ROUNDS"); do
    log "round $round of $ROUNDS"
    if [ $((round % 2)) -eq 1 ]; then modes="off on"; else modes="on off"; fi
    for b in $BACKENDS; do
        for m in $modes; do
            fresh "$b" "$m"
            settle
            measure "gpgcheck-$m/$b" small cold env CHANTAL_CONFIG="$W/chantal/config.yaml" \
                "$CHANTAL" -q repo sync --repo-id small
            measure "gpgcheck-$m/$b" small noop env CHANTAL_CONFIG="$W/chantal/config.yaml" \
                "$CHANTAL" -q repo sync --repo-id small
        done
    done
done

echo "median of $ROUNDS rounds (wall seconds / peak RSS MB)"
echo "| tool | case | wall (s) | peak RSS (MB) |"
echo "|---|---|---|---|"
python3 - "$RESULTS" <<'PY'
import statistics, sys, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    tool, repo, case, secs, mb = line.split("\t")
    rows[(tool, case)].append((float(secs), int(mb)))
med = {}
for (tool, case), v in sorted(rows.items()):
    s = statistics.median(x[0] for x in v)
    m = statistics.median(x[1] for x in v)
    med[(tool, case)] = s
    print(f"| {tool} | {case} | {s:.2f} | {m:.0f} |")
def pct(case):
    on = [v for (t, c), v in med.items() if c == case and t.startswith("gpgcheck-on")]
    off = [v for (t, c), v in med.items() if c == case and t.startswith("gpgcheck-off")]
    return 100 * (sum(on) / max(sum(off), 1e-9) - 1)
print(f"gpgcheck: cold {pct('cold'):+.0f}% noop {pct('noop'):+.0f}%")
PY
