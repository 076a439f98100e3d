//! The volumes to open: the command line's, completed from crypttab, then
//! crypttab's; and which sealed volume is the boot's primary one.

use super::cmdline::CmdlineCfg;
use super::device::DeviceRef;
use super::volume::VolumeCfg;

/// The volumes to open: the command line's (completed from a crypttab line
/// for the same device) first, then crypttab's other lines in their order.
/// Empty when disabled. Every
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
    let mut devices: Vec<&DeviceRef> = vols.iter().map(|v| &v.device).collect();
    devices.sort_by_key(|d| d.path());
    if let Some(w) = devices.windows(2).find(|w| w[0] == w[1]) {
        return Err(format!(
            "two volumes name the device {} (one line per volume)",
            w[0].path().display()
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
            || c.state.is_some()
        {
            return Err(
                "rd.sealroot.* options given without rd.sealroot.uuid or rd.sealroot.device".into(),
            );
        }
        // Command-line options without a device (PCRs, TCTI, timeout)
        // refine every crypttab entry, under the same rules.
        return crypttab
            .iter()
            .map(|v| {
                let opts = c.or(&v.opts);
                super::volume::check_rekey(&opts, "rd.sealroot.")?;
                Ok(VolumeCfg { opts, ..v.clone() })
            })
            .collect();
    };
    let base = crypttab.iter().find(|v| &v.device == dev);
    let opts = c.or(&base.map(|b| b.opts.clone()).unwrap_or_default());
    if opts.ephemeral.is_some() && (c.seals() || opts.header.is_some()) {
        return Err(
            "rd.sealroot.ephemeral takes no rd.sealroot.pcrs, .provision-key, .policy-key, .blob, .rekey or .header (nothing is sealed; the device is formatted)"
                .into(),
        );
    }
    super::state::check(&opts, "rd.sealroot.")?;
    super::volume::check_rekey(&opts, "rd.sealroot.")?;
    let name = cmdline
        .name
        .clone()
        .or_else(|| base.map(|b| b.name.clone()))
        .unwrap_or_else(|| match dev {
            _ if opts.ephemeral.is_some() => "ephemeral".to_string(),
            DeviceRef::Uuid(u) => format!("luks-{u}"),
            _ => "root".to_string(),
        });
    let first = VolumeCfg {
        name,
        device: dev.clone(),
        opts,
        prompt: base.map(|b| b.prompt).unwrap_or_default(),
    };
    let rest = crypttab.iter().filter(|v| &v.device != dev).cloned();
    Ok(std::iter::once(first).chain(rest).collect())
}

/// The mapping name of `root=/dev/mapper/NAME` on the kernel command line
/// (the last `root=` counts, as for the kernel), if it names one.
pub fn root_mapping(cmdline: &str) -> Option<String> {
    super::split_cmdline(cmdline)
        .iter()
        .rev()
        .find_map(|p| p.strip_prefix("root="))
        .and_then(|r| r.strip_prefix("/dev/mapper/"))
        .map(str::to_string)
}

/// Order the sealed (TPM-unlocked) volumes of a boot: the primary one
/// first, then the others as configured. The primary volume is the one
/// mounted as the root (`root=/dev/mapper/NAME`), else the first
/// configured (the command line's, else crypttab's first sealed line).
/// PCR 15 measures the primary volume's LUKS UUID, and its failure fails
/// the boot (docs/design.md#several-volumes-in-one-boot). Ephemeral
/// volumes are left out: they unseal nothing.
pub fn sealed_in_boot_order(vols: &[VolumeCfg], cmdline: &str) -> Vec<VolumeCfg> {
    let mut sealed: Vec<VolumeCfg> = vols
        .iter()
        .filter(|v| v.opts.ephemeral.is_none())
        .cloned()
        .collect();
    let root = root_mapping(cmdline);
    if let Some(i) = sealed.iter().position(|v| Some(&v.name) == root.as_ref()) {
        let v = sealed.remove(i);
        sealed.insert(0, v);
    }
    sealed
}
