//! `systemd-tpm2` tokens written by Debian 12's own systemd-cryptenroll
//! (systemd 252) on the test's swtpm, opened by sealroot's unlock path
//! (`unlock --dry-run`: the key is checked against its keyslot, no
//! mapping) with sealroot's safeguards: PCR-only, PIN and signed-policy
//! tokens; changed PCRs, wrong PINs, missing or foreign signatures and
//! hostile token fields refused with their exit codes; PCR 15 locked after
//! every unlock; `adopt` to a sealroot token.

mod common;
use common::luks2edit;
use common::systemd_tpm2::*;
use common::*;
use sealroot::Exit;
use serde_json::Value;
use std::process::Command;

/// A sha256 PCR's value, as the TPM reports it.
fn pcr_value(tpm: &Swtpm, pcr: u32) -> [u8; 32] {
    let f = tempfile::NamedTempFile::new().unwrap();
    tpm.tpm2(&["pcrread", &format!("sha256:{pcr}"), "-o", p(f.path())]);
    std::fs::read(f.path()).unwrap().try_into().unwrap()
}

/// sealroot left no session or transient object behind on the bare swtpm
/// (no resource manager flushes them here).
#[track_caller]
fn assert_tpm_clean(tpm: &Swtpm) {
    for what in ["handles-loaded-session", "handles-transient"] {
        let o = tpm.tpm2(&["getcap", what]);
        assert!(o.stdout.trim_ascii().is_empty(), "{what}: {o:?}");
    }
}

/// PCR 15 was extended since the TPM's last reset (the tests reboot the
/// TPM before each unlock; nothing else extends PCR 15).
#[track_caller]
fn assert_locked(tpm: &Swtpm) {
    assert_ne!(pcr_value(tpm, 15), [0; 32], "PCR 15 was not extended");
}

/// `sealroot unlock --dry-run --systemd-token` (the opt-in into systemd
/// tokens) with the usual test options plus `extra`.
fn unlock(tpm: &Swtpm, img: &Image, extra: &[&str]) -> Run {
    common::unlock(tpm, img, &[&["--systemd-token"], extra].concat())
}

#[test]
fn pcr_only_token_opens_and_pcr15_is_locked() {
    let mut tpm = Swtpm::start();
    let img = Image::new();
    enroll_systemd(&tpm, &img, "0,7");
    assert_eq!(pcr_value(&tpm, 15), [0; 32]);
    // Not without the opt-in: a host that strips a sealroot token must not
    // steer the unlock onto a token unsealed before PCR 15 is measured.
    let r = common::unlock(&tpm, &img, &[]).expect(Exit::NotEnrolled);
    assert!(r.stderr.contains("--systemd-token"), "{r:?}");
    assert!(r.stderr.contains("failure lock event"), "{r:?}");
    tpm.reboot();
    let r = unlock(&tpm, &img, &[]).expect(Exit::Ok);
    assert!(r.stderr.contains("systemd-tpm2 token 0"), "{r:?}");
    assert!(
        r.stderr.contains("does not cover PCR 15"),
        "no warning about the open policy: {r:?}"
    );
    assert_locked(&tpm);

    // A PCR of the policy moves: refused, the PCRs named, locked.
    tpm.reboot();
    tpm.extend(7, 0xaa);
    let r = unlock(&tpm, &img, &[]).expect(Exit::PcrMismatch);
    assert!(r.stderr.contains("one or more of PCRs 0+7 differ"), "{r:?}");
    assert_locked(&tpm);

    // A PCR outside the policy moves: still opens.
    tpm.reboot();
    tpm.extend(8, 0xaa);
    unlock(&tpm, &img, &[]).expect(Exit::Ok);
}

