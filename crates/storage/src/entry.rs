//! A key of the keyspace packed into one allocation, owned through a thin
//! pointer that the table links directly (no chain node of its own).
//!
//! Layout (`p` is the pointer an `Entry` holds, 8-aligned):
//!
//! ```text
//! [expire u64]? [next Option<Entry>]? | clock:3 meta:1 [key len varint]? key | payload
//!                                     ^ p
//! ```
//! - `clock`: 24 bits, the LRU seconds clock or, under an LFU policy, the
//!   LFU word (16-bit minutes << 8 | counter), as Redis shares its 24 bits.
//! - `meta`: bits 0-1 the payload kind, bit 2 an expiry slot, bit 3 a next
//!   slot, bits 4-7 the key length (15: a LEB128 length follows).
//! - payload: `Int` 8 bytes; `Str` a LEB128 length and the bytes; `Boxed`
//!   a sub-kind byte and a `Box` pointer (raw strings and collections).
//!
//! Invariants:
//! - The optional slots exist only when set: a key without a TTL pays no
//!   expiry word, and an entry at the tail of its chain no next pointer
//!   (the table asks for a next slot with `Link::next_slot`).
//! - The allocation's size follows from the header alone (`size`), so it is
//!   freed and copied without a stored capacity.

use crate::value::{Value, ValueMut, ValueRef};
use damselfly_core::{hash::Hash, list::List, set::Set, stream::Stream, zset::ZSet, Keyed, Link};
use std::alloc::Layout;
use std::ptr::NonNull;

const HDR: usize = 4;
const SLOT: usize = 8;

const KIND_MASK: u8 = 0b11;
const KIND_INT: u8 = 0;
const KIND_STR: u8 = 1;
const KIND_BOXED: u8 = 2;
const HAS_EXPIRE: u8 = 1 << 2;
const HAS_NEXT: u8 = 1 << 3;
const KEY_LEN_LONG: u8 = 15;

const BOX_RAW: u8 = 0;
const BOX_LIST: u8 = 1;
const BOX_HASH: u8 = 2;
const BOX_SET: u8 = 3;
const BOX_ZSET: u8 = 4;
const BOX_STREAM: u8 = 5;

const CLOCK_MASK: u32 = 0xFF_FFFF;

/// One key: its name, value, optional expiry (Unix ms), and the shared
/// LRU/LFU clock.
#[repr(transparent)]
pub struct Entry(NonNull<u8>);

// SAFETY: an Entry uniquely owns its allocation and what the payload points
// to (boxed strings and collections, all Send + Sync), like a Box would.
unsafe impl Send for Entry {}
// SAFETY: as above; shared access only reads.
unsafe impl Sync for Entry {}

fn varint_len(mut n: usize) -> usize {
    let mut len = 1;
    while n >= 0x80 {
        n >>= 7;
        len += 1;
    }
    len
}

fn put_varint(out: &mut [u8], mut n: usize) -> usize {
    let mut i = 0;
    while n >= 0x80 {
        out[i] = (n as u8) | 0x80;
        n >>= 7;
        i += 1;
    }
    out[i] = n as u8;
    i + 1
}

/// (value, bytes read) of the LEB128 number at the start of `b`.
fn get_varint(b: &[u8]) -> (usize, usize) {
    if let Some(&x) = b.first().filter(|&&x| x < 0x80) {
        return (usize::from(x), 1);
    }
    let mut n = 0usize;
    for (i, &x) in b.iter().enumerate() {
        n |= usize::from(x & 0x7F) << (7 * i);
        if x & 0x80 == 0 {
            return (n, i + 1);
        }
    }
    (n, b.len())
}

/// The LEB128 number at `q`: (value, bytes).
///
/// # Safety
/// `q` must point at a complete varint inside one allocation.
unsafe fn varint_at(q: *const u8) -> (usize, usize) {
    // SAFETY: the varint's first byte is readable (caller's guarantee).
    let first = unsafe { *q };
    if first < 0x80 {
        return (usize::from(first), 1);
    }
    let mut i = 0;
    // SAFETY: the caller guarantees the bytes up to the varint's last one
    // (the first without the high bit) are readable.
    unsafe {
        while *q.add(i) & 0x80 != 0 {
            i += 1;
        }
        get_varint(std::slice::from_raw_parts(q, i + 1))
    }
}

/// What a new entry's value is made from.
pub(crate) enum Source<'a> {
    Bytes(&'a [u8]),
    Value(Value),
}

/// A string's payload: integers stored as integers.
fn string_payload(b: &[u8]) -> Payload<'_> {
    match crate::value::canonical_int(b) {
        Some(n) => Payload::Int(n),
        None => Payload::Str(b),
    }
}

/// What a payload is made of, before it is written.
enum Payload<'a> {
    Int(i64),
    Str(&'a [u8]),
    Boxed(u8, *mut u8),
}

