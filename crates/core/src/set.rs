//! The set value type, in Redis 7.0's two encodings:
//!
//! - `intset`: the members as a sorted array of integers in one byte
//!   buffer, each 2, 4 or 8 bytes wide (the narrowest width that holds every
//!   member; adding a wider one re-encodes the array).
//! - `hashtable`: our chained `Table`, whose reverse-binary cursor gives
//!   SSCAN its guarantee across resizes.
//!
//! Invariants:
//! - An intset holds only members that are canonical 64-bit integers (as
//!   Redis's string2ll accepts them) and at most the `max_intset` given at
//!   each add; the first add that would break either converts it.
//! - A table never converts back (as in Redis 7.0).

use crate::table::{Keyed, Table};
use crate::CompactBytes;
use std::fmt;

/// One member of a table-encoded set.
#[derive(Clone)]
pub struct Entry(pub CompactBytes);

impl Keyed for Entry {
    fn key(&self) -> &[u8] {
        &self.0
    }
}

/// A member as stored: an intset's integer or a table's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Member<'a> {
    Int(i64),
    Bytes(&'a [u8]),
}

impl Member<'_> {
    pub fn to_vec(&self) -> Vec<u8> {
        match self {
            Member::Int(n) => format_i64(*n).as_bytes().to_vec(),
            Member::Bytes(b) => b.to_vec(),
        }
    }
}

/// Decimal digits of `n` without allocating.
pub struct IntText {
    buf: [u8; 20],
    start: usize,
}

impl IntText {
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

pub fn format_i64(n: i64) -> IntText {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut v = n.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if n < 0 {
        i -= 1;
        buf[i] = b'-';
    }
    IntText { buf, start: i }
}

/// Redis's string2ll: an optional '-', then digits with no leading zero
/// (or the single digit 0), in range for i64.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if digits[0] == b'0' && (digits.len() > 1 || neg) {
        return None;
    }
    let mut v: i128 = 0;
    for &d in digits {
        v = v * 10 + i128::from(d - b'0');
    }
    if neg {
        v = -v;
    }
    i64::try_from(v).ok()
}

/// A sorted array of distinct integers, each `width` bytes, little-endian.
#[derive(Clone, PartialEq, Default)]
struct IntSet {
    width: u8,
    data: Vec<u8>,
}

fn width_for(n: i64) -> u8 {
    if i16::try_from(n).is_ok() {
        2
    } else if i32::try_from(n).is_ok() {
        4
    } else {
        8
    }
}

impl IntSet {
    fn len(&self) -> usize {
        if self.width == 0 {
            0
        } else {
            self.data.len() / usize::from(self.width)
        }
    }

    fn get(&self, i: usize) -> i64 {
        let w = usize::from(self.width);
        let b = &self.data[i * w..(i + 1) * w];
        match w {
            2 => i64::from(i16::from_le_bytes([b[0], b[1]])),
            4 => i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            _ => i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
        }
    }

    fn search(&self, n: i64) -> Result<usize, usize> {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.get(mid).cmp(&n) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(mid),
            }
        }
        Err(lo)
    }

    fn encode(n: i64, width: u8) -> ([u8; 8], usize) {
        let mut out = [0u8; 8];
        let w = usize::from(width);
        out[..w].copy_from_slice(&n.to_le_bytes()[..w]);
        (out, w)
    }

    fn insert(&mut self, n: i64) -> bool {
        let need = width_for(n);
        if need > self.width {
            let old = std::mem::take(self);
            self.width = need;
            self.data.reserve((old.len() + 1) * usize::from(need));
            for i in 0..old.len() {
                let (b, w) = Self::encode(old.get(i), need);
                self.data.extend_from_slice(&b[..w]);
            }
        }
        match self.search(n) {
            Ok(_) => false,
            Err(i) => {
                let (b, w) = Self::encode(n, self.width);
                let at = i * w;
                self.data.splice(at..at, b[..w].iter().copied());
                true
            }
        }
    }

    fn remove(&mut self, n: i64) -> bool {
        match self.search(n) {
            Ok(i) => {
                let w = usize::from(self.width);
                self.data.drain(i * w..(i + 1) * w);
                true
            }
            Err(_) => false,
        }
    }

    fn contains(&self, n: i64) -> bool {
        self.search(n).is_ok()
    }
}

