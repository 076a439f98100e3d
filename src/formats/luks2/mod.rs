//! A LUKS2 header checked against an allow-list (pure).
//!
//! The host owns every byte of the disk, so it can rewrite the LUKS2 header
//! between boots: a `cipher_null` segment or keyslot area makes the volume
//! "unlock" with any key and hands the host plaintext it can read and write
//! (CVE-2025-59054, CVE-2025-58356); an absurd KDF cost or JSON size makes
//! the unlock exhaust memory or time; extra segments, requirement flags or
//! overlapping areas make libcryptsetup do things sealroot never asked for.
//! libcryptsetup accepts all of these, since they are legal LUKS2.
//!
//! The edge (`src/disk`) reads the metadata once into memory, calls
//! [`validate`] on those bytes, and activates from that copy, so what was
//! checked is what is used. [`validate`] accepts what sealroot writes (a
//! keyless aes-xts-plain64 volume, 4 KiB sectors, optionally with
//! `hmac(sha256)` integrity) and what `cryptsetup luksFormat --type luks2`
//! writes with its defaults or with `--pbkdf pbkdf2`, and refuses anything
//! else, naming the field, its value and the rule ([`Refusal`]). The
//! allow-list and its ceilings are the constants of [`allow`].
//!
//! Layout: [`binary`] reads the two 4096-byte binary headers and checks their
//! checksums; [`metadata`] parses the JSON area strictly into typed fields;
//! [`allow`] compares those with the allow-list.

pub mod allow;
pub mod binary;
pub mod keyslot;
pub mod metadata;
pub mod reencrypt;

pub use allow::{
    CIPHER, CONFIG_FLAGS, INTEGRITY, MAX_ARGON2_CPUS, MAX_ARGON2_MEMORY_KIB, MAX_ARGON2_TIME,
    MAX_ARGON2_WORK_KIB, MAX_HDR_SIZE, MAX_KEYSLOTS, MAX_KEYSLOTS_SIZE, MAX_KEYSLOT_AREA,
    MAX_PBKDF2_ITERATIONS, MAX_TOKENS, MAX_TOKEN_JSON, MAX_TOKEN_TYPE,
};
pub use binary::{hdr_size, BINARY_HEADER_LEN};

use std::fmt;

/// Why a header is refused: the field (a JSON path such as
/// `segments.0.encryption`, or a part of a binary header such as
/// `secondary binary header.seqid`), its value as found (control and
/// non-ASCII characters escaped, at most 80 characters), and the rule it
/// breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub field: String,
    pub value: String,
    pub rule: String,
}

impl Refusal {
    /// A refusal; `field` and `value` may hold host-controlled text, so both
    /// are made safe to print.
    pub fn new(field: impl AsRef<str>, value: impl AsRef<str>, rule: impl Into<String>) -> Self {
        Refusal {
            field: shown(field.as_ref()),
            value: shown(value.as_ref()),
            rule: rule.into(),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "LUKS2 header: {} = {}: {}",
            self.field, self.value, self.rule
        )
    }
}

impl std::error::Error for Refusal {}

/// Host-controlled text made safe for a log line: printable ASCII kept,
/// everything else escaped, cut at 80 characters.
fn shown(s: &str) -> String {
    const MAX: usize = 80;
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i == MAX {
            out.push_str("...");
            break;
        }
        if c == ' ' || c.is_ascii_graphic() {
            out.push(c);
        } else {
            out.extend(c.escape_default());
        }
    }
    out
}

/// A header that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Bytes of one metadata copy (binary header + JSON area).
    pub hdr_size: u64,
    /// Sequence number of the metadata (both copies agree).
    pub seqid: u64,
    /// The volume UUID, lowercase, `8-4-4-4-12` hex digits.
    pub uuid: String,
    /// The label (empty when none).
    pub label: String,
    /// The subsystem (empty when none; sealroot's ephemeral volumes say
    /// `sealroot-ephemeral`).
    pub subsystem: String,
    /// Bytes of the keyslots area that follows the two metadata copies.
    pub keyslots_size: u64,
    /// Keyslots by ascending id.
    pub keyslots: Vec<Keyslot>,
    /// The one data segment.
    pub segment: Segment,
    /// Tokens by ascending id.
    pub tokens: Vec<Token>,
    /// Persistent activation flags from `config.flags`, all in
    /// [`CONFIG_FLAGS`].
    pub flags: Vec<String>,
    /// The PBKDF2 digest of the data segment's volume key: its hash and
    /// iteration count. Every key check runs it once, whatever the keyslot.
    pub segment_digest: Option<(String, u64)>,
}

