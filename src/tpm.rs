//! The TPM edge: connect (with a bounded wait), the pinned SRK, seal/unseal
//! over a salted parameter-encrypted session, PCR read/extend, RNG.
//!
//! Only this module talks to tss-esapi. Every command that carries a secret
//! (Create with the KEK and PIN, Unseal's response) runs in a session salted
//! to the SRK with `decrypt`/`encrypt` set, and the SRK's name is compared
//! with the pinned one before the session is started.

use crate::blob::Blob;
use crate::pcr::Digest;
use crate::secret::Key32;
use crate::signedpolicy::{self, SignedPolicy};
use crate::{Error, Result};
use log::{debug, info};
use std::str::FromStr;
use std::time::{Duration, Instant};
use tss_esapi::attributes::NvIndexAttributesBuilder;
use tss_esapi::attributes::{ObjectAttributesBuilder, SessionAttributesBuilder};
use tss_esapi::constants::response_code::{Tss2ResponseCode, Tss2ResponseCodeKind};
use tss_esapi::constants::NvIndexType;
use tss_esapi::constants::SessionType;
use tss_esapi::handles::{
    KeyHandle, NvIndexHandle, NvIndexTpmHandle, ObjectHandle, PcrHandle, PersistentTpmHandle,
    TpmHandle,
};
use tss_esapi::interface_types::algorithm::{HashingAlgorithm, PublicAlgorithm};
use tss_esapi::interface_types::dynamic_handles::Persistent;
use tss_esapi::interface_types::ecc::EccCurve;
use tss_esapi::interface_types::resource_handles::NvAuth;
use tss_esapi::interface_types::resource_handles::{Hierarchy, Provision};
use tss_esapi::interface_types::session_handles::{AuthSession, PolicySession};
use tss_esapi::structures::{
    Auth, Digest as TpmDigest, DigestValues, EccPoint, KeyedHashScheme, NvPublicBuilder,
    PcrSelectionListBuilder, PcrSlot, Private, Public, PublicBuilder, PublicEccParametersBuilder,
    PublicKeyedHashParameters, SensitiveData, SymmetricDefinition, SymmetricDefinitionObject,
};
use tss_esapi::tcti_ldr::TctiNameConf;
use tss_esapi::traits::{Marshall, UnMarshall};
use tss_esapi::Context;
use zeroize::Zeroizing;

/// Persistent handle of the storage root key (TCG provisioning guidance).
pub const SRK_HANDLE: u32 = 0x8100_0001;
/// Default TCTI when neither `--tcti` nor `TPM2TOOLS_TCTI` is set.
pub const DEFAULT_TCTI: &str = "device:/dev/tpmrm0";

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

/// An open TPM connection.
pub struct Tpm {
    /// The ESYS context; `None` only while [`Tpm::released`] runs.
    conn: Option<Context>,
    tcti: String,
}

/// The SRK loaded as an ESYS object, with its name.
pub struct Srk {
    handle: KeyHandle,
    pub name: Vec<u8>,
}

