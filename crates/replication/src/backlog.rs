//! The replication backlog: the last `size` bytes of the command stream,
//! so a replica that lost its link can continue from its offset
//! (PSYNC's partial resync) instead of loading a whole RDB again.

use std::collections::VecDeque;

/// A ring of the stream's most recent bytes. `end` is the stream offset of
/// its last byte (master_repl_offset), so the first held byte is
/// `end - len + 1`.
pub struct Backlog {
    buf: VecDeque<u8>,
    size: usize,
}

impl Backlog {
    pub fn new(size: usize) -> Backlog {
        Backlog {
            buf: VecDeque::new(),
            size: size.max(1),
        }
    }

    /// `repl_backlog_size`.
    pub fn size(&self) -> usize {
        self.size
    }

    /// `repl_backlog_histlen`: bytes held.
    pub fn histlen(&self) -> usize {
        self.buf.len()
    }

    /// Appends stream bytes, dropping the oldest beyond the size.
    pub fn append(&mut self, bytes: &[u8]) {
        let keep = bytes.len().min(self.size);
        let bytes = &bytes[bytes.len() - keep..];
        let over = (self.buf.len() + bytes.len()).saturating_sub(self.size);
        self.buf.drain(..over);
        self.buf.extend(bytes);
    }

    /// CONFIG SET repl-backlog-size: keeps the newest bytes that fit.
    pub fn resize(&mut self, size: usize) {
        self.size = size.max(1);
        let over = self.buf.len().saturating_sub(self.size);
        self.buf.drain(..over);
        self.buf.shrink_to(self.size);
    }

    /// The stream from offset `from` (the next byte a replica wants) to
    /// `end`, or None when those bytes are no longer (or not yet) held.
    pub fn since(&self, from: i64, end: i64) -> Option<Vec<u8>> {
        let first = end - self.buf.len() as i64 + 1;
        if from < first || from > end + 1 {
            return None;
        }
        let skip = (from - first) as usize;
        Some(self.buf.range(skip..).copied().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::Backlog;

    #[test]
    fn keeps_the_newest_bytes_and_serves_offsets_it_holds() {
        let mut b = Backlog::new(8);
        b.append(b"abcdef");
        assert_eq!(b.since(1, 6).as_deref(), Some(&b"abcdef"[..]));
        assert_eq!(b.since(4, 6).as_deref(), Some(&b"def"[..]));
        assert_eq!(b.since(7, 6).as_deref(), Some(&b""[..]));
        assert_eq!(b.since(8, 6), None);
        b.append(b"ghijk");
        // 11 bytes written, 8 kept: offsets 4..=11.
        assert_eq!(b.histlen(), 8);
        assert_eq!(b.since(3, 11), None);
        assert_eq!(b.since(4, 11).as_deref(), Some(&b"defghijk"[..]));
        b.append(b"0123456789");
        assert_eq!(b.since(14, 21).as_deref(), Some(&b"23456789"[..]));
        b.resize(3);
        assert_eq!(b.since(19, 21).as_deref(), Some(&b"789"[..]));
        assert_eq!(b.since(18, 21), None);
    }
}
