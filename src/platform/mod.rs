//! Platform verification: is this really an SEV-SNP guest, and is its vTPM
//! the one bound to the hardware report? (DESIGN.md section 6)
//!
//! Pure code, no I/O: [`report`] parses and verifies SNP attestation reports
//! (VCEK → ASK → pinned AMD ARK, the report signature, the VCEK's chip id and
//! TCB against the report), [`hcl`] parses Azure's HCL report and its
//! runtime-data binding, [`policy`] is the requirement stored in the blob and
//! [`assess`] turns evidence plus a policy into a list of named checks.
//! The edges are [`vtpm`] (NV index 0x01400001 and the attestation key at
//! 0x81000003, through [`crate::tpm::Tpm`]) and [`sevguest`]
//! (`/dev/sev-guest`).

pub mod hcl;
pub mod policy;
pub mod report;
pub mod sevguest;
pub mod vtpm;

pub use policy::Policy;

use serde::Serialize;
use sha2::{Digest as _, Sha512};

/// A platform check, named in messages and in `sealroot platform --json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Check {
    /// Some SNP evidence exists (HCL report, or `/dev/sev-guest`).
    Evidence,
    /// The HCL report's framing and runtime-data block parse.
    HclFormat,
    /// The SNP report's `report_data` starts with the hash of the runtime data.
    HclBinding,
    /// `HCLAkPub` equals the vTPM's attestation key at 0x81000003.
    AttestationKey,
    /// The SNP report parses (size, version, algorithm, reserved bytes).
    ReportFormat,
    /// Bare SNP: `report_data` carries this boot's nonce and policy digest.
    ReportData,
    /// Azure: the HCL report was requested at VMPL 0 (by the paravisor).
    Vmpl,
    /// A VCEK for this chip and TCB chains to AMD's ARK.
    Vcek,
    /// The report is signed by that VCEK.
    Signature,
    /// The guest policy disallows debugging.
    Debug,
    /// The launch measurement is in the allow-list.
    Measurement,
    /// The reported TCB is at least the minimum.
    Tcb,
    /// Guest policy flags the policy requires set or clear.
    GuestPolicy,
}

impl Check {
    pub fn name(self) -> &'static str {
        match self {
            Check::Evidence => "evidence",
            Check::HclFormat => "hcl-format",
            Check::HclBinding => "hcl-binding",
            Check::AttestationKey => "attestation-key",
            Check::ReportFormat => "report-format",
            Check::ReportData => "report-data",
            Check::Vmpl => "vmpl",
            Check::Vcek => "vcek",
            Check::Signature => "signature",
            Check::Debug => "debug",
            Check::Measurement => "measurement",
            Check::Tcb => "tcb",
            Check::GuestPolicy => "guest-policy",
        }
    }
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    /// Not applicable, or not possible and allowed by the policy.
    Skipped,
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    pub check: Check,
    pub status: Status,
    pub detail: String,
}

impl Outcome {
    pub fn pass(check: Check, detail: impl Into<String>) -> Self {
        Outcome {
            check,
            status: Status::Pass,
            detail: detail.into(),
        }
    }
    pub fn fail(check: Check, detail: impl Into<String>) -> Self {
        Outcome {
            check,
            status: Status::Fail,
            detail: detail.into(),
        }
    }
    pub fn skipped(check: Check, detail: impl Into<String>) -> Self {
        Outcome {
            check,
            status: Status::Skipped,
            detail: detail.into(),
        }
    }
}

/// A failed platform check: which one, and why. Maps to
/// [`crate::Error::Platform`] (exit code 10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub check: Check,
    pub detail: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} check failed: {}", self.check, self.detail)
    }
}

impl From<Failure> for crate::Error {
    fn from(f: Failure) -> Self {
        crate::Error::Platform(f.to_string())
    }
}

/// The first failed check, if any.
pub fn first_failure(outcomes: &[Outcome]) -> Option<Failure> {
    outcomes
        .iter()
        .find(|o| o.status == Status::Fail)
        .map(|o| Failure {
            check: o.check,
            detail: o.detail.clone(),
        })
}

/// The `report_data` sealroot asks `/dev/sev-guest` for: a fresh nonce and
/// the blob's TPM policy digest, so the report is both fresh and about this
/// unlock.
pub fn bare_report_data(nonce: &[u8; 32], policy_digest: &[u8; 32]) -> [u8; 64] {
    let mut h = Sha512::new();
    h.update(b"sealroot-snp-report-data-v1\0");
    h.update(nonce);
    h.update(policy_digest);
    h.finalize().into()
}

/// What the platform gave us.
pub enum Evidence {
    /// Azure confidential VM: the vTPM's HCL report.
    AzureHcl {
        hcl: hcl::HclReport,
        /// The key at 0x81000003, if one is there.
        ak: vtpm::AkState,
    },
    /// A bare SNP guest: a report from `/dev/sev-guest` for `expected`
    /// report data.
    SevGuest {
        report: Vec<u8>,
        expected: [u8; 64],
        device: String,
    },
    /// A TDX guest (detected, not verified).
    Tdx { source: String },
    /// Evidence was found but is unusable (unparseable HCL report, a guest
    /// device that does not answer).
    Invalid { check: Check, detail: String },
    /// Nothing found; each entry says where we looked and what we saw.
    None { looked: Vec<String> },
}

