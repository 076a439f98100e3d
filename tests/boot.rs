//! `sealroot boot`: configuration from the kernel command line and crypttab.

mod common;
use common::*;
use sealroot::Exit;

fn boot(tpm: &Swtpm, img: &Image, crypttab: &str, cmdline: &str, extra: &[&str]) -> Run {
    let tab = img.file("crypttab");
    std::fs::write(&tab, crypttab).unwrap();
    std::fs::write(&img.cmdline, cmdline).unwrap();
    Args::new("boot")
        .arg("--dry-run")
        .opt("crypttab", &tab)
        .opt("cmdline-file", &img.cmdline)
        .opt("tcti", tpm.tcti())
        .args(extra)
        .run()
}

#[test]
fn crypttab_drives_first_boot_then_tpm_unlock() {
    let mut tpm = Swtpm::start();
    let img = Image::with_passphrase(b"provisioning");
    let tab = format!(
        "# root volume\nroot {} none luks,discard,sealroot,sealroot-pcrs=0+7,sealroot-provision-key={}\n",
        p(&img.path),
        p(&img.key)
    );
    let cmdline = "BOOT_IMAGE=/vmlinuz root=/dev/mapper/root ro";
    let r = boot(&tpm, &img, &tab, cmdline, &[]);
    r.assert_exit(Exit::Ok);
    assert!(r.stderr.contains("first boot"), "{r:?}");
    assert!(r.stderr.contains("as /dev/mapper/root"), "{r:?}");
    let tok = &img.json()["tokens"]["0"];
    let pcrs: Vec<u64> = tok["pcrs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["index"].as_u64().unwrap())
        .collect();
    assert_eq!(pcrs, vec![0, 7, 15]);
    tpm.reboot();
    let r = boot(&tpm, &img, &tab, cmdline, &[]);
    r.assert_exit(Exit::Ok);
    assert!(!r.stderr.contains("first boot"), "{r:?}");
    // The kernel command line can switch sealroot off (it opens nothing and
    // locks PCR 15: tests/steered.rs)...
    tpm.reboot();
    let r = boot(&tpm, &img, &tab, &format!("{cmdline} rd.sealroot=0"), &[]);
    r.assert_exit(Exit::Ok);
    assert!(r.stderr.contains("opens nothing this boot"), "{r:?}");
    // ...but not change what was measured: another command line is refused.
    tpm.reboot();
    let r = boot(&tpm, &img, &tab, &format!("{cmdline} init=/bin/sh"), &[]);
    r.assert_exit(Exit::PcrMismatch);
    assert!(r.stderr.contains("kernel command line differs"), "{r:?}");
}

#[test]
fn kernel_command_line_alone_names_the_volume() {
    let tpm = Swtpm::start();
    let img = Image::new();
    enroll(&tpm, &img, &["--no-recovery-key"]).assert_exit(Exit::Ok);
    let cmdline = format!(
        "root=/dev/mapper/cr rd.sealroot.device={} rd.sealroot.name=cr",
        p(&img.path)
    );
    // enroll predicted PCR 15 from the old command line: re-seal for this one.
    let tcti = tpm.tcti();
    let r = sealroot(&[
        "reseal",
        "--device",
        p(&img.path),
        "--unlock-key-file",
        p(&img.key),
        "--tcti",
        &tcti,
        "--boot-cmdline",
        &cmdline,
    ]);
    r.assert_exit(Exit::Ok);
    let r = boot(&tpm, &img, "", &cmdline, &[]);
    r.assert_exit(Exit::Ok);
    assert!(r.stderr.contains("as /dev/mapper/cr"), "{r:?}");
}

#[test]
fn bad_configuration_and_missing_devices_are_reported() {
    let tpm = Swtpm::start();
    let img = Image::new();
    let r = boot(
        &tpm,
        &img,
        "root UUID=1 none sealroot,sealroot-pcr=7\n",
        "quiet",
        &[],
    );
    r.assert_exit(Exit::Usage);
    assert!(r.stderr.contains("crypttab line 1"), "{r:?}");
    assert!(r.stderr.contains("sealroot-pcr=7"), "{r:?}");
    let r = boot(
        &tpm,
        &img,
        "",
        "rd.sealroot.uuid=x rd.sealroot.tmeout=3",
        &[],
    );
    r.assert_exit(Exit::Usage);
    assert!(
        r.stderr.contains("unknown option rd.sealroot.tmeout"),
        "{r:?}"
    );
    let r = boot(
        &tpm,
        &img,
        "",
        "rd.sealroot.uuid=0b7ad2f4-0000-4a8e-9d0f-2a4e5c6d7e8f",
        &["--device-timeout", "0.3"],
    );
    r.assert_exit(Exit::Io);
    assert!(
        r.stderr
            .contains("/dev/disk/by-uuid/0b7ad2f4-0000-4a8e-9d0f-2a4e5c6d7e8f"),
        "{r:?}"
    );
    assert!(r.stderr.contains("did not appear within 0.3 s"), "{r:?}");
    let two = format!("a {0} none sealroot\nb {0} none sealroot\n", p(&img.path));
    let r = boot(&tpm, &img, &two, "quiet", &[]);
    r.assert_exit(Exit::Usage);
    assert!(r.stderr.contains("two volumes name the device"), "{r:?}");
}

#[test]
fn crypttab_policy_key_makes_first_boot_signed() {
    let mut tpm = Swtpm::start();
    let img = Image::with_passphrase(b"provisioning");
    let keys = PolicyKeys::generate();
    let tab = format!(
        "root {} none luks,sealroot,sealroot-provision-key={},sealroot-policy-key={}\n",
        p(&img.path),
        p(&img.key),
        p(&keys.public)
    );
    let cmdline = "BOOT_IMAGE=/vmlinuz root=/dev/mapper/root ro";
    let r = boot(&tpm, &img, &tab, cmdline, &["--eventlog", "none"]);
    r.assert_exit(Exit::Ok);
    assert!(r.stderr.contains("first boot"), "{r:?}");
    let tok = &img.json()["tokens"]["0"];
    assert_eq!(tok["pcrs"].as_array().unwrap().len(), 1, "{tok}");
    assert!(tok["authorize"]["key"].is_string(), "{tok}");
    // The next boot needs a signed policy; none is found, and it says so.
    tpm.reboot();
    let r = boot(
        &tpm,
        &img,
        &tab,
        cmdline,
        &["--eventlog", "none", "--policy-dir", "/nonexistent"],
    );
    r.assert_exit(Exit::PcrMismatch);
    assert!(r.stderr.contains("no signed policy"), "{r:?}");
}

/// The initramfs scripts `eval` what `--print-config` prints. The host
/// writes the kernel command line: with quotes, command substitutions and
/// backslashes in the name, the device and the TCTI, the shell assigns
/// them byte for byte and runs nothing.
#[test]
fn print_config_is_safe_to_eval() {
    let dir = tempfile::tempdir().unwrap();
    let canary = dir.path().join("ran");
    let tab = dir.path().join("crypttab");
    std::fs::write(
        &tab,
        "root UUID=0a1b none luks,sealroot,tries=2,timeout=1min\n",
    )
    .unwrap();
    let name = r#"x'$(id)`id`\n;"#;
    let device = format!("/dev/x';touch {};'$(touch {})", p(&canary), p(&canary));
    let tcti = format!("swtpm:host=$(touch {})", p(&canary));
    let cmdline = dir.path().join("cmdline");
    let print_config = || {
        Args::new("boot")
            .arg("--print-config")
            .opt("crypttab", &tab)
            .opt("cmdline-file", &cmdline)
    };
    std::fs::write(
        &cmdline,
        format!(
            "root=/dev/mapper/x \"rd.sealroot.device={device}\" rd.sealroot.name={name} \"rd.sealroot.tcti={tcti}\"\n"
        ),
    )
    .unwrap();
    let r = print_config().run().expect(Exit::Ok);
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(r#"eval "$1" && printf '%s\0' "$SEALROOT_NAME" "$SEALROOT_DEVICE" "$SEALROOT_PATH" "$SEALROOT_TCTI" "$SEALROOT_TRIES" "$SEALROOT_PROMPT_TIMEOUT""#)
        .arg("sh")
        .arg(&r.stdout)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let got: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .split_terminator('\0')
        .map(String::from)
        .collect();
    assert_eq!(got, [name, &device, &device, &tcti, "3", "0"], "{r:?}");
    assert!(!canary.exists(), "eval ran a command: {r:?}");

    // The crypttab line for the same device gives the prompt's settings.
    std::fs::write(&cmdline, "rd.sealroot.uuid=0A1B\n").unwrap();
    let r = print_config()
        .opt("tcti", "device:/dev/tpmrm0")
        .run()
        .expect(Exit::Ok);
    assert_eq!(
        r.stdout,
        "SEALROOT_NAME='root'\nSEALROOT_DEVICE='UUID=0a1b'\nSEALROOT_PATH='/dev/disk/by-uuid/0a1b'\n\
         SEALROOT_TCTI='device:/dev/tpmrm0'\nSEALROOT_TRIES='2'\nSEALROOT_PROMPT_TIMEOUT='60'\n\
         SEALROOT_PROVISION_KEY=''\nSEALROOT_POLICY_KEY=''\nSEALROOT_BLOB=''\nSEALROOT_ON_FAILURE='poweroff'\nSEALROOT_HEADER=''\nSEALROOT_FLAGS=''\nSEALROOT_STATE=''\nSEALROOT_RECOVERY='prompt'\n"
    );

    // rd.sealroot=0 wins before anything else is parsed: empty values,
    // even with an option sealroot does not know.
    std::fs::write(&cmdline, "rd.sealroot=0 rd.sealroot.bogus=1\n").unwrap();
    let r = print_config().run().expect(Exit::Ok);
    assert!(r.stdout.starts_with("SEALROOT_NAME=''\n"), "{r:?}");
    // Without it, the unknown option is a usage error naming it.
    std::fs::write(&cmdline, "rd.sealroot.bogus=1\n").unwrap();
    let r = print_config().run().expect(Exit::Usage);
    assert!(r.stderr.contains("rd.sealroot.bogus"), "{r:?}");
    assert!(r.stdout.is_empty(), "{r:?}");
}
