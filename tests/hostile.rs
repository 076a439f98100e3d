//! A hostile host rewrites the LUKS2 header (it owns every byte of the
//! disk): sealroot refuses a header outside its allow-list before the TPM
//! unseals anything, names the field, and activates from the copy it
//! checked, not from whatever the disk says later.
//!
//! The rewrites (tests/common/luks2edit.rs) are proved with the cryptsetup
//! CLI first, independently of sealroot.

mod common;
use base64::Engine as _;
use common::luks2edit::{self, Header};
use common::proxy::{cc_name, Proxy};
use common::*;
use sealroot::Exit;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CC_UNSEAL: u32 = 0x15E;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The volume key that the passphrase in `key_file` opens, as cryptsetup
/// prints it.
fn volume_key(img: &Path, key_file: &Path) -> Option<Vec<u8>> {
    let out = Command::new("cryptsetup")
        .args([
            "luksDump",
            "--dump-volume-key",
            "--batch-mode",
            "--key-file",
        ])
        .arg(key_file)
        .arg(img)
        .output()
        .unwrap();
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).unwrap();
    let mut hex = String::new();
    let mut inside = false;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("MK dump:") {
            inside = true;
            hex.push_str(rest);
        } else if inside && line.starts_with(char::is_whitespace) {
            hex.push_str(line);
        } else {
            inside = false;
        }
    }
    hex.retain(|c| !c.is_whitespace());
    assert!(!hex.is_empty(), "no MK dump in {text}");
    Some(hex::decode(hex).unwrap())
}

/// `cryptsetup open --test-passphrase` with `pass` (exact bytes), on
/// `slot` or any keyslot.
fn test_passphrase(img: &Image, pass: &[u8], slot: Option<u32>) -> bool {
    let kf = img.file("probe.key");
    std::fs::write(&kf, pass).unwrap();
    let mut c = Command::new("cryptsetup");
    c.args(["open", "--test-passphrase", "--key-file"]).arg(&kf);
    if let Some(s) = slot {
        c.arg("--key-slot").arg(s.to_string());
    }
    let st = c.arg(&img.path).stderr(Stdio::null()).status().unwrap();
    std::fs::remove_file(&kf).unwrap();
    st.success()
}

