//! Seal the KEK under the SRK, to PolicyPCR (and PolicyAuthValue with a
//! PIN) or to a signed policy, in a session salted to the SRK with
//! parameter encryption both ways. The unseal runs in [`super::esys`], on
//! its own connection.

use super::object::{parse_public, Authorization};
use super::srk::Srk;
use super::{tpm_err, Tpm};
use crate::formats::blob::SealedObject;
use crate::pcr::Digest;
use crate::secret::Key32;
use crate::{Error, Result};
use tss_esapi::attributes::{ObjectAttributesBuilder, SessionAttributesBuilder};
use tss_esapi::constants::SessionType;
use tss_esapi::interface_types::algorithm::{HashingAlgorithm, PublicAlgorithm};
use tss_esapi::interface_types::session_handles::AuthSession;
use tss_esapi::structures::{
    Auth, Digest as TpmDigest, KeyedHashScheme, PublicBuilder, PublicKeyedHashParameters,
    SensitiveData, SymmetricDefinition,
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
    /// and unseal the KEK ([`super::esys::unseal_pcr`]), under the SRK the
    /// object pins. A signed-policy object needs `signed`: its key and the
    /// signed policy the current PCRs satisfy
    /// ([`super::esys::unseal_signed`] runs PolicyPCR, PolicyNV on the
    /// counter and PolicyAuthorize first).
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
        self.released(|spec| super::esys::unseal_pcr(spec, obj, pin_auth))
    }
}
