//! Which boot a token's PCR 15 expects. A boot that opens several sealed
//! volumes measures its primary volume's LUKS UUID, so a token for any
//! other volume must be sealed for the primary's
//! (docs/design.md#several-volumes-in-one-boot). `enroll` reads the image's
//! crypttab to catch a token that no boot of it could unseal.

use crate::formats::bootcfg::{self, DeviceRef, VolumeCfg};
use log::warn;
use std::path::Path;

/// The LUKS UUID a token's PCR 15 measures: `root_volume` when given, else
/// the volume's own.
pub fn primary_uuid<'a>(own: &'a str, root_volume: Option<&'a str>) -> &'a str {
    root_volume.unwrap_or(own)
}

/// Warn when a boot configured by `crypttab` (read as `boot` reads it,
/// with the kernel command line `cmdline`) would measure another primary
/// volume than the one the token for `device` (LUKS UUID `uuid`) is sealed
/// for (`root_volume`, else itself). A missing crypttab says nothing; an
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
    let expected = primary_uuid(uuid, root_volume);
    let primary_uuid = match &primary.device {
        DeviceRef::Uuid(u) => Some(u.to_ascii_lowercase()),
        _ if is_this(primary) => Some(uuid.to_ascii_lowercase()),
        _ => None,
    };
    let w = match primary_uuid {
        Some(p) if p.eq_ignore_ascii_case(expected) => return vec![],
        Some(p) => format!(
            "{}: a boot of it opens {} sealed volume(s) and measures its primary volume {} (LUKS UUID {p}) into PCR 15, but this token is sealed for a boot whose primary volume is {expected}: it could not be unsealed there; enroll with --root-volume {p}",
            crypttab.display(),
            sealed.len(),
            primary.name,
        ),
        None => format!(
            "{}: a boot of it opens {} sealed volume(s) and measures its primary volume {} ({}) into PCR 15; this token is sealed for a boot whose primary volume has LUKS UUID {expected}: unless that is {}, it could not be unsealed there (--root-volume sets it)",
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
