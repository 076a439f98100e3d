//! `systemd-tpm2` LUKS2 tokens as systemd 252 (Debian 12) writes them
//! (`systemd-cryptenroll --tpm2-device=`), and the PCR signature JSON that
//! its signed policies are unlocked with (pure, no I/O).
//!
//! The token (systemd 252 `src/shared/tpm2-util.c`, `tpm2_make_luks2_json`
//! and `tpm2_parse_luks2_json`; `docs/` of systemd: "TPM2 PCR measurements"):
//! - `type`: `"systemd-tpm2"`; `keyslots`: one keyslot number as a string;
//! - `tpm2-blob`: base64 of the sealed object, a marshalled TPM2B_PRIVATE
//!   followed by a marshalled TPM2B_PUBLIC;
//! - `tpm2-pcrs`: PCR indexes of the literal PCR policy (PolicyPCR at the
//!   values current when sealed; the values themselves are not recorded);
//! - `tpm2-pcr-bank`: `"sha1"`, `"sha256"`, ...; `tpm2-primary-alg`:
//!   `"ecc"` or `"rsa"` (the primary key systemd recreates from a fixed
//!   template under the owner hierarchy at every unseal);
//! - `tpm2-policy-hash`: hex of the object's policy digest;
//! - `tpm2-pin`: whether PolicyAuthValue is part of the policy (the object's
//!   authValue is SHA-256 of the PIN, with no salt in 252);
//! - `tpm2_pubkey_pcrs` and `tpm2_pubkey` (signed PCR policies): the PCRs
//!   signed over, and base64 of the PEM RSA public key whose signature
//!   PolicyAuthorize accepts (policyRef empty).
//!
//! The secret the TPM unseals is used base64-encoded as the keyslot's
//! passphrase (systemd 252 `src/cryptsetup/cryptsetup-tpm2.c` and
//! `src/cryptenroll/cryptenroll-tpm2.c`).
//!
//! Every field is host-controlled: sizes are bounded, unknown fields (a
//! newer systemd's `tpm2_srk`, `tpm2_salt`, `tpm2-pcrlock`, which change
//! what the unseal must do) are refused, only the sha256 bank and the ECC
//! primary are accepted.

use base64::Engine as _;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// The LUKS2 token type.
pub const TOKEN_TYPE: &str = "systemd-tpm2";
/// Largest `tpm2-blob` accepted, decoded (systemd 252 writes about 200 bytes).
pub const MAX_BLOB: usize = 1024;
/// Largest `tpm2_pubkey` accepted, decoded (a 4096-bit RSA PEM is ~800 bytes).
pub const MAX_PUBKEY_PEM: usize = 4096;
/// Largest signature JSON file read (systemd-measure writes one entry per
/// bank and phase, a few KiB).
pub const MAX_SIGNATURE_JSON: usize = 64 * 1024;
/// The fields systemd 252 writes; any other field is refused.
const KNOWN_FIELDS: &[&str] = &[
    "type",
    "keyslots",
    "tpm2-blob",
    "tpm2-pcrs",
    "tpm2-pcr-bank",
    "tpm2-primary-alg",
    "tpm2-policy-hash",
    "tpm2-pin",
    "tpm2_pubkey_pcrs",
    "tpm2_pubkey",
];

/// A parsed `systemd-tpm2` token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemdToken {
    /// The keyslot the unsealed secret opens (0..=31).
    pub keyslot: u32,
    /// Literal PCR policy, ascending (may be empty for a signed-only token).
    pub pcrs: Vec<u32>,
    /// The marshalled TPM2B_PRIVATE, size prefix included.
    pub private: Vec<u8>,
    /// The marshalled TPM2B_PUBLIC, size prefix included.
    pub public: Vec<u8>,
    /// The object's policy digest (SHA-256).
    pub policy_hash: [u8; 32],
    /// PolicyAuthValue: the unseal needs SHA-256 of the PIN.
    pub pin: bool,
    /// Signed PCR policy: the PCRs signed over, ascending (empty: none).
    pub pubkey_pcrs: Vec<u32>,
    /// Signed PCR policy: the RSA key whose signatures are accepted.
    pub pubkey: Option<RsaKey>,
}

