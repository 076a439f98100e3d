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
/// `SEALROOT_POLICY_KEY`, `SEALROOT_BLOB`, `SEALROOT_ON_FAILURE` (`poweroff`,
/// `reboot` or `shell`), `SEALROOT_HEADER` (a detached header, for
/// `unlock --header`), `SEALROOT_FLAGS` (activation flags, for `unlock
/// --flags`), `SEALROOT_STATE` (a state volume's mount: `overlay` or a
/// directory; empty for other volumes), `SEALROOT_RECOVERY` (`prompt`, or
/// `none` for a root re-keyed at first boot: a key typed on the host's
/// console could be the image's, docs/first-boot.md#recovery). Every key is
/// printed; without a volume all are empty.
pub fn export(v: Option<&VolumeCfg>, tcti: &str) -> String {
    let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
    let fields: [(&str, Option<String>); 14] = [
        ("NAME", v.map(|v| v.name.clone())),
        ("DEVICE", v.map(|v| v.device.to_string())),
        ("PATH", v.map(|v| v.device.path().display().to_string())),
        (
            "TCTI",
            v.map(|v| v.opts.tcti.clone().unwrap_or_else(|| tcti.to_string())),
        ),
        ("TRIES", v.map(|v| v.prompt.tries.to_string())),
        (
            "PROMPT_TIMEOUT",
            v.map(|v| v.prompt.timeout.map_or("0".into(), |t| t.to_string())),
        ),
        ("PROVISION_KEY", v.and_then(|v| path(&v.opts.provision_key))),
        ("POLICY_KEY", v.and_then(|v| path(&v.opts.policy_key))),
        ("BLOB", v.and_then(|v| path(&v.opts.blob))),
        (
            "ON_FAILURE",
            v.map(|v| v.opts.on_failure.unwrap_or_default().as_str().into()),
        ),
        ("HEADER", v.and_then(|v| path(&v.opts.header))),
        ("FLAGS", v.map(|v| v.opts.flags.names().join(","))),
        (
            "STATE",
            v.and_then(|v| v.opts.state.as_ref().map(|m| m.as_string())),
        ),
        (
            "RECOVERY",
            v.map(|v| if v.opts.rekey { "none" } else { "prompt" }.into()),
        ),
    ];
    fields
        .iter()
        .map(|(k, value)| {
            let value = value.as_deref().unwrap_or_default();
            format!("SEALROOT_{k}={}\n", shell_quote(value))
        })
        .collect()
}
