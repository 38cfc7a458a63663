//! `long double` addition for INCRBYFLOAT/HINCRBYFLOAT. Redis adds in C's
//! `long double` (80-bit on x86-64) and prints with `%.17Lf` minus trailing
//! zeros; doing the same in f64 gives different digits (1.1 + 2.2), so the
//! arithmetic is done by a few lines of C compiled with `cc`.

use std::os::raw::{c_char, c_int};

extern "C" {
    fn dfly_ld_add(
        a: *const c_char,
        alen: usize,
        b: *const c_char,
        blen: usize,
        out: *mut c_char,
        cap: usize,
        outlen: *mut usize,
    ) -> c_int;
    fn dfly_ld_valid(s: *const c_char, len: usize) -> c_int;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LdError {
    /// The current value is not a float.
    BadValue,
    /// The increment is not a float.
    BadIncrement,
    /// The result would be NaN or infinite.
    NanOrInfinity,
}

/// Adds two decimal strings as long doubles and returns the sum as Redis
/// prints it.
pub fn add(a: &[u8], b: &[u8]) -> Result<Vec<u8>, LdError> {
    let mut out = vec![0u8; 6 * 1024];
    let mut len = 0usize;
    // SAFETY: a and b are valid for their lengths (the C side copies at most
    // len bytes and never writes to them); out is valid for out.len() bytes
    // and the C side writes at most cap bytes including the terminator; len
    // is a valid place for one usize.
    let rc = unsafe {
        dfly_ld_add(
            a.as_ptr().cast(),
            a.len(),
            b.as_ptr().cast(),
            b.len(),
            out.as_mut_ptr().cast(),
            out.len(),
            &mut len,
        )
    };
    match rc {
        0 => {
            out.truncate(len);
            Ok(out)
        }
        1 => Err(LdError::BadValue),
        2 => Err(LdError::BadIncrement),
        _ => Err(LdError::NanOrInfinity),
    }
}

/// Whether `s` parses as a long double by Redis's rules.
pub fn is_valid(s: &[u8]) -> bool {
    // SAFETY: s is valid for s.len() bytes and only read.
    unsafe { dfly_ld_valid(s.as_ptr().cast(), s.len()) == 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_print_as_redis_prints_them() {
        assert_eq!(add(b"10.5", b"0.1").unwrap(), b"10.6");
        assert_eq!(add(b"1.1", b"2.2").unwrap(), b"3.3");
        assert_eq!(add(b"5.0e3", b"2.0e2").unwrap(), b"5200");
        assert_eq!(add(b"0", b"-0").unwrap(), b"0");
        assert_eq!(add(b"1", b"1").unwrap(), b"2");
        assert_eq!(add(b"abc", b"1"), Err(LdError::BadValue));
        assert_eq!(add(b"1", b" 1"), Err(LdError::BadIncrement));
        assert_eq!(add(b"1", b"nan"), Err(LdError::BadIncrement));
        assert_eq!(add(b"1", b""), Err(LdError::BadIncrement));
        assert_eq!(add(b"1e4932", b"1e4932"), Err(LdError::NanOrInfinity));
        assert!(is_valid(b"1.5"));
        assert!(!is_valid(b"1.5x"));
        assert!(!is_valid(b"1\x002"));
        assert_eq!(add(b"1", b"1\x002"), Err(LdError::BadIncrement));
        let huge = vec![b'1'; 6000];
        assert_eq!(add(&huge, b"1"), Err(LdError::BadValue));
    }
}
