//! Signed PCR policies (issue #8) and mismatch explanations, against a real
//! swtpm per test and LUKS2 image files. PCRs 16 and 23 (resettable,
//! extendable from the host) stand in for the firmware PCRs; the event-log
//! tests replay the harness's captured OVMF logs into the swtpm.

mod common;
use common::*;
use sealroot::formats::blob::Blob;
use sealroot::formats::signed_policy::SignedPolicy;
use sealroot::pcr::eventlog;
use sealroot::pcr::policy;
use sealroot::pcr::selfpcr::Measurements;
use sealroot::pcr::signer::PublicKey;
use sealroot::tpm::object::Authorization;
use sealroot::tpm::Tpm;
use sealroot::Exit;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Write a values file for `pcrs` with `values` and sign it at `version`.
fn sign(
    k: &PolicyKeys,
    img: &Image,
    name: &str,
    pcrs: &[(u32, [u8; 32])],
    version: u64,
) -> PathBuf {
    let values = img.file(&format!("{name}.values"));
    let text: String = pcrs
        .iter()
        .map(|(i, v)| format!("{i}:{}\n", hex::encode(v)))
        .collect();
    std::fs::write(&values, text).unwrap();
    let out = img.file(&format!("{name}.json"));
    let list = pcrs
        .iter()
        .map(|(i, _)| i.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let r = sealroot(&[
        "policy",
        "sign",
        "--key",
        p(&k.private),
        "--pcrs",
        &list,
        "--values",
        p(&values),
        "--version",
        &version.to_string(),
        "--out",
        p(&out),
    ]);
    r.assert_exit(Exit::Ok);
    out
}

fn extended(byte: u8) -> [u8; 32] {
    sealroot::pcr::extend(&[0; 32], &[byte; 32])
}

fn install(img: &Image, sig: &Path, extra: &[&str]) -> Run {
    Args::new("policy")
        .arg("install")
        .opt("device", &img.path)
        .arg(sig)
        .args(extra)
        .run()
}

fn signed_enroll(tpm: &Swtpm, img: &Image, k: &PolicyKeys) {
    let r = enroll(
        tpm,
        img,
        &[
            "--no-recovery-key",
            "--policy-key",
            p(&k.public),
            "--eventlog",
            "none",
        ],
    );
    r.assert_exit(Exit::Ok);
    assert!(r.stdout.contains("PCRs 15 (sha256)"), "{r:?}");
    assert!(r.stderr.contains("revocation counter at 1"), "{r:?}");
}

fn no_dir() -> Vec<&'static str> {
    vec!["--policy-dir", "/nonexistent", "--eventlog", "none"]
}

#[test]
fn tpm_agrees_with_the_pure_names() {
    let tpm = Swtpm::start();
    let k = PolicyKeys::generate();
    let key = PublicKey::from_pem(&std::fs::read_to_string(&k.public).unwrap()).unwrap();
    let mut t = Tpm::open(&tpm.tcti(), Duration::from_secs(5)).unwrap();
    assert_eq!(t.external_key_name(&key).unwrap(), key.name());
    assert_eq!(t.counter_name().unwrap(), None);
    assert_eq!(t.ensure_counter().unwrap(), 1);
    assert_eq!(t.counter_name().unwrap(), Some(policy::counter_name()));
    // Defining again is a no-op; increments only go up.
    assert_eq!(t.ensure_counter().unwrap(), 1);
    assert_eq!(t.increment_counter().unwrap(), 2);
    assert_eq!(t.read_counter().unwrap(), 2);
    // Undefining and redefining the index does not roll it back: a new
    // counter starts above every value a counter on this TPM ever held.
    drop(t);
    tpm.tpm2(&["nvundefine", "0x01805352"]);
    let mut t = Tpm::open(&tpm.tcti(), Duration::from_secs(5)).unwrap();
    assert_eq!(t.counter_name().unwrap(), None);
    let again = t.ensure_counter().unwrap();
    assert!(again > 2, "redefined counter starts at {again}");
}

