//! `sealroot ephemeral`: one keyless volume under a fresh per-boot key
//! ([`super::steps::ephemeral`]).

use super::steps::ephemeral::{self, EphemeralArgs, Outcome};
use crate::Result;

/// See [`ephemeral::run`].
pub fn run(args: &EphemeralArgs) -> Result<Outcome> {
    ephemeral::run(args)
}
