//! The named checks of platform verification and their outcomes: what
//! `sealroot platform` lists and what an exit 10 names.

use serde::Serialize;

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
    /// TDX: the MRTD is in the allow-list.
    Mrtd,
    /// TDX: RTMR0..3 equal the required values.
    Rtmr,
    /// TDX: MRCONFIGID equals the required value.
    MrConfigId,
    /// TDX: XFAM equals the required value.
    Xfam,
    /// TDX: collateral for the quote is available, parses and is current.
    Collateral,
    /// TDX: the TD quote verifies (signature, QE report, PCK chain to the
    /// pinned Intel root, CRLs, TCB info, QE identity).
    Quote,
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
            Check::Mrtd => "mrtd",
            Check::Rtmr => "rtmr",
            Check::MrConfigId => "mrconfigid",
            Check::Xfam => "xfam",
            Check::Collateral => "collateral",
            Check::Quote => "quote",
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
}
