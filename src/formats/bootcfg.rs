//! Boot configuration from the kernel command line and `/etc/crypttab`
//! (pure). This is how the initramfs integrations tell sealroot what to
//! open without a shell in between; the syntax follows cryptsetup's and
//! systemd's conventions and is documented in docs/distro.md.
//!
//! Kernel command line (`rd.sealroot=0` disables sealroot):
//! `rd.sealroot.uuid=UUID | rd.sealroot.device=PATH`, `rd.sealroot.name=NAME`,
//! `rd.sealroot.pcrs=0,4,7,9`, `rd.sealroot.provision-key=PATH`,
//! `rd.sealroot.policy-key=PATH` (first boot in signed-policy mode),
//! `rd.sealroot.blob=PATH`, `rd.sealroot.tcti=SPEC`, `rd.sealroot.timeout=SECS`.
//!
//! crypttab: `NAME DEVICE KEYFILE OPTIONS`, a line is sealroot's when OPTIONS
//! contains `sealroot`; `sealroot-pcrs=0+4+7+9`, `sealroot-provision-key=`,
//! `sealroot-policy-key=`,
//! `sealroot-blob=`, `sealroot-tcti=`, `sealroot-timeout=` refine it. Other
//! options belong to cryptsetup and are left alone. Unknown `sealroot*`
//! keys are errors, so a typo cannot silently weaken the configuration.
//!
//! Ephemeral volumes ([`crate::formats::ephemeral`], docs/ephemeral.md):
//! `sealroot-ephemeral` plus `sealroot-mkfs=ext4|none`, `sealroot-integrity`,
//! `sealroot-wipe-existing`, `sealroot-measure-pcr=N` in crypttab;
//! `rd.sealroot.ephemeral` plus `rd.sealroot.mkfs=`, `rd.sealroot.integrity`,
//! `rd.sealroot.wipe-existing`, `rd.sealroot.measure-pcr=` on the command line.
//! The read-only OS layer of an ephemeral root through dm-verity (command
//! line only, so the root hash is covered by the boot's measurement):
//! `rd.sealroot.verity-data=DEV rd.sealroot.verity-hash=DEV
//! rd.sealroot.verity-roothash=HEX [rd.sealroot.verity-name=NAME]`.

use super::ephemeral::{self, Mkfs, Settings};
use crate::pcr::parse_list;
use std::path::PathBuf;

/// The default dm-verity mapping name of the OS layer.
pub const DEFAULT_VERITY_NAME: &str = "sealroot-os";

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

/// One volume sealroot should open at boot.
#[derive(Debug, Clone, PartialEq)]
pub struct VolumeCfg {
    pub name: String,
    pub device: DeviceRef,
    pub opts: VolumeOpts,
    /// The recovery prompt's settings (crypttab's `tries=`, `timeout=`).
    pub prompt: PromptOpts,
}

/// What the recovery prompt of the initramfs integrations uses: cryptsetup's
/// own crypttab options `tries=N` (default 3; 0: no limit) and
/// `timeout=TIME` (seconds, or with a unit s, ms, min, h; 0 or absent: no
/// timeout), crypttab(5).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PromptOpts {
    pub tries: u32,
    /// Seconds; `None` waits as long as it takes.
    pub timeout: Option<f64>,
}

impl Default for PromptOpts {
    fn default() -> Self {
        PromptOpts {
            tries: 3,
            timeout: None,
        }
    }
}

/// A crypttab `timeout=` value: seconds, or a number with a unit (s, ms,
/// min, h) as systemd-cryptsetup accepts; 0 means none. At most a day.
fn prompt_timeout(v: &str) -> Result<Option<f64>, String> {
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

/// How sealroot opens a volume: the options crypttab and the kernel command
/// line both set (`sealroot-pcrs=` and `rd.sealroot.pcrs=`, …).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VolumeOpts {
    pub pcrs: Option<Vec<u32>>,
    pub provision_key: Option<PathBuf>,
    /// First-boot enrollment in signed-policy mode with this public key.
    pub policy_key: Option<PathBuf>,
    pub blob: Option<PathBuf>,
    pub tcti: Option<String>,
    pub timeout: Option<f64>,
    /// Set for an ephemeral volume (fresh key every boot, nothing unsealed).
    pub ephemeral: Option<Settings>,
}

