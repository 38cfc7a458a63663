use crate::entry::{Entry, Source};
use crate::value::{Value, ValueRef};
use damselfly_core::{CompactBytes, RawTable};
use std::collections::HashMap;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;

/// One client's WATCH on one key. `dirty` is shared by all the client's
/// watches: any touch of any of them sets it, and EXEC then fails.
pub struct Watch {
    pub client: u64,
    pub dirty: Arc<AtomicBool>,
    /// The key existed but had logically expired when it was watched: its
    /// removal by expiry is no change (Redis 7.0's rule).
    pub expired: bool,
}

/// Receives every event of the write door, under the shard's lock:
/// keyspace notifications and client tracking hang off it. Implementations
/// must not lock shards (they are called with one held).
pub trait Events: Send + Sync {
    /// `event` is the name Redis notifies (`set`, `lpush`, `expired`...),
    /// plus `new` for a key created and `keymiss` for a read that missed.
    fn event(&self, db: usize, key: &[u8], event: &'static str);

    /// Whether `new` events are wanted: `put` copies the key only then.
    fn wants_new(&self) -> bool {
        true
    }
}

/// One shard's slice of one logical DB.
#[derive(Default)]
pub struct Db {
    pub table: RawTable<Entry>,
    /// Keys with an expiry time (INFO keyspace `expires=`).
    pub volatile: usize,
    /// Where the active expiry cycle continues.
    pub expire_cursor: u64,
}

impl Db {
    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }
}

/// Counters kept under the shard lock and summed when INFO asks.
#[derive(Debug, Default, Clone, Copy)]
pub struct ShardStats {
    pub expired_keys: u64,
    pub evicted_keys: u64,
    pub expired_stale_perc_acc: u64,
    pub keyspace_hits: u64,
    pub keyspace_misses: u64,
    /// Changes since the last save (`rdb_changes_since_last_save`).
    pub dirty: u64,
}

/// A point-in-time snapshot in progress that has not yet written this
/// shard. Whoever locks the shard next hands it over before doing anything
/// else (`Keyspace`'s lock functions), so the snapshot sees the shard as it
/// was when the snapshot began.
pub trait ShardSnapshot: Send + Sync {
    fn save_shard(&self, index: usize, shard: &Shard);
    /// Writes `key` as it is now, in every DB of the shard that holds it,
    /// unless done already, and marks it done so `save_shard` skips it (a
    /// key absent now is marked too: what a command creates after this
    /// was not there when the snapshot began). The shard stays owed. For
    /// a command that changes no other key of the shard.
    fn save_key(&self, index: usize, shard: &Shard, key: &[u8]);
}

/// A shard: its slice of every logical DB, behind one lock.
pub struct Shard {
    /// The snapshot still owed this shard's contents, if any.
    pub snapshot: Option<std::sync::Arc<dyn ShardSnapshot>>,
    pub dbs: Vec<Db>,
    pub stats: ShardStats,
    /// Clients blocked on keys of this shard.
    pub waiters: crate::waiters::Waiters,
    /// WATCHed keys of this shard, per (db, key).
    pub watched: HashMap<(usize, CompactBytes), Vec<Watch>>,
    /// Where the write door's events go (none in unit tests).
    pub events: Option<Arc<dyn Events>>,
    /// On a replica, keys its own clients (a writable replica's) gave a
    /// TTL: nothing from the master will expire them, so `expire_local`
    /// does, as Redis's replica does for such keys.
    pub local_volatile: std::collections::HashSet<(usize, CompactBytes)>,
}

impl Shard {
    pub fn new(dbnum: usize) -> Shard {
        Shard {
            snapshot: None,
            dbs: (0..dbnum).map(|_| Db::default()).collect(),
            stats: ShardStats::default(),
            waiters: Default::default(),
            watched: HashMap::new(),
            events: None,
            local_volatile: Default::default(),
        }
    }

