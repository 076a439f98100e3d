//! The core contract of issue #2, against a real swtpm per test and real
//! LUKS2 image files.

mod common;
use common::proxy::{cc_name, Proxy};
use common::*;
use sealroot::Exit;
use std::time::{Duration, Instant};

#[test]
fn enroll_then_dry_run_unlock_and_status_match() {
    let tpm = Swtpm::start();
    let img = Image::new();
    let r = enroll(&tpm, &img, &["--no-recovery-key"]);
    r.assert_exit(Exit::Ok);
    assert!(r.stdout.contains("PCRs 0,4,7,9,15"), "{r:?}");
    assert_eq!(img.keyslots(), vec![0, 1]);
    assert_eq!(img.tokens(), vec![0]);
    let tok = &img.json()["tokens"]["0"];
    assert_eq!(tok["type"], "sealroot");
    assert_eq!(tok["keyslots"], serde_json::json!(["1"]));
    // The keyslot uses PBKDF2 with the minimum iteration count.
    let ks = &img.json()["keyslots"]["1"]["kdf"];
    assert_eq!(ks["type"], "pbkdf2", "{ks}");
    assert_eq!(ks["iterations"], 1000, "{ks}");

    let (st, j) = status_json(&tpm, &img);
    assert_eq!(j["tokens"][0]["verdict"], "ok", "{st:?}");
    assert_eq!(j["tokens"][0]["pcrs"][4]["index"], 15);
    assert_eq!(j["tokens"][0]["pcrs"][4]["state"], "predicted");

    let u = unlock(&tpm, &img, &[]);
    u.assert_exit(Exit::Ok);
    assert!(u.stderr.contains("opens keyslot 1"), "{u:?}");

    // After the unlock the self PCR is locked, and status says so instead
    // of flagging a false mismatch.
    let (st, j) = status_json(&tpm, &img);
    assert_eq!(j["tokens"][0]["verdict"], "ok", "{st:?}");
    assert_eq!(j["tokens"][0]["pcrs"][4]["state"], "opened");
}

#[test]
fn extended_pcr_23_is_a_mismatch_that_names_it() {
    let tpm = Swtpm::start();
    let img = Image::new();
    let r = enroll(&tpm, &img, &["--no-recovery-key", "--pcrs", "0,4,7,9,23"]);
    r.assert_exit(Exit::Ok);
    tpm.extend(23, 0xaa);
    let u = unlock(&tpm, &img, &[]);
    u.assert_exit(Exit::PcrMismatch);
    assert!(u.stderr.contains("PCR 23 differs: expected 0000"), "{u:?}");
    assert!(!u.stderr.contains("PCR 15 differs"), "{u:?}");
    assert!(!u.stderr.contains("PCR 0 differs"), "{u:?}");
}

#[test]
fn second_unlock_in_the_same_boot_fails_until_reboot() {
    let mut tpm = Swtpm::start();
    let img = Image::new();
    enroll(&tpm, &img, &["--no-recovery-key"]).assert_exit(Exit::Ok);
    unlock(&tpm, &img, &[]).assert_exit(Exit::Ok);
    let again = unlock(&tpm, &img, &[]);
    again.assert_exit(Exit::PcrMismatch);
    assert!(again.stderr.contains("PCR 15 differs"), "{again:?}");
    assert!(
        again.stderr.contains("opened this volume in this boot"),
        "{again:?}"
    );
    tpm.reboot();
    let after = unlock(&tpm, &img, &[]);
    after.assert_exit(Exit::Ok);
}

#[test]
fn changed_kernel_command_line_is_refused_and_explained() {
    let tpm = Swtpm::start();
    let img = Image::new();
    enroll(&tpm, &img, &["--no-recovery-key"]).assert_exit(Exit::Ok);
    std::fs::write(
        &img.cmdline,
        "BOOT_IMAGE=/vmlinuz root=/dev/mapper/root ro quiet init=/bin/sh\n",
    )
    .unwrap();
    let u = unlock(&tpm, &img, &[]);
    u.assert_exit(Exit::PcrMismatch);
    assert!(u.stderr.contains("PCR 15 differs"), "{u:?}");
    assert!(u.stderr.contains("kernel command line differs"), "{u:?}");
}

#[test]
fn not_enrolled_volume_has_its_own_exit_code() {
    let tpm = Swtpm::start();
    let img = Image::new();
    let u = unlock(&tpm, &img, &[]);
    u.assert_exit(Exit::NotEnrolled);
    assert!(u.stderr.contains("no sealroot token"), "{u:?}");
}

