//! The `sealroot` binary: harden the process, parse the arguments, run the
//! command, map its error to a documented exit code (README.md,
//! docs/format.md; `sealroot --help` lists them).

use clap::Parser;
use sealroot::cli::{self, Cli};
use sealroot::{secret, sys, testhooks, Exit};
use std::process::ExitCode;

fn main() -> ExitCode {
    sys::harden::harden_process();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            let exit = if e.use_stderr() {
                Exit::Usage
            } else {
                Exit::Ok
            };
            return ExitCode::from(exit.code());
        }
    };
    let to_kmsg = cli::init_logging(&cli);
    if sys::harden::reexecuted() {
        log::debug!(
            "re-executed once to set GLIBC_TUNABLES={} (start sealroot with it set, as the initramfs integrations do, to save that)",
            sys::harden::ALLOC_TUNABLES
        );
    }
    let code = match cli.command.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            if to_kmsg {
                eprintln!("sealroot: error: {e}");
            }
            ExitCode::from(e.exit().code())
        }
    };
    // Overwrite the stack that the commands used: unsealed keys passed
    // through tss-esapi and AES-GCM locals there.
    secret::scrub_stack();
    testhooks::pause_before_exit();
    code
}
