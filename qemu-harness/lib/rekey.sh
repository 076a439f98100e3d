# shellcheck shell=bash
# First-boot re-keying (crypttab's sealroot-rekey), docs/first-boot.md#mode-2.
#
# first-boot-rekey: a 256 MiB root holding a file tree with known checksums
# is re-encrypted to a fresh volume key at its first boot; QEMU is killed
# (by PID) at least REKEY_KILLS times in the middle of the re-encryption,
# at points picked from the progress lines on the console. Every following
# boot goes on with it; the last one finishes, the tree checks, and the
# image's provisioning key opens nothing. Then the host puts back the copy
# of the disk it kept from the middle of the re-encryption: refused (the
# TPM recorded the end), nothing written, PCR 15 locked, no shell.
#
# two-vms-one-image-rekey: two VMs from copies of one image, each with its
# own swtpm, re-key at their first boots: their volume-key fingerprints
# differ and the image's provisioning key opens neither.

REKEY_KILLS=${SEALROOT_HARNESS_REKEY_KILLS:-20}
REKEY_SIZE_MB=256
REKEY_TREE_FILES=24
REKEY_TREE_FILE_MB=6
REKEY_PROGRESS='re-keying /dev/vda: ([0-9]+)%'

rekey_crypttab() {
    echo "crypttab=root /dev/vda none sealroot,sealroot-provision-key=/etc/sealroot/provision.key,sealroot-rekey"
}

# The image: the harness root file system grown to fill a 256 MiB volume,
# with a tree of random files and their SHA256SUMS, encrypted under the
# provisioning key as the image build does (plus the recovery keyslot).
rekey_disk() {
    local disk=$1 work=$1.d fs=$1.d/root.ext4 cmds=$1.d/debugfs i
    rm -rf "$work"
    mkdir -p "$work/tree"
    for ((i = 0; i < REKEY_TREE_FILES; i++)); do
        head -c "${REKEY_TREE_FILE_MB}M" /dev/urandom >"$work/tree/f$i"
    done
    (cd "$work/tree" && sha256sum f* >SHA256SUMS)
    cp --sparse=always "$ARTEFACTS_DIR/os.ext4" "$fs"
    truncate -s "$((REKEY_SIZE_MB - ${LUKS_REDUCE%M}))M" "$fs"
    e2fsck -fy "$fs" >/dev/null 2>&1 || true
    resize2fs -f "$fs" >/dev/null 2>&1 || scn_fail "resize2fs of the re-keying root failed"
    {
        echo "mkdir /rekey-tree"
        for f in "$work"/tree/*; do
            echo "write $f /rekey-tree/${f##*/}"
        done
    } >"$cmds"
    debugfs -w -f "$cmds" "$fs" >/dev/null 2>&1 || scn_fail "debugfs could not write the tree"
    cp --sparse=always "$fs" "$disk.tmp"
    rm -rf "$work"
    truncate -s "+$LUKS_REDUCE" "$disk.tmp"
    cryptsetup reencrypt --encrypt --type luks2 --batch-mode \
        --cipher aes-xts-plain64 --key-size 512 --reduce-device-size "$LUKS_REDUCE" \
        --label sealroot-root "${PROVISION_PBKDF[@]}" \
        --key-file "$ARTEFACTS_DIR/provision.key" "$disk.tmp" >&2 ||
        scn_fail "cryptsetup reencrypt --encrypt of the re-keying root failed"
    cryptsetup luksAddKey --batch-mode "${RECOVERY_PBKDF[@]}" \
        --key-file "$ARTEFACTS_DIR/provision.key" "$disk.tmp" "$ARTEFACTS_DIR/recovery.key" >&2 ||
        scn_fail "adding the recovery keyslot failed"
    mv "$disk.tmp" "$disk"
}

# Highest re-keying percentage the last boot printed (-1: none).
rekey_last_pct() {
    local v
    v=$(grep -aoE "$REKEY_PROGRESS" "$SCN_LOG" | sed -E 's/.*: ([0-9]+)%/\1/' | sort -n | tail -n 1)
    echo "${v:--1}"
}

# ERE of the progress lines at FROM % or more.
rekey_pct_ere() {
    local from=$1
    ((from > 99)) && from=99
    echo "re-keying /dev/vda: ($(seq -s '|' "$from" 99))%"
}

# The header is an ordinary LUKS2 header with one keyslot, the image's
# keys open nothing, and the token says vm-rekeyed.
expect_rekeyed_volume() {
    local disk=${1:-$SCN_VM/disk.img} id
    if cryptsetup luksDump "$disk" | grep -q 'online-reencrypt'; then
        scn_fail "after boot $SCN_BOOT: ${disk##*/} is still in re-encryption"
    fi
    for key in provision.key recovery.key; do
        if cryptsetup open --test-passphrase --key-file "$ARTEFACTS_DIR/$key" "$disk" 2>/dev/null; then
            scn_fail "after boot $SCN_BOOT: the image's ${key%.key} key still opens ${disk##*/}"
        fi
    done
    id=$(cryptsetup luksDump "$disk" | awk '/^Tokens:/ { t = 1; next } /^[A-Z]/ { t = 0 } t && $2 == "sealroot" { sub(":", "", $1); print $1; exit }')
    [[ -n $id ]] || scn_fail "after boot $SCN_BOOT: no sealroot token in ${disk##*/}"
    cryptsetup token export --token-id "$id" "$disk" | grep -q '"key_origin":"vm-rekeyed"' ||
        scn_fail "after boot $SCN_BOOT: the token of ${disk##*/} does not say vm-rekeyed"
}

