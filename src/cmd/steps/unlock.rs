//! The unlock path, which `unlock` and `boot` share: check the header
//! (in memory) → load blobs → measure → compare PCRs (and explain) →
//! unseal over a salted, encrypted session → decrypt envelope → derive the
//! volume key through the keyslot and compare its fingerprint → lock →
//! activate from the checked header (or stop there with `--dry-run`).
//! With a provisioning key and no token yet, the first boot enrolls
//! against its own PCRs and drops the provisioning key. Every way out
//! locks PCR 15 ([`Session`]).

use super::blobs::{check_blob_policy, check_pcrs, load_blobs, Source};
use super::eventlog;
use super::evidence::{self, PlatformOpts};
use super::inputs::{pin_auth, PinSource};
use super::measure::measure_self;
use super::seal::{add_sealed, SealSpec};
use super::session::Session;
use super::signed::{self, Found, PolicySearch};
use crate::attest::snp_requirement::SnpRequirement;
use crate::disk::luks::{OpenOpts, Volume};
use crate::formats::luks2::Kdf;
use crate::formats::{envelope, volume_key};
use crate::pcr::selfpcr::Measurements;
use crate::pcr::signer::PublicKey;
use crate::pcr::{Digest, Mismatch, PcrDiff, BANK_SHA256, SELF_PCR};
use crate::secret::{Key32, SecretBytes, VolumeKey};
use crate::testhooks::checkpoint;
use crate::tpm::object::Authorization;
use crate::{Error, Result};
use log::{info, warn};
use std::path::PathBuf;

pub struct UnlockArgs {
    pub device: PathBuf,
    /// A detached header, and the activation flags.
    pub luks: OpenOpts,
    pub name: String,
    pub dry_run: bool,
    pub blob_file: Option<PathBuf>,
    pub cmdline: String,
    pub pin: PinSource,
    /// First-boot enrollment: the image's provisioning key.
    pub provision_key: Option<SecretBytes>,
    /// PCRs for first-boot enrollment.
    pub pcrs: Vec<u32>,
    /// First boot may seal to PCRs that were never extended.
    pub allow_zero_pcrs: bool,
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
    /// A volume without a sealroot token may open through its systemd-tpm2
    /// token (`--systemd-token`, crypttab's `sealroot-systemd-token`): an
    /// opt-in, since that token is unsealed before PCR 15 is measured, and a
    /// host that strips the sealroot token must not choose that path.
    pub systemd_tokens: bool,
    /// crypttab's `sealroot-rekey`: a first boot re-encrypts the volume to
    /// a fresh key of this VM's own, and a later boot resumes an
    /// interrupted re-keying ([`super::rekey`]).
    pub rekey: bool,
}

#[derive(Debug)]
pub struct Unlocked {
    pub keyslot: u32,
    pub origin: String,
    pub first_boot: bool,
}

impl Unlocked {
    /// A volume opened by first-boot re-keying (finished or resumed).
    pub fn rekeyed(keyslot: u32) -> Unlocked {
        Unlocked {
            keyslot,
            origin: "re-keying".into(),
            first_boot: true,
        }
    }
}

impl UnlockArgs {
    /// What re-keying needs of these arguments.
    pub fn rekey_target(&self) -> super::rekey::Target<'_> {
        super::rekey::Target {
            device: &self.device,
            luks: &self.luks,
            name: &self.name,
            dry_run: self.dry_run,
            cmdline: &self.cmdline,
            platform: &self.platform,
            require: self.require.as_ref(),
            provision_key: self.provision_key.as_ref(),
        }
    }
}

pub use crate::formats::luks2::allow::MAX_SEALED_KEYSLOT_ITERATIONS;

/// Unlock `args.device` through `session`, which locks PCR 15 on the way
/// out: here on success (with the opened volume's event), by the caller's
/// drop on any error. The boot measured is one that opens this volume
/// alone: a volume sealed to open after another is opened by `boot`.
///
/// Errors: [`Error::VolumeRefused`] (header outside the allow-list, volume
/// key not the enrolled one), [`Error::NotEnrolled`], [`Error::Timeout`],
/// and those of the TPM, the blob, the platform check and libcryptsetup.
pub fn run(args: &UnlockArgs, session: &mut Session) -> Result<Unlocked> {
    if args.rekey {
        if let Some(slot) = super::rekey::resume_if_interrupted(&args.rekey_target(), session)? {
            return Ok(Unlocked::rekeyed(slot));
        }
    }
    let vol = prepare(args)?;
    run_prepared(args, vol, session)
}