/// A keyslot (type `luks2`, AF `luks1` with 4000 stripes of sha256 or
/// sha512, area
/// `raw` aes-xts-plain64).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyslot {
    pub id: u32,
    /// Bytes of the volume key this keyslot holds (64, or 96 with
    /// `hmac(sha256)` integrity).
    pub key_size: u32,
    /// Byte offset of the keyslot area on the device.
    pub area_offset: u64,
    /// Bytes of the keyslot area.
    pub area_size: u64,
    /// The anti-forensic split's hash (`sha256` or `sha512`).
    pub af_hash: String,
    pub kdf: Kdf,
}

/// The KDF of a keyslot, within the ceilings of [`allow`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kdf {
    Pbkdf2 {
        /// `sha256` or `sha512`.
        hash: String,
        iterations: u32,
        /// The 32-byte salt.
        salt: Vec<u8>,
    },
    Argon2 {
        kind: Argon2Kind,
        /// Passes over the memory.
        time: u32,
        memory_kib: u32,
        /// Lanes (threads).
        cpus: u32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Argon2Kind {
    I,
    Id,
}

/// The data segment (type `crypt`, aes-xts-plain64, IV tweak 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Byte offset of the data on the device, a multiple of 4096.
    pub offset: u64,
    /// Bytes of data; `None` = to the end of the device ("dynamic").
    pub size: Option<u64>,
    /// 512 or 4096.
    pub sector_size: u32,
    /// Always [`CIPHER`].
    pub encryption: String,
    /// `Some("hmac(sha256)")` with dm-integrity, else `None`.
    pub integrity: Option<String>,
}

/// A token, its content left to whoever reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub id: u32,
    /// The token's `type` (at most [`MAX_TOKEN_TYPE`] bytes).
    pub kind: String,
    /// Keyslots it names, all existing.
    pub keyslots: Vec<u32>,
    /// Bytes of the token's JSON, compactly serialized (at most
    /// [`MAX_TOKEN_JSON`]).
    pub json_len: usize,
}

impl Header {
    /// Whether the keyslots area has room for `n` more keyslots whose
    /// split key is `key_size` bytes (4000 stripes, each area rounded up
    /// to 4 KiB as libcryptsetup places them), between the areas in use.
    pub fn room_for_keyslots(&self, n: usize, key_size: u64) -> bool {
        let need = (key_size * allow::AF_STRIPES).div_ceil(4096) * 4096;
        let start = 2 * self.hdr_size;
        let end = start + self.keyslots_size;
        let mut used: Vec<(u64, u64)> = self
            .keyslots
            .iter()
            .map(|k| (k.area_offset, k.area_offset.saturating_add(k.area_size)))
            .collect();
        used.sort_unstable();
        let (mut free, mut at) = (0u64, start);
        for (s, e) in used.into_iter().chain([(end, end)]) {
            free += s.saturating_sub(at) / need;
            at = at.max(e);
        }
        free >= n as u64
    }

    /// Bytes to copy so the copy works as a detached header: both metadata
    /// copies and the keyslots area, `2 * hdr_size + keyslots_size`.
    /// Cannot overflow: `hdr_size <= MAX_HDR_SIZE` and `keyslots_size <=
    /// MAX_KEYSLOTS_SIZE`.
    pub fn copy_len(&self) -> u64 {
        2 * self.hdr_size + self.keyslots_size
    }

    /// The byte ranges `(offset, len)` that hold data: the primary and the
    /// secondary metadata, then each keyslot's area by ascending id. Nothing
    /// else in `[0, copy_len())` means anything.
    pub fn extents(&self) -> Vec<(u64, u64)> {
        let mut out = vec![(0, self.hdr_size), (self.hdr_size, self.hdr_size)];
        out.extend(self.keyslots.iter().map(|k| (k.area_offset, k.area_size)));
        out
    }

