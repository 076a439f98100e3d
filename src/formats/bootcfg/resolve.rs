//! The volumes to open: the command line's, completed from crypttab, or
//! crypttab's.

use super::cmdline::CmdlineCfg;
use super::device::DeviceRef;
use super::volume::VolumeCfg;

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
            || c.header.is_some()
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
    if opts.ephemeral.is_some() && (c.seals() || opts.header.is_some()) {
        return Err(
            "rd.sealroot.ephemeral takes no rd.sealroot.pcrs, .provision-key, .policy-key, .blob or .header (nothing is sealed; the device is formatted)"
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