# The volume-key fingerprint the sealroot token of DISK binds.
rekey_fingerprint() {
    local disk=$1 id
    id=$(cryptsetup luksDump "$disk" | awk '/^Tokens:/ { t = 1; next } /^[A-Z]/ { t = 0 } t && $2 == "sealroot" { sub(":", "", $1); print $1; exit }')
    cryptsetup token export --token-id "$id" "$disk" | grep -oE '"volume_key_fingerprint":"[0-9a-f]+"' | cut -d'"' -f4
}

scenario_first_boot_rekey() {
    local kills=0 last=-1 from control mid=$SCN_VM/disk.middle.img
    local -a control
    mapfile -t control < <(rekey_crypttab)
    control+=(mode=boot root_checks=tree-sums)
    rekey_disk "$SCN_VM/disk.img"
    # Each boot is cut a few percent past where the last one got, so every
    # kill lands in the re-encryption and the work still moves on.
    while ((kills < REKEY_KILLS)); do
        from=$((last + 1 + RANDOM % 2))
        ((from < 1)) && from=1
        VM_STOP_ON=$(rekey_pct_ere "$from")
        scn_boot "${control[@]}"
        VM_STOP_ON=
        if ! seen 'HARNESS-HOST: STOPPED'; then
            scn_fail "boot $SCN_BOOT ended before the cut at ${from}% (killed $kills times so far)$(first_failure)"
        fi
        if ((SCN_BOOT > 1)); then
            expect 're-keying was interrupted at' "boot $SCN_BOOT did not resume the re-keying"
        fi
        last=$(rekey_last_pct)
        kills=$((kills + 1))
        log "$SCN_NAME: killed QEMU at ${last}% (cut $kills)"
        # The host keeps a copy from the middle of the re-encryption.
        ((kills == REKEY_KILLS / 2)) && cp --sparse=always "$SCN_VM/disk.img" "$mid"
        ((last < 99)) || break
    done
    ((kills >= REKEY_KILLS)) || scn_fail "only $kills cuts before the re-encryption ended"
    # The next boot finishes the work and mounts the root; the tree is intact.
    scn_boot "${control[@]}"
    expect_sealroot_rc Ok
    expect 're-keyed /dev/vda' "boot $SCN_BOOT did not finish the re-keying$(first_failure)"
    expect_root_up
    expect 'ROOT-CHECK: tree ok' "the file tree does not match its checksums after re-keying"
    expect_rekeyed_volume
    # And the boot after that opens it through the TPM alone.
    scn_boot "${control[@]}"
    expect_sealroot_rc Ok
    expect_not 're-keying' "boot $SCN_BOOT re-keyed again"
    expect 'ROOT-CHECK: tree ok' "the file tree does not match after a TPM unlock"
    # The host replays the middle: never resumed (docs/first-boot.md#replayed-headers).
    [[ -f $mid ]] || scn_fail "no copy from the middle of the re-encryption"
    cp --sparse=always "$mid" "$SCN_VM/disk.img"
    scn_boot "${control[@]}" fail_checks=pcr15
    expect_sealroot_rc VolumeRefused
    expect 'TPM recorded it finished' "a header from before the end was not refused$(first_failure)"
    expect_root_not_mounted
    expect_no_shell_poweroff
    expect_pcr15_locked
    cmp -s "$mid" "$SCN_VM/disk.img" || scn_fail "boot $SCN_BOOT wrote to the replayed disk"
    rm -f "$mid"
}

scenario_two_vms_one_image_rekey() {
    local -a control
    mapfile -t control < <(rekey_crypttab)
    control+=(mode=boot)
    local a=two-vms-one-image-rekey b=two-vms-one-image-rekey-b fa fb
    vm_create "$VMS_DIR/$b" "$ARTEFACTS_DIR/disk.img"
    for vm in "$a" "$b"; do
        scn_use "$vm"
        scn_boot "${control[@]}"
        expect_sealroot_rc Ok
        expect 're-keyed /dev/vda' "$vm did not re-key its root$(first_failure)"
        expect_root_up
        expect_rekeyed_volume
    done
    fa=$(rekey_fingerprint "$VMS_DIR/$a/disk.img")
    fb=$(rekey_fingerprint "$VMS_DIR/$b/disk.img")
    [[ -n $fa && -n $fb ]] || scn_fail "no volume-key fingerprint in a token"
    [[ $fa != "$fb" ]] || scn_fail "the two VMs have the same volume key ($fa)"
    rm -rf "${VMS_DIR:?}/$b"
    scn_use "$a"
}
