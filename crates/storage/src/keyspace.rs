use crate::shard::Shard;
use damselfly_core::slot::key_shard;
use parking_lot::{Mutex, MutexGuard};
use smallvec::SmallVec;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

/// The bits of a key's table hash a prefetch cookie keeps.
const PREFETCH_HASH: u64 = (1 << 39) - 1;
/// A prefetch cookie's shard index (at most 16384 shards).
const PREFETCH_SHARD: u64 = (1 << 14) - 1;

/// All shards. Shard count is a power of two, at most 16384 (one per slot).
pub struct Keyspace {
    shards: Box<[Mutex<Shard>]>,
    dbnum: usize,
    /// Whether the periodic active-expiry cycle runs (DEBUG SET-ACTIVE-EXPIRE).
    active_expire: AtomicBool,
    /// Eviction candidates kept between rounds.
    pub(crate) evict_pool: crate::evict::Pool,
    /// Set while the running script waits for a shard below one it holds
    /// (`escalate`): every other locker waiting for a shard while holding
    /// some lets go of them until it clears.
    escalating: AtomicBool,
    /// Escalations so far (the VM holder learns from a change that its
    /// script needs every shard).
    escalations: AtomicU64,
}

/// A prefetch cookie's shard, db and key hash.
fn prefetch_fields(cookie: u64) -> (usize, usize, u64) {
    let shard = (cookie & PREFETCH_SHARD) as usize;
    let db = ((cookie >> 16) & 0xFF) as usize;
    (shard, db, (cookie >> 24) & PREFETCH_HASH)
}

