//! What a device holds, and whether ephemeral mode may format it (pure).
//!
//! Formatting destroys whatever was there, so the decision is made here from
//! probed facts (the device's first bytes, and its LUKS2 header as
//! libcryptsetup reads it) and tested without any device: a misconfigured
//! crypttab must never wipe a persistent volume. See docs/ephemeral.md.

use super::blob::TOKEN_TYPE;
use super::ephemeral::SUBSYSTEM;

/// How many bytes at the start of a device [`probe`] looks at.
pub const PROBE_BYTES: usize = 1 << 20;

/// The LUKS fields of the binary header (the part libcryptsetup has no
/// getter for: label and subsystem).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LuksHeader {
    pub version: u16,
    pub label: String,
    pub subsystem: String,
}

const LUKS_MAGIC: &[u8; 6] = b"LUKS\xba\xbe";
const LUKS2_SECONDARY_MAGIC: &[u8; 6] = b"SKUL\xba\xbe";

fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// Parse the LUKS binary header at the start of `b`. LUKS1 has no label or
/// subsystem; both are empty then.
pub fn parse_luks_header(b: &[u8]) -> Option<LuksHeader> {
    if b.len() < 512 || &b[..6] != LUKS_MAGIC {
        return None;
    }
    let version = u16::from_be_bytes([b[6], b[7]]);
    let (label, subsystem) = if version == 2 {
        (cstr(&b[24..72]), cstr(&b[208..256]))
    } else {
        (String::new(), String::new())
    };
    Some(LuksHeader {
        version,
        label,
        subsystem,
    })
}

/// What the first bytes of a device say it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// Only zero bytes (a new disk, or a discarded one).
    Blank,
    /// A LUKS header (primary; or a LUKS2 secondary one when the primary is
    /// gone, reported as version 2 with empty label and subsystem).
    Luks(LuksHeader),
    /// A filesystem, swap, RAID/LVM member or partition table.
    Signature(&'static str),
    /// Non-zero bytes without a known signature: possibly a plain dm-crypt
    /// volume, which looks like random data.
    Unknown,
}

fn at(b: &[u8], off: usize, magic: &[u8]) -> bool {
    b.get(off..off + magic.len()) == Some(magic)
}

/// Recognise what `head` (the first up to [`PROBE_BYTES`] of a device)
/// holds. The first match in this order wins: LUKS, filesystems and other
/// signatures, partition tables, blank, unknown.
pub fn probe(head: &[u8]) -> Content {
    if let Some(h) = parse_luks_header(head) {
        return Content::Luks(h);
    }
    // LUKS2 keeps a second header copy at one of these offsets.
    for off in [
        0x4000usize,
        0x8000,
        0x10000,
        0x20000,
        0x40000,
        0x80000,
        0x100000,
        0x200000,
        0x400000,
    ] {
        if at(head, off, LUKS2_SECONDARY_MAGIC) {
            return Content::Luks(LuksHeader {
                version: 2,
                label: String::new(),
                subsystem: String::new(),
            });
        }
    }
    let sigs: &[(usize, &[u8], &'static str)] = &[
        (0x438, &[0x53, 0xef], "ext2/3/4 filesystem"),
        (0, b"XFSB", "XFS filesystem"),
        (0x10040, b"_BHRfS_M", "btrfs filesystem"),
        (3, b"NTFS    ", "NTFS filesystem"),
        (3, b"EXFAT   ", "exFAT filesystem"),
        (0x52, b"FAT32   ", "FAT32 filesystem"),
        (0x36, b"FAT12   ", "FAT filesystem"),
        (0x36, b"FAT16   ", "FAT filesystem"),
        (4086, b"SWAPSPACE2", "swap space"),
        (4086, b"SWAP-SPACE", "swap space"),
        (0x218, b"LVM2 001", "LVM physical volume"),
        (0, b"hsqs", "squashfs filesystem"),
        (0, b"verity\0\0", "dm-verity hash device"),
        (0x8001, b"CD001", "ISO 9660 filesystem"),
        (0x1000, &[0xfc, 0x4e, 0x2b, 0xa9], "Linux RAID member"),
        (0x200, b"EFI PART", "GPT partition table"),
    ];
    for &(off, magic, what) in sigs {
        if at(head, off, magic) {
            return Content::Signature(what);
        }
    }
    if at(head, 510, &[0x55, 0xaa]) {
        return Content::Signature("MBR partition table or boot sector");
    }
    if head.iter().all(|&b| b == 0) {
        Content::Blank
    } else {
        Content::Unknown
    }
}

/// What libcryptsetup says about a LUKS header (the edge fills this in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LuksFacts {
    /// libcryptsetup could load the header (checksums valid, LUKS2).
    pub loaded: bool,
    pub keyslots: usize,
    /// Token types, one per active token.
    pub tokens: Vec<String>,
}

