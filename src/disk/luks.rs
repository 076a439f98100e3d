//! LUKS2 volumes: keyslots, tokens, volume keys, activation.
//!
//! Every read and the activation go through the checked in-memory copy of
//! the header ([`super::header`]), opened as a detached header over the
//! device. Writes (enroll, reseal, first boot, remove) go to the device
//! itself, only while its metadata is still what was checked, and the copy
//! is then read and checked again. New keyslots are added from the volume
//! key, with their area cipher set explicitly: a header the host rewrote
//! cannot make sealroot write a key under `cipher_null`.
//!
//! Keyslots that hold sealroot's TPM-sealed secret use PBKDF2 with the
//! minimum iteration count (the secret is 256 random bits, so stretching
//! adds only boot time); recovery keys use argon2id with libcryptsetup's
//! benchmarked defaults.

use super::header::CheckedHeader;
use crate::formats::blob::{MAX_KEYSLOT, TOKEN_TYPE};
use crate::formats::bootcfg::ActivationFlags;
use crate::formats::keyfile;
use crate::formats::luks2::{keyslot, Header};
use crate::formats::probe::LuksFacts;
use crate::secret::VolumeKey;
use crate::{Error, Result};
use libcryptsetup_rs::consts::flags::{CryptActivate, CryptPbkdf, CryptVolumeKey};
use libcryptsetup_rs::consts::vals::{
    CryptKdf, CryptLogLevel, EncryptionFormat, KeyslotInfo, LuksType,
};
use libcryptsetup_rs::{
    c_logging_callback, CryptDevice, CryptInit, CryptPbkdfType, CryptSettingsHandle, Either,
    TokenInput,
};
use std::path::{Path, PathBuf};

/// Which key-derivation function a new keyslot gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kdf {
    /// PBKDF2-SHA512, 1000 iterations: for 256-bit random secrets.
    Pbkdf2Min,
    /// argon2id with libcryptsetup's defaults: for human-typed keys.
    Argon2id,
}

