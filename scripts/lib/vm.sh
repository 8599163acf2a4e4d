# A Debian 12 virtual machine whose PID 1 is systemd, for the VM tier (Tests/VM) and
# scripts/vm. Source it after common.sh and debian-root.sh; do not run it.
#
# The image: a debootstrap root in which the project's own install steps (apt_install,
# hydra-setup jupyter) install hydra's packages and the Jupyter environment, turned into an ext4
# image with `mkfs.ext4 -d` (nothing is mounted). The machine: qemu in software mode (TCG; no
# KVM needed) booting the image's own kernel, always with -snapshot (the image is never
# written, every start begins from it), ssh as root on 127.0.0.1. After the image is built, one
# boot is saved (RAM and devices), so later starts resume in seconds instead of booting.
# Everything lives in HYDRA_VM_DIR and is rebuilt only when what it is made from changes.
# shellcheck shell=bash

HYDRA_VM_DIR=${HYDRA_VM_DIR:-/var/tmp/hydra-vm}
HYDRA_VM_SSH_PORT=${HYDRA_VM_SSH_PORT:-10022}
# 1.5 GiB: the checks run two people's servers at once (alice's, bob's) beside slapd and
# Apache with hydra-mpm.conf's 1,024 idle threads, and a start needs 512 MiB available
# (server.start_min_available_memory); at 1 GiB bob's start found no room.
HYDRA_VM_MEMORY_MB=${HYDRA_VM_MEMORY_MB:-1536}
vm_root=$HYDRA_VM_DIR/rootfs
vm_image=$HYDRA_VM_DIR/disk.img
vm_key=$HYDRA_VM_DIR/id_ed25519
vm_pidfile=$HYDRA_VM_DIR/qemu.pid
vm_qmp=$HYDRA_VM_DIR/qmp.sock
vm_console=$HYDRA_VM_DIR/console.log
vm_state=$HYDRA_VM_DIR/ready.state
vm_state_disk=$HYDRA_VM_DIR/ready.qcow2
# Where scripts/vm install puts this tree and the programs in the guest.
vm_guest_repo=/usr/local/src/hydra
vm_guest_bin=/usr/local/src/hydra-bin
# The guest's own system: systemd with user managers (dbus-user-session: `systemd-run --user`
# and `systemctl --user` reach them over D-Bus), a kernel with a small initrd, sshd.
# ssl-cert: Debian's snakeoil certificate, for the site's own https vhost in the package checks.
vm_system_packages=(systemd systemd-sysv dbus dbus-user-session libpam-systemd procps iproute2
    openssh-server linux-image-amd64 initramfs-tools zstd ssl-cert)
vm_kernel_append="root=/dev/vda rw console=ttyS0 panic=-1 quiet"

vm_log() { printf '[%(%T)T] vm: %s\n' -1 "$*" >&2; }

# vm_unavailable: why qemu cannot run a VM here (prints the reason, status 0), or status 1.
vm_unavailable() {
    local needed_kib=$(( (HYDRA_VM_MEMORY_MB + 1024) * 1024 )) available_kib
    if ! command -v qemu-system-x86_64 >/dev/null; then
        echo "qemu-system-x86_64 is not installed"; return 0
    fi
    if ! printf '{"execute":"qmp_capabilities"}\n{"execute":"quit"}\n' |
        timeout 60 qemu-system-x86_64 -accel tcg -machine q35 -nodefaults -display none -S -qmp stdio >/dev/null 2>&1; then
        echo "qemu-system-x86_64 cannot start a machine in software mode (TCG) here"; return 0
    fi
    available_kib=$(awk '/^MemAvailable:/ { print $2 }' /proc/meminfo)
    if [ "$available_kib" -lt "$needed_kib" ]; then
        echo "$((available_kib / 1024)) MiB of memory available, the VM needs $((needed_kib / 1024))"; return 0
    fi
    return 1
}

# --- the image --------------------------------------------------------------------------------

# vm_in_root COMMAND...: COMMAND chrooted in the VM's root with /proc, /sys and /dev, in private
# mount and PID namespaces (no daemon a package starts outlives it; no mount stays behind).
vm_in_root() {
    unshare --mount --pid --fork --propagation private -- bash -c 'root=$1; shift
        mount -t proc proc "$root/proc"; mount -t sysfs sysfs "$root/sys"; mount --rbind /dev "$root/dev"
        exec chroot "$root" "$@"' vm-in-root "$vm_root" "$@"
}

