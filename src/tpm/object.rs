//! The sealed object as the TPM edge receives it: the marshalled public
//! and private areas, parsed for loading, and (signed-policy volumes) the
//! key and signed policy the unseal needs.

use crate::formats::signed_policy::SignedPolicy;
use crate::pcr::signer::PublicKey;
use crate::{Error, Result};
use tss_esapi::structures::{Private, Public};
use tss_esapi::traits::UnMarshall;

/// A signed-policy object's key and the signed policy this boot's PCRs
/// satisfy (checked in software already; the TPM checks it again).
#[derive(Clone, Copy)]
pub struct Authorization<'a> {
    pub key: &'a PublicKey,
    pub policy: &'a SignedPolicy,
}

/// A sealed object's TPM2B_PUBLIC.
pub(crate) fn parse_public(bytes: &[u8]) -> Result<Public> {
    tss_esapi::structures::PublicBuffer::unmarshall(bytes)
        .and_then(Public::try_from)
        .map_err(|e| Error::blob("sealed object", format!("TPM2B_PUBLIC does not parse: {e}")))
}

/// A sealed object's TPM2B_PRIVATE (the blob checked its size field).
pub(crate) fn parse_private(bytes: &[u8]) -> Result<Private> {
    Private::try_from(bytes.get(2..).unwrap_or_default().to_vec())
        .map_err(|e| Error::blob("sealed object", format!("TPM2B_PRIVATE: {e}")))
}

/// The TPM refused to load the object: it is corrupt, or another TPM's.
pub(crate) fn rejected(e: impl std::fmt::Display) -> Error {
    Error::blob(
        "sealed object",
        format!("the TPM rejected it (corrupt, or sealed by another TPM): {e}"),
    )
}