#[test]
fn token_copied_to_another_volume_is_refused() {
    let tpm = Swtpm::start();
    let a = Image::new();
    let b = Image::new();
    enroll(&tpm, &a, &["--no-recovery-key"]).assert_exit(Exit::Ok);
    // Give B a keyslot 1 so the copied token's keyslot reference is valid.
    b.add_key(&a.key);
    let token = a.json()["tokens"]["0"].clone();

    // 1. Copied verbatim: the blob names volume A.
    let tf = b.file("token.json");
    std::fs::write(&tf, token.to_string()).unwrap();
    import_token(&b, &tf, &[]);
    let u = unlock(&tpm, &b, &[]);
    u.assert_exit(Exit::BlobInvalid);
    assert!(u.stderr.contains("belongs to volume"), "{u:?}");

    // 2. Edited to claim volume B: the envelope's AEAD binding refuses it.
    let c = Image::new();
    c.add_key(&a.key);
    let mut edited = token.clone();
    edited["volume_uuid"] = c.uuid().into();
    std::fs::write(&tf, edited.to_string()).unwrap();
    import_token(&c, &tf, &[]);
    let mut tpm2 = tpm;
    tpm2.reboot();
    // sealroot measured C's UUID into PCR 15, so the policy (sealed with
    // A's) no longer matches: refused before the TPM is asked. (The
    // envelope's AEAD binding to the UUID is the second layer; see the
    // envelope unit tests.)
    let u = unlock(&tpm2, &c, &[]);
    u.assert_exit(Exit::PcrMismatch);
    assert!(
        u.stderr
            .contains("configuration (the boot's primary volume UUID) differs"),
        "{u:?}"
    );
    assert!(!u.stderr.contains("extended the lock"), "{u:?}");
}

#[test]
fn replaced_srk_is_refused_before_any_secret_is_sent() {
    let mut tpm = Swtpm::start();
    let img = Image::new();
    enroll(&tpm, &img, &["--no-recovery-key"]).assert_exit(Exit::Ok);
    // The host swaps the key at 0x81000001 for one it controls.
    tpm.tpm2(&["evictcontrol", "-C", "o", "-c", "0x81000001"]);
    let ctx = img.file("evil.ctx");
    // Same curve, but no noDA attribute: a different key from the seed.
    tpm.tpm2(&["createprimary", "-C", "o", "-G", "ecc256", "-c", p(&ctx)]);
    tpm.tpm2(&["evictcontrol", "-C", "o", "-c", p(&ctx), "0x81000001"]);
    // The token carries the SRK's public area (no ReadPublic at unlock).
    let token = &img.json()["tokens"]["0"];
    assert!(token["srk_public"].is_string(), "{token}");
    let proxy = Proxy::start(tpm.port);
    let u = Args::new("unlock")
        .on_tcti(&proxy.tcti(), &img)
        .opt("name", "x")
        .arg("--dry-run")
        .run();
    u.assert_exit(Exit::TpmIdentity);
    assert!(
        u.stderr
            .contains("not the SRK this volume was sealed under"),
        "{u:?}"
    );
    // The substituted key never saw a salt: the Load under it failed, and
    // no session was started, nothing unsealed.
    let names: Vec<&str> = proxy.command_codes().iter().map(|&c| cc_name(c)).collect();
    assert!(names.contains(&"Load"), "{names:?}");
    for never in ["StartAuthSession", "Unseal"] {
        assert!(!names.contains(&never), "{never} sent: {names:?}");
    }
    // Nothing was unsealed; the failure still locks PCR 15.
    assert!(!u.stderr.contains("opened volume's lock"), "{u:?}");
    assert!(
        u.stderr.contains("extended the failure lock event"),
        "{u:?}"
    );

    // A TPM with no SRK at all (cleared) is refused the same way.
    tpm.reboot();
    tpm.tpm2(&["evictcontrol", "-C", "o", "-c", "0x81000001"]);
    let u = unlock(&tpm, &img, &[]);
    u.assert_exit(Exit::TpmIdentity);
    assert!(u.stderr.contains("no storage root key"), "{u:?}");
}

#[test]
fn pin_right_opens_wrong_has_its_own_exit_code() {
    let tpm = Swtpm::start();
    let img = Image::new();
    let pin = img.file("pin");
    std::fs::write(&pin, "2468\n").unwrap();
    let r = enroll(
        &tpm,
        &img,
        &["--no-recovery-key", "--pin", "--pin-file", p(&pin)],
    );
    r.assert_exit(Exit::Ok);
    let wrong = img.file("wrong");
    std::fs::write(&wrong, "1357\n").unwrap();
    let u = unlock(&tpm, &img, &["--pin-file", p(&wrong)]);
    u.assert_exit(Exit::PinOrLockout);
    assert!(u.stderr.contains("wrong PIN"), "{u:?}");
    assert!(!u.stderr.contains("1357"), "PIN leaked: {u:?}");
    // A wrong PIN costs the boot: PCR 15 is locked.
    let mut tpm = tpm;
    unlock(&tpm, &img, &["--pin-file", p(&pin)]).assert_exit(Exit::PcrMismatch);
    tpm.reboot();
    let none = unlock(&tpm, &img, &[]);
    none.assert_exit(Exit::PinOrLockout);
    tpm.reboot();
    let u = unlock(&tpm, &img, &["--pin-file", p(&pin)]);
    u.assert_exit(Exit::Ok);
    // The environment variable works too (after a reboot).
    tpm.reboot();
    Args::new("unlock")
        .on(&tpm, &img)
        .opt("name", "x")
        .arg("--dry-run")
        .env("SEALROOT_PIN", "2468")
        .run()
        .assert_exit(Exit::Ok);
}

