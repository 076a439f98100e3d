//! The allow-list: what a LUKS2 header may say, and the ceilings on what it
//! may cost. Everything not listed here is refused.
//!
//! One cipher: sealroot formats only aes-xts-plain64, and cryptsetup's
//! default is the same; every extra cipher, mode or IV generator would be
//! attack surface the host could pick (`cipher_null` above all, which
//! CVE-2025-59054 and CVE-2025-58356 abuse to make a volume open with any
//! key and write plaintext), so none is accepted, in the segment or in a
//! keyslot area.
//!
//! The ceilings bound what the host can make the unlock spend (time,
//! memory), so a hostile header fails fast with a named field instead of
//! exhausting the initramfs. Each is set above what cryptsetup writes on a
//! legitimate volume; see each constant for the measurement behind it.

use super::metadata::{Meta, RawConfig, RawDigest, RawKdf, RawKeyslot, RawSegment, RawToken};
use super::{Argon2Kind, Kdf, Keyslot, Refusal, Segment, Token};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;

/// The only cipher, in the segment and in keyslot areas.
pub const CIPHER: &str = "aes-xts-plain64";
/// The only dm-integrity algorithm (sealroot's `--integrity`, cryptsetup's
/// `--integrity hmac-sha256`), with no journal encryption or integrity.
pub const INTEGRITY: &str = "hmac(sha256)";
/// Encryption sector sizes.
pub const SECTOR_SIZES: [u64; 2] = [512, 4096];
/// Bytes of the volume key: XTS-AES-256.
pub const KEY_SIZE: u64 = 64;
/// Bytes of the volume key with [`INTEGRITY`]: XTS key + 32-byte HMAC key.
pub const KEY_SIZE_INTEGRITY: u64 = 96;
/// Bytes of a keyslot area's XTS key.
pub const AREA_KEY_SIZE: u64 = 64;
/// Anti-forensic split: cryptsetup's only stripe count, and its hashes
/// (cryptsetup takes the keyslot's PBKDF hash: sha256 by default, sha512
/// in the keyslots systemd-cryptenroll writes).
pub const AF_STRIPES: u64 = 4000;
pub const AF_HASHES: [&str; 2] = ["sha256", "sha512"];
/// Hashes of PBKDF2 keyslots and digests.
pub const PBKDF2_HASHES: [&str; 2] = ["sha256", "sha512"];
/// Bytes of a keyslot or digest salt (cryptsetup's LUKS_SALTSIZE).
pub const SALT_LEN: usize = 32;
/// Highest keyslot priority (0 ignore, 1 normal, 2 prefer).
pub const MAX_PRIORITY: u64 = 2;

/// Bytes of one metadata copy (binary header + JSON area). LUKS2 allows up
/// to 4 MiB; cryptsetup writes 16 KiB unless told otherwise, and 1 MiB
/// already bounds the JSON (and so every token) at 1 MiB - 4 KiB.
pub const MAX_HDR_SIZE: u64 = 1 << 20;
/// Bytes of the keyslots area. cryptsetup's default is 16 MiB minus the
/// metadata and its own maximum is 128 MiB.
pub const MAX_KEYSLOTS_SIZE: u64 = 128 << 20;
/// Bytes of one keyslot area: cryptsetup writes the split key rounded up
/// to 4 KiB (258,048 bytes for a 512-bit key, 385,024 for 768 bits), so
/// 1 MiB leaves room and bounds the in-memory copy at 32 MiB of areas.
pub const MAX_KEYSLOT_AREA: u64 = 1 << 20;
/// Keyslots and tokens: LUKS2's own limit of 32 each.
pub const MAX_KEYSLOTS: usize = 32;
pub const MAX_TOKENS: usize = 32;
/// Bytes of a token's `type`.
pub const MAX_TOKEN_TYPE: usize = 64;
/// Bytes of one token's compact JSON. A sealroot or systemd-tpm2 token is
/// a few KiB.
pub const MAX_TOKEN_JSON: usize = 64 << 10;

