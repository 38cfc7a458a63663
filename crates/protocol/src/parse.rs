//! Incremental request parser.
//!
//! The parser is stateless between calls: it is handed the unconsumed bytes of
//! the connection's read buffer and either recognises one whole request at
//! the front or reports how much more it needs. Re-parsing a partial request
//! only re-reads its headers (bulk payloads are skipped by length), so a large
//! value arriving in many reads costs O(headers) per read, not O(value).

use memchr::memchr;

/// Longest inline request, and longest `*<count>` / `$<len>` header line,
/// that may sit in the buffer without its newline (Redis's 64 KiB).
pub const INLINE_MAX: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `proto-max-bulk-len`.
    pub max_bulk_len: u64,
    /// Before authentication Redis caps multibulk counts at 10 and bulks at 16 KiB.
    pub auth_required: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk_len: 512 * 1024 * 1024,
            auth_required: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("Protocol error: invalid multibulk length")]
    InvalidMultibulkLength,
    #[error("Protocol error: invalid bulk length")]
    InvalidBulkLength,
    #[error("Protocol error: expected '$', got '{}'", char::from(*.0))]
    ExpectedDollar(u8),
    #[error("Protocol error: unbalanced quotes in request")]
    UnbalancedQuotes,
    #[error("Protocol error: too big inline request")]
    TooBigInline,
    #[error("Protocol error: too big mbulk count string")]
    TooBigMbulkCount,
    #[error("Protocol error: too big bulk count string")]
    TooBigBulkCount,
    #[error("Protocol error: unauthenticated multibulk length")]
    UnauthenticatedMultibulk,
    #[error("Protocol error: unauthenticated bulk length")]
    UnauthenticatedBulk,
}

/// Outcome of one parse attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// One request (possibly with zero arguments, which the caller skips)
    /// occupied the first `consumed` bytes.
    Complete { consumed: usize },
    /// More bytes are needed; `hint` is the total length of the request when
    /// it is already known (so the caller can reserve it), else 0.
    Incomplete { hint: usize },
}

#[derive(Debug, Clone, Copy)]
struct Span {
    start: u32,
    end: u32,
}

/// The arguments of the last parsed request, as spans into the input (for
/// multibulk requests) or into an owned buffer (for inline requests, whose
/// quoting rewrites the bytes). Reused across requests so parsing allocates
/// nothing in the steady state.
#[derive(Debug, Default)]
pub struct Request {
    spans: Vec<Span>,
    owned: Vec<u8>,
    inline: bool,
}

impl Request {
    pub fn new() -> Self {
        Self::default()
    }

    /// A request holding its own copies of `args` (a command queued by
    /// MULTI); read it with `args(&[])`.
    pub fn from_owned<A: AsRef<[u8]>>(args: &[A]) -> Self {
        let mut r = Request {
            inline: true,
            ..Self::default()
        };
        for a in args {
            r.push_owned(a.as_ref());
        }
        r
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    pub fn is_inline(&self) -> bool {
        self.inline
    }

    /// The arguments, given the same input slice that was parsed.
    pub fn args<'a>(&'a self, input: &'a [u8]) -> Args<'a> {
        let base = if self.inline { &self.owned[..] } else { input };
        Args {
            base,
            spans: &self.spans,
        }
    }

    fn clear(&mut self) {
        self.spans.clear();
        self.owned.clear();
        self.inline = false;
    }

    fn push_owned(&mut self, arg: &[u8]) {
        let start = self.owned.len() as u32;
        self.owned.extend_from_slice(arg);
        self.spans.push(Span {
            start,
            end: self.owned.len() as u32,
        });
    }
}

/// A borrowed view of a request's arguments.
#[derive(Clone, Copy)]
pub struct Args<'a> {
    base: &'a [u8],
    spans: &'a [Span],
}

impl<'a> Args<'a> {
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    pub fn get(&self, i: usize) -> Option<&'a [u8]> {
        let s = self.spans.get(i)?;
        self.base.get(s.start as usize..s.end as usize)
    }

    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let base = self.base;
        self.spans.iter().map(move |s| {
            base.get(s.start as usize..s.end as usize)
                .unwrap_or_default()
        })
    }

    pub fn to_vec(&self) -> Vec<&'a [u8]> {
        self.iter().collect()
    }
}

