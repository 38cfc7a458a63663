//! HyperLogLog in Redis's byte format, so a value moved between Redis and
//! Damselfly (GET on one, SET on the other) means the same thing.
//!
//! The value is a string: a 16-byte header (`HYLL`, an encoding byte, three
//! zero bytes, the cached cardinality as 8 little-endian bytes whose top bit
//! marks it stale) followed by 16384 six-bit registers, either dense
//! (12288 bytes, register `i` at bit `6*i`, least significant bits first)
//! or sparse (run-length opcodes: `00xxxxxx` is 1..64 zero registers,
//! `01xxxxxx yyyyyyyy` 1..16384 zero registers, `1vvvvvxx` 1..4 registers
//! of value 1..32). An element's register is the low 14 bits of its
//! MurmurHash64A (seed 0xadc83b19) and its value is one more than the count
//! of trailing zeros of the other 50 bits (at most 51).
//!
//! Invariants:
//! - Every edit keeps Redis's exact bytes: a sparse value is edited the way
//!   Redis edits it (split the run that covers the register, merge equal
//!   neighbours within five opcodes) and becomes dense when a register
//!   exceeds 32 or the string would grow past `sparse_max` bytes.
//! - Nothing here panics on arbitrary bytes: a corrupt sparse value is
//!   reported as `Corrupt`, bytes past the end read as zero (Redis reads its
//!   string's terminating NUL there).

/// Registers (2^14).
pub const REGISTERS: usize = 1 << P;
/// Header bytes.
pub const HDR: usize = 16;
/// Length of a dense value.
pub const DENSE_SIZE: usize = HDR + REGISTERS * BITS / 8;

const P: usize = 14;
/// Hash bits left after the register index.
const Q: usize = 64 - P;
const BITS: usize = 6;
const REGISTER_MAX: u8 = (1 << BITS) - 1;
const DENSE: u8 = 0;
const SPARSE: u8 = 1;
const SPARSE_VAL_MAX_VALUE: u8 = 32;
const SPARSE_VAL_MAX_LEN: usize = 4;
const SPARSE_ZERO_MAX_LEN: usize = 64;
const SPARSE_XZERO_MAX_LEN: usize = 16384;
const SEED: u64 = 0xadc8_3b19;
/// 1 / (2 ln 2): the estimator's constant for m → ∞.
const ALPHA_INF: f64 = 0.721_347_520_444_481_7;

/// The value is not a HyperLogLog (WRONGTYPE in Redis's words).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotHll;

/// A sparse value whose opcodes do not cover exactly 16384 registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Corrupt;

