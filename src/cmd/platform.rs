//! `sealroot platform`: what the platform is (SEV-SNP, TDX, none), its
//! report, each check, and the verdict against a requirement given by
//! options or by an enrolled blob (docs/platform.md).

use super::steps::blobs::{load_blobs, Source};
use super::steps::evidence::{gather, PlatformOpts};
use super::steps::TpmOpts;
use crate::attest::assess::assess;
use crate::attest::check::{first_failure, Outcome, Status};
use crate::attest::evidence::{bare_report_data, Evidence};
use crate::attest::snp_report::{names_from_bits, ReportView};
use crate::attest::snp_requirement::SnpRequirement;
use crate::disk::luks::Volume;
use crate::formats::blob::Blob;
use crate::secret::random_bytes;
use crate::{Error, Result};
use serde::Serialize;
use std::path::Path;

/// Inputs of `sealroot platform`.
pub struct PlatformArgs {
    pub tpm: TpmOpts,
    pub opts: PlatformOpts,
    /// The policy to judge against, and where it came from.
    pub policy: Option<(SnpRequirement, String)>,
    /// TPM policy digest bound into a bare-SNP report (zeros without a blob).
    pub policy_digest: [u8; 32],
}

/// Stable JSON shape of `sealroot platform --json` (docs/platform.md).
#[derive(Debug, Serialize)]
pub struct PlatformReport {
    /// "sev-snp", "tdx", "none" or "unknown".
    pub platform: String,
    pub source: Option<String>,
    pub report: Option<ReportView>,
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
    let rd = bare_report_data(&nonce, &args.policy_digest);
    let evidence = gather(tpm_ref, &args.opts, &rd)?;
    let policy = args.policy.as_ref().map(|(p, _)| p);
    let a = assess(&evidence, policy, &args.opts.certs);
    let verdict = match policy {
        None => "no-policy",
        Some(_) if first_failure(&a.outcomes).is_some() => "fail",
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
pub fn describe(p: &SnpRequirement, origin: &str) -> String {
    let mut parts = vec![format!("SEV-SNP required ({origin})")];
    parts.push(if p.measurements.is_empty() {
        "any measurement".into()
    } else {
        format!("{} allowed measurement(s)", p.measurements.len())
    });
    if let Some(t) = &p.min_tcb {
        parts.push(format!("min TCB {t}"));
    }
    let req = names_from_bits(p.guest_policy_require);
    if !req.is_empty() {
        parts.push(format!("flags set: {}", req.join(",")));
    }
    let forbid = names_from_bits(p.guest_policy_forbid);
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
) -> Result<(SnpRequirement, String, [u8; 32])> {
    let sources = match (device, blob_file) {
        (_, Some(f)) => {
            let bytes = std::fs::read(f).map_err(|e| Error::io(f, e))?;
            let origin = f.display().to_string();
            vec![Source {
                token: None,
                blob: Blob::from_json(&bytes, &origin),
                origin,
            }]
        }
        (Some(d), None) => {
            let mut vol = Volume::open(d)?;
            load_blobs(&mut vol, None)?
        }
        (None, None) => return Err(Error::Usage("give --device or --blob-file".into())),
    };
    let mut with: Vec<(SnpRequirement, String, [u8; 32])> = Vec::new();
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