# What the installed packages are made from: when it changes, the package step runs again.
vm_packages_key() {
    {
        declare -p vm_system_packages HYDRA_RUNTIME_PACKAGES HYDRA_BUILD_PACKAGES HYDRA_DEMO_PACKAGES
        declare -f apt_install
        cat "$HYDRA_REPO/scripts/hydra-setup" "$HYDRA_REPO/etc/jupyter-requirements.txt"
    } | md5sum | cut -d' ' -f1
}

vm_build_root() {
    if [ ! -e "$HYDRA_VM_DIR/stamp.debootstrap" ]; then
        vm_log "debootstrap $HYDRA_DEBIAN_SUITE -> $vm_root"
        rm -f "$HYDRA_VM_DIR/stamp.packages"
        debootstrap_minbase "$vm_root" "$HYDRA_VM_DIR/debootstrap.log"
        touch "$HYDRA_VM_DIR/stamp.debootstrap"
    fi
    local key; key=$(vm_packages_key)
    [ "$(cat "$HYDRA_VM_DIR/stamp.packages" 2>/dev/null)" = "$key" ] && return 0
    vm_log "packages and the Jupyter environment into the root (the project's apt_install and hydra-setup jupyter)"
    # An initrd with just what this machine boots from; no service starts inside the chroot.
    mkdir -p "$vm_root/etc/initramfs-tools/conf.d" "$vm_root/usr/share/initramfs-tools/modules.d"
    echo 'MODULES=list' >"$vm_root/etc/initramfs-tools/conf.d/hydra-vm.conf"
    printf '%s\n' virtio_pci virtio_blk ext4 >"$vm_root/usr/share/initramfs-tools/modules.d/hydra-vm"
    printf '#!/bin/sh\nexit 101\n' >"$vm_root/usr/sbin/policy-rc.d"
    chmod 755 "$vm_root/usr/sbin/policy-rc.d"
    # The network facts of this machine, for apt and pip in the chroot.
    cp /etc/resolv.conf "$vm_root/etc/resolv.conf"
    if compgen -G "/usr/local/share/ca-certificates/*" >/dev/null; then
        cp -r /usr/local/share/ca-certificates/. "$vm_root/usr/local/share/ca-certificates/"
    fi
    install -D -m 0755 "$HYDRA_REPO/scripts/hydra-setup" "$vm_root/var/tmp/hydra-setup/hydra-setup"
    install -m 0644 "$HYDRA_REPO/etc/jupyter-requirements.txt" "$vm_root/var/tmp/hydra-setup/jupyter-requirements.txt"
    local packages=("${vm_system_packages[@]}" "${HYDRA_RUNTIME_PACKAGES[@]}" "${HYDRA_BUILD_PACKAGES[@]}" "${HYDRA_DEMO_PACKAGES[@]}")
    vm_in_root /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 ${PIP_CERT:+"PIP_CERT=$PIP_CERT"} \
        bash -c "set -euo pipefail
            $(declare -f say die apt_install)
            apt_install $(printf '%q ' "${packages[@]}")
            update-ca-certificates >/dev/null
            /var/tmp/hydra-setup/hydra-setup jupyter --env $HYDRA_JUPYTER_ENV --requirements /var/tmp/hydra-setup/jupyter-requirements.txt
            rm -r /var/tmp/hydra-setup
            apt-get clean" >"$HYDRA_VM_DIR/packages.log" 2>&1 ||
        { tail -30 "$HYDRA_VM_DIR/packages.log" >&2; die "installing packages into the VM's root failed (log: $HYDRA_VM_DIR/packages.log)"; }
    rm -f "$vm_root/usr/sbin/policy-rc.d"
    echo "$key" >"$HYDRA_VM_DIR/stamp.packages"
}

# vm_put FILE TEXT: FILE in the root holds TEXT (written only when it differs, so the image is
# rebuilt only when something changed).
vm_put() {
    local file=$vm_root/$1
    printf '%s' "$2" | cmp -s - "$file" || { mkdir -p "$(dirname "$file")"; printf '%s' "$2" >"$file"; }
}

