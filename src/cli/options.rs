//! Option groups several subcommands share, and the value types that check
//! one kind of option in one place: clap runs their `FromStr` while it
//! parses, so a bad value is a usage error (exit 2) naming the option
//! before anything is touched.

use crate::attest::evidence::Certs;
use crate::attest::snp_report::{parse_guest_policy_names, validate_certs};
use crate::attest::snp_requirement::{
    parse_measurement, parse_min_tcb, SnpRequirement, MAX_CERTS, MAX_MEASUREMENTS,
};
use crate::attest::tdx_quote::{StalePolicy, TcbStatuses};
use crate::attest::tdx_requirement::{
    parse_mr, parse_rtmr, parse_xfam, TdxEvidence, TdxRequirement, MAX_MRTDS,
};
use crate::cmd::steps::bootset::{primary_of, Primary};
use crate::cmd::steps::evidence::{read_cert_files, read_collateral, PlatformOpts};
use crate::cmd::steps::signed::PolicySearch;
use crate::cmd::steps::TpmOpts;
use crate::formats::bootcfg;
use crate::sys::files::{read_cmdline, read_key_file};
use crate::{Error, Result};
use clap::Args;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// A device-mapper name: `/dev/mapper/NAME` ([`bootcfg::mapping_name`]).
#[derive(Debug, Clone)]
pub struct MappingName(pub String);

impl FromStr for MappingName {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        bootcfg::mapping_name(s).map(MappingName)
    }
}

/// A timeout: seconds from 0 to 3600 ([`bootcfg::seconds`]).
#[derive(Debug, Clone, Copy)]
pub struct Seconds(pub f64);

impl FromStr for Seconds {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        bootcfg::seconds(s).map(Seconds)
    }
}

impl Seconds {
    pub fn duration(self) -> Duration {
        Duration::from_secs_f64(self.0)
    }
}

/// A PCR list, `0,4,7,9` or with ranges `0-7` ([`crate::pcr::parse_list`]):
/// sorted, each PCR once.
#[derive(Debug, Clone)]
pub struct PcrList(pub Vec<u32>);

/// dm-crypt activation flags, by their crypttab names, comma-separated
/// (`discard,no-read-workqueue`): [`bootcfg::ActivationFlags`].
#[derive(Debug, Clone, Copy, Default)]
pub struct FlagList(pub crate::formats::bootcfg::ActivationFlags);

impl FromStr for FlagList {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        crate::formats::bootcfg::ActivationFlags::parse_list(s).map(FlagList)
    }
}

impl FromStr for PcrList {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        crate::pcr::parse_list(s).map(PcrList)
    }
}

/// The PCR an ephemeral event is measured into: 8 to 14
/// ([`bootcfg::measure_pcr`]).
#[derive(Debug, Clone, Copy)]
pub struct MeasurePcr(pub u32);

impl FromStr for MeasurePcr {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        bootcfg::measure_pcr(s).map(MeasurePcr)
    }
}

/// A dm-verity root hash: 64 hex digits ([`bootcfg::parse_root_hash`]).
#[derive(Debug, Clone)]
pub struct RootHash(pub Vec<u8>);

impl FromStr for RootHash {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        bootcfg::parse_root_hash(s).map(RootHash)
    }
}

#[derive(Debug, Args, Clone)]
pub struct TpmArgs {
    /// TPM TCTI (else $TPM2TOOLS_TCTI, else device:/dev/tpmrm0).
    #[arg(long, value_name = "SPEC")]
    pub tcti: Option<String>,
    /// Seconds to wait for the TPM to appear/answer (0-3600).
    #[arg(long, value_name = "SECS", default_value = "15")]
    pub tpm_timeout: Seconds,
}

impl TpmArgs {
    pub fn opts(&self) -> TpmOpts {
        TpmOpts {
            tcti: crate::tpm::tcti_spec(self.tcti.as_deref()),
            timeout: self.tpm_timeout.duration(),
        }
    }
}

