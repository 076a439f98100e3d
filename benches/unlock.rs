//! Unlock latency and TPM traffic: sealroot, clevis and systemd side by
//! side on one swtpm, so the ratios are meaningful on a noisy machine.
//! Every run starts in a fresh TPM boot, in a rotating order.
//!
//! `cargo bench --bench unlock [-- RUNS]` (RUNS ≥ 30) prints `name: value`
//! lines (docs/performance.md explains each):
//! - `unlock_ms_sealroot`: median wall time of `sealroot unlock --dry-run`
//!   (started as the initramfs integrations start it) on an enrolled LUKS2
//!   image with sealroot's minimum digest (process start to exit);
//! - `unlock_ms_clevis`, `unlock_ratio`: `clevis decrypt` of a tpm2 JWE
//!   bound to the same PCRs (Debian `clevis-tpm2`), and sealroot ÷ clevis;
//! - `unlock_ms_systemd`, `unlock_ratio_systemd`: Debian 12's systemd-tpm2
//!   token plugin (`cryptsetup open --test-passphrase --token-only`, through
//!   tests/shim/tpmrm_swtpm.c) on a systemd-cryptenroll'ed image, and
//!   sealroot ÷ systemd;
//! - `unlock_ms_sealroot_beside_systemd_token`, `unlock_ratio_beside_...`:
//!   sealroot on a volume that also carries a systemd-tpm2 token;
//! - `unlock_ms_{sealroot,systemd}_default_format`: both on volumes
//!   formatted with cryptsetup's defaults (benchmarked digest);
//! - `unlock_ms_sealroot_signed`: a `--policy-key` volume;
//! - `unlock_ms_sealroot_boot_1_volume`, `unlock_ms_sealroot_3_volumes`,
//!   `unlock_growth_3_volumes`: `sealroot boot --dry-run` of a crypttab
//!   with one volume and with three (unsealed, then one lock), and 3 ÷ 1;
//! - `tpm_commands_per_unlock[_rm|_signed|_signed_rm|_clevis|_systemd]`:
//!   commands on the wire (recording proxy); `_rm` as under a resource
//!   manager, which flushes on close;
//! - `tpm_command_ms`, `keyslot_check_ms`, `unlock_floor_ms`: the floor
//!   estimate, the resource-managed command count × one command's round
//!   trip + one keyslot check;
//! - `unlock_maxrss_kb_sealroot`, `binary_bytes`, `binary_bytes_gzip`;
//! - with `SEALROOT_BENCH_BASELINE=/path/to/an/older/sealroot`:
//!   `unlock_ms_baseline`, `unlock_ms_sealroot_vs_baseline` and
//!   `unlock_vs_baseline`: that binary on an image it enrolled itself,
//!   alternating with this one.

#[path = "../tests/common/mod.rs"]
mod common;

