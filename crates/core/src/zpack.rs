//! The packed (`listpack`) sorted-set encoding: every (member, score) pair
//! in one byte buffer, sorted by score then member, sized exactly.
//!
//! A pair may start with a marker byte `0xE8..=0xFF`: its member shares its
//! first `marker - 0xE7` (2 to 24) bytes with the previous pair's member,
//! and only the rest (the suffix) is stored (front coding: members of one
//! set often share a prefix, `user:`, `member:0`). Then one of two forms:
//! - compact, `0LLLLSSS SSSSSSSS` then the suffix: a suffix of at most 15
//!   bytes of a member that is not an integer, with an integral score in
//!   0..=2047 (leaderboard-style sets pay 2 bytes per pair beyond the
//!   suffix);
//! - general: a member entry (tag >= 0x80) then a score entry.
//!
//! Member entry tags: `10LLLLLL` suffix of 0..=63 bytes; `110LLLLL LLLLLLLL`
//! suffix of up to 8191 bytes; `0xE0` + 4-byte length, a longer suffix;
//! `0xE1..=0xE6`, a member that is a canonical integer (as Redis's
//! string2ll reads it), stored in 1, 2, 3, 4, 6 or 8 little-endian bytes
//! (never after a marker).
//! Score entry tags: `0x00..=0xBF` the integer itself; `110SSSSS SSSSSSSS`
//! a 13-bit two's-complement integer; `0xE1..=0xE4` an integer in 3, 4, 6
//! or 8 bytes; `0xE5` an f32 that holds the score exactly; `0xE6` an f64.
//!
//! Invariants: pairs are in (score, member) order with no member twice;
//! scores are never NaN and never -0 (stored as 0, as Redis's text form
//! of a packed score has no sign on zero); a pair's marker never claims
//! more bytes than the previous member has, so a pair decodes only after
//! its predecessor, and removing or inserting a pair re-encodes the pair
//! after it; the buffer holds exactly the bytes of its pairs.

use crate::set::{format_i64, parse_i64};
use std::cmp::Ordering;

/// A member's bytes, borrowed or rebuilt from the packed form.
pub enum Elem<'a> {
    Bytes(&'a [u8]),
    Owned(Vec<u8>),
}

impl std::ops::Deref for Elem<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Elem::Bytes(b) => b,
            Elem::Owned(v) => v,
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

/// Markers for a shared prefix of 2..=24 bytes.
const MARKER: u8 = 0xE7;
const MAX_SHARED: usize = 24;

/// Appends the encoding of one pair that follows a pair whose member is
/// `prev` (empty for the first pair).
fn put_pair(out: &mut Vec<u8>, prev: &[u8], member: &[u8], score: f64) {
    if let Some(n) = parse_i64(member) {
        let w = int_width(n, 0);
        out.push(0xE1 + w as u8);
        put_int(out, n, INT_SIZES[w]);
        put_score(out, score);
        return;
    }
    let shared = prev
        .iter()
        .zip(member)
        .take(MAX_SHARED)
        .take_while(|(a, b)| a == b)
        .count();
    let suffix = if shared >= 2 {
        out.push(MARKER + shared as u8);
        &member[shared..]
    } else {
        member
    };
    if let (true, Some(s @ 0..=2047)) = (suffix.len() <= 15, integral(score)) {
        out.push(((suffix.len() as u8) << 3) | (s >> 8) as u8);
        out.push(s as u8);
        out.extend_from_slice(suffix);
        return;
    }
    let n = suffix.len();
    if n <= 63 {
        out.push(0x80 | n as u8);
    } else if n <= 8191 {
        out.push(0xC0 | (n >> 8) as u8);
        out.push(n as u8);
    } else {
        out.push(0xE0);
        out.extend_from_slice(&(n as u32).to_le_bytes());
    }
    out.extend_from_slice(suffix);
    put_score(out, score);
}

