//! crypttab as people write it: detached headers (`header=`), dm-crypt
//! activation flags, sealroot lines written slightly differently, and
//! options sealroot does not use (docs/distro.md).

mod common;
use common::*;
use sealroot::Exit;
use std::path::PathBuf;
use std::process::Command;

/// A LUKS2 volume whose header is in a file of its own
/// (`cryptsetup luksFormat --header`): the data image holds no header.
struct Detached {
    img: Image,
    data: PathBuf,
    header: PathBuf,
}

impl Detached {
    fn new(pass: &[u8]) -> Detached {
        let img = Image::with_passphrase(pass);
        let data = blank(img.dir.path(), "data.img", 20);
        let header = img.file("header.img");
        let out = Command::new("cryptsetup")
            .args(["luksFormat", "-q", "--type", "luks2", "--pbkdf", "pbkdf2"])
            .args(["--pbkdf-force-iterations", "1000", "--key-file"])
            .arg(&img.key)
            .arg("--header")
            .arg(&header)
            .arg(&data)
            .output()
            .unwrap();
        assert!(out.status.success(), "luksFormat --header: {out:?}");
        Detached { img, data, header }
    }
}

fn boot(tpm: &Swtpm, img: &Image, crypttab: &str) -> Run {
    let tab = img.file("crypttab");
    std::fs::write(&tab, crypttab).unwrap();
    Args::new("boot")
        .arg("--dry-run")
        .opt("crypttab", &tab)
        .opt("cmdline-file", &img.cmdline)
        .opt("tcti", tpm.tcti())
        .run()
}

#[test]
fn a_detached_header_is_read_checked_and_used() {
    let mut tpm = Swtpm::start();
    let d = Detached::new(b"provisioning");
    let (data, header) = (p(&d.data), p(&d.header));
    // Without header= the data device has no header: the message says
    // where one would be named.
    let plain = format!(
        "root {data} none sealroot,sealroot-provision-key={}\n",
        p(&d.img.key)
    );
    let r = boot(&tpm, &d.img, &plain).expect(Exit::Luks);
    assert!(r.stderr.contains("no LUKS header"), "{r:?}");
    assert!(r.stderr.contains("header= in crypttab"), "{r:?}");
    tpm.reboot(); // the failure locked PCR 15
                  // With it: first boot enrolls into the detached header, the data
                  // image is not written, then the TPM unlock reads the same header.
    let before = std::fs::read(&d.data).unwrap();
    let tab = format!(
        "root {data} none luks,sealroot,header={header},discard,no-read-workqueue,sealroot-provision-key={}\n",
        p(&d.img.key)
    );
    let r = boot(&tpm, &d.img, &tab).expect(Exit::Ok);
    assert!(r.stderr.contains("first boot"), "{r:?}");
    assert!(
        r.stderr
            .contains(&format!("detached LUKS2 header {header}")),
        "{r:?}"
    );
    assert!(
        r.stderr
            .contains("activation flags discard, no-read-workqueue"),
        "{r:?}"
    );
    assert_eq!(luks_json(&d.header)["tokens"]["0"]["type"], "sealroot");
    assert!(
        std::fs::read(&d.data).unwrap() == before,
        "the data image was written"
    );
    tpm.reboot();
    let r = boot(&tpm, &d.img, &tab).expect(Exit::Ok);
    assert!(!r.stderr.contains("first boot"), "{r:?}");
    assert!(r.stderr.contains("dry run: the key opens keyslot"), "{r:?}");
    // status, enroll and unlock take --header too.
    let tcti = tpm.tcti();
    let r = sealroot(&[
        "status", "--device", data, "--header", header, "--tcti", &tcti, "--json",
    ]);
    assert!(r.stdout.contains("\"keyslot\""), "{r:?}");
    // (first boot removed the provisioning keyslot: a fresh volume.)
    tpm.reboot();
    let d = Detached::new(b"passphrase");
    let key = d.img.key.clone();
    let r = Args::new("unlock")
        .opt("device", &d.data)
        .opt("header", &d.header)
        .opt("flags", "discard,same-cpu-crypt")
        .opt("name", "x")
        .arg("--dry-run")
        .opt("key-file", &key)
        .opt("tcti", tpm.tcti())
        .run()
        .expect(Exit::Ok);
    assert!(
        r.stderr
            .contains("activation flags discard, same-cpu-crypt"),
        "{r:?}"
    );
    let r = Args::new("unlock")
        .opt("device", &d.data)
        .opt("name", "x")
        .opt("flags", "discard,fast")
        .opt("key-file", &key)
        .run()
        .expect(Exit::Usage);
    assert!(r.stderr.contains("\"fast\""), "{r:?}");
    let d2 = Detached::new(b"other");
    Args::new("enroll")
        .opt("device", &d2.data)
        .opt("header", &d2.header)
        .opt("unlock-key-file", &d2.img.key)
        .opt("tcti", tpm.tcti())
        .opt("cmdline-file", &d2.img.cmdline)
        .arg("--no-recovery-key")
        .run()
        .expect(Exit::Ok);
    assert_eq!(luks_json(&d2.header)["tokens"]["0"]["type"], "sealroot");
}