/// Does cryptsetup load the header at all (both copies, its own checks)?
fn cryptsetup_loads(img: &Image) -> Result<String, String> {
    let out = Command::new("cryptsetup")
        .arg("luksDump")
        .arg(&img.path)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

/// The keyslot the (only) sealroot token names.
fn token_keyslot(img: &Image) -> u32 {
    let j = img.json();
    let toks: Vec<&serde_json::Value> = j["tokens"]
        .as_object()
        .unwrap()
        .values()
        .filter(|t| t["type"] == "sealroot")
        .collect();
    assert_eq!(toks.len(), 1, "{j}");
    toks[0]["keyslots"][0].as_str().unwrap().parse().unwrap()
}

fn attacker_key() -> Vec<u8> {
    luks2edit::random(64)
}

// --- The rewriter, proved with cryptsetup -----------------------------------

#[test]
fn af_split_merges_back_and_pbkdf2_matches_rfc_vectors() {
    let key = luks2edit::random(64);
    let split = luks2edit::af_split(&key, 4000);
    assert_eq!(split.len(), 64 * 4000);
    assert_eq!(luks2edit::af_merge(&split, 64), key);
    // RFC 7914 section 11, PBKDF2-HMAC-SHA256 (first 32 bytes).
    assert_eq!(
        hex::encode(luks2edit::pbkdf2_sha256(b"passwd", b"salt", 1)),
        "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
    );
    assert_eq!(
        hex::encode(luks2edit::pbkdf2_sha256(b"Password", b"NaCl", 80000)),
        "4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56"
    );
}

#[test]
fn rewriting_an_unchanged_header_keeps_it_valid_and_bumps_seqid() {
    let img = Image::new();
    let before = volume_key(&img.path, &img.key).unwrap();
    let h = Header::read(&img.path);
    h.write(&img.path);
    let after = Header::read(&img.path);
    assert_eq!(after.seqid(), h.seqid() + 1);
    assert_eq!(after.json, h.json);
    assert_eq!(Header::read_secondary_json(&img.path), h.json);
    cryptsetup_loads(&img).unwrap();
    assert!(img.opens(b"correct horse battery staple"));
    assert_eq!(volume_key(&img.path, &img.key).unwrap(), before);
}

/// Whether this kernel lets userspace use its crypto API (AF_ALG), which
/// is where libcryptsetup finds `ecb(cipher_null)`: its OpenSSL fallback
/// has no null cipher, so without AF_ALG no cipher_null keyslot opens.
fn kernel_crypto_api() -> bool {
    // SAFETY: socket(2) with constant arguments; the descriptor, if any, is
    // closed right away and never used otherwise.
    unsafe {
        let fd = libc::socket(libc::AF_ALG, libc::SOCK_SEQPACKET, 0);
        if fd >= 0 {
            libc::close(fd);
        }
        fd >= 0
    }
}

/// The rewriter's keyslot, AF split, digest and KDF as cryptsetup reads
/// them: keyslot 0 re-planted with a chosen key under a chosen passphrase
/// (area encryption aes-ecb, encrypted by the openssl CLI under the
/// PBKDF2 key computed here). The null-cipher rewrite differs from this
/// one only in the area's cipher, which is the identity.
#[test]
fn planted_keyslot_opens_with_its_passphrase_to_the_chosen_key() {
    let img = Image::new();
    let real = volume_key(&img.path, &img.key).unwrap();
    let mine = attacker_key();
    let pass = b"the host's own passphrase";
    luks2edit::plant_key(&img.path, 0, &mine, "aes-ecb", 32, |ks, split| {
        let kdf = &ks["kdf"];
        assert_eq!(kdf["type"], "pbkdf2");
        assert_eq!(kdf["hash"], "sha256");
        let salt = B64.decode(kdf["salt"].as_str().unwrap()).unwrap();
        let iterations = kdf["iterations"].as_u64().unwrap() as u32;
        let k = luks2edit::pbkdf2_sha256(pass, &salt, iterations);
        let mut c = Command::new("openssl")
            .args(["enc", "-aes-256-ecb", "-nopad", "-K", &hex::encode(k)])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = c.stdin.take().unwrap();
        let w = std::thread::spawn(move || stdin.write_all(&split).unwrap());
        let out = c.wait_with_output().unwrap();
        w.join().unwrap();
        assert!(out.status.success());
        out.stdout
    });
    let dump = cryptsetup_loads(&img).unwrap();
    assert!(dump.contains("aes-ecb"), "{dump}");
    assert!(test_passphrase(&img, pass, Some(0)));
    assert!(!test_passphrase(
        &img,
        b"correct horse battery staple",
        None
    ));
    let kf = img.file("host.key");
    std::fs::write(&kf, pass).unwrap();
    let got = volume_key(&img.path, &kf).unwrap();
    assert_eq!(got, mine);
    assert_ne!(got, real);
}

#[test]
fn null_cipher_keyslot_opens_with_any_passphrase_to_the_chosen_key() {
    let img = Image::new();
    let real = volume_key(&img.path, &img.key).unwrap();
    assert!(!test_passphrase(&img, b"anything at all", Some(0)));
    let mine = attacker_key();
    luks2edit::null_cipher_keyslot(&img.path, 0, &mine);

    let dump = cryptsetup_loads(&img).unwrap();
    assert!(dump.contains("cipher_null-ecb"), "{dump}");
    if !kernel_crypto_api() {
        // libcryptsetup cannot read a cipher_null area here at all (it
        // reports EOPNOTSUPP); the layout is proved by the planted-keyslot
        // test above, the cipher_null part needs AF_ALG.
        let out = Command::new("cryptsetup")
            .args(["open", "--test-passphrase", "--debug", "--key-slot", "0"])
            .arg("--key-file")
            .arg(&img.key)
            .arg(&img.path)
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&out.stdout);
        assert!(log.contains("open failed with -95"), "{log}");
        eprintln!(
            "NOTE: no AF_ALG in this kernel: cryptsetup cannot open cipher_null keyslots; \
             the any-passphrase check of the null-cipher keyslot did not run"
        );
        return;
    }
    for pass in [
        &b"anything at all"[..],
        b"x",
        b"correct horse battery staple",
    ] {
        assert!(test_passphrase(&img, pass, Some(0)), "{pass:?}");
    }
    let other = img.file("other.key");
    std::fs::write(&other, "not the passphrase").unwrap();
    let got = volume_key(&img.path, &other).unwrap();
    assert_eq!(got, mine);
    assert_ne!(got, real);
}

