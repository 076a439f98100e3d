//! The configfs-tsm and RTMR edges as plain files (issue 15): a temporary
//! directory stands in for `/sys/kernel/config/tsm/report/<entry>` and
//! returns the sample TD quote; a FIFO as `outblob` lets a "racing writer"
//! change `generation` while sealroot reads. No TDX hardware needed.

use sealroot::attest::check::{first_failure, Check, Status};
use sealroot::attest::evidence::Evidence;
use sealroot::attest::tdx_assess::{assess_tdx, rtmr_lock_digest, tdx_report_data, TdxInputs};
use sealroot::attest::tdx_quote::{parse_time, Collateral, StalePolicy};
use sealroot::attest::tdx_report::parse_quote;
use sealroot::attest::tdx_requirement::TdxRequirement;
use sealroot::sys::tsm;
use std::path::Path;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tdx");

fn quote() -> Vec<u8> {
    std::fs::read(Path::new(FIXTURES).join("tdx_quote")).unwrap()
}

/// An entry as the kernel shows it after one `inblob` write.
fn entry(dir: &Path, provider: &str, generation: &str) -> std::path::PathBuf {
    let e = dir.join("sealroot-test");
    std::fs::create_dir(&e).unwrap();
    std::fs::write(e.join("provider"), format!("{provider}\n")).unwrap();
    std::fs::write(e.join("generation"), format!("{generation}\n")).unwrap();
    std::fs::write(e.join("inblob"), b"").unwrap();
    std::fs::write(e.join("outblob"), quote()).unwrap();
    e
}

#[test]
fn a_request_writes_the_report_data_and_returns_the_quote() {
    let dir = tempfile::tempdir().unwrap();
    let e = entry(dir.path(), "tdx_guest", "1");
    let rd = tdx_report_data(&[7; 32], &[9; 32]);
    let r = tsm::request(&e, &rd).unwrap();
    assert_eq!(r.provider, "tdx_guest");
    assert_eq!(std::fs::read(e.join("inblob")).unwrap(), rd.to_vec());
    assert_eq!(r.outblob, quote());
    assert!(tsm::check_generation(&r).is_ok());

    // Nonce binding: the sample quote was not made for this report data,
    // so it is refused as stale or replayed, naming both values.
    let c = Collateral::parse(
        &std::fs::read(Path::new(FIXTURES).join("tdx_quote_collateral.json")).unwrap(),
    )
    .unwrap();
    let inputs = TdxInputs {
        collateral: Some(&c),
        rtc: parse_time("2025-06-25T00:00:00Z").unwrap(),
        stale: StalePolicy::Refuse,
    };
    let ev = Evidence::TdxQuote {
        quote: r.outblob.clone(),
        expected: rd,
        source: "test".into(),
    };
    let a = assess_tdx(&ev, Some(&TdxRequirement::default()), &inputs);
    let f = first_failure(&a.outcomes).unwrap();
    assert_eq!(f.check, Check::ReportData);
    assert!(f.detail.contains(&hex::encode(rd)), "{f}");
    // The same quote for the report data it carries passes every check.
    let own = parse_quote(&r.outblob).unwrap().fields.report_data;
    let ev = Evidence::TdxQuote {
        quote: r.outblob,
        expected: own,
        source: "test".into(),
    };
    let a = assess_tdx(&ev, Some(&TdxRequirement::default()), &inputs);
    assert!(first_failure(&a.outcomes).is_none(), "{:?}", a.outcomes);
    let q = a.outcomes.iter().find(|o| o.check == Check::Quote).unwrap();
    assert_eq!(q.status, Status::Pass);
}

#[test]
fn another_writer_is_detected_through_generation() {
    let dir = tempfile::tempdir().unwrap();
    // Someone wrote inblob before us: generation 2 after our one write.
    let e = entry(dir.path(), "tdx_guest", "2");
    let r = tsm::request(&e, &[0; 64]).unwrap();
    let err = tsm::check_generation(&r).unwrap_err();
    assert!(
        err.contains("is 2 after our one inblob write, expected 1"),
        "{err}"
    );
}

#[test]
fn a_racing_writer_during_the_outblob_read_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let e = entry(dir.path(), "tdx_guest", "1");
    let fifo = e.join("outblob");
    std::fs::remove_file(&fifo).unwrap();
    let st = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(st.success());
    let gen = e.join("generation");
    // The "racing writer": once sealroot opens outblob (after it read the
    // generation its own write made), another inblob write bumps the
    // generation before the quote comes out.
    let writer = std::thread::spawn(move || {
        let mut f = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
        std::fs::write(&gen, b"2\n").unwrap();
        std::io::Write::write_all(&mut f, &quote()).unwrap();
    });
    let r = tsm::request(&e, &[1; 64]).unwrap();
    writer.join().unwrap();
    assert_eq!((r.generation_written, r.generation_read), (1, 2));
    let err = tsm::check_generation(&r).unwrap_err();
    assert!(err.contains("changed from 1 to 2"), "{err}");
}

#[test]
fn entries_are_fresh_and_other_providers_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let e = tsm::create_entry(dir.path(), "x").unwrap();
    // An existing entry may be another process's: refused.
    assert!(tsm::create_entry(dir.path(), "x").is_err());
    tsm::remove_entry(&e);
    assert!(!e.exists());
    let d2 = tempfile::tempdir().unwrap();
    let e = entry(d2.path(), "sev_guest", "1");
    assert_eq!(tsm::request(&e, &[0; 64]).unwrap().provider, "sev_guest");
    // Missing attributes and oversized outblobs are errors naming the path.
    let d3 = tempfile::tempdir().unwrap();
    let e = entry(d3.path(), "tdx_guest", "1");
    std::fs::write(e.join("outblob"), vec![0; 65 * 1024]).unwrap();
    let err = tsm::request(&e, &[0; 64]).unwrap_err().to_string();
    assert!(err.contains("outblob") && err.contains("65536"), "{err}");
    std::fs::remove_file(e.join("generation")).unwrap();
    let err = tsm::request(&e, &[0; 64]).unwrap_err().to_string();
    assert!(err.contains("generation"), "{err}");
    std::fs::write(e.join("generation"), b"x\n").unwrap();
    assert!(tsm::request(&e, &[0; 64]).is_err());
}

#[test]
fn rtmr3_mirror_writes_the_lock_digest_and_skips_a_missing_attribute() {
    let dir = tempfile::tempdir().unwrap();
    let attr = dir.path().join("rtmr3:sha384");
    assert!(!tsm::extend_rtmr(&attr, &[0; 48]).unwrap());
    assert!(!attr.exists(), "nothing is created");
    std::fs::write(&attr, b"").unwrap();
    let d = rtmr_lock_digest(&[5; 32]);
    assert!(tsm::extend_rtmr(&attr, &d).unwrap());
    assert_eq!(std::fs::read(&attr).unwrap(), d.to_vec());
    assert_ne!(rtmr_lock_digest(&[5; 32]), rtmr_lock_digest(&[6; 32]));
}
