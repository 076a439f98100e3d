//! sealroot's two NV counters. The signed-policy revocation counter at
//! [`COUNTER_INDEX`], whose value PolicyNV compares with a policy's
//! version, so the TPM itself refuses revoked policies
//! (docs/signed-policy.md). The re-keying counter at
//! [`REKEY_COUNTER_INDEX`], incremented when a first-boot re-keying
//! finishes, so a LUKS2 header the host replays from before that is never
//! resumed (docs/first-boot.md#replayed-headers): the disk is the host's,
//! the TPM's NV is not.

use super::srk::{check_srk_name, Srk};
use super::{classify, is_handle_error, tpm_err, Tpm};
use crate::pcr::policy::{self, COUNTER_INDEX, REKEY_COUNTER_INDEX};
use crate::{Error, Result};
use log::info;
use tss_esapi::attributes::NvIndexAttributesBuilder;
use tss_esapi::constants::NvIndexType;
use tss_esapi::constants::SessionType;
use tss_esapi::handles::{NvIndexHandle, NvIndexTpmHandle, ObjectHandle, TpmHandle};
use tss_esapi::interface_types::algorithm::HashingAlgorithm;
use tss_esapi::interface_types::resource_handles::{NvAuth, Provision};
use tss_esapi::interface_types::session_handles::AuthSession;
use tss_esapi::structures::NvPublicBuilder;

/// Which of sealroot's NV counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    /// The signed-policy revocation counter.
    Revocation,
    /// The first-boot re-keying counter.
    Rekey,
}

impl Counter {
    /// Its NV index.
    pub fn index(self) -> u32 {
        match self {
            Counter::Revocation => COUNTER_INDEX,
            Counter::Rekey => REKEY_COUNTER_INDEX,
        }
    }

    fn what(self) -> &'static str {
        match self {
            Counter::Revocation => "revocation counter",
            Counter::Rekey => "re-keying counter",
        }
    }

    fn missing(self) -> Error {
        let msg = format!(
            "the TPM has no sealroot {} at NV {:#010x} (cleared TPM, or the volume was enrolled with another TPM)",
            self.what(),
            self.index()
        );
        match self {
            Counter::Revocation => Error::PolicyRefused(msg),
            Counter::Rekey => Error::TpmIdentity(msg),
        }
    }
}

impl Tpm {
    fn counter_tpm_handle(c: Counter) -> TpmHandle {
        TpmHandle::NvIndex(NvIndexTpmHandle::new(c.index()).expect("NV range"))
    }

    /// The counter's ESYS handle and TPM name, or `None` when the index
    /// does not exist.
    fn counter_lookup(&mut self, c: Counter) -> Result<Option<(ObjectHandle, Vec<u8>)>> {
        let h = match self
            .ctx()
            .execute_without_session(|ctx| ctx.tr_from_tpm_public(Self::counter_tpm_handle(c)))
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

    /// The counter's ESYS handle and whether it was written, or `None`
    /// when the index does not exist.
    fn counter(&mut self, c: Counter) -> Result<Option<(NvIndexHandle, bool)>> {
        let Some((h, name)) = self.counter_lookup(c)? else {
            return Ok(None);
        };
        for written in [true, false] {
            if name == policy::counter_name_at(c.index(), written) {
                return Ok(Some((h.into(), written)));
            }
        }
        Err(Error::TpmIdentity(format!(
            "NV index {:#010x} is not sealroot's {} (other attributes; name {}): it cannot be trusted",
            c.index(),
            c.what(),
            hex::encode(name)
        )))
    }

    /// Define (once) and initialise the revocation counter; returns its value.
    pub fn ensure_counter(&mut self) -> Result<u64> {
        self.ensure_counter_at(Counter::Revocation)
    }

    /// Define (once) and initialise counter `c`; returns its value.
    ///
    /// Errors: [`Error::TpmIdentity`] when the index exists with other
    /// attributes; those of NV_DefineSpace, NV_Increment and NV_Read.
    pub fn ensure_counter_at(&mut self, c: Counter) -> Result<u64> {
        let (h, written) = match self.counter(c)? {
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
                    .with_nv_index(NvIndexTpmHandle::new(c.index()).expect("NV range"))
                    .with_index_name_algorithm(HashingAlgorithm::Sha256)
                    .with_index_attributes(attrs)
                    .with_data_area_size(8)
                    .build()
                    .map_err(tpm_err("NV_DefineSpace"))?;
                let h = self
                    .ctx()
                    .execute_with_session(Some(AuthSession::Password), |ctx| {
                        ctx.nv_define_space(Provision::Owner, None, public)
                    })
                    .map_err(tpm_err("NV_DefineSpace"))?;
                info!("defined the {} at NV {:#010x}", c.what(), c.index());
                (h, false)
            }
        };
        if !written {
            self.ctx()
                .execute_with_session(Some(AuthSession::Password), |ctx| {
                    ctx.nv_increment(NvAuth::NvIndex(h), h)
                })
                .map_err(tpm_err("NV_Increment"))?;
        }
        let _ = self.ctx().tr_close(&mut ObjectHandle::from(h));
        self.read_counter_at(c)
    }