#[test]
fn forged_keyslot_opens_with_no_passphrase() {
    let img = Image::new();
    luks2edit::forged_keyslot(&img.path, 0, &attacker_key());
    cryptsetup_loads(&img).unwrap();
    assert!(!test_passphrase(
        &img,
        b"correct horse battery staple",
        Some(0)
    ));
    assert!(!test_passphrase(&img, b"anything at all", None));
}

#[test]
fn mutations_write_headers_with_valid_checksums() {
    type Mutation = fn(&Path);
    let cases: [(&str, Mutation); 6] = [
        ("null cipher segment", luks2edit::null_cipher_segment),
        ("argon2 keyslot", |p| {
            luks2edit::argon2_keyslot(p, 0, 4194304, 1000)
        }),
        ("second segment", luks2edit::second_segment),
        ("requirement flag", luks2edit::requirement_flag),
        ("keyslot area outside", |p| {
            luks2edit::keyslot_area_outside(p, 0)
        }),
        ("disagreeing copies", |p| {
            luks2edit::disagreeing_copies(p, 0)
        }),
    ];
    for (name, mutate) in cases {
        let img = Image::new();
        let before = Header::read(&img.path);
        mutate(&img.path);
        // Header::read checks both magics and checksums.
        let after = Header::read(&img.path);
        assert_eq!(after.seqid(), before.seqid() + 1, "{name}");
        let secondary = Header::read_secondary_json(&img.path);
        if name == "disagreeing copies" {
            assert_eq!(after.json, before.json, "{name}");
            assert_ne!(secondary, after.json, "{name}");
        } else {
            assert_ne!(after.json, before.json, "{name}");
            assert_eq!(secondary, after.json, "{name}");
        }
        // What cryptsetup itself makes of it (informational: sealroot must
        // refuse every one of them whatever libcryptsetup would do).
        match cryptsetup_loads(&img) {
            Ok(_) => eprintln!("{name}: cryptsetup loads the header"),
            Err(e) => eprintln!("{name}: cryptsetup refuses the header: {}", e.trim()),
        }
    }
    let img = Image::new();
    luks2edit::null_cipher_segment(&img.path);
    let dump = cryptsetup_loads(&img).unwrap();
    assert!(dump.contains("cipher_null-ecb"), "{dump}");
    let img = Image::new();
    luks2edit::requirement(&img.path, "sealroot-test-feature");
    let dump = cryptsetup_loads(&img).unwrap();
    assert!(dump.contains("sealroot-test-feature"), "{dump}");
}

// --- sealroot against the rewritten headers ---------------------------------

/// An enrolled image, its TPM, and the keyslot its token names.
struct Enrolled {
    tpm: Swtpm,
    img: Image,
    slot: u32,
    /// The real volume key (cryptsetup, with the image's passphrase).
    key: Vec<u8>,
}

fn enrolled() -> Enrolled {
    let tpm = Swtpm::start();
    let img = Image::new();
    enroll(&tpm, &img, &[]).expect(Exit::Ok);
    let slot = token_keyslot(&img);
    let key = volume_key(&img.path, &img.key).unwrap();
    Enrolled {
        tpm,
        img,
        slot,
        key,
    }
}

/// `unlock --dry-run` with a recording proxy in front of the TPM.
fn unlock_args(e: &Enrolled, proxy: &Proxy) -> Args {
    Args::new("unlock")
        .on_tcti(&proxy.tcti(), &e.img)
        .opt("name", "sealroot-test")
        .arg("--dry-run")
}

