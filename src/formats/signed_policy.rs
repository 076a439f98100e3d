//! The signed-policy file and LUKS2 token format (pure): what an image
//! builder signs with `sealroot policy sign` and ships as a file or a
//! `sealroot-signed-policy` token, parsed strictly (untrusted bytes from
//! the disk or the ESP). The policy digest arithmetic and the keys are
//! [`crate::pcr::policy`] and [`crate::pcr::signer`]; docs/signed-policy.md
//! explains the design.

use super::wire::{hex32, pcrs_from_wire, pcrs_to_wire, WirePcr};
use crate::pcr::explain::ExpectedEvent;
use crate::pcr::policy::{approved_policy, signed_digest, TPM_ALG_SHA256};
use crate::pcr::signer::{EcdsaSignature, PrivateKey, PublicKey};
use crate::pcr::{Digest, BANK_SHA256, MAX_PCR, SELF_PCR};
use serde::{Deserialize, Serialize};

/// File / token type of a signed policy.
pub const SIGNED_TYPE: &str = "sealroot-signed-policy";
pub const SIGNED_FORMAT: u32 = 1;
/// Largest signed policy file accepted.
pub const MAX_SIGNED_BYTES: usize = 64 * 1024;

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
struct WireSig {
    alg: String,
    r: String,
    s: String,
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
        let (pcrs, values) = pcrs_from_wire(&w.pcrs, |i| {
            if i > MAX_PCR || i == SELF_PCR {
                return Err(format!(
                    "PCR {i} cannot be in a signed policy (range, or sealroot's own PCR {SELF_PCR})"
                ));
            }
            Ok(())
        })?;
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
            pcrs: pcrs_to_wire(&self.pcrs, &self.values),
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

    use crate::pcr::signer::tests::TEST_KEY;

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
