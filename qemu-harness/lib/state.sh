# shellcheck shell=bash
# State volumes (docs/first-boot.md#mode-1-a-fresh-state-volume): a
# read-only OS through dm-verity (/dev/vda data, /dev/vdc hash tree, root
# hash on the measured command line) and /dev/vdb, an empty partition that
# the first boot formats as LUKS2 under a fresh key and enrolls; it is the
# overlay root's upper layer, unlocked with the TPM on later boots.

STATE_DISK_SIZE=${SEALROOT_HARNESS_STATE_DISK:-256M}
STATE_ARGS="rd.sealroot.device=/dev/vdb rd.sealroot.state rd.sealroot.name=state"

# A state VM: vda = the OS image, vdb = a blank sparse state disk of SIZE,
# vdc = the OS image's hash tree.
state_init() {
    local name=$1 size=${2:-$STATE_DISK_SIZE}
    eph_init "$name" "$size"
    cp "$ARTEFACTS_DIR/os.verity" "$SCN_VM/os.verity"
    VM_EXTRA_DISKS+=("$SCN_VM/os.verity")
}

state_args() {
    echo "$STATE_ARGS $(eph_verity_args)"
}

# The initramfs with a test-hooks build of sealroot in place of the
# release one (a second cpio appended: the kernel unpacks both, the later
# file wins), for stop_at=STEP. Rebuilt when the artefacts' initramfs is
# newer (the test-hooks binary comes from the same source tree).
state_hooks_initrd() {
    local out=$VMS_DIR/initramfs-state-hooks.cpio.gz stage
    if [[ ! -s $out || $ARTEFACTS_DIR/initramfs.cpio.gz -nt $out ]]; then
        log "cargo build --features test-hooks (sealroot for the power-cut initramfs)"
        (cd "$REPO_DIR" && cargo build --locked --features test-hooks --bin sealroot >&2) ||
            scn_fail "cargo build --features test-hooks failed"
        stage=$(mktemp -d)
        mkdir -p "$stage/usr/sbin"
        strip -o "$stage/usr/sbin/sealroot" "$REPO_DIR/target/debug/sealroot" ||
            scn_fail "strip of the test-hooks sealroot failed"
        {
            cat "$ARTEFACTS_DIR/initramfs.cpio.gz"
            (cd "$stage" && find usr | cpio -o -H newc --quiet | gzip -1)
        } >"$out.tmp"
        rm -rf "$stage"
        mv "$out.tmp" "$out"
    fi
    echo "$out"
}

# The LUKS2 subsystem of the VM's state disk (host side).
state_subsystem() {
    cryptsetup luksDump "${1:-$SCN_VM/eph.img}" | sed -nE 's/^Subsystem:[[:space:]]*//p'
}

# The state disk's sealroot token (host side, JSON).
state_token() {
    cryptsetup luksDump --dump-json-metadata "${1:-$SCN_VM/eph.img}" |
        python3 -c 'import json,sys; t=json.load(sys.stdin)["tokens"]; print(json.dumps(next(v for v in t.values() if v["type"]=="sealroot")))'
}

state_token_field() {
    state_token "${2:-}" | python3 -c "import json,sys; print(json.load(sys.stdin).get('$1', ''))"
}

# A boot of the state VM whose root must come up.
state_root_boot() {
    scn_boot --append "$(state_args)" mode=state-root "$@"
    expect_sealroot_rc Ok
    expect 'HARNESS: state volume ready' "the state volume was not opened$(first_failure)"
    expect 'HARNESS: root mounted \(state-root\)'
    expect_root_up
}