    /// The write door: every change to a key is reported here, after it is
    /// made. It feeds the dirty counter now; WATCH, keyspace notifications and
    /// replication hang off this same call.
    /// It also marks the key ready for clients blocked on it.
    pub fn written(&mut self, db: usize, key: &[u8], event: &'static str) {
        if crate::is_replica() && !crate::from_master() {
            self.note_local_ttl(db, key);
        }
        self.stats.dirty += 1;
        self.emit(db, key, event);
        self.waiters.mark(db, key);
        if !self.watched.is_empty() {
            self.touch_watched(db, key);
        }
    }

    fn note_local_ttl(&mut self, db: usize, key: &[u8]) {
        let ttl = self
            .dbs
            .get(db)
            .and_then(|d| d.table.get(key))
            .is_some_and(|e| e.expire_at() != 0);
        if ttl {
            self.local_volatile.insert((db, CompactBytes::new(key)));
        }
    }

    /// On a replica: removes the keys of `local_volatile` whose TTL passed
    /// (and forgets those gone or persisted meanwhile). Returns how many
    /// expired.
    pub fn expire_local(&mut self, now: u64) -> usize {
        let mut due = Vec::new();
        self.local_volatile.retain(|(db, key)| {
            let at = self
                .dbs
                .get(*db)
                .and_then(|d| d.table.get(key.as_ref()))
                .map_or(0, |e| e.expire_at());
            if at != 0 && at <= now {
                due.push((*db, key.clone()));
            }
            at != 0 && at > now
        });
        for (db, key) in &due {
            if self.remove_by_server(*db, key.as_ref(), "expired") {
                self.stats.expired_keys += 1;
            }
        }
        due.len()
    }

    /// A notification only, for a change already reported to `written`
    /// (SET's `expire` after its `set`, a pop's `del`).
    pub fn notify(&self, db: usize, key: &[u8], event: &'static str) {
        self.emit(db, key, event);
    }

    fn emit(&self, db: usize, key: &[u8], event: &'static str) {
        if let Some(ev) = &self.events {
            ev.event(db, key, event);
        }
    }

    /// Marks the watchers of (db, key) dirty. A watch taken on an already
    /// expired key is not dirtied by that key's removal.
    fn touch_watched(&mut self, db: usize, key: &[u8]) {
        let Some(list) = self.watched.get_mut(&(db, CompactBytes::new(key))) else {
            return;
        };
        let present = self.dbs[db].table.get(key).is_some();
        for w in list.iter_mut() {
            if w.expired && !present {
                w.expired = false;
                continue;
            }
            w.dirty.store(true, Relaxed);
        }
    }

    /// WATCH: registers `client` on (db, key) unless it already watches it.
    pub fn watch(&mut self, db: usize, key: &[u8], client: u64, dirty: &Arc<AtomicBool>, now: u64) {
        let expired = self.dbs[db]
            .table
            .get(key)
            .is_some_and(|e| e.is_expired(now));
        let list = self
            .watched
            .entry((db, CompactBytes::new(key)))
            .or_default();
        if list.iter().any(|w| w.client == client) {
            return;
        }
        list.push(Watch {
            client,
            dirty: dirty.clone(),
            expired,
        });
    }

    /// Removes `client`'s watch on (db, key).
    pub fn unwatch(&mut self, db: usize, key: &[u8], client: u64) {
        let k = (db, CompactBytes::new(key));
        if let Some(list) = self.watched.get_mut(&k) {
            list.retain(|w| w.client != client);
            if list.is_empty() {
                self.watched.remove(&k);
            }
        }
    }

    /// EXEC's check: the key was live when `client` watched it and has
    /// logically expired since (even if nobody has removed it yet).
    pub fn watched_expired(&self, db: usize, key: &[u8], client: u64, now: u64) -> bool {
        let Some(list) = self.watched.get(&(db, CompactBytes::new(key))) else {
            return false;
        };
        list.iter().any(|w| {
            w.client == client
                && !w.expired
                && self.dbs[db]
                    .table
                    .get(key)
                    .is_some_and(|e| e.is_expired(now))
        })
    }