/// PBKDF2 at the minimum iteration count, no benchmark: for keys of 256
/// random bits or more, where stretching adds only boot time. SHA-512,
/// because libcryptsetup takes the keyslot's anti-forensic hash from it:
/// the split of a 64-byte volume key is then diffused with one hash per
/// stripe instead of two, and with Debian 12's libcryptsetup each hash
/// costs an OpenSSL algorithm fetch (4000 fewer per unlock; what
/// systemd-cryptenroll does too). docs/performance.md.
pub(crate) fn pbkdf2_min() -> CryptPbkdfType {
    CryptPbkdfType {
        type_: CryptKdf::Pbkdf2,
        hash: Some("sha512".into()),
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
/// sealroot reports failures itself, with the path and the keyslot), and
/// turn off external token plugins (`libcryptsetup-token-*.so`): sealroot
/// never opens a volume through a token handler, and without this
/// libcryptsetup would load and run the handler of every foreign token it
/// looks at (a `systemd-tpm2` token made each unlock 8.5 % slower), code
/// that the host can choose by writing a token type into the header.
pub fn init_logging() {
    libcryptsetup_rs::set_log_callback::<()>(Some(c_route_log), None);
    // SAFETY: takes no arguments and only clears libcryptsetup's global
    // plugin switch; called before any device is opened (libcryptsetup
    // 2.4+, Debian 12 has 2.6.1).
    unsafe { libcryptsetup_rs_sys::crypt_token_external_disable() };
}

/// The cipher of every keyslot area sealroot writes, and its key size in
/// bytes.
pub(super) const KEYSLOT_CIPHER: (&str, usize) = ("aes-xts-plain64", 64);

/// How a volume is opened beyond its device: a detached header file
/// (crypttab's `header=`, `--header`) and the dm-crypt flags it is
/// activated with (crypttab's `discard`, …).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenOpts {
    pub header: Option<PathBuf>,
    pub flags: ActivationFlags,
}

impl OpenOpts {
    /// A detached header (or none), no activation flags.
    pub fn header(header: Option<PathBuf>) -> OpenOpts {
        OpenOpts {
            header,
            flags: ActivationFlags::default(),
        }
    }
}

/// libcryptsetup's activation flags for `flags` (and `NO_JOURNAL` for an
/// ephemeral volume's dm-integrity without a journal).
pub fn crypt_flags(flags: &ActivationFlags, no_journal: bool) -> CryptActivate {
    let pairs = [
        (flags.allow_discards, CryptActivate::ALLOW_DISCARDS),
        (flags.same_cpu_crypt, CryptActivate::SAME_CPU_CRYPT),
        (
            flags.submit_from_crypt_cpus,
            CryptActivate::SUBMIT_FROM_CRYPT_CPUS,
        ),
        (flags.no_read_workqueue, CryptActivate::NO_READ_WORKQUEUE),
        (flags.no_write_workqueue, CryptActivate::NO_WRITE_WORKQUEUE),
        (flags.readonly, CryptActivate::READONLY),
        (no_journal, CryptActivate::NO_JOURNAL),
    ];
    pairs
        .into_iter()
        .filter(|(on, _)| *on)
        .fold(CryptActivate::empty(), |a, (_, f)| a | f)
}

/// A LUKS2 volume (a block device or an image file), read through its
/// checked header copy.
pub struct Volume {
    /// libcryptsetup's view: the copy as a detached header, the device as
    /// the data device. Dropped before `checked`, whose memfd it reads.
    dev: CryptDevice,
    checked: CheckedHeader,
    /// The device opened for writing, once something is written.
    writer: Option<CryptDevice>,
    path: PathBuf,
    /// The detached header and activation flags.
    opts: OpenOpts,
}

impl Volume {
    /// Read, check and copy the header of `path`, and load the copy.
    ///
    /// Errors: [`Error::Io`] naming `path` (missing, unreadable);
    /// [`Error::VolumeRefused`] naming the header field outside the
    /// allow-list; [`Error::Luks`] when libcryptsetup cannot load it.
    pub fn open(path: &Path) -> Result<Volume> {
        Self::open_with(path, &OpenOpts::default())
    }

    /// [`Volume::open`] with a detached header (read, checked and copied
    /// exactly as one on the device; `path` is then the data device) and
    /// the flags [`Volume::activate`] uses.
    ///
    /// Errors: those of [`Volume::open`], naming the header file for the
    /// header's problems.
    pub fn open_with(path: &Path, opts: &OpenOpts) -> Result<Volume> {
        for p in std::iter::once(path).chain(opts.header.as_deref()) {
            if let Err(e) = std::fs::metadata(p) {
                return Err(Error::io(p, e));
            }
        }
        let checked = read_checked(path, opts)?;
        let dev = load(&checked, path)?;
        if let Some(h) = &opts.header {
            log::info!("{}: detached LUKS2 header {}", path.display(), h.display());
        }
        if !opts.flags.is_empty() {
            log::info!(
                "{}: activation flags {}",
                path.display(),
                opts.flags.names().join(", ")
            );
        }
        Ok(Volume {
            dev,
            checked,
            writer: None,
            path: path.to_path_buf(),
            opts: opts.clone(),
        })
    }

    /// Where the header is: the detached header file, else the device.
    pub(super) fn header_path(&self) -> &Path {
        self.opts.header.as_deref().unwrap_or(&self.path)
    }

    /// The checked header.
    pub fn header(&self) -> &Header {
        &self.checked.header
    }

    /// Read and check the header again after a write.
    fn reload(&mut self) -> Result<()> {
        let checked = read_checked(&self.path, &self.opts)?;
        self.dev = load(&checked, &self.path)?;
        self.checked = checked;
        Ok(())
    }

    /// The device opened for writing, after making sure its metadata is
    /// still the checked one.
    pub(super) fn writer(&mut self) -> Result<&mut CryptDevice> {
        if !self.checked.unchanged_on(self.header_path())? {
            return Err(Error::refused(
                &self.path,
                "the LUKS2 header on the device changed after sealroot checked it; nothing was written",
            ));
        }
        if self.writer.is_none() {
            let w = match &self.opts.header {
                Some(h) => CryptInit::init_with_data_device(Either::Right((h, &self.path))),
                None => CryptInit::init(&self.path),
            };
            let mut w = w.map_err(|e| self.err("opening", e))?;
            w.context_handle()
                .load::<()>(Some(EncryptionFormat::Luks2), None)
                .map_err(|e| self.err("loading the header for writing", e))?;
            self.writer = Some(w);
        }
        Ok(self.writer.as_mut().expect("set above"))
    }

    /// Run a write on the device, then reload the checked copy.
    pub(super) fn write<T>(
        &mut self,
        what: &str,
        f: impl FnOnce(&mut CryptDevice) -> std::result::Result<T, libcryptsetup_rs::LibcryptErr>,
    ) -> Result<T> {
        let w = self.writer()?;
        let r = f(w).map_err(|e| match is_no_space(&e) {
            true => Error::luks(
                self.header_path(),
                format!(
                    "{what}: the LUKS2 header has no room for another keyslot or token: its JSON metadata area is full ({e}); remove a token or keyslot with `sealroot remove`, or reformat with a larger --luks2-metadata-size"
                ),
            ),
            false => Error::luks(&self.path, format!("{what}: {e}")),
        });
        // The device changed (or may have, on error): drop the writer so the
        // next write reloads, and read the header again.
        self.writer = None;
        let out = r?;
        self.reload()?;
        Ok(out)
    }

    /// Rewrite the LUKS2 label and subsystem (the state volume's marker),
    /// through the checked header like every write.
    ///
    /// Errors: [`Error::Luks`] naming the device.
    pub fn set_subsystem(&mut self, label: &str, subsystem: &str) -> Result<()> {
        self.write(
            &format!("setting the LUKS2 subsystem to {subsystem:?}"),
            |d| d.context_handle().set_label(Some(label), Some(subsystem)),
        )
    }

    /// libcryptsetup's view of the checked copy.
    pub(super) fn crypt(&mut self) -> &mut CryptDevice {
        &mut self.dev
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
        self.write("writing token", |d| {
            d.token_handle().json_set(TokenInput::AddToken(v))
        })
    }

    pub fn replace_token(&mut self, id: u32, v: &serde_json::Value) -> Result<()> {
        self.write(&format!("rewriting token {id}"), |d| {
            d.token_handle()
                .json_set(TokenInput::ReplaceToken(id, v))
                .map(|_| ())
        })
    }

    pub fn remove_token(&mut self, id: u32) -> Result<()> {
        self.write(&format!("removing token {id}"), |d| {
            d.token_handle()
                .json_set(TokenInput::RemoveToken(id))
                .map(|_| ())
        })
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

    /// Fail unless the checked header has room for `n` more keyslots for
    /// a volume key of `key_size` bytes: before anything is sealed or
    /// written, so a full header leaves nothing half-done.
    ///
    /// Errors: [`Error::Luks`] saying the header is full and what to do.
    pub fn ensure_room(&self, n: usize, key_size: usize) -> Result<()> {
        if self.header().room_for_keyslots(n, key_size as u64) {
            return Ok(());
        }
        Err(self.full_keyslots_area(n))
    }

    fn full_keyslots_area(&self, n: usize) -> Error {
        let h = self.header();
        Error::luks(
            self.header_path(),
            format!(
                "the LUKS2 header has no room for {}: its keyslots area ({} bytes) is full with {} keyslots; remove one with `sealroot remove` (or `cryptsetup luksKillSlot`), or reformat with a larger --luks2-keyslots-size",
                if n == 1 { "another keyslot".to_string() } else { format!("{n} more keyslots") },
                h.keyslots_size,
                h.keyslots.len()
            ),
        )
    }

    /// Add keyslot `slot` for `new`, holding `key` (the volume key,
    /// already checked against this volume's digest), with `kdf` and the
    /// area cipher `aes-xts-plain64` (64-byte key).
    ///
    /// Errors: [`Error::VolumeRefused`] when the device's header changed
    /// since it was checked; [`Error::Luks`] naming the keyslot.
    pub fn add_keyslot(&mut self, slot: u32, key: &VolumeKey, new: &[u8], kdf: Kdf) -> Result<u32> {
        let pbkdf = match kdf {
            Kdf::Pbkdf2Min => pbkdf2_min(),
            Kdf::Argon2id => {
                let mut d = CryptSettingsHandle::get_pbkdf_default(&LuksType::Luks2)
                    .map_err(|e| self.err("argon2id defaults", e))?;
                d.type_ = CryptKdf::Argon2Id;
                d
            }
        };
        self.ensure_room(1, key.as_bytes().len())?;
        self.write(&format!("adding keyslot {slot}"), |d| {
            d.settings_handle().set_pbkdf_type(&pbkdf)?;
            d.keyslot_handle()
                .set_encryption(KEYSLOT_CIPHER.0, KEYSLOT_CIPHER.1)?;
            d.keyslot_handle().add_by_key(
                Some(slot),
                Some(Either::Left(key.as_bytes())),
                new,
                CryptVolumeKey::empty(),
            )
        })
    }

    pub fn destroy_keyslot(&mut self, slot: u32) -> Result<()> {
        self.write(&format!("destroying keyslot {slot}"), |d| {
            d.keyslot_handle().destroy(slot)
        })
    }

    /// The volume key that `key` opens in `slot` (any slot when `None`),
    /// checked by libcryptsetup against the header's digest; no mapping is
    /// made. Runs the keyslot's KDF, whose cost the allow-list bounds.
    /// Returns the slot that opened and the key.
    ///
    /// Errors: [`Error::Luks`] naming the keyslot ("does not open"), or
    /// libcryptsetup's failure.
    pub fn volume_key(&mut self, slot: Option<u32>, key: &[u8]) -> Result<(u32, VolumeKey)> {
        if let Some(s) = slot {
            if let Some(vk) = self.volume_key_in_process(s, key) {
                return Ok((s, vk));
            }
        }
        let mut buf = zeroize::Zeroizing::new(vec![0u8; 256]);
        let r = self.dev.volume_key_handle().get(slot, &mut buf, Some(key));
        match r {
            Ok((s, len)) => Ok((s as u32, VolumeKey::new(buf[..len].to_vec()))),
            Err(e) => {
                let detail = if is_wrong_key(&e) {
                    String::new()
                } else {
                    format!(": {e}")
                };
                Err(match slot {
                    Some(s) => Error::luks(
                        &self.path,
                        format!(
                            "the key does not open keyslot {s}{detail}{}",
                            newline_hint(key)
                        ),
                    ),
                    None => Error::luks(
                        &self.path,
                        format!("no keyslot accepts this key{detail}{}", newline_hint(key)),
                    ),
                })
            }
        }
    }

    /// The volume key `key` opens in PBKDF2 keyslot `slot`, derived in
    /// process from the checked copy's keyslot area
    /// ([`crate::formats::luks2::keyslot`]: a third of libcryptsetup's time
    /// with Debian 12's OpenSSL) and verified by libcryptsetup against the
    /// header's digest. `None` when the keyslot is not PBKDF2, or the key
    /// does not verify: the caller then asks libcryptsetup, whose answer
    /// stands.
    pub fn volume_key_in_process(&mut self, slot: u32, key: &[u8]) -> Option<VolumeKey> {
        let ks = self.checked.header.keyslot(slot)?.clone();
        let area = self
            .checked
            .read_copy(ks.area_offset, keyslot::split_len(&ks))
            .ok()?;
        let vk = keyslot::open(&ks, &area, key)?;
        drop(area);
        match self.dev.volume_key_handle().verify(&vk) {
            Ok(()) => Some(VolumeKey::new(vk.to_vec())),
            Err(e) => {
                log::debug!("keyslot {slot}: the in-process key does not verify ({e}); asking libcryptsetup");
                None
            }
        }
    }

    /// Check `key` against `slot` (any slot when `None`) without creating a
    /// mapping. Returns the slot that opened.
    pub fn check_key(&mut self, slot: Option<u32>, key: &[u8]) -> Result<u32> {
        self.volume_key(slot, key).map(|(s, _)| s)
    }

    /// Activate `/dev/mapper/<name>` with the volume key, from the checked
    /// header copy. `no_journal`: dm-integrity without its journal
    /// (ephemeral volumes).
    ///
    /// Errors: [`Error::Luks`] naming the mapping.
    pub fn activate(&mut self, name: &str, key: &VolumeKey, no_journal: bool) -> Result<()> {
        let flags = crypt_flags(&self.opts.flags, no_journal);
        if !self.opts.flags.is_empty() {
            log::info!(
                "activating /dev/mapper/{name} with {}",
                self.opts.flags.names().join(", ")
            );
        }
        crate::testhooks::pause_at("activate");
        self.dev
            .activate_handle()
            .activate_by_volume_key(Some(name), Some(key.as_bytes()), flags)
            .map(|_| ())
            .map_err(|e| Error::luks(&self.path, format!("activating /dev/mapper/{name}: {e}")))
    }
}

/// The checked header of `path`, or of its detached header.
fn read_checked(path: &Path, opts: &OpenOpts) -> Result<CheckedHeader> {
    match &opts.header {
        Some(h) => CheckedHeader::read_at(h, Some(path)),
        None => CheckedHeader::read(path),
    }
}

/// libcryptsetup's context for a checked header copy over `device`.
fn load(checked: &CheckedHeader, device: &Path) -> Result<CryptDevice> {
    let header = checked.path();
    let mut dev = CryptInit::init_with_data_device(Either::Right((&header, device)))
        .map_err(|e| Error::luks(device, format!("opening the header copy: {e}")))?;
    dev.context_handle()
        .load::<()>(Some(EncryptionFormat::Luks2), None)
        .map_err(|e| {
            Error::luks(
                device,
                format!("libcryptsetup cannot load the checked header ({e})"),
            )
        })?;
    Ok(dev)
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

/// What to say about a key that ends in a line ending: it is part of the
/// key, as cryptsetup reads key files.
fn newline_hint(key: &[u8]) -> String {
    match keyfile::trailing_line_ending(key) {
        Some(end) => format!(
            " (the key ends in a line ending, {end}, which is part of the key as cryptsetup reads key files byte for byte: if the passphrase does not end in one, write the file without it, e.g. printf '%s' PASSPHRASE > FILE)"
        ),
        None => String::new(),
    }
}

/// libcryptsetup's ENOSPC: the JSON metadata area cannot hold the change.
fn is_no_space(e: &libcryptsetup_rs::LibcryptErr) -> bool {
    matches!(e, libcryptsetup_rs::LibcryptErr::IOError(io) if io.raw_os_error() == Some(28))
}

/// libcryptsetup reports a key that opens no keyslot as -EPERM
/// (`crypt_activate_by_passphrase`), which std calls `PermissionDenied`.
fn is_wrong_key(e: &libcryptsetup_rs::LibcryptErr) -> bool {
    matches!(e, libcryptsetup_rs::LibcryptErr::IOError(io) if io.kind() == std::io::ErrorKind::PermissionDenied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use libcryptsetup_rs_sys as sys;

    #[test]
    fn crypttab_flags_become_libcryptsetup_flags() {
        assert_eq!(crypt_flags(&ActivationFlags::default(), false).bits(), 0);
        let one = |name: &str| {
            let mut f = ActivationFlags::default();
            assert!(f.set(name), "{name}");
            crypt_flags(&f, false).bits()
        };
        assert_eq!(one("discard"), sys::CRYPT_ACTIVATE_ALLOW_DISCARDS);
        assert_eq!(one("same-cpu-crypt"), sys::CRYPT_ACTIVATE_SAME_CPU_CRYPT);
        assert_eq!(
            one("submit-from-crypt-cpus"),
            sys::CRYPT_ACTIVATE_SUBMIT_FROM_CRYPT_CPUS
        );
        assert_eq!(
            one("no-read-workqueue"),
            sys::CRYPT_ACTIVATE_NO_READ_WORKQUEUE
        );
        assert_eq!(
            one("no-write-workqueue"),
            sys::CRYPT_ACTIVATE_NO_WRITE_WORKQUEUE
        );
        assert_eq!(one("readonly"), sys::CRYPT_ACTIVATE_READONLY);
        let all = ActivationFlags::parse_list(
            "discard,same-cpu-crypt,submit-from-crypt-cpus,no-read-workqueue,no-write-workqueue",
        )
        .unwrap();
        assert_eq!(
            crypt_flags(&all, true).bits(),
            sys::CRYPT_ACTIVATE_ALLOW_DISCARDS
                | sys::CRYPT_ACTIVATE_SAME_CPU_CRYPT
                | sys::CRYPT_ACTIVATE_SUBMIT_FROM_CRYPT_CPUS
                | sys::CRYPT_ACTIVATE_NO_READ_WORKQUEUE
                | sys::CRYPT_ACTIVATE_NO_WRITE_WORKQUEUE
                | sys::CRYPT_ACTIVATE_NO_JOURNAL
        );
    }
}
