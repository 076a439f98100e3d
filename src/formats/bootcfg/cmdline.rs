//! The kernel command line's `rd.sealroot.*` options.

use super::device::DeviceRef;
use super::values::{flag_ok, mapping_name, parse_root_hash, path_ok};
use super::volume::{EphemeralOpts, VerityCfg, VolumeOpts, DEFAULT_VERITY_NAME};

/// What the kernel command line says.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CmdlineCfg {
    /// `rd.sealroot=0`.
    pub disabled: bool,
    pub device: Option<DeviceRef>,
    pub name: Option<String>,
    pub opts: VolumeOpts,
    /// `rd.sealroot.verity-*`: a dm-verity device to open first.
    pub verity: Option<VerityCfg>,
}

/// Split a kernel command line into parameters; double quotes group.
pub fn split_cmdline(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in s.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

/// Whether the command line turns sealroot off for this boot
/// (`rd.sealroot=0`, `no` or `off`; the last `rd.sealroot=` wins). Checked
/// before anything else is parsed, so `rd.sealroot=0` works even when
/// other options are wrong.
pub fn disabled(s: &str) -> bool {
    split_cmdline(s)
        .iter()
        .filter_map(|p| match p.split_once('=') {
            Some(("rd.sealroot", v)) => Some(Some(v)),
            None if p == "rd.sealroot" => Some(None),
            _ => None,
        })
        .filter_map(|v| flag_ok("rd.sealroot", v).ok())
        .next_back()
        .is_some_and(|on| !on)
}

/// Parse sealroot's options from a kernel command line.
pub fn parse_cmdline(s: &str) -> Result<CmdlineCfg, String> {
    let mut c = CmdlineCfg::default();
    let mut eph = EphemeralOpts::default();
    let (mut v_data, mut v_hash, mut v_root, mut v_name) = (None, None, None, None);
    for param in split_cmdline(s) {
        let (key, value) = match param.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (param.as_str(), None),
        };
        let Some(rest) = key.strip_prefix("rd.sealroot") else {
            continue;
        };
        let need = || value.ok_or_else(|| format!("{key} needs a value"));
        match rest {
            "" => c.disabled = !flag_ok(key, value)?,
            ".uuid" => c.device = Some(DeviceRef::parse(&format!("UUID={}", need()?))?),
            ".device" => c.device = Some(DeviceRef::parse(need()?)?),
            ".name" => c.name = Some(mapping_name(need()?)?),
            ".header" => c.opts.header = Some(path_ok(need()?, key)?),
            ".verity-data" => v_data = Some(DeviceRef::parse(need()?)?),
            ".verity-hash" => v_hash = Some(DeviceRef::parse(need()?)?),
            ".verity-roothash" => v_root = Some(parse_root_hash(need()?)?),
            ".verity-name" => v_name = Some(mapping_name(need()?)?),
            _ => {
                let known = match rest.strip_prefix('.') {
                    Some(name) => c.opts.set(&mut eph, false, name, key, value)?,
                    None => false,
                };
                if !known {
                    return Err(format!("unknown option {key}"));
                }
            }
        }
    }
    c.opts.ephemeral = eph.settings("rd.sealroot.")?;
    c.verity = match (v_data, v_hash, v_root) {
        (Some(data), Some(hash), Some(root_hash)) => Some(VerityCfg {
            data,
            hash,
            root_hash,
            name: v_name.unwrap_or_else(|| DEFAULT_VERITY_NAME.to_string()),
        }),
        (None, None, None) if v_name.is_none() => None,
        _ => return Err("rd.sealroot.verity-data, -hash and -roothash go together".into()),
    };
    Ok(c)
}
