//! Evidence plus an optional SNP requirement in, a list of named checks out.

use super::azure_hcl::{HclReport, ReportKind};
use super::check::{Check, Outcome};
use super::evidence::{AkState, Certs, Evidence, AK_HANDLE};
use super::snp_report::{check_signature, Product, Report};
use super::snp_requirement::{check_fields, SnpRequirement};

/// The result of assessing evidence against an optional policy.
#[derive(Debug, Clone)]
pub struct Assessment {
    pub outcomes: Vec<Outcome>,
    /// The parsed SNP report, when one parsed.
    pub report: Option<Report>,
    /// Product of the VCEK that verified the report.
    pub product: Option<Product>,
}

/// Check the evidence. With `policy`, everything it requires; without, the
/// evidence's own consistency (and the signature when a VCEK is given).
pub fn assess(evidence: &Evidence, policy: Option<&SnpRequirement>, extra: &Certs) -> Assessment {
    let mut out = Vec::new();
    let mut a = Assessment {
        outcomes: vec![],
        report: None,
        product: None,
    };
    match evidence {
        Evidence::None { looked } => {
            out.push(Outcome::fail(
                Check::Evidence,
                format!("this is not an SEV-SNP guest: {}", looked.join("; ")),
            ));
        }
        Evidence::Invalid { check, detail } => {
            out.push(Outcome::fail(*check, detail.clone()));
        }
        Evidence::Tdx { source } | Evidence::TdxQuote { source, .. } => {
            out.push(Outcome::fail(
                Check::Evidence,
                format!(
                    "this is a TDX guest ({source}), not the SEV-SNP guest the requirement names"
                ),
            ));
        }
        Evidence::AzureHcl { hcl, ak } => {
            out.extend(hcl_outcomes(hcl, ak));
            if hcl.kind == ReportKind::Tdx {
                out.push(Outcome::fail(
                    Check::Evidence,
                    "the HCL report holds a TDX report, not the SEV-SNP report the requirement names",
                ));
            }
        }
        Evidence::SevGuest { .. } => {}
    }
    if let Some(raw) = evidence.snp_report() {
        match Report::parse(raw) {
            Err(e) => out.push(Outcome::fail(Check::ReportFormat, e)),
            Ok(r) => {
                out.push(Outcome::pass(
                    Check::ReportFormat,
                    format!("SNP report version {}, VMPL {}", r.version(), r.vmpl()),
                ));
                if let Evidence::AzureHcl { .. } = evidence {
                    out.push(if r.vmpl() == 0 {
                        Outcome::pass(Check::Vmpl, "requested at VMPL 0 (the paravisor)")
                    } else {
                        Outcome::fail(
                            Check::Vmpl,
                            format!(
                                "the HCL report's SNP report was requested at VMPL {}, not by the paravisor at VMPL 0",
                                r.vmpl()
                            ),
                        )
                    });
                }
                if let Evidence::SevGuest { expected, .. } = evidence {
                    out.push(if r.report_data() == expected {
                        Outcome::pass(
                            Check::ReportData,
                            "report_data binds this boot's nonce and the policy digest",
                        )
                    } else {
                        Outcome::fail(
                            Check::ReportData,
                            format!(
                                "report_data is {}, expected {} (stale or replayed report)",
                                hex::encode(r.report_data()),
                                hex::encode(expected)
                            ),
                        )
                    });
                }
                let (sig, product) =
                    check_signature(&r, policy.map(SnpRequirement::signature), extra);
                a.product = product;
                out.extend(sig);
                if let Some(p) = policy {
                    out.extend(check_fields(&r, p));
                }
                a.report = Some(r);
            }
        }
    }
    a.outcomes = out;
    a
}

/// The HCL report's own checks (either hardware): its format, the
/// runtime-data binding and `HCLAkPub` against the vTPM's key.
pub fn hcl_outcomes(hcl: &HclReport, ak: &AkState) -> Vec<Outcome> {
    let mut out = Vec::new();
    out.push(Outcome::pass(
        Check::HclFormat,
        format!(
            "HCL report v{}, {} hardware report, {}-byte runtime data",
            hcl.version,
            hcl.kind.name(),
            hcl.runtime_data.len()
        ),
    ));
    out.push(match hcl.check_binding() {
        Ok(d) => Outcome::pass(Check::HclBinding, d),
        Err(e) => Outcome::fail(Check::HclBinding, e),
    });
    out.push(match hcl.ak_pub() {
        Err(e) => Outcome::fail(Check::AttestationKey, e),
        Ok(jwk) => match ak {
            AkState::Absent => Outcome::skipped(
                Check::AttestationKey,
                format!(
                    "no key at 0x{:08x} to compare HCLAkPub with",
                    AK_HANDLE
                ),
            ),
            AkState::NotRsa(what) => Outcome::fail(
                Check::AttestationKey,
                format!(
                    "the key at 0x{:08x} is {what}, HCLAkPub is RSA",
                    AK_HANDLE
                ),
            ),
            AkState::Rsa(tpm_key) => {
                if *tpm_key == jwk {
                    Outcome::pass(
                        Check::AttestationKey,
                        format!(
                            "HCLAkPub equals the vTPM key at 0x{:08x} (RSA-{})",
                            AK_HANDLE,
                            tpm_key.bits()
                        ),
                    )
                } else {
                    Outcome::fail(
                        Check::AttestationKey,
                        format!(
                            "HCLAkPub (modulus {}…) is not the vTPM key at 0x{:08x} (modulus {}…): the HCL report was not made for this vTPM",
                            jwk.fingerprint(),
                            AK_HANDLE,
                            tpm_key.fingerprint()
                        ),
                    )
                }
            }
        },
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attest::check::first_failure;

    #[test]
    fn no_evidence_fails_the_evidence_check() {
        let a = assess(
            &Evidence::None {
                looked: vec!["no TPM".into()],
            },
            None,
            &Certs::default(),
        );
        let f = first_failure(&a.outcomes).unwrap();
        assert_eq!(f.check, Check::Evidence);
        assert!(f.detail.contains("no TPM"), "{f}");
    }
}
