//! Command-line definition (the stable contract documented in README.md).

use crate::logging::Sink;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "sealroot",
    version,
    about = "Unlock a LUKS2 root volume with a TPM-sealed, PCR-bound key",
    disable_help_subcommand = true
)]
pub struct Cli {
    /// Log sink: kmsg inside an initramfs and stderr elsewhere by default.
    #[arg(long, value_enum, default_value_t = Sink::Auto, global = true)]
    pub log: Sink,
    /// Verbose logging (also shows tss-esapi/libcryptsetup messages).
    #[arg(short, long, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args, Clone)]
pub struct TpmArgs {
    /// TPM TCTI (else $TPM2TOOLS_TCTI, else device:/dev/tpmrm0).
    #[arg(long, value_name = "SPEC")]
    pub tcti: Option<String>,
    /// Seconds to wait for the TPM to appear/answer.
    #[arg(long, value_name = "SECS", default_value_t = 15.0)]
    pub tpm_timeout: f64,
}

#[derive(Debug, Args, Clone)]
pub struct CmdlineArgs {
    /// Read the kernel command line to measure from this file.
    #[arg(long, value_name = "PATH", default_value = "/proc/cmdline")]
    pub cmdline_file: PathBuf,
}

/// The SEV-SNP requirement `enroll` stores in the blob (and `platform`
/// judges against). See docs/platform.md.
#[derive(Debug, Args, Clone, Default)]
pub struct SnpPolicyArgs {
    /// Require a verified SEV-SNP platform; `unlock` checks it before unsealing.
    #[arg(long)]
    pub require_snp: bool,
    /// Allowed launch measurement (96 hex digits); repeat for several (default: any).
    #[arg(long = "snp-measurement", value_name = "HEX", requires = "require_snp")]
    pub snp_measurements: Vec<String>,
    /// Minimum reported TCB, e.g. bootloader=3,tee=0,snp=8,microcode=115 (fmc=N on Turin).
    #[arg(long, value_name = "SPEC", requires = "require_snp")]
    pub snp_min_tcb: Option<String>,
    /// Guest policy flags that must be set (comma-separated, e.g. single-socket).
    #[arg(long, value_name = "FLAGS", requires = "require_snp")]
    pub snp_policy_require: Option<String>,
    /// Guest policy flags that must be clear (e.g. smt,migrate-ma); debug always is.
    #[arg(long, value_name = "FLAGS", requires = "require_snp")]
    pub snp_policy_forbid: Option<String>,
    /// Accept a report whose signature cannot be checked because no VCEK for
    /// its chip and TCB is available (one that is available must verify).
    #[arg(long, requires = "require_snp")]
    pub snp_unsigned_ok: bool,
}

/// AMD certificates: stored in the blob by `enroll`, read at run time by
/// `unlock` and `platform`.
#[derive(Debug, Args, Clone, Default)]
pub struct SnpCertArgs {
    /// VCEK certificate (DER or PEM, from AMD KDS); repeat for several chips/TCBs.
    #[arg(long = "snp-vcek", value_name = "FILE")]
    pub snp_vceks: Vec<PathBuf>,
    /// ASK (and ARK) certificates (PEM, KDS `cert_chain`); the ARK is pinned.
    #[arg(long = "snp-chain", value_name = "FILE")]
    pub snp_chains: Vec<PathBuf>,
}

/// Where signed policies are looked for (signed-policy volumes), after
/// the volume's own policy tokens come the directory's `*.json` files.
#[derive(Debug, Args, Clone)]
pub struct PolicySearchArgs {
    /// A signed policy file, tried first (repeat for several).
    #[arg(long = "policy-file", value_name = "FILE")]
    pub policy_files: Vec<PathBuf>,
    /// Directory of signed policy files, tried after the volume's policy tokens.
    #[arg(long, value_name = "DIR", default_value = "/etc/sealroot/policies")]
    pub policy_dir: PathBuf,
}

/// The event log used to explain a PCR mismatch.
#[derive(Debug, Args, Clone)]
pub struct EventLogArgs {
    /// TCG2 event log of this boot, to name the event behind a mismatch
    /// ("none" or "" for none).
    #[arg(
        long,
        value_name = "PATH",
        default_value = "/sys/kernel/security/tpm0/binary_bios_measurements"
    )]
    pub eventlog: String,
}

impl EventLogArgs {
    pub fn path(&self) -> Option<PathBuf> {
        match self.eventlog.as_str() {
            "" | "none" => None,
            p => Some(PathBuf::from(p)),
        }
    }
}

