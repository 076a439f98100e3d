//! Test fixtures: a private swtpm per test, LUKS2 image files, and a runner
//! for the real `sealroot` binary.
#![allow(dead_code)]

pub mod luks2edit;
pub mod proxy;
pub mod rawtpm;
pub mod systemd_tpm2;

use sealroot::Exit;
use std::ffi::{OsStr, OsString};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const SEALROOT: &str = env!("CARGO_BIN_EXE_sealroot");

/// One swtpm process, killed (by PID) on drop.
pub struct Swtpm {
    child: Option<Child>,
    pub port: u16,
    pub state: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

fn free_port_pair() -> u16 {
    for _ in 0..200 {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let p = l.local_addr().unwrap().port();
        if p < 65000 && TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
            return p;
        }
    }
    panic!("no free port pair");
}

impl Swtpm {
    pub fn start() -> Swtpm {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().to_path_buf();
        let mut t = Swtpm {
            child: None,
            port: 0,
            state,
            _dir: Some(dir),
        };
        t.spawn();
        t
    }

    fn spawn(&mut self) {
        for _ in 0..5 {
            let port = free_port_pair();
            let child = Command::new("swtpm")
                .args(["socket", "--tpm2", "--server"])
                .arg(format!("type=tcp,port={port},bindaddr=127.0.0.1"))
                .arg("--ctrl")
                .arg(format!("type=tcp,port={},bindaddr=127.0.0.1", port + 1))
                .args(["--flags", "not-need-init,startup-clear", "--tpmstate"])
                .arg(format!("dir={}", self.state.display()))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("swtpm is installed");
            self.child = Some(child);
            self.port = port;
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return;
                }
                if let Some(Ok(Some(_))) = self.child.as_mut().map(|c| c.try_wait()) {
                    break; // port taken meanwhile: try another
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            self.kill();
        }
        panic!("swtpm did not start");
    }

    pub fn tcti(&self) -> String {
        format!("swtpm:host=127.0.0.1,port={}", self.port)
    }

    /// Reboot: orderly TPM2_Shutdown as the kernel does, power cycle, then
    /// Startup. PCRs reset; persistent objects, NV and DA state stay.
    pub fn reboot(&mut self) {
        self.tpm2(&["shutdown", "-c"]);
        let st = Command::new("swtpm_ioctl")
            .args(["--tcp", &format!("127.0.0.1:{}", self.port + 1), "-i"])
            .status()
            .unwrap();
        assert!(st.success(), "swtpm_ioctl -i");
        self.tpm2(&["startup", "-c"]);
    }

