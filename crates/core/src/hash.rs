//! The hash value type, in Redis 7.0's two encodings:
//!
//! - `listpack`: every field and value in one byte array, each entry a
//!   LEB128 length followed by its bytes, field then value, in insertion
//!   order (an update keeps the field's place). Lookups are linear, which is
//!   cheap for the few short entries this encoding is used for.
//! - `hashtable`: our chained `Table`, whose reverse-binary cursor gives
//!   HSCAN its guarantee across resizes.
//!
//! A `Hash` is one word with alignment 1 (a packed pointer), so the
//! keyspace keeps it inside a key's own allocation instead of boxing it:
//! null for an empty listpack, a pointer to the listpack's block (its byte
//! length and pair count as two u32, then the pairs, allocated at exactly
//! that size), or a tagged (low bit set) pointer to a boxed table.
//!
//! Invariants:
//! - A listpack hash has at most `max_entries` fields and no field or value
//!   longer than `max_value` bytes (the limits given at each insert); the
//!   first insert that would break either converts it to a table first.
//! - A table never converts back (as in Redis 7.0).
//! - A listpack's block is exactly `PACK_HDR + len` bytes (no spare
//!   capacity, as a listpack reallocates per insert), and `len` fits a u32:
//!   an insert that would pass it converts to a table first.

use crate::table::{Keyed, Table};
use crate::CompactBytes;
use std::alloc::Layout;
use std::fmt;
use std::ptr::NonNull;

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
/// dictGetFairRandomKey): the first `FAIR_SAMPLE` entries in consecutive
/// buckets from a random one (or all there are), then one of those, so
/// entries sharing a chain are not picked less often.
pub fn fair_random<E: Keyed>(t: &Table<E>, mut rand: impl FnMut(usize) -> usize) -> Option<&E> {
    let buckets = t.bucket_count();
    if t.is_empty() || buckets == 0 {
        return None;
    }
    let mut seen = [None; FAIR_SAMPLE];
    let mut n = 0;
    t.visit_run(rand(buckets), buckets, |e| {
        seen[n] = Some(e);
        n += 1;
        n < FAIR_SAMPLE
    });
    seen[rand(n.max(1)).min(n.max(1) - 1)]
}

/// The listpack block's header: byte length and pair count, two u32.
const PACK_HDR: usize = 8;
/// The low bit of a `Hash`'s pointer marks a boxed table.
const TABLE_TAG: usize = 1;

fn pack_layout(len: usize) -> Layout {
    match Layout::from_size_align(PACK_HDR + len, 8) {
        Ok(l) => l,
        Err(_) => std::alloc::handle_alloc_error(Layout::new::<u64>()),
    }
}

/// A listpack's pairs, borrowed: the bytes and the pair count.
#[derive(Clone, Copy)]
struct Pack<'a> {
    buf: &'a [u8],
    len: usize,
}

/// Bytes `put_len` writes for `n`.
pub(crate) fn len_size(n: usize) -> usize {
    (usize::BITS - (n | 1).leading_zeros()).div_ceil(7) as usize
}

