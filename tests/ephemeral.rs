//! `sealroot ephemeral` on real image files (no device-mapper on the host:
//! the guard, `--dry-run` and `--format-only`), with a real swtpm for the
//! RNG mixing and the measurement. Activation and mkfs are exercised by the
//! QEMU scenarios (qemu-harness/lib/ephemeral.sh).

mod common;
use common::proxy::{cc_name, Proxy};
use common::*;
use sealroot::Exit;
use std::path::Path;
use std::process::Command;

const NO_TPM: &str = "device:/nonexistent/tpmrm0";

fn eph(dev: &Path, tcti: &str, extra: &[&str]) -> Run {
    Args::new("ephemeral")
        .opt("device", dev)
        .opt("name", "scratch")
        .opt("tcti", tcti)
        .opt("tpm-timeout", "2")
        .args(extra)
        .run()
}

fn sha(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

fn luks_json(path: &Path) -> serde_json::Value {
    let out = Command::new("cryptsetup")
        .args(["luksDump", "--dump-json-metadata"])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn luks_dump(path: &Path) -> String {
    let out = Command::new("cryptsetup")
        .arg("luksDump")
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// The header `--format-only` writes: LUKS2, no keyslot, no token, the
/// marker, XTS with a 512-bit key on 4 KiB sectors; a new UUID every time.
#[test]
fn format_only_writes_a_keyless_marked_header() {
    let dir = tempfile::tempdir().unwrap();
    let dev = blank(dir.path(), "eph.img", 32);
    let r = eph(&dev, NO_TPM, &["--format-only"]);
    r.assert_exit(Exit::Ok);
    assert!(
        r.stdout
            .contains("LUKS2 header written, not opened (blank)"),
        "{r:?}"
    );
    let j = luks_json(&dev);
    assert_eq!(j["keyslots"].as_object().unwrap().len(), 0, "{j}");
    assert_eq!(j["tokens"].as_object().unwrap().len(), 0, "{j}");
    let seg = &j["segments"]["0"];
    assert_eq!(seg["encryption"], "aes-xts-plain64");
    assert_eq!(seg["sector_size"], 4096);
    assert!(seg.get("integrity").is_none(), "{seg}");
    let dump = luks_dump(&dev);
    assert!(
        dump.contains("Subsystem:     \tsealroot-ephemeral"),
        "{dump}"
    );
    assert!(dump.contains("Label:         \tscratch"), "{dump}");
    let u1 = uuid_of(&dev);
    // A previous ephemeral header is formatted afresh: new UUID, new digest.
    let r = eph(&dev, NO_TPM, &["--format-only"]);
    r.assert_exit(Exit::Ok);
    assert!(r.stdout.contains("(previous ephemeral volume)"), "{r:?}");
    assert_ne!(uuid_of(&dev), u1);
    // Nothing can open it: no keyslot takes any passphrase.
    let kf = dir.path().join("k");
    std::fs::write(&kf, b"anything").unwrap();
    let st = Command::new("cryptsetup")
        .args(["open", "--test-passphrase", "--key-file"])
        .arg(&kf)
        .arg(&dev)
        .output()
        .unwrap();
    assert!(!st.status.success());
}

fn uuid_of(path: &Path) -> String {
    let out = Command::new("cryptsetup")
        .arg("luksUUID")
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A persistent LUKS2 volume (a keyslot) is refused (`Exit::EphemeralRefused`),
/// with and without --wipe-existing, byte for byte untouched, and still opens.
#[test]
fn guard_refuses_persistent_luks() {
    let img = Image::new();
    let before = img.sha256();
    for extra in [
        &[][..],
        &["--wipe-existing"],
        &["--format-only"],
        &["--wipe-existing", "--format-only"],
    ] {
        let r = eph(&img.path, NO_TPM, extra);
        assert_eq!(r.exit(), Some(Exit::EphemeralRefused), "{extra:?}: {r:?}");
        assert!(
            r.stderr.contains(&format!(
                "ephemeral mode refused {}: it holds a persistent LUKS2 volume (1 keyslot(s)",
                img.path.display()
            )),
            "{r:?}"
        );
    }
    assert_eq!(img.sha256(), before);
    assert!(img.opens(b"correct horse battery staple"));
}

/// An enrolled volume (sealroot token and keyslots) is refused, and its
/// TPM unlock still works afterwards.
#[test]
fn guard_refuses_enrolled_volume_which_still_unlocks() {
    let tpm = Swtpm::start();
    let img = Image::new();
    let r = enroll(&tpm, &img, &["--no-recovery-key", "--pcrs", "7"]);
    r.assert_exit(Exit::Ok);
    let before = img.sha256();
    let r = eph(&img.path, &tpm.tcti(), &["--wipe-existing"]);
    r.assert_exit(Exit::EphemeralRefused);
    assert!(r.stderr.contains("with a sealroot token"), "{r:?}");
    assert_eq!(img.sha256(), before);
    let r = unlock(&tpm, &img, &[]);
    r.assert_exit(Exit::Ok);
}

/// A sealroot token on an otherwise keyless (even marked) header protects
/// it: a half-enrolled volume is not ephemeral.
#[test]
fn guard_refuses_sealroot_token_without_keyslot() {
    let dir = tempfile::tempdir().unwrap();
    let dev = blank(dir.path(), "eph.img", 32);
    eph(&dev, NO_TPM, &["--format-only"]).assert_exit(Exit::Ok);
    let tok = dir.path().join("tok.json");
    std::fs::write(&tok, r#"{"type":"sealroot","keyslots":[]}"#).unwrap();
    let out = Command::new("cryptsetup")
        .args(["token", "import", "--json-file"])
        .arg(&tok)
        .arg(&dev)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let before = sha(&dev);
    let r = eph(&dev, NO_TPM, &["--wipe-existing"]);
    r.assert_exit(Exit::EphemeralRefused);
    assert!(r.stderr.contains("sealroot token (0 keyslot(s))"), "{r:?}");
    assert_eq!(sha(&dev), before);
}

/// Filesystems and partition tables need the explicit declaration; with
/// it the device becomes an ephemeral volume.
#[test]
fn guard_filesystem_signatures_and_wipe_existing() {
    let dir = tempfile::tempdir().unwrap();
    let ext4 = blank(dir.path(), "ext4.img", 32);
    let out = Command::new("mkfs.ext4")
        .args(["-q", "-F"])
        .arg(&ext4)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    // An Azure resource disk: MBR with an NTFS partition boot sector at 1 MiB
    // is seen as the partition table; a bare NTFS boot sector as NTFS.
    let ntfs = blank(dir.path(), "ntfs.img", 32);
    let mut sector = vec![0u8; 512];
    sector[3..11].copy_from_slice(b"NTFS    ");
    sector[510] = 0x55;
    sector[511] = 0xaa;
    write_at(&ntfs, 0, &sector);
    let junk = blank(dir.path(), "junk.img", 32);
    write_at(&junk, 200_000, b"\x01\x02\x03");
    for (dev, what) in [
        (&ext4, "ext2/3/4 filesystem"),
        (&ntfs, "NTFS filesystem"),
        (&junk, "unrecognised non-zero data"),
    ] {
        let before = sha(dev);
        let r = eph(dev, NO_TPM, &["--format-only"]);
        r.assert_exit(Exit::EphemeralRefused);
        assert!(r.stderr.contains(what), "{what}: {r:?}");
        assert!(r.stderr.contains("set wipe-existing"), "{r:?}");
        assert_eq!(sha(dev), before, "{what}: refused device was modified");
        // --dry-run says what would happen and writes nothing.
        let r = eph(dev, NO_TPM, &["--dry-run", "--wipe-existing"]);
        r.assert_exit(Exit::Ok);
        assert!(r.stdout.contains("dry run, nothing written"), "{r:?}");
        assert_eq!(sha(dev), before);
        let r = eph(dev, NO_TPM, &["--format-only", "--wipe-existing"]);
        r.assert_exit(Exit::Ok);
        assert!(r.stderr.contains("destroying"), "{r:?}");
        let j = luks_json(dev);
        assert_eq!(j["keyslots"].as_object().unwrap().len(), 0);
        assert!(luks_dump(dev).contains("sealroot-ephemeral"));
    }
}

fn write_at(path: &Path, off: u64, data: &[u8]) {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(off)).unwrap();
    f.write_all(data).unwrap();
}

/// A LUKS2 header that is neither marked nor protected by keyslots or
/// tokens needs the declaration.
#[test]
fn guard_unmarked_keyless_luks2() {
    let dir = tempfile::tempdir().unwrap();
    let dev = blank(dir.path(), "k.img", 32);
    let img = Image::new();
    // A keyless volume of someone else: format with a key, kill the slot.
    std::fs::copy(&img.path, &dev).unwrap();
    let out = Command::new("cryptsetup")
        .args(["luksKillSlot", "-q"])
        .arg(&dev)
        .arg("0")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let r = eph(&dev, NO_TPM, &["--format-only"]);
    r.assert_exit(Exit::EphemeralRefused);
    assert!(r.stderr.contains("not \"sealroot-ephemeral\""), "{r:?}");
    let r = eph(&dev, NO_TPM, &["--format-only", "--wipe-existing"]);
    r.assert_exit(Exit::Ok);
}

/// With a TPM: two GetRandom (512 key bits, 256 per block) mixed in, the
/// event measured into the chosen PCR, and no object or NV index created.
#[test]
fn tpm_rng_mixing_and_measurement() {
    let tpm = Swtpm::start();
    let proxy = Proxy::start(tpm.port);
    let dir = tempfile::tempdir().unwrap();
    let dev = blank(dir.path(), "eph.img", 32);
    let r = eph(
        &dev,
        &proxy.tcti(),
        &["--format-only", "--measure-pcr", "13"],
    );
    r.assert_exit(Exit::Ok);
    assert!(
        r.stderr
            .contains("512 bits from the kernel RNG XORed with the TPM RNG"),
        "{r:?}"
    );
    let ccs: Vec<&str> = proxy.command_codes().into_iter().map(cc_name).collect();
    assert_eq!(
        ccs.iter().filter(|c| **c == "GetRandom").count(),
        2,
        "{ccs:?}"
    );
    assert_eq!(
        ccs.iter().filter(|c| **c == "PCR_Extend").count(),
        1,
        "{ccs:?}"
    );
    for bad in [
        "Create",
        "CreatePrimary",
        "EvictControl",
        "NV_DefineSpace",
        "NV_Write",
    ] {
        assert!(!ccs.contains(&bad), "{bad} sent: {ccs:?}");
    }
    // PCR 13 = extend(0, SHA-256 of the documented event text).
    let expected = sealroot::pcr::extend(
        &[0; 32],
        &sealroot::formats::ephemeral::event_digest("scratch", false),
    );
    let out = tpm.tpm2(&["pcrread", "sha256:13", "-o", p(&dir.path().join("pcr"))]);
    assert!(out.status.success());
    assert_eq!(std::fs::read(dir.path().join("pcr")).unwrap(), expected);
    for cap in ["handles-persistent", "handles-nv-index"] {
        let out = tpm.tpm2(&["getcap", cap]);
        assert!(
            String::from_utf8_lossy(&out.stdout).trim().is_empty(),
            "{cap}: {out:?}"
        );
    }
}

/// Without a TPM it works and says that only the kernel RNG was used; a
/// requested measurement is skipped with a warning.
#[test]
fn no_tpm_uses_the_kernel_rng_only() {
    let dir = tempfile::tempdir().unwrap();
    let dev = blank(dir.path(), "eph.img", 32);
    let r = eph(&dev, NO_TPM, &["--format-only", "--measure-pcr", "13"]);
    r.assert_exit(Exit::Ok);
    assert!(
        r.stderr.contains("no TPM (/nonexistent/tpmrm0 absent"),
        "{r:?}"
    );
    assert!(
        r.stderr
            .contains("512 bits from the kernel RNG only (no TPM RNG)"),
        "{r:?}"
    );
    assert!(r.stderr.contains("not measured into PCR 13"), "{r:?}");
    // An unreachable simulator counts as no TPM too, after --tpm-timeout.
    let r = sealroot(&[
        "ephemeral",
        "--device",
        p(&dev),
        "--name",
        "x",
        "--format-only",
        "--tcti",
        "swtpm:host=127.0.0.1,port=9",
        "--tpm-timeout",
        "0",
    ]);
    r.assert_exit(Exit::Ok);
    assert!(r.stderr.contains("kernel RNG only"), "{r:?}");
}

/// Bad options: `Exit::Usage`, nothing touched; a missing device: `Exit::Io`
/// with its path.
#[test]
fn bad_options() {
    let dir = tempfile::tempdir().unwrap();
    let dev = blank(dir.path(), "eph.img", 32);
    let before = sha(&dev);
    for (extra, msg) in [
        (
            &["--mkfs", "xfs"][..],
            "--mkfs <FS>': mkfs \"xfs\": use ext4 or none",
        ),
        (&["--measure-pcr", "15"], "PCR 15 is sealroot's unlock PCR"),
        (&["--measure-pcr", "23"], "use one of 8-14"),
        (&["--measure-pcr", "x"], "invalid value"),
        (&["--dry-run", "--format-only"], "cannot be used with"),
        (&["--tpm-timeout=-1"], "--tpm-timeout"),
    ] {
        let r = eph(&dev, NO_TPM, extra);
        assert_eq!(r.exit(), Some(Exit::Usage), "{extra:?}: {r:?}");
        assert!(r.stderr.contains(msg), "{extra:?}: {r:?}");
    }
    let r = sealroot(&["ephemeral", "--device", p(&dev), "--name", "a/b"]);
    r.assert_exit(Exit::Usage);
    assert!(r.stderr.contains("not a valid mapping name"), "{r:?}");
    let r = sealroot(&["ephemeral", "--device", p(&dev)]);
    r.assert_exit(Exit::Usage);
    assert_eq!(sha(&dev), before);
    let missing = dir.path().join("missing.img");
    let r = eph(&missing, NO_TPM, &[]);
    r.assert_exit(Exit::Io);
    assert!(r.stderr.contains(p(&missing)), "{r:?}");
}

/// `sealroot boot --dry-run` reads ephemeral lines from crypttab and the
/// kernel command line and applies the guard to them.
#[test]
fn boot_config_channels() {
    let dir = tempfile::tempdir().unwrap();
    let dev = blank(dir.path(), "eph.img", 32);
    let ext4 = blank(dir.path(), "ext4.img", 32);
    let out = Command::new("mkfs.ext4")
        .args(["-q", "-F"])
        .arg(&ext4)
        .output()
        .unwrap();
    assert!(out.status.success());
    let tab = dir.path().join("crypttab");
    let cmdline = dir.path().join("cmdline");
    let boot = |tab_text: &str, cmd: &str| {
        std::fs::write(&tab, tab_text).unwrap();
        std::fs::write(&cmdline, cmd).unwrap();
        Args::new("boot")
            .arg("--dry-run")
            .opt("crypttab", &tab)
            .opt("cmdline-file", &cmdline)
            .opt("tcti", NO_TPM)
            .run()
    };
    let r = boot(
        &format!("scratch {} none sealroot,sealroot-ephemeral\n", p(&dev)),
        "quiet",
    );
    r.assert_exit(Exit::Ok);
    assert!(r.stderr.contains("as /dev/mapper/scratch"), "{r:?}");
    assert!(r.stderr.contains("may be formatted (blank)"), "{r:?}");
    // The misconfigured crypttab of the issue: a persistent disk named ephemeral.
    let r = boot(
        &format!("scratch {} none sealroot,sealroot-ephemeral\n", p(&ext4)),
        "quiet",
    );
    r.assert_exit(Exit::EphemeralRefused);
    assert!(r.stderr.contains(p(&ext4)), "{r:?}");
    // The kernel command line alone, and its declaration.
    let r = boot(
        "",
        &format!("rd.sealroot.device={} rd.sealroot.ephemeral", p(&ext4)),
    );
    r.assert_exit(Exit::EphemeralRefused);
    let r = boot(
        "",
        &format!(
            "rd.sealroot.device={} rd.sealroot.ephemeral rd.sealroot.wipe-existing",
            p(&ext4)
        ),
    );
    r.assert_exit(Exit::Ok);
    assert!(r.stderr.contains("as /dev/mapper/ephemeral"), "{r:?}");
    // Errors name the option.
    let r = boot("", "rd.sealroot.device=/dev/x rd.sealroot.integrity");
    r.assert_exit(Exit::Usage);
    assert!(r.stderr.contains("need rd.sealroot.ephemeral"), "{r:?}");
    let r = boot(
        "s /dev/x none sealroot,sealroot-ephemeral,sealroot-mkfs=zfs\n",
        "",
    );
    r.assert_exit(Exit::Usage);
    assert!(r.stderr.contains("crypttab line 1"), "{r:?}");
}

/// Detaches a loop device on drop.
struct Loop(String);

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.0]).status();
    }
}

