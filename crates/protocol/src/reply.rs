//! Reply encoding. One `Reply` buffer per connection collects the replies of
//! a whole read batch, so a pipeline costs one write.

/// Output buffer that renders replies in the connection's protocol version.
#[derive(Debug, Default)]
pub struct Reply {
    buf: Vec<u8>,
    resp3: bool,
}

/// Formats a double as C's `%.17g` does (what Redis 7.0 replies), with
/// `inf`/`-inf`/`nan` spelled as glibc spells them.
pub fn format_double(d: f64) -> String {
    let mut out = Vec::with_capacity(24);
    write_double(&mut out, d);
    String::from_utf8(out).unwrap_or_default()
}

/// Below this an integral double is exact, and `%.17g` prints it as its
/// digits.
const EXACT_INT: f64 = 9_007_199_254_740_992.0;

/// Appends `format_double(d)` to `out` without an allocation of its own.
/// Integral values (leaderboard scores) are written as integers; others
/// get one correctly rounded 17-digit conversion, from whose digits the
/// fixed form is laid out.
pub fn write_double(out: &mut Vec<u8>, d: f64) {
    if d.is_nan() {
        out.extend_from_slice(if d.is_sign_negative() {
            b"-nan"
        } else {
            b"nan"
        });
        return;
    }
    if d.is_infinite() {
        out.extend_from_slice(if d > 0.0 { b"inf" } else { b"-inf" });
        return;
    }
    if d == 0.0 {
        out.extend_from_slice(if d.is_sign_negative() { b"-0" } else { b"0" });
        return;
    }
    if d.fract() == 0.0 && d.abs() < EXACT_INT {
        out.extend_from_slice(itoa::Buffer::new().format(d as i64).as_bytes());
        return;
    }
    // `{:.16e}` is correctly rounded to 17 significant digits, as printf
    // is: "-d.dddddddddddddddde-X" fits in 32 bytes.
    let mut sci = [0u8; 32];
    let mut cur = &mut sci[..];
    if std::io::Write::write_fmt(&mut cur, format_args!("{d:.16e}")).is_err() {
        return;
    }
    let len = 32 - cur.len();
    let sci = &sci[..len];
    let (neg, body) = match sci.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, sci),
    };
    let Some(e_at) = body.iter().position(|&c| c == b'e') else {
        return;
    };
    let exp: i32 = std::str::from_utf8(&body[e_at + 1..])
        .ok()
        .and_then(|e| e.parse().ok())
        .unwrap_or(0);
    let mut digits = [0u8; 17];
    let mut n = 0;
    for &c in body[..e_at].iter().filter(|c| c.is_ascii_digit()) {
        if n < digits.len() {
            digits[n] = c;
            n += 1;
        }
    }
    // Trailing zeros are never printed (`%g` drops them, and the point).
    while n > 1 && digits[n - 1] == b'0' {
        n -= 1;
    }
    let digits = &digits[..n];
    if neg {
        out.push(b'-');
    }
    if !(-4..17).contains(&exp) {
        out.push(digits[0]);
        if digits.len() > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        out.push(b'e');
        out.push(if exp < 0 { b'-' } else { b'+' });
        let e = exp.unsigned_abs();
        if e < 10 {
            out.push(b'0');
        }
        out.extend_from_slice(itoa::Buffer::new().format(e).as_bytes());
    } else if exp < 0 {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', (-exp - 1) as usize));
        out.extend_from_slice(digits);
    } else {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            out.extend_from_slice(digits);
            out.extend(std::iter::repeat_n(b'0', int_len - digits.len()));
        } else {
            out.extend_from_slice(&digits[..int_len]);
            out.push(b'.');
            out.extend_from_slice(&digits[int_len..]);
        }
    }
}

impl Reply {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set_resp3(&mut self, on: bool) {
        self.resp3 = on;
    }