/// [`run`] on a volume whose header is checked already.
///
/// Errors: as [`run`].
pub fn run_prepared(
    args: &UnlockArgs,
    mut vol: Prepared,
    session: &mut Session,
) -> Result<Unlocked> {
    if vol.sources.is_empty() && args.systemd_tokens {
        // No sealroot token: systemd-cryptenroll's, if any (steps/systemd.rs).
        let req = super::systemd::Request {
            device: &args.device,
            name: &args.name,
            dry_run: args.dry_run,
            cmdline: &args.cmdline,
            pin: &args.pin,
            signature: args.policies.systemd_signature.as_deref(),
            require: args.require.as_ref(),
            platform: &args.platform,
        };
        if let Some((keyslot, origin)) = super::systemd::unlock(&mut vol.vol, &req, session)? {
            return Ok(Unlocked {
                keyslot,
                origin,
                first_boot: false,
            });
        }
    }
    let now = Measurements::new(&args.cmdline, &vol.uuid);
    let key = unseal(&mut vol, args, &now, session)?;
    session.check_deadline("the lock")?;
    session.lock_opened(&[key.fingerprint()])?;
    checkpoint("unlock:locked");
    finish(vol, key, args, session)
}

/// A volume whose header is checked (in memory) and whose tokens are
/// loaded: nothing unsealed yet.
pub struct Prepared {
    pub(super) vol: Volume,
    /// The LUKS UUID, from the checked header.
    pub uuid: String,
    sources: Vec<Source>,
}

/// Read and check the header of `args.device` and load its tokens (and
/// `--blob-file`).
///
/// Errors: those of [`Volume::open_with`] and of reading the blob file.
pub fn prepare(args: &UnlockArgs) -> Result<Prepared> {
    let mut vol = Volume::open_with(&args.device, &args.luks)?;
    crate::testhooks::pause_at("unlock:header-checked");
    let uuid = vol.uuid()?;
    let sources = load_blobs(&mut vol, args.blob_file.as_deref())?;
    Ok(Prepared { vol, uuid, sources })
}

/// A volume key obtained before the lock: unsealed through a token, or
/// enrolled by a first boot. Nothing is activated yet.
pub struct Opened {
    key: VolumeKey,
    keyslot: u32,
    origin: String,
    first_boot: Option<FirstBoot>,
    /// A first-boot re-keying to run after the lock.
    rekey: Option<super::rekey::Pending>,
    /// The epoch (and pinned SRK name) of the re-keying token that
    /// unsealed, authenticated by its envelope: [`finish`] records the
    /// re-keying as finished.
    rekey_epoch: Option<(u64, Vec<u8>)>,
}

impl Opened {
    /// The volume key's fingerprint, for the lock event.
    pub fn fingerprint(&self) -> Digest {
        volume_key::fingerprint(self.key.as_bytes())
    }
}

/// What a first boot does after the lock: prove the new keyslot, then drop
/// the provisioning keyslot.
struct FirstBoot {
    provision_slot: u32,
    secret: Key32,
    pcrs: Vec<u32>,
}

