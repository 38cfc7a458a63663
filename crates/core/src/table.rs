//! The keyspace hash table: separate chaining over a power-of-two bucket
//! array, resized all at once (each table is one shard's slice of a DB, so a
//! resize is small).
//!
//! Invariants:
//! - SCAN: `scan_bucket` walks buckets in reverse-binary order of the bucket
//!   index, so an entry present for a whole scan is visited at least once
//!   even when the table doubles or halves between calls (a halving may
//!   revisit entries, never skip them).
//! - No entry moves between buckets except in `resize`, which keeps the
//!   per-bucket order, so a walk by cursor is stable while the size is.

use std::hash::BuildHasher;

/// An entry that knows its key.
pub trait Keyed {
    fn key(&self) -> &[u8];
}

struct Node<E> {
    next: Option<Box<Node<E>>>,
    entry: E,
}

pub struct Table<E> {
    buckets: Vec<Option<Box<Node<E>>>>,
    len: usize,
}

/// One hasher for every table of the process, seeded at start-up.
fn hasher() -> &'static foldhash::fast::RandomState {
    static STATE: std::sync::OnceLock<foldhash::fast::RandomState> = std::sync::OnceLock::new();
    STATE.get_or_init(foldhash::fast::RandomState::default)
}

pub fn hash_key(key: &[u8]) -> u64 {
    hasher().hash_one(key)
}

const MIN_BUCKETS: usize = 4;