#[test]
fn a_detached_header_outside_the_allow_list_is_refused() {
    let tpm = Swtpm::start();
    let d = Detached::new(b"pass");
    // A data device too small for the segment the header describes.
    let small = blank(d.img.dir.path(), "small.img", 0);
    let tab = format!("root {} none sealroot,header={}\n", p(&small), p(&d.header));
    let r = boot(&tpm, &d.img, &tab).expect(Exit::VolumeRefused);
    assert!(r.stderr.contains("segments.0.offset"), "{r:?}");
    // The header file must be there.
    let tab = format!(
        "root {} none sealroot,header=/nonexistent/h.img\n",
        p(&d.data)
    );
    let r = boot(&tpm, &d.img, &tab).expect(Exit::Io);
    assert!(r.stderr.contains("/nonexistent/h.img"), "{r:?}");
}

#[test]
fn sealroot_lines_written_slightly_differently_are_usage_errors() {
    let tpm = Swtpm::start();
    let img = Image::new();
    let dev = p(&img.path);
    for (line, field) in [
        (format!("root {dev} sealroot"), "field 3"),
        (format!("root {dev} sealroot luks"), "field 3"),
        (format!("root {dev} none luks, sealroot"), "field 5"),
        (format!("root {dev} none \"sealroot\""), "field 4"),
        (format!("root {dev} none x-sealroot"), "field 4"),
        (format!("root {dev} none sealroot=1"), "field 4"),
        (format!("root {dev} none SEALROOT"), "field 4"),
        (
            format!("root\t{dev}\tnone\tluks,Sealroot,discard"),
            "field 4",
        ),
        (format!("root {dev} none sealroot # root volume"), "field 5"),
        (format!("root {dev} none luks,sealroot-pcrs=7"), "field 4"),
    ] {
        let r = boot(&tpm, &img, &format!("# root\n{line}\n"));
        assert_eq!(r.exit(), Some(Exit::Usage), "{line:?}: {r:?}");
        assert!(
            r.stderr.contains(&format!("crypttab line 2: {field}")),
            "{line:?}: {r:?}"
        );
        assert!(!r.stderr.contains("no sealroot volume configured"), "{r:?}");
    }
}

#[test]
fn legal_forms_open_and_unknown_options_are_warned_by_name() {
    let tpm = Swtpm::start();
    let img = Image::with_passphrase(b"provisioning");
    let tab = format!(
        "\t# comment\n  root\t{}\t-\tluks,,sealroot,initramfs,x-systemd.device-timeout=0,cipher=aes-xts-plain64,keyscript=decrypt_keyctl,sealroot-provision-key={},\r\n",
        p(&img.path),
        p(&img.key)
    );
    let r = boot(&tpm, &img, &tab).expect(Exit::Ok);
    assert!(r.stderr.contains("first boot"), "{r:?}");
    for named in ["option \"cipher\"", "option \"keyscript\""] {
        assert!(r.stderr.contains(named), "{named}: {r:?}");
    }
    for quiet in ["\"luks\"", "\"initramfs\"", "x-systemd"] {
        assert!(!r.stderr.contains(quiet), "{quiet}: {r:?}");
    }
}
