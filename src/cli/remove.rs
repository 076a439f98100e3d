//! `sealroot remove` and `sealroot cleanup`: options and output.

use crate::cmd::{cleanup, remove};
use crate::Result;
use clap::Args;
use std::path::PathBuf;

/// Remove a sealroot token and its keyslot.
#[derive(Debug, Args)]
pub struct RemoveCmd {
    #[arg(long, value_name = "PATH")]
    pub device: PathBuf,
    #[arg(long, value_name = "ID")]
    pub token: u32,
}

impl RemoveCmd {
    pub fn run(self) -> Result<()> {
        let slots = remove::remove(&self.device, self.token)?;
        println!(
            "removed token {} and keyslot(s) {:?} from {}",
            self.token,
            slots,
            self.device.display()
        );
        Ok(())
    }
}

/// Remove sealroot tokens whose keyslot no longer exists.
#[derive(Debug, Args)]
pub struct CleanupCmd {
    #[arg(long, value_name = "PATH")]
    pub device: PathBuf,
}

impl CleanupCmd {
    pub fn run(self) -> Result<()> {
        let removed = cleanup::run(&self.device)?;
        println!(
            "removed {} dangling token(s) {:?} from {}",
            removed.len(),
            removed,
            self.device.display()
        );
        Ok(())
    }
}
