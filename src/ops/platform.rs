//! Platform verification as the commands use it: gather the evidence (the
//! vTPM's HCL report, else `/dev/sev-guest`), assess it against a policy,
//! and either refuse (`unlock`) or report (`sealroot platform`).

use super::TpmOpts;
use crate::blob::Blob;
use crate::platform::{self, hcl, report, vtpm, Certs, Evidence, Outcome, Policy, Status};
use crate::secret::random_bytes;
use crate::tpm::Tpm;
use crate::{Error, Result};
use log::{debug, info};
use serde::Serialize;
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
}

impl Default for PlatformOpts {
    fn default() -> Self {
        PlatformOpts {
            sev_guest: PathBuf::from(platform::sevguest::DEFAULT_DEVICE),
            tdx_guest: PathBuf::from("/dev/tdx_guest"),
            certs: Certs::default(),
        }
    }
}

/// Read certificate files (PEM bundles or DER) into DER certificates.
pub fn read_cert_files(files: &[PathBuf]) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for f in files {
        let meta = std::fs::metadata(f).map_err(|e| Error::io(f, e))?;
        if meta.len() > report::MAX_CERT_FILE as u64 {
            return Err(Error::Usage(format!(
                "{}: {} bytes is too large for a certificate file",
                f.display(),
                meta.len()
            )));
        }
        let bytes = std::fs::read(f).map_err(|e| Error::io(f, e))?;
        out.extend(
            report::cert_file_to_der(&bytes)
                .map_err(|e| Error::Usage(format!("{}: {e}", f.display())))?,
        );
    }
    Ok(out)
}

/// Collect the evidence: the HCL report when the vTPM has one, else a
/// fresh report from the SNP guest device for `report_data`.
pub fn gather(
    tpm: std::result::Result<&mut Tpm, String>,
    opts: &PlatformOpts,
    report_data: &[u8; 64],
) -> Result<Evidence> {
    let mut looked = Vec::new();
    match tpm {
        Err(why) => looked.push(format!("no TPM ({why})")),
        Ok(tpm) => match tpm.nv_read_all(vtpm::HCL_NV_INDEX)? {
            Some(bytes) => {
                debug!("HCL report: {} bytes", bytes.len());
                let hcl = match hcl::HclReport::parse(&bytes) {
                    Ok(h) => h,
                    Err(e) => {
                        return Ok(Evidence::Invalid {
                            check: platform::Check::HclFormat,
                            detail: format!("NV index 0x{:08x}: {e}", vtpm::HCL_NV_INDEX),
                        })
                    }
                };
                let ak = tpm.attestation_key()?;
                return Ok(Evidence::AzureHcl { hcl, ak });
            }
            None => looked.push(format!(
                "the TPM has no HCL report at NV index 0x{:08x}",
                vtpm::HCL_NV_INDEX
            )),
        },
    }
    if opts.sev_guest.exists() {
        return Ok(
            match platform::sevguest::get_report(&opts.sev_guest, report_data) {
                Ok(report) => Evidence::SevGuest {
                    report,
                    expected: *report_data,
                    device: opts.sev_guest.display().to_string(),
                },
                Err(e) => Evidence::Invalid {
                    check: platform::Check::Evidence,
                    detail: e.to_string(),
                },
            },
        );
    }
    looked.push(format!("no {}", opts.sev_guest.display()));
    if opts.tdx_guest.exists() {
        return Ok(Evidence::Tdx {
            source: opts.tdx_guest.display().to_string(),
        });
    }
    Ok(Evidence::None { looked })
}

/// `unlock`: verify the platform a blob requires (and `extra`, a
/// requirement given on the command line), before anything is unsealed.
/// Without any requirement this does nothing.
pub fn check_blob(
    tpm: &mut Tpm,
    opts: &PlatformOpts,
    blob: &Blob,
    extra: Option<&Policy>,
) -> Result<()> {
    let policies: Vec<&Policy> = blob.platform.iter().chain(extra).collect();
    check(tpm, opts, &policies, &blob.policy_digest)
}