vm_configure_root() {
    [ -f "$vm_key" ] || ssh-keygen -q -t ed25519 -N '' -C hydra-vm -f "$vm_key"
    install -d -m 0700 "$vm_root/root/.ssh"
    vm_put root/.ssh/authorized_keys "$(cat "$vm_key.pub")"$'\n'
    chmod 0600 "$vm_root/root/.ssh/authorized_keys"
    vm_put etc/hostname $'hydra-vm\n'
    vm_put etc/hosts $'127.0.0.1\tlocalhost\n127.0.1.1\thydra-vm\n::1\tlocalhost ip6-localhost ip6-loopback\n'
    vm_put etc/fstab $'/dev/vda / ext4 rw,errors=remount-ro 0 1\n'
    vm_put etc/resolv.conf $'nameserver 10.0.2.3\n'
    vm_put etc/systemd/network/10-qemu.network \
        $'[Match]\nName=en* eth*\n[Network]\nAddress=10.0.2.15/24\nGateway=10.0.2.2\nDNS=10.0.2.3\n'
    [ -L "$vm_root/etc/systemd/system/multi-user.target.wants/systemd-networkd.service" ] ||
        systemctl --root="$vm_root" enable systemd-networkd.service 2>/dev/null
    local unit  # nothing that slows the boot or wakes up during a test
    for unit in e2scrub_reap.service e2scrub_all.timer apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer fstrim.timer; do
        if systemctl --root="$vm_root" is-enabled -q "$unit" 2>/dev/null; then
            systemctl --root="$vm_root" disable "$unit" 2>/dev/null
        fi
    done
}

vm_build_image() {
    if [ -f "$vm_image" ] && [ -z "$(find "$vm_root" -newer "$vm_image" -print -quit)" ]; then return 0; fi
    local megabytes=$(( $(du -sm "$vm_root" | cut -f1) + ${HYDRA_VM_DISK_EXTRA_MB:-3072} ))
    vm_log "mkfs.ext4 -d $vm_root ($megabytes MiB image, sparse)"
    rm -f "$vm_image" "$vm_state" "$vm_state_disk" "$HYDRA_VM_DIR/stamp.state"
    truncate -s "${megabytes}M" "$vm_image.tmp"
    mkfs.ext4 -q -F -L hydra-vm -d "$vm_root" "$vm_image.tmp"
    mv "$vm_image.tmp" "$vm_image"
}

# vm_build: the image and its saved state, each made only when missing or out of date.
vm_build() {
    mkdir -p "$HYDRA_VM_DIR"
    vm_build_root
    vm_configure_root
    vm_build_image
    [ "$(cat "$HYDRA_VM_DIR/stamp.state" 2>/dev/null)" = "$(vm_state_key)" ] || vm_save_state
}

# --- the machine ------------------------------------------------------------------------------

vm_kernel_version() { basename "$(ls -1 "$vm_root"/boot/vmlinuz-* | sort -V | tail -n1)" | sed 's/^vmlinuz-//'; }

# The machine's definition: the same for a cold boot, the saved state and its restore.
vm_machine_args() {
    local version; version=$(vm_kernel_version)
    echo -accel tcg,tb-size=128 -machine q35 -cpu qemu64 -m "$HYDRA_VM_MEMORY_MB" -smp 1 -nodefaults \
        -display none -vga none -kernel "$vm_root/boot/vmlinuz-$version" -initrd "$vm_root/boot/initrd.img-$version" \
        -device virtio-net-pci,netdev=n0 -device virtio-rng-pci
}

vm_state_key() {
    { qemu-system-x86_64 --version | head -1; vm_machine_args; echo "$vm_kernel_append"; stat -c %Y "$vm_image"; } | md5sum | cut -d' ' -f1
}

# vm_pid: the PID of this VM's qemu, from its pidfile (nothing else is ever signalled).
vm_pid() {
    local pid; pid=$(cat "$vm_pidfile" 2>/dev/null) || return 1
    [ -n "$pid" ] && grep -qaF -- "$vm_qmp" "/proc/$pid/cmdline" 2>/dev/null && echo "$pid"
}

vm_ssh() {
    timeout "${VM_SSH_TIMEOUT:-1800}" ssh -q -i "$vm_key" -p "$HYDRA_VM_SSH_PORT" -o BatchMode=yes -o LogLevel=ERROR \
        -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=5 -o ServerAliveInterval=15 \
        root@127.0.0.1 "$@"
}

