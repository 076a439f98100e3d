//! `sealroot ephemeral`: options and output.

use super::options::{MappingName, MeasurePcr, TpmArgs};
use crate::cmd::ephemeral;
use crate::cmd::steps::ephemeral::{render, EphemeralArgs, SYS_TPM};
use crate::formats::ephemeral::{Mkfs, Settings};
use crate::Result;
use clap::Args;
use std::path::PathBuf;

/// Format DEVICE as a keyless LUKS2 volume under a fresh random key that
/// only the kernel holds, open it and create a filesystem (docs/ephemeral.md).
#[derive(Debug, Args)]
pub struct EphemeralCmd {
    #[arg(long, value_name = "PATH")]
    pub device: PathBuf,
    /// Mapping name: /dev/mapper/NAME.
    #[arg(long)]
    pub name: MappingName,
    /// Authenticated encryption (dm-integrity, HMAC-SHA256 per 4 KiB sector).
    #[arg(long)]
    pub integrity: bool,
    /// Filesystem to create: ext4 (lazy init) or none.
    #[arg(long, value_name = "FS", default_value = "ext4")]
    pub mkfs: Mkfs,
    /// The device is ephemeral: destroy a filesystem, partition table or
    /// unrecognised data on it (never a LUKS volume with keyslots or tokens).
    #[arg(long)]
    pub wipe_existing: bool,
    /// Extend the ephemeral event into this PCR (8-14; not 15).
    #[arg(long, value_name = "PCR")]
    pub measure_pcr: Option<MeasurePcr>,
    /// Only probe the device and report the guard's decision.
    #[arg(long, conflicts_with = "format_only")]
    pub dry_run: bool,
    /// Write the LUKS2 header (the ephemeral marker) without opening it.
    #[arg(long)]
    pub format_only: bool,
    #[command(flatten)]
    pub tpm: TpmArgs,
}

impl EphemeralCmd {
    pub fn run(self) -> Result<()> {
        let out = ephemeral::run(&EphemeralArgs {
            device: self.device.clone(),
            name: self.name.0,
            settings: Settings {
                integrity: self.integrity,
                mkfs: self.mkfs,
                wipe_existing: self.wipe_existing,
                measure_pcr: self.measure_pcr.map(|p| p.0),
            },
            dry_run: self.dry_run,
            format_only: self.format_only,
            tpm: self.tpm.opts(),
            sys_tpm: SYS_TPM.into(),
            scratch: "/run".into(),
        })?;
        println!("{}", render(&self.device, &out));
        Ok(())
    }
}
