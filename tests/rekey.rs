//! First-boot re-keying (crypttab's `sealroot-rekey`) on image files.
//! Offline LUKS2 re-encryption needs no device-mapper (libcryptsetup uses
//! the kernel crypto API), so the whole first boot, a cut in the middle
//! and the resume run here with `boot --dry-run` and a swtpm; the QEMU
//! scenario `first-boot-rekey` does the same with real power cuts.

mod common;

use common::*;
use sealroot::Exit;
use std::process::Command;

const PROV: &[u8] = b"image provisioning key";

/// A 48 MiB image (32 MiB of data, so four 8 MiB hotzones) with a
/// provisioning keyslot, and a crypttab asking for re-keying.
struct Rk {
    img: Image,
    tab: std::path::PathBuf,
}

fn rk() -> Rk {
    let img = Image::with_passphrase(PROV);
    std::fs::File::options()
        .write(true)
        .open(&img.path)
        .unwrap()
        .set_len(48 << 20)
        .unwrap();
    let tab = img.file("crypttab");
    std::fs::write(
        &tab,
        format!(
            "root {} none luks,sealroot,sealroot-pcrs=0+7,sealroot-provision-key={},sealroot-rekey\n",
            p(&img.path),
            p(&img.key)
        ),
    )
    .unwrap();
    Rk { img, tab }
}

impl Rk {
    fn boot(&self, tpm: &Swtpm, env: &[(&str, &str)]) -> Run {
        self.boot_args(tpm, env).run()
    }

    fn boot_args(&self, tpm: &Swtpm, env: &[(&str, &str)]) -> Args {
        let mut a = Args::new("boot")
            .arg("--dry-run")
            .opt("crypttab", &self.tab)
            .opt("cmdline-file", &self.img.cmdline)
            .opt("tcti", tpm.tcti())
            .opt("eventlog", "none");
        for (k, v) in env {
            a = a.env(k, v);
        }
        a
    }

    /// Does `pass` open keyslot `slot`?
    fn opens_slot(&self, pass: &[u8], slot: u32) -> bool {
        let kf = self.img.file("probe-slot.key");
        std::fs::write(&kf, pass).unwrap();
        let st = Command::new("cryptsetup")
            .args(["open", "--test-passphrase", "--key-slot", &slot.to_string()])
            .arg("--key-file")
            .arg(&kf)
            .arg(&self.img.path)
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        st.success()
    }

    fn rekey_token(&self) -> serde_json::Value {
        let j = self.img.json();
        j["tokens"]
            .as_object()
            .unwrap()
            .values()
            .find(|t| t["key_origin"] == "vm-rekeyed")
            .cloned()
            .unwrap_or_else(|| panic!("no re-keying token: {j}"))
    }

    /// Stop the first boot's re-encryption in the middle (at 12 MiB);
    /// returns the copy of the disk the host keeps from then.
    fn cut_in_the_middle(&self, tpm: &mut Swtpm) -> Vec<u8> {
        let stop = (12u64 << 20).to_string();
        let run = self.boot(tpm, &[("SEALROOT_TEST_REKEY_STOP_AT", &stop)]);
        assert_ne!(run.code, 0, "{run:?}");
        assert!(self.in_reencryption(), "{run:?}");
        let middle = std::fs::read(&self.img.path).unwrap();
        tpm.reboot();
        middle
    }

    /// Resume, and cut between the end of the re-encryption and the TPM's
    /// record of it.
    fn cut_before_the_record(&self, tpm: &mut Swtpm) {
        let run = self.boot(tpm, &[("SEALROOT_TEST_CRASH_AT", "rekey:reencrypted")]);
        assert_ne!(run.code, 0, "{run:?}");
        assert!(!self.in_reencryption());
        tpm.reboot();
    }

    /// A boot that records the end (resuming or opening), then the host
    /// puts `middle` back: refused, nothing written. Returns the refusal.
    fn replay_after_the_end(&self, tpm: &mut Swtpm, middle: &[u8]) -> Run {
        let run = self.boot(tpm, &[]);
        run.assert_exit(Exit::Ok);
        assert!(
            run.stderr.contains("recorded as finished in the TPM"),
            "{run:?}"
        );
        std::fs::write(&self.img.path, middle).unwrap();
        tpm.reboot();
        let run = self.boot(tpm, &[]);
        run.assert_exit(Exit::VolumeRefused);
        assert!(run.stderr.contains("recorded it finished"), "{run:?}");
        assert!(
            std::fs::read(&self.img.path).unwrap() == middle,
            "a replayed header was written to"
        );
        run
    }