use common::proxy::{cc_name, Proxy};
use common::systemd_tpm2::{enroll_systemd, systemd_unlock_tcti};
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
    // As the initramfs integrations start it: no re-exec.
    .env("GLIBC_TUNABLES", sealroot::sys::harden::ALLOC_TUNABLES)
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
    let subjects = Subjects::set_up(&mut tpm);

    // Every run in a fresh TPM boot (sealroot locks PCR 15, clevis is bound
    // to it, systemd leaves a session on a simulator), in a rotating order
    // so that none always runs on the warmest cache.
    let kinds = Kind::ALL;
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); kinds.len()];
    for i in 0..runs {
        for j in 0..kinds.len() {
            let k = (i + j) % kinds.len();
            tpm.reboot();
            let (ms, out) = timed(subjects.command(kinds[k], &tcti));
            assert!(out.status.success(), "{:?}: {out:?}", kinds[k]);
            if kinds[k] == Kind::Clevis {
                assert_eq!(out.stdout, [7u8; 32]);
            }
            times[k].push(ms);
        }
    }
    let m: Vec<f64> = times.iter_mut().map(|v| median(v)).collect();
    let at = |k: Kind| m[kinds.iter().position(|&x| x == k).unwrap()];

    let proxy = Proxy::start(tpm.port);
    let ptcti = proxy.tcti();
    let mut count = |kind: Kind, managed: bool| -> Vec<u32> {
        tpm.reboot();
        proxy.clear();
        let mut c = subjects.command(kind, &ptcti);
        if managed {
            c.env("SEALROOT_TEST_ASSUME_RM", "1");
        }
        assert!(c.output().unwrap().status.success(), "{kind:?}");
        proxy.command_codes()
    };
    let ours_cmds = count(Kind::Sealroot, false);
    let ours_rm = count(Kind::Sealroot, true);
    let signed_cmds = count(Kind::Signed, false);
    let signed_rm = count(Kind::Signed, true);
    let clevis_cmds = count(Kind::Clevis, false);
    let systemd_cmds = count(Kind::Systemd, false);

    tpm.reboot();
    let rss = maxrss_kb(subjects.command(Kind::Sealroot, &tcti));
    let (cmd_ms, keyslot_ms) = floor_parts(&tcti, &subjects.plain);
    let floor = ours_rm.len() as f64 * cmd_ms + keyslot_ms;
    let bin_bytes = std::fs::metadata(SEALROOT).unwrap().len();

    let s = at(Kind::Sealroot);
    println!("runs: {runs}");
    println!("unlock_ms_sealroot: {s:.1}");
    println!("unlock_ms_clevis: {:.1}", at(Kind::Clevis));
    println!("unlock_ratio: {:.3}", s / at(Kind::Clevis));
    println!("unlock_ms_systemd: {:.1}", at(Kind::Systemd));
    println!("unlock_ratio_systemd: {:.3}", s / at(Kind::Systemd));
    let both = at(Kind::SealrootBesideSystemd);
    println!("unlock_ms_sealroot_beside_systemd_token: {both:.1}");
    println!("unlock_ratio_beside_systemd_token: {:.3}", both / s);
    let (sd, dd) = (
        at(Kind::SealrootDefaultFormat),
        at(Kind::SystemdDefaultFormat),
    );
    println!("unlock_ms_sealroot_default_format: {sd:.1}");
    println!("unlock_ms_systemd_default_format: {dd:.1}");
    println!("unlock_ratio_systemd_default_format: {:.3}", sd / dd);
    let digest = &subjects.default_format.json()["digests"]["0"];
    println!(
        "default_format_digest: {} PBKDF2-{}",
        digest["iterations"],
        digest["hash"].as_str().unwrap_or("?")
    );
    println!("unlock_ms_sealroot_signed: {:.1}", at(Kind::Signed));
    let (b1, b3) = (at(Kind::BootOne), at(Kind::BootThree));
    println!("unlock_ms_sealroot_boot_1_volume: {b1:.1}");
    println!("unlock_ms_sealroot_3_volumes: {b3:.1}");
    println!("unlock_growth_3_volumes: {:.3}", b3 / b1);
    println!("tpm_commands_per_unlock: {}", ours_cmds.len());
    println!("tpm_commands_per_unlock_rm: {}", ours_rm.len());
    println!("tpm_commands_per_unlock_signed: {}", signed_cmds.len());
    println!("tpm_commands_per_unlock_signed_rm: {}", signed_rm.len());
    println!("tpm_commands_per_unlock_clevis: {}", clevis_cmds.len());
    println!("tpm_commands_per_unlock_systemd: {}", systemd_cmds.len());
    println!("tpm_command_ms: {cmd_ms:.2}");
    println!("keyslot_check_ms: {keyslot_ms:.2}");
    println!("unlock_floor_ms: {floor:.1}");
    println!("unlock_ms_over_floor: {:.1}", s - floor);
    println!("unlock_maxrss_kb_sealroot: {rss}");
    println!("binary_bytes: {bin_bytes}");
    println!("binary_bytes_gzip: {}", gzip_len(SEALROOT));
    for (name, cmds) in [
        ("sealroot", &ours_cmds),
        ("sealroot_rm", &ours_rm),
        ("signed", &signed_cmds),
        ("signed_rm", &signed_rm),
        ("systemd", &systemd_cmds),
    ] {
        let names: Vec<&str> = cmds.iter().map(|&c| cc_name(c)).collect();
        println!("tpm_commands_{name}: {}", names.join(","));
    }
    if let Ok(base) = std::env::var("SEALROOT_BENCH_BASELINE") {
        against_baseline(&mut tpm, &base, &subjects.plain, runs);
    }
}

