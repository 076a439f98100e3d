//! Where a volume key comes from (pure): recorded in a sealroot token as
//! `key_origin`, bound into the envelope's associated data, reported by
//! `status` (docs/format.md).

/// Where a volume's key comes from, as its token records it (bound into
/// the envelope's associated data). Absent from a token: the image's key.
/// New origins are new variants (re-keying adds one): additive, since an
/// older sealroot refuses a token with an origin it does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOrigin {
    /// The key the image was built with: every clone of the image has it.
    Image,
    /// A fresh key made by this VM when it formatted its state volume.
    VmFormatted,
    /// A fresh key this VM re-encrypted its volume to at its first boot.
    VmRekeyed,
}

impl KeyOrigin {
    /// The token's spelling; `Image` is written as no field.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyOrigin::Image => "image",
            KeyOrigin::VmFormatted => "vm-formatted",
            KeyOrigin::VmRekeyed => "vm-rekeyed",
        }
    }

    /// Parse a token's `key_origin` (never `image`: that is the absence).
    pub fn parse_token(s: &str) -> Result<KeyOrigin, String> {
        match s {
            "vm-formatted" => Ok(KeyOrigin::VmFormatted),
            "vm-rekeyed" => Ok(KeyOrigin::VmRekeyed),
            _ => Err(format!(
                "key_origin {s:?} is not one sealroot knows (vm-formatted, vm-rekeyed)"
            )),
        }
    }

    /// The token field: `None` for the image's key.
    pub fn token_field(self) -> Option<&'static str> {
        match self {
            KeyOrigin::Image => None,
            o => Some(o.as_str()),
        }
    }

    /// Whether no other VM (and nothing the image holds) has this key.
    pub fn private_to_vm(self) -> bool {
        !matches!(self, KeyOrigin::Image)
    }

    /// A volume's origin from its tokens' claims: private only when every
    /// token says so (one token claiming the image's key wins).
    pub fn of_volume(claims: &[KeyOrigin]) -> KeyOrigin {
        match claims.first() {
            Some(&first) if claims.iter().all(|&c| c == first) => first,
            _ => KeyOrigin::Image,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        assert_eq!(
            KeyOrigin::parse_token("vm-formatted"),
            Ok(KeyOrigin::VmFormatted)
        );
        assert_eq!(
            KeyOrigin::parse_token("vm-rekeyed"),
            Ok(KeyOrigin::VmRekeyed)
        );
        assert!(KeyOrigin::parse_token("image").is_err());
        assert_eq!(KeyOrigin::Image.token_field(), None);
        assert!(KeyOrigin::VmFormatted.private_to_vm() && !KeyOrigin::Image.private_to_vm());
        assert_eq!(KeyOrigin::of_volume(&[]), KeyOrigin::Image);
        assert_eq!(
            KeyOrigin::of_volume(&[KeyOrigin::VmFormatted, KeyOrigin::VmFormatted]),
            KeyOrigin::VmFormatted
        );
        assert_eq!(
            KeyOrigin::of_volume(&[KeyOrigin::VmFormatted, KeyOrigin::Image]),
            KeyOrigin::Image
        );
    }
}
