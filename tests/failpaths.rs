//! Every exit of `unlock` leaves PCR 15 locked when a TPM answers, so
//! nothing that runs after a failed (or key-file) unlock can unseal the real
//! volume's key in the same boot: neither sealroot itself nor raw TPM
//! commands (tests/common/rawtpm.rs). The attacker here is the host: it
//! hands the guest a volume of its own carrying the real volume's UUID.

mod common;
use common::rawtpm::{pcr_read, raw_unseal, replay_self_measurements};
use common::*;
use sealroot::Exit;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The first (only) token of `img`.
fn token(img: &Image) -> serde_json::Value {
    let j = img.json();
    let (_, t) = j["tokens"]
        .as_object()
        .unwrap()
        .iter()
        .next()
        .expect("a token");
    t.clone()
}

#[test]
fn raw_unseal_releases_the_kek_sealroot_unseals() {
    let mut tpm = Swtpm::start();
    let img = Image::new();
    enroll(&tpm, &img, &["--no-recovery-key"]).assert_exit(Exit::Ok);
    let tok = token(&img);

    // A boot sealroot has not measured: raw commands cannot unseal...
    tpm.reboot();
    assert!(raw_unseal(&tpm, &tok, None).is_err());
    // ...until they replay sealroot's measurements themselves.
    assert!(replay_self_measurements(&tpm, &tok));
    let kek = raw_unseal(&tpm, &tok, None).expect("raw unseal");
    assert_eq!(kek.len(), 32);
    // It is the KEK sealroot unseals (PCR 15 holds this boot's measurements,
    // so sealroot does not extend them again).
    let reveal = img.file("reveal");
    std::fs::create_dir(&reveal).unwrap();
    Args::new("unlock")
        .on(&tpm, &img)
        .opt("name", "x")
        .arg("--dry-run")
        .env("SEALROOT_TEST_REVEAL_DIR", &reveal)
        .run()
        .expect(Exit::Ok);
    assert_eq!(revealed(&reveal, "kek"), kek);
    // After sealroot's lock nothing unseals, and a replay is not possible.
    assert!(!replay_self_measurements(&tpm, &tok));
    assert!(raw_unseal(&tpm, &tok, None).is_err());
    assert_ne!(pcr_read(&tpm, 15), [0; 32]);
}

#[test]
fn raw_unseal_with_a_pin() {
    let mut tpm = Swtpm::start();
    let img = Image::new();
    let pin = img.file("pin");
    std::fs::write(&pin, "2468\n").unwrap();
    enroll(
        &tpm,
        &img,
        &["--no-recovery-key", "--pin", "--pin-file", p(&pin)],
    )
    .assert_exit(Exit::Ok);
    let tok = token(&img);
    tpm.reboot();
    assert!(replay_self_measurements(&tpm, &tok));
    assert!(raw_unseal(&tpm, &tok, Some("1357")).is_err(), "wrong PIN");
    assert!(raw_unseal(&tpm, &tok, None).is_err(), "no PIN");
    assert_eq!(raw_unseal(&tpm, &tok, Some("2468")).unwrap().len(), 32);
}

// ---------------------------------------------------------------------------
// The failure-path matrix: the host boots the guest with a volume of its own
// carrying the real volume's UUID (so sealroot's configuration measurement
// is the real one's), each case failing a different way, then tries to
// unseal the real volume's token in the same boot.

/// The attacker volume's own passphrase (keyslot 0).
const ATTACKER_KEY: &[u8] = b"the host's own passphrase";

fn set_uuid(img: &Image, uuid: &str) {
    let out = std::process::Command::new("cryptsetup")
        .args(["luksUUID", "-q", "--uuid", uuid])
        .arg(&img.path)
        .output()
        .unwrap();
    assert!(out.status.success(), "luksUUID: {out:?}");
    assert_eq!(img.uuid(), uuid);
}

/// `cryptsetup token import` of `tok` into `img`.
fn import_json(img: &Image, tok: &serde_json::Value) {
    let f = img.file("token.json");
    std::fs::write(&f, tok.to_string()).unwrap();
    import_token(img, &f, &[]);
}

