# shellcheck shell=bash
# Boot one VM: swtpm + QEMU (TCG, q35, OVMF) with a hard timeout. Every
# process is started here and killed here, by PID.

OVMF_CODE=${SEALROOT_HARNESS_OVMF_CODE:-/usr/share/OVMF/OVMF_CODE_4M.fd}
OVMF_VARS=${SEALROOT_HARNESS_OVMF_VARS:-/usr/share/OVMF/OVMF_VARS_4M.fd}
VM_MEMORY=${SEALROOT_HARNESS_MEMORY:-1024}
VM_TIMEOUT=${SEALROOT_HARNESS_TIMEOUT:-180}
# TCG emulation works everywhere (no /dev/kvm needed); kvm is much faster.
VM_ACCEL=${SEALROOT_HARNESS_ACCEL:-tcg}
# Fixed kernel command line: it is measured (PCR 9 and sealroot's PCR 15),
# so every boot that should unlock uses exactly this string. loglevel=7 puts
# sealroot's info lines (written to /dev/kmsg at level 6) on the console.
VM_CMDLINE_BASE="console=ttyS0,115200 printk.time=1 printk.devkmsg=on loglevel=7 panic=-1"

VM_SWTPM_PID=
VM_QEMU_PID=

# Optional, per boot (the caller sets them before vm_boot and resets them):
# VM_KERNEL        boot this kernel image instead of the harness kernel.
# VM_CONSOLE_TYPE  ERE FILE pairs: the serial console becomes a pty, and when
#                  the console shows the ERE (its Nth time for the Nth pair
#                  with that ERE), the content of FILE plus a newline is typed
#                  at it. An empty FILE name types an empty line.
# VM_STOP_ON       ERE: when the console shows it, the boot ends there (QEMU
#                  is killed, vm_boot returns 0), e.g. a shell waiting for
#                  input that the test has seen enough of.
# VM_EXTRA_DISKS   more raw disk images, attached after the VM's disk.img
#                  (/dev/vdb, /dev/vdc, ...).
# VM_NO_TPM=1      boot without a TPM (no swtpm, no TPM device).
VM_KERNEL=
VM_EXTRA_DISKS=()
VM_NO_TPM=
VM_CONSOLE_TYPE=()
VM_STOP_ON=

# Kill whatever this shell started and has not reaped yet (also the trap
# handler): SIGTERM, then SIGKILL after 5 s. Only our own PIDs, never by name.
vm_kill_all() {
    local pid i
    for pid in "$VM_QEMU_PID" "$VM_SWTPM_PID"; do
        [[ -n $pid ]] || continue
        kill "$pid" 2>/dev/null || true
        for i in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    VM_QEMU_PID=
    VM_SWTPM_PID=
}

# Create a VM directory: per-VM OVMF variable store, TPM state, disk copy.
vm_create() {
    local vmdir=$1 disk=$2
    rm -rf "$vmdir"
    mkdir -p "$vmdir/tpm"
    cp "$OVMF_VARS" "$vmdir/OVMF_VARS.fd"
    cp --sparse=always "$disk" "$vmdir/disk.img"
    echo 0 >"$vmdir/boots"
}

# Replace the VM's TPM with a factory-fresh one (new SRK, empty NV).
vm_reset_tpm() {
    local vmdir=$1
    rm -rf "$vmdir/tpm"
    mkdir -p "$vmdir/tpm"
}

vm_start_swtpm() {
    local vmdir=$1 sock=$1/swtpm.sock _
    rm -f "$sock"
    swtpm socket --tpm2 \
        --tpmstate dir="$vmdir/tpm" \
        --ctrl type=unixio,path="$sock" \
        --log file="$vmdir/swtpm.log",level=1 \
        --terminate &
    VM_SWTPM_PID=$!
    for _ in $(seq 100); do
        [[ -S $sock ]] && return 0
        kill -0 "$VM_SWTPM_PID" 2>/dev/null || die "swtpm exited at start (see $vmdir/swtpm.log)"
        sleep 0.05
    done
    die "swtpm socket $sock did not appear"
}

# Type the answer of VM_CONSOLE_TYPE pair number I (0-based) at the console
# pty when its ERE has shown up often enough; fails (types nothing) if not
# yet. The pty is opened raw, so the guest gets exactly FILE's bytes and a
# newline, and held open for a while: QEMU polls a pty for a reader about
# once a second and only then reads what was typed.
vm_console_type() {
    local log=$1 pty=$2 i=$3 ere file seen=0 want=0 j fd
    ere=${VM_CONSOLE_TYPE[i * 2]}
    file=${VM_CONSOLE_TYPE[i * 2 + 1]}
    for ((j = 0; j <= i; j++)); do
        [[ ${VM_CONSOLE_TYPE[j * 2]} == "$ere" ]] && want=$((want + 1))
    done
    seen=$(grep -acE "$ere" "$log" || true)
    ((seen >= want)) || return 1
    stty -F "$pty" raw -echo 2>/dev/null || true
    exec {fd}>"$pty"
    if [[ -n $file ]]; then
        printf '%s\n' "$(cat "$file")" >&"$fd"
    else
        printf '\n' >&"$fd"
    fi
    sleep 2.5
    exec {fd}>&-
    return 0
}

