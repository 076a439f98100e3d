# shellcheck shell=bash
# Ephemeral OS disk (docs/ephemeral.md): the initramfs additions and the
# scenarios. An ephemeral VM boots /dev/vda = the plain, read-only OS image
# (build/os.ext4: the same root file system as the encrypted disk, same
# root-id) and /dev/vdb = a sparse disk that `sealroot boot` turns into a
# keyless LUKS2 volume under a fresh key on every boot.

# Kernel modules for --integrity (dm-integrity, authenc for
# authenc(hmac(sha256),xts(aes))), the overlay root and its dm-verity lower.
EPHEMERAL_MODULES=(dm-integrity authenc overlay dm-verity)
EPH_DISK_SIZE=${SEALROOT_HARNESS_EPH_DISK:-1G}
# How the scenarios configure the volume through the kernel command line.
EPH_ARGS="rd.sealroot.device=/dev/vdb rd.sealroot.ephemeral rd.sealroot.name=eph"

# build_initramfs hook: mkfs.ext4 (e2fsprogs) and its configuration, for
# `sealroot ephemeral --mkfs ext4`; appends it to the closure check list
# named by $2.
ephemeral_stage_initramfs() {
    local dir=$1
    local -n eph_verify=$2
    stage_elf "$dir" "$(command -v mke2fs)" /usr/sbin/mkfs.ext4
    [[ -r /etc/mke2fs.conf ]] && stage_copy "$dir" /etc/mke2fs.conf
    eph_verify+=(/usr/sbin/mkfs.ext4)
}

# The OS image's dm-verity hash tree (os.verity, with its superblock) and
# root hash (os.roothash), made on the host from the image file.
ephemeral_build_verity() {
    local out=$1 text bs
    # dm-verity's sector is its data block: match the filesystem's block
    # (the small harness image has 1 KiB blocks).
    bs=$(dumpe2fs -h "$out/os.ext4" 2>/dev/null | awk '/^Block size:/ { print $3 }')
    text=$(veritysetup format --data-block-size "${bs:-4096}" "$out/os.ext4" "$out/os.verity") ||
        die "veritysetup format failed"
    awk '/^Root hash:/ { print $3 }' <<<"$text" >"$out/os.roothash"
    [[ $(wc -c <"$out/os.roothash") == 65 ]] || die "no root hash from veritysetup format"
}

# The kernel command line of a verified OS layer: /dev/vda is the data,
# /dev/vdc the hash tree.
eph_verity_args() {
    echo "rd.sealroot.verity-data=/dev/vda rd.sealroot.verity-hash=/dev/vdc rd.sealroot.verity-roothash=$(cat "$ARTEFACTS_DIR/os.roothash")"
}

# Make the scenario's VM an ephemeral one: vda = the OS image, vdb = a new
# sparse disk of SIZE (default $EPH_DISK_SIZE).
eph_init() {
    local name=$1 size=${2:-$EPH_DISK_SIZE}
    vm_create "$VMS_DIR/$name" "$ARTEFACTS_DIR/os.ext4"
    truncate -s "$size" "$VMS_DIR/$name/eph.img"
    scn_use "$name"
    VM_EXTRA_DISKS=("$SCN_VM/eph.img")
}

eph_marker() {
    echo "EPHEMERAL-MARKER-$(random_hex 12)"
}

# A boot with the ephemeral root that must come up.
eph_root_boot() {
    scn_boot "$@"
    expect_sealroot_rc Ok
    expect 'HARNESS: ephemeral volume ready' "the ephemeral volume was not set up$(first_failure)"
    expect_root_up
}

# The OS image must be exactly what was built: the lower layer is read-only.
expect_os_untouched() {
    [[ $(sha256sum <"$SCN_VM/disk.img") == $(sha256sum <"$ARTEFACTS_DIR/os.ext4") ]] ||
        scn_fail "after boot $SCN_BOOT: the read-only OS image changed"
}

