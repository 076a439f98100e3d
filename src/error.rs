//! Typed errors and the documented exit codes they map to.
//!
//! Every failure class the boot path can hit has its own exit code so that an
//! initramfs script (or a human reading `dmesg`) can tell "wrong PCRs" from
//! "no TPM" from "corrupt blob" without parsing text. Messages carry the path
//! or the PCR they concern and never any secret material.

use std::fmt;
use std::path::{Path, PathBuf};

/// Documented process exit codes (see README and docs/format.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// Success.
    Ok = 0,
    /// Internal error or an unexpected condition not covered below.
    Internal = 1,
    /// Bad command line or option value; nothing was touched.
    Usage = 2,
    /// The TPM could not be reached within the timeout, or failed to answer.
    NoTpm = 3,
    /// Current PCR values differ from the sealed policy (or, for a
    /// signed-policy volume, no valid unrevoked signed policy matches them).
    PcrMismatch = 4,
    /// The blob/token is corrupt, unsupported, or fails authentication.
    BlobInvalid = 5,
    /// Wrong PIN, or the TPM is in dictionary-attack lockout.
    PinOrLockout = 6,
    /// libcryptsetup failed: bad keyslot, device not LUKS2, activation failed.
    Luks = 7,
    /// The storage root key at 0x81000001 is missing or is not the pinned one.
    TpmIdentity = 8,
    /// The volume has no sealroot token (and no blob file was given).
    NotEnrolled = 9,
    /// Platform (SEV-SNP) verification failed.
    Platform = 10,
    /// A file could not be read or written (missing, permissions, disk full).
    Io = 11,
    /// Ephemeral mode refused to format a device that holds data it must
    /// not destroy (a persistent LUKS volume, a filesystem, …).
    EphemeralRefused = 12,
    /// The volume is not trusted: its LUKS2 header is outside sealroot's
    /// allow-list, or its keyslot yields a volume key other than the
    /// enrolled one. Nothing was unsealed from it, or PCR 15 was locked.
    VolumeRefused = 13,
    /// The unlock deadline passed before the volume was opened; PCR 15 was
    /// locked.
    Timeout = 14,
}

impl Exit {
    /// Every exit code, in code order: the one source of the tables in
    /// README.md and docs/format.md (a test compares them with this).
    pub const ALL: [Exit; 15] = [
        Exit::Ok,
        Exit::Internal,
        Exit::Usage,
        Exit::NoTpm,
        Exit::PcrMismatch,
        Exit::BlobInvalid,
        Exit::PinOrLockout,
        Exit::Luks,
        Exit::TpmIdentity,
        Exit::NotEnrolled,
        Exit::Platform,
        Exit::Io,
        Exit::EphemeralRefused,
        Exit::VolumeRefused,
        Exit::Timeout,
    ];

    /// The process exit status.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The exit code's meaning for a process status, or `None` for a
    /// status sealroot never returns (a signal, a crash).
    pub fn from_code(code: i32) -> Option<Exit> {
        Exit::ALL.into_iter().find(|e| i32::from(e.code()) == code)
    }

