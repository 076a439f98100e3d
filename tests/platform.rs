//! SEV-SNP platform verification through a real TPM (issue 6): a swtpm per
//! test whose NV index 0x01400001 holds the Azure sample HCL report (as the
//! paravisor leaves it on an Azure confidential VM), the real binary, and
//! LUKS2 image files.

mod common;
use common::*;
use sealroot::Exit;
use std::path::{Path, PathBuf};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/snp");
/// Launch measurement and reported TCB of the sample HCL report's SNP report.
const HCL_MEASUREMENT: &str = "5a71e4ba7e0b83e44c8e853130a65557db0a7782cdb2d906c54b0bf5878202805ab159bfe0cf7d5749aa6f62b7094508";
const HCL_TCB: &str = "bootloader=3,tee=0,snp=8,microcode=115";
const OTHER_MEASUREMENT: &str = "7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95b9c480cd81841f";

fn fixture(name: &str) -> PathBuf {
    Path::new(FIXTURES).join(name)
}

/// Define NV index 0x01400001 (2048 bytes, owner read/write) and write the
/// sample HCL report into it in chunks of at most 1024 bytes.
fn provision_hcl(tpm: &Swtpm, dir: &Path) {
    let report = std::fs::read(fixture("hcl-report-snp.bin")).unwrap();
    assert_eq!(report.len(), 2048);
    tpm.tpm2(&[
        "nvdefine",
        "0x01400001",
        "-C",
        "o",
        "-s",
        "2048",
        "-a",
        "ownerread|ownerwrite|authread|authwrite",
    ]);
    for (i, chunk) in report.chunks(1024).enumerate() {
        let f = dir.join(format!("hcl.{i}"));
        std::fs::write(&f, chunk).unwrap();
        let off = (i * 1024).to_string();
        tpm.tpm2(&[
            "nvwrite",
            "0x01400001",
            "-C",
            "o",
            "--offset",
            &off,
            "-i",
            f.to_str().unwrap(),
        ]);
    }
    // What the TPM now returns is byte for byte the sample.
    let back = dir.join("hcl.back");
    tpm.tpm2(&[
        "nvread",
        "0x01400001",
        "-C",
        "o",
        "-o",
        back.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read(back).unwrap(), report);
}

/// Persist a fresh RSA key at 0x81000003 (not the sample's HCLAkPub).
fn provision_foreign_ak(tpm: &Swtpm, dir: &Path) {
    let ctx = dir.join("ak.ctx");
    tpm.tpm2(&[
        "createprimary",
        "-C",
        "o",
        "-G",
        "rsa2048",
        "-c",
        ctx.to_str().unwrap(),
    ]);
    tpm.tpm2(&[
        "evictcontrol",
        "-C",
        "o",
        "-c",
        ctx.to_str().unwrap(),
        "0x81000003",
    ]);
    // No resource manager in front of swtpm: unload the transient copies.
    tpm.tpm2(&["flushcontext", "-t"]);
}

/// Options that keep the bare-SNP and TDX probes off this machine's devices.
fn no_devices(img: &Image) -> Vec<String> {
    vec![
        "--sev-guest".into(),
        img.file("no-sev-guest").display().to_string(),
    ]
}

fn platform_cmd(tpm: &Swtpm, img: &Image, extra: &[&str]) -> Run {
    Args::new("platform")
        .opt("tcti", tpm.tcti())
        .opt("tdx-guest", img.file("no-tdx-guest"))
        .args(no_devices(img))
        .args(extra)
        .run()
}

fn unlock_nodev(tpm: &Swtpm, img: &Image, extra: &[&str]) -> Run {
    let nodev = no_devices(img);
    let mut args: Vec<&str> = nodev.iter().map(String::as_str).collect();
    args.extend_from_slice(extra);
    unlock(tpm, img, &args)
}

const MATCHING: &[&str] = &[
    "--require-snp",
    "--snp-measurement",
    HCL_MEASUREMENT,
    "--snp-min-tcb",
    HCL_TCB,
    "--snp-policy-forbid",
    "migrate-ma",
    // The sample's VCEK is not published with it: its chip's VCEK would be
    // fetched from AMD KDS on real hardware (docs/platform.md).
    "--snp-unsigned-ok",
];

fn json(r: &Run) -> serde_json::Value {
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {r:?}"))
}

fn check<'a>(j: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    j["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == name)
        .unwrap_or_else(|| panic!("no {name} check in {j:#}"))
}

