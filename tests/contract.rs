//! The documented contract has one source: the `Exit` enum. The exit-code
//! tables of README.md and docs/format.md must be exactly what the enum
//! says (`Exit::summary` and `Exit::detail`), and the initramfs scripts
//! carry no copy of their own (they print what sealroot said).

use sealroot::Exit;

fn read(rel: &str) -> String {
    std::fs::read_to_string(format!("{}/{rel}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// The Markdown table that follows the `## Exit codes` heading.
fn exit_table(doc: &str, rel: &str) -> String {
    let at = doc
        .find("## Exit codes")
        .unwrap_or_else(|| panic!("{rel} has no '## Exit codes' section"));
    doc[at..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn readme_and_format_doc_tables_are_the_exit_enum() {
    for (rel, meaning) in [
        ("README.md", Exit::summary as fn(Exit) -> &'static str),
        ("docs/format.md", Exit::detail),
    ] {
        let want = Exit::markdown_table(meaning);
        let have = exit_table(&read(rel), rel);
        assert_eq!(
            have, want,
            "{rel}'s exit-code table differs from src/error.rs; it should read:\n{want}"
        );
    }
}

#[test]
fn initramfs_scripts_carry_no_exit_code_table() {
    for rel in [
        "initramfs-hooks/scripts/local-top/sealroot",
        "dracut/90sealroot/sealroot-emergency.sh",
    ] {
        let text = read(rel);
        for e in Exit::ALL.iter().filter(|e| e.code() > 1) {
            assert!(
                !text.contains(e.summary()),
                "{rel} repeats the meaning of exit {}",
                e.code()
            );
        }
        let table = text.lines().filter(|l| {
            let t = l.trim_start();
            t.split_once(')')
                .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        });
        assert_eq!(table.count(), 0, "{rel} has a case table of exit codes");
    }
}

/// The binary's `--help` lists the codes from the same enum.
#[test]
fn help_lists_every_exit_code() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sealroot"))
        .arg("--help")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for e in Exit::ALL {
        assert!(
            text.contains(&format!("{:>2}  {}", e.code(), e.summary())),
            "--help lacks exit {}: {text}",
            e.code()
        );
    }
}

/// The QEMU harness names the codes it expects (`expect_sealroot_rc
/// PcrMismatch`) and reads their values from src/error.rs.
#[test]
fn harness_names_exit_codes() {
    let dir = format!("{}/qemu-harness", env!("CARGO_MANIFEST_DIR"));
    let mut scripts = vec![];
    for sub in ["", "/lib"] {
        for e in std::fs::read_dir(format!("{dir}{sub}")).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() {
                scripts.push(p);
            }
        }
    }
    for p in scripts {
        let text = std::fs::read_to_string(&p).unwrap_or_default();
        for (n, line) in text.lines().enumerate() {
            let bare = line
                .split("expect_sealroot_rc ")
                .nth(1)
                .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()));
            assert!(!bare, "{}:{}: a bare exit code: {line}", p.display(), n + 1);
        }
    }
}

/// Every integration starts sealroot with its allocator tunables already
/// set, so the boot path never re-executes (src/sys/harden.rs).
#[test]
fn integrations_start_sealroot_with_the_allocator_tunables() {
    let line = format!("GLIBC_TUNABLES={}", sealroot::sys::harden::ALLOC_TUNABLES);
    for rel in [
        "initramfs-hooks/scripts/sealroot-functions",
        "dracut/90sealroot/sealroot.service",
        "dracut/90sealroot/sealroot-lib.sh",
        "qemu-harness/guest/init",
    ] {
        assert!(read(rel).contains(&line), "{rel} does not set {line}");
    }
}
