#!/bin/bash
# shellcheck disable=SC2154 # dracut provides initdir, moddir, kernel, ...
# dracut module for sealroot (systemd initrds): unlock the TPM-sealed root
# volume before the root device is needed. See docs/distro.md.
#
# Installs sealroot with every library it needs, including the TCTI module
# tss2-tctildr loads with dlopen(), the dm-crypt, cipher and TPM kernel
# modules, the sealroot lines of /etc/crypttab and the files they name, the
# oneshot sealroot.service (`sealroot boot`, no shell involved), its
# OnFailure= unit sealroot-failure.service (PCR 15 lock, recovery prompt,
# then poweroff: fail closed), an emergency hook that keeps dracut's
# emergency shell away from a sealroot boot, sealroot-overlay.service (the
# ephemeral overlay root) and, for ephemeral volumes, mkfs.ext4 and the
# overlay, dm-verity, dm-integrity and authenc modules. Then it checks the image with
# its own dynamic loader and aborts the build when something is missing.

# Libraries sealroot loads with dlopen() (not visible to ldd).
SEALROOT_DLOPEN_LIBS="libtss2-tcti-device.so.0"
# Kernel modules the unlock needs (built in is fine): the dm crypt target,
# the XTS mode of LUKS2's default cipher, and the TPM 2.0 drivers.
SEALROOT_MODULES="dm_crypt xts ecb"
SEALROOT_MODULES_OPTIONAL="aesni_intel"
SEALROOT_TPM_MODULES="tpm_crb tpm_tis"
# What ephemeral volumes and the overlay root need (docs/ephemeral.md),
# when a crypttab line is ephemeral or sealroot_ephemeral=yes is set in a
# dracut configuration file: the overlay root, its dm-verity OS layer, the
# upper layer's file system and --integrity's dm-integrity,
# authenc(hmac(sha256),xts(aes)) and hmac. Each must exist (built in or a
# module); mkfs.ext4 and /etc/mke2fs.conf come with them.
SEALROOT_EPHEMERAL_MODULES="overlay dm_verity ext4 dm_integrity authenc hmac"
# What first-boot re-keying needs, when a crypttab line has sealroot-rekey or
# sealroot_rekey=yes is set: libcryptsetup re-encrypts offline through the
# kernel crypto API (AF_ALG).
SEALROOT_REKEY_MODULES="af_alg algif_skcipher"

# The sealroot lines of the host's crypttab (the options field has "sealroot").
sealroot_crypttab_lines() {
    local crypttab=${dracutsysrootdir}/etc/crypttab
    [[ -r $crypttab ]] || return 0
    awk '!/^[[:space:]]*(#|$)/ {
        n = split($4, o, ",")
        for (i = 1; i <= n; i++) if (o[i] == "sealroot") { print; break }
    }' "$crypttab"
}

sealroot_crypttab_option() {
    sealroot_crypttab_lines | awk -v k="$1" '{
        n = split($4, o, ",")
        for (i = 1; i <= n; i++) if (index(o[i], k "=") == 1) print substr(o[i], length(k) + 2)
    }'
}

# Yes when the image must carry what ephemeral volumes need.
sealroot_wants_ephemeral() {
    case ${sealroot_ephemeral:-} in
    y | yes | 1) return 0 ;;
    esac
    sealroot_crypttab_lines | awk '{ n = split($4, o, ","); for (i = 1; i <= n; i++) if (o[i] == "sealroot-ephemeral") f = 1 }
        END { exit !f }'
}

# Yes when the image must carry what first-boot re-keying needs.
sealroot_wants_rekey() {
    case ${sealroot_rekey:-} in
    y | yes | 1) return 0 ;;
    esac
    sealroot_crypttab_lines | awk '{ n = split($4, o, ","); for (i = 1; i <= n; i++) if (o[i] == "sealroot-rekey") f = 1 }
        END { exit !f }'
}

sealroot_fail() {
    dfatal "sealroot: $*"
    dfatal "sealroot: refusing to build an initramfs that could not unlock the root (docs/distro.md)"
    # module_install() ignores install()'s status: end dracut here, so the
    # broken image is never written (dracut's exit trap cleans up).
    exit 1
}

