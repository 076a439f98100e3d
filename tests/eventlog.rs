//! Event-log parser, replay and `predict` against logs captured from real
//! harness boots (QEMU TCG + OVMF + swtpm + Debian cloud kernel), made by
//! `bash qemu-harness/capture-eventlog`:
//!
//! - `a`: initramfs A; `b`: initramfs B (A plus one file); `kernel`:
//!   initramfs A with the kernel plus 4096 appended zero bytes.
//!
//! Each has the raw log (`.bin`), the PCR values read from sysfs in the same
//! boot (`.pcrs`) and the sizes and hashes of the images (`.meta`).

mod common;
use common::Args;
use sealroot::pcr::eventlog::{self, EventLog};
use sealroot::pcr::predict::{self, QemuDirectBoot, Substitution};
use sealroot::pcr::Digest;
use sealroot::Exit;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/eventlog")
}

fn log(name: &str) -> EventLog {
    let bytes = std::fs::read(dir().join(format!("{name}.bin"))).unwrap();
    eventlog::parse(&bytes).unwrap()
}

fn pcrs(name: &str) -> Vec<Digest> {
    let text = std::fs::read_to_string(dir().join(format!("{name}.pcrs"))).unwrap();
    let v: Vec<Digest> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            let (idx, hex) = l.split_once(' ').unwrap();
            assert_eq!(idx.parse::<usize>().unwrap(), i);
            hex::decode(hex).unwrap().try_into().unwrap()
        })
        .collect();
    assert_eq!(v.len(), 24);
    v
}

