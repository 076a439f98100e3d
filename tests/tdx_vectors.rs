//! TDX: TD quote verification (dcap-qvl, pinned Intel root) and Azure's
//! TDX HCL report, against real vectors (tests/fixtures/tdx and
//! tests/fixtures/snp/hcl-report-tdx.bin, copied from
//! ../shared/test-vectors; see tests/fixtures/tdx/README.md). Offline, no
//! TPM: the library API only.

use sealroot::attest::azure_hcl::{HclReport, ReportKind};
use sealroot::attest::check::{first_failure, Check, Status};
use sealroot::attest::evidence::{AkState, Evidence};
use sealroot::attest::tdx_assess::{assess_tdx, TdxInputs};
use sealroot::attest::tdx_quote::{
    parse_time, verify_quote, Collateral, QuoteError, StalePolicy, TcbStatuses,
};
use sealroot::attest::tdx_report::{parse_quote, parse_tdreport};
use sealroot::attest::tdx_requirement::{TdxEvidence, TdxRequirement};
use sha2::{Digest as _, Sha256};
use std::path::Path;
use std::process::Command;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/test-vectors");

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(FIXTURES).join(name)).unwrap()
}

fn quote() -> Vec<u8> {
    fixture("tdx/tdx_quote")
}

fn collateral() -> Collateral {
    Collateral::parse(&fixture("tdx/tdx_quote_collateral.json")).unwrap()
}

fn inside() -> u64 {
    parse_time("2025-06-25T00:00:00Z").unwrap()
}

const MRTD: &str = "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7";

#[test]
fn fixtures_equal_the_shared_vectors() {
    if !Path::new(SHARED).exists() {
        eprintln!("{SHARED} not present");
        return;
    }
    for name in [
        "tdx_quote",
        "tdx_quote_collateral.json",
        "tdx_quote_outdated",
        "tdx_quote_outdated_collateral.json",
    ] {
        assert_eq!(
            fixture(&format!("tdx/{name}")),
            std::fs::read(Path::new(SHARED).join("tdx").join(name)).unwrap(),
            "{name}"
        );
    }
}

#[test]
fn quote_verifies_inside_its_collateral_window() {
    let v = verify_quote(&quote(), &collateral(), inside(), StalePolicy::Refuse).unwrap();
    assert_eq!(v.version, 4);
    assert_eq!(v.tcb_status, "UpToDate");
    assert_eq!(hex::encode(v.fields.mrtd), MRTD);
    assert!(!v.fields.debug());
    assert!(v.stale_warning.is_none());
    assert!(TcbStatuses::default().check(&v.tcb_status).is_ok());
}

/// The outdated vector: its platform TCB is below every TCB level of its
/// collateral. dcap-qvl 0.7.1 (like Intel's QVL) then gives no status but
/// "No matching TCB level found"; sealroot names it as the `tcb` check and
/// refuses it under any status policy. If a dcap-qvl version reports a
/// status instead, it must not be UpToDate and the default policy must
/// refuse it.
#[test]
fn outdated_quote_is_refused_by_the_tcb_policy() {
    let q = fixture("tdx/tdx_quote_outdated");
    let c = Collateral::parse(&fixture("tdx/tdx_quote_outdated_collateral.json")).unwrap();
    let at = parse_time("2026-03-01T00:00:00Z").unwrap();
    match verify_quote(&q, &c, at, StalePolicy::Refuse) {
        Err(QuoteError::TcbUnmatched(e)) => eprintln!("outdated: {e}"),
        Ok(v) => {
            assert_ne!(v.tcb_status, "UpToDate");
            assert!(TcbStatuses::default().check(&v.tcb_status).is_err());
        }
        Err(e) => panic!("{e}"),
    }
    // Through the assessment, with a requirement: the tcb check fails.
    let fields = parse_quote(&q).unwrap().fields;
    let ev = Evidence::TdxQuote {
        quote: q.clone(),
        expected: fields.report_data,
        source: "test".into(),
    };
    let inputs = TdxInputs {
        collateral: Some(&c),
        rtc: at,
        stale: StalePolicy::Refuse,
    };
    let all = TdxRequirement {
        tcb_statuses: TcbStatuses::parse(
            "UpToDate,SWHardeningNeeded,ConfigurationNeeded,ConfigurationAndSWHardeningNeeded,OutOfDate,OutOfDateConfigurationNeeded",
        )
        .unwrap(),
        ..TdxRequirement::default()
    };
    for req in [TdxRequirement::default(), all] {
        let a = assess_tdx(&ev, Some(&req), &inputs);
        let f = first_failure(&a.outcomes).unwrap();
        assert_eq!(f.check, Check::Tcb, "{f}");
    }
    // Its signatures and chain are fine: a flipped TD body bit is a quote
    // failure, not a TCB one.
    let mut m = q.clone();
    m[54 + 136] ^= 1;
    assert!(matches!(
        verify_quote(&m, &c, at, StalePolicy::Refuse),
        Err(QuoteError::Verify(_))
    ));
}

