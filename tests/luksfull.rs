//! A full LUKS2 header is reported as such, with what to do about it.

mod common;
use common::*;
use sealroot::Exit;
use std::process::Command;

/// An image whose 1 MiB keyslots area is full (4 PBKDF2 keyslots).
fn full_image() -> Image {
    let img = Image::formatted(
        b"correct horse battery staple",
        &[
            "--pbkdf",
            "pbkdf2",
            "--pbkdf-force-iterations",
            "1000",
            "--luks2-keyslots-size",
            "1m",
            "--luks2-metadata-size",
            "16k",
        ],
    );
    for i in 1.. {
        let k = img.file(&format!("k{i}"));
        std::fs::write(&k, format!("key {i}")).unwrap();
        let out = Command::new("cryptsetup")
            .args(["luksAddKey", "-q", "--pbkdf", "pbkdf2"])
            .args(["--pbkdf-force-iterations", "1000", "--key-file"])
            .arg(&img.key)
            .arg(&img.path)
            .arg(&k)
            .output()
            .unwrap();
        if !out.status.success() {
            assert!(
                String::from_utf8_lossy(&out.stderr).contains("No space"),
                "{out:?}"
            );
            break;
        }
        assert!(i < 32, "the keyslots area never filled");
    }
    img
}

#[test]
fn enroll_into_a_full_header_names_the_full_header() {
    let tpm = Swtpm::start();
    let img = full_image();
    let before = img.keyslots();
    let r = enroll(&tpm, &img, &["--no-recovery-key"]).expect(Exit::Luks);
    assert!(
        r.stderr
            .contains("the LUKS2 header has no room for another keyslot"),
        "{r:?}"
    );
    assert!(r.stderr.contains("sealroot remove"), "{r:?}");
    assert!(r.stderr.contains("--luks2-keyslots-size"), "{r:?}");
    assert!(!r.stderr.contains("is the unlock key right"), "{r:?}");
    assert_eq!(img.keyslots(), before, "nothing was added");
    assert!(img.tokens().is_empty(), "no token was left behind");
}

#[test]
fn enroll_with_a_recovery_key_needs_room_for_both_keyslots() {
    let tpm = Swtpm::start();
    let img = full_image();
    let last = *img.keyslots().last().unwrap();
    let out = Command::new("cryptsetup")
        .args(["luksKillSlot", "-q", "--key-file"])
        .arg(&img.key)
        .arg(&img.path)
        .arg(last.to_string())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let before = img.keyslots();
    let r = enroll(&tpm, &img, &[]).expect(Exit::Luks);
    assert!(r.stderr.contains("no room for 2 more keyslots"), "{r:?}");
    assert_eq!(img.keyslots(), before);
    // One keyslot fits: without a recovery key it enrolls.
    enroll(&tpm, &img, &["--no-recovery-key"]).assert_exit(Exit::Ok);
}

#[test]
fn a_full_json_area_is_named_when_the_token_is_written() {
    let tpm = Swtpm::start();
    let img = Image::formatted(
        b"correct horse battery staple",
        &[
            "--pbkdf",
            "pbkdf2",
            "--pbkdf-force-iterations",
            "1000",
            "--luks2-metadata-size",
            "16k",
        ],
    );
    // Fill the 12 KiB JSON area with tokens of decreasing size.
    for pad in [3000, 1000, 300, 100] {
        loop {
            let t = format!(
                "{{\"type\":\"x-pad\",\"keyslots\":[],\"pad\":\"{}\"}}",
                "a".repeat(pad)
            );
            let mut c = Command::new("cryptsetup")
                .args(["token", "import"])
                .arg(&img.path)
                .stdin(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            std::io::Write::write_all(&mut c.stdin.take().unwrap(), t.as_bytes()).unwrap();
            if !c.wait().unwrap().success() {
                break;
            }
        }
    }
    let before = luks_json(&img.path);
    let r = enroll(&tpm, &img, &["--no-recovery-key"]).expect(Exit::Luks);
    assert!(
        r.stderr.contains("no room for another keyslot or token"),
        "{r:?}"
    );
    assert!(r.stderr.contains("--luks2-metadata-size"), "{r:?}");
    assert_eq!(luks_json(&img.path), before, "nothing was written");
}
