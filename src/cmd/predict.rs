//! `sealroot predict`: the PCR values a boot with a replaced initrd or
//! kernel will produce, from this boot's event log (docs/eventlog.md).

use super::steps::prediction::{load_eventlog, substitution, Replacement};
use super::steps::TpmOpts;
use crate::pcr::predict;
use crate::pcr::{Mismatch, PcrDiff, BANK_SHA256};
use crate::{Error, Result};
use serde::Serialize;

pub struct PredictArgs {
    /// The event log and the images to substitute.
    pub images: Replacement,
    pub pcrs: Vec<u32>,
    /// Check the log against this TPM's PCRs first.
    pub verify_tpm: Option<TpmOpts>,
}

/// Stable JSON shape (docs/eventlog.md).
#[derive(Debug, Serialize)]
pub struct Report {
    pub eventlog: String,
    /// "ok" when the log replayed to the TPM's PCRs, null when not checked.
    pub tpm_check: Option<String>,
    pub substituted: Vec<SubstitutedReport>,
    pub pcrs: Vec<PcrPrediction>,
}

#[derive(Debug, Serialize)]
pub struct SubstitutedReport {
    pub event: usize,
    pub pcr: u32,
    pub description: String,
    pub old: String,
    pub new: String,
}

#[derive(Debug, Serialize)]
pub struct PcrPrediction {
    pub index: u32,
    /// The value this boot's log replays to.
    pub current: String,
    pub predicted: String,
    pub changed: bool,
}

pub fn run(args: &PredictArgs) -> Result<Report> {
    if args.images.initrd.is_none() && args.images.kernel.is_none() {
        return Err(Error::Usage(
            "predict needs --initrd and/or --kernel (the images to substitute)".into(),
        ));
    }
    args.images.check()?;
    let log = load_eventlog(&args.images.eventlog)?;
    let logerr = |reason: String| Error::EventLog {
        path: args.images.eventlog.clone(),
        reason,
    };
    let current = log.replay().map_err(|e| logerr(e.to_string()))?;
    let tpm_check = match &args.verify_tpm {
        None => None,
        Some(t) => {
            let values = t.open()?.pcr_read(&args.pcrs)?;
            let bad = current.check(&args.pcrs, &values);
            if !bad.is_empty() {
                return Err(Error::PcrMismatch(Mismatch {
                    bank: BANK_SHA256.into(),
                    diffs: bad
                        .iter()
                        .map(|&i| {
                            let pos = args.pcrs.iter().position(|&p| p == i).unwrap_or(0);
                            PcrDiff {
                                index: i,
                                expected: current.values[i as usize],
                                current: values[pos],
                                why: Some(
                                    "the event log does not replay to the TPM's value".into(),
                                ),
                            }
                        })
                        .collect(),
                }));
            }
            Some("ok".to_string())
        }
    };
    let sub = substitution(&args.images)?;
    let pred = predict::predict(&log, &sub).map_err(|e| logerr(e.to_string()))?;
    Ok(Report {
        eventlog: args.images.eventlog.display().to_string(),
        tpm_check,
        substituted: pred
            .substituted
            .iter()
            .map(|s| SubstitutedReport {
                event: s.event,
                pcr: s.pcr,
                description: s.description.clone(),
                old: hex::encode(s.old),
                new: hex::encode(s.new),
            })
            .collect(),
        pcrs: args
            .pcrs
            .iter()
            .map(|&i| {
                let (c, p) = (current.values[i as usize], pred.replay.values[i as usize]);
                PcrPrediction {
                    index: i,
                    current: hex::encode(c),
                    predicted: hex::encode(p),
                    changed: c != p,
                }
            })
            .collect(),
    })
}

/// Human-readable rendering.
pub fn render(r: &Report) -> String {
    let mut s = format!("event log {}", r.eventlog);
    if let Some(c) = &r.tpm_check {
        s.push_str(&format!(" (replay matches the TPM: {c})"));
    }
    s.push('\n');
    for e in &r.substituted {
        s.push_str(&format!(
            "substituted event #{} PCR {} {}: {} -> {}\n",
            e.event, e.pcr, e.description, e.old, e.new
        ));
    }
    for p in &r.pcrs {
        s.push_str(&format!(
            "PCR {:>2} {} {}\n",
            p.index,
            if p.changed { "changes  " } else { "unchanged" },
            p.predicted
        ));
    }
    s
}
