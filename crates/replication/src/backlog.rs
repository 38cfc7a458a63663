//! The replication backlog: the last `size` bytes of the command stream,
//! so a replica that lost its link can continue from its offset
//! (PSYNC's partial resync) instead of loading a whole RDB again.

use std::collections::VecDeque;

/// Bytes per block: growth adds blocks, so the backlog never copies what
/// it holds (one contiguous buffer doubling its capacity copied up to the
/// whole backlog in one go: a stall of ~100 ms at a few hundred MB).
const BLOCK: usize = 64 << 10;

/// The stream's most recent bytes, in blocks. `end` (a caller's
/// master_repl_offset) is the offset of its last byte, so the first held
/// byte is `end - len + 1`.
pub struct Backlog {
    blocks: VecDeque<Vec<u8>>,
    /// Bytes of the first block already dropped.
    head: usize,
    /// Bytes held.
    len: usize,
    size: usize,
}

impl Backlog {
    pub fn new(size: usize) -> Backlog {
        Backlog {
            blocks: VecDeque::new(),
            head: 0,
            len: 0,
            size: size.max(1),
        }
    }

    /// `repl_backlog_size`.
    pub fn size(&self) -> usize {
        self.size
    }

    /// `repl_backlog_histlen`: bytes held.
    pub fn histlen(&self) -> usize {
        self.len
    }

    /// Appends stream bytes, dropping the oldest beyond the size.
    pub fn append(&mut self, bytes: &[u8]) {
        let keep = bytes.len().min(self.size);
        let mut rest = &bytes[bytes.len() - keep..];
        self.len += rest.len();
        while !rest.is_empty() {
            let room = self.blocks.back().map_or(0, |b| BLOCK - b.len());
            if room == 0 {
                self.blocks.push_back(Vec::with_capacity(BLOCK));
                continue;
            }
            let n = room.min(rest.len());
            if let Some(b) = self.blocks.back_mut() {
                b.extend_from_slice(&rest[..n]);
            }
            rest = &rest[n..];
        }
        self.trim();
    }

    /// CONFIG SET repl-backlog-size: keeps the newest bytes that fit.
    pub fn resize(&mut self, size: usize) {
        self.size = size.max(1);
        self.trim();
    }

    fn trim(&mut self) {
        while self.len > self.size {
            let over = self.len - self.size;
            let Some(first) = self.blocks.front() else {
                break;
            };
            let held = first.len() - self.head;
            if over >= held {
                self.blocks.pop_front();
                self.head = 0;
                self.len -= held;
            } else {
                self.head += over;
                self.len -= over;
            }
        }
    }

    /// The stream from offset `from` (the next byte a replica wants) to
    /// `end`, or None when those bytes are no longer (or not yet) held.
    pub fn since(&self, from: i64, end: i64) -> Option<Vec<u8>> {
        let first = end - self.len as i64 + 1;
        if from < first || from > end + 1 {
            return None;
        }
        let mut skip = self.head + (from - first) as usize;
        let mut out = Vec::with_capacity((end + 1 - from) as usize);
        for b in &self.blocks {
            if skip >= b.len() {
                skip -= b.len();
                continue;
            }
            out.extend_from_slice(&b[skip..]);
            skip = 0;
        }
        Some(out)
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

    #[test]
    fn bytes_across_blocks_come_back_in_order() {
        let size = 3 * super::BLOCK + 100;
        let mut b = Backlog::new(size);
        let mut all = Vec::new();
        for i in 0..20_000u32 {
            let chunk = format!("<{i}:{}>", "x".repeat((i % 97) as usize));
            b.append(chunk.as_bytes());
            all.extend_from_slice(chunk.as_bytes());
        }
        let end = all.len() as i64;
        assert_eq!(b.histlen(), size);
        let kept = &all[all.len() - size..];
        assert_eq!(b.since(end - size as i64 + 1, end).as_deref(), Some(kept));
        let from = end - 12_345;
        assert_eq!(
            b.since(from, end).as_deref(),
            Some(&all[(from - 1) as usize..])
        );
        assert_eq!(b.since(end - size as i64, end), None);
        b.resize(10);
        assert_eq!(
            b.since(end - 9, end).as_deref(),
            Some(&all[all.len() - 10..])
        );
    }
}
