//! TDX platform verification through a real TPM and the real binary (issue
//! 15): a swtpm per test whose NV index 0x01400001 holds the Azure TDX
//! sample HCL report (report type 4, a TDREPORT inside); and the offline
//! `platform --tdx-quote` / `--hcl-report` modes.

mod common;
use common::*;
use sealroot::Exit;
use std::path::{Path, PathBuf};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
/// MRTD and XFAM of the sample TDX HCL report's TDREPORT.
const HCL_MRTD: &str = "75f3acc2e1dfc3acf404d7eaa69a2eefcd0475a0dd6516ef5ba3cb83399c61b4aa1c638e3622bb650a514bfc6e858886";
const OTHER_MRTD: &str = "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7";

fn fixture(name: &str) -> PathBuf {
    Path::new(FIXTURES).join(name)
}

/// The sample TDX HCL report, fitted into a swtpm NV index: libtpms caps
/// an index at 2048 bytes and the sample's report is 2438 (Azure's vTPM
/// index is larger). Its runtime data is compacted to the `HCLAkPub` key and
/// the `vm-configuration`, and `report_data` is re-bound to it. The TDREPORT
/// is otherwise the sample's: sealroot cannot check its MAC anyway (only the
/// CPU can), which is exactly what docs/platform.md says about Azure TDX.
fn fitted_tdx_hcl() -> Vec<u8> {
    use sha2::{Digest as _, Sha256};
    let all = std::fs::read(fixture("snp/hcl-report-tdx.bin")).unwrap();
    let size = u32::from_le_bytes(all[8..12].try_into().unwrap()) as usize;
    let mut v: serde_json::Value = serde_json::from_slice(&all[1236..size]).unwrap();
    v["keys"]
        .as_array_mut()
        .unwrap()
        .retain(|k| k["kid"] == "HCLAkPub");
    v.as_object_mut().unwrap().remove("user-data");
    let var = serde_json::to_vec(&v).unwrap();
    let mut b = all[..1236].to_vec();
    b.extend_from_slice(&var);
    let put = |b: &mut Vec<u8>, off: usize, val: usize| {
        b[off..off + 4].copy_from_slice(&(val as u32).to_le_bytes())
    };
    let total = b.len();
    put(&mut b, 8, total);
    put(&mut b, 1216, 20 + var.len());
    put(&mut b, 1232, var.len());
    b[32 + 128..32 + 160].copy_from_slice(&Sha256::digest(&var));
    assert!(b.len() <= 2048, "{} bytes", b.len());
    b
}

