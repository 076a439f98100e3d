//! `systemd-tpm2` tokens (systemd 252's `systemd-cryptenroll`): find and
//! parse them, unseal one and derive the volume key through its keyslot
//! (shared by `unlock`, `boot` and `adopt`), and the unlock path for a
//! volume that has no sealroot token (docs/systemd.md).
//!
//! PCR 15: the token is unsealed at the PCR values the boot reached,
//! before sealroot measures the command line and configuration into PCR
//! 15, so a token whose policy covers PCR 15 meets the value systemd
//! expects (zero, early in a boot). The lock follows the unseal as on the
//! sealroot path: a token whose policy covers PCR 15 cannot be unsealed
//! again in this boot; one whose policy does not cover it can.

use super::evidence::{self, PlatformOpts};
use super::inputs::PinSource;
use super::measure::measure_self;
use super::session::Session;
use crate::attest::snp_requirement::SnpRequirement;
use crate::disk::luks::Volume;
use crate::formats::luks2::Kdf;
use crate::formats::systemd_token::{self, SystemdToken, MAX_SIGNATURE_JSON, TOKEN_TYPE};
use crate::formats::volume_key;
use crate::pcr::selfpcr::Measurements;
use crate::pcr::SELF_PCR;
use crate::secret::{Key32, VolumeKey};
use crate::tpm::systemd::{SystemdAuth, SystemdRefusal};
use crate::tpm::Tpm;
use crate::{Error, Result};
use base64::Engine as _;
use log::{info, warn};
use std::path::{Path, PathBuf};
use std::time::Duration;
use zeroize::Zeroizing;

/// The most PBKDF2 iterations a systemd-tpm2 token's keyslot may ask for:
/// systemd-cryptenroll writes the minimum (1000; the secret is 256 random
/// bits), so more means the header was rewritten to stall the boot.
pub const MAX_KEYSLOT_ITERATIONS: u32 = 10_000;

/// Where systemd 252 looks for `tpm2-pcr-signature.json`, in its order
/// (`tpm2_load_pcr_signature`: the "systemd" configuration directories).
pub const SIGNATURE_PATHS: [&str; 4] = [
    "/etc/systemd/tpm2-pcr-signature.json",
    "/run/systemd/tpm2-pcr-signature.json",
    "/usr/local/lib/systemd/tpm2-pcr-signature.json",
    "/usr/lib/systemd/tpm2-pcr-signature.json",
];

/// A `systemd-tpm2` token of the volume, parsed or not.
pub struct Found {
    pub id: u32,
    pub origin: String,
    /// The token, or why it does not parse.
    pub token: std::result::Result<SystemdToken, String>,
}

/// Every `systemd-tpm2` token of the volume, in id order.
///
/// Errors: libcryptsetup's, listing the tokens; a token that cannot be
/// read or does not parse is returned with the reason in its [`Found`].
pub fn tokens(vol: &mut Volume) -> Result<Vec<Found>> {
    let mut out = Vec::new();
    for id in vol.tokens_of_type(TOKEN_TYPE)? {
        let origin = format!("systemd-tpm2 token {id}");
        let token = vol
            .token_json(id)
            .map_err(|e| e.to_string())
            .and_then(|v| systemd_token::parse(&v));
        out.push(Found { id, origin, token });
    }
    Ok(out)
}

/// What unsealing a systemd token needs from the command line.
pub struct Inputs<'a> {
    pub pin: &'a PinSource,
    /// The signature JSON (`--tpm2-signature`), else [`SIGNATURE_PATHS`].
    pub signature: Option<&'a Path>,
    /// How long a PIN prompt may wait.
    pub prompt_timeout: Option<Duration>,
}

/// Check the token's keyslot, unseal the token's secret and derive the
/// volume key through the keyslot with it (base64 of the secret is the
/// passphrase, as systemd-cryptsetup uses it). Nothing is locked here.
///
/// Errors: [`Error::Luks`] (keyslot missing; the secret does not open it),
/// [`Error::VolumeRefused`] (the keyslot is not a cheap PBKDF2 one),
/// [`Error::SystemdPolicy`] (PCRs), [`Error::PolicyRefused`] (no or a
/// refused signature), [`Error::PinOrLockout`], [`Error::BlobInvalid`],
/// and the TPM's.
pub fn volume_key(
    vol: &mut Volume,
    tpm: &mut Tpm,
    found: &Found,
    token: &SystemdToken,
    inputs: &Inputs,
) -> Result<VolumeKey> {
    check_keyslot(vol, &found.origin, token.keyslot)?;
    let pin = match token.pin {
        true => Some(pin_auth(
            &inputs
                .pin
                .get("sealroot: systemd-tpm2 PIN: ", inputs.prompt_timeout)?,
        )),
        false => None,
    };
    let signature = match token.pubkey {
        Some(_) => read_signature(inputs.signature)?,
        None => None,
    };
    let auth = SystemdAuth {
        pin: pin.as_ref(),
        signature: signature.as_ref().map(|(b, o)| (b.as_slice(), o.as_str())),
    };
    let secret = match tpm.unseal_systemd(token, auth) {
        Ok(s) => s,
        Err(r) => return Err(explain(tpm, found, token, r)),
    };
    drop(pin);
    let passphrase = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .encode(secret.as_bytes())
            .into_bytes(),
    );
    crate::testhooks::reveal("systemd-secret", secret.as_bytes());
    drop(secret);
    let (_, key) = vol.volume_key(Some(token.keyslot), &passphrase)?;
    drop(passphrase);
    crate::testhooks::reveal("volume-key", key.as_bytes());
    Ok(key)
}

