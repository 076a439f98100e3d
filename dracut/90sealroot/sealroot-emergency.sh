#!/bin/sh
# shellcheck shell=dash disable=SC1091
# Emergency hook of the dracut module 90sealroot, installed for both the
# "emergency" and "shutdown-emergency" hook points. dracut-emergency sources
# it before its emergency shell starts (rd.shell, the default; also every
# rd.break point and dracut-initqueue's "Could not boot") and, with
# rd.shell=0, before it halts (or does what rd.emergency= says).
#
# The host of a confidential VM owns the console, so in a boot whose sealroot
# volume is configured this hook ends the boot instead of the shell:
# `sealroot lock` (PCR 15), then poweroff or reboot as sealroot-on-failure=
# says (default poweroff). It returns, and the shell starts, only with
# on-failure=shell. With no sealroot volume configured (no sealroot line,
# rd.sealroot=0) it locks PCR 15 and leaves dracut's emergency mode as it
# is. The recovery prompt is not here but in sealroot-failure.service,
# which runs when sealroot.service fails, before any emergency mode.

. /usr/lib/sealroot/sealroot-lib.sh

sealroot_emergency() {
    local rc=0
    [ -x "$SEALROOT" ] || return 0
    sealroot_config || rc=$?
    sealroot_lock
    if [ "$rc" != 0 ]; then
        sealroot_fail_closed "dracut entered its emergency mode, and sealroot cannot use the boot configuration (exit $rc)"
    fi
    # An image built for ephemeral volumes (/etc/sealroot/ephemeral, from
    # module-setup.sh) is a sealroot boot with no sealed volume: an overlay
    # root whose verified OS layer does not mount ends here too.
    [ -n "$SEALROOT_NAME" ] || [ -e /etc/sealroot/ephemeral ] || return 0
    if [ "$SEALROOT_ON_FAILURE" = shell ]; then
        sealroot_say "sealroot-on-failure=shell: PCR 15 is locked; the emergency shell follows (unsafe when the host owns the console)"
        return 0
    fi
    sealroot_fail_closed "dracut entered its emergency mode in a boot of the sealroot volume ${SEALROOT_NAME:-(none: ephemeral volumes only)}"
}

sealroot_emergency
