//! Sealed in-memory files (memfd): the private copy of a LUKS2 header that
//! libcryptsetup reads as a detached header. Once sealed, nobody can change
//! it (not the host, not libcryptsetup), so what sealroot checked is what
//! it uses, whatever is written to the disk meanwhile.

use crate::{Error, Result};
use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

/// A memfd whose contents can no longer change.
pub struct SealedFile {
    file: File,
}

/// A memfd still being written ([`MemFile::seal`] ends that).
pub struct MemFile {
    file: File,
    label: PathBuf,
    len: u64,
}

impl MemFile {
    /// A `len`-byte memfd named `name` (for /proc listings); what is not
    /// written reads as zeros and takes no memory.
    ///
    /// Errors: [`Error::Io`] naming `memfd:<name>`.
    pub fn new(name: &str, len: u64) -> Result<MemFile> {
        let label = PathBuf::from(format!("memfd:{name}"));
        let cname = CString::new(name).map_err(|_| Error::Internal("memfd name".into()))?;
        // SAFETY: cname is a valid NUL-terminated string that outlives the
        // call; the flags are valid memfd_create flags.
        let fd = unsafe {
            libc::memfd_create(cname.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING)
        };
        if fd < 0 {
            return Err(Error::io(&label, std::io::Error::last_os_error()));
        }
        // SAFETY: fd is a new, valid descriptor that nothing else owns.
        let file = unsafe { File::from_raw_fd(fd) };
        file.set_len(len).map_err(|e| Error::io(&label, e))?;
        Ok(MemFile { file, label, len })
    }

    /// Write `bytes` at `off` (inside the length given to [`MemFile::new`]).
    ///
    /// Errors: [`Error::Io`]; [`Error::Internal`] past the end.
    pub fn write_at(&self, bytes: &[u8], off: u64) -> Result<()> {
        if off.saturating_add(bytes.len() as u64) > self.len {
            return Err(Error::Internal(format!(
                "{}: extent at {off} beyond {} bytes",
                self.label.display(),
                self.len
            )));
        }
        self.file
            .write_all_at(bytes, off)
            .map_err(|e| Error::io(&self.label, e))
    }

    /// Seal against writes, growing and shrinking (and further seals).
    ///
    /// Errors: [`Error::Io`].
    pub fn seal(self) -> Result<SealedFile> {
        let seals =
            libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE | libc::F_SEAL_SEAL;
        // SAFETY: F_ADD_SEALS on a memfd we own takes an int argument.
        if unsafe { libc::fcntl(self.file.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
            return Err(Error::io(&self.label, std::io::Error::last_os_error()));
        }
        Ok(SealedFile { file: self.file })
    }
}

impl SealedFile {
    /// Create a `len`-byte memfd, write each `(offset, bytes)` extent, seal
    /// it ([`MemFile`] step by step).
    ///
    /// Errors: [`Error::Io`] naming `memfd:<name>`.
    pub fn create(name: &str, len: u64, extents: &[(u64, &[u8])]) -> Result<SealedFile> {
        let m = MemFile::new(name, len)?;
        for (off, bytes) in extents {
            m.write_at(bytes, *off)?;
        }
        m.seal()
    }

    /// A path that opens this file (`/proc/self/fd/N`) while it lives.
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.file.as_raw_fd()))
    }

    /// Read `buf.len()` bytes at `offset`.
    ///
    /// Errors: [`Error::Io`].
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        self.file
            .read_exact_at(buf, offset)
            .map_err(|e| Error::io(self.path(), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn sealed_and_sparse() {
        let f = SealedFile::create("t", 8192, &[(4096, b"abc")]).unwrap();
        let mut b = [9u8; 4];
        f.read_at(&mut b, 4095).unwrap();
        assert_eq!(&b, b"\0abc");
        // Neither the handle nor a reopened path can write.
        assert!(f.file.write_at(b"x", 0).is_err());
        let mut w = std::fs::OpenOptions::new()
            .write(true)
            .open(f.path())
            .unwrap();
        assert!(w.write_all(b"x").is_err());
        assert!(w.set_len(0).is_err());
    }
}
