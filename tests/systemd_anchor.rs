//! The systemd anchor is real: a `systemd-tpm2` token enrolled by Debian
//! 12's systemd-cryptenroll (systemd 252) and opened by cryptsetup's token
//! plugin through the preload shim (tests/common/systemd_tpm2.rs) unseals on
//! the test's swtpm while the PCRs match and only then; its token can sit
//! beside a sealroot token on one image.
//!
//! `cargo test --test systemd_anchor -- --ignored --nocapture` also prints
//! the anchor's figures (see [`measure`]).

mod common;
use common::proxy::{cc_name, Proxy};
use common::systemd_tpm2::*;
use common::*;
use sealroot::Exit;
use std::process::{Command, Output};
use std::time::Instant;

/// Run the systemd unlock; then flush what it left in the TPM, as closing
/// /dev/tpmrm0 would.
fn attempt(tpm: &Swtpm, img: &Image) -> Output {
    let out = systemd_unlock(tpm, img).output().unwrap();
    flush_like_tpmrm(tpm);
    out
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn systemd_token_opens_only_with_its_pcrs() {
    let mut tpm = Swtpm::start();
    let img = Image::new();
    enroll_systemd(&tpm, &img, "0,4,7,9");

    // Without the shim the plugin finds no TPM on this host.
    let mut bare = systemd_unlock(&tpm, &img);
    bare.env_remove("LD_PRELOAD");
    let out = bare.output().unwrap();
    assert!(!out.status.success(), "opened without a TPM: {out:?}");

    let out = attempt(&tpm, &img);
    assert!(out.status.success(), "{}", stderr(&out));

    // PCR 7 moves: the TPM's policy digest is no longer the sealed one.
    tpm.extend(7, 0xaa);
    let out = attempt(&tpm, &img);
    assert!(!out.status.success(), "opened with PCR 7 extended");
    assert!(
        stderr(&out).contains("policy digest does not match"),
        "failed for another reason than the PCR policy: {}",
        stderr(&out)
    );

    // A reboot brings the PCRs back to the sealed (zero) values.
    tpm.reboot();
    let out = attempt(&tpm, &img);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// sealroot first: sealroot's header allow-list takes only sha256 as the
/// anti-forensic hash, and systemd-cryptenroll's TPM2 keyslot uses sha512
/// (its minimal PBKDF2 settings), so `sealroot enroll` on a volume that
/// already has a systemd-tpm2 keyslot is refused (exit 13, "keyslots.N.af.hash
/// = sha512"), and so is `sealroot unlock` once systemd has enrolled.
#[test]
fn systemd_and_sealroot_tokens_coexist() {
    let tpm = Swtpm::start();
    let img = Image::new();
    enroll(&tpm, &img, &["--no-recovery-key", "--pcrs", "0,4,7,9"]).expect(Exit::Ok);
    enroll_systemd(&tpm, &img, "0,4,7,9");
    let json = img.json();
    let mut types: Vec<&str> = json["tokens"]
        .as_object()
        .unwrap()
        .values()
        .map(|t| t["type"].as_str().unwrap())
        .collect();
    types.sort();
    assert_eq!(types, ["sealroot", "systemd-tpm2"]);
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    (v[(n - 1) / 2] + v[n / 2]) / 2.0
}

/// Wall time of `c` in ms (process start to exit); asserts it succeeded.
fn timed(mut c: Command) -> f64 {
    let t = Instant::now();
    let out = c.output().unwrap();
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    assert!(out.status.success(), "{}", stderr(&out));
    ms
}

/// The anchor's figures, on one swtpm with two images sealed to PCRs 0,4,7,9
/// (one per tool: sealroot refuses a header with systemd's keyslot, see
/// above): median wall time of the systemd unlock and of `sealroot unlock
/// --dry-run`, alternating which goes first, each run after a TPM reboot,
/// and the TPM commands of one of each, counted by the recording proxy.
///
/// `SYSTEMD_ANCHOR_RUNS` (default 30) sets the runs; `SYSTEMD_ANCHOR_SEALROOT`
/// the sealroot binary (default: this test build's, unoptimised; the bench's
/// is `target/release/sealroot` after `cargo bench --bench unlock --no-run`).
#[test]
#[ignore = "measurement: cargo test --test systemd_anchor -- --ignored --nocapture"]
fn measure() {
    let runs: usize = std::env::var("SYSTEMD_ANCHOR_RUNS").map_or(30, |v| v.parse().unwrap());
    let bin = std::env::var("SYSTEMD_ANCHOR_SEALROOT").unwrap_or_else(|_| SEALROOT.into());
    let mut tpm = Swtpm::start();
    let img = Image::new();
    enroll_systemd(&tpm, &img, "0,4,7,9");
    let ours_img = Image::new();
    enroll(&tpm, &ours_img, &["--no-recovery-key", "--pcrs", "0,4,7,9"]).expect(Exit::Ok);
    // The test build's command line (Args), run by `bin`.
    let sealroot_unlock = |tcti: &str| {
        let mut c = Command::new(&bin);
        c.args(
            Args::new("unlock")
                .opt("device", &ours_img.path)
                .opt("tcti", tcti)
                .opt("cmdline-file", &ours_img.cmdline)
                .opt("name", "anchor")
                .arg("--dry-run")
                .command()
                .get_args(),
        )
        .env_remove("TPM2TOOLS_TCTI")
        .env_remove("SEALROOT_PIN")
        .stdin(std::process::Stdio::null());
        c
    };

    let (mut systemd, mut ours) = (Vec::new(), Vec::new());
    for i in 0..runs {
        for first in [i % 2 == 0, i % 2 == 1] {
            tpm.reboot();
            if first {
                systemd.push(timed(systemd_unlock(&tpm, &img)));
            } else {
                ours.push(timed(sealroot_unlock(&tpm.tcti())));
            }
        }
    }
    let (s, o) = (median(systemd), median(ours));
    println!("runs: {runs}");
    println!("sealroot_binary: {bin}");
    println!("unlock_ms_systemd: {s:.1}");
    println!("unlock_ms_sealroot_same_loop: {o:.1}");
    println!("unlock_ratio_sealroot_vs_systemd: {:.3}", o / s);

    let proxy = Proxy::start(tpm.port);
    for (name, cmd) in [
        ("systemd", systemd_unlock_tcti(&proxy.tcti(), &img)),
        ("sealroot", sealroot_unlock(&proxy.tcti())),
    ] {
        tpm.reboot();
        proxy.clear();
        timed(cmd);
        let ccs = proxy.command_codes();
        let names: Vec<String> = ccs
            .iter()
            .map(|&cc| match cc_name(cc) {
                "other" => format!("{cc:#x}"),
                n => n.to_string(),
            })
            .collect();
        println!("tpm_commands_per_unlock_{name}: {}", ccs.len());
        println!("tpm_commands_{name}: {}", names.join(","));
    }
}
