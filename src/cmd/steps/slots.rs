//! Removing a token with its keyslots. The keyslot goes first and the
//! token second, so an interruption leaves a dangling token (reported by
//! `status`, removed by `cleanup`), never an unidentifiable keyslot; a
//! removal that would leave the volume with no keyslot at all is refused.

use crate::disk::luks::Volume;
use crate::formats::blob::{Blob, MAX_KEYSLOT};
use crate::testhooks::checkpoint;
use crate::{Error, Result};
use log::info;

/// Keyslots a token claims: its blob's keyslot, or, for a token that does
/// not parse, its LUKS2 `keyslots` list.
pub fn token_keyslots(vol: &mut Volume, id: u32) -> Result<Vec<u32>> {
    let v = vol.token_json(id)?;
    if let Ok(b) = Blob::from_value(v.clone(), "token") {
        return Ok(vec![b.keyslot]);
    }
    Ok(v.get("keyslots")
        .and_then(|k| k.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str()?.parse::<u32>().ok())
                .filter(|&s| s <= MAX_KEYSLOT)
                .collect()
        })
        .unwrap_or_default())
}

/// Destroy `slots` then token `id`, refusing to leave no keyslot.
pub fn remove_token_and_slots(vol: &mut Volume, id: u32, slots: &[u32]) -> Result<()> {
    let remaining: Vec<u32> = vol
        .active_keyslots()
        .into_iter()
        .filter(|s| !slots.contains(s))
        .collect();
    if remaining.is_empty() && !slots.is_empty() {
        return Err(Error::luks(
            vol.path(),
            format!(
                "removing token {id} would destroy the last keyslot ({}); add a recovery key or passphrase first",
                slots[0]
            ),
        ));
    }
    for &s in slots {
        vol.destroy_keyslot(s)?;
        info!("destroyed keyslot {s}");
        checkpoint("remove:keyslot-destroyed");
    }
    vol.remove_token(id)?;
    info!("removed token {id}");
    Ok(())
}
