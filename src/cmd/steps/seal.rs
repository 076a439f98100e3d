//! Seal a fresh secret and add its keyslot and token (or blob file), and
//! add a recovery keyslot: enrollment, first boot and reseal.
//!
//! Crash safety (token mode): the token is written first, unassigned; then
//! the keyslot; then the token is assigned to it. An interruption leaves at
//! worst a token whose keyslot does not exist, which `status` reports and
//! `cleanup` removes; never a keyslot nobody can identify.

use super::inputs::pin_auth;
use crate::attest::snp_requirement::SnpRequirement;
use crate::attest::tdx_requirement::TdxRequirement;
use crate::disk::luks::{Kdf, Volume};
use crate::formats::blob::{platform_digest, Blob, FORMAT_VERSION};
use crate::formats::key_origin::KeyOrigin;
use crate::formats::{envelope, volume_key};
use crate::pcr::explain::ExpectedEvent;
use crate::pcr::selfpcr::Measurements;
use crate::pcr::signer::PublicKey;
use crate::pcr::{self, policy};
use crate::secret::{random_bytes, random_key, Key32, RecoveryKey, SecretBytes, VolumeKey};
use crate::sys::files::write_atomic;
use crate::testhooks::checkpoint;
use crate::tpm::Tpm;
use crate::{Error, Result};
use log::info;
use std::path::Path;

/// What to seal to.
pub struct SealSpec<'a> {
    /// Firmware PCRs (the self PCR is added automatically).
    pub pcrs: &'a [u32],
    /// The boot-time inputs of the self PCR.
    pub measurements: Measurements,
    pub pin: Option<&'a SecretBytes>,
    /// Platform requirement to store in the blob (and bind the envelope to).
    pub platform: Option<&'a SnpRequirement>,
    /// TDX requirement to store instead (docs/platform.md#tdx).
    pub tdx: Option<&'a TdxRequirement>,
    /// Signed-policy mode: trust PCR states signed by this key; `pcrs` is
    /// then ignored (the signed policies name their PCRs).
    pub authorize: Option<&'a PublicKey>,
    /// Event-log events behind the firmware PCR values (explanations only).
    pub events: Vec<ExpectedEvent>,
    /// Seal to firmware PCRs even when they were never extended (all zero).
    pub allow_zero_pcrs: bool,
    /// Where the volume key comes from (recorded in the token, bound into
    /// the envelope).
    pub key_origin: KeyOrigin,
    /// A re-keying token's epoch (with [`KeyOrigin::VmRekeyed`] only).
    pub rekey_epoch: Option<u64>,
}

/// A freshly added TPM keyslot.
pub struct Added {
    pub keyslot: u32,
    pub token: Option<u32>,
    pub blob: Blob,
    pub secret: Key32,
}

/// The firmware PCRs of `all` (every PCR but sealroot's own) and their
/// values now.
///
/// Errors: those of PCR_Read.
fn firmware_values(tpm: &mut Tpm, all: &[u32]) -> Result<(Vec<u32>, Vec<pcr::Digest>)> {
    let firmware: Vec<u32> = all
        .iter()
        .copied()
        .filter(|&p| p != pcr::SELF_PCR)
        .collect();
    let values = if firmware.is_empty() {
        vec![]
    } else {
        tpm.pcr_read(&firmware)?
    };
    Ok((firmware, values))
}

