//! `--pcrs` parsing never panics; accepted lists are sorted, unique, in range.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(v) = sealroot::pcr::parse_list(s) {
            assert!(!v.is_empty());
            assert!(v.windows(2).all(|w| w[0] < w[1]));
            assert!(v.iter().all(|&p| p <= sealroot::pcr::MAX_PCR));
        }
    }
});
