//! `sealroot enroll`: add a TPM-sealed keyslot, its blob, and a recovery key.

use super::steps::bootset;
use super::steps::eventlog::expected_events;
use super::steps::seal::{add_recovery, add_sealed, Added, SealSpec};
use super::steps::TpmOpts;
use crate::attest::snp_requirement::SnpRequirement;
use crate::attest::tdx_requirement::TdxRequirement;
use crate::disk::luks::{OpenOpts, Volume};
use crate::pcr::signer::PublicKey;
use crate::secret::{RecoveryKey, SecretBytes};
use crate::Result;
use log::warn;
use std::path::PathBuf;

/// Inputs of `sealroot enroll`.
pub struct EnrollArgs {
    pub device: PathBuf,
    /// A detached header (the device then holds only the data).
    pub header: Option<PathBuf>,
    pub unlock_key: SecretBytes,
    pub pcrs: Vec<u32>,
    pub pin: Option<SecretBytes>,
    pub blob_file: Option<PathBuf>,
    pub recovery: bool,
    /// Kernel command line the volume will boot with.
    pub cmdline: String,
    pub tpm: TpmOpts,
    /// Platform requirement (SEV-SNP), checked by `unlock` before unsealing.
    pub platform: Option<SnpRequirement>,
    /// TDX requirement, checked by `unlock` before unsealing.
    pub tdx: Option<TdxRequirement>,
    /// Signed-policy mode (`--policy-key`).
    pub authorize: Option<PublicKey>,
    /// Event log to record the expected events from (explanations).
    pub eventlog: Option<PathBuf>,
    /// Seal to firmware PCRs that were never extended (tests on a bare TPM).
    pub allow_zero_pcrs: bool,
    /// The primary volume of the boot that opens this one, when it is
    /// another ([`bootset`]).
    pub root_volume: Option<bootset::Primary>,
    /// The crypttab of the image, checked against `root_volume`.
    pub crypttab: PathBuf,
}

pub struct EnrollOutcome {
    pub added: Added,
    pub recovery: Option<(RecoveryKey, u32)>,
}

pub fn run(args: &EnrollArgs) -> Result<EnrollOutcome> {
    bootset::note_boot_inputs(&args.pcrs, args.authorize.is_some());
    let mut vol = Volume::open_with(&args.device, &OpenOpts::header(args.header.clone()))?;
    if let Some((hash, iterations)) = &vol.header().segment_digest {
        note_stretched_digest(hash, *iterations);
    }
    // Fail before touching the TPM if the unlock key is wrong; the new
    // keyslots hold the volume key it yields.
    let (_, key) = vol.volume_key(None, args.unlock_key.as_bytes())?;
    // ...and if the header is full, for the sealed and the recovery keyslot.
    vol.ensure_room(1 + usize::from(args.recovery), key.as_bytes().len())?;
    let uuid = vol.uuid()?;
    bootset::check_crypttab(
        &args.crypttab,
        &args.cmdline,
        &args.device,
        &uuid,
        args.root_volume.as_ref().map(|p| p.uuid.as_str()),
    );
    let mut tpm = args.tpm.open()?;
    let spec = SealSpec {
        pcrs: &args.pcrs,
        measurements: bootset::measurements(&args.cmdline, &uuid, args.root_volume.as_ref()),
        pin: args.pin.as_ref(),
        platform: args.platform.as_ref(),
        tdx: args.tdx.as_ref(),
        authorize: args.authorize.as_ref(),
        events: expected_events(&mut tpm, args.eventlog.as_deref()),
        allow_zero_pcrs: args.allow_zero_pcrs,
        key_origin: crate::formats::key_origin::KeyOrigin::Image,
        rekey_epoch: None,
    };
    let added = add_sealed(&mut vol, &mut tpm, &spec, &key, args.blob_file.as_deref())?;
    let recovery = if args.recovery {
        Some(add_recovery(&mut vol, &key)?)
    } else {
        None
    };
    Ok(EnrollOutcome { added, recovery })
}

/// Digest iterations above which `enroll` says what the digest costs.
/// sealroot's own volumes have 1000 (the minimum).
const DIGEST_NOTE_ITERATIONS: u64 = 10_000;

/// A volume formatted with cryptsetup's defaults has a LUKS2 digest of
/// ~100,000 PBKDF2 iterations (cryptsetup benchmarks it), which every
/// unlock pays once more after the keyslot: say so, with the cost measured
/// here (one HMAC per iteration; an estimate, within a few percent of
/// libcryptsetup's own PBKDF2).
fn note_stretched_digest(hash: &str, iterations: u64) {
    if iterations <= DIGEST_NOTE_ITERATIONS {
        return;
    }
    let cost = if hash == "sha256" {
        format!(
            ", about {:.0} ms at every unlock on this machine",
            pbkdf2_sha256_ms(iterations)
        )
    } else {
        String::new()
    };
    warn!(
        "the volume key's LUKS2 digest takes {iterations} PBKDF2-{hash} iterations{cost}; a random 512-bit volume key gains nothing from it. To lower it, re-encrypt before enrolling (in the guest: cryptsetup reencrypt --pbkdf argon2id --pbkdf-force-iterations 4 --pbkdf-memory 1048576, which writes a digest of 1000 and keeps passphrase keyslots on argon2id), then enroll again; docs/performance.md"
    );
}

/// Milliseconds for `iterations` HMAC-SHA256 computations of one block
/// (a PBKDF2-SHA256 with a 32-byte output), timed over a sample.
fn pbkdf2_sha256_ms(iterations: u64) -> f64 {
    use hmac::{Hmac, Mac};
    const SAMPLE: u32 = 20_000;
    let start = std::time::Instant::now();
    // Keyed once, as PBKDF2 implementations do: two compressions per
    // iteration.
    let keyed = <Hmac<sha2::Sha256> as Mac>::new_from_slice(b"sealroot digest cost")
        .expect("HMAC takes any key length");
    let mut u = [0u8; 32];
    for _ in 0..SAMPLE {
        let mut mac = keyed.clone();
        mac.update(&u);
        u = mac.finalize().into_bytes().into();
    }
    std::hint::black_box(u);
    start.elapsed().as_secs_f64() * 1000.0 * iterations as f64 / f64::from(SAMPLE)
}
