//! PCR list parsing, extend arithmetic and mismatch reports (pure).
//!
//! Everything here is plain arithmetic over SHA-256 digests so that the
//! policy a volume is sealed to can be predicted, compared and explained
//! without touching a TPM. The TCG event log lives here too: it is the
//! record of the extends, and prediction and explanations replay it.

pub mod eventlog;
pub mod explain;
pub mod policy;
pub mod predict;
pub mod selfpcr;
pub mod signer;

use sha2::{Digest as _, Sha256};

pub use crate::error::{Mismatch, PcrDiff};

/// A SHA-256 PCR value or event digest.
pub type Digest = [u8; 32];

/// The only bank sealroot seals to today.
pub const BANK_SHA256: &str = "sha256";

/// Highest PCR index on a PC-client TPM.
pub const MAX_PCR: u32 = 23;

/// sealroot's own PCR: kernel command line, sealroot's configuration, then
/// the lock. Not resettable, not used by the firmware, and outside the
/// range that shim/grub/systemd-stub extend on the boot paths we support.
pub const SELF_PCR: u32 = 15;

/// Default firmware PCRs for a confidential VM: 0 (firmware code), 4 (boot
/// loader and kernel image), 7 (Secure Boot state and authorities) and
/// 9 (initrd, and with OVMF direct boot the command line). sealroot's own
/// PCR is always added on top.
pub const DEFAULT_PCRS: &[u32] = &[0, 4, 7, 9];

/// Parse `"0,4,7"` (ranges like `"0-7"` are accepted too) into a sorted,
/// de-duplicated list. The self PCR is *not* added here.
pub fn parse_list(s: &str) -> Result<Vec<u32>, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty PCR list".into());
    }
    let mut out = Vec::new();
    for part in s.split(',') {
        let part = part.trim();
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (parse_index(a)?, parse_index(b)?),
            None => {
                let i = parse_index(part)?;
                (i, i)
            }
        };
        if lo > hi {
            return Err(format!("bad PCR range {part:?}"));
        }
        out.extend(lo..=hi);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

fn parse_index(s: &str) -> Result<u32, String> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || s.len() > 2 {
        return Err(format!("bad PCR index {s:?}"));
    }
    let i: u32 = s.parse().map_err(|_| format!("bad PCR index {s:?}"))?;
    if i > MAX_PCR {
        return Err(format!("PCR index {i} out of range 0-{MAX_PCR}"));
    }
    Ok(i)
}

/// The PCR list with sealroot's own PCR included.
pub fn with_self(pcrs: &[u32]) -> Vec<u32> {
    let mut v = pcrs.to_vec();
    v.push(SELF_PCR);
    v.sort_unstable();
    v.dedup();
    v
}

/// `TPM2_PCR_Extend` on the SHA-256 bank: `H(old || digest)`.
pub fn extend(old: &Digest, digest: &Digest) -> Digest {
    let mut h = Sha256::new();
    h.update(old);
    h.update(digest);
    h.finalize().into()
}

/// SHA-256 of arbitrary bytes.
pub fn sha256(data: &[u8]) -> Digest {
    Sha256::digest(data).into()
}

/// The PCR composite digest PolicyPCR compares: H(value_i ...) in index order.
pub fn composite(values: &[Digest]) -> Digest {
    let mut h = Sha256::new();
    for v in values {
        h.update(v);
    }
    h.finalize().into()
}

/// Compare expected against current values (both in the same index order).
pub fn compare(indexes: &[u32], expected: &[Digest], current: &[Digest]) -> Vec<PcrDiff> {
    indexes
        .iter()
        .zip(expected.iter().zip(current.iter()))
        .filter(|(_, (e, c))| e != c)
        .map(|(&index, (e, c))| PcrDiff {
            index,
            expected: *e,
            current: *c,
            why: None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_and_ranges() {
        assert_eq!(parse_list("0,4,7,9").unwrap(), vec![0, 4, 7, 9]);
        assert_eq!(parse_list(" 9, 0 ,4,4").unwrap(), vec![0, 4, 9]);
        assert_eq!(parse_list("0-3,7").unwrap(), vec![0, 1, 2, 3, 7]);
        assert_eq!(parse_list("23").unwrap(), vec![23]);
    }

    #[test]
    fn rejects_bad_lists() {
        for bad in [
            "", ",", "24", "-1", "a", "1,,2", "3-1", "0x1", "+1", "100", "1 2",
        ] {
            assert!(parse_list(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn self_pcr_always_added_once() {
        assert_eq!(with_self(&[0, 4]), vec![0, 4, 15]);
        assert_eq!(with_self(&[15, 23]), vec![15, 23]);
    }

    #[test]
    fn extend_matches_tpm_definition() {
        // Extending the all-zero PCR with sha256("abc") -- checked with
        // `tpm2_pcrextend` on swtpm (see tests/tpm.rs for the live check).
        let d = sha256(b"abc");
        let out = extend(&[0; 32], &d);
        let mut h = Sha256::new();
        h.update([0u8; 32]);
        h.update(d);
        assert_eq!(out, <[u8; 32]>::from(h.finalize()));
    }

    #[test]
    fn mismatch_names_every_pcr() {
        let diffs = compare(&[0, 23], &[[0; 32], [1; 32]], &[[0; 32], [2; 32]]);
        assert_eq!(diffs.len(), 1);
        let m = Mismatch {
            bank: "sha256".into(),
            diffs,
        };
        let s = m.to_string();
        assert!(s.contains("PCR 23 differs"), "{s}");
        assert!(s.contains(&hex::encode([1u8; 32])));
        assert!(s.contains(&hex::encode([2u8; 32])));
        assert!(!s.contains("PCR 0 differs"));
    }
}
