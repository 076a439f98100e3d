//! TDX evidence plus an optional [`TdxRequirement`] in, named checks out
//! (pure). Two kinds of evidence (docs/platform.md#tdx):
//!
//! - Azure TDX CVMs: the vTPM's HCL report (type 4) holds a TDREPORT.
//!   sealroot checks the report-data binding of the runtime data, that
//!   `HCLAkPub` is the vTPM's key, and the TD fields. It cannot check the
//!   TDREPORT's MAC (only the CPU can): the `quote` check is `skipped`, and
//!   what passes proves that Azure's paravisor wrote this report for this
//!   vTPM, not that a CPU vouched for it to us.
//! - Bare TDX guests: a TD quote from configfs-tsm, verified offline
//!   against collateral ([`super::tdx_quote`]), whose `report_data` must
//!   carry this boot's nonce and the blob's policy digest.

use super::assess::hcl_outcomes;
use super::azure_hcl::ReportKind;
use super::check::{Check, Outcome};
use super::evidence::Evidence;
use super::tdx_quote::{parse_time, verify_quote, Collateral, StalePolicy, TcbStatuses};
use super::tdx_report::{parse_quote, parse_tdreport, TdFields};
use super::tdx_requirement::{check_fields, TdxEvidence, TdxRequirement};
use sha2::{Digest as _, Sha512};

/// The `report_data` sealroot asks configfs-tsm for: a fresh nonce and the
/// blob's TPM policy digest (domain-separated from the SNP one).
pub fn tdx_report_data(nonce: &[u8; 32], policy_digest: &[u8; 32]) -> [u8; 64] {
    let mut h = Sha512::new();
    h.update(b"sealroot-tdx-report-data-v1\0");
    h.update(nonce);
    h.update(policy_digest);
    h.finalize().into()
}

/// The SHA-384 extended into RTMR3 to mirror a PCR 15 lock event
/// (`event`, the 32-byte digest extended into PCR 15).
pub fn rtmr_lock_digest(event: &[u8; 32]) -> [u8; 48] {
    let mut h = sha2::Sha384::new();
    h.update(b"sealroot-rtmr3-lock-v1\0");
    h.update(event);
    h.finalize().into()
}

/// The result of assessing TDX evidence.
#[derive(Debug, Clone, Default)]
pub struct TdxAssessment {
    pub outcomes: Vec<Outcome>,
    /// The TD fields, when a report or quote parsed.
    pub fields: Option<TdFields>,
    /// A verified quote's TCB status.
    pub tcb_status: Option<String>,
    /// Warnings to log (stale collateral under the warn policy).
    pub warnings: Vec<String>,
}

/// What the quote is verified with: collateral (the requirement's unless
/// `collateral` is given) and the clock (unix seconds, before the
/// requirement's `not_before` floor).
#[derive(Debug, Clone, Copy, Default)]
pub struct TdxInputs<'a> {
    pub collateral: Option<&'a Collateral>,
    pub rtc: u64,
    /// Without a requirement: what to do with stale collateral.
    pub stale: StalePolicy,
}