    fn in_reencryption(&self) -> bool {
        self.img.json()["config"]["requirements"]["mandatory"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    }
}

/// Written first: the moment the new key's keyslot exists (and at every
/// later cut point), the provisioning passphrase the host holds does not
/// open it; only the sealed secret does.
#[test]
fn provisioning_key_never_wraps_the_new_key() {
    for at in ["rekey:new-keyslot", "rekey:old-keyslot", "rekey:started"] {
        let tpm = Swtpm::start();
        let r = rk();
        let run = r.boot(&tpm, &[("SEALROOT_TEST_CRASH_AT", at)]);
        assert_ne!(run.code, 0, "{at}: {run:?}");
        let tok = r.rekey_token();
        let slot: u32 = tok["keyslot"].as_u64().unwrap() as u32;
        assert!(r.img.keyslots().contains(&slot), "{at}");
        assert!(
            !r.opens_slot(PROV, slot),
            "{at}: the provisioning key opens the new key's keyslot"
        );
        assert_eq!(
            r.img.json()["keyslots"][slot.to_string()]["kdf"]["type"],
            "pbkdf2"
        );
    }
}

#[test]
fn first_boot_rekeys_and_the_image_key_opens_nothing() {
    let mut tpm = Swtpm::start();
    let r = rk();
    let before = r.img.json()["digests"]["0"]["digest"].clone();
    let run = r.boot(&tpm, &[]);
    run.assert_exit(Exit::Ok);
    assert!(run.stderr.contains("re-keying"), "{run:?}");
    assert!(run.stderr.contains("MiB/s"), "{run:?}");
    assert!(run.stderr.contains("100%"), "{run:?}");
    assert!(!r.in_reencryption());
    let j = r.img.json();
    assert_eq!(j["segments"].as_object().unwrap().len(), 1, "{j}");
    assert_eq!(j["digests"].as_object().unwrap().len(), 1, "{j}");
    let d = j["digests"].as_object().unwrap().values().next().unwrap();
    assert_ne!(d["digest"], before, "a new volume key");
    assert_eq!(d["iterations"], 1000, "minimum digest count");
    let tok = r.rekey_token();
    assert_eq!(
        r.img.keyslots(),
        vec![tok["keyslot"].as_u64().unwrap() as u32]
    );
    assert!(
        !r.img.opens(PROV),
        "the provisioning key still opens a keyslot"
    );
    // The next boot opens through the TPM alone.
    tpm.reboot();
    let again = r.boot(&tpm, &[]);
    again.assert_exit(Exit::Ok);
    assert!(
        again.stderr.contains("dry run: the key opens keyslot"),
        "{again:?}"
    );
    let st = Args::new("status")
        .opt("device", &r.img.path)
        .opt("tcti", tpm.tcti())
        .arg("--json")
        .run();
    assert!(st.stdout.contains("\"private_to_vm\": true"), "{st:?}");
    assert!(
        st.stdout.contains("\"key_origin\": \"vm-rekeyed\"")
            || st.stdout.contains("\"key_origin\":\"vm-rekeyed\""),
        "{st:?}"
    );
}

#[test]
fn an_interrupted_rekeying_resumes_only_through_the_tpm() {
    let mut tpm = Swtpm::start();
    let r = rk();
    let stop = (12u64 << 20).to_string();
    let run = r.boot(&tpm, &[("SEALROOT_TEST_REKEY_STOP_AT", &stop)]);
    assert_ne!(run.code, 0, "{run:?}");
    assert!(r.in_reencryption(), "{run:?}");
    // The header in re-encryption is reported, with how far it got.
    let info = sealroot::disk::reencrypt::in_progress(&r.img.path, None)
        .unwrap()
        .unwrap();
    assert!(info.done >= 8 << 20 && info.done < info.total, "{info:?}");
    assert_eq!(info.resilience, "journal");
    let st = Args::new("status")
        .opt("device", &r.img.path)
        .arg("--json")
        .run();
    assert!(st.stdout.contains("\"state\": \"in-progress\""), "{st:?}");
    assert!(st.stdout.contains("\"private_to_vm\": false"), "{st:?}");
    // Another VM's TPM (the host with the image and its provisioning
    // key): nothing resumes, nothing changes.
    let other = Swtpm::start();
    let json = r.img.json();
    let run = r.boot(&other, &[]);
    assert_ne!(run.code, 0, "{run:?}");
    assert_eq!(r.img.json(), json, "a foreign TPM changed the header");
    // This VM's next boot resumes and finishes.
    tpm.reboot();
    let run = r.boot(&tpm, &[]);
    run.assert_exit(Exit::Ok);
    assert!(run.stderr.contains("resuming"), "{run:?}");
    assert!(!r.in_reencryption());
    assert!(!r.img.opens(PROV));
    tpm.reboot();
    r.boot(&tpm, &[]).assert_exit(Exit::Ok);
}

/// Written first, for the host that keeps a copy of the disk from the
/// middle of the first boot's re-encryption: once the re-keying finished,
/// that header (whose old-key keyslot the re-keying secret opens, and whose
/// roles the host could swap) is never resumed, and nothing is written.
#[test]
fn a_header_from_before_the_end_is_never_resumed() {
    for cut_before_the_record in [false, true] {
        let mut tpm = Swtpm::start();
        let r = rk();
        let middle = r.cut_in_the_middle(&mut tpm);
        let epoch = r.rekey_token()["rekey_epoch"].as_u64().unwrap();
        if cut_before_the_record {
            r.cut_before_the_record(&mut tpm);
        }
        let run = r.replay_after_the_end(&mut tpm, &middle);
        assert!(run.stderr.contains(&format!("epoch {epoch}")), "{run:?}");
        // PCR 15 is locked: nothing unseals again in this boot.
        let again = r.boot(&tpm, &[]);
        assert_ne!(again.code, 0, "{again:?}");
    }
}

/// The host cuts the first boot between the end of the re-encryption and
/// the TPM's record of it, then puts a copy of the re-keying token with
/// another epoch before the real one: the epoch recorded is the one of the
/// token that unsealed (its envelope authenticates it), so the copy from
/// the middle is still refused afterwards (attacker review).
#[test]
fn a_forged_epoch_beside_the_real_token_does_not_skip_the_record() {
    let mut tpm = Swtpm::start();
    let r = rk();
    let middle = r.cut_in_the_middle(&mut tpm);
    r.cut_before_the_record(&mut tpm);
    // The real token moves up; a copy with epoch 0 takes its id.
    let j = r.img.json();
    let (tid, real) = j["tokens"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, t)| t["key_origin"] == "vm-rekeyed")
        .map(|(k, v)| (k.parse::<u32>().unwrap(), v.clone()))
        .unwrap();
    let mut forged = real.clone();
    forged["rekey_epoch"] = serde_json::json!(0);
    let rf = r.img.file("real.json");
    let ff = r.img.file("forged.json");
    std::fs::write(&rf, real.to_string()).unwrap();
    std::fs::write(&ff, forged.to_string()).unwrap();
    let cs = |args: &[&str]| {
        let o = Command::new("cryptsetup")
            .args(args)
            .arg(&r.img.path)
            .output()
            .unwrap();
        assert!(o.status.success(), "{args:?}: {o:?}");
    };
    let (id, moved) = (tid.to_string(), (tid + 5).to_string());
    cs(&["token", "remove", "--token-id", &id]);
    cs(&["token", "import", "--token-id", &id, "--json-file", p(&ff)]);
    cs(&[
        "token",
        "import",
        "--token-id",
        &moved,
        "--json-file",
        p(&rf),
    ]);
    r.replay_after_the_end(&mut tpm, &middle);
}

