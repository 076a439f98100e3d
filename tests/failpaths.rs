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

// ---------------------------------------------------------------------------
// The failure-path matrix: the host boots the guest with a volume of its own
// carrying the real volume's UUID (so sealroot's configuration measurement
// is the real one's), each case failing a different way, then tries to
// unseal the real volume's token in the same boot.

/// The attacker volume's own passphrase (keyslot 0).
const ATTACKER_KEY: &[u8] = b"the host's own passphrase";

fn set_uuid(img: &Image, uuid: &str) {
    let out = std::process::Command::new("cryptsetup")
        .args(["luksUUID", "-q", "--uuid", uuid])
        .arg(&img.path)
        .output()
        .unwrap();
    assert!(out.status.success(), "luksUUID: {out:?}");
    assert_eq!(img.uuid(), uuid);
}

/// `cryptsetup token import` of `tok` into `img`.
fn import_token(img: &Image, tok: &serde_json::Value) {
    let f = img.file("token.json");
    std::fs::write(&f, tok.to_string()).unwrap();
    let out = std::process::Command::new("cryptsetup")
        .args(["token", "import", "--json-file"])
        .arg(&f)
        .arg(&img.path)
        .output()
        .unwrap();
    assert!(out.status.success(), "token import: {out:?}");
}

/// One swtpm with the real volume enrolled on it (PCR mode, with a PIN if
/// `pin`), and the attacker's volume with the same UUID, after a reboot:
/// PCR 15 is fresh when the attacker's run starts.
struct Boot {
    tpm: Swtpm,
    real: Image,
    /// The real volume's token.
    tok: serde_json::Value,
    pin: Option<&'static str>,
    /// `--pin-file FILE` with the right PIN, or nothing.
    pin_args: Vec<String>,
    att: Image,
}

impl Boot {
    fn new(pin: Option<&'static str>) -> Boot {
        let mut tpm = Swtpm::start();
        let real = Image::new();
        let mut pin_args = Vec::new();
        if let Some(pin) = pin {
            let f = real.file("pin");
            std::fs::write(&f, format!("{pin}\n")).unwrap();
            pin_args = vec!["--pin-file".to_string(), p(&f).to_string()];
        }
        let mut extra = vec!["--no-recovery-key"];
        if pin.is_some() {
            extra.push("--pin");
            extra.extend(pin_args.iter().map(String::as_str));
        }
        enroll(&tpm, &real, &extra).assert_exit(Exit::Ok);
        let tok = token(&real);
        assert_eq!(tok["keyslots"], serde_json::json!(["1"]));
        let att = Image::with_passphrase(ATTACKER_KEY);
        set_uuid(&att, &real.uuid());
        tpm.reboot();
        Boot {
            tpm,
            real,
            tok,
            pin,
            pin_args,
            att,
        }
    }

    /// Give the attacker's volume a keyslot 1 with a passphrase of its own,
    /// and a copy of the real token (which names keyslot 1).
    fn copy_token_onto_own_keyslot(&self) {
        let other = self.att.file("slot1");
        std::fs::write(&other, "the host's keyslot 1").unwrap();
        self.att.add_key(&other);
        assert_eq!(self.att.keyslots(), vec![0, 1]);
        import_token(&self.att, &self.tok);
    }

    /// `sealroot unlock --dry-run` on the attacker's volume, with the
    /// options the real volume's boot uses.
    fn attack(&self, extra: &[&str]) -> Run {
        assert_eq!(pcr_read(&self.tpm, 15), [0; 32], "PCR 15 fresh before");
        unlock(&self.tpm, &self.att, extra)
    }

    /// In the same boot as the attacker's run: neither raw TPM commands
    /// (replaying sealroot's measurements when PCR 15 is still fresh) nor
    /// sealroot itself unseals the real token. Then, the control: after a
    /// reboot both do.
    #[track_caller]
    fn assert_real_key_out_of_reach(mut self, case: &str) {
        let pcr15 = hex::encode(pcr_read(&self.tpm, 15));
        // Raw commands first: when they fail they change nothing, and a
        // sealroot success would lock PCR 15 and hide what raw commands
        // could have done.
        let replayed = replay_self_measurements(&self.tpm, &self.tok);
        let raw = raw_unseal(&self.tpm, &self.tok, self.pin);
        let again = unlock(&self.tpm, &self.real, &self.pin_args());
        assert!(
            raw.is_err() && again.exit() == Some(Exit::PcrMismatch),
            "{case}: the real volume's key is still within reach in this boot (PCR 15 was {pcr15} after the attacker's run)\n\
             raw TPM commands{}: {}\nsealroot unlock of the real volume: {again:?}",
            if replayed { " (after replaying sealroot's measurements into a fresh PCR 15)" } else { "" },
            match &raw {
                Ok(k) => format!("UNSEALED ({} bytes)", k.len()),
                Err(e) => format!("refused ({e})"),
            },
        );

        // Control: in a fresh boot the real token unseals both ways.
        self.tpm.reboot();
        assert!(replay_self_measurements(&self.tpm, &self.tok));
        let kek = raw_unseal(&self.tpm, &self.tok, self.pin)
            .unwrap_or_else(|e| panic!("{case}: control: raw unseal in a fresh boot: {e}"));
        assert_eq!(kek.len(), 32);
        unlock(&self.tpm, &self.real, &self.pin_args()).expect(Exit::Ok);
    }