/// PBKDF2 iterations (keyslots and digests). `cryptsetup luksFormat
/// --pbkdf pbkdf2` calibrates a 512-bit key to 2 s: it wrote 2,845,524
/// iterations (sha256) on an ordinary Xeon vCPU, and a CPU with SHA
/// extensions or `--iter-time` raises that; a ceiling of 4 M would leave
/// only 1.4 times headroom on that machine. 10 M bounds one keyslot to a
/// few seconds on any current CPU (about 7 s at the measured 1.4 M
/// iterations/s for 512-bit keys). sealroot's own TPM keyslots use 1000.
/// The most PBKDF2 iterations a keyslot that a sealroot token names may
/// ask for: sealroot writes them with 1000 (their secret is 256 random
/// bits), so more means the header was rewritten to stall the unlock.
pub const MAX_SEALED_KEYSLOT_ITERATIONS: u32 = 10_000;
pub const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;
/// Argon2 memory in KiB: 1 GiB, cryptsetup's own maximum (its default
/// keyslot uses up to this, or half the RAM when less).
pub const MAX_ARGON2_MEMORY_KIB: u32 = 1_048_576;
/// Argon2 passes. At 1 GiB cryptsetup picks 4 to 6 for its 2 s target,
/// but the pass count grows as memory shrinks: with `--pbkdf-memory 65536`
/// (64 MiB, usual on small VMs) it wrote 42. So passes are bounded by the
/// work ceiling below, and this only stops absurd counts at tiny memory.
pub const MAX_ARGON2_TIME: u32 = 1024;
/// Argon2 work, passes times KiB: 16 passes over 1 GiB, four times what
/// cryptsetup's default writes at 1 GiB (about 15 s on one core), and six
/// times the 64 MiB keyslot above.
pub const MAX_ARGON2_WORK_KIB: u64 = 16 * 1_048_576;
/// Argon2 lanes: cryptsetup's maximum of 4 threads.
pub const MAX_ARGON2_CPUS: u32 = 4;
/// Persistent activation flags that may appear in `config.flags` (none
/// weakens the cipher; discards leak which blocks are free, the owner's
/// choice).
pub const CONFIG_FLAGS: [&str; 6] = [
    "allow-discards",
    "same-cpu-crypt",
    "submit-from-crypt-cpus",
    "no-journal",
    "no-read-workqueue",
    "no-write-workqueue",
];

/// What passed the allow-list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub keyslots_size: u64,
    pub keyslots: Vec<Keyslot>,
    pub segment: Segment,
    pub tokens: Vec<Token>,
    pub flags: Vec<String>,
}

/// Compare parsed metadata with the allow-list. `hdr_size` is the
/// checked size of one metadata copy (at most [`MAX_HDR_SIZE`]),
/// `device_size` the data device's bytes; `detached`: the header is in a
/// file of its own (crypttab's `header=`), so the data segment is on
/// another device and may start at 0.
pub fn check(
    meta: &Meta,
    hdr_size: u64,
    device_size: u64,
    detached: bool,
) -> Result<Checked, Refusal> {
    config(&meta.config, hdr_size)?;
    let copy_len = 2 * hdr_size + meta.config.keyslots_size;
    let data_starts = if detached { 0 } else { copy_len };
    let segment = segment(&meta.segments, data_starts, device_size)?;
    // A detached header's keyslot areas end where its metadata does; the
    // data segment is on the other device.
    let segment_offset = if detached { u64::MAX } else { segment.offset };
    let key_size = match segment.integrity {
        Some(_) => KEY_SIZE_INTEGRITY,
        None => KEY_SIZE,
    };
    if meta.keyslots.len() > MAX_KEYSLOTS {
        return Err(over(
            "keyslots",
            meta.keyslots.len(),
            MAX_KEYSLOTS,
            "keyslots",
        ));
    }
    let keyslots = meta
        .keyslots
        .iter()
        .map(|k| keyslot(k, key_size, hdr_size, copy_len, segment_offset))
        .collect::<Result<Vec<_>, _>>()?;
    overlaps(&keyslots)?;
    let exists = |id: &u32| keyslots.iter().any(|k| k.id == *id);
    digests(&meta.digests, &exists)?;
    if meta.tokens.len() > MAX_TOKENS {
        return Err(over("tokens", meta.tokens.len(), MAX_TOKENS, "tokens"));
    }
    let tokens = meta
        .tokens
        .iter()
        .map(|t| token(t, &exists))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Checked {
        keyslots_size: meta.config.keyslots_size,
        keyslots,
        segment,
        tokens,
        flags: meta.config.flags.clone(),
    })
}

fn over(field: &str, value: impl ToString, max: impl std::fmt::Display, unit: &str) -> Refusal {
    Refusal::new(
        field,
        value.to_string(),
        format!("over the ceiling of {max} {unit}"),
    )
}

fn not_allowed(field: &str, value: &str, allowed: &[&str]) -> Refusal {
    Refusal::new(
        field,
        value,
        format!("not in the allow-list ({})", allowed.join(", ")),
    )
}

/// `value` must be `want`.
fn exactly(field: &str, value: impl ToString, want: impl ToString) -> Result<(), Refusal> {
    let (value, want) = (value.to_string(), want.to_string());
    if value == want {
        Ok(())
    } else {
        Err(Refusal::new(field, value, format!("must be {want}")))
    }
}

/// A cipher: never a null cipher, else [`CIPHER`] only.
fn cipher(field: &str, value: &str) -> Result<(), Refusal> {
    if value.to_ascii_lowercase().contains("cipher_null") {
        return Err(Refusal::new(
            field,
            value,
            "a null cipher stores plaintext (CVE-2025-59054, CVE-2025-58356)",
        ));
    }
    if value != CIPHER {
        return Err(not_allowed(field, value, &[CIPHER]));
    }
    Ok(())
}

