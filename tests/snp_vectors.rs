//! SEV-SNP report and Azure HCL report verification against real vectors
//! (tests/fixtures/snp, copied from ../shared/test-vectors; see its README).
//! Offline, no TPM: the library API only.

use sealroot::attest::assess::assess;
use sealroot::attest::azure_hcl::{self, HclReport};
use sealroot::attest::check::{first_failure, Check, Outcome, Status};
use sealroot::attest::evidence::{AkState, Certs, Evidence};
use sealroot::attest::snp_report::{self as report, Product, Report};
use sealroot::attest::snp_requirement::{self, SnpRequirement};
use std::path::{Path, PathBuf};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/snp");
const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/test-vectors");

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(FIXTURES).join(name)).unwrap()
}

fn milan_report() -> Vec<u8> {
    hex::decode(
        String::from_utf8(fixture("report_milan.hex"))
            .unwrap()
            .trim(),
    )
    .unwrap()
}

fn milan_vcek() -> Vec<u8> {
    fixture("vcek_milan.der")
}

fn milan_chain() -> Vec<Vec<u8>> {
    report::cert_file_to_der(&fixture("cert_chain_milan")).unwrap()
}

fn hcl_snp() -> Vec<u8> {
    fixture("hcl-report-snp.bin")
}

const MILAN_MEASUREMENT: &str = "7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95b9c480cd81841f";

/// Require the signature with the Milan VCEK and chain, nothing else.
fn signed_policy() -> SnpRequirement {
    SnpRequirement {
        vceks: vec![milan_vcek()],
        ca: milan_chain(),
        ..SnpRequirement::default()
    }
}

fn status(outcomes: &[Outcome], c: Check) -> Option<Status> {
    outcomes.iter().find(|o| o.check == c).map(|o| o.status)
}

/// Full verification of raw report bytes, as `unlock` does it.
fn verify(raw: &[u8], p: &SnpRequirement) -> Result<Product, String> {
    let r = Report::parse(raw)?;
    let (out, product) = report::check_signature(&r, Some(p.signature()), &Certs::default());
    let mut out = out;
    out.extend(snp_requirement::check_fields(&r, p));
    match first_failure(&out) {
        Some(f) => Err(f.to_string()),
        None => product.ok_or_else(|| "not signed".into()),
    }
}

#[test]
fn fixtures_equal_the_shared_vectors() {
    let shared = Path::new(SHARED);
    if !shared.exists() {
        // A clone without ../shared: the fixtures' own hashes are checked in
        // fixture_hashes_match_the_readme.
        eprintln!("{SHARED} not present; comparing fixtures with their README only");
        return;
    }
    for (fx, sh) in [
        ("report_milan.hex", "sev-snp/report_milan.hex"),
        ("vcek_milan.der", "sev-snp/vcek_milan.der"),
        ("cert_chain_milan", "sev-snp/cert_chain_milan"),
        ("vcek_turin.der", "sev-snp/vcek_turin.der"),
        ("cert_chain_turin", "sev-snp/cert_chain_turin"),
        ("hcl-report-snp.bin", "azure-cvm/hcl-report-snp.bin"),
        ("hcl-report-tdx.bin", "azure-cvm/hcl-report-tdx.bin"),
        ("certs.pem", "azure-cvm/certs.pem"),
    ] {
        assert_eq!(
            fixture(fx),
            std::fs::read(shared.join(sh)).unwrap(),
            "{fx} differs from {sh}"
        );
    }
}

#[test]
fn fixture_hashes_match_the_readme() {
    use sha2::Digest;
    let readme = String::from_utf8(fixture("README.md")).unwrap();
    let mut n = 0;
    for line in readme.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        if let [hash, name] = parts.as_slice() {
            if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                assert_eq!(
                    hex::encode(sha2::Sha256::digest(fixture(name))),
                    *hash,
                    "{name}"
                );
                n += 1;
            }
        }
    }
    assert_eq!(n, 8);
}

