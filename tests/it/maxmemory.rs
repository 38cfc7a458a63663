//! maxmemory and eviction: fill past the limit under each policy and check
//! which keys went, the OOM error under noeviction, INFO's counters.

use crate::support::{damselfly, diff, Conn};
use std::time::{Duration, Instant};

/// A numeric INFO field.
pub fn info_u64(c: &mut Conn, field: &str) -> u64 {
    let text = c.cmd(&["INFO"]);
    let prefix = format!("\r\n{field}:");
    let at = text
        .find(&prefix)
        .unwrap_or_else(|| panic!("INFO has no {field}"));
    text[at + prefix.len()..]
        .split("\r\n")
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("INFO {field} is not a number"))
}

/// Sets maxmemory to the current usage plus `headroom` bytes.
fn limit_above_now(c: &mut Conn, policy: &str, headroom: u64) -> u64 {
    let limit = info_u64(c, "used_memory") + headroom;
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "maxmemory-policy", policy]),
        "+OK\r\n"
    );
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "maxmemory", &limit.to_string()]),
        "+OK\r\n"
    );
    limit
}

/// Writes keys with `write(conn, n)` until used memory is within `gap`
/// bytes of `limit`; returns how many were written.
fn fill_to(c: &mut Conn, limit: u64, gap: u64, mut write: impl FnMut(&mut Conn, usize)) -> usize {
    let mut n = 0;
    while info_u64(c, "used_memory") < limit - gap {
        write(c, n);
        n += 1;
    }
    n
}

fn exists(c: &mut Conn, key: &str) -> bool {
    c.cmd(&["EXISTS", key]) == ":1\r\n"
}

/// Waits (to a deadline) until `key` has been idle for at least a second,
/// so keys written later are strictly more recently used.
fn wait_idle(c: &mut Conn, key: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.cmd(&["OBJECT", "IDLETIME", key]) == ":0\r\n" {
        assert!(Instant::now() < deadline, "{key} never became idle");
        std::thread::sleep(Duration::from_millis(50));
    }
}

const VALUE: &str = "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv";

#[test]
fn noeviction_refuses_writes_with_oom_and_serves_reads() {
    let d = damselfly(&[]);
    let mut c = Conn::open(d.port);
    c.cmd(&["SET", "before", "1"]);
    let limit = limit_above_now(&mut c, "noeviction", 64 * 1024);
    let mut refused = None;
    for i in 0..100_000 {
        let r = c.cmd(&["SET", &format!("k{i}"), VALUE]);
        if r != "+OK\r\n" {
            refused = Some(r);
            break;
        }
    }
    assert_eq!(
        refused.as_deref(),
        Some("-OOM command not allowed when used memory > 'maxmemory'.\r\n")
    );
    assert!(info_u64(&mut c, "used_memory") > limit);
    // Reads and deletes still work; nothing was evicted.
    assert_eq!(c.cmd(&["GET", "before"]), "$1\r\n1\r\n");
    assert_eq!(c.cmd(&["DEL", "k0"]), ":1\r\n");
    assert_eq!(info_u64(&mut c, "evicted_keys"), 0);
    // Inside MULTI every queued command is refused, and EXEC aborts.
    assert_eq!(c.cmd(&["MULTI"]), "+OK\r\n");
    assert!(c.cmd(&["GET", "before"]).starts_with("-OOM"));
    assert!(c.cmd(&["EXEC"]).starts_with("-EXECABORT"));
    // Raising the limit lets writes through again.
    assert_eq!(c.cmd(&["CONFIG", "SET", "maxmemory", "0"]), "+OK\r\n");
    assert_eq!(c.cmd(&["SET", "after", "1"]), "+OK\r\n");
}

