//! `sealroot platform`: what the platform is (SEV-SNP, TDX, none), its
//! report, each check, and the verdict against a requirement given by
//! options or by an enrolled blob (docs/platform.md).

use super::steps::blobs::{load_blobs, Source};
use super::steps::evidence::{gather, PlatformOpts};
use super::steps::TpmOpts;
use crate::attest::assess::assess;
use crate::attest::azure_hcl::{HclReport, ReportKind};
use crate::attest::check::{first_failure, Outcome, Status};
use crate::attest::evidence::{bare_report_data, Evidence};
use crate::attest::snp_report::{names_from_bits, ReportView};
use crate::attest::snp_requirement::SnpRequirement;
use crate::attest::tdx_assess::{assess_tdx, tdx_report_data, TdxAssessment, TdxInputs};
use crate::attest::tdx_quote::{format_time, StalePolicy};
use crate::attest::tdx_report::{parse_quote, TdView};
use crate::attest::tdx_requirement::TdxRequirement;
use crate::disk::luks::Volume;
use crate::formats::blob::Blob;
use crate::secret::random_bytes;
use crate::{Error, Result};
use serde::Serialize;
use std::path::Path;

/// A requirement `platform` judges against.
#[derive(Debug, Clone)]
pub enum Requirement {
    Snp(SnpRequirement),
    Tdx(Box<TdxRequirement>),
}

impl Requirement {
    fn snp(&self) -> Option<&SnpRequirement> {
        match self {
            Requirement::Snp(p) => Some(p),
            Requirement::Tdx(_) => None,
        }
    }
    fn tdx(&self) -> Option<&TdxRequirement> {
        match self {
            Requirement::Tdx(p) => Some(p.as_ref()),
            Requirement::Snp(_) => None,
        }
    }
    fn describe(&self, origin: &str) -> String {
        match self {
            Requirement::Snp(p) => describe(p, origin),
            Requirement::Tdx(p) => p.describe(origin),
        }
    }
}

/// Inputs of `sealroot platform`.
pub struct PlatformArgs {
    pub tpm: TpmOpts,
    pub opts: PlatformOpts,
    /// The policy to judge against, and where it came from.
    pub policy: Option<(Requirement, String)>,
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
    /// TDX: the TD fields (of the TDREPORT or the quote).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub td: Option<TdView>,
    /// TDX: a verified quote's TCB status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcb_status: Option<String>,
    /// TDX: what the evidence proves, and what it does not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proves: Option<String>,
    /// Warnings (stale collateral under the warn policy).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
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
    let td = tdx_report_data(&nonce, &args.policy_digest);
    let evidence = gather(tpm_ref, &args.opts, &rd, &td)?;
    Ok(judge(&evidence, args.policy.as_ref(), &args.opts))
}

/// `platform --hcl-report FILE`: judge a captured HCL report (SNP or TDX)
/// without a TPM (so without the attestation-key comparison).
pub fn run_hcl_file(
    bytes: &[u8],
    policy: Option<&(Requirement, String)>,
    opts: &PlatformOpts,
) -> PlatformReport {
    let evidence = match HclReport::parse(bytes) {
        Ok(hcl) => Evidence::AzureHcl {
            hcl,
            ak: crate::attest::evidence::AkState::Absent,
        },
        Err(detail) => Evidence::Invalid {
            check: crate::attest::check::Check::HclFormat,
            detail,
        },
    };
    judge(&evidence, policy, opts)
}

/// `platform --tdx-quote FILE --tdx-collateral FILE`: verify a quote file
/// offline. Its `report_data` is taken as it is (no nonce to compare).
pub fn run_quote_file(
    quote: &[u8],
    policy: Option<&(Requirement, String)>,
    opts: &PlatformOpts,
) -> PlatformReport {
    let expected = parse_quote(quote)
        .map(|l| l.fields.report_data)
        .unwrap_or([0; 64]);
    let evidence = Evidence::TdxQuote {
        quote: quote.to_vec(),
        expected,
        source: "TD quote file".into(),
    };
    let mut r = judge(&evidence, policy, opts);
    for c in r.checks.iter_mut() {
        if c.check == crate::attest::check::Check::ReportData {
            *c = crate::attest::check::Outcome::skipped(
                c.check,
                "a quote file: report_data is shown, not compared with a nonce",
            );
        }
    }
    // A quote file is judged on its verification even without a policy.
    if r.verdict == "no-policy" {
        r.verdict = if first_failure(&r.checks).is_some()
            || !r
                .checks
                .iter()
                .any(|c| c.check == crate::attest::check::Check::Quote && c.status == Status::Pass)
        {
            "fail"
        } else {
            "pass"
        }
        .into();
    }
    r
}

