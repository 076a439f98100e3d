//! What the platform offers as evidence (the edges gather it): Azure's
//! vTPM HCL report with the attestation key, a bare SNP guest's report, or
//! nothing; and the `report_data` sealroot asks a bare SNP guest for.

use super::azure_hcl::{self, HclReport, RsaPub};
use super::check::Check;
use sha2::{Digest as _, Sha512};

/// Azure's HCL report NV index.
pub const HCL_NV_INDEX: u32 = 0x0140_0001;
/// Azure's vTPM attestation key (its public part is `HCLAkPub`).
pub const AK_HANDLE: u32 = 0x8100_0003;

/// What is at [`AK_HANDLE`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AkState {
    Absent,
    Rsa(RsaPub),
    /// Another kind of key (named).
    NotRsa(String),
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
        hcl: HclReport,
        /// The key at 0x81000003, if one is there.
        ak: AkState,
    },
    /// A bare SNP guest: a report from `/dev/sev-guest` for `expected`
    /// report data.
    SevGuest {
        report: Vec<u8>,
        expected: [u8; 64],
        device: String,
    },
    /// A TDX guest with no quote (detected, not verifiable).
    Tdx { source: String },
    /// A bare TDX guest: a TD quote from configfs-tsm for `expected`
    /// report data.
    TdxQuote {
        quote: Vec<u8>,
        expected: [u8; 64],
        source: String,
    },
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
            Evidence::AzureHcl { hcl, .. } if hcl.kind == azure_hcl::ReportKind::Tdx => "tdx",
            Evidence::AzureHcl { .. } | Evidence::SevGuest { .. } => "sev-snp",
            Evidence::Tdx { .. } | Evidence::TdxQuote { .. } => "tdx",
            Evidence::Invalid { .. } => "unknown",
            Evidence::None { .. } => "none",
        }
    }

    pub fn source(&self) -> Option<String> {
        match self {
            Evidence::AzureHcl { .. } => Some(format!(
                "Azure vTPM HCL report (NV index 0x{:08x})",
                HCL_NV_INDEX
            )),
            Evidence::SevGuest { device, .. } => Some(format!("SNP guest device {device}")),
            Evidence::Tdx { source } | Evidence::TdxQuote { source, .. } => Some(source.clone()),
            Evidence::Invalid { .. } | Evidence::None { .. } => None,
        }
    }

    /// The raw SNP report, when there is one.
    pub fn snp_report(&self) -> Option<&[u8]> {
        match self {
            Evidence::AzureHcl { hcl, .. } if hcl.kind == azure_hcl::ReportKind::Snp => {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_report_data_binds_nonce_and_digest() {
        let a = bare_report_data(&[1; 32], &[2; 32]);
        assert_ne!(a, bare_report_data(&[1; 32], &[3; 32]));
        assert_ne!(a, bare_report_data(&[0; 32], &[2; 32]));
        assert_eq!(a, bare_report_data(&[1; 32], &[2; 32]));
    }
}
