//! Offline TD quote verification (pure): the `dcap-qvl` crate checks the
//! quote's signature, the QE report and its signature, the PCK certificate
//! chain up to the Intel SGX Root CA (built into `dcap-qvl` and pinned:
//! [`dcap_qvl::verify::QuoteVerifier::new_prod`]), the CRLs, the TCB info
//! and the QE identity, all at a caller-given time. This module adds what
//! sealroot decides on top (docs/platform.md#tdx):
//!
//! - the quote's framing is parsed strictly first ([`super::tdx_report`]);
//! - the collateral's validity window (the latest `issueDate` and the
//!   earliest `nextUpdate` of its TCB info and QE identity) and the
//!   [`StalePolicy`] for a time after `nextUpdate`;
//! - the TCB status policy: which statuses pass ([`TcbStatuses`]).
//!
//! Collateral is the JSON of [`dcap_qvl::QuoteCollateralV3`] (what
//! `dcap-qvl`'s tools and PCCS clients write: issuer chains as PEM, CRLs
//! and signatures as hex).

use super::tdx_report::{parse_quote, FieldError, TdFields};
use dcap_qvl::QuoteCollateralV3;
use std::fmt;

/// Larger collateral files are refused.
pub const MAX_COLLATERAL_LEN: usize = 256 * 1024;

/// The TCB statuses Intel's TCB info can give a platform (strings as in
/// the TCB info JSON and `dcap-qvl`).
pub const TCB_STATUSES: &[&str] = &[
    "UpToDate",
    "SWHardeningNeeded",
    "ConfigurationNeeded",
    "ConfigurationAndSWHardeningNeeded",
    "OutOfDate",
    "OutOfDateConfigurationNeeded",
    "TDRelaunchAdvised",
    "TDRelaunchAdvisedConfigurationNeeded",
];

/// A TD quote verification failure. Each names the step and carries both
/// values where there are two.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuoteError {
    /// The quote's framing (field, found, expected).
    Format(FieldError),
    /// The collateral does not parse, or lacks a field.
    Collateral(String),
    /// `now` (unix seconds) is before the collateral's latest `issueDate`.
    BeforeIssue { now: u64, issue: u64 },
    /// `now` is after the collateral's earliest `nextUpdate` and the stale
    /// policy is [`StalePolicy::Refuse`].
    Stale { now: u64, next_update: u64 },
    /// The platform's TCB is below every level of the TCB info (Intel QVL:
    /// no matching TCB level), so it has no status to allow.
    TcbUnmatched(String),
    /// `dcap-qvl` refused the quote (signature, QE report, PCK chain, CRL,
    /// TCB info, QE identity, debug TD, revoked TCB): its message.
    Verify(String),
    /// The verified report is not a TD report, or differs from the bytes
    /// sealroot parsed.
    Mismatch(String),
}

impl fmt::Display for QuoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QuoteError::Format(e) => write!(f, "TD quote: {e}"),
            QuoteError::Collateral(e) => write!(f, "TDX collateral: {e}"),
            QuoteError::BeforeIssue { now, issue } => write!(
                f,
                "the time {} is before the collateral's issue date {}: the clock is wrong or the collateral is from the future",
                format_time(*now),
                format_time(*issue)
            ),
            QuoteError::Stale { now, next_update } => write!(
                f,
                "the collateral is stale: the time {} is after its nextUpdate {} (stale policy: refuse)",
                format_time(*now),
                format_time(*next_update)
            ),
            QuoteError::TcbUnmatched(e) => write!(
                f,
                "the platform's TCB is below every level of the collateral's TCB info (no TCB status; {e})"
            ),
            QuoteError::Verify(e) => write!(f, "TD quote does not verify: {e}"),
            QuoteError::Mismatch(e) => write!(f, "TD quote: {e}"),
        }
    }
}

impl std::error::Error for QuoteError {}

