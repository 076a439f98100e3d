//! The unlock path, which `unlock` and `boot` share: measure → load blobs
//! → compare PCRs (and explain) → unseal over a salted, encrypted session
//! → lock → decrypt envelope → activate (or only verify the key with
//! `--dry-run`). With a provisioning key and no token yet, the first boot
//! enrolls against its own PCRs and drops the provisioning key.

use super::blobs::{check_blob_policy, check_pcrs, load_blobs, Source};
use super::eventlog;
use super::evidence::{self, PlatformOpts};
use super::inputs::{pin_auth, PinSource};
use super::measure::{lock, measure_self};
use super::seal::{add_sealed, SealSpec};
use super::signed::{self, Found, PolicySearch};
use super::TpmOpts;
use crate::attest::snp_requirement::SnpRequirement;
use crate::disk::luks::Volume;
use crate::formats::envelope;
use crate::pcr::selfpcr::Measurements;
use crate::pcr::signer::PublicKey;
use crate::pcr::{Digest, Mismatch, PcrDiff, BANK_SHA256, SELF_PCR};
use crate::secret::{Key32, SecretBytes};
use crate::testhooks::checkpoint;
use crate::tpm::object::Authorization;
use crate::tpm::Tpm;
use crate::{Error, Result};
use log::{info, warn};
use std::path::PathBuf;

pub struct UnlockArgs {
    pub device: PathBuf,
    pub name: String,
    pub dry_run: bool,
    pub blob_file: Option<PathBuf>,
    pub cmdline: String,
    pub pin: PinSource,
    /// First-boot enrollment: the image's provisioning key.
    pub provision_key: Option<SecretBytes>,
    /// PCRs for first-boot enrollment.
    pub pcrs: Vec<u32>,
    pub tpm: TpmOpts,
    /// Where to find platform evidence and certificates, for blobs that
    /// require SEV-SNP.
    pub platform: PlatformOpts,
    /// A platform requirement from the command line: checked before any
    /// blob is unsealed (besides the blob's own), and stored by first-boot
    /// enrollment, which checks it before enrolling.
    pub require: Option<SnpRequirement>,
    /// First-boot enrollment in signed-policy mode.
    pub policy_key: Option<PublicKey>,
    /// Where signed policies are looked for (signed-policy volumes).
    pub policies: PolicySearch,
    /// This boot's event log, to explain a mismatch (None: do not use one).
    pub eventlog: Option<PathBuf>,
}

#[derive(Debug)]
pub struct Unlocked {
    pub keyslot: u32,
    pub origin: String,
    pub first_boot: bool,
}

