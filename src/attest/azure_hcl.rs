//! Azure's HCL report (pure): what the paravisor writes to vTPM NV index
//! 0x01400001 on a confidential VM.
//!
//! ```text
//! 0      header: u32 signature "HCLA", version, report_size, request_type,
//!                status, 3 × reserved                           (32 bytes)
//! 32     hardware report: SNP report (1184 bytes) or TDREPORT (1024 bytes,
//!        padded to 1184)
//! 1216   IGVM request data: u32 data_size, version, report_type (2 = SNP,
//!        4 = TDX), report_data_hash_type (1 = SHA-256, 2 = SHA-384,
//!        3 = SHA-512), variable_data_size                    (20 bytes)
//! 1236   variable ("runtime") data: JSON with the vTPM keys
//! ```
//!
//! The hardware report's `report_data` begins with the hash of the runtime
//! data, which lists the vTPM attestation key as JWK `kid` "HCLAkPub". All
//! integers are little-endian. Bytes after `report_size` (the rest of the
//! NV index) are ignored.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest as _, Sha256, Sha384, Sha512};

const SIGNATURE: &[u8; 4] = b"HCLA";
const HEADER_LEN: usize = 32;
const HW_REPORT_LEN: usize = 1184;
const REQUEST_DATA_OFFSET: usize = HEADER_LEN + HW_REPORT_LEN;
const REQUEST_HEADER_LEN: usize = 20;
/// Where `report_data` sits inside each kind of hardware report.
const SNP_REPORT_DATA: usize = 0x50;
const TDX_REPORT_DATA: usize = 0x80;
/// Larger HCL reports are refused (the NV index is 2–3 KiB).
pub const MAX_HCL_LEN: usize = 16 * 1024;
/// The attestation key's JWK `kid`.
pub const AK_KID: &str = "HCLAkPub";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    Snp,
    Tdx,
}

impl ReportKind {
    pub fn name(self) -> &'static str {
        match self {
            ReportKind::Snp => "SEV-SNP",
            ReportKind::Tdx => "TDX",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashType {
    Sha256,
    Sha384,
    Sha512,
}

impl HashType {
    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            HashType::Sha256 => Sha256::digest(data).to_vec(),
            HashType::Sha384 => Sha384::digest(data).to_vec(),
            HashType::Sha512 => Sha512::digest(data).to_vec(),
        }
    }
    fn name(self) -> &'static str {
        match self {
            HashType::Sha256 => "SHA-256",
            HashType::Sha384 => "SHA-384",
            HashType::Sha512 => "SHA-512",
        }
    }
}

/// An RSA public key (big-endian modulus and exponent, no leading zeros).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RsaPub {
    pub n: Vec<u8>,
    pub e: Vec<u8>,
}

impl RsaPub {
    pub fn new(n: &[u8], e: &[u8]) -> RsaPub {
        let strip = |v: &[u8]| {
            let i = v.iter().position(|&b| b != 0).unwrap_or(v.len());
            v[i..].to_vec()
        };
        RsaPub {
            n: strip(n),
            e: strip(e),
        }
    }
    pub fn bits(&self) -> usize {
        self.n.len() * 8 - self.n.first().map_or(0, |b| b.leading_zeros() as usize)
    }
    /// First bytes of the modulus, for messages.
    pub fn fingerprint(&self) -> String {
        hex::encode(&self.n[..self.n.len().min(8)])
    }
}

/// A parsed HCL report.
#[derive(Debug, Clone)]
pub struct HclReport {
    pub version: u32,
    pub kind: ReportKind,
    pub hash: HashType,
    /// The 1184-byte hardware report area.
    pub hw_report: Vec<u8>,
    /// The variable data the report binds.
    pub runtime_data: Vec<u8>,
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().expect("4 bytes"))
}