impl Payload<'_> {
    fn size(&self) -> usize {
        match self {
            Payload::Int(_) => 8,
            Payload::Str(s) => varint_len(s.len()) + s.len(),
            Payload::Boxed(..) => 1 + SLOT,
        }
    }

    /// Writes the payload at the start of `out` (at least `size` bytes).
    fn write(self, out: &mut [u8]) {
        match self {
            Payload::Int(n) => out[..8].copy_from_slice(&n.to_le_bytes()),
            Payload::Str(s) => {
                let n = put_varint(out, s.len());
                out[n..n + s.len()].copy_from_slice(s);
            }
            Payload::Boxed(kind, ptr) => {
                let slot = &mut out[..1 + SLOT];
                slot[0] = kind;
                // SAFETY: `slot` has 8 bytes after the kind byte; the
                // pointer is stored unaligned, as `Entry::boxed` reads it.
                unsafe {
                    slot.as_mut_ptr()
                        .add(1)
                        .cast::<*mut u8>()
                        .write_unaligned(ptr)
                };
            }
        }
    }

    fn kind(&self) -> u8 {
        match self {
            Payload::Int(_) => KIND_INT,
            Payload::Str(_) => KIND_STR,
            Payload::Boxed(..) => KIND_BOXED,
        }
    }
}