    /// Run a tpm2-tools command against this TPM (test setup only).
    pub fn tpm2(&self, args: &[&str]) -> Output {
        let out = Command::new(format!("tpm2_{}", args[0]))
            .args(&args[1..])
            .env("TPM2TOOLS_TCTI", self.tcti())
            .env("TSS2_LOG", "all+NONE")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "tpm2_{} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    pub fn extend(&self, pcr: u32, byte: u8) {
        let v = hex::encode([byte; 32]);
        self.tpm2(&["pcrextend", &format!("{pcr}:sha256={v}")]);
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A LUKS2 image file with a passphrase keyslot (PBKDF2, fast) in a temp dir.
pub struct Image {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
    pub key: PathBuf,
    pub cmdline: PathBuf,
}

impl Image {
    pub fn new() -> Image {
        Self::with_passphrase(b"correct horse battery staple")
    }

    pub fn with_passphrase(pass: &[u8]) -> Image {
        Self::formatted(
            pass,
            &["--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"],
        )
    }

    /// A 20 MiB LUKS2 image formatted by `cryptsetup luksFormat` with
    /// `args` (none: cryptsetup's own defaults, which benchmark the
    /// keyslot's KDF and the volume key's digest).
    pub fn formatted(pass: &[u8], args: &[&str]) -> Image {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk.img");
        let key = dir.path().join("unlock.key");
        let cmdline = dir.path().join("cmdline");
        std::fs::write(&key, pass).unwrap();
        std::fs::write(
            &cmdline,
            "BOOT_IMAGE=/vmlinuz root=/dev/mapper/root ro quiet\n",
        )
        .unwrap();
        let f = std::fs::File::create(&path).unwrap();
        f.set_len(20 << 20).unwrap();
        let out = Command::new("cryptsetup")
            .args(["luksFormat", "-q", "--type", "luks2"])
            .args(args)
            .arg("--key-file")
            .arg(&key)
            .arg(&path)
            .output()
            .unwrap();
        assert!(out.status.success(), "luksFormat: {out:?}");
        Image {
            dir,
            path,
            key,
            cmdline,
        }
    }

    /// Add a PBKDF2 (fast) keyslot for the key in file `new`, authorised by
    /// the image's own key.
    pub fn add_key(&self, new: &Path) {
        let out = Command::new("cryptsetup")
            .args(["luksAddKey", "-q", "--pbkdf", "pbkdf2"])
            .args(["--pbkdf-force-iterations", "1000", "--key-file"])
            .arg(&self.key)
            .arg(&self.path)
            .arg(new)
            .output()
            .unwrap();
        assert!(out.status.success(), "luksAddKey: {out:?}");
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn uuid(&self) -> String {
        let out = Command::new("cryptsetup")
            .arg("luksUUID")
            .arg(&self.path)
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// `cryptsetup luksDump --dump-json-metadata` parsed.
    pub fn json(&self) -> serde_json::Value {
        luks_json(&self.path)
    }

    pub fn keyslots(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self.json()["keyslots"]
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.parse().unwrap())
            .collect();
        v.sort();
        v
    }

    pub fn tokens(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self.json()["tokens"]
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.parse().unwrap())
            .collect();
        v.sort();
        v
    }

    /// Does `pass` (exact bytes) open any keyslot?
    pub fn opens(&self, pass: &[u8]) -> bool {
        let kf = self.file("probe.key");
        std::fs::write(&kf, pass).unwrap();
        let st = Command::new("cryptsetup")
            .args(["open", "--test-passphrase", "--key-file"])
            .arg(&kf)
            .arg(&self.path)
            .stderr(Stdio::null())
            .status()
            .unwrap();
        std::fs::remove_file(&kf).unwrap();
        st.success()
    }

    pub fn sha256(&self) -> String {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(std::fs::read(&self.path).unwrap()))
    }
}

/// A file of `mib` MiB of zeros (sparse) at `dir/name`: a blank device.
/// The LUKS2 metadata of `path` (`cryptsetup luksDump --dump-json-metadata`).
pub fn luks_json(path: &Path) -> serde_json::Value {
    let out = Command::new("cryptsetup")
        .args(["luksDump", "--dump-json-metadata"])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

pub fn blank(dir: &Path, name: &str, mib: u64) -> PathBuf {
    let path = dir.join(name);
    std::fs::File::create(&path)
        .unwrap()
        .set_len(mib << 20)
        .unwrap();
    path
}

/// Result of one sealroot run.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The documented exit this run ended with, or `None` for a status
    /// sealroot never returns (a signal, a crash).
    pub fn exit(&self) -> Option<Exit> {
        Exit::from_code(self.code)
    }

    /// Assert the run ended with `e`; otherwise panic (at the caller's line)
    /// with the whole run, stdout and stderr included.
    #[track_caller]
    pub fn assert_exit(&self, e: Exit) {
        if self.exit() != Some(e) {
            panic!("expected exit {} ({e:?}), got {self:?}", e.code());
        }
    }

    /// [`Run::assert_exit`], handing the run back: `let r = cmd.run().expect(Exit::Ok);`.
    #[track_caller]
    pub fn expect(self, e: Exit) -> Run {
        self.assert_exit(e);
        self
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.exit() {
            Some(e) => write!(f, "exit {} ({e:?})", self.code)?,
            None => write!(f, "exit {}", self.code)?,
        }
        write!(
            f,
            "\n--- stdout\n{}--- stderr\n{}",
            self.stdout, self.stderr
        )
    }
}

/// A sealroot command line, built up and then run:
///
/// ```ignore
/// Args::new("unlock").on(&tpm, &img).opt("name", "x").arg("--dry-run").run()
/// ```
///
/// Every run gets `--log stderr` last, no `TPM2TOOLS_TCTI` or `SEALROOT_PIN`
/// from the test's environment (only what [`Args::env`] adds), and a null
/// stdin.
#[derive(Clone, Debug, Default)]
pub struct Args {
    args: Vec<OsString>,
    env: Vec<(String, OsString)>,
    /// Leave out `--allow-zero-pcrs` ([`Args::strict_pcrs`]).
    strict: bool,
}

impl Args {
    /// `sealroot CMD`.
    pub fn new(cmd: &str) -> Args {
        Args::default().arg(cmd)
    }

