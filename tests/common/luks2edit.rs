//! LUKS2 header rewriter for hostile-host tests (see tests/hostile.rs).
//!
//! The host owns every byte of the disk, the header included: these helpers
//! do to an image file what such a host can do, with valid checksums, so
//! that only sealroot's own allow-list stands in the way. Written from the
//! LUKS2 on-disk format, independently of sealroot's header code (which the
//! tests must not trust to check itself); tests/hostile.rs proves the
//! rewrites with the cryptsetup CLI.
//!
//! Binary header (4096 bytes, big-endian), at 0 (magic `LUKS\xba\xbe`) and at
//! `hdr_size` (magic `SKUL\xba\xbe`), each followed by its JSON area
//! (`hdr_size - 4096` bytes, NUL-padded). The checksum is SHA-256 over the
//! binary header with its csum field zeroed, then the JSON area.

use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

pub const BIN_SIZE: usize = 4096;
const MAGIC_PRIMARY: &[u8; 6] = b"LUKS\xba\xbe";
const MAGIC_SECONDARY: &[u8; 6] = b"SKUL\xba\xbe";
const OFF_HDR_SIZE: usize = 8;
const OFF_SEQID: usize = 16;
const OFF_CSUM_ALG: usize = 72;
const OFF_HDR_OFFSET: usize = 256;
const OFF_CSUM: usize = 448;
const CSUM_LEN: usize = 64;

fn be64(b: &[u8], off: usize) -> u64 {
    u64::from_be_bytes(b[off..off + 8].try_into().unwrap())
}

/// Both copies of a LUKS2 header as read from an image file.
#[derive(Clone, Debug)]
pub struct Header {
    /// The primary copy's JSON, to be edited and written back.
    pub json: Value,
    /// The primary and secondary binary headers (4096 bytes each).
    pub primary: Vec<u8>,
    pub secondary: Vec<u8>,
    /// Size of one copy (binary header and JSON area).
    pub hdr_size: u64,
}

impl Header {
    /// Read both copies; panics unless both have their magic and a valid
    /// checksum.
    pub fn read(path: &Path) -> Header {
        let mut f = std::fs::File::open(path).unwrap();
        let mut primary = vec![0u8; BIN_SIZE];
        f.read_exact(&mut primary).unwrap();
        assert_eq!(
            &primary[..6],
            MAGIC_PRIMARY,
            "{}: no LUKS2 header",
            path.display()
        );
        assert_eq!(u16::from_be_bytes([primary[6], primary[7]]), 2, "not LUKS2");
        let hdr_size = be64(&primary, OFF_HDR_SIZE);
        assert!((16384..=4 << 20).contains(&hdr_size), "hdr_size {hdr_size}");
        let copy = |off: u64| -> Vec<u8> {
            let mut f = std::fs::File::open(path).unwrap();
            let mut b = vec![0u8; hdr_size as usize];
            f.seek(SeekFrom::Start(off)).unwrap();
            f.read_exact(&mut b).unwrap();
            b
        };
        let p = copy(0);
        let s = copy(hdr_size);
        assert_eq!(&s[..6], MAGIC_SECONDARY, "no secondary header");
        for (name, c) in [("primary", &p), ("secondary", &s)] {
            assert_eq!(
                &c[OFF_CSUM_ALG..OFF_CSUM_ALG + 7],
                b"sha256\0",
                "{name} checksum algorithm"
            );
            assert_eq!(
                checksum(&c[..BIN_SIZE], &c[BIN_SIZE..]),
                c[OFF_CSUM..OFF_CSUM + 32],
                "{name} checksum"
            );
        }
        let json = parse_json_area(&p[BIN_SIZE..]);
        Header {
            json,
            primary: p[..BIN_SIZE].to_vec(),
            secondary: s[..BIN_SIZE].to_vec(),
            hdr_size,
        }
    }

    /// The secondary copy's JSON, as on disk.
    pub fn read_secondary_json(path: &Path) -> Value {
        let h = Header::read(path);
        let mut f = std::fs::File::open(path).unwrap();
        let mut b = vec![0u8; h.hdr_size as usize - BIN_SIZE];
        f.seek(SeekFrom::Start(h.hdr_size + BIN_SIZE as u64))
            .unwrap();
        f.read_exact(&mut b).unwrap();
        parse_json_area(&b)
    }

    pub fn seqid(&self) -> u64 {
        be64(&self.primary, OFF_SEQID)
    }

    /// Write `self.json` to both copies, seqid one higher, checksums valid.
    pub fn write(&self, path: &Path) {
        self.write_split(path, &self.json, &self.json);
    }

