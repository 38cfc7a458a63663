//! Keyspace commands (DEL EXPIRE TTL SCAN RENAME COPY MOVE OBJECT ...),
//! compared with redis-server where replies are deterministic, and checked
//! on Damselfly alone where they are not (SCAN order, RANDOMKEY, PTTL).

use crate::support::{damselfly, diff, Conn};
use std::collections::HashSet;
use std::time::Duration;

#[test]
fn del_exists_type_touch_match_redis() {
    diff(
        r#"
        SET a 1
        SET b 2
        SET "" empty
        SET "bin\x00key" v
        EXISTS a b a nokey
        EXISTS ""
        EXISTS "bin\x00key"
        TYPE a
        TYPE nokey
        TYPE ""
        TOUCH a b nokey a
        DEL a nokey a
        DEL a
        UNLINK b ""
        EXISTS a b ""
        DEL "bin\x00key"
        DEL
        UNLINK
        EXISTS
        TOUCH
        TYPE
        TYPE a b
        "#,
    );
}

#[test]
fn expire_family_matches_redis() {
    diff(
        r#"
        SET k v
        EXPIRE k 100
        TTL k
        EXPIRE k 100 NX
        EXPIRE k 200 XX
        TTL k
        EXPIRE k 50 GT
        EXPIRE k 300 GT
        TTL k
        EXPIRE k 400 LT
        EXPIRE k 10 LT
        TTL k
        # Same relative time again: GT/LT then depend on whether the
        # millisecond clock ticked in between, so these are not compared.
        ~EXPIRE k 10 LT XX
        EXPIRE k 10 nx xx
        EXPIRE k 10 gt lt
        EXPIRE k 10 nx gt
        EXPIRE k 10 nx lt
        ~EXPIRE k 10 xx gt
        EXPIRE k 10 foo
        EXPIRE k abc nx xx
        EXPIRE k abc foo
        EXPIRE k abc
        EXPIRE k ""
        EXPIRE k 1.5
        EXPIRE k 9223372036854775807
        EXPIRE k -9223372036854775808
        EXPIRE k 9223372036854775
        PEXPIRE k 9223372036854775807
        EXPIREAT k 9223372036854775807
        PEXPIREAT k 9223372036854775807
        ~PTTL k
        PEXPIRETIME k
        EXPIRETIME k
        TTL k
        PERSIST k
        PERSIST k
        TTL k
        PTTL k
        EXPIRETIME k
        PEXPIRETIME k
        SET n v
        EXPIRE n 10 XX
        EXPIRE n 10 GT
        EXPIRE n 10 LT
        TTL n
        PERSIST n
        EXPIRE n 20 NX
        EXPIRE nokey 10
        EXPIRE nokey 10 NX
        TTL nokey
        PTTL nokey
        EXPIRETIME nokey
        PEXPIRETIME nokey
        PERSIST nokey
        EXPIREAT k 33177117420
        EXPIRETIME k
        PEXPIREAT k 33177117420123
        PEXPIRETIME k
        EXPIRETIME k
        EXPIREAT k 33177117420 GT
        EXPIREAT k 33177117421 GT
        EXPIRETIME k
        EXPIRE k -1
        EXISTS k
        SET k v
        PEXPIREAT k 0
        EXISTS k
        SET k v
        EXPIREAT k 1
        EXISTS k
        SET k v
        PEXPIRE k -9223372036854775808
        EXISTS k
        SET k v
        EXPIRE k 100
        EXPIRE k -5 LT
        EXISTS k
        EXPIRE k
        PEXPIRE k
        TTL
        TTL a b
        PERSIST
        EXPIRETIME
        "#,
    );
}

