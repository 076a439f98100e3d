//! The JSON area, parsed strictly into typed fields.
//!
//! serde_json reads the text into a tree that refuses duplicate keys (with
//! two `"encryption"` keys, which one wins depends on the parser; the
//! answer is neither). The tree is then read object by object with the key
//! set of each object fixed, so every refusal names its path
//! (`keyslots.1.kdf.memory`). Shapes, not values, are decided here: the
//! `type` of a keyslot, AF, area, KDF, segment and digest selects which
//! keys may appear, so those types are checked here too; every other value
//! is compared with the allow-list by [`super::allow`].
//!
//! Numbers as LUKS2 writes them: offsets and sizes are decimal strings
//! (they may exceed 2^53), counts and costs are JSON numbers. Both must be
//! whole, non-negative and fit 64 bits; decimal strings must be canonical
//! (`0` or no leading zero). Ids are `"0"` to `"31"`.

use super::Refusal;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;

/// Highest keyslot, token, segment and digest id plus one (cryptsetup's
/// LUKS2_KEYSLOTS_MAX and LUKS2_TOKENS_MAX).
pub const MAX_ID: u32 = 32;

/// The JSON area's content, shaped but not yet compared with the
/// allow-list. Lists are in ascending id order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub keyslots: Vec<RawKeyslot>,
    pub tokens: Vec<RawToken>,
    pub segments: Vec<RawSegment>,
    pub digests: Vec<RawDigest>,
    pub config: RawConfig,
}

/// A keyslot of type `luks2` (AF `luks1`, area `raw`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawKeyslot {
    pub id: u32,
    pub key_size: u64,
    pub priority: Option<u64>,
    pub af_stripes: u64,
    pub af_hash: String,
    pub area_offset: u64,
    pub area_size: u64,
    pub area_encryption: String,
    pub area_key_size: u64,
    pub kdf: RawKdf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawKdf {
    Pbkdf2 {
        hash: String,
        iterations: u64,
        salt: String,
    },
    Argon2 {
        /// `argon2i` or `argon2id`.
        kind: String,
        time: u64,
        memory: u64,
        cpus: u64,
        salt: String,
    },
}

/// A token: only `type` and `keyslots` are read; other keys are its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawToken {
    pub id: u32,
    pub kind: String,
    pub keyslots: Vec<u32>,
    /// Bytes of its compact JSON.
    pub json_len: usize,
}

/// A segment of type `crypt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawSegment {
    pub id: u32,
    pub offset: u64,
    /// `None` = "dynamic".
    pub size: Option<u64>,
    pub iv_tweak: u64,
    pub encryption: String,
    pub sector_size: u64,
    pub integrity: Option<RawIntegrity>,
    /// `None` when absent.
    pub flags: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawIntegrity {
    pub kind: String,
    pub journal_encryption: String,
    pub journal_integrity: String,
}

/// A digest of type `pbkdf2`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawDigest {
    pub id: u32,
    pub keyslots: Vec<u32>,
    pub segments: Vec<u32>,
    pub hash: String,
    pub iterations: u64,
    pub salt: String,
    pub digest: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawConfig {
    pub json_size: u64,
    pub keyslots_size: u64,
    pub flags: Vec<String>,
    /// `requirements.mandatory` (empty when absent).
    pub mandatory: Vec<String>,
}

/// Parse the JSON text of a JSON area.
pub fn parse(text: &str) -> Result<Meta, Refusal> {
    let tree = serde_json::from_str::<Strict>(text)
        .map_err(|e| Refusal::new("json area", e.to_string(), "not valid JSON"))?
        .0;
    let top = Obj::new(String::new(), &tree)?;
    top.only(
        &["keyslots", "tokens", "segments", "digests", "config"],
        &["keyslots", "tokens", "segments", "digests", "config"],
    )?;
    Ok(Meta {
        keyslots: each(&top, "keyslots", keyslot)?,
        tokens: each(&top, "tokens", token)?,
        segments: each(&top, "segments", segment)?,
        digests: each(&top, "digests", digest)?,
        config: config(&top.obj("config")?)?,
    })
}

