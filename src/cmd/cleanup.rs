//! `sealroot cleanup`: remove the dangling tokens an interrupted enroll,
//! reseal or remove left behind.

use super::steps::slots::token_keyslots;
use crate::disk::luks::Volume;
use crate::Result;
use log::info;
use std::path::Path;

/// Remove sealroot tokens whose keyslot does not exist (left by an
/// interrupted enroll/reseal/remove). Returns the removed token ids.
pub fn run(device: &Path) -> Result<Vec<u32>> {
    let mut vol = Volume::open(device)?;
    let mut removed = Vec::new();
    for id in vol.sealroot_tokens()? {
        let slots = token_keyslots(&mut vol, id)?;
        if slots.iter().all(|&s| !vol.keyslot_active(s)) {
            vol.remove_token(id)?;
            info!("removed dangling token {id} (keyslots {slots:?} do not exist)");
            removed.push(id);
        }
    }
    Ok(removed)
}
