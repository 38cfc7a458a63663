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

    /// Empties an owned request for reuse, keeping its buffers; fill it
    /// with `push_arg`.
    pub fn clear_owned(&mut self) {
        self.clear();
        self.inline = true;
    }

    /// Makes room in an owned request for `args` more arguments of
    /// `bytes` in all, so that pushing them allocates nothing more.
    pub fn reserve_owned(&mut self, args: usize, bytes: usize) {
        self.spans.reserve(args);
        self.owned.reserve(bytes);
    }

    /// Appends a copy of `arg` to an owned request.
    pub fn push_arg(&mut self, arg: &[u8]) {
        self.push_owned(arg);
    }

    /// Gives back what a large owned request reserved, keeping small
    /// buffers for reuse.
    pub fn trim_owned(&mut self) {
        const KEEP_BYTES: usize = 64 << 10;
        if self.owned.capacity() > KEEP_BYTES {
            self.owned = Vec::new();
        }
        self.shrink();
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

    /// Gives back what one huge request left reserved (a SADD of 100k
    /// members keeps 800 KB of spans), as Redis frees a big argv.
    pub fn shrink(&mut self) {
        const KEEP_ARGS: usize = 1024;
        if self.spans.capacity() > KEEP_ARGS {
            self.spans = Vec::new();
        }
        if self.owned.capacity() > KEEP_ARGS * 16 {
            self.owned = Vec::new();
        }
    }

    /// The bytes of a multibulk request up to the end of its second
    /// argument (`input` as given to `args`): two requests with equal
    /// heads name the same command and key, as every argument is framed
    /// by its length. None for an inline request or a shorter one.
    pub fn head<'a>(&self, input: &'a [u8]) -> Option<&'a [u8]> {
        if self.inline {
            return None;
        }
        input.get(..self.spans.get(1)?.end as usize)
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

/// The common header: a short run of digits (no sign, no leading zero)
/// ended by "\r\n", read in one pass without a memchr call or a second
/// scan. None sends the caller to the general path (`header_line` +
/// `parse_i64`), which handles everything else, errors included.
#[inline]
fn fast_header(input: &[u8], pos: usize) -> Option<(i64, usize)> {
    let rest = input.get(pos..)?;
    // One or two digits (argument counts, short lengths) in one look.
    if let Some(&[a, b, c, _]) = rest.first_chunk::<4>() {
        if a.is_ascii_digit() && b == b'\r' {
            return Some((i64::from(a - b'0'), pos + 3));
        }
        if (b'1'..=b'9').contains(&a) && b.is_ascii_digit() && c == b'\r' {
            return Some((i64::from(a - b'0') * 10 + i64::from(b - b'0'), pos + 4));
        }
    }
    let first = *rest.first()?;
    if !first.is_ascii_digit() || (first == b'0' && rest.get(1) != Some(&b'\r')) {
        return None;
    }
    let mut v = i64::from(first - b'0');
    // At most 17 more digits: 18 always fit in an i64.
    let mut i = 1;
    while i < rest.len().min(18) {
        let c = rest[i];
        if c.is_ascii_digit() {
            v = v * 10 + i64::from(c - b'0');
        } else if c == b'\r' && i + 1 < rest.len() {
            return Some((v, pos + i + 2));
        } else {
            return None;
        }
        i += 1;
    }
    None
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
    let (count, mut pos) = match fast_header(input, 1) {
        Some(h) => h,
        None => {
            let Some((line, pos)) = header_line(input, 1) else {
                if input.len() > INLINE_MAX {
                    return Err(ProtocolError::TooBigMbulkCount);
                }
                return Ok(Parsed::Incomplete { hint: 0 });
            };
            match parse_i64(line) {
                Some(n) => (n, pos),
                None => return Err(ProtocolError::InvalidMultibulkLength),
            }
        }
    };
    if count > i64::from(i32::MAX) {
        return Err(ProtocolError::InvalidMultibulkLength);
    }
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
        let fast = match input[pos] {
            b'$' => fast_header(input, pos + 1),
            _ => None,
        };
        let (len, after) = match fast {
            Some(h) => h,
            None => {
                let Some((line, after)) = header_line(input, pos + 1) else {
                    if input.len() - pos > INLINE_MAX {
                        return Err(ProtocolError::TooBigBulkCount);
                    }
                    return Ok(Parsed::Incomplete { hint: 0 });
                };
                if input[pos] != b'$' {
                    return Err(ProtocolError::ExpectedDollar(input[pos]));
                }
                match parse_i64(line) {
                    Some(n) => (n, after),
                    None => return Err(ProtocolError::InvalidBulkLength),
                }
            }
        };
        let len = match len {
            n if n >= 0 && (n as u64) <= limits.max_bulk_len => n as usize,
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