#[test]
fn platform_reports_the_hcl_report_and_passes_a_matching_policy() {
    let tpm = Swtpm::start();
    let img = Image::new();
    provision_hcl(&tpm, img.dir.path());
    let mut args = vec!["--json"];
    args.extend_from_slice(MATCHING);
    let r = platform_cmd(&tpm, &img, &args);
    r.assert_exit(Exit::Ok);
    let j = json(&r);
    assert_eq!(j["platform"], "sev-snp");
    assert_eq!(
        j["source"], "Azure vTPM HCL report (NV index 0x01400001)",
        "{j:#}"
    );
    assert_eq!(j["report"]["measurement"], HCL_MEASUREMENT);
    assert_eq!(j["report"]["vmpl"], 0);
    assert_eq!(j["report"]["debug_allowed"], false);
    assert_eq!(j["report"]["reported_tcb"]["snp"], 8);
    assert_eq!(j["vm_configuration"]["secure-boot"], true);
    assert_eq!(j["verdict"], "pass");
    assert_eq!(check(&j, "hcl-binding")["status"], "pass");
    assert_eq!(check(&j, "measurement")["status"], "pass");
    assert_eq!(check(&j, "tcb")["status"], "pass");
    assert_eq!(check(&j, "debug")["status"], "pass");
    assert_eq!(check(&j, "guest-policy")["status"], "pass");
    // No key at 0x81000003 here: nothing to compare HCLAkPub with.
    assert_eq!(check(&j, "attestation-key")["status"], "skipped");
    assert_eq!(check(&j, "signature")["status"], "skipped");

    // Text form, and no policy at all: the facts, verdict "no-policy".
    let r = platform_cmd(&tpm, &img, &[]);
    r.assert_exit(Exit::Ok);
    assert!(r.stdout.starts_with("platform: AMD SEV-SNP"), "{r:?}");
    assert!(r.stdout.contains(HCL_MEASUREMENT), "{r:?}");
    assert!(r.stdout.contains("verdict: no-policy"), "{r:?}");
}

#[test]
fn platform_refuses_a_policy_with_another_measurement() {
    let tpm = Swtpm::start();
    let img = Image::new();
    provision_hcl(&tpm, img.dir.path());
    let r = platform_cmd(
        &tpm,
        &img,
        &[
            "--require-snp",
            "--snp-measurement",
            OTHER_MEASUREMENT,
            "--snp-unsigned-ok",
        ],
    );
    r.assert_exit(Exit::Platform);
    assert!(r.stdout.contains("verdict: fail"), "{r:?}");
    assert!(
        r.stderr.contains(
            "platform verification failed: measurement check failed: launch measurement 5a71e4ba"
        ),
        "{r:?}"
    );
    // Requiring a signature without any VCEK fails on that, first.
    let r = platform_cmd(&tpm, &img, &["--require-snp"]);
    r.assert_exit(Exit::Platform);
    assert!(
        r.stderr.contains("vcek check failed: no VCEK was given"),
        "{r:?}"
    );
    // A VCEK for another chip (certs.pem) does not help.
    let certs = fixture("certs.pem");
    let r = platform_cmd(
        &tpm,
        &img,
        &["--require-snp", "--snp-vcek", certs.to_str().unwrap()],
    );
    // certs.pem holds a VCEK, an ASK and an ARK: not all are VCEKs.
    r.assert_exit(Exit::Platform);
    assert!(r.stderr.contains("vcek check failed: VCEK #2"), "{r:?}");
    let vcek = img.file("other-vcek.pem");
    let pem = std::fs::read_to_string(&certs).unwrap();
    let first = pem
        .split_inclusive("-----END CERTIFICATE-----")
        .next()
        .unwrap();
    std::fs::write(&vcek, first.trim_start()).unwrap();
    let r = platform_cmd(
        &tpm,
        &img,
        &["--require-snp", "--snp-vcek", vcek.to_str().unwrap()],
    );
    r.assert_exit(Exit::Platform);
    assert!(
        r.stderr
            .contains("vcek check failed: no VCEK for this chip (3a5d5b1d059d193e…)"),
        "{r:?}"
    );
}

