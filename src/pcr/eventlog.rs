//! The TCG2 crypto-agile event log (pure): parse, describe, replay.
//!
//! The log is what `/sys/kernel/security/tpm0/binary_bios_measurements`
//! holds on a UEFI machine: one legacy (SHA-1 format) `TCG_PCR_EVENT` header
//! whose data is the `Spec ID Event03` structure listing the banks and their
//! digest sizes, then `TCG_PCR_EVENT2` records (PCR index, event type, one
//! digest per bank, event data), little-endian. See the TCG PC Client
//! Platform Firmware Profile, section 10.
//!
//! The bytes are untrusted (the host can hand the guest any log): every read
//! is bounds-checked, sizes are capped, nothing here panics, and errors are
//! typed with the offset they concern. Replaying the log only says what the
//! firmware *claims* it measured; it is trusted only once it equals the TPM's
//! PCRs ([`Replay::check`]).

use crate::pcr::{extend, Digest, MAX_PCR};
use std::fmt;

/// Where Linux exposes the firmware's log.
pub const DEFAULT_PATH: &str = "/sys/kernel/security/tpm0/binary_bios_measurements";

/// Largest log accepted (real logs are 5 KiB in OVMF, up to a few hundred
/// KiB on hardware with many option ROMs).
pub const MAX_LOG_BYTES: usize = 8 << 20;
/// Most events accepted.
pub const MAX_EVENTS: usize = 100_000;
/// Largest event data accepted.
pub const MAX_EVENT_DATA: usize = 1 << 20;
/// Most banks in the Spec ID event.
const MAX_ALGS: usize = 16;

pub const ALG_SHA1: u16 = 0x0004;
pub const ALG_SHA256: u16 = 0x000b;
pub const ALG_SHA384: u16 = 0x000c;
pub const ALG_SHA512: u16 = 0x000d;
pub const ALG_SM3_256: u16 = 0x0012;

pub const EV_POST_CODE: u32 = 0x1;
pub const EV_NO_ACTION: u32 = 0x3;
pub const EV_SEPARATOR: u32 = 0x4;
pub const EV_ACTION: u32 = 0x5;
pub const EV_EVENT_TAG: u32 = 0x6;
pub const EV_S_CRTM_CONTENTS: u32 = 0x7;
pub const EV_S_CRTM_VERSION: u32 = 0x8;
pub const EV_IPL: u32 = 0xd;
pub const EV_EFI_VARIABLE_DRIVER_CONFIG: u32 = 0x8000_0001;
pub const EV_EFI_VARIABLE_BOOT: u32 = 0x8000_0002;
pub const EV_EFI_BOOT_SERVICES_APPLICATION: u32 = 0x8000_0003;
pub const EV_EFI_BOOT_SERVICES_DRIVER: u32 = 0x8000_0004;
pub const EV_EFI_ACTION: u32 = 0x8000_0007;
pub const EV_EFI_PLATFORM_FIRMWARE_BLOB: u32 = 0x8000_0008;
pub const EV_EFI_HANDOFF_TABLES: u32 = 0x8000_0009;
pub const EV_EFI_VARIABLE_BOOT2: u32 = 0x8000_000c;
pub const EV_EFI_VARIABLE_AUTHORITY: u32 = 0x8000_00e0;

/// Tagged-event id the Linux EFI stub uses for the initrd (PCR 9).
pub const LINUX_INITRD_TAG: u32 = 0x8f3b_22ec;
/// Tagged-event id the Linux EFI stub uses for the load options (PCR 9).
pub const LINUX_LOAD_OPTIONS_TAG: u32 = 0x8f3b_22ed;