/// Both copies of the vectors, when ../shared exists: the acceptance test
/// runs on each.
fn vector_dirs() -> Vec<(PathBuf, &'static str, &'static str, &'static str)> {
    let mut v = vec![(
        PathBuf::from(FIXTURES),
        "report_milan.hex",
        "vcek_milan.der",
        "cert_chain_milan",
    )];
    if Path::new(SHARED).exists() {
        v.push((
            PathBuf::from(SHARED),
            "sev-snp/report_milan.hex",
            "sev-snp/vcek_milan.der",
            "sev-snp/cert_chain_milan",
        ));
    }
    v
}

#[test]
fn milan_report_verifies_against_its_vcek_and_chain() {
    for (dir, rep, vcek, chain) in vector_dirs() {
        let raw = hex::decode(
            String::from_utf8(std::fs::read(dir.join(rep)).unwrap())
                .unwrap()
                .trim(),
        )
        .unwrap();
        let p = SnpRequirement {
            vceks: vec![std::fs::read(dir.join(vcek)).unwrap()],
            ca: report::cert_file_to_der(&std::fs::read(dir.join(chain)).unwrap()).unwrap(),
            measurements: vec![snp_requirement::parse_measurement(MILAN_MEASUREMENT).unwrap()],
            min_tcb: Some(snp_requirement::parse_min_tcb("bl=3,tee=0,snp=8,ucode=115").unwrap()),
            guest_policy_forbid: report::parse_guest_policy_names("migrate-ma").unwrap(),
            ..SnpRequirement::default()
        };
        assert_eq!(verify(&raw, &p), Ok(Product::Milan), "{}", dir.display());
    }
}

#[test]
fn the_vcek_alone_verifies_through_the_pinned_chain() {
    // No chain file: the built-in (pinned) Milan ASK and ARK are used.
    let p = SnpRequirement {
        vceks: vec![milan_vcek()],
        ..SnpRequirement::default()
    };
    assert_eq!(verify(&milan_report(), &p), Ok(Product::Milan));
    let info = report::validate_certs(&[milan_vcek()], &milan_chain()).unwrap();
    assert_eq!(info[0].product, Product::Milan);
    assert_eq!(
        info[0].tcb.to_string(),
        "bootloader=3,tee=0,snp=8,microcode=115"
    );
    let turin = report::validate_certs(
        &[fixture("vcek_turin.der")],
        &report::cert_file_to_der(&fixture("cert_chain_turin")).unwrap(),
    )
    .unwrap();
    assert_eq!(turin[0].product, Product::Turin);
    assert_eq!(turin[0].tcb.fmc, Some(0));
    assert_eq!(turin[0].hwid.len(), 8);
}

#[test]
fn wrong_chains_are_refused() {
    // The Turin chain's ASK did not sign a Milan VCEK; the built-in Milan ASK
    // is still tried, so add a foreign ARK to make the chain file invalid.
    let turin_chain = report::cert_file_to_der(&fixture("cert_chain_turin")).unwrap();
    let e = report::validate_certs(&[fixture("vcek_turin.der")], &milan_chain()[..1]);
    assert!(e.is_ok(), "the built-in Turin ASK is used: {e:?}");
    // A self-signed certificate that is not an AMD ARK is refused.
    // certs.pem is VCEK, ASK, ARK (Milan): its ASK and ARK are AMD's.
    let ca = report::cert_file_to_der(&fixture("certs.pem")).unwrap();
    assert!(report::validate_certs(&[milan_vcek()], &ca[1..]).is_ok());
    // Its VCEK is not a CA certificate.
    let e = report::validate_certs(&[milan_vcek()], &ca).unwrap_err();
    assert!(
        e.contains("CA certificate #1") && e.contains("not signed by AMD"),
        "{e}"
    );
    let mut fake_ark = turin_chain[1].clone();
    let n = fake_ark.len();
    fake_ark[n - 1] ^= 1; // still parses, no longer the pinned ARK
    let e = report::validate_certs(&[milan_vcek()], &[fake_ark]).unwrap_err();
    assert!(e.contains("not AMD's"), "{e}");
    // Something that is not a VCEK at all.
    let e = report::validate_certs(&[milan_chain()[0].clone()], &[]).unwrap_err();
    assert!(e.contains("productName"), "{e}");
}