# Included without being asked for in host-only images whose crypttab has a
# sealroot line; otherwise on request (add_dracutmodules+=" sealroot ").
check() {
    require_binaries sealroot || return 1
    if [[ $hostonly ]] && [[ -n $(sealroot_crypttab_lines) ]]; then
        return 0
    fi
    return 255
}

# systemd: the unit; dm: dmsetup and the device-mapper udev rules, without
# which libdevmapper waits forever for udev to acknowledge the new device.
depends() {
    echo systemd dm
    return 0
}

# Install the kernel modules named after WHY (what needs them), each of
# which must exist, built in or as a module.
sealroot_require_modules() {
    local why=$1 m
    shift
    for m in "$@"; do
        modinfo -k "$kernel" "$m" >/dev/null 2>&1 ||
            sealroot_fail "kernel $kernel has no $m, neither built in nor as a module ($why needs it)"
    done
    hostonly='' instmods -c "$@" || sealroot_fail "cannot install the kernel modules $*"
}

installkernel() {
    local m
    # shellcheck disable=SC2086 # lists of module names
    hostonly='' instmods -c $SEALROOT_MODULES || return 1
    # shellcheck disable=SC2086
    hostonly='' instmods $SEALROOT_MODULES_OPTIONAL
    # shellcheck disable=SC2086
    hostonly='' instmods $SEALROOT_TPM_MODULES
    if sealroot_wants_rekey; then
        # shellcheck disable=SC2086
        sealroot_require_modules "first-boot re-keying" $SEALROOT_REKEY_MODULES
    fi
    if sealroot_wants_ephemeral; then
        # shellcheck disable=SC2086
        sealroot_require_modules "an ephemeral volume or the overlay root" $SEALROOT_EPHEMERAL_MODULES
    fi
    for m in $SEALROOT_TPM_MODULES; do
        modinfo -k "$kernel" "$m" >/dev/null 2>&1 && return 0
    done
    dfatal "sealroot: kernel $kernel has neither tpm_crb nor tpm_tis"
    return 1
}

