//! `sealroot boot`: the initramfs entry point. Reads which volume to open
//! from the kernel command line and crypttab ([`crate::bootcfg`]), waits
//! (bounded) for its device node, then runs the unlock path.

use super::platform::PlatformOpts;
use super::unlock::{self, UnlockArgs, Unlocked};
use super::{read_key_file, PinSource, TpmOpts};
use crate::bootcfg;
use crate::{Error, Result};
use log::info;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct BootArgs {
    pub crypttab: PathBuf,
    pub cmdline: String,
    pub dry_run: bool,
    pub device_timeout: Duration,
    pub pin: PinSource,
    pub tpm: TpmOpts,
    pub platform: PlatformOpts,
    pub policies: super::policy::PolicySearch,
    pub eventlog: Option<PathBuf>,
}

/// Wait until `path` exists, at most `timeout`.
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

/// Returns `None` when nothing is configured (not an error: the hook may
/// be installed on a machine that does not use sealroot for this boot).
pub fn run(args: &BootArgs) -> Result<Option<Unlocked>> {
    let usage = |e: String| Error::Usage(format!("boot configuration: {e}"));
    let cmdline = bootcfg::parse_cmdline(&args.cmdline).map_err(usage)?;
    let crypttab = match std::fs::read_to_string(&args.crypttab) {
        Ok(t) => bootcfg::parse_crypttab(&t)
            .map_err(|e| Error::Usage(format!("{}: {e}", args.crypttab.display())))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => vec![],
        Err(e) => return Err(Error::io(&args.crypttab, e)),
    };
    let vols = bootcfg::resolve(&cmdline, &crypttab).map_err(usage)?;
    // The verified OS layer first: an ephemeral root's overlay needs both.
    if let Some(v) = cmdline.verity.as_ref().filter(|_| !cmdline.disabled) {
        for d in [&v.data, &v.hash] {
            wait_for(&d.path(), args.device_timeout)?;
        }
        if args.dry_run {
            info!("dry run: dm-verity /dev/mapper/{} not opened", v.name);
        } else {
            super::verity::run(&super::verity::VerityArgs {
                data: v.data.path(),
                hash: v.hash.path(),
                root_hash: v.root_hash.clone(),
                name: v.name.clone(),
                verify_only: false,
            })?;
        }
    }
    // Ephemeral volumes unseal nothing and leave PCR 15 alone, so they go
    // first and do not count against the one unlock per boot.
    let (ephemeral, mut vols): (Vec<_>, Vec<_>) =
        vols.into_iter().partition(|v| v.ephemeral.is_some());
    for v in &ephemeral {
        open_ephemeral(args, v)?;
    }
    let v = match vols.len() {
        0 if !ephemeral.is_empty() || cmdline.verity.is_some() => return Ok(None),
        0 => {
            info!("no sealroot volume configured (kernel command line, {})", args.crypttab.display());
            return Ok(None);
        }
        1 => vols.remove(0),
        n => {
            return Err(Error::Usage(format!(
                "{n} sealroot volumes configured; sealroot opens one per boot (the lock after the first unseal blocks the others)"
            )))
        }
    };
    let device = v.device.path();
    wait_for(&device, args.device_timeout)?;
    let provision_key = match &v.provision_key {
        Some(p) if p.exists() => Some(read_key_file(p)?),
        Some(p) => {
            info!(
                "provisioning key {} is absent; TPM unlock only",
                p.display()
            );
            None
        }
        None => None,
    };
    // Only a first boot (provisioning key present) enrolls, so only then is
    // the policy key needed.
    let policy_key = match (&provision_key, &v.policy_key) {
        (Some(_), Some(p)) => Some(super::read_public_key(p)?),
        _ => None,
    };
    let tpm = TpmOpts {
        tcti: v.tcti.clone().unwrap_or_else(|| args.tpm.tcti.clone()),
        timeout: v
            .timeout
            .map(Duration::from_secs_f64)
            .unwrap_or(args.tpm.timeout),
    };
    info!("opening {} as /dev/mapper/{}", device.display(), v.name);
    unlock::run(&UnlockArgs {
        device,
        name: v.name,
        dry_run: args.dry_run,
        blob_file: v.blob,
        cmdline: args.cmdline.clone(),
        pin: args.pin.clone(),
        provision_key,
        pcrs: v.pcrs.unwrap_or_else(|| crate::pcr::DEFAULT_PCRS.to_vec()),
        tpm,
        platform: args.platform.clone(),
        require: None,
        policy_key,
        policies: args.policies.clone(),
        eventlog: args.eventlog.clone(),
    })
    .map(Some)
}

/// Set up one ephemeral volume from its boot configuration.
fn open_ephemeral(args: &BootArgs, v: &bootcfg::VolumeCfg) -> Result<()> {
    let device = v.device.path();
    wait_for(&device, args.device_timeout)?;
    let tpm = TpmOpts {
        tcti: v.tcti.clone().unwrap_or_else(|| args.tpm.tcti.clone()),
        timeout: v
            .timeout
            .map(Duration::from_secs_f64)
            .unwrap_or(args.tpm.timeout),
    };
    info!(
        "ephemeral volume {} as /dev/mapper/{}",
        device.display(),
        v.name
    );
    let out = super::ephemeral::run(&super::ephemeral::EphemeralArgs {
        device: device.clone(),
        name: v.name.clone(),
        settings: v.ephemeral.clone().expect("an ephemeral volume"),
        dry_run: args.dry_run,
        format_only: false,
        tpm,
        sys_tpm: super::ephemeral::SYS_TPM.into(),
        scratch: "/run".into(),
    })?;
    info!("{}", super::ephemeral::render(&device, &out));
    Ok(())
}
