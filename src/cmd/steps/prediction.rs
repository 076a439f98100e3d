//! The PCRs of a boot with a replaced initrd or kernel, from this boot's
//! event log: for `predict` and `policy sign --from-eventlog`
//! (docs/eventlog.md).

use crate::pcr::eventlog::{self, EventLog};
use crate::pcr::explain::ExpectedEvent;
use crate::pcr::predict::{self, QemuDirectBoot, Substitution};
use crate::pcr::Digest;
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// Largest image file read (a kernel is ~10 MiB, an initrd up to a few
/// hundred MiB).
const MAX_IMAGE_BYTES: u64 = 1 << 30;

/// The images to substitute into a replay of `eventlog`.
#[derive(Debug, Clone)]
pub struct Replacement {
    pub eventlog: PathBuf,
    /// The new initrd.
    pub initrd: Option<PathBuf>,
    /// The new kernel PE image.
    pub kernel: Option<PathBuf>,
    /// QEMU direct kernel boot with this much guest RAM below 4 GiB (MiB).
    pub qemu_direct_boot_mib: Option<u64>,
}

impl Replacement {
    /// The options go together: QEMU writes the initrd size into the
    /// kernel header, so `--qemu-direct-boot` needs the initrd.
    ///
    /// Errors: [`Error::Usage`].
    pub fn check(&self) -> Result<()> {
        if self.qemu_direct_boot_mib.is_some() && self.initrd.is_none() {
            return Err(Error::Usage(
                "--qemu-direct-boot needs --initrd: QEMU writes the initrd size into the kernel header"
                    .into(),
            ));
        }
        Ok(())
    }
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
pub fn load_eventlog(path: &Path) -> Result<EventLog> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    eventlog::parse(&bytes).map_err(|e| Error::EventLog {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// The substitution `args` asks for: digests of the new images.
pub fn substitution(args: &Replacement) -> Result<Substitution> {
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
    pub values: [Digest; 24],
    pub touched: [bool; 24],
    pub events: Vec<ExpectedEvent>,
}

/// Replay `args.eventlog` with the substitutions (none is fine: the same
/// boot again), for `policy sign --from-eventlog`.
pub fn predicted_boot(args: &Replacement) -> Result<PredictedBoot> {
    args.check()?;
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
            Some(ExpectedEvent {
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
