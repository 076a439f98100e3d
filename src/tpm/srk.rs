//! The storage root key: the TCG ECC P-256 template at 0x81000001, created
//! and persisted when absent (enrollment only), and pinned by name: a key
//! at that handle whose name is not the one the blob records never sees a
//! salt.

use super::{classify, is_handle_error, tpm_err, Tpm};
use crate::{Error, Result};
use log::info;
use tss_esapi::attributes::ObjectAttributesBuilder;
use tss_esapi::handles::{KeyHandle, ObjectHandle, PersistentTpmHandle, TpmHandle};
use tss_esapi::interface_types::algorithm::{HashingAlgorithm, PublicAlgorithm};
use tss_esapi::interface_types::dynamic_handles::Persistent;
use tss_esapi::interface_types::ecc::EccCurve;
use tss_esapi::interface_types::resource_handles::{Hierarchy, Provision};
use tss_esapi::interface_types::session_handles::AuthSession;
use tss_esapi::structures::{
    EccPoint, Public, PublicBuffer, PublicBuilder, PublicEccParametersBuilder,
    SymmetricDefinitionObject,
};
use tss_esapi::traits::Marshall;

/// Persistent handle of the storage root key (TCG provisioning guidance).
pub const SRK_HANDLE: u32 = 0x8100_0001;

/// The SRK loaded as an ESYS object, with its name and public area.
pub struct Srk {
    pub(crate) handle: KeyHandle,
    pub name: Vec<u8>,
    /// Marshalled TPM2B_PUBLIC, recorded in the token so that an unlock
    /// encrypts its salt to this key without a ReadPublic.
    pub public: Vec<u8>,
}

/// No SRK at its persistent handle: a foreign or cleared TPM.
pub(crate) fn no_srk() -> Error {
    Error::TpmIdentity(format!(
        "no storage root key at 0x{SRK_HANDLE:08x}: this TPM is not the one the volume was enrolled with, or it was cleared"
    ))
}

/// The SRK found must be the one the blob pins, before anything is sent.
pub(crate) fn check_srk_name(found: &[u8], pinned: &[u8]) -> Result<()> {
    if found == pinned {
        return Ok(());
    }
    Err(Error::TpmIdentity(format!(
        "the key at 0x{SRK_HANDLE:08x} is not the SRK this volume was sealed under (name {}, pinned {}); refusing to send anything to it",
        hex::encode(found),
        hex::encode(pinned)
    )))
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
        let (public, name, _) = self
            .ctx()
            .execute_without_session(|c| c.read_public(handle.into()))
            .map_err(tpm_err("ReadPublic"))?;
        let public = PublicBuffer::try_from(public)
            .and_then(|b| b.marshall())
            .map_err(tpm_err("ReadPublic"))?;
        let name = name.value().to_vec();
        if crate::pcr::policy::tpm_name(&public[2..]) != name {
            return Err(Error::TpmIdentity(format!(
                "the key at 0x{SRK_HANDLE:08x} reports a name that is not the hash of its public area"
            )));
        }
        Ok(Srk {
            handle: handle.into(),
            name,
            public,
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
}
