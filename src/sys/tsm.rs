//! The TDX guest edges that are plain files: configfs-tsm reports (a TD
//! quote for caller-chosen `report_data`) and the RTMR sysfs attributes.
//! Every path is a parameter, so tests point them at a temporary directory.
//!
//! configfs-tsm (Linux ≥ 6.7, Documentation/ABI/testing/configfs-tsm):
//! `mkdir <root>/<name>` creates a report request; `provider` names the
//! backend (`tdx_guest` on TDX); writing 64 bytes to `inblob` sets
//! `report_data` and increments `generation`; reading `outblob` returns the
//! quote for the current inputs. A racing writer (another process writing
//! `inblob` of the same entry) shows as a `generation` other than the one
//! our own write produced.
//!
//! RTMR extension (Linux ≥ 6.16, Documentation/ABI/testing/
//! sysfs-devices-virtual-misc-tdx_guest): writing a 48-byte SHA-384 digest
//! to `/sys/class/misc/tdx_guest/measurements/rtmr3:sha384` extends RTMR3
//! (`TDG.MR.RTMR.EXTEND`); reading it gives the current value. Older
//! kernels lack the file: the lock mirror is then skipped (logged).

use crate::{Error, Result};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

/// Default configfs-tsm report directory.
pub const DEFAULT_TSM_ROOT: &str = "/sys/kernel/config/tsm/report";
/// Default RTMR3 attribute.
pub const DEFAULT_RTMR3: &str = "/sys/class/misc/tdx_guest/measurements/rtmr3:sha384";
/// The provider name of the TDX backend.
pub const TDX_PROVIDER: &str = "tdx_guest";
/// Larger `outblob`s are refused.
pub const MAX_OUTBLOB: u64 = 64 * 1024;

/// What one configfs-tsm request returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsmReport {
    /// The backend (`tdx_guest`, `sev_guest`, …).
    pub provider: String,
    /// `generation` read right after our `inblob` write.
    pub generation_written: u64,
    /// `generation` read after `outblob`.
    pub generation_read: u64,
    /// The quote (TDX) or report.
    pub outblob: Vec<u8>,
}

fn read_small(path: &Path, max: u64) -> Result<Vec<u8>> {
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut v = Vec::new();
    f.take(max + 1)
        .read_to_end(&mut v)
        .map_err(|e| Error::io(path, e))?;
    if v.len() as u64 > max {
        return Err(Error::Platform(format!(
            "{}: more than {max} bytes",
            path.display()
        )));
    }
    Ok(v)
}

fn read_generation(entry: &Path) -> Result<u64> {
    let p = entry.join("generation");
    let v = read_small(&p, 32)?;
    let s = String::from_utf8_lossy(&v);
    s.trim()
        .parse()
        .map_err(|_| Error::Platform(format!("{}: {:?} is not a number", p.display(), s.trim())))
}

/// Whether `root` looks like a configfs-tsm report directory.
pub fn available(root: &Path) -> bool {
    root.is_dir()
}

/// Create a fresh request entry `<root>/<name>` (it must not exist: an
/// existing one may be another process's).
///
/// Errors: [`Error::Io`] naming the path.
pub fn create_entry(root: &Path, name: &str) -> Result<PathBuf> {
    let p = root.join(name);
    std::fs::create_dir(&p).map_err(|e| Error::io(&p, e))?;
    Ok(p)
}

/// Remove a request entry (best effort; configfs removes its attributes).
pub fn remove_entry(entry: &Path) {
    if let Err(e) = std::fs::remove_dir(entry) {
        log::debug!("removing {}: {e}", entry.display());
    }
}

/// Ask the entry for a report over `inblob` (64 bytes of report data):
/// read `provider`, write `inblob`, read `generation`, `outblob`, and
/// `generation` again. Deciding what the generations mean is
/// [`check_generation`]'s.
///
/// Errors: [`Error::Io`] naming the attribute; [`Error::Platform`] for an
/// oversized or unreadable value.
pub fn request(entry: &Path, inblob: &[u8; 64]) -> Result<TsmReport> {
    let pp = entry.join("provider");
    let provider = String::from_utf8_lossy(&read_small(&pp, 64)?)
        .trim()
        .to_string();
    let ip = entry.join("inblob");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&ip)
        .map_err(|e| Error::io(&ip, e))?;
    f.write_all(inblob).map_err(|e| Error::io(&ip, e))?;
    drop(f);
    let generation_written = read_generation(entry)?;
    let outblob = read_small(&entry.join("outblob"), MAX_OUTBLOB)?;
    let generation_read = read_generation(entry)?;
    Ok(TsmReport {
        provider,
        generation_written,
        generation_read,
        outblob,
    })
}

/// In a fresh entry our single `inblob` write makes `generation` 1; any
/// other value, or a change while `outblob` was read, means another writer
/// changed the inputs: the outblob may not be for our report data.
///
/// Errors: a message naming both generations.
pub fn check_generation(r: &TsmReport) -> std::result::Result<(), String> {
    if r.generation_written != 1 {
        return Err(format!(
            "configfs-tsm generation is {} after our one inblob write, expected 1: another writer used the entry",
            r.generation_written
        ));
    }
    if r.generation_read != r.generation_written {
        return Err(format!(
            "configfs-tsm generation changed from {} to {} while the outblob was read: a racing writer",
            r.generation_written, r.generation_read
        ));
    }
    Ok(())
}

/// Extend the RTMR at `attr` (e.g. [`DEFAULT_RTMR3`]) with a SHA-384
/// digest. `Ok(false)` when the attribute does not exist (kernel < 6.16 or
/// not a TDX guest).
///
/// Errors: [`Error::Io`] naming the attribute when it exists but the write
/// fails.
pub fn extend_rtmr(attr: &Path, digest: &[u8; 48]) -> Result<bool> {
    if !attr.exists() {
        return Ok(false);
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(attr)
        .map_err(|e| Error::io(attr, e))?;
    f.write_all(digest).map_err(|e| Error::io(attr, e))?;
    Ok(true)
}
