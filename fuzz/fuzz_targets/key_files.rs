//! Key and PIN files as people store them: reading never panics, a key
//! file loses at most a recovery key's one line ending, a PIN file at most
//! its one line ending, and an accepted PIN holds no control or invisible
//! character.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sealroot::formats::keyfile;

fuzz_target!(|data: &[u8]| {
    let key = keyfile::key_from_file(data);
    assert!(data.starts_with(key));
    if key.len() != data.len() {
        assert!(keyfile::is_recovery_key(key));
        assert!(matches!(&data[key.len()..], b"\n" | b"\r\n"));
    }
    let pin = keyfile::pin_from_file(data);
    assert!(data.starts_with(pin) && data.len() - pin.len() <= 2);
    if keyfile::pin_problem(pin).is_none() {
        assert!(!pin.is_empty());
        if let Ok(s) = std::str::from_utf8(pin) {
            assert!(!s.chars().any(|c| c.is_control() || c == '\u{feff}' || c == '\u{200b}'));
        } else {
            assert!(!pin.iter().any(u8::is_ascii_control));
        }
    }
});
