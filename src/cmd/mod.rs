//! The commands: one module each, composed from [`steps`], the edges
//! ([`crate::tpm`], [`crate::disk`], [`crate::sys`]) and the pure modules.
//! No command imports another; what two commands share is a step.
//!
//! Each command takes explicit inputs (device path, TPM options, the
//! command line text) so tests can point them at image files, a private
//! swtpm and fixture command lines.

pub mod adopt;
pub mod boot;
pub mod cleanup;
pub mod enroll;
pub mod ephemeral;
pub mod lock;
pub mod platform;
pub mod policy;
pub mod predict;
pub mod remove;
pub mod reseal;
pub mod status;
pub mod steps;
pub mod unlock;
pub mod verity;