impl HclReport {
    /// Parse the contents of NV index 0x01400001. Never panics.
    pub fn parse(b: &[u8]) -> Result<HclReport, String> {
        if b.len() > MAX_HCL_LEN {
            return Err(format!(
                "HCL report is {} bytes, larger than the {MAX_HCL_LEN}-byte limit",
                b.len()
            ));
        }
        if b.len() < REQUEST_DATA_OFFSET + REQUEST_HEADER_LEN {
            return Err(format!(
                "HCL report is {} bytes, shorter than its fixed part ({})",
                b.len(),
                REQUEST_DATA_OFFSET + REQUEST_HEADER_LEN
            ));
        }
        if &b[..4] != SIGNATURE {
            return Err(format!(
                "HCL report signature is {}, not \"HCLA\"",
                hex::encode(&b[..4])
            ));
        }
        let version = u32_at(b, 4);
        if !(1..=2).contains(&version) {
            return Err(format!("unsupported HCL report version {version}"));
        }
        let report_size = u32_at(b, 8) as usize;
        let status = u32_at(b, 16);
        if status != 0 {
            return Err(format!("HCL report status is {status}, not 0"));
        }
        let r = REQUEST_DATA_OFFSET;
        let data_size = u32_at(b, r) as usize;
        let kind = match u32_at(b, r + 8) {
            2 => ReportKind::Snp,
            4 => ReportKind::Tdx,
            o => return Err(format!("unknown hardware report type {o}")),
        };
        let hash = match u32_at(b, r + 12) {
            1 => HashType::Sha256,
            2 => HashType::Sha384,
            3 => HashType::Sha512,
            o => return Err(format!("unknown report-data hash type {o}")),
        };
        let var_size = u32_at(b, r + 16) as usize;
        if data_size != REQUEST_HEADER_LEN + var_size {
            return Err(format!(
                "request data size {data_size} does not match runtime data size {var_size} + {REQUEST_HEADER_LEN}"
            ));
        }
        if report_size != r + data_size {
            return Err(format!(
                "report size {report_size} does not match its parts ({})",
                r + data_size
            ));
        }
        if report_size > b.len() {
            return Err(format!(
                "HCL report is truncated: {} of {report_size} bytes",
                b.len()
            ));
        }
        Ok(HclReport {
            version,
            kind,
            hash,
            hw_report: b[HEADER_LEN..r].to_vec(),
            runtime_data: b[r + REQUEST_HEADER_LEN..report_size].to_vec(),
        })
    }

    /// The hardware report's `report_data` field.
    pub fn report_data(&self) -> &[u8] {
        let off = match self.kind {
            ReportKind::Snp => SNP_REPORT_DATA,
            ReportKind::Tdx => TDX_REPORT_DATA,
        };
        &self.hw_report[off..off + 64]
    }

    /// `report_data` must begin with the hash of the runtime data, and the
    /// rest of it must be zero (so no bit of it goes unchecked).
    pub fn check_binding(&self) -> Result<String, String> {
        let d = self.hash.digest(&self.runtime_data);
        let rest = &self.report_data()[d.len()..];
        if rest.iter().any(|&b| b != 0) {
            return Err(format!(
                "report_data after the {} of the runtime data is {}, expected zero",
                self.hash.name(),
                hex::encode(rest)
            ));
        }
        if self.report_data()[..d.len()] == d[..] {
            Ok(format!(
                "report_data begins with the {} of the runtime data",
                self.hash.name()
            ))
        } else {
            Err(format!(
                "report_data ({}…) does not begin with the {} of the runtime data ({}…): the runtime data (and HCLAkPub) is not the one the hardware report vouches for",
                hex::encode(&self.report_data()[..8]),
                self.hash.name(),
                hex::encode(&d[..8])
            ))
        }
    }

    fn runtime_json(&self) -> Result<serde_json::Value, String> {
        let v: serde_json::Value = serde_json::from_slice(&self.runtime_data)
            .map_err(|e| format!("runtime data is not JSON: {e}"))?;
        if !v.is_object() {
            return Err("runtime data is not a JSON object".into());
        }
        Ok(v)
    }

    /// The vTPM attestation key the runtime data lists as "HCLAkPub".
    pub fn ak_pub(&self) -> Result<RsaPub, String> {
        let v = self.runtime_json()?;
        let keys = v
            .get("keys")
            .and_then(|k| k.as_array())
            .ok_or("runtime data has no \"keys\" array")?;
        let mut found = keys
            .iter()
            .filter(|k| k.get("kid").and_then(|s| s.as_str()) == Some(AK_KID));
        let k = found
            .next()
            .ok_or_else(|| format!("runtime data lists no {AK_KID} key"))?;
        if found.next().is_some() {
            return Err(format!("runtime data lists {AK_KID} more than once"));
        }
        if k.get("kty").and_then(|s| s.as_str()) != Some("RSA") {
            return Err(format!("{AK_KID} is not an RSA key"));
        }
        let field = |name: &str| -> Result<Vec<u8>, String> {
            let s = k
                .get(name)
                .and_then(|s| s.as_str())
                .ok_or_else(|| format!("{AK_KID} has no \"{name}\""))?;
            let v = URL_SAFE_NO_PAD
                .decode(s.trim_end_matches('='))
                .map_err(|e| format!("{AK_KID}.{name}: {e}"))?;
            if v.iter().all(|&b| b == 0) {
                return Err(format!("{AK_KID}.{name} is zero"));
            }
            Ok(v)
        };
        let key = RsaPub::new(&field("n")?, &field("e")?);
        if !(1024..=8192).contains(&key.bits()) {
            return Err(format!("{AK_KID} is a {}-bit RSA key", key.bits()));
        }
        Ok(key)
    }

