//! `sealroot policy sign|install|revoke|counter`: signed PCR policies
//! (docs/signed-policy.md).

use super::steps::prediction::{predicted_boot, Replacement};
use super::steps::TpmOpts;
use crate::disk::luks::Volume;
use crate::formats::blob::Blob;
use crate::formats::signed_policy::{parse_values, SignedPolicy, SIGNED_TYPE};
use crate::pcr::explain::ExpectedEvent;
use crate::pcr::signer::{PrivateKey, PublicKey};
use crate::pcr::{Digest, SELF_PCR};
use crate::sys::files::write_atomic;
use crate::{Error, Result};
use log::info;
use std::path::{Path, PathBuf};

/// Inputs of `sealroot policy sign`.
pub struct SignArgs {
    pub key: PathBuf,
    pub pcrs: Vec<u32>,
    /// `--values FILE`.
    pub values: Option<PathBuf>,
    /// `--from-eventlog LOG` (with the predict substitutions below).
    pub from_eventlog: Option<PathBuf>,
    pub initrd: Option<PathBuf>,
    pub kernel: Option<PathBuf>,
    pub qemu_direct_boot_mib: Option<u64>,
    pub version: u64,
    pub description: String,
    pub out: PathBuf,
}

fn usage(e: impl std::fmt::Display) -> Error {
    Error::Usage(e.to_string())
}

pub fn sign(args: &SignArgs) -> Result<SignedPolicy> {
    let pem = std::fs::read_to_string(&args.key).map_err(|e| Error::io(&args.key, e))?;
    let key =
        PrivateKey::from_pem(&pem).map_err(|e| usage(format!("{}: {e}", args.key.display())))?;
    if args.pcrs.contains(&SELF_PCR) {
        return Err(usage(format!(
            "PCR {} is sealroot's own PCR, bound at enrollment; leave it out of signed policies",
            SELF_PCR
        )));
    }
    let (values, events): (Vec<Digest>, Vec<ExpectedEvent>) =
        match (&args.values, &args.from_eventlog) {
            (Some(f), None) => {
                let text = std::fs::read_to_string(f).map_err(|e| Error::io(f, e))?;
                let given =
                    parse_values(&text).map_err(|e| usage(format!("{}: {e}", f.display())))?;
                let vals = args
                    .pcrs
                    .iter()
                    .map(|p| {
                        given
                            .iter()
                            .find(|(i, _)| i == p)
                            .map(|(_, d)| *d)
                            .ok_or_else(|| usage(format!("{}: no value for PCR {p}", f.display())))
                    })
                    .collect::<Result<Vec<_>>>()?;
                (vals, vec![])
            }
            (None, Some(log)) => {
                let pred = predicted_boot(&Replacement {
                    eventlog: log.clone(),
                    initrd: args.initrd.clone(),
                    kernel: args.kernel.clone(),
                    qemu_direct_boot_mib: args.qemu_direct_boot_mib,
                })?;
                let vals = args
                    .pcrs
                    .iter()
                    .map(|&p| {
                        if pred.touched[p as usize] {
                            Ok(pred.values[p as usize])
                        } else {
                            Err(usage(format!(
                                "{}: the log never extends PCR {p}; sign only measured PCRs",
                                log.display()
                            )))
                        }
                    })
                    .collect::<Result<Vec<_>>>()?;
                (vals, pred.events)
            }
            _ => {
                return Err(usage(
                    "policy sign needs exactly one of --values FILE and --from-eventlog LOG",
                ))
            }
        };
    let events = events
        .into_iter()
        .filter(|e| args.pcrs.contains(&e.pcr))
        .collect();
    let p = SignedPolicy::sign(
        &key,
        &args.pcrs,
        &values,
        args.version,
        &args.description,
        events,
    )
    .map_err(Error::Internal)?;
    write_atomic(&args.out, p.to_json_pretty().as_bytes())?;
    info!(
        "signed PCRs {} at version {} with key {} into {}",
        args.pcrs
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(","),
        args.version,
        hex::encode(p.key_name.clone()),
        args.out.display()
    );
    Ok(p)
}

/// The signing key of the volume's signed-policy tokens (one key per volume).
fn volume_key(vol: &mut Volume) -> Result<Option<PublicKey>> {
    let mut key = None;
    for id in vol.sealroot_tokens()? {
        if let Ok(b) = vol
            .token_json(id)
            .and_then(|v| Blob::from_value(v, &format!("token {id}")))
        {
            if b.authorize.is_some() {
                key = b.authorize;
            }
        }
    }
    Ok(key)
}

/// `sealroot policy install`: store a signed policy as a LUKS2 token (checked
/// against the volume's key first). With `replace`, the policy tokens of the
/// same or a lower version are removed once the new one is written; a newer
/// one is never removed (it may be the only one the counter still allows).
pub fn install(device: &Path, file: &Path, replace: bool) -> Result<u32> {
    let bytes = std::fs::read(file).map_err(|e| Error::io(file, e))?;
    let p =
        SignedPolicy::from_json(&bytes).map_err(|e| usage(format!("{}: {e}", file.display())))?;
    let mut vol = Volume::open(device)?;
    let key = volume_key(&mut vol)?.ok_or_else(|| {
        usage(format!(
            "{} has no signed-policy token (enroll it with --policy-key first)",
            device.display()
        ))
    })?;
    p.verify(&key)
        .map_err(|e| usage(format!("{}: {e}", file.display())))?;
    let old = vol.tokens_of_type(SIGNED_TYPE)?;
    let id = vol.add_token(&p.to_token())?;
    if replace {
        for t in old {
            let version = vol
                .token_json(t)
                .ok()
                .and_then(|v| SignedPolicy::from_value(v).ok())
                .map(|o| o.version);
            match version {
                Some(v) if v > p.version => info!(
                    "kept policy token {t}: its version {v} is newer than {}",
                    p.version
                ),
                _ => vol.remove_token(t)?,
            }
        }
    }
    info!(
        "installed signed policy version {} as token {id} of {}",
        p.version,
        device.display()
    );
    Ok(id)
}

/// `sealroot policy revoke --below N`: advance the TPM's revocation counter
/// to N, so every policy signed with a lower version stops working. Returns
/// the counter's new value.
/// A management command on a TPM without the counter is a usage error.
fn no_counter(e: Error) -> Error {
    match e {
        Error::PolicyRefused(m) => Error::Usage(format!(
            "{m}; no volume was enrolled with --policy-key on this TPM"
        )),
        e => e,
    }
}

pub fn revoke(tpm: &TpmOpts, below: u64) -> Result<u64> {
    let mut t = tpm.open()?;
    let mut c = t.read_counter().map_err(no_counter)?;
    if below > c.saturating_add(1024) {
        return Err(usage(format!(
            "the counter is at {c}; advancing it to {below} needs {} increments (at most 1024 at a time)",
            below - c
        )));
    }
    while c < below {
        c = t.increment_counter()?;
    }
    info!("revocation counter now {c}: signed policies with a version below {c} are refused");
    Ok(c)
}

/// `sealroot policy show`: the counter and a signed policy file's contents.
pub fn counter(tpm: &TpmOpts) -> Result<u64> {
    tpm.open()?.read_counter().map_err(no_counter)
}