    /// Current value of the revocation counter.
    pub fn read_counter(&mut self) -> Result<u64> {
        self.read_counter_at(Counter::Revocation)
    }

    /// Current value of counter `c`.
    ///
    /// Errors: [`Error::PolicyRefused`] (revocation) or
    /// [`Error::TpmIdentity`] (re-keying) when it does not exist or was
    /// never initialised; those of NV_Read.
    pub fn read_counter_at(&mut self, c: Counter) -> Result<u64> {
        self.read_counter_in(c, AuthSession::Password)
    }

    fn read_counter_in(&mut self, c: Counter, session: AuthSession) -> Result<u64> {
        let (h, written) = self.counter(c)?.ok_or_else(|| c.missing())?;
        let r = if !written {
            Err(Error::PolicyRefused(format!(
                "the {} at NV {:#010x} was never initialised (interrupted enroll: run enroll again)",
                c.what(),
                c.index()
            )))
        } else {
            self.ctx()
                .execute_with_session(Some(session), |ctx| {
                    ctx.nv_read(NvAuth::NvIndex(h), h, 8, 0)
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
        self.increment_counter_at(Counter::Revocation)
    }

    /// Increment counter `c` once; returns the new value.
    ///
    /// Errors: as [`Tpm::read_counter_at`]; those of NV_Increment.
    pub fn increment_counter_at(&mut self, c: Counter) -> Result<u64> {
        self.increment_counter_in(c, AuthSession::Password)
    }

    fn increment_counter_in(&mut self, c: Counter, session: AuthSession) -> Result<u64> {
        let (h, _) = self.counter(c)?.ok_or_else(|| c.missing())?;
        let r = self
            .ctx()
            .execute_with_session(Some(session), |ctx| ctx.nv_increment(NvAuth::NvIndex(h), h))
            .map_err(tpm_err("NV_Increment"));
        let _ = self.ctx().tr_close(&mut ObjectHandle::from(h));
        r?;
        self.read_counter_in(c, session)
    }

    /// An HMAC session salted to the SRK at 0x81000001, which must be the
    /// one named `pinned` (the token's): the TPM's answers in it carry an
    /// HMAC under a key only this TPM and sealroot hold, so neither a value
    /// nor a claimed increment can be forged between the two; and the
    /// command's HMAC covers the NV index's name, so the TPM refuses a
    /// command for an index whose name was forged to sealroot.
    fn pinned_session(&mut self, pinned: &[u8]) -> Result<(Srk, AuthSession)> {
        let srk = self.srk(false)?;
        check_srk_name(&srk.name, pinned)?;
        let session = self.salted_session(&srk, SessionType::Hmac)?;
        Ok((srk, session))
    }

    /// [`Tpm::read_counter_at`] in an HMAC session salted to the SRK named
    /// `pinned_srk` (the re-keying token's).
    ///
    /// Errors: as [`Tpm::read_counter_at`]; [`Error::TpmIdentity`] when
    /// the SRK is not the pinned one; a forged answer fails ESYS's HMAC
    /// check ([`Error::Tpm`]).
    pub fn read_counter_authenticated(&mut self, c: Counter, pinned_srk: &[u8]) -> Result<u64> {
        let (_srk, session) = self.pinned_session(pinned_srk)?;
        let r = self.read_counter_in(c, session);
        self.flush_session(session);
        r
    }

    /// [`Tpm::increment_counter_at`] in an HMAC session salted to the SRK
    /// named `pinned_srk`; returns the new value, read in the same session.
    ///
    /// Errors: as [`Tpm::read_counter_authenticated`].
    pub fn increment_counter_authenticated(
        &mut self,
        c: Counter,
        pinned_srk: &[u8],
    ) -> Result<u64> {
        let (_srk, session) = self.pinned_session(pinned_srk)?;
        let r = self.increment_counter_in(c, session);
        self.flush_session(session);
        r
    }

    /// The revocation counter's name as the TPM reports it.
    pub fn counter_name(&mut self) -> Result<Option<Vec<u8>>> {
        Ok(self
            .counter_lookup(Counter::Revocation)?
            .map(|(mut h, name)| {
                let _ = self.ctx().tr_close(&mut h);
                name
            }))
    }
}
