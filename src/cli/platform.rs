//! `sealroot platform`: options, output, and the verdict as exit code.

use super::options::{EvidenceArgs, SnpCertArgs, SnpPolicyArgs, TdxPolicyArgs, TpmArgs};
use crate::attest::check::first_failure;
use crate::attest::tdx_assess::time_or_now;
use crate::attest::tdx_report::MAX_QUOTE_LEN;
use crate::cmd::platform::{self, PlatformArgs, Requirement};
use crate::{Error, Result};
use clap::Args;
use std::path::{Path, PathBuf};

/// Show what the platform is (SEV-SNP, TDX, none), its report, and the
/// verdict against a policy given by options or by an enrolled blob.
#[derive(Debug, Args)]
pub struct PlatformCmd {
    #[arg(long)]
    pub json: bool,
    /// Judge against the requirement of this volume's sealroot token.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["require_snp", "require_tdx"])]
    pub device: Option<PathBuf>,
    /// Judge against the requirement in this blob file.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["require_snp", "require_tdx"])]
    pub blob_file: Option<PathBuf>,
    /// Which token, when the volume has several with a requirement.
    #[arg(long, value_name = "ID", requires = "device")]
    pub token: Option<u32>,
    #[command(flatten)]
    pub snp: SnpPolicyArgs,
    #[command(flatten)]
    pub tdx: TdxPolicyArgs,
    #[command(flatten)]
    pub evidence: EvidenceArgs,
    /// TDX guest device (detection only).
    #[arg(long, value_name = "PATH", default_value = "/dev/tdx_guest")]
    pub tdx_guest: PathBuf,
    /// Verify this TD quote file offline (with --tdx-collateral) instead of
    /// asking the platform; exits 0 only when it verifies.
    #[arg(
        long,
        value_name = "FILE",
        requires = "tdx_collateral_file",
        conflicts_with = "hcl_report"
    )]
    pub tdx_quote: Option<PathBuf>,
    /// Judge this captured HCL report file (SEV-SNP or TDX) instead of the
    /// vTPM's.
    #[arg(long, value_name = "FILE")]
    pub hcl_report: Option<PathBuf>,
    /// The time to verify a TD quote at (RFC 3339 UTC, e.g.
    /// 2025-06-25T00:00:00Z); default: the clock.
    #[arg(long, value_name = "RFC3339")]
    pub time: Option<String>,
    #[command(flatten)]
    pub tpm: TpmArgs,
}

fn read_limited(f: &Path, max: usize) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(f).map_err(|e| Error::io(f, e))?;
    if meta.len() > max as u64 {
        return Err(Error::Usage(format!(
            "{}: {} bytes, more than {max}",
            f.display(),
            meta.len()
        )));
    }
    std::fs::read(f).map_err(|e| Error::io(f, e))
}

/// A requirement and where it came from.
type Judged = (Requirement, String);

impl PlatformCmd {
    fn policy(&self) -> Result<(Option<Judged>, [u8; 32])> {
        Ok(if self.snp.require_snp {
            // Certificates are given at run time here, not stored.
            let p = self
                .snp
                .requirement(&SnpCertArgs::default())?
                .expect("required");
            (
                Some((Requirement::Snp(p), "command line".to_string())),
                [0; 32],
            )
        } else if let Some(mut p) = self.tdx.requirement(None, None)? {
            // A quote file is the evidence judged, unless told otherwise.
            if self.tdx_quote.is_some() && self.tdx.tdx_evidence.is_none() {
                p.evidence = crate::attest::tdx_requirement::TdxEvidence::TdQuote;
            }
            (
                Some((Requirement::Tdx(Box::new(p)), "command line".to_string())),
                [0; 32],
            )
        } else if self.device.is_some() || self.blob_file.is_some() {
            let (p, origin, digest) = platform::policy_from_blob(
                self.device.as_deref(),
                self.blob_file.as_deref(),
                self.token,
            )?;
            (Some((p, origin)), digest)
        } else {
            (None, [0; 32])
        })
    }

    pub fn run(self) -> Result<()> {
        let tpm = self.tpm.opts();
        let mut opts = self.evidence.platform_opts(Some(self.tdx_guest.clone()))?;
        opts.time = self
            .time
            .as_deref()
            .map(|t| time_or_now(Some(t)).map_err(|e| Error::Usage(format!("--time: {e}"))))
            .transpose()?;
        let (policy, policy_digest) = self.policy()?;
        let r = if let Some(q) = &self.tdx_quote {
            let bytes = read_limited(q, MAX_QUOTE_LEN)?;
            platform::run_quote_file(&bytes, policy.as_ref(), &opts)
        } else if let Some(h) = &self.hcl_report {
            let bytes = read_limited(h, crate::attest::azure_hcl::MAX_HCL_LEN)?;
            platform::run_hcl_file(&bytes, policy.as_ref(), &opts)
        } else {
            platform::run(&PlatformArgs {
                tpm,
                opts,
                policy,
                policy_digest,
            })?
        };
        super::print_report(&r, self.json, platform::render)?;
        match first_failure(&r.checks) {
            Some(f) if r.verdict == "fail" => Err(f.into()),
            None if r.verdict == "fail" => Err(Error::Platform(
                "quote check failed: the TD quote was not verified".into(),
            )),
            _ => Ok(()),
        }
    }
}