/// What one run unlocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `sealroot unlock --dry-run`, PCRs 0,4,7,9 (+15), minimum digest.
    Sealroot,
    /// `clevis decrypt` of a tpm2 JWE on the same PCRs.
    Clevis,
    /// Debian 12's systemd-tpm2 token plugin (`cryptsetup open
    /// --test-passphrase --token-only`), PCRs 0,4,7,9.
    Systemd,
    /// sealroot on a volume that also has a systemd-tpm2 token.
    SealrootBesideSystemd,
    /// sealroot on a volume formatted with cryptsetup's defaults (argon2id
    /// passphrase keyslot, benchmarked digest).
    SealrootDefaultFormat,
    /// systemd's plugin on a volume formatted with cryptsetup's defaults.
    SystemdDefaultFormat,
    /// sealroot in signed-policy mode.
    Signed,
    /// `sealroot boot --dry-run` of a one-volume crypttab.
    BootOne,
    /// `sealroot boot --dry-run` of a three-volume crypttab.
    BootThree,
}

impl Kind {
    const ALL: [Kind; 9] = [
        Kind::Sealroot,
        Kind::Clevis,
        Kind::Systemd,
        Kind::SealrootBesideSystemd,
        Kind::SealrootDefaultFormat,
        Kind::SystemdDefaultFormat,
        Kind::Signed,
        Kind::BootOne,
        Kind::BootThree,
    ];
}

/// Three images enrolled by one first boot of a three-volume crypttab
/// (PCRs 0,4,7,9), and crypttabs naming the first alone and all three.
fn volumes_setup(tpm: &mut Swtpm) -> (Vec<Image>, std::path::PathBuf, std::path::PathBuf) {
    let imgs: Vec<Image> = (0..3).map(|_| Image::with_passphrase(b"prov")).collect();
    let line = |i: usize, prov: bool| {
        format!(
            "v{i} {} none sealroot,sealroot-pcrs=0+4+7+9{}\n",
            p(&imgs[i].path),
            if prov {
                format!(",sealroot-provision-key={}", p(&imgs[i].key))
            } else {
                String::new()
            }
        )
    };
    let first = imgs[0].file("crypttab-first");
    std::fs::write(&first, (0..3).map(|i| line(i, true)).collect::<String>()).unwrap();
    tpm.reboot();
    let out = boot_dry_run(&tpm.tcti(), &imgs[0], &first)
        .output()
        .unwrap();
    assert!(out.status.success(), "first boot of 3 volumes: {out:?}");
    let one = imgs[0].file("crypttab-1");
    std::fs::write(&one, line(0, false)).unwrap();
    let three = imgs[0].file("crypttab-3");
    std::fs::write(&three, (0..3).map(|i| line(i, false)).collect::<String>()).unwrap();
    (imgs, one, three)
}

/// `sealroot boot --dry-run` of `crypttab`, as the initramfs integrations
/// start it.
fn boot_dry_run(tcti: &str, img: &Image, crypttab: &std::path::Path) -> Command {
    let mut c = Command::new(SEALROOT);
    c.args(["boot", "--dry-run", "--crypttab"])
        .arg(crypttab)
        .args([
            "--tcti",
            tcti,
            "--cmdline-file",
            p(&img.cmdline),
            "--eventlog",
            "none",
            "--log",
            "stderr",
        ])
        .env_remove("TPM2TOOLS_TCTI")
        .env("GLIBC_TUNABLES", sealroot::sys::harden::ALLOC_TUNABLES)
        .stdin(Stdio::null());
    c
}

/// The images and files every kind of run needs, enrolled once.
struct Subjects {
    plain: Image,
    jwe: std::path::PathBuf,
    systemd: Image,
    both: Image,
    default_format: Image,
    signed: (Image, std::path::PathBuf),
    /// Three volumes and the crypttabs naming the first, and all three.
    volumes: (Vec<Image>, std::path::PathBuf, std::path::PathBuf),
}

