//! The unseal over raw ESYS calls, for both kinds of sealed object.
//!
//! Revocation must be enforced by the TPM, not by sealroot: code running
//! before sealroot in a revoked (but once signed) image could otherwise skip
//! the version check. That takes TPM2_PolicyNV (the counter compared with the
//! policy's version inside the approved policy), which tss-esapi 7.7 does not
//! wrap, nor `Esys_TR_Deserialize`, which makes the SRK's and the counter's
//! handles from the public areas sealroot already knows, with no ReadPublic.
//! So the unseal opens its own ESYS context through `tss_esapi::tss2_esys`
//! and runs, in one salted, parameter-encrypted policy session:
//! - PCR policy: PolicyPCR [→ PolicyAuthValue] → Unseal;
//! - signed policy: PolicyPCR (signed values) → PolicyNV (counter ≤
//!   version) → PolicyAuthorize (ticket from VerifySignature) → PolicyPCR
//!   (PCR 15) [→ PolicyAuthValue] → Unseal.
//!
//! Every ESYS output is copied and freed at once (the unsealed bytes are
//! wiped first); every TPM object and session is flushed on every path,
//! by sealroot on a simulator or `/dev/tpm0`, by the resource manager when
//! the connection closes on `/dev/tpmrm*`.
//! Needs tpm2-tss 3.x or later (`Esys_LoadExternal` takes an ESYS_TR
//! hierarchy; Debian 12 ships 3.2.1).

use super::classify;
use super::object::{parse_private, parse_public, rejected, Authorization};
use super::srk::{check_srk_name, no_srk, SRK_HANDLE};
use crate::formats::blob::SealedObject;
use crate::formats::signed_policy::SignedPolicy;
use crate::pcr::policy::{
    counter_public, signed_digest, COUNTER_INDEX, POLICY_REF, TPM_EO_UNSIGNED_LE,
};
use crate::pcr::{composite, Digest, Mismatch, BANK_SHA256, SELF_PCR};
use crate::secret::Key32;
use crate::{Error, Result};
use std::ffi::CString;
use std::ptr::null_mut;
use tss_esapi::constants::response_code::{Tss2ResponseCode, Tss2ResponseCodeKind};
use tss_esapi::interface_types::algorithm::HashingAlgorithm;
use tss_esapi::structures::{
    Auth, Digest as TpmDigest, EccParameter, EccSignature, Name, Nonce, PcrSelectionListBuilder,
    PcrSlot, Public, Signature, SymmetricDefinition,
};
use tss_esapi::traits::UnMarshall;
use tss_esapi::tss2_esys as sys;
use zeroize::Zeroize;

const TPMA_SESSION_CONTINUESESSION: u8 = 0x01; // cleared: see below
const TPMA_SESSION_DECRYPT: u8 = 0x20;
const TPMA_SESSION_ENCRYPT: u8 = 0x40;
const TPM2_SE_POLICY: u8 = 0x01;
const TPM2_ALG_SHA256: u16 = 0x000B;

pub(super) fn rc_err(command: &'static str, rc: u32) -> Error {
    classify(
        command,
        tss_esapi::Error::Tss2Error(Tss2ResponseCode::from(rc)),
    )
}

pub(super) fn check(command: &'static str, rc: u32) -> Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(rc_err(command, rc))
    }
}

pub(super) fn wrap(command: &'static str) -> impl Fn(tss_esapi::Error) -> Error {
    move |e| classify(command, e)
}

/// An ESYS context on its own TCTI connection.
pub(super) struct Esys {
    pub(super) ctx: *mut sys::ESYS_CONTEXT,
    tcti: *mut sys::TSS2_TCTI_CONTEXT,
    /// Transient objects and sessions to flush on drop.
    pub(super) flush: Vec<sys::ESYS_TR>,
    /// A resource manager flushes them when the connection closes
    /// ([`super::resource_managed`]): no FlushContext is sent.
    managed: bool,
}