    /// One line: the README's table.
    pub fn summary(self) -> &'static str {
        match self {
            Exit::Ok => "success",
            Exit::Internal => "internal error",
            Exit::Usage => "usage error (also: a crypttab line that mentions sealroot in another form, a PIN with an invisible character); nothing was touched",
            Exit::NoTpm => "TPM unavailable (not found within the timeout, or not answering)",
            Exit::PcrMismatch => "PCR policy mismatch (every differing PCR is named, with the event when the log tells); for signed-policy volumes also: no matching signed policy, or it is revoked; for `systemd-tpm2` tokens the policy's PCRs are listed (their values are not recorded)",
            Exit::BlobInvalid => "blob corrupt, unsupported or not authentic",
            Exit::PinOrLockout => "wrong PIN, missing PIN, or dictionary-attack lockout",
            Exit::Luks => "LUKS error (not LUKS2, wrong key, keyslot missing, header full, activation failed)",
            Exit::TpmIdentity => "TPM identity: the SRK at 0x81000001 is missing or not the pinned one",
            Exit::NotEnrolled => "not enrolled (no sealroot token)",
            Exit::Platform => "platform verification failed (SEV-SNP or TDX; the message names the check)",
            Exit::Io => "I/O error on a named file",
            Exit::EphemeralRefused => "`ephemeral` refused to format a device holding data (persistent LUKS volume, filesystem, …); also a state volume's partition that is neither blank nor a sealroot state volume",
            Exit::VolumeRefused => "volume refused: LUKS2 header outside the allow-list (the field is named), not the enrolled volume key, or a re-keying header from before this VM's re-keying finished",
            Exit::Timeout => "the unlock deadline passed; PCR 15 was locked",
        }
    }

    /// The full meaning: docs/format.md's table.
    pub fn detail(self) -> &'static str {
        match self {
            Exit::Ok => "success",
            Exit::Internal => "internal error",
            Exit::Usage => "usage: bad option or value; a crypttab line that mentions sealroot but is not in the documented form (the message names the line and the field, [distro.md](distro.md#which-lines-are-sealroots-and-how-they-may-be-written)); a PIN that holds a control or invisible character (refused before any TPM try). Nothing was touched",
            Exit::NoTpm => "TPM unavailable: not found or not answering within `--tpm-timeout`, or a TPM command failed",
            Exit::PcrMismatch => "PCR policy mismatch: the message names every differing PCR with its expected and current value, and why when known (the event-log event). For a signed-policy volume also: no signed policy found or matching, or the matching one is revoked. For a `systemd-tpm2` token: the policy digest is not the token's (the message lists the policy's PCRs; 252 tokens record no values), or no signature for this boot ([systemd.md](systemd.md#what-is-refused))",
            Exit::BlobInvalid => "blob corrupt, unsupported (newer version, unknown field) or not authentic (wrong volume, envelope fails, TPM rejects the sealed object); also a `systemd-tpm2` token that does not parse or that systemd 252 would not have written (sha1 bank, RSA primary, newer fields)",
            Exit::PinOrLockout => "wrong PIN, PIN missing, or the TPM is in dictionary-attack lockout",
            Exit::Luks => "LUKS error: not a LUKS2 volume (or a detached header not named), wrong unlock key (a trailing line ending in the key file is named), keyslot missing, activation failed, last keyslot protected, or the LUKS2 header full (no room for another keyslot or token: the message says what to do)",
            Exit::TpmIdentity => "TPM identity: no SRK at 0x81000001, or not the pinned one",
            Exit::NotEnrolled => "not enrolled: the volume has no sealroot token (initramfs scripts use this to start first-boot enrollment)",
            Exit::Platform => "platform verification failed: the message names the check (`evidence`, `hcl-format`, `hcl-binding`, `attestation-key`, `report-format`, `vmpl`, `report-data`, `vcek`, `signature`, `debug`, `measurement`, `tcb`, `guest-policy`; TDX: `collateral`, `quote`, `mrtd`, `rtmr`, `mrconfigid`, `xfam`) and why; also `sealroot platform` with a verdict `fail` ([platform.md](platform.md))",
            Exit::Io => "I/O error on a named file (missing, permission, disk full)",
            Exit::EphemeralRefused => "`ephemeral` refused to format a device that holds data it must not destroy: a block device in use (mounted, swap, mapped), a LUKS volume with keyslots or tokens, LUKS1, an unloadable LUKS2 header, or (without `wipe-existing`) a filesystem, partition table or unrecognised data; the message names the device and what it holds ([ephemeral.md](ephemeral.md#the-data-loss-guard)). Also a state volume (`sealroot-state`) whose partition is neither blank nor a sealroot state volume: a foreign LUKS volume, a filesystem, data, or a volume marked finished without a sealroot token ([first-boot.md](first-boot.md#mode-1-a-fresh-state-volume)); PCR 15 is locked",
            Exit::VolumeRefused => "volume refused: the LUKS2 header is outside sealroot's allow-list ([below](#luks2-header-allow-list); the message names the field and its value), or the keyslot yields a volume key whose fingerprint is not the enrolled one (a rewritten keyslot, or another volume carrying this one's UUID), or a header in re-encryption from before the end of this VM's first-boot re-keying, which the TPM's re-keying counter recorded ([docs/first-boot.md](first-boot.md#replayed-headers)). Nothing was unsealed, or PCR 15 was locked before the exit",
            Exit::Timeout => "the unlock deadline (`--deadline`, `rd.sealroot.deadline=`) passed before the volume was opened; PCR 15 was locked",
        }
    }

    /// A Markdown table of every code with `meaning` (`summary` or `detail`).
    pub fn markdown_table(meaning: fn(Exit) -> &'static str) -> String {
        let mut t = String::from("| code | meaning |\n|---|---|\n");
        for e in Exit::ALL {
            t.push_str(&format!("| {} | {} |\n", e.code(), meaning(e)));
        }
        t
    }
}