fn tpm_err(command: &'static str) -> impl Fn(tss_esapi::Error) -> Error {
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

fn is_handle_error(e: &tss_esapi::Error) -> bool {
    matches!(e, tss_esapi::Error::Tss2Error(rc)
        if matches!(rc.kind(), Some(Tss2ResponseCodeKind::Handle) | Some(Tss2ResponseCodeKind::Value)))
}

fn pcr_slot(i: u32) -> PcrSlot {
    PcrSlot::try_from(1u32 << i).expect("PCR index validated to 0..=23")
}

fn pcr_handle(i: u32) -> PcrHandle {
    PcrHandle::try_from(i).expect("PCR index validated to 0..=23")
}

/// No SRK at its persistent handle: a foreign or cleared TPM.
pub(crate) fn no_srk() -> Error {
    Error::TpmIdentity(format!(
        "no storage root key at 0x{SRK_HANDLE:08x}: this TPM is not the one the volume was enrolled with, or it was cleared"
    ))
}

/// The SRK found must be the one the blob pins, before anything is sent.
pub(crate) fn check_srk_name(found: &[u8], blob: &Blob) -> Result<()> {
    if found == blob.srk_name.as_slice() {
        return Ok(());
    }
    Err(Error::TpmIdentity(format!(
        "the key at 0x{SRK_HANDLE:08x} is not the SRK this volume was sealed under (name {}, pinned {}); refusing to send anything to it",
        hex::encode(found),
        hex::encode(&blob.srk_name)
    )))
}

/// The `authPolicy` of a sealed object's TPM2B_PUBLIC (which the TPM's
/// integrity check on Load protects).
pub fn sealed_auth_policy(tpm_public: &[u8]) -> Result<Digest> {
    let public = tss_esapi::structures::PublicBuffer::unmarshall(tpm_public)
        .and_then(Public::try_from)
        .map_err(|e| Error::blob("sealed object", format!("TPM2B_PUBLIC does not parse: {e}")))?;
    public
        .auth_policy()
        .value()
        .try_into()
        .map_err(|_| Error::blob("sealed object", "authPolicy is not a SHA-256 digest"))
}

/// The TCG ECC P-256 SRK template (unique left empty, as systemd does, so
/// every tool derives the same key from the owner seed).
pub fn srk_template() -> Public {
    let attrs = ObjectAttributesBuilder::new()
        .with_fixed_tpm(true)
        .with_fixed_parent(true)
        .with_sensitive_data_origin(true)
        .with_user_with_auth(true)
        .with_no_da(true)
        .with_restricted(true)
        .with_decrypt(true)
        .build()
        .expect("static attributes");
    PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::Ecc)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attrs)
        .with_ecc_parameters(
            PublicEccParametersBuilder::new_restricted_decryption_key(
                SymmetricDefinitionObject::AES_128_CFB,
                EccCurve::NistP256,
            )
            .build()
            .expect("static parameters"),
        )
        .with_ecc_unique_identifier(EccPoint::default())
        .build()
        .expect("static template")
}

