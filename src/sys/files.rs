//! Files that hold keys, PINs, blobs and the command line: read exactly as
//! documented, and written so that a crash or a full disk never leaves a
//! half-written file in place of a good one.

use crate::formats::keyfile;
use crate::secret::SecretBytes;
use crate::{Error, Result};
use std::io::Write;
use std::path::Path;

/// Read a key file exactly as cryptsetup's `--key-file` does: every byte
/// (`-` is standard input), except that a file holding exactly a sealroot
/// recovery key and one line ending is read without the line ending
/// ([`keyfile::key_from_file`]).
///
/// Errors: [`Error::Io`] naming the file; [`Error::Usage`] when it is empty.
pub fn read_key_file(path: &Path) -> Result<SecretBytes> {
    let bytes = if path == Path::new("-") {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut v)
            .map_err(|e| Error::io(path, e))?;
        v
    } else {
        std::fs::read(path).map_err(|e| Error::io(path, e))?
    };
    let bytes = zeroize::Zeroizing::new(bytes);
    let s = SecretBytes::new(keyfile::key_from_file(&bytes).to_vec());
    if s.is_empty() {
        return Err(Error::Usage(format!(
            "{}: key file is empty",
            path.display()
        )));
    }
    Ok(s)
}

/// Read a PIN from a file: its one final line ending (`\n`, `\r\n`, `\r`)
/// removed, whatever system wrote it; then checked
/// ([`keyfile::pin_problem`]) before any TPM sees it.
///
/// Errors: [`Error::Io`] naming the file; [`Error::Usage`] when it is
/// empty or holds a control or invisible character.
pub fn read_pin_file(path: &Path) -> Result<SecretBytes> {
    let v = zeroize::Zeroizing::new(std::fs::read(path).map_err(|e| Error::io(path, e))?);
    let pin = SecretBytes::new(keyfile::pin_from_file(&v).to_vec());
    if let Some(why) = keyfile::pin_problem(pin.as_bytes()) {
        return Err(Error::Usage(format!("{}: {why}", path.display())));
    }
    Ok(pin)
}

/// The kernel command line sealroot measures, read from `path` (invalid
/// UTF-8 replaced, so the bytes measured are the text compared).
///
/// Errors: [`Error::Io`] naming the file.
pub fn read_cmdline(path: &Path) -> Result<String> {
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    Ok(String::from_utf8_lossy(&raw).into_owned())
}

/// Write a file atomically: temp file beside it, fsync, rename, fsync the
/// directory. On any error the temp file is removed and `path` is as it was.
///
/// Errors: [`Error::Io`] naming `path` (disk full, permissions, …).
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.sealroot-tmp",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    let r = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    r.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, e)
    })
}

/// Create `path` (it must not exist) with mode 0600 and write `data`.
///
/// Errors: [`Error::Io`] naming `path` (it exists, disk full, …).
pub fn write_new_private(path: &Path, data: &[u8]) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    f.write_all(data)
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::io(path, e))
}