/// Why a log was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("event log is {0} bytes, larger than the {MAX_LOG_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("event log is empty")]
    Empty,
    #[error("truncated at offset {offset}: {what} needs {need} bytes, {have} left")]
    Truncated {
        offset: usize,
        what: &'static str,
        need: usize,
        have: usize,
    },
    #[error("not a crypto-agile log: the first event is not a Spec ID Event03 ({0})")]
    NotCryptoAgile(String),
    #[error("Spec ID event lists {0} algorithms (at most {MAX_ALGS})")]
    TooManyAlgorithms(usize),
    #[error("event {event} at offset {offset}: PCR index {pcr} out of range")]
    BadPcr {
        event: usize,
        offset: usize,
        pcr: u32,
    },
    #[error("event {event} at offset {offset}: digest of algorithm {alg:#06x}, which the Spec ID event does not list")]
    UnknownAlgorithm {
        event: usize,
        offset: usize,
        alg: u16,
    },
    #[error(
        "event {event} at offset {offset}: {count} digests (the Spec ID event lists {max} banks)"
    )]
    BadDigestCount {
        event: usize,
        offset: usize,
        count: u32,
        max: usize,
    },
    #[error(
        "event {event} at offset {offset}: {size} bytes of event data (at most {MAX_EVENT_DATA})"
    )]
    EventTooLarge {
        event: usize,
        offset: usize,
        size: u32,
    },
    #[error("more than {MAX_EVENTS} events")]
    TooManyEvents,
}

/// The Spec ID Event03 header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecId {
    pub platform_class: u32,
    pub spec_version: (u8, u8, u8),
    pub uintn_size: u8,
    /// (algorithm id, digest size) per bank, in log order.
    pub algorithms: Vec<(u16, u16)>,
}

/// One measured (or informational) event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Position in the log (0 is the Spec ID header).
    pub number: usize,
    /// Byte offset of the record in the log.
    pub offset: usize,
    pub pcr: u32,
    pub event_type: u32,
    /// (algorithm id, digest) in record order.
    pub digests: Vec<(u16, Vec<u8>)>,
    pub data: Vec<u8>,
}

