//! Predict the PCR values of a boot with a replaced kernel or initrd (pure).
//!
//! The prediction replays the current event log with the events those
//! images produce substituted:
//!
//! - **initrd**: the Linux EFI stub (5.19+, and Debian's 6.1) measures the
//!   initrd it loads through `LoadFile2` into PCR 9 as an `EV_EVENT_TAG`
//!   event (tag `0x8F3B22EC`, "Linux initrd") whose digest is the SHA-256 of
//!   the initrd bytes.
//! - **kernel**: the firmware's `LoadImage` measures the kernel's PE image
//!   into PCR 4 as `EV_EFI_BOOT_SERVICES_APPLICATION` with its Authenticode
//!   hash ([`authenticode_sha256`]). With several applications in PCR 4
//!   (shim, grub, systemd-boot) the kernel is the last one.
//! - **QEMU direct kernel boot** (`-kernel`/`-initrd`): QEMU writes the
//!   initrd's load address and size (and a few loader fields) into the
//!   kernel's setup header before OVMF sees it, so the image OVMF measures in
//!   PCR 4 depends on the initrd size and the guest memory size too.
//!   [`qemu_patch_setup_header`] reproduces QEMU's patch; checked against
//!   real harness boots (tests/eventlog.rs, `qemu-harness/capture-eventlog`).

use crate::pcr::eventlog::{Event, EventLog, Replay, ReplayError};
use crate::pcr::{sha256, Digest};
use sha2::{Digest as _, Sha256};

/// Replacement images for a predicted boot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Substitution {
    /// SHA-256 of the new initrd (the digest of the "Linux initrd" event).
    pub initrd: Option<Digest>,
    /// Authenticode SHA-256 of the new kernel image, as the firmware
    /// measures it (for QEMU direct boot: after the setup-header patch).
    pub kernel: Option<Digest>,
}

/// Why a prediction cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PredictError {
    #[error("the event log has no Linux initrd event in PCR 9 (kernel older than 5.19, or the initrd was not loaded by the EFI stub): cannot substitute the initrd")]
    NoInitrdEvent,
    #[error("the event log has no EV_EFI_BOOT_SERVICES_APPLICATION event in PCR 4: cannot substitute the kernel")]
    NoKernelEvent,
    #[error(transparent)]
    Replay(#[from] ReplayError),
}

/// One substituted event, for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Substituted {
    pub event: usize,
    pub pcr: u32,
    pub description: String,
    pub old: Digest,
    pub new: Digest,
}

/// A predicted boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prediction {
    pub replay: Replay,
    pub substituted: Vec<Substituted>,
}

/// Replay `log` with the substitutions applied.
pub fn predict(log: &EventLog, sub: &Substitution) -> Result<Prediction, PredictError> {
    let initrd_events: Vec<usize> = log
        .events
        .iter()
        .filter(|e| e.is_measured() && e.is_linux_initrd())
        .map(|e| e.number)
        .collect();
    let kernel_event = log
        .events_of(4)
        .filter(|e| e.is_boot_application())
        .map(|e| e.number)
        .last();
    if sub.initrd.is_some() && initrd_events.is_empty() {
        return Err(PredictError::NoInitrdEvent);
    }
    if sub.kernel.is_some() && kernel_event.is_none() {
        return Err(PredictError::NoKernelEvent);
    }
    let mut substituted = Vec::new();
    let new_digest = |e: &Event| -> Option<Digest> {
        if let Some(d) = sub.initrd.filter(|_| initrd_events.contains(&e.number)) {
            return Some(d);
        }
        if let Some(d) = sub.kernel.filter(|_| Some(e.number) == kernel_event) {
            return Some(d);
        }
        None
    };
    let replay = log.replay_with(|e| {
        let old = e.sha256()?;
        match new_digest(e) {
            Some(new) => {
                substituted.push(Substituted {
                    event: e.number,
                    pcr: e.pcr,
                    description: e.describe(),
                    old,
                    new,
                });
                Some(new)
            }
            None => Some(old),
        }
    })?;
    Ok(Prediction {
        replay,
        substituted,
    })
}