/// systemd 252 hashes the PIN with SHA-256, unsalted, into the object's
/// authValue.
fn pin_auth(pin: &crate::secret::SecretBytes) -> Key32 {
    use sha2::{Digest as _, Sha256};
    let mut out: [u8; 32] = Sha256::digest(pin.as_bytes()).into();
    let k = Key32::from_bytes(out);
    zeroize::Zeroize::zeroize(&mut out);
    k
}

/// Turn a refusal into the error the user reads.
fn explain(tpm: &mut Tpm, found: &Found, token: &SystemdToken, r: SystemdRefusal) -> Error {
    match r {
        SystemdRefusal::Other(e) => e,
        SystemdRefusal::NoSignature(m) => Error::PolicyRefused(format!(
            "{}: no PCR signature for this boot: {m}",
            found.origin
        )),
        SystemdRefusal::PolicyDigest { current } => {
            let pcrs = SystemdToken::pcr_list(&token.pcrs);
            let mut m = format!(
                "{}: PCR policy mismatch (sha256 bank): the policy digest this boot gives, {}, is not the token's {}: one or more of PCRs {pcrs} differ from their values at enrollment (systemd 252 tokens do not record the values, so sealroot cannot tell which)",
                found.origin,
                &hex::encode(current)[..16],
                &hex::encode(token.policy_hash)[..16],
            );
            if token.pcrs.contains(&SELF_PCR) && tpm.connected() {
                if let Ok(v) = tpm.pcr_read(&[SELF_PCR]) {
                    if v[0] != [0; 32] {
                        m.push_str(&format!(
                            "; PCR {SELF_PCR} is in the policy and is not zero: it was extended earlier in this boot (sealroot's lock after an unlock, or another tool)"
                        ));
                    }
                }
            }
            Error::SystemdPolicy(m)
        }
    }
}

/// The keyslot's checks before any unseal: it exists and is a cheap
/// PBKDF2 keyslot (systemd-cryptenroll writes PBKDF2 with the minimum
/// cost; anything else means the header was rewritten to stall the boot).
fn check_keyslot(vol: &mut Volume, origin: &str, keyslot: u32) -> Result<()> {
    if !vol.keyslot_active(keyslot) {
        return Err(Error::luks(
            vol.path(),
            format!("{origin} refers to keyslot {keyslot}, which does not exist"),
        ));
    }
    match vol.header().keyslot(keyslot).map(|k| &k.kdf) {
        Some(Kdf::Pbkdf2 { iterations, .. }) if *iterations <= MAX_KEYSLOT_ITERATIONS => {
            Ok(())
        }
        other => Err(Error::refused(
            vol.path(),
            format!(
                "LUKS2 header: keyslots.{keyslot}.kdf = {}: {origin} names it, and systemd-cryptenroll's TPM2 keyslots use pbkdf2 with at most {MAX_KEYSLOT_ITERATIONS} iterations",
                other.map_or("none".to_string(), |k| format!("{k:?}")),
            ),
        )),
    }
}

/// The signature JSON: `explicit`, else the first of [`SIGNATURE_PATHS`]
/// that exists. `None` when none exists. At most
/// [`MAX_SIGNATURE_JSON`] bytes are read, from a regular file.
///
/// Errors: [`Error::Io`] (unreadable, not a regular file, too large).
pub fn read_signature(explicit: Option<&Path>) -> Result<Option<(Vec<u8>, String)>> {
    use std::io::Read;
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => match SIGNATURE_PATHS
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
        {
            Some(p) => p,
            None => return Ok(None),
        },
    };
    let io = |e| Error::io(&path, e);
    let f = std::fs::File::open(&path).map_err(io)?;
    if !f.metadata().map_err(io)?.is_file() {
        return Err(io(std::io::Error::other("not a regular file")));
    }
    let mut bytes = Vec::new();
    f.take(MAX_SIGNATURE_JSON as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() > MAX_SIGNATURE_JSON {
        return Err(io(std::io::Error::other(format!(
            "larger than {MAX_SIGNATURE_JSON} bytes"
        ))));
    }
    Ok(Some((bytes, path.display().to_string())))
}

