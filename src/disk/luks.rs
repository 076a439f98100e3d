//! LUKS2 volumes: keyslots, tokens, key checks, activation.
//!
//! Keyslots that hold sealroot's TPM-sealed secret use PBKDF2 with the
//! minimum iteration count (the secret is 256 random bits, so stretching
//! adds only boot time); recovery keys use argon2id with libcryptsetup's
//! benchmarked defaults.

use crate::formats::blob::{MAX_KEYSLOT, TOKEN_TYPE};
use crate::formats::probe::LuksFacts;
use crate::{Error, Result};
use libcryptsetup_rs::consts::flags::{CryptActivate, CryptPbkdf};
use libcryptsetup_rs::consts::vals::{
    CryptKdf, CryptLogLevel, EncryptionFormat, KeyslotInfo, LuksType,
};
use libcryptsetup_rs::{
    c_logging_callback, CryptDevice, CryptInit, CryptPbkdfType, CryptSettingsHandle, TokenInput,
};
use std::path::{Path, PathBuf};

/// Which key-derivation function a new keyslot gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kdf {
    /// PBKDF2-SHA256, 1000 iterations: for 256-bit random secrets.
    Pbkdf2Min,
    /// argon2id with libcryptsetup's defaults: for human-typed keys.
    Argon2id,
}

/// PBKDF2-SHA256 at the minimum iteration count, no benchmark: for keys of
/// 256 random bits or more, where stretching adds only boot time.
pub(crate) fn pbkdf2_min() -> CryptPbkdfType {
    CryptPbkdfType {
        type_: CryptKdf::Pbkdf2,
        hash: Some("sha256".into()),
        time_ms: 0,
        iterations: 1000,
        max_memory_kb: 0,
        parallel_threads: 0,
        flags: CryptPbkdf::NO_BENCHMARK,
    }
}

/// What a token slot holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub id: u32,
    pub kind: String,
}

fn route_log(level: CryptLogLevel, msg: &str, _: Option<&mut ()>) {
    match level {
        CryptLogLevel::Error => log::debug!(target: "libcryptsetup", "{msg}"),
        _ => log::trace!(target: "libcryptsetup", "{msg}"),
    }
}
c_logging_callback!(c_route_log, (), route_log);

/// Route libcryptsetup's own messages into our logger (at debug level:
/// sealroot reports failures itself, with the path and the keyslot).
pub fn init_logging() {
    libcryptsetup_rs::set_log_callback::<()>(Some(c_route_log), None);
}

/// A LUKS2 volume (a block device or an image file).
pub struct Volume {
    dev: CryptDevice,
    path: PathBuf,
}

