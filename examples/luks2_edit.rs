//! `luks2_edit`: what a hostile host does to a LUKS2 image file between
//! two boots, for the QEMU harness (qemu-harness/lib/hostile.sh). The
//! rewrites themselves are the test helper module tests/common/luks2edit.rs
//! (both header copies rewritten, checksums valid), so the harness and
//! `cargo test --test hostile` attack with the same code.
//!
//! ```text
//! luks2_edit null-keyslot IMAGE SLOT VOLUME_KEY_HEX
//!     keyslot SLOT becomes a cipher_null-ecb keyslot holding the AF split
//!     of VOLUME_KEY_HEX, its digest replaced to match (CVE-2025-59054): any
//!     passphrase opens it, to the host's volume key
//! luks2_edit keyslots IMAGE
//!     the keyslot numbers, and each one's area encryption
//! ```
//!
//! Exit 0 on success, 2 on a usage error; a malformed image panics (exit
//! 101), as the helpers do in the tests.

#[allow(dead_code)] // the tests use more of it than this tool
#[path = "../tests/common/luks2edit.rs"]
mod luks2edit;

use std::path::Path;
use std::process::ExitCode;

const USAGE: &str =
    "usage: luks2_edit null-keyslot IMAGE SLOT VOLUME_KEY_HEX\n       luks2_edit keyslots IMAGE";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["null-keyslot", image, slot, key_hex] => {
            let (Ok(slot), Ok(key)) = (slot.parse::<u32>(), hex::decode(key_hex)) else {
                eprintln!("luks2_edit: SLOT must be a number and VOLUME_KEY_HEX hex\n{USAGE}");
                return ExitCode::from(2);
            };
            if key.is_empty() {
                eprintln!("luks2_edit: empty volume key\n{USAGE}");
                return ExitCode::from(2);
            }
            luks2edit::null_cipher_keyslot(Path::new(image), slot, &key);
            println!(
                "keyslot {slot}: cipher_null-ecb, volume key {} bytes of the host's choosing",
                key.len()
            );
            ExitCode::SUCCESS
        }
        ["keyslots", image] => {
            let h = luks2edit::Header::read(Path::new(image));
            for (id, ks) in h.json["keyslots"].as_object().into_iter().flatten() {
                println!("{id} {}", ks["area"]["encryption"].as_str().unwrap_or("?"));
            }
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}