#[test]
fn stale_collateral_follows_the_policy() {
    let c = collateral();
    let after = c.next_update + 86400;
    match verify_quote(&quote(), &c, after, StalePolicy::Refuse) {
        Err(QuoteError::Stale { now, next_update }) => {
            assert_eq!((now, next_update), (after, c.next_update));
        }
        o => panic!("{o:?}"),
    }
    let v = verify_quote(&quote(), &c, after, StalePolicy::Warn).unwrap();
    assert_eq!(v.at, c.next_update - 1);
    assert!(matches!(
        verify_quote(&quote(), &c, c.next_update, StalePolicy::Refuse),
        Err(QuoteError::Stale { .. })
    ));
    assert!(v.stale_warning.unwrap().contains("stale"));
    // Before the issue date: refused whatever the stale policy.
    for p in [StalePolicy::Refuse, StalePolicy::Warn] {
        assert!(matches!(
            verify_quote(&quote(), &c, c.issue - 1, p),
            Err(QuoteError::BeforeIssue { .. })
        ));
    }
    // A requirement's not_before raises a clock set back by the host.
    let p = TdxRequirement {
        not_before: Some(after),
        ..TdxRequirement::default()
    };
    assert_eq!(p.now(inside()), after);
    // Collateral that expired before enrollment is refused even when the
    // stale policy warns: it is older than what was current then.
    let q = quote();
    let fields = parse_quote(&q).unwrap().fields;
    let ev = Evidence::TdxQuote {
        quote: q.clone(),
        expected: fields.report_data,
        source: "test".into(),
    };
    let warn = TdxRequirement {
        stale: StalePolicy::Warn,
        not_before: Some(after),
        ..TdxRequirement::default()
    };
    let inputs = TdxInputs {
        collateral: Some(&c),
        rtc: after,
        stale: StalePolicy::Warn,
    };
    let f = first_failure(&assess_tdx(&ev, Some(&warn), &inputs).outcomes).unwrap();
    assert_eq!(f.check, Check::Collateral, "{f}");
    assert!(f.detail.contains("before the token was enrolled"), "{f}");
    // Enrolled inside the window, stale now: the warn policy verifies.
    let warn_inside = TdxRequirement {
        not_before: Some(inside()),
        ..warn
    };
    assert!(first_failure(&assess_tdx(&ev, Some(&warn_inside), &inputs).outcomes).is_none());
}

#[test]
fn collateral_with_an_empty_window_is_refused() {
    let mut v: serde_json::Value =
        serde_json::from_slice(&fixture("tdx/tdx_quote_collateral.json")).unwrap();
    let ti: serde_json::Value = serde_json::from_str(v["tcb_info"].as_str().unwrap()).unwrap();
    let mut ti = ti;
    ti["nextUpdate"] = serde_json::json!("1970-01-01T00:00:00Z");
    v["tcb_info"] = serde_json::json!(ti.to_string());
    match Collateral::parse(v.to_string().as_bytes()) {
        Err(QuoteError::Collateral(m)) => assert!(m.contains("validity window is empty"), "{m}"),
        o => panic!("{o:?}"),
    }
}

/// Offsets in the v4 sample quote: TD body, quote signature, QE report,
/// QE report signature (Intel TDX DCAP quote format, certification data
/// type 6).
const REGIONS: [(&str, usize, usize); 4] = [
    ("TD body", 48, 632),
    ("signature", 636, 700),
    ("QE report", 770, 1154),
    ("QE report signature", 1154, 1218),
];