/// Reads the pair at `pos` whose predecessor's member is in `text`,
/// leaving this pair's member there; returns (score, end).
fn read_pair(buf: &[u8], mut pos: usize, text: &mut Vec<u8>) -> (f64, usize) {
    let mut tag = buf.get(pos).copied().unwrap_or(0);
    if tag > MARKER {
        text.truncate(usize::from(tag - MARKER));
        pos += 1;
        tag = buf.get(pos).copied().unwrap_or(0);
    } else {
        text.clear();
    }
    let slice = |from: usize, len: usize| {
        let end = (from + len).min(buf.len());
        buf.get(from.min(end)..end).unwrap_or_default()
    };
    if tag < 0x80 {
        let len = usize::from(tag >> 3);
        let s = (u16::from(tag & 7) << 8) | u16::from(buf.get(pos + 1).copied().unwrap_or(0));
        text.extend_from_slice(slice(pos + 2, len));
        return (f64::from(s), pos + 2 + len);
    }
    let end = match tag {
        0x80..=0xBF => {
            let len = usize::from(tag & 0x3F);
            text.extend_from_slice(slice(pos + 1, len));
            pos + 1 + len
        }
        0xC0..=0xDF => {
            let len = (usize::from(tag & 0x1F) << 8)
                | usize::from(buf.get(pos + 1).copied().unwrap_or(0));
            text.extend_from_slice(slice(pos + 2, len));
            pos + 2 + len
        }
        0xE0 => {
            let mut b = [0u8; 4];
            let l = slice(pos + 1, 4);
            b[..l.len()].copy_from_slice(l);
            let len = u32::from_le_bytes(b) as usize;
            text.extend_from_slice(slice(pos + 5, len));
            pos + 5 + len
        }
        _ => {
            let w = INT_SIZES[usize::from(tag - 0xE1).min(INT_SIZES.len() - 1)];
            text.extend_from_slice(format_i64(get_int(slice(pos + 1, w), w)).as_bytes());
            pos + 1 + w
        }
    };
    read_score(buf, end)
}

/// A walk over the pairs, keeping the current and previous members.
struct Walk<'a> {
    buf: &'a [u8],
    /// Where the current pair starts, and where the next one does.
    start: usize,
    pos: usize,
    /// The current pair's member and score.
    text: Vec<u8>,
    score: f64,
    /// The member of the pair before the current one.
    prev: Vec<u8>,
}

impl<'a> Walk<'a> {
    fn new(buf: &'a [u8]) -> Walk<'a> {
        Walk {
            buf,
            start: 0,
            pos: 0,
            text: Vec::new(),
            score: 0.0,
            prev: Vec::new(),
        }
    }

    /// Moves to the next pair; false past the last.
    fn step(&mut self) -> bool {
        if self.pos >= self.buf.len() {
            return false;
        }
        std::mem::swap(&mut self.prev, &mut self.text);
        self.text.clear();
        self.text.extend_from_slice(&self.prev);
        self.start = self.pos;
        let (score, end) = read_pair(self.buf, self.pos, &mut self.text);
        self.score = score;
        self.pos = end;
        true
    }
}

#[derive(Clone, Default, PartialEq)]
pub(crate) struct ZPack {
    buf: Vec<u8>,
    len: u32,
}

impl ZPack {
    pub(crate) fn len(&self) -> usize {
        self.len as usize
    }

    pub(crate) fn heap_size(&self) -> usize {
        self.buf.capacity()
    }

    /// Visits every pair in order: (member, score).
    pub(crate) fn for_each(&self, mut f: impl FnMut(&[u8], f64)) {
        let mut w = Walk::new(&self.buf);
        while w.step() {
            f(&w.text, w.score);
        }
    }

    pub(crate) fn score(&self, member: &[u8]) -> Option<f64> {
        let mut w = Walk::new(&self.buf);
        while w.step() {
            if w.text == member {
                return Some(w.score);
            }
        }
        None
    }

    /// Replaces the bytes `start..end` (whole pairs, the first following a
    /// pair whose member is `prev`, the last having member `last`) with
    /// `new` pairs, and re-encodes the pair after them against its new
    /// predecessor.
    fn replace(
        &mut self,
        start: usize,
        end: usize,
        prev: &[u8],
        last: &[u8],
        new: &[(&[u8], f64)],
    ) {
        let mut out = Vec::new();
        let mut before = prev;
        for (m, s) in new {
            put_pair(&mut out, before, m, *s);
            before = m;
        }
        let mut stop = end;
        if end < self.buf.len() {
            let mut text = last.to_vec();
            let (score, next) = read_pair(&self.buf, end, &mut text);
            put_pair(&mut out, before, &text, score);
            stop = next;
        }
        let grow = out.len().saturating_sub(stop - start);
        // Exact growth, as a listpack: many small sets, each otherwise up
        // to half empty.
        self.buf.reserve_exact(grow);
        self.buf.splice(start..stop, out);
        if self.buf.capacity() > self.buf.len() + self.buf.len() / 4 {
            self.buf.shrink_to_fit();
        }
    }

