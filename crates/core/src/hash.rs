//! The hash value type, in Redis 7.0's two encodings:
//!
//! - `listpack`: every field and value in one byte array, each entry a
//!   LEB128 length followed by its bytes, field then value, in insertion
//!   order (an update keeps the field's place). Lookups are linear, which is
//!   cheap for the few short entries this encoding is used for.
//! - `hashtable`: our chained `Table`, whose reverse-binary cursor gives
//!   HSCAN its guarantee across resizes.
//!
//! Invariants:
//! - A listpack hash has at most `max_entries` fields and no field or value
//!   longer than `max_value` bytes (the limits given at each insert); the
//!   first insert that would break either converts it to a table first.
//! - A table never converts back (as in Redis 7.0).

use crate::table::{Keyed, Table};
use crate::CompactBytes;
use std::fmt;

/// One field of a table-encoded hash.
#[derive(Clone)]
pub struct Pair {
    pub field: CompactBytes,
    pub value: CompactBytes,
}

impl Keyed for Pair {
    fn key(&self) -> &[u8] {
        &self.field
    }
}

/// Entries gathered around a random bucket before one of them is chosen.
const FAIR_SAMPLE: usize = 15;

/// A random entry of a non-empty table, close to uniform (as Redis's
/// dictGetFairRandomKey): consecutive buckets from a random one are gathered
/// until `FAIR_SAMPLE` entries are seen (or every bucket), then one of those
/// is chosen, so entries sharing a chain are not picked less often.
pub fn fair_random<E: Keyed>(t: &Table<E>, mut rand: impl FnMut(usize) -> usize) -> Option<&E> {
    let buckets = t.bucket_count();
    if t.is_empty() || buckets == 0 {
        return None;
    }
    let start = rand(buckets);
    let mut keys: Vec<Vec<u8>> = Vec::new();
    for i in 0..buckets {
        let b = (start + i) & (buckets - 1);
        t.scan_bucket(b as u64, |e| keys.push(e.key().to_vec()));
        if keys.len() >= FAIR_SAMPLE {
            break;
        }
    }
    if keys.is_empty() {
        return None;
    }
    let k = &keys[rand(keys.len()).min(keys.len() - 1)];
    t.get(k)
}

/// The packed encoding: `len` pairs in one buffer.
#[derive(Clone, Default, PartialEq)]
struct Pack {
    buf: Vec<u8>,
    len: usize,
}

/// Bytes `put_len` writes for `n`.
pub(crate) fn len_size(n: usize) -> usize {
    (usize::BITS - (n | 1).leading_zeros()).div_ceil(7) as usize
}

pub(crate) fn put_len(buf: &mut Vec<u8>, mut n: usize) {
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            buf.push(b);
            return;
        }
        buf.push(b | 0x80);
    }
}

/// Reads one entry at `pos`: (start of the bytes, end of the bytes).
pub(crate) fn read_entry(buf: &[u8], mut pos: usize) -> (usize, usize) {
    let mut n = 0usize;
    let mut shift = 0;
    while let Some(&b) = buf.get(pos) {
        pos += 1;
        n |= usize::from(b & 0x7f) << shift;
        shift += 7;
        if b & 0x80 == 0 {
            break;
        }
    }
    let end = (pos + n).min(buf.len());
    (pos, end)
}

/// Where one pair lies in the buffer.
struct Slot {
    /// First byte of the field's length prefix.
    start: usize,
    /// First byte of the value's length prefix.
    value_at: usize,
    value: (usize, usize),
}

impl Pack {
    fn iter(&self) -> PackIter<'_> {
        PackIter {
            buf: &self.buf,
            pos: 0,
        }
    }

    fn find(&self, field: &[u8]) -> Option<Slot> {
        let buf = &self.buf;
        let mut pos = 0;
        while pos < buf.len() {
            let (fs, fe) = read_entry(buf, pos);
            let (vs, ve) = read_entry(buf, fe);
            if &buf[fs..fe] == field {
                return Some(Slot {
                    start: pos,
                    value_at: fe,
                    value: (vs, ve),
                });
            }
            pos = ve;
        }
        None
    }

    fn get(&self, field: &[u8]) -> Option<&[u8]> {
        self.find(field).map(|s| &self.buf[s.value.0..s.value.1])
    }

    /// Sets a field; true when it is new.
    fn set(&mut self, field: &[u8], value: &[u8]) -> bool {
        match self.find(field) {
            Some(s) => {
                let mut enc = Vec::with_capacity(value.len() + 5);
                put_len(&mut enc, value.len());
                enc.extend_from_slice(value);
                self.buf.splice(s.value_at..s.value.1, enc);
                false
            }
            None => {
                // Exact growth, as a listpack reallocates per insert: small
                // hashes are many, and doubling left up to half of each
                // buffer unused (88 B/field against Redis's 65 in memory.sh).
                let need =
                    len_size(field.len()) + field.len() + len_size(value.len()) + value.len();
                self.buf.reserve_exact(need);
                put_len(&mut self.buf, field.len());
                self.buf.extend_from_slice(field);
                put_len(&mut self.buf, value.len());
                self.buf.extend_from_slice(value);
                self.len += 1;
                true
            }
        }
    }

    fn remove(&mut self, field: &[u8]) -> bool {
        match self.find(field) {
            Some(s) => {
                self.buf.drain(s.start..s.value.1);
                self.len -= 1;
                if self.buf.capacity() > 2 * self.buf.len() + 64 {
                    self.buf.shrink_to_fit();
                }
                true
            }
            None => false,
        }
    }
}