/// Define NV index 0x01400001 and write [`fitted_tdx_hcl`] into it in
/// chunks of at most 1024 bytes.
fn provision_tdx_hcl(tpm: &Swtpm, dir: &Path) {
    let report = fitted_tdx_hcl();
    tpm.tpm2(&[
        "nvdefine",
        "0x01400001",
        "-C",
        "o",
        "-s",
        &report.len().to_string(),
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
}

/// Options that keep the SNP and TDX probes off this machine's devices.
fn no_devices(img: &Image) -> Vec<String> {
    vec![
        "--sev-guest".into(),
        img.file("no-sev-guest").display().to_string(),
        "--tsm-root".into(),
        img.file("no-tsm").display().to_string(),
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
fn tdx_hcl_report_in_nv_passes_platform_and_an_enrolled_requirement() {
    let tpm = Swtpm::start();
    let img = Image::new();
    provision_tdx_hcl(&tpm, img.dir.path());
    let r = platform_cmd(
        &tpm,
        &img,
        &["--json", "--require-tdx", "--tdx-mrtd", HCL_MRTD],
    );
    r.assert_exit(Exit::Ok);
    let j = json(&r);
    assert_eq!(j["platform"], "tdx", "{j:#}");
    assert_eq!(j["td"]["mrtd"], HCL_MRTD);
    assert_eq!(j["td"]["debug"], false);
    assert_eq!(j["verdict"], "pass");
    assert_eq!(check(&j, "hcl-binding")["status"], "pass");
    assert_eq!(check(&j, "mrtd")["status"], "pass");
    assert_eq!(check(&j, "quote")["status"], "skipped");
    assert!(j["proves"]
        .as_str()
        .unwrap()
        .contains("cannot be verified off the platform"));

    let e = enroll(
        &tpm,
        &img,
        &[
            "--no-recovery-key",
            "--require-tdx",
            "--tdx-mrtd",
            HCL_MRTD,
            "--tdx-rtmr",
            &format!("0={}", "00".repeat(48)),
        ],
    );
    e.assert_exit(Exit::Ok);
    let tok = &img.json()["tokens"]["0"];
    assert_eq!(tok["tdx"]["require"], "tdx", "{tok:#}");
    assert_eq!(tok["tdx"]["mrtd"][0], HCL_MRTD);
    assert_eq!(tok["tdx"]["tcb_status"][0], "UpToDate");
    // A stand-in for /sys/class/misc/tdx_guest/measurements/rtmr3:sha384.
    let rtmr3 = img.file("rtmr3");
    std::fs::write(&rtmr3, b"").unwrap();
    let u = unlock_nodev(&tpm, &img, &["--tdx-rtmr3", p(&rtmr3)]);
    u.assert_exit(Exit::Ok);
    assert_eq!(std::fs::read(&rtmr3).unwrap().len(), 48, "lock mirrored");
    assert!(
        u.stderr.contains("mirrored the lock event into RTMR3"),
        "{u:?}"
    );
    assert!(
        u.stderr
            .contains("platform verified: TDX via Azure vTPM HCL report"),
        "{u:?}"
    );
    assert!(u.stderr.contains("opens keyslot 1"), "{u:?}");
    // `platform --device` judges against the enrolled requirement.
    let r = platform_cmd(&tpm, &img, &["--device", p(&img.path), "--json"]);
    r.assert_exit(Exit::Ok);
    assert_eq!(json(&r)["verdict"], "pass");
}

#[test]
fn another_mrtd_refuses_before_unsealing() {
    let tpm = Swtpm::start();
    let img = Image::new();
    provision_tdx_hcl(&tpm, img.dir.path());
    let e = enroll(
        &tpm,
        &img,
        &[
            "--no-recovery-key",
            "--require-tdx",
            "--tdx-mrtd",
            OTHER_MRTD,
        ],
    );
    e.assert_exit(Exit::Ok);
    let u = unlock_nodev(&tpm, &img, &[]);
    u.assert_exit(Exit::Platform);
    assert!(
        u.stderr.contains(&format!(
            "platform verification failed: mrtd check failed: MRTD {HCL_MRTD} is not in the allow-list (91eb2b44d141d4ec…)"
        )),
        "{u:?}"
    );
    assert!(!u.stderr.contains("opens keyslot"), "{u:?}");
    let r = platform_cmd(&tpm, &img, &["--require-tdx", "--tdx-mrtd", OTHER_MRTD]);
    r.assert_exit(Exit::Platform);
    assert!(r.stdout.contains("verdict: fail"), "{r:?}");
}

#[test]
fn a_missing_hcl_index_is_refused_when_tdx_is_required() {
    let tpm = Swtpm::start();
    let img = Image::new();
    let e = enroll(&tpm, &img, &["--no-recovery-key", "--require-tdx"]);
    e.assert_exit(Exit::Ok);
    let u = unlock_nodev(&tpm, &img, &[]);
    u.assert_exit(Exit::Platform);
    assert!(
        u.stderr.contains("evidence check failed: this is not a TDX guest: the TPM has no HCL report at NV index 0x01400001"),
        "{u:?}"
    );
    // An SNP requirement on a TDX HCL report is refused too.
    let tpm = Swtpm::start();
    let img = Image::new();
    provision_tdx_hcl(&tpm, img.dir.path());
    let r = platform_cmd(&tpm, &img, &["--require-snp", "--snp-unsigned-ok"]);
    r.assert_exit(Exit::Platform);
    assert!(r.stderr.contains("holds a TDX report"), "{r:?}");
}

#[test]
fn the_tdx_requirement_cannot_be_stripped_from_the_token() {
    let tpm = Swtpm::start();
    let img = Image::new();
    provision_tdx_hcl(&tpm, img.dir.path());
    let blob = img.file("blob.json");
    enroll(
        &tpm,
        &img,
        &[
            "--no-recovery-key",
            "--require-tdx",
            "--tdx-mrtd",
            HCL_MRTD,
            "--blob-file",
            p(&blob),
        ],
    )
    .assert_exit(Exit::Ok);
    let mut tpm = tpm;
    unlock_nodev(&tpm, &img, &["--blob-file", p(&blob)]).assert_exit(Exit::Ok);
    let original = std::fs::read(&blob).unwrap();
    for edit in [
        |v: &mut serde_json::Value| {
            v.as_object_mut().unwrap().remove("tdx");
        },
        |v: &mut serde_json::Value| v["tdx"]["mrtd"] = serde_json::json!([]),
        |v: &mut serde_json::Value| {
            v["tdx"]["tcb_status"] = serde_json::json!(["UpToDate", "OutOfDate"])
        },
    ] {
        let mut v: serde_json::Value = serde_json::from_slice(&original).unwrap();
        edit(&mut v);
        std::fs::write(&blob, serde_json::to_vec(&v).unwrap()).unwrap();
        // Each unlock locks PCR 15: a new boot.
        tpm.reboot();
        let u = unlock_nodev(&tpm, &img, &["--blob-file", p(&blob)]);
        u.assert_exit(Exit::BlobInvalid);
    }
}

#[test]
fn enroll_validates_the_tdx_options() {
    let tpm = Swtpm::start();
    let img = Image::new();
    let before = img.sha256();
    for (args, needle) in [
        (vec!["--require-tdx", "--tdx-mrtd", "00"], "--tdx-mrtd"),
        (vec!["--require-tdx", "--tdx-rtmr", "4=00"], "--tdx-rtmr"),
        (
            vec!["--require-tdx", "--tdx-tcb-status", "Revoked"],
            "--tdx-tcb-status",
        ),
        (
            vec!["--require-tdx", "--tdx-stale", "ignore"],
            "--tdx-stale",
        ),
        (vec!["--tdx-mrtd", HCL_MRTD], "--require-tdx"),
        (vec!["--require-tdx", "--require-snp"], "--require-snp"),
    ] {
        let mut a = vec!["--no-recovery-key"];
        a.extend(args);
        let r = enroll(&tpm, &img, &a);
        r.assert_exit(Exit::Usage);
        assert!(r.stderr.contains(needle), "{needle}: {r:?}");
    }
    let bad = img.file("bad.json");
    std::fs::write(&bad, b"{}").unwrap();
    let r = enroll(
        &tpm,
        &img,
        &[
            "--no-recovery-key",
            "--require-tdx",
            "--tdx-collateral",
            p(&bad),
        ],
    );
    r.assert_exit(Exit::Usage);
    assert!(r.stderr.contains("bad.json"), "{r:?}");
    assert_eq!(img.sha256(), before, "nothing was touched");
    // The collateral (16 KiB) is stored in the blob; a default LUKS2
    // header has no room for it in a token, so this uses a blob file.
    let c = fixture("tdx/tdx_quote_collateral.json");
    let blob = img.file("blob.json");
    enroll(
        &tpm,
        &img,
        &[
            "--no-recovery-key",
            "--require-tdx",
            "--tdx-collateral",
            p(&c),
            "--blob-file",
            p(&blob),
        ],
    )
    .assert_exit(Exit::Ok);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&blob).unwrap()).unwrap();
    assert!(v["tdx"]["collateral"]["tcb_info"].is_string(), "{v:#}");
}

fn quote_cmd(extra: &[&str]) -> Run {
    let q = fixture("tdx/tdx_quote");
    let c = fixture("tdx/tdx_quote_collateral.json");
    Args::new("platform")
        .opt("tdx-quote", q)
        .opt("tdx-collateral", c)
        .opt("tcti", "none")
        .args(extra)
        .run()
}

#[test]
fn platform_verifies_a_quote_file_offline() {
    let r = quote_cmd(&["--time", "2025-06-25T00:00:00Z", "--json"]);
    r.assert_exit(Exit::Ok);
    let j = json(&r);
    assert_eq!(j["platform"], "tdx");
    assert_eq!(j["verdict"], "pass");
    assert_eq!(j["tcb_status"], "UpToDate");
    assert_eq!(j["td"]["mrtd"], OTHER_MRTD);
    assert_eq!(j["td"]["rtmr"].as_array().unwrap().len(), 4);
    assert_eq!(check(&j, "quote")["status"], "pass");
    // Text form.
    let r = quote_cmd(&["--time", "2025-06-25T00:00:00Z"]);
    r.assert_exit(Exit::Ok);
    assert!(r.stdout.contains("TCB status      UpToDate"), "{r:?}");
    assert!(r.stdout.contains("RTMR3"), "{r:?}");
    // After nextUpdate: refused, naming both times.
    let r = quote_cmd(&["--time", "2025-08-01T00:00:00Z"]);
    r.assert_exit(Exit::Platform);
    assert!(
        r.stderr.contains("collateral check failed: the collateral is stale: the time 2025-08-01T00:00:00Z is after its nextUpdate 2025-07-19T10:00:35Z"),
        "{r:?}"
    );
    // With --require-tdx --tdx-stale warn: verified, with a warning.
    let r = quote_cmd(&[
        "--time",
        "2025-08-01T00:00:00Z",
        "--require-tdx",
        "--tdx-stale",
        "warn",
    ]);
    r.assert_exit(Exit::Ok);
    assert!(
        r.stdout.contains("warning: the collateral is stale"),
        "{r:?}"
    );
    // A flipped bit in the quote file: exit 10.
    let dir = tempfile::tempdir().unwrap();
    let mut q = std::fs::read(fixture("tdx/tdx_quote")).unwrap();
    q[48 + 136] ^= 1;
    let f = dir.path().join("q");
    std::fs::write(&f, q).unwrap();
    let r = Args::new("platform")
        .opt("tdx-quote", &f)
        .opt("tdx-collateral", fixture("tdx/tdx_quote_collateral.json"))
        .opt("time", "2025-06-25T00:00:00Z")
        .opt("tcti", "none")
        .run();
    r.assert_exit(Exit::Platform);
    assert!(r.stderr.contains("quote check failed"), "{r:?}");
    // A bad --time is a usage error.
    quote_cmd(&["--time", "yesterday"]).assert_exit(Exit::Usage);
}

#[test]
fn platform_judges_a_captured_hcl_report_file() {
    let r = Args::new("platform")
        .opt("hcl-report", fixture("snp/hcl-report-tdx.bin"))
        .opt("tcti", "none")
        .args(["--json", "--require-tdx", "--tdx-mrtd", HCL_MRTD])
        .run();
    r.assert_exit(Exit::Ok);
    let j = json(&r);
    assert_eq!(j["platform"], "tdx");
    assert_eq!(j["verdict"], "pass");
    let r = Args::new("platform")
        .opt("hcl-report", fixture("snp/hcl-report-snp.bin"))
        .opt("tcti", "none")
        .arg("--json")
        .run();
    r.assert_exit(Exit::Ok);
    assert_eq!(json(&r)["platform"], "sev-snp");
}

#[test]
fn a_command_line_tdx_requirement_is_checked_before_unsealing() {
    let tpm = Swtpm::start();
    let img = Image::new();
    provision_tdx_hcl(&tpm, img.dir.path());
    enroll(&tpm, &img, &["--no-recovery-key"]).assert_exit(Exit::Ok);
    let u = unlock_nodev(&tpm, &img, &["--require-tdx", "--tdx-mrtd", OTHER_MRTD]);
    u.assert_exit(Exit::Platform);
    assert!(u.stderr.contains("mrtd check failed"), "{u:?}");
    assert!(!u.stderr.contains("opens keyslot"), "{u:?}");
}