#[test]
fn allkeys_lru_evicts_the_least_recently_used() {
    let d = damselfly(&[]);
    let mut c = Conn::open(d.port);
    c.cmd(&["CONFIG", "SET", "maxmemory-samples", "10"]);
    // Commands allocate their latency histogram on first use: use EXISTS
    // before the limit, so counting keys later evicts nothing.
    c.cmd(&["EXISTS", "x"]);
    let limit = limit_above_now(&mut c, "allkeys-lru", 512 * 1024);
    let old = fill_to(&mut c, limit, 200 * 1024, |c, i| {
        c.cmd(&["SET", &format!("old{i}"), VALUE]);
    });
    wait_idle(&mut c, &format!("old{}", old - 1));
    // As many new keys as old ones: old keys must go to make room, and
    // the new ones (more recently used than any old one) stay.
    let new = old;
    for i in 0..new {
        assert_eq!(c.cmd(&["SET", &format!("new{i}"), VALUE]), "+OK\r\n");
    }
    assert!(info_u64(&mut c, "used_memory") < limit + 4096);
    let evicted = info_u64(&mut c, "evicted_keys");
    assert!(evicted > 0);
    let old_left = (0..old)
        .filter(|i| exists(&mut c, &format!("old{i}")))
        .count();
    let new_left = (0..new)
        .filter(|i| exists(&mut c, &format!("new{i}")))
        .count();
    // Counting keys can itself push memory over the limit and evict one
    // more (a reply buffer grows): every missing key was evicted, by the
    // count before the walk or the one after it.
    let evicted_after = info_u64(&mut c, "evicted_keys");
    let missing = (old - old_left) + (new - new_left);
    assert!(
        (evicted as usize..=evicted_after as usize).contains(&missing),
        "every eviction removed one of our keys: {missing} missing, {evicted}..{evicted_after} evicted"
    );
    assert!(
        new - new_left <= new / 50,
        "{} of {new} new keys were evicted while old ones remained",
        new - new_left
    );
}

#[test]
fn volatile_policies_never_evict_keys_without_ttl() {
    for policy in [
        "volatile-lru",
        "volatile-lfu",
        "volatile-random",
        "volatile-ttl",
    ] {
        let d = damselfly(&[]);
        let mut c = Conn::open(d.port);
        let limit = limit_above_now(&mut c, policy, 256 * 1024);
        let n = fill_to(&mut c, limit, 64 * 1024, |c, i| {
            if i % 2 == 0 {
                c.cmd(&["SET", &format!("p{i}"), VALUE]);
            } else {
                c.cmd(&["SETEX", &format!("v{i}"), "10000", VALUE]);
            }
        });
        let mut oom = false;
        for j in 0..n * 2 {
            let r = c.cmd(&["SETEX", &format!("more{j}"), "10000", VALUE]);
            oom |= r.starts_with("-OOM");
        }
        assert!(!oom, "{policy}: volatile keys were there to evict");
        assert!(info_u64(&mut c, "evicted_keys") > 0, "{policy}");
        for i in (0..n).step_by(2) {
            assert!(exists(&mut c, &format!("p{i}")), "{policy} evicted p{i}");
        }
        // Persistent keys only: nothing may go, so writes are refused.
        let mut refused = false;
        for j in 0..n * 4 {
            if c.cmd(&["SET", &format!("q{j}"), VALUE]).starts_with("-OOM") {
                refused = true;
                break;
            }
        }
        assert!(refused, "{policy}: persistent writes never hit the limit");
    }
}

#[test]
fn volatile_ttl_evicts_the_soonest_to_expire() {
    let d = damselfly(&[]);
    let mut c = Conn::open(d.port);
    c.cmd(&["CONFIG", "SET", "maxmemory-samples", "10"]);
    let limit = limit_above_now(&mut c, "volatile-ttl", 512 * 1024);
    let n = fill_to(&mut c, limit, 128 * 1024, |c, i| {
        let ttl = if i % 2 == 0 { "1000" } else { "100000" };
        c.cmd(&["SETEX", &format!("k{i}"), ttl, VALUE]);
    });
    // Writes worth about half the keys: only short-TTL keys go.
    for j in 0..n / 2 {
        assert_eq!(c.cmd(&["SET", &format!("p{j}"), VALUE]), "+OK\r\n");
    }
    assert!(info_u64(&mut c, "evicted_keys") > 0);
    let long_gone = (1..n)
        .step_by(2)
        .filter(|i| !exists(&mut c, &format!("k{i}")))
        .count();
    assert!(
        long_gone <= n / 100,
        "{long_gone} long-TTL keys were evicted"
    );
}

#[test]
fn allkeys_random_and_lfu_stay_under_the_limit() {
    for policy in ["allkeys-random", "allkeys-lfu"] {
        let d = damselfly(&[]);
        let mut c = Conn::open(d.port);
        let limit = limit_above_now(&mut c, policy, 128 * 1024);
        for i in 0..5000 {
            let r = c.cmd(&["SET", &format!("k{i}"), VALUE]);
            assert_eq!(r, "+OK\r\n", "{policy}");
        }
        assert!(info_u64(&mut c, "used_memory") < limit + 4096, "{policy}");
        assert!(info_u64(&mut c, "evicted_keys") > 0, "{policy}");
    }
}

