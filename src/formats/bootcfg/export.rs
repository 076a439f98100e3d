//! The sealed volume's configuration as shell assignments for the
//! initramfs scripts, quoted so that `eval` runs nothing.

use super::volume::VolumeCfg;
use std::path::PathBuf;

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
