//! The sealed blob: versioned JSON stored as a LUKS2 token or a file (pure).
//!
//! The on-disk form is documented in docs/format.md. Parsing is strict:
//! unknown fields, a newer format version, wrong sizes or inconsistent PCR
//! lists are errors, because the blob is untrusted input from the disk.

use super::envelope::{self, Binding};
use super::key_origin::KeyOrigin;
use super::signed_policy;
use super::wire::{hex32, pcrs_from_wire, pcrs_to_wire, WirePcr};
use crate::attest::snp_requirement::{SnpRequirement, WireRequirement};
use crate::attest::tdx_requirement::{TdxRequirement, WireTdx};
use crate::pcr::explain::ExpectedEvent;
use crate::pcr::policy::{tpm_name, COUNTER_INDEX};
use crate::pcr::selfpcr::Measurements;
use crate::pcr::signer::PublicKey;
use crate::pcr::{Digest, BANK_SHA256, MAX_PCR, SELF_PCR};
use crate::{Error, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// LUKS2 token type.
pub const TOKEN_TYPE: &str = "sealroot";
/// Current format version: 2 binds the volume key's fingerprint.
pub const FORMAT_VERSION: u32 = 2;
/// Tokens of this version (no volume-key fingerprint) still unlock, with a
/// warning, until `reseal` rewrites them (docs/format.md).
pub const LEGACY_VERSION: u32 = 1;
/// Largest blob accepted (the LUKS2 JSON area is at most a few MiB; ours
/// are ~1.5 KiB).
pub const MAX_BLOB_BYTES: usize = 64 * 1024;
/// Bound on the marshalled TPM2B_PUBLIC / TPM2B_PRIVATE.
const MAX_TPM2B: usize = 1024;
/// LUKS2 has 32 keyslots.
pub const MAX_KEYSLOT: u32 = 31;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    #[serde(rename = "type")]
    kind: String,
    keyslots: Vec<String>,
    version: u32,
    keyslot: u32,
    volume_uuid: String,
    bank: String,
    pcrs: Vec<WirePcr>,
    self_pcr: u32,
    self_measurements: WireSelf,
    policy_digest: String,
    srk_name: String,
    /// The SRK's TPM2B_PUBLIC (base64), so the salted session binds the
    /// pinned key without a ReadPublic; absent in tokens written before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    srk_public: Option<String>,
    tpm_public: String,
    tpm_private: String,
    pin: bool,
    nonce: String,
    ciphertext: String,
    /// Optional platform (SEV-SNP) requirement; absent in older blobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    platform: Option<WireRequirement>,
    /// Optional TDX requirement (docs/platform.md#tdx); a blob has at most
    /// one of `platform` and `tdx`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tdx: Option<WireTdx>,
    /// Signed-policy mode: the trusted signing key; absent in PCR mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    authorize: Option<WireAuthorize>,
    /// Event-log events behind the expected PCR values ("PCR:TYPE:DIGEST"),
    /// recorded at enrollment for mismatch explanations only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    events: Vec<String>,
    /// Keyed hash of the LUKS2 volume key (hex); version 2 on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    volume_key_fingerprint: Option<String>,
    /// Where the volume key comes from; absent: the image's key. Bound
    /// into the envelope (docs/format.md#key-origin).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key_origin: Option<String>,
    /// A re-keying token's epoch: the TPM's re-keying counter when the
    /// re-keying started. Bound into the envelope
    /// (docs/first-boot.md#replayed-headers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rekey_epoch: Option<u64>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireAuthorize {
    /// DER SubjectPublicKeyInfo, base64.
    key: String,
    /// Its TPM name (hex), checked against the key.
    key_name: String,
    counter_index: u32,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireSelf {
    cmdline: String,
    config: String,
    /// A volume opened after the boot's primary one: that volume's event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    primary: Option<String>,
}

/// A validated blob with its fields decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// Keyslot the envelope's secret opens.
    pub keyslot: u32,
    /// Whether the LUKS2 token is assigned to `keyslot` yet (a token written
    /// by an interrupted enroll may not be).
    pub assigned: bool,
    pub volume_uuid: String,
    /// Ascending PCR indexes of the policy (includes the self PCR).
    pub pcrs: Vec<u32>,
    /// Expected value of each PCR in `pcrs`, same order.
    pub values: Vec<Digest>,
    /// What sealroot's own PCR was predicted from.
    pub self_measurements: Measurements,
    pub policy_digest: Digest,
    /// Name of the SRK the object was sealed under (nameAlg || digest).
    pub srk_name: Vec<u8>,
    /// Marshalled TPM2B_PUBLIC of that SRK; its name is `srk_name`
    /// (checked at parse). `None` in tokens written before sealroot kept it.
    pub srk_public: Option<Vec<u8>>,
    /// Marshalled TPM2B_PUBLIC of the sealed object.
    pub tpm_public: Vec<u8>,
    /// TPM2B_PRIVATE of the sealed object.
    pub tpm_private: Vec<u8>,
    pub pin: bool,
    pub nonce: [u8; envelope::NONCE_LEN],
    pub ciphertext: Vec<u8>,
    /// Platform requirement checked before any unseal (docs/platform.md).
    pub platform: Option<SnpRequirement>,
    /// TDX requirement checked before any unseal (docs/platform.md#tdx);
    /// never together with `platform`.
    pub tdx: Option<TdxRequirement>,
    /// Signed-policy mode: PCR states signed by this key (plus the self PCR
    /// in `pcrs`) unseal. docs/signed-policy.md.
    pub authorize: Option<PublicKey>,
    /// What the expected firmware PCR values were measured from.
    pub events: Vec<ExpectedEvent>,
    /// The volume key's fingerprint
    /// ([`crate::formats::volume_key::fingerprint`]), bound into the
    /// envelope; `None` only in a version-1 token.
    pub fingerprint: Option<Digest>,
    /// Where the volume key comes from (bound into the envelope).
    pub key_origin: KeyOrigin,
    /// A re-keying token's epoch (the TPM's re-keying counter when the
    /// re-keying started; bound into the envelope); `Some` exactly when
    /// `key_origin` is [`KeyOrigin::VmRekeyed`].
    pub rekey_epoch: Option<u64>,
}

