//! `sealroot policy sign|install|revoke|show` and the signed-policy side of
//! `unlock`: finding signed policies and choosing the one this boot's PCRs
//! satisfy (docs/signed-policy.md).

use super::TpmOpts;
use crate::blob::Blob;
use crate::luks::Volume;
use crate::pcr::{self, Digest, Mismatch, PcrDiff};
use crate::signedpolicy::{self, ExpectedEvent, PrivateKey, PublicKey, SignedPolicy};
use crate::{Error, Result};
use log::{info, warn};
use std::path::{Path, PathBuf};

/// Where `unlock` looks for signed policies, in this order: the files given,
/// the volume's LUKS2 tokens, then `*.json` in the directory (sorted).
#[derive(Debug, Clone, Default)]
pub struct PolicySearch {
    pub files: Vec<PathBuf>,
    pub dir: Option<PathBuf>,
}

/// Default directory: inside the initramfs (or on the ESP, when the
/// initramfs mounts it there).
pub const DEFAULT_POLICY_DIR: &str = "/etc/sealroot/policies";

/// A signed policy and where it came from.
pub struct Found {
    pub origin: String,
    pub policy: std::result::Result<SignedPolicy, String>,
}

/// Read a signed policy file: a regular file, at most the size limit read
/// (a FIFO or a huge file in the policy directory must not stall the boot).
fn read_policy_file(path: &Path) -> std::result::Result<SignedPolicy, String> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    if !f.metadata().map_err(|e| e.to_string())?.is_file() {
        return Err("not a regular file".into());
    }
    let mut bytes = Vec::new();
    f.take(signedpolicy::MAX_SIGNED_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    SignedPolicy::from_json(&bytes)
}

/// Every signed policy in the search order (unparsable ones included, so
/// they can be reported).
pub fn find(vol: &mut Volume, search: &PolicySearch) -> Result<Vec<Found>> {
    let mut out = Vec::new();
    for f in &search.files {
        out.push(Found {
            origin: f.display().to_string(),
            policy: read_policy_file(f),
        });
    }
    for id in vol.tokens_of_type(signedpolicy::SIGNED_TYPE)? {
        out.push(Found {
            origin: format!("policy token {id}"),
            policy: vol
                .token_json(id)
                .map_err(|e| e.to_string())
                .and_then(SignedPolicy::from_value),
        });
    }
    if let Some(dir) = &search.dir {
        if let Ok(rd) = std::fs::read_dir(dir) {
            let mut files: Vec<PathBuf> = rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect();
            files.sort();
            for f in files {
                out.push(Found {
                    origin: f.display().to_string(),
                    policy: read_policy_file(&f),
                });
            }
        }
    }
    Ok(out)
}

/// The signed policies the sources need (none unless a valid blob is in
/// signed-policy mode), and every PCR the blobs and those policies cover,
/// ascending, each once: what `unlock` and `status` read in one PCR_Read.
pub fn for_sources(
    vol: &mut Volume,
    sources: &[super::Source],
    search: &PolicySearch,
) -> Result<(Vec<Found>, Vec<u32>)> {
    let signed = sources
        .iter()
        .any(|s| matches!(&s.blob, Ok(b) if b.authorize.is_some()));
    let found = if signed { find(vol, search)? } else { vec![] };
    let mut wanted = super::policy_pcrs(sources);
    wanted.extend(
        found
            .iter()
            .filter_map(|f| f.policy.as_ref().ok())
            .flat_map(|p| p.pcrs.iter().copied()),
    );
    wanted.sort_unstable();
    wanted.dedup();
    Ok((found, wanted))
}

/// A policy and where it was found.
pub type Verified<'a> = (&'a str, &'a SignedPolicy);

/// The signed policies of `key` that verify, and (origin, reason) for each
/// of the others (unparsable, another key, bad signature).
pub fn verified<'a>(
    found: &'a [Found],
    key: &PublicKey,
) -> (Vec<Verified<'a>>, Vec<(&'a str, String)>) {
    let mut ok = Vec::new();
    let mut rejected = Vec::new();
    for f in found {
        match f.policy.as_ref().map_err(|e| e.clone()).and_then(|p| {
            p.verify(key)?;
            Ok(p)
        }) {
            Ok(p) => ok.push((f.origin.as_str(), p)),
            Err(e) => rejected.push((f.origin.as_str(), e)),
        }
    }
    (ok, rejected)
}

