//! Signed PCR policies (TPM2_PolicyAuthorize), pure.
//!
//! A volume enrolled with `--policy-key` is sealed once to "any PCR state
//! the holder of this ECDSA P-256 key signed" plus sealroot's lock PCR, so a
//! kernel or initrd update needs a new signature, not a re-enrollment. This
//! module holds the arithmetic both sides must agree on (the key's TPM name,
//! the approved policy, what is signed) and the signed-policy file format;
//! the TPM edge only replays it. docs/signed-policy.md explains the design.
//!
//! Revocation: every approved policy ends with `PolicyNV` on sealroot's NV
//! counter, "counter ≤ version" (unsigned), so the version is inside what the
//! TPM verifies the signature over and the TPM itself refuses a policy whose
//! version is below the counter. `sealroot policy revoke` advances the
//! counter; a counter only ever goes up, and a redefined one starts above
//! every value any counter on that TPM ever held.

use crate::pcr::{Digest, BANK_SHA256, MAX_PCR};
use p256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// `policyRef` of the PolicyAuthorize step: a signature made for another
/// purpose with the same key (another tool's signed PCR policy) does not
/// authorize sealroot's object.
pub const POLICY_REF: &[u8] = b"sealroot-pcr-policy-v1";
/// TPM_EO_UNSIGNED_LE: PolicyNV passes when NV contents ≤ operandB.
pub const TPM_EO_UNSIGNED_LE: u16 = 0x0009;
/// NV index of the revocation counter (owner range of the TCG handle registry).
pub const COUNTER_INDEX: u32 = 0x0180_5352;
/// Attributes of the counter once written: TPM_NT_COUNTER, AUTHWRITE,
/// AUTHREAD, NO_DA (WRITTEN once initialised). Anyone with TPM access may
/// increment it (which can only revoke) and read it with the empty
/// authValue (PolicyNV reads it that way).
pub const COUNTER_ATTRIBUTES: u32 = 0x0000_0010 | 0x0000_0004 | 0x0004_0000 | 0x0200_0000;
pub const NV_WRITTEN: u32 = 0x2000_0000;
/// File / token type of a signed policy.
pub const SIGNED_TYPE: &str = "sealroot-signed-policy";
pub const SIGNED_FORMAT: u32 = 1;
/// Largest signed policy file accepted.
pub const MAX_SIGNED_BYTES: usize = 64 * 1024;

const TPM_CC_POLICY_AUTHORIZE: u32 = 0x0000_016A;
const TPM_CC_POLICY_NV: u32 = 0x0000_0149;
const TPM_ALG_ECC: u16 = 0x0023;
const TPM_ALG_SHA256: u16 = 0x000B;
const TPM_ALG_NULL: u16 = 0x0010;
const TPM_ECC_NIST_P256: u16 = 0x0003;
/// TPMA_OBJECT sign | userWithAuth.
const EXTERNAL_KEY_ATTRIBUTES: u32 = 0x0004_0000 | 0x0000_0040;

