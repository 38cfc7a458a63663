//! Lazy freeing: UNLINK and FLUSHALL/FLUSHDB ASYNC hand big values to a
//! background thread; INFO counts them as Redis does.

use crate::support::{damselfly, diff, Conn};
use std::time::Duration;

fn info_num(c: &mut Conn, field: &str) -> u64 {
    let info = c.cmd(&["INFO", "memory"]);
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in INFO: {info}"))
}

/// Waits (bounded) until nothing is pending, then reads `lazyfreed_objects`.
fn freed_when_done(c: &mut Conn) -> u64 {
    for _ in 0..500 {
        if info_num(c, "lazyfree_pending_objects") == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    info_num(c, "lazyfreed_objects")
}

fn sadd_many(c: &mut Conn, key: &str, n: usize) {
    let members: Vec<String> = (0..n).map(|i| format!("m{i}")).collect();
    let mut args: Vec<&str> = vec!["SADD", key];
    args.extend(members.iter().map(String::as_str));
    assert_eq!(c.cmd(&args), format!(":{n}\r\n"));
}

#[test]
fn unlink_frees_big_values_in_the_background_and_counts_them() {
    let d = damselfly(&[]);
    let mut c = Conn::open(d.port);
    let orig = info_num(&mut c, "used_memory");
    sadd_many(&mut c, "big", 100_000);
    c.cmd(&["SADD", "small", "a", "b"]);
    c.cmd(&["SET", "s", "v"]);
    let peak = info_num(&mut c, "used_memory");
    assert!(peak > orig + 1_000_000, "orig {orig} peak {peak}");
    assert_eq!(c.cmd(&["UNLINK", "big", "small", "s", "none"]), ":3\r\n");
    // Only the big set was worth the hand-off.
    assert_eq!(freed_when_done(&mut c), 1);
    // The same connection sent the 100k-argument request: what it kept
    // reserved for it is given back too.
    let after = info_num(&mut c, "used_memory");
    assert!(after < orig * 2, "orig {orig} after {after}");
    // DEL frees inline unless lazyfree-lazy-user-del says otherwise.
    sadd_many(&mut c, "big", 1000);
    assert_eq!(c.cmd(&["DEL", "big"]), ":1\r\n");
    assert_eq!(freed_when_done(&mut c), 1);
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "lazyfree-lazy-user-del", "yes"]),
        "+OK\r\n"
    );
    sadd_many(&mut c, "big", 1000);
    assert_eq!(c.cmd(&["DEL", "big"]), ":1\r\n");
    assert_eq!(freed_when_done(&mut c), 2);
    assert_eq!(c.cmd(&["CONFIG", "RESETSTAT"]), "+OK\r\n");
    assert_eq!(info_num(&mut c, "lazyfreed_objects"), 0);
}

#[test]
fn flush_async_frees_every_key_in_the_background() {
    let d = damselfly(&[]);
    let mut c = Conn::open(d.port);
    for k in ["a", "b", "c"] {
        c.cmd(&["SET", k, "v"]);
    }
    c.cmd(&["SELECT", "1"]);
    c.cmd(&["SET", "d", "v"]);
    assert_eq!(c.cmd(&["FLUSHDB", "ASYNC"]), "+OK\r\n");
    assert_eq!(freed_when_done(&mut c), 1);
    assert_eq!(c.cmd(&["DBSIZE"]), ":0\r\n");
    assert_eq!(c.cmd(&["FLUSHALL", "SYNC"]), "+OK\r\n");
    assert_eq!(freed_when_done(&mut c), 1);
    c.cmd(&["SELECT", "0"]);
    assert_eq!(c.cmd(&["DBSIZE"]), ":0\r\n");
    c.cmd(&["SET", "a", "v"]);
    c.cmd(&["SET", "b", "v"]);
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "lazyfree-lazy-user-flush", "yes"]),
        "+OK\r\n"
    );
    assert_eq!(c.cmd(&["FLUSHALL"]), "+OK\r\n");
    assert_eq!(freed_when_done(&mut c), 3);
    assert_eq!(c.cmd(&["DBSIZE"]), ":0\r\n");
    // The keyspace keeps working on the emptied tables.
    c.cmd(&["SET", "a", "again"]);
    assert_eq!(c.cmd(&["GET", "a"]), "$5\r\nagain\r\n");
}

#[test]
fn flush_modes_and_lazyfree_config_match_redis() {
    diff(
        r#"
        SET a 1
        FLUSHALL ASYNC
        FLUSHALL async
        FLUSHALL SYNC
        FLUSHALL LAZY
        FLUSHALL ASYNC SYNC
        FLUSHDB ASYNC
        FLUSHDB sync
        FLUSHDB x
        FLUSHDB ASYNC x
        CONFIG SET lazyfree-lazy-user-del yes
        CONFIG GET lazyfree-lazy-user-del
        CONFIG SET lazyfree-lazy-user-flush maybe
        CONFIG GET lazyfree-lazy-user-flush
        SET a 1
        DEL a
        UNLINK a
        "#,
    );
}
