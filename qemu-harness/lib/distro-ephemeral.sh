# shellcheck shell=bash
# Ephemeral layouts through the distro integrations (docs/ephemeral.md,
# issue #17): images built by update-initramfs and dracut inside the same
# Debian 12 roots the initramfs-tools and dracut scenarios use (lib/distro.sh;
# nothing else is debootstrapped), booted for real.
#
#   .cache/distro/<tool>/eph/    initrd-root.img   crypttab: the overlay's
#                                                  ephemeral upper volume
#                                os.ext4, os.verity, os.roothash
#                                                  the root as a plain ext4 OS
#                                                  image and its dm-verity tree
#                                initrd-data.img   (initramfs-tools) crypttab:
#                                                  root + data + an ephemeral
#                                                  scratch disk with integrity
#
# The ephemeral-root VM: vda = os.ext4 (read-only OS, through dm-verity),
# vdb = a sparse disk for the upper layer, vdc = os.verity.

DISTRO_SCENARIOS+=(initramfs-tools-ephemeral dracut-ephemeral distro-ephemeral-data)

# crypttab of the ephemeral-root image: the overlay's upper layer.
DISTRO_EPH_ROOT_CRYPTTAB="eph /dev/vdb none sealroot,sealroot-ephemeral"
# ... and of the data image, after the root's and the data disk's lines.
DISTRO_EPH_SCRATCH_LINE="scratch /dev/vdc none sealroot,sealroot-ephemeral,sealroot-integrity"

# The ephemeral root's kernel command line: root= is the verified OS layer
# (sealroot boot opens it; its type is known: rootfstype=),
# sealroot.overlay= the upper volume; no fsck of a read-only, hash-checked
# image (fastboot: initramfs-tools, fsck.mode: systemd). A root whose
# superblock fails verity still costs initramfs-tools its 30 s wait for the
# root device before it panics.
distro_eph_cmdline() {
    echo "root=/dev/mapper/sealroot-os rootfstype=ext4 ro fastboot fsck.mode=skip sealroot.overlay=eph" \
        "rd.sealroot.verity-data=/dev/vda rd.sealroot.verity-hash=/dev/vdc" \
        "rd.sealroot.verity-roothash=$(cat "$DISTRO_EPH_OUT/os.roothash") init=$DISTRO_ROOT_INIT"
}

# Build (or reuse) the ephemeral images of TOOL's root; sets DISTRO_OUT
# (distro_prepare's: the persistent disk the guard boot uses) and
# DISTRO_EPH_OUT.
distro_eph_prepare() {
    local tool=$1 root=$DISTRO_DIR/$1/root out=$DISTRO_DIR/$1/eph key kver bs text t0 uuid
    distro_prepare "$tool"
    key=$({ cat "$DISTRO_OUT/.inputs"; declare -f distro_eph_prepare distro_eph_image;
        echo "$DISTRO_EPH_ROOT_CRYPTTAB $DISTRO_EPH_SCRATCH_LINE"; } | sha256sum | cut -c1-16)
    DISTRO_EPH_OUT=$out
    if [[ -f $out/.inputs && $(cat "$out/.inputs") == "$key" ]]; then
        return 0
    fi
    t0=$(now_ms)
    rm -rf "$out"
    mkdir -p "$out"
    kver=$(distro_kver "$root")
    uuid=$(cat "$DISTRO_OUT/uuid")
    distro_log "$tool: building the ephemeral images in the root"
    echo "$DISTRO_EPH_ROOT_CRYPTTAB" >"$root/etc/crypttab"
    distro_build_initrd "$tool" "$root" eph-root "$out/initrd-root.img" "$uuid" >"$out/build-root.log" 2>&1 ||
        distro_die "$tool: the ephemeral-root image failed to build (see $out/build-root.log)"
    if [[ $tool == initramfs-tools ]]; then
        distro_crypttab_sealroot "$root" "$uuid"
        echo "$DISTRO_EPH_SCRATCH_LINE" >>"$root/etc/crypttab"
        distro_build_initrd "$tool" "$root" eph-data "$out/initrd-data.img" "$uuid" >"$out/build-data.log" 2>&1 ||
            distro_die "$tool: the ephemeral-data image failed to build (see $out/build-data.log)"
    fi
    distro_eph_image "$root" "$out"
    # Leave the root as lib/distro.sh installed it (its crypttab is reset
    # by distro_build_initrd): /boot holds the sealroot image.
    cp "$DISTRO_OUT/initrd.img" "$root/boot/initrd.img-$kver"
    bs=$(dumpe2fs -h "$out/os.ext4" 2>/dev/null | awk '/^Block size:/ { print $3 }')
    text=$(veritysetup format --data-block-size "${bs:-4096}" "$out/os.ext4" "$out/os.verity") ||
        distro_die "veritysetup format of the OS image failed"
    awk '/^Root hash:/ { print $3 }' <<<"$text" >"$out/os.roothash"
    [[ $(wc -c <"$out/os.roothash") == 65 ]] || distro_die "no root hash from veritysetup format"
    echo "$key" >"$out/.inputs"
    distro_log "$tool: ephemeral images ready in $((($(now_ms) - t0) / 1000))s"
}

