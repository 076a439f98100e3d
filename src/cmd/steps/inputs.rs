//! Inputs from the operator: the PIN (file, environment or prompt), the
//! TPM authValue derived from it, and a policy-signing public key.

use crate::formats::keyfile;
use crate::pcr::signer::PublicKey;
use crate::secret::{Key32, SecretBytes};
use crate::sys::files::read_pin_file;
use crate::{Error, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Read a policy-signing public key (PEM), for signed-policy enrollment.
pub fn read_public_key(path: &Path) -> Result<PublicKey> {
    let pem = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    PublicKey::from_pem(&pem).map_err(|e| Error::Usage(format!("{}: {e}", path.display())))
}

/// Where a PIN comes from when one is needed.
#[derive(Debug, Clone, Default)]
pub struct PinSource {
    pub file: Option<PathBuf>,
}

impl PinSource {
    /// `--pin-file`, else `$SEALROOT_PIN`, else a prompt on the terminal,
    /// answered within `timeout` when one is given.
    ///
    /// Errors: [`Error::PinOrLockout`] when no PIN can be read, it is empty,
    /// or the prompt timed out; [`Error::Io`] for the PIN file.
    pub fn get(&self, prompt: &str, timeout: Option<Duration>) -> Result<SecretBytes> {
        if let Some(f) = &self.file {
            return read_pin_file(f);
        }
        if let Some(v) = std::env::var_os("SEALROOT_PIN") {
            use std::os::unix::ffi::OsStringExt;
            let v = SecretBytes::new(v.into_vec());
            if !v.is_empty() {
                return checked(v, "SEALROOT_PIN");
            }
        }
        let p = prompt_within(prompt, timeout)?;
        if p.is_empty() {
            return Err(Error::PinOrLockout("empty PIN".into()));
        }
        checked(SecretBytes::new(p.as_bytes().to_vec()), "the typed PIN")
    }
}

/// `pin`, unless it holds a control or invisible character
/// ([`keyfile::pin_problem`]): refused before any TPM try.
fn checked(pin: SecretBytes, from: &str) -> Result<SecretBytes> {
    match keyfile::pin_problem(pin.as_bytes()) {
        Some(why) => Err(Error::Usage(format!("{from}: {why}"))),
        None => Ok(pin),
    }
}

/// Prompt on the terminal; give up after `timeout` (the prompt's thread
/// is left blocked on the terminal; the process is about to fail anyway).
fn prompt_within(prompt: &str, timeout: Option<Duration>) -> Result<zeroize::Zeroizing<String>> {
    let read = |prompt: String| {
        rpassword::prompt_password(prompt)
            .map(zeroize::Zeroizing::new)
            .map_err(|e| {
                Error::PinOrLockout(format!(
                    "a PIN is required and none could be read (no --pin-file, no SEALROOT_PIN, no terminal: {e})"
                ))
            })
    };
    let Some(t) = timeout else {
        return read(prompt.to_string());
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let prompt = prompt.to_string();
    std::thread::spawn(move || {
        let _ = tx.send(read(prompt));
    });
    rx.recv_timeout(t).unwrap_or_else(|_| {
        Err(Error::PinOrLockout(format!(
            "no PIN was typed within {} s (the unlock deadline)",
            t.as_secs()
        )))
    })
}

/// The TPM authValue derived from a PIN.
pub fn pin_auth(pin: &SecretBytes) -> Key32 {
    use sha2::{Digest as _, Sha256};
    let mut h = Sha256::new();
    h.update(b"sealroot-pin-v1\0");
    h.update(pin.as_bytes());
    let mut out: [u8; 32] = h.finalize().into();
    let k = Key32::from_bytes(out);
    zeroize::Zeroize::zeroize(&mut out);
    k
}