/// Each member of the object `key`, by ascending id.
fn each<T>(
    top: &Obj<'_>,
    key: &str,
    f: impl Fn(u32, &Obj<'_>) -> Result<T, Refusal>,
) -> Result<Vec<T>, Refusal> {
    let o = top.obj(key)?;
    let mut ids = Vec::new();
    for (k, v) in o.map {
        let id = id(&o.at(k), k)?;
        ids.push((id, Obj::new(o.at(k), v)?));
    }
    ids.sort_by_key(|(id, _)| *id);
    ids.iter().map(|(id, o)| f(*id, o)).collect()
}

fn keyslot(id: u32, o: &Obj<'_>) -> Result<RawKeyslot, Refusal> {
    o.only(
        &["type", "key_size", "af", "area", "kdf", "priority"],
        &["type", "key_size", "af", "area", "kdf"],
    )?;
    o.kind("type", &["luks2"])?;
    let af = o.obj("af")?;
    af.only(&["type", "stripes", "hash"], &["type", "stripes", "hash"])?;
    af.kind("type", &["luks1"])?;
    let area = o.obj("area")?;
    let area_keys = ["type", "offset", "size", "encryption", "key_size"];
    area.only(&area_keys, &area_keys)?;
    area.kind("type", &["raw"])?;
    let kdf = o.obj("kdf")?;
    let kdf = match kdf.kind("type", &["pbkdf2", "argon2i", "argon2id"])? {
        "pbkdf2" => {
            let keys = ["type", "hash", "iterations", "salt"];
            kdf.only(&keys, &keys)?;
            RawKdf::Pbkdf2 {
                hash: kdf.string("hash")?.into(),
                iterations: kdf.number("iterations")?,
                salt: kdf.string("salt")?.into(),
            }
        }
        kind => {
            let keys = ["type", "time", "memory", "cpus", "salt"];
            kdf.only(&keys, &keys)?;
            RawKdf::Argon2 {
                kind: kind.into(),
                time: kdf.number("time")?,
                memory: kdf.number("memory")?,
                cpus: kdf.number("cpus")?,
                salt: kdf.string("salt")?.into(),
            }
        }
    };
    Ok(RawKeyslot {
        id,
        key_size: o.number("key_size")?,
        priority: o
            .opt("priority")
            .map(|_| o.number("priority"))
            .transpose()?,
        af_stripes: af.number("stripes")?,
        af_hash: af.string("hash")?.into(),
        area_offset: area.decimal("offset")?,
        area_size: area.decimal("size")?,
        area_encryption: area.string("encryption")?.into(),
        area_key_size: area.number("key_size")?,
        kdf,
    })
}

fn token(id: u32, o: &Obj<'_>) -> Result<RawToken, Refusal> {
    let json_len = serde_json::to_string(o.map).map_or(usize::MAX, |s| s.len());
    Ok(RawToken {
        id,
        kind: o.string("type")?.into(),
        keyslots: o.ids("keyslots")?,
        json_len,
    })
}

fn segment(id: u32, o: &Obj<'_>) -> Result<RawSegment, Refusal> {
    let required = [
        "type",
        "offset",
        "size",
        "iv_tweak",
        "encryption",
        "sector_size",
    ];
    let mut allowed = required.to_vec();
    allowed.extend(["integrity", "flags"]);
    o.only(&allowed, &required)?;
    o.kind("type", &["crypt"])?;
    let size = match o.string("size")? {
        "dynamic" => None,
        _ => Some(o.decimal("size")?),
    };
    let integrity = match o.opt("integrity") {
        None => None,
        Some(_) => {
            let i = o.obj("integrity")?;
            let keys = ["type", "journal_encryption", "journal_integrity"];
            i.only(&keys, &keys)?;
            Some(RawIntegrity {
                kind: i.string("type")?.into(),
                journal_encryption: i.string("journal_encryption")?.into(),
                journal_integrity: i.string("journal_integrity")?.into(),
            })
        }
    };
    Ok(RawSegment {
        id,
        offset: o.decimal("offset")?,
        size,
        iv_tweak: o.decimal("iv_tweak")?,
        encryption: o.string("encryption")?.into(),
        sector_size: o.number("sector_size")?,
        integrity,
        flags: o.opt("flags").map(|_| o.strings("flags")).transpose()?,
    })
}

fn digest(id: u32, o: &Obj<'_>) -> Result<RawDigest, Refusal> {
    let keys = [
        "type",
        "keyslots",
        "segments",
        "hash",
        "iterations",
        "salt",
        "digest",
    ];
    o.only(&keys, &keys)?;
    o.kind("type", &["pbkdf2"])?;
    Ok(RawDigest {
        id,
        keyslots: o.ids("keyslots")?,
        segments: o.ids("segments")?,
        hash: o.string("hash")?.into(),
        iterations: o.number("iterations")?,
        salt: o.string("salt")?.into(),
        digest: o.string("digest")?.into(),
    })
}

fn config(o: &Obj<'_>) -> Result<RawConfig, Refusal> {
    o.only(
        &["json_size", "keyslots_size", "flags", "requirements"],
        &["json_size", "keyslots_size"],
    )?;
    let mandatory = match o.opt("requirements") {
        None => Vec::new(),
        Some(_) => {
            let r = o.obj("requirements")?;
            r.only(&["mandatory"], &[])?;
            match r.opt("mandatory") {
                None => Vec::new(),
                Some(_) => r.strings("mandatory")?,
            }
        }
    };
    Ok(RawConfig {
        json_size: o.decimal("json_size")?,
        keyslots_size: o.decimal("keyslots_size")?,
        flags: match o.opt("flags") {
            None => Vec::new(),
            Some(_) => o.strings("flags")?,
        },
        mandatory,
    })
}

/// An id: a canonical decimal string below [`MAX_ID`].
fn id(field: &str, s: &str) -> Result<u32, Refusal> {
    match canonical(s) {
        Some(n) if n < u64::from(MAX_ID) => Ok(n as u32),
        _ => Err(Refusal::new(field, s, "not an id (\"0\" to \"31\")")),
    }
}

/// A canonical decimal string (`0`, or digits without a leading zero)
/// that fits 64 bits.
fn canonical(s: &str) -> Option<u64> {
    let digits = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits || (s.len() > 1 && s.starts_with('0')) {
        return None;
    }
    s.parse().ok()
}

/// A JSON value as found, for a refusal.
fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A JSON object at a path.
struct Obj<'a> {
    path: String,
    map: &'a Map<String, Value>,
}

