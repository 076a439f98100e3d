//! sealroot: early-boot unlocker for TPM-sealed LUKS2 root volumes.
//!
//! Pure logic (PCR arithmetic, policy digests, the blob format, the
//! envelope, self-PCR prediction, the event log and PCR prediction) lives
//! in modules with no I/O; the edges that touch the TPM ([`tpm`]),
//! libcryptsetup ([`luks`]) and the log sink ([`logging`]) are small and
//! separate; [`ops`] composes them into the commands the binary exposes.

pub mod blob;
pub mod bootcfg;
pub mod cli;
pub mod envelope;
pub mod ephemeral;
pub mod error;
pub mod eventlog;
pub mod explain;
pub mod logging;
pub mod luks;
pub mod ops;
pub mod pcr;
pub mod platform;
pub mod policy;
pub mod predict;
pub mod secret;
pub mod selfpcr;
pub mod signedpolicy;
pub mod testhooks;
pub mod tpm;
pub mod tpmraw;

pub use error::{Error, Exit, Result};
