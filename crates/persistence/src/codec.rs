//! The RDB value codec: lengths, strings (integer and LZF encodings), and
//! one value of each type, in the encodings Redis 7.0 writes and every
//! encoding older versions wrote.
//!
//! Adding a type means: a type byte in `ty`, an arm in `value_type` and
//! `write_value` for its encoding, and an arm in `read_value` for each RDB
//! type that carries it. Streams live in `stream.rs`.

use crate::packed::{self, Item, ListpackWriter};
use crate::{Error, Result};
use damselfly_core::hash::{self, Hash};
use damselfly_core::list::{End, List};
use damselfly_core::set::{Member, Set};
use damselfly_core::zset::{self, ZSet};
use damselfly_storage::{value_canonical_int, Value, ValueRef};
use std::borrow::Cow;

/// The RDB version Redis 7.0 writes, and so do we.
pub const RDB_VERSION: u16 = 10;
/// The newest RDB version we read (Redis 7.4).
pub const RDB_VERSION_MAX: u16 = 12;

/// RDB object type bytes.
pub mod ty {
    pub const STRING: u8 = 0;
    pub const LIST: u8 = 1;
    pub const SET: u8 = 2;
    pub const ZSET: u8 = 3;
    pub const HASH: u8 = 4;
    pub const ZSET_2: u8 = 5;
    pub const MODULE: u8 = 6;
    pub const MODULE_2: u8 = 7;
    pub const HASH_ZIPMAP: u8 = 9;
    pub const LIST_ZIPLIST: u8 = 10;
    pub const SET_INTSET: u8 = 11;
    pub const ZSET_ZIPLIST: u8 = 12;
    pub const HASH_ZIPLIST: u8 = 13;
    pub const LIST_QUICKLIST: u8 = 14;
    pub const STREAM_LISTPACKS: u8 = 15;
    pub const HASH_LISTPACK: u8 = 16;
    pub const ZSET_LISTPACK: u8 = 17;
    pub const LIST_QUICKLIST_2: u8 = 18;
    pub const STREAM_LISTPACKS_2: u8 = 19;
    pub const SET_LISTPACK: u8 = 20;
    pub const STREAM_LISTPACKS_3: u8 = 21;
}

/// The encoding limits in force when values are built (the
/// `*-max-listpack-*` and `set-max-intset-entries` parameters).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub hash: hash::Limits,
    pub set_max_intset: usize,
    pub zset: zset::Limits,
    /// `list-max-listpack-size`: negative picks a node size class, positive
    /// an element count.
    pub list_fill: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            hash: hash::Limits {
                max_entries: 512,
                max_value: 64,
            },
            set_max_intset: 512,
            zset: zset::Limits {
                max_entries: 128,
                max_value: 64,
            },
            list_fill: -2,
        }
    }
}

// ------------------------------------------------------------------ writing

