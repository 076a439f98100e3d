//! The state volume of a read-only, measured OS (pure): its markers, where
//! it is mounted, the guard's decision, and where a volume key comes from.
//!
//! A state volume is an empty partition the image ships; its first boot
//! formats it as LUKS2 under a fresh volume key (TPM RNG XOR kernel RNG),
//! enrolls the TPM token and makes the filesystem. The LUKS2 subsystem
//! field says how far that got: [`SUBSYSTEM_INCOMPLETE`] from the format
//! on, switched to [`SUBSYSTEM`] last, after the token and the filesystem.
//! A power cut at any step leaves blank bytes (before the header), an
//! incomplete volume (formatted afresh: nothing in it was ever used), or a
//! complete one (unlocked with the TPM like any sealroot volume).
//! See docs/first-boot.md and docs/format.md. Where a volume key comes
//! from is [`super::key_origin`].

use super::probe::{Content, LuksFacts};
use std::path::PathBuf;

/// LUKS2 subsystem of a state volume whose first boot has not finished.
pub const SUBSYSTEM_INCOMPLETE: &str = "sealroot-state-incomplete";
/// LUKS2 subsystem of a finished state volume (written last).
pub const SUBSYSTEM: &str = "sealroot-state";
/// Default LUKS2 label (the volume's mapping name is used when it fits).
pub const LABEL: &str = "sealroot-state";

/// Where the initramfs mounts the state volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateMount {
    /// The writable upper layer of an overlay root whose lower layer is the
    /// dm-verity OS image.
    Overlay,
    /// A directory of the root, such as `/var`.
    Path(PathBuf),
}

impl StateMount {
    /// `overlay`, or an absolute path without `..`, whitespace or commas.
    pub fn parse(s: &str) -> Result<StateMount, String> {
        if s == "overlay" {
            return Ok(StateMount::Overlay);
        }
        let ok = s.starts_with('/')
            && s.len() > 1
            && !s.split('/').any(|c| c == ".." || c == ".")
            && !s.contains(|c: char| c.is_whitespace() || c == ',' || c.is_control());
        if ok {
            Ok(StateMount::Path(PathBuf::from(s)))
        } else {
            Err(format!(
                "state mount {s:?}: use overlay, or an absolute directory such as /var"
            ))
        }
    }

    /// As configured (`overlay` or the path).
    pub fn as_string(&self) -> String {
        match self {
            StateMount::Overlay => "overlay".into(),
            StateMount::Path(p) => p.display().to_string(),
        }
    }
}

/// What the guard found on a state partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// Only zero bytes: a first boot.
    Blank,
    /// A state volume whose first boot did not finish: formatted afresh.
    Incomplete,
    /// A finished state volume: unlocked with the TPM.
    Complete,
}

/// The guard: what to do with a partition configured as a state volume,
/// from what it holds (`facts` for a LUKS header). `Err` names why it is
/// refused: anything that is neither blank nor a sealroot state volume
/// (a filesystem, unknown data, another LUKS volume, a LUKS2 header that
/// does not load) is never formatted. A "complete" volume must carry a
/// sealroot token; whether that token is authentic is the unlock's check
/// (the envelope, the TPM and the volume-key fingerprint).
pub fn decide(content: &Content, facts: Option<&LuksFacts>) -> Result<Found, String> {
    match content {
        Content::Blank => Ok(Found::Blank),
        Content::Luks(h) if h.version == 2 && h.subsystem == SUBSYSTEM_INCOMPLETE => {
            Ok(Found::Incomplete)
        }
        Content::Luks(h) if h.version == 2 && h.subsystem == SUBSYSTEM => match facts {
            Some(f) if !f.loaded => {
                Err("holds a state volume whose LUKS2 header does not load".into())
            }
            Some(f) if !f.tokens.iter().any(|t| t == super::blob::TOKEN_TYPE) => Err(
                "holds a LUKS2 volume marked as a finished state volume, but with no sealroot token"
                    .into(),
            ),
            _ => Ok(Found::Complete),
        },
        Content::Luks(h) if h.version == 2 && h.subsystem.is_empty() && h.label.is_empty() => {
            Err("holds a LUKS2 volume that is not a sealroot state volume (no marker)".into())
        }
        Content::Luks(h) if h.version == 2 => Err(format!(
            "holds a LUKS2 volume that is not a sealroot state volume (subsystem {:?}, label {:?})",
            h.subsystem, h.label
        )),
        Content::Luks(h) => Err(format!("holds a LUKS{} volume", h.version)),
        Content::Signature(what) => Err(format!("holds a {what}")),
        Content::Unknown => Err(
            "holds data that is neither blank nor a sealroot state volume (plain dm-crypt looks like this)"
                .into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::probe::LuksHeader;

    fn luks(subsystem: &str, label: &str) -> Content {
        Content::Luks(LuksHeader {
            version: 2,
            label: label.into(),
            subsystem: subsystem.into(),
        })
    }

    fn facts(tokens: &[&str]) -> LuksFacts {
        LuksFacts {
            loaded: true,
            keyslots: 1,
            tokens: tokens.iter().map(|t| t.to_string()).collect(),
        }
    }

    #[test]
    fn guard() {
        assert_eq!(decide(&Content::Blank, None), Ok(Found::Blank));
        assert_eq!(
            decide(
                &luks(SUBSYSTEM_INCOMPLETE, "x"),
                Some(&facts(&["sealroot"]))
            ),
            Ok(Found::Incomplete)
        );
        assert_eq!(
            decide(&luks(SUBSYSTEM, "x"), Some(&facts(&["sealroot"]))),
            Ok(Found::Complete)
        );
        assert!(decide(&luks(SUBSYSTEM, "x"), Some(&facts(&[])))
            .unwrap_err()
            .contains("no sealroot token"));
        assert!(decide(&luks("", ""), Some(&facts(&[])))
            .unwrap_err()
            .contains("not a sealroot state volume"));
        assert!(decide(&luks("sealroot-ephemeral", "eph"), None).is_err());
        assert!(decide(&Content::Unknown, None).is_err());
        assert!(decide(&Content::Signature("ext2/3/4 filesystem"), None)
            .unwrap_err()
            .contains("ext2/3/4"));
        let luks1 = Content::Luks(LuksHeader {
            version: 1,
            label: String::new(),
            subsystem: SUBSYSTEM_INCOMPLETE.into(),
        });
        assert!(decide(&luks1, None).is_err());
        let mut unloadable = facts(&["sealroot"]);
        unloadable.loaded = false;
        assert!(decide(&luks(SUBSYSTEM, "x"), Some(&unloadable)).is_err());
    }

    #[test]
    fn mount() {
        assert_eq!(StateMount::parse("overlay"), Ok(StateMount::Overlay));
        assert_eq!(
            StateMount::parse("/var"),
            Ok(StateMount::Path("/var".into()))
        );
        for bad in ["var", "/", "/a/../b", "/a b", "/a,b", ""] {
            assert!(StateMount::parse(bad).is_err(), "{bad}");
        }
    }
}
