//! Which boot a token's PCR 15 expects. A boot that opens several sealed
//! volumes measures its primary volume's LUKS UUID, and, before it unseals
//! any other volume, the primary volume key's fingerprint; a token for any
//! other volume is sealed for both (docs/design.md#several-volumes-in-one-boot).
//! `enroll` reads the image's crypttab to catch a token that no boot of it
//! could unseal.

use crate::disk::luks::Volume;
use crate::formats::bootcfg::{self, DeviceRef, VolumeCfg};
use crate::formats::volume_key;
use crate::pcr::selfpcr::Measurements;
use crate::pcr::Digest;
use crate::secret::SecretBytes;
use crate::Result;
use log::{info, warn};
use std::path::Path;

/// The primary volume of a boot, as the tokens of its other volumes need
/// it.
pub struct Primary {
    /// LUKS UUID, from its checked header.
    pub uuid: String,
    /// Its volume key's fingerprint ([`volume_key::fingerprint`]).
    pub fingerprint: Digest,
}

/// Read `device`'s header (checked like any other) and derive its volume
/// key with `key` (a passphrase or recovery key of that volume): the key's
/// fingerprint comes from the key itself, never from a token the host could
/// have rewritten.
///
/// Errors: those of [`Volume::open`] and of the key derivation.
pub fn primary_of(device: &Path, key: &SecretBytes) -> Result<Primary> {
    let mut vol = Volume::open(device)?;
    let (slot, vk) = vol.volume_key(None, key.as_bytes())?;
    let p = Primary {
        uuid: vol.uuid()?,
        fingerprint: volume_key::fingerprint(vk.as_bytes()),
    };
    info!(
        "primary volume {} (LUKS UUID {}, opened with keyslot {slot}): this token opens after it",
        device.display(),
        p.uuid
    );
    Ok(p)
}

/// What PCR 15 holds when a token for the volume with LUKS UUID `own` is
/// unsealed: in a boot of that volume alone (or as the primary), or after
/// `primary`.
pub fn measurements(cmdline: &str, own: &str, primary: Option<&Primary>) -> Measurements {
    match primary {
        None => Measurements::new(cmdline, own),
        Some(p) => Measurements::new(cmdline, &p.uuid).after_primary(&p.fingerprint),
    }
}

/// Warn when a boot configured by `crypttab` (read as `boot` reads it,
/// with the kernel command line `cmdline`) would measure another primary
/// volume than the one the token for `device` (LUKS UUID `uuid`) is sealed
/// for (the LUKS UUID `root_volume`, else itself). A missing crypttab says nothing; an
/// unreadable or invalid one is warned about. Returns the warnings (also
/// logged), for tests.
pub fn check_crypttab(
    crypttab: &Path,
    cmdline: &str,
    device: &Path,
    uuid: &str,
    root_volume: Option<&str>,
) -> Vec<String> {
    let text = match std::fs::read_to_string(crypttab) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return vec![],
        Err(e) => return say(vec![format!("{}: not checked: {e}", crypttab.display())]),
    };
    let vols = match bootcfg::parse_crypttab(&text) {
        Ok(v) => v,
        Err(e) => return say(vec![format!("{}: not checked: {e}", crypttab.display())]),
    };
    let sealed = bootcfg::sealed_in_boot_order(&vols, cmdline);
    let is_this = |v: &VolumeCfg| match &v.device {
        DeviceRef::Uuid(u) => u.eq_ignore_ascii_case(uuid),
        _ => same_file(&v.device.path(), device),
    };
    let (Some(primary), true) = (sealed.first(), sealed.iter().any(is_this)) else {
        return vec![];
    };
    let expected = root_volume.unwrap_or(uuid);
    let primary_uuid = match &primary.device {
        DeviceRef::Uuid(u) => Some(u.to_ascii_lowercase()),
        _ if is_this(primary) => Some(uuid.to_ascii_lowercase()),
        _ => None,
    };
    let w = match primary_uuid {
        Some(p) if p.eq_ignore_ascii_case(expected) => return vec![],
        Some(p) => format!(
            "{}: a boot of it opens {} sealed volume(s) and measures its primary volume {} (LUKS UUID {p}) into PCR 15, but this token is sealed for a boot whose primary volume is {expected}: it could not be unsealed there; enroll with --root-volume naming that volume ({}) and --root-key-file",
            crypttab.display(),
            sealed.len(),
            primary.name,
            primary.device.path().display(),
        ),
        None => format!(
            "{}: a boot of it opens {} sealed volume(s) and measures its primary volume {} ({}) into PCR 15; this token is sealed for a boot whose primary volume has LUKS UUID {expected}: unless that is {}, it could not be unsealed there (--root-volume and --root-key-file set it)",
            crypttab.display(),
            sealed.len(),
            primary.name,
            primary.device.path().display(),
            primary.name,
        ),
    };
    say(vec![w])
}

fn say(w: Vec<String>) -> Vec<String> {
    for m in &w {
        warn!("{m}");
    }
    w
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// PCRs that bind the initrd and the kernel command line: 9 (the EFI stub's
/// initrd and, with OVMF direct boot, the command line), 11 and 12 (a
/// unified kernel image's sections and command line).
pub const BOOT_INPUT_PCRS: [u32; 3] = [9, 11, 12];

/// Warn when a policy over `pcrs` (not a signed one) binds neither the
/// initrd nor the kernel command line. Returns whether it warned.
pub fn note_boot_inputs(pcrs: &[u32], signed: bool) -> bool {
    if signed || pcrs.iter().any(|p| BOOT_INPUT_PCRS.contains(p)) {
        return false;
    }
    warn!(
        "PCRs {pcrs:?} bind neither the initrd nor the kernel command line (PCR 9, or 11/12 for a UKI): a shell before sealroot (break=, rd.break) could replay PCR 15 and unseal"
    );
    true
}