    /// The runtime data's `vm-configuration` object, for display.
    pub fn vm_configuration(&self) -> Option<serde_json::Value> {
        self.runtime_json()
            .ok()
            .and_then(|v| v.get("vm-configuration").cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal, consistent HCL report around `hw` with `var` runtime data.
    pub(crate) fn build(hw: &[u8; 1184], var: &[u8], kind: u32) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(b"HCLA");
        for v in [
            1u32,
            (REQUEST_DATA_OFFSET + 20 + var.len()) as u32,
            2,
            0,
            0,
            0,
            0,
        ] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(hw);
        for v in [20 + var.len() as u32, 1, kind, 1, var.len() as u32] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(var);
        b
    }

    #[test]
    fn rejects_bad_framing_without_panicking() {
        let var = br#"{"keys":[]}"#;
        let good = build(&[0; 1184], var, 2);
        assert!(HclReport::parse(&good).is_ok());
        for n in 0..good.len() {
            assert!(HclReport::parse(&good[..n]).is_err(), "truncated to {n}");
        }
        assert!(HclReport::parse(&vec![0; MAX_HCL_LEN + 1]).is_err());
        let mut padded = good.clone();
        padded.resize(2048, 0);
        assert!(HclReport::parse(&padded).is_ok());
        for (off, val) in [
            (0usize, 0u32),                   // signature
            (4, 9),                           // version
            (8, 5000),                        // report size
            (16, 1),                          // status
            (REQUEST_DATA_OFFSET, 1),         // data size
            (REQUEST_DATA_OFFSET + 8, 3),     // report type
            (REQUEST_DATA_OFFSET + 12, 0),    // hash type
            (REQUEST_DATA_OFFSET + 16, 9999), // var size
            (REQUEST_DATA_OFFSET + 16, u32::MAX),
        ] {
            let mut b = good.clone();
            b[off..off + 4].copy_from_slice(&val.to_le_bytes());
            assert!(HclReport::parse(&b).is_err(), "offset {off} = {val}");
        }
    }

    #[test]
    fn binding_and_key_from_runtime_data() {
        let var = br#"{"keys":[{"kid":"HCLAkPub","kty":"RSA","e":"AQAB","n":"AAEAAQAB__8AAQABAAEAAQABAAEAAQABAAEAAQABAAEAAQABAAEAAQABAAEAAQABAAEAAQABAAEAAQABAAEAAQABAAEAAQABAAEAAQABAAEAAQABAAEAAQABAAEAAQABAAEAAQABAAEAAQABAAEAAQABAAEAAQABAAEAAQABAAEAAQAB"}]}"#;
        let mut hw = [0u8; 1184];
        hw[SNP_REPORT_DATA..SNP_REPORT_DATA + 32].copy_from_slice(&Sha256::digest(var));
        let h = HclReport::parse(&build(&hw, var, 2)).unwrap();
        assert!(h.check_binding().is_ok());
        let k = h.ak_pub().unwrap();
        assert_eq!(k.e, vec![1, 0, 1]);
        assert_eq!(k.n[0], 1, "leading zero stripped");
        hw[SNP_REPORT_DATA] ^= 1;
        let h = HclReport::parse(&build(&hw, var, 2)).unwrap();
        assert!(h.check_binding().unwrap_err().contains("does not begin"));
    }

    #[test]
    fn key_extraction_rejects_odd_runtime_data() {
        for var in [
            &b"not json"[..],
            b"[]",
            br#"{"keys":{}}"#,
            br#"{"keys":[]}"#,
            br#"{"keys":[{"kid":"HCLAkPub","kty":"EC"}]}"#,
            br#"{"keys":[{"kid":"HCLAkPub","kty":"RSA","e":"AQAB"}]}"#,
            br#"{"keys":[{"kid":"HCLAkPub","kty":"RSA","e":"AQAB","n":"AQAB"}]}"#,
            br#"{"keys":[{"kid":"HCLAkPub","kty":"RSA","e":"AQAB","n":"*"}]}"#,
            br#"{"keys":[{"kid":"HCLAkPub","kty":"RSA","e":"AA","n":"AQAB"}]}"#,
        ] {
            let h = HclReport::parse(&build(&[0; 1184], var, 2)).unwrap();
            assert!(h.ak_pub().is_err(), "{}", String::from_utf8_lossy(var));
        }
    }
}
