//! The vTPM edge of platform verification: read the HCL report from NV
//! index 0x01400001 (in chunks of at most `TPM_PT_NV_BUFFER_MAX`) and the
//! public part of the attestation key at 0x81000003.

use super::{classify, is_handle_error, Tpm};
use crate::attest::azure_hcl::RsaPub;
use crate::attest::evidence::{AkState, AK_HANDLE};
use crate::{Error, Result};
use log::debug;
use tss_esapi::constants::PropertyTag;
use tss_esapi::handles::{NvIndexHandle, NvIndexTpmHandle, PersistentTpmHandle, TpmHandle};
use tss_esapi::interface_types::resource_handles::NvAuth;
use tss_esapi::interface_types::session_handles::AuthSession;
use tss_esapi::structures::Public;

/// NV indexes larger than this are not read.
const MAX_NV_READ: usize = 64 * 1024;

impl Tpm {
    /// The whole contents of an NV index, or `None` when it is not defined.
    /// Reads with owner authorization (empty), as `tpm2_nvread -C o`, or
    /// with the index's own (empty) authorization when only that may read.
    pub fn nv_read_all(&mut self, index: u32) -> Result<Option<Vec<u8>>> {
        let tpm_handle = NvIndexTpmHandle::new(index)
            .map_err(|_| Error::Internal(format!("0x{index:08x} is not an NV index")))?;
        let obj = match self
            .ctx()
            .execute_without_session(|c| c.tr_from_tpm_public(TpmHandle::NvIndex(tpm_handle)))
        {
            Ok(h) => h,
            Err(e) if is_handle_error(&e) => return Ok(None),
            Err(e) => return Err(classify("NV_ReadPublic", e)),
        };
        let handle = NvIndexHandle::from(obj);
        let r = self.nv_read_handle(handle, index);
        let mut obj = obj;
        let _ = self.ctx().tr_close(&mut obj);
        r.map(Some)
    }

    fn nv_read_handle(&mut self, handle: NvIndexHandle, index: u32) -> Result<Vec<u8>> {
        let (public, _) = self
            .ctx()
            .execute_without_session(|c| c.nv_read_public(handle))
            .map_err(|e| classify("NV_ReadPublic", e))?;
        let size = public.data_size();
        if size > MAX_NV_READ {
            return Err(Error::Tpm {
                command: "NV_Read",
                detail: format!("NV index 0x{index:08x} is {size} bytes; refusing to read it"),
            });
        }
        let attrs = public.attributes();
        let auth = if attrs.owner_read() {
            NvAuth::Owner
        } else if attrs.auth_read() {
            NvAuth::NvIndex(handle)
        } else {
            return Err(Error::Tpm {
                command: "NV_Read",
                detail: format!(
                    "NV index 0x{index:08x} is readable neither by the owner nor with its own authorization"
                ),
            });
        };
        let max = self
            .ctx()
            .get_tpm_property(PropertyTag::NvBufferMax)
            .ok()
            .flatten()
            .map(|v| v as usize)
            .filter(|&v| v > 0)
            .unwrap_or(512)
            .min(1024);
        let mut out = Vec::with_capacity(size);
        while out.len() < size {
            let n = (size - out.len()).min(max);
            let off = out.len();
            let chunk = self
                .ctx()
                .execute_with_session(Some(AuthSession::Password), |c| {
                    c.nv_read(auth, handle, n as u16, off as u16)
                })
                .map_err(|e| classify("NV_Read", e))?;
            if chunk.is_empty() || chunk.len() > n {
                return Err(Error::Tpm {
                    command: "NV_Read",
                    detail: format!("asked for {n} bytes at {off}, got {}", chunk.len()),
                });
            }
            out.extend_from_slice(&chunk);
        }
        debug!(
            "read {} bytes from NV index 0x{index:08x} in chunks of {max}",
            out.len()
        );
        Ok(out)
    }

    /// The public key at [`AK_HANDLE`].
    pub fn attestation_key(&mut self) -> Result<AkState> {
        let ph = TpmHandle::Persistent(PersistentTpmHandle::new(AK_HANDLE).expect("valid"));
        let obj = match self
            .ctx()
            .execute_without_session(|c| c.tr_from_tpm_public(ph))
        {
            Ok(h) => h,
            Err(e) if is_handle_error(&e) => return Ok(AkState::Absent),
            Err(e) => return Err(classify("ReadPublic", e)),
        };
        let r = self
            .ctx()
            .execute_without_session(|c| c.read_public(obj.into()))
            .map_err(|e| classify("ReadPublic", e));
        let mut obj = obj;
        let _ = self.ctx().tr_close(&mut obj);
        Ok(match r?.0 {
            Public::Rsa {
                parameters, unique, ..
            } => {
                let e = match parameters.exponent().value() {
                    0 => 65537,
                    e => e,
                };
                AkState::Rsa(RsaPub::new(unique.value(), &e.to_be_bytes()))
            }
            Public::Ecc { .. } => AkState::NotRsa("an ECC key".into()),
            _ => AkState::NotRsa("not an asymmetric key".into()),
        })
    }
}
