#!/bin/sh
# shellcheck shell=dash disable=SC1091
# sealroot-overlay.service of the dracut module 90sealroot, installed as
# /usr/lib/sealroot/sealroot-overlay: the ephemeral overlay root
# (docs/ephemeral.md#dracut).
#
#   /run/sealroot/lower   a bind of /sysroot as sysroot.mount mounted it
#                         (root=, read-only)
#   /run/sealroot/upper   /dev/mapper/NAME (sealroot.overlay=NAME); the
#                         overlay's upper/ and work/
#   /sysroot              the overlay, mounted over the lower file system
#
# sysroot.mount stays what systemd mounted (the overlay sits on top of it),
# and switch-root moves the top mount, the overlay, to /; /run, and with it
# both layers, moves along. Any failure fails closed like a refused unlock:
# `sealroot lock`, then poweroff (or reboot: on-failure=), never a shell.

. /usr/lib/sealroot/sealroot-lib.sh

upper=
cmdline=
read -r cmdline </proc/cmdline || true
set -f # the host writes the command line: no globbing of its words
for x in $cmdline; do
    case $x in
    sealroot.overlay=*) upper=${x#sealroot.overlay=} ;;
    esac
done
set +f
[ -n "$upper" ] || exit 0

overlay_fail() {
    local rc=0
    sealroot_config || rc=$?
    sealroot_lock
    [ "$rc" = 0 ] || SEALROOT_ON_FAILURE=poweroff
    if [ "$SEALROOT_ON_FAILURE" = shell ]; then
        sealroot_say "$1; sealroot-on-failure=shell: PCR 15 is locked; entering the emergency shell (unsafe when the host owns the console)"
        systemctl --no-block --job-mode=replace-irreversibly start emergency.target
        exit 1
    fi
    sealroot_fail_closed "$1"
}

case $upper in
. | .. | *[!A-Za-z0-9._-]*) overlay_fail "sealroot.overlay=$upper is not a device-mapper name" ;;
esac
dev=/dev/mapper/$upper
lower=/run/sealroot/lower
top=/run/sealroot/upper

[ -b "$dev" ] ||
    overlay_fail "the overlay root's upper layer $dev is not there (sealroot.overlay=$upper must name an ephemeral volume of the configuration)"
modprobe -q overlay 2>/dev/null || true
mkdir -p "$lower" "$top" || overlay_fail "cannot create $lower and $top"
# Private: systemd makes mounts shared, and the overlay mounted on /sysroot
# below would otherwise propagate onto this bind of it as well.
mount --bind /sysroot "$lower" || overlay_fail "cannot bind the root file system (/sysroot) to $lower"
mount --make-private "$lower" || overlay_fail "cannot make $lower a private mount"
mount -t ext4 "$dev" "$top" || overlay_fail "cannot mount the overlay's upper layer $dev on $top"
mkdir -p "$top/upper" "$top/work" || overlay_fail "cannot create upper/ and work/ on $dev"
mount -t overlay -o "lowerdir=$lower,upperdir=$top/upper,workdir=$top/work" overlay /sysroot ||
    overlay_fail "cannot mount the overlay root (upper $dev)"
sealroot_say "root is an overlay: /sysroot (read-only, $lower) under the ephemeral $dev ($top)"
