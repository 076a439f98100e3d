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
use common::*;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

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