impl Esys {
    /// Open, retrying for up to two seconds (a simulator may still be
    /// closing the connection just let go).
    pub(super) fn open(spec: &str) -> Result<Esys> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        loop {
            match Self::open_once(spec) {
                Err(Error::NoTpm { .. }) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(50))
                }
                r => return r,
            }
        }
    }

    fn open_once(spec: &str) -> Result<Esys> {
        let conf = CString::new(spec)
            .map_err(|_| Error::Usage(format!("bad TCTI specification {spec:?}")))?;
        let mut tcti = null_mut();
        // SAFETY: conf is NUL-terminated; tcti receives an allocated context.
        let rc = unsafe { sys::Tss2_TctiLdr_Initialize(conf.as_ptr(), &mut tcti) };
        if rc != 0 {
            return Err(Error::NoTpm {
                tcti: spec.into(),
                reason: format!("TCTI initialisation failed (rc {rc:#x})"),
            });
        }
        let mut ctx = null_mut();
        // SAFETY: tcti is a live TCTI context; ctx receives the ESYS context.
        // (Esys_Initialize sends no command; a simulator that has not yet
        // accepted this connection answers the first command instead.)
        let rc = unsafe { sys::Esys_Initialize(&mut ctx, tcti, null_mut()) };
        if rc != 0 {
            // SAFETY: tcti was initialised above and is not used again.
            unsafe { sys::Tss2_TctiLdr_Finalize(&mut tcti) };
            return Err(Error::NoTpm {
                tcti: spec.into(),
                reason: format!("ESYS initialisation failed (rc {rc:#x})"),
            });
        }
        Ok(Esys {
            ctx,
            tcti,
            flush: vec![],
            managed: super::resource_managed(spec),
        })
    }

    fn handle_of(&mut self, handle: u32, what: &'static str) -> Result<sys::ESYS_TR> {
        let mut tr = sys::ESYS_TR_NONE;
        // SAFETY: live context; tr receives a handle owned by the context.
        let rc = unsafe {
            sys::Esys_TR_FromTPMPublic(
                self.ctx,
                handle,
                sys::ESYS_TR_NONE,
                sys::ESYS_TR_NONE,
                sys::ESYS_TR_NONE,
                &mut tr,
            )
        };
        check(what, rc)?;
        Ok(tr)
    }

    pub(super) fn name(&mut self, tr: sys::ESYS_TR) -> Result<Vec<u8>> {
        let mut name: *mut sys::TPM2B_NAME = null_mut();
        // SAFETY: live context and handle; the returned buffer is freed below.
        let rc = unsafe { sys::Esys_TR_GetName(self.ctx, tr, &mut name) };
        check("TR_GetName", rc)?;
        // SAFETY: ESYS returned a valid TPM2B_NAME; size is bounded by it.
        let v = unsafe {
            let n = &*name;
            let v = n.name[..usize::from(n.size).min(n.name.len())].to_vec();
            sys::Esys_Free(name.cast());
            v
        };
        Ok(v)
    }

    /// Flush now (to free the TPM's slot for what follows); under a
    /// resource manager only when `always` (a retried session).
    pub(super) fn flush_now(&mut self, tr: sys::ESYS_TR, always: bool) {
        self.flush.retain(|&t| t != tr);
        if self.managed && !always {
            return;
        }
        // SAFETY: live context; a failed flush leaves nothing to clean up.
        unsafe { sys::Esys_FlushContext(self.ctx, tr) };
    }

    /// An ESYS handle for a TPM entity whose public area sealroot already
    /// knows, made without a ReadPublic (`Esys_TR_Deserialize`). ESYS uses
    /// that public area, not the TPM's answer, for salting and names. The
    /// caller decides whether that area may be trusted ([`Esys::srk`]).
    fn known(
        &mut self,
        handle: u32,
        public_tpm2b: &[u8],
        kind: ResourceKind,
    ) -> Result<sys::ESYS_TR> {
        let buf = serialized_resource(handle, public_tpm2b, kind);
        let mut tr = sys::ESYS_TR_NONE;
        // SAFETY: live context; buf is a valid slice for its length; tr
        // receives a handle owned by the context.
        let rc =
            unsafe { sys::Esys_TR_Deserialize(self.ctx, buf.as_ptr(), buf.len() as _, &mut tr) };
        check("TR_Deserialize", rc)?;
        Ok(tr)
    }
}

