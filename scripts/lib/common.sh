# Shared by hydra's scripts: paths, package lists, the build. Source it; do not run it.
# shellcheck shell=bash

HYDRA_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HYDRA_PREFIX=/usr/lib/hydra          # the programs (sudoers names these paths)
HYDRA_JUPYTER_ENV=/opt/hydra/jupyter       # the users' Python environment (server.python_env)
HYDRA_TEST_ENV=/opt/hydra/test-env         # pytest and friends, for the integration tests
HYDRA_SWIFT=${HYDRA_SWIFT:-$(command -v swift || echo /opt/swift/usr/bin/swift)}

# What a site needs at run time (binutils: install-site strips the programs), and what building
# needs besides: the C libraries, and what the Swift toolchain itself runs and links with.
HYDRA_RUNTIME_PACKAGES=(apache2 sudo git libfcgi0ldbl libldap-2.5-0 python3-venv ca-certificates
    binutils)
HYDRA_BUILD_PACKAGES=(libfcgi-dev libldap-dev libssl-dev pkg-config
    libc6-dev libgcc-12-dev libstdc++-12-dev libcurl4 libedit2 libncurses6 libsqlite3-0 libxml2)
# The demo: its directory, and curl to check that the site answers.
HYDRA_DEMO_PACKAGES=(slapd ldap-utils curl)
# The end-to-end tests add a real browser, tcpdump (what crosses the Slurm nodes' links), a KDC
# (kadmin.local makes its principals) with Kerberos clients, sshd and systemd's tools
# (systemd-analyze verifies the unit hydra would start; systemd need not be running).
# The Slurm test cluster (scripts/slurm-cluster; apt_install starts none of its daemons).
HYDRA_SLURM_PACKAGES=(munge slurmctld slurmd slurm-client)
HYDRA_TEST_PACKAGES=(slapd ldap-utils curl psmisc procps iproute2 util-linux wrk netbase
    tcpdump chromium chromium-driver fonts-dejavu-core krb5-kdc krb5-admin-server krb5-user libapache2-mod-auth-gssapi
    openssh-server systemd "${HYDRA_SLURM_PACKAGES[@]}")
# The VM tier (Tests/VM): qemu in software mode, an image made with debootstrap (and units
# enabled in it with systemctl --root), ssh into it.
HYDRA_VM_PACKAGES=(qemu-system-x86 qemu-utils debootstrap e2fsprogs systemd openssh-client)

# Building the Debian package (scripts/package; install-demo builds it), and checking it.
HYDRA_PACKAGE_BUILD_PACKAGES=(debhelper dpkg-dev)
HYDRA_PACKAGE_PACKAGES=("${HYDRA_PACKAGE_BUILD_PACKAGES[@]}" lintian)

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

require_root() { [ "$(id -u)" = 0 ] || die "run this as root (sudo $0)"; }

# HYDRA_OFFLINE=1: the packages are already there (an offline machine, or the test sandbox,
# which has no network); apt-get and pip are skipped.
apt_install() {
    if [ "${HYDRA_OFFLINE:-}" = 1 ]; then
        dpkg-query -W "$@" >/dev/null 2>&1 || die "HYDRA_OFFLINE=1, but some of these are not installed: $*"
        return 0
    fi
    say "apt-get install $*"
    export DEBIAN_FRONTEND=noninteractive
    # Another apt-get may be running (another script, another person): wait for its lock.
    # A session-wide apt-get update, once per run of a script.
    if [ -z "${HYDRA_APT_UPDATED:-}" ]; then
        apt-get -o DPkg::Lock::Timeout=600 update -qq
        HYDRA_APT_UPDATED=1
    fi
    # munged, slurmctld and slurmd run only in the tests' sandbox, started by scripts/slurm-cluster
    # with its own key and configuration: their packages' scripts must not start them on this
    # machine (where nothing stops invoke-rc.d: a host with systemd or sysvinit, or a root
    # without a policy-rc.d). For this apt-get a policy-rc.d refuses just those three; one the
    # machine already has is left alone (it decides), and ours is removed afterwards.
    local policy=/usr/sbin/policy-rc.d mark="# hydra apt_install: no Slurm daemon started by dpkg" ours=0 status=0
    if [[ " $* " =~ \ (munge|slurmctld|slurmd|slurm-client)\  ]] && { [ ! -e "$policy" ] || grep -qxF "$mark" "$policy"; }; then
        # Asked as "[--quiet] NAME ACTION" (invoke-rc.d) or "NAME.service ACTION" (deb-systemd-invoke).
        printf '#!/bin/sh\n%s\n[ "$1" = --quiet ] && shift\ncase "${1%%.service}" in munge | slurmctld | slurmd) exit 101 ;; esac\nexit 0\n' \
            "$mark" >"$policy"
        chmod 0755 "$policy"
        ours=1
    fi
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "$@" >/dev/null || status=$?
    if [ "$ours" = 1 ]; then rm -f "$policy"; fi
    return "$status"
}

# The users' Jupyter environment, as a site makes it (scripts/hydra-setup); with
# HYDRA_OFFLINE=1 nothing is fetched.
ensure_jupyter_env() {
    "$HYDRA_REPO/scripts/hydra-setup" jupyter --env "$HYDRA_JUPYTER_ENV" --upgrade $([ "${HYDRA_OFFLINE:-}" != 1 ] || echo --no-install)
}

# Release build of hydra's programs; prints the folder holding them.
# HYDRA_BIN=DIR: use programs built before (the tests build once and install many times).
build_release() {
    if [ -n "${HYDRA_BIN:-}" ]; then
        echo "$HYDRA_BIN"
        return 0
    fi
    say "swift build -c release"
    # `|| return`: callers may run this with errexit off (scripts/test), and a failed build must
    # not look like a good one.
    (cd "$HYDRA_REPO" && "$HYDRA_SWIFT" build -c release --static-swift-stdlib -Xswiftc -use-ld=lld >&2) || return
    (cd "$HYDRA_REPO" && "$HYDRA_SWIFT" build -c release --static-swift-stdlib -Xswiftc -use-ld=lld --show-bin-path)
}
