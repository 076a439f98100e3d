//! The LUKS2 volume key's fingerprint (pure): what a version-2 token binds,
//! so a keyslot that "opens" with any secret (a null-cipher keyslot the host
//! wrote) or another volume carrying this one's UUID is told apart from the
//! enrolled volume. A keyed hash under a fixed label: it reveals nothing
//! about the key, and nobody without the key can compute it.

use crate::pcr::Digest;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The label the fingerprint is computed over.
pub const FINGERPRINT_LABEL: &[u8] = b"sealroot volume-key fingerprint v1";

/// HMAC-SHA256 keyed with the volume key (its bytes as libcryptsetup's
/// `crypt_volume_key_get` returns them, 64 bytes for aes-xts-plain64 with
/// a 512-bit key) over [`FINGERPRINT_LABEL`].
pub fn fingerprint(volume_key: &[u8]) -> Digest {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(volume_key).expect("HMAC takes any key");
    m.update(FINGERPRINT_LABEL);
    m.finalize().into_bytes().into()
}

/// Compare in constant time.
pub fn matches(a: &Digest, b: &Digest) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_and_stable() {
        let a = fingerprint(&[1; 64]);
        assert_eq!(a, fingerprint(&[1; 64]));
        assert_ne!(a, fingerprint(&[2; 64]));
        assert_ne!(a, fingerprint(&[1; 32]));
        assert!(matches(&a, &a));
        assert!(!matches(&a, &fingerprint(&[2; 64])));
    }
}
