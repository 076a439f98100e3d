//! The blob/token JSON parser never panics, and whatever it accepts
//! round-trips to an equal blob.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sealroot::formats::blob::Blob;

fuzz_target!(|data: &[u8]| {
    if let Ok(b) = Blob::from_json(data, "fuzz") {
        let again = Blob::from_value(b.to_value(), "fuzz").expect("re-parse of own output");
        assert_eq!(b, again);
    }
});