/// Appends an RDB length.
pub fn write_len(out: &mut Vec<u8>, n: u64) {
    if n < 64 {
        out.push(n as u8);
    } else if n < 16384 {
        out.push(0x40 | (n >> 8) as u8);
        out.push(n as u8);
    } else if let Ok(n) = u32::try_from(n) {
        out.push(0x80);
        out.extend_from_slice(&n.to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// Appends a string as Redis does: short canonical integers in the integer
/// encodings, longer strings LZF-compressed when that saves space.
pub fn write_string(out: &mut Vec<u8>, s: &[u8]) {
    if s.len() <= 11 {
        if let Some(n) = value_canonical_int(s) {
            if write_int_encoded(out, n) {
                return;
            }
        }
    }
    if s.len() > 20 {
        // Redis keeps the compressed form only when it saves at least
        // four bytes (its output buffer is four bytes short of the input).
        if let Some(c) = crate::lzf::compress(s, s.len() - 4) {
            out.push(0xC3);
            write_len(out, c.len() as u64);
            write_len(out, s.len() as u64);
            out.extend_from_slice(&c);
            return;
        }
    }
    write_len(out, s.len() as u64);
    out.extend_from_slice(s);
}

fn write_int_encoded(out: &mut Vec<u8>, n: i64) -> bool {
    if let Ok(v) = i8::try_from(n) {
        out.push(0xC0);
        out.extend_from_slice(&v.to_le_bytes());
    } else if let Ok(v) = i16::try_from(n) {
        out.push(0xC1);
        out.extend_from_slice(&v.to_le_bytes());
    } else if let Ok(v) = i32::try_from(n) {
        out.push(0xC2);
        out.extend_from_slice(&v.to_le_bytes());
    } else {
        return false;
    }
    true
}

fn write_int_string(out: &mut Vec<u8>, n: i64) {
    if !write_int_encoded(out, n) {
        write_string(out, itoa::Buffer::new().format(n).as_bytes());
    }
}

/// The RDB type byte `v` is written with.
pub fn value_type(v: ValueRef<'_>) -> u8 {
    match v {
        ValueRef::Int(_) | ValueRef::Str(_) | ValueRef::Raw(_) => ty::STRING,
        ValueRef::List(_) => ty::LIST_QUICKLIST_2,
        ValueRef::Hash(h) if h.is_packed() => ty::HASH_LISTPACK,
        ValueRef::Hash(_) => ty::HASH,
        ValueRef::Set(s) if s.is_intset() => ty::SET_INTSET,
        ValueRef::Set(_) => ty::SET,
        ValueRef::ZSet(z) if z.encoding() == "listpack" => ty::ZSET_LISTPACK,
        ValueRef::ZSet(_) => ty::ZSET_2,
        ValueRef::Stream(_) => ty::STREAM_LISTPACKS_2,
    }
}

/// Appends the type byte and the object.
pub fn write_value(out: &mut Vec<u8>, v: ValueRef<'_>, limits: &Limits) {
    out.push(value_type(v));
    write_object(out, v, limits);
}

/// Appends the object alone (a file puts the key between type and object).
pub fn write_object(out: &mut Vec<u8>, v: ValueRef<'_>, limits: &Limits) {
    match v {
        ValueRef::Int(n) => write_int_string(out, n),
        ValueRef::Str(s) => write_string(out, s),
        ValueRef::Raw(s) => write_string(out, s),
        ValueRef::List(l) => write_list(out, l, limits.list_fill),
        ValueRef::Hash(h) if h.is_packed() => {
            let mut w = ListpackWriter::default();
            for (f, v) in h.iter() {
                w.push(f);
                w.push(v);
            }
            write_string(out, &w.finish());
        }
        ValueRef::Hash(h) => {
            write_len(out, h.len() as u64);
            for (f, v) in h.iter() {
                write_string(out, f);
                write_string(out, v);
            }
        }
        ValueRef::Set(s) if s.is_intset() => {
            let ints: Vec<i64> = s
                .iter()
                .filter_map(|m| match m {
                    Member::Int(n) => Some(n),
                    Member::Bytes(_) => None,
                })
                .collect();
            write_string(out, &packed::write_intset(&ints));
        }
        ValueRef::Set(s) => {
            write_len(out, s.len() as u64);
            for m in s.iter() {
                match m {
                    Member::Int(n) => write_int_string(out, n),
                    Member::Bytes(b) => write_string(out, b),
                }
            }
        }
        ValueRef::ZSet(z) if z.encoding() == "listpack" => {
            let mut w = ListpackWriter::default();
            z.range(0, z.len(), false, |m, s| {
                w.push(m);
                w.push(score_text(s).as_bytes());
            });
            write_string(out, &w.finish());
        }
        ValueRef::ZSet(z) => {
            write_len(out, z.len() as u64);
            // Highest first, as Redis writes them.
            z.range(0, z.len(), true, |m, s| {
                write_string(out, m);
                out.extend_from_slice(&s.to_le_bytes());
            });
        }
        ValueRef::Stream(s) => crate::stream::write(out, s),
    }
}

/// A score as a packed zset holds it: integral values in integer form,
/// others as `%.17g`.
fn score_text(s: f64) -> String {
    const LIMIT: f64 = 4503599627370496.0; // 2^52
    if s > -LIMIT && s < LIMIT && s == (s as i64) as f64 {
        itoa::Buffer::new().format(s as i64).to_string()
    } else {
        damselfly_protocol::format_double(s)
    }
}

/// Node size limit for a negative `list-max-listpack-size`.
fn node_size_limit(fill: i64) -> usize {
    const SIZES: [usize; 5] = [4096, 8192, 16384, 32768, 65536];
    let class = (fill.unsigned_abs() as usize).clamp(1, 5) - 1;
    SIZES[class]
}

/// A list as quicklist 2: listpack nodes cut where Redis cuts a list
/// built by pushes at the tail.
fn write_list(out: &mut Vec<u8>, l: &List, fill: i64) {
    let nodes = list_nodes(l, fill);
    write_len(out, nodes.len() as u64);
    for n in nodes {
        write_len(out, 2); // a packed (listpack) node
        write_string(out, &n);
    }
}

/// The list as Redis's quicklist holds it after tail pushes: listpack
/// nodes cut by `list-max-listpack-size` (`fill`).
pub fn list_nodes(l: &List, fill: i64) -> Vec<Vec<u8>> {
    const SAFETY_LIMIT: usize = 8192;
    let mut nodes: Vec<Vec<u8>> = Vec::new();
    let mut cur = ListpackWriter::default();
    for e in l.iter() {
        if cur.count() > 0 {
            // Redis's estimate: the node's size, the raw element and 8.
            let new_size = cur.size() + e.len() + 8;
            let full = if fill < 0 {
                new_size > node_size_limit(fill)
            } else {
                new_size > SAFETY_LIMIT || cur.count() + 1 > fill as usize
            };
            if full {
                nodes.push(std::mem::take(&mut cur).finish());
            }
        }
        cur.push(e);
    }
    if cur.count() > 0 {
        nodes.push(cur.finish());
    }
    nodes
}

// ------------------------------------------------------------------ reading

/// Reads RDB data from a byte slice; every length is checked against what
/// is left, so hostile input can only fail, never over-allocate.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// A length, or the marker of a specially encoded string.
enum Len {
    Plain(u64),
    Encoded(u8),
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn byte(&mut self) -> Result<u8> {
        let b = *self.buf.get(self.pos).ok_or(Error::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(Error::Truncated);
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub fn u64_le(&mut self) -> Result<u64> {
        let b = self.take(8)?;
        Ok(b.iter().rev().fold(0, |a, &x| (a << 8) | u64::from(x)))
    }

    pub fn u32_le(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn len_or_enc(&mut self) -> Result<Len> {
        let b = self.byte()?;
        Ok(match b >> 6 {
            0 => Len::Plain(u64::from(b & 0x3F)),
            1 => Len::Plain((u64::from(b & 0x3F) << 8) | u64::from(self.byte()?)),
            2 => match b {
                0x80 => {
                    let s = self.take(4)?;
                    Len::Plain(u64::from(u32::from_be_bytes([s[0], s[1], s[2], s[3]])))
                }
                0x81 => {
                    let s = self.take(8)?;
                    Len::Plain(s.iter().fold(0, |a, &x| (a << 8) | u64::from(x)))
                }
                _ => return Err(Error::Bad("bad length encoding")),
            },
            _ => Len::Encoded(b & 0x3F),
        })
    }

    /// A plain length.
    pub fn length(&mut self) -> Result<u64> {
        match self.len_or_enc()? {
            Len::Plain(n) => Ok(n),
            Len::Encoded(_) => Err(Error::Bad("encoded value where a length belongs")),
        }
    }

    /// A length that must fit in what is left (each counted item takes at
    /// least one byte), as a usize.
    pub(crate) fn count(&mut self) -> Result<usize> {
        let n = self.length()?;
        if n > self.remaining() as u64 {
            return Err(Error::Truncated);
        }
        Ok(n as usize)
    }

    /// A string in any encoding.
    pub fn string(&mut self) -> Result<Cow<'a, [u8]>> {
        match self.len_or_enc()? {
            Len::Plain(n) => {
                let n = usize::try_from(n).map_err(|_| Error::Truncated)?;
                Ok(Cow::Borrowed(self.take(n)?))
            }
            Len::Encoded(0) => Ok(int_text(i64::from(self.byte()? as i8))),
            Len::Encoded(1) => {
                let b = self.take(2)?;
                Ok(int_text(i64::from(i16::from_le_bytes([b[0], b[1]]))))
            }
            Len::Encoded(2) => {
                let b = self.take(4)?;
                Ok(int_text(i64::from(i32::from_le_bytes([
                    b[0], b[1], b[2], b[3],
                ]))))
            }
            Len::Encoded(3) => {
                let clen = self.length()?;
                let ulen = self.length()?;
                let clen = usize::try_from(clen).map_err(|_| Error::Truncated)?;
                let data = self.take(clen)?;
                // LZF expands at most ~90 times (a 3-byte back reference
                // yields 264 bytes): a larger claim is a lie, refused before
                // allocating for it.
                if ulen == 0 || ulen > (clen as u64).saturating_mul(90) {
                    return Err(Error::Bad("bad LZF lengths"));
                }
                let out =
                    lzf::decompress(data, ulen as usize).map_err(|_| Error::Bad("bad LZF data"))?;
                if out.len() as u64 != ulen {
                    return Err(Error::Bad("LZF length mismatch"));
                }
                Ok(Cow::Owned(out))
            }
            Len::Encoded(_) => Err(Error::Bad("unknown string encoding")),
        }
    }

    /// A score as RDB_TYPE_ZSET writes it: a length byte and text, with
    /// 253/254/255 for nan/inf/-inf.
    fn text_double(&mut self) -> Result<f64> {
        let n = self.byte()?;
        match n {
            253 => Err(Error::Bad("NaN score")),
            254 => Ok(f64::INFINITY),
            255 => Ok(f64::NEG_INFINITY),
            _ => packed::parse_f64(self.take(usize::from(n))?),
        }
    }

    fn binary_double(&mut self) -> Result<f64> {
        let v = f64::from_bits(self.u64_le()?);
        if v.is_nan() {
            return Err(Error::Bad("NaN score"));
        }
        Ok(v)
    }
}

fn int_text(n: i64) -> Cow<'static, [u8]> {
    Cow::Owned(itoa::Buffer::new().format(n).as_bytes().to_vec())
}

/// The name a module type id encodes (9 characters of 6 bits each).
pub fn module_type_name(id: u64) -> String {
    const CHARSET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    (0..9)
        .map(|i| char::from(CHARSET[((id >> (64 - 6 * (i + 1))) & 63) as usize]))
        .collect()
}

/// Reads one object of RDB type `t`. Empty collections are
/// `Error::EmptyKey` (a file load skips them; RESTORE refuses them).
pub fn read_value(t: u8, r: &mut Reader<'_>, limits: &Limits) -> Result<Value> {
    let v = match t {
        ty::STRING => Value::from_vec(r.string()?.into_owned()),
        ty::LIST => {
            let n = r.count()?;
            let mut l = List::new();
            for _ in 0..n {
                l.push(End::Tail, &r.string()?);
            }
            Value::List(Box::new(l))
        }
        ty::LIST_ZIPLIST => {
            let blob = r.string()?;
            let mut l = List::new();
            for it in packed::ziplist(&blob)? {
                l.push(End::Tail, &it.to_vec());
            }
            Value::List(Box::new(l))
        }
        ty::LIST_QUICKLIST | ty::LIST_QUICKLIST_2 => {
            let nodes = r.count()?;
            let mut l = List::new();
            for _ in 0..nodes {
                let container = if t == ty::LIST_QUICKLIST_2 {
                    r.length()?
                } else {
                    2
                };
                let blob = r.string()?;
                match container {
                    1 => l.push(End::Tail, &blob),
                    2 => {
                        let items = if t == ty::LIST_QUICKLIST_2 {
                            packed::listpack(&blob)?
                        } else {
                            packed::ziplist(&blob)?
                        };
                        for it in items {
                            l.push(End::Tail, &it.to_vec());
                        }
                    }
                    _ => return Err(Error::Bad("bad quicklist container")),
                }
            }
            Value::List(Box::new(l))
        }
        ty::SET => {
            let n = r.count()?;
            let mut s = Set::new();
            if n > limits.set_max_intset {
                s.convert_to_table();
            }
            for _ in 0..n {
                if !s.add(&r.string()?, limits.set_max_intset) {
                    return Err(Error::Bad("duplicate set member"));
                }
            }
            Value::Set(Box::new(s))
        }
        ty::SET_INTSET => {
            let blob = r.string()?;
            let mut s = Set::new();
            for n in packed::intset(&blob)? {
                s.add(
                    itoa::Buffer::new().format(n).as_bytes(),
                    limits.set_max_intset,
                );
            }
            Value::Set(Box::new(s))
        }
        ty::SET_LISTPACK => {
            let blob = r.string()?;
            let mut s = Set::new();
            for it in packed::listpack(&blob)? {
                if !s.add(&it.to_vec(), limits.set_max_intset) {
                    return Err(Error::Bad("duplicate set member"));
                }
            }
            Value::Set(Box::new(s))
        }
        ty::ZSET | ty::ZSET_2 => {
            let n = r.count()?;
            let mut z = ZSet::new();
            for _ in 0..n {
                let m = r.string()?;
                let score = if t == ty::ZSET_2 {
                    r.binary_double()?
                } else {
                    r.text_double()?
                };
                if z.insert(&m, score, limits.zset).is_some() {
                    return Err(Error::Bad("duplicate zset member"));
                }
            }
            z.shrink_if_fits(limits.zset);
            Value::ZSet(Box::new(z))
        }
        ty::ZSET_ZIPLIST | ty::ZSET_LISTPACK => {
            let blob = r.string()?;
            let items = if t == ty::ZSET_LISTPACK {
                packed::listpack(&blob)?
            } else {
                packed::ziplist(&blob)?
            };
            pairs_to_zset(&items, limits)?
        }
        ty::HASH => {
            let n = r.count()?;
            let mut h = Hash::new();
            if n > limits.hash.max_entries {
                h.convert_to_table();
            }
            for _ in 0..n {
                let f = r.string()?;
                let v = r.string()?;
                if !h.set(&f, &v, limits.hash) {
                    return Err(Error::Bad("duplicate hash field"));
                }
            }
            Value::Hash(Box::new(h))
        }
        ty::HASH_ZIPMAP => {
            let blob = r.string()?;
            let parts = packed::zipmap(&blob)?;
            let mut h = Hash::new();
            for fv in parts.chunks(2) {
                if let [f, v] = fv {
                    if !h.set(f, v, limits.hash) {
                        return Err(Error::Bad("duplicate hash field"));
                    }
                }
            }
            Value::Hash(Box::new(h))
        }
        ty::HASH_ZIPLIST | ty::HASH_LISTPACK => {
            let blob = r.string()?;
            let items = if t == ty::HASH_LISTPACK {
                packed::listpack(&blob)?
            } else {
                packed::ziplist(&blob)?
            };
            if items.len() & 1 != 0 {
                return Err(Error::Bad("odd hash listpack"));
            }
            // A packed hash stays packed whatever its value lengths, as in
            // Redis; only the entry count converts it.
            let packed_limits = hash::Limits {
                max_entries: limits.hash.max_entries,
                max_value: usize::MAX,
            };
            let mut h = Hash::new();
            for fv in items.chunks(2) {
                if let [f, v] = fv {
                    if !h.set(&f.to_vec(), &v.to_vec(), packed_limits) {
                        return Err(Error::Bad("duplicate hash field"));
                    }
                }
            }
            Value::Hash(Box::new(h))
        }
        ty::MODULE | ty::MODULE_2 => {
            let id = r.length()?;
            return Err(Error::Module(module_type_name(id)));
        }
        // An empty stream is a value (XADD MAXLEN 0, XDEL), kept.
        ty::STREAM_LISTPACKS | ty::STREAM_LISTPACKS_2 | ty::STREAM_LISTPACKS_3 => {
            Value::Stream(Box::new(crate::stream::read(t, r)?))
        }
        _ => return Err(Error::UnknownType(t)),
    };
    let empty = match &v {
        Value::List(l) => l.is_empty(),
        Value::Hash(h) => h.is_empty(),
        Value::Set(s) => s.is_empty(),
        Value::ZSet(z) => z.is_empty(),
        _ => false,
    };
    if empty {
        return Err(Error::EmptyKey);
    }
    Ok(v)
}

fn pairs_to_zset(items: &[Item<'_>], limits: &Limits) -> Result<Value> {
    if items.len() & 1 != 0 {
        return Err(Error::Bad("odd zset listpack"));
    }
    let packed_limits = zset::Limits {
        max_entries: limits.zset.max_entries,
        max_value: usize::MAX,
    };
    let mut z = ZSet::new();
    for ms in items.chunks(2) {
        if let [m, s] = ms {
            if z.insert(&m.to_vec(), s.to_f64()?, packed_limits).is_some() {
                return Err(Error::Bad("duplicate zset member"));
            }
        }
    }
    Ok(Value::ZSet(Box::new(z)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(v: &Value) -> Value {
        let mut out = Vec::new();
        write_value(&mut out, v.view(), &Limits::default());
        let mut r = Reader::new(&out[1..]);
        let back = read_value(out[0], &mut r, &Limits::default()).unwrap();
        assert_eq!(r.remaining(), 0);
        back
    }

    #[test]
    fn lengths_round_trip() {
        for n in [0, 63, 64, 16383, 16384, u32::MAX as u64, u64::MAX] {
            let mut out = Vec::new();
            write_len(&mut out, n);
            assert_eq!(Reader::new(&out).length().unwrap(), n);
        }
    }

    #[test]
    fn strings_use_int_and_lzf_encodings() {
        let mut out = Vec::new();
        write_string(&mut out, b"-123");
        assert_eq!(out, [0xC0, 0x85]);
        let long = vec![b'a'; 200];
        out.clear();
        write_string(&mut out, &long);
        assert_eq!(out[0], 0xC3);
        assert_eq!(Reader::new(&out).string().unwrap().as_ref(), &long[..]);
        out.clear();
        write_string(&mut out, b"12345678901");
        assert_eq!(out[0], 11);
    }

    #[test]
    fn every_type_round_trips() {
        let mut l = List::new();
        for i in 0..3000 {
            l.push(End::Tail, format!("element-{i}").as_bytes());
        }
        let back = round_trip(&Value::List(Box::new(l.clone())));
        assert_eq!(back, Value::List(Box::new(l)));
        for n in [3, 1000] {
            let mut h = Hash::new();
            let mut s = Set::new();
            let mut si = Set::new();
            let mut z = ZSet::new();
            let lim = Limits::default();
            for i in 0..n {
                h.set(format!("f{i}").as_bytes(), b"v", lim.hash);
                s.add(format!("m{i}").as_bytes(), 512);
                si.add(format!("{}", i * 100_000).as_bytes(), 512);
                z.insert(format!("z{i}").as_bytes(), i as f64 / 3.0, lim.zset);
            }
            for v in [
                Value::Hash(Box::new(h)),
                Value::Set(Box::new(s)),
                Value::Set(Box::new(si)),
                Value::ZSet(Box::new(z)),
            ] {
                assert_eq!(round_trip(&v), v);
            }
        }
        for v in [
            Value::Int(-5),
            Value::Int(i64::MAX),
            Value::from_bytes(b"hello"),
        ] {
            assert_eq!(round_trip(&v), v);
        }
    }

    #[test]
    fn module_names_decode() {
        // "ReJSON-RL" with encoding version 3.
        let name = b"ReJSON-RL";
        let cs = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut id = 0u64;
        for c in name {
            id = (id << 6) | cs.iter().position(|x| x == c).unwrap() as u64;
        }
        id = (id << 10) | 3;
        assert_eq!(module_type_name(id), "ReJSON-RL");
    }

    #[test]
    fn hostile_lengths_fail_without_allocating() {
        // A list claiming 2^63 elements, a string claiming 4 GiB, LZF
        // claiming a huge output.
        for bytes in [
            &[0x81, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF][..],
            &[0x80, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2][..],
            &[0xC3, 2, 0x80, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0][..],
        ] {
            for t in [ty::STRING, ty::LIST, ty::SET, ty::HASH, ty::ZSET_2] {
                assert!(read_value(t, &mut Reader::new(bytes), &Limits::default()).is_err());
            }
        }
    }
}
