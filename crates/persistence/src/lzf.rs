//! LZF compression making the same choices as the liblzf Redis bundles
//! (3.6, HLOG 16, VERY_FAST, output bounded by the caller), so compressed
//! strings are byte-identical to Redis's. The `lzf` crate, an older port,
//! refuses matches within four bytes of the end and caps a match at the
//! input end minus two where Redis's unrolled compare goes two further.
//! Decompression is the crate's (any valid LZF decodes the same).
//!
//! Format: a literal run is a byte L (0..=31) and L+1 literals; a back
//! reference is (len << 5 | off >> 8) [, len - 7 when len is 7], off & 255,
//! copying len + 2 bytes from off + 1 bytes back.

const HLOG: u32 = 16;
const HSIZE: usize = 1 << HLOG;
const MAX_LIT: usize = 1 << 5;
const MAX_OFF: usize = 1 << 13;
const MAX_REF: usize = (1 << 8) + (1 << 3);

/// The hash-table slot of the three bytes ending `h` (liblzf's VERY_FAST
/// hash; bits of the byte before stay in `h` and count, as in liblzf).
fn slot(h: u32) -> usize {
    ((h >> (24 - HLOG)).wrapping_sub(h.wrapping_mul(5)) as usize) & (HSIZE - 1)
}

/// Ends the open literal run (its header sits `lit` bytes back); a run
/// with no literal is taken back.
fn close_run(out: &mut Vec<u8>, lit: usize) {
    let at = out.len() - lit - 1;
    out[at] = (lit as u8).wrapping_sub(1);
    if lit == 0 {
        out.pop();
    }
}

/// liblzf's hash table of positions, kept per thread: an entry stamped
/// with an earlier call's generation reads as empty (position 0, which is
/// never a match), so a call does not zero 64K slots first. A large SAVE
/// compresses about one value per key.
struct Positions {
    slots: Vec<u64>,
    generation: u64,
}

impl Positions {
    fn begin(&mut self) {
        self.generation += 1;
        if self.generation > u64::from(u32::MAX) {
            self.slots.fill(0);
            self.generation = 1;
        }
    }

    fn get(&self, slot: usize) -> usize {
        let e = self.slots[slot];
        if e >> 32 == self.generation {
            (e & 0xffff_ffff) as usize
        } else {
            0
        }
    }

    fn set(&mut self, slot: usize, ip: usize) {
        self.slots[slot] = self.generation << 32 | ip as u64;
    }
}

thread_local! {
    static POSITIONS: std::cell::RefCell<Positions> = std::cell::RefCell::new(Positions {
        slots: vec![0; HSIZE],
        generation: 0,
    });
}

/// Compresses `input` into at most `limit` bytes; None when it does not
/// fit (checked where liblzf checks, so the same inputs are refused).
pub fn compress(input: &[u8], limit: usize) -> Option<Vec<u8>> {
    if input.len() < 3 || input.len() > u32::MAX as usize {
        return None;
    }
    POSITIONS.with(|p| {
        let mut table = p.borrow_mut();
        table.begin();
        compress_with(input, limit, &mut table)
    })
}

