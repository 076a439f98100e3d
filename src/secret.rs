//! Secret containers: no `Debug`, no `Clone`, zeroized on drop.
//!
//! Every buffer that holds key material (the LUKS secret, the KEK, a PIN, a
//! recovery key) lives in one of these, so it cannot be logged by accident
//! and does not outlive its use.

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// A 32-byte key (LUKS secret or key-encryption key).
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct Key32(Box<[u8; 32]>);

impl Key32 {
    pub fn from_bytes(mut b: [u8; 32]) -> Self {
        let k = Key32(Box::new(b));
        b.zeroize();
        k
    }

    /// Copy out of a slice that must be exactly 32 bytes long.
    pub fn from_slice(s: &[u8]) -> Option<Self> {
        if s.len() != 32 {
            return None;
        }
        let mut k = Key32(Box::new([0; 32]));
        k.0.copy_from_slice(s);
        Some(k)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// Variable-length secret bytes (a passphrase or key file's contents).
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    pub fn new(v: Vec<u8>) -> Self {
        SecretBytes(v)
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A LUKS2 volume key, as libcryptsetup's `crypt_volume_key_get` returns it
/// (64 bytes for aes-xts-plain64 with a 512-bit key, 96 with
/// hmac(sha256) integrity). Wiped on drop.
pub struct VolumeKey(SecretBytes);

impl VolumeKey {
    pub fn new(bytes: Vec<u8>) -> Self {
        VolumeKey(SecretBytes::new(bytes))
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl From<SecretBytes> for VolumeKey {
    fn from(b: SecretBytes) -> Self {
        VolumeKey(b)
    }
}

/// Fresh 32 random bytes from the kernel RNG, XORed with `extra` when given
/// (the TPM's RNG). XOR keeps the result uniform if either source is.
pub fn random_key(extra: Option<&[u8]>) -> crate::Result<Key32> {
    let mut buf = Zeroizing::new([0u8; 32]);
    getrandom::fill(&mut buf[..])
        .map_err(|e| crate::Error::Internal(format!("kernel RNG failed: {e}")))?;
    if let Some(extra) = extra {
        for (b, x) in buf.iter_mut().zip(extra.iter()) {
            *b ^= x;
        }
    }
    Ok(Key32::from_bytes(*buf))
}

/// Random bytes from the kernel RNG (nonces, not secrets).
pub fn random_bytes<const N: usize>() -> crate::Result<[u8; N]> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf)
        .map_err(|e| crate::Error::Internal(format!("kernel RNG failed: {e}")))?;
    Ok(buf)
}

/// Overwrite 256 KiB of the stack below the caller with zeros. Called when a
/// command has finished, so copies that library code (tss-esapi's
/// by-value TPM2B structs, cipher key schedules) left in dead stack frames
/// do not outlive the command.
#[inline(never)]
pub fn scrub_stack() {
    let mut buf = [0u8; 256 * 1024];
    buf.zeroize();
    std::hint::black_box(&buf);
}

/// The modhex alphabet systemd uses for recovery keys: unambiguous and the
/// same on every keyboard layout.
const MODHEX: &[u8; 16] = b"cbdefghijklnrtuv";

/// A recovery key: 256 random bits as 8 dash-separated groups of 8 modhex
/// characters. The whole string (with dashes) is the LUKS passphrase.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct RecoveryKey(String);

impl RecoveryKey {
    pub fn generate() -> crate::Result<Self> {
        let raw = random_key(None)?;
        Ok(Self::from_key(&raw))
    }

    fn from_key(raw: &Key32) -> Self {
        let mut s = String::with_capacity(71);
        for (i, b) in raw.as_bytes().iter().enumerate() {
            if i > 0 && i % 4 == 0 {
                s.push('-');
            }
            s.push(MODHEX[(b >> 4) as usize] as char);
            s.push(MODHEX[(b & 0xf) as usize] as char);
        }
        RecoveryKey(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_key_shape() {
        let k = RecoveryKey::from_key(&Key32::from_bytes([0xab; 32]));
        let s = k.as_str();
        assert_eq!(s.len(), 71);
        assert_eq!(s.split('-').count(), 8);
        assert!(s.split('-').all(|g| g.len() == 8));
        assert!(s.starts_with("lnlnlnln-"));
    }

    #[test]
    fn random_keys_differ_and_mix() {
        let a = random_key(None).unwrap();
        let b = random_key(Some(&[0xff; 32])).unwrap();
        assert_ne!(a.as_bytes(), b.as_bytes());
        assert!(Key32::from_slice(&[1; 31]).is_none());
    }
}