# The OS image: the root as an image builder ships it for an ephemeral
# root (its crypttab names the upper volume; no provisioning key, nothing
# to unseal), a plain ext4 file.
distro_eph_image() {
    local root=$1 out=$2 size_mb
    distro_umount_all "$root"
    mv "$root/etc/sealroot/provision.key" "$out/provision.key.aside"
    cp "$root/etc/crypttab" "$out/crypttab.aside"
    echo "$DISTRO_EPH_ROOT_CRYPTTAB" >"$root/etc/crypttab"
    size_mb=$(($(du -sm --exclude=./proc --exclude=./sys "$root" | cut -f1) * 5 / 4 + 64))
    truncate -s "${size_mb}M" "$out/os.ext4.tmp"
    mkfs.ext4 -q -F -L sealroot-os -d "$root" "$out/os.ext4.tmp" || { mv "$out/provision.key.aside" "$root/etc/sealroot/provision.key"; distro_die "mkfs.ext4 -d $root failed"; }
    mv "$out/provision.key.aside" "$root/etc/sealroot/provision.key"
    mv "$out/crypttab.aside" "$root/etc/crypttab"
    mv "$out/os.ext4.tmp" "$out/os.ext4"
}

# A fresh ephemeral-root VM on TOOL's OS image.
distro_eph_vm_init() {
    vm_create "$VMS_DIR/$1" "$DISTRO_EPH_OUT/os.ext4"
    scn_use "$1"
    truncate -s 1G "$SCN_VM/eph.img"
    cp "$DISTRO_EPH_OUT/os.verity" "$SCN_VM/os.verity"
    VM_EXTRA_DISKS=("$SCN_VM/eph.img" "$SCN_VM/os.verity")
    ARTEFACTS_DIR=$DISTRO_OUT
}

# The boots of the ephemeral root share nothing with the roots' chroots
# (read only from out/ and eph/): let another harness run's image build go
# on meanwhile (lib/distro.sh holds the lock for the scenario otherwise).
distro_eph_release_lock() {
    if [[ -n ${DISTRO_LOCK_FD:-} ]]; then
        exec {DISTRO_LOCK_FD}>&-
        unset DISTRO_LOCK_FD
    fi
}

distro_eph_expect_os_untouched() {
    cmp -s "$SCN_VM/disk.img" "$DISTRO_EPH_OUT/os.ext4" ||
        scn_fail "after boot $SCN_BOOT: the read-only OS image changed"
}

