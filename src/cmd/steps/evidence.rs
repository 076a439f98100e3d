//! Platform evidence as the commands use it: gather it (the vTPM's HCL
//! report, else `/dev/sev-guest`), assess it against a requirement, and
//! refuse before anything is unsealed.

use crate::attest::assess::assess;
use crate::attest::azure_hcl::HclReport;
use crate::attest::check::{first_failure, Check};
use crate::attest::evidence::{bare_report_data, Certs, Evidence, HCL_NV_INDEX};
use crate::attest::snp_report::{cert_file_to_der, MAX_CERT_FILE};
use crate::attest::snp_requirement::SnpRequirement;
use crate::attest::tdx_assess::{assess_tdx, tdx_report_data, time_or_now, TdxInputs};
use crate::attest::tdx_quote::{Collateral, StalePolicy, MAX_COLLATERAL_LEN};
use crate::attest::tdx_requirement::TdxRequirement;
use crate::formats::blob::Blob;
use crate::secret::random_bytes;
use crate::sys::{sevguest, tsm};
use crate::tpm::Tpm;
use crate::{Error, Result};
use log::{debug, info};
use std::path::{Path, PathBuf};

/// Where to look, and certificates given at run time.
#[derive(Debug, Clone)]
pub struct PlatformOpts {
    /// The SNP guest device (bare SNP path).
    pub sev_guest: PathBuf,
    /// The TDX guest device (detection only).
    pub tdx_guest: PathBuf,
    /// VCEKs and CA certificates from files (e.g. in the initramfs).
    pub certs: Certs,
    /// configfs-tsm report directory (bare TDX guests' quotes).
    pub tsm_root: PathBuf,
    /// TDX collateral given at run time (preferred to the blob's).
    pub tdx_collateral: Option<Collateral>,
    /// The time to verify TD quotes at (unix seconds); the RTC when unset.
    pub time: Option<u64>,
    /// The RTMR the lock event is mirrored into on TDX guests.
    pub rtmr3: PathBuf,
    /// A TDX requirement from the command line (`unlock --require-tdx`):
    /// checked before unsealing any token, and stored by first-boot
    /// enrollment.
    pub require_tdx: Option<TdxRequirement>,
}

impl Default for PlatformOpts {
    fn default() -> Self {
        PlatformOpts {
            sev_guest: PathBuf::from(sevguest::DEFAULT_DEVICE),
            tdx_guest: PathBuf::from("/dev/tdx_guest"),
            certs: Certs::default(),
            tsm_root: PathBuf::from(tsm::DEFAULT_TSM_ROOT),
            tdx_collateral: None,
            time: None,
            rtmr3: PathBuf::from(tsm::DEFAULT_RTMR3),
            require_tdx: None,
        }
    }
}

/// Read certificate files (PEM bundles or DER) into DER certificates.
pub fn read_cert_files(files: &[PathBuf]) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for f in files {
        let meta = std::fs::metadata(f).map_err(|e| Error::io(f, e))?;
        if meta.len() > MAX_CERT_FILE as u64 {
            return Err(Error::Usage(format!(
                "{}: {} bytes is too large for a certificate file",
                f.display(),
                meta.len()
            )));
        }
        let bytes = std::fs::read(f).map_err(|e| Error::io(f, e))?;
        out.extend(
            cert_file_to_der(&bytes).map_err(|e| Error::Usage(format!("{}: {e}", f.display())))?,
        );
    }
    Ok(out)
}

/// Collect the evidence: the HCL report when the vTPM has one, else a
/// fresh report from the SNP guest device for `report_data`, else a TD
/// quote from configfs-tsm for `tdx_data`.
pub fn gather(
    tpm: std::result::Result<&mut Tpm, String>,
    opts: &PlatformOpts,
    report_data: &[u8; 64],
    tdx_data: &[u8; 64],
) -> Result<Evidence> {
    let mut looked = Vec::new();
    match tpm {
        Err(why) => looked.push(format!("no TPM ({why})")),
        Ok(tpm) => match tpm.nv_read_all(HCL_NV_INDEX)? {
            Some(bytes) => {
                debug!("HCL report: {} bytes", bytes.len());
                let hcl = match HclReport::parse(&bytes) {
                    Ok(h) => h,
                    Err(e) => {
                        return Ok(Evidence::Invalid {
                            check: Check::HclFormat,
                            detail: format!("NV index 0x{:08x}: {e}", HCL_NV_INDEX),
                        })
                    }
                };
                let ak = tpm.attestation_key()?;
                return Ok(Evidence::AzureHcl { hcl, ak });
            }
            None => looked.push(format!(
                "the TPM has no HCL report at NV index 0x{:08x}",
                HCL_NV_INDEX
            )),
        },
    }
    if opts.sev_guest.exists() {
        return Ok(match sevguest::get_report(&opts.sev_guest, report_data) {
            Ok(report) => Evidence::SevGuest {
                report,
                expected: *report_data,
                device: opts.sev_guest.display().to_string(),
            },
            Err(e) => Evidence::Invalid {
                check: Check::Evidence,
                detail: e.to_string(),
            },
        });
    }
    looked.push(format!("no {}", opts.sev_guest.display()));
    if tsm::available(&opts.tsm_root) {
        match tdx_quote(&opts.tsm_root, tdx_data) {
            Ok(Some(e)) => return Ok(e),
            Ok(None) => looked.push(format!(
                "configfs-tsm at {} is not a TDX provider",
                opts.tsm_root.display()
            )),
            Err(e) => {
                return Ok(Evidence::Invalid {
                    check: Check::Evidence,
                    detail: e.to_string(),
                })
            }
        }
    } else {
        looked.push(format!("no {}", opts.tsm_root.display()));
    }
    if opts.tdx_guest.exists() {
        return Ok(Evidence::Tdx {
            source: opts.tdx_guest.display().to_string(),
        });
    }
    Ok(Evidence::None { looked })
}

