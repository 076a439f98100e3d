//! systemd's own TPM2 unlock, as an anchor beside sealroot's: Debian 12's
//! `systemd-cryptenroll` (systemd 252) seals a `systemd-tpm2` LUKS2 token to
//! PCRs on the test's swtpm, and `cryptsetup open --token-only` unlocks with
//! it through the `systemd-tpm2` token plugin.
//!
//! `systemd-cryptenroll --tpm2-device=` takes a TCTI string
//! (`swtpm:host=127.0.0.1,port=P`, which is what [`Swtpm::tcti`] gives), but
//! the token plugin has no such option and only finds a TPM through
//! `/sys/class/tpmrm`, which this host lacks. The LD_PRELOAD shim
//! `tests/shim/tpmrm_swtpm.c` (see its header) replaces that one discovery
//! call so the plugin gets the swtpm TCTI; the rest is systemd's own code.
//!
//! A bare swtpm has no resource manager: what a client leaves loaded stays
//! there, where `/dev/tpmrm0` would flush it on close. systemd 252 leaves one
//! session per successful unlock and two objects and two sessions per failed
//! one, so after a few runs the TPM is out of session slots. Reboot the TPM
//! before each run (as the benchmark does) or call [`flush_like_tpmrm`].

use super::{Image, Swtpm};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// Debian 12's systemd-tpm2 token plugin, which cryptsetup loads by itself.
pub const PLUGIN: &str = "/usr/lib/x86_64-linux-gnu/cryptsetup/libcryptsetup-token-systemd-tpm2.so";

/// The shim's source.
const SHIM_SOURCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/shim/tpmrm_swtpm.c");

/// The environment variable the shim reads the TCTI string from.
pub const SHIM_TCTI_ENV: &str = "TPMRM_SWTPM_TCTI";

/// The preload shim, compiled with `cc` once per process into
/// `target/tmp/tpmrm_swtpm.so` (written under a private name, then renamed
/// into place, so concurrent test binaries never load a half-written file).
pub fn shim() -> PathBuf {
    static SO: OnceLock<PathBuf> = OnceLock::new();
    SO.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let so = dir.join("tpmrm_swtpm.so");
        let tmp = dir.join(format!("tpmrm_swtpm.{}.so", std::process::id()));
        let out = Command::new("cc")
            .args([
                "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror", "-o",
            ])
            .arg(&tmp)
            .arg(SHIM_SOURCE)
            .arg("-ldl")
            .output();
        let out = match out {
            Ok(out) => out,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "`cc` not found: the systemd-tpm2 anchor compiles its LD_PRELOAD shim \
                 ({SHIM_SOURCE}) with a C compiler (apt-get install gcc)"
            ),
            Err(e) => panic!("running cc: {e}"),
        };
        assert!(
            out.status.success(),
            "cc {SHIM_SOURCE} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::rename(&tmp, &so).unwrap();
        so
    })
    .clone()
}

/// `systemd-cryptenroll --tpm2-device=TCTI --tpm2-pcrs=PCRS IMG`: add a
/// `systemd-tpm2` token sealed to the current values of `pcrs` ("0,4,7,9" or
/// "0+4+7+9"), PCR policy only (no PIN, no signed policy), authorised by the
/// image's passphrase file. Asserts it worked and that the token uses the
/// sha256 bank and exactly those PCRs.
#[track_caller]
pub fn enroll_systemd(tpm: &Swtpm, img: &Image, pcrs: &str) {
    cryptenroll(
        tpm,
        img,
        &[&format!("--tpm2-pcrs={pcrs}"), "--tpm2-with-pin=no"],
        None,
    );
    let want: Vec<u64> = pcrs
        .split([',', '+'])
        .map(|p| p.trim().parse().unwrap())
        .collect();
    let tokens = img.json()["tokens"].clone();
    let tok = tokens
        .as_object()
        .unwrap()
        .values()
        .find(|t| t["type"] == "systemd-tpm2")
        .expect("a systemd-tpm2 token after systemd-cryptenroll");
    assert_eq!(tok["tpm2-pcr-bank"], "sha256", "{tok}");
    assert_eq!(tok["tpm2-pcrs"], serde_json::json!(want), "{tok}");
    assert_eq!(tok["tpm2-pin"], false, "{tok}");
    assert!(
        tok["tpm2_pubkey_pcrs"]
            .as_array()
            .is_none_or(|a| a.is_empty()),
        "{tok}"
    );
}

