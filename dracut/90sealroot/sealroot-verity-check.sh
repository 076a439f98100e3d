#!/bin/sh
# shellcheck shell=dash disable=SC1091
# ExecStartPost= of sealroot.service (dracut module 90sealroot), installed
# as /usr/lib/sealroot/sealroot-verity-check: every dm-verity mapping
# `sealroot boot` opened (the OS layer of an ephemeral root) must read its
# first MiB, the file system's superblock and first metadata. Otherwise the
# host changed the OS image: fail now, so that sealroot-failure.service
# ends the boot closed, instead of systemd waiting without limit for a
# root device udev cannot identify (docs/ephemeral.md#failing-closed).
# A change further in the image fails the read of that block later, as
# dm-verity does.

. /usr/lib/sealroot/sealroot-lib.sh

dmsetup table --target verity 2>/dev/null | while IFS=: read -r name _; do
    [ -b "/dev/mapper/${name:-/}" ] || continue
    if ! dd if="/dev/mapper/$name" of=/dev/null bs=65536 count=16 2>/dev/null; then
        sealroot_say "/dev/mapper/$name: the verified OS image fails dm-verity (its first MiB does not read): it is not the image the root hash names"
        exit 1
    fi
done
