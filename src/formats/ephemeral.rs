//! The ephemeral volume format (pure): its settings, the LUKS2 parameters
//! that mark it, and the event it measures.
//!
//! An ephemeral volume gets a fresh random key every boot that exists only
//! in kernel memory, so the previous boot's contents are crypto-shredded.
//! Whether a device may be formatted is [`super::probe`]'s decision. See
//! docs/ephemeral.md.

use crate::pcr::{sha256, Digest, SELF_PCR};

/// LUKS2 subsystem label that marks a volume formatted by ephemeral mode.
pub const SUBSYSTEM: &str = "sealroot-ephemeral";
/// Cipher and mode of every ephemeral volume (XTS-AES-256: a 512-bit key).
pub const CIPHER: (&str, &str) = ("aes", "xts-plain64");
/// Bytes of the XTS key.
pub const CIPHER_KEY_BYTES: usize = 64;
/// dm-integrity algorithm with `--integrity` (LUKS2 `integrity` field).
pub const INTEGRITY: &str = "hmac(sha256)";
/// Bytes of the HMAC key appended to the XTS key with `--integrity`.
pub const INTEGRITY_KEY_BYTES: usize = 32;
/// Encryption sector size (and the ext4 block size).
pub const SECTOR_SIZE: u32 = 4096;
/// PCRs `--measure-pcr` may use: 8-14 (0-7 are the firmware's, 15 is
/// sealroot's unlock PCR, 16 and 23 can be reset by anyone, 17-22 belong to
/// D-RTM).
pub const MEASURE_PCRS: std::ops::RangeInclusive<u32> = 8..=14;
/// Domain tag of the measured event.
const EVENT_TAG: &str = "sealroot-ephemeral-v1";

/// Filesystem to create on the new volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mkfs {
    Ext4,
    None,
}

impl Mkfs {
    pub fn parse(s: &str) -> Result<Mkfs, String> {
        match s {
            "ext4" => Ok(Mkfs::Ext4),
            "none" => Ok(Mkfs::None),
            _ => Err(format!("mkfs {s:?}: use ext4 or none")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mkfs::Ext4 => "ext4",
            Mkfs::None => "none",
        }
    }
}

impl std::str::FromStr for Mkfs {
    type Err = String;
    fn from_str(s: &str) -> Result<Mkfs, String> {
        Mkfs::parse(s)
    }
}

/// How an ephemeral volume is set up (command line, crypttab or kernel
/// command line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub integrity: bool,
    pub mkfs: Mkfs,
    /// The device is declared ephemeral: destroy a filesystem, partition
    /// table or unrecognised data on it. Never overrides a LUKS volume with
    /// keyslots or tokens.
    pub wipe_existing: bool,
    pub measure_pcr: Option<u32>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            integrity: false,
            mkfs: Mkfs::Ext4,
            wipe_existing: false,
            measure_pcr: None,
        }
    }
}

/// Check a `--measure-pcr` value.
pub fn measure_pcr_ok(p: u32) -> Result<u32, String> {
    if MEASURE_PCRS.contains(&p) {
        Ok(p)
    } else if p == SELF_PCR {
        Err(format!(
            "PCR {p} is sealroot's unlock PCR; extending it would break an unlock later in this boot (use 8-14, e.g. 13)"
        ))
    } else {
        Err(format!("PCR {p}: use one of 8-14, e.g. 13"))
    }
}

/// Volume key size for the settings.
pub fn key_bytes(integrity: bool) -> usize {
    CIPHER_KEY_BYTES + if integrity { INTEGRITY_KEY_BYTES } else { 0 }
}

/// The digest extended into `--measure-pcr`: the mode and its settings,
/// nothing that changes per boot (the UUID is random), so a verifier can
/// predict it: SHA-256 of
/// `"sealroot-ephemeral-v1\nname=NAME\ncipher=aes-xts-plain64\nintegrity=none|hmac(sha256)\n"`.
pub fn event_digest(name: &str, integrity: bool) -> Digest {
    sha256(event_text(name, integrity).as_bytes())
}

pub fn event_text(name: &str, integrity: bool) -> String {
    format!(
        "{EVENT_TAG}\nname={name}\ncipher={}-{}\nintegrity={}\n",
        CIPHER.0,
        CIPHER.1,
        if integrity { INTEGRITY } else { "none" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measurement_and_options() {
        assert_eq!(
            event_text("scratch", true),
            "sealroot-ephemeral-v1\nname=scratch\ncipher=aes-xts-plain64\nintegrity=hmac(sha256)\n"
        );
        assert_ne!(event_digest("a", false), event_digest("a", true));
        assert_ne!(event_digest("a", false), event_digest("b", false));
        assert_eq!(measure_pcr_ok(13), Ok(13));
        assert!(measure_pcr_ok(15).unwrap_err().contains("unlock PCR"));
        for p in [0, 7, 16, 23, 24] {
            assert!(measure_pcr_ok(p).is_err(), "{p}");
        }
        assert_eq!(Mkfs::parse("ext4"), Ok(Mkfs::Ext4));
        assert_eq!(Mkfs::parse("none"), Ok(Mkfs::None));
        assert!(Mkfs::parse("xfs").is_err());
        assert_eq!(key_bytes(false), 64);
        assert_eq!(key_bytes(true), 96);
    }
}