#[test]
fn every_single_bit_flip_is_rejected() {
    let q = quote();
    let c = collateral();
    // The layout the regions assume.
    assert_eq!(u16::from_le_bytes([q[764], q[765]]), 6);
    let bits: Vec<(&str, usize)> = REGIONS
        .iter()
        .flat_map(|&(name, a, b)| (a * 8..b * 8).map(move |bit| (name, bit)))
        .collect();
    let threads = 2;
    let accepted: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (q, c, bits) = (&q, &c, &bits);
                s.spawn(move || {
                    let mut bad = Vec::new();
                    for &(name, bit) in bits.iter().skip(t).step_by(threads) {
                        let mut m = q.clone();
                        m[bit / 8] ^= 1 << (bit % 8);
                        if verify_quote(&m, c, inside(), StalePolicy::Refuse).is_ok() {
                            bad.push(format!("{name}: byte {} bit {}", bit / 8, bit % 8));
                        }
                    }
                    bad
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert!(accepted.is_empty(), "accepted after a flip: {accepted:?}");
}

#[test]
fn truncated_and_oversized_quotes_are_rejected_cleanly() {
    let q = quote();
    let c = collateral();
    let len = parse_quote(&q).unwrap().len;
    for n in (0..len).step_by(7).chain([len - 1]) {
        assert!(
            verify_quote(&q[..n], &c, inside(), StalePolicy::Refuse).is_err(),
            "truncated to {n}"
        );
    }
    // Exactly the quote, and with zero padding, verify.
    assert!(verify_quote(&q[..len], &c, inside(), StalePolicy::Refuse).is_ok());
    let mut big = q.clone();
    big.push(1);
    assert!(matches!(
        verify_quote(&big, &c, inside(), StalePolicy::Refuse),
        Err(QuoteError::Format(_))
    ));
    let mut huge = q.clone();
    huge.resize(1 << 20, 0);
    assert!(matches!(
        verify_quote(&huge, &c, inside(), StalePolicy::Refuse),
        Err(QuoteError::Format(_))
    ));
    // A signature length that points past the end.
    let mut m = q.clone();
    m[632..636].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        verify_quote(&m, &c, inside(), StalePolicy::Refuse),
        Err(QuoteError::Format(_))
    ));
}