fn sha256_parts(parts: &[&[u8]]) -> Digest {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// A TPM name: nameAlg (SHA-256) || digest.
fn tpm_name(public_area: &[u8]) -> Vec<u8> {
    let mut n = TPM_ALG_SHA256.to_be_bytes().to_vec();
    n.extend_from_slice(&sha256_parts(&[public_area]));
    n
}

/// Marshalled TPMS_NV_PUBLIC of the revocation counter.
pub fn counter_public(written: bool) -> Vec<u8> {
    let mut v = Vec::with_capacity(14);
    v.extend_from_slice(&COUNTER_INDEX.to_be_bytes());
    v.extend_from_slice(&TPM_ALG_SHA256.to_be_bytes());
    let attrs = COUNTER_ATTRIBUTES | if written { NV_WRITTEN } else { 0 };
    v.extend_from_slice(&attrs.to_be_bytes());
    v.extend_from_slice(&0u16.to_be_bytes()); // authPolicy: empty
    v.extend_from_slice(&8u16.to_be_bytes()); // dataSize
    v
}

/// TPM name of the (written) revocation counter.
pub fn counter_name() -> Vec<u8> {
    counter_name_of(true)
}

/// TPM name of the revocation counter before or after its first increment.
pub fn counter_name_of(written: bool) -> Vec<u8> {
    tpm_name(&counter_public(written))
}

/// `TPM2_PolicyNV` update: H(old || CC || H(operandB || offset || op) || name).
fn policy_nv(old: &Digest, nv_name: &[u8], operand: &[u8], offset: u16, op: u16) -> Digest {
    let args = sha256_parts(&[operand, &offset.to_be_bytes(), &op.to_be_bytes()]);
    sha256_parts(&[old, &TPM_CC_POLICY_NV.to_be_bytes(), &args, nv_name])
}

/// PolicyAuthorize style update:
/// H(H(old || cc || name) || policyRef).
fn policy_update(old: &Digest, cc: u32, name: &[u8], policy_ref: &[u8]) -> Digest {
    let d = sha256_parts(&[old, &cc.to_be_bytes(), name]);
    sha256_parts(&[&d, policy_ref])
}

/// The policy a signer approves: PolicyPCR over `pcrs`, then PolicyNV
/// "revocation counter ≤ `version`".
pub fn approved_policy(pcrs: &[u32], values: &[Digest], version: u64) -> Digest {
    let d = crate::policy::policy_pcr(&[0; 32], pcrs, values);
    policy_nv(
        &d,
        &counter_name(),
        &version.to_be_bytes(),
        0,
        TPM_EO_UNSIGNED_LE,
    )
}

/// Session digest after a successful PolicyAuthorize with `key_name`.
pub fn authorized(key_name: &[u8]) -> Digest {
    policy_update(&[0; 32], TPM_CC_POLICY_AUTHORIZE, key_name, POLICY_REF)
}

/// What the signature is over: aHash = H(approvedPolicy || policyRef).
pub fn signed_digest(approved: &Digest) -> Digest {
    sha256_parts(&[approved, POLICY_REF])
}

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

/// One event the signer expects (from the event log it predicted from);
/// not signed, used only to explain a mismatch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedEvent {
    pub pcr: u32,
    pub event_type: u32,
    pub digest: Digest,
}

/// A validated signed policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedPolicy {
    pub pcrs: Vec<u32>,
    pub values: Vec<Digest>,
    pub version: u64,
    pub key_name: Vec<u8>,
    pub signature: EcdsaSignature,
    pub description: String,
    pub events: Vec<ExpectedEvent>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    #[serde(rename = "type")]
    kind: String,
    format: u32,
    bank: String,
    pcrs: Vec<WirePcr>,
    policy_version: u64,
    key_name: String,
    approved_policy: String,
    signature: WireSig,
    #[serde(default)]
    description: String,
    /// "PCR:TYPE:DIGEST" (hex type and digest), in log order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    events: Vec<String>,
    /// LUKS2 token bookkeeping (always empty: a policy opens no keyslot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    keyslots: Option<Vec<String>>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WirePcr {
    index: u32,
    value: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireSig {
    alg: String,
    r: String,
    s: String,
}

fn hex32(s: &str, what: &str) -> Result<[u8; 32], String> {
    let v = hex::decode(s).map_err(|e| format!("{what}: {e}"))?;
    v.as_slice()
        .try_into()
        .map_err(|_| format!("{what} is {} bytes, expected 32", v.len()))
}

impl SignedPolicy {
    /// Sign `pcrs`/`values` at `version` with `key`.
    pub fn sign(
        key: &PrivateKey,
        pcrs: &[u32],
        values: &[Digest],
        version: u64,
        description: &str,
        events: Vec<ExpectedEvent>,
    ) -> Result<SignedPolicy, String> {
        let approved = approved_policy(pcrs, values, version);
        Ok(SignedPolicy {
            pcrs: pcrs.to_vec(),
            values: values.to_vec(),
            version,
            key_name: key.public().name(),
            signature: key.sign(&signed_digest(&approved))?,
            description: description.to_string(),
            events,
        })
    }

    pub fn approved(&self) -> Digest {
        approved_policy(&self.pcrs, &self.values, self.version)
    }

    /// Check the signature with `key` (in software; the TPM checks it again).
    pub fn verify(&self, key: &PublicKey) -> Result<(), String> {
        if self.key_name != key.name() {
            return Err(format!(
                "signed by another key (key name {}, this volume trusts {})",
                hex::encode(&self.key_name),
                hex::encode(key.name())
            ));
        }
        if !key.verify(&signed_digest(&self.approved()), &self.signature) {
            return Err("the signature does not verify (edited PCR values or version?)".into());
        }
        Ok(())
    }

    /// Expected value of `pcr`, if the policy covers it.
    pub fn expected(&self, pcr: u32) -> Option<&Digest> {
        self.pcrs
            .iter()
            .position(|&p| p == pcr)
            .map(|i| &self.values[i])
    }

