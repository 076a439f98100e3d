//! Platform verification: is this really an SEV-SNP or TDX guest, and is
//! its vTPM the one bound to the hardware report? (DESIGN.md section 6)
//!
//! Pure code, no I/O. [`snp_report`] parses SNP attestation reports and AMD
//! certificates, [`azure_hcl`] Azure's HCL report and its runtime-data
//! binding, and [`snp_report`] also checks a report's signature chain
//! (VCEK → ASK → pinned AMD ARK); [`snp_requirement`] is the requirement a
//! blob carries and judges a report's fields; [`assess`] turns the
//! [`evidence`] plus a requirement into named [`check`]s. TDX:
//! [`tdx_report`] parses TDREPORTs and TD quote bodies, [`tdx_quote`]
//! verifies quotes offline (through `dcap-qvl`), [`tdx_requirement`] is the
//! TDX requirement and [`tdx_assess`] its checks. Reading the
//! evidence is the edges' work: the vTPM's NV index in [`crate::tpm`],
//! `/dev/sev-guest` in [`crate::sys`].

pub mod assess;
pub mod azure_hcl;
pub mod check;
pub mod evidence;
pub mod snp_report;
pub mod snp_requirement;
pub mod tdx_assess;
pub mod tdx_quote;
pub mod tdx_report;
pub mod tdx_requirement;
