//! SEV-SNP attestation reports and AMD certificates (pure).
//!
//! Parsing and the cryptography are the virtee `sev` crate's; this module
//! adds the strictness a verifier of untrusted bytes needs on top of it:
//!
//! - the report must re-encode to exactly the bytes received, so reserved
//!   fields are zero and the bytes the crate verifies (it hashes its own
//!   re-encoding) are the bytes we got; the unused high bytes of the 72-byte
//!   little-endian `r` and `s` must be zero (the crate reads only 48);
//! - certificates must be DER that re-encodes to itself, with the outer
//!   signature algorithm equal to the signed one and no unused bits in the
//!   signature;
//! - the ARK is pinned: the crate's built-in Milan, Genoa and Turin ARKs are
//!   the only roots, and an ARK given in a chain file must be one of them;
//! - the VCEK's `hwID` and TCB extensions must equal the report's chip id
//!   and reported TCB, and its product must match the ARK it chains to.

use super::check::{Check, Outcome};
use super::evidence::Certs;
use serde::Serialize;
use sev::certs::snp::{builtin, Certificate, Verifiable};
use sev::firmware::guest::AttestationReport;
use sev::parser::ByteParser;
use std::sync::OnceLock;
use x509_cert::der::{Decode, Encode};

/// Size of an SNP attestation report.
pub const REPORT_LEN: usize = 1184;
/// `SIGNATURE_ALGO` for ECDSA P-384 with SHA-384.
const SIG_ALGO_ECDSA_P384_SHA384: u32 = 1;
/// Certificate files larger than this are refused.
pub const MAX_CERT_FILE: usize = 64 * 1024;

/// Named SNP guest policy bits (AMD SEV-SNP ABI, `GUEST_POLICY`).
/// Bit 19 (`debug`) must always be clear and is checked regardless.
pub const GUEST_POLICY_BITS: &[(&str, u32)] = &[
    ("smt", 16),
    ("migrate-ma", 18),
    ("debug", 19),
    ("single-socket", 20),
    ("cxl-allow", 21),
    ("mem-aes-256-xts", 22),
    ("rapl-dis", 23),
    ("ciphertext-hiding", 24),
    ("page-swap-disable", 25),
];

/// The guest policy bit that allows debugging (must always be clear).
pub fn debug_bit() -> u64 {
    1 << 19
}

/// Comma-separated guest policy flag names → bit mask.
pub fn parse_guest_policy_names(s: &str) -> Result<u64, String> {
    let names: Vec<String> = s
        .split(',')
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    if names.is_empty() {
        return Err("no flag names".into());
    }
    bits_from_names(&names)
}

pub fn bits_from_names(names: &[String]) -> Result<u64, String> {
    let mut bits = 0u64;
    for n in names {
        let (_, bit) = GUEST_POLICY_BITS
            .iter()
            .find(|(name, _)| name == n)
            .ok_or_else(|| {
                format!(
                    "unknown guest policy flag {n:?} (known: {})",
                    GUEST_POLICY_BITS
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
        bits |= 1 << bit;
    }
    Ok(bits)
}

pub fn names_from_bits(bits: u64) -> Vec<String> {
    GUEST_POLICY_BITS
        .iter()
        .filter(|(_, b)| bits & (1 << b) != 0)
        .map(|(n, _)| n.to_string())
        .collect()
}

/// A TCB version: the security patch levels of the firmware components.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Tcb {
    pub bootloader: u8,
    pub tee: u8,
    pub snp: u8,
    pub microcode: u8,
    /// Turin and later.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fmc: Option<u8>,
}

impl Tcb {
    fn from_sev(t: &sev::firmware::host::TcbVersion) -> Tcb {
        Tcb {
            bootloader: t.bootloader,
            tee: t.tee,
            snp: t.snp,
            microcode: t.microcode,
            fmc: t.fmc,
        }
    }

    /// Components of `self` lower than `min`, as text.
    pub fn below(&self, min: &Tcb) -> Vec<String> {
        let mut v = Vec::new();
        for (name, have, want) in [
            ("bootloader", self.bootloader, min.bootloader),
            ("tee", self.tee, min.tee),
            ("snp", self.snp, min.snp),
            ("microcode", self.microcode, min.microcode),
        ] {
            if have < want {
                v.push(format!("{name} {have} < {want}"));
            }
        }
        match (min.fmc, self.fmc) {
            (Some(want), Some(have)) if have < want => v.push(format!("fmc {have} < {want}")),
            (Some(_), None) => v.push("fmc required but the report has none (pre-Turin)".into()),
            _ => {}
        }
        v
    }
}

impl std::fmt::Display for Tcb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "bootloader={},tee={},snp={},microcode={}",
            self.bootloader, self.tee, self.snp, self.microcode
        )?;
        if let Some(x) = self.fmc {
            write!(f, ",fmc={x}")?;
        }
        Ok(())
    }
}

