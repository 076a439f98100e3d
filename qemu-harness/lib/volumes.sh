# shellcheck shell=bash
# Several sealed volumes in one boot (two-volumes): the root on /dev/vda and
# a data disk on /dev/vdb, both LUKS2 with the image's provisioning key,
# named in crypttab and opened by one `sealroot boot`. Each is unsealed
# before PCR 15 is locked once; from the booted root neither unseals again.
# See docs/design.md#several-volumes-in-one-boot.

VOLUMES_DATA_SIZE=${VOLUMES_DATA_SIZE:-24M}

# The data disk: LUKS2 like the root (PBKDF2 provisioning keyslot, minimal
# digest), empty otherwise.
volumes_data_disk() {
    local img=$1
    truncate -s "$VOLUMES_DATA_SIZE" "$img"
    cryptsetup luksFormat --batch-mode --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
        --key-file "$ARTEFACTS_DIR/provision.key" "$img" >&2 ||
        scn_fail "luksFormat of the data disk failed"
}

volumes_crypttab() {
    local opts=sealroot,sealroot-provision-key=/etc/sealroot/provision.key
    echo "crypttab=root /dev/vda none $opts"
    echo "crypttab=data /dev/vdb none $opts"
}

# Both volumes open, the root is up, and neither unseals again from it.
expect_two_opened() {
    expect_sealroot_rc Ok
    expect_root_up
    expect 'ROOT-CHECK: data mapped' "the data volume was not opened$(first_failure)"
    local dev
    for dev in /dev/vda /dev/vdb; do
        expect "ROOT-CHECK: relock $dev rc=$(exit_code PcrMismatch)" \
            "$1: $dev could be unsealed again from the booted root (or did not fail on its PCRs)"
    done
    expect 'PCR 15 differs' "$1: sealroot did not name its lock PCR 15"
}

scenario_two_volumes() {
    scn_init two-volumes
    local data=$SCN_VM/data.img
    volumes_data_disk "$data"
    VM_EXTRA_DISKS=("$data")
    local -a control
    mapfile -t control < <(volumes_crypttab)
    control+=(mode=boot root_checks=relock-all)
    # Boot 1: both volumes enroll against one measured state.
    scn_boot "${control[@]}"
    expect_two_opened "first boot"
    local img
    for img in "$SCN_VM/disk.img" "$data"; do
        cryptsetup luksDump "$img" | grep -qE '^[[:space:]]+[0-9]+: sealroot' ||
            scn_fail "after boot $SCN_BOOT: no sealroot token in ${img##*/}"
        if cryptsetup open --test-passphrase --key-file "$ARTEFACTS_DIR/provision.key" "$img" 2>/dev/null; then
            scn_fail "after boot $SCN_BOOT: the provisioning key still opens ${img##*/}"
        fi
    done
    # Boot 2: both unseal through the TPM, then one lock.
    scn_boot "${control[@]}"
    expect_two_opened "TPM boot"
    expect_not 'first boot' "boot $SCN_BOOT enrolled again"
}
