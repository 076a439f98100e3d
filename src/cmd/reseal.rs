//! `sealroot reseal`: seal a new secret to the current PCR values, then
//! retire the old token. The new keyslot and token are complete before the
//! old keyslot is destroyed, so at every instant one of them opens the volume.

use super::steps::blobs::{check_pcrs, load_blobs};
use super::steps::bootset;
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
    /// The primary volume of the boot that opens this one; `None` keeps
    /// the boot the old token was sealed for.
    pub root_volume: Option<bootset::Primary>,
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
    // Unsealing the old token: the boot it was sealed for (its primary
    // volume), as the token says; the TPM decides whether that is so.
    let old_boot = Measurements {
        cmdline: Measurements::new(&args.cmdline, &uuid).cmdline,
        ..old.self_measurements
    };
    let now = new_boot(args, &uuid, &old_boot)?;
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
            current[sp] = measure_self(&mut tpm, &old_boot, current[sp])?;
            // A mismatch here means the TPM cannot authorise the reseal:
            // the caller must pass --unlock-key-file (or the recovery key).
            check_pcrs(&old, &old_boot, &wanted, &current)?;
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
        tdx: old.tdx.as_ref(),
        authorize: old.authorize.as_ref(),
        events: vec![],
        allow_zero_pcrs: args.allow_zero_pcrs,
        key_origin: old.key_origin,
        rekey_epoch: old.rekey_epoch,
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

/// The boot the new token is sealed for: after `args.root_volume` when it
/// is given; else the old token's boot, when the TPM path proves it
/// (the old token unseals only if its measurements were the policy's) or
/// when it is this volume's own; else a usage error, since a token the
/// host may have rewritten must not choose which volume this one opens
/// after.
///
/// Errors: [`Error::Usage`] as above.
fn new_boot(args: &ResealArgs, uuid: &str, old_boot: &Measurements) -> Result<Measurements> {
    if let Some(p) = &args.root_volume {
        return Ok(bootset::measurements(&args.cmdline, uuid, Some(p)));
    }
    let alone = Measurements::new(&args.cmdline, uuid);
    if args.unlock_key.is_none() || (old_boot.config == alone.config && old_boot.primary.is_none())
    {
        return Ok(*old_boot);
    }
    Err(Error::Usage(format!(
        "{}: the token is sealed to open after another volume of its boot; with --unlock-key-file, name that volume with --root-volume and --root-key-file (docs/design.md#several-volumes-in-one-boot)",
        args.device.display()
    )))
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