#[test]
fn without_a_vcek_the_signature_is_required_unless_the_policy_allows() {
    let r = Report::parse(&milan_report()).unwrap();
    let (out, _) = report::check_signature(
        &r,
        Some(SnpRequirement::default().signature()),
        &Certs::default(),
    );
    let f = first_failure(&out).unwrap();
    assert_eq!(f.check, Check::Vcek);
    assert!(f.detail.contains("no VCEK was given"), "{f}");
    let ok = SnpRequirement {
        unsigned_ok: true,
        ..SnpRequirement::default()
    };
    let (out, product) = report::check_signature(&r, Some(ok.signature()), &Certs::default());
    assert_eq!(first_failure(&out), None);
    assert_eq!(status(&out, Check::Signature), Some(Status::Skipped));
    assert_eq!(product, None);
    // A VCEK given at run time (a file in the initramfs) is used too.
    let extra = Certs {
        vceks: vec![milan_vcek()],
        ca: vec![],
    };
    let (out, product) =
        report::check_signature(&r, Some(SnpRequirement::default().signature()), &extra);
    assert_eq!(first_failure(&out), None, "{out:?}");
    assert_eq!(status(&out, Check::Signature), Some(Status::Pass));
    assert_eq!(product, Some(Product::Milan));
}

#[test]
fn a_vcek_for_another_chip_is_not_used() {
    // certs.pem's VCEK belongs to another Milan chip.
    let other = report::cert_file_to_der(&fixture("certs.pem")).unwrap();
    let p = SnpRequirement {
        vceks: vec![other[0].clone()],
        ..SnpRequirement::default()
    };
    let e = verify(&milan_report(), &p).unwrap_err();
    assert!(
        e.starts_with("vcek check failed: no VCEK for this chip (d49554ec717f4e5b…)"),
        "{e}"
    );
    // Even with --snp-unsigned-ok, a VCEK that matches must verify: give the
    // right one for the HCL report's chip? We have none, so the report stays
    // unverified and the policy decides.
    let hcl = HclReport::parse(&hcl_snp()).unwrap();
    let r = Report::parse(&hcl.hw_report).unwrap();
    let (out, _) = report::check_signature(&r, Some(p.signature()), &Certs::default());
    assert_eq!(first_failure(&out).unwrap().check, Check::Vcek);
}

#[test]
fn policy_checks_name_what_failed() {
    let raw = milan_report();
    let mut p = signed_policy();
    p.measurements = vec![[0; 48]];
    let e = verify(&raw, &p).unwrap_err();
    assert!(
        e.starts_with("measurement check failed: launch measurement 7a1e5c26"),
        "{e}"
    );
    let mut p = signed_policy();
    p.min_tcb = Some(snp_requirement::parse_min_tcb("snp=9").unwrap());
    let e = verify(&raw, &p).unwrap_err();
    assert!(
        e.contains("tcb check failed") && e.contains("snp 8 < 9"),
        "{e}"
    );
    let mut p = signed_policy();
    p.min_tcb = Some(snp_requirement::parse_min_tcb("fmc=0").unwrap());
    let e = verify(&raw, &p).unwrap_err();
    assert!(e.contains("pre-Turin"), "{e}");
    let mut p = signed_policy();
    p.guest_policy_forbid = report::parse_guest_policy_names("smt").unwrap();
    let e = verify(&raw, &p).unwrap_err();
    assert!(
        e.contains("guest-policy check failed") && e.contains("forbidden flag(s) set: smt"),
        "{e}"
    );
    let mut p = signed_policy();
    p.guest_policy_require = report::parse_guest_policy_names("single-socket").unwrap();
    let e = verify(&raw, &p).unwrap_err();
    assert!(e.contains("required flag(s) not set: single-socket"), "{e}");
    // Debug is refused by every policy; the genuine report disallows it, so
    // show the check on the parsed fields of a report with the bit set.
    let mut dbg = raw.clone();
    dbg[0x08 + 2] |= 0x08; // GUEST_POLICY bit 19
    let r = Report::parse(&dbg).unwrap();
    let out = snp_requirement::check_fields(&r, &SnpRequirement::default());
    assert_eq!(status(&out, Check::Debug), Some(Status::Fail));
    // ... and, as it is signed, the signature does not survive the change.
    assert!(verify(&dbg, &signed_policy())
        .unwrap_err()
        .starts_with("signature check failed"));
}

