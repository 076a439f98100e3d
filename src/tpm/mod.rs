//! The TPM edge: the only code that names tss-esapi or tss2-esys.
//!
//! Connect (with a bounded wait), PCR read/extend, RNG; the pinned SRK
//! ([`srk`]); seal over a salted, parameter-encrypted session ([`seal`]);
//! the unseal, PCR policy or signed policy, over raw ESYS ([`esys`]: what
//! tss-esapi cannot express, PolicyNV and handles made from known public
//! areas); the revocation counter ([`counter`]); vTPM NV reads for
//! platform evidence ([`nv`]). Every command that carries a secret (Create
//! with the KEK and PIN, Unseal's response) runs in a session salted to the
//! SRK with `decrypt`/`encrypt` set; the salt goes to the SRK the token
//! pins (its public area, or its name checked first).

pub mod counter;
pub mod esys;
pub mod nv;
pub mod object;
pub mod seal;
pub mod srk;
pub mod systemd;

use crate::pcr::signer::PublicKey;
use crate::pcr::Digest;
use crate::{Error, Result};
use log::debug;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, Instant};
use tss_esapi::constants::response_code::Tss2ResponseCodeKind;
use tss_esapi::constants::SessionType;
use tss_esapi::handles::PcrHandle;
use tss_esapi::interface_types::algorithm::HashingAlgorithm;
use tss_esapi::interface_types::resource_handles::Hierarchy;
use tss_esapi::interface_types::session_handles::{AuthSession, PolicySession};
use tss_esapi::structures::{
    Digest as TpmDigest, DigestValues, PcrSelectionListBuilder, PcrSlot, Public,
    SymmetricDefinition,
};
use tss_esapi::tcti_ldr::{DeviceConfig, NetworkTPMConfig, TctiNameConf};
use tss_esapi::traits::UnMarshall;
use tss_esapi::Context;
use zeroize::Zeroizing;

/// Default TCTI when neither `--tcti` nor `TPM2TOOLS_TCTI` is set.
pub const DEFAULT_TCTI: &str = "device:/dev/tpmrm0";

/// Whether `spec` reaches the TPM through a resource manager that flushes
/// a connection's transient objects and sessions when it closes (the
/// kernel's `/dev/tpmrm*`, or `tpm2-abrmd`): then sealroot sends no
/// FlushContext of its own.
pub fn resource_managed(spec: &str) -> bool {
    shared_access(spec) || crate::testhooks::assume_resource_manager()
}

/// Whether several connections to `spec` may be open at once (a resource
/// manager gives each its own space).
fn shared_access(spec: &str) -> bool {
    spec.starts_with("device:/dev/tpmrm") || spec.starts_with("tabrmd")
}

/// `--tcti`, else `TPM2TOOLS_TCTI`, else the kernel resource manager.
pub fn tcti_spec(cli: Option<&str>) -> String {
    if let Some(s) = cli {
        return s.to_string();
    }
    match std::env::var("TPM2TOOLS_TCTI") {
        Ok(s) if !s.is_empty() => s,
        _ => DEFAULT_TCTI.to_string(),
    }
}

/// The device node of a `device` TCTI specification (`device:PATH`, or
/// `device` alone for `/dev/tpm0`), `None` for other TCTIs. tss-esapi keeps
/// its parse private; this mirrors it.
pub fn tcti_device_node(spec: &str) -> Option<PathBuf> {
    spec.strip_prefix("device").map(|rest| {
        PathBuf::from(match rest.strip_prefix(':') {
            Some(p) if !p.is_empty() => p,
            _ => "/dev/tpm0",
        })
    })
}

/// An open TPM connection.
pub struct Tpm {
    /// The ESYS context; `None` only while [`Tpm::released`] runs.
    conn: Option<Context>,
    tcti: String,
    /// `tcti` parsed, to reconnect after [`Tpm::released`].
    conf: TctiNameConf,
}