/// AMD EPYC generations sealroot has pinned roots for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Product {
    Milan,
    Genoa,
    Turin,
}

impl Product {
    pub const ALL: [Product; 3] = [Product::Milan, Product::Genoa, Product::Turin];

    pub fn name(self) -> &'static str {
        match self {
            Product::Milan => "Milan",
            Product::Genoa => "Genoa",
            Product::Turin => "Turin",
        }
    }

    fn ark_pem(self) -> &'static [u8] {
        match self {
            Product::Milan => builtin::milan::ARK,
            Product::Genoa => builtin::genoa::ARK,
            Product::Turin => builtin::turin::ARK,
        }
    }

    fn ask_pem(self) -> &'static [u8] {
        match self {
            Product::Milan => builtin::milan::ASK,
            Product::Genoa => builtin::genoa::ASK,
            Product::Turin => builtin::turin::ASK,
        }
    }

    /// The pinned ARK (built into the `sev` crate), parsed once.
    fn ark(self) -> &'static Cert {
        static ARKS: OnceLock<[Cert; 3]> = OnceLock::new();
        let all = ARKS.get_or_init(|| Product::ALL.map(|p| Cert::from_pem_builtin(p.ark_pem())));
        &all[self as usize]
    }

    /// The built-in ASK (the ARK's signature on it is checked once).
    fn ask(self) -> &'static Cert {
        static ASKS: OnceLock<[Cert; 3]> = OnceLock::new();
        let all = ASKS.get_or_init(|| {
            Product::ALL.map(|p| {
                let ask = Cert::from_pem_builtin(p.ask_pem());
                assert!(p.ark().signs(&ask), "built-in {p} ASK is signed by its ARK");
                ask
            })
        });
        &all[self as usize]
    }

    /// From a VCEK's `productName` ("Milan-B0", "Genoa", "Turin", …).
    fn from_product_name(s: &str) -> Option<Product> {
        let base = s.split('-').next().unwrap_or("");
        Product::ALL.into_iter().find(|p| p.name() == base)
    }
}

impl std::fmt::Display for Product {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A strictly parsed SNP attestation report.
#[derive(Debug, Clone)]
pub struct Report {
    raw: Vec<u8>,
    parsed: AttestationReport,
}

impl Report {
    /// Parse exactly [`REPORT_LEN`] bytes. Rejects unknown versions and
    /// algorithms, non-zero reserved bytes and oversized signature scalars.
    pub fn parse(bytes: &[u8]) -> Result<Report, String> {
        if bytes.len() != REPORT_LEN {
            return Err(format!(
                "SNP report is {} bytes, expected {REPORT_LEN}",
                bytes.len()
            ));
        }
        let version = u32::from_le_bytes(bytes[0..4].try_into().expect("4 bytes"));
        if !(2..=5).contains(&version) {
            return Err(format!("unsupported SNP report version {version}"));
        }
        let algo = u32::from_le_bytes(bytes[0x34..0x38].try_into().expect("4 bytes"));
        if algo != SIG_ALGO_ECDSA_P384_SHA384 {
            return Err(format!(
                "signature algorithm {algo} is not ECDSA P-384/SHA-384 (1)"
            ));
        }
        let parsed = AttestationReport::from_bytes(bytes)
            .map_err(|e| format!("SNP report does not parse: {e}"))?;
        let again = parsed
            .to_bytes()
            .map_err(|e| format!("SNP report does not re-encode: {e}"))?;
        if let Some(at) = again.iter().zip(bytes).position(|(a, b)| a != b) {
            return Err(format!(
                "SNP report has non-zero reserved bits at offset 0x{at:03x}"
            ));
        }
        let sig = &parsed.signature;
        if sig.r()[48..].iter().chain(&sig.s()[48..]).any(|&b| b != 0) {
            return Err("SNP report signature scalar has bits above 384".into());
        }
        Ok(Report {
            raw: bytes.to_vec(),
            parsed,
        })
    }