/// What to do when the time is after the collateral's `nextUpdate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StalePolicy {
    /// Refuse the quote (the default).
    #[default]
    Refuse,
    /// Verify as of one second before `nextUpdate` (the last instant the
    /// collateral vouches for) and report a warning: for images whose collateral cannot be
    /// refreshed.
    Warn,
}

impl StalePolicy {
    pub fn name(self) -> &'static str {
        match self {
            StalePolicy::Refuse => "refuse",
            StalePolicy::Warn => "warn",
        }
    }

    /// `refuse` or `warn`.
    pub fn parse(s: &str) -> Result<StalePolicy, String> {
        match s {
            "refuse" => Ok(StalePolicy::Refuse),
            "warn" => Ok(StalePolicy::Warn),
            o => Err(format!("{o:?} is not \"refuse\" or \"warn\"")),
        }
    }
}

/// Parsed collateral and its validity window (unix seconds).
#[derive(Debug, Clone)]
pub struct Collateral {
    pub inner: QuoteCollateralV3,
    /// The latest `issueDate` of the TCB info and the QE identity (and
    /// `thisUpdate` of the two CRLs).
    pub issue: u64,
    /// The earliest `nextUpdate` of the TCB info, the QE identity and the
    /// two CRLs.
    pub next_update: u64,
}

fn json_date(json: &str, what: &str, field: &str) -> Result<u64, QuoteError> {
    let v: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| QuoteError::Collateral(format!("{what} is not JSON: {e}")))?;
    let s = v
        .get(field)
        .and_then(|s| s.as_str())
        .ok_or_else(|| QuoteError::Collateral(format!("{what} has no {field}")))?;
    parse_time(s).map_err(|e| QuoteError::Collateral(format!("{what}.{field}: {e}")))
}

/// A DER CRL's `thisUpdate` and `nextUpdate` (unix seconds).
fn crl_window(der: &[u8], what: &str) -> Result<(u64, u64), QuoteError> {
    use x509_cert::der::Decode as _;
    let crl = x509_cert::crl::CertificateList::from_der(der)
        .map_err(|e| QuoteError::Collateral(format!("{what} is not a DER CRL: {e}")))?;
    let this = crl.tbs_cert_list.this_update.to_unix_duration().as_secs();
    let next = crl
        .tbs_cert_list
        .next_update
        .ok_or_else(|| QuoteError::Collateral(format!("{what} has no nextUpdate")))?
        .to_unix_duration()
        .as_secs();
    Ok((this, next))
}

impl Collateral {
    /// Parse collateral JSON (at most [`MAX_COLLATERAL_LEN`] bytes).
    ///
    /// Errors: [`QuoteError::Collateral`] naming the field.
    pub fn parse(bytes: &[u8]) -> Result<Collateral, QuoteError> {
        if bytes.len() > MAX_COLLATERAL_LEN {
            return Err(QuoteError::Collateral(format!(
                "{} bytes, more than {MAX_COLLATERAL_LEN}",
                bytes.len()
            )));
        }
        let inner: QuoteCollateralV3 = serde_json::from_slice(bytes)
            .map_err(|e| QuoteError::Collateral(format!("does not parse: {e}")))?;
        let ti_issue = json_date(&inner.tcb_info, "tcb_info", "issueDate")?;
        let ti_next = json_date(&inner.tcb_info, "tcb_info", "nextUpdate")?;
        let qe_issue = json_date(&inner.qe_identity, "qe_identity", "issueDate")?;
        let qe_next = json_date(&inner.qe_identity, "qe_identity", "nextUpdate")?;
        let (rc_this, rc_next) = crl_window(&inner.root_ca_crl, "root_ca_crl")?;
        let (pck_this, pck_next) = crl_window(&inner.pck_crl, "pck_crl")?;
        let issue = ti_issue.max(qe_issue).max(rc_this).max(pck_this);
        let next_update = ti_next.min(qe_next).min(rc_next).min(pck_next);
        if next_update <= issue {
            return Err(QuoteError::Collateral(format!(
                "its validity window is empty (issued {}, nextUpdate {})",
                format_time(issue),
                format_time(next_update)
            )));
        }
        Ok(Collateral {
            inner,
            issue,
            next_update,
        })
    }

