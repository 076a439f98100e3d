//! `sealroot ephemeral`: format a device as a keyless LUKS2 volume under a
//! fresh random key, open it and put a filesystem on it.
//!
//! The key comes from the kernel RNG XORed with the TPM's when one answers,
//! lives in one zeroized buffer, goes to libcryptsetup (which hands it to
//! dm-crypt) and is dropped: no keyslot, token or file ever holds it. The
//! data-loss guard ([`crate::ephemeral::decide`]) runs on what the device
//! holds before anything is written.

use super::TpmOpts;
use crate::ephemeral::{self, Allowed, Content, LuksFacts, Mkfs, Settings};
use crate::luks::Volume;
use crate::secret::{random_key, SecretBytes};
use crate::tpm::Tpm;
use crate::{Error, Result};
use libcryptsetup_rs::consts::flags::{CryptActivate, CryptPbkdf};
use libcryptsetup_rs::consts::vals::{CryptKdf, EncryptionFormat};
use libcryptsetup_rs::{CryptInit, CryptParamsLuks2, CryptParamsLuks2Ref, CryptPbkdfType, Either};
use log::{info, warn};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

pub struct EphemeralArgs {
    pub device: PathBuf,
    pub name: String,
    pub settings: Settings,
    /// Probe and decide only; write nothing.
    pub dry_run: bool,
    /// Write the header (the marker) but do not activate or mkfs.
    pub format_only: bool,
    pub tpm: TpmOpts,
    /// Where the kernel lists TPMs (a missing TPM device node is final when
    /// this lists none).
    pub sys_tpm: PathBuf,
    /// A tmpfs directory for the staged mkfs of `--integrity` volumes.
    pub scratch: PathBuf,
}

/// What happened.
#[derive(Debug)]
pub struct Outcome {
    pub allowed: Allowed,
    /// Whether the TPM's RNG was mixed into the key.
    pub tpm_rng: bool,
    pub mapper: Option<PathBuf>,
    pub measured: Option<u32>,
    /// A new LUKS2 header was written.
    pub formatted: bool,
    pub format_ms: u128,
    pub activate_ms: u128,
    pub mkfs_ms: u128,
}

/// Read the first [`ephemeral::PROBE_BYTES`] of `path` (fewer if it is smaller).
pub fn read_head(path: &Path) -> Result<Vec<u8>> {
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut v = Vec::with_capacity(ephemeral::PROBE_BYTES);
    f.take(ephemeral::PROBE_BYTES as u64)
        .read_to_end(&mut v)
        .map_err(|e| Error::io(path, e))?;
    Ok(v)
}

/// Refuse a block device that something holds: mounted, swap, a
/// device-mapper or MD member, or opened exclusively by another program.
/// The kernel answers an exclusive open of such a device with EBUSY. (The
/// check and the format are two opens; something that grabs the device in
/// between is not caught.)
fn not_in_use(path: &Path) -> Result<()> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if !meta.file_type().is_block_device() {
        return Ok(());
    }
    match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_EXCL)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => Err(Error::EphemeralRefused {
            path: path.to_path_buf(),
            reason: "is in use (mounted, active swap, held by a mapping or opened exclusively by another program)".into(),
        }),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Probe `path` and ask the guard. `Err` is the refusal (exit 12).
pub fn check(path: &Path, wipe_existing: bool) -> Result<(Content, Allowed)> {
    not_in_use(path)?;
    let content = ephemeral::probe(&read_head(path)?);
    let facts = match &content {
        Content::Luks(_) => Some(match Volume::open(path) {
            Ok(mut v) => LuksFacts {
                loaded: true,
                keyslots: v.active_keyslots().len(),
                tokens: v.tokens()?.into_iter().map(|t| t.kind).collect(),
            },
            Err(_) => LuksFacts {
                loaded: false,
                keyslots: 0,
                tokens: vec![],
            },
        }),
        _ => None,
    };
    let allowed = ephemeral::decide(&content, facts.as_ref(), wipe_existing).map_err(|reason| {
        Error::EphemeralRefused {
            path: path.to_path_buf(),
            reason,
        }
    })?;
    Ok((content, allowed))
}

/// Connect to the TPM if there is one. A device TCTI whose node is absent
/// while the kernel lists no TPM means none (no waiting); otherwise wait as
/// `--tpm-timeout` says. Never an error: the kernel RNG alone is enough.
fn optional_tpm(opts: &TpmOpts, sys_tpm: &Path) -> Option<Tpm> {
    if let Some(rest) = opts.tcti.strip_prefix("device") {
        let node = match rest.strip_prefix(':') {
            Some(p) if !p.is_empty() => p,
            _ => "/dev/tpm0",
        };
        let listed = std::fs::read_dir(sys_tpm)
            .map(|mut d| d.next().is_some())
            .unwrap_or(false);
        if !Path::new(node).exists() && !listed {
            info!(
                "no TPM ({node} absent, {} lists none): the ephemeral key comes from the kernel RNG only",
                sys_tpm.display()
            );
            return None;
        }
    }
    match opts.open() {
        Ok(t) => Some(t),
        Err(e) => {
            info!("no TPM ({e}): the ephemeral key comes from the kernel RNG only");
            None
        }
    }
}