/// Calls `f` with the payload form of `v`; boxed values are handed over
/// as raw pointers (the entry owns them from then on).
fn with_payload<R>(v: Value, f: impl FnOnce(Payload<'_>) -> R) -> R {
    fn raw<T>(b: Box<T>) -> *mut u8 {
        Box::into_raw(b).cast()
    }
    match v {
        Value::Int(n) => f(Payload::Int(n)),
        Value::Str(s) => f(Payload::Str(&s)),
        Value::Raw(b) => f(Payload::Boxed(BOX_RAW, raw(b))),
        Value::List(b) => f(Payload::Boxed(BOX_LIST, raw(b))),
        // A hash is one word: the entry holds the word itself, not a box.
        Value::Hash(b) => f(Payload::Boxed(BOX_HASH, (*b).into_raw())),
        Value::Set(b) => f(Payload::Boxed(BOX_SET, raw(b))),
        Value::ZSet(b) => f(Payload::Boxed(BOX_ZSET, raw(b))),
        Value::Stream(b) => f(Payload::Boxed(BOX_STREAM, raw(b))),
    }
}

fn layout(size: usize) -> Layout {
    match Layout::from_size_align(size, SLOT) {
        Ok(l) => l,
        Err(_) => std::alloc::handle_alloc_error(Layout::new::<u64>()),
    }
}

/// Sizes and offsets (from `p`) of an entry's parts.
#[derive(Clone, Copy)]
struct Shape {
    prefix: usize,
    payload_off: usize,
    payload_len: usize,
}

impl Shape {
    fn body_len(&self) -> usize {
        self.payload_off + self.payload_len
    }
}

impl Entry {
    pub fn new(key: &[u8], value: Value, expire_at: u64) -> Entry {
        with_payload(value, |p| {
            Entry::build(key, p, initial_clock(), expire_at, false)
        })
    }

    /// A string entry straight from bytes (integers stored as integers),
    /// with no intermediate `Value`.
    pub fn from_bytes(key: &[u8], bytes: &[u8], expire_at: u64) -> Entry {
        Entry::from_source(key, Source::Bytes(bytes), expire_at, false)
    }

    /// A new entry, with a (vacant) next slot when `next`.
    pub(crate) fn from_source(key: &[u8], src: Source<'_>, expire_at: u64, next: bool) -> Entry {
        match src {
            Source::Bytes(b) => {
                Entry::build(key, string_payload(b), initial_clock(), expire_at, next)
            }
            Source::Value(v) => with_payload(v, |p| {
                Entry::build(key, p, initial_clock(), expire_at, next)
            }),
        }
    }

    /// Replaces a string value with `bytes` in place when the new payload
    /// takes the same room (SET over a value of the same length, INCR);
    /// false, changing nothing, otherwise.
    pub(crate) fn overwrite_string(&mut self, bytes: &[u8]) -> bool {
        let meta = self.meta();
        let p = string_payload(bytes);
        let s = self.shape();
        if meta & KIND_MASK == KIND_BOXED || p.size() != s.payload_len {
            return false;
        }
        self.header()[3] = (meta & !KIND_MASK) | p.kind();
        p.write(&mut self.body_mut(&s)[s.payload_off..]);
        true
    }

    /// Allocates and fills an entry. An expiry slot is made when
    /// `expire_at` is set, a (vacant) next slot when `next` is.
    fn build(key: &[u8], payload: Payload<'_>, clock: u32, expire_at: u64, next: bool) -> Entry {
        let long_key = key.len() >= usize::from(KEY_LEN_LONG);
        let prefix = SLOT * (usize::from(expire_at != 0) + usize::from(next));
        let key_off = HDR + if long_key { varint_len(key.len()) } else { 0 };
        let payload_off = key_off + key.len();
        let size = prefix + payload_off + payload.size();
        let mut meta = payload.kind();
        if expire_at != 0 {
            meta |= HAS_EXPIRE;
        }
        if next {
            meta |= HAS_NEXT;
        }
        meta |= if long_key {
            KEY_LEN_LONG
        } else {
            key.len() as u8
        } << 4;
        // SAFETY: the layout's size is at least HDR > 0; a null result is
        // handled. Every byte written below lies inside the `size` bytes
        // allocated: the prefix slots, then the header, key and payload,
        // whose lengths sum to `size` by construction. `p` is 8-aligned
        // (base is, and prefix is a multiple of 8), so the slots before it
        // are aligned for u64 and Option<Entry>.
        unsafe {
            let base = std::alloc::alloc(layout(size));
            let Some(base) = NonNull::new(base) else {
                std::alloc::handle_alloc_error(layout(size))
            };
            let p = base.add(prefix);
            if expire_at != 0 {
                p.sub(prefix).cast::<u64>().write(expire_at);
            }
            if next {
                p.sub(SLOT).cast::<Option<Entry>>().write(None);
            }
            let body = std::slice::from_raw_parts_mut(p.as_ptr(), size - prefix);
            body[..3].copy_from_slice(&clock.to_le_bytes()[..3]);
            body[3] = meta;
            if long_key {
                put_varint(&mut body[HDR..], key.len());
            }
            body[key_off..payload_off].copy_from_slice(key);
            payload.write(&mut body[payload_off..]);
            Entry(p)
        }
    }

    fn meta(&self) -> u8 {
        // SAFETY: every entry has its 4 header bytes at p.
        unsafe { *self.0.as_ptr().add(3) }
    }

    /// (offset from p, length) of the key.
    fn key_span(&self) -> (usize, usize) {
        match self.meta() >> 4 {
            KEY_LEN_LONG => {
                // SAFETY: a long key's length varint follows the header.
                let (len, n) = unsafe { varint_at(self.0.as_ptr().add(HDR)) };
                (HDR + n, len)
            }
            short => (HDR, usize::from(short)),
        }
    }

    fn shape(&self) -> Shape {
        let meta = self.meta();
        let prefix =
            SLOT * (usize::from(meta & HAS_EXPIRE != 0) + usize::from(meta & HAS_NEXT != 0));
        let (key_off, key_len) = self.key_span();
        let payload_off = key_off + key_len;
        let payload_len = match meta & KIND_MASK {
            KIND_INT => 8,
            KIND_STR => {
                // SAFETY: a string payload starts with its length varint.
                let (len, n) = unsafe { varint_at(self.0.as_ptr().add(payload_off)) };
                n + len
            }
            _ => 1 + SLOT,
        };
        Shape {
            prefix,
            payload_off,
            payload_len,
        }
    }

    fn body(&self, s: &Shape) -> &[u8] {
        // SAFETY: `s` is this entry's shape: its body (header, key, payload)
        // is `body_len` initialised bytes from p, borrowed with `self`.
        unsafe { std::slice::from_raw_parts(self.0.as_ptr(), s.body_len()) }
    }

    fn body_mut(&mut self, s: &Shape) -> &mut [u8] {
        // SAFETY: as in `body`, borrowed mutably with `self`.
        unsafe { std::slice::from_raw_parts_mut(self.0.as_ptr(), s.body_len()) }
    }

    /// The boxed payload's (kind, pointer).
    fn boxed(&self, s: &Shape) -> Option<(u8, *mut u8)> {
        if self.meta() & KIND_MASK != KIND_BOXED {
            return None;
        }
        let kind = self.body(s)[s.payload_off];
        // SAFETY: a boxed payload is a kind byte and then the pointer
        // written by `build` (unaligned, hence read_unaligned).
        let ptr = unsafe {
            self.0
                .as_ptr()
                .add(s.payload_off + 1)
                .cast::<*mut u8>()
                .read_unaligned()
        };
        Some((kind, ptr))
    }

    pub fn key(&self) -> &[u8] {
        let (off, len) = self.key_span();
        // SAFETY: the key's `len` bytes start `off` bytes after p, inside
        // the entry, borrowed with `self`.
        unsafe { std::slice::from_raw_parts(self.0.as_ptr().add(off), len) }
    }

    pub fn value(&self) -> ValueRef<'_> {
        let (key_off, key_len) = self.key_span();
        let off = key_off + key_len;
        let p = self.0.as_ptr();
        match self.meta() & KIND_MASK {
            KIND_INT => {
                // SAFETY: an integer payload is 8 bytes at `off`.
                let n = unsafe { p.add(off).cast::<[u8; 8]>().read() };
                ValueRef::Int(i64::from_le_bytes(n))
            }
            KIND_STR => {
                // SAFETY: a string payload is its length varint and then
                // that many bytes, inside the entry, borrowed with `self`.
                unsafe {
                    let (len, n) = varint_at(p.add(off));
                    ValueRef::Str(std::slice::from_raw_parts(p.add(off + n), len))
                }
            }
            // SAFETY: the pointer came from Box::into_raw of the type its
            // kind byte names, and lives as long as the entry; a hash is
            // the word itself (`Hash` has alignment 1, so it is read in
            // place). The shared borrow of self covers the reference.
            _ => unsafe {
                let slot = p.add(off + 1);
                let ptr = slot.cast::<*mut u8>().read_unaligned();
                match *p.add(off) {
                    BOX_RAW => ValueRef::Raw(&*ptr.cast::<Vec<u8>>()),
                    BOX_LIST => ValueRef::List(&*ptr.cast::<List>()),
                    BOX_HASH => ValueRef::Hash(&*slot.cast::<Hash>()),
                    BOX_SET => ValueRef::Set(&*ptr.cast::<Set>()),
                    BOX_ZSET => ValueRef::ZSet(&*ptr.cast::<ZSet>()),
                    _ => ValueRef::Stream(&*ptr.cast::<Stream>()),
                }
            },
        }
    }

    pub fn value_mut(&mut self) -> ValueMut<'_> {
        let s = self.shape();
        match self.boxed(&s) {
            // SAFETY: as in `value`, with the exclusive borrow of self
            // covering the returned exclusive reference.
            Some((kind, ptr)) => unsafe {
                match kind {
                    BOX_RAW => ValueMut::Raw(&mut *ptr.cast::<Vec<u8>>()),
                    BOX_LIST => ValueMut::List(&mut *ptr.cast::<List>()),
                    BOX_HASH => ValueMut::Hash(&mut *self.hash_slot(&s)),
                    BOX_SET => ValueMut::Set(&mut *ptr.cast::<Set>()),
                    BOX_ZSET => ValueMut::ZSet(&mut *ptr.cast::<ZSet>()),
                    _ => ValueMut::Stream(&mut *ptr.cast::<Stream>()),
                }
            },
            None => ValueMut::String,
        }
    }

    /// Where a hash payload's word lies (a `Hash`, alignment 1).
    fn hash_slot(&self, s: &Shape) -> *mut Hash {
        // SAFETY: a boxed payload is a kind byte and 8 bytes, inside the
        // entry.
        unsafe { self.0.as_ptr().add(s.payload_off + 1).cast::<Hash>() }
    }

    /// Drops the boxed payload in place (the entry is going away).
    fn drop_boxed(&mut self, s: &Shape) {
        if matches!(self.boxed(s), Some((BOX_HASH, _))) {
            // SAFETY: the slot holds a live Hash written by `build` that
            // the entry owns; the entry is freed next without reading it.
            unsafe { std::ptr::drop_in_place(self.hash_slot(s)) };
        } else {
            drop(self.take_boxed(s));
        }
    }

    /// Takes the boxed payload back as a `Value` (None for inline kinds).
    fn take_boxed(&mut self, s: &Shape) -> Option<Value> {
        let (kind, ptr) = self.boxed(s)?;
        // SAFETY: the pointer came from Box::into_raw of the type its kind
        // byte names (for a hash, Hash::into_raw); the caller forgets or
        // overwrites the payload next, so it is owned once.
        Some(unsafe {
            match kind {
                BOX_RAW => Value::Raw(Box::from_raw(ptr.cast())),
                BOX_LIST => Value::List(Box::from_raw(ptr.cast())),
                BOX_HASH => Value::Hash(Box::new(Hash::from_raw(ptr))),
                BOX_SET => Value::Set(Box::from_raw(ptr.cast())),
                BOX_ZSET => Value::ZSet(Box::from_raw(ptr.cast())),
                _ => Value::Stream(Box::from_raw(ptr.cast())),
            }
        })
    }

    /// Replaces the value, in place when the payload keeps its size (INCR,
    /// a string of the same length), else in a new allocation.
    pub fn set_value(&mut self, v: Value) {
        let s = self.shape();
        with_payload(v, |p| {
            if p.size() == s.payload_len && p.kind() == self.meta() & KIND_MASK {
                drop(self.take_boxed(&s));
                p.write(&mut self.body_mut(&s)[s.payload_off..]);
                return;
            }
            let mut new = Entry::build(
                self.key(),
                p,
                self.clock(),
                self.expire_at(),
                self.meta() & HAS_NEXT != 0,
            );
            if let Some(next) = self.take_next() {
                *new.next_slot() = Some(next);
            }
            *self = new;
        });
    }

    /// The value, moved out.
    pub fn into_value(mut self) -> Value {
        let s = self.shape();
        if let Some(v) = self.take_boxed(&s) {
            self.free_without_payload(&s);
            return v;
        }
        let v = self.value().to_value();
        drop(self);
        v
    }

    /// The same entry (value, expiry, clock) under another key (RENAME).
    pub fn renamed(self, key: &[u8]) -> Entry {
        let (clock, at) = (self.clock(), self.expire_at());
        let mut e = Entry::new(key, self.into_value(), at);
        e.set_clock(clock);
        e
    }

    /// A copy of the value.
    pub fn to_value(&self) -> Value {
        self.value().to_value()
    }

    /// Frees the allocation, dropping the next slot but not the payload
    /// (already taken).
    fn free_without_payload(self, s: &Shape) {
        let me = std::mem::ManuallyDrop::new(self);
        me.release(s);
    }

    /// Drops the next slot and deallocates, leaving the payload alone.
    fn release(&self, s: &Shape) {
        let size = s.prefix + s.body_len();
        // SAFETY: the allocation starts `prefix` bytes before p with the
        // layout `build` used for this size; the next slot, when present,
        // holds an initialised Option<Entry>. Called once, from drop paths.
        unsafe {
            if self.meta() & HAS_NEXT != 0 {
                std::ptr::drop_in_place(self.0.as_ptr().sub(SLOT).cast::<Option<Entry>>());
            }
            std::alloc::dealloc(self.0.as_ptr().sub(s.prefix), layout(size));
        }
    }

    /// Moves this entry into a new allocation with the slots `meta_add`
    /// names added (HAS_EXPIRE, HAS_NEXT), keeping everything else.
    fn add_slots(&mut self, meta_add: u8) {
        self.reslot(self.meta() | meta_add);
    }

    /// Moves this entry into a new allocation whose slots are those `meta`
    /// names, keeping everything else. A next slot may only be dropped
    /// while empty.
    fn reslot(&mut self, meta: u8) {
        let s = self.shape();
        let old_meta = self.meta();
        debug_assert!(meta & HAS_NEXT != 0 || Link::next(self).is_none());
        debug_assert!(meta & HAS_EXPIRE != 0 || old_meta & HAS_EXPIRE == 0);
        let prefix =
            SLOT * (usize::from(meta & HAS_EXPIRE != 0) + usize::from(meta & HAS_NEXT != 0));
        let size = prefix + s.body_len();
        // SAFETY: the new allocation holds `prefix` slot bytes and then a
        // bitwise copy of the body; the old next slot (if any) is moved, not
        // dropped (or, when `meta` drops it, it held None: nothing to drop),
        // and the old allocation is freed without running Drop, so the
        // payload's box and the successor are owned exactly once.
        unsafe {
            let base = std::alloc::alloc(layout(size));
            let Some(base) = NonNull::new(base) else {
                std::alloc::handle_alloc_error(layout(size))
            };
            let p = base.add(prefix);
            std::ptr::copy_nonoverlapping(self.0.as_ptr(), p.as_ptr(), s.body_len());
            *p.as_ptr().add(3) = meta;
            if meta & HAS_NEXT != 0 {
                let next = if old_meta & HAS_NEXT != 0 {
                    self.0.as_ptr().sub(SLOT).cast::<Option<Entry>>().read()
                } else {
                    None
                };
                p.sub(SLOT).cast::<Option<Entry>>().write(next);
            }
            if meta & HAS_EXPIRE != 0 {
                p.sub(prefix).cast::<u64>().write(self.expire_at());
            }
            std::alloc::dealloc(
                self.0.as_ptr().sub(s.prefix),
                layout(s.prefix + s.body_len()),
            );
            std::ptr::write(self, Entry(p));
        }
    }

    /// Where the entry lives (DEBUG OBJECT's `Value at`).
    pub fn addr(&self) -> *const u8 {
        self.0.as_ptr()
    }

    /// Expiry time in Unix ms, 0 for none.
    pub fn expire_at(&self) -> u64 {
        if self.meta() & HAS_EXPIRE == 0 {
            return 0;
        }
        let back = SLOT * (1 + usize::from(self.meta() & HAS_NEXT != 0));
        // SAFETY: with HAS_EXPIRE the expiry word sits before the next slot
        // (if any), 8-aligned, written by `build` or `add_slots`.
        unsafe { self.0.as_ptr().sub(back).cast::<u64>().read() }
    }

    /// Sets (or with 0 clears) the expiry. The slot, once made, stays.
    pub(crate) fn set_expire_at(&mut self, at: u64) {
        if self.meta() & HAS_EXPIRE == 0 {
            if at == 0 {
                return;
            }
            self.add_slots(HAS_EXPIRE);
        }
        let back = SLOT * (1 + usize::from(self.meta() & HAS_NEXT != 0));
        // SAFETY: as in `expire_at`; exclusive through &mut self.
        unsafe { self.0.as_ptr().sub(back).cast::<u64>().write(at) }
    }

    /// Redis's rule: a key expires once the clock is strictly past its time.
    pub fn is_expired(&self, now_ms: u64) -> bool {
        let at = self.expire_at();
        at != 0 && now_ms > at
    }

    fn header(&mut self) -> &mut [u8; HDR] {
        // SAFETY: every entry has its HDR header bytes at p, exclusively
        // borrowed through &mut self.
        unsafe { &mut *self.0.as_ptr().cast::<[u8; HDR]>() }
    }

    /// The 24-bit LRU/LFU clock as stored (DEBUG OBJECT's `lru`).
    pub fn clock(&self) -> u32 {
        // SAFETY: every entry has its HDR header bytes at p.
        let h = unsafe { &*self.0.as_ptr().cast::<[u8; HDR]>() };
        u32::from_le_bytes([h[0], h[1], h[2], 0])
    }

    pub(crate) fn set_clock(&mut self, clock: u32) {
        self.header()[..3].copy_from_slice(&clock.to_le_bytes()[..3]);
    }

    /// An access: the LFU counter under an LFU policy, else the LRU clock.
    pub(crate) fn touch(&mut self) {
        let c = if crate::evict::lfu_on() {
            crate::evict::lfu_touch(self.clock())
        } else {
            crate::value::clock_secs()
        };
        self.set_clock(c & CLOCK_MASK);
    }

    /// Seconds since the last access (OBJECT IDLETIME; meaningful only
    /// outside LFU policies, as in Redis).
    pub fn idle_secs(&self, now_secs: u32) -> u32 {
        now_secs.wrapping_sub(self.clock()) & CLOCK_MASK
    }

    /// The LFU word (meaningful only under an LFU policy, as in Redis).
    pub fn lfu(&self) -> u32 {
        self.clock()
    }

    /// RESTORE IDLETIME / an RDB file's IDLE: applied outside LFU policies.
    pub fn restore_idle(&mut self, idle_secs: u64) {
        if !crate::evict::lfu_on() {
            let idle = u32::try_from(idle_secs).unwrap_or(u32::MAX);
            self.set_clock(crate::value::clock_secs().saturating_sub(idle) & CLOCK_MASK);
        }
    }

    /// RESTORE FREQ / an RDB file's FREQ: applied under LFU policies.
    pub fn restore_freq(&mut self, counter: u8) {
        if crate::evict::lfu_on() {
            self.set_clock(crate::evict::lfu_word(counter) & CLOCK_MASK);
        }
    }

    /// Bytes this key holds: its allocation and what the value owns.
    pub fn heap_size(&self) -> usize {
        let s = self.shape();
        s.prefix + s.body_len() + self.value().heap_size()
    }

    pub fn is_string(&self) -> bool {
        self.value().is_string()
    }

    pub fn type_name(&self) -> &'static str {
        self.value().type_name()
    }

    pub fn encoding(&self) -> &'static str {
        self.value().encoding()
    }

    pub fn string_bytes(&self) -> std::borrow::Cow<'_, [u8]> {
        self.value().string_bytes()
    }

    /// The string as an editable buffer of at least `min_len` bytes (see
    /// `Value::raw_mut`), converting the value to `Raw` first.
    pub fn raw_mut(&mut self, min_len: usize) -> Option<&mut Vec<u8>> {
        if !matches!(self.value(), ValueRef::Raw(_)) {
            if !self.is_string() {
                return None;
            }
            let bytes = self.string_bytes().into_owned();
            self.set_value(Value::Raw(Box::new(bytes)));
        }
        match self.value_mut() {
            ValueMut::Raw(v) => crate::value::grow_raw(v, min_len).then_some(v),
            _ => None,
        }
    }
}