scenario_state_volume() {
    local marker hooks
    marker=$(eph_marker)
    state_init "$SCN_NAME"
    # Boot 1 (first boot) loses power after mkfs, before the final marker.
    hooks=$(state_hooks_initrd)
    VM_STOP_ON='test hook: stopped at state:mkfs' scn_boot --initrd "$hooks" \
        --append "$(state_args)" mode=state-root stop_at=state:mkfs
    expect 'blank: first boot of the state volume'
    expect 'XORed with the TPM RNG' "the TPM RNG was not mixed into the key"
    expect 'HARNESS-HOST: STOPPED' "the boot was not cut at state:mkfs$(first_failure)"
    [[ $(state_subsystem) == sealroot-state-incomplete ]] ||
        scn_fail "after the power cut the state disk is marked '$(state_subsystem)', not incomplete"
    # Boot 2 finds it incomplete, formats it afresh and completes it; the
    # root writes a file onto the state volume.
    state_root_boot root_checks=eph-check,eph-write "eph_marker=$marker"
    expect 'did not finish .* formatting it afresh' "the incomplete volume was not formatted afresh"
    expect 'state volume complete' "the final marker was not written"
    expect 'ROOT-CHECK: eph-marker written n=2048' "the file was not written to the state volume"
    [[ $(state_subsystem) == sealroot-state ]] || scn_fail "the state disk is not marked complete"
    [[ $(state_token_field key_origin) == vm-formatted ]] || scn_fail "the token does not say key_origin vm-formatted"
    expect_os_untouched
    # Boot 3: TPM unlock; the file is there.
    state_root_boot root_checks=eph-check "eph_marker=$marker"
    expect '/dev/vdb: state volume$' "the complete state volume was not recognised"
    expect_not 'formatted and enrolled' "a complete state volume was formatted again"
    expect 'ROOT-CHECK: eph-marker present' "the file written in boot 2 is gone"
    # One byte of the OS image changed on the host: dm-verity refuses it.
    printf 'X' | dd of="$SCN_VM/disk.img" bs=1 seek=1144 conv=notrunc status=none
    scn_boot --append "$(state_args)" mode=state-root
    expect 'HARNESS: FAIL mounting the OS layer' "the changed OS image was mounted$(first_failure)"
    expect 'device-mapper: verity.*corrupted' "the kernel did not report the verity failure"
    expect_root_not_mounted
    cp "$ARTEFACTS_DIR/os.ext4" "$SCN_VM/disk.img"
    # The host replaces the state partition with a foreign LUKS2 volume:
    # refused (exit 12), PCR 15 locked, no shell (the initramfs powers off).
    state_foreign_luks "$SCN_VM/eph.img"
    scn_boot --append "$(state_args)" mode=state-root fail_checks=pcr15
    expect_sealroot_rc EphemeralRefused
    expect 'state volume /dev/vdb refused: it holds a LUKS2 volume that is not a sealroot state volume' \
        "sealroot did not name the foreign volume"
    expect_pcr15_extended
    expect 'HARNESS: FAIL sealroot boot refused' "the initramfs did not power off after the refusal"
    expect_root_not_mounted
}

# A LUKS2 volume the host made, with its own passphrase, in place of $1.
state_foreign_luks() {
    local img=$1 size
    size=$(stat -c %s "$img")
    rm -f "$img"
    truncate -s "$size" "$img"
    printf 'host passphrase' | cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 \
        --pbkdf-force-iterations 1000 --key-file - "$img" >/dev/null ||
        scn_fail "cryptsetup luksFormat of the foreign volume failed"
}

# The guest printed PCR 15 (fail_checks=pcr15) and it is not zero.
expect_pcr15_extended() {
    local v
    v=$(grep -aoE 'HARNESS: pcr15=[0-9A-Fa-f]+' "$SCN_LOG" | tail -n 1 | sed 's/.*=//')
    [[ -n $v ]] || scn_fail "boot $SCN_BOOT: PCR 15 was not printed$(first_failure)"
    [[ $v =~ [1-9A-Fa-f] ]] || scn_fail "boot $SCN_BOOT: PCR 15 is zero after the refusal (not locked)"
}

scenario_two_vms_one_image() {
    local name=$SCN_NAME a b fa fb key img
    # VM b first (its own directory), then VM a under the scenario's name,
    # where the runner looks for the failure reason.
    state_init "$name-b"
    b=$SCN_VM
    state_root_boot
    fb=$(state_token_field volume_key_fingerprint)
    state_init "$name"
    a=$SCN_VM
    state_root_boot
    fa=$(state_token_field volume_key_fingerprint)
    [[ -n $fa && -n $fb ]] || scn_fail "no volume-key fingerprint in the tokens"
    [[ $fa != "$fb" ]] || scn_fail "the two VMs' state volumes have the same volume key (fingerprint $fa)"
    [[ $(state_token_field key_origin "$b/eph.img") == vm-formatted ]] || scn_fail "VM b: key_origin is not vm-formatted"
    # Nothing the image holds opens either state volume: every key file the
    # image's build made (the LUKS root image's provisioning and recovery
    # keys) and the verity root hash, tried as key files by libcryptsetup.
    for key in "$ARTEFACTS_DIR/provision.key" "$ARTEFACTS_DIR/recovery.key" "$ARTEFACTS_DIR/os.roothash"; do
        for img in "$a/eph.img" "$b/eph.img"; do
            if cryptsetup open --test-passphrase --key-file "$key" "$img" 2>/dev/null; then
                scn_fail "$(basename "$key") opens $(basename "$(dirname "$img")")'s state volume"
            fi
        done
    done
    # ... and no keyslot but the TPM's exists to try.
    for img in "$a/eph.img" "$b/eph.img"; do
        [[ $(cryptsetup luksDump --dump-json-metadata "$img" |
            python3 -c 'import json,sys; print(len(json.load(sys.stdin)["keyslots"]))') == 1 ]] ||
            scn_fail "$(basename "$(dirname "$img")"): the state volume has a keyslot besides the TPM's"
    done
    # Each VM has its own TPM: VM b's state disk in VM a is refused (its
    # token names another TPM's storage key), PCR 15 locked.
    cp "$b/eph.img" "$a/eph.img"
    scn_boot --append "$(state_args)" mode=state-root fail_checks=pcr15
    expect_sealroot_rc TpmIdentity
    expect_pcr15_extended
    expect_root_not_mounted
}
