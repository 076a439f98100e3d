//! The TD quote framing parser never panics, and what it accepts is
//! consistent (the body lies inside the quote, the quote length covers the
//! signature data). Verification of fuzzed bytes against the real
//! collateral never succeeds unless the signed header and TD body are the
//! sample quote's (a valid quote cannot be forged by flipping bits; the
//! unsigned framing around the certification data may vary).
#![no_main]
use libfuzzer_sys::fuzz_target;
use sealroot::attest::tdx_quote::{verify_quote, Collateral, StalePolicy};
use sealroot::attest::tdx_report::{parse_quote, TD10_BODY_LEN};
use std::sync::OnceLock;

const SAMPLE: &[u8] = include_bytes!("../../tests/fixtures/tdx/tdx_quote");
const COLLATERAL: &[u8] = include_bytes!("../../tests/fixtures/tdx/tdx_quote_collateral.json");

fn collateral() -> &'static Collateral {
    static C: OnceLock<Collateral> = OnceLock::new();
    C.get_or_init(|| Collateral::parse(COLLATERAL).expect("sample collateral"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(l) = parse_quote(data) else { return };
    assert!(l.body.end <= l.len && l.len <= data.len());
    assert!(l.body.len() >= TD10_BODY_LEN);
    assert!(data[l.len..].iter().all(|&b| b == 0));
    let _ = l.fields.view();
    // 2025-06-25T00:00:00Z, inside the sample collateral's window.
    if verify_quote(data, collateral(), 1_750_809_600, StalePolicy::Refuse).is_ok() {
        // Header (48 bytes) and TD body: what the quote signature covers.
        let signed = l.body.end;
        assert_eq!(
            &data[..signed],
            &SAMPLE[..signed],
            "a quote with another header or TD body verified"
        );
    }
});