/// The policy closest to this boot: fewest differing PCRs, then the newest.
pub fn closest<'a>(
    verified: &[Verified<'a>],
    value_of: &dyn Fn(u32) -> Digest,
) -> Option<Verified<'a>> {
    verified
        .iter()
        .min_by_key(|(_, p)| (diffs_of(p, value_of).len(), u64::MAX - p.version))
        .copied()
}

fn diffs_of(p: &SignedPolicy, value_of: &dyn Fn(u32) -> Digest) -> Vec<PcrDiff> {
    let cur: Vec<Digest> = p.pcrs.iter().map(|&i| value_of(i)).collect();
    pcr::compare(&p.pcrs, &p.values, &cur)
}

/// Choose the signed policy for this boot (pure): among the verified
/// policies whose PCR values equal the current ones and whose version is
/// not below the revocation counter (`counter` is read only when needed),
/// the highest version. `value_of` gives a PCR's current value.
pub fn choose<'a>(
    verified: &[Verified<'a>],
    value_of: &dyn Fn(u32) -> Digest,
    counter: &mut dyn FnMut() -> Result<u64>,
    eventlog: Option<&Path>,
) -> Result<Verified<'a>> {
    if verified.is_empty() {
        return Err(Error::PolicyRefused(
            "no signed policy for this volume's key was found (searched the --policy-file files, the volume's policy tokens and the policy directory; see docs/signed-policy.md)".into(),
        ));
    }
    let matching: Vec<&Verified> = verified
        .iter()
        .filter(|(_, p)| diffs_of(p, value_of).is_empty())
        .collect();
    if matching.is_empty() {
        // Explain against the closest policy.
        let (origin, best) = closest(verified, value_of).expect("non-empty");
        let mut diffs = diffs_of(best, value_of);
        super::explain::annotate(&mut diffs, &best.events, eventlog);
        warn!(
            "no signed policy matches this boot's PCRs ({} found); closest: {origin}, version {}",
            verified.len(),
            best.version
        );
        return Err(Error::PcrMismatch(Mismatch {
            bank: pcr::BANK_SHA256.into(),
            diffs,
        }));
    }
    let c = if crate::testhooks::skip_version_check() {
        0
    } else {
        counter()?
    };
    // The newest; among equal versions the first found (search order).
    let newest = matching
        .iter()
        .enumerate()
        .filter(|(_, (_, p))| p.version >= c)
        .max_by_key(|(i, (_, p))| (p.version, std::cmp::Reverse(*i)))
        .map(|(_, x)| x);
    match newest {
        Some((o, p)) => Ok((o, p)),
        None => {
            let (o, p) = matching
                .iter()
                .max_by_key(|(_, p)| p.version)
                .expect("non-empty");
            Err(Error::PolicyRefused(format!(
                "the signed policy for this boot's PCRs ({o}, version {}) is revoked: the TPM's revocation counter is {c}, so only policies signed with version {c} or higher are accepted",
                p.version
            )))
        }
    }
}

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
    if args.pcrs.contains(&pcr::SELF_PCR) {
        return Err(usage(format!(
            "PCR {} is sealroot's own PCR, bound at enrollment; leave it out of signed policies",
            pcr::SELF_PCR
        )));
    }
    let (values, events): (Vec<Digest>, Vec<ExpectedEvent>) =
        match (&args.values, &args.from_eventlog) {
            (Some(f), None) => {
                let text = std::fs::read_to_string(f).map_err(|e| Error::io(f, e))?;
                let given = signedpolicy::parse_values(&text)
                    .map_err(|e| usage(format!("{}: {e}", f.display())))?;
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
                let pred = super::predict::predicted_boot(&super::predict::PredictArgs {
                    eventlog: log.clone(),
                    initrd: args.initrd.clone(),
                    kernel: args.kernel.clone(),
                    qemu_direct_boot_mib: args.qemu_direct_boot_mib,
                    pcrs: args.pcrs.clone(),
                    verify_tpm: None,
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
    super::write_atomic(&args.out, p.to_json_pretty().as_bytes())?;
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
    let old = vol.tokens_of_type(signedpolicy::SIGNED_TYPE)?;
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
