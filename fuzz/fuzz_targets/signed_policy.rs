//! The signed-policy parser (files and LUKS2 tokens, untrusted) never
//! panics; whatever it accepts round-trips to an equal policy, and checking
//! its signature never panics either.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sealroot::formats::signed_policy::SignedPolicy;
use sealroot::pcr::signer::PublicKey;

const KEY: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEBcnXvlnqg74a6yJVvZYqRsEAFEIb
5HHDAdpIydVNXn68QXTajBPr7RvPE7Wt3dZ9M3ZburPNQlU9NpjZ2JaQlQ==
-----END PUBLIC KEY-----";

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = SignedPolicy::from_json(data) {
        let again =
            SignedPolicy::from_json(p.to_json_pretty().as_bytes()).expect("re-parse of own output");
        assert_eq!(p, again);
        let token = SignedPolicy::from_value(p.to_token()).expect("re-parse of own token");
        assert_eq!(p, token);
        let key = PublicKey::from_pem(KEY).expect("fixed key");
        let _ = p.verify(&key);
    }
});