/// A parsed log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventLog {
    pub spec: SpecId,
    /// Every event after the header, in order (EV_NO_ACTION included).
    pub events: Vec<Event>,
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], ParseError> {
        let have = self.buf.len() - self.pos;
        if n > have {
            return Err(ParseError::Truncated {
                offset: self.pos,
                what,
                need: n,
                have,
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn u8(&mut self, what: &'static str) -> Result<u8, ParseError> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &'static str) -> Result<u16, ParseError> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, ParseError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn left(&self) -> usize {
        self.buf.len() - self.pos
    }
}

const SPEC_ID_SIGNATURE: &[u8; 16] = b"Spec ID Event03\0";

fn parse_spec_id(data: &[u8]) -> Result<SpecId, ParseError> {
    let mut r = Reader { buf: data, pos: 0 };
    let bad = |e: ParseError| ParseError::NotCryptoAgile(e.to_string());
    let sig = r.take(16, "Spec ID signature").map_err(bad)?;
    if sig != SPEC_ID_SIGNATURE {
        return Err(ParseError::NotCryptoAgile(format!(
            "signature {:?}",
            String::from_utf8_lossy(sig)
        )));
    }
    let platform_class = r.u32("platformClass").map_err(bad)?;
    let minor = r.u8("specVersionMinor").map_err(bad)?;
    let major = r.u8("specVersionMajor").map_err(bad)?;
    let errata = r.u8("specErrata").map_err(bad)?;
    let uintn_size = r.u8("uintnSize").map_err(bad)?;
    let n = r.u32("numberOfAlgorithms").map_err(bad)? as usize;
    if n > MAX_ALGS {
        return Err(ParseError::TooManyAlgorithms(n));
    }
    if n == 0 {
        return Err(ParseError::NotCryptoAgile("no algorithms".into()));
    }
    let mut algorithms = Vec::with_capacity(n);
    for _ in 0..n {
        let alg = r.u16("algorithmId").map_err(bad)?;
        let size = r.u16("digestSize").map_err(bad)?;
        if size == 0 || size > 64 {
            return Err(ParseError::NotCryptoAgile(format!(
                "digest size {size} for algorithm {alg:#06x}"
            )));
        }
        if algorithms.iter().any(|&(a, _)| a == alg) {
            return Err(ParseError::NotCryptoAgile(format!(
                "algorithm {alg:#06x} listed twice"
            )));
        }
        algorithms.push((alg, size));
    }
    Ok(SpecId {
        platform_class,
        spec_version: (major, minor, errata),
        uintn_size,
        algorithms,
    })
}

/// Parse a crypto-agile log. Trailing zero bytes (a log area padded with
/// zeros) end the log; any other trailing garbage is an error.
pub fn parse(bytes: &[u8]) -> Result<EventLog, ParseError> {
    if bytes.len() > MAX_LOG_BYTES {
        return Err(ParseError::TooLarge(bytes.len()));
    }
    if bytes.is_empty() {
        return Err(ParseError::Empty);
    }
    let mut r = Reader { buf: bytes, pos: 0 };
    // Legacy header: pcrIndex, eventType, SHA-1 digest, eventSize, event.
    let pcr = r.u32("header pcrIndex")?;
    let ty = r.u32("header eventType")?;
    r.take(20, "header digest")?;
    let size = r.u32("header eventSize")? as usize;
    if pcr != 0 || ty != EV_NO_ACTION {
        return Err(ParseError::NotCryptoAgile(format!(
            "header is PCR {pcr} type {ty:#x}, not PCR 0 EV_NO_ACTION"
        )));
    }
    if size > MAX_EVENT_DATA {
        return Err(ParseError::NotCryptoAgile(format!("{size}-byte header")));
    }
    let spec = parse_spec_id(r.take(size, "Spec ID event")?)?;

    let mut events = Vec::new();
    while r.left() > 0 {
        if r.buf[r.pos..].iter().all(|&b| b == 0) {
            break;
        }
        if events.len() >= MAX_EVENTS {
            return Err(ParseError::TooManyEvents);
        }
        let number = events.len() + 1;
        let offset = r.pos;
        let pcr = r.u32("pcrIndex")?;
        if pcr > MAX_PCR {
            return Err(ParseError::BadPcr {
                event: number,
                offset,
                pcr,
            });
        }
        let event_type = r.u32("eventType")?;
        let count = r.u32("digest count")?;
        if count as usize > spec.algorithms.len() {
            return Err(ParseError::BadDigestCount {
                event: number,
                offset,
                count,
                max: spec.algorithms.len(),
            });
        }
        let mut digests = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let alg = r.u16("hashAlg")?;
            let size = spec
                .algorithms
                .iter()
                .find(|&&(a, _)| a == alg)
                .map(|&(_, s)| s)
                .ok_or(ParseError::UnknownAlgorithm {
                    event: number,
                    offset,
                    alg,
                })?;
            digests.push((alg, r.take(size as usize, "digest")?.to_vec()));
        }
        let size = r.u32("eventSize")?;
        if size as usize > MAX_EVENT_DATA {
            return Err(ParseError::EventTooLarge {
                event: number,
                offset,
                size,
            });
        }
        let data = r.take(size as usize, "event data")?.to_vec();
        events.push(Event {
            number,
            offset,
            pcr,
            event_type,
            digests,
            data,
        });
    }
    Ok(EventLog { spec, events })
}

impl Event {
    /// The event's digest in the SHA-256 bank.
    pub fn sha256(&self) -> Option<Digest> {
        self.digests
            .iter()
            .find(|(a, _)| *a == ALG_SHA256)
            .and_then(|(_, d)| <[u8; 32]>::try_from(d.as_slice()).ok())
    }

    /// Whether the event was extended into its PCR (EV_NO_ACTION is not).
    pub fn is_measured(&self) -> bool {
        self.event_type != EV_NO_ACTION
    }

    /// The TCG name of the event type.
    pub fn type_name(&self) -> String {
        type_name(self.event_type)
    }

    /// For EV_EVENT_TAG: the tagged-event id and its data.
    pub fn tagged(&self) -> Option<(u32, &[u8])> {
        if self.event_type != EV_EVENT_TAG || self.data.len() < 8 {
            return None;
        }
        let id = u32::from_le_bytes(self.data[0..4].try_into().ok()?);
        let len = u32::from_le_bytes(self.data[4..8].try_into().ok()?) as usize;
        let body = self.data.get(8..8usize.checked_add(len)?)?;
        Some((id, body))
    }

    /// Is this the Linux EFI stub's initrd measurement?
    pub fn is_linux_initrd(&self) -> bool {
        self.pcr == 9 && matches!(self.tagged(), Some((LINUX_INITRD_TAG, _)))
    }

    /// Is this the firmware's measurement of a loaded EFI application?
    pub fn is_boot_application(&self) -> bool {
        self.event_type == EV_EFI_BOOT_SERVICES_APPLICATION
    }

    /// A short human description of what was measured.
    pub fn describe(&self) -> String {
        let what = match self.event_type {
            EV_EVENT_TAG => match self.tagged() {
                Some((LINUX_INITRD_TAG, _)) => "Linux initrd (EFI stub)".to_string(),
                Some((LINUX_LOAD_OPTIONS_TAG, _)) => {
                    "kernel command line (EFI stub, LOADED_IMAGE::LoadOptions)".to_string()
                }
                Some((id, body)) => format!("tag {id:#010x} {}", printable(body)),
                None => "malformed tagged event".to_string(),
            },
            EV_EFI_VARIABLE_DRIVER_CONFIG
            | EV_EFI_VARIABLE_BOOT
            | EV_EFI_VARIABLE_BOOT2
            | EV_EFI_VARIABLE_AUTHORITY => match variable_name(&self.data) {
                Some(n) => format!("variable {n}"),
                None => "malformed variable event".to_string(),
            },
            EV_EFI_BOOT_SERVICES_APPLICATION | EV_EFI_BOOT_SERVICES_DRIVER => {
                match image_path(&self.data) {
                    Some(p) if !p.is_empty() => format!("EFI image {p}"),
                    _ => "EFI image".to_string(),
                }
            }
            EV_SEPARATOR => "separator".to_string(),
            EV_EFI_ACTION | EV_ACTION | EV_IPL | EV_POST_CODE | EV_S_CRTM_VERSION => {
                printable(&self.data)
            }
            _ => format!("{} bytes of event data", self.data.len()),
        };
        format!("{} {what}", self.type_name())
    }
}

/// Name of an event type.
pub fn type_name(t: u32) -> String {
    let n = match t {
        0x0 => "EV_PREBOOT_CERT",
        EV_POST_CODE => "EV_POST_CODE",
        0x2 => "EV_UNUSED",
        EV_NO_ACTION => "EV_NO_ACTION",
        EV_SEPARATOR => "EV_SEPARATOR",
        EV_ACTION => "EV_ACTION",
        EV_EVENT_TAG => "EV_EVENT_TAG",
        EV_S_CRTM_CONTENTS => "EV_S_CRTM_CONTENTS",
        EV_S_CRTM_VERSION => "EV_S_CRTM_VERSION",
        0x9 => "EV_CPU_MICROCODE",
        0xa => "EV_PLATFORM_CONFIG_FLAGS",
        0xb => "EV_TABLE_OF_DEVICES",
        0xc => "EV_COMPACT_HASH",
        EV_IPL => "EV_IPL",
        0xe => "EV_IPL_PARTITION_DATA",
        0xf => "EV_NONHOST_CODE",
        0x10 => "EV_NONHOST_CONFIG",
        0x11 => "EV_NONHOST_INFO",
        0x12 => "EV_OMIT_BOOT_DEVICE_EVENTS",
        EV_EFI_VARIABLE_DRIVER_CONFIG => "EV_EFI_VARIABLE_DRIVER_CONFIG",
        EV_EFI_VARIABLE_BOOT => "EV_EFI_VARIABLE_BOOT",
        EV_EFI_BOOT_SERVICES_APPLICATION => "EV_EFI_BOOT_SERVICES_APPLICATION",
        EV_EFI_BOOT_SERVICES_DRIVER => "EV_EFI_BOOT_SERVICES_DRIVER",
        0x8000_0005 => "EV_EFI_RUNTIME_SERVICES_DRIVER",
        0x8000_0006 => "EV_EFI_GPT_EVENT",
        EV_EFI_ACTION => "EV_EFI_ACTION",
        EV_EFI_PLATFORM_FIRMWARE_BLOB => "EV_EFI_PLATFORM_FIRMWARE_BLOB",
        EV_EFI_HANDOFF_TABLES => "EV_EFI_HANDOFF_TABLES",
        0x8000_000a => "EV_EFI_PLATFORM_FIRMWARE_BLOB2",
        0x8000_000b => "EV_EFI_HANDOFF_TABLES2",
        EV_EFI_VARIABLE_BOOT2 => "EV_EFI_VARIABLE_BOOT2",
        0x8000_0010 => "EV_EFI_HCRTM_EVENT",
        EV_EFI_VARIABLE_AUTHORITY => "EV_EFI_VARIABLE_AUTHORITY",
        0x8000_00e1 => "EV_EFI_SPDM_FIRMWARE_BLOB",
        0x8000_00e2 => "EV_EFI_SPDM_FIRMWARE_CONFIG",
        _ => return format!("event type {t:#010x}"),
    };
    n.to_string()
}

/// Printable ASCII of event data, NULs dropped, quoted, at most 64 chars.
fn printable(data: &[u8]) -> String {
    let s: String = data
        .iter()
        .filter(|&&b| b != 0)
        .take(64)
        .map(|&b| {
            if (0x20..0x7f).contains(&b) {
                b as char
            } else {
                '.'
            }
        })
        .collect();
    format!("{s:?}")
}

/// UEFI_VARIABLE_DATA: GUID, u64 name length (chars), u64 data length, name.
fn variable_name(data: &[u8]) -> Option<String> {
    let len = u64::from_le_bytes(data.get(16..24)?.try_into().ok()?);
    let len = usize::try_from(len).ok()?.min(256);
    let name = data.get(32..32 + 2 * len)?;
    Some(utf16(name))
}

fn utf16(b: &[u8]) -> String {
    let units: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0)
        .collect();
    String::from_utf16_lossy(&units)
}

/// UEFI_IMAGE_LOAD_EVENT: location, length, link-time address, device-path
/// length (u64 each), device path. Returns the file-path nodes joined.
fn image_path(data: &[u8]) -> Option<String> {
    let len = u64::from_le_bytes(data.get(24..32)?.try_into().ok()?);
    let dp = data.get(32..32usize.checked_add(usize::try_from(len).ok()?)?)?;
    let mut files = Vec::new();
    let mut i = 0usize;
    while i + 4 <= dp.len() {
        let (ty, sub) = (dp[i], dp[i + 1]);
        let n = u16::from_le_bytes([dp[i + 2], dp[i + 3]]) as usize;
        if n < 4 || i + n > dp.len() || ty == 0x7f {
            break;
        }
        if ty == 4 && sub == 4 {
            files.push(utf16(&dp[i + 4..i + n]));
        }
        i += n;
    }
    Some(files.join("/"))
}

/// PCR values a log replays to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replay {
    /// SHA-256 bank values, PCRs 0-23.
    pub values: [Digest; 24],
    /// Which PCRs the log extends at least once.
    pub touched: [bool; 24],
}