    pub fn is_resp3(&self) -> bool {
        self.resp3
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The bytes written, without a copy.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// A reply that continues `bytes` (already rendered).
    pub fn from_bytes(bytes: Vec<u8>, resp3: bool) -> Self {
        Reply { buf: bytes, resp3 }
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn clear(&mut self) {
        self.buf.clear();
    }

    /// Inserts `bytes` at `at` (a message that must precede replies already
    /// written).
    pub fn insert(&mut self, at: usize, bytes: &[u8]) {
        let at = at.min(self.buf.len());
        self.buf.splice(at..at, bytes.iter().copied());
    }

    /// Drops what was written after `len` (used to discard a partial reply).
    pub fn truncate(&mut self, len: usize) {
        self.buf.truncate(len);
    }

    /// Gives back memory after a huge reply so an idle connection stays small.
    pub fn shrink(&mut self, keep: usize) {
        if self.buf.capacity() > keep {
            self.buf = Vec::with_capacity(keep);
        }
    }

    fn header(&mut self, tag: u8, n: i64) {
        // Most headers are short (0/1 counts, small lengths): one copy of
        // a fixed-size line instead of a formatter and three appends.
        match n {
            0..=9 => self
                .buf
                .extend_from_slice(&[tag, b'0' + n as u8, b'\r', b'\n']),
            10..=99 => self.buf.extend_from_slice(&[
                tag,
                b'0' + (n / 10) as u8,
                b'0' + (n % 10) as u8,
                b'\r',
                b'\n',
            ]),
            _ => {
                self.buf.push(tag);
                self.buf
                    .extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
                self.buf.extend_from_slice(b"\r\n");
            }
        }
    }

    pub fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    pub fn ok(&mut self) {
        self.buf.extend_from_slice(b"+OK\r\n");
    }

    pub fn simple(&mut self, s: &[u8]) {
        self.buf.push(b'+');
        self.buf.extend(
            s.iter()
                .map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c }),
        );
        self.buf.extend_from_slice(b"\r\n");
    }

