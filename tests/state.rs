//! State volumes (docs/first-boot.md#mode-1-a-fresh-state-volume) on image
//! files with a real swtpm: the guard, the first-boot format and its
//! markers, what a power cut leaves and how the next boot treats it, the
//! key origin in the token and in `status`, and the host's forgeries.
//! `sealroot boot --dry-run` formats and enrolls a state volume (there is
//! no device-mapper on the host) and leaves it incomplete; activation and
//! mkfs run in the QEMU scenario `state-volume`.

mod common;
use common::*;
use sealroot::formats::bootcfg::{parse_cmdline, parse_crypttab, resolve, sealed_in_boot_order};
use sealroot::formats::state::StateMount;
use sealroot::Exit;
use std::path::{Path, PathBuf};
use std::process::Command;

const PCR15_ZERO: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A blank state partition (an image file) with its kernel command line.
struct State {
    dir: tempfile::TempDir,
    dev: PathBuf,
    cmdline: PathBuf,
    tab: PathBuf,
}

impl State {
    fn new() -> State {
        let dir = tempfile::tempdir().unwrap();
        let dev = blank(dir.path(), "state.img", 32);
        let cmdline = dir.path().join("cmdline");
        std::fs::write(
            &cmdline,
            format!(
                "ro rd.sealroot.device={} rd.sealroot.state rd.sealroot.name=state\n",
                dev.display()
            ),
        )
        .unwrap();
        let tab = dir.path().join("crypttab");
        State {
            dir,
            dev,
            cmdline,
            tab,
        }
    }

    fn boot(&self, tpm: &Swtpm) -> Args {
        Args::new("boot")
            .arg("--dry-run")
            .opt("crypttab", &self.tab)
            .opt("cmdline-file", &self.cmdline)
            .opt("tcti", tpm.tcti())
            .opt("eventlog", "none")
    }

    fn json(&self) -> serde_json::Value {
        luks_json(&self.dev)
    }

    fn dump(&self) -> String {
        cryptsetup(&["luksDump", p(&self.dev)])
    }

    fn subsystem(&self) -> String {
        self.dump()
            .lines()
            .find_map(|l| l.strip_prefix("Subsystem:"))
            .unwrap_or_default()
            .trim()
            .to_string()
    }

    fn token(&self) -> serde_json::Value {
        let j = self.json();
        let (_, t) = j["tokens"].as_object().unwrap().iter().next().unwrap();
        t.clone()
    }

    /// What the finished first boot writes last (mkfs needs the guest).
    fn mark_complete(&self) {
        cryptsetup(&["config", "--subsystem", "sealroot-state", p(&self.dev)]);
    }

    fn status(&self, tpm: &Swtpm) -> serde_json::Value {
        let r = Args::new("status")
            .opt("device", &self.dev)
            .opt("tcti", tpm.tcti())
            .opt("cmdline-file", &self.cmdline)
            .arg("--json")
            .run()
            .expect(Exit::Ok);
        serde_json::from_str(&r.stdout).unwrap()
    }
}