    /// Inserts a member known to be absent, in order.
    pub(crate) fn insert(&mut self, member: &[u8], score: f64) {
        let score = score + 0.0;
        let mut w = Walk::new(&self.buf);
        let mut at = None;
        while w.step() {
            let ord = match w.score.partial_cmp(&score) {
                Some(Ordering::Equal) | None => w.text.as_slice().cmp(member),
                Some(o) => o,
            };
            if ord != Ordering::Less {
                at = Some((w.start, std::mem::take(&mut w.prev)));
                break;
            }
        }
        let (start, prev) = at.unwrap_or_else(|| (self.buf.len(), std::mem::take(&mut w.text)));
        self.replace(start, start, &prev, &prev, &[(member, score)]);
        self.len += 1;
    }

    /// Removes `member`; returns its score.
    pub(crate) fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let mut w = Walk::new(&self.buf);
        while w.step() {
            if w.text == member {
                let (start, end, score) = (w.start, w.pos, w.score);
                let (prev, last) = (std::mem::take(&mut w.prev), std::mem::take(&mut w.text));
                self.replace(start, end, &prev, &last, &[]);
                self.len -= 1;
                return Some(score);
            }
        }
        None
    }

    pub(crate) fn get(&self, k: usize) -> Option<(Vec<u8>, f64)> {
        let mut w = Walk::new(&self.buf);
        for _ in 0..=k {
            if !w.step() {
                return None;
            }
        }
        Some((w.text, w.score))
    }

    /// How many leading pairs satisfy `pred`.
    pub(crate) fn prefix_len(&self, mut pred: impl FnMut(f64, &[u8]) -> bool) -> usize {
        let mut w = Walk::new(&self.buf);
        let mut n = 0;
        while w.step() && pred(w.score, &w.text) {
            n += 1;
        }
        n
    }

    /// Visits ranks `lo..hi` (clamped by the caller), backwards when `rev`.
    pub(crate) fn range(&self, lo: usize, hi: usize, rev: bool, f: &mut dyn FnMut(&[u8], f64)) {
        let mut w = Walk::new(&self.buf);
        let mut kept = Vec::new();
        for i in 0..hi {
            if !w.step() {
                break;
            }
            if i < lo {
                continue;
            }
            if rev {
                kept.push((w.text.clone(), w.score));
            } else {
                f(&w.text, w.score);
            }
        }
        for (m, s) in kept.iter().rev() {
            f(m, *s);
        }
    }

    /// Removes ranks `lo..hi` (clamped by the caller), handing each to `f`.
    pub(crate) fn remove_range(&mut self, lo: usize, hi: usize, f: &mut dyn FnMut(&[u8], f64)) {
        let mut w = Walk::new(&self.buf);
        let mut start = 0;
        let mut prev = Vec::new();
        for i in 0..hi {
            if !w.step() {
                break;
            }
            if i == lo {
                start = w.start;
                prev = w.prev.clone();
            }
            if i >= lo {
                f(&w.text, w.score);
            }
        }
        let (end, last) = (w.pos, std::mem::take(&mut w.text));
        self.replace(start, end, &prev, &last, &[]);
        self.len -= (hi - lo) as u32;
    }

    /// Builds from pairs already in order with distinct members.
    pub(crate) fn from_sorted(pairs: impl Iterator<Item = (Vec<u8>, f64)>) -> ZPack {
        let mut z = ZPack::default();
        let mut prev = Vec::new();
        for (m, s) in pairs {
            put_pair(&mut z.buf, &prev, &m, s + 0.0);
            z.len += 1;
            prev = m;
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
            proptest::collection::vec(b'a'..b'c', 0..30),
            proptest::collection::vec(any::<u8>(), 60..70),
            proptest::collection::vec(any::<u8>(), 8190..8193),
            Just(b"007".to_vec()),
            Just(b"-0".to_vec()),
        ]
    }

    proptest! {
        #[test]
        fn pairs_round_trip(prev in member(), m in member(), s in score()) {
            let mut buf = Vec::new();
            put_pair(&mut buf, &prev, &m, s + 0.0);
            let mut text = prev.clone();
            let (gs, end) = read_pair(&buf, 0, &mut text);
            prop_assert_eq!(end, buf.len());
            prop_assert_eq!(text, m);
            prop_assert_eq!(gs.to_bits(), (s + 0.0).to_bits());
        }
    }

    #[test]
    fn leaderboard_pairs_take_two_bytes_beyond_the_suffix() {
        let mut buf = Vec::new();
        put_pair(&mut buf, b"", b"member:042", 999.0);
        assert_eq!(buf.len(), 12);
        buf.clear();
        put_pair(&mut buf, b"member:041", b"member:042", 999.0);
        assert_eq!(buf.len(), 4);
    }
}