#[derive(Clone)]
enum Repr {
    Ints(IntSet),
    Table(Table<Entry>),
}

/// A set value.
#[derive(Clone)]
pub struct Set {
    repr: Repr,
}

impl Default for Set {
    fn default() -> Self {
        Set {
            repr: Repr::Ints(IntSet::default()),
        }
    }
}

impl PartialEq for Set {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self.encoding() == other.encoding()
            && self.iter().all(|m| other.contains_member(m))
    }
}

impl fmt::Debug for Set {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(
                self.iter()
                    .map(|m| String::from_utf8_lossy(&m.to_vec()).into_owned()),
            )
            .finish()
    }
}

/// Iterates a set's members: ascending for an intset, table order otherwise.
pub struct Iter<'a>(IterRepr<'a>);

enum IterRepr<'a> {
    Ints(&'a IntSet, usize),
    Table(Box<dyn Iterator<Item = &'a Entry> + 'a>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = Member<'a>;
    fn next(&mut self) -> Option<Member<'a>> {
        match &mut self.0 {
            IterRepr::Ints(s, i) => {
                if *i >= s.len() {
                    return None;
                }
                let n = s.get(*i);
                *i += 1;
                Some(Member::Int(n))
            }
            IterRepr::Table(t) => t.next().map(|e| Member::Bytes(e.0.as_slice())),
        }
    }
}

impl Set {
    pub fn new() -> Set {
        Set::default()
    }

    /// Warms the cache for a lookup of `member`: at `depth` 0 its bucket
    /// slot, at 1 its chain's first node (`Table::prefetch_key`); nothing
    /// to do for an intset.
    /// Warms `member`'s place in the member table (see `Table::prefetch_key`);
    /// false when there is no table to warm (a packed set).
    pub fn prefetch(&self, member: &[u8], depth: u8) -> bool {
        let Repr::Table(t) = &self.repr else {
            return false;
        };
        t.prefetch_key(member, depth > 0);
        true
    }

    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Ints(i) => i.len(),
            Repr::Table(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// OBJECT ENCODING's name for the current representation.
    pub fn encoding(&self) -> &'static str {
        match &self.repr {
            Repr::Ints(_) => "intset",
            Repr::Table(_) => "hashtable",
        }
    }

    pub fn is_intset(&self) -> bool {
        matches!(self.repr, Repr::Ints(_))
    }

    /// Heap bytes owned (for memory accounting).
    pub fn heap_size(&self) -> usize {
        match &self.repr {
            Repr::Ints(i) => i.data.capacity(),
            Repr::Table(t) => {
                let node = std::mem::size_of::<Entry>() + 2 * std::mem::size_of::<usize>();
                t.bucket_count() * std::mem::size_of::<usize>()
                    + t.iter().map(|e| node + e.0.heap_size()).sum::<usize>()
            }
        }
    }

    pub fn contains(&self, member: &[u8]) -> bool {
        match &self.repr {
            Repr::Ints(i) => parse_i64(member).is_some_and(|n| i.contains(n)),
            Repr::Table(t) => t.get(member).is_some(),
        }
    }

    pub fn contains_member(&self, m: Member<'_>) -> bool {
        match (m, &self.repr) {
            (Member::Int(n), Repr::Ints(i)) => i.contains(n),
            (Member::Int(n), Repr::Table(t)) => t.get(format_i64(n).as_bytes()).is_some(),
            (Member::Bytes(b), _) => self.contains(b),
        }
    }

