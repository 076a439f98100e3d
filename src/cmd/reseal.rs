//! `sealroot reseal`: seal a new secret to the current PCR values, then
//! retire the old token. The new keyslot and token are complete before the
//! old keyslot is destroyed, so at every instant one of them opens the volume.

use super::steps::blobs::{check_pcrs, load_blobs};
use super::steps::inputs::{pin_auth, PinSource};
use super::steps::measure::{lock, measure_self, LockEvent};
use super::steps::seal::{add_sealed, Added, SealSpec};
use super::steps::slots::remove_token_and_slots;
use super::steps::TpmOpts;
use crate::disk::luks::Volume;
use crate::formats::blob::Blob;
use crate::formats::{envelope, volume_key};
use crate::pcr;
use crate::pcr::selfpcr::Measurements;
use crate::secret::{Key32, SecretBytes, VolumeKey};
use crate::testhooks::checkpoint;
use crate::{Error, Result};
use log::info;
use std::path::PathBuf;

pub struct ResealArgs {
    pub device: PathBuf,
    /// New firmware PCR list; defaults to the old token's.
    pub pcrs: Option<Vec<u32>>,
    pub unlock_key: Option<SecretBytes>,
    pub pin: PinSource,
    pub blob_file: Option<PathBuf>,
    pub token: Option<u32>,
    pub cmdline: String,
    pub tpm: TpmOpts,
    /// Seal to firmware PCRs that were never extended (tests on a bare TPM).
    pub allow_zero_pcrs: bool,
    /// The LUKS UUID of the boot's primary volume; `None` keeps the boot
    /// the old token was sealed for.
    pub root_volume: Option<String>,
}

pub fn run(args: &ResealArgs) -> Result<Added> {
    let mut vol = Volume::open(&args.device)?;
    let uuid = vol.uuid()?;
    let mut sources = load_blobs(&mut vol, args.blob_file.as_deref())?;
    if let Some(t) = args.token {
        sources.retain(|s| s.token == Some(t));
        if sources.is_empty() {
            return Err(Error::Usage(format!(
                "{}: token {t} is not a sealroot token",
                args.device.display()
            )));
        }
    }
    if sources.len() > 1 {
        return Err(Error::Usage(format!(
            "{} has {} sealroot tokens; choose one with --token",
            args.device.display(),
            sources.len()
        )));
    }
    let src = sources.pop().ok_or_else(|| Error::NotEnrolled {
        path: args.device.clone(),
        hint: String::new(),
    })?;
    let old = src.blob.map_err(|e| {
        Error::blob(
            &src.origin,
            format!("{e}; remove it and enroll again instead"),
        )
    })?;
    let mut tpm = args.tpm.open()?;
    let pin = if old.pin {
        Some(args.pin.get("sealroot: PIN: ", None)?)
    } else {
        None
    };
    // The boot the old token was sealed for (its primary volume), unless
    // another is named: a reseal for a kernel update keeps the boot.
    let now = match &args.root_volume {
        Some(root) => Measurements::new(&args.cmdline, root),
        None => Measurements {
            config: old.self_measurements.config,
            ..Measurements::new(&args.cmdline, &uuid)
        },
    };
    // The volume key the new keyslot holds: from the given key, or through
    // the old keyslot with the old secret unsealed from the TPM (which then
    // locks PCR 15, as at boot).
    let key: VolumeKey = match &args.unlock_key {
        Some(k) => vol.volume_key(None, k.as_bytes())?.1,
        None if old.authorize.is_some() => {
            return Err(Error::Usage(format!(
                "{} is sealed to signed policies: a kernel or initrd update needs a new signed policy (`sealroot policy sign`), not a reseal; to reseal anyway pass --unlock-key-file (or the recovery key)",
                src.origin
            )))
        }
        None => {
            let mut wanted = old.pcrs.clone();
            wanted.sort_unstable();
            let mut current = tpm.pcr_read(&wanted)?;
            let sp = wanted
                .iter()
                .position(|&p| p == pcr::SELF_PCR)
                .expect("self PCR in every blob");
            current[sp] = measure_self(&mut tpm, &now, current[sp])?;
            // A mismatch here means the TPM cannot authorise the reseal:
            // the caller must pass --unlock-key-file (or the recovery key).
            check_pcrs(&old, &now, &wanted, &current)?;
            let auth = pin.as_ref().map(pin_auth);
            let kek = tpm.unseal(old.sealed_object(), auth.as_ref(), None);
            let key = kek.and_then(|kek| old_volume_key(&mut vol, &old, &src.origin, &kek));
            let event = match &key {
                Ok(k) => LockEvent::Opened(volume_key::fingerprint(k.as_bytes())),
                Err(_) => LockEvent::Failure,
            };
            lock(&mut tpm, event)?;
            key?
        }
    };
    let firmware: Vec<u32> = match &args.pcrs {
        Some(p) => p.clone(),
        None => old
            .pcrs
            .iter()
            .copied()
            .filter(|&p| p != pcr::SELF_PCR)
            .collect(),
    };
    let spec = SealSpec {
        pcrs: &firmware,
        measurements: now,
        pin: pin.as_ref(),
        // The platform requirement and the signing key are kept as enrolled.
        platform: old.platform.as_ref(),
        authorize: old.authorize.as_ref(),
        events: vec![],
        allow_zero_pcrs: args.allow_zero_pcrs,
    };
    let added = add_sealed(&mut vol, &mut tpm, &spec, &key, args.blob_file.as_deref())?;
    drop(key);
    checkpoint("reseal:new-complete");
    let old_slots: Vec<u32> = [old.keyslot]
        .into_iter()
        .filter(|&s| s != added.keyslot && vol.keyslot_active(s))
        .collect();
    match src.token {
        Some(id) => remove_token_and_slots(&mut vol, id, &old_slots)?,
        None => {
            for s in old_slots {
                vol.destroy_keyslot(s)?;
            }
        }
    }
    info!(
        "resealed: keyslot {} replaces keyslot {}",
        added.keyslot, old.keyslot
    );
    Ok(added)
}

/// The volume key through the old token's keyslot, with the secret its
/// envelope holds under `kek`, checked against its fingerprint when the
/// token has one.
fn old_volume_key(vol: &mut Volume, old: &Blob, origin: &str, kek: &Key32) -> Result<VolumeKey> {
    let secret = envelope::open(kek, &old.nonce, &old.ciphertext, &old.binding())
        .ok_or_else(|| Error::blob(origin, "envelope does not authenticate"))?;
    let (_, key) = vol.volume_key(Some(old.keyslot), secret.as_bytes())?;
    if let Some(enrolled) = &old.fingerprint {
        if !volume_key::matches(enrolled, &volume_key::fingerprint(key.as_bytes())) {
            return Err(Error::refused(
                vol.path(),
                format!(
                    "keyslot {} yields a volume key other than the one {origin} was enrolled with",
                    old.keyslot
                ),
            ));
        }
    }
    Ok(key)
}
