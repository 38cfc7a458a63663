//! The packed (`listpack`) sorted-set encoding: every (member, score) pair
//! in one byte buffer, sorted by score then member, sized exactly.
//!
//! A pair is one of two forms, chosen by the pair alone (so every pair has
//! exactly one encoding):
//! - compact, `0LLLLSSS SSSSSSSS` then the member's bytes: a member of at
//!   most 15 bytes that is not an integer, with an integral score in
//!   0..=2047 (leaderboard-style sets pay 2 bytes per member beyond the
//!   member's text);
//! - general: a member entry (tag >= 0x80) then a score entry.
//!
//! Member entry tags: `10LLLLLL` string of 0..=63 bytes; `110LLLLL LLLLLLLL`
//! string of up to 8191 bytes; `0xE0` + 4-byte length, a longer string;
//! `0xE1..=0xE6`, a member that is a canonical integer (as Redis's
//! string2ll reads it), stored in 1, 2, 3, 4, 6 or 8 little-endian bytes.
//! Score entry tags: `0x00..=0xBF` the integer itself; `110SSSSS SSSSSSSS`
//! a 13-bit two's-complement integer; `0xE1..=0xE4` an integer in 3, 4, 6
//! or 8 bytes; `0xE5` an f32 that holds the score exactly; `0xE6` an f64.
//!
//! Invariants: pairs are in (score, member) order with no member twice;
//! scores are never NaN and never -0 (stored as 0, as Redis's text form
//! of a packed score has no sign on zero); the buffer holds exactly the
//! bytes of its pairs (no spare capacity is kept on purpose).

use crate::set::{format_i64, parse_i64, IntText};
use std::cmp::Ordering;

/// A member as stored: its bytes, or the integer its text spells.
#[derive(Clone, Copy)]
pub(crate) enum Mem<'a> {
    Str(&'a [u8]),
    Int(i64),
}

/// A member's bytes, borrowed from the buffer or formatted from an integer.
pub enum Elem<'a> {
    Bytes(&'a [u8]),
    Int(IntText),
}

impl std::ops::Deref for Elem<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Elem::Bytes(b) => b,
            Elem::Int(t) => t.as_bytes(),
        }
    }
}

impl<'a> Mem<'a> {
    pub(crate) fn elem(self) -> Elem<'a> {
        match self {
            Mem::Str(b) => Elem::Bytes(b),
            Mem::Int(n) => Elem::Int(format_i64(n)),
        }
    }

    fn of(member: &'a [u8]) -> Mem<'a> {
        match parse_i64(member) {
            Some(n) => Mem::Int(n),
            None => Mem::Str(member),
        }
    }

    fn eq(self, other: Mem<'_>) -> bool {
        match (self, other) {
            (Mem::Str(a), Mem::Str(b)) => a == b,
            (Mem::Int(a), Mem::Int(b)) => a == b,
            _ => false,
        }
    }
}

const INT_SIZES: [usize; 6] = [1, 2, 3, 4, 6, 8];

/// The narrowest of `INT_SIZES` (from index `from`) that holds `n`.
fn int_width(n: i64, from: usize) -> usize {
    for (i, &w) in INT_SIZES.iter().enumerate().skip(from) {
        let bits = 8 * w as u32;
        if bits == 64 || (n >= -(1i64 << (bits - 1)) && n < (1i64 << (bits - 1))) {
            return i;
        }
    }
    INT_SIZES.len() - 1
}

fn put_int(out: &mut Vec<u8>, n: i64, width: usize) {
    out.extend_from_slice(&n.to_le_bytes()[..width]);
}

fn get_int(b: &[u8], width: usize) -> i64 {
    let mut raw = [0u8; 8];
    let w = width.min(b.len());
    raw[..w].copy_from_slice(&b[..w]);
    let shift = 64 - 8 * w as u32;
    if shift == 64 {
        return 0;
    }
    (i64::from_le_bytes(raw) << shift) >> shift
}

