//! Redis's packed blobs, as they appear inside RDB strings: listpack (read
//! and written), and the older ziplist, zipmap and intset (read; intset
//! also written). Readers check every length against the blob and never
//! allocate more than the blob's own size.

use crate::{Error, Result};
use damselfly_storage::value_canonical_int as canonical_int;

/// One element of a packed blob: a string or an integer.
#[derive(Debug, Clone, PartialEq)]
pub enum Item<'a> {
    Str(&'a [u8]),
    Int(i64),
}

impl Item<'_> {
    pub fn to_vec(&self) -> Vec<u8> {
        match self {
            Item::Str(s) => s.to_vec(),
            Item::Int(n) => itoa::Buffer::new().format(*n).as_bytes().to_vec(),
        }
    }

    /// The element as a score (listpack and ziplist zsets keep scores as
    /// text or integers).
    pub fn to_f64(&self) -> Result<f64> {
        match self {
            Item::Int(n) => Ok(*n as f64),
            Item::Str(s) => parse_f64(s),
        }
    }
}

/// Parses a score as strtod does for what Redis writes ("inf", "-inf",
/// decimal and exponent forms). NaN is refused.
pub fn parse_f64(s: &[u8]) -> Result<f64> {
    let v: f64 = std::str::from_utf8(s)
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or(Error::Bad("score is not a number"))?;
    if v.is_nan() {
        return Err(Error::Bad("NaN score"));
    }
    Ok(v)
}

fn le(b: &[u8]) -> u64 {
    b.iter()
        .rev()
        .fold(0u64, |acc, &x| (acc << 8) | u64::from(x))
}

fn slice(blob: &[u8], at: usize, n: usize) -> Result<&[u8]> {
    at.checked_add(n)
        .and_then(|end| blob.get(at..end))
        .ok_or(Error::Bad("packed entry runs past its blob"))
}

/// Sign-extends the low `bits` bits of `v`.
fn signed(v: u64, bits: u32) -> i64 {
    let shift = 64 - bits;
    ((v << shift) as i64) >> shift
}

// ---------------------------------------------------------------- listpack

const LP_HEADER: usize = 6;
const LP_END: u8 = 0xFF;

/// Bytes the back-length of an entry of `len` bytes takes.
fn backlen_size(len: usize) -> usize {
    match len {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2097150 => 3,
        2097151..=268435454 => 4,
        _ => 5,
    }
}

fn push_backlen(out: &mut Vec<u8>, len: usize) {
    // The highest group comes first, without a continuation bit; every
    // later byte has one (the blob is read backwards from an entry's end).
    let n = backlen_size(len);
    for i in (0..n).rev() {
        let b = ((len >> (7 * i)) & 127) as u8;
        out.push(if i + 1 == n { b } else { b | 128 });
    }
}

/// Parses a listpack into its elements.
pub fn listpack(blob: &[u8]) -> Result<Vec<Item<'_>>> {
    let total = le(slice(blob, 0, 4)?) as usize;
    if total != blob.len() || total < LP_HEADER + 1 {
        return Err(Error::Bad("listpack size mismatch"));
    }
    let count = le(slice(blob, 4, 2)?) as usize;
    let mut items = Vec::new();
    let mut p = LP_HEADER;
    loop {
        let b = *blob.get(p).ok_or(Error::Bad("listpack without end"))?;
        if b == LP_END {
            break;
        }
        let (item, len) = match b {
            0x00..=0x7F => (Item::Int(i64::from(b)), 1),
            0x80..=0xBF => {
                let n = usize::from(b & 0x3F);
                (Item::Str(slice(blob, p + 1, n)?), 1 + n)
            }
            0xC0..=0xDF => {
                let v = (u64::from(b & 0x1F) << 8) | le(slice(blob, p + 1, 1)?);
                (Item::Int(signed(v, 13)), 2)
            }
            0xE0..=0xEF => {
                let n = (usize::from(b & 0x0F) << 8) | le(slice(blob, p + 1, 1)?) as usize;
                (Item::Str(slice(blob, p + 2, n)?), 2 + n)
            }
            0xF0 => {
                let n = le(slice(blob, p + 1, 4)?) as usize;
                (Item::Str(slice(blob, p + 5, n)?), 5 + n)
            }
            0xF1 => (Item::Int(signed(le(slice(blob, p + 1, 2)?), 16)), 3),
            0xF2 => (Item::Int(signed(le(slice(blob, p + 1, 3)?), 24)), 4),
            0xF3 => (Item::Int(signed(le(slice(blob, p + 1, 4)?), 32)), 5),
            0xF4 => (Item::Int(le(slice(blob, p + 1, 8)?) as i64), 9),
            _ => return Err(Error::Bad("bad listpack encoding")),
        };
        let back = backlen_size(len);
        slice(blob, p + len, back)?;
        p += len + back;
        items.push(item);
    }
    if p + 1 != blob.len() || (count != 0xFFFF && count != items.len()) {
        return Err(Error::Bad("listpack count or end mismatch"));
    }
    Ok(items)
}