#[test]
fn recovery_key_opens_its_own_argon2id_keyslot() {
    let tpm = Swtpm::start();
    let img = Image::new();
    let rk = img.file("recovery.key");
    let r = enroll(&tpm, &img, &["--recovery-key-file", p(&rk)]);
    r.assert_exit(Exit::Ok);
    let key = std::fs::read_to_string(&rk).unwrap();
    let key = key.as_str();
    assert_eq!(
        key.len(),
        71,
        "the file is the key, without a line ending: {key:?}"
    );
    assert!(!r.stdout.contains(key) && !r.stderr.contains(key), "{r:?}");
    assert_eq!(img.keyslots(), vec![0, 1, 2]);
    assert_eq!(img.json()["keyslots"]["2"]["kdf"]["type"], "argon2id");
    assert!(img.opens(key.as_bytes()));
    // Printed once on stdout when no file is given.
    let img2 = Image::new();
    let r = enroll(&tpm, &img2, &[]);
    r.assert_exit(Exit::Ok);
    let printed = r
        .stdout
        .lines()
        .map(str::trim)
        .find(|l| l.len() == 71 && l.matches('-').count() == 7)
        .expect("recovery key printed");
    assert!(img2.opens(printed.as_bytes()));
    assert!(!r.stderr.contains(printed));
}

#[test]
fn reseal_after_a_pcr_change_makes_unlock_work_again() {
    let mut tpm = Swtpm::start();
    let img = Image::new();
    enroll(&tpm, &img, &["--no-recovery-key", "--pcrs", "0,7,23"]).assert_exit(Exit::Ok);
    tpm.extend(23, 0x55);
    unlock(&tpm, &img, &[]).assert_exit(Exit::PcrMismatch);
    Args::new("reseal")
        .on(&tpm, &img)
        .opt("unlock-key-file", &img.key)
        .run()
        .assert_exit(Exit::Ok);
    // New keyslot and token replaced the old ones.
    assert_eq!(img.keyslots(), vec![0, 2]);
    assert_eq!(img.tokens().len(), 1);
    // The failed unlock locked PCR 15: the next boot, with PCR 23 as now.
    tpm.reboot();
    tpm.extend(23, 0x55);
    let u = unlock(&tpm, &img, &[]);
    u.assert_exit(Exit::Ok);
    assert!(u.stderr.contains("opens keyslot 2"), "{u:?}");
}

#[test]
fn reseal_authorised_by_the_tpm_itself() {
    let tpm = Swtpm::start();
    let img = Image::new();
    enroll(&tpm, &img, &["--no-recovery-key", "--pcrs", "0,7"]).assert_exit(Exit::Ok);
    // Widen the policy to PCR 0,7,23 without the passphrase.
    Args::new("reseal")
        .on(&tpm, &img)
        .opt("pcrs", "0,7,23")
        .run()
        .assert_exit(Exit::Ok);
    let mut tpm = tpm;
    tpm.reboot();
    unlock(&tpm, &img, &[]).assert_exit(Exit::Ok);
    tpm.reboot();
    tpm.extend(23, 1);
    unlock(&tpm, &img, &[]).assert_exit(Exit::PcrMismatch);
}

#[test]
fn unreachable_tpm_fails_within_the_timeout() {
    let img = Image::new();
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tcti = format!("swtpm:host=127.0.0.1,port={port}");
    let t = Instant::now();
    let r = sealroot(&[
        "enroll",
        "--device",
        p(&img.path),
        "--unlock-key-file",
        p(&img.key),
        "--tcti",
        &tcti,
        "--tpm-timeout",
        "1.5",
        "--no-recovery-key",
    ]);
    let took = t.elapsed();
    r.assert_exit(Exit::NoTpm);
    assert!(r.stderr.contains("TPM unavailable"), "{r:?}");
    assert!(r.stderr.contains("within 1.5 s"), "{r:?}");
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_secs(10),
        "{took:?}"
    );
    assert_eq!(img.keyslots(), vec![0], "nothing was added");

    let r = sealroot(&[
        "unlock",
        "--device",
        p(&img.path),
        "--name",
        "x",
        "--tcti",
        "device:/nonexistent/tpmrm0",
        "--tpm-timeout",
        "0.5",
        "--blob-file",
        "/dev/null",
    ]);
    // The blob is read first; /dev/null is not a blob.
    r.assert_exit(Exit::BlobInvalid);
}

