//! Secret hygiene: the secret never crosses the TPM wire in clear, no copy
//! is left in the process's memory before exit, and none is logged.
//! Needs the `test-hooks` feature (`cargo test --features test-hooks`).
#![cfg(feature = "test-hooks")]

mod common;
use common::proxy::{cc_name, contains, Proxy};
use common::*;
use sealroot::Exit;

/// `sealroot unlock --dry-run` on `img` through the wire-capturing proxy.
fn unlock_via(proxy: &Proxy, img: &Image) -> Args {
    Args::new("unlock")
        .opt("device", &img.path)
        .opt("name", "x")
        .arg("--dry-run")
        .opt("tcti", proxy.tcti())
        .opt("cmdline-file", &img.cmdline)
}

#[test]
fn the_secret_never_crosses_the_tpm_wire_in_clear() {
    let mut tpm = Swtpm::start();
    let proxy = Proxy::start(tpm.port);
    let img = Image::new();
    let reveal = img.file("reveal");
    std::fs::create_dir(&reveal).unwrap();
    Args::new("enroll")
        .opt("device", &img.path)
        .opt("unlock-key-file", &img.key)
        .opt("tcti", proxy.tcti())
        .opt("cmdline-file", &img.cmdline)
        .arg("--no-recovery-key")
        .env("SEALROOT_TEST_REVEAL_DIR", &reveal)
        .run()
        .assert_exit(Exit::Ok);
    let kek = revealed(&reveal, "enroll-kek");
    let secret = revealed(&reveal, "enroll-secret");
    let wire = proxy.bytes();
    assert!(wire.len() > 500, "capture works: {} bytes", wire.len());
    assert!(!contains(&wire, &kek), "KEK in clear in Create");
    assert!(!contains(&wire, &secret), "LUKS secret on the wire");

    proxy.clear();
    let u = unlock_via(&proxy, &img)
        .env("SEALROOT_TEST_REVEAL_DIR", &reveal)
        .run();
    u.assert_exit(Exit::Ok);
    assert_eq!(revealed(&reveal, "kek"), kek);
    let wire = proxy.bytes();
    let cmds = proxy.command_codes();
    assert!(cmds.contains(&0x15E), "an Unseal was captured: {cmds:x?}");
    assert!(!contains(&wire, &kek), "KEK in clear in Unseal's response");
    assert!(!contains(&wire, &secret));
    for pair in wire.windows(16) {
        assert!(
            !kek.windows(16).any(|k| k == pair),
            "16-byte run of the KEK on the wire"
        );
    }

    // The check can fail: without response parameter encryption the same
    // capture shows the KEK.
    tpm.reboot();
    proxy.clear();
    let u = unlock_via(&proxy, &img)
        .env("SEALROOT_TEST_NO_PARAM_ENC", "1")
        .run();
    u.assert_exit(Exit::Ok);
    assert!(
        contains(&proxy.bytes(), &kek),
        "test would not notice a clear KEK"
    );
}

#[test]
fn commands_per_unlock_are_few_and_never_create_a_primary() {
    let mut tpm = Swtpm::start();
    let img = Image::new();
    enroll(&tpm, &img, &["--no-recovery-key"]).assert_exit(Exit::Ok);
    // On a simulator every object is flushed; under a resource manager
    // (/dev/tpmrm0, which flushes on close) nothing is.
    for (managed, most) in [(false, 9), (true, 8)] {
        tpm.reboot();
        let proxy = Proxy::start(tpm.port);
        let mut a = unlock_via(&proxy, &img);
        if managed {
            a = a.env("SEALROOT_TEST_ASSUME_RM", "1");
        }
        let u = a.run();
        u.assert_exit(Exit::Ok);
        let cmds = proxy.command_codes();
        let names: Vec<&str> = cmds.iter().map(|&c| cc_name(c)).collect();
        eprintln!(
            "tpm_commands_per_unlock (managed {managed}): {} {names:?}",
            cmds.len()
        );
        assert!(!names.contains(&"CreatePrimary"), "{names:?}");
        assert!(!names.contains(&"other"), "{names:?}");
        // The SRK's public area comes from the token.
        assert!(!names.contains(&"ReadPublic"), "{names:?}");
        assert_eq!(names.contains(&"FlushContext"), !managed, "{names:?}");
        assert!(cmds.len() <= most, "{} commands: {names:?}", cmds.len());
    }
}

