//! The `/dev/sev-guest` edge: ask the AMD secure processor for an
//! attestation report carrying caller-chosen `report_data`
//! (`SNP_GET_REPORT`, linux/include/uapi/linux/sev-guest.h).
//!
//! The `sev` crate's `Firmware` opens the fixed path `/dev/sev-guest`;
//! sealroot takes the path as a parameter (so tests can point it elsewhere)
//! and issues the same ioctl itself. This path cannot run without SNP
//! hardware; what the tests show is that a missing device or one that is not
//! an SNP guest device is reported cleanly (docs/platform.md).

use crate::{Error, Result};
use std::os::fd::AsRawFd;
use std::path::Path;

/// Default device.
pub const DEFAULT_DEVICE: &str = "/dev/sev-guest";

/// `struct snp_report_req`.
#[repr(C)]
struct ReportReq {
    user_data: [u8; 64],
    vmpl: u32,
    rsvd: [u8; 28],
}

/// `struct snp_report_resp`: the firmware's `MSG_REPORT_RSP`.
#[repr(C)]
struct ReportResp {
    data: [u8; 4000],
}

/// `struct snp_guest_request_ioctl`.
#[repr(C)]
struct GuestRequest {
    msg_version: u8,
    req_data: u64,
    resp_data: u64,
    /// `exitinfo2`: firmware error (low 32 bits), VMM error (high 32 bits).
    exitinfo2: u64,
}

const _: () = assert!(std::mem::size_of::<ReportReq>() == 96);
const _: () = assert!(std::mem::size_of::<GuestRequest>() == 32);

/// `_IOWR('S', 0x0, struct snp_guest_request_ioctl)`.
const SNP_GET_REPORT: u64 = (3 << 30) | ((32u64) << 16) | ((b'S' as u64) << 8);

/// Request a report at VMPL 0 with `report_data` from the device at `path`.
/// Returns the 1184-byte report, unverified.
pub fn get_report(path: &Path, report_data: &[u8; 64]) -> Result<Vec<u8>> {
    let dev = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    let req = ReportReq {
        user_data: *report_data,
        vmpl: 0,
        rsvd: [0; 28],
    };
    let mut resp = Box::new(ReportResp { data: [0; 4000] });
    let mut ioc = GuestRequest {
        msg_version: 1,
        req_data: &req as *const ReportReq as u64,
        resp_data: resp.as_mut() as *mut ReportResp as u64,
        exitinfo2: 0,
    };
    // SAFETY: `dev` is an open file; `ioc` points to `req` (96 bytes, read
    // by the kernel) and `resp` (4000 bytes, written by the kernel), laid out
    // as the kernel's `snp_report_req`/`snp_report_resp`, and all three live
    // until the call returns. A device that does not implement the request
    // fails with ENOTTY without touching the buffers.
    let rc = unsafe {
        libc::ioctl(
            dev.as_raw_fd(),
            SNP_GET_REPORT as libc::Ioctl,
            &mut ioc as *mut GuestRequest,
        )
    };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        return Err(Error::Platform(format!(
            "evidence check failed: SNP_GET_REPORT on {}: {err} (firmware error 0x{:x}, VMM error 0x{:x})",
            path.display(),
            ioc.exitinfo2 & 0xffff_ffff,
            ioc.exitinfo2 >> 32
        )));
    }
    parse_response(&resp.data)
}

/// `MSG_REPORT_RSP`: u32 status, u32 report size, 24 reserved, report.
fn parse_response(d: &[u8]) -> Result<Vec<u8>> {
    let status = u32::from_le_bytes(d[0..4].try_into().expect("4 bytes"));
    let size = u32::from_le_bytes(d[4..8].try_into().expect("4 bytes")) as usize;
    if status != 0 {
        return Err(Error::Platform(format!(
            "evidence check failed: the SNP firmware answered status 0x{status:x}"
        )));
    }
    if size != crate::attest::snp_report::REPORT_LEN {
        return Err(Error::Platform(format!(
            "evidence check failed: the SNP firmware returned a {size}-byte report"
        )));
    }
    Ok(d[32..32 + size].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_number_matches_the_kernel() {
        // _IOWR('S', 0, 32 bytes) as computed by <linux/ioctl.h>.
        assert_eq!(SNP_GET_REPORT, 0xc020_5300);
    }

    #[test]
    fn missing_device_is_an_io_error_naming_it() {
        let e = get_report(Path::new("/nonexistent/sev-guest"), &[0; 64]).unwrap_err();
        assert_eq!(e.exit(), crate::Exit::Io);
        assert!(e.to_string().contains("/nonexistent/sev-guest"), "{e}");
    }

    #[test]
    fn a_device_that_is_not_sev_guest_fails_cleanly() {
        let e = get_report(Path::new("/dev/null"), &[0; 64]).unwrap_err();
        assert_eq!(e.exit(), crate::Exit::Platform);
        assert!(e.to_string().contains("SNP_GET_REPORT on /dev/null"), "{e}");
    }

    #[test]
    fn response_parsing() {
        let mut d = [0u8; 4000];
        d[4..8].copy_from_slice(&1184u32.to_le_bytes());
        d[32] = 7;
        assert_eq!(parse_response(&d).unwrap()[0], 7);
        d[0] = 0x16;
        assert!(parse_response(&d).is_err());
        d[0] = 0;
        d[4..8].copy_from_slice(&5000u32.to_le_bytes());
        assert!(parse_response(&d).is_err());
    }
}
