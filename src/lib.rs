//! sealroot: early-boot unlocker for TPM-sealed LUKS2 root volumes.
//!
//! The folders are the layers, and imports run one way (docs/design.md):
//!
//! - [`cli`]: one clap struct per subcommand; checks every option, calls a
//!   command, prints its result;
//! - [`cmd`]: one module per command, and [`cmd::steps`] for the steps
//!   several commands share; the only code that knows the order of a boot;
//! - edges, each the only code that names its library: [`tpm`] (tss-esapi
//!   and raw ESYS), [`disk`] (libcryptsetup), [`sys`] (every other libc
//!   call, the log sink, files);
//! - pure, no I/O, fuzzed where they parse untrusted bytes: [`formats`]
//!   (blob, envelope, signed policy file, boot configuration, device probe),
//!   [`pcr`] (PCR arithmetic, policy digests, PCR 15, event log, prediction,
//!   explanations), [`attest`] (SEV-SNP and Azure HCL evidence and
//!   requirements);
//! - at the bottom: [`secret`], [`error`] and the test-only [`testhooks`].
//!
//! `tests/layout.rs` fails the build when an import goes the wrong way or
//! a library is named outside its edge.

pub mod attest;
pub mod cli;
pub mod cmd;
pub mod disk;
pub mod error;
pub mod formats;
pub mod pcr;
pub mod secret;
pub mod sys;
pub mod testhooks;
pub mod tpm;

pub use error::{Error, Exit, Result};