impl Volume {
    pub fn open(path: &Path) -> Result<Volume> {
        if let Err(e) = std::fs::metadata(path) {
            return Err(Error::io(path, e));
        }
        let mut dev = CryptInit::init(path).map_err(|e| Error::luks(path, e.to_string()))?;
        dev.context_handle()
            .load::<()>(Some(EncryptionFormat::Luks2), None)
            .map_err(|e| {
                Error::luks(
                    path,
                    format!("not a LUKS2 volume, or its header is damaged ({e})"),
                )
            })?;
        Ok(Volume {
            dev,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, what: &str, e: impl std::fmt::Display) -> Error {
        Error::luks(&self.path, format!("{what}: {e}"))
    }

    /// The LUKS UUID (lower case).
    pub fn uuid(&mut self) -> Result<String> {
        let u = self
            .dev
            .status_handle()
            .get_uuid()
            .map_err(|e| Error::luks(&self.path, format!("reading UUID: {e}")))?;
        Ok(u.hyphenated().to_string().to_ascii_lowercase())
    }

    /// Every active token with its type.
    pub fn tokens(&mut self) -> Result<Vec<TokenInfo>> {
        use libcryptsetup_rs::CryptTokenInfo as T;
        let mut out = Vec::new();
        for id in 0..32u32 {
            match self.dev.token_handle().status(id) {
                Ok(
                    T::Internal(k) | T::InternalUnknown(k) | T::External(k) | T::ExternalUnknown(k),
                ) => out.push(TokenInfo { id, kind: k }),
                Ok(T::Inactive) | Ok(T::Invalid) => {}
                Err(e) => return Err(self.err(&format!("token {id} status"), e)),
            }
        }
        Ok(out)
    }

    /// Ids of the sealroot tokens.
    pub fn sealroot_tokens(&mut self) -> Result<Vec<u32>> {
        self.tokens_of_type(TOKEN_TYPE)
    }

    /// Ids of the tokens of type `kind`.
    pub fn tokens_of_type(&mut self, kind: &str) -> Result<Vec<u32>> {
        Ok(self
            .tokens()?
            .into_iter()
            .filter(|t| t.kind == kind)
            .map(|t| t.id)
            .collect())
    }

    pub fn token_json(&mut self, id: u32) -> Result<serde_json::Value> {
        self.dev
            .token_handle()
            .json_get(id)
            .map_err(|e| Error::luks(&self.path, format!("reading token {id}: {e}")))
    }

    pub fn add_token(&mut self, v: &serde_json::Value) -> Result<u32> {
        self.dev
            .token_handle()
            .json_set(TokenInput::AddToken(v))
            .map_err(|e| Error::luks(&self.path, format!("writing token: {e}")))
    }

    pub fn replace_token(&mut self, id: u32, v: &serde_json::Value) -> Result<()> {
        self.dev
            .token_handle()
            .json_set(TokenInput::ReplaceToken(id, v))
            .map(|_| ())
            .map_err(|e| Error::luks(&self.path, format!("rewriting token {id}: {e}")))
    }

    pub fn remove_token(&mut self, id: u32) -> Result<()> {
        self.dev
            .token_handle()
            .json_set(TokenInput::RemoveToken(id))
            .map(|_| ())
            .map_err(|e| Error::luks(&self.path, format!("removing token {id}: {e}")))
    }

    pub fn keyslot_active(&mut self, slot: u32) -> bool {
        slot <= MAX_KEYSLOT
            && matches!(
                self.dev.keyslot_handle().status(slot),
                Ok(KeyslotInfo::Active | KeyslotInfo::ActiveLast)
            )
    }

    pub fn active_keyslots(&mut self) -> Vec<u32> {
        (0..=MAX_KEYSLOT)
            .filter(|&s| self.keyslot_active(s))
            .collect()
    }

    /// Whether `slot` uses PBKDF2 (cheap to test a key against, unlike
    /// argon2 recovery keyslots).
    pub fn keyslot_is_pbkdf2(&mut self, slot: u32) -> bool {
        matches!(
            self.dev.keyslot_handle().get_pbkdf(slot),
            Ok(CryptPbkdfType {
                type_: CryptKdf::Pbkdf2,
                ..
            })
        )
    }

    /// Keyslots that sealroot tokens name, including dangling tokens whose
    /// keyslot does not exist (yet).
    pub fn claimed_keyslots(&mut self) -> Result<Vec<u32>> {
        let mut out = Vec::new();
        for id in self.sealroot_tokens()? {
            let v = self.token_json(id)?;
            if let Some(k) = v.get("keyslot").and_then(|k| k.as_u64()) {
                out.push(k as u32);
            }
            if let Some(a) = v.get("keyslots").and_then(|k| k.as_array()) {
                out.extend(a.iter().filter_map(|s| s.as_str()?.parse::<u32>().ok()));
            }
        }
        Ok(out)
    }

    /// Lowest free keyslot that no sealroot token claims, so a new secret
    /// never lands in a slot a stale token still points at.
    pub fn free_keyslot(&mut self) -> Result<u32> {
        let claimed = self.claimed_keyslots()?;
        (0..=MAX_KEYSLOT)
            .filter(|s| !claimed.contains(s))
            .find(|&s| {
                matches!(
                    self.dev.keyslot_handle().status(s),
                    Ok(KeyslotInfo::Inactive)
                )
            })
            .ok_or_else(|| Error::luks(&self.path, "no free keyslot"))
    }

    fn set_kdf(&mut self, kdf: Kdf) -> Result<()> {
        let t = match kdf {
            Kdf::Pbkdf2Min => pbkdf2_min(),
            Kdf::Argon2id => {
                let mut d = CryptSettingsHandle::get_pbkdf_default(&LuksType::Luks2)
                    .map_err(|e| self.err("argon2id defaults", e))?;
                d.type_ = CryptKdf::Argon2Id;
                d
            }
        };
        self.dev
            .settings_handle()
            .set_pbkdf_type(&t)
            .map_err(|e| self.err("setting the PBKDF", e))
    }

    /// Add a keyslot for `new`, authorised by `existing`.
    pub fn add_keyslot(&mut self, slot: u32, existing: &[u8], new: &[u8], kdf: Kdf) -> Result<u32> {
        self.set_kdf(kdf)?;
        self.dev
            .keyslot_handle()
            .add_by_passphrase(Some(slot), existing, new)
            .map_err(|e| {
                Error::luks(
                    &self.path,
                    format!("adding keyslot {slot} failed (is the unlock key right?): {e}"),
                )
            })
    }

    pub fn destroy_keyslot(&mut self, slot: u32) -> Result<()> {
        self.dev
            .keyslot_handle()
            .destroy(slot)
            .map_err(|e| self.err(&format!("destroying keyslot {slot}"), e))
    }

    /// Check `key` against `slot` (any slot when `None`) without creating a
    /// mapping. Returns the slot that opened.
    pub fn check_key(&mut self, slot: Option<u32>, key: &[u8]) -> Result<u32> {
        self.dev
            .activate_handle()
            .activate_by_passphrase(None, slot, key, CryptActivate::empty())
            .map_err(|e| {
                let detail = if is_wrong_key(&e) {
                    String::new()
                } else {
                    format!(": {e}")
                };
                match slot {
                    Some(s) => Error::luks(
                        &self.path,
                        format!("the key does not open keyslot {s}{detail}"),
                    ),
                    None => Error::luks(&self.path, format!("no keyslot accepts this key{detail}")),
                }
            })
    }

    /// Activate `/dev/mapper/<name>`.
    pub fn activate(&mut self, name: &str, slot: Option<u32>, key: &[u8]) -> Result<u32> {
        self.dev
            .activate_handle()
            .activate_by_passphrase(Some(name), slot, key, CryptActivate::empty())
            .map_err(|e| {
                let why = if is_wrong_key(&e) {
                    match slot {
                        Some(s) => format!("the key does not open keyslot {s}"),
                        None => "no keyslot accepts this key".to_string(),
                    }
                } else {
                    e.to_string()
                };
                Error::luks(&self.path, format!("activating /dev/mapper/{name}: {why}"))
            })
    }
}

/// What libcryptsetup says about the LUKS header at `path`, for the
/// ephemeral guard: whether it loads, its keyslots and token types.
pub fn luks_facts(path: &Path) -> Result<LuksFacts> {
    Ok(match Volume::open(path) {
        Ok(mut v) => LuksFacts {
            loaded: true,
            keyslots: v.active_keyslots().len(),
            tokens: v.tokens()?.into_iter().map(|t| t.kind).collect(),
        },
        Err(_) => LuksFacts {
            loaded: false,
            keyslots: 0,
            tokens: vec![],
        },
    })
}

/// libcryptsetup reports a key that opens no keyslot as -EPERM
/// (`crypt_activate_by_passphrase`), which std calls `PermissionDenied`.
fn is_wrong_key(e: &libcryptsetup_rs::LibcryptErr) -> bool {
    matches!(e, libcryptsetup_rs::LibcryptErr::IOError(io) if io.kind() == std::io::ErrorKind::PermissionDenied)
}