#[test]
fn enrolled_snp_requirement_unlocks_on_the_matching_platform() {
    let tpm = Swtpm::start();
    let img = Image::new();
    provision_hcl(&tpm, img.dir.path());
    let mut args = vec!["--no-recovery-key"];
    args.extend_from_slice(MATCHING);
    let e = enroll(&tpm, &img, &args);
    e.assert_exit(Exit::Ok);
    let tok = &img.json()["tokens"]["0"];
    assert_eq!(tok["platform"]["require"], "sev-snp", "{tok:#}");
    assert_eq!(tok["platform"]["measurements"][0], HCL_MEASUREMENT);
    assert_eq!(tok["platform"]["signature"], "if-available");
    let u = unlock_nodev(&tpm, &img, &[]);
    u.assert_exit(Exit::Ok);
    assert!(
        u.stderr
            .contains("platform verified: SEV-SNP via Azure vTPM HCL report"),
        "{u:?}"
    );
    assert!(u.stderr.contains("signature NOT verified"), "{u:?}");
    assert!(u.stderr.contains("opens keyslot 1"), "{u:?}");

    // `platform --device` judges against the enrolled requirement.
    let r = platform_cmd(&tpm, &img, &["--device", p(&img.path), "--json"]);
    r.assert_exit(Exit::Ok);
    let j = json(&r);
    assert_eq!(j["verdict"], "pass");
    assert!(j["policy"].as_str().unwrap().contains("token 0"), "{j:#}");
}

#[test]
fn enrolled_requirement_with_another_measurement_refuses_before_unsealing() {
    let tpm = Swtpm::start();
    let img = Image::new();
    provision_hcl(&tpm, img.dir.path());
    let e = enroll(
        &tpm,
        &img,
        &[
            "--no-recovery-key",
            "--require-snp",
            "--snp-measurement",
            OTHER_MEASUREMENT,
            "--snp-unsigned-ok",
        ],
    );
    e.assert_exit(Exit::Ok);
    let u = unlock_nodev(&tpm, &img, &[]);
    u.assert_exit(Exit::Platform);
    assert!(
        u.stderr
            .contains("platform verification failed: measurement check failed"),
        "{u:?}"
    );
    // Nothing was unsealed, and the refusal locks PCR 15 all the same:
    // nothing that runs after it can unseal in this boot.
    assert!(!u.stderr.contains("opened volume's lock"), "{u:?}");
    assert!(
        u.stderr.contains("extended the failure lock event"),
        "{u:?}"
    );
    let pcr15 = tpm.tpm2(&["pcrread", "sha256:15"]);
    let locked = String::from_utf8_lossy(&pcr15.stdout).to_string();
    let u2 = unlock_nodev(&tpm, &img, &[]);
    u2.assert_exit(Exit::Platform);
    let again = String::from_utf8_lossy(&tpm.tpm2(&["pcrread", "sha256:15"]).stdout).to_string();
    assert_ne!(locked, again, "every refused unlock extends PCR 15");
}

#[test]
fn without_the_hcl_index_snp_is_refused_when_required_and_ignored_when_not() {
    let tpm = Swtpm::start();
    let img = Image::new();
    // Required: no HCL report, no /dev/sev-guest → refused.
    let e = enroll(
        &tpm,
        &img,
        &["--no-recovery-key", "--require-snp", "--snp-unsigned-ok"],
    );
    e.assert_exit(Exit::Ok);
    let u = unlock_nodev(&tpm, &img, &[]);
    u.assert_exit(Exit::Platform);
    assert!(
        u.stderr.contains("evidence check failed: this is not an SEV-SNP guest: the TPM has no HCL report at NV index 0x01400001"),
        "{u:?}"
    );
    assert!(u.stderr.contains("no-sev-guest"), "{u:?}");
    let r = platform_cmd(&tpm, &img, &["--json"]);
    r.assert_exit(Exit::Ok);
    assert_eq!(json(&r)["platform"], "none");

    // Not required: the same TPM unlocks.
    let tpm2 = Swtpm::start();
    let img2 = Image::new();
    enroll(&tpm2, &img2, &["--no-recovery-key"]).assert_exit(Exit::Ok);
    let u = unlock_nodev(&tpm2, &img2, &[]);
    u.assert_exit(Exit::Ok);
    assert!(!u.stderr.contains("platform verified"), "{u:?}");
}

