//! The platform requirement a blob carries (pure): its wire form in the
//! blob's `platform` object, the option parsers `enroll` uses, and the
//! digest the envelope is bound to.

use super::check::{Check, Outcome};
use super::snp_report::{
    bits_from_names, debug_bit, names_from_bits, Report, RequiredSignature, Tcb,
};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// Length of an SNP launch measurement (SHA-384).
pub const MEASUREMENT_LEN: usize = 48;
/// Bounds on what a blob may carry.
pub const MAX_MEASUREMENTS: usize = 64;
pub const MAX_CERTS: usize = 8;
pub const MAX_CERT_BYTES: usize = 8 * 1024;

/// The only kind of platform sealroot verifies today.
pub const REQUIRE_SNP: &str = "sev-snp";

/// What a report must satisfy. Debugging is always disallowed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SnpRequirement {
    /// Allowed launch measurements; empty means any.
    pub measurements: Vec<[u8; MEASUREMENT_LEN]>,
    /// Minimum reported TCB, component by component.
    pub min_tcb: Option<Tcb>,
    /// Guest policy bits that must be set.
    pub guest_policy_require: u64,
    /// Guest policy bits that must be clear (besides debug).
    pub guest_policy_forbid: u64,
    /// Accept a report whose signature cannot be checked because no VCEK
    /// for its chip and TCB is available. A VCEK that is available must
    /// always verify.
    pub unsigned_ok: bool,
    /// VCEK certificates (DER) to verify the report with.
    pub vceks: Vec<Vec<u8>>,
    /// ASK (and optionally ARK) certificates (DER); the ARK is pinned.
    pub ca: Vec<Vec<u8>>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WireRequirement {
    require: String,
    measurements: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    min_tcb: Option<WireTcb>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    guest_policy_require: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    guest_policy_forbid: Vec<String>,
    signature: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    vcek: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    ca: Vec<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireTcb {
    bootloader: u8,
    tee: u8,
    snp: u8,
    microcode: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fmc: Option<u8>,
}

impl SnpRequirement {
    pub(crate) fn from_wire(w: WireRequirement) -> Result<SnpRequirement, String> {
        if w.require != REQUIRE_SNP {
            return Err(format!(
                "platform.require is {:?}; only {REQUIRE_SNP:?} is supported",
                w.require
            ));
        }
        if w.measurements.len() > MAX_MEASUREMENTS {
            return Err(format!(
                "platform.measurements has {} entries (at most {MAX_MEASUREMENTS})",
                w.measurements.len()
            ));
        }
        let measurements = w
            .measurements
            .iter()
            .map(|m| parse_measurement(m).map_err(|e| format!("platform.measurements: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        let unsigned_ok = match w.signature.as_str() {
            "required" => false,
            "if-available" => true,
            o => {
                return Err(format!(
                    "platform.signature is {o:?}, not \"required\" or \"if-available\""
                ))
            }
        };
        let certs = |list: &[String], what: &str| -> Result<Vec<Vec<u8>>, String> {
            if list.len() > MAX_CERTS {
                return Err(format!("platform.{what} has more than {MAX_CERTS} entries"));
            }
            list.iter()
                .map(|c| {
                    let der = B64.decode(c).map_err(|e| format!("platform.{what}: {e}"))?;
                    if der.is_empty() || der.len() > MAX_CERT_BYTES {
                        return Err(format!(
                            "platform.{what}: certificate of {} bytes",
                            der.len()
                        ));
                    }
                    Ok(der)
                })
                .collect()
        };
        Ok(SnpRequirement {
            measurements,
            min_tcb: w.min_tcb.map(|t| Tcb {
                fmc: t.fmc,
                bootloader: t.bootloader,
                tee: t.tee,
                snp: t.snp,
                microcode: t.microcode,
            }),
            guest_policy_require: bits_from_names(&w.guest_policy_require)
                .map_err(|e| format!("platform.guest_policy_require: {e}"))?,
            guest_policy_forbid: bits_from_names(&w.guest_policy_forbid)
                .map_err(|e| format!("platform.guest_policy_forbid: {e}"))?,
            unsigned_ok,
            vceks: certs(&w.vcek, "vcek")?,
            ca: certs(&w.ca, "ca")?,
        })
        .and_then(|p| p.validate().map(|_| p))
    }

    pub(crate) fn to_wire(&self) -> WireRequirement {
        WireRequirement {
            require: REQUIRE_SNP.into(),
            measurements: self.measurements.iter().map(hex::encode).collect(),
            min_tcb: self.min_tcb.map(|t| WireTcb {
                bootloader: t.bootloader,
                tee: t.tee,
                snp: t.snp,
                microcode: t.microcode,
                fmc: t.fmc,
            }),
            guest_policy_require: names_from_bits(self.guest_policy_require),
            guest_policy_forbid: names_from_bits(self.guest_policy_forbid),
            signature: if self.unsigned_ok {
                "if-available"
            } else {
                "required"
            }
            .into(),
            vcek: self.vceks.iter().map(|c| B64.encode(c)).collect(),
            ca: self.ca.iter().map(|c| B64.encode(c)).collect(),
        }
    }

    /// What it says about the report's signature.
    pub fn signature(&self) -> RequiredSignature<'_> {
        RequiredSignature {
            vceks: &self.vceks,
            ca: &self.ca,
            unsigned_ok: self.unsigned_ok,
        }
    }

    /// Internal consistency (also used for options given on the command line).
    pub fn validate(&self) -> Result<(), String> {
        let both = self.guest_policy_require & self.guest_policy_forbid;
        if both != 0 {
            return Err(format!(
                "guest policy flag(s) {} both required and forbidden",
                names_from_bits(both).join(",")
            ));
        }
        if self.guest_policy_require & debug_bit() != 0 {
            return Err("the debug guest policy flag cannot be required".into());
        }
        Ok(())
    }

    /// Digest of the requirements (not of the certificates, which only
    /// help to verify and can be replaced by files at boot). The envelope's
    /// associated data includes it, so a token whose requirements were
    /// edited or removed does not decrypt.
    pub fn digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"sealroot-platform-v1\0");
        h.update(REQUIRE_SNP.as_bytes());
        h.update([0]);
        h.update((self.measurements.len() as u32).to_be_bytes());
        for m in &self.measurements {
            h.update(m);
        }
        match &self.min_tcb {
            None => h.update([0]),
            Some(t) => {
                h.update([1, t.bootloader, t.tee, t.snp, t.microcode]);
                match t.fmc {
                    None => h.update([0]),
                    Some(f) => h.update([1, f]),
                }
            }
        }
        h.update(self.guest_policy_require.to_be_bytes());
        h.update(self.guest_policy_forbid.to_be_bytes());
        h.update([u8::from(self.unsigned_ok)]);
        h.finalize().into()
    }
}

