use crate::shard::Shard;
use damselfly_core::slot::key_shard;
use parking_lot::{Mutex, MutexGuard};
use smallvec::SmallVec;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

/// All shards. Shard count is a power of two, at most 16384 (one per slot).
pub struct Keyspace {
    shards: Box<[Mutex<Shard>]>,
    dbnum: usize,
    /// Whether the periodic active-expiry cycle runs (DEBUG SET-ACTIVE-EXPIRE).
    active_expire: AtomicBool,
    /// Eviction candidates kept between rounds.
    pub(crate) evict_pool: crate::evict::Pool,
}

/// The shards a command holds, sorted by index.
pub struct Locked<'a> {
    guards: SmallVec<[(usize, MutexGuard<'a, Shard>); 2]>,
}

impl Keyspace {
    pub fn new(shards: usize, dbnum: usize) -> Keyspace {
        assert!(shards.is_power_of_two() && shards <= 16384);
        Keyspace {
            shards: (0..shards).map(|_| Mutex::new(Shard::new(dbnum))).collect(),
            dbnum,
            active_expire: AtomicBool::new(true),
            evict_pool: Default::default(),
        }
    }

    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    pub fn dbnum(&self) -> usize {
        self.dbnum
    }

    /// Sends every shard's write-door events to `events` (set once at start-up).
    pub fn set_events(&self, events: std::sync::Arc<dyn crate::shard::Events>) {
        for s in self.shards.iter() {
            s.lock().events = Some(events.clone());
        }
    }

    /// Turns the active-expiry cycle on or off (lazy expiry always runs).
    pub fn set_active_expire(&self, on: bool) {
        self.active_expire.store(on, Relaxed);
    }

    pub fn active_expire(&self) -> bool {
        self.active_expire.load(Relaxed)
    }

    pub fn shard_of(&self, key: &[u8]) -> usize {
        key_shard(key, self.shards.len())
    }

    /// Locks one shard. Every lock path goes through here (or
    /// `settle`): a snapshot still owed this shard is paid first.
    pub fn lock_one(&self, shard: usize) -> MutexGuard<'_, Shard> {
        settle(shard, self.shards[shard].lock())
    }

    /// Locks one shard for a look that changes nothing a snapshot keeps
    /// (reading, counting, watch bookkeeping, removing keys whose expiry
    /// has passed): a snapshot still owed the shard stays owed, so walks
    /// over the whole keyspace (INFO, SCAN, active expiry) never end up
    /// writing the snapshot themselves.
    pub fn peek(&self, shard: usize) -> MutexGuard<'_, Shard> {
        self.shards[shard].lock()
    }

    /// The shard's lock if it is free now (background work that can skip
    /// a busy shard, such as active expiry while a script holds them all).
    /// Like `peek`, it leaves a snapshot's debt unpaid: only for looks
    /// that change nothing a snapshot keeps.
    pub fn try_lock_one(&self, shard: usize) -> Option<MutexGuard<'_, Shard>> {
        self.shards[shard].try_lock()
    }

    /// Locks the given shards in ascending order (duplicates allowed).
    pub fn lock(&self, shards: &mut SmallVec<[usize; 4]>) -> Locked<'_> {
        shards.sort_unstable();
        shards.dedup();
        Locked {
            guards: shards.iter().map(|&i| (i, self.lock_one(i))).collect(),
        }
    }

    /// Like `lock`, but a shard busy for a while makes it ask `abort`;
    /// on true everything taken is released and None returned (a client
    /// waiting behind a runaway script gets BUSY instead of hanging).
    pub fn lock_or_abort(
        &self,
        shards: &mut SmallVec<[usize; 4]>,
        abort: impl Fn() -> bool,
    ) -> Option<Locked<'_>> {
        shards.sort_unstable();
        shards.dedup();
        let mut guards = SmallVec::with_capacity(shards.len());
        for &i in shards.iter() {
            guards.push((i, self.wait_lock(i, &abort)?));
        }
        Some(Locked { guards })
    }

    /// `lock_or_abort` for a single shard.
    pub fn lock_single_or_abort(&self, i: usize, abort: impl Fn() -> bool) -> Option<Locked<'_>> {
        let mut guards = SmallVec::new();
        guards.push((i, self.wait_lock(i, &abort)?));
        Some(Locked { guards })
    }

    /// `lock_all`, giving up as `lock_or_abort` does.
    pub fn lock_all_or_abort(&self, abort: impl Fn() -> bool) -> Option<Locked<'_>> {
        let mut guards = SmallVec::with_capacity(self.shards.len());
        for i in 0..self.shards.len() {
            guards.push((i, self.wait_lock(i, &abort)?));
        }
        Some(Locked { guards })
    }

    fn wait_lock(&self, i: usize, abort: &impl Fn() -> bool) -> Option<MutexGuard<'_, Shard>> {
        loop {
            if let Some(g) = self.shards[i].try_lock_for(std::time::Duration::from_millis(2)) {
                return Some(settle(i, g));
            }
            if abort() {
                return None;
            }
        }
    }

    pub fn lock_single(&self, shard: usize) -> Locked<'_> {
        let mut guards = SmallVec::new();
        guards.push((shard, self.lock_one(shard)));
        Locked { guards }
    }

    pub fn lock_all(&self) -> Locked<'_> {
        Locked {
            guards: self
                .shards
                .iter()
                .enumerate()
                .map(|(i, m)| (i, settle(i, m.lock())))
                .collect(),
        }
    }

    /// Adds shard `idx` to `locked` without breaking the ascending-order
    /// rule: above every held shard it is simply locked; otherwise it is
    /// tried without blocking, and if busy, everything is released and the
    /// union relocked in order. Returns false when the locks were released
    /// in between (the caller must re-check what it read).
    pub fn add_lock<'a>(&'a self, locked: &mut Locked<'a>, idx: usize) -> bool {
        if locked.holds(idx) {
            return true;
        }
        let above = locked.guards.last().is_none_or(|(i, _)| *i < idx);
        if above {
            locked.guards.push((idx, self.lock_one(idx)));
            return true;
        }
        if let Some(g) = self.shards[idx].try_lock() {
            let g = settle(idx, g);
            let pos = locked.guards.partition_point(|(i, _)| *i < idx);
            locked.guards.insert(pos, (idx, g));
            return true;
        }
        let mut want: SmallVec<[usize; 4]> = locked.guards.iter().map(|(i, _)| *i).collect();
        want.push(idx);
        locked.guards.clear();
        *locked = self.lock(&mut want);
        false
    }

    pub fn lock_none(&self) -> Locked<'_> {
        Locked {
            guards: SmallVec::new(),
        }
    }
}