# vm_boot VMDIR INITRD CONSOLE_LOG CMDLINE_EXTRA [NAME=FILE...]
# Boots until the guest powers off (or reboots: -no-reboot makes QEMU exit)
# or the timeout hits. Each NAME=FILE becomes the fw_cfg file
# opt/sealroot-harness/NAME (not measured by OVMF: PCRs do not change).
# Returns 0 when QEMU exited by itself, 124 on timeout, 125 on a QEMU error.
# Writes the console to CONSOLE_LOG (CRs stripped; raw in CONSOLE_LOG.raw)
# and the wall time in ms to VMDIR/last-ms.
vm_boot() {
    local vmdir=$1 initrd=$2 console=$3 extra=$4 item
    local kernel cmdline start deadline rc=0 n typed=0 pty= stopped=0
    local -a serial=(-serial "file:$console.raw")
    shift 4
    kernel=${VM_KERNEL:-$(kernel_image_in "$KERNEL_DIR")}
    cmdline=$VM_CMDLINE_BASE${extra:+ $extra}
    local -a fwcfg=() disks=() tpmdev=()
    for item in "${VM_EXTRA_DISKS[@]}"; do
        disks+=(-drive "file=$item,format=raw,if=none,id=xdisk${#disks[@]},cache=unsafe"
            -device "virtio-blk-pci,drive=xdisk${#disks[@]}")
    done
    for item in "$@"; do
        fwcfg+=(-fw_cfg "name=opt/sealroot-harness/${item%%=*},file=${item#*=}")
    done

    n=$(($(cat "$vmdir/boots") + 1))
    echo "$n" >"$vmdir/boots"
    if ((${#VM_CONSOLE_TYPE[@]})); then
        # A pty the harness can type at; QEMU still logs all output.
        serial=(-chardev "pty,id=ser0,logfile=$console.raw,logappend=off" -serial chardev:ser0)
    fi
    : >"$console.raw"
    if [[ -z $VM_NO_TPM ]]; then
        vm_start_swtpm "$vmdir"
        tpmdev=(-chardev "socket,id=chrtpm,path=$vmdir/swtpm.sock"
            -tpmdev emulator,id=tpm0,chardev=chrtpm -device tpm-crb,tpmdev=tpm0)
    fi
    start=$(now_ms)
    qemu-system-x86_64 \
        -nodefaults -no-user-config -no-reboot \
        -accel "$VM_ACCEL" -machine q35 -cpu max -m "$VM_MEMORY" -smp 1 \
        -drive "if=pflash,format=raw,unit=0,readonly=on,file=$OVMF_CODE" \
        -drive "if=pflash,format=raw,unit=1,file=$vmdir/OVMF_VARS.fd" \
        -kernel "$kernel" -initrd "$initrd" -append "$cmdline" \
        "${tpmdev[@]}" \
        -drive "file=$vmdir/disk.img,format=raw,if=none,id=disk0,cache=unsafe" \
        -device virtio-blk-pci,drive=disk0 "${disks[@]}" \
        "${fwcfg[@]}" \
        -display none -monitor none "${serial[@]}" \
        >"$vmdir/qemu.log" 2>&1 &
    VM_QEMU_PID=$!
    deadline=$((start + VM_TIMEOUT * 1000))
    while kill -0 "$VM_QEMU_PID" 2>/dev/null; do
        if (($(now_ms) > deadline)); then
            log "boot $n of $(basename "$vmdir") hit the ${VM_TIMEOUT}s timeout; killing QEMU (pid $VM_QEMU_PID)"
            printf "\nHARNESS-HOST: TIMEOUT after %ss, QEMU killed\n" "$VM_TIMEOUT" >>"$console.raw"
            rc=124
            break
        fi
        if [[ -n $VM_STOP_ON ]] && grep -aqE "$VM_STOP_ON" "$console.raw"; then
            log "boot $n of $(basename "$vmdir"): console shows /$VM_STOP_ON/; ending the boot there"
            printf "\nHARNESS-HOST: STOPPED at /%s/\n" "$VM_STOP_ON" >>"$console.raw"
            stopped=1
            break
        fi
        if ((typed * 2 < ${#VM_CONSOLE_TYPE[@]})); then
            [[ -n $pty ]] || pty=$(sed -nE 's/.*char device redirected to (\/dev\/pts\/[0-9]+).*/\1/p' "$vmdir/qemu.log" | head -n 1)
            if [[ -n $pty ]] && vm_console_type "$console.raw" "$pty" "$typed"; then
                typed=$((typed + 1))
            fi
        fi
        sleep 0.1
    done
    echo $(($(now_ms) - start)) >"$vmdir/last-ms"
    # A stopped boot's QEMU is still running: vm_kill_all ends it below.
    if ((rc == 0 && !stopped)); then
        wait "$VM_QEMU_PID" || rc=$?
        # QEMU's own failure (bad option, missing file) is not a guest result.
        if ((rc != 0)); then
            log "QEMU exited with $rc: $(tail -3 "$vmdir/qemu.log")"
            rc=125
        fi
        VM_QEMU_PID=
    fi
    if ((rc == 0 && !stopped && typed * 2 < ${#VM_CONSOLE_TYPE[@]})); then
        log "boot $n of $(basename "$vmdir"): ended before all console input was typed ($typed of $((${#VM_CONSOLE_TYPE[@]} / 2)))"
    fi
    vm_kill_all
    # The serial console ends lines with CRLF; keep a LF-only copy for grep.
    tr -d '\r' <"$console.raw" >"$console"
    return "$rc"
}
