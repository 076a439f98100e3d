//! Keyless LUKS2 volumes for ephemeral mode: format under a volume key
//! the caller made (no keyslot, no token; the ephemeral marker in the
//! header's subsystem). The caller then opens the header it wrote through
//! the checked copy ([`super::luks::Volume`]) and activates with that key,
//! so the key only ever reaches the kernel. Formats in
//! [`crate::formats::ephemeral`].

use super::luks::pbkdf2_min;
use crate::formats::ephemeral::{self, Settings};
use crate::formats::state;
use crate::{Error, Result};
use libcryptsetup_rs::consts::vals::EncryptionFormat;
use libcryptsetup_rs::{CryptInit, CryptParamsLuks2, CryptParamsLuks2Ref, Either};
use std::path::Path;

fn lerr(path: &Path, what: &str, e: libcryptsetup_rs::LibcryptErr) -> Error {
    Error::luks(path, format!("{what}: {e}"))
}

/// Write a LUKS2 header for `key` (aes-xts-plain64, 4 KiB sectors, with
/// `hmac(sha256)` dm-integrity when `settings.integrity`), labelled `label`
/// and marked with subsystem [`ephemeral::SUBSYSTEM`]. `key` is
/// [`ephemeral::key_bytes`] long.
///
/// Errors: [`Error::Luks`] naming `path`.
pub fn format_keyless(path: &Path, label: &str, settings: &Settings, key: &[u8]) -> Result<()> {
    format_marked(path, label, ephemeral::SUBSYSTEM, settings.integrity, key)
}

/// Write a state volume's LUKS2 header for `key` (aes-xts-plain64, 4 KiB
/// sectors, no integrity, no keyslot yet), labelled `label` and marked
/// [`state::SUBSYSTEM_INCOMPLETE`]: the first boot adds the keyslot and
/// token, then switches the marker ([`super::luks::Volume::set_subsystem`]).
/// The LUKS2 digest uses PBKDF2 with the minimum iteration count: the key
/// is 512 random bits, so iterations would add boot time and no security.
///
/// Errors: [`Error::Luks`] naming `path`.
pub fn format_state(path: &Path, label: &str, key: &[u8]) -> Result<()> {
    format_marked(path, label, state::SUBSYSTEM_INCOMPLETE, false, key)
}

fn format_marked(
    path: &Path,
    label: &str,
    subsystem: &str,
    integrity: bool,
    key: &[u8],
) -> Result<()> {
    let mut dev = CryptInit::init(path).map_err(|e| lerr(path, "opening", e))?;
    // No keyslot is ever added; the PBKDF only guards the LUKS2 digest of
    // a 512-bit random key, so skip the benchmark.
    let params = CryptParamsLuks2 {
        pbkdf: Some(pbkdf2_min()),
        integrity: integrity.then(|| ephemeral::INTEGRITY.to_string()),
        integrity_params: None,
        data_alignment: 0,
        data_device: None,
        sector_size: ephemeral::SECTOR_SIZE,
        label: Some(label.chars().take(47).collect()),
        subsystem: Some(subsystem.to_string()),
    };
    let mut pref: CryptParamsLuks2Ref = (&params)
        .try_into()
        .map_err(|e| lerr(path, "parameters", e))?;
    dev.context_handle()
        .format(
            EncryptionFormat::Luks2,
            ephemeral::CIPHER,
            None,
            Either::Left(key),
            Some(&mut pref),
        )
        .map_err(|e| lerr(path, "formatting LUKS2", e))
}