fn meta(name: &str) -> HashMap<String, String> {
    std::fs::read_to_string(dir().join(format!("{name}.meta")))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn digest(hex: &str) -> Digest {
    hex::decode(hex).unwrap().try_into().unwrap()
}

const BOOTS: &[&str] = &["a", "b", "kernel"];

#[test]
fn parses_the_captured_ovmf_logs() {
    for name in BOOTS {
        let l = log(name);
        assert_eq!(
            l.spec.algorithms,
            vec![(0x0004, 20), (0x000b, 32), (0x000c, 48), (0x000d, 64)],
            "{name}: swtpm's four banks"
        );
        assert_eq!(l.spec.spec_version, (2, 0, 0), "{name}");
        assert_eq!(l.spec.uintn_size, 2, "{name}: 64-bit UINTN");
        // Every measured event carries all four banks.
        for e in l.events.iter().filter(|e| e.is_measured()) {
            assert_eq!(e.digests.len(), 4, "{name}: {e}");
        }
        let initrd: Vec<_> = l.events.iter().filter(|e| e.is_linux_initrd()).collect();
        assert_eq!(initrd.len(), 1, "{name}: one Linux initrd event");
        assert_eq!(initrd[0].describe(), "EV_EVENT_TAG Linux initrd (EFI stub)");
        let apps: Vec<_> = l.events_of(4).filter(|e| e.is_boot_application()).collect();
        assert_eq!(apps.len(), 1, "{name}: OVMF loads only the kernel");
        assert_eq!(
            apps[0].describe(),
            "EV_EFI_BOOT_SERVICES_APPLICATION EFI image kernel"
        );
        let described: Vec<String> = l.events.iter().map(|e| e.describe()).collect();
        for want in [
            "EV_EFI_VARIABLE_DRIVER_CONFIG variable SecureBoot",
            "EV_EFI_VARIABLE_BOOT variable BootOrder",
            "EV_EFI_ACTION \"Calling EFI Application from Boot Option\"",
            "EV_EVENT_TAG kernel command line (EFI stub, LOADED_IMAGE::LoadOptions)",
        ] {
            assert!(
                described.iter().any(|d| d == want),
                "{name}: no {want:?} in {described:#?}"
            );
        }
    }
}

#[test]
fn replay_equals_the_pcrs_read_in_the_same_boot() {
    for name in BOOTS {
        let l = log(name);
        let r = l.replay().unwrap();
        let tpm = pcrs(name);
        let touched: Vec<u32> = (0..24).filter(|&i| r.touched[i as usize]).collect();
        assert_eq!(touched, vec![0, 1, 2, 3, 4, 5, 6, 7, 9], "{name}");
        let cur: Vec<Digest> = touched.iter().map(|&i| tpm[i as usize]).collect();
        assert_eq!(r.check(&touched, &cur), Vec::<u32>::new(), "{name}");
        // PCR 10 is IMA's (not in the firmware log): the check names it.
        assert_eq!(r.check(&[10], &[tpm[10]]), vec![10], "{name}");
    }
}

#[test]
fn a_changed_byte_in_the_log_breaks_the_replay_check() {
    let bytes = std::fs::read(dir().join("a.bin")).unwrap();
    let l = eventlog::parse(&bytes).unwrap();
    let initrd = l.events.iter().find(|e| e.is_linux_initrd()).unwrap();
    // The SHA-256 digest sits after pcr, type, count, the SHA-1 alg id and
    // digest, and its own alg id.
    let at = initrd.offset + 12 + 2 + 20 + 2;
    let mut edited = bytes.clone();
    edited[at] ^= 1;
    let r = eventlog::parse(&edited).unwrap().replay().unwrap();
    let tpm = pcrs("a");
    assert_eq!(r.check(&[4, 9], &[tpm[4], tpm[9]]), vec![9]);
}

#[test]
fn the_initrd_event_digest_is_the_sha256_of_the_initrd_file() {
    for name in BOOTS {
        let l = log(name);
        let e = l.events.iter().find(|e| e.is_linux_initrd()).unwrap();
        assert_eq!(
            e.sha256().unwrap(),
            digest(&meta(name)["initrd_sha256"]),
            "{name}"
        );
    }
}

#[test]
fn predict_pcr9_of_boot_b_from_the_log_of_boot_a() {
    let a = log("a");
    let sub = Substitution {
        initrd: Some(digest(&meta("b")["initrd_sha256"])),
        kernel: None,
    };
    let p = predict::predict(&a, &sub).unwrap();
    let b = pcrs("b");
    assert_eq!(p.replay.values[9], b[9], "predicted PCR 9 = boot b's PCR 9");
    assert_ne!(p.replay.values[9], pcrs("a")[9]);
    assert_eq!(p.substituted.len(), 1);
    assert_eq!(p.substituted[0].pcr, 9);
    // Every other PCR the log covers is as in boot a; PCR 4 also changes in
    // boot b, because QEMU writes the initrd size into the kernel header.
    for i in [0, 1, 2, 3, 5, 6, 7] {
        assert_eq!(p.replay.values[i], b[i], "PCR {i}");
    }
    assert_ne!(pcrs("a")[4], b[4]);
}

/// The Debian cloud kernel the fixtures were captured with, from the
/// harness cache (qemu-harness/setup fetches it).
fn harness_kernel() -> Option<Vec<u8>> {
    let m = meta("a");
    let kdir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("qemu-harness/.cache/kernel")
        .join(&m["kernel_package"])
        .join("root/boot");
    let f = std::fs::read_dir(&kdir)
        .ok()?
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("vmlinuz-"))?;
    let bytes = std::fs::read(f.path()).ok()?;
    use sha2::Digest as _;
    (hex::encode(sha2::Sha256::digest(&bytes)) == m["kernel_sha256"]).then_some(bytes)
}

fn qemu_kernel_digest(kernel: &[u8], name: &str) -> Digest {
    let m = meta(name);
    let mut k = kernel.to_vec();
    let q = QemuDirectBoot {
        below_4g_mem: m["memory_mib"].parse::<u64>().unwrap() << 20,
        initrd_size: m["initrd_size"].parse().unwrap(),
    };
    predict::qemu_patch_setup_header(&mut k, &q).unwrap();
    predict::authenticode_sha256(&k).unwrap()
}

#[test]
fn predict_pcr4_for_qemu_direct_boot() {
    let Some(kernel) = harness_kernel() else {
        eprintln!("SKIP: the harness kernel is not cached (run qemu-harness/setup)");
        return;
    };
    // The kernel event of each boot is the Authenticode hash of the image
    // QEMU handed to OVMF.
    for name in ["a", "b"] {
        let e = log(name);
        let app = e.events_of(4).find(|e| e.is_boot_application()).unwrap();
        assert_eq!(
            app.sha256().unwrap(),
            qemu_kernel_digest(&kernel, name),
            "{name}"
        );
    }
    let mut appended = kernel.clone();
    appended.extend([0u8; 4096]);
    let e = log("kernel");
    let app = e.events_of(4).find(|e| e.is_boot_application()).unwrap();
    assert_eq!(
        app.sha256().unwrap(),
        qemu_kernel_digest(&appended, "kernel")
    );

    // Boot b predicted from boot a: both PCR 4 and 9.
    let sub = Substitution {
        initrd: Some(digest(&meta("b")["initrd_sha256"])),
        kernel: Some(qemu_kernel_digest(&kernel, "b")),
    };
    let p = predict::predict(&log("a"), &sub).unwrap();
    let b = pcrs("b");
    for (i, want) in b.iter().enumerate().take(10) {
        if i != 8 {
            assert_eq!(p.replay.values[i], *want, "PCR {i}");
        }
    }
    // Boot "kernel" predicted from boot b: another kernel and initrd.
    let sub = Substitution {
        initrd: Some(digest(&meta("kernel")["initrd_sha256"])),
        kernel: Some(qemu_kernel_digest(&appended, "kernel")),
    };
    let p = predict::predict(&log("b"), &sub).unwrap();
    let k = pcrs("kernel");
    assert_eq!(p.replay.values[4], k[4]);
    assert_eq!(p.replay.values[9], k[9]);
}

