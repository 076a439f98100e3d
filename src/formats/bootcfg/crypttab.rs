//! The sealroot lines of `/etc/crypttab` (crypttab(5), systemd's and
//! Debian's): `NAME DEVICE [KEYFILE [OPTIONS]]`, fields separated by
//! spaces or tabs, `#` lines are comments. A line is sealroot's when its
//! key-file or options field, or a field past the fourth, mentions
//! sealroot in any spelling (`SEALROOT`, `x-sealroot`, `sealroot=1`); such
//! a line must then be exactly in the documented form, or it is an error
//! naming the line and the field: a mistyped line must not make the boot
//! skip the volume. docs/distro.md lists the forms.

use super::cryptopts::{silently_ignored, ActivationFlags};
use super::device::DeviceRef;
use super::values::{mapping_name, path_ok, prompt_timeout};
use super::volume::{EphemeralOpts, PromptOpts, VolumeCfg, VolumeOpts};

/// The sealroot lines of a crypttab, and a warning for each option on
/// them that sealroot does not use (by name).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Crypttab {
    pub volumes: Vec<VolumeCfg>,
    pub warnings: Vec<String>,
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

/// Whether an option (or key-file) item names sealroot in some spelling:
/// its key, without quotes, case, an `x-` or `rd.` prefix, starts with
/// `sealroot`.
fn mentions_sealroot(item: &str) -> bool {
    let key = item.split('=').next().unwrap_or_default();
    let key = key
        .trim_matches(|c: char| c == '"' || c == '\'' || c == '#' || c.is_whitespace())
        .to_ascii_lowercase();
    let key = key.strip_prefix("x-").unwrap_or(&key);
    let key = key.strip_prefix("rd.").unwrap_or(key);
    key.starts_with("sealroot")
}

fn field_mentions_sealroot(field: &str) -> bool {
    field.split(',').any(mentions_sealroot)
}

/// The sealroot lines of a crypttab (`crypttab line N: problem` on error).
pub fn parse_crypttab(text: &str) -> Result<Vec<VolumeCfg>, String> {
    parse_crypttab_warn(text).map(|t| t.volumes)
}

/// [`parse_crypttab`], with the warnings about options sealroot ignores.
pub fn parse_crypttab_warn(text: &str) -> Result<Crypttab, String> {
    let mut out = Crypttab::default();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_start_matches([' ', '\t']);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        if !fields.iter().skip(2).any(|f| field_mentions_sealroot(f)) {
            continue;
        }
        let at = |e: String| format!("crypttab line {}: {e}", n + 1);
        let (v, warnings) = parse_line(&fields).map_err(at)?;
        out.warnings.extend(warnings.into_iter().map(at));
        out.volumes.push(v);
    }
    Ok(out)
}

