//! The unseal of a `systemd-tpm2` token (systemd 252), over raw ESYS, with
//! sealroot's own session rules:
//!
//! CreatePrimary (owner hierarchy, systemd 252's ECC template,
//! [`primary_template`]) → Load the token's object under it → a policy
//! session salted to that primary, parameters encrypted both ways →
//! [signed policy: LoadExternal of the RSA key, PolicyPCR over the signed
//! PCRs, PolicyGetDigest, VerifySignature of the signature JSON's entry
//! for that digest, PolicyAuthorize (empty policyRef)] → PolicyPCR over the
//! literal PCRs → [PolicyAuthValue, the object's authValue SHA-256(PIN)] →
//! PolicyGetDigest compared with the token's `tpm2-policy-hash` → Unseal.
//! This is the order systemd 252's `tpm2_make_policy_session` builds, so
//! the digests agree (systemd 252 `src/shared/tpm2-util.c`).
//!
//! 252 tokens pin no primary (no `tpm2_srk`): the salt goes to the key the
//! TPM returns from CreatePrimary, whose type, name algorithm and
//! attributes are checked against the template. A passive observer of the
//! TPM traffic learns nothing; an active one that forges the CreatePrimary
//! response could read the session (docs/systemd.md).

use super::esys::{check, digest, rc_err, wrap, Attempt, Esys, Ticket};
use super::object::{parse_private, parse_public, rejected};
use crate::formats::systemd_token::{
    find_signature, primary_template, RsaKey, SystemdToken, PRIMARY_ATTRIBUTES,
};
use crate::secret::Key32;
use crate::{Error, Result};
use sha2::{Digest as _, Sha256};
use std::ptr::null_mut;
use tss_esapi::constants::response_code::Tss2ResponseCode;
use tss_esapi::interface_types::algorithm::HashingAlgorithm;
use tss_esapi::structures::{Name, Public, PublicKeyRsa, RsaSignature, Signature};
use tss_esapi::traits::UnMarshall;
use tss_esapi::tss2_esys as sys;

/// What the unseal of a systemd token needs besides the token.
pub struct SystemdAuth<'a> {
    /// SHA-256 of the PIN (a `tpm2-pin` token), as systemd 252 hashes it.
    pub pin: Option<&'a Key32>,
    /// The PCR signature JSON (a signed-policy token), and where it was read.
    pub signature: Option<(&'a [u8], &'a str)>,
}

/// How a systemd unseal failed in a way the caller explains.
pub enum SystemdRefusal {
    /// The session's policy digest is not the token's: a PCR of the
    /// policy differs from its value at enrollment (or, signed, the
    /// signature's PCRs).
    PolicyDigest { current: [u8; 32] },
    /// No signature in the JSON for this boot's signed PCRs.
    NoSignature(String),
    /// Any other error.
    Other(Error),
}

impl From<Error> for SystemdRefusal {
    fn from(e: Error) -> Self {
        SystemdRefusal::Other(e)
    }
}

/// Unseal the secret of `token` on the TPM at `spec` (no other connection
/// may be open). Returns the 32 secret bytes systemd sealed (the keyslot's
/// passphrase is their base64).
///
/// Errors: [`SystemdRefusal::PolicyDigest`] and
/// [`SystemdRefusal::NoSignature`] as above; otherwise
/// [`Error::PinOrLockout`] (wrong PIN, lockout), [`Error::BlobInvalid`]
/// (the TPM rejects the object: corrupt, or another TPM's; unsealed data
/// not 32 bytes), [`Error::PolicyRefused`] (the TPM refuses the signature),
/// [`Error::NoTpm`], [`Error::Tpm`].
pub fn unseal(
    spec: &str,
    token: &SystemdToken,
    auth: SystemdAuth,
) -> std::result::Result<Key32, SystemdRefusal> {
    let mut e = Esys::open(spec)?;
    let primary = e.systemd_primary()?;
    let object = e.load_under(primary, token)?;
    let session = e.policy_session(primary)?;
    if let Some(key) = &token.pubkey {
        e.systemd_authorize(session, key, &token.pubkey_pcrs, auth.signature)?;
    }
    if !token.pcrs.is_empty() {
        let rc = e.policy_pcr(session, &token.pcrs, None)?;
        check("PolicyPCR", rc)?;
    }
    if token.pin {
        e.policy_pin(session, object, auth.pin)?;
    }
    let current = e.policy_digest(session)?;
    if current != token.policy_hash {
        return Err(SystemdRefusal::PolicyDigest { current });
    }
    e.unseal(object, session, false).map_err(|a| match a {
        Attempt::PcrChanged => Error::PolicyRefused(
            "a PCR changed between the policy and the unseal of the systemd-tpm2 token".into(),
        )
        .into(),
        Attempt::Failed(err) => err.into(),
    })
}

