//! The TPM edge against swtpm: PCR arithmetic and policy digests computed in
//! pure code agree with what a real TPM computes.

mod common;
use common::*;
use sealroot::pcr;
use sealroot::pcr::policy;
use sealroot::tpm::Tpm;
use std::time::Duration;

#[test]
fn pure_policy_digest_equals_a_trial_session() {
    let tpm = Swtpm::start();
    let mut t = Tpm::open(&tpm.tcti(), Duration::from_secs(5)).unwrap();
    let cases: Vec<Vec<u32>> = vec![
        vec![0],
        vec![0, 4, 7, 9, 15],
        vec![15, 23],
        (0..24).collect(),
    ];
    for (n, pcrs) in cases.iter().enumerate() {
        let values: Vec<pcr::Digest> = pcrs
            .iter()
            .map(|&i| pcr::sha256(format!("{n}-{i}").as_bytes()))
            .collect();
        for pin in [false, true] {
            let live = t.trial_policy(pcrs, &values, pin).unwrap();
            assert_eq!(
                live,
                policy::compute(pcrs, &values, pin),
                "{pcrs:?} pin={pin}"
            );
        }
    }
}

#[test]
fn pcr_read_and_extend_match_the_pure_arithmetic() {
    let tpm = Swtpm::start();
    let mut t = Tpm::open(&tpm.tcti(), Duration::from_secs(5)).unwrap();
    let all: Vec<u32> = (0..24).collect();
    // More than 8 PCRs need several PCR_Read round trips.
    let before = t.pcr_read(&all).unwrap();
    assert_eq!(before.len(), 24);
    let d = pcr::sha256(b"event");
    t.pcr_extend(16, &d).unwrap();
    t.pcr_extend(23, &d).unwrap();
    let after = t.pcr_read(&all).unwrap();
    assert_eq!(after[16], pcr::extend(&before[16], &d));
    assert_eq!(after[23], pcr::extend(&before[23], &d));
    for i in (0..16).chain(17..23) {
        assert_eq!(after[i], before[i], "PCR {i}");
    }
    // tpm2-tools agrees.
    let out = tpm.tpm2(&["pcrread", "sha256:23"]);
    let text = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
    assert!(text.contains(&hex::encode(after[23])), "{text}");
}

#[test]
fn srk_is_created_once_with_the_ecc_template_and_reused() {
    let tpm = Swtpm::start();
    let mut t = Tpm::open(&tpm.tcti(), Duration::from_secs(5)).unwrap();
    assert!(t.srk(false).is_err(), "no SRK on a fresh TPM");
    let a = t.srk(true).unwrap().name;
    let b = t.srk(false).unwrap().name;
    assert_eq!(a, b);
    drop(t);
    let out = tpm.tpm2(&["readpublic", "-c", "0x81000001"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ecc"), "{text}");
    assert!(text.contains("NIST p256"), "{text}");
    assert!(text.contains(&hex::encode(&a)), "{text}");
}