    pub fn raw(&self) -> &[u8] {
        &self.raw
    }
    pub fn version(&self) -> u32 {
        self.parsed.version
    }
    pub fn vmpl(&self) -> u32 {
        self.parsed.vmpl
    }
    pub fn guest_svn(&self) -> u32 {
        self.parsed.guest_svn
    }
    /// The raw `GUEST_POLICY`.
    pub fn guest_policy(&self) -> u64 {
        u64::from_le_bytes(self.raw[0x08..0x10].try_into().expect("8 bytes"))
    }
    pub fn debug_allowed(&self) -> bool {
        self.guest_policy() & debug_bit() != 0
    }
    pub fn measurement(&self) -> &[u8; 48] {
        &self.parsed.measurement
    }
    pub fn report_data(&self) -> &[u8; 64] {
        &self.parsed.report_data
    }
    pub fn host_data(&self) -> &[u8; 32] {
        &self.parsed.host_data
    }
    pub fn chip_id(&self) -> &[u8; 64] {
        &self.parsed.chip_id
    }
    pub fn reported_tcb(&self) -> Tcb {
        Tcb::from_sev(&self.parsed.reported_tcb)
    }
    pub fn current_tcb(&self) -> Tcb {
        Tcb::from_sev(&self.parsed.current_tcb)
    }
    pub fn committed_tcb(&self) -> Tcb {
        Tcb::from_sev(&self.parsed.committed_tcb)
    }
    pub fn launch_tcb(&self) -> Tcb {
        Tcb::from_sev(&self.parsed.launch_tcb)
    }

    /// The generation the report's CPUID fields name (version 3 and later).
    pub fn cpuid_product(&self) -> Option<Result<Product, String>> {
        let (fam, model) = (self.parsed.cpuid_fam_id?, self.parsed.cpuid_mod_id?);
        Some(match sev::Generation::identify_cpu(fam, model) {
            Ok(sev::Generation::Milan) => Ok(Product::Milan),
            Ok(sev::Generation::Genoa) => Ok(Product::Genoa),
            Ok(sev::Generation::Turin) => Ok(Product::Turin),
            _ => Err(format!(
                "CPUID family 0x{fam:02x} model 0x{model:02x} is not Milan, Genoa or Turin"
            )),
        })
    }

    /// Verify the report's signature with `vcek` (whose key the caller has
    /// already chained to AMD).
    fn verify_signature(&self, vcek: &Cert) -> Result<(), String> {
        (&vcek.sev, &self.parsed)
            .verify()
            .map_err(|e| format!("the VCEK did not sign this report: {e}"))
    }

    /// The fields that matter, for `sealroot platform`.
    pub fn view(&self) -> ReportView {
        let p = self.guest_policy();
        ReportView {
            version: self.version(),
            vmpl: self.vmpl(),
            guest_svn: self.guest_svn(),
            guest_policy: format!("0x{p:016x}"),
            guest_policy_flags: names_from_bits(p),
            abi_min: format!("{}.{}", (p >> 8) & 0xff, p & 0xff),
            debug_allowed: self.debug_allowed(),
            measurement: hex::encode(self.measurement()),
            report_data: hex::encode(self.report_data()),
            host_data: hex::encode(self.host_data()),
            family_id: hex::encode(self.parsed.family_id),
            image_id: hex::encode(self.parsed.image_id),
            id_key_digest: hex::encode(self.parsed.id_key_digest),
            author_key_digest: hex::encode(self.parsed.author_key_digest),
            chip_id: hex::encode(self.chip_id()),
            reported_tcb: self.reported_tcb(),
            current_tcb: self.current_tcb(),
            committed_tcb: self.committed_tcb(),
            launch_tcb: self.launch_tcb(),
            cpuid_product: self
                .cpuid_product()
                .and_then(|r| r.ok())
                .map(|p| p.name().to_string()),
        }
    }
}

/// Report fields shown by `sealroot platform` (hex strings).
#[derive(Debug, Clone, Serialize)]
pub struct ReportView {
    pub version: u32,
    pub vmpl: u32,
    pub guest_svn: u32,
    pub guest_policy: String,
    pub guest_policy_flags: Vec<String>,
    pub abi_min: String,
    pub debug_allowed: bool,
    pub measurement: String,
    pub report_data: String,
    pub host_data: String,
    pub family_id: String,
    pub image_id: String,
    pub id_key_digest: String,
    pub author_key_digest: String,
    pub chip_id: String,
    pub reported_tcb: Tcb,
    pub current_tcb: Tcb,
    pub committed_tcb: Tcb,
    pub launch_tcb: Tcb,
    pub cpuid_product: Option<String>,
}

/// A strictly parsed certificate.
#[derive(Clone)]
struct Cert {
    x509: x509_cert::Certificate,
    sev: Certificate,
    der: Vec<u8>,
}

impl Cert {
    fn from_der(der: &[u8]) -> Result<Cert, String> {
        if der.len() > MAX_CERT_FILE {
            return Err(format!("certificate of {} bytes", der.len()));
        }
        let x509 = x509_cert::Certificate::from_der(der)
            .map_err(|e| format!("not a DER X.509 certificate: {e}"))?;
        let again = x509
            .to_der()
            .map_err(|e| format!("certificate does not re-encode: {e}"))?;
        if again != der {
            return Err("certificate is not canonical DER".into());
        }
        if x509.signature_algorithm != x509.tbs_certificate.signature {
            return Err("outer signature algorithm differs from the signed one".into());
        }
        if x509.signature.unused_bits() != 0 {
            return Err("signature has unused bits".into());
        }
        Ok(Cert {
            sev: Certificate::from(x509.clone()),
            x509,
            der: der.to_vec(),
        })
    }

