//! The `sealroot` binary: parse arguments, run a command, map its error to
//! a documented exit code (README.md, docs/format.md).

use clap::Parser;
use sealroot::cli::{
    Cli, CmdlineArgs, Command, PolicyCommand, SnpCertArgs, SnpPolicyArgs, TpmArgs,
};
use sealroot::ops::platform::PlatformOpts;
use sealroot::ops::{self, PinSource, TpmOpts};
use sealroot::platform::{self, Policy};
use sealroot::{logging, pcr, tpm, Error, Exit, Result};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

/// glibc tunables that make every freed heap block get overwritten: the
/// per-thread cache (which skips the overwrite) is off and freed bytes are
/// perturbed. tpm2-tss frees the buffer that held the unsealed KEK without
/// wiping it; this scrubs that copy, and any other, the moment it is freed.
const ALLOC_TUNABLES: &str = "glibc.malloc.tcache_count=0:glibc.malloc.perturb=90";

/// Tunables are read only at process start, so re-execute ourselves once
/// with them set (same PID, same arguments). If that fails, go on with the
/// perturbation alone, which mallopt can still switch on.
fn harden_allocator() {
    let current = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
    if !current.contains(ALLOC_TUNABLES) {
        use std::os::unix::process::CommandExt;
        let mut args = std::env::args_os();
        let argv0 = args.next().unwrap_or_else(|| "sealroot".into());
        let tunables = if current.is_empty() {
            ALLOC_TUNABLES.to_string()
        } else {
            format!("{current}:{ALLOC_TUNABLES}")
        };
        let err = std::process::Command::new("/proc/self/exe")
            .arg0(argv0)
            .args(args)
            .env("GLIBC_TUNABLES", tunables)
            .exec();
        log::debug!("could not re-execute with hardened allocator tunables: {err}");
    }
    // SAFETY: mallopt and prctl only change process settings; no other
    // thread exists yet and no pointer is passed. A non-dumpable process
    // writes no core dump, so a crash cannot put a key on disk.
    unsafe {
        libc::mallopt(libc::M_PERTURB, 0x5a);
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
}

fn main() -> ExitCode {
    harden_allocator();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                Exit::Usage.code()
            } else {
                Exit::Ok.code()
            });
        }
    };
    // tpm2-tss prints its own warnings to stderr; sealroot reports failures
    // itself, with context. TSS2_LOG set by the user still wins.
    if std::env::var_os("TSS2_LOG").is_none() {
        std::env::set_var("TSS2_LOG", "all+NONE");
    }
    logging::init(cli.log, cli.verbose);
    sealroot::luks::init_logging();
    let to_kmsg = match cli.log {
        logging::Sink::Kmsg => true,
        logging::Sink::Stderr => false,
        logging::Sink::Auto => logging::in_initramfs(),
    };
    let code = match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            if to_kmsg {
                eprintln!("sealroot: error: {e}");
            }
            ExitCode::from(e.exit().code())
        }
    };
    // Overwrite the stack that the commands used: unsealed keys passed
    // through tss-esapi and AES-GCM locals there.
    sealroot::secret::scrub_stack();
    sealroot::testhooks::pause_before_exit();
    code
}

fn tpm_opts(t: &TpmArgs) -> Result<TpmOpts> {
    if !(t.tpm_timeout.is_finite() && t.tpm_timeout >= 0.0 && t.tpm_timeout <= 3600.0) {
        return Err(Error::Usage(format!(
            "--tpm-timeout must be between 0 and 3600 seconds, got {}",
            t.tpm_timeout
        )));
    }
    Ok(TpmOpts {
        tcti: tpm::tcti_spec(t.tcti.as_deref()),
        timeout: Duration::from_secs_f64(t.tpm_timeout),
    })
}

fn pcr_list(s: &str) -> Result<Vec<u32>> {
    pcr::parse_list(s).map_err(|e| Error::Usage(format!("--pcrs {s:?}: {e}")))
}

fn cmdline(c: &CmdlineArgs, override_: Option<String>) -> Result<String> {
    match override_ {
        Some(s) => Ok(s),
        None => ops::read_cmdline(&c.cmdline_file),
    }
}

