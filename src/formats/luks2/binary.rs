//! The two LUKS2 binary headers (4096 bytes each, big-endian) and the JSON
//! area after each, as in cryptsetup's docs/on-disk-format-luks2.pdf:
//!
//! | offset | bytes | field |
//! |---|---|---|
//! | 0 | 6 | magic `LUKS\xba\xbe` (primary), `SKUL\xba\xbe` (secondary) |
//! | 6 | 2 | version (2) |
//! | 8 | 8 | hdr_size: binary header + JSON area |
//! | 16 | 8 | seqid |
//! | 24 | 48 | label |
//! | 72 | 32 | checksum_alg |
//! | 104 | 64 | salt |
//! | 168 | 40 | uuid |
//! | 208 | 48 | subsystem |
//! | 256 | 8 | hdr_offset: 0 (primary), hdr_size (secondary) |
//! | 264 | 184 | padding |
//! | 448 | 64 | csum: sha256 of the hdr_size bytes with this field zeroed |
//! | 512 | 3584 | padding |
//!
//! The secondary copy starts at hdr_size. Both copies must agree: a volume
//! cryptsetup wrote has the same size, seqid, uuid, label, subsystem and a
//! byte-identical JSON area in each, so any difference is a rewrite.

use super::allow::MAX_HDR_SIZE;
use super::Refusal;
use sha2::{Digest, Sha256};

/// Bytes of one binary header.
pub const BINARY_HEADER_LEN: usize = 4096;
/// Magic of the primary header.
pub const MAGIC_PRIMARY: &[u8; 6] = b"LUKS\xba\xbe";
/// Magic of the secondary header.
pub const MAGIC_SECONDARY: &[u8; 6] = b"SKUL\xba\xbe";
/// The metadata sizes the LUKS2 format defines (16 KiB to 4 MiB); only
/// those up to [`MAX_HDR_SIZE`] are accepted.
pub const HDR_SIZES: [u64; 9] = [
    16 << 10,
    32 << 10,
    64 << 10,
    128 << 10,
    256 << 10,
    512 << 10,
    1 << 20,
    2 << 20,
    4 << 20,
];
/// The only checksum algorithm accepted.
pub const CHECKSUM_ALG: &str = "sha256";

const CSUM: std::ops::Range<usize> = 448..512;

/// What the binary headers say, once both are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binary {
    pub hdr_size: u64,
    pub seqid: u64,
    /// Lowercase.
    pub uuid: String,
    pub label: String,
    pub subsystem: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    Primary,
    Secondary,
}

impl Which {
    fn name(self) -> &'static str {
        match self {
            Which::Primary => "primary binary header",
            Which::Secondary => "secondary binary header",
        }
    }
}

fn be64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(a)
}

/// `hdr_size` from the primary binary header (the device's first 4096
/// bytes; more may be passed), in bytes: checks the magic, version 2, and
/// that the size is one of [`HDR_SIZES`] and at most [`MAX_HDR_SIZE`].
/// The checksum needs the whole metadata: [`super::validate`] checks it.
pub fn hdr_size(first: &[u8]) -> Result<u64, Refusal> {
    size_of(first, Which::Primary)
}

fn size_of(h: &[u8], which: Which) -> Result<u64, Refusal> {
    let name = which.name();
    if h.len() < BINARY_HEADER_LEN {
        return Err(Refusal::new(
            name,
            format!("{} bytes", h.len()),
            "shorter than 4096 bytes",
        ));
    }
    let magic = match which {
        Which::Primary => MAGIC_PRIMARY,
        Which::Secondary => MAGIC_SECONDARY,
    };
    if &h[..6] != magic {
        return Err(Refusal::new(
            format!("{name}.magic"),
            hex::encode(&h[..6]),
            format!("not the LUKS2 magic {}", hex::encode(magic)),
        ));
    }
    let version = u16::from_be_bytes([h[6], h[7]]);
    if version != 2 {
        return Err(Refusal::new(
            format!("{name}.version"),
            version.to_string(),
            "not 2",
        ));
    }
    let size = be64(h, 8);
    if !HDR_SIZES.contains(&size) {
        return Err(Refusal::new(
            format!("{name}.hdr_size"),
            size.to_string(),
            "not a LUKS2 metadata size (16 KiB, 32 KiB, ... 4 MiB)",
        ));
    }
    if size > MAX_HDR_SIZE {
        return Err(Refusal::new(
            format!("{name}.hdr_size"),
            size.to_string(),
            format!("over the ceiling of {MAX_HDR_SIZE} bytes"),
        ));
    }
    Ok(size)
}