/// What an ESYS resource record holds after its name (tpm2-tss
/// `IESYSC_RESOURCE_TYPE`).
#[derive(Clone, Copy)]
enum ResourceKind {
    /// A key: TPM2B_PUBLIC follows (`IESYSC_KEY_RSRC`).
    Key = 1,
    /// An NV index: TPM2B_NV_PUBLIC follows (`IESYSC_NV_RSRC`).
    Nv = 2,
}

/// tpm2-tss's serialised ESYS resource (the format of `Esys_TR_Serialize`:
/// TPM2_HANDLE, TPM2B_NAME, IESYSC_RESOURCE_TYPE as UINT32, then the
/// public area as a TPM2B), built from a public area whose name is
/// computed here, as the TPM computes it (TPM 2.0 Part 1, 16 Names).
fn serialized_resource(handle: u32, public_tpm2b: &[u8], kind: ResourceKind) -> Vec<u8> {
    let name = crate::pcr::policy::tpm_name(&public_tpm2b[2..]);
    let mut v = Vec::with_capacity(4 + 2 + name.len() + 4 + public_tpm2b.len());
    v.extend_from_slice(&handle.to_be_bytes());
    v.extend_from_slice(&(name.len() as u16).to_be_bytes());
    v.extend_from_slice(&name);
    v.extend_from_slice(&(kind as u32).to_be_bytes());
    v.extend_from_slice(public_tpm2b);
    v
}

impl Drop for Esys {
    fn drop(&mut self) {
        let flush = std::mem::take(&mut self.flush);
        if !self.managed {
            for tr in flush {
                // SAFETY: live context; handles this context created.
                unsafe { sys::Esys_FlushContext(self.ctx, tr) };
            }
        }
        // SAFETY: both were initialised in open() and are not used again.
        unsafe {
            sys::Esys_Finalize(&mut self.ctx);
            sys::Tss2_TctiLdr_Finalize(&mut self.tcti);
        }
    }
}

fn pcr_selection(pcrs: &[u32]) -> Result<sys::TPML_PCR_SELECTION> {
    let slots: Vec<PcrSlot> = pcrs
        .iter()
        .map(|&p| PcrSlot::try_from(1u32 << p).expect("PCR index validated"))
        .collect();
    Ok(PcrSelectionListBuilder::new()
        .with_selection(HashingAlgorithm::Sha256, &slots)
        .build()
        .map_err(wrap("PolicyPCR"))?
        .into())
}

pub(super) fn digest(bytes: &[u8]) -> sys::TPM2B_DIGEST {
    TpmDigest::try_from(bytes.to_vec())
        .expect("at most 64 bytes")
        .into()
}

/// Unseal a signed-policy object's KEK with `auth` (whose PCRs, signature
/// and version sealroot has already checked in software; the TPM checks
/// them all again). `spec` is the TCTI; no other connection may be open.
///
/// Errors: as [`super::Tpm::unseal`]; [`Error::PolicyRefused`] when the TPM
/// refuses the signature, the PCRs (changed since they were read), the
/// version (revoked: PolicyNV) or PCR 15.
pub fn unseal_signed(
    spec: &str,
    obj: SealedObject,
    auth: Authorization,
    pin_auth: Option<&Key32>,
) -> Result<Key32> {
    let mut e = Esys::open(spec)?;
    let srk = e.srk(obj)?;
    let object = e.load(srk, obj)?;
    let ticket = e.verify_signature(auth)?;
    let session = e.policy_session(srk)?;
    e.policy_signed_pcrs(session, auth.policy)?;
    e.policy_counter(session, auth.policy.version)?;
    e.policy_authorize(session, auth.policy, ticket)?;
    e.policy_lock_pcr(session, obj.pcrs)?;
    if obj.pin {
        e.policy_pin(session, object, pin_auth)?;
    }
    let r = e.unseal(object, session, true).map_err(Error::from);
    e.explain_auth_failure(srk, obj, r)
}

