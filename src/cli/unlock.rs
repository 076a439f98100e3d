//! `sealroot unlock`: options.

use super::options::{
    EvidenceArgs, FlagList, MappingName, PcrList, Seconds, SnpCertArgs, SnpPolicyArgs,
    TdxPolicyArgs, UnlockInputs,
};
use crate::cmd::steps::inputs::{read_public_key, PinSource};
use crate::cmd::steps::session::Session;
use crate::cmd::unlock::{self, UnlockArgs};
use crate::disk::luks::OpenOpts;
use crate::sys::files::read_key_file;
use crate::Result;
use clap::Args;
use std::path::PathBuf;

/// Unseal the key and open the volume (the boot path).
#[derive(Debug, Args)]
pub struct UnlockCmd {
    #[arg(long, value_name = "PATH")]
    pub device: PathBuf,
    /// The volume's detached LUKS2 header (crypttab's header=); --device
    /// is then its data device.
    #[arg(long, value_name = "PATH")]
    pub header: Option<PathBuf>,
    /// dm-crypt activation flags, crypttab's names, comma-separated:
    /// discard, same-cpu-crypt, submit-from-crypt-cpus, no-read-workqueue,
    /// no-write-workqueue, readonly.
    #[arg(long, value_name = "LIST", default_value = "")]
    pub flags: FlagList,
    /// Mapping name: /dev/mapper/NAME.
    #[arg(long)]
    pub name: MappingName,
    /// Verify the unsealed key against its keyslot; create no mapping.
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long, value_name = "PATH")]
    pub blob_file: Option<PathBuf>,
    #[arg(long, value_name = "FILE")]
    pub pin_file: Option<PathBuf>,
    /// Open with this passphrase/key file instead of the TPM (recovery;
    /// every byte counts, as cryptsetup's --key-file). PCR 15 is still
    /// locked when a TPM answers, so nothing can unseal afterwards.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["provision_key_file", "blob_file", "pin_file"])]
    pub key_file: Option<PathBuf>,
    /// First boot: when the volume has no token, open it with this key,
    /// enroll against this boot's PCRs and remove the key's keyslot.
    #[arg(long, value_name = "FILE")]
    pub provision_key_file: Option<PathBuf>,
    /// PCRs for first-boot enrollment.
    #[arg(long, value_name = "LIST", default_value = "0,4,7,9")]
    pub pcrs: PcrList,
    /// With --require-snp: a requirement checked before unsealing any
    /// token, and stored by first-boot enrollment.
    #[command(flatten)]
    pub snp: SnpPolicyArgs,
    /// With --require-tdx: a TDX requirement checked before unsealing any
    /// token, and stored by first-boot enrollment.
    #[command(flatten)]
    pub tdx: TdxPolicyArgs,
    #[command(flatten)]
    pub evidence: EvidenceArgs,
    /// First boot: enroll in signed-policy mode with this public key.
    #[arg(long, value_name = "PUB.pem", requires = "provision_key_file")]
    pub policy_key: Option<PathBuf>,
    /// Seconds from the start to the lock of PCR 15 (0-3600): past it,
    /// sealroot locks and fails (exit 14).
    #[arg(long, value_name = "SECS", default_value = "120")]
    pub deadline: Seconds,
    /// First boot: seal even to PCRs that were never extended (all zero;
    /// tests on a bare TPM).
    #[arg(long)]
    pub allow_zero_pcrs: bool,
    /// With no sealroot token on the volume, open it through its
    /// systemd-tpm2 token (unsealed before PCR 15 is measured; docs/systemd.md).
    #[arg(long)]
    pub systemd_token: bool,
    #[command(flatten)]
    pub inputs: UnlockInputs,
}

impl UnlockCmd {
    pub fn run(self) -> Result<()> {
        // Every way out from here locks PCR 15, failures included.
        let mut session = Session::new(self.inputs.tpm.opts(), self.deadline.duration());
        let policy_key = self
            .policy_key
            .as_deref()
            .map(read_public_key)
            .transpose()?;
        let mut platform = self.evidence.platform_opts(None)?;
        session.set_rtmr3(platform.rtmr3.clone());
        // Collateral is read at run time (--tdx-collateral); the time of
        // this boot is not a floor for later ones.
        platform.require_tdx = self.tdx.requirement(None, None)?;
        // Certificates are read at run time here (platform_opts).
        let require = self.snp.requirement(&SnpCertArgs::default())?;
        let i = self.inputs;
        let name = self.name.0;
        let luks = OpenOpts {
            header: self.header,
            flags: self.flags.0,
        };
        if let Some(f) = self.key_file {
            let key = read_key_file(&f)?;
            return unlock::with_key(&self.device, &luks, &name, self.dry_run, &key, &mut session)
                .map(|_| ());
        }
        let provision_key = self
            .provision_key_file
            .as_deref()
            .map(read_key_file)
            .transpose()?;
        let cmdline = i.cmdline.read(None)?;
        unlock::run(
            &UnlockArgs {
                device: self.device,
                luks,
                name,
                dry_run: self.dry_run,
                blob_file: self.blob_file,
                cmdline,
                pin: PinSource {
                    file: self.pin_file,
                },
                provision_key,
                pcrs: self.pcrs.0,
                allow_zero_pcrs: self.allow_zero_pcrs,
                platform,
                require,
                policy_key,
                policies: i.policies.search(),
                eventlog: i.eventlog.path(),
                systemd_tokens: self.systemd_token,
                rekey: false,
            },
            &mut session,
        )?;
        Ok(())
    }
}
