//! The maxmemory check every command passes (Redis's performEvictions):
//! evict by policy until used memory is back under the limit, and tell the
//! dispatcher whether memory is still exhausted.

use crate::client::Client;
use crate::state::Server;
use crate::table::{flag, Entry};
use damselfly_storage::evict::Policy;
use damselfly_storage::memory::{accounting_active, used_memory};
use std::sync::atomic::Ordering::Relaxed;

/// How long one command may spend evicting, from
/// `maxmemory-eviction-tenacity` (Redis's curve: 50 µs per step up to 10,
/// then 15% more per step, unlimited at 100). What is left over is evicted
/// before the next command.
fn time_limit_us(tenacity: u64) -> u64 {
    match tenacity {
        0..=10 => 50 * tenacity,
        100.. => u64::MAX,
        t => (500.0 * 1.15f64.powi((t - 10) as i32)) as u64,
    }
}

/// Used memory as `maxmemory` sees it: with client eviction on, what the
/// clients hold is left to `maxmemory-clients` (as in Redis, so growing
/// clients are evicted rather than keys).
fn used(server: &Server) -> u64 {
    let clients = if crate::client_evict::enabled(server) {
        server.clients.mem_total.load(Relaxed)
    } else {
        0
    };
    used_memory().saturating_sub(clients)
}

/// Whether used memory is over `maxmemory` now (no eviction: for callers
/// that hold shard locks, such as a running script).
pub fn over_limit(server: &Server) -> bool {
    let max = server.config.maxmemory.load(Relaxed);
    max != 0 && accounting_active() && used(server) > max
}

/// Evicts until used memory fits `maxmemory`. True when memory is still
/// over the limit and nothing more can be evicted (writes must be refused).
pub fn perform_evictions(server: &Server) -> bool {
    let cfg = &server.config;
    let max = cfg.maxmemory.load(Relaxed);
    if max == 0 || !accounting_active() || used(server) <= max {
        return false;
    }
    // A paused dataset is not evicted from, nor are commands refused as
    // out of memory meanwhile (Redis 7.0 reports "evicted fine" then).
    if server.pause.freezes_dataset() {
        return false;
    }
    let policy = *cfg.maxmemory_policy.read();
    if policy == Policy::NoEviction {
        return true;
    }
    let samples = cfg.maxmemory_samples.load(Relaxed).min(64) as usize;
    let tenacity = cfg.maxmemory_eviction_tenacity.load(Relaxed);
    let limit_ns = time_limit_us(tenacity).saturating_mul(1000);
    let start = damselfly_storage::mono_ns();
    let mut full = false;
    while used(server) > max {
        if !server.keyspace.evict_one(policy, samples) {
            full = true;
            break;
        }
        if damselfly_storage::mono_ns().saturating_sub(start) > limit_ns {
            break;
        }
    }
    let ms = damselfly_storage::mono_ns().saturating_sub(start) / 1_000_000;
    crate::observe::latency_event(server, "eviction-cycle", ms);
    full
}

/// Whether `e` is refused while memory is exhausted: commands that may
/// grow memory (`denyoom`), EXEC of a transaction holding one, and anything
/// queued into MULTI (a queue can grow without bound), as in Redis.
pub fn refused_when_full(e: &Entry, client: &Client) -> bool {
    if e.has(flag::DENYOOM) {
        return true;
    }
    let name = e.cmd.name;
    match &client.multi {
        Some(m) if name == "exec" => m.queue.iter().any(|(q, _)| q.has(flag::DENYOOM)),
        Some(_) => !matches!(name, "discard" | "quit" | "reset"),
        None => false,
    }
}