/// Replay failures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error("event {event} (PCR {pcr}, {kind}) has no SHA-256 digest: the log does not cover the sha256 bank")]
    NoSha256 {
        event: usize,
        pcr: u32,
        kind: String,
    },
}

/// Initial value of a PCR after a platform reset: zero, except the DRTM
/// PCRs 17-22 (all ones), and PCR 0 whose last byte is the startup
/// locality (from the StartupLocality EV_NO_ACTION event).
fn initial(pcr: usize, locality: u8) -> Digest {
    match pcr {
        17..=22 => [0xff; 32],
        0 => {
            let mut d = [0; 32];
            d[31] = locality;
            d
        }
        _ => [0; 32],
    }
}

impl EventLog {
    /// The StartupLocality event's locality, 0 when absent.
    pub fn startup_locality(&self) -> u8 {
        self.events
            .iter()
            .find(|e| {
                e.pcr == 0
                    && e.event_type == EV_NO_ACTION
                    && e.data.starts_with(b"StartupLocality\0")
            })
            .and_then(|e| e.data.get(16).copied())
            .unwrap_or(0)
    }

    /// Replay the SHA-256 bank.
    pub fn replay(&self) -> Result<Replay, ReplayError> {
        self.replay_with(|e| e.sha256())
    }

    /// Replay with each measured event's digest supplied by `digest` (used by
    /// `predict` to substitute events). `None` is an error.
    pub fn replay_with(
        &self,
        mut digest: impl FnMut(&Event) -> Option<Digest>,
    ) -> Result<Replay, ReplayError> {
        let loc = self.startup_locality();
        let mut values: [Digest; 24] = std::array::from_fn(|i| initial(i, loc));
        let mut touched = [false; 24];
        for e in self.events.iter().filter(|e| e.is_measured()) {
            let d = digest(e).ok_or_else(|| ReplayError::NoSha256 {
                event: e.number,
                pcr: e.pcr,
                kind: e.type_name(),
            })?;
            // pcr <= MAX_PCR was checked by the parser.
            let i = e.pcr as usize;
            values[i] = extend(&values[i], &d);
            touched[i] = true;
        }
        Ok(Replay { values, touched })
    }

