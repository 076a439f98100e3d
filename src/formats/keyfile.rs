//! What key files and PIN files hold, as people store them (pure):
//! a recovery key saved with a line ending, a PIN file written by another
//! system, an invisible character pasted into a PIN.
//!
//! Key files are taken byte for byte, as cryptsetup takes them, except a
//! file whose content has the exact shape of a sealroot recovery key: one
//! trailing `\n` or `\r\n` is dropped from it (a key of that shape never
//! ends in one). PIN files drop the one line ending that ends them (`\n`,
//! `\r\n` or `\r`); a PIN that still holds a control character, or an
//! invisible format character (a byte-order mark, a zero-width space, a
//! direction mark), is refused: it could not be typed at a prompt, and
//! each unlock try with it would cost a dictionary-attack try.

/// The modhex alphabet of recovery keys ([`crate::secret::RecoveryKey`]).
const MODHEX: &[u8] = b"cbdefghijklnrtuv";

/// Whether `b` is exactly a recovery key: 8 groups of 8 modhex characters
/// joined by `-` (71 bytes).
pub fn is_recovery_key(b: &[u8]) -> bool {
    b.len() == 71
        && b.split(|&c| c == b'-')
            .all(|g| g.len() == 8 && g.iter().all(|c| MODHEX.contains(c)))
}

/// A key file's content as the key: every byte, but a recovery key's one
/// trailing line ending (`\n` or `\r\n`) dropped.
pub fn key_from_file(b: &[u8]) -> &[u8] {
    for end in [&b"\r\n"[..], b"\n"] {
        if let Some(k) = b.strip_suffix(end).filter(|k| is_recovery_key(k)) {
            return k;
        }
    }
    b
}

/// The line ending a key ends with, to name when no keyslot accepts it.
pub fn trailing_line_ending(b: &[u8]) -> Option<&'static str> {
    if b.ends_with(b"\r\n") {
        Some("\\r\\n")
    } else if b.ends_with(b"\n") {
        Some("\\n")
    } else if b.ends_with(b"\r") {
        Some("\\r")
    } else {
        None
    }
}

/// A PIN file's content as the PIN: its one final line ending (`\n`,
/// `\r\n` or `\r`) dropped.
pub fn pin_from_file(b: &[u8]) -> &[u8] {
    b.strip_suffix(b"\r\n")
        .or_else(|| b.strip_suffix(b"\n"))
        .or_else(|| b.strip_suffix(b"\r"))
        .unwrap_or(b)
}

/// Invisible Unicode format characters that sneak into copied text.
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

/// Why `pin` cannot be a PIN: it is empty, or holds a control or invisible
/// character (named by its code point and position, never shown).
/// Non-UTF-8 bytes are allowed (a PIN is bytes), but no ASCII control
/// byte among them.
pub fn pin_problem(pin: &[u8]) -> Option<String> {
    if pin.is_empty() {
        return Some("the PIN is empty".into());
    }
    let bad = match std::str::from_utf8(pin) {
        Ok(s) => s
            .chars()
            .enumerate()
            .find(|(_, c)| c.is_control() || invisible(*c))
            .map(|(i, c)| (i, c as u32)),
        Err(_) => pin
            .iter()
            .enumerate()
            .find(|(_, b)| b.is_ascii_control())
            .map(|(i, b)| (i, u32::from(*b))),
    };
    bad.map(|(i, c)| {
        format!(
            "the PIN holds an invisible or control character (U+{c:04X} at character {}); type it again without it (a PIN file may end with one line ending, nothing else)",
            i + 1
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const RK: &str = "cbdefghi-jklnrtuv-cbdefghi-jklnrtuv-cbdefghi-jklnrtuv-cbdefghi-jklnrtuv";

    #[test]
    fn recovery_keys_keep_one_line_ending_out() {
        assert!(is_recovery_key(RK.as_bytes()));
        assert_eq!(key_from_file(format!("{RK}\n").as_bytes()), RK.as_bytes());
        assert_eq!(key_from_file(format!("{RK}\r\n").as_bytes()), RK.as_bytes());
        // Only one, and only for that exact shape.
        let two = format!("{RK}\n\n");
        assert_eq!(key_from_file(two.as_bytes()), two.as_bytes());
        let upper = format!("{}\n", RK.to_uppercase());
        assert_eq!(key_from_file(upper.as_bytes()), upper.as_bytes());
        let short = format!("{}\n", &RK[..70]);
        assert_eq!(key_from_file(short.as_bytes()), short.as_bytes());
        let spaced = format!(" {RK}\n");
        assert_eq!(key_from_file(spaced.as_bytes()), spaced.as_bytes());
        assert_eq!(key_from_file(b"passphrase\n"), b"passphrase\n");
        assert_eq!(trailing_line_ending(b"x\r\n"), Some("\\r\\n"));
        assert_eq!(trailing_line_ending(b"x\n"), Some("\\n"));
        assert_eq!(trailing_line_ending(b"x"), None);
    }

    #[test]
    fn pins_drop_one_line_ending_and_refuse_invisible_characters() {
        for f in [&b"2468\n"[..], b"2468\r\n", b"2468\r", b"2468"] {
            assert_eq!(pin_from_file(f), b"2468", "{f:?}");
        }
        assert_eq!(pin_from_file(b"2468\n\n"), b"2468\n");
        assert!(pin_problem(b"2468").is_none());
        assert!(pin_problem(" pa ss é".as_bytes()).is_none());
        assert!(pin_problem(b"\xff\xfe12").is_none());
        for bad in [
            "\u{feff}2468",
            "24\u{200b}68",
            "2468\n",
            "24\t68",
            "2468\u{7f}",
            "\u{200e}2468",
            "24\u{2060}68",
        ] {
            let e = pin_problem(bad.as_bytes()).expect(bad);
            assert!(e.contains("U+"), "{e}");
        }
        assert!(pin_problem(b"\xff\x1b").unwrap().contains("U+001B"));
        assert!(pin_problem(b"").unwrap().contains("empty"));
    }
}
