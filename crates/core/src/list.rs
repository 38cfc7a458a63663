//! The list value type: Redis's quicklist, a deque of packed nodes.
//!
//! Each node is one byte buffer of entries, each entry its length (LEB128),
//! its bytes, then the entry's total size written backwards (so the buffer
//! reads from either end, as a listpack does). A node grows until
//! `list-max-listpack-size` (the `fill` given at creation) says it is full:
//! a positive fill caps its entries (and its bytes at 8 KiB), a negative one
//! caps its bytes at 4, 8, 16, 32 or 64 KiB. Indexes follow Redis: negative
//! counts from the tail, and ranges are clamped the way LRANGE/LTRIM clamp.
//!
//! Invariants: no node is empty; `len` is the sum of the nodes' counts; a
//! node over its limit holds a single entry (one element larger than a
//! node) or was just split. A stored list is never empty (commands remove
//! the key when the last element goes); `List` itself allows empty for
//! building and tests.

// The length prefix is the hash listpack's LEB128.
use crate::hash::{len_size as varint_len, read_entry, write_entry as write_body};
use std::collections::VecDeque;

/// Which end of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Head,
    Tail,
}

/// Redis's default `list-max-listpack-size`: nodes of up to 8 KiB.
pub const DEFAULT_FILL: i64 = -2;

/// Bytes a node may hold under a positive fill.
const SIZE_SAFETY_LIMIT: usize = 8192;

/// Bytes one entry of `n` bytes takes in a node.
fn entry_size(n: usize) -> usize {
    let body = varint_len(n) + n;
    body + varint_len(body)
}

fn put_entry(out: &mut Vec<u8>, v: &[u8]) {
    let at = out.len();
    out.resize(at + entry_size(v.len()), 0);
    write_entry(&mut out[at..], v);
}

/// Writes the entry of `v` into `out`, which is exactly `entry_size` long.
fn write_entry(out: &mut [u8], v: &[u8]) {
    let body = write_body(out, v);
    // The size of length and bytes, most significant group first, every
    // group but the first flagged, so it reads from the right.
    let groups = varint_len(body);
    for g in (0..groups).rev() {
        let b = ((body >> (7 * g)) & 0x7f) as u8;
        out[body + groups - 1 - g] = if g + 1 == groups { b } else { b | 0x80 };
    }
}

/// The entry starting at `pos`: (bytes start, bytes end, next entry).
fn read_fwd(buf: &[u8], pos: usize) -> (usize, usize, usize) {
    let (start, end) = read_entry(buf, pos);
    let n = end - start;
    (start, end, end + varint_len(n + varint_len(n)))
}

/// The start of the entry that ends at `end`.
fn entry_before(buf: &[u8], mut end: usize) -> usize {
    let mut body = 0usize;
    let mut shift = 0;
    let mut groups = 0;
    while end > 0 {
        end -= 1;
        let b = buf[end];
        body |= usize::from(b & 0x7f) << shift;
        shift += 7;
        groups += 1;
        if b & 0x80 == 0 || groups == 10 {
            break;
        }
    }
    end.saturating_sub(body)
}

/// One packed node. The entries are `mem[head..]`; `mem[..head]` is free
/// room in front, so a head push writes into it instead of moving the
/// node's bytes (LPUSH moved up to 8 KiB a push before), as a deque keeps
/// room at both ends.
#[derive(Debug, Clone, Default)]
struct Node {
    mem: Vec<u8>,
    head: usize,
    count: u32,
}

impl PartialEq for Node {
    fn eq(&self, other: &Node) -> bool {
        self.count == other.count && self.data() == other.data()
    }
}

impl Node {
    fn single(v: &[u8]) -> Node {
        let mut mem = Vec::with_capacity(entry_size(v.len()));
        put_entry(&mut mem, v);
        Node {
            mem,
            head: 0,
            count: 1,
        }
    }