pub fn run(args: &UnlockArgs) -> Result<Unlocked> {
    let mut vol = Volume::open(&args.device)?;
    let uuid = vol.uuid()?;
    let mut sources = load_blobs(&mut vol, args.blob_file.as_deref())?;
    if sources.is_empty() {
        return match &args.provision_key {
            Some(key) => first_boot(&mut vol, &uuid, key, args),
            None => Err(Error::NotEnrolled {
                path: args.device.clone(),
                hint: "; enroll it with `sealroot enroll`, or pass --blob-file".into(),
            }),
        };
    }
    // Nothing usable: report the blob's own problem without touching the TPM.
    if sources.iter().all(|s| s.blob.is_err()) {
        let s = sources.swap_remove(0);
        return Err(s.blob.expect_err("checked"));
    }
    // Try assigned tokens first: an unassigned one may be from an
    // interrupted enrollment.
    sources.sort_by_key(|s| !matches!(&s.blob, Ok(b) if b.assigned));

    // Signed-policy volumes: the signed policies' PCRs are read too.
    let (signed_found, wanted) = signed::for_sources(&mut vol, &sources, &args.policies)?;
    let mut tpm = args.tpm.open()?;
    let now = Measurements::new(&args.cmdline, &uuid);
    let mut current = tpm.pcr_read(&wanted)?;
    let self_pos = wanted
        .iter()
        .position(|&p| p == SELF_PCR)
        .expect("every valid blob includes the self PCR");
    current[self_pos] = measure_self(&mut tpm, &now, current[self_pos])?;

    // Each candidate is unsealed and its key checked against its keyslot
    // before the lock, so a stale token (say, one left by an interrupted
    // enrollment whose keyslot number was reused) cannot lock PCR 15 and
    // shut out the valid token after it. Once anything was unsealed, the
    // lock is extended before this function returns, whatever happens.
    let mut unsealed_any = false;
    let mut first_err: Option<Error> = None;
    let mut found = None;
    for src in &sources {
        match unseal_verified(
            &mut vol,
            &mut tpm,
            src,
            &uuid,
            &now,
            &wanted,
            &current,
            args,
            &signed_found,
            &mut unsealed_any,
        ) {
            Ok(v) => {
                found = Some((v, src));
                break;
            }
            // The TPM connection is gone: nothing more can be tried.
            Err(e @ Error::NoTpm { .. }) => {
                first_err = Some(e);
                break;
            }
            Err(e) => {
                if sources.len() > 1 {
                    warn!("{}: {e}", src.origin);
                }
                if first_err.is_none() {
                    first_err = Some(e);
                }
            }
        }
    }
    // (Without a connection there is nothing to extend: the recovery path's
    // own lock attempt is what remains.)
    let connection_lost = matches!(first_err, Some(Error::NoTpm { .. }));
    if unsealed_any && !connection_lost {
        // The secret has left the TPM: nothing may unseal it again this boot.
        lock(&mut tpm)?;
        checkpoint("unlock:locked");
    }
    let Some(((keyslot, secret), src)) = found else {
        return Err(first_err.expect("at least one source"));
    };
    if args.dry_run {
        info!(
            "dry run: the unsealed key opens keyslot {keyslot} of {} (no mapping created)",
            args.device.display()
        );
    } else {
        vol.activate(&args.name, Some(keyslot), secret.as_bytes())?;
        info!(
            "unlocked {} as /dev/mapper/{} with keyslot {keyslot} ({})",
            args.device.display(),
            args.name,
            src.origin
        );
    }
    drop(secret);
    if let Some(key) = &args.provision_key {
        finish_first_boot(&mut vol, &sources, key)?;
    }
    Ok(Unlocked {
        keyslot,
        origin: src.origin.clone(),
        first_boot: false,
    })
}

/// Check one candidate, unseal its KEK, open its envelope and check the
/// secret against its keyslot (no mapping). Sets `unsealed` as soon as the
/// TPM has released anything.
#[allow(clippy::too_many_arguments)]
fn unseal_verified(
    vol: &mut Volume,
    tpm: &mut Tpm,
    src: &Source,
    uuid: &str,
    now: &Measurements,
    wanted: &[u32],
    current: &[Digest],
    args: &UnlockArgs,
    found: &[Found],
    unsealed: &mut bool,
) -> Result<(u32, Key32)> {
    let blob = match &src.blob {
        Ok(b) => b,
        Err(e) => return Err(Error::blob(&src.origin, e.to_string())),
    };
    if !blob.volume_uuid.eq_ignore_ascii_case(uuid) {
        return Err(Error::blob(
            &src.origin,
            format!(
                "belongs to volume {}, not to this volume {uuid} (copied token?)",
                blob.volume_uuid
            ),
        ));
    }
    check_blob_policy(blob, &src.origin)?;
    if !vol.keyslot_active(blob.keyslot) {
        return Err(Error::luks(
            vol.path(),
            format!(
                "{} refers to keyslot {} which does not exist (interrupted enroll? run `sealroot cleanup`)",
                src.origin, blob.keyslot
            ),
        ));
    }
    // The platform first: nothing is unsealed on a platform that fails
    // the blob's requirement.
    evidence::check_blob(tpm, &args.platform, blob, args.require.as_ref())?;
    check_pcrs(blob, now, wanted, current).map_err(|e| match e {
        Error::PcrMismatch(mut m) => {
            eventlog::annotate(&mut m.diffs, &blob.events, args.eventlog.as_deref());
            Error::PcrMismatch(m)
        }
        e => e,
    })?;
    let chosen = match &blob.authorize {
        None => None,
        Some(key) => {
            let (verified, rejected) = signed::verified(found, key);
            for (origin, e) in &rejected {
                warn!("{origin}: ignored: {e}");
            }
            let value_of = |i: u32| current[wanted.iter().position(|&w| w == i).expect("read")];
            let (origin, sp) = signed::choose(
                &verified,
                &value_of,
                &mut || tpm.read_counter(),
                args.eventlog.as_deref(),
            )?;
            info!(
                "{}: signed policy {origin} (version {}{}) matches this boot's PCRs",
                src.origin,
                sp.version,
                if sp.description.is_empty() {
                    String::new()
                } else {
                    format!(", {:?}", sp.description)
                }
            );
            Some(Authorization { key, policy: sp })
        }
    };
    let pin = if blob.pin {
        Some(pin_auth(&args.pin.get("sealroot: PIN: ")?))
    } else {
        None
    };
    let kek = tpm.unseal(blob.sealed_object(), pin.as_ref(), chosen);
    drop(pin);
    let kek = kek?;
    *unsealed = true;
    let secret =
        envelope::open(&kek, &blob.nonce, &blob.ciphertext, &blob.binding()).ok_or_else(|| {
            Error::blob(
                &src.origin,
                "envelope does not authenticate (edited token, or one copied from another volume)",
            )
        })?;
    crate::testhooks::reveal("kek", kek.as_bytes());
    crate::testhooks::reveal("secret", secret.as_bytes());
    drop(kek);
    vol.check_key(Some(blob.keyslot), secret.as_bytes())?;
    Ok((blob.keyslot, secret))
}