    /// The collateral as JSON again (what a token stores).
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.inner).expect("collateral serialises")
    }
}

/// A quote that verified.
#[derive(Debug, Clone)]
pub struct Verified {
    /// Quote version (4 or 5).
    pub version: u16,
    /// The TCB status (a [`TCB_STATUSES`] name).
    pub tcb_status: String,
    pub advisory_ids: Vec<String>,
    pub fields: TdFields,
    /// The time the quote was verified at (unix seconds).
    pub at: u64,
    /// Set when the collateral was stale and the policy warns.
    pub stale_warning: Option<String>,
}

/// Verify `quote` against `collateral` at `now` (unix seconds) with the
/// pinned Intel SGX Root CA. The TCB status is returned, not judged (see
/// [`TcbStatuses::check`]); a Revoked TCB and a debuggable TD are always
/// refused (by `dcap-qvl`).
///
/// Errors: [`QuoteError`], naming the failed step.
pub fn verify_quote(
    quote: &[u8],
    collateral: &Collateral,
    now: u64,
    stale: StalePolicy,
) -> Result<Verified, QuoteError> {
    let layout = parse_quote(quote).map_err(QuoteError::Format)?;
    if now < collateral.issue {
        return Err(QuoteError::BeforeIssue {
            now,
            issue: collateral.issue,
        });
    }
    // Valid while now < nextUpdate (a CRL is expired at its nextUpdate).
    let (at, stale_warning) = if now >= collateral.next_update {
        match stale {
            StalePolicy::Refuse => {
                return Err(QuoteError::Stale {
                    now,
                    next_update: collateral.next_update,
                })
            }
            StalePolicy::Warn => (
                collateral.next_update.saturating_sub(1),
                Some(format!(
                    "the collateral is stale (nextUpdate {} is before the time {}); verified as of just before its nextUpdate because the stale policy is warn",
                    format_time(collateral.next_update),
                    format_time(now)
                )),
            ),
        }
    } else {
        (now, None)
    };
    let r = dcap_qvl::verify::rustcrypto::verify(&quote[..layout.len], &collateral.inner, at)
        .map_err(|e| {
            let m = format!("{e:#}");
            if m.contains("No matching TCB level") {
                QuoteError::TcbUnmatched(m)
            } else {
                QuoteError::Verify(m)
            }
        })?;
    let td = r
        .report
        .as_td10()
        .ok_or_else(|| QuoteError::Mismatch("the verified report is not a TD report".into()))?;
    if td.mr_td != layout.fields.mrtd || td.report_data != layout.fields.report_data {
        return Err(QuoteError::Mismatch(
            "the verified TD report differs from the parsed one".into(),
        ));
    }
    Ok(Verified {
        version: layout.version,
        tcb_status: r.status,
        advisory_ids: r.advisory_ids,
        fields: layout.fields,
        at,
        stale_warning,
    })
}

/// The TCB statuses a policy lets pass. Default: `UpToDate` only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcbStatuses(pub Vec<String>);

impl Default for TcbStatuses {
    fn default() -> Self {
        TcbStatuses(vec!["UpToDate".into()])
    }
}