/// The TPM's dictionary-attack failure counter (tpm2-tools 5 prints
/// `TPM2_PT_LOCKOUT_COUNTER:` then `  raw: 0x1` on the next line).
fn lockout_counter(tpm: &Swtpm) -> u32 {
    let out = tpm.tpm2(&["getcap", "properties-variable"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut lines = text
        .lines()
        .skip_while(|l| !l.starts_with("TPM2_PT_LOCKOUT_COUNTER"));
    let head = lines
        .next()
        .unwrap_or_else(|| panic!("no counter in {text}"));
    let value = match head.split_once(':').map(|(_, v)| v.trim()) {
        Some(v) if !v.is_empty() => v.to_string(),
        _ => lines
            .next()
            .unwrap()
            .split_once(':')
            .unwrap()
            .1
            .trim()
            .to_string(),
    };
    u32::from_str_radix(value.trim_start_matches("0x"), 16).unwrap()
}

#[test]
fn pin_token_needs_its_pin_and_counts_one_failure_per_wrong_pin() {
    let mut tpm = Swtpm::start();
    let img = Image::new();
    let tok = cryptenroll(
        &tpm,
        &img,
        &["--tpm2-pcrs=7", "--tpm2-with-pin=yes"],
        Some("1234 five"),
    );
    assert_eq!(tok["tpm2-pin"], true, "{tok}");

    let with_pin = |pin: &str| {
        Args::new("unlock")
            .on(&tpm, &img)
            .opt("name", "t")
            .arg("--dry-run")
            .arg("--systemd-token")
            .env("SEALROOT_PIN", pin)
            .run()
    };
    let before = lockout_counter(&tpm);
    let r = with_pin("1234 fiv").expect(Exit::PinOrLockout);
    assert!(r.stderr.contains("wrong PIN"), "{r:?}");
    assert_locked(&tpm);
    assert_eq!(lockout_counter(&tpm), before + 1, "one try per wrong PIN");
    assert_tpm_clean(&tpm);

    tpm.reboot();
    // No PIN at all (null stdin, no file): refused before any unseal.
    let r = unlock(&tpm, &img, &[]).expect(Exit::PinOrLockout);
    assert_eq!(lockout_counter(&tpm), before + 1, "{r:?}");
    assert_locked(&tpm);

    tpm.reboot();
    let pin_file = img.file("pin");
    std::fs::write(&pin_file, "1234 five").unwrap();
    unlock(&tpm, &img, &["--pin-file", p(&pin_file)]).expect(Exit::Ok);
    assert_locked(&tpm);
}

/// An RSA policy key made with openssl, as `systemd-measure` users make
/// them.
struct RsaKeys {
    private: std::path::PathBuf,
    public: std::path::PathBuf,
}

fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl").args(args).output().unwrap();
    assert!(out.status.success(), "openssl {args:?}: {out:?}");
    out.stdout
}

impl RsaKeys {
    fn generate(img: &Image, name: &str) -> RsaKeys {
        let private = img.file(&format!("{name}.key"));
        let public = img.file(&format!("{name}.pub.pem"));
        openssl(&[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            p(&private),
        ]);
        openssl(&["pkey", "-in", p(&private), "-pubout", "-out", p(&public)]);
        RsaKeys { private, public }
    }

    /// A systemd PCR signature JSON entry: `pcrs` at `values`, signed
    /// (RSASSA-PKCS1-v1_5, SHA-256 over the policy digest) by this key.
    fn entry(&self, img: &Image, pcrs: &[u32], values: &[[u8; 32]]) -> Value {
        let pol = sealroot::pcr::policy::policy_pcr(&[0; 32], pcrs, values);
        let polf = img.file("pol.bin");
        std::fs::write(&polf, pol).unwrap();
        let sig = openssl(&["dgst", "-sha256", "-sign", p(&self.private), p(&polf)]);
        let der = openssl(&["pkey", "-pubin", "-in", p(&self.public), "-outform", "DER"]);
        use base64::Engine as _;
        use sha2::Digest as _;
        serde_json::json!({
            "pcrs": pcrs,
            "pkfp": hex::encode(sha2::Sha256::digest(der)),
            "pol": hex::encode(pol),
            "sig": base64::engine::general_purpose::STANDARD.encode(sig),
        })
    }
}

#[test]
fn signed_token_opens_with_a_signature_for_this_boot_only() {
    let mut tpm = Swtpm::start();
    let img = Image::new();
    let keys = RsaKeys::generate(&img, "pcr");
    let tok = cryptenroll(
        &tpm,
        &img,
        &[
            "--tpm2-pcrs=7",
            &format!("--tpm2-public-key={}", p(&keys.public)),
            "--tpm2-public-key-pcrs=11",
            "--tpm2-with-pin=no",
        ],
        None,
    );
    assert_eq!(tok["tpm2_pubkey_pcrs"], serde_json::json!([11]), "{tok}");
    let sigf = img.file("tpm2-pcr-signature.json");
    let signed = |v: &[[u8; 32]]| {
        let doc = serde_json::json!({"sha256": [keys.entry(&img, &[11], v)]});
        std::fs::write(&sigf, doc.to_string()).unwrap();
    };

    // PCR 11 as a UKI would leave it; signed for that value.
    tpm.extend(11, 0x11);
    signed(&[pcr_value(&tpm, 11)]);
    unlock(&tpm, &img, &["--tpm2-signature", p(&sigf)]).expect(Exit::Ok);
    assert_locked(&tpm);

    // Without a signature file.
    tpm.reboot();
    tpm.extend(11, 0x11);
    let r = unlock(&tpm, &img, &["--tpm2-signature", p(&img.file("none.json"))]).expect(Exit::Io);
    assert_locked(&tpm);
    drop(r);

    // Another PCR 11 this boot: the signature is for other values.
    tpm.reboot();
    tpm.extend(11, 0x12);
    let r = unlock(&tpm, &img, &["--tpm2-signature", p(&sigf)]).expect(Exit::PcrMismatch);
    assert!(r.stderr.contains("no PCR signature for this boot"), "{r:?}");
    assert!(
        r.stderr.contains("no sha256 signature for PCRs 11"),
        "{r:?}"
    );
    assert_locked(&tpm);

    // A signature for this boot by another key: not even looked at.
    let other = RsaKeys::generate(&img, "other");
    let doc = serde_json::json!({"sha256": [other.entry(&img, &[11], &[pcr_value(&tpm, 11)])]});
    std::fs::write(&sigf, doc.to_string()).unwrap();
    tpm.reboot();
    tpm.extend(11, 0x12);
    unlock(&tpm, &img, &["--tpm2-signature", p(&sigf)]).expect(Exit::PcrMismatch);

    // The right entry with its signature bytes flipped: the TPM refuses.
    tpm.reboot();
    tpm.extend(11, 0x12);
    let mut e = keys.entry(&img, &[11], &[pcr_value(&tpm, 11)]);
    use base64::Engine as _;
    let mut sig = base64::engine::general_purpose::STANDARD
        .decode(e["sig"].as_str().unwrap())
        .unwrap();
    sig[10] ^= 1;
    e["sig"] = base64::engine::general_purpose::STANDARD.encode(sig).into();
    std::fs::write(&sigf, serde_json::json!({"sha256": [e]}).to_string()).unwrap();
    let r = unlock(&tpm, &img, &["--tpm2-signature", p(&sigf)]).expect(Exit::PcrMismatch);
    assert!(r.stderr.contains("rejected the PCR signature"), "{r:?}");

    // The literal PCR 7 moves with a valid signature for PCR 11: refused.
    tpm.reboot();
    tpm.extend(11, 0x11);
    signed(&[pcr_value(&tpm, 11)]);
    tpm.extend(7, 0x07);
    let r = unlock(&tpm, &img, &["--tpm2-signature", p(&sigf)]).expect(Exit::PcrMismatch);
    assert!(r.stderr.contains("PCRs 7 differ"), "{r:?}");

    // A signature file the size of a disk image is not read whole.
    tpm.reboot();
    let huge = img.file("huge.json");
    std::fs::write(&huge, vec![b' '; 1 << 20]).unwrap();
    let r = unlock(&tpm, &img, &["--tpm2-signature", p(&huge)]).expect(Exit::Io);
    assert!(r.stderr.contains("larger than 65536 bytes"), "{r:?}");
    assert_locked(&tpm);
}

#[test]
fn the_lock_closes_a_token_that_covers_pcr15_and_only_such_a_token() {
    let tpm = Swtpm::start();
    let closed = Image::new();
    let open = Image::new();
    // Enrolled while PCR 15 is zero, as it is early in a boot.
    cryptenroll(
        &tpm,
        &closed,
        &["--tpm2-pcrs=7+15", "--tpm2-with-pin=no"],
        None,
    );
    enroll_systemd(&tpm, &open, "7");

    unlock(&tpm, &closed, &[]).expect(Exit::Ok);
    assert_locked(&tpm);
    // Same boot: PCR 15 holds the lock, the policy is not met.
    let r = unlock(&tpm, &closed, &[]).expect(Exit::PcrMismatch);
    assert!(
        r.stderr.contains("PCR 15 is in the policy and is not zero"),
        "{r:?}"
    );
    // A token whose policy leaves PCR 15 out still unseals after the lock:
    // what docs/systemd.md warns about.
    let r = unlock(&tpm, &open, &[]).expect(Exit::Ok);
    assert!(r.stderr.contains("does not cover PCR 15"), "{r:?}");
    assert_tpm_clean(&tpm);
    let out = attempt_systemd(&tpm, &open);
    assert!(out.status.success(), "{out:?}");
}

/// systemd's own unlock, then what it left in the TPM flushed.
fn attempt_systemd(tpm: &Swtpm, img: &Image) -> std::process::Output {
    let out = systemd_unlock(tpm, img).output().unwrap();
    flush_like_tpmrm(tpm);
    out
}

/// The id and JSON of the image's (only) systemd-tpm2 token.
fn systemd_token(img: &Image) -> (String, Value) {
    let json = img.json();
    let (id, tok) = json["tokens"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, t)| t["type"] == "systemd-tpm2")
        .expect("a systemd-tpm2 token");
    (id.clone(), tok.clone())
}