#[test]
fn missing_tpm_device_is_reported_with_its_path() {
    let tpm = Swtpm::start();
    let img = Image::new();
    enroll(&tpm, &img, &["--no-recovery-key"]).assert_exit(Exit::Ok);
    let r = sealroot(&[
        "unlock",
        "--device",
        p(&img.path),
        "--name",
        "x",
        "--dry-run",
        "--tcti",
        "device:/nonexistent/tpmrm0",
        "--tpm-timeout",
        "0.3",
        "--cmdline-file",
        p(&img.cmdline),
    ]);
    r.assert_exit(Exit::NoTpm);
    assert!(
        r.stderr.contains("/nonexistent/tpmrm0 does not exist"),
        "{r:?}"
    );
}

#[test]
fn bad_cli_input_is_a_usage_error_and_touches_nothing() {
    let tpm = Swtpm::start();
    let img = Image::new();
    let before = img.sha256();
    let tcti = tpm.tcti();
    let dev = p(&img.path);
    let key = p(&img.key);
    let cases: Vec<Vec<&str>> = vec![
        vec!["enroll", "--device", dev],
        vec![
            "enroll",
            "--device",
            dev,
            "--unlock-key-file",
            key,
            "--pcrs",
            "24",
            "--tcti",
            &tcti,
        ],
        vec![
            "enroll",
            "--device",
            dev,
            "--unlock-key-file",
            key,
            "--pcrs",
            "1,,2",
            "--tcti",
            &tcti,
        ],
        vec![
            "enroll",
            "--device",
            dev,
            "--unlock-key-file",
            key,
            "--bank",
            "sha1",
            "--tcti",
            &tcti,
        ],
        vec![
            "enroll",
            "--device",
            dev,
            "--unlock-key-file",
            key,
            "--tpm-timeout",
            "-1",
        ],
        vec![
            "enroll",
            "--device",
            dev,
            "--unlock-key-file",
            key,
            "--tcti",
            "bogus:x",
        ],
        vec![
            "enroll",
            "--device",
            dev,
            "--unlock-key-file",
            key,
            "--no-such-flag",
        ],
        vec!["unlock", "--device", dev, "--name", "a/b", "--tcti", &tcti],
        vec!["unlock", "--device", dev],
        vec!["remove", "--device", dev, "--token", "x"],
        vec!["remove", "--device", dev, "--token", "0"],
        vec!["frobnicate"],
        vec![],
    ];
    for c in cases {
        let r = sealroot(&c);
        assert_eq!(r.exit(), Some(Exit::Usage), "{c:?}: {r:?}");
        assert!(!r.stderr.is_empty(), "{c:?}: no message");
    }
    assert_eq!(img.sha256(), before, "image was modified");
    // --help is not an error.
    sealroot(&["--help"]).assert_exit(Exit::Ok);
}

#[test]
fn bad_devices_and_files_have_clear_errors() {
    let tpm = Swtpm::start();
    let img = Image::new();
    let tcti = tpm.tcti();
    let r = sealroot(&[
        "enroll",
        "--device",
        "/nonexistent/disk",
        "--unlock-key-file",
        p(&img.key),
        "--tcti",
        &tcti,
    ]);
    r.assert_exit(Exit::Io);
    assert!(r.stderr.contains("/nonexistent/disk"), "{r:?}");
    let r = sealroot(&[
        "enroll",
        "--device",
        p(&img.path),
        "--unlock-key-file",
        "/nonexistent/key",
        "--tcti",
        &tcti,
    ]);
    r.assert_exit(Exit::Io);
    assert!(r.stderr.contains("/nonexistent/key"), "{r:?}");
    let plain = img.file("plain.img");
    std::fs::write(&plain, vec![0u8; 1 << 20]).unwrap();
    let r = sealroot(&[
        "enroll",
        "--device",
        p(&plain),
        "--unlock-key-file",
        p(&img.key),
        "--tcti",
        &tcti,
    ]);
    r.assert_exit(Exit::Luks);
    assert!(r.stderr.contains("not a LUKS2 volume"), "{r:?}");
    // Wrong unlock key: refused before the TPM is touched.
    let wrong = img.file("wrong.key");
    std::fs::write(&wrong, "nope").unwrap();
    let r = sealroot(&[
        "enroll",
        "--device",
        p(&img.path),
        "--unlock-key-file",
        p(&wrong),
        "--tcti",
        &tcti,
    ]);
    r.assert_exit(Exit::Luks);
    assert_eq!(img.keyslots(), vec![0]);
    // A blob file in a directory that does not exist.
    let r = enroll(
        &tpm,
        &img,
        &[
            "--no-recovery-key",
            "--blob-file",
            "/nonexistent/dir/blob.json",
        ],
    );
    r.assert_exit(Exit::Io);
    assert!(r.stderr.contains("/nonexistent/dir/blob.json"), "{r:?}");
}