impl<'a> Obj<'a> {
    fn new(path: String, v: &'a Value) -> Result<Self, Refusal> {
        match v {
            Value::Object(map) => Ok(Obj { path, map }),
            other => Err(Refusal::new(
                if path.is_empty() { "json area" } else { &path },
                show(other),
                "not a JSON object",
            )),
        }
    }

    /// The path of `key` in this object.
    fn at(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// Every key is in `allowed` and every key of `required` is present.
    fn only(&self, allowed: &[&str], required: &[&str]) -> Result<(), Refusal> {
        if let Some(k) = self.map.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(Refusal::new(
                self.at(k),
                show(&self.map[k]),
                format!("unknown key (allowed: {})", allowed.join(", ")),
            ));
        }
        match required.iter().find(|k| !self.map.contains_key(**k)) {
            Some(k) => Err(Refusal::new(self.at(k), "(missing)", "required")),
            None => Ok(()),
        }
    }

    fn opt(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key)
    }

    fn get(&self, key: &str) -> Result<&'a Value, Refusal> {
        self.opt(key)
            .ok_or_else(|| Refusal::new(self.at(key), "(missing)", "required"))
    }

    fn obj(&self, key: &str) -> Result<Obj<'a>, Refusal> {
        Obj::new(self.at(key), self.get(key)?)
    }

    fn string(&self, key: &str) -> Result<&'a str, Refusal> {
        match self.get(key)? {
            Value::String(s) => Ok(s),
            other => Err(Refusal::new(self.at(key), show(other), "not a string")),
        }
    }

    /// A string that must be one of `kinds` (a `type` discriminator).
    fn kind(&self, key: &str, kinds: &[&str]) -> Result<&'a str, Refusal> {
        let s = self.string(key)?;
        if !kinds.contains(&s) {
            return Err(Refusal::new(
                self.at(key),
                s,
                format!("not in the allow-list ({})", kinds.join(", ")),
            ));
        }
        Ok(s)
    }

    /// A whole, non-negative JSON number.
    fn number(&self, key: &str) -> Result<u64, Refusal> {
        let v = self.get(key)?;
        v.as_u64().ok_or_else(|| {
            Refusal::new(
                self.at(key),
                show(v),
                "not a whole non-negative JSON number below 2^64",
            )
        })
    }

    /// A decimal string (offsets and sizes).
    fn decimal(&self, key: &str) -> Result<u64, Refusal> {
        let s = self.string(key)?;
        canonical(s).ok_or_else(|| {
            Refusal::new(
                self.at(key),
                s,
                "not a decimal string below 2^64 without leading zeros",
            )
        })
    }

    fn array(&self, key: &str) -> Result<&'a Vec<Value>, Refusal> {
        match self.get(key)? {
            Value::Array(a) => Ok(a),
            other => Err(Refusal::new(self.at(key), show(other), "not an array")),
        }
    }

    /// An array of distinct strings.
    fn strings(&self, key: &str) -> Result<Vec<String>, Refusal> {
        let mut out: Vec<String> = Vec::new();
        for (i, v) in self.array(key)?.iter().enumerate() {
            let field = format!("{}.{i}", self.at(key));
            let Value::String(s) = v else {
                return Err(Refusal::new(field, show(v), "not a string"));
            };
            if out.contains(s) {
                return Err(Refusal::new(field, s, "listed twice"));
            }
            out.push(s.clone());
        }
        Ok(out)
    }

    /// An array of distinct ids.
    fn ids(&self, key: &str) -> Result<Vec<u32>, Refusal> {
        let strings = self.strings(key)?;
        let mut out = Vec::new();
        for (i, s) in strings.iter().enumerate() {
            out.push(id(&format!("{}.{i}", self.at(key)), s)?);
        }
        Ok(out)
    }
}

