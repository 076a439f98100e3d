//! One volume's configuration: what crypttab and the command line both
//! set (`VolumeOpts`, merged with the command line winning), the recovery
//! prompt's settings, and the dm-verity OS layer.

use super::cryptopts::ActivationFlags;
use super::device::DeviceRef;
use super::values::{flag_ok, measure_pcr, path_ok, seconds, tcti_ok, OnFailure};
use crate::formats::ephemeral::{Mkfs, Settings};
use crate::formats::state::StateMount;
use crate::pcr::parse_list;
use std::path::PathBuf;

/// The default dm-verity mapping name of the OS layer.
pub const DEFAULT_VERITY_NAME: &str = "sealroot-os";

/// One volume sealroot should open at boot.
#[derive(Debug, Clone, PartialEq)]
pub struct VolumeCfg {
    pub name: String,
    pub device: DeviceRef,
    pub opts: VolumeOpts,
    /// The recovery prompt's settings (crypttab's `tries=`, `timeout=`).
    pub prompt: PromptOpts,
}

/// What the recovery prompt of the initramfs integrations uses: cryptsetup's
/// own crypttab options `tries=N` (default 3; 0: no limit) and
/// `timeout=TIME` (seconds, or with a unit s, ms, min, h; 0 or absent: no
/// timeout), crypttab(5).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PromptOpts {
    pub tries: u32,
    /// Seconds; `None` waits as long as it takes.
    pub timeout: Option<f64>,
}

impl Default for PromptOpts {
    fn default() -> Self {
        PromptOpts {
            tries: 3,
            timeout: None,
        }
    }
}

/// How sealroot opens a volume: the options crypttab and the kernel command
/// line both set (`sealroot-pcrs=` and `rd.sealroot.pcrs=`, …).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VolumeOpts {
    pub pcrs: Option<Vec<u32>>,
    pub provision_key: Option<PathBuf>,
    /// First-boot enrollment in signed-policy mode with this public key.
    pub policy_key: Option<PathBuf>,
    pub blob: Option<PathBuf>,
    pub tcti: Option<String>,
    pub timeout: Option<f64>,
    /// Seconds from the start of the unlock to the lock: past it, sealroot
    /// locks PCR 15 and fails (exit 14).
    pub deadline: Option<f64>,
    /// What the initramfs integrations do after a failure.
    pub on_failure: Option<OnFailure>,
    /// Set for an ephemeral volume (fresh key every boot, nothing unsealed).
    pub ephemeral: Option<Settings>,
    /// A detached LUKS2 header (crypttab's `header=`,
    /// `rd.sealroot.header=`); the device then holds only the data.
    pub header: Option<PathBuf>,
    /// dm-crypt flags at activation (crypttab's `discard`, …).
    pub flags: ActivationFlags,
    /// crypttab's `sealroot-systemd-token`: a volume without a sealroot
    /// token may open through its systemd-tpm2 token (unsealed before
    /// PCR 15 is measured, so only when the measured initrd says so).
    pub systemd_token: bool,
    /// A state volume (`sealroot-state`): formatted at first boot under a
    /// fresh key, then unlocked with the TPM; mounted as configured.
    pub state: Option<StateMount>,
    /// crypttab's `sealroot-rekey`, `rd.sealroot.rekey`: the first boot
    /// re-encrypts the volume to a fresh volume key of this VM's own
    /// (docs/first-boot.md#mode-2-re-keying-the-root-at-first-boot), and
    /// a later boot resumes an interrupted re-keying.
    pub rekey: bool,
}

impl VolumeOpts {
    /// These options, and `base`'s where these have none (the command line
    /// refines crypttab).
    pub(crate) fn or(&self, base: &VolumeOpts) -> VolumeOpts {
        VolumeOpts {
            pcrs: self.pcrs.clone().or_else(|| base.pcrs.clone()),
            provision_key: self
                .provision_key
                .clone()
                .or_else(|| base.provision_key.clone()),
            policy_key: self.policy_key.clone().or_else(|| base.policy_key.clone()),
            blob: self.blob.clone().or_else(|| base.blob.clone()),
            tcti: self.tcti.clone().or_else(|| base.tcti.clone()),
            timeout: self.timeout.or(base.timeout),
            deadline: self.deadline.or(base.deadline),
            on_failure: self.on_failure.or(base.on_failure),
            ephemeral: self.ephemeral.clone().or_else(|| base.ephemeral.clone()),
            header: self.header.clone().or_else(|| base.header.clone()),
            flags: self.flags.or(base.flags),
            systemd_token: self.systemd_token || base.systemd_token,
            state: self.state.clone().or_else(|| base.state.clone()),
            rekey: self.rekey || base.rekey,
        }
    }

