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
