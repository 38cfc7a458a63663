//! What application code does through a real client library (the `redis`
//! crate, as services use redis-py or go-redis): cache-aside with TTLs,
//! rate limits, sessions in hashes, queues, pipelines, one DB per service.

use crate::support::{damselfly, Conn};
use redis::{Commands, Connection};

fn connect(port: u16, db: u8) -> Connection {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/{db}")).expect("client");
    client.get_connection().expect("connection")
}

#[test]
fn cache_aside_with_ttl() {
    let d = damselfly(&[]);
    let mut c = connect(d.port, 0);
    let miss: Option<String> = c.get("user:42").unwrap();
    assert_eq!(miss, None);
    let json = r#"{"id":42,"name":"Ada"}"#;
    let _: () = c.set_ex("user:42", json, 3600).unwrap();
    let hit: String = c.get("user:42").unwrap();
    assert_eq!(hit, json);
    let ttl: i64 = c.ttl("user:42").unwrap();
    assert!((3590..=3600).contains(&ttl), "{ttl}");
}

#[test]
fn rate_limit_with_incr_and_expire() {
    let d = damselfly(&[]);
    let mut c = connect(d.port, 0);
    for i in 1..=5 {
        let n: i64 = c.incr("rl:ip:1.2.3.4", 1).unwrap();
        assert_eq!(n, i);
        if n == 1 {
            let set: bool = c.expire("rl:ip:1.2.3.4", 60).unwrap();
            assert!(set);
        }
    }
    let ttl: i64 = c.ttl("rl:ip:1.2.3.4").unwrap();
    assert!(ttl > 0 && ttl <= 60);
}

#[test]
fn session_in_a_hash() {
    let d = damselfly(&[]);
    let mut c = connect(d.port, 0);
    let _: () = c
        .hset_multiple("sess:abc", &[("user", "42"), ("role", "admin")])
        .unwrap();
    let role: String = c.hget("sess:abc", "role").unwrap();
    assert_eq!(role, "admin");
    let all: std::collections::HashMap<String, String> = c.hgetall("sess:abc").unwrap();
    assert_eq!(all.len(), 2);
    let _: () = c.expire("sess:abc", 1800).unwrap();
    let exists: bool = c.exists("sess:abc").unwrap();
    assert!(exists);
}

#[test]
fn job_queue_with_lpush_and_brpop_across_connections() {
    let d = damselfly(&[]);
    let port = d.port;
    let worker = std::thread::spawn(move || {
        let mut c = connect(port, 0);
        let mut got = Vec::new();
        for _ in 0..3 {
            let (_, job): (String, String) = c.brpop("jobs", 10.0).unwrap();
            got.push(job);
        }
        got
    });
    let mut producer = connect(d.port, 0);
    for job in ["a", "b", "c"] {
        let _: i64 = producer.lpush("jobs", job).unwrap();
    }
    assert_eq!(worker.join().unwrap(), vec!["a", "b", "c"]);
}

#[test]
fn pipeline_and_leaderboard() {
    let d = damselfly(&[]);
    let mut c = connect(d.port, 0);
    let mut pipe = redis::pipe();
    for (name, score) in [("ann", 30), ("bob", 10), ("cid", 20)] {
        pipe.zadd("board", name, score).ignore();
    }
    pipe.zrevrange_withscores("board", 0, 1);
    let (top,): (Vec<(String, f64)>,) = pipe.query(&mut c).unwrap();
    assert_eq!(
        top,
        vec![("ann".to_string(), 30.0), ("cid".to_string(), 20.0)]
    );
    let rank: Option<i64> = c.zrank("board", "bob").unwrap();
    assert_eq!(rank, Some(0));
}

#[test]
fn each_service_in_its_own_db() {
    let d = damselfly(&[]);
    let mut a = connect(d.port, 1);
    let mut b = connect(d.port, 2);
    let _: () = a.set("config", "service-a").unwrap();
    let _: () = b.set("config", "service-b").unwrap();
    let va: String = a.get("config").unwrap();
    let vb: String = b.get("config").unwrap();
    assert_eq!((va.as_str(), vb.as_str()), ("service-a", "service-b"));
    let keys: Vec<String> = redis::cmd("SCAN")
        .arg(0)
        .arg("MATCH")
        .arg("*")
        .query::<(u64, Vec<String>)>(&mut a)
        .unwrap()
        .1;
    assert_eq!(keys, vec!["config"]);
}

#[test]
fn resp3_connection_works() {
    let d = damselfly(&[]);
    let client =
        redis::Client::open(format!("redis://127.0.0.1:{}/?protocol=resp3", d.port)).unwrap();
    let mut c = client.get_connection().unwrap();
    let _: () = c.set("k", "v").unwrap();
    let v: String = c.get("k").unwrap();
    assert_eq!(v, "v");
    let m: std::collections::HashMap<String, String> = {
        let _: () = c.hset("h", "f", "1").unwrap();
        c.hgetall("h").unwrap()
    };
    assert_eq!(m.get("f").map(String::as_str), Some("1"));
}