fn flip(v: &[u8], bit: usize) -> Vec<u8> {
    let mut c = v.to_vec();
    c[bit / 8] ^= 1 << (bit % 8);
    c
}

/// Every bit of the report: the signed body (header, policy, family and
/// image ids, TCBs, `report_data`, measurement, host data, key digests,
/// report ids, chip id, reserved areas) and the whole signature area (r, s
/// and the reserved rest).
#[test]
fn every_single_bit_flip_in_the_report_is_rejected() {
    let raw = milan_report();
    let p = signed_policy();
    assert!(verify(&raw, &p).is_ok());
    let regions: &[(&str, std::ops::Range<usize>)] = &[
        ("version, guest svn, policy, family/image id", 0x00..0x30),
        (
            "vmpl, sig algo, current TCB, platform info, key info",
            0x30..0x50,
        ),
        ("report_data", 0x50..0x90),
        ("measurement", 0x90..0xC0),
        ("host data", 0xC0..0xE0),
        ("id key and author key digests, report ids", 0xE0..0x180),
        ("reported TCB", 0x180..0x188),
        ("cpuid and reserved before chip id", 0x188..0x1A0),
        ("chip id", 0x1A0..0x1E0),
        ("committed TCB, versions, launch TCB", 0x1E0..0x1F8),
        ("reserved", 0x1F8..0x2A0),
        ("signature r, s and reserved", 0x2A0..0x4A0),
    ];
    let mut n = 0;
    for (name, range) in regions {
        for bit in range.start * 8..range.end * 8 {
            assert!(
                verify(&flip(&raw, bit), &p).is_err(),
                "{name}: flipping bit {bit} (byte 0x{:03x}) was accepted",
                bit / 8
            );
            n += 1;
        }
    }
    assert_eq!(n, raw.len() * 8, "every bit of the report");
}

#[test]
fn every_single_bit_flip_in_the_vcek_is_rejected() {
    let raw = milan_report();
    let vcek = milan_vcek();
    let mut accepted = Vec::new();
    for bit in 0..vcek.len() * 8 {
        let p = SnpRequirement {
            vceks: vec![flip(&vcek, bit)],
            ca: milan_chain(),
            ..SnpRequirement::default()
        };
        if verify(&raw, &p).is_ok() {
            accepted.push(bit);
        }
    }
    assert!(accepted.is_empty(), "accepted VCEK bit flips: {accepted:?}");
}

#[test]
fn every_single_bit_flip_in_the_ask_is_rejected() {
    // A chain file's ASK must itself be signed by a pinned ARK; a corrupted
    // one is refused rather than silently replaced by the built-in ASK.
    let ask = &milan_chain()[0];
    assert!(report::validate_certs(&[milan_vcek()], std::slice::from_ref(ask)).is_ok());
    let mut accepted = Vec::new();
    for bit in 0..ask.len() * 8 {
        if report::validate_certs(&[milan_vcek()], &[flip(ask, bit)]).is_ok() {
            accepted.push(bit);
        }
    }
    assert!(accepted.is_empty(), "accepted ASK bit flips: {accepted:?}");
}