/// SHA-256 of an initrd file's bytes: the digest the EFI stub measures.
pub fn initrd_digest(bytes: &[u8]) -> Digest {
    sha256(bytes)
}

/// Why a PE image cannot be hashed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeError {
    #[error("not a PE image: {0}")]
    NotPe(&'static str),
    #[error("PE image is malformed: {0}")]
    Malformed(&'static str),
}

fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Most sections accepted (the PE format allows 96).
const MAX_SECTIONS: usize = 96;

/// The PE/COFF image hash as EDK2's `MeasurePeImageAndExtend` (Tcg2Dxe)
/// computes it for `EV_EFI_BOOT_SERVICES_APPLICATION`: the Authenticode
/// hash — headers without the checksum and the certificate-table entry, the
/// sections in file order, then any data after them except the certificate
/// table.
pub fn authenticode_sha256(image: &[u8]) -> Result<Digest, PeError> {
    let malformed = PeError::Malformed;
    let pe = if image.get(0..2) == Some(b"MZ") {
        le32(image, 0x3c).ok_or(PeError::NotPe("truncated DOS header"))? as usize
    } else {
        0
    };
    if image.get(pe..pe + 4) != Some(b"PE\0\0") {
        return Err(PeError::NotPe("no PE signature"));
    }
    let coff = pe + 4;
    let nsections = le16(image, coff + 2).ok_or(malformed("COFF header"))? as usize;
    let opt_size = le16(image, coff + 16).ok_or(malformed("COFF header"))? as usize;
    let opt = coff + 20;
    let magic = le16(image, opt).ok_or(malformed("optional header"))?;
    let (nrva_at, dirs_at) = match magic {
        0x10b => (opt + 92, opt + 96),
        0x20b => (opt + 108, opt + 112),
        _ => return Err(malformed("unknown optional header magic")),
    };
    let checksum_at = opt + 64;
    let size_of_headers = le32(image, opt + 60).ok_or(malformed("optional header"))? as usize;
    let nrva = le32(image, nrva_at).ok_or(malformed("optional header"))? as usize;
    if nsections > MAX_SECTIONS {
        return Err(malformed("too many sections"));
    }
    if size_of_headers > image.len() || size_of_headers < checksum_at + 4 {
        return Err(malformed("SizeOfHeaders out of range"));
    }
    let mut h = Sha256::new();
    let mut cert_size = 0usize;
    h.update(&image[..checksum_at]);
    if nrva <= 4 {
        h.update(&image[checksum_at + 4..size_of_headers]);
    } else {
        let sec_dir = dirs_at + 4 * 8;
        if sec_dir + 8 > size_of_headers {
            return Err(malformed("data directories beyond the headers"));
        }
        h.update(&image[checksum_at + 4..sec_dir]);
        h.update(&image[sec_dir + 8..size_of_headers]);
        cert_size = le32(image, sec_dir + 4).ok_or(malformed("security directory"))? as usize;
    }
    let table = opt
        .checked_add(opt_size)
        .ok_or(malformed("optional header size"))?;
    let mut sections = Vec::with_capacity(nsections);
    for i in 0..nsections {
        let s = table + 40 * i;
        let raw_size = le32(image, s + 16).ok_or(malformed("section table"))? as usize;
        let raw_ptr = le32(image, s + 20).ok_or(malformed("section table"))? as usize;
        if raw_size != 0 {
            sections.push((raw_ptr, raw_size));
        }
    }
    sections.sort_unstable();
    let mut hashed = size_of_headers;
    for (ptr, size) in sections {
        let end = ptr
            .checked_add(size)
            .filter(|&e| e <= image.len())
            .ok_or(malformed("section beyond the end of the file"))?;
        h.update(&image[ptr..end]);
        hashed += size;
    }
    if image.len() > hashed {
        let end = image
            .len()
            .checked_sub(cert_size)
            .ok_or(malformed("certificate table larger than the file"))?;
        if end > hashed {
            h.update(&image[hashed..end]);
        }
    }
    Ok(h.finalize().into())
}

/// QEMU's `-m` and the setup-header fields it writes (`x86_load_linux`,
/// QEMU 7.2; the fields are stable since 2.x).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QemuDirectBoot {
    /// Guest RAM below 4 GiB in bytes (`-m` up to 2 GiB on q35, 3 GiB on pc).
    pub below_4g_mem: u64,
    /// Size of the initrd passed with `-initrd`.
    pub initrd_size: u64,
}