/// A second volume cannot ask for re-keying: one key's lock per boot.
#[test]
fn rekey_is_for_the_primary_volume_only() {
    let tpm = Swtpm::start();
    let r = rk();
    let other = Image::with_passphrase(PROV);
    let tab = r.img.file("crypttab2");
    std::fs::write(
        &tab,
        format!(
            "{}data {} none luks,sealroot,sealroot-pcrs=0+7,sealroot-provision-key={},sealroot-rekey\n",
            std::fs::read_to_string(&r.tab).unwrap(),
            p(&other.path),
            p(&other.key)
        ),
    )
    .unwrap();
    let json = r.img.json();
    let run = Args::new("boot")
        .arg("--dry-run")
        .opt("crypttab", &tab)
        .opt("cmdline-file", &r.img.cmdline)
        .opt("tcti", tpm.tcti())
        .opt("eventlog", "none")
        .run();
    run.assert_exit(Exit::Usage);
    assert!(run.stderr.contains("primary volume only"), "{run:?}");
    assert_eq!(r.img.json(), json);
}

#[test]
fn a_cut_before_the_reencryption_starts_over() {
    let mut tpm = Swtpm::start();
    let r = rk();
    let run = r.boot(&tpm, &[("SEALROOT_TEST_CRASH_AT", "rekey:old-keyslot")]);
    assert_ne!(run.code, 0);
    assert!(!r.in_reencryption());
    tpm.reboot();
    let run = r.boot(&tpm, &[]);
    run.assert_exit(Exit::Ok);
    assert!(run.stderr.contains("starting again"), "{run:?}");
    assert_eq!(r.img.keyslots().len(), 1, "{}", r.img.json());
    assert!(!r.img.opens(PROV));
}