/// The LRU clock of an access now.
pub(crate) fn fresh_clock() -> u32 {
    crate::value::clock_secs() & CLOCK_MASK
}

/// A fresh key's clock: the LFU word under an LFU policy, else now.
fn initial_clock() -> u32 {
    let c = if crate::evict::lfu_on() {
        crate::evict::lfu_init()
    } else {
        crate::value::clock_secs()
    };
    c & CLOCK_MASK
}

impl Drop for Entry {
    fn drop(&mut self) {
        let s = self.shape();
        self.drop_boxed(&s);
        self.release(&s);
    }
}

impl Clone for Entry {
    fn clone(&self) -> Entry {
        let mut e = Entry::new(self.key(), self.to_value(), self.expire_at());
        e.set_clock(self.clock());
        e
    }
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("key", &String::from_utf8_lossy(self.key()))
            .field("value", &self.value())
            .field("expire_at", &self.expire_at())
            .finish()
    }
}

impl Keyed for Entry {
    fn key(&self) -> &[u8] {
        Entry::key(self)
    }
}

// SAFETY: `Entry` is a `repr(transparent)` `NonNull`, so `Option<Entry>` is
// null when `None`.
unsafe impl Link for Entry {
    type Item = Entry;
    /// A keyspace bucket (8 bytes) costs more than the slightly longer
    /// chains save: 1.25 keys per bucket before the table doubles.
    const MAX_LOAD_QUARTERS: usize = 5;
    fn from_item(e: Entry) -> Entry {
        e
    }
    fn into_item(self) -> Entry {
        self
    }
    fn item(&self) -> &Entry {
        self
    }
    fn item_mut(&mut self) -> &mut Entry {
        self
    }
    fn key(&self) -> &[u8] {
        Entry::key(self)
    }
    fn addr(&self) -> *const u8 {
        Entry::addr(self)
    }
    fn next(&self) -> Option<&Entry> {
        if self.meta() & HAS_NEXT == 0 {
            return None;
        }
        // SAFETY: with HAS_NEXT an initialised Option<Entry> sits in the 8
        // aligned bytes before p; it lives as long as this entry.
        unsafe { (*self.0.as_ptr().sub(SLOT).cast::<Option<Entry>>()).as_ref() }
    }
    fn next_mut(&mut self) -> Option<&mut Option<Entry>> {
        if self.meta() & HAS_NEXT == 0 {
            return None;
        }
        // SAFETY: as in `next`, exclusively borrowed through &mut self.
        Some(unsafe { &mut *self.0.as_ptr().sub(SLOT).cast::<Option<Entry>>() })
    }
    fn next_slot(&mut self) -> &mut Option<Entry> {
        if self.meta() & HAS_NEXT == 0 {
            self.add_slots(HAS_NEXT);
        }
        // SAFETY: the slot exists now (HAS_NEXT); see `next_mut`.
        unsafe { &mut *self.0.as_ptr().sub(SLOT).cast::<Option<Entry>>() }
    }
    fn shed_next_slot(&mut self) {
        if self.meta() & HAS_NEXT != 0 && Link::next(self).is_none() {
            self.reslot(self.meta() & !HAS_NEXT);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use damselfly_core::RawTable;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn key(k: u16, long: bool) -> Vec<u8> {
        if long {
            format!("a-long-key-name-{k:0>200}").into_bytes()
        } else {
            format!("k{k}").into_bytes()
        }
    }

    /// A value of one of every kind and size class.
    fn value(v: u8) -> Value {
        match v % 8 {
            0 => Value::Int(i64::from(v) - 100),
            1 => Value::from_bytes(b""),
            2 => Value::from_bytes(&vec![b'x'; usize::from(v)]),
            3 => Value::from_bytes(&vec![b'y'; 300 + usize::from(v)]),
            4 => Value::Raw(Box::new(vec![v; 3])),
            5 => {
                let mut h = Hash::default();
                h.set(
                    b"f",
                    &[v],
                    damselfly_core::hash::Limits {
                        max_entries: 128,
                        max_value: 64,
                    },
                );
                Value::Hash(Box::new(h))
            }
            6 => {
                let mut l = List::default();
                l.push(damselfly_core::list::End::Tail, &[v]);
                Value::List(Box::new(l))
            }
            _ => Value::Stream(Box::default()),
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Put(u16, bool, u8, u64),
        SetValue(u16, bool, u8),
        SetExpire(u16, bool, u64),
        Remove(u16, bool),
        Rename(u16, bool, u16),
        /// HSET on the key's hash, edited inside the entry.
        HashSet(u16, bool, u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        let k = (0u16..200, proptest::bool::weighted(0.1));
        prop_oneof![
            (
                k.clone(),
                any::<u8>(),
                prop_oneof![Just(0u64), 1u64..u64::MAX]
            )
                .prop_map(|((k, l), v, t)| Op::Put(k, l, v, t)),
            (k.clone(), any::<u8>()).prop_map(|((k, l), v)| Op::SetValue(k, l, v)),
            (k.clone(), prop_oneof![Just(0u64), 1u64..u64::MAX])
                .prop_map(|((k, l), t)| Op::SetExpire(k, l, t)),
            k.clone().prop_map(|(k, l)| Op::Remove(k, l)),
            (k.clone(), 0u16..200).prop_map(|((k, l), to)| Op::Rename(k, l, to)),
            (k, any::<u8>()).prop_map(|((k, l), f)| Op::HashSet(k, l, f)),
        ]
    }

    proptest! {
        /// Packed entries linked in the table behave like a map of
        /// (value, expiry), through growth, shrinking, in-place and
        /// reallocating value changes, expiry slots and next slots.
        #[test]
        fn entries_in_a_table_behave_like_a_map(ops in proptest::collection::vec(op(), 0..800)) {
            let mut t: RawTable<Entry> = RawTable::new();
            let mut m: HashMap<Vec<u8>, (Value, u64)> = HashMap::new();
            for op in ops {
                match op {
                    Op::Put(k, l, v, at) => {
                        let k = key(k, l);
                        let old = t.insert(Entry::new(&k, value(v), at));
                        let mold = m.insert(k, (value(v), at));
                        prop_assert_eq!(old.map(|e| (e.to_value(), e.expire_at())), mold);
                    }
                    Op::SetValue(k, l, v) => {
                        let k = key(k, l);
                        if let Some(e) = t.get_mut(&k) {
                            e.set_value(value(v));
                        }
                        if let Some(x) = m.get_mut(&k) {
                            x.0 = value(v);
                        }
                    }
                    Op::SetExpire(k, l, at) => {
                        let k = key(k, l);
                        if let Some(e) = t.get_mut(&k) {
                            e.set_expire_at(at);
                        }
                        if let Some(x) = m.get_mut(&k) {
                            x.1 = at;
                        }
                    }
                    Op::Remove(k, l) => {
                        let k = key(k, l);
                        let got = t.remove(&k).map(|e| (e.into_value(), 0));
                        prop_assert_eq!(got, m.remove(&k).map(|x| (x.0, 0)));
                    }
                    Op::Rename(k, l, to) => {
                        let (k, to) = (key(k, l), key(to, false));
                        if k != to {
                            if let Some(e) = t.remove(&k) {
                                t.insert(e.renamed(&to));
                            }
                            if let Some(x) = m.remove(&k) {
                                m.insert(to, x);
                            }
                        }
                    }
                    Op::HashSet(k, l, f) => {
                        let k = key(k, l);
                        let lim = damselfly_core::hash::Limits { max_entries: 8, max_value: 64 };
                        let field = [b'f', f % 12];
                        let v = vec![f; usize::from(f % 70)];
                        if let Some(e) = t.get_mut(&k) {
                            if let ValueMut::Hash(h) = e.value_mut() {
                                h.set(&field, &v, lim);
                            }
                        }
                        if let Some((Value::Hash(h), _)) = m.get_mut(&k) {
                            h.set(&field, &v, lim);
                        }
                    }
                }
                prop_assert_eq!(t.len(), m.len());
            }
            for (k, (v, at)) in &m {
                let e = t.get(k);
                prop_assert!(e.is_some());
                let e = e.unwrap();
                prop_assert_eq!(e.key(), &k[..]);
                prop_assert_eq!(&e.to_value(), v);
                prop_assert_eq!(e.expire_at(), *at);
            }
            prop_assert_eq!(t.iter().count(), m.len());
            let copy = t.clone();
            prop_assert_eq!(copy.len(), m.len());
        }
    }

    /// A fixed pseudo-random workout of every operation, small enough to
    /// run under Miri (`cargo +nightly miri test -p damselfly-storage
    /// entry::`), which checks the unsafe layout code for undefined
    /// behaviour and leaks.
    #[test]
    fn a_scripted_workout_keeps_every_entry() {
        let mut t: RawTable<Entry> = RawTable::new();
        let mut m: HashMap<Vec<u8>, (Value, u64)> = HashMap::new();
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        for _ in 0..300 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let k = key((x % 40) as u16, x % 11 == 0);
            let v = (x >> 8) as u8;
            let at = if x % 3 == 0 { x >> 20 } else { 0 };
            match (x >> 32) % 5 {
                0 | 1 => {
                    t.insert(Entry::new(&k, value(v), at));
                    m.insert(k, (value(v), at));
                }
                2 => {
                    if let Some(e) = t.get_mut(&k) {
                        e.set_value(value(v));
                        e.set_expire_at(at);
                    }
                    if let Some(e) = m.get_mut(&k) {
                        *e = (value(v), at);
                    }
                }
                3 => {
                    let got = t.remove(&k).map(Entry::into_value);
                    assert_eq!(got, m.remove(&k).map(|e| e.0));
                }
                _ => {
                    let to = key(((x >> 40) % 40) as u16, false);
                    let e = if to == k { None } else { t.remove(&k) };
                    if let Some(e) = e {
                        m.remove(&to);
                        t.remove(&to);
                        let mv = m.remove(&k);
                        t.insert(e.renamed(&to));
                        m.extend(mv.map(|mv| (to, mv)));
                    }
                }
            }
            assert_eq!(t.len(), m.len());
        }
        for (k, (v, at)) in &m {
            let e = t.get(k).unwrap();
            assert_eq!((&e.to_value(), e.expire_at()), (v, *at));
        }
        drop(t.clone());
    }

    /// After a resize only entries followed by another carry a next slot
    /// (each tail sheds its slot when it lands alone in a bucket), so with
    /// insertions alone no entry pays for an empty slot.
    #[test]
    fn a_resize_leaves_no_tail_with_a_next_slot() {
        let mut t: RawTable<Entry> = RawTable::new();
        for i in 0..3000u32 {
            let k = format!("key:{i:07}");
            t.insert_new_with(k.as_bytes(), |next| {
                Entry::from_source(k.as_bytes(), Source::Bytes(&[b'x'; 32]), 0, next)
            });
            if i % 2 == 0 {
                t.insert(Entry::from_bytes(
                    format!("k2:{i}").as_bytes(),
                    b"v",
                    u64::from(i),
                ));
            }
        }
        let slotted = t.iter().filter(|e| e.meta() & HAS_NEXT != 0).count();
        assert!(slotted > 0);
        assert!(t
            .iter()
            .all(|e| e.meta() & HAS_NEXT == 0 || Link::next(e).is_some()));
        assert_eq!(t.len(), 4500);
    }

    /// A hash lives in the entry's own bytes: growing and shrinking its
    /// listpack, converting it to a table, cloning and dropping it.
    #[test]
    fn a_hash_is_edited_in_place_inside_its_entry() {
        let lim = damselfly_core::hash::Limits {
            max_entries: 4,
            max_value: 64,
        };
        let mut e = Entry::new(b"h", Value::Hash(Box::default()), 9);
        assert_eq!(e.heap_size(), 4 + 1 + 1 + 8 + 8);
        for i in 0..6u8 {
            let ValueMut::Hash(h) = e.value_mut() else {
                panic!("not a hash")
            };
            h.set(&[b'f', i], &[i; 10], lim);
            assert_eq!(e.encoding(), if i < 4 { "listpack" } else { "hashtable" });
        }
        let c = e.clone();
        let ValueMut::Hash(h) = e.value_mut() else {
            panic!("not a hash")
        };
        assert!(h.remove(b"f\x02"));
        assert_eq!(h.len(), 5);
        let ValueRef::Hash(h2) = c.value() else {
            panic!("not a hash")
        };
        assert_eq!(h2.get(b"f\x02"), Some(&[2u8; 10][..]));
        assert_eq!(c.expire_at(), 9);
        let Value::Hash(h) = c.into_value() else {
            panic!("not a hash")
        };
        assert_eq!(h.len(), 6);
    }

    #[test]
    fn a_short_key_and_32_byte_string_fit_48_bytes() {
        let e = Entry::from_bytes(b"key:0000001", &[b'0'; 32], 0);
        assert_eq!(e.heap_size(), 48);
        assert_eq!(e.key(), b"key:0000001");
        assert_eq!(e.string_bytes(), &[b'0'; 32][..]);
        assert_eq!(e.encoding(), "embstr");
        let e = Entry::from_bytes(b"key:0000001", b"12345", 7);
        assert!(matches!(e.value(), ValueRef::Int(12345)));
        assert_eq!(e.expire_at(), 7);
        assert_eq!(std::mem::size_of::<Option<Entry>>(), 8);
    }

    #[test]
    fn a_clock_keeps_24_bits_and_idle_time_wraps() {
        let mut e = Entry::new(b"k", Value::Int(1), 0);
        e.set_clock(0xFF_FFFF);
        assert_eq!(e.clock(), 0xFF_FFFF);
        assert_eq!(e.idle_secs(0x100_0004), 5);
        assert!(matches!(e.value(), ValueRef::Int(1)));
    }

    #[test]
    fn raw_strings_grow_in_place_of_inline_ones() {
        let mut e = Entry::from_bytes(b"k", b"12", 0);
        e.raw_mut(5).unwrap()[2..].copy_from_slice(b"abc");
        assert_eq!(e.string_bytes(), &b"12abc"[..]);
        assert_eq!(e.encoding(), "raw");
        let mut l = Entry::new(b"l", Value::List(Box::default()), 0);
        assert!(l.raw_mut(1).is_none());
    }
}