/// A first boot interrupted after enrolling left the provisioning keyslot
/// behind: now that the TPM path has worked, remove it. Only PBKDF2 keyslots
/// no token refers to are tried, so this costs microseconds per boot.
fn finish_first_boot(vol: &mut Volume, sources: &[Source], key: &SecretBytes) -> Result<()> {
    let ours: Vec<u32> = sources
        .iter()
        .filter_map(|s| s.blob.as_ref().ok().map(|b| b.keyslot))
        .collect();
    for slot in vol.active_keyslots() {
        if ours.contains(&slot) || !vol.keyslot_is_pbkdf2(slot) {
            continue;
        }
        if vol.check_key(Some(slot), key.as_bytes()).is_ok() {
            vol.destroy_keyslot(slot)?;
            info!("completed an interrupted first boot: removed provisioning keyslot {slot}");
        }
    }
    Ok(())
}

/// First boot: open with the provisioning key, enroll against this boot's
/// PCRs, lock, activate with the new key, then drop the provisioning keyslot.
fn first_boot(
    vol: &mut Volume,
    uuid: &str,
    provision_key: &SecretBytes,
    args: &UnlockArgs,
) -> Result<Unlocked> {
    let prov_slot = vol.check_key(None, provision_key.as_bytes()).map_err(|e| {
        Error::luks(
            &args.device,
            format!("no sealroot token, and the provisioning key does not open the volume: {e}"),
        )
    })?;
    info!(
        "first boot: no sealroot token; provisioning key opens keyslot {prov_slot}; enrolling against this boot's PCRs"
    );
    let mut tpm: Tpm = args.tpm.open()?;
    let now = Measurements::new(&args.cmdline, uuid);
    let cur = tpm.pcr_read(&[SELF_PCR])?[0];
    let after = measure_self(&mut tpm, &now, cur)?;
    if after != now.expected() {
        return Err(Error::PcrMismatch(Mismatch {
            bank: BANK_SHA256.into(),
            diffs: vec![PcrDiff {
                index: SELF_PCR,
                expected: now.expected(),
                current: after,
                why: Some("PCR was already extended before first-boot enrollment".into()),
            }],
        }));
    }
    // Seal nothing on a platform that fails the requirement to be stored.
    if let Some(p) = &args.require {
        evidence::check(&mut tpm, &args.platform, &[p], &[0; 32])?;
    }
    let spec = SealSpec {
        pcrs: &args.pcrs,
        measurements: now,
        pin: None,
        platform: args.require.as_ref(),
        authorize: args.policy_key.as_ref(),
        events: eventlog::expected_events(&mut tpm, args.eventlog.as_deref()),
    };
    let added = add_sealed(vol, &mut tpm, &spec, provision_key.as_bytes(), None)?;
    checkpoint("firstboot:enrolled");
    lock(&mut tpm)?;
    // Prove the new keyslot before dropping the provisioning one.
    if args.dry_run {
        vol.check_key(Some(added.keyslot), added.secret.as_bytes())?;
    } else {
        vol.activate(&args.name, Some(added.keyslot), added.secret.as_bytes())?;
    }
    checkpoint("firstboot:activated");
    vol.destroy_keyslot(prov_slot)?;
    info!(
        "first boot: enrolled keyslot {} (PCRs {}), removed provisioning keyslot {prov_slot}",
        added.keyslot,
        added
            .blob
            .pcrs
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    Ok(Unlocked {
        keyslot: added.keyslot,
        origin: format!("token {}", added.token.unwrap_or_default()),
        first_boot: true,
    })
}