    pub fn convert_to_table(&mut self) {
        if let Repr::Ints(i) = &self.repr {
            let mut t = Table::new();
            for k in 0..i.len() {
                t.insert_new(Entry(CompactBytes::new(format_i64(i.get(k)).as_bytes())));
            }
            self.repr = Repr::Table(t);
        }
    }

    /// Adds `member`; true when it is new. An intset converts to a table
    /// for a member that is not an integer, or when it grows past
    /// `max_intset` members.
    pub fn add(&mut self, member: &[u8], max_intset: usize) -> bool {
        if let Repr::Ints(i) = &mut self.repr {
            if let Some(n) = parse_i64(member) {
                let new = i.insert(n);
                if new && i.len() > max_intset {
                    self.convert_to_table();
                }
                return new;
            }
            self.convert_to_table();
        }
        match &mut self.repr {
            Repr::Table(t) => {
                if t.get(member).is_some() {
                    false
                } else {
                    t.insert_new(Entry(CompactBytes::new(member)));
                    true
                }
            }
            Repr::Ints(_) => false,
        }
    }

    /// Adds a member as `add` does, taking it in its stored form.
    pub fn add_member(&mut self, m: Member<'_>, max_intset: usize) -> bool {
        match m {
            Member::Int(n) => self.add(format_i64(n).as_bytes(), max_intset),
            Member::Bytes(b) => self.add(b, max_intset),
        }
    }

