//! Seal and unseal the KEK under the pinned SRK, PolicyPCR (and
//! PolicyAuthValue with a PIN), in a session salted to the SRK with
//! parameter encryption both ways. Signed-policy objects are unsealed by
//! [`super::esys`].

use super::object::{parse_private, parse_public, rejected, Authorization};
use super::srk::{check_srk_name, Srk};
use super::{classify, pcr_slot, tpm_err, Tpm};
use crate::formats::blob::SealedObject;
use crate::pcr::{Digest, Mismatch, BANK_SHA256};
use crate::secret::Key32;
use crate::{Error, Result};
use tss_esapi::attributes::{ObjectAttributesBuilder, SessionAttributesBuilder};
use tss_esapi::constants::response_code::{Tss2ResponseCode, Tss2ResponseCodeKind};
use tss_esapi::constants::SessionType;
use tss_esapi::handles::{KeyHandle, ObjectHandle};
use tss_esapi::interface_types::algorithm::{HashingAlgorithm, PublicAlgorithm};
use tss_esapi::interface_types::session_handles::{AuthSession, PolicySession};
use tss_esapi::structures::{
    Auth, Digest as TpmDigest, KeyedHashScheme, PcrSelectionListBuilder, PcrSlot, PublicBuilder,
    PublicKeyedHashParameters, SensitiveData, SymmetricDefinition,
};
use tss_esapi::traits::Marshall;

/// The `authPolicy` of a sealed object's TPM2B_PUBLIC (which the TPM's
/// integrity check on Load protects).
pub fn sealed_auth_policy(tpm_public: &[u8]) -> Result<Digest> {
    parse_public(tpm_public)?
        .auth_policy()
        .value()
        .try_into()
        .map_err(|_| Error::blob("sealed object", "authPolicy is not a SHA-256 digest"))
}

impl Tpm {
    /// A session salted to the SRK with parameter encryption both ways.
    pub(crate) fn salted_session(&mut self, srk: &Srk, kind: SessionType) -> Result<AuthSession> {
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
    /// A signed-policy object needs `signed`: its key and the signed policy
    /// the current PCRs satisfy ([`super::esys::unseal_signed`] runs
    /// PolicyPCR, PolicyNV on the counter and PolicyAuthorize first).
    ///
    /// Errors: [`Error::TpmIdentity`] (SRK missing or not the pinned one),
    /// [`Error::BlobInvalid`] (the TPM rejects the object),
    /// [`Error::PcrMismatch`] / [`Error::PolicyRefused`] (the policy fails),
    /// [`Error::PinOrLockout`], [`Error::NoTpm`].
    pub fn unseal(
        &mut self,
        obj: SealedObject,
        pin_auth: Option<&Key32>,
        signed: Option<Authorization>,
    ) -> Result<Key32> {
        match (obj.signed, signed) {
            (true, Some(auth)) => {
                return self.released(|spec| super::esys::unseal_signed(spec, obj, auth, pin_auth))
            }
            (false, None) => {}
            (true, None) => {
                return Err(Error::Internal(
                    "signed-policy object without a signed policy".into(),
                ))
            }
            (false, Some(_)) => {
                return Err(Error::Internal(
                    "a signed policy given for an object sealed to PCR values".into(),
                ))
            }
        }
        let srk = self.srk(false)?;
        check_srk_name(&srk.name, obj.srk_name)?;
        let public = parse_public(obj.public)?;
        let private = parse_private(obj.private)?;
        let object = self
            .ctx()
            .execute_with_session(Some(AuthSession::Password), |c| {
                c.load(srk.handle, private, public)
            })
            .map_err(|e| match e {
                // The SRK was just read, so a parameter-associated TPM error
                // (or a local marshalling error) means the blob is bad.
                tss_esapi::Error::Tss2Error(Tss2ResponseCode::FormatOne(_))
                | tss_esapi::Error::WrapperError(_) => rejected(e),
                e => classify("Load", e),
            })?;
        // TPM_RC_PCR_CHANGED: a PCR was extended between PolicyPCR and
        // Unseal. Run the session again, a bounded number of times, then
        // call it what it is: the PCRs do not hold still at the policy.
        let mut result = Err(pcr_changed());
        for attempt in 1..=PCR_CHANGED_ATTEMPTS {
            result = self.unseal_loaded(&srk, object, obj, pin_auth);
            match &result {
                Err(e) if is_pcr_changed(e) => {
                    log::warn!(
                        "a PCR changed during the policy session (attempt {attempt} of {PCR_CHANGED_ATTEMPTS})"
                    );
                }
                _ => break,
            }
        }
        let _ = self.ctx().flush_context(object.into());
        result.map_err(|e| {
            if is_pcr_changed(&e) {
                Error::PcrMismatch(Mismatch {
                    bank: BANK_SHA256.into(),
                    diffs: vec![],
                })
            } else {
                e
            }
        })
    }

    fn unseal_loaded(
        &mut self,
        srk: &Srk,
        object: KeyHandle,
        obj: SealedObject,
        pin_auth: Option<&Key32>,
    ) -> Result<Key32> {
        let session = self.salted_session(srk, SessionType::Policy)?;
        let result = (|| {
            let policy_session = PolicySession::try_from(session).map_err(tpm_err("PolicyPCR"))?;
            let slots: Vec<PcrSlot> = obj.pcrs.iter().map(|&p| pcr_slot(p)).collect();
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
                        Error::PcrMismatch(Mismatch {
                            bank: BANK_SHA256.into(),
                            diffs: vec![],
                        })
                    }
                    e => classify("PolicyPCR", e),
                })?;
            // Fault injection (tests): a PCR outside the policy changes
            // between PolicyPCR and Unseal.
            if crate::testhooks::take_pcr_change() {
                self.pcr_extend(8, &[0x5a; 32])?;
            }
            if obj.pin {
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
                        if rc.kind() == Some(Tss2ResponseCodeKind::PcrChanged) =>
                    {
                        pcr_changed()
                    }
                    tss_esapi::Error::Tss2Error(rc)
                        if rc.kind() == Some(Tss2ResponseCodeKind::PolicyFail) =>
                    {
                        Error::PcrMismatch(Mismatch {
                            bank: BANK_SHA256.into(),
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
}

/// How many times a policy session is run when TPM_RC_PCR_CHANGED answers.
const PCR_CHANGED_ATTEMPTS: u32 = 3;

const PCR_CHANGED: &str = "TPM_RC_PCR_CHANGED";

fn pcr_changed() -> Error {
    Error::Tpm {
        command: "Unseal",
        detail: PCR_CHANGED.into(),
    }
}

fn is_pcr_changed(e: &Error) -> bool {
    matches!(e, Error::Tpm { command: "Unseal", detail } if detail == PCR_CHANGED)
}
