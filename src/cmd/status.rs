//! `sealroot status`: each sealroot token, its PCRs expected vs current, and
//! a verdict. The self PCR is judged by prediction, not by its raw value: in
//! a booted system it holds the *locked* value by design.

use super::steps::blobs::{check_blob_policy, load_blobs};
use super::steps::eventlog::annotate;
use super::steps::signed::{self, Found, PolicySearch};
use super::steps::systemd;
use super::steps::TpmOpts;
use crate::disk::luks::{OpenOpts, Volume};
use crate::formats::blob::Blob;
use crate::formats::key_origin::KeyOrigin;
use crate::pcr::explain::ExpectedEvent;
use crate::pcr::selfpcr::{self, Measurements};
use crate::pcr::signer::PublicKey;
use crate::pcr::{self, Digest};
use crate::tpm::Tpm;
use crate::Result;
use serde::Serialize;
use std::path::PathBuf;

/// Stable JSON shape (documented in docs/format.md).
#[derive(Debug, Serialize)]
pub struct Report {
    pub device: String,
    pub volume_uuid: String,
    pub active_keyslots: Vec<u32>,
    pub tokens: Vec<TokenReport>,
    /// The volume's `systemd-tpm2` tokens, read without unsealing.
    pub systemd_tokens: Vec<SystemdTokenReport>,
    /// Where the volume key comes from, as the sealroot tokens of active
    /// keyslots record it (bound into their envelopes): `image`,
    /// `vm-formatted` (a state volume this VM formatted) or `vm-rekeyed`
    /// (re-keying finished). Any such token without the field: `image`.
    pub key_origin: String,
    /// Whether the volume key is this VM's alone (not the image's).
    pub private_to_vm: bool,
    /// First-boot re-keying: `{state, percent}` (`pending`: the new key's
    /// keyslot is there, re-encryption not started; `in-progress`; `done`).
    pub rekey: Option<RekeyReport>,
}

/// How far first-boot re-keying has got (from the LUKS2 header).
#[derive(Debug, Serialize)]
pub struct RekeyReport {
    pub state: String,
    pub percent: u32,
}

