# shellcheck shell=bash
# The boot scenarios. Each gets a fresh VM (copy of the built disk, fresh
# OVMF variable store, fresh swtpm state) and fails through scn_fail.

SCENARIOS=(first-boot-enroll unlock tamper-initrd tamper-cmdline reboot-loop new-tpm-recovery relock
    snp-hcl update-kernel revoke-old-policy initramfs-tools dracut hook-missing-lib)
SCENARIOS+=(ephemeral-root ephemeral-no-persist ephemeral-nonpersisted-tpm ephemeral-no-tpm ephemeral-guard
    ephemeral-verity)
# lib/distro-ephemeral.sh
SCENARIOS+=(initramfs-tools-ephemeral dracut-ephemeral distro-ephemeral-data)
# lib/hostile.sh
SCENARIOS+=(hostile-header fs-confusion)
# lib/volumes.sh
SCENARIOS+=(two-volumes)
# lib/systemd.sh
SCENARIOS+=(systemd-enrolled)
# lib/tdx.sh
SCENARIOS+=(tdx-hcl)
# lib/state.sh
SCENARIOS+=(state-volume two-vms-one-image)
# lib/rekey.sh
SCENARIOS+=(first-boot-rekey two-vms-one-image-rekey)
REBOOT_LOOP_BOOTS=${SEALROOT_HARNESS_REBOOT_LOOP:-10}

# Scenarios that `run` starts beside the others when it runs several
# (SEALROOT_HARNESS_SIDE=0: all in turn): long, one VM at a time, and
# sharing nothing with the others but the built artefacts.
is_side_scenario() {
    case $1 in
    first-boot-rekey | two-vms-one-image-rekey | state-volume | two-vms-one-image | tdx-hcl | two-volumes | systemd-enrolled) return 0 ;;
    *) return 1 ;;
    esac
}

describe_scenario() {
    case $1 in
    first-boot-enroll) echo "first boot enrolls the TPM and mounts the root; provisioning keyslot removed" ;;
    unlock) echo "second boot unlocks with the TPM only" ;;
    tamper-initrd) echo "an initramfs with one extra file is refused (PCR 9), the original still unlocks" ;;
    tamper-cmdline) echo "policy without PCR 9; init=/bin/sh on the command line is refused via PCR 15" ;;
    reboot-loop) echo "$REBOOT_LOOP_BOOTS consecutive reboots of one VM all unlock" ;;
    new-tpm-recovery) echo "a factory-fresh TPM is refused cleanly; the escrowed recovery key opens the root" ;;
    relock) echo "from the real root, a second sealroot unlock --dry-run fails with exit code 4" ;;
    initramfs-tools) echo "Debian 12 root, initrd by update-initramfs with sealroot's hook: enroll, unlock, tampered initrd refused, recovery prompt, no key: power off, no shell" ;;
    dracut) echo "Debian 12 root, systemd initrd by dracut with 90sealroot: enroll, unlock, tampered initrd refused, recovery prompt, no key: power off, no shell" ;;
    tdx-hcl) echo "Azure-style vTPM with a TDX HCL report (TDREPORT): enroll with the TDX requirement (MRTD), unlock; another MRTD refused (exit 10)" ;;
    snp-hcl) echo "Azure-style vTPM with an SEV-SNP HCL report: enroll with the SNP requirement, unlock; other measurement / no report refused (exit 10)" ;;
    update-kernel) echo "signed-policy enrollment; the builder signs the predicted PCRs of a new initramfs, which unlocks without re-enrollment; an unsigned one is refused naming PCR 9 and the initrd event" ;;
    revoke-old-policy) echo "after sealroot policy revoke --below 2 in the new system, the old image with its old signed policy is refused" ;;
    hook-missing-lib) echo "without the TCTI module in the hook's list, update-initramfs and dracut fail at build time" ;;
    ephemeral-root) echo "overlay root: read-only OS + ephemeral upper; boot 2 finds a fresh empty upper layer, the marker gone" ;;
    ephemeral-no-persist) echo "after an ephemeral boot, neither the disk images nor the swtpm state hold the marker; no TPM object or NV index" ;;
    ephemeral-nonpersisted-tpm) echo "a factory-new TPM on every boot (NonPersistedTPM): ephemeral root works, TPM RNG mixed, integrity on boot 2" ;;
    ephemeral-no-tpm) echo "no TPM at all: crypttab-configured ephemeral data disk with integrity, kernel RNG only" ;;
    ephemeral-verity) echo "overlay root whose read-only OS layer is opened through dm-verity (root hash on the command line); a changed OS image is not mounted" ;;
    ephemeral-guard) echo "ephemeral mode pointed at the enrolled LUKS root is refused (exit 12); the root still unlocks" ;;
    hostile-header) echo "the host rewrites the token's keyslot as cipher_null with its own volume key: refused (exit 13, cipher_null named), PCR 15 locked, no shell" ;;
    systemd-enrolled) echo "root enrolled by systemd-cryptenroll on the host (PCRs 0+4+7+9 replayed from the event log, PCR 15 at zero): sealroot unlocks it at a measured boot; from the root PCR 15 refuses it" ;;
    fs-confusion) echo "the host swaps in its own volume with the real UUID and token: refused; a second unlock in that boot fails on PCR 15" ;;
    initramfs-tools-ephemeral) echo "Debian 12 root as a dm-verity OS image, initrd by update-initramfs: overlay root on a fresh ephemeral upper; a file is gone after reboot; one changed OS byte refused by verity; the persistent root at the ephemeral line refused by the guard, untouched; power off, no shell" ;;
    dracut-ephemeral) echo "the same with the systemd initrd built by dracut (sealroot-overlay.service)" ;;
    distro-ephemeral-data) echo "Debian 12 root, update-initramfs: TPM-unlocked root and data disk plus an ephemeral scratch disk with integrity in one boot; the scratch disk is empty after reboot" ;;
    two-volumes) echo "root plus a data disk in one crypttab, both opened by one sealroot boot (first boot enrolls both); from the booted root neither unseals again" ;;
    state-volume) echo "verity OS + state volume: a power cut after mkfs (before the final marker) is formatted afresh, a file written survives the reboot, a changed OS byte is refused by verity, a foreign LUKS2 volume in the state's place is refused (exit 12, PCR 15 locked, no shell)" ;;
    two-vms-one-image) echo "two VMs from one image, each its own swtpm: their state volumes' key fingerprints differ, nothing the image holds opens either, and one VM's state disk is refused in the other" ;;
    first-boot-rekey) echo "256 MiB root re-keyed at first boot; QEMU killed ${REKEY_KILLS:-20}+ times mid re-encryption; every next boot resumes, the last finishes; file tree intact; image keys open nothing" ;;
    two-vms-one-image-rekey) echo "two VMs from one image, each its own swtpm, re-key at first boot: their volume-key fingerprints differ; the provisioning key opens neither" ;;
    *) return 1 ;;
    esac
}

