//! The keyspace: values, logical DBs, shards and their locks, lazy and active
//! expiry, and the single write door every mutation passes through.
//!
//! Invariants:
//! - A key lives in shard `key_slot(key) & (shards - 1)`: keys sharing a
//!   `{hash tag}` share a shard.
//! - Shard locks are only ever taken in ascending shard index (`Keyspace::lock`
//!   sorts), so multi-key commands cannot deadlock; no lock is held across an
//!   `.await` (nothing here is async).
//! - A key whose expiry time has passed is never returned: every lookup checks
//!   it (lazy expiry) and the active cycle removes the ones nobody reads.
//! - Every change to a key is reported through `Shard::written`.

mod keyspace;
mod shard;
mod value;
mod waiters;

pub use keyspace::{Keyspace, Locked};
pub use shard::{Db, Shard, ShardStats};
pub use value::{canonical_int as value_canonical_int, clock_secs, Entry, Value};
pub use waiters::{WaiterRef, Waiters};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
