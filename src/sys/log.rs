//! Log sink: `/dev/kmsg` inside an initramfs (so messages reach `dmesg` and
//! the journal), stderr elsewhere. Never pass secrets to `log` macros.

use log::{Level, LevelFilter, Log, Metadata, Record};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

/// Where log records go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Sink {
    /// kmsg inside an initramfs, stderr otherwise.
    Auto,
    Kmsg,
    Stderr,
}

/// True when running from an initramfs (dracut/systemd mark it with
/// /etc/initrd-release, initramfs-tools with /conf/initramfs.conf).
pub fn in_initramfs() -> bool {
    Path::new("/etc/initrd-release").exists() || Path::new("/conf/initramfs.conf").exists()
}

struct Logger {
    kmsg: Option<Mutex<std::fs::File>>,
    level: LevelFilter,
}

impl Log for Logger {
    fn enabled(&self, m: &Metadata) -> bool {
        let ours = m.target().starts_with("sealroot");
        // Library chatter (tss-esapi, libcryptsetup) only at -v.
        let lvl = if ours {
            m.level()
        } else {
            Level::Debug.max(m.level())
        };
        lvl <= self.level
    }

    fn log(&self, r: &Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        match &self.kmsg {
            Some(f) => {
                let prio = match r.level() {
                    Level::Error => 3,
                    Level::Warn => 4,
                    Level::Info => 6,
                    _ => 7,
                };
                // One write() per record: the kernel turns every write on
                // /dev/kmsg into its own log line.
                let text = r.args().to_string();
                if let Ok(mut f) = f.lock() {
                    for line in text.lines() {
                        let _ = f.write_all(format!("<{prio}>sealroot: {line}\n").as_bytes());
                    }
                }
            }
            None => {
                let _ = writeln!(
                    std::io::stderr(),
                    "sealroot: {}{}",
                    match r.level() {
                        Level::Error => "error: ",
                        Level::Warn => "warning: ",
                        _ => "",
                    },
                    r.args()
                );
            }
        }
    }

    fn flush(&self) {}
}

/// Install the logger. Falls back to stderr when /dev/kmsg cannot be opened.
pub fn init(sink: Sink, verbose: bool) {
    let want_kmsg = match sink {
        Sink::Kmsg => true,
        Sink::Stderr => false,
        Sink::Auto => in_initramfs(),
    };
    let kmsg = if want_kmsg {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/kmsg")
            .ok()
            .map(Mutex::new)
    } else {
        None
    };
    let level = if verbose {
        LevelFilter::Debug
    } else {
        LevelFilter::Info
    };
    let _ = log::set_boxed_logger(Box::new(Logger { kmsg, level }));
    log::set_max_level(level);
}