    /// Measured events of one PCR, in order.
    pub fn events_of(&self, pcr: u32) -> impl Iterator<Item = &Event> {
        self.events
            .iter()
            .filter(move |e| e.pcr == pcr && e.is_measured())
    }
}

impl Replay {
    /// PCRs among `indexes` whose TPM value (`current`, same order) differs
    /// from the replay: the log does not describe this boot for them.
    pub fn check(&self, indexes: &[u32], current: &[Digest]) -> Vec<u32> {
        indexes
            .iter()
            .zip(current)
            .filter(|(&i, c)| self.values.get(i as usize) != Some(*c))
            .map(|(&i, _)| i)
            .collect()
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{} PCR {} {}", self.number, self.pcr, self.describe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn spec_header(algs: &[(u16, u16)]) -> Vec<u8> {
        let mut spec = SPEC_ID_SIGNATURE.to_vec();
        spec.extend(0u32.to_le_bytes());
        spec.extend([0, 2, 0, 2]);
        spec.extend((algs.len() as u32).to_le_bytes());
        for (a, s) in algs {
            spec.extend(a.to_le_bytes());
            spec.extend(s.to_le_bytes());
        }
        spec.push(0);
        let mut out = Vec::new();
        out.extend(0u32.to_le_bytes());
        out.extend(EV_NO_ACTION.to_le_bytes());
        out.extend([0u8; 20]);
        out.extend((spec.len() as u32).to_le_bytes());
        out.extend(spec);
        out
    }

