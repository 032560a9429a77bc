# Installs what chantal's scripts need on a fresh Debian/Ubuntu or RHEL-family machine.
# Sourced by contrib/test.sh and contrib/quickstart.sh; needs root (or sudo) only when
# something is missing.

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        die "need root to run: $*"
    fi
}

# Prints the directory holding PostgreSQL's server binaries (initdb, pg_ctl), if any.
pg_bindir() {
    if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
        dirname "$(command -v pg_ctl)"; return 0
    fi
    local d
    for d in $(ls -d /usr/lib/postgresql/*/bin /usr/pgsql-*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$d/initdb" ]; then echo "$d"; return 0; fi
    done
    return 1
}

APT_UPDATED=
pkg_install() {
    if command -v apt-get >/dev/null; then
        if [ -z "$APT_UPDATED" ]; then
            as_root apt-get update -qq >&2
            APT_UPDATED=1
        fi
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
    elif command -v dnf >/dev/null; then
        as_root dnf install -y -q "$@" >&2
    else
        die "no apt-get or dnf: install $* by hand"
    fi
}

# ensure_deps TOOL... : installs the packages providing each missing tool.
ensure_deps() {
    local missing=() tool
    for tool in "$@"; do
        case "$tool" in
            postgresql) pg_bindir >/dev/null || missing+=(postgresql) ;;
            nginx) [ -x /usr/sbin/nginx ] || command -v nginx >/dev/null || missing+=(nginx) ;;
            # `dnf download`, which the end-to-end tests use, is a plugin.
            dnf-plugins-core) { command -v dnf >/dev/null && dnf download --help >/dev/null 2>&1; } \
                || missing+=(dnf-plugins-core) ;;
            *) command -v "$tool" >/dev/null || missing+=("$tool") ;;
        esac
    done
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing: ${missing[*]}"
        local pkgs=() m
        for m in "${missing[@]}"; do
            if command -v dnf >/dev/null && ! command -v apt-get >/dev/null; then
                case "$m" in
                    postgresql) pkgs+=(postgresql-server) ;;
                    createrepo_c) pkgs+=(createrepo_c) ;;
                    rpmbuild) pkgs+=(rpm-build) ;;
                    rpmsign) pkgs+=(rpm-sign) ;;
                    gpg) pkgs+=(gnupg2) ;;
                    runuser|setsid) pkgs+=(util-linux) ;;
                    fusermount3) pkgs+=(fuse3) ;;
                    faketime) pkgs+=(libfaketime) ;;
                    systemd-nspawn) pkgs+=(systemd-container) ;;
                    *) pkgs+=("$m") ;;
                esac
            else
                case "$m" in
                    createrepo_c) pkgs+=(createrepo-c) ;;
                    rpmbuild|rpmsign) pkgs+=(rpm) ;;
                    runuser|setsid) pkgs+=(util-linux) ;;
                    fusermount3) pkgs+=(fuse3) ;;
                    systemd-nspawn) pkgs+=(systemd-container) ;;
                    *) pkgs+=("$m") ;;
                esac
            fi
        done
        pkg_install "${pkgs[@]}"
    fi
    command -v cargo >/dev/null || die "cargo not found: install Rust (https://rustup.rs) first"
}