    /// FLUSHDB/FLUSHALL (`replaced_with` None) or SWAPDB (`Some(other)`):
    /// before the contents of `db` go away, dirties the watchers of its
    /// keys that logically change. Call before emptying or swapping.
    pub fn touch_watched_db(&mut self, db: usize, replaced_with: Option<usize>, now: u64) {
        if self.watched.is_empty() {
            return;
        }
        let dbs = &self.dbs;
        for ((wdb, key), list) in self.watched.iter_mut() {
            if *wdb != db {
                continue;
            }
            let in_emptied = dbs[db].table.get(&key[..]).is_some();
            let replacement = replaced_with.and_then(|r| dbs[r].table.get(&key[..]));
            if !in_emptied && replacement.is_none() {
                continue;
            }
            let replacement_expired = replacement.is_some_and(|e| e.is_expired(now));
            for w in list.iter_mut() {
                if w.expired {
                    if replacement.is_none() {
                        w.expired = false;
                        continue;
                    }
                    if replacement_expired {
                        continue;
                    }
                } else if !in_emptied && replacement_expired {
                    w.expired = true;
                    continue;
                }
                w.dirty.store(true, Relaxed);
            }
        }
    }

    /// The live entry at `key`: an expired one is removed first (while
    /// CLIENT PAUSE holds writes, or on a replica, it stays but reads as
    /// gone; to the master's own commands it is still there). `count`
    /// counts a hit or a miss, `notify` reports a miss as `keymiss`.
    fn live(
        &mut self,
        db: usize,
        key: &[u8],
        now: u64,
        count: bool,
        notify: bool,
    ) -> Option<&mut Entry> {
        let keep =
            |e: &Entry| !e.is_expired(now) || (!crate::expiry_deletes(now) && crate::from_master());
        let expired = match self.dbs[db].table.get_mut_if(key, keep) {
            Ok(e) => {
                let e = NonNull::from(e);
                if count {
                    self.stats.keyspace_hits += 1;
                }
                // SAFETY: `e` was borrowed mutably from this shard's table
                // just above and nothing has touched the table since; the
                // returned reference borrows all of `self`, so nothing can
                // while it lives. (A raw pointer only because the borrow
                // checker cannot see that the other arms end the borrow.)
                return Some(unsafe { &mut *e.as_ptr() });
            }
            Err(present) => present,
        };
        if expired && crate::expiry_deletes(now) {
            self.stats.expired_keys += 1;
            self.remove_by_server(db, key, "expired");
        }
        if count {
            self.stats.keyspace_misses += 1;
        }
        if notify {
            self.emit(db, key, "keymiss");
        }
        None
    }

    /// Removes `key` for maxmemory (counted in `evicted_keys`).
    pub fn remove_evicted(&mut self, db: usize, key: &[u8]) -> bool {
        let gone = self.remove_by_server(db, key, "evicted");
        if gone {
            self.stats.evicted_keys += 1;
        }
        gone
    }

    /// The one path by which the server itself drops a key (expiry,
    /// eviction): removal, then the write door with `event`.
    fn remove_by_server(&mut self, db: usize, key: &[u8], event: &'static str) -> bool {
        if self.remove(db, key).is_none() {
            return false;
        }
        self.written(db, key, event);
        true
    }

    /// Warms the cache for a lookup of the key whose `hash_key` is `hash`
    /// in `db`: its bucket slot, or with `entry` the first entry of that
    /// bucket's chain (read from the slot, which should be cached by then).
    pub fn prefetch(&self, db: usize, hash: u64, entry: bool) {
        let Some(d) = self.dbs.get(db) else {
            return;
        };
        if !entry {
            d.table.prefetch_bucket(hash);
        } else if let Some(e) = d.table.head(hash) {
            damselfly_core::table::prefetch(e.addr());
        }
    }