/// Hands a freshly locked shard to the snapshot still owed it, before
/// anyone can change it.
fn settle(index: usize, mut g: MutexGuard<'_, Shard>) -> MutexGuard<'_, Shard> {
    if let Some(s) = g.snapshot.take() {
        s.save_shard(index, &g);
    }
    g
}

impl<'a> Locked<'a> {
    pub fn is_empty(&self) -> bool {
        self.guards.is_empty()
    }

    pub fn holds(&self, shard: usize) -> bool {
        self.guards
            .binary_search_by_key(&shard, |(i, _)| *i)
            .is_ok()
    }

    /// The index of the only held shard, when exactly one is held.
    pub fn single_index(&self) -> Option<usize> {
        match self.guards.as_slice() {
            [(i, _)] => Some(*i),
            _ => None,
        }
    }

    /// The held shard `shard`, if held.
    pub fn get(&mut self, shard: usize) -> Option<&mut Shard> {
        let pos = self.guards.binary_search_by_key(&shard, |(i, _)| *i).ok()?;
        Some(&mut self.guards[pos].1)
    }

    /// The held shards with their indexes, in ascending order.
    pub fn iter_indexed_mut(&mut self) -> impl Iterator<Item = (usize, &mut Shard)> + use<'_, 'a> {
        self.guards.iter_mut().map(|(i, g)| (*i, &mut **g))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Shard> + use<'_, 'a> {
        self.guards.iter_mut().map(|(_, g)| &mut **g)
    }
}