/// A signed-policy blob's key with `sp`, as the unlock path hands them to
/// the TPM edge.
fn auth<'a>(b: &'a Blob, sp: &'a SignedPolicy) -> Authorization<'a> {
    Authorization {
        key: b.authorize.as_ref().expect("a signed-policy blob"),
        policy: sp,
    }
}

/// Ask the TPM directly, past every software check sealroot makes, so the
/// TPM's own refusals are what is tested.
#[test]
fn the_tpm_itself_refuses_edited_foreign_and_locked() {
    let tpm = Swtpm::start();
    let img = Image::new();
    let k = PolicyKeys::generate();
    let other = PolicyKeys::generate();
    signed_enroll(&tpm, &img, &k);
    let load = |f: &Path| SignedPolicy::from_json(&std::fs::read(f).unwrap()).unwrap();
    let sp = load(&sign(&k, &img, "a", &[(23, [0; 32])], 1));
    let foreign = load(&sign(&other, &img, "o", &[(23, [0; 32])], 1));
    let blob = Blob::from_value(img.json()["tokens"]["0"].clone(), "token 0").unwrap();
    let mut t = Tpm::open(&tpm.tcti(), Duration::from_secs(5)).unwrap();
    let now = Measurements::new(&std::fs::read_to_string(&img.cmdline).unwrap(), &img.uuid());
    let cur = t.pcr_read(&[15]).unwrap()[0];
    sealroot::cmd::steps::measure::measure_self(&mut t, &now, cur).unwrap();
    // Positive control: the real thing unseals.
    t.unseal(blob.sealed_object(), None, Some(auth(&blob, &sp)))
        .unwrap();
    // An edited version (approved policy recomputed, signature kept).
    let mut edited = sp.clone();
    edited.version = 9;
    let e = t
        .unseal(blob.sealed_object(), None, Some(auth(&blob, &edited)))
        .err()
        .expect("refused");
    assert!(e.to_string().contains("rejected the signature"), "{e}");
    // Another key put into the blob, with a policy that key signed: the
    // sealed object's policy names the enrolled key, so Unseal fails.
    let mut swapped = blob.clone();
    swapped.authorize =
        Some(PublicKey::from_pem(&std::fs::read_to_string(&other.public).unwrap()).unwrap());
    let e = t
        .unseal(
            swapped.sealed_object(),
            None,
            Some(auth(&swapped, &foreign)),
        )
        .err()
        .expect("refused");
    assert!(e.to_string().contains("PolicyFail"), "{e}");
    // After the lock, the good policy no longer unseals.
    sealroot::cmd::steps::measure::lock(&mut t, sealroot::cmd::steps::measure::LockEvent::Failure)
        .unwrap();
    let e = t
        .unseal(blob.sealed_object(), None, Some(auth(&blob, &sp)))
        .err()
        .expect("refused");
    assert!(e.to_string().contains("PolicyFail"), "{e}");
}

#[test]
fn edited_key_in_the_token_is_refused_before_the_tpm() {
    let tpm = Swtpm::start();
    let img = Image::new();
    let k = PolicyKeys::generate();
    let other = PolicyKeys::generate();
    signed_enroll(&tpm, &img, &k);
    let osig = sign(&other, &img, "o", &[(23, [0; 32])], 1);
    let mut tok = img.json()["tokens"]["0"].clone();
    let okey = PublicKey::from_pem(&std::fs::read_to_string(&other.public).unwrap()).unwrap();
    use base64::Engine as _;
    tok["authorize"]["key"] = base64::engine::general_purpose::STANDARD
        .encode(okey.to_der())
        .into();
    tok["authorize"]["key_name"] = hex::encode(okey.name()).into();
    let f = img.file("edited-blob.json");
    std::fs::write(&f, serde_json::to_vec(&tok).unwrap()).unwrap();
    let mut a = no_dir();
    a.extend(["--blob-file", p(&f), "--policy-file", p(&osig)]);
    let u = unlock(&tpm, &img, &a);
    u.assert_exit(Exit::BlobInvalid);
    assert!(u.stderr.contains("policy_digest does not match"), "{u:?}");
    let st = on_image(
        &tpm,
        &img,
        "status",
        &["--json", "--blob-file", p(&f), "--policy-file", p(&osig)],
    );
    let j: serde_json::Value = serde_json::from_str(&st.stdout).unwrap();
    assert_eq!(j["tokens"][0]["verdict"], "invalid", "{st:?}");
}