# First boot: enroll, then check the volume from the host.
enroll_boot() {
    scn_boot mode=tpm "$@"
    expect_sealroot_rc Ok
    expect_root_up
    expect_enrolled_volume
}

unlock_boot() {
    scn_boot mode=tpm "$@"
    expect_sealroot_rc Ok
    expect 'HARNESS: root mounted'
    expect_root_up
}

scenario_first_boot_enroll() {
    enroll_boot
    expect_token_pcrs 0,4,7,9,15
}

scenario_unlock() {
    enroll_boot
    unlock_boot
}

scenario_tamper_initrd() {
    enroll_boot
    scn_boot --tampered mode=tpm
    expect_sealroot_rc PcrMismatch
    expect 'PCR 9 differs' "sealroot did not name PCR 9 as the reason"
    expect_root_not_mounted
    # Nothing was damaged: the untouched initramfs still unlocks.
    unlock_boot
}

scenario_tamper_cmdline() {
    enroll_boot pcrs=0,4,7
    expect_token_pcrs 0,4,7,15
    unlock_boot
    scn_boot --append "init=/bin/sh" mode=tpm
    expect_sealroot_rc PcrMismatch
    expect 'PCR 15 differs' "sealroot did not name PCR 15 (its command-line PCR) as the reason"
    expect_not 'PCR 9 differs' "PCR 9 is not in this policy but was reported"
    expect_root_not_mounted
}

scenario_reboot_loop() {
    local i
    enroll_boot root_action=reboot
    for i in $(seq "$REBOOT_LOOP_BOOTS"); do
        unlock_boot root_action=reboot
        expect 'ROOT: reboot' "reboot $i: the root did not reboot"
    done
}

scenario_new_tpm_recovery() {
    enroll_boot
    vm_reset_tpm "$SCN_VM"
    scn_boot --recovery-key mode=recovery
    expect_sealroot_rc TpmIdentity
    expect "HARNESS: recovery rc=$(exit_code Ok)" "the recovery key did not open the volume$(first_failure)"
    expect_root_up
}

scenario_relock() {
    enroll_boot root_checks=relock
    expect_relocked "after enrollment"
    unlock_boot root_checks=relock
    expect_relocked "after a TPM unlock"
}

expect_relocked() {
    local got
    got=$(grep -aoE 'ROOT-CHECK: relock rc=[0-9]+' "$SCN_LOG" || echo 'no relock result')
    expect "ROOT-CHECK: relock rc=$(exit_code PcrMismatch)" "$1: $got, expected exit code $(exit_code PcrMismatch) (PcrMismatch)"
    expect 'PCR 15 differs' "$1: sealroot did not name its lock PCR 15"
}

# The distro integrations (lib/distro.sh): a debootstrapped Debian 12 root
# per generator; the images come from update-initramfs and dracut run inside
# it, and nothing but the generator's own image steers the boot.
scenario_initramfs_tools() {
    distro_scenario initramfs-tools \
        'sealroot-initramfs: root unlocked with the TPM' \
        'Recovery key or passphrase for root' \
        'sealroot-initramfs: no shell .*: poweroff now' \
        sealroot-initramfs
}

scenario_dracut() {
    distro_scenario dracut \
        'sealroot: (unlocked .* as /dev/mapper/root|first boot: enrolled)' \
        'Recovery key or passphrase for root' \
        'sealroot-dracut: no shell .*: poweroff now' \
        sealroot-dracut
}

# The hook's (module's) list of dlopen()ed libraries without the TCTI
# module: the generator must fail, name the module, and leave the installed
# image alone.
scenario_hook_missing_lib() {
    local tool
    for tool in initramfs-tools dracut; do
        distro_prepare "$tool"
        distro_missing_lib_build "$tool"
    done
}