    /// Write two copies that each look right (own magic, valid checksum,
    /// the same seqid, one higher than before) but carry different JSON.
    pub fn write_split(&self, path: &Path, primary_json: &Value, secondary_json: &Value) {
        let seqid = self.seqid().max(be64(&self.secondary, OFF_SEQID)) + 1;
        let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        for (bin, json, off) in [
            (&self.primary, primary_json, 0),
            (&self.secondary, secondary_json, self.hdr_size),
        ] {
            let mut bin = bin.clone();
            assert_eq!(be64(&bin, OFF_HDR_OFFSET), off, "hdr_offset");
            bin[OFF_SEQID..OFF_SEQID + 8].copy_from_slice(&seqid.to_be_bytes());
            let area = self.json_area(json);
            bin[OFF_CSUM..OFF_CSUM + CSUM_LEN].fill(0);
            let sum = checksum(&bin, &area);
            bin[OFF_CSUM..OFF_CSUM + 32].copy_from_slice(&sum);
            f.seek(SeekFrom::Start(off)).unwrap();
            f.write_all(&bin).unwrap();
            f.write_all(&area).unwrap();
        }
        f.sync_all().unwrap();
    }

    /// `json` serialised into a NUL-padded JSON area of this header's size.
    fn json_area(&self, json: &Value) -> Vec<u8> {
        let mut area = serde_json::to_vec(json).unwrap();
        let size = self.hdr_size as usize - BIN_SIZE;
        assert!(
            area.len() < size,
            "JSON of {} bytes does not fit",
            area.len()
        );
        area.resize(size, 0);
        area
    }

    /// End of the keyslots area (where the data may start): both header
    /// copies, then `config.keyslots_size` bytes.
    pub fn keyslots_end(&self) -> u64 {
        2 * self.hdr_size + num(&self.json["config"]["keyslots_size"])
    }

    /// Id of the digest that keyslot `slot` belongs to.
    pub fn digest_of(&self, slot: u32) -> String {
        let s = slot.to_string();
        self.json["digests"]
            .as_object()
            .unwrap()
            .iter()
            .find(|(_, d)| {
                d["keyslots"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|k| k.as_str() == Some(&s))
            })
            .map(|(id, _)| id.clone())
            .unwrap_or_else(|| panic!("keyslot {slot} has no digest"))
    }

    /// Point keyslot `slot`'s digest at `volume_key`: PBKDF2-SHA256 with a
    /// fresh salt, 1000 iterations, 32 bytes (what cryptsetup compares a
    /// keyslot's output with). Every other keyslot of that digest stops
    /// opening, as it would for a host that replaced the volume.
    pub fn set_digest(&mut self, slot: u32, volume_key: &[u8]) {
        let id = self.digest_of(slot);
        let salt = random(32);
        let d = &mut self.json["digests"][&id];
        d["type"] = "pbkdf2".into();
        d["hash"] = "sha256".into();
        d["iterations"] = 1000.into();
        d["salt"] = B64.encode(&salt).into();
        d["digest"] = B64.encode(pbkdf2_sha256(volume_key, &salt, 1000)).into();
    }

    /// An unused, 4096-aligned stretch of `size` bytes at the end of the
    /// keyslots area, overlapping no keyslot's area.
    pub fn free_area_at_end(&self, size: u64) -> u64 {
        let off = (self.keyslots_end() - size) & !4095;
        for (id, ks) in self.json["keyslots"].as_object().unwrap() {
            let (o, s) = (num(&ks["area"]["offset"]), num(&ks["area"]["size"]));
            assert!(
                o + s <= off || o >= off + size,
                "keyslot {id}'s area overlaps the end of the keyslots area"
            );
        }
        off
    }
}

/// A decimal-string or number JSON field as u64.
pub fn num(v: &Value) -> u64 {
    match v {
        Value::String(s) => s.parse().unwrap(),
        Value::Number(n) => n.as_u64().unwrap(),
        other => panic!("not a number: {other}"),
    }
}

fn parse_json_area(area: &[u8]) -> Value {
    let end = area.iter().position(|&b| b == 0).unwrap_or(area.len());
    serde_json::from_slice(&area[..end]).unwrap()
}

fn checksum(bin: &[u8], area: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(&bin[..OFF_CSUM]);
    h.update([0u8; CSUM_LEN]);
    h.update(&bin[OFF_CSUM + CSUM_LEN..BIN_SIZE]);
    h.update(area);
    h.finalize().into()
}

