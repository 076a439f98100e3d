//! dm-verity: open the read-only OS layer of an ephemeral root so the
//! lower layer is the image that was built and nothing else, or check an
//! image against its root hash. The root hash comes from the caller (the
//! kernel command line, which the boot measures); the hash device carries a
//! veritysetup superblock. See docs/ephemeral.md.

use crate::{Error, Result};
use libcryptsetup_rs::consts::flags::{CryptActivate, CryptVerity};
use libcryptsetup_rs::consts::vals::EncryptionFormat;
use libcryptsetup_rs::{CryptInit, CryptParamsVerity, CryptParamsVerityRef};
use log::info;
use std::path::PathBuf;

/// A data device, its hash tree, and the root hash they must match.
pub struct VerityArgs {
    pub data: PathBuf,
    pub hash: PathBuf,
    /// SHA-256 root hash (32 bytes).
    pub root_hash: Vec<u8>,
    /// Mapping name: `/dev/mapper/NAME`.
    pub name: String,
    /// Verify every block against the root hash now (reads the whole data
    /// device) instead of activating; works on image files.
    pub verify_only: bool,
}

/// Open `/dev/mapper/NAME` read-only through dm-verity, or (with
/// `verify_only`) read every block and compare it with the root hash.
///
/// Errors: [`Error::Io`] for a missing device, [`Error::Luks`] for a hash
/// device without a superblock, a mismatch, or a failed activation.
pub fn open(a: &VerityArgs) -> Result<()> {
    for p in [&a.data, &a.hash] {
        std::fs::metadata(p).map_err(|e| Error::io(p, e))?;
    }
    let err =
        |what: &str, e: libcryptsetup_rs::LibcryptErr| Error::luks(&a.hash, format!("{what}: {e}"));
    let mut dev = CryptInit::init(&a.hash).map_err(|e| err("opening", e))?;
    let params = CryptParamsVerity {
        hash_name: "sha256".into(),
        data_device: a.data.clone(),
        hash_device: None,
        fec_device: None,
        salt: vec![],
        hash_type: 1,
        data_block_size: 4096,
        hash_block_size: 4096,
        data_size: 0,
        hash_area_offset: 0,
        fec_area_offset: 0,
        fec_roots: 0,
        flags: if a.verify_only {
            CryptVerity::CHECK_HASH
        } else {
            CryptVerity::empty()
        },
    };
    let mut pref: CryptParamsVerityRef = (&params).try_into().map_err(|e| err("parameters", e))?;
    dev.context_handle()
        .load(Some(EncryptionFormat::Verity), Some(&mut pref))
        .map_err(|e| err("not a dm-verity hash device (veritysetup superblock)", e))?;
    let name = (!a.verify_only).then_some(a.name.as_str());
    dev.activate_handle()
        .activate_by_volume_key(name, Some(&a.root_hash), CryptActivate::READONLY)
        .map_err(|e| {
            if a.verify_only {
                Error::luks(
                    &a.data,
                    format!("does not match the root hash (or its hash tree is damaged): {e}"),
                )
            } else {
                err(&format!("activating /dev/mapper/{}", a.name), e)
            }
        })?;
    if a.verify_only {
        info!("{}: every block matches the root hash", a.data.display());
    } else {
        info!(
            "/dev/mapper/{}: {} opened through dm-verity (every read checked against the root hash)",
            a.name,
            a.data.display()
        );
    }
    Ok(())
}