/// Parse a TCTI specification. The `device` and network forms are split
/// here, so that the boot path (`device:/dev/tpmrm0`) compiles none of the
/// regular expressions tss-esapi's own parser builds on every call (about
/// a millisecond of start-up); other forms go to that parser.
fn tcti_conf(spec: &str) -> Result<TctiNameConf> {
    let bad = || Error::Usage(format!("bad TCTI specification {spec:?}"));
    let (name, conf) = spec.split_once(':').unwrap_or((spec, ""));
    match name {
        "device" => DeviceConfig::from_str(conf).map(TctiNameConf::Device),
        "swtpm" => NetworkTPMConfig::from_str(conf).map(TctiNameConf::Swtpm),
        "mssim" => NetworkTPMConfig::from_str(conf).map(TctiNameConf::Mssim),
        _ => TctiNameConf::from_str(spec),
    }
    .map_err(|_| bad())
}

pub(crate) fn tpm_err(command: &'static str) -> impl Fn(tss_esapi::Error) -> Error {
    move |e| classify(command, e)
}

/// Map a TSS error to sealroot's classes.
pub(crate) fn classify(command: &'static str, e: tss_esapi::Error) -> Error {
    if let tss_esapi::Error::Tss2Error(rc) = e {
        match rc.kind() {
            Some(Tss2ResponseCodeKind::AuthFail) | Some(Tss2ResponseCodeKind::BadAuth) => {
                return Error::PinOrLockout(format!(
                    "{command}: wrong PIN (TPM authorization failed; the dictionary-attack counter was incremented)"
                ))
            }
            Some(Tss2ResponseCodeKind::Lockout) => {
                return Error::PinOrLockout(format!(
                    "{command}: the TPM is in dictionary-attack lockout; wait for the lockout to expire or use the recovery key"
                ))
            }
            _ => {}
        }
    }
    Error::Tpm {
        command,
        detail: e.to_string(),
    }
}

pub(crate) fn is_handle_error(e: &tss_esapi::Error) -> bool {
    matches!(e, tss_esapi::Error::Tss2Error(rc)
        if matches!(rc.kind(), Some(Tss2ResponseCodeKind::Handle) | Some(Tss2ResponseCodeKind::Value)))
}

pub(crate) fn pcr_slot(i: u32) -> PcrSlot {
    PcrSlot::try_from(1u32 << i).expect("PCR index validated to 0..=23")
}

fn pcr_handle(i: u32) -> PcrHandle {
    PcrHandle::try_from(i).expect("PCR index validated to 0..=23")
}

