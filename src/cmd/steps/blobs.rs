//! The volume's sealroot blobs (tokens, or a blob file), the checks every
//! blob passes before the TPM is asked, and the PCR comparison that
//! explains a mismatch.

use crate::disk::luks::Volume;
use crate::formats::blob::Blob;
use crate::pcr::selfpcr::{self, Measurements};
use crate::pcr::{self, Mismatch};
use crate::tpm::seal::sealed_auth_policy;
use crate::{Error, Result};
use std::path::Path;

/// A sealroot blob with where it came from.
pub struct Source {
    /// LUKS2 token id, or `None` for a blob file.
    pub token: Option<u32>,
    pub origin: String,
    pub blob: Result<Blob>,
}

/// Load the blob file, or every sealroot token of the volume.
pub fn load_blobs(vol: &mut Volume, blob_file: Option<&Path>) -> Result<Vec<Source>> {
    if let Some(f) = blob_file {
        let bytes = std::fs::read(f).map_err(|e| Error::io(f, e))?;
        let origin = f.display().to_string();
        return Ok(vec![Source {
            token: None,
            blob: Blob::from_json(&bytes, &origin),
            origin,
        }]);
    }
    let mut out = Vec::new();
    for id in vol.sealroot_tokens()? {
        let origin = format!("token {id}");
        let blob = vol
            .token_json(id)
            .and_then(|v| Blob::from_value(v, &origin));
        out.push(Source {
            token: Some(id),
            origin,
            blob,
        });
    }
    Ok(out)
}

/// The blob's policy must be the one its fields describe: PolicyPCR over
/// `pcrs` (after PolicyAuthorize with the `authorize` key in signed mode),
/// PolicyAuthValue with a PIN; both its `policy_digest` and the sealed
/// object's own `authPolicy` must equal that. Catches a token whose key,
/// PCR values or PIN flag were edited before the TPM is asked.
pub fn check_blob_policy(blob: &Blob, origin: &str) -> Result<()> {
    let start = match &blob.authorize {
        Some(k) => crate::pcr::policy::authorized(&k.name()),
        None => [0; 32],
    };
    let expected = crate::pcr::policy::compute_from(&start, &blob.pcrs, &blob.values, blob.pin);
    if blob.policy_digest != expected {
        return Err(Error::blob(
            origin,
            "policy_digest does not match the token's PCRs, key and PIN flag (edited token?)",
        ));
    }
    if sealed_auth_policy(&blob.tpm_public)? != expected {
        return Err(Error::blob(
            origin,
            "the sealed object's authPolicy is not the token's policy (edited token?)",
        ));
    }
    Ok(())
}

/// Every PCR the valid blobs' policies cover, ascending, each once: what
/// `unlock` and `status` read in one PCR_Read. Every valid blob includes the
/// self PCR.
pub fn policy_pcrs(sources: &[Source]) -> Vec<u32> {
    let mut v: Vec<u32> = sources
        .iter()
        .filter_map(|s| s.blob.as_ref().ok())
        .flat_map(|b| b.pcrs.iter().copied())
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// When the token and this boot disagree on the boot's primary volume,
/// the usual cause of a configuration mismatch once a second volume is
/// added (docs/design.md#several-volumes-in-one-boot).
fn volume_set_hint(blob: &Blob, now: &Measurements) -> Option<&'static str> {
    let alone = selfpcr::config_digest(&blob.volume_uuid);
    let enrolled = blob.self_measurements.config;
    if enrolled == now.config {
        None
    } else if enrolled == alone {
        Some(" (the token is sealed for a boot whose primary volume is this one, and this boot's primary volume is another: enroll or reseal it with --root-volume and --root-key-file naming the primary volume)")
    } else if now.config == alone {
        Some(" (the token is sealed for a boot whose primary volume is another: it opens in that boot, after that volume, through `sealroot boot`)")
    } else {
        Some(" (the token is sealed for a boot with another primary volume)")
    }
}

/// Compare the blob's expected PCRs with `current` (indexed like `wanted`).
pub fn check_pcrs(
    blob: &Blob,
    now: &Measurements,
    wanted: &[u32],
    current: &[pcr::Digest],
) -> Result<()> {
    let cur: Vec<pcr::Digest> = blob
        .pcrs
        .iter()
        .map(|p| current[wanted.iter().position(|w| w == p).expect("read")])
        .collect();
    let mut diffs = pcr::compare(&blob.pcrs, &blob.values, &cur);
    if diffs.is_empty() {
        return Ok(());
    }
    for d in &mut diffs {
        if d.index == pcr::SELF_PCR {
            let mut why = selfpcr::explain(
                &blob.self_measurements,
                now,
                &d.current,
                blob.fingerprint.as_ref(),
            );
            if let Some(hint) = volume_set_hint(blob, now) {
                why.push_str(hint);
            }
            d.why = Some(why);
        }
    }
    Err(Error::PcrMismatch(Mismatch {
        bank: pcr::BANK_SHA256.into(),
        diffs,
    }))
}