impl Blob {
    /// Parse and validate. `origin` names where it came from (for messages).
    pub fn from_json(bytes: &[u8], origin: &str) -> Result<Blob> {
        let bad = |r: String| Error::blob(origin, r);
        if bytes.len() > MAX_BLOB_BYTES {
            return Err(bad(format!(
                "{} bytes, larger than the {MAX_BLOB_BYTES}-byte limit",
                bytes.len()
            )));
        }
        let v: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| bad(format!("not valid JSON: {e}")))?;
        Self::from_value(v, origin)
    }

    /// Parse and validate an already-decoded JSON value (LUKS2 token).
    pub fn from_value(v: serde_json::Value, origin: &str) -> Result<Blob> {
        let bad = |r: String| Error::blob(origin, r);
        let obj = v
            .as_object()
            .ok_or_else(|| bad("not a JSON object".into()))?;
        match obj.get("type").and_then(|t| t.as_str()) {
            Some(TOKEN_TYPE) => {}
            Some(other) => return Err(bad(format!("type is {other:?}, not {TOKEN_TYPE:?}"))),
            None => return Err(bad("missing \"type\"".into())),
        }
        let version = obj.get("version").and_then(|t| t.as_u64());
        match version {
            Some(n) if n == u64::from(FORMAT_VERSION) || n == u64::from(LEGACY_VERSION) => {}
            Some(n) if n > u64::from(FORMAT_VERSION) => {
                return Err(bad(format!(
                    "format version {n} is newer than this sealroot supports ({FORMAT_VERSION}); upgrade sealroot"
                )))
            }
            Some(n) => return Err(bad(format!("unsupported format version {n}"))),
            None => return Err(bad("missing or non-integer \"version\"".into())),
        }
        let w: Wire = serde_json::from_value(v).map_err(|e| bad(e.to_string()))?;
        Self::from_wire(w).map_err(bad)
    }

    /// The format version this blob is written in.
    pub fn version(&self) -> u32 {
        if self.fingerprint.is_some() {
            FORMAT_VERSION
        } else {
            LEGACY_VERSION
        }
    }

    fn from_wire(w: Wire) -> std::result::Result<Blob, String> {
        if w.bank != BANK_SHA256 {
            return Err(format!("unsupported PCR bank {:?}", w.bank));
        }
        if w.keyslot > MAX_KEYSLOT {
            return Err(format!("keyslot {} out of range", w.keyslot));
        }
        let assigned = match w.keyslots.as_slice() {
            [] => false,
            [one] if *one == w.keyslot.to_string() => true,
            other => {
                return Err(format!(
                    "token keyslots {other:?} do not match keyslot {}",
                    w.keyslot
                ))
            }
        };
        check_uuid(&w.volume_uuid)?;
        let (pcrs, values) = pcrs_from_wire(&w.pcrs, |i| {
            if i > MAX_PCR {
                return Err(format!("PCR index {i} out of range"));
            }
            Ok(())
        })?;
        if w.self_pcr != SELF_PCR || !pcrs.contains(&SELF_PCR) {
            return Err(format!(
                "self PCR must be {SELF_PCR} and part of the policy (got {})",
                w.self_pcr
            ));
        }
        let self_measurements = Measurements {
            cmdline: hex32(&w.self_measurements.cmdline, "cmdline measurement")?,
            config: hex32(&w.self_measurements.config, "config measurement")?,
            primary: w
                .self_measurements
                .primary
                .as_deref()
                .map(|p| hex32(p, "primary volume measurement"))
                .transpose()?,
        };
        let srk_name = hex::decode(&w.srk_name).map_err(|e| format!("srk_name: {e}"))?;
        if srk_name.len() != 34 || srk_name[..2] != [0x00, 0x0b] {
            return Err("srk_name is not a SHA-256 TPM name".into());
        }
        let srk_public = match &w.srk_public {
            None => None,
            Some(s) => {
                let v = tpm2b(s, "srk_public")?;
                if tpm_name(&v[2..]) != srk_name {
                    return Err("srk_public is not the key srk_name names".into());
                }
                Some(v)
            }
        };
        let tpm_public = tpm2b(&w.tpm_public, "tpm_public")?;
        let tpm_private = tpm2b(&w.tpm_private, "tpm_private")?;
        let nonce_v = B64.decode(&w.nonce).map_err(|e| format!("nonce: {e}"))?;
        let nonce = nonce_v
            .as_slice()
            .try_into()
            .map_err(|_| format!("nonce is {} bytes, expected 12", nonce_v.len()))?;
        let ciphertext = B64
            .decode(&w.ciphertext)
            .map_err(|e| format!("ciphertext: {e}"))?;
        if ciphertext.len() != envelope::CIPHERTEXT_LEN {
            return Err(format!(
                "ciphertext is {} bytes, expected {}",
                ciphertext.len(),
                envelope::CIPHERTEXT_LEN
            ));
        }
        let platform = w.platform.map(SnpRequirement::from_wire).transpose()?;
        let tdx = w.tdx.map(TdxRequirement::from_wire).transpose()?;
        if platform.is_some() && tdx.is_some() {
            return Err("a blob requires SEV-SNP (platform) or TDX (tdx), not both".into());
        }
        let authorize = match w.authorize {
            None => None,
            Some(a) => {
                let der = B64
                    .decode(&a.key)
                    .map_err(|e| format!("authorize.key: {e}"))?;
                let key = PublicKey::from_der(&der).map_err(|e| format!("authorize.key: {e}"))?;
                if hex::encode(key.name()) != a.key_name.to_ascii_lowercase() {
                    return Err("authorize.key_name is not the name of authorize.key".into());
                }
                if a.counter_index != COUNTER_INDEX {
                    return Err(format!(
                        "authorize.counter_index {:#x} is not sealroot's {:#x}",
                        a.counter_index, COUNTER_INDEX
                    ));
                }
                if pcrs != [SELF_PCR] {
                    return Err(format!(
                        "a signed-policy blob seals only to PCR {SELF_PCR} (the firmware PCRs are in the signed policies)"
                    ));
                }
                Some(key)
            }
        };
        let events = w
            .events
            .iter()
            .map(|e| signed_policy::parse_event(e))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let fingerprint = match (w.version, &w.volume_key_fingerprint) {
            (FORMAT_VERSION, Some(f)) => Some(hex32(f, "volume_key_fingerprint")?),
            (FORMAT_VERSION, None) => {
                return Err(format!(
                    "version {FORMAT_VERSION} needs volume_key_fingerprint"
                ))
            }
            (_, Some(_)) => {
                return Err(format!(
                    "volume_key_fingerprint needs version {FORMAT_VERSION}"
                ))
            }
            (_, None) => None,
        };
        let key_origin = key_origin_of(
            w.key_origin.as_deref(),
            w.rekey_epoch,
            fingerprint.is_some(),
        )?;
        Ok(Blob {
            keyslot: w.keyslot,
            assigned,
            volume_uuid: w.volume_uuid,
            pcrs,
            values,
            self_measurements,
            policy_digest: hex32(&w.policy_digest, "policy_digest")?,
            srk_name,
            srk_public,
            tpm_public,
            tpm_private,
            pin: w.pin,
            nonce,
            ciphertext,
            platform,
            tdx,
            authorize,
            events,
            fingerprint,
            key_origin,
            rekey_epoch: w.rekey_epoch,
        })
    }

    /// Serialise (for a token or a file).
    pub fn to_value(&self) -> serde_json::Value {
        let w = Wire {
            kind: TOKEN_TYPE.into(),
            keyslots: if self.assigned {
                vec![self.keyslot.to_string()]
            } else {
                vec![]
            },
            version: self.version(),
            keyslot: self.keyslot,
            volume_uuid: self.volume_uuid.clone(),
            bank: BANK_SHA256.into(),
            pcrs: pcrs_to_wire(&self.pcrs, &self.values),
            self_pcr: SELF_PCR,
            self_measurements: WireSelf {
                cmdline: hex::encode(self.self_measurements.cmdline),
                config: hex::encode(self.self_measurements.config),
                primary: self.self_measurements.primary.map(hex::encode),
            },
            policy_digest: hex::encode(self.policy_digest),
            srk_name: hex::encode(&self.srk_name),
            srk_public: self.srk_public.as_ref().map(|v| B64.encode(v)),
            tpm_public: B64.encode(&self.tpm_public),
            tpm_private: B64.encode(&self.tpm_private),
            pin: self.pin,
            nonce: B64.encode(self.nonce),
            ciphertext: B64.encode(&self.ciphertext),
            platform: self.platform.as_ref().map(SnpRequirement::to_wire),
            tdx: self.tdx.as_ref().map(TdxRequirement::to_wire),
            authorize: self.authorize.as_ref().map(|k| WireAuthorize {
                key: B64.encode(k.to_der()),
                key_name: hex::encode(k.name()),
                counter_index: COUNTER_INDEX,
            }),
            events: self
                .events
                .iter()
                .map(signed_policy::format_event)
                .collect(),
            volume_key_fingerprint: self.fingerprint.map(hex::encode),
            key_origin: self.key_origin.token_field().map(str::to_string),
            rekey_epoch: self.rekey_epoch,
        };
        serde_json::to_value(w).expect("blob serialises")
    }

    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(&self.to_value()).expect("blob serialises") + "\n"
    }

    /// Expected value of `pcr`, if it is part of the policy.
    pub fn expected(&self, pcr: u32) -> Option<&Digest> {
        self.pcrs
            .iter()
            .position(|&p| p == pcr)
            .map(|i| &self.values[i])
    }

    /// The binding the envelope is authenticated against.
    pub fn binding(&self) -> Binding<'_> {
        Binding {
            version: self.version(),
            volume_uuid: &self.volume_uuid,
            policy_digest: &self.policy_digest,
            keyslot: self.keyslot,
            platform: platform_digest(self.platform.as_ref(), self.tdx.as_ref()),
            fingerprint: self.fingerprint,
            key_origin: self.key_origin.token_field(),
            rekey_epoch: self.rekey_epoch,
        }
    }
}

