//! Steps several commands share: measuring and locking PCR 15, loading
//! blobs, sealing, finding signed policies, reading platform evidence and
//! the event log, the unlock and ephemeral paths `boot` reuses. Commands
//! compose these; no command imports another.

pub mod blobs;
pub mod bootset;
pub mod ephemeral;
pub mod eventlog;
pub mod evidence;
pub mod inputs;
pub mod measure;
pub mod prediction;
pub mod rekey;
pub mod seal;
pub mod session;
pub mod signed;
pub mod slots;
pub mod state;
pub mod systemd;
pub mod unlock;

use crate::tpm::Tpm;
use crate::Result;
use std::time::Duration;

/// How to reach the TPM.
#[derive(Debug, Clone)]
pub struct TpmOpts {
    pub tcti: String,
    pub timeout: Duration,
}

impl TpmOpts {
    /// Connect, waiting up to `timeout` ([`Tpm::open`]).
    pub fn open(&self) -> Result<Tpm> {
        Tpm::open(&self.tcti, self.timeout)
    }
}