impl VolumeOpts {
    /// These options, and `base`'s where these have none (the command line
    /// refines crypttab).
    fn or(&self, base: &VolumeOpts) -> VolumeOpts {
        VolumeOpts {
            pcrs: self.pcrs.clone().or_else(|| base.pcrs.clone()),
            provision_key: self
                .provision_key
                .clone()
                .or_else(|| base.provision_key.clone()),
            policy_key: self.policy_key.clone().or_else(|| base.policy_key.clone()),
            blob: self.blob.clone().or_else(|| base.blob.clone()),
            tcti: self.tcti.clone().or_else(|| base.tcti.clone()),
            timeout: self.timeout.or(base.timeout),
            ephemeral: self.ephemeral.clone().or_else(|| base.ephemeral.clone()),
        }
    }

    /// Whether an option says something about sealing, which an ephemeral
    /// volume never does.
    fn seals(&self) -> bool {
        self.pcrs.is_some()
            || self.provision_key.is_some()
            || self.policy_key.is_some()
            || self.blob.is_some()
    }

    /// Set the option `name` (without its `sealroot-` or `rd.sealroot.`
    /// prefix; `key` is the option as written) from `value`. `Ok(false)`
    /// when `name` is not a volume option. In crypttab a flag takes no
    /// value and PCRs are separated with `+`; on the command line a flag
    /// may say `=0`/`=1`.
    fn set(
        &mut self,
        eph: &mut EphemeralOpts,
        crypttab: bool,
        name: &str,
        key: &str,
        value: Option<&str>,
    ) -> Result<bool, String> {
        let need = || value.ok_or_else(|| format!("{key} needs a value"));
        let flag = || match (crypttab, value) {
            (true, None) => Ok(true),
            (true, Some(_)) => Err(format!("{key} takes no value")),
            (false, v) => flag_ok(key, v),
        };
        match name {
            "pcrs" if crypttab => self.pcrs = Some(parse_list(&need()?.replace('+', ","))?),
            "pcrs" => self.pcrs = Some(parse_list(need()?)?),
            "provision-key" => self.provision_key = Some(path_ok(need()?, key)?),
            "policy-key" => self.policy_key = Some(path_ok(need()?, key)?),
            "blob" => self.blob = Some(path_ok(need()?, key)?),
            "tcti" => self.tcti = Some(tcti_ok(need()?)?),
            "timeout" => self.timeout = Some(seconds(need()?)?),
            "ephemeral" => eph.on = flag()?,
            "integrity" => eph.integrity = flag()?,
            "wipe-existing" => eph.wipe_existing = flag()?,
            "mkfs" => eph.mkfs = Some(Mkfs::parse(need()?)?),
            "measure-pcr" => eph.measure_pcr = Some(measure_pcr(need()?)?),
            _ => return Ok(false),
        }
        Ok(true)
    }
}

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

/// A dm-verity device (the read-only OS layer of an ephemeral root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerityCfg {
    pub data: DeviceRef,
    pub hash: DeviceRef,
    pub root_hash: Vec<u8>,
    pub name: String,
}

/// Ephemeral options as they are collected, checked once all are seen.
#[derive(Default)]
struct EphemeralOpts {
    on: bool,
    mkfs: Option<Mkfs>,
    integrity: bool,
    wipe_existing: bool,
    measure_pcr: Option<u32>,
}

impl EphemeralOpts {
    fn settings(self, prefix: &str) -> Result<Option<Settings>, String> {
        if !self.on {
            if self.mkfs.is_some()
                || self.integrity
                || self.wipe_existing
                || self.measure_pcr.is_some()
            {
                return Err(format!(
                    "{prefix}mkfs/integrity/wipe-existing/measure-pcr need {prefix}ephemeral"
                ));
            }
            return Ok(None);
        }
        Ok(Some(Settings {
            integrity: self.integrity,
            mkfs: self.mkfs.unwrap_or(Mkfs::Ext4),
            wipe_existing: self.wipe_existing,
            measure_pcr: self.measure_pcr,
        }))
    }
}

