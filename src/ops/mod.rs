//! The commands, composed from the pure modules and the edges.
//!
//! Each command takes explicit inputs (device path, TPM options, the command
//! line text) so tests can point them at image files, a private swtpm and
//! fixture command lines.

pub mod boot;
pub mod enroll;
pub mod ephemeral;
pub mod explain;
pub mod platform;
pub mod policy;
pub mod predict;
pub mod remove;
pub mod reseal;
pub mod status;
pub mod unlock;
pub mod verity;

use crate::blob::Blob;
use crate::luks::Volume;
use crate::pcr::{self, Digest};
use crate::secret::{Key32, SecretBytes};
use crate::selfpcr::{self, Measurements};
use crate::tpm::Tpm;
use crate::{Error, Result};
use log::{debug, info};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How to reach the TPM.
#[derive(Debug, Clone)]
pub struct TpmOpts {
    pub tcti: String,
    pub timeout: Duration,
}

impl TpmOpts {
    pub fn open(&self) -> Result<Tpm> {
        Tpm::open(&self.tcti, self.timeout)
    }
}

/// Read a key file exactly as cryptsetup's `--key-file` does: every byte.
pub fn read_key_file(path: &Path) -> Result<SecretBytes> {
    let bytes = if path == Path::new("-") {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut v)
            .map_err(|e| Error::io(path, e))?;
        v
    } else {
        std::fs::read(path).map_err(|e| Error::io(path, e))?
    };
    let s = SecretBytes::new(bytes);
    if s.is_empty() {
        return Err(Error::Usage(format!(
            "{}: key file is empty",
            path.display()
        )));
    }
    Ok(s)
}

/// Read a policy-signing public key (PEM), for signed-policy enrollment.
pub fn read_public_key(path: &Path) -> Result<crate::signedpolicy::PublicKey> {
    let pem = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    crate::signedpolicy::PublicKey::from_pem(&pem)
        .map_err(|e| Error::Usage(format!("{}: {e}", path.display())))
}

/// Read a PIN from a file (one trailing newline removed).
pub fn read_pin_file(path: &Path) -> Result<SecretBytes> {
    let mut v = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if v.last() == Some(&b'\n') {
        v.pop();
    }
    if v.is_empty() {
        return Err(Error::Usage(format!(
            "{}: PIN file is empty",
            path.display()
        )));
    }
    Ok(SecretBytes::new(v))
}

/// Where a PIN comes from when one is needed.
#[derive(Debug, Clone, Default)]
pub struct PinSource {
    pub file: Option<PathBuf>,
}

