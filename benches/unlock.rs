//! Unlock latency and TPM traffic, sealroot against clevis, side by side on
//! one swtpm so the ratio is meaningful on a noisy machine.
//!
//! `cargo bench --bench unlock [-- RUNS]` prints `name: value` lines:
//! - `unlock_ms_sealroot`: median wall time of `sealroot unlock --dry-run` on
//!   an enrolled LUKS2 image (process start to exit, key checked against its
//!   keyslot);
//! - `unlock_ms_clevis`: median of `clevis decrypt` of a tpm2-pin JWE bound
//!   to the same PCRs on the same swtpm (Debian `clevis-tpm2`);
//! - `unlock_ratio`: sealroot ÷ clevis;
//! - `tpm_commands_per_unlock` (and `_clevis`): commands on the wire, counted
//!   by a recording proxy;
//! - `unlock_maxrss_kb_sealroot`: peak resident memory of one unlock;
//! - `unlock_ms_sealroot_signed`, `tpm_commands_per_unlock_signed`: the same
//!   for a volume enrolled with `--policy-key` (PolicyAuthorize + PolicyNV),
//!   unlocked with a signed policy for PCRs 0,4,7,9;
//! - with `SEALROOT_BENCH_BASELINE=/path/to/an/older/sealroot`:
//!   `unlock_ms_baseline` (that binary on an image it enrolled itself, on the
//!   same swtpm, alternating with this one, each in a fresh boot),
//!   `unlock_ms_sealroot_vs_baseline` (this binary in the same loop) and
//!   `unlock_vs_baseline` (the ratio): what a change such as the LUKS2
//!   header check costs, measured side by side.

#[path = "../tests/common/mod.rs"]
mod common;

use common::proxy::{cc_name, Proxy};
use common::*;
use sealroot::Exit;
use std::process::{Command, Stdio};
use std::time::Instant;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn timed(mut c: Command) -> (f64, std::process::Output) {
    let t = Instant::now();
    let out = c.output().unwrap();
    (t.elapsed().as_secs_f64() * 1000.0, out)
}

fn sealroot_unlock(tcti: &str, img: &Image) -> Command {
    unlock_with(SEALROOT, tcti, img)
}

fn unlock_with(bin: &str, tcti: &str, img: &Image) -> Command {
    let mut c = Command::new(bin);
    c.args([
        "unlock",
        "--device",
        p(&img.path),
        "--name",
        "bench",
        "--dry-run",
    ])
    .args([
        "--tcti",
        tcti,
        "--cmdline-file",
        p(&img.cmdline),
        "--log",
        "stderr",
    ])
    .env_remove("TPM2TOOLS_TCTI")
    .stdin(Stdio::null());
    c
}

fn clevis_decrypt(tcti: &str, jwe: &std::path::Path) -> Command {
    let mut c = Command::new("clevis");
    c.arg("decrypt")
        .env("TPM2TOOLS_TCTI", tcti)
        .env("TSS2_LOG", "all+NONE")
        .stdin(std::fs::File::open(jwe).unwrap());
    c
}

// The child is reaped by wait4 (which also reports its rusage), not by
// Child::wait, which clippy cannot see.
#[allow(clippy::zombie_processes)]
fn maxrss_kb(mut c: Command) -> u64 {
    let st = c
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = st.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain old data; all-zero bytes are a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 on our own child, with valid pointers to locals.
    unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    ru.ru_maxrss as u64
}

/// A second image in signed-policy mode with a signed policy for this
/// swtpm's (reset) PCRs 0,4,7,9; returns it and the policy file.
fn signed_setup(tpm: &Swtpm) -> (Image, std::path::PathBuf) {
    let img = Image::new();
    let keys = PolicyKeys::generate();
    let r = enroll(
        tpm,
        &img,
        &[
            "--no-recovery-key",
            "--policy-key",
            p(&keys.public),
            "--eventlog",
            "none",
        ],
    );
    r.assert_exit(Exit::Ok);
    let values = img.file("values");
    let zero = hex::encode([0u8; 32]);
    std::fs::write(&values, format!("0:{zero}\n4:{zero}\n7:{zero}\n9:{zero}\n")).unwrap();
    let sig = img.file("sig.json");
    let r = sealroot(&[
        "policy",
        "sign",
        "--key",
        p(&keys.private),
        "--pcrs",
        "0,4,7,9",
        "--values",
        p(&values),
        "--version",
        "1",
        "--out",
        p(&sig),
    ]);
    r.assert_exit(Exit::Ok);
    (img, sig)
}

fn signed_unlock(tcti: &str, img: &Image, sig: &std::path::Path) -> Command {
    let mut c = sealroot_unlock(tcti, img);
    c.args([
        "--policy-file",
        p(sig),
        "--policy-dir",
        "/nonexistent",
        "--eventlog",
        "none",
    ]);
    c
}