/// A TD quote for `tdx_data` from a fresh configfs-tsm entry, or `None`
/// when the provider is not `tdx_guest`. A racing writer is an error.
fn tdx_quote(root: &Path, tdx_data: &[u8; 64]) -> Result<Option<Evidence>> {
    let name = format!("sealroot-{}", hex::encode(random_bytes::<8>()?));
    let entry = tsm::create_entry(root, &name)?;
    let r = tsm::request(&entry, tdx_data);
    tsm::remove_entry(&entry);
    let r = r?;
    if r.provider != tsm::TDX_PROVIDER {
        return Ok(None);
    }
    tsm::check_generation(&r).map_err(Error::Platform)?;
    Ok(Some(Evidence::TdxQuote {
        quote: r.outblob,
        expected: *tdx_data,
        source: format!("configfs-tsm {} (provider {})", entry.display(), r.provider),
    }))
}

/// Read a TDX collateral file (JSON, [`Collateral::parse`]).
///
/// Errors: [`Error::Io`]; [`Error::Usage`] naming the file when it does
/// not parse.
pub fn read_collateral(f: &Path) -> Result<Collateral> {
    let meta = std::fs::metadata(f).map_err(|e| Error::io(f, e))?;
    if meta.len() > MAX_COLLATERAL_LEN as u64 {
        return Err(Error::Usage(format!(
            "{}: {} bytes is too large for TDX collateral",
            f.display(),
            meta.len()
        )));
    }
    let bytes = std::fs::read(f).map_err(|e| Error::io(f, e))?;
    Collateral::parse(&bytes).map_err(|e| Error::Usage(format!("{}: {e}", f.display())))
}

/// `unlock`: verify the platform a blob requires (and `extra`, a
/// requirement given on the command line), before anything is unsealed.
/// Without any requirement this does nothing.
pub fn check_blob(
    tpm: &mut Tpm,
    opts: &PlatformOpts,
    blob: &Blob,
    extra: Option<&SnpRequirement>,
) -> Result<()> {
    for t in blob.tdx.iter().chain(&opts.require_tdx) {
        check_tdx(tpm, opts, t, &blob.policy_digest)?;
    }
    let policies: Vec<&SnpRequirement> = blob.platform.iter().chain(extra).collect();
    check(tpm, opts, &policies, &blob.policy_digest)
}

/// Gather the evidence and check it against a TDX requirement; the first
/// failed check is the error ([`Error::Platform`], exit 10).
pub fn check_tdx(
    tpm: &mut Tpm,
    opts: &PlatformOpts,
    policy: &TdxRequirement,
    policy_digest: &[u8; 32],
) -> Result<()> {
    let nonce = random_bytes::<32>()?;
    let rd = bare_report_data(&nonce, policy_digest);
    let td = tdx_report_data(&nonce, policy_digest);
    let evidence = gather(Ok(tpm), opts, &rd, &td)?;
    let rtc = match opts.time {
        Some(t) => t,
        None => time_or_now(None).map_err(Error::Platform)?,
    };
    let a = assess_tdx(
        &evidence,
        Some(policy),
        &TdxInputs {
            collateral: opts.tdx_collateral.as_ref(),
            rtc,
            stale: StalePolicy::Refuse,
        },
    );
    for o in &a.outcomes {
        debug!("platform {}: {:?}: {}", o.check, o.status, o.detail);
    }
    for w in &a.warnings {
        log::warn!("TDX: {w}");
    }
    if let Some(f) = first_failure(&a.outcomes) {
        return Err(f.into());
    }
    info!(
        "platform verified: TDX via {}{}",
        evidence.source().unwrap_or_default(),
        match &a.tcb_status {
            Some(s) => format!(", TD quote verified, TCB status {s}"),
            None => ", TDREPORT from Azure's paravisor (not verifiable off the platform)".into(),
        }
    );
    Ok(())
}

/// Gather the evidence once and check it against every policy; the first
/// failed check is the error.
pub fn check(
    tpm: &mut Tpm,
    opts: &PlatformOpts,
    policies: &[&SnpRequirement],
    policy_digest: &[u8; 32],
) -> Result<()> {
    if policies.is_empty() {
        return Ok(());
    }
    let nonce = random_bytes::<32>()?;
    let rd = bare_report_data(&nonce, policy_digest);
    let td = tdx_report_data(&nonce, policy_digest);
    let evidence = gather(Ok(tpm), opts, &rd, &td)?;
    let mut signed = None;
    for policy in policies {
        let a = assess(&evidence, Some(policy), &opts.certs);
        for o in &a.outcomes {
            debug!("platform {}: {:?}: {}", o.check, o.status, o.detail);
        }
        if let Some(f) = first_failure(&a.outcomes) {
            return Err(f.into());
        }
        signed = signed.or(a.product);
    }
    info!(
        "platform verified: SEV-SNP via {}{}",
        evidence.source().unwrap_or_default(),
        match signed {
            Some(p) => format!(", report signed by a {p} VCEK"),
            None => ", report signature NOT verified (no VCEK; allowed by the policy)".into(),
        }
    );
    Ok(())
}
