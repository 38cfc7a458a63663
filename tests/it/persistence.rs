//! Persistence: DUMP/RESTORE payloads and RDB files exchanged with a real
//! redis-server in both directions, point-in-time BGSAVE under writes,
//! corrupt snapshots, failed saves, shutdown saves and the schedule.

use crate::support::{damselfly, diff, free_port, redis, redis_in, spawn_damselfly, tempdir, Proc};
use redis::Value as V;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn conn(port: u16, db: usize) -> redis::Connection {
    redis::Client::open(format!("redis://127.0.0.1:{port}/{db}"))
        .and_then(|c| c.get_connection())
        .expect("connect")
}

fn q<T: redis::FromRedisValue>(c: &mut redis::Connection, args: &[&[u8]]) -> T {
    let mut cmd = redis::cmd(std::str::from_utf8(args[0]).expect("name"));
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(c)
        .unwrap_or_else(|e| panic!("{:?}: {e}", String::from_utf8_lossy(args[0])))
}

/// Every type and encoding Redis 7.0 writes, in three DBs, some with TTLs.
fn fill(port: u16) {
    for db in [0usize, 3, 15] {
        let mut c = conn(port, db);
        let p = format!("db{db}:");
        let k = |s: &str| format!("{p}{s}");
        let _: () = redis::pipe()
            .cmd("SET")
            .arg(k("int"))
            .arg(-123456789)
            .cmd("SET")
            .arg(k("bigint"))
            .arg(i64::MAX)
            .cmd("SET")
            .arg(k("str"))
            .arg("hello")
            .cmd("SET")
            .arg(k("bin"))
            .arg(&[0u8, 255, 13, 10][..])
            .cmd("SET")
            .arg(k("long"))
            .arg("abc".repeat(500))
            .cmd("SET")
            .arg(k("ttl"))
            .arg("soon")
            .arg("PX")
            .arg(3_600_000)
            .cmd("RPUSH")
            .arg(k("list"))
            .arg(&["a", "1", "-70000", "x"])
            .cmd("RPUSH")
            .arg(k("biglist"))
            .arg(
                (0..5000)
                    .map(|i| format!("element-{i}"))
                    .collect::<Vec<_>>(),
            )
            .cmd("HSET")
            .arg(k("hash"))
            .arg(&["f", "v", "n", "12"])
            .cmd("HSET")
            .arg(k("bighash"))
            .arg(
                (0..600)
                    .flat_map(|i| [format!("f{i}"), format!("v{i}")])
                    .collect::<Vec<_>>(),
            )
            .cmd("HSET")
            .arg(k("longhash"))
            .arg("f")
            .arg("v".repeat(100))
            .cmd("SADD")
            .arg(k("intset"))
            .arg(&["1", "-5", "70000", "9999999999"])
            .cmd("SADD")
            .arg(k("set"))
            .arg(&["a", "b", "1"])
            .cmd("SADD")
            .arg(k("bigintset"))
            .arg((0..600).collect::<Vec<_>>())
            .cmd("ZADD")
            .arg(k("zset"))
            .arg(&["1", "a", "2.5", "b", "-inf", "c", "1e300", "d"])
            .cmd("ZADD")
            .arg(k("bigzset"))
            .arg(
                (0..300)
                    .flat_map(|i| [format!("{}", i as f64 / 7.0), format!("m{i}")])
                    .collect::<Vec<_>>(),
            )
            .cmd("EXPIRE")
            .arg(k("bighash"))
            .arg(10_000)
            .query(&mut c)
            .expect("fill");
    }
}

/// Every key of every DB: (db, key) -> (type, has ttl, contents in a
/// canonical order).
type Contents = BTreeMap<(usize, Vec<u8>), (String, bool, Vec<Vec<u8>>)>;

fn contents(port: u16) -> Contents {
    let mut out = BTreeMap::new();
    for db in 0..16 {
        let mut c = conn(port, db);
        let keys: Vec<Vec<u8>> = q(&mut c, &[b"KEYS", b"*"]);
        for key in keys {
            let t: String = q(&mut c, &[b"TYPE", &key]);
            let ttl: i64 = q(&mut c, &[b"PTTL", &key]);
            let mut items: Vec<Vec<u8>> = match t.as_str() {
                "string" => vec![q(&mut c, &[b"GET", &key])],
                "list" => q(&mut c, &[b"LRANGE", &key, b"0", b"-1"]),
                "hash" => {
                    let m: Vec<Vec<u8>> = q(&mut c, &[b"HGETALL", &key]);
                    m.chunks(2)
                        .map(|p| [p[0].clone(), b"=".to_vec(), p[1].clone()].concat())
                        .collect()
                }
                "set" => q(&mut c, &[b"SMEMBERS", &key]),
                "zset" => q(&mut c, &[b"ZRANGE", &key, b"0", b"-1", b"WITHSCORES"]),
                other => panic!("unexpected type {other}"),
            };
            if t == "hash" || t == "set" {
                items.sort();
            }
            out.insert((db, key), (t, ttl > 0, items));
        }
    }
    out
}

fn assert_same_data(a: u16, b: u16) {
    let (x, y) = (contents(a), contents(b));
    assert!(!x.is_empty());
    assert_eq!(x.len(), y.len(), "key counts differ");
    for (k, v) in &x {
        assert_eq!(
            Some(v),
            y.get(k),
            "key {:?} of db {}",
            String::from_utf8_lossy(&k.1),
            k.0
        );
    }
}

/// Starts damselfly in `dir` (which may already hold a snapshot).
fn damselfly_in(dir: &Path, extra: &[&str]) -> (std::process::Child, u16) {
    let port = free_port();
    // The log goes to stdout unless --logtostderr; these tests read stderr.
    let args: Vec<&str> = std::iter::once("--logtostderr")
        .chain(extra.iter().copied())
        .collect();
    (spawn_damselfly(port, dir, &args, Stdio::piped()), port)
}