/// A JSON tree that refuses duplicate object keys.
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(n.into())
    }
    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(n.into())
    }
    fn visit_f64<E>(self, n: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_string()))
    }
    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(k) = map.next_key::<String>()? {
            if out.contains_key(&k) {
                return Err(de::Error::custom(format!("duplicate key {k:?}")));
            }
            let Strict(v) = map.next_value()?;
            out.insert(k, v);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{json, DEFAULT, PBKDF2};
    use super::*;
    use serde_json::json;

    fn text(v: &Value) -> String {
        serde_json::to_string(v).unwrap()
    }

    /// The default fixture's JSON edited by `f`, parsed.
    fn parsed(f: impl FnOnce(&mut Value)) -> Result<Meta, Refusal> {
        let mut v = json(DEFAULT);
        f(&mut v);
        parse(&text(&v))
    }

    fn refused(f: impl FnOnce(&mut Value)) -> Refusal {
        parsed(f).unwrap_err()
    }

    #[test]
    fn real_headers_parse() {
        let m = parse(&text(&json(PBKDF2))).unwrap();
        assert_eq!(m.keyslots.len(), 2);
        assert_eq!(m.keyslots[1].id, 1);
        assert_eq!(m.tokens[0].kind, "systemd-tpm2");
        assert_eq!(m.segments[0].size, None);
        assert_eq!(m.digests[0].keyslots, vec![0, 1]);
        assert_eq!(m.config.json_size, 12288);
        let m = parsed(|_| {}).unwrap();
        assert!(matches!(m.keyslots[0].kdf, RawKdf::Argon2 { ref kind, .. } if kind == "argon2id"));
    }

    #[test]
    fn not_json_or_duplicate_keys_are_refused() {
        for bad in [
            "",
            "{",
            "{} x",
            "[]",
            "{\"a\":1,\"a\":1}",
            "{\"keyslots\":{},\"keyslots\":{}}",
        ] {
            let r = parse(bad).unwrap_err();
            assert_eq!(r.field, "json area", "{bad}");
        }
        let mut v = json(DEFAULT);
        let t = text(&v).replacen(
            "\"iv_tweak\":\"0\"",
            "\"iv_tweak\":\"0\",\"iv_tweak\":\"0\"",
            1,
        );
        assert!(parse(&t)
            .unwrap_err()
            .value
            .contains("duplicate key \"iv_tweak\""));
        v["segments"]["0"]["offset"] = json!("16777216");
        assert!(parse(&text(&v)).is_ok());
    }

    #[test]
    fn top_level_keys_are_exactly_the_five() {
        let r = refused(|v| v["extra"] = json!({}));
        assert_eq!((r.field.as_str(), r.value.as_str()), ("extra", "{}"));
        assert!(r.rule.starts_with("unknown key"));
        let r = refused(|v| {
            v.as_object_mut().unwrap().remove("tokens");
        });
        assert_eq!((r.field.as_str(), r.rule.as_str()), ("tokens", "required"));
        let r = refused(|v| v["tokens"] = json!([]));
        assert_eq!(
            (r.field.as_str(), r.rule.as_str()),
            ("tokens", "not a JSON object")
        );
    }

    #[test]
    fn ids_are_decimal_strings_0_to_31() {
        for bad in ["32", "01", "-1", "x", "", "1 "] {
            let r = refused(|v| {
                let k = v["keyslots"].as_object_mut().unwrap().remove("0").unwrap();
                v["keyslots"][bad] = k;
            });
            assert_eq!(r.field, format!("keyslots.{bad}"));
            assert_eq!(r.value, bad);
        }
        let r = refused(|v| v["tokens"]["99"] = json!({"type": "x", "keyslots": []}));
        assert_eq!(r.field, "tokens.99");
        let r = refused(|v| v["digests"]["0"]["keyslots"] = json!(["0", "00"]));
        assert_eq!(
            (r.field.as_str(), r.value.as_str()),
            ("digests.0.keyslots.1", "00")
        );
        let r = refused(|v| v["digests"]["0"]["keyslots"] = json!(["0", "0"]));
        assert_eq!(r.rule, "listed twice");
        let r = refused(|v| v["digests"]["0"]["segments"] = json!([0]));
        assert_eq!(r.field, "digests.0.segments.0");
    }

    #[test]
    fn keyslot_shapes() {
        let r = refused(|v| v["keyslots"]["0"]["type"] = json!("reencrypt"));
        assert_eq!(
            (r.field.as_str(), r.value.as_str()),
            ("keyslots.0.type", "reencrypt")
        );
        let r = refused(|v| v["keyslots"]["0"]["af"]["type"] = json!("luks2"));
        assert_eq!(r.field, "keyslots.0.af.type");
        let r = refused(|v| v["keyslots"]["0"]["area"]["type"] = json!("checksum"));
        assert_eq!(r.field, "keyslots.0.area.type");
        let r = refused(|v| v["keyslots"]["0"]["kdf"]["type"] = json!("scrypt"));
        assert_eq!(r.field, "keyslots.0.kdf.type");
        assert_eq!(r.rule, "not in the allow-list (pbkdf2, argon2i, argon2id)");
        // pbkdf2 keys with an argon2 type, and the other way round.
        let r = refused(|v| v["keyslots"]["0"]["kdf"]["iterations"] = json!(1000));
        assert_eq!(r.field, "keyslots.0.kdf.iterations");
        let r = refused(|v| v["keyslots"]["0"]["kdf"]["type"] = json!("pbkdf2"));
        assert_eq!(r.field, "keyslots.0.kdf.cpus");
        let r = refused(|v| v["keyslots"]["0"]["area"]["mode"] = json!("x"));
        assert_eq!(r.field, "keyslots.0.area.mode");
        let r = refused(|v| {
            v["keyslots"]["0"].as_object_mut().unwrap().remove("kdf");
        });
        assert_eq!(
            (r.field.as_str(), r.value.as_str()),
            ("keyslots.0.kdf", "(missing)")
        );
        let m = parsed(|v| v["keyslots"]["0"]["priority"] = json!(2)).unwrap();
        assert_eq!(m.keyslots[0].priority, Some(2));
    }

    #[test]
    fn numbers_and_decimal_strings() {
        for bad in [json!(-1), json!(1.5), json!("4"), json!(1e30), json!(null)] {
            let r = refused(|v| v["keyslots"]["0"]["kdf"]["memory"] = bad.clone());
            assert_eq!(r.field, "keyslots.0.kdf.memory", "{bad}");
        }
        for bad in [
            json!(32768),
            json!("0x8000"),
            json!("032768"),
            json!("+1"),
            json!("18446744073709551616"),
        ] {
            let r = refused(|v| v["keyslots"]["0"]["area"]["offset"] = bad.clone());
            assert_eq!(r.field, "keyslots.0.area.offset", "{bad}");
        }
        let r = refused(|v| v["segments"]["0"]["size"] = json!("Dynamic"));
        assert_eq!(
            (r.field.as_str(), r.value.as_str()),
            ("segments.0.size", "Dynamic")
        );
        let m = parsed(|v| v["segments"]["0"]["size"] = json!("4096")).unwrap();
        assert_eq!(m.segments[0].size, Some(4096));
        let m = parsed(|v| v["config"]["keyslots_size"] = json!("18446744073709551615")).unwrap();
        assert_eq!(m.config.keyslots_size, u64::MAX);
    }

    #[test]
    fn segment_digest_and_config_shapes() {
        let r = refused(|v| v["segments"]["0"]["type"] = json!("linear"));
        assert_eq!(r.field, "segments.0.type");
        let r = refused(|v| v["segments"]["0"]["integrity"] = json!({"type": "hmac(sha256)"}));
        assert_eq!(r.field, "segments.0.integrity.journal_encryption");
        let r = refused(|v| v["segments"]["0"]["flags"] = json!("x"));
        assert_eq!(r.field, "segments.0.flags");
        let r = refused(|v| v["digests"]["0"]["type"] = json!("sha256"));
        assert_eq!(r.field, "digests.0.type");
        let r = refused(|v| v["config"]["requirements"] = json!({"optional": []}));
        assert_eq!(r.field, "config.requirements.optional");
        let r = refused(|v| v["config"]["flags"] = json!([1]));
        assert_eq!(r.field, "config.flags.0");
        let m = parsed(|v| {
            v["config"]["requirements"] = json!({"mandatory": ["online-reencrypt-v2"]});
            v["config"]["flags"] = json!(["allow-discards"]);
        })
        .unwrap();
        assert_eq!(m.config.mandatory, vec!["online-reencrypt-v2"]);
        assert_eq!(m.config.flags, vec!["allow-discards"]);
    }

    #[test]
    fn tokens_keep_their_own_keys() {
        let m = parse(&text(&json(PBKDF2))).unwrap();
        let t = &m.tokens[0];
        assert_eq!(t.keyslots, vec![0]);
        let own = text(&json(PBKDF2)["tokens"]["0"]);
        assert_eq!(t.json_len, own.len());
        let r = refused(|v| v["tokens"]["0"] = json!({"keyslots": []}));
        assert_eq!(r.field, "tokens.0.type");
        let r = refused(|v| v["tokens"]["0"] = json!({"type": "x"}));
        assert_eq!(r.field, "tokens.0.keyslots");
        let r = refused(|v| v["tokens"]["0"] = json!("x"));
        assert_eq!(r.field, "tokens.0");
    }
}