/// A `systemd-tpm2` token (systemd 252's systemd-cryptenroll), as read
/// from the header: nothing is unsealed, and 252 tokens record no PCR
/// values, so whether this boot's PCRs meet the policy is not known here.
#[derive(Debug, Serialize)]
pub struct SystemdTokenReport {
    pub token: u32,
    /// "valid" (parses, keyslot active), "dangling" (keyslot missing; the
    /// header allow-list normally refuses such a volume first) or
    /// "invalid" (see `problems`).
    pub verdict: String,
    pub keyslot: Option<u32>,
    /// PCRs of the literal policy (values as at enrollment).
    pub pcrs: Vec<u32>,
    /// PCRs of the signed policy (`--tpm2-public-key-pcrs`); empty: none.
    pub signed_pcrs: Vec<u32>,
    pub pin: bool,
    /// Whether PCR 15 is in the policy, so that sealroot's lock closes it
    /// for the rest of the boot.
    pub covers_pcr15: bool,
    pub problems: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct TokenReport {
    /// LUKS2 token id; null for a blob file.
    pub token: Option<u32>,
    pub origin: String,
    /// "ok", "mismatch", "dangling", "invalid" or "foreign-tpm" (sealed
    /// under another TPM's storage key).
    pub verdict: String,
    pub keyslot: Option<u32>,
    pub keyslot_active: bool,
    pub bank: String,
    pub pin: bool,
    /// Token format version: 1 does not bind the volume key (`reseal`
    /// upgrades it).
    pub version: u32,
    /// PCR 15 after this token opens the volume (its lock event extended
    /// onto the unseal-time value): what a verifier expects after boot.
    /// Version 2 tokens only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opened_pcr15: Option<String>,
    pub pcrs: Vec<PcrReport>,
    pub problems: Vec<String>,
    /// Signed-policy volumes: the signed policy that matches (origin and
    /// version), whose PCRs `pcrs` then shows; null when none does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_policy: Option<String>,
    #[serde(skip)]
    signed_events: Vec<ExpectedEvent>,
}

#[derive(Debug, Serialize)]
pub struct PcrReport {
    pub index: u32,
    pub expected: String,
    pub current: String,
    /// "match", "differs", "opened" (self PCR locked after this token
    /// opened the volume in this boot), "locked" (after a failed unlock) or
    /// "predicted" (self PCR: this system's command line and configuration
    /// produce the expected value at the next boot).
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

pub struct StatusArgs {
    pub device: PathBuf,
    /// A detached header (the device then holds only the data).
    pub header: Option<PathBuf>,
    pub blob_file: Option<PathBuf>,
    pub cmdline: String,
    pub tpm: TpmOpts,
    pub policies: PolicySearch,
    pub eventlog: Option<PathBuf>,
}

pub fn run(args: &StatusArgs) -> Result<Report> {
    if let Some(st) = crate::disk::reencrypt::in_progress(&args.device, args.header.as_deref())? {
        return Ok(Report {
            device: args.device.display().to_string(),
            volume_uuid: st.uuid.clone(),
            active_keyslots: vec![],
            tokens: vec![],
            systemd_tokens: vec![],
            key_origin: KeyOrigin::Image.as_str().into(),
            private_to_vm: false,
            rekey: Some(RekeyReport {
                state: "in-progress".into(),
                percent: st.percent(),
            }),
        });
    }
    let mut vol = Volume::open_with(&args.device, &OpenOpts::header(args.header.clone()))?;
    let uuid = vol.uuid()?;
    let sources = load_blobs(&mut vol, args.blob_file.as_deref())?;
    let (signed_found, wanted) = signed::for_sources(&mut vol, &sources, &args.policies)?;
    let mut tpm = None;
    let current = if wanted.is_empty() {
        vec![]
    } else {
        let t = tpm.insert(args.tpm.open()?);
        t.pcr_read(&wanted)?
    };
    // This TPM's SRK, to tell a token sealed under another TPM's apart.
    let here = tpm
        .as_mut()
        .map(|t| t.srk(false).map(|s| s.name).map_err(|e| e.to_string()));
    let now = Measurements::new(&args.cmdline, &uuid);
    let tokens = sources
        .iter()
        .map(|s| match &s.blob {
            Err(e) => TokenReport {
                token: s.token,
                origin: s.origin.clone(),
                verdict: "invalid".into(),
                keyslot: None,
                keyslot_active: false,
                bank: String::new(),
                pin: false,
                version: 0,
                opened_pcr15: None,
                pcrs: vec![],
                problems: vec![e.to_string()],
                signed_policy: None,
                signed_events: vec![],
            },
            Ok(b) => {
                let mut r = token_report(
                    s.token, &s.origin, b, &mut vol, &uuid, &now, &wanted, &current,
                );
                if let Some(key) = &b.authorize {
                    signed_report(&mut r, key, &signed_found, &wanted, &current, &mut tpm);
                }
                foreign_srk(&mut r, b, here.as_ref());
                explain(&mut r, b, args.eventlog.as_deref());
                r
            }
        })
        .collect();
    let blobs: Vec<&Blob> = sources
        .iter()
        .filter_map(|s| s.blob.as_ref().ok())
        .collect();
    let (active, inactive): (Vec<&Blob>, Vec<&Blob>) = blobs
        .into_iter()
        .partition(|b| vol.keyslot_active(b.keyslot));
    let claims: Vec<KeyOrigin> = active.iter().map(|b| b.key_origin).collect();
    let origin = KeyOrigin::of_volume(&claims);
    let rekey = if origin == KeyOrigin::VmRekeyed {
        Some(("done", 100))
    } else if inactive
        .iter()
        .any(|b| b.key_origin == KeyOrigin::VmRekeyed)
    {
        Some(("pending", 0))
    } else {
        None
    };
    Ok(Report {
        key_origin: origin.as_str().into(),
        private_to_vm: origin.private_to_vm(),
        device: args.device.display().to_string(),
        volume_uuid: uuid,
        active_keyslots: vol.active_keyslots(),
        tokens,
        systemd_tokens: systemd_reports(&mut vol)?,
        rekey: rekey.map(|(state, percent)| RekeyReport {
            state: state.into(),
            percent,
        }),
    })
}

/// The `systemd-tpm2` tokens, parsed, their keyslots looked up.
fn systemd_reports(vol: &mut Volume) -> Result<Vec<SystemdTokenReport>> {
    Ok(systemd::tokens(vol)?
        .into_iter()
        .map(|f| match f.token {
            Err(e) => SystemdTokenReport {
                token: f.id,
                verdict: "invalid".into(),
                keyslot: None,
                pcrs: vec![],
                signed_pcrs: vec![],
                pin: false,
                covers_pcr15: false,
                problems: vec![e],
            },
            Ok(t) => {
                let active = vol.keyslot_active(t.keyslot);
                let mut problems = vec![];
                if !active {
                    problems.push(format!("keyslot {} does not exist", t.keyslot));
                }
                let covers_pcr15 = t.covers(crate::pcr::SELF_PCR);
                if !covers_pcr15 {
                    problems.push(
                        "the policy does not cover PCR 15: sealroot's lock does not close it after boot (docs/systemd.md)"
                            .into(),
                    );
                }
                SystemdTokenReport {
                    token: f.id,
                    verdict: if active { "valid" } else { "dangling" }.into(),
                    keyslot: Some(t.keyslot),
                    pcrs: t.pcrs,
                    signed_pcrs: t.pubkey_pcrs,
                    pin: t.pin,
                    covers_pcr15,
                    problems,
                }
            }
        })
        .collect())
}

#[allow(clippy::too_many_arguments)]
fn token_report(
    token: Option<u32>,
    origin: &str,
    b: &Blob,
    vol: &mut Volume,
    uuid: &str,
    now: &Measurements,
    wanted: &[u32],
    current: &[Digest],
) -> TokenReport {
    let mut problems = Vec::new();
    let active = vol.keyslot_active(b.keyslot);
    if !active {
        problems.push(format!(
            "keyslot {} does not exist (interrupted enroll or removed keyslot); `sealroot cleanup` removes this token",
            b.keyslot
        ));
    }
    if !b.volume_uuid.eq_ignore_ascii_case(uuid) {
        problems.push(format!("belongs to volume {}, not {uuid}", b.volume_uuid));
    }
    if let Err(e) = check_blob_policy(b, origin) {
        problems.push(e.to_string());
    }
    let mut mismatch = false;
    let pcrs = b
        .pcrs
        .iter()
        .zip(&b.values)
        .map(|(&index, expected)| {
            let cur = current[wanted.iter().position(|&w| w == index).expect("read")];
            let (state, why) = if cur == *expected {
                ("match", None)
            } else if index == pcr::SELF_PCR && Some(cur) == opened_pcr15(b) {
                ("opened", None)
            } else if index == pcr::SELF_PCR && cur == selfpcr::locked(expected) {
                ("locked", None)
            } else if index == pcr::SELF_PCR && b.self_measurements == *now {
                ("predicted", None)
            } else if index == pcr::SELF_PCR
                && b.self_measurements.primary.is_some()
                && b.self_measurements.cmdline == now.cmdline
            {
                (
                    "after-primary",
                    Some("opens in `sealroot boot` after its boot's primary volume (docs/design.md#several-volumes-in-one-boot)".to_string()),
                )
            } else if index == pcr::SELF_PCR {
                (
                    "differs",
                    Some(selfpcr::explain(
                        &b.self_measurements,
                        now,
                        &cur,
                        b.fingerprint.as_ref(),
                    )),
                )
            } else {
                ("differs", None)
            };
            if state == "differs" {
                mismatch = true;
            }
            PcrReport {
                index,
                expected: hex::encode(expected),
                current: hex::encode(cur),
                state: state.into(),
                why,
            }
        })
        .collect();
    let verdict = if !problems.is_empty() {
        if active {
            "invalid"
        } else {
            "dangling"
        }
    } else if mismatch {
        "mismatch"
    } else {
        "ok"
    };
    TokenReport {
        token,
        origin: origin.into(),
        verdict: verdict.into(),
        keyslot: Some(b.keyslot),
        keyslot_active: active,
        bank: pcr::BANK_SHA256.into(),
        pin: b.pin,
        version: b.version(),
        opened_pcr15: opened_pcr15(b).map(hex::encode),
        pcrs,
        problems,
        signed_policy: None,
        signed_events: vec![],
    }
}

/// A token sealed under another TPM's storage key (its `srk_name` is not
/// this TPM's SRK's, or this TPM has none): no PCR state opens it here, so
/// its verdict is `foreign-tpm`, whatever the PCRs say.
fn foreign_srk(r: &mut TokenReport, b: &Blob, here: Option<&std::result::Result<Vec<u8>, String>>) {
    let why = match here {
        None => return,
        Some(Ok(name)) if *name == b.srk_name => return,
        Some(Ok(name)) => format!(
            "sealed under another TPM's storage key (the token's SRK name {}, this TPM's {}): this TPM cannot unseal it; enroll the volume on this machine (or unlock it with its recovery key)",
            hex::encode(&b.srk_name),
            hex::encode(name)
        ),
        Some(Err(e)) => format!("sealed under another TPM's storage key: {e}"),
    };
    r.problems.push(why);
    r.verdict = "foreign-tpm".into();
}

/// PCR 15 after `b` opened its volume: the unseal-time value extended with
/// the opened-volume lock event.
fn opened_pcr15(b: &Blob) -> Option<Digest> {
    let fp = b.fingerprint?;
    let expected = b.expected(pcr::SELF_PCR)?;
    Some(pcr::extend(expected, &selfpcr::opened_digest(&fp)))
}

/// A signed-policy token: judge the signed policies as `unlock` would and
/// show the chosen (or closest) one's PCRs after the self PCR.
fn signed_report(
    r: &mut TokenReport,
    key: &PublicKey,
    found: &[Found],
    wanted: &[u32],
    current: &[Digest],
    tpm: &mut Option<Tpm>,
) {
    let (verified, rejected) = signed::verified(found, key);
    r.problems
        .extend(rejected.iter().map(|(origin, e)| format!("{origin}: {e}")));
    let value_of = |i: u32| current[wanted.iter().position(|&w| w == i).expect("read")];
    let mut counter = || match tpm.as_mut() {
        Some(t) => t.read_counter(),
        None => Err(crate::Error::Internal("no TPM".into())),
    };
    let shown = match signed::choose(&verified, &value_of, &mut counter, None) {
        Ok((origin, p)) => {
            r.signed_policy = Some(format!("{origin}, version {}", p.version));
            Some(p)
        }
        Err(e) => {
            r.problems
                .push(e.to_string().lines().next().unwrap_or("").to_string());
            if r.verdict == "ok" {
                r.verdict = "mismatch".into();
            }
            signed::closest(&verified, &value_of).map(|(_, p)| p)
        }
    };
    if let Some(p) = shown {
        for (&index, expected) in p.pcrs.iter().zip(&p.values) {
            let cur = value_of(index);
            r.pcrs.push(PcrReport {
                index,
                expected: hex::encode(expected),
                current: hex::encode(cur),
                state: if cur == *expected { "match" } else { "differs" }.into(),
                why: None,
            });
        }
        r.pcrs.sort_by_key(|p| p.index);
        r.signed_events = p.events.clone();
    }
}

/// Event-log reasons for every differing PCR without one.
fn explain(r: &mut TokenReport, b: &Blob, eventlog: Option<&std::path::Path>) {
    let differing: Vec<usize> = (0..r.pcrs.len())
        .filter(|&i| r.pcrs[i].state == "differs" && r.pcrs[i].why.is_none())
        .collect();
    if differing.is_empty() {
        return;
    }
    let parse = |h: &str| -> Digest {
        hex::decode(h)
            .ok()
            .and_then(|v| v.try_into().ok())
            .unwrap_or([0; 32])
    };
    let mut diffs: Vec<pcr::PcrDiff> = differing
        .iter()
        .map(|&i| pcr::PcrDiff {
            index: r.pcrs[i].index,
            expected: parse(&r.pcrs[i].expected),
            current: parse(&r.pcrs[i].current),
            why: None,
        })
        .collect();
    let expected = if b.authorize.is_some() {
        std::mem::take(&mut r.signed_events)
    } else {
        b.events.clone()
    };
    annotate(&mut diffs, &expected, eventlog);
    for (&i, d) in differing.iter().zip(diffs) {
        r.pcrs[i].why = d.why;
    }
}

/// Human-readable rendering.
pub fn render(r: &Report) -> String {
    let mut s = format!(
        "{} (LUKS2 {}), active keyslots: {}\n",
        r.device,
        r.volume_uuid,
        join(&r.active_keyslots)
    );
    s.push_str(&match &r.rekey {
        Some(k) if k.state != "done" => format!(
            "volume key: still the image's (shared by its clones); re-keying {}, {}% done\n",
            k.state, k.percent
        ),
        _ if r.private_to_vm => format!(
            "volume key: {} (private to this VM, as its token says: read without unsealing, authenticated by unlock)\n",
            r.key_origin
        ),
        _ => format!(
            "volume key: {} (the image's: every clone of the image has it)\n",
            r.key_origin
        ),
    });
    if r.tokens.is_empty() {
        s.push_str("no sealroot tokens\n");
    }
    for t in &r.systemd_tokens {
        s.push_str(&format!(
            "systemd-tpm2 token {}: {}{}, PCRs {}{}{}\n",
            t.token,
            t.verdict,
            t.keyslot
                .map(|k| format!(", keyslot {k}"))
                .unwrap_or_default(),
            if t.pcrs.is_empty() {
                "none".to_string()
            } else {
                join(&t.pcrs)
            },
            if t.signed_pcrs.is_empty() {
                String::new()
            } else {
                format!(", signed PCRs {}", join(&t.signed_pcrs))
            },
            if t.pin { ", PIN required" } else { "" }
        ));
        for p in &t.problems {
            s.push_str(&format!("  problem: {p}\n"));
        }
    }
    for t in &r.tokens {
        s.push_str(&format!(
            "{}: {}{}{}\n",
            t.origin,
            t.verdict,
            t.keyslot
                .map(|k| format!(", keyslot {k}"))
                .unwrap_or_default(),
            if t.pin { ", PIN required" } else { "" }
        ));
        for p in &t.pcrs {
            s.push_str(&format!(
                "  PCR {:>2} {:<9} expected {} current {}\n",
                p.index, p.state, p.expected, p.current
            ));
            if let Some(w) = &p.why {
                s.push_str(&format!("         why: {w}\n"));
            }
        }
        if let Some(p) = &t.signed_policy {
            s.push_str(&format!("  signed policy: {p}\n"));
        }
        if t.version == 1 {
            s.push_str("  note: version-1 token: the volume key is not bound; `sealroot reseal` upgrades it\n");
        }
        if let Some(v) = &t.opened_pcr15 {
            s.push_str(&format!(
                "  PCR 15 after this token opens the volume: {v}\n"
            ));
        }
        for p in &t.problems {
            s.push_str(&format!("  problem: {p}\n"));
        }
    }
    s
}

fn join(v: &[u32]) -> String {
    v.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(",")
}