#[derive(Debug, Args, Clone)]
pub struct CmdlineArgs {
    /// Read the kernel command line to measure from this file.
    #[arg(long, value_name = "PATH", default_value = "/proc/cmdline")]
    pub cmdline_file: PathBuf,
}

impl CmdlineArgs {
    /// `given` (`--boot-cmdline`), else the contents of `--cmdline-file`.
    pub fn read(&self, given: Option<String>) -> Result<String> {
        match given {
            Some(s) => Ok(s),
            None => read_cmdline(&self.cmdline_file),
        }
    }
}

/// The SEV-SNP requirement `enroll` stores in the blob (and `platform`
/// judges against). See docs/platform.md.
#[derive(Debug, Args, Clone, Default)]
pub struct SnpPolicyArgs {
    /// Require a verified SEV-SNP platform; `unlock` checks it before unsealing.
    #[arg(long)]
    pub require_snp: bool,
    /// Allowed launch measurement (96 hex digits); repeat for several (default: any).
    #[arg(long = "snp-measurement", value_name = "HEX", requires = "require_snp")]
    pub snp_measurements: Vec<String>,
    /// Minimum reported TCB, e.g. bootloader=3,tee=0,snp=8,microcode=115 (fmc=N on Turin).
    #[arg(long, value_name = "SPEC", requires = "require_snp")]
    pub snp_min_tcb: Option<String>,
    /// Guest policy flags that must be set (comma-separated, e.g. single-socket).
    #[arg(long, value_name = "FLAGS", requires = "require_snp")]
    pub snp_policy_require: Option<String>,
    /// Guest policy flags that must be clear (e.g. smt,migrate-ma); debug always is.
    #[arg(long, value_name = "FLAGS", requires = "require_snp")]
    pub snp_policy_forbid: Option<String>,
    /// Accept a report whose signature cannot be checked because no VCEK for
    /// its chip and TCB is available (one that is available must verify).
    #[arg(long, requires = "require_snp")]
    pub snp_unsigned_ok: bool,
}

impl SnpPolicyArgs {
    /// The SEV-SNP requirement the options describe, with the certificates
    /// of `certs` stored in it (checked to chain to AMD now, so a wrong file
    /// fails here). `None` without `--require-snp`.
    ///
    /// Errors: [`Error::Usage`] naming the option; [`Error::Io`] for a
    /// certificate file.
    pub fn requirement(&self, certs: &SnpCertArgs) -> Result<Option<SnpRequirement>> {
        if !self.require_snp {
            if !certs.snp_vceks.is_empty() || !certs.snp_chains.is_empty() {
                return Err(Error::Usage(
                    "--snp-vcek/--snp-chain are stored in the blob only with --require-snp".into(),
                ));
            }
            return Ok(None);
        }
        let usage = |flag: &str, e: String| Error::Usage(format!("{flag}: {e}"));
        let flags = |v: &Option<String>, flag: &str| -> Result<u64> {
            v.as_deref()
                .map(parse_guest_policy_names)
                .transpose()
                .map_err(|e| usage(flag, e))
                .map(Option::unwrap_or_default)
        };
        let Certs { vceks, ca } = certs.read()?;
        let r = SnpRequirement {
            measurements: self
                .snp_measurements
                .iter()
                .map(|m| parse_measurement(m))
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| usage("--snp-measurement", e))?,
            min_tcb: self
                .snp_min_tcb
                .as_deref()
                .map(parse_min_tcb)
                .transpose()
                .map_err(|e| usage("--snp-min-tcb", e))?,
            guest_policy_require: flags(&self.snp_policy_require, "--snp-policy-require")?,
            guest_policy_forbid: flags(&self.snp_policy_forbid, "--snp-policy-forbid")?,
            unsigned_ok: self.snp_unsigned_ok,
            vceks,
            ca,
        };
        if r.measurements.len() > MAX_MEASUREMENTS {
            return Err(usage(
                "--snp-measurement",
                format!("at most {MAX_MEASUREMENTS}"),
            ));
        }
        if r.vceks.len() + r.ca.len() > 2 * MAX_CERTS {
            return Err(Error::Usage("too many certificates".into()));
        }
        r.validate().map_err(Error::Usage)?;
        validate_certs(&r.vceks, &r.ca).map_err(|e| usage("--snp-vcek/--snp-chain", e))?;
        Ok(Some(r))
    }
}