    /// The entries' bytes.
    fn data(&self) -> &[u8] {
        &self.mem[self.head..]
    }

    /// Bytes the entries take.
    fn len(&self) -> usize {
        self.mem.len() - self.head
    }

    /// Byte offset of entry `i` in `data()` (`len()` for `i == count`).
    fn offset(&self, i: usize) -> usize {
        let count = self.count as usize;
        let data = self.data();
        if i * 2 <= count {
            let mut pos = 0;
            for _ in 0..i {
                pos = read_fwd(data, pos).2;
            }
            pos
        } else {
            let mut pos = data.len();
            for _ in i..count {
                pos = entry_before(data, pos);
            }
            pos
        }
    }

    fn get(&self, i: usize) -> &[u8] {
        let data = self.data();
        let (s, e, _) = read_fwd(data, self.offset(i));
        &data[s..e]
    }

    /// Makes room for `extra` more bytes at the front (or the back). The
    /// buffer doubles, but never past `cap` (the node's byte limit) unless
    /// one entry needs it, while the node would be over half full;
    /// otherwise the entries move within it. The new free room goes to the
    /// end that grows, all of it when the other end has none (a list
    /// pushed at one end), else half.
    fn make_room(&mut self, extra: usize, cap: usize, front: bool) {
        let tail_free = self.mem.capacity() - self.mem.len();
        if (front && self.head >= extra) || (!front && tail_free >= extra) {
            return;
        }
        let len = self.len();
        let need = len + extra;
        let have = self.mem.capacity();
        let size = if need * 2 <= have {
            have
        } else {
            need.next_power_of_two().min(cap).max(need).max(have)
        };
        let spare = size - need;
        let other_free = if front { tail_free } else { self.head };
        let grown = if other_free == 0 { spare } else { spare / 2 };
        let head = if front { extra + grown } else { spare - grown };
        if size > have {
            let mut mem = Vec::with_capacity(size);
            // The room in front is never read; zeroed to stay safe.
            mem.resize(head, 0);
            mem.extend_from_slice(self.data());
            self.mem = mem;
        } else {
            let from = self.head;
            self.mem.resize(self.mem.len().max(head + len), 0);
            self.mem.copy_within(from..from + len, head);
            self.mem.truncate(head + len);
        }
        self.head = head;
    }

    fn push_front(&mut self, v: &[u8], cap: usize) {
        let k = entry_size(v.len());
        self.make_room(k, cap, true);
        self.head -= k;
        write_entry(&mut self.mem[self.head..self.head + k], v);
        self.count += 1;
    }

    fn push_back(&mut self, v: &[u8], cap: usize) {
        self.make_room(entry_size(v.len()), cap, false);
        put_entry(&mut self.mem, v);
        self.count += 1;
    }

    /// Inserts `v` at byte offset `at` of `data()`.
    fn insert_at(&mut self, at: usize, v: &[u8], cap: usize) {
        if at == 0 {
            return self.push_front(v, cap);
        }
        self.push_back(v, cap);
        let at = self.head + at;
        let k = entry_size(v.len());
        let old = self.mem.len() - k;
        if at < old {
            // Move the new entry from the end into place: one memmove of
            // the bytes after `at` (a generic rotate showed as 15% of
            // LPUSH, on top of that memmove).
            let mut tmp = [0u8; 64];
            if k <= tmp.len() {
                tmp[..k].copy_from_slice(&self.mem[old..]);
                self.mem.copy_within(at..old, at + k);
                self.mem[at..at + k].copy_from_slice(&tmp[..k]);
            } else {
                self.mem[at..].rotate_right(k);
            }
        }
    }

    /// Removes the bytes [from, to) of `data()`.
    fn cut(&mut self, from: usize, to: usize) {
        if from == 0 {
            self.head += to;
        } else {
            self.mem.drain(self.head + from..self.head + to);
        }
    }