/// One proxied `unlock --dry-run`: the run, its wall time, the TPM command
/// codes it sent.
fn unlock_proxied(e: &Enrolled, reveal: Option<&Path>) -> (Run, Duration, Vec<u32>) {
    let proxy = Proxy::start(e.tpm.port);
    let mut args = unlock_args(e, &proxy);
    if let Some(d) = reveal {
        args = args.env("SEALROOT_TEST_REVEAL_DIR", d);
    }
    let (r, took) = run_bounded(&args, Duration::from_secs(10));
    (r, took, proxy.command_codes())
}

/// Run `args` to completion, or kill it (by PID) after `limit`: a refused
/// header must not cost the boot a KDF the host chose.
fn run_bounded(args: &Args, limit: Duration) -> (Run, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let t = Instant::now();
    let mut child = args
        .command()
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if t.elapsed() > limit {
            child.kill().unwrap();
            child.wait().unwrap();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let took = t.elapsed();
    let mut stderr = std::fs::read_to_string(&err).unwrap();
    if status.is_none() {
        stderr += &format!("[test: killed after {limit:?}]\n");
    }
    let r = Run {
        code: status.and_then(|s| s.code()).unwrap_or(-1),
        stdout: std::fs::read_to_string(&out).unwrap(),
        stderr,
    };
    (r, took)
}

fn names(cmds: &[u32]) -> Vec<&'static str> {
    cmds.iter().map(|&c| cc_name(c)).collect()
}

/// The control (the enrolled image unlocks, and the proxy sees the Unseal),
/// a reboot, `mutate`, then the run under test: refused with
/// `Exit::VolumeRefused` in under a second, without any Unseal reaching the
/// TPM. Returns that run (for the field it names) and the token's keyslot.
fn refused_before_unseal(mutate: impl FnOnce(&Enrolled)) -> (Run, u32) {
    let mut e = enrolled();
    let (ok, _, cmds) = unlock_proxied(&e, None);
    ok.assert_exit(Exit::Ok);
    assert!(
        cmds.contains(&CC_UNSEAL),
        "control: the proxy should see the Unseal: {:?}",
        names(&cmds)
    );
    e.tpm.reboot();
    mutate(&e);
    let (r, mut took, cmds) = unlock_proxied(&e, None);
    r.assert_exit(Exit::VolumeRefused);
    assert!(!r.stderr.contains("panicked"), "{r:?}");
    // The fastest of up to three runs (each locks PCR 15 again, harmlessly):
    // a stall the header asks for costs every run; a busy test machine
    // only some.
    for _ in 0..2 {
        if took < Duration::from_secs(1) {
            break;
        }
        let (again, t, _) = unlock_proxied(&e, None);
        again.assert_exit(Exit::VolumeRefused);
        took = took.min(t);
    }
    assert!(
        took < Duration::from_secs(1),
        "refused after {took:?}: {r:?}"
    );
    assert!(
        !cmds.contains(&CC_UNSEAL),
        "unsealed for a refused header: {:?}\n{r:?}",
        names(&cmds)
    );
    (r, e.slot)
}

#[track_caller]
fn assert_names(r: &Run, words: &[&str]) {
    for w in words {
        assert!(r.stderr.contains(w), "stderr should name {w:?}: {r:?}");
    }
}

#[test]
fn null_cipher_segment_is_refused_before_unseal() {
    let (r, _) = refused_before_unseal(|e| luks2edit::null_cipher_segment(&e.img.path));
    assert_names(&r, &["segments.0.encryption", "cipher_null-ecb"]);
}

#[test]
fn expensive_argon2_keyslot_is_refused_before_unseal() {
    let (r, slot) =
        refused_before_unseal(|e| luks2edit::argon2_keyslot(&e.img.path, e.slot, 4194304, 1000));
    assert_names(&r, &[&format!("keyslots.{slot}.kdf.")]);
}

#[test]
fn second_segment_is_refused_before_unseal() {
    let (r, _) = refused_before_unseal(|e| luks2edit::second_segment(&e.img.path));
    assert_names(&r, &["segments"]);
}

#[test]
fn reencryption_requirement_is_refused_before_unseal() {
    let (r, _) = refused_before_unseal(|e| luks2edit::requirement_flag(&e.img.path));
    assert_names(
        &r,
        &["config.requirements.mandatory", "online-reencrypt-v2"],
    );
}

