# shellcheck shell=dash disable=SC2034 # the SEALROOT_* variables are for the sourcing script
# Shared by the dracut module 90sealroot's failure unit
# (sealroot-failure.sh) and its emergency hook (sealroot-emergency.sh);
# installed as /usr/lib/sealroot/sealroot-lib.sh. Sourced; defines
# variables and functions only, all named sealroot_* / SEALROOT_* (the
# emergency hook runs inside dracut-emergency's shell).
#
# The host of a confidential VM owns its console, disk and kernel command
# line, so a boot sealroot could not unlock ends closed: PCR 15 locked
# (`sealroot lock`), then power off or reboot as the configuration says
# (sealroot-on-failure=, rd.sealroot.on-failure=; default poweroff), never
# dracut's emergency shell. Only on-failure=shell keeps the shell, after the
# lock. See docs/distro.md.

SEALROOT=/usr/sbin/sealroot
# sealroot's allocator hardening, set so that sealroot does not re-execute
# itself to set it (src/sys/harden.rs).
export GLIBC_TUNABLES=glibc.malloc.tcache_count=0:glibc.malloc.perturb=90

# To the kernel log and the console. printf, not echo: echo may expand
# backslash sequences in a name or device the host put on the command line
# into forged lines.
sealroot_say() {
    printf '<5>sealroot-dracut: %s\n' "$*" >/dev/kmsg 2>/dev/null
    printf 'sealroot-dracut: %s\n' "$*" >&2
}

# Sets SEALROOT_NAME, SEALROOT_DEVICE, SEALROOT_PATH, SEALROOT_TCTI,
# SEALROOT_TRIES, SEALROOT_PROMPT_TIMEOUT, SEALROOT_ON_FAILURE, SEALROOT_HEADER
# SEALROOT_FLAGS and SEALROOT_RECOVERY from
# sealroot's own reading of the kernel command line and /etc/crypttab
# (`sealroot boot --print-config`: shell assignments, quoted so that eval
# runs nothing); returns sealroot's exit status when it cannot use the
# configuration. SEALROOT_NAME stays empty when no sealed volume is
# configured (or rd.sealroot=0).
sealroot_config() {
    local config rc=0
    SEALROOT_NAME='' SEALROOT_DEVICE='' SEALROOT_PATH='' SEALROOT_TCTI=''
    SEALROOT_TRIES=3 SEALROOT_PROMPT_TIMEOUT=0 SEALROOT_ON_FAILURE=''
    SEALROOT_HEADER='' SEALROOT_FLAGS='' SEALROOT_RECOVERY=''
    config=$("$SEALROOT" boot --print-config --log kmsg) || rc=$?
    [ "$rc" = 0 ] || return "$rc"
    eval "$config"
}

# Extend sealroot's failure event into PCR 15, so nothing sealed to this
# boot can be unsealed any more. sealroot locks on every exit of its own;
# this is the backstop for a crash, and for the paths where it never ran.
# Its status is ignored: without a TPM nothing can be unsealed either.
sealroot_lock() {
    local rc=0
    "$SEALROOT" lock ${SEALROOT_TCTI:+--tcti "$SEALROOT_TCTI"} --log kmsg >&2 || rc=$?
    printf '<5>sealroot-dracut: sealroot lock exit %s\n' "$rc" >/dev/kmsg 2>/dev/null
}

# End the boot without a shell: reboot with on-failure=reboot, otherwise
# power off; the reason goes to the console and the kernel log first.
# Never returns. systemd's forced shutdown (no unit is stopped), then the
# reboot(2) call of `systemctl --force --force`, then the magic SysRq
# trigger.
sealroot_fail_closed() {
    local how=poweroff sysrq=o
    if [ "${SEALROOT_ON_FAILURE:-}" = reboot ]; then
        how=reboot sysrq=b
    fi
    sealroot_say "$1"
    sealroot_say "no shell (the console may be the host's): ${how} now (sealroot-on-failure=${how}; docs/distro.md)"
    sleep 1 # let the console drain
    systemctl --force "$how"
    systemctl --force --force "$how"
    echo "$sysrq" >/proc/sysrq-trigger
    while :; do
        sleep 60
    done
}

# A person can type at the console: standard input is a terminal and the
# kernel has an active console.
sealroot_console_present() {
    [ -t 0 ] && [ -n "$(cat /proc/consoles 2>/dev/null)" ]
}

# One line typed at the console, not echoed: every character but the final
# newline (leading and trailing blanks and backslashes are part of a
# passphrase: IFS= read -r). Fails on EOF or timeout.
sealroot_ask() {
    local line rc=0
    stty -echo 2>/dev/null
    printf '%s' "$1" >&2
    if [ "$SEALROOT_PROMPT_TIMEOUT" != 0 ]; then
        # shellcheck disable=SC3045 # bash and busybox sh have read -t
        IFS= read -t "$SEALROOT_PROMPT_TIMEOUT" -r line || rc=$?
    else
        IFS= read -r line || rc=$?
    fi
    stty echo 2>/dev/null
    echo >&2
    [ "$rc" = 0 ] || return 1
    printf '%s' "$line"
}

# No recovery prompt for a root re-keyed at first boot (sealroot-rekey,
# SEALROOT_RECOVERY=none): the console is the host's, and a key typed there
# could be the image's provisioning or recovery key, which would run the
# root under a key the host holds (docs/first-boot.md#recovery).
sealroot_recovery_offered() {
    if [ "${SEALROOT_RECOVERY:-}" = none ]; then
        sealroot_say "$SEALROOT_NAME is re-keyed at first boot (sealroot-rekey): no recovery prompt on the console; recover it offline (docs/first-boot.md#recovery)"
        return 1
    fi
    return 0
}

# The recovery prompt (crypttab's tries=, timeout=): the escrowed recovery
# key or any passphrase of the volume, to `sealroot unlock --key-file -`.
sealroot_recover() {
    local n=0 key rc
    sealroot_recovery_offered || return 1
    [ -e "/dev/mapper/$SEALROOT_NAME" ] && return 1 # open: something else failed
    if [ ! -e "$SEALROOT_PATH" ]; then
        sealroot_say "$SEALROOT_PATH ($SEALROOT_DEVICE) is not there; no recovery prompt"
        return 1
    fi
    while [ "$SEALROOT_TRIES" = 0 ] || [ "$n" -lt "$SEALROOT_TRIES" ]; do
        n=$((n + 1))
        key=$(sealroot_ask "Recovery key or passphrase for $SEALROOT_NAME ($SEALROOT_DEVICE): ") || return 1
        if [ -z "$key" ]; then
            sealroot_say "no key given"
            return 1
        fi
        rc=0
        # printf '%s': the key as typed, no newline added (the key file is
        # read byte for byte).
        printf '%s' "$key" | "$SEALROOT" unlock --device "$SEALROOT_PATH" --name "$SEALROOT_NAME" \
            ${SEALROOT_HEADER:+--header "$SEALROOT_HEADER"} ${SEALROOT_FLAGS:+--flags "$SEALROOT_FLAGS"} \
            --key-file - --tcti "$SEALROOT_TCTI" --log kmsg || rc=$?
        key=
        if [ "$rc" = 0 ]; then
            mkdir -p /run/sealroot && : >/run/sealroot/opened
            sealroot_say "$SEALROOT_NAME unlocked with a recovery key or passphrase; continuing the boot"
            return 0
        fi
        sealroot_say "that key did not open $SEALROOT_NAME (sealroot exit $rc)"
    done
    return 1
}