/// Check both copies in `metadata` (exactly `2 * hdr_size` bytes) and
/// return what they say and the primary's JSON area (`hdr_size - 4096`
/// bytes, identical in the secondary).
pub fn read_pair(metadata: &[u8]) -> Result<(Binary, &[u8]), Refusal> {
    let hs = hdr_size(metadata)?;
    if metadata.len() as u64 != 2 * hs {
        return Err(Refusal::new(
            "metadata",
            format!("{} bytes", metadata.len()),
            format!("must be exactly 2 * hdr_size = {} bytes", 2 * hs),
        ));
    }
    let hs = hs as usize; // <= MAX_HDR_SIZE
    let (p, s) = metadata.split_at(hs);
    let primary = one(p, Which::Primary, hs)?;
    let secondary = one(s, Which::Secondary, hs)?;
    let name = Which::Secondary.name();
    let differs = |what: &str, theirs: &str, ours: &str| {
        Refusal::new(
            format!("{name}.{what}"),
            theirs,
            format!("differs from the primary's ({})", super::shown(ours)),
        )
    };
    if secondary.seqid != primary.seqid {
        let (t, o) = (secondary.seqid.to_string(), primary.seqid.to_string());
        return Err(differs("seqid", &t, &o));
    }
    for (what, t, o) in [
        ("uuid", &secondary.uuid, &primary.uuid),
        ("label", &secondary.label, &primary.label),
        ("subsystem", &secondary.subsystem, &primary.subsystem),
    ] {
        if t != o {
            return Err(differs(what, t, o));
        }
    }
    let area = &p[BINARY_HEADER_LEN..];
    if s[BINARY_HEADER_LEN..] != *area {
        let at = area
            .iter()
            .zip(&s[BINARY_HEADER_LEN..])
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        return Err(Refusal::new(
            format!("{name}.json area"),
            format!("differs at byte {at}"),
            "must be byte-identical to the primary's",
        ));
    }
    Ok((primary, area))
}

/// What libcryptsetup recovers from after a write torn by a power cut:
/// the copies of [`read_pair`] when they agree, else the one copy whose
/// checksum holds (the higher `seqid` when both do; refused when both do
/// under one `seqid`). The caller checks its
/// JSON as ever; libcryptsetup then rewrites the other copy from it.
///
/// Errors: [`read_pair`]'s, when no copy is valid on its own.
pub fn read_newest_valid(metadata: &[u8]) -> Result<(Binary, &[u8]), Refusal> {
    let pair = read_pair(metadata);
    if pair.is_ok() {
        return pair;
    }
    let hs = hdr_size(metadata)? as usize;
    if metadata.len() != 2 * hs {
        return pair;
    }
    let (p, s) = metadata.split_at(hs);
    let copies = [
        one(p, Which::Primary, hs).map(|b| (b, &p[BINARY_HEADER_LEN..])),
        one(s, Which::Secondary, hs).map(|b| (b, &s[BINARY_HEADER_LEN..])),
    ];
    let valid: Vec<(Binary, &[u8])> = copies.into_iter().flatten().collect();
    // Two valid copies that differ under one seqid: which one libcryptsetup
    // reads is not ours to guess (it takes the primary, a checker taking
    // the other would check what is not used), so neither is trusted.
    if let [(a, _), (b, _)] = valid.as_slice() {
        if a.seqid == b.seqid {
            return pair;
        }
    }
    valid
        .into_iter()
        .max_by_key(|(b, _)| b.seqid)
        .map_or(pair, Ok)
}

