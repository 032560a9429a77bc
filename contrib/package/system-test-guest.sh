#!/usr/bin/env bash
# Runs inside the guest that contrib/package/system-test.sh boots (Debian, systemd as init, a
# private network): what docs/INSTALL.md tells an operator to do, then checks that it worked.
# Usage: system-test-guest.sh PACKAGE (a .deb or an .rpm); /srv/upstream (-> upstream-1, later
# upstream-2) is the upstream.
set -euo pipefail
PKG=$1
say() { printf '  guest: %s\n' "$*" >&2; }
fail() { printf '  guest: FAIL: %s\n' "$*" >&2; exit 1; }

# The upstream: the guest's nginx on 127.0.0.1:8081 (the sync unit's network path, not file://).
cat > /etc/nginx/sites-enabled/upstream <<'NGINX'
server {
    listen 127.0.0.1:8081;
    root /srv/upstream;
}
NGINX
systemctl reload nginx

case "$PKG" in
    *.deb)
        say "dpkg -i $(basename "$PKG")"
        # The package's dependencies are all in the guest: dpkg alone, no network.
        dpkg -i "$PKG" > /tmp/install.log 2>&1 || { cat /tmp/install.log >&2; fail "dpkg -i"; }
        ;;
    *.rpm)
        say "rpm -i $(basename "$PKG")"
        # The guest's rpm database is empty (Debian's packages are in dpkg's): fuse3 and the C
        # library are there all the same. The %post scriptlet makes the user and directories.
        rpm -i --nodeps "$PKG" > /tmp/install.log 2>&1 || { cat /tmp/install.log >&2; fail "rpm -i"; }
        ;;
esac
getent passwd chantal > /dev/null || fail "no chantal user after installing"
[ "$(stat -c %U:%a /var/lib/chantal)" = chantal:750 ] || fail "/var/lib/chantal is $(stat -c %U:%a /var/lib/chantal)"
[ "$(stat -c %U /srv/chantal)" = chantal ] || fail "/srv/chantal is not chantal's"
systemctl is-enabled chantal-fs.service >/dev/null 2>&1 && fail "installing enabled chantal-fs"

# As INSTALL.md says: a repository file, the units, the first sync now, the nginx site.
cat > /etc/chantal/conf.d/local.yaml <<'YAML'
name: local
type: rpm
upstream:
  url: http://127.0.0.1:8081/
YAML
say "systemctl enable --now chantal-sync.timer chantal-fs"
systemctl enable --now chantal-sync.timer chantal-fs 2>/dev/null
say "systemctl start chantal-sync.service"
systemctl start chantal-sync.service || fail "the first sync failed"
[ "$(systemctl show -P Result chantal-sync.service)" = success ] || fail "chantal-sync.service: $(systemctl show -P Result chantal-sync.service)"
# The .deb's site is enabled by a link (as on Debian); the .rpm's is active where it lies,
# /etc/nginx/conf.d/ (which Debian's nginx.conf includes too). The stock default server goes.
case "$PKG" in
    *.deb) ln -s /etc/nginx/sites-available/chantal /etc/nginx/sites-enabled/chantal ;;
    *.rpm) [ -f /etc/nginx/conf.d/chantal.conf ] || fail "no /etc/nginx/conf.d/chantal.conf" ;;
esac
rm -f /etc/nginx/sites-enabled/default
systemctl reload nginx

# chantal-fs was started before the first sync made the catalogue: it must serve it now.
wait_served() {  # URL FILE: until nginx serves FILE's bytes at URL (10 s)
    local i
    for i in $(seq 1 100); do
        if curl -fsS -o /tmp/got "$1" 2>/dev/null && cmp -s /tmp/got "$2"; then return 0; fi
        sleep 0.1
    done
    return 1
}
systemctl is-active --quiet chantal-fs.service || fail "chantal-fs.service is $(systemctl is-active chantal-fs.service)"
mountpoint -q /srv/chantal || fail "nothing mounted on /srv/chantal"
wait_served http://127.0.0.1/local/latest/Packages/hello-1.0-1.noarch.rpm \
    /srv/upstream-1/Packages/hello-1.0-1.noarch.rpm \
    || fail "nginx does not serve latest/Packages/hello-1.0-1.noarch.rpm through the unit's mount"