/// The score as an integer, when it is one exactly.
fn integral(score: f64) -> Option<i64> {
    const LIM: f64 = 9_223_372_036_854_775_808.0; // 2^63
    (score.fract() == 0.0 && (-LIM..LIM).contains(&score)).then_some(score as i64)
}

fn put_score(out: &mut Vec<u8>, score: f64) {
    match integral(score) {
        Some(n @ 0..=0xBF) => out.push(n as u8),
        Some(n @ -4096..=4095) => {
            let v = (n as u16) & 0x1FFF;
            out.push(0xC0 | (v >> 8) as u8);
            out.push(v as u8);
        }
        Some(n) => {
            let w = int_width(n, 2);
            out.push(0xDF + w as u8);
            put_int(out, n, INT_SIZES[w]);
        }
        None if f64::from(score as f32) == score => {
            out.push(0xE5);
            out.extend_from_slice(&(score as f32).to_le_bytes());
        }
        None => {
            out.push(0xE6);
            out.extend_from_slice(&score.to_le_bytes());
        }
    }
}

/// Reads a score entry at `pos`: (score, end).
fn read_score(buf: &[u8], pos: usize) -> (f64, usize) {
    let tag = buf.get(pos).copied().unwrap_or(0);
    let body = buf.get(pos + 1..).unwrap_or_default();
    match tag {
        0..=0xBF => (f64::from(tag), pos + 1),
        0xC0..=0xDF => {
            let v = (u16::from(tag & 0x1F) << 8) | u16::from(body.first().copied().unwrap_or(0));
            // Sign-extend the 13-bit value.
            (f64::from(((v << 3) as i16) >> 3), pos + 2)
        }
        0xE5 => {
            let mut b = [0u8; 4];
            let n = body.len().min(4);
            b[..n].copy_from_slice(&body[..n]);
            (f64::from(f32::from_le_bytes(b)), pos + 5)
        }
        0xE6 => {
            let mut b = [0u8; 8];
            let n = body.len().min(8);
            b[..n].copy_from_slice(&body[..n]);
            (f64::from_le_bytes(b), pos + 9)
        }
        _ => {
            let w = INT_SIZES[usize::from(tag - 0xDF).min(INT_SIZES.len() - 1)];
            (get_int(body, w) as f64, pos + 1 + w)
        }
    }
}

/// Appends the encoding of one pair.
fn put_pair(out: &mut Vec<u8>, member: Mem<'_>, score: f64) {
    match member {
        Mem::Str(b) => {
            if let (true, Some(s @ 0..=2047)) = (b.len() <= 15, integral(score)) {
                out.push(((b.len() as u8) << 3) | (s >> 8) as u8);
                out.push(s as u8);
                out.extend_from_slice(b);
                return;
            }
            let n = b.len();
            if n <= 63 {
                out.push(0x80 | n as u8);
            } else if n <= 8191 {
                out.push(0xC0 | (n >> 8) as u8);
                out.push(n as u8);
            } else {
                out.push(0xE0);
                out.extend_from_slice(&(n as u32).to_le_bytes());
            }
            out.extend_from_slice(b);
        }
        Mem::Int(n) => {
            let w = int_width(n, 0);
            out.push(0xE1 + w as u8);
            put_int(out, n, INT_SIZES[w]);
        }
    }
    put_score(out, score);
}

