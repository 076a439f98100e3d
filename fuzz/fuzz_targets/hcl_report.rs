//! The Azure HCL report parser (vTPM NV index 0x01400001) and the SEV-SNP
//! report parser never panic; what they accept is consistent: the hardware
//! report is 1184 bytes, and an accepted SNP report is exactly the bytes
//! that were parsed (no reserved bit silently dropped).
#![no_main]
use libfuzzer_sys::fuzz_target;
use sealroot::platform::hcl::HclReport;
use sealroot::platform::report::{self, Report};
use sealroot::platform::{Certs, Policy};

fn snp(raw: &[u8]) {
    if let Ok(r) = Report::parse(raw) {
        assert_eq!(r.raw(), raw);
        let _ = r.view();
        let p = Policy {
            measurements: vec![[0; 48]],
            min_tcb: Some(report::Tcb::default()),
            guest_policy_forbid: 1 << 16,
            unsigned_ok: true,
            ..Policy::default()
        };
        let _ = report::check_fields(&r, &p);
        let (out, product) = report::check_signature(&r, Some(&p), &Certs::default());
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