/// Waits until the server answers PING with PONG (not -LOADING).
fn wait_pong(port: u16, child: &mut std::process::Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("server exited during start-up: {status}");
        }
        if let Ok(mut c) = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
            .and_then(|c| c.get_connection())
        {
            if let Ok(V::SimpleString(s)) = redis::cmd("PING").query::<V>(&mut c) {
                if s == "PONG" {
                    return;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("server on {port} never became ready");
}

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_in(dir: &Path, extra: &[&str]) -> (Child, u16) {
    let (mut c, port) = damselfly_in(dir, extra);
    wait_pong(port, &mut c);
    (Child(c), port)
}

fn info_field(port: u16, name: &str) -> String {
    let mut c = conn(port, 0);
    let info: String = q(&mut c, &[b"INFO", b"persistence"]);
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")).map(str::to_string))
        .unwrap_or_else(|| panic!("no {name} in INFO"))
}

fn config_set(c: &mut redis::Connection, name: &str, value: &str) {
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg(name)
        .arg(value)
        .query(c)
        .unwrap();
}

fn wait_bgsave_done(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while info_field(port, "rdb_bgsave_in_progress") != "0" {
        assert!(Instant::now() < deadline, "BGSAVE never finished");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn dump_payloads_match_redis_byte_for_byte() {
    diff(
        r#"
        SET s hello
        SET i 12345
        SET n -7
        SET big 9999999999
        SET lz aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaabcabcabcabc
        RPUSH l a b 1 2 300 -5 70000 -4096 4095 32767 8388607 2147483647 9223372036854775807 -9223372036854775808
        HSET h f v f2 17
        SADD si 1 5 -3
        SADD si2 1 70000
        SADD si3 1 9999999999
        ZADD z 1 a 2.5 b -3 c 1e20 d 0.1 e 4503599627370497 f
        DUMP s
        DUMP i
        DUMP n
        DUMP big
        DUMP lz
        DUMP l
        DUMP h
        DUMP si
        DUMP si2
        DUMP si3
        DUMP z
        DUMP nosuchkey
        "#,
    );
}

#[test]
fn restore_errors_match_redis() {
    diff(
        r#"
        SET s hello
        RESTORE k 0 "\x00\x05hello\n\x00\xd7\x9a\x8b\x88\x1b\xd7\x5f\x3b"
        RESTORE k 0 "\x00\x05hello\n\x00\xd7\x9a\x8b\x88\x1b\xd7\x5f\x3c"
        RESTORE k 0 "\x00\x05hello\x0c\x00\xd7\x9a\x8b\x88\x1b\xd7\x5f\x3b"
        RESTORE k 0 short
        RESTORE s 0 "\x00\x05hello\n\x00\xd7\x9a\x8b\x88\x1b\xd7\x5f\x3b"
        RESTORE s 0 garbage REPLACE
        RESTORE k -1 x
        RESTORE k abc x
        RESTORE k 0 x BADOPT
        RESTORE k 0 x IDLETIME
        RESTORE k 0 x IDLETIME -1
        RESTORE k 0 x IDLETIME abc
        RESTORE k 0 x FREQ 256
        RESTORE k 0 x FREQ -1
        RESTORE k 0 x FREQ 1 IDLETIME 1
        RESTORE k 0 x IDLETIME 1 FREQ 1
        RESTORE k
        DUMP
        "#,
    );
}

#[test]
fn restore_applies_ttl_replace_and_idletime() {
    let d = damselfly(&[]);
    let mut c = conn(d.port, 0);
    let _: () = redis::cmd("RPUSH")
        .arg("l")
        .arg(&["a", "b"])
        .query(&mut c)
        .unwrap();
    let payload: Vec<u8> = redis::cmd("DUMP").arg("l").query(&mut c).unwrap();
    let _: () = redis::cmd("RESTORE")
        .arg("copy")
        .arg(100_000)
        .arg(&payload)
        .query(&mut c)
        .unwrap();
    let ttl: i64 = redis::cmd("PTTL").arg("copy").query(&mut c).unwrap();
    assert!(ttl > 90_000 && ttl <= 100_000, "{ttl}");
    // An absolute TTL in the past with REPLACE deletes the key.
    let _: () = redis::cmd("RESTORE")
        .arg("copy")
        .arg(1)
        .arg(&payload)
        .arg("REPLACE")
        .arg("ABSTTL")
        .query(&mut c)
        .unwrap();
    let n: i64 = redis::cmd("EXISTS").arg("copy").query(&mut c).unwrap();
    assert_eq!(n, 0);
    let _: () = redis::cmd("RESTORE")
        .arg("idle")
        .arg(0)
        .arg(&payload)
        .arg("IDLETIME")
        .arg(1000)
        .query(&mut c)
        .unwrap();
    let idle: i64 = redis::cmd("OBJECT")
        .arg("IDLETIME")
        .arg("idle")
        .query(&mut c)
        .unwrap();
    assert!((1000..1010).contains(&idle), "{idle}");
    let l: Vec<String> = redis::cmd("LRANGE")
        .arg("idle")
        .arg(0)
        .arg(-1)
        .query(&mut c)
        .unwrap();
    assert_eq!(l, ["a", "b"]);
}

/// Copies every key from one server to the other with DUMP and RESTORE.
fn copy_by_dump(from: u16, to: u16) {
    for db in 0..16 {
        let (mut a, mut b) = (conn(from, db), conn(to, db));
        let keys: Vec<Vec<u8>> = q(&mut a, &[b"KEYS", b"*"]);
        for key in keys {
            let payload: Vec<u8> = q(&mut a, &[b"DUMP", &key]);
            let ttl: i64 = q(&mut a, &[b"PTTL", &key]);
            let ttl = ttl.max(0).to_string();
            let _: () = q(&mut b, &[b"RESTORE", &key, ttl.as_bytes(), &payload]);
        }
    }
}

#[test]
fn dump_payloads_restore_across_both_servers() {
    let (r, d) = (redis(), damselfly(&[]));
    fill(r.port);
    copy_by_dump(r.port, d.port);
    assert_same_data(r.port, d.port);
    let (r2, d2) = (redis(), damselfly(&[]));
    fill(d2.port);
    copy_by_dump(d2.port, r2.port);
    assert_same_data(d2.port, r2.port);
    // Encodings survive too.
    let mut c = conn(d.port, 0);
    for (k, enc) in [
        ("db0:bighash", "hashtable"),
        ("db0:longhash", "hashtable"),
        ("db0:intset", "intset"),
        ("db0:bigintset", "hashtable"),
        ("db0:bigzset", "skiplist"),
        ("db0:zset", "listpack"),
    ] {
        let e: String = redis::cmd("OBJECT")
            .arg("ENCODING")
            .arg(k)
            .query(&mut c)
            .unwrap();
        assert_eq!(e, enc, "{k}");
    }
}

#[test]
fn redis_rdb_file_loads_into_damselfly() {
    let r = redis();
    fill(r.port);
    let mut c = conn(r.port, 0);
    let _: () = redis::cmd("SAVE").query(&mut c).unwrap();
    let dir = tempdir::Dir::new("rdb-from-redis");
    std::fs::copy(r.dir.0.join("dump.rdb"), dir.0.join("dump.rdb")).unwrap();
    let (_d, port) = start_in(&dir.0, &[]);
    assert_same_data(r.port, port);
    assert_eq!(
        info_field(port, "rdb_last_load_keys_loaded"),
        contents(r.port).len().to_string()
    );
}

#[test]
fn damselfly_rdb_file_loads_into_redis() {
    let d = damselfly(&[]);
    fill(d.port);
    let mut c = conn(d.port, 0);
    let _: () = redis::cmd("SAVE").query(&mut c).unwrap();
    let dir = tempdir::Dir::new("rdb-to-redis");
    std::fs::copy(d.dir.0.join("dump.rdb"), dir.0.join("dump.rdb")).unwrap();
    let r = redis_in(dir);
    assert_same_data(d.port, r.port);
    // And back: our own file loads into us.
    let (_d2, port2) = start_in(&d.dir.0, &[]);
    assert_same_data(d.port, port2);
}

#[test]
fn bgsave_writes_the_keyspace_as_it_was_when_it_began() {
    let d = damselfly(&[]);
    let mut c = conn(d.port, 0);
    let n = 2000;
    let mut p = redis::pipe();
    for i in 0..n {
        p.cmd("SET")
            .arg(format!("k{i}"))
            .arg(format!("old{i}"))
            .ignore();
        p.cmd("RPUSH").arg(format!("l{i}")).arg("a").ignore();
    }
    let _: () = p.query(&mut c).unwrap();
    // 2 ms a key keeps the snapshot running while we write.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("rdb-key-save-delay")
        .arg(2000)
        .query(&mut c)
        .unwrap();
    let reply: String = redis::cmd("BGSAVE").query(&mut c).unwrap();
    assert_eq!(reply, "Background saving started");
    let e: String = redis::cmd("BGSAVE")
        .query(&mut c)
        .map(|_: String| String::new())
        .unwrap_or_else(|e| e.to_string());
    assert!(e.contains("already in progress"), "{e}");
    let mut p = redis::pipe();
    for i in 0..n {
        p.cmd("SET").arg(format!("k{i}")).arg("new").ignore();
        p.cmd("RPUSH").arg(format!("l{i}")).arg("b").ignore();
        p.cmd("SET").arg(format!("extra{i}")).arg("x").ignore();
        if i % 2 == 0 {
            p.cmd("DEL").arg(format!("l{i}")).ignore();
        }
    }
    let _: () = p.query(&mut c).unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("rdb-key-save-delay")
        .arg(0)
        .query(&mut c)
        .unwrap();
    wait_bgsave_done(d.port);
    assert_eq!(info_field(d.port, "rdb_last_bgsave_status"), "ok");
    // The file holds exactly the state before the writes.
    let dir = tempdir::Dir::new("pit");
    std::fs::copy(d.dir.0.join("dump.rdb"), dir.0.join("dump.rdb")).unwrap();
    let r = redis_in(dir);
    let mut rc = conn(r.port, 0);
    let size: i64 = redis::cmd("DBSIZE").query(&mut rc).unwrap();
    assert_eq!(size, 2 * n);
    for i in (0..n).step_by(97) {
        let v: String = redis::cmd("GET")
            .arg(format!("k{i}"))
            .query(&mut rc)
            .unwrap();
        assert_eq!(v, format!("old{i}"));
        let l: Vec<String> = redis::cmd("LRANGE")
            .arg(format!("l{i}"))
            .arg(0)
            .arg(-1)
            .query(&mut rc)
            .unwrap();
        assert_eq!(l, ["a"]);
    }
    // Writes were not lost either.
    let v: String = redis::cmd("GET").arg("k0").query(&mut c).unwrap();
    assert_eq!(v, "new");
}

#[test]
fn reads_during_bgsave_leave_the_writing_to_the_snapshot_thread() {
    let d = damselfly(&[]);
    let mut c = conn(d.port, 0);
    let n = 2000;
    let mut p = redis::pipe();
    for i in 0..n {
        p.cmd("SET").arg(format!("k{i}")).arg(i).ignore();
    }
    let _: () = p.query(&mut c).unwrap();
    // The snapshot's own thread sleeps 0.2 s per key it writes, so it
    // is still on its first shard while we read.
    config_set(&mut c, "rdb-key-save-delay", "200000");
    let _: String = redis::cmd("BGSAVE").query(&mut c).unwrap();
    let mut p = redis::pipe();
    for i in 0..n {
        p.cmd("GET").arg(format!("k{i}"));
    }
    let got: Vec<String> = p.query(&mut c).unwrap();
    assert_eq!(got.len(), n);
    assert_eq!(info_field(d.port, "rdb_bgsave_in_progress"), "1");
    // Reads (and INFO) wrote nothing: at most the thread's first shard is
    // done (256 shards, ~8 keys each).
    let done: usize = info_field(d.port, "current_save_keys_processed")
        .parse()
        .unwrap();
    assert!(done < n / 10, "{done} keys written by reads");
    // A write still pays its key's debt first.
    let mut p = redis::pipe();
    for i in 0..n {
        p.cmd("INCR").arg(format!("k{i}")).ignore();
    }
    let _: () = p.query(&mut c).unwrap();
    let done: usize = info_field(d.port, "current_save_keys_processed")
        .parse()
        .unwrap();
    assert_eq!(done, n);
    config_set(&mut c, "rdb-key-save-delay", "0");
    wait_bgsave_done(d.port);
    assert_eq!(info_field(d.port, "rdb_last_bgsave_status"), "ok");
    // The file holds the values from before the INCRs.
    let dir = tempdir::Dir::new("reads-pit");
    std::fs::copy(d.dir.0.join("dump.rdb"), dir.0.join("dump.rdb")).unwrap();
    let r = redis_in(dir);
    let mut rc = conn(r.port, 0);
    for i in (0..n).step_by(37) {
        let v: String = redis::cmd("GET")
            .arg(format!("k{i}"))
            .query(&mut rc)
            .unwrap();
        assert_eq!(v, i.to_string());
    }
}

#[test]
fn writes_during_bgsave_that_reach_other_keys_and_dbs_keep_the_point_in_time() {
    let d = damselfly(&[]);
    let mut c = conn(d.port, 0);
    let mut c1 = conn(d.port, 1);
    let mut p = redis::pipe();
    for i in 0..20 {
        p.cmd("SET").arg(format!("fill{i}")).arg(i).ignore();
    }
    p.cmd("RPUSH").arg("{t}dst").arg("old").ignore();
    p.cmd("SET").arg("moved").arg("db0").ignore();
    p.cmd("SET").arg("{t}gone").arg("x").ignore();
    let _: () = p.query(&mut c).unwrap();
    let _: () = redis::cmd("SET")
        .arg("other")
        .arg("db1")
        .query(&mut c1)
        .unwrap();
    // A BLMOVE waits on {t}src for {t}dst, a key of the same shard that
    // the LPUSH serving it does not name.
    let mut blocked = crate::support::Conn::open(d.port);
    blocked.send(&["BLMOVE", "{t}src", "{t}dst", "LEFT", "LEFT", "0"]);
    let mut raw = crate::support::Conn::open(d.port);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !raw
        .cmd(&["INFO", "clients"])
        .contains("blocked_clients:1\r\n")
    {
        assert!(Instant::now() < deadline, "BLMOVE never blocked");
        std::thread::sleep(Duration::from_millis(10));
    }
    // 0.1 s per key the snapshot's thread writes itself: it is still
    // busy while the writes below pay their keys.
    config_set(&mut c, "rdb-key-save-delay", "100000");
    let _: String = redis::cmd("BGSAVE").query(&mut c).unwrap();
    let mut p = redis::pipe();
    p.cmd("LPUSH").arg("{t}src").arg("new").ignore();
    // MOVE writes the key into DB 1, where it was absent at the start.
    p.cmd("MOVE").arg("moved").arg(1).ignore();
    p.cmd("DEL").arg("{t}gone").ignore();
    p.cmd("SET").arg("{t}born").arg("later").ignore();
    let _: () = p.query(&mut c).unwrap();
    assert_eq!(blocked.read(), b"$3\r\nnew\r\n");
    let _: () = redis::cmd("SET")
        .arg("other")
        .arg("changed")
        .query(&mut c1)
        .unwrap();
    config_set(&mut c, "rdb-key-save-delay", "0");
    wait_bgsave_done(d.port);
    assert_eq!(info_field(d.port, "rdb_last_bgsave_status"), "ok");
    let dir = tempdir::Dir::new("keys-pit");
    std::fs::copy(d.dir.0.join("dump.rdb"), dir.0.join("dump.rdb")).unwrap();
    let r = redis_in(dir);
    let mut rc = conn(r.port, 0);
    let mut rc1 = conn(r.port, 1);
    let size: i64 = redis::cmd("DBSIZE").query(&mut rc).unwrap();
    assert_eq!(size, 23);
    let l: Vec<String> = redis::cmd("LRANGE")
        .arg("{t}dst")
        .arg(0)
        .arg(-1)
        .query(&mut rc)
        .unwrap();
    assert_eq!(l, ["old"]);
    let v: Option<String> = redis::cmd("GET").arg("moved").query(&mut rc).unwrap();
    assert_eq!(v.as_deref(), Some("db0"));
    let v: Option<String> = redis::cmd("GET").arg("{t}gone").query(&mut rc).unwrap();
    assert_eq!(v.as_deref(), Some("x"));
    let v: Option<String> = redis::cmd("GET").arg("{t}born").query(&mut rc).unwrap();
    assert_eq!(v, None);
    let size: i64 = redis::cmd("DBSIZE").query(&mut rc1).unwrap();
    assert_eq!(size, 1);
    let v: Option<String> = redis::cmd("GET").arg("other").query(&mut rc1).unwrap();
    assert_eq!(v.as_deref(), Some("db1"));
}

#[test]
fn corrupt_or_truncated_snapshot_stops_startup() {
    let d = damselfly(&[]);
    fill(d.port);
    let mut c = conn(d.port, 0);
    let _: () = redis::cmd("SAVE").query(&mut c).unwrap();
    let good = std::fs::read(d.dir.0.join("dump.rdb")).unwrap();
    let mut flipped = good.clone();
    flipped[good.len() / 2] ^= 0x55;
    for bad in [
        good[..good.len() / 2].to_vec(),
        flipped,
        b"not an rdb file".to_vec(),
    ] {
        let dir = tempdir::Dir::new("corrupt");
        std::fs::write(dir.0.join("dump.rdb"), &bad).unwrap();
        let (child, _) = damselfly_in(&dir.0, &[]);
        let out = child.wait_with_output().unwrap();
        assert!(!out.status.success());
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(log.contains("dump.rdb") && log.contains("Exiting"), "{log}");
    }
}

#[test]
fn failed_bgsave_reports_err_and_refuses_writes() {
    // The file's directory does not exist, so every save fails.
    let d = damselfly(&["--dbfilename", "missing/dump.rdb"]);
    let mut c = conn(d.port, 0);
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("save")
        .arg("3600 1")
        .query(&mut c)
        .unwrap();
    let r: redis::RedisResult<String> = redis::cmd("SAVE").query(&mut c);
    assert!(r.is_err());
    let _: String = redis::cmd("BGSAVE").query(&mut c).unwrap_or_default();
    wait_bgsave_done(d.port);
    assert_eq!(info_field(d.port, "rdb_last_bgsave_status"), "err");
    let mut raw = crate::support::Conn::open(d.port);
    let set = raw.cmd(&["SET", "a", "1"]);
    assert!(
        set.starts_with("-MISCONF Redis is configured to save RDB snapshots"),
        "{set}"
    );
    assert!(raw.cmd(&["PING"]).starts_with("-MISCONF"));
    assert_eq!(raw.cmd(&["GET", "a"]), "$-1\r\n");
    // Without save rules writes are allowed again, as in Redis.
    assert_eq!(raw.cmd(&["CONFIG", "SET", "save", ""]), "+OK\r\n");
    assert_eq!(raw.cmd(&["SET", "a", "1"]), "+OK\r\n");
}

#[test]
fn shutdown_saves_when_configured_and_restart_loads() {
    let dir = tempdir::Dir::new("shutdown");
    let (mut d, port) = start_in(&dir.0, &[]);
    let mut raw = crate::support::Conn::open(port);
    raw.cmd(&["SET", "kept", "1"]);
    raw.cmd(&["SELECT", "5"]);
    raw.cmd(&["SET", "other", "2", "EX", "1000"]);
    raw.send(&["SHUTDOWN"]);
    let _ = d.0.wait();
    let (_d2, port2) = start_in(&dir.0, &[]);
    let mut raw = crate::support::Conn::open(port2);
    assert_eq!(raw.cmd(&["GET", "kept"]), "$1\r\n1\r\n");
    raw.cmd(&["SELECT", "5"]);
    assert_eq!(raw.cmd(&["GET", "other"]), "$1\r\n2\r\n");
    let ttl: i64 = raw
        .cmd(&["TTL", "other"])
        .trim_start_matches(':')
        .trim()
        .parse()
        .unwrap();
    assert!((990..=1000).contains(&ttl), "{ttl}");
    // SHUTDOWN NOSAVE leaves the file as it was.
    raw.cmd(&["SET", "lost", "1"]);
    raw.send(&["SHUTDOWN", "NOSAVE"]);
    drop(_d2);
    let (mut d3, port3) = start_in(&dir.0, &[]);
    let mut raw = crate::support::Conn::open(port3);
    raw.cmd(&["SELECT", "5"]);
    assert_eq!(raw.cmd(&["EXISTS", "lost"]), ":0\r\n");
    // SIGTERM saves too.
    raw.cmd(&["SET", "termed", "1"]);
    // SAFETY: kill(2) on the pid of a child we spawned and have not reaped.
    unsafe { libc::kill(d3.0.id() as i32, libc::SIGTERM) };
    let _ = d3.0.wait();
    let (_d4, port4) = start_in(&dir.0, &[]);
    let mut raw = crate::support::Conn::open(port4);
    raw.cmd(&["SELECT", "5"]);
    assert_eq!(raw.cmd(&["GET", "termed"]), "$1\r\n1\r\n");
}

#[test]
fn timestamped_snapshots_load_the_newest() {
    let dir = tempdir::Dir::new("stamp");
    let (mut d, port) = start_in(&dir.0, &["--dbfilename", "dump-{timestamp}.rdb"]);
    let mut raw = crate::support::Conn::open(port);
    raw.cmd(&["SET", "v", "1"]);
    assert_eq!(raw.cmd(&["SAVE"]), "+OK\r\n");
    let names: Vec<String> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("dump-20") && n.ends_with(".rdb")),
        "{names:?}"
    );
    // An older snapshot and a stray temp file are both ignored.
    std::fs::write(
        dir.0.join("dump-1999-01-01T00:00:00.rdb"),
        b"REDIS0010\xff\0\0\0\0\0\0\0\0",
    )
    .unwrap();
    let old = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    std::fs::File::options()
        .write(true)
        .open(dir.0.join("dump-1999-01-01T00:00:00.rdb"))
        .unwrap()
        .set_modified(old)
        .unwrap();
    std::fs::write(dir.0.join("dump-2999-01-01T00:00:00.rdb.tmp"), b"junk").unwrap();
    raw.send(&["SHUTDOWN", "NOSAVE"]);
    let _ = d.0.wait();
    let (_d2, port2) = start_in(&dir.0, &["--dbfilename", "dump-{timestamp}.rdb"]);
    let mut raw = crate::support::Conn::open(port2);
    assert_eq!(raw.cmd(&["GET", "v"]), "$1\r\n1\r\n");
}

#[test]
fn bgsave_schedule_lastsave_and_info() {
    let d: Proc = damselfly(&[]);
    let mut raw = crate::support::Conn::open(d.port);
    raw.cmd(&["SET", "a", "1"]);
    assert!(info_field(d.port, "rdb_changes_since_last_save") != "0");
    assert_eq!(raw.cmd(&["BGSAVE", "NOPE"]), "-ERR syntax error\r\n");
    assert_eq!(raw.cmd(&["BGSAVE"]), "+Background saving started\r\n");
    wait_bgsave_done(d.port);
    assert_eq!(info_field(d.port, "rdb_changes_since_last_save"), "0");
    assert_eq!(info_field(d.port, "rdb_saves"), "1");
    let last: i64 = raw
        .cmd(&["LASTSAVE"])
        .trim_start_matches(':')
        .trim()
        .parse()
        .unwrap();
    assert!(last > 1_700_000_000);
    raw.cmd(&["CONFIG", "SET", "rdb-key-save-delay", "100000"]);
    for i in 0..20 {
        raw.cmd(&["SET", &format!("b{i}"), "1"]);
    }
    assert_eq!(raw.cmd(&["BGSAVE"]), "+Background saving started\r\n");
    assert_eq!(
        raw.cmd(&["BGSAVE", "SCHEDULE"]),
        "+Background saving scheduled\r\n"
    );
    assert_eq!(
        raw.cmd(&["SAVE"]),
        "-ERR Background save already in progress\r\n"
    );
    assert_eq!(info_field(d.port, "rdb_bgsave_in_progress"), "1");
    raw.cmd(&["CONFIG", "SET", "rdb-key-save-delay", "0"]);
    // The scheduled one runs after the first.
    let deadline = Instant::now() + Duration::from_secs(60);
    while info_field(d.port, "rdb_saves") != "3" {
        assert!(Instant::now() < deadline, "scheduled BGSAVE never ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        raw.cmd(&["CONFIG", "SET", "snapshot_cron", "bad"]).get(..5),
        Some("-ERR ")
    );
    assert_eq!(
        raw.cmd(&["CONFIG", "SET", "snapshot_cron", "*/5 * * * *"]),
        "+OK\r\n"
    );
}

/// Redis's own test files from older versions (zipmap, ziplist and
/// quicklist 1 encodings, empty keys) load into us as into Redis 7.0.
#[test]
fn old_encodings_from_redis_test_assets_load_as_in_redis() {
    let shared = std::env::var("DAMSELFLY_SHARED")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../shared").to_string());
    let assets = Path::new(&shared).join("redis-suite/redis-7.0.15/tests/assets");
    for name in [
        "encodings.rdb",
        "hash-zipmap.rdb",
        "hash-ziplist.rdb",
        "list-quicklist.rdb",
        "zset-ziplist.rdb",
        "corrupt_empty_keys.rdb",
    ] {
        let (rd, dd) = (tempdir::Dir::new("asset-r"), tempdir::Dir::new("asset-d"));
        for d in [&rd, &dd] {
            std::fs::copy(assets.join(name), d.0.join("dump.rdb")).unwrap();
        }
        let r = redis_in(rd);
        let (_d, port) = start_in(&dd.0, &[]);
        let (want, got) = (contents(r.port), contents(port));
        assert_eq!(want, got, "{name}");
    }
}

#[test]
fn bgsave_inside_exec_and_debug_reload() {
    let d = damselfly(&[]);
    let mut raw = crate::support::Conn::open(d.port);
    raw.cmd(&["MULTI"]);
    raw.cmd(&["SET", "a", "1"]);
    raw.cmd(&["BGSAVE"]);
    assert_eq!(
        raw.cmd(&["EXEC"]),
        "*2\r\n+OK\r\n+Background saving started\r\n"
    );
    wait_bgsave_done(d.port);
    raw.cmd(&["RPUSH", "l", "x", "y"]);
    raw.cmd(&["SET", "t", "v", "EX", "500"]);
    assert_eq!(raw.cmd(&["DEBUG", "RELOAD"]), "+OK\r\n");
    assert_eq!(raw.cmd(&["GET", "a"]), "$1\r\n1\r\n");
    assert_eq!(raw.cmd(&["LLEN", "l"]), ":2\r\n");
    let ttl: i64 = raw
        .cmd(&["TTL", "t"])
        .trim_start_matches(':')
        .trim()
        .parse()
        .unwrap();
    assert!((490..=500).contains(&ttl), "{ttl}");
}

#[test]
fn save_rules_trigger_a_background_save() {
    let d = damselfly(&[]);
    let mut raw = crate::support::Conn::open(d.port);
    assert_eq!(raw.cmd(&["CONFIG", "SET", "save", "1 2"]), "+OK\r\n");
    raw.cmd(&["SET", "a", "1"]);
    raw.cmd(&["SET", "b", "1"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while info_field(d.port, "rdb_saves") == "0" {
        assert!(Instant::now() < deadline, "the save rule never fired");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(d.dir.0.join("dump.rdb").is_file());
}

/// kill -9 in the middle of a BGSAVE: the previous snapshot survives and
/// loads; the half-written temp file is ignored.
#[test]
fn crash_during_bgsave_keeps_the_last_complete_snapshot() {
    let dir = tempdir::Dir::new("crash");
    let (mut d, port) = start_in(&dir.0, &[]);
    let mut raw = crate::support::Conn::open(port);
    raw.cmd(&["SET", "v", "complete"]);
    assert_eq!(raw.cmd(&["SAVE"]), "+OK\r\n");
    for i in 0..200 {
        raw.cmd(&["SET", &format!("k{i}"), "x"]);
    }
    raw.cmd(&["SET", "v", "newer"]);
    raw.cmd(&["CONFIG", "SET", "rdb-key-save-delay", "1000000"]);
    assert_eq!(raw.cmd(&["BGSAVE"]), "+Background saving started\r\n");
    let temp_exists = || {
        std::fs::read_dir(&dir.0)
            .unwrap()
            .any(|e| e.unwrap().file_name().to_string_lossy().ends_with(".tmp"))
    };
    assert!(temp_exists());
    d.0.kill().unwrap();
    let _ = d.0.wait();
    let (_d2, port2) = start_in(&dir.0, &[]);
    let mut raw = crate::support::Conn::open(port2);
    assert_eq!(raw.cmd(&["GET", "v"]), "$8\r\ncomplete\r\n");
    assert_eq!(raw.cmd(&["DBSIZE"]), ":1\r\n");
}

/// MIGRATE moves keys to Redis and from Redis to us; errors read as
/// Redis's own MIGRATE reports them.
#[test]
fn migrate_to_and_from_redis() {
    let (r, d) = (redis(), damselfly(&[]));
    fill(d.port);
    let before = contents(d.port);
    let mut raw = crate::support::Conn::open(d.port);
    let rp = r.port.to_string();
    // Everything in db 0 goes to Redis's db 0 with one MIGRATE ... KEYS.
    let keys: Vec<String> = before
        .keys()
        .filter(|(db, _)| *db == 0)
        .map(|(_, k)| String::from_utf8_lossy(k).into_owned())
        .collect();
    let mut cmd: Vec<&str> = vec!["MIGRATE", "127.0.0.1", &rp, "", "0", "5000", "KEYS"];
    cmd.extend(keys.iter().map(String::as_str));
    assert_eq!(raw.cmd(&cmd), "+OK\r\n");
    assert_eq!(raw.cmd(&["DBSIZE"]), ":0\r\n");
    let moved = contents(r.port);
    assert_eq!(moved.len(), keys.len());
    for (k, v) in &moved {
        assert_eq!(before.get(k), Some(v));
    }
    // Back from Redis to us, into db 7, with COPY and then REPLACE.
    let mut rc = crate::support::Conn::open(r.port);
    let dp = d.port.to_string();
    let m = |key: &str, extra: &[&str]| -> Vec<String> {
        ["MIGRATE", "127.0.0.1", dp.as_str(), key, "7", "5000"]
            .iter()
            .chain(extra)
            .map(|s| s.to_string())
            .collect()
    };
    let mut run = |v: Vec<String>| rc.cmd(&v.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(run(m("db0:hash", &["COPY"])), "+OK\r\n");
    assert_eq!(
        run(m("db0:hash", &["COPY"])),
        "-ERR Target instance replied with error: BUSYKEY Target key name already exists.\r\n"
    );
    assert_eq!(run(m("db0:hash", &["REPLACE"])), "+OK\r\n");
    assert_eq!(run(m("nosuchkey", &[])), "+NOKEY\r\n");
    assert_eq!(run(vec!["EXISTS".into(), "db0:hash".into()]), ":0\r\n");
    raw.cmd(&["SELECT", "7"]);
    assert_eq!(raw.cmd(&["HGET", "db0:hash", "n"]), "$2\r\n12\r\n");
    // Our errors match Redis's for the same mistakes.
    let port = free_port().to_string();
    for c in [
        vec!["MIGRATE", "127.0.0.1", &port, "k", "0", "100", "KEYS", "a"],
        vec!["MIGRATE", "127.0.0.1", &port, "k", "0", "100", "BAD"],
        vec!["MIGRATE", "127.0.0.1", &port, "k", "x", "100"],
        vec!["MIGRATE", "127.0.0.1", &port, "nokey", "0", "100"],
        vec!["MIGRATE", "127.0.0.1", &port, "", "0", "100", "AUTH"],
    ] {
        assert_eq!(raw.cmd(&c), rc.cmd(&c), "{c:?}");
    }
    raw.cmd(&["SET", "k", "v"]);
    rc.cmd(&["SET", "k", "v"]);
    let c = ["MIGRATE", "127.0.0.1", &port, "k", "0", "100"];
    assert_eq!(raw.cmd(&c), rc.cmd(&c));
}

/// FLUSHALL with save rules writes the empty keyspace, so a restart does
/// not bring the flushed keys back (and the dirty counter is 0, as Redis).
#[test]
fn flushall_with_save_rules_saves_the_empty_dataset() {
    let dir = tempdir::Dir::new("flushall");
    let (mut d, port) = start_in(&dir.0, &[]);
    let mut raw = crate::support::Conn::open(port);
    raw.cmd(&["SET", "a", "1"]);
    assert_eq!(raw.cmd(&["SAVE"]), "+OK\r\n");
    raw.cmd(&["SET", "b", "1"]);
    assert_eq!(raw.cmd(&["FLUSHALL"]), "+OK\r\n");
    assert_eq!(info_field(port, "rdb_changes_since_last_save"), "0");
    d.0.kill().unwrap();
    let _ = d.0.wait();
    let (_d2, port2) = start_in(&dir.0, &[]);
    let mut raw = crate::support::Conn::open(port2);
    assert_eq!(raw.cmd(&["DBSIZE"]), ":0\r\n");
    // Without save rules FLUSHALL writes nothing and the changes count.
    raw.cmd(&["CONFIG", "SET", "save", ""]);
    raw.cmd(&["SET", "c", "1"]);
    raw.cmd(&["FLUSHALL"]);
    assert_ne!(info_field(port2, "rdb_changes_since_last_save"), "0");
}

/// While start-up loads a snapshot, commands get -LOADING and INFO (which
/// runs while loading) says loading:1; afterwards everything is there.
#[test]
fn commands_get_loading_while_the_snapshot_loads() {
    let dir = tempdir::Dir::new("loading");
    let (mut d, port) = start_in(&dir.0, &[]);
    let mut c = conn(port, 0);
    let n = 200_000;
    for chunk in (0..n).collect::<Vec<_>>().chunks(10_000) {
        let mut p = redis::pipe();
        for i in chunk {
            p.cmd("SET").arg(format!("key:{i}")).arg(i).ignore();
        }
        let _: () = p.query(&mut c).unwrap();
    }
    let _: () = redis::cmd("SAVE").query(&mut c).unwrap();
    d.0.kill().unwrap();
    let _ = d.0.wait();
    let (child, port) = damselfly_in(&dir.0, &[]);
    let _child = Child(child);
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut raw = connect_when_listening(port, deadline);
    loop {
        let info = raw.cmd(&["INFO", "persistence"]);
        let loading = info.contains("loading:1\r\n");
        let get = raw.cmd(&["GET", "key:7"]);
        if get == "$1\r\n7\r\n" {
            break;
        }
        assert_eq!(get, "-LOADING Redis is loading the dataset in memory\r\n");
        // Loading only ever goes from 1 to 0.
        assert!(loading, "{info}");
        assert!(Instant::now() < deadline, "never finished loading");
    }
    assert_eq!(raw.cmd(&["DBSIZE"]), format!(":{n}\r\n"));
    drop(_child);
    // SHUTDOWN while loading must not save the half-loaded dataset.
    let (mut child, port) = damselfly_in(&dir.0, &[]);
    let mut raw = connect_when_listening(port, deadline);
    raw.send(&["SHUTDOWN"]);
    let _ = child.wait();
    let (_d, port) = start_in(&dir.0, &[]);
    let mut raw = crate::support::Conn::open(port);
    assert_eq!(raw.cmd(&["DBSIZE"]), format!(":{n}\r\n"));
}

/// A connection as soon as the port accepts one (the server may still be
/// loading).
fn connect_when_listening(port: u16, deadline: Instant) -> crate::support::Conn {
    loop {
        if let Ok(s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            drop(s);
            return crate::support::Conn::open(port);
        }
        assert!(Instant::now() < deadline, "port {port} never opened");
        std::thread::sleep(Duration::from_millis(5));
    }
}

const LIBRARY: &str =
    "#!lua name=mylib\nredis.register_function('echo1', function(keys, args) return args[1] end)";

/// FUNCTION LIST of a server, as raw bytes (the same for the same libraries).
fn function_list(port: u16) -> Vec<u8> {
    crate::support::Conn::open(port).raw(&["FUNCTION", "LIST", "WITHCODE"])
}

#[test]
fn function_libraries_round_trip_through_rdb_files_with_redis() {
    // Damselfly writes FUNCTION2 records that redis-server loads.
    let d = damselfly(&[]);
    let mut c = crate::support::Conn::open(d.port);
    assert_eq!(c.cmd(&["FUNCTION", "LOAD", LIBRARY]), "$5\r\nmylib\r\n");
    assert_eq!(c.cmd(&["SET", "k", "v"]), "+OK\r\n");
    assert_eq!(c.cmd(&["SAVE"]), "+OK\r\n");
    let dir = tempdir::Dir::new("functions-to-redis");
    std::fs::copy(d.dir.0.join("dump.rdb"), dir.0.join("dump.rdb")).unwrap();
    let r = redis_in(dir);
    assert_eq!(function_list(r.port), function_list(d.port));
    // redis-server writes them back; Damselfly loads them and runs them.
    let mut rc = crate::support::Conn::open(r.port);
    assert_eq!(rc.cmd(&["SAVE"]), "+OK\r\n");
    let back = tempdir::Dir::new("functions-from-redis");
    std::fs::copy(r.dir.0.join("dump.rdb"), back.0.join("dump.rdb")).unwrap();
    let (_d2, port2) = start_in(&back.0, &[]);
    assert_eq!(function_list(port2), function_list(r.port));
    let mut c2 = crate::support::Conn::open(port2);
    assert_eq!(c2.cmd(&["FCALL", "echo1", "0", "hi"]), "$2\r\nhi\r\n");
    assert_eq!(c2.cmd(&["GET", "k"]), "$1\r\nv\r\n");
    // DEBUG RELOAD keeps them (loaded over the ones it saved).
    assert_eq!(c2.cmd(&["DEBUG", "RELOAD"]), "+OK\r\n");
    assert_eq!(c2.cmd(&["FCALL", "echo1", "0", "again"]), "$5\r\nagain\r\n");
}

/// DEBUG RELOAD's options, against redis-server: NOSAVE loads the file on
/// disk, NOFLUSH keeps what is in memory and fails on a clash (Redis
/// stops the server on a clashing key; both refuse a clashing library,
/// before any of the file's keys is in), MERGE lets the file's keys and
/// libraries win.
#[test]
fn debug_reload_options_match_redis() {
    let r = crate::support::redis_with(&["--enable-debug-command", "yes"]);
    let d = damselfly(&[]);
    crate::support::diff_on(
        &r,
        &d,
        r##"
        DEBUG RELOAD bogus
        SET a 1
        DEBUG RELOAD
        SET a 2
        DEBUG RELOAD NOSAVE NOFLUSH MERGE
        GET a
        SET b 1
        DEBUG RELOAD nosave
        GET b
        FUNCTION LOAD "#!lua name=lib1\nredis.register_function('f1', function() return 1 end)"
        DEBUG RELOAD
        FCALL f1 0
        DEL a
        DEBUG RELOAD NOSAVE NOFLUSH
        EXISTS a
        DEBUG RELOAD NOFLUSH
        DEBUG RELOAD NOFLUSH MERGE
        FUNCTION LOAD "#!lua name=lib2\nredis.register_function('f2', function() return 2 end)"
        DEBUG RELOAD NOSAVE NOFLUSH MERGE
        FCALL f2 0
        FCALL f1 0
        DEBUG RELOAD NOSAVE
        FCALL f2 0
        FUNCTION LIST
        "##,
    );
}
