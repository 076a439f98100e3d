//! The state-volume options (crypttab `sealroot-state[=overlay|/DIR]`,
//! command line `rd.sealroot.state[=overlay|/DIR]`): which options go
//! with them ([`crate::formats::state`], docs/first-boot.md).

use super::volume::VolumeOpts;

/// A state volume is formatted by its first boot, so nothing that
/// describes an existing volume goes with it: no provisioning key (there
/// is none in this mode), no blob file (the token travels in the header),
/// no detached header, and it is not ephemeral (its key is sealed).
pub(crate) fn check(opts: &VolumeOpts, prefix: &str) -> Result<(), String> {
    if opts.state.is_none() {
        return Ok(());
    }
    let bad: Vec<&str> = [
        (opts.ephemeral.is_some(), "ephemeral"),
        (opts.provision_key.is_some(), "provision-key"),
        (opts.blob.is_some(), "blob"),
        (opts.header.is_some(), "header"),
        (opts.rekey, "rekey"),
    ]
    .iter()
    .filter_map(|(on, n)| on.then_some(*n))
    .collect();
    if bad.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{prefix}state takes no {} (a state volume is formatted at first boot under a fresh key; no provisioning key exists, its token is in its own header)",
        bad.iter()
            .map(|b| if *b == "header" && prefix == "sealroot-" { "header=".to_string() } else { format!("{prefix}{b}") })
            .collect::<Vec<_>>()
            .join(", ")
    ))
}