/// A token's `key_origin` (absent: the image's key; version 2 only) and
/// whether its `rekey_epoch` goes with it (exactly for `vm-rekeyed`).
fn key_origin_of(
    key_origin: Option<&str>,
    rekey_epoch: Option<u64>,
    versioned: bool,
) -> std::result::Result<KeyOrigin, String> {
    let origin = match (key_origin, versioned) {
        (None, _) => KeyOrigin::Image,
        (Some(o), true) => KeyOrigin::parse_token(o)?,
        (Some(_), false) => return Err(format!("key_origin needs version {FORMAT_VERSION}")),
    };
    if (origin == KeyOrigin::VmRekeyed) != rekey_epoch.is_some() {
        return Err("rekey_epoch is present exactly when key_origin is vm-rekeyed".into());
    }
    Ok(origin)
}

/// The digest of a blob's platform requirement (SEV-SNP or TDX; each
/// domain-separated) for the envelope's associated data.
pub fn platform_digest(
    snp: Option<&SnpRequirement>,
    tdx: Option<&TdxRequirement>,
) -> Option<[u8; 32]> {
    snp.map(SnpRequirement::digest)
        .or_else(|| tdx.map(TdxRequirement::digest))
}

/// The part of a blob the TPM edge needs to load and unseal the sealed
/// object: nothing the edge could misuse, and no envelope.
#[derive(Debug, Clone, Copy)]
pub struct SealedObject<'a> {
    /// Marshalled TPM2B_PUBLIC.
    pub public: &'a [u8],
    /// Marshalled TPM2B_PRIVATE (size field included).
    pub private: &'a [u8],
    /// TPM name of the SRK it was sealed under, checked before any session.
    pub srk_name: &'a [u8],
    /// That SRK's TPM2B_PUBLIC, whose name is `srk_name` (when the token
    /// has it): the salt is encrypted to this key, with no ReadPublic.
    pub srk_public: Option<&'a [u8]>,
    /// PCRs of its PolicyPCR step (ascending; includes PCR 15).
    pub pcrs: &'a [u32],
    /// Whether its policy ends with PolicyAuthValue (a PIN).
    pub pin: bool,
    /// Whether it is sealed to signed policies (PolicyAuthorize) rather
    /// than to PCR values.
    pub signed: bool,
}