/// Parses one request from the front of `input` into `req`.
pub fn parse_request(
    input: &[u8],
    limits: &Limits,
    req: &mut Request,
) -> Result<Parsed, ProtocolError> {
    req.clear();
    match input.first() {
        None => Ok(Parsed::Incomplete { hint: 0 }),
        Some(b'*') => parse_multibulk(input, limits, req),
        Some(_) => parse_inline(input, req),
    }
}

/// Parses the decimal integer Redis accepts in headers: optional '-', no
/// leading '+', no leading zeros except "0", fits in i64.
fn parse_i64(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 19 || (digits.len() > 1 && digits[0] == b'0') {
        return None;
    }
    let mut v: i64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(i64::from(c - b'0'))?;
    }
    if neg {
        if v == 0 {
            return None;
        }
        Some(-v)
    } else {
        Some(v)
    }
}

/// Finds the header line starting at `pos` (after its type byte). Returns the
/// line's content and the position after its "\r\n", or None when the line is
/// not complete yet.
fn header_line(input: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    let rest = input.get(pos..)?;
    let cr = memchr(b'\r', rest)?;
    // Redis needs the '\n' to be in the buffer too before it trusts the line.
    if cr + 1 >= rest.len() {
        return None;
    }
    Some((&rest[..cr], pos + cr + 2))
}

fn parse_multibulk(
    input: &[u8],
    limits: &Limits,
    req: &mut Request,
) -> Result<Parsed, ProtocolError> {
    let Some((line, mut pos)) = header_line(input, 1) else {
        if input.len() > INLINE_MAX {
            return Err(ProtocolError::TooBigMbulkCount);
        }
        return Ok(Parsed::Incomplete { hint: 0 });
    };
    let count = match parse_i64(line) {
        Some(n) if n <= i64::from(i32::MAX) => n,
        _ => return Err(ProtocolError::InvalidMultibulkLength),
    };
    if count > 10 && limits.auth_required {
        return Err(ProtocolError::UnauthenticatedMultibulk);
    }
    if count <= 0 {
        return Ok(Parsed::Complete { consumed: pos });
    }
    for _ in 0..count {
        if pos >= input.len() {
            return Ok(Parsed::Incomplete { hint: 0 });
        }
        let Some((line, after)) = header_line(input, pos + 1) else {
            if input.len() - pos > INLINE_MAX {
                return Err(ProtocolError::TooBigBulkCount);
            }
            return Ok(Parsed::Incomplete { hint: 0 });
        };
        if input[pos] != b'$' {
            return Err(ProtocolError::ExpectedDollar(input[pos]));
        }
        let len = match parse_i64(line) {
            Some(n) if n >= 0 && (n as u64) <= limits.max_bulk_len => n as usize,
            _ => return Err(ProtocolError::InvalidBulkLength),
        };
        if len > 16384 && limits.auth_required {
            return Err(ProtocolError::UnauthenticatedBulk);
        }
        let end = after + len;
        if input.len() < end + 2 {
            return Ok(Parsed::Incomplete { hint: end + 2 });
        }
        // Spans are u32: the connection caps its buffer below 4 GiB.
        req.spans.push(Span {
            start: after as u32,
            end: end as u32,
        });
        pos = end + 2;
    }
    Ok(Parsed::Complete { consumed: pos })
}