fn flag_ok(key: &str, v: Option<&str>) -> Result<bool, String> {
    match v {
        None | Some("1") | Some("yes") | Some("on") => Ok(true),
        Some("0") | Some("no") | Some("off") => Ok(false),
        Some(v) => Err(format!("{key}={v:?}: use 0 or 1")),
    }
}

/// A `measure-pcr` value: a PCR index from 8 to 14.
pub fn measure_pcr(v: &str) -> Result<u32, String> {
    let p = v
        .parse::<u32>()
        .map_err(|_| format!("bad PCR index {v:?}"))?;
    ephemeral::measure_pcr_ok(p)
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

fn path_ok(p: &str, what: &str) -> Result<PathBuf, String> {
    if !p.starts_with('/') || p.contains('\0') {
        return Err(format!("{what} {p:?} is not an absolute path"));
    }
    Ok(PathBuf::from(p))
}

/// Seconds from 0 to 3600 (fractions allowed): every timeout option.
pub fn seconds(t: &str) -> Result<f64, String> {
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=3600.0).contains(&v) => Ok(v),
        _ => Err(format!("{t:?} is not a number of seconds from 0 to 3600")),
    }
}

fn tcti_ok(t: &str) -> Result<String, String> {
    if t.is_empty() || t.len() > 256 || t.chars().any(|c| c.is_control()) {
        return Err(format!("bad TCTI {t:?}"));
    }
    Ok(t.to_string())
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

/// Undo crypttab/fstab octal escapes (`\040` for a space).
fn unescape(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            let oct = b
                .get(i + 1..i + 4)
                .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)))
                .ok_or_else(|| format!("bad escape in {s:?}"))?;
            let v = oct.iter().fold(0u32, |a, d| a * 8 + u32::from(d - b'0'));
            if v == 0 || v > 255 {
                return Err(format!("bad escape in {s:?}"));
            }
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{s:?} is not UTF-8"))
}

/// The sealroot lines of a crypttab (`line number: problem` on error).
pub fn parse_crypttab(text: &str) -> Result<Vec<VolumeCfg>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let opts = fields.get(3).copied().unwrap_or("");
        let opts: Vec<&str> = opts.split(',').collect();
        if !opts.iter().any(|o| {
            let k = o.split_once('=').map_or(*o, |(k, _)| k);
            k == "sealroot" || k.starts_with("sealroot-")
        }) {
            continue;
        }
        let at = |e: String| format!("crypttab line {}: {e}", n + 1);
        if !opts.contains(&"sealroot") {
            return Err(at("sealroot-* options without the sealroot option".into()));
        }
        if fields.len() > 4 {
            return Err(at("more than 4 fields".into()));
        }
        let name = mapping_name(&unescape(fields[0]).map_err(at)?).map_err(at)?;
        let device = DeviceRef::parse(&unescape(fields[1]).map_err(at)?).map_err(at)?;
        let mut v = VolumeCfg {
            name,
            device,
            opts: VolumeOpts::default(),
            prompt: PromptOpts::default(),
        };
        let mut eph = EphemeralOpts::default();
        for o in opts {
            let (k, val) = match o.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (o, None),
            };
            if k == "sealroot" {
                if val.is_some() {
                    return Err(at("the sealroot option takes no value".into()));
                }
                continue;
            }
            let Some(name) = k.strip_prefix("sealroot-") else {
                // cryptsetup's own option; the prompt's two are read here.
                match (k, val) {
                    ("tries", Some(t)) => {
                        v.prompt.tries = t.parse().map_err(|_| {
                            at(format!("tries={t:?}: use a whole number (0: no limit)"))
                        })?
                    }
                    ("timeout", Some(t)) => v.prompt.timeout = prompt_timeout(t).map_err(at)?,
                    _ => {}
                }
                continue;
            };
            if !v.opts.set(&mut eph, true, name, k, val).map_err(at)? {
                return Err(at(format!("unknown option {o:?}")));
            }
        }
        v.opts.ephemeral = eph.settings("sealroot-").map_err(at)?;
        if v.opts.ephemeral.is_some() && v.opts.seals() {
            return Err(at(
                "sealroot-ephemeral takes no sealroot-pcrs, sealroot-provision-key, sealroot-policy-key or sealroot-blob (nothing is sealed)".into(),
            ));
        }
        out.push(v);
    }
    Ok(out)
}

