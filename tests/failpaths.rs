//! Every exit of `unlock` leaves PCR 15 locked when a TPM answers, so
//! nothing that runs after a failed (or key-file) unlock can unseal the real
//! volume's key in the same boot: neither sealroot itself nor raw TPM
//! commands (tests/common/rawtpm.rs). The attacker here is the host: it
//! hands the guest a volume of its own carrying the real volume's UUID.

mod common;
use common::rawtpm::{pcr_read, raw_unseal, replay_self_measurements};
use common::*;
use sealroot::Exit;

/// The first (only) token of `img`.
fn token(img: &Image) -> serde_json::Value {
    let j = img.json();
    let (_, t) = j["tokens"]
        .as_object()
        .unwrap()
        .iter()
        .next()
        .expect("a token");
    t.clone()
}

#[test]
fn raw_unseal_releases_the_kek_sealroot_unseals() {
    let mut tpm = Swtpm::start();
    let img = Image::new();
    enroll(&tpm, &img, &["--no-recovery-key"]).assert_exit(Exit::Ok);
    let tok = token(&img);

    // A boot sealroot has not measured: raw commands cannot unseal...
    tpm.reboot();
    assert!(raw_unseal(&tpm, &tok, None).is_err());
    // ...until they replay sealroot's measurements themselves.
    assert!(replay_self_measurements(&tpm, &tok));
    let kek = raw_unseal(&tpm, &tok, None).expect("raw unseal");
    assert_eq!(kek.len(), 32);
    // It is the KEK sealroot unseals (PCR 15 holds this boot's measurements,
    // so sealroot does not extend them again).
    let reveal = img.file("reveal");
    std::fs::create_dir(&reveal).unwrap();
    Args::new("unlock")
        .on(&tpm, &img)
        .opt("name", "x")
        .arg("--dry-run")
        .env("SEALROOT_TEST_REVEAL_DIR", &reveal)
        .run()
        .expect(Exit::Ok);
    assert_eq!(revealed(&reveal, "kek"), kek);
    // After sealroot's lock nothing unseals, and a replay is not possible.
    assert!(!replay_self_measurements(&tpm, &tok));
    assert!(raw_unseal(&tpm, &tok, None).is_err());
    assert_ne!(pcr_read(&tpm, 15), [0; 32]);
}

#[test]
fn raw_unseal_with_a_pin() {
    let mut tpm = Swtpm::start();
    let img = Image::new();
    let pin = img.file("pin");
    std::fs::write(&pin, "2468\n").unwrap();
    enroll(
        &tpm,
        &img,
        &["--no-recovery-key", "--pin", "--pin-file", p(&pin)],
    )
    .assert_exit(Exit::Ok);
    let tok = token(&img);
    tpm.reboot();
    assert!(replay_self_measurements(&tpm, &tok));
    assert!(raw_unseal(&tpm, &tok, Some("1357")).is_err(), "wrong PIN");
    assert!(raw_unseal(&tpm, &tok, None).is_err(), "no PIN");
    assert_eq!(raw_unseal(&tpm, &tok, Some("2468")).unwrap().len(), 32);
}
