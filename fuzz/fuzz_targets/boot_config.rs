//! Kernel command line and crypttab parsing never panics, whatever it
//! accepts resolves to volumes with valid names and devices, and the shell
//! export the initramfs scripts `eval` is only assignments of quoted words.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sealroot::formats::bootcfg;

/// `'…'` and `\'` pieces only: a POSIX shell word with no expansion.
fn quoted_word(mut v: &str) -> bool {
    while !v.is_empty() {
        if let Some(rest) = v.strip_prefix("\\'") {
            v = rest;
        } else if let Some(rest) = v.strip_prefix('\'') {
            match rest.find('\'') {
                Some(end) => v = &rest[end + 1..],
                None => return false,
            }
        } else {
            return false;
        }
    }
    true
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    // First line: a kernel command line; the rest: a crypttab.
    let (cmdline, tab) = s.split_once('\n').unwrap_or((s, ""));
    let c = bootcfg::parse_cmdline(cmdline);
    let t = bootcfg::parse_crypttab(tab);
    if let (Ok(c), Ok(t)) = (c, t) {
        if let Ok(vols) = bootcfg::resolve(&c, &t) {
            for v in &vols {
                assert!(bootcfg::mapping_name(&v.name).is_ok());
                assert!(v.device.path().is_absolute());
            }
            let out = bootcfg::export(vols.first(), "device:/dev/tpmrm0");
            let mut lines = 0;
            let mut rest = out.as_str();
            // Values may hold newlines inside quotes: split on "\nSEALROOT_".
            while let Some(line) = rest.strip_prefix("SEALROOT_") {
                let (key, tail) = line.split_once('=').expect("KEY=");
                assert!(key.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'));
                let end = tail.find("\nSEALROOT_").map_or(tail.len() - 1, |i| i);
                assert!(quoted_word(&tail[..end]), "{out}");
                rest = &tail[end + 1..];
                lines += 1;
            }
            // NAME, DEVICE, PATH, TCTI, TRIES, PROMPT_TIMEOUT, PROVISION_KEY,
            // POLICY_KEY, BLOB, ON_FAILURE, HEADER, FLAGS, STATE.
            assert!(rest.is_empty() && lines == 14, "{out}");
        }
    }
});
