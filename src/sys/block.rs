//! Block devices and image files: what is at the start, whether anything
//! holds the device, and zeroing its ends.

use crate::{Error, Result};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

/// Read the first `n` bytes of `path` (fewer if it is smaller).
///
/// Errors: [`Error::Io`] naming `path`.
pub fn read_head(path: &Path, n: usize) -> Result<Vec<u8>> {
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut v = Vec::with_capacity(n);
    f.take(n as u64)
        .read_to_end(&mut v)
        .map_err(|e| Error::io(path, e))?;
    Ok(v)
}

/// Whether something holds the block device at `path`: mounted, swap, a
/// device-mapper or MD member, or opened exclusively by another program.
/// The kernel answers an exclusive open (`O_EXCL`) of such a device with
/// EBUSY. Not a block device (an image file): `false`.
///
/// Errors: [`Error::Io`] naming `path` for any other failure.
pub fn exclusive_open_busy(path: &Path) -> Result<bool> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if !meta.file_type().is_block_device() {
        return Ok(false);
    }
    match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_EXCL)
        .open(path)
    {
        Ok(_) => Ok(false),
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => Ok(true),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Overwrite the first and last MiB of the new mapping with zeros: what
/// blkid and mkfs read first is then written (dm-integrity fails reads of
/// never-written sectors) and no stale signature can be found.
/// Errors: [`Error::Io`] naming `mapper`.
pub fn zero_ends(mapper: &Path) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(mapper)
        .map_err(|e| Error::io(mapper, e))?;
    let size = f.seek(SeekFrom::End(0)).map_err(|e| Error::io(mapper, e))?;
    let chunk = (1u64 << 20).min(size);
    let zeros = vec![0u8; chunk as usize];
    for off in [0, size - chunk] {
        f.seek(SeekFrom::Start(off))
            .and_then(|_| f.write_all(&zeros))
            .map_err(|e| Error::io(mapper, e))?;
    }
    f.sync_all().map_err(|e| Error::io(mapper, e))
}