    pub fn events_of(&self, pcr: u32) -> Vec<&ExpectedEvent> {
        self.events.iter().filter(|e| e.pcr == pcr).collect()
    }

    /// Parse and validate the structure (not the signature: see [`verify`]).
    ///
    /// [`verify`]: SignedPolicy::verify
    pub fn from_json(bytes: &[u8]) -> Result<SignedPolicy, String> {
        if bytes.len() > MAX_SIGNED_BYTES {
            return Err(format!(
                "{} bytes, larger than the {MAX_SIGNED_BYTES}-byte limit",
                bytes.len()
            ));
        }
        let v: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| format!("not valid JSON: {e}"))?;
        Self::from_value(v)
    }

    pub fn from_value(v: serde_json::Value) -> Result<SignedPolicy, String> {
        match v.get("type").and_then(|t| t.as_str()) {
            Some(SIGNED_TYPE) => {}
            Some(other) => return Err(format!("type is {other:?}, not {SIGNED_TYPE:?}")),
            None => return Err("missing \"type\"".into()),
        }
        match v.get("format").and_then(|t| t.as_u64()) {
            Some(n) if n == u64::from(SIGNED_FORMAT) => {}
            Some(n) if n > u64::from(SIGNED_FORMAT) => {
                return Err(format!(
                    "format {n} is newer than this sealroot supports ({SIGNED_FORMAT})"
                ))
            }
            _ => return Err("missing or unsupported \"format\"".into()),
        }
        let w: Wire = serde_json::from_value(v).map_err(|e| e.to_string())?;
        if w.bank != BANK_SHA256 {
            return Err(format!("unsupported PCR bank {:?}", w.bank));
        }
        if w.pcrs.is_empty() {
            return Err("empty PCR list".into());
        }
        let mut pcrs = Vec::new();
        let mut values = Vec::new();
        for p in &w.pcrs {
            if p.index > MAX_PCR || p.index == crate::pcr::SELF_PCR {
                return Err(format!(
                    "PCR {} cannot be in a signed policy (range, or sealroot's own PCR {})",
                    p.index,
                    crate::pcr::SELF_PCR
                ));
            }
            if pcrs.last().is_some_and(|&l| l >= p.index) {
                return Err("PCR indexes not strictly ascending".into());
            }
            pcrs.push(p.index);
            values.push(hex32(&p.value, "PCR value")?);
        }
        let key_name = hex::decode(&w.key_name).map_err(|e| format!("key_name: {e}"))?;
        if key_name.len() != 34 || key_name[..2] != TPM_ALG_SHA256.to_be_bytes() {
            return Err("key_name is not a SHA-256 TPM name".into());
        }
        if w.signature.alg != "ecdsa-p256-sha256" {
            return Err(format!(
                "signature algorithm {:?} is not supported (ecdsa-p256-sha256)",
                w.signature.alg
            ));
        }
        let signature = EcdsaSignature {
            r: hex32(&w.signature.r, "signature r")?,
            s: hex32(&w.signature.s, "signature s")?,
        };
        if w.description.len() > 1024 {
            return Err("description longer than 1024 bytes".into());
        }
        if w.keyslots.as_ref().is_some_and(|k| !k.is_empty()) {
            return Err("a signed policy token is assigned to a keyslot".into());
        }
        let events = w
            .events
            .iter()
            .map(|e| parse_event(e))
            .collect::<Result<Vec<_>, _>>()?;
        let p = SignedPolicy {
            pcrs,
            values,
            version: w.policy_version,
            key_name,
            signature,
            description: w.description,
            events,
        };
        if hex32(&w.approved_policy, "approved_policy")? != p.approved() {
            return Err("approved_policy does not match its PCR values and version".into());
        }
        Ok(p)
    }

    fn to_wire(&self, token: bool) -> Wire {
        Wire {
            kind: SIGNED_TYPE.into(),
            format: SIGNED_FORMAT,
            bank: BANK_SHA256.into(),
            pcrs: self
                .pcrs
                .iter()
                .zip(&self.values)
                .map(|(&index, v)| WirePcr {
                    index,
                    value: hex::encode(v),
                })
                .collect(),
            policy_version: self.version,
            key_name: hex::encode(&self.key_name),
            approved_policy: hex::encode(self.approved()),
            signature: WireSig {
                alg: "ecdsa-p256-sha256".into(),
                r: hex::encode(self.signature.r),
                s: hex::encode(self.signature.s),
            },
            description: self.description.clone(),
            events: self.events.iter().map(format_event).collect(),
            keyslots: token.then(Vec::new),
        }
    }

    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(&self.to_wire(false)).expect("serialises") + "\n"
    }

    /// The LUKS2 token form (adds the empty `keyslots` list LUKS2 requires).
    pub fn to_token(&self) -> serde_json::Value {
        serde_json::to_value(self.to_wire(true)).expect("serialises")
    }
}

