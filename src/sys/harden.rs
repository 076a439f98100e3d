//! Process hardening at start-up, before any secret exists: freed heap
//! blocks are overwritten, and no core dump is ever written.

/// glibc tunables that make every freed heap block get overwritten: the
/// per-thread cache (which skips the overwrite) is off and freed bytes are
/// perturbed. tpm2-tss frees the buffer that held the unsealed KEK without
/// wiping it; this scrubs that copy, and any other, the moment it is freed.
pub const ALLOC_TUNABLES: &str = "glibc.malloc.tcache_count=0:glibc.malloc.perturb=90";

/// Harden the allocator and the process. Tunables are read only at process
/// start, so when `GLIBC_TUNABLES` lacks them, re-execute ourselves once
/// with them set (same PID, same arguments). If that fails, go on with the
/// perturbation alone, which mallopt can still switch on. Then make the
/// process non-dumpable, so a crash cannot put a key on disk.
pub fn harden_process() {
    let current = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
    if !current.contains(ALLOC_TUNABLES) {
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
