//! `sealroot unlock`: the boot path for one volume ([`steps::unlock`]),
//! or, with `--key-file`, opening it with a passphrase or recovery key.
//! Both lock PCR 15 on every way out ([`Session`]).
//!
//! [`steps::unlock`]: super::steps::unlock

use super::steps::session::Session;
use crate::disk::luks::{OpenOpts, Volume};
use crate::formats::volume_key;
use crate::secret::SecretBytes;
use crate::{Error, Result};
use log::info;

pub use super::steps::unlock::{UnlockArgs, Unlocked};

/// Unseal and open (or verify, with `dry_run`): see [`super::steps::unlock::run`].
pub fn run(args: &UnlockArgs, session: &mut Session) -> Result<Unlocked> {
    super::steps::unlock::run(args, session)
}

/// Open with a passphrase or key file (recovery). The TPM comes first,
/// waited for as long as the TPM path waits: PCR 15 is locked before the
/// volume opens, so nothing can unseal afterwards, and a TPM the host
/// delays cannot make the lock be skipped.
///
/// Errors: [`Error::NoTpm`] when no TPM answers (the volume is not opened:
/// on a machine without this VM's TPM, `cryptsetup open` serves);
/// [`Error::VolumeRefused`]; [`Error::Luks`] for a key that opens nothing.
pub fn with_key(
    device: &std::path::Path,
    opts: &OpenOpts,
    name: &str,
    dry_run: bool,
    key: &SecretBytes,
    session: &mut Session,
) -> Result<u32> {
    session.tpm().map_err(|e| match e {
        Error::NoTpm { tcti, reason } => Error::NoTpm {
            tcti,
            reason: format!(
                "{reason}; the key is not used before PCR 15 is locked (on another machine, `cryptsetup open` opens the volume with it)"
            ),
        },
        e => e,
    })?;
    let mut vol = Volume::open_with(device, opts)?;
    let (slot, vk) = vol.volume_key(None, key.as_bytes())?;
    session.lock_opened(&[volume_key::fingerprint(vk.as_bytes())])?;
    if !dry_run {
        vol.activate(name, &vk, false)?;
    }
    info!(
        "opened {} with a key file (keyslot {slot}){}",
        device.display(),
        if dry_run { ", dry run" } else { "" }
    );
    Ok(slot)
}
