//! Wire pieces the JSON formats share (the blob and the signed policy):
//! a PCR list with its values, and 32-byte hex digests.

use crate::pcr::Digest;
use serde::{Deserialize, Serialize};

/// One PCR and its expected value (hex).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WirePcr {
    pub index: u32,
    pub value: String,
}

/// 32 bytes from hex; `what` names the field in the error.
pub(crate) fn hex32(s: &str, what: &str) -> Result<Digest, String> {
    let v = hex::decode(s).map_err(|e| format!("{what}: {e}"))?;
    v.as_slice()
        .try_into()
        .map_err(|_| format!("{what} is {} bytes, expected 32", v.len()))
}

/// A PCR list: not empty, strictly ascending, each index `allowed`.
pub(crate) fn pcrs_from_wire(
    w: &[WirePcr],
    allowed: impl Fn(u32) -> Result<(), String>,
) -> Result<(Vec<u32>, Vec<Digest>), String> {
    if w.is_empty() {
        return Err("empty PCR list".into());
    }
    let mut pcrs = Vec::with_capacity(w.len());
    let mut values = Vec::with_capacity(w.len());
    for p in w {
        allowed(p.index)?;
        if pcrs.last().is_some_and(|&last| last >= p.index) {
            return Err("PCR indexes not strictly ascending".into());
        }
        pcrs.push(p.index);
        values.push(hex32(&p.value, "PCR value")?);
    }
    Ok((pcrs, values))
}

/// The wire form of `pcrs` with their `values` (same order).
pub(crate) fn pcrs_to_wire(pcrs: &[u32], values: &[Digest]) -> Vec<WirePcr> {
    pcrs.iter()
        .zip(values)
        .map(|(&index, v)| WirePcr {
            index,
            value: hex::encode(v),
        })
        .collect()
}