#[test]
fn signed_mode_with_a_pin() {
    let tpm = Swtpm::start();
    let img = Image::new();
    let k = PolicyKeys::generate();
    let pin = img.file("pin");
    std::fs::write(&pin, "2468\n").unwrap();
    let r = enroll(
        &tpm,
        &img,
        &[
            "--no-recovery-key",
            "--policy-key",
            p(&k.public),
            "--eventlog",
            "none",
            "--pin",
            "--pin-file",
            p(&pin),
        ],
    );
    r.assert_exit(Exit::Ok);
    let sig = sign(&k, &img, "a", &[(23, [0; 32])], 1);
    let wrong = img.file("wrong");
    std::fs::write(&wrong, "1357\n").unwrap();
    let mut a = no_dir();
    a.extend(["--policy-file", p(&sig), "--pin-file", p(&wrong)]);
    let u = unlock(&tpm, &img, &a);
    u.assert_exit(Exit::PinOrLockout);
    let mut a = no_dir();
    a.extend(["--policy-file", p(&sig), "--pin-file", p(&pin)]);
    let u = unlock(&tpm, &img, &a);
    u.assert_exit(Exit::Ok);
}

#[test]
fn equal_versions_follow_the_search_order() {
    let tpm = Swtpm::start();
    let img = Image::new();
    let k = PolicyKeys::generate();
    signed_enroll(&tpm, &img, &k);
    let first = sign(&k, &img, "first", &[(23, [0; 32])], 1);
    let dir = img.file("policies");
    std::fs::create_dir(&dir).unwrap();
    let later = sign(&k, &img, "later", &[(23, [0; 32])], 1);
    std::fs::rename(&later, dir.join("z.json")).unwrap();
    let u = unlock(
        &tpm,
        &img,
        &[
            "--policy-file",
            p(&first),
            "--policy-dir",
            p(&dir),
            "--eventlog",
            "none",
        ],
    );
    u.assert_exit(Exit::Ok);
    assert!(
        u.stderr.contains(&format!("signed policy {}", p(&first))),
        "{u:?}"
    );
}

