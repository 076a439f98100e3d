//! Mismatch explanations from the event log (pure).
//!
//! A differing PCR alone says nothing a user can act on. The expected
//! events (recorded at enrollment, or shipped in a signed policy by the
//! builder who predicted them) are compared with this boot's log, and the
//! first event that differs is named with both digests, e.g. "initrd
//! measurement changed (event #31 EV_EVENT_TAG Linux initrd): expected …,
//! the log has …". The log is only believed for a PCR whose replay equals
//! the TPM's value.

use super::eventlog::{self, Event, EventLog};
use super::{Digest, PcrDiff};

/// One event the signer expects (from the event log it predicted from);
/// not signed, used only to explain a mismatch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedEvent {
    pub pcr: u32,
    pub event_type: u32,
    pub digest: Digest,
}

/// Events of `pcrs` from a log (in log order), for recording.
pub fn expected_from_log(log: &EventLog, pcrs: &[u32]) -> Vec<ExpectedEvent> {
    log.events
        .iter()
        .filter(|e| e.is_measured() && pcrs.contains(&e.pcr))
        .filter_map(|e| {
            Some(ExpectedEvent {
                pcr: e.pcr,
                event_type: e.event_type,
                digest: e.sha256()?,
            })
        })
        .collect()
}

/// What kind of measurement an event is, and which event, in words:
/// ("initrd measurement", "event #22 EV_EVENT_TAG Linux initrd (EFI stub)").
fn kind_of(e: &Event) -> (&'static str, String) {
    let kind = if e.is_linux_initrd() {
        "initrd measurement"
    } else if e.pcr == 9 && e.describe().contains("command line") {
        "kernel command line measurement"
    } else if e.pcr == 4 && e.is_boot_application() {
        "boot application (kernel) measurement"
    } else if e.event_type == eventlog::EV_SEPARATOR {
        "separator"
    } else {
        "measurement"
    };
    (kind, format!("event #{} {}", e.number, e.describe()))
}

fn what(e: &Event) -> String {
    let (kind, which) = kind_of(e);
    format!("{kind} ({which})")
}

/// Why `pcr` differs, from `expected` (its events, in order) and the log.
pub fn explain_pcr(pcr: u32, expected: &[&ExpectedEvent], log: &EventLog) -> String {
    let actual: Vec<&Event> = log.events_of(pcr).collect();
    if expected.is_empty() {
        let list: Vec<String> = actual.iter().take(8).map(|e| what(e)).collect();
        return if list.is_empty() {
            format!("this boot's event log measured nothing into PCR {pcr}")
        } else {
            format!(
                "no record of the expected events; this boot measured: {}{}",
                list.join("; "),
                if actual.len() > 8 { "; …" } else { "" }
            )
        };
    }
    for i in 0..expected.len().max(actual.len()) {
        match (expected.get(i), actual.get(i)) {
            (Some(x), Some(e)) => {
                let got = e.sha256().unwrap_or([0; 32]);
                if x.event_type == e.event_type && x.digest == got {
                    continue;
                }
                if x.event_type != e.event_type {
                    return format!(
                        "expected a {} event with {}, the log has {} with {}",
                        eventlog::type_name(x.event_type),
                        hex::encode(x.digest),
                        what(e),
                        hex::encode(got)
                    );
                }
                let (kind, which) = kind_of(e);
                return format!(
                    "{kind} changed ({which}): expected {}, the log has {}",
                    hex::encode(x.digest),
                    hex::encode(got)
                );
            }
            (Some(x), None) => {
                return format!(
                    "the expected {} event {} is missing from this boot's log",
                    eventlog::type_name(x.event_type),
                    hex::encode(x.digest)
                )
            }
            (None, Some(e)) => {
                return format!(
                    "extra {} not expected, with {}",
                    what(e),
                    hex::encode(e.sha256().unwrap_or([0; 32]))
                )
            }
            (None, None) => unreachable!("bounded by the longer list"),
        }
    }
    "the log's events are the expected ones, yet the value differs".into()
}