fn config(c: &RawConfig, hdr_size: u64) -> Result<(), Refusal> {
    exactly("config.json_size", c.json_size, hdr_size - 4096)?;
    if !c.keyslots_size.is_multiple_of(4096) {
        return Err(Refusal::new(
            "config.keyslots_size",
            c.keyslots_size.to_string(),
            "not a multiple of 4096",
        ));
    }
    if c.keyslots_size > MAX_KEYSLOTS_SIZE {
        return Err(over(
            "config.keyslots_size",
            c.keyslots_size,
            MAX_KEYSLOTS_SIZE,
            "bytes",
        ));
    }
    for (i, f) in c.flags.iter().enumerate() {
        if !CONFIG_FLAGS.contains(&f.as_str()) {
            return Err(not_allowed(&format!("config.flags.{i}"), f, &CONFIG_FLAGS));
        }
    }
    if let Some(r) = c.mandatory.first() {
        return Err(Refusal::new(
            "config.requirements.mandatory.0",
            r,
            "no requirement is allowed (sealroot never reencrypts or uses OPAL)",
        ));
    }
    Ok(())
}

fn segment(segments: &[RawSegment], copy_len: u64, device_size: u64) -> Result<Segment, Refusal> {
    let s = match segments {
        [s] => s,
        _ => {
            return Err(Refusal::new(
                "segments",
                format!("{} segments", segments.len()),
                "must be exactly one",
            ))
        }
    };
    let f = |k: &str| format!("segments.{}.{k}", s.id);
    if s.id != 0 {
        return Err(Refusal::new(
            "segments",
            s.id.to_string(),
            "the one segment must have id 0",
        ));
    }
    cipher(&f("encryption"), &s.encryption)?;
    exactly(&f("iv_tweak"), s.iv_tweak, 0)?;
    if !SECTOR_SIZES.contains(&s.sector_size) {
        return Err(Refusal::new(
            f("sector_size"),
            s.sector_size.to_string(),
            "not in the allow-list (512, 4096)",
        ));
    }
    if let Some(flag) = s.flags.as_ref().and_then(|v| v.first()) {
        return Err(Refusal::new(
            f("flags.0"),
            flag,
            "no segment flag is allowed",
        ));
    }
    if let Some(i) = &s.integrity {
        if i.kind != INTEGRITY {
            return Err(not_allowed(&f("integrity.type"), &i.kind, &[INTEGRITY]));
        }
        exactly(
            &f("integrity.journal_encryption"),
            &i.journal_encryption,
            "none",
        )?;
        exactly(
            &f("integrity.journal_integrity"),
            &i.journal_integrity,
            "none",
        )?;
    }
    let offset = s.offset.to_string();
    if !s.offset.is_multiple_of(4096) {
        return Err(Refusal::new(f("offset"), offset, "not a multiple of 4096"));
    }
    if s.offset < copy_len {
        return Err(Refusal::new(
            f("offset"),
            offset,
            format!("inside the metadata and keyslots area (which ends at {copy_len})"),
        ));
    }
    if s.offset >= device_size {
        return Err(Refusal::new(
            f("offset"),
            offset,
            format!("not below the device size ({device_size})"),
        ));
    }
    if let Some(size) = s.size {
        let end = s.offset.checked_add(size);
        if size == 0 || !size.is_multiple_of(s.sector_size) {
            return Err(Refusal::new(
                f("size"),
                size.to_string(),
                "not a positive multiple of the sector size",
            ));
        }
        if end.is_none_or(|e| e > device_size) {
            return Err(Refusal::new(
                f("size"),
                size.to_string(),
                format!("offset + size is past the end of the device ({device_size})"),
            ));
        }
    }
    Ok(Segment {
        offset: s.offset,
        size: s.size,
        sector_size: s.sector_size as u32, // 512 or 4096
        encryption: s.encryption.clone(),
        integrity: s.integrity.as_ref().map(|i| i.kind.clone()),
    })
}