fn parse_inline(input: &[u8], req: &mut Request) -> Result<Parsed, ProtocolError> {
    let Some(nl) = memchr(b'\n', input) else {
        if input.len() > INLINE_MAX {
            return Err(ProtocolError::TooBigInline);
        }
        return Ok(Parsed::Incomplete { hint: 0 });
    };
    let mut line = &input[..nl];
    if let Some(stripped) = line.strip_suffix(b"\r") {
        line = stripped;
    }
    req.inline = true;
    let args = crate::split_args(line).ok_or(ProtocolError::UnbalancedQuotes)?;
    for a in &args {
        req.push_owned(a);
    }
    Ok(Parsed::Complete { consumed: nl + 1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(input: &[u8]) -> Result<(Vec<Vec<u8>>, Parsed), ProtocolError> {
        let mut req = Request::new();
        let p = parse_request(input, &Limits::default(), &mut req)?;
        Ok((req.args(input).iter().map(<[u8]>::to_vec).collect(), p))
    }

    #[test]
    fn multibulk_set_parses_three_args() {
        let (args, p) = parse_all(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\nrest").unwrap();
        assert_eq!(args, vec![b"SET".to_vec(), b"k".to_vec(), b"".to_vec()]);
        assert_eq!(p, Parsed::Complete { consumed: 26 });
    }

    #[test]
    fn partial_bulk_reports_total_length() {
        let (_, p) = parse_all(b"*1\r\n$10\r\nabc").unwrap();
        assert_eq!(p, Parsed::Incomplete { hint: 4 + 5 + 12 });
    }

    #[test]
    fn header_without_newline_is_incomplete() {
        assert_eq!(
            parse_all(b"*1\r").unwrap().1,
            Parsed::Incomplete { hint: 0 }
        );
        assert_eq!(
            parse_all(b"*1\r\n$3\r").unwrap().1,
            Parsed::Incomplete { hint: 0 }
        );
    }

    #[test]
    fn protocol_errors_match_redis() {
        let e = |b: &[u8]| parse_all(b).unwrap_err().to_string();
        assert_eq!(
            e(b"*3000000000\r\n"),
            "Protocol error: invalid multibulk length"
        );
        assert_eq!(
            e(b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n"),
            "Protocol error: expected '$', got 'f'"
        );
        assert_eq!(
            e(b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$-10\r\n"),
            "Protocol error: invalid bulk length"
        );
        assert_eq!(
            e(b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$2000000000\r\n"),
            "Protocol error: invalid bulk length"
        );
        assert_eq!(
            e(b"*1\r\n$blabla\r\n"),
            "Protocol error: invalid bulk length"
        );
        assert_eq!(
            e(b"set \"\"\"test-key\"\"\" v\r\n"),
            "Protocol error: unbalanced quotes in request"
        );
        assert_eq!(
            e(&[b'x'; INLINE_MAX + 1]),
            "Protocol error: too big inline request"
        );
    }

    #[test]
    fn empty_and_negative_multibulk_are_skipped() {
        let (args, p) = parse_all(b"*-10\r\n").unwrap();
        assert!(args.is_empty());
        assert_eq!(p, Parsed::Complete { consumed: 6 });
        let (args, _) = parse_all(b"\r\n").unwrap();
        assert!(args.is_empty());
    }

    #[test]
    fn inline_splits_and_unquotes() {
        let (args, p) = parse_all(b"set \"a b\" 'c'\r\n").unwrap();
        assert_eq!(args, vec![b"set".to_vec(), b"a b".to_vec(), b"c".to_vec()]);
        assert_eq!(p, Parsed::Complete { consumed: 15 });
    }

    #[test]
    fn unauthenticated_limits() {
        let limits = Limits {
            auth_required: true,
            ..Limits::default()
        };
        let mut req = Request::new();
        assert_eq!(
            parse_request(b"*11\r\n", &limits, &mut req),
            Err(ProtocolError::UnauthenticatedMultibulk)
        );
        assert_eq!(
            parse_request(b"*1\r\n$16385\r\n", &limits, &mut req),
            Err(ProtocolError::UnauthenticatedBulk)
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics(input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
            let mut req = Request::new();
            let _ = parse_request(&input, &Limits::default(), &mut req);
        }

        #[test]
        fn encoded_commands_round_trip(args in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40), 1..8)) {
            let mut wire = format!("*{}\r\n", args.len()).into_bytes();
            for a in &args {
                wire.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
                wire.extend_from_slice(a);
                wire.extend_from_slice(b"\r\n");
            }
            let (got, p) = parse_all(&wire).unwrap();
            proptest::prop_assert_eq!(got, args);
            proptest::prop_assert_eq!(p, Parsed::Complete { consumed: wire.len() });
            for cut in 0..wire.len() {
                let mut req = Request::new();
                let r = parse_request(&wire[..cut], &Limits::default(), &mut req).unwrap();
                let incomplete = matches!(r, Parsed::Incomplete { .. });
                proptest::prop_assert!(incomplete);
            }
        }
    }
}
