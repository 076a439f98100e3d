//! The libcryptsetup edge: the only code that names libcryptsetup.
//!
//! LUKS2 volumes ([`luks`]: keyslots, tokens, volume keys, activation)
//! through a checked in-memory header copy ([`header`]),
//! keyless ephemeral volumes ([`mod@format`]), dm-verity ([`verity`]), and
//! waiting for a device node to appear ([`wait`]).

pub mod format;
pub mod header;
pub mod luks;
pub mod reencrypt;
pub mod verity;
pub mod wait;