    /// The keyslot with this id.
    pub fn keyslot(&self, id: u32) -> Option<&Keyslot> {
        self.keyslots.iter().find(|k| k.id == id)
    }
}

/// Check LUKS2 metadata against the allow-list.
///
/// `metadata` is the device's bytes `[0, 2 * hdr_size)` (both copies; get
/// `hdr_size` from the first 4096 bytes with [`hdr_size`]); `device_size`
/// is the device's size in bytes, which the data segment must fit.
///
/// Errors: the first rule broken, as a [`Refusal`] naming the field.
pub fn validate(metadata: &[u8], device_size: u64) -> Result<Header, Refusal> {
    validate_on(metadata, device_size, false)
}

/// [`validate`] for a detached header (crypttab's `header=`): the same
/// rules, except that the data segment lies on the data device of
/// `data_size` bytes (it may start at 0) rather than after the metadata.
///
/// Errors: the first rule broken, as a [`Refusal`] naming the field.
pub fn validate_detached(metadata: &[u8], data_size: u64) -> Result<Header, Refusal> {
    validate_on(metadata, data_size, true)
}

/// [`validate`] of the copy libcryptsetup would recover from when a power
/// cut tore one ([`binary::read_newest_valid`]): first-boot re-keying
/// checks it before it lets libcryptsetup rewrite the torn copy.
///
/// Errors: as [`validate`].
pub fn validate_newest(metadata: &[u8], device_size: u64) -> Result<Header, Refusal> {
    let (bin, area) = binary::read_newest_valid(metadata)?;
    validate_area(bin, area, device_size, false)
}

fn validate_on(metadata: &[u8], device_size: u64, detached: bool) -> Result<Header, Refusal> {
    let (bin, area) = binary::read_pair(metadata)?;
    validate_area(bin, area, device_size, detached)
}

fn validate_area(
    bin: binary::Binary,
    area: &[u8],
    device_size: u64,
    detached: bool,
) -> Result<Header, Refusal> {
    let text = binary::json_text(area)?;
    let meta = metadata::parse(text)?;
    let ok = allow::check(&meta, bin.hdr_size, device_size, detached)?;
    Ok(Header {
        hdr_size: bin.hdr_size,
        seqid: bin.seqid,
        uuid: bin.uuid,
        label: bin.label,
        subsystem: bin.subsystem,
        keyslots_size: ok.keyslots_size,
        keyslots: ok.keyslots,
        segment: ok.segment,
        tokens: ok.tokens,
        flags: ok.flags,
        segment_digest: meta
            .digests
            .iter()
            .find(|d| d.segments.contains(&0))
            .map(|d| (d.hash.clone(), d.iterations)),
    })
}

/// Test-only builder: real headers with their JSON replaced, checksums
/// recomputed.
#[cfg(test)]
pub(crate) mod testkit {
    use sha2::{Digest, Sha256};

    /// `cryptsetup luksFormat --type luks2` with defaults (argon2id), 32 MiB.
    pub const DEFAULT: &[u8] = include_bytes!("../../../tests/fixtures/luks2-default-header.bin");
    /// `--pbkdf pbkdf2 --pbkdf-force-iterations 1000 --sector-size 512
    /// --label root`, then an argon2id keyslot (64 MiB) and a systemd-tpm2
    /// style token.
    pub const PBKDF2: &[u8] = include_bytes!("../../../tests/fixtures/luks2-pbkdf2-header.bin");
    /// The size of the device the fixtures came from.
    pub const DEVICE: u64 = 32 << 20;

    /// hdr_size as written, even in a header edited to be refused.
    pub fn hdr(bytes: &[u8]) -> usize {
        let mut a = [0u8; 8];
        a.copy_from_slice(&bytes[8..16]);
        usize::try_from(u64::from_be_bytes(a)).unwrap()
    }

    /// The fixture's JSON.
    pub fn json(bytes: &[u8]) -> serde_json::Value {
        let hs = hdr(bytes);
        let area = &bytes[4096..hs];
        let end = area.iter().position(|&b| b == 0).unwrap();
        serde_json::from_slice(&area[..end]).unwrap()
    }

    /// Recompute both checksums in place.
    pub fn seal(bytes: &mut [u8]) {
        let hs = hdr(bytes);
        for copy in bytes.chunks_mut(hs) {
            copy[448..512].fill(0);
            let sum = Sha256::digest(&*copy);
            copy[448..480].copy_from_slice(&sum);
        }
    }

