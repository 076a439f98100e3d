//! Certificate files (PEM bundles or DER) and AMD chain validation never
//! panic, and nothing that is not signed by a pinned AMD ARK is accepted.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sealroot::attest::snp_report as report;

fuzz_target!(|data: &[u8]| {
    if let Ok(ders) = report::cert_file_to_der(data) {
        let (vceks, ca) = ders.split_at(ders.len().min(1));
        let _ = report::validate_certs(vceks, ca);
        let _ = report::validate_certs(&[], &ders);
    }
});
