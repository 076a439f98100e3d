//! `sealroot lock`: extend the failure lock event into PCR 15 (the
//! initramfs scripts' backstop when an unlock did not finish).

use super::steps::measure::{lock, LockEvent};
use super::steps::TpmOpts;
use crate::Result;

/// Connect (waiting up to the timeout) and extend the failure event.
///
/// Errors: [`crate::Error::NoTpm`] when no TPM answers; [`crate::Error::Tpm`]
/// when the extend fails.
pub fn run(tpm: &TpmOpts) -> Result<()> {
    let mut t = tpm.open()?;
    lock(&mut t, LockEvent::Failure)
}
