//! `status` tells a token sealed under another TPM's storage key apart
//! from one this TPM can unseal.

mod common;
use common::*;
use sealroot::Exit;

#[test]
fn status_names_a_token_sealed_under_another_tpms_storage_key() {
    let a = Swtpm::start();
    let b = Swtpm::start();
    let img = Image::new();
    enroll(&a, &img, &["--no-recovery-key"]).assert_exit(Exit::Ok);
    let (_, j) = status_json(&a, &img);
    assert_eq!(j["tokens"][0]["verdict"], "ok", "{j}");
    // A TPM without an SRK at all.
    let (r, j) = status_json(&b, &img);
    let t = &j["tokens"][0];
    assert_eq!(t["verdict"], "foreign-tpm", "{r:?}");
    let why = t["problems"][0].as_str().unwrap();
    assert!(
        why.starts_with("sealed under another TPM's storage key"),
        "{r:?}"
    );
    assert!(why.contains("no storage root key at 0x81000001"), "{r:?}");
    // A TPM with an SRK of its own (made by enrolling another volume):
    // its PCRs are the same (all zero on both), yet it cannot unseal.
    enroll(&b, &Image::new(), &["--no-recovery-key"]).assert_exit(Exit::Ok);
    let (_, j) = status_json(&b, &img);
    let t = &j["tokens"][0];
    assert_eq!(t["verdict"], "foreign-tpm", "{j}");
    let why = t["problems"][0].as_str().unwrap();
    assert!(
        why.contains("sealed under another TPM's storage key (the token's SRK name"),
        "{why}"
    );
    let text = Args::new("status").on(&b, &img).run().expect(Exit::Ok);
    assert!(text.stdout.contains(": foreign-tpm, keyslot"), "{text:?}");
    assert!(
        text.stdout
            .contains("problem: sealed under another TPM's storage key"),
        "{text:?}"
    );
    // The unlock agrees: exit 8, the SRK is not the one pinned.
    unlock(&b, &img, &[]).assert_exit(Exit::TpmIdentity);
    let (_, j) = status_json(&a, &img);
    assert_eq!(j["tokens"][0]["verdict"], "ok", "{j}");
}
