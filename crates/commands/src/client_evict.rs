//! Client eviction (`maxmemory-clients`): each connection reports the
//! bytes it holds (its unprocessed query buffer, the commands queued in
//! its MULTI, the output queued for it, and 64 bytes per watched key and
//! per subscription) whenever its query buffer changes; while the clients' total passes
//! the limit, the largest clients that did not ask for CLIENT NO-EVICT are
//! closed at once (Redis's rule: the biggest go first, the one reporting
//! included).
//!
//! Invariant: with `maxmemory-clients` at 0 (the default) a report is one
//! relaxed store to the client's own counter; the shared total is kept
//! only while a limit is set (and recomputed when one is set).

use crate::client::ClientInfo;
use crate::state::Server;
use std::sync::atomic::Ordering::Relaxed;

/// The limit in bytes (a percentage is of `maxmemory`); 0 for none.
fn limit(server: &Server) -> u64 {
    let c = &server.config;
    match c.clients_limit_pct.load(Relaxed) {
        0 => c.clients_limit_bytes.load(Relaxed),
        pct => c.maxmemory.load(Relaxed) / 100 * pct,
    }
}

/// Whether a limit is set (reports are only worth making then).
pub fn enabled(server: &Server) -> bool {
    limit(server) != 0
}

/// Records that `client` now holds `bytes`, and evicts clients while the
/// total is past the limit.
pub fn account(server: &Server, client: &ClientInfo, bytes: u64) {
    // An evicted client's bytes already left the total; what its task
    // reads before it ends is not counted again.
    if client.gone.load(Relaxed) {
        return;
    }
    let old = client.mem.swap(bytes, Relaxed);
    let limit = limit(server);
    if limit == 0 || old == bytes {
        return;
    }
    let total = &server.clients.mem_total;
    if bytes > old {
        total.fetch_add(bytes - old, Relaxed);
    } else {
        total.fetch_sub((old - bytes).min(total.load(Relaxed)), Relaxed);
    }
    if total.load(Relaxed) > limit {
        evict(server, limit);
    }
}

/// A client that leaves takes its bytes out of the total.
pub fn forget(server: &Server, client: &ClientInfo) {
    let old = client.mem.swap(0, Relaxed);
    if limit(server) != 0 {
        let total = &server.clients.mem_total;
        total.fetch_sub(old.min(total.load(Relaxed)), Relaxed);
    }
}

/// After CONFIG SET of the limit (or of `maxmemory`): the total is
/// summed afresh, and clients go if it is already past the new limit.
pub fn limit_changed(server: &Server) {
    let mut sum = 0;
    server
        .clients
        .for_each_locked(|c| sum += c.mem.load(Relaxed));
    server.clients.mem_total.store(sum, Relaxed);
    let limit = limit(server);
    if limit != 0 && sum > limit {
        evict(server, limit);
    }
}

/// Closes the largest evictable clients until the total fits.
fn evict(server: &Server, limit: u64) {
    let mut sizes: Vec<(u64, u64)> = Vec::new();
    server.clients.for_each_locked(|c| {
        let mem = c.mem.load(Relaxed);
        if mem > 0 && !c.no_evict.load(Relaxed) && !c.gone.load(Relaxed) {
            sizes.push((mem, c.id));
        }
    });
    sizes.sort_unstable_by(|a, b| b.cmp(a));
    let mut total = server.clients.mem_total.load(Relaxed);
    let mut victims = Vec::new();
    for (mem, id) in sizes {
        if total <= limit {
            break;
        }
        total = total.saturating_sub(mem);
        victims.push(id);
    }
    if victims.is_empty() {
        return;
    }
    // No client is spared as "me": the reporting one is closed like the
    // rest (its task sees end-of-file at its next read).
    server.clients.kill_where(0, |c| {
        let hit = victims.contains(&c.id);
        if hit {
            forget(server, c);
            server.evicted_clients.fetch_add(1, Relaxed);
            eprintln!("Evicting client: id={} addr={}", c.id, c.addr);
        }
        hit
    });
}
