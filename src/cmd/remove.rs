//! `sealroot remove`: delete a sealroot token and its keyslot, refusing to
//! leave the volume without any keyslot.

use super::steps::slots::{remove_token_and_slots, token_keyslots};
use crate::disk::luks::Volume;
use crate::{Error, Result};
use std::path::Path;

/// Remove sealroot token `id` and its keyslot.
pub fn remove(device: &Path, id: u32) -> Result<Vec<u32>> {
    let mut vol = Volume::open(device)?;
    if !vol.sealroot_tokens()?.contains(&id) {
        return Err(Error::Usage(format!(
            "{}: token {id} is not a sealroot token",
            device.display()
        )));
    }
    let slots: Vec<u32> = token_keyslots(&mut vol, id)?
        .into_iter()
        .filter(|&s| vol.keyslot_active(s))
        .collect();
    remove_token_and_slots(&mut vol, id, &slots)?;
    Ok(slots)
}