/// What the unlock path passes to [`unlock`].
pub struct Request<'a> {
    pub device: &'a Path,
    /// Mapping name: /dev/mapper/NAME.
    pub name: &'a str,
    /// Check the key against its keyslot; create no mapping.
    pub dry_run: bool,
    /// This boot's kernel command line (measured into PCR 15 after the unseal).
    pub cmdline: &'a str,
    pub pin: &'a PinSource,
    /// `--tpm2-signature`.
    pub signature: Option<&'a Path>,
    /// A platform requirement from the command line (`--require-snp`),
    /// checked before any token is unsealed, and where to find evidence.
    pub require: Option<&'a SnpRequirement>,
    pub platform: &'a PlatformOpts,
}

/// Unlock a volume that has no sealroot token through its `systemd-tpm2`
/// tokens (tried in id order): unseal at this boot's PCRs, then measure
/// PCR 15, lock it with the opened volume's event, and activate (or stop
/// there with `dry_run`). Returns the keyslot and the token that opened,
/// `None` when the volume has no such token.
///
/// Errors: [`Error::Platform`] (the command line's platform requirement
/// fails; nothing is unsealed), those of [`volume_key()`] (the first
/// token's, when several fail), [`Error::Timeout`], and activation's. The session locks on every way out.
pub fn unlock(
    vol: &mut Volume,
    args: &Request,
    session: &mut Session,
) -> Result<Option<(u32, String)>> {
    let found = tokens(vol)?;
    if found.is_empty() {
        return Ok(None);
    }
    let uuid = vol.uuid()?;
    session.check_deadline("connecting to the TPM")?;
    let inputs = Inputs {
        pin: args.pin,
        signature: args.signature,
        prompt_timeout: Some(session.remaining()),
    };
    // Nothing is unsealed on a platform that fails the command line's
    // requirement (systemd tokens carry none of their own).
    if let Some(p) = args.require {
        evidence::check(session.tpm()?, args.platform, &[p], &[0; 32])?;
    }
    let mut first_err = None;
    let mut opened = None;
    for f in &found {
        let token = match &f.token {
            Ok(t) => t,
            Err(e) => {
                warn!("{}: {e}", f.origin);
                first_err.get_or_insert(Error::blob(&f.origin, e.clone()));
                continue;
            }
        };
        session.check_deadline("the unseal")?;
        match volume_key(vol, session.tpm()?, f, token, &inputs) {
            Ok(key) => {
                opened = Some((f, token, key));
                break;
            }
            // No TPM, time is up, or a PIN failed: a PIN failure costs a
            // dictionary-attack try, and the host could have copied the
            // token under several ids to multiply one wrong PIN's cost.
            Err(e @ (Error::NoTpm { .. } | Error::Timeout(_) | Error::PinOrLockout(_))) => {
                return Err(e)
            }
            Err(e) => {
                if found.len() > 1 {
                    warn!("{e}");
                }
                first_err.get_or_insert(e);
            }
        }
    }
    let Some((f, token, key)) = opened else {
        return Err(first_err.expect("at least one token"));
    };
    // The unseal is done: now PCR 15 gets this boot's measurements, then
    // the lock.
    let tpm = session.tpm()?;
    let now = Measurements::new(args.cmdline, &uuid);
    let current = tpm.pcr_read(&[SELF_PCR])?[0];
    measure_self(tpm, &now, current)?;
    session.check_deadline("the lock")?;
    session.lock_opened(&[volume_key::fingerprint(key.as_bytes())])?;
    if token.pubkey.is_none()
        && !token
            .all_pcrs()
            .iter()
            .any(|p| super::bootset::BOOT_INPUT_PCRS.contains(p))
    {
        warn!(
            "{}: its PCRs {} bind neither the initrd nor the kernel command line (PCR 9, or 11/12 for a UKI): an initrd of the host's could unseal it (docs/systemd.md)",
            f.origin,
            SystemdToken::pcr_list(&token.all_pcrs())
        );
    }
    if !token.covers(SELF_PCR) {
        warn!(
            "{}: its policy does not cover PCR {SELF_PCR}, so the lock does not close it: it can be unsealed again after this boot while PCRs {} keep their values (docs/systemd.md)",
            f.origin,
            SystemdToken::pcr_list(&token.all_pcrs())
        );
    }
    if args.dry_run {
        info!(
            "dry run: {} opens keyslot {} of {} (no mapping created)",
            f.origin,
            token.keyslot,
            args.device.display()
        );
    } else {
        vol.activate(args.name, &key, false)?;
        info!(
            "unlocked {} as /dev/mapper/{} with keyslot {} ({})",
            args.device.display(),
            args.name,
            token.keyslot,
            f.origin
        );
    }
    Ok(Some((token.keyslot, f.origin.clone())))
}