/// Unseal a PCR-policy object's KEK: Load, then a salted policy session
/// with PolicyPCR (empty digest: the TPM compares the PCRs when Unseal
/// runs) [→ PolicyAuthValue] → Unseal. `spec` is the TCTI; no other
/// connection may be open. TPM_RC_PCR_CHANGED (a PCR extended between
/// PolicyPCR and Unseal) runs the session again, up to three times in all.
///
/// Errors: as [`super::Tpm::unseal`]; [`Error::PcrMismatch`] when the TPM
/// refuses the PCRs (or they never hold still).
pub fn unseal_pcr(spec: &str, obj: SealedObject, pin_auth: Option<&Key32>) -> Result<Key32> {
    let mut e = Esys::open(spec)?;
    let srk = e.srk(obj)?;
    let object = e.load(srk, obj)?;
    for attempt in 1..=PCR_CHANGED_ATTEMPTS {
        let session = e.policy_session(srk)?;
        match e.pcr_policy_unseal(session, object, obj, pin_auth) {
            Err(PcrChanged) => {
                log::warn!(
                    "a PCR changed during the policy session (attempt {attempt} of {PCR_CHANGED_ATTEMPTS})"
                );
                e.flush_now(session, true);
            }
            r => {
                let r = r.map_err(Error::from);
                return e.explain_auth_failure(srk, obj, r);
            }
        }
    }
    Err(PcrChanged.into())
}

/// How many times a policy session is run when TPM_RC_PCR_CHANGED answers.
const PCR_CHANGED_ATTEMPTS: u32 = 3;

/// An unseal that failed only because a PCR changed mid-session, or another
/// error.
pub(super) enum Attempt {
    PcrChanged,
    Failed(Error),
}
use Attempt::PcrChanged;

impl From<Error> for Attempt {
    fn from(e: Error) -> Attempt {
        Attempt::Failed(e)
    }
}

impl From<Attempt> for Error {
    fn from(a: Attempt) -> Error {
        match a {
            // The PCRs do not hold still at the policy: a mismatch.
            PcrChanged => pcr_mismatch(),
            Attempt::Failed(e) => e,
        }
    }
}

fn pcr_mismatch() -> Error {
    Error::PcrMismatch(Mismatch {
        bank: BANK_SHA256.into(),
        diffs: vec![],
    })
}

impl Esys {
    /// The SRK the object was sealed under. The token's SRK fields are not
    /// authenticated (the host can rewrite both `srk_public` and
    /// `srk_name`), so the session's salt may only go to the token's key
    /// when nothing secret depends on it:
    /// - with a PIN, the Unseal command's HMAC is keyed with the session
    ///   key and the PIN's authValue; a session salted to a key the host
    ///   chose would hand it an offline PIN oracle. So the SRK is read
    ///   from the TPM and its name compared with the token's first (one
    ///   ReadPublic);
    /// - without a PIN, the token's public area is used with no command
    ///   (`Esys_TR_Deserialize`). A key the host put in the token lets it
    ///   compute sealroot's session key, but not the TPM's (that needs the
    ///   real SRK's private key), which encrypts the response; the Load or
    ///   the Unseal then fails and [`Esys::explain_auth_failure`] names
    ///   the SRK.
    ///
    /// Tokens without `srk_public` have their SRK read and checked too.
    fn srk(&mut self, obj: SealedObject) -> Result<sys::ESYS_TR> {
        match Self::unread_srk(obj) {
            Some(public) => self.known(SRK_HANDLE, public, ResourceKind::Key),
            None => self.pinned_srk(obj.srk_name),
        }
    }

    /// The token's SRK public area when [`Esys::srk`] uses it unread.
    fn unread_srk(obj: SealedObject<'_>) -> Option<&[u8]> {
        obj.srk_public.filter(|_| !obj.pin)
    }

    /// After a failed Load or Unseal under an unread SRK: read the key at
    /// the SRK's handle and report it when it is not the token's (exit 8),
    /// rather than a wrong PIN or a rejected object. `r` is returned as it
    /// is otherwise.
    fn explain_auth_failure<T>(
        &mut self,
        srk: sys::ESYS_TR,
        obj: SealedObject,
        r: Result<T>,
    ) -> Result<T> {
        if r.is_ok() || Self::unread_srk(obj).is_none() {
            return r;
        }
        let mut known = srk;
        // SAFETY: live context; closes ESYS's record only (the SRK
        // persists), so the handle can be read from the TPM.
        unsafe { sys::Esys_TR_Close(self.ctx, &mut known) };
        self.pinned_srk(obj.srk_name)?;
        r
    }

