//! A LUKS2 header in the middle of re-encryption: what sealroot's
//! first-boot re-keying leaves on the disk when power is cut
//! (docs/first-boot.md#mode-2-re-keying-the-root-at-first-boot).
//!
//! The ordinary allow-list ([`super::allow`]) refuses such a header (its
//! `online-reencrypt-v2` requirement, extra segments, a `reencrypt`
//! keyslot), so a volume in this state is never opened through the checked
//! copy. Re-keying resumes it instead, and only after this module has
//! checked every segment and keyslot cipher and KDF cost against the same
//! allow-list: the host cannot make the resumed re-encryption write under
//! `cipher_null`, or stall it with an absurd KDF. It also says how far the
//! re-encryption got, for `status`.

use super::allow::{
    CIPHER, MAX_ARGON2_CPUS, MAX_ARGON2_MEMORY_KIB, MAX_ARGON2_TIME, MAX_PBKDF2_ITERATIONS,
    MAX_SEALED_KEYSLOT_ITERATIONS, SECTOR_SIZES,
};
use super::{binary, Refusal};
use serde_json::Value;

/// The requirement libcryptsetup 2.4+ writes while a volume re-encrypts.
pub const REQUIREMENT: &str = "online-reencrypt-v2";
/// Resilience modes sealroot accepts in a header it resumes.
pub const RESILIENCE: [&str; 2] = ["checksum", "journal"];

/// A header in re-encryption, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InProgress {
    /// The LUKS UUID (lower case).
    pub uuid: String,
    /// Bytes of the data segment already under the new key.
    pub done: u64,
    /// Bytes of the data segment.
    pub total: u64,
    /// The `reencrypt` keyslot's resilience (`checksum`, `journal`).
    pub resilience: String,
    /// The JSON of every `sealroot` token.
    pub tokens: Vec<Value>,
    /// Keyslots bound to the new key (the backup-final segment's digest).
    pub new_keyslots: Vec<u32>,
    /// `luks2` keyslots with a PBKDF2 KDF of at most
    /// [`MAX_SEALED_KEYSLOT_ITERATIONS`] (cheap to try a key on: a header
    /// rewritten to stall the resume before the lock gains nothing).
    pub pbkdf2_keyslots: Vec<u32>,
}

impl InProgress {
    /// Whole percent done (rounded down; 100 only when done).
    pub fn percent(&self) -> u32 {
        percent(self.done, self.total)
    }
}

/// Whole percent of `done` in `total` (rounded down; 0 of 0 is 100).
pub fn percent(done: u64, total: u64) -> u32 {
    if total == 0 {
        return 100;
    }
    ((done as u128 * 100) / total as u128).min(100) as u32
}

/// Read the metadata (`[0, 2 * hdr_size)`) of a device of `device_size`
/// bytes: `Ok(None)` when it is not in re-encryption, else the checked
/// state. A copy torn by a power cut is passed over for the valid one
/// ([`binary::read_newest_valid`]), as libcryptsetup does when it resumes.
///
/// Errors: a [`Refusal`] naming the field outside the allow-list.
pub fn inspect(metadata: &[u8], device_size: u64) -> Result<Option<InProgress>, Refusal> {
    let (bin, area) = binary::read_newest_valid(metadata)?;
    let text = binary::json_text(area)?;
    let v: Value = serde_json::from_str(text)
        .map_err(|e| Refusal::new("json area", e.to_string(), "not valid JSON"))?;
    let mandatory = v["config"]["requirements"]["mandatory"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if mandatory.is_empty() {
        return Ok(None);
    }
    if mandatory != [Value::from(REQUIREMENT)] {
        return Err(Refusal::new(
            "config.requirements.mandatory",
            v["config"]["requirements"]["mandatory"].to_string(),
            format!("in re-encryption, must be [{REQUIREMENT:?}]"),
        ));
    }
    let resilience = keyslots(&v)?;
    let pbkdf2_keyslots = obj(&v, "keyslots")?
        .iter()
        .filter(|(_, k)| {
            k["type"] == "luks2"
                && k["kdf"]["type"] == "pbkdf2"
                && k["kdf"]["iterations"]
                    .as_u64()
                    .is_some_and(|n| n <= u64::from(MAX_SEALED_KEYSLOT_ITERATIONS))
        })
        .filter_map(|(id, _)| id.parse().ok())
        .collect();
    let Segments { offset, data, fin } = segments(&v)?;
    let digests = obj(&v, "digests")?;
    let final_digest = digests
        .values()
        .find(|d| ids(&d["segments"]).iter().any(|s| fin.contains(s)))
        .ok_or_else(|| Refusal::new("digests", "", "no digest for the new key"))?;
    let new_keyslots = ids(&final_digest["keyslots"]);
    let done = ids(&final_digest["segments"])
        .iter()
        .filter(|s| data.contains(s))
        .map(|s| size(&v["segments"][s.to_string()]["size"]).unwrap_or(0))
        .sum();
    let tokens = obj(&v, "tokens")?
        .values()
        .filter(|t| t["type"] == crate::formats::blob::TOKEN_TYPE)
        .cloned()
        .collect();
    Ok(Some(InProgress {
        uuid: bin.uuid,
        done,
        total: device_size.saturating_sub(offset),
        resilience,
        tokens,
        new_keyslots,
        pbkdf2_keyslots,
    }))
}

fn obj<'a>(v: &'a Value, k: &str) -> Result<&'a serde_json::Map<String, Value>, Refusal> {
    v[k].as_object()
        .ok_or_else(|| Refusal::new(k, v[k].to_string(), "must be an object"))
}

