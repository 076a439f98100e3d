# shellcheck shell=bash
# Helpers for scenarios: one VM per scenario, boots, and assertions on what
# the guest printed. A scenario runs in a subshell; scn_fail records the
# reason and exits that subshell.

SCN_NAME=
SCN_VM=
GUARDED_PID=
SCN_LOG=
SCN_BOOT=0

# Run "$@" in a background subshell that kills its QEMU and swtpm however it
# ends (EXIT trap), and forward SIGINT/SIGTERM sent to this script to it, so
# an interrupted or timed-out run leaves no VM behind.
run_isolated() {
    local rc=0
    trap 'forward_signal 130' INT
    trap 'forward_signal 143' TERM
    (
        trap vm_kill_all EXIT
        trap 'exit 143' TERM
        "$@"
    ) &
    GUARDED_PID=$!
    wait "$GUARDED_PID" || rc=$?
    GUARDED_PID=
    return "$rc"
}

forward_signal() {
    if [[ -n $GUARDED_PID ]]; then
        kill -TERM "$GUARDED_PID" 2>/dev/null || true
        wait "$GUARDED_PID" 2>/dev/null || true
    fi
    log "interrupted"
    exit "$1"
}

# Create a fresh VM for a scenario and make it the current one.
scn_init() {
    vm_create "$VMS_DIR/$1" "$ARTEFACTS_DIR/disk.img"
    scn_use "$1"
}

# Make an existing VM the current one (a scenario may drive several).
scn_use() {
    SCN_NAME=$1
    SCN_VM=$VMS_DIR/$1
    SCN_BOOT=$(cat "$SCN_VM/boots")
    SCN_LOG=
    [[ $SCN_BOOT == 0 ]] || SCN_LOG=$SCN_VM/boot-$SCN_BOOT.log
}

scn_fail() {
    echo "$*" >"$SCN_VM/fail-reason"
    [[ -n $SCN_LOG ]] && echo "$SCN_LOG" >"$SCN_VM/fail-log"
    exit 1
}

# scn_boot [--tampered|--updated|--initrd PATH] [--append STR] [--recovery-key] [control lines...]
# Boots the scenario's VM once; the console goes to boot-N.log. Fails the
# scenario on a timeout or a QEMU error, not on what the guest did.
scn_boot() {
    local initrd=$ARTEFACTS_DIR/initramfs.cpio.gz extra='' control rc=0
    local -a fwcfg=()
    while (($#)); do
        case $1 in
        --tampered) initrd=$ARTEFACTS_DIR/initramfs-tampered.cpio.gz ;;
        --updated) initrd=$ARTEFACTS_DIR/initramfs-updated.cpio.gz ;;
        --initrd) initrd=$2; shift ;;
        --append) extra=$2; shift ;;
        --recovery-key) fwcfg+=("recovery-key=$ARTEFACTS_DIR/recovery.key") ;;
        *) break ;;
        esac
        shift
    done
    SCN_BOOT=$(($(cat "$SCN_VM/boots") + 1))
    SCN_LOG=$SCN_VM/boot-$SCN_BOOT.log
    control=$SCN_VM/control-$SCN_BOOT
    printf '%s\n' "$@" >"$control"
    fwcfg+=("control=$control")
    local variant=${initrd##*/initramfs}
    variant=${variant%.cpio.gz}
    log "$SCN_NAME: boot $SCN_BOOT${variant:+ (${variant#-} initramfs)}${extra:+ (cmdline + \"$extra\")}${*:+ [$*]}"
    vm_boot "$SCN_VM" "$initrd" "$SCN_LOG" "$extra" "${fwcfg[@]}" || rc=$?
    case $rc in
    0) ;;
    124) scn_fail "boot $SCN_BOOT timed out after ${VM_TIMEOUT}s (QEMU killed)" ;;
    *) scn_fail "boot $SCN_BOOT: QEMU failed (rc=$rc, see $SCN_VM/qemu.log)" ;;
    esac
}

# True when the last boot's console has a line matching the ERE.
seen() {
    grep -aqE "$1" "$SCN_LOG"
}

