//! The keyspace hash table: separate chaining over a power-of-two bucket
//! array, resized incrementally: a resize allocates the new array and each
//! later mutating call moves a few buckets of the old one into it, so no
//! single command pays for moving a whole big table.
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
//!   While a move is in flight the walk uses the smaller array's mask and
//!   visits, for each cursor, the small array's bucket and every bucket of
//!   the large array that maps onto it, so it walks a table of the small
//!   size.
//! - An entry is in the old array exactly when its old bucket has not been
//!   moved yet (`Move::next` is past it); inserts follow the same rule, so a
//!   lookup searches one chain.
//! - No entry moves between buckets except when its old bucket is moved,
//!   which keeps the per-bucket order, so a walk by cursor is stable while
//!   the size is.

use std::hash::BuildHasher;

/// An entry that knows its key.
pub trait Keyed {
    fn key(&self) -> &[u8];
}

/// An owning link of a bucket's chain: a pointer to a node holding an item
/// and, optionally, a slot for its successor.
///
/// # Safety
/// An all-zero `Option<Self>` must be `None`, as it is for a `Box`, a
/// `NonNull` and a `#[repr(transparent)]` struct around one (Rust
/// guarantees the null niche for these): bucket arrays are allocated
/// zeroed, so a big table's new array costs no initialising pass (and
/// fresh pages from the OS are not even written).
pub unsafe trait Link: Sized {
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

// SAFETY: `Option<Box<_>>` is null when `None`.
unsafe impl<E: Keyed> Link for Box<Node<E>> {
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
    /// The array being moved into `buckets`, while a resize is in flight.
    moving: Option<Box<Move<N>>>,
}

/// A resize in flight: the old bucket array and how far it has been moved.
struct Move<N> {
    old: Vec<Option<N>>,
    /// Old buckets below this index are empty (moved); the rest still hold
    /// their entries and take inserts of keys that map to them.
    next: usize,
    /// Scratch for reversing a chain (kept to avoid an allocation per step).
    chain: Vec<N>,
}

impl<N> Move<N> {
    /// The old bucket of the key whose hash is `hash`, if not moved yet.
    #[inline]
    fn unmoved(&self, hash: u64) -> Option<usize> {
        let i = (hash as usize) & (self.old.len() - 1);
        (i >= self.next).then_some(i)
    }
}

/// Empty old buckets a step may pass over besides the one non-empty bucket
/// it moves (reading an empty slot is one sequential 8-byte load).
const STEP_EMPTY: usize = 64;

/// Non-empty old buckets a step moves (their first nodes prefetched
/// together, so their misses overlap).
const STEP_CHAINS: usize = 4;

/// Tables with fewer entries than this resize in one go (the unit tests
/// move every table incrementally, to exercise the move with small ones).
#[cfg(not(test))]
const MOVE_AT_ONCE: usize = 8192;
#[cfg(test)]
const MOVE_AT_ONCE: usize = 0;

/// A collection's table: boxed nodes holding `E`.
pub type Table<E> = RawTable<Box<Node<E>>>;

/// One hasher for every table of the process, seeded at start-up.
fn hasher() -> &'static foldhash::fast::RandomState {
    static STATE: std::sync::OnceLock<foldhash::fast::RandomState> = std::sync::OnceLock::new();
    STATE.get_or_init(foldhash::fast::RandomState::default)
}

thread_local! {
    /// A key whose hash is already known on this thread (address, length,
    /// hash): the key of the command running here, hashed when its
    /// request was warmed. 0 length: none.
    static KNOWN: std::cell::Cell<(usize, usize, u64)> = const { std::cell::Cell::new((0, 0, 0)) };
}

pub fn hash_key(key: &[u8]) -> u64 {
    let (at, len, hash) = KNOWN.get();
    if at == key.as_ptr() as usize && len == key.len() && len != 0 {
        return hash;
    }
    hasher().hash_one(key)
}

thread_local! {
    /// The hashes of the members being warmed (address, length, hash),
    /// by address: a member is hashed at its first warming step and
    /// found here at the later ones. The requests of a pipeline lie one
    /// after another in the read buffer, so slots of 16 bytes of address
    /// keep a batch's members apart.
    static WARMING: [std::cell::Cell<(usize, usize, u64)>; 128] =
        const { [const { std::cell::Cell::new((0, 0, 0)) }; 128] };
}