#[test]
fn truncated_and_oversized_reports_are_rejected_cleanly() {
    let raw = milan_report();
    for n in [0, 1, 4, 0x2A0, 1183] {
        let e = Report::parse(&raw[..n]).unwrap_err();
        assert!(e.contains("expected 1184"), "{e}");
    }
    let mut big = raw.clone();
    big.push(0);
    assert!(Report::parse(&big).unwrap_err().contains("1185 bytes"));
    assert!(Report::parse(&vec![0xff; 1184]).is_err());
    assert!(Report::parse(&vec![0; 1184]).is_err());
    // Unknown version and algorithm.
    let mut v = raw.clone();
    v[0] = 9;
    assert!(Report::parse(&v).unwrap_err().contains("version"));
    let mut a = raw.clone();
    a[0x34] = 2;
    assert!(Report::parse(&a).unwrap_err().contains("algorithm"));
    // Reserved bits and oversized scalars are refused by the parser itself.
    let e = Report::parse(&flip(&raw, 0x4A0 * 8 - 1)).unwrap_err();
    assert!(e.contains("reserved"), "{e}");
    let e = Report::parse(&flip(&raw, (0x2A0 + 60) * 8)).unwrap_err();
    assert!(e.contains("above 384"), "{e}");
    // Certificates: truncated, oversized, garbage.
    let vcek = milan_vcek();
    for n in [0, 1, 10, vcek.len() - 1] {
        assert!(
            report::validate_certs(&[vcek[..n].to_vec()], &[]).is_err(),
            "{n}"
        );
    }
    let mut long = vcek.clone();
    long.push(0);
    assert!(report::validate_certs(&[long], &[]).is_err());
    assert!(report::cert_file_to_der(&vec![b'A'; 70_000]).is_err());
    assert!(report::cert_file_to_der(b"hello").is_err());
    assert!(report::cert_file_to_der(b"-----BEGIN CERTIFICATE-----\nAAAA\n").is_err());
}

#[test]
fn azure_hcl_report_binding_and_key_extraction() {
    for raw in [hcl_snp(), {
        let p = Path::new(SHARED).join("azure-cvm/hcl-report-snp.bin");
        std::fs::read(p).unwrap_or_else(|_| hcl_snp())
    }] {
        let h = HclReport::parse(&raw).unwrap();
        assert_eq!(h.kind, azure_hcl::ReportKind::Snp);
        assert_eq!(h.runtime_data.len(), 583);
        assert!(h.check_binding().unwrap().contains("SHA-256"));
        let ak = h.ak_pub().unwrap();
        assert_eq!(ak.bits(), 2048);
        assert_eq!(ak.e, vec![1, 0, 1]);
        // Decoded independently (Python base64.urlsafe_b64decode).
        assert_eq!(ak.fingerprint(), "b58541a6000104e7");
        assert_eq!(hex::encode(&ak.n[252..]), "13a556d1");
        let r = Report::parse(&h.hw_report).unwrap();
        assert_eq!(
            hex::encode(r.measurement()),
            "5a71e4ba7e0b83e44c8e853130a65557db0a7782cdb2d906c54b0bf5878202805ab159bfe0cf7d5749aa6f62b7094508"
        );
        assert!(!r.debug_allowed());
        assert_eq!(h.vm_configuration().unwrap()["secure-boot"], true);
    }
}

#[test]
fn azure_hcl_binding_breaks_with_any_runtime_data_or_report_data_change() {
    let raw = hcl_snp();
    let var_start = 0x4D4;
    let var_end = var_start + 583;
    // Every bit of the runtime data (where HCLAkPub lives).
    for bit in var_start * 8..var_end * 8 {
        let b = flip(&raw, bit);
        if let Ok(h) = HclReport::parse(&b) {
            assert!(
                h.check_binding().is_err(),
                "runtime data bit {bit} accepted"
            );
        }
    }
    // Every bit of the SNP report's report_data's hash part.
    for bit in (32 + 0x50) * 8..(32 + 0x70) * 8 {
        let h = HclReport::parse(&flip(&raw, bit)).unwrap();
        assert!(h.check_binding().is_err(), "report_data bit {bit} accepted");
    }
}