fn keyslot(
    k: &RawKeyslot,
    key_size: u64,
    hdr_size: u64,
    copy_len: u64,
    segment_offset: u64,
) -> Result<Keyslot, Refusal> {
    let f = |s: &str| format!("keyslots.{}.{s}", k.id);
    exactly(&f("key_size"), k.key_size, key_size)?;
    if let Some(p) = k.priority.filter(|p| *p > MAX_PRIORITY) {
        return Err(Refusal::new(f("priority"), p.to_string(), "not 0, 1 or 2"));
    }
    exactly(&f("af.stripes"), k.af_stripes, AF_STRIPES)?;
    if !AF_HASHES.contains(&k.af_hash.as_str()) {
        return Err(not_allowed(&f("af.hash"), &k.af_hash, &AF_HASHES));
    }
    cipher(&f("area.encryption"), &k.area_encryption)?;
    exactly(&f("area.key_size"), k.area_key_size, AREA_KEY_SIZE)?;
    let offset = k.area_offset.to_string();
    if k.area_offset < 2 * hdr_size {
        return Err(Refusal::new(
            f("area.offset"),
            offset,
            format!("inside the metadata (which ends at {})", 2 * hdr_size),
        ));
    }
    // The split key must fit the area, or it would be read from beyond.
    if k.area_size < key_size * AF_STRIPES {
        return Err(Refusal::new(
            f("area.size"),
            k.area_size.to_string(),
            format!(
                "smaller than the split key ({} bytes)",
                key_size * AF_STRIPES
            ),
        ));
    }
    // sealroot copies every area into memory before anything is measured:
    // a huge area must not be able to exhaust a small VM's RAM.
    if k.area_size > MAX_KEYSLOT_AREA {
        return Err(Refusal::new(
            f("area.size"),
            k.area_size.to_string(),
            format!("over the ceiling of {MAX_KEYSLOT_AREA} bytes per keyslot area"),
        ));
    }
    let end = k.area_offset.checked_add(k.area_size);
    if end.is_none_or(|e| e > copy_len || e > segment_offset) {
        return Err(Refusal::new(
            f("area.size"),
            k.area_size.to_string(),
            format!("the area ends past the keyslots area (which ends at {copy_len})"),
        ));
    }
    Ok(Keyslot {
        id: k.id,
        key_size: key_size as u32, // 64 or 96
        area_offset: k.area_offset,
        area_size: k.area_size,
        af_hash: k.af_hash.clone(),
        kdf: kdf(&k.kdf, &f("kdf"))?,
    })
}

fn kdf(k: &RawKdf, field: &str) -> Result<Kdf, Refusal> {
    let f = |s: &str| format!("{field}.{s}");
    /// `value` in `1..=max`.
    fn bounded(field: &str, value: u64, max: u32, unit: &str) -> Result<u32, Refusal> {
        if value == 0 {
            return Err(Refusal::new(field, "0", "must be at least 1"));
        }
        u32::try_from(value)
            .ok()
            .filter(|v| *v <= max)
            .ok_or_else(|| over(field, value, max, unit))
    }
    match k {
        RawKdf::Pbkdf2 {
            hash,
            iterations,
            salt,
        } => {
            if !PBKDF2_HASHES.contains(&hash.as_str()) {
                return Err(not_allowed(&f("hash"), hash, &PBKDF2_HASHES));
            }
            let iterations = bounded(
                &f("iterations"),
                *iterations,
                MAX_PBKDF2_ITERATIONS,
                "iterations",
            )?;
            let salt = base64_len(&f("salt"), salt, SALT_LEN)?;
            Ok(Kdf::Pbkdf2 {
                hash: hash.clone(),
                iterations,
                salt,
            })
        }
        RawKdf::Argon2 {
            kind,
            time,
            memory,
            cpus,
            salt,
        } => {
            let time = bounded(&f("time"), *time, MAX_ARGON2_TIME, "passes")?;
            let memory_kib = bounded(&f("memory"), *memory, MAX_ARGON2_MEMORY_KIB, "KiB")?;
            let cpus = bounded(&f("cpus"), *cpus, MAX_ARGON2_CPUS, "threads")?;
            let work = u64::from(time) * u64::from(memory_kib);
            if work > MAX_ARGON2_WORK_KIB {
                return Err(Refusal::new(
                    f("time"),
                    time.to_string(),
                    format!(
                        "{time} passes over {memory_kib} KiB are over the ceiling of \
                         {MAX_ARGON2_WORK_KIB} KiB of work"
                    ),
                ));
            }
            base64_len(&f("salt"), salt, SALT_LEN)?;
            Ok(Kdf::Argon2 {
                kind: if kind == "argon2i" {
                    Argon2Kind::I
                } else {
                    Argon2Kind::Id
                },
                time,
                memory_kib,
                cpus,
            })
        }
    }
}

/// Standard base64 (padded) of exactly `len` bytes.
/// The bytes of base64 `s`, which must be `len` long.
fn base64_len(field: &str, s: &str, len: usize) -> Result<Vec<u8>, Refusal> {
    match B64.decode(s) {
        Ok(b) if b.len() == len => Ok(b),
        _ => Err(Refusal::new(field, s, format!("not base64 of {len} bytes"))),
    }
}

