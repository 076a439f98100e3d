//! Endurance and dictionary-attack behaviour against one swtpm.

mod common;
use common::*;
use sealroot::Exit;

fn handle_count(tpm: &Swtpm, kind: &str) -> usize {
    let out = tpm.tpm2(&["getcap", kind]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.trim_start().starts_with("- 0x"))
        .count()
}

#[test]
fn a_thousand_unlock_and_relock_cycles() {
    let mut tpm = Swtpm::start();
    let img = Image::new();
    enroll(&tpm, &img, &["--no-recovery-key"]).assert_exit(Exit::Ok);
    let persistent = handle_count(&tpm, "handles-persistent");
    assert_eq!(persistent, 1, "just the SRK");
    for i in 0..1000 {
        tpm.reboot();
        let u = unlock(&tpm, &img, &[]);
        assert_eq!(u.exit(), Some(Exit::Ok), "cycle {i}: {u:?}");
        // Relocked: a second unseal in the same boot is refused.
        if i % 100 == 0 {
            let again = unlock(&tpm, &img, &[]);
            assert_eq!(
                again.exit(),
                Some(Exit::PcrMismatch),
                "cycle {i}: {again:?}"
            );
        }
        if i % 50 == 0 || i == 999 {
            assert_eq!(handle_count(&tpm, "handles-transient"), 0, "cycle {i}");
            assert_eq!(handle_count(&tpm, "handles-loaded-session"), 0, "cycle {i}");
            assert_eq!(handle_count(&tpm, "handles-saved-session"), 0, "cycle {i}");
            assert_eq!(
                handle_count(&tpm, "handles-persistent"),
                persistent,
                "cycle {i}"
            );
        }
    }
}

#[test]
fn wrong_pin_until_dictionary_attack_lockout() {
    let mut tpm = Swtpm::start();
    let img = Image::new();
    let pin = img.file("pin");
    std::fs::write(&pin, "4242").unwrap();
    enroll(
        &tpm,
        &img,
        &["--no-recovery-key", "--pin", "--pin-file", p(&pin)],
    )
    .assert_exit(Exit::Ok);
    // Three failures allowed, a long recovery time.
    tpm.tpm2(&[
        "dictionarylockout",
        "-s",
        "-n",
        "3",
        "-t",
        "3600",
        "-l",
        "3600",
    ]);
    let wrong = img.file("wrong");
    std::fs::write(&wrong, "0000").unwrap();
    let mut saw_lockout = false;
    for i in 0..6 {
        // Each try costs its boot (the failure locks PCR 15).
        tpm.reboot();
        let u = unlock(&tpm, &img, &["--pin-file", p(&wrong)]);
        assert_eq!(u.exit(), Some(Exit::PinOrLockout), "try {i}: {u:?}");
        if u.stderr.contains("dictionary-attack lockout") {
            saw_lockout = true;
            assert!(i >= 2, "locked out after only {i} tries");
            break;
        }
        assert!(u.stderr.contains("wrong PIN"), "try {i}: {u:?}");
    }
    assert!(saw_lockout, "never reached lockout");
    // In lockout even the right PIN is refused, with the same exit code.
    tpm.reboot();
    let u = unlock(&tpm, &img, &["--pin-file", p(&pin)]);
    u.assert_exit(Exit::PinOrLockout);
    assert!(u.stderr.contains("lockout"), "{u:?}");
    // The owner clears the lockout; the right PIN works again.
    tpm.tpm2(&["dictionarylockout", "-c"]);
    tpm.reboot();
    let u = unlock(&tpm, &img, &["--pin-file", p(&pin)]);
    u.assert_exit(Exit::Ok);
}
