//! maxmemory eviction: Redis's eight policies, approximated LRU/LFU/TTL by
//! sampling (`maxmemory-samples` keys per round into a small pool of the
//! best candidates seen, kept across rounds), and the LFU counter.
//!
//! Invariants:
//! - An evicted key leaves through `Shard::remove_evicted`, which ends in the
//!   write door with the event `evicted`, as expiry ends with `expired`.
//! - volatile-* policies only ever remove keys that have an expiry time.
//! - Eviction locks one shard at a time and is only run while the caller
//!   holds no shard lock (before a command takes its own).

use crate::entry::Entry;
use crate::keyspace::Keyspace;
use damselfly_core::CompactBytes;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    NoEviction,
    AllKeysLru,
    AllKeysLfu,
    AllKeysRandom,
    VolatileLru,
    VolatileLfu,
    VolatileRandom,
    VolatileTtl,
}

impl Policy {
    pub const ALL: [Policy; 8] = [
        Policy::VolatileLru,
        Policy::VolatileLfu,
        Policy::VolatileRandom,
        Policy::VolatileTtl,
        Policy::AllKeysLru,
        Policy::AllKeysLfu,
        Policy::AllKeysRandom,
        Policy::NoEviction,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Policy::NoEviction => "noeviction",
            Policy::AllKeysLru => "allkeys-lru",
            Policy::AllKeysLfu => "allkeys-lfu",
            Policy::AllKeysRandom => "allkeys-random",
            Policy::VolatileLru => "volatile-lru",
            Policy::VolatileLfu => "volatile-lfu",
            Policy::VolatileRandom => "volatile-random",
            Policy::VolatileTtl => "volatile-ttl",
        }
    }

    pub fn parse(s: &str) -> Option<Policy> {
        Policy::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s))
    }

    fn volatile_only(self) -> bool {
        matches!(
            self,
            Policy::VolatileLru
                | Policy::VolatileLfu
                | Policy::VolatileRandom
                | Policy::VolatileTtl
        )
    }

    pub fn is_lfu(self) -> bool {
        matches!(self, Policy::AllKeysLfu | Policy::VolatileLfu)
    }

    /// Whether keys are chosen by a score (LRU, LFU, TTL) rather than at random.
    fn scored(self) -> bool {
        !matches!(
            self,
            Policy::AllKeysRandom | Policy::VolatileRandom | Policy::NoEviction
        )
    }

    /// How much `e` deserves eviction: higher goes first.
    fn score(self, e: &Entry, now_secs: u32) -> u64 {
        match self {
            Policy::AllKeysLfu | Policy::VolatileLfu => 255 - u64::from(lfu_decayed(e.lfu())),
            Policy::VolatileTtl => u64::MAX - e.expire_at(),
            _ => u64::from(e.idle_secs(now_secs)),
        }
    }
}

// The LFU settings are read on every key access (in `Shard::get`), far from
// any handle to the server's configuration: process-wide, one server per
// process.
static LFU_ON: AtomicBool = AtomicBool::new(false);
static LFU_LOG_FACTOR: AtomicU32 = AtomicU32::new(10);
static LFU_DECAY_TIME: AtomicU32 = AtomicU32::new(1);

/// What a new key's LFU counter starts at (so it is not evicted at once).
pub const LFU_INIT_VAL: u8 = 5;

/// Applies `maxmemory-policy`, `lfu-log-factor` and `lfu-decay-time`.
pub fn configure_lfu(policy: Policy, log_factor: u32, decay_time: u32) {
    LFU_ON.store(policy.is_lfu(), Relaxed);
    LFU_LOG_FACTOR.store(log_factor, Relaxed);
    LFU_DECAY_TIME.store(decay_time, Relaxed);
}

pub(crate) fn lfu_on() -> bool {
    LFU_ON.load(Relaxed)
}

fn minutes() -> u32 {
    (crate::lru_secs() / 60) & 0xFFFF
}

/// A fresh key's LFU word: (access minute << 8) | counter.
pub(crate) fn lfu_init() -> u32 {
    (minutes() << 8) | u32::from(LFU_INIT_VAL)
}

/// An LFU word holding `counter`, last accessed now (RESTORE FREQ, an RDB
/// file's FREQ).
pub fn lfu_word(counter: u8) -> u32 {
    (minutes() << 8) | u32::from(counter)
}

/// The counter after decay: one step per `lfu-decay-time` minutes since
/// the last access.
pub fn lfu_decayed(word: u32) -> u8 {
    let counter = (word & 0xFF) as u8;
    let decay = LFU_DECAY_TIME.load(Relaxed);
    if decay == 0 {
        return counter;
    }
    let last = word >> 8;
    let now = minutes();
    let elapsed = if now >= last {
        now - last
    } else {
        0x10000 - last + now
    };
    counter.saturating_sub((elapsed / decay).min(255) as u8)
}

/// An access: decay, then a logarithmic increment (the higher the counter,
/// the less likely it grows, scaled by `lfu-log-factor`).
pub(crate) fn lfu_touch(word: u32) -> u32 {
    let mut counter = lfu_decayed(word);
    if counter < 255 {
        let base = f64::from(counter.saturating_sub(LFU_INIT_VAL));
        let p = 1.0 / (base * f64::from(LFU_LOG_FACTOR.load(Relaxed)) + 1.0);
        if rand::random::<f64>() < p {
            counter += 1;
        }
    }
    (minutes() << 8) | u32::from(counter)
}

