//! Helpers shared by the fuzz targets: encoders that turn a list of
//! arguments back into wire bytes, so a target can check that what the
//! parser produced survives a round trip.

/// Encodes `args` as one RESP multibulk request.
pub fn encode_multibulk(args: &[Vec<u8>]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn needs_quotes(arg: &[u8]) -> bool {
    arg.is_empty()
        || arg
            .iter()
            .any(|&c| matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | b'"' | b'\''))
}

/// Encodes `args` as one inline line (without the line terminator) that
/// `split_args` must split back into exactly `args`. Arguments that can go
/// bare do; the others are double-quoted with escapes. `style` varies the
/// escaping so both the `\xHH` and the single-character escapes get used.
pub fn encode_inline_line(args: &[Vec<u8>], style: u8) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(if style & 1 == 0 { b' ' } else { b'\t' });
        }
        // A bare word may not start with '*' only at the very front of the
        // line (that would make it a multibulk request); quote it there.
        let bare_ok = !needs_quotes(a) && !(i == 0 && a.first() == Some(&b'*'));
        if bare_ok && style & 2 == 0 {
            out.extend_from_slice(a);
            continue;
        }
        out.push(b'"');
        for &c in a {
            match c {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' if style & 4 == 0 => out.extend_from_slice(b"\\t"),
                0x20..=0x7e => out.push(c),
                _ => out.extend_from_slice(format!("\\x{c:02x}").as_bytes()),
            }
        }
        out.push(b'"');
    }
    out
}

/// A tiny deterministic generator (xorshift64*), seeded from the input, used
/// to pick chunk boundaries and cut points without another input channel.
pub struct Rng(u64);

impl Rng {
    pub fn new(data: &[u8]) -> Self {
        // FNV-1a over the input; never zero.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in data {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        Rng(h | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A value in `lo..=hi` (`lo <= hi`).
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo + 1) as u64) as usize
    }
}
