//! PCR 15: measure this boot's command line and configuration before any
//! unseal, and extend the lock after it.

use crate::pcr::selfpcr::{self, Measurements};
use crate::pcr::{Digest, SELF_PCR};
use crate::tpm::Tpm;
use crate::Result;
use log::{debug, info};

/// Extend this boot's measurements into the self PCR unless it already
/// holds them. Returns the self PCR's value afterwards.
pub fn measure_self(tpm: &mut Tpm, now: &Measurements, current: Digest) -> Result<Digest> {
    match selfpcr::classify(&current, now) {
        selfpcr::State::Fresh => {
            for d in now.events() {
                tpm.pcr_extend(SELF_PCR, &d)?;
            }
            info!(
                "measured kernel command line and configuration into PCR {}",
                SELF_PCR
            );
            Ok(now.expected())
        }
        selfpcr::State::Measured => {
            debug!("PCR {} already holds this boot's measurements", SELF_PCR);
            Ok(current)
        }
        selfpcr::State::Locked => {
            info!(
                "PCR {} is locked: an unlock already failed in this boot",
                SELF_PCR
            );
            Ok(current)
        }
        selfpcr::State::Other => Ok(current),
    }
}

/// Extend the primary volume's event ([`selfpcr::primary_digest`]) of a
/// boot that opens several volumes, after that volume's key was unsealed
/// and its fingerprint checked.
///
/// Errors: [`crate::Error::Tpm`] when the extend fails.
pub fn measure_primary(tpm: &mut Tpm, fingerprint: &Digest) -> Result<()> {
    tpm.pcr_extend(SELF_PCR, &selfpcr::primary_digest(fingerprint))?;
    info!("extended the primary volume's event into PCR {SELF_PCR}");
    Ok(())
}

/// Which lock event to extend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockEvent {
    /// The volume whose key has this fingerprint was opened.
    Opened(Digest),
    /// Nothing was opened: a failure, or an explicit `sealroot lock`.
    Failure,
}

/// Extend a lock event so nothing can be unsealed again this boot.
///
/// Errors: [`crate::Error::Tpm`] when the extend fails.
pub fn lock(tpm: &mut Tpm, event: LockEvent) -> Result<()> {
    let (digest, what) = match event {
        LockEvent::Opened(fp) => (selfpcr::opened_digest(&fp), "the opened volume's"),
        LockEvent::Failure => (selfpcr::failure_digest(), "the failure"),
    };
    tpm.pcr_extend(SELF_PCR, &digest)?;
    info!("extended {what} lock event into PCR {}", SELF_PCR);
    Ok(())
}