/// How a wait for one shard ended.
enum Wait<'a> {
    Got(MutexGuard<'a, Shard>),
    /// `abort` said to give up.
    Abort,
    /// A script is escalating: release what is held and start again.
    BackOff,
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
            escalating: AtomicBool::new(false),
            escalations: AtomicU64::new(0),
        }
    }

    /// Where the two bits of a prefetch cookie that are left to its
    /// caller start (the caller's note of what to warm after the entry).
    pub const PREFETCH_TAG_SHIFT: u32 = 14;

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

    /// First step of warming the cache for a command about to run on a key
    /// in `db` (pipelined requests are warmed together, so their memory
    /// loads overlap): starts loading the key's bucket slot. `shard` and
    /// `hash` are the key's (`shard_of`, `hash_key`). Returns what
    /// `prefetch_entry` takes next (0: nothing). A busy shard is skipped:
    /// this never waits and changes nothing.
    pub fn prefetch_bucket(&self, db: usize, shard: usize, hash: u64) -> u64 {
        if shard as u64 > PREFETCH_SHARD || db >= 1 << 8 {
            return 0;
        }
        let Some(s) = self.shards.get(shard).and_then(Mutex::try_lock) else {
            return 0;
        };
        s.prefetch(db, hash, false);
        // 39 bits of the hash are enough for any table's bucket index.
        1 << 63 | (hash & PREFETCH_HASH) << 24 | (db as u64) << 16 | shard as u64
    }

    /// Second step: starts loading the first entry in the bucket that
    /// `prefetch_bucket` warmed (its cookie).
    pub fn prefetch_entry(&self, cookie: u64) {
        if cookie == 0 {
            return;
        }
        let (shard, db, hash) = prefetch_fields(cookie);
        if let Some(s) = self.shards.get(shard).and_then(Mutex::try_lock) {
            s.prefetch(db, hash, true);
        }
    }

    /// Later steps, for a command on a member of the collection at `key`
    /// (whose entry `prefetch_entry` warmed): at `depth` 0 the member's
    /// bucket slot in the collection's member table, then (each once the
    /// step before is cached) its chain's first node, and for a hash the
    /// field's value. Never waits, changes nothing. False when there is
    /// nothing more to warm (no such key, a packed collection, a busy
    /// shard), so the steps after this one are skipped.
    pub fn prefetch_member(&self, cookie: u64, key: &[u8], member: &[u8], depth: u8) -> bool {
        if cookie == 0 {
            return false;
        }
        let (shard, db, hash) = prefetch_fields(cookie);
        self.shards
            .get(shard)
            .and_then(Mutex::try_lock)
            .is_some_and(|s| s.prefetch_member(db, hash, key, member, depth))
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
        self.acquire_sorted(shards, &|| false, true)
            .unwrap_or_else(|| self.lock_none())
    }

    /// Like `lock`, but a shard busy for a while makes it ask `abort`;
    /// on true everything taken is released and None returned (a client
    /// waiting behind a runaway script gets BUSY instead of hanging).
    pub fn lock_or_abort(
        &self,
        shards: &mut SmallVec<[usize; 4]>,
        abort: impl Fn() -> bool,
    ) -> Option<Locked<'_>> {
        self.acquire_sorted(shards, &abort, true)
    }

    /// `lock_or_abort` for a command that only reads (table flag
    /// `readonly`): like `peek`, it leaves a snapshot's debt to the
    /// snapshot's own thread, so reads never write a shard to the file in
    /// a client's latency. A read may still lazily delete an expired key,
    /// which a snapshot may miss anyway (see `peek`).
    pub fn read_or_abort(
        &self,
        shards: &mut SmallVec<[usize; 4]>,
        abort: impl Fn() -> bool,
    ) -> Option<Locked<'_>> {
        self.acquire_sorted(shards, &abort, false)
    }

    /// `acquire` for a list of shards in any order, with duplicates.
    fn acquire_sorted(
        &self,
        shards: &mut SmallVec<[usize; 4]>,
        abort: &dyn Fn() -> bool,
        pay: bool,
    ) -> Option<Locked<'_>> {
        shards.sort_unstable();
        shards.dedup();
        let all: &[usize] = shards;
        self.acquire(all.iter().copied(), abort, pay)
    }

    /// `lock_or_abort` for a single shard.
    pub fn lock_single_or_abort(&self, i: usize, abort: impl Fn() -> bool) -> Option<Locked<'_>> {
        self.acquire_one(i, &abort, true)
    }

    /// `acquire` for one shard: a free shard is taken at once, without
    /// the deadline and retry loop (one shard is never held while
    /// waiting, so there is nothing to back off from).
    fn acquire_one(&self, i: usize, abort: &dyn Fn() -> bool, pay: bool) -> Option<Locked<'_>> {
        match self.shards[i].try_lock() {
            Some(g) => {
                let mut guards = SmallVec::new();
                guards.push((i, if pay { settle(i, g) } else { g }));
                Some(Locked { guards })
            }
            None => self.acquire(std::iter::once(i), abort, pay),
        }
    }

    /// `lock_single_or_abort` for a command that changes no key of the
    /// shard but `key` (in any DB): a snapshot owed the shard is paid
    /// only that key, so a write during BGSAVE costs one key's encoding,
    /// not the whole shard's.
    pub fn lock_key_or_abort(
        &self,
        i: usize,
        key: &[u8],
        abort: impl Fn() -> bool,
    ) -> Option<Locked<'_>> {
        let locked = self.acquire_one(i, &abort, false)?;
        if let Some((_, g)) = locked.guards.first() {
            if let Some(s) = g.snapshot.as_ref() {
                s.save_key(i, g, key);
            }
        }
        Some(locked)
    }

    /// Pays a snapshot owed held shard `i` for `key` (see
    /// `lock_key_or_abort`), before a command changes a key it did not
    /// lock by name (a served BLMOVE's destination).
    pub fn touch(&self, locked: &Locked<'_>, i: usize, key: &[u8]) {
        if let Some((_, g)) = locked.guards.iter().find(|(j, _)| *j == i) {
            if let Some(s) = g.snapshot.as_ref() {
                s.save_key(i, g, key);
            }
        }
    }

    /// `read_or_abort` for a single shard.
    pub fn read_single_or_abort(&self, i: usize, abort: impl Fn() -> bool) -> Option<Locked<'_>> {
        self.acquire_one(i, &abort, false)
    }

    /// `lock_all`, giving up as `lock_or_abort` does.
    pub fn lock_all_or_abort(&self, abort: impl Fn() -> bool) -> Option<Locked<'_>> {
        self.acquire(0..self.shards.len(), &abort, true)
    }

    /// Locks `shards` (ascending, distinct) one after the other. While a
    /// script escalates, a wait with shards in hand lets go of them all,
    /// waits for the escalation to end and starts over: that is what
    /// makes `escalate` deadlock-free. `pay`: settle what a snapshot is
    /// owed (false only for reads).
    fn acquire(
        &self,
        shards: impl Iterator<Item = usize> + Clone,
        abort: &dyn Fn() -> bool,
        pay: bool,
    ) -> Option<Locked<'_>> {
        'again: loop {
            let mut guards = SmallVec::new();
            for i in shards.clone() {
                match self.wait_lock(i, !guards.is_empty(), abort, pay) {
                    Wait::Got(g) => guards.push((i, g)),
                    Wait::Abort => return None,
                    Wait::BackOff => {
                        drop(guards);
                        self.wait_escalation();
                        continue 'again;
                    }
                }
            }
            return Some(Locked { guards });
        }
    }

    /// Waits for shard `i`, asking `abort` every 2 ms; a waiter holding
    /// other shards backs off while a script escalates.
    fn wait_lock(&self, i: usize, holding: bool, abort: &dyn Fn() -> bool, pay: bool) -> Wait<'_> {
        loop {
            if let Some(g) = self.shards[i].try_lock_for(std::time::Duration::from_millis(2)) {
                return Wait::Got(if pay { settle(i, g) } else { g });
            }
            if holding && self.escalating.load(Relaxed) {
                return Wait::BackOff;
            }
            if abort() {
                return Wait::Abort;
            }
        }
    }

    fn wait_escalation(&self) {
        while self.escalating.load(Relaxed) {
            std::thread::sleep(std::time::Duration::from_micros(100));
        }
    }

    pub fn lock_single(&self, shard: usize) -> Locked<'_> {
        let mut guards = SmallVec::new();
        guards.push((shard, self.lock_one(shard)));
        Locked { guards }
    }

    pub fn lock_all(&self) -> Locked<'_> {
        self.acquire(0..self.shards.len(), &|| false, true)
            .unwrap_or_else(|| self.lock_none())
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
            match self.wait_lock(idx, !locked.guards.is_empty(), &|| false, true) {
                Wait::Got(g) => {
                    locked.guards.push((idx, g));
                    return true;
                }
                Wait::Abort | Wait::BackOff => {}
            }
        } else if let Some(g) = self.shards[idx].try_lock() {
            let g = settle(idx, g);
            let pos = locked.guards.partition_point(|(i, _)| *i < idx);
            locked.guards.insert(pos, (idx, g));
            return true;
        }
        let mut want: SmallVec<[usize; 4]> = locked.guards.iter().map(|(i, _)| *i).collect();
        want.push(idx);
        locked.guards.clear();
        self.wait_escalation();
        *locked = self.lock(&mut want);
        false
    }

    /// Adds shard `idx` to the running script's `locked`. Above every held
    /// shard it waits (a holder of a higher shard never waits for a lower
    /// one, nor for the Lua VM the script holds); below, it tries without
    /// waiting. When that fails: with `may_restart` it gives up (false) so
    /// the script can start again holding every shard; otherwise it
    /// escalates: it raises `escalating` and waits. Every other locker
    /// that waits while holding shards sees the flag within 2 ms and
    /// releases them all (`acquire`, `add_lock`), and no holder of a shard
    /// waits for anything else the script holds, so the wait ends.
    /// Only the holder of the Lua VM calls this, so one escalation at most
    /// is under way.
    pub fn script_add<'a>(
        &'a self,
        locked: &mut Locked<'a>,
        idx: usize,
        may_restart: bool,
    ) -> bool {
        if locked.holds(idx) {
            return true;
        }
        let pos = locked.guards.partition_point(|(i, _)| *i < idx);
        let g = if pos == locked.guards.len() {
            self.lock_one(idx)
        } else if let Some(g) = self.shards[idx].try_lock() {
            settle(idx, g)
        } else if may_restart {
            return false;
        } else {
            self.escalations.fetch_add(1, Relaxed);
            self.escalating.store(true, Relaxed);
            let g = self.lock_one(idx);
            self.escalating.store(false, Relaxed);
            g
        };
        locked.guards.insert(pos, (idx, g));
        true
    }

    /// How many times a script has escalated (`script_add`).
    pub fn escalations(&self) -> u64 {
        self.escalations.load(Relaxed)
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

    pub fn len(&self) -> usize {
        self.guards.len()
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn shards(list: &[usize]) -> SmallVec<[usize; 4]> {
        SmallVec::from_slice(list)
    }

    /// Runs `f` on another thread and returns once that thread holds
    /// shard 5.
    fn other_holding_5(
        ks: &Arc<Keyspace>,
        f: impl FnOnce(&Keyspace) + Send + 'static,
    ) -> std::thread::JoinHandle<()> {
        let theirs = ks.clone();
        let t = std::thread::spawn(move || f(&theirs));
        while ks.try_lock_one(5).is_some() {
            std::thread::yield_now();
        }
        t
    }

    #[test]
    fn script_below_a_busy_shard_gives_up_when_it_may_restart() {
        let ks = Arc::new(Keyspace::new(16, 1));
        let mut script = ks.lock(&mut shards(&[7]));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let other = other_holding_5(&ks, move |ks| {
            let held = ks.lock(&mut shards(&[5]));
            let _ = rx.recv();
            drop(held);
        });
        assert!(!ks.script_add(&mut script, 5, true));
        assert!(!script.holds(5) && script.holds(7));
        // Above every held shard it simply waits.
        assert!(ks.script_add(&mut script, 9, true));
        drop(tx);
        other.join().expect("holder");
    }

    /// The deadlock escalation must break: another locker holds 5 and
    /// waits for 7, which the script holds while it needs 5.
    #[test]
    fn escalation_makes_a_waiting_locker_let_go() {
        let ks = Arc::new(Keyspace::new(16, 1));
        let mut script = ks.lock(&mut shards(&[7]));
        let other = other_holding_5(&ks, |ks| {
            let both = ks.lock(&mut shards(&[5, 7]));
            assert!(both.holds(5) && both.holds(7));
        });
        assert!(ks.script_add(&mut script, 5, false));
        assert!(script.holds(5) && script.holds(7));
        assert_eq!(ks.escalations(), 1);
        drop(script);
        other
            .join()
            .expect("the other locker finishes after the script");
    }
}
