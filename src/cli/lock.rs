//! `sealroot lock`: options and output.

use super::options::TpmArgs;
use crate::cmd::lock;
use crate::Result;
use clap::Args;

/// Extend sealroot's failure event into PCR 15, so nothing sealed to this
/// boot's measurements can be unsealed any more. The initramfs scripts run
/// it on every failure path, behind sealroot's own lock, before anything
/// else runs (docs/security.md).
#[derive(Debug, Args)]
pub struct LockCmd {
    #[command(flatten)]
    pub tpm: TpmArgs,
}

impl LockCmd {
    pub fn run(self) -> Result<()> {
        lock::run(&self.tpm.opts())?;
        println!("PCR 15 locked");
        Ok(())
    }
}