#[test]
fn hostile_token_fields_are_refused_with_their_exit_codes() {
    let mut tpm = Swtpm::start();
    let img = Image::new();
    enroll_systemd(&tpm, &img, "7");
    let (id, good) = systemd_token(&img);
    let slot: u32 = good["keyslots"][0].as_str().unwrap().parse().unwrap();
    let set = |f: &dyn Fn(&mut Value)| {
        luks2edit::edit(&img.path, |j| {
            let mut t = good.clone();
            f(&mut t);
            j["tokens"][id.as_str()] = t;
        })
    };
    type Edit = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Edit, Exit, &str)> = vec![
        (
            "bad base64",
            Box::new(|t| t["tpm2-blob"] = "not*base64".into()),
            Exit::BlobInvalid,
            "tpm2-blob is not base64",
        ),
        (
            "huge blob",
            Box::new(|t| t["tpm2-blob"] = "QUFB".repeat(500).into()),
            Exit::BlobInvalid,
            "more than the 1024 bytes",
        ),
        (
            "sha1 bank",
            Box::new(|t| t["tpm2-pcr-bank"] = "sha1".into()),
            Exit::BlobInvalid,
            "only the sha256 bank",
        ),
        (
            "RSA primary",
            Box::new(|t| t["tpm2-primary-alg"] = "rsa".into()),
            Exit::BlobInvalid,
            "RSA primaries",
        ),
        (
            "a newer systemd's field",
            Box::new(|t| t["tpm2_salt"] = "AAAA".into()),
            Exit::BlobInvalid,
            "unknown field \"tpm2_salt\"",
        ),
        (
            "another policy hash",
            Box::new(|t| t["tpm2-pcrs"] = serde_json::json!([7, 8])),
            Exit::PcrMismatch,
            "PCRs 7+8 differ",
        ),
    ];
    for (what, f, exit, msg) in cases {
        set(&*f);
        let r = unlock(&tpm, &img, &[]);
        r.assert_exit(exit);
        assert!(r.stderr.contains(msg), "{what}: {r:?}");
        assert_locked(&tpm);
        assert_tpm_clean(&tpm);
        tpm.reboot();
    }

    // The token's keyslot rewritten to a costly KDF: refused before the TPM
    // is asked.
    set(&|_| {});
    luks2edit::argon2_keyslot(&img.path, slot, 4 * 1024 * 1024, 1000);
    let r = unlock(&tpm, &img, &[]).expect(Exit::VolumeRefused);
    assert!(r.stderr.contains(&format!("keyslots.{slot}.kdf")), "{r:?}");
    assert_locked(&tpm);
}

