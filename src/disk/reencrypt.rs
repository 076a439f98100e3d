//! LUKS2 re-encryption to a new volume key (first-boot re-keying,
//! [`crate::cmd::steps::rekey`]): the new key's unbound keyslot, putting
//! the header into re-encryption, running (or resuming) it offline with a
//! progress report, and reading how far it got.
//!
//! Re-encryption runs offline (no mapping is active; libcryptsetup reads
//! and writes the device through the kernel crypto API), before the root
//! is mounted, with `journal` resilience: a power cut at any instant
//! leaves a header that libcryptsetup recovers from, and
//! [`resume`] goes on from there. It writes to the device itself, not to
//! the checked copy, and only after the header on the device was checked
//! (before any write, as for every write of a `Volume`, or
//! [`crate::formats::luks2::reencrypt`] for a
//! header already in re-encryption).

use super::luks::{pbkdf2_min, Volume, KEYSLOT_CIPHER};
use crate::formats::luks2::reencrypt::{self, InProgress};
use crate::formats::luks2::{self, binary, hdr_size, BINARY_HEADER_LEN};
use crate::secret::VolumeKey;
use crate::{Error, Result};
use libcryptsetup_rs::consts::flags::{CryptReencrypt, CryptVolumeKey};
use libcryptsetup_rs::consts::vals::{
    CryptReencryptDirectionInfo, CryptReencryptInfo, CryptReencryptModeInfo, EncryptionFormat,
    KeyslotInfo,
};
use libcryptsetup_rs::{CryptDevice, CryptInit, CryptParamsLuks2, CryptParamsReencrypt, Either};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::raw::{c_int, c_void};
use std::path::Path;

/// The resilience sealroot re-encrypts with: each step's old ciphertext
/// is copied into the header's re-encryption area (and committed) before
/// it is overwritten, so an interrupted step is redone from the copy on
/// resume, whatever the device tore. `checksum` writes less, but hashes
/// every 4 KiB block with one OpenSSL fetch each (libcryptsetup 2.6):
/// measured under TCG it was the slower of the two (docs/first-boot.md).
pub const RESILIENCE: &str = "journal";

/// The most data re-encrypted between two header commits, in 512-byte
/// sectors (4 MiB): a progress report per step, and at most this much to
/// redo after a power cut. Larger steps gain little (the header commit
/// is small next to 4 MiB of AES-XTS), smaller ones add commits.
pub const MAX_HOTZONE_SECTORS: u64 = 8192;

/// What a progress report returns: go on, or stop (the header then says
/// "in re-encryption", as after a power cut).
pub type Report<'a> = &'a mut dyn FnMut(u64, u64) -> bool;

impl Volume {
    /// Add keyslot `slot` for `key`, a volume key that is not (yet) this
    /// volume's (libcryptsetup's `CRYPT_VOLUME_KEY_NO_SEGMENT`), wrapped by
    /// `secret` under PBKDF2 at the minimum count (it is 256 random bits).
    ///
    /// Errors: [`Error::VolumeRefused`] when the header on the device
    /// changed since it was checked; [`Error::Luks`] naming the keyslot.
    pub fn add_unbound_keyslot(
        &mut self,
        slot: u32,
        key: &VolumeKey,
        secret: &[u8],
    ) -> Result<u32> {
        self.ensure_room(1, key.as_bytes().len())?;
        self.write(&format!("adding unbound keyslot {slot}"), |d| {
            d.settings_handle().set_pbkdf_type(&pbkdf2_min())?;
            d.keyslot_handle()
                .set_encryption(KEYSLOT_CIPHER.0, KEYSLOT_CIPHER.1)?;
            d.keyslot_handle().add_by_key(
                Some(slot),
                Some(Either::Left(key.as_bytes())),
                secret,
                CryptVolumeKey::NO_SEGMENT,
            )
        })
    }

    /// Keyslots bound to no segment: a new key's before re-encryption
    /// starts, an old key's after it finished.
    pub fn unbound_keyslots(&mut self) -> Vec<u32> {
        (0..=crate::formats::blob::MAX_KEYSLOT)
            .filter(|&s| {
                matches!(
                    self.crypt().keyslot_handle().status(s),
                    Ok(KeyslotInfo::Unbound)
                )
            })
            .collect()
    }