#[cfg(test)]
fn put_len(buf: &mut Vec<u8>, mut n: usize) {
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

/// Writes `b` as an entry (length, bytes) at the start of `out`; returns
/// the bytes written.
pub(crate) fn write_entry(out: &mut [u8], b: &[u8]) -> usize {
    let mut n = b.len();
    let mut i = 0;
    while n >= 0x80 {
        out[i] = (n as u8 & 0x7f) | 0x80;
        n >>= 7;
        i += 1;
    }
    out[i] = n as u8;
    out[i + 1..i + 1 + b.len()].copy_from_slice(b);
    i + 1 + b.len()
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

impl<'a> Pack<'a> {
    fn iter(self) -> PackIter<'a> {
        PackIter {
            buf: self.buf,
            pos: 0,
        }
    }

    fn find(self, field: &[u8]) -> Option<Slot> {
        let buf = self.buf;
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

    fn get(self, field: &[u8]) -> Option<&'a [u8]> {
        self.find(field).map(|s| &self.buf[s.value.0..s.value.1])
    }
}

/// A table's set; true when the field is new.
fn table_set(t: &mut Table<Pair>, field: &[u8], value: &[u8]) -> bool {
    match t.get_mut(field) {
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

enum Repr<'a> {
    Pack(Pack<'a>),
    Table(&'a Table<Pair>),
}

/// A hash value (see the module comment for its one-word form).
#[repr(C, packed)]
pub struct Hash {
    ptr: *mut u8,
}

// SAFETY: a Hash uniquely owns its block or table (like a Box of either),
// and both are Send + Sync.
unsafe impl Send for Hash {}
// SAFETY: as above; shared access only reads.
unsafe impl Sync for Hash {}

/// The encoding limits in force (hash-max-listpack-entries/-value).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_entries: usize,
    pub max_value: usize,
}

impl Default for Hash {
    fn default() -> Self {
        Hash {
            ptr: std::ptr::null_mut(),
        }
    }
}

impl Drop for Hash {
    fn drop(&mut self) {
        match self.table_ptr() {
            // SAFETY: a tagged pointer came from Box::into_raw of the
            // table, owned by this Hash alone; it is dropped once, here.
            Some(t) => drop(unsafe { Box::from_raw(t) }),
            None => self.free_pack(),
        }
    }
}

impl Clone for Hash {
    fn clone(&self) -> Self {
        match self.repr() {
            Repr::Table(t) => Hash::from_table(t.clone()),
            Repr::Pack(p) => {
                let mut h = Hash::default();
                h.pack_splice(0..0, p.buf.len(), p.len, |out| out.copy_from_slice(p.buf));
                h
            }
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

    /// The hash's word, handed over (an entry stores it in its own bytes).
    pub fn into_raw(self) -> *mut u8 {
        let me = std::mem::ManuallyDrop::new(self);
        me.ptr
    }

    /// A hash from `into_raw`'s word.
    ///
    /// # Safety
    /// `ptr` must come from `into_raw` and be used once.
    pub unsafe fn from_raw(ptr: *mut u8) -> Hash {
        Hash { ptr }
    }

    fn from_table(t: Table<Pair>) -> Hash {
        let ptr = Box::into_raw(Box::new(t)).cast::<u8>();
        Hash {
            ptr: ptr.map_addr(|a| a | TABLE_TAG),
        }
    }

    fn table_ptr(&self) -> Option<*mut Table<Pair>> {
        let ptr = self.ptr;
        (ptr.addr() & TABLE_TAG != 0).then(|| ptr.map_addr(|a| a & !TABLE_TAG).cast())
    }

    /// The listpack block, if this is a listpack with pairs.
    fn pack_block(&self) -> Option<NonNull<u8>> {
        let ptr = self.ptr;
        if ptr.addr() & TABLE_TAG != 0 {
            return None;
        }
        NonNull::new(ptr)
    }

    /// (byte length, pair count) from a listpack block's header.
    fn pack_header(block: NonNull<u8>) -> (usize, usize) {
        // SAFETY: a block starts with its two u32 header words, 8-aligned.
        let h = unsafe { block.cast::<[u32; 2]>().read() };
        (h[0] as usize, h[1] as usize)
    }

    fn repr(&self) -> Repr<'_> {
        if let Some(t) = self.table_ptr() {
            // SAFETY: the table is owned by this Hash and borrowed with it.
            return Repr::Table(unsafe { &*t });
        }
        let Some(block) = self.pack_block() else {
            return Repr::Pack(Pack { buf: &[], len: 0 });
        };
        let (len, count) = Hash::pack_header(block);
        // SAFETY: the block holds `len` initialised bytes after its
        // header, owned by this Hash and borrowed with it.
        let buf = unsafe { std::slice::from_raw_parts(block.as_ptr().add(PACK_HDR), len) };
        Repr::Pack(Pack { buf, len: count })
    }

    fn table_mut(&mut self) -> Option<&mut Table<Pair>> {
        // SAFETY: the table is owned by this Hash, borrowed mutably with it.
        self.table_ptr().map(|t| unsafe { &mut *t })
    }

    fn free_pack(&mut self) {
        if let Some(block) = self.pack_block() {
            let (len, _) = Hash::pack_header(block);
            // SAFETY: the block was allocated with `pack_layout(len)`.
            unsafe { std::alloc::dealloc(block.as_ptr(), pack_layout(len)) };
            self.ptr = std::ptr::null_mut();
        }
    }

    /// Replaces `range` of a listpack's bytes with `with_len` bytes that
    /// `write` fills, and sets its pair count, reallocating the block to
    /// its exact new size (freeing it when empty). Must be a listpack, and
    /// the new length fit a u32.
    fn pack_splice(
        &mut self,
        range: std::ops::Range<usize>,
        with_len: usize,
        count: usize,
        write: impl FnOnce(&mut [u8]),
    ) {
        debug_assert!(self.table_ptr().is_none());
        let (len, block) = match self.pack_block() {
            Some(b) => (Hash::pack_header(b).0, Some(b)),
            None => (0, None),
        };
        debug_assert!(range.start <= range.end && range.end <= len);
        let new_len = len - range.len() + with_len;
        let Ok(hdr_len) = u32::try_from(new_len) else {
            std::alloc::handle_alloc_error(pack_layout(new_len))
        };
        if new_len == 0 {
            self.free_pack();
            return;
        }
        let tail = len - range.end;
        // SAFETY: the block (when present) was allocated with
        // `pack_layout(len)`; realloc keeps the first min(old, new) bytes.
        // Growing: the block is enlarged first, then the tail moves up
        // within it; shrinking: the tail moves down first, then the block
        // is cut. Every copy stays inside the larger of the two sizes, and
        // `write` gets exactly the `with_len` bytes of the gap.
        unsafe {
            let mut p = match block {
                Some(b) => b.as_ptr(),
                None => std::ptr::null_mut(),
            };
            let resize = |p: *mut u8| -> *mut u8 {
                let q = if p.is_null() {
                    std::alloc::alloc(pack_layout(new_len))
                } else {
                    std::alloc::realloc(p, pack_layout(len), PACK_HDR + new_len)
                };
                if q.is_null() {
                    std::alloc::handle_alloc_error(pack_layout(new_len))
                }
                q
            };
            if new_len > len {
                p = resize(p);
            }
            let data = p.add(PACK_HDR);
            std::ptr::copy(data.add(range.end), data.add(range.start + with_len), tail);
            write(std::slice::from_raw_parts_mut(
                data.add(range.start),
                with_len,
            ));
            if new_len < len {
                p = resize(p);
            }
            p.cast::<[u32; 2]>().write([hdr_len, count as u32]);
            self.ptr = p;
        }
    }

    /// Warms the cache for a lookup of `field`: at `depth` 0 its bucket
    /// slot, at 1 its chain's first node (`Table::prefetch_key`), at 2 the
    /// value that node holds out of line when it is the field's (each
    /// step reads what the one before loaded). For a listpack, its block's
    /// first two lines at depth 0 (a small hash is all there), then false:
    /// nothing more to warm.
    pub fn prefetch(&self, field: &[u8], depth: u8) -> bool {
        if let Some(block) = self.pack_block() {
            if depth == 0 {
                let p = block.as_ptr().cast_const();
                crate::table::prefetch(p);
                crate::table::prefetch(p.wrapping_add(64));
            }
            return false;
        }
        let Repr::Table(t) = self.repr() else {
            return false;
        };
        if depth < 2 {
            t.prefetch_key(field, depth > 0);
        } else if let Some(n) = t.head(crate::table::warming_hash(field, false)) {
            let p = crate::table::Link::item(n);
            if let (true, CompactBytes::Heap(v)) = (p.field.as_slice() == field, &p.value) {
                crate::table::prefetch(v.as_ptr());
            }
        }
        true
    }

    pub fn len(&self) -> usize {
        match self.repr() {
            Repr::Pack(p) => p.len,
            Repr::Table(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// OBJECT ENCODING's name for the current representation.
    pub fn encoding(&self) -> &'static str {
        match self.repr() {
            Repr::Pack(_) => "listpack",
            Repr::Table(_) => "hashtable",
        }
    }

    pub fn is_packed(&self) -> bool {
        self.table_ptr().is_none()
    }

    /// Heap bytes owned (for memory accounting): the listpack's block, or
    /// the boxed table with its buckets and nodes.
    pub fn heap_size(&self) -> usize {
        match self.repr() {
            Repr::Pack(p) => {
                if self.pack_block().is_some() {
                    PACK_HDR + p.buf.len()
                } else {
                    0
                }
            }
            Repr::Table(t) => {
                let node = std::mem::size_of::<Pair>() + 2 * std::mem::size_of::<usize>();
                std::mem::size_of::<Table<Pair>>()
                    + t.bucket_count() * std::mem::size_of::<usize>()
                    + t.iter()
                        .map(|p| node + p.field.heap_size() + p.value.heap_size())
                        .sum::<usize>()
            }
        }
    }

    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match self.repr() {
            Repr::Pack(p) => p.get(field),
            Repr::Table(t) => t.get(field).map(|p| p.value.as_slice()),
        }
    }

    pub fn contains(&self, field: &[u8]) -> bool {
        self.get(field).is_some()
    }

    /// Converts to the table encoding (no-op when already there).
    pub fn convert_to_table(&mut self) {
        if let Repr::Pack(p) = self.repr() {
            let mut t = Table::new();
            for (f, v) in p.iter() {
                t.insert_new(Pair {
                    field: CompactBytes::new(f),
                    value: CompactBytes::new(v),
                });
            }
            self.free_pack();
            self.ptr = Hash::from_table(t).into_raw();
        }
    }

    /// Sets `field` to `value`; true when it is new. Converts to the
    /// table encoding first when either is longer than the limit (or the
    /// listpack would outgrow its u32 length), and after when the field
    /// count passes it.
    pub fn set(&mut self, field: &[u8], value: &[u8], limits: Limits) -> bool {
        if let Some(t) = self.table_mut() {
            return table_set(t, field, value);
        }
        let need = len_size(field.len()) + field.len() + len_size(value.len()) + value.len();
        let bytes = match self.repr() {
            Repr::Pack(p) => p.buf.len(),
            Repr::Table(_) => 0,
        };
        if field.len() <= limits.max_value
            && value.len() <= limits.max_value
            && bytes.saturating_add(need) <= u32::MAX as usize
        {
            let new = self.pack_set(field, value, need);
            if self.len() > limits.max_entries {
                self.convert_to_table();
            }
            return new;
        }
        self.convert_to_table();
        self.table_mut().is_some_and(|t| table_set(t, field, value))
    }

    /// A listpack's set: an update keeps the field's place, a new field
    /// goes at the end (`need`: its encoded size).
    fn pack_set(&mut self, field: &[u8], value: &[u8], need: usize) -> bool {
        let Repr::Pack(p) = self.repr() else {
            return false;
        };
        let (count, end, found) = (p.len, p.buf.len(), p.find(field));
        match found {
            Some(s) => {
                let n = len_size(value.len()) + value.len();
                self.pack_splice(s.value_at..s.value.1, n, count, |out| {
                    write_entry(out, value);
                });
                false
            }
            None => {
                self.pack_splice(end..end, need, count + 1, |out| {
                    let n = write_entry(out, field);
                    write_entry(&mut out[n..], value);
                });
                true
            }
        }
    }

    /// Removes `field`; true when it was there.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        if let Some(t) = self.table_mut() {
            return t.remove(field).is_some();
        }
        let Repr::Pack(p) = self.repr() else {
            return false;
        };
        match p.find(field) {
            Some(s) => {
                let count = p.len - 1;
                self.pack_splice(s.start..s.value.1, 0, count, |_| {});
                true
            }
            None => false,
        }
    }

    /// Every (field, value) pair: insertion order for a listpack, table
    /// order otherwise.
    pub fn iter(&self) -> Iter<'_> {
        match self.repr() {
            Repr::Pack(p) => Iter::Pack(p.iter()),
            Repr::Table(t) => Iter::Table(Box::new(t.iter())),
        }
    }

    /// A random pair; `rand(n)` must return a number below `n`.
    pub fn random(&self, mut rand: impl FnMut(usize) -> usize) -> Option<(&[u8], &[u8])> {
        match self.repr() {
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
        match self.repr() {
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

    /// A hash is one unaligned word; a listpack is one block of exactly
    /// its header and pairs, and none while empty.
    #[test]
    fn a_listpack_is_one_exact_block() {
        assert_eq!(std::mem::size_of::<Hash>(), 8);
        assert_eq!(std::mem::align_of::<Hash>(), 1);
        let lim = Limits {
            max_entries: 128,
            max_value: 64,
        };
        let mut h = Hash::new();
        assert_eq!(h.heap_size(), 0);
        for f in 0..10u8 {
            h.set(&[b'f', b'0' + f], &[b'v'; 32], lim);
        }
        assert_eq!(h.heap_size(), PACK_HDR + 10 * (1 + 2 + 1 + 32));
        h.set(b"f3", b"short", lim);
        assert_eq!(h.get(b"f3"), Some(&b"short"[..]));
        assert_eq!(h.heap_size(), PACK_HDR + 9 * 36 + 3 + 1 + 5);
        for f in 0..10u8 {
            assert!(h.remove(&[b'f', b'0' + f]));
        }
        assert_eq!((h.len(), h.heap_size()), (0, 0));
        let raw = h.into_raw();
        assert!(raw.is_null());
        // SAFETY: the word came from into_raw just above, used once.
        let h = unsafe { Hash::from_raw(raw) };
        assert!(h.is_packed());
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