pub fn random(n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b).unwrap();
    b
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    for p in parts {
        inner.update(p);
    }
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// PBKDF2-HMAC-SHA256, one 32-byte block (RFC 8018).
pub fn pbkdf2_sha256(pass: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut u = hmac_sha256(pass, &[salt, &1u32.to_be_bytes()]);
    let mut t = u;
    for _ in 1..iterations {
        u = hmac_sha256(pass, &[&u]);
        t.iter_mut().zip(u).for_each(|(a, b)| *a ^= b);
    }
    t
}

/// The LUKS anti-forensic diffuser (sha256): each 32-byte block `j` (the
/// last may be shorter) becomes `sha256(be32(j) || block)`, truncated.
fn diffuse(buf: &mut [u8]) {
    for (j, block) in buf.chunks_mut(32).enumerate() {
        let mut h = Sha256::new();
        h.update((j as u32).to_be_bytes());
        h.update(&*block);
        let d = h.finalize();
        let n = block.len();
        block.copy_from_slice(&d[..n]);
    }
}

/// LUKS AF split of `key` into `stripes` stripes (sha256 diffuser).
pub fn af_split(key: &[u8], stripes: usize) -> Vec<u8> {
    let n = key.len();
    let mut out = random(n * stripes);
    let mut buf = vec![0u8; n];
    for i in 0..stripes - 1 {
        buf.iter_mut()
            .zip(&out[i * n..(i + 1) * n])
            .for_each(|(b, d)| *b ^= d);
        diffuse(&mut buf);
    }
    out[(stripes - 1) * n..]
        .iter_mut()
        .zip(key.iter().zip(&buf))
        .for_each(|(o, (k, b))| *o = k ^ b);
    out
}

/// Inverse of [`af_split`] (for the helper's own check).
pub fn af_merge(split: &[u8], key_len: usize) -> Vec<u8> {
    let stripes = split.len() / key_len;
    let mut buf = vec![0u8; key_len];
    for i in 0..stripes - 1 {
        buf.iter_mut()
            .zip(&split[i * key_len..(i + 1) * key_len])
            .for_each(|(b, d)| *b ^= d);
        diffuse(&mut buf);
    }
    buf.iter()
        .zip(&split[(stripes - 1) * key_len..])
        .map(|(b, s)| b ^ s)
        .collect()
}

fn write_at(path: &Path, off: u64, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(off)).unwrap();
    f.write_all(bytes).unwrap();
    f.sync_all().unwrap();
}

/// Keyslot `slot` re-pointed at a fresh area at the end of the keyslots
/// area holding the AF split of `volume_key` (4000 stripes, sha256) as
/// `seal` turns it into area bytes (given the rewritten keyslot JSON), its
/// area encryption `encryption` with an `area_key_size`-byte key, and its
/// digest matched to `volume_key`. The old area's bytes stay as they were,
/// so a reader that took them before the rewrite still finds the real
/// keyslot there.
pub fn plant_key(
    path: &Path,
    slot: u32,
    volume_key: &[u8],
    encryption: &str,
    area_key_size: u64,
    seal: impl FnOnce(&Value, Vec<u8>) -> Vec<u8>,
) {
    let mut h = Header::read(path);
    let split = af_split(volume_key, 4000);
    let size = (split.len() as u64).div_ceil(4096) * 4096;
    let off = h.free_area_at_end(size);
    let ks = &mut h.json["keyslots"][slot.to_string()];
    assert!(ks.is_object(), "no keyslot {slot}");
    ks["key_size"] = volume_key.len().into();
    ks["af"] = json!({"type": "luks1", "stripes": 4000, "hash": "sha256"});
    ks["area"]["offset"] = off.to_string().into();
    ks["area"]["size"] = size.to_string().into();
    ks["area"]["encryption"] = encryption.into();
    ks["area"]["key_size"] = area_key_size.into();
    let bytes = seal(ks, split);
    h.set_digest(slot, volume_key);
    write_at(path, off, &bytes);
    h.write(path);
}

/// The attack: keyslot `slot` becomes a `cipher_null-ecb` keyslot whose
/// area holds the plaintext AF split of `volume_key`, with the digest to
/// match. ANY passphrase then opens that keyslot and yields `volume_key`
/// (where libcryptsetup can reach the kernel's `ecb(cipher_null)`; its
/// OpenSSL fallback has no null cipher).
pub fn null_cipher_keyslot(path: &Path, slot: u32, volume_key: &[u8]) {
    let h = Header::read(path);
    let ks = num(&h.json["keyslots"][slot.to_string()]["area"]["key_size"]);
    plant_key(path, slot, volume_key, "cipher_null-ecb", ks, |_, split| {
        split
    });
}

