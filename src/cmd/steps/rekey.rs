//! First-boot re-keying (crypttab's `sealroot-rekey`): re-encrypt the
//! image's LUKS2 root to a volume key of this VM's own, before the root is
//! mounted (docs/first-boot.md#mode-2-re-keying-the-root-at-first-boot).
//!
//! Order, and what a power cut at each point leaves:
//! 1. the new key (TPM RNG XOR kernel RNG) gets a sealed token
//!    (`key_origin: vm-rekeyed`) and an *unbound* keyslot wrapped by the
//!    sealed secret only: nothing the host knows (not the provisioning
//!    key) ever wraps it. Cut here: the next boot finds an unbound keyslot
//!    and a header not in re-encryption; with the provisioning key it
//!    discards them and starts again ([`discard_unstarted`]).
//! 2. a keyslot for the *old* key under the same sealed secret (libcryptsetup
//!    opens both keys with one passphrase; the old key is the image's, so
//!    this wraps nothing the host lacks). Same as 1 on a cut.
//! 3. PCR 15 is locked (by the caller), then the header goes into
//!    re-encryption and the data is re-encrypted offline, `journal`
//!    resilience. Cut here: the header says "in re-encryption"; the next
//!    boot unseals the secret through the TPM ([`resume_if_interrupted`]),
//!    locks PCR 15, and resumes. The provisioning key alone cannot: it
//!    opens no keyslot of the new key.
//! 4. every keyslot of the old key goes (libcryptsetup drops them when it
//!    finishes; [`sweep`] removes any left unbound), then the volume is
//!    activated with the new key.

use super::blobs::check_blob_policy;
use super::blobs::check_pcrs;
use super::evidence;
use super::evidence::PlatformOpts;
use super::measure::measure_self;
use super::seal::{add_sealed, SealSpec};
use super::session::Session;
use crate::attest::snp_requirement::SnpRequirement;
use crate::disk::luks::OpenOpts;
use crate::disk::luks::{Kdf, Volume};
use crate::disk::reencrypt;
use crate::formats::blob::Blob;
use crate::formats::key_origin::KeyOrigin;
use crate::formats::luks2::reencrypt::{percent, InProgress};
use crate::formats::{envelope, volume_key};
use crate::pcr::selfpcr::Measurements;
use crate::pcr::SELF_PCR;
use crate::secret::{random_key, Key32, SecretBytes, VolumeKey};
use crate::testhooks::checkpoint;
use crate::tpm::counter::Counter;
use crate::tpm::Tpm;
use crate::{Error, Result};
use log::info;
use std::path::Path;
use std::time::Instant;

/// The volume re-keying works on, and how (from the unlock arguments).
pub struct Target<'a> {
    pub device: &'a Path,
    pub luks: &'a OpenOpts,
    pub name: &'a str,
    pub dry_run: bool,
    pub cmdline: &'a str,
    pub platform: &'a PlatformOpts,
    pub require: Option<&'a SnpRequirement>,
    pub provision_key: Option<&'a SecretBytes>,
}

/// Bytes of the new volume key (XTS-AES-256, as the allow-list requires).
pub const KEY_LEN: usize = 64;

/// A re-keying set up before the lock: what [`finish`] needs after it.
pub struct Pending {
    secret: Key32,
    old_slot: u32,
    new_slot: u32,
    epoch: u64,
    srk_name: Vec<u8>,
}

impl Pending {
    /// The new key's keyslot.
    pub fn new_slot(&self) -> u32 {
        self.new_slot
    }
}

/// A fresh volume key: each 32 bytes from the kernel RNG XOR the TPM's.
///
/// Errors: those of the TPM and the kernel RNG.
pub fn fresh_key(tpm: &mut Tpm) -> Result<VolumeKey> {
    let mut v = Vec::with_capacity(KEY_LEN);
    for _ in 0..KEY_LEN / 32 {
        let k = random_key(Some(&tpm.random32()?))?;
        v.extend_from_slice(k.as_bytes());
    }
    Ok(VolumeKey::new(v))
}

