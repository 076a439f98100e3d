//! Intel TDX reports (pure): the TD fields of a TDREPORT (what Azure's HCL
//! report carries) and of a TD quote's report body, parsed strictly from
//! untrusted bytes. No cryptography here: a TDREPORT is MAC'd by the CPU and
//! cannot be verified off the platform; a quote is verified in
//! [`super::tdx_quote`].
//!
//! TDREPORT_STRUCT (Intel TDX Module ABI spec, `TDG.MR.REPORT`; 1024 bytes):
//!
//! ```text
//! 0     REPORTMACSTRUCT   256  REPORTTYPE (type 0x81 = TDX, subtype 0,
//!                              version 0|1, reserved), reserved 12, CPUSVN 16,
//!                              TEE_TCB_INFO_HASH 48, TDINFO_HASH 48,
//!                              REPORTDATA 64 (offset 128), reserved 32, MAC 32
//! 256   TEE_TCB_INFO      239
//! 495   reserved           17
//! 512   TDINFO            512  ATTRIBUTES 8, XFAM 8, MRTD 48, MRCONFIGID 48,
//!                              MROWNER 48, MROWNERCONFIG 48, RTMR0..3 4 × 48,
//!                              SERVTD_HASH 48, reserved 64
//! ```
//!
//! TD quote (Intel TDX DCAP Quote Generation Library and Quote Verification
//! Library, "TD Quote Format"; all integers little-endian):
//!
//! ```text
//! v4: header 48 (version u16 = 4, attestation key type u16 = 2 (ECDSA P-256),
//!     TEE type u32 = 0x81, …), TD report body 584 at offset 48, then
//!     u32 signature-data length and the signature data.
//! v5: header 48 (version 5), u16 body type (2 = TD 1.0, 3 = TD 1.5),
//!     u32 body size (584 | 648), body at offset 54, then the signature data.
//! TD 1.0 body: TEE_TCB_SVN 16, MRSEAM 48, MRSIGNERSEAM 48, SEAMATTRIBUTES 8,
//!     TDATTRIBUTES 8, XFAM 8, MRTD 48 (body offset 136), MRCONFIGID 48,
//!     MROWNER 48, MROWNERCONFIG 48, RTMR0..3 4 × 48, REPORTDATA 64.
//! TD 1.5 body: the TD 1.0 body, TEE_TCB_SVN2 16, MRSERVICETD 48.
//! ```

use serde::Serialize;
use std::fmt;

/// Size of TDREPORT_STRUCT.
pub const TDREPORT_LEN: usize = 1024;
/// REPORTTYPE.TYPE of a TDX report.
pub const REPORT_TYPE_TDX: u8 = 0x81;
/// TEE type in a quote header for TDX.
pub const TEE_TYPE_TDX: u32 = 0x81;
/// Length of a quote header.
pub const QUOTE_HEADER_LEN: usize = 48;
/// TD 1.0 report body in a quote.
pub const TD10_BODY_LEN: usize = 584;
/// TD 1.5 report body in a quote (v5 only).
pub const TD15_BODY_LEN: usize = 648;
/// Larger quotes are refused (a quote with its PCK chain is about 5 KiB).
pub const MAX_QUOTE_LEN: usize = 64 * 1024;
/// Length of a TD measurement register (SHA-384).
pub const MR_LEN: usize = 48;
/// TDATTRIBUTES bit 0: the TD is debuggable (the host can read its memory).
pub const ATTR_DEBUG: u64 = 1;

/// A 48-byte TD measurement register.
pub type Mr = [u8; MR_LEN];

/// A parse failure, naming the field with what was found and what was
/// expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub found: String,
    pub expected: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} is {}, expected {}",
            self.field, self.found, self.expected
        )
    }
}

impl std::error::Error for FieldError {}

fn bad(field: &'static str, found: impl fmt::Display, expected: impl fmt::Display) -> FieldError {
    FieldError {
        field,
        found: found.to_string(),
        expected: expected.to_string(),
    }
}