    /// Removes `member`; true when it was there.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        match &mut self.repr {
            Repr::Ints(i) => parse_i64(member).is_some_and(|n| i.remove(n)),
            Repr::Table(t) => t.remove(member).is_some(),
        }
    }

    pub fn iter(&self) -> Iter<'_> {
        match &self.repr {
            Repr::Ints(i) => Iter(IterRepr::Ints(i, 0)),
            Repr::Table(t) => Iter(IterRepr::Table(Box::new(t.iter()))),
        }
    }

    /// A random member; `rand(n)` must return a number below `n`.
    pub fn random(&self, mut rand: impl FnMut(usize) -> usize) -> Option<Member<'_>> {
        match &self.repr {
            Repr::Ints(i) => {
                let n = i.len();
                (n > 0).then(|| Member::Int(i.get(rand(n).min(n - 1))))
            }
            Repr::Table(t) => {
                crate::hash::fair_random(t, rand).map(|e| Member::Bytes(e.0.as_slice()))
            }
        }
    }

    /// Removes and returns a random member.
    pub fn pop_random(&mut self, rand: impl FnMut(usize) -> usize) -> Option<Vec<u8>> {
        let m = self.random(rand)?.to_vec();
        self.remove(&m);
        Some(m)
    }

    /// One SSCAN step. An intset is returned whole with cursor 0; a table is
    /// walked by buckets from `cursor` until `count` members are gathered or
    /// `count * 10` buckets were visited. Returns the next cursor.
    pub fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(Member<'_>)) -> u64 {
        match &self.repr {
            Repr::Ints(_) => {
                for m in self.iter() {
                    f(m);
                }
                0
            }
            Repr::Table(t) => {
                let mut cursor = cursor;
                let mut items = 0usize;
                let mut budget = count.saturating_mul(10);
                loop {
                    cursor = t.scan_bucket(cursor, |e| {
                        items += 1;
                        f(Member::Bytes(&e.0));
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
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{BTreeSet, HashSet};

    #[derive(Debug, Clone)]
    enum Op {
        Add(Vec<u8>),
        Remove(Vec<u8>),
        Pop(usize),
    }

    fn member() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            6 => (-40i64..40).prop_map(|n| n.to_string().into_bytes()),
            2 => prop_oneof![
                Just(i64::MIN), Just(i64::MAX), Just(40_000), Just(-40_000),
                Just(3_000_000_000), Just(-3_000_000_000), Just(32_767), Just(-32_768),
            ].prop_map(|n| n.to_string().into_bytes()),
            1 => prop_oneof![Just(b"x".to_vec()), Just(b"01".to_vec()), Just(b"-0".to_vec()), Just(b"".to_vec())],
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => member().prop_map(Op::Add),
            2 => member().prop_map(Op::Remove),
            1 => any::<usize>().prop_map(Op::Pop),
        ]
    }

    proptest! {
        #[test]
        fn behaves_like_a_btreeset_across_conversions(
            ops in proptest::collection::vec(op(), 0..200),
            max in 0usize..40,
        ) {
            let mut s = Set::new();
            let mut m: BTreeSet<Vec<u8>> = BTreeSet::new();
            let mut converted = false;
            for op in ops {
                match op {
                    Op::Add(x) => {
                        if parse_i64(&x).is_none() { converted = true; }
                        prop_assert_eq!(s.add(&x, max), m.insert(x.clone()));
                        if m.len() > max { converted = true; }
                    }
                    Op::Remove(x) => prop_assert_eq!(s.remove(&x), m.remove(&x)),
                    Op::Pop(r) => {
                        let mut state = r as u64;
                        let got = s.pop_random(|n| {
                            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                            ((state >> 33) as usize) % n
                        });
                        match got {
                            Some(x) => prop_assert!(m.remove(&x)),
                            None => prop_assert!(m.is_empty()),
                        }
                    }
                }
                prop_assert_eq!(s.len(), m.len());
                prop_assert_eq!(s.encoding(), if converted { "hashtable" } else { "intset" });
            }
            for x in &m {
                prop_assert!(s.contains(x));
            }
            let got: Vec<Vec<u8>> = s.iter().map(|x| x.to_vec()).collect();
            if s.is_intset() {
                let mut want: Vec<i64> = m.iter().filter_map(|x| parse_i64(x)).collect();
                want.sort_unstable();
                let got: Vec<i64> = got.iter().filter_map(|x| parse_i64(x)).collect();
                prop_assert_eq!(got, want);
            } else {
                let got: BTreeSet<Vec<u8>> = got.into_iter().collect();
                prop_assert_eq!(&got, &m);
            }
            prop_assert_eq!(s.clone(), s);
        }

        #[test]
        fn scan_visits_every_member(n in 0usize..300, count in 1usize..20) {
            let mut s = Set::new();
            for i in 0..n {
                s.add(format!("m{i}").as_bytes(), 512);
            }
            let mut seen = HashSet::new();
            let mut cursor = 0;
            loop {
                cursor = s.scan(cursor, count, |m| { seen.insert(m.to_vec()); });
                if cursor == 0 { break; }
            }
            prop_assert_eq!(seen.len(), n);
        }

        #[test]
        fn integers_parse_like_string2ll(n in any::<i64>()) {
            let t = format_i64(n);
            let want = n.to_string();
            prop_assert_eq!(t.as_bytes(), want.as_bytes());
            prop_assert_eq!(parse_i64(t.as_bytes()), Some(n));
        }
    }

    #[test]
    fn string2ll_edge_cases() {
        for bad in [
            "",
            "-",
            "-0",
            "01",
            "+1",
            " 1",
            "1 ",
            "9223372036854775808",
            "-9223372036854775809",
            "1.0",
        ] {
            assert_eq!(parse_i64(bad.as_bytes()), None, "{bad}");
        }
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
    }

    #[test]
    fn intset_widens() {
        let mut s = Set::new();
        s.add(b"5", 512);
        s.add(b"-70000", 512);
        s.add(b"9000000000", 512);
        s.add(b"1", 512);
        let got: Vec<Vec<u8>> = s.iter().map(|m| m.to_vec()).collect();
        assert_eq!(
            got,
            vec![
                b"-70000".to_vec(),
                b"1".to_vec(),
                b"5".to_vec(),
                b"9000000000".to_vec()
            ]
        );
        assert!(s.contains(b"9000000000"));
        assert!(!s.contains(b"9000000001"));
        assert!(s.heap_size() >= 32);
    }
}