#[test]
fn signed_policy_survives_an_update_without_reenrollment() {
    let mut tpm = Swtpm::start();
    let img = Image::new();
    let k = PolicyKeys::generate();
    signed_enroll(&tpm, &img, &k);
    let tok = &img.json()["tokens"]["0"];
    assert_eq!(tok["pcrs"].as_array().unwrap().len(), 1, "{tok}");
    assert!(tok["authorize"]["key"].is_string(), "{tok}");

    // No signed policy anywhere: refused, and it says where it looked.
    let u = unlock(&tpm, &img, &no_dir());
    u.assert_exit(Exit::PcrMismatch);
    assert!(u.stderr.contains("no signed policy"), "{u:?}");

    // Image A: PCR 16 and 23 at their reset values.
    let a = sign(&k, &img, "a", &[(16, [0; 32]), (23, [0; 32])], 1);
    let mut args = no_dir();
    args.extend(["--policy-file", p(&a)]);
    let u = unlock(&tpm, &img, &args);
    u.assert_exit(Exit::Ok);
    assert!(u.stderr.contains("version 1"), "{u:?}");
    // The lock PCR still works: no second unseal in this boot.
    let u = unlock(&tpm, &img, &args);
    u.assert_exit(Exit::PcrMismatch);
    assert!(u.stderr.contains("PCR 15 differs"), "{u:?}");

    // "Update": PCR 23 changes. Policy A no longer matches and the message
    // names PCR 23.
    tpm.reboot();
    tpm.extend(23, 0xaa);
    let u = unlock(&tpm, &img, &args);
    u.assert_exit(Exit::PcrMismatch);
    assert!(u.stderr.contains("PCR 23 differs"), "{u:?}");
    assert!(!u.stderr.contains("PCR 16 differs"), "{u:?}");

    // The builder signs the new state; installed in the header, it opens
    // the volume with no re-enrollment (the token is untouched).
    let before = img.json()["tokens"]["0"].clone();
    let b = sign(&k, &img, "b", &[(16, [0; 32]), (23, extended(0xaa))], 1);
    let r = install(&img, &b, &[]);
    r.assert_exit(Exit::Ok);
    let u = unlock(&tpm, &img, &no_dir());
    u.assert_exit(Exit::Ok);
    assert!(u.stderr.contains("policy token"), "{u:?}");
    assert_eq!(img.json()["tokens"]["0"], before);
    let (st, j) = status_json(&tpm, &img);
    assert_eq!(j["tokens"][0]["verdict"], "ok", "{st:?}");
    assert!(
        j["tokens"][0]["signed_policy"]
            .as_str()
            .unwrap()
            .contains("version 1"),
        "{st:?}"
    );
}

#[test]
fn revocation_refuses_older_versions_for_good() {
    let mut tpm = Swtpm::start();
    let img = Image::new();
    let k = PolicyKeys::generate();
    signed_enroll(&tpm, &img, &k);
    let old = sign(&k, &img, "old", &[(23, [0; 32])], 1);
    let new = sign(&k, &img, "new", &[(23, extended(0xbb))], 2);
    let mut both = no_dir();
    both.extend(["--policy-file", p(&old), "--policy-file", p(&new)]);
    let run = |tpm: &Swtpm| unlock(tpm, &img, &both);
    // Before revocation the old image still opens.
    run(&tpm).assert_exit(Exit::Ok);

    let tcti = tpm.tcti();
    let r = sealroot(&["policy", "revoke", "--below", "2", "--tcti", &tcti]);
    r.assert_exit(Exit::Ok);
    assert!(r.stdout.contains("counter is 2"), "{r:?}");
    let r = sealroot(&["policy", "counter", "--tcti", &tcti]);
    assert_eq!(r.stdout.trim(), "2", "{r:?}");

    tpm.reboot();
    let u = run(&tpm);
    u.assert_exit(Exit::PcrMismatch);
    assert!(u.stderr.contains("is revoked"), "{u:?}");
    assert!(u.stderr.contains("version 1"), "{u:?}");
    // Without sealroot's own check (as code running before it in a revoked
    // image could arrange), the TPM refuses by itself: PolicyNV.
    let u = Args::new("unlock")
        .on(&tpm, &img)
        .opt("name", "sealroot-test")
        .arg("--dry-run")
        .args(&both)
        .env("SEALROOT_TEST_SKIP_VERSION_CHECK", "1")
        .run();
    u.assert_exit(Exit::PcrMismatch);
    assert!(u.stderr.contains("PolicyNV"), "{u:?}");
    // The new image opens.
    tpm.reboot();
    tpm.extend(23, 0xbb);
    run(&tpm).assert_exit(Exit::Ok);
    // Revocation never goes back.
    let r = sealroot(&["policy", "revoke", "--below", "1", "--tcti", &tcti]);
    r.assert_exit(Exit::Ok);
    assert!(r.stdout.contains("counter is 2"), "{r:?}");
}