/// A 48-byte launch measurement in hex (96 digits).
pub fn parse_measurement(s: &str) -> Result<[u8; MEASUREMENT_LEN], String> {
    let v = hex::decode(s.trim()).map_err(|e| format!("{s:?} is not hex: {e}"))?;
    v.as_slice().try_into().map_err(|_| {
        format!(
            "{s:?} is {} bytes; a launch measurement is {MEASUREMENT_LEN} bytes (96 hex digits)",
            v.len()
        )
    })
}

/// `bootloader=3,tee=0,snp=8,microcode=115[,fmc=N]` (aliases `bl`,
/// `ucode`); components left out are 0.
pub fn parse_min_tcb(s: &str) -> Result<Tcb, String> {
    let mut t = Tcb::default();
    let mut seen = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("{part:?}: expected NAME=VALUE"))?;
        let v: u8 = v
            .trim()
            .parse()
            .map_err(|_| format!("{part:?}: value must be 0..255"))?;
        let k = match k.trim() {
            "bootloader" | "bl" => "bootloader",
            "tee" => "tee",
            "snp" => "snp",
            "microcode" | "ucode" => "microcode",
            "fmc" => "fmc",
            o => {
                return Err(format!(
                    "unknown TCB component {o:?} (bootloader, tee, snp, microcode, fmc)"
                ))
            }
        };
        if seen.contains(&k) {
            return Err(format!("{k} given twice"));
        }
        seen.push(k);
        match k {
            "bootloader" => t.bootloader = v,
            "tee" => t.tee = v,
            "snp" => t.snp = v,
            "microcode" => t.microcode = v,
            _ => t.fmc = Some(v),
        }
    }
    if seen.is_empty() {
        return Err("empty TCB".into());
    }
    Ok(t)
}