    /// One more argument, as is.
    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Args {
        self.args.push(a.as_ref().to_owned());
        self
    }

    /// More arguments, as they are.
    pub fn args<I, S>(self, args: I) -> Args
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        args.into_iter().fold(self, Args::arg)
    }

    /// `--NAME VALUE` (`name` without the dashes).
    pub fn opt(self, name: &str, v: impl AsRef<OsStr>) -> Args {
        assert!(
            !name.starts_with('-'),
            "opt({name:?}): give the name without dashes"
        );
        self.arg(format!("--{name}")).arg(v)
    }

    /// `--device IMG --tcti TPM --cmdline-file IMG.cmdline`: the test image,
    /// its TPM and its kernel command line.
    pub fn on(self, tpm: &Swtpm, img: &Image) -> Args {
        self.on_tcti(&tpm.tcti(), img)
    }

    /// As [`Args::on`], through another TCTI (a recording proxy).
    pub fn on_tcti(self, tcti: &str, img: &Image) -> Args {
        self.opt("device", &img.path)
            .opt("tcti", tcti)
            .opt("cmdline-file", &img.cmdline)
    }

    /// Do not add `--allow-zero-pcrs`: by default the commands that seal
    /// (enroll, reseal, unlock, boot) get it, since a bare swtpm's PCRs are
    /// all zero and sealroot refuses to seal to those otherwise.
    pub fn strict_pcrs(mut self) -> Args {
        self.strict = true;
        self
    }

    /// An environment variable for this run.
    pub fn env(mut self, k: &str, v: impl AsRef<OsStr>) -> Args {
        self.env.push((k.to_string(), v.as_ref().to_owned()));
        self
    }