/// Add event-log reasons to `diffs` that have none. `expected` are all
/// expected events (any PCR); a PCR whose log replay is not the TPM's
/// current value is said to be unexplainable rather than explained wrongly.
pub fn annotate(diffs: &mut [PcrDiff], expected: &[ExpectedEvent], log: &EventLog) {
    let replay = log.replay().ok();
    for d in diffs.iter_mut().filter(|d| d.why.is_none()) {
        let replayed: Option<Digest> = replay.as_ref().map(|r| r.values[d.index as usize]);
        d.why = Some(if replayed != Some(d.current) {
            "the event log does not replay to the TPM's value, so it cannot explain this".into()
        } else {
            let mine: Vec<&ExpectedEvent> = expected.iter().filter(|e| e.pcr == d.index).collect();
            explain_pcr(d.index, &mine, log)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pcr::{extend, sha256};

    fn log_with(initrd: &[u8]) -> EventLog {
        let mut tagged = 0x8F3B22ECu32.to_le_bytes().to_vec();
        tagged.extend(4u32.to_le_bytes());
        tagged.extend(b"LNX\0");
        EventLog {
            spec: eventlog::SpecId {
                platform_class: 0,
                spec_version: (0, 2, 0),
                uintn_size: 2,
                algorithms: vec![(0x0b, 32)],
            },
            events: vec![
                Event {
                    number: 1,
                    offset: 0,
                    pcr: 9,
                    event_type: eventlog::EV_EVENT_TAG,
                    digests: vec![(0x0b, sha256(initrd).to_vec())],
                    data: tagged,
                },
                Event {
                    number: 2,
                    offset: 0,
                    pcr: 4,
                    event_type: eventlog::EV_SEPARATOR,
                    digests: vec![(0x0b, sha256(b"sep").to_vec())],
                    data: vec![0; 4],
                },
            ],
        }
    }

    #[test]
    fn names_the_changed_initrd() {
        let old = log_with(b"initrd A");
        let new = log_with(b"initrd B");
        let expected = expected_from_log(&old, &[4, 9]);
        assert_eq!(expected.len(), 2);
        let cur = extend(&[0; 32], &sha256(b"initrd B"));
        let mut diffs = vec![PcrDiff {
            index: 9,
            expected: extend(&[0; 32], &sha256(b"initrd A")),
            current: cur,
            why: None,
        }];
        annotate(&mut diffs, &expected, &new);
        let why = diffs[0].why.clone().unwrap();
        assert!(why.starts_with("initrd measurement"), "{why}");
        assert!(why.contains("Linux initrd"), "{why}");
        assert!(why.contains(&hex::encode(sha256(b"initrd A"))), "{why}");
        assert!(why.contains(&hex::encode(sha256(b"initrd B"))), "{why}");
    }

    #[test]
    fn distrusts_a_log_that_does_not_replay() {
        let log = log_with(b"x");
        let mut diffs = vec![PcrDiff {
            index: 9,
            expected: [1; 32],
            current: [2; 32],
            why: None,
        }];
        annotate(&mut diffs, &[], &log);
        assert!(diffs[0].why.as_ref().unwrap().contains("does not replay"));
    }

    #[test]
    fn missing_extra_and_unrecorded_events() {
        let log = log_with(b"x");
        let e = |d: &[u8]| ExpectedEvent {
            pcr: 9,
            event_type: eventlog::EV_EVENT_TAG,
            digest: sha256(d),
        };
        let (a, b) = (e(b"x"), e(b"y"));
        assert!(explain_pcr(9, &[&a, &b], &log).contains("missing"));
        assert!(explain_pcr(9, &[], &log).contains("initrd measurement"));
        assert!(explain_pcr(4, &[], &log).contains("separator"));
        let none: [&ExpectedEvent; 0] = [];
        assert!(explain_pcr(7, &none, &log).contains("nothing"));
        let sep = ExpectedEvent {
            pcr: 4,
            event_type: eventlog::EV_SEPARATOR,
            digest: sha256(b"sep"),
        };
        assert!(explain_pcr(4, &[&sep], &log).contains("are the expected ones"));
    }
}
