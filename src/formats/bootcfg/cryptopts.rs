//! cryptsetup's own crypttab options, as sealroot reads them on its lines:
//! the dm-crypt activation flags it applies (`discard`, `same-cpu-crypt`,
//! `submit-from-crypt-cpus`, `no-read-workqueue`, `no-write-workqueue`,
//! `readonly`), the options it knows and has no use for (silently
//! accepted), and everything else (warned about by name, then ignored).

/// The dm-crypt flags a volume is activated with (crypttab(5)); the disk
/// edge maps each to libcryptsetup's `CRYPT_ACTIVATE_*` flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ActivationFlags {
    /// `discard`: `CRYPT_ACTIVATE_ALLOW_DISCARDS`.
    pub allow_discards: bool,
    /// `same-cpu-crypt`: `CRYPT_ACTIVATE_SAME_CPU_CRYPT`.
    pub same_cpu_crypt: bool,
    /// `submit-from-crypt-cpus`: `CRYPT_ACTIVATE_SUBMIT_FROM_CRYPT_CPUS`.
    pub submit_from_crypt_cpus: bool,
    /// `no-read-workqueue`: `CRYPT_ACTIVATE_NO_READ_WORKQUEUE`.
    pub no_read_workqueue: bool,
    /// `no-write-workqueue`: `CRYPT_ACTIVATE_NO_WRITE_WORKQUEUE`.
    pub no_write_workqueue: bool,
    /// `readonly` (or `read-only`): `CRYPT_ACTIVATE_READONLY`.
    pub readonly: bool,
}

/// The crypttab names of the flags, in [`ActivationFlags::names`] order.
pub const FLAG_NAMES: [&str; 6] = [
    "discard",
    "same-cpu-crypt",
    "submit-from-crypt-cpus",
    "no-read-workqueue",
    "no-write-workqueue",
    "readonly",
];

impl ActivationFlags {
    /// Set the flag crypttab calls `name`; `false` when `name` is none.
    pub fn set(&mut self, name: &str) -> bool {
        let f = match name {
            "discard" => &mut self.allow_discards,
            "same-cpu-crypt" => &mut self.same_cpu_crypt,
            "submit-from-crypt-cpus" => &mut self.submit_from_crypt_cpus,
            "no-read-workqueue" => &mut self.no_read_workqueue,
            "no-write-workqueue" => &mut self.no_write_workqueue,
            "readonly" | "read-only" => &mut self.readonly,
            _ => return false,
        };
        *f = true;
        true
    }

    /// Parse a comma-separated list of flag names (`--flags` of `unlock`,
    /// `SEALROOT_FLAGS` of the initramfs scripts); empty items are skipped.
    pub fn parse_list(list: &str) -> Result<ActivationFlags, String> {
        let mut f = ActivationFlags::default();
        for n in list.split(',').filter(|n| !n.is_empty()) {
            if !f.set(n) {
                return Err(format!(
                    "unknown activation flag {n:?} (use {})",
                    FLAG_NAMES.join(", ")
                ));
            }
        }
        Ok(f)
    }

    /// The crypttab names of the flags that are set.
    pub fn names(&self) -> Vec<&'static str> {
        let on = [
            self.allow_discards,
            self.same_cpu_crypt,
            self.submit_from_crypt_cpus,
            self.no_read_workqueue,
            self.no_write_workqueue,
            self.readonly,
        ];
        FLAG_NAMES
            .iter()
            .zip(on)
            .filter_map(|(n, on)| on.then_some(*n))
            .collect()
    }

    /// Every flag set in either.
    pub fn or(self, o: ActivationFlags) -> ActivationFlags {
        ActivationFlags {
            allow_discards: self.allow_discards || o.allow_discards,
            same_cpu_crypt: self.same_cpu_crypt || o.same_cpu_crypt,
            submit_from_crypt_cpus: self.submit_from_crypt_cpus || o.submit_from_crypt_cpus,
            no_read_workqueue: self.no_read_workqueue || o.no_read_workqueue,
            no_write_workqueue: self.no_write_workqueue || o.no_write_workqueue,
            readonly: self.readonly || o.readonly,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.names().is_empty()
    }
}

/// cryptsetup/systemd options that sealroot knows and has no use for on
/// its own lines, accepted without a warning: the volume type (`luks`),
/// when and whether the distribution's tools set it up (`initramfs`,
/// `noauto`, `nofail`, `_netdev`, `x-systemd.*`, `x-initrd.attach`), and
/// systemd's prompt/plugin switches that do not change how the volume is
/// opened (`headless`, `password-echo`). `tries=` and `timeout=` are read
/// for the recovery prompt, `header=` and the flags for the unlock.
pub fn silently_ignored(key: &str) -> bool {
    matches!(
        key,
        "luks"
            | "initramfs"
            | "noauto"
            | "auto"
            | "nofail"
            | "_netdev"
            | "x-initrd.attach"
            | "headless"
            | "password-echo"
    ) || key.starts_with("x-systemd.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_by_name() {
        let mut f = ActivationFlags::default();
        assert!(f.is_empty());
        for n in FLAG_NAMES {
            assert!(f.set(n), "{n}");
        }
        assert_eq!(f.names(), FLAG_NAMES.to_vec());
        assert!(!f.set("discards"));
        let f = ActivationFlags::parse_list("discard,,no-read-workqueue,").unwrap();
        assert_eq!(f.names(), vec!["discard", "no-read-workqueue"]);
        assert!(f.allow_discards && f.no_read_workqueue && !f.same_cpu_crypt);
        let e = ActivationFlags::parse_list("discard,fast").unwrap_err();
        assert!(e.contains("\"fast\""), "{e}");
        assert_eq!(
            ActivationFlags::parse_list("read-only").unwrap().names(),
            vec!["readonly"]
        );
    }
}