# Persistent handles and NV indices in a VM's swtpm state, read from a
# copy of it with a private swtpm (started and killed here, by PID).
eph_tpm_handles() {
    local state=$1 copy port pid out='' ok=0
    copy=$(mktemp -d)
    cp -a "$state/." "$copy/"
    for _ in 1 2 3 4 5; do
        port=$(shuf -i 20000-60000 -n 1)
        swtpm socket --tpm2 --tpmstate dir="$copy" --flags not-need-init,startup-clear \
            --server type=tcp,port="$port",bindaddr=127.0.0.1 \
            --ctrl type=tcp,port=$((port + 1)),bindaddr=127.0.0.1 >/dev/null 2>&1 &
        pid=$!
        for _ in $(seq 50); do
            if out=$(TSS2_LOG=all+NONE tpm2_getcap -T "swtpm:host=127.0.0.1,port=$port" handles-persistent 2>/dev/null); then
                out+=$(TSS2_LOG=all+NONE tpm2_getcap -T "swtpm:host=127.0.0.1,port=$port" handles-nv-index 2>/dev/null) ||
                    out+="handles-nv-index: query failed"
                ok=1
                break
            fi
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        ((ok)) && break
    done
    rm -rf "$copy"
    ((ok)) || { echo "swtpm on the state copy did not answer"; return 1; }
    printf '%s' "$out"
}

scenario_ephemeral_root() {
    local marker
    marker=$(eph_marker)
    eph_init "$SCN_NAME"
    eph_root_boot --append "$EPH_ARGS" mode=ephemeral-root \
        root_checks=eph-check,eph-write "eph_marker=$marker"
    expect 'HARNESS: root mounted \(ephemeral-root\)'
    expect '/dev/vdb: blank device'
    expect 'ROOT-CHECK: eph-upper entries=0'
    expect 'ROOT-CHECK: eph-marker written n=2048' "the marker was not written to the overlay root"
    expect_os_untouched
    # Same VM, second boot: a fresh, empty upper layer; the OS still works.
    eph_root_boot --append "$EPH_ARGS" mode=ephemeral-root root_checks=eph-check
    expect 'ephemeral volume of a previous boot'
    expect 'ROOT-CHECK: eph-marker absent' "the marker of boot 1 survived the reboot"
    expect 'ROOT-CHECK: eph-upper entries=0' "the upper layer of boot 2 is not empty"
    expect_os_untouched
}

