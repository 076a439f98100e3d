//! The LUKS2 header as sealroot uses it: read once from the device into a
//! sealed in-memory copy, checked against the allow-list
//! ([`crate::formats::luks2`]) before libcryptsetup or any key sees it, and
//! then handed to libcryptsetup as a detached header. The host may rewrite
//! the disk at any moment; what was checked is what is used.

use crate::formats::luks2::binary::MAGIC_PRIMARY;
use crate::formats::luks2::{self, Header, BINARY_HEADER_LEN};
use crate::sys::memfd::{MemFile, SealedFile};
use crate::{Error, Result};
use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// A checked header and the private copy libcryptsetup reads.
pub struct CheckedHeader {
    pub header: Header,
    /// Bytes `[0, 2 * hdr_size)` as read: both binary headers and JSON
    /// areas (compared before every write, see [`CheckedHeader::unchanged_on`]).
    metadata: Vec<u8>,
    copy: SealedFile,
}

impl CheckedHeader {
    /// Read the header of `device` (a block device or an image file): the
    /// binary header, both metadata copies, then each keyslot area; check
    /// them; copy them into a sealed memfd of [`Header::copy_len`] bytes.
    ///
    /// Errors: [`Error::Io`] naming `device` when it cannot be read;
    /// [`Error::VolumeRefused`] naming the field and value that is outside
    /// the allow-list (docs/format.md#luks2-header-allow-list).
    pub fn read(device: &Path) -> Result<CheckedHeader> {
        Self::read_at(device, None)
    }

    /// [`CheckedHeader::read`] from `device`, or, with `data`, from the
    /// detached header file `device` whose data device is `data` (the
    /// data segment is then checked against `data`'s size).
    ///
    /// Errors: those of [`CheckedHeader::read`]; [`Error::Io`] naming
    /// `data` when its size cannot be read.
    pub fn read_at(device: &Path, data: Option<&Path>) -> Result<CheckedHeader> {
        let io = |e: std::io::Error| Error::io(device, e);
        let refused = |r: luks2::Refusal| Error::refused(device, r.to_string());
        let mut f = File::open(device).map_err(io)?;
        let size = f.seek(SeekFrom::End(0)).map_err(io)?;
        let mut first = vec![0u8; BINARY_HEADER_LEN];
        if size < BINARY_HEADER_LEN as u64 {
            return Err(Error::luks(device, "not a LUKS2 volume (too small)"));
        }
        read_exact_at(&f, &mut first, 0, size, device)?;
        not_luks2(&first, data.is_some()).map_or(Ok(()), |why| Err(Error::luks(device, why)))?;
        let hdr_size = luks2::hdr_size(&first).map_err(refused)?;
        let mut metadata = vec![0u8; 2 * hdr_size as usize];
        read_exact_at(&f, &mut metadata, 0, size, device)?;
        let header = match data {
            None => luks2::validate(&metadata, size),
            Some(d) => luks2::validate_detached(&metadata, device_size(d)?),
        }
        .map_err(refused)?;
        crate::testhooks::pause_at("header:metadata-read");
        // Each keyslot area goes straight into the memfd: one area (at most
        // MAX_KEYSLOT_AREA) on the heap at a time.
        let copy = MemFile::new("sealroot-luks2-header", header.copy_len())?;
        copy.write_at(&metadata, 0)?;
        let mut area = Vec::new();
        let areas = header.extents().into_iter();
        // The metadata copies were read once, above, and checked: never again.
        for (off, len) in areas.filter(|(off, _)| *off >= 2 * header.hdr_size) {
            area.resize(len as usize, 0);
            read_exact_at(&f, &mut area, off, size, device)?;
            copy.write_at(&area, off)?;
        }
        let copy = copy.seal()?;
        Ok(CheckedHeader {
            header,
            metadata,
            copy,
        })
    }

    /// `len` bytes of the copy at `offset` (a keyslot area: the checked
    /// bytes, not the device's).
    ///
    /// Errors: [`Error::Io`] on the memfd.
    pub fn read_copy(&self, offset: u64, len: usize) -> Result<zeroize::Zeroizing<Vec<u8>>> {
        let mut buf = zeroize::Zeroizing::new(vec![0u8; len]);
        self.copy.read_at(&mut buf, offset)?;
        Ok(buf)
    }

    /// Where libcryptsetup finds the copy (a detached header).
    pub fn path(&self) -> PathBuf {
        self.copy.path()
    }

    /// Whether `device`'s metadata (both binary headers and JSON areas)
    /// is still byte for byte what was checked: sealroot writes to the
    /// device only then, so a header swapped since the check is not
    /// written to.
    ///
    /// Errors: [`Error::Io`] naming `device`.
    pub fn unchanged_on(&self, device: &Path) -> Result<bool> {
        let f = File::open(device).map_err(|e| Error::io(device, e))?;
        let mut now = vec![0u8; self.metadata.len()];
        let size = self.metadata.len() as u64;
        read_exact_at(&f, &mut now, 0, size, device)?;
        Ok(now == self.metadata)
    }
}

/// Why the device holds no LUKS2 header at all (no LUKS magic, or LUKS1):
/// a plain "not LUKS2" error rather than a refusal. `None` when it claims
/// to be LUKS2 (what follows is then checked in full).
fn not_luks2(first: &[u8], detached: bool) -> Option<String> {
    if &first[..6] != MAGIC_PRIMARY {
        return Some(match detached {
            true => "not a LUKS2 header file (no LUKS header)".into(),
            false => "not a LUKS2 volume (no LUKS header; a volume whose header is detached needs it named: header= in crypttab, --header)".into(),
        });
    }
    match u16::from_be_bytes([first[6], first[7]]) {
        2 => None,
        v => Some(format!(
            "not a LUKS2 volume (LUKS version {v}; sealroot opens LUKS2 only)"
        )),
    }
}

/// The size of the data device (or image file) `path`.
fn device_size(path: &Path) -> Result<u64> {
    File::open(path)
        .and_then(|mut f| f.seek(SeekFrom::End(0)))
        .map_err(|e| Error::io(path, e))
}

/// Read exactly `buf.len()` bytes at `off`; a device too short for them is
/// a refusal (a truncated header), not an I/O error.
fn read_exact_at(f: &File, buf: &mut [u8], off: u64, size: u64, device: &Path) -> Result<()> {
    if off.saturating_add(buf.len() as u64) > size {
        return Err(Error::refused(
            device,
            format!(
                "LUKS2 header: the device is {size} bytes, too short for {} bytes at offset {off}",
                buf.len()
            ),
        ));
    }
    f.read_exact_at(buf, off).map_err(|e| Error::io(device, e))
}