/// Gather the evidence once and check it against every policy; the first
/// failed check is the error.
pub fn check(
    tpm: &mut Tpm,
    opts: &PlatformOpts,
    policies: &[&Policy],
    policy_digest: &[u8; 32],
) -> Result<()> {
    if policies.is_empty() {
        return Ok(());
    }
    let nonce = random_bytes::<32>()?;
    let rd = platform::bare_report_data(&nonce, policy_digest);
    let evidence = gather(Ok(tpm), opts, &rd)?;
    let mut signed = None;
    for policy in policies {
        let a = platform::assess(&evidence, Some(policy), &opts.certs);
        for o in &a.outcomes {
            debug!("platform {}: {:?}: {}", o.check, o.status, o.detail);
        }
        if let Some(f) = platform::first_failure(&a.outcomes) {
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

/// Inputs of `sealroot platform`.
pub struct PlatformArgs {
    pub tpm: TpmOpts,
    pub opts: PlatformOpts,
    /// The policy to judge against, and where it came from.
    pub policy: Option<(Policy, String)>,
    /// TPM policy digest bound into a bare-SNP report (zeros without a blob).
    pub policy_digest: [u8; 32],
}

/// Stable JSON shape of `sealroot platform --json` (docs/platform.md).
#[derive(Debug, Serialize)]
pub struct PlatformReport {
    /// "sev-snp", "tdx", "none" or "unknown".
    pub platform: String,
    pub source: Option<String>,
    pub report: Option<report::ReportView>,
    /// Product of the VCEK that verified the report.
    pub product: Option<String>,
    /// Azure only: the runtime data's `vm-configuration`.
    pub vm_configuration: Option<serde_json::Value>,
    pub policy: Option<String>,
    pub checks: Vec<Outcome>,
    /// "pass", "fail", or "no-policy".
    pub verdict: String,
}

pub fn run(args: &PlatformArgs) -> Result<PlatformReport> {
    let mut tpm = args.tpm.open();
    let tpm_ref = match &mut tpm {
        Ok(t) => Ok(t),
        Err(e) => Err(e.to_string()),
    };
    let nonce = random_bytes::<32>()?;
    let rd = platform::bare_report_data(&nonce, &args.policy_digest);
    let evidence = gather(tpm_ref, &args.opts, &rd)?;
    let policy = args.policy.as_ref().map(|(p, _)| p);
    let a = platform::assess(&evidence, policy, &args.opts.certs);
    let verdict = match policy {
        None => "no-policy",
        Some(_) if platform::first_failure(&a.outcomes).is_some() => "fail",
        Some(_) => "pass",
    };
    Ok(PlatformReport {
        platform: evidence.kind().into(),
        source: evidence.source(),
        report: a.report.as_ref().map(|r| r.view()),
        product: a.product.map(|p| p.name().into()),
        vm_configuration: match &evidence {
            Evidence::AzureHcl { hcl, .. } => hcl.vm_configuration(),
            _ => None,
        },
        policy: args.policy.as_ref().map(|(p, origin)| describe(p, origin)),
        checks: a.outcomes,
        verdict: verdict.into(),
    })
}

/// One-line summary of a policy.
pub fn describe(p: &Policy, origin: &str) -> String {
    let mut parts = vec![format!("SEV-SNP required ({origin})")];
    parts.push(if p.measurements.is_empty() {
        "any measurement".into()
    } else {
        format!("{} allowed measurement(s)", p.measurements.len())
    });
    if let Some(t) = &p.min_tcb {
        parts.push(format!("min TCB {t}"));
    }
    let req = platform::policy::names_from_bits(p.guest_policy_require);
    if !req.is_empty() {
        parts.push(format!("flags set: {}", req.join(",")));
    }
    let forbid = platform::policy::names_from_bits(p.guest_policy_forbid);
    if !forbid.is_empty() {
        parts.push(format!("flags clear: {}", forbid.join(",")));
    }
    parts.push(if p.unsigned_ok {
        "signature if a VCEK is available".into()
    } else {
        "signature required".into()
    });
    if !p.vceks.is_empty() {
        parts.push(format!("{} VCEK(s) in the blob", p.vceks.len()));
    }
    parts.join(", ")
}

/// The platform requirement of a volume's (or blob file's) sealroot blob:
/// the one `token` names, else the only blob that has one.
pub fn policy_from_blob(
    device: Option<&Path>,
    blob_file: Option<&Path>,
    token: Option<u32>,
) -> Result<(Policy, String, [u8; 32])> {
    let sources = match (device, blob_file) {
        (_, Some(f)) => {
            let bytes = std::fs::read(f).map_err(|e| Error::io(f, e))?;
            let origin = f.display().to_string();
            vec![super::Source {
                token: None,
                blob: Blob::from_json(&bytes, &origin),
                origin,
            }]
        }
        (Some(d), None) => {
            let mut vol = crate::luks::Volume::open(d)?;
            super::load_blobs(&mut vol, None)?
        }
        (None, None) => return Err(Error::Usage("give --device or --blob-file".into())),
    };
    let mut with: Vec<(Policy, String, [u8; 32])> = Vec::new();
    for s in sources {
        if token.is_some() && s.token != token {
            continue;
        }
        let b = s.blob?;
        if let Some(p) = b.platform {
            with.push((p, s.origin, b.policy_digest));
        } else if token.is_some() {
            return Err(Error::Usage(format!(
                "{} has no platform requirement",
                s.origin
            )));
        }
    }
    match with.len() {
        0 => Err(Error::Usage(
            "no sealroot blob there has a platform requirement".into(),
        )),
        1 => Ok(with.pop().expect("one")),
        n => Err(Error::Usage(format!(
            "{n} blobs have a platform requirement; choose one with --token"
        ))),
    }
}

/// Human-readable rendering.
pub fn render(r: &PlatformReport) -> String {
    let mut s = format!(
        "platform: {}{}\n",
        match r.platform.as_str() {
            "sev-snp" => "AMD SEV-SNP",
            "tdx" => "Intel TDX",
            "none" => "none (no confidential-computing evidence)",
            _ => "unknown (evidence unusable)",
        },
        r.source
            .as_ref()
            .map(|s| format!(" — {s}"))
            .unwrap_or_default()
    );
    if let Some(v) = &r.report {
        let rows = [
            ("report version", v.version.to_string()),
            ("VMPL", v.vmpl.to_string()),
            (
                "product",
                r.product
                    .clone()
                    .or(v.cpuid_product.clone())
                    .unwrap_or_else(|| "unknown (no verified VCEK)".into()),
            ),
            ("measurement", v.measurement.clone()),
            ("report_data", v.report_data.clone()),
            ("host_data", v.host_data.clone()),
            (
                "guest policy",
                format!(
                    "{} (ABI ≥ {}; {}; debug {})",
                    v.guest_policy,
                    v.abi_min,
                    if v.guest_policy_flags.is_empty() {
                        "no flags".to_string()
                    } else {
                        v.guest_policy_flags.join(",")
                    },
                    if v.debug_allowed {
                        "ALLOWED"
                    } else {
                        "disallowed"
                    }
                ),
            ),
            ("reported TCB", v.reported_tcb.to_string()),
            ("current TCB", v.current_tcb.to_string()),
            ("launch TCB", v.launch_tcb.to_string()),
            ("chip id", v.chip_id.clone()),
            ("id key digest", v.id_key_digest.clone()),
        ];
        for (k, val) in rows {
            s.push_str(&format!("  {k:<15} {val}\n"));
        }
    }
    if let Some(c) = &r.vm_configuration {
        s.push_str(&format!("  {:<15} {c}\n", "vm config"));
    }
    if let Some(p) = &r.policy {
        s.push_str(&format!("policy: {p}\n"));
    }
    s.push_str("checks:\n");
    for c in &r.checks {
        s.push_str(&format!(
            "  {:<7} {:<16} {}\n",
            match c.status {
                Status::Pass => "ok",
                Status::Fail => "FAIL",
                Status::Skipped => "skipped",
            },
            c.check.name(),
            c.detail
        ));
    }
    s.push_str(&format!("verdict: {}\n", r.verdict));
    s
}
