//! State volumes (docs/first-boot.md#mode-1-a-fresh-state-volume): the
//! writable layer of a read-only, measured OS, formatted by the VM's first
//! boot under a fresh volume key that no other VM and nothing in the image
//! holds.
//!
//! The first boot, before the boot's unlock: the guard
//! ([`crate::formats::state::decide`]) → a 512-bit key, kernel RNG XORed
//! with the TPM's → LUKS2 header marked
//! [`crate::formats::state::SUBSYSTEM_INCOMPLETE`] → PCR 15 measured as
//! this boot's primary volume → TPM keyslot and token (signed-policy mode
//! when a policy key is configured; the token records `key_origin:
//! vm-formatted`). The boot's unlock then opens it through that token like
//! any sealroot volume (the first use of the token proves it), locks PCR
//! 15, and activates. After it: mkfs, then the final marker
//! [`crate::formats::state::SUBSYSTEM`], last. A volume still marked
//! incomplete is formatted afresh at the next boot: nothing in it was used.

use super::eventlog;
use super::measure::measure_self;
use super::seal::{add_sealed, SealSpec};
use super::session::Session;
use super::TpmOpts;
use crate::disk::format::format_state;
use crate::disk::luks::{luks_facts, Volume};
use crate::formats::ephemeral::CIPHER_KEY_BYTES;
use crate::formats::key_origin::KeyOrigin;
use crate::formats::probe::{self, Content, PROBE_BYTES};
use crate::formats::state::{self, Found};
use crate::pcr::selfpcr::Measurements;
use crate::pcr::signer::PublicKey;
use crate::pcr::{Mismatch, PcrDiff, BANK_SHA256, SELF_PCR};
use crate::secret::VolumeKey;
use crate::sys::block::{exclusive_open_busy, read_head};
use crate::sys::mkfs::mkfs_ext4_journaled;
use crate::testhooks::{checkpoint, stop_at};
use crate::{Error, Result};
use log::{info, warn};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// A state volume's first boot.
pub struct FirstBoot<'a> {
    pub device: &'a Path,
    /// Its mapping name (also its LUKS2 label, cut to 47 bytes).
    pub name: &'a str,
    /// The kernel command line PCR 15 measures.
    pub cmdline: &'a str,
    /// Firmware PCRs to seal to (ignored in signed-policy mode).
    pub pcrs: &'a [u32],
    /// Signed-policy mode: the builder's policy-signing key.
    pub policy_key: Option<&'a PublicKey>,
    pub allow_zero_pcrs: bool,
    pub eventlog: Option<&'a Path>,
    /// The TPM whose RNG is mixed into the key (the session's).
    pub tpm: &'a TpmOpts,
}

/// Step boundaries of a first boot, for fault injection
/// (`SEALROOT_TEST_CRASH_AT`, `SEALROOT_TEST_STOP_AT`).
pub const STEPS: [&str; 4] = [
    "state:formatted",
    "state:enrolled",
    "state:mkfs",
    "state:complete",
];

fn step(name: &str) {
    checkpoint(name);
    stop_at(name);
}

/// What the partition holds, as the guard sees it. A block device in use
/// is refused first.
///
/// Errors: [`Error::StateRefused`] (exit 12) naming the device and what it
/// holds; [`Error::Io`].
pub fn inspect(device: &Path) -> Result<Found> {
    let refused = |reason: String| Error::StateRefused {
        path: device.to_path_buf(),
        reason,
    };
    if exclusive_open_busy(device)? {
        return Err(refused(
            "is in use (mounted, active swap, held by a mapping or opened exclusively)".into(),
        ));
    }
    let content = probe::probe(&read_head(device, PROBE_BYTES)?);
    let facts = match &content {
        Content::Luks(_) => Some(luks_facts(device)?),
        _ => None,
    };
    state::decide(&content, facts.as_ref()).map_err(refused)
}

/// The label a state volume's header carries.
pub fn label(name: &str) -> String {
    name.chars().take(47).collect()
}

