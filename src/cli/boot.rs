//! `sealroot boot`: options.

use super::options::{EvidenceArgs, Seconds, UnlockInputs};
use crate::cmd::boot::{self, BootArgs};
use crate::cmd::steps::inputs::PinSource;
use crate::cmd::steps::session::Session;
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
    /// Seconds from the start to the lock of PCR 15 (0-3600; a volume's
    /// `deadline=` option wins): past it, sealroot locks and fails (exit 14).
    #[arg(long, value_name = "SECS", default_value = "120")]
    pub deadline: Seconds,
    /// First boot: seal even to PCRs that were never extended (all zero;
    /// tests on a bare TPM).
    #[arg(long)]
    pub allow_zero_pcrs: bool,
    #[command(flatten)]
    pub evidence: EvidenceArgs,
    #[command(flatten)]
    pub inputs: UnlockInputs,
}

impl BootCmd {
    pub fn run(self) -> Result<()> {
        let i = self.inputs;
        let tpm = i.tpm.opts();
        // Every way out from here locks PCR 15, failures included, unless
        // nothing is configured (or only the configuration is printed).
        let mut session = Session::new(tpm.clone(), self.deadline.duration());
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
            deadline: self.deadline.duration(),
            allow_zero_pcrs: self.allow_zero_pcrs,
            platform,
            policies: i.policies.search(),
            eventlog: i.eventlog.path(),
        };
        if self.print_config {
            session.disarm();
            // The scripts eval this: a short write must be an error, not
            // an empty configuration.
            let text = boot::print_config(&args)?;
            let mut out = std::io::stdout().lock();
            return out
                .write_all(text.as_bytes())
                .and_then(|_| out.flush())
                .map_err(|e| Error::io("standard output", e));
        }
        boot::run(&args, &mut session)?;
        Ok(())
    }
}