impl TcbStatuses {
    /// A comma-separated list of [`TCB_STATUSES`] names (each once).
    /// `Revoked` is never accepted.
    pub fn parse(s: &str) -> Result<TcbStatuses, String> {
        let mut v: Vec<String> = Vec::new();
        for n in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if !TCB_STATUSES.contains(&n) {
                return Err(format!(
                    "unknown TCB status {n:?} (known: {})",
                    TCB_STATUSES.join(", ")
                ));
            }
            if v.iter().any(|x| x == n) {
                return Err(format!("{n} given twice"));
            }
            v.push(n.to_string());
        }
        if v.is_empty() {
            return Err("no TCB status".into());
        }
        Ok(TcbStatuses(v))
    }

    /// Does `status` pass? The error names both the status and the list.
    pub fn check(&self, status: &str) -> Result<(), String> {
        if self.0.iter().any(|s| s == status) {
            Ok(())
        } else {
            Err(format!(
                "TCB status is {status}, allowed: {}",
                self.0.join(",")
            ))
        }
    }
}

/// Parse `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+00:00)` to unix seconds (UTC
/// only; the fraction is dropped).
pub fn parse_time(s: &str) -> Result<u64, String> {
    let err = || format!("{s:?} is not an RFC 3339 UTC time (YYYY-MM-DDTHH:MM:SSZ)");
    let t = s
        .strip_suffix('Z')
        .or_else(|| s.strip_suffix("+00:00"))
        .ok_or_else(err)?;
    let t = t.split_once('.').map_or(t, |(a, frac)| {
        if frac.chars().all(|c| c.is_ascii_digit()) && !frac.is_empty() {
            a
        } else {
            ""
        }
    });
    let b = t.as_bytes();
    if b.len() != 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return Err(err());
    }
    if b[13] != b':' || b[16] != b':' {
        return Err(err());
    }
    let num = |r: std::ops::Range<usize>| -> Result<u64, String> {
        let p = &t[r];
        if p.bytes().all(|c| c.is_ascii_digit()) {
            p.parse().map_err(|_| err())
        } else {
            Err(err())
        }
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&mo) || h > 23 || mi > 59 || sec > 60 {
        return Err(err());
    }
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let dim = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if d < 1 || d > dim[mo as usize - 1] {
        return Err(err());
    }
    let days = days_from_civil(y as i64, mo as i64, d as i64);
    Ok(days as u64 * 86400 + h * 3600 + mi * 60 + sec)
}

/// Days since 1970-01-01 (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_time(t: u64) -> String {
    let days = (t / 86400) as i64;
    let rem = t % 86400;
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_roundtrip() {
        assert_eq!(parse_time("1970-01-01T00:00:00Z").unwrap(), 0);
        assert_eq!(parse_time("2025-06-25T00:00:00Z").unwrap(), 1_750_809_600);
        assert_eq!(
            parse_time("2024-02-29T12:34:56.789Z").unwrap(),
            1_709_210_096
        );
        assert_eq!(
            parse_time("2024-02-29T12:34:56+00:00").unwrap(),
            1_709_210_096
        );
        for t in [0, 1_709_210_096, 1_750_809_600, 4_102_444_800] {
            assert_eq!(parse_time(&format_time(t)).unwrap(), t);
        }
        for bad in [
            "",
            "2025-06-25",
            "2025-06-25T00:00:00",
            "2025-06-25T00:00:00+02:00",
            "2023-02-29T00:00:00Z",
            "2025-13-01T00:00:00Z",
            "2025-06-25T24:00:00Z",
            "2025-06-25T00:00:00.Z",
            "+025-06-25T00:00:00Z",
            "1969-12-31T23:59:59Z",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tcb_status_lists() {
        assert_eq!(TcbStatuses::default().0, vec!["UpToDate"]);
        let s = TcbStatuses::parse("UpToDate, SWHardeningNeeded").unwrap();
        assert!(s.check("SWHardeningNeeded").is_ok());
        let e = s.check("OutOfDate").unwrap_err();
        assert!(
            e.contains("OutOfDate") && e.contains("UpToDate,SWHardeningNeeded"),
            "{e}"
        );
        for bad in ["", ",", "Revoked", "uptodate", "UpToDate,UpToDate"] {
            assert!(TcbStatuses::parse(bad).is_err(), "{bad}");
        }
    }
}