/// All errors sealroot reports.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("usage: {0}")]
    Usage(String),

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("TPM unavailable ({tcti}): {reason}")]
    NoTpm { tcti: String, reason: String },

    #[error("TPM command {command} failed: {detail}")]
    Tpm {
        command: &'static str,
        detail: String,
    },

    #[error("{0}")]
    PcrMismatch(Mismatch),

    /// The TPM has no sha256 bank for a PCR sealroot needs.
    #[error("PCR bank: {0}")]
    PcrBank(String),

    #[error("blob {origin}: {reason}")]
    BlobInvalid { origin: String, reason: String },

    #[error("{0}")]
    PinOrLockout(String),

    /// A signed-policy volume: no valid, unrevoked signed policy for this
    /// boot's PCRs.
    #[error("signed policy: {0}")]
    PolicyRefused(String),

    #[error("LUKS {path}: {reason}")]
    Luks { path: PathBuf, reason: String },

    #[error("TPM identity: {0}")]
    TpmIdentity(String),

    #[error("{path}: no sealroot token on this volume{hint}")]
    NotEnrolled { path: PathBuf, hint: String },

    #[error("platform verification failed: {0}")]
    Platform(String),

    #[error("event log {path}: {reason}")]
    EventLog { path: PathBuf, reason: String },

    #[error("{0}")]
    Internal(String),

    #[error("ephemeral mode refused {path}: it {reason}")]
    EphemeralRefused { path: PathBuf, reason: String },

    /// The state-volume guard: the partition is neither blank nor a
    /// sealroot state volume (exit 12, like the ephemeral guard).
    #[error("state volume {path} refused: it {reason}; nothing was written")]
    StateRefused { path: PathBuf, reason: String },

    /// The LUKS2 header failed the allow-list, or the volume key is not
    /// the enrolled one.
    #[error("volume {path} refused: {reason}")]
    VolumeRefused { path: PathBuf, reason: String },

    /// The unlock deadline passed.
    #[error("unlock deadline: {0}")]
    Timeout(String),

    /// A `systemd-tpm2` token's PCR policy is not met this boot (exit 4).
    #[error("{0}")]
    SystemdPolicy(String),
}

impl Error {
    pub fn exit(&self) -> Exit {
        match self {
            Error::Usage(_) => Exit::Usage,
            Error::Io { .. } => Exit::Io,
            Error::NoTpm { .. } | Error::Tpm { .. } => Exit::NoTpm,
            Error::PcrMismatch(_)
            | Error::PolicyRefused(_)
            | Error::PcrBank(_)
            | Error::SystemdPolicy(_) => Exit::PcrMismatch,
            Error::BlobInvalid { .. } => Exit::BlobInvalid,
            Error::PinOrLockout(_) => Exit::PinOrLockout,
            Error::Luks { .. } => Exit::Luks,
            Error::TpmIdentity(_) => Exit::TpmIdentity,
            Error::NotEnrolled { .. } => Exit::NotEnrolled,
            Error::Platform(_) => Exit::Platform,
            Error::EventLog { .. } => Exit::Io,
            Error::Internal(_) => Exit::Internal,
            Error::EphemeralRefused { .. } | Error::StateRefused { .. } => Exit::EphemeralRefused,
            Error::VolumeRefused { .. } => Exit::VolumeRefused,
            Error::Timeout(_) => Exit::Timeout,
        }
    }

    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    pub fn blob(origin: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::BlobInvalid {
            origin: origin.into(),
            reason: reason.into(),
        }
    }

    pub fn refused(path: impl AsRef<Path>, reason: impl Into<String>) -> Self {
        Error::VolumeRefused {
            path: path.as_ref().to_path_buf(),
            reason: reason.into(),
        }
    }

    pub fn luks(path: impl AsRef<Path>, reason: impl Into<String>) -> Self {
        Error::Luks {
            path: path.as_ref().to_path_buf(),
            reason: reason.into(),
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// One differing PCR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcrDiff {
    pub index: u32,
    pub expected: [u8; 32],
    pub current: [u8; 32],
    /// Why it differs, when sealroot can tell (its own PCR, or the event log).
    pub why: Option<String>,
}

/// Every PCR of a policy that differs from its sealed value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub bank: String,
    pub diffs: Vec<PcrDiff>,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.diffs.is_empty() {
            // The values matched when read; the TPM refused at use.
            return write!(
                f,
                "PCR policy mismatch ({} bank): the TPM refused the PCR policy (the PCRs changed after sealroot read them)",
                self.bank
            );
        }
        let list: Vec<String> = self.diffs.iter().map(|d| d.index.to_string()).collect();
        write!(
            f,
            "PCR policy mismatch ({} bank), differing PCRs: {}",
            self.bank,
            list.join(",")
        )?;
        for d in &self.diffs {
            write!(
                f,
                "\n  PCR {} differs: expected {}, current {}",
                d.index,
                hex::encode(d.expected),
                hex::encode(d.current)
            )?;
            if let Some(why) = &d.why {
                write!(f, " ({why})")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_distinct_and_stable() {
        for (i, e) in Exit::ALL.iter().enumerate() {
            assert_eq!(e.code() as usize, i, "{e:?}");
            assert_eq!(Exit::from_code(i as i32), Some(*e));
        }
        assert_eq!(Exit::from_code(-1), None);
        assert_eq!(Exit::from_code(Exit::ALL.len() as i32), None);
    }

    #[test]
    fn io_error_carries_path() {
        let e = Error::io("/x/y", std::io::Error::from(std::io::ErrorKind::NotFound));
        assert!(e.to_string().starts_with("/x/y: "));
        assert_eq!(e.exit(), Exit::Io);
    }
}
