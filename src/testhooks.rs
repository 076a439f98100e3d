//! Test-only switches, compiled in only with the `test-hooks` feature (the
//! integration tests enable it; release builds never contain them).

/// Turn off response parameter encryption, so a test can prove that its
/// wire-capture check would see the secret.
pub fn no_param_encryption() -> bool {
    cfg!(feature = "test-hooks") && std::env::var_os("SEALROOT_TEST_NO_PARAM_ENC").is_some()
}

/// Abort the process at a named step boundary when
/// `SEALROOT_TEST_CRASH_AT` names it (fault-injection tests).
pub fn checkpoint(step: &str) {
    if cfg!(feature = "test-hooks") {
        if let Some(v) = std::env::var_os("SEALROOT_TEST_CRASH_AT") {
            if v == step {
                eprintln!("sealroot: test hook: crashing at {step}");
                std::process::abort();
            }
        }
    }
}