/// Check one copy (`hs` bytes: binary header and JSON area).
fn one(h: &[u8], which: Which, hs: usize) -> Result<Binary, Refusal> {
    let name = which.name();
    let size = size_of(h, which)?;
    if size != hs as u64 {
        return Err(Refusal::new(
            format!("{name}.hdr_size"),
            size.to_string(),
            format!("differs from the primary's ({hs})"),
        ));
    }
    let alg = text(h, 72, 32, name, "checksum_alg")?;
    if alg != CHECKSUM_ALG {
        return Err(Refusal::new(
            format!("{name}.checksum_alg"),
            alg,
            "not in the allow-list (sha256)",
        ));
    }
    let offset = be64(h, 256);
    let want = if which == Which::Primary {
        0
    } else {
        hs as u64
    };
    if offset != want {
        return Err(Refusal::new(
            format!("{name}.hdr_offset"),
            offset.to_string(),
            format!("must be {want}"),
        ));
    }
    let mut hasher = Sha256::new();
    hasher.update(&h[..CSUM.start]);
    hasher.update([0u8; 64]);
    hasher.update(&h[CSUM.end..]);
    let sum = hasher.finalize();
    if h[CSUM.start..CSUM.start + 32] != sum[..] {
        return Err(Refusal::new(
            format!("{name}.csum"),
            hex::encode(&h[CSUM.start..CSUM.start + 32]),
            format!("not the sha256 of the metadata ({})", hex::encode(sum)),
        ));
    }
    let uuid = text(h, 168, 40, name, "uuid")?;
    if !is_uuid(uuid) {
        return Err(Refusal::new(
            format!("{name}.uuid"),
            uuid,
            "not a UUID (8-4-4-4-12 hex digits)",
        ));
    }
    Ok(Binary {
        hdr_size: size,
        seqid: be64(h, 16),
        uuid: uuid.to_ascii_lowercase(),
        label: text(h, 24, 48, name, "label")?.to_string(),
        subsystem: text(h, 208, 48, name, "subsystem")?.to_string(),
    })
}