    /// The command, not started (for tests that spawn it themselves).
    pub fn command(&self) -> Command {
        let mut c = Command::new(SEALROOT);
        c.args(&self.args);
        let seals = self.args.first().is_some_and(|a| {
            ["enroll", "reseal", "unlock", "boot", "adopt"]
                .iter()
                .any(|c| a == c)
        });
        if seals && !self.strict && !self.args.iter().any(|a| a == "--print-config") {
            c.arg("--allow-zero-pcrs");
        }
        c.arg("--log")
            .arg("stderr")
            .env_remove("TPM2TOOLS_TCTI")
            .env_remove("SEALROOT_PIN")
            .stdin(Stdio::null());
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    /// Run it to completion.
    pub fn run(self) -> Run {
        let out = self.command().output().unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

pub fn sealroot(args: &[&str]) -> Run {
    sealroot_env(args, &[])
}

pub fn sealroot_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    env.iter()
        .fold(Args::default().args(args), |a, (k, v)| a.env(k, v))
        .run()
}

pub fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// `sealroot CMD --device IMG --tcti TPM --cmdline-file IMG.cmdline EXTRA...`:
/// a command against the test image, its TPM and its kernel command line.
pub fn on_image(tpm: &Swtpm, img: &Image, cmd: &str, extra: &[&str]) -> Run {
    Args::new(cmd).on(tpm, img).args(extra).run()
}

/// `sealroot enroll` with the usual test options plus `extra`.
pub fn enroll(tpm: &Swtpm, img: &Image, extra: &[&str]) -> Run {
    Args::new("enroll")
        .on(tpm, img)
        .opt("unlock-key-file", &img.key)
        .args(extra)
        .run()
}

/// `sealroot unlock --dry-run` with the usual test options plus `extra`.
pub fn unlock(tpm: &Swtpm, img: &Image, extra: &[&str]) -> Run {
    Args::new("unlock")
        .on(tpm, img)
        .opt("name", "sealroot-test")
        .arg("--dry-run")
        .args(extra)
        .run()
}

/// `sealroot status --json`, checked to succeed, parsed.
#[track_caller]
pub fn status_json(tpm: &Swtpm, img: &Image) -> (Run, serde_json::Value) {
    let st = Args::new("status")
        .on(tpm, img)
        .arg("--json")
        .run()
        .expect(Exit::Ok);
    let j = serde_json::from_str(&st.stdout).unwrap();
    (st, j)
}

/// Read every readable mapping of `pid` through /proc/PID/mem.
pub fn process_memory(pid: u32) -> Vec<u8> {
    use std::io::{Read, Seek, SeekFrom};
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let mut mem = std::fs::File::open(format!("/proc/{pid}/mem")).unwrap();
    let mut out = Vec::new();
    for line in maps.lines() {
        let mut f = line.split_whitespace();
        let range = f.next().unwrap();
        let perms = f.next().unwrap();
        if !perms.starts_with('r') || line.ends_with("[vvar]") || line.ends_with("[vsyscall]") {
            continue;
        }
        let (a, b) = range.split_once('-').unwrap();
        let (a, b) = (
            u64::from_str_radix(a, 16).unwrap(),
            u64::from_str_radix(b, 16).unwrap(),
        );
        let mut buf = vec![0u8; (b - a) as usize];
        if mem.seek(SeekFrom::Start(a)).is_ok() && mem.read_exact(&mut buf).is_ok() {
            out.extend_from_slice(&buf);
        }
    }
    out
}

/// A fresh ECDSA P-256 policy-signing key pair (PEM files, by openssl).
pub struct PolicyKeys {
    _dir: tempfile::TempDir,
    pub private: PathBuf,
    pub public: PathBuf,
}

impl PolicyKeys {
    pub fn generate() -> PolicyKeys {
        let dir = tempfile::tempdir().unwrap();
        let private = dir.path().join("priv.pem");
        let public = dir.path().join("pub.pem");
        for args in [
            vec![
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
                p(&private),
            ],
            vec!["pkey", "-in", p(&private), "-pubout", "-out", p(&public)],
        ] {
            let out = Command::new("openssl").args(&args).output().unwrap();
            assert!(out.status.success(), "openssl {args:?}: {out:?}");
        }
        PolicyKeys {
            _dir: dir,
            private,
            public,
        }
    }
}

/// A value a test-hooks build wrote to `SEALROOT_TEST_REVEAL_DIR/label` (hex).
pub fn revealed(dir: &Path, label: &str) -> Vec<u8> {
    hex::decode(std::fs::read_to_string(dir.join(label)).unwrap()).unwrap()
}

/// Run `cmd` (a test-hooks build) until it reaches its test-only pause
/// before exit, read its memory there, let it finish. Returns the memory and
/// the output; asserts it succeeded.
pub fn memory_at_pause(mut cmd: Command, pause: &Path) -> (Vec<u8>, Output) {
    let child = cmd
        .env("SEALROOT_TEST_PAUSE_FILE", pause)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while !pause.exists() {
        assert!(t.elapsed().as_secs() < 20, "never reached the pause point");
        std::thread::sleep(Duration::from_millis(5));
    }
    let mem = process_memory(child.id());
    std::fs::remove_file(pause).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    (mem, out)
}

/// `cryptsetup token import` of the file `json` into `img`, with `extra`
/// options (`--token-id N --token-replace` to rewrite a token).
#[track_caller]
pub fn import_token(img: &Image, json: &std::path::Path, extra: &[&str]) {
    let out = std::process::Command::new("cryptsetup")
        .args(["token", "import"])
        .args(extra)
        .arg("--json-file")
        .arg(json)
        .arg(&img.path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}
