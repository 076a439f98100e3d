#!/bin/sh
# shellcheck shell=dash disable=SC1091
# sealroot-failure.service (OnFailure= of sealroot.service) of the dracut
# module 90sealroot, installed as /usr/lib/sealroot/sealroot-failure: the
# TPM did not unlock the sealroot volume.
#
# 1. `sealroot lock`: PCR 15 locked, whatever sealroot itself managed.
# 2. With a console a person can type at: the recovery prompt (crypttab's
#    tries=, timeout=). When it opens the volume, the unit ends and the boot
#    goes on: sysroot.mount is still waiting for /dev/mapper/NAME.
# 3. Otherwise, what sealroot-on-failure= says: poweroff (the default) or
#    reboot, with the reason on the console and in the kernel log first;
#    shell starts emergency.target (dracut's emergency shell) as before
#    this unit existed, which is unsafe when the host owns the console.
#
# A configuration sealroot cannot use also powers off: what it says about
# failures is unknown. The unit has FailureAction=poweroff-force in case
# this script itself fails.

. /usr/lib/sealroot/sealroot-lib.sh

sealroot_failed() {
    local rc=0 status
    status=$(systemctl show --value -p ExecMainStatus sealroot.service 2>/dev/null)
    sealroot_config || rc=$?
    sealroot_lock
    if [ "$rc" != 0 ]; then
        sealroot_fail_closed "sealroot cannot use the boot configuration (exit $rc; its message above says why)"
    fi
    if [ -z "$SEALROOT_NAME" ]; then
        # No sealed volume: sealroot.service failed setting up the dm-verity
        # OS layer or an ephemeral volume (guard refusal, failed format).
        # Nothing to recover; on-failure= is the ephemeral line's.
        if [ "$SEALROOT_ON_FAILURE" = shell ]; then
            sealroot_say "sealroot-on-failure=shell: PCR 15 is locked; entering the emergency shell (unsafe when the host owns the console)"
            systemctl --no-block --job-mode=replace-irreversibly start emergency.target
            exit 0
        fi
        sealroot_fail_closed "sealroot could not set up the ephemeral volumes or the verified OS layer (sealroot exit ${status:-?}; its message above says why)"
    fi
    # 12: the data-loss guard refused an ephemeral volume's device (set up
    # before the sealed volumes): not something a recovery key fixes.
    if [ "$status" = 12 ] && [ "$SEALROOT_ON_FAILURE" != shell ]; then
        sealroot_fail_closed "an ephemeral volume's device was refused by the data-loss guard (sealroot exit 12; docs/ephemeral.md#the-data-loss-guard)"
    fi
    sealroot_say "the TPM did not unlock $SEALROOT_NAME (sealroot exit ${status:-?}; its message above, or journalctl -u sealroot.service, says why)"
    if sealroot_console_present && sealroot_recover; then
        exit 0
    fi
    if [ "$SEALROOT_ON_FAILURE" = shell ]; then
        sealroot_say "sealroot-on-failure=shell: PCR 15 is locked; entering the emergency shell (unsafe when the host owns the console). In it: sealroot unlock --device $SEALROOT_PATH --name $SEALROOT_NAME --key-file FILE; touch /run/sealroot/opened; exit"
        systemctl --no-block --job-mode=replace-irreversibly start emergency.target
        exit 0
    fi
    sealroot_fail_closed "cannot unlock $SEALROOT_NAME ($SEALROOT_DEVICE)"
}

sealroot_failed
