# shellcheck shell=bash
# Shared helpers for the sealroot QEMU harness. Sourced, never executed.

HARNESS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPO_DIR=$(cd "$HARNESS_DIR/.." && pwd)
CACHE_DIR=${SEALROOT_HARNESS_CACHE:-$HARNESS_DIR/.cache}
BUILD_DIR=$CACHE_DIR/build
VMS_DIR=$CACHE_DIR/vms

# Fixed timestamp for every file in generated images, so that identical inputs
# give byte-identical initramfs/rootfs images (PCR 9 measures the initrd).
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1700000000}
export SOURCE_DATE_EPOCH

log() { printf '[harness] %s\n' "$*" >&2; }
die() { printf '[harness] error: %s\n' "$*" >&2; exit 1; }

need_cmd() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 || die "missing command '$c' (run qemu-harness/setup)"
    done
}

# Print a short content hash of the given files (order matters).
hash_files() {
    cat "$@" | sha256sum | cut -c1-16
}

# Monotonic-ish milliseconds since the epoch.
now_ms() {
    local t
    t=$(date +%s%N)
    echo $((t / 1000000))
}

# The exit code of sealroot's NAME (`PcrMismatch`), read from the Exit enum
# in src/error.rs, the one source of the codes; the harness keeps no copy.
exit_code() {
    local code
    code=$(awk -v n="$1" '$1 == n && $2 == "=" { sub(/,$/, "", $3); print $3; exit }' \
        "$REPO_DIR/src/error.rs")
    [[ $code =~ ^[0-9]+$ ]] || die "no exit code named '$1' in src/error.rs"
    echo "$code"
}
