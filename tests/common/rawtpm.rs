//! Raw TPM commands (tpm2-tools) that try to unseal a token without sealroot.
//!
//! What any code running after sealroot could do with the TPM: load the
//! sealed object of a token under the SRK, satisfy its PolicyPCR (and
//! PolicyAuthValue with the PIN) and unseal. PCR-mode tokens only; a
//! signed-policy token (with "authorize") is refused here.

use super::Swtpm;
use base64::Engine as _;
use std::process::Command;

const B64: base64::engine::general_purpose::GeneralPurpose =
    base64::engine::general_purpose::STANDARD;

/// sealroot's persistent SRK handle (src/tpm/srk.rs).
pub const SRK: &str = "0x81000001";

/// Run `tpm2_ARGS[0] ARGS[1..]` against `tpm`; stdout on success, the
/// command and its stderr on failure.
pub fn try_tpm2(tpm: &Swtpm, args: &[&str]) -> Result<Vec<u8>, String> {
    let out = Command::new(format!("tpm2_{}", args[0]))
        .args(&args[1..])
        .env("TPM2TOOLS_TCTI", tpm.tcti())
        .env("TSS2_LOG", "all+NONE")
        .output()
        .map_err(|e| format!("tpm2_{}: {e}", args[0]))?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(format!(
            "tpm2_{} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The token's PCR indexes ("pcrs": [{"index": N, "value": HEX}, ...]).
pub fn token_pcrs(token: &serde_json::Value) -> Vec<u32> {
    token["pcrs"]
        .as_array()
        .expect("token has a pcrs list")
        .iter()
        .map(|e| e["index"].as_u64().expect("pcr index") as u32)
        .collect()
}

/// The TPM authValue sealroot derives from a PIN (src/cmd/steps/inputs.rs
/// `pin_auth`): SHA-256("sealroot-pin-v1\0" || PIN). `pin` is the PIN itself
/// (a PIN file's trailing newline is not part of it).
pub fn pin_auth(pin: &str) -> [u8; 32] {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(b"sealroot-pin-v1\0");
    h.update(pin.as_bytes());
    h.finalize().into()
}

/// Read one SHA-256 PCR (hex decoded) with `tpm2_pcrread -o`.
pub fn pcr_read(tpm: &Swtpm, pcr: u32) -> [u8; 32] {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pcr");
    tpm.tpm2(&[
        "pcrread",
        &format!("sha256:{pcr}"),
        "-o",
        out.to_str().unwrap(),
    ]);
    std::fs::read(&out).unwrap().try_into().expect("32 bytes")
}

/// Extend PCR 15 with the token's two self measurements (command line,
/// configuration), as sealroot does, when PCR 15 is still all zero: what a
/// program running after sealroot can do to reach the unseal-time value of
/// a boot in which sealroot never measured. Returns whether it extended.
pub fn replay_self_measurements(tpm: &Swtpm, token: &serde_json::Value) -> bool {
    if pcr_read(tpm, 15) != [0; 32] {
        return false;
    }
    for k in ["cmdline", "config"] {
        let d = token["self_measurements"][k]
            .as_str()
            .expect("token has self_measurements");
        tpm.tpm2(&["pcrextend", &format!("15:sha256={d}")]);
    }
    true
}

/// Unseal `token`'s sealed object with tpm2-tools alone: load it under the
/// SRK at 0x81000001, start a policy session, PolicyPCR over the token's
/// PCRs (their current values), PolicyAuthValue when the token has a PIN,
/// then Unseal with `pin` (see [`pin_auth`]). Returns what the TPM released
/// (sealroot's 32-byte KEK), or the failing step. Transient objects and
/// sessions are flushed afterwards, whatever happened.
pub fn raw_unseal(
    tpm: &Swtpm,
    token: &serde_json::Value,
    pin: Option<&str>,
) -> Result<Vec<u8>, String> {
    assert!(
        token.get("authorize").is_none(),
        "raw_unseal: signed-policy tokens are out of scope"
    );
    let dir = tempfile::tempdir().unwrap();
    let f = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let (public, private, obj, session, out) =
        (f("pub"), f("priv"), f("obj.ctx"), f("s.ctx"), f("out"));
    for (field, path) in [("tpm_public", &public), ("tpm_private", &private)] {
        let b64 = token[field]
            .as_str()
            .ok_or(format!("token has no {field}"))?;
        let bytes = B64.decode(b64).map_err(|e| format!("{field}: {e}"))?;
        std::fs::write(path, bytes).unwrap();
    }
    let pcrs = token_pcrs(token)
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let with_pin = token["pin"].as_bool().unwrap_or(false);
    let auth = match pin {
        Some(p) => format!("session:{session}+hex:{}", hex::encode(pin_auth(p))),
        None => format!("session:{session}"),
    };
    let result = (|| {
        try_tpm2(
            tpm,
            &["load", "-C", SRK, "-u", &public, "-r", &private, "-c", &obj],
        )?;
        try_tpm2(
            tpm,
            &["startauthsession", "--policy-session", "-S", &session],
        )?;
        try_tpm2(
            tpm,
            &["policypcr", "-S", &session, "-l", &format!("sha256:{pcrs}")],
        )?;
        if with_pin {
            try_tpm2(tpm, &["policyauthvalue", "-S", &session])?;
        }
        try_tpm2(tpm, &["unseal", "-c", &obj, "-p", &auth, "-o", &out])?;
        Ok(std::fs::read(&out).unwrap())
    })();
    for which in ["-t", "-l", "-s"] {
        let _ = try_tpm2(tpm, &["flushcontext", which]);
    }
    result
}