    fn event(pcr: u32, ty: u32, digest: &[u8; 32], data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend(pcr.to_le_bytes());
        out.extend(ty.to_le_bytes());
        out.extend(1u32.to_le_bytes());
        out.extend(ALG_SHA256.to_le_bytes());
        out.extend(digest);
        out.extend((data.len() as u32).to_le_bytes());
        out.extend(data);
        out
    }

    #[test]
    fn synthetic_log_replays() {
        let mut log = spec_header(&[(ALG_SHA256, 32)]);
        log.extend(event(9, EV_EVENT_TAG, &[1; 32], b""));
        log.extend(event(9, EV_NO_ACTION, &[2; 32], b""));
        log.extend(event(4, EV_SEPARATOR, &[3; 32], &[0; 4]));
        let l = parse(&log).unwrap();
        assert_eq!(l.events.len(), 3);
        let r = l.replay().unwrap();
        assert_eq!(r.values[9], extend(&[0; 32], &[1; 32]));
        assert_eq!(r.values[4], extend(&[0; 32], &[3; 32]));
        assert_eq!(r.values[0], [0; 32]);
        assert_eq!(r.values[17], [0xff; 32]);
        assert!(r.touched[9] && r.touched[4] && !r.touched[0]);
        assert_eq!(
            r.check(&[4, 9], &[r.values[4], r.values[9]]),
            vec![] as Vec<u32>
        );
        assert_eq!(r.check(&[4, 9], &[r.values[4], [0; 32]]), vec![9]);
    }

