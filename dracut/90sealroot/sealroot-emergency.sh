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

type getarg >/dev/null 2>&1 || . /lib/dracut-lib.sh

sealroot_say() {
    echo "<5>sealroot-dracut: $*" >/dev/kmsg 2>/dev/null
    echo "sealroot-dracut: $*" >&2
}

# Sets sr_name, sr_device, sr_path, sr_tcti, sr_tries, sr_timeout from the
# kernel command line and the sealroot line of /etc/crypttab (the command
# line wins, as in `sealroot boot`). Fails when nothing is configured.
sealroot_volume() {
    local c_dev c_name name device _key options o
    getargbool 1 rd.sealroot || return 1
    sr_name='' sr_device='' sr_tcti='' sr_tries=3 sr_timeout=''
    if [ -r /etc/crypttab ]; then
        while read -r name device _key options _rest; do
            case $name in '' | '#'*) continue ;; esac
            case ,$options, in *,sealroot,*) ;; *) continue ;; esac
            sr_name=$name
            sr_device=$device
            for o in $(echo "$options" | tr , ' '); do
                case $o in
                sealroot-tcti=*) sr_tcti=${o#*=} ;;
                tries=*) sr_tries=${o#*=} ;;
                timeout=*) sr_timeout=${o#*=} ;;
                esac
            done
            break
        done </etc/crypttab
    fi
    c_dev=$(getarg rd.sealroot.device=)
    [ -n "$(getarg rd.sealroot.uuid=)" ] && c_dev=UUID=$(getarg rd.sealroot.uuid=)
    c_name=$(getarg rd.sealroot.name=)
    if [ -n "$c_dev" ]; then
        if [ "$c_dev" != "$sr_device" ]; then
            sr_name=
            sr_tcti=
        fi
        sr_device=$c_dev
        [ -n "$c_name" ] && sr_name=$c_name
        if [ -z "$sr_name" ]; then
            case $c_dev in
            UUID=*) sr_name=luks-${c_dev#UUID=} ;;
            *) sr_name=root ;;
            esac
        fi
    fi
    [ -n "$(getarg rd.sealroot.tcti=)" ] && sr_tcti=$(getarg rd.sealroot.tcti=)
    [ -n "$sr_device" ] || return 1
    case $sr_device in
    UUID=*) sr_path=/dev/disk/by-uuid/$(echo "${sr_device#UUID=}" | tr 'A-F' 'a-f') ;;
    PARTUUID=*) sr_path=/dev/disk/by-partuuid/$(echo "${sr_device#PARTUUID=}" | tr 'A-F' 'a-f') ;;
    LABEL=*) sr_path=/dev/disk/by-label/${sr_device#LABEL=} ;;
    *) sr_path=$sr_device ;;
    esac
}

# One line typed at the console, not echoed; fails on EOF or timeout.
sealroot_ask() {
    local line rc=0
    stty -echo 2>/dev/null
    printf '%s' "$1" >&2
    if [ -n "$sr_timeout" ] && [ "$sr_timeout" != 0 ]; then
        # shellcheck disable=SC3045 # bash and busybox sh have read -t
        read -t "$sr_timeout" -r line || rc=$?
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
    [ -e "/dev/mapper/$sr_name" ] && return 1 # open: something else failed
    [ -t 0 ] && [ -n "$(cat /proc/consoles 2>/dev/null)" ] || return 1
    [ -e "$sr_path" ] || {
        sealroot_say "$sr_path ($sr_device) is not there; no recovery prompt"
        return 1
    }
    sealroot_say "the TPM did not unlock $sr_name (journalctl -u sealroot.service says why)"
    while [ "$sr_tries" = 0 ] || [ "$n" -lt "$sr_tries" ]; do
        n=$((n + 1))
        key=$(sealroot_ask "Recovery key or passphrase for $sr_name ($sr_device): ") || return 1
        [ -n "$key" ] || return 1
        rc=0
        printf '%s' "$key" | /usr/sbin/sealroot unlock --device "$sr_path" --name "$sr_name" \
            --key-file - ${sr_tcti:+--tcti "$sr_tcti"} --log kmsg || rc=$?
        key=
        if [ "$rc" = 0 ]; then
            mkdir -p /run/sealroot && : >/run/sealroot/opened
            sealroot_say "$sr_name unlocked with a recovery key or passphrase; continuing the boot"
            return 0
        fi
        sealroot_say "that key did not open $sr_name (exit $rc)"
    done
    return 1
}

if sealroot_recover; then
    # Ends dracut-emergency; emergency.service's ExecStopPost resumes the boot.
    exit 0
fi
