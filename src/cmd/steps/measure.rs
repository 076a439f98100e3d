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
            tpm.pcr_extend(SELF_PCR, &now.cmdline)?;
            tpm.pcr_extend(SELF_PCR, &now.config)?;
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
                "PCR {} is locked: sealroot already unsealed in this boot",
                SELF_PCR
            );
            Ok(current)
        }
        selfpcr::State::Other => Ok(current),
    }
}

/// Extend the lock event so the secret cannot be unsealed again this boot.
pub fn lock(tpm: &mut Tpm) -> Result<()> {
    tpm.pcr_extend(SELF_PCR, &selfpcr::lock_digest())?;
    info!("extended the lock into PCR {}", SELF_PCR);
    Ok(())
}