/// Iterates a listpack's pairs.
pub struct PackIter<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for PackIter<'a> {
    type Item = (&'a [u8], &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let (fs, fe) = read_entry(self.buf, self.pos);
        let (vs, ve) = read_entry(self.buf, fe);
        self.pos = ve;
        Some((&self.buf[fs..fe], &self.buf[vs..ve]))
    }
}

#[derive(Clone)]
enum Repr {
    Pack(Pack),
    Table(Table<Pair>),
}

/// A hash value.
#[derive(Clone)]
pub struct Hash {
    repr: Repr,
}

/// The encoding limits in force (hash-max-listpack-entries/-value).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_entries: usize,
    pub max_value: usize,
}

impl Default for Hash {
    fn default() -> Self {
        Hash {
            repr: Repr::Pack(Pack::default()),
        }
    }
}

impl PartialEq for Hash {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self.iter().all(|(f, v)| other.get(f) == Some(v))
            && self.encoding() == other.encoding()
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                self.iter()
                    .map(|(k, v)| (String::from_utf8_lossy(k), String::from_utf8_lossy(v))),
            )
            .finish()
    }
}

/// Iterates a hash's (field, value) pairs.
pub enum Iter<'a> {
    Pack(PackIter<'a>),
    Table(Box<dyn Iterator<Item = &'a Pair> + 'a>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Pack(p) => p.next(),
            Iter::Table(t) => t.next().map(|p| (p.field.as_slice(), p.value.as_slice())),
        }
    }
}

impl Hash {
    pub fn new() -> Hash {
        Hash::default()
    }

    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Pack(p) => p.len,
            Repr::Table(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// OBJECT ENCODING's name for the current representation.
    pub fn encoding(&self) -> &'static str {
        match &self.repr {
            Repr::Pack(_) => "listpack",
            Repr::Table(_) => "hashtable",
        }
    }

    pub fn is_packed(&self) -> bool {
        matches!(self.repr, Repr::Pack(_))
    }

    /// Heap bytes owned (for memory accounting).
    pub fn heap_size(&self) -> usize {
        match &self.repr {
            Repr::Pack(p) => p.buf.capacity(),
            Repr::Table(t) => {
                let node = std::mem::size_of::<Pair>() + 2 * std::mem::size_of::<usize>();
                t.bucket_count() * std::mem::size_of::<usize>()
                    + t.iter()
                        .map(|p| node + p.field.heap_size() + p.value.heap_size())
                        .sum::<usize>()
            }
        }
    }

    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match &self.repr {
            Repr::Pack(p) => p.get(field),
            Repr::Table(t) => t.get(field).map(|p| p.value.as_slice()),
        }
    }

    pub fn contains(&self, field: &[u8]) -> bool {
        self.get(field).is_some()
    }

    /// Converts to the table encoding (no-op when already there).
    pub fn convert_to_table(&mut self) {
        if let Repr::Pack(p) = &self.repr {
            let mut t = Table::new();
            for (f, v) in p.iter() {
                t.insert_new(Pair {
                    field: CompactBytes::new(f),
                    value: CompactBytes::new(v),
                });
            }
            self.repr = Repr::Table(t);
        }
    }

    /// Sets `field` to `value`; true when the field is new. Converts to the
    /// table encoding first when either is longer than the limit, and after
    /// when the field count passes it.
    pub fn set(&mut self, field: &[u8], value: &[u8], limits: Limits) -> bool {
        if self.is_packed() && (field.len() > limits.max_value || value.len() > limits.max_value) {
            self.convert_to_table();
        }
        let new = match &mut self.repr {
            Repr::Pack(p) => p.set(field, value),
            Repr::Table(t) => match t.get_mut(field) {
                Some(p) => {
                    p.value.assign(value);
                    false
                }
                None => {
                    t.insert_new(Pair {
                        field: CompactBytes::new(field),
                        value: CompactBytes::new(value),
                    });
                    true
                }
            },
        };
        if self.is_packed() && self.len() > limits.max_entries {
            self.convert_to_table();
        }
        new
    }

    /// Removes `field`; true when it was there.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match &mut self.repr {
            Repr::Pack(p) => p.remove(field),
            Repr::Table(t) => t.remove(field).is_some(),
        }
    }

    /// Every (field, value) pair: insertion order for a listpack, table
    /// order otherwise.
    pub fn iter(&self) -> Iter<'_> {
        match &self.repr {
            Repr::Pack(p) => Iter::Pack(p.iter()),
            Repr::Table(t) => Iter::Table(Box::new(t.iter())),
        }
    }

    /// A random pair; `rand(n)` must return a number below `n`.
    pub fn random(&self, mut rand: impl FnMut(usize) -> usize) -> Option<(&[u8], &[u8])> {
        match &self.repr {
            Repr::Pack(p) => {
                if p.len == 0 {
                    return None;
                }
                p.iter().nth(rand(p.len))
            }
            Repr::Table(t) => {
                fair_random(t, rand).map(|p| (p.field.as_slice(), p.value.as_slice()))
            }
        }
    }

    /// One HSCAN step. A listpack is returned whole with cursor 0; a table is
    /// walked by buckets from `cursor` until `count` items (a field and its
    /// value count as two, as Redis counts them) are gathered or `count * 10`
    /// buckets were visited. Returns the next cursor.
    pub fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(&[u8], &[u8])) -> u64 {
        match &self.repr {
            Repr::Pack(p) => {
                for (k, v) in p.iter() {
                    f(k, v);
                }
                0
            }
            Repr::Table(t) => {
                let mut cursor = cursor;
                let mut items = 0usize;
                let mut budget = count.saturating_mul(10);
                loop {
                    cursor = t.scan_bucket(cursor, |p| {
                        items += 2;
                        f(&p.field, &p.value);
                    });
                    if cursor == 0 || budget == 0 || items >= count {
                        break;
                    }
                    budget -= 1;
                }
                cursor
            }
        }
    }
}

