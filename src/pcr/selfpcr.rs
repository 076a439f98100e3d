//! sealroot's own PCR: what it measures, and how to predict and explain it.
//!
//! At unlock time sealroot extends [`SELF_PCR`](crate::pcr::SELF_PCR) with the
//! kernel command line and with its configuration, then unseals, then extends
//! a lock event on every way out: on success one derived from the opened
//! volume's key ([`opened_digest`]), so the booted value tells a verifier
//! which volume was opened; on failure a fixed one ([`failure_digest`]). A
//! booted system therefore never shows the unseal-time value; `enroll` and
//! `reseal` predict it from these same inputs instead of reading it.

use crate::pcr::{extend, sha256, Digest};

/// Domain tag of the configuration measurement.
const CONFIG_TAG: &str = "sealroot-config-v1";
/// The data hashed into the failure lock event.
pub const FAILURE_EVENT: &[u8] = b"sealroot-lock-failure-v1";
/// Domain tag of the success lock event, followed by the volume key's
/// fingerprint.
const OPENED_TAG: &[u8] = b"sealroot-lock-opened-v1\0";
/// Domain tag of the primary-volume event of a boot that opens several
/// volumes, followed by the primary volume key's fingerprint.
const PRIMARY_TAG: &[u8] = b"sealroot-primary-v1\0";

/// The events sealroot measures before unsealing: the command line and the
/// configuration, and, before the other volumes of a boot that opens
/// several, the primary volume's event ([`primary_digest`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measurements {
    pub cmdline: Digest,
    pub config: Digest,
    /// Set for a volume other than the boot's primary one.
    pub primary: Option<Digest>,
}

/// Normalise `/proc/cmdline` the way sealroot measures it: surrounding
/// whitespace (the trailing newline) removed, nothing else touched.
pub fn normalise_cmdline(raw: &str) -> &str {
    raw.trim()
}

impl Measurements {
    /// Measurements for a command line and the LUKS UUID of the boot's
    /// primary volume (the only one, or the root:
    /// docs/design.md#several-volumes-in-one-boot).
    pub fn new(cmdline: &str, volume_uuid: &str) -> Self {
        Measurements {
            cmdline: sha256(normalise_cmdline(cmdline).as_bytes()),
            config: config_digest(volume_uuid),
            primary: None,
        }
    }

    /// These measurements followed by the event of a primary volume whose
    /// key has `fingerprint`: what the other volumes of that boot see.
    pub fn after_primary(&self, fingerprint: &Digest) -> Self {
        Measurements {
            primary: Some(primary_digest(fingerprint)),
            ..*self
        }
    }

    /// The digests to extend, in order.
    pub fn events(&self) -> Vec<Digest> {
        let mut v = vec![self.cmdline, self.config];
        v.extend(self.primary);
        v
    }

    /// The self-PCR value right after the measurements, i.e. at unseal time.
    pub fn expected(&self) -> Digest {
        self.events().iter().fold([0; 32], |pcr, d| extend(&pcr, d))
    }
}

/// Digest of sealroot's security-relevant configuration: the boot's
/// primary volume (every sealed volume of one boot expects the same).
pub fn config_digest(volume_uuid: &str) -> Digest {
    let text = format!(
        "{CONFIG_TAG}\nvolume-uuid={}\n",
        volume_uuid.to_ascii_lowercase()
    );
    sha256(text.as_bytes())
}

/// Digest extended, in a boot that opens several sealed volumes, after the
/// primary volume's key was unsealed and its fingerprint checked, and
/// before any other volume is unsealed: the other volumes' tokens expect
/// it, so they unseal only after that very volume (not a volume the host
/// made with its UUID) was opened (docs/design.md#several-volumes-in-one-boot).
pub fn primary_digest(fingerprint: &Digest) -> Digest {
    let mut v = PRIMARY_TAG.to_vec();
    v.extend_from_slice(fingerprint);
    sha256(&v)
}

/// Digest extended as the lock event when sealroot did not open a volume.
pub fn failure_digest() -> Digest {
    sha256(FAILURE_EVENT)
}

/// Digest extended as the lock event after opening the volume whose key
/// has `fingerprint` ([`crate::formats::volume_key::fingerprint`]): the
/// same for one volume in every boot, different for every other volume.
pub fn opened_digest(fingerprint: &Digest) -> Digest {
    let mut v = OPENED_TAG.to_vec();
    v.extend_from_slice(fingerprint);
    sha256(&v)
}

/// The self-PCR value after the failure lock, given its unseal-time value.
pub fn locked(expected: &Digest) -> Digest {
    extend(expected, &failure_digest())
}

/// What the self PCR currently holds, relative to one boot's measurements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// All zero: nothing measured yet in this boot.
    Fresh,
    /// Holds exactly this boot's measurements: ready to unseal.
    Measured,
    /// Holds this boot's measurements plus the failure lock: an unlock of
    /// this boot failed.
    Locked,
    /// Anything else: locked after an unlock (the success event depends on
    /// the volume), measured by someone else, or a different
    /// cmdline/config.
    Other,
}

/// Classify `current` against the measurements of the running boot.
pub fn classify(current: &Digest, now: &Measurements) -> State {
    let expected = now.expected();
    if *current == [0; 32] {
        State::Fresh
    } else if *current == expected {
        State::Measured
    } else if *current == locked(&expected) {
        State::Locked
    } else {
        State::Other
    }
}

