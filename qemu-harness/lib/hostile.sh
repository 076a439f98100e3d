# shellcheck shell=bash
# Hostile-host scenarios: between two boots the host, which owns every byte
# of the disk, rewrites the enrolled root's LUKS2 header (hostile-header) or
# swaps in a volume of its own under the same UUID (fs-confusion). Both
# boots must be refused, the host's root must never run, and PCR 15 must be
# locked afterwards. See docs/harness.md.

# The header rewriter (examples/luks2_edit.rs over tests/common/luks2edit.rs),
# built on first use. Its own cargo invocation: building it together with
# the sealroot binary would unify the dev-dependency features (test-hooks)
# into that binary. SEALROOT_HARNESS_LUKS2_EDIT=/path skips the build.
luks2_edit() {
    local bin=${SEALROOT_HARNESS_LUKS2_EDIT:-}
    if [[ -z $bin ]]; then
        bin=${CARGO_TARGET_DIR:-$REPO_DIR/target}/debug/examples/luks2_edit
        if [[ -z ${HOSTILE_EDIT_BUILT:-} ]]; then
            need_cmd cargo
            log "cargo build --example luks2_edit (the host's header rewriter)"
            (cd "$REPO_DIR" && cargo build --locked --example luks2_edit >&2) ||
                scn_fail "cargo build --example luks2_edit failed"
            HOSTILE_EDIT_BUILT=1
        fi
    fi
    [[ -x $bin ]] || scn_fail "no luks2_edit at $bin"
    "$bin" "$@"
}

# The keyslot the VM's (first) sealroot token names.
token_keyslot() {
    local id=${1:-$(sealroot_tokens | head -n 1)}
    [[ -n $id ]] || return 0
    cryptsetup token export --token-id "$id" "$SCN_VM/disk.img" |
        grep -oE '"keyslots":\["[0-9]+"' | grep -oE '[0-9]+' | head -n 1
}

# The value the token expects in PCR 15 at unseal time.
token_pcr15() {
    local id=${1:-$(sealroot_tokens | head -n 1)}
    cryptsetup token export --token-id "$id" "$SCN_VM/disk.img" |
        grep -oE '"index": ?15, ?"value": ?"[0-9a-f]{64}"' | grep -oE '[0-9a-f]{64}'
}

