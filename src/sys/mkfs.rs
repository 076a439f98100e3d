//! `mkfs.ext4` for ephemeral volumes, and the staged variant for
//! dm-integrity volumes (built in a sparse tmpfs file, only its written
//! blocks copied: SEEK_DATA/SEEK_HOLE).

use crate::formats::ephemeral;
use crate::{Error, Result};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// `mkfs.ext4` with lazy inode-table and journal initialisation and no
/// discard, so its time does not grow with the disk; no journal (a crash
/// ends the boot, and with it every byte of this volume).
pub fn mkfs_ext4(target: &Path, staged: bool) -> Result<()> {
    let mut cmd = std::process::Command::new("mkfs.ext4");
    if staged {
        // Zeroing by writing zeros, not by punching holes: every block the
        // filesystem needs to read as zero is then data in the staging file.
        cmd.env("UNIX_IO_NOZEROOUT", "1");
    }
    run_mkfs(cmd, &["-O", "^has_journal"], target)
}

/// `mkfs.ext4` for a persistent volume (a state volume): with a journal,
/// lazy inode-table and journal initialisation and no discard, so its time
/// does not grow with the disk.
pub fn mkfs_ext4_journaled(target: &Path) -> Result<()> {
    run_mkfs(std::process::Command::new("mkfs.ext4"), &[], target)
}

/// Run `cmd` (mkfs.ext4) with the options both kinds share, `features`,
/// and `target`; a failure names the target and carries mkfs's stderr.
fn run_mkfs(mut cmd: std::process::Command, features: &[&str], target: &Path) -> Result<()> {
    let out = cmd
        .args(["-q", "-F", "-b", "4096"])
        .args(features)
        .args(["-E", "lazy_itable_init=1,lazy_journal_init=1,nodiscard"])
        .arg(target)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| Error::io(Path::new("mkfs.ext4"), e))?;
    if !out.status.success() {
        return Err(Error::io(
            target,
            std::io::Error::other(format!(
                "mkfs.ext4 failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )),
        ));
    }
    Ok(())
}

/// Removes the staging file however the staged mkfs ends.
struct Staging(PathBuf);

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The data extents (offset, length) of a sparse file, from SEEK_DATA/SEEK_HOLE.
fn data_extents(f: &std::fs::File, size: u64) -> std::io::Result<Vec<(u64, u64)>> {
    use std::os::fd::AsRawFd;
    let fd = f.as_raw_fd();
    let mut out = Vec::new();
    let mut off = 0i64;
    while (off as u64) < size {
        // SAFETY: lseek on a file descriptor we own; no memory is passed.
        let data = unsafe { libc::lseek(fd, off, libc::SEEK_DATA) };
        if data < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ENXIO) {
                break; // no data after off
            }
            return Err(e);
        }
        // SAFETY: as above.
        let hole = unsafe { libc::lseek(fd, data, libc::SEEK_HOLE) };
        if hole < 0 {
            return Err(std::io::Error::last_os_error());
        }
        out.push((data as u64, (hole - data) as u64));
        off = hole;
    }
    Ok(out)
}

/// mkfs for a dm-integrity volume, whose never-written sectors fail reads
/// (and mke2fs reads: partial-block and inode read-modify-writes). Build the
/// filesystem in a sparse file of the same size in `scratch` (tmpfs), then
/// copy only what mke2fs wrote onto the device, in whole 4 KiB blocks: the
/// device is never read, and the cost is the metadata (a few MiB), not the
/// disk size. Unwritten blocks are ones ext4 never reads before writing
/// (uninitialised inode tables and bitmaps, free data blocks).
pub fn mkfs_ext4_staged(device: &Path, scratch: &Path) -> Result<u64> {
    let mut dev = std::fs::OpenOptions::new()
        .write(true)
        .open(device)
        .map_err(|e| Error::io(device, e))?;
    let size = dev
        .seek(SeekFrom::End(0))
        .map_err(|e| Error::io(device, e))?;
    let path = scratch.join(format!(".sealroot-mkfs-{}", std::process::id()));
    let img = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    let _guard = Staging(path.clone());
    img.set_len(size).map_err(|e| Error::io(&path, e))?;
    mkfs_ext4(&path, true)?;
    let extents = data_extents(&img, size).map_err(|e| Error::io(&path, e))?;
    let written: u64 = extents.iter().map(|e| e.1).sum();
    if written >= size && size > 64 << 20 {
        return Err(Error::io(
            &path,
            std::io::Error::other("the staging directory does not keep files sparse (use a tmpfs)"),
        ));
    }
    let block = u64::from(ephemeral::SECTOR_SIZE);
    let mut buf = vec![0u8; 1 << 20];
    let mut img = img;
    for (off, len) in extents {
        let start = off / block * block;
        let end = (off + len).div_ceil(block) * block;
        let end = end.min(size);
        let mut pos = start;
        while pos < end {
            let n = ((end - pos) as usize).min(buf.len());
            img.seek(SeekFrom::Start(pos))
                .and_then(|_| img.read_exact(&mut buf[..n]))
                .map_err(|e| Error::io(&path, e))?;
            dev.seek(SeekFrom::Start(pos))
                .and_then(|_| dev.write_all(&buf[..n]))
                .map_err(|e| Error::io(device, e))?;
            pos += n as u64;
        }
    }
    dev.sync_all().map_err(|e| Error::io(device, e))?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The staged mkfs on a device whose every byte is garbage (as a
    /// dm-integrity device's unwritten sectors are unreadable): the copied
    /// metadata alone is a clean filesystem.
    #[test]
    fn staged_mkfs_needs_only_what_it_copies() {
        let dir = tempfile::tempdir().unwrap();
        let dev = dir.path().join("dev.img");
        let size = 600u64 << 20;
        {
            let mut f = std::fs::File::create(&dev).unwrap();
            let junk = vec![0xa5u8; 1 << 20];
            for _ in 0..(size >> 20) {
                f.write_all(&junk).unwrap();
            }
        }
        let scratch = tempfile::tempdir().unwrap();
        let written = mkfs_ext4_staged(&dev, scratch.path()).unwrap();
        assert!(written > 0 && written < 16 << 20, "{written}");
        assert_eq!(std::fs::read_dir(scratch.path()).unwrap().count(), 0);
        let out = std::process::Command::new("e2fsck")
            .args(["-f", "-n"])
            .arg(&dev)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        // Positive control: without the copy the garbage is no filesystem.
        let bad = dir.path().join("bad.img");
        std::fs::write(&bad, vec![0xa5u8; 8 << 20]).unwrap();
        let out = std::process::Command::new("e2fsck")
            .args(["-f", "-n"])
            .arg(&bad)
            .output()
            .unwrap();
        assert!(!out.status.success());
    }
}