    /// Warms the cache for a lookup of `member` in the collection at `key`
    /// (whose `hash_key` ends in `hash`), `depth` steps from the
    /// collection (0: the member's bucket slot; see `Hash::prefetch`).
    /// False when there is nothing (more) to warm: no such key, or no
    /// member table in its value.
    pub fn prefetch_member(
        &self,
        db: usize,
        hash: u64,
        key: &[u8],
        member: &[u8],
        depth: u8,
    ) -> bool {
        let Some(e) = self.dbs.get(db).and_then(|d| d.table.get_hashed(hash, key)) else {
            return false;
        };
        match e.value() {
            ValueRef::Hash(h) => h.prefetch(member, depth),
            ValueRef::Set(s) => s.prefetch(member, depth),
            ValueRef::ZSet(z) => z.prefetch(member, depth),
            _ => false,
        }
    }

    /// Looks a key up for reading: expired keys are removed first; hits and
    /// misses are counted and the access time refreshed.
    pub fn get(&mut self, db: usize, key: &[u8], now: u64) -> Option<&mut Entry> {
        let e = self.live(db, key, now, true, true)?;
        e.touch();
        Some(e)
    }

    /// Looks a key up for reading without refreshing its access time (as
    /// Redis's LOOKUP_NOTOUCH): hits and misses are still counted.
    pub fn get_notouch(&mut self, db: usize, key: &[u8], now: u64) -> Option<&mut Entry> {
        self.live(db, key, now, true, true)
    }

    /// `get_notouch` whose miss fires no keymiss event (OBJECT, as Redis's
    /// LOOKUP_NONOTIFY).
    pub fn get_notouch_nonotify(&mut self, db: usize, key: &[u8], now: u64) -> Option<&mut Entry> {
        self.live(db, key, now, true, false)
    }

    /// Exchanges the contents of two logical DBs (SWAPDB); the caller holds
    /// every shard so the swap is atomic across the keyspace.
    pub fn swap_dbs(&mut self, a: usize, b: usize) {
        self.dbs.swap(a, b);
        self.waiters.mark_db(a);
        self.waiters.mark_db(b);
    }

    /// Looks a key up for writing or inspection without touching hit/miss
    /// counters or the access time (as Redis's lookupKeyWrite and NOTOUCH).
    pub fn get_quiet(&mut self, db: usize, key: &[u8], now: u64) -> Option<&mut Entry> {
        self.live(db, key, now, false, false)
    }

    pub fn contains(&mut self, db: usize, key: &[u8], now: u64) -> bool {
        self.get_quiet(db, key, now).is_some()
    }

    /// Stores `entry`, replacing any previous value (and its expiry). A key
    /// that did not exist fires `new`. Under an LFU policy the key keeps its
    /// access counter, as in Redis.
    pub fn put(&mut self, db: usize, mut entry: Entry) -> Option<Entry> {
        if crate::evict::lfu_on() {
            if let Some(old) = self.dbs[db].table.get(entry.key()) {
                entry.set_clock(old.clock());
            }
        }
        let key = self
            .events
            .as_ref()
            .filter(|ev| ev.wants_new())
            .map(|_| CompactBytes::new(entry.key()));
        let d = &mut self.dbs[db];
        let volatile = entry.expire_at() != 0;
        let old = d.table.insert(entry);
        if volatile {
            d.volatile += 1;
        }
        if let Some(o) = &old {
            if o.expire_at() != 0 {
                d.volatile -= 1;
            }
        } else if let Some(k) = key {
            self.emit(db, &k, "new");
        }
        old
    }

