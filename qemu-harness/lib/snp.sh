# shellcheck shell=bash
# Scenario snp-hcl: an Azure-style vTPM carrying an SEV-SNP "HCL report" at NV
# index 0x01400001 (the sample captured on a real Azure CVM, in
# tests/fixtures/snp/). The first boot enrolls with a platform requirement
# (this launch measurement), the next boot checks the stored requirement
# before unsealing; another measurement, or a vTPM without the report, is
# refused with exit 10 before anything is unsealed.

SNP_HCL_REPORT=$REPO_DIR/tests/fixtures/snp/hcl-report-snp.bin
# The launch measurement inside that report, and one that is not.
SNP_GOOD_MEASUREMENT=5a71e4ba7e0b83e44c8e853130a65557db0a7782cdb2d906c54b0bf5878202805ab159bfe0cf7d5749aa6f62b7094508
SNP_BAD_MEASUREMENT=7a1e5c26000000000000000000000000000000000000000000000000000000000000000000000000000000000000841f

# Write the HCL report into the NV index of the current VM's (not yet
# started) swtpm state, with a private swtpm on a free TCP port.
snp_provision_hcl() {
    local state=$SCN_VM/tpm port pid dir
    mkdir -p "$state"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    swtpm socket --tpm2 --tpmstate dir="$state" \
        --server type=tcp,port="$port",bindaddr=127.0.0.1 \
        --ctrl type=tcp,port=$((port + 1)),bindaddr=127.0.0.1 \
        --flags not-need-init,startup-clear &
    pid=$!
    dir=$(mktemp -d)
    (
        export TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=$port" TSS2_LOG=all+NONE
        for _ in $(seq 50); do tpm2_getcap properties-fixed >/dev/null 2>&1 && break; sleep 0.1; done
        head -c 1024 "$SNP_HCL_REPORT" >"$dir/c0"
        tail -c +1025 "$SNP_HCL_REPORT" >"$dir/c1"
        tpm2_nvdefine 0x01400001 -C o -s "$(stat -c %s "$SNP_HCL_REPORT")" \
            -a "ownerread|ownerwrite|authread|authwrite" >/dev/null
        tpm2_nvwrite 0x01400001 -C o --offset 0 -i "$dir/c0"
        tpm2_nvwrite 0x01400001 -C o --offset 1024 -i "$dir/c1"
        tpm2_shutdown -c
    ) || { kill "$pid"; wait "$pid" 2>/dev/null; rm -rf "$dir"; scn_fail "provisioning the HCL report failed"; }
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    rm -rf "$dir"
}

scenario_snp_hcl() {
    # 1. First boot on an SNP-attested vTPM: enrolls with the requirement.
    scn_init snp-hcl
    snp_provision_hcl
    scn_boot mode=tpm snp_measurement=$SNP_GOOD_MEASUREMENT
    expect_sealroot_rc Ok
    expect_root_up
    expect 'platform verified: SEV-SNP'
    local id
    for id in $(sealroot_tokens); do
        cryptsetup token export --token-id "$id" "$SCN_VM/disk.img" | grep -q '"platform"' ||
            scn_fail "token $id does not carry the platform requirement"
    done
    # 2. Next boot: the stored requirement is checked, then the TPM unlocks.
    unlock_boot
    expect 'platform verified: SEV-SNP'

    # 3. A requirement for another launch measurement is refused.
    scn_init snp-hcl-other-measurement
    snp_provision_hcl
    scn_boot mode=tpm snp_measurement=$SNP_BAD_MEASUREMENT
    expect_sealroot_rc Platform
    expect 'measurement'
    expect_not 'HARNESS: root mounted'

    # 4. A vTPM without the report, when SNP is required, is refused.
    scn_init snp-hcl-no-report
    scn_boot mode=tpm snp_measurement=$SNP_GOOD_MEASUREMENT
    expect_sealroot_rc Platform
    expect_not 'HARNESS: root mounted'
}