# A byte-string constant of src/pcr/selfpcr.rs (`pub const NAME: &[u8] =
# b"...";`): the harness keeps no copy of sealroot's event strings.
selfpcr_const() {
    local v
    v=$(awk -v n="$1:" '$1 == "pub" && $2 == "const" && $3 == n {
            if (match($0, /b"[^"]*"/)) { print substr($0, RSTART + 2, RLENGTH - 3); exit } }' \
        "$REPO_DIR/src/pcr/selfpcr.rs")
    [[ -n $v ]] || return 1
    printf '%s' "$v"
}

# E(a, b) = SHA-256(a || b), hex in and out.
pcr_extend_hex() {
    printf '%s%s' "$1" "$2" | xxd -r -p | sha256sum | cut -c1-64
}

# This boot's PCR 15 as the guest printed it (fail_checks=pcr15).
guest_pcr15() {
    grep -aoE 'HARNESS: pcr15=[0-9A-Fa-f]{64}' "$SCN_LOG" | tail -n 1 | sed 's/.*=//' | tr 'A-F' 'a-f'
}

# PCR 15, as the guest printed it after the refusal, is exactly sealroot's
# failure event extended onto either the token's unseal-time value (sealroot
# measured this boot, then refused) or onto zero (refused before measuring).
# From either, no sequence of extends reaches the unseal value again. The
# harness initramfs runs no `sealroot lock` of its own, so this is
# sealroot's lock.
expect_pcr15_locked() {
    local got expected event failure
    got=$(guest_pcr15)
    [[ -n $got ]] || scn_fail "boot $SCN_BOOT: the guest did not print PCR 15"
    expected=$(token_pcr15)
    [[ -n $expected ]] || scn_fail "after boot $SCN_BOOT: no PCR 15 value in the sealroot token"
    event=$(selfpcr_const FAILURE_EVENT) || scn_fail "no byte-string constant FAILURE_EVENT in src/pcr/selfpcr.rs"
    failure=$(printf '%s' "$event" | sha256sum | cut -c1-64)
    if [[ $got == "$(pcr_extend_hex "$expected" "$failure")" ]]; then
        log "$SCN_NAME: PCR 15 = E(token's PCR 15, failure event) = $got: locked"
    elif [[ $got == "$(pcr_extend_hex "$(printf '0%.0s' {1..64})" "$failure")" ]]; then
        log "$SCN_NAME: PCR 15 = E(0, failure event) = $got: locked before anything was measured"
    else
        scn_fail "boot $SCN_BOOT: PCR 15 is $got, not sealroot's failure event on the token's $expected or on zero"
    fi
}

# No shell on the console, and the VM powered itself off.
expect_no_shell_poweroff() {
    expect_not '\(initramfs\)|Entering emergency mode|emergency shell|BusyBox v[0-9.]+ .*built-in shell' \
        "a shell was offered on the console"
    expect 'reboot: Power down' "the VM did not power off"
}

# hostile-header: after enrollment the host turns the token's keyslot into
# a cipher_null keyslot carrying a volume key of its choosing, with the
# digest to match (CVE-2025-59054: any passphrase, the unsealed one too,
# would open it, to the host's key).
scenario_hostile_header() {
    local disk=$SCN_VM/disk.img slot
    enroll_boot
    slot=$(token_keyslot)
    [[ -n $slot ]] || scn_fail "after boot $SCN_BOOT: no keyslot in the sealroot token"
    log "$SCN_NAME: host rewrites keyslot $slot as cipher_null-ecb with its own volume key"
    luks2_edit null-keyslot "$disk" "$slot" "$(random_hex 64)" >&2
    cryptsetup luksDump "$disk" | grep -q 'cipher_null-ecb' ||
        scn_fail "the rewritten header has no cipher_null keyslot (cryptsetup luksDump)"
    scn_boot mode=tpm fail_checks=pcr15,status
    expect_sealroot_rc VolumeRefused
    expect 'sealroot: error: .*cipher_null' "sealroot's error did not name cipher_null$(first_failure)"
    expect_root_not_mounted
    expect_no_shell_poweroff
    expect_pcr15_locked
}

# fs-confusion: the host swaps the root disk for a LUKS2 volume of its own
# (its copy of the OS image, under its own volume key) with the real
# volume's UUID, the real sealroot token copied in, and a keyslot at the
# token's number under the host's own passphrase. The PCRs are what
# enrollment sealed to, so the TPM unseals; sealroot must still not open the
# host's volume, and must lock PCR 15: a second unlock of the same token in
# the same boot fails with PcrMismatch.
scenario_fs_confusion() {
    local disk=$SCN_VM/disk.img fake=$SCN_VM/host-disk.img uuid tok slot first second
    enroll_boot
    uuid=$(cryptsetup luksUUID "$disk")
    tok=$(sealroot_tokens | head -n 1)
    slot=$(token_keyslot "$tok")
    [[ -n $slot ]] || scn_fail "after boot $SCN_BOOT: no keyslot in the sealroot token"
    cryptsetup token export --token-id "$tok" "$disk" >"$SCN_VM/real-token.json"
    printf 'the host passphrase %s' "$(random_hex 8)" >"$SCN_VM/host.key"
    log "$SCN_NAME: host builds its own volume: UUID $uuid, keyslot $slot under its passphrase, the real token $tok"
    cp --sparse=always "$ARTEFACTS_DIR/os.ext4" "$fake"
    truncate -s "+$LUKS_REDUCE" "$fake"
    cryptsetup reencrypt --encrypt --type luks2 --batch-mode --uuid "$uuid" --key-slot "$slot" \
        --cipher aes-xts-plain64 --key-size 512 --reduce-device-size "$LUKS_REDUCE" \
        "${PROVISION_PBKDF[@]}" --key-file "$SCN_VM/host.key" "$fake" >&2 ||
        scn_fail "building the host's volume failed"
    cryptsetup token import --token-id "$tok" --json-file "$SCN_VM/real-token.json" "$fake" ||
        scn_fail "importing the real token into the host's volume failed"
    mv "$disk" "$SCN_VM/real-disk.img"
    mv "$fake" "$disk"
    [[ $(token_keyslot "$tok") == "$slot" && $(cryptsetup luksUUID "$disk") == "$uuid" ]] ||
        scn_fail "the host's volume does not carry the real UUID and token"

    scn_boot mode=tpm fail_checks=pcr15,again
    first=$(marker_rc sealroot)
    second=$(marker_rc 'second unlock')
    log "$SCN_NAME: first unlock exit $first, second unlock (dry run, same token) exit $second"
    # The unsealed secret does not open the host's keyslot (Luks); a
    # volume key that is not the enrolled one would be VolumeRefused.
    [[ $first == "$(exit_code Luks)" || $first == "$(exit_code VolumeRefused)" ]] ||
        scn_fail "boot $SCN_BOOT: sealroot exit $first on the host's volume, expected $(exit_code Luks) (Luks) or $(exit_code VolumeRefused) (VolumeRefused)$(first_failure)"
    [[ $second == "$(exit_code PcrMismatch)" ]] ||
        scn_fail "boot $SCN_BOOT: second unlock exit $second, expected $(exit_code PcrMismatch) (PcrMismatch: PCR 15 locked)"
    sed -n '/HARNESS: second unlock start/,$p' "$SCN_LOG" | grep -aq 'PCR 15 differs' ||
        scn_fail "boot $SCN_BOOT: the second unlock did not name PCR 15"
    expect_root_not_mounted
    expect_no_shell_poweroff
    expect_pcr15_locked
}
