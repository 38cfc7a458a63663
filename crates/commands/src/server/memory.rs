//! MEMORY STATS, DOCTOR, MALLOC-STATS and PURGE.

use super::info::{shard_sums, MemoryFigures};
use crate::ctx::Ctx;
use crate::error::CmdResult;
use damselfly_protocol::Args;

/// MEMORY STATS: Redis's fields, from our accounting. What we do not keep
/// apart (client buffers, per-DB table overhead) reads as 0 and counts as
/// dataset.
pub(super) fn stats(ctx: &mut Ctx, _args: &Args) -> CmdResult {
    let m = MemoryFigures::now();
    let sums = shard_sums(ctx);
    let keys: u64 = sums.dbs.iter().map(|d| d.0).sum();
    let dataset = m.used.saturating_sub(m.startup);
    let pct = |part: u64, whole: u64| part as f64 * 100.0 / whole.max(1) as f64;
    let dbs: Vec<usize> = (0..sums.dbs.len()).filter(|&i| sums.dbs[i].0 > 0).collect();
    let r = &mut *ctx.reply;
    r.map(28 + dbs.len());
    let int = |r: &mut damselfly_protocol::Reply, k: &str, v: u64| {
        r.bulk(k.as_bytes());
        r.int(v as i64);
    };
    int(r, "peak.allocated", m.peak);
    int(r, "total.allocated", m.used);
    int(r, "startup.allocated", m.startup);
    for k in [
        "replication.backlog",
        "clients.slaves",
        "clients.normal",
        "cluster.links",
        "aof.buffer",
        "lua.caches",
        "functions.caches",
    ] {
        int(r, k, 0);
    }
    for db in dbs {
        r.bulk(format!("db.{db}").as_bytes());
        r.map(2);
        int(r, "overhead.hashtable.main", 0);
        int(r, "overhead.hashtable.expires", 0);
    }
    int(r, "overhead.hashtable.slot-to-keys", 0);
    int(r, "overhead.total", m.startup);
    int(r, "keys.count", keys);
    int(r, "keys.bytes-per-key", dataset / keys.max(1));
    int(r, "dataset.bytes", dataset);
    let ratio = |r: &mut damselfly_protocol::Reply, k: &str, v: f64| {
        r.bulk(k.as_bytes());
        r.double(v);
    };
    ratio(r, "dataset.percentage", pct(dataset, m.used));
    ratio(r, "peak.percentage", pct(m.used, m.peak));
    int(r, "allocator.allocated", m.used);
    int(r, "allocator.active", m.rss);
    int(r, "allocator.resident", m.rss);
    ratio(r, "allocator-fragmentation.ratio", m.frag_ratio());
    int(
        r,
        "allocator-fragmentation.bytes",
        m.rss.saturating_sub(m.used),
    );
    ratio(r, "allocator-rss.ratio", 1.0);
    int(r, "allocator-rss.bytes", 0);
    ratio(r, "rss-overhead.ratio", 1.0);
    int(r, "rss-overhead.bytes", 0);
    ratio(r, "fragmentation", m.frag_ratio());
    int(r, "fragmentation.bytes", m.rss.saturating_sub(m.used));
    Ok(())
}

/// MEMORY DOCTOR: a few checks in our own words.
pub(super) fn doctor(ctx: &mut Ctx, _args: &Args) -> CmdResult {
    let m = MemoryFigures::now();
    let max = ctx
        .server
        .config
        .maxmemory
        .load(std::sync::atomic::Ordering::Relaxed);
    let mut notes = Vec::new();
    if m.used < 5 * 1024 * 1024 {
        notes.push("The server holds less than 5 MB: too little to diagnose anything.".to_string());
    }
    if m.peak > m.used.saturating_mul(3) / 2 {
        notes.push(format!(
            "Peak memory ({} bytes) is well above current use ({} bytes): memory was freed since.",
            m.peak, m.used
        ));
    }
    if m.frag_ratio() > 1.4 && m.used >= 5 * 1024 * 1024 {
        notes.push(format!(
            "RSS is {:.2} times the allocated bytes; MEMORY PURGE returns free pages to the OS.",
            m.frag_ratio()
        ));
    }
    if max != 0 && m.used > max / 10 * 9 {
        notes.push(format!(
            "Used memory is above 90% of maxmemory ({max} bytes)."
        ));
    }
    if notes.is_empty() {
        notes.push("No memory problems found.".to_string());
    }
    let text = notes.join("\n") + "\n";
    ctx.reply.verbatim("txt", text.as_bytes());
    Ok(())
}

/// MEMORY MALLOC-STATS: mimalloc's own report.
pub(super) fn malloc_stats(ctx: &mut Ctx, _args: &Args) -> CmdResult {
    let text = damselfly_storage::memory::allocator_stats();
    ctx.reply.verbatim("txt", text.as_bytes());
    Ok(())
}

/// MEMORY PURGE: returns free memory to the OS.
pub(super) fn purge(ctx: &mut Ctx, _args: &Args) -> CmdResult {
    damselfly_storage::memory::purge();
    ctx.reply.ok();
    Ok(())
}
