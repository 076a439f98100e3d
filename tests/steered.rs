//! The host writes the kernel command line. Whatever it says there
//! (`rd.sealroot=0`, no `rd.sealroot.*` options at all, a TCTI that is no
//! TPM), `sealroot boot` must not return with PCR 15 fresh: the two digests
//! it holds at unseal time are public (the token's `self_measurements`), so
//! whatever runs next could replay them and unseal with plain TPM commands.
//! Each test runs the boot the host steered, then tries exactly that.

mod common;
use common::rawtpm::{pcr_read, raw_unseal, replay_self_measurements};
use common::*;
use sealroot::formats::blob::Blob;
use sealroot::formats::envelope;
use sealroot::secret::Key32;
use sealroot::Exit;

fn boot(tpm: &Swtpm, img: &Image, crypttab: &str, cmdline: &str) -> Run {
    let tab = img.file("crypttab");
    std::fs::write(&tab, crypttab).unwrap();
    let cf = img.file("boot-cmdline");
    std::fs::write(&cf, cmdline).unwrap();
    Args::new("boot")
        .arg("--dry-run")
        .opt("crypttab", &tab)
        .opt("cmdline-file", &cf)
        .opt("tcti", tpm.tcti())
        .run()
}

/// Full chain from the raw KEK to the LUKS secret and an opened keyslot.
fn assert_secret_recovered(img: &Image, tok: &serde_json::Value, kek: &[u8]) {
    let blob = Blob::from_value(tok.clone(), "token 0").unwrap();
    let kek = Key32::from_slice(kek).unwrap();
    let secret = envelope::open(&kek, &blob.nonce, &blob.ciphertext, &blob.binding())
        .expect("the envelope opens with the raw-unsealed KEK");
    assert!(
        img.opens(secret.as_bytes()),
        "the recovered secret opens the volume"
    );
}

/// After `boot` returned, nothing in this boot can unseal the token: not
/// with PCR 15 as it is, not after replaying sealroot's measurements.
#[track_caller]
fn assert_key_out_of_reach(tpm: &Swtpm, img: &Image, tok: &serde_json::Value, case: &str) {
    let pcr15 = pcr_read(tpm, 15);
    let replayed = replay_self_measurements(tpm, tok);
    match raw_unseal(tpm, tok, None) {
        Err(_) => {}
        Ok(kek) => {
            assert_secret_recovered(img, tok, &kek);
            panic!(
                "{case}: after `sealroot boot` returned, PCR 15 was = {} (replayed the token's \
                 self_measurements: {replayed}); raw TPM commands unsealed the KEK and the \
                 envelope's secret opens the volume",
                hex::encode(pcr15)
            );
        }
    }
}

#[test]
fn rd_sealroot_0_still_locks_pcr15() {
    let mut tpm = Swtpm::start();
    let img = Image::new();
    // Volume configured in crypttab (inside the measured initrd).
    enroll(&tpm, &img, &["--no-recovery-key"]).assert_exit(Exit::Ok);
    let tok = img.json()["tokens"]["0"].clone();
    let tab = format!("root {} none sealroot\n", p(&img.path));
    let cmdline = std::fs::read_to_string(&img.cmdline).unwrap();
    let cmdline = cmdline.trim();

    // Control: a normal boot unlocks and locks.
    tpm.reboot();
    boot(&tpm, &img, &tab, cmdline).assert_exit(Exit::Ok);
    assert_ne!(pcr_read(&tpm, 15), [0; 32]);
    assert!(!replay_self_measurements(&tpm, &tok));
    assert!(raw_unseal(&tpm, &tok, None).is_err());

    // The host appends rd.sealroot=0 (plus, in real life, a root= of its
    // own).
    tpm.reboot();
    let r = boot(&tpm, &img, &tab, &format!("{cmdline} rd.sealroot=0"));
    r.assert_exit(Exit::Ok);
    assert_key_out_of_reach(&tpm, &img, &tok, "rd.sealroot=0");
}

#[test]
fn dropping_the_command_line_configuration_still_locks_pcr15() {
    let mut tpm = Swtpm::start();
    let img = Image::new();
    enroll(&tpm, &img, &["--no-recovery-key"]).assert_exit(Exit::Ok);
    let cmdline = format!(
        "root=/dev/mapper/cr rd.sealroot.device={} rd.sealroot.name=cr",
        p(&img.path)
    );
    Args::new("reseal")
        .opt("device", &img.path)
        .opt("unlock-key-file", &img.key)
        .opt("tcti", tpm.tcti())
        .opt("boot-cmdline", &cmdline)
        .run()
        .expect(Exit::Ok);
    let toks = img.json()["tokens"].clone();
    let tok = toks.as_object().unwrap().values().next().unwrap().clone();

    // No crypttab line; the host boots with the rd.sealroot.* options removed.
    tpm.reboot();
    let r = boot(&tpm, &img, "", "root=/dev/vdb init=/attacker");
    r.assert_exit(Exit::Ok);
    assert_key_out_of_reach(&tpm, &img, &tok, "rd.sealroot.* options dropped");
}

/// The command line also picks the TPM the session talks to:
/// `rd.sealroot.tcti=` pointing at no TPM makes `boot` fail with "no TPM";
/// the command's own TPM (`--tcti`, else the default device) is locked all
/// the same.
#[test]
fn rd_sealroot_tcti_cannot_steer_the_lock_away_from_the_tpm() {
    let mut tpm = Swtpm::start();
    let img = Image::new();
    enroll(&tpm, &img, &["--no-recovery-key"]).assert_exit(Exit::Ok);
    let tok = img.json()["tokens"]["0"].clone();
    let tab = format!("root {} none sealroot,sealroot-timeout=1\n", p(&img.path));
    let cmdline = std::fs::read_to_string(&img.cmdline).unwrap();
    tpm.reboot();
    let r = boot(
        &tpm,
        &img,
        &tab,
        &format!("{} rd.sealroot.tcti=device:/dev/null", cmdline.trim()),
    );
    assert_eq!(r.exit(), Some(Exit::NoTpm), "{r:?}");
    assert_key_out_of_reach(&tpm, &img, &tok, "rd.sealroot.tcti=device:/dev/null");
}