/// A block device that something holds (here: an exclusive open, as a
/// mount or a mapping would) is refused even with --wipe-existing, and
/// accepted once it is released. Needs loop devices (root), not
/// device-mapper.
#[test]
fn guard_refuses_a_device_in_use() {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = tempfile::tempdir().unwrap();
    let img = blank(dir.path(), "loop.img", 32);
    let out = Command::new("losetup")
        .args(["-f", "--show"])
        .arg(&img)
        .output()
        .unwrap();
    assert!(out.status.success(), "losetup: {out:?}");
    let dev = Loop(String::from_utf8(out.stdout).unwrap().trim().to_string());
    let held = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_EXCL)
        .open(&dev.0)
        .unwrap();
    let r = eph(Path::new(&dev.0), NO_TPM, &["--dry-run", "--wipe-existing"]);
    r.assert_exit(Exit::EphemeralRefused);
    assert!(r.stderr.contains("is in use (mounted"), "{r:?}");
    drop(held);
    let r = eph(Path::new(&dev.0), NO_TPM, &["--dry-run"]);
    r.assert_exit(Exit::Ok);
    assert!(r.stdout.contains("(blank)"), "{r:?}");
}

/// dm-verity for the read-only OS layer, checked without device-mapper:
/// `--verify` reads every block against the root hash.
#[test]
fn verity_verify_on_image_files() {
    let dir = tempfile::tempdir().unwrap();
    let os = blank(dir.path(), "os.img", 16);
    let out = Command::new("mkfs.ext4")
        .args(["-q", "-F"])
        .arg(&os)
        .output()
        .unwrap();
    assert!(out.status.success());
    let hash = dir.path().join("os.hash");
    let out = Command::new("veritysetup")
        .arg("format")
        .arg(&os)
        .arg(&hash)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let root = text
        .lines()
        .find_map(|l| l.strip_prefix("Root hash:"))
        .unwrap()
        .trim()
        .to_string();
    let verify = |data: &Path, hash: &Path, root: &str| {
        Args::new("verity")
            .opt("data-device", data)
            .opt("hash-device", hash)
            .opt("root-hash", root)
            .arg("--verify")
            .run()
    };
    let r = verify(&os, &hash, &root);
    r.assert_exit(Exit::Ok);
    assert!(
        r.stderr.contains("every block matches the root hash"),
        "{r:?}"
    );
    // Another root hash, one changed byte in the image, no hash device.
    let mut other = root.clone().into_bytes();
    other[0] = if other[0] == b'0' { b'1' } else { b'0' };
    let r = verify(&os, &hash, std::str::from_utf8(&other).unwrap());
    r.assert_exit(Exit::Luks);
    assert!(r.stderr.contains("does not match the root hash"), "{r:?}");
    write_at(&os, 8 << 20, b"X");
    let r = verify(&os, &hash, &root);
    r.assert_exit(Exit::Luks);
    let r = verify(&os, &os, &root);
    r.assert_exit(Exit::Luks);
    assert!(r.stderr.contains("not a dm-verity hash device"), "{r:?}");
    let r = verify(&os, &hash, "abcd");
    r.assert_exit(Exit::Usage);
    assert!(r.stderr.contains("expected 64 hex digits"), "{r:?}");
}