#[test]
fn forged_edited_and_foreign_policies_are_ignored() {
    let tpm = Swtpm::start();
    let img = Image::new();
    let k = PolicyKeys::generate();
    let other = PolicyKeys::generate();
    signed_enroll(&tpm, &img, &k);
    let good = sign(&k, &img, "good", &[(23, [0; 32])], 1);
    let foreign = sign(&other, &img, "foreign", &[(23, [0; 32])], 1);
    // An edited version (with a recomputed approved_policy) keeps the old
    // signature: the software check refuses it (the TPM's own refusal is in
    // the_tpm_itself_refuses_edited_foreign_and_locked).
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&good).unwrap()).unwrap();
    v["policy_version"] = 7.into();
    v["approved_policy"] = hex::encode(policy::approved_policy(&[23], &[[0; 32]], 7)).into();
    let edited = img.file("edited.json");
    std::fs::write(&edited, serde_json::to_vec(&v).unwrap()).unwrap();
    for (f, why) in [(&foreign, "another key"), (&edited, "does not verify")] {
        let mut a = no_dir();
        a.extend(["--policy-file", p(f)]);
        let u = unlock(&tpm, &img, &a);
        u.assert_exit(Exit::PcrMismatch);
        assert!(u.stderr.contains(why), "{why}: {u:?}");
        assert!(u.stderr.contains("no signed policy"), "{u:?}");
    }
    // install checks too, and touches nothing.
    let before = img.sha256();
    let r = install(&img, &foreign, &[]);
    r.assert_exit(Exit::Usage);
    assert_eq!(img.sha256(), before);
    // A policy containing PCR 15 cannot be signed.
    let r = sealroot(&[
        "policy",
        "sign",
        "--key",
        p(&k.private),
        "--pcrs",
        "9,15",
        "--values",
        p(&good),
        "--version",
        "1",
        "--out",
        p(&img.file("x.json")),
    ]);
    r.assert_exit(Exit::Usage);
    // The good one, from the policy directory.
    let dir = img.file("policies");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(&good, dir.join("good.json")).unwrap();
    let u = unlock(&tpm, &img, &["--policy-dir", p(&dir), "--eventlog", "none"]);
    u.assert_exit(Exit::Ok);
}

#[test]
fn install_replace_keeps_one_policy_token() {
    let tpm = Swtpm::start();
    let img = Image::new();
    let k = PolicyKeys::generate();
    signed_enroll(&tpm, &img, &k);
    let a = sign(&k, &img, "a", &[(23, [0; 32])], 1);
    let b = sign(&k, &img, "b", &[(23, [0; 32])], 2);
    install(&img, &a, &[]).assert_exit(Exit::Ok);
    install(&img, &b, &[]).assert_exit(Exit::Ok);
    assert_eq!(img.tokens().len(), 3);
    // --replace drops policies of the same or a lower version only: b
    // (version 2) may be the only one the counter still allows.
    install(&img, &a, &["--replace"]).assert_exit(Exit::Ok);
    assert_eq!(img.tokens().len(), 3);
    install(&img, &b, &["--replace"]).assert_exit(Exit::Ok);
    assert_eq!(img.tokens().len(), 2);
    unlock(&tpm, &img, &no_dir()).assert_exit(Exit::Ok);
    // Without a signed-policy enrollment there is nothing to install into.
    let plain = Image::new();
    let r = install(&plain, &a, &[]);
    r.assert_exit(Exit::Usage);
    assert!(r.stderr.contains("--policy-key"), "{r:?}");
}

/// Replay a captured OVMF event log into the swtpm, so its PCRs are the
/// ones that boot produced.
fn replay_into(tpm: &Swtpm, log: &Path) {
    let bytes = std::fs::read(log).unwrap();
    let parsed = eventlog::parse(&bytes).unwrap();
    let mut t = Tpm::open(&tpm.tcti(), Duration::from_secs(5)).unwrap();
    for e in parsed.events.iter().filter(|e| e.is_measured()) {
        t.pcr_extend(e.pcr, &e.sha256().unwrap()).unwrap();
    }
    let want = parsed.replay().unwrap();
    let got = t.pcr_read(&[0, 4, 7, 9]).unwrap();
    for (i, &pcr) in [0u32, 4, 7, 9].iter().enumerate() {
        assert_eq!(got[i], want.values[pcr as usize], "PCR {pcr}");
    }
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/eventlog/{name}"))
}