/// Measure this boot (`now`, unless PCR 15 holds it already), then unseal
/// the volume key through the first token that passes every check, or,
/// with a provisioning key and no token, enroll one (first boot). Does not
/// lock: the caller locks once, after every volume of the boot.
///
/// Errors: as [`run`].
pub fn unseal(
    p: &mut Prepared,
    args: &UnlockArgs,
    now: &Measurements,
    session: &mut Session,
) -> Result<Opened> {
    let sources = &mut p.sources;
    if sources.is_empty() {
        if args.provision_key.is_none() && !super::systemd::tokens(&mut p.vol)?.is_empty() {
            return Err(if args.systemd_tokens {
                Error::Usage(format!(
                    "{}: a volume opened through a systemd-tpm2 token must be the only sealed volume of its boot (it is unsealed before sealroot measures PCR 15); give it a sealroot token with `sealroot adopt` to open it beside others",
                    args.device.display()
                ))
            } else {
                Error::NotEnrolled {
                    path: args.device.clone(),
                    hint: "; it has a systemd-tpm2 token, which sealroot opens only when asked (--systemd-token, crypttab's sealroot-systemd-token; docs/systemd.md), or adopt it with `sealroot adopt`".into(),
                }
            });
        }
        return match &args.provision_key {
            Some(key) => first_boot(&mut p.vol, key, args, now, session),
            None => Err(Error::NotEnrolled {
                path: args.device.clone(),
                hint: "; enroll it with `sealroot enroll`, or pass --blob-file".into(),
            }),
        };
    }
    // Nothing usable: report the blob's own problem without unsealing.
    if sources.iter().all(|s| s.blob.is_err()) {
        let s = sources.swap_remove(0);
        return Err(s.blob.expect_err("checked"));
    }
    // Try assigned tokens first: an unassigned one may be from an
    // interrupted enrollment.
    sources.sort_by_key(|s| !matches!(&s.blob, Ok(b) if b.assigned));
    let vol = &mut p.vol;

    // Signed-policy volumes: the signed policies' PCRs are read too.
    let (signed_found, wanted) = signed::for_sources(vol, sources, &args.policies)?;
    session.check_deadline("connecting to the TPM")?;
    let tpm = session.tpm()?;
    let mut current = tpm.pcr_read(&wanted)?;
    let self_pos = wanted
        .iter()
        .position(|&p| p == SELF_PCR)
        .expect("every valid blob includes the self PCR");
    current[self_pos] = measure_self(tpm, now, current[self_pos])?;

    // Each candidate is unsealed and its volume key checked before the
    // lock, so a stale token (say, one left by an interrupted enrollment
    // whose keyslot number was reused) cannot shut out the valid token
    // after it. The session locks on every way out.
    let ctx = Candidates {
        uuid: &p.uuid,
        now,
        wanted: &wanted,
        current: &current,
        args,
        found: &signed_found,
    };
    let mut first_err: Option<Error> = None;
    for src in sources.iter() {
        match unseal_verified(vol, session, src, &ctx) {
            Ok((keyslot, key)) => {
                // This token's envelope opened: its epoch is authentic (a
                // token the host added beside it is not).
                let rekey_epoch = src
                    .blob
                    .as_ref()
                    .ok()
                    .filter(|b| b.key_origin == crate::formats::key_origin::KeyOrigin::VmRekeyed)
                    .and_then(|b| b.rekey_epoch.map(|e| (e, b.srk_name.clone())));
                return Ok(Opened {
                    key,
                    keyslot,
                    origin: src.origin.clone(),
                    first_boot: None,
                    rekey: None,
                    rekey_epoch,
                });
            }
            // The TPM connection is gone, or time is up: nothing more can
            // be tried.
            Err(e @ (Error::NoTpm { .. } | Error::Timeout(_))) => return Err(e),
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
    Err(first_err.expect("at least one source"))
}

/// After the lock: activate from the checked header (or stop there with
/// `--dry-run`), and finish a first boot (prove the new keyslot, drop the
/// provisioning keyslot).
///
/// Errors: those of libcryptsetup.
pub fn finish(
    mut p: Prepared,
    mut o: Opened,
    args: &UnlockArgs,
    session: &mut Session,
) -> Result<Unlocked> {
    if let Some(pending) = o.rekey.take() {
        let slot = super::rekey::finish(p.vol, o.key, pending, &args.rekey_target(), session)?;
        return Ok(Unlocked::rekeyed(slot));
    }
    if let Some((epoch, srk_name)) = &o.rekey_epoch {
        // A re-keyed volume (whatever the configuration says): a first boot
        // cut between the end of its re-encryption and the TPM's record of
        // it is recorded now, before the volume is opened.
        super::rekey::close_epoch(session.tpm()?, *epoch, srk_name, &args.device)?;
    }
    let vol = &mut p.vol;
    if let Some(fb) = &o.first_boot {
        // Prove the new keyslot before dropping the provisioning one.
        vol.check_key(Some(o.keyslot), fb.secret.as_bytes())?;
    }
    if args.dry_run {
        info!(
            "dry run: the key opens keyslot {} of {} (no mapping created)",
            o.keyslot,
            args.device.display()
        );
    } else {
        vol.activate(&args.name, &o.key, false)?;
        info!(
            "unlocked {} as /dev/mapper/{} with keyslot {} ({})",
            args.device.display(),
            args.name,
            o.keyslot,
            o.origin
        );
    }
    let Opened {
        key,
        keyslot,
        origin,
        first_boot,
        ..
    } = o;
    drop(key);
    let was_first_boot = first_boot.is_some();
    match first_boot {
        Some(fb) => {
            checkpoint("firstboot:activated");
            vol.destroy_keyslot(fb.provision_slot)?;
            info!(
                "first boot: enrolled keyslot {keyslot} (PCRs {}), removed provisioning keyslot {}",
                fb.pcrs
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
                fb.provision_slot
            );
        }
        None => {
            if let Some(key) = &args.provision_key {
                finish_first_boot(vol, &p.sources, key)?;
            }
            if args.rekey {
                // A re-keying cut after its last step left old-key keyslots.
                super::rekey::sweep(vol)?;
            }
        }
    }
    Ok(Unlocked {
        keyslot,
        origin,
        first_boot: was_first_boot,
    })
}

/// What every candidate token is checked against.
struct Candidates<'a> {
    uuid: &'a str,
    now: &'a Measurements,
    wanted: &'a [u32],
    current: &'a [Digest],
    args: &'a UnlockArgs,
    found: &'a [Found],
}

/// The checks of a token's keyslot that come before any unseal: it exists,
/// and it is what sealroot writes (PBKDF2, cheap), not a keyslot rewritten
/// to stall the unlock before the lock.
fn check_keyslot(vol: &mut Volume, src: &Source, keyslot: u32) -> Result<()> {
    if !vol.keyslot_active(keyslot) {
        return Err(Error::luks(
            vol.path(),
            format!(
                "{} refers to keyslot {keyslot} which does not exist (interrupted enroll? run `sealroot cleanup`)",
                src.origin
            ),
        ));
    }
    match vol.header().keyslot(keyslot).map(|k| &k.kdf) {
        Some(Kdf::Pbkdf2 { iterations, .. }) if *iterations <= MAX_SEALED_KEYSLOT_ITERATIONS => {
            Ok(())
        }
        Some(Kdf::Pbkdf2 { iterations, .. }) => Err(Error::refused(
            vol.path(),
            format!(
                "LUKS2 header: keyslots.{keyslot}.kdf.iterations = {iterations}: {} names it, and sealroot's keyslots use at most {MAX_SEALED_KEYSLOT_ITERATIONS}",
                src.origin
            ),
        )),
        other => Err(Error::refused(
            vol.path(),
            format!(
                "LUKS2 header: keyslots.{keyslot}.kdf = {}: {} names it, and sealroot's keyslots use pbkdf2",
                other.map_or("none".to_string(), |k| format!("{k:?}")),
                src.origin
            ),
        )),
    }
}

/// Check one candidate, unseal its KEK, open its envelope, derive the
/// volume key through its keyslot and compare the key's fingerprint with
/// the token's (no mapping).
fn unseal_verified(
    vol: &mut Volume,
    session: &mut Session,
    src: &Source,
    c: &Candidates,
) -> Result<(u32, VolumeKey)> {
    let args = c.args;
    let blob = match &src.blob {
        Ok(b) => b,
        Err(e) => return Err(Error::blob(&src.origin, e.to_string())),
    };
    if !blob.volume_uuid.eq_ignore_ascii_case(c.uuid) {
        return Err(Error::blob(
            &src.origin,
            format!(
                "belongs to volume {}, not to this volume {} (copied token?)",
                blob.volume_uuid, c.uuid
            ),
        ));
    }
    check_blob_policy(blob, &src.origin)?;
    check_keyslot(vol, src, blob.keyslot)?;
    let tpm = session.tpm()?;
    // The platform first: nothing is unsealed on a platform that fails
    // the blob's requirement.
    evidence::check_blob(tpm, &args.platform, blob, args.require.as_ref())?;
    check_pcrs(blob, c.now, c.wanted, c.current).map_err(|e| match e {
        Error::PcrMismatch(mut m) => {
            eventlog::annotate(&mut m.diffs, &blob.events, args.eventlog.as_deref());
            Error::PcrMismatch(m)
        }
        e => e,
    })?;
    let chosen = match &blob.authorize {
        None => None,
        Some(key) => {
            let (verified, rejected) = signed::verified(c.found, key);
            for (origin, e) in &rejected {
                warn!("{origin}: ignored: {e}");
            }
            let value_of = |i: u32| c.current[c.wanted.iter().position(|&w| w == i).expect("read")];
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
        session.check_deadline("the PIN prompt")?;
        Some(pin_auth(
            &args.pin.get("sealroot: PIN: ", Some(session.remaining()))?,
        ))
    } else {
        None
    };
    session.check_deadline("the unseal")?;
    let kek = session
        .tpm()?
        .unseal(blob.sealed_object(), pin.as_ref(), chosen);
    drop(pin);
    let kek = kek?;
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
    session.check_deadline("the keyslot")?;
    let (_, key) = vol.volume_key(Some(blob.keyslot), secret.as_bytes())?;
    drop(secret);
    crate::testhooks::reveal("volume-key", key.as_bytes());
    let fp = volume_key::fingerprint(key.as_bytes());
    match &blob.fingerprint {
        Some(enrolled) if volume_key::matches(enrolled, &fp) => {}
        Some(enrolled) => {
            return Err(Error::refused(
                vol.path(),
                format!(
                    "keyslot {} yields a volume key whose fingerprint {} is not the one {} was enrolled with ({}): a rewritten keyslot, or another volume carrying this volume's UUID",
                    blob.keyslot,
                    &hex::encode(fp)[..16],
                    src.origin,
                    &hex::encode(enrolled)[..16]
                ),
            ))
        }
        None => warn!(
            "{}: a version-1 token does not bind the volume key; run `sealroot reseal` to upgrade it (docs/format.md)",
            src.origin
        ),
    }
    Ok((blob.keyslot, key))
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

/// First boot: open with the provisioning key and enroll against this
/// boot's PCRs. The caller locks, then [`finish`] activates with the
/// volume key and drops the provisioning keyslot.
fn first_boot(
    vol: &mut Volume,
    provision_key: &SecretBytes,
    args: &UnlockArgs,
    now: &Measurements,
    session: &mut Session,
) -> Result<Opened> {
    let (prov_slot, key) = vol
        .volume_key(None, provision_key.as_bytes())
        .map_err(|e| {
            Error::luks(
                &args.device,
                format!(
                    "no sealroot token, and the provisioning key does not open the volume: {e}"
                ),
            )
        })?;
    info!(
        "first boot: no sealroot token; provisioning key opens keyslot {prov_slot}; enrolling against this boot's PCRs"
    );
    session.check_deadline("connecting to the TPM")?;
    let tpm = session.tpm()?;
    let cur = tpm.pcr_read(&[SELF_PCR])?[0];
    let after = measure_self(tpm, now, cur)?;
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
        evidence::check(tpm, &args.platform, &[p], &[0; 32])?;
    }
    if let Some(t) = &args.platform.require_tdx {
        evidence::check_tdx(tpm, &args.platform, t, &[0; 32])?;
    }
    let spec = SealSpec {
        pcrs: &args.pcrs,
        measurements: *now,
        pin: None,
        platform: args.require.as_ref(),
        tdx: args.platform.require_tdx.as_ref(),
        authorize: args.policy_key.as_ref(),
        events: eventlog::expected_events(tpm, args.eventlog.as_deref()),
        allow_zero_pcrs: args.allow_zero_pcrs,
        key_origin: crate::formats::key_origin::KeyOrigin::Image,
        rekey_epoch: None,
    };
    if args.rekey {
        if args.blob_file.is_some() {
            return Err(Error::Usage(
                "sealroot-rekey keeps its token in the LUKS2 header, not in a blob file".into(),
            ));
        }
        let (new_key, token, pending) = super::rekey::enroll(vol, tpm, spec, &key)?;
        drop(key);
        return Ok(Opened {
            key: new_key,
            keyslot: pending.new_slot(),
            origin: format!("token {token}"),
            first_boot: None,
            rekey: Some(pending),
            rekey_epoch: None,
        });
    }
    let added = add_sealed(vol, tpm, &spec, &key, None)?;
    checkpoint("firstboot:enrolled");
    Ok(Opened {
        key,
        keyslot: added.keyslot,
        origin: format!("token {}", added.token.unwrap_or_default()),
        first_boot: Some(FirstBoot {
            provision_slot: prov_slot,
            secret: added.secret,
            pcrs: added.blob.pcrs,
        }),
        rekey: None,
        rekey_epoch: None,
    })
}