/// Where any 16-byte run of `key` occurs in `hay` (one pass, indexed by
/// the runs' first four bytes: the naive search per run is too slow in a
/// debug build for a whole process image).
#[cfg(feature = "test-hooks")]
fn key_run_in(hay: &[u8], key: &[u8]) -> Option<usize> {
    let mut index: std::collections::HashMap<[u8; 4], Vec<&[u8]>> = Default::default();
    for w in key.windows(16) {
        index.entry(w[..4].try_into().unwrap()).or_default().push(w);
    }
    (0..hay.len().saturating_sub(15)).find(|&i| {
        index
            .get(&hay[i..i + 4])
            .is_some_and(|runs| runs.iter().any(|r| &hay[i..i + 16] == *r))
    })
}

/// The ephemeral key (handed to the test by the test-only reveal hook) is
/// in no output and, at the test-only pause before exit, nowhere in the
/// process's memory: not whole, not any 16-byte run of it.
#[cfg(feature = "test-hooks")]
#[test]
fn no_copy_of_the_ephemeral_key_in_memory_or_logs() {
    use common::proxy::contains;
    let tpm = Swtpm::start();
    let dir = tempfile::tempdir().unwrap();
    let dev = blank(dir.path(), "eph.img", 17);
    let reveal = dir.path().join("reveal");
    std::fs::create_dir(&reveal).unwrap();
    let pause = dir.path().join("pause");
    let cmd = Args::new("ephemeral")
        .opt("device", &dev)
        .opt("name", "x")
        .arg("--format-only")
        .arg("-v")
        .opt("tcti", tpm.tcti())
        .env("SEALROOT_TEST_REVEAL_DIR", &reveal)
        .command();
    let (mem, out) = memory_at_pause(cmd, &pause);
    let key = revealed(&reveal, "ephemeral-key");
    assert_eq!(key.len(), 64);
    assert!(mem.len() > 1 << 20, "read {} bytes of memory", mem.len());
    // The search finds a run where there is one.
    let planted = [&[7u8; 1000][..], &key[20..37], &[9u8; 1000]].concat();
    assert_eq!(key_run_in(&planted, &key), Some(1000));
    // The scan can see what it looks for: the process's own arguments.
    assert!(
        contains(&mem, p(&dev).as_bytes()),
        "scan cannot see the arguments"
    );
    assert!(
        key_run_in(&mem, &key).is_none(),
        "16-byte run of the ephemeral key in process memory"
    );
    let logs = [out.stdout, out.stderr].concat();
    assert!(!contains(&logs, &key), "key in output");
    assert!(
        !contains(&logs, hex::encode(&key).as_bytes()),
        "key (hex) in output"
    );
    // And on the device only the header: no 16-byte run of the key.
    let img = std::fs::read(&dev).unwrap();
    assert!(
        key_run_in(&img, &key).is_none(),
        "16-byte run of the key on the device"
    );
    // Positive control: the revealed key is the volume key (the header's
    // digest accepts it, so a keyslot can be added with it).
    let vk = dir.path().join("vk");
    std::fs::write(&vk, &key).unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, b"pw").unwrap();
    let out = Command::new("cryptsetup")
        .args([
            "luksAddKey",
            "-q",
            "--pbkdf",
            "pbkdf2",
            "--pbkdf-force-iterations",
            "1000",
        ])
        .args(["--key-size", "512", "--volume-key-file"])
        .arg(&vk)
        .arg(&dev)
        .arg(&pw)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the revealed key is not the volume key: {out:?}"
    );
}