#[test]
fn a_foreign_attestation_key_at_0x81000003_is_refused() {
    let tpm = Swtpm::start();
    let img = Image::new();
    provision_hcl(&tpm, img.dir.path());
    provision_foreign_ak(&tpm, img.dir.path());
    let mut args = vec!["--no-recovery-key"];
    args.extend_from_slice(MATCHING);
    let e = enroll(&tpm, &img, &args);
    e.assert_exit(Exit::Ok);
    let u = unlock_nodev(&tpm, &img, &[]);
    u.assert_exit(Exit::Platform);
    assert!(
        u.stderr.contains("attestation-key check failed: HCLAkPub (modulus b58541a6000104e7…) is not the vTPM key at 0x81000003"),
        "{u:?}"
    );
}

#[test]
fn a_corrupt_hcl_report_in_nv_is_refused() {
    let tpm = Swtpm::start();
    let img = Image::new();
    provision_hcl(&tpm, img.dir.path());
    // Change one byte of the runtime data (inside HCLAkPub's modulus, which
    // starts at 1236 + 77).
    let f = img.file("byte");
    std::fs::write(&f, b"X").unwrap();
    tpm.tpm2(&[
        "nvwrite",
        "0x01400001",
        "-C",
        "o",
        "--offset",
        "1330",
        "-i",
        p(&f),
    ]);
    let mut args = vec!["--no-recovery-key"];
    args.extend_from_slice(MATCHING);
    enroll(&tpm, &img, &args).assert_exit(Exit::Ok);
    let u = unlock_nodev(&tpm, &img, &[]);
    u.assert_exit(Exit::Platform);
    assert!(u.stderr.contains("hcl-binding check failed"), "{u:?}");
    // Break the framing instead: the signature "HCLA".
    std::fs::write(&f, b"X").unwrap();
    tpm.tpm2(&[
        "nvwrite",
        "0x01400001",
        "-C",
        "o",
        "--offset",
        "0",
        "-i",
        p(&f),
    ]);
    let u = unlock_nodev(&tpm, &img, &[]);
    u.assert_exit(Exit::Platform);
    assert!(
        u.stderr
            .contains("hcl-format check failed: NV index 0x01400001: HCL report signature"),
        "{u:?}"
    );
}

#[test]
fn the_requirement_cannot_be_stripped_from_the_blob_and_survives_reseal() {
    let tpm = Swtpm::start();
    let img = Image::new();
    provision_hcl(&tpm, img.dir.path());
    let blob = img.file("blob.json");
    let mut args = vec!["--no-recovery-key", "--blob-file", p(&blob)];
    args.extend_from_slice(MATCHING);
    enroll(&tpm, &img, &args).assert_exit(Exit::Ok);
    let original = std::fs::read(&blob).unwrap();

    // The host removes the requirement: the platform check is skipped, but
    // the envelope is bound to it and does not open.
    let mut v: serde_json::Value = serde_json::from_slice(&original).unwrap();
    v.as_object_mut().unwrap().remove("platform");
    std::fs::write(&blob, serde_json::to_vec(&v).unwrap()).unwrap();
    let u = unlock_nodev(&tpm, &img, &["--blob-file", p(&blob)]);
    u.assert_exit(Exit::BlobInvalid);
    assert!(u.stderr.contains("envelope does not authenticate"), "{u:?}");
    // Loosened (measurement allow-list emptied): same.
    let mut v: serde_json::Value = serde_json::from_slice(&original).unwrap();
    v["platform"]["measurements"] = serde_json::json!([]);
    std::fs::write(&blob, serde_json::to_vec(&v).unwrap()).unwrap();
    // The failed unlock above unsealed and locked PCR 15: a new boot.
    let mut t = tpm;
    t.reboot();
    let u = unlock_nodev(&t, &img, &["--blob-file", p(&blob)]);
    u.assert_exit(Exit::BlobInvalid);

    // Reseal (with the passphrase) keeps the requirement.
    std::fs::write(&blob, &original).unwrap();
    t.reboot();
    Args::new("reseal")
        .on(&t, &img)
        .opt("blob-file", &blob)
        .opt("unlock-key-file", &img.key)
        .run()
        .assert_exit(Exit::Ok);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&blob).unwrap()).unwrap();
    assert_eq!(v["platform"]["measurements"][0], HCL_MEASUREMENT, "{v:#}");
    t.reboot();
    let u = unlock_nodev(&t, &img, &["--blob-file", p(&blob)]);
    u.assert_exit(Exit::Ok);
    assert!(u.stderr.contains("platform verified"), "{u:?}");
}