/// The same without the null cipher: the area still says
/// `aes-xts-plain64`, but the host cannot encrypt under a key derived from
/// a secret it does not know, so it writes its key's split as it is and
/// replaces the digest. The keyslot then opens with no passphrase at all.
pub fn forged_keyslot(path: &Path, slot: u32, volume_key: &[u8]) {
    let h = Header::read(path);
    let ks = num(&h.json["keyslots"][slot.to_string()]["area"]["key_size"]);
    plant_key(path, slot, volume_key, "aes-xts-plain64", ks, |_, split| {
        split
    });
}

/// Read, edit, write back (both copies).
pub fn edit(path: &Path, f: impl FnOnce(&mut Value)) {
    let mut h = Header::read(path);
    f(&mut h.json);
    h.write(path);
}

/// Segment 0 without encryption: the data in plaintext on the host's disk.
pub fn null_cipher_segment(path: &Path) {
    edit(path, |j| {
        j["segments"]["0"]["encryption"] = "cipher_null-ecb".into();
    });
}

/// Keyslot `slot` claims argon2id with `memory_kib` KiB and `time`
/// passes: trying it would exhaust the initramfs's memory or time.
pub fn argon2_keyslot(path: &Path, slot: u32, memory_kib: u64, time: u64) {
    edit(path, |j| {
        let kdf = &mut j["keyslots"][slot.to_string()]["kdf"];
        let salt = kdf["salt"].clone();
        *kdf = json!({
            "type": "argon2id",
            "time": time,
            "memory": memory_kib,
            "cpus": 4,
            "salt": salt,
        });
    });
}

/// A second crypt segment: segment 0 ends after 2 MiB and segment 1 (a
/// copy of it, same cipher and digest) covers the rest of the device.
pub fn second_segment(path: &Path) {
    edit(path, |j| {
        let s0 = j["segments"]["0"].clone();
        let off = num(&s0["offset"]);
        j["segments"]["0"]["size"] = (2u64 << 20).to_string().into();
        let mut s1 = s0;
        s1["offset"] = (off + (2 << 20)).to_string().into();
        s1["iv_tweak"] = ((2u64 << 20) / 512).to_string().into();
        j["segments"]["1"] = s1;
        for d in j["digests"].as_object_mut().unwrap().values_mut() {
            d["segments"].as_array_mut().unwrap().push("1".into());
        }
    });
}

/// A mandatory requirement: `config.requirements.mandatory` =
/// `["online-reencrypt-v2"]` (a reencryption in progress). cryptsetup
/// 2.6 itself rejects this header (no backup segments); [`requirement`]
/// with an unknown name gives one it loads.
pub fn requirement_flag(path: &Path) {
    requirement(path, "online-reencrypt-v2");
}

/// `config.requirements.mandatory` = `[name]`.
pub fn requirement(path: &Path, name: &str) {
    edit(path, |j| {
        j["config"]["requirements"] = json!({ "mandatory": [name] });
    });
}

/// Keyslot `slot`'s area moved past the end of the keyslots area (into
/// the data segment); its bytes are copied along.
pub fn keyslot_area_outside(path: &Path, slot: u32) {
    let mut h = Header::read(path);
    let end = h.keyslots_end();
    let ks = &mut h.json["keyslots"][slot.to_string()]["area"];
    let (off, size) = (num(&ks["offset"]), num(&ks["size"]));
    ks["offset"] = end.to_string().into();
    let mut f = std::fs::File::open(path).unwrap();
    let mut bytes = vec![0u8; size as usize];
    f.seek(SeekFrom::Start(off)).unwrap();
    f.read_exact(&mut bytes).unwrap();
    write_at(path, end, &bytes);
    h.write(path);
}

/// Two copies that each check out (valid checksum, same seqid) but say
/// different things: the secondary's keyslot `slot` has one more PBKDF2
/// iteration (so the copies disagree about how the keyslot opens).
pub fn disagreeing_copies(path: &Path, slot: u32) {
    let h = Header::read(path);
    let mut other = h.json.clone();
    let kdf = &mut other["keyslots"][slot.to_string()]["kdf"];
    let n = match kdf.get("iterations") {
        Some(i) => i.as_u64().unwrap() + 1,
        None => panic!("keyslot {slot} is not PBKDF2"),
    };
    kdf["iterations"] = n.into();
    h.write_split(path, &h.json, &other);
}