    /// Put the header on the device into re-encryption from the key of
    /// keyslot `old` to that of keyslot `new` (both opened by `secret`),
    /// forward, with [`RESILIENCE`], the new digest at the minimum PBKDF2
    /// count. Nothing is re-encrypted yet ([`resume`] does it). Consumes
    /// the volume: its checked copy no longer describes the device.
    ///
    /// Errors: [`Error::VolumeRefused`] when the header on the device
    /// changed since it was checked; [`Error::Luks`].
    pub fn start_reencrypt(mut self, secret: &[u8], old: u32, new: u32) -> Result<()> {
        let sector = self.header().segment.sector_size;
        let path = self.path().to_path_buf();
        let w = self.writer()?;
        w.settings_handle()
            .set_pbkdf_type(&pbkdf2_min())
            .map_err(|e| Error::luks(&path, format!("re-encryption PBKDF: {e}")))?;
        w.reencrypt_handle()
            .reencrypt_init_by_passphrase(
                None,
                secret,
                Some(old),
                Some(new),
                Some(("aes", "xts-plain64")),
                params(CryptReencrypt::INITIALIZE_ONLY, sector),
            )
            .map_err(|e| Error::luks(&path, format!("starting re-encryption: {e}")))?;
        Ok(())
    }
}

fn params(flags: CryptReencrypt, sector_size: u32) -> CryptParamsReencrypt {
    CryptParamsReencrypt {
        mode: CryptReencryptModeInfo::Reencrypt,
        direction: CryptReencryptDirectionInfo::Forward,
        resilience: RESILIENCE.into(),
        hash: "sha256".into(),
        data_shift: 0,
        max_hotzone_size: MAX_HOTZONE_SECTORS,
        device_size: 0,
        luks2: Some(CryptParamsLuks2 {
            pbkdf: Some(pbkdf2_min()),
            integrity: None,
            integrity_params: None,
            data_alignment: 0,
            data_device: None,
            sector_size,
            label: None,
            subsystem: None,
        }),
        flags,
    }
}

/// libcryptsetup's context for the device itself (not a checked copy).
fn device(path: &Path, header: Option<&Path>) -> Result<CryptDevice> {
    let d = match header {
        Some(h) => CryptInit::init_with_data_device(Either::Right((h, path))),
        None => CryptInit::init(path),
    };
    let mut d = d.map_err(|e| Error::luks(path, format!("opening: {e}")))?;
    d.context_handle()
        .load::<()>(Some(EncryptionFormat::Luks2), None)
        .map_err(|e| Error::luks(path, format!("loading the header: {e}")))?;
    Ok(d)
}

/// The volume key that `secret` opens in keyslot `slot` of a header in
/// re-encryption (bound to either key), checked by libcryptsetup against
/// that keyslot's digest.
///
/// Errors: [`Error::Luks`] ("does not open").
pub fn key_in_slot(
    path: &Path,
    header: Option<&Path>,
    slot: u32,
    secret: &[u8],
) -> Result<VolumeKey> {
    let mut d = device(path, header)?;
    let mut buf = zeroize::Zeroizing::new(vec![0u8; 256]);
    let (_, len) = d
        .volume_key_handle()
        .get(Some(slot), &mut buf, Some(secret))
        .map_err(|e| Error::luks(path, format!("keyslot {slot} does not open: {e}")))?;
    Ok(VolumeKey::new(buf[..len].to_vec()))
}

unsafe extern "C" fn c_progress(size: u64, offset: u64, usr: *mut c_void) -> c_int {
    if usr.is_null() {
        return 0;
    }
    // SAFETY: `usr` is the `&mut Report` that `resume` passes to
    // crypt_reencrypt_run, alive and not otherwise borrowed for the call.
    let report = unsafe { &mut *usr.cast::<Report>() };
    c_int::from(!report(offset, size))
}

/// Run (or resume after a power cut) the re-encryption the header on the
/// device is in, offline, from keyslot `old` to keyslot `new`, both opened
/// by `secret`; libcryptsetup first recovers an interrupted hotzone from
/// its checksums. `report(done, total)` is called as it goes; `false`
/// stops it (the header stays in re-encryption).
///
/// Errors: [`Error::Luks`] (a stop is one).
pub fn resume(
    path: &Path,
    header: Option<&Path>,
    secret: &[u8],
    (old, new): (u32, u32),
    mut report: Report,
) -> Result<()> {
    let mut d = device(path, header)?;
    let state = d
        .reencrypt_handle()
        .status(params(CryptReencrypt::empty(), 0))
        .map_err(|e| Error::luks(path, format!("re-encryption status: {e}")))?;
    if state == CryptReencryptInfo::Crash {
        // A step cut short: libcryptsetup puts the hotzone back from its
        // journal (or checksums) before anything goes on.
        log::info!(
            "{}: recovering the re-encryption step a power cut interrupted",
            path.display()
        );
        init(&mut d, path, secret, (old, new), CryptReencrypt::RECOVERY)?;
        d = device(path, header)?;
    }
    let state = d
        .reencrypt_handle()
        .status(params(CryptReencrypt::empty(), 0))
        .map_err(|e| Error::luks(path, format!("re-encryption status: {e}")))?;
    if state == CryptReencryptInfo::None {
        // The recovery finished it (the cut came after the last step).
        return Ok(());
    }
    init(
        &mut d,
        path,
        secret,
        (old, new),
        CryptReencrypt::RESUME_ONLY,
    )?;
    d.reencrypt_handle()
        .reencrypt2::<Report>(Some(c_progress), Some(&mut report))
        .map_err(|e| Error::luks(path, format!("re-encryption stopped: {e}")))
}