#[test]
fn bare_snp_path_reports_a_missing_or_wrong_device() {
    let tpm = Swtpm::start();
    let img = Image::new();
    enroll(
        &tpm,
        &img,
        &["--no-recovery-key", "--require-snp", "--snp-unsigned-ok"],
    )
    .assert_exit(Exit::Ok);
    // /dev/null exists but is not an SNP guest device.
    let u = unlock(&tpm, &img, &["--sev-guest", "/dev/null"]);
    u.assert_exit(Exit::Platform);
    assert!(
        u.stderr
            .contains("evidence check failed: SNP_GET_REPORT on /dev/null"),
        "{u:?}"
    );
    let tcti = tpm.tcti();
    let r = sealroot(&[
        "platform",
        "--tcti",
        &tcti,
        "--sev-guest",
        "/dev/null",
        "--json",
    ]);
    r.assert_exit(Exit::Ok);
    let j = json(&r);
    assert_eq!(j["platform"], "unknown", "{j:#}");
    assert_eq!(check(&j, "evidence")["status"], "fail");
}

#[test]
fn enroll_validates_the_snp_options_before_touching_anything() {
    let tpm = Swtpm::start();
    let img = Image::new();
    let before = img.sha256();
    let vcek = fixture("vcek_milan.der");
    let mut bad_vcek = std::fs::read(&vcek).unwrap();
    let n = bad_vcek.len();
    bad_vcek[n - 10] ^= 1;
    let bad = img.file("bad-vcek.der");
    std::fs::write(&bad, bad_vcek).unwrap();
    let cases: Vec<(Vec<&str>, Exit, &str)> = vec![
        (
            vec!["--snp-measurement", HCL_MEASUREMENT],
            Exit::Usage,
            "--require-snp",
        ),
        (
            vec!["--require-snp", "--snp-measurement", "abcd"],
            Exit::Usage,
            "--snp-measurement",
        ),
        (
            vec!["--require-snp", "--snp-min-tcb", "snp=300"],
            Exit::Usage,
            "--snp-min-tcb",
        ),
        (
            vec!["--require-snp", "--snp-policy-forbid", "smt,x"],
            Exit::Usage,
            "unknown guest policy flag",
        ),
        (
            vec!["--require-snp", "--snp-policy-require", "debug"],
            Exit::Usage,
            "debug",
        ),
        (vec!["--snp-vcek", p(&vcek)], Exit::Usage, "--require-snp"),
        (
            vec!["--require-snp", "--snp-vcek", p(&bad)],
            Exit::Usage,
            "VCEK #1",
        ),
        (
            vec!["--require-snp", "--snp-vcek", "/nonexistent/vcek"],
            Exit::Io,
            "/nonexistent/vcek",
        ),
    ];
    for (extra, exit, msg) in cases {
        let mut args = vec!["--no-recovery-key"];
        args.extend_from_slice(&extra);
        let r = enroll(&tpm, &img, &args);
        assert_eq!(r.exit(), Some(exit), "{extra:?}: {r:?}");
        assert!(r.stderr.contains(msg), "{extra:?}: {r:?}");
    }
    assert_eq!(img.sha256(), before, "the image was modified");

    // A good VCEK and chain are stored (DER, base64) in the token.
    let chain = fixture("cert_chain_milan");
    let r = enroll(
        &tpm,
        &img,
        &[
            "--no-recovery-key",
            "--require-snp",
            "--snp-vcek",
            p(&vcek),
            "--snp-chain",
            p(&chain),
        ],
    );
    r.assert_exit(Exit::Ok);
    let tok = &img.json()["tokens"]["0"]["platform"];
    assert_eq!(tok["signature"], "required");
    assert_eq!(tok["vcek"].as_array().unwrap().len(), 1);
    assert_eq!(tok["ca"].as_array().unwrap().len(), 2);
    // With the HCL report of another chip, that VCEK cannot verify it, and
    // the signature is required: refused.
    provision_hcl(&tpm, img.dir.path());
    let u = unlock_nodev(&tpm, &img, &[]);
    u.assert_exit(Exit::Platform);
    assert!(
        u.stderr
            .contains("vcek check failed: no VCEK for this chip"),
        "{u:?}"
    );
}

