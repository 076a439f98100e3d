//! The ephemeral path, which `ephemeral` and `boot` share: format a
//! device as a keyless LUKS2 volume under a fresh random key, open it and
//! put a filesystem on it.
//!
//! The key comes from the kernel RNG XORed with the TPM's when one answers,
//! lives in one zeroized buffer, goes to libcryptsetup (which hands it to
//! dm-crypt) and is dropped: no keyslot, token or file ever holds it. The
//! data-loss guard ([`crate::formats::probe::decide`]) runs on what the
//! device holds before anything is written.

use super::TpmOpts;
use crate::disk::format::format_keyless;
use crate::disk::luks::{luks_facts, Volume};
use crate::formats::ephemeral::{self, Mkfs, Settings};
use crate::formats::probe::{self, Allowed, Content, PROBE_BYTES};
use crate::secret::{random_key, SecretBytes, VolumeKey};
use crate::sys::block::{exclusive_open_busy, read_head, zero_ends};
use crate::sys::mkfs::{mkfs_ext4, mkfs_ext4_staged};
use crate::tpm::{tcti_device_node, Tpm};
use crate::{Error, Result};
use log::{info, warn};
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

/// Probe `path` and ask the guard. A block device something holds
/// (mounted, swap, a mapping) is refused first: the check and the format
/// are two opens, and something that grabs the device in between is not
/// caught.
///
/// Errors: [`Error::EphemeralRefused`] (exit 12) naming the device and what
/// it holds; [`Error::Io`].
pub fn check(path: &Path, wipe_existing: bool) -> Result<(Content, Allowed)> {
    let refused = |reason: String| Error::EphemeralRefused {
        path: path.to_path_buf(),
        reason,
    };
    if exclusive_open_busy(path)? {
        return Err(refused(
            "is in use (mounted, active swap, held by a mapping or opened exclusively by another program)".into(),
        ));
    }
    let content = probe::probe(&read_head(path, PROBE_BYTES)?);
    let facts = match &content {
        Content::Luks(_) => Some(luks_facts(path)?),
        _ => None,
    };
    let allowed = probe::decide(&content, facts.as_ref(), wipe_existing).map_err(refused)?;
    Ok((content, allowed))
}

/// Connect to the TPM if there is one. A device TCTI whose node is absent
/// while the kernel lists no TPM means none (no waiting); otherwise wait as
/// `--tpm-timeout` says. Never an error: the kernel RNG alone is enough.
fn optional_tpm(opts: &TpmOpts, sys_tpm: &Path) -> Option<Tpm> {
    if let Some(node) = tcti_device_node(&opts.tcti) {
        let listed = std::fs::read_dir(sys_tpm)
            .map(|mut d| d.next().is_some())
            .unwrap_or(false);
        if !node.exists() && !listed {
            info!(
                "no TPM ({} absent, {} lists none): the ephemeral key comes from the kernel RNG only",
                node.display(),
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
pub fn fresh_key(n: usize, tpm: &mut Option<Tpm>) -> Result<(SecretBytes, bool)> {
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

/// Set up the volume `args` describes: guard, key, measurement, format,
/// activate, mkfs (each step's time is in the outcome).
///
/// Errors: [`Error::EphemeralRefused`], [`Error::Luks`], [`Error::Io`],
/// [`Error::NoTpm`] when extending `measure_pcr` fails.
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
    let key = key_and_measurement(args, &mut out)?;

    let t0 = Instant::now();
    format_keyless(path, &args.name, s, key.as_bytes())?;
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
    // Activate through the checked copy of the header just written: what
    // the allow-list passed is what dm-crypt gets.
    let key = VolumeKey::from(key);
    Volume::open(path)?.activate(&args.name, &key, s.integrity)?;
    drop(key);
    out.activate_ms = t1.elapsed().as_millis();
    info!("{} is open", mapper.display());
    out.mapper = Some(mapper.clone());

    let t2 = Instant::now();
    make_filesystem(&mapper, s, &args.scratch)?;
    out.mkfs_ms = t2.elapsed().as_millis();
    Ok(out)
}

/// The fresh key (kernel RNG, mixed with the TPM's when one answers) and,
/// with `measure_pcr`, the ephemeral event extended into that PCR.
fn key_and_measurement(args: &EphemeralArgs, out: &mut Outcome) -> Result<SecretBytes> {
    let s = &args.settings;
    let mut tpm = optional_tpm(&args.tpm, &args.sys_tpm);
    let (key, mixed) = fresh_key(ephemeral::key_bytes(s.integrity), &mut tpm)?;
    crate::testhooks::reveal("ephemeral-key", key.as_bytes());
    out.tpm_rng = mixed;
    info!(
        "ephemeral key: {} bits from the kernel RNG{}",
        key.len() * 8,
        if mixed {
            " XORed with the TPM RNG"
        } else {
            " only (no TPM RNG)"
        }
    );
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
    Ok(key)
}

/// Zero the ends of the new mapping, then mkfs as the settings say.
fn make_filesystem(mapper: &Path, s: &Settings, scratch: &Path) -> Result<()> {
    zero_ends(mapper)?;
    if s.mkfs == Mkfs::Ext4 {
        if s.integrity {
            let n = mkfs_ext4_staged(mapper, scratch)?;
            info!(
                "{}: ext4 created (lazy init, no journal; staged in {}, {} KiB copied)",
                mapper.display(),
                scratch.display(),
                n / 1024
            );
        } else {
            mkfs_ext4(mapper, false)?;
            info!("{}: ext4 created (lazy init, no journal)", mapper.display());
        }
    }
    Ok(())
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
