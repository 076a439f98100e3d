//! Keys and PINs as people type and store them: recovery-key files with
//! and without a line ending, key files taken byte for byte, PIN files
//! from other systems, invisible characters (docs/security.md).

mod common;
use common::*;
use sealroot::Exit;

/// The TPM's dictionary-attack failure counter.
fn lockout_counter(tpm: &Swtpm) -> String {
    let out = tpm.tpm2(&["getcap", "properties-variable"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let i = text.find("TPM2_PT_LOCKOUT_COUNTER").expect(&text);
    text[i..].lines().next().unwrap().to_string()
}

#[test]
fn recovery_key_files_are_written_bare_and_read_with_one_line_ending() {
    let mut tpm = Swtpm::start();
    let img = Image::new();
    let rk = img.file("rk");
    enroll(&tpm, &img, &["--recovery-key-file", p(&rk)]).assert_exit(Exit::Ok);
    let key = std::fs::read(&rk).unwrap();
    assert_eq!(
        key.len(),
        71,
        "no line ending: {:?}",
        String::from_utf8_lossy(&key)
    );
    assert!(img.opens(&key));
    for (end, name) in [(&b"\n"[..], "lf"), (b"\r\n", "crlf")] {
        let f = img.file(&format!("rk.{name}"));
        std::fs::write(&f, [&key[..], end].concat()).unwrap();
        tpm.reboot();
        Args::new("unlock")
            .on(&tpm, &img)
            .opt("name", "x")
            .arg("--dry-run")
            .opt("key-file", &f)
            .run()
            .expect(Exit::Ok);
        Args::new("reseal")
            .on(&tpm, &img)
            .opt("unlock-key-file", &f)
            .run()
            .expect(Exit::Ok);
    }
    // enroll takes it as its unlock key too (a second token).
    let f = img.file("rk.lf");
    Args::new("enroll")
        .on(&tpm, &img)
        .opt("unlock-key-file", &f)
        .arg("--no-recovery-key")
        .run()
        .expect(Exit::Ok);
    // Two line endings are not a recovery key's: byte for byte, refused,
    // and the message names the line ending.
    let two = img.file("rk.two");
    std::fs::write(&two, [&key[..], b"\n\n"].concat()).unwrap();
    tpm.reboot();
    let r = Args::new("unlock")
        .on(&tpm, &img)
        .opt("name", "x")
        .arg("--dry-run")
        .opt("key-file", &two)
        .run()
        .expect(Exit::Luks);
    assert!(r.stderr.contains("no keyslot accepts this key"), "{r:?}");
    assert!(r.stderr.contains("ends in a line ending, \\n"), "{r:?}");
}

#[test]
fn other_key_files_are_taken_byte_for_byte_and_a_line_ending_is_named() {
    let mut tpm = Swtpm::start();
    let img = Image::new(); // passphrase "correct horse battery staple"
    let nl = img.file("pass.nl");
    std::fs::write(&nl, b"correct horse battery staple\n").unwrap();
    enroll(&tpm, &img, &["--no-recovery-key"]).assert_exit(Exit::Ok);
    for cmd in ["unlock", "reseal", "enroll"] {
        tpm.reboot();
        let a = Args::new(cmd).on(&tpm, &img);
        let a = match cmd {
            "unlock" => a.opt("name", "x").arg("--dry-run").opt("key-file", &nl),
            _ => a.opt("unlock-key-file", &nl),
        };
        let r = a.run().expect(Exit::Luks);
        assert!(r.stderr.contains("line ending, \\n"), "{cmd}: {r:?}");
    }
    // The key without the newline works; one with CRLF is named as such.
    let crlf = img.file("pass.crlf");
    std::fs::write(&crlf, b"correct horse battery staple\r\n").unwrap();
    tpm.reboot();
    let r = Args::new("unlock")
        .on(&tpm, &img)
        .opt("name", "x")
        .arg("--dry-run")
        .opt("key-file", &crlf)
        .run()
        .expect(Exit::Luks);
    assert!(r.stderr.contains("line ending, \\r\\n"), "{r:?}");
    tpm.reboot();
    let r = Args::new("unlock")
        .on(&tpm, &img)
        .opt("name", "x")
        .arg("--dry-run")
        .opt("key-file", &img.key)
        .run()
        .expect(Exit::Ok);
    assert!(!r.stderr.contains("line ending"), "{r:?}");
}

#[test]
fn a_provisioning_key_shaped_like_a_recovery_key_keeps_its_line_ending_out() {
    let tpm = Swtpm::start();
    let key = "cbdefghi-jklnrtuv-cbdefghi-jklnrtuv-cbdefghi-jklnrtuv-cbdefghi-jklnrtuv";
    let img = Image::with_passphrase(key.as_bytes());
    let prov = img.file("provision.key");
    std::fs::write(&prov, format!("{key}\n")).unwrap();
    let tab = img.file("crypttab");
    std::fs::write(
        &tab,
        format!(
            "root {} none sealroot,sealroot-provision-key={}\n",
            p(&img.path),
            p(&prov)
        ),
    )
    .unwrap();
    let r = Args::new("boot")
        .arg("--dry-run")
        .opt("crypttab", &tab)
        .opt("cmdline-file", &img.cmdline)
        .opt("tcti", tpm.tcti())
        .run()
        .expect(Exit::Ok);
    assert!(r.stderr.contains("first boot"), "{r:?}");
}

#[test]
fn pin_files_drop_their_line_ending_whatever_wrote_it() {
    let mut tpm = Swtpm::start();
    let img = Image::new();
    let pin = img.file("pin");
    std::fs::write(&pin, "2468\r\n").unwrap();
    enroll(
        &tpm,
        &img,
        &["--no-recovery-key", "--pin", "--pin-file", p(&pin)],
    )
    .assert_exit(Exit::Ok);
    for content in ["2468", "2468\n", "2468\r", "2468\r\n"] {
        std::fs::write(&pin, content).unwrap();
        tpm.reboot();
        unlock(&tpm, &img, &["--pin-file", p(&pin)]).assert_exit(Exit::Ok);
    }
    assert!(
        lockout_counter(&tpm).ends_with("0x0"),
        "{}",
        lockout_counter(&tpm)
    );
}

#[test]
fn a_pin_with_an_invisible_or_control_character_is_refused_before_the_tpm() {
    let mut tpm = Swtpm::start();
    let img = Image::new();
    let pin = img.file("pin");
    for (bad, code) in [
        ("24\u{200b}68\n", "U+200B"),
        ("\u{feff}2468\n", "U+FEFF"),
        ("2468\n\n", "U+000A"),
        ("24\t68", "U+0009"),
    ] {
        std::fs::write(&pin, bad).unwrap();
        let r = enroll(
            &tpm,
            &img,
            &["--no-recovery-key", "--pin", "--pin-file", p(&pin)],
        )
        .expect(Exit::Usage);
        assert!(r.stderr.contains(code), "{bad:?}: {r:?}");
        assert!(r.stderr.contains("invisible or control character"), "{r:?}");
        assert!(!r.stderr.contains("2468"), "PIN shown: {r:?}");
    }
    assert!(img.tokens().is_empty());
    std::fs::write(&pin, "2468\n").unwrap();
    enroll(
        &tpm,
        &img,
        &["--no-recovery-key", "--pin", "--pin-file", p(&pin)],
    )
    .assert_exit(Exit::Ok);
    // At unlock (and reseal) it is refused before any try: the TPM's
    // dictionary-attack counter does not move.
    std::fs::write(&pin, "\u{feff}2468\n").unwrap();
    tpm.reboot();
    let r = unlock(&tpm, &img, &["--pin-file", p(&pin)]).expect(Exit::Usage);
    assert!(r.stderr.contains("U+FEFF"), "{r:?}");
    let r = Args::new("reseal")
        .on(&tpm, &img)
        .opt("pin-file", &pin)
        .run()
        .expect(Exit::Usage);
    assert!(r.stderr.contains("U+FEFF"), "{r:?}");
    tpm.reboot();
    let r = Args::new("unlock")
        .on(&tpm, &img)
        .opt("name", "x")
        .arg("--dry-run")
        .env("SEALROOT_PIN", "24\u{200b}68")
        .run()
        .expect(Exit::Usage);
    assert!(
        r.stderr.contains("SEALROOT_PIN") && r.stderr.contains("U+200B"),
        "{r:?}"
    );
    assert!(
        lockout_counter(&tpm).ends_with("0x0"),
        "{}",
        lockout_counter(&tpm)
    );
    tpm.reboot();
    std::fs::write(&pin, "2468").unwrap();
    unlock(&tpm, &img, &["--pin-file", p(&pin)]).assert_exit(Exit::Ok);
}
