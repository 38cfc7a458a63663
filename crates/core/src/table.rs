//! The keyspace hash table: separate chaining over a power-of-two bucket
//! array, resized all at once (each table is one shard's slice of a DB, so a
//! resize is small).
//!
//! The table is generic over its chain link (`Link`): an owning pointer to a
//! node that carries its own successor. Collections use `Table<E>` (a boxed
//! node holding `E` and a next pointer); the keyspace links its packed
//! entries directly, and an entry carries a next slot only while it needs
//! one (an entry at a chain's tail has none), so most keys pay no pointer.
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

/// An owning link of a bucket's chain: a pointer to a node holding an item
/// and, optionally, a slot for its successor.
pub trait Link: Sized {
    type Item;
    fn from_item(item: Self::Item) -> Self;
    fn into_item(self) -> Self::Item;
    fn item(&self) -> &Self::Item;
    fn item_mut(&mut self) -> &mut Self::Item;
    fn key(&self) -> &[u8];
    /// Where the node's memory starts (to prefetch it).
    fn addr(&self) -> *const u8;
    /// The successor, if any.
    fn next(&self) -> Option<&Self>;
    /// The successor slot, if this node has one.
    fn next_mut(&mut self) -> Option<&mut Option<Self>>;
    /// The successor slot, created (the node may move) when missing.
    fn next_slot(&mut self) -> &mut Option<Self>;
    /// Detaches and returns the successor.
    fn take_next(&mut self) -> Option<Self> {
        self.next_mut().and_then(Option::take)
    }
    /// Gives up an empty successor slot where the link can (the node may
    /// move): a node that becomes a chain's tail in `resize` stops paying
    /// for a pointer it no longer needs.
    fn shed_next_slot(&mut self) {}
    /// The load (entries per bucket, in quarters) past which the table
    /// doubles.
    const MAX_LOAD_QUARTERS: usize = 4;
}

/// The node of a collection's table: the entry and its successor.
pub struct Node<E> {
    next: Option<Box<Node<E>>>,
    entry: E,
}

impl<E: Keyed> Link for Box<Node<E>> {
    type Item = E;
    fn from_item(entry: E) -> Self {
        Box::new(Node { next: None, entry })
    }
    fn into_item(self) -> E {
        self.entry
    }
    fn item(&self) -> &E {
        &self.entry
    }
    fn item_mut(&mut self) -> &mut E {
        &mut self.entry
    }
    fn key(&self) -> &[u8] {
        self.entry.key()
    }
    fn addr(&self) -> *const u8 {
        (&raw const **self).cast()
    }
    fn next(&self) -> Option<&Self> {
        self.next.as_ref()
    }
    fn next_mut(&mut self) -> Option<&mut Option<Self>> {
        Some(&mut self.next)
    }
    fn next_slot(&mut self) -> &mut Option<Self> {
        &mut self.next
    }
}

/// A chained table of links `N`.
pub struct RawTable<N: Link> {
    buckets: Vec<Option<N>>,
    len: usize,
}

/// A collection's table: boxed nodes holding `E`.
pub type Table<E> = RawTable<Box<Node<E>>>;

/// One hasher for every table of the process, seeded at start-up.
fn hasher() -> &'static foldhash::fast::RandomState {
    static STATE: std::sync::OnceLock<foldhash::fast::RandomState> = std::sync::OnceLock::new();
    STATE.get_or_init(foldhash::fast::RandomState::default)
}

pub fn hash_key(key: &[u8]) -> u64 {
    hasher().hash_one(key)
}

/// Asks the CPU to start loading the cache line at `p`: a hint that
/// changes nothing and never faults, whatever `p` is (a stale or dangling
/// address costs at most a useless load).
#[inline]
pub fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 reads no memory architecturally and cannot fault;
    // SSE, which it needs, is part of the x86_64 baseline.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

const MIN_BUCKETS: usize = 4;

impl<N: Link> Default for RawTable<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// Pushes `n` at the head of the chain in `bucket`; alone there, it
/// sheds an empty next slot.
fn push_front<N: Link>(bucket: &mut Option<N>, mut n: N) -> &mut N {
    match bucket.take() {
        Some(head) => *n.next_slot() = Some(head),
        None => n.shed_next_slot(),
    }
    bucket.insert(n)
}

