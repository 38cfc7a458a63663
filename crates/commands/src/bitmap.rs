//! Bitmap commands: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD and
//! BITFIELD_RO. A bitmap is a string value; bit 0 is the most significant
//! bit of the first byte.

use crate::args::{eq, int};
use crate::cmd;
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::table::{Command, Keys::Range};
use damselfly_core::CompactBytes;
use damselfly_protocol::Args;
use damselfly_storage::{Entry, Shard, Value, ValueRef};
use std::sync::atomic::Ordering;

pub(crate) static COMMANDS: &[Command] = &[
    cmd!(
        "setbit",
        4,
        "write denyoom",
        Range(1, 1, 1),
        "@write @bitmap @slow",
        "bitmap",
        "2.2.0",
        setbit
    ),
    cmd!(
        "getbit",
        3,
        "readonly fast",
        Range(1, 1, 1),
        "@read @bitmap @fast",
        "bitmap",
        "2.2.0",
        getbit
    ),
    cmd!(
        "bitcount",
        -2,
        "readonly",
        Range(1, 1, 1),
        "@read @bitmap @slow",
        "bitmap",
        "2.6.0",
        bitcount
    ),
    cmd!(
        "bitpos",
        -3,
        "readonly",
        Range(1, 1, 1),
        "@read @bitmap @slow",
        "bitmap",
        "2.8.7",
        bitpos
    ),
    cmd!(
        "bitop",
        -4,
        "write denyoom",
        Range(2, -1, 1),
        "@write @bitmap @slow",
        "bitmap",
        "2.6.0",
        bitop
    ),
    cmd!(
        "bitfield",
        -2,
        "write denyoom",
        Range(1, 1, 1),
        "@write @bitmap @slow",
        "bitmap",
        "3.2.0",
        bitfield
    ),
    cmd!(
        "bitfield_ro",
        -2,
        "readonly fast",
        Range(1, 1, 1),
        "@read @bitmap @fast",
        "bitmap",
        "6.0.0",
        bitfield_ro
    ),
];

// ---------------------------------------------------------------------------
// Argument helpers.

/// A keyword compared as Redis compares it (strcasecmp on a C string): the
/// argument ends at its first NUL byte.
fn word_is(arg: &[u8], word: &str) -> bool {
    eq(cstr(arg), word)
}

/// The argument up to its first NUL byte.
fn cstr(arg: &[u8]) -> &[u8] {
    let end = arg.iter().position(|&c| c == 0).unwrap_or(arg.len());
    &arg[..end]
}

fn proto_max_bulk_len(ctx: &Ctx) -> u64 {
    ctx.server.config.proto_max_bulk_len.load(Ordering::Relaxed)
}

/// A bit offset argument. With `hash`, a `#N` form means N fields of `bits`
/// bits (the multiplication wraps as Redis's does). Offsets whose byte lies
/// at or past proto-max-bulk-len are refused.
fn bit_offset(arg: &[u8], hash: bool, bits: u32, max_bulk: u64) -> CmdResult<u64> {
    let (digits, fields) = match arg.split_first() {
        Some((b'#', rest)) if hash => (rest, true),
        _ => (arg, false),
    };
    let mut off = crate::args::parse_i64(digits).ok_or(CmdError::BitOffset)?;
    if fields {
        off = off.wrapping_mul(i64::from(bits));
    }
    if off < 0 || (off as u64 >> 3) >= max_bulk {
        return Err(CmdError::BitOffset);
    }
    Ok(off as u64)
}

/// `BYTE` or `BIT`: true for bit units.
fn unit_is_bit(arg: &[u8]) -> CmdResult<bool> {
    if word_is(arg, "bit") {
        Ok(true)
    } else if word_is(arg, "byte") {
        Ok(false)
    } else {
        Err(CmdError::Syntax)
    }
}

/// Turns a start/end pair (negative counts from the end) into an inclusive
/// range inside `0..total`, or None when it selects nothing.
fn clamp_range(start: i64, end: i64, total: i64) -> Option<(u64, u64)> {
    let mut start = if start < 0 {
        total.saturating_add(start)
    } else {
        start
    };
    let mut end = if end < 0 {
        total.saturating_add(end)
    } else {
        end
    };
    start = start.max(0);
    end = end.max(0);
    if end >= total {
        end = total - 1;
    }
    if start > end {
        return None;
    }
    Some((start as u64, end as u64))
}

// ---------------------------------------------------------------------------
// Storage helpers.