#[test]
fn rename_copy_move_swapdb_match_redis() {
    diff(
        r#"
        SET a 1
        EXPIRE a 100
        RENAME a b
        EXISTS a
        GET b
        TTL b
        SET c 3
        RENAME b c
        GET c
        TTL c
        RENAME nokey x
        RENAME c c
        RENAME nokey nokey
        RENAMENX c c
        RENAMENX nokey x
        SET d 4
        RENAMENX c d
        RENAMENX c e
        GET e
        TTL e
        SET "" empty
        RENAME "" "bin\x00"
        GET "bin\x00"
        RENAME a
        RENAMENX a b c
        COPY e e
        COPY e f
        GET f
        TTL f
        COPY e f
        COPY e f REPLACE
        COPY e f replace replace
        COPY nokey f
        COPY nokey k k
        COPY e e db 1
        COPY e e DB
        COPY e e DB x
        COPY e e DB -1
        COPY e e DB 16
        COPY e e DB 99999999999
        COPY e e foo
        SELECT 1
        GET e
        TTL e
        SELECT 0
        COPY e e db 1
        COPY e e db 1 replace
        COPY
        COPY e
        MOVE e 1
        MOVE d 1
        EXISTS d
        SELECT 1
        GET d
        SELECT 0
        MOVE e abc
        MOVE e 0
        MOVE nokey 0
        MOVE e -1
        MOVE e 16
        MOVE e 99999999999
        MOVE nokey 1
        MOVE e
        SET x inzero
        SWAPDB 0 1
        GET x
        GET d
        SWAPDB 1 0
        GET x
        SWAPDB 0 0
        SWAPDB a 1
        SWAPDB 1 a
        SWAPDB a a
        SWAPDB 0 16
        SWAPDB -1 0
        SWAPDB 99999999999 0
        SWAPDB 0 99999999999
        SWAPDB 0
        "#,
    );
}

#[test]
fn object_keys_scan_randomkey_match_redis() {
    diff(
        r#"
        RANDOMKEY
        SCAN 0
        KEYS *
        SET n 5
        SET neg -5
        SET big 10000
        SET s hello
        SET long aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
        OBJECT ENCODING n
        OBJECT ENCODING s
        OBJECT ENCODING long
        OBJECT ENCODING nokey
        OBJECT REFCOUNT n
        OBJECT REFCOUNT neg
        OBJECT REFCOUNT big
        OBJECT REFCOUNT s
        OBJECT REFCOUNT nokey
        OBJECT IDLETIME s
        OBJECT IDLETIME nokey
        OBJECT FREQ s
        OBJECT FREQ nokey
        OBJECT HELP
        OBJECT help
        OBJECT HELP extra
        OBJECT ENCODING
        OBJECT ENCODING a b
        OBJECT foo
        OBJECT
        KEYS s
        KEYS lon*
        KEYS nomatch*
        KEYS
        KEYS a b
        FLUSHALL
        SET only v
        RANDOMKEY
        KEYS *
        SCAN 0
        SCAN 0 COUNT 1000
        SCAN 0 MATCH on*
        SCAN 0 MATCH x*
        SCAN 0 TYPE string
        SCAN 0 TYPE STRING
        SCAN 0 TYPE list
        SCAN 0 TYPE nonexist
        SCAN 0 COUNT 0
        SCAN 0 COUNT -1
        SCAN 0 COUNT x
        SCAN 0 MATCH
        SCAN 0 COUNT
        SCAN 0 TYPE
        SCAN 0 FOO bar
        SCAN 0 MATCH * COUNT 5 TYPE string
        SCAN ""
        SCAN " 5"
        SCAN 1.5
        SCAN abc
        SCAN -
        SCAN 18446744073709551616
        SCAN
        RANDOMKEY extra
        "#,
    );
}

#[test]
fn resp3_replies_match_redis() {
    diff(
        r#"
        ~HELLO 3
        RANDOMKEY
        OBJECT ENCODING nokey
        OBJECT IDLETIME nokey
        SET k v
        OBJECT ENCODING k
        TYPE k
        TTL k
        SCAN 0
        KEYS *
        RENAME k k2
        COPY k2 k3
        MOVE k3 1
        SWAPDB 0 1
        OBJECT HELP
        "#,
    );
}

fn scan_all(c: &mut Conn, extra: &[&str]) -> Vec<String> {
    let mut cursor = "0".to_string();
    let mut out = Vec::new();
    loop {
        let mut args = vec!["SCAN", &cursor];
        args.extend_from_slice(extra);
        let reply = c.cmd(&args);
        let (next, keys) = parse_scan(&reply);
        out.extend(keys);
        cursor = next;
        if cursor == "0" {
            return out;
        }
    }
}

/// Parses a RESP2 SCAN reply: `*2 $n cursor *m $l key ...`.
fn parse_scan(reply: &str) -> (String, Vec<String>) {
    let lines: Vec<&str> = reply.split("\r\n").collect();
    assert_eq!(lines[0], "*2", "{reply}");
    let cursor = lines[2].to_string();
    let n: usize = lines[3][1..].parse().expect("key count");
    let keys = (0..n).map(|i| lines[5 + 2 * i].to_string()).collect();
    (cursor, keys)
}