    #[test]
    fn startup_locality_sets_pcr0() {
        let mut log = spec_header(&[(ALG_SHA256, 32)]);
        log.extend(event(0, EV_NO_ACTION, &[0; 32], b"StartupLocality\0\x03"));
        log.extend(event(0, EV_SEPARATOR, &[5; 32], &[0; 4]));
        let r = parse(&log).unwrap().replay().unwrap();
        let mut init = [0u8; 32];
        init[31] = 3;
        assert_eq!(r.values[0], extend(&init, &[5; 32]));
    }

    #[test]
    fn trailing_zeros_end_the_log_but_garbage_does_not() {
        let mut log = spec_header(&[(ALG_SHA256, 32)]);
        log.extend(event(9, EV_EVENT_TAG, &[1; 32], b"x"));
        let mut padded = log.clone();
        padded.extend([0u8; 100]);
        assert_eq!(parse(&padded).unwrap().events.len(), 1);
        let mut junk = log.clone();
        junk.extend([1u8, 0, 0]);
        assert!(matches!(parse(&junk), Err(ParseError::Truncated { .. })));
    }

    #[test]
    fn refuses_malformed_logs() {
        assert_eq!(parse(&[]), Err(ParseError::Empty));
        assert!(matches!(parse(&[0; 10]), Err(ParseError::Truncated { .. })));
        // A SHA-1 format (TPM 1.2) log: the first event is not a Spec ID.
        let mut legacy = Vec::new();
        legacy.extend(0u32.to_le_bytes());
        legacy.extend(EV_S_CRTM_VERSION.to_le_bytes());
        legacy.extend([0u8; 20]);
        legacy.extend(2u32.to_le_bytes());
        legacy.extend([0, 0]);
        assert!(matches!(parse(&legacy), Err(ParseError::NotCryptoAgile(_))));
        // PCR out of range.
        let mut log = spec_header(&[(ALG_SHA256, 32)]);
        log.extend(event(24, EV_SEPARATOR, &[1; 32], b""));
        assert!(matches!(
            parse(&log),
            Err(ParseError::BadPcr { pcr: 24, .. })
        ));
        // A digest of a bank the header does not list.
        let mut log = spec_header(&[(ALG_SHA1, 20)]);
        log.extend(event(4, EV_SEPARATOR, &[1; 32], b""));
        assert!(matches!(
            parse(&log),
            Err(ParseError::UnknownAlgorithm {
                alg: ALG_SHA256,
                ..
            })
        ));
        // Huge event size.
        let mut log = spec_header(&[(ALG_SHA256, 32)]);
        let mut e = event(4, EV_SEPARATOR, &[1; 32], b"");
        let n = e.len();
        e[n - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
        log.extend(e);
        assert!(matches!(parse(&log), Err(ParseError::EventTooLarge { .. })));
        // Too many digests.
        let mut log = spec_header(&[(ALG_SHA256, 32)]);
        let mut e = event(4, EV_SEPARATOR, &[1; 32], b"");
        e[8..12].copy_from_slice(&1000u32.to_le_bytes());
        log.extend(e);
        assert!(matches!(
            parse(&log),
            Err(ParseError::BadDigestCount { .. })
        ));
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let mut log = spec_header(&[(ALG_SHA1, 20), (ALG_SHA256, 32)]);
        log.extend(event(9, EV_EVENT_TAG, &[1; 32], b"0123456789"));
        // This log has a SHA-256 digest only where the header promises two
        // banks; that is allowed (count <= banks).
        assert!(parse(&log).is_ok());
        for n in 0..log.len() {
            let _ = parse(&log[..n]);
        }
    }

    #[test]
    fn sha1_only_log_does_not_replay_sha256() {
        let mut log = spec_header(&[(ALG_SHA1, 20)]);
        log.extend(0u32.to_le_bytes());
        log.extend(EV_SEPARATOR.to_le_bytes());
        log.extend(1u32.to_le_bytes());
        log.extend(ALG_SHA1.to_le_bytes());
        log.extend([0u8; 20]);
        log.extend(0u32.to_le_bytes());
        let l = parse(&log).unwrap();
        assert!(matches!(l.replay(), Err(ReplayError::NoSha256 { .. })));
    }
}