impl SystemdToken {
    /// Every PCR the policy covers, ascending.
    pub fn all_pcrs(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self.pcrs.iter().chain(&self.pubkey_pcrs).copied().collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Whether the policy covers `pcr` (literally or signed).
    pub fn covers(&self, pcr: u32) -> bool {
        self.pcrs.contains(&pcr) || self.pubkey_pcrs.contains(&pcr)
    }

    /// "7+11" as systemd writes PCR lists ("none" when empty).
    pub fn pcr_list(pcrs: &[u32]) -> String {
        if pcrs.is_empty() {
            return "none".into();
        }
        pcrs.iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join("+")
    }
}

/// Parse a token's JSON (as libcryptsetup returns it).
///
/// Errors: a message naming the field that is missing, of the wrong type,
/// out of bounds, unknown, or unsupported (sha1 bank, RSA primary).
pub fn parse(v: &Value) -> Result<SystemdToken, String> {
    let obj = v.as_object().ok_or("not a JSON object")?;
    if let Some(k) = obj.keys().find(|k| !KNOWN_FIELDS.contains(&k.as_str())) {
        return Err(format!(
            "unknown field {k:?} (written by a systemd newer than 252, whose unseal differs; re-enroll with systemd 252 or use `sealroot enroll`)"
        ));
    }
    if obj.get("type").and_then(Value::as_str) != Some(TOKEN_TYPE) {
        return Err(format!("type is not {TOKEN_TYPE:?}"));
    }
    let keyslot = keyslot(obj.get("keyslots"))?;
    let pcrs = pcr_array(obj.get("tpm2-pcrs").ok_or("no tpm2-pcrs")?, "tpm2-pcrs")?;
    match obj.get("tpm2-pcr-bank").map(|b| b.as_str()) {
        Some(Some("sha256")) => {}
        Some(Some(b)) => {
            return Err(format!(
                "tpm2-pcr-bank {b:?}: only the sha256 bank is supported"
            ))
        }
        Some(None) => return Err("tpm2-pcr-bank is not a string".into()),
        None => return Err("no tpm2-pcr-bank (a token older than systemd 250)".into()),
    }
    match obj.get("tpm2-primary-alg").map(|b| b.as_str()) {
        Some(Some("ecc")) | None => {}
        Some(Some("rsa")) => {
            return Err(
                "tpm2-primary-alg \"rsa\": sealroot does not create RSA primaries on the boot path (re-enroll on a TPM with ECC)"
                    .into(),
            )
        }
        Some(other) => return Err(format!("tpm2-primary-alg {other:?} is not supported")),
    }
    let (private, public) = blob(obj.get("tpm2-blob").ok_or("no tpm2-blob")?)?;
    let policy_hash = policy_hash(obj.get("tpm2-policy-hash"))?;
    let pin = match obj.get("tpm2-pin") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("tpm2-pin is not a boolean".into()),
    };
    let pubkey_pcrs = match obj.get("tpm2_pubkey_pcrs") {
        None => vec![],
        Some(a) => pcr_array(a, "tpm2_pubkey_pcrs")?,
    };
    let pubkey = match obj.get("tpm2_pubkey") {
        None => None,
        Some(p) => {
            let pem = base64_field(p, "tpm2_pubkey", MAX_PUBKEY_PEM)?;
            Some(RsaKey::from_pem(&pem).map_err(|e| format!("tpm2_pubkey: {e}"))?)
        }
    };
    match (&pubkey, pubkey_pcrs.is_empty()) {
        (None, false) => return Err("tpm2_pubkey_pcrs without tpm2_pubkey".into()),
        (Some(_), true) => return Err("tpm2_pubkey without tpm2_pubkey_pcrs".into()),
        _ => {}
    }
    if pcrs.is_empty() && pubkey.is_none() && !pin {
        return Err("the policy binds nothing (no PCRs, no PIN, no signed policy)".into());
    }
    Ok(SystemdToken {
        keyslot,
        pcrs,
        private,
        public,
        policy_hash,
        pin,
        pubkey_pcrs,
        pubkey,
    })
}

