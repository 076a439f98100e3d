//! `sealroot policy sign|install|revoke|counter`: options and output.

use super::options::{PcrList, TpmArgs};
use crate::cmd::policy::{self, SignArgs};
use crate::Result;
use clap::{Args, Subcommand};
use std::io::Write;
use std::path::PathBuf;

/// `sealroot policy` subcommands.
#[derive(Debug, Subcommand)]
pub enum PolicyCmd {
    Sign(SignCmd),
    Install(InstallCmd),
    Revoke(RevokeCmd),
    Counter(CounterCmd),
}

/// Sign the PCR values of an image (for volumes enrolled with --policy-key).
#[derive(Debug, Args)]
pub struct SignCmd {
    /// ECDSA P-256 private key (PEM, PKCS#8 or SEC1).
    #[arg(long, value_name = "PRIV.pem")]
    pub key: PathBuf,
    /// Firmware PCRs the policy covers (not 15).
    #[arg(long, value_name = "LIST", default_value = "0,4,7,9")]
    pub pcrs: PcrList,
    /// PCR values: INDEX:HEX lines, or `sealroot predict --json` output.
    #[arg(long, value_name = "FILE", conflicts_with = "from_eventlog")]
    pub values: Option<PathBuf>,
    /// Replay this event log (with --initrd/--kernel substituted, as
    /// `sealroot predict` does) for the values.
    #[arg(long, value_name = "LOG")]
    pub from_eventlog: Option<PathBuf>,
    /// With --from-eventlog: the new initrd.
    #[arg(long, value_name = "FILE", requires = "from_eventlog")]
    pub initrd: Option<PathBuf>,
    /// With --from-eventlog: the new kernel PE image.
    #[arg(long, value_name = "FILE", requires = "from_eventlog")]
    pub kernel: Option<PathBuf>,
    /// QEMU -kernel/-initrd boot with this much RAM below 4 GiB (MiB).
    #[arg(long, value_name = "MIB", requires = "kernel")]
    pub qemu_direct_boot: Option<u64>,
    /// Policy version: machines whose revocation counter is above it refuse it.
    #[arg(long = "version", value_name = "N")]
    pub policy_version: u64,
    /// Free text stored with the policy (not signed), e.g. the image name.
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub description: String,
    #[arg(long, value_name = "SIG.json")]
    pub out: PathBuf,
}

/// Store a signed policy in the volume's LUKS2 header (a policy token).
#[derive(Debug, Args)]
pub struct InstallCmd {
    #[arg(long, value_name = "PATH")]
    pub device: PathBuf,
    /// The signed policy (from `policy sign`).
    #[arg(value_name = "SIG.json")]
    pub file: PathBuf,
    /// Remove the volume's other policy tokens once this one is stored.
    #[arg(long)]
    pub replace: bool,
}

/// Advance the TPM's revocation counter: policies signed with a lower
/// version stop working (there is no way back).
#[derive(Debug, Args)]
pub struct RevokeCmd {
    /// The lowest policy version that stays valid.
    #[arg(long, value_name = "N")]
    pub below: u64,
    #[command(flatten)]
    pub tpm: TpmArgs,
}

/// Print the TPM's revocation counter.
#[derive(Debug, Args)]
pub struct CounterCmd {
    #[command(flatten)]
    pub tpm: TpmArgs,
}

impl PolicyCmd {
    pub fn run(self) -> Result<()> {
        let mut stdout = std::io::stdout().lock();
        match self {
            PolicyCmd::Sign(c) => {
                let p = policy::sign(&SignArgs {
                    key: c.key,
                    pcrs: c.pcrs.0,
                    values: c.values,
                    from_eventlog: c.from_eventlog,
                    initrd: c.initrd,
                    kernel: c.kernel,
                    qemu_direct_boot_mib: c.qemu_direct_boot,
                    version: c.policy_version,
                    description: c.description,
                    out: c.out.clone(),
                })?;
                let _ = writeln!(
                    stdout,
                    "signed policy version {} for PCRs {} written to {}",
                    p.version,
                    super::join(&p.pcrs),
                    c.out.display()
                );
            }
            PolicyCmd::Install(c) => {
                let id = policy::install(&c.device, &c.file, c.replace)?;
                let _ = writeln!(stdout, "installed {} as token {id}", c.file.display());
            }
            PolicyCmd::Revoke(c) => {
                let n = policy::revoke(&c.tpm.opts(), c.below)?;
                let _ = writeln!(
                    stdout,
                    "revocation counter is {n}: policies with a version below {n} are refused"
                );
            }
            PolicyCmd::Counter(c) => {
                let n = policy::counter(&c.tpm.opts())?;
                let _ = writeln!(stdout, "{n}");
            }
        }
        Ok(())
    }
}
