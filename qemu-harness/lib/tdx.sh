# shellcheck shell=bash
# Scenario tdx-hcl: an Azure-style vTPM carrying a TDX "HCL report" (report
# type 4, a TDREPORT inside) at NV index 0x01400001: the sample captured on
# a real Azure TDX CVM (tests/fixtures/snp/hcl-report-tdx.bin), with its
# runtime data compacted to the HCLAkPub key so it fits swtpm's 2048-byte NV
# index limit and report_data re-bound to it (as tests/tdx_platform.rs does;
# the TDREPORT's MAC cannot be checked off the platform anyway). The first
# boot enrolls with a TDX requirement (this MRTD), the next boot checks the
# stored requirement before unsealing; another MRTD is refused with exit 10
# before anything is unsealed.

TDX_HCL_SAMPLE=$REPO_DIR/tests/fixtures/snp/hcl-report-tdx.bin
# The MRTD inside that report, and one that is not (the bare-TDX sample's).
TDX_GOOD_MRTD=75f3acc2e1dfc3acf404d7eaa69a2eefcd0475a0dd6516ef5ba3cb83399c61b4aa1c638e3622bb650a514bfc6e858886
TDX_BAD_MRTD=91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7

# Write the fitted TDX HCL report into the NV index of the current VM's
# (not yet started) swtpm state, with a private swtpm on a free TCP port.
tdx_provision_hcl() {
    local state=$SCN_VM/tpm port pid dir
    mkdir -p "$state"
    dir=$(mktemp -d)
    python3 - "$TDX_HCL_SAMPLE" "$dir/hcl" <<'PY' || scn_fail "fitting the TDX HCL report failed"
import hashlib, json, struct, sys
b = open(sys.argv[1], "rb").read()
size = struct.unpack_from("<I", b, 8)[0]
v = json.loads(b[1236:size])
v["keys"] = [k for k in v["keys"] if k.get("kid") == "HCLAkPub"]
v.pop("user-data", None)
var = json.dumps(v, separators=(",", ":")).encode()
out = bytearray(b[:1236] + var)
struct.pack_into("<I", out, 8, len(out))
struct.pack_into("<I", out, 1216, 20 + len(var))
struct.pack_into("<I", out, 1232, len(var))
out[160:192] = hashlib.sha256(var).digest()
assert len(out) <= 2048, len(out)
open(sys.argv[2], "wb").write(out)
PY
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    swtpm socket --tpm2 --tpmstate dir="$state" \
        --server type=tcp,port="$port",bindaddr=127.0.0.1 \
        --ctrl type=tcp,port=$((port + 1)),bindaddr=127.0.0.1 \
        --flags not-need-init,startup-clear &
    pid=$!
    (
        export TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=$port" TSS2_LOG=all+NONE
        for _ in $(seq 50); do tpm2_getcap properties-fixed >/dev/null 2>&1 && break; sleep 0.1; done
        head -c 1024 "$dir/hcl" >"$dir/c0"
        tail -c +1025 "$dir/hcl" >"$dir/c1"
        tpm2_nvdefine 0x01400001 -C o -s "$(stat -c %s "$dir/hcl")" \
            -a "ownerread|ownerwrite|authread|authwrite" >/dev/null
        tpm2_nvwrite 0x01400001 -C o --offset 0 -i "$dir/c0"
        tpm2_nvwrite 0x01400001 -C o --offset 1024 -i "$dir/c1"
        tpm2_shutdown -c
    ) || { kill "$pid"; wait "$pid" 2>/dev/null; rm -rf "$dir"; scn_fail "provisioning the TDX HCL report failed"; }
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    rm -rf "$dir"
}

scenario_tdx_hcl() {
    # 1. First boot on a TDX-attested vTPM: enrolls with the requirement.
    scn_init tdx-hcl
    tdx_provision_hcl
    scn_boot mode=tpm tdx_mrtd=$TDX_GOOD_MRTD
    expect_sealroot_rc Ok
    expect_root_up
    expect 'platform verified: TDX'
    local id
    for id in $(sealroot_tokens); do
        cryptsetup token export --token-id "$id" "$SCN_VM/disk.img" | grep -q '"tdx"' ||
            scn_fail "token $id does not carry the TDX requirement"
    done
    # 2. Next boot: the stored requirement is checked, then the TPM unlocks.
    unlock_boot
    expect 'platform verified: TDX'

    # 3. A requirement for another MRTD is refused before unsealing.
    scn_init tdx-hcl-other-mrtd
    tdx_provision_hcl
    scn_boot mode=tpm tdx_mrtd=$TDX_BAD_MRTD
    expect_sealroot_rc Platform
    expect 'mrtd check failed'
    expect_not 'HARNESS: root mounted'
}