/// Redis's MurmurHash64A (the 64-bit variant for little-endian machines).
pub fn murmur64a(data: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = seed ^ (data.len() as u64).wrapping_mul(M);
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let mut k = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate() {
            h ^= u64::from(b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// The register an element maps to and the value it offers that register.
pub fn pattern(ele: &[u8]) -> (usize, u8) {
    let hash = murmur64a(ele, SEED);
    let index = (hash & (REGISTERS as u64 - 1)) as usize;
    let rest = (hash >> P) | (1 << Q);
    (index, rest.trailing_zeros() as u8 + 1)
}

/// An empty HLL as Redis creates it: sparse, one XZERO run per 16384
/// registers, cached cardinality 0 (valid).
pub fn new_sparse() -> Vec<u8> {
    let mut s = Vec::with_capacity(HDR + 2);
    s.extend_from_slice(b"HYLL");
    s.extend_from_slice(&[SPARSE, 0, 0, 0]);
    s.extend_from_slice(&[0; 8]);
    let mut left = REGISTERS;
    while left > 0 {
        let n = left.min(SPARSE_XZERO_MAX_LEN);
        push_xzero(&mut s, n);
        left -= n;
    }
    s
}

/// Redis's check that a string holds an HLL: the magic, a known encoding,
/// and the exact length when dense. Sparse opcodes are checked lazily.
pub fn check(s: &[u8]) -> Result<(), NotHll> {
    if s.len() < HDR || &s[..4] != b"HYLL" || s[4] > SPARSE {
        return Err(NotHll);
    }
    if s[4] == DENSE && s.len() != DENSE_SIZE {
        return Err(NotHll);
    }
    Ok(())
}

/// Sparse encoding (and a whole header).
pub fn is_sparse(s: &[u8]) -> bool {
    s.len() >= HDR && s[4] == SPARSE
}

/// The dense registers (empty if the value is shorter than a header).
fn dense_regs(s: &[u8]) -> &[u8] {
    s.get(HDR..).unwrap_or_default()
}

/// The cached cardinality, if still valid.
pub fn cached(s: &[u8]) -> Option<u64> {
    let card: [u8; 8] = s.get(8..16)?.try_into().ok()?;
    (card[7] & 0x80 == 0).then(|| u64::from_le_bytes(card))
}

pub fn set_cached(s: &mut [u8], card: u64) {
    if let Some(c) = s.get_mut(8..16) {
        c.copy_from_slice(&card.to_le_bytes());
    }
}

/// Marks the cached cardinality stale (its other bits stay, as in Redis).
pub fn invalidate(s: &mut [u8]) {
    if let Some(b) = s.get_mut(15) {
        *b |= 0x80;
    }
}

// ---------------------------------------------------------------- dense

fn dense_get(regs: &[u8], i: usize) -> u8 {
    let bit = i * BITS;
    let (byte, fb) = (bit / 8, bit % 8);
    let b0 = u16::from(regs.get(byte).copied().unwrap_or(0));
    let b1 = u16::from(regs.get(byte + 1).copied().unwrap_or(0));
    (((b0 | (b1 << 8)) >> fb) as u8) & REGISTER_MAX
}

fn dense_put(regs: &mut [u8], i: usize, v: u8) {
    let bit = i * BITS;
    let (byte, fb) = (bit / 8, bit % 8);
    let word = u16::from(v & REGISTER_MAX) << fb;
    let mask = u16::from(REGISTER_MAX) << fb;
    if let Some(b) = regs.get_mut(byte) {
        *b = (*b & !(mask as u8)) | word as u8;
    }
    if fb + BITS > 8 {
        if let Some(b) = regs.get_mut(byte + 1) {
            *b = (*b & !((mask >> 8) as u8)) | (word >> 8) as u8;
        }
    }
}

/// Raises register `i` of a dense value to `v`; true if it changed.
fn dense_set(s: &mut [u8], i: usize, v: u8) -> bool {
    let Some(regs) = s.get_mut(HDR..) else {
        return false;
    };
    if v > dense_get(regs, i) {
        dense_put(regs, i, v);
        true
    } else {
        false
    }
}

// ---------------------------------------------------------------- sparse

/// A sparse opcode at `p` (bytes past the end read as zero).
#[derive(Clone, Copy)]
enum Op {
    Zero(usize),
    XZero(usize),
    Val(u8, usize),
}

fn byte_at(s: &[u8], i: usize) -> u8 {
    s.get(i).copied().unwrap_or(0)
}

fn op_at(s: &[u8], p: usize) -> Op {
    let b = byte_at(s, p);
    if b & 0xc0 == 0 {
        Op::Zero(usize::from(b & 0x3f) + 1)
    } else if b & 0xc0 == 0x40 {
        Op::XZero(((usize::from(b & 0x3f) << 8) | usize::from(byte_at(s, p + 1))) + 1)
    } else {
        Op::Val(((b >> 2) & 0x1f) + 1, usize::from(b & 3) + 1)
    }
}

impl Op {
    fn span(self) -> usize {
        match self {
            Op::Zero(n) | Op::XZero(n) | Op::Val(_, n) => n,
        }
    }

    fn bytes(self) -> usize {
        match self {
            Op::XZero(_) => 2,
            _ => 1,
        }
    }
}

fn val_byte(v: u8, len: usize) -> u8 {
    0x80 | ((v - 1) << 2) | (len - 1) as u8
}

fn push_xzero(out: &mut Vec<u8>, len: usize) {
    let l = len - 1;
    out.push(0x40 | (l >> 8) as u8);
    out.push(l as u8);
}

/// Zero registers: ZERO when it fits, else XZERO.
fn push_zeros(out: &mut Vec<u8>, len: usize) {
    if len > SPARSE_ZERO_MAX_LEN {
        push_xzero(out, len);
    } else {
        out.push((len - 1) as u8);
    }
}

/// Visits every value run of a sparse value: (first register, length,
/// value). A run past the last register, or runs that do not cover exactly
/// 16384 registers, make the value corrupt (as in Debian's Redis 7.0.15,
/// which carries the CVE-2025-32023 fix).
fn sparse_runs(s: &[u8], mut f: impl FnMut(usize, usize, u8)) -> Result<(), Corrupt> {
    let mut p = HDR;
    let mut idx = 0usize;
    while p < s.len() {
        let op = op_at(s, p);
        if idx + op.span() > REGISTERS {
            return Err(Corrupt);
        }
        if let Op::Val(v, n) = op {
            f(idx, n, v);
        }
        idx += op.span();
        p += op.bytes();
    }
    if idx == REGISTERS {
        Ok(())
    } else {
        Err(Corrupt)
    }
}

/// Converts a sparse value to dense in place, keeping the header (cached
/// cardinality included). Ok(false) if it was dense already.
pub fn to_dense(s: &mut Vec<u8>) -> Result<bool, Corrupt> {
    if !is_sparse(s) {
        return Ok(false);
    }
    let mut dense = vec![0u8; DENSE_SIZE];
    dense[..HDR].copy_from_slice(&s[..HDR]);
    dense[4] = DENSE;
    sparse_runs(s, |first, n, v| {
        for i in first..first + n {
            dense_put(&mut dense[HDR..], i, v);
        }
    })?;
    *s = dense;
    Ok(true)
}

/// Raises register `index` of a sparse value to `count`, editing the
/// opcodes as Redis does; promotes to dense when needed.
fn sparse_set(
    s: &mut Vec<u8>,
    index: usize,
    count: u8,
    sparse_max: usize,
) -> Result<bool, Corrupt> {
    if count > SPARSE_VAL_MAX_VALUE {
        return promote(s, index, count);
    }
    // Find the opcode covering `index`.
    let end = s.len();
    let mut p = HDR;
    let mut first = 0usize;
    let mut prev = None;
    let mut op = None;
    while p < end {
        let o = op_at(s, p);
        if index < first + o.span() {
            op = Some(o);
            break;
        }
        prev = Some(p);
        p += o.bytes();
        first += o.span();
    }
    let Some(op) = op else {
        return Err(Corrupt);
    };
    match op {
        Op::Val(v, _) if v >= count => return Ok(false),
        Op::Val(_, 1) | Op::Zero(1) => {
            s[p] = val_byte(count, 1);
            merge_neighbours(s, prev);
            invalidate(s);
            return Ok(true);
        }
        _ => {}
    }
    // Split the run: [before] VAL(count) [after].
    let last = first + op.span() - 1;
    let mut seq = Vec::with_capacity(5);
    match op {
        Op::Val(v, _) => {
            if index != first {
                seq.push(val_byte(v, index - first));
            }
            seq.push(val_byte(count, 1));
            if index != last {
                seq.push(val_byte(v, last - index));
            }
        }
        _ => {
            if index != first {
                push_zeros(&mut seq, index - first);
            }
            seq.push(val_byte(count, 1));
            if index != last {
                push_zeros(&mut seq, last - index);
            }
        }
    }
    let new_len = end + seq.len() - op.bytes();
    if seq.len() > op.bytes() && new_len > sparse_max {
        return promote(s, index, count);
    }
    s.splice(p..(p + op.bytes()).min(end), seq);
    // An XZERO cut off by the end of the string counts its missing byte,
    // as Redis's length arithmetic does.
    s.truncate(new_len);
    merge_neighbours(s, prev);
    invalidate(s);
    Ok(true)
}

/// Merges adjacent VAL opcodes of equal value, scanning up to five opcodes
/// from `from` (the opcode before the edited one), as Redis does.
fn merge_neighbours(s: &mut Vec<u8>, from: Option<usize>) {
    let mut p = from.unwrap_or(HDR);
    let mut scan = 5;
    while p < s.len() && scan > 0 {
        scan -= 1;
        let op = op_at(s, p);
        let Op::Val(v1, l1) = op else {
            p += op.bytes();
            continue;
        };
        if p + 1 < s.len() {
            if let Op::Val(v2, l2) = op_at(s, p + 1) {
                if v1 == v2 && l1 + l2 <= SPARSE_VAL_MAX_LEN {
                    s[p + 1] = val_byte(v1, l1 + l2);
                    s.remove(p);
                    continue;
                }
            }
        }
        p += 1;
    }
}

fn promote(s: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, Corrupt> {
    to_dense(s)?;
    Ok(dense_set(s, index, count))
}

// ---------------------------------------------------------------- operations

/// Raises register `index` to `count` in either encoding.
pub fn set_register(
    s: &mut Vec<u8>,
    index: usize,
    count: u8,
    sparse_max: usize,
) -> Result<bool, Corrupt> {
    if is_sparse(s) {
        sparse_set(s, index, count, sparse_max)
    } else {
        Ok(dense_set(s, index, count))
    }
}

/// PFADD of one element; true if a register changed. `s` passed `check`.
pub fn add(s: &mut Vec<u8>, ele: &[u8], sparse_max: usize) -> Result<bool, Corrupt> {
    let (index, count) = pattern(ele);
    set_register(s, index, count, sparse_max)
}

/// Folds a value's registers into `max` (register-wise maximum).
pub fn merge_into(max: &mut [u8; REGISTERS], s: &[u8]) -> Result<(), Corrupt> {
    if is_sparse(s) {
        sparse_runs(s, |first, n, v| {
            for m in &mut max[first..first + n] {
                *m = (*m).max(v);
            }
        })
    } else {
        for (i, m) in max.iter_mut().enumerate() {
            *m = (*m).max(dense_get(dense_regs(s), i));
        }
        Ok(())
    }
}

/// The registers of a value as one byte each.
pub fn registers(s: &[u8]) -> Result<Box<[u8; REGISTERS]>, Corrupt> {
    let mut r = Box::new([0u8; REGISTERS]);
    merge_into(&mut r, s)?;
    Ok(r)
}

/// The estimate for a value's registers (ignores the cache). A sparse value
/// whose runs do not add up to 16384 registers is corrupt.
pub fn count(s: &[u8]) -> Result<u64, Corrupt> {
    let mut histo = [0u32; 64];
    if is_sparse(s) {
        let mut p = HDR;
        let mut idx = 0usize;
        while p < s.len() {
            let op = op_at(s, p);
            match op {
                Op::Zero(n) | Op::XZero(n) => histo[0] += n as u32,
                Op::Val(v, n) => histo[usize::from(v)] += n as u32,
            }
            idx += op.span();
            p += op.bytes();
        }
        if idx != REGISTERS {
            return Err(Corrupt);
        }
    } else {
        for i in 0..REGISTERS {
            histo[usize::from(dense_get(dense_regs(s), i))] += 1;
        }
    }
    Ok(estimate(&histo))
}

/// The estimate for registers held one per byte.
pub fn count_registers(regs: &[u8; REGISTERS]) -> u64 {
    let mut histo = [0u32; 64];
    for &r in regs.iter() {
        histo[usize::from(r & 63)] += 1;
    }
    estimate(&histo)
}

/// Ertl's improved estimator ("New cardinality estimation algorithms for
/// HyperLogLog sketches", arXiv:1702.01284), as Redis 7 computes it.
fn estimate(histo: &[u32; 64]) -> u64 {
    let m = REGISTERS as f64;
    let mut z = m * tau((m - f64::from(histo[Q + 1])) / m);
    for j in (1..=Q).rev() {
        z += f64::from(histo[j]);
        z *= 0.5;
    }
    z += m * sigma(f64::from(histo[0]) / m);
    (ALPHA_INF * m * m / z).round() as u64
}

fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let before = z;
        z += x * y;
        y += y;
        if z == before {
            return z;
        }
    }
}

fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let before = z;
        y *= 0.5;
        let d = 1.0 - x;
        z -= d * d * y;
        if z == before {
            return z / 3.0;
        }
    }
}