/// The slot of `link`'s chain that holds `key`, if any.
fn find<'a, N: Link>(mut link: &'a mut Option<N>, key: &[u8]) -> Option<&'a mut Option<N>> {
    loop {
        match link {
            None => return None,
            Some(n) if n.key() == key => return Some(link),
            Some(n) => link = n.next_mut()?,
        }
    }
}

impl<N: Link> RawTable<N> {
    pub fn new() -> Self {
        RawTable {
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

    /// Bytes of the bucket array (for memory accounting).
    pub fn bucket_bytes(&self) -> usize {
        self.buckets.capacity() * std::mem::size_of::<Option<N>>()
    }

    fn index(&self, key: &[u8]) -> usize {
        (hash_key(key) as usize) & (self.buckets.len() - 1)
    }

    /// Starts loading the bucket slot of the key whose `hash_key` is `hash`
    /// (see `prefetch`).
    pub fn prefetch_bucket(&self, hash: u64) {
        if !self.buckets.is_empty() {
            let i = (hash as usize) & (self.buckets.len() - 1);
            prefetch(self.buckets.as_ptr().wrapping_add(i).cast());
        }
    }

    /// The first node of the chain the key whose `hash_key` is `hash`
    /// would be in (to prefetch it).
    pub fn head(&self, hash: u64) -> Option<&N> {
        let mask = self.buckets.len().checked_sub(1)?;
        self.buckets.get((hash as usize) & mask)?.as_ref()
    }

    /// `get` for a key whose `hash_key` is known to end in `hash`'s low
    /// bits (enough of them for any bucket index).
    pub fn get_hashed(&self, hash: u64, key: &[u8]) -> Option<&N::Item> {
        let mut cur = self.head(hash);
        while let Some(n) = cur {
            if n.key() == key {
                return Some(n.item());
            }
            cur = n.next();
        }
        None
    }

    pub fn get(&self, key: &[u8]) -> Option<&N::Item> {
        if self.len == 0 {
            return None;
        }
        let mut cur = self.buckets[self.index(key)].as_ref();
        while let Some(n) = cur {
            if n.key() == key {
                return Some(n.item());
            }
            cur = n.next();
        }
        None
    }

    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut N::Item> {
        if self.len == 0 {
            return None;
        }
        let i = self.index(key);
        find(&mut self.buckets[i], key)?.as_mut().map(N::item_mut)
    }

    /// The item at `key` if `keep` accepts it: `Err(true)` when present
    /// but refused (an expired key), `Err(false)` when absent.
    pub fn get_mut_if(
        &mut self,
        key: &[u8],
        keep: impl FnOnce(&N::Item) -> bool,
    ) -> Result<&mut N::Item, bool> {
        if self.len == 0 {
            return Err(false);
        }
        let i = self.index(key);
        match find(&mut self.buckets[i], key).and_then(Option::as_mut) {
            Some(n) if keep(n.item()) => Ok(n.item_mut()),
            Some(_) => Err(true),
            None => Err(false),
        }
    }

    /// Inserts `item`, replacing (and returning) an item with the same key.
    pub fn insert(&mut self, item: N::Item) -> Option<N::Item> {
        let mut n = N::from_item(item);
        if self.len > 0 {
            let i = self.index(n.key());
            if let Some(slot) = find(&mut self.buckets[i], n.key()) {
                let mut old = slot.take()?;
                if let Some(next) = old.take_next() {
                    *n.next_slot() = Some(next);
                }
                *slot = Some(n);
                return Some(old.into_item());
            }
        }
        self.push(n);
        None
    }

    /// Inserts an item whose key is known to be absent.
    pub fn insert_new(&mut self, item: N::Item) -> &mut N::Item {
        self.push(N::from_item(item)).item_mut()
    }

    /// Inserts the item `make` builds for `key`, known to be absent.
    /// `make` learns whether the item will have a successor (so a link that
    /// carries its next slot only when needed is built with it at once).
    pub fn insert_new_with(
        &mut self,
        key: &[u8],
        make: impl FnOnce(bool) -> N::Item,
    ) -> &mut N::Item {
        self.grow_for_one();
        let i = self.index(key);
        let n = N::from_item(make(self.buckets[i].is_some()));
        debug_assert!(n.key() == key);
        self.len += 1;
        push_front(&mut self.buckets[i], n).item_mut()
    }

    /// Doubles the bucket array past the link's maximum load.
    fn grow_for_one(&mut self) {
        let n = self.buckets.len();
        if self.len * 4 >= n * N::MAX_LOAD_QUARTERS {
            self.resize((self.buckets.len() * 2).max(MIN_BUCKETS));
        }
    }

    fn push(&mut self, n: N) -> &mut N {
        self.grow_for_one();
        let i = self.index(n.key());
        self.len += 1;
        push_front(&mut self.buckets[i], n)
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<N::Item> {
        if self.len == 0 {
            return None;
        }
        let i = self.index(key);
        let removed = remove_from_chain(&mut self.buckets[i], |n| n.key() == key);
        if removed.is_some() {
            self.len -= 1;
            self.maybe_shrink();
        }
        removed.map(N::into_item)
    }

    fn maybe_shrink(&mut self) {
        if self.buckets.len() > MIN_BUCKETS && self.len * 8 < self.buckets.len() {
            self.resize(self.len.next_power_of_two().max(MIN_BUCKETS));
        }
    }

    pub fn clear(&mut self) {
        drop_chains(&mut self.buckets);
        self.buckets = Vec::new();
        self.len = 0;
    }

    fn resize(&mut self, size: usize) {
        let old = std::mem::take(&mut self.buckets);
        self.buckets.resize_with(size, || None);
        let mask = size - 1;
        let mut chain = Vec::new();
        for mut head in old {
            // Moving the chain tail-first keeps each bucket's relative order
            // (and on growth a tail without a next slot lands first, in an
            // empty bucket, so it needs none; whatever lands first sheds
            // its slot, so after a resize no tail carries one).
            while let Some(mut n) = head {
                head = n.take_next();
                chain.push(n);
            }
            while let Some(n) = chain.pop() {
                let i = (hash_key(n.key()) as usize) & mask;
                push_front(&mut self.buckets[i], n);
            }
        }
    }

    /// Visits every entry of the bucket at `cursor` and returns the next
    /// cursor, 0 when the walk is complete.
    pub fn scan_bucket(&self, cursor: u64, mut f: impl FnMut(&N::Item)) -> u64 {
        if self.buckets.is_empty() {
            return 0;
        }
        let mask = (self.buckets.len() - 1) as u64;
        let mut cur = self.buckets[(cursor & mask) as usize].as_ref();
        while let Some(n) = cur {
            f(n.item());
            cur = n.next();
        }
        next_cursor(cursor, mask)
    }

    /// Like `scan_bucket`, removing the entries for which `remove` says so
    /// and handing each removed entry to `removed`.
    pub fn sweep_bucket(
        &mut self,
        cursor: u64,
        mut remove: impl FnMut(&N::Item) -> bool,
        mut removed: impl FnMut(N::Item),
    ) -> u64 {
        if self.buckets.is_empty() {
            return 0;
        }
        let mask = (self.buckets.len() - 1) as u64;
        let slot = &mut self.buckets[(cursor & mask) as usize];
        while let Some(e) = remove_from_chain(slot, |n| remove(n.item())) {
            self.len -= 1;
            removed(e.into_item());
        }
        next_cursor(cursor, mask)
    }

    /// A uniformly chosen non-empty bucket's random entry (as Redis's
    /// dictGetFairRandomKey approximates), or None when empty.
    pub fn random(&self, mut rand: impl FnMut(usize) -> usize) -> Option<&N::Item> {
        if self.len == 0 {
            return None;
        }
        loop {
            let b = self.buckets[rand(self.buckets.len())].as_ref();
            let Some(first) = b else { continue };
            let mut n = 0;
            let mut cur = Some(first);
            while let Some(x) = cur {
                n += 1;
                cur = x.next();
            }
            let mut pick = rand(n);
            let mut cur = first;
            while pick > 0 {
                pick -= 1;
                cur = cur.next()?;
            }
            return Some(cur.item());
        }
    }

    /// Visits the entries of up to `buckets` consecutive buckets from
    /// bucket `start` (wrapping) while `f` returns true: neighbouring
    /// entries for a sample, where `random` costs a cache miss each. The
    /// first nodes of eight buckets are prefetched before any is read, so
    /// their misses overlap.
    pub fn visit_run<'a>(
        &'a self,
        start: usize,
        buckets: usize,
        mut f: impl FnMut(&'a N::Item) -> bool,
    ) {
        const AHEAD: usize = 8;
        let Some(mask) = self.buckets.len().checked_sub(1) else {
            return;
        };
        let buckets = buckets.min(mask + 1);
        for chunk in (0..buckets).step_by(AHEAD) {
            let run = chunk..(chunk + AHEAD).min(buckets);
            for i in run.clone() {
                if let Some(n) = &self.buckets[start.wrapping_add(i) & mask] {
                    prefetch(n.addr());
                }
            }
            for i in run {
                let mut cur = self.buckets[start.wrapping_add(i) & mask].as_ref();
                while let Some(n) = cur {
                    if !f(n.item()) {
                        return;
                    }
                    cur = n.next();
                }
            }
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &N::Item> {
        self.buckets.iter().flat_map(|b| {
            let mut cur = b.as_ref();
            std::iter::from_fn(move || {
                let n = cur?;
                cur = n.next();
                Some(n.item())
            })
        })
    }

    /// Removes and returns every entry (used by FLUSHDB to drop values elsewhere).
    pub fn take_all(&mut self) -> RawTable<N> {
        std::mem::take(self)
    }
}

impl<E: Keyed> Table<E> {
    /// Warms the cache for a lookup of `key`: its bucket slot, or with
    /// `node` the first node of that bucket's chain (read from the slot,
    /// which should be cached by then). Changes nothing.
    pub fn prefetch_key(&self, key: &[u8], node: bool) {
        let hash = hash_key(key);
        if !node {
            self.prefetch_bucket(hash);
        } else if let Some(n) = self.head(hash) {
            prefetch(n.addr());
        }
    }
}

/// A copy with the same entries (rebuilt by insertion, so bucket order may
/// differ from the original's).
impl<N: Link> Clone for RawTable<N>
where
    N::Item: Clone,
{
    fn clone(&self) -> Self {
        let mut t = RawTable::new();
        for e in self.iter() {
            t.insert_new(e.clone());
        }
        t
    }
}

impl<N: Link> Drop for RawTable<N> {
    fn drop(&mut self) {
        drop_chains(&mut self.buckets);
    }
}

/// Drops chains link by link, so a long chain cannot overflow the stack.
fn drop_chains<N: Link>(buckets: &mut [Option<N>]) {
    for b in buckets {
        let mut cur = b.take();
        while let Some(mut n) = cur {
            cur = n.take_next();
        }
    }
}

fn remove_from_chain<N: Link>(slot: &mut Option<N>, mut pred: impl FnMut(&N) -> bool) -> Option<N> {
    let mut link = slot;
    loop {
        match link {
            None => return None,
            Some(n) if pred(n) => {
                let mut node = link.take()?;
                *link = node.take_next();
                return Some(node);
            }
            Some(n) => link = n.next_mut()?,
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

    #[test]
    fn head_is_the_chain_a_key_is_in_and_prefetch_is_harmless() {
        let mut t = Table::new();
        t.prefetch_bucket(hash_key(b"k1"));
        assert!(t.head(hash_key(b"k1")).is_none());
        for k in 0..100 {
            t.insert(E(key(k), u32::from(k)));
        }
        for k in 0..100 {
            let h = hash_key(&key(k));
            t.prefetch_bucket(h);
            let mut cur = t.head(h);
            let mut found = false;
            while let Some(n) = cur {
                found |= n.key() == key(k).as_slice();
                cur = n.next();
            }
            assert!(found);
        }
        // Any address at all, even one that is not mapped.
        prefetch(std::ptr::null());
        prefetch(usize::MAX as *const u8);
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
