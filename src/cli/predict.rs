//! `sealroot predict`: options and output.

use super::options::{PcrList, TpmArgs};
use crate::cmd::predict::{self, PredictArgs};
use crate::cmd::steps::prediction::Replacement;
use crate::Result;
use clap::Args;
use std::path::PathBuf;

/// Predict the PCRs of a boot with a replaced initrd and/or kernel, from
/// this boot's event log (docs/eventlog.md).
#[derive(Debug, Args)]
pub struct PredictCmd {
    /// The TCG2 crypto-agile event log of the current boot.
    #[arg(
        long,
        value_name = "PATH",
        default_value = "/sys/kernel/security/tpm0/binary_bios_measurements"
    )]
    pub eventlog: PathBuf,
    /// The new initrd (its SHA-256 replaces the "Linux initrd" event in PCR 9).
    #[arg(long, value_name = "FILE")]
    pub initrd: Option<PathBuf>,
    /// The new kernel PE image (its Authenticode hash replaces the last
    /// EFI application event in PCR 4).
    #[arg(long, value_name = "FILE")]
    pub kernel: Option<PathBuf>,
    /// QEMU -kernel/-initrd boot with this much RAM below 4 GiB (MiB):
    /// apply QEMU's setup-header patch to --kernel before hashing.
    #[arg(long, value_name = "MIB", requires = "kernel")]
    pub qemu_direct_boot: Option<u64>,
    /// PCRs to report.
    #[arg(long, value_name = "LIST", default_value = "0,4,7,9")]
    pub pcrs: PcrList,
    /// First check that the log replays to this TPM's PCRs (exit 4 if not).
    #[arg(long)]
    pub verify_tpm: bool,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub tpm: TpmArgs,
}

impl PredictCmd {
    pub fn run(self) -> Result<()> {
        let r = predict::run(&PredictArgs {
            images: Replacement {
                eventlog: self.eventlog,
                initrd: self.initrd,
                kernel: self.kernel,
                qemu_direct_boot_mib: self.qemu_direct_boot,
            },
            pcrs: self.pcrs.0,
            verify_tpm: self.verify_tpm.then(|| self.tpm.opts()),
        })?;
        super::print_report(&r, self.json, predict::render)
    }
}