/// "PCR:TYPE:DIGEST", the compact form of an expected event.
pub fn format_event(e: &ExpectedEvent) -> String {
    format!("{}:{:08x}:{}", e.pcr, e.event_type, hex::encode(e.digest))
}

pub fn parse_event(s: &str) -> Result<ExpectedEvent, String> {
    let bad = || format!("bad event entry {s:?} (expected PCR:TYPE:DIGEST)");
    let mut it = s.splitn(3, ':');
    let (Some(p), Some(t), Some(d)) = (it.next(), it.next(), it.next()) else {
        return Err(bad());
    };
    let pcr: u32 = p.parse().map_err(|_| bad())?;
    if pcr > MAX_PCR {
        return Err(bad());
    }
    Ok(ExpectedEvent {
        pcr,
        event_type: u32::from_str_radix(t, 16).map_err(|_| bad())?,
        digest: hex32(d, "event digest")?,
    })
}

/// Parse a `--values` file: `INDEX:HEX` or `INDEX=HEX` lines (blank lines
/// and `#` comments ignored), or the JSON `sealroot predict --json` prints
/// (its `predicted` values). Returned ascending.
pub fn parse_values(text: &str) -> Result<Vec<(u32, Digest)>, String> {
    let mut out: Vec<(u32, Digest)> = Vec::new();
    if text.trim_start().starts_with('{') {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
        let list = v
            .get("pcrs")
            .and_then(|p| p.as_array())
            .ok_or("JSON without a \"pcrs\" list (expected `sealroot predict --json` output)")?;
        for p in list {
            let i = p.get("index").and_then(|i| i.as_u64());
            let d = p.get("predicted").and_then(|d| d.as_str());
            let (Some(i), Some(d)) = (i, d) else {
                return Err("a \"pcrs\" entry without index/predicted".into());
            };
            out.push((u32::try_from(i).unwrap_or(u32::MAX), hex32(d, "predicted")?));
        }
    } else {
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (i, d) = line
                .split_once([':', '='])
                .ok_or_else(|| format!("line {}: expected INDEX:HEX", n + 1))?;
            let i: u32 = i
                .trim()
                .parse()
                .map_err(|_| format!("line {}: bad PCR index {:?}", n + 1, i.trim()))?;
            out.push((i, hex32(d.trim(), &format!("line {}", n + 1))?));
        }
    }
    out.sort_by_key(|(i, _)| *i);
    for w in out.windows(2) {
        if w[0].0 == w[1].0 {
            return Err(format!("PCR {} given twice", w[0].0));
        }
    }
    if let Some((i, _)) = out.iter().find(|(i, _)| *i > MAX_PCR) {
        return Err(format!("PCR {i} out of range"));
    }
    if out.is_empty() {
        return Err("no PCR values".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // A fixed test key (generated with `openssl genpkey -algorithm EC
    // -pkeyopt ec_paramgen_curve:P-256`), used only by tests.
    pub(crate) const TEST_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgwEV0ETHnUeAxjGXM
2VFdQkwNwPgILY+Y1o/qFdUPIIuhRANCAAQFyde+WeqDvhrrIlW9lipGwQAUQhvk
ccMB2kjJ1U1efrxBdNqME+vtG88Tta3d1n0zdlu6s81CVT02mNnYlpCV
-----END PRIVATE KEY-----";

    fn key() -> PrivateKey {
        PrivateKey::from_pem(TEST_KEY).unwrap()
    }

    fn sample() -> SignedPolicy {
        SignedPolicy::sign(
            &key(),
            &[0, 4, 9],
            &[[0; 32], [4; 32], [9; 32]],
            3,
            "image 1",
            vec![ExpectedEvent {
                pcr: 9,
                event_type: 6,
                digest: [7; 32],
            }],
        )
        .unwrap()
    }

    #[test]
    fn sign_verify_roundtrip() {
        let p = sample();
        let pubkey = key().public();
        p.verify(&pubkey).unwrap();
        let back = SignedPolicy::from_json(p.to_json_pretty().as_bytes()).unwrap();
        assert_eq!(back, p);
        let tok = SignedPolicy::from_value(p.to_token()).unwrap();
        assert_eq!(tok, p);
        let der = PublicKey::from_der(&pubkey.to_der()).unwrap();
        assert_eq!(der, pubkey);
    }

    #[test]
    fn edits_are_caught() {
        let p = sample();
        let pubkey = key().public();
        let mut v = p.clone();
        v.version = 4;
        assert!(v.verify(&pubkey).unwrap_err().contains("does not verify"));
        let mut v = p.clone();
        v.values[2][0] ^= 1;
        assert!(v.verify(&pubkey).is_err());
        let mut v = p.clone();
        v.signature.s[5] ^= 1;
        assert!(v.verify(&pubkey).is_err());
        // A JSON edit of a value without a matching approved_policy.
        let mut j = p.to_token();
        j["pcrs"][0]["value"] = hex::encode([1u8; 32]).into();
        assert!(SignedPolicy::from_value(j)
            .unwrap_err()
            .contains("approved_policy"));
        let other = PrivateKey::from_pem(
            &p256::SecretKey::from_slice(&[42; 32])
                .unwrap()
                .to_sec1_pem(Default::default())
                .unwrap(),
        )
        .unwrap();
        assert!(p
            .verify(&other.public())
            .unwrap_err()
            .contains("another key"));
    }

    #[test]
    fn rejects_bad_files() {
        let good = sample().to_token();
        type M = Box<dyn Fn(&mut serde_json::Value)>;
        let cases: Vec<(&str, M)> = vec![
            ("type", Box::new(|v| v["type"] = "sealroot".into())),
            ("format", Box::new(|v| v["format"] = 2.into())),
            ("unknown", Box::new(|v| v["x"] = 1.into())),
            ("self pcr", Box::new(|v| v["pcrs"][2]["index"] = 15.into())),
            ("order", Box::new(|v| v["pcrs"][0]["index"] = 5.into())),
            ("alg", Box::new(|v| v["signature"]["alg"] = "rsa".into())),
            ("r", Box::new(|v| v["signature"]["r"] = "00".into())),
            ("event", Box::new(|v| v["events"][0] = "9:zz:00".into())),
            (
                "keyslots",
                Box::new(|v| v["keyslots"] = serde_json::json!(["1"])),
            ),
            ("name", Box::new(|v| v["key_name"] = "0004aa".into())),
        ];
        for (what, f) in cases {
            let mut v = good.clone();
            f(&mut v);
            assert!(SignedPolicy::from_value(v).is_err(), "{what} accepted");
        }
        assert!(SignedPolicy::from_json(b"{").is_err());
        assert!(SignedPolicy::from_json(&vec![b' '; MAX_SIGNED_BYTES + 1]).is_err());
    }

    #[test]
    fn known_digests() {
        // PolicyAuthorize with an empty policyRef over a name of all zeros
        // would be H(H(0^32 || 0000016a || name) || "") -- check the shape
        // with an independent computation.
        let name = [0u8; 34];
        let inner = sha256_parts(&[&[0u8; 32], &[0, 0, 1, 0x6a], &name]);
        assert_eq!(
            policy_update(&[0; 32], TPM_CC_POLICY_AUTHORIZE, &name, b""),
            sha256_parts(&[&inner])
        );
        assert_eq!(counter_public(true).len(), 14);
        assert_ne!(counter_name(), counter_name_of(false));
        assert_ne!(
            approved_policy(&[0], &[[0; 32]], 1),
            approved_policy(&[0], &[[0; 32]], 2)
        );
        assert_eq!(key().public().tpmt_public().len(), 2 + 2 + 4 + 2 + 8 + 68);
    }

    #[test]
    fn values_files() {
        let a = hex::encode([0xaa; 32]);
        let b = hex::encode([0xbb; 32]);
        let v = parse_values(&format!("# c\n9:{a}\n 4 = {b}\n")).unwrap();
        assert_eq!(v, vec![(4, [0xbb; 32]), (9, [0xaa; 32])]);
        let j = format!(
            r#"{{"eventlog":"x","pcrs":[{{"index":9,"current":"{b}","predicted":"{a}","changed":true}}]}}"#
        );
        assert_eq!(parse_values(&j).unwrap(), vec![(9, [0xaa; 32])]);
        for bad in [
            "".to_string(),
            "9".into(),
            format!("9:{a}\n9:{b}"),
            format!("24:{a}"),
            "9:abc".into(),
        ] {
            assert!(parse_values(&bad).is_err(), "{bad:?}");
        }
    }
}
