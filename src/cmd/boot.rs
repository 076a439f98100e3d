//! `sealroot boot`: the initramfs entry point. Reads which volumes to open
//! from the kernel command line and crypttab ([`crate::formats::bootcfg`]),
//! waits (bounded) for their device nodes, opens the dm-verity OS layer and
//! the ephemeral volumes, then runs the unlock path.

use super::steps::ephemeral::{self, EphemeralArgs, SYS_TPM};
use super::steps::evidence::PlatformOpts;
use super::steps::inputs::{read_public_key, PinSource};
use super::steps::session::Session;
use super::steps::signed::PolicySearch;
use super::steps::unlock::{self, UnlockArgs, Unlocked};
use super::steps::TpmOpts;
use crate::disk::luks::OpenOpts;
use crate::disk::verity::{self, VerityArgs};
use crate::disk::wait::wait_for;
use crate::formats::bootcfg::{self, VerityCfg, VolumeCfg};
use crate::pcr::DEFAULT_PCRS;
use crate::sys::files::read_key_file;
use crate::{Error, Result};
use log::info;
use std::path::PathBuf;
use std::time::Duration;

pub struct BootArgs {
    pub crypttab: PathBuf,
    pub cmdline: String,
    pub dry_run: bool,
    pub device_timeout: Duration,
    pub pin: PinSource,
    pub tpm: TpmOpts,
    /// Seconds from the start to the lock (a volume's `deadline=` wins).
    pub deadline: Duration,
    /// First boot may seal to PCRs that were never extended.
    pub allow_zero_pcrs: bool,
    pub platform: PlatformOpts,
    pub policies: PolicySearch,
    pub eventlog: Option<PathBuf>,
}