#[test]
fn every_prefix_and_bit_flip_of_a_real_log_is_handled() {
    let bytes = std::fs::read(dir().join("a.bin")).unwrap();
    for n in 0..bytes.len() {
        let _ = eventlog::parse(&bytes[..n]);
    }
    for i in (0..bytes.len()).step_by(7) {
        let mut b = bytes.clone();
        b[i] ^= 0x80;
        if let Ok(l) = eventlog::parse(&b) {
            let _ = l.replay();
            for e in &l.events {
                let _ = e.describe();
            }
        }
    }
}

#[test]
fn predict_command_substitutes_the_initrd() {
    let tmp = tempfile::tempdir().unwrap();
    let initrd = tmp.path().join("new.img");
    std::fs::write(&initrd, b"a new initramfs").unwrap();
    let log_path = dir().join("a.bin");
    let r = Args::new("predict")
        .opt("eventlog", &log_path)
        .opt("initrd", &initrd)
        .opt("pcrs", "0,4,7,9")
        .arg("--json")
        .run()
        .expect(Exit::Ok);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let want = predict::predict(
        &log("a"),
        &Substitution {
            initrd: Some(predict::initrd_digest(b"a new initramfs")),
            kernel: None,
        },
    )
    .unwrap();
    let a = pcrs("a");
    let p = v["pcrs"].as_array().unwrap();
    assert_eq!(p.len(), 4);
    for (entry, i) in p.iter().zip([0usize, 4, 7, 9]) {
        assert_eq!(entry["index"], i);
        assert_eq!(entry["current"], hex::encode(a[i]), "PCR {i}");
        assert_eq!(entry["predicted"], hex::encode(want.replay.values[i]));
        assert_eq!(entry["changed"], i == 9, "PCR {i}");
    }
    assert_eq!(v["substituted"][0]["pcr"], 9);
    assert_eq!(
        v["substituted"][0]["description"],
        "EV_EVENT_TAG Linux initrd (EFI stub)"
    );
    assert!(v["tpm_check"].is_null());
}

#[test]
fn predict_command_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let initrd = tmp.path().join("new.img");
    std::fs::write(&initrd, b"x").unwrap();
    let a = dir().join("a.bin");
    // Nothing to substitute: usage.
    let r = Args::new("predict").opt("eventlog", &a).run();
    r.assert_exit(Exit::Usage);
    assert!(r.stderr.contains("--initrd and/or --kernel"), "{r:?}");
    // Missing log: I/O error naming the path.
    let r = Args::new("predict")
        .opt("eventlog", "/nonexistent/log")
        .opt("initrd", &initrd)
        .run();
    r.assert_exit(Exit::Io);
    assert!(r.stderr.contains("/nonexistent/log"), "{r:?}");
    // A log that does not parse: Exit::Io too, the reason named.
    let junk = tmp.path().join("junk.bin");
    std::fs::write(&junk, b"not an event log at all, just text").unwrap();
    let r = Args::new("predict")
        .opt("eventlog", &junk)
        .opt("initrd", &initrd)
        .run();
    r.assert_exit(Exit::Io);
    assert!(r.stderr.contains("not a crypto-agile log"), "{r:?}");
    // A kernel that is not a PE image.
    let r = Args::new("predict")
        .opt("eventlog", &a)
        .opt("kernel", &initrd)
        .run();
    r.assert_exit(Exit::Usage);
    assert!(r.stderr.contains("not a PE image"), "{r:?}");
}