/// Explain why the self PCR differs from what a blob expects.
/// `fingerprint`: the blob's volume-key fingerprint, which tells the lock
/// after this volume was opened.
pub fn explain(
    enrolled: &Measurements,
    now: &Measurements,
    current: &Digest,
    fingerprint: Option<&Digest>,
) -> String {
    let enrolled_expected = enrolled.expected();
    if let Some(fp) = fingerprint {
        if *current == extend(&enrolled_expected, &opened_digest(fp)) {
            return "sealroot opened this volume in this boot and locked the PCR; reboot to unlock again"
                .into();
        }
        if *current == extend(&[0; 32], &opened_digest(fp)) {
            return "sealroot opened this volume with a key file in this boot and locked the PCR; reboot to unlock with the TPM"
                .into();
        }
    }
    if *current == locked(&enrolled_expected) || *current == locked(&now.expected()) {
        return "an unlock already failed in this boot and extended the lock; reboot to unlock again"
            .into();
    }
    if *current == locked(&[0; 32]) {
        return "locked before sealroot measured this boot (a failed unlock, or `sealroot lock`); reboot to unlock with the TPM"
            .into();
    }
    let mut why = Vec::new();
    if enrolled.cmdline != now.cmdline {
        why.push(format!(
            "kernel command line differs from the enrolled one (sha256 {} now, {} enrolled)",
            hex::encode(now.cmdline),
            hex::encode(enrolled.cmdline)
        ));
    }
    if enrolled.config != now.config {
        why.push(
            "sealroot configuration (the boot's primary volume UUID) differs from the enrolled one"
                .into(),
        );
    }
    match (&enrolled.primary, &now.primary) {
        (Some(a), Some(b)) if a != b => why.push(
            "the boot's primary volume is not the one the token is sealed for (its volume key differs)".into(),
        ),
        (Some(_), None) => why.push(
            "the token is for a volume opened after the boot's primary volume (sealroot boot), and nothing opened that volume first".into(),
        ),
        (None, Some(_)) => why.push(
            "the token is for a boot's primary volume (or a boot of one volume), and this volume is opened after another".into(),
        ),
        _ => {}
    }
    if why.is_empty() {
        if *current == [0; 32] {
            why.push("sealroot has not measured this boot yet".into());
        } else {
            why.push("locked after an unlock in this boot, or extended by something other than sealroot's measurements".into());
        }
    }
    why.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_newline_does_not_matter() {
        let a = Measurements::new("root=/dev/vda quiet\n", "ABC");
        let b = Measurements::new("root=/dev/vda quiet", "abc");
        assert_eq!(a, b);
    }

    #[test]
    fn any_cmdline_change_changes_the_value() {
        let a = Measurements::new("root=/dev/vda", "u");
        let b = Measurements::new("root=/dev/vda init=/bin/sh", "u");
        assert_ne!(a.expected(), b.expected());
    }

    #[test]
    fn classify_states() {
        let m = Measurements::new("x", "u");
        assert_eq!(classify(&[0; 32], &m), State::Fresh);
        assert_eq!(classify(&m.expected(), &m), State::Measured);
        assert_eq!(classify(&locked(&m.expected()), &m), State::Locked);
        assert_eq!(classify(&[7; 32], &m), State::Other);
    }

    #[test]
    fn the_primary_event_follows_the_two_measurements() {
        let m = Measurements::new("x", "u");
        let d = m.after_primary(&[9; 32]);
        assert_eq!(
            d.expected(),
            extend(&m.expected(), &primary_digest(&[9; 32]))
        );
        assert_ne!(d.expected(), m.after_primary(&[8; 32]).expected());
        assert_ne!(primary_digest(&[9; 32]), opened_digest(&[9; 32]));
        let s = explain(&d, &m.after_primary(&[8; 32]), &[1; 32], None);
        assert!(s.contains("primary volume is not the one"), "{s}");
        let s = explain(&d, &m, &[1; 32], None);
        assert!(s.contains("nothing opened that volume first"), "{s}");
    }

    #[test]
    fn lock_events_differ() {
        assert_ne!(opened_digest(&[1; 32]), opened_digest(&[2; 32]));
        assert_ne!(opened_digest(&[1; 32]), failure_digest());
        assert_ne!(opened_digest(&[1; 32]), [1; 32]);
    }

    #[test]
    fn explanations() {
        let enrolled = Measurements::new("a", "u");
        let now = Measurements::new("a init=/bin/sh", "u");
        let s = explain(&enrolled, &now, &now.expected(), None);
        assert!(s.contains("kernel command line differs"), "{s}");
        let s = explain(&enrolled, &enrolled, &locked(&enrolled.expected()), None);
        assert!(s.contains("already failed"), "{s}");
        let other = Measurements::new("a", "v");
        let s = explain(&enrolled, &other, &other.expected(), None);
        let opened = extend(&enrolled.expected(), &opened_digest(&[3; 32]));
        let s2 = explain(&enrolled, &enrolled, &opened, Some(&[3; 32]));
        assert!(s2.contains("opened this volume"), "{s2}");
        assert!(s.contains("volume UUID"), "{s}");
    }
}