/// One swtpm with the real volume enrolled on it (PCR mode, with a PIN if
/// `pin`), and the attacker's volume with the same UUID, after a reboot:
/// PCR 15 is fresh when the attacker's run starts.
struct Boot {
    tpm: Swtpm,
    real: Image,
    /// The real volume's token.
    tok: serde_json::Value,
    pin: Option<&'static str>,
    /// `--pin-file FILE` with the right PIN, or nothing.
    pin_args: Vec<String>,
    att: Image,
}

impl Boot {
    fn new(pin: Option<&'static str>) -> Boot {
        let mut tpm = Swtpm::start();
        let real = Image::new();
        let mut pin_args = Vec::new();
        if let Some(pin) = pin {
            let f = real.file("pin");
            std::fs::write(&f, format!("{pin}\n")).unwrap();
            pin_args = vec!["--pin-file".to_string(), p(&f).to_string()];
        }
        let mut extra = vec!["--no-recovery-key"];
        if pin.is_some() {
            extra.push("--pin");
            extra.extend(pin_args.iter().map(String::as_str));
        }
        enroll(&tpm, &real, &extra).assert_exit(Exit::Ok);
        let tok = token(&real);
        assert_eq!(tok["keyslots"], serde_json::json!(["1"]));
        let att = Image::with_passphrase(ATTACKER_KEY);
        set_uuid(&att, &real.uuid());
        tpm.reboot();
        Boot {
            tpm,
            real,
            tok,
            pin,
            pin_args,
            att,
        }
    }

    /// Give the attacker's volume a keyslot 1 with a passphrase of its own,
    /// and a copy of the real token (which names keyslot 1).
    fn copy_token_onto_own_keyslot(&self) {
        let other = self.att.file("slot1");
        std::fs::write(&other, "the host's keyslot 1").unwrap();
        self.att.add_key(&other);
        assert_eq!(self.att.keyslots(), vec![0, 1]);
        import_json(&self.att, &self.tok);
    }

    /// `sealroot unlock --dry-run` on the attacker's volume, with the
    /// options the real volume's boot uses.
    fn attack(&self, extra: &[&str]) -> Run {
        assert_eq!(pcr_read(&self.tpm, 15), [0; 32], "PCR 15 fresh before");
        unlock(&self.tpm, &self.att, extra)
    }

    /// In the same boot as the attacker's run: neither raw TPM commands
    /// (replaying sealroot's measurements when PCR 15 is still fresh) nor
    /// sealroot itself unseals the real token. Then, the control: after a
    /// reboot both do.
    #[track_caller]
    fn assert_real_key_out_of_reach(mut self, case: &str) {
        let pcr15 = hex::encode(pcr_read(&self.tpm, 15));
        // Raw commands first: when they fail they change nothing, and a
        // sealroot success would lock PCR 15 and hide what raw commands
        // could have done.
        let replayed = replay_self_measurements(&self.tpm, &self.tok);
        let raw = raw_unseal(&self.tpm, &self.tok, self.pin);
        let again = unlock(&self.tpm, &self.real, &self.pin_args());
        assert!(
            raw.is_err() && again.exit() == Some(Exit::PcrMismatch),
            "{case}: the real volume's key is still within reach in this boot (PCR 15 was {pcr15} after the attacker's run)\n\
             raw TPM commands{}: {}\nsealroot unlock of the real volume: {again:?}",
            if replayed { " (after replaying sealroot's measurements into a fresh PCR 15)" } else { "" },
            match &raw {
                Ok(k) => format!("UNSEALED ({} bytes)", k.len()),
                Err(e) => format!("refused ({e})"),
            },
        );

        // Control: in a fresh boot the real token unseals both ways.
        self.tpm.reboot();
        assert!(replay_self_measurements(&self.tpm, &self.tok));
        let kek = raw_unseal(&self.tpm, &self.tok, self.pin)
            .unwrap_or_else(|e| panic!("{case}: control: raw unseal in a fresh boot: {e}"));
        assert_eq!(kek.len(), 32);
        unlock(&self.tpm, &self.real, &self.pin_args()).expect(Exit::Ok);
    }