/// Ids in a list of decimal strings (what digests' lists hold).
fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .map(|a| a.iter().filter_map(|s| s.as_str()?.parse().ok()).collect())
        .unwrap_or_default()
}

/// A decimal-string size (`None` for "dynamic" or anything else).
fn size(v: &Value) -> Option<u64> {
    v.as_str()?.parse().ok()
}

/// Every keyslot: one `reencrypt` keyslot with an accepted resilience, and
/// `luks2` keyslots with the allowed area cipher and bounded KDF. Returns
/// the resilience.
fn keyslots(v: &Value) -> Result<String, Refusal> {
    let mut resilience = None;
    for (id, k) in obj(v, "keyslots")? {
        let f = |s: &str| format!("keyslots.{id}.{s}");
        match k["type"].as_str() {
            Some("reencrypt") => {
                let r = k["area"]["type"].as_str().unwrap_or_default();
                if !RESILIENCE.contains(&r) || k["mode"] != "reencrypt" || resilience.is_some() {
                    return Err(Refusal::new(
                        f("area.type"),
                        r,
                        "one reencrypt keyslot (mode reencrypt, resilience checksum or journal)",
                    ));
                }
                resilience = Some(r.to_string());
            }
            Some("luks2") => {
                let enc = k["area"]["encryption"].as_str().unwrap_or_default();
                if enc != CIPHER {
                    return Err(Refusal::new(
                        f("area.encryption"),
                        enc,
                        format!("must be {CIPHER}"),
                    ));
                }
                kdf(&k["kdf"], &f("kdf"))?;
            }
            other => {
                return Err(Refusal::new(
                    f("type"),
                    other.unwrap_or("none"),
                    "not luks2 or reencrypt",
                ))
            }
        }
    }
    resilience.ok_or_else(|| Refusal::new("keyslots", "", "no reencrypt keyslot"))
}

fn kdf(k: &Value, field: &str) -> Result<(), Refusal> {
    let n = |s: &str| k[s].as_u64().unwrap_or(u64::MAX);
    let ok = match k["type"].as_str() {
        Some("pbkdf2") => n("iterations") <= u64::from(MAX_PBKDF2_ITERATIONS),
        Some("argon2id" | "argon2i") => {
            n("memory") <= u64::from(MAX_ARGON2_MEMORY_KIB)
                && n("time") <= u64::from(MAX_ARGON2_TIME)
                && n("cpus") <= u64::from(MAX_ARGON2_CPUS)
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(Refusal::new(
            field,
            k.to_string(),
            "outside the KDF allow-list",
        ))
    }
}

/// Every segment is `crypt` with [`CIPHER`], an allowed sector size and no
/// integrity, starting at one offset.
/// The segments of a header in re-encryption: where the data starts, the
/// data segments' ids and the backup-final segment's.
struct Segments {
    offset: u64,
    data: Vec<u32>,
    fin: Vec<u32>,
}

fn segments(v: &Value) -> Result<Segments, Refusal> {
    let mut offset = None;
    let (mut data, mut fin) = (vec![], vec![]);
    for (id, s) in obj(v, "segments")? {
        let f = |k: &str| format!("segments.{id}.{k}");
        let enc = s["encryption"].as_str().unwrap_or_default();
        if s["type"] != "crypt" || enc != CIPHER {
            return Err(Refusal::new(
                f("encryption"),
                enc,
                format!("must be a crypt segment with {CIPHER}"),
            ));
        }
        if !s["sector_size"]
            .as_u64()
            .is_some_and(|n| SECTOR_SIZES.contains(&n))
        {
            return Err(Refusal::new(
                f("sector_size"),
                s["sector_size"].to_string(),
                "not 512 or 4096",
            ));
        }
        if !s["integrity"].is_null() {
            return Err(Refusal::new(
                f("integrity"),
                s["integrity"].to_string(),
                "sealroot re-keys volumes without integrity",
            ));
        }
        let id: u32 = id
            .parse()
            .map_err(|_| Refusal::new("segments", id, "not an id"))?;
        let flags: Vec<&str> = s["flags"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        match flags.as_slice() {
            // The hotzone of a step cut short is "in-reencryption".
            [] | ["in-reencryption"] => {
                let o = size(&s["offset"]).ok_or_else(|| {
                    Refusal::new(f("offset"), s["offset"].to_string(), "not a size")
                })?;
                offset = Some(offset.map_or(o, |p: u64| p.min(o)));
                data.push(id);
            }
            ["backup-final"] => fin.push(id),
            ["backup-previous"] | ["backup-moved-segment"] => {}
            _ => {
                return Err(Refusal::new(
                    f("flags"),
                    s["flags"].to_string(),
                    "not a re-encryption backup flag",
                ))
            }
        }
    }
    let offset = offset.ok_or_else(|| Refusal::new("segments", "", "no data segment"))?;
    Ok(Segments { offset, data, fin })
}