/// Steps 1 and 2 on a first boot (PCR 15 measured and checked by the
/// caller): a new key, its sealed token and unbound keyslot, and the old
/// key's keyslot under the same secret. Returns the new key (whose
/// fingerprint the lock binds) and what [`finish`] needs.
///
/// Errors: those of sealing and of libcryptsetup.
pub fn enroll(
    vol: &mut Volume,
    tpm: &mut Tpm,
    spec: SealSpec,
    old_key: &VolumeKey,
) -> Result<(VolumeKey, u32, Pending)> {
    if old_key.as_bytes().len() != KEY_LEN {
        return Err(Error::Usage(format!(
            "{}: sealroot-rekey re-keys volumes with a {KEY_LEN}-byte key and no integrity",
            vol.path().display()
        )));
    }
    let new_key = fresh_key(tpm)?;
    tpm.ensure_counter_at(Counter::Rekey)?;
    // Read again in a session salted to the SRK the token will pin: an
    // answer forged on the way fails its HMAC.
    let srk = tpm.srk(true)?;
    let epoch = tpm.read_counter_authenticated(Counter::Rekey, &srk.name)?;
    let spec = SealSpec {
        key_origin: KeyOrigin::VmRekeyed,
        rekey_epoch: Some(epoch),
        ..spec
    };
    let added = add_sealed(vol, tpm, &spec, &new_key, None)?;
    checkpoint("rekey:new-keyslot");
    let old_slot = vol.free_keyslot()?;
    vol.add_keyslot(old_slot, old_key, added.secret.as_bytes(), Kdf::Pbkdf2Min)?;
    checkpoint("rekey:old-keyslot");
    info!(
        "re-keying: new volume key in keyslot {} (token {}), old key's keyslot {old_slot} for the re-encryption",
        added.keyslot,
        added.token.unwrap_or_default()
    );
    let token = added.token.unwrap_or_default();
    Ok((
        new_key,
        token,
        Pending {
            secret: added.secret,
            old_slot,
            new_slot: added.keyslot,
            epoch,
            srk_name: added.blob.srk_name.clone(),
        },
    ))
}

/// Steps 3 and 4 after the lock: start the re-encryption, run it, record
/// in the TPM that it finished, drop the old key's keyslots, activate with
/// the new key (not with `--dry-run`).
///
/// Errors: those of libcryptsetup and of the re-keying counter.
pub fn finish(
    vol: Volume,
    key: VolumeKey,
    p: Pending,
    args: &Target,
    session: &mut Session,
) -> Result<u32> {
    vol.start_reencrypt(p.secret.as_bytes(), p.old_slot, p.new_slot)?;
    checkpoint("rekey:started");
    run(args, p.secret.as_bytes(), (p.old_slot, p.new_slot))?;
    drop(p.secret);
    done(
        args,
        key,
        p.new_slot,
        (p.epoch, &p.srk_name),
        session,
        "first boot",
    )
}