    fn from_pem_builtin(pem: &[u8]) -> Cert {
        let der = pem_to_der(pem)
            .ok()
            .and_then(|v| v.into_iter().next())
            .expect("built-in certificate");
        Cert::from_der(&der).expect("built-in certificate")
    }

    fn self_issued(&self) -> bool {
        self.x509.tbs_certificate.issuer == self.x509.tbs_certificate.subject
    }

    /// Does `self` sign `other`? (RSA-PSS/SHA-384, through the `sev` crate.)
    fn signs(&self, other: &Cert) -> bool {
        self.x509.tbs_certificate.subject == other.x509.tbs_certificate.issuer
            && (&self.sev, &other.sev).verify().is_ok()
    }

    fn subject_cn(&self) -> String {
        self.x509.tbs_certificate.subject.to_string()
    }
}

/// A VCEK with the AMD extensions sealroot checks.
struct Vcek {
    cert: Cert,
    product: Product,
    tcb: Tcb,
    hwid: Vec<u8>,
}

const OID_PRODUCT_NAME: &str = "1.3.6.1.4.1.3704.1.2";
const OID_BL_SPL: &str = "1.3.6.1.4.1.3704.1.3.1";
const OID_TEE_SPL: &str = "1.3.6.1.4.1.3704.1.3.2";
const OID_SNP_SPL: &str = "1.3.6.1.4.1.3704.1.3.3";
const OID_UCODE_SPL: &str = "1.3.6.1.4.1.3704.1.3.8";
const OID_FMC_SPL: &str = "1.3.6.1.4.1.3704.1.3.9";
const OID_HWID: &str = "1.3.6.1.4.1.3704.1.4";

impl Vcek {
    fn parse(der: &[u8]) -> Result<Vcek, String> {
        let cert = Cert::from_der(der)?;
        let exts = cert
            .x509
            .tbs_certificate
            .extensions
            .as_deref()
            .unwrap_or_default();
        let get = |oid: &str| -> Result<Option<&[u8]>, String> {
            let mut it = exts.iter().filter(|e| e.extn_id.to_string() == oid);
            let first = it.next().map(|e| e.extn_value.as_bytes());
            if it.next().is_some() {
                return Err(format!("VCEK has extension {oid} twice"));
            }
            Ok(first)
        };
        let need = |oid: &str, what: &str| -> Result<&[u8], String> {
            get(oid)?.ok_or_else(|| format!("VCEK has no {what} extension ({oid})"))
        };
        let int = |oid: &str, what: &str| -> Result<u8, String> {
            u8::from_der(need(oid, what)?).map_err(|e| format!("VCEK {what}: {e}"))
        };
        let name_der = need(OID_PRODUCT_NAME, "productName")?;
        let name = x509_cert::der::asn1::Ia5StringRef::from_der(name_der)
            .map_err(|e| format!("VCEK productName: {e}"))?
            .as_str()
            .to_string();
        let product = Product::from_product_name(&name)
            .ok_or_else(|| format!("VCEK product {name:?} is not Milan, Genoa or Turin"))?;
        let fmc = match get(OID_FMC_SPL)? {
            Some(v) => Some(u8::from_der(v).map_err(|e| format!("VCEK fmcSPL: {e}"))?),
            None => None,
        };
        if (product == Product::Turin) != fmc.is_some() {
            return Err(format!(
                "VCEK for {product} {} an FMC SPL",
                if fmc.is_some() { "has" } else { "lacks" }
            ));
        }
        let tcb = Tcb {
            bootloader: int(OID_BL_SPL, "blSPL")?,
            tee: int(OID_TEE_SPL, "teeSPL")?,
            snp: int(OID_SNP_SPL, "snpSPL")?,
            microcode: int(OID_UCODE_SPL, "ucodeSPL")?,
            fmc,
        };
        let raw = need(OID_HWID, "hwID")?;
        let want = if product == Product::Turin { 8 } else { 64 };
        let hwid = if raw.len() == want {
            raw.to_vec()
        } else {
            // Some certificates wrap it in an OCTET STRING.
            x509_cert::der::asn1::OctetString::from_der(raw)
                .ok()
                .map(|o| o.as_bytes().to_vec())
                .filter(|v| v.len() == want)
                .ok_or_else(|| format!("VCEK hwID is not {want} bytes"))?
        };
        Ok(Vcek {
            cert,
            product,
            tcb,
            hwid,
        })
    }

