//! `sealroot reseal`: options and output.

use super::options::{CmdlineArgs, PcrList, RootVolumeArgs, TpmArgs};
use crate::cmd::reseal::{self, ResealArgs};
use crate::cmd::steps::inputs::PinSource;
use crate::sys::files::read_key_file;
use crate::Result;
use clap::Args;
use std::path::PathBuf;

/// Seal a new key to the current PCR values and retire the old one.
#[derive(Debug, Args)]
pub struct ResealCmd {
    #[arg(long, value_name = "PATH")]
    pub device: PathBuf,
    #[arg(long, value_name = "LIST")]
    pub pcrs: Option<PcrList>,
    /// Authorise with this key instead of unsealing the current one.
    #[arg(long, value_name = "FILE")]
    pub unlock_key_file: Option<PathBuf>,
    #[arg(long, value_name = "FILE")]
    pub pin_file: Option<PathBuf>,
    #[arg(long, value_name = "PATH")]
    pub blob_file: Option<PathBuf>,
    /// Which token, when the volume has several.
    #[arg(long, value_name = "ID")]
    pub token: Option<u32>,
    #[arg(long, value_name = "STRING")]
    pub boot_cmdline: Option<String>,
    #[command(flatten)]
    pub tpm: TpmArgs,
    #[command(flatten)]
    pub cmdline: CmdlineArgs,
    /// Seal even to firmware PCRs that were never extended (all zero in
    /// the sha256 bank): tests on a bare TPM. Refused otherwise, naming
    /// the PCR.
    #[arg(long)]
    pub allow_zero_pcrs: bool,
    #[command(flatten)]
    pub root: RootVolumeArgs,
}

impl ResealCmd {
    pub fn run(self) -> Result<()> {
        let tpm = self.tpm.opts();
        let cmdline = self.cmdline.read(self.boot_cmdline)?;
        let unlock_key = self
            .unlock_key_file
            .as_deref()
            .map(read_key_file)
            .transpose()?;
        let root_volume = self.root.primary()?;
        let added = reseal::run(&ResealArgs {
            device: self.device.clone(),
            pcrs: self.pcrs.map(|p| p.0),
            unlock_key,
            pin: PinSource {
                file: self.pin_file,
            },
            blob_file: self.blob_file,
            token: self.token,
            cmdline,
            tpm,
            allow_zero_pcrs: self.allow_zero_pcrs,
            root_volume,
        })?;
        println!(
            "resealed {}: keyslot {}{}",
            self.device.display(),
            added.keyslot,
            added
                .token
                .map(|t| format!(", token {t}"))
                .unwrap_or_default()
        );
        Ok(())
    }
}