#[test]
fn rekey_option_is_strict() {
    use sealroot::formats::bootcfg::{parse_cmdline, parse_crypttab};
    let ok = parse_crypttab("root /dev/vda none sealroot,sealroot-rekey\n").unwrap();
    assert!(ok[0].opts.rekey);
    assert!(parse_crypttab("root /dev/vda none sealroot,sealroot-rekey=1\n").is_err());
    assert!(
        parse_crypttab("root /dev/vda none sealroot,sealroot-ephemeral,sealroot-rekey\n").is_err()
    );
    // A signed policy could not resume a re-keying cut in the middle.
    let e = parse_crypttab(
        "root /dev/vda none sealroot,sealroot-rekey,sealroot-policy-key=/etc/k.pem\n",
    )
    .unwrap_err();
    assert!(e.contains("rekey takes no sealroot-policy-key"), "{e}");
    let c =
        parse_cmdline("rd.sealroot.device=/dev/vda rd.sealroot.rekey rd.sealroot.policy-key=/k")
            .unwrap();
    let e = sealroot::formats::bootcfg::resolve(&c, &[]).unwrap_err();
    assert!(e.contains("rd.sealroot.rekey takes no"), "{e}");
    assert!(parse_cmdline("rd.sealroot.device=/dev/vda rd.sealroot.rekey").is_ok());
    assert!(parse_cmdline("rd.sealroot.device=/dev/vda rd.sealroot.rekey=2").is_err());
    let r = rk();
    let file = r.img.file("cmdline-rekey");
    std::fs::write(
        &file,
        "rd.sealroot.device=/dev/vda rd.sealroot.rekey=maybe\n",
    )
    .unwrap();
    let bad = Args::new("boot")
        .arg("--dry-run")
        .opt("crypttab", "/nonexistent")
        .opt("cmdline-file", &file)
        .run();
    bad.assert_exit(Exit::Usage);
    assert!(bad.stderr.contains("rd.sealroot.rekey"), "{bad:?}");
}

/// Written first, for the host that writes the kernel command line of an
/// image whose root re-keys: it cannot turn sealroot off, add another name
/// for the root's disk, ask for a shell, or pick a primary volume that gets
/// the console recovery prompt; each is exit 2, and the initramfs scripts
/// fail closed on it.
#[test]
fn the_command_line_cannot_open_a_rekey_root_another_way() {
    let dir = tempfile::tempdir().unwrap();
    let tab = dir.path().join("crypttab");
    std::fs::write(
        &tab,
        "root UUID=0a1b none sealroot,sealroot-rekey\ndata UUID=0c0d none sealroot\n",
    )
    .unwrap();
    let file = dir.path().join("cmdline");
    let config = |cmdline: &str| {
        std::fs::write(&file, format!("{cmdline}\n")).unwrap();
        Args::new("boot")
            .arg("--print-config")
            .opt("crypttab", &tab)
            .opt("cmdline-file", &file)
            .run()
    };
    for (cmdline, says) in [
        ("rd.sealroot=0", "rd.sealroot=0 is refused"),
        (
            "rd.sealroot.device=/dev/vda2 rd.sealroot.name=root2 root=/dev/mapper/root2",
            "cannot add volume root2",
        ),
        ("rd.sealroot.on-failure=shell", "on-failure=shell"),
    ] {
        let r = config(cmdline);
        r.assert_exit(Exit::Usage);
        assert!(r.stderr.contains(says), "{cmdline}: {r:?}");
        assert!(r.stdout.is_empty(), "{cmdline}: {r:?}");
    }
    // Whichever volume is the primary one: no console recovery.
    for cmdline in ["root=/dev/mapper/root", "root=/dev/mapper/data"] {
        let r = config(cmdline);
        r.assert_exit(Exit::Ok);
        assert!(r.stdout.contains("SEALROOT_RECOVERY='none'\n"), "{r:?}");
    }
    // Without re-keying, rd.sealroot=0 and the prompt are as ever.
    std::fs::write(&tab, "root UUID=0a1b none sealroot\n").unwrap();
    config("rd.sealroot=0").assert_exit(Exit::Ok);
    let r = config("root=/dev/mapper/root");
    assert!(r.stdout.contains("SEALROOT_RECOVERY='prompt'\n"), "{r:?}");
}

