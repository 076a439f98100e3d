//! `sealroot predict`: the PCR values a boot with a replaced initrd or kernel
//! will produce, from this boot's event log (docs/eventlog.md).

use super::TpmOpts;
use crate::eventlog;
use crate::pcr;
use crate::predict::{self, QemuDirectBoot, Substitution};
use crate::{Error, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Largest image file read (a kernel is ~10 MiB, an initrd up to a few
/// hundred MiB).
const MAX_IMAGE_BYTES: u64 = 1 << 30;

pub struct PredictArgs {
    pub eventlog: PathBuf,
    pub initrd: Option<PathBuf>,
    pub kernel: Option<PathBuf>,
    /// QEMU direct kernel boot with this much guest RAM below 4 GiB (MiB).
    pub qemu_direct_boot_mib: Option<u64>,
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

fn read_image(path: &Path) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.len() > MAX_IMAGE_BYTES {
        return Err(Error::Usage(format!(
            "{}: {} bytes, larger than the {MAX_IMAGE_BYTES}-byte limit",
            path.display(),
            meta.len()
        )));
    }
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

/// Read and parse an event log file.
pub fn load_eventlog(path: &Path) -> Result<eventlog::EventLog> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    eventlog::parse(&bytes).map_err(|e| Error::EventLog {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// The substitution `args` asks for: digests of the new images.
fn substitution(args: &PredictArgs) -> Result<Substitution> {
    let mut sub = Substitution::default();
    let mut initrd_size = None;
    if let Some(p) = &args.initrd {
        let bytes = read_image(p)?;
        initrd_size = Some(bytes.len() as u64);
        sub.initrd = Some(predict::initrd_digest(&bytes));
    }
    if let Some(p) = &args.kernel {
        let mut bytes = read_image(p)?;
        if let (Some(mib), Some(size)) = (args.qemu_direct_boot_mib, initrd_size) {
            let q = QemuDirectBoot {
                below_4g_mem: mib << 20,
                initrd_size: size,
            };
            predict::qemu_patch_setup_header(&mut bytes, &q)
                .map_err(|e| Error::Usage(format!("{}: {e}", p.display())))?;
        }
        sub.kernel = Some(
            predict::authenticode_sha256(&bytes)
                .map_err(|e| Error::Usage(format!("{}: {e}", p.display())))?,
        );
    }
    Ok(sub)
}

/// A predicted boot: PCR values and the events behind them.
pub struct PredictedBoot {
    pub values: [pcr::Digest; 24],
    pub touched: [bool; 24],
    pub events: Vec<crate::signedpolicy::ExpectedEvent>,
}

/// Replay `args.eventlog` with the substitutions (none is fine: the same
/// boot again), for `policy sign --from-eventlog`.
pub fn predicted_boot(args: &PredictArgs) -> Result<PredictedBoot> {
    if args.qemu_direct_boot_mib.is_some() && args.initrd.is_none() {
        return Err(Error::Usage(
            "--qemu-direct-boot needs --initrd: QEMU writes the initrd size into the kernel header"
                .into(),
        ));
    }
    let log = load_eventlog(&args.eventlog)?;
    let sub = substitution(args)?;
    let pred = predict::predict(&log, &sub).map_err(|e| Error::EventLog {
        path: args.eventlog.clone(),
        reason: e.to_string(),
    })?;
    let events = log
        .events
        .iter()
        .filter(|e| e.is_measured())
        .filter_map(|e| {
            let digest = match pred.substituted.iter().find(|s| s.event == e.number) {
                Some(s) => s.new,
                None => e.sha256()?,
            };
            Some(crate::signedpolicy::ExpectedEvent {
                pcr: e.pcr,
                event_type: e.event_type,
                digest,
            })
        })
        .collect();
    Ok(PredictedBoot {
        values: pred.replay.values,
        touched: pred.replay.touched,
        events,
    })
}

pub fn run(args: &PredictArgs) -> Result<Report> {
    if args.initrd.is_none() && args.kernel.is_none() {
        return Err(Error::Usage(
            "predict needs --initrd and/or --kernel (the images to substitute)".into(),
        ));
    }
    if args.qemu_direct_boot_mib.is_some() && args.initrd.is_none() {
        return Err(Error::Usage(
            "--qemu-direct-boot needs --initrd: QEMU writes the initrd size into the kernel header"
                .into(),
        ));
    }
    let log = load_eventlog(&args.eventlog)?;
    let logerr = |reason: String| Error::EventLog {
        path: args.eventlog.clone(),
        reason,
    };
    let current = log.replay().map_err(|e| logerr(e.to_string()))?;
    let tpm_check = match &args.verify_tpm {
        None => None,
        Some(t) => {
            let values = t.open()?.pcr_read(&args.pcrs)?;
            let bad = current.check(&args.pcrs, &values);
            if !bad.is_empty() {
                return Err(Error::PcrMismatch(pcr::Mismatch {
                    bank: pcr::BANK_SHA256.into(),
                    diffs: bad
                        .iter()
                        .map(|&i| {
                            let pos = args.pcrs.iter().position(|&p| p == i).unwrap_or(0);
                            pcr::PcrDiff {
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
    let sub = substitution(args)?;
    let pred = predict::predict(&log, &sub).map_err(|e| logerr(e.to_string()))?;
    Ok(Report {
        eventlog: args.eventlog.display().to_string(),
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