    /// Is this the VCEK for the report's chip and reported TCB?
    fn matches(&self, r: &Report) -> bool {
        r.chip_id()[..self.hwid.len()] == self.hwid[..] && r.reported_tcb() == self.tcb
    }

    fn describe(&self) -> String {
        format!(
            "{} chip {}… TCB {}",
            self.product,
            hex::encode(&self.hwid[..8]),
            self.tcb
        )
    }
}

/// Split a certificate file: PEM (one or more certificates) or one DER
/// certificate.
pub fn cert_file_to_der(bytes: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    if bytes.len() > MAX_CERT_FILE {
        return Err(format!(
            "{} bytes, larger than the {MAX_CERT_FILE}-byte limit",
            bytes.len()
        ));
    }
    if bytes.starts_with(b"-----BEGIN") || bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
        pem_to_der(bytes)
    } else if bytes.first() == Some(&0x30) {
        Ok(vec![bytes.to_vec()])
    } else {
        Err("neither PEM nor DER".into())
    }
}

fn pem_to_der(bytes: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    use base64::Engine as _;
    let text = std::str::from_utf8(bytes).map_err(|_| "PEM is not UTF-8".to_string())?;
    let mut out = Vec::new();
    let mut body: Option<String> = None;
    for line in text.lines().map(str::trim) {
        match (&mut body, line) {
            (None, "-----BEGIN CERTIFICATE-----") => body = Some(String::new()),
            (None, "") => {}
            (None, l) => return Err(format!("unexpected line outside a certificate: {l:.40?}")),
            (Some(b), "-----END CERTIFICATE-----") => {
                let der = base64::engine::general_purpose::STANDARD
                    .decode(b.as_bytes())
                    .map_err(|e| format!("PEM body: {e}"))?;
                out.push(der);
                body = None;
            }
            (Some(_), l) if l.starts_with("-----") => {
                return Err(format!("unexpected PEM line {l:.40?}"))
            }
            (Some(b), l) => b.push_str(l),
        }
    }
    if body.is_some() {
        return Err("PEM certificate without END line".into());
    }
    if out.is_empty() {
        return Err("no certificate in PEM".into());
    }
    Ok(out)
}

/// A VCEK that chains to AMD, for `enroll` to check the files it stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VcekInfo {
    pub product: Product,
    pub tcb: Tcb,
    pub hwid: Vec<u8>,
}

/// Check that every VCEK chains, through an ASK from `ca` or the built-in
/// one, to the pinned ARK of its product, and that `ca` holds only AMD
/// ASKs and ARKs.
pub fn validate_certs(vceks: &[Vec<u8>], ca: &[Vec<u8>]) -> Result<Vec<VcekInfo>, String> {
    let asks = ca_certs(ca)?;
    vceks
        .iter()
        .enumerate()
        .map(|(i, der)| {
            let v = Vcek::parse(der).map_err(|e| format!("VCEK #{}: {e}", i + 1))?;
            chain(&v, &asks).map_err(|e| format!("VCEK #{}: {e}", i + 1))?;
            Ok(VcekInfo {
                product: v.product,
                tcb: v.tcb,
                hwid: v.hwid,
            })
        })
        .collect()
}

