# shellcheck shell=bash
# A root enrolled with systemd-cryptenroll (issue #16): the host plays the
# image builder that uses systemd's tooling. Debian 12's systemd-cryptenroll
# (systemd 252) runs on the host against the VM's own swtpm state, bound to
# PCRs 0+4+7+9 at the values a real measured boot of this image reaches,
# and to PCR 15 at zero (so sealroot's lock closes the token after boot).
#
# How the host knows those values: a first boot (key-file mode, so nothing
# is enrolled) prints the firmware's TCG event log; the host starts the
# VM's swtpm with a fresh power cycle, replays the log's sha256 digests into
# it (tpm2_eventlog parses it; EV_NO_ACTION events are not extended), checks
# the replayed PCRs against the log's own totals, and enrolls. The next boot
# is a real measured boot: OVMF and the kernel extend the same PCRs, and
# sealroot unlocks through the systemd-tpm2 token.

# Start a second swtpm on the VM's TPM state for host-side commands (the
# VM is off): unix sockets, TPM2_Startup(CLEAR) done by swtpm. The
# TCTI is swtpm:path=SOCK. Its PID goes to VM_SWTPM_PID too, so that vm_kill_all (the
# scenario's EXIT trap) ends it if the scenario fails meanwhile.
SYSTEMD_HOST_SWTPM_PID=
systemd_host_swtpm_start() {
    local sock=$SCN_VM/host-tpm.sock _
    rm -f "$sock" "$sock.ctrl"
    swtpm socket --tpm2 --tpmstate dir="$SCN_VM/tpm" \
        --server type=unixio,path="$sock" --ctrl type=unixio,path="$sock.ctrl" \
        --flags not-need-init,startup-clear \
        --log file="$SCN_VM/host-swtpm.log",level=1 &
    SYSTEMD_HOST_SWTPM_PID=$!
    VM_SWTPM_PID=$SYSTEMD_HOST_SWTPM_PID
    for _ in $(seq 100); do
        [[ -S $sock && -S $sock.ctrl ]] && break
        sleep 0.05
    done
    [[ -S $sock ]] || scn_fail "host swtpm socket $sock did not appear"
}

systemd_host_swtpm_stop() {
    [[ -n $SYSTEMD_HOST_SWTPM_PID ]] || return 0
    kill "$SYSTEMD_HOST_SWTPM_PID" 2>/dev/null || true
    wait "$SYSTEMD_HOST_SWTPM_PID" 2>/dev/null || true
    SYSTEMD_HOST_SWTPM_PID=
    VM_SWTPM_PID=
}

