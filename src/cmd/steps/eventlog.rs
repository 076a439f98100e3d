//! This boot's event log, for mismatch explanations and for recording the
//! expected events at enrollment. Best effort by design: a missing, unreadable
//! or inconsistent log never fails a command, it only leaves a mismatch less
//! explained.

use crate::pcr::eventlog::{self, EventLog};
use crate::pcr::explain::{self, ExpectedEvent};
use crate::pcr::{self, PcrDiff};
use crate::tpm::Tpm;
use log::debug;
use std::path::Path;

/// Parse the log at `path`, or `None` (with a debug message) if there is none.
pub fn load(path: Option<&Path>) -> Option<EventLog> {
    let path = path?;
    if path == Path::new(eventlog::DEFAULT_PATH) && !path.exists() {
        crate::sys::securityfs::mount_if_needed();
    }
    match super::prediction::load_eventlog(path) {
        Ok(l) => Some(l),
        Err(e) => {
            debug!("no event log for explanations: {e}");
            None
        }
    }
}

/// The events behind this boot's firmware PCRs, keeping only PCRs whose
/// replay equals the TPM's value.
pub fn expected_events(tpm: &mut Tpm, path: Option<&Path>) -> Vec<ExpectedEvent> {
    let Some(log) = load(path) else {
        return vec![];
    };
    let Ok(replay) = log.replay() else {
        return vec![];
    };
    let touched: Vec<u32> = (0..pcr::SELF_PCR)
        .filter(|&i| replay.touched[i as usize])
        .collect();
    if touched.is_empty() {
        return vec![];
    }
    let Ok(values) = tpm.pcr_read(&touched) else {
        return vec![];
    };
    let bad = replay.check(&touched, &values);
    let good: Vec<u32> = touched.into_iter().filter(|p| !bad.contains(p)).collect();
    explain::expected_from_log(&log, &good)
}

/// Add event-log reasons to `diffs` (see [`explain::annotate`]).
pub fn annotate(diffs: &mut [PcrDiff], expected: &[ExpectedEvent], path: Option<&Path>) {
    if diffs.iter().all(|d| d.why.is_some()) {
        return;
    }
    if let Some(log) = load(path) {
        explain::annotate(diffs, expected, &log);
    }
}