#[test]
fn unknown_requirement_is_refused_before_unseal() {
    // A header cryptsetup itself loads (tests above).
    let (r, _) =
        refused_before_unseal(|e| luks2edit::requirement(&e.img.path, "sealroot-test-feature"));
    assert_names(&r, &["config.requirements.mandatory"]);
}

#[test]
fn keyslot_area_outside_the_keyslots_area_is_refused_before_unseal() {
    let (r, slot) = refused_before_unseal(|e| luks2edit::keyslot_area_outside(&e.img.path, e.slot));
    assert_names(&r, &[&format!("keyslots.{slot}.area.")]);
}

#[test]
fn disagreeing_header_copies_are_refused_before_unseal() {
    let (r, _) = refused_before_unseal(|e| luks2edit::disagreeing_copies(&e.img.path, e.slot));
    assert!(
        r.stderr.contains("secondary") || r.stderr.contains("differ"),
        "stderr should name the secondary copy: {r:?}"
    );
}

/// The attack the allow-list exists for: the token's keyslot made a
/// cipher_null keyslot holding the host's own volume key, which any
/// unsealed secret would "open" (libcryptsetup with AF_ALG), handing the
/// boot a root file system the host wrote.
#[test]
fn null_cipher_keyslot_with_the_hosts_key_is_refused_before_unseal() {
    let mine = attacker_key();
    let (r, slot) =
        refused_before_unseal(|e| luks2edit::null_cipher_keyslot(&e.img.path, e.slot, &mine));
    assert_names(
        &r,
        &[
            &format!("keyslots.{slot}.area.encryption"),
            "cipher_null-ecb",
        ],
    );
}

/// Without the null cipher the host cannot plant its key: it cannot
/// encrypt under a key derived from the secret, so the keyslot opens to
/// nothing and the unlock fails; no volume key is ever the host's.
#[test]
fn forged_keyslot_with_the_hosts_key_never_yields_it() {
    let mut e = enrolled();
    let reveal = tempfile::tempdir().unwrap();
    let (ok, _, _) = unlock_proxied(&e, Some(reveal.path()));
    ok.assert_exit(Exit::Ok);
    // Control: the reveal hook hands over the key the unlock used.
    assert_eq!(revealed(reveal.path(), "volume-key"), e.key);
    std::fs::remove_file(reveal.path().join("volume-key")).unwrap();

    e.tpm.reboot();
    let mine = attacker_key();
    luks2edit::forged_keyslot(&e.img.path, e.slot, &mine);
    let (r, _, _) = unlock_proxied(&e, Some(reveal.path()));
    assert_ne!(r.exit(), Some(Exit::Ok), "{r:?}");
    assert!(r.exit().is_some(), "undocumented exit: {r:?}");
    assert!(!r.stderr.contains("panicked"), "{r:?}");
    if reveal.path().join("volume-key").exists() {
        assert_ne!(revealed(reveal.path(), "volume-key"), mine, "{r:?}");
    }
}

/// Swap between check and use: the host rewrites the header on disk after
/// sealroot checked it (the token's keyslot becomes a null-cipher keyslot
/// holding the host's key, elsewhere in the keyslots area). sealroot
/// activates from the copy it checked: the unlock succeeds, with the real
/// volume key.
#[test]
fn header_rewritten_after_the_check_is_not_used() {
    header_rewritten_at("unlock:header-checked");
}

/// Between the read of the metadata and the read of the keyslot areas: the
/// copy keeps the metadata that was checked (a newer secondary header on
/// the disk, with a higher seqid, must not reach libcryptsetup).
#[test]
fn header_rewritten_between_its_metadata_and_its_areas_is_not_used() {
    header_rewritten_at("header:metadata-read");
}

