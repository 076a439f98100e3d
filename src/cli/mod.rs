//! The command line (the stable contract documented in README.md): one
//! clap struct per subcommand, each with the `run` that checks its options,
//! calls its command and prints the result. Option values that several
//! subcommands share are checked by the types in [`options`].

pub mod adopt;
pub mod boot;
pub mod enroll;
pub mod ephemeral;
pub mod lock;
pub mod options;
pub mod platform;
pub mod policy;
pub mod predict;
pub mod remove;
pub mod reseal;
pub mod status;
pub mod unlock;
pub mod verity;

use crate::sys::log::{self, Sink};
use crate::{Exit, Result};
use clap::{Parser, Subcommand};
use serde::Serialize;
use std::io::Write;

#[derive(Debug, Parser)]
#[command(
    name = "sealroot",
    version,
    about = "Unlock a LUKS2 root volume with a TPM-sealed, PCR-bound key",
    disable_help_subcommand = true,
    after_long_help = exit_codes_help()
)]
pub struct Cli {
    /// Log sink: kmsg inside an initramfs and stderr elsewhere by default.
    #[arg(long, value_enum, default_value_t = Sink::Auto, global = true)]
    pub log: Sink,
    /// Verbose logging (also shows tss-esapi/libcryptsetup messages).
    #[arg(short, long, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Enroll(enroll::EnrollCmd),
    Adopt(adopt::AdoptCmd),
    Unlock(unlock::UnlockCmd),
    Boot(boot::BootCmd),
    Status(status::StatusCmd),
    Reseal(reseal::ResealCmd),
    Remove(remove::RemoveCmd),
    Cleanup(remove::CleanupCmd),
    Platform(platform::PlatformCmd),
    /// Signed PCR policies: sign, install, revoke (docs/signed-policy.md).
    #[command(subcommand)]
    Policy(policy::PolicyCmd),
    Ephemeral(ephemeral::EphemeralCmd),
    Lock(lock::LockCmd),
    Verity(verity::VerityCmd),
    Predict(predict::PredictCmd),
}

impl Command {
    pub fn run(self) -> Result<()> {
        match self {
            Command::Enroll(c) => c.run(),
            Command::Adopt(c) => c.run(),
            Command::Unlock(c) => c.run(),
            Command::Boot(c) => c.run(),
            Command::Status(c) => c.run(),
            Command::Reseal(c) => c.run(),
            Command::Remove(c) => c.run(),
            Command::Cleanup(c) => c.run(),
            Command::Platform(c) => c.run(),
            Command::Policy(c) => c.run(),
            Command::Ephemeral(c) => c.run(),
            Command::Lock(c) => c.run(),
            Command::Verity(c) => c.run(),
            Command::Predict(c) => c.run(),
        }
    }
}

/// `--help`'s table of exit codes (from [`Exit`], like the documentation's).
fn exit_codes_help() -> String {
    let mut t = String::from("Exit codes:\n");
    for e in Exit::ALL {
        t.push_str(&format!("  {:>2}  {}\n", e.code(), e.summary()));
    }
    t
}

/// Install the log sink (and libcryptsetup's log callback); returns whether
/// records go to the kernel log, so the binary also puts the final error on
/// the console.
pub fn init_logging(cli: &Cli) -> bool {
    // tpm2-tss prints its own warnings to stderr; sealroot reports failures
    // itself, with context. TSS2_LOG set by the user still wins.
    if std::env::var_os("TSS2_LOG").is_none() {
        std::env::set_var("TSS2_LOG", "all+NONE");
    }
    log::init(cli.log, cli.verbose);
    crate::disk::luks::init_logging();
    match cli.log {
        Sink::Kmsg => true,
        Sink::Stderr => false,
        Sink::Auto => log::in_initramfs(),
    }
}

/// Print a report as pretty JSON (`--json`, a stable shape) or as text.
fn print_report<R: Serialize>(r: &R, json: bool, render: fn(&R) -> String) -> Result<()> {
    let text = if json {
        serde_json::to_string_pretty(r).expect("report serialises") + "\n"
    } else {
        render(r)
    };
    let _ = std::io::stdout().write_all(text.as_bytes());
    Ok(())
}

/// `0,4,7,15`.
fn join(v: &[u32]) -> String {
    v.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}