#[test]
fn a_token_pointed_at_another_keyslot_opens_nothing() {
    let tpm = Swtpm::start();
    let img = Image::new();
    enroll_systemd(&tpm, &img, "7");
    let (id, mut tok) = systemd_token(&img);
    let own = tok["keyslots"][0].as_str().unwrap().to_string();
    let other = img
        .keyslots()
        .into_iter()
        .map(|s| s.to_string())
        .find(|s| *s != own)
        .unwrap();
    tok["keyslots"] = serde_json::json!([other]);
    luks2edit::edit(&img.path, |j| j["tokens"][id.as_str()] = tok);
    // The passphrase keyslot is PBKDF2 (Image::new): the TPM unseals, the
    // secret does not open it.
    let r = unlock(&tpm, &img, &[]).expect(Exit::Luks);
    assert!(
        r.stderr.contains(&format!("does not open keyslot {other}")),
        "{r:?}"
    );
    assert_locked(&tpm);
}

/// `sealroot adopt` on the test image, with `extra`.
fn adopt(tpm: &Swtpm, img: &Image, extra: &[&str]) -> Run {
    Args::new("adopt").on(tpm, img).args(extra).run()
}

#[test]
fn adopt_then_the_sealroot_tpm_path() {
    let mut tpm = Swtpm::start();
    let img = Image::new();
    enroll_systemd(&tpm, &img, "7");
    let (sd_id, sd_tok) = systemd_token(&img);
    let sd_slot = sd_tok["keyslots"][0].as_str().unwrap().to_string();

    let r = adopt(&tpm, &img, &["--pcrs", "7", "--no-recovery-key"]).expect(Exit::Ok);
    assert!(r.stdout.contains("the systemd-tpm2 token is kept"), "{r:?}");
    // adopt is an enrollment: PCR 15 is not locked by it.
    assert_eq!(pcr_value(&tpm, 15), [0; 32], "{r:?}");
    assert_tpm_clean(&tpm);
    let json = img.json();
    assert_eq!(json["tokens"][sd_id.as_str()]["type"], "systemd-tpm2");
    let types: Vec<&str> = json["tokens"]
        .as_object()
        .unwrap()
        .values()
        .map(|t| t["type"].as_str().unwrap())
        .collect();
    assert!(types.contains(&"sealroot"), "{json}");

    // The boot path now takes the sealroot token (its own PCR 15 policy).
    let r = unlock(&tpm, &img, &[]).expect(Exit::Ok);
    assert!(!r.stderr.contains("systemd-tpm2 token"), "{r:?}");
    assert_locked(&tpm);
    // Locked: the sealroot token cannot be unsealed again this boot.
    unlock(&tpm, &img, &[]).expect(Exit::PcrMismatch);

    // The systemd token still opens through systemd's own plugin.
    tpm.reboot();
    let out = attempt_systemd(&tpm, &img);
    assert!(out.status.success(), "{out:?}");

    // Adopting again, removing the systemd token this time.
    tpm.reboot();
    let r = adopt(
        &tpm,
        &img,
        &["--pcrs", "7", "--no-recovery-key", "--remove-systemd-token"],
    )
    .expect(Exit::Ok);
    assert!(r.stdout.contains("were removed"), "{r:?}");
    let json = img.json();
    assert!(
        json["tokens"]
            .get(sd_id.as_str())
            .is_none_or(|t| t["type"] != "systemd-tpm2"),
        "{json}"
    );
    assert!(json["keyslots"].get(sd_slot.as_str()).is_none(), "{json}");
    tpm.reboot();
    unlock(&tpm, &img, &[]).expect(Exit::Ok);
    // Nothing left to adopt.
    tpm.reboot();
    let r = adopt(&tpm, &img, &["--pcrs", "7", "--no-recovery-key"]).expect(Exit::Usage);
    assert!(r.stderr.contains("no systemd-tpm2 token to adopt"), "{r:?}");
}

