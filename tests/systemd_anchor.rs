//! The systemd anchor is real: a `systemd-tpm2` token enrolled by Debian
//! 12's systemd-cryptenroll (systemd 252) and opened by cryptsetup's token
//! plugin through the preload shim (tests/common/systemd_tpm2.rs) unseals on
//! the test's swtpm while the PCRs match and only then; its token can sit
//! beside a sealroot token on one image.
//! `cargo bench --bench unlock` times it beside sealroot.

mod common;
use common::systemd_tpm2::*;
use common::*;
use sealroot::Exit;
use std::process::Output;

/// Run the systemd unlock; then flush what it left in the TPM, as closing
/// /dev/tpmrm0 would.
fn attempt(tpm: &Swtpm, img: &Image) -> Output {
    let out = systemd_unlock(tpm, img).output().unwrap();
    flush_like_tpmrm(tpm);
    out
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn systemd_token_opens_only_with_its_pcrs() {
    let mut tpm = Swtpm::start();
    let img = Image::new();
    enroll_systemd(&tpm, &img, "0,4,7,9");

    // Without the shim the plugin finds no TPM on this host.
    let mut bare = systemd_unlock(&tpm, &img);
    bare.env_remove("LD_PRELOAD");
    let out = bare.output().unwrap();
    assert!(!out.status.success(), "opened without a TPM: {out:?}");

    let out = attempt(&tpm, &img);
    assert!(out.status.success(), "{}", stderr(&out));

    // PCR 7 moves: the TPM's policy digest is no longer the sealed one.
    tpm.extend(7, 0xaa);
    let out = attempt(&tpm, &img);
    assert!(!out.status.success(), "opened with PCR 7 extended");
    assert!(
        stderr(&out).contains("policy digest does not match"),
        "failed for another reason than the PCR policy: {}",
        stderr(&out)
    );

    // A reboot brings the PCRs back to the sealed (zero) values.
    tpm.reboot();
    let out = attempt(&tpm, &img);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// An image systemd-cryptenroll enrolled first (its TPM2 keyslot uses
/// sha512 for the anti-forensic split, which the header allow-list takes)
/// gets a sealroot token beside it; both unlock.
#[test]
fn systemd_and_sealroot_tokens_coexist() {
    let mut tpm = Swtpm::start();
    let img = Image::new();
    enroll_systemd(&tpm, &img, "0,4,7,9");
    let json = img.json();
    let systemd_slot = json["tokens"]["0"]["keyslots"][0].as_str().unwrap();
    assert_eq!(json["keyslots"][systemd_slot]["af"]["hash"], "sha512");
    enroll(&tpm, &img, &["--no-recovery-key", "--pcrs", "0,4,7,9"]).expect(Exit::Ok);
    let json = img.json();
    let mut types: Vec<&str> = json["tokens"]
        .as_object()
        .unwrap()
        .values()
        .map(|t| t["type"].as_str().unwrap())
        .collect();
    types.sort();
    assert_eq!(types, ["sealroot", "systemd-tpm2"]);
    tpm.reboot();
    unlock(&tpm, &img, &[]).expect(Exit::Ok);
    // systemd's token is not bound to PCR 15: it still opens.
    let out = attempt(&tpm, &img);
    assert!(out.status.success(), "{}", stderr(&out));
}