/// `crypt_reencrypt_init_by_passphrase` on a header already in
/// re-encryption: `RECOVERY` (redo a step cut short) or `RESUME_ONLY`.
fn init(
    d: &mut CryptDevice,
    path: &Path,
    secret: &[u8],
    (old, new): (u32, u32),
    flags: CryptReencrypt,
) -> Result<()> {
    let what = if flags.contains(CryptReencrypt::RECOVERY) {
        "re-encryption recovery"
    } else {
        "resuming re-encryption"
    };
    d.reencrypt_handle()
        .reencrypt_init_by_passphrase(None, secret, Some(old), Some(new), None, params(flags, 0))
        .map(|_| ())
        .map_err(|e| Error::luks(path, format!("{what}: {e}")))
}

/// Both metadata copies of the header at `hpath` (`None`: not LUKS2).
fn read_metadata(hpath: &Path) -> Result<Option<Vec<u8>>> {
    let io = |e: std::io::Error| Error::io(hpath, e);
    let mut f = File::open(hpath).map_err(io)?;
    let mut first = vec![0u8; BINARY_HEADER_LEN];
    if f.read_exact(&mut first).is_err() {
        return Ok(None);
    }
    let Ok(hs) = hdr_size(&first) else {
        return Ok(None);
    };
    let mut metadata = vec![0u8; 2 * hs as usize];
    f.seek(SeekFrom::Start(0)).map_err(io)?;
    f.read_exact(&mut metadata).map_err(io)?;
    Ok(Some(metadata))
}

fn size_of(path: &Path) -> Result<u64> {
    File::open(path)
        .and_then(|mut d| d.seek(SeekFrom::End(0)))
        .map_err(|e| Error::io(path, e))
}

/// Whether the header of `path` (or its detached `header`) is in
/// re-encryption, and if so how far it got, checked
/// ([`reencrypt::inspect`]).
///
/// Errors: [`Error::Io`]; [`Error::VolumeRefused`] for a header in
/// re-encryption outside the allow-list.
pub fn in_progress(path: &Path, header: Option<&Path>) -> Result<Option<InProgress>> {
    let hpath = header.unwrap_or(path);
    let Some(metadata) = read_metadata(hpath)? else {
        return Ok(None);
    };
    reencrypt::inspect(&metadata, size_of(path)?)
        .map_err(|r| Error::refused(hpath, format!("LUKS2 header in re-encryption: {r}")))
}

/// A power cut in the middle of a header write leaves one metadata copy
/// torn (its checksum fails). When the other copy passes the allow-list
/// (ordinary, or in re-encryption), let libcryptsetup load the header,
/// which rewrites the torn copy from it; `true` when it did. The strict
/// reader ([`super::header`]) refuses copies that disagree, so without
/// this a cut at the wrong instant would leave the volume unopenable.
///
/// Errors: [`Error::VolumeRefused`] when no valid copy passes;
/// [`Error::Luks`] when libcryptsetup cannot load it.
pub fn repair_torn(path: &Path, header: Option<&Path>) -> Result<bool> {
    let hpath = header.unwrap_or(path);
    let Some(metadata) = read_metadata(hpath)? else {
        return Ok(false);
    };
    if binary::read_pair(&metadata).is_ok() {
        return Ok(false);
    }
    let size = size_of(path)?;
    let ok = match reencrypt::inspect(&metadata, size) {
        Ok(Some(_)) => Ok(()),
        Ok(None) if header.is_none() => luks2::validate_newest(&metadata, size).map(|_| ()),
        Ok(None) => Err(luks2::Refusal::new("header", "detached", "not repaired")),
        Err(r) => Err(r),
    };
    ok.map_err(|r| Error::refused(hpath, format!("LUKS2 header with a torn copy: {r}")))?;
    device(path, header)?;
    log::warn!(
        "{}: one LUKS2 metadata copy was torn by a power cut; libcryptsetup rewrote it from the other",
        hpath.display()
    );
    Ok(true)
}
