//! Option checks: every option is checked in one place (the CLI's value
//! parsers), before anything is touched, and a bad value is a usage error
//! (exit 2) that names the option. No TPM is needed: nothing gets that far.

mod common;
use common::*;
use sealroot::Exit;

/// A mapping name becomes `/dev/mapper/NAME`: no `/`, no control
/// characters (a newline or escape would forge log lines and console
/// output), no leading `-` (the scripts pass it to dmsetup), not `.` or
/// `..`, at most 127 bytes, not empty. `unlock`, `ephemeral` and
/// `verity` take `--name`; all three refuse the same names.
#[test]
fn bad_mapping_names_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let img = blank(dir.path(), "blank.img", 1);
    let hash = "ab".repeat(32);
    let long = "n".repeat(128);
    let bad_names = [
        "a\u{1}b",
        "a\nb",
        "a\tb",
        "esc\u{1b}[2J",
        "a/b",
        "",
        &long,
        "-x",
        "--version",
        ".",
        "..",
    ];
    for bad in bad_names {
        // `--name=VALUE`, so that a value starting with '-' is the name.
        let name = format!("--name={bad}");
        for args in [
            vec!["unlock", "--device", p(&img), "--dry-run", &name],
            vec!["ephemeral", "--device", p(&img), "--dry-run", &name],
            vec![
                "verity",
                "--data-device",
                p(&img),
                "--hash-device",
                p(&img),
                "--root-hash",
                &hash,
                &name,
            ],
        ] {
            let r = sealroot(&args);
            r.assert_exit(Exit::Usage);
            assert!(r.stderr.contains("--name"), "{:?} {bad:?}: {r:?}", args[0]);
        }
    }
    // The same rule as the boot configuration's (one function for both).
    for ok in ["root", "luks-0b7a", "data disk", &"n".repeat(127)] {
        Args::new("ephemeral")
            .opt("device", &img)
            .arg("--dry-run")
            .opt("name", ok)
            .run()
            .assert_exit(Exit::Ok);
    }
}

/// Seconds are checked by one parser for every option that takes them.
#[test]
fn seconds_out_of_range_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let img = blank(dir.path(), "blank.img", 1);
    for bad in ["-1", "3601", "nan", "inf", "x", ""] {
        // `--opt=VALUE`: a value that starts with '-' is not an option.
        let tpm_timeout = format!("--tpm-timeout={bad}");
        let device_timeout = format!("--device-timeout={bad}");
        for (args, opt) in [
            (
                vec!["status", "--device", p(&img), &tpm_timeout],
                "--tpm-timeout",
            ),
            (
                vec!["boot", "--dry-run", &device_timeout],
                "--device-timeout",
            ),
        ] {
            let r = sealroot(&args);
            assert_eq!(r.exit(), Some(Exit::Usage), "{opt} {bad:?}: {r:?}");
            assert!(r.stderr.contains(opt), "{opt} {bad:?}: {r:?}");
        }
    }
}

/// PCR lists are checked by one parser for every option that takes them.
#[test]
fn bad_pcr_lists_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let img = blank(dir.path(), "blank.img", 1);
    let key = dir.path().join("key");
    std::fs::write(&key, "k").unwrap();
    for bad in ["24", "0,,4", "a", "3-1", ""] {
        for args in [
            vec![
                "enroll",
                "--device",
                p(&img),
                "--unlock-key-file",
                p(&key),
                "--pcrs",
                bad,
            ],
            vec!["unlock", "--device", p(&img), "--name", "x", "--pcrs", bad],
            vec!["reseal", "--device", p(&img), "--pcrs", bad],
            vec!["predict", "--initrd", p(&key), "--pcrs", bad],
        ] {
            let r = sealroot(&args);
            r.assert_exit(Exit::Usage);
            assert!(r.stderr.contains("--pcrs"), "{:?} {bad:?}: {r:?}", args[0]);
        }
    }
}