/// Check TDX evidence. With `policy`, everything it requires; without,
/// the evidence's own consistency (and the quote when collateral is given).
pub fn assess_tdx(
    evidence: &Evidence,
    policy: Option<&TdxRequirement>,
    inputs: &TdxInputs,
) -> TdxAssessment {
    let mut a = TdxAssessment::default();
    let fail =
        |a: &mut TdxAssessment, d: String| a.outcomes.push(Outcome::fail(Check::Evidence, d));
    match evidence {
        Evidence::None { looked } => {
            fail(&mut a, format!("this is not a TDX guest: {}", looked.join("; ")))
        }
        Evidence::Invalid { check, detail } => a.outcomes.push(Outcome::fail(*check, detail.clone())),
        Evidence::SevGuest { device, .. } => fail(
            &mut a,
            format!("this is an SEV-SNP guest ({device}), not the TDX guest the requirement names"),
        ),
        Evidence::AzureHcl { hcl, .. } if hcl.kind == ReportKind::Snp => fail(
            &mut a,
            "the HCL report holds an SEV-SNP report, not the TDX report the requirement names".into(),
        ),
        Evidence::Tdx { source } => fail(
            &mut a,
            format!("a TDX guest ({source}), but no TD quote: the kernel has no configfs-tsm report interface"),
        ),
        Evidence::AzureHcl { .. } | Evidence::TdxQuote { .. }
            if policy.is_some_and(|p| p.evidence != evidence_kind(evidence)) =>
        {
            let want = policy.map_or("", |p| p.evidence.name());
            fail(
                &mut a,
                format!(
                    "the requirement accepts {want} evidence; this guest offers {}",
                    evidence_kind(evidence).name()
                ),
            )
        }
        Evidence::AzureHcl { hcl, ak } => {
            a.outcomes.extend(hcl_outcomes(hcl, ak));
            match parse_tdreport(&hcl.hw_report) {
                Err(e) => a.outcomes.push(Outcome::fail(Check::ReportFormat, e.to_string())),
                Ok(f) => {
                    a.outcomes.push(Outcome::pass(Check::ReportFormat, "TDREPORT_STRUCT (1024 bytes)"));
                    a.outcomes.push(Outcome::skipped(
                        Check::Quote,
                        "a TDREPORT is MAC'd by the CPU and cannot be verified off the platform; Azure's paravisor produced it (a remote verifier checks the TD quote)",
                    ));
                    a.fields = Some(f);
                }
            }
        }
        Evidence::TdxQuote { quote, expected, .. } => quote_outcomes(&mut a, quote, expected, policy, inputs),
    }
    if let (Some(p), Some(f)) = (policy, &a.fields) {
        a.outcomes.extend(check_fields(f, p));
    }
    a
}

/// Which kind of TDX evidence `e` is (only for `AzureHcl`/`TdxQuote`).
fn evidence_kind(e: &Evidence) -> TdxEvidence {
    match e {
        Evidence::AzureHcl { .. } => TdxEvidence::AzureHcl,
        _ => TdxEvidence::TdQuote,
    }
}

