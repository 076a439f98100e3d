/*
 * tpmrm_swtpm.c: an LD_PRELOAD shim that points Debian 12's systemd-tpm2
 * LUKS2 token plugin (libcryptsetup-token-systemd-tpm2.so, systemd 252) at a
 * swtpm, so `cryptsetup open --token-only --token-type systemd-tpm2` can run
 * on a host without a TPM. Test and bench use only (tests/common/systemd_tpm2.rs
 * compiles and loads it).
 *
 * What it intercepts, and why:
 *
 *   int tpm2_find_device_auto(int log_level, char **ret)
 *
 * The plugin never reads SYSTEMD_TPM2_DEVICE and takes no TCTI option: when
 * cryptsetup calls it (no systemd-cryptsetup parameters), it asks
 * libsystemd-shared-252.so's tpm2_find_device_auto() for a device. That
 * function scans /sys/class/tpmrm and, for its one entry N, answers
 * "/dev/N"; the plugin then hands the answer to tpm2_context_init(), which
 * splits "DRIVER:CONF" at the first ':' (no ':' means the "device" driver),
 * dlopen()s libtss2-tcti-DRIVER.so.0 and initialises it with CONF. This host
 * has no /sys/class/tpmrm, so the plugin fails with "TPM2 device not found".
 *
 * The plugin imports tpm2_find_device_auto from libsystemd-shared (a dynamic,
 * PLT-bound symbol: `nm -D` shows `U tpm2_find_device_auto@SD_SHARED`), so a
 * preloaded definition takes its place. This one answers the TCTI string in
 * the environment variable TPMRM_SWTPM_TCTI, e.g.
 * "swtpm:host=127.0.0.1,port=2321" -- the same form systemd-cryptenroll's
 * --tpm2-device= takes. Everything after the discovery is systemd's own
 * code: tpm2_context_init loads tpm2-tss's swtpm TCTI itself, and the
 * session, PolicyPCR, policy-digest check and Unseal run unchanged.
 *
 * (Redirecting opendir("/sys/class/tpmrm") alone would not do: the entry name
 * becomes "/dev/NAME", which can never carry a "swtpm:" driver prefix, so the
 * device TCTI would have to be swapped as well. One symbol is simpler.)
 *
 * Without TPMRM_SWTPM_TCTI (or with it empty) the call goes to the real
 * function, so the shim changes nothing unless asked to.
 *
 * The answer is returned as the real function returns it: a malloc()ed
 * string the caller frees, and 0, or a negative errno.
 *
 * Build: cc -shared -fPIC -O2 -o tpmrm_swtpm.so tpmrm_swtpm.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef int (*find_device_fn)(int, char **);

int tpm2_find_device_auto(int log_level, char **ret)
{
    const char *tcti = getenv("TPMRM_SWTPM_TCTI");

    if (tcti == NULL || tcti[0] == '\0') {
        find_device_fn real =
            (find_device_fn)dlsym(RTLD_NEXT, "tpm2_find_device_auto");
        return real != NULL ? real(log_level, ret) : -ENOSYS;
    }
    *ret = strdup(tcti);
    return *ret != NULL ? 0 : -ENOMEM;
}