/// `hash_key(key)` for warming a member, one step after another: the
/// `first` step hashes and remembers the result under `key`'s address,
/// later steps find it there (or hash again if another member took the
/// slot). Only prefetches use it: a remembered hash is trusted by address
/// alone, and what a stale one costs is a useless load.
pub fn warming_hash(key: &[u8], first: bool) -> u64 {
    let at = key.as_ptr() as usize;
    let slot = (at >> 4) % 128;
    WARMING.with(|m| {
        let c = &m[slot];
        let (a, len, h) = c.get();
        if !first && a == at && len == key.len() {
            return h;
        }
        let h = hash_key(key);
        c.set((at, key.len(), h));
        h
    })
}

/// While `f` runs on this thread, `hash_key(key)` answers `hash` without
/// hashing. The caller vouches that `hash` is `hash_key(key)`; the bytes
/// at `key`'s address cannot change meanwhile, as `key` is borrowed.
pub fn with_known_hash<R>(key: &[u8], hash: u64, f: impl FnOnce() -> R) -> R {
    debug_assert_eq!(hasher().hash_one(key), hash);
    KNOWN.set((key.as_ptr() as usize, key.len(), hash));
    // Cleared on the way out, unwinding included, before the borrow of
    // `key` ends and its buffer can be reused for other bytes.
    struct Clear;
    impl Drop for Clear {
        fn drop(&mut self) {
            KNOWN.set((0, 0, 0));
        }
    }
    let _clear = Clear;
    f()
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
            moving: None,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bucket slots of both arrays (for memory accounting).
    pub fn bucket_count(&self) -> usize {
        self.buckets.len() + self.moving.as_ref().map_or(0, |m| m.old.len())
    }

    /// Bytes of the bucket arrays (for memory accounting).
    pub fn bucket_bytes(&self) -> usize {
        let old = self.moving.as_ref().map_or(0, |m| m.old.capacity());
        (self.buckets.capacity() + old) * std::mem::size_of::<Option<N>>()
    }

    /// Whether a resize is still moving entries.
    pub fn is_moving(&self) -> bool {
        self.moving.is_some()
    }

    /// The chain the key whose hash is `hash` is (or would be) in. The
    /// table must have buckets.
    #[inline]
    fn chain(&self, hash: u64) -> &Option<N> {
        if let Some(m) = &self.moving {
            if let Some(i) = m.unmoved(hash) {
                return &m.old[i];
            }
        }
        &self.buckets[(hash as usize) & (self.buckets.len() - 1)]
    }

    /// `chain`, mutably.
    #[inline]
    fn chain_mut(&mut self, hash: u64) -> &mut Option<N> {
        if let Some(m) = &mut self.moving {
            if let Some(i) = m.unmoved(hash) {
                return &mut m.old[i];
            }
        }
        let mask = self.buckets.len() - 1;
        &mut self.buckets[(hash as usize) & mask]
    }

    /// Starts loading the bucket slot of the key whose `hash_key` is `hash`
    /// (see `prefetch`).
    pub fn prefetch_bucket(&self, hash: u64) {
        if !self.buckets.is_empty() {
            prefetch((&raw const *self.chain(hash)).cast());
        }
    }

    /// The first node of the chain the key whose `hash_key` is `hash`
    /// would be in (to prefetch it).
    pub fn head(&self, hash: u64) -> Option<&N> {
        if self.buckets.is_empty() {
            return None;
        }
        self.chain(hash).as_ref()
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
        self.get_hashed(hash_key(key), key)
    }

    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut N::Item> {
        if self.len == 0 {
            return None;
        }
        self.step();
        find(self.chain_mut(hash_key(key)), key)?
            .as_mut()
            .map(N::item_mut)
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
        self.step();
        match find(self.chain_mut(hash_key(key)), key).and_then(Option::as_mut) {
            Some(n) if keep(n.item()) => Ok(n.item_mut()),
            Some(_) => Err(true),
            None => Err(false),
        }
    }

    /// Inserts `item`, replacing (and returning) an item with the same key.
    pub fn insert(&mut self, item: N::Item) -> Option<N::Item> {
        let mut n = N::from_item(item);
        if self.len > 0 {
            self.step();
            if let Some(slot) = find(self.chain_mut(hash_key(n.key())), n.key()) {
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
        self.step();
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
        self.step();
        self.grow_for_one();
        self.len += 1;
        let slot = self.chain_mut(hash_key(key));
        let n = N::from_item(make(slot.is_some()));
        debug_assert!(n.key() == key);
        push_front(slot, n).item_mut()
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
        self.len += 1;
        push_front(self.chain_mut(hash_key(n.key())), n)
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<N::Item> {
        if self.len == 0 {
            return None;
        }
        self.step();
        let removed = remove_from_chain(self.chain_mut(hash_key(key)), |n| n.key() == key);
        if removed.is_some() {
            self.len -= 1;
            self.maybe_shrink();
        }
        removed.map(N::into_item)
    }

    /// Halves (or more) a sparse table; not while a move is in flight (a
    /// later removal checks again).
    fn maybe_shrink(&mut self) {
        if self.moving.is_none()
            && self.buckets.len() > MIN_BUCKETS
            && self.len * 8 < self.buckets.len()
        {
            self.resize(self.len.next_power_of_two().max(MIN_BUCKETS));
        }
    }

    pub fn clear(&mut self) {
        drop_chains(&mut self.buckets);
        if let Some(mut m) = self.moving.take() {
            drop_chains(&mut m.old);
        }
        self.buckets = Vec::new();
        self.len = 0;
    }

    /// Starts moving into a new array of `size` buckets (finishing a move
    /// still in flight first).
    fn resize(&mut self, size: usize) {
        self.finish_move();
        let old = std::mem::replace(&mut self.buckets, empty_buckets(size));
        if self.len > 0 {
            self.moving = Some(Box::new(Move {
                old,
                next: 0,
                chain: Vec::new(),
            }));
            // A small table moves at once: well under a millisecond, and
            // its lookups never pay for two arrays.
            if self.len < MOVE_AT_ONCE {
                self.finish_move();
            }
        }
    }

    /// One step of a move in flight; a single predictable branch otherwise.
    #[inline]
    fn step(&mut self) {
        if self.moving.is_some() {
            self.move_buckets(STEP_EMPTY);
        }
    }

    fn finish_move(&mut self) {
        while self.moving.is_some() {
            self.move_buckets(usize::MAX);
        }
    }

    /// Moves old buckets until `STEP_CHAINS` non-empty buckets have moved,
    /// or `empty` empty ones were passed over (then one more), or the old
    /// array is done (then drops it). Cold: out of line of the no-move
    /// path.
    #[cold]
    fn move_buckets(&mut self, mut empty: usize) {
        let Some(m) = self.moving.as_deref_mut() else {
            return;
        };
        let mask = self.buckets.len() - 1;
        // The next few chains' first nodes load together (each move reads
        // its nodes' keys to hash them).
        for head in m.old[m.next..].iter().take(STEP_CHAINS).flatten() {
            prefetch(head.addr());
        }
        let mut chains = STEP_CHAINS;
        while m.next < m.old.len() {
            let head = m.old[m.next].take();
            m.next += 1;
            if let Some(head) = head {
                move_chain(&mut self.buckets, mask, head, &mut m.chain);
                chains -= 1;
                if chains == 0 {
                    break;
                }
                continue;
            }
            if empty == 0 {
                break;
            }
            empty -= 1;
        }
        if m.next == m.old.len() {
            self.moving = None;
        }
    }

    /// The mask SCAN cursors use now: mid-move, the smaller array's.
    fn scan_mask(&self) -> u64 {
        let n = match &self.moving {
            Some(m) => m.old.len().min(self.buckets.len()),
            None => self.buckets.len(),
        };
        (n - 1) as u64
    }

    /// Visits every entry whose hash matches `cursor` under the scan mask
    /// (one bucket, or mid-move the small array's bucket and the large
    /// array's buckets above it) and returns the next cursor, 0 when the
    /// walk is complete.
    pub fn scan_bucket(&self, cursor: u64, mut f: impl FnMut(&N::Item)) -> u64 {
        if self.buckets.is_empty() {
            return 0;
        }
        let mask = self.scan_mask();
        let mut visit = |b: &Option<N>| {
            let mut cur = b.as_ref();
            while let Some(n) = cur {
                f(n.item());
                cur = n.next();
            }
        };
        for_class(&self.buckets, cursor, mask, &mut visit);
        if let Some(m) = &self.moving {
            for_class(&m.old, cursor, mask, &mut visit);
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
        let mask = self.scan_mask();
        let mut gone = 0;
        let mut sweep = |slot: &mut Option<N>| {
            while let Some(e) = remove_from_chain(slot, |n| remove(n.item())) {
                gone += 1;
                removed(e.into_item());
            }
        };
        for_class_mut(&mut self.buckets, cursor, mask, &mut sweep);
        if let Some(m) = &mut self.moving {
            for_class_mut(&mut m.old, cursor, mask, &mut sweep);
        }
        self.len -= gone;
        next_cursor(cursor, mask)
    }

    /// A uniformly chosen non-empty bucket's random entry (as Redis's
    /// dictGetFairRandomKey approximates), or None when empty. Mid-move
    /// the buckets are those of the new array and the old one's unmoved
    /// part.
    pub fn random(&self, mut rand: impl FnMut(usize) -> usize) -> Option<&N::Item> {
        if self.len == 0 {
            return None;
        }
        let (old, first_old): (&[Option<N>], usize) = match &self.moving {
            Some(m) => (&m.old, m.next),
            None => (&[], 0),
        };
        let new = self.buckets.len();
        loop {
            let r = rand(new + old.len() - first_old);
            let b = if r < new {
                self.buckets[r].as_ref()
            } else {
                old[first_old + r - new].as_ref()
            };
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

    /// Visits the entries of up to `buckets` consecutive buckets (of
    /// `bucket_count`, both arrays mid-move) from bucket `start` (wrapping)
    /// while `f` returns true: neighbouring
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
        let new = self.buckets.len();
        let old: &[Option<N>] = self.moving.as_ref().map_or(&[], |m| &m.old);
        let total = new + old.len();
        if total == 0 {
            return;
        }
        let buckets = buckets.min(total);
        // Mid-move the buckets are the new array's, then the old one's.
        let slot = |i: usize| -> &'a Option<N> {
            if old.is_empty() {
                return &self.buckets[start.wrapping_add(i) & (new - 1)];
            }
            let j = (start % total + i) % total;
            if j < new {
                &self.buckets[j]
            } else {
                &old[j - new]
            }
        };
        for chunk in (0..buckets).step_by(AHEAD) {
            let run = chunk..(chunk + AHEAD).min(buckets);
            for i in run.clone() {
                if let Some(n) = slot(i) {
                    prefetch(n.addr());
                }
            }
            for i in run {
                let mut cur = slot(i).as_ref();
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
        let old = self.moving.as_ref().map_or(&[][..], |m| &m.old[m.next..]);
        self.buckets.iter().chain(old).flat_map(|b| {
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
        let hash = warming_hash(key, !node);
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
        if self.len > 0 {
            // Sized up front, so the copy never moves.
            t.buckets = empty_buckets(self.buckets.len());
        }
        for e in self.iter() {
            t.insert_new(e.clone());
        }
        t
    }
}

impl<N: Link> Drop for RawTable<N> {
    fn drop(&mut self) {
        self.clear();
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

/// A bucket array of `size` empty slots, from zeroed memory.
fn empty_buckets<N: Link>(size: usize) -> Vec<Option<N>> {
    let Ok(layout) = std::alloc::Layout::array::<Option<N>>(size) else {
        std::alloc::handle_alloc_error(std::alloc::Layout::new::<Option<N>>())
    };
    if layout.size() == 0 {
        return Vec::new();
    }
    // SAFETY: the layout has a non-zero size; a null result is handled.
    let p = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<Option<N>>();
    if p.is_null() {
        std::alloc::handle_alloc_error(layout);
    }
    // SAFETY: `p` comes from the global allocator with the layout of
    // `size` slots, which is what a Vec of that capacity frees with, and
    // every slot holds a valid `None` (all zeroes, the `Link` contract).
    unsafe { Vec::from_raw_parts(p, size, size) }
}

/// Moves the chain `head` into `buckets` tail-first, which keeps each
/// bucket's relative order; on growth the old tail (which has no next
/// slot) lands first, in a bucket still empty (its old bucket was moved just
/// now, and inserts go to the old array until then), so it needs none, and
/// whatever lands first sheds its slot: a move leaves no tail with one.
fn move_chain<N: Link>(buckets: &mut [Option<N>], mask: usize, mut head: N, chain: &mut Vec<N>) {
    loop {
        let next = head.take_next();
        chain.push(head);
        match next {
            Some(n) => head = n,
            None => break,
        }
    }
    while let Some(n) = chain.pop() {
        push_front(&mut buckets[(hash_key(n.key()) as usize) & mask], n);
    }
}

/// Calls `f` on each bucket of `buckets` (a power of two at least `mask +
/// 1` long) whose index matches `cursor` under `mask`.
fn for_class<T>(buckets: &[T], cursor: u64, mask: u64, f: &mut impl FnMut(&T)) {
    let mut b = (cursor & mask) as usize;
    while let Some(x) = buckets.get(b) {
        f(x);
        b += mask as usize + 1;
    }
}

/// `for_class`, mutably.
fn for_class_mut<T>(buckets: &mut [T], cursor: u64, mask: u64, f: &mut impl FnMut(&mut T)) {
    let mut b = (cursor & mask) as usize;
    while let Some(x) = buckets.get_mut(b) {
        f(x);
        b += mask as usize + 1;
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

    #[test]
    fn warming_hash_is_hash_key_at_every_step() {
        let keys: Vec<Vec<u8>> = (0..64)
            .map(|i| format!("member:{i}").into_bytes())
            .collect();
        for k in &keys {
            assert_eq!(warming_hash(k, true), hash_key(k));
        }
        for k in &keys {
            assert_eq!(warming_hash(k, false), hash_key(k));
        }
    }

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

    #[derive(Debug, Clone)]
    enum MoveOp {
        Insert(u16, u32),
        InsertNew(u16, u32),
        Remove(u16),
        Get(u16),
        GetMut(u16, u32),
        /// A burst of inserts of fresh keys, up to a resize (so the next
        /// operations find it in flight).
        Grow(u16),
        /// Removes the model's keys below this one, up to a resize.
        Shrink(u16),
    }

    fn move_op() -> impl Strategy<Value = MoveOp> {
        prop_oneof![
            4 => (0u16..2000, any::<u32>()).prop_map(|(k, v)| MoveOp::Insert(k, v)),
            2 => (0u16..2000, any::<u32>()).prop_map(|(k, v)| MoveOp::InsertNew(k, v)),
            3 => (0u16..2000).prop_map(MoveOp::Remove),
            2 => (0u16..2000).prop_map(MoveOp::Get),
            1 => (0u16..2000, any::<u32>()).prop_map(|(k, v)| MoveOp::GetMut(k, v)),
            1 => (1u16..600).prop_map(MoveOp::Grow),
            1 => (0u16..2000).prop_map(MoveOp::Shrink),
        ]
    }

    /// The number in a key made by `key`.
    fn number(key: &[u8]) -> u16 {
        key[1..].iter().fold(0, |a, d| a * 10 + u16::from(d - b'0'))
    }

    /// Applies `op` to the table and the model and checks that they agree;
    /// the table may hold `extra` keys of its own (named `s...`, never
    /// touched).
    fn apply(
        t: &mut Table<E>,
        m: &mut HashMap<u16, u32>,
        extra: usize,
        op: &MoveOp,
    ) -> Result<(), TestCaseError> {
        match *op {
            MoveOp::Insert(k, v) => {
                prop_assert_eq!(t.insert(E(key(k), v)).map(|e| e.1), m.insert(k, v));
            }
            MoveOp::InsertNew(k, v) => {
                if let std::collections::hash_map::Entry::Vacant(slot) = m.entry(k) {
                    slot.insert(v);
                    prop_assert_eq!(t.insert_new(E(key(k), v)).1, v);
                }
            }
            MoveOp::Remove(k) => {
                prop_assert_eq!(t.remove(&key(k)).map(|e| e.1), m.remove(&k));
            }
            MoveOp::Get(k) => {
                let h = hash_key(&key(k));
                prop_assert_eq!(t.get(&key(k)).map(|e| e.1), m.get(&k).copied());
                prop_assert_eq!(t.get_hashed(h, &key(k)).map(|e| e.1), m.get(&k).copied());
                if m.contains_key(&k) {
                    let mut cur = t.head(h);
                    let mut found = false;
                    while let Some(n) = cur {
                        found |= n.key() == key(k).as_slice();
                        cur = n.next();
                    }
                    prop_assert!(found, "head() is not the key's chain");
                }
            }
            MoveOp::GetMut(k, v) => {
                let got = t.get_mut(&key(k)).map(|e| {
                    e.1 = v;
                    v
                });
                let want = m.get_mut(&k).map(|x| {
                    *x = v;
                    v
                });
                prop_assert_eq!(got, want);
                let kept = t.get_mut_if(&key(k), |e| e.1 % 2 == 0).map(|e| e.1);
                let want = match m.get(&k) {
                    Some(x) if x % 2 == 0 => Ok(*x),
                    Some(_) => Err(true),
                    None => Err(false),
                };
                prop_assert_eq!(kept, want);
            }
            MoveOp::Grow(n) => {
                for k in 2000..2000 + n {
                    let moving = t.is_moving();
                    prop_assert_eq!(t.insert(E(key(k), 1)).map(|e| e.1), m.insert(k, 1));
                    if t.is_moving() && !moving {
                        break;
                    }
                }
            }
            MoveOp::Shrink(below) => {
                let gone: Vec<u16> = m.keys().copied().filter(|k| *k < below).collect();
                for k in gone {
                    let moving = t.is_moving();
                    prop_assert_eq!(t.remove(&key(k)).map(|e| e.1), m.remove(&k));
                    if t.is_moving() && !moving {
                        break;
                    }
                }
            }
        }
        prop_assert_eq!(t.len(), m.len() + extra);
        Ok(())
    }

    /// Every entry is in the chain a lookup searches, no moved old bucket
    /// holds one, and the counts agree.
    fn check_layout(t: &Table<E>) -> Result<(), TestCaseError> {
        let mut n = 0;
        let mask = t.buckets.len().wrapping_sub(1);
        for (i, b) in t.buckets.iter().enumerate() {
            let mut cur = b.as_ref();
            while let Some(x) = cur {
                let h = hash_key(x.key());
                prop_assert_eq!((h as usize) & mask, i);
                if let Some(m) = &t.moving {
                    prop_assert!(m.unmoved(h).is_none(), "moved entry of an unmoved bucket");
                }
                n += 1;
                cur = x.next();
            }
        }
        if let Some(m) = &t.moving {
            prop_assert!(m.next < m.old.len());
            prop_assert!(m.old[..m.next].iter().all(Option::is_none));
            for (i, b) in m.old.iter().enumerate() {
                let mut cur = b.as_ref();
                while let Some(x) = cur {
                    prop_assert_eq!(m.unmoved(hash_key(x.key())), Some(i));
                    n += 1;
                    cur = x.next();
                }
            }
        }
        prop_assert_eq!(n, t.len());
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Inserts, removes and lookups agree with a map while resizes are
        /// in flight, and so do `iter`, `random`, `Clone`, the bucket
        /// counts and `clear`.
        #[test]
        fn behaves_like_a_hashmap_while_moving(
            ops in proptest::collection::vec(move_op(), 0..300),
        ) {
            let mut t = Table::new();
            let mut m = HashMap::new();
            let mut mid_move = 0;
            for op in &ops {
                apply(&mut t, &mut m, 0, op)?;
                check_layout(&t)?;
                if t.is_moving() {
                    mid_move += 1;
                }
                if t.is_moving() && mid_move % 8 == 1 {
                    prop_assert!(t.bucket_count() > t.buckets.len());
                    prop_assert!(t.bucket_bytes() >= t.bucket_count() * 8);
                    let mut seen: Vec<u16> = t.iter().map(|e| number(&e.0)).collect();
                    seen.sort_unstable();
                    let mut want: Vec<u16> = m.keys().copied().collect();
                    want.sort_unstable();
                    prop_assert_eq!(seen, want);
                    // splitmix64: every residue comes up, so `random` ends.
                    let mut r = mid_move as u64;
                    let e = t.random(|n| {
                        r = r.wrapping_add(0x9e37_79b9_7f4a_7c15);
                        let mut z = r;
                        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                        ((z ^ (z >> 31)) % n as u64) as usize
                    });
                    prop_assert_eq!(e.is_some(), !m.is_empty());
                    let mut run = Vec::new();
                    t.visit_run(mid_move * 7919, t.bucket_count(), |e| {
                        run.push(e.1);
                        true
                    });
                    prop_assert_eq!(run.len(), m.len());
                    prop_assert!(e.is_none_or(|e| m.contains_key(&number(&e.0))));
                    let c = t.clone();
                    prop_assert!(!c.is_moving());
                    prop_assert_eq!(c.len(), m.len());
                    for (k, v) in &m {
                        prop_assert_eq!(c.get(&key(*k)).map(|e| e.1), Some(*v));
                    }
                }
            }
            for (k, v) in &m {
                prop_assert_eq!(t.get(&key(*k)).map(|e| e.1), Some(*v));
            }
            prop_assert_eq!(t.iter().count(), m.len());
            t.clear();
            prop_assert!(t.is_empty() && !t.is_moving() && t.bucket_count() == 0);
        }

        /// SCAN's guarantee with moves in flight between and during the
        /// walk's steps: every key present for the whole walk is returned,
        /// and nothing that was never inserted is.
        #[test]
        fn scan_returns_every_stable_key_while_moving(
            stable in 1u16..400,
            churn in proptest::collection::vec(move_op(), 0..400),
            per_step in 1usize..6,
            sweep in any::<bool>(),
        ) {
            let mut t = Table::new();
            let mut m = HashMap::new();
            for k in 0..stable {
                t.insert(E(format!("s{k}").into_bytes(), 0));
            }
            let mut seen = HashSet::new();
            let mut cursor = 0;
            let mut churn = churn.into_iter();
            let mut steps_mid_move = 0;
            loop {
                steps_mid_move += usize::from(t.is_moving());
                let mut visit = |e: &E| {
                    seen.insert(e.0.clone());
                };
                cursor = if sweep {
                    // Sweeping nothing must walk the same way.
                    t.sweep_bucket(cursor, |e| { visit(e); false }, |_| {})
                } else {
                    t.scan_bucket(cursor, visit)
                };
                for _ in 0..per_step {
                    if let Some(op) = churn.next() {
                        apply(&mut t, &mut m, usize::from(stable), &op)?;
                    }
                }
                if cursor == 0 { break; }
            }
            check_layout(&t)?;
            for k in 0..stable {
                let name = format!("s{k}").into_bytes();
                prop_assert!(seen.contains(&name), "s{} missed ({} mid-move)", k, steps_mid_move);
            }
            for s in &seen {
                prop_assert!(s[0] == b's' || s[0] == b'k');
            }
        }
    }

    /// A growth's move always ends before the next growth is due: every
    /// mutating call moves at least one old bucket, and a doubling from n
    /// buckets needs n more inserts (the last of which steps before it
    /// grows, so at most one bucket is left before it).
    #[test]
    fn a_growth_never_waits_for_an_unfinished_move() {
        let mut t = Table::new();
        let mut mid_move = 0;
        for k in 0..20_000u32 {
            let due = t.len() * 4 >= t.buckets.len() * 4;
            if let Some(m) = t.moving.as_ref().filter(|_| due) {
                assert!(m.old.len() - m.next <= 1, "growth due mid-move at {k}");
            }
            mid_move += usize::from(t.is_moving());
            t.insert(E(format!("g{k}").into_bytes(), k));
        }
        assert!(mid_move > 1000);
        for k in 0..20_000u32 {
            assert_eq!(t.get(format!("g{k}").as_bytes()).map(|e| e.1), Some(k));
        }
    }

    /// A shrink moves incrementally too, and a growth due while it is in
    /// flight finishes it first.
    #[test]
    fn a_shrink_moves_incrementally_and_a_growth_finishes_it() {
        let mut t = Table::new();
        for k in 0..4096u32 {
            t.insert(E(format!("g{k}").into_bytes(), k));
        }
        while t.is_moving() {
            t.get_mut(b"g0");
        }
        let big = t.buckets.len();
        let mut k = 0;
        while !t.is_moving() {
            t.remove(format!("g{k}").as_bytes());
            k += 1;
        }
        assert!(t.buckets.len() < big);
        assert!(t.bucket_count() > big);
        let left = t.len();
        // Refill until a growth is due: the shrink's move must be done.
        let mut fresh = 100_000u32;
        while t.buckets.len() < big / 4 {
            t.insert(E(format!("g{fresh}").into_bytes(), fresh));
            fresh += 1;
        }
        assert_eq!(t.len(), left + (fresh - 100_000) as usize);
        for k in k..4096u32 {
            assert_eq!(t.get(format!("g{k}").as_bytes()).map(|e| e.1), Some(k));
        }
    }

    #[test]
    fn zeroed_bucket_arrays_are_empty() {
        for size in [1, 4, 1 << 16] {
            let b = empty_buckets::<Box<Node<E>>>(size);
            assert_eq!((b.len(), b.capacity()), (size, size));
            assert!(b.iter().all(Option::is_none));
        }
        assert!(empty_buckets::<Box<Node<E>>>(0).is_empty());
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