/// The boot configuration: the kernel command line's, and crypttab's
/// sealroot lines (a missing crypttab is none), resolved into volumes.
/// With `rd.sealroot=0` nothing, and nothing else is parsed.
///
/// Errors: [`Error::Usage`] naming the option or crypttab line;
/// [`Error::Io`] for an unreadable crypttab.
pub fn configuration(args: &BootArgs) -> Result<(bootcfg::CmdlineCfg, Vec<VolumeCfg>)> {
    if bootcfg::disabled(&args.cmdline) {
        info!("rd.sealroot=0: sealroot opens nothing this boot (and locks PCR 15)");
        let off = bootcfg::CmdlineCfg {
            disabled: true,
            ..Default::default()
        };
        return Ok((off, vec![]));
    }
    let usage = |e: String| Error::Usage(format!("boot configuration: {e}"));
    let cmdline = bootcfg::parse_cmdline(&args.cmdline).map_err(usage)?;
    let crypttab = match std::fs::read_to_string(&args.crypttab) {
        Ok(t) => {
            let tab = bootcfg::parse_crypttab_warn(&t)
                .map_err(|e| Error::Usage(format!("{}: {e}", args.crypttab.display())))?;
            for w in &tab.warnings {
                log::warn!("{}: {w}", args.crypttab.display());
            }
            tab.volumes
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => vec![],
        Err(e) => return Err(Error::io(&args.crypttab, e)),
    };
    let vols = bootcfg::resolve(&cmdline, &crypttab).map_err(usage)?;
    Ok((cmdline, vols))
}

/// Open what the configuration names: the verified OS layer first (an
/// ephemeral root's overlay needs it), then the ephemeral volumes (they
/// unseal nothing and leave PCR 15 alone), then the one TPM-sealed volume.
/// Returns `None` when no sealed volume is configured (not an error: the
/// hook may be installed on a machine that does not use sealroot for this
/// boot).
///
/// `session` locks PCR 15 on every way out, failures included, and also
/// when nothing is configured or `rd.sealroot=0` says so: the host writes
/// the command line, and a boot it steered away from sealroot must not
/// leave PCR 15 fresh for a later replay of sealroot's measurements.
///
/// Errors: those of the configuration, of the device wait ([`Error::Io`]),
/// of dm-verity and ephemeral setup, and of [`unlock::run`].
pub fn run(args: &BootArgs, session: &mut Session) -> Result<Option<Unlocked>> {
    let (cmdline, vols) = configuration(args)?;
    if let Some(v) = cmdline.verity.as_ref().filter(|_| !cmdline.disabled) {
        open_verity(args, v)?;
    }
    let mut ephemeral = 0;
    for v in vols.iter().filter(|v| v.opts.ephemeral.is_some()) {
        open_ephemeral(args, v)?;
        ephemeral += 1;
    }
    match sealed_volume(vols)? {
        Some(v) => unlock_volume(args, v, session).map(Some),
        None => {
            if ephemeral == 0 && cmdline.verity.is_none() {
                info!(
                    "no sealroot volume configured (kernel command line, {})",
                    args.crypttab.display()
                );
            }
            Ok(None)
        }
    }
}

/// The one TPM-sealed volume among `vols` (ephemeral ones are not), or
/// `None`.
///
/// Errors: [`Error::Usage`] when more than one is configured.
fn sealed_volume(vols: Vec<VolumeCfg>) -> Result<Option<VolumeCfg>> {
    let mut sealed: Vec<VolumeCfg> = vols
        .into_iter()
        .filter(|v| v.opts.ephemeral.is_none())
        .collect();
    match sealed.len() {
        0 | 1 => Ok(sealed.pop()),
        n => Err(Error::Usage(format!(
            "{n} sealroot volumes configured; sealroot opens one per boot (the lock after the first unseal blocks the others)"
        ))),
    }
}

/// The sealed volume's configuration as shell assignments
/// ([`bootcfg::export`]): what the initramfs scripts' recovery prompt
/// needs, from the one parser of the boot configuration. Touches nothing.
///
/// Errors: those of [`configuration`].
pub fn print_config(args: &BootArgs) -> Result<String> {
    let (_, vols) = configuration(args)?;
    let v = sealed_volume(vols)?;
    Ok(bootcfg::export(v.as_ref(), &args.tpm.tcti))
}

/// The TPM options of a volume: its own TCTI and timeout, else the
/// command's.
fn tpm_for(args: &BootArgs, v: &VolumeCfg) -> TpmOpts {
    TpmOpts {
        tcti: v.opts.tcti.clone().unwrap_or_else(|| args.tpm.tcti.clone()),
        timeout: v
            .opts
            .timeout
            .map(Duration::from_secs_f64)
            .unwrap_or(args.tpm.timeout),
    }
}

/// Open the dm-verity OS layer (`rd.sealroot.verity-*`).
fn open_verity(args: &BootArgs, v: &VerityCfg) -> Result<()> {
    for d in [&v.data, &v.hash] {
        wait_for(&d.path(), args.device_timeout)?;
    }
    if args.dry_run {
        info!("dry run: dm-verity /dev/mapper/{} not opened", v.name);
        return Ok(());
    }
    verity::open(&VerityArgs {
        data: v.data.path(),
        hash: v.hash.path(),
        root_hash: v.root_hash.clone(),
        name: v.name.clone(),
        verify_only: false,
    })
}

/// Set up one ephemeral volume from its boot configuration.
fn open_ephemeral(args: &BootArgs, v: &VolumeCfg) -> Result<()> {
    let device = v.device.path();
    wait_for(&device, args.device_timeout)?;
    info!(
        "ephemeral volume {} as /dev/mapper/{}",
        device.display(),
        v.name
    );
    let out = ephemeral::run(&EphemeralArgs {
        device: device.clone(),
        name: v.name.clone(),
        settings: v.opts.ephemeral.clone().expect("an ephemeral volume"),
        dry_run: args.dry_run,
        format_only: false,
        tpm: tpm_for(args, v),
        sys_tpm: SYS_TPM.into(),
        scratch: "/run".into(),
    })?;
    info!("{}", ephemeral::render(&device, &out));
    Ok(())
}

/// Unlock the TPM-sealed volume (first-boot enrollment when its
/// provisioning key is there).
fn unlock_volume(args: &BootArgs, v: VolumeCfg, session: &mut Session) -> Result<Unlocked> {
    session.retarget(tpm_for(args, &v));
    let device = v.device.path();
    wait_for(&device, args.device_timeout)?;
    // The deadline counts from here: waiting for a slow disk is bounded by
    // --device-timeout, and nothing is measured or unsealed before it.
    let deadline = v.opts.deadline.map(Duration::from_secs_f64);
    session.set_deadline(deadline.unwrap_or(args.deadline));
    let provision_key = match &v.opts.provision_key {
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
    let policy_key = match (&provision_key, &v.opts.policy_key) {
        (Some(_), Some(p)) => Some(read_public_key(p)?),
        _ => None,
    };
    info!("opening {} as /dev/mapper/{}", device.display(), v.name);
    unlock::run(
        &UnlockArgs {
            device,
            luks: OpenOpts {
                header: v.opts.header,
                flags: v.opts.flags,
            },
            name: v.name,
            dry_run: args.dry_run,
            blob_file: v.opts.blob,
            cmdline: args.cmdline.clone(),
            pin: args.pin.clone(),
            provision_key,
            pcrs: v.opts.pcrs.unwrap_or_else(|| DEFAULT_PCRS.to_vec()),
            allow_zero_pcrs: args.allow_zero_pcrs,
            platform: args.platform.clone(),
            require: None,
            policy_key,
            policies: args.policies.clone(),
            eventlog: args.eventlog.clone(),
        },
        session,
    )
}