fn quote_outcomes(
    a: &mut TdxAssessment,
    quote: &[u8],
    expected: &[u8; 64],
    policy: Option<&TdxRequirement>,
    inputs: &TdxInputs,
) {
    let layout = match parse_quote(quote) {
        Err(e) => {
            return a
                .outcomes
                .push(Outcome::fail(Check::ReportFormat, e.to_string()))
        }
        Ok(l) => l,
    };
    a.outcomes.push(Outcome::pass(
        Check::ReportFormat,
        format!("TD quote version {}, {} bytes", layout.version, layout.len),
    ));
    let rd = &layout.fields.report_data;
    a.outcomes.push(if rd == expected {
        Outcome::pass(
            Check::ReportData,
            "report_data binds this boot's nonce and the policy digest",
        )
    } else {
        Outcome::fail(
            Check::ReportData,
            format!(
                "report_data is {}, expected {} (stale or replayed quote)",
                hex::encode(rd),
                hex::encode(expected)
            ),
        )
    });
    let stored = match policy.and_then(|p| p.collateral.as_deref()) {
        None => None,
        Some(c) => match Collateral::parse(c.as_bytes()) {
            Ok(c) => Some(c),
            Err(e) => {
                return a
                    .outcomes
                    .push(Outcome::fail(Check::Collateral, e.to_string()))
            }
        },
    };
    let Some(coll) = inputs.collateral.or(stored.as_ref()) else {
        a.outcomes.push(if policy.is_some() {
            Outcome::fail(
                Check::Collateral,
                "no collateral (--tdx-collateral, or the blob)",
            )
        } else {
            Outcome::skipped(
                Check::Quote,
                "no collateral given: the quote is not verified",
            )
        });
        a.fields = Some(layout.fields);
        return;
    };
    // Collateral that expired before enrollment is older than what was
    // current then: refused whatever the stale policy (the host could
    // otherwise supply an old, genuinely signed set from before a TCB
    // recovery or a revocation).
    if let Some(nb) = policy.and_then(|p| p.not_before) {
        if coll.next_update <= nb {
            a.outcomes.push(Outcome::fail(
                Check::Collateral,
                format!(
                    "the collateral expired ({}) before the token was enrolled ({}): older than what was current then",
                    super::tdx_quote::format_time(coll.next_update),
                    super::tdx_quote::format_time(nb)
                ),
            ));
            a.fields = Some(layout.fields);
            return;
        }
    }
    let now = policy.map_or(inputs.rtc, |p| p.now(inputs.rtc));
    let stale = policy.map_or(inputs.stale, |p| p.stale);
    match verify_quote(quote, coll, now, stale) {
        Err(e) => {
            let check = match e {
                super::tdx_quote::QuoteError::Stale { .. }
                | super::tdx_quote::QuoteError::BeforeIssue { .. }
                | super::tdx_quote::QuoteError::Collateral(_) => Check::Collateral,
                super::tdx_quote::QuoteError::TcbUnmatched(_) => Check::Tcb,
                _ => Check::Quote,
            };
            a.outcomes.push(Outcome::fail(check, e.to_string()));
        }
        Ok(v) => {
            a.outcomes.push(Outcome::pass(
                Check::Collateral,
                match &v.stale_warning {
                    Some(w) => w.clone(),
                    None => format!(
                        "current: {} is within {}..{}",
                        super::tdx_quote::format_time(v.at),
                        super::tdx_quote::format_time(coll.issue),
                        super::tdx_quote::format_time(coll.next_update)
                    ),
                },
            ));
            a.warnings.extend(v.stale_warning.clone());
            a.outcomes.push(Outcome::pass(
                Check::Quote,
                "signature, QE report, PCK chain to the pinned Intel SGX Root CA, CRLs, TCB info and QE identity verify",
            ));
            let allowed = policy.map_or_else(TcbStatuses::default, |p| p.tcb_statuses.clone());
            a.outcomes.push(match allowed.check(&v.tcb_status) {
                Ok(()) => Outcome::pass(Check::Tcb, format!("TCB status {}", v.tcb_status)),
                Err(e) if policy.is_some() => Outcome::fail(Check::Tcb, e),
                Err(e) => Outcome::skipped(Check::Tcb, e),
            });
            a.tcb_status = Some(v.tcb_status);
            a.fields = Some(v.fields);
        }
    }
}

/// Unix seconds from an RFC 3339 `--time`, or the system clock.
pub fn time_or_now(given: Option<&str>) -> Result<u64, String> {
    match given {
        Some(t) => parse_time(t),
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .map_err(|e| format!("the clock is before 1970: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attest::check::first_failure;

    #[test]
    fn report_data_binds_nonce_and_digest() {
        let a = tdx_report_data(&[1; 32], &[2; 32]);
        assert_ne!(a, tdx_report_data(&[1; 32], &[3; 32]));
        assert_ne!(a, tdx_report_data(&[0; 32], &[2; 32]));
        assert_ne!(
            a,
            crate::attest::evidence::bare_report_data(&[1; 32], &[2; 32])
        );
    }

    #[test]
    fn wrong_platform_fails_the_evidence_check() {
        for e in [
            Evidence::None {
                looked: vec!["nothing".into()],
            },
            Evidence::Tdx {
                source: "/dev/tdx_guest".into(),
            },
            Evidence::SevGuest {
                report: vec![],
                expected: [0; 64],
                device: "/dev/sev-guest".into(),
            },
        ] {
            let a = assess_tdx(&e, Some(&TdxRequirement::default()), &TdxInputs::default());
            assert_eq!(first_failure(&a.outcomes).unwrap().check, Check::Evidence);
        }
    }
}
