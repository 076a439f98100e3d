//! `sealroot unlock`: the boot path for one volume ([`steps::unlock`]),
//! or, with `--key-file`, opening it with a passphrase or recovery key.
//!
//! [`steps::unlock`]: super::steps::unlock

use super::steps::measure::lock;
use super::steps::TpmOpts;
use crate::disk::luks::Volume;
use crate::pcr::SELF_PCR;
use crate::secret::SecretBytes;
use crate::Result;
use log::{info, warn};

pub use super::steps::unlock::{UnlockArgs, Unlocked};

/// Unseal and open (or verify, with `dry_run`): see [`super::steps::unlock::run`].
pub fn run(args: &UnlockArgs) -> Result<Unlocked> {
    super::steps::unlock::run(args)
}

/// Open with a passphrase or key file (recovery), no TPM needed. When a TPM
/// answers within a second, PCR 15 is locked as after a TPM unlock, so the
/// booted system cannot replay sealroot's measurements and unseal.
pub fn with_key(
    device: &std::path::Path,
    name: &str,
    dry_run: bool,
    key: &SecretBytes,
    tpm: &TpmOpts,
) -> Result<u32> {
    let mut vol = Volume::open(device)?;
    let slot = if dry_run {
        vol.check_key(None, key.as_bytes())?
    } else {
        vol.activate(name, None, key.as_bytes())?
    };
    info!(
        "opened {} with a key file (keyslot {slot}){}",
        device.display(),
        if dry_run { ", dry run" } else { "" }
    );
    let quick = TpmOpts {
        tcti: tpm.tcti.clone(),
        timeout: tpm.timeout.min(std::time::Duration::from_secs(1)),
    };
    match quick.open().and_then(|mut t| lock(&mut t)) {
        Ok(()) => {}
        Err(e) => warn!("could not lock PCR {} ({e}); continuing", SELF_PCR),
    }
    Ok(slot)
}