impl Subjects {
    fn set_up(tpm: &mut Swtpm) -> Subjects {
        let pcrs = ["--no-recovery-key", "--pcrs", "0,4,7,9"];
        let plain = Image::new();
        enroll(tpm, &plain, &pcrs).assert_exit(Exit::Ok);
        // clevis: same PCRs (0,4,7,9 and 15), sealed in the pre-unlock state.
        tpm.reboot();
        let secret = plain.file("secret");
        std::fs::write(&secret, [7u8; 32]).unwrap();
        let jwe = plain.file("secret.jwe");
        let out = Command::new("clevis")
            .args([
                "encrypt",
                "tpm2",
                r#"{"pcr_bank":"sha256","pcr_ids":"0,4,7,9,15"}"#,
            ])
            .env("TPM2TOOLS_TCTI", tpm.tcti())
            .env("TSS2_LOG", "all+NONE")
            .stdin(std::fs::File::open(&secret).unwrap())
            .output()
            .unwrap();
        assert!(out.status.success(), "clevis encrypt: {out:?}");
        std::fs::write(&jwe, &out.stdout).unwrap();
        // systemd-cryptenroll leaves sessions loaded on a simulator (no
        // resource manager): a reboot after each.
        let systemd = Image::new();
        enroll_systemd(tpm, &systemd, "0,4,7,9");
        tpm.reboot();
        let both = Image::new();
        enroll_systemd(tpm, &both, "0,4,7,9");
        tpm.reboot();
        enroll(tpm, &both, &pcrs).assert_exit(Exit::Ok);
        // cryptsetup's defaults: argon2id benchmarked for 2 s, and a
        // PBKDF2 digest benchmarked too. One image with both tokens, so both
        // tools pay the same digest.
        let default_format = Image::formatted(b"correct horse battery staple", &[]);
        tpm.reboot();
        enroll_systemd(tpm, &default_format, "0,4,7,9");
        tpm.reboot();
        enroll(tpm, &default_format, &pcrs).assert_exit(Exit::Ok);
        let signed = signed_setup(tpm);
        let volumes = volumes_setup(tpm);
        Subjects {
            plain,
            jwe,
            systemd,
            both,
            default_format,
            signed,
            volumes,
        }
    }

    fn command(&self, kind: Kind, tcti: &str) -> Command {
        match kind {
            Kind::Sealroot => sealroot_unlock(tcti, &self.plain),
            Kind::Clevis => clevis_decrypt(tcti, &self.jwe),
            Kind::Systemd => systemd_unlock_tcti(tcti, &self.systemd),
            Kind::SealrootBesideSystemd => sealroot_unlock(tcti, &self.both),
            Kind::SealrootDefaultFormat => sealroot_unlock(tcti, &self.default_format),
            Kind::SystemdDefaultFormat => systemd_unlock_tcti(tcti, &self.default_format),
            Kind::Signed => signed_unlock(tcti, &self.signed.0, &self.signed.1),
            Kind::BootOne => boot_dry_run(tcti, &self.volumes.0[0], &self.volumes.1),
            Kind::BootThree => boot_dry_run(tcti, &self.volumes.0[0], &self.volumes.2),
        }
    }
}

/// The parts of the floor estimate: one TPM command's round trip on this
/// swtpm (the mean of 200 PCR_Reads over one connection), and one keyslot
/// check at sealroot's settings (PBKDF2 1000 keyslot, digest 1000: the
/// image's passphrase keyslot, checked in process through libcryptsetup).
fn floor_parts(tcti: &str, img: &Image) -> (f64, f64) {
    use sealroot::disk::luks::Volume;
    use sealroot::tpm::Tpm;
    let mut t = Tpm::open(tcti, std::time::Duration::from_secs(5)).unwrap();
    let n = 200;
    let start = Instant::now();
    for _ in 0..n {
        t.pcr_read(&[0]).unwrap();
    }
    let cmd_ms = start.elapsed().as_secs_f64() * 1000.0 / f64::from(n);
    drop(t);
    let key = std::fs::read(&img.key).unwrap();
    let mut checks = Vec::new();
    for _ in 0..31 {
        let mut vol = Volume::open(&img.path).unwrap();
        let start = Instant::now();
        vol.check_key(Some(0), &key).unwrap();
        checks.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    (cmd_ms, median(&mut checks))
}

/// Bytes of `path` after `gzip -9` (the compression initramfs images use,
/// or close to it).
fn gzip_len(path: &str) -> usize {
    let out = Command::new("gzip").arg("-9c").arg(path).output().unwrap();
    assert!(out.status.success(), "gzip: {out:?}");
    out.stdout.len()
}

/// This binary against `base` (an older sealroot), alternating, each run in
/// a fresh boot, each on an image it enrolled itself (an older sealroot may
/// not read this one's tokens).
fn against_baseline(tpm: &mut Swtpm, base: &str, img: &Image, runs: usize) {
    let tcti = tpm.tcti();
    let bimg = Image::new();
    // Builds from before the zero-PCR refusal do not know its option.
    let help = Command::new(base)
        .args(["enroll", "--help"])
        .output()
        .unwrap();
    let zero_ok: &[&str] = if String::from_utf8_lossy(&help.stdout).contains("--allow-zero-pcrs") {
        &["--allow-zero-pcrs"]
    } else {
        &[]
    };
    let out = Command::new(base)
        .args(["enroll", "--device", p(&bimg.path), "--unlock-key-file"])
        .arg(&bimg.key)
        .args(zero_ok)
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