/// Debug, measurement, TCB and guest-policy outcomes.
pub fn check_fields(r: &Report, p: &SnpRequirement) -> Vec<Outcome> {
    let mut out = Vec::new();
    out.push(if r.debug_allowed() {
        Outcome::fail(
            Check::Debug,
            "the guest policy allows debugging: the hypervisor can read and change guest memory",
        )
    } else {
        Outcome::pass(Check::Debug, "debugging disallowed")
    });
    out.push(if p.measurements.is_empty() {
        Outcome::skipped(Check::Measurement, "no allow-list: any launch measurement")
    } else if p.measurements.iter().any(|m| m == r.measurement()) {
        Outcome::pass(
            Check::Measurement,
            format!(
                "{} is in the allow-list ({} entries)",
                hex::encode(r.measurement()),
                p.measurements.len()
            ),
        )
    } else {
        Outcome::fail(
            Check::Measurement,
            format!(
                "launch measurement {} is not in the allow-list ({})",
                hex::encode(r.measurement()),
                p.measurements
                    .iter()
                    .map(|m| format!("{}…", hex::encode(&m[..8])))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    });
    out.push(match &p.min_tcb {
        None => Outcome::skipped(Check::Tcb, "no minimum TCB"),
        Some(min) => {
            let below = r.reported_tcb().below(min);
            if below.is_empty() {
                Outcome::pass(
                    Check::Tcb,
                    format!("reported TCB {} ≥ {min}", r.reported_tcb()),
                )
            } else {
                Outcome::fail(
                    Check::Tcb,
                    format!(
                        "reported TCB {} is below the minimum {min}: {}",
                        r.reported_tcb(),
                        below.join(", ")
                    ),
                )
            }
        }
    });
    if p.guest_policy_require != 0 || p.guest_policy_forbid != 0 {
        let gp = r.guest_policy();
        let missing = names_from_bits(p.guest_policy_require & !gp);
        let present = names_from_bits(p.guest_policy_forbid & gp);
        out.push(if missing.is_empty() && present.is_empty() {
            Outcome::pass(Check::GuestPolicy, format!("guest policy 0x{gp:016x}"))
        } else {
            let mut why = Vec::new();
            if !missing.is_empty() {
                why.push(format!("required flag(s) not set: {}", missing.join(",")));
            }
            if !present.is_empty() {
                why.push(format!("forbidden flag(s) set: {}", present.join(",")));
            }
            Outcome::fail(
                Check::GuestPolicy,
                format!("guest policy 0x{gp:016x}: {}", why.join("; ")),
            )
        });
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::attest::snp_report::parse_guest_policy_names;

    pub(crate) fn sample() -> SnpRequirement {
        SnpRequirement {
            measurements: vec![[7; 48], [8; 48]],
            min_tcb: Some(Tcb {
                fmc: None,
                bootloader: 3,
                tee: 0,
                snp: 8,
                microcode: 115,
            }),
            guest_policy_require: 0,
            guest_policy_forbid: 1 << 18,
            unsigned_ok: false,
            vceks: vec![vec![0x30, 1, 2]],
            ca: vec![],
        }
    }

    #[test]
    fn wire_roundtrip() {
        let p = sample();
        let v = serde_json::to_value(p.to_wire()).unwrap();
        assert_eq!(v["require"], "sev-snp");
        assert_eq!(v["signature"], "required");
        assert_eq!(v["guest_policy_forbid"], serde_json::json!(["migrate-ma"]));
        let w: WireRequirement = serde_json::from_value(v).unwrap();
        assert_eq!(SnpRequirement::from_wire(w).unwrap(), p);
    }

    #[test]
    fn wire_rejects_bad_values() {
        type M = Box<dyn Fn(&mut serde_json::Value)>;
        let cases: Vec<(&str, M)> = vec![
            ("require", Box::new(|v| v["require"] = "tdx".into())),
            (
                "measurement",
                Box::new(|v| v["measurements"][0] = "00".into()),
            ),
            ("signature", Box::new(|v| v["signature"] = "maybe".into())),
            (
                "flag",
                Box::new(|v| v["guest_policy_forbid"] = serde_json::json!(["smtx"])),
            ),
            (
                "both",
                Box::new(|v| v["guest_policy_require"] = serde_json::json!(["migrate-ma"])),
            ),
            (
                "debug",
                Box::new(|v| v["guest_policy_require"] = serde_json::json!(["debug"])),
            ),
            ("vcek", Box::new(|v| v["vcek"] = serde_json::json!(["!"]))),
            ("tcb", Box::new(|v| v["min_tcb"]["snp"] = 256.into())),
            ("unknown", Box::new(|v| v["extra"] = 1.into())),
            ("unknown-tcb", Box::new(|v| v["min_tcb"]["spl5"] = 1.into())),
        ];
        for (name, f) in cases {
            let mut v = serde_json::to_value(sample().to_wire()).unwrap();
            f(&mut v);
            let r = serde_json::from_value::<WireRequirement>(v)
                .map_err(|e| e.to_string())
                .and_then(SnpRequirement::from_wire);
            assert!(r.is_err(), "{name} accepted");
        }
    }

    #[test]
    fn digest_covers_every_requirement_but_not_the_certificates() {
        let base = sample().digest();
        let mut p = sample();
        p.vceks.clear();
        p.ca.push(vec![1]);
        assert_eq!(p.digest(), base);
        type Mutation = Box<dyn Fn(&mut SnpRequirement)>;
        let muts: Vec<Mutation> = vec![
            Box::new(|p| p.measurements.pop().map(|_| ()).unwrap()),
            Box::new(|p| p.measurements[0][47] ^= 1),
            Box::new(|p| p.min_tcb = None),
            Box::new(|p| p.min_tcb.as_mut().unwrap().snp = 9),
            Box::new(|p| p.min_tcb.as_mut().unwrap().fmc = Some(0)),
            Box::new(|p| p.guest_policy_require = 1 << 20),
            Box::new(|p| p.guest_policy_forbid = 0),
            Box::new(|p| p.unsigned_ok = true),
        ];
        for (i, m) in muts.iter().enumerate() {
            let mut p = sample();
            m(&mut p);
            assert_ne!(p.digest(), base, "mutation {i}");
        }
    }

    #[test]
    fn option_parsers() {
        let t = parse_min_tcb("bl=3, tee=0,snp=8,ucode=115").unwrap();
        assert_eq!((t.bootloader, t.tee, t.snp, t.microcode), (3, 0, 8, 115));
        assert_eq!(t.fmc, None);
        assert_eq!(parse_min_tcb("fmc=1").unwrap().fmc, Some(1));
        for bad in ["", "x=1", "snp", "snp=256", "snp=1,snp=2", "snp=-1"] {
            assert!(parse_min_tcb(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_guest_policy_names("smt, migrate-ma").unwrap(),
            (1 << 16) | (1 << 18)
        );
        assert!(parse_guest_policy_names("smt,nope").is_err());
        assert!(parse_guest_policy_names(" ,").is_err());
        assert!(parse_measurement(&"ab".repeat(48)).is_ok());
        assert!(parse_measurement(&"ab".repeat(47)).is_err());
        assert!(parse_measurement(&"zz".repeat(48)).is_err());
    }
}