/// A NUL-terminated UTF-8 string field.
fn text<'a>(
    h: &'a [u8],
    at: usize,
    len: usize,
    name: &str,
    what: &str,
) -> Result<&'a str, Refusal> {
    let field = &h[at..at + len];
    let end = field.iter().position(|&b| b == 0).ok_or_else(|| {
        Refusal::new(
            format!("{name}.{what}"),
            String::from_utf8_lossy(field),
            "not NUL-terminated",
        )
    })?;
    std::str::from_utf8(&field[..end]).map_err(|_| {
        Refusal::new(
            format!("{name}.{what}"),
            hex::encode(&field[..end]),
            "not UTF-8",
        )
    })
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// The JSON text of a JSON area: UTF-8 up to the first NUL, and nothing
/// but NULs after it (cryptsetup pads with zeros; bytes after the JSON
/// would be a hiding place).
pub fn json_text(area: &[u8]) -> Result<&str, Refusal> {
    let end = area.iter().position(|&b| b == 0).ok_or_else(|| {
        Refusal::new(
            "json area",
            format!("{} bytes", area.len()),
            "not NUL-terminated",
        )
    })?;
    if let Some(i) = area[end..].iter().position(|&b| b != 0) {
        return Err(Refusal::new(
            "json area",
            format!("byte {} is {:#04x}", end + i, area[end + i]),
            "only NUL padding may follow the JSON",
        ));
    }
    std::str::from_utf8(&area[..end]).map_err(|e| {
        Refusal::new(
            "json area",
            format!("byte {}", e.valid_up_to()),
            "not UTF-8",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{seal, set_field, with_text, DEFAULT, PBKDF2};
    use super::super::validate;
    use super::*;

    fn refused(b: &[u8]) -> Refusal {
        validate(b, 32 << 20).unwrap_err()
    }

    /// The fixture with `f` applied to `copy` (0 primary, 1 secondary),
    /// checksums recomputed unless `keep_csum`.
    fn edit(copy: usize, keep_csum: bool, f: impl FnOnce(&mut [u8])) -> Vec<u8> {
        let mut b = DEFAULT.to_vec();
        f(&mut b[copy * 16384..(copy + 1) * 16384]);
        if !keep_csum {
            seal(&mut b);
        }
        b
    }

    #[test]
    fn hdr_size_of_the_primary() {
        assert_eq!(hdr_size(DEFAULT).unwrap(), 16384);
        assert_eq!(hdr_size(&DEFAULT[..4096]).unwrap(), 16384);
        let r = hdr_size(&DEFAULT[..4095]).unwrap_err();
        assert_eq!(r.field, "primary binary header");
        // The secondary is not a primary.
        let r = hdr_size(&DEFAULT[16384..]).unwrap_err();
        assert_eq!(r.field, "primary binary header.magic");
        assert_eq!(r.value, "534b554cbabe");
    }

    #[test]
    fn hdr_size_must_be_allowed_and_under_the_ceiling() {
        for (size, rule) in [(12288u64, "not a LUKS2"), (2 << 20, "over the ceiling")] {
            let mut b = DEFAULT[..4096].to_vec();
            b[8..16].copy_from_slice(&size.to_be_bytes());
            let r = hdr_size(&b).unwrap_err();
            assert_eq!(r.field, "primary binary header.hdr_size");
            assert_eq!(r.value, size.to_string());
            assert!(r.rule.starts_with(rule), "{r}");
        }
        // 1 MiB is accepted.
        let mut b = DEFAULT[..4096].to_vec();
        b[8..16].copy_from_slice(&(1u64 << 20).to_be_bytes());
        assert_eq!(hdr_size(&b).unwrap(), 1 << 20);
    }

    #[test]
    fn version_must_be_2() {
        let r = refused(&edit(0, false, |h| h[7] = 1));
        assert_eq!(
            (r.field.as_str(), r.value.as_str()),
            ("primary binary header.version", "1")
        );
        let r = refused(&edit(1, false, |h| h[7] = 3));
        assert_eq!(r.field, "secondary binary header.version");
    }

    #[test]
    fn metadata_must_be_both_copies_exactly() {
        for len in [16384, 32767, 32769] {
            let mut b = DEFAULT.to_vec();
            b.resize(len, 0);
            let r = refused(&b);
            assert_eq!(r.field, "metadata", "{len}");
            assert_eq!(r.value, format!("{len} bytes"));
        }
    }

    #[test]
    fn checksums_must_match() {
        for copy in [0, 1] {
            let r = refused(&edit(copy, true, |h| h[5000] ^= 1));
            let name = ["primary", "secondary"][copy];
            assert_eq!(r.field, format!("{name} binary header.csum"));
            assert!(r.rule.starts_with("not the sha256"));
        }
        let r = refused(&edit(0, true, |h| h[30] ^= 1)); // the label
        assert_eq!(r.field, "primary binary header.csum");
    }

    #[test]
    fn checksum_alg_must_be_sha256() {
        let r = refused(&edit(1, false, |h| h[72..78].copy_from_slice(b"sha512")));
        assert_eq!(r.field, "secondary binary header.checksum_alg");
        assert_eq!(r.value, "sha512");
        let r = refused(&edit(0, false, |h| h[72..104].fill(b'a')));
        assert_eq!(r.field, "primary binary header.checksum_alg");
        assert_eq!(r.rule, "not NUL-terminated");
    }

    #[test]
    fn hdr_offset_must_be_where_the_copy_is() {
        let r = refused(&edit(0, false, |h| h[263] = 1));
        assert_eq!(
            (r.field.as_str(), r.value.as_str(), r.rule.as_str()),
            ("primary binary header.hdr_offset", "1", "must be 0")
        );
        let r = refused(&edit(1, false, |h| h[256..264].fill(0)));
        assert_eq!(r.field, "secondary binary header.hdr_offset");
        assert_eq!(r.rule, "must be 16384");
    }

    #[test]
    fn the_secondary_must_agree_with_the_primary() {
        // A secondary of another size (at the right offset) is refused.
        let r = refused(&edit(1, false, |h| {
            h[8..16].copy_from_slice(&(32u64 << 10).to_be_bytes())
        }));
        assert_eq!(r.field, "secondary binary header.hdr_size");
        let r = refused(&edit(1, false, |h| h[23] ^= 1));
        assert_eq!(r.field, "secondary binary header.seqid");
        assert_eq!(r.value, "2");
        assert_eq!(r.rule, "differs from the primary's (3)");
        let r = refused(&edit(1, false, |h| h[168] = b'0'));
        assert_eq!(r.field, "secondary binary header.uuid");
        let r = refused(&edit(1, false, |h| h[24] = b'x'));
        assert_eq!(r.field, "secondary binary header.label");
        let r = refused(&edit(1, false, |h| h[208] = b'x'));
        assert_eq!(r.field, "secondary binary header.subsystem");
        let r = refused(&edit(1, false, |h| h[4096 + 20] = b' '));
        assert_eq!(r.field, "secondary binary header.json area");
        assert_eq!(r.value, "differs at byte 20");
    }

    #[test]
    fn newest_valid_takes_the_higher_seqid_and_refuses_a_tie() {
        // Copies that differ in a space of the JSON area, both sealed.
        let space = |seq2: Option<u8>| {
            edit(1, false, |h| {
                h[4096 + 20] = b' ';
                if let Some(s) = seq2 {
                    h[23] = s;
                }
            })
        };
        // One seqid (3): which copy counts is a guess, so neither does.
        let r = read_newest_valid(&space(None)).unwrap_err();
        assert_eq!(r.field, "secondary binary header.json area");
        // The secondary newer: it is the one libcryptsetup reads.
        let b = space(Some(4));
        let (bin, area) = read_newest_valid(&b).unwrap();
        assert_eq!((bin.seqid, area[20]), (4, b' '));
        // The primary newer.
        let b = space(Some(2));
        let (bin, area) = read_newest_valid(&b).unwrap();
        assert_eq!(bin.seqid, 3);
        assert_ne!(area[20], b' ');
        // A torn copy: the valid one, whatever its seqid.
        let mut b = space(Some(2));
        b[16384 + 5000] ^= 1;
        assert_eq!(read_newest_valid(&b).unwrap().0.seqid, 3);
    }

    #[test]
    fn a_different_secondary_magic_or_primary_magic_is_refused() {
        let r = refused(&edit(1, false, |h| h[..6].copy_from_slice(MAGIC_PRIMARY)));
        assert_eq!(r.field, "secondary binary header.magic");
        let r = refused(&edit(0, false, |h| h[0] = b'l'));
        assert_eq!(r.field, "primary binary header.magic");
    }

    #[test]
    fn uuid_label_and_subsystem_must_be_text() {
        let mut b = DEFAULT.to_vec();
        set_field(&mut b, 168, 40, "not-a-uuid");
        let r = refused(&b);
        assert_eq!(
            (r.field.as_str(), r.value.as_str()),
            ("primary binary header.uuid", "not-a-uuid")
        );
        let mut b = PBKDF2.to_vec();
        set_field(&mut b, 168, 40, "A321ED84-CFB5-42BC-A24C-22138B75022D");
        assert_eq!(
            validate(&b, 32 << 20).unwrap().uuid,
            "a321ed84-cfb5-42bc-a24c-22138b75022d"
        );
        let r = refused(&edit(0, false, |h| h[24..72].fill(b'L')));
        assert_eq!(r.field, "primary binary header.label");
        assert_eq!(r.rule, "not NUL-terminated");
        let r = refused(&edit(0, false, |h| h[208] = 0xff));
        assert_eq!(r.field, "primary binary header.subsystem");
        assert_eq!(r.rule, "not UTF-8");
    }

    #[test]
    fn the_json_area_is_nul_terminated_utf8_then_zeros() {
        let hs = 16384 - 4096;
        let r = refused(&with_text(DEFAULT, &vec![b' '; hs]));
        assert_eq!(
            (r.field.as_str(), r.rule.as_str()),
            ("json area", "not NUL-terminated")
        );
        let mut text = b"{}".to_vec();
        text.extend([0, 0, b'x']);
        let r = refused(&with_text(DEFAULT, &text));
        assert_eq!(r.value, "byte 4 is 0x78");
        let r = refused(&with_text(DEFAULT, b"{\"\xff\":1}"));
        assert_eq!(
            (r.field.as_str(), r.rule.as_str()),
            ("json area", "not UTF-8")
        );
    }
}
