//! TPM2 policy digest arithmetic (pure), so enroll can compute the sealed
//! object's `authPolicy` without a trial session and unlock can say which
//! policy it expects.

use crate::pcr::{composite, Digest};
use sha2::{Digest as _, Sha256};

const TPM_CC_POLICY_PCR: u32 = 0x0000_017F;
const TPM_CC_POLICY_AUTH_VALUE: u32 = 0x0000_016B;
const TPM_ALG_SHA256: u16 = 0x000B;

/// Marshalled `TPML_PCR_SELECTION` with one SHA-256 selection of `pcrs`.
pub fn pcr_selection_bytes(pcrs: &[u32]) -> Vec<u8> {
    let mut bitmap = [0u8; 3];
    for &p in pcrs {
        bitmap[(p / 8) as usize] |= 1 << (p % 8);
    }
    let mut out = Vec::with_capacity(10);
    out.extend_from_slice(&1u32.to_be_bytes());
    out.extend_from_slice(&TPM_ALG_SHA256.to_be_bytes());
    out.push(3);
    out.extend_from_slice(&bitmap);
    out
}

/// `TPM2_PolicyPCR` update: H(old || CC || selection || H(values)).
pub fn policy_pcr(old: &Digest, pcrs: &[u32], values: &[Digest]) -> Digest {
    let mut h = Sha256::new();
    h.update(old);
    h.update(TPM_CC_POLICY_PCR.to_be_bytes());
    h.update(pcr_selection_bytes(pcrs));
    h.update(composite(values));
    h.finalize().into()
}

/// `TPM2_PolicyAuthValue` update: H(old || CC).
pub fn policy_auth_value(old: &Digest) -> Digest {
    let mut h = Sha256::new();
    h.update(old);
    h.update(TPM_CC_POLICY_AUTH_VALUE.to_be_bytes());
    h.finalize().into()
}

/// The policy sealroot seals to: PolicyPCR over `pcrs` (ascending, values in
/// the same order), then PolicyAuthValue when a PIN is required.
pub fn compute(pcrs: &[u32], values: &[Digest], pin: bool) -> Digest {
    compute_from(&[0; 32], pcrs, values, pin)
}

/// The same steps after a PolicyAuthorize (signed policies): `start` is
/// [`crate::signedpolicy::authorized`] of the signing key.
pub fn compute_from(start: &Digest, pcrs: &[u32], values: &[Digest], pin: bool) -> Digest {
    let d = policy_pcr(start, pcrs, values);
    if pin {
        policy_auth_value(&d)
    } else {
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_bitmap() {
        assert_eq!(
            pcr_selection_bytes(&[0, 4, 7, 9, 15, 23]),
            vec![
                0,
                0,
                0,
                1,
                0,
                0x0b,
                3,
                0b1001_0001,
                0b1000_0010,
                0b1000_0000
            ]
        );
    }

    #[test]
    fn pin_changes_the_policy() {
        let v = [[0u8; 32]; 2];
        assert_ne!(compute(&[0, 15], &v, false), compute(&[0, 15], &v, true));
    }

    #[test]
    fn known_vectors_from_tpm2_tools() {
        // `tpm2_createpolicy --policy-pcr -l sha256:0` on a fresh swtpm.
        assert_eq!(
            hex::encode(compute(&[0], &[[0; 32]], false)),
            "093ceb41181d47808862d7946268ee6a17a10e3d1b79b32351bc56e4beaceff0"
        );
        // `tpm2_policypcr -l sha256:0,15` then `tpm2_policyauthvalue`.
        assert_eq!(
            hex::encode(compute(&[0, 15], &[[0; 32], [0; 32]], true)),
            "3285a910f3560218e84921bb366d59e4b46e4f56941faa574f363e71fbc145b0"
        );
    }
}