#[test]
fn first_boot_checks_and_stores_a_command_line_requirement() {
    let mut tpm = Swtpm::start();
    let img = Image::new();
    provision_hcl(&tpm, img.dir.path());
    // A requirement the platform does not meet: nothing is enrolled and the
    // provisioning keyslot stays.
    let mut wrong = vec!["--provision-key-file", p(&img.key)];
    wrong.extend_from_slice(&[
        "--require-snp",
        "--snp-measurement",
        OTHER_MEASUREMENT,
        "--snp-unsigned-ok",
    ]);
    let u = unlock_nodev(&tpm, &img, &wrong);
    u.assert_exit(Exit::Platform);
    assert!(u.stderr.contains("measurement check failed"), "{u:?}");
    assert_eq!(img.tokens(), Vec::<u32>::new());
    assert_eq!(img.keyslots(), vec![0]);
    assert!(img.opens(b"correct horse battery staple"));

    // The matching requirement, in the next boot (the refusal locked PCR
    // 15): enrolled, and stored in the token.
    tpm.reboot();
    let mut args = vec!["--provision-key-file", p(&img.key)];
    args.extend_from_slice(MATCHING);
    let u = unlock_nodev(&tpm, &img, &args);
    u.assert_exit(Exit::Ok);
    assert!(u.stderr.contains("platform verified"), "{u:?}");
    let tok = &img.json()["tokens"]["0"];
    assert_eq!(
        tok["platform"]["measurements"][0], HCL_MEASUREMENT,
        "{tok:#}"
    );
    assert!(!img.opens(b"correct horse battery staple"));

    // Later boots check the stored requirement without being told.
    let mut t = tpm;
    t.reboot();
    let u = unlock_nodev(&t, &img, &[]);
    u.assert_exit(Exit::Ok);
    assert!(u.stderr.contains("platform verified"), "{u:?}");
    // ... and a command-line requirement is checked in addition to it.
    t.reboot();
    let u = unlock_nodev(
        &t,
        &img,
        &[
            "--require-snp",
            "--snp-min-tcb",
            "snp=9",
            "--snp-unsigned-ok",
        ],
    );
    u.assert_exit(Exit::Platform);
    assert!(
        u.stderr.contains("tcb check failed") && u.stderr.contains("snp 8 < 9"),
        "{u:?}"
    );
}

#[test]
fn the_hcl_report_at_another_vmpl_is_refused() {
    // The paravisor requests the HCL report's SNP report at VMPL 0. A report
    // at another VMPL in the NV index was not written by it. (Changing the
    // field breaks the signature too, which the sample cannot show: its
    // VCEK is not available, so the policy here allows an unsigned report.)
    let tpm = Swtpm::start();
    let img = Image::new();
    provision_hcl(&tpm, img.dir.path());
    let f = img.file("vmpl");
    std::fs::write(&f, [2u8]).unwrap();
    // HCL header (32) + VMPL field at 0x30 of the SNP report.
    tpm.tpm2(&[
        "nvwrite",
        "0x01400001",
        "-C",
        "o",
        "--offset",
        "80",
        "-i",
        p(&f),
    ]);
    let mut args = vec!["--json"];
    args.extend_from_slice(MATCHING);
    let r = platform_cmd(&tpm, &img, &args);
    r.assert_exit(Exit::Platform);
    let j = json(&r);
    assert_eq!(j["report"]["vmpl"], 2);
    assert_eq!(check(&j, "vmpl")["status"], "fail");
    assert!(r.stderr.contains("vmpl check failed"), "{r:?}");
}
