//! Several sealed volumes in one boot: every one is unsealed before PCR 15
//! is locked once; the primary volume's failure fails the boot, another's
//! is reported and the lock still closes (docs/design.md#several-volumes-in-one-boot).

mod common;
use common::*;
use sealroot::Exit;

const CMDLINE: &str = "BOOT_IMAGE=/vmlinuz root=/dev/mapper/root ro";

/// `sealroot boot --dry-run` of `crypttab` with the kernel command line in
/// `cmdline`, on `tpm`, without an event log.
fn boot_args(tpm: &Swtpm, crypttab: &std::path::Path, cmdline: &std::path::Path) -> Args {
    Args::new("boot")
        .arg("--dry-run")
        .opt("crypttab", crypttab)
        .opt("cmdline-file", cmdline)
        .opt("tcti", tpm.tcti())
        .opt("eventlog", "none")
}

/// Three images with provisioning keys, and a crypttab naming them root,
/// data and home (data first, so the primary comes from `root=`).
struct Boot {
    imgs: Vec<Image>,
    names: [&'static str; 3],
    tab: std::path::PathBuf,
}

impl Boot {
    fn new() -> Boot {
        let imgs: Vec<Image> = (0..3).map(|_| Image::with_passphrase(b"prov")).collect();
        let names = ["root", "data", "home"];
        let line = |i: usize| {
            format!(
                "{} {} none luks,sealroot,sealroot-pcrs=0+7,sealroot-provision-key={}\n",
                names[i],
                p(&imgs[i].path),
                p(&imgs[i].key)
            )
        };
        let tab = imgs[0].file("crypttab");
        std::fs::write(&tab, format!("{}{}{}", line(1), line(0), line(2))).unwrap();
        for img in &imgs {
            std::fs::write(&img.cmdline, CMDLINE).unwrap();
        }
        Boot { imgs, names, tab }
    }

    fn boot(&self, tpm: &Swtpm) -> Run {
        boot_args(tpm, &self.tab, &self.imgs[0].cmdline).run()
    }

    /// `unlock --dry-run` of volume `i` alone, with the boot's command
    /// line.
    fn unlock(&self, tpm: &Swtpm, i: usize) -> Run {
        Args::new("unlock")
            .opt("device", &self.imgs[i].path)
            .opt("tcti", tpm.tcti())
            .opt("cmdline-file", &self.imgs[0].cmdline)
            .opt("name", self.names[i])
            .opt("eventlog", "none")
            .arg("--dry-run")
            .run()
    }

