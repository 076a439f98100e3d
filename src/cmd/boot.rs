//! `sealroot boot`: the initramfs entry point. Reads which volumes to open
//! from the kernel command line and crypttab ([`crate::formats::bootcfg`]),
//! waits (bounded) for their device nodes, opens the dm-verity OS layer and
//! the ephemeral volumes, then unseals every sealed volume and locks PCR 15
//! once behind them all.

use super::steps::ephemeral::{self, EphemeralArgs, SYS_TPM};
use super::steps::evidence::PlatformOpts;
use super::steps::inputs::{read_public_key, PinSource};
use super::steps::measure::measure_primary;
use super::steps::session::Session;
use super::steps::signed::PolicySearch;
use super::steps::state::{self, FirstBoot};
use super::steps::unlock::{self, Opened, Prepared, UnlockArgs, Unlocked};
use super::steps::TpmOpts;
use crate::disk::luks::OpenOpts;
use crate::disk::verity::{self, VerityArgs};
use crate::disk::wait::wait_for;
use crate::formats::bootcfg::{self, DeviceRef, VerityCfg, VolumeCfg};
use crate::formats::state::Found;
use crate::pcr::selfpcr::Measurements;
use crate::pcr::{Digest, DEFAULT_PCRS};
use crate::sys::files::read_key_file;
use crate::testhooks::checkpoint;
use crate::{Error, Result};
use log::{error, info};
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
    let usage = |e: String| Error::Usage(format!("boot configuration: {e}"));
    if bootcfg::disabled(&args.cmdline) {
        // An image that re-keys its root keeps sealroot on: without it,
        // cryptsetup's own prompt (cryptroot, systemd-cryptsetup) would take
        // the image's keys (docs/first-boot.md#recovery).
        if crypttab(args).is_ok_and(|t| t.iter().any(|v| v.opts.rekey)) {
            return Err(usage(
                "rd.sealroot=0 is refused: this image re-keys its root at first boot (sealroot-rekey), and cryptsetup's own prompt would take the image's keys".into(),
            ));
        }
        info!("rd.sealroot=0: sealroot opens nothing this boot (and locks PCR 15)");
        let off = bootcfg::CmdlineCfg {
            disabled: true,
            ..Default::default()
        };
        return Ok((off, vec![]));
    }
    let cmdline = bootcfg::parse_cmdline(&args.cmdline).map_err(usage)?;
    let crypttab = crypttab(args)?;
    let vols = bootcfg::resolve(&cmdline, &crypttab).map_err(usage)?;
    // An image that re-keys its root: the command line names no volume the
    // crypttab does not (another name for the root's disk would be opened
    // without the re-keying's rules).
    if crypttab.iter().any(|v| v.opts.rekey) {
        if let Some(v) = vols
            .iter()
            .find(|v| !crypttab.iter().any(|c| c.device == v.device))
        {
            return Err(usage(format!(
                "this image re-keys its root at first boot (sealroot-rekey): the command line cannot add volume {} ({}); name a crypttab volume",
                v.name, v.device
            )));
        }
    }
    Ok((cmdline, vols))
}

