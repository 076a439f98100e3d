//! `sealroot boot`: options.

use super::options::{EvidenceArgs, Seconds, UnlockInputs};
use crate::cmd::boot::{self, BootArgs};
use crate::cmd::steps::inputs::PinSource;
use crate::{Error, Result};
use clap::Args;
use std::io::Write;
use std::path::PathBuf;

/// Open the volume named on the kernel command line (rd.sealroot.*) or
/// in crypttab (a `sealroot` option): the initramfs entry point.
#[derive(Debug, Args)]
pub struct BootCmd {
    /// crypttab to read (a missing file means none).
    #[arg(long, value_name = "PATH", default_value = "/etc/crypttab")]
    pub crypttab: PathBuf,
    #[arg(long)]
    pub dry_run: bool,
    /// Print the sealed volume's configuration as shell assignments
    /// (SEALROOT_NAME='…', …; docs/distro.md) and touch nothing.
    #[arg(long, conflicts_with = "dry_run")]
    pub print_config: bool,
    /// Seconds to wait for the volume's device node to appear (0-3600).
    #[arg(long, value_name = "SECS", default_value = "30")]
    pub device_timeout: Seconds,
    #[arg(long, value_name = "FILE")]
    pub pin_file: Option<PathBuf>,
    #[command(flatten)]
    pub evidence: EvidenceArgs,
    #[command(flatten)]
    pub inputs: UnlockInputs,
}

impl BootCmd {
    pub fn run(self) -> Result<()> {
        let i = self.inputs;
        let tpm = i.tpm.opts();
        let platform = self.evidence.platform_opts(None)?;
        let cmdline = i.cmdline.read(None)?;
        let args = BootArgs {
            crypttab: self.crypttab,
            cmdline,
            dry_run: self.dry_run,
            device_timeout: self.device_timeout.duration(),
            pin: PinSource {
                file: self.pin_file,
            },
            tpm,
            platform,
            policies: i.policies.search(),
            eventlog: i.eventlog.path(),
        };
        if self.print_config {
            // The scripts eval this: a short write must be an error, not
            // an empty configuration.
            let text = boot::print_config(&args)?;
            let mut out = std::io::stdout().lock();
            return out
                .write_all(text.as_bytes())
                .and_then(|_| out.flush())
                .map_err(|e| Error::io("standard output", e));
        }
        boot::run(&args)?;
        Ok(())
    }
}