impl Esys {
    /// CreatePrimary with systemd 252's template; the returned public area
    /// must be of that template.
    fn systemd_primary(&mut self) -> Result<sys::ESYS_TR> {
        let template: sys::TPM2B_PUBLIC = Public::unmarshall(&primary_template())
            .and_then(TryInto::try_into)
            .map_err(wrap("CreatePrimary"))?;
        let sensitive = sys::TPM2B_SENSITIVE_CREATE::default();
        let outside = sys::TPM2B_DATA::default();
        let creation_pcr = sys::TPML_PCR_SELECTION::default();
        let mut primary = sys::ESYS_TR_NONE;
        let mut out: *mut sys::TPM2B_PUBLIC = null_mut();
        // SAFETY: live context; inputs on the stack; out is freed below.
        let rc = unsafe {
            sys::Esys_CreatePrimary(
                self.ctx,
                sys::ESYS_TR_RH_OWNER,
                sys::ESYS_TR_PASSWORD,
                sys::ESYS_TR_NONE,
                sys::ESYS_TR_NONE,
                &sensitive,
                &template,
                &outside,
                &creation_pcr,
                &mut primary,
                &mut out,
                null_mut(),
                null_mut(),
                null_mut(),
            )
        };
        check("CreatePrimary", rc)?;
        self.flush.push(primary);
        // SAFETY: ESYS returned a valid TPM2B_PUBLIC; read, then freed.
        let (kind, name_alg, attributes) = unsafe {
            let p = &(*out).publicArea;
            let v = (p.type_, p.nameAlg, p.objectAttributes);
            sys::Esys_Free(out.cast());
            v
        };
        if (kind, name_alg, attributes) != (0x0023, 0x000B, PRIMARY_ATTRIBUTES) {
            return Err(Error::TpmIdentity(format!(
                "CreatePrimary returned a key of type {kind:#06x}, nameAlg {name_alg:#06x}, attributes {attributes:#010x}, not systemd's ECC primary"
            )));
        }
        log::debug!(
            "systemd primary key: name {}",
            hex::encode(self.name(primary)?)
        );
        Ok(primary)
    }

    /// Load the token's object under `parent` (empty owner-hierarchy auth).
    fn load_under(&mut self, parent: sys::ESYS_TR, token: &SystemdToken) -> Result<sys::ESYS_TR> {
        let public: sys::TPM2B_PUBLIC = parse_public(&token.public)?
            .try_into()
            .map_err(|err| Error::blob("sealed object", format!("TPM2B_PUBLIC: {err}")))?;
        let private: sys::TPM2B_PRIVATE = parse_private(&token.private)?.into();
        let mut object = sys::ESYS_TR_NONE;
        // SAFETY: live context; inputs are valid structures on the stack.
        let rc = unsafe {
            sys::Esys_Load(
                self.ctx,
                parent,
                sys::ESYS_TR_PASSWORD,
                sys::ESYS_TR_NONE,
                sys::ESYS_TR_NONE,
                &private,
                &public,
                &mut object,
            )
        };
        if rc != 0 {
            return Err(
                if matches!(Tss2ResponseCode::from(rc), Tss2ResponseCode::FormatOne(_)) {
                    rejected(format!("rc {rc:#x}"))
                } else {
                    rc_err("Load", rc)
                },
            );
        }
        self.flush.push(object);
        Ok(object)
    }

