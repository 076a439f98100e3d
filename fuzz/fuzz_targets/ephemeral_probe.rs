//! The ephemeral guard's view of a device's first bytes never panics, and
//! its decision keeps the promises of docs/ephemeral.md whatever the bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sealroot::formats::probe::{decide, probe, Allowed, Content, LuksFacts};

fuzz_target!(|data: &[u8]| {
    let content = probe(data);
    if content == Content::Blank {
        assert!(data.iter().all(|&b| b == 0));
    }
    let _ = sealroot::formats::probe::parse_luks_header(data);
    for wipe in [false, true] {
        for facts in [
            None,
            Some(LuksFacts {
                loaded: true,
                keyslots: 0,
                tokens: vec![],
            }),
            Some(LuksFacts {
                loaded: true,
                keyslots: 1,
                tokens: vec![],
            }),
            Some(LuksFacts {
                loaded: true,
                keyslots: 0,
                tokens: vec!["sealroot".into()],
            }),
        ] {
            let d = decide(&content, facts.as_ref(), wipe);
            if let (Content::Luks(_), Some(f)) = (&content, &facts) {
                if f.keyslots > 0 || !f.tokens.is_empty() {
                    assert!(d.is_err(), "a protected LUKS volume was allowed");
                }
            }
            if !wipe {
                assert!(
                    !matches!(d, Ok(Allowed::Wipe(_))),
                    "wipe without wipe-existing"
                );
            }
        }
    }
});