impl Tpm {
    /// Connect, waiting up to `timeout` for the device to appear or the
    /// simulator to accept connections.
    pub fn open(spec: &str, timeout: Duration) -> Result<Tpm> {
        let conf = TctiNameConf::from_str(spec)
            .map_err(|_| Error::Usage(format!("bad TCTI specification {spec:?}")))?;
        // tss-esapi keeps the device path private; mirror its parsing.
        let device = spec.strip_prefix("device").map(|rest| {
            std::path::PathBuf::from(match rest.strip_prefix(':') {
                Some(p) if !p.is_empty() => p,
                _ => "/dev/tpm0",
            })
        });
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

    /// The ESYS context (crate-visible so the platform module can read NV).
    pub(crate) fn ctx(&mut self) -> &mut Context {
        self.conn.as_mut().expect("TPM connection is open")
    }

    /// Run `f`, which opens its own connection to this TPM (the raw ESYS
    /// session in [`crate::tpmraw`]). The kernel resource manager
    /// (`/dev/tpmrm*`) gives every open its own space, so this connection
    /// stays; an exclusive one (a simulator, `/dev/tpm0`) is closed for the
    /// time of `f` and reopened after it, retrying for a few seconds.
    ///
    /// If it cannot be reopened the result of `f` is dropped (a key is wiped
    /// on drop) and `NoTpm` returned: the caller must then stop using this
    /// TPM (`unlock` does), as it has no connection.
    pub fn released<T>(&mut self, f: impl FnOnce(&str) -> Result<T>) -> Result<T> {
        if self.tcti.starts_with("device:/dev/tpmrm") {
            return f(&self.tcti);
        }
        self.conn = None;
        let r = f(&self.tcti);
        let conf = TctiNameConf::from_str(&self.tcti)
            .map_err(|_| Error::Usage(format!("bad TCTI specification {:?}", self.tcti)))?;
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
                        reason: format!("reconnecting after the signed-policy session: {e}"),
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
                v.ok_or_else(|| Error::Tpm {
                    command: "PCR_Read",
                    detail: format!("PCR {p} is not allocated in the sha256 bank"),
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

    /// Load the SRK at 0x81000001. With `create`, create and persist the
    /// ECC P-256 SRK when the handle is empty (enrollment only).
    pub fn srk(&mut self, create: bool) -> Result<Srk> {
        let ph = TpmHandle::Persistent(PersistentTpmHandle::new(SRK_HANDLE).expect("valid"));
        let handle = match self
            .ctx()
            .execute_without_session(|c| c.tr_from_tpm_public(ph))
        {
            Ok(h) => h,
            Err(e) if is_handle_error(&e) && create => {
                info!("no SRK at 0x{SRK_HANDLE:08x}; creating the ECC P-256 SRK and persisting it");
                self.create_srk()?
            }
            Err(e) if is_handle_error(&e) => return Err(no_srk()),
            Err(e) => return Err(classify("ReadPublic", e)),
        };
        let name = self
            .ctx()
            .tr_get_name(handle)
            .map_err(tpm_err("TR_GetName"))?
            .value()
            .to_vec();
        Ok(Srk {
            handle: handle.into(),
            name,
        })
    }

    fn create_srk(&mut self) -> Result<ObjectHandle> {
        let primary = self
            .ctx()
            .execute_with_session(Some(AuthSession::Password), |c| {
                c.create_primary(Hierarchy::Owner, srk_template(), None, None, None, None)
            })
            .map_err(tpm_err("CreatePrimary"))?;
        let persistent =
            Persistent::Persistent(PersistentTpmHandle::new(SRK_HANDLE).expect("valid"));
        let h = self
            .ctx()
            .execute_with_session(Some(AuthSession::Password), |c| {
                c.evict_control(Provision::Owner, primary.key_handle.into(), persistent)
            })
            .map_err(tpm_err("EvictControl"))?;
        self.ctx()
            .flush_context(primary.key_handle.into())
            .map_err(tpm_err("FlushContext"))?;
        Ok(h)
    }

    /// A session salted to the SRK with parameter encryption both ways.
    fn salted_session(&mut self, srk: &Srk, kind: SessionType) -> Result<AuthSession> {
        let s = self
            .ctx()
            .execute_without_session(|c| {
                c.start_auth_session(
                    Some(srk.handle),
                    None,
                    None,
                    kind,
                    SymmetricDefinition::AES_128_CFB,
                    HashingAlgorithm::Sha256,
                )
            })
            .map_err(tpm_err("StartAuthSession"))?
            .ok_or_else(|| Error::Internal("TPM returned no session".into()))?;
        let (attrs, mask) = SessionAttributesBuilder::new()
            .with_decrypt(true)
            .with_encrypt(!crate::testhooks::no_param_encryption())
            .with_continue_session(true)
            .build();
        self.ctx()
            .tr_sess_set_attributes(s, attrs, mask)
            .map_err(tpm_err("TR_SetAttributes"))?;
        Ok(s)
    }

    /// Seal `kek` under the SRK to `policy`; with `pin_auth` the object also
    /// needs that authValue (PolicyAuthValue) and is subject to DA lockout.
    /// Returns (TPM2B_PUBLIC, TPM2B_PRIVATE).
    pub fn seal(
        &mut self,
        srk: &Srk,
        policy: &Digest,
        kek: &Key32,
        pin_auth: Option<&Key32>,
    ) -> Result<(Vec<u8>, Vec<u8>)> {
        let attrs = ObjectAttributesBuilder::new()
            .with_fixed_tpm(true)
            .with_fixed_parent(true)
            .with_no_da(pin_auth.is_none())
            .with_user_with_auth(false)
            .with_admin_with_policy(true)
            .build()
            .map_err(tpm_err("Create"))?;
        let public = PublicBuilder::new()
            .with_public_algorithm(PublicAlgorithm::KeyedHash)
            .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
            .with_object_attributes(attrs)
            .with_auth_policy(TpmDigest::try_from(policy.to_vec()).expect("32 bytes"))
            .with_keyed_hash_parameters(PublicKeyedHashParameters::new(KeyedHashScheme::Null))
            .with_keyed_hash_unique_identifier(TpmDigest::default())
            .build()
            .map_err(tpm_err("Create"))?;
        let data = SensitiveData::try_from(kek.as_bytes().to_vec()).map_err(tpm_err("Create"))?;
        let auth = pin_auth
            .map(|p| Auth::try_from(p.as_bytes().to_vec()))
            .transpose()
            .map_err(tpm_err("Create"))?;
        let session = self.salted_session(srk, SessionType::Hmac)?;
        let res = self.ctx().execute_with_session(Some(session), |c| {
            c.create(srk.handle, public, auth, Some(data), None, None)
        });
        self.flush_session(session);
        let created = res.map_err(tpm_err("Create"))?;
        let pub_buf = tss_esapi::structures::PublicBuffer::try_from(created.out_public)
            .and_then(|b| b.marshall())
            .map_err(tpm_err("Create"))?;
        let private = created.out_private.value();
        let mut priv_buf = Vec::with_capacity(private.len() + 2);
        priv_buf.extend_from_slice(&(private.len() as u16).to_be_bytes());
        priv_buf.extend_from_slice(private);
        Ok((pub_buf, priv_buf))
    }

    /// Run the policy (PolicyPCR, then PolicyAuthValue if a PIN is needed)
    /// and unseal the KEK. The SRK's name must equal the pinned one.
    /// A signed-policy blob needs `signed`: the signed policy the current
    /// PCRs satisfy (PolicyPCR, PolicySecret on the counter, PolicyAuthorize
    /// run first).
    pub fn unseal(
        &mut self,
        blob: &Blob,
        pin_auth: Option<&Key32>,
        signed: Option<&SignedPolicy>,
    ) -> Result<Key32> {
        if blob.authorize.is_some() {
            let sp = signed.ok_or_else(|| {
                Error::Internal("signed-policy blob without a signed policy".into())
            })?;
            return self.released(|spec| crate::tpmraw::unseal_signed(spec, blob, sp, pin_auth));
        }
        let srk = self.srk(false)?;
        check_srk_name(&srk.name, blob)?;
        let public = tss_esapi::structures::PublicBuffer::unmarshall(&blob.tpm_public)
            .and_then(Public::try_from)
            .map_err(|e| {
                Error::blob("sealed object", format!("TPM2B_PUBLIC does not parse: {e}"))
            })?;
        let private = Private::try_from(blob.tpm_private[2..].to_vec())
            .map_err(|e| Error::blob("sealed object", format!("TPM2B_PRIVATE: {e}")))?;
        let object = self
            .ctx()
            .execute_with_session(Some(AuthSession::Password), |c| {
                c.load(srk.handle, private, public)
            })
            .map_err(|e| match e {
                // The SRK was just read, so a parameter-associated TPM error
                // (or a local marshalling error) means the blob is bad.
                tss_esapi::Error::Tss2Error(Tss2ResponseCode::FormatOne(_))
                | tss_esapi::Error::WrapperError(_) => Error::blob(
                    "sealed object",
                    format!("the TPM rejected it (corrupt, or sealed by another TPM): {e}"),
                ),
                e => classify("Load", e),
            })?;
        let result = self.unseal_loaded(&srk, object, blob, pin_auth);
        let _ = self.ctx().flush_context(object.into());
        result
    }

    fn counter_tpm_handle() -> TpmHandle {
        TpmHandle::NvIndex(NvIndexTpmHandle::new(signedpolicy::COUNTER_INDEX).expect("NV range"))
    }

    /// The revocation counter's ESYS handle and TPM name, or `None` when the
    /// index does not exist.
    fn counter_lookup(&mut self) -> Result<Option<(ObjectHandle, Vec<u8>)>> {
        let h = match self
            .ctx()
            .execute_without_session(|c| c.tr_from_tpm_public(Self::counter_tpm_handle()))
        {
            Ok(h) => h,
            Err(e) if is_handle_error(&e) => return Ok(None),
            Err(e) => return Err(classify("NV_ReadPublic", e)),
        };
        let name = self
            .ctx()
            .tr_get_name(h)
            .map_err(tpm_err("TR_GetName"))?
            .value()
            .to_vec();
        Ok(Some((h, name)))
    }

    /// The revocation counter's ESYS handle and whether it was written, or
    /// `None` when the index does not exist.
    fn counter(&mut self) -> Result<Option<(NvIndexHandle, bool)>> {
        let Some((h, name)) = self.counter_lookup()? else {
            return Ok(None);
        };
        for written in [true, false] {
            if name == signedpolicy::counter_name_of(written) {
                return Ok(Some((h.into(), written)));
            }
        }
        Err(Error::TpmIdentity(format!(
            "NV index {:#010x} is not sealroot's revocation counter (other attributes; name {}): signed policies cannot be checked against it",
            signedpolicy::COUNTER_INDEX,
            hex::encode(name)
        )))
    }

    /// Define (once) and initialise the revocation counter; returns its value.
    pub fn ensure_counter(&mut self) -> Result<u64> {
        let (h, written) = match self.counter()? {
            Some(x) => x,
            None => {
                let attrs = NvIndexAttributesBuilder::new()
                    .with_nv_index_type(NvIndexType::Counter)
                    .with_auth_write(true)
                    .with_auth_read(true)
                    .with_no_da(true)
                    .build()
                    .map_err(tpm_err("NV_DefineSpace"))?;
                let public = NvPublicBuilder::new()
                    .with_nv_index(
                        NvIndexTpmHandle::new(signedpolicy::COUNTER_INDEX).expect("NV range"),
                    )
                    .with_index_name_algorithm(HashingAlgorithm::Sha256)
                    .with_index_attributes(attrs)
                    .with_data_area_size(8)
                    .build()
                    .map_err(tpm_err("NV_DefineSpace"))?;
                let h = self
                    .ctx()
                    .execute_with_session(Some(AuthSession::Password), |c| {
                        c.nv_define_space(Provision::Owner, None, public)
                    })
                    .map_err(tpm_err("NV_DefineSpace"))?;
                info!(
                    "defined the signed-policy revocation counter at NV {:#010x}",
                    signedpolicy::COUNTER_INDEX
                );
                (h, false)
            }
        };
        if !written {
            self.ctx()
                .execute_with_session(Some(AuthSession::Password), |c| {
                    c.nv_increment(NvAuth::NvIndex(h), h)
                })
                .map_err(tpm_err("NV_Increment"))?;
        }
        let _ = self.ctx().tr_close(&mut ObjectHandle::from(h));
        self.read_counter()
    }

    /// Current value of the revocation counter.
    pub fn read_counter(&mut self) -> Result<u64> {
        let (h, written) = self.counter()?.ok_or_else(|| {
            Error::PolicyRefused(format!(
                "the TPM has no sealroot revocation counter at NV {:#010x} (cleared TPM, or the volume was enrolled with another TPM)",
                signedpolicy::COUNTER_INDEX
            ))
        })?;
        let r = if !written {
            Err(Error::PolicyRefused(format!(
                "the revocation counter at NV {:#010x} was never initialised (interrupted enroll: run enroll again)",
                signedpolicy::COUNTER_INDEX
            )))
        } else {
            self.ctx()
                .execute_with_session(Some(AuthSession::Password), |c| {
                    c.nv_read(NvAuth::NvIndex(h), h, 8, 0)
                })
                .map_err(tpm_err("NV_Read"))
                .and_then(|d| {
                    <[u8; 8]>::try_from(d.value())
                        .map(u64::from_be_bytes)
                        .map_err(|_| Error::Internal("NV_Read returned a short counter".into()))
                })
        };
        let _ = self.ctx().tr_close(&mut ObjectHandle::from(h));
        r
    }

    /// Increment the revocation counter once; returns the new value.
    pub fn increment_counter(&mut self) -> Result<u64> {
        let (h, _) = self.counter()?.ok_or_else(|| {
            Error::PolicyRefused(format!(
                "the TPM has no sealroot revocation counter at NV {:#010x}",
                signedpolicy::COUNTER_INDEX
            ))
        })?;
        let r = self
            .ctx()
            .execute_with_session(Some(AuthSession::Password), |c| {
                c.nv_increment(NvAuth::NvIndex(h), h)
            })
            .map_err(tpm_err("NV_Increment"));
        let _ = self.ctx().tr_close(&mut ObjectHandle::from(h));
        r?;
        self.read_counter()
    }

    /// The TPM name LoadExternal gives `key` (tests compare it with
    /// [`signedpolicy::PublicKey::name`]).
    pub fn external_key_name(&mut self, key: &signedpolicy::PublicKey) -> Result<Vec<u8>> {
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

    /// The counter's name as the TPM reports it.
    pub fn counter_name(&mut self) -> Result<Option<Vec<u8>>> {
        Ok(self.counter_lookup()?.map(|(mut h, name)| {
            let _ = self.ctx().tr_close(&mut h);
            name
        }))
    }

    fn unseal_loaded(
        &mut self,
        srk: &Srk,
        object: KeyHandle,
        blob: &Blob,
        pin_auth: Option<&Key32>,
    ) -> Result<Key32> {
        let session = self.salted_session(srk, SessionType::Policy)?;
        let result = (|| {
            let policy_session = PolicySession::try_from(session).map_err(tpm_err("PolicyPCR"))?;
            let slots: Vec<PcrSlot> = blob.pcrs.iter().map(|&p| pcr_slot(p)).collect();
            let sel = PcrSelectionListBuilder::new()
                .with_selection(HashingAlgorithm::Sha256, &slots)
                .build()
                .map_err(tpm_err("PolicyPCR"))?;
            self.ctx()
                .execute_without_session(|c| {
                    c.policy_pcr(policy_session, TpmDigest::default(), sel)
                })
                .map_err(|e| match e {
                    tss_esapi::Error::Tss2Error(rc)
                        if rc.kind() == Some(Tss2ResponseCodeKind::Value) =>
                    {
                        Error::PcrMismatch(crate::pcr::Mismatch {
                            bank: "sha256".into(),
                            diffs: vec![],
                        })
                    }
                    e => classify("PolicyPCR", e),
                })?;
            if blob.pin {
                self.ctx()
                    .execute_without_session(|c| c.policy_auth_value(policy_session))
                    .map_err(tpm_err("PolicyAuthValue"))?;
                let auth = pin_auth.ok_or_else(|| {
                    Error::PinOrLockout("this volume needs a PIN and none was given".into())
                })?;
                self.ctx()
                    .tr_set_auth(
                        object.into(),
                        Auth::try_from(auth.as_bytes().to_vec()).expect("32 bytes"),
                    )
                    .map_err(tpm_err("TR_SetAuth"))?;
            }
            // The TPM flushes the session itself after a successful Unseal:
            // one FlushContext fewer on the boot path.
            let (attrs, mask) = SessionAttributesBuilder::new()
                .with_continue_session(false)
                .build();
            self.ctx()
                .tr_sess_set_attributes(session, attrs, mask)
                .map_err(tpm_err("TR_SetAttributes"))?;
            let data = self
                .ctx()
                .execute_with_session(Some(session), |c| c.unseal(object.into()))
                .map_err(|e| match e {
                    tss_esapi::Error::Tss2Error(rc)
                        if rc.kind() == Some(Tss2ResponseCodeKind::PolicyFail) =>
                    {
                        Error::PcrMismatch(crate::pcr::Mismatch {
                            bank: "sha256".into(),
                            diffs: vec![],
                        })
                    }
                    e => classify("Unseal", e),
                })?;
            Key32::from_slice(data.value())
                .ok_or_else(|| Error::blob("sealed object", "unsealed data is not a 32-byte key"))
        })();
        match result {
            // Unseal succeeded: the TPM already flushed the session; only
            // release ESYS's record of it (no TPM command). tss-esapi reports
            // closing a flushable handle as an error, which is expected here.
            Ok(_) => {
                let mut h: ObjectHandle = tss_esapi::handles::SessionHandle::from(session).into();
                let _ = self.ctx().tr_close(&mut h);
            }
            Err(_) => self.flush_session(session),
        }
        result
    }

    fn flush_session(&mut self, s: AuthSession) {
        let h = tss_esapi::handles::SessionHandle::from(s);
        let _ = self.ctx().flush_context(h.into());
    }

    /// Compute the policy digest for `pcrs` with a trial session (tests use
    /// this to check the pure computation in [`crate::policy`]).
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