/// A zero-filled buffer of `len` bytes, or OOM.
fn zeroed(len: usize) -> CmdResult<Vec<u8>> {
    let mut v = Vec::new();
    v.try_reserve_exact(len)
        .map_err(|_| CmdError::OutOfMemory)?;
    v.resize(len, 0);
    Ok(v)
}

/// Finds or creates the string at `key` for a bit write, grown with zero
/// bytes to at least `min_len` bytes. Returns its bytes and whether it was
/// created or grown.
fn string_for_write<'a>(
    shard: &'a mut Shard,
    db: usize,
    key: &[u8],
    now: u64,
    min_len: usize,
) -> CmdResult<(&'a mut [u8], bool)> {
    let created = match shard.get_quiet(db, key, now) {
        None => true,
        Some(e) if e.value().is_string() => false,
        Some(_) => return Err(CmdError::WrongType),
    };
    if created {
        shard.put(db, Entry::new(key, Value::Raw(Box::default()), 0));
    }
    let Some(e) = shard.get_quiet(db, key, now) else {
        return Err(CmdError::OutOfMemory);
    };
    let before = match e.value() {
        ValueRef::Raw(v) => v.len(),
        other => other.string_bytes().len(),
    };
    let buf = e.raw_mut(min_len).ok_or(CmdError::OutOfMemory)?;
    let grown = created || buf.len() != before;
    Ok((buf.as_mut_slice(), grown))
}

// ---------------------------------------------------------------------------
// Bit algorithms.

/// Number of set bits in `bytes`, eight bytes at a time.
pub fn popcount(bytes: &[u8]) -> u64 {
    let mut chunks = bytes.chunks_exact(8);
    let mut n: u64 = 0;
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        n += u64::from(u64::from_ne_bytes(w).count_ones());
    }
    for b in chunks.remainder() {
        n += u64::from(b.count_ones());
    }
    n
}

/// Set bits among bits `first..=last` of `bytes` (both within it).
pub fn count_bits(bytes: &[u8], first: u64, last: u64) -> u64 {
    let (fb, lb) = ((first / 8) as usize, (last / 8) as usize);
    let Some(range) = bytes.get(fb..=lb) else {
        return 0;
    };
    let mut n = popcount(range);
    // Bits of the first byte before `first`, of the last byte after `last`.
    let head = (first % 8) as u32;
    let tail = 7 - (last % 8) as u32;
    if head > 0 {
        n -= u64::from((range[0] >> (8 - head)).count_ones());
    }
    if tail > 0 {
        let lastb = range[range.len() - 1];
        n -= u64::from((lastb & ((1u8 << tail) - 1)).count_ones());
    }
    n
}

/// Position (0..8, from the most significant bit) of the first bit of `b`
/// equal to `bit`.
fn first_in_byte(b: u8, bit: bool) -> Option<u32> {
    let x = if bit { b } else { !b };
    (x != 0).then(|| x.leading_zeros())
}

/// Index of the first byte of `bytes` that is not `skip`.
fn first_byte_not(bytes: &[u8], skip: u8) -> Option<usize> {
    let pattern = u64::from_ne_bytes([skip; 8]);
    let mut chunks = bytes.chunks_exact(8);
    let mut base = 0;
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        if u64::from_ne_bytes(w) != pattern {
            break;
        }
        base += 8;
    }
    bytes[base..]
        .iter()
        .position(|&b| b != skip)
        .map(|i| base + i)
}

/// The first bit equal to `bit` among bits `first..=last` of `bytes`.
pub fn find_bit(bytes: &[u8], bit: bool, first: u64, last: u64) -> Option<u64> {
    let (fb, lb) = ((first / 8) as usize, (last / 8) as usize);
    let range = bytes.get(fb..=lb)?;
    // Mask off bits outside the range by forcing them to the other value.
    let head_mask: u8 = !(0xffu8 >> (first % 8));
    let tail_mask: u8 = 0xffu8 >> (last % 8) >> 1;
    let fix = |b: u8, mask: u8| if bit { b & !mask } else { b | mask };
    let skip = if bit { 0x00 } else { 0xff };
    let last_idx = range.len() - 1;
    let byte_at = |i: usize| -> u8 {
        let mut b = range[i];
        if i == 0 {
            b = fix(b, head_mask);
        }
        if i == last_idx {
            b = fix(b, tail_mask);
        }
        b
    };
    let found = |i: usize| -> Option<u64> {
        first_in_byte(byte_at(i), bit).map(|p| (fb + i) as u64 * 8 + u64::from(p))
    };
    if let Some(p) = found(0) {
        return Some(p);
    }
    if last_idx == 0 {
        return None;
    }
    if let Some(i) = first_byte_not(&range[1..last_idx], skip) {
        return found(i + 1);
    }
    found(last_idx)
}

