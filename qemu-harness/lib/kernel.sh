# shellcheck shell=bash
# Fetch and unpack the Debian cloud kernel (never installed on the host).

KERNEL_META_PKG=${SEALROOT_HARNESS_KERNEL_META:-linux-image-cloud-amd64}

# The versioned package the meta package depends on, e.g.
# linux-image-6.1.0-56-cloud-amd64.
kernel_resolve_pkg() {
    local pkg
    pkg=$(apt-cache depends "$KERNEL_META_PKG" 2>/dev/null |
        awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')
    [[ -n $pkg ]] || die "cannot resolve the kernel package behind $KERNEL_META_PKG (apt-get update?)"
    echo "$pkg"
}

# Directory holding the unpacked kernel: vmlinuz, lib/modules/<kver>/.
# Downloads and unpacks on first use; later calls reuse the cache.
kernel_fetch() {
    local pkg dir tmp deb
    pkg=$(kernel_resolve_pkg)
    dir=$CACHE_DIR/kernel/$pkg
    if [[ ! -f $dir/.complete ]]; then
        need_cmd apt-get dpkg depmod
        log "fetching kernel package $pkg"
        rm -rf "$dir"
        tmp=$(mktemp -d "$CACHE_DIR/kernel-dl.XXXXXX")
        (cd "$tmp" && apt-get download -q "$pkg" >/dev/null 2>&1) ||
            { rm -rf "$tmp"; die "apt-get download $pkg failed"; }
        deb=$(echo "$tmp"/*.deb)
        mkdir -p "$dir"
        dpkg -x "$deb" "$dir/root"
        mv "$deb" "$dir/"
        rmdir "$tmp"
        # The package ships no modules.dep (the postinst runs depmod); build
        # it in the unpacked tree so module dependencies can be resolved.
        depmod -b "$dir/root" "$(kernel_version_in "$dir")"
        touch "$dir/.complete"
    fi
    echo "$dir"
}

kernel_version_in() {
    local d
    d=$(echo "$1"/root/lib/modules/*)
    [[ -d $d ]] || die "no modules directory under $1"
    basename "$d"
}

kernel_image_in() {
    echo "$1/root/boot/vmlinuz-$(kernel_version_in "$1")"
}