impl<E: Keyed> Default for Table<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E: Keyed> Table<E> {
    pub fn new() -> Self {
        Table {
            buckets: Vec::new(),
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn bucket_count(&self) -> usize {
        self.buckets.len()
    }

    fn index(&self, key: &[u8]) -> usize {
        (hash_key(key) as usize) & (self.buckets.len() - 1)
    }

    pub fn get(&self, key: &[u8]) -> Option<&E> {
        if self.len == 0 {
            return None;
        }
        let mut cur = self.buckets[self.index(key)].as_deref();
        while let Some(n) = cur {
            if n.entry.key() == key {
                return Some(&n.entry);
            }
            cur = n.next.as_deref();
        }
        None
    }

    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut E> {
        if self.len == 0 {
            return None;
        }
        let i = self.index(key);
        let mut cur = self.buckets[i].as_deref_mut();
        while let Some(n) = cur {
            if n.entry.key() == key {
                return Some(&mut n.entry);
            }
            cur = n.next.as_deref_mut();
        }
        None
    }

    /// Inserts `entry`, replacing (and returning) an entry with the same key.
    pub fn insert(&mut self, entry: E) -> Option<E> {
        if let Some(slot) = self.get_mut(entry.key()) {
            return Some(std::mem::replace(slot, entry));
        }
        self.insert_new(entry);
        None
    }

    /// Inserts an entry whose key is known to be absent.
    pub fn insert_new(&mut self, entry: E) -> &mut E {
        if self.len >= self.buckets.len() {
            self.resize((self.buckets.len() * 2).max(MIN_BUCKETS));
        }
        let i = self.index(entry.key());
        let next = self.buckets[i].take();
        self.len += 1;
        &mut self.buckets[i].insert(Box::new(Node { next, entry })).entry
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<E> {
        if self.len == 0 {
            return None;
        }
        let i = self.index(key);
        let removed = remove_from_chain(&mut self.buckets[i], |e| e.key() == key);
        if removed.is_some() {
            self.len -= 1;
            self.maybe_shrink();
        }
        removed
    }

    fn maybe_shrink(&mut self) {
        if self.buckets.len() > MIN_BUCKETS && self.len * 8 < self.buckets.len() {
            self.resize(self.len.next_power_of_two().max(MIN_BUCKETS));
        }
    }

    pub fn clear(&mut self) {
        // Chains are dropped iteratively so a long chain cannot overflow the stack.
        for b in &mut self.buckets {
            let mut cur = b.take();
            while let Some(mut n) = cur {
                cur = n.next.take();
            }
        }
        self.buckets = Vec::new();
        self.len = 0;
    }

    fn resize(&mut self, size: usize) {
        let old = std::mem::replace(&mut self.buckets, Vec::new());
        self.buckets.resize_with(size, || None);
        let mask = size - 1;
        for mut head in old {
            // Moving the chain tail-first keeps each bucket's relative order.
            let mut chain = Vec::new();
            while let Some(mut n) = head {
                head = n.next.take();
                chain.push(n);
            }
            while let Some(mut n) = chain.pop() {
                let i = (hash_key(n.entry.key()) as usize) & mask;
                n.next = self.buckets[i].take();
                self.buckets[i] = Some(n);
            }
        }
    }

    /// Visits every entry of the bucket at `cursor` and returns the next
    /// cursor, 0 when the walk is complete.
    pub fn scan_bucket(&self, cursor: u64, mut f: impl FnMut(&E)) -> u64 {
        if self.buckets.is_empty() {
            return 0;
        }
        let mask = (self.buckets.len() - 1) as u64;
        let mut cur = self.buckets[(cursor & mask) as usize].as_deref();
        while let Some(n) = cur {
            f(&n.entry);
            cur = n.next.as_deref();
        }
        next_cursor(cursor, mask)
    }

    /// Like `scan_bucket`, removing the entries for which `remove` says so
    /// and handing each removed entry to `removed`.
    pub fn sweep_bucket(
        &mut self,
        cursor: u64,
        mut remove: impl FnMut(&E) -> bool,
        mut removed: impl FnMut(E),
    ) -> u64 {
        if self.buckets.is_empty() {
            return 0;
        }
        let mask = (self.buckets.len() - 1) as u64;
        let slot = &mut self.buckets[(cursor & mask) as usize];
        while let Some(e) = remove_from_chain(slot, &mut remove) {
            self.len -= 1;
            removed(e);
        }
        next_cursor(cursor, mask)
    }

    /// A uniformly chosen non-empty bucket's random entry (as Redis's
    /// dictGetFairRandomKey approximates), or None when empty.
    pub fn random(&self, mut rand: impl FnMut(usize) -> usize) -> Option<&E> {
        if self.len == 0 {
            return None;
        }
        loop {
            let b = self.buckets[rand(self.buckets.len())].as_deref();
            let Some(first) = b else { continue };
            let mut n = 0;
            let mut cur = Some(first);
            while let Some(x) = cur {
                n += 1;
                cur = x.next.as_deref();
            }
            let mut pick = rand(n);
            let mut cur = first;
            while pick > 0 {
                pick -= 1;
                cur = cur.next.as_deref()?;
            }
            return Some(&cur.entry);
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &E> {
        self.buckets.iter().flat_map(|b| {
            let mut cur = b.as_deref();
            std::iter::from_fn(move || {
                let n = cur?;
                cur = n.next.as_deref();
                Some(&n.entry)
            })
        })
    }

    /// Removes and returns every entry (used by FLUSHDB to drop values elsewhere).
    pub fn take_all(&mut self) -> Table<E> {
        std::mem::take(self)
    }
}

/// A copy with the same entries (rebuilt by insertion, so bucket order may
/// differ from the original's).
impl<E: Keyed + Clone> Clone for Table<E> {
    fn clone(&self) -> Self {
        let mut t = Table::new();
        for e in self.iter() {
            t.insert_new(e.clone());
        }
        t
    }
}

impl<E> Drop for Table<E> {
    fn drop(&mut self) {
        for b in &mut self.buckets {
            let mut cur = b.take();
            while let Some(mut n) = cur {
                cur = n.next.take();
            }
        }
    }
}

fn remove_from_chain<E>(
    slot: &mut Option<Box<Node<E>>>,
    mut pred: impl FnMut(&E) -> bool,
) -> Option<E> {
    let mut link = slot;
    loop {
        match link {
            None => return None,
            Some(n) if pred(&n.entry) => {
                let mut node = link.take()?;
                *link = node.next.take();
                return Some(node.entry);
            }
            Some(n) => link = &mut n.next,
        }
    }
}

/// Reverse-binary increment: increments the bits under `mask` from the most
/// significant one down, so that cursors from a smaller table are prefixes of
/// the larger table's order.
fn next_cursor(cursor: u64, mask: u64) -> u64 {
    let mut v = cursor | !mask;
    v = v.reverse_bits();
    v = v.wrapping_add(1);
    v.reverse_bits()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{HashMap, HashSet};

    #[derive(Debug, Clone, PartialEq)]
    struct E(Vec<u8>, u32);
    impl Keyed for E {
        fn key(&self) -> &[u8] {
            &self.0
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u16, u32),
        Remove(u16),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u16..300, any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
            (0u16..300).prop_map(Op::Remove),
        ]
    }

    fn key(k: u16) -> Vec<u8> {
        format!("k{k}").into_bytes()
    }

    proptest! {
        #[test]
        fn behaves_like_a_hashmap(ops in proptest::collection::vec(op(), 0..600)) {
            let mut t = Table::new();
            let mut m = HashMap::new();
            for op in ops {
                match op {
                    Op::Insert(k, v) => {
                        let a = t.insert(E(key(k), v)).map(|e| e.1);
                        prop_assert_eq!(a, m.insert(k, v));
                    }
                    Op::Remove(k) => {
                        prop_assert_eq!(t.remove(&key(k)).map(|e| e.1), m.remove(&k));
                    }
                }
                prop_assert_eq!(t.len(), m.len());
            }
            for (k, v) in &m {
                prop_assert_eq!(t.get(&key(*k)).map(|e| e.1), Some(*v));
            }
            prop_assert_eq!(t.iter().count(), m.len());
        }

        /// Keys present for the whole scan are returned even while other keys
        /// are added and removed (the table grows and shrinks) between steps.
        #[test]
        fn scan_returns_every_stable_key_across_resizes(
            stable in 1u16..200,
            churn in proptest::collection::vec(op(), 0..400),
        ) {
            let mut t = Table::new();
            for k in 0..stable {
                t.insert(E(format!("s{k}").into_bytes(), 0));
            }
            let mut seen = HashSet::new();
            let mut cursor = 0;
            let mut churn = churn.into_iter();
            loop {
                cursor = t.scan_bucket(cursor, |e| { seen.insert(e.0.clone()); });
                for _ in 0..3 {
                    match churn.next() {
                        Some(Op::Insert(k, v)) => { t.insert(E(key(k), v)); }
                        Some(Op::Remove(k)) => { t.remove(&key(k)); }
                        None => {}
                    }
                }
                if cursor == 0 { break; }
            }
            for k in 0..stable {
                let name = format!("s{k}").into_bytes();
                prop_assert!(seen.contains(&name));
            }
        }
    }

    #[test]
    fn sweep_removes_matching_entries() {
        let mut t = Table::new();
        for k in 0..100u16 {
            t.insert(E(key(k), u32::from(k)));
        }
        let mut cursor = 0;
        let mut gone = 0;
        loop {
            cursor = t.sweep_bucket(cursor, |e| e.1 % 2 == 0, |_| gone += 1);
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(gone, 50);
        assert_eq!(t.len(), 50);
        assert!(t.iter().all(|e| e.1 % 2 == 1));
    }
}
