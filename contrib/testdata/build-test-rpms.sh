#!/usr/bin/env bash
# Builds the small RPMs checked in under tests/data/rpms: several architectures, a source
# package, and version sequences (epoch bump, ~rc) for retention tests. Needs rpmbuild.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT="$ROOT/tests/data/rpms"
TOP=$(mktemp -d)
trap 'rm -rf "$TOP"' EXIT
mkdir -p "$OUT" "$TOP/SPECS"

spec() {  # name version release epoch arch summary
    local name=$1 version=$2 release=$3 epoch=$4 arch=$5
    cat > "$TOP/SPECS/$name.spec" <<SPEC
Name:           $name
Version:        $version
Release:        $release
$( [ "$epoch" != 0 ] && echo "Epoch:          $epoch" )
Summary:        chantal test package $name
License:        MIT
$( [ "$arch" = noarch ] && echo "BuildArch:      noarch" )
%description
Test package for chantal's sync and retention tests.
%install
mkdir -p %{buildroot}/usr/share/chantal-test
echo "$name $version-$release" > %{buildroot}/usr/share/chantal-test/$name
%files
/usr/share/chantal-test/$name
%changelog
* Mon Jan 01 2024 chantal tests <tests@chantal.invalid> - $version-$release
- Build for tests
SPEC
    local target=()
    [ "$arch" != noarch ] && target=(--target "$arch")
    rpmbuild --quiet --define "_topdir $TOP" --define "_binary_payload w0.ufdio" \
        --define "__gpg /usr/bin/gpg" "${target[@]}" -bb "$TOP/SPECS/$name.spec" >/dev/null
}

spec hello 1.0 1 0 noarch
spec hello 1.1 1 0 noarch
spec hello 2.0~rc1 1 0 noarch
spec tool 2.0 1 0 x86_64
spec tool 2.0 1 0 aarch64
spec tool 3.0 1 1 x86_64
spec lib 1.0 1 0 x86_64
rpmbuild --quiet --define "_topdir $TOP" -bs "$TOP/SPECS/tool.spec" >/dev/null 2>&1 || true
find "$TOP/RPMS" "$TOP/SRPMS" -name '*.rpm' -exec cp {} "$OUT/" \;
ls "$OUT"
