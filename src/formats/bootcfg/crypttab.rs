//! The sealroot lines of `/etc/crypttab` (crypttab(5)).

use super::device::DeviceRef;
use super::values::{mapping_name, prompt_timeout};
use super::volume::{EphemeralOpts, PromptOpts, VolumeCfg, VolumeOpts};

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