scenario_ephemeral_no_persist() {
    local marker f handles
    marker=$(eph_marker)
    eph_init "$SCN_NAME"
    eph_root_boot --append "$EPH_ARGS rd.sealroot.measure-pcr=13" mode=ephemeral-root \
        root_checks=eph-write "eph_marker=$marker"
    # Read back from the volume after sync and a cache drop: the marker's
    # 2048 lines went through dm-crypt onto eph.img.
    expect 'ROOT-CHECK: eph-marker written n=2048' "the marker was not written"
    expect 'measured the ephemeral event into PCR 13'
    grep -aq 'sealroot-ephemeral' "$SCN_VM/eph.img" ||
        scn_fail "eph.img holds no ephemeral LUKS2 header: scanning the wrong file?"
    for f in "$SCN_VM/eph.img" "$SCN_VM/disk.img" "$SCN_VM/OVMF_VARS.fd" "$SCN_VM"/tpm/*; do
        if grep -aqF "$marker" "$f"; then
            scn_fail "the marker's plaintext is in $(basename "$f")"
        fi
    done
    handles=$(eph_tpm_handles "$SCN_VM/tpm") || scn_fail "reading the TPM state: $handles"
    [[ -z ${handles//[[:space:]]/} ]] ||
        scn_fail "the TPM holds persistent objects or NV indices after the boot: $handles"
}

scenario_ephemeral_nonpersisted_tpm() {
    local marker
    marker=$(eph_marker)
    eph_init "$SCN_NAME"
    vm_reset_tpm "$SCN_VM"
    eph_root_boot --append "$EPH_ARGS rd.sealroot.measure-pcr=13" mode=ephemeral-root \
        root_checks=eph-check,eph-write "eph_marker=$marker"
    expect 'XORed with the TPM RNG' "the TPM RNG was not mixed in"
    expect 'measured the ephemeral event into PCR 13'
    # Like Azure's NonPersistedTPM: the next boot sees a factory-new TPM.
    vm_reset_tpm "$SCN_VM"
    eph_root_boot --append "$EPH_ARGS rd.sealroot.measure-pcr=13 rd.sealroot.integrity" \
        mode=ephemeral-root root_checks=eph-check "eph_marker=$marker"
    expect 'XORed with the TPM RNG' "the TPM RNG was not mixed in"
    expect 'hmac\(sha256\)' "--integrity was not applied"
    expect 'ROOT-CHECK: eph-marker absent' "the marker of boot 1 survived the reboot"
}

scenario_ephemeral_no_tpm() {
    local marker
    marker=$(eph_marker)
    eph_init "$SCN_NAME"
    VM_NO_TPM=1
    # crypttab this time, with authenticated encryption and a data disk.
    eph_root_boot mode=ephemeral-data \
        "crypttab=eph /dev/vdb none sealroot,sealroot-ephemeral,sealroot-integrity" \
        root_checks=eph-check,eph-write,eph-unwritten "eph_marker=$marker"
    expect 'HARNESS: root mounted \(ephemeral-data\)'
    expect 'no TPM \(/dev/tpmrm0 absent' "sealroot did not report the missing TPM"
    expect 'key: 768 bits from the kernel RNG only' "the key (XTS + HMAC keys) was not drawn from the kernel RNG alone"
    expect_not 'XORed with the TPM RNG'
    expect 'hmac\(sha256\)' "--integrity was not applied"
    expect 'ROOT-CHECK: eph-marker written n=2048' "the data disk is not writable"
    # dm-integrity without the O(disk) wipe: never-written sectors fail reads.
    expect 'ROOT-CHECK: eph-unwritten read failed' "a never-written integrity sector was readable"
}

scenario_ephemeral_guard() {
    local handles
    enroll_boot
    # Positive control for ephemeral-no-persist's TPM check: the same
    # reader sees the SRK that enrollment persisted.
    handles=$(eph_tpm_handles "$SCN_VM/tpm") || scn_fail "reading the TPM state: $handles"
    [[ $handles == *0x81000001* ]] ||
        scn_fail "the TPM state reader does not see the enrolled SRK: '$handles'"
    # A misconfigured crypttab names the persistent root as ephemeral, even
    # with the explicit wipe declaration: refused, exit 12, nothing written.
    scn_boot mode=ephemeral-root \
        "crypttab=eph /dev/vda none sealroot,sealroot-ephemeral,sealroot-wipe-existing"
    expect_sealroot_rc EphemeralRefused
    expect 'ephemeral mode refused /dev/vda: it holds a persistent LUKS2 volume with a sealroot token' \
        "sealroot did not name the persistent volume as the reason"
    expect_root_not_mounted
    expect_enrolled_volume
    unlock_boot
}

scenario_ephemeral_verity() {
    local args
    eph_init "$SCN_NAME"
    cp "$ARTEFACTS_DIR/os.verity" "$SCN_VM/os.verity"
    VM_EXTRA_DISKS+=("$SCN_VM/os.verity")
    args="$EPH_ARGS $(eph_verity_args)"
    eph_root_boot --append "$args" mode=ephemeral-root root_checks=eph-check
    expect 'opened through dm-verity' "sealroot did not open the OS layer through dm-verity"
    expect 'HARNESS: lower /dev/mapper/sealroot-os' "the overlay's lower layer is not the verified device"
    # The host changes one byte of the OS image (in its superblock):
    # reading it through dm-verity fails, the root is not mounted.
    printf 'X' | dd of="$SCN_VM/disk.img" bs=1 seek=1144 conv=notrunc status=none
    scn_boot --append "$args" mode=ephemeral-root root_checks=eph-check
    expect 'HARNESS: FAIL mounting the OS layer' "the changed OS image was mounted$(first_failure)"
    expect 'device-mapper: verity.*corrupted' "the kernel did not report the verity failure"
    expect_root_not_mounted
}