# "PCR DIGEST" lines: the sha256 digest of every extending event of a TCG
# event log, in log order.
eventlog_sha256_extends() {
    tpm2_eventlog "$1" | awk '
        /^- EventNum:/ { pcr = ""; type = ""; alg = "" }
        /^  PCRIndex:/ { pcr = $2 }
        /^  EventType:/ { type = $2 }
        /^  - AlgorithmId:/ { alg = $3 }
        /^    Digest:/ && alg == "sha256" && type != "EV_NO_ACTION" {
            d = $2; gsub(/"/, "", d); print pcr, d; alg = ""
        }'
}

# The log's own sha256 totals: "PCR 0xHEX" lines.
eventlog_sha256_totals() {
    tpm2_eventlog "$1" | awk '
        /^pcrs:/ { p = 1 }
        p && /^  sha256:/ { s = 1; next }
        p && s && /^  [a-z0-9]+:/ { s = 0 }
        p && s { print $1, $3 }'
}

# Replay the log into the host swtpm and check PCRs 0, 4, 7 and 9.
systemd_replay_eventlog() {
    local tcti=$1 log=$2 pcr digest want got
    while read -r pcr digest; do
        TPM2TOOLS_TCTI=$tcti tpm2_pcrextend "$pcr:sha256=$digest" >>"$SCN_VM/host.log" 2>&1 ||
            scn_fail "replaying the event log: extending PCR $pcr failed (see $SCN_VM/host.log)"
    done < <(eventlog_sha256_extends "$log")
    for pcr in 0 4 7 9; do
        want=$(eventlog_sha256_totals "$log" | awk -v p="$pcr" '$1 == p { print tolower($2) }')
        got=$(TPM2TOOLS_TCTI=$tcti tpm2_pcrread "sha256:$pcr" | awk '/0x/ { print tolower($3) }')
        [[ -n $want && $got == "$want" ]] ||
            scn_fail "replayed PCR $pcr is '$got', the event log says '$want'"
    done
}

# The systemd-tpm2 token ids in the VM's header.
systemd_tokens_of_vm() {
    cryptsetup luksDump "$SCN_VM/disk.img" |
        awk '/^Tokens:/ { t = 1; next } /^[A-Z]/ { t = 0 } t && $2 == "systemd-tpm2" { sub(":", "", $1); print $1 }'
}

scenario_systemd_enrolled() {
    local tcti=swtpm:path=$SCN_VM/host-tpm.sock
    # Boot 1: opened with the provisioning key; prints the event log.
    scn_boot mode=keyfile eventlog=1
    expect_root_up
    sed -n '/^EVLOG-BEGIN/,/^EVLOG-END/p' "$SCN_LOG" | tr -d '\r' |
        grep -E '^[A-Za-z0-9+/=]+$' | base64 -d >"$SCN_VM/eventlog.bin" ||
        scn_fail "boot $SCN_BOOT: the event log on the console does not decode"
    [[ -s $SCN_VM/eventlog.bin ]] || scn_fail "boot $SCN_BOOT: no event log on the console"

    # The image build: systemd-cryptenroll against the VM's TPM at the
    # replayed PCRs (PCR 15 still zero).
    systemd_host_swtpm_start
    systemd_replay_eventlog "$tcti" "$SCN_VM/eventlog.bin"
    SYSTEMD_TPM2_DEVICE='' PASSWORD='' systemd-cryptenroll \
        --unlock-key-file="$ARTEFACTS_DIR/provision.key" --tpm2-device="$tcti" \
        --tpm2-pcrs=0+4+7+9+15 --tpm2-with-pin=no "$SCN_VM/disk.img" \
        </dev/null >>"$SCN_VM/host.log" 2>&1 ||
        scn_fail "systemd-cryptenroll failed (see $SCN_VM/host.log)"
    systemd_host_swtpm_stop
    [[ -n $(systemd_tokens_of_vm) ]] || scn_fail "no systemd-tpm2 token after systemd-cryptenroll"
    [[ -z $(sealroot_tokens) ]] || scn_fail "a sealroot token before the systemd boot"

    # Boot 2: a real measured boot; sealroot opens the root through the
    # systemd token (not through a first-boot enrollment), then from the
    # real root a second unlock finds PCR 15 locked.
    scn_boot mode=tpm systemd_token=1 root_checks=relock
    expect_sealroot_rc Ok
    expect 'unlocked /dev/vda as /dev/mapper/root with keyslot [0-9]+ \(systemd-tpm2 token [0-9]+\)' \
        "sealroot did not unlock through the systemd-tpm2 token$(first_failure)"
    expect_not 'first boot' "sealroot ran a first-boot enrollment instead"
    expect_root_up
    expect "ROOT-CHECK: relock rc=$(exit_code PcrMismatch)" \
        "a second unlock from the booted root was not refused with exit $(exit_code PcrMismatch)"
    expect 'PCR 15 is in the policy and is not zero' "the refusal did not name PCR 15"
    [[ -z $(sealroot_tokens) ]] || scn_fail "boot $SCN_BOOT enrolled a sealroot token"

    # Boot 3: the next boot unlocks the same way.
    scn_boot mode=tpm systemd_token=1
    expect_sealroot_rc Ok
    expect 'systemd-tpm2 token' "boot 3 did not unlock through the systemd-tpm2 token"
    expect_root_up
}