/// Pause the unlock at `step`, rewrite the token's keyslot on the disk to
/// a null-cipher one holding the host's key, resume: the unlock succeeds
/// with the real volume key, from the checked copy.
fn header_rewritten_at(step: &str) {
    let e = enrolled();
    let reveal = tempfile::tempdir().unwrap();
    let pause = e.img.file("pause");
    let proxy = Proxy::start(e.tpm.port);
    let (out, err) = (e.img.file("stdout"), e.img.file("stderr"));
    let mut child = unlock_args(&e, &proxy)
        .env("SEALROOT_TEST_PAUSE_AT", step)
        .env("SEALROOT_TEST_PAUSE_FILE", &pause)
        .env("SEALROOT_TEST_REVEAL_DIR", reveal.path())
        .command()
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let output = |what: &str| {
        format!(
            "{what}\n--- stdout\n{}--- stderr\n{}",
            std::fs::read_to_string(&out).unwrap(),
            std::fs::read_to_string(&err).unwrap()
        )
    };
    let t = Instant::now();
    while !pause.exists() {
        if let Some(st) = child.try_wait().unwrap() {
            panic!("{}", output(&format!("exited ({st}) without pausing")));
        }
        assert!(t.elapsed() < Duration::from_secs(20), "never paused");
        std::thread::sleep(Duration::from_millis(5));
    }
    let cmds = proxy.command_codes();
    assert!(
        !cmds.contains(&CC_UNSEAL),
        "{}",
        output(&format!(
            "paused after the Unseal, not between header check and use: {:?}",
            names(&cmds)
        ))
    );

    let mine = attacker_key();
    luks2edit::null_cipher_keyslot(&e.img.path, e.slot, &mine);
    let on_disk = Header::read(&e.img.path);
    assert_eq!(
        on_disk.json["keyslots"][e.slot.to_string()]["area"]["encryption"],
        "cipher_null-ecb"
    );

    std::fs::remove_file(&pause).unwrap();
    // The test-hooks build pauses again before it exits (same file).
    let t = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if pause.exists() {
            let _ = std::fs::remove_file(&pause);
        }
        assert!(t.elapsed() < Duration::from_secs(30), "never finished");
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(status.code(), Some(0), "{}", output("unlock failed"));
    assert!(proxy.command_codes().contains(&CC_UNSEAL));
    let used = revealed(reveal.path(), "volume-key");
    assert_ne!(used, mine, "{}", output("unlocked with the host's key"));
    assert_eq!(used, e.key, "{}", output("unlocked with another key"));
}

/// The host can name any token type in the header, and libcryptsetup
/// loads `libcryptsetup-token-<type>.so` for it from the initrd's library
/// directory. sealroot turns external token handlers off: they never load.
#[test]
fn foreign_token_plugins_are_never_loaded() {
    let plugin = "/usr/lib/x86_64-linux-gnu/cryptsetup/libcryptsetup-token-systemd-tpm2.so";
    if !Path::new(plugin).exists() {
        panic!("{plugin} is missing: install systemd (Debian 12 ships the plugin with it)");
    }
    let e = enrolled();
    let tok = e.img.file("systemd.json");
    std::fs::write(
        &tok,
        r#"{"type":"systemd-tpm2","keyslots":[],"tpm2-blob":"AAAA","tpm2-pcrs":[7],"tpm2-pcr-bank":"sha256","tpm2-primary-alg":"ecc","tpm2-policy-hash":"00","tpm2-pin":false}"#,
    )
    .unwrap();
    let out = Command::new("cryptsetup")
        .args(["token", "import", "--json-file"])
        .arg(&tok)
        .arg(&e.img.path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    // Control: libcryptsetup does load the plugin for this token, and the
    // loader's trace shows it.
    let dump = Command::new("cryptsetup")
        .arg("luksDump")
        .arg(&e.img.path)
        .env("LD_DEBUG", "files")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&dump.stderr).contains("libcryptsetup-token-systemd-tpm2"),
        "the control did not see the plugin load"
    );
    let unlock = Args::new("unlock")
        .on(&e.tpm, &e.img)
        .opt("name", "x")
        .arg("--dry-run");
    let status = Args::new("status")
        .opt("device", &e.img.path)
        .opt("tcti", e.tpm.tcti());
    for (cmd, args) in [("unlock", unlock), ("status", status)] {
        let r = args.env("LD_DEBUG", "files").run();
        r.assert_exit(Exit::Ok);
        let loads: Vec<&str> = r
            .stderr
            .lines()
            .filter(|l| l.contains("libcryptsetup-token-"))
            .collect();
        assert!(loads.is_empty(), "{cmd} loaded a token plugin: {loads:?}");
    }
}