/// The TDX requirement `enroll` stores in the blob (and `platform` judges
/// against). See docs/platform.md#tdx.
#[derive(Debug, Args, Clone, Default)]
pub struct TdxPolicyArgs {
    /// Require a verified Intel TDX platform; `unlock` checks it before unsealing.
    #[arg(long, conflicts_with = "require_snp")]
    pub require_tdx: bool,
    /// The evidence that satisfies the requirement: `td-quote` (a TD quote
    /// verified offline: bare TDX guests, whose vTPM the host owns) or
    /// `azure-hcl` (Azure's HCL report in the paravisor's vTPM). Default:
    /// `td-quote` when `--tdx-collateral` is given, else `azure-hcl`.
    #[arg(long, value_name = "KIND", requires = "require_tdx")]
    pub tdx_evidence: Option<String>,
    /// Allowed MRTD (96 hex digits); repeat for several (default: any).
    #[arg(long = "tdx-mrtd", value_name = "HEX", requires = "require_tdx")]
    pub tdx_mrtds: Vec<String>,
    /// Required RTMR value, N=HEX with N 0..3; repeat for several RTMRs.
    #[arg(long = "tdx-rtmr", value_name = "N=HEX", requires = "require_tdx")]
    pub tdx_rtmrs: Vec<String>,
    /// Required MRCONFIGID (96 hex digits).
    #[arg(long, value_name = "HEX", requires = "require_tdx")]
    pub tdx_mrconfigid: Option<String>,
    /// Required XFAM (hex).
    #[arg(long, value_name = "HEX", requires = "require_tdx")]
    pub tdx_xfam: Option<String>,
    /// TCB statuses a TD quote may have, comma-separated (default UpToDate;
    /// e.g. UpToDate,SWHardeningNeeded).
    #[arg(long, value_name = "LIST", requires = "require_tdx")]
    pub tdx_tcb_status: Option<String>,
    /// Collateral whose nextUpdate has passed: refuse (default) or warn.
    #[arg(
        long,
        value_name = "POLICY",
        default_value = "refuse",
        requires = "require_tdx"
    )]
    pub tdx_stale: String,
}

impl TdxPolicyArgs {
    /// The TDX requirement the options describe (with `collateral` and
    /// `not_before`, unix seconds, stored in it). `None` without
    /// `--require-tdx`.
    ///
    /// Errors: [`Error::Usage`] naming the option.
    pub fn requirement(
        &self,
        collateral: Option<String>,
        not_before: Option<u64>,
    ) -> Result<Option<TdxRequirement>> {
        if !self.require_tdx {
            return Ok(None);
        }
        let usage = |flag: &str, e: String| Error::Usage(format!("{flag}: {e}"));
        if self.tdx_mrtds.len() > MAX_MRTDS {
            return Err(usage("--tdx-mrtd", format!("at most {MAX_MRTDS}")));
        }
        let mut rtmrs = [None; 4];
        for r in &self.tdx_rtmrs {
            let (n, v) = parse_rtmr(r).map_err(|e| usage("--tdx-rtmr", e))?;
            if rtmrs[n].replace(v).is_some() {
                return Err(usage("--tdx-rtmr", format!("RTMR{n} given twice")));
            }
        }
        let evidence = match &self.tdx_evidence {
            Some(e) => TdxEvidence::parse(e).map_err(|e| usage("--tdx-evidence", e))?,
            None if collateral.is_some() => TdxEvidence::TdQuote,
            None => TdxEvidence::AzureHcl,
        };
        Ok(Some(TdxRequirement {
            evidence,
            mrtds: self
                .tdx_mrtds
                .iter()
                .map(|m| parse_mr(m))
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| usage("--tdx-mrtd", e))?,
            rtmrs,
            mrconfigid: self
                .tdx_mrconfigid
                .as_deref()
                .map(parse_mr)
                .transpose()
                .map_err(|e| usage("--tdx-mrconfigid", e))?,
            xfam: self
                .tdx_xfam
                .as_deref()
                .map(parse_xfam)
                .transpose()
                .map_err(|e| usage("--tdx-xfam", e))?,
            tcb_statuses: match &self.tdx_tcb_status {
                None => TcbStatuses::default(),
                Some(s) => TcbStatuses::parse(s).map_err(|e| usage("--tdx-tcb-status", e))?,
            },
            stale: StalePolicy::parse(&self.tdx_stale).map_err(|e| usage("--tdx-stale", e))?,
            not_before,
            collateral,
        }))
    }
}

