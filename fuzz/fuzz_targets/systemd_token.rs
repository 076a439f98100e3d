//! The systemd-tpm2 token parser and the PCR signature JSON lookup never
//! panic on any bytes; what the parser accepts is within its bounds.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sealroot::formats::systemd_token::{find_signature, parse, MAX_BLOB};

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        if let Ok(t) = parse(&v) {
            assert!(t.keyslot <= 31);
            assert!(t.private.len() + t.public.len() <= MAX_BLOB);
            assert!(t.all_pcrs().iter().all(|&p| p < 24));
            if let Some(k) = &t.pubkey {
                let _ = find_signature(data, &t.pubkey_pcrs, k, &t.policy_hash);
            }
        }
    }
});
