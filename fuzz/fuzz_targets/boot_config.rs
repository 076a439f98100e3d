//! Kernel command line and crypttab parsing never panics, and whatever it
//! accepts resolves to volumes with valid names and devices.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sealroot::formats::bootcfg;

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
            for v in vols {
                assert!(!v.name.is_empty() && !v.name.contains('/'));
                assert!(v.device.path().is_absolute());
            }
        }
    }
});