fn cryptsetup(args: &[&str]) -> String {
    let out = Command::new("cryptsetup").args(args).output().unwrap();
    assert!(out.status.success(), "cryptsetup {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

fn sha(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

fn pcr15(tpm: &Swtpm) -> String {
    let out = tpm.tpm2(&["pcrread", "sha256:15", "-o", "/dev/stdout"]);
    hex::encode(&out.stdout[..32])
}

/// After a refusal, PCR 15 holds the failure lock: not zero, and a second
/// boot of a genuine volume in this TPM power cycle could not unseal.
#[track_caller]
fn assert_locked(tpm: &Swtpm) {
    assert_ne!(pcr15(tpm), PCR15_ZERO, "PCR 15 was not locked");
}

/// A first boot: format, enroll, unlock through the new token.
fn first_boot(s: &State, tpm: &mut Swtpm) -> Run {
    let r = s.boot(tpm).run().expect(Exit::Ok);
    tpm.reboot();
    r
}

/// The host plants a "finished" state volume of its own, with the real
/// volume's UUID and its token copied over (or forged with the host's own
/// key_origin claim): the token is authenticated by the TPM-sealed envelope
/// and binds the volume key's fingerprint, so it is refused, PCR 15 locked.
#[test]
fn a_planted_complete_volume_is_refused() {
    let mut tpm = Swtpm::start();
    let s = State::new();
    first_boot(&s, &mut tpm);
    s.mark_complete();
    let uuid = cryptsetup(&["luksUUID", p(&s.dev)]).trim().to_string();
    let token = s.token();
    // The host's own volume in its place: its key, the marker, the UUID,
    // and the real token.
    let host_key = s.dir.path().join("host.key");
    std::fs::write(&host_key, b"the host's passphrase").unwrap();
    let forged = blank(s.dir.path(), "forged.img", 32);
    cryptsetup(&[
        "luksFormat",
        "-q",
        "--type",
        "luks2",
        "--pbkdf",
        "pbkdf2",
        "--pbkdf-force-iterations",
        "1000",
        "--uuid",
        &uuid,
        "--subsystem",
        "sealroot-state",
        "--key-file",
        p(&host_key),
        p(&forged),
    ]);
    let tok = s.dir.path().join("token.json");
    std::fs::write(&tok, token.to_string()).unwrap();
    let out = Command::new("cryptsetup")
        .args(["token", "import", "--json-file", p(&tok), p(&forged)])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let before = sha(&forged);
    let real = s.dir.path().join("real.img");
    std::fs::copy(&s.dev, &real).unwrap();
    std::fs::copy(&forged, &s.dev).unwrap();
    let r = s.boot(&tpm).run();
    // The real token unseals (same TPM, same boot), but its secret opens
    // no keyslot of the host's volume; had the host found a keyslot that
    // takes it, the volume key's fingerprint would not be the enrolled one.
    r.assert_exit(Exit::Luks);
    assert!(r.stderr.contains("does not open keyslot"), "{r:?}");
    assert_eq!(sha(&s.dev), before, "the planted volume was written to");
    assert_locked(&tpm);
    tpm.reboot();

    // On the real volume, the host strips the token's key_origin (to claim
    // the image's key) or changes it: the envelope's associated data binds
    // it, so the token does not authenticate.
    std::fs::copy(&real, &s.dev).unwrap();
    let mut t = token.clone();
    t.as_object_mut().unwrap().remove("key_origin");
    std::fs::write(&tok, t.to_string()).unwrap();
    cryptsetup(&["token", "remove", "--token-id", "0", p(&s.dev)]);
    cryptsetup(&["token", "import", "--json-file", p(&tok), p(&s.dev)]);
    let r = s.boot(&tpm).run();
    r.assert_exit(Exit::BlobInvalid);
    assert!(r.stderr.contains("envelope does not authenticate"), "{r:?}");
    assert_locked(&tpm);
    tpm.reboot();
    // The untouched real volume still opens.
    std::fs::copy(&real, &s.dev).unwrap();
    s.boot(&tpm).run().expect(Exit::Ok);
}

/// The first boot: a LUKS2 header under a fresh key, marked incomplete,
/// minimal digest and keyslot PBKDF2 cost, one TPM keyslot and a token that
/// says `vm-formatted`; the boot then unlocks through that token.
#[test]
fn first_boot_formats_enrolls_and_unlocks() {
    let mut tpm = Swtpm::start();
    let s = State::new();
    let reveal = tempfile::tempdir().unwrap();
    let r = s
        .boot(&tpm)
        .env("SEALROOT_TEST_REVEAL_DIR", reveal.path())
        .run()
        .expect(Exit::Ok);
    assert!(
        r.stderr.contains("blank: first boot of the state volume"),
        "{r:?}"
    );
    assert!(r.stderr.contains("XORed with the TPM RNG"), "{r:?}");
    assert!(r.stderr.contains("dry run: the key opens keyslot"), "{r:?}");
    assert_eq!(s.subsystem(), "sealroot-state-incomplete");
    let j = s.json();
    let seg = &j["segments"]["0"];
    assert_eq!(seg["encryption"], "aes-xts-plain64");
    assert_eq!(seg["sector_size"], 4096);
    let digest = j["digests"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()
        .clone();
    assert_eq!(digest["iterations"], 1000, "{digest}");
    let slots = j["keyslots"].as_object().unwrap();
    assert_eq!(slots.len(), 1, "{j}");
    let slot = slots.values().next().unwrap();
    assert_eq!(slot["kdf"]["type"], "pbkdf2");
    assert_eq!(slot["kdf"]["iterations"], 1000);
    let t = s.token();
    assert_eq!(t["type"], "sealroot");
    assert_eq!(t["key_origin"], "vm-formatted", "{t}");
    // The key the volume was formatted with is the key of its token.
    let key = std::fs::read_to_string(reveal.path().join("state-volume-key")).unwrap();
    assert_eq!(key.len(), 128);
    let st = s.status(&tpm);
    assert_eq!(st["key_origin"], "vm-formatted", "{st}");
    assert_eq!(st["private_to_vm"], true, "{st}");
    tpm.reboot();

    // Finished (the guest writes the final marker after mkfs): a later
    // boot unlocks it with the TPM and writes nothing.
    s.mark_complete();
    let before = sha(&s.dev);
    let r = s.boot(&tpm).run().expect(Exit::Ok);
    assert!(r.stderr.contains("/state.img: state volume"), "{r:?}");
    assert!(!r.stderr.contains("formatted and enrolled"), "{r:?}");
    assert_eq!(sha(&s.dev), before);
    let human = Args::new("status")
        .opt("device", &s.dev)
        .opt("tcti", tpm.tcti())
        .opt("cmdline-file", &s.cmdline)
        .run()
        .expect(Exit::Ok);
    assert!(
        human
            .stdout
            .contains("volume key: vm-formatted (private to this VM, as its token says"),
        "{human:?}"
    );
}

/// The image's volumes say `image`: enrollment records no origin.
#[test]
fn an_enrolled_image_volume_is_the_images_key() {
    let tpm = Swtpm::start();
    let img = Image::new();
    enroll(&tpm, &img, &["--no-recovery-key"]).expect(Exit::Ok);
    let (_, st) = status_json(&tpm, &img);
    assert_eq!(st["key_origin"], "image", "{st}");
    assert_eq!(st["private_to_vm"], false, "{st}");
}

/// A power cut after each step of the first boot: the next boot finds the
/// volume incomplete (or blank) and formats it afresh, with a new UUID.
#[test]
fn a_power_cut_at_any_step_restarts_the_first_boot() {
    for at in [
        "state:formatted",
        "state:enrolled",
        "enroll:token-written",
        "enroll:keyslot-added",
    ] {
        let mut tpm = Swtpm::start();
        let s = State::new();
        let r = s.boot(&tpm).env("SEALROOT_TEST_CRASH_AT", at).run();
        assert_eq!(r.exit(), None, "{at}: {r:?}");
        assert_eq!(s.subsystem(), "sealroot-state-incomplete", "{at}");
        let u1 = cryptsetup(&["luksUUID", p(&s.dev)]);
        tpm.reboot();
        let r = s.boot(&tpm).run().expect(Exit::Ok);
        assert!(r.stderr.contains("did not finish"), "{at}: {r:?}");
        assert!(r.stderr.contains("formatting it afresh"), "{at}: {r:?}");
        assert_ne!(cryptsetup(&["luksUUID", p(&s.dev)]), u1, "{at}");
        assert_eq!(s.token()["key_origin"], "vm-formatted");
    }
}

/// The guard: a foreign LUKS2 volume, a filesystem, unknown data, a
/// "finished" volume without a token: refused (exit 12), untouched, PCR 15
/// locked.
#[test]
fn the_guard_refuses_what_is_not_a_state_volume() {
    let tpm = Swtpm::start();
    let s = State::new();
    let key = s.dir.path().join("k");
    std::fs::write(&key, b"foreign").unwrap();
    type Make<'a> = Box<dyn Fn() + 'a>;
    let cases: Vec<(&str, Make)> = vec![
        (
            "LUKS2 volume that is not a sealroot state volume",
            Box::new(|| {
                cryptsetup(&[
                    "luksFormat",
                    "-q",
                    "--type",
                    "luks2",
                    "--pbkdf",
                    "pbkdf2",
                    "--pbkdf-force-iterations",
                    "1000",
                    "--key-file",
                    p(&key),
                    p(&s.dev),
                ]);
            }),
        ),
        (
            "no sealroot token",
            Box::new(|| {
                cryptsetup(&[
                    "luksFormat",
                    "-q",
                    "--type",
                    "luks2",
                    "--pbkdf",
                    "pbkdf2",
                    "--pbkdf-force-iterations",
                    "1000",
                    "--subsystem",
                    "sealroot-state",
                    "--key-file",
                    p(&key),
                    p(&s.dev),
                ]);
            }),
        ),
        (
            "ext2/3/4 filesystem",
            Box::new(|| {
                let out = Command::new("mkfs.ext4")
                    .args(["-q", "-F"])
                    .arg(&s.dev)
                    .output()
                    .unwrap();
                assert!(out.status.success(), "{out:?}");
            }),
        ),
        (
            "neither blank nor a sealroot state volume",
            Box::new(|| {
                let mut b = vec![0u8; 1 << 20];
                for (i, x) in b.iter_mut().enumerate() {
                    *x = (i * 7 + 3) as u8;
                }
                std::fs::write(&s.dev, &b).unwrap();
            }),
        ),
    ];
    for (why, make) in cases {
        std::fs::write(&s.dev, b"").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&s.dev)
            .unwrap()
            .set_len(32 << 20)
            .unwrap();
        make();
        let before = sha(&s.dev);
        let r = s.boot(&tpm).run();
        r.assert_exit(Exit::EphemeralRefused);
        assert!(
            r.stderr.contains("state volume") && r.stderr.contains(why),
            "{why}: {r:?}"
        );
        assert_eq!(sha(&s.dev), before, "{why}: written to");
        assert_locked(&tpm);
    }
}

/// crypttab's form, and its strict errors (exit 2, nothing touched).
#[test]
fn crypttab_state_line_and_usage_errors() {
    let mut tpm = Swtpm::start();
    let s = State::new();
    std::fs::write(&s.cmdline, "ro\n").unwrap();
    std::fs::write(
        &s.tab,
        format!(
            "state {} none sealroot,sealroot-state=/var,sealroot-pcrs=7\n",
            s.dev.display()
        ),
    )
    .unwrap();
    first_boot(&s, &mut tpm);
    assert_eq!(s.token()["key_origin"], "vm-formatted");
    std::fs::write(
        &s.tab,
        format!(
            "state {} none sealroot,sealroot-state=var\n",
            s.dev.display()
        ),
    )
    .unwrap();
    let before = sha(&s.dev);
    let r = s.boot(&tpm).run();
    r.assert_exit(Exit::Usage);
    assert!(r.stderr.contains("absolute directory"), "{r:?}");
    std::fs::write(
        &s.tab,
        format!(
            "state {} none sealroot,sealroot-state,sealroot-provision-key=/k\n",
            s.dev.display()
        ),
    )
    .unwrap();
    s.boot(&tpm).run().assert_exit(Exit::Usage);
    assert_eq!(sha(&s.dev), before);
}

/// The options' forms (pure parsing; exit 2 for the same errors above).
#[test]
fn bootcfg_state_forms() {
    let t = parse_crypttab(
        "state /dev/vdb none sealroot,sealroot-state,sealroot-pcrs=0+7,sealroot-policy-key=/k.pem\n\
         var /dev/vdc none sealroot,sealroot-state=/var\n",
    )
    .unwrap();
    assert_eq!(t[0].opts.state, Some(StateMount::Overlay));
    assert_eq!(t[0].opts.pcrs, Some(vec![0, 7]));
    assert_eq!(t[1].opts.state, Some(StateMount::Path("/var".into())));
    let c = parse_cmdline(
        "rd.sealroot.device=/dev/vdb rd.sealroot.state=overlay rd.sealroot.name=state",
    )
    .unwrap();
    let v = resolve(&c, &[]).unwrap();
    assert_eq!(v[0].opts.state, Some(StateMount::Overlay));
    // A state volume is a sealed volume: it is in the boot order.
    assert_eq!(sealed_in_boot_order(&v, "")[0].name, "state");
    let c = parse_cmdline("rd.sealroot.device=/dev/vdb rd.sealroot.state").unwrap();
    assert_eq!(
        resolve(&c, &[]).unwrap()[0].opts.state,
        Some(StateMount::Overlay)
    );
    let c = parse_cmdline("rd.sealroot.device=/dev/vdb rd.sealroot.state=/srv/data").unwrap();
    assert_eq!(
        resolve(&c, &[]).unwrap()[0].opts.state,
        Some(StateMount::Path("/srv/data".into()))
    );
}

#[test]
fn bootcfg_state_strict_errors() {
    for (bad, why) in [
        ("s /dev/vdb none sealroot,sealroot-state=var", "absolute"),
        (
            "s /dev/vdb none sealroot,sealroot-state=/a/../b",
            "absolute",
        ),
        (
            "s /dev/vdb none sealroot,sealroot-state,sealroot-ephemeral",
            "sealroot-ephemeral",
        ),
        (
            "s /dev/vdb none sealroot,sealroot-state,sealroot-provision-key=/p",
            "sealroot-provision-key",
        ),
        (
            "s /dev/vdb none sealroot,sealroot-state,sealroot-blob=/b",
            "sealroot-blob",
        ),
        (
            "s /dev/vdb none sealroot,sealroot-state,header=/h",
            "header=",
        ),
        ("s /dev/vdb none sealroot,sealroot-states", "unknown option"),
    ] {
        let e = parse_crypttab(bad).unwrap_err();
        assert!(e.contains(why), "{bad}: {e}");
    }
    for (bad, why) in [
        (
            "rd.sealroot.device=/dev/vdb rd.sealroot.state=1",
            "absolute",
        ),
        (
            "rd.sealroot.device=/dev/vdb rd.sealroot.state rd.sealroot.ephemeral",
            "rd.sealroot.ephemeral",
        ),
        (
            "rd.sealroot.device=/dev/vdb rd.sealroot.state rd.sealroot.provision-key=/k",
            "rd.sealroot.provision-key",
        ),
        ("rd.sealroot.state", "without rd.sealroot.uuid"),
    ] {
        let e = parse_cmdline(bad)
            .and_then(|c| resolve(&c, &[]).map(|_| ()))
            .unwrap_err();
        assert!(e.contains(why), "{bad}: {e}");
    }
}

/// With a policy key, the first boot enrolls the state volume in
/// signed-policy mode (the token trusts the builder's key, PCR 15 literal),
/// and the boot's unlock opens it through a signed policy for this boot.
#[test]
fn signed_policy_mode_at_first_boot() {
    let mut tpm = Swtpm::start();
    let s = State::new();
    let k = PolicyKeys::generate();
    let dir = s.dir.path().join("policies");
    std::fs::create_dir(&dir).unwrap();
    let values = s.dir.path().join("values");
    std::fs::write(&values, format!("7:{}\n", hex::encode([0u8; 32]))).unwrap();
    sealroot(&[
        "policy",
        "sign",
        "--key",
        p(&k.private),
        "--pcrs",
        "7",
        "--values",
        p(&values),
        "--version",
        "1",
        "--out",
        p(&dir.join("p.json")),
    ])
    .expect(Exit::Ok);
    std::fs::write(
        &s.cmdline,
        format!(
            "ro rd.sealroot.device={} rd.sealroot.state rd.sealroot.name=state rd.sealroot.policy-key={}\n",
            s.dev.display(),
            k.public.display()
        ),
    )
    .unwrap();
    let r = s.boot(&tpm).opt("policy-dir", &dir).run().expect(Exit::Ok);
    assert!(r.stderr.contains("signed-policy mode"), "{r:?}");
    assert!(r.stderr.contains("matches this boot's PCRs"), "{r:?}");
    let t = s.token();
    assert!(t.get("authorize").is_some(), "{t}");
    assert_eq!(t["key_origin"], "vm-formatted");
    tpm.reboot();
    // Without a signed policy for this boot the proof fails: refused, and
    // the volume stays incomplete for the next boot to format afresh.
    std::fs::write(&s.dev, b"").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&s.dev)
        .unwrap()
        .set_len(32 << 20)
        .unwrap();
    let r = s.boot(&tpm).opt("policy-dir", "/nonexistent").run();
    r.assert_exit(Exit::PcrMismatch);
    assert_eq!(s.subsystem(), "sealroot-state-incomplete");
    assert_locked(&tpm);
}