/// A three-level ECDSA P-256 chain made by openssl, named like Intel's:
/// "Intel SGX Root CA" → "Intel SGX PCK Platform CA" → "Intel SGX PCK
/// Certificate" (leaf first, PEM).
fn foreign_chain(dir: &Path) -> String {
    let run = |args: &[&str]| {
        let o = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(
            o.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    let subj = |cn: &str| format!("/CN={cn}/O=Intel Corporation/L=Santa Clara/ST=CA/C=US");
    std::fs::write(
        dir.join("ca.ext"),
        "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n",
    )
    .unwrap();
    for k in ["root", "inter", "leaf"] {
        run(&[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            &format!("{k}.key"),
        ]);
    }
    run(&[
        "req",
        "-new",
        "-x509",
        "-key",
        "root.key",
        "-subj",
        &subj("Intel SGX Root CA"),
        "-days",
        "7300",
        "-out",
        "root.pem",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    for (k, cn, ca, ext) in [
        ("inter", "Intel SGX PCK Platform CA", "root", true),
        ("leaf", "Intel SGX PCK Certificate", "inter", false),
    ] {
        run(&[
            "req",
            "-new",
            "-key",
            &format!("{k}.key"),
            "-subj",
            &subj(cn),
            "-out",
            &format!("{k}.csr"),
        ]);
        let mut a = vec![
            "x509",
            "-req",
            "-in",
            &format!("{k}.csr"),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            "3650",
            "-out",
            &format!("{k}.pem"),
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
        if ext {
            a.extend(["-extfile", "ca.ext"].map(String::from));
        }
        run(&a.iter().map(String::as_str).collect::<Vec<_>>());
    }
    ["leaf.pem", "inter.pem", "root.pem"]
        .iter()
        .map(|f| std::fs::read_to_string(dir.join(f)).unwrap())
        .collect()
}

/// Replace the quote's PCK certificate chain (certification data type 5,
/// the quote's last field) and fix the three lengths that cover it.
fn with_pck_chain(q: &[u8], pem: &str) -> Vec<u8> {
    let len = parse_quote(q).unwrap().len;
    let start = q.windows(10).position(|w| w == b"-----BEGIN").unwrap();
    assert_eq!(u16::from_le_bytes([q[start - 6], q[start - 5]]), 5);
    let old = u32::from_le_bytes(q[start - 4..start].try_into().unwrap()) as i64;
    assert_eq!(start as i64 + old, len as i64);
    let delta = pem.len() as i64 - old;
    let mut m = q[..start].to_vec();
    m.extend_from_slice(pem.as_bytes());
    let add = |m: &mut Vec<u8>, off: usize| {
        let v = u32::from_le_bytes(m[off..off + 4].try_into().unwrap()) as i64 + delta;
        m[off..off + 4].copy_from_slice(&(v as u32).to_le_bytes());
    };
    m[start - 4..start].copy_from_slice(&(pem.len() as u32).to_le_bytes());
    add(&mut m, 766); // certification data type 6 size
    add(&mut m, 632); // signature data length
    m
}

#[test]
fn a_pck_chain_to_another_root_is_refused() {
    let q = quote();
    let c = collateral();
    // The rewrite itself is sound: the genuine chain put back verifies.
    let start = q.windows(10).position(|w| w == b"-----BEGIN").unwrap();
    let len = parse_quote(&q).unwrap().len;
    let genuine = std::str::from_utf8(&q[start..len]).unwrap().to_string();
    assert!(verify_quote(
        &with_pck_chain(&q, &genuine),
        &c,
        inside(),
        StalePolicy::Refuse
    )
    .is_ok());
    let dir = tempfile::tempdir().unwrap();
    let foreign = foreign_chain(dir.path());
    match verify_quote(
        &with_pck_chain(&q, &foreign),
        &c,
        inside(),
        StalePolicy::Refuse,
    ) {
        Err(QuoteError::Verify(e)) => eprintln!("refused: {e}"),
        o => panic!("a foreign PCK chain was not refused: {o:?}"),
    }
    // The genuine leaf and intermediate with the foreign root appended
    // (a chain that "ends" elsewhere) still only verifies to the pinned
    // root; the foreign root alone as the issuer of the TCB info is refused.
    let mut coll = c.clone();
    coll.inner.tcb_info_issuer_chain = foreign.clone();
    assert!(matches!(
        verify_quote(&q, &coll, inside(), StalePolicy::Refuse),
        Err(QuoteError::Verify(_))
    ));
    let mut coll = c.clone();
    coll.inner.qe_identity_issuer_chain = foreign;
    assert!(matches!(
        verify_quote(&q, &coll, inside(), StalePolicy::Refuse),
        Err(QuoteError::Verify(_))
    ));
}

#[test]
fn collateral_that_does_not_parse_is_refused() {
    let good = fixture("tdx/tdx_quote_collateral.json");
    assert!(Collateral::parse(b"").is_err());
    assert!(Collateral::parse(b"{}").is_err());
    assert!(Collateral::parse(&vec![b' '; 300 * 1024]).is_err());
    let mut v: serde_json::Value = serde_json::from_slice(&good).unwrap();
    v["tcb_info"] = "{\"issueDate\":\"2025-06-19T10:16:03Z\"}".into();
    assert!(Collateral::parse(v.to_string().as_bytes()).is_err());
    let c = collateral();
    assert!(c.issue >= parse_time("2025-06-19T10:32:27Z").unwrap());
    assert!(c.next_update <= parse_time("2025-07-19T10:16:03Z").unwrap());
    assert!(c.issue < inside() && inside() < c.next_update);
}

// ---- Azure TDX CVM: the HCL report (type 4) with a TDREPORT ----

fn hcl_tdx() -> Vec<u8> {
    fixture("snp/hcl-report-tdx.bin")
}

#[test]
fn tdx_hcl_report_binds_its_runtime_data_and_names_the_ak() {
    let h = HclReport::parse(&hcl_tdx()).unwrap();
    assert_eq!(h.kind, ReportKind::Tdx);
    assert!(h.check_binding().is_ok());
    assert_eq!(&h.report_data()[..32], &Sha256::digest(&h.runtime_data)[..]);
    let ak = h.ak_pub().unwrap();
    assert_eq!(ak.bits(), 2048);
    let f = parse_tdreport(&h.hw_report).unwrap();
    assert!(!f.debug());
    assert_eq!(f.report_data, h.report_data());
    // Through the assessment: a matching AK and a requirement on the
    // report's own MRTD and RTMRs pass; the quote is skipped (a TDREPORT
    // cannot be verified off the platform).
    let req = TdxRequirement {
        evidence: TdxEvidence::AzureHcl,
        mrtds: vec![f.mrtd],
        rtmrs: f.rtmr.map(Some),
        mrconfigid: Some(f.mrconfigid),
        xfam: Some(f.xfam),
        ..TdxRequirement::default()
    };
    let ev = Evidence::AzureHcl {
        hcl: h.clone(),
        ak: AkState::Rsa(ak.clone()),
    };
    let a = assess_tdx(&ev, Some(&req), &TdxInputs::default());
    assert!(first_failure(&a.outcomes).is_none(), "{:?}", a.outcomes);
    let quote = a.outcomes.iter().find(|o| o.check == Check::Quote).unwrap();
    assert_eq!(quote.status, Status::Skipped);
    assert!(quote.detail.contains("cannot be verified off the platform"));
    // Another MRTD, another RTMR, another AK: each refused by name.
    let mut other = req.clone();
    other.mrtds = vec![[0x11; 48]];
    let f1 = first_failure(&assess_tdx(&ev, Some(&other), &TdxInputs::default()).outcomes).unwrap();
    assert_eq!(f1.check, Check::Mrtd);
    assert!(f1.detail.contains(&hex::encode(f.mrtd)), "{f1}");
    let mut other = req.clone();
    other.rtmrs[3] = Some([0x22; 48]);
    let f2 = first_failure(&assess_tdx(&ev, Some(&other), &TdxInputs::default()).outcomes).unwrap();
    assert_eq!(f2.check, Check::Rtmr);
    assert!(
        f2.detail.contains("RTMR3") && f2.detail.contains(&"22".repeat(48)),
        "{f2}"
    );
    let mut wrong = ak.clone();
    wrong.n[5] ^= 1;
    let ev2 = Evidence::AzureHcl {
        hcl: h,
        ak: AkState::Rsa(wrong),
    };
    let f3 = first_failure(&assess_tdx(&ev2, Some(&req), &TdxInputs::default()).outcomes).unwrap();
    assert_eq!(f3.check, Check::AttestationKey);
    // A requirement for a verified TD quote is not met by an HCL report
    // (on a bare TDX guest the vTPM, and what its NV holds, is the host's).
    let quote_req = TdxRequirement {
        evidence: TdxEvidence::TdQuote,
        ..req.clone()
    };
    let f5 =
        first_failure(&assess_tdx(&ev, Some(&quote_req), &TdxInputs::default()).outcomes).unwrap();
    assert_eq!(f5.check, Check::Evidence, "{f5}");
    assert!(f5.detail.contains("td-quote"), "{f5}");
    assert_ne!(quote_req.digest(), req.digest());
}

#[test]
fn every_bit_flip_of_the_report_data_and_runtime_data_is_rejected() {
    let b = hcl_tdx();
    let h = HclReport::parse(&b).unwrap();
    let rs = u32::from_le_bytes(b[8..12].try_into().unwrap()) as usize;
    // report_data at TDREPORT offset 128 (file offset 32 + 128), runtime
    // data from 1236 to the report size.
    let ranges = [(32 + 128, 32 + 192), (1236, rs)];
    for (a, z) in ranges {
        for bit in a * 8..z * 8 {
            let mut m = b.clone();
            m[bit / 8] ^= 1 << (bit % 8);
            let ok = HclReport::parse(&m)
                .map(|h| h.check_binding().is_ok() && h.ak_pub().is_ok())
                .unwrap_or(false);
            assert!(!ok, "byte {} bit {} accepted", bit / 8, bit % 8);
        }
    }
    assert!(h.check_binding().is_ok());
}
