//! Opening a LUKS2 PBKDF2 keyslot in process (pure): PBKDF2 → the keyslot
//! area decrypted with aes-xts-plain64 → the LUKS1 anti-forensic merge.
//!
//! libcryptsetup does the same, but Debian 12's libcryptsetup 2.6.1 runs an
//! OpenSSL 3 algorithm fetch for every hash of the anti-forensic merge
//! (4000 stripes), about 8 ms of a 26 ms unlock. The key this module
//! yields is never trusted on its own: the edge has libcryptsetup verify
//! it against the header's digest (`crypt_volume_key_verify`), and falls
//! back to libcryptsetup's own keyslot path when it does not verify. So a
//! mistake here costs time, never a wrong key. Only the keyslots the
//! allow-list passed come here, and only PBKDF2 ones (sealroot's).
//!
//! Formats: LUKS2 On-Disk Format Specification, section 3.2 (keyslot
//! object: `area` of type `raw`, `af` of type `luks1`, `kdf` of type
//! `pbkdf2`); the AF-splitter is LUKS1's (LUKS On-Disk Format
//! Specification 1.2.3, section 2.4: `AFmerge` and `diffuse`). The keyslot
//! area is encrypted in 512-byte sectors whose IV is the sector's index from
//! the start of the area (`plain64`: 64-bit little-endian).

use super::{Kdf, Keyslot};
use aes::cipher::KeyInit;
use aes::Aes256;
use sha2::{Sha256, Sha512};
use xts_mode::{get_tweak_default, Xts128};
use zeroize::Zeroizing;

/// The keyslot area's sector size (cryptsetup's `SECTOR_SIZE`).
pub const AREA_SECTOR: usize = 512;
/// Anti-forensic stripes (cryptsetup writes only these).
pub const STRIPES: usize = 4000;
/// Bytes of the area's XTS key (two AES-256 keys).
const AREA_KEY_LEN: usize = 64;
/// The most PBKDF2 iterations opened here: sealroot's keyslots have 1000.
/// A costlier keyslot goes to libcryptsetup alone, so that a wrong key
/// never pays for the derivation twice.
pub const MAX_ITERATIONS: u32 = 10_000;

/// Bytes of `keyslot`'s area that hold the split key: `key_size` ×
/// [`STRIPES`], rounded up to whole sectors.
pub fn split_len(keyslot: &Keyslot) -> usize {
    let n = keyslot.key_size as usize * STRIPES;
    n.div_ceil(AREA_SECTOR) * AREA_SECTOR
}

/// The volume key `secret` opens in `keyslot`, given the first
/// [`split_len`] bytes of its area (`area`, still encrypted). `None` for a
/// keyslot that is not PBKDF2 with at most [`MAX_ITERATIONS`], whose AF
/// hash is not sha256/sha512, or whose area is short. Whether the key is
/// right is for the digest to say.
pub fn open(keyslot: &Keyslot, area: &[u8], secret: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let Kdf::Pbkdf2 {
        hash,
        iterations,
        salt,
    } = &keyslot.kdf
    else {
        return None;
    };
    if *iterations > MAX_ITERATIONS {
        return None;
    }
    let len = split_len(keyslot);
    if area.len() < len {
        return None;
    }
    let mut area_key = Zeroizing::new([0u8; AREA_KEY_LEN]);
    match hash.as_str() {
        "sha256" => pbkdf2::pbkdf2_hmac::<Sha256>(secret, salt, *iterations, &mut *area_key),
        "sha512" => pbkdf2::pbkdf2_hmac::<Sha512>(secret, salt, *iterations, &mut *area_key),
        _ => return None,
    }
    let mut split = Zeroizing::new(area[..len].to_vec());
    decrypt_area(&mut split, &area_key);
    let key_size = keyslot.key_size as usize;
    af_merge(&split[..key_size * STRIPES], key_size, &keyslot.af_hash)
}

/// Decrypt `area` in place: aes-xts-plain64, 512-byte sectors, IVs from 0.
fn decrypt_area(area: &mut [u8], key: &[u8; AREA_KEY_LEN]) {
    let (k1, k2) = key.split_at(AREA_KEY_LEN / 2);
    let xts = Xts128::new(
        Aes256::new_from_slice(k1).expect("32-byte key"),
        Aes256::new_from_slice(k2).expect("32-byte key"),
    );
    xts.decrypt_area(area, AREA_SECTOR, 0, get_tweak_default);
}