/// Keyslot areas of distinct keyslots must not overlap.
fn overlaps(keyslots: &[Keyslot]) -> Result<(), Refusal> {
    let mut by_offset: Vec<&Keyslot> = keyslots.iter().collect();
    by_offset.sort_by_key(|k| k.area_offset);
    for w in by_offset.windows(2) {
        if w[0].area_offset + w[0].area_size > w[1].area_offset {
            return Err(Refusal::new(
                format!("keyslots.{}.area.offset", w[1].id),
                w[1].area_offset.to_string(),
                format!("overlaps the area of keyslot {}", w[0].id),
            ));
        }
    }
    Ok(())
}

fn digests(digests: &[RawDigest], keyslot_exists: &dyn Fn(&u32) -> bool) -> Result<(), Refusal> {
    let mut keyslots_seen = Vec::new();
    let mut covers_segment = false;
    for d in digests {
        let f = |s: &str| format!("digests.{}.{s}", d.id);
        if !PBKDF2_HASHES.contains(&d.hash.as_str()) {
            return Err(not_allowed(&f("hash"), &d.hash, &PBKDF2_HASHES));
        }
        if d.iterations == 0 || d.iterations > u64::from(MAX_PBKDF2_ITERATIONS) {
            return Err(Refusal::new(
                f("iterations"),
                d.iterations.to_string(),
                format!("not between 1 and the ceiling of {MAX_PBKDF2_ITERATIONS}"),
            ));
        }
        base64_len(&f("salt"), &d.salt, SALT_LEN)?;
        let hash_len = if d.hash == "sha256" { 32 } else { 64 };
        base64_len(&f("digest"), &d.digest, hash_len)?;
        for (i, k) in d.keyslots.iter().enumerate() {
            let field = format!("digests.{}.keyslots.{i}", d.id);
            if !keyslot_exists(k) {
                return Err(Refusal::new(field, k.to_string(), "no such keyslot"));
            }
            if keyslots_seen.contains(k) {
                return Err(Refusal::new(field, k.to_string(), "keyslot in two digests"));
            }
            keyslots_seen.push(*k);
        }
        for (i, s) in d.segments.iter().enumerate() {
            let field = format!("digests.{}.segments.{i}", d.id);
            if *s != 0 {
                return Err(Refusal::new(field, s.to_string(), "no such segment"));
            }
            if covers_segment {
                return Err(Refusal::new(field, "0", "segment 0 in two digests"));
            }
            covers_segment = true;
        }
    }
    if !covers_segment {
        return Err(Refusal::new(
            "digests",
            format!("{} digests", digests.len()),
            "none covers segment 0",
        ));
    }
    Ok(())
}