impl Evidence {
    /// "sev-snp", "tdx" or "none".
    pub fn kind(&self) -> &'static str {
        match self {
            Evidence::AzureHcl { hcl, .. } if hcl.kind == hcl::ReportKind::Tdx => "tdx",
            Evidence::AzureHcl { .. } | Evidence::SevGuest { .. } => "sev-snp",
            Evidence::Tdx { .. } => "tdx",
            Evidence::Invalid { .. } => "unknown",
            Evidence::None { .. } => "none",
        }
    }

    pub fn source(&self) -> Option<String> {
        match self {
            Evidence::AzureHcl { .. } => Some(format!(
                "Azure vTPM HCL report (NV index 0x{:08x})",
                vtpm::HCL_NV_INDEX
            )),
            Evidence::SevGuest { device, .. } => Some(format!("SNP guest device {device}")),
            Evidence::Tdx { source } => Some(source.clone()),
            Evidence::Invalid { .. } | Evidence::None { .. } => None,
        }
    }

    /// The raw SNP report, when there is one.
    pub fn snp_report(&self) -> Option<&[u8]> {
        match self {
            Evidence::AzureHcl { hcl, .. } if hcl.kind == hcl::ReportKind::Snp => {
                Some(&hcl.hw_report)
            }
            Evidence::SevGuest { report, .. } => Some(report),
            _ => None,
        }
    }
}

/// Extra certificate material given at run time (files in the initramfs),
/// added to what the policy carries.
#[derive(Debug, Clone, Default)]
pub struct Certs {
    /// DER VCEKs.
    pub vceks: Vec<Vec<u8>>,
    /// DER ASK/ARK certificates.
    pub ca: Vec<Vec<u8>>,
}

/// The result of assessing evidence against an optional policy.
#[derive(Debug, Clone)]
pub struct Assessment {
    pub outcomes: Vec<Outcome>,
    /// The parsed SNP report, when one parsed.
    pub report: Option<report::Report>,
    /// Product of the VCEK that verified the report.
    pub product: Option<report::Product>,
}

/// Check the evidence. With `policy`, everything it requires; without, the
/// evidence's own consistency (and the signature when a VCEK is given).
pub fn assess(evidence: &Evidence, policy: Option<&Policy>, extra: &Certs) -> Assessment {
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
        Evidence::Tdx { source } => {
            out.push(Outcome::fail(
                Check::Evidence,
                format!("this is a TDX guest ({source}); sealroot verifies only SEV-SNP"),
            ));
        }
        Evidence::AzureHcl { hcl, ak } => {
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
                    vtpm::AkState::Absent => Outcome::skipped(
                        Check::AttestationKey,
                        format!(
                            "no key at 0x{:08x} to compare HCLAkPub with",
                            vtpm::AK_HANDLE
                        ),
                    ),
                    vtpm::AkState::NotRsa(what) => Outcome::fail(
                        Check::AttestationKey,
                        format!(
                            "the key at 0x{:08x} is {what}, HCLAkPub is RSA",
                            vtpm::AK_HANDLE
                        ),
                    ),
                    vtpm::AkState::Rsa(tpm_key) => {
                        if *tpm_key == jwk {
                            Outcome::pass(
                                Check::AttestationKey,
                                format!(
                                    "HCLAkPub equals the vTPM key at 0x{:08x} (RSA-{})",
                                    vtpm::AK_HANDLE,
                                    tpm_key.bits()
                                ),
                            )
                        } else {
                            Outcome::fail(
                                Check::AttestationKey,
                                format!(
                                    "HCLAkPub (modulus {}…) is not the vTPM key at 0x{:08x} (modulus {}…): the HCL report was not made for this vTPM",
                                    jwk.fingerprint(),
                                    vtpm::AK_HANDLE,
                                    tpm_key.fingerprint()
                                ),
                            )
                        }
                    }
                },
            });
            if hcl.kind == hcl::ReportKind::Tdx {
                out.push(Outcome::fail(
                    Check::Evidence,
                    "the HCL report holds a TDX report; sealroot verifies only SEV-SNP",
                ));
            }
        }
        Evidence::SevGuest { .. } => {}
    }
    if let Some(raw) = evidence.snp_report() {
        match report::Report::parse(raw) {
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
                let (sig, product) = report::check_signature(&r, policy, extra);
                a.product = product;
                out.extend(sig);
                if let Some(p) = policy {
                    out.extend(report::check_fields(&r, p));
                }
                a.report = Some(r);
            }
        }
    }
    a.outcomes = out;
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_names_the_check_and_maps_to_exit_10() {
        let f = Failure {
            check: Check::Measurement,
            detail: "x".into(),
        };
        let e: crate::Error = f.into();
        assert_eq!(e.exit(), crate::Exit::Platform);
        assert_eq!(
            e.to_string(),
            "platform verification failed: measurement check failed: x"
        );
    }

    #[test]
    fn bare_report_data_binds_nonce_and_digest() {
        let a = bare_report_data(&[1; 32], &[2; 32]);
        assert_ne!(a, bare_report_data(&[1; 32], &[3; 32]));
        assert_ne!(a, bare_report_data(&[0; 32], &[2; 32]));
        assert_eq!(a, bare_report_data(&[1; 32], &[2; 32]));
    }

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