#[test]
fn maxclients_refuses_connections_past_the_limit_with_redis_error() {
    let d = damselfly(&["--maxclients", "2"]);
    let mut a = Conn::open(d.port);
    // The start-up check's connection may still be closing.
    while !a
        .cmd(&["INFO", "clients"])
        .contains("connected_clients:1\r\n")
    {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let mut b = Conn::open(d.port);
    assert_eq!(b.cmd(&["PING"]), "+PONG\r\n");
    let mut c = std::net::TcpStream::connect(("127.0.0.1", d.port)).expect("connect");
    let mut got = Vec::new();
    std::io::Read::read_to_end(&mut c, &mut got).expect("read until closed");
    assert_eq!(got, b"-ERR max number of clients reached\r\n");
    assert!(a
        .cmd(&["INFO", "stats"])
        .contains("rejected_connections:1\r\n"));
    // A freed slot serves the next connection; CONFIG SET moves the limit.
    drop(b);
    assert_eq!(a.cmd(&["CONFIG", "SET", "maxclients", "3"]), "+OK\r\n");
    let mut e = Conn::open(d.port);
    assert_eq!(e.cmd(&["PING"]), "+PONG\r\n");
}

#[test]
fn timeout_closes_idle_clients_but_not_subscribers() {
    let d = damselfly(&["--timeout", "1"]);
    // The subscriber is idle longer than the plain client.
    let mut sub = Conn::open(d.port);
    sub.cmd(&["SUBSCRIBE", "ch"]);
    let mut idle = std::net::TcpStream::connect(("127.0.0.1", d.port)).expect("connect");
    idle.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .expect("timeout");
    let mut got = Vec::new();
    // EOF: the server closed it.
    std::io::Read::read_to_end(&mut idle, &mut got).expect("closed by the server");
    assert!(got.is_empty());
    assert_eq!(sub.cmd(&["PING"]), "*2\r\n$4\r\npong\r\n$0\r\n\r\n");
}

#[test]
fn unixsocket_serves_clients_with_its_permissions() {
    use std::io::{Read, Write};
    use std::os::unix::fs::PermissionsExt;
    let dir = crate::support::tempdir::Dir::new("unixsock");
    let path = dir.0.join("d.sock");
    let p = path.to_str().expect("utf-8 path");
    let d = damselfly(&["--unixsocket", p, "--unixsocketperm", "700"]);
    let mode = std::fs::metadata(&path)
        .expect("socket file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
    let mut s = std::os::unix::net::UnixStream::connect(&path).expect("connect");
    s.write_all(b"CLIENT INFO\r\n").expect("write");
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).expect("read");
    let info = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(info.contains(&format!("addr={p}:0 laddr={p}:0 ")), "{info}");
    assert!(info.contains(" flags=U "), "{info}");
    let mut c = Conn::open(d.port);
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "unixsocketperm"]),
        "*2\r\n$14\r\nunixsocketperm\r\n$3\r\n700\r\n"
    );
}

#[test]
fn maxmemory_clients_evicts_the_biggest_client_but_not_no_evict_ones() {
    use std::io::{Read, Write};
    let d = damselfly(&[]);
    let mut admin = Conn::open(d.port);
    assert_eq!(admin.cmd(&["CLIENT", "NO-EVICT", "on"]), "+OK\r\n");
    assert!(admin.cmd(&["CLIENT", "INFO"]).contains(" flags=e "));
    assert_eq!(
        admin.cmd(&["CONFIG", "SET", "maxmemory-clients", "3000000"]),
        "+OK\r\n"
    );
    let mut small = Conn::open(d.port);
    small.cmd(&["CLIENT", "SETNAME", "small"]);
    let mut big = std::net::TcpStream::connect(("127.0.0.1", d.port)).expect("connect");
    big.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .expect("timeout");
    big.write_all(b"*2\r\n$4\r\nECHO\r\n$4000000\r\n")
        .expect("write");
    // Never completed: the query buffer alone passes the limit. The write
    // may fail once the server has closed the connection.
    let _ = big.write_all(&vec![b'v'; 3_500_000]);
    let mut rest = Vec::new();
    let _ = big.read_to_end(&mut rest);
    assert!(rest.is_empty());
    let info = admin.cmd(&["INFO", "stats"]);
    assert!(info.contains("evicted_clients:1\r\n"), "{info}");
    assert_eq!(small.cmd(&["PING"]), "+PONG\r\n");
    assert!(admin.cmd(&["CLIENT", "LIST"]).contains("name=small"));
    // Commands queued in MULTI count too.
    let mut multi = Conn::open(d.port);
    multi.cmd(&["MULTI"]);
    let value = "v".repeat(1_000_000);
    let mut evicted = false;
    for _ in 0..5 {
        // Once evicted, the write itself may fail.
        if std::io::Write::write_all(&mut multi.writer, &Conn::encode(&["SET", "k", &value]))
            .is_err()
        {
            evicted = true;
            break;
        }
        let mut line = String::new();
        match std::io::BufRead::read_line(&mut multi.reader, &mut line) {
            Ok(n) if n > 0 => assert_eq!(line, "+QUEUED\r\n"),
            _ => {
                evicted = true;
                break;
            }
        }
    }
    assert!(evicted, "a MULTI holding 5 MB was not evicted");
}

#[test]
fn maxmemory_clients_counts_watched_keys_and_subscriptions() {
    use std::io::{BufRead, Write};
    let d = damselfly(&[]);
    let mut admin = Conn::open(d.port);
    admin.cmd(&["CLIENT", "NO-EVICT", "on"]);
    admin.cmd(&["CONFIG", "SET", "maxmemory-clients", "200000"]);
    for first in ["WATCH", "PSUBSCRIBE"] {
        let mut c = Conn::open(d.port);
        let mut evicted = false;
        for j in 0..10_000 {
            let req = Conn::encode(&[first, &j.to_string()]);
            let mut line = String::new();
            // PSUBSCRIBE replies with a 3-element array: its first line.
            let ok = c.writer.write_all(&req).is_ok()
                && c.reader.read_line(&mut line).is_ok_and(|n| n > 0);
            if !ok {
                evicted = true;
                break;
            }
            if first == "PSUBSCRIBE" {
                for _ in 0..5 {
                    line.clear();
                    let _ = c.reader.read_line(&mut line);
                }
            }
        }
        assert!(evicted, "{first} of 10000 keys was not evicted");
    }
}
