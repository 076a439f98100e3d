//! The AES-256-GCM envelope around the LUKS secret (pure).
//!
//! The TPM seals only a key-encryption key (KEK); the LUKS secret is
//! encrypted under it. The associated data binds the volume UUID, the format
//! version, the policy digest, the keyslot, the platform requirement and
//! (version 2) the volume key's fingerprint, so a token copied onto another
//! volume, or edited to claim another policy, keyslot or volume key, fails
//! to decrypt.

use crate::secret::Key32;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use zeroize::Zeroizing;

pub const NONCE_LEN: usize = 12;
pub const TAG_LEN: usize = 16;
/// Ciphertext length for a 32-byte secret.
pub const CIPHERTEXT_LEN: usize = 32 + TAG_LEN;

/// The context the envelope is bound to.
pub struct Binding<'a> {
    pub version: u32,
    pub volume_uuid: &'a str,
    pub policy_digest: &'a [u8; 32],
    pub keyslot: u32,
    /// Digest of the blob's platform requirement, when it has one.
    pub platform: Option<[u8; 32]>,
    /// The volume key's fingerprint (version 2 on).
    pub fingerprint: Option<[u8; 32]>,
    /// Where the volume key comes from, when not the image
    /// ([`crate::formats::key_origin::KeyOrigin::token_field`]).
    pub key_origin: Option<&'static str>,
    /// A re-keying token's epoch (docs/first-boot.md#replayed-headers).
    pub rekey_epoch: Option<u64>,
}

impl Binding<'_> {
    /// Canonical associated data: a tag, then length-prefixed fields.
    pub fn aad(&self) -> Vec<u8> {
        let uuid = self.volume_uuid.to_ascii_lowercase();
        let mut v = Vec::with_capacity(96);
        v.extend_from_slice(b"sealroot-envelope\0");
        v.extend_from_slice(&self.version.to_be_bytes());
        v.extend_from_slice(&(uuid.len() as u32).to_be_bytes());
        v.extend_from_slice(uuid.as_bytes());
        v.extend_from_slice(self.policy_digest);
        v.extend_from_slice(&self.keyslot.to_be_bytes());
        if let Some(p) = &self.platform {
            v.extend_from_slice(b"platform\0");
            v.extend_from_slice(p);
        }
        if let Some(f) = &self.fingerprint {
            v.extend_from_slice(b"volume-key\0");
            v.extend_from_slice(f);
        }
        if let Some(o) = self.key_origin {
            v.extend_from_slice(b"key-origin\0");
            v.extend_from_slice(&(o.len() as u32).to_be_bytes());
            v.extend_from_slice(o.as_bytes());
        }
        if let Some(e) = self.rekey_epoch {
            v.extend_from_slice(b"rekey-epoch\0");
            v.extend_from_slice(&e.to_be_bytes());
        }
        v
    }
}

/// Encrypt `secret` under `kek`.
pub fn seal(kek: &Key32, nonce: &[u8; NONCE_LEN], secret: &Key32, b: &Binding) -> Vec<u8> {
    let cipher = Aes256Gcm::new_from_slice(kek.as_bytes()).expect("32-byte key");
    let aad = b.aad();
    cipher
        .encrypt(
            &Nonce::from(*nonce),
            Payload {
                msg: secret.as_bytes(),
                aad: &aad,
            },
        )
        .expect("AES-GCM encryption of 32 bytes cannot fail")
}

/// Decrypt and authenticate; `None` when anything does not match.
pub fn open(kek: &Key32, nonce: &[u8], ciphertext: &[u8], b: &Binding) -> Option<Key32> {
    let nonce: [u8; NONCE_LEN] = nonce.try_into().ok()?;
    if ciphertext.len() != CIPHERTEXT_LEN {
        return None;
    }
    let cipher = Aes256Gcm::new_from_slice(kek.as_bytes()).ok()?;
    let aad = b.aad();
    let plain = Zeroizing::new(
        cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .ok()?,
    );
    Key32::from_slice(&plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding<'a>(uuid: &'a str, pd: &'a [u8; 32]) -> Binding<'a> {
        Binding {
            version: 1,
            volume_uuid: uuid,
            policy_digest: pd,
            keyslot: 1,
            platform: None,
            fingerprint: None,
            key_origin: None,
            rekey_epoch: None,
        }
    }

    #[test]
    fn roundtrip_and_every_bit_flip_fails() {
        let kek = Key32::from_bytes([7; 32]);
        let secret = Key32::from_bytes([9; 32]);
        let pd = [3u8; 32];
        let b = binding("1111-2222", &pd);
        let nonce = [5u8; 12];
        let ct = seal(&kek, &nonce, &secret, &b);
        assert_eq!(ct.len(), CIPHERTEXT_LEN);
        assert_eq!(open(&kek, &nonce, &ct, &b).unwrap().as_bytes(), &[9; 32]);
        for i in 0..ct.len() * 8 {
            let mut c = ct.clone();
            c[i / 8] ^= 1 << (i % 8);
            assert!(open(&kek, &nonce, &c, &b).is_none(), "bit {i}");
        }
        for i in 0..nonce.len() * 8 {
            let mut n = nonce;
            n[i / 8] ^= 1 << (i % 8);
            assert!(open(&kek, &n, &ct, &b).is_none(), "nonce bit {i}");
        }
    }

    #[test]
    fn binding_is_enforced() {
        let kek = Key32::from_bytes([7; 32]);
        let secret = Key32::from_bytes([9; 32]);
        let pd = [3u8; 32];
        let nonce = [5u8; 12];
        let ct = seal(&kek, &nonce, &secret, &binding("aaaa", &pd));
        assert!(open(&kek, &nonce, &ct, &binding("bbbb", &pd)).is_none());
        assert!(open(&kek, &nonce, &ct, &binding("AAAA", &pd)).is_some());
        let pd2 = [4u8; 32];
        assert!(open(&kek, &nonce, &ct, &binding("aaaa", &pd2)).is_none());
        let mut b = binding("aaaa", &pd);
        b.keyslot = 2;
        assert!(open(&kek, &nonce, &ct, &b).is_none());
        let mut b = binding("aaaa", &pd);
        b.version = 2;
        assert!(open(&kek, &nonce, &ct, &b).is_none());
        assert!(open(&kek, &nonce[..11], &ct, &binding("aaaa", &pd)).is_none());
        assert!(open(&kek, &nonce, &ct[..40], &binding("aaaa", &pd)).is_none());
    }

    #[test]
    fn platform_requirement_is_bound() {
        let kek = Key32::from_bytes([7; 32]);
        let secret = Key32::from_bytes([9; 32]);
        let pd = [3u8; 32];
        let nonce = [5u8; 12];
        // Without a platform requirement the associated data is unchanged
        // (blobs from before the field existed still open).
        let plain = binding("aaaa", &pd);
        assert!(!plain.aad().windows(9).any(|w| w == b"platform\0"));
        let mut with = binding("aaaa", &pd);
        with.platform = Some([1; 32]);
        let ct = seal(&kek, &nonce, &secret, &with);
        assert!(open(&kek, &nonce, &ct, &with).is_some());
        // Requirement removed or edited: the envelope does not open.
        assert!(open(&kek, &nonce, &ct, &plain).is_none());
        let mut other = binding("aaaa", &pd);
        other.platform = Some([2; 32]);
        assert!(open(&kek, &nonce, &ct, &other).is_none());
    }
}
