//! The TDX requirement a blob carries (pure): its wire form in the blob's
//! `tdx` object, the option parsers `enroll` uses, the digest the envelope
//! is bound to, and the checks of a TD's fields against it
//! (docs/platform.md#tdx).

use super::check::{Check, Outcome};
use super::tdx_quote::{format_time, parse_time, Collateral, StalePolicy, TcbStatuses};
use super::tdx_report::{Mr, TdFields, MR_LEN};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// The `require` value of a TDX requirement.
pub const REQUIRE_TDX: &str = "tdx";
/// Bound on the MRTD allow-list.
pub const MAX_MRTDS: usize = 64;

/// The evidence a TDX requirement accepts (in the digest, so the host
/// cannot swap one kind for the other).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TdxEvidence {
    /// A TD quote (configfs-tsm), verified offline against the collateral
    /// to the pinned Intel SGX Root CA: bare TDX guests, where the vTPM,
    /// if any, belongs to the host.
    #[default]
    TdQuote,
    /// Azure's HCL report (type 4) in the paravisor's vTPM, tied to its
    /// attestation key: the TDREPORT itself cannot be verified here.
    AzureHcl,
}

impl TdxEvidence {
    pub fn name(self) -> &'static str {
        match self {
            TdxEvidence::TdQuote => "td-quote",
            TdxEvidence::AzureHcl => "azure-hcl",
        }
    }

    /// `td-quote` or `azure-hcl`.
    pub fn parse(s: &str) -> Result<TdxEvidence, String> {
        match s {
            "td-quote" => Ok(TdxEvidence::TdQuote),
            "azure-hcl" => Ok(TdxEvidence::AzureHcl),
            o => Err(format!("{o:?} is not \"td-quote\" or \"azure-hcl\"")),
        }
    }
}

/// What a TD must satisfy. Debugging is always disallowed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TdxRequirement {
    /// The evidence that may satisfy it.
    pub evidence: TdxEvidence,
    /// Allowed MRTDs; empty means any.
    pub mrtds: Vec<Mr>,
    /// Required RTMR0..3 values (`None`: any).
    pub rtmrs: [Option<Mr>; 4],
    /// Required MRCONFIGID.
    pub mrconfigid: Option<Mr>,
    /// Required XFAM.
    pub xfam: Option<u64>,
    /// TCB statuses a verified quote may have.
    pub tcb_statuses: TcbStatuses,
    /// What a time after the collateral's `nextUpdate` does.
    pub stale: StalePolicy,
    /// The earliest time the verifier accepts as "now" (unix seconds;
    /// `enroll` stores its own time): a clock set back by the host cannot
    /// make expired collateral current again.
    pub not_before: Option<u64>,
    /// Collateral JSON for the bare-TDX quote (not in the digest: newer
    /// collateral may be given at boot).
    pub collateral: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WireTdx {
    require: String,
    evidence: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    mrtd: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    rtmr: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mrconfigid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    xfam: Option<String>,
    tcb_status: Vec<String>,
    stale: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    not_before: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    collateral: Option<serde_json::Value>,
}

/// 48 bytes in hex (96 digits).
pub fn parse_mr(s: &str) -> Result<Mr, String> {
    let v = hex::decode(s.trim()).map_err(|e| format!("{s:.20?}… is not hex: {e}"))?;
    v.as_slice().try_into().map_err(|_| {
        format!(
            "{} bytes; a TD measurement is {MR_LEN} bytes (96 hex digits)",
            v.len()
        )
    })
}

/// `N=HEX` with N in 0..=3.
pub fn parse_rtmr(s: &str) -> Result<(usize, Mr), String> {
    let (n, v) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:.20?}: expected N=HEX"))?;
    let n: usize = match n.trim() {
        "0" => 0,
        "1" => 1,
        "2" => 2,
        "3" => 3,
        o => return Err(format!("RTMR index {o:?} is not 0, 1, 2 or 3")),
    };
    Ok((n, parse_mr(v).map_err(|e| format!("RTMR{n}: {e}"))?))
}

/// XFAM as hex (`0x` optional), a little-endian u64's value.
pub fn parse_xfam(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let t = t.strip_prefix("0x").unwrap_or(t);
    u64::from_str_radix(t, 16).map_err(|e| format!("XFAM {s:?}: {e}"))
}

