#!/bin/sh
# shellcheck shell=dash disable=SC1091
# Emergency hook of the dracut module 90sealroot, sourced by dracut-emergency
# before it starts the emergency shell (sealroot.service has
# OnFailure=emergency.target). When sealroot's volume is still closed and a
# person can type at the console, ask for the recovery key (or any
# passphrase of the volume) and open it with `sealroot unlock --key-file -`;
# on success, leave the emergency mode so the boot continues
# (dracut-emergency's ExecStopPost runs `systemctl default`). Otherwise, or
# after crypttab's tries=N attempts (default 3), the emergency shell starts
# as usual (with rd.shell=0 dracut halts instead, or does what
# rd.emergency= says).

# printf, not echo: echo may expand backslash sequences in a name or
# device the host put on the command line into forged lines.
sealroot_say() {
    printf '<5>sealroot-dracut: %s\n' "$*" >/dev/kmsg 2>/dev/null
    printf 'sealroot-dracut: %s\n' "$*" >&2
}

# Sets SEALROOT_NAME, SEALROOT_DEVICE, SEALROOT_PATH, SEALROOT_TCTI,
# SEALROOT_TRIES and SEALROOT_PROMPT_TIMEOUT from sealroot's own reading of
# the kernel command line and /etc/crypttab (`sealroot boot --print-config`:
# shell assignments, quoted so that eval runs nothing). Fails when nothing
# is configured, or the configuration is not valid.
sealroot_volume() {
    local config
    SEALROOT_NAME='' SEALROOT_DEVICE='' SEALROOT_PATH='' SEALROOT_TCTI=''
    SEALROOT_TRIES=3 SEALROOT_PROMPT_TIMEOUT=0
    config=$(/usr/sbin/sealroot boot --print-config --log kmsg) || return 1
    eval "$config"
    [ -n "$SEALROOT_NAME" ]
}

# One line typed at the console, not echoed; fails on EOF or timeout.
sealroot_ask() {
    local line rc=0
    stty -echo 2>/dev/null
    printf '%s' "$1" >&2
    if [ "$SEALROOT_PROMPT_TIMEOUT" != 0 ]; then
        # shellcheck disable=SC3045 # bash and busybox sh have read -t
        read -t "$SEALROOT_PROMPT_TIMEOUT" -r line || rc=$?
    else
        read -r line || rc=$?
    fi
    stty echo 2>/dev/null
    echo >&2
    [ "$rc" = 0 ] || return 1
    printf '%s' "$line"
}

sealroot_recover() {
    local n=0 key rc
    sealroot_volume || return 1
    [ -e "/dev/mapper/$SEALROOT_NAME" ] && return 1 # open: something else failed
    [ -t 0 ] && [ -n "$(cat /proc/consoles 2>/dev/null)" ] || return 1
    [ -e "$SEALROOT_PATH" ] || {
        sealroot_say "$SEALROOT_PATH ($SEALROOT_DEVICE) is not there; no recovery prompt"
        return 1
    }
    sealroot_say "the TPM did not unlock $SEALROOT_NAME (journalctl -u sealroot.service says why)"
    while [ "$SEALROOT_TRIES" = 0 ] || [ "$n" -lt "$SEALROOT_TRIES" ]; do
        n=$((n + 1))
        key=$(sealroot_ask "Recovery key or passphrase for $SEALROOT_NAME ($SEALROOT_DEVICE): ") || return 1
        [ -n "$key" ] || return 1
        rc=0
        printf '%s' "$key" | /usr/sbin/sealroot unlock --device "$SEALROOT_PATH" --name "$SEALROOT_NAME" \
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

if sealroot_recover; then
    # Ends dracut-emergency; emergency.service's ExecStopPost resumes the boot.
    exit 0
fi
