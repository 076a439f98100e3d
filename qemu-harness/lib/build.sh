# shellcheck shell=bash
# Build the guest artefacts into $BUILD_DIR:
#   provision.key          first-boot provisioning key (PBKDF2, 1000 iterations)
#   recovery.key           recovery key escrowed on the host (argon2id keyslot)
#   root-id                identity printed by the root's init
#   initramfs.cpio.gz      the boot initramfs
#   initramfs-tampered.cpio.gz  the same plus one unused file
#   disk.img               LUKS2 volume holding the ext4 root file system
# Everything is rebuilt when an input changes (scripts, sealroot, busybox,
# kernel), and reused otherwise.

# Kernel modules the initramfs loads (dependencies are added automatically).
# TPM TIS/CRB, ext4, AES and SHA-256 are built into the Debian cloud kernel.
# algif_skcipher: first-boot re-keying re-encrypts offline through the
# kernel crypto API (libcryptsetup falls back to temporary dm-crypt
# mappings without it, slower).
INITRAMFS_MODULES=(virtio_pci virtio_blk dm-mod dm-crypt ecb xts aesni-intel qemu_fw_cfg
    algif_skcipher
    "${EPHEMERAL_MODULES[@]}")

LUKS_REDUCE=32M
PROVISION_PBKDF=(--pbkdf pbkdf2 --pbkdf-force-iterations 1000)
# Fixed, modest argon2id cost: the guest runs under TCG emulation, where a
# cost benchmarked on the build host would take minutes. Production images
# should let cryptsetup benchmark on hardware like the target's.
RECOVERY_PBKDF=(--pbkdf argon2id --pbkdf-memory 65536 --pbkdf-parallel 1 --pbkdf-force-iterations 4)

# Path of the sealroot binary to embed, building it when needed. Empty when
# SEALROOT_HARNESS_NO_SEALROOT=1 (key-file-only boots, for harness bring-up).
sealroot_binary() {
    if [[ ${SEALROOT_HARNESS_NO_SEALROOT:-0} == 1 ]]; then
        return 0
    fi
    if [[ -n ${SEALROOT_BIN:-} ]]; then
        [[ -x $SEALROOT_BIN ]] || die "SEALROOT_BIN=$SEALROOT_BIN is not executable"
        echo "$SEALROOT_BIN"
        return 0
    fi
    need_cmd cargo
    log "cargo build --release (sealroot)"
    (cd "$REPO_DIR" && cargo build --release --locked --bin sealroot >&2) ||
        die "cargo build --release failed"
    echo "${CARGO_TARGET_DIR:-$REPO_DIR/target}/release/sealroot"
}

# The tool the initramfs uses for key-file unlocks (floor and recovery).
keyfile_tool_for() {
    local bin=$1
    if [[ -n $bin ]] && "$bin" unlock --help 2>&1 | grep -qE '(^|[[:space:]])--key-file'; then
        echo sealroot
    else
        echo cryptsetup
    fi
}