#[test]
fn azure_assessment_with_and_without_the_attestation_key() {
    let h = HclReport::parse(&hcl_snp()).unwrap();
    let ak = h.ak_pub().unwrap();
    let meas: [u8; 48] = Report::parse(&h.hw_report)
        .unwrap()
        .measurement()
        .to_owned();
    let policy = SnpRequirement {
        measurements: vec![meas],
        unsigned_ok: true,
        ..SnpRequirement::default()
    };
    let run = |ak_state: AkState, p: &SnpRequirement| {
        assess(
            &Evidence::AzureHcl {
                hcl: h.clone(),
                ak: ak_state,
            },
            Some(p),
            &Certs::default(),
        )
        .outcomes
    };
    let out = run(AkState::Rsa(ak.clone()), &policy);
    assert_eq!(first_failure(&out), None, "{out:#?}");
    assert_eq!(status(&out, Check::AttestationKey), Some(Status::Pass));
    assert_eq!(status(&out, Check::HclBinding), Some(Status::Pass));
    assert_eq!(status(&out, Check::Measurement), Some(Status::Pass));
    assert_eq!(status(&out, Check::Signature), Some(Status::Skipped));
    let out = run(AkState::Absent, &policy);
    assert_eq!(first_failure(&out), None);
    assert_eq!(status(&out, Check::AttestationKey), Some(Status::Skipped));
    let mut other = ak.clone();
    other.n[10] ^= 1;
    let f = first_failure(&run(AkState::Rsa(other), &policy)).unwrap();
    assert_eq!(f.check, Check::AttestationKey);
    assert!(f.detail.contains("not the vTPM key at 0x81000003"), "{f}");
    let f = first_failure(&run(AkState::NotRsa("an ECC key".into()), &policy)).unwrap();
    assert_eq!(f.check, Check::AttestationKey);
    // The same evidence under a policy that requires a signature: there is
    // no VCEK for this chip (certs.pem is another chip's), so it fails.
    let strict = SnpRequirement {
        unsigned_ok: false,
        vceks: report::cert_file_to_der(&fixture("certs.pem")).unwrap()[..1].to_vec(),
        ..policy.clone()
    };
    let f = first_failure(&run(AkState::Absent, &strict)).unwrap();
    assert_eq!(f.check, Check::Vcek);
    // A different measurement.
    let wrong = SnpRequirement {
        measurements: vec![[1; 48]],
        ..policy
    };
    let f = first_failure(&run(AkState::Absent, &wrong)).unwrap();
    assert_eq!(f.check, Check::Measurement);
}

#[test]
fn tdx_hcl_report_is_recognised_and_refused() {
    let h = HclReport::parse(&fixture("hcl-report-tdx.bin")).unwrap();
    assert_eq!(h.kind, azure_hcl::ReportKind::Tdx);
    assert!(h.check_binding().is_ok());
    assert!(h.ak_pub().is_ok());
    let ev = Evidence::AzureHcl {
        hcl: h,
        ak: AkState::Absent,
    };
    assert_eq!(ev.kind(), "tdx");
    let a = assess(&ev, Some(&SnpRequirement::default()), &Certs::default());
    let f = first_failure(&a.outcomes).unwrap();
    assert_eq!(f.check, Check::Evidence);
    assert!(f.detail.contains("TDX"), "{f}");
}

#[test]
fn truncated_and_oversized_hcl_reports_are_rejected_cleanly() {
    let raw = hcl_snp();
    for n in (0..0x71B).step_by(13).chain([0x4D3, 0x4D4, 0x71A]) {
        assert!(HclReport::parse(&raw[..n]).is_err(), "truncated to {n}");
    }
    assert!(HclReport::parse(&raw[..0x71B]).is_ok());
    let mut big = raw.clone();
    big.resize(azure_hcl::MAX_HCL_LEN + 1, 0);
    assert!(HclReport::parse(&big).unwrap_err().contains("limit"));
}