/// ACPI tables QEMU reserves at the top of low memory (`acpi_data_size`
/// for pc/q35 machine types since 2.x).
const QEMU_ACPI_DATA_SIZE: u64 = 0x20000 + 0x8000;

/// Apply QEMU's patch of the Linux setup header to a bzImage (in place):
/// loader type, CAN_USE_HEAP and heap end, command-line pointer, initrd
/// address and size. The result is the image OVMF's `LoadImage` measures
/// into PCR 4 under `-kernel`.
pub fn qemu_patch_setup_header(image: &mut [u8], q: &QemuDirectBoot) -> Result<(), PeError> {
    if image.len() < 0x240 || le32(image, 0x202) != Some(0x5372_6448) {
        return Err(PeError::NotPe("no Linux setup header (\"HdrS\")"));
    }
    let protocol = le16(image, 0x206).ok_or(PeError::Malformed("setup header"))?;
    let loadflags = image[0x211];
    if protocol < 0x202 || loadflags & 0x01 == 0 {
        return Err(PeError::Malformed(
            "boot protocol older than 2.02 or not loaded high",
        ));
    }
    let real_addr: u32 = 0x10000;
    let cmdline_addr: u32 = 0x20000;
    let mut initrd_max = if protocol >= 0x203 {
        u64::from(le32(image, 0x22c).ok_or(PeError::Malformed("setup header"))?)
    } else {
        0x37ff_ffff
    };
    let limit = q.below_4g_mem.saturating_sub(QEMU_ACPI_DATA_SIZE);
    if initrd_max >= limit {
        initrd_max = limit.saturating_sub(1);
    }
    if q.initrd_size >= initrd_max {
        return Err(PeError::Malformed("initrd larger than the guest memory"));
    }
    let initrd_addr = ((initrd_max - q.initrd_size) & !4095) as u32;
    image[0x228..0x22c].copy_from_slice(&cmdline_addr.to_le_bytes());
    image[0x210] = 0xb0;
    image[0x211] |= 0x80;
    let heap_end = (cmdline_addr - real_addr - 0x200) as u16;
    image[0x224..0x226].copy_from_slice(&heap_end.to_le_bytes());
    image[0x218..0x21c].copy_from_slice(&initrd_addr.to_le_bytes());
    image[0x21c..0x220].copy_from_slice(&(q.initrd_size as u32).to_le_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authenticode_refuses_non_pe() {
        assert!(authenticode_sha256(b"").is_err());
        assert!(authenticode_sha256(b"MZ").is_err());
        assert!(authenticode_sha256(&[0u8; 4096]).is_err());
        let mut mz = vec![0u8; 4096];
        mz[0..2].copy_from_slice(b"MZ");
        mz[0x3c..0x40].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(authenticode_sha256(&mz).is_err());
    }

    #[test]
    fn qemu_patch_needs_a_setup_header() {
        let mut img = vec![0u8; 4096];
        let q = QemuDirectBoot {
            below_4g_mem: 1 << 30,
            initrd_size: 1000,
        };
        assert!(qemu_patch_setup_header(&mut img, &q).is_err());
    }
}
