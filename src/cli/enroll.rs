//! `sealroot enroll`: options and output.

use super::options::{
    CmdlineArgs, EventLogArgs, PcrList, RootVolumeArgs, SnpCertArgs, SnpPolicyArgs,
    TdxCollateralArgs, TdxPolicyArgs, TpmArgs,
};
use crate::cmd::enroll::{self, EnrollArgs};
use crate::cmd::steps::inputs::{read_public_key, PinSource};
use crate::pcr::BANK_SHA256;
use crate::sys::files::{read_key_file, write_new_private};
use crate::{Error, Result};
use clap::Args;
use std::io::Write;
use std::path::PathBuf;

/// Add a TPM-sealed keyslot (and a recovery key) to a LUKS2 volume.
#[derive(Debug, Args)]
pub struct EnrollCmd {
    #[arg(long, value_name = "PATH")]
    pub device: PathBuf,
    /// The volume's detached LUKS2 header (crypttab's header=); --device
    /// is then its data device.
    #[arg(long, value_name = "PATH")]
    pub header: Option<PathBuf>,
    /// Existing passphrase/key file that opens the volume (every byte counts).
    #[arg(long, value_name = "FILE")]
    pub unlock_key_file: PathBuf,
    /// Comma-separated firmware PCRs (sealroot's PCR 15 is always added).
    #[arg(long, value_name = "LIST", default_value = "0,4,7,9")]
    pub pcrs: PcrList,
    /// PCR bank (only sha256).
    #[arg(long, default_value = "sha256")]
    pub bank: String,
    /// Also require a PIN (PolicyAuthValue; subject to DA lockout).
    #[arg(long)]
    pub pin: bool,
    /// Read the PIN from this file instead of $SEALROOT_PIN or a prompt.
    #[arg(long, value_name = "FILE")]
    pub pin_file: Option<PathBuf>,
    /// Store the blob in this file instead of a LUKS2 token.
    #[arg(long, value_name = "PATH")]
    pub blob_file: Option<PathBuf>,
    /// Do not create a recovery key.
    #[arg(long)]
    pub no_recovery_key: bool,
    /// Write the recovery key to this new file (mode 0600) instead of stdout.
    #[arg(long, value_name = "PATH", conflicts_with = "no_recovery_key")]
    pub recovery_key_file: Option<PathBuf>,
    /// Predict sealroot's PCR for this kernel command line instead of
    /// the one in --cmdline-file (for image builds).
    #[arg(long, value_name = "STRING")]
    pub boot_cmdline: Option<String>,
    /// Seal to any firmware PCR state signed by this ECDSA P-256 key
    /// (PEM public key) plus sealroot's PCR 15, instead of to today's
    /// values of --pcrs. docs/signed-policy.md.
    #[arg(long, value_name = "PUB.pem")]
    pub policy_key: Option<PathBuf>,
    #[command(flatten)]
    pub eventlog: EventLogArgs,
    #[command(flatten)]
    pub snp: SnpPolicyArgs,
    #[command(flatten)]
    pub snp_certs: SnpCertArgs,
    #[command(flatten)]
    pub tdx: TdxPolicyArgs,
    #[command(flatten)]
    pub tdx_collateral: TdxCollateralArgs,
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
    /// The image's crypttab, read as `boot` reads it to warn when its
    /// boot could not unseal this token (a missing file is not checked).
    #[arg(long, value_name = "PATH", default_value = "/etc/crypttab")]
    pub crypttab: PathBuf,
}

impl EnrollCmd {
    pub fn run(self) -> Result<()> {
        // Every option is checked before anything is touched.
        let authorize = self
            .policy_key
            .as_deref()
            .map(read_public_key)
            .transpose()?;
        if self.bank != BANK_SHA256 {
            return Err(Error::Usage(format!(
                "--bank {:?}: only sha256 is supported",
                self.bank
            )));
        }
        let platform = self.snp.requirement(&self.snp_certs)?;
        if let Some(p) = &platform {
            if p.vceks.is_empty() && !p.unsigned_ok {
                log::warn!(
                    "--require-snp without --snp-vcek: unlock will need --snp-vcek files for the report's chip and TCB"
                );
            }
            if p.measurements.is_empty() {
                log::warn!(
                    "--require-snp without --snp-measurement: any launch measurement will be accepted"
                );
            }
        }
        // The enrollment time is the TDX verifier's earliest "now".
        let enrolled_at = crate::attest::tdx_assess::time_or_now(None).map_err(Error::Usage)?;
        let tdx = self
            .tdx
            .requirement(self.tdx_collateral.read()?, Some(enrolled_at))?;
        if let Some(t) = &tdx {
            if t.mrtds.is_empty() {
                log::warn!("--require-tdx without --tdx-mrtd: any MRTD will be accepted");
            }
        }
        if self.pin_file.is_some() && !self.pin {
            return Err(Error::Usage("--pin-file needs --pin".into()));
        }
        if let Some(f) = &self.recovery_key_file {
            if f.exists() {
                return Err(Error::Usage(format!(
                    "{}: recovery key file already exists; refusing to overwrite it",
                    f.display()
                )));
            }
        }
        let cmdline = self.cmdline.read(self.boot_cmdline)?;
        let unlock_key = read_key_file(&self.unlock_key_file)?;
        let root_volume = self.root.primary()?;
        let pin = if self.pin {
            let src = PinSource {
                file: self.pin_file,
            };
            Some(src.get("sealroot: new PIN: ", None)?)
        } else {
            None
        };
        let out = enroll::run(&EnrollArgs {
            device: self.device.clone(),
            header: self.header.clone(),
            unlock_key,
            pcrs: self.pcrs.0,
            pin,
            blob_file: self.blob_file,
            recovery: !self.no_recovery_key,
            cmdline,
            tpm: self.tpm.opts(),
            platform,
            tdx,
            authorize,
            eventlog: self.eventlog.path(),
            allow_zero_pcrs: self.allow_zero_pcrs,
            root_volume,
            crypttab: self.crypttab,
        })?;
        let a = &out.added;
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(
            stdout,
            "enrolled {}: keyslot {}{}, PCRs {} (sha256){}",
            self.device.display(),
            a.keyslot,
            a.token.map(|t| format!(", token {t}")).unwrap_or_default(),
            super::join(&a.blob.pcrs),
            if a.blob.pin { ", PIN" } else { "" }
        );
        let Some((rk, slot)) = &out.recovery else {
            return Ok(());
        };
        match &self.recovery_key_file {
            Some(f) => {
                // No line ending: the file is the key, byte for byte, as
                // cryptsetup's --key-file reads it.
                write_new_private(f, rk.as_str().as_bytes())?;
                let _ = writeln!(
                    stdout,
                    "recovery key (keyslot {slot}) written to {}",
                    f.display()
                );
            }
            None => {
                let _ = writeln!(
                    stdout,
                    "\nRecovery key (keyslot {slot}). It is shown only once; store it somewhere safe:\n\n    {}\n",
                    rk.as_str()
                );
            }
        }
        Ok(())
    }
}