/// The TD fields a requirement judges, from a TDREPORT or a quote body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TdFields {
    /// TDATTRIBUTES (little-endian u64).
    pub attributes: u64,
    /// XFAM (little-endian u64).
    pub xfam: u64,
    pub mrtd: Mr,
    pub mrconfigid: Mr,
    pub mrowner: Mr,
    pub mrownerconfig: Mr,
    pub rtmr: [Mr; 4],
    pub report_data: [u8; 64],
    /// Quote only: the TDX module's measurement.
    pub mrseam: Option<Mr>,
    /// Quote only: TEE_TCB_SVN.
    pub tee_tcb_svn: Option<[u8; 16]>,
}

fn arr<const N: usize>(b: &[u8], off: usize) -> [u8; N] {
    b[off..off + N].try_into().expect("in bounds")
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(arr(b, off))
}

impl TdFields {
    /// Is the TD debuggable (TDATTRIBUTES.DEBUG)?
    pub fn debug(&self) -> bool {
        self.attributes & ATTR_DEBUG != 0
    }

    /// From a TD 1.0 report body (at least [`TD10_BODY_LEN`] bytes).
    fn from_quote_body(b: &[u8]) -> TdFields {
        TdFields {
            tee_tcb_svn: Some(arr(b, 0)),
            mrseam: Some(arr(b, 16)),
            attributes: u64_at(b, 120),
            xfam: u64_at(b, 128),
            mrtd: arr(b, 136),
            mrconfigid: arr(b, 184),
            mrowner: arr(b, 232),
            mrownerconfig: arr(b, 280),
            rtmr: [arr(b, 328), arr(b, 376), arr(b, 424), arr(b, 472)],
            report_data: arr(b, 520),
        }
    }

    /// The fields `sealroot platform` shows (hex).
    pub fn view(&self) -> TdView {
        TdView {
            attributes: format!("0x{:016x}", self.attributes),
            debug: self.debug(),
            xfam: format!("0x{:016x}", self.xfam),
            mrtd: hex::encode(self.mrtd),
            mrconfigid: hex::encode(self.mrconfigid),
            mrowner: hex::encode(self.mrowner),
            mrownerconfig: hex::encode(self.mrownerconfig),
            rtmr: self.rtmr.iter().map(hex::encode).collect(),
            report_data: hex::encode(self.report_data),
            mrseam: self.mrseam.map(hex::encode),
            tee_tcb_svn: self.tee_tcb_svn.map(hex::encode),
        }
    }
}

/// TD fields as `sealroot platform --json` shows them (hex strings).
#[derive(Debug, Clone, Serialize)]
pub struct TdView {
    pub attributes: String,
    pub debug: bool,
    pub xfam: String,
    pub mrtd: String,
    pub mrconfigid: String,
    pub mrowner: String,
    pub mrownerconfig: String,
    /// RTMR0..3.
    pub rtmr: Vec<String>,
    pub report_data: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mrseam: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tee_tcb_svn: Option<String>,
}