    /// Whether an option says something about sealing, which an ephemeral
    /// volume never does.
    pub(crate) fn seals(&self) -> bool {
        self.pcrs.is_some()
            || self.provision_key.is_some()
            || self.policy_key.is_some()
            || self.blob.is_some()
            || self.rekey
    }

    /// Set the option `name` (without its `sealroot-` or `rd.sealroot.`
    /// prefix; `key` is the option as written) from `value`. `Ok(false)`
    /// when `name` is not a volume option. In crypttab a flag takes no
    /// value and PCRs are separated with `+`; on the command line a flag
    /// may say `=0`/`=1`.
    pub(crate) fn set(
        &mut self,
        eph: &mut EphemeralOpts,
        crypttab: bool,
        name: &str,
        key: &str,
        value: Option<&str>,
    ) -> Result<bool, String> {
        let need = || value.ok_or_else(|| format!("{key} needs a value"));
        let flag = || match (crypttab, value) {
            (true, None) => Ok(true),
            (true, Some(_)) => Err(format!("{key} takes no value")),
            (false, v) => flag_ok(key, v),
        };
        match name {
            "pcrs" if crypttab => self.pcrs = Some(parse_list(&need()?.replace('+', ","))?),
            "pcrs" => self.pcrs = Some(parse_list(need()?)?),
            "provision-key" => self.provision_key = Some(path_ok(need()?, key)?),
            "policy-key" => self.policy_key = Some(path_ok(need()?, key)?),
            "blob" => self.blob = Some(path_ok(need()?, key)?),
            "tcti" => self.tcti = Some(tcti_ok(need()?)?),
            "timeout" => self.timeout = Some(seconds(need()?)?),
            "deadline" => self.deadline = Some(seconds(need()?)?),
            "on-failure" => self.on_failure = Some(OnFailure::parse(need()?)?),
            "systemd-token" if crypttab => self.systemd_token = flag()?,
            // A flag: the overlay's upper layer; or where to mount it.
            "state" => self.state = Some(value.map_or(Ok(StateMount::Overlay), StateMount::parse)?),
            "rekey" => self.rekey = flag()?,
            "ephemeral" => eph.on = flag()?,
            "integrity" => eph.integrity = flag()?,
            "wipe-existing" => eph.wipe_existing = flag()?,
            "mkfs" => eph.mkfs = Some(Mkfs::parse(need()?)?),
            "measure-pcr" => eph.measure_pcr = Some(measure_pcr(need()?)?),
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// A dm-verity device (the read-only OS layer of an ephemeral root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerityCfg {
    pub data: DeviceRef,
    pub hash: DeviceRef,
    pub root_hash: Vec<u8>,
    pub name: String,
}

/// Ephemeral options as they are collected, checked once all are seen.
#[derive(Default)]
pub(crate) struct EphemeralOpts {
    pub(crate) on: bool,
    pub(crate) mkfs: Option<Mkfs>,
    pub(crate) integrity: bool,
    pub(crate) wipe_existing: bool,
    pub(crate) measure_pcr: Option<u32>,
}

impl EphemeralOpts {
    pub(crate) fn settings(self, prefix: &str) -> Result<Option<Settings>, String> {
        if !self.on {
            if self.mkfs.is_some()
                || self.integrity
                || self.wipe_existing
                || self.measure_pcr.is_some()
            {
                return Err(format!(
                    "{prefix}mkfs/integrity/wipe-existing/measure-pcr need {prefix}ephemeral"
                ));
            }
            return Ok(None);
        }
        Ok(Some(Settings {
            integrity: self.integrity,
            mkfs: self.mkfs.unwrap_or(Mkfs::Ext4),
            wipe_existing: self.wipe_existing,
            measure_pcr: self.measure_pcr,
        }))
    }
}

/// Re-keying (`sealroot-rekey`) seals its token to PCRs only: its resume
/// after a power cut unseals without a signed policy, so a policy key would
/// leave a half re-keyed volume that nothing opens
/// (docs/first-boot.md#mode-2-re-keying-the-root-at-first-boot). And it
/// takes no `on-failure=shell`: the console's shell would open the root
/// with the image's keys (docs/first-boot.md#recovery).
pub(crate) fn check_rekey(opts: &VolumeOpts, prefix: &str) -> Result<(), String> {
    if opts.rekey && opts.policy_key.is_some() {
        return Err(format!(
            "{prefix}rekey takes no {prefix}policy-key (the re-keying token is sealed to PCRs, so that a power cut in the middle can be resumed)"
        ));
    }
    if opts.rekey && opts.on_failure == Some(super::OnFailure::Shell) {
        return Err(format!(
            "{prefix}rekey takes no {prefix}on-failure=shell (the console is the host's, and the image's keys would open the root there)"
        ));
    }
    Ok(())
}