/// Reads the pair at `pos`: (member, score, end).
fn read_pair(buf: &[u8], pos: usize) -> (Mem<'_>, f64, usize) {
    let tag = buf.get(pos).copied().unwrap_or(0);
    let slice = |from: usize, len: usize| {
        let end = (from + len).min(buf.len());
        buf.get(from.min(end)..end).unwrap_or_default()
    };
    if tag < 0x80 {
        let len = usize::from(tag >> 3);
        let s = (u16::from(tag & 7) << 8) | u16::from(buf.get(pos + 1).copied().unwrap_or(0));
        return (Mem::Str(slice(pos + 2, len)), f64::from(s), pos + 2 + len);
    }
    let (member, end) = match tag {
        0x80..=0xBF => {
            let len = usize::from(tag & 0x3F);
            (Mem::Str(slice(pos + 1, len)), pos + 1 + len)
        }
        0xC0..=0xDF => {
            let len = (usize::from(tag & 0x1F) << 8)
                | usize::from(buf.get(pos + 1).copied().unwrap_or(0));
            (Mem::Str(slice(pos + 2, len)), pos + 2 + len)
        }
        0xE0 => {
            let mut b = [0u8; 4];
            let l = slice(pos + 1, 4);
            b[..l.len()].copy_from_slice(l);
            let len = u32::from_le_bytes(b) as usize;
            (Mem::Str(slice(pos + 5, len)), pos + 5 + len)
        }
        _ => {
            let w = INT_SIZES[usize::from(tag - 0xE1).min(INT_SIZES.len() - 1)];
            (Mem::Int(get_int(slice(pos + 1, w), w)), pos + 1 + w)
        }
    };
    let (score, end) = read_score(buf, end);
    (member, score, end)
}

/// Compares a stored member with raw member bytes.
fn cmp_mem(m: Mem<'_>, bytes: &[u8]) -> Ordering {
    match m {
        Mem::Str(b) => b.cmp(bytes),
        Mem::Int(n) => format_i64(n).as_bytes().cmp(bytes),
    }
}

/// Calls `f` with the member's bytes.
pub(crate) fn with_bytes<R>(m: Mem<'_>, f: impl FnOnce(&[u8]) -> R) -> R {
    match m {
        Mem::Str(b) => f(b),
        Mem::Int(n) => f(format_i64(n).as_bytes()),
    }
}

/// Where one pair lies.
#[derive(Clone, Copy)]
pub(crate) struct At {
    pub start: usize,
    pub end: usize,
    pub score: f64,
}

#[derive(Clone, Default, PartialEq)]
pub(crate) struct ZPack {
    buf: Vec<u8>,
    len: u32,
}

pub(crate) struct Iter<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Iter<'a> {
    /// (member, score, start of the pair)
    type Item = (Mem<'a>, f64, usize);
    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let start = self.pos;
        let (m, s, end) = read_pair(self.buf, start);
        self.pos = end;
        Some((m, s, start))
    }
}

impl ZPack {
    pub(crate) fn len(&self) -> usize {
        self.len as usize
    }

    pub(crate) fn heap_size(&self) -> usize {
        self.buf.capacity()
    }