/// `n` (a multiple of 32) fresh random bytes: kernel RNG, each 32-byte
/// block XORed with 32 bytes of the TPM's RNG when a TPM answers.
fn fresh_key(n: usize, tpm: &mut Option<Tpm>) -> Result<(SecretBytes, bool)> {
    let mut v = Vec::with_capacity(n);
    let cap = v.capacity();
    let mut mixed = tpm.is_some();
    for _ in 0..n / 32 {
        let extra = match tpm.as_mut().map(|t| t.random32()) {
            Some(Ok(r)) if r.len() == 32 => Some(r),
            Some(Ok(_)) | Some(Err(_)) => {
                warn!("TPM GetRandom failed; the ephemeral key comes from the kernel RNG only");
                *tpm = None;
                mixed = false;
                None
            }
            None => None,
        };
        let k = random_key(extra.as_ref().map(|r| &r[..]))?;
        v.extend_from_slice(k.as_bytes());
    }
    debug_assert_eq!(v.capacity(), cap, "no reallocation left a copy behind");
    Ok((SecretBytes::new(v), mixed))
}

/// Overwrite the first and last MiB of the new mapping with zeros: what
/// blkid and mkfs read first is then written (dm-integrity fails reads of
/// never-written sectors) and no stale signature can be found.
fn zero_ends(mapper: &Path) -> Result<()> {
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

/// `mkfs.ext4` with lazy inode-table and journal initialisation and no
/// discard, so its time does not grow with the disk; no journal (a crash
/// ends the boot, and with it every byte of this volume).
fn mkfs_ext4(target: &Path, staged: bool) -> Result<()> {
    let tool = Path::new("mkfs.ext4");
    let mut cmd = std::process::Command::new(tool);
    if staged {
        // Zeroing by writing zeros, not by punching holes: every block the
        // filesystem needs to read as zero is then data in the staging file.
        cmd.env("UNIX_IO_NOZEROOUT", "1");
    }
    let out = cmd
        .args([
            "-q",
            "-F",
            "-b",
            "4096",
            "-O",
            "^has_journal",
            "-E",
            "lazy_itable_init=1,lazy_journal_init=1,nodiscard",
        ])
        .arg(target)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| Error::io(tool, e))?;
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

pub fn run(args: &EphemeralArgs) -> Result<Outcome> {
    let path = &args.device;
    let s = &args.settings;
    let mapper = PathBuf::from(format!("/dev/mapper/{}", args.name));
    if !args.dry_run && !args.format_only && mapper.exists() {
        return Err(Error::luks(
            path,
            format!("{} already exists", mapper.display()),
        ));
    }
    let (_, allowed) = check(path, s.wipe_existing)?;
    match &allowed {
        Allowed::Blank => info!("{}: blank device", path.display()),
        Allowed::PreviousEphemeral => info!(
            "{}: ephemeral volume of a previous boot (its key is gone); formatting it afresh",
            path.display()
        ),
        Allowed::Wipe(what) => warn!(
            "{}: destroying {what} (wipe-existing: the device is declared ephemeral)",
            path.display()
        ),
    }
    let mut out = Outcome {
        allowed,
        tpm_rng: false,
        mapper: None,
        measured: None,
        formatted: false,
        format_ms: 0,
        activate_ms: 0,
        mkfs_ms: 0,
    };
    if args.dry_run {
        info!("dry run: {} not touched", path.display());
        return Ok(out);
    }

    let mut tpm = optional_tpm(&args.tpm, &args.sys_tpm);
    let (key, mixed) = fresh_key(ephemeral::key_bytes(s.integrity), &mut tpm)?;
    crate::testhooks::reveal("ephemeral-key", key.as_bytes());
    out.tpm_rng = mixed;
    if mixed {
        info!(
            "ephemeral key: {} bits from the kernel RNG XORed with the TPM RNG",
            key.len() * 8
        );
    } else {
        info!(
            "ephemeral key: {} bits from the kernel RNG only (no TPM RNG)",
            key.len() * 8
        );
    }

    if let Some(pcr) = s.measure_pcr {
        match tpm.as_mut() {
            Some(t) => {
                t.pcr_extend(pcr, &ephemeral::event_digest(&args.name, s.integrity))?;
                out.measured = Some(pcr);
                info!("measured the ephemeral event into PCR {pcr}");
            }
            None => warn!("no TPM: the ephemeral event is not measured into PCR {pcr}"),
        }
    }
    drop(tpm);

    let t0 = Instant::now();
    let lerr =
        |what: &str, e: libcryptsetup_rs::LibcryptErr| Error::luks(path, format!("{what}: {e}"));
    let mut dev = CryptInit::init(path).map_err(|e| lerr("opening", e))?;
    // No keyslot is ever added; the PBKDF only guards the LUKS2 digest of
    // a 512-bit random key, so skip the benchmark.
    let params = CryptParamsLuks2 {
        pbkdf: Some(CryptPbkdfType {
            type_: CryptKdf::Pbkdf2,
            hash: Some("sha256".into()),
            time_ms: 0,
            iterations: 1000,
            max_memory_kb: 0,
            parallel_threads: 0,
            flags: CryptPbkdf::NO_BENCHMARK,
        }),
        integrity: s.integrity.then(|| ephemeral::INTEGRITY.to_string()),
        integrity_params: None,
        data_alignment: 0,
        data_device: None,
        sector_size: ephemeral::SECTOR_SIZE,
        label: Some(args.name.chars().take(47).collect()),
        subsystem: Some(ephemeral::SUBSYSTEM.to_string()),
    };
    let mut pref: CryptParamsLuks2Ref = (&params).try_into().map_err(|e| lerr("parameters", e))?;
    dev.context_handle()
        .format(
            EncryptionFormat::Luks2,
            ephemeral::CIPHER,
            None,
            Either::Left(key.as_bytes()),
            Some(&mut pref),
        )
        .map_err(|e| lerr("formatting LUKS2", e))?;
    out.format_ms = t0.elapsed().as_millis();
    out.formatted = true;
    info!(
        "{}: LUKS2 header written (aes-xts-plain64{}, subsystem {}, no keyslot, no token)",
        path.display(),
        if s.integrity { " + hmac(sha256)" } else { "" },
        ephemeral::SUBSYSTEM
    );
    if args.format_only {
        return Ok(out);
    }

    let t1 = Instant::now();
    // The volume dies with the boot: dm-integrity's journal would only
    // protect against torn writes after a crash, which ends the boot too.
    let flags = if s.integrity {
        CryptActivate::NO_JOURNAL
    } else {
        CryptActivate::empty()
    };
    dev.activate_handle()
        .activate_by_volume_key(Some(&args.name), Some(key.as_bytes()), flags)
        .map_err(|e| lerr(&format!("activating {}", mapper.display()), e))?;
    drop(key);
    drop(dev);
    out.activate_ms = t1.elapsed().as_millis();
    info!("{} is open", mapper.display());
    out.mapper = Some(mapper.clone());

    let t2 = Instant::now();
    zero_ends(&mapper)?;
    if s.mkfs == Mkfs::Ext4 {
        if s.integrity {
            let n = mkfs_ext4_staged(&mapper, &args.scratch)?;
            info!(
                "{}: ext4 created (lazy init, no journal; staged in {}, {} KiB copied)",
                mapper.display(),
                args.scratch.display(),
                n / 1024
            );
        } else {
            mkfs_ext4(&mapper, false)?;
            info!("{}: ext4 created (lazy init, no journal)", mapper.display());
        }
    }
    out.mkfs_ms = t2.elapsed().as_millis();
    Ok(out)
}

/// Default for [`EphemeralArgs::sys_tpm`].
pub const SYS_TPM: &str = "/sys/class/tpm";

/// One line for stdout.
pub fn render(device: &Path, o: &Outcome) -> String {
    let why = match &o.allowed {
        Allowed::Blank => "blank".to_string(),
        Allowed::PreviousEphemeral => "previous ephemeral volume".to_string(),
        Allowed::Wipe(w) => format!("wiped {w}"),
    };
    match &o.mapper {
        Some(m) => format!(
            "ephemeral {}: {} ready ({why}; key from {}; format {} ms, activate {} ms, mkfs {} ms{})",
            device.display(),
            m.display(),
            if o.tpm_rng { "kernel RNG + TPM RNG" } else { "kernel RNG only" },
            o.format_ms,
            o.activate_ms,
            o.mkfs_ms,
            o.measured.map(|p| format!("; measured into PCR {p}")).unwrap_or_default()
        ),
        None if o.formatted => format!(
            "ephemeral {}: LUKS2 header written, not opened ({why})",
            device.display()
        ),
        None => format!("ephemeral {}: may be formatted ({why}); dry run, nothing written", device.display()),
    }
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