fn main() {
    let runs: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(31)
        .max(30);
    if Command::new("clevis").arg("--help").output().is_err() {
        eprintln!("clevis is not installed: apt-get install clevis-tpm2");
        std::process::exit(1);
    }
    let mut tpm = Swtpm::start();
    let tcti = tpm.tcti();
    let img = Image::new();
    let r = enroll(&tpm, &img, &["--no-recovery-key", "--pcrs", "0,4,7,9"]);
    r.assert_exit(Exit::Ok);

    // clevis: same PCRs (0,4,7,9 and 15), sealed in the pre-unlock state.
    tpm.reboot();
    let secret = img.file("secret");
    std::fs::write(&secret, [7u8; 32]).unwrap();
    let jwe = img.file("secret.jwe");
    let out = Command::new("clevis")
        .args([
            "encrypt",
            "tpm2",
            r#"{"pcr_bank":"sha256","pcr_ids":"0,4,7,9,15"}"#,
        ])
        .env("TPM2TOOLS_TCTI", &tcti)
        .env("TSS2_LOG", "all+NONE")
        .stdin(std::fs::File::open(&secret).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "clevis encrypt: {out:?}");
    std::fs::write(&jwe, &out.stdout).unwrap();

    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for i in 0..runs {
        tpm.reboot();
        // Alternate the order so neither always runs on a warmer cache.
        let pair = if i % 2 == 0 { [0, 1] } else { [1, 0] };
        for which in pair {
            if which == 0 {
                // clevis first in a boot: sealroot locks PCR 15 afterwards.
                let (ms, out) = timed(clevis_decrypt(&tcti, &jwe));
                assert!(out.status.success(), "clevis decrypt: {out:?}");
                assert_eq!(out.stdout, [7u8; 32]);
                theirs.push(ms);
            } else {
                let (ms, out) = timed(sealroot_unlock(&tcti, &img));
                assert!(out.status.success(), "sealroot: {out:?}");
                ours.push(ms);
            }
            if which == 1 && pair[0] == 1 {
                // sealroot ran first and locked PCR 15: clevis (bound to
                // the pre-lock value) needs a fresh boot.
                tpm.reboot();
            }
        }
    }
    let (s, c) = (median(&mut ours), median(&mut theirs));

    tpm.reboot();
    let proxy = Proxy::start(tpm.port);
    let ptcti = proxy.tcti();
    assert!(sealroot_unlock(&ptcti, &img).status().unwrap().success());
    let ours_cmds = proxy.command_codes();
    tpm.reboot();
    proxy.clear();
    assert!(clevis_decrypt(&ptcti, &jwe)
        .output()
        .unwrap()
        .status
        .success());
    let their_cmds = proxy.command_codes();

    tpm.reboot();
    let rss = maxrss_kb(sealroot_unlock(&tcti, &img));

    // Signed-policy mode on the same swtpm.
    tpm.reboot();
    let (simg, sig) = signed_setup(&tpm);
    let mut signed = Vec::new();
    for _ in 0..runs {
        tpm.reboot();
        let (ms, out) = timed(signed_unlock(&tcti, &simg, &sig));
        assert!(out.status.success(), "sealroot (signed): {out:?}");
        signed.push(ms);
    }
    let sg = median(&mut signed);
    tpm.reboot();
    proxy.clear();
    assert!(signed_unlock(&ptcti, &simg, &sig)
        .status()
        .unwrap()
        .success());
    let signed_cmds = proxy.command_codes();

    println!("runs: {runs}");
    println!("unlock_ms_sealroot: {s:.1}");
    println!("unlock_ms_clevis: {c:.1}");
    println!("unlock_ratio: {:.3}", s / c);
    println!("tpm_commands_per_unlock: {}", ours_cmds.len());
    println!("tpm_commands_per_unlock_clevis: {}", their_cmds.len());
    println!("unlock_maxrss_kb_sealroot: {rss}");
    println!("unlock_ms_sealroot_signed: {sg:.1}");
    println!("tpm_commands_per_unlock_signed: {}", signed_cmds.len());
    let names: Vec<&str> = ours_cmds.iter().map(|&c| cc_name(c)).collect();
    println!("tpm_commands_sealroot: {}", names.join(","));
    if let Ok(base) = std::env::var("SEALROOT_BENCH_BASELINE") {
        against_baseline(&mut tpm, &base, &img, runs);
    }
}

/// This binary against `base` (an older sealroot), alternating, each run in
/// a fresh boot, each on an image it enrolled itself (an older sealroot may
/// not read this one's tokens).
fn against_baseline(tpm: &mut Swtpm, base: &str, img: &Image, runs: usize) {
    let tcti = tpm.tcti();
    let bimg = Image::new();
    let out = Command::new(base)
        .args(["enroll", "--device", p(&bimg.path), "--unlock-key-file"])
        .arg(&bimg.key)
        .args(["--tcti", &tcti, "--cmdline-file", p(&bimg.cmdline)])
        .args(["--no-recovery-key", "--pcrs", "0,4,7,9", "--log", "stderr"])
        .env_remove("TPM2TOOLS_TCTI")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "baseline enroll: {out:?}");
    let (mut now, mut before) = (Vec::new(), Vec::new());
    for i in 0..runs {
        for which in if i % 2 == 0 { [0, 1] } else { [1, 0] } {
            tpm.reboot();
            let (ms, out) = if which == 0 {
                timed(sealroot_unlock(&tcti, img))
            } else {
                timed(unlock_with(base, &tcti, &bimg))
            };
            assert!(out.status.success(), "unlock ({which}): {out:?}");
            if which == 0 {
                now.push(ms)
            } else {
                before.push(ms)
            }
        }
    }
    let (n, b) = (median(&mut now), median(&mut before));
    println!("unlock_ms_baseline: {b:.1}");
    println!("unlock_ms_sealroot_vs_baseline: {n:.1}");
    println!("unlock_vs_baseline: {:.3}", n / b);
}