# vm_qmp COMMAND...: sends each JSON COMMAND to qemu's monitor, prints each answer.
vm_qmp() {
    python3 - "$vm_qmp" "$@" <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); f = s.makefile("rw"); f.readline()
def command(c):
    f.write(json.dumps(c) + "\n"); f.flush()
    while True:
        answer = json.loads(f.readline())
        if "event" not in answer:
            return answer
command({"execute": "qmp_capabilities"})
for c in sys.argv[2:]:
    print(json.dumps(command(json.loads(c))))
PY
}

# vm_wait_ssh SECONDS: until sshd answers (or qemu is gone, or SECONDS passed).
vm_wait_ssh() {
    local deadline=$((SECONDS + $1))
    until VM_SSH_TIMEOUT=10 vm_ssh true 2>/dev/null; do
        vm_pid >/dev/null || { echo "qemu exited; see $vm_console" >&2; return 1; }
        [ $SECONDS -lt "$deadline" ] || { echo "no ssh after $1 s; see $vm_console" >&2; return 1; }
        sleep 0.5
    done
}

# vm_launch ARG...: qemu daemonizes (all paths absolute: it changes to /).
vm_launch() {
    if vm_pid >/dev/null; then echo "the VM is already running (qemu pid $(vm_pid))" >&2; return 1; fi
    rm -f "$vm_qmp" "$vm_pidfile"
    # shellcheck disable=SC2046
    qemu-system-x86_64 $(vm_machine_args) -append "$vm_kernel_append" \
        -netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$HYDRA_VM_SSH_PORT-:22" \
        -serial "file:$vm_console" -qmp "unix:$vm_qmp,server,nowait" -daemonize -pidfile "$vm_pidfile" "$@"
}

vm_kill() {  # by PID only; returns once that qemu is gone
    local pid; pid=$(vm_pid) || return 0
    kill "$pid"
    for _ in $(seq 1 50); do vm_pid >/dev/null || break; sleep 0.1; done
    if vm_pid >/dev/null; then kill -9 "$pid"; fi
    while vm_pid >/dev/null; do sleep 0.1; done
    rm -f "$vm_qmp" "$vm_pidfile"
}

# vm_save_state: boots the image once and saves the running machine, for vm_start.
vm_save_state() {
    vm_stop
    vm_log "first boot, saved for fast starts"
    rm -f "$vm_state" "$vm_state_disk" "$HYDRA_VM_DIR/stamp.state"
    qemu-img create -q -f qcow2 -b "$vm_image" -F raw "$vm_state_disk"   # the guest's writes during this boot
    vm_launch -drive "file=$vm_state_disk,format=qcow2,if=virtio,cache=unsafe"
    vm_wait_ssh 600 || { vm_kill; return 1; }
    vm_ssh 'systemctl is-system-running --wait >/dev/null || true; sync'
    vm_qmp '{"execute":"stop"}' "{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"exec:cat > $vm_state.tmp\"}}" >/dev/null
    local progress=""
    for _ in $(seq 1 600); do
        progress=$(vm_qmp '{"execute":"query-migrate"}')
        case $progress in *'"completed"'* | *'"failed"'*) break ;; esac
        sleep 0.2
    done
    vm_qmp '{"execute":"quit"}' >/dev/null || true
    while vm_pid >/dev/null; do sleep 0.2; done
    case $progress in
        *'"completed"'*) mv "$vm_state.tmp" "$vm_state"; vm_state_key >"$HYDRA_VM_DIR/stamp.state"
                         vm_log "saved state: $(du -h "$vm_state" | cut -f1)" ;;
        *) rm -f "$vm_state.tmp"; echo "saving the VM's state failed: $progress" >&2; return 1 ;;
    esac
}

