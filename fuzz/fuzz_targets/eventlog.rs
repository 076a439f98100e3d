//! The TCG2 event-log parser never panics on untrusted bytes; whatever it
//! accepts replays, describes and predicts without panicking, and parsing
//! is deterministic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sealroot::pcr::{eventlog, predict};

fuzz_target!(|data: &[u8]| {
    let Ok(log) = eventlog::parse(data) else {
        return;
    };
    assert_eq!(eventlog::parse(data).as_ref(), Ok(&log));
    assert!(log.events.len() <= eventlog::MAX_EVENTS);
    for e in &log.events {
        assert!(e.pcr <= sealroot::pcr::MAX_PCR);
        let _ = e.describe();
    }
    if let Ok(r) = log.replay() {
        let sub = predict::Substitution {
            initrd: Some([1; 32]),
            kernel: Some([2; 32]),
        };
        if let Ok(p) = predict::predict(&log, &sub) {
            // Substitution only touches PCRs 4 and 9.
            for i in (0..24).filter(|&i| i != 4 && i != 9) {
                assert_eq!(p.replay.values[i], r.values[i]);
            }
        }
    }
    // Any bytes as a PE image: errors, never panics.
    let _ = predict::authenticode_sha256(data);
});