/// TDX collateral `enroll` stores in the blob.
#[derive(Debug, Args, Clone, Default)]
pub struct TdxCollateralArgs {
    /// TDX quote collateral (JSON: TCB info, QE identity, CRLs and their
    /// issuer chains), stored in the blob for bare TDX guests.
    #[arg(long, value_name = "FILE", requires = "require_tdx")]
    pub tdx_collateral: Option<PathBuf>,
}

impl TdxCollateralArgs {
    /// The collateral file, checked and re-serialised.
    ///
    /// Errors: [`Error::Io`], or [`Error::Usage`] naming the file.
    pub fn read(&self) -> Result<Option<String>> {
        self.tdx_collateral
            .as_deref()
            .map(|f| read_collateral(f).map(|c| c.to_json()))
            .transpose()
    }
}

/// AMD certificates: stored in the blob by `enroll`, read at run time by
/// `unlock` and `platform`.
#[derive(Debug, Args, Clone, Default)]
pub struct SnpCertArgs {
    /// VCEK certificate (DER or PEM, from AMD KDS); repeat for several chips/TCBs.
    #[arg(long = "snp-vcek", value_name = "FILE")]
    pub snp_vceks: Vec<PathBuf>,
    /// ASK (and ARK) certificates (PEM, KDS `cert_chain`); the ARK is pinned.
    #[arg(long = "snp-chain", value_name = "FILE")]
    pub snp_chains: Vec<PathBuf>,
}

impl SnpCertArgs {
    /// The certificate files, read and converted to DER.
    ///
    /// Errors: [`Error::Io`], or [`Error::Usage`] for a file that is not a
    /// certificate.
    pub fn read(&self) -> Result<Certs> {
        Ok(Certs {
            vceks: read_cert_files(&self.snp_vceks)?,
            ca: read_cert_files(&self.snp_chains)?,
        })
    }
}

/// Where platform evidence comes from at run time (`unlock`, `boot`,
/// `platform`).
#[derive(Debug, Args, Clone)]
pub struct EvidenceArgs {
    #[command(flatten)]
    pub certs: SnpCertArgs,
    /// SNP guest device (bare SEV-SNP guests without an HCL report).
    #[arg(long, value_name = "PATH", default_value = "/dev/sev-guest")]
    pub sev_guest: PathBuf,
    /// TDX quote collateral (JSON), preferred to the one in the blob.
    #[arg(long = "tdx-collateral", value_name = "FILE")]
    pub tdx_collateral_file: Option<PathBuf>,
    /// configfs-tsm report directory (bare TDX guests' quotes).
    #[arg(long, value_name = "PATH", default_value = crate::sys::tsm::DEFAULT_TSM_ROOT)]
    pub tsm_root: PathBuf,
    /// The RTMR sysfs attribute the lock event is mirrored into on TDX.
    #[arg(long, value_name = "PATH", default_value = crate::sys::tsm::DEFAULT_RTMR3)]
    pub tdx_rtmr3: PathBuf,
}

impl EvidenceArgs {
    /// Where to look for evidence, with the certificate files read now.
    ///
    /// Errors: [`Error::Io`] or [`Error::Usage`] for a certificate file.
    pub fn platform_opts(&self, tdx_guest: Option<PathBuf>) -> Result<PlatformOpts> {
        let mut o = PlatformOpts {
            sev_guest: self.sev_guest.clone(),
            ..PlatformOpts::default()
        };
        if let Some(t) = tdx_guest {
            o.tdx_guest = t;
        }
        o.certs = self.certs.read()?;
        o.tsm_root = self.tsm_root.clone();
        o.rtmr3 = self.tdx_rtmr3.clone();
        o.tdx_collateral = self
            .tdx_collateral_file
            .as_deref()
            .map(read_collateral)
            .transpose()?;
        Ok(o)
    }
}

