# Debian 12 root file systems made with debootstrap: the clean root of scripts/clean-root and
# the VM image of scripts/lib/vm.sh. Source it after common.sh; do not run it.
# shellcheck shell=bash

HYDRA_DEBIAN_SUITE=bookworm

# debian_mirror [SUITE]: the URI this machine's apt sources use for SUITE (default: the
# release itself), from sources.list or deb822 .sources files; MIRROR overrides. Empty if none.
debian_mirror() {
    local suite=${1:-$HYDRA_DEBIAN_SUITE}
    [ -n "${MIRROR:-}" ] && [ "$suite" = "$HYDRA_DEBIAN_SUITE" ] && { echo "$MIRROR"; return; }
    {
        awk -v s="$suite" '$1 == "deb" { for (i = 2; i < NF; i++) if ($i ~ /^https?:\/\// && $(i + 1) == s) { print $i; exit } }' \
            /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true
        cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk -v s="$suite" 'BEGIN { RS = "" }
            $0 ~ ("Suites:[^\n]*[ \t]" s "([ \t\n]|$)") && match($0, /URIs:[ \t]*[^ \t\n]+/) {
                u = substr($0, RSTART, RLENGTH); sub(/URIs:[ \t]*/, "", u); print u; exit }'
    } | head -n1
}

# debian_sources: a deb822 sources file for the release, its updates and its security
# suite, with the mirrors this machine uses (as a Debian installer would write it).
debian_sources() {
    local suite mirror
    for suite in "$HYDRA_DEBIAN_SUITE" "$HYDRA_DEBIAN_SUITE-updates" "$HYDRA_DEBIAN_SUITE-security"; do
        mirror=$(debian_mirror "$suite")
        [ -n "$mirror" ] || continue
        printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: %s\n\n' \
            "$mirror" "$suite" /usr/share/keyrings/debian-archive-keyring.gpg
    done
}

# debootstrap_minbase DIR LOG [PACKAGE...]: a fresh minbase root in DIR (anything there
# before is removed), with PACKAGEs added. debootstrap mounts /proc and /sys in the new root:
# it runs in a mount namespace of its own, so those mounts can never stay behind on this machine.
debootstrap_minbase() {
    local dir=$1 log=$2 mirror include=()
    shift 2
    mirror=$(debian_mirror)
    [ -n "$mirror" ] || die "no $HYDRA_DEBIAN_SUITE mirror in this machine's apt sources; set MIRROR"
    [ $# -gt 0 ] && include=("--include=$(IFS=,; echo "$*")")
    rm -rf --one-file-system "$dir"
    unshare --mount --propagation private -- debootstrap --variant=minbase "${include[@]}" \
        "$HYDRA_DEBIAN_SUITE" "$dir" "$mirror" >"$log" 2>&1 ||
        { tail -20 "$log" >&2; die "debootstrap failed (log: $log)"; }
}

# missing_packages PACKAGE...: those of PACKAGEs that are not installed on this machine.
missing_packages() {
    local package
    for package in "$@"; do
        [ "$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null)" = "install ok installed" ] || echo "$package"
    done
}

# install_missing PACKAGE...: apt_install those of PACKAGEs that are not installed yet (no
# apt-get at all when nothing is missing, so a second run takes no apt lock).
install_missing() {
    local missing
    mapfile -t missing < <(missing_packages "$@")
    [ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
}