#[test]
fn adopt_of_a_pin_token_needs_its_pin_and_keeps_it_on_failure() {
    let tpm = Swtpm::start();
    let img = Image::new();
    cryptenroll(
        &tpm,
        &img,
        &["--tpm2-pcrs=7", "--tpm2-with-pin=yes"],
        Some("4321"),
    );
    let before = img.json();
    let wrong = img.file("wrong-pin");
    std::fs::write(&wrong, "1234").unwrap();
    adopt(
        &tpm,
        &img,
        &[
            "--pcrs",
            "7",
            "--no-recovery-key",
            "--remove-systemd-token",
            "--systemd-pin-file",
            p(&wrong),
        ],
    )
    .expect(Exit::PinOrLockout);
    assert_eq!(img.json(), before, "a failed adopt changed the header");
    let right = img.file("pin");
    std::fs::write(&right, "4321").unwrap();
    adopt(
        &tpm,
        &img,
        &[
            "--pcrs",
            "7",
            "--no-recovery-key",
            "--systemd-pin-file",
            p(&right),
        ],
    )
    .expect(Exit::Ok);
}

#[test]
fn status_shows_systemd_tokens_without_unsealing() {
    let tpm = Swtpm::start();
    let img = Image::new();
    let keys = RsaKeys::generate(&img, "pcr");
    cryptenroll(
        &tpm,
        &img,
        &[
            "--tpm2-pcrs=7+15",
            "--tpm2-with-pin=yes",
            &format!("--tpm2-public-key={}", p(&keys.public)),
            "--tpm2-public-key-pcrs=11",
        ],
        Some("0000"),
    );
    let before = lockout_counter(&tpm);
    let (_, j) = status_json(&tpm, &img);
    let t = &j["systemd_tokens"][0];
    assert_eq!(t["verdict"], "valid", "{j}");
    assert_eq!(t["pcrs"], serde_json::json!([7, 15]), "{j}");
    assert_eq!(t["signed_pcrs"], serde_json::json!([11]), "{j}");
    assert_eq!(t["pin"], true, "{j}");
    assert_eq!(t["covers_pcr15"], true, "{j}");
    // Nothing was unsealed: no PIN asked, no DA try, PCR 15 untouched.
    assert_eq!(lockout_counter(&tpm), before);
    assert_eq!(pcr_value(&tpm, 15), [0; 32]);
    let r = Args::new("status").on(&tpm, &img).run().expect(Exit::Ok);
    assert!(
        r.stdout.contains(
            "systemd-tpm2 token 0: valid, keyslot 1, PCRs 7,15, signed PCRs 11, PIN required"
        ),
        "{r:?}"
    );

    // A token that leaves PCR 15 out is flagged.
    let img2 = Image::new();
    enroll_systemd(&tpm, &img2, "7");
    let (_, j) = status_json(&tpm, &img2);
    let t = &j["systemd_tokens"][0];
    assert_eq!(t["covers_pcr15"], false, "{j}");
    assert!(
        t["problems"].to_string().contains("does not cover PCR 15"),
        "{j}"
    );

    // A token naming a keyslot that does not exist: the header allow-list
    // refuses the volume before anything else.
    let (id, mut tok) = systemd_token(&img2);
    tok["keyslots"] = serde_json::json!(["9"]);
    luks2edit::edit(&img2.path, |j| j["tokens"][id.as_str()] = tok);
    let r = unlock(&tpm, &img2, &[]).expect(Exit::VolumeRefused);
    assert!(r.stderr.contains("no such keyslot"), "{r:?}");
    assert_locked(&tpm);
}

