# shellcheck shell=bash
# Helpers that populate a staging directory (initramfs or root filesystem).

BUSYBOX=${SEALROOT_HARNESS_BUSYBOX:-/bin/busybox}
TCTI_DEVICE_LIB=libtss2-tcti-device.so.0

# Base directory layout plus a statically linked busybox with all applets.
stage_base() {
    local dir=$1 applet
    mkdir -p "$dir"/{bin,sbin,etc,proc,sys,dev,run,tmp,root,mnt,usr/bin,usr/sbin}
    file "$BUSYBOX" | grep -q 'statically linked' ||
        die "$BUSYBOX is not statically linked (install busybox-static)"
    install -m 0755 "$BUSYBOX" "$dir/bin/busybox"
    for applet in $("$BUSYBOX" --list); do
        [[ -e $dir/bin/$applet ]] || ln -s busybox "$dir/bin/$applet"
    done
}

# Copy one file to the same absolute path inside the staging directory,
# dereferencing symlinks.
stage_copy() {
    local dir=$1 src=$2 dest=${3:-$2}
    mkdir -p "$dir/$(dirname "$dest")"
    cp -L --preserve=mode "$src" "$dir/$dest"
}

# The shared libraries (absolute paths) an ELF file needs, as ldd resolves them.
elf_libs() {
    local out
    out=$(ldd "$1" 2>&1) || die "ldd $1 failed: $out"
    if grep -q 'not found' <<<"$out"; then
        die "unresolved libraries for $1: $(grep 'not found' <<<"$out" | tr -s ' \t' ' ')"
    fi
    awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"$out"
}

# Copy an executable to DEST plus every library ldd reports for it.
stage_elf() {
    local dir=$1 src=$2 dest=$3 lib
    stage_copy "$dir" "$src" "$dest"
    for lib in $(elf_libs "$src"); do
        [[ -e $dir/$lib ]] || stage_copy "$dir" "$lib"
    done
}

# Copy a library that is dlopen()ed by name (not visible to ldd of the main
# binary) plus its own dependencies, e.g. the TCTI module tss2-tctildr loads.
stage_dlopen_lib() {
    local dir=$1 path
    path=$(host_lib_path "$2")
    stage_elf "$dir" "$path" "$path"
}

# Absolute path of a library on the host, by soname, from the ld.so cache.
host_lib_path() {
    local path
    path=$(ldconfig -p | awk -v n="$1" '$1 == n && /x86-64/ { print $NF; exit }')
    [[ -n $path ]] || die "library $1 not found on the host"
    echo "$path"
}

# Copy sealroot plus its libraries and the TCTI module it loads at run time.
stage_sealroot() {
    local dir=$1 bin=$2
    stage_elf "$dir" "$bin" /usr/sbin/sealroot
    stage_dlopen_lib "$dir" "$TCTI_DEVICE_LIB"
}

# Check that the dynamic loader inside the staging directory resolves every
# library of each given ELF file (paths relative to the staging root). Needs
# root for chroot; skipped with a warning otherwise.
stage_verify_elves() {
    local dir=$1 f out
    shift
    if [[ $(id -u) != 0 ]]; then
        log "warning: not root, cannot verify library closure in $dir"
        return 0
    fi
    for f in "$@"; do
        out=$(chroot "$dir" /lib64/ld-linux-x86-64.so.2 --list "$f" 2>&1) ||
            die "library closure check failed for $f in $dir: $out"
        if grep -q 'not found' <<<"$out"; then
            die "missing libraries for $f in $dir: $(grep 'not found' <<<"$out" | tr -s ' \t' ' ')"
        fi
    done
}

# Resolve kernel modules with their dependencies (modules.dep order: deps
# first) and copy them; writes etc/harness/modules (one path per line, in
# load order).
stage_modules() {
    local dir=$1 kdir=$2 kver mroot name rel dep
    shift 2
    kver=$(kernel_version_in "$kdir")
    mroot=$kdir/root/lib/modules/$kver
    mkdir -p "$dir/etc/harness"
    : >"$dir/etc/harness/modules"
    for name in "$@"; do
        rel=$(module_path "$mroot" "$name")
        for dep in $(module_deps "$mroot" "$rel") "$rel"; do
            grep -qxF "/lib/modules/$kver/$dep" "$dir/etc/harness/modules" && continue
            stage_copy "$dir" "$mroot/$dep" "/lib/modules/$kver/$dep"
            echo "/lib/modules/$kver/$dep" >>"$dir/etc/harness/modules"
        done
    done
}

# modules.dep-relative path of a module, by name (dashes and underscores equal).
module_path() {
    local mroot=$1 name=$2 rel
    rel=$(awk -F: -v n="$name" '{
            f = $1; sub(/.*\//, "", f); sub(/\.ko(\.[a-z]+)?$/, "", f)
            gsub(/-/, "_", f); m = n; gsub(/-/, "_", m)
            if (f == m) { print $1; exit }
        }' "$mroot/modules.dep")
    [[ -n $rel ]] || die "kernel module $name not found in $mroot"
    echo "$rel"
}

# Transitive dependencies of a module in load order (deepest first).
# modules.dep already lists the full transitive closure, nearest first.
module_deps() {
    local mroot=$1 rel=$2
    awk -F: -v r="$rel" '$1 == r { n = split($2, d, " "); for (i = n; i >= 1; i--) print d[i]; exit }' \
        "$mroot/modules.dep"
}

# Pack a staging directory into a reproducible gzip'ed cpio (newc) archive.
stage_pack_cpio() {
    local dir=$1 out=$2
    find "$dir" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
    (cd "$dir" && find . -mindepth 1 -print0 | LC_ALL=C sort -z |
        cpio --null --create --format=newc --owner=0:0 --reproducible --quiet) |
        gzip -n -6 >"$out.tmp"
    mv "$out.tmp" "$out"
}