impl Tpm {
    /// Connect, waiting up to `timeout` for the device to appear or the
    /// simulator to accept connections.
    pub fn open(spec: &str, timeout: Duration) -> Result<Tpm> {
        let conf = tcti_conf(spec)?;
        let device = tcti_device_node(spec);
        let deadline = Instant::now() + timeout;
        let mut last;
        loop {
            last = match &device {
                Some(path) if !path.exists() => format!("{} does not exist", path.display()),
                _ => match Context::new(conf.clone()) {
                    Ok(ctx) => {
                        debug!("connected to TPM via {spec}");
                        return Ok(Tpm {
                            conn: Some(ctx),
                            tcti: spec.to_string(),
                            conf,
                        });
                    }
                    Err(e) => e.to_string(),
                },
            };
            if Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(Error::NoTpm {
            tcti: spec.to_string(),
            reason: format!("not reachable within {} s: {last}", timeout.as_secs_f32()),
        })
    }

    pub fn tcti(&self) -> &str {
        &self.tcti
    }

    /// Whether the connection is open: false only after [`Tpm::released`]
    /// could not reconnect; the caller must then open a new `Tpm`.
    pub fn connected(&self) -> bool {
        self.conn.is_some()
    }

    /// The ESYS context.
    pub(crate) fn ctx(&mut self) -> &mut Context {
        self.conn.as_mut().expect("TPM connection is open")
    }

    /// Run `f`, which opens its own connection to this TPM (the raw ESYS
    /// session in [`crate::tpm::esys`]). A resource manager (`/dev/tpmrm*`,
    /// `tabrmd`) gives every connection its own space, so this one stays;
    /// an exclusive one (a simulator, `/dev/tpm0`) is closed for the time
    /// of `f` and reopened after it, retrying for a few seconds.
    ///
    /// If it cannot be reopened the result of `f` is dropped (a key is wiped
    /// on drop) and `NoTpm` returned: the caller must then stop using this
    /// TPM (`unlock` does), as it has no connection.
    pub fn released<T>(&mut self, f: impl FnOnce(&str) -> Result<T>) -> Result<T> {
        if shared_access(&self.tcti) {
            return f(&self.tcti);
        }
        self.conn = None;
        let r = f(&self.tcti);
        let conf = self.conf.clone();
        if crate::testhooks::fail_reconnect() {
            return Err(Error::NoTpm {
                tcti: self.tcti.clone(),
                reason: "reconnecting after the unseal's own connection: refused (test hook)"
                    .into(),
            });
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match Context::new(conf.clone()) {
                Ok(c) => {
                    self.conn = Some(c);
                    return r;
                }
                Err(e) if Instant::now() >= deadline => {
                    return Err(Error::NoTpm {
                        tcti: self.tcti.clone(),
                        reason: format!("reconnecting after the unseal's own connection: {e}"),
                    });
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// Read SHA-256 PCR values, in the order of `pcrs` (ascending).
    pub fn pcr_read(&mut self, pcrs: &[u32]) -> Result<Vec<Digest>> {
        let mut out: Vec<Option<Digest>> = vec![None; pcrs.len()];
        // A TPM returns at most 8 digests per PCR_Read; ask again for the rest.
        for _ in 0..4 {
            let missing: Vec<u32> = pcrs
                .iter()
                .zip(&out)
                .filter(|(_, v)| v.is_none())
                .map(|(&p, _)| p)
                .collect();
            if missing.is_empty() {
                break;
            }
            let slots: Vec<PcrSlot> = missing.iter().map(|&p| pcr_slot(p)).collect();
            let sel = PcrSelectionListBuilder::new()
                .with_selection(HashingAlgorithm::Sha256, &slots)
                .build()
                .map_err(tpm_err("PCR_Read"))?;
            let (_, read, digests) = self
                .ctx()
                .execute_without_session(|c| c.pcr_read(sel))
                .map_err(tpm_err("PCR_Read"))?;
            let mut it = digests.value().iter();
            for s in read.get_selections() {
                for slot in s.selected() {
                    let idx = (u32::from(slot)).trailing_zeros();
                    let d = it.next().ok_or_else(|| Error::Tpm {
                        command: "PCR_Read",
                        detail: "fewer digests than selected PCRs".into(),
                    })?;
                    let d: Digest = d.value().try_into().map_err(|_| Error::Tpm {
                        command: "PCR_Read",
                        detail: "digest is not 32 bytes".into(),
                    })?;
                    if let Some(pos) = pcrs.iter().position(|&p| p == idx) {
                        out[pos] = Some(d);
                    }
                }
            }
        }
        out.into_iter()
            .zip(pcrs)
            .map(|(v, p)| {
                v.ok_or_else(|| {
                    Error::PcrBank(format!(
                        "PCR {p} is not allocated in the TPM's sha256 bank (sealroot seals to sha256 PCRs; allocate the bank with tpm2_pcrallocate, or use a TPM that has it)"
                    ))
})
            })
            .collect()
    }

    /// Extend a SHA-256 digest into `pcr`.
    pub fn pcr_extend(&mut self, pcr: u32, digest: &Digest) -> Result<()> {
        let mut vals = DigestValues::new();
        vals.set(
            HashingAlgorithm::Sha256,
            TpmDigest::try_from(digest.to_vec()).expect("32 bytes"),
        );
        self.ctx()
            .execute_with_session(Some(AuthSession::Password), |c| {
                c.pcr_extend(pcr_handle(pcr), vals)
            })
            .map_err(tpm_err("PCR_Extend"))
    }

    /// 32 bytes from the TPM's RNG.
    pub fn random32(&mut self) -> Result<Zeroizing<Vec<u8>>> {
        let d = self
            .ctx()
            .execute_without_session(|c| c.get_random(32))
            .map_err(tpm_err("GetRandom"))?;
        Ok(Zeroizing::new(d.value().to_vec()))
    }

    /// The TPM name LoadExternal gives `key` (tests compare it with
    /// [`PublicKey::name`]).
    pub fn external_key_name(&mut self, key: &PublicKey) -> Result<Vec<u8>> {
        let public = Public::unmarshall(&key.tpmt_public()).map_err(tpm_err("LoadExternal"))?;
        let handle = self
            .ctx()
            .execute_without_session(|c| c.load_external_public(public, Hierarchy::Owner))
            .map_err(tpm_err("LoadExternal"))?;
        let name = self
            .ctx()
            .tr_get_name(handle.into())
            .map(|n| n.value().to_vec());
        let _ = self.ctx().flush_context(handle.into());
        name.map_err(tpm_err("TR_GetName"))
    }

    pub(crate) fn flush_session(&mut self, s: AuthSession) {
        let h = tss_esapi::handles::SessionHandle::from(s);
        let _ = self.ctx().flush_context(h.into());
    }

    /// Compute the policy digest for `pcrs` with a trial session (tests use
    /// this to check the pure computation in [`crate::pcr::policy`]).
    pub fn trial_policy(&mut self, pcrs: &[u32], values: &[Digest], pin: bool) -> Result<Digest> {
        let s = self
            .ctx()
            .execute_without_session(|c| {
                c.start_auth_session(
                    None,
                    None,
                    None,
                    SessionType::Trial,
                    SymmetricDefinition::AES_128_CFB,
                    HashingAlgorithm::Sha256,
                )
            })
            .map_err(tpm_err("StartAuthSession"))?
            .ok_or_else(|| Error::Internal("no session".into()))?;
        let ps = PolicySession::try_from(s).map_err(tpm_err("PolicyPCR"))?;
        let slots: Vec<PcrSlot> = pcrs.iter().map(|&p| pcr_slot(p)).collect();
        let sel = PcrSelectionListBuilder::new()
            .with_selection(HashingAlgorithm::Sha256, &slots)
            .build()
            .map_err(tpm_err("PolicyPCR"))?;
        let composite = TpmDigest::try_from(crate::pcr::composite(values).to_vec()).expect("32");
        let r = (|| {
            self.ctx()
                .execute_without_session(|c| c.policy_pcr(ps, composite, sel))
                .map_err(tpm_err("PolicyPCR"))?;
            if pin {
                self.ctx()
                    .execute_without_session(|c| c.policy_auth_value(ps))
                    .map_err(tpm_err("PolicyAuthValue"))?;
            }
            let d = self
                .ctx()
                .execute_without_session(|c| c.policy_get_digest(ps))
                .map_err(tpm_err("PolicyGetDigest"))?;
            d.value()
                .try_into()
                .map_err(|_| Error::Internal("digest size".into()))
        })();
        self.flush_session(s);
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcti_specifications_parse_as_tss_esapi_parses_them() {
        for spec in [
            "device:/dev/tpmrm0",
            "device",
            "swtpm:host=127.0.0.1,port=2321",
            "mssim:host=localhost,port=2321",
            "tabrmd",
        ] {
            assert_eq!(
                tcti_conf(spec).unwrap(),
                TctiNameConf::from_str(spec).unwrap(),
                "{spec}"
            );
        }
        for bad in ["", "tpm", "swtpm:port=x", "devices:/dev/tpm0"] {
            assert!(tcti_conf(bad).is_err(), "{bad:?} accepted");
        }
    }
}