    /// Write `text` as the JSON area of both copies, then reseal.
    pub fn with_text(bytes: &[u8], text: &[u8]) -> Vec<u8> {
        let mut out = bytes.to_vec();
        let hs = hdr(bytes);
        for copy in out.chunks_mut(hs) {
            copy[4096..].fill(0);
            copy[4096..4096 + text.len()].copy_from_slice(text);
        }
        seal(&mut out);
        out
    }

    /// The fixture with its JSON edited by `f`.
    pub fn with_json(bytes: &[u8], f: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
        let mut v = json(bytes);
        f(&mut v);
        with_text(bytes, serde_json::to_string(&v).unwrap().as_bytes())
    }

    /// A NUL-padded binary string field of both copies set to `s`.
    pub fn set_field(bytes: &mut [u8], at: usize, len: usize, s: &str) {
        let hs = hdr(bytes);
        for copy in bytes.chunks_mut(hs) {
            copy[at..at + len].fill(0);
            copy[at..at + s.len()].copy_from_slice(s.as_bytes());
        }
        seal(bytes);
    }

    /// What sealroot's ephemeral mode writes: no keyslot, 4 KiB sectors,
    /// subsystem `sealroot-ephemeral`, optionally `hmac(sha256)` integrity.
    pub fn ephemeral(integrity: bool) -> Vec<u8> {
        let mut out = with_json(PBKDF2, |v| {
            v["keyslots"] = serde_json::json!({});
            v["tokens"] = serde_json::json!({});
            v["digests"]["0"]["keyslots"] = serde_json::json!([]);
            v["segments"]["0"]["sector_size"] = 4096.into();
            if integrity {
                v["segments"]["0"]["integrity"] = serde_json::json!({
                    "type": "hmac(sha256)",
                    "journal_encryption": "none",
                    "journal_integrity": "none"
                });
            }
        });
        set_field(&mut out, 24, 48, "");
        set_field(&mut out, 208, 48, "sealroot-ephemeral");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::testkit::{self, DEFAULT, DEVICE, PBKDF2};
    use super::*;

    #[test]
    fn room_for_keyslots_counts_the_free_stretches() {
        let h = validate(testkit::DEFAULT, testkit::DEVICE).unwrap();
        // 16 MiB keyslots area, one keyslot: 64 areas of 252 KiB in all.
        let per = 258048;
        let free = (h.keyslots_size - h.keyslots.iter().map(|k| k.area_size).sum::<u64>()) / per;
        assert!(h.room_for_keyslots(free as usize, 64));
        assert!(!h.room_for_keyslots(free as usize + 1, 64));
        assert!(h.room_for_keyslots(1, 96));
    }

    #[test]
    fn detached_headers_put_the_data_on_another_device() {
        use testkit::*;
        // cryptsetup luksFormat --header: the data segment starts at 0 of
        // the data device.
        let b = with_json(DEFAULT, |v| v["segments"]["0"]["offset"] = "0".into());
        let r = validate(&b, DEVICE).unwrap_err();
        assert_eq!(r.field, "segments.0.offset");
        let h = validate_detached(&b, 1 << 20).unwrap();
        assert_eq!(h.segment.offset, 0);
        // The data device must still hold the segment.
        let b = with_json(DEFAULT, |v| {
            v["segments"]["0"]["offset"] = "0".into();
            v["segments"]["0"]["size"] = (2u64 << 20).to_string().into();
        });
        assert!(validate_detached(&b, 2 << 20).is_ok());
        let r = validate_detached(&b, 1 << 20).unwrap_err();
        assert_eq!(r.field, "segments.0.size");
        // Every other rule stands.
        let b = with_json(DEFAULT, |v| {
            v["segments"]["0"]["offset"] = "0".into();
            v["segments"]["0"]["encryption"] = "cipher_null-ecb".into();
        });
        let r = validate_detached(&b, 1 << 20).unwrap_err();
        assert_eq!(r.field, "segments.0.encryption");
    }

    #[test]
    fn cryptsetup_defaults_are_accepted() {
        let h = validate(DEFAULT, DEVICE).unwrap();
        assert_eq!(h.hdr_size, 16384);
        assert_eq!(h.seqid, 3);
        assert_eq!(h.uuid.len(), 36);
        assert_eq!(h.uuid, h.uuid.to_lowercase());
        assert_eq!(h.keyslots_size, 16744448);
        assert_eq!(h.copy_len(), 16 << 20);
        assert_eq!(h.keyslots.len(), 1);
        let k = h.keyslot(0).unwrap();
        assert_eq!(
            (k.key_size, k.area_offset, k.area_size),
            (64, 32768, 258048)
        );
        assert!(matches!(
            k.kdf,
            Kdf::Argon2 {
                kind: Argon2Kind::Id,
                ..
            }
        ));
        assert_eq!(
            h.segment,
            Segment {
                offset: 16 << 20,
                size: None,
                sector_size: 4096,
                encryption: "aes-xts-plain64".into(),
                integrity: None,
            }
        );
        assert!(h.tokens.is_empty());
        assert_eq!(
            h.extents(),
            vec![(0, 16384), (16384, 16384), (32768, 258048)]
        );
        assert!(h.keyslot(1).is_none());
    }

    #[test]
    fn cryptsetup_pbkdf2_argon2id_and_a_token_are_accepted() {
        let h = validate(PBKDF2, DEVICE).unwrap();
        assert_eq!(h.label, "root");
        assert_eq!(h.segment.sector_size, 512);
        assert!(matches!(
            &h.keyslot(0).unwrap().kdf,
            Kdf::Pbkdf2 { hash, iterations: 1000, salt } if hash == "sha256" && salt.len() == 32
        ));
        assert_eq!(h.keyslot(0).unwrap().af_hash, "sha256");
        assert_eq!(
            h.keyslot(1).unwrap().kdf,
            Kdf::Argon2 {
                kind: Argon2Kind::Id,
                time: 4,
                memory_kib: 65536,
                cpus: 2
            }
        );
        assert_eq!(h.tokens.len(), 1);
        assert_eq!(h.tokens[0].kind, "systemd-tpm2");
        assert_eq!(h.tokens[0].keyslots, vec![0]);
        assert_eq!(h.extents().len(), 4);
    }

    #[test]
    fn sealroot_ephemeral_volumes_are_accepted() {
        for integrity in [false, true] {
            let h = validate(&testkit::ephemeral(integrity), DEVICE).unwrap();
            assert_eq!(h.subsystem, "sealroot-ephemeral");
            assert!(h.keyslots.is_empty());
            assert_eq!(h.segment.sector_size, 4096);
            assert_eq!(
                h.segment.integrity.as_deref(),
                integrity.then_some("hmac(sha256)")
            );
            assert_eq!(h.extents().len(), 2);
        }
    }

    #[test]
    fn an_integrity_volume_with_96_byte_keyslots_is_accepted() {
        // What `cryptsetup luksFormat --integrity hmac-sha256` writes (it
        // needs device-mapper, so the fixture is edited rather than made).
        let b = testkit::with_json(PBKDF2, |v| {
            v["segments"]["0"]["integrity"] = serde_json::json!({
                "type": "hmac(sha256)",
                "journal_encryption": "none",
                "journal_integrity": "none"
            });
            // 96 * 4000 stripes, rounded up to 4 KiB.
            for (k, offset) in [("0", 32768), ("1", 32768 + 385024)] {
                v["keyslots"][k]["key_size"] = 96.into();
                v["keyslots"][k]["area"]["offset"] = offset.to_string().into();
                v["keyslots"][k]["area"]["size"] = "385024".into();
            }
        });
        let h = validate(&b, DEVICE).unwrap();
        assert_eq!(h.keyslot(1).unwrap().key_size, 96);
    }

    #[test]
    fn refusals_print_field_value_and_rule() {
        let r = Refusal::new("segments.0.encryption", "cipher_null-ecb", "no");
        assert_eq!(
            r.to_string(),
            "LUKS2 header: segments.0.encryption = cipher_null-ecb: no"
        );
        let r = Refusal::new("tokens.0.type", "a\u{1b}[2J\n", "x");
        assert_eq!(r.value, "a\\u{1b}[2J\\n");
        assert_eq!(Refusal::new("f", "x".repeat(100), "r").value.len(), 83);
    }
}
