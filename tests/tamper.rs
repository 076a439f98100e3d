//! Every single-byte corruption of the blob fails cleanly (no panic, the
//! documented exit code), and a first boot enrolls itself.

mod common;
use base64::Engine as _;
use common::*;
use sealroot::Exit;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

#[test]
fn flipping_any_byte_of_envelope_or_sealed_object_fails_cleanly() {
    let mut tpm = Swtpm::start();
    let img = Image::new();
    let bf = img.file("blob.json");
    enroll(&tpm, &img, &["--no-recovery-key", "--blob-file", p(&bf)]).assert_exit(Exit::Ok);
    let orig: serde_json::Value = serde_json::from_slice(&std::fs::read(&bf).unwrap()).unwrap();
    let bad = img.file("bad.json");
    std::fs::write(&bad, orig.to_string()).unwrap();
    let ok = unlock(&tpm, &img, &["--blob-file", p(&bad)]);
    assert_eq!(
        ok.exit(),
        Some(Exit::Ok),
        "unmodified blob must unlock: {ok:?}"
    );

    let mut runs = 0;
    for field in ["nonce", "ciphertext", "tpm_public", "tpm_private"] {
        let bytes = B64.decode(orig[field].as_str().unwrap()).unwrap();
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x5a;
            let mut v = orig.clone();
            v[field] = B64.encode(&b).into();
            std::fs::write(&bad, v.to_string()).unwrap();
            tpm.reboot();
            let r = unlock(&tpm, &img, &["--blob-file", p(&bad)]);
            assert_eq!(r.exit(), Some(Exit::BlobInvalid), "{field} byte {i}: {r:?}");
            assert!(r.stderr.contains("blob"), "{field} byte {i}: {r:?}");
            assert!(!r.stderr.contains("panicked"), "{r:?}");
            runs += 1;
        }
    }
    assert!(runs > 200, "only {runs} corruptions tried");
}

#[test]
fn first_boot_enrolls_with_the_provisioning_key_and_drops_it() {
    let mut tpm = Swtpm::start();
    let img = Image::with_passphrase(b"provisioning-key-shipped-in-the-image");
    // The image builder escrows its own recovery passphrase in keyslot 1.
    let rec = img.file("recovery");
    std::fs::write(&rec, "builder-recovery").unwrap();
    img.add_key(&rec);

    // A wrong provisioning key changes nothing.
    let wrong = img.file("wrong");
    std::fs::write(&wrong, "nope").unwrap();
    let r = unlock(&tpm, &img, &["--provision-key-file", p(&wrong)]);
    r.assert_exit(Exit::Luks);
    assert!(r.stderr.contains("provisioning key does not open"), "{r:?}");
    assert_eq!(img.keyslots(), vec![0, 1]);
    assert!(img.tokens().is_empty());

    tpm.reboot();
    let r = unlock(
        &tpm,
        &img,
        &["--provision-key-file", p(&img.key), "--pcrs", "0,7"],
    );
    r.assert_exit(Exit::Ok);
    assert!(r.stderr.contains("first boot"), "{r:?}");
    assert_eq!(img.keyslots(), vec![1, 2], "provisioning keyslot 0 removed");
    assert_eq!(img.tokens(), vec![0]);
    assert!(!img.opens(b"provisioning-key-shipped-in-the-image"));
    assert!(img.opens(b"builder-recovery"));
    // The first boot locked its PCR like any unlock.
    let again = unlock(&tpm, &img, &[]);
    again.assert_exit(Exit::PcrMismatch);

    // Later boots: the TPM alone (the provisioning key option is ignored
    // once a token exists).
    tpm.reboot();
    let r = unlock(&tpm, &img, &["--provision-key-file", p(&img.key)]);
    r.assert_exit(Exit::Ok);
    assert!(!r.stderr.contains("first boot"), "{r:?}");
}