fn token(t: &RawToken, keyslot_exists: &dyn Fn(&u32) -> bool) -> Result<Token, Refusal> {
    let f = |s: &str| format!("tokens.{}{s}", t.id);
    if t.kind.len() > MAX_TOKEN_TYPE {
        return Err(over(&f(".type"), &t.kind, MAX_TOKEN_TYPE, "bytes"));
    }
    if t.json_len > MAX_TOKEN_JSON {
        return Err(over(
            &f(""),
            format!("{} bytes of JSON", t.json_len),
            MAX_TOKEN_JSON,
            "bytes",
        ));
    }
    for (i, k) in t.keyslots.iter().enumerate() {
        if !keyslot_exists(k) {
            return Err(Refusal::new(
                f(&format!(".keyslots.{i}")),
                k.to_string(),
                "no such keyslot",
            ));
        }
    }
    Ok(Token {
        id: t.id,
        kind: t.kind.clone(),
        keyslots: t.keyslots.clone(),
        json_len: t.json_len,
    })
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{self, DEFAULT, DEVICE, PBKDF2};
    use super::super::{metadata, validate};
    use super::*;
    use serde_json::{json, Value};

    type Edit = fn(&mut Value);

    /// Each edit of `base`'s JSON is refused, naming `field` (and `value`
    /// unless empty).
    fn each_refused(base: &[u8], cases: &[(&str, &str, Edit)]) {
        for (field, value, edit) in cases {
            let b = testkit::with_json(base, edit);
            let r = validate(&b, DEVICE).expect_err(field);
            assert_eq!(r.field, *field, "{r}");
            if !value.is_empty() {
                assert_eq!(r.value, *value, "{r}");
            }
        }
    }

    fn integrity(v: &mut Value) {
        v["segments"]["0"]["integrity"] = json!({
            "type": "hmac(sha256)", "journal_encryption": "none", "journal_integrity": "none"
        });
    }

    #[test]
    fn config_rules() {
        each_refused(
            DEFAULT,
            &[
                ("config.json_size", "28672", |v| {
                    v["config"]["json_size"] = json!("28672")
                }),
                ("config.keyslots_size", "16744447", |v| {
                    v["config"]["keyslots_size"] = json!("16744447")
                }),
                ("config.keyslots_size", "134254592", |v| {
                    v["config"]["keyslots_size"] = json!("134254592")
                }),
                ("config.flags.1", "no-discards", |v| {
                    v["config"]["flags"] = json!(["allow-discards", "no-discards"])
                }),
                (
                    "config.requirements.mandatory.0",
                    "online-reencrypt-v2",
                    |v| v["config"]["requirements"] = json!({"mandatory": ["online-reencrypt-v2"]}),
                ),
            ],
        );
        let b = testkit::with_json(DEFAULT, |v| {
            v["config"]["flags"] = json!(CONFIG_FLAGS);
            v["config"]["requirements"] = json!({"mandatory": []});
        });
        assert_eq!(validate(&b, DEVICE).unwrap().flags, CONFIG_FLAGS);
        let r = validate(
            &testkit::with_json(DEFAULT, |v| {
                v["config"]["keyslots_size"] = json!("134254592")
            }),
            DEVICE,
        )
        .unwrap_err();
        assert_eq!(r.rule, "over the ceiling of 134217728 bytes");
    }

    #[test]
    fn segment_rules() {
        each_refused(
            DEFAULT,
            &[
                ("segments", "2 segments", |v| {
                    v["segments"]["1"] = v["segments"]["0"].clone()
                }),
                ("segments", "1", |v| {
                    v["segments"] = json!({"1": v["segments"]["0"].clone()})
                }),
                ("segments", "0 segments", |v| v["segments"] = json!({})),
                ("segments.0.encryption", "cipher_null-ecb", |v| {
                    v["segments"]["0"]["encryption"] = json!("cipher_null-ecb")
                }),
                ("segments.0.encryption", "CIPHER_NULL", |v| {
                    v["segments"]["0"]["encryption"] = json!("CIPHER_NULL")
                }),
                ("segments.0.encryption", "aes-cbc-essiv:sha256", |v| {
                    v["segments"]["0"]["encryption"] = json!("aes-cbc-essiv:sha256")
                }),
                ("segments.0.iv_tweak", "1", |v| {
                    v["segments"]["0"]["iv_tweak"] = json!("1")
                }),
                ("segments.0.sector_size", "1024", |v| {
                    v["segments"]["0"]["sector_size"] = json!(1024)
                }),
                ("segments.0.flags.0", "backup-previous", |v| {
                    v["segments"]["0"]["flags"] = json!(["backup-previous"])
                }),
                ("segments.0.integrity.type", "hmac(sha512)", |v| {
                    integrity(v);
                    v["segments"]["0"]["integrity"]["type"] = json!("hmac(sha512)")
                }),
                ("segments.0.integrity.journal_encryption", "aes", |v| {
                    integrity(v);
                    v["segments"]["0"]["integrity"]["journal_encryption"] = json!("aes")
                }),
                ("segments.0.integrity.journal_integrity", "crc32c", |v| {
                    integrity(v);
                    v["segments"]["0"]["integrity"]["journal_integrity"] = json!("crc32c")
                }),
                ("segments.0.offset", "16777728", |v| {
                    v["segments"]["0"]["offset"] = json!("16777728")
                }),
                ("segments.0.offset", "16773120", |v| {
                    v["segments"]["0"]["offset"] = json!("16773120")
                }),
                ("segments.0.offset", "33554432", |v| {
                    v["segments"]["0"]["offset"] = json!("33554432")
                }),
                ("segments.0.size", "0", |v| {
                    v["segments"]["0"]["size"] = json!("0")
                }),
                ("segments.0.size", "512", |v| {
                    v["segments"]["0"]["size"] = json!("512")
                }),
                ("segments.0.size", "16781312", |v| {
                    v["segments"]["0"]["size"] = json!("16781312")
                }),
                ("segments.0.size", "18446744073709551615", |v| {
                    v["segments"]["0"]["size"] = json!("18446744073709551615")
                }),
            ],
        );
        let b = testkit::with_json(DEFAULT, |v| {
            v["segments"]["0"]["size"] = json!("16777216");
            v["segments"]["0"]["flags"] = json!([]);
        });
        assert_eq!(validate(&b, DEVICE).unwrap().segment.size, Some(16 << 20));
        let r = validate(
            &testkit::with_json(DEFAULT, |v| {
                v["segments"]["0"]["encryption"] = json!("twofish-xts-plain64")
            }),
            DEVICE,
        )
        .unwrap_err();
        assert_eq!(r.rule, "not in the allow-list (aes-xts-plain64)");
    }

    #[test]
    fn keyslot_rules() {
        each_refused(
            PBKDF2,
            &[
                ("keyslots.0.key_size", "32", |v| {
                    v["keyslots"]["0"]["key_size"] = json!(32)
                }),
                // An integrity volume's key is 96 bytes.
                ("keyslots.0.key_size", "64", integrity),
                ("keyslots.1.priority", "3", |v| {
                    v["keyslots"]["1"]["priority"] = json!(3)
                }),
                ("keyslots.0.af.stripes", "1", |v| {
                    v["keyslots"]["0"]["af"]["stripes"] = json!(1)
                }),
                ("keyslots.0.af.hash", "sha1", |v| {
                    v["keyslots"]["0"]["af"]["hash"] = json!("sha1")
                }),
                ("keyslots.1.area.encryption", "cipher_null-ecb", |v| {
                    v["keyslots"]["1"]["area"]["encryption"] = json!("cipher_null-ecb")
                }),
                ("keyslots.1.area.encryption", "aes-cbc-plain64", |v| {
                    v["keyslots"]["1"]["area"]["encryption"] = json!("aes-cbc-plain64")
                }),
                ("keyslots.0.area.key_size", "32", |v| {
                    v["keyslots"]["0"]["area"]["key_size"] = json!(32)
                }),
                ("keyslots.0.area.offset", "16384", |v| {
                    v["keyslots"]["0"]["area"]["offset"] = json!("16384")
                }),
                ("keyslots.0.area.size", "255999", |v| {
                    v["keyslots"]["0"]["area"]["size"] = json!("255999")
                }),
                // Past the keyslots area, which ends where the data begins.
                ("keyslots.1.area.size", "16744448", |v| {
                    v["keyslots"]["1"]["area"]["size"] = json!("16744448")
                }),
                ("keyslots.1.area.size", "2097152", |v| {
                    v["keyslots"]["1"]["area"]["size"] = json!("2097152")
                }),
                ("keyslots.1.area.size", "18446744073709551615", |v| {
                    v["keyslots"]["1"]["area"]["size"] = json!("18446744073709551615")
                }),
                ("keyslots.1.area.offset", "36864", |v| {
                    v["keyslots"]["1"]["area"]["offset"] = json!("36864")
                }),
                ("keyslots.1.area.offset", "32768", |v| {
                    v["keyslots"]["1"]["area"]["offset"] = json!("32768")
                }),
            ],
        );
        // Ending exactly at the keyslots area's end is fine.
        let b = testkit::with_json(PBKDF2, |v| {
            v["keyslots"]["1"]["area"]["offset"] = ((16u64 << 20) - 258048).to_string().into();
        });
        assert!(validate(&b, DEVICE).is_ok());
    }

    #[test]
    fn kdf_rules() {
        each_refused(
            PBKDF2,
            &[
                ("keyslots.0.kdf.hash", "sha1", |v| {
                    v["keyslots"]["0"]["kdf"]["hash"] = json!("sha1")
                }),
                ("keyslots.0.kdf.iterations", "0", |v| {
                    v["keyslots"]["0"]["kdf"]["iterations"] = json!(0)
                }),
                ("keyslots.0.kdf.iterations", "10000001", |v| {
                    v["keyslots"]["0"]["kdf"]["iterations"] = json!(10_000_001)
                }),
                ("keyslots.0.kdf.iterations", "4294967296", |v| {
                    v["keyslots"]["0"]["kdf"]["iterations"] = json!(1u64 << 32)
                }),
                ("keyslots.0.kdf.salt", "AAAA", |v| {
                    v["keyslots"]["0"]["kdf"]["salt"] = json!("AAAA")
                }),
                ("keyslots.1.kdf.time", "0", |v| {
                    v["keyslots"]["1"]["kdf"]["time"] = json!(0)
                }),
                ("keyslots.1.kdf.time", "1025", |v| {
                    v["keyslots"]["1"]["kdf"]["time"] = json!(1025)
                }),
                ("keyslots.1.kdf.memory", "4194304", |v| {
                    v["keyslots"]["1"]["kdf"]["memory"] = json!(4_194_304)
                }),
                ("keyslots.1.kdf.cpus", "5", |v| {
                    v["keyslots"]["1"]["kdf"]["cpus"] = json!(5)
                }),
                // 257 passes over 64 MiB: more than 16 over 1 GiB.
                ("keyslots.1.kdf.time", "257", |v| {
                    v["keyslots"]["1"]["kdf"]["time"] = json!(257)
                }),
                ("keyslots.1.kdf.salt", "not base64!", |v| {
                    v["keyslots"]["1"]["kdf"]["salt"] = json!("not base64!")
                }),
            ],
        );
        let r = validate(
            &testkit::with_json(PBKDF2, |v| {
                v["keyslots"]["1"]["kdf"]["memory"] = json!(4_194_304)
            }),
            DEVICE,
        )
        .unwrap_err();
        assert_eq!(r.rule, "over the ceiling of 1048576 KiB");
        // At the ceilings, and argon2i.
        let b = testkit::with_json(PBKDF2, |v| {
            v["keyslots"]["0"]["kdf"]["iterations"] = json!(MAX_PBKDF2_ITERATIONS);
            v["keyslots"]["0"]["kdf"]["hash"] = json!("sha512");
            v["keyslots"]["1"]["kdf"] = json!({
                "type": "argon2i", "time": 16, "memory": 1_048_576, "cpus": 4,
                "salt": v["keyslots"]["1"]["kdf"]["salt"].clone()
            });
        });
        let h = validate(&b, DEVICE).unwrap();
        assert_eq!(
            h.keyslot(1).unwrap().kdf,
            Kdf::Argon2 {
                kind: Argon2Kind::I,
                time: 16,
                memory_kib: 1_048_576,
                cpus: 4
            }
        );
    }

    #[test]
    fn digest_rules() {
        each_refused(
            PBKDF2,
            &[
                ("digests.0.hash", "md5", |v| {
                    v["digests"]["0"]["hash"] = json!("md5")
                }),
                ("digests.0.iterations", "0", |v| {
                    v["digests"]["0"]["iterations"] = json!(0)
                }),
                ("digests.0.iterations", "10000001", |v| {
                    v["digests"]["0"]["iterations"] = json!(10_000_001)
                }),
                ("digests.0.salt", "", |v| {
                    v["digests"]["0"]["salt"] = json!("")
                }),
                // A sha512 digest is 64 bytes.
                ("digests.0.digest", "", |v| {
                    v["digests"]["0"]["hash"] = json!("sha512")
                }),
                ("digests.0.keyslots.2", "5", |v| {
                    v["digests"]["0"]["keyslots"] = json!(["0", "1", "5"])
                }),
                ("digests.2.keyslots.0", "1", |v| {
                    v["digests"]["0"]["keyslots"] = json!(["0"]);
                    v["digests"]["1"] = v["digests"]["0"].clone();
                    v["digests"]["1"]["keyslots"] = json!(["1"]);
                    v["digests"]["1"]["segments"] = json!([]);
                    v["digests"]["2"] = v["digests"]["1"].clone();
                }),
                ("digests.0.segments.0", "1", |v| {
                    v["digests"]["0"]["segments"] = json!(["1"])
                }),
                ("digests.1.segments.0", "0", |v| {
                    v["digests"]["0"]["keyslots"] = json!(["0"]);
                    v["digests"]["1"] = v["digests"]["0"].clone();
                    v["digests"]["1"]["keyslots"] = json!(["1"]);
                }),
                ("digests", "1 digests", |v| {
                    v["digests"]["0"]["segments"] = json!([])
                }),
                ("digests", "0 digests", |v| v["digests"] = json!({})),
            ],
        );
        // An unbound keyslot: its digest covers no segment.
        let b = testkit::with_json(PBKDF2, |v| {
            v["digests"]["0"]["keyslots"] = json!(["0"]);
            v["digests"]["1"] = v["digests"]["0"].clone();
            v["digests"]["1"]["keyslots"] = json!(["1"]);
            v["digests"]["1"]["segments"] = json!([]);
        });
        assert!(validate(&b, DEVICE).is_ok());
    }

    #[test]
    fn token_rules() {
        each_refused(
            PBKDF2,
            &[
                ("tokens.0.type", "", |v| {
                    v["tokens"]["0"]["type"] = json!("t".repeat(65))
                }),
                ("tokens.0.keyslots.1", "2", |v| {
                    v["tokens"]["0"]["keyslots"] = json!(["0", "2"])
                }),
            ],
        );
        let b = testkit::with_json(PBKDF2, |v| {
            v["tokens"]["31"] = json!({"type": "t".repeat(64), "keyslots": ["1", "0"]});
        });
        let h = validate(&b, DEVICE).unwrap();
        assert_eq!(h.tokens[1].id, 31);
        assert_eq!(h.tokens[1].keyslots, vec![1, 0]);
    }

    #[test]
    fn token_size_and_counts_over_the_ceilings_are_refused() {
        // Ids 0 to 31 already make this impossible from JSON; the ceiling
        // holds whatever the parser admits.
        let mut m =
            metadata::parse(&serde_json::to_string(&testkit::json(PBKDF2)).unwrap()).unwrap();
        let t = m.tokens[0].clone();
        m.tokens = vec![t; 33];
        let r = check(&m, 16384, DEVICE, false).unwrap_err();
        assert_eq!((r.field.as_str(), r.value.as_str()), ("tokens", "33"));
        // A token's JSON over 64 KiB needs metadata over 64 KiB.
        m.tokens.truncate(1);
        m.tokens[0].json_len = MAX_TOKEN_JSON + 1;
        let r = check(&m, 16384, DEVICE, false).unwrap_err();
        assert_eq!(r.field, "tokens.0");
        assert_eq!(r.value, "65537 bytes of JSON");
        assert_eq!(r.rule, "over the ceiling of 65536 bytes");
        let k = m.keyslots[0].clone();
        m.keyslots = vec![k; 33];
        let r = check(&m, 16384, DEVICE, false).unwrap_err();
        assert_eq!((r.field.as_str(), r.value.as_str()), ("keyslots", "33"));
    }
}