/// Candidates kept between rounds (Redis's EVPOOL_SIZE).
const POOL: usize = 16;

pub(crate) struct Candidate {
    score: u64,
    shard: usize,
    db: usize,
    key: CompactBytes,
}

/// The pool of best candidates, shared by every thread that evicts.
#[derive(Default)]
pub(crate) struct Pool(parking_lot::Mutex<Vec<Candidate>>);

impl Keyspace {
    /// Up to `n` random keys the policy may evict, from one place: a random
    /// shard (the next one holding such keys), a DB of it chosen by size,
    /// keys of that DB, each with its `score`. Returns (shard, db, keys);
    /// None when there is none anywhere.
    fn draw(
        &self,
        volatile: bool,
        n: usize,
        score: impl Fn(&Entry) -> u64,
    ) -> Option<(usize, usize, Vec<Sampled>)> {
        let shards = self.shard_count();
        let start = rand::random_range(0..shards);
        for i in 0..shards {
            let si = (start + i) % shards;
            let s = self.lock_one(si);
            let weight = |d: &crate::shard::Db| if volatile { d.volatile } else { d.len() };
            let total: usize = s.dbs.iter().map(weight).sum();
            if total == 0 {
                continue;
            }
            let mut pick = rand::random_range(0..total);
            let Some(db) = s.dbs.iter().position(|d| {
                let w = weight(d);
                if pick < w {
                    return true;
                }
                pick -= w;
                false
            }) else {
                continue;
            };
            let mut out = Vec::with_capacity(n);
            s.dbs[db].sample(n, volatile, &score, &mut out);
            if !out.is_empty() {
                return Some((si, db, out));
            }
        }
        None
    }

    /// Evicts one key as `policy` chooses, from `samples` random keys
    /// plus the best candidates of earlier rounds. False when nothing can
    /// be evicted.
    pub fn evict_one(&self, policy: Policy, samples: usize) -> bool {
        if policy == Policy::NoEviction {
            return false;
        }
        let volatile = policy.volatile_only();
        // A few rounds: a drawn key or pool entry can be gone by the time
        // its shard is locked again.
        for _ in 0..8 {
            if !policy.scored() {
                let Some((si, db, drawn)) = self.draw(volatile, 1, |_| 0) else {
                    return false;
                };
                if drawn
                    .first()
                    .is_some_and(|d| self.lock_one(si).remove_evicted(db, &d.key))
                {
                    return true;
                }
                continue;
            }
            let now_secs = crate::value::clock_secs();
            let (shard, db, drawn) = self
                .draw(volatile, samples.max(1), |e| policy.score(e, now_secs))
                .unwrap_or((0, 0, Vec::new()));
            {
                let mut pool = self.evict_pool.0.lock();
                if drawn.is_empty() && pool.is_empty() {
                    return false;
                }
                for d in drawn {
                    if pool
                        .iter()
                        .any(|c| c.shard == shard && c.db == db && c.key == d.key)
                    {
                        continue;
                    }
                    pool.push(Candidate {
                        score: d.score,
                        shard,
                        db,
                        key: d.key,
                    });
                }
                // Best last, so the pick is a pop.
                pool.sort_by_key(|c| c.score);
                let excess = pool.len().saturating_sub(POOL);
                pool.drain(..excess);
            }
            loop {
                let Some(c) = self.evict_pool.0.lock().pop() else {
                    break;
                };
                let mut s = self.lock_one(c.shard);
                let eligible = s.dbs[c.db]
                    .table
                    .get(&c.key)
                    .is_some_and(|e| !volatile || e.expire_at() != 0);
                if eligible && s.remove_evicted(c.db, &c.key) {
                    return true;
                }
            }
        }
        false
    }
}

/// A key drawn for eviction and its policy score.
struct Sampled {
    score: u64,
    key: CompactBytes,
}

impl crate::shard::Db {
    /// Up to `n` random entries (expiring ones only when `volatile`): their
    /// keys and `score`s. Several come from neighbouring buckets after a
    /// random one, as Redis samples: a cache miss per bucket line rather
    /// than per entry.
    fn sample(
        &self,
        n: usize,
        volatile: bool,
        score: &impl Fn(&Entry) -> u64,
        out: &mut Vec<Sampled>,
    ) {
        if self.is_empty() || (volatile && self.volatile == 0) {
            return;
        }
        let eligible = |e: &Entry| !volatile || e.expire_at() != 0;
        let sampled = |e: &Entry| Sampled {
            score: score(e),
            key: CompactBytes::new(e.key()),
        };
        if n > 1 {
            let start = rand::random_range(0..self.table.bucket_count());
            self.table.visit_run(start, n * 10, |e| {
                if eligible(e) {
                    out.push(sampled(e));
                }
                out.len() < n
            });
        }
        for _ in 0..n * 3 {
            if out.len() >= n {
                return;
            }
            if let Some(e) = self.table.random(|m| rand::random_range(0..m)) {
                if eligible(e) {
                    out.push(sampled(e));
                }
            }
        }
        // Expiring keys are rare in this table: walk it for some.
        if out.is_empty() {
            out.extend(
                self.table
                    .iter()
                    .filter(|e| eligible(e))
                    .take(n)
                    .map(sampled),
            );
        }
    }
}
