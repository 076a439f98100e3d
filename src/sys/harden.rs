//! Process hardening at start-up, before any secret exists: freed heap
//! blocks are overwritten, and no core dump is ever written.

/// glibc tunables that make every freed heap block get overwritten: the
/// per-thread cache (which skips the overwrite) is off and freed bytes are
/// perturbed. tpm2-tss frees the buffer that held the unsealed KEK without
/// wiping it; this scrubs that copy, and any other, the moment it is freed.
pub const ALLOC_TUNABLES: &str = "glibc.malloc.tcache_count=0:glibc.malloc.perturb=90";

/// Set to the process ID in the environment of the re-executed process
/// (exec keeps the PID), so it can say so and does not loop. A mark with
/// another PID (inherited, or set by whoever started sealroot) is ignored.
const REEXEC_MARK: &str = "SEALROOT_REEXECUTED";

fn marked() -> bool {
    std::env::var(REEXEC_MARK).is_ok_and(|v| v == std::process::id().to_string())
}

/// Harden the allocator and the process. Tunables are read only at process
/// start: the initramfs-tools script, the dracut unit and the harness's
/// `/init` start sealroot with `GLIBC_TUNABLES` already holding them. When
/// it lacks them (sealroot run by hand, or by another integration),
/// re-execute once with them set (same PID, same arguments; about 6 ms);
/// [`reexecuted`] then says so. There is no cheaper way: glibc has no
/// mallopt for the per-thread cache, which skips the perturbation, and
/// the libraries that free the secrets (tpm2-tss) use glibc's malloc, not
/// Rust's allocator. If the re-exec fails, go on with the perturbation
/// alone. Then make the process non-dumpable, so a crash cannot put a key
/// on disk.
pub fn harden_process() {
    let current = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
    // Last, so that no later entry overrides them (glibc takes the last).
    let set = current == ALLOC_TUNABLES || current.ends_with(&format!(":{ALLOC_TUNABLES}"));
    if !set && !marked() {
        use std::os::unix::process::CommandExt;
        let mut args = std::env::args_os();
        let argv0 = args.next().unwrap_or_else(|| "sealroot".into());
        let tunables = if current.is_empty() {
            ALLOC_TUNABLES.to_string()
        } else {
            format!("{current}:{ALLOC_TUNABLES}")
        };
        let err = std::process::Command::new("/proc/self/exe")
            .arg0(argv0)
            .args(args)
            .env("GLIBC_TUNABLES", tunables)
            .env(REEXEC_MARK, std::process::id().to_string())
            .exec();
        ::log::debug!("could not re-execute with hardened allocator tunables: {err}");
    }
    // SAFETY: mallopt and prctl only change process settings; no other
    // thread exists yet and no pointer is passed.
    unsafe {
        libc::mallopt(libc::M_PERTURB, 0x5a);
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
}

/// Whether this process is the re-execution [`harden_process`] made, because
/// it was started without the tunables; clears the mark, so children do not
/// inherit it.
pub fn reexecuted() -> bool {
    let was = marked();
    std::env::remove_var(REEXEC_MARK);
    was
}