/// Parse a TDREPORT_STRUCT: the first [`TDREPORT_LEN`] bytes of `area`
/// (the HCL report's 1184-byte hardware-report area); the rest of `area`
/// must be zero. Checks REPORTTYPE (0x81, subtype 0, version 0 or 1) and
/// the reserved bytes. Never panics.
///
/// Errors: a [`FieldError`] naming the field.
pub fn parse_tdreport(area: &[u8]) -> Result<TdFields, FieldError> {
    if area.len() < TDREPORT_LEN {
        return Err(bad(
            "TDREPORT length",
            area.len(),
            format!("at least {TDREPORT_LEN}"),
        ));
    }
    let (r, pad) = area.split_at(TDREPORT_LEN);
    if let Some(i) = pad.iter().position(|&b| b != 0) {
        return Err(bad(
            "padding after the TDREPORT",
            format!("non-zero at offset {}", TDREPORT_LEN + i),
            "zero",
        ));
    }
    if r[0] != REPORT_TYPE_TDX {
        return Err(bad(
            "REPORTTYPE.TYPE",
            format!("0x{:02x}", r[0]),
            "0x81 (TDX)",
        ));
    }
    if r[1] != 0 {
        return Err(bad("REPORTTYPE.SUBTYPE", r[1], 0));
    }
    if r[2] > 1 {
        return Err(bad("REPORTTYPE.VERSION", r[2], "0 or 1"));
    }
    for (name, range) in [
        ("REPORTTYPE.reserved", 3..4),
        ("REPORTMACSTRUCT reserved", 4..16),
        ("REPORTMACSTRUCT reserved2", 192..224),
        ("TDREPORT reserved", 495..512),
        ("TDINFO reserved", 960..1024),
    ] {
        if r[range.clone()].iter().any(|&b| b != 0) {
            return Err(bad(name, hex::encode(&r[range]), "zero"));
        }
    }
    let t = &r[512..];
    Ok(TdFields {
        attributes: u64_at(t, 0),
        xfam: u64_at(t, 8),
        mrtd: arr(t, 16),
        mrconfigid: arr(t, 64),
        mrowner: arr(t, 112),
        mrownerconfig: arr(t, 160),
        rtmr: [arr(t, 208), arr(t, 256), arr(t, 304), arr(t, 352)],
        report_data: arr(r, 128),
        mrseam: None,
        tee_tcb_svn: None,
    })
}

/// The structure of a TD quote, without verifying anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuoteLayout {
    /// 4 or 5.
    pub version: u16,
    /// Where the TD report body starts, and its length.
    pub body: std::ops::Range<usize>,
    /// The quote's length without trailing zero padding.
    pub len: usize,
    pub fields: TdFields,
}

