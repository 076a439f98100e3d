//! The recovery prompts of both initramfs integrations keep every typed
//! character but the final newline (leading and trailing blanks, tabs,
//! backslashes), and what they pipe to `sealroot unlock --key-file -` is
//! the key byte for byte.

mod common;
use common::*;
use sealroot::Exit;
use std::io::Write;
use std::process::{Command, Stdio};

const TYPED: &str = "  pass \\ word\t ";

/// Source `lib` in `shell`, run `call` with `input` on standard input;
/// returns standard output.
fn run_prompt(shell: &[&str], lib: &str, call: &str, input: &str) -> String {
    let lib = format!("{}/{lib}", env!("CARGO_MANIFEST_DIR"));
    let mut c = Command::new(shell[0])
        .args(&shell[1..])
        .arg("-c")
        .arg(format!(". \"$1\"; {call}"))
        .arg("sh")
        .arg(&lib)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = c.wait_with_output().unwrap();
    assert!(out.status.success(), "{shell:?} {call}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn both_prompts_keep_every_typed_character_but_the_newline() {
    let input = format!("{TYPED}\nnext line\n");
    for (shell, lib, call) in [
        // initramfs-tools runs busybox sh (read -t) or dash.
        (
            &["busybox", "sh"][..],
            "initramfs-hooks/scripts/sealroot-functions",
            "ask_secret",
        ),
        (
            &["dash"],
            "initramfs-hooks/scripts/sealroot-functions",
            "ask_secret",
        ),
        // dracut runs bash.
        (
            &["bash"],
            "dracut/90sealroot/sealroot-lib.sh",
            "sealroot_ask",
        ),
    ] {
        for timeout in ["0", "30"] {
            if timeout != "0" && shell == ["dash"] {
                continue; // dash has no read -t; the initramfs has busybox
            }
            let call = format!("SEALROOT_PROMPT_TIMEOUT={timeout}; {call} 'key: '");
            let got = run_prompt(shell, lib, &call, &input);
            assert_eq!(got, TYPED, "{shell:?} {lib} timeout {timeout}");
        }
    }
}

/// A root re-keyed at first boot (`SEALROOT_RECOVERY=none` from
/// `--print-config`) gets no recovery prompt: the console is the host's,
/// and the image's keys would open the root under a key the host holds.
#[test]
fn no_recovery_prompt_for_a_rekeyed_root() {
    for (shell, lib, f) in [
        (
            &["busybox", "sh"][..],
            "initramfs-hooks/scripts/sealroot-functions",
            "recovery_offered",
        ),
        (
            &["dash"],
            "initramfs-hooks/scripts/sealroot-functions",
            "recovery_offered",
        ),
        (
            &["bash"],
            "dracut/90sealroot/sealroot-lib.sh",
            "sealroot_recovery_offered",
        ),
    ] {
        for (recovery, rc) in [("none", 1), ("prompt", 0), ("", 0)] {
            let call =
                format!("SEALROOT_NAME=root SEALROOT_RECOVERY='{recovery}'; {f} 2>&1; echo rc=$?");
            let got = run_prompt(shell, lib, &call, "");
            assert!(
                got.ends_with(&format!("rc={rc}\n")),
                "{shell:?} {recovery}: {got}"
            );
            assert_eq!(
                got.contains("no recovery prompt on the console"),
                rc == 1,
                "{shell:?} {recovery}: {got}"
            );
        }
    }
    // And both prompts ask the function first.
    for (file, call) in [
        (
            "initramfs-hooks/scripts/local-top/sealroot",
            "recovery_offered || return 1",
        ),
        (
            "dracut/90sealroot/sealroot-lib.sh",
            "sealroot_recovery_offered || return 1",
        ),
    ] {
        let text =
            std::fs::read_to_string(format!("{}/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        assert!(text.contains(call), "{file}");
    }
}

#[test]
fn the_typed_key_reaches_sealroot_byte_for_byte() {
    let tpm = Swtpm::start();
    let img = Image::with_passphrase(TYPED.as_bytes());
    // The prompts' pipe: printf '%s' "$key" | sealroot unlock --key-file -
    let sh = |key: &str| {
        Command::new("dash")
            .arg("-c")
            .arg("printf '%s' \"$1\" | \"$2\" unlock --device \"$3\" --name x --dry-run --key-file - --tcti \"$4\" --log stderr")
            .arg("sh")
            .arg(key)
            .arg(env!("CARGO_BIN_EXE_sealroot"))
            .arg(&img.path)
            .arg(tpm.tcti())
            .output()
            .unwrap()
    };
    let out = sh(TYPED);
    assert_eq!(
        out.status.code(),
        Some(i32::from(Exit::Ok.code())),
        "{out:?}"
    );
    let out = sh(TYPED.trim());
    assert_eq!(
        out.status.code(),
        Some(i32::from(Exit::Luks.code())),
        "{out:?}"
    );
}