#[cfg(test)]
mod len_tests {
    #[test]
    fn len_size_matches_put_len() {
        for n in [0usize, 1, 127, 128, 300, 16383, 16384, 1 << 40] {
            let mut v = Vec::new();
            super::put_len(&mut v, n);
            assert_eq!(super::len_size(n), v.len(), "{n}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{HashMap, HashSet};

    const SMALL: Limits = Limits {
        max_entries: 8,
        max_value: 10,
    };

    #[derive(Debug, Clone)]
    enum Op {
        Set(u8, Vec<u8>),
        Remove(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0u8..24, proptest::collection::vec(any::<u8>(), 0..14)).prop_map(|(f, v)| Op::Set(f, v)),
            1 => (0u8..24).prop_map(Op::Remove),
        ]
    }

    fn field(f: u8) -> Vec<u8> {
        if f == 23 {
            b"a-field-longer-than-ten".to_vec()
        } else {
            format!("f{f}").into_bytes()
        }
    }

    proptest! {
        #[test]
        fn behaves_like_a_hashmap_across_conversions(ops in proptest::collection::vec(op(), 0..200)) {
            let mut h = Hash::new();
            let mut m: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
            let mut order: Vec<Vec<u8>> = Vec::new();
            let mut converted = false;
            for op in ops {
                match op {
                    Op::Set(f, v) => {
                        let f = field(f);
                        let new = h.set(&f, &v, SMALL);
                        prop_assert_eq!(new, m.insert(f.clone(), v.clone()).is_none());
                        if new { order.push(f.clone()); }
                        if f.len() > 10 || v.len() > 10 || m.len() > 8 { converted = true; }
                    }
                    Op::Remove(f) => {
                        let f = field(f);
                        prop_assert_eq!(h.remove(&f), m.remove(&f).is_some());
                        order.retain(|x| *x != f);
                    }
                }
                prop_assert_eq!(h.len(), m.len());
                prop_assert_eq!(h.encoding(), if converted { "hashtable" } else { "listpack" });
            }
            for (f, v) in &m {
                prop_assert_eq!(h.get(f), Some(v.as_slice()));
            }
            let got: Vec<Vec<u8>> = h.iter().map(|(f, _)| f.to_vec()).collect();
            if h.is_packed() {
                prop_assert_eq!(&got, &order);
            }
            let got: HashSet<Vec<u8>> = got.into_iter().collect();
            prop_assert_eq!(got.len(), m.len());
            prop_assert_eq!(h.clone(), h);
        }

        #[test]
        fn scan_visits_every_field(n in 0usize..300, count in 1usize..20) {
            let mut h = Hash::new();
            let lim = Limits { max_entries: 16, max_value: 64 };
            for i in 0..n {
                h.set(format!("f{i}").as_bytes(), b"v", lim);
            }
            let mut seen = HashSet::new();
            let mut cursor = 0;
            loop {
                cursor = h.scan(cursor, count, |f, _| { seen.insert(f.to_vec()); });
                if cursor == 0 { break; }
            }
            prop_assert_eq!(seen.len(), n);
        }
    }

    #[test]
    fn long_entries_use_multibyte_lengths() {
        let mut h = Hash::new();
        let lim = Limits {
            max_entries: 10,
            max_value: 100_000,
        };
        let big = vec![b'x'; 70_000];
        h.set(b"a", &big, lim);
        h.set(b"b", b"1", lim);
        assert_eq!(h.get(b"a"), Some(big.as_slice()));
        h.set(b"a", b"short", lim);
        assert_eq!(h.get(b"a"), Some(&b"short"[..]));
        assert_eq!(h.get(b"b"), Some(&b"1"[..]));
        assert!(h.is_packed());
        let r = h.random(|n| n - 1).map(|(f, _)| f.to_vec());
        assert_eq!(r, Some(b"b".to_vec()));
    }
}