/// `sealroot policy` subcommands.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Sign the PCR values of an image (for volumes enrolled with --policy-key).
    Sign {
        /// ECDSA P-256 private key (PEM, PKCS#8 or SEC1).
        #[arg(long, value_name = "PRIV.pem")]
        key: PathBuf,
        /// Firmware PCRs the policy covers (not 15).
        #[arg(long, value_name = "LIST", default_value = "0,4,7,9")]
        pcrs: String,
        /// PCR values: INDEX:HEX lines, or `sealroot predict --json` output.
        #[arg(long, value_name = "FILE", conflicts_with = "from_eventlog")]
        values: Option<PathBuf>,
        /// Replay this event log (with --initrd/--kernel substituted, as
        /// `sealroot predict` does) for the values.
        #[arg(long, value_name = "LOG")]
        from_eventlog: Option<PathBuf>,
        /// With --from-eventlog: the new initrd.
        #[arg(long, value_name = "FILE", requires = "from_eventlog")]
        initrd: Option<PathBuf>,
        /// With --from-eventlog: the new kernel PE image.
        #[arg(long, value_name = "FILE", requires = "from_eventlog")]
        kernel: Option<PathBuf>,
        /// QEMU -kernel/-initrd boot with this much RAM below 4 GiB (MiB).
        #[arg(long, value_name = "MIB", requires = "kernel")]
        qemu_direct_boot: Option<u64>,
        /// Policy version: machines whose revocation counter is above it refuse it.
        #[arg(long = "version", value_name = "N")]
        policy_version: u64,
        /// Free text stored with the policy (not signed), e.g. the image name.
        #[arg(long, value_name = "TEXT", default_value = "")]
        description: String,
        #[arg(long, value_name = "SIG.json")]
        out: PathBuf,
    },
    /// Store a signed policy in the volume's LUKS2 header (a policy token).
    Install {
        #[arg(long, value_name = "PATH")]
        device: PathBuf,
        /// The signed policy (from `policy sign`).
        #[arg(value_name = "SIG.json")]
        file: PathBuf,
        /// Remove the volume's other policy tokens once this one is stored.
        #[arg(long)]
        replace: bool,
    },
    /// Advance the TPM's revocation counter: policies signed with a lower
    /// version stop working (there is no way back).
    Revoke {
        /// The lowest policy version that stays valid.
        #[arg(long, value_name = "N")]
        below: u64,
        #[command(flatten)]
        tpm: TpmArgs,
    },
    /// Print the TPM's revocation counter.
    Counter {
        #[command(flatten)]
        tpm: TpmArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Add a TPM-sealed keyslot (and a recovery key) to a LUKS2 volume.
    Enroll {
        #[arg(long, value_name = "PATH")]
        device: PathBuf,
        /// Existing passphrase/key file that opens the volume (every byte counts).
        #[arg(long, value_name = "FILE")]
        unlock_key_file: PathBuf,
        /// Comma-separated firmware PCRs (sealroot's PCR 15 is always added).
        #[arg(long, value_name = "LIST", default_value = "0,4,7,9")]
        pcrs: String,
        /// PCR bank (only sha256).
        #[arg(long, default_value = "sha256")]
        bank: String,
        /// Also require a PIN (PolicyAuthValue; subject to DA lockout).
        #[arg(long)]
        pin: bool,
        /// Read the PIN from this file instead of $SEALROOT_PIN or a prompt.
        #[arg(long, value_name = "FILE")]
        pin_file: Option<PathBuf>,
        /// Store the blob in this file instead of a LUKS2 token.
        #[arg(long, value_name = "PATH")]
        blob_file: Option<PathBuf>,
        /// Do not create a recovery key.
        #[arg(long)]
        no_recovery_key: bool,
        /// Write the recovery key to this new file (mode 0600) instead of stdout.
        #[arg(long, value_name = "PATH", conflicts_with = "no_recovery_key")]
        recovery_key_file: Option<PathBuf>,
        /// Predict sealroot's PCR for this kernel command line instead of
        /// the one in --cmdline-file (for image builds).
        #[arg(long, value_name = "STRING")]
        boot_cmdline: Option<String>,
        /// Seal to any firmware PCR state signed by this ECDSA P-256 key
        /// (PEM public key) plus sealroot's PCR 15, instead of to today's
        /// values of --pcrs. docs/signed-policy.md.
        #[arg(long, value_name = "PUB.pem")]
        policy_key: Option<PathBuf>,
        #[command(flatten)]
        eventlog: EventLogArgs,
        #[command(flatten)]
        snp: SnpPolicyArgs,
        #[command(flatten)]
        snp_certs: SnpCertArgs,
        #[command(flatten)]
        tpm: TpmArgs,
        #[command(flatten)]
        cmdline: CmdlineArgs,
    },
    /// Unseal the key and open the volume (the boot path).
    Unlock {
        #[arg(long, value_name = "PATH")]
        device: PathBuf,
        /// Mapping name: /dev/mapper/NAME.
        #[arg(long)]
        name: String,
        /// Verify the unsealed key against its keyslot; create no mapping.
        #[arg(long)]
        dry_run: bool,
        #[arg(long, value_name = "PATH")]
        blob_file: Option<PathBuf>,
        #[arg(long, value_name = "FILE")]
        pin_file: Option<PathBuf>,
        /// Open with this passphrase/key file instead of the TPM (recovery;
        /// every byte counts, as cryptsetup's --key-file). PCR 15 is still
        /// locked when a TPM answers, so nothing can unseal afterwards.
        #[arg(long, value_name = "FILE", conflicts_with_all = ["provision_key_file", "blob_file", "pin_file"])]
        key_file: Option<PathBuf>,
        /// First boot: when the volume has no token, open it with this key,
        /// enroll against this boot's PCRs and remove the key's keyslot.
        #[arg(long, value_name = "FILE")]
        provision_key_file: Option<PathBuf>,
        /// PCRs for first-boot enrollment.
        #[arg(long, value_name = "LIST", default_value = "0,4,7,9")]
        pcrs: String,
        /// With --require-snp: a requirement checked before unsealing any
        /// token, and stored by first-boot enrollment.
        #[command(flatten)]
        snp: SnpPolicyArgs,
        #[command(flatten)]
        snp_certs: SnpCertArgs,
        /// SNP guest device (bare SEV-SNP guests without an HCL report).
        #[arg(long, value_name = "PATH", default_value = "/dev/sev-guest")]
        sev_guest: PathBuf,
        /// First boot: enroll in signed-policy mode with this public key.
        #[arg(long, value_name = "PUB.pem", requires = "provision_key_file")]
        policy_key: Option<PathBuf>,
        #[command(flatten)]
        policies: PolicySearchArgs,
        #[command(flatten)]
        eventlog: EventLogArgs,
        #[command(flatten)]
        tpm: TpmArgs,
        #[command(flatten)]
        cmdline: CmdlineArgs,
    },
    /// Open the volume named on the kernel command line (rd.sealroot.*) or
    /// in crypttab (a `sealroot` option): the initramfs entry point.
    Boot {
        /// crypttab to read (a missing file means none).
        #[arg(long, value_name = "PATH", default_value = "/etc/crypttab")]
        crypttab: PathBuf,
        #[arg(long)]
        dry_run: bool,
        /// Seconds to wait for the volume's device node to appear.
        #[arg(long, value_name = "SECS", default_value_t = 30.0)]
        device_timeout: f64,
        #[arg(long, value_name = "FILE")]
        pin_file: Option<PathBuf>,
        #[command(flatten)]
        snp_certs: SnpCertArgs,
        /// SNP guest device (bare SEV-SNP guests without an HCL report).
        #[arg(long, value_name = "PATH", default_value = "/dev/sev-guest")]
        sev_guest: PathBuf,
        #[command(flatten)]
        policies: PolicySearchArgs,
        #[command(flatten)]
        eventlog: EventLogArgs,
        #[command(flatten)]
        tpm: TpmArgs,
        #[command(flatten)]
        cmdline: CmdlineArgs,
    },
    /// Show each sealroot token: PCRs expected vs current, and a verdict.
    Status {
        #[arg(long, value_name = "PATH")]
        device: PathBuf,
        #[arg(long)]
        json: bool,
        #[arg(long, value_name = "PATH")]
        blob_file: Option<PathBuf>,
        #[command(flatten)]
        policies: PolicySearchArgs,
        #[command(flatten)]
        eventlog: EventLogArgs,
        #[command(flatten)]
        tpm: TpmArgs,
        #[command(flatten)]
        cmdline: CmdlineArgs,
    },
    /// Seal a new key to the current PCR values and retire the old one.
    Reseal {
        #[arg(long, value_name = "PATH")]
        device: PathBuf,
        #[arg(long, value_name = "LIST")]
        pcrs: Option<String>,
        /// Authorise with this key instead of unsealing the current one.
        #[arg(long, value_name = "FILE")]
        unlock_key_file: Option<PathBuf>,
        #[arg(long, value_name = "FILE")]
        pin_file: Option<PathBuf>,
        #[arg(long, value_name = "PATH")]
        blob_file: Option<PathBuf>,
        /// Which token, when the volume has several.
        #[arg(long, value_name = "ID")]
        token: Option<u32>,
        #[arg(long, value_name = "STRING")]
        boot_cmdline: Option<String>,
        #[command(flatten)]
        tpm: TpmArgs,
        #[command(flatten)]
        cmdline: CmdlineArgs,
    },
    /// Remove a sealroot token and its keyslot.
    Remove {
        #[arg(long, value_name = "PATH")]
        device: PathBuf,
        #[arg(long, value_name = "ID")]
        token: u32,
    },
    /// Remove sealroot tokens whose keyslot no longer exists.
    Cleanup {
        #[arg(long, value_name = "PATH")]
        device: PathBuf,
    },
    /// Show what the platform is (SEV-SNP, TDX, none), its report, and the
    /// verdict against a policy given by options or by an enrolled blob.
    Platform {
        #[arg(long)]
        json: bool,
        /// Judge against the requirement of this volume's sealroot token.
        #[arg(long, value_name = "PATH", conflicts_with = "require_snp")]
        device: Option<PathBuf>,
        /// Judge against the requirement in this blob file.
        #[arg(long, value_name = "PATH", conflicts_with = "require_snp")]
        blob_file: Option<PathBuf>,
        /// Which token, when the volume has several with a requirement.
        #[arg(long, value_name = "ID", requires = "device")]
        token: Option<u32>,
        #[command(flatten)]
        snp: SnpPolicyArgs,
        #[command(flatten)]
        snp_certs: SnpCertArgs,
        /// SNP guest device (bare SEV-SNP guests without an HCL report).
        #[arg(long, value_name = "PATH", default_value = "/dev/sev-guest")]
        sev_guest: PathBuf,
        /// TDX guest device (detection only).
        #[arg(long, value_name = "PATH", default_value = "/dev/tdx_guest")]
        tdx_guest: PathBuf,
        #[command(flatten)]
        tpm: TpmArgs,
    },
    /// Signed PCR policies: sign, install, revoke (docs/signed-policy.md).
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Format DEVICE as a keyless LUKS2 volume under a fresh random key that
    /// only the kernel holds, open it and create a filesystem (docs/ephemeral.md).
    Ephemeral {
        #[arg(long, value_name = "PATH")]
        device: PathBuf,
        /// Mapping name: /dev/mapper/NAME.
        #[arg(long)]
        name: String,
        /// Authenticated encryption (dm-integrity, HMAC-SHA256 per 4 KiB sector).
        #[arg(long)]
        integrity: bool,
        /// Filesystem to create: ext4 (lazy init) or none.
        #[arg(long, value_name = "FS", default_value = "ext4")]
        mkfs: String,
        /// The device is ephemeral: destroy a filesystem, partition table or
        /// unrecognised data on it (never a LUKS volume with keyslots or tokens).
        #[arg(long)]
        wipe_existing: bool,
        /// Extend the ephemeral event into this PCR (8-14; not 15).
        #[arg(long, value_name = "PCR")]
        measure_pcr: Option<u32>,
        /// Only probe the device and report the guard's decision.
        #[arg(long, conflicts_with = "format_only")]
        dry_run: bool,
        /// Write the LUKS2 header (the ephemeral marker) without opening it.
        #[arg(long)]
        format_only: bool,
        #[command(flatten)]
        tpm: TpmArgs,
    },
    /// Open a read-only image through dm-verity (the lower layer of an
    /// ephemeral root), or verify it against the root hash.
    Verity {
        /// The data (the filesystem image).
        #[arg(long, value_name = "PATH")]
        data_device: PathBuf,
        /// The hash tree with its veritysetup superblock.
        #[arg(long, value_name = "PATH")]
        hash_device: PathBuf,
        /// Root hash (64 hex digits), from a measured source.
        #[arg(long, value_name = "HEX")]
        root_hash: String,
        /// Mapping name: /dev/mapper/NAME.
        #[arg(long, default_value = "sealroot-os")]
        name: String,
        /// Check every block now (reads the whole image) instead of opening it.
        #[arg(long)]
        verify: bool,
    },
    /// Predict the PCRs of a boot with a replaced initrd and/or kernel, from
    /// this boot's event log (docs/eventlog.md).
    Predict {
        /// The TCG2 crypto-agile event log of the current boot.
        #[arg(
            long,
            value_name = "PATH",
            default_value = "/sys/kernel/security/tpm0/binary_bios_measurements"
        )]
        eventlog: PathBuf,
        /// The new initrd (its SHA-256 replaces the "Linux initrd" event in PCR 9).
        #[arg(long, value_name = "FILE")]
        initrd: Option<PathBuf>,
        /// The new kernel PE image (its Authenticode hash replaces the last
        /// EFI application event in PCR 4).
        #[arg(long, value_name = "FILE")]
        kernel: Option<PathBuf>,
        /// QEMU -kernel/-initrd boot with this much RAM below 4 GiB (MiB):
        /// apply QEMU's setup-header patch to --kernel before hashing.
        #[arg(long, value_name = "MIB", requires = "kernel")]
        qemu_direct_boot: Option<u64>,
        /// PCRs to report.
        #[arg(long, value_name = "LIST", default_value = "0,4,7,9")]
        pcrs: String,
        /// First check that the log replays to this TPM's PCRs (exit 4 if not).
        #[arg(long)]
        verify_tpm: bool,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        tpm: TpmArgs,
    },
}