#[test]
fn boot_opens_a_crypttab_volume_through_its_systemd_token() {
    let tpm = Swtpm::start();
    let img = Image::new();
    let keys = RsaKeys::generate(&img, "pcr");
    cryptenroll(
        &tpm,
        &img,
        &[
            "--tpm2-pcrs=7+15",
            &format!("--tpm2-public-key={}", p(&keys.public)),
            "--tpm2-public-key-pcrs=11",
            "--tpm2-with-pin=no",
        ],
        None,
    );
    let sigf = img.file("sig.json");
    let doc = serde_json::json!({"sha256": [keys.entry(&img, &[11], &[pcr_value(&tpm, 11)])]});
    std::fs::write(&sigf, doc.to_string()).unwrap();
    let tab = img.file("crypttab");
    std::fs::write(
        &tab,
        format!(
            "root {} none luks,sealroot,sealroot-systemd-token\n",
            p(&img.path)
        ),
    )
    .unwrap();
    std::fs::write(&img.cmdline, "BOOT_IMAGE=/vmlinuz root=/dev/mapper/root ro").unwrap();
    let boot = || {
        Args::new("boot")
            .arg("--dry-run")
            .opt("crypttab", &tab)
            .opt("cmdline-file", &img.cmdline)
            .opt("tcti", tpm.tcti())
            .opt("tpm2-signature", &sigf)
            .run()
    };
    let r = boot().expect(Exit::Ok);
    assert!(r.stderr.contains("systemd-tpm2 token 0"), "{r:?}");
    assert!(!r.stderr.contains("does not cover PCR 15"), "{r:?}");
    assert_locked(&tpm);
    assert_tpm_clean(&tpm);
    // The lock closed it: the same boot cannot open it again.
    boot().expect(Exit::PcrMismatch);
}

