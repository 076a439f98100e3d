//! `sealroot adopt`: options and output.

use super::options::{CmdlineArgs, EventLogArgs, PcrList, RootVolumeArgs, TpmArgs};
use crate::cmd::adopt::{self, AdoptArgs};
use crate::cmd::steps::inputs::{read_public_key, PinSource};
use crate::sys::files::write_new_private;
use crate::{Error, Result};
use clap::Args;
use std::io::Write;
use std::path::PathBuf;

/// Add a sealroot token to a volume enrolled with systemd-cryptenroll,
/// through its systemd-tpm2 token (docs/systemd.md).
#[derive(Debug, Args)]
pub struct AdoptCmd {
    #[arg(long, value_name = "PATH")]
    pub device: PathBuf,
    /// The systemd-tpm2 token to adopt (default: the volume's only one).
    #[arg(long, value_name = "ID")]
    pub token: Option<u32>,
    /// The systemd token's PIN, from this file (else $SEALROOT_PIN or a
    /// prompt), for a token enrolled with --tpm2-with-pin=yes.
    #[arg(long, value_name = "FILE")]
    pub systemd_pin_file: Option<PathBuf>,
    /// The PCR signature JSON for a systemd token with a signed policy
    /// (default: systemd's tpm2-pcr-signature.json search).
    #[arg(long, value_name = "FILE")]
    pub tpm2_signature: Option<PathBuf>,
    /// Comma-separated firmware PCRs of the new sealroot token (sealroot's
    /// PCR 15 is always added).
    #[arg(long, value_name = "LIST", default_value = "0,4,7,9")]
    pub pcrs: PcrList,
    /// The new sealroot token also requires a PIN.
    #[arg(long)]
    pub pin: bool,
    /// Read the new PIN from this file instead of $SEALROOT_PIN or a prompt.
    #[arg(long, value_name = "FILE", requires = "pin")]
    pub pin_file: Option<PathBuf>,
    /// Seal the new token in signed-policy mode to this ECDSA P-256 key.
    #[arg(long, value_name = "PUB.pem")]
    pub policy_key: Option<PathBuf>,
    /// Do not create a recovery key.
    #[arg(long)]
    pub no_recovery_key: bool,
    /// Write the recovery key to this new file (mode 0600) instead of stdout.
    #[arg(long, value_name = "PATH", conflicts_with = "no_recovery_key")]
    pub recovery_key_file: Option<PathBuf>,
    /// Remove the systemd-tpm2 token and its keyslot once the sealroot
    /// keyslot is proven to give the same volume key.
    #[arg(long)]
    pub remove_systemd_token: bool,
    /// Predict sealroot's PCR for this kernel command line instead of the
    /// one in --cmdline-file (for image builds).
    #[arg(long, value_name = "STRING")]
    pub boot_cmdline: Option<String>,
    #[command(flatten)]
    pub eventlog: EventLogArgs,
    #[command(flatten)]
    pub tpm: TpmArgs,
    #[command(flatten)]
    pub cmdline: CmdlineArgs,
    /// Seal even to firmware PCRs that were never extended (tests on a
    /// bare TPM).
    #[arg(long)]
    pub allow_zero_pcrs: bool,
    #[command(flatten)]
    pub root: RootVolumeArgs,
    /// The image's crypttab, read as `boot` reads it to warn when its boot
    /// could not unseal the new token (a missing file is not checked).
    #[arg(long, value_name = "PATH", default_value = "/etc/crypttab")]
    pub crypttab: PathBuf,
}

impl AdoptCmd {
    pub fn run(self) -> Result<()> {
        let authorize = self
            .policy_key
            .as_deref()
            .map(read_public_key)
            .transpose()?;
        if let Some(f) = &self.recovery_key_file {
            if f.exists() {
                return Err(Error::Usage(format!(
                    "{}: recovery key file already exists; refusing to overwrite it",
                    f.display()
                )));
            }
        }
        let cmdline = self.cmdline.read(self.boot_cmdline)?;
        let pin = match self.pin {
            true => Some(
                PinSource {
                    file: self.pin_file,
                }
                .get("sealroot: new PIN: ", None)?,
            ),
            false => None,
        };
        let root_volume = self.root.primary()?;
        let out = adopt::run(&AdoptArgs {
            device: self.device.clone(),
            token: self.token,
            systemd_pin: PinSource {
                file: self.systemd_pin_file,
            },
            signature: self.tpm2_signature,
            pcrs: self.pcrs.0,
            pin,
            authorize,
            recovery: !self.no_recovery_key,
            cmdline,
            tpm: self.tpm.opts(),
            eventlog: self.eventlog.path(),
            allow_zero_pcrs: self.allow_zero_pcrs,
            remove_systemd_token: self.remove_systemd_token,
            root_volume,
            crypttab: self.crypttab,
        })?;
        let a = &out.added;
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(
            stdout,
            "adopted {} from systemd-tpm2 token {} (keyslot {}): keyslot {}{}, PCRs {} (sha256){}{}",
            self.device.display(),
            out.from.0,
            out.from.1,
            a.keyslot,
            a.token.map(|t| format!(", token {t}")).unwrap_or_default(),
            super::join(&a.blob.pcrs),
            if a.blob.pin { ", PIN" } else { "" },
            if out.removed {
                "; the systemd-tpm2 token and its keyslot were removed"
            } else {
                "; the systemd-tpm2 token is kept"
            }
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