/// The volumes to open: the command line's (completed from a crypttab line
/// for the same device), else crypttab's. Empty when disabled. Every
/// mapping name (the volumes' and the dm-verity layer's) must be distinct.
pub fn resolve(cmdline: &CmdlineCfg, crypttab: &[VolumeCfg]) -> Result<Vec<VolumeCfg>, String> {
    let vols = resolve_volumes(cmdline, crypttab)?;
    let mut names: Vec<&str> = vols.iter().map(|v| v.name.as_str()).collect();
    if !cmdline.disabled {
        names.extend(cmdline.verity.as_ref().map(|v| v.name.as_str()));
    }
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(format!(
            "two volumes would be /dev/mapper/{} (give each its own name)",
            w[0]
        ));
    }
    Ok(vols)
}

fn resolve_volumes(cmdline: &CmdlineCfg, crypttab: &[VolumeCfg]) -> Result<Vec<VolumeCfg>, String> {
    if cmdline.disabled {
        return Ok(vec![]);
    }
    let c = &cmdline.opts;
    let Some(dev) = &cmdline.device else {
        if cmdline.name.is_some()
            || c.provision_key.is_some()
            || c.policy_key.is_some()
            || c.blob.is_some()
            || c.ephemeral.is_some()
        {
            return Err(
                "rd.sealroot.* options given without rd.sealroot.uuid or rd.sealroot.device".into(),
            );
        }
        // Command-line options without a device (PCRs, TCTI, timeout)
        // refine every crypttab entry.
        return Ok(crypttab
            .iter()
            .map(|v| VolumeCfg {
                opts: c.or(&v.opts),
                ..v.clone()
            })
            .collect());
    };
    let base = crypttab.iter().find(|v| &v.device == dev);
    let opts = c.or(&base.map(|b| b.opts.clone()).unwrap_or_default());
    if opts.ephemeral.is_some() && c.seals() {
        return Err(
            "rd.sealroot.ephemeral takes no rd.sealroot.pcrs, .provision-key, .policy-key or .blob (nothing is sealed)"
                .into(),
        );
    }
    let name = cmdline
        .name
        .clone()
        .or_else(|| base.map(|b| b.name.clone()))
        .unwrap_or_else(|| match dev {
            _ if opts.ephemeral.is_some() => "ephemeral".to_string(),
            DeviceRef::Uuid(u) => format!("luks-{u}"),
            _ => "root".to_string(),
        });
    Ok(vec![VolumeCfg {
        name,
        device: dev.clone(),
        opts,
        prompt: base.map(|b| b.prompt).unwrap_or_default(),
    }])
}