/// The volumes of `--crypttab` (none when the file does not exist).
///
/// Errors: [`Error::Usage`] for a line sealroot refuses; [`Error::Io`].
fn crypttab(args: &BootArgs) -> Result<Vec<VolumeCfg>> {
    match std::fs::read_to_string(&args.crypttab) {
        Ok(t) => {
            let tab = bootcfg::parse_crypttab_warn(&t)
                .map_err(|e| Error::Usage(format!("{}: {e}", args.crypttab.display())))?;
            for w in &tab.warnings {
                log::warn!("{}: {w}", args.crypttab.display());
            }
            Ok(tab.volumes)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(vec![]),
        Err(e) => Err(Error::io(&args.crypttab, e)),
    }
}

/// What one boot opened (mapping name, outcome; the primary volume
/// first), and the other sealed volumes it could not open.
#[derive(Debug, Default)]
pub struct BootOutcome {
    pub opened: Vec<(String, Unlocked)>,
    pub failed: Vec<(String, Error)>,
}

/// Open what the configuration names: the verified OS layer first (an
/// ephemeral root's overlay needs it), then the ephemeral volumes (they
/// unseal nothing and leave PCR 15 alone), then the TPM-sealed volumes:
/// every one is unsealed before PCR 15 is locked once
/// (docs/design.md#several-volumes-in-one-boot). The primary volume's
/// failure fails the boot; another volume's is logged and returned in
/// [`BootOutcome::failed`]. No sealed volume configured is not an error:
/// the hook may be installed on a machine that does not use sealroot for
/// this boot.
///
/// `session` locks PCR 15 on every way out, failures included, and also
/// when nothing is configured or `rd.sealroot=0` says so: the host writes
/// the command line, and a boot it steered away from sealroot must not
/// leave PCR 15 fresh for a later replay of sealroot's measurements.
///
/// Errors: those of the configuration, of the device wait ([`Error::Io`]),
/// of dm-verity and ephemeral setup, and of the primary volume's unlock
/// ([`unlock::run`]).
pub fn run(args: &BootArgs, session: &mut Session) -> Result<BootOutcome> {
    let (cmdline, vols) = configuration(args)?;
    if let Some(v) = cmdline.verity.as_ref().filter(|_| !cmdline.disabled) {
        open_verity(args, v)?;
    }
    let mut ephemeral = 0;
    for v in vols.iter().filter(|v| v.opts.ephemeral.is_some()) {
        open_ephemeral(args, v)?;
        ephemeral += 1;
    }
    let sealed = bootcfg::sealed_in_boot_order(&vols, &args.cmdline);
    if sealed.is_empty() {
        if ephemeral == 0 && cmdline.verity.is_none() {
            info!(
                "no sealroot volume configured (kernel command line, {})",
                args.crypttab.display()
            );
        }
        return Ok(BootOutcome::default());
    }
    let formatted = first_boot_states(args, &sealed, session)?;
    let out = unlock_volumes(args, &sealed, session)?;
    for (device, name) in formatted.iter().filter(|_| !args.dry_run) {
        if out.opened.iter().any(|(n, _)| n == name) {
            state::complete(device, name)?;
        }
    }
    Ok(out)
}

/// Guard every state volume, and format and enroll those whose first boot
/// this is (blank, or left incomplete by a power cut): returns them, to be
/// completed once the unlock opened them. A state volume's first boot
/// measures PCR 15 as the boot's primary volume, so it must be that
/// volume (it is, in the usual layout: a verity OS and one state volume).
///
/// Errors: [`Error::StateRefused`] (exit 12) from the guard;
/// [`Error::Usage`] for a first boot of a state volume that is not the
/// primary one; those of [`state::format_and_enroll`].
fn first_boot_states(
    args: &BootArgs,
    sealed: &[VolumeCfg],
    session: &mut Session,
) -> Result<Vec<(PathBuf, String)>> {
    let mut formatted = vec![];
    for (i, v) in sealed.iter().enumerate() {
        if v.opts.state.is_none() {
            continue;
        }
        let device = v.device.path();
        wait_for(&device, args.device_timeout)?;
        let found = state::inspect(&device)?;
        state::report(&device, &found);
        if found == Found::Complete {
            continue;
        }
        if i != 0 {
            return Err(Error::Usage(format!(
                "{}: the first boot of a state volume measures it as the boot's primary volume, and {} is the primary one (docs/first-boot.md#mode-1-a-fresh-state-volume)",
                v.name, sealed[0].name
            )));
        }
        if args.dry_run {
            info!(
                "dry run: state volume {} is formatted and enrolled, and left incomplete (no mapping, no filesystem): the next boot formats it afresh",
                device.display()
            );
        }
        session.retarget(boot_tpm(args, sealed)?);
        let policy_key = v
            .opts
            .policy_key
            .as_deref()
            .map(read_public_key)
            .transpose()?;
        let pcrs = v.opts.pcrs.clone().unwrap_or_else(|| DEFAULT_PCRS.to_vec());
        let tpm = tpm_for(args, v);
        state::format_and_enroll(
            &FirstBoot {
                device: &device,
                name: &v.name,
                cmdline: &args.cmdline,
                pcrs: &pcrs,
                policy_key: policy_key.as_ref(),
                allow_zero_pcrs: args.allow_zero_pcrs,
                eventlog: args.eventlog.as_deref(),
                tpm: &tpm,
            },
            session,
        )?;
        formatted.push((device, v.name.clone()));
    }
    Ok(formatted)
}

/// The primary sealed volume's configuration as shell assignments
/// ([`bootcfg::export`]): what the initramfs scripts' recovery prompt
/// needs, from the one parser of the boot configuration. Touches nothing.
///
/// Errors: those of [`configuration`].
pub fn print_config(args: &BootArgs) -> Result<String> {
    let (_, vols) = configuration(args)?;
    let sealed = bootcfg::sealed_in_boot_order(&vols, &args.cmdline);
    let mut out = bootcfg::export(sealed.first(), &args.tpm.tcti);
    // An image that re-keys its root offers no console recovery, whichever
    // volume the command line makes the primary one.
    if vols.iter().any(|v| v.opts.rekey) || crypttab(args)?.iter().any(|v| v.opts.rekey) {
        out = out.replace("SEALROOT_RECOVERY='prompt'\n", "SEALROOT_RECOVERY='none'\n");
    }
    // Only ephemeral volumes: the scripts still fail closed as the first
    // one's on-failure= says (docs/ephemeral.md#in-the-initramfs).
    match vols.iter().find_map(|v| v.opts.on_failure) {
        Some(f) if sealed.is_empty() => Ok(out.replace(
            "SEALROOT_ON_FAILURE=''\n",
            &format!("SEALROOT_ON_FAILURE='{}'\n", f.as_str()),
        )),
        _ => Ok(out),
    }
}

/// The one TPM every sealed volume of a boot uses: one lock must cover
/// them all.
///
/// Errors: [`Error::Usage`] when two volumes name different TPMs.
fn boot_tpm(args: &BootArgs, vols: &[VolumeCfg]) -> Result<TpmOpts> {
    let first = tpm_for(args, &vols[0]);
    if let Some(v) = vols.iter().find(|v| tpm_for(args, v).tcti != first.tcti) {
        return Err(Error::Usage(format!(
            "boot configuration: {} uses TPM {:?} and {} uses {:?}: every sealed volume of one boot uses the same TPM, so that one lock covers them all",
            vols[0].name,
            first.tcti,
            v.name,
            tpm_for(args, v).tcti
        )));
    }
    Ok(first)
}

/// One sealed volume on its way: its arguments and checked header.
type Ready = (UnlockArgs, Prepared);
/// And its key, unsealed before the lock.
type Unsealed = (UnlockArgs, Prepared, Opened);

/// Unseal every sealed volume (`vols[0]` is the primary), lock once, then
/// activate. Every header is read and checked before anything is
/// measured; the other volumes are unsealed only after the primary
/// volume's event ([`crate::pcr::selfpcr::primary_digest`]), so they open only behind
/// the very volume their tokens were sealed after.
fn unlock_volumes(
    args: &BootArgs,
    vols: &[VolumeCfg],
    session: &mut Session,
) -> Result<BootOutcome> {
    session.retarget(boot_tpm(args, vols)?);
    let mut out = BootOutcome::default();
    if let Some(done) = resume_rekey(args, vols, session)? {
        out.opened.push((vols[0].name.clone(), done));
        return Ok(out);
    }
    let mut ready = prepare_all(args, vols, &mut out)?.into_iter();
    let deadline = vols
        .iter()
        .filter_map(|v| v.opts.deadline)
        .reduce(f64::min)
        .map(Duration::from_secs_f64);
    session.set_deadline(deadline.unwrap_or(args.deadline));

    let (first, mut prepared) = ready.next().expect("the primary volume");
    let rest: Vec<Ready> = ready.collect();
    if rest.is_empty() {
        // One volume: the unlock path of `unlock` (which also opens a
        // volume through its systemd-tpm2 token).
        let done = unlock::run_prepared(&first, prepared, session)?;
        out.opened.push((first.name, done));
        return Ok(out);
    }
    // PCR 15 measures the primary volume: a data disk's failure cannot
    // change what the primary's token expects.
    let now = Measurements::new(&args.cmdline, &prepared.uuid);
    let key = unlock::unseal(&mut prepared, &first, &now, session)?;
    let mut unsealed: Vec<Unsealed> = Vec::with_capacity(rest.len() + 1);
    let fp = key.fingerprint();
    session.check_deadline("the primary volume's event")?;
    measure_primary(session.tpm()?, &fp)?;
    let after = now.after_primary(&fp);
    for (a, mut p) in rest {
        match unlock::unseal(&mut p, &a, &after, session) {
            Ok(k) => unsealed.push((a, p, k)),
            // No TPM, or time is up: the lock is due now.
            Err(e @ (Error::NoTpm { .. } | Error::Timeout(_))) => return Err(e),
            Err(e) => not_opened(&mut out, &a.name, e),
        }
    }
    unsealed.insert(0, (first, prepared, key));
    session.check_deadline("the lock")?;
    let fingerprints: Vec<Digest> = unsealed.iter().map(|(_, _, k)| k.fingerprint()).collect();
    session.lock_opened(&fingerprints)?;
    checkpoint("unlock:locked");

    let mut unsealed = unsealed.into_iter();
    let (a, p, k) = unsealed.next().expect("the primary volume");
    let done = unlock::finish(p, k, &a, session)?;
    out.opened.push((a.name, done));
    for (a, p, k) in unsealed {
        match unlock::finish(p, k, &a, session) {
            Ok(done) => out.opened.push((a.name, done)),
            Err(e) => not_opened(&mut out, &a.name, e),
        }
    }
    Ok(out)
}

/// A primary volume whose first-boot re-keying was cut goes on with it
/// ([`super::steps::rekey`]): alone in its boot, since the resume locks
/// PCR 15 for its one key.
fn resume_rekey(
    args: &BootArgs,
    vols: &[VolumeCfg],
    session: &mut Session,
) -> Result<Option<Unlocked>> {
    if let Some(v) = vols.iter().skip(1).find(|v| v.opts.rekey) {
        return Err(Error::Usage(format!(
            "{}: sealroot-rekey is for the boot's primary volume only (the root; here {}): its re-keying locks PCR 15 for its one key",
            v.name, vols[0].name
        )));
    }
    if !vols[0].opts.rekey {
        return Ok(None);
    }
    wait_for(&vols[0].device.path(), args.device_timeout)?;
    let a = volume_args(args, &vols[0])?;
    let done = super::steps::rekey::resume_if_interrupted(&a.rekey_target(), session)?
        .map(Unlocked::rekeyed);
    if done.is_some() && vols.len() > 1 {
        log::warn!(
            "{}: re-keying resumed; the other sealed volumes open on the next boot (PCR 15 is locked)",
            vols[0].name
        );
    }
    Ok(done)
}

/// Record (and log) a volume other than the primary that is not opened.
fn not_opened(out: &mut BootOutcome, name: &str, e: Error) {
    error!("{name}: not opened: {e} (the boot goes on without it)");
    out.failed.push((name.to_string(), e));
}

/// Wait for every device, then read and check every header, before
/// anything is measured or unsealed. The primary volume's failure is
/// fatal; another's is recorded in `out`. A volume whose header carries
/// another volume's LUKS UUID, or not the `UUID=` it is configured by, is
/// refused (a disk attached twice, or in another's place).
///
/// Errors: those of the primary volume's device wait, key files and
/// header check.
fn prepare_all(args: &BootArgs, vols: &[VolumeCfg], out: &mut BootOutcome) -> Result<Vec<Ready>> {
    // Waiting for a slow disk is bounded by --device-timeout; the
    // deadline counts from when they are all there or given up.
    wait_for(&vols[0].device.path(), args.device_timeout)?;
    let mut present = vec![&vols[0]];
    for v in &vols[1..] {
        match wait_for(&v.device.path(), args.device_timeout) {
            Ok(()) => present.push(v),
            Err(e) => not_opened(out, &v.name, e),
        }
    }
    let prepare = |v: &VolumeCfg| -> Result<Ready> {
        let a = volume_args(args, v)?;
        let p = unlock::prepare(&a)?;
        if let DeviceRef::Uuid(u) = &v.device {
            if !u.eq_ignore_ascii_case(&p.uuid) {
                return Err(Error::refused(
                    &a.device,
                    format!(
                        "configured as UUID={u}, but its LUKS2 header says {}",
                        p.uuid
                    ),
                ));
            }
        }
        Ok((a, p))
    };
    let mut ready = vec![prepare(present[0])?];
    for v in &present[1..] {
        let r = prepare(v).and_then(|(a, p)| {
            match ready
                .iter()
                .find(|(_, q)| q.uuid.eq_ignore_ascii_case(&p.uuid))
            {
                Some((b, _)) => Err(Error::refused(
                    &a.device,
                    format!(
                        "its LUKS UUID {} is also {}'s: one volume attached twice, or a copy",
                        p.uuid,
                        b.device.display()
                    ),
                )),
                None => Ok((a, p)),
            }
        });
        match r {
            Ok(r) => ready.push(r),
            Err(e) => not_opened(out, &v.name, e),
        }
    }
    Ok(ready)
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

/// The unlock arguments of one sealed volume (reads its provisioning key
/// and, on a first boot, its policy key).
///
/// Errors: [`Error::Io`] for an unreadable key file.
fn volume_args(args: &BootArgs, v: &VolumeCfg) -> Result<UnlockArgs> {
    let device = v.device.path();
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
    Ok(UnlockArgs {
        device,
        luks: OpenOpts {
            header: v.opts.header.clone(),
            flags: v.opts.flags,
        },
        name: v.name.clone(),
        dry_run: args.dry_run,
        blob_file: v.opts.blob.clone(),
        cmdline: args.cmdline.clone(),
        pin: args.pin.clone(),
        provision_key,
        pcrs: v.opts.pcrs.clone().unwrap_or_else(|| DEFAULT_PCRS.to_vec()),
        allow_zero_pcrs: args.allow_zero_pcrs,
        platform: args.platform.clone(),
        require: None,
        policy_key,
        policies: args.policies.clone(),
        eventlog: args.eventlog.clone(),
        systemd_tokens: v.opts.systemd_token,
        rekey: v.opts.rekey,
    })
}
