//! `sealroot adopt`: give a volume enrolled with `systemd-cryptenroll` a
//! sealroot token. The `systemd-tpm2` token is unsealed at the current
//! PCRs (as `enroll` runs: on the image build or the booted system, with
//! no lock of PCR 15), its keyslot yields the volume key, and the sealroot
//! keyslot and token are added through the enroll steps
//! ([`add_sealed`], [`add_recovery`]). With `remove_systemd_token`, the
//! systemd token and its keyslot go only after the new keyslot is proven
//! to give the same volume key and the new token reads back.

use super::steps::blobs::load_blobs;
use super::steps::bootset;
use super::steps::eventlog::expected_events;
use super::steps::inputs::PinSource;
use super::steps::seal::{add_recovery, add_sealed, Added, SealSpec};
use super::steps::systemd::{self, Inputs};
use super::steps::TpmOpts;
use crate::disk::luks::Volume;
use crate::formats::volume_key;
use crate::pcr::signer::PublicKey;
use crate::secret::{RecoveryKey, SecretBytes};
use crate::{Error, Result};
use log::info;
use std::path::PathBuf;

/// Inputs of `sealroot adopt`.
pub struct AdoptArgs {
    pub device: PathBuf,
    /// Which systemd-tpm2 token (None: the volume's only one).
    pub token: Option<u32>,
    /// PIN of the systemd token, when it has one.
    pub systemd_pin: PinSource,
    /// The PCR signature JSON, for a systemd token with a signed policy.
    pub signature: Option<PathBuf>,
    /// The new sealroot token's PCRs, PIN, signed-policy key.
    pub pcrs: Vec<u32>,
    pub pin: Option<SecretBytes>,
    pub authorize: Option<PublicKey>,
    pub recovery: bool,
    /// Kernel command line the volume will boot with.
    pub cmdline: String,
    pub tpm: TpmOpts,
    pub eventlog: Option<PathBuf>,
    pub allow_zero_pcrs: bool,
    pub remove_systemd_token: bool,
    /// The primary volume of the boot that opens this one, when it is
    /// another (as `enroll --root-volume`).
    pub root_volume: Option<bootset::Primary>,
    /// The image's crypttab, checked as `enroll` checks it.
    pub crypttab: PathBuf,
}

pub struct AdoptOutcome {
    /// The systemd token adopted, and its keyslot.
    pub from: (u32, u32),
    pub added: Added,
    pub recovery: Option<(RecoveryKey, u32)>,
    /// Whether the systemd token and its keyslot were removed.
    pub removed: bool,
}

/// Adopt: see the module comment.
///
/// Errors: [`Error::Usage`] (no systemd-tpm2 token, or several and none
/// chosen), those of the systemd unseal ([`systemd::volume_key`]) and of
/// enrollment; [`Error::Internal`] when the new keyslot does not prove out
/// (the systemd token is then kept).
pub fn run(args: &AdoptArgs) -> Result<AdoptOutcome> {
    bootset::note_boot_inputs(&args.pcrs, args.authorize.is_some());
    let mut vol = Volume::open(&args.device)?;
    let mut found = systemd::tokens(&mut vol)?;
    let ids: Vec<u32> = found.iter().map(|f| f.id).collect();
    let pos = match (args.token, ids.as_slice()) {
        (_, []) => {
            return Err(Error::Usage(format!(
                "{}: no systemd-tpm2 token to adopt",
                args.device.display()
            )))
        }
        (None, [_]) => 0,
        (None, _) => {
            return Err(Error::Usage(format!(
                "{} has systemd-tpm2 tokens {ids:?}: choose one with --token",
                args.device.display()
            )))
        }
        (Some(t), _) => ids.iter().position(|&i| i == t).ok_or_else(|| {
            Error::Usage(format!(
                "token {t} is not a systemd-tpm2 token (those are {ids:?})"
            ))
        })?,
    };
    let f = found.swap_remove(pos);
    let token = f.token.clone().map_err(|e| Error::blob(&f.origin, e))?;
    let mut tpm = args.tpm.open()?;
    let inputs = Inputs {
        pin: &args.systemd_pin,
        signature: args.signature.as_deref(),
        prompt_timeout: None,
    };
    let key = systemd::volume_key(&mut vol, &mut tpm, &f, &token, &inputs)?;
    info!("{} opens keyslot {}", f.origin, token.keyslot);
    let uuid = vol.uuid()?;
    bootset::check_crypttab(
        &args.crypttab,
        &args.cmdline,
        &args.device,
        &uuid,
        args.root_volume.as_ref().map(|p| p.uuid.as_str()),
    );
    let spec = SealSpec {
        pcrs: &args.pcrs,
        measurements: bootset::measurements(&args.cmdline, &uuid, args.root_volume.as_ref()),
        pin: args.pin.as_ref(),
        platform: None,
        tdx: None,
        authorize: args.authorize.as_ref(),
        events: expected_events(&mut tpm, args.eventlog.as_deref()),
        allow_zero_pcrs: args.allow_zero_pcrs,
        key_origin: crate::formats::key_origin::KeyOrigin::Image,
        rekey_epoch: None,
    };
    let added = add_sealed(&mut vol, &mut tpm, &spec, &key, None)?;
    let recovery = match args.recovery {
        true => Some(add_recovery(&mut vol, &key)?),
        false => None,
    };
    let mut removed = false;
    if args.remove_systemd_token {
        prove(&mut vol, &added, &key)?;
        vol.remove_token(f.id)?;
        vol.destroy_keyslot(token.keyslot)?;
        info!("removed {} and its keyslot {}", f.origin, token.keyslot);
        removed = true;
    }
    Ok(AdoptOutcome {
        from: (f.id, token.keyslot),
        added,
        recovery,
        removed,
    })
}

/// The new keyslot opens with the sealed secret and gives the same volume
/// key, and the new token reads back as a valid blob of this volume.
fn prove(vol: &mut Volume, added: &Added, key: &crate::secret::VolumeKey) -> Result<()> {
    let (_, again) = vol.volume_key(Some(added.keyslot), added.secret.as_bytes())?;
    let same = volume_key::fingerprint(again.as_bytes()) == volume_key::fingerprint(key.as_bytes());
    let token_ok = load_blobs(vol, None)?
        .iter()
        .any(|s| s.token == added.token && s.blob.is_ok());
    if !same || !token_ok {
        return Err(Error::Internal(format!(
            "the new keyslot {} did not prove out (same volume key: {same}, token reads back: {token_ok}); the systemd-tpm2 token is kept",
            added.keyslot
        )));
    }
    Ok(())
}