/// `value` single-quoted for a POSIX shell: `eval` of the result assigns
/// exactly these bytes and runs nothing (a `'` becomes `'\''`).
pub fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// The sealed volume's configuration as shell assignments, one per line,
/// for the initramfs scripts' recovery prompt (docs/distro.md): `SEALROOT_NAME`,
/// `SEALROOT_DEVICE` (as configured), `SEALROOT_PATH` (the device node),
/// `SEALROOT_TCTI` (the volume's, else `tcti`), `SEALROOT_TRIES`,
/// `SEALROOT_PROMPT_TIMEOUT` (seconds, 0: none), `SEALROOT_PROVISION_KEY`,
/// `SEALROOT_POLICY_KEY`, `SEALROOT_BLOB`. Every key is printed; without a
/// volume all are empty.
pub fn export(v: Option<&VolumeCfg>, tcti: &str) -> String {
    let path = |p: &Option<PathBuf>| {
        p.as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    };
    let fields: Vec<(&str, String)> = match v {
        None => vec![],
        Some(v) => vec![
            ("NAME", v.name.clone()),
            ("DEVICE", v.device.to_string()),
            ("PATH", v.device.path().display().to_string()),
            (
                "TCTI",
                v.opts.tcti.clone().unwrap_or_else(|| tcti.to_string()),
            ),
            ("TRIES", v.prompt.tries.to_string()),
            (
                "PROMPT_TIMEOUT",
                v.prompt
                    .timeout
                    .map(|t| t.to_string())
                    .unwrap_or("0".into()),
            ),
            ("PROVISION_KEY", path(&v.opts.provision_key)),
            ("POLICY_KEY", path(&v.opts.policy_key)),
            ("BLOB", path(&v.opts.blob)),
        ],
    };
    let keys = [
        "NAME",
        "DEVICE",
        "PATH",
        "TCTI",
        "TRIES",
        "PROMPT_TIMEOUT",
        "PROVISION_KEY",
        "POLICY_KEY",
        "BLOB",
    ];
    keys.iter()
        .map(|k| {
            let value = fields
                .iter()
                .find(|(f, _)| f == k)
                .map(|(_, v)| v.as_str())
                .unwrap_or("");
            format!("SEALROOT_{k}={}\n", shell_quote(value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmdline_options() {
        let c = parse_cmdline(
            "BOOT_IMAGE=/vmlinuz root=/dev/mapper/root rd.sealroot.uuid=ABCD-12 \
             rd.sealroot.name=root rd.sealroot.pcrs=0,7 rd.sealroot.timeout=2.5 \
             \"rd.sealroot.tcti=device:/dev/tpmrm0\" quiet",
        )
        .unwrap();
        assert_eq!(c.device, Some(DeviceRef::Uuid("abcd-12".into())));
        assert_eq!(c.name.as_deref(), Some("root"));
        assert_eq!(c.opts.pcrs, Some(vec![0, 7]));
        assert_eq!(c.opts.timeout, Some(2.5));
        assert_eq!(c.opts.tcti.as_deref(), Some("device:/dev/tpmrm0"));
        assert!(!c.disabled);
        assert!(parse_cmdline("rd.sealroot=0").unwrap().disabled);
        assert_eq!(
            parse_cmdline("quiet splash").unwrap(),
            CmdlineCfg::default()
        );
    }

    #[test]
    fn cmdline_errors() {
        for bad in [
            "rd.sealroot.uuid",
            "rd.sealroot.uuid=",
            "rd.sealroot.uid=abc",
            "rd.sealroot.pcrs=99",
            "rd.sealroot.name=a/b",
            "rd.sealroot.provision-key=relative",
            "rd.sealroot.policy-key=relative.pem",
            "rd.sealroot.timeout=-1",
            "rd.sealroot=maybe",
            "rd.sealroot.device=sda",
        ] {
            assert!(parse_cmdline(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn crypttab_lines() {
        let t = "# comment\n\
                 swap /dev/sdb none plain,cipher=aes-xts-plain64\n\
                 root UUID=1234-ab none luks,discard,sealroot,sealroot-pcrs=0+4+7+9,sealroot-provision-key=/etc/sealroot/provision.key\n\
                 data\\040disk LABEL=data none sealroot\n";
        let v = parse_crypttab(t).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].name, "root");
        assert_eq!(v[0].device, DeviceRef::Uuid("1234-ab".into()));
        assert_eq!(
            v[0].device.path(),
            PathBuf::from("/dev/disk/by-uuid/1234-ab")
        );
        assert_eq!(v[0].opts.pcrs, Some(vec![0, 4, 7, 9]));
        assert_eq!(
            v[0].opts.provision_key,
            Some(PathBuf::from("/etc/sealroot/provision.key"))
        );
        assert_eq!(v[1].name, "data disk");
        assert_eq!(v[1].device.path(), PathBuf::from("/dev/disk/by-label/data"));
    }

    #[test]
    fn crypttab_errors_name_the_line() {
        let e = parse_crypttab("\nroot UUID=1 none sealroot,sealroot-pcr=7\n").unwrap_err();
        assert!(e.starts_with("crypttab line 2:"), "{e}");
        for bad in [
            "root sda none sealroot",
            "root UUID=1 none sealroot,sealroot-pcrs",
            "root UUID=1 none sealroot,sealroot-pcrs=0+24",
            "root UUID=1 none sealroot extra",
            "r\\999 UUID=1 none sealroot",
            "root UUID=1 none sealroot=yes",
            "root UUID=1 none luks,sealroot-pcrs=7",
        ] {
            assert!(parse_crypttab(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn resolution() {
        let tab = parse_crypttab("root UUID=aa none sealroot,sealroot-pcrs=0+7\n").unwrap();
        // crypttab alone
        let v = resolve(&CmdlineCfg::default(), &tab).unwrap();
        assert_eq!(v, tab);
        // command line picks the same device and overrides the PCRs
        let c = parse_cmdline("rd.sealroot.uuid=AA rd.sealroot.pcrs=0,4,7").unwrap();
        let v = resolve(&c, &tab).unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].name, "root");
        assert_eq!(v[0].opts.pcrs, Some(vec![0, 4, 7]));
        // a device only on the command line
        let c = parse_cmdline("rd.sealroot.uuid=bb").unwrap();
        assert_eq!(resolve(&c, &tab).unwrap()[0].name, "luks-bb");
        // disabled
        assert!(resolve(&parse_cmdline("rd.sealroot=0").unwrap(), &tab)
            .unwrap()
            .is_empty());
        // options without a device
        assert!(resolve(&parse_cmdline("rd.sealroot.name=x").unwrap(), &tab).is_err());
    }

    #[test]
    fn ephemeral_options() {
        let tab = parse_crypttab(
            "root UUID=aa none sealroot\n\
             scratch /dev/vdb none sealroot,sealroot-ephemeral,sealroot-integrity,sealroot-mkfs=none,sealroot-wipe-existing,sealroot-measure-pcr=13\n\
             tmp /dev/vdc none sealroot,sealroot-ephemeral\n",
        )
        .unwrap();
        assert_eq!(tab[0].opts.ephemeral, None);
        assert_eq!(
            tab[1].opts.ephemeral,
            Some(Settings {
                integrity: true,
                mkfs: Mkfs::None,
                wipe_existing: true,
                measure_pcr: Some(13),
            })
        );
        assert_eq!(tab[2].opts.ephemeral, Some(Settings::default()));
        for bad in [
            "s /dev/vdb none sealroot,sealroot-integrity",
            "s /dev/vdb none sealroot,sealroot-ephemeral=1",
            "s /dev/vdb none sealroot,sealroot-ephemeral,sealroot-mkfs=xfs",
            "s /dev/vdb none sealroot,sealroot-ephemeral,sealroot-measure-pcr=15",
            "s /dev/vdb none sealroot,sealroot-ephemeral,sealroot-measure-pcr=x",
            "s /dev/vdb none sealroot,sealroot-ephemeral,sealroot-pcrs=7",
            "s /dev/vdb none sealroot,sealroot-ephemeral,sealroot-provision-key=/k",
        ] {
            assert!(parse_crypttab(bad).is_err(), "{bad} accepted");
        }

        let c = parse_cmdline(
            "rd.sealroot.device=/dev/vdb rd.sealroot.ephemeral rd.sealroot.integrity=1 rd.sealroot.measure-pcr=13",
        )
        .unwrap();
        let v = resolve(&c, &[]).unwrap();
        assert_eq!(v[0].name, "ephemeral");
        assert_eq!(
            v[0].opts.ephemeral,
            Some(Settings {
                integrity: true,
                mkfs: Mkfs::Ext4,
                wipe_existing: false,
                measure_pcr: Some(13),
            })
        );
        // The command line completes from the crypttab line of the device.
        let c = parse_cmdline("rd.sealroot.device=/dev/vdb").unwrap();
        let v = resolve(&c, &tab).unwrap();
        assert_eq!(v[0].name, "scratch");
        assert!(v[0].opts.ephemeral.as_ref().unwrap().wipe_existing);
        // crypttab alone: both kinds come back; boot sorts them.
        assert_eq!(resolve(&CmdlineCfg::default(), &tab).unwrap().len(), 3);
        for bad in [
            "rd.sealroot.integrity",
            "rd.sealroot.device=/dev/vdb rd.sealroot.wipe-existing",
            "rd.sealroot.device=/dev/vdb rd.sealroot.ephemeral=maybe",
            "rd.sealroot.device=/dev/vdb rd.sealroot.ephemeral rd.sealroot.mkfs=btrfs",
            "rd.sealroot.device=/dev/vdb rd.sealroot.ephemeral rd.sealroot.measure-pcr=23",
        ] {
            assert!(parse_cmdline(bad).is_err(), "{bad} accepted");
        }
        for bad in [
            "rd.sealroot.ephemeral",
            "rd.sealroot.device=/dev/vdb rd.sealroot.ephemeral rd.sealroot.pcrs=7",
        ] {
            assert!(
                resolve(&parse_cmdline(bad).unwrap(), &[]).is_err(),
                "{bad} accepted"
            );
        }
    }

    #[test]
    fn root_hashes() {
        assert_eq!(parse_root_hash(&"ab".repeat(32)).unwrap(), vec![0xab; 32]);
        assert!(parse_root_hash("abcd").is_err());
        assert!(parse_root_hash(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn verity_options() {
        let rh = "0a".repeat(32);
        let c = parse_cmdline(&format!(
            "rd.sealroot.verity-data=/dev/vda rd.sealroot.verity-hash=PARTLABEL=x rd.sealroot.verity-roothash={rh}"
        ));
        assert!(c.is_err(), "PARTLABEL is not a device form");
        let c = parse_cmdline(&format!(
            "rd.sealroot.verity-data=/dev/vda rd.sealroot.verity-hash=/dev/vdc rd.sealroot.verity-roothash={rh}"
        ))
        .unwrap();
        assert_eq!(
            c.verity,
            Some(VerityCfg {
                data: DeviceRef::Path("/dev/vda".into()),
                hash: DeviceRef::Path("/dev/vdc".into()),
                root_hash: vec![0x0a; 32],
                name: "sealroot-os".into(),
            })
        );
        // Alone it configures no volume, and is no error.
        assert!(resolve(&c, &[]).unwrap().is_empty());
        for bad in [
            "rd.sealroot.verity-data=/dev/vda".to_string(),
            format!("rd.sealroot.verity-data=/dev/vda rd.sealroot.verity-roothash={rh}"),
            "rd.sealroot.verity-data=/dev/vda rd.sealroot.verity-hash=/dev/vdc rd.sealroot.verity-roothash=12".into(),
            "rd.sealroot.verity-name=os".into(),
        ] {
            assert!(parse_cmdline(&bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn policy_key_from_both_channels() {
        let tab = parse_crypttab(
            "root /dev/vda none sealroot,sealroot-provision-key=/p.key,sealroot-policy-key=/etc/sealroot/policy.pem\n",
        )
        .unwrap();
        assert_eq!(
            tab[0].opts.policy_key,
            Some(PathBuf::from("/etc/sealroot/policy.pem"))
        );
        // The command line refines the crypttab line for the same device.
        let c =
            parse_cmdline("rd.sealroot.device=/dev/vda rd.sealroot.policy-key=/other.pem").unwrap();
        let v = resolve(&c, &tab).unwrap();
        assert_eq!(v[0].opts.policy_key, Some(PathBuf::from("/other.pem")));
        assert_eq!(v[0].opts.provision_key, Some(PathBuf::from("/p.key")));
        // Without a device it is an error; an ephemeral volume takes none.
        let c = parse_cmdline("rd.sealroot.policy-key=/k.pem").unwrap();
        assert!(resolve(&c, &[]).is_err());
        assert!(parse_crypttab(
            "e /dev/vdb none sealroot,sealroot-ephemeral,sealroot-policy-key=/k.pem\n"
        )
        .is_err());
        assert!(parse_crypttab("r /dev/vda none sealroot,sealroot-policy-key=rel.pem\n").is_err());
    }

    #[test]
    fn prompt_options_from_crypttab() {
        let tab = parse_crypttab(
            "root UUID=aa none luks,tries=5,timeout=1min,sealroot\n\
             data /dev/vdb none sealroot,tries=0,timeout=0\n\
             other /dev/vdc none sealroot\n",
        )
        .unwrap();
        assert_eq!(
            tab[0].prompt,
            PromptOpts {
                tries: 5,
                timeout: Some(60.0)
            }
        );
        assert_eq!(
            tab[1].prompt,
            PromptOpts {
                tries: 0,
                timeout: None
            }
        );
        assert_eq!(tab[2].prompt, PromptOpts::default());
        for bad in [
            "tries=x",
            "tries=-1",
            "timeout=soon",
            "timeout=2d",
            "timeout=-5",
        ] {
            let line = format!("root UUID=aa none sealroot,{bad}\n");
            assert!(parse_crypttab(&line).is_err(), "{bad} accepted");
        }
        // A line that is not sealroot's is not judged.
        assert!(parse_crypttab("swap /dev/sdb none tries=x\n")
            .unwrap()
            .is_empty());
        // The command line completes from the crypttab line of the device.
        let c = parse_cmdline("rd.sealroot.uuid=AA").unwrap();
        assert_eq!(resolve(&c, &tab).unwrap()[0].prompt.tries, 5);
    }

    #[test]
    fn export_is_shell_safe() {
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
        let tab = parse_crypttab(
            "r\\047oot$(reboot) UUID=aa none sealroot,sealroot-tcti=swtpm:port=1,tries=4\n",
        )
        .unwrap();
        let out = export(tab.first(), "device:/dev/tpmrm0");
        assert!(
            out.contains("SEALROOT_NAME='r'\\''oot$(reboot)'\n"),
            "{out}"
        );
        assert!(out.contains("SEALROOT_DEVICE='UUID=aa'\n"), "{out}");
        assert!(
            out.contains("SEALROOT_PATH='/dev/disk/by-uuid/aa'\n"),
            "{out}"
        );
        assert!(out.contains("SEALROOT_TCTI='swtpm:port=1'\n"), "{out}");
        assert!(out.contains("SEALROOT_TRIES='4'\n"), "{out}");
        assert!(out.contains("SEALROOT_PROMPT_TIMEOUT='0'\n"), "{out}");
        assert!(out.contains("SEALROOT_BLOB=''\n"), "{out}");
        let none = export(None, "x");
        assert_eq!(none.lines().count(), 9);
        assert!(none.lines().all(|l| l.ends_with("=''")), "{none}");
    }

    #[test]
    fn disabled_wins_before_parsing() {
        assert!(disabled("quiet rd.sealroot=0 rd.sealroot.bogus=1"));
        assert!(disabled("rd.sealroot=off"));
        assert!(!disabled("rd.sealroot=0 rd.sealroot=1"));
        assert!(!disabled("rd.sealroot"));
        assert!(!disabled("rd.sealroot=maybe"));
        assert!(!disabled("rd.sealrootx=0 quiet"));
        assert!(parse_cmdline("rd.sealroot=maybe").is_err());
    }

    #[test]
    fn mapping_names_are_distinct_and_not_options() {
        for bad in ["-x", "--version", ".", "..", "", "a/b", "a\nb"] {
            assert!(mapping_name(bad).is_err(), "{bad:?}");
        }
        for ok in ["root", "a-b", ".hidden", "luks-0a"] {
            assert!(mapping_name(ok).is_ok(), "{ok:?}");
        }
        let tab = parse_crypttab(
            "root /dev/vda none sealroot\nroot /dev/vdb none sealroot,sealroot-ephemeral\n",
        )
        .unwrap();
        let e = resolve(&CmdlineCfg::default(), &tab).unwrap_err();
        assert!(e.contains("/dev/mapper/root"), "{e}");
        let rh = "0a".repeat(32);
        let c = parse_cmdline(&format!(
            "rd.sealroot.verity-data=/dev/vdc rd.sealroot.verity-hash=/dev/vdd rd.sealroot.verity-roothash={rh} rd.sealroot.verity-name=root"
        ))
        .unwrap();
        let tab = parse_crypttab("root /dev/vda none sealroot\n").unwrap();
        assert!(resolve(&c, &tab).is_err());
    }

    #[test]
    fn devices_have_no_control_characters() {
        for bad in ["UUID=a\0b", "/dev/vd\na", "LABEL=x\u{1b}", "PARTUUID=\t"] {
            assert!(DeviceRef::parse(bad).is_err(), "{bad:?}");
        }
        assert!(DeviceRef::parse(&format!("UUID={}", "a".repeat(65))).is_err());
        // The default name of a UUID-only volume is a valid mapping name.
        let c = parse_cmdline(&format!("rd.sealroot.uuid={}", "a".repeat(64))).unwrap();
        let v = resolve(&c, &[]).unwrap();
        assert!(mapping_name(&v[0].name).is_ok(), "{}", v[0].name);
    }
}
