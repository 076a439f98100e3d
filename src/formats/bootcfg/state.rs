//! The state-volume options (crypttab `sealroot-state[=overlay|/DIR]`,
//! command line `rd.sealroot.state[=overlay|/DIR]`): which options go
//! with them ([`crate::formats::state`], docs/first-boot.md).

use super::volume::VolumeOpts;
use crate::formats::state::StateMount;

/// The option's value: none (a flag) is the overlay's upper layer.
pub(crate) fn parse(value: Option<&str>) -> Result<StateMount, String> {
    match value {
        None => Ok(StateMount::Overlay),
        Some(v) => StateMount::parse(v),
    }
}

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

#[cfg(test)]
mod tests {
    use super::super::{parse_cmdline, parse_crypttab, resolve, sealed_in_boot_order};
    use crate::formats::state::StateMount;

    #[test]
    fn crypttab_and_cmdline_forms() {
        let t = parse_crypttab(
            "state /dev/vdb none sealroot,sealroot-state,sealroot-pcrs=0+7,sealroot-policy-key=/k.pem\n\
             var /dev/vdc none sealroot,sealroot-state=/var\n",
        )
        .unwrap();
        assert_eq!(t[0].opts.state, Some(StateMount::Overlay));
        assert_eq!(t[0].opts.pcrs, Some(vec![0, 7]));
        assert_eq!(t[1].opts.state, Some(StateMount::Path("/var".into())));
        let c = parse_cmdline(
            "rd.sealroot.device=/dev/vdb rd.sealroot.state=overlay rd.sealroot.name=state",
        )
        .unwrap();
        let v = resolve(&c, &[]).unwrap();
        assert_eq!(v[0].opts.state, Some(StateMount::Overlay));
        // A state volume is a sealed volume: it is in the boot order.
        assert_eq!(sealed_in_boot_order(&v, "")[0].name, "state");
        let c = parse_cmdline("rd.sealroot.device=/dev/vdb rd.sealroot.state").unwrap();
        assert_eq!(
            resolve(&c, &[]).unwrap()[0].opts.state,
            Some(StateMount::Overlay)
        );
        let c = parse_cmdline("rd.sealroot.device=/dev/vdb rd.sealroot.state=/srv/data").unwrap();
        assert_eq!(
            resolve(&c, &[]).unwrap()[0].opts.state,
            Some(StateMount::Path("/srv/data".into()))
        );
    }

    #[test]
    fn strict_errors() {
        for (bad, why) in [
            ("s /dev/vdb none sealroot,sealroot-state=var", "absolute"),
            (
                "s /dev/vdb none sealroot,sealroot-state=/a/../b",
                "absolute",
            ),
            (
                "s /dev/vdb none sealroot,sealroot-state,sealroot-ephemeral",
                "sealroot-ephemeral",
            ),
            (
                "s /dev/vdb none sealroot,sealroot-state,sealroot-provision-key=/p",
                "sealroot-provision-key",
            ),
            (
                "s /dev/vdb none sealroot,sealroot-state,sealroot-blob=/b",
                "sealroot-blob",
            ),
            (
                "s /dev/vdb none sealroot,sealroot-state,header=/h",
                "header=",
            ),
            ("s /dev/vdb none sealroot,sealroot-states", "unknown option"),
        ] {
            let e = parse_crypttab(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        for (bad, why) in [
            (
                "rd.sealroot.device=/dev/vdb rd.sealroot.state=1",
                "absolute",
            ),
            (
                "rd.sealroot.device=/dev/vdb rd.sealroot.state rd.sealroot.ephemeral",
                "rd.sealroot.ephemeral",
            ),
            (
                "rd.sealroot.device=/dev/vdb rd.sealroot.state rd.sealroot.provision-key=/k",
                "rd.sealroot.provision-key",
            ),
            ("rd.sealroot.state", "without rd.sealroot.uuid"),
        ] {
            let e = parse_cmdline(bad)
                .and_then(|c| resolve(&c, &[]).map(|_| ()))
                .unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