#[test]
fn blob_file_mode_and_newer_format_versions() {
    let tpm = Swtpm::start();
    let img = Image::new();
    let bf = img.file("blob.json");
    let r = enroll(&tpm, &img, &["--no-recovery-key", "--blob-file", p(&bf)]);
    r.assert_exit(Exit::Ok);
    assert!(img.tokens().is_empty(), "no token in file mode");
    let u = unlock(&tpm, &img, &["--blob-file", p(&bf)]);
    u.assert_exit(Exit::Ok);
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&bf).unwrap()).unwrap();
    v["version"] = 3.into();
    let newer = img.file("newer.json");
    std::fs::write(&newer, v.to_string()).unwrap();
    let u = unlock(&tpm, &img, &["--blob-file", p(&newer)]);
    u.assert_exit(Exit::BlobInvalid);
    assert!(
        u.stderr.contains("newer than this sealroot supports"),
        "{u:?}"
    );
    v["version"] = 2.into();
    v["added_later"] = true.into();
    std::fs::write(&newer, v.to_string()).unwrap();
    let u = unlock(&tpm, &img, &["--blob-file", p(&newer)]);
    u.assert_exit(Exit::BlobInvalid);
    assert!(u.stderr.contains("unknown field"), "{u:?}");
}

#[test]
fn remove_deletes_token_and_keyslot_but_never_the_last_one() {
    let tpm = Swtpm::start();
    let img = Image::new();
    enroll(&tpm, &img, &["--no-recovery-key"]).assert_exit(Exit::Ok);
    let r = sealroot(&["remove", "--device", p(&img.path), "--token", "0"]);
    r.assert_exit(Exit::Ok);
    assert_eq!(img.keyslots(), vec![0]);
    assert!(img.tokens().is_empty());
    assert!(img.opens(b"correct horse battery staple"));

    // Enroll again, then drop the passphrase: the TPM keyslot is the last.
    enroll(&tpm, &img, &["--no-recovery-key"]).assert_exit(Exit::Ok);
    let out = std::process::Command::new("cryptsetup")
        .args(["luksKillSlot", "-q"])
        .arg(&img.path)
        .stdin(std::process::Stdio::null())
        .arg("0")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let r = sealroot(&["remove", "--device", p(&img.path), "--token", "0"]);
    r.assert_exit(Exit::Luks);
    assert!(r.stderr.contains("last keyslot"), "{r:?}");
    assert_eq!(img.keyslots(), vec![1]);
    unlock(&tpm, &img, &[]).assert_exit(Exit::Ok);
}

#[test]
fn key_file_unlock_opens_without_the_tpm_and_still_locks() {
    let tpm = Swtpm::start();
    let img = Image::new();
    // The file enroll writes is the key, as cryptsetup's --key-file reads it.
    let key = img.file("rk");
    enroll(&tpm, &img, &["--recovery-key-file", p(&key)]).assert_exit(Exit::Ok);
    let tcti = tpm.tcti();
    let r = sealroot(&[
        "unlock",
        "--device",
        p(&img.path),
        "--name",
        "x",
        "--dry-run",
        "--key-file",
        p(&key),
        "--tcti",
        &tcti,
    ]);
    r.assert_exit(Exit::Ok);
    assert!(
        r.stderr.contains("opened") && r.stderr.contains("keyslot 2"),
        "{r:?}"
    );
    // The booted system cannot replay sealroot's measurements and unseal.
    let u = unlock(&tpm, &img, &[]);
    u.assert_exit(Exit::PcrMismatch);
    assert!(u.stderr.contains("with a key file in this boot"), "{u:?}");
    // A wrong key file: LUKS error; no TPM at all: refused.
    let wrong = img.file("wrong");
    std::fs::write(&wrong, "nope").unwrap();
    let r = sealroot(&[
        "unlock",
        "--device",
        p(&img.path),
        "--name",
        "x",
        "--dry-run",
        "--key-file",
        p(&wrong),
        "--tcti",
        &tcti,
    ]);
    r.assert_exit(Exit::Luks);
    assert!(r.stderr.contains("no keyslot accepts this key"), "{r:?}");
    let r = sealroot(&[
        "unlock",
        "--device",
        p(&img.path),
        "--name",
        "x",
        "--dry-run",
        "--key-file",
        p(&img.key),
        "--tcti",
        "device:/nonexistent",
        "--tpm-timeout",
        "0.2",
    ]);
    // No TPM: the key is not used, since PCR 15 cannot be locked first.
    r.assert_exit(Exit::NoTpm);
    assert!(
        r.stderr.contains("not used before PCR 15 is locked"),
        "{r:?}"
    );
}