#[test]
fn lfu_counts_accesses_and_object_freq_reports_them() {
    let d = damselfly(&[]);
    let mut c = Conn::open(d.port);
    c.cmd(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"]);
    c.cmd(&["CONFIG", "SET", "lfu-log-factor", "0"]);
    c.cmd(&["SET", "hot", "1"]);
    c.cmd(&["SET", "cold", "1"]);
    for _ in 0..50 {
        c.cmd(&["GET", "hot"]);
    }
    let freq = |c: &mut Conn, k: &str| -> i64 {
        let r = c.cmd(&["OBJECT", "FREQ", k]);
        r.trim_start_matches(':').trim().parse().unwrap_or(-1)
    };
    assert_eq!(freq(&mut c, "cold"), 5);
    assert!(freq(&mut c, "hot") >= 50);
    // Overwriting keeps the counter, as in Redis.
    c.cmd(&["SET", "hot", "2"]);
    assert!(freq(&mut c, "hot") >= 50);
    assert!(c
        .cmd(&["OBJECT", "IDLETIME", "hot"])
        .starts_with("-ERR An LFU"));
}

#[test]
fn eviction_config_matches_redis() {
    diff(
        "CONFIG GET maxmemory
         CONFIG GET maxmemory-policy
         CONFIG SET maxmemory-policy foo
         CONFIG SET maxmemory-policy ALLKEYS-LRU
         CONFIG GET maxmemory-policy
         CONFIG SET maxmemory-samples 0
         CONFIG SET maxmemory-samples 10
         CONFIG GET maxmemory-samples
         CONFIG SET maxmemory -1
         CONFIG SET maxmemory 1gb
         CONFIG GET maxmemory
         CONFIG SET maxmemory 0
         CONFIG SET lfu-log-factor -1
         CONFIG GET lfu-log-factor
         CONFIG GET lfu-decay-time
         CONFIG SET maxmemory-eviction-tenacity 101
         CONFIG GET maxmemory-eviction-tenacity
         CONFIG SET maxmemory-policy noeviction
         CONFIG SET maxmemory-clients 200%
         CONFIG SET maxmemory-clients 10%
         CONFIG GET maxmemory-clients
         CONFIG SET maxmemory-clients abc
         CONFIG SET maxmemory-clients x%
         CONFIG SET maxmemory-clients 5mb
         CONFIG GET maxmemory-clients",
    );
}

#[test]
fn rss_stays_near_maxmemory_while_ten_times_it_is_written() {
    let d = damselfly(&[]);
    let mut c = Conn::open(d.port);
    const MAX: u64 = 8 * 1024 * 1024;
    let limit = limit_above_now(&mut c, "allkeys-lru", MAX);
    let rss_before = info_u64(&mut c, "used_memory_rss");
    let value = "x".repeat(1000);
    // 80 MB in pipelined batches.
    for batch in 0..80 {
        let mut bytes = Vec::new();
        for i in 0..1000 {
            bytes.extend(Conn::encode(&["SET", &format!("k{batch}:{i}"), &value]));
        }
        c.send_raw(&bytes);
        for _ in 0..1000 {
            assert_eq!(c.read(), b"+OK\r\n");
        }
    }
    assert!(info_u64(&mut c, "used_memory") < limit + 64 * 1024);
    let rss = info_u64(&mut c, "used_memory_rss");
    // 10% of maxmemory plus a fixed 8 MB for allocator slack.
    let allowed = rss_before + MAX + MAX / 10 + 8 * 1024 * 1024;
    assert!(
        rss <= allowed,
        "rss {rss} > {allowed} (before {rss_before})"
    );
    assert!(info_u64(&mut c, "evicted_keys") > 50_000);
}

/// While clients are paused (WRITE here) nothing is evicted, even over the
/// limit, as in Redis 7.0; the next command after UNPAUSE evicts.
#[test]
fn a_pause_holds_eviction_off_until_unpause() {
    diff(
        "SET k1 v1
         SET k2 v2
         SET k3 v3
         CONFIG SET maxmemory-policy allkeys-lru
         CLIENT PAUSE 100000 WRITE
         CONFIG SET maxmemory 1
         DBSIZE
         GET k1
         DBSIZE
         CLIENT UNPAUSE
         GET k2
         DBSIZE
         CONFIG SET maxmemory 0",
    );
}