/// Why ephemeral mode may format the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allowed {
    Blank,
    /// A header written by a previous ephemeral boot (marker, no keyslot,
    /// no token): its key is gone, so is its data.
    PreviousEphemeral,
    /// `wipe-existing` and the content is not a protected LUKS volume.
    Wipe(String),
}

/// The guard: may ephemeral mode format a device holding `content`?
/// `Err` is the refusal, phrased for the operator.
pub fn decide(
    content: &Content,
    luks: Option<&LuksFacts>,
    wipe_existing: bool,
) -> Result<Allowed, String> {
    match content {
        Content::Blank => Ok(Allowed::Blank),
        Content::Luks(h) => {
            let f = luks.cloned().unwrap_or(LuksFacts {
                loaded: false,
                keyslots: 0,
                tokens: vec![],
            });
            if h.version != 2 {
                return Err(format!(
                    "holds a LUKS{} volume; ephemeral mode never formats a LUKS volume it did not create (wipe-existing does not apply)",
                    h.version
                ));
            }
            if !f.loaded {
                return Err("holds a LUKS2 header that libcryptsetup cannot load (damaged, or only a secondary copy); refusing, wipe-existing does not apply to LUKS volumes".into());
            }
            if f.tokens.iter().any(|t| t == TOKEN_TYPE) {
                return Err(format!(
                    "holds a persistent LUKS2 volume with a sealroot token ({} keyslot(s)); refusing to destroy it",
                    f.keyslots
                ));
            }
            if f.keyslots > 0 || !f.tokens.is_empty() {
                return Err(format!(
                    "holds a persistent LUKS2 volume ({} keyslot(s), token(s): {}); refusing to destroy it",
                    f.keyslots,
                    if f.tokens.is_empty() {
                        "none".to_string()
                    } else {
                        f.tokens.join(",")
                    }
                ));
            }
            if h.subsystem == SUBSYSTEM {
                return Ok(Allowed::PreviousEphemeral);
            }
            if wipe_existing {
                return Ok(Allowed::Wipe(
                    "a LUKS2 header without keyslots or tokens".into(),
                ));
            }
            Err(format!(
                "holds a LUKS2 header without keyslots whose subsystem is {:?}, not {SUBSYSTEM:?}; set wipe-existing to declare the device ephemeral",
                h.subsystem
            ))
        }
        Content::Signature(what) => {
            if wipe_existing {
                Ok(Allowed::Wipe(what.to_string()))
            } else {
                Err(format!(
                    "holds data ({what}); set wipe-existing if this device is ephemeral and its contents may be destroyed"
                ))
            }
        }
        Content::Unknown => {
            if wipe_existing {
                Ok(Allowed::Wipe("unrecognised data".into()))
            } else {
                Err("holds unrecognised non-zero data (a plain dm-crypt volume looks like this); set wipe-existing if this device is ephemeral and its contents may be destroyed".into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn luks2(subsystem: &str) -> Vec<u8> {
        let mut b = vec![0u8; 4096];
        b[..6].copy_from_slice(LUKS_MAGIC);
        b[7] = 2;
        b[24..29].copy_from_slice(b"label");
        b[208..208 + subsystem.len()].copy_from_slice(subsystem.as_bytes());
        b
    }

    fn facts(keyslots: usize, tokens: &[&str]) -> LuksFacts {
        LuksFacts {
            loaded: true,
            keyslots,
            tokens: tokens.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn probes() {
        assert_eq!(probe(&[0; 8192]), Content::Blank);
        assert_eq!(probe(&[]), Content::Blank);
        let h = luks2(SUBSYSTEM);
        assert_eq!(
            probe(&h),
            Content::Luks(LuksHeader {
                version: 2,
                label: "label".into(),
                subsystem: SUBSYSTEM.into()
            })
        );
        let mut ext4 = vec![0u8; 4096];
        ext4[0x438] = 0x53;
        ext4[0x439] = 0xef;
        assert_eq!(probe(&ext4), Content::Signature("ext2/3/4 filesystem"));
        let mut ntfs = vec![0u8; 4096];
        ntfs[3..11].copy_from_slice(b"NTFS    ");
        ntfs[510] = 0x55;
        ntfs[511] = 0xaa;
        assert_eq!(probe(&ntfs), Content::Signature("NTFS filesystem"));
        let mut mbr = vec![0u8; 4096];
        mbr[510] = 0x55;
        mbr[511] = 0xaa;
        assert!(matches!(probe(&mbr), Content::Signature(s) if s.contains("MBR")));
        let mut gpt = mbr.clone();
        gpt[512..520].copy_from_slice(b"EFI PART");
        assert_eq!(probe(&gpt), Content::Signature("GPT partition table"));
        let mut second = vec![0u8; 0x5000];
        second[0x4000..0x4006].copy_from_slice(LUKS2_SECONDARY_MAGIC);
        assert!(
            matches!(probe(&second), Content::Luks(h) if h.version == 2 && h.subsystem.is_empty())
        );
        let mut junk = vec![0u8; 4096];
        junk[4000] = 1;
        assert_eq!(probe(&junk), Content::Unknown);
        // A truncated buffer never panics.
        for n in 0..600 {
            let _ = probe(&h[..n]);
        }
    }

    #[test]
    fn guard_matrix() {
        let eph = probe(&luks2(SUBSYSTEM));
        let other = probe(&luks2("something"));
        let ext4 = Content::Signature("ext2/3/4 filesystem");
        for wipe in [false, true] {
            assert_eq!(decide(&Content::Blank, None, wipe), Ok(Allowed::Blank));
            assert_eq!(
                decide(&eph, Some(&facts(0, &[])), wipe),
                Ok(Allowed::PreviousEphemeral)
            );
            // Keyslots or tokens protect any LUKS volume, marker or not,
            // wipe-existing or not.
            for c in [&eph, &other] {
                let e = decide(c, Some(&facts(1, &[])), wipe).unwrap_err();
                assert!(e.contains("persistent LUKS2 volume (1 keyslot"), "{e}");
                let e = decide(c, Some(&facts(0, &["sealroot"])), wipe).unwrap_err();
                assert!(e.contains("sealroot token"), "{e}");
                let e = decide(c, Some(&facts(0, &["systemd-tpm2"])), wipe).unwrap_err();
                assert!(e.contains("systemd-tpm2"), "{e}");
                // unreadable header
                assert!(decide(c, None, wipe).is_err());
            }
            let luks1 = Content::Luks(LuksHeader {
                version: 1,
                label: String::new(),
                subsystem: String::new(),
            });
            assert!(decide(&luks1, None, wipe).unwrap_err().contains("LUKS1"));
        }
        // Without the marker, or with a signature, only wipe-existing formats.
        assert!(decide(&other, Some(&facts(0, &[])), false).is_err());
        assert!(matches!(
            decide(&other, Some(&facts(0, &[])), true),
            Ok(Allowed::Wipe(_))
        ));
        let e = decide(&ext4, None, false).unwrap_err();
        assert!(e.contains("ext2/3/4") && e.contains("wipe-existing"), "{e}");
        assert_eq!(
            decide(&ext4, None, true),
            Ok(Allowed::Wipe("ext2/3/4 filesystem".into()))
        );
        assert!(decide(&Content::Unknown, None, false).is_err());
        assert!(decide(&Content::Unknown, None, true).is_ok());
    }
}