fn keyslot(v: Option<&Value>) -> Result<u32, String> {
    let a = v.and_then(Value::as_array).ok_or("no keyslots array")?;
    let [one] = a.as_slice() else {
        return Err(format!("keyslots has {} entries, not one", a.len()));
    };
    let s = one.as_str().ok_or("keyslots entry is not a string")?;
    if s.is_empty() || s.len() > 2 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("keyslot {s:?} is not a number 0-31"));
    }
    let n: u32 = s.parse().map_err(|_| format!("keyslot {s:?}"))?;
    if n > 31 {
        return Err(format!("keyslot {n} is out of range 0-31"));
    }
    Ok(n)
}

fn pcr_array(v: &Value, field: &str) -> Result<Vec<u32>, String> {
    let a = v
        .as_array()
        .ok_or_else(|| format!("{field} is not an array"))?;
    if a.len() > 24 {
        return Err(format!("{field} lists {} PCRs", a.len()));
    }
    let mut out = Vec::with_capacity(a.len());
    for p in a {
        let n = p
            .as_u64()
            .filter(|&n| n < 24)
            .ok_or_else(|| format!("{field}: {p} is not a PCR index 0-23"))?;
        if out.contains(&(n as u32)) {
            return Err(format!("{field}: PCR {n} is listed twice"));
        }
        out.push(n as u32);
    }
    out.sort_unstable();
    Ok(out)
}

fn base64_field(v: &Value, field: &str, max: usize) -> Result<Vec<u8>, String> {
    let s = v
        .as_str()
        .ok_or_else(|| format!("{field} is not a string"))?;
    // Base64 grows 4/3: refuse before decoding anything huge.
    if s.len() > max.div_ceil(3) * 4 {
        return Err(format!(
            "{field} is {} characters, more than the {max} bytes accepted",
            s.len()
        ));
    }
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| format!("{field} is not base64: {e}"))
}

/// TPM2B_PRIVATE then TPM2B_PUBLIC, each a big-endian u16 size and that
/// many bytes, and nothing after.
fn blob(v: &Value) -> Result<(Vec<u8>, Vec<u8>), String> {
    let b = base64_field(v, "tpm2-blob", MAX_BLOB)?;
    let take = |at: usize, what: &str| -> Result<usize, String> {
        let size = b
            .get(at..at + 2)
            .map(|s| usize::from(u16::from_be_bytes([s[0], s[1]])))
            .ok_or_else(|| format!("tpm2-blob: truncated before the {what} size"))?;
        if size == 0 || at + 2 + size > b.len() {
            return Err(format!("tpm2-blob: {what} size {size} does not fit"));
        }
        Ok(at + 2 + size)
    };
    let mid = take(0, "TPM2B_PRIVATE")?;
    let end = take(mid, "TPM2B_PUBLIC")?;
    if end != b.len() {
        return Err(format!(
            "tpm2-blob: {} bytes after the TPM2B_PUBLIC",
            b.len() - end
        ));
    }
    Ok((b[..mid].to_vec(), b[mid..].to_vec()))
}

fn policy_hash(v: Option<&Value>) -> Result<[u8; 32], String> {
    let s = v
        .and_then(Value::as_str)
        .ok_or("no tpm2-policy-hash string")?;
    if s.len() != 64 {
        return Err(format!(
            "tpm2-policy-hash is {} characters, not 64 (a SHA-256 digest)",
            s.len()
        ));
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).map_err(|e| format!("tpm2-policy-hash: {e}"))?;
    Ok(out)
}

/// TPMA_OBJECT of systemd 252's primary key: fixedTPM | fixedParent |
/// sensitiveDataOrigin | userWithAuth | restricted | decrypt (no noDA,
/// unlike the TCG SRK template sealroot persists).
pub const PRIMARY_ATTRIBUTES: u32 =
    0x0000_0002 | 0x0000_0010 | 0x0000_0020 | 0x0000_0040 | 0x0001_0000 | 0x0002_0000;