/// The SEV-SNP requirement the options describe, with the certificates to
/// store in it (checked to chain to AMD now, so a wrong file fails here).
fn snp_policy(p: &SnpPolicyArgs, c: &SnpCertArgs) -> Result<Option<Policy>> {
    if !p.require_snp {
        if !c.snp_vceks.is_empty() || !c.snp_chains.is_empty() {
            return Err(Error::Usage(
                "--snp-vcek/--snp-chain are stored in the blob only with --require-snp".into(),
            ));
        }
        return Ok(None);
    }
    let usage = |flag: &str, e: String| Error::Usage(format!("{flag}: {e}"));
    let policy = Policy {
        measurements: p
            .snp_measurements
            .iter()
            .map(|m| platform::policy::parse_measurement(m))
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| usage("--snp-measurement", e))?,
        min_tcb: p
            .snp_min_tcb
            .as_deref()
            .map(platform::policy::parse_min_tcb)
            .transpose()
            .map_err(|e| usage("--snp-min-tcb", e))?,
        guest_policy_require: p
            .snp_policy_require
            .as_deref()
            .map(platform::policy::parse_guest_policy_names)
            .transpose()
            .map_err(|e| usage("--snp-policy-require", e))?
            .unwrap_or(0),
        guest_policy_forbid: p
            .snp_policy_forbid
            .as_deref()
            .map(platform::policy::parse_guest_policy_names)
            .transpose()
            .map_err(|e| usage("--snp-policy-forbid", e))?
            .unwrap_or(0),
        unsigned_ok: p.snp_unsigned_ok,
        vceks: ops::platform::read_cert_files(&c.snp_vceks)?,
        ca: ops::platform::read_cert_files(&c.snp_chains)?,
    };
    if policy.measurements.len() > platform::policy::MAX_MEASUREMENTS {
        return Err(usage(
            "--snp-measurement",
            format!("at most {}", platform::policy::MAX_MEASUREMENTS),
        ));
    }
    if policy.vceks.len() + policy.ca.len() > 2 * platform::policy::MAX_CERTS {
        return Err(Error::Usage("too many certificates".into()));
    }
    policy.validate().map_err(Error::Usage)?;
    platform::report::validate_certs(&policy.vceks, &policy.ca)
        .map_err(|e| usage("--snp-vcek/--snp-chain", e))?;
    Ok(Some(policy))
}

fn policy_search(a: &sealroot::cli::PolicySearchArgs) -> ops::policy::PolicySearch {
    ops::policy::PolicySearch {
        files: a.policy_files.clone(),
        dir: Some(a.policy_dir.clone()),
    }
}

fn run_policy(cmd: PolicyCommand) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    match cmd {
        PolicyCommand::Sign {
            key,
            pcrs,
            values,
            from_eventlog,
            initrd,
            kernel,
            qemu_direct_boot,
            policy_version,
            description,
            out,
        } => {
            let pcrs = pcr_list(&pcrs)?;
            let p = ops::policy::sign(&ops::policy::SignArgs {
                key,
                pcrs,
                values,
                from_eventlog,
                initrd,
                kernel,
                qemu_direct_boot_mib: qemu_direct_boot,
                version: policy_version,
                description,
                out: out.clone(),
            })?;
            let _ = writeln!(
                stdout,
                "signed policy version {} for PCRs {} written to {}",
                p.version,
                p.pcrs
                    .iter()
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
                out.display()
            );
        }
        PolicyCommand::Install {
            device,
            file,
            replace,
        } => {
            let id = ops::policy::install(&device, &file, replace)?;
            let _ = writeln!(stdout, "installed {} as token {id}", file.display());
        }
        PolicyCommand::Revoke { below, tpm } => {
            let c = ops::policy::revoke(&tpm_opts(&tpm)?, below)?;
            let _ = writeln!(
                stdout,
                "revocation counter is {c}: policies with a version below {c} are refused"
            );
        }
        PolicyCommand::Counter { tpm } => {
            let c = ops::policy::counter(&tpm_opts(&tpm)?)?;
            let _ = writeln!(stdout, "{c}");
        }
    }
    Ok(())
}

