//! securityfs, where the kernel publishes the TPM event log. In an
//! initramfs it is often not mounted yet.

use std::path::Path;

/// Mount securityfs on `/sys/kernel/security` when that directory is
/// empty (nothing happens when it is already mounted). Best effort: a
/// failure only means the event log stays unavailable.
pub fn mount_if_needed() {
    let dir = Path::new("/sys/kernel/security");
    let empty = std::fs::read_dir(dir).map(|mut d| d.next().is_none());
    if empty.unwrap_or(false) {
        let src = c"securityfs";
        let target = c"/sys/kernel/security";
        // SAFETY: constant NUL-terminated strings; no data argument.
        let rc = unsafe {
            libc::mount(
                src.as_ptr(),
                target.as_ptr(),
                src.as_ptr(),
                0,
                std::ptr::null(),
            )
        };
        log::debug!("mounting securityfs for the event log: rc {rc}");
    }
}