impl Blob {
    /// The narrow view the TPM edge takes.
    pub fn sealed_object(&self) -> SealedObject<'_> {
        SealedObject {
            public: &self.tpm_public,
            private: &self.tpm_private,
            srk_name: &self.srk_name,
            srk_public: self.srk_public.as_deref(),
            pcrs: &self.pcrs,
            pin: self.pin,
            signed: self.authorize.is_some(),
        }
    }
}

fn tpm2b(s: &str, what: &str) -> std::result::Result<Vec<u8>, String> {
    let v = B64.decode(s).map_err(|e| format!("{what}: {e}"))?;
    if v.len() < 3 || v.len() > MAX_TPM2B {
        return Err(format!("{what} has a bad length ({} bytes)", v.len()));
    }
    let declared = u16::from_be_bytes([v[0], v[1]]) as usize;
    if declared + 2 != v.len() {
        return Err(format!(
            "{what} size field says {declared} bytes but {} follow",
            v.len() - 2
        ));
    }
    Ok(v)
}

fn check_uuid(u: &str) -> std::result::Result<(), String> {
    if u.is_empty() || u.len() > 64 || !u.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        return Err(format!("bad volume UUID {u:?}"));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample() -> Blob {
        Blob {
            keyslot: 1,
            assigned: true,
            volume_uuid: "0b7ad2f4-6c39-4a8e-9d0f-2a4e5c6d7e8f".into(),
            pcrs: vec![0, 4, 15],
            values: vec![[0; 32], [4; 32], [15; 32]],
            self_measurements: Measurements {
                cmdline: [1; 32],
                config: [2; 32],
                primary: None,
            },
            policy_digest: [9; 32],
            srk_name: tpm_name(&[1, 2, 3, 4]),
            srk_public: Some([&[0u8, 4][..], &[1, 2, 3, 4][..]].concat()),
            tpm_public: [&[0u8, 3][..], &[1, 2, 3][..]].concat(),
            tpm_private: [&[0u8, 2][..], &[1, 2][..]].concat(),
            pin: false,
            nonce: [3; 12],
            ciphertext: vec![8; 48],
            platform: None,
            tdx: None,
            authorize: None,
            events: vec![],
            fingerprint: Some([6; 32]),
            key_origin: KeyOrigin::Image,
            rekey_epoch: None,
        }
    }

    #[test]
    fn key_origin_is_bound_and_strict() {
        let mut b = sample();
        b.key_origin = KeyOrigin::VmFormatted;
        let v = b.to_value();
        assert_eq!(v["key_origin"], "vm-formatted");
        assert_eq!(Blob::from_value(v.clone(), "t").unwrap(), b);
        // Absent means the image's key; the two bindings differ, so the
        // host can neither add nor strip the field unnoticed.
        assert!(sample().to_value().get("key_origin").is_none());
        assert_ne!(b.binding().aad(), sample().binding().aad());
        let mut w = v.clone();
        w["key_origin"] = serde_json::json!("image");
        assert!(Blob::from_value(w, "t").is_err());
        let mut w = v;
        w["key_origin"] = serde_json::json!("vm-rekeyed-by-host");
        assert!(Blob::from_value(w, "t").is_err());
    }

    #[test]
    fn rekey_epoch_is_bound_and_only_for_rekeying() {
        let mut b = sample();
        b.key_origin = KeyOrigin::VmRekeyed;
        b.rekey_epoch = Some(7);
        let v = b.to_value();
        assert_eq!(v["rekey_epoch"], 7);
        assert_eq!(Blob::from_value(v.clone(), "t").unwrap(), b);
        let mut later = b.clone();
        later.rekey_epoch = Some(8);
        assert_ne!(b.binding().aad(), later.binding().aad());
        let mut w = v.clone();
        w.as_object_mut().unwrap().remove("rekey_epoch");
        assert!(Blob::from_value(w, "t").is_err());
        let mut w = sample().to_value();
        w["rekey_epoch"] = serde_json::json!(7);
        assert!(Blob::from_value(w, "t").is_err());
    }

    #[test]
    fn legacy_version_has_no_fingerprint() {
        let mut b = sample();
        b.fingerprint = None;
        let v = b.to_value();
        assert_eq!(v["version"], 1);
        assert!(v.get("volume_key_fingerprint").is_none());
        assert_eq!(Blob::from_value(v.clone(), "t").unwrap(), b);
        // A fingerprint in a version-1 token, or none in version 2: refused.
        let mut w = v.clone();
        w["volume_key_fingerprint"] = serde_json::json!(hex::encode([1u8; 32]));
        assert!(Blob::from_value(w, "t").is_err());
        let mut w = sample().to_value();
        assert_eq!(w["version"], 2);
        w.as_object_mut().unwrap().remove("volume_key_fingerprint");
        assert!(Blob::from_value(w, "t").is_err());
        // The binding differs, so a fingerprint cannot be stripped.
        assert_ne!(b.binding().aad(), sample().binding().aad());
    }

    #[test]
    fn roundtrip() {
        let b = sample();
        let json = b.to_json_pretty();
        assert_eq!(Blob::from_json(json.as_bytes(), "t").unwrap(), b);
        let mut u = sample();
        u.assigned = false;
        let v = u.to_value();
        assert_eq!(v["keyslots"], serde_json::json!([]));
        assert_eq!(Blob::from_value(v, "t").unwrap(), u);
        // A volume opened after the boot's primary one.
        let mut d = sample();
        d.self_measurements.primary = Some([5; 32]);
        let v = d.to_value();
        assert_eq!(v["self_measurements"]["primary"], hex::encode([5; 32]));
        assert_eq!(Blob::from_value(v, "t").unwrap(), d);
        assert!(sample().to_value()["self_measurements"]
            .get("primary")
            .is_none());
        assert!(mutate(|v| v["self_measurements"]["primary"] = "05".into()).is_err());
    }

    fn mutate(f: impl FnOnce(&mut serde_json::Value)) -> Result<Blob> {
        let mut v = sample().to_value();
        f(&mut v);
        Blob::from_value(v, "test-blob")
    }

    #[test]
    fn rejects_unknown_fields_and_newer_versions() {
        let e = mutate(|v| v["future"] = serde_json::json!(1)).unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
        assert_eq!(e.exit(), crate::Exit::BlobInvalid);
        let e = mutate(|v| v["version"] = serde_json::json!(3)).unwrap_err();
        assert!(e.to_string().contains("newer"), "{e}");
        let e = mutate(|v| v["pcrs"][0]["extra"] = serde_json::json!(1)).unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
    }

    #[test]
    fn rejects_inconsistent_fields() {
        type Mutation = Box<dyn FnOnce(&mut serde_json::Value)>;
        let cases: Vec<(&str, Mutation)> = vec![
            ("type", Box::new(|v| v["type"] = "systemd-tpm2".into())),
            ("version", Box::new(|v| v["version"] = 0.into())),
            ("bank", Box::new(|v| v["bank"] = "sha1".into())),
            (
                "keyslots",
                Box::new(|v| v["keyslots"] = serde_json::json!(["2"])),
            ),
            ("keyslot", Box::new(|v| v["keyslot"] = 99.into())),
            ("uuid", Box::new(|v| v["volume_uuid"] = "x/y".into())),
            ("order", Box::new(|v| v["pcrs"][0]["index"] = 5.into())),
            ("range", Box::new(|v| v["pcrs"][1]["index"] = 24.into())),
            ("value", Box::new(|v| v["pcrs"][1]["value"] = "00".into())),
            ("self", Box::new(|v| v["self_pcr"] = 14.into())),
            ("srk", Box::new(|v| v["srk_name"] = "000b00".into())),
            // The stored SRK public area must be the key the name pins.
            (
                "srk_public",
                Box::new(|v| v["srk_public"] = "AAQBAgMF".into()),
            ),
            ("pub", Box::new(|v| v["tpm_public"] = "AAUBAgM=".into())),
            ("priv", Box::new(|v| v["tpm_private"] = "!!".into())),
            ("nonce", Box::new(|v| v["nonce"] = "AAAA".into())),
            ("ct", Box::new(|v| v["ciphertext"] = "AAAA".into())),
            ("pin", Box::new(|v| v["pin"] = "yes".into())),
            (
                "missing",
                Box::new(|v| {
                    v.as_object_mut().unwrap().remove("nonce");
                }),
            ),
        ];
        for (name, f) in cases {
            assert!(mutate(f).is_err(), "{name} accepted");
        }
    }

    #[test]
    fn rejects_garbage() {
        for bad in [&b""[..], b"[]", b"{", b"null", b"{\"type\":\"sealroot\"}"] {
            let e = Blob::from_json(bad, "g").unwrap_err();
            assert_eq!(e.exit(), crate::Exit::BlobInvalid);
        }
        let big = vec![b' '; MAX_BLOB_BYTES + 1];
        assert!(Blob::from_json(&big, "g").is_err());
    }
}