fn run(cmd: Command) -> Result<()> {
    match cmd {
        Command::Policy(p) => run_policy(p),
        Command::Enroll {
            device,
            unlock_key_file,
            pcrs,
            bank,
            pin,
            pin_file,
            blob_file,
            no_recovery_key,
            recovery_key_file,
            boot_cmdline,
            policy_key,
            eventlog,
            snp,
            snp_certs,
            tpm,
            cmdline: c,
        } => {
            // Validate every option before touching anything.
            let authorize = policy_key
                .as_deref()
                .map(ops::read_public_key)
                .transpose()?;
            if bank != pcr::BANK_SHA256 {
                return Err(Error::Usage(format!(
                    "--bank {bank:?}: only sha256 is supported"
                )));
            }
            let pcrs = pcr_list(&pcrs)?;
            let tpm = tpm_opts(&tpm)?;
            let platform = snp_policy(&snp, &snp_certs)?;
            if let Some(p) = &platform {
                if p.vceks.is_empty() && !p.unsigned_ok {
                    log::warn!(
                        "--require-snp without --snp-vcek: unlock will need --snp-vcek files for the report's chip and TCB"
                    );
                }
                if p.measurements.is_empty() {
                    log::warn!(
                        "--require-snp without --snp-measurement: any launch measurement will be accepted"
                    );
                }
            }
            if pin_file.is_some() && !pin {
                return Err(Error::Usage("--pin-file needs --pin".into()));
            }
            if let Some(f) = &recovery_key_file {
                if f.exists() {
                    return Err(Error::Usage(format!(
                        "{}: recovery key file already exists; refusing to overwrite it",
                        f.display()
                    )));
                }
            }
            let cmdline = cmdline(&c, boot_cmdline)?;
            let unlock_key = ops::read_key_file(&unlock_key_file)?;
            let pin = if pin {
                let src = PinSource { file: pin_file };
                Some(src.get("sealroot: new PIN: ")?)
            } else {
                None
            };
            let out = ops::enroll::run(&ops::enroll::EnrollArgs {
                device: device.clone(),
                unlock_key,
                pcrs,
                pin,
                blob_file,
                recovery: !no_recovery_key,
                cmdline,
                tpm,
                platform,
                authorize,
                eventlog: eventlog.path(),
            })?;
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(
                stdout,
                "enrolled {}: keyslot {}{}, PCRs {} (sha256){}",
                device.display(),
                out.added.keyslot,
                out.added
                    .token
                    .map(|t| format!(", token {t}"))
                    .unwrap_or_default(),
                out.added
                    .blob
                    .pcrs
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
                if out.added.blob.pin { ", PIN" } else { "" }
            );
            if let Some((rk, slot)) = &out.recovery {
                match &recovery_key_file {
                    Some(f) => {
                        write_new_private(f, format!("{}\n", rk.as_str()).as_bytes())?;
                        let _ = writeln!(
                            stdout,
                            "recovery key (keyslot {slot}) written to {}",
                            f.display()
                        );
                    }
                    None => {
                        let _ = writeln!(
                            stdout,
                            "\nRecovery key (keyslot {slot}). It is shown only once; store it somewhere safe:\n\n    {}\n",
                            rk.as_str()
                        );
                    }
                }
            }
            Ok(())
        }
        Command::Unlock {
            device,
            name,
            dry_run,
            blob_file,
            pin_file,
            key_file,
            provision_key_file,
            pcrs,
            snp,
            snp_certs,
            sev_guest,
            policy_key,
            policies,
            eventlog,
            tpm,
            cmdline: c,
        } => {
            let pcrs = pcr_list(&pcrs)?;
            let policy_key = policy_key
                .as_deref()
                .map(ops::read_public_key)
                .transpose()?;
            let platform = platform_opts(&snp_certs, sev_guest, None)?;
            // Certificates are read at run time here (platform_opts).
            let require = snp_policy(&snp, &SnpCertArgs::default())?;
            let tpm = tpm_opts(&tpm)?;
            if name.is_empty() || name.contains('/') || name.len() > 127 {
                return Err(Error::Usage(format!(
                    "--name {name:?}: not a valid mapping name"
                )));
            }
            if let Some(f) = key_file {
                let key = ops::read_key_file(&f)?;
                return ops::unlock::with_key(&device, &name, dry_run, &key, &tpm).map(|_| ());
            }
            let provision_key = provision_key_file
                .as_deref()
                .map(ops::read_key_file)
                .transpose()?;
            let cmdline = cmdline(&c, None)?;
            ops::unlock::run(&ops::unlock::UnlockArgs {
                device,
                name,
                dry_run,
                blob_file,
                cmdline,
                pin: PinSource { file: pin_file },
                provision_key,
                pcrs,
                tpm,
                platform,
                require,
                policy_key,
                policies: policy_search(&policies),
                eventlog: eventlog.path(),
            })?;
            Ok(())
        }
        Command::Boot {
            crypttab,
            dry_run,
            device_timeout,
            pin_file,
            snp_certs,
            sev_guest,
            policies,
            eventlog,
            tpm,
            cmdline: c,
        } => {
            let tpm = tpm_opts(&tpm)?;
            if !(device_timeout.is_finite() && (0.0..=3600.0).contains(&device_timeout)) {
                return Err(Error::Usage(format!(
                    "--device-timeout must be between 0 and 3600 seconds, got {device_timeout}"
                )));
            }
            let platform = platform_opts(&snp_certs, sev_guest, None)?;
            let cmdline = cmdline(&c, None)?;
            ops::boot::run(&ops::boot::BootArgs {
                crypttab,
                cmdline,
                dry_run,
                device_timeout: Duration::from_secs_f64(device_timeout),
                pin: PinSource { file: pin_file },
                tpm,
                platform,
                policies: policy_search(&policies),
                eventlog: eventlog.path(),
            })?;
            Ok(())
        }
        Command::Status {
            device,
            json,
            blob_file,
            policies,
            eventlog,
            tpm,
            cmdline: c,
        } => {
            let tpm = tpm_opts(&tpm)?;
            let cmdline = cmdline(&c, None)?;
            let r = ops::status::run(&ops::status::StatusArgs {
                device,
                blob_file,
                cmdline,
                tpm,
                policies: policy_search(&policies),
                eventlog: eventlog.path(),
            })?;
            let text = if json {
                serde_json::to_string_pretty(&r).expect("report serialises") + "\n"
            } else {
                ops::status::render(&r)
            };
            let _ = std::io::stdout().write_all(text.as_bytes());
            Ok(())
        }
        Command::Reseal {
            device,
            pcrs,
            unlock_key_file,
            pin_file,
            blob_file,
            token,
            boot_cmdline,
            tpm,
            cmdline: c,
        } => {
            let pcrs = pcrs.as_deref().map(pcr_list).transpose()?;
            let tpm = tpm_opts(&tpm)?;
            let cmdline = cmdline(&c, boot_cmdline)?;
            let unlock_key = unlock_key_file
                .as_deref()
                .map(ops::read_key_file)
                .transpose()?;
            let added = ops::reseal::run(&ops::reseal::ResealArgs {
                device: device.clone(),
                pcrs,
                unlock_key,
                pin: PinSource { file: pin_file },
                blob_file,
                token,
                cmdline,
                tpm,
            })?;
            println!(
                "resealed {}: keyslot {}{}",
                device.display(),
                added.keyslot,
                added
                    .token
                    .map(|t| format!(", token {t}"))
                    .unwrap_or_default()
            );
            Ok(())
        }
        Command::Remove { device, token } => {
            let slots = ops::remove::remove(&device, token)?;
            println!(
                "removed token {token} and keyslot(s) {:?} from {}",
                slots,
                device.display()
            );
            Ok(())
        }
        Command::Predict {
            eventlog,
            initrd,
            kernel,
            qemu_direct_boot,
            pcrs,
            verify_tpm,
            json,
            tpm,
        } => {
            let pcrs = pcr_list(&pcrs)?;
            let verify_tpm = if verify_tpm {
                Some(tpm_opts(&tpm)?)
            } else {
                None
            };
            let r = ops::predict::run(&ops::predict::PredictArgs {
                eventlog,
                initrd,
                kernel,
                qemu_direct_boot_mib: qemu_direct_boot,
                pcrs,
                verify_tpm,
            })?;
            let text = if json {
                serde_json::to_string_pretty(&r).expect("report serialises") + "\n"
            } else {
                ops::predict::render(&r)
            };
            let _ = std::io::stdout().write_all(text.as_bytes());
            Ok(())
        }
        Command::Platform {
            json,
            device,
            blob_file,
            token,
            snp,
            snp_certs,
            sev_guest,
            tdx_guest,
            tpm,
        } => {
            let tpm = tpm_opts(&tpm)?;
            let opts = platform_opts(&snp_certs, sev_guest, Some(tdx_guest))?;
            let (policy, policy_digest) = if snp.require_snp {
                // Certificates are given at run time here, not stored.
                let p = snp_policy(&snp, &SnpCertArgs::default())?.expect("required");
                (Some((p, "command line".to_string())), [0; 32])
            } else if device.is_some() || blob_file.is_some() {
                let (p, origin, digest) = ops::platform::policy_from_blob(
                    device.as_deref(),
                    blob_file.as_deref(),
                    token,
                )?;
                (Some((p, origin)), digest)
            } else {
                (None, [0; 32])
            };
            let r = ops::platform::run(&ops::platform::PlatformArgs {
                tpm,
                opts,
                policy,
                policy_digest,
            })?;
            let text = if json {
                serde_json::to_string_pretty(&r).expect("report serialises") + "\n"
            } else {
                ops::platform::render(&r)
            };
            let _ = std::io::stdout().write_all(text.as_bytes());
            if r.verdict == "fail" {
                let f = r
                    .checks
                    .iter()
                    .find(|c| c.status == platform::Status::Fail)
                    .expect("a failed check");
                return Err(platform::Failure {
                    check: f.check,
                    detail: f.detail.clone(),
                }
                .into());
            }
            Ok(())
        }
        Command::Ephemeral {
            device,
            name,
            integrity,
            mkfs,
            wipe_existing,
            measure_pcr,
            dry_run,
            format_only,
            tpm,
        } => {
            let settings = ephemeral_settings(integrity, &mkfs, wipe_existing, measure_pcr)?;
            let tpm = tpm_opts(&tpm)?;
            if name.is_empty() || name.contains('/') || name.len() > 127 {
                return Err(Error::Usage(format!(
                    "--name {name:?}: not a valid mapping name"
                )));
            }
            let out = ops::ephemeral::run(&ops::ephemeral::EphemeralArgs {
                device: device.clone(),
                name,
                settings,
                dry_run,
                format_only,
                tpm,
                sys_tpm: ops::ephemeral::SYS_TPM.into(),
                scratch: "/run".into(),
            })?;
            println!("{}", ops::ephemeral::render(&device, &out));
            Ok(())
        }
        Command::Verity {
            data_device,
            hash_device,
            root_hash,
            name,
            verify,
        } => {
            let root_hash = sealroot::ephemeral::parse_root_hash(&root_hash)
                .map_err(|e| Error::Usage(format!("--root-hash: {e}")))?;
            if name.is_empty() || name.contains('/') || name.len() > 127 {
                return Err(Error::Usage(format!(
                    "--name {name:?}: not a valid mapping name"
                )));
            }
            ops::verity::run(&ops::verity::VerityArgs {
                data: data_device,
                hash: hash_device,
                root_hash,
                name,
                verify_only: verify,
            })
        }
        Command::Cleanup { device } => {
            let removed = ops::remove::cleanup(&device)?;
            println!(
                "removed {} dangling token(s) {:?} from {}",
                removed.len(),
                removed,
                device.display()
            );
            Ok(())
        }
    }
}