/// Reads a `bits`-wide unsigned field at bit `offset`; bits past the end
/// of `bytes` read as zero.
pub fn get_field(bytes: &[u8], offset: u64, bits: u32) -> u64 {
    let byte = offset / 8;
    let shift = (offset % 8) as u32;
    let mut window: u128 = 0;
    for i in 0..9u64 {
        let b = usize::try_from(byte + i)
            .ok()
            .and_then(|j| bytes.get(j))
            .copied()
            .unwrap_or(0);
        window = (window << 8) | u128::from(b);
    }
    let v = window >> (72 - shift - bits);
    let mask = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    (v as u64) & mask
}

/// Writes the low `bits` bits of `value` at bit `offset`; `bytes` must hold
/// the whole field.
pub fn set_field(bytes: &mut [u8], offset: u64, bits: u32, value: u64) {
    let byte = (offset / 8) as usize;
    let shift = (offset % 8) as u32;
    let fmask: u128 = if bits == 64 {
        u128::from(u64::MAX)
    } else {
        (1u128 << bits) - 1
    };
    let pos = 72 - shift - bits;
    let mask = fmask << pos;
    let val = (u128::from(value) & fmask) << pos;
    let nbytes = (shift + bits).div_ceil(8) as usize;
    for i in 0..nbytes {
        let Some(b) = bytes.get_mut(byte + i) else {
            return;
        };
        let sh = 64 - 8 * i as u32;
        let m = (mask >> sh) as u8;
        let v = (val >> sh) as u8;
        *b = (*b & !m) | v;
    }
}