/// Create a secret, seal it, and add its keyslot (holding `key`, the
/// volume key, already checked) and token (or blob file). The token binds
/// the volume key's fingerprint. The PCRs are read before the SRK is
/// created, so a TPM that cannot serve them keeps nothing. A key of origin
/// [`KeyOrigin::VmRekeyed`] is not the volume's yet: its keyslot is added
/// unbound, to be the target of re-encryption ([`super::rekey`]), and it
/// is only ever wrapped by the sealed secret.
///
/// Errors: [`Error::Usage`] naming a firmware PCR that is all zero (unless
/// allowed); [`Error::PcrBank`] when the TPM has no sha256 bank for a PCR;
/// those of the TPM and of libcryptsetup.
pub fn add_sealed(
    vol: &mut Volume,
    tpm: &mut Tpm,
    spec: &SealSpec,
    key: &VolumeKey,
    blob_file: Option<&Path>,
) -> Result<Added> {
    let uuid = vol.uuid()?;
    let all = if spec.authorize.is_some() {
        vec![pcr::SELF_PCR]
    } else {
        pcr::with_self(spec.pcrs)
    };
    let (firmware, fw_values) = firmware_values(tpm, &all)?;
    if !spec.allow_zero_pcrs {
        refuse_zero_pcrs(&firmware, &fw_values)?;
    }
    let srk = tpm.srk(true)?;
    let values: Vec<pcr::Digest> = all
        .iter()
        .map(|&p| {
            if p == pcr::SELF_PCR {
                spec.measurements.expected()
            } else {
                fw_values[firmware.iter().position(|&f| f == p).expect("present")]
            }
        })
        .collect();
    let start = match spec.authorize {
        Some(key) => {
            let counter = tpm.ensure_counter()?;
            info!(
                "signed-policy mode: key name {}, revocation counter at {counter} (sign policies with --version {counter} or higher)",
                hex::encode(key.name())
            );
            policy::authorized(&key.name())
        }
        None => [0; 32],
    };
    let policy_digest = policy::compute_from(&start, &all, &values, spec.pin.is_some());
    let secret = random_key(Some(&tpm.random32()?))?;
    let kek = random_key(Some(&tpm.random32()?))?;
    let keyslot = vol.free_keyslot()?;
    vol.ensure_room(1, key.as_bytes().len())?;
    let nonce = random_bytes::<{ envelope::NONCE_LEN }>()?;
    let fingerprint = volume_key::fingerprint(key.as_bytes());
    let binding = envelope::Binding {
        version: FORMAT_VERSION,
        volume_uuid: &uuid,
        policy_digest: &policy_digest,
        keyslot,
        platform: platform_digest(spec.platform, spec.tdx),
        fingerprint: Some(fingerprint),
        key_origin: spec.key_origin.token_field(),
        rekey_epoch: spec.rekey_epoch,
    };
    let ciphertext = envelope::seal(&kek, &nonce, &secret, &binding);
    let auth = spec.pin.map(pin_auth);
    let (tpm_public, tpm_private) = tpm.seal(&srk, &policy_digest, &kek, auth.as_ref())?;
    crate::testhooks::reveal("enroll-kek", kek.as_bytes());
    crate::testhooks::reveal("enroll-secret", secret.as_bytes());
    drop(kek);
    let events: Vec<ExpectedEvent> = spec
        .events
        .iter()
        .filter(|e| all.contains(&e.pcr))
        .cloned()
        .collect();
    let mut blob = Blob {
        keyslot,
        assigned: false,
        volume_uuid: uuid,
        pcrs: all,
        values,
        self_measurements: spec.measurements,
        policy_digest,
        srk_name: srk.name.clone(),
        srk_public: Some(srk.public.clone()),
        tpm_public,
        tpm_private,
        pin: spec.pin.is_some(),
        nonce,
        ciphertext,
        platform: spec.platform.cloned(),
        tdx: spec.tdx.cloned(),
        authorize: spec.authorize.cloned(),
        events,
        fingerprint: Some(fingerprint),
        key_origin: spec.key_origin,
        rekey_epoch: spec.rekey_epoch,
    };
    checkpoint("enroll:sealed");
    let token = match blob_file {
        None => {
            let id = vol.add_token(&blob.to_value())?;
            checkpoint("enroll:token-written");
            if spec.key_origin == KeyOrigin::VmRekeyed {
                vol.add_unbound_keyslot(keyslot, key, secret.as_bytes())?;
            } else {
                vol.add_keyslot(keyslot, key, secret.as_bytes(), Kdf::Pbkdf2Min)?;
            }
            checkpoint("enroll:keyslot-added");
            blob.assigned = true;
            vol.replace_token(id, &blob.to_value())?;
            checkpoint("enroll:token-assigned");
            Some(id)
        }
        Some(f) => {
            vol.add_keyslot(keyslot, key, secret.as_bytes(), Kdf::Pbkdf2Min)?;
            checkpoint("enroll:keyslot-added");
            blob.assigned = true;
            write_atomic(f, blob.to_json_pretty().as_bytes())?;
            checkpoint("enroll:blob-written");
            None
        }
    };
    info!(
        "sealed keyslot {keyslot} to PCRs {} (sha256){}{}{}",
        blob.pcrs
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(","),
        if blob.pin { " with a PIN" } else { "" },
        if blob.platform.is_some() {
            ", SEV-SNP required"
        } else if blob.tdx.is_some() {
            ", TDX required"
        } else {
            ""
        },
        match token {
            Some(t) => format!(", token {t}"),
            None => format!(", blob file {}", blob_file.expect("file mode").display()),
        }
    );
    Ok(Added {
        keyslot,
        token,
        blob,
        secret,
    })
}

/// Refuse firmware PCRs whose sha256 value is all zero: never extended,
/// so sealing to them binds nothing (a bare TPM, or firmware that does not
/// measure them).
fn refuse_zero_pcrs(pcrs: &[u32], values: &[pcr::Digest]) -> Result<()> {
    let zero: Vec<String> = pcrs
        .iter()
        .zip(values)
        .filter(|(_, v)| **v == [0; 32])
        .map(|(p, _)| p.to_string())
        .collect();
    if zero.is_empty() {
        return Ok(());
    }
    Err(Error::Usage(format!(
        "PCR {} {} all zero in the sha256 bank (never extended in this boot): sealing to {} would bind nothing. Choose measured PCRs (--pcrs), or pass --allow-zero-pcrs (tests on a bare TPM)",
        zero.join(","),
        if zero.len() == 1 { "is" } else { "are" },
        if zero.len() == 1 { "it" } else { "them" },
    )))
}

/// Add an argon2id keyslot for a fresh recovery key, holding `key`.
pub fn add_recovery(vol: &mut Volume, key: &VolumeKey) -> Result<(RecoveryKey, u32)> {
    let rk = RecoveryKey::generate()?;
    let slot = vol.free_keyslot()?;
    vol.add_keyslot(slot, key, rk.as_str().as_bytes(), Kdf::Argon2id)?;
    info!("added recovery keyslot {slot} (argon2id)");
    Ok((rk, slot))
}