/// Parse a TD quote's framing (v4 or v5, ECDSA P-256, TEE type TDX) and its
/// TD report body. The signature data must fit exactly; bytes after it may
/// only be zero padding (configfs-tsm and capture tools pad). Never panics.
///
/// Errors: a [`FieldError`] naming the field.
pub fn parse_quote(q: &[u8]) -> Result<QuoteLayout, FieldError> {
    if q.len() > MAX_QUOTE_LEN {
        return Err(bad(
            "quote length",
            q.len(),
            format!("at most {MAX_QUOTE_LEN}"),
        ));
    }
    if q.len() < QUOTE_HEADER_LEN + TD10_BODY_LEN + 4 {
        return Err(bad(
            "quote length",
            q.len(),
            format!("at least {}", QUOTE_HEADER_LEN + TD10_BODY_LEN + 4),
        ));
    }
    let version = u16::from_le_bytes(arr(q, 0));
    let key_type = u16::from_le_bytes(arr(q, 2));
    let tee = u32::from_le_bytes(arr(q, 4));
    if key_type != 2 {
        return Err(bad("attestation key type", key_type, "2 (ECDSA P-256)"));
    }
    if tee != TEE_TYPE_TDX {
        return Err(bad("TEE type", format!("0x{tee:x}"), "0x81 (TDX)"));
    }
    let body = match version {
        4 => QUOTE_HEADER_LEN..QUOTE_HEADER_LEN + TD10_BODY_LEN,
        5 => {
            let kind = u16::from_le_bytes(arr(q, 48));
            let size = u32::from_le_bytes(arr(q, 50)) as usize;
            let want = match kind {
                2 => TD10_BODY_LEN,
                3 => TD15_BODY_LEN,
                o => return Err(bad("v5 body type", o, "2 (TD 1.0) or 3 (TD 1.5)")),
            };
            if size != want {
                return Err(bad("v5 body size", size, want));
            }
            54..54 + want
        }
        o => return Err(bad("quote version", o, "4 or 5")),
    };
    if q.len() < body.end + 4 {
        return Err(bad(
            "quote length",
            q.len(),
            format!("at least {}", body.end + 4),
        ));
    }
    let sig_len = u32::from_le_bytes(arr(q, body.end)) as usize;
    let len = body.end + 4 + sig_len;
    if len > q.len() {
        return Err(bad(
            "signature data length",
            sig_len,
            format!("at most {} (the bytes left)", q.len() - body.end - 4),
        ));
    }
    if let Some(i) = q[len..].iter().position(|&b| b != 0) {
        return Err(bad(
            "bytes after the quote",
            format!("non-zero at offset {}", len + i),
            "none or zero padding",
        ));
    }
    let fields = TdFields::from_quote_body(&q[body.clone()]);
    Ok(QuoteLayout {
        version,
        body,
        len,
        fields,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tdreport() -> Vec<u8> {
        let mut r = vec![0u8; 1184];
        r[0] = REPORT_TYPE_TDX;
        r[512] = 0x10; // attributes
        r[512 + 16] = 0xaa; // mrtd
        r[128] = 0x55; // report data
        r
    }

    #[test]
    fn tdreport_fields_and_strictness() {
        let f = parse_tdreport(&tdreport()).unwrap();
        assert_eq!(f.attributes, 0x10);
        assert!(!f.debug());
        assert_eq!(f.mrtd[0], 0xaa);
        assert_eq!(f.report_data[0], 0x55);
        for (off, field) in [
            (0usize, "REPORTTYPE.TYPE"),
            (1, "REPORTTYPE.SUBTYPE"),
            (3, "REPORTTYPE.reserved"),
            (5, "REPORTMACSTRUCT reserved"),
            (200, "REPORTMACSTRUCT reserved2"),
            (500, "TDREPORT reserved"),
            (1000, "TDINFO reserved"),
            (1100, "padding after the TDREPORT"),
        ] {
            let mut r = tdreport();
            r[off] ^= 0x02;
            let e = parse_tdreport(&r).unwrap_err();
            assert_eq!(e.field, field, "offset {off}");
        }
        let mut r = tdreport();
        r[2] = 2;
        assert_eq!(parse_tdreport(&r).unwrap_err().field, "REPORTTYPE.VERSION");
        assert!(parse_tdreport(&r[..1023]).is_err());
    }

    fn quote(version: u16, sig: &[u8]) -> Vec<u8> {
        let mut q = vec![0u8; 48];
        q[0..2].copy_from_slice(&version.to_le_bytes());
        q[2] = 2;
        q[4] = 0x81;
        if version == 5 {
            q.extend_from_slice(&2u16.to_le_bytes());
            q.extend_from_slice(&584u32.to_le_bytes());
        }
        let mut body = vec![0u8; 584];
        body[136] = 0x77;
        q.extend_from_slice(&body);
        q.extend_from_slice(&(sig.len() as u32).to_le_bytes());
        q.extend_from_slice(sig);
        q
    }

    #[test]
    fn quote_framing() {
        for v in [4, 5] {
            let q = quote(v, &[1, 2, 3]);
            let l = parse_quote(&q).unwrap();
            assert_eq!(l.fields.mrtd[0], 0x77);
            assert_eq!(l.len, q.len());
            let mut padded = q.clone();
            padded.extend_from_slice(&[0; 70]);
            assert_eq!(parse_quote(&padded).unwrap().len, q.len());
            padded.push(1);
            assert_eq!(
                parse_quote(&padded).unwrap_err().field,
                "bytes after the quote"
            );
            for n in 0..q.len() {
                assert!(parse_quote(&q[..n]).is_err(), "v{v} truncated to {n}");
            }
        }
        let mut q = quote(4, &[]);
        q[0] = 3;
        assert_eq!(parse_quote(&q).unwrap_err().field, "quote version");
        let mut q = quote(4, &[]);
        q[4] = 0;
        assert_eq!(parse_quote(&q).unwrap_err().field, "TEE type");
        assert!(parse_quote(&vec![0; MAX_QUOTE_LEN + 1]).is_err());
    }
}