const TDREPORT_PROVES: &str = "the vTPM's HCL report holds a TDREPORT bound to this runtime data and attestation key; a TDREPORT is MAC'd by the CPU and cannot be verified off the platform: Azure's paravisor produced it, and only its TD quote can be verified by a remote party";
const QUOTE_PROVES: &str = "the TD quote is signed by a QE whose PCK chains to the pinned Intel SGX Root CA, under the given collateral at the verification time";

/// Assess evidence against an optional requirement (TDX evidence with the
/// TDX checks, anything else with the SEV-SNP ones).
fn judge(
    evidence: &Evidence,
    policy: Option<&(Requirement, String)>,
    opts: &PlatformOpts,
) -> PlatformReport {
    let req = policy.map(|(p, _)| p);
    let tdx_evidence = evidence.kind() == "tdx";
    let mut r = PlatformReport {
        platform: evidence.kind().into(),
        source: evidence.source(),
        report: None,
        td: None,
        tcb_status: None,
        proves: None,
        warnings: vec![],
        product: None,
        vm_configuration: match evidence {
            Evidence::AzureHcl { hcl, .. } => hcl.vm_configuration(),
            _ => None,
        },
        policy: policy.map(|(p, origin)| p.describe(origin)),
        checks: vec![],
        verdict: String::new(),
    };
    if req.and_then(Requirement::tdx).is_some() || (req.is_none() && tdx_evidence) {
        let rtc = opts
            .time
            .unwrap_or_else(|| crate::attest::tdx_assess::time_or_now(None).unwrap_or(0));
        let a: TdxAssessment = assess_tdx(
            evidence,
            req.and_then(Requirement::tdx),
            &TdxInputs {
                collateral: opts.tdx_collateral.as_ref(),
                rtc,
                stale: StalePolicy::Refuse,
            },
        );
        r.td = a.fields.as_ref().map(|f| f.view());
        r.tcb_status = a.tcb_status;
        r.warnings = a.warnings;
        r.proves = match evidence {
            Evidence::AzureHcl { hcl, .. } if hcl.kind == ReportKind::Tdx => {
                Some(TDREPORT_PROVES.into())
            }
            Evidence::TdxQuote { .. } if r.tcb_status.is_some() => {
                Some(format!("{QUOTE_PROVES} ({})", format_time(rtc)))
            }
            _ => None,
        };
        r.checks = a.outcomes;
    } else {
        let a = assess(evidence, req.and_then(Requirement::snp), &opts.certs);
        r.report = a.report.as_ref().map(|x| x.view());
        r.product = a.product.map(|p| p.name().into());
        r.checks = a.outcomes;
    }
    r.verdict = match req {
        None => "no-policy",
        Some(_) if first_failure(&r.checks).is_some() => "fail",
        Some(_) => "pass",
    }
    .into();
    r
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
) -> Result<(Requirement, String, [u8; 32])> {
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
    let mut with: Vec<(Requirement, String, [u8; 32])> = Vec::new();
    for s in sources {
        if token.is_some() && s.token != token {
            continue;
        }
        let b = s.blob?;
        if let Some(p) = b.platform {
            with.push((Requirement::Snp(p), s.origin, b.policy_digest));
        } else if let Some(p) = b.tdx {
            with.push((Requirement::Tdx(Box::new(p)), s.origin, b.policy_digest));
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
    if let Some(v) = &r.td {
        let mut rows = vec![
            (
                "attributes".to_string(),
                format!(
                    "{} (debug {})",
                    v.attributes,
                    if v.debug { "ALLOWED" } else { "off" }
                ),
            ),
            ("XFAM".into(), v.xfam.clone()),
            ("MRTD".into(), v.mrtd.clone()),
            ("MRCONFIGID".into(), v.mrconfigid.clone()),
        ];
        for (i, m) in v.rtmr.iter().enumerate() {
            rows.push((format!("RTMR{i}"), m.clone()));
        }
        rows.push(("report_data".into(), v.report_data.clone()));
        if let Some(m) = &v.mrseam {
            rows.push(("MRSEAM".into(), m.clone()));
        }
        if let Some(t) = &r.tcb_status {
            rows.push(("TCB status".into(), t.clone()));
        }
        for (k, val) in rows {
            s.push_str(&format!("  {k:<15} {val}\n"));
        }
    }
    if let Some(p) = &r.proves {
        s.push_str(&format!("proves: {p}\n"));
    }
    for w in &r.warnings {
        s.push_str(&format!("warning: {w}\n"));
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
