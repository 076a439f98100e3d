//! `sealroot status`: options and output.

use super::options::UnlockInputs;
use crate::cmd::status::{self, StatusArgs};
use crate::Result;
use clap::Args;
use std::path::PathBuf;

/// Show each sealroot token: PCRs expected vs current, and a verdict.
#[derive(Debug, Args)]
pub struct StatusCmd {
    #[arg(long, value_name = "PATH")]
    pub device: PathBuf,
    /// The volume's detached LUKS2 header (crypttab's header=); --device
    /// is then its data device.
    #[arg(long, value_name = "PATH")]
    pub header: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
    #[arg(long, value_name = "PATH")]
    pub blob_file: Option<PathBuf>,
    #[command(flatten)]
    pub inputs: UnlockInputs,
}

impl StatusCmd {
    pub fn run(self) -> Result<()> {
        let i = self.inputs;
        let tpm = i.tpm.opts();
        let cmdline = i.cmdline.read(None)?;
        let r = status::run(&StatusArgs {
            device: self.device,
            header: self.header,
            blob_file: self.blob_file,
            cmdline,
            tpm,
            policies: i.policies.search(),
            eventlog: i.eventlog.path(),
        })?;
        super::print_report(&r, self.json, status::render)
    }
}