/// What the unlock path reads besides the volume (`unlock`, `boot`,
/// `status`): signed policies, the event log, the TPM, the command line.
#[derive(Debug, Args, Clone)]
pub struct UnlockInputs {
    #[command(flatten)]
    pub policies: PolicySearchArgs,
    #[command(flatten)]
    pub eventlog: EventLogArgs,
    #[command(flatten)]
    pub tpm: TpmArgs,
    #[command(flatten)]
    pub cmdline: CmdlineArgs,
}

/// Where signed policies are looked for (signed-policy volumes), after
/// the volume's own policy tokens come the directory's `*.json` files.
#[derive(Debug, Args, Clone)]
pub struct PolicySearchArgs {
    /// A signed policy file, tried first (repeat for several).
    #[arg(long = "policy-file", value_name = "FILE")]
    pub policy_files: Vec<PathBuf>,
    /// Directory of signed policy files, tried after the volume's policy tokens.
    #[arg(long, value_name = "DIR", default_value = "/etc/sealroot/policies")]
    pub policy_dir: PathBuf,
    /// systemd-tpm2 tokens with a signed PCR policy: the PCR signature JSON
    /// (default: tpm2-pcr-signature.json in /etc/systemd, /run/systemd,
    /// /usr/local/lib/systemd, /usr/lib/systemd, as systemd looks).
    #[arg(long, value_name = "FILE")]
    pub tpm2_signature: Option<PathBuf>,
}

impl PolicySearchArgs {
    pub fn search(&self) -> PolicySearch {
        PolicySearch {
            files: self.policy_files.clone(),
            dir: Some(self.policy_dir.clone()),
            systemd_signature: self.tpm2_signature.clone(),
        }
    }
}

/// The event log used to explain a PCR mismatch.
#[derive(Debug, Args, Clone)]
pub struct EventLogArgs {
    /// TCG2 event log of this boot, to name the event behind a mismatch
    /// ("none" or "" for none).
    #[arg(
        long,
        value_name = "PATH",
        default_value = "/sys/kernel/security/tpm0/binary_bios_measurements"
    )]
    pub eventlog: String,
}

impl EventLogArgs {
    pub fn path(&self) -> Option<PathBuf> {
        match self.eventlog.as_str() {
            "" | "none" => None,
            p => Some(PathBuf::from(p)),
        }
    }
}

/// The primary volume of the boot that opens this one, for a data volume
/// (docs/design.md#several-volumes-in-one-boot): `enroll`, `reseal` and
/// `adopt` take the same pair.
#[derive(Debug, Args, Clone)]
pub struct RootVolumeArgs {
    /// For a data volume opened in the same boot as another (the root):
    /// that primary volume's device. The token then opens only after that
    /// very volume (`reseal` keeps the old token's boot without it, except
    /// with --unlock-key-file).
    #[arg(long, value_name = "PATH", requires = "root_key_file")]
    pub root_volume: Option<PathBuf>,
    /// A passphrase or recovery key of the --root-volume (its volume key's
    /// fingerprint is what the boot measures).
    #[arg(long, value_name = "FILE", requires = "root_volume")]
    pub root_key_file: Option<PathBuf>,
}

impl RootVolumeArgs {
    /// The primary volume, its key derived with the key file
    /// ([`primary_of`]); `None` without --root-volume.
    ///
    /// Errors: those of reading the key file and of [`primary_of`].
    pub fn primary(&self) -> Result<Option<Primary>> {
        match (&self.root_volume, &self.root_key_file) {
            (Some(dev), Some(key)) => Ok(Some(primary_of(dev, &read_key_file(key)?)?)),
            _ => Ok(None),
        }
    }
}