/// PFDEBUG DECODE's text for a sparse value: `z:N`, `Z:N`, `v:V,N`.
pub fn decode_sparse(s: &[u8]) -> String {
    let mut out = Vec::new();
    let mut p = HDR;
    while p < s.len() {
        let op = op_at(s, p);
        out.push(match op {
            Op::Zero(n) => format!("z:{n}"),
            Op::XZero(n) => format!("Z:{n}"),
            Op::Val(v, n) => format!("v:{v},{n}"),
        });
        p += op.bytes();
    }
    out.join(" ")
}

/// PFSELFTEST: dense register packing for every register and value, and
/// sparse and dense values that agree with each other and stay within the
/// expected error while 100000 elements are added.
pub fn self_test() -> Result<(), String> {
    let mut regs = vec![0u8; REGISTERS * BITS / 8];
    for round in 0..4usize {
        let val =
            |i: usize| ((i.wrapping_mul(2_654_435_761) >> 7) + round * 17) as u8 & REGISTER_MAX;
        for i in 0..REGISTERS {
            dense_put(&mut regs, i, val(i));
        }
        if let Some(i) = (0..REGISTERS).find(|&i| dense_get(&regs, i) != val(i)) {
            return Err(format!("Register error at {i}"));
        }
    }
    let mut sparse = new_sparse();
    let mut dense = new_sparse();
    to_dense(&mut dense).map_err(|_| "dense conversion failed".to_string())?;
    // 5 standard errors (1.04 / sqrt(m)) of the estimate.
    let max_rel_err = 5.0 * 1.04 / (REGISTERS as f64).sqrt();
    for n in 1..=100_000u64 {
        let ele = n.to_le_bytes();
        let a = add(&mut sparse, &ele, 3000).map_err(|_| "sparse add failed".to_string())?;
        let b = add(&mut dense, &ele, 3000).map_err(|_| "dense add failed".to_string())?;
        if a != b {
            return Err(format!("Sparse and dense updates differ at element {n}"));
        }
        if n.is_power_of_two() || n % 10_000 == 0 {
            let cs = count(&sparse).map_err(|_| "sparse count failed".to_string())?;
            let cd = count(&dense).map_err(|_| "dense count failed".to_string())?;
            if cs != cd {
                return Err(format!(
                    "Sparse and dense estimates differ at {n}: {cs} vs {cd}"
                ));
            }
            let err = (cd as f64 - n as f64).abs() / n as f64;
            if n >= 100 && err > max_rel_err {
                return Err(format!(
                    "Cardinality {cd} for {n} elements is off by {err:.4}"
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_test_passes() {
        assert_eq!(self_test(), Ok(()));
    }

    #[test]
    fn empty_value_is_redis_bytes() {
        let s = new_sparse();
        assert_eq!(s, b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\0\x7f\xff");
        assert_eq!(count(&s), Ok(0));
        assert_eq!(cached(&s), Some(0));
    }

    #[test]
    fn dense_registers_round_trip() {
        let mut regs = vec![0u8; REGISTERS * BITS / 8];
        for i in 0..REGISTERS {
            dense_put(&mut regs, i, (i % 64) as u8);
        }
        for i in 0..REGISTERS {
            assert_eq!(dense_get(&regs, i), (i % 64) as u8, "register {i}");
        }
    }

    #[test]
    fn sparse_and_dense_agree() {
        let mut sparse = new_sparse();
        let mut dense = new_sparse();
        to_dense(&mut dense).unwrap();
        for i in 0..3000u32 {
            let e = i.to_string();
            let a = add(&mut sparse, e.as_bytes(), 1 << 20).unwrap();
            let b = add(&mut dense, e.as_bytes(), 1 << 20).unwrap();
            assert_eq!(a, b);
            if i % 97 == 0 {
                assert_eq!(count(&sparse), count(&dense));
                assert_eq!(registers(&sparse), registers(&dense));
            }
        }
        let n = count(&sparse).unwrap() as f64;
        assert!((n - 3000.0).abs() < 3000.0 * 0.05, "{n}");
    }

    #[test]
    fn sparse_promotes_past_the_limit() {
        let mut s = new_sparse();
        let mut i = 0;
        while is_sparse(&s) {
            add(&mut s, format!("e{i}").as_bytes(), 300).unwrap();
            assert!(s.len() <= 300 || !is_sparse(&s));
            i += 1;
        }
        assert_eq!(s.len(), DENSE_SIZE);
    }

    #[test]
    fn corrupt_sparse_values_are_reported() {
        let mut s = new_sparse();
        s.extend_from_slice(b"hello");
        assert_eq!(count(&s), Err(Corrupt));
        assert_eq!(to_dense(&mut s), Err(Corrupt));
    }

    proptest::proptest! {
        #[test]
        fn any_value_never_panics(mut s in proptest::collection::vec(proptest::num::u8::ANY, 0..40)) {
            let _ = count(&s);
            let _ = cached(&s);
            let _ = registers(&s);
            let _ = add(&mut s, b"x", 3000);
            let _ = set_register(&mut s, REGISTERS - 1, 40, 3000);
            let _ = to_dense(&mut s);
            invalidate(&mut s);
            let _ = decode_sparse(&s);
        }

        #[test]
        fn arbitrary_bytes_never_panic(tail in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
                                       eles in proptest::collection::vec(proptest::num::u8::ANY, 0..20)) {
            let mut s = new_sparse();
            s.truncate(HDR);
            s.extend_from_slice(&tail);
            let _ = count(&s);
            let mut max = [0u8; REGISTERS];
            let _ = merge_into(&mut max, &s);
            for e in &eles {
                let _ = add(&mut s, &[*e], 3000);
            }
            let _ = to_dense(&mut s);
            let _ = count(&s);
        }
    }
}