    pub(crate) fn iter(&self) -> Iter<'_> {
        Iter {
            buf: &self.buf,
            pos: 0,
        }
    }

    pub(crate) fn find(&self, member: &[u8]) -> Option<At> {
        let want = Mem::of(member);
        let mut it = self.iter();
        while let Some((m, score, start)) = it.next() {
            if m.eq(want) {
                return Some(At {
                    start,
                    end: it.pos,
                    score,
                });
            }
        }
        None
    }

    /// Inserts a member known to be absent, in order.
    pub(crate) fn insert(&mut self, member: &[u8], score: f64) {
        let score = score + 0.0;
        let at = self
            .iter()
            .find(|(m, s, _)| {
                let ord = match s.partial_cmp(&score) {
                    Some(Ordering::Equal) | None => cmp_mem(*m, member),
                    Some(o) => o,
                };
                ord != Ordering::Less
            })
            .map_or(self.buf.len(), |(_, _, start)| start);
        let mut pair = Vec::with_capacity(16);
        put_pair(&mut pair, Mem::of(member), score);
        // Exact growth, as a listpack: many small sets, each otherwise up
        // to half empty.
        self.buf.reserve_exact(pair.len());
        self.buf.splice(at..at, pair);
        self.len += 1;
    }

    /// Removes the pair at `at` (from `find`).
    pub(crate) fn remove(&mut self, at: At) {
        self.buf.drain(at.start..at.end);
        self.len -= 1;
        self.shrink();
    }

    fn shrink(&mut self) {
        if self.buf.capacity() > self.buf.len() + self.buf.len() / 4 {
            self.buf.shrink_to_fit();
        }
    }

    /// The byte offset of the pair of rank `k` (the buffer's end past the
    /// last).
    fn offset(&self, k: usize) -> usize {
        self.iter()
            .nth(k)
            .map_or(self.buf.len(), |(_, _, start)| start)
    }

    pub(crate) fn get(&self, k: usize) -> Option<(Mem<'_>, f64)> {
        self.iter().nth(k).map(|(m, s, _)| (m, s))
    }

    /// How many leading pairs satisfy `pred`.
    pub(crate) fn prefix_len(&self, mut pred: impl FnMut(f64, &[u8]) -> bool) -> usize {
        self.iter()
            .take_while(|(m, s, _)| with_bytes(*m, |b| pred(*s, b)))
            .count()
    }

    /// Visits ranks `lo..hi` (clamped by the caller), backwards when `rev`.
    pub(crate) fn range(&self, lo: usize, hi: usize, rev: bool, f: &mut dyn FnMut(&[u8], f64)) {
        let part = self.iter().skip(lo).take(hi - lo);
        if rev {
            let mut items: Vec<(Mem<'_>, f64)> = part.map(|(m, s, _)| (m, s)).collect();
            items.reverse();
            for (m, s) in items {
                with_bytes(m, |b| f(b, s));
            }
        } else {
            for (m, s, _) in part {
                with_bytes(m, |b| f(b, s));
            }
        }
    }

    /// Removes ranks `lo..hi` (clamped by the caller), handing each to `f`.
    pub(crate) fn remove_range(&mut self, lo: usize, hi: usize, f: &mut dyn FnMut(&[u8], f64)) {
        let start = self.offset(lo);
        let mut it = Iter {
            buf: &self.buf,
            pos: start,
        };
        for _ in lo..hi {
            if let Some((m, s, _)) = it.next() {
                with_bytes(m, |b| f(b, s));
            }
        }
        let end = it.pos;
        self.buf.drain(start..end);
        self.len -= (hi - lo) as u32;
        self.shrink();
    }

    /// Builds from pairs already in order with distinct members.
    pub(crate) fn from_sorted(pairs: impl Iterator<Item = (Vec<u8>, f64)>) -> ZPack {
        let mut z = ZPack::default();
        for (m, s) in pairs {
            put_pair(&mut z.buf, Mem::of(&m), s + 0.0);
            z.len += 1;
        }
        z.buf.shrink_to_fit();
        z
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn score() -> impl Strategy<Value = f64> {
        prop_oneof![
            (-5000i64..5000).prop_map(|n| n as f64),
            any::<i64>().prop_map(|n| n as f64),
            any::<f32>()
                .prop_filter("not NaN", |x| !x.is_nan())
                .prop_map(f64::from),
            any::<f64>().prop_filter("not NaN", |x| !x.is_nan()),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(-0.0),
        ]
    }

    fn member() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            any::<i64>().prop_map(|n| n.to_string().into_bytes()),
            (-300i64..300).prop_map(|n| n.to_string().into_bytes()),
            proptest::collection::vec(any::<u8>(), 0..20),
            proptest::collection::vec(any::<u8>(), 60..70),
            proptest::collection::vec(any::<u8>(), 8190..8193),
            Just(b"007".to_vec()),
            Just(b"-0".to_vec()),
        ]
    }

    proptest! {
        #[test]
        fn pairs_round_trip(m in member(), s in score()) {
            let mut buf = Vec::new();
            put_pair(&mut buf, Mem::of(&m), s + 0.0);
            let (got, gs, end) = read_pair(&buf, 0);
            prop_assert_eq!(end, buf.len());
            prop_assert_eq!(with_bytes(got, <[u8]>::to_vec), m);
            prop_assert_eq!(gs.to_bits(), (s + 0.0).to_bits());
        }
    }

    #[test]
    fn leaderboard_pairs_take_two_bytes_beyond_the_member() {
        let mut buf = Vec::new();
        put_pair(&mut buf, Mem::of(b"member:042"), 999.0);
        assert_eq!(buf.len(), 12);
    }
}
