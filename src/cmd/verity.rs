//! `sealroot verity`: open the read-only OS layer of an ephemeral root
//! through dm-verity, or check an image file against its root hash.

use crate::disk::verity::{self, VerityArgs};
use crate::Result;

/// See [`verity::open`].
pub fn run(args: &VerityArgs) -> Result<()> {
    verity::open(args)
}