/// A volume sealroot formats has a random 512-bit volume key, so its LUKS2
/// digest gets the minimum PBKDF2 iteration count: stretching a random key
/// gains nothing and would cost every later key check (docs/performance.md).
#[test]
fn formatted_volumes_get_the_minimum_digest_iterations() {
    let dir = tempfile::tempdir().unwrap();
    let dev = blank(dir.path(), "eph.img", 32);
    eph(&dev, NO_TPM, &["--format-only"]).assert_exit(Exit::Ok);
    let json = luks_json(&dev);
    let digests = json["digests"].as_object().unwrap();
    assert_eq!(digests.len(), 1, "{json}");
    for d in digests.values() {
        assert_eq!(d["type"], "pbkdf2", "{d}");
        assert_eq!(d["iterations"], 1000, "{d}");
    }
}

/// A boot with only ephemeral volumes has no prompt to print, but the
/// initramfs scripts still fail closed as configured: `--print-config`
/// gives the first ephemeral volume's on-failure= (the command line's
/// refining it), and nothing for the volume variables.
#[test]
fn print_config_gives_the_ephemeral_on_failure() {
    let dir = tempfile::tempdir().unwrap();
    let tab = dir.path().join("crypttab");
    let cmdline = dir.path().join("cmdline");
    let config = |tab_text: &str, cmd: &str| {
        std::fs::write(&tab, tab_text).unwrap();
        std::fs::write(&cmdline, cmd).unwrap();
        Args::new("boot")
            .arg("--print-config")
            .opt("crypttab", &tab)
            .opt("cmdline-file", &cmdline)
            .run()
            .expect(Exit::Ok)
            .stdout
    };
    let line = "upper /dev/vdb none sealroot,sealroot-ephemeral";
    let r = config(
        &format!("{line},sealroot-on-failure=reboot\n"),
        "root=/dev/mapper/os\n",
    );
    assert!(r.starts_with("SEALROOT_NAME=''\n"), "{r}");
    assert!(r.contains("SEALROOT_ON_FAILURE='reboot'\n"), "{r}");
    let r = config(&format!("{line}\n"), "rd.sealroot.on-failure=reboot\n");
    assert!(r.contains("SEALROOT_ON_FAILURE='reboot'\n"), "{r}");
    // Not configured: empty (the scripts' default is poweroff).
    let r = config(&format!("{line}\n"), "\n");
    assert!(r.contains("SEALROOT_ON_FAILURE=''\n"), "{r}");
    // With a sealed volume, its own setting, whatever the ephemeral line says.
    let r = config(
        &format!("root UUID=0a1b none sealroot\n{line},sealroot-on-failure=reboot\n"),
        "\n",
    );
    assert!(r.starts_with("SEALROOT_NAME='root'\n"), "{r}");
    assert!(r.contains("SEALROOT_ON_FAILURE='poweroff'\n"), "{r}");
}
