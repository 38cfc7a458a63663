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

/// A SCAN-family cursor as Redis's strtoul reads it: optional sign (a minus
/// wraps), decimal digits, nothing else; the empty string is 0.
pub fn scan_cursor(s: &[u8]) -> CmdResult<u64> {
    let (neg, digits) = match s.split_first() {
        None => return Ok(0),
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        Some(_) => (false, s),
    };
    if digits.is_empty() {
        return Err(CmdError::InvalidCursor);
    }
    let mut v: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return Err(CmdError::InvalidCursor);
        }
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(d - b'0')))
            .ok_or(CmdError::InvalidCursor)?;
    }
    Ok(if neg { v.wrapping_neg() } else { v })
}

/// HSCAN/SSCAN/ZSCAN options from argument `from` on: `[MATCH pattern]
/// [COUNT count]`, repeatable, last one wins. Returns the count (default
/// 10) and the pattern (None for `*`, which matches everything).
pub fn scan_options<'a>(
    args: &damselfly_protocol::Args<'a>,
    from: usize,
) -> CmdResult<(usize, Option<&'a [u8]>)> {
    let mut count = 10usize;
    let mut pattern = None;
    let mut i = from;
    while i < args.len() {
        let opt = args.get(i).unwrap_or_default();
        let val = args.get(i + 1);
        match val {
            Some(v) if eq(opt, "count") => {
                let n = int(v)?;
                if n < 1 {
                    return Err(CmdError::Syntax);
                }
                count = usize::try_from(n).unwrap_or(usize::MAX);
            }
            Some(v) if eq(opt, "match") => pattern = (v != b"*").then_some(v),
            _ => return Err(CmdError::Syntax),
        }
        i += 2;
    }
    Ok((count, pattern))
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
    if let Some(v) = small_int_score(s) {
        return Some(v);
    }
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

/// A score written as a plain integer of at most 15 digits (optionally
/// negative), which strtod would read exactly: converted without it.
fn small_int_score(s: &[u8]) -> Option<f64> {
    let (neg, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 15 {
        return None;
    }
    let mut n: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u64::from(c - b'0');
    }
    // Below 2^53 the conversion is exact; "-0" stays -0.0 as in strtod.
    let v = n as f64;
    Some(if neg { -v } else { v })
}

/// The strtod check SORT applies to a weight: the C string (up to a NUL)
/// used up, no ERANGE, no NaN. Leading space and the empty string (0) pass.
pub fn parse_sort_weight(s: &[u8]) -> Option<f64> {
    let s = match s.iter().position(|&c| c == 0) {
        Some(i) => &s[..i],
        None => s,
    };
    let (v, used, erange) = c_strtod(s);
    (used == s.len() && !erange && !v.is_nan()).then_some(v)
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

#[cfg(test)]
mod score_tests {
    use super::*;

    #[test]
    fn integer_scores_read_as_strtod_reads_them() {
        for s in [
            "0",
            "-0",
            "7",
            "007",
            "-12",
            "123456789012345",
            "-999999999999999",
            "1234567890123456",
            "99999999999999999999",
            "1.5",
            "+3",
            "1e3",
            " 1",
            "-",
        ] {
            let (want, used, _) = c_strtod(s.as_bytes());
            let got = parse_score(s.as_bytes());
            if used == s.len() && !s.starts_with(' ') && !s.is_empty() {
                let got = got.unwrap();
                assert_eq!(got.to_bits(), want.to_bits(), "{s}");
            } else {
                assert!(got.is_none(), "{s}");
            }
        }
    }
}
