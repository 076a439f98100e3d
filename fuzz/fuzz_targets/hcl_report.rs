//! The Azure HCL report parser (vTPM NV index 0x01400001) and the SEV-SNP
//! report parser never panic; what they accept is consistent: the hardware
//! report is 1184 bytes, and an accepted SNP report is exactly the bytes
//! that were parsed (no reserved bit silently dropped).
#![no_main]
use libfuzzer_sys::fuzz_target;
use sealroot::attest::azure_hcl::HclReport;
use sealroot::attest::evidence::Certs;
use sealroot::attest::snp_report::{self as report, Report};
use sealroot::attest::snp_requirement::{check_fields, SnpRequirement};

fn snp(raw: &[u8]) {
    if let Ok(r) = Report::parse(raw) {
        assert_eq!(r.raw(), raw);
        let _ = r.view();
        let p = SnpRequirement {
            measurements: vec![[0; 48]],
            min_tcb: Some(report::Tcb::default()),
            guest_policy_forbid: 1 << 16,
            unsigned_ok: true,
            ..SnpRequirement::default()
        };
        let _ = check_fields(&r, &p);
        let (out, product) = report::check_signature(&r, Some(p.signature()), &Certs::default());
        assert!(product.is_none(), "verified without a VCEK: {out:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = HclReport::parse(data) {
        assert_eq!(h.hw_report.len(), 1184);
        assert!(h.runtime_data.len() <= data.len());
        let _ = h.check_binding();
        if let Ok(k) = h.ak_pub() {
            assert!(k.bits() >= 1024);
        }
        let _ = h.vm_configuration();
        snp(&h.hw_report);
    }
    snp(data);
});