impl PinSource {
    /// `--pin-file`, else `$SEALROOT_PIN`, else a prompt on the terminal.
    pub fn get(&self, prompt: &str) -> Result<SecretBytes> {
        if let Some(f) = &self.file {
            return read_pin_file(f);
        }
        if let Some(v) = std::env::var_os("SEALROOT_PIN") {
            use std::os::unix::ffi::OsStringExt;
            let v = v.into_vec();
            if !v.is_empty() {
                return Ok(SecretBytes::new(v));
            }
        }
        let p = rpassword::prompt_password(prompt).map_err(|e| {
            Error::PinOrLockout(format!(
                "a PIN is required and none could be read (no --pin-file, no SEALROOT_PIN, no terminal: {e})"
            ))
        })?;
        let p = zeroize::Zeroizing::new(p);
        if p.is_empty() {
            return Err(Error::PinOrLockout("empty PIN".into()));
        }
        Ok(SecretBytes::new(p.as_bytes().to_vec()))
    }
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

/// The kernel command line sealroot measures, read from `path`.
pub fn read_cmdline(path: &Path) -> Result<String> {
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    Ok(String::from_utf8_lossy(&raw).into_owned())
}

/// Extend this boot's measurements into the self PCR unless it already
/// holds them. Returns the self PCR's value afterwards.
pub fn measure_self(tpm: &mut Tpm, now: &Measurements, current: Digest) -> Result<Digest> {
    match selfpcr::classify(&current, now) {
        selfpcr::State::Fresh => {
            tpm.pcr_extend(pcr::SELF_PCR, &now.cmdline)?;
            tpm.pcr_extend(pcr::SELF_PCR, &now.config)?;
            info!(
                "measured kernel command line and configuration into PCR {}",
                pcr::SELF_PCR
            );
            Ok(now.expected())
        }
        selfpcr::State::Measured => {
            debug!(
                "PCR {} already holds this boot's measurements",
                pcr::SELF_PCR
            );
            Ok(current)
        }
        selfpcr::State::Locked => {
            info!(
                "PCR {} is locked: sealroot already unsealed in this boot",
                pcr::SELF_PCR
            );
            Ok(current)
        }
        selfpcr::State::Other => Ok(current),
    }
}

/// Extend the lock event so the secret cannot be unsealed again this boot.
pub fn lock(tpm: &mut Tpm) -> Result<()> {
    tpm.pcr_extend(pcr::SELF_PCR, &selfpcr::lock_digest())?;
    info!("extended the lock into PCR {}", pcr::SELF_PCR);
    Ok(())
}

/// A sealroot blob with where it came from.
pub struct Source {
    /// LUKS2 token id, or `None` for a blob file.
    pub token: Option<u32>,
    pub origin: String,
    pub blob: Result<Blob>,
}

/// Load the blob file, or every sealroot token of the volume.
pub fn load_blobs(vol: &mut Volume, blob_file: Option<&Path>) -> Result<Vec<Source>> {
    if let Some(f) = blob_file {
        let bytes = std::fs::read(f).map_err(|e| Error::io(f, e))?;
        let origin = f.display().to_string();
        return Ok(vec![Source {
            token: None,
            blob: Blob::from_json(&bytes, &origin),
            origin,
        }]);
    }
    let mut out = Vec::new();
    for id in vol.sealroot_tokens()? {
        let origin = format!("token {id}");
        let blob = vol
            .token_json(id)
            .and_then(|v| Blob::from_value(v, &origin));
        out.push(Source {
            token: Some(id),
            origin,
            blob,
        });
    }
    Ok(out)
}

/// The blob's policy must be the one its fields describe: PolicyPCR over
/// `pcrs` (after PolicyAuthorize with the `authorize` key in signed mode),
/// PolicyAuthValue with a PIN; both its `policy_digest` and the sealed
/// object's own `authPolicy` must equal that. Catches a token whose key,
/// PCR values or PIN flag were edited before the TPM is asked.
pub fn check_blob_policy(blob: &Blob, origin: &str) -> Result<()> {
    let start = match &blob.authorize {
        Some(k) => crate::signedpolicy::authorized(&k.name()),
        None => [0; 32],
    };
    let expected = crate::policy::compute_from(&start, &blob.pcrs, &blob.values, blob.pin);
    if blob.policy_digest != expected {
        return Err(Error::blob(
            origin,
            "policy_digest does not match the token's PCRs, key and PIN flag (edited token?)",
        ));
    }
    if crate::tpm::sealed_auth_policy(&blob.tpm_public)? != expected {
        return Err(Error::blob(
            origin,
            "the sealed object's authPolicy is not the token's policy (edited token?)",
        ));
    }
    Ok(())
}

/// Every PCR the valid blobs' policies cover, ascending, each once: what
/// `unlock` and `status` read in one PCR_Read. Every valid blob includes the
/// self PCR.
pub fn policy_pcrs(sources: &[Source]) -> Vec<u32> {
    let mut v: Vec<u32> = sources
        .iter()
        .filter_map(|s| s.blob.as_ref().ok())
        .flat_map(|b| b.pcrs.iter().copied())
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Write a file atomically: temp file, fsync, rename, fsync the directory.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.sealroot-tmp",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    let r = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    r.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, e)
    })
}