/// Parse CA certificates: an ARK must be one of the pinned ones (and is
/// then dropped: the pinned copy is used); any other certificate must be an
/// ASK that a pinned ARK signed.
fn ca_certs(ca: &[Vec<u8>]) -> Result<Vec<(Product, Cert)>, String> {
    let mut asks = Vec::new();
    for (i, der) in ca.iter().enumerate() {
        let c = Cert::from_der(der).map_err(|e| format!("CA certificate #{}: {e}", i + 1))?;
        if c.self_issued() {
            if !Product::ALL.iter().any(|p| p.ark().der == c.der) {
                return Err(format!(
                    "CA certificate #{} ({}) is a root but not AMD's Milan, Genoa or Turin ARK",
                    i + 1,
                    c.subject_cn()
                ));
            }
        } else if let Some(p) = Product::ALL.into_iter().find(|p| p.ask().der == c.der) {
            // The built-in ASK itself: already known to be signed.
            asks.push((p, c));
        } else {
            let p = Product::ALL
                .into_iter()
                .find(|p| p.ark().signs(&c))
                .ok_or_else(|| {
                    format!(
                        "CA certificate #{} ({}) is not signed by AMD's Milan, Genoa or Turin ARK",
                        i + 1,
                        c.subject_cn()
                    )
                })?;
            asks.push((p, c));
        }
    }
    Ok(asks)
}

/// ARK (pinned) → ASK (given and checked by [`ca_certs`], or built-in) → VCEK.
fn chain(v: &Vcek, asks: &[(Product, Cert)]) -> Result<(), String> {
    let given = asks
        .iter()
        .filter(|(p, c)| *p == v.product && c.der != v.product.ask().der)
        .map(|(_, c)| c);
    for ask in given.chain(std::iter::once(v.product.ask())) {
        if ask.signs(&v.cert) {
            return Ok(());
        }
    }
    Err(format!(
        "the VCEK ({}) is not signed by an ASK that AMD's {} ARK signed",
        v.cert.subject_cn(),
        v.product
    ))
}

/// What a requirement says about the report's signature: the certificates
/// it carries, and whether a report without a usable VCEK may pass.
#[derive(Debug, Clone, Copy)]
pub struct RequiredSignature<'a> {
    /// DER VCEKs it carries.
    pub vceks: &'a [Vec<u8>],
    /// DER ASK/ARK certificates it carries.
    pub ca: &'a [Vec<u8>],
    pub unsigned_ok: bool,
}

