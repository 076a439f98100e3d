//! The OS edge: every libc call and file or process helper that is not the
//! TPM's or libcryptsetup's. The log sink ([`log`]), process hardening
//! ([`harden`]), files that hold keys and blobs ([`files`]), block devices
//! ([`block`]), `mkfs.ext4` ([`mkfs`]), securityfs ([`securityfs`]) and the
//! SEV-SNP guest device ([`sevguest`]), and the TDX guest's configfs-tsm
//! reports and RTMRs ([`tsm`]).

pub mod block;
pub mod files;
pub mod harden;
pub mod log;
pub mod memfd;
pub mod mkfs;
pub mod securityfs;
pub mod sevguest;
pub mod tsm;
