//! Argument parsing with Redis's number rules.

use crate::error::{CmdError, CmdResult};

/// Redis's string2ll: an optional '-', digits without leading zeros, in i64.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    damselfly_storage::value_canonical_int(s)
}

pub fn int(s: &[u8]) -> CmdResult<i64> {
    parse_i64(s).ok_or(CmdError::NotInteger)
}

/// Redis's strtod-based float parsing: no leading space, whole string used,
/// no NaN. Accepts `inf`/`-inf`/`+inf` spellings as strtod does.
pub fn parse_f64(s: &[u8]) -> Option<f64> {
    let t = std::str::from_utf8(s).ok()?;
    if t.is_empty() || t.starts_with(|c: char| c.is_ascii_whitespace()) || t.len() > 5000 {
        return None;
    }
    let v: f64 = match t.to_ascii_lowercase().as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => f64::INFINITY,
        "-inf" | "-infinity" => f64::NEG_INFINITY,
        other => {
            if other.contains("inf")
                || other.contains("nan")
                || other.ends_with('.') && other.len() == 1
            {
                return None;
            }
            other.parse().ok()?
        }
    };
    (!v.is_nan()).then_some(v)
}

pub fn float(s: &[u8]) -> CmdResult<f64> {
    parse_f64(s).ok_or(CmdError::NotFloat)
}

pub fn eq(a: &[u8], b: &str) -> bool {
    a.eq_ignore_ascii_case(b.as_bytes())
}

pub fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Redis's getIntFromObjectOrReply: an integer that must fit in a C int.
pub fn int32(s: &[u8]) -> CmdResult<i32> {
    i32::try_from(int(s)?).map_err(|_| CmdError::IntRange)
}

/// C's strtod over `s` (which must hold no NUL): the value and how many
/// bytes it used, and whether it reported ERANGE.
fn c_strtod(s: &[u8]) -> (f64, usize, bool) {
    let mut buf = Vec::with_capacity(s.len() + 1);
    buf.extend_from_slice(s);
    buf.push(0);
    let start = buf.as_ptr() as *const libc::c_char;
    let mut end: *mut libc::c_char = std::ptr::null_mut();
    // SAFETY: `buf` is NUL-terminated and outlives the call; strtod only
    // reads up to the terminator and stores a pointer into `buf` in `end`.
    // errno is thread-local, cleared before the call and read right after.
    unsafe {
        *libc::__errno_location() = 0;
        let v = libc::strtod(start, &mut end);
        let erange = *libc::__errno_location() == libc::ERANGE;
        let used = (end as usize).saturating_sub(start as usize);
        (v, used, erange)
    }
}

/// Redis's getDoubleFromObject (ZADD scores, ZINCRBY, WEIGHTS): strtod
/// over the whole argument, no leading space, no overflow or underflow to
/// zero, no NaN.
pub fn parse_score(s: &[u8]) -> Option<f64> {
    if s.is_empty() || s[0].is_ascii_whitespace() || s[0] == 0x0b || s[0] == 0x0c {
        return None;
    }
    if s.contains(&0) {
        return None;
    }
    let (v, used, erange) = c_strtod(s);
    if used != s.len() || v.is_nan() {
        return None;
    }
    if erange && (v.is_infinite() || v == 0.0) {
        return None;
    }
    Some(v)
}

/// The strtod check Redis applies to score range bounds (after the
/// optional `(`): the C string (up to a NUL) must be used up, and not be
/// NaN. Leading space and the empty string (0) are accepted, as C does.
pub fn parse_range_float(s: &[u8]) -> Option<f64> {
    let s = match s.iter().position(|&c| c == 0) {
        Some(i) => &s[..i],
        None => s,
    };
    let (v, used, _) = c_strtod(s);
    (used == s.len() && !v.is_nan()).then_some(v)
}