/// `systemd-cryptenroll --tpm2-device=TCTI OPTIONS IMG`, authorised by the
/// image's passphrase file; `pin` is given as systemd 252 reads a new PIN
/// without a terminal, in `$NEWPIN` (src/cryptenroll/cryptenroll-tpm2.c).
/// Asserts it worked, flushes what it left loaded ([`flush_like_tpmrm`]);
/// returns the new token's JSON.
#[track_caller]
pub fn cryptenroll(
    tpm: &Swtpm,
    img: &Image,
    opts: &[&str],
    pin: Option<&str>,
) -> serde_json::Value {
    let before = img.tokens();
    let mut c = Command::new("systemd-cryptenroll");
    c.arg(format!("--unlock-key-file={}", img.key.display()))
        .arg(format!("--tpm2-device={}", tpm.tcti()))
        .args(opts)
        .arg(&img.path)
        .env_remove("PASSWORD")
        .env_remove("NEWPIN")
        .env_remove("PIN")
        .env_remove("SYSTEMD_TPM2_DEVICE")
        .stdin(Stdio::null());
    if let Some(p) = pin {
        c.env("NEWPIN", p);
    }
    let out = c
        .output()
        .expect("systemd-cryptenroll (Debian 12's systemd package) is installed");
    assert!(
        out.status.success(),
        "systemd-cryptenroll {opts:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = img
        .tokens()
        .into_iter()
        .find(|t| !before.contains(t))
        .expect("a new token after systemd-cryptenroll");
    let tok = img.json()["tokens"][id.to_string()].clone();
    assert_eq!(tok["type"], "systemd-tpm2", "{tok}");
    // systemd-cryptenroll 252 leaves a session loaded (see the module comment).
    flush_like_tpmrm(tpm);
    tok
}

/// The systemd unlock of `img` on `tpm`: see [`systemd_unlock_tcti`].
pub fn systemd_unlock(tpm: &Swtpm, img: &Image) -> Command {
    systemd_unlock_tcti(&tpm.tcti(), img)
}

/// `cryptsetup open --test-passphrase --token-only --token-type systemd-tpm2
/// IMG` with the shim preloaded and pointed at `tcti` (a swtpm, or a
/// [`super::proxy::Proxy`] in front of one): the plugin unseals the key and
/// cryptsetup checks it against its keyslot. No passphrase fallback, null
/// stdin; exit 0 when the token opened the volume.
pub fn systemd_unlock_tcti(tcti: &str, img: &Image) -> Command {
    assert!(
        Path::new(PLUGIN).exists(),
        "{PLUGIN} is missing (Debian 12's systemd-cryptsetup token plugins)"
    );
    let mut c = Command::new("cryptsetup");
    c.args(["open", "--test-passphrase", "--token-only"])
        .args(["--token-type", "systemd-tpm2"])
        .arg(&img.path)
        .env("LD_PRELOAD", shim())
        .env(SHIM_TCTI_ENV, tcti)
        .env_remove("SYSTEMD_TPM2_DEVICE")
        .stdin(Stdio::null());
    c
}

/// Flush every transient object and loaded session, as the kernel's
/// resource manager does when a client closes `/dev/tpmrm0` (see the module
/// comment): each systemd run then starts from what it would find on a real
/// machine.
pub fn flush_like_tpmrm(tpm: &Swtpm) {
    tpm.tpm2(&["flushcontext", "--transient-object"]);
    tpm.tpm2(&["flushcontext", "--loaded-session"]);
}