#[test]
fn zero_pcrs_are_refused_unless_allowed() {
    let tpm = Swtpm::start();
    let img = Image::new();
    let strict = || {
        Args::new("enroll")
            .on(&tpm, &img)
            .opt("unlock-key-file", &img.key)
            .arg("--no-recovery-key")
            .strict_pcrs()
            .run()
    };
    let r = strict();
    r.assert_exit(Exit::Usage);
    assert!(r.stderr.contains("PCR 0,4,7,9 are all zero"), "{r:?}");
    assert!(r.stderr.contains("--allow-zero-pcrs"), "{r:?}");
    // Nothing was persisted: no token, no keyslot, no SRK.
    assert!(img.tokens().is_empty());
    assert_eq!(img.keyslots(), vec![0]);
    let handles = tpm.tpm2(&["getcap", "handles-persistent"]);
    assert!(
        !String::from_utf8_lossy(&handles.stdout).contains("0x81000001"),
        "{handles:?}"
    );
    // Measured PCRs pass; one left unmeasured is named.
    for pcr in [0, 4, 7] {
        tpm.extend(pcr, 0x11);
    }
    let r = strict();
    r.assert_exit(Exit::Usage);
    assert!(r.stderr.contains("PCR 9 is all zero"), "{r:?}");
    tpm.extend(9, 0x11);
    strict().assert_exit(Exit::Ok);
}

#[test]
fn pcr_changed_during_the_session_is_retried() {
    let mut tpm = Swtpm::start();
    let img = Image::new();
    enroll(&tpm, &img, &["--no-recovery-key"]).assert_exit(Exit::Ok);
    let with_changes = |tpm: &Swtpm, n: &str| {
        Args::new("unlock")
            .on(tpm, &img)
            .opt("name", "x")
            .arg("--dry-run")
            .env("SEALROOT_TEST_PCR_CHANGES", n)
            .run()
    };
    // One change: the session runs again and the unseal succeeds.
    let r = with_changes(&tpm, "1");
    r.assert_exit(Exit::Ok);
    assert!(
        r.stderr.contains("a PCR changed during the policy session"),
        "{r:?}"
    );
    // PCRs that never hold still: a PCR mismatch, not "TPM unavailable".
    tpm.reboot();
    let r = with_changes(&tpm, "9");
    r.assert_exit(Exit::PcrMismatch);
    assert!(r.stderr.contains("attempt 3 of 3"), "{r:?}");
    assert!(
        r.stderr.contains("changed after sealroot read them"),
        "{r:?}"
    );
}

#[test]
fn a_passed_deadline_locks_and_fails() {
    let mut tpm = Swtpm::start();
    let img = Image::new();
    enroll(&tpm, &img, &["--no-recovery-key"]).assert_exit(Exit::Ok);
    let r = unlock(&tpm, &img, &["--deadline", "0"]);
    r.assert_exit(Exit::Timeout);
    assert!(r.stderr.contains("deadline passed"), "{r:?}");
    // Locked: the same boot cannot unseal any more; the next one can.
    unlock(&tpm, &img, &[]).assert_exit(Exit::PcrMismatch);
    tpm.reboot();
    unlock(&tpm, &img, &[]).assert_exit(Exit::Ok);
}

#[test]
fn a_tpm_without_a_sha256_bank_is_named_and_nothing_persists() {
    let mut tpm = Swtpm::start();
    let img = Image::new();
    let out = tpm.tpm2(&["pcrallocate", "sha1:all+sha256:none"]);
    assert!(out.status.success(), "{out:?}");
    tpm.reboot();
    let r = enroll(&tpm, &img, &["--no-recovery-key"]);
    r.assert_exit(Exit::PcrMismatch);
    assert!(r.stderr.contains("sha256 bank"), "{r:?}");
    let handles = tpm.tpm2(&["getcap", "handles-persistent"]);
    assert!(
        !String::from_utf8_lossy(&handles.stdout).contains("0x81000001"),
        "the SRK was created: {handles:?}"
    );
    assert!(img.tokens().is_empty());
}

