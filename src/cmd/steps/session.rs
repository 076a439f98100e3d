//! One unlock's TPM connection and its promise: PCR 15 is locked before the
//! unlock returns, on every path. On success the lock event names the
//! opened volume; on any failure, or when the session is dropped without
//! one (an early `?`), the failure event is extended. The deadline bounds
//! the time from the start to the lock (docs/security.md).

use super::measure::{lock, LockEvent};
use super::TpmOpts;
use crate::pcr::{Digest, SELF_PCR};
use crate::tpm::Tpm;
use crate::{Error, Result};
use log::{info, warn};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// On a TDX guest whose kernel exposes RTMR extension (Linux ≥ 6.16),
/// extend RTMR3 with the lock event too, so a verifier of the TD quote
/// sees that the unseal happened and was locked. Without the attribute
/// (older kernels, not TDX) nothing happens; a write that fails is
/// logged: PCR 15 is the lock, RTMR3 only a mirror.
fn mirror_rtmr3(attr: &Path, fingerprints: &[Digest]) {
    let event = match fingerprints.first() {
        Some(fp) => crate::pcr::selfpcr::opened_digest(fp),
        None => crate::pcr::selfpcr::failure_digest(),
    };
    let digest = crate::attest::tdx_assess::rtmr_lock_digest(&event);
    match crate::sys::tsm::extend_rtmr(attr, &digest) {
        Ok(true) => info!("mirrored the lock event into RTMR3 ({})", attr.display()),
        Ok(false) => log::debug!(
            "no {}: the lock is not mirrored into RTMR3 (not a TDX guest, or Linux < 6.16)",
            attr.display()
        ),
        Err(e) => warn!("mirroring the lock event into RTMR3: {e}"),
    }
}

/// Default `--deadline`: seconds from the start of an unlock to its lock.
pub const DEFAULT_DEADLINE_SECS: u64 = 120;

/// The TPM of one unlock, opened on first use, and whether it was locked.
pub struct Session {
    /// The command's TPM (`--tcti`, else the default device). When a
    /// volume names another ([`Session::retarget`]), this one is locked
    /// too: a TCTI on the host's command line must not steer the lock away
    /// from the real TPM.
    base: TpmOpts,
    opts: TpmOpts,
    tpm: Option<Tpm>,
    locked: bool,
    armed: bool,
    end: Instant,
    /// The RTMR the lock event is mirrored into on TDX guests (absent
    /// elsewhere: nothing happens).
    rtmr3: PathBuf,
}

impl Session {
    /// A session that must lock PCR 15 within `deadline`.
    pub fn new(opts: TpmOpts, deadline: Duration) -> Session {
        Session {
            base: opts.clone(),
            opts,
            tpm: None,
            locked: false,
            armed: true,
            end: Instant::now() + deadline,
            rtmr3: PathBuf::from(crate::sys::tsm::DEFAULT_RTMR3),
        }
    }

    /// Mirror the lock into this RTMR attribute instead of the default
    /// ([`crate::sys::tsm::DEFAULT_RTMR3`]).
    pub fn set_rtmr3(&mut self, attr: PathBuf) {
        self.rtmr3 = attr;
    }

    /// Use another TPM (a volume's own TCTI) before the first connection.
    pub fn retarget(&mut self, opts: TpmOpts) {
        if self.tpm.is_none() {
            self.opts = opts;
        }
    }

    /// A new deadline, `deadline` from now (a volume's own `deadline=`).
    pub fn set_deadline(&mut self, deadline: Duration) {
        self.end = Instant::now() + deadline;
    }

    /// The TPM, connecting on first use (waits up to the TPM timeout).
    ///
    /// Errors: [`Error::NoTpm`] when none answers.
    pub fn tpm(&mut self) -> Result<&mut Tpm> {
        if !self.tpm.as_ref().is_some_and(Tpm::connected) {
            self.tpm = Some(self.opts.open()?);
        }
        Ok(self.tpm.as_mut().expect("set above"))
    }

    /// [`Error::Timeout`] once the deadline has passed; `next` names the
    /// step that was about to run.
    pub fn check_deadline(&self, next: &str) -> Result<()> {
        if Instant::now() >= self.end {
            return Err(Error::Timeout(format!(
                "the deadline passed before {next}; PCR {SELF_PCR} is locked"
            )));
        }
        Ok(())
    }

    /// Time left before the deadline.
    pub fn remaining(&self) -> Duration {
        self.end.saturating_duration_since(Instant::now())
    }

    /// Lock with the opened volumes' events (their keys' fingerprints, in
    /// the order they were unsealed): the first extend is the lock, and
    /// the value that results tells a verifier which volumes this boot
    /// opened. An empty list extends the failure event.
    ///
    /// Errors: those of the extend; the failure lock is then tried by drop.
    pub fn lock_opened(&mut self, fingerprints: &[Digest]) -> Result<()> {
        let tpm = self.tpm()?;
        if fingerprints.is_empty() {
            lock(tpm, LockEvent::Failure)?;
        }
        for (i, fp) in fingerprints.iter().enumerate() {
            match lock(tpm, LockEvent::Opened(*fp)) {
                Ok(()) => {}
                // Locked already by the first: the rest only describes.
                Err(e) if i > 0 => warn!("PCR {SELF_PCR}: extending an opened volume's event: {e}"),
                Err(e) => return Err(e),
            }
        }
        self.locked = true;
        self.lock_base();
        mirror_rtmr3(&self.rtmr3, fingerprints);
        Ok(())
    }

    /// Lock the command's own TPM as well when the volume uses another.
    fn lock_base(&mut self) {
        if self.base.tcti == self.opts.tcti {
            return;
        }
        match self.base.open() {
            Ok(mut t) => match lock(&mut t, LockEvent::Failure) {
                Ok(()) => info!("PCR {SELF_PCR} of {} locked too", self.base.tcti),
                Err(e) => warn!("could not lock PCR {SELF_PCR} of {}: {e}", self.base.tcti),
            },
            Err(e) => warn!("could not lock PCR {SELF_PCR} of {}: {e}", self.base.tcti),
        }
    }

    /// Only print the configuration: touch no TPM, not even on drop.
    pub fn disarm(&mut self) {
        self.armed = false;
    }

    /// Extend the failure event unless locked already. Tries the open
    /// connection, then a new one; logs when no TPM answers.
    pub fn lock_failure(&mut self) {
        if self.locked || !self.armed {
            return;
        }
        if let Some(t) = self.tpm.as_mut().filter(|t| t.connected()) {
            if lock(t, LockEvent::Failure).is_ok() {
                self.locked = true;
                self.lock_base();
                return;
            }
            self.tpm = None;
        }
        match self.opts.open() {
            Ok(mut t) => match lock(&mut t, LockEvent::Failure) {
                Ok(()) => self.locked = true,
                Err(e) => warn!("could not lock PCR {SELF_PCR}: {e}"),
            },
            Err(e) => warn!("could not lock PCR {SELF_PCR}: {e}"),
        }
        if self.locked {
            info!("PCR {SELF_PCR} locked after the failure");
        }
        self.lock_base();
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.lock_failure();
    }
}