/// The `vcek` and `signature` outcomes: find the VCEK for this report's
/// chip and TCB among the requirement's and the extra ones, chain it to AMD,
/// verify the report. Without a usable VCEK the signature is skipped only
/// when the requirement allows it (or when there is none).
pub fn check_signature(
    r: &Report,
    requirement: Option<RequiredSignature>,
    extra: &Certs,
) -> (Vec<Outcome>, Option<Product>) {
    let (given_vceks, given_ca): (&[Vec<u8>], &[Vec<u8>]) =
        requirement.map_or((&[], &[]), |q| (q.vceks, q.ca));
    let unsigned_ok = requirement.is_none_or(|q| q.unsigned_ok);
    let fail = |c: Check, d: String| (vec![Outcome::fail(c, d)], None);
    let asks = match ca_certs(
        given_ca
            .iter()
            .chain(&extra.ca)
            .cloned()
            .collect::<Vec<_>>()
            .as_slice(),
    ) {
        Ok(a) => a,
        Err(e) => return fail(Check::Vcek, e),
    };
    let mut vceks = Vec::new();
    for (i, der) in given_vceks.iter().chain(&extra.vceks).enumerate() {
        match Vcek::parse(der) {
            Ok(v) => vceks.push(v),
            Err(e) => return fail(Check::Vcek, format!("VCEK #{}: {e}", i + 1)),
        }
    }
    let Some(v) = vceks.iter().find(|v| v.matches(r)) else {
        let why = if vceks.is_empty() {
            "no VCEK was given (--snp-vcek, or the blob)".to_string()
        } else {
            format!(
                "no VCEK for this chip ({}…) at reported TCB {}; have {}",
                hex::encode(&r.chip_id()[..8]),
                r.reported_tcb(),
                vceks
                    .iter()
                    .map(Vcek::describe)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        return if unsigned_ok {
            (
                vec![
                    Outcome::skipped(Check::Vcek, why),
                    Outcome::skipped(
                        Check::Signature,
                        if requirement.is_some() {
                            "report signature not verified (the policy allows this)"
                        } else {
                            "report signature not verified"
                        },
                    ),
                ],
                None,
            )
        } else {
            fail(Check::Vcek, why)
        };
    };
    match r.cpuid_product() {
        Some(Err(e)) => return fail(Check::Vcek, e),
        Some(Ok(p)) if p != v.product => {
            return fail(
                Check::Vcek,
                format!("the report's CPUID says {p}, the VCEK is for {}", v.product),
            )
        }
        _ => {}
    }
    if let Err(e) = chain(v, &asks) {
        return fail(Check::Vcek, e);
    }
    let mut out = vec![Outcome::pass(
        Check::Vcek,
        format!("{} chains to AMD's {} ARK", v.describe(), v.product),
    )];
    match r.verify_signature(&v.cert) {
        Ok(()) => out.push(Outcome::pass(
            Check::Signature,
            "the report is signed by the VCEK",
        )),
        Err(e) => {
            out.push(Outcome::fail(Check::Signature, e));
            return (out, None);
        }
    }
    (out, Some(v.product))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_roots_are_self_signed_and_sign_their_asks() {
        for p in Product::ALL {
            let ark = p.ark();
            assert!(ark.self_issued(), "{p}");
            assert!(ark.signs(ark), "{p} ARK self-signature");
            assert!(ark.signs(p.ask()), "{p} ARK signs ASK");
            for q in Product::ALL.into_iter().filter(|&q| q != p) {
                assert!(!q.ark().signs(p.ask()), "{q} ARK must not sign the {p} ASK");
            }
        }
    }

    #[test]
    fn product_names() {
        assert_eq!(Product::from_product_name("Milan-B0"), Some(Product::Milan));
        assert_eq!(Product::from_product_name("Genoa"), Some(Product::Genoa));
        assert_eq!(Product::from_product_name("Turin"), Some(Product::Turin));
        assert_eq!(Product::from_product_name("Venice"), None);
        assert_eq!(Product::from_product_name(""), None);
        assert_eq!(Product::from_product_name("MilanX"), None);
    }

    #[test]
    fn tcb_comparison_names_each_low_component() {
        let have = Tcb {
            bootloader: 3,
            tee: 0,
            snp: 8,
            microcode: 115,
            fmc: None,
        };
        assert!(have.below(&have).is_empty());
        assert!(have.below(&Tcb::default()).is_empty());
        let min = Tcb {
            bootloader: 4,
            tee: 1,
            snp: 8,
            microcode: 200,
            fmc: Some(0),
        };
        let b = have.below(&min);
        assert_eq!(b.len(), 4, "{b:?}");
        assert!(b[0].starts_with("bootloader 3 < 4"));
        assert!(b[3].contains("pre-Turin"));
        let turin = Tcb {
            fmc: Some(1),
            ..Tcb::default()
        };
        assert_eq!(
            turin.below(&Tcb {
                fmc: Some(2),
                ..Tcb::default()
            }),
            vec!["fmc 1 < 2"]
        );
    }

    #[test]
    fn pem_bundles() {
        let ark = builtin::milan::ARK;
        let ask = builtin::milan::ASK;
        let both = [ask, b"\n", ark].concat();
        assert_eq!(cert_file_to_der(&both).unwrap().len(), 2);
        assert!(cert_file_to_der(b"").is_err());
        assert!(cert_file_to_der(b"-----BEGIN CERTIFICATE-----\n").is_err());
        assert!(
            cert_file_to_der(b"-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n")
                .is_err()
        );
        assert!(cert_file_to_der(
            b"-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n"
        )
        .is_err());
        let mut junk = both.clone();
        junk.extend_from_slice(b"trailing text\n");
        assert!(cert_file_to_der(&junk).is_err());
        assert!(cert_file_to_der(&[0xff, 0xfe]).is_err());
    }
}
