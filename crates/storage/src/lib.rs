//! The keyspace: values, logical DBs, shards and their locks, lazy and active
//! expiry, and the single write door every mutation passes through.
//!
//! Invariants:
//! - A key lives in shard `key_shard(key, shards)` (a hash of its hash tag):
//!   keys sharing a `{hash tag}` share a shard.
//! - Shard locks are only ever taken in ascending shard index (`Keyspace::lock`
//!   sorts), so multi-key commands cannot deadlock; no lock is held across an
//!   `.await` (nothing here is async). The one exception, a script that
//!   escalates (`Keyspace::script_add`), makes every other locker that
//!   waits with shards in hand let go of them.
//! - A key whose expiry time has passed is never returned: every lookup checks
//!   it (lazy expiry) and the active cycle removes the ones nobody reads.
//! - Every change to a key is reported through `Shard::written`.
//! - `used_memory` counts every live allocation of the process (when the
//!   binary installs `memory::Counting`); eviction compares it to maxmemory.

mod entry;
pub mod evict;
mod keyspace;
pub mod lazyfree;
pub mod memory;
mod shard;
mod tsc;
pub mod typed;
mod value;
mod waiters;

pub use entry::Entry;
pub use keyspace::{Keyspace, Locked};
pub use shard::{Db, Events, Shard, ShardSnapshot, ShardStats, Watch};
pub use value::{
    canonical_int as value_canonical_int, clock_secs, Value, ValueMut, ValueRef, LFU_INIT_VAL,
};
pub use waiters::{WaiterRef, Waiters};

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, exclusively borrowed timespec; clock_gettime only
    // writes to it, and both clocks used here always exist on Linux.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

/// Until this Unix ms (CLIENT PAUSE WRITE), expired keys read as gone but
/// are not deleted: deleting is a write. Process-wide, like the pause.
static EXPIRY_PAUSED_UNTIL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub fn set_expiry_paused_until(ms: u64) {
    EXPIRY_PAUSED_UNTIL.store(ms, std::sync::atomic::Ordering::Relaxed);
}

/// Set while this server is a replica: its master decides when keys
/// expire (it sends DEL), so expiry never deletes; an expired key still
/// reads as gone to clients, but not to the master's own commands.
static REPLICA: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

thread_local! {
    /// Set while this thread runs a command of the master's stream.
    static FROM_MASTER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

pub fn set_replica(on: bool) {
    REPLICA.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// Whether this server is a replica (set by REPLICAOF).
pub fn is_replica() -> bool {
    REPLICA.load(std::sync::atomic::Ordering::Relaxed)
}

/// Marks this thread as running the master's stream (or not any more).
pub fn set_from_master(on: bool) {
    FROM_MASTER.with(|f| f.set(on));
}

/// Whether the command running on this thread came from our master.
pub fn from_master() -> bool {
    FROM_MASTER.with(std::cell::Cell::get)
}

/// Whether expiry may delete keys at `now` (ms).
pub fn expiry_deletes(now: u64) -> bool {
    now >= EXPIRY_PAUSED_UNTIL.load(std::sync::atomic::Ordering::Relaxed)
        && !REPLICA.load(std::sync::atomic::Ordering::Relaxed)
}

/// Milliseconds since the Unix epoch. Read with clock_gettime directly:
/// SystemTime's Duration arithmetic showed up in the per-command profile.
pub fn now_ms() -> u64 {
    clock_ns(libc::CLOCK_REALTIME) / 1_000_000
}

/// Nanoseconds of CLOCK_MONOTONIC, for measuring how long things take:
/// from the TSC on a calibrated worker (see `tsc`), else clock_gettime.
pub fn mono_ns() -> u64 {
    tsc::now().unwrap_or_else(|| clock_ns(libc::CLOCK_MONOTONIC))
}

thread_local! {
    /// CLOCK_REALTIME minus CLOCK_MONOTONIC (ns) at this thread's last
    /// `calibrate_clock`; 0: never calibrated.
    static REAL_OFFSET: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// The seconds clock of access times (Redis's LRU clock), refreshed by
/// `calibrate_clock`; 0 until the first calibration.
static LRU_SECS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Reads both clocks: the offset between them (for `ms_at` on this thread)
/// and the LRU clock. Worker threads call it on every tick (`hz`), so a
/// step of the system clock reaches them within a tick.
pub fn calibrate_clock() {
    // The two clocks are read back to back; a thread preempted between
    // them would skew every command's Unix time until the next tick (keys
    // would expire early or late), so a pair that took long is read again.
    const TIGHT_NS: u64 = 50_000;
    let mut real = 0;
    for _ in 0..4 {
        let t0 = tsc::rdtsc();
        let before = clock_ns(libc::CLOCK_MONOTONIC);
        real = clock_ns(libc::CLOCK_REALTIME);
        let after = clock_ns(libc::CLOCK_MONOTONIC);
        let t1 = tsc::rdtsc();
        if after.wrapping_sub(before) <= TIGHT_NS {
            let mono = before + (after - before) / 2;
            REAL_OFFSET.with(|o| o.set(real.wrapping_sub(mono).max(1)));
            tsc::calibrate(t0 + t1.wrapping_sub(t0) / 2, mono);
            break;
        }
    }
    LRU_SECS.store(
        (real / 1_000_000_000) as u32,
        std::sync::atomic::Ordering::Relaxed,
    );
}

/// Unix milliseconds at `mono` (a `mono_ns` reading just taken), from this
/// thread's calibrated offset: a command's one clock reading serves both
/// its expiry checks and its duration. A thread never calibrated reads
/// the clock.
pub fn ms_at(mono: u64) -> u64 {
    match REAL_OFFSET.with(std::cell::Cell::get) {
        0 => now_ms(),
        off => mono.wrapping_add(off) / 1_000_000,
    }
}

/// The LRU clock: Unix seconds as of the last calibration (a tick ago at
/// most, as Redis's cached `lruclock`), or read now before the first.
pub(crate) fn lru_secs() -> u32 {
    match LRU_SECS.load(std::sync::atomic::Ordering::Relaxed) {
        0 => (now_ms() / 1000) as u32,
        s => s,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn clocks_agree_with_std() {
        let std_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        assert!(super::now_ms().abs_diff(std_ms) < 5_000);
        let a = super::mono_ns();
        let b = super::mono_ns();
        assert!(b >= a);
    }

    #[test]
    fn the_tsc_clock_keeps_to_the_monotonic_clock() {
        super::calibrate_clock();
        std::thread::sleep(std::time::Duration::from_millis(1050));
        super::calibrate_clock();
        assert_eq!(super::tsc::now().is_some(), super::tsc::usable());
        let mut last = 0;
        for round in 0..3 {
            // The closest of a few tries: a preempted pair is far apart.
            let off = (0..5)
                .map(|_| {
                    let ours = super::mono_ns();
                    let real = super::clock_ns(libc::CLOCK_MONOTONIC);
                    assert!(ours >= last);
                    last = ours;
                    real.abs_diff(ours)
                })
                .min()
                .unwrap_or(0);
            assert!(off < super::tsc::MAX_DRIFT_NS, "round {round}: {off} ns");
            std::thread::sleep(std::time::Duration::from_millis(30));
            super::calibrate_clock();
        }
    }

    #[test]
    fn calibrated_clocks_agree_with_the_clock() {
        super::calibrate_clock();
        let derived = super::ms_at(super::mono_ns());
        assert!(derived.abs_diff(super::now_ms()) < 5_000);
        assert!(u64::from(super::lru_secs()).abs_diff(super::now_ms() / 1000) < 5);
    }
}
