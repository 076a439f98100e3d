# shellcheck shell=bash
# Signed-policy scenarios (issue #8): the host plays the image builder. It
# holds the policy-signing key ($ARTEFACTS_DIR/policy-priv.pem), reads the
# firmware's event log from the first boot's console, predicts the PCRs of
# the next image with `sealroot policy sign --from-eventlog`, and ships the
# signature in the LUKS2 header (`sealroot policy install`) while the VM is
# off.

# sealroot on the host (the harness's own build).
host_sealroot() {
    "$HARNESS_SEALROOT_BIN" --log stderr "$@"
}

# First boot in signed-policy mode; saves the event log it printed.
signed_first_boot() {
    scn_boot mode=tpm policy_key=1 eventlog=1 "$@"
    expect_sealroot_rc Ok
    expect_root_up
    expect_token_pcrs 15
    sed -n '/^EVLOG-BEGIN/,/^EVLOG-END/p' "$SCN_LOG" | tr -d '\r' |
        grep -E '^[A-Za-z0-9+/=]+$' | base64 -d >"$SCN_VM/eventlog.bin" ||
        scn_fail "boot $SCN_BOOT: the event log on the console does not decode"
    [[ -s $SCN_VM/eventlog.bin ]] || scn_fail "boot $SCN_BOOT: no event log on the console"
}

# sign_for NAME VERSION [INITRD]: sign the PCRs of a boot of INITRD (default:
# the one the log was captured with) and install the policy in the header.
sign_for() {
    local name=$1 version=$2 initrd=${3:-} out=$SCN_VM/policy-$1.json
    local -a sub=()
    if [[ -n $initrd ]]; then
        # QEMU patches the initrd's size into the kernel it hands to OVMF,
        # so PCR 4 changes with the initrd too.
        sub=(--initrd "$initrd" --kernel "$(kernel_image_in "$KERNEL_DIR")"
            --qemu-direct-boot "$VM_MEMORY")
    fi
    host_sealroot policy sign --key "$ARTEFACTS_DIR/policy-priv.pem" --pcrs 0,4,7,9 \
        --from-eventlog "$SCN_VM/eventlog.bin" "${sub[@]}" --version "$version" \
        --description "image $name" --out "$out" >>"$SCN_VM/host.log" 2>&1 ||
        scn_fail "policy sign for image $name failed (see $SCN_VM/host.log)"
    host_sealroot policy install --device "$SCN_VM/disk.img" "$out" >>"$SCN_VM/host.log" 2>&1 ||
        scn_fail "policy install for image $name failed (see $SCN_VM/host.log)"
}

sealroot_token_json() {
    cryptsetup token export --token-id "$(sealroot_tokens | head -n 1)" "$SCN_VM/disk.img"
}

signed_unlock_boot() {
    scn_boot "$@" mode=tpm
    expect_sealroot_rc Ok
    expect 'signed policy .* matches this boot' "sealroot did not unlock through a signed policy"
    expect_root_up
}

scenario_update_kernel() {
    local token
    signed_first_boot
    sign_for current 1
    signed_unlock_boot
    expect 'version 1, "image current"'
    token=$(sealroot_token_json)
    # The update: a new initramfs, predicted and signed by the builder.
    sign_for updated 1 "$ARTEFACTS_DIR/initramfs-updated.cpio.gz"
    signed_unlock_boot --updated
    expect '"image updated"' "the updated image did not unlock with its own signed policy"
    [[ $(sealroot_token_json) == "$token" ]] || scn_fail "the sealroot token changed: the update re-enrolled"
    # An initramfs nobody signed is refused, and the message says why.
    scn_boot --tampered mode=tpm
    expect_sealroot_rc PcrMismatch
    expect 'PCR 9 differs.*initrd measurement changed' "sealroot did not name PCR 9 and the initrd event"
    expect_root_not_mounted
}

scenario_revoke_old_policy() {
    signed_first_boot
    sign_for old 1
    sign_for new 2 "$ARTEFACTS_DIR/initramfs-updated.cpio.gz"
    # Before the revocation both images open.
    signed_unlock_boot
    expect '"image old"'
    # The new image boots and its system revokes everything below version 2.
    signed_unlock_boot --updated root_checks=revoke
    expect '"image new"'
    expect "ROOT-CHECK: revoke rc=$(exit_code Ok)" "sealroot policy revoke failed in the booted system"
    # The old image with its (validly signed) old policy is refused.
    scn_boot mode=tpm
    expect_sealroot_rc PcrMismatch
    expect 'version 1\) is revoked' "sealroot did not say the old policy is revoked"
    expect_root_not_mounted
    signed_unlock_boot --updated
}