/// Builds a listpack the way Redis 7.0 does: strings that spell a
/// canonical integer are stored as integers, in the smallest form.
pub struct ListpackWriter {
    buf: Vec<u8>,
    count: usize,
}

impl Default for ListpackWriter {
    fn default() -> Self {
        ListpackWriter {
            buf: vec![0; LP_HEADER],
            count: 0,
        }
    }
}

impl ListpackWriter {
    /// Total size the listpack would have, terminator included.
    pub fn size(&self) -> usize {
        self.buf.len() + 1
    }

    pub fn count(&self) -> usize {
        self.count
    }

    pub fn push(&mut self, s: &[u8]) {
        match canonical_int(s) {
            Some(n) => self.push_int(n),
            None => {
                let start = self.buf.len();
                let n = s.len();
                if n < 64 {
                    self.buf.push(0x80 | n as u8);
                } else if n < 4096 {
                    self.buf.push(0xE0 | (n >> 8) as u8);
                    self.buf.push(n as u8);
                } else {
                    self.buf.push(0xF0);
                    self.buf.extend_from_slice(&(n as u32).to_le_bytes());
                }
                self.buf.extend_from_slice(s);
                let len = self.buf.len() - start;
                push_backlen(&mut self.buf, len);
                self.count += 1;
            }
        }
    }

    pub fn push_int(&mut self, n: i64) {
        let start = self.buf.len();
        match n {
            0..=127 => self.buf.push(n as u8),
            -4096..=4095 => {
                let v = (n as u16) & 0x1FFF;
                self.buf.push(0xC0 | (v >> 8) as u8);
                self.buf.push(v as u8);
            }
            -32768..=32767 => {
                self.buf.push(0xF1);
                self.buf.extend_from_slice(&(n as i16).to_le_bytes());
            }
            -8388608..=8388607 => {
                self.buf.push(0xF2);
                self.buf.extend_from_slice(&(n as i32).to_le_bytes()[..3]);
            }
            _ if i32::try_from(n).is_ok() => {
                self.buf.push(0xF3);
                self.buf.extend_from_slice(&(n as i32).to_le_bytes());
            }
            _ => {
                self.buf.push(0xF4);
                self.buf.extend_from_slice(&n.to_le_bytes());
            }
        }
        let len = self.buf.len() - start;
        push_backlen(&mut self.buf, len);
        self.count += 1;
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.buf.push(LP_END);
        let total = self.buf.len() as u32;
        self.buf[..4].copy_from_slice(&total.to_le_bytes());
        let count = self.count.min(0xFFFF) as u16;
        self.buf[4..6].copy_from_slice(&count.to_le_bytes());
        self.buf
    }
}

// ----------------------------------------------------------------- ziplist

/// Parses a ziplist (RDB 7 and older) into its elements.
pub fn ziplist(blob: &[u8]) -> Result<Vec<Item<'_>>> {
    let total = le(slice(blob, 0, 4)?) as usize;
    if total != blob.len() || total < 11 {
        return Err(Error::Bad("ziplist size mismatch"));
    }
    let count = le(slice(blob, 8, 2)?) as usize;
    let mut items = Vec::new();
    let mut p = 10;
    loop {
        let b = *blob.get(p).ok_or(Error::Bad("ziplist without end"))?;
        if b == 0xFF {
            break;
        }
        // The previous entry's length: one byte, or 0xFE and four more.
        p += if b < 0xFE { 1 } else { 5 };
        let enc = *blob.get(p).ok_or(Error::Bad("ziplist entry truncated"))?;
        let (item, len) = match enc >> 6 {
            0 => {
                let n = usize::from(enc & 0x3F);
                (Item::Str(slice(blob, p + 1, n)?), 1 + n)
            }
            1 => {
                let n = (usize::from(enc & 0x3F) << 8) | le(slice(blob, p + 1, 1)?) as usize;
                (Item::Str(slice(blob, p + 2, n)?), 2 + n)
            }
            2 => {
                let b = slice(blob, p + 1, 4)?;
                let n = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
                (Item::Str(slice(blob, p + 5, n)?), 5 + n)
            }
            _ => match enc {
                0xC0 => (Item::Int(signed(le(slice(blob, p + 1, 2)?), 16)), 3),
                0xD0 => (Item::Int(signed(le(slice(blob, p + 1, 4)?), 32)), 5),
                0xE0 => (Item::Int(le(slice(blob, p + 1, 8)?) as i64), 9),
                0xF0 => (Item::Int(signed(le(slice(blob, p + 1, 3)?), 24)), 4),
                0xFE => (Item::Int(signed(le(slice(blob, p + 1, 1)?), 8)), 2),
                0xF1..=0xFD => (Item::Int(i64::from(enc & 0x0F) - 1), 1),
                _ => return Err(Error::Bad("bad ziplist encoding")),
            },
        };
        p += len;
        items.push(item);
    }
    if p + 1 != blob.len() || (count != 0xFFFF && count != items.len()) {
        return Err(Error::Bad("ziplist count or end mismatch"));
    }
    Ok(items)
}