/// Re-encrypt (or go on re-encrypting) with a progress report on the
/// console: percent, MiB/s, time left.
fn run(args: &Target, secret: &[u8], slots: (u32, u32)) -> Result<()> {
    let start = Instant::now();
    let mut first: Option<u64> = None;
    let mut last: Option<Instant> = None;
    let mut last_pct = u32::MAX;
    let stop_at = crate::testhooks::rekey_stop_at();
    let mut report = |done: u64, total: u64| -> bool {
        let from = *first.get_or_insert(done);
        let pct = percent(done, total);
        // Every whole percent (the harness picks its power cuts from these
        // lines), at most four a second.
        if pct != last_pct && (last.is_none_or(|l| l.elapsed().as_millis() >= 250) || done == total)
        {
            let secs = start.elapsed().as_secs_f64().max(1e-3);
            let rate = (done - from) as f64 / secs;
            let left = if rate > 0.0 {
                format!("{:.0} s", (total - done) as f64 / rate)
            } else {
                "?".into()
            };
            info!(
                "re-keying {}: {pct}% ({} of {} MiB), {:.1} MiB/s, {left} left",
                args.device.display(),
                done >> 20,
                total >> 20,
                rate / 1048576.0
            );
            last = Some(Instant::now());
            last_pct = pct;
        }
        stop_at.is_none_or(|s| done < s)
    };
    reencrypt::resume(
        args.device,
        args.luks.header.as_deref(),
        secret,
        slots,
        &mut report,
    )?;
    info!(
        "re-keying {}: done in {:.1} s",
        args.device.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// After the re-encryption: the header is ordinary again (checked); the
/// TPM records that this re-keying finished ([`close_epoch`]), before
/// anything of this VM's is written under the new key; drop every keyslot
/// left of the old key, then activate with the new key.
fn done(
    args: &Target,
    key: VolumeKey,
    slot: u32,
    epoch: (u64, &[u8]),
    session: &mut Session,
    what: &str,
) -> Result<u32> {
    let mut vol = Volume::open_with(args.device, args.luks)?;
    checkpoint("rekey:reencrypted");
    close_epoch(session.tpm()?, epoch.0, epoch.1, args.device)?;
    checkpoint("rekey:epoch-closed");
    sweep(&mut vol)?;
    if args.dry_run {
        info!("dry run: re-keyed, no mapping created");
    } else {
        vol.activate(args.name, &key, false)?;
    }
    info!(
        "re-keyed {} ({what}): the volume key is private to this VM; opened with keyslot {slot}",
        args.device.display()
    );
    Ok(slot)
}

/// Record in the TPM that the re-keying of epoch `epoch` finished: the
/// re-keying counter goes past it, so a header from before the end (in
/// re-encryption, which holds a keyslot of the image's key under the
/// re-keying secret) is never resumed again: resumed with its roles
/// swapped by the host, it would re-encrypt this VM's data to the image's
/// key (docs/first-boot.md#replayed-headers). Nothing happens when the
/// counter is past `epoch` already. The counter is read and incremented in
/// a session salted to the SRK named `srk_name` (the token's), so the
/// TPM's answers are authenticated.
///
/// Errors: [`Error::TpmIdentity`] when the counter is missing or below
/// `epoch` (another TPM, or one rolled back), or the SRK is not the
/// pinned one; those of NV_Read and NV_Increment.
pub fn close_epoch(tpm: &mut Tpm, epoch: u64, srk_name: &[u8], device: &Path) -> Result<()> {
    let now = tpm.read_counter_authenticated(Counter::Rekey, srk_name)?;
    if now < epoch {
        return Err(Error::TpmIdentity(format!(
            "{}: the TPM's re-keying counter ({now}) is below the re-keying token's epoch ({epoch}): another TPM, or a rolled-back one",
            device.display()
        )));
    }
    if now == epoch {
        let n = tpm.increment_counter_authenticated(Counter::Rekey, srk_name)?;
        info!(
            "re-keying of {} recorded as finished in the TPM (re-keying counter {n}): a header from before is never resumed",
            device.display()
        );
    }
    Ok(())
}

/// Destroy every keyslot bound to no segment: after re-encryption, the old
/// key's (the provisioning, recovery and re-encryption keyslots).
///
/// Errors: those of libcryptsetup.
pub fn sweep(vol: &mut Volume) -> Result<()> {
    for s in vol.unbound_keyslots() {
        vol.destroy_keyslot(s)?;
        info!("re-keying: destroyed keyslot {s} of the old volume key");
    }
    Ok(())
}

/// The sealroot re-keying token of a header in re-encryption.
fn rekey_token(st: &InProgress, args: &Target) -> Result<Blob> {
    st.tokens
        .iter()
        .filter_map(|t| Blob::from_value(t.clone(), "token").ok())
        .find(|b| {
            b.key_origin == KeyOrigin::VmRekeyed
                && b.volume_uuid.eq_ignore_ascii_case(&st.uuid)
                && st.new_keyslots.contains(&b.keyslot)
        })
        .ok_or_else(|| {
            Error::refused(
                args.device,
                "the LUKS2 header is in re-encryption but carries no sealroot re-keying token for the new key: not sealroot's re-keying, or its token was removed; nothing is resumed",
            )
        })
}

/// Unseal the re-keying token's secret: measure this boot, compare the
/// PCRs, unseal, open the envelope. Signed-policy and PIN tokens are not
/// resumed (first-boot re-keying writes neither).
fn unseal_secret(blob: &Blob, args: &Target, session: &mut Session) -> Result<Key32> {
    let origin = "re-keying token";
    if blob.authorize.is_some() || blob.pin {
        return Err(Error::blob(
            origin,
            "a re-keying token is never signed-policy or PIN",
        ));
    }
    check_blob_policy(blob, origin)?;
    let now = Measurements::new(args.cmdline, &blob.volume_uuid);
    session.check_deadline("connecting to the TPM")?;
    let tpm = session.tpm()?;
    let mut current = tpm.pcr_read(&blob.pcrs)?;
    let at = blob
        .pcrs
        .iter()
        .position(|&p| p == SELF_PCR)
        .expect("self PCR");
    current[at] = measure_self(tpm, &now, current[at])?;
    evidence::check_blob(tpm, args.platform, blob, args.require)?;
    check_pcrs(blob, &now, &blob.pcrs, &current)?;
    session.check_deadline("the unseal")?;
    let kek = session.tpm()?.unseal(blob.sealed_object(), None, None)?;
    let secret = envelope::open(&kek, &blob.nonce, &blob.ciphertext, &blob.binding())
        .ok_or_else(|| Error::blob(origin, "envelope does not authenticate"))?;
    drop(kek);
    Ok(secret)
}

/// A later boot of a volume whose re-keying was cut: `None` when the
/// header is not in re-encryption (after [`discard_unstarted`]); else
/// unseal the new key's secret through the TPM, check the new key's
/// fingerprint, lock PCR 15 with it, resume, sweep, activate.
///
/// Errors: [`Error::VolumeRefused`] for a header in re-encryption outside
/// the allow-list or without a re-keying token; those of the unseal, the
/// lock and libcryptsetup.
pub fn resume_if_interrupted(args: &Target, session: &mut Session) -> Result<Option<u32>> {
    let hdr = args.luks.header.as_deref();
    // The header in re-encryption is read from its newest valid copy
    // without writing; a torn copy is repaired only once the TPM allowed
    // the resume (a replayed header is refused with nothing written).
    let Some(st) = reencrypt::in_progress(args.device, hdr)? else {
        reencrypt::repair_torn(args.device, hdr)?;
        discard_unstarted(args)?;
        return Ok(None);
    };
    info!(
        "{}: re-keying was interrupted at {}%; resuming",
        args.device.display(),
        st.percent()
    );
    let blob = rekey_token(&st, args)?;
    let secret = unseal_secret(&blob, args, session)?;
    // The envelope authenticated the epoch; the TPM's counter says
    // whether this re-keying already finished on this VM.
    let epoch = blob
        .rekey_epoch
        .ok_or_else(|| Error::blob("re-keying token", "no rekey_epoch"))?;
    let now = session
        .tpm()?
        .read_counter_authenticated(Counter::Rekey, &blob.srk_name)?;
    if now != epoch {
        return Err(Error::refused(
            args.device,
            if now > epoch {
                format!(
                    "the LUKS2 header says re-keying is {}% done, but this VM's TPM recorded it finished (re-keying counter {now}, the token's epoch {epoch}): the host served a header from before the end; nothing is resumed",
                    st.percent()
                )
            } else {
                format!(
                    "the TPM's re-keying counter ({now}) is below the re-keying token's epoch ({epoch}): another TPM, or a rolled-back one; nothing is resumed"
                )
            },
        ));
    }
    reencrypt::repair_torn(args.device, hdr)?;
    if !st.pbkdf2_keyslots.contains(&blob.keyslot) {
        return Err(Error::refused(
            args.device,
            format!(
                "keyslot {} of the re-keying token is not PBKDF2 of at most {} iterations, as sealroot writes it: the header was rewritten",
                blob.keyslot,
                crate::formats::luks2::allow::MAX_SEALED_KEYSLOT_ITERATIONS
            ),
        ));
    }
    let key = reencrypt::key_in_slot(args.device, hdr, blob.keyslot, secret.as_bytes())?;
    let fp = volume_key::fingerprint(key.as_bytes());
    if !blob
        .fingerprint
        .is_some_and(|f| volume_key::matches(&f, &fp))
    {
        return Err(Error::refused(
            args.device,
            format!(
                "keyslot {} does not hold the key the re-keying token was sealed for",
                blob.keyslot
            ),
        ));
    }
    let old = st
        .pbkdf2_keyslots
        .iter()
        .copied()
        .filter(|s| !st.new_keyslots.contains(s))
        .find(|&s| reencrypt::key_in_slot(args.device, hdr, s, secret.as_bytes()).is_ok())
        .ok_or_else(|| {
            Error::refused(
                args.device,
                "no keyslot of the old key opens with the re-keying secret",
            )
        })?;
    session.check_deadline("the lock")?;
    session.lock_opened(&[fp])?;
    checkpoint("unlock:locked");
    run(args, secret.as_bytes(), (old, blob.keyslot))?;
    drop(secret);
    done(
        args,
        key,
        blob.keyslot,
        (epoch, &blob.srk_name),
        session,
        "resumed",
    )
    .map(Some)
}

/// A first boot cut before its re-encryption started leaves a re-keying
/// token whose keyslot is unbound, in a header not in re-encryption. With
/// the provisioning key (still opening its keyslot), drop that token, its
/// keyslot and the unclaimed PBKDF2 keyslots the provisioning key does not
/// open (the old key's re-encryption keyslot): the first boot then starts
/// again. Without it, nothing is touched.
///
/// Errors: those of libcryptsetup.
pub fn discard_unstarted(args: &Target) -> Result<()> {
    let Some(prov) = args.provision_key else {
        return Ok(());
    };
    let mut vol = Volume::open_with(args.device, args.luks)?;
    let unbound = vol.unbound_keyslots();
    let mut stale = vec![];
    for id in vol.sealroot_tokens()? {
        if let Ok(b) = Blob::from_value(vol.token_json(id)?, "token") {
            if b.key_origin == KeyOrigin::VmRekeyed && unbound.contains(&b.keyslot) {
                stale.push((id, b.keyslot));
            }
        }
    }
    if stale.is_empty() || !opens(&mut vol, prov) {
        return Ok(());
    }
    for (id, slot) in &stale {
        vol.destroy_keyslot(*slot)?;
        vol.remove_token(*id)?;
    }
    let claimed = vol.claimed_keyslots()?;
    for s in vol.active_keyslots() {
        if !claimed.contains(&s)
            && vol.keyslot_is_pbkdf2(s)
            && vol.check_key(Some(s), prov.as_bytes()).is_err()
        {
            vol.destroy_keyslot(s)?;
        }
    }
    info!(
        "{}: a first-boot re-keying cut before it started was discarded; starting again",
        args.device.display()
    );
    Ok(())
}

fn opens(vol: &mut Volume, key: &SecretBytes) -> bool {
    vol.check_key(None, key.as_bytes()).is_ok()
}