/// Token 0 of `img` rewritten by `edit` (remove, then import).
fn replace_token(img: &Image, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut tok = img.json()["tokens"]["0"].clone();
    edit(&mut tok);
    let out = std::process::Command::new("cryptsetup")
        .args(["token", "remove", "--token-id", "0"])
        .arg(&img.path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let f = img.file("token.json");
    std::fs::write(&f, tok.to_string()).unwrap();
    import_token(img, &f, &[]);
}

#[test]
fn version_1_tokens_unlock_with_a_warning_until_reseal_and_cannot_be_faked() {
    use base64::Engine as _;
    use sealroot::formats::envelope::{self, Binding};
    use sealroot::secret::Key32;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut tpm = Swtpm::start();
    let img = Image::new();
    let reveal = tempfile::tempdir().unwrap();
    Args::new("enroll")
        .on(&tpm, &img)
        .opt("unlock-key-file", &img.key)
        .arg("--no-recovery-key")
        .env("SEALROOT_TEST_REVEAL_DIR", reveal.path())
        .run()
        .assert_exit(Exit::Ok);
    let kek = Key32::from_slice(&revealed(reveal.path(), "enroll-kek")).unwrap();
    let tok = img.json()["tokens"]["0"].clone();
    assert_eq!(tok["version"], 2, "{tok:#}");

    // A downgrade (fingerprint stripped, version 1) fails the envelope: the
    // version and the fingerprint are in its associated data.
    replace_token(&img, |t| {
        t["version"] = 1.into();
        t.as_object_mut().unwrap().remove("volume_key_fingerprint");
    });
    let u = unlock(&tpm, &img, &[]);
    u.assert_exit(Exit::BlobInvalid);
    assert!(u.stderr.contains("does not authenticate"), "{u:?}");

    // A genuine version-1 token (what an older sealroot wrote): the same
    // secret under the version-1 associated data.
    let policy: [u8; 32] = hex::decode(tok["policy_digest"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let nonce = b64.decode(tok["nonce"].as_str().unwrap()).unwrap();
    let ct = b64.decode(tok["ciphertext"].as_str().unwrap()).unwrap();
    let fp: [u8; 32] = hex::decode(tok["volume_key_fingerprint"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let uuid = tok["volume_uuid"].as_str().unwrap().to_string();
    let bind = |version, fingerprint| Binding {
        version,
        volume_uuid: &uuid,
        policy_digest: &policy,
        keyslot: 1,
        platform: None,
        fingerprint,
        key_origin: None,
        rekey_epoch: None,
    };
    let secret = envelope::open(&kek, &nonce, &ct, &bind(2, Some(fp))).unwrap();
    let v1 = envelope::seal(
        &kek,
        &nonce.clone().try_into().unwrap(),
        &secret,
        &bind(1, None),
    );
    replace_token(&img, |t| {
        *t = tok.clone();
        t["version"] = 1.into();
        t.as_object_mut().unwrap().remove("volume_key_fingerprint");
        t["ciphertext"] = b64.encode(&v1).into();
    });
    tpm.reboot();
    let u = unlock(&tpm, &img, &[]);
    u.assert_exit(Exit::Ok);
    assert!(
        u.stderr
            .contains("version-1 token does not bind the volume key"),
        "{u:?}"
    );
    let (st, j) = status_json(&tpm, &img);
    assert_eq!(j["tokens"][0]["version"], 1, "{st:?}");
    assert!(
        st.stdout.contains("note: version-1 token") || j["tokens"][0]["opened_pcr15"].is_null()
    );

    // reseal upgrades it: version 2, no warning.
    Args::new("reseal")
        .on(&tpm, &img)
        .opt("unlock-key-file", &img.key)
        .run()
        .assert_exit(Exit::Ok);
    let j = img.json();
    let toks: Vec<&serde_json::Value> = j["tokens"].as_object().unwrap().values().collect();
    assert_eq!(toks.len(), 1, "{j:#}");
    assert_eq!(toks[0]["version"], 2, "{j:#}");
    tpm.reboot();
    let u = unlock(&tpm, &img, &[]);
    u.assert_exit(Exit::Ok);
    assert!(!u.stderr.contains("version-1"), "{u:?}");
}

#[test]
fn enroll_warns_when_nothing_binds_the_initrd_or_the_command_line() {
    let tpm = Swtpm::start();
    let img = Image::new();
    let r = enroll(&tpm, &img, &["--no-recovery-key", "--pcrs", "0,7"]);
    r.assert_exit(Exit::Ok);
    assert!(r.stderr.contains("bind neither the initrd"), "{r:?}");
    let img = Image::new();
    let r = enroll(&tpm, &img, &["--no-recovery-key"]);
    r.assert_exit(Exit::Ok);
    assert!(!r.stderr.contains("bind neither"), "{r:?}");
}

/// A volume formatted with cryptsetup's benchmarked digest: `enroll` says
/// what the digest costs at every unlock; sealroot's own minimum does not.
#[test]
fn enroll_names_the_cost_of_a_stretched_digest() {
    let tpm = Swtpm::start();
    let img = Image::formatted(
        b"correct horse battery staple",
        &["--pbkdf", "pbkdf2", "--iter-time", "100"],
    );
    let iterations = img.json()["digests"]["0"]["iterations"].as_u64().unwrap();
    assert!(iterations > 10_000, "cryptsetup wrote {iterations}");
    let r = enroll(&tpm, &img, &["--no-recovery-key"]);
    r.assert_exit(Exit::Ok);
    let want = format!("LUKS2 digest takes {iterations} PBKDF2-sha256 iterations, about ");
    assert!(r.stderr.contains(&want), "{r:?}");
    assert!(r.stderr.contains("ms at every unlock"), "{r:?}");

    let img = Image::new();
    let r = enroll(&tpm, &img, &["--no-recovery-key"]);
    r.assert_exit(Exit::Ok);
    assert!(!r.stderr.contains("LUKS2 digest takes"), "{r:?}");
}

/// The in-process keyslot path (src/formats/luks2/keyslot.rs) yields the
/// volume key cryptsetup reports, for PBKDF2 keyslots with either hash,
/// and nothing for a wrong key (libcryptsetup's digest decides).
#[test]
fn in_process_keyslot_opening_matches_cryptsetup() {
    use sealroot::disk::luks::Volume;
    let pass = b"correct horse battery staple";
    for hash in ["sha256", "sha512"] {
        let img = Image::formatted(
            pass,
            &[
                "--pbkdf",
                "pbkdf2",
                "--pbkdf-force-iterations",
                "1000",
                "--hash",
                hash,
            ],
        );
        let dump = img.file("vk");
        let out = std::process::Command::new("cryptsetup")
            .args(["luksDump", "--dump-volume-key", "--volume-key-file"])
            .arg(&dump)
            .arg("--key-file")
            .arg(&img.key)
            .arg("-q")
            .arg(&img.path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let want = std::fs::read(&dump).unwrap();
        let mut vol = Volume::open(&img.path).unwrap();
        let got = vol.volume_key_in_process(0, pass).expect(hash);
        assert_eq!(got.as_bytes(), &want[..], "{hash}");
        assert!(vol.volume_key_in_process(0, b"wrong").is_none(), "{hash}");
        // The public entry point agrees, and still refuses the wrong key.
        let (slot, vk) = vol.volume_key(Some(0), pass).unwrap();
        assert_eq!((slot, vk.as_bytes()), (0, &want[..]));
        assert!(vol.volume_key(Some(0), b"wrong").is_err());
    }
}

/// The token's SRK fields are not authenticated: rewrite both `srk_public`
/// and `srk_name` to describe another key (one the host holds), leaving
/// the real SRK in the TPM.
fn point_token_at_another_srk(tpm: &Swtpm, img: &Image) {
    let ctx = img.file("other.ctx");
    let (public, name) = (img.file("other.pub"), img.file("other.name"));
    tpm.tpm2(&["createprimary", "-C", "o", "-G", "ecc256", "-c", p(&ctx)]);
    tpm.tpm2(&[
        "readpublic",
        "-c",
        p(&ctx),
        "-o",
        p(&public),
        "-n",
        p(&name),
    ]);
    tpm.tpm2(&["flushcontext", "-t"]);
    use base64::Engine as _;
    let mut tok = img.json()["tokens"]["0"].clone();
    tok["srk_public"] = base64::engine::general_purpose::STANDARD
        .encode(std::fs::read(&public).unwrap())
        .into();
    tok["srk_name"] = hex::encode(std::fs::read(&name).unwrap()).into();
    let json = img.file("tok.json");
    std::fs::write(&json, tok.to_string()).unwrap();
    import_token(img, &json, &["--token-id", "0", "--token-replace"]);
}

/// With a PIN, the Unseal's HMAC is keyed with the session key and the
/// PIN: a session salted to the host's key would let it test PINs offline.
/// So for a PIN volume sealroot reads the SRK and compares it with the
/// token before any session; without a PIN the salt may go to the token's
/// key (nothing secret rides on it), and the failure names the SRK.
#[test]
fn a_token_naming_another_srk_gets_no_pin_session() {
    let mut tpm = Swtpm::start();
    let pin = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(pin.path(), "2468\n").unwrap();
    for with_pin in [true, false] {
        let img = Image::new();
        let mut extra = vec!["--no-recovery-key"];
        if with_pin {
            extra.extend(["--pin", "--pin-file", p(pin.path())]);
        }
        enroll(&tpm, &img, &extra).assert_exit(Exit::Ok);
        point_token_at_another_srk(&tpm, &img);
        tpm.reboot();
        let proxy = Proxy::start(tpm.port);
        let u = Args::new("unlock")
            .on_tcti(&proxy.tcti(), &img)
            .opt("name", "x")
            .opt("pin-file", pin.path())
            .arg("--dry-run")
            .run();
        u.assert_exit(Exit::TpmIdentity);
        assert!(
            u.stderr
                .contains("not the SRK this volume was sealed under"),
            "{u:?}"
        );
        let names: Vec<&str> = proxy.command_codes().iter().map(|&c| cc_name(c)).collect();
        if with_pin {
            for never in ["Load", "StartAuthSession", "PolicyAuthValue", "Unseal"] {
                assert!(!names.contains(&never), "{never} sent: {names:?}");
            }
        }
        tpm.reboot();
    }
}