#[test]
fn no_copy_of_the_secret_in_memory_or_logs_after_unlock() {
    let mut tpm = Swtpm::start();
    let img = Image::new();
    let rk = img.file("rk");
    enroll(&tpm, &img, &["--recovery-key-file", p(&rk)]).assert_exit(Exit::Ok);
    let recovery = std::fs::read_to_string(&rk).unwrap();
    // Started as the initramfs integrations start it (the allocator
    // tunables already set: no re-exec), and by hand (re-executed once).
    for preset in [true, false] {
        tpm.reboot();
        let dir = img.file(if preset { "preset" } else { "reexec" });
        std::fs::create_dir(&dir).unwrap();
        scan_after_unlock(&tpm, &img, &dir, &recovery, preset);
    }
}

fn scan_after_unlock(
    tpm: &Swtpm,
    img: &Image,
    dir: &std::path::Path,
    recovery: &str,
    preset: bool,
) {
    let reveal = dir.join("reveal");
    std::fs::create_dir(&reveal).unwrap();
    let pause = dir.join("pause");
    let mut args = Args::new("unlock")
        .on(tpm, img)
        .opt("name", "x")
        .arg("--dry-run")
        .arg("-v")
        .env("SEALROOT_TEST_REVEAL_DIR", &reveal);
    if preset {
        args = args.env("GLIBC_TUNABLES", sealroot::sys::harden::ALLOC_TUNABLES);
    }
    let (mem, out) = memory_at_pause(args.command(), &pause);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.contains("re-executed once to set GLIBC_TUNABLES"),
        !preset,
        "{stderr}"
    );
    assert!(mem.len() > 1 << 20, "read {} bytes of memory", mem.len());
    let kek = revealed(&reveal, "kek");
    let secret = revealed(&reveal, "secret");
    // The scan can see what it looks for: the arguments on the stack are there.
    assert!(
        contains(&mem, p(&img.cmdline).as_bytes()),
        "scan cannot see the process's own arguments"
    );
    for (what, s) in [("LUKS secret", &secret), ("KEK", &kek)] {
        assert!(!contains(&mem, s), "{what} found in process memory");
        for w in s.windows(16) {
            assert!(
                !contains(&mem, w),
                "16-byte run of the {what} in process memory"
            );
        }
    }
    let logs = [out.stdout, out.stderr].concat();
    for (what, s) in [("LUKS secret", &secret), ("KEK", &kek)] {
        assert!(!contains(&logs, s), "{what} in output");
        assert!(
            !contains(&logs, hex::encode(s).as_bytes()),
            "{what} (hex) in output"
        );
    }
    assert!(
        !contains(&logs, recovery.trim().as_bytes()),
        "recovery key in output"
    );
}

/// The volume key, which unlock derives through the keyslot to compare its
/// fingerprint: no 16-byte run of it in memory at the pause before exit
/// (the same method as the secret's scan above).
#[test]
fn no_copy_of_the_volume_key_in_memory_after_unlock() {
    let tpm = Swtpm::start();
    let img = Image::new();
    enroll(&tpm, &img, &["--no-recovery-key"]).assert_exit(Exit::Ok);
    let reveal = img.file("reveal");
    std::fs::create_dir(&reveal).unwrap();
    let pause = img.file("pause");
    let cmd = Args::new("unlock")
        .on(&tpm, &img)
        .opt("name", "x")
        .arg("--dry-run")
        .env("SEALROOT_TEST_REVEAL_DIR", &reveal)
        .command();
    let (mem, _) = memory_at_pause(cmd, &pause);
    let vk = revealed(&reveal, "volume-key");
    assert_eq!(vk.len(), 64);
    let hits: Vec<usize> = (0..=vk.len() - 16)
        .filter(|&i| contains(&mem, &vk[i..i + 16]))
        .collect();
    assert!(
        hits.is_empty(),
        "16-byte runs of the volume key at key offsets {hits:?} in process memory"
    );
}

/// The re-exec mark carries the process ID: one inherited from the caller
/// (the kernel command line hands unknown `key=value` words to init as its
/// environment) does not skip the allocator hardening.
#[test]
fn an_inherited_reexec_mark_does_not_skip_the_hardening() {
    let tpm = Swtpm::start();
    let img = Image::new();
    let r = Args::new("status")
        .opt("device", &img.path)
        .opt("tcti", tpm.tcti())
        .arg("-v")
        .env("SEALROOT_REEXECUTED", "1")
        .run();
    assert!(
        r.stderr.contains("re-executed once to set GLIBC_TUNABLES"),
        "{r:?}"
    );
}