    /// The SRK, read from the TPM and pinned by name.
    fn pinned_srk(&mut self, pinned: &[u8]) -> Result<sys::ESYS_TR> {
        let srk = self
            .handle_of(SRK_HANDLE, "ReadPublic")
            .map_err(|err| match err {
                Error::Tpm { .. } => no_srk(),
                other => other,
            })?;
        check_srk_name(&self.name(srk)?, pinned)?;
        Ok(srk)
    }

    /// PolicyPCR [→ PolicyAuthValue] → Unseal in `session`.
    fn pcr_policy_unseal(
        &mut self,
        session: sys::ESYS_TR,
        object: sys::ESYS_TR,
        obj: SealedObject,
        pin_auth: Option<&Key32>,
    ) -> std::result::Result<Key32, Attempt> {
        let rc = self.policy_pcr(session, obj.pcrs, None)?;
        match Tss2ResponseCode::from(rc).kind() {
            _ if rc == 0 => {}
            Some(Tss2ResponseCodeKind::Value) => return Err(pcr_mismatch().into()),
            _ => return Err(rc_err("PolicyPCR", rc).into()),
        }
        // Fault injection (tests): a PCR outside the policy changes
        // between PolicyPCR and Unseal.
        if crate::testhooks::take_pcr_change() {
            self.extend_for_test(8)?;
        }
        if obj.pin {
            self.policy_pin(session, object, pin_auth)?;
        }
        self.unseal(object, session, false)
    }

    /// Extend a fixed value into `pcr` (fault injection only).
    fn extend_for_test(&mut self, pcr: u32) -> Result<()> {
        let mut values = sys::TPML_DIGEST_VALUES {
            count: 1,
            ..Default::default()
        };
        values.digests[0].hashAlg = TPM2_ALG_SHA256;
        values.digests[0].digest.sha256 = [0x5a; 32];
        // SAFETY: live context; PCR handles are ESYS_TR_PCR0 + index.
        let rc = unsafe {
            sys::Esys_PCR_Extend(
                self.ctx,
                sys::ESYS_TR_PCR0 + pcr,
                sys::ESYS_TR_PASSWORD,
                sys::ESYS_TR_NONE,
                sys::ESYS_TR_NONE,
                &values,
            )
        };
        check("PCR_Extend", rc)
    }

    /// Load the sealed object under the SRK.
    fn load(&mut self, srk: sys::ESYS_TR, obj: SealedObject) -> Result<sys::ESYS_TR> {
        let public: sys::TPM2B_PUBLIC = parse_public(obj.public)?
            .try_into()
            .map_err(|err| Error::blob("sealed object", format!("TPM2B_PUBLIC: {err}")))?;
        let private: sys::TPM2B_PRIVATE = parse_private(obj.private)?.into();
        let mut object = sys::ESYS_TR_NONE;
        // SAFETY: live context; inputs are valid structures on the stack.
        let rc = unsafe {
            sys::Esys_Load(
                self.ctx,
                srk,
                sys::ESYS_TR_PASSWORD,
                sys::ESYS_TR_NONE,
                sys::ESYS_TR_NONE,
                &private,
                &public,
                &mut object,
            )
        };
        if rc != 0 {
            let e = if matches!(Tss2ResponseCode::from(rc), Tss2ResponseCode::FormatOne(_)) {
                rejected(format!("rc {rc:#x}"))
            } else {
                rc_err("Load", rc)
            };
            // An unread SRK: is the key at its handle another one?
            return self.explain_auth_failure(srk, obj, Err(e));
        }
        self.flush.push(object);
        Ok(object)
    }

    /// The TPM checks the signature: LoadExternal into the owner hierarchy
    /// (a NULL-hierarchy ticket does not satisfy PolicyAuthorize), then
    /// VerifySignature over what the builder signed.
    fn verify_signature(&mut self, auth: Authorization) -> Result<Ticket> {
        let sp = auth.policy;
        self.verify_external(
            &auth.key.tpmt_public(),
            || {
                Signature::EcDsa(EccSignature::create(
                    HashingAlgorithm::Sha256,
                    EccParameter::try_from(sp.signature.r.to_vec())?,
                    EccParameter::try_from(sp.signature.s.to_vec())?,
                )?)
                .try_into()
            },
            &digest(&signed_digest(&sp.approved())),
            || {
                format!(
                    "the TPM rejected the signature of the signed policy (version {})",
                    sp.version
                )
            },
        )
    }