say "nginx serves every file of latest through the unit's mount"
check_tree() {  # UPSTREAM: every file of the mount's latest/, through nginx, byte for byte; its
                # packages are the upstream's (source packages are not synced by default)
    local f n=0
    while IFS= read -r f; do
        curl -fsS -o /tmp/got "http://127.0.0.1/local/latest/$f" || fail "GET latest/$f"
        cmp -s /tmp/got "/srv/chantal/local/latest/$f" || fail "latest/$f: nginx and the mount differ"
        case "$f" in
            Packages/*) cmp -s /tmp/got "$1/$f" || fail "latest/$f differs from the upstream's" ;;
        esac
        n=$((n + 1))
    done < <(cd /srv/chantal/local/latest && find . -type f -printf '%P\n' | sort)
    local want; want=$(cd "$1" && find Packages -name '*.rpm' ! -name '*.src.rpm' | wc -l)
    [ "$(cd /srv/chantal/local/latest && find Packages -type f | wc -l)" -eq "$want" ] \
        || fail "latest has not the $want binary packages of $1"
    [ "$n" -gt "$want" ] || fail "latest has no repodata"
}
check_tree /srv/upstream-1
curl -fsS http://127.0.0.1/local/ | grep -q 'href="latest/"' || fail "no directory listing of /local/"
curl -fsS -o /dev/null http://127.0.0.1/local/latest/Packages/hello-1.1-1.noarch.rpm 2>/dev/null \
    && fail "hello-1.1 served before it is in the upstream"

say "the units' confinement, as the running processes have it"
pid=$(systemctl show -P MainPID chantal-fs.service)
[ "$(ps -o user= -p "$pid")" = chantal ] || fail "chantal-fs runs as $(ps -o user= -p "$pid")"
status=$(cat "/proc/$pid/status")
grep -qx $'NoNewPrivs:\t1' <<<"$status" || fail "chantal-fs may gain privileges"
grep -qx $'Seccomp:\t2' <<<"$status" || fail "chantal-fs has no system call filter"
# CAP_SYS_ADMIN (bit 21) and nothing else, effective and bounding.
grep -qx $'CapEff:\t0000000000200000' <<<"$status" || fail "chantal-fs capabilities: $(grep CapEff <<<"$status")"
grep -qx $'CapBnd:\t0000000000200000' <<<"$status" || fail "chantal-fs bounding set: $(grep CapBnd <<<"$status")"
[ "$(stat -c %U /var/lib/chantal/catalog.db)" = chantal ] || fail "the catalogue is not chantal's"
systemd-analyze security --threshold=20 chantal-sync.service > /tmp/sa-sync 2>&1 \
    || { tail -n 3 /tmp/sa-sync >&2; fail "chantal-sync.service exposure above 2.0"; }
systemd-analyze security --threshold=40 chantal-fs.service > /tmp/sa-fs 2>&1 \
    || { tail -n 3 /tmp/sa-fs >&2; fail "chantal-fs.service exposure above 4.0"; }
exposure() { sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' "$1"; }
say "systemd-analyze security: chantal-sync.service $(exposure /tmp/sa-sync), chantal-fs.service $(exposure /tmp/sa-fs)"
systemctl list-timers --all --no-legend chantal-sync.timer | grep -q chantal-sync.timer \
    || fail "chantal-sync.timer is not scheduled"

say "a new upstream version, synced by the unit, is served by the running mount"
# With metrics, through the drop-in INSTALL.md gives for a path outside the storage.
mkdir -p /var/lib/prometheus/node-exporter /etc/systemd/system/chantal-sync.service.d
chown chantal /var/lib/prometheus/node-exporter
printf '[Service]\nReadWritePaths=/var/lib/prometheus/node-exporter\n' \
    > /etc/systemd/system/chantal-sync.service.d/metrics.conf
printf 'metrics:\n  textfile: /var/lib/prometheus/node-exporter/chantal.prom\n' >> /etc/chantal/config.yaml
systemctl daemon-reload
ln -sfn upstream-2 /srv/upstream
systemctl start chantal-sync.service || fail "the second sync failed"
grep -q '^chantal_sync_last_success_timestamp_seconds{repository="local"} ' /var/lib/prometheus/node-exporter/chantal.prom \
    || fail "no metrics written by the sync unit"
wait_served http://127.0.0.1/local/latest/Packages/hello-1.1-1.noarch.rpm \
    /srv/upstream-2/Packages/hello-1.1-1.noarch.rpm || fail "the new version is not served"
check_tree /srv/upstream-2
curl -fsS http://127.0.0.1/local/versions/ | grep -q 'href="2/"' || fail "no versions/2/ listed"
runuser -u chantal -- chantal status > /tmp/status || { cat /tmp/status >&2; fail "chantal status"; }
runuser -u chantal -- chantal pool verify > /tmp/verify || { cat /tmp/verify >&2; fail "chantal pool verify"; }

say "on demand: chantal-fetchd.service fetches what a client first reads through nginx"
# Source packages only (and noarch, always kept, which the pool holds already): the one file
# the pool lacks is the source package, left on demand.
cat > /etc/chantal/conf.d/od.yaml <<'YAML'
name: od
type: rpm
upstream:
  url: http://127.0.0.1:8081/
rpm:
  architectures: [src]
download:
  policy: on_demand
YAML
systemctl enable --now chantal-fetchd.service 2>/dev/null
systemctl start chantal-sync.service || fail "the sync with an on-demand repository failed"
runuser -u chantal -- chantal repo show --repo-id od | grep -q 'on demand, not fetched yet' \
    || fail "repo show does not report the on-demand package"
src=Packages/tool-3.0-1.src.rpm
for i in $(seq 1 100); do [ -S /var/lib/chantal/run/fetchd.sock ] && break; sleep 0.1; done
[ "$(stat -c %U:%a /var/lib/chantal/run/fetchd.sock)" = chantal:600 ] \
    || fail "the fetcher's socket is $(stat -c %U:%a /var/lib/chantal/run/fetchd.sock)"
wait_served "http://127.0.0.1/od/latest/$src" "/srv/upstream-2/$src" \
    || fail "nginx does not serve the on-demand $src"
runuser -u chantal -- chantal repo show --repo-id od | grep -q 'on demand, not fetched yet' \
    && fail "the fetched package is still on demand"
pid=$(systemctl show -P MainPID chantal-fetchd.service)
[ "$(ps -o user= -p "$pid")" = chantal ] || fail "chantal fetchd runs as $(ps -o user= -p "$pid")"
status=$(cat "/proc/$pid/status")
grep -qx $'CapEff:\t0000000000000000' <<<"$status" || fail "chantal fetchd has capabilities"
grep -qx $'Seccomp:\t2' <<<"$status" || fail "chantal fetchd has no system call filter"
systemd-analyze security --threshold=20 chantal-fetchd.service > /tmp/sa-fetchd 2>&1 \
    || { tail -n 3 /tmp/sa-fetchd >&2; fail "chantal-fetchd.service exposure above 2.0"; }
say "systemd-analyze security: chantal-fetchd.service $(exposure /tmp/sa-fetchd)"

say "systemctl restart chantal-fs: nginx serves the new mount"
systemctl restart chantal-fs.service
wait_served http://127.0.0.1/local/latest/Packages/hello-1.1-1.noarch.rpm \
    /srv/upstream-2/Packages/hello-1.1-1.noarch.rpm || fail "nginx does not serve through the restarted mount"
check_tree /srv/upstream-2

say "systemctl stop chantal-fs unmounts"
systemctl stop chantal-fs.service
mountpoint -q /srv/chantal && fail "/srv/chantal still mounted after stopping chantal-fs"
exit 0