#[test]
fn scan_returns_every_key_with_options() {
    let d = damselfly(&[]);
    let mut c = Conn::open(d.port);
    for i in 0..1000 {
        c.cmd(&["SET", &format!("key:{i}"), "v"]);
    }
    for count in ["1", "10", "100", "10000"] {
        let keys = scan_all(&mut c, &["COUNT", count]);
        let set: HashSet<_> = keys.iter().cloned().collect();
        assert_eq!(set.len(), 1000, "COUNT {count}");
    }
    let keys = scan_all(&mut c, &["MATCH", "key:1*"]);
    let set: HashSet<_> = keys.into_iter().collect();
    assert_eq!(set.len(), 111);
    assert!(set.iter().all(|k| k.starts_with("key:1")));
    assert_eq!(scan_all(&mut c, &["TYPE", "string"]).len(), 1000);
    assert!(scan_all(&mut c, &["TYPE", "hash"]).is_empty());
    // Expired keys are not returned.
    for i in 0..100 {
        c.cmd(&["PEXPIRE", &format!("key:{i}"), "1"]);
    }
    std::thread::sleep(Duration::from_millis(20));
    let set: HashSet<_> = scan_all(&mut c, &[]).into_iter().collect();
    assert_eq!(set.len(), 900);
    assert_eq!(c.cmd(&["DBSIZE"]), ":900\r\n");
    // Any cursor a client sends is handled without failing.
    for cur in ["18446744073709551615", "-1", "123456789", "255", "256"] {
        assert!(c.cmd(&["SCAN", cur]).starts_with("*2\r\n"));
    }
}