    /// The session's current policy digest.
    fn policy_digest(&mut self, session: sys::ESYS_TR) -> Result<[u8; 32]> {
        let mut d: *mut sys::TPM2B_DIGEST = null_mut();
        // SAFETY: live context and session; d is freed below.
        let rc = unsafe {
            sys::Esys_PolicyGetDigest(
                self.ctx,
                session,
                sys::ESYS_TR_NONE,
                sys::ESYS_TR_NONE,
                sys::ESYS_TR_NONE,
                &mut d,
            )
        };
        check("PolicyGetDigest", rc)?;
        // SAFETY: ESYS returned a valid TPM2B_DIGEST; read, then freed.
        let v = unsafe {
            let x = &*d;
            let v = x.buffer[..usize::from(x.size).min(x.buffer.len())].to_vec();
            sys::Esys_Free(d.cast());
            v
        };
        v.try_into().map_err(|_| Error::Tpm {
            command: "PolicyGetDigest",
            detail: "not a SHA-256 digest".into(),
        })
    }

    /// The signed half: the approved policy is PolicyPCR over `pcrs` at
    /// their current values; its signature comes from the JSON.
    fn systemd_authorize(
        &mut self,
        session: sys::ESYS_TR,
        key: &RsaKey,
        pcrs: &[u32],
        signature: Option<(&[u8], &str)>,
    ) -> std::result::Result<(), SystemdRefusal> {
        let rc = self.policy_pcr(session, pcrs, None)?;
        check("PolicyPCR", rc)?;
        let approved = self.policy_digest(session)?;
        let Some((json, origin)) = signature else {
            return Err(SystemdRefusal::NoSignature(
                "no PCR signature file found".into(),
            ));
        };
        let sig = find_signature(json, pcrs, key, &approved)
            .map_err(|e| SystemdRefusal::NoSignature(format!("{origin}: {e}")))?;
        let ticket = self.verify_rsa(key, &approved, &sig)?;
        let name = Name::try_from(key.name()).map_err(wrap("PolicyAuthorize"))?;
        let approved_d = digest(&approved);
        let empty_ref = sys::TPM2B_NONCE::default();
        // SAFETY: live context and session; the ticket came from VerifySignature.
        let rc = unsafe {
            sys::Esys_PolicyAuthorize(
                self.ctx,
                session,
                sys::ESYS_TR_NONE,
                sys::ESYS_TR_NONE,
                sys::ESYS_TR_NONE,
                &approved_d,
                &empty_ref,
                name.as_ref(),
                ticket.0,
            )
        };
        drop(ticket);
        Ok(check("PolicyAuthorize", rc)?)
    }

    /// LoadExternal (owner hierarchy) and VerifySignature of an RSASSA
    /// SHA-256 signature over `approved` (the TPM gets SHA-256(approved),
    /// policyRef being empty).
    fn verify_rsa(&mut self, key: &RsaKey, approved: &[u8; 32], sig: &[u8]) -> Result<Ticket> {
        self.verify_external(
            &key.tpmt_public(),
            || {
                PublicKeyRsa::try_from(sig.to_vec())
                    .and_then(|s| RsaSignature::create(HashingAlgorithm::Sha256, s))
                    .and_then(|s| Signature::RsaSsa(s).try_into())
            },
            &digest(&Sha256::digest(approved)),
            || "the TPM rejected the PCR signature of the systemd-tpm2 token's key".into(),
        )
    }
}

impl super::Tpm {
    /// [`unseal`] over this TPM ([`super::Tpm::released`]: on an exclusive
    /// TPM this connection is closed for the time of the unseal).
    pub fn unseal_systemd(
        &mut self,
        token: &SystemdToken,
        auth: SystemdAuth,
    ) -> std::result::Result<Key32, SystemdRefusal> {
        match self.released(|spec| Ok(unseal(spec, token, auth))) {
            Ok(r) => r,
            Err(e) => Err(SystemdRefusal::Other(e)),
        }
    }
}