install() {
    local lib path f t lines interp out missing tctis
    # Resolve the libraries now, not in dracut's lazy pass at the end of the
    # build (which also skips non-executable files such as the TCTI module):
    # the check below must see the image as it will boot.
    # shellcheck disable=SC2034 # read by dracut's inst_* functions
    local DRACUT_RESOLVE_DEPS=1

    inst_binary /usr/sbin/sealroot || sealroot_fail "cannot install /usr/sbin/sealroot"
    for lib in $SEALROOT_DLOPEN_LIBS; do
        path=$(ldconfig -p | awk -v n="$lib" '$1 == n { print $NF; exit }')
        [[ -n $path ]] || sealroot_fail "$lib is not installed (Debian package libtss2-tcti-device0)"
        inst_library "$path" || sealroot_fail "cannot install $path"
    done
    inst_multiple -o stty tr # the recovery prompt
    inst_multiple cat sleep systemctl ||
        sealroot_fail "cannot install cat, sleep, systemctl (the fail-closed end of a refused boot)"

    inst_simple "$moddir/sealroot.service" "$systemdsystemunitdir/sealroot.service"
    # sealroot.service's OnFailure=: lock, recovery prompt, power off.
    inst_simple "$moddir/sealroot-failure.service" "$systemdsystemunitdir/sealroot-failure.service"
    inst_simple "$moddir/sealroot-lib.sh" /usr/lib/sealroot/sealroot-lib.sh
    inst_script "$moddir/sealroot-failure.sh" /usr/lib/sealroot/sealroot-failure
    $SYSTEMCTL -q --root "$initdir" add-wants initrd-root-device.target sealroot.service
    # The overlay root (sealroot.overlay= on the command line; a no-op
    # without it): after sysroot.mount, before initrd-root-fs.target.
    inst_simple "$moddir/sealroot-overlay.service" "$systemdsystemunitdir/sealroot-overlay.service"
    inst_script "$moddir/sealroot-overlay.sh" /usr/lib/sealroot/sealroot-overlay
    inst_script "$moddir/sealroot-verity-check.sh" /usr/lib/sealroot/sealroot-verity-check
    inst_multiple mount mkdir dd dmsetup ||
        sealroot_fail "cannot install mount, mkdir, dd, dmsetup (the overlay root, the verity check)"
    $SYSTEMCTL -q --root "$initdir" add-wants initrd-root-fs.target sealroot-overlay.service
    if sealroot_wants_ephemeral; then
        local mkfs
        mkfs=$(command -v mkfs.ext4) ||
            sealroot_fail "mkfs.ext4 is not installed (e2fsprogs): ephemeral volumes could not be formatted"
        # e2fsprogs' mke2fs as a file named mkfs.ext4 (it takes the file
        # system type from its name), whatever else provides mke2fs.
        local mke2fs
        mke2fs=$(readlink -f "$mkfs")
        inst_binary "$mke2fs" /usr/sbin/mkfs.ext4 || sealroot_fail "cannot install $mke2fs"
        cmp -s "$mke2fs" "$initdir/usr/sbin/mkfs.ext4" ||
            sealroot_fail "the image's /usr/sbin/mkfs.ext4 is not e2fsprogs' $mke2fs"
        [[ -r ${dracutsysrootdir}/etc/mke2fs.conf ]] ||
            sealroot_fail "/etc/mke2fs.conf is missing (e2fsprogs): mkfs.ext4 would format with built-in defaults"
        inst_simple /etc/mke2fs.conf || sealroot_fail "cannot install /etc/mke2fs.conf"
        # Tells the emergency hook that this boot is sealroot's even with
        # no sealed volume (an ephemeral root): no shell after a failure.
        mkdir -p "$initdir/etc/sealroot"
        echo "ephemeral volumes configured: a failed boot powers off, no shell (docs/ephemeral.md)" \
            >"$initdir/etc/sealroot/ephemeral"
    fi
    # When dracut's crypt module is in too, systemd-cryptsetup@NAME.service
    # must find the volume already open rather than race sealroot for it.
    inst_simple "$moddir/sealroot-cryptsetup.conf" \
        "$systemdsystemunitdir/systemd-cryptsetup@.service.d/sealroot.conf"
    # Any emergency mode of a sealroot boot: lock, then power off (the shell
    # only with sealroot-on-failure=shell); with rd.shell=0 as well.
    inst_hook emergency 20 "$moddir/sealroot-emergency.sh"
    inst_hook shutdown-emergency 20 "$moddir/sealroot-emergency.sh"

    # sealroot's own parser reads the whole crypttab first: a line that
    # mentions sealroot in a form the awk above does not select fails the
    # build here rather than being skipped at boot; its warnings are shown.
    if [[ -r ${dracutsysrootdir}/etc/crypttab ]]; then
        local whole
        whole=$(/usr/sbin/sealroot boot --print-config --crypttab "${dracutsysrootdir}/etc/crypttab" \
            --cmdline-file /dev/null --log stderr 2>&1 >/dev/null) ||
            sealroot_fail "sealroot rejects /etc/crypttab: $whole"
        [[ -z $whole ]] || dwarn "sealroot: $whole"
    fi
    # Every sealroot line: one `sealroot boot` opens them all and locks
    # PCR 15 once behind them (docs/design.md#several-volumes-in-one-boot).
    lines=$(sealroot_crypttab_lines)
    if [[ -n $lines ]]; then
        # sealroot's own parser (the one the boot uses) checks the line now,
        # so a mistake fails the build instead of the boot.
        local err
        err=$(/usr/sbin/sealroot boot --print-config --crypttab <(printf '%s\n' "$lines") \
            --cmdline-file /dev/null --log stderr 2>&1 >/dev/null) ||
            sealroot_fail "sealroot rejects the sealroot lines of /etc/crypttab: $err"
        # Once the volume is open (by the recovery prompt, or by hand in the
        # emergency shell of on-failure=shell), leaving the emergency mode
        # restarts the boot transaction: the unit must then be a no-op, not a
        # second failure.
        # The primary volume is the first sealed line (or the one root=
        # names at boot; this condition is about a restarted transaction
        # only). Ephemeral lines do not count: an ephemeral volume's name
        # is no sign that the sealed ones are open.
        local primary
        primary=$(awk '$4 !~ /(^|,)sealroot-ephemeral(,|$)/ { print $1; exit }' <<<"$lines")
        if [[ -n $primary ]]; then
            mkdir -p "$initdir$systemdsystemunitdir/sealroot.service.d"
            printf '[Unit]\nConditionPathExists=!/dev/mapper/%s\n' "$primary" \
                >"$initdir$systemdsystemunitdir/sealroot.service.d/50-open.conf"
        fi
        # dracut's crypt module may have written its own lines: add each of
        # ours that is absent.
        local line
        while IFS= read -r line; do
            [[ -f $initdir/etc/crypttab ]] && grep -qxF -- "$line" "$initdir/etc/crypttab" && continue
            printf '%s\n' "$line" >>"$initdir/etc/crypttab"
        done <<<"$lines"
    fi
    for f in $(sealroot_crypttab_option sealroot-provision-key) $(sealroot_crypttab_option sealroot-policy-key) \
        $(sealroot_crypttab_option sealroot-blob) $(sealroot_crypttab_option header) \
        ${sealroot_files:-}; do
        [[ $f == /* ]] || sealroot_fail "$f (named in /etc/crypttab) is not an absolute path"
        if [[ ! -e $dracutsysrootdir$f ]]; then
            dwarn "sealroot: $f does not exist; not copied"
            continue
        fi
        inst_simple "$f" || sealroot_fail "cannot install $f"
        chmod 0400 "$initdir$f"
    done

    # Verify with the image's own loader (dracut runs as root).
    interp=$(ldd /usr/sbin/sealroot | awk '$1 ~ /^\// && $2 ~ /^\(/ { print $1; exit }')
    sealroot_check_closure() {
        out=$(chroot "$initdir" "$interp" --list "$2" 2>&1) ||
            sealroot_fail "$1: the image's loader cannot load $2: ${out//$'\n'/ }"
        missing=$(awk '/not found/ { printf " %s", $1 }' <<<"$out")
        [[ -z $missing ]] || sealroot_fail "$1: libraries missing from the image:$missing"
    }
    [[ -n $interp ]] || sealroot_fail "cannot find the dynamic loader of /usr/sbin/sealroot"
    # The loader itself (dracut adds it only later in the build otherwise).
    inst "$interp" || sealroot_fail "cannot install the dynamic loader $interp"
    if [[ ! -e $initdir$interp ]]; then
        interp=$(readlink -f "$interp")
        [[ -e $initdir$interp ]] || sealroot_fail "the dynamic loader $interp is not in the image"
    fi
    sealroot_check_closure /usr/sbin/sealroot /usr/sbin/sealroot
    if sealroot_wants_ephemeral; then
        [[ -e $initdir/usr/sbin/mkfs.ext4 ]] || sealroot_fail "mkfs.ext4 is not in the image"
        sealroot_check_closure mkfs.ext4 /usr/sbin/mkfs.ext4
    fi
    # Against the TCTIs the configuration needs, not SEALROOT_DLOPEN_LIBS:
    # a module missing from that list is caught here.
    tctis="device ${sealroot_tctis:-}"
    for t in $(sealroot_crypttab_option sealroot-tcti); do
        tctis+=" ${t%%:*}"
    done
    for t in $tctis; do
        lib=libtss2-tcti-$t.so.0
        path=$(ldconfig -p | awk -v n="$lib" '$1 == n { print $NF; exit }')
        [[ -n $path ]] || sealroot_fail "$lib (the TCTI module for --tcti $t:...) is not installed"
        if [[ -e $initdir$path ]]; then
            :
        elif [[ -e $initdir/usr$path ]]; then
            path=/usr$path
        else
            sealroot_fail "$lib is not in the image: tss2-tctildr loads it with dlopen() for --tcti $t:..., so the TPM would be unreachable at boot (SEALROOT_DLOPEN_LIBS must list it)"
        fi
        sealroot_check_closure "TCTI module $lib" "$path"
    done
}
