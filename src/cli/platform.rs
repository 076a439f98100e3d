//! `sealroot platform`: options, output, and the verdict as exit code.

use super::options::{EvidenceArgs, SnpCertArgs, SnpPolicyArgs, TpmArgs};
use crate::attest::check::first_failure;
use crate::cmd::platform::{self, PlatformArgs};
use crate::Result;
use clap::Args;
use std::path::PathBuf;

/// Show what the platform is (SEV-SNP, TDX, none), its report, and the
/// verdict against a policy given by options or by an enrolled blob.
#[derive(Debug, Args)]
pub struct PlatformCmd {
    #[arg(long)]
    pub json: bool,
    /// Judge against the requirement of this volume's sealroot token.
    #[arg(long, value_name = "PATH", conflicts_with = "require_snp")]
    pub device: Option<PathBuf>,
    /// Judge against the requirement in this blob file.
    #[arg(long, value_name = "PATH", conflicts_with = "require_snp")]
    pub blob_file: Option<PathBuf>,
    /// Which token, when the volume has several with a requirement.
    #[arg(long, value_name = "ID", requires = "device")]
    pub token: Option<u32>,
    #[command(flatten)]
    pub snp: SnpPolicyArgs,
    #[command(flatten)]
    pub evidence: EvidenceArgs,
    /// TDX guest device (detection only).
    #[arg(long, value_name = "PATH", default_value = "/dev/tdx_guest")]
    pub tdx_guest: PathBuf,
    #[command(flatten)]
    pub tpm: TpmArgs,
}

impl PlatformCmd {
    pub fn run(self) -> Result<()> {
        let tpm = self.tpm.opts();
        let opts = self.evidence.platform_opts(Some(self.tdx_guest))?;
        let (policy, policy_digest) = if self.snp.require_snp {
            // Certificates are given at run time here, not stored.
            let p = self
                .snp
                .requirement(&SnpCertArgs::default())?
                .expect("required");
            (Some((p, "command line".to_string())), [0; 32])
        } else if self.device.is_some() || self.blob_file.is_some() {
            let (p, origin, digest) = platform::policy_from_blob(
                self.device.as_deref(),
                self.blob_file.as_deref(),
                self.token,
            )?;
            (Some((p, origin)), digest)
        } else {
            (None, [0; 32])
        };
        let r = platform::run(&PlatformArgs {
            tpm,
            opts,
            policy,
            policy_digest,
        })?;
        super::print_report(&r, self.json, platform::render)?;
        match first_failure(&r.checks) {
            Some(f) if r.verdict == "fail" => Err(f.into()),
            _ => Ok(()),
        }
    }
}