/// Marshalled TPMT_PUBLIC of the primary key systemd 252 creates under the
/// owner hierarchy for every seal and unseal (`tpm2_make_primary`, ECC
/// variant): ECC NIST P-256, nameAlg sha256, [`PRIMARY_ATTRIBUTES`], empty
/// authPolicy, AES-128-CFB, no scheme, no KDF, empty unique. The TPM
/// derives the same key from the owner seed each time; 252 records neither
/// its name nor its public area in the token.
pub fn primary_template() -> Vec<u8> {
    let mut v = Vec::with_capacity(26);
    for half in [0x0023u16, TPM_ALG_SHA256] {
        v.extend_from_slice(&half.to_be_bytes());
    }
    v.extend_from_slice(&PRIMARY_ATTRIBUTES.to_be_bytes());
    for half in [
        0u16,
        0x0006,
        128,
        0x0043,
        TPM_ALG_NULL,
        0x0003,
        TPM_ALG_NULL,
        0,
        0,
    ] {
        // authPolicy size, AES, 128 bits, CFB, scheme, P-256, kdf, x, y
        v.extend_from_slice(&half.to_be_bytes());
    }
    v
}

/// An RSA public key of a systemd signed PCR policy (exponent 65537, 2048
/// to 4096 bits), as systemd 252 loads it into the TPM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RsaKey {
    modulus: Vec<u8>,
    spki_der: Vec<u8>,
}

const TPM_ALG_RSA: u16 = 0x0001;
const TPM_ALG_SHA256: u16 = 0x000B;
const TPM_ALG_NULL: u16 = 0x0010;
/// TPMA_OBJECT decrypt | sign | userWithAuth, what systemd 252's
/// `openssl_pubkey_to_tpm2_pubkey` gives the key.
const RSA_KEY_ATTRIBUTES: u32 = 0x0002_0000 | 0x0004_0000 | 0x0000_0040;
/// DER of the rsaEncryption AlgorithmIdentifier (OID 1.2.840.113549.1.1.1, NULL).
const RSA_ALGORITHM_ID: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
];

impl RsaKey {
    /// From a PEM SubjectPublicKeyInfo ("BEGIN PUBLIC KEY").
    ///
    /// Errors: not that PEM, not RSA, an exponent other than 65537, or a
    /// modulus outside 2048-4096 bits.
    pub fn from_pem(pem: &[u8]) -> Result<RsaKey, String> {
        let text = std::str::from_utf8(pem).map_err(|_| "PEM is not text")?;
        let body = text
            .trim()
            .strip_prefix("-----BEGIN PUBLIC KEY-----")
            .and_then(|t| t.strip_suffix("-----END PUBLIC KEY-----"))
            .ok_or("not a PEM \"PUBLIC KEY\"")?;
        let b64: String = body.split_whitespace().collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| format!("PEM body is not base64: {e}"))?;
        Self::from_der(&der)
    }

    /// From a DER SubjectPublicKeyInfo.
    pub fn from_der(der: &[u8]) -> Result<RsaKey, String> {
        let (spki, rest) = tlv(der, 0x30)?;
        if !rest.is_empty() {
            return Err("bytes after the SubjectPublicKeyInfo".into());
        }
        let alg = spki
            .get(..RSA_ALGORITHM_ID.len())
            .filter(|a| *a == RSA_ALGORITHM_ID)
            .ok_or("not an RSA key (systemd 252 signs PCR policies with RSA)")?;
        let (bits, rest) = tlv(&spki[alg.len()..], 0x03)?;
        if !rest.is_empty() || bits.first() != Some(&0) {
            return Err("malformed subjectPublicKey".into());
        }
        let (rsa, rest) = tlv(&bits[1..], 0x30)?;
        if !rest.is_empty() {
            return Err("bytes after the RSA public key".into());
        }
        let (n, rest) = tlv(rsa, 0x02)?;
        let (e, rest) = tlv(rest, 0x02)?;
        if !rest.is_empty() {
            return Err("bytes after the RSA exponent".into());
        }
        if e != [0x01, 0x00, 0x01] {
            return Err("RSA exponent is not 65537".into());
        }
        let n = match n {
            [0, rest @ ..] if rest.first().is_some_and(|b| b & 0x80 != 0) => rest,
            [first, ..] if first & 0x80 == 0 && *first != 0 => n,
            _ => return Err("RSA modulus is not a minimal positive integer".into()),
        };
        if !(256..=512).contains(&n.len()) || n.len() % 8 != 0 {
            return Err(format!(
                "RSA modulus of {} bits (2048-4096 in steps of 64 are accepted)",
                n.len() * 8
            ));
        }
        Ok(RsaKey {
            modulus: n.to_vec(),
            spki_der: der.to_vec(),
        })
    }

    /// Marshalled TPMT_PUBLIC, as systemd 252 gives it to LoadExternal: RSA,
    /// nameAlg sha256, decrypt|sign|userWithAuth, no symmetric algorithm,
    /// no scheme, exponent 65537 written out (not 0), the modulus as unique.
    pub fn tpmt_public(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(24 + self.modulus.len());
        v.extend_from_slice(&TPM_ALG_RSA.to_be_bytes());
        v.extend_from_slice(&TPM_ALG_SHA256.to_be_bytes());
        v.extend_from_slice(&RSA_KEY_ATTRIBUTES.to_be_bytes());
        v.extend_from_slice(&0u16.to_be_bytes()); // authPolicy
        v.extend_from_slice(&TPM_ALG_NULL.to_be_bytes()); // symmetric
        v.extend_from_slice(&TPM_ALG_NULL.to_be_bytes()); // scheme
        v.extend_from_slice(&((self.modulus.len() * 8) as u16).to_be_bytes());
        v.extend_from_slice(&65537u32.to_be_bytes());
        v.extend_from_slice(&(self.modulus.len() as u16).to_be_bytes());
        v.extend_from_slice(&self.modulus);
        v
    }

    /// The key's TPM name (nameAlg sha256): what PolicyAuthorize binds.
    pub fn name(&self) -> Vec<u8> {
        let mut n = TPM_ALG_SHA256.to_be_bytes().to_vec();
        n.extend_from_slice(&Sha256::digest(self.tpmt_public()));
        n
    }

    /// SHA-256 of the DER SubjectPublicKeyInfo: the signature JSON's `pkfp`.
    pub fn fingerprint(&self) -> [u8; 32] {
        Sha256::digest(&self.spki_der).into()
    }

    /// Modulus length in bytes (the signature's length).
    pub fn len(&self) -> usize {
        self.modulus.len()
    }

    /// Never true: a parsed key has a 2048-4096-bit modulus.
    pub fn is_empty(&self) -> bool {
        self.modulus.is_empty()
    }
}

