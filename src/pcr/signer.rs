//! The policy-signing keys of signed policies (ECDSA P-256, pure): PEM and
//! DER encodings, the TPMT_PUBLIC the TPM loads with `LoadExternal`, the
//! key's TPM name (what PolicyAuthorize binds), signing and verification
//! over a prehashed digest. The cryptography is the `p256` crate's.

use super::policy::{tpm_name, TPM_ALG_SHA256};
use super::Digest;
use p256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey};

const TPM_ALG_ECC: u16 = 0x0023;
const TPM_ALG_NULL: u16 = 0x0010;
const TPM_ECC_NIST_P256: u16 = 0x0003;
/// TPMA_OBJECT sign | userWithAuth.
const EXTERNAL_KEY_ATTRIBUTES: u32 = 0x0004_0000 | 0x0000_0040;

/// An ECDSA P-256 policy-signing public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    key: VerifyingKey,
}

impl PublicKey {
    /// From a PEM SubjectPublicKeyInfo ("BEGIN PUBLIC KEY").
    pub fn from_pem(pem: &str) -> Result<PublicKey, String> {
        VerifyingKey::from_public_key_pem(pem.trim())
            .map(|key| PublicKey { key })
            .map_err(|e| format!("not a PEM ECDSA P-256 public key (only P-256 is supported): {e}"))
    }

    pub fn from_der(der: &[u8]) -> Result<PublicKey, String> {
        VerifyingKey::from_public_key_der(der)
            .map(|key| PublicKey { key })
            .map_err(|e| format!("not a DER ECDSA P-256 public key: {e}"))
    }

    pub fn to_der(&self) -> Vec<u8> {
        self.key
            .to_public_key_der()
            .expect("P-256 keys encode")
            .into_vec()
    }

    fn xy(&self) -> ([u8; 32], [u8; 32]) {
        let p = self.key.to_encoded_point(false);
        let x = p.x().expect("uncompressed point");
        let y = p.y().expect("uncompressed point");
        ((*x).into(), (*y).into())
    }

    /// Marshalled TPMT_PUBLIC the TPM loads with LoadExternal (scheme
    /// null: the signature names ECDSA/SHA-256).
    pub fn tpmt_public(&self) -> Vec<u8> {
        let (x, y) = self.xy();
        let mut v = Vec::with_capacity(88);
        v.extend_from_slice(&TPM_ALG_ECC.to_be_bytes());
        v.extend_from_slice(&TPM_ALG_SHA256.to_be_bytes());
        v.extend_from_slice(&EXTERNAL_KEY_ATTRIBUTES.to_be_bytes());
        v.extend_from_slice(&0u16.to_be_bytes()); // authPolicy
        v.extend_from_slice(&TPM_ALG_NULL.to_be_bytes()); // symmetric
        v.extend_from_slice(&TPM_ALG_NULL.to_be_bytes()); // scheme
        v.extend_from_slice(&TPM_ECC_NIST_P256.to_be_bytes());
        v.extend_from_slice(&TPM_ALG_NULL.to_be_bytes()); // kdf
        for c in [x, y] {
            v.extend_from_slice(&32u16.to_be_bytes());
            v.extend_from_slice(&c);
        }
        v
    }

    /// The key's TPM name, as LoadExternal computes it.
    pub fn name(&self) -> Vec<u8> {
        tpm_name(&self.tpmt_public())
    }

    /// Check `sig` over the prehashed `digest` (what the TPM checks too).
    pub fn verify(&self, digest: &Digest, sig: &EcdsaSignature) -> bool {
        match Signature::from_scalars(sig.r, sig.s) {
            Ok(s) => self.key.verify_prehash(digest, &s).is_ok(),
            Err(_) => false,
        }
    }
}

/// An ECDSA P-256 policy-signing private key (the image builder's).
pub struct PrivateKey {
    key: SigningKey,
}

impl PrivateKey {
    /// From PEM: PKCS#8 ("BEGIN PRIVATE KEY") or SEC1 ("BEGIN EC PRIVATE KEY").
    pub fn from_pem(pem: &str) -> Result<PrivateKey, String> {
        let pem = pem.trim();
        if let Ok(key) = SigningKey::from_pkcs8_pem(pem) {
            return Ok(PrivateKey { key });
        }
        p256::SecretKey::from_sec1_pem(pem)
            .map(|k| PrivateKey { key: k.into() })
            .map_err(|_| "not a PEM ECDSA P-256 private key (PKCS#8 or SEC1)".to_string())
    }

    pub fn public(&self) -> PublicKey {
        PublicKey {
            key: *self.key.verifying_key(),
        }
    }

    pub fn sign(&self, digest: &Digest) -> Result<EcdsaSignature, String> {
        let s: Signature = self
            .key
            .sign_prehash(digest)
            .map_err(|e| format!("signing failed: {e}"))?;
        let (r, s) = s.split_bytes();
        Ok(EcdsaSignature {
            r: r.into(),
            s: s.into(),
        })
    }
}

/// The r, s scalars of an ECDSA signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EcdsaSignature {
    pub r: [u8; 32],
    pub s: [u8; 32],
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    // A fixed test key (generated with `openssl genpkey -algorithm EC
    // -pkeyopt ec_paramgen_curve:P-256`), used only by tests.
    pub(crate) const TEST_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgwEV0ETHnUeAxjGXM
2VFdQkwNwPgILY+Y1o/qFdUPIIuhRANCAAQFyde+WeqDvhrrIlW9lipGwQAUQhvk
ccMB2kjJ1U1efrxBdNqME+vtG88Tta3d1n0zdlu6s81CVT02mNnYlpCV
-----END PRIVATE KEY-----";

    #[test]
    fn encodings_roundtrip_and_tpmt_public_shape() {
        let key = PrivateKey::from_pem(TEST_KEY).unwrap();
        let public = key.public();
        assert_eq!(PublicKey::from_der(&public.to_der()).unwrap(), public);
        assert_eq!(public.tpmt_public().len(), 2 + 2 + 4 + 2 + 8 + 68);
        assert_eq!(public.name().len(), 34);
        let sig = key.sign(&[7; 32]).unwrap();
        assert!(public.verify(&[7; 32], &sig));
        assert!(!public.verify(&[8; 32], &sig));
    }
}
