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
//! Ephemeral volumes ([`crate::ephemeral`], docs/ephemeral.md):
//! `sealroot-ephemeral` plus `sealroot-mkfs=ext4|none`, `sealroot-integrity`,
//! `sealroot-wipe-existing`, `sealroot-measure-pcr=N` in crypttab;
//! `rd.sealroot.ephemeral` plus `rd.sealroot.mkfs=`, `rd.sealroot.integrity`,
//! `rd.sealroot.wipe-existing`, `rd.sealroot.measure-pcr=` on the command line.
//! The read-only OS layer of an ephemeral root through dm-verity (command
//! line only, so the root hash is covered by the boot's measurement):
//! `rd.sealroot.verity-data=DEV rd.sealroot.verity-hash=DEV
//! rd.sealroot.verity-roothash=HEX [rd.sealroot.verity-name=NAME]`.

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
    pub fn parse(s: &str) -> Result<DeviceRef, String> {
        let check = |v: &str, what: &str| {
            if v.is_empty() || v.contains('/') || v.len() > 128 {
                Err(format!("bad {what} {v:?}"))
            } else {
                Ok(v.to_string())
            }
        };
        if let Some(v) = s.strip_prefix("UUID=") {
            Ok(DeviceRef::Uuid(check(v, "UUID")?.to_ascii_lowercase()))
        } else if let Some(v) = s.strip_prefix("PARTUUID=") {
            Ok(DeviceRef::PartUuid(
                check(v, "PARTUUID")?.to_ascii_lowercase(),
            ))
        } else if let Some(v) = s.strip_prefix("LABEL=") {
            Ok(DeviceRef::Label(check(v, "LABEL")?))
        } else if s.starts_with('/') && !s.contains('\0') {
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

/// One volume sealroot should open at boot.
#[derive(Debug, Clone, PartialEq)]
pub struct VolumeCfg {
    pub name: String,
    pub device: DeviceRef,
    pub pcrs: Option<Vec<u32>>,
    pub provision_key: Option<PathBuf>,
    /// First-boot enrollment in signed-policy mode with this public key.
    pub policy_key: Option<PathBuf>,
    pub blob: Option<PathBuf>,
    pub tcti: Option<String>,
    pub timeout: Option<f64>,
    /// Set for an ephemeral volume (fresh key every boot, nothing unsealed).
    pub ephemeral: Option<crate::ephemeral::Settings>,
}

/// What the kernel command line says.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CmdlineCfg {
    /// `rd.sealroot=0`.
    pub disabled: bool,
    pub device: Option<DeviceRef>,
    pub name: Option<String>,
    pub pcrs: Option<Vec<u32>>,
    pub provision_key: Option<PathBuf>,
    pub policy_key: Option<PathBuf>,
    pub blob: Option<PathBuf>,
    pub tcti: Option<String>,
    pub timeout: Option<f64>,
    /// `rd.sealroot.ephemeral` and its refinements.
    pub ephemeral: Option<crate::ephemeral::Settings>,
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
    mkfs: Option<crate::ephemeral::Mkfs>,
    integrity: bool,
    wipe_existing: bool,
    measure_pcr: Option<u32>,
}

impl EphemeralOpts {
    fn settings(self, prefix: &str) -> Result<Option<crate::ephemeral::Settings>, String> {
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
        Ok(Some(crate::ephemeral::Settings {
            integrity: self.integrity,
            mkfs: self.mkfs.unwrap_or(crate::ephemeral::Mkfs::Ext4),
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

fn measure_pcr_ok(v: &str) -> Result<u32, String> {
    let p = v
        .parse::<u32>()
        .map_err(|_| format!("bad PCR index {v:?}"))?;
    crate::ephemeral::measure_pcr_ok(p)
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

fn name_ok(n: &str) -> Result<String, String> {
    if n.is_empty() || n.len() > 127 || n.contains('/') || n.chars().any(|c| c.is_control()) {
        return Err(format!("bad mapping name {n:?}"));
    }
    Ok(n.to_string())
}

fn path_ok(p: &str, what: &str) -> Result<PathBuf, String> {
    if !p.starts_with('/') || p.contains('\0') {
        return Err(format!("{what} {p:?} is not an absolute path"));
    }
    Ok(PathBuf::from(p))
}

fn timeout_ok(t: &str) -> Result<f64, String> {
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=3600.0).contains(&v) => Ok(v),
        _ => Err(format!("bad timeout {t:?} (seconds, 0-3600)")),
    }
}

fn tcti_ok(t: &str) -> Result<String, String> {
    if t.is_empty() || t.len() > 256 || t.chars().any(|c| c.is_control()) {
        return Err(format!("bad TCTI {t:?}"));
    }
    Ok(t.to_string())
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
            "" => {
                c.disabled = match value {
                    None | Some("1") | Some("yes") | Some("on") => false,
                    Some("0") | Some("no") | Some("off") => true,
                    Some(v) => return Err(format!("rd.sealroot={v:?}: use 0 or 1")),
                }
            }
            ".uuid" => c.device = Some(DeviceRef::parse(&format!("UUID={}", need()?))?),
            ".device" => c.device = Some(DeviceRef::parse(need()?)?),
            ".name" => c.name = Some(name_ok(need()?)?),
            ".pcrs" => c.pcrs = Some(crate::pcr::parse_list(need()?)?),
            ".provision-key" => c.provision_key = Some(path_ok(need()?, key)?),
            ".policy-key" => c.policy_key = Some(path_ok(need()?, key)?),
            ".blob" => c.blob = Some(path_ok(need()?, key)?),
            ".tcti" => c.tcti = Some(tcti_ok(need()?)?),
            ".timeout" => c.timeout = Some(timeout_ok(need()?)?),
            ".ephemeral" => eph.on = flag_ok(key, value)?,
            ".mkfs" => eph.mkfs = Some(crate::ephemeral::Mkfs::parse(need()?)?),
            ".integrity" => eph.integrity = flag_ok(key, value)?,
            ".wipe-existing" => eph.wipe_existing = flag_ok(key, value)?,
            ".measure-pcr" => eph.measure_pcr = Some(measure_pcr_ok(need()?)?),
            ".verity-data" => v_data = Some(DeviceRef::parse(need()?)?),
            ".verity-hash" => v_hash = Some(DeviceRef::parse(need()?)?),
            ".verity-roothash" => v_root = Some(crate::ephemeral::parse_root_hash(need()?)?),
            ".verity-name" => v_name = Some(name_ok(need()?)?),
            _ => return Err(format!("unknown option {key}")),
        }
    }
    c.ephemeral = eph.settings("rd.sealroot.")?;
    c.verity = match (v_data, v_hash, v_root) {
        (Some(data), Some(hash), Some(root_hash)) => Some(VerityCfg {
            data,
            hash,
            root_hash,
            name: v_name.unwrap_or_else(|| crate::ops::verity::DEFAULT_NAME.to_string()),
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
        let name = name_ok(&unescape(fields[0]).map_err(at)?).map_err(at)?;
        let device = DeviceRef::parse(&unescape(fields[1]).map_err(at)?).map_err(at)?;
        let mut v = VolumeCfg {
            name,
            device,
            pcrs: None,
            provision_key: None,
            policy_key: None,
            blob: None,
            tcti: None,
            timeout: None,
            ephemeral: None,
        };
        let mut eph = EphemeralOpts::default();
        for o in opts {
            let (k, val) = match o.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (o, None),
            };
            if k != "sealroot" && !k.starts_with("sealroot-") {
                continue; // cryptsetup's own option
            }
            let need = || val.ok_or_else(|| at(format!("{k} needs a value")));
            match k {
                "sealroot" if val.is_none() => {}
                "sealroot" => return Err(at("the sealroot option takes no value".into())),
                "sealroot-pcrs" => {
                    v.pcrs = Some(crate::pcr::parse_list(&need()?.replace('+', ",")).map_err(at)?)
                }
                "sealroot-policy-key" => v.policy_key = Some(path_ok(need()?, k).map_err(at)?),
                "sealroot-provision-key" => {
                    v.provision_key = Some(path_ok(need()?, k).map_err(at)?)
                }
                "sealroot-blob" => v.blob = Some(path_ok(need()?, k).map_err(at)?),
                "sealroot-tcti" => v.tcti = Some(tcti_ok(need()?).map_err(at)?),
                "sealroot-timeout" => v.timeout = Some(timeout_ok(need()?).map_err(at)?),
                "sealroot-ephemeral" if val.is_none() => eph.on = true,
                "sealroot-integrity" if val.is_none() => eph.integrity = true,
                "sealroot-wipe-existing" if val.is_none() => eph.wipe_existing = true,
                "sealroot-ephemeral" | "sealroot-integrity" | "sealroot-wipe-existing" => {
                    return Err(at(format!("{k} takes no value")))
                }
                "sealroot-mkfs" => {
                    eph.mkfs = Some(crate::ephemeral::Mkfs::parse(need()?).map_err(at)?)
                }
                "sealroot-measure-pcr" => {
                    eph.measure_pcr = Some(measure_pcr_ok(need()?).map_err(at)?)
                }
                _ => return Err(at(format!("unknown option {o:?}"))),
            }
        }
        v.ephemeral = eph.settings("sealroot-").map_err(at)?;
        if v.ephemeral.is_some()
            && (v.provision_key.is_some()
                || v.policy_key.is_some()
                || v.blob.is_some()
                || v.pcrs.is_some())
        {
            return Err(at(
                "sealroot-ephemeral takes no sealroot-pcrs, sealroot-provision-key, sealroot-policy-key or sealroot-blob (nothing is sealed)".into(),
            ));
        }
        out.push(v);
    }
    Ok(out)
}

/// The volumes to open: the command line's (completed from a crypttab line
/// for the same device), else crypttab's. Empty when disabled.
pub fn resolve(cmdline: &CmdlineCfg, crypttab: &[VolumeCfg]) -> Result<Vec<VolumeCfg>, String> {
    if cmdline.disabled {
        return Ok(vec![]);
    }
    let Some(dev) = &cmdline.device else {
        if cmdline.name.is_some()
            || cmdline.provision_key.is_some()
            || cmdline.policy_key.is_some()
            || cmdline.blob.is_some()
            || cmdline.ephemeral.is_some()
        {
            return Err(
                "rd.sealroot.* options given without rd.sealroot.uuid or rd.sealroot.device".into(),
            );
        }
        // Command-line options without a device refine every crypttab entry.
        return Ok(crypttab
            .iter()
            .cloned()
            .map(|mut v| {
                v.pcrs = cmdline.pcrs.clone().or(v.pcrs);
                v.tcti = cmdline.tcti.clone().or(v.tcti);
                v.timeout = cmdline.timeout.or(v.timeout);
                v
            })
            .collect());
    };
    let base = crypttab.iter().find(|v| &v.device == dev);
    let ephemeral = cmdline
        .ephemeral
        .clone()
        .or_else(|| base.and_then(|b| b.ephemeral.clone()));
    if ephemeral.is_some()
        && (cmdline.provision_key.is_some()
            || cmdline.policy_key.is_some()
            || cmdline.blob.is_some()
            || cmdline.pcrs.is_some())
    {
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
            _ if ephemeral.is_some() => "ephemeral".to_string(),
            DeviceRef::Uuid(u) => format!("luks-{u}"),
            _ => "root".to_string(),
        });
    Ok(vec![VolumeCfg {
        name,
        device: dev.clone(),
        pcrs: cmdline
            .pcrs
            .clone()
            .or_else(|| base.and_then(|b| b.pcrs.clone())),
        provision_key: cmdline
            .provision_key
            .clone()
            .or_else(|| base.and_then(|b| b.provision_key.clone())),
        policy_key: cmdline
            .policy_key
            .clone()
            .or_else(|| base.and_then(|b| b.policy_key.clone())),
        blob: cmdline
            .blob
            .clone()
            .or_else(|| base.and_then(|b| b.blob.clone())),
        tcti: cmdline
            .tcti
            .clone()
            .or_else(|| base.and_then(|b| b.tcti.clone())),
        timeout: cmdline.timeout.or_else(|| base.and_then(|b| b.timeout)),
        ephemeral,
    }])
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
        assert_eq!(c.pcrs, Some(vec![0, 7]));
        assert_eq!(c.timeout, Some(2.5));
        assert_eq!(c.tcti.as_deref(), Some("device:/dev/tpmrm0"));
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
        assert_eq!(v[0].pcrs, Some(vec![0, 4, 7, 9]));
        assert_eq!(
            v[0].provision_key,
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
        assert_eq!(v[0].pcrs, Some(vec![0, 4, 7]));
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
        use crate::ephemeral::{Mkfs, Settings};
        let tab = parse_crypttab(
            "root UUID=aa none sealroot\n\
             scratch /dev/vdb none sealroot,sealroot-ephemeral,sealroot-integrity,sealroot-mkfs=none,sealroot-wipe-existing,sealroot-measure-pcr=13\n\
             tmp /dev/vdc none sealroot,sealroot-ephemeral\n",
        )
        .unwrap();
        assert_eq!(tab[0].ephemeral, None);
        assert_eq!(
            tab[1].ephemeral,
            Some(Settings {
                integrity: true,
                mkfs: Mkfs::None,
                wipe_existing: true,
                measure_pcr: Some(13),
            })
        );
        assert_eq!(tab[2].ephemeral, Some(Settings::default()));
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
            v[0].ephemeral,
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
        assert!(v[0].ephemeral.as_ref().unwrap().wipe_existing);
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
            tab[0].policy_key,
            Some(PathBuf::from("/etc/sealroot/policy.pem"))
        );
        // The command line refines the crypttab line for the same device.
        let c =
            parse_cmdline("rd.sealroot.device=/dev/vda rd.sealroot.policy-key=/other.pem").unwrap();
        let v = resolve(&c, &tab).unwrap();
        assert_eq!(v[0].policy_key, Some(PathBuf::from("/other.pem")));
        assert_eq!(v[0].provision_key, Some(PathBuf::from("/p.key")));
        // Without a device it is an error; an ephemeral volume takes none.
        let c = parse_cmdline("rd.sealroot.policy-key=/k.pem").unwrap();
        assert!(resolve(&c, &[]).is_err());
        assert!(parse_crypttab(
            "e /dev/vdb none sealroot,sealroot-ephemeral,sealroot-policy-key=/k.pem\n"
        )
        .is_err());
        assert!(parse_crypttab("r /dev/vda none sealroot,sealroot-policy-key=rel.pem\n").is_err());
    }
}
