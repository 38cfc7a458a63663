//! The list value type: a double-ended queue of compact byte strings.
//!
//! Elements up to 22 bytes live inline in their `CompactBytes` (no heap
//! block each); longer ones own one block. Indexes follow Redis: negative
//! counts from the tail, and ranges are clamped the way LRANGE/LTRIM clamp.
//!
//! Invariant: a stored list is never empty (commands remove the key when the
//! last element goes); `List` itself allows empty for building and tests.

use crate::CompactBytes;
use std::collections::VecDeque;

/// Which end of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Head,
    Tail,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct List {
    items: VecDeque<CompactBytes>,
    /// Heap bytes of elements stored out of line.
    heap: usize,
}

impl List {
    pub fn new() -> List {
        List::default()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// OBJECT ENCODING's name: Redis 7.0 reports `quicklist` for every list.
    pub fn encoding(&self) -> &'static str {
        "quicklist"
    }

    /// Heap bytes owned (for memory accounting).
    pub fn heap_size(&self) -> usize {
        self.items.capacity() * std::mem::size_of::<CompactBytes>() + self.heap
    }

    fn make(&mut self, v: &[u8]) -> CompactBytes {
        let c = CompactBytes::new(v);
        self.heap += c.heap_size();
        c
    }

    fn forget(&mut self, c: CompactBytes) -> Vec<u8> {
        self.heap -= c.heap_size();
        c.into_vec()
    }

    pub fn push(&mut self, end: End, v: &[u8]) {
        let c = self.make(v);
        match end {
            End::Head => self.items.push_front(c),
            End::Tail => self.items.push_back(c),
        }
    }

    pub fn pop(&mut self, end: End) -> Option<Vec<u8>> {
        let c = match end {
            End::Head => self.items.pop_front(),
            End::Tail => self.items.pop_back(),
        }?;
        Some(self.forget(c))
    }

    /// Resolves a Redis index (negative from the tail) to a position.
    pub fn resolve(&self, index: i64) -> Option<usize> {
        let len = self.items.len() as i64;
        let i = if index < 0 { len + index } else { index };
        (0..len).contains(&i).then_some(i as usize)
    }

    pub fn get(&self, index: i64) -> Option<&[u8]> {
        self.resolve(index).map(|i| self.items[i].as_slice())
    }

    /// Replaces the element at `index`; false when out of range.
    pub fn set(&mut self, index: i64, v: &[u8]) -> bool {
        let Some(i) = self.resolve(index) else {
            return false;
        };
        let c = self.make(v);
        let old = std::mem::replace(&mut self.items[i], c);
        self.forget(old);
        true
    }

    /// LRANGE's clamping: the positions [start, end) selected, if any.
    pub fn range_bounds(&self, start: i64, stop: i64) -> Option<(usize, usize)> {
        let len = self.items.len() as i64;
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
        self.items.range(s..e).map(|c| c.as_slice())
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &[u8]> + ExactSizeIterator {
        self.items.iter().map(|c| c.as_slice())
    }

    /// LTRIM: keeps only the range; out-of-range empties the list.
    pub fn trim(&mut self, start: i64, stop: i64) {
        match self.range_bounds(start, stop) {
            None => {
                self.items.clear();
                self.heap = 0;
            }
            Some((s, e)) => {
                for c in self.items.drain(e..) {
                    self.heap -= c.heap_size();
                }
                for c in self.items.drain(..s) {
                    self.heap -= c.heap_size();
                }
            }
        }
    }

    /// LINSERT: inserts `v` before or after the first `pivot`; false if
    /// the pivot is absent.
    pub fn insert(&mut self, after: bool, pivot: &[u8], v: &[u8]) -> bool {
        let Some(i) = self.items.iter().position(|c| c.as_slice() == pivot) else {
            return false;
        };
        let c = self.make(v);
        self.items.insert(if after { i + 1 } else { i }, c);
        true
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
        if count >= 0 {
            let mut i = 0;
            while i < self.items.len() && removed < limit {
                if self.items[i].as_slice() == v {
                    if let Some(c) = self.items.remove(i) {
                        self.heap -= c.heap_size();
                    }
                    removed += 1;
                } else {
                    i += 1;
                }
            }
        } else {
            let mut i = self.items.len();
            while i > 0 && removed < limit {
                i -= 1;
                if self.items[i].as_slice() == v {
                    if let Some(c) = self.items.remove(i) {
                        self.heap -= c.heap_size();
                    }
                    removed += 1;
                }
            }
        }
        removed
    }

    /// LPOS: positions of `v`, skipping matches before the `rank`-th
    /// (negative: from the tail), at most `count` (0 = all), looking at no
    /// more than `maxlen` elements (0 = all).
    pub fn positions(&self, v: &[u8], rank: i64, count: usize, maxlen: usize) -> Vec<usize> {
        let len = self.items.len();
        let (tail, rank) = if rank < 0 {
            (true, rank.wrapping_neg())
        } else {
            (false, rank)
        };
        let mut out = Vec::new();
        let mut matches: i64 = 0;
        for step in 0..len {
            if maxlen != 0 && step >= maxlen {
                break;
            }
            let i = if tail { len - 1 - step } else { step };
            if self.items[i].as_slice() == v {
                matches += 1;
                if matches >= rank {
                    out.push(i);
                    if count != 0 && out.len() >= count {
                        break;
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Push(bool, Vec<u8>),
        Pop(bool),
        Set(i64, Vec<u8>),
        Trim(i64, i64),
        Insert(bool, Vec<u8>, Vec<u8>),
        Remove(i64, Vec<u8>),
    }

    fn val() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            (0u8..4).prop_map(|b| vec![b'a' + b]),
            proptest::collection::vec(any::<u8>(), 0..40),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (any::<bool>(), val()).prop_map(|(h, v)| Op::Push(h, v)),
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
        fn behaves_like_a_vec(ops in proptest::collection::vec(op(), 0..60)) {
            let mut l = List::new();
            let mut m: Vec<Vec<u8>> = Vec::new();
            for op in ops {
                match op {
                    Op::Push(head, v) => {
                        l.push(if head { End::Head } else { End::Tail }, &v);
                        if head { m.insert(0, v) } else { m.push(v) }
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
                let heap: usize = m.iter().filter(|x| x.len() > 22).map(Vec::len).sum();
                prop_assert_eq!(l.heap, heap);
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