    fn opened(&self, r: &Run, i: usize) -> bool {
        r.stderr.contains(&format!(
            "dry run: the key opens keyslot 1 of {}",
            p(&self.imgs[i].path)
        )) || r.stderr.contains(&format!(
            "dry run: the key opens keyslot 0 of {}",
            p(&self.imgs[i].path)
        ))
    }
}

/// The host rewrites token 0 of `img` with a ciphertext that is not one.
fn break_token(img: &Image) {
    let tok = img.file("tok.json");
    let mut j = img.json()["tokens"]["0"].clone();
    j["ciphertext"] = serde_json::Value::String("AAAA".into());
    std::fs::write(&tok, j.to_string()).unwrap();
    import_token(img, &tok, &["--token-id", "0", "--token-replace"]);
}

#[test]
fn three_volumes_open_in_one_boot_then_one_lock() {
    let mut tpm = Swtpm::start();
    let b = Boot::new();
    // First boot: all three enroll against one measured state.
    let r = b.boot(&tpm);
    r.assert_exit(Exit::Ok);
    assert_eq!(r.stderr.matches("first boot: enrolled").count(), 3, "{r:?}");
    // The root (from root=) comes first, then crypttab's order.
    let at = |s: &str| r.stderr.find(s).unwrap_or_else(|| panic!("{s}: {r:?}"));
    assert!(
        at("as /dev/mapper/root") < at("as /dev/mapper/data"),
        "{r:?}"
    );
    assert!(
        at("as /dev/mapper/data") < at("as /dev/mapper/home"),
        "{r:?}"
    );
    // One lock after the three unseals: every enrollment comes before it.
    let lock = at("lock event into PCR 15");
    assert!(
        r.stderr.rfind("first boot: no sealroot token").unwrap() < lock,
        "{r:?}"
    );
    for img in &b.imgs {
        assert_eq!(img.tokens().len(), 1);
        assert!(!img.opens(b"prov"), "provisioning keyslot left");
    }
    // Later boots: three TPM unlocks, then the lock.
    tpm.reboot();
    let r = b.boot(&tpm);
    r.assert_exit(Exit::Ok);
    for i in 0..3 {
        assert!(b.opened(&r, i), "volume {i}: {r:?}");
    }
    assert_eq!(
        r.stderr.matches("opened volume's lock event").count(),
        3,
        "{r:?}"
    );
    // After the boot none of them unseals again.
    for i in 0..3 {
        let u = b.unlock(&tpm, i);
        u.assert_exit(Exit::PcrMismatch);
        assert!(u.stderr.contains("PCR 15"), "{u:?}");
    }
    // status says how a data token opens, and does not call it a mismatch.
    tpm.reboot();
    let (_, st) = status_json(&tpm, &b.imgs[1]);
    let pcr15 = st["tokens"][0]["pcrs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["index"] == 15)
        .unwrap()
        .clone();
    assert_eq!(pcr15["state"], "after-primary", "{st}");
    // Alone, in a fresh boot, the root opens; a data volume does not, since
    // nothing opened the root before it.
    tpm.reboot();
    b.unlock(&tpm, 0).assert_exit(Exit::Ok);
    for i in 1..3 {
        tpm.reboot();
        let u = b.unlock(&tpm, i);
        u.assert_exit(Exit::PcrMismatch);
        assert!(
            u.stderr.contains("nothing opened that volume first"),
            "{u:?}"
        );
        assert!(u.stderr.contains("primary volume is another"), "{u:?}");
    }
    // A reseal through the TPM (say, for a new kernel) keeps the boot the
    // token is for: the TPM proves it by unsealing the old token.
    tpm.reboot();
    Args::new("reseal")
        .opt("device", &b.imgs[1].path)
        .opt("tcti", tpm.tcti())
        .opt("cmdline-file", &b.imgs[0].cmdline)
        .run()
        .assert_exit(Exit::Ok);
    tpm.reboot();
    let r = b.boot(&tpm);
    r.assert_exit(Exit::Ok);
    assert!(b.opened(&r, 1), "{r:?}");
}

#[test]
fn a_data_volume_failure_is_reported_and_the_lock_still_closes() {
    let mut tpm = Swtpm::start();
    let b = Boot::new();
    b.boot(&tpm).assert_exit(Exit::Ok);
    // The host breaks the data volume's token.
    break_token(&b.imgs[1]);
    tpm.reboot();
    let r = b.boot(&tpm);
    r.assert_exit(Exit::Ok);
    assert!(b.opened(&r, 0) && b.opened(&r, 2), "{r:?}");
    assert!(!b.opened(&r, 1), "{r:?}");
    assert!(r.stderr.contains("data: not opened"), "{r:?}");
    // Locked all the same: home's token no longer unseals.
    b.unlock(&tpm, 2).assert_exit(Exit::PcrMismatch);
    // A missing data disk is reported the same way.
    tpm.reboot();
    let gone = b.imgs[2].path.with_extension("moved");
    std::fs::rename(&b.imgs[2].path, &gone).unwrap();
    let r = boot_args(&tpm, &b.tab, &b.imgs[0].cmdline)
        .opt("device-timeout", "0.2")
        .run();
    std::fs::rename(&gone, &b.imgs[2].path).unwrap();
    r.assert_exit(Exit::Ok);
    assert!(b.opened(&r, 0), "{r:?}");
    assert!(r.stderr.contains("home: not opened"), "{r:?}");
    b.unlock(&tpm, 0).assert_exit(Exit::PcrMismatch);
}

#[test]
fn the_primary_volume_failure_fails_the_boot_closed() {
    let mut tpm = Swtpm::start();
    let b = Boot::new();
    b.boot(&tpm).assert_exit(Exit::Ok);
    // The host breaks the root's token only; the data tokens are intact.
    break_token(&b.imgs[0]);
    tpm.reboot();
    let r = b.boot(&tpm);
    r.assert_exit(Exit::BlobInvalid);
    // Nothing else is unsealed once the primary volume failed.
    assert!(!r.stderr.contains("primary volume's event"), "{r:?}");
    assert!(!b.opened(&r, 1) && !b.opened(&r, 2), "{r:?}");
    assert!(r.stderr.contains("failure lock event into PCR 15"), "{r:?}");
}

/// The host makes its own volume with the real root's LUKS UUID, under the
/// image's provisioning key (which it has), and attaches it as the root:
/// the first-boot path opens it, but the data volumes' tokens were sealed
/// after the real root's key, so none of them unseals.
#[test]
fn a_fake_primary_with_the_real_uuid_opens_no_data_volume() {
    let mut tpm = Swtpm::start();
    let b = Boot::new();
    b.boot(&tpm).assert_exit(Exit::Ok);
    let uuid = b.imgs[0].uuid();
    let real = b.imgs[0].path.with_extension("real");
    std::fs::rename(&b.imgs[0].path, &real).unwrap();
    let fake = Image::with_passphrase(b"prov");
    let out = std::process::Command::new("cryptsetup")
        .args(["luksUUID", "--batch-mode", "--uuid"])
        .arg(&uuid)
        .arg(&fake.path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    std::fs::copy(&fake.path, &b.imgs[0].path).unwrap();
    tpm.reboot();
    let r = b.boot(&tpm);
    // The host's own volume is "opened" (it holds nothing of the VM's)...
    r.assert_exit(Exit::Ok);
    assert!(r.stderr.contains("first boot: enrolled"), "{r:?}");
    // ...and no data volume: their tokens want the real root's event.
    assert!(!b.opened(&r, 1) && !b.opened(&r, 2), "{r:?}");
    assert!(r.stderr.contains("data: not opened"), "{r:?}");
    assert!(r.stderr.contains("primary volume is not the one"), "{r:?}");
    // The real root copied into a data slot is refused before any unseal.
    std::fs::copy(&real, &b.imgs[0].path).unwrap();
    std::fs::copy(&real, &b.imgs[1].path).unwrap();
    tpm.reboot();
    let r = b.boot(&tpm);
    r.assert_exit(Exit::Ok);
    assert!(r.stderr.contains("also"), "{r:?}");
    assert!(!b.opened(&r, 1), "{r:?}");
}

#[test]
fn enroll_warns_when_the_crypttab_boot_could_not_unseal() {
    let tpm = Swtpm::start();
    let root = Image::new();
    let data = Image::new();
    let tab = root.file("crypttab");
    std::fs::write(
        &tab,
        format!(
            "root UUID={} none sealroot\ndata {} none sealroot\n",
            root.uuid(),
            p(&data.path)
        ),
    )
    .unwrap();
    std::fs::write(&data.cmdline, CMDLINE).unwrap();
    std::fs::write(&root.cmdline, CMDLINE).unwrap();
    let enroll_data = |extra: &[&str]| {
        Args::new("enroll")
            .on(&tpm, &data)
            .opt("unlock-key-file", &data.key)
            .opt("crypttab", &tab)
            .arg("--no-recovery-key")
            .args(extra)
            .run()
    };
    let r = enroll_data(&[]);
    r.assert_exit(Exit::Ok);
    assert!(r.stderr.contains("enroll with --root-volume"), "{r:?}");
    assert!(r.stderr.contains(&root.uuid()), "{r:?}");
    let with_root = [
        "--root-volume",
        p(&root.path),
        "--root-key-file",
        p(&root.key),
    ];
    let r = enroll_data(&with_root);
    r.assert_exit(Exit::Ok);
    assert!(!r.stderr.contains("--root-volume"), "{r:?}");
    // The root itself needs nothing.
    let r = Args::new("enroll")
        .on(&tpm, &root)
        .opt("unlock-key-file", &root.key)
        .opt("crypttab", &tab)
        .arg("--no-recovery-key")
        .run();
    r.assert_exit(Exit::Ok);
    assert!(!r.stderr.contains("--root-volume"), "{r:?}");
    // The root's key is needed, and must be the root's.
    enroll_data(&["--root-volume", p(&root.path)]).assert_exit(Exit::Usage);
    let not_roots = root.file("not-the-root.key");
    std::fs::write(&not_roots, "not the root's passphrase").unwrap();
    let wrong = [
        "--root-volume",
        p(&root.path),
        "--root-key-file",
        p(&not_roots),
    ];
    let r = enroll_data(&wrong);
    r.assert_exit(Exit::Luks);
    // Both tokens open in one boot (the data volume's by its second token,
    // the one sealed after the root).
    let mut tpm = tpm;
    tpm.reboot();
    // (By path here: this host has no /dev/disk/by-uuid links for images.)
    let by_path = root.file("crypttab-paths");
    std::fs::write(
        &by_path,
        format!(
            "root {} none sealroot\ndata {} none sealroot\n",
            p(&root.path),
            p(&data.path)
        ),
    )
    .unwrap();
    let r = boot_args(&tpm, &by_path, &root.cmdline).run();
    r.assert_exit(Exit::Ok);
    assert!(
        r.stderr.matches("dry run: the key opens").count() == 2,
        "{r:?}"
    );
    // A key-file reseal of the data token must name the root again: the
    // token (which the host can rewrite) does not choose it.
    tpm.reboot();
    let reseal = |extra: &[&str]| {
        Args::new("reseal")
            .opt("device", &data.path)
            .opt("tcti", tpm.tcti())
            .opt("cmdline-file", &data.cmdline)
            .opt("unlock-key-file", &data.key)
            .opt("token", "1")
            .args(extra)
            .run()
    };
    let r = reseal(&[]);
    r.assert_exit(Exit::Usage);
    assert!(r.stderr.contains("--root-volume"), "{r:?}");
    reseal(&with_root).assert_exit(Exit::Ok);
}

#[test]
fn volumes_of_one_boot_share_one_tpm() {
    let tpm = Swtpm::start();
    let a = Image::new();
    let b = Image::new();
    let tab = a.file("crypttab");
    std::fs::write(
        &tab,
        format!(
            "a {} none sealroot\nb {} none sealroot,sealroot-tcti=swtpm:port=1\n",
            p(&a.path),
            p(&b.path)
        ),
    )
    .unwrap();
    std::fs::write(&a.cmdline, CMDLINE).unwrap();
    let r = boot_args(&tpm, &tab, &a.cmdline).run();
    r.assert_exit(Exit::Usage);
    assert!(r.stderr.contains("same TPM"), "{r:?}");
}

/// A volume opened through a systemd-tpm2 token is unsealed before PCR 15
/// is measured, so it cannot sit behind a primary volume: beside others it
/// is reported, and the rest of the boot goes on. `adopt` with the root
/// named gives it a sealroot token that opens behind the root.
#[test]
fn a_systemd_only_volume_is_adopted_to_open_beside_the_root() {
    let mut tpm = Swtpm::start();
    let root = Image::new();
    let data = Image::new();
    std::fs::write(&root.cmdline, CMDLINE).unwrap();
    std::fs::write(&data.cmdline, CMDLINE).unwrap();
    enroll(&tpm, &root, &["--no-recovery-key"]).assert_exit(Exit::Ok);
    tpm.reboot();
    common::systemd_tpm2::enroll_systemd(&tpm, &data, "7");
    let tab = root.file("crypttab");
    std::fs::write(
        &tab,
        format!(
            "root {} none sealroot\ndata {} none sealroot,sealroot-systemd-token\n",
            p(&root.path),
            p(&data.path)
        ),
    )
    .unwrap();
    let boot = |tpm: &Swtpm| boot_args(tpm, &tab, &root.cmdline).run();
    tpm.reboot();
    let r = boot(&tpm);
    r.assert_exit(Exit::Ok);
    assert_eq!(
        r.stderr.matches("dry run: the key opens").count(),
        1,
        "{r:?}"
    );
    assert!(r.stderr.contains("data: not opened"), "{r:?}");
    assert!(r.stderr.contains("sealroot adopt"), "{r:?}");
    // Adopt it for the boot behind the root.
    tpm.reboot();
    Args::new("adopt")
        .on(&tpm, &data)
        .opt("root-volume", &root.path)
        .opt("root-key-file", &root.key)
        .opt("crypttab", &tab)
        .arg("--no-recovery-key")
        .run()
        .assert_exit(Exit::Ok);
    tpm.reboot();
    let r = boot(&tpm);
    r.assert_exit(Exit::Ok);
    assert_eq!(
        r.stderr.matches("dry run: the key opens").count(),
        2,
        "{r:?}"
    );
}