impl TdxRequirement {
    pub(crate) fn from_wire(w: WireTdx) -> Result<TdxRequirement, String> {
        if w.require != REQUIRE_TDX {
            return Err(format!(
                "tdx.require is {:?}, not {REQUIRE_TDX:?}",
                w.require
            ));
        }
        if w.mrtd.len() > MAX_MRTDS {
            return Err(format!(
                "tdx.mrtd has {} entries (at most {MAX_MRTDS})",
                w.mrtd.len()
            ));
        }
        let mrtds = w
            .mrtd
            .iter()
            .map(|m| parse_mr(m).map_err(|e| format!("tdx.mrtd: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        let mut rtmrs = [None; 4];
        for r in &w.rtmr {
            let (n, v) = parse_rtmr(r).map_err(|e| format!("tdx.rtmr: {e}"))?;
            if rtmrs[n].replace(v).is_some() {
                return Err(format!("tdx.rtmr: RTMR{n} given twice"));
            }
        }
        let collateral = match w.collateral {
            None => None,
            Some(v) => {
                let s = v.to_string();
                Collateral::parse(s.as_bytes()).map_err(|e| format!("tdx.collateral: {e}"))?;
                Some(s)
            }
        };
        Ok(TdxRequirement {
            evidence: TdxEvidence::parse(&w.evidence).map_err(|e| format!("tdx.evidence: {e}"))?,
            mrtds,
            rtmrs,
            mrconfigid: w
                .mrconfigid
                .as_deref()
                .map(parse_mr)
                .transpose()
                .map_err(|e| format!("tdx.mrconfigid: {e}"))?,
            xfam: w
                .xfam
                .as_deref()
                .map(parse_xfam)
                .transpose()
                .map_err(|e| format!("tdx.xfam: {e}"))?,
            tcb_statuses: TcbStatuses::parse(&w.tcb_status.join(","))
                .map_err(|e| format!("tdx.tcb_status: {e}"))?,
            stale: StalePolicy::parse(&w.stale).map_err(|e| format!("tdx.stale: {e}"))?,
            not_before: w
                .not_before
                .as_deref()
                .map(parse_time)
                .transpose()
                .map_err(|e| format!("tdx.not_before: {e}"))?,
            collateral,
        })
    }

    pub(crate) fn to_wire(&self) -> WireTdx {
        WireTdx {
            require: REQUIRE_TDX.into(),
            evidence: self.evidence.name().into(),
            mrtd: self.mrtds.iter().map(hex::encode).collect(),
            rtmr: self
                .rtmrs
                .iter()
                .enumerate()
                .filter_map(|(i, r)| r.map(|v| format!("{i}={}", hex::encode(v))))
                .collect(),
            mrconfigid: self.mrconfigid.map(hex::encode),
            xfam: self.xfam.map(|x| format!("0x{x:016x}")),
            tcb_status: self.tcb_statuses.0.clone(),
            stale: self.stale.name().into(),
            not_before: self.not_before.map(format_time),
            collateral: self
                .collateral
                .as_deref()
                .map(|c| serde_json::from_str(c).expect("validated collateral JSON")),
        }
    }

    /// Digest of the requirements (not of the collateral, which only helps
    /// to verify). The envelope's associated data includes it, so a token
    /// whose requirement was edited or removed does not decrypt.
    pub fn digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"sealroot-platform-tdx-v1\0");
        h.update(self.evidence.name().as_bytes());
        h.update([0]);
        h.update((self.mrtds.len() as u32).to_be_bytes());
        for m in &self.mrtds {
            h.update(m);
        }
        for r in &self.rtmrs {
            opt(&mut h, r.as_ref().map(|v| &v[..]));
        }
        opt(&mut h, self.mrconfigid.as_ref().map(|v| &v[..]));
        opt(
            &mut h,
            self.xfam.map(u64::to_be_bytes).as_ref().map(|v| &v[..]),
        );
        h.update((self.tcb_statuses.0.len() as u32).to_be_bytes());
        for s in &self.tcb_statuses.0 {
            h.update(s.as_bytes());
            h.update([0]);
        }
        h.update(self.stale.name().as_bytes());
        h.update([0]);
        opt(
            &mut h,
            self.not_before
                .map(u64::to_be_bytes)
                .as_ref()
                .map(|v| &v[..]),
        );
        h.finalize().into()
    }

    /// The verifier's "now": `rtc` (unix seconds), raised to `not_before`.
    pub fn now(&self, rtc: u64) -> u64 {
        rtc.max(self.not_before.unwrap_or(0))
    }

    /// One line for `sealroot platform`.
    pub fn describe(&self, origin: &str) -> String {
        let mut parts = vec![format!(
            "TDX required ({origin}), evidence {}",
            self.evidence.name()
        )];
        parts.push(if self.mrtds.is_empty() {
            "any MRTD".into()
        } else {
            format!("{} allowed MRTD(s)", self.mrtds.len())
        });
        let r: Vec<String> = (0..4)
            .filter(|&i| self.rtmrs[i].is_some())
            .map(|i| format!("RTMR{i}"))
            .collect();
        if !r.is_empty() {
            parts.push(format!("{} pinned", r.join(",")));
        }
        if self.mrconfigid.is_some() {
            parts.push("MRCONFIGID pinned".into());
        }
        if let Some(x) = self.xfam {
            parts.push(format!("XFAM 0x{x:x}"));
        }
        parts.push(format!("TCB status {}", self.tcb_statuses.0.join("|")));
        parts.push(format!("stale collateral: {}", self.stale.name()));
        if self.collateral.is_some() {
            parts.push("collateral in the blob".into());
        }
        parts.join(", ")
    }
}

fn opt(h: &mut Sha256, v: Option<&[u8]>) {
    match v {
        None => h.update([0]),
        Some(b) => {
            h.update([1]);
            h.update((b.len() as u32).to_be_bytes());
            h.update(b);
        }
    }
}

fn short(m: &[u8]) -> String {
    format!("{}…", hex::encode(&m[..8]))
}

/// Debug, MRTD, RTMR, MRCONFIGID and XFAM outcomes. Each failure names the
/// field with the value found and the value required.
pub fn check_fields(f: &TdFields, p: &TdxRequirement) -> Vec<Outcome> {
    let mut out = vec![if f.debug() {
        Outcome::fail(
            Check::Debug,
            format!(
                "TDATTRIBUTES 0x{:016x} has DEBUG set: the host can read and change the TD's memory",
                f.attributes
            ),
        )
    } else {
        Outcome::pass(
            Check::Debug,
            format!("TDATTRIBUTES 0x{:016x}: DEBUG clear", f.attributes),
        )
    }];
    out.push(if p.mrtds.is_empty() {
        Outcome::skipped(Check::Mrtd, "no allow-list: any MRTD")
    } else if p.mrtds.contains(&f.mrtd) {
        Outcome::pass(
            Check::Mrtd,
            format!("MRTD {} is in the allow-list", hex::encode(f.mrtd)),
        )
    } else {
        Outcome::fail(
            Check::Mrtd,
            format!(
                "MRTD {} is not in the allow-list ({})",
                hex::encode(f.mrtd),
                p.mrtds
                    .iter()
                    .map(|m| short(m))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    });
    let pinned: Vec<usize> = (0..4).filter(|&i| p.rtmrs[i].is_some()).collect();
    out.push(
        match pinned.iter().find(|&&i| p.rtmrs[i] != Some(f.rtmr[i])) {
            _ if pinned.is_empty() => Outcome::skipped(Check::Rtmr, "no RTMR required"),
            Some(&i) => Outcome::fail(
                Check::Rtmr,
                format!(
                    "RTMR{i} is {}, required {}",
                    hex::encode(f.rtmr[i]),
                    hex::encode(p.rtmrs[i].expect("pinned"))
                ),
            ),
            None => Outcome::pass(
                Check::Rtmr,
                format!(
                    "{} equal the required values",
                    pinned
                        .iter()
                        .map(|i| format!("RTMR{i}"))
                        .collect::<Vec<_>>()
                        .join(",")
                ),
            ),
        },
    );
    if let Some(want) = p.mrconfigid {
        out.push(if want == f.mrconfigid {
            Outcome::pass(Check::MrConfigId, "MRCONFIGID equals the required value")
        } else {
            Outcome::fail(
                Check::MrConfigId,
                format!(
                    "MRCONFIGID is {}, required {}",
                    hex::encode(f.mrconfigid),
                    hex::encode(want)
                ),
            )
        });
    }
    if let Some(want) = p.xfam {
        out.push(if want == f.xfam {
            Outcome::pass(Check::Xfam, format!("XFAM 0x{want:016x}"))
        } else {
            Outcome::fail(
                Check::Xfam,
                format!("XFAM is 0x{:016x}, required 0x{want:016x}", f.xfam),
            )
        });
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample() -> TdxRequirement {
        TdxRequirement {
            evidence: TdxEvidence::TdQuote,
            mrtds: vec![[1; 48], [2; 48]],
            rtmrs: [None, Some([3; 48]), None, None],
            mrconfigid: Some([4; 48]),
            xfam: Some(0x61ae7),
            tcb_statuses: TcbStatuses::parse("UpToDate,SWHardeningNeeded").unwrap(),
            stale: StalePolicy::Warn,
            not_before: Some(1_750_000_000),
            collateral: None,
        }
    }

    #[test]
    fn wire_roundtrip_and_rejects() {
        let p = sample();
        let v = serde_json::to_value(p.to_wire()).unwrap();
        assert_eq!(v["require"], "tdx");
        assert_eq!(v["stale"], "warn");
        let w: WireTdx = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(TdxRequirement::from_wire(w).unwrap(), p);
        type M = Box<dyn Fn(&mut serde_json::Value)>;
        let cases: Vec<(&str, M)> = vec![
            ("require", Box::new(|v| v["require"] = "sev-snp".into())),
            ("mrtd", Box::new(|v| v["mrtd"][0] = "00".into())),
            (
                "rtmr index",
                Box::new(|v| v["rtmr"][0] = format!("4={}", "00".repeat(48)).into()),
            ),
            (
                "rtmr twice",
                Box::new(|v| {
                    v["rtmr"] = serde_json::json!([
                        format!("1={}", "00".repeat(48)),
                        format!("1={}", "11".repeat(48))
                    ])
                }),
            ),
            (
                "status",
                Box::new(|v| v["tcb_status"] = serde_json::json!(["Revoked"])),
            ),
            (
                "no status",
                Box::new(|v| v["tcb_status"] = serde_json::json!([])),
            ),
            ("stale", Box::new(|v| v["stale"] = "ignore".into())),
            ("time", Box::new(|v| v["not_before"] = "yesterday".into())),
            (
                "collateral",
                Box::new(|v| v["collateral"] = serde_json::json!({"x": 1})),
            ),
            ("unknown", Box::new(|v| v["extra"] = 1.into())),
        ];
        for (name, f) in cases {
            let mut v = v.clone();
            f(&mut v);
            let r = serde_json::from_value::<WireTdx>(v)
                .map_err(|e| e.to_string())
                .and_then(TdxRequirement::from_wire);
            assert!(r.is_err(), "{name} accepted");
        }
    }

    #[test]
    fn digest_covers_every_requirement_but_not_the_collateral() {
        let base = sample().digest();
        let mut p = sample();
        p.collateral = Some("{}".into());
        assert_eq!(p.digest(), base);
        type Mutation = Box<dyn Fn(&mut TdxRequirement)>;
        let muts: Vec<Mutation> = vec![
            Box::new(|p| p.mrtds.truncate(1)),
            Box::new(|p| p.mrtds[0][47] ^= 1),
            Box::new(|p| p.rtmrs[1] = None),
            Box::new(|p| p.rtmrs[0] = Some([3; 48])),
            Box::new(|p| p.mrconfigid = None),
            Box::new(|p| p.xfam = Some(0)),
            Box::new(|p| p.tcb_statuses = TcbStatuses::default()),
            Box::new(|p| p.stale = StalePolicy::Refuse),
            Box::new(|p| p.not_before = None),
        ];
        for (i, m) in muts.iter().enumerate() {
            let mut p = sample();
            m(&mut p);
            assert_ne!(p.digest(), base, "mutation {i}");
        }
    }

    #[test]
    fn field_checks_name_both_values() {
        let f = TdFields {
            attributes: 0,
            xfam: 0x61ae7,
            mrtd: [1; 48],
            mrconfigid: [4; 48],
            mrowner: [0; 48],
            mrownerconfig: [0; 48],
            rtmr: [[0; 48], [3; 48], [0; 48], [0; 48]],
            report_data: [0; 64],
            mrseam: None,
            tee_tcb_svn: None,
        };
        let p = sample();
        let out = check_fields(&f, &p);
        assert!(
            out.iter()
                .all(|o| o.status != crate::attest::check::Status::Fail),
            "{out:?}"
        );
        let mut g = f.clone();
        g.attributes = 1;
        g.mrtd = [9; 48];
        g.rtmr[1] = [8; 48];
        g.xfam = 7;
        let out = check_fields(&g, &p);
        let fail = |c: Check| out.iter().find(|o| o.check == c).unwrap().detail.clone();
        assert!(fail(Check::Debug).contains("DEBUG set"));
        assert!(fail(Check::Mrtd).contains(&hex::encode([9; 48])));
        let r = fail(Check::Rtmr);
        assert!(
            r.contains(&hex::encode([8; 48])) && r.contains(&hex::encode([3; 48])),
            "{r}"
        );
        assert!(fail(Check::Xfam).contains("0x0000000000000007"));
        assert!(parse_rtmr("3=".to_string().as_str()).is_err());
        assert_eq!(parse_rtmr(&format!("2={}", "ab".repeat(48))).unwrap().0, 2);
        assert_eq!(parse_xfam("0x61ae7").unwrap(), 0x61ae7);
        assert_eq!(p.now(1), 1_750_000_000);
        assert_eq!(p.now(1_800_000_000), 1_800_000_000);
    }
}