    fn pin_args(&self) -> Vec<&str> {
        self.pin_args.iter().map(String::as_str).collect()
    }
}

#[test]
fn a_no_token() {
    let b = Boot::new(None);
    b.attack(&[]).expect(Exit::NotEnrolled);
    b.assert_real_key_out_of_reach("no token");
}

#[test]
fn b_unparseable_token() {
    let b = Boot::new(None);
    import_token(
        &b.att,
        &serde_json::json!({
            "type": "sealroot",
            "keyslots": [],
            "version": 1,
            "keyslot": "one",
            "tpm_public": "!!",
            "garbage": {"x": [1, 2, 3]},
        }),
    );
    b.attack(&[]).expect(Exit::BlobInvalid);
    b.assert_real_key_out_of_reach("unparseable token");
}

#[test]
fn c_token_sealed_under_a_foreign_srk() {
    // A token for this UUID sealed on another TPM: its pinned SRK name is
    // not the SRK at 0x81000001 here.
    let b = Boot::new(None);
    let other = Swtpm::start();
    enroll(&other, &b.att, &["--no-recovery-key"]).assert_exit(Exit::Ok);
    assert_ne!(token(&b.att)["srk_name"], b.tok["srk_name"]);
    let r = b.attack(&[]).expect(Exit::TpmIdentity);
    assert!(r.stderr.contains("not the SRK"), "{r:?}");
    b.assert_real_key_out_of_reach("foreign SRK");
}

#[test]
fn d_pcr_mismatch() {
    // The attacker's token is sealed (on this TPM, for this UUID) to PCR 23
    // as well, which no longer matches; the real token does not cover
    // PCR 23, so only PCR 15 can keep it sealed.
    let b = Boot::new(None);
    enroll(
        &b.tpm,
        &b.att,
        &["--no-recovery-key", "--pcrs", "0,4,7,9,23"],
    )
    .assert_exit(Exit::Ok);
    b.tpm.extend(23, 0xaa);
    let r = b.attack(&[]).expect(Exit::PcrMismatch);
    assert!(r.stderr.contains("PCR 23 differs"), "{r:?}");
    b.assert_real_key_out_of_reach("PCR mismatch");
}

#[test]
fn e_wrong_pin() {
    let b = Boot::new(Some("2468"));
    b.copy_token_onto_own_keyslot();
    let wrong = b.att.file("wrong-pin");
    std::fs::write(&wrong, "1357\n").unwrap();
    b.attack(&["--pin-file", p(&wrong)])
        .expect(Exit::PinOrLockout);
    b.assert_real_key_out_of_reach("wrong PIN");
}

#[test]
fn f_missing_keyslot() {
    // The real token, unassigned (LUKS2 will not assign a token to a
    // keyslot that does not exist), naming keyslot 1, which the attacker's
    // volume does not have.
    let b = Boot::new(None);
    let mut tok = b.tok.clone();
    tok["keyslots"] = serde_json::json!([]);
    import_token(&b.att, &tok);
    assert_eq!(b.att.keyslots(), vec![0]);
    let r = b.attack(&[]).expect(Exit::Luks);
    assert!(r.stderr.contains("does not exist"), "{r:?}");
    b.assert_real_key_out_of_reach("missing keyslot");
}

#[test]
fn g_unsealed_secret_fails_the_key_check() {
    let b = Boot::new(None);
    b.copy_token_onto_own_keyslot();
    b.attack(&[]).expect(Exit::Luks);
    b.assert_real_key_out_of_reach("failed key check");
}

#[test]
fn h_wrong_recovery_key() {
    let b = Boot::new(None);
    let wrong = b.att.file("wrong-key");
    std::fs::write(&wrong, "not the key").unwrap();
    b.attack(&["--key-file", p(&wrong)]).expect(Exit::Luks);
    b.assert_real_key_out_of_reach("wrong recovery key");
}