fn compress_with(input: &[u8], limit: usize, table: &mut Positions) -> Option<Vec<u8>> {
    let n = input.len();
    let mut out = Vec::with_capacity(limit);
    let mut lit = 0usize;
    out.push(0); // the open run's header
    let mut ip = 0usize;
    let mut h = (u32::from(input[0]) << 8) | u32::from(input[1]);
    while ip + 2 < n {
        h = (h << 8) | u32::from(input[ip + 2]);
        let s = slot(h);
        let r = table.get(s);
        table.set(s, ip);
        let off = ip.wrapping_sub(r).wrapping_sub(1);
        if off < MAX_OFF && r > 0 && input[r..r + 3] == input[ip..ip + 3] {
            if out.len() + 4 - usize::from(lit == 0) >= limit {
                return None;
            }
            close_run(&mut out, lit);
            let maxlen = (n - ip - 2).min(MAX_REF);
            let same = |k: usize| input[r + k] == input[ip + k];
            // `len` ends as the match length: 16 bytes past the first
            // three are compared unconditionally when maxlen > 16.
            let mut len = 2;
            let mut stopped = false;
            if maxlen > 16 {
                for _ in 0..16 {
                    len += 1;
                    if !same(len) {
                        stopped = true;
                        break;
                    }
                }
            }
            if !stopped {
                len += 1;
                while len < maxlen && same(len) {
                    len += 1;
                }
            }
            let code = len - 2;
            let hi = (off >> 8) as u8;
            if code < 7 {
                out.push(hi + ((code as u8) << 5));
            } else {
                out.push(hi + (7 << 5));
                out.push((code - 7) as u8);
            }
            out.push(off as u8);
            out.push(0);
            lit = 0;
            ip += len;
            if ip + 2 >= n {
                break;
            }
            // Hash the last two positions the match covered.
            ip -= 2;
            h = (u32::from(input[ip]) << 8) | u32::from(input[ip + 1]);
            for _ in 0..2 {
                h = (h << 8) | u32::from(input[ip + 2]);
                table.set(slot(h), ip);
                ip += 1;
            }
        } else {
            if out.len() >= limit {
                return None;
            }
            push_literal(&mut out, &mut lit, input[ip]);
            ip += 1;
        }
    }
    if out.len() + 3 > limit {
        return None;
    }
    for &b in &input[ip..] {
        push_literal(&mut out, &mut lit, b);
    }
    close_run(&mut out, lit);
    Some(out)
}

fn push_literal(out: &mut Vec<u8>, lit: &mut usize, b: u8) {
    *lit += 1;
    out.push(b);
    if *lit == MAX_LIT {
        close_run(out, MAX_LIT);
        *lit = 0;
        out.push(0);
    }
}

#[cfg(test)]
mod tests {
    use super::compress;

    #[test]
    fn round_trips_and_respects_the_limit() {
        let inputs: Vec<Vec<u8>> = vec![
            b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_vec(),
            b"abcabcabcabcabcabcabcabcabcabcabcxyz".to_vec(),
            (0..5000u32).map(|i| (i * 7 % 13) as u8).collect(),
            (0..300u32).map(|i| (i % 256) as u8).collect(),
            b"0123456789abcdefghij0123456789abcdefghij0123456789abcdefghij".to_vec(),
        ];
        for input in inputs {
            let limit = input.len() - 4;
            if let Some(c) = compress(&input, limit) {
                assert!(c.len() <= limit);
                assert_eq!(lzf::decompress(&c, input.len()).unwrap(), input);
            }
        }
        assert!(compress(b"abcdefghijklmnopqrstuvwxyz", 22).is_none());
    }

    /// The reused position table never leaks one call's positions into
    /// the next: the same input compresses the same after any other.
    #[test]
    fn earlier_calls_do_not_change_the_output() {
        let a: Vec<u8> = (0..4000u32).map(|i| (i * 31 % 97) as u8).collect();
        let b: Vec<u8> = (0..4000u32).map(|i| (i * 7 % 11) as u8).collect();
        let first = compress(&a, a.len());
        for _ in 0..3 {
            assert!(compress(&b, b.len()).is_some());
            assert_eq!(compress(&a, a.len()), first);
        }
    }

    #[test]
    fn output_matches_redis_7_0() {
        // DUMP payloads from Redis 7.0.15: (value, its LZF body, or None
        // when Redis stores it uncompressed).
        let abc = [&b"abcdefghijklmnopqrstuvwxyz0123456789"[..]; 2].concat();
        let cases: [(Vec<u8>, Option<&[u8]>); 3] = [
            (b"xyz0123456789abcdefghijklmnopxyzK".to_vec(), None),
            (
                b"0123456789abcdefghij0123456789abcdefghijQQQ".to_vec(),
                Some(b"\x140123456789abcdefghij0\xe0\n\x13\x02QQQ"),
            ),
            (
                [&abc[..], b"abc"].concat(),
                Some(b"\x1fabcdefghijklmnopqrstuvwxyz012345\x046789a\xe0\x1b#\x01bc"),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(compress(&input, input.len() - 4).as_deref(), want);
        }
    }
}
