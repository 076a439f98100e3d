//! `systemd-tpm2` tokens written by Debian 12's own systemd-cryptenroll
//! (systemd 252) on the test's swtpm, opened by sealroot's unlock path
//! (`unlock --dry-run`: the key is checked against its keyslot, no
//! mapping) with sealroot's safeguards: PCR-only, PIN and signed-policy
//! tokens; changed PCRs, wrong PINs, missing or foreign signatures and
//! hostile token fields refused with their exit codes; PCR 15 locked after
//! every unlock; `adopt` to a sealroot token.

mod common;
use common::systemd_tpm2::*;
use common::*;
use sealroot::Exit;

/// The lock event of a failed unlock, as `sealroot` extends it.
fn pcr15(tpm: &Swtpm) -> String {
    let out = tpm.tpm2(&["pcrread", "sha256:15", "-o", "/dev/stdout"]);
    hex::encode(out.stdout)
}

const ZERO: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[track_caller]
fn assert_locked(tpm: &Swtpm) {
    assert_ne!(pcr15(tpm), ZERO, "PCR 15 was not extended");
}

#[test]
fn pcr_only_token_opens_and_pcr15_is_locked() {
    let mut tpm = Swtpm::start();
    let img = Image::new();
    enroll_systemd(&tpm, &img, "0,7");
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