/// Sign-extends a `bits`-wide field.
fn sign_extend(v: u64, bits: u32) -> i64 {
    if bits == 64 {
        v as i64
    } else {
        let sh = 64 - bits;
        ((v << sh) as i64) >> sh
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Overflow {
    Wrap,
    Sat,
    Fail,
}

/// The value a signed `bits`-wide field takes when `value + incr` is
/// stored, following Redis's overflow rules (wrapping C arithmetic
/// included). None when FAIL refuses it.
pub fn signed_result(value: i64, incr: i64, bits: u32, ow: Overflow) -> Option<i64> {
    let max: i64 = if bits == 64 {
        i64::MAX
    } else {
        (1i64 << (bits - 1)) - 1
    };
    let min = -max - 1;
    let maxincr = max.wrapping_sub(value);
    let minincr = min.wrapping_sub(value);
    let up =
        value > max || (bits != 64 && incr > maxincr) || (value >= 0 && incr > 0 && incr > maxincr);
    let down = !up
        && (value < min
            || (bits != 64 && incr < minincr)
            || (value < 0 && incr < 0 && incr < minincr));
    if !up && !down {
        return Some(value.wrapping_add(incr));
    }
    match ow {
        Overflow::Fail => None,
        Overflow::Sat => Some(if up { max } else { min }),
        Overflow::Wrap => {
            let c = (value as u64).wrapping_add(incr as u64);
            Some(sign_extend(c, bits))
        }
    }
}

/// As `signed_result` for an unsigned field (`bits` at most 63).
pub fn unsigned_result(value: u64, incr: i64, bits: u32, ow: Overflow) -> Option<u64> {
    let max: u64 = if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let maxincr = max.wrapping_sub(value) as i64;
    let minincr = value.wrapping_neg() as i64;
    let up = value > max || (incr > 0 && incr > maxincr);
    let down = !up && incr < 0 && incr < minincr;
    if !up && !down {
        return Some(value.wrapping_add(incr as u64));
    }
    match ow {
        Overflow::Fail => None,
        Overflow::Sat => Some(if up { max } else { 0 }),
        Overflow::Wrap => Some(value.wrapping_add(incr as u64) & max),
    }
}

// ---------------------------------------------------------------------------
// SETBIT / GETBIT

/// SETBIT key offset value
fn setbit(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let key = args.get(1).unwrap_or_default();
    let max = proto_max_bulk_len(ctx);
    let offset = bit_offset(args.get(2).unwrap_or_default(), false, 0, max)?;
    let on = crate::args::parse_i64(args.get(3).unwrap_or_default()).ok_or(CmdError::BitValue)?;
    if on & !1 != 0 {
        return Err(CmdError::BitValue);
    }
    let on = on == 1;
    let byte = usize::try_from(offset >> 3).map_err(|_| CmdError::OutOfMemory)?;
    let mask = 0x80u8 >> (offset & 7);
    let (db, now) = (ctx.db(), ctx.now);
    let shard = ctx.shard(key);
    let (bytes, grown) = string_for_write(shard, db, key, now, byte + 1)?;
    let old = bytes[byte] & mask != 0;
    if grown || old != on {
        if on {
            bytes[byte] |= mask;
        } else {
            bytes[byte] &= !mask;
        }
        shard.written(db, key, "setbit");
    }
    ctx.reply.int(i64::from(old));
    Ok(())
}

/// GETBIT key offset
fn getbit(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let key = args.get(1).unwrap_or_default();
    let max = proto_max_bulk_len(ctx);
    let offset = bit_offset(args.get(2).unwrap_or_default(), false, 0, max)?;
    let (db, now) = (ctx.db(), ctx.now);
    let (shard, reply) = ctx.shard_and_reply(key);
    let bit = match shard.get(db, key, now) {
        None => false,
        Some(e) => {
            if !e.value().is_string() {
                return Err(CmdError::WrongType);
            }
            let bytes = e.value().string_bytes();
            usize::try_from(offset >> 3)
                .ok()
                .and_then(|i| bytes.get(i))
                .is_some_and(|b| b & (0x80u8 >> (offset & 7)) != 0)
        }
    };
    reply.int(i64::from(bit));
    Ok(())
}

// ---------------------------------------------------------------------------
// BITCOUNT / BITPOS

/// BITCOUNT key [start end [BYTE|BIT]]
fn bitcount(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let key = args.get(1).unwrap_or_default();
    let (db, now) = (ctx.db(), ctx.now);
    let (shard, reply) = ctx.shard_and_reply(key);
    let Some(e) = shard.get(db, key, now) else {
        reply.int(0);
        return Ok(());
    };
    if !e.value().is_string() {
        return Err(CmdError::WrongType);
    }
    let bytes = e.value().string_bytes();
    let len = bytes.len() as u64;
    let n = match args.len() {
        2 => popcount(&bytes),
        4 | 5 => {
            let start = int(args.get(2).unwrap_or_default())?;
            let end = int(args.get(3).unwrap_or_default())?;
            let bit = match args.get(4) {
                Some(w) => unit_is_bit(w)?,
                None => false,
            };
            let total = if bit { len * 8 } else { len } as i64;
            if start < 0 && end < 0 && start > end {
                0
            } else {
                match clamp_range(start, end, total) {
                    None => 0,
                    Some((s, t)) if bit => count_bits(&bytes, s, t),
                    Some((s, t)) => count_bits(&bytes, s * 8, t * 8 + 7),
                }
            }
        }
        _ => return Err(CmdError::Syntax),
    };
    reply.int(n as i64);
    Ok(())
}

/// BITPOS key bit [start [end [BYTE|BIT]]]
fn bitpos(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let key = args.get(1).unwrap_or_default();
    let bit = int(args.get(2).unwrap_or_default())?;
    if bit & !1 != 0 {
        return Err(CmdError::BitArgument);
    }
    let bit = bit == 1;
    let (db, now) = (ctx.db(), ctx.now);
    let (shard, reply) = ctx.shard_and_reply(key);
    let Some(e) = shard.get(db, key, now) else {
        reply.int(if bit { -1 } else { 0 });
        return Ok(());
    };
    if !e.value().is_string() {
        return Err(CmdError::WrongType);
    }
    let bytes = e.value().string_bytes();
    let len = bytes.len() as u64;
    let (start, end, unit_bit) = match args.len() {
        3 => (0, None, false),
        4..=6 => {
            let start = int(args.get(3).unwrap_or_default())?;
            let unit_bit = match args.get(5) {
                Some(w) => unit_is_bit(w)?,
                None => false,
            };
            let end = match args.get(4) {
                Some(a) => Some(int(a)?),
                None => None,
            };
            (start, end, unit_bit)
        }
        _ => return Err(CmdError::Syntax),
    };
    let total = if unit_bit { len * 8 } else { len } as i64;
    let end_given = end.is_some();
    let pos = match clamp_range(start, end.unwrap_or(total - 1), total) {
        None => -1,
        Some((s, t)) => {
            let (first, last) = if unit_bit { (s, t) } else { (s * 8, t * 8 + 7) };
            match find_bit(&bytes, bit, first, last) {
                Some(p) => p as i64,
                // Looking for a clear bit with no end given: the string is
                // taken as padded with zeros on the right.
                None if !bit && !end_given => ((last / 8 + 1) * 8) as i64,
                None => -1,
            }
        }
    };
    reply.int(pos);
    Ok(())
}

// ---------------------------------------------------------------------------
// BITOP

#[derive(Clone, Copy, PartialEq, Eq)]
enum BitOp {
    And,
    Or,
    Xor,
    Not,
}

/// BITOP AND|OR|XOR|NOT destkey srckey [srckey ...]
fn bitop(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let opname = args.get(1).unwrap_or_default();
    let op = if word_is(opname, "and") {
        BitOp::And
    } else if word_is(opname, "or") {
        BitOp::Or
    } else if word_is(opname, "xor") {
        BitOp::Xor
    } else if word_is(opname, "not") {
        BitOp::Not
    } else {
        return Err(CmdError::Syntax);
    };
    if op == BitOp::Not && args.len() != 4 {
        return Err(CmdError::BitopNotArity);
    }
    let dest = args.get(2).unwrap_or_default();
    let sources: Vec<&[u8]> = (3..args.len()).filter_map(|i| args.get(i)).collect();
    let (db, now) = (ctx.db(), ctx.now);

    // First pass: types and lengths (this is the counted read lookup).
    let mut lens = Vec::with_capacity(sources.len());
    for &k in &sources {
        let len = match ctx.shard(k).get(db, k, now) {
            None => 0,
            Some(e) => match e.value() {
                ValueRef::Str(s) => s.len(),
                ValueRef::Raw(v) => v.len(),
                v @ ValueRef::Int(_) => v.string_bytes().len(),
                _ => return Err(CmdError::WrongType),
            },
        };
        lens.push(len);
    }
    let maxlen = lens.iter().copied().max().unwrap_or(0);

    if maxlen == 0 {
        let shard = ctx.shard(dest);
        if shard.get_quiet(db, dest, now).is_some() {
            shard.remove(db, dest);
            shard.written(db, dest, "del");
        }
        ctx.reply.int(0);
        return Ok(());
    }

    let mut res = zeroed(maxlen)?;
    for (i, &k) in sources.iter().enumerate() {
        let shard = ctx.shard(k);
        let src = match shard.get_quiet(db, k, now) {
            Some(e) => e.value().string_bytes(),
            None => std::borrow::Cow::Borrowed(&[][..]),
        };
        let src: &[u8] = &src;
        let n = src.len().min(maxlen);
        if i == 0 {
            res[..n].copy_from_slice(&src[..n]);
            if op == BitOp::Not {
                res.iter_mut().for_each(|b| *b = !*b);
            }
            continue;
        }
        match op {
            BitOp::And => {
                res[..n].iter_mut().zip(src).for_each(|(a, b)| *a &= b);
                res[n..].iter_mut().for_each(|a| *a = 0);
            }
            BitOp::Or => res[..n].iter_mut().zip(src).for_each(|(a, b)| *a |= b),
            BitOp::Xor => res[..n].iter_mut().zip(src).for_each(|(a, b)| *a ^= b),
            BitOp::Not => {}
        }
    }
    let shard = ctx.shard(dest);
    shard.put(
        db,
        Entry::new(dest, Value::Str(CompactBytes::from_vec(res)), 0),
    );
    shard.written(db, dest, "set");
    ctx.reply.int(maxlen as i64);
    Ok(())
}

// ---------------------------------------------------------------------------
// BITFIELD

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum FieldOp {
    Get,
    Set(i64),
    Incr(i64),
}

#[derive(Clone, Copy, Debug)]
struct Field {
    op: FieldOp,
    signed: bool,
    bits: u32,
    offset: u64,
    overflow: Overflow,
}

/// A field type: `i1`..`i64` or `u1`..`u63` (the width read as a C string).
fn field_type(arg: &[u8]) -> CmdResult<(bool, u32)> {
    let signed = match arg.first() {
        Some(b'i') => true,
        Some(b'u') => false,
        _ => return Err(CmdError::BitfieldType),
    };
    let bits = crate::args::parse_i64(cstr(&arg[1..])).ok_or(CmdError::BitfieldType)?;
    let limit = if signed { 64 } else { 63 };
    if bits < 1 || bits > limit {
        return Err(CmdError::BitfieldType);
    }
    Ok((signed, bits as u32))
}

fn parse_fields(ctx: &Ctx, args: &Args) -> CmdResult<Vec<Field>> {
    let max = proto_max_bulk_len(ctx);
    let mut fields = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut j = 2;
    let arg = |i: usize| args.get(i).unwrap_or_default();
    while j < args.len() {
        let sub = arg(j);
        let rem = args.len() - j - 1;
        let op = if word_is(sub, "get") && rem >= 2 {
            FieldOp::Get
        } else if word_is(sub, "set") && rem >= 3 {
            FieldOp::Set(0)
        } else if word_is(sub, "incrby") && rem >= 3 {
            FieldOp::Incr(0)
        } else if word_is(sub, "overflow") && rem >= 1 {
            let w = arg(j + 1);
            overflow = if word_is(w, "wrap") {
                Overflow::Wrap
            } else if word_is(w, "sat") {
                Overflow::Sat
            } else if word_is(w, "fail") {
                Overflow::Fail
            } else {
                return Err(CmdError::BitfieldOverflow);
            };
            j += 2;
            continue;
        } else {
            return Err(CmdError::Syntax);
        };
        let (signed, bits) = field_type(arg(j + 1))?;
        let offset = bit_offset(arg(j + 2), true, bits, max)?;
        let op = match op {
            FieldOp::Get => FieldOp::Get,
            FieldOp::Set(_) => FieldOp::Set(int(arg(j + 3))?),
            FieldOp::Incr(_) => FieldOp::Incr(int(arg(j + 3))?),
        };
        j += if op == FieldOp::Get { 3 } else { 4 };
        fields.push(Field {
            op,
            signed,
            bits,
            offset,
            overflow,
        });
    }
    Ok(fields)
}

/// Applies one write to `bytes`: the reply value (None for a FAIL) and
/// whether the field changed.
fn apply_write(bytes: &mut [u8], f: &Field, grown: bool) -> (Option<i64>, bool) {
    let raw = get_field(bytes, f.offset, f.bits);
    let (reply, new, changed) = if f.signed {
        let old = sign_extend(raw, f.bits);
        match f.op {
            FieldOp::Set(v) => match signed_result(v, 0, f.bits, f.overflow) {
                Some(n) => (Some(old), n as u64, grown || n != old),
                None => (None, raw, false),
            },
            FieldOp::Incr(by) => match signed_result(old, by, f.bits, f.overflow) {
                Some(n) => (Some(n), n as u64, true),
                None => (None, raw, false),
            },
            FieldOp::Get => (Some(old), raw, false),
        }
    } else {
        match f.op {
            FieldOp::Set(v) => match unsigned_result(v as u64, 0, f.bits, f.overflow) {
                Some(n) => (Some(raw as i64), n, grown || n != raw),
                None => (None, raw, false),
            },
            FieldOp::Incr(by) => match unsigned_result(raw, by, f.bits, f.overflow) {
                Some(n) => (Some(n as i64), n, true),
                None => (None, raw, false),
            },
            FieldOp::Get => (Some(raw as i64), raw, false),
        }
    };
    if reply.is_some() && f.op != FieldOp::Get {
        set_field(bytes, f.offset, f.bits, new);
    }
    (reply, changed)
}

fn field_get(bytes: &[u8], f: &Field) -> i64 {
    let raw = get_field(bytes, f.offset, f.bits);
    if f.signed {
        sign_extend(raw, f.bits)
    } else {
        raw as i64
    }
}

fn bitfield_generic(ctx: &mut Ctx, args: &Args, readonly_cmd: bool) -> CmdResult {
    let key = args.get(1).unwrap_or_default();
    let fields = parse_fields(ctx, args)?;
    let writes = fields.iter().any(|f| f.op != FieldOp::Get);
    if readonly_cmd && writes {
        return Err(CmdError::BitfieldReadOnly);
    }
    let (db, now) = (ctx.db(), ctx.now);
    if !writes {
        let (shard, reply) = ctx.shard_and_reply(key);
        let bytes = match shard.get(db, key, now) {
            None => std::borrow::Cow::Borrowed(&[][..]),
            Some(e) if e.value().is_string() => e.value().string_bytes(),
            Some(_) => return Err(CmdError::WrongType),
        };
        reply.array(fields.len());
        for f in &fields {
            reply.int(field_get(&bytes, f));
        }
        return Ok(());
    }
    let highest = fields
        .iter()
        .filter(|f| f.op != FieldOp::Get)
        .map(|f| f.offset + u64::from(f.bits) - 1)
        .max()
        .unwrap_or(0);
    let min_len = usize::try_from((highest >> 3) + 1).map_err(|_| CmdError::OutOfMemory)?;
    let shard = ctx.shard(key);
    let (bytes, grown) = string_for_write(shard, db, key, now, min_len)?;
    let mut results: Vec<Option<i64>> = Vec::with_capacity(fields.len());
    let mut changes: u64 = 0;
    for f in &fields {
        if f.op == FieldOp::Get {
            results.push(Some(field_get(bytes, f)));
            continue;
        }
        let (r, changed) = apply_write(bytes, f, grown);
        changes += u64::from(changed);
        results.push(r);
    }
    if changes > 0 {
        shard.written(db, key, "setbit");
        shard.stats.dirty += changes - 1;
    }
    ctx.reply.array(results.len());
    for r in results {
        match r {
            Some(v) => ctx.reply.int(v),
            None => ctx.reply.null(),
        }
    }
    Ok(())
}

/// BITFIELD key [GET type offset | SET type offset value | INCRBY type
/// offset increment | OVERFLOW WRAP|SAT|FAIL] ...
fn bitfield(ctx: &mut Ctx, args: &Args) -> CmdResult {
    bitfield_generic(ctx, args, false)
}

/// BITFIELD_RO key [GET type offset] ...
fn bitfield_ro(ctx: &mut Ctx, args: &Args) -> CmdResult {
    bitfield_generic(ctx, args, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_counts() {
        let b = [0xffu8, 0x0f, 0x80];
        assert_eq!(popcount(&b), 13);
        assert_eq!(count_bits(&b, 0, 23), 13);
        assert_eq!(count_bits(&b, 4, 11), 4);
        assert_eq!(count_bits(&b, 12, 16), 5);
        assert_eq!(find_bit(&b, false, 0, 23), Some(8));
        assert_eq!(find_bit(&b, true, 8, 23), Some(12));
        assert_eq!(find_bit(&b, true, 17, 23), None);
        assert_eq!(find_bit(&b, false, 0, 7), None);
        assert_eq!(clamp_range(-30, -20, 3), Some((0, 0)));
        assert_eq!(clamp_range(0, -1, 0), None);
    }

    #[test]
    fn long_scans() {
        let mut v = vec![0u8; 1000];
        assert_eq!(find_bit(&v, true, 0, 7999), None);
        v[777] = 0x01;
        assert_eq!(find_bit(&v, true, 0, 7999), Some(777 * 8 + 7));
        assert_eq!(find_bit(&v, true, 3, 777 * 8 + 6), None);
        assert_eq!(popcount(&v), 1);
        let w = vec![0xffu8; 1000];
        assert_eq!(find_bit(&w, false, 5, 7999), None);
        assert_eq!(count_bits(&w, 5, 7990), 7986);
    }

    #[test]
    fn overflow_quirks() {
        assert_eq!(signed_result(i64::MIN, 0, 8, Overflow::Sat), Some(127));
        assert_eq!(signed_result(i64::MIN, 0, 8, Overflow::Wrap), Some(0));
        assert_eq!(unsigned_result(u64::MAX, 0, 8, Overflow::Sat), Some(255));
        assert_eq!(unsigned_result(u64::MAX, 0, 8, Overflow::Fail), None);
        assert_eq!(
            signed_result(-1, i64::MIN, 64, Overflow::Sat),
            Some(i64::MIN)
        );
        assert_eq!(
            signed_result(i64::MAX, 1, 64, Overflow::Wrap),
            Some(i64::MIN)
        );
    }

    #[test]
    fn count_and_find_match_naive_scan() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for _ in 0..300 {
            let len = rng.random_range(1..40);
            let fill = rng.random_range(0..3);
            let bytes: Vec<u8> = (0..len)
                .map(|_| match fill {
                    0 => rng.random(),
                    1 => {
                        if rng.random_bool(0.05) {
                            rng.random()
                        } else {
                            0
                        }
                    }
                    _ => {
                        if rng.random_bool(0.05) {
                            rng.random()
                        } else {
                            0xff
                        }
                    }
                })
                .collect();
            let nbits = len as u64 * 8;
            let first = rng.random_range(0..nbits);
            let last = rng.random_range(first..nbits);
            let bit_at = |i: u64| bytes[(i / 8) as usize] & (0x80 >> (i % 8)) != 0;
            let naive_count = (first..=last).filter(|&i| bit_at(i)).count() as u64;
            assert_eq!(count_bits(&bytes, first, last), naive_count);
            for bit in [false, true] {
                let naive = (first..=last).find(|&i| bit_at(i) == bit);
                assert_eq!(find_bit(&bytes, bit, first, last), naive);
            }
        }
    }

    /// A bit-at-a-time model of a bitmap.
    struct Model(Vec<bool>);

    impl Model {
        fn get(&self, off: u64, bits: u32) -> u64 {
            let mut v = 0u64;
            for i in 0..u64::from(bits) {
                let b = self.0.get((off + i) as usize).copied().unwrap_or(false);
                v = (v << 1) | u64::from(b);
            }
            v
        }
        fn set(&mut self, off: u64, bits: u32, v: u64) {
            let need = (off + u64::from(bits)) as usize;
            let need = need.div_ceil(8) * 8;
            if self.0.len() < need {
                self.0.resize(need, false);
            }
            for i in 0..bits {
                let bit = (v >> (bits - 1 - i)) & 1 == 1;
                self.0[(off + u64::from(i)) as usize] = bit;
            }
        }
        fn bytes(&self) -> Vec<u8> {
            self.0
                .chunks(8)
                .map(|c| c.iter().fold(0u8, |a, &b| (a << 1) | u8::from(b)))
                .collect()
        }
    }

    /// Model arithmetic in i128: the plain meaning of each overflow mode.
    fn model_result(signed: bool, bits: u32, old: i128, incr: i128, ow: Overflow) -> Option<i128> {
        let (min, max) = if signed {
            (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
        } else {
            (0, (1i128 << bits) - 1)
        };
        let t = old + incr;
        if t >= min && t <= max {
            return Some(t);
        }
        match ow {
            Overflow::Fail => None,
            Overflow::Sat => Some(if t > max { max } else { min }),
            Overflow::Wrap => {
                let m = t.rem_euclid(1i128 << bits);
                Some(if signed && m > max {
                    m - (1i128 << bits)
                } else {
                    m
                })
            }
        }
    }

    #[test]
    fn bitfield_matches_model() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _round in 0..200 {
            let mut bytes: Vec<u8> = Vec::new();
            let mut model = Model(Vec::new());
            for _ in 0..50 {
                let signed = rng.random_bool(0.5);
                let bits: u32 = rng.random_range(1..=if signed { 64 } else { 63 });
                let off: u64 = rng.random_range(0..200);
                let ow = [Overflow::Wrap, Overflow::Sat, Overflow::Fail][rng.random_range(0..3)];
                let lo = if signed { -(1i128 << (bits - 1)) } else { 0 };
                let hi = if signed {
                    (1i128 << (bits - 1)) - 1
                } else {
                    (1i128 << bits) - 1
                };
                let incr: i64 = match rng.random_range(0..4) {
                    0 => rng.random_range(-3..=3),
                    1 => rng.random(),
                    2 => i64::try_from(hi).unwrap_or(i64::MAX),
                    _ => i64::try_from(lo).unwrap_or(i64::MIN),
                };
                let f = Field {
                    op: if rng.random_bool(0.5) {
                        FieldOp::Incr(incr)
                    } else {
                        FieldOp::Set(incr.clamp(
                            i64::try_from(lo).unwrap_or(i64::MIN),
                            i64::try_from(hi).unwrap_or(i64::MAX),
                        ))
                    },
                    signed,
                    bits,
                    offset: off,
                    overflow: ow,
                };
                let need = ((off + u64::from(bits) - 1) / 8 + 1) as usize;
                if bytes.len() < need {
                    bytes.resize(need, 0);
                }
                let raw_old = model.get(off, bits);
                let old = if signed {
                    i128::from(sign_extend(raw_old, bits))
                } else {
                    i128::from(raw_old)
                };
                let (got, _) = apply_write(&mut bytes, &f, false);
                let want = match f.op {
                    FieldOp::Incr(by) => model_result(signed, bits, old, i128::from(by), ow),
                    FieldOp::Set(v) => model_result(signed, bits, i128::from(v), 0, ow),
                    FieldOp::Get => Some(old),
                };
                match want {
                    Some(n) => {
                        let reply = if matches!(f.op, FieldOp::Set(_)) {
                            old
                        } else {
                            n
                        };
                        assert_eq!(got.map(i128::from), Some(reply), "{f:?}");
                        model.set(
                            off,
                            bits,
                            n as u64
                                & if bits == 64 {
                                    u64::MAX
                                } else {
                                    (1u64 << bits) - 1
                                },
                        );
                    }
                    None => assert_eq!(got, None, "{f:?}"),
                }
                let mb = model.bytes();
                assert_eq!(
                    &bytes[..mb.len().min(bytes.len())],
                    &mb[..mb.len().min(bytes.len())]
                );
                let g = Field {
                    op: FieldOp::Get,
                    ..f
                };
                let expect = model.get(off, bits);
                let expect = if signed {
                    sign_extend(expect, bits)
                } else {
                    expect as i64
                };
                assert_eq!(field_get(&bytes, &g), expect);
            }
        }
    }
}
