# shellcheck shell=bash
# Distro integration: a debootstrapped Debian 12 root per initramfs
# generator (initramfs-tools, dracut) with the Debian cloud kernel package,
# the generator and sealroot's initramfs-tools hook or dracut module, all
# installed INSIDE the root (chroot; nothing is installed on the host). The
# initramfs is built in the root by update-initramfs or dracut, and the root
# itself, LUKS2-encrypted, is the guest's disk. See docs/distro.md.
#
#   .cache/distro/base/            debootstrap --variant=minbase + shared packages
#   .cache/distro/<tool>/root/     copy of base + kernel + generator + clevis
#   .cache/distro/<tool>/out/      vmlinuz, initrd images (sealroot, tampered,
#                                  baseline, clevis), disk.img, keys, sizes
#   .cache/distro/initramfs-sizes  initramfs_bytes_added_* (read by bench)
#   .cache/distro/boot-times       time to root per generator
#
# The chroot mounts (proc, sys, dev) exist only while a command runs in the
# root; nothing is ever deleted under a root that still has a mount.

DISTRO_DIR=$CACHE_DIR/distro
DISTRO_SUITE=bookworm
DISTRO_MIRROR=${SEALROOT_HARNESS_DEBIAN_MIRROR:-http://deb.debian.org/debian}
DISTRO_SECURITY_MIRROR=${SEALROOT_HARNESS_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
# init=: the harness's marker script instead of the root's systemd (see
# guest/distro-root-marker). Both generators honour it.
DISTRO_ROOT_INIT=/usr/local/sbin/sealroot-harness-root-marker
DISTRO_CMDLINE="root=/dev/mapper/root init=$DISTRO_ROOT_INIT"
DISTRO_NAME=root

# In both roots: systemd as init, what sealroot links against, the TCTI
# module, and clevis with its TPM2 pin (the comparison).
DISTRO_BASE_PKGS=(
    systemd systemd-sysv udev dbus busybox kmod zstd dmsetup linux-base
    libcryptsetup12 libtss2-esys-3.0.2-0 libtss2-mu0 libtss2-sys1 libtss2-tctildr0 libtss2-tcti-device0
    clevis clevis-tpm2 clevis-luks
)
DISTRO_PKGS_initramfs_tools=(initramfs-tools cryptsetup-initramfs clevis-initramfs)
DISTRO_PKGS_dracut=(dracut clevis-dracut)
# The generator-specific packages a variant without clevis does not have.
DISTRO_CLEVIS_PKGS_initramfs_tools=(clevis-initramfs cryptsetup-initramfs)
# What the cryptsetup variant (cryptsetup's own integration, the floor any
# encrypted root pays) leaves out.
DISTRO_CLEVIS_ONLY_PKGS_initramfs_tools=(clevis-initramfs)
# dracut: what the sealroot-only and baseline images leave out. crypt is
# there only because clevis-luks pulls in cryptsetup; ifcfg and network
# only because clevis-dracut pulls in dracut-network.
DISTRO_DRACUT_NO_CLEVIS=(clevis clevis-pin-null clevis-pin-sss clevis-pin-tang clevis-pin-tpm2 crypt ifcfg network)

# Scenarios that build their own VM disk (lib/scenarios.sh defines them).
DISTRO_SCENARIOS=(initramfs-tools dracut hook-missing-lib)

distro_owns_scenario() {
    [[ " ${DISTRO_SCENARIOS[*]} " == *" $1 "* ]]
}

# The scenario's VM directory, empty until distro_vm_init puts a disk in it.
distro_scn_init() {
    rm -rf "${VMS_DIR:?}/$1"
    mkdir -p "$VMS_DIR/$1"
    echo 0 >"$VMS_DIR/$1/boots"
    scn_use "$1"
}

distro_log() {
    log "distro: $*"
}

# Inside a scenario, a build failure is the scenario's FAIL reason.
distro_die() {
    if [[ -n ${SCN_VM:-} ]]; then
        log "error: $*"
        scn_fail "$*"
    fi
    distro_die "$*"
}

# Unmount everything mounted under ROOT (deepest first).
distro_umount_all() {
    local root m
    root=$(realpath -m "$1")
    for m in $(awk -v r="$root" '$2 == r || index($2, r "/") == 1 { print $2 }' /proc/mounts | sort -r); do
        umount "$m" 2>/dev/null || umount -l "$m" ||
            die "cannot unmount $m"
    done
}

# rm -rf that refuses to cross into a mounted file system.
distro_rm_root() {
    local d=$1
    [[ -e $d ]] || return 0
    distro_umount_all "$d"
    if awk -v r="$(realpath -m "$d")" 'index($2, r "/") == 1 { f = 1 } END { exit !f }' /proc/mounts; then
        die "refusing to delete $d: something is still mounted under it"
    fi
    rm -rf --one-file-system "$d"
}

# Run a command inside ROOT with /proc, /sys and /dev mounted (and the shared
# apt archive), unmounting whatever happens.
distro_chroot() {
    local root=$1 rc=0
    shift
    mkdir -p "$DISTRO_DIR/apt-archives/partial"
    mount -t proc proc "$root/proc"
    mount -t sysfs sysfs "$root/sys"
    mount --bind /dev "$root/dev"
    mount --bind "$DISTRO_DIR/apt-archives" "$root/var/cache/apt/archives"
    LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive INITRD=No \
        chroot "$root" "$@" </dev/null || rc=$?
    distro_umount_all "$root"
    return "$rc"
}

distro_apt_sources() {
    cat >"$1/etc/apt/sources.list" <<EOF
deb $DISTRO_MIRROR $DISTRO_SUITE main
deb $DISTRO_MIRROR $DISTRO_SUITE-updates main
deb $DISTRO_SECURITY_MIRROR $DISTRO_SUITE-security main
EOF
    # No recommends, as in a minimal image; every dependency is explicit.
    cat >"$1/etc/apt/apt.conf.d/90sealroot-harness" <<EOF
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Retries "3";
EOF
}

# The shared base root (debootstrap + the packages both roots have).
distro_base() {
    local base=$DISTRO_DIR/base key t0
    key=$({ declare -f distro_base distro_apt_sources; echo "$DISTRO_SUITE $DISTRO_MIRROR $DISTRO_SECURITY_MIRROR"; echo "${DISTRO_BASE_PKGS[*]}"; } | sha256sum | cut -c1-16)
    if [[ -f $base/.complete && $(cat "$base/.complete") == "$key" ]]; then
        return 0
    fi
    need_cmd debootstrap
    t0=$(now_ms)
    distro_log "debootstrap $DISTRO_SUITE (minbase) into $base"
    distro_rm_root "$base"
    mkdir -p "$DISTRO_DIR/apt-archives"
    debootstrap --variant=minbase --cache-dir="$DISTRO_DIR/apt-archives" \
        "$DISTRO_SUITE" "$base" "$DISTRO_MIRROR" >"$DISTRO_DIR/debootstrap.log" 2>&1 ||
        distro_die "debootstrap failed (see $DISTRO_DIR/debootstrap.log)"
    distro_apt_sources "$base"
    distro_log "installing ${DISTRO_BASE_PKGS[*]}"
    { distro_chroot "$base" apt-get update -q &&
        distro_chroot "$base" apt-get install -y -q "${DISTRO_BASE_PKGS[@]}" &&
        distro_chroot "$base" apt-get clean; } >"$DISTRO_DIR/base-apt.log" 2>&1 ||
        distro_die "installing the base packages failed (see $DISTRO_DIR/base-apt.log)"
    echo "$key" >"$base/.complete"
    distro_log "base root ready in $((($(now_ms) - t0) / 1000))s"
}

distro_pkgs() {
    local -n pkgs="DISTRO_PKGS_${1//-/_}"
    echo "${pkgs[*]}"
}

# The generator's root: a copy of the base with the kernel (the harness's
# own package file, so it is the kernel every other scenario boots), the
# generator, and clevis's integration for it.
distro_tool_root() {
    local tool=$1 dir=$DISTRO_DIR/$1 root=$DISTRO_DIR/$1/root key deb t0
    local -a pkgs
    read -ra pkgs <<<"$(distro_pkgs "$tool")"
    deb=$(echo "$KERNEL_DIR"/*.deb)
    [[ -f $deb ]] || distro_die "no kernel package in $KERNEL_DIR"
    key=$({ cat "$DISTRO_DIR/base/.complete"; declare -f distro_tool_root; basename "$deb"; echo "${pkgs[*]}"; } | sha256sum | cut -c1-16)
    if [[ -f $root/.complete && $(cat "$root/.complete") == "$key" ]]; then
        return 0
    fi
    t0=$(now_ms)
    distro_log "$tool: creating $root"
    distro_rm_root "$root"
    mkdir -p "$dir"
    cp -a "$DISTRO_DIR/base" "$root"
    rm -f "$root/.complete"
    cp "$deb" "$root/tmp/"
    distro_log "$tool: installing $(basename "$deb") ${pkgs[*]} in the root"
    { distro_chroot "$root" apt-get install -y -q "/tmp/$(basename "$deb")" "${pkgs[@]}" &&
        distro_chroot "$root" apt-get clean; } >"$dir/apt.log" 2>&1 ||
        distro_die "installing the $tool packages failed (see $dir/apt.log)"
    rm -f "$root/tmp/$(basename "$deb")"
    echo "$key" >"$root/.complete"
    distro_log "$tool: root ready in $((($(now_ms) - t0) / 1000))s"
}

distro_kver() {
    local d
    d=$(echo "$1"/usr/lib/modules/*)
    [[ -d $d ]] || distro_die "no kernel modules in $1"
    basename "$d"
}

# Install sealroot and its integration into the root, configured for the
# encrypted root volume with UUID.
distro_install_sealroot() {
    local tool=$1 root=$2 out=$3 bin=$4 uuid=$5
    install -m 0755 "$bin" "$root/usr/sbin/sealroot"
    case $tool in
    initramfs-tools)
        "$REPO_DIR/initramfs-hooks/install" --root "$root" --prefix /usr/share/initramfs-tools >/dev/null
        # The image holds the provisioning key until the first boot.
        echo "UMASK=0077" >"$root/etc/initramfs-tools/conf.d/sealroot-umask"
        ;;
    dracut)
        "$REPO_DIR/dracut/install" --root "$root" >/dev/null
        ;;
    esac
    install -d -m 0700 "$root/etc/sealroot"
    install -m 0400 "$out/provision.key" "$root/etc/sealroot/provision.key"
    distro_crypttab_sealroot "$root" "$uuid"
    cp "$out/root-id" "$root/etc/root-id"
    install -m 0755 "$HARNESS_DIR/guest/distro-root-marker" "$root$DISTRO_ROOT_INIT"
    rm -f "$root/etc/systemd/system/sealroot-harness-root.service" \
        "$root/etc/systemd/system/sysinit.target.wants/sealroot-harness-root.service"
    echo sealroot-guest >"$root/etc/hostname"
}

# The root's line, and the data disk's (/dev/vdb; both open in one boot,
# docs/design.md#several-volumes-in-one-boot).
distro_crypttab_sealroot() {
    local opts=sealroot,sealroot-provision-key=/etc/sealroot/provision.key
    {
        echo "$DISTRO_NAME UUID=$2 none $opts"
        echo "data UUID=$(cat "$DISTRO_OUT/data-uuid") none $opts"
    } >"$1/etc/crypttab"
}

# clevis unlocks through cryptsetup-initramfs's cryptroot, which takes the
# volume from crypttab ("initramfs": include it although / is not on it in
# this chroot).
distro_crypttab_clevis() {
    echo "$DISTRO_NAME UUID=$2 none luks,initramfs" >"$1/etc/crypttab"
}

# Files a package installs under the initramfs-tools trees.
distro_itools_files() {
    local root=$1 p
    shift
    for p in "$@"; do
        chroot "$root" dpkg -L "$p"
    done | grep -E '^/(usr/share/initramfs-tools|etc/initramfs-tools|etc/cryptsetup-initramfs)/' |
        while read -r f; do [[ -f $root$f ]] && echo "$f"; done
}

# Put back whatever an interrupted build left in STASH.
distro_unstash_all() {
    local root=$1 stash=$2 f
    [[ -d $stash ]] || return 0
    while IFS= read -r f; do
        mkdir -p "$root$(dirname "$f")"
        mv "$stash$f" "$root$f"
    done < <(cd "$stash" && find . -type f | sed 's/^\.//')
    rm -rf "$stash"
}

# Move FILES (paths in ROOT) aside into STASH, or back.
distro_stash() {
    local root=$1 stash=$2 dir=$3 f
    shift 3
    for f in "$@"; do
        if [[ $dir == out ]]; then
            [[ -e $root$f ]] || continue
            mkdir -p "$stash$(dirname "$f")"
            mv "$root$f" "$stash$f"
        else
            [[ -e $stash$f ]] || continue
            mv "$stash$f" "$root$f"
        fi
    done
}

# Build one initramfs in the root with the generator; copy it to DEST.
# VARIANT: sealroot (the boot image), baseline (no disk-encryption
# integration at all), clevis (clevis's, with the TPM2 pin), cryptsetup
# (cryptsetup's own: cryptroot, or dracut's crypt module); eph-* is the
# sealroot image with the crypttab the caller wrote (lib/distro-ephemeral.sh).
# With MODE "update", the image in /boot is updated in place (as
# update-initramfs -u and dracut --force do), not deleted first.
distro_build_initrd() {
    local tool=$1 root=$2 variant=$3 dest=$4 uuid=$5 mode=${6:-fresh} kver rc=0 stash
    local -a hide=() args=()
    kver=$(distro_kver "$root")
    stash=$DISTRO_DIR/$tool/stash
    case $variant in
    sealroot | baseline) distro_crypttab_sealroot "$root" "$uuid" ;;
    rekey)
        distro_crypttab_sealroot "$root" "$uuid"
        sed -i '1s/$/,sealroot-rekey/' "$root/etc/crypttab"
        ;;
    clevis | cryptsetup) distro_crypttab_clevis "$root" "$uuid" ;;
    eph-*) ;;
    esac
    case $tool in
    initramfs-tools)
        local -a sealroot_files=(/usr/share/initramfs-tools/hooks/sealroot /usr/share/initramfs-tools/scripts/local-top/sealroot
            /usr/share/initramfs-tools/scripts/panic/sealroot /usr/share/initramfs-tools/scripts/sealroot-functions)
        local -a clevis_files clevis_only
        distro_unstash_all "$root" "$stash"
        mapfile -t clevis_files < <(distro_itools_files "$root" "${DISTRO_CLEVIS_PKGS_initramfs_tools[@]}")
        mapfile -t clevis_only < <(distro_itools_files "$root" "${DISTRO_CLEVIS_ONLY_PKGS_initramfs_tools[@]}")
        case $variant in
        sealroot | rekey | eph-*) hide=("${clevis_files[@]}") ;;
        baseline) hide=("${clevis_files[@]}" "${sealroot_files[@]}") ;;
        clevis) hide=("${sealroot_files[@]}") ;;
        cryptsetup) hide=("${clevis_only[@]}" "${sealroot_files[@]}") ;;
        esac
        distro_stash "$root" "$stash" out "${hide[@]}"
        if [[ $mode == update ]]; then
            distro_chroot "$root" update-initramfs -u -k "$kver" || rc=$?
        else
            rm -f "$root/boot/initrd.img-$kver"
            distro_chroot "$root" update-initramfs -c -k "$kver" || rc=$?
        fi
        distro_stash "$root" "$stash" back "${hide[@]}"
        ;;
    dracut)
        case $variant in
        sealroot | rekey | eph-*) args=(--add sealroot --omit "${DISTRO_DRACUT_NO_CLEVIS[*]}") ;;
        baseline) args=(--omit "sealroot ${DISTRO_DRACUT_NO_CLEVIS[*]}") ;;
        clevis) args=(--add "clevis clevis-pin-tpm2" --omit sealroot) ;;
        cryptsetup) args=(--add crypt --omit "sealroot ${DISTRO_DRACUT_NO_CLEVIS[*]/crypt/}") ;;
        esac
        [[ $mode == update ]] || rm -f "$root/boot/initrd.img-$kver"
        distro_chroot "$root" dracut --force --no-hostonly --kver "$kver" "${args[@]}" "/boot/initrd.img-$kver" || rc=$?
        ;;
    esac
    distro_crypttab_sealroot "$root" "$uuid"
    ((rc == 0)) || return "$rc"
    [[ -z $dest ]] || cp "$root/boot/initrd.img-$kver" "$dest"
}

# Does the image IMG (built by TOOL in ROOT) hold a file whose path has NAME?
distro_initrd_has() {
    local tool=$1 root=$2 img=$3 name=$4 lister=lsinitramfs
    [[ $tool == dracut ]] && lister=lsinitrd
    local listing
    cp "$img" "$root/tmp/sealroot-check.img"
    listing=$(distro_chroot "$root" "$lister" /tmp/sealroot-check.img 2>/dev/null) || listing=
    rm -f "$root/tmp/sealroot-check.img"
    grep -q -- "$name" <<<"$listing"
}

# The tampered initramfs: the generator's image plus an appended cpio
# archive with one file nothing reads (the kernel unpacks both).
distro_tamper() {
    local src=$1 dest=$2 tmp
    tmp=$(mktemp -d)
    mkdir -p "$tmp/etc"
    echo "tampered $(random_hex 8)" >"$tmp/etc/sealroot-harness-unused"
    cp "$src" "$dest"
    (cd "$tmp" && find etc | cpio --create --format=newc --owner=0:0 --quiet) >>"$dest"
    rm -rf "$tmp"
}

# The root file system, LUKS2-encrypted offline with the UUID its crypttab
# names (the same way lib/build.sh builds the harness disk).
distro_build_disk() {
    local root=$1 out=$2 uuid=$3 size_mb disk=$2/disk.img
    distro_umount_all "$root"
    size_mb=$(($(du -sm --exclude=./proc --exclude=./sys "$root" | cut -f1) * 5 / 4 + 64))
    rm -f "$out/rootfs.ext4" "$disk.tmp"
    truncate -s "${size_mb}M" "$out/rootfs.ext4"
    mkfs.ext4 -q -F -L sealroot-root -d "$root" "$out/rootfs.ext4" || distro_die "mkfs.ext4 -d $root failed"
    mv "$out/rootfs.ext4" "$disk.tmp"
    truncate -s "+$LUKS_REDUCE" "$disk.tmp"
    cryptsetup reencrypt --encrypt --type luks2 --batch-mode --uuid "$uuid" \
        --cipher aes-xts-plain64 --key-size 512 --reduce-device-size "$LUKS_REDUCE" \
        --label sealroot-root "${PROVISION_PBKDF[@]}" \
        --key-file "$out/provision.key" "$disk.tmp" >&2 || distro_die "cryptsetup reencrypt --encrypt failed"
    cryptsetup luksAddKey --batch-mode "${RECOVERY_PBKDF[@]}" \
        --key-file "$out/provision.key" "$disk.tmp" "$out/recovery.key" >&2 ||
        distro_die "adding the recovery keyslot failed"
    cryptsetup open --test-passphrase --key-file "$out/recovery.key" "$disk.tmp" ||
        distro_die "recovery key does not open the new volume"
    mv "$disk.tmp" "$disk"
    # The data disk: empty LUKS2 under the same provisioning key.
    rm -f "$out/data.img"
    truncate -s 24M "$out/data.img.tmp"
    cryptsetup luksFormat --batch-mode --type luks2 --uuid "$(cat "$out/data-uuid")" "${PROVISION_PBKDF[@]}" \
        --key-file "$out/provision.key" "$out/data.img.tmp" >&2 || distro_die "luksFormat of the data disk failed"
    mv "$out/data.img.tmp" "$out/data.img"
}

distro_bytes() {
    stat -c %s "$1"
}

# Replace this generator's lines in a "name: value" file.
distro_record() {
    local file=$1 prefix=$2 tmp
    shift 2
    mkdir -p "$(dirname "$file")"
    tmp=$(mktemp "$file.XXXXXX")
    { grep -v -E "^($prefix)" "$file" 2>/dev/null || true; printf '%s\n' "$@"; } | sort >"$tmp"
    mv "$tmp" "$file"
}

# Everything a generator's scenario boots, built (or reused) in
# $DISTRO_DIR/<tool>/out; sets DISTRO_OUT.
distro_prepare() {
    local tool=$1 dir=$DISTRO_DIR/$1 root=$DISTRO_DIR/$1/root out key bin uuid t0 kver
    local base_b seal_b clevis_b crypt_b key_tool=${1//-/_}
    bin=${HARNESS_SEALROOT_BIN:-}
    [[ -n $bin ]] || distro_die "no sealroot binary (harness_build first)"
    need_cmd debootstrap chroot cpio mkfs.ext4 cryptsetup flock
    mkdir -p "$DISTRO_DIR"
    # One harness at a time in the distro roots (another run would unmount
    # this one's chroot); held until the scenario's subshell ends.
    if [[ -z ${DISTRO_LOCK_FD:-} ]]; then
        exec {DISTRO_LOCK_FD}>"$DISTRO_DIR/.lock"
        flock -w 3600 "$DISTRO_LOCK_FD" || distro_die "another harness run holds $DISTRO_DIR/.lock"
    fi
    distro_umount_all "$DISTRO_DIR"
    distro_base
    distro_tool_root "$tool"
    distro_unstash_all "$root" "$dir/stash"
    out=$dir/out
    local -a integration
    case $tool in
    initramfs-tools) integration=("$REPO_DIR"/initramfs-hooks/install "$REPO_DIR"/initramfs-hooks/hooks/* "$REPO_DIR"/initramfs-hooks/scripts/sealroot-functions "$REPO_DIR"/initramfs-hooks/scripts/*/*) ;;
    dracut) integration=("$REPO_DIR"/dracut/install "$REPO_DIR"/dracut/90sealroot/*) ;;
    esac
    key=$({ cat "$root/.complete"; cat "$bin"; cat "${integration[@]}" \
        "$HARNESS_DIR/lib/distro.sh" "$HARNESS_DIR/guest/distro-root-marker"; } | sha256sum | cut -c1-16)
    DISTRO_OUT=$out
    if [[ -f $out/.inputs && $(cat "$out/.inputs") == "$key" && -f $out/disk.img && -f $out/data.img ]]; then
        return 0
    fi
    t0=$(now_ms)
    rm -rf "$out"
    mkdir -p "$out"
    build_keys "$out"
    uuid=$(cat /proc/sys/kernel/random/uuid)
    echo "$uuid" >"$out/uuid"
    cat /proc/sys/kernel/random/uuid >"$out/data-uuid"
    kver=$(distro_kver "$root")
    distro_install_sealroot "$tool" "$root" "$out" "$bin" "$uuid"
    cp "$root/boot/vmlinuz-$kver" "$out/vmlinuz"
    distro_log "$tool: building the initramfs images in the root (baseline, clevis, cryptsetup, sealroot)"
    distro_build_initrd "$tool" "$root" baseline "$out/initrd-baseline.img" "$uuid" >"$out/build-baseline.log" 2>&1 ||
        distro_die "$tool: the baseline image failed to build (see $out/build-baseline.log)"
    distro_build_initrd "$tool" "$root" clevis "$out/initrd-clevis.img" "$uuid" >"$out/build-clevis.log" 2>&1 ||
        distro_die "$tool: the clevis image failed to build (see $out/build-clevis.log)"
    distro_build_initrd "$tool" "$root" cryptsetup "$out/initrd-cryptsetup.img" "$uuid" >"$out/build-cryptsetup.log" 2>&1 ||
        distro_die "$tool: the cryptsetup image failed to build (see $out/build-cryptsetup.log)"
    # A root line with sealroot-rekey: the image carries what offline
    # re-encryption needs (docs/first-boot.md#what-the-image-ships).
    distro_build_initrd "$tool" "$root" rekey "$out/initrd-rekey.img" "$uuid" >"$out/build-rekey.log" 2>&1 ||
        distro_die "$tool: the image for a sealroot-rekey crypttab failed to build (see $out/build-rekey.log)"
    distro_initrd_has "$tool" "$root" "$out/initrd-rekey.img" algif_skcipher ||
        distro_die "$tool: the image for a sealroot-rekey crypttab lacks algif_skcipher"
    # Last, so the root's /boot holds the sealroot image, as installed.
    distro_build_initrd "$tool" "$root" sealroot "$out/initrd.img" "$uuid" >"$out/build-sealroot.log" 2>&1 ||
        distro_die "$tool: the sealroot image failed to build (see $out/build-sealroot.log)"
    distro_tamper "$out/initrd.img" "$out/initrd-tampered.img"
    distro_log "$tool: encrypting the root file system"
    distro_build_disk "$root" "$out" "$uuid"

    base_b=$(distro_bytes "$out/initrd-baseline.img")
    seal_b=$(distro_bytes "$out/initrd.img")
    clevis_b=$(distro_bytes "$out/initrd-clevis.img")
    crypt_b=$(distro_bytes "$out/initrd-cryptsetup.img")
    {
        echo "initramfs_bytes_added_${key_tool}_sealroot: $((seal_b - base_b))"
        echo "initramfs_bytes_added_${key_tool}_clevis: $((clevis_b - base_b))"
        echo "initramfs_bytes_added_${key_tool}_cryptsetup: $((crypt_b - base_b))"
        # Over cryptsetup's own integration (its libraries are the floor
        # of any encrypted root): what choosing sealroot adds.
        echo "initramfs_bytes_over_cryptsetup_${key_tool}_sealroot: $((seal_b - crypt_b))"
        echo "initramfs_bytes_over_cryptsetup_${key_tool}_clevis: $((clevis_b - crypt_b))"
        echo "# ${key_tool}: baseline $base_b, cryptsetup $crypt_b, sealroot $seal_b, clevis $clevis_b bytes (compressed as the generator does by default)"
    } >"$out/sizes"
    echo "$key" >"$out/.inputs"
    distro_log "$tool: images and disk ready in $((($(now_ms) - t0) / 1000))s"
}

# Publish this generator's byte figures (and initramfs_bytes_added, the
# initramfs-tools sealroot figure) into $DISTRO_DIR/initramfs-sizes.
distro_publish_sizes() {
    local tool=$1 key_tool=${1//-/_} line
    local -a lines
    mapfile -t lines <"$DISTRO_OUT/sizes"
    if [[ $tool == initramfs-tools ]]; then
        line=$(grep -E "^initramfs_bytes_added_${key_tool}_sealroot:" "$DISTRO_OUT/sizes")
        lines+=("initramfs_bytes_added: ${line##*: }")
        distro_record "$DISTRO_DIR/initramfs-sizes" \
            "initramfs_bytes_added_${key_tool}_|initramfs_bytes_over_cryptsetup_${key_tool}_|initramfs_bytes_added: |# ${key_tool}:" "${lines[@]}"
    else
        distro_record "$DISTRO_DIR/initramfs-sizes" \
            "initramfs_bytes_added_${key_tool}_|initramfs_bytes_over_cryptsetup_${key_tool}_|# ${key_tool}:" "${lines[@]}"
    fi
    for line in "${lines[@]}"; do
        [[ $line == '#'* ]] || log "$line"
    done
}

# A fresh VM on the generator's disk; makes it the scenario's VM and points
# the helpers of lib/scenario.sh (root id, keys) at the generator's build.
distro_vm_init() {
    vm_create "$VMS_DIR/$1" "$DISTRO_OUT/disk.img"
    scn_use "$1"
    cp --sparse=always "$DISTRO_OUT/data.img" "$SCN_VM/data.img"
    VM_EXTRA_DISKS=("$SCN_VM/data.img")
    ARTEFACTS_DIR=$DISTRO_OUT
}

# distro_boot [--tampered] [--initrd FILE] [--cmdline LINE] [--type ERE FILE]... [--stop ERE]
# Boots the generator's kernel and initramfs (no harness control channel:
# the production scripts alone decide) with root=/dev/mapper/root (or the
# image and command line given).
distro_boot() {
    local initrd=$DISTRO_OUT/initrd.img rc=0 what='' cmdline=$DISTRO_CMDLINE
    VM_CONSOLE_TYPE=()
    VM_STOP_ON=
    while (($#)); do
        case $1 in
        --tampered) initrd=$DISTRO_OUT/initrd-tampered.img; what+=' (tampered initramfs)' ;;
        --initrd) initrd=$2; shift ;;
        --cmdline) cmdline=$2; shift ;;
        --type)
            VM_CONSOLE_TYPE+=("$2" "$3")
            if [[ -n $3 ]]; then what+=" (types $(basename "$3") at /$2/)"; else what+=" (types an empty line at /$2/)"; fi
            shift 2
            ;;
        --stop) VM_STOP_ON=$2; what+=" (stops at /$2/)"; shift ;;
        *) distro_die "distro_boot: unknown option $1" ;;
        esac
        shift
    done
    VM_KERNEL=$DISTRO_OUT/vmlinuz
    SCN_BOOT=$(($(cat "$SCN_VM/boots") + 1))
    SCN_LOG=$SCN_VM/boot-$SCN_BOOT.log
    log "$SCN_NAME: boot $SCN_BOOT$what"
    vm_boot "$SCN_VM" "$initrd" "$SCN_LOG" "$cmdline" || rc=$?
    VM_CONSOLE_TYPE=()
    VM_STOP_ON=
    case $rc in
    0) ;;
    124) scn_fail "boot $SCN_BOOT timed out after ${VM_TIMEOUT}s (QEMU killed)" ;;
    *) scn_fail "boot $SCN_BOOT: QEMU failed (rc=$rc, see $SCN_VM/qemu.log)" ;;
    esac
}

# The root came up through the TPM path of this generator's integration.
distro_expect_tpm_unlock() {
    expect "$1" "no sign of a TPM unlock$(distro_first_error)"
    expect_root_up
    expect "ROOT-CHECK: relock rc=$(exit_code PcrMismatch)" "sealroot could unseal again from the root (relock check: $(grep -aoE 'ROOT-CHECK: relock rc=[0-9]+' "$SCN_LOG" || echo none))"
    expect 'ROOT-CHECK: data mapped' "the data disk of the second crypttab line was not opened$(distro_first_error)"
    expect "ROOT-CHECK: relock data rc=$(exit_code PcrMismatch)" "the data disk's token could be unsealed again from the root ($(grep -aoE 'ROOT-CHECK: relock data rc=[0-9]+' "$SCN_LOG" || echo 'no check'))"
}

# sealroot's own error line, to explain a failed expectation.
distro_first_error() {
    local e
    e=$(grep -aoE 'sealroot: error: .*|sealroot-(initramfs|dracut): .*(failed|cannot).*' "$SCN_LOG" | head -n 1)
    [[ -n $e ]] && echo " ($e)"
}

expect_root_not_up() {
    expect_not 'ROOT-MARKER:' "the root came up although it must stay locked"
    expect_not 'EXT4-fs \(dm-[0-9]+\): mounted filesystem' "the root was mounted although it must stay locked"
}

# Kernel time (ms) from start to the root file system being mounted.
distro_time_to_root() {
    kernel_ms_of 'EXT4-fs \(dm-[0-9]+\): mounted filesystem'
}

# A shell offered on the console: initramfs-tools' panic shell (or its
# panic= reboot, which means panic ran), dracut's emergency mode.
DISTRO_SHELL_ERE='\(initramfs\)|Rebooting automatically due to panic|Entering emergency mode|emergency shell'

# The scenario for one generator; PATTERN_OK is what its integration logs
# when the TPM opened the volume, PROMPT its recovery prompt, GIVE_UP what
# the console shows when the recovery ends without a key, LOG its messages'
# prefix.
distro_scenario() {
    local tool=$1 ok=$2 prompt=$3 give_up=$4 prefix=$5 key_tool=${1//-/_} ms wrong
    distro_prepare "$tool"
    distro_publish_sizes "$tool"
    distro_vm_init "$SCN_NAME"

    # 1: first boot enrolls with the provisioning key from crypttab.
    distro_boot
    expect 'sealroot: first boot: enrolled' "sealroot did not enroll$(distro_first_error)"
    [[ $(grep -acE 'sealroot: first boot: enrolled' "$SCN_LOG") -ge 2 ]] ||
        scn_fail "boot $SCN_BOOT: sealroot did not enroll both crypttab volumes"
    distro_expect_tpm_unlock "$ok"
    expect_enrolled_volume
    expect_token_pcrs 0,4,7,9,15

    # 2: the TPM alone (the provisioning keyslot is gone).
    distro_boot
    distro_expect_tpm_unlock "$ok"
    ms=$(distro_time_to_root)
    [[ -n $ms ]] || scn_fail "no root mount time on the console"
    log "boot_to_root_ms_${key_tool}_sealroot: $ms"
    distro_record "$DISTRO_DIR/boot-times" "boot_to_root_ms_${key_tool}_sealroot:" \
        "boot_to_root_ms_${key_tool}_sealroot: $ms"

    # 3: tampered initramfs: the TPM refuses (PCR 9); at the recovery prompt
    # a wrong key is refused, then the escrowed recovery key opens the root.
    wrong=$SCN_VM/wrong.key
    printf 'not-the-recovery-key' >"$wrong"
    distro_boot --tampered --type "$prompt" "$wrong" --type "$prompt" "$DISTRO_OUT/recovery.key"
    expect 'PCR 9 differs' "sealroot did not name PCR 9$(distro_first_error)"
    expect "$prefix: sealroot lock exit 0" "the integration did not lock PCR 15 after the refusal"
    expect "$prompt" "no recovery prompt on the console"
    expect 'that key did not open' "the wrong recovery key was not refused"
    expect 'unlocked with a recovery key' "the recovery key did not open the volume"
    expect_root_up

    # 4: tampered again, nobody types a key: no root; the integration locks
    # PCR 15, says why and powers the VM off (QEMU exits by itself); no
    # shell (the boot is stopped at once if one shows up).
    distro_boot --tampered --type "$prompt" '' --stop "$DISTRO_SHELL_ERE"
    expect 'PCR 9 differs' "sealroot did not name PCR 9"
    expect "$prefix: sealroot lock exit 0" "the integration did not lock PCR 15 after the refusal"
    expect_not "$DISTRO_SHELL_ERE" "a shell was offered on the console after the refusal"
    expect "$give_up" "the initramfs did not give up as documented"
    expect 'reboot: Power down' "the VM did not power off"
    expect_root_not_up
}

# Build the sealroot image the usual way (update-initramfs -u, dracut
# --force) with SEALROOT_DLOPEN_LIBS emptied in the installed hook/module;
# expects the build to fail with the TCTI module named, and the installed
# image unchanged.
distro_missing_lib_build() {
    local tool=$1 root=$DISTRO_DIR/$1/root kver file before after rc=0 log
    kver=$(distro_kver "$root")
    log=$SCN_VM/build-$tool.log
    case $tool in
    initramfs-tools) file=$root/usr/share/initramfs-tools/hooks/sealroot ;;
    dracut) file=$root/usr/lib/dracut/modules.d/90sealroot/module-setup.sh ;;
    esac
    grep -q '^SEALROOT_DLOPEN_LIBS="libtss2-tcti-device.so.0"$' "$file" ||
        scn_fail "$tool: $file does not list the TCTI module as expected"
    before=$(sha256sum <"$root/boot/initrd.img-$kver")
    # The backup stays outside the root: initramfs-tools would run a copy
    # left in its hooks directory as one more hook.
    cp -p "$file" "$SCN_VM/$tool.orig"
    sed -i 's/^SEALROOT_DLOPEN_LIBS=.*/SEALROOT_DLOPEN_LIBS=""/' "$file"
    log "$SCN_NAME: $tool: building with SEALROOT_DLOPEN_LIBS=\"\" in $(basename "$file")"
    # As on a machine with sealroot alone: clevis's integration would copy
    # the TCTI module too (it is in the image, so the check would pass).
    distro_build_initrd "$tool" "$root" sealroot "" "$(cat "$DISTRO_OUT/uuid")" update >"$log" 2>&1 || rc=$?
    cp -p "$SCN_VM/$tool.orig" "$file"
    after=$(sha256sum <"$root/boot/initrd.img-$kver")
    sed 's/^/  | /' "$log" | grep -E 'sealroot|failed|E: ' >&2 || true
    ((rc != 0)) || scn_fail "$tool: the image built although the TCTI module is not in it"
    grep -q 'libtss2-tcti-device.so.0 is not in the image' "$log" ||
        scn_fail "$tool: the build failed (rc=$rc) without naming the missing TCTI module (see $log)"
    [[ $before == "$after" ]] || scn_fail "$tool: the failed build changed the installed initramfs"
    log "$SCN_NAME: $tool: build failed as it must (rc=$rc), installed image unchanged"
}