/// One line that mentions sealroot, split into fields.
fn parse_line(fields: &[&str]) -> Result<(VolumeCfg, Vec<String>), String> {
    if fields.len() > 4 {
        return Err(format!(
            "field 5 ({:?}): the line has {} fields, crypttab at most 4 (NAME DEVICE KEYFILE OPTIONS); options are separated by commas without spaces, and a comment must be on a line of its own",
            fields[4],
            fields.len()
        ));
    }
    if let Some((i, f)) = fields
        .iter()
        .enumerate()
        .find(|(_, f)| f.contains(['"', '\'']))
    {
        return Err(format!(
            "field {} ({f:?}) is quoted: systemd would remove the quotes and Debian's cryptsetup would not, so sealroot takes none (write \\040 for a space)",
            i + 1
        ));
    }
    let keyfile = fields.get(2).copied().unwrap_or("none");
    if field_mentions_sealroot(keyfile) {
        return Err(format!(
            "field 3 (the key file) is {keyfile:?}: sealroot's options go in field 4, after the key file `none` (NAME DEVICE none sealroot)"
        ));
    }
    let mut warnings = Vec::new();
    if !matches!(keyfile, "none" | "-" | "") {
        warnings.push(format!(
            "field 3: key file {keyfile:?} ignored (sealroot unseals the key from the TPM; a first-boot key is sealroot-provision-key=)"
        ));
    }
    let opts = fields[3];
    let items: Vec<&str> = opts.split(',').filter(|o| !o.is_empty()).collect();
    if !items.contains(&"sealroot") {
        let bad = items
            .iter()
            .find(|o| mentions_sealroot(o) && **o != "sealroot");
        return Err(match bad {
            Some(b) if !b.starts_with("sealroot-") => {
                format!("field 4: {}", not_sealroot_option(b))
            }
            _ => "field 4: sealroot-* options without the sealroot option".into(),
        });
    }
    let name = mapping_name(&unescape(fields[0])?).map_err(|e| format!("field 1: {e}"))?;
    let device = DeviceRef::parse(&unescape(fields[1])?).map_err(|e| format!("field 2: {e}"))?;
    let mut v = VolumeCfg {
        name,
        device,
        opts: VolumeOpts::default(),
        prompt: PromptOpts::default(),
    };
    let mut eph = EphemeralOpts::default();
    for o in items {
        option(&mut v, &mut eph, o, &mut warnings).map_err(|e| format!("field 4: {e}"))?;
    }
    v.opts.ephemeral = eph
        .settings("sealroot-")
        .map_err(|e| format!("field 4: {e}"))?;
    super::state::check(&v.opts, "sealroot-").map_err(|e| format!("field 4: {e}"))?;
    super::volume::check_rekey(&v.opts, "sealroot-").map_err(|e| format!("field 4: {e}"))?;
    if v.opts.ephemeral.is_some() {
        if v.opts.seals() || v.opts.header.is_some() {
            return Err(
                "field 4: sealroot-ephemeral takes no sealroot-pcrs, sealroot-provision-key, sealroot-policy-key, sealroot-blob, sealroot-rekey or header= (nothing is sealed; the device is formatted)".into(),
            );
        }
        if !v.opts.flags.is_empty() {
            warnings.push(format!(
                "field 4: {} not applied to an ephemeral volume",
                v.opts.flags.names().join(", ")
            ));
        }
    }
    Ok((v, warnings))
}

fn not_sealroot_option(o: &str) -> String {
    format!(
        "{o:?} is not a sealroot option: write `sealroot` (and `sealroot-NAME=VALUE`) in lower case, without a value, an x- or rd. prefix"
    )
}

/// One item of a sealroot line's options field.
fn option(
    v: &mut VolumeCfg,
    eph: &mut EphemeralOpts,
    o: &str,
    warnings: &mut Vec<String>,
) -> Result<(), String> {
    let (k, val) = match o.split_once('=') {
        Some((k, v)) => (k, Some(v)),
        None => (o, None),
    };
    if k == "sealroot" {
        return match val {
            None => Ok(()),
            Some(_) => Err(format!(
                "{o:?}: the sealroot option takes no value (write `sealroot`)"
            )),
        };
    }
    if let Some(name) = k.strip_prefix("sealroot-") {
        return match v.opts.set(eph, true, name, k, val)? {
            true => Ok(()),
            false => Err(format!("unknown option {o:?}")),
        };
    }
    if mentions_sealroot(o) {
        return Err(not_sealroot_option(o));
    }
    if ActivationFlags::default().set(k) {
        if val.is_some() {
            return Err(format!("{k} takes no value"));
        }
        v.opts.flags.set(k);
        return Ok(());
    }
    match (k, val) {
        ("tries", Some(t)) => {
            v.prompt.tries = t
                .parse()
                .map_err(|_| format!("tries={t:?}: use a whole number (0: no limit)"))?
        }
        ("timeout", Some(t)) => v.prompt.timeout = prompt_timeout(t)?,
        ("header", Some(h)) => {
            if h.contains(':') {
                return Err(format!(
                    "header={h:?}: a header on another device (PATH:DEVICE) is not supported; give the header file's absolute path"
                ));
            }
            v.opts.header = Some(path_ok(&unescape(h)?, "header=")?);
        }
        ("header" | "tries" | "timeout", None) => return Err(format!("{k}= needs a value")),
        _ if silently_ignored(k) => {}
        _ => warnings.push(format!(
            "field 4: option {k:?} is not one sealroot uses; ignored"
        )),
    }
    Ok(())
}