/// LUKS1 `AFmerge`: XOR the stripes together, diffusing the running block
/// with `hash` after each but the last. `None` for another hash.
pub fn af_merge(split: &[u8], key_size: usize, hash: &str) -> Option<Zeroizing<Vec<u8>>> {
    let stripes = split.len() / key_size;
    let mut block = Zeroizing::new(vec![0u8; key_size]);
    for (i, stripe) in split.chunks_exact(key_size).enumerate() {
        xor(&mut block, stripe);
        if i + 1 < stripes {
            match hash {
                "sha256" => diffuse::<Sha256>(&mut block),
                "sha512" => diffuse::<Sha512>(&mut block),
                _ => return None,
            }
        }
    }
    Some(block)
}

fn xor(into: &mut [u8], from: &[u8]) {
    for (a, b) in into.iter_mut().zip(from) {
        *a ^= b;
    }
}

/// LUKS1 `diffuse`: each digest-sized piece of `block` (and the short one
/// at the end) is replaced by H(be32(index) ‖ piece), truncated to its
/// length.
fn diffuse<H: sha2::Digest>(block: &mut [u8]) {
    let size = <H as sha2::Digest>::output_size();
    for (i, piece) in block.chunks_mut(size).enumerate() {
        let mut h = H::new();
        h.update((i as u32).to_be_bytes());
        h.update(&*piece);
        let d = Zeroizing::new(h.finalize().to_vec());
        let n = piece.len();
        piece.copy_from_slice(&d[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    /// LUKS1 `AFsplit`, the inverse of [`af_merge`], for the tests: random
    /// stripes but the last, which makes the merge come out as `key`.
    fn af_split(key: &[u8], hash: &str, seed: u8) -> Vec<u8> {
        let n = key.len();
        let mut out = Vec::with_capacity(n * STRIPES);
        let mut block = vec![0u8; n];
        for i in 0..STRIPES - 1 {
            let stripe: Vec<u8> = (0..n)
                .map(|j| (i as u8).wrapping_mul(31) ^ (j as u8) ^ seed)
                .collect();
            xor(&mut block, &stripe);
            match hash {
                "sha256" => diffuse::<Sha256>(&mut block),
                _ => diffuse::<Sha512>(&mut block),
            }
            out.extend_from_slice(&stripe);
        }
        let mut last = block.clone();
        xor(&mut last, key);
        out.extend_from_slice(&last);
        out
    }

    #[test]
    fn merge_inverts_split_for_both_hashes_and_key_sizes() {
        for hash in ["sha256", "sha512"] {
            for n in [64usize, 96] {
                let key: Vec<u8> = (0..n as u8).collect();
                let split = af_split(&key, hash, 7);
                assert_eq!(af_merge(&split, n, hash).unwrap().as_slice(), &key[..]);
                // Any flipped bit anywhere changes the key.
                let mut bad = split.clone();
                bad[n * 1234 + 5] ^= 1;
                assert_ne!(af_merge(&bad, n, hash).unwrap().as_slice(), &key[..]);
            }
        }
        assert!(af_merge(&[0; 64 * 2], 64, "sha1").is_none());
    }

    #[test]
    fn diffuse_hashes_each_piece_with_its_index() {
        // 40 bytes with SHA-256: a 32-byte piece and an 8-byte one.
        let mut block = [0xabu8; 40];
        diffuse::<Sha256>(&mut block);
        let mut h = Sha256::new();
        h.update(0u32.to_be_bytes());
        h.update([0xab; 32]);
        assert_eq!(&block[..32], &h.finalize()[..]);
        let mut h = Sha256::new();
        h.update(1u32.to_be_bytes());
        h.update([0xab; 8]);
        assert_eq!(&block[32..], &h.finalize()[..8]);
    }

    #[test]
    fn split_len_covers_whole_sectors() {
        let ks = |key_size| Keyslot {
            id: 0,
            key_size,
            area_offset: 32768,
            area_size: 258048,
            af_hash: "sha512".into(),
            kdf: Kdf::Pbkdf2 {
                hash: "sha512".into(),
                iterations: 1000,
                salt: vec![0; 32],
            },
        };
        assert_eq!(split_len(&ks(64)), 256_000);
        assert_eq!(split_len(&ks(96)), 384_000);
        // Not PBKDF2, or a short area: not opened here.
        let mut argon = ks(64);
        argon.kdf = Kdf::Argon2 {
            kind: super::super::Argon2Kind::Id,
            time: 4,
            memory_kib: 1024,
            cpus: 1,
        };
        assert!(open(&argon, &[0; 256_000], b"x").is_none());
        assert!(open(&ks(64), &[0; 1000], b"x").is_none());
        let mut costly = ks(64);
        costly.kdf = Kdf::Pbkdf2 {
            hash: "sha512".into(),
            iterations: MAX_ITERATIONS + 1,
            salt: vec![0; 32],
        };
        assert!(open(&costly, &[0; 256_000], b"x").is_none());
    }
}
