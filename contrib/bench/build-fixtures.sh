#!/usr/bin/env bash
# Builds the benchmark upstreams once (cached in $BENCH_DIR, default /var/tmp/chantal-bench):
#   small/  3,000 small RPMs (subpackages of one spec, one rpmbuild run) + createrepo_c
#   bulk/   8 RPMs of 128 MiB each (uncompressed payload of random data) + createrepo_c
#   meta100k/  repodata for 100,000 generated packages (no package files)
#   fs50k/  50,000 packages of 4 KiB and one of 1 GiB, flat in Packages/ (chantal-fs bench)
set -euo pipefail
BENCH_DIR=${BENCH_DIR:-/var/tmp/chantal-bench}
N_SMALL=${N_SMALL:-3000}
mkdir -p "$BENCH_DIR"
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$BENCH_DIR"

if [ ! -f small/repodata/repomd.xml ]; then
    echo "building $N_SMALL small RPMs" >&2
    top=$(mktemp -d); mkdir -p "$top/SPECS"
    {
        printf 'Name: benchsmall\nVersion: 1.0\nRelease: 1\nSummary: bench\nLicense: MIT\nBuildArch: noarch\n'
        printf '%%description\nbench\n%%files\n'
        for i in $(seq 1 "$N_SMALL"); do
            printf '%%package -n bench-%05d\nSummary: bench %d\n%%description -n bench-%05d\nbench package %d\n' "$i" "$i" "$i" "$i"
            printf '%%files -n bench-%05d\n/usr/share/bench/%05d\n' "$i" "$i"
        done
        printf '%%install\nmkdir -p %%{buildroot}/usr/share/bench\nfor i in $(seq -f %%05g 1 %s); do head -c 2048 /dev/urandom > %%{buildroot}/usr/share/bench/$i; done\n' "$N_SMALL"
    } > "$top/SPECS/bench.spec"
    rpmbuild --quiet --define "_topdir $top" --define "_binary_payload w0.ufdio" -bb "$top/SPECS/bench.spec"
    rm -rf small; mkdir -p small/Packages
    find "$top/RPMS" -name 'bench-*.rpm' -exec mv {} small/Packages/ \;
    rm -rf "$top"
    createrepo_c --quiet --no-database small
fi

if [ ! -f bulk/repodata/repomd.xml ]; then
    echo "building 8 x 128 MiB RPMs" >&2
    top=$(mktemp -d); mkdir -p "$top/SPECS"
    for i in 1 2 3 4 5 6 7 8; do
        cat > "$top/SPECS/bulk$i.spec" <<SPEC
Name: bulk$i
Version: 1.0
Release: 1
Summary: bench bulk
License: MIT
BuildArch: noarch
%description
bench
%install
mkdir -p %{buildroot}/usr/share/bulk
head -c 134217728 /dev/urandom > %{buildroot}/usr/share/bulk/data$i
%files
/usr/share/bulk/data$i
SPEC
        rpmbuild --quiet --define "_topdir $top" --define "_binary_payload w0.ufdio" \
            --define "__os_install_post %{nil}" -bb "$top/SPECS/bulk$i.spec"
    done
    rm -rf bulk; mkdir -p bulk/Packages
    find "$top/RPMS" -name '*.rpm' -exec mv {} bulk/Packages/ \;
    rm -rf "$top"
    createrepo_c --quiet --no-database bulk
fi

if [ ! -f meta100k/repodata/repomd.xml ]; then
    echo "generating repodata for 100,000 packages" >&2
    python3 "$HERE/gen_meta.py" 100000 meta100k
fi
if [ ! -f fs50k/repodata/repomd.xml ]; then
    echo "generating 50,000 small packages and one of 1 GiB" >&2
    rm -rf fs50k
    python3 "$HERE/gen_files.py" fs50k 50000 4096 1073741824
fi
echo "$BENCH_DIR"