/// The ephemeral settings the options describe.
fn ephemeral_settings(
    integrity: bool,
    mkfs: &str,
    wipe_existing: bool,
    measure_pcr: Option<u32>,
) -> Result<sealroot::ephemeral::Settings> {
    use sealroot::ephemeral as e;
    Ok(e::Settings {
        integrity,
        mkfs: e::Mkfs::parse(mkfs).map_err(|m| Error::Usage(format!("--{m}")))?,
        wipe_existing,
        measure_pcr: measure_pcr
            .map(e::measure_pcr_ok)
            .transpose()
            .map_err(|m| Error::Usage(format!("--measure-pcr: {m}")))?,
    })
}

/// Where `unlock`/`platform` look for evidence, and the certificates given
/// as files.
fn platform_opts(
    c: &SnpCertArgs,
    sev_guest: std::path::PathBuf,
    tdx_guest: Option<std::path::PathBuf>,
) -> Result<PlatformOpts> {
    let mut o = PlatformOpts {
        sev_guest,
        ..PlatformOpts::default()
    };
    if let Some(t) = tdx_guest {
        o.tdx_guest = t;
    }
    o.certs.vceks = ops::platform::read_cert_files(&c.snp_vceks)?;
    o.certs.ca = ops::platform::read_cert_files(&c.snp_chains)?;
    Ok(o)
}

/// Create `path` (must not exist) with mode 0600 and write `data`.
fn write_new_private(path: &Path, data: &[u8]) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    f.write_all(data)
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::io(path, e))
}
