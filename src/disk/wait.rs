//! Waiting, bounded, for a device node that udev has not created yet.

use crate::{Error, Result};
use std::path::Path;
use std::time::{Duration, Instant};

/// Wait until `path` exists, at most `timeout`; polls every 50 ms.
///
/// Errors: [`Error::Io`] naming `path` when it did not appear in time.
pub fn wait_for(path: &Path, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while !path.exists() {
        if Instant::now() >= deadline {
            return Err(Error::io(
                path,
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("device did not appear within {} s", timeout.as_secs_f32()),
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}