# vm_start: resumes the saved state (a few seconds), or boots cold (about half a minute).
vm_start() {
    local started=$SECONDS
    if [ -f "$vm_state" ] && [ "$(cat "$HYDRA_VM_DIR/stamp.state" 2>/dev/null)" = "$(vm_state_key)" ]; then
        vm_launch -drive "file=$vm_state_disk,format=qcow2,if=virtio,cache=unsafe" -snapshot -incoming "exec:cat $vm_state"
        if vm_resume; then
            vm_log "resumed in $((SECONDS - started)) s (qemu pid $(vm_pid); ssh -p $HYDRA_VM_SSH_PORT root@127.0.0.1)"
            return 0
        fi
        vm_log "resuming the saved state failed; booting cold"
        vm_kill
    fi
    vm_launch -drive "file=$vm_image,format=raw,if=virtio,cache=unsafe" -snapshot
    vm_wait_ssh 600 || { vm_kill; return 1; }
    vm_ssh 'systemctl is-system-running --wait >/dev/null || true'
    vm_log "booted in $((SECONDS - started)) s (qemu pid $(vm_pid); ssh -p $HYDRA_VM_SSH_PORT root@127.0.0.1)"
}

vm_resume() {  # the saved machine was paused: it waits for "cont"
    for _ in $(seq 1 1200); do  # loading the state takes seconds, minutes on a busy machine
        vm_qmp '{"execute":"query-status"}' 2>/dev/null | grep -q '"inmigrate"' || break
        sleep 0.1
    done
    vm_qmp '{"execute":"query-status"}' | grep -q '"paused"' || return 1
    vm_qmp '{"execute":"cont"}' >/dev/null && vm_wait_ssh 120 &&
        vm_ssh "date -s @$(date +%s) >/dev/null"   # the guest's clock stood still while saved
}

# vm_reboot: `systemctl reboot` in the guest; returns once the new boot is up.
vm_reboot() {
    local before; before=$(vm_ssh cat /proc/sys/kernel/random/boot_id)
    vm_ssh systemctl reboot || true
    local deadline=$((SECONDS + 600)) now=""
    until [ -n "$now" ] && [ "$now" != "$before" ]; do
        now=$(VM_SSH_TIMEOUT=10 vm_ssh cat /proc/sys/kernel/random/boot_id 2>/dev/null) || true
        vm_pid >/dev/null || { echo "qemu exited during the reboot; see $vm_console" >&2; return 1; }
        [ $SECONDS -lt "$deadline" ] || { echo "the VM did not come back after a reboot; see $vm_console" >&2; return 1; }
        sleep 1
    done
    vm_ssh 'systemctl is-system-running --wait >/dev/null || true'
}

vm_stop() {
    local pid; pid=$(vm_pid) || return 0
    VM_SSH_TIMEOUT=20 vm_ssh 'systemctl poweroff' 2>/dev/null || true
    local deadline=$((SECONDS + 60))
    while vm_pid >/dev/null && [ $SECONDS -lt "$deadline" ]; do sleep 0.3; done
    vm_kill
    vm_log "stopped (qemu pid $pid gone)"
}

# --- hydra in the guest -----------------------------------------------------------------------

# vm_install_hydra BIN_DIR [DEB]: this work tree (tracked and new files) and the programs of
# BIN_DIR into the running guest, then scripts/install-demo there, offline (the image has the
# packages), which installs hydra's package DEB (built here: dpkg-deb's compression in the
# guest's software CPU would take many minutes), or builds one in the guest without it.
# The programs are stripped here first: a tenth of the size to copy, and strip in the guest's
# software CPU would take minutes.
vm_install_hydra() {
    local bin=$1 deb=${2:-} stripped program
    stripped=$(mktemp -d)
    while IFS= read -r -d '' program; do
        strip -o "$stripped/$program" "$bin/$program"
    done < <(find -H "$bin" -maxdepth 1 -type f -perm -u+x -printf '%f\0')
    vm_ssh "rm -rf $vm_guest_repo $vm_guest_bin && mkdir -p $vm_guest_repo $vm_guest_bin"
    git -C "$HYDRA_REPO" ls-files -z --cached --others --exclude-standard |
        tar -C "$HYDRA_REPO" --null -T - --ignore-failed-read -cf - | vm_ssh "tar -C $vm_guest_repo -xf -"
    [ -z "$deb" ] || cp "$deb" "$stripped/"
    tar -C "$stripped" -cf - . | vm_ssh "tar -C $vm_guest_bin -xf -"
    rm -rf "$stripped"
    vm_ssh "cd $vm_guest_repo && HYDRA_BIN=$vm_guest_bin ${deb:+HYDRA_DEB=$vm_guest_bin/${deb##*/}} HYDRA_OFFLINE=1 scripts/install-demo"
}