/// One DER TLV of `tag` at the start of `b` (definite lengths up to
/// 0xffff): its contents and what follows.
fn tlv(b: &[u8], tag: u8) -> Result<(&[u8], &[u8]), String> {
    let bad = || format!("malformed DER (expected tag {tag:#04x})");
    if b.first() != Some(&tag) {
        return Err(bad());
    }
    let (len, hdr) = match *b.get(1).ok_or_else(bad)? {
        l if l < 0x80 => (usize::from(l), 2),
        0x81 => (usize::from(*b.get(2).ok_or_else(bad)?), 3),
        0x82 => {
            let s = b.get(2..4).ok_or_else(bad)?;
            (usize::from(u16::from_be_bytes([s[0], s[1]])), 4)
        }
        _ => return Err(bad()),
    };
    let body = b.get(hdr..hdr + len).ok_or_else(bad)?;
    Ok((body, &b[hdr + len..]))
}

/// Find the signature for `policy` in a systemd PCR signature JSON
/// (`{"sha256": [{"pcrs": [...], "pkfp": hex, "pol": hex, "sig": base64}]}`,
/// systemd 252 `find_signature`; written by `systemd-measure sign`): the
/// sha256 entry whose PCRs, key fingerprint and policy digest all match.
/// Entries for other PCRs, keys or policies are skipped, as systemd does.
///
/// Errors: the JSON is not that shape (too large, not an object, the bank
/// not an array, an entry's fields of the wrong type), or no entry matches
/// (the message says which PCRs and policy were looked for).
pub fn find_signature(
    json: &[u8],
    pcrs: &[u32],
    key: &RsaKey,
    policy: &[u8; 32],
) -> Result<Vec<u8>, String> {
    if json.len() > MAX_SIGNATURE_JSON {
        return Err(format!("larger than {MAX_SIGNATURE_JSON} bytes"));
    }
    let v: Value = serde_json::from_slice(json).map_err(|e| format!("not JSON: {e}"))?;
    let obj = v.as_object().ok_or("not a JSON object")?;
    let Some(bank) = obj.get("sha256") else {
        return Err("no sha256 entries".into());
    };
    let entries = bank.as_array().ok_or("\"sha256\" is not an array")?;
    let fp = key.fingerprint();
    for e in entries {
        let e = e.as_object().ok_or("an entry is not an object")?;
        let Some(p) = e.get("pcrs") else { continue };
        if pcr_array(p, "pcrs")? != pcrs {
            continue;
        }
        let hex_eq = |field: &str, want: &[u8]| -> Result<bool, String> {
            match e.get(field).map(Value::as_str) {
                None => Ok(false),
                Some(Some(s)) => Ok(hex::decode(s)
                    .map_err(|err| format!("{field}: {err}"))?
                    .as_slice()
                    == want),
                Some(None) => Err(format!("{field} is not a string")),
            }
        };
        if !hex_eq("pkfp", &fp)? || !hex_eq("pol", policy)? {
            continue;
        }
        let Some(sig) = e.get("sig") else { continue };
        let sig = base64_field(sig, "sig", 512)?;
        if sig.len() != key.len() {
            return Err(format!(
                "the signature is {} bytes, the key's modulus {}",
                sig.len(),
                key.len()
            ));
        }
        return Ok(sig);
    }
    Err(format!(
        "no sha256 signature for PCRs {} with this key over policy {}",
        SystemdToken::pcr_list(pcrs),
        hex::encode(policy)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn blob_b64() -> String {
        let mut b = vec![0, 3, 1, 2, 3, 0, 2, 9, 9];
        b.truncate(9);
        base64::engine::general_purpose::STANDARD.encode(b)
    }

    fn token() -> Value {
        json!({
            "type": "systemd-tpm2",
            "keyslots": ["1"],
            "tpm2-blob": blob_b64(),
            "tpm2-pcrs": [7, 0],
            "tpm2-pcr-bank": "sha256",
            "tpm2-primary-alg": "ecc",
            "tpm2-policy-hash": "ab".repeat(32),
            "tpm2-pin": false,
        })
    }

    #[test]
    fn a_252_token_parses() {
        let t = parse(&token()).unwrap();
        assert_eq!(t.keyslot, 1);
        assert_eq!(t.pcrs, [0, 7]);
        assert_eq!(t.private, [0, 3, 1, 2, 3]);
        assert_eq!(t.public, [0, 2, 9, 9]);
        assert_eq!(t.policy_hash, [0xab; 32]);
        assert!(!t.pin && t.pubkey.is_none());
        assert!(t.covers(7) && !t.covers(15));
        assert_eq!(SystemdToken::pcr_list(&t.all_pcrs()), "0+7");
    }

    /// A token Debian 12's systemd-cryptenroll wrote (PIN, literal PCR 7,
    /// signed PCR 11; also the fuzz seed).
    #[test]
    fn a_real_252_token_parses() {
        let v: Value = serde_json::from_str(include_str!(
            "../../fuzz/seeds/systemd_token/signed-pin-252.json"
        ))
        .unwrap();
        let t = parse(&v).unwrap();
        assert_eq!((t.keyslot, t.pin), (1, true));
        assert_eq!(
            (t.pcrs.as_slice(), t.pubkey_pcrs.as_slice()),
            (&[7][..], &[11][..])
        );
        assert_eq!(t.pubkey.as_ref().unwrap().len(), 256);
        assert_eq!(SystemdToken::pcr_list(&t.all_pcrs()), "7+11");
    }

    #[test]
    fn hostile_fields_are_refused_by_name() {
        let cases: Vec<(&str, Value, &str)> = vec![
            ("tpm2-blob", json!("!!!"), "not base64"),
            ("tpm2-blob", json!("A".repeat(4000)), "more than"),
            ("tpm2-blob", json!("AAUBAgM="), "does not fit"),
            ("tpm2-pcr-bank", json!("sha1"), "only the sha256 bank"),
            ("tpm2-primary-alg", json!("rsa"), "RSA primaries"),
            ("tpm2-pcrs", json!([7, 7]), "twice"),
            ("tpm2-pcrs", json!([24]), "0-23"),
            ("tpm2-policy-hash", json!("ab"), "not 64"),
            ("keyslots", json!(["1", "2"]), "not one"),
            ("keyslots", json!(["-1"]), "0-31"),
            ("keyslots", json!(["32"]), "out of range"),
            ("tpm2_srk", json!("AAA="), "unknown field"),
            ("tpm2-pin", json!("yes"), "not a boolean"),
            ("tpm2_pubkey_pcrs", json!([11]), "without tpm2_pubkey"),
        ];
        for (field, value, want) in cases {
            let mut t = token();
            t[field] = value;
            let e = parse(&t).unwrap_err();
            assert!(e.contains(want), "{field}: {e}");
        }
        let mut t = token();
        t["tpm2-pcrs"] = json!([]);
        assert!(parse(&t).unwrap_err().contains("binds nothing"));
        let mut bytes = base64::engine::general_purpose::STANDARD
            .decode(blob_b64())
            .unwrap();
        bytes.push(0);
        let mut t = token();
        t["tpm2-blob"] = json!(base64::engine::general_purpose::STANDARD.encode(bytes));
        assert!(parse(&t).unwrap_err().contains("after the TPM2B_PUBLIC"));
    }

    /// A 2048-bit RSA SubjectPublicKeyInfo built by hand (modulus 0xc5..).
    fn spki() -> Vec<u8> {
        let mut n = vec![0u8];
        n.extend(std::iter::repeat_n(0xc5, 256));
        let mut rsa = vec![0x02, 0x82, 0x01, 0x01];
        rsa.extend(&n);
        rsa.extend([0x02, 0x03, 0x01, 0x00, 0x01]);
        let mut rsa_seq = vec![0x30, 0x82];
        rsa_seq.extend((rsa.len() as u16).to_be_bytes());
        rsa_seq.extend(rsa);
        let mut bits = vec![0x03, 0x82];
        bits.extend((rsa_seq.len() as u16 + 1).to_be_bytes());
        bits.push(0);
        bits.extend(rsa_seq);
        let mut body = RSA_ALGORITHM_ID.to_vec();
        body.extend(bits);
        let mut der = vec![0x30, 0x82];
        der.extend((body.len() as u16).to_be_bytes());
        der.extend(body);
        der
    }

    #[test]
    fn the_primary_template_is_systemd_252s() {
        let t = primary_template();
        assert_eq!(
            hex::encode(t),
            "0023000b00030072000000060080004300100003001000000000"
        );
    }

    #[test]
    fn rsa_keys_load_as_systemd_loads_them() {
        let k = RsaKey::from_der(&spki()).unwrap();
        assert_eq!(k.len(), 256);
        let t = k.tpmt_public();
        assert_eq!(&t[..8], &[0, 1, 0, 0x0b, 0, 0x06, 0, 0x40]);
        assert_eq!(&t[14..22], &[0x08, 0x00, 0, 1, 0, 1, 1, 0]);
        assert_eq!(k.name().len(), 34);
        let mut bad = spki();
        let l = bad.len();
        bad[l - 1] = 3; // exponent 65539
        assert!(RsaKey::from_der(&bad).unwrap_err().contains("65537"));
        assert!(
            RsaKey::from_pem(b"-----BEGIN PUBLIC KEY-----\n!!\n-----END PUBLIC KEY-----").is_err()
        );
    }

    #[test]
    fn signatures_are_found_by_pcrs_key_and_policy() {
        let k = RsaKey::from_der(&spki()).unwrap();
        let sig = base64::engine::general_purpose::STANDARD.encode([7u8; 256]);
        let entry = |pcrs: Value, pol: [u8; 32]| json!({"pcrs": pcrs, "pkfp": hex::encode(k.fingerprint()), "pol": hex::encode(pol), "sig": sig});
        let doc = json!({"sha256": [entry(json!([11]), [1; 32]), entry(json!([7, 11]), [2; 32])]});
        let bytes = serde_json::to_vec(&doc).unwrap();
        assert_eq!(
            find_signature(&bytes, &[7, 11], &k, &[2; 32]).unwrap(),
            [7u8; 256]
        );
        let e = find_signature(&bytes, &[7, 11], &k, &[1; 32]).unwrap_err();
        assert!(e.contains("no sha256 signature for PCRs 7+11"), "{e}");
        assert!(find_signature(b"[]", &[11], &k, &[1; 32]).is_err());
        assert!(find_signature(&vec![b' '; MAX_SIGNATURE_JSON + 1], &[11], &k, &[1; 32]).is_err());
    }
}