    /// LoadExternal of the public area `public` (TPMT_PUBLIC) into the
    /// owner hierarchy, then VerifySignature of `signature` (built after
    /// the load) over `hash`; the key is flushed afterwards. A signature
    /// the TPM rejects is [`Error::PolicyRefused`] with `refused`'s text.
    ///
    /// Errors: [`Error::PolicyRefused`], and the TPM's for either command.
    pub(super) fn verify_external(
        &mut self,
        public: &[u8],
        signature: impl FnOnce() -> tss_esapi::Result<sys::TPMT_SIGNATURE>,
        hash: &sys::TPM2B_DIGEST,
        refused: impl FnOnce() -> String,
    ) -> Result<Ticket> {
        let ext_public: sys::TPM2B_PUBLIC = Public::unmarshall(public)
            .and_then(TryInto::try_into)
            .map_err(wrap("LoadExternal"))?;
        let mut ext = sys::ESYS_TR_NONE;
        // SAFETY: live context; public-only load.
        let rc = unsafe {
            sys::Esys_LoadExternal(
                self.ctx,
                sys::ESYS_TR_NONE,
                sys::ESYS_TR_NONE,
                sys::ESYS_TR_NONE,
                std::ptr::null(),
                &ext_public,
                sys::ESYS_TR_RH_OWNER,
                &mut ext,
            )
        };
        check("LoadExternal", rc)?;
        self.flush.push(ext);
        let signature = signature().map_err(wrap("VerifySignature"))?;
        let mut ticket: *mut sys::TPMT_TK_VERIFIED = null_mut();
        // SAFETY: live context and key; the ticket is freed by `Ticket`.
        let rc = unsafe {
            sys::Esys_VerifySignature(
                self.ctx,
                ext,
                sys::ESYS_TR_NONE,
                sys::ESYS_TR_NONE,
                sys::ESYS_TR_NONE,
                hash,
                &signature,
                &mut ticket,
            )
        };
        self.flush_now(ext, false);
        match rc {
            0 => Ok(Ticket(ticket)),
            rc if Tss2ResponseCode::from(rc).kind() == Some(Tss2ResponseCodeKind::Signature) => {
                Err(Error::PolicyRefused(refused()))
            }
            rc => Err(rc_err("VerifySignature", rc)),
        }
    }

    /// The policy session, salted to the SRK, parameters encrypted both
    /// ways, and without continueSession: the TPM flushes the session after
    /// a successful Unseal (policy commands take it as a handle, not as an
    /// authorization, so the flag matters only there).
    pub(super) fn policy_session(&mut self, srk: sys::ESYS_TR) -> Result<sys::ESYS_TR> {
        let symmetric: sys::TPMT_SYM_DEF = SymmetricDefinition::AES_128_CFB
            .try_into()
            .map_err(wrap("StartAuthSession"))?;
        let mut session = sys::ESYS_TR_NONE;
        // SAFETY: live context; ESYS generates nonceCaller when null.
        let rc = unsafe {
            sys::Esys_StartAuthSession(
                self.ctx,
                srk,
                sys::ESYS_TR_NONE,
                sys::ESYS_TR_NONE,
                sys::ESYS_TR_NONE,
                sys::ESYS_TR_NONE,
                std::ptr::null(),
                TPM2_SE_POLICY,
                &symmetric,
                TPM2_ALG_SHA256,
                &mut session,
            )
        };
        check("StartAuthSession", rc)?;
        self.flush.push(session);
        let enc = if crate::testhooks::no_param_encryption() {
            0
        } else {
            TPMA_SESSION_ENCRYPT
        };
        // SAFETY: live context and session.
        let rc = unsafe {
            sys::Esys_TRSess_SetAttributes(
                self.ctx,
                session,
                TPMA_SESSION_DECRYPT | enc,
                TPMA_SESSION_DECRYPT | TPMA_SESSION_ENCRYPT | TPMA_SESSION_CONTINUESESSION,
            )
        };
        check("TR_SetAttributes", rc)?;
        Ok(session)
    }

