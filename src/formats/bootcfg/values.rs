//! The values the boot configuration's options take, each checked by one
//! function that the command line's value types use too: mapping names,
//! seconds, PCRs, paths, TCTIs, root hashes, flags, prompt timeouts.

use crate::formats::ephemeral;
use std::path::PathBuf;

/// A device-mapper name (`/dev/mapper/NAME`): 1 to 127 bytes, no `/`, no
/// control characters (a newline or an escape would forge log lines and
/// console output), not an option to the tools that take it (a leading
/// `-`), not `.` or `..`. The one rule for `--name`, crypttab and the
/// command line.
pub fn mapping_name(n: &str) -> Result<String, String> {
    if n.is_empty()
        || n.len() > 127
        || n.contains('/')
        || n.chars().any(|c| c.is_control())
        || n.starts_with('-')
        || n == "."
        || n == ".."
    {
        return Err(format!(
            "{n:?} is not a valid mapping name (1-127 bytes, no '/', no control characters, not starting with '-', not . or ..)"
        ));
    }
    Ok(n.to_string())
}

/// Seconds from 0 to 3600 (fractions allowed): every timeout option.
pub fn seconds(t: &str) -> Result<f64, String> {
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=3600.0).contains(&v) => Ok(v),
        _ => Err(format!("{t:?} is not a number of seconds from 0 to 3600")),
    }
}

/// What the initramfs integrations do when sealroot cannot open the
/// volume and no recovery key is typed (`on-failure=`): docs/security.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnFailure {
    /// Power the VM off (the default: the console belongs to the host).
    #[default]
    Poweroff,
    /// Reboot it.
    Reboot,
    /// The distribution's emergency shell: for debugging images only,
    /// never for a confidential VM (the host owns the console).
    Shell,
}

impl OnFailure {
    /// `poweroff`, `reboot` or `shell`.
    pub fn parse(v: &str) -> Result<OnFailure, String> {
        match v {
            "poweroff" => Ok(OnFailure::Poweroff),
            "reboot" => Ok(OnFailure::Reboot),
            "shell" => Ok(OnFailure::Shell),
            _ => Err(format!("on-failure={v:?}: use poweroff, reboot or shell")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OnFailure::Poweroff => "poweroff",
            OnFailure::Reboot => "reboot",
            OnFailure::Shell => "shell",
        }
    }
}

/// A `measure-pcr` value: a PCR index from 8 to 14.
pub fn measure_pcr(v: &str) -> Result<u32, String> {
    let p = v
        .parse::<u32>()
        .map_err(|_| format!("bad PCR index {v:?}"))?;
    ephemeral::measure_pcr_ok(p)
}

/// Parse a dm-verity root hash (SHA-256: 64 hex digits).
pub fn parse_root_hash(s: &str) -> Result<Vec<u8>, String> {
    if s.len() != 64 {
        return Err(format!(
            "root hash {s:?}: expected 64 hex digits (SHA-256), got {}",
            s.len()
        ));
    }
    hex::decode(s).map_err(|_| format!("root hash {s:?}: not hexadecimal"))
}

pub(crate) fn flag_ok(key: &str, v: Option<&str>) -> Result<bool, String> {
    match v {
        None | Some("1") | Some("yes") | Some("on") => Ok(true),
        Some("0") | Some("no") | Some("off") => Ok(false),
        Some(v) => Err(format!("{key}={v:?}: use 0 or 1")),
    }
}

pub(crate) fn path_ok(p: &str, what: &str) -> Result<PathBuf, String> {
    if !p.starts_with('/') || p.contains('\0') {
        return Err(format!("{what} {p:?} is not an absolute path"));
    }
    Ok(PathBuf::from(p))
}

pub(crate) fn tcti_ok(t: &str) -> Result<String, String> {
    if t.is_empty() || t.len() > 256 || t.chars().any(|c| c.is_control()) {
        return Err(format!("bad TCTI {t:?}"));
    }
    Ok(t.to_string())
}

/// A crypttab `timeout=` value: seconds, or a number with a unit (s, ms,
/// min, h) as systemd-cryptsetup accepts; 0 means none. At most a day.
pub(crate) fn prompt_timeout(v: &str) -> Result<Option<f64>, String> {
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let scale = match unit {
        "" | "s" | "sec" => 1.0,
        "ms" | "msec" => 0.001,
        "m" | "min" => 60.0,
        "h" | "hr" => 3600.0,
        _ => {
            return Err(format!(
                "timeout={v:?}: use seconds, or a number with s, ms, min or h"
            ))
        }
    };
    match num.parse::<f64>().map(|n| n * scale) {
        Ok(0.0) => Ok(None),
        Ok(t) if t.is_finite() && t > 0.0 && t <= 86400.0 => Ok(Some(t)),
        _ => Err(format!("timeout={v:?}: use seconds (at most a day)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_hashes() {
        assert_eq!(parse_root_hash(&"ab".repeat(32)).unwrap(), vec![0xab; 32]);
        assert!(parse_root_hash("abcd").is_err());
        assert!(parse_root_hash(&"zz".repeat(32)).is_err());
    }
}
