//! Raw TPM commands (tpm2-tools) that try to unseal a token without sealroot.
