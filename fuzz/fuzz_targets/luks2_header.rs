//! The LUKS2 header validator never panics, on raw metadata bytes or on
//! arbitrary JSON inside two correctly checksummed binary headers (which a
//! fuzzer could not forge), and whatever it accepts keeps its promises:
//! one aes-xts-plain64 segment past the keyslots area, keyslot areas inside
//! it, KDF costs under the ceilings.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sealroot::formats::luks2::{self, Header, Kdf};
use sealroot::pcr::sha256;

/// A real header (cryptsetup defaults, 16 KiB metadata): its binary
/// headers frame the JSON of the second mode.
const TEMPLATE: &[u8] = include_bytes!("../../tests/fixtures/luks2-default-header.bin");
const DEVICE: u64 = 32 << 20;

/// `json` as the JSON area of both copies of the template, resealed.
fn framed(json: &[u8]) -> Option<Vec<u8>> {
    let hs = 16384;
    if json.len() >= hs - 4096 {
        return None;
    }
    let mut out = TEMPLATE.to_vec();
    for copy in out.chunks_mut(hs) {
        copy[4096..].fill(0);
        copy[4096..4096 + json.len()].copy_from_slice(json);
        copy[448..512].fill(0);
        let sum = sha256(copy);
        copy[448..480].copy_from_slice(&sum);
    }
    Some(out)
}

fn promises(h: &Header) {
    assert_eq!(h.segment.encryption, luks2::CIPHER);
    assert!(h.segment.offset >= h.copy_len() && h.segment.offset < DEVICE);
    for k in &h.keyslots {
        assert!(k.area_offset >= 2 * h.hdr_size);
        assert!(k.area_offset + k.area_size <= h.copy_len());
        match k.kdf {
            Kdf::Pbkdf2 { iterations, .. } => assert!(iterations <= luks2::MAX_PBKDF2_ITERATIONS),
            Kdf::Argon2 { memory_kib, .. } => assert!(memory_kib <= luks2::MAX_ARGON2_MEMORY_KIB),
        }
    }
    assert_eq!(h.extents().len(), 2 + h.keyslots.len());
}

fuzz_target!(|data: &[u8]| {
    let _ = luks2::hdr_size(data);
    if let Ok(h) = luks2::validate(data, DEVICE) {
        promises(&h);
    }
    if let Some(b) = framed(data) {
        if let Ok(h) = luks2::validate(&b, DEVICE) {
            promises(&h);
        }
    }
});