    /// PolicyPCR with `values` (the TPM compares now) or, when `values` is
    /// `None`, with an empty digest (compared when Unseal runs). Returns
    /// the TPM's response code.
    pub(super) fn policy_pcr(
        &mut self,
        session: sys::ESYS_TR,
        pcrs: &[u32],
        values: Option<&[Digest]>,
    ) -> Result<u32> {
        let sel = pcr_selection(pcrs)?;
        let composite = match values {
            Some(v) => digest(&composite(v)),
            None => digest(&[]),
        };
        // SAFETY: live context and session; inputs on the stack.
        Ok(unsafe {
            sys::Esys_PolicyPCR(
                self.ctx,
                session,
                sys::ESYS_TR_NONE,
                sys::ESYS_TR_NONE,
                sys::ESYS_TR_NONE,
                &composite,
                &sel,
            )
        })
    }

    /// 1. The signed PCR values (TPM_RC_VALUE when they differ).
    fn policy_signed_pcrs(&mut self, session: sys::ESYS_TR, sp: &SignedPolicy) -> Result<()> {
        let rc = self.policy_pcr(session, &sp.pcrs, Some(&sp.values))?;
        if rc == 0 {
            return Ok(());
        }
        let kind = Tss2ResponseCode::from(rc).kind();
        Err(
            if matches!(
                kind,
                Some(Tss2ResponseCodeKind::Value) | Some(Tss2ResponseCodeKind::PcrChanged)
            ) {
                Error::PolicyRefused(format!(
                    "the PCRs changed between reading and PolicyPCR (signed policy version {})",
                    sp.version
                ))
            } else {
                rc_err("PolicyPCR", rc)
            },
        )
    }

    /// 2. Revocation, enforced by the TPM: counter <= version (PolicyNV).
    fn policy_counter(&mut self, session: sys::ESYS_TR, version: u64) -> Result<()> {
        // The counter's public area is fixed (written, sealroot's
        // attributes): no NV_ReadPublic. An index with other attributes has
        // another name, which PolicyNV folds into the policy digest, so
        // PolicyAuthorize then refuses.
        let public = counter_public(true);
        let mut nv_public = (public.len() as u16).to_be_bytes().to_vec();
        nv_public.extend_from_slice(&public);
        let counter = self.known(COUNTER_INDEX, &nv_public, ResourceKind::Nv)?;
        let operand = digest(&version.to_be_bytes());
        // SAFETY: live context; the NV index authorises its own read (empty auth).
        let rc = unsafe {
            sys::Esys_PolicyNV(
                self.ctx,
                counter,
                counter,
                session,
                sys::ESYS_TR_PASSWORD,
                sys::ESYS_TR_NONE,
                sys::ESYS_TR_NONE,
                &operand,
                0,
                TPM_EO_UNSIGNED_LE,
            )
        };
        let mut counter_tr = counter;
        // SAFETY: live context; closes the ESYS record only (NV indexes persist).
        unsafe { sys::Esys_TR_Close(self.ctx, &mut counter_tr) };
        if rc == 0 {
            return Ok(());
        }
        Err(
            if Tss2ResponseCode::from(rc).kind() == Some(Tss2ResponseCodeKind::Policy) {
                Error::PolicyRefused(format!(
                    "the TPM refused signed policy version {version}: its revocation counter is higher (PolicyNV)"
                ))
            } else {
                rc_err("PolicyNV", rc)
            },
        )
    }

    /// 3. PolicyAuthorize: the session now holds the sealed object's prefix.
    fn policy_authorize(
        &mut self,
        session: sys::ESYS_TR,
        sp: &SignedPolicy,
        ticket: Ticket,
    ) -> Result<()> {
        let approved = digest(&sp.approved());
        let policy_ref: sys::TPM2B_NONCE = Nonce::try_from(POLICY_REF.to_vec())
            .map_err(wrap("PolicyAuthorize"))?
            .into();
        let name = Name::try_from(sp.key_name.clone()).map_err(wrap("PolicyAuthorize"))?;
        // SAFETY: live context and session; the ticket came from VerifySignature.
        let rc = unsafe {
            sys::Esys_PolicyAuthorize(
                self.ctx,
                session,
                sys::ESYS_TR_NONE,
                sys::ESYS_TR_NONE,
                sys::ESYS_TR_NONE,
                &approved,
                &policy_ref,
                name.as_ref(),
                ticket.0,
            )
        };
        drop(ticket);
        check("PolicyAuthorize", rc)
    }

