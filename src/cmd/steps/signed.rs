//! Signed-policy volumes: find the signed policies (files, the volume's
//! policy tokens, the policy directory), keep those of the volume's key
//! that verify, and choose the one this boot's PCRs satisfy
//! (docs/signed-policy.md).

use super::blobs::{policy_pcrs, Source};
use super::eventlog::annotate;
use crate::disk::luks::Volume;
use crate::formats::signed_policy::{SignedPolicy, MAX_SIGNED_BYTES, SIGNED_TYPE};
use crate::pcr::signer::PublicKey;
use crate::pcr::{self, Digest, Mismatch, PcrDiff};
use crate::{Error, Result};
use log::warn;
use std::path::{Path, PathBuf};

/// Where `unlock` looks for signed policies, in this order: the files given,
/// the volume's LUKS2 tokens, then `*.json` in the directory (sorted).
#[derive(Debug, Clone, Default)]
pub struct PolicySearch {
    pub files: Vec<PathBuf>,
    pub dir: Option<PathBuf>,
    /// The PCR signature JSON of `systemd-tpm2` tokens with a signed
    /// policy; `None`: systemd's search ([`super::systemd::SIGNATURE_PATHS`]).
    pub systemd_signature: Option<PathBuf>,
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
    f.take(MAX_SIGNED_BYTES as u64 + 1)
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
    for id in vol.tokens_of_type(SIGNED_TYPE)? {
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
    sources: &[Source],
    search: &PolicySearch,
) -> Result<(Vec<Found>, Vec<u32>)> {
    let signed = sources
        .iter()
        .any(|s| matches!(&s.blob, Ok(b) if b.authorize.is_some()));
    let found = if signed { find(vol, search)? } else { vec![] };
    let mut wanted = policy_pcrs(sources);
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
        annotate(&mut diffs, &best.events, eventlog);
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
