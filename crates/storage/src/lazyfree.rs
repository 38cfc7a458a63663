//! Lazy freeing, as Redis's lazyfree: UNLINK and FLUSHALL/FLUSHDB ASYNC
//! hand values that would take long to free (many allocations) to one
//! background thread, so the command's shard locks are held only for the
//! unlinking. INFO's `lazyfree_pending_objects` / `lazyfreed_objects`
//! count them.
//!
//! Invariant: only values already unlinked from every table travel here,
//! so nothing the keyspace can reach is freed behind its back.

use crate::{Entry, ValueRef};
use damselfly_core::RawTable;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{channel, Sender};
use std::sync::OnceLock;

/// Values that take at most this many allocations to free are freed at
/// once; the hand-off would cost more (Redis's threshold).
const THRESHOLD: usize = 64;

static PENDING: AtomicU64 = AtomicU64::new(0);
static FREED: AtomicU64 = AtomicU64::new(0);

enum Job {
    Entry(Entry),
    /// A whole DB's table (FLUSHDB/FLUSHALL ASYNC) and its key count.
    Table(RawTable<Entry>, u64),
}

fn sender() -> Option<&'static Sender<Job>> {
    static TX: OnceLock<Option<Sender<Job>>> = OnceLock::new();
    TX.get_or_init(|| {
        let (tx, rx) = channel::<Job>();
        std::thread::Builder::new()
            .name("lazyfree".into())
            .spawn(move || {
                for job in rx {
                    let n = match job {
                        Job::Entry(e) => {
                            drop(e);
                            1
                        }
                        Job::Table(t, n) => {
                            drop(t);
                            n
                        }
                    };
                    FREED.fetch_add(n, Relaxed);
                    PENDING.fetch_sub(n, Relaxed);
                }
            })
            .ok()
            .map(|_| tx)
    })
    .as_ref()
}

/// Roughly how many allocations freeing `v` takes.
fn free_effort(v: ValueRef<'_>) -> usize {
    match v {
        ValueRef::Int(_) | ValueRef::Str(_) | ValueRef::Raw(_) => 1,
        ValueRef::List(l) => l.node_count(),
        ValueRef::Hash(h) if h.is_packed() => 1,
        ValueRef::Hash(h) => h.len(),
        ValueRef::Set(s) if s.encoding() == "intset" => 1,
        ValueRef::Set(s) => s.len(),
        ValueRef::ZSet(z) if z.encoding() == "listpack" => 1,
        ValueRef::ZSet(z) => z.len(),
        ValueRef::Stream(s) => {
            s.node_count()
                + s.groups
                    .values()
                    .map(|g| 1 + g.pel.len() + g.consumers.len())
                    .sum::<usize>()
        }
    }
}

/// Whether freeing `e` on the background thread pays.
pub fn worth(e: &Entry) -> bool {
    free_effort(e.value()) > THRESHOLD
}

/// Frees a removed entry, on the background thread when that pays.
pub fn free(e: Entry) {
    if !worth(&e) {
        return;
    }
    if let Some(tx) = sender() {
        PENDING.fetch_add(1, Relaxed);
        if let Err(back) = tx.send(Job::Entry(e)) {
            PENDING.fetch_sub(1, Relaxed);
            drop(back);
        }
    }
}

/// Frees a DB's detached table on the background thread.
pub fn free_table(t: RawTable<Entry>) {
    let n = t.len() as u64;
    if n == 0 {
        return;
    }
    match sender() {
        Some(tx) => {
            PENDING.fetch_add(n, Relaxed);
            if let Err(back) = tx.send(Job::Table(t, n)) {
                PENDING.fetch_sub(n, Relaxed);
                drop(back);
            }
        }
        None => drop(t),
    }
}

/// INFO's `lazyfree_pending_objects`.
pub fn pending() -> u64 {
    PENDING.load(Relaxed)
}

/// INFO's `lazyfreed_objects` (CONFIG RESETSTAT zeroes it).
pub fn freed() -> u64 {
    FREED.load(Relaxed)
}

pub fn reset_stats() {
    FREED.store(0, Relaxed);
}