# The ephemeral-root scenario of one generator; PREFIX is its scripts' log
# prefix.
distro_eph_root_scenario() {
    local tool=$1 prefix=$2 cmdline initrd disk_sum
    distro_eph_prepare "$tool"
    distro_eph_release_lock
    distro_eph_vm_init "$SCN_NAME"
    cmdline=$(distro_eph_cmdline)
    initrd=$DISTRO_EPH_OUT/initrd-root.img

    # 1: the overlay root, its upper layer a fresh ephemeral volume; a file
    # is written through it.
    distro_boot --initrd "$initrd" --cmdline "$cmdline" --stop "$DISTRO_SHELL_ERE"
    expect 'opened through dm-verity' "sealroot did not open the OS layer through dm-verity$(distro_first_error)"
    expect '/dev/vdb: blank device' "the upper volume was not set up on the blank disk$(distro_first_error)"
    expect_root_up
    expect 'ROOT-CHECK: root fstype=overlay' "/ is not the overlay"
    expect 'ROOT-CHECK: lower /dev/mapper/sealroot-os' "the overlay's lower layer is not the verified OS image"
    expect 'ROOT-CHECK: upper /dev/mapper/eph entries=0' "the upper layer is not the fresh ephemeral volume"
    expect 'ROOT-CHECK: eph-marker absent'
    expect 'ROOT-CHECK: eph-marker written' "the file was not written through the overlay"
    distro_eph_expect_os_untouched

    # 2: reboot: a new key, a new upper layer; the file is gone.
    distro_boot --initrd "$initrd" --cmdline "$cmdline" --stop "$DISTRO_SHELL_ERE"
    expect 'ephemeral volume of a previous boot' "the guard did not see boot 1's volume$(distro_first_error)"
    expect_root_up
    expect 'ROOT-CHECK: root fstype=overlay' "/ is not the overlay"
    expect 'ROOT-CHECK: eph-marker absent' "the file written in boot 1 survived the reboot"
    expect 'ROOT-CHECK: upper /dev/mapper/eph entries=0' "the upper layer of boot 2 is not empty"
    distro_eph_expect_os_untouched

    # 3: the host changes one byte of the OS image (in the ext4
    # superblock): dm-verity fails the read, the root does not mount, the
    # boot ends closed. Without panic=: initramfs-tools would reboot at
    # once, skipping its panic scripts.
    printf 'X' | dd of="$SCN_VM/disk.img" bs=1 seek=1144 conv=notrunc status=none
    VM_CMDLINE_BASE=${VM_CMDLINE_BASE/ panic=-1/} distro_boot --initrd "$initrd" --cmdline "$cmdline" --stop "$DISTRO_SHELL_ERE"
    expect 'device-mapper: verity.*corrupted' "the kernel did not report the verity failure"
    expect_not "$DISTRO_SHELL_ERE" "a shell was offered on the console after the verity failure"
    expect "$prefix: no shell .*: poweroff now" "the initramfs did not fail closed after the verity failure"
    expect 'reboot: Power down' "the VM did not power off"
    expect_root_not_up
    cp --sparse=always "$DISTRO_EPH_OUT/os.ext4" "$SCN_VM/disk.img"

    # 4: the ephemeral line's device is the persistent LUKS2 root (the
    # generator's encrypted disk, attached where crypttab names the upper
    # volume): the guard refuses it, nothing is written, the boot ends
    # closed.
    cp --sparse=always "$DISTRO_OUT/disk.img" "$SCN_VM/persistent.img"
    disk_sum=$(sha256sum <"$SCN_VM/persistent.img")
    VM_EXTRA_DISKS=("$SCN_VM/persistent.img" "$SCN_VM/os.verity")
    distro_boot --initrd "$initrd" --cmdline "$cmdline" --stop "$DISTRO_SHELL_ERE"
    expect 'ephemeral mode refused /dev/vdb: it holds a persistent LUKS2 volume' \
        "the guard did not refuse the persistent root$(distro_first_error)"
    expect_not "$DISTRO_SHELL_ERE" "a shell was offered on the console after the refusal"
    expect "$prefix: no shell .*: poweroff now" "the initramfs did not fail closed after the refusal"
    expect 'reboot: Power down' "the VM did not power off"
    # The root never runs. (dracut: systemd may mount the read-only,
    # verified OS layer at /sysroot in the seconds before the failure unit
    # powers off; it is never switched to.)
    expect_not 'ROOT-MARKER:' "the root came up although the boot was refused"
    [[ $(sha256sum <"$SCN_VM/persistent.img") == "$disk_sum" ]] ||
        scn_fail "after boot $SCN_BOOT: the persistent root was written to"
}

scenario_initramfs_tools_ephemeral() {
    distro_eph_root_scenario initramfs-tools sealroot-initramfs
}

scenario_dracut_ephemeral() {
    distro_eph_root_scenario dracut sealroot-dracut
}

# A persistent TPM-unlocked root and data disk plus an ephemeral scratch
# disk with integrity, all from one crypttab in one boot (initramfs-tools).
scenario_distro_ephemeral_data() {
    distro_eph_prepare initramfs-tools
    distro_eph_release_lock
    distro_vm_init "$SCN_NAME"
    truncate -s 256M "$SCN_VM/scratch.img"
    VM_EXTRA_DISKS+=("$SCN_VM/scratch.img")
    local initrd=$DISTRO_EPH_OUT/initrd-data.img ok='sealroot-initramfs: root unlocked with the TPM'
    # Nothing here should fail: a recovery prompt ends the boot at once.
    local stop="$DISTRO_SHELL_ERE|Recovery key or passphrase"

    # 1: first boot: both sealed volumes enrolled; the scratch disk ready.
    distro_boot --initrd "$initrd" --stop "$stop"
    [[ $(grep -acE 'sealroot: first boot: enrolled' "$SCN_LOG") -ge 2 ]] ||
        scn_fail "boot $SCN_BOOT: sealroot did not enroll both sealed volumes$(distro_first_error)"
    distro_expect_tpm_unlock "$ok"
    expect 'hmac\(sha256\)' "--integrity was not applied to the scratch disk"
    expect 'ROOT-CHECK: scratch mounted entries=0' "the scratch disk is not an empty file system$(distro_first_error)"
    expect 'ROOT-CHECK: scratch integrity' "the scratch disk is not authenc(hmac(sha256),xts(aes))"
    expect 'ROOT-CHECK: scratch written' "the scratch disk is not writable"
    expect_enrolled_volume

    # 2: the TPM alone opens root and data; the scratch disk is new and empty.
    distro_boot --initrd "$initrd" --stop "$stop"
    expect_not 'sealroot: first boot: enrolled' "boot 2 enrolled again"
    distro_expect_tpm_unlock "$ok"
    expect 'ephemeral volume of a previous boot' "the guard did not see boot 1's scratch volume"
    expect 'ROOT-CHECK: scratch mounted entries=0' "the scratch disk kept boot 1's file"
    expect 'ROOT-CHECK: scratch integrity' "the scratch disk is not authenc(hmac(sha256),xts(aes))"
}