/// A header that `cryptsetup reencrypt --init-only` left: checked and
/// reported at 0 %; a null cipher slipped into it is refused.
#[test]
fn a_header_in_reencryption_is_checked() {
    let r = rk();
    let st = Command::new("cryptsetup")
        .args([
            "reencrypt",
            "-q",
            "--init-only",
            "--resilience",
            "checksum",
            "--key-file",
        ])
        .arg(&r.img.key)
        .arg(&r.img.path)
        .output()
        .unwrap();
    assert!(st.status.success(), "{st:?}");
    let info = sealroot::disk::reencrypt::in_progress(&r.img.path, None)
        .unwrap()
        .unwrap();
    assert_eq!((info.done, info.percent()), (0, 0), "{info:?}");
    assert_eq!(info.total, 32 << 20);
    luks2edit::edit(&r.img.path, |v| {
        v["segments"]["2"]["encryption"] = serde_json::json!("cipher_null-ecb")
    });
    let e = sealroot::disk::reencrypt::in_progress(&r.img.path, None).unwrap_err();
    assert!(e.to_string().contains("segments.2.encryption"), "{e}");
}

/// Zero the checksum of the secondary metadata copy: a header write torn by
/// a power cut.
fn tear_secondary(path: &std::path::Path) {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut f = std::fs::File::options()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut h = [0u8; 16];
    f.read_exact(&mut h).unwrap();
    let hs = u64::from_be_bytes(h[8..16].try_into().unwrap());
    f.seek(SeekFrom::Start(hs + 0x1c0)).unwrap();
    f.write_all(&[0u8; 32]).unwrap();
}

/// A power cut that tears one metadata copy, in re-encryption or after it:
/// the valid copy is checked, libcryptsetup rewrites the torn one, and the
/// boot goes on.
#[test]
fn a_torn_metadata_copy_is_recovered() {
    let mut tpm = Swtpm::start();
    let r = rk();
    let stop = (12u64 << 20).to_string();
    let run = r.boot(&tpm, &[("SEALROOT_TEST_REKEY_STOP_AT", &stop)]);
    assert_ne!(run.code, 0, "{run:?}");
    tear_secondary(&r.img.path);
    tpm.reboot();
    let run = r.boot(&tpm, &[]);
    run.assert_exit(Exit::Ok);
    assert!(run.stderr.contains("was torn by a power cut"), "{run:?}");
    assert!(!r.in_reencryption());
    tear_secondary(&r.img.path);
    tpm.reboot();
    let run = r.boot(&tpm, &[]);
    run.assert_exit(Exit::Ok);
    assert!(run.stderr.contains("was torn by a power cut"), "{run:?}");
}

/// The process killed (SIGKILL) at random instants while it re-encrypts,
/// mid-step included: every next boot goes on, the last one finishes.
#[test]
fn killed_mid_step_the_rekeying_goes_on() {
    use std::io::{BufRead, BufReader};
    let mut tpm = Swtpm::start();
    let r = rk();
    let mut kills = 0;
    for i in 0..40u64 {
        let mut child = r
            .boot_args(&tpm, &[])
            .command()
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let err = BufReader::new(child.stderr.take().unwrap());
        let mut saw = false;
        for line in err.lines() {
            let line = line.unwrap();
            if line.contains("re-keying /dev/")
                || line.contains("re-keying /tmp/")
                || line.contains("% (")
            {
                saw = true;
                // A different instant each time: 0 to 9 ms after a step.
                std::thread::sleep(std::time::Duration::from_millis(i * 7 % 10));
                break;
            }
        }
        let _ = child.kill();
        let st = child.wait().unwrap();
        eprintln!(
            "kill {i}: saw={saw} status={st:?} in_reencryption={}",
            r.in_reencryption()
        );
        tpm.reboot();
        assert!(
            saw || st.success(),
            "boot {i} failed without being killed: {st:?}"
        );
        if !saw || st.success() {
            break;
        }
        kills += 1;
        if !r.in_reencryption() && r.img.opens(PROV) {
            panic!("kill {kills}: the re-keying was lost");
        }
    }
    assert!(kills >= 4, "only {kills} kills");
    let run = r.boot(&tpm, &[]);
    run.assert_exit(Exit::Ok);
    assert!(!r.in_reencryption());
    assert!(!r.img.opens(PROV));
}
