//! The signed-policy revocation counter: an NV counter at
//! [`COUNTER_INDEX`] whose value PolicyNV compares with a policy's version,
//! so the TPM itself refuses revoked policies (docs/signed-policy.md).

use super::{classify, is_handle_error, tpm_err, Tpm};
use crate::pcr::policy::{self, COUNTER_INDEX};
use crate::{Error, Result};
use log::info;
use tss_esapi::attributes::NvIndexAttributesBuilder;
use tss_esapi::constants::NvIndexType;
use tss_esapi::handles::{NvIndexHandle, NvIndexTpmHandle, ObjectHandle, TpmHandle};
use tss_esapi::interface_types::algorithm::HashingAlgorithm;
use tss_esapi::interface_types::resource_handles::{NvAuth, Provision};
use tss_esapi::interface_types::session_handles::AuthSession;
use tss_esapi::structures::NvPublicBuilder;

impl Tpm {
    fn counter_tpm_handle() -> TpmHandle {
        TpmHandle::NvIndex(NvIndexTpmHandle::new(COUNTER_INDEX).expect("NV range"))
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
            if name == policy::counter_name_of(written) {
                return Ok(Some((h.into(), written)));
            }
        }
        Err(Error::TpmIdentity(format!(
            "NV index {:#010x} is not sealroot's revocation counter (other attributes; name {}): signed policies cannot be checked against it",
            COUNTER_INDEX,
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
                    .with_nv_index(NvIndexTpmHandle::new(COUNTER_INDEX).expect("NV range"))
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
                    COUNTER_INDEX
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
                COUNTER_INDEX
            ))
        })?;
        let r = if !written {
            Err(Error::PolicyRefused(format!(
                "the revocation counter at NV {:#010x} was never initialised (interrupted enroll: run enroll again)",
                COUNTER_INDEX
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
                COUNTER_INDEX
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

    /// The counter's name as the TPM reports it.
    pub fn counter_name(&mut self) -> Result<Option<Vec<u8>>> {
        Ok(self.counter_lookup()?.map(|(mut h, name)| {
            let _ = self.ctx().tr_close(&mut h);
            name
        }))
    }
}
