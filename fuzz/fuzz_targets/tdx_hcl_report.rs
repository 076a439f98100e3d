//! Azure's TDX HCL report (report type 4): the HCL framing, the TDREPORT
//! parser and the TDX requirement checks never panic on any bytes, and an
//! accepted TDREPORT's report data is the HCL report's.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sealroot::attest::azure_hcl::{HclReport, ReportKind};
use sealroot::attest::evidence::{AkState, Evidence};
use sealroot::attest::tdx_assess::{assess_tdx, TdxInputs};
use sealroot::attest::tdx_report::parse_tdreport;
use sealroot::attest::tdx_requirement::{check_fields, TdxRequirement};

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = parse_tdreport(data) {
        let _ = check_fields(&f, &TdxRequirement::default());
    }
    let Ok(h) = HclReport::parse(data) else { return };
    if h.kind == ReportKind::Tdx {
        if let Ok(f) = parse_tdreport(&h.hw_report) {
            assert_eq!(&f.report_data[..], h.report_data());
            let p = TdxRequirement {
                mrtds: vec![[0; 48]],
                rtmrs: [Some([0; 48]), None, None, Some([1; 48])],
                xfam: Some(0),
                ..TdxRequirement::default()
            };
            let _ = check_fields(&f, &p);
            let _ = f.view();
        }
    }
    let a = assess_tdx(
        &Evidence::AzureHcl { hcl: h, ak: AkState::Absent },
        Some(&TdxRequirement::default()),
        &TdxInputs::default(),
    );
    assert!(!a.outcomes.is_empty());
});