build_inputs_hash() {
    local bin=$1
    {
        cat "$HARNESS_DIR"/guest/* "$HARNESS_DIR"/lib/*.sh "$BUSYBOX"
        [[ -n $bin ]] && cat "$bin"
        basename "$KERNEL_DIR"
        cryptsetup --version
    } | sha256sum | cut -c1-16
}

random_hex() {
    od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'
}

build_keys() {
    local out=$1
    # Written without a trailing newline: the whole file is the passphrase.
    random_hex 32 >"$out/provision.key"
    # 256-bit recovery key as eight dash-separated groups (easier to type).
    random_hex 32 | sed -E 's/(.{8})/\1-/g; s/-$//' | tr -d '\n' >"$out/recovery.key"
    random_hex 8 >"$out/root-id"
    # The image builder's policy-signing key (signed-policy scenarios).
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
        -out "$out/policy-priv.pem" 2>/dev/null || die "openssl genpkey failed"
    openssl pkey -in "$out/policy-priv.pem" -pubout -out "$out/policy-pub.pem" 2>/dev/null ||
        die "openssl pkey -pubout failed"
    chmod 0600 "$out/provision.key" "$out/recovery.key" "$out/policy-priv.pem"
}

build_initramfs() {
    local out=$1 bin=$2 stage=$1/initramfs.d tool
    rm -rf "$stage"
    stage_base "$stage"
    install -m 0755 "$HARNESS_DIR/guest/init" "$stage/init"
    stage_modules "$stage" "$KERNEL_DIR" "${INITRAMFS_MODULES[@]}"
    local -a verify=()
    if [[ -n $bin ]]; then
        stage_sealroot "$stage" "$bin"
        verify+=(/usr/sbin/sealroot "$(host_lib_path "$TCTI_DEVICE_LIB")")
    fi
    tool=$(keyfile_tool_for "$bin")
    echo "$tool" >"$stage/etc/harness/keyfile-tool"
    echo "$tool" >"$out/keyfile-tool"
    if [[ $tool == cryptsetup ]]; then
        stage_elf "$stage" "$(command -v cryptsetup)" /usr/sbin/cryptsetup
        verify+=(/usr/sbin/cryptsetup)
    fi
    mkdir -p "$stage/etc/sealroot"
    install -m 0400 "$out/provision.key" "$stage/etc/sealroot/provision.key"
    install -m 0444 "$out/policy-pub.pem" "$stage/etc/sealroot/policy-key.pem"
    ephemeral_stage_initramfs "$stage" verify
    ((${#verify[@]} == 0)) || stage_verify_elves "$stage" "${verify[@]}"
    stage_pack_cpio "$stage" "$out/initramfs.cpio.gz"
    # The tampered variant: identical plus one file nothing reads.
    echo "tampered $(random_hex 8)" >"$stage/etc/harness/unused"
    stage_pack_cpio "$stage" "$out/initramfs-tampered.cpio.gz"
    # The updated variant (a legitimate new release the builder signs).
    rm -f "$stage/etc/harness/unused"
    echo "release 2 $(random_hex 8)" >"$stage/etc/harness/release"
    stage_pack_cpio "$stage" "$out/initramfs-updated.cpio.gz"
    rm -rf "$stage"
}

build_rootfs() {
    local out=$1 bin=$2 stage=$1/rootfs.d size_mb
    rm -rf "$stage"
    stage_base "$stage"
    install -m 0755 "$HARNESS_DIR/guest/root-init" "$stage/sbin/init"
    cp "$out/root-id" "$stage/etc/root-id"
    if [[ -n $bin ]]; then
        stage_sealroot "$stage" "$bin"
        stage_verify_elves "$stage" /usr/sbin/sealroot
    fi
    size_mb=$(($(du -sm "$stage" | cut -f1) + 32))
    rm -f "$out/rootfs.ext4"
    truncate -s "${size_mb}M" "$out/rootfs.ext4"
    mkfs.ext4 -q -F -L sealroot-root -E root_owner=0:0 -d "$stage" "$out/rootfs.ext4" ||
        die "mkfs.ext4 failed"
    rm -rf "$stage"
}

# Encrypt the root file system image in place (offline, no device-mapper):
# reencrypt --encrypt shifts the data by half of --reduce-device-size to make
# room for the LUKS2 header, so the image first grows by that much.
build_disk() {
    local out=$1 disk=$1/disk.img
    cp --sparse=always "$out/rootfs.ext4" "$disk.tmp"
    truncate -s "+$LUKS_REDUCE" "$disk.tmp"
    cryptsetup reencrypt --encrypt --type luks2 --batch-mode \
        --cipher aes-xts-plain64 --key-size 512 --reduce-device-size "$LUKS_REDUCE" \
        --label sealroot-root "${PROVISION_PBKDF[@]}" \
        --key-file "$out/provision.key" "$disk.tmp" >&2 ||
        die "cryptsetup reencrypt --encrypt failed"
    cryptsetup luksAddKey --batch-mode "${RECOVERY_PBKDF[@]}" \
        --key-file "$out/provision.key" "$disk.tmp" "$out/recovery.key" >&2 ||
        die "adding the recovery keyslot failed"
    cryptsetup open --test-passphrase --key-file "$out/provision.key" "$disk.tmp" ||
        die "provisioning key does not open the new volume"
    cryptsetup open --test-passphrase --key-file "$out/recovery.key" "$disk.tmp" ||
        die "recovery key does not open the new volume"
    mv "$disk.tmp" "$disk"
}

# Build (or reuse) everything; sets KERNEL_DIR, ARTEFACTS_DIR and
# HARNESS_SEALROOT_BIN (the sealroot binary, empty without one).
harness_build() {
    local bin hash out
    need_cmd cpio gzip mkfs.ext4 cryptsetup ldd qemu-system-x86_64 swtpm openssl
    mkdir -p "$CACHE_DIR"
    KERNEL_DIR=$(kernel_fetch)
    bin=$(sealroot_binary)
    HARNESS_SEALROOT_BIN=$bin
    hash=$(build_inputs_hash "$bin")
    out=$BUILD_DIR
    if [[ -f $out/.inputs && $(cat "$out/.inputs") == "$hash" && -f $out/disk.img ]]; then
        ARTEFACTS_DIR=$out
        return 0
    fi
    log "building guest artefacts in $out"
    rm -rf "$out"
    mkdir -p "$out"
    build_keys "$out"
    build_initramfs "$out" "$bin"
    build_rootfs "$out" "$bin"
    build_disk "$out"
    # The same root file system, unencrypted: the read-only OS layer of the
    # ephemeral scenarios (lib/ephemeral.sh).
    mv "$out/rootfs.ext4" "$out/os.ext4"
    ephemeral_build_verity "$out"
    printf %s "${bin:+sealroot}" >"$out/.has-sealroot"
    echo "$hash" >"$out/.inputs"
    ARTEFACTS_DIR=$out
    log "artefacts ready (sealroot: ${bin:-none})"
}
