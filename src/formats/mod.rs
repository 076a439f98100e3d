//! Formats of untrusted bytes (pure, no I/O): every byte here comes from the
//! disk, the ESP, the initramfs or the kernel command line, which the host
//! controls. Parsing is strict, and each parser has a fuzz target.

pub mod blob;
pub mod bootcfg;
pub mod envelope;
pub mod ephemeral;
pub mod key_origin;
pub mod keyfile;
pub mod luks2;
pub mod probe;
pub mod signed_policy;
pub mod state;
pub mod systemd_token;
pub mod volume_key;
pub mod wire;