    /// Gives back the free room at both ends, unless it is under an eighth
    /// of the buffer (a full node's last few bytes: copying 8 KiB to
    /// save them cost more than the allocator's size classes give back).
    fn shrink(&mut self) {
        if self.mem.capacity() - self.len() < self.mem.capacity() / 8 {
            return;
        }
        if self.head > 0 {
            self.mem = self.data().to_vec();
            self.head = 0;
        } else {
            self.mem.shrink_to_fit();
        }
    }

    /// The (start, end) byte spans of every entry in `data()`.
    fn spans(&self) -> Vec<(usize, usize)> {
        let data = self.data();
        let mut out = Vec::with_capacity(self.count as usize);
        let mut pos = 0;
        while pos < data.len() {
            let next = read_fwd(data, pos).2;
            out.push((pos, next));
            pos = next;
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct List {
    nodes: VecDeque<Node>,
    len: usize,
    fill: i32,
}

impl Default for List {
    fn default() -> Self {
        List::with_fill(DEFAULT_FILL)
    }
}

impl List {
    pub fn new() -> List {
        List::default()
    }

    /// An empty list whose nodes follow `list-max-listpack-size` = `fill`
    /// (clamped as Redis clamps it).
    pub fn with_fill(fill: i64) -> List {
        List {
            nodes: VecDeque::new(),
            len: 0,
            fill: fill.clamp(-5, 1 << 15) as i32,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many packed nodes hold the elements.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// OBJECT ENCODING's name: Redis 7.0 reports `quicklist` for every list.
    pub fn encoding(&self) -> &'static str {
        "quicklist"
    }

    /// Heap bytes owned (for memory accounting).
    pub fn heap_size(&self) -> usize {
        self.nodes.capacity() * std::mem::size_of::<Node>()
            + self.nodes.iter().map(|n| n.mem.capacity()).sum::<usize>()
    }

    /// The most bytes a node may hold.
    fn byte_limit(&self) -> usize {
        if self.fill >= 0 {
            SIZE_SAFETY_LIMIT
        } else {
            4096 << (self.fill.unsigned_abs() - 1)
        }
    }

    /// Whether a node of `bytes` bytes and `count` entries is within the
    /// fill.
    fn within(&self, bytes: usize, count: usize) -> bool {
        bytes <= self.byte_limit() && (self.fill < 0 || count <= (self.fill as usize).max(1))
    }

    fn room_for(&self, n: &Node, v: &[u8]) -> bool {
        self.within(n.len() + entry_size(v.len()), n.count as usize + 1)
    }

    pub fn push(&mut self, end: End, v: &[u8]) {
        self.len += 1;
        let node = match end {
            End::Head => self.nodes.front(),
            End::Tail => self.nodes.back(),
        };
        if node.is_some_and(|n| self.room_for(n, v)) {
            let cap = self.byte_limit();
            match end {
                End::Head => self.nodes.front_mut().map(|n| n.push_front(v, cap)),
                End::Tail => self.nodes.back_mut().map(|n| n.push_back(v, cap)),
            };
            return;
        }
        // The node at this end is full and stays so: give back its slack.
        let full = match end {
            End::Head => self.nodes.front_mut(),
            End::Tail => self.nodes.back_mut(),
        };
        if let Some(n) = full {
            n.shrink();
        }
        // Most lists fit one node: do not let the deque start at four.
        if self.nodes.capacity() == 0 {
            self.nodes.reserve_exact(1);
        }
        match end {
            End::Head => self.nodes.push_front(Node::single(v)),
            End::Tail => self.nodes.push_back(Node::single(v)),
        }
    }

    pub fn pop(&mut self, end: End) -> Option<Vec<u8>> {
        let n = match end {
            End::Head => self.nodes.front_mut(),
            End::Tail => self.nodes.back_mut(),
        }?;
        let data = n.data();
        let start = match end {
            End::Head => 0,
            End::Tail => entry_before(data, data.len()),
        };
        let (s, e, next) = read_fwd(data, start);
        let v = data[s..e].to_vec();
        n.cut(start, next);
        n.count -= 1;
        if n.count == 0 {
            match end {
                End::Head => self.nodes.pop_front(),
                End::Tail => self.nodes.pop_back(),
            };
        }
        self.len -= 1;
        Some(v)
    }

    /// Resolves a Redis index (negative from the tail) to a position.
    pub fn resolve(&self, index: i64) -> Option<usize> {
        let len = self.len as i64;
        let i = if index < 0 { len + index } else { index };
        (0..len).contains(&i).then_some(i as usize)
    }

    /// The node holding position `i` (< len) and the entry's index in it,
    /// walking from the nearer end.
    fn locate(&self, i: usize) -> (usize, usize) {
        if i * 2 <= self.len {
            let mut left = i;
            for (k, n) in self.nodes.iter().enumerate() {
                if left < n.count as usize {
                    return (k, left);
                }
                left -= n.count as usize;
            }
        } else {
            let mut right = self.len - i;
            for (k, n) in self.nodes.iter().enumerate().rev() {
                if right <= n.count as usize {
                    return (k, n.count as usize - right);
                }
                right -= n.count as usize;
            }
        }
        (self.nodes.len(), 0)
    }

    pub fn get(&self, index: i64) -> Option<&[u8]> {
        let i = self.resolve(index)?;
        let (k, j) = self.locate(i);
        Some(self.nodes.get(k)?.get(j))
    }

    /// Splits node `k` in halves while it is over the fill and holds more
    /// than one entry (after LSET or LINSERT made it grow).
    fn split_if_over(&mut self, k: usize) {
        let Some(n) = self.nodes.get(k) else {
            return;
        };
        if n.count < 2 || self.within(n.len(), n.count as usize) {
            return;
        }
        let half = n.count as usize / 2;
        let at = n.offset(half);
        let Some(n) = self.nodes.get_mut(k) else {
            return;
        };
        let tail = Node {
            mem: n.mem.split_off(n.head + at),
            head: 0,
            count: n.count - half as u32,
        };
        n.count = half as u32;
        n.shrink();
        self.nodes.insert(k + 1, tail);
        self.split_if_over(k + 1);
        self.split_if_over(k);
    }

    /// Replaces the element at `index`; false when out of range.
    pub fn set(&mut self, index: i64, v: &[u8]) -> bool {
        let Some(i) = self.resolve(index) else {
            return false;
        };
        let (k, j) = self.locate(i);
        let Some(n) = self.nodes.get_mut(k) else {
            return false;
        };
        let at = n.offset(j);
        let next = read_fwd(n.data(), at).2;
        let mut e = Vec::with_capacity(entry_size(v.len()));
        put_entry(&mut e, v);
        n.mem.splice(n.head + at..n.head + next, e);
        self.split_if_over(k);
        true
    }

    /// LRANGE's clamping: the positions [start, end) selected, if any.
    pub fn range_bounds(&self, start: i64, stop: i64) -> Option<(usize, usize)> {
        let len = self.len as i64;
        let mut s = if start < 0 {
            len.saturating_add(start)
        } else {
            start
        };
        let mut e = if stop < 0 {
            len.saturating_add(stop)
        } else {
            stop
        };
        if s < 0 {
            s = 0;
        }
        if s > e || s >= len {
            return None;
        }
        if e >= len {
            e = len - 1;
        }
        Some((s as usize, e as usize + 1))
    }

    pub fn range(&self, start: i64, stop: i64) -> impl Iterator<Item = &[u8]> {
        let (s, e) = self.range_bounds(start, stop).unwrap_or((0, 0));
        let mut it = self.iter();
        if s < e {
            let (k, j) = self.locate(s);
            it.front = (k, self.nodes.get(k).map_or(0, |n| n.offset(j)));
            it.left = self.len - s;
        }
        it.take(e - s)
    }

    pub fn iter(&self) -> Iter<'_> {
        Iter {
            nodes: &self.nodes,
            front: (0, 0),
            back: (
                self.nodes.len().saturating_sub(1),
                self.nodes.back().map_or(0, Node::len),
            ),
            left: self.len,
        }
    }

    /// Removes the first `n` elements.
    fn drop_head(&mut self, mut n: usize) {
        self.len -= n.min(self.len);
        while n > 0 {
            let Some(f) = self.nodes.front_mut() else {
                return;
            };
            if f.count as usize <= n {
                n -= f.count as usize;
                self.nodes.pop_front();
            } else {
                let at = f.offset(n);
                f.cut(0, at);
                f.count -= n as u32;
                return;
            }
        }
    }

    /// Removes the last `n` elements.
    fn drop_tail(&mut self, mut n: usize) {
        self.len -= n.min(self.len);
        while n > 0 {
            let Some(b) = self.nodes.back_mut() else {
                return;
            };
            if b.count as usize <= n {
                n -= b.count as usize;
                self.nodes.pop_back();
            } else {
                let keep = b.count as usize - n;
                let at = b.offset(keep);
                b.mem.truncate(b.head + at);
                b.count = keep as u32;
                return;
            }
        }
    }

    /// LTRIM: keeps only the range; out-of-range empties the list.
    pub fn trim(&mut self, start: i64, stop: i64) {
        match self.range_bounds(start, stop) {
            None => {
                self.nodes.clear();
                self.len = 0;
            }
            Some((s, e)) => {
                self.drop_tail(self.len - e);
                self.drop_head(s);
            }
        }
    }

    /// LINSERT: inserts `v` before or after the first `pivot`; false if
    /// the pivot is absent.
    pub fn insert(&mut self, after: bool, pivot: &[u8], v: &[u8]) -> bool {
        for k in 0..self.nodes.len() {
            let data = self.nodes[k].data();
            let mut pos = 0;
            while pos < data.len() {
                let (s, e, next) = read_fwd(data, pos);
                if &data[s..e] == pivot {
                    let at = if after { next } else { pos };
                    let cap = self.byte_limit();
                    self.nodes[k].insert_at(at, v, cap);
                    self.len += 1;
                    self.split_if_over(k);
                    return true;
                }
                pos = next;
            }
        }
        false
    }

    /// LREM: removes up to |count| elements equal to `v` (all when 0),
    /// from the head for count >= 0, from the tail otherwise.
    pub fn remove(&mut self, count: i64, v: &[u8]) -> usize {
        let limit = if count == 0 {
            usize::MAX
        } else {
            usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX)
        };
        let mut removed = 0;
        let order: Vec<usize> = if count >= 0 {
            (0..self.nodes.len()).collect()
        } else {
            (0..self.nodes.len()).rev().collect()
        };
        for k in order {
            if removed >= limit {
                break;
            }
            let n = &mut self.nodes[k];
            let mut hits: Vec<(usize, usize)> = n
                .spans()
                .into_iter()
                .filter(|&(s, _)| {
                    let (a, b, _) = read_fwd(n.data(), s);
                    &n.data()[a..b] == v
                })
                .collect();
            if count < 0 {
                hits.reverse();
            }
            hits.truncate(limit - removed);
            hits.sort_unstable();
            for &(s, e) in hits.iter().rev() {
                n.cut(s, e);
            }
            n.count -= hits.len() as u32;
            removed += hits.len();
        }
        self.len -= removed;
        if removed > 0 {
            self.compact();
        }
        removed
    }

    /// Drops empty nodes and merges neighbours that fit in one node.
    fn compact(&mut self) {
        let nodes = std::mem::take(&mut self.nodes);
        let mut out: VecDeque<Node> = VecDeque::with_capacity(nodes.len());
        for n in nodes {
            if n.count == 0 {
                continue;
            }
            if let Some(last) = out.back_mut() {
                if self.within(last.len() + n.len(), (last.count + n.count) as usize) {
                    last.mem.extend_from_slice(n.data());
                    last.count += n.count;
                    continue;
                }
            }
            out.push_back(n);
        }
        for n in out.iter_mut() {
            n.shrink();
        }
        self.nodes = out;
    }

    /// LPOS: positions of `v`, skipping matches before the `rank`-th
    /// (negative: from the tail), at most `count` (0 = all), looking at no
    /// more than `maxlen` elements (0 = all).
    pub fn positions(&self, v: &[u8], rank: i64, count: usize, maxlen: usize) -> Vec<usize> {
        let len = self.len;
        let (tail, rank) = if rank < 0 {
            (true, rank.wrapping_neg())
        } else {
            (false, rank)
        };
        let limit = if maxlen == 0 { len } else { maxlen.min(len) };
        let mut out = Vec::new();
        let mut matches: i64 = 0;
        let mut visit = |step: usize, x: &[u8]| {
            if x == v {
                matches += 1;
                if matches >= rank {
                    out.push(if tail { len - 1 - step } else { step });
                    if count != 0 && out.len() >= count {
                        return false;
                    }
                }
            }
            true
        };
        if tail {
            for (step, x) in self.iter().rev().take(limit).enumerate() {
                if !visit(step, x) {
                    break;
                }
            }
        } else {
            for (step, x) in self.iter().take(limit).enumerate() {
                if !visit(step, x) {
                    break;
                }
            }
        }
        out
    }
}

/// Walks a list from both ends.
pub struct Iter<'a> {
    nodes: &'a VecDeque<Node>,
    /// (node, byte offset of the next entry from the front)
    front: (usize, usize),
    /// (node, byte offset just past the next entry from the back)
    back: (usize, usize),
    left: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.left == 0 {
            return None;
        }
        loop {
            let n = self.nodes.get(self.front.0)?;
            let data = n.data();
            if self.front.1 < data.len() {
                let (s, e, next) = read_fwd(data, self.front.1);
                self.front.1 = next;
                self.left -= 1;
                return Some(&data[s..e]);
            }
            self.front = (self.front.0 + 1, 0);
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        loop {
            if self.back.1 > 0 {
                let n = self.nodes.get(self.back.0)?;
                let data = n.data();
                let start = entry_before(data, self.back.1);
                let (s, e, _) = read_fwd(data, start);
                self.back.1 = start;
                self.left -= 1;
                return Some(&data[s..e]);
            }
            self.back.0 = self.back.0.checked_sub(1)?;
            self.back.1 = self.nodes.get(self.back.0)?.len();
        }
    }
}

impl ExactSizeIterator for Iter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Push(bool, Vec<u8>),
        /// Many pushes of one value: nodes grow, fill and use their room.
        PushMany(bool, usize, Vec<u8>),
        Pop(bool),
        Set(i64, Vec<u8>),
        Trim(i64, i64),
        Insert(bool, Vec<u8>, Vec<u8>),
        Remove(i64, Vec<u8>),
    }

    fn val() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            4 => (0u8..4).prop_map(|b| vec![b'a' + b]),
            4 => proptest::collection::vec(any::<u8>(), 0..40),
            // Long entries: multi-byte lengths, and nodes filled by bytes.
            1 => (0u8..4, 100usize..1500).prop_map(|(b, n)| vec![b'a' + b; n]),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (any::<bool>(), val()).prop_map(|(h, v)| Op::Push(h, v)),
            (any::<bool>(), 1usize..300, val()).prop_map(|(h, n, v)| Op::PushMany(h, n, v)),
            any::<bool>().prop_map(Op::Pop),
            (-12i64..12, val()).prop_map(|(i, v)| Op::Set(i, v)),
            (-12i64..12, -12i64..12).prop_map(|(a, b)| Op::Trim(a, b)),
            (any::<bool>(), val(), val()).prop_map(|(a, p, v)| Op::Insert(a, p, v)),
            (-3i64..3, val()).prop_map(|(c, v)| Op::Remove(c, v)),
        ]
    }

    /// The model's view of Redis's range clamping.
    fn model_range(len: usize, start: i64, stop: i64) -> Vec<usize> {
        let len = len as i64;
        let s = if start < 0 {
            (len + start).max(0)
        } else {
            start
        };
        let e = if stop < 0 {
            len + stop
        } else {
            stop.min(len - 1)
        };
        (s..=e)
            .filter(|i| *i >= 0 && *i < len)
            .map(|i| i as usize)
            .collect()
    }

    proptest! {
        #[test]
        fn behaves_like_a_vec(ops in proptest::collection::vec(op(), 0..80), fill in prop_oneof![-5i64..=-1, 0i64..=4]) {
            let mut l = List::with_fill(fill);
            let mut m: Vec<Vec<u8>> = Vec::new();
            for op in ops {
                match op {
                    Op::Push(head, v) => {
                        l.push(if head { End::Head } else { End::Tail }, &v);
                        if head { m.insert(0, v) } else { m.push(v) }
                    }
                    Op::PushMany(head, n, v) => {
                        for i in 0..n {
                            let mut v = v.clone();
                            v.push(i as u8);
                            l.push(if head { End::Head } else { End::Tail }, &v);
                            if head { m.insert(0, v) } else { m.push(v) }
                        }
                    }
                    Op::Pop(head) => {
                        let got = l.pop(if head { End::Head } else { End::Tail });
                        let want = if m.is_empty() { None } else if head { Some(m.remove(0)) } else { m.pop() };
                        prop_assert_eq!(got, want);
                    }
                    Op::Set(i, v) => {
                        let len = m.len() as i64;
                        let idx = if i < 0 { len + i } else { i };
                        let ok = (0..len).contains(&idx);
                        prop_assert_eq!(l.set(i, &v), ok);
                        if ok { m[idx as usize] = v; }
                    }
                    Op::Trim(a, b) => {
                        let keep = model_range(m.len(), a, b);
                        let got: Vec<Vec<u8>> = l.range(a, b).map(<[u8]>::to_vec).collect();
                        m = keep.iter().map(|&i| m[i].clone()).collect();
                        prop_assert_eq!(&got, &m);
                        l.trim(a, b);
                    }
                    Op::Insert(after, p, v) => {
                        let pos = m.iter().position(|x| *x == p);
                        prop_assert_eq!(l.insert(after, &p, &v), pos.is_some());
                        if let Some(i) = pos { m.insert(if after { i + 1 } else { i }, v); }
                    }
                    Op::Remove(c, v) => {
                        let limit = if c == 0 { usize::MAX } else { c.unsigned_abs() as usize };
                        let mut n = 0;
                        if c >= 0 {
                            let mut out = Vec::new();
                            for x in m.drain(..) { if x == v && n < limit { n += 1 } else { out.push(x) } }
                            m = out;
                        } else {
                            let mut out = Vec::new();
                            for x in m.drain(..).rev() { if x == v && n < limit { n += 1 } else { out.push(x) } }
                            out.reverse();
                            m = out;
                        }
                        prop_assert_eq!(l.remove(c, &v), n);
                    }
                }
                prop_assert_eq!(l.len(), m.len());
                let all: Vec<Vec<u8>> = l.iter().map(<[u8]>::to_vec).collect();
                prop_assert_eq!(&all, &m);
                let back: Vec<Vec<u8>> = l.iter().rev().map(<[u8]>::to_vec).collect();
                prop_assert!(back.iter().rev().eq(m.iter()));
                prop_assert_eq!(l.nodes.iter().map(|n| n.count as usize).sum::<usize>(), m.len());
                for n in &l.nodes {
                    prop_assert!(n.count > 0);
                    prop_assert_eq!(n.spans().len(), n.count as usize);
                    prop_assert!(n.count == 1 || l.within(n.len(), n.count as usize));
                    prop_assert!(n.head <= n.mem.len());
                }
                if let (Some(a), Some(b)) = (m.first(), m.last()) {
                    let want: Vec<usize> = (0..m.len()).filter(|&i| m[i] == *a).collect();
                    prop_assert_eq!(l.positions(a, 1, 0, 0), want);
                    let mut want: Vec<usize> = (0..m.len()).filter(|&i| m[i] == *b).collect();
                    want.reverse();
                    want.truncate(2);
                    prop_assert_eq!(l.positions(b, -1, 2, 0), want);
                }
                for i in -(m.len() as i64) - 2..m.len() as i64 + 2 {
                    let len = m.len() as i64;
                    let idx = if i < 0 { len + i } else { i };
                    let want = (0..len).contains(&idx).then(|| m[idx as usize].as_slice());
                    prop_assert_eq!(l.get(i), want);
                }
            }
        }
    }

    #[test]
    fn nodes_follow_the_fill() {
        let mut l = List::with_fill(3);
        for i in 0..10 {
            l.push(End::Tail, format!("{i}").as_bytes());
        }
        assert_eq!(l.node_count(), 4);
        let mut l = List::new();
        for _ in 0..1000 {
            l.push(End::Head, b"xxx");
        }
        // 5 bytes an entry, 8 KiB a node.
        assert_eq!(l.node_count(), 1);
        for _ in 0..2000 {
            l.push(End::Head, b"xxx");
        }
        assert_eq!(l.node_count(), 2);
        assert!(l.heap_size() < 3000 * 6, "{}", l.heap_size());
    }

    #[test]
    fn head_pushes_write_into_the_room_in_front() {
        let mut l = List::new();
        let v = [b'x'; 32];
        for _ in 0..100 {
            l.push(End::Head, &v);
        }
        let n = &l.nodes[0];
        let (ptr, room) = (n.mem.as_ptr(), n.head);
        assert!(room >= 34, "{room}");
        l.push(End::Head, &v);
        // Written in place: same buffer, the room shrank by one entry.
        assert_eq!(l.nodes[0].mem.as_ptr(), ptr);
        assert_eq!(l.nodes[0].head, room - 34);
        // Pushes at both ends share the room and keep the order.
        for i in 0..1000u32 {
            let end = if i % 3 == 0 { End::Tail } else { End::Head };
            l.push(end, &i.to_le_bytes());
        }
        assert_eq!(l.len(), 1101);
        assert_eq!(l.get(0), Some(&998u32.to_le_bytes()[..]));
        assert_eq!(l.get(-1), Some(&999u32.to_le_bytes()[..]));
        // The full node between the two ends' new ones keeps little room.
        assert_eq!(l.node_count(), 3);
        for n in l.nodes.range(1..2) {
            assert!(n.mem.capacity() - n.len() < n.mem.capacity() / 8);
        }
    }

    #[test]
    fn positions_follow_rank_count_maxlen() {
        let mut l = List::new();
        for v in ["a", "b", "a", "c", "a"] {
            l.push(End::Tail, v.as_bytes());
        }
        assert_eq!(l.positions(b"a", 1, 0, 0), vec![0, 2, 4]);
        assert_eq!(l.positions(b"a", 2, 1, 0), vec![2]);
        assert_eq!(l.positions(b"a", -1, 2, 0), vec![4, 2]);
        assert_eq!(l.positions(b"a", 1, 0, 2), vec![0]);
        assert_eq!(l.positions(b"a", i64::MIN, 1, 0), vec![4]);
        assert_eq!(l.positions(b"z", 1, 0, 0), Vec::<usize>::new());
    }
}