    /// Stores the string `bytes` at `key` (SET, MSET), as `put` of
    /// `Entry::from_bytes` would, but a value that keeps its size is
    /// overwritten in place and a new key is allocated once, at its final
    /// size (with its next slot when its bucket is taken).
    pub fn put_string(&mut self, db: usize, key: &[u8], bytes: &[u8], expire_at: u64) {
        let d = &mut self.dbs[db];
        if let Some(e) = d.table.get_mut(key) {
            let had = e.expire_at() != 0;
            if !e.overwrite_string(bytes) {
                self.put(db, Entry::from_bytes(key, bytes, expire_at));
                return;
            }
            e.set_expire_at(expire_at);
            if !crate::evict::lfu_on() {
                e.set_clock(crate::entry::fresh_clock());
            }
            match (had, expire_at != 0) {
                (false, true) => d.volatile += 1,
                (true, false) => d.volatile -= 1,
                _ => {}
            }
            return;
        }
        self.put_new(db, key, Source::Bytes(bytes), expire_at);
    }

    /// Creates `key` holding `value` (a new collection); as `put` if the
    /// key is there after all.
    pub fn put_value(&mut self, db: usize, key: &[u8], value: Value) {
        if self.dbs[db].table.get(key).is_some() {
            self.put(db, Entry::new(key, value, 0));
            return;
        }
        self.put_new(db, key, Source::Value(value), 0);
    }

    /// Inserts a key known to be absent, built at its final size.
    fn put_new(&mut self, db: usize, key: &[u8], src: Source<'_>, expire_at: u64) {
        let d = &mut self.dbs[db];
        d.table
            .insert_new_with(key, |next| Entry::from_source(key, src, expire_at, next));
        if expire_at != 0 {
            d.volatile += 1;
        }
        if self.events.as_ref().is_some_and(|ev| ev.wants_new()) {
            self.emit(db, key, "new");
        }
    }

    pub fn remove(&mut self, db: usize, key: &[u8]) -> Option<Entry> {
        let d = &mut self.dbs[db];
        let e = d.table.remove(key)?;
        if e.expire_at() != 0 {
            d.volatile -= 1;
        }
        Some(e)
    }

    /// Sets or clears (0) the expiry of a present key.
    pub fn set_expire(&mut self, db: usize, key: &[u8], at: u64) -> bool {
        let d = &mut self.dbs[db];
        let Some(e) = d.table.get_mut(key) else {
            return false;
        };
        match (e.expire_at() != 0, at != 0) {
            (false, true) => d.volatile += 1,
            (true, false) => d.volatile -= 1,
            _ => {}
        }
        e.set_expire_at(at);
        true
    }

