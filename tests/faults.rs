//! Fault injection: every state-changing command is killed at each step
//! boundary (test hook) and at random instants (SIGKILL). After every kill
//! the volume still opens with the old secret or the new one, no keyslot is
//! left without a token, and any dangling token is reported by `status` and
//! removed by `cleanup`. Needs `--features test-hooks`.
#![cfg(feature = "test-hooks")]

mod common;
use common::*;
use sealroot::Exit;
use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PASS: &[u8] = b"correct horse battery staple";

/// xorshift64*: reproducible random delays; the seed is printed.
struct Rng(u64);
impl Rng {
    fn new() -> Rng {
        let seed = std::env::var("FAULT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("FAULT_SEED={seed}");
        Rng(seed)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}

/// Run sealroot, SIGKILLed after `kill_after` (if still running). Returns
/// its exit, or `None` if a signal ended it (the SIGKILL, or the crash
/// hook's abort).
fn run_killed(cmd: Args, kill_after: Option<Duration>) -> Option<Exit> {
    let mut child = cmd
        .command()
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    if let Some(d) = kill_after {
        let t = Instant::now();
        while t.elapsed() < d {
            if let Ok(Some(st)) = child.try_wait() {
                return st.code().and_then(Exit::from_code);
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        let _ = child.kill();
    }
    child.wait().unwrap().code().and_then(Exit::from_code)
}

/// `cmd` with the test hook that aborts it at `step`.
fn crash_at(cmd: Args, step: &str) -> Args {
    cmd.env("SEALROOT_TEST_CRASH_AT", step)
}

fn sealroot_tokens(img: &Image) -> Vec<(u32, u32)> {
    let j = img.json();
    j["tokens"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, t)| t["type"] == "sealroot")
        .map(|(id, t)| (id.parse().unwrap(), t["keyslot"].as_u64().unwrap() as u32))
        .collect()
}

/// The invariants after any interruption. `fixed` are keyslots that exist
/// outside sealroot (passphrase, recovery). Returns the number of dangling
/// tokens cleanup removed.
fn check_invariants(img: &Image, tpm: &Swtpm, fixed: &[u32], ctx: &str) -> usize {
    let slots: BTreeSet<u32> = img.keyslots().into_iter().collect();
    let toks = sealroot_tokens(img);
    let referenced: BTreeSet<u32> = toks.iter().map(|t| t.1).collect();
    for s in &slots {
        assert!(
            fixed.contains(s) || referenced.contains(s),
            "{ctx}: keyslot {s} has no token (keyslots {slots:?}, tokens {toks:?})"
        );
    }
    let (st, j) = status_json(tpm, img);
    let dangling: Vec<u64> = j["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["verdict"] == "dangling")
        .map(|t| t["token"].as_u64().unwrap())
        .collect();
    for (id, ks) in &toks {
        let is_dangling = !slots.contains(ks);
        assert_eq!(
            is_dangling,
            dangling.contains(&(*id as u64)),
            "{ctx}: status must report exactly the dangling tokens: {st:?}"
        );
    }
    let c = sealroot(&["cleanup", "--device", p(&img.path)]);
    assert_eq!(c.exit(), Some(Exit::Ok), "{ctx}: cleanup {c:?}");
    for (_, ks) in sealroot_tokens(img) {
        assert!(
            img.keyslots().contains(&ks),
            "{ctx}: cleanup left a dangling token"
        );
    }
    dangling.len()
}

/// TPM unlock works after a reboot (old or new secret).
/// A TPM unlock works after the interruption; returns the keyslot it opened.
fn tpm_unlocks(img: &Image, tpm: &mut Swtpm, ctx: &str) -> u32 {
    tpm.reboot();
    let u = unlock(tpm, img, &[]);
    assert_eq!(
        u.exit(),
        Some(Exit::Ok),
        "{ctx}: TPM unlock failed after the interruption: {u:?}"
    );
    u.stderr
        .split("opens keyslot ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{ctx}: no keyslot in {u:?}"))
}

const ENROLL_STEPS: &[&str] = &[
    "enroll:sealed",
    "enroll:token-written",
    "enroll:keyslot-added",
    "enroll:token-assigned",
];

fn enroll_args(tpm: &Swtpm, img: &Image) -> Args {
    Args::new("enroll")
        .on(tpm, img)
        .opt("unlock-key-file", &img.key)
        .arg("--no-recovery-key")
}

#[test]
fn enroll_killed_at_every_step_and_at_random() {
    let mut tpm = Swtpm::start();
    let mut rng = Rng::new();
    let mut runs = 0;
    // Step boundaries.
    for step in ENROLL_STEPS {
        let img = Image::new();
        let exit = run_killed(crash_at(enroll_args(&tpm, &img), step), None);
        assert_eq!(exit, None, "{step}: hook did not fire");
        assert!(img.opens(PASS), "{step}: passphrase lost");
        check_invariants(&img, &tpm, &[0], step);
        runs += 1;
    }
    // Random instants within a typical enroll's duration.
    let img = Image::new();
    let t = Instant::now();
    assert_eq!(run_killed(enroll_args(&tpm, &img), None), Some(Exit::Ok));
    let span = t.elapsed().as_micros() as u64 + 1;
    for i in 0..50 {
        let img = Image::new();
        let d = Duration::from_micros(rng.below(span));
        run_killed(enroll_args(&tpm, &img), Some(d));
        let ctx = format!("enroll random #{i} ({d:?})");
        assert!(img.opens(PASS), "{ctx}: passphrase lost");
        check_invariants(&img, &tpm, &[0], &ctx);
        if !sealroot_tokens(&img).is_empty() {
            tpm_unlocks(&img, &mut tpm, &ctx);
        }
        runs += 1;
    }
    eprintln!("enroll fault runs: {runs}");
}

#[test]
fn reseal_killed_at_every_step_and_at_random() {
    let mut tpm = Swtpm::start();
    let mut rng = Rng::new();
    let img = Image::new();
    enroll(&tpm, &img, &["--no-recovery-key"]).assert_exit(Exit::Ok);
    let reseal = Args::new("reseal")
        .on(&tpm, &img)
        .opt("unlock-key-file", &img.key);
    // Leave exactly one token so the next reseal has no ambiguity: the one
    // whose keyslot the TPM unlock just opened. (Keeping another could keep
    // an old keyslot whose destruction was interrupted halfway: libcryptsetup
    // wipes a keyslot's area before it drops it from the metadata, so such a
    // slot still looks active but opens with nothing. The unlock skips it
    // for the good token; a test that removed the good token instead would
    // then fail the next round for its own doing.)
    let normalise = |tpm: &Swtpm, keep: u32| {
        let toks = sealroot_tokens(&img);
        assert!(
            toks.iter().any(|&(_, slot)| slot == keep),
            "no token for keyslot {keep}: {toks:?}"
        );
        for (id, _) in toks.iter().filter(|&&(_, slot)| slot != keep) {
            Args::new("remove")
                .opt("device", &img.path)
                .opt("token", id.to_string())
                .run()
                .assert_exit(Exit::Ok);
        }
        assert_eq!(sealroot_tokens(&img).len(), 1, "{:?}", tpm.port);
    };
    let mut runs = 0;
    let steps: Vec<&str> = ENROLL_STEPS
        .iter()
        .copied()
        .chain(["reseal:new-complete", "remove:keyslot-destroyed"])
        .collect();
    for step in &steps {
        let exit = run_killed(crash_at(reseal.clone(), step), None);
        assert_eq!(exit, None, "{step}: hook did not fire");
        check_invariants(&img, &tpm, &[0], step);
        let keep = tpm_unlocks(&img, &mut tpm, step);
        normalise(&tpm, keep);
        runs += 1;
    }
    let t = Instant::now();
    assert_eq!(run_killed(reseal.clone(), None), Some(Exit::Ok));
    let span = t.elapsed().as_micros() as u64 + 1;
    for i in 0..70 {
        let d = Duration::from_micros(rng.below(span));
        run_killed(reseal.clone(), Some(d));
        let ctx = format!("reseal random #{i} ({d:?})");
        check_invariants(&img, &tpm, &[0], &ctx);
        let keep = tpm_unlocks(&img, &mut tpm, &ctx);
        normalise(&tpm, keep);
        runs += 1;
    }
    eprintln!("reseal fault runs: {runs}");
}

#[test]
fn remove_killed_at_every_step_and_at_random() {
    let tpm = Swtpm::start();
    let mut rng = Rng::new();
    let mut runs = 0;
    let mut span = 0;
    for i in 0..41 {
        let img = Image::new();
        enroll(&tpm, &img, &["--no-recovery-key"]).assert_exit(Exit::Ok);
        let remove = Args::new("remove")
            .opt("device", &img.path)
            .opt("token", "0");
        let (cmd, kill) = match i {
            0 => (crash_at(remove, "remove:keyslot-destroyed"), None),
            1 => (remove, None),
            _ => (remove, Some(Duration::from_micros(rng.below(span)))),
        };
        let t = Instant::now();
        let exit = run_killed(cmd, kill);
        if i == 0 {
            assert_eq!(exit, None, "hook did not fire");
        }
        if i == 1 {
            assert_eq!(exit, Some(Exit::Ok));
            span = t.elapsed().as_micros() as u64 + 1;
        }
        let ctx = format!("remove #{i} ({kill:?})");
        assert!(img.opens(PASS), "{ctx}: passphrase lost");
        check_invariants(&img, &tpm, &[0], &ctx);
        runs += 1;
    }
    eprintln!("remove fault runs: {runs}");
}

#[test]
fn first_boot_killed_at_every_step_and_at_random() {
    let mut tpm = Swtpm::start();
    let mut rng = Rng::new();
    let mut runs = 0;
    let steps = ENROLL_STEPS
        .iter()
        .copied()
        .chain(["firstboot:enrolled", "firstboot:activated"]);
    let mut cases: Vec<(Option<&str>, bool)> = steps.map(|s| (Some(s), false)).collect();
    cases.push((None, false)); // a clean run, to time it
    cases.extend((0..45).map(|_| (None, true)));
    let mut span = 0;
    for (i, (step, random)) in cases.into_iter().enumerate() {
        let img = Image::with_passphrase(b"provisioning key");
        let rec = img.file("rec");
        std::fs::write(&rec, PASS).unwrap();
        img.add_key(&rec);
        tpm.reboot();
        let first_boot = Args::new("unlock")
            .on(&tpm, &img)
            .opt("name", "root")
            .arg("--dry-run")
            .opt("provision-key-file", &img.key);
        let cmd = match step {
            Some(s) => crash_at(first_boot.clone(), s),
            None => first_boot.clone(),
        };
        let kill = random.then(|| Duration::from_micros(rng.below(span)));
        let t = Instant::now();
        let exit = run_killed(cmd, kill);
        if step.is_none() && !random {
            assert_eq!(exit, Some(Exit::Ok));
            span = t.elapsed().as_micros() as u64 + 1;
        }
        let ctx = format!("first boot #{i} {step:?} {kill:?}");
        assert!(img.opens(PASS), "{ctx}: recovery lost");
        check_invariants(&img, &tpm, &[0, 1], &ctx);
        // The next boot always comes up, and finishes the job.
        tpm.reboot();
        let again = first_boot.run();
        assert_eq!(
            again.exit(),
            Some(Exit::Ok),
            "{ctx}: next boot failed: {again:?}"
        );
        assert!(
            !img.opens(b"provisioning key"),
            "{ctx}: provisioning key still works"
        );
        assert_eq!(sealroot_tokens(&img).len(), 1, "{ctx}");
        runs += 1;
    }
    eprintln!("first-boot fault runs: {runs}");
}

#[test]
fn a_stale_token_never_shares_a_keyslot_or_blocks_the_valid_one() {
    let mut tpm = Swtpm::start();
    let img = Image::new();
    // An enrollment killed after writing its token: the token claims a
    // keyslot that does not exist.
    let exit = run_killed(
        crash_at(enroll_args(&tpm, &img), "enroll:token-written"),
        None,
    );
    assert_eq!(exit, None, "hook did not fire");
    let stale = sealroot_tokens(&img);
    assert_eq!(stale.len(), 1);
    // Nobody ran cleanup; the next enrollment must pick another keyslot.
    enroll(&tpm, &img, &["--no-recovery-key"]).assert_exit(Exit::Ok);
    let toks = sealroot_tokens(&img);
    assert_eq!(toks.len(), 2);
    assert_ne!(
        toks[0].1, toks[1].1,
        "two tokens claim one keyslot: {toks:?}"
    );
    tpm_unlocks(&img, &mut tpm, "after a stale token");
    // Even if a stale token pointed at a live keyslot with another secret,
    // it is skipped before the lock and the valid token still opens.
    let mut forged = img.json()["tokens"][toks[0].0.to_string()].clone();
    forged["keyslot"] = toks[1].1.into();
    // Assigned, so it is tried first.
    forged["keyslots"] = serde_json::json!([toks[1].1.to_string()]);
    let f = img.file("forged.json");
    std::fs::write(&f, forged.to_string()).unwrap();
    Args::new("remove")
        .opt("device", &img.path)
        .opt("token", toks[0].0.to_string())
        .run()
        .assert_exit(Exit::Ok);
    let out = Command::new("cryptsetup")
        .args(["token", "import", "--json-file"])
        .arg(&f)
        .arg(&img.path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    tpm.reboot();
    let u = unlock(&tpm, &img, &[]);
    u.assert_exit(Exit::Ok);
    assert!(u.stderr.contains("envelope does not authenticate"), "{u:?}");
    // And the lock still came after: a second unlock is refused.
    unlock(&tpm, &img, &[]).assert_exit(Exit::PcrMismatch);
}