expect() {
    seen "$1" || scn_fail "boot $SCN_BOOT: ${2:-expected /$1/ on the console}"
}

expect_not() {
    if seen "$1"; then
        scn_fail "boot $SCN_BOOT: ${2:-unexpected /$1/ on the console}"
    fi
}

# Value of the last "HARNESS: <what> rc=N" marker, or "none".
marker_rc() {
    local v
    v=$(grep -aoE "HARNESS: $1 rc=[0-9]+" "$SCN_LOG" | tail -n 1 | sed 's/.*rc=//')
    echo "${v:-none}"
}

# The last sealroot exit in the guest was NAME (a variant of the Exit enum).
expect_sealroot_rc() {
    local want got
    want=$(exit_code "$1")
    got=$(marker_rc sealroot)
    [[ $got == "$want" ]] ||
        scn_fail "boot $SCN_BOOT: sealroot exit code $got, expected $want ($1)$(first_failure)"
}

# The guest's own failure line, if any, to explain a failed expectation.
first_failure() {
    local f
    f=$(grep -aoE 'HARNESS: FAIL .*' "$SCN_LOG" | head -n 1)
    [[ -n $f ]] && echo " (${f#HARNESS: })"
}

# The root file system of this image is up (its id, written at build time).
expect_root_up() {
    expect "ROOT-MARKER: root-id=$(cat "$ARTEFACTS_DIR/root-id")\$" \
        "the root file system did not come up (no ROOT-MARKER)$(first_failure)"
}

expect_root_not_mounted() {
    expect_not 'HARNESS: root mounted' "the root was mounted although it must not be"
    expect_not 'ROOT-MARKER:' "the root's init ran although the root must stay locked"
    expect 'HARNESS: FAIL ' "the initramfs did not report the refusal"
}

# Host-side check of the volume after enrollment: a sealroot token exists, the
# provisioning key no longer opens it, the escrowed recovery key still does.
expect_enrolled_volume() {
    local disk=$SCN_VM/disk.img
    cryptsetup luksDump "$disk" | grep -qE '^[[:space:]]+[0-9]+: sealroot' ||
        scn_fail "after boot $SCN_BOOT: no sealroot token in the LUKS2 header"
    if cryptsetup open --test-passphrase --key-file "$ARTEFACTS_DIR/provision.key" "$disk" 2>/dev/null; then
        scn_fail "after boot $SCN_BOOT: the provisioning key still opens the volume"
    fi
    cryptsetup open --test-passphrase --key-file "$ARTEFACTS_DIR/recovery.key" "$disk" 2>/dev/null ||
        scn_fail "after boot $SCN_BOOT: the escrowed recovery key no longer opens the volume"
}

# Token ids of the sealroot tokens in the VM's LUKS2 header.
sealroot_tokens() {
    cryptsetup luksDump "$SCN_VM/disk.img" |
        awk '/^Tokens:/ { t = 1; next } /^[A-Z]/ { t = 0 } t && $2 == "sealroot" { sub(":", "", $1); print $1 }'
}

# Comma-separated PCR indices a sealroot token binds (first token if no id).
token_pcrs() {
    local id=${1:-$(sealroot_tokens | head -n 1)}
    [[ -n $id ]] || return 0
    cryptsetup token export --token-id "$id" "$SCN_VM/disk.img" |
        grep -oE '"index":[0-9]+' | cut -d: -f2 | paste -sd, -
}

expect_token_pcrs() {
    local got
    got=$(token_pcrs)
    [[ $got == "$1" ]] || scn_fail "after boot $SCN_BOOT: token binds PCRs '$got', expected '$1'"
}

# Kernel timestamp (ms) of the first console line matching the ERE.
kernel_ms_of() {
    grep -aE "$1" "$SCN_LOG" | head -n 1 |
        sed -nE 's/^[^[]*\[ *([0-9]+)\.([0-9]{6})\].*/\1 \2/p' |
        awk '{ printf "%d\n", $1 * 1000 + $2 / 1000 }'
}