// ------------------------------------------------------------------ zipmap

/// Parses a zipmap (RDB 3 and older hashes) into field, value, field, ...
pub fn zipmap(blob: &[u8]) -> Result<Vec<&[u8]>> {
    let mut out = Vec::new();
    let mut p = 1;
    let len_at = |p: &mut usize| -> Result<Option<usize>> {
        let b = *blob.get(*p).ok_or(Error::Bad("zipmap without end"))?;
        *p += 1;
        Ok(match b {
            0..=253 => Some(usize::from(b)),
            254 => {
                let n = le(slice(blob, *p, 4)?) as usize;
                *p += 4;
                Some(n)
            }
            _ => None,
        })
    };
    while let Some(klen) = len_at(&mut p)? {
        out.push(slice(blob, p, klen)?);
        p += klen;
        let vlen = len_at(&mut p)?.ok_or(Error::Bad("zipmap field without value"))?;
        let free = usize::from(*blob.get(p).ok_or(Error::Bad("zipmap truncated"))?);
        p += 1;
        out.push(slice(blob, p, vlen)?);
        p = p
            .checked_add(vlen + free)
            .ok_or(Error::Bad("zipmap overflow"))?;
    }
    if p != blob.len() {
        return Err(Error::Bad("zipmap trailing bytes"));
    }
    Ok(out)
}

// ------------------------------------------------------------------ intset

/// Parses an intset: strictly ascending integers of one width.
pub fn intset(blob: &[u8]) -> Result<Vec<i64>> {
    let width = le(slice(blob, 0, 4)?) as usize;
    let count = le(slice(blob, 4, 4)?) as usize;
    if !matches!(width, 2 | 4 | 8) || Some(blob.len()) != count.checked_mul(width).map(|n| n + 8) {
        return Err(Error::Bad("intset size mismatch"));
    }
    let bits = (width * 8) as u32;
    let out: Vec<i64> = blob[8..]
        .chunks_exact(width)
        .map(|c| signed(le(c), bits))
        .collect();
    if out.windows(2).any(|w| w[0] >= w[1]) {
        return Err(Error::Bad("intset not sorted"));
    }
    Ok(out)
}

/// Builds an intset from ascending integers, in the narrowest width that
/// holds them all.
pub fn write_intset(ints: &[i64]) -> Vec<u8> {
    let width: usize = ints
        .iter()
        .map(|&n| {
            if i16::try_from(n).is_ok() {
                2
            } else if i32::try_from(n).is_ok() {
                4
            } else {
                8
            }
        })
        .max()
        .unwrap_or(2);
    let mut out = Vec::with_capacity(8 + ints.len() * width);
    out.extend_from_slice(&(width as u32).to_le_bytes());
    out.extend_from_slice(&(ints.len() as u32).to_le_bytes());
    for &n in ints {
        out.extend_from_slice(&n.to_le_bytes()[..width]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listpack_round_trips_every_encoding() {
        let big = vec![b'x'; 5000];
        let mid = vec![b'y'; 100];
        let vals: Vec<Vec<u8>> = vec![
            b"0".to_vec(),
            b"127".to_vec(),
            b"128".to_vec(),
            b"-4096".to_vec(),
            b"4095".to_vec(),
            b"-32768".to_vec(),
            b"8388607".to_vec(),
            b"-2147483648".to_vec(),
            b"9223372036854775807".to_vec(),
            b"-9223372036854775808".to_vec(),
            b"007".to_vec(),
            b"".to_vec(),
            b"hello".to_vec(),
            mid,
            big,
        ];
        let mut w = ListpackWriter::default();
        for v in &vals {
            w.push(v);
        }
        let blob = w.finish();
        let items = listpack(&blob).unwrap();
        let back: Vec<Vec<u8>> = items.iter().map(Item::to_vec).collect();
        assert_eq!(back, vals);
    }

    #[test]
    fn backlen_bytes_read_backwards() {
        let mut v = Vec::new();
        push_backlen(&mut v, 500);
        assert_eq!(v, vec![(500 >> 7) as u8, (500 & 127) as u8 | 128]);
        v.clear();
        push_backlen(&mut v, 5);
        assert_eq!(v, vec![5]);
    }

    #[test]
    fn intset_round_trips() {
        let ints = [-70000, 1, 5];
        let blob = write_intset(&ints);
        assert_eq!(&blob[..4], &4u32.to_le_bytes());
        assert_eq!(intset(&blob).unwrap(), ints);
        assert!(intset(&blob[..blob.len() - 1]).is_err());
    }

    #[test]
    fn hostile_blobs_are_errors() {
        for blob in [
            &b""[..],
            &[7, 0, 0, 0, 1, 0, 0xFF],
            &[0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0xFF],
            &[10, 0, 0, 0, 1, 0, 0xF0, 0xFF, 0xFF, 0xFF],
        ] {
            assert!(listpack(blob).is_err());
            assert!(ziplist(blob).is_err());
        }
    }
}