    /// An error reply; `msg` starts with its code (`ERR ...`, `WRONGTYPE ...`).
    /// Newlines are replaced by spaces so the reply stays one protocol line.
    pub fn error(&mut self, msg: &str) {
        self.buf.push(b'-');
        self.buf.extend(
            msg.as_bytes()
                .iter()
                .map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c }),
        );
        self.buf.extend_from_slice(b"\r\n");
    }

    pub fn int(&mut self, n: i64) {
        self.header(b':', n);
    }

    pub fn bulk(&mut self, s: &[u8]) {
        self.buf.reserve(s.len() + 16);
        self.header(b'$', s.len() as i64);
        self.buf.extend_from_slice(s);
        self.buf.extend_from_slice(b"\r\n");
    }

    /// An integer sent as a bulk string (what Redis does for values stored as
    /// integers).
    pub fn bulk_int(&mut self, n: i64) {
        let mut b = itoa::Buffer::new();
        self.bulk(b.format(n).as_bytes());
    }

    /// The null bulk string (`$-1` in RESP2).
    pub fn null(&mut self) {
        self.buf
            .extend_from_slice(if self.resp3 { b"_\r\n" } else { b"$-1\r\n" });
    }

    /// The null array (`*-1` in RESP2).
    pub fn null_array(&mut self) {
        self.buf
            .extend_from_slice(if self.resp3 { b"_\r\n" } else { b"*-1\r\n" });
    }

    pub fn array(&mut self, n: usize) {
        self.header(b'*', n as i64);
    }

    /// A map of `n` pairs (a flat array of 2n in RESP2).
    pub fn map(&mut self, n: usize) {
        if self.resp3 {
            self.header(b'%', n as i64);
        } else {
            self.header(b'*', 2 * n as i64);
        }
    }

    pub fn set(&mut self, n: usize) {
        self.header(if self.resp3 { b'~' } else { b'*' }, n as i64);
    }

    pub fn push(&mut self, n: usize) {
        self.header(if self.resp3 { b'>' } else { b'*' }, n as i64);
    }

    pub fn double(&mut self, d: f64) {
        if self.resp3 {
            self.buf.push(b',');
            write_double(&mut self.buf, d);
        } else {
            // Written in place, then its (short) bulk header goes in front.
            let start = self.buf.len();
            write_double(&mut self.buf, d);
            let mut len = itoa::Buffer::new();
            let len = len.format(self.buf.len() - start).as_bytes();
            let header = b"$".iter().chain(len).chain(b"\r\n").copied();
            self.buf.splice(start..start, header);
        }
        self.buf.extend_from_slice(b"\r\n");
    }

    /// A big number's digits (`(` in RESP3, a bulk string in RESP2), with
    /// newlines made spaces in both, as Redis does for a script's.
    pub fn big_number(&mut self, digits: &[u8]) {
        let line = digits
            .iter()
            .map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c });
        if self.resp3 {
            self.buf.push(b'(');
            self.buf.extend(line);
            self.buf.extend_from_slice(b"\r\n");
        } else {
            self.header(b'$', digits.len() as i64);
            self.buf.extend(line);
            self.buf.extend_from_slice(b"\r\n");
        }
    }

    /// The header of `n` attribute pairs, which describe the reply after
    /// them. RESP2 has no attributes: the caller writes them only on RESP3.
    pub fn attribute(&mut self, n: usize) {
        self.header(b'|', n as i64);
    }

    pub fn bool(&mut self, b: bool) {
        if self.resp3 {
            self.buf
                .extend_from_slice(if b { b"#t\r\n" } else { b"#f\r\n" });
        } else {
            self.int(i64::from(b));
        }
    }

    /// Verbatim text (`=` in RESP3, a bulk string in RESP2); `fmt` is 3 bytes.
    pub fn verbatim(&mut self, fmt: &str, text: &[u8]) {
        if self.resp3 {
            self.header(b'=', (text.len() + 4) as i64);
            self.buf.extend_from_slice(fmt.as_bytes());
            self.buf.push(b':');
            self.buf.extend_from_slice(text);
            self.buf.extend_from_slice(b"\r\n");
        } else {
            self.bulk(text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_render_as_decimal_lines_at_every_magnitude() {
        let mut values = vec![i64::MIN, i64::MAX, i64::MIN + 1, 0, -1, -9, -10, -99, -100];
        let mut p = 1i64;
        while let Some(q) = p.checked_mul(10) {
            values.extend([p - 1, p, p + 1, -p, q - 1]);
            p = q;
        }
        for n in values {
            let mut r = Reply::new();
            r.raw(b"x");
            r.int(n);
            assert_eq!(r.as_bytes(), format!("x:{n}\r\n").as_bytes(), "{n}");
        }
    }

    /// `%.17g` the slow way: two correctly rounded conversions.
    fn reference(d: f64) -> String {
        if d.is_nan() || d.is_infinite() || d == 0.0 {
            return format_double(d);
        }
        let trim = |s: String| {
            if s.contains('.') {
                s.trim_end_matches('0').trim_end_matches('.').to_string()
            } else {
                s
            }
        };
        let sci = format!("{d:.16e}");
        let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        if (-4..17).contains(&exp) {
            let decimals = (16 - exp).max(0) as usize;
            trim(format!("{d:.decimals$}"))
        } else {
            let sign = if exp < 0 { '-' } else { '+' };
            format!("{}e{sign}{:02}", trim(mantissa.to_string()), exp.abs())
        }
    }

    #[test]
    fn doubles_print_as_printf_17g() {
        for (d, want) in [
            (1.0, "1"),
            (-5.0, "-5"),
            (0.1, "0.10000000000000001"),
            (1.5, "1.5"),
            (123456.0, "123456"),
            (1e17, "1e+17"),
            (1.5e-5, "1.5e-05"),
            (0.0001, "0.0001"),
            (-0.0, "-0"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (9007199254740993.0, "9007199254740992"),
            (3.0e300, "3.0000000000000002e+300"),
            (1e16, "10000000000000000"),
        ] {
            assert_eq!(format_double(d), want, "{d:e}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_double_prints_as_the_two_step_conversion(bits: u64) {
            let d = f64::from_bits(bits);
            proptest::prop_assert_eq!(format_double(d), reference(d));
        }

        #[test]
        fn scores_print_as_the_two_step_conversion(i in -1_000_000_000i64..1_000_000_000, div in 1u32..10_000) {
            let d = i as f64 / f64::from(div);
            proptest::prop_assert_eq!(format_double(d), reference(d));
        }
    }

    #[test]
    fn double_replies_in_both_protocols() {
        let mut r = Reply::new();
        r.double(2.5);
        r.double(-3.0);
        assert_eq!(r.as_bytes(), b"$3\r\n2.5\r\n$2\r\n-3\r\n");
        let mut r = Reply::new();
        r.set_resp3(true);
        r.double(0.1);
        assert_eq!(r.as_bytes(), b",0.10000000000000001\r\n");
    }
}
