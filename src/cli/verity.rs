//! `sealroot verity`: options.

use super::options::{MappingName, RootHash};
use crate::cmd::verity;
use crate::disk::verity::VerityArgs;
use crate::Result;
use clap::Args;
use std::path::PathBuf;

/// Open a read-only image through dm-verity (the lower layer of an
/// ephemeral root), or verify it against the root hash.
#[derive(Debug, Args)]
pub struct VerityCmd {
    /// The data (the filesystem image).
    #[arg(long, value_name = "PATH")]
    pub data_device: PathBuf,
    /// The hash tree with its veritysetup superblock.
    #[arg(long, value_name = "PATH")]
    pub hash_device: PathBuf,
    /// Root hash (64 hex digits), from a measured source.
    #[arg(long, value_name = "HEX")]
    pub root_hash: RootHash,
    /// Mapping name: /dev/mapper/NAME.
    #[arg(long, default_value = "sealroot-os")]
    pub name: MappingName,
    /// Check every block now (reads the whole image) instead of opening it.
    #[arg(long)]
    pub verify: bool,
}

impl VerityCmd {
    pub fn run(self) -> Result<()> {
        verity::run(&VerityArgs {
            data: self.data_device,
            hash: self.hash_device,
            root_hash: self.root_hash.0,
            name: self.name.0,
            verify_only: self.verify,
        })
    }
}
