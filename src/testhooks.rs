//! Test-only switches, compiled in only with the `test-hooks` feature (the
//! test suite enables it; a release build has none of them, and every
//! function here is then a no-op the optimiser removes).

#[cfg(feature = "test-hooks")]
fn var(name: &str) -> Option<std::ffi::OsString> {
    std::env::var_os(name)
}

#[cfg(not(feature = "test-hooks"))]
fn var(_: &str) -> Option<std::ffi::OsString> {
    None
}

/// Turn off response parameter encryption, so a test can prove that its
/// wire-capture check would see the secret.
pub fn no_param_encryption() -> bool {
    var("SEALROOT_TEST_NO_PARAM_ENC").is_some()
}

/// Skip sealroot's own signed-policy version check, so a test can prove the
/// TPM's PolicyNV refuses a revoked policy by itself.
pub fn skip_version_check() -> bool {
    var("SEALROOT_TEST_SKIP_VERSION_CHECK").is_some()
}

/// Abort the process at a named step boundary when
/// `SEALROOT_TEST_CRASH_AT` names it (fault-injection tests).
pub fn checkpoint(step: &str) {
    if let Some(v) = var("SEALROOT_TEST_CRASH_AT") {
        if v == step {
            eprintln!("sealroot: test hook: crashing at {step}");
            std::process::abort();
        }
    }
}

/// Hand a secret to the test harness (hex in `$SEALROOT_TEST_REVEAL_DIR/label`)
/// so it can search captures, logs and memory for it.
pub fn reveal(label: &str, bytes: &[u8]) {
    if let Some(dir) = var("SEALROOT_TEST_REVEAL_DIR") {
        let hex = zeroize::Zeroizing::new(hex::encode(bytes));
        let _ = std::fs::write(std::path::Path::new(&dir).join(label), hex.as_bytes());
    }
}

/// Wait, before the process exits, while `$SEALROOT_TEST_PAUSE_FILE` exists
/// (created here), so a test can read `/proc/PID/mem`. At most 60 s.
pub fn pause_before_exit() {
    if let Some(f) = var("SEALROOT_TEST_PAUSE_FILE") {
        let f = std::path::PathBuf::from(f);
        if std::fs::write(&f, std::process::id().to_string()).is_ok() {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while f.exists() && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
    }
}

/// Pause at a named step while `$SEALROOT_TEST_PAUSE_AT` names it: the
/// process writes its PID to `$SEALROOT_TEST_PAUSE_FILE` and waits while
/// that file exists (at most 60 s), so a test can change the world between
/// two steps (say, rewrite a header between its check and its use).
pub fn pause_at(step: &str) {
    let (Some(at), Some(f)) = (
        var("SEALROOT_TEST_PAUSE_AT"),
        var("SEALROOT_TEST_PAUSE_FILE"),
    ) else {
        return;
    };
    if at != step {
        return;
    }
    let f = std::path::PathBuf::from(f);
    if std::fs::write(&f, std::process::id().to_string()).is_ok() {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while f.exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

/// Whether to change a PCR between PolicyPCR and Unseal this time: the
/// first `$SEALROOT_TEST_PCR_CHANGES` calls say yes (TPM_RC_PCR_CHANGED
/// tests).
pub fn take_pcr_change() -> bool {
    use std::sync::atomic::{AtomicI64, Ordering};
    static LEFT: AtomicI64 = AtomicI64::new(-1);
    if LEFT.load(Ordering::Relaxed) < 0 {
        let n = var("SEALROOT_TEST_PCR_CHANGES")
            .and_then(|v| v.to_str().and_then(|s| s.parse::<i64>().ok()))
            .unwrap_or(0);
        LEFT.store(n, Ordering::Relaxed);
    }
    LEFT.fetch_sub(1, Ordering::Relaxed) > 0
}

/// Treat the TPM connection as resource-managed (no FlushContext, as on
/// `/dev/tpmrm*`), so the benchmark can count that path's commands on a
/// simulator (`SEALROOT_TEST_ASSUME_RM`).
pub fn assume_resource_manager() -> bool {
    var("SEALROOT_TEST_ASSUME_RM").is_some()
}

/// Fail the reconnect after the unseal's own connection on an exclusive
/// TCTI (`SEALROOT_TEST_FAIL_RECONNECT`), as a TPM that stops answering
/// would: the failure lock must then come through a new connection.
pub fn fail_reconnect() -> bool {
    var("SEALROOT_TEST_FAIL_RECONNECT").is_some()
}

/// Stop for good at a named step when `$SEALROOT_TEST_STOP_AT` names it:
/// log it (the harness watches the console for the line) and sleep until killed, so a test can cut the power (kill QEMU)
/// at exactly that point.
pub fn stop_at(step: &str) {
    if var("SEALROOT_TEST_STOP_AT").is_some_and(|v| v == step) {
        // libcryptsetup writes its metadata with O_DIRECT and fsync, and
        // mke2fs fsyncs the device before it exits: what a step wrote is on
        // the disk when the line appears.
        log::warn!("test hook: stopped at {step}");
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
}

/// Stop a re-keying re-encryption once this many bytes are done
/// (`SEALROOT_TEST_REKEY_STOP_AT`), leaving the header in re-encryption as
/// a power cut would: host tests of the resume on image files.
pub fn rekey_stop_at() -> Option<u64> {
    var("SEALROOT_TEST_REKEY_STOP_AT")?.to_str()?.parse().ok()
}