#[test]
fn a_platform_requirement_is_checked_before_a_systemd_token_is_unsealed() {
    let tpm = Swtpm::start();
    let img = Image::new();
    enroll_systemd(&tpm, &img, "7");
    // A plain swtpm: no SEV-SNP evidence anywhere.
    let r = unlock(
        &tpm,
        &img,
        &[
            "--require-snp",
            "--snp-unsigned-ok",
            "--sev-guest",
            "/nonexistent",
        ],
    )
    .expect(Exit::Platform);
    assert!(!r.stderr.contains("opens keyslot"), "{r:?}");
    assert_locked(&tpm);
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The unsealed secret, its base64 passphrase and the volume key leave no
/// copy in the process's memory (read at a test-only pause before exit) or
/// its output.
#[test]
fn no_copy_of_the_systemd_secret_in_memory_or_logs() {
    let tpm = Swtpm::start();
    let img = Image::new();
    enroll_systemd(&tpm, &img, "7");
    let reveal = img.file("reveal");
    std::fs::create_dir(&reveal).unwrap();
    let pause = img.file("pause");
    let args = Args::new("unlock")
        .on(&tpm, &img)
        .opt("name", "x")
        .arg("--dry-run")
        .arg("--systemd-token")
        .arg("-v")
        .env("SEALROOT_TEST_REVEAL_DIR", &reveal)
        .env("GLIBC_TUNABLES", sealroot::sys::harden::ALLOC_TUNABLES);
    let (mem, out) = memory_at_pause(args.command(), &pause);
    assert!(out.status.success(), "{out:?}");
    assert!(mem.len() > 1 << 20, "read {} bytes of memory", mem.len());
    assert!(
        contains(&mem, p(&img.cmdline).as_bytes()),
        "the scan cannot see the process's own arguments"
    );
    let secret = revealed(&reveal, "systemd-secret");
    assert_eq!(secret.len(), 32);
    use base64::Engine as _;
    let passphrase = base64::engine::general_purpose::STANDARD.encode(&secret);
    // The control: the revealed secret is the keyslot's passphrase.
    assert!(img.opens(passphrase.as_bytes()));
    let key = revealed(&reveal, "volume-key");
    let logs = [out.stdout, out.stderr].concat();
    // Every 16-byte run of each secret, looked up at every offset (one pass).
    let mut runs = std::collections::HashMap::new();
    for (what, s) in [
        ("secret", secret.as_slice()),
        ("passphrase", passphrase.as_bytes()),
        ("volume key", key.as_slice()),
    ] {
        for w in s.windows(16) {
            runs.insert(w.to_vec(), what);
        }
    }
    for (where_, bytes) in [("memory", &mem), ("the output", &logs)] {
        if let Some(what) = bytes.windows(16).find_map(|w| runs.get(w)) {
            panic!("a 16-byte run of the {what} in {where_}");
        }
    }
}

#[test]
fn adopt_writes_the_recovery_key_file_without_a_line_ending() {
    let tpm = Swtpm::start();
    let img = Image::new();
    enroll_systemd(&tpm, &img, "7");
    let rk = img.file("rk");
    adopt(&tpm, &img, &["--pcrs", "7", "--recovery-key-file", p(&rk)]).assert_exit(Exit::Ok);
    let key = std::fs::read(&rk).unwrap();
    assert_eq!(key.len(), 71, "{:?}", String::from_utf8_lossy(&key));
    assert!(img.opens(&key));
}