#[test]
fn scan_returns_stable_keys_while_others_churn() {
    let d = damselfly(&[]);
    let mut c = Conn::open(d.port);
    for i in 0..2000 {
        c.cmd(&["SET", &format!("stable:{i}"), "v"]);
    }
    let port = d.port;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let churn = std::thread::spawn(move || {
        let mut w = Conn::open(port);
        let mut round = 0u64;
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
            // Grow the tables a lot, then shrink them again.
            for i in 0..3000 {
                w.cmd(&["SET", &format!("churn:{round}:{i}"), "x"]);
            }
            for i in 0..3000 {
                w.cmd(&["DEL", &format!("churn:{round}:{i}")]);
            }
            round += 1;
        }
    });
    for _ in 0..3 {
        let mut cursor = "0".to_string();
        let mut seen = HashSet::new();
        loop {
            let reply = c.cmd(&["SCAN", &cursor, "COUNT", "7"]);
            let (next, keys) = parse_scan(&reply);
            seen.extend(keys);
            cursor = next;
            std::thread::sleep(Duration::from_micros(200));
            if cursor == "0" {
                break;
            }
        }
        for i in 0..2000 {
            assert!(seen.contains(&format!("stable:{i}")), "stable:{i} missed");
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    churn.join().expect("churn thread");
}

#[test]
fn randomkey_returns_live_keys_only() {
    let d = damselfly(&[]);
    let mut c = Conn::open(d.port);
    assert_eq!(c.cmd(&["RANDOMKEY"]), "$-1\r\n");
    for i in 0..50 {
        c.cmd(&["SET", &format!("k{i}"), "v"]);
    }
    let mut seen = HashSet::new();
    for _ in 0..500 {
        let r = c.cmd(&["RANDOMKEY"]);
        let key = r.split("\r\n").nth(1).expect("bulk").to_string();
        assert!(key.starts_with('k'));
        seen.insert(key);
    }
    assert!(seen.len() > 20, "only {} distinct keys", seen.len());
    // Only expired keys left: RANDOMKEY deletes them and answers null.
    c.cmd(&["FLUSHALL"]);
    for i in 0..20 {
        c.cmd(&["SET", &format!("e{i}"), "v", "PX", "1"]);
    }
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(c.cmd(&["RANDOMKEY"]), "$-1\r\n");
    c.cmd(&["SET", "live", "v"]);
    assert_eq!(c.cmd(&["RANDOMKEY"]), "$4\r\nlive\r\n");
}

fn int_reply(r: &str) -> i64 {
    r.trim_start_matches(':').trim_end().parse().expect(r)
}

#[test]
fn ttl_and_lazy_expiry_on_the_real_clock() {
    let d = damselfly(&[]);
    let mut c = Conn::open(d.port);
    c.cmd(&["SET", "k", "v"]);
    assert_eq!(c.cmd(&["PEXPIRE", "k", "5000"]), ":1\r\n");
    let pttl = int_reply(&c.cmd(&["PTTL", "k"]));
    assert!((4900..=5000).contains(&pttl), "{pttl}");
    let at = int_reply(&c.cmd(&["PEXPIRETIME", "k"]));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    assert!((at - now - 5000).abs() < 200, "{at} {now}");
    assert_eq!(c.cmd(&["PEXPIRE", "k", "50"]), ":1\r\n");
    assert_eq!(c.cmd(&["EXISTS", "k"]), ":1\r\n");
    std::thread::sleep(Duration::from_millis(120));
    assert_eq!(c.cmd(&["EXISTS", "k"]), ":0\r\n");
    assert_eq!(c.cmd(&["TTL", "k"]), ":-2\r\n");
    // A key renamed keeps its TTL; the target's TTL does not survive.
    c.cmd(&["SET", "a", "1", "EX", "100"]);
    c.cmd(&["SET", "b", "2", "EX", "200"]);
    c.cmd(&["RENAME", "a", "b"]);
    let ttl = int_reply(&c.cmd(&["TTL", "b"]));
    assert!((99..=100).contains(&ttl), "{ttl}");
    // Keys in different shards rename atomically.
    for i in 0..200 {
        let (from, to) = (format!("src{i}"), format!("dst{i}"));
        c.cmd(&["SET", &from, &i.to_string()]);
        assert_eq!(c.cmd(&["RENAME", &from, &to]), "+OK\r\n");
        assert_eq!(c.cmd(&["EXISTS", &from, &to]), ":1\r\n");
    }
    assert_eq!(c.cmd(&["DBSIZE"]), ":201\r\n");
}

#[test]
fn active_expiry_removes_unread_keys() {
    let d = damselfly(&[]);
    let mut c = Conn::open(d.port);
    for i in 0..100 {
        c.cmd(&["SET", &format!("v{i}"), "x", "PX", "10"]);
    }
    c.cmd(&["SET", "keep", "x"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        if c.cmd(&["DBSIZE"]) == ":1\r\n" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "keys not expired");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn mass_expiry_in_slices_removes_every_key_of_every_db() {
    let d = damselfly(&[]);
    let mut c = Conn::open(d.port);
    // Far more keys than one slice removes, all due at the same instant,
    // in two DBs; clients keep being served while the cycle runs.
    let at = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 2000)
        .to_string();
    let mut batch = Vec::new();
    for (db, n) in [("0", 30_000), ("3", 5_000)] {
        batch.extend(Conn::encode(&["SELECT", db]));
        for i in 0..n {
            batch.extend(Conn::encode(&["SET", &format!("e{i}"), "v", "PXAT", &at]));
        }
    }
    batch.extend(Conn::encode(&["SELECT", "0"]));
    c.send_raw(&batch);
    for _ in 0..35_003 {
        c.read();
    }
    c.cmd(&["SET", "keep", "x"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        assert_eq!(c.cmd(&["PING"]), "+PONG\r\n");
        let stats = c.cmd(&["INFO", "stats"]);
        if stats.contains("expired_keys:35000\r\n") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "keys not expired: {stats}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(c.cmd(&["DBSIZE"]), ":1\r\n");
    assert_eq!(c.cmd(&["SELECT", "3"]), "+OK\r\n");
    assert_eq!(c.cmd(&["DBSIZE"]), ":0\r\n");
}

#[test]
fn debug_set_active_expire_pauses_background_expiry() {
    use crate::support::{damselfly, Conn};
    let d = damselfly(&[]);
    let mut c = Conn::open(d.port);
    assert_eq!(c.cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]), "+OK\r\n");
    c.cmd(&["SET", "k", "v", "PX", "1"]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    // Not read, not actively expired: still counted.
    assert_eq!(c.cmd(&["DBSIZE"]), ":1\r\n");
    assert_eq!(c.cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "1"]), "+OK\r\n");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while c.cmd(&["DBSIZE"]) != ":0\r\n" {
        assert!(
            std::time::Instant::now() < deadline,
            "active expiry did not remove the key"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
