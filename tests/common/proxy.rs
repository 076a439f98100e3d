//! A recording TCP proxy between sealroot and swtpm: every TPM command and
//! response of the data channel is captured (the control channel is
//! forwarded untouched), so tests can search the wire for secrets and
//! count commands.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

#[derive(Default)]
struct Capture {
    /// Per connection: (commands sent, responses received), in order.
    conns: Vec<(Vec<u8>, Vec<u8>)>,
}

pub struct Proxy {
    pub port: u16,
    cap: Arc<Mutex<Capture>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

fn pump(mut from: TcpStream, mut to: TcpStream, sink: Option<(Arc<Mutex<Capture>>, usize, bool)>) {
    let mut buf = [0u8; 8192];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if let Some((cap, idx, is_cmd)) = &sink {
                    let mut c = cap.lock().unwrap();
                    let e = &mut c.conns[*idx];
                    if *is_cmd { &mut e.0 } else { &mut e.1 }.extend_from_slice(&buf[..n]);
                }
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

fn serve(
    l: TcpListener,
    upstream: u16,
    record: Option<Arc<Mutex<Capture>>>,
    stop: Arc<AtomicBool>,
) {
    l.set_nonblocking(true).unwrap();
    while !stop.load(Ordering::Relaxed) {
        match l.accept() {
            Ok((client, _)) => {
                client.set_nonblocking(false).unwrap();
                let server = match TcpStream::connect(("127.0.0.1", upstream)) {
                    Ok(s) => s,
                    Err(_) => continue,
                };
                let idx = record.as_ref().map(|c| {
                    let mut c = c.lock().unwrap();
                    c.conns.push(Default::default());
                    c.conns.len() - 1
                });
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let up = record.clone().map(|c| (c, idx.unwrap(), true));
                let down = record.clone().map(|c| (c, idx.unwrap(), false));
                std::thread::spawn(move || pump(client, server, up));
                std::thread::spawn(move || pump(s2, c2, down));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

impl Proxy {
    /// Proxy ports P, P+1 to swtpm's `upstream`, `upstream + 1`.
    pub fn start(upstream: u16) -> Proxy {
        let (data, ctrl) = loop {
            let d = TcpListener::bind("127.0.0.1:0").unwrap();
            let p = d.local_addr().unwrap().port();
            if let Ok(c) = TcpListener::bind(("127.0.0.1", p + 1)) {
                break (d, c);
            }
        };
        let port = data.local_addr().unwrap().port();
        let cap = Arc::new(Mutex::new(Capture::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (c1, s1, s2) = (cap.clone(), stop.clone(), stop.clone());
        let threads = vec![
            std::thread::spawn(move || serve(data, upstream, Some(c1), s1)),
            std::thread::spawn(move || serve(ctrl, upstream + 1, None, s2)),
        ];
        Proxy {
            port,
            cap,
            stop,
            threads,
        }
    }

    pub fn tcti(&self) -> String {
        format!("swtpm:host=127.0.0.1,port={}", self.port)
    }

    /// Forget what was captured so far.
    pub fn clear(&self) {
        self.cap.lock().unwrap().conns.clear();
    }

    /// Every byte captured, both directions.
    pub fn bytes(&self) -> Vec<u8> {
        let c = self.cap.lock().unwrap();
        c.conns
            .iter()
            .flat_map(|(a, b)| a.iter().chain(b.iter()).copied())
            .collect()
    }

    /// Command codes sent, in order (parsed from the TPM command headers).
    pub fn command_codes(&self) -> Vec<u32> {
        let c = self.cap.lock().unwrap();
        let mut out = Vec::new();
        for (cmds, _) in &c.conns {
            let mut i = 0;
            while i + 10 <= cmds.len() {
                let size = u32::from_be_bytes(cmds[i + 2..i + 6].try_into().unwrap()) as usize;
                out.push(u32::from_be_bytes(cmds[i + 6..i + 10].try_into().unwrap()));
                if size < 10 {
                    break;
                }
                i += size;
            }
        }
        out
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// TPM2 command code names for readable reports.
pub fn cc_name(cc: u32) -> &'static str {
    match cc {
        0x131 => "CreatePrimary",
        0x120 => "EvictControl",
        0x153 => "Create",
        0x157 => "Load",
        0x15E => "Unseal",
        0x173 => "ReadPublic",
        0x176 => "StartAuthSession",
        0x17E => "PCR_Read",
        0x17F => "PolicyPCR",
        0x16B => "PolicyAuthValue",
        0x182 => "PCR_Extend",
        0x165 => "FlushContext",
        0x17B => "GetRandom",
        0x17A => "GetCapability",
        0x189 => "PolicyGetDigest",
        0x144 => "Startup",
        0x149 => "PolicyNV",
        0x16A => "PolicyAuthorize",
        0x167 => "LoadExternal",
        0x177 => "VerifySignature",
        0x169 => "NV_ReadPublic",
        0x14E => "NV_Read",
        _ => "other",
    }
}

/// Does `needle` occur anywhere in `hay`?
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}