    fn pin_args(&self) -> Vec<&str> {
        self.pin_args.iter().map(String::as_str).collect()
    }
}

#[test]
fn a_no_token() {
    let b = Boot::new(None);
    b.attack(&[]).expect(Exit::NotEnrolled);
    b.assert_real_key_out_of_reach("no token");
}

#[test]
fn b_unparseable_token() {
    let b = Boot::new(None);
    import_json(
        &b.att,
        &serde_json::json!({
            "type": "sealroot",
            "keyslots": [],
            "version": 1,
            "keyslot": "one",
            "tpm_public": "!!",
            "garbage": {"x": [1, 2, 3]},
        }),
    );
    b.attack(&[]).expect(Exit::BlobInvalid);
    b.assert_real_key_out_of_reach("unparseable token");
}

#[test]
fn c_token_sealed_under_a_foreign_srk() {
    // A token for this UUID sealed on another TPM: its pinned SRK name is
    // not the SRK at 0x81000001 here.
    let b = Boot::new(None);
    let other = Swtpm::start();
    enroll(&other, &b.att, &["--no-recovery-key"]).assert_exit(Exit::Ok);
    assert_ne!(token(&b.att)["srk_name"], b.tok["srk_name"]);
    let r = b.attack(&[]).expect(Exit::TpmIdentity);
    assert!(r.stderr.contains("not the SRK"), "{r:?}");
    b.assert_real_key_out_of_reach("foreign SRK");
}

#[test]
fn d_pcr_mismatch() {
    // The attacker's token is sealed (on this TPM, for this UUID) to PCR 23
    // as well, which no longer matches; the real token does not cover
    // PCR 23, so only PCR 15 can keep it sealed.
    let b = Boot::new(None);
    enroll(
        &b.tpm,
        &b.att,
        &["--no-recovery-key", "--pcrs", "0,4,7,9,23"],
    )
    .assert_exit(Exit::Ok);
    b.tpm.extend(23, 0xaa);
    let r = b.attack(&[]).expect(Exit::PcrMismatch);
    assert!(r.stderr.contains("PCR 23 differs"), "{r:?}");
    b.assert_real_key_out_of_reach("PCR mismatch");
}

#[test]
fn e_wrong_pin() {
    let b = Boot::new(Some("2468"));
    b.copy_token_onto_own_keyslot();
    let wrong = b.att.file("wrong-pin");
    std::fs::write(&wrong, "1357\n").unwrap();
    b.attack(&["--pin-file", p(&wrong)])
        .expect(Exit::PinOrLockout);
    b.assert_real_key_out_of_reach("wrong PIN");
}

#[test]
fn f_missing_keyslot() {
    // The real token, unassigned (LUKS2 will not assign a token to a
    // keyslot that does not exist), naming keyslot 1, which the attacker's
    // volume does not have.
    let b = Boot::new(None);
    let mut tok = b.tok.clone();
    tok["keyslots"] = serde_json::json!([]);
    import_json(&b.att, &tok);
    assert_eq!(b.att.keyslots(), vec![0]);
    let r = b.attack(&[]).expect(Exit::Luks);
    assert!(r.stderr.contains("does not exist"), "{r:?}");
    b.assert_real_key_out_of_reach("missing keyslot");
}

#[test]
fn g_unsealed_secret_fails_the_key_check() {
    let b = Boot::new(None);
    b.copy_token_onto_own_keyslot();
    b.attack(&[]).expect(Exit::Luks);
    b.assert_real_key_out_of_reach("failed key check");
}

#[test]
fn h_wrong_recovery_key() {
    let b = Boot::new(None);
    let wrong = b.att.file("wrong-key");
    std::fs::write(&wrong, "not the key").unwrap();
    b.attack(&["--key-file", p(&wrong)]).expect(Exit::Luks);
    b.assert_real_key_out_of_reach("wrong recovery key");
}