/// Format `fb.device` under a fresh key and enroll its TPM token, measuring
/// PCR 15 as this boot's primary volume. Does not lock: the boot's unlock
/// opens the volume through the new token, then locks.
///
/// Errors: [`Error::NoTpm`] (the key needs the TPM's RNG, and the token
/// its seal); [`Error::PcrMismatch`] when PCR 15 was extended before this
/// boot measured it; those of libcryptsetup and of sealing.
pub fn format_and_enroll(fb: &FirstBoot, session: &mut Session) -> Result<()> {
    let t0 = Instant::now();
    let key = fresh_key(fb.tpm)?;
    format_state(fb.device, &label(fb.name), key.as_bytes())?;
    info!(
        "{}: LUKS2 header written (aes-xts-plain64, fresh 512-bit key from the kernel RNG XORed with the TPM RNG, subsystem {})",
        fb.device.display(),
        state::SUBSYSTEM_INCOMPLETE
    );
    step("state:formatted");
    let mut vol = Volume::open(fb.device)?;
    let uuid = vol.uuid()?;
    let now = Measurements::new(fb.cmdline, &uuid);
    session.check_deadline("connecting to the TPM")?;
    let tpm = session.tpm()?;
    let cur = tpm.pcr_read(&[SELF_PCR])?[0];
    let after = measure_self(tpm, &now, cur)?;
    if after != now.expected() {
        return Err(Error::PcrMismatch(Mismatch {
            bank: BANK_SHA256.into(),
            diffs: vec![PcrDiff {
                index: SELF_PCR,
                expected: now.expected(),
                current: after,
                why: Some("PCR was already extended before the state volume's enrollment".into()),
            }],
        }));
    }
    let spec = SealSpec {
        pcrs: fb.pcrs,
        measurements: now,
        pin: None,
        platform: None,
        tdx: None,
        authorize: fb.policy_key,
        events: eventlog::expected_events(tpm, fb.eventlog),
        allow_zero_pcrs: fb.allow_zero_pcrs,
        key_origin: KeyOrigin::VmFormatted,
        rekey_epoch: None,
    };
    let added = add_sealed(&mut vol, tpm, &spec, &key, None)?;
    drop(key);
    info!(
        "{}: state volume {uuid} formatted and enrolled (keyslot {}, key origin {}) in {} ms",
        fb.device.display(),
        added.keyslot,
        KeyOrigin::VmFormatted.as_str(),
        t0.elapsed().as_millis()
    );
    step("state:enrolled");
    Ok(())
}

/// The fresh volume key: kernel RNG XORed with the TPM's, which must answer
/// (the volume cannot be sealed without it anyway).
fn fresh_key(opts: &TpmOpts) -> Result<VolumeKey> {
    let mut tpm = Some(opts.open()?);
    let (key, mixed) = super::ephemeral::fresh_key(CIPHER_KEY_BYTES, &mut tpm)?;
    if !mixed {
        return Err(Error::NoTpm {
            tcti: opts.tcti.clone(),
            reason: "TPM GetRandom failed: a state volume's key mixes in the TPM's RNG".into(),
        });
    }
    crate::testhooks::reveal("state-volume-key", key.as_bytes());
    Ok(VolumeKey::from(key))
}

/// After the boot's unlock opened a volume formatted in this boot: make
/// its filesystem, then write the final marker, last.
///
/// Errors: [`Error::Io`] from mkfs; [`Error::Luks`].
pub fn complete(device: &Path, name: &str) -> Result<PathBuf> {
    let mapper = PathBuf::from(format!("/dev/mapper/{name}"));
    let t0 = Instant::now();
    mkfs_ext4_journaled(&mapper)?;
    info!(
        "{}: ext4 created (journal, lazy init) in {} ms",
        mapper.display(),
        t0.elapsed().as_millis()
    );
    step("state:mkfs");
    Volume::open(device)?.set_subsystem(&label(name), state::SUBSYSTEM)?;
    info!(
        "{}: state volume complete (subsystem {})",
        device.display(),
        state::SUBSYSTEM
    );
    step("state:complete");
    Ok(mapper)
}

/// Log what the guard found.
pub fn report(device: &Path, found: &Found) {
    match found {
        Found::Blank => info!(
            "{}: blank: first boot of the state volume",
            device.display()
        ),
        Found::Incomplete => warn!(
            "{}: a state volume whose first boot did not finish (marker {}): formatting it afresh",
            device.display(),
            state::SUBSYSTEM_INCOMPLETE
        ),
        Found::Complete => info!("{}: state volume", device.display()),
    }
}