    /// One step of active expiry over `db`: walks up to `buckets` buckets
    /// from the saved cursor, removing expired keys. Returns (examined
    /// keys, expired keys).
    pub fn expire_step(&mut self, db: usize, buckets: usize, now: u64) -> (usize, usize) {
        let mut examined = 0;
        let mut expired: Vec<Entry> = Vec::new();
        let d = &mut self.dbs[db];
        if d.volatile == 0 {
            return (0, 0);
        }
        let mut cursor = d.expire_cursor;
        for _ in 0..buckets {
            cursor = d.table.sweep_bucket(
                cursor,
                |e| {
                    examined += 1;
                    e.is_expired(now)
                },
                |e| expired.push(e),
            );
            if cursor == 0 {
                break;
            }
        }
        d.expire_cursor = cursor;
        d.volatile -= expired.len();
        let n = expired.len();
        self.stats.expired_keys += n as u64;
        for e in expired {
            self.written(db, e.key(), "expired");
        }
        (examined, n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::ValueRef;

    #[derive(Default)]
    struct Record(parking_lot::Mutex<Vec<String>>);

    impl Events for Record {
        fn event(&self, db: usize, key: &[u8], event: &'static str) {
            let key = String::from_utf8_lossy(key);
            self.0.lock().push(format!("{db}:{key}:{event}"));
        }
    }

    #[test]
    fn the_write_door_reports_every_event() {
        let rec = Arc::new(Record::default());
        let mut s = Shard::new(1);
        s.events = Some(rec.clone());
        s.put(0, Entry::new(b"k", Value::Int(1), 0));
        s.written(0, b"k", "set");
        s.put(0, Entry::new(b"k", Value::Int(2), 10));
        s.written(0, b"k", "set");
        s.notify(0, b"k", "expire");
        assert!(s.get(0, b"k", 11).is_none());
        assert!(s.get(0, b"nope", 11).is_none());
        s.put(0, Entry::new(b"v", Value::Int(1), 5));
        assert_eq!(s.expire_step(0, 16, 6), (1, 1));
        assert_eq!(
            *rec.0.lock(),
            [
                "0:k:new",
                "0:k:set",
                "0:k:set",
                "0:k:expire",
                "0:k:expired",
                "0:k:keymiss",
                "0:nope:keymiss",
                "0:v:new",
                "0:v:expired"
            ]
        );
    }

    #[test]
    fn volatile_counter_follows_every_path() {
        let mut s = Shard::new(2);
        s.put(0, Entry::new(b"a", Value::Int(1), 0));
        s.put(0, Entry::new(b"b", Value::Int(2), 1_000));
        assert_eq!(s.dbs[0].volatile, 1);
        assert!(s.set_expire(0, b"a", 2_000));
        assert_eq!(s.dbs[0].volatile, 2);
        assert!(s.set_expire(0, b"a", 0));
        assert_eq!(s.dbs[0].volatile, 1);
        // Replacing a volatile key with a persistent one.
        s.put(0, Entry::new(b"b", Value::Int(3), 0));
        assert_eq!(s.dbs[0].volatile, 0);
        s.put(0, Entry::new(b"c", Value::Int(3), 500));
        s.swap_dbs(0, 1);
        assert_eq!((s.dbs[0].volatile, s.dbs[1].volatile), (0, 1));
        // Lazy expiry: "now" past the expiry time removes the key.
        assert!(s.get_notouch(1, b"c", 500).is_some());
        assert!(s.get_notouch(1, b"c", 501).is_none());
        assert_eq!(s.dbs[1].volatile, 0);
        assert_eq!(s.stats.expired_keys, 1);
        assert_eq!((s.stats.keyspace_hits, s.stats.keyspace_misses), (1, 1));
        let e = s.remove(1, b"a");
        assert!(e.is_some());
    }

    #[test]
    fn put_string_overwrites_in_place_and_keeps_counts() {
        let rec = Arc::new(Record::default());
        let mut s = Shard::new(1);
        s.events = Some(rec.clone());
        s.put_string(0, b"k", b"12345678", 0);
        assert!(matches!(
            s.get(0, b"k", 1).map(|e| e.value()),
            Some(ValueRef::Int(12345678))
        ));
        // Same payload size, other kind: an integer becomes a string in place.
        s.put_string(0, b"k", b"abcdefg", 50);
        assert_eq!(s.dbs[0].volatile, 1);
        let e = s.get_quiet(0, b"k", 1).unwrap();
        assert_eq!(
            (&e.string_bytes()[..], e.expire_at()),
            (&b"abcdefg"[..], 50)
        );
        // Another size: a new allocation, the TTL cleared.
        s.put_string(0, b"k", &[b'x'; 40], 0);
        assert_eq!(s.dbs[0].volatile, 0);
        assert_eq!(s.get_quiet(0, b"k", 1).unwrap().string_bytes().len(), 40);
        s.put_value(0, b"h", Value::Hash(Box::default()));
        assert_eq!(s.get_quiet(0, b"h", 1).unwrap().type_name(), "hash");
        for i in 0..100u32 {
            s.put_string(
                0,
                format!("n{i}").as_bytes(),
                &i.to_be_bytes(),
                u64::from(i % 2),
            );
        }
        assert_eq!(s.dbs[0].len(), 102);
        assert_eq!(s.dbs[0].volatile, 50);
        assert_eq!(
            rec.0.lock().iter().filter(|e| e.ends_with(":new")).count(),
            102
        );
    }
}