/// How a [`LateTpm`] is late.
#[derive(Clone, Copy)]
enum Late {
    /// Nothing listens on its data port for the delay (a TPM device that
    /// appears late): connections are refused until then.
    Appears,
    /// It accepts at once but holds back the first response for the delay.
    Answers,
}

/// A forwarder to a swtpm's data and control ports that is late in one of
/// the [`Late`] ways.
struct LateTpm {
    port: u16,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

/// The first response's delay, taken by whichever connection carries it.
type Hold = Arc<Mutex<Option<Duration>>>;

fn pump(mut from: TcpStream, mut to: TcpStream, hold: Option<Hold>) {
    let mut buf = [0u8; 8192];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let delay = hold.as_ref().and_then(|h| h.lock().unwrap().take());
                if let Some(d) = delay {
                    std::thread::sleep(d);
                }
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// Forward every connection to `upstream`; the first response (on
/// whichever connection) is held back `first_response` when given.
fn forward(l: TcpListener, upstream: u16, first_response: Option<Duration>, stop: &AtomicBool) {
    let hold: Hold = Arc::new(Mutex::new(first_response));
    l.set_nonblocking(true).unwrap();
    while !stop.load(Ordering::Relaxed) {
        match l.accept() {
            Ok((client, _)) => {
                client.set_nonblocking(false).unwrap();
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let hold = hold.clone();
                std::thread::spawn(move || pump(client, server, None));
                std::thread::spawn(move || pump(s2, c2, Some(hold)));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

impl LateTpm {
    fn start(upstream: u16, late: Late, delay: Duration) -> LateTpm {
        let (data, ctrl) = loop {
            let d = TcpListener::bind("127.0.0.1:0").unwrap();
            let p = d.local_addr().unwrap().port();
            if let Ok(c) = TcpListener::bind(("127.0.0.1", p + 1)) {
                break (d, c);
            }
        };
        let port = data.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let (s1, s2) = (stop.clone(), stop.clone());
        let data_thread = move || {
            let (data, first_response) = match late {
                Late::Answers => (data, Some(delay)),
                Late::Appears => {
                    drop(data);
                    let t = Instant::now();
                    while t.elapsed() < delay {
                        if s1.load(Ordering::Relaxed) {
                            return;
                        }
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    // The port was free a moment ago; take it again.
                    let l = (0..100)
                        .find_map(|_| {
                            TcpListener::bind(("127.0.0.1", port))
                                .map_err(|_| std::thread::sleep(Duration::from_millis(10)))
                                .ok()
                        })
                        .unwrap_or_else(|| panic!("LateTpm: port {port} taken meanwhile"));
                    (l, None)
                }
            };
            forward(data, upstream, first_response, &s1);
        };
        let threads = vec![
            std::thread::spawn(data_thread),
            std::thread::spawn(move || forward(ctrl, upstream + 1, None, &s2)),
        ];
        LateTpm {
            port,
            stop,
            threads,
        }
    }

    fn tcti(&self) -> String {
        format!("swtpm:host=127.0.0.1,port={}", self.port)
    }
}

impl Drop for LateTpm {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// `unlock --key-file` with the attacker volume's own (correct) key, through
/// a TPM that is 2 s late, with `--tpm-timeout 10`: the key-file path waits
/// for the TPM as long as the TPM path would, and locks PCR 15 before it
/// returns.
fn late_tpm_on_the_key_file_path(late: Late, case: &str) {
    let b = Boot::new(None);
    let proxy = LateTpm::start(b.tpm.port, late, Duration::from_secs(2));
    assert_eq!(pcr_read(&b.tpm, 15), [0; 32]);
    let t = Instant::now();
    let r = Args::new("unlock")
        .opt("device", &b.att.path)
        .opt("tcti", proxy.tcti())
        .opt("cmdline-file", &b.att.cmdline)
        .opt("name", "sealroot-test")
        .arg("--dry-run")
        .opt("key-file", &b.att.key)
        .opt("tpm-timeout", "10")
        .run()
        .expect(Exit::Ok);
    let took = t.elapsed();
    eprintln!("{case}: {r:?}");
    drop(proxy);
    b.assert_real_key_out_of_reach(case);
    // The forwarder was late, and sealroot waited for it.
    assert!(took >= Duration::from_secs(2), "{case}: took {took:?}");
    assert!(took < Duration::from_secs(10), "{case}: took {took:?}");
}

#[test]
fn i_tpm_appearing_late_on_the_key_file_path() {
    late_tpm_on_the_key_file_path(Late::Appears, "TPM appearing 2 s late, key file");
}

#[test]
fn i_tpm_answering_late_on_the_key_file_path() {
    late_tpm_on_the_key_file_path(Late::Answers, "TPM answering 2 s late, key file");
}

/// With no TPM at all the key-file path cannot lock PCR 15, so it does not
/// report success either (the volume key is checked, nothing is opened).
#[test]
fn j_no_tpm_at_all_on_the_key_file_path() {
    let img = Image::new();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let r = Args::new("unlock")
        .opt("device", &img.path)
        .opt("tcti", format!("swtpm:host=127.0.0.1,port={port}"))
        .opt("cmdline-file", &img.cmdline)
        .opt("name", "sealroot-test")
        .arg("--dry-run")
        .opt("key-file", &img.key)
        .opt("tpm-timeout", "1")
        .run();
    r.assert_exit(Exit::NoTpm);
}

// ---------------------------------------------------------------------------

/// What a successful unlock leaves in PCR 15 depends on the volume (its
/// key), not only on the command line and UUID, and is the same every boot;
/// a failure leaves yet another value.
#[test]
fn lock_values() {
    let mut tpm = Swtpm::start();
    let a = Image::new();
    let b = Image::with_passphrase(b"another volume");
    set_uuid(&b, &a.uuid());
    for img in [&a, &b] {
        enroll(&tpm, img, &["--no-recovery-key"]).assert_exit(Exit::Ok);
    }
    assert_eq!(
        token(&a)["self_measurements"],
        token(&b)["self_measurements"],
        "same command line and UUID"
    );
    let mut after = |img: &Image, extra: &[&str], exit: Exit| {
        tpm.reboot();
        unlock(&tpm, img, extra).expect(exit);
        pcr_read(&tpm, 15)
    };
    let a1 = after(&a, &[], Exit::Ok);
    let b1 = after(&b, &[], Exit::Ok);
    let a2 = after(&a, &[], Exit::Ok);
    let wrong = a.file("wrong");
    std::fs::write(&wrong, "not the key").unwrap();
    let failed = after(&a, &["--key-file", p(&wrong)], Exit::Luks);
    assert_eq!(a1, a2, "one volume, two boots");
    assert_ne!(a1, b1, "two volumes with the same UUID and command line");
    assert_ne!(failed, [0; 32], "a failure locks too");
    assert_ne!(failed, a1, "a failure is not a success");
    assert_ne!(failed, b1, "a failure is not a success");
}

/// The unseal runs on its own connection; on an exclusive TCTI the main
/// one is closed meanwhile and reopened after. When that reopening fails,
/// sealroot reports the TPM as gone (exit 3) without a panic, and its
/// failure lock comes through a new connection: nothing unseals again in
/// this boot.
#[test]
fn a_lost_connection_after_the_unseal_still_locks() {
    let mut tpm = Swtpm::start();
    let img = Image::new();
    enroll(&tpm, &img, &["--no-recovery-key"]).assert_exit(Exit::Ok);
    tpm.reboot();
    let r = Args::new("unlock")
        .on(&tpm, &img)
        .opt("name", "x")
        .arg("--dry-run")
        .env("SEALROOT_TEST_FAIL_RECONNECT", "1")
        .run();
    r.assert_exit(Exit::NoTpm);
    assert!(r.stderr.contains("locked after the failure"), "{r:?}");
    unlock(&tpm, &img, &[]).assert_exit(Exit::PcrMismatch);
    tpm.reboot();
    unlock(&tpm, &img, &[]).assert_exit(Exit::Ok);
}