    /// 4. The lock PCR, as on the PCR path (value checked when Unseal runs).
    fn policy_lock_pcr(&mut self, session: sys::ESYS_TR, pcrs: &[u32]) -> Result<()> {
        let rc = self.policy_pcr(session, pcrs, None)?;
        check("PolicyPCR", rc)
    }

    /// PolicyAuthValue, and the PIN's authValue on the object.
    pub(super) fn policy_pin(
        &mut self,
        session: sys::ESYS_TR,
        object: sys::ESYS_TR,
        pin_auth: Option<&Key32>,
    ) -> Result<()> {
        let auth = pin_auth.ok_or_else(|| {
            Error::PinOrLockout("this volume needs a PIN and none was given".into())
        })?;
        // SAFETY: live context and session.
        let rc = unsafe {
            sys::Esys_PolicyAuthValue(
                self.ctx,
                session,
                sys::ESYS_TR_NONE,
                sys::ESYS_TR_NONE,
                sys::ESYS_TR_NONE,
            )
        };
        check("PolicyAuthValue", rc)?;
        let mut a: sys::TPM2B_AUTH = Auth::try_from(auth.as_bytes().to_vec())
            .expect("32 bytes")
            .into();
        // SAFETY: live context and object; ESYS copies the value.
        let rc = unsafe { sys::Esys_TR_SetAuth(self.ctx, object, &a) };
        a.buffer.zeroize();
        check("TR_SetAuth", rc)
    }

    /// Unseal: the bytes are copied into a [`Key32`] and wiped before ESYS
    /// frees them. A policy failure is [`Error::PolicyRefused`] for a
    /// `signed` object, [`Error::PcrMismatch`] for a PCR-policy one.
    pub(super) fn unseal(
        &mut self,
        object: sys::ESYS_TR,
        session: sys::ESYS_TR,
        signed: bool,
    ) -> std::result::Result<Key32, Attempt> {
        let mut out: *mut sys::TPM2B_SENSITIVE_DATA = null_mut();
        // SAFETY: live context, object and session; out is freed below.
        let rc = unsafe {
            sys::Esys_Unseal(
                self.ctx,
                object,
                session,
                sys::ESYS_TR_NONE,
                sys::ESYS_TR_NONE,
                &mut out,
            )
        };
        if rc != 0 {
            return Err(match Tss2ResponseCode::from(rc).kind() {
                Some(Tss2ResponseCodeKind::PolicyFail) if signed => Error::PolicyRefused(format!(
                    "the TPM refused the unseal (PolicyFail): PCR {SELF_PCR} is not the enrolled value, or the signing key is not the one the object was sealed to"
                )),
                Some(Tss2ResponseCodeKind::PolicyFail) => pcr_mismatch(),
                Some(Tss2ResponseCodeKind::PcrChanged) => return Err(PcrChanged),
                _ => rc_err("Unseal", rc),
            }
            .into());
        }
        // The TPM flushed the session with the successful Unseal.
        self.flush.retain(|&t| t != session);
        // SAFETY: ESYS returned a valid buffer; it is wiped before it is freed.
        let key = unsafe {
            let d = &mut *out;
            let n = usize::from(d.size).min(d.buffer.len());
            let k = Key32::from_slice(&d.buffer[..n]);
            d.buffer.zeroize();
            sys::Esys_Free(out.cast());
            k
        };
        key.ok_or_else(|| Error::blob("sealed object", "unsealed data is not a 32-byte key").into())
    }
}

/// A VerifySignature ticket, freed on drop.
pub(super) struct Ticket(pub(super) *mut sys::TPMT_TK_VERIFIED);

impl Drop for Ticket {
    fn drop(&mut self) {
        // SAFETY: allocated by ESYS (or null, which free accepts).
        unsafe { sys::Esys_Free(self.0.cast()) };
    }
}
