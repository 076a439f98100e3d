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
//! contains `sealroot` (a line that mentions sealroot in any other way is
//! an error); cryptsetup's `header=`, `discard`, `same-cpu-crypt`,
//! `submit-from-crypt-cpus`, `no-read-workqueue`, `no-write-workqueue`,
//! `readonly`, `tries=`, `timeout=` are used, other options warned about;
//! `sealroot-pcrs=0+4+7+9`, `sealroot-provision-key=`,
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

mod cmdline;
mod cryptopts;
mod crypttab;
mod device;
mod export;
mod resolve;
mod state;
mod values;
mod volume;

pub use cmdline::{disabled, parse_cmdline, split_cmdline, CmdlineCfg};
pub use cryptopts::{silently_ignored, ActivationFlags, FLAG_NAMES};
pub use crypttab::{parse_crypttab, parse_crypttab_warn, Crypttab};
pub use device::DeviceRef;
pub use export::{export, shell_quote};
pub use resolve::{resolve, root_mapping, sealed_in_boot_order};
pub use values::{mapping_name, measure_pcr, parse_root_hash, seconds, OnFailure};
pub use volume::{PromptOpts, VerityCfg, VolumeCfg, VolumeOpts, DEFAULT_VERITY_NAME};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::ephemeral::{Mkfs, Settings};
    use std::path::PathBuf;

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
    fn crypttab_forms_that_crypttab_allows() {
        // Tabs, leading blanks, CRLF, `-` for no key file, empty items,
        // trailing commas, cryptsetup's options in any order.
        let t = "\t# indented comment\n\
                 root\tUUID=aa\t-\tluks,,sealroot,discard,\r\n  \
                 data   /dev/vdb   none   sealroot,sealroot-pcrs=7,same-cpu-crypt,submit-from-crypt-cpus,no-read-workqueue,no-write-workqueue\n\
                 plain /dev/vdc none sealroot-x-data-is-a-path-not-an-option-field\n";
        let e = parse_crypttab(t).unwrap_err();
        assert!(e.starts_with("crypttab line 4: field 4:"), "{e}");
        let t = t.lines().take(3).collect::<Vec<_>>().join("\n");
        let tab = parse_crypttab_warn(&t).unwrap();
        assert!(tab.warnings.is_empty(), "{:?}", tab.warnings);
        let v = tab.volumes;
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].name, "root");
        assert_eq!(v[0].opts.flags.names(), vec!["discard"]);
        assert_eq!(
            v[1].opts.flags.names(),
            vec![
                "same-cpu-crypt",
                "submit-from-crypt-cpus",
                "no-read-workqueue",
                "no-write-workqueue"
            ]
        );
        // A name or device that contains "sealroot" does not make a line
        // sealroot's; a key-file path that does is not an option either.
        let t = "sealroot-data /dev/disk/by-label/sealroot none luks\n\
                 x /dev/vdd /etc/sealroot/x.key luks\n";
        assert!(parse_crypttab(t).unwrap().is_empty());
    }

    #[test]
    fn crypttab_header_option() {
        let tab =
            parse_crypttab("root /dev/vda none sealroot,header=/boot/root\\040hdr.img\n").unwrap();
        assert_eq!(
            tab[0].opts.header,
            Some(PathBuf::from("/boot/root hdr.img"))
        );
        let c = parse_cmdline("rd.sealroot.device=/dev/vda rd.sealroot.header=/h.img").unwrap();
        let v = resolve(&c, &tab).unwrap();
        assert_eq!(v[0].opts.header, Some(PathBuf::from("/h.img")));
        let c = parse_cmdline("rd.sealroot.device=/dev/vda").unwrap();
        assert_eq!(
            resolve(&c, &tab).unwrap()[0].opts.header,
            Some(PathBuf::from("/boot/root hdr.img"))
        );
        assert!(resolve(&parse_cmdline("rd.sealroot.header=/h").unwrap(), &[]).is_err());
        assert!(parse_cmdline("rd.sealroot.header=rel").is_err());
        for (bad, why) in [
            ("sealroot,header", "needs a value"),
            ("sealroot,header=rel.img", "not an absolute path"),
            ("sealroot,header=/h.img:UUID=1", "PATH:DEVICE"),
            ("sealroot,sealroot-ephemeral,header=/h", "header="),
            ("sealroot,discard=1", "takes no value"),
        ] {
            let e = parse_crypttab(&format!("r /dev/vda none {bad}\n")).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        let out = export(tab.first(), "x");
        assert!(
            out.contains("SEALROOT_HEADER='/boot/root hdr.img'\n"),
            "{out}"
        );
        let tab = parse_crypttab("r /dev/vda none sealroot,discard,no-read-workqueue\n").unwrap();
        let out = export(tab.first(), "x");
        assert!(
            out.contains("SEALROOT_FLAGS='discard,no-read-workqueue'\n"),
            "{out}"
        );
    }

    #[test]
    fn crypttab_lines_written_slightly_differently_are_errors() {
        for (line, n, field) in [
            ("root /dev/vda sealroot", 1, "field 3"),
            ("root /dev/vda sealroot luks", 1, "field 3"),
            ("root /dev/vda sealroot,discard none", 1, "field 3"),
            ("root /dev/vda none luks, sealroot", 1, "field 5"),
            ("root /dev/vda none \"sealroot\"", 1, "field 4"),
            ("root /dev/vda none 'sealroot'", 1, "field 4"),
            ("root /dev/vda none x-sealroot", 1, "field 4"),
            ("root /dev/vda none luks,X-SEALROOT", 1, "field 4"),
            ("root /dev/vda none sealroot=1", 1, "field 4"),
            ("root /dev/vda none SEALROOT", 1, "field 4"),
            ("root /dev/vda none Sealroot,discard", 1, "field 4"),
            ("root /dev/vda none rd.sealroot", 1, "field 4"),
            ("root /dev/vda none sealroot # the root", 1, "field 5"),
            ("root /dev/vda none luks #sealroot", 1, "field 5"),
            ("root /dev/vda none sealroot-pcrs=7", 1, "field 4"),
            ("root /dev/vda none sealroot,SEALROOT-PCRS=7", 1, "field 4"),
            ("root /dev/vda none sealroot,sealroot-pcr=7", 1, "field 4"),
            (
                "\n\n\troot /dev/vda none sealroot,x-sealroot-pcrs=7",
                3,
                "field 4",
            ),
            ("\"root\" /dev/vda none sealroot", 1, "field 1"),
        ] {
            let e = parse_crypttab(&format!("{line}\n")).expect_err(&format!("{line:?} accepted"));
            let want = format!("crypttab line {n}: {field}");
            assert!(e.starts_with(&want), "{line:?}: {e}");
        }
    }

    #[test]
    fn crypttab_unknown_options_are_warned_by_name() {
        let tab = parse_crypttab_warn(
            "root /dev/vda /etc/k.key luks,initramfs,nofail,x-systemd.device-timeout=10,keyscript=decrypt_keyctl,cipher=aes,tpm2-device=auto,sealroot,tries=2\n\
             swap /dev/vdb none plain,cipher=aes,bogus\n",
        )
        .unwrap();
        assert_eq!(tab.volumes.len(), 1);
        let w = tab.warnings.join("\n");
        for named in [
            "\"keyscript\"",
            "\"cipher\"",
            "\"tpm2-device\"",
            "\"/etc/k.key\"",
        ] {
            assert!(w.contains(named), "{named} not warned: {w}");
        }
        for quiet in ["luks", "initramfs", "nofail", "x-systemd", "tries", "bogus"] {
            assert!(!w.contains(quiet), "{quiet} warned: {w}");
        }
        assert!(w.starts_with("crypttab line 1: "), "{w}");
        assert_eq!(tab.warnings.len(), 4, "{w}");
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
        assert!(out.contains("SEALROOT_ON_FAILURE='poweroff'\n"), "{out}");
        assert!(out.contains("SEALROOT_RECOVERY='prompt'\n"), "{out}");
        // A root re-keyed at first boot: no recovery prompt on the console.
        let rekey = parse_crypttab("root UUID=aa none sealroot,sealroot-rekey\n").unwrap();
        let out = export(rekey.first(), "x");
        assert!(out.contains("SEALROOT_RECOVERY='none'\n"), "{out}");
        let none = export(None, "x");
        assert_eq!(none.lines().count(), 14);
        assert!(none.lines().all(|l| l.ends_with("=''")), "{none}");
    }

    #[test]
    fn on_failure_and_deadline() {
        let tab = parse_crypttab(
            "root UUID=aa none sealroot,sealroot-on-failure=reboot,sealroot-deadline=30\n",
        )
        .unwrap();
        assert_eq!(tab[0].opts.on_failure, Some(OnFailure::Reboot));
        assert_eq!(tab[0].opts.deadline, Some(30.0));
        let c = parse_cmdline("rd.sealroot.uuid=aa rd.sealroot.on-failure=shell").unwrap();
        let v = resolve(&c, &tab).unwrap();
        assert_eq!(v[0].opts.on_failure, Some(OnFailure::Shell));
        assert!(export(v.first(), "x").contains("SEALROOT_ON_FAILURE='shell'\n"));
        for bad in ["rd.sealroot.on-failure=panic", "rd.sealroot.deadline=-1"] {
            assert!(parse_cmdline(bad).is_err(), "{bad}");
        }
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
    fn systemd_token_opt_in_is_crypttab_only() {
        let tab = parse_crypttab("d /dev/vdb none sealroot,sealroot-systemd-token\n").unwrap();
        assert!(tab[0].opts.systemd_token);
        assert!(
            !parse_crypttab("d /dev/vdb none sealroot\n").unwrap()[0]
                .opts
                .systemd_token
        );
        assert!(parse_crypttab("d /dev/vdb none sealroot,sealroot-systemd-token=1\n").is_err());
        // The kernel command line is the host's: no opt-in there.
        assert!(parse_cmdline("rd.sealroot.device=/dev/vdb rd.sealroot.systemd-token").is_err());
    }

    #[test]
    fn several_volumes_primary_first() {
        let tab = parse_crypttab(
            "data /dev/vdb none sealroot\n\
             root /dev/vda none sealroot\n\
             scratch /dev/vdc none sealroot,sealroot-ephemeral\n\
             home /dev/vdd none sealroot\n",
        )
        .unwrap();
        let v = resolve(&CmdlineCfg::default(), &tab).unwrap();
        let names = |v: &[VolumeCfg]| v.iter().map(|v| v.name.clone()).collect::<Vec<_>>();
        // root= names the primary; ephemeral volumes are not sealed.
        let s = sealed_in_boot_order(&v, "quiet root=/dev/mapper/root ro");
        assert_eq!(names(&s), ["root", "data", "home"]);
        // Without it, the first configured.
        assert_eq!(
            names(&sealed_in_boot_order(&v, "quiet")),
            ["data", "root", "home"]
        );
        assert_eq!(
            names(&sealed_in_boot_order(&v, "root=/dev/vda1")),
            ["data", "root", "home"]
        );
        assert_eq!(
            root_mapping("root=/dev/mapper/a root=/dev/mapper/b"),
            Some("b".into())
        );
        assert_eq!(root_mapping("root=UUID=1"), None);
        // The command line's volume comes first, then crypttab's others.
        let c = parse_cmdline("rd.sealroot.device=/dev/vdd").unwrap();
        assert_eq!(
            names(&resolve(&c, &tab).unwrap()),
            ["home", "data", "root", "scratch"]
        );
        // One device, two lines: refused.
        let two = parse_crypttab("a /dev/vda none sealroot\nb /dev/vda none sealroot\n").unwrap();
        let e = resolve(&CmdlineCfg::default(), &two).unwrap_err();
        assert!(e.contains("two volumes name the device /dev/vda"), "{e}");
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
