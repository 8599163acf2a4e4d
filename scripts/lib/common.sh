# Shared by hydra's scripts: paths, package lists, the build. Source it; do not run it.
# shellcheck shell=bash

HYDRA_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HYDRA_PREFIX=/usr/local/lib/hydra          # the three programs (sudoers names these paths)
HYDRA_JUPYTER_ENV=/opt/hydra/jupyter       # the users' Python environment (server.python_env)
HYDRA_TEST_ENV=/opt/hydra/test-env         # pytest and friends, for the integration tests
HYDRA_SWIFT=${HYDRA_SWIFT:-$(command -v swift || echo /opt/swift/usr/bin/swift)}

# What a site needs at run time, and what building needs.
HYDRA_RUNTIME_PACKAGES=(apache2 libapache2-mod-fcgid sudo git libfcgi0ldbl libldap-2.5-0 python3-venv ca-certificates)
HYDRA_BUILD_PACKAGES=(libfcgi-dev libldap-dev libssl-dev pkg-config)
HYDRA_DEMO_PACKAGES=(slapd ldap-utils)
# The end-to-end tests add a real browser, a KDC with Kerberos clients, sshd and systemd's
# tools (systemd-analyze verifies the unit hydra would start; systemd need not be running).
HYDRA_TEST_PACKAGES=(slapd ldap-utils curl psmisc procps iproute2 util-linux wrk
    chromium chromium-driver fonts-dejavu-core krb5-kdc krb5-user libapache2-mod-auth-gssapi
    openssh-server systemd)

# Jupyter versions, pinned so tests and benchmarks are comparable from run to run.
HYDRA_JUPYTER_REQUIREMENTS=("jupyter-server==2.21.*" "jupyterlab==4.6.*" "ipykernel==7.*")

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
    # A session-wide apt-get update, once per run of a script.
    if [ -z "${HYDRA_APT_UPDATED:-}" ]; then
        apt-get update -qq
        HYDRA_APT_UPDATED=1
    fi
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# The users' Jupyter environment: Debian's python3 (readable by every account, unlike a
# Python under /root), with the pinned Jupyter packages.
ensure_jupyter_env() {
    if [ ! -x "$HYDRA_JUPYTER_ENV/bin/jupyter-lab" ]; then
        say "creating $HYDRA_JUPYTER_ENV (Jupyter Server + JupyterLab from PyPI)"
        mkdir -p "$(dirname "$HYDRA_JUPYTER_ENV")"
        /usr/bin/python3 -m venv "$HYDRA_JUPYTER_ENV"
    fi
    if [ "${HYDRA_OFFLINE:-}" != 1 ]; then
        "$HYDRA_JUPYTER_ENV/bin/pip" install -q --disable-pip-version-check "${HYDRA_JUPYTER_REQUIREMENTS[@]}"
    fi
    # JupyterLab's "get notified about Jupyter news?" prompt, off for every user of the site.
    install -d -m 0755 "$HYDRA_JUPYTER_ENV/share/jupyter/lab/settings"
    cat >"$HYDRA_JUPYTER_ENV/share/jupyter/lab/settings/overrides.json" <<'JSON'
{"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": false}}
JSON
    chmod -R a+rX "$HYDRA_JUPYTER_ENV"
}

# Release build of the three programs; prints the folder holding them.
# HYDRA_BIN=DIR: use programs built before (the tests build once and install many times).
build_release() {
    if [ -n "${HYDRA_BIN:-}" ]; then
        echo "$HYDRA_BIN"
        return 0
    fi
    say "swift build -c release"
    (cd "$HYDRA_REPO" && "$HYDRA_SWIFT" build -c release --static-swift-stdlib -Xswiftc -use-ld=lld >&2)
    (cd "$HYDRA_REPO" && "$HYDRA_SWIFT" build -c release --static-swift-stdlib -Xswiftc -use-ld=lld --show-bin-path)
}
