//! Where a volume is: `UUID=`, `PARTUUID=`, `LABEL=` or a path, and the
//! device node udev makes for it.

use std::path::PathBuf;

/// Where the volume is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceRef {
    Path(PathBuf),
    Uuid(String),
    PartUuid(String),
    Label(String),
}

impl DeviceRef {
    /// Parse `UUID=…`, `PARTUUID=…`, `LABEL=…` or an absolute path.
    /// No control characters anywhere (they would reach device paths, the
    /// default mapping name `luks-UUID`, logs and the console); a UUID or
    /// PARTUUID is at most 64 bytes, a label 128.
    pub fn parse(s: &str) -> Result<DeviceRef, String> {
        if s.chars().any(char::is_control) {
            return Err(format!("device {s:?} has control characters"));
        }
        let check = |v: &str, what: &str, max: usize| {
            if v.is_empty() || v.contains('/') || v.len() > max {
                Err(format!("bad {what} {v:?}"))
            } else {
                Ok(v.to_string())
            }
        };
        if let Some(v) = s.strip_prefix("UUID=") {
            Ok(DeviceRef::Uuid(check(v, "UUID", 64)?.to_ascii_lowercase()))
        } else if let Some(v) = s.strip_prefix("PARTUUID=") {
            Ok(DeviceRef::PartUuid(
                check(v, "PARTUUID", 64)?.to_ascii_lowercase(),
            ))
        } else if let Some(v) = s.strip_prefix("LABEL=") {
            Ok(DeviceRef::Label(check(v, "LABEL", 128)?))
        } else if s.starts_with('/') {
            Ok(DeviceRef::Path(PathBuf::from(s)))
        } else {
            Err(format!(
                "device {s:?} is not UUID=, PARTUUID=, LABEL= or an absolute path"
            ))
        }
    }

    /// The device node udev creates for it.
    pub fn path(&self) -> PathBuf {
        match self {
            DeviceRef::Path(p) => p.clone(),
            DeviceRef::Uuid(u) => PathBuf::from(format!("/dev/disk/by-uuid/{u}")),
            DeviceRef::PartUuid(u) => PathBuf::from(format!("/dev/disk/by-partuuid/{u}")),
            DeviceRef::Label(l) => PathBuf::from(format!("/dev/disk/by-label/{l}")),
        }
    }
}

impl std::fmt::Display for DeviceRef {
    /// As configured: `UUID=…`, `PARTUUID=…`, `LABEL=…` or the path.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceRef::Path(p) => write!(f, "{}", p.display()),
            DeviceRef::Uuid(u) => write!(f, "UUID={u}"),
            DeviceRef::PartUuid(u) => write!(f, "PARTUUID={u}"),
            DeviceRef::Label(l) => write!(f, "LABEL={l}"),
        }
    }
}