#[test]
fn pcr_mode_mismatch_names_the_initrd_event() {
    let mut tpm = Swtpm::start();
    let img = Image::new();
    replay_into(&tpm, &fixture("a.bin"));
    let a = fixture("a.bin");
    let r = enroll(&tpm, &img, &["--no-recovery-key", "--eventlog", p(&a)]);
    r.assert_exit(Exit::Ok);
    let events = img.json()["tokens"]["0"]["events"]
        .as_array()
        .unwrap()
        .len();
    assert!(events > 5, "expected events recorded: {events}");
    // Boot B: another initrd.
    tpm.reboot();
    replay_into(&tpm, &fixture("b.bin"));
    let b = fixture("b.bin");
    let u = unlock(&tpm, &img, &["--eventlog", p(&b)]);
    u.assert_exit(Exit::PcrMismatch);
    let line = u
        .stderr
        .lines()
        .find(|l| l.contains("PCR 9 differs"))
        .unwrap_or_else(|| panic!("{u:?}"));
    assert!(line.contains("initrd measurement changed"), "{line}");
    assert!(line.contains("Linux initrd"), "{line}");
    let a_meta = std::fs::read_to_string(fixture("a.meta")).unwrap();
    let b_meta = std::fs::read_to_string(fixture("b.meta")).unwrap();
    let sha = |m: &str| {
        m.lines()
            .find_map(|l| l.strip_prefix("initrd_sha256="))
            .unwrap()
            .to_string()
    };
    assert!(
        line.contains(&format!("expected {}", sha(&a_meta))),
        "{line}"
    );
    assert!(
        line.contains(&format!("the log has {}", sha(&b_meta))),
        "{line}"
    );
    // status explains it the same way.
    let st = on_image(&tpm, &img, "status", &["--json", "--eventlog", p(&b)]);
    let j: serde_json::Value = serde_json::from_str(&st.stdout).unwrap();
    let pcr9 = j["tokens"][0]["pcrs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["index"] == 9)
        .unwrap()
        .clone();
    assert_eq!(pcr9["state"], "differs", "{st:?}");
    assert!(
        pcr9["why"]
            .as_str()
            .unwrap()
            .contains("initrd measurement changed"),
        "{pcr9}"
    );
    // A log that is not this boot's is not believed.
    let u = unlock(&tpm, &img, &["--eventlog", p(&a)]);
    assert!(u.stderr.contains("does not replay to the TPM"), "{u:?}");
}

#[test]
fn signed_from_eventlog_and_the_explained_refusal() {
    let mut tpm = Swtpm::start();
    let img = Image::new();
    let k = PolicyKeys::generate();
    signed_enroll(&tpm, &img, &k);
    let a = fixture("a.bin");
    let sig = img.file("a.json");
    let r = sealroot(&[
        "policy",
        "sign",
        "--key",
        p(&k.private),
        "--pcrs",
        "0,4,7,9",
        "--from-eventlog",
        p(&a),
        "--version",
        "1",
        "--description",
        "image A",
        "--out",
        p(&sig),
    ]);
    r.assert_exit(Exit::Ok);
    install(&img, &sig, &[]).assert_exit(Exit::Ok);
    tpm.reboot();
    replay_into(&tpm, &a);
    let u = unlock(
        &tpm,
        &img,
        &["--policy-dir", "/nonexistent", "--eventlog", p(&a)],
    );
    u.assert_exit(Exit::Ok);
    assert!(u.stderr.contains("image A"), "{u:?}");
    // Boot B's initrd was never signed: refused, naming PCR 9 and the event.
    tpm.reboot();
    let b = fixture("b.bin");
    replay_into(&tpm, &b);
    let u = unlock(
        &tpm,
        &img,
        &["--policy-dir", "/nonexistent", "--eventlog", p(&b)],
    );
    u.assert_exit(Exit::PcrMismatch);
    assert!(u.stderr.contains("PCR 9 differs"), "{u:?}");
    assert!(u.stderr.contains("initrd measurement changed"), "{u:?}");
}

#[test]
fn signed_unseal_keeps_the_kek_off_the_wire() {
    use common::proxy::{cc_name, contains, Proxy};
    let mut tpm = Swtpm::start();
    let img = Image::new();
    let k = PolicyKeys::generate();
    let reveal = img.file("reveal");
    std::fs::create_dir(&reveal).unwrap();
    Args::new("enroll")
        .on(&tpm, &img)
        .opt("unlock-key-file", &img.key)
        .arg("--no-recovery-key")
        .opt("policy-key", &k.public)
        .opt("eventlog", "none")
        .env("SEALROOT_TEST_REVEAL_DIR", &reveal)
        .run()
        .assert_exit(Exit::Ok);
    let kek = revealed(&reveal, "enroll-kek");
    let sig = sign(&k, &img, "a", &[(23, [0; 32])], 1);
    let proxy = Proxy::start(tpm.port);
    let unlock = Args::new("unlock")
        .opt("device", &img.path)
        .opt("tcti", proxy.tcti())
        .opt("cmdline-file", &img.cmdline)
        .opt("name", "t")
        .arg("--dry-run")
        .opt("policy-file", &sig)
        .opt("policy-dir", "/nonexistent")
        .opt("eventlog", "none");
    let u = unlock
        .clone()
        .env("SEALROOT_TEST_REVEAL_DIR", &reveal)
        .run();
    u.assert_exit(Exit::Ok);
    assert_eq!(revealed(&reveal, "kek"), kek);
    let cmds = proxy.command_codes();
    let names: Vec<&str> = cmds.iter().map(|&c| cc_name(c)).collect();
    eprintln!("tpm_commands_per_signed_unlock: {} {names:?}", cmds.len());
    assert!(cmds.contains(&0x149), "PolicyNV ran: {cmds:x?}");
    assert!(cmds.contains(&0x16A), "PolicyAuthorize ran: {cmds:x?}");
    assert!(cmds.contains(&0x15E), "Unseal ran: {cmds:x?}");
    assert!(!names.contains(&"CreatePrimary"), "{names:?}");
    assert!(!contains(&proxy.bytes(), &kek), "KEK in clear on the wire");
    // The check can fail: without response encryption the KEK shows.
    tpm.reboot();
    proxy.clear();
    let u = unlock.env("SEALROOT_TEST_NO_PARAM_ENC", "1").run();
    u.assert_exit(Exit::Ok);
    assert!(
        contains(&proxy.bytes(), &kek),
        "test would not notice a clear KEK"
    );
}

#[test]
fn signed_unseal_leaves_no_copy_of_the_kek_in_memory() {
    use common::proxy::contains;
    let tpm = Swtpm::start();
    let img = Image::new();
    let k = PolicyKeys::generate();
    signed_enroll(&tpm, &img, &k);
    let sig = sign(&k, &img, "a", &[(23, [0; 32])], 1);
    let reveal = img.file("reveal");
    std::fs::create_dir(&reveal).unwrap();
    let pause = img.file("pause");
    let cmd = Args::new("unlock")
        .on(&tpm, &img)
        .opt("name", "x")
        .arg("--dry-run")
        .opt("policy-file", &sig)
        .opt("policy-dir", "/nonexistent")
        .opt("eventlog", "none")
        .env("SEALROOT_TEST_REVEAL_DIR", &reveal)
        .command();
    let (mem, _) = memory_at_pause(cmd, &pause);
    assert!(
        contains(&mem, p(&img.cmdline).as_bytes()),
        "the scan sees the arguments"
    );
    for what in ["kek", "secret"] {
        let s = revealed(&reveal, what);
        for w in s.windows(16) {
            assert!(
                !contains(&mem, w),
                "16-byte run of the {what} in process memory"
            );
        }
    }
}
