//! Damselfly as a replica: of Debian's redis-server 7.0 (full sync under a
//! write load of every type, partial resync after a dropped link, a master
//! restarting with a new history), of a master that sends garbage, and the
//! replies a replica gives (READONLY, ROLE, INFO) against a Redis replica.

use crate::support::{damselfly, redis, which, Conn, Proc};
use rand::Rng;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) fn info_field(c: &mut Conn, section: &str, field: &str) -> Option<String> {
    let info = c.cmd(&["INFO", section]);
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(|v| v.trim().to_string())
}

/// Polls `f` until it is true; panics with `what` at the deadline.
pub(crate) fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

/// A master's repl-diskless-sync-delay is 5 s by default: none here. Its
/// backlog holds the few seconds of load a reconnecting replica misses.
fn redis_master() -> Proc {
    let r = redis();
    let mut c = Conn::open(r.port);
    c.cmd(&["CONFIG", "SET", "repl-diskless-sync-delay", "0"]);
    c.cmd(&["CONFIG", "SET", "repl-backlog-size", "256mb"]);
    r
}

fn offset(c: &mut Conn) -> i64 {
    info_field(c, "replication", "master_repl_offset")
        .and_then(|v| v.parse().ok())
        .unwrap_or(-1)
}

/// Waits until the replica is linked and has applied all of the master's
/// stream.
pub(crate) fn wait_caught_up(master: u16, replica: u16) {
    let mut m = Conn::open(master);
    let mut r = Conn::open(replica);
    wait_for("the replica to catch up with the master's offset", || {
        info_field(&mut r, "replication", "master_link_status").as_deref() == Some("up")
            && offset(&mut m) == offset(&mut r)
    });
}

/// One random write (or transaction, or script) of every kind of value.
fn random_write(c: &mut Conn, rng: &mut impl Rng) {
    let n = rng.random_range(0..60);
    let v = rng.random_range(0..1000).to_string();
    let k = |p: &str| format!("{p}:{n}");
    let cmd: Vec<String> = match rng.random_range(0..24) {
        0 => vec!["SET".into(), k("s"), v],
        1 => vec!["SET".into(), k("s"), v, "EX".into(), "100".into()],
        2 => vec![
            "SET".into(),
            k("s"),
            v,
            "PX".into(),
            rng.random_range(1..300).to_string(),
        ],
        3 => vec!["INCRBY".into(), k("n"), v],
        4 => vec!["APPEND".into(), k("s"), v],
        5 => vec!["EXPIRE".into(), k("s"), "50".into()],
        6 => vec!["PERSIST".into(), k("s")],
        7 => vec!["RPUSH".into(), k("l"), v.clone(), v],
        8 => vec!["LPOP".into(), k("l")],
        9 => vec!["LTRIM".into(), k("l"), "0".into(), "20".into()],
        10 => vec!["HSET".into(), k("h"), format!("f{v}"), v],
        11 => vec![
            "HDEL".into(),
            k("h"),
            format!("f{}", rng.random_range(0..1000)),
        ],
        12 => vec!["SADD".into(), k("t"), v],
        13 => vec!["SPOP".into(), k("t")],
        14 => vec!["ZADD".into(), k("z"), v.clone(), format!("m{v}")],
        15 => vec!["ZINCRBY".into(), k("z"), "1.5".into(), format!("m{v}")],
        16 => vec!["ZPOPMIN".into(), k("z")],
        17 => vec!["XADD".into(), k("x"), "*".into(), "f".into(), v],
        18 => vec!["XTRIM".into(), k("x"), "MAXLEN".into(), "5".into()],
        19 => vec!["DEL".into(), k("s"), k("l")],
        20 => vec!["INCRBYFLOAT".into(), k("f"), "0.25".into()],
        21 => {
            c.cmd(&["MULTI"]);
            c.cmd(&["SET", &k("m"), &v]);
            c.cmd(&["RPUSH", &k("ml"), &v]);
            c.cmd(&["HINCRBY", &k("mh"), "f", "1"]);
            c.cmd(&["EXEC"]);
            return;
        }
        22 => vec![
            "EVAL".into(),
            "redis.call('set', KEYS[1], ARGV[1]); redis.call('sadd', KEYS[2], ARGV[1]); \
             redis.call('pexpire', KEYS[1], 100000); return 1"
                .into(),
            "2".into(),
            k("e"),
            k("es"),
            v,
        ],
        _ => vec!["LPUSH".into(), k("l"), v],
    };
    let reply = c.cmd(&cmd.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        !reply.starts_with("-ERR") || reply.contains("WRONGTYPE"),
        "{cmd:?}: {reply}"
    );
}

/// Writers in db 0 and db 3 until `stop` is set.
pub(crate) fn start_load(port: u16, stop: &Arc<AtomicBool>) -> Vec<std::thread::JoinHandle<u64>> {
    (0..3)
        .map(|t| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut c = Conn::open(port);
                if t == 2 {
                    c.cmd(&["SELECT", "3"]);
                }
                let mut rng = rand::rng();
                let mut n = 0;
                while !stop.load(Relaxed) {
                    random_write(&mut c, &mut rng);
                    n += 1;
                }
                n
            })
        })
        .collect()
}

/// Every live key of `db` with its type, value and TTL (ms; -1 for none).
fn dataset(port: u16, db: usize) -> BTreeMap<String, (String, String, i64)> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/{db}")).expect("client");
    let mut con = client.get_connection().expect("connect");
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut con).expect("KEYS");
    let mut out = BTreeMap::new();
    for k in keys {
        let ty: String = redis::cmd("TYPE").arg(&k).query(&mut con).expect("TYPE");
        let q = |c: &str, args: &[&str], con: &mut redis::Connection| -> redis::Value {
            redis::cmd(c).arg(&k).arg(args).query(con).expect("read")
        };
        let value = match ty.as_str() {
            "none" => continue,
            "string" => q("GET", &[], &mut con),
            "list" => q("LRANGE", &["0", "-1"], &mut con),
            "zset" => q("ZRANGE", &["0", "-1", "WITHSCORES"], &mut con),
            "stream" => q("XRANGE", &["-", "+"], &mut con),
            "hash" => {
                let mut h: Vec<(Vec<u8>, Vec<u8>)> = redis::cmd("HGETALL")
                    .arg(&k)
                    .query::<Vec<(Vec<u8>, Vec<u8>)>>(&mut con)
                    .expect("HGETALL");
                h.sort();
                redis::Value::BulkString(format!("{h:?}").into_bytes())
            }
            "set" => {
                let mut s: Vec<Vec<u8>> = redis::cmd("SMEMBERS")
                    .arg(&k)
                    .query(&mut con)
                    .expect("SMEMBERS");
                s.sort();
                redis::Value::BulkString(format!("{s:?}").into_bytes())
            }
            other => panic!("unexpected type {other}"),
        };
        let ttl: i64 = redis::cmd("PTTL").arg(&k).query(&mut con).expect("PTTL");
        if ttl == -2 {
            continue;
        }
        out.insert(k, (ty, format!("{value:?}"), ttl));
    }
    out
}

/// The differences between two datasets, ignoring keys about to expire
/// (their TTL may pass between the two reads) and TTLs read a moment
/// apart.
fn differences(
    want: &BTreeMap<String, (String, String, i64)>,
    got: &BTreeMap<String, (String, String, i64)>,
) -> Vec<String> {
    let soon = |t: i64| (0..3000).contains(&t);
    let mut out = Vec::new();
    for k in want.keys().chain(got.keys()) {
        match (want.get(k), got.get(k)) {
            (Some(a), Some(b)) => {
                let ttl_ok =
                    (a.2 == -1 && b.2 == -1) || (a.2 >= 0 && b.2 >= 0 && (a.2 - b.2).abs() < 3000);
                if (a.0 != b.0 || a.1 != b.1 || !ttl_ok) && !(soon(a.2) || soon(b.2)) {
                    out.push(format!("{k}: master {a:?}, replica {b:?}"));
                }
            }
            (Some(v), None) | (None, Some(v)) if !soon(v.2) => {
                out.push(format!("{k}: only one side has {v:?}"))
            }
            _ => {}
        }
    }
    out.dedup();
    out
}

/// Compares db 0 and 3 of master and replica, retrying a few times: keys
/// expiring meanwhile make the master send DELs.
pub(crate) fn assert_same_data(master: u16, replica: u16) {
    let mut last = Vec::new();
    for _ in 0..5 {
        wait_caught_up(master, replica);
        last = [0, 3]
            .iter()
            .flat_map(|&db| differences(&dataset(master, db), &dataset(replica, db)))
            .collect();
        if last.is_empty() {
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!(
        "replica differs from master ({} keys):\n{}",
        last.len(),
        last.iter().take(20).cloned().collect::<Vec<_>>().join("\n")
    );
}

pub(crate) fn stats(port: u16) -> (i64, i64) {
    let mut c = Conn::open(port);
    let get = |c: &mut Conn, f: &str| {
        info_field(c, "stats", f)
            .and_then(|v| v.parse().ok())
            .unwrap_or(-1)
    };
    (get(&mut c, "sync_full"), get(&mut c, "sync_partial_ok"))
}

pub(crate) fn stop_load(stop: &AtomicBool, load: Vec<std::thread::JoinHandle<u64>>) -> u64 {
    stop.store(true, Relaxed);
    load.into_iter().map(|h| h.join().expect("writer")).sum()
}

#[test]
fn replica_of_redis_under_write_load_ends_with_the_masters_data() {
    let m = redis_master();
    let d = damselfly(&[]);
    let stop = Arc::new(AtomicBool::new(false));
    let load = start_load(m.port, &stop);
    std::thread::sleep(Duration::from_millis(300));
    let mut dc = Conn::open(d.port);
    assert_eq!(
        dc.cmd(&["REPLICAOF", "127.0.0.1", &m.port.to_string()]),
        "+OK\r\n"
    );
    std::thread::sleep(Duration::from_millis(700));
    let writes = stop_load(&stop, load);
    assert!(writes > 100, "only {writes} writes");
    assert_same_data(m.port, d.port);
    assert_eq!(stats(m.port).0, 1, "one full sync");
}

#[test]
fn a_dropped_link_resyncs_partially_and_converges() {
    let m = redis_master();
    let d = damselfly(&[]);
    let mut dc = Conn::open(d.port);
    dc.cmd(&["REPLICAOF", "127.0.0.1", &m.port.to_string()]);
    wait_caught_up(m.port, d.port);
    let stop = Arc::new(AtomicBool::new(false));
    let load = start_load(m.port, &stop);
    std::thread::sleep(Duration::from_millis(300));
    // Our side drops the link...
    assert_eq!(dc.cmd(&["CLIENT", "KILL", "TYPE", "master"]), ":1\r\n");
    wait_for("a partial resync after CLIENT KILL TYPE master", || {
        stats(m.port).1 >= 1
    });
    std::thread::sleep(Duration::from_millis(300));
    // ...then the master's side does.
    let mut mc = Conn::open(m.port);
    assert_eq!(mc.cmd(&["CLIENT", "KILL", "TYPE", "replica"]), ":1\r\n");
    wait_for("a second partial resync", || stats(m.port).1 >= 2);
    std::thread::sleep(Duration::from_millis(300));
    stop_load(&stop, load);
    assert_same_data(m.port, d.port);
    assert_eq!(stats(m.port), (1, 2), "(sync_full, sync_partial_ok)");
}

#[test]
fn a_master_restarting_with_a_new_history_gets_a_full_sync() {
    let mut m = redis_master();
    let d = damselfly(&[]);
    let mut dc = Conn::open(d.port);
    dc.cmd(&["REPLICAOF", "127.0.0.1", &m.port.to_string()]);
    let stop = Arc::new(AtomicBool::new(false));
    let load = start_load(m.port, &stop);
    std::thread::sleep(Duration::from_millis(500));
    let before = info_field(&mut dc, "replication", "master_replid");
    // The master dies mid-load (its writers see errors and stop).
    stop.store(true, Relaxed);
    let _ = m.child.kill();
    let _ = m.child.wait();
    for h in load {
        let _ = h.join();
    }
    // ...and comes back empty on the same port, with a new replid.
    let bin = which("redis-server").expect("redis-server");
    m.child = Command::new(bin)
        .args([
            "--port",
            &m.port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .args(["--repl-diskless-sync-delay", "0"])
        .arg("--dir")
        .arg(&m.dir.0)
        .stdout(Stdio::null())
        .spawn()
        .expect("restart redis-server");
    wait_for("the master to restart", || {
        TcpStream::connect(("127.0.0.1", m.port)).is_ok()
    });
    let stop = Arc::new(AtomicBool::new(false));
    let load = start_load(m.port, &stop);
    std::thread::sleep(Duration::from_millis(500));
    stop_load(&stop, load);
    assert_same_data(m.port, d.port);
    assert_ne!(info_field(&mut dc, "replication", "master_replid"), before);
}

/// A fake master: answers the handshake, then sends what `after_psync`
/// writes; returns the PSYNC line it got.
fn fake_master_session(l: &TcpListener, after_psync: &[u8]) -> String {
    let (s, _) = l.accept().expect("accept");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut r = BufReader::new(s.try_clone().expect("clone"));
    let mut w = s;
    let mut read_cmd = || -> Vec<String> {
        let mut line = String::new();
        r.read_line(&mut line).expect("read");
        let n: usize = line.trim()[1..].parse().expect("array");
        (0..n)
            .map(|_| {
                let mut len = String::new();
                r.read_line(&mut len).expect("len");
                let n: usize = len.trim()[1..].parse().expect("bulk");
                let mut b = vec![0; n + 2];
                r.read_exact(&mut b).expect("bulk");
                String::from_utf8_lossy(&b[..n]).into_owned()
            })
            .collect()
    };
    assert_eq!(read_cmd(), ["PING"]);
    w.write_all(b"+PONG\r\n").expect("write");
    assert_eq!(read_cmd()[..2], ["REPLCONF", "listening-port"]);
    w.write_all(b"+OK\r\n").expect("write");
    assert_eq!(read_cmd(), ["REPLCONF", "capa", "eof", "capa", "psync2"]);
    w.write_all(b"+OK\r\n").expect("write");
    let psync = read_cmd().join(" ");
    w.write_all(after_psync).expect("write");
    // Keep the socket open until the replica closes it.
    let mut sink = Vec::new();
    let _ = w.read_to_end(&mut sink);
    psync
}

#[test]
fn garbage_from_a_master_ends_the_link_and_it_reconnects() {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let d = damselfly(&[]);
    let mut dc = Conn::open(d.port);
    dc.cmd(&["SET", "mine", "1"]);
    assert_eq!(
        dc.cmd(&["REPLICAOF", "127.0.0.1", &port.to_string()]),
        "+OK\r\n"
    );
    let id = "a".repeat(40);
    // An RDB that is not one: the old data stays.
    let first = fake_master_session(
        &l,
        format!("+FULLRESYNC {id} 100\r\n$5\r\nhello").as_bytes(),
    );
    assert_eq!(
        first,
        format!(
            "PSYNC {} {}",
            info_field(&mut dc, "replication", "master_replid").unwrap(),
            1
        )
    );
    // An empty RDB (no checksum), one command, then garbage.
    let set = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n";
    let mut ok = format!("+FULLRESYNC {id} 100\r\n$18\r\n").into_bytes();
    ok.extend_from_slice(b"REDIS0010\xff\0\0\0\0\0\0\0\0");
    ok.extend_from_slice(set);
    // A transaction the link loses before its EXEC: not applied, and not
    // counted (the next PSYNC resumes at its MULTI).
    ok.extend_from_slice(b"*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$1\r\ny\r\n");
    ok.extend_from_slice(b"*1\r\n+garbage\r\n");
    let second = fake_master_session(&l, &ok);
    assert_eq!(second, "PSYNC ? -1");
    // The link comes back asking to continue after the one command.
    let third = fake_master_session(&l, b"-ERR go away\r\n");
    assert_eq!(third, format!("PSYNC {id} {}", 100 + set.len() + 1));
    assert_eq!(dc.cmd(&["GET", "k"]), "$1\r\nv\r\n");
    assert_eq!(dc.cmd(&["GET", "x"]), "$-1\r\n");
    assert_eq!(dc.cmd(&["GET", "mine"]), "$-1\r\n");
    assert_eq!(dc.cmd(&["PING"]), "+PONG\r\n");
    assert_eq!(dc.cmd(&["REPLICAOF", "NO", "ONE"]), "+OK\r\n");
}

/// Sends `args` to both servers and notes a difference in the replies.
fn compare(rc: &mut Conn, dc: &mut Conn, args: &[&str], failures: &mut Vec<String>) {
    let want = rc.raw(args);
    let got = dc.raw(args);
    if want != got {
        failures.push(format!(
            "  {args:?}\n    redis:     {:?}\n    damselfly: {:?}",
            String::from_utf8_lossy(&want),
            String::from_utf8_lossy(&got)
        ));
    }
}

#[test]
fn replica_replies_match_a_redis_replica() {
    let m = redis_master();
    let r = redis();
    let d = damselfly(&[]);
    let mp = m.port.to_string();
    let mut rc = Conn::open(r.port);
    let mut dc = Conn::open(d.port);
    let mut mc = Conn::open(m.port);
    mc.cmd(&["SET", "k", "v"]);
    mc.cmd(&["RPUSH", "l", "a", "b"]);
    // A key whose TTL passes while the master does not expire it (no
    // DEL comes): a replica reads it as gone but keeps it.
    mc.cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    mc.cmd(&["SET", "ex", "v", "PX", "300"]);
    // Function libraries travel in the RDB.
    mc.cmd(&[
        "FUNCTION",
        "LOAD",
        "#!lua name=lib\nredis.register_function{function_name='get1', \
         callback=function(keys) return redis.call('get', keys[1]) end, flags={'no-writes'}}",
    ]);
    for c in [&mut rc, &mut dc] {
        assert_eq!(c.cmd(&["REPLICAOF", "127.0.0.1", &mp]), "+OK\r\n");
    }
    std::thread::sleep(Duration::from_millis(400));
    wait_caught_up(m.port, r.port);
    wait_caught_up(m.port, d.port);
    let script: &[&[&str]] = &[
        &["REPLICAOF", "127.0.0.1", &mp],
        &["SLAVEOF", "127.0.0.1", &mp],
        &["REPLICAOF", "127.0.0.1", "abc"],
        &["REPLICAOF", "127.0.0.1", "70000"],
        &["REPLICAOF", "127.0.0.1", "-1"],
        &["REPLICAOF", "x"],
        &["SLAVEOF", "no", "one", "x"],
        &["GET", "k"],
        &["LRANGE", "l", "0", "-1"],
        &["GET", "ex"],
        &["EXISTS", "ex"],
        &["TTL", "ex"],
        &["TYPE", "ex"],
        &["KEYS", "ex*"],
        &["DBSIZE"],
        &["FCALL_RO", "get1", "1", "k"],
        &["FUNCTION", "LIST"],
        &["SET", "k", "w"],
        &["DEL", "k"],
        &["INCR", "n"],
        &["EVAL", "return redis.call('get', KEYS[1])", "1", "k"],
        &[
            "EVAL",
            "#!lua\nreturn redis.call('set', KEYS[1], 'x')",
            "1",
            "k",
        ],
        &[
            "EVAL",
            "#!lua flags=no-writes\nreturn redis.call('get', KEYS[1])",
            "1",
            "k",
        ],
        &["EVAL", "return redis.call('set', KEYS[1], 'x')", "1", "k"],
        &["MULTI"],
        &["GET", "k"],
        &["SET", "k", "x"],
        &["EXEC"],
        &["MULTI"],
        &["GET", "k"],
        &["EXEC"],
        &["ROLE"],
        &["CONFIG", "GET", "replica-read-only"],
        &["CONFIG", "GET", "slave-serve-stale-data"],
        &["CONFIG", "SET", "replica-read-only", "no"],
        &["SET", "local", "1"],
        &["GET", "local"],
        &["CONFIG", "SET", "replica-read-only", "yes"],
    ];
    let mut failures = Vec::new();
    for args in script {
        compare(&mut rc, &mut dc, args, &mut failures);
    }
    for field in [
        "role",
        "master_host",
        "master_port",
        "master_link_status",
        "master_sync_in_progress",
        "slave_priority",
        "slave_read_only",
        "replica_announced",
        "master_failover_state",
        "master_replid",
    ] {
        let want = info_field(&mut rc, "replication", field);
        let got = info_field(&mut dc, "replication", field);
        if want != got {
            failures.push(format!("  INFO {field}: redis {want:?}, damselfly {got:?}"));
        }
    }
    // A link that is down, with stale data refused.
    for c in [&mut rc, &mut dc] {
        c.cmd(&["CONFIG", "SET", "replica-serve-stale-data", "no"]);
        c.cmd(&["REPLICAOF", "127.0.0.1", "1"]);
    }
    // Redis finds the refused connection at once, inside REPLICAOF; our
    // link thread finds it a moment later.
    for _ in 0..1000 {
        if dc.cmd(&["ROLE"]).contains("\r\nconnect\r\n") {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    for args in [
        &["GET", "k"][..],
        &["PING"],
        &["ROLE"],
        &["CONFIG", "SET", "replica-serve-stale-data", "yes"],
        &["GET", "k"],
        &["REPLICAOF", "NO", "ONE"],
        // Before any write of its own, which a promoted Redis counts in
        // its offset (the master side's stream).
        &["ROLE"],
        &["SET", "k", "mine"],
    ] {
        compare(&mut rc, &mut dc, args, &mut failures);
    }
    assert!(
        failures.is_empty(),
        "replies differ from a Redis replica:\n{}",
        failures.join("\n")
    );
}

#[test]
fn replicaof_at_start_up_with_masterauth_syncs_from_a_password_master() {
    let m = redis_master();
    let mut mc = Conn::open(m.port);
    mc.cmd(&["SET", "k", "v"]);
    mc.cmd(&["CONFIG", "SET", "requirepass", "sekret"]);
    let master = format!("127.0.0.1:{}", m.port);
    let d = damselfly(&["--replicaof", &master, "--masterauth", "sekret"]);
    let mut dc = Conn::open(d.port);
    wait_for("the replica to sync with a password", || {
        info_field(&mut dc, "replication", "master_link_status").as_deref() == Some("up")
    });
    assert_eq!(dc.cmd(&["GET", "k"]), "$1\r\nv\r\n");
    assert_eq!(dc.cmd(&["REPLICAOF", "NO", "ONE"]), "+OK\r\n");
    assert_eq!(dc.cmd(&["SET", "k", "w"]), "+OK\r\n");
    assert_eq!(dc.cmd(&["GET", "k"]), "$1\r\nw\r\n");
}

#[test]
fn replicaof_no_one_keeps_the_data_and_the_old_history_as_replid2() {
    let m = redis_master();
    let d = damselfly(&[]);
    let mut mc = Conn::open(m.port);
    mc.cmd(&["SET", "k", "v"]);
    let mut dc = Conn::open(d.port);
    dc.cmd(&["REPLICAOF", "127.0.0.1", &m.port.to_string()]);
    wait_caught_up(m.port, d.port);
    let id = info_field(&mut dc, "replication", "master_replid");
    let off: i64 = info_field(&mut dc, "replication", "master_repl_offset")
        .and_then(|v| v.parse().ok())
        .expect("offset");
    assert_eq!(dc.cmd(&["REPLICAOF", "NO", "ONE"]), "+OK\r\n");
    assert_eq!(dc.cmd(&["GET", "k"]), "$1\r\nv\r\n");
    assert_eq!(
        info_field(&mut dc, "replication", "role").as_deref(),
        Some("master")
    );
    assert_eq!(info_field(&mut dc, "replication", "master_replid2"), id);
    assert_ne!(info_field(&mut dc, "replication", "master_replid"), id);
    assert_eq!(
        info_field(&mut dc, "replication", "second_repl_offset"),
        Some((off + 1).to_string())
    );
}

#[test]
fn a_silent_master_is_dropped_after_repl_timeout_and_reconnected() {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let d = damselfly(&["--repl-timeout", "1"]);
    let mut dc = Conn::open(d.port);
    let own = info_field(&mut dc, "replication", "master_replid").unwrap_or_default();
    dc.cmd(&["REPLICAOF", "127.0.0.1", &port.to_string()]);
    let id = "b".repeat(40);
    let mut rdb = format!("+FULLRESYNC {id} 7\r\n\n\n$18\r\n").into_bytes();
    rdb.extend_from_slice(b"REDIS0010\xff\0\0\0\0\0\0\0\0");
    // The master goes silent after the RDB (the session returns when the
    // replica gives up on it).
    let first = fake_master_session(&l, &rdb);
    assert_eq!(first, format!("PSYNC {own} 1"));
    let second = fake_master_session(&l, b"-ERR bye\r\n");
    assert_eq!(second, format!("PSYNC {id} 8"));
}

#[test]
fn a_replica_keeps_every_key_its_master_sends_past_its_own_maxmemory() {
    let m = redis_master();
    let d = damselfly(&[]);
    let mut dc = Conn::open(d.port);
    dc.cmd(&["REPLICAOF", "127.0.0.1", &m.port.to_string()]);
    wait_caught_up(m.port, d.port);
    let used: u64 = info_field(&mut dc, "memory", "used_memory")
        .and_then(|v| v.parse().ok())
        .expect("used_memory");
    let limit = (used + (1 << 20)).to_string();
    dc.cmd(&["CONFIG", "SET", "maxmemory", &limit]);
    dc.cmd(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]);
    let mut mc = Conn::open(m.port);
    let value = "x".repeat(1000);
    for i in 0..4000 {
        mc.cmd(&["SET", &format!("k{i}"), &value]);
    }
    wait_caught_up(m.port, d.port);
    assert_eq!(dc.cmd(&["DBSIZE"]), ":4000\r\n");
    assert_eq!(
        info_field(&mut dc, "stats", "evicted_keys").as_deref(),
        Some("0")
    );
}

#[test]
fn damselfly_replica_of_damselfly_converges_and_resyncs_partially() {
    let m = damselfly(&[]);
    let d = damselfly(&[]);
    let mut mc = Conn::open(m.port);
    mc.cmd(&["CONFIG", "SET", "repl-backlog-size", "256mb"]);
    let stop = Arc::new(AtomicBool::new(false));
    let load = start_load(m.port, &stop);
    std::thread::sleep(Duration::from_millis(300));
    let mut dc = Conn::open(d.port);
    assert_eq!(
        dc.cmd(&["REPLICAOF", "127.0.0.1", &m.port.to_string()]),
        "+OK\r\n"
    );
    wait_for("the first sync", || {
        info_field(&mut dc, "replication", "master_link_status").as_deref() == Some("up")
    });
    std::thread::sleep(Duration::from_millis(300));
    let list = dc.cmd(&["CLIENT", "LIST"]);
    assert!(
        list.lines()
            // `x` too while it runs a MULTI from the stream.
            .any(|l| l.contains(" flags=M") && l.contains(" user=(superuser) ")),
        "{list}"
    );
    // A replica of the replica (chained): a full sync from d's data, then
    // m's stream as d receives it, across d's own partial resync.
    let e = damselfly(&[]);
    let mut ec = Conn::open(e.port);
    assert_eq!(
        ec.cmd(&["REPLICAOF", "127.0.0.1", &d.port.to_string()]),
        "+OK\r\n"
    );
    wait_for("the chained sync", || {
        info_field(&mut ec, "replication", "master_link_status").as_deref() == Some("up")
    });
    assert_eq!(dc.cmd(&["CLIENT", "KILL", "TYPE", "master"]), ":1\r\n");
    wait_for("a partial resync", || stats(m.port).1 >= 1);
    std::thread::sleep(Duration::from_millis(300));
    stop_load(&stop, load);
    assert_same_data(m.port, d.port);
    assert_eq!(stats(m.port), (1, 1), "(sync_full, sync_partial_ok)");
    // The same stream, so the same offsets and replid as m.
    wait_caught_up(m.port, e.port);
    assert_same_data(m.port, e.port);
    assert_eq!(
        info_field(&mut ec, "replication", "master_replid"),
        info_field(&mut mc, "replication", "master_replid")
    );
    assert_eq!(stats(d.port), (1, 0), "(sync_full, sync_partial_ok) on d");
}

#[test]
fn a_partial_resync_keeps_the_db_the_master_selected() {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let d = damselfly(&[]);
    let mut dc = Conn::open(d.port);
    dc.cmd(&["REPLICAOF", "127.0.0.1", &port.to_string()]);
    let id = "c".repeat(40);
    let mut first = format!("+FULLRESYNC {id} 0\r\n$18\r\n").into_bytes();
    first.extend_from_slice(b"REDIS0010\xff\0\0\0\0\0\0\0\0");
    first.extend_from_slice(b"*2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n");
    first.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n");
    first.extend_from_slice(b"*1\r\n+garbage\r\n");
    fake_master_session(&l, &first);
    // The master continues without repeating its SELECT.
    let master = std::thread::spawn(move || {
        fake_master_session(
            &l,
            b"+CONTINUE\r\n*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$1\r\n2\r\n",
        )
    });
    dc.cmd(&["SELECT", "3"]);
    wait_for("the write after the partial resync", || {
        dc.cmd(&["GET", "b"]) == "$1\r\n2\r\n"
    });
    assert_eq!(dc.cmd(&["GET", "a"]), "$1\r\n1\r\n");
    dc.cmd(&["SELECT", "0"]);
    assert_eq!(dc.cmd(&["DBSIZE"]), ":0\r\n");
    dc.cmd(&["REPLICAOF", "NO", "ONE"]);
    let psync = master.join().expect("fake master");
    assert_eq!(psync, format!("PSYNC {id} 51"));
}

#[test]
fn clients_get_loading_while_a_full_syncs_rdb_loads() {
    let m = damselfly(&[]);
    let mut mc = Conn::open(m.port);
    for k in ["k1", "k2", "k3", "k4"] {
        mc.cmd(&["SET", k, "v"]);
    }
    // A second per key loaded keeps the load going while we look.
    let d = damselfly(&["--key-load-delay", "1000000"]);
    let mut dc = Conn::open(d.port);
    dc.cmd(&["REPLICAOF", "127.0.0.1", &m.port.to_string()]);
    let loading = "-LOADING Redis is loading the dataset in memory\r\n";
    wait_for("-LOADING", || dc.cmd(&["GET", "k1"]) == loading);
    // Commands flagged `loading` still run.
    assert_eq!(
        info_field(&mut dc, "persistence", "loading").as_deref(),
        Some("1")
    );
    assert!(dc.cmd(&["ROLE"]).starts_with("*5\r\n$5\r\nslave\r\n"));
    wait_for("the loaded keys", || {
        dc.cmd(&["GET", "k4"]) == "$1\r\nv\r\n"
    });
    assert_eq!(dc.cmd(&["DBSIZE"]), ":4\r\n");
    assert_eq!(
        info_field(&mut dc, "persistence", "loading").as_deref(),
        Some("0")
    );
}

#[test]
fn clients_blocked_on_a_master_that_turns_replica_are_unblocked_as_redis_does() {
    let master = redis_master();
    let port = master.port.to_string();
    let mut replies = Vec::new();
    for p in [redis(), damselfly(&[])] {
        let mut blocked = Conn::open(p.port);
        blocked.send(&["BLPOP", "foo", "0"]);
        let mut c = Conn::open(p.port);
        wait_for("the client to block", || {
            info_field(&mut c, "clients", "blocked_clients").as_deref() == Some("1")
        });
        assert_eq!(c.cmd(&["REPLICAOF", "127.0.0.1", &port]), "+OK\r\n");
        replies.push(String::from_utf8_lossy(&blocked.read()).into_owned());
        c.cmd(&["REPLICAOF", "NO", "ONE"]);
    }
    assert_eq!(replies[0], replies[1]);
    assert!(
        replies[0].starts_with("-UNBLOCKED force unblock"),
        "{}",
        replies[0]
    );
}

/// A replica keeps keys past their TTL until the master's DEL; DEBUG
/// OBJECT sees them there (Redis's suite checks a replica this way), and
/// on a master until they are deleted.
#[test]
fn debug_object_finds_a_key_past_its_ttl_as_redis_does() {
    let r = crate::support::redis_with(&["--enable-debug-command", "yes"]);
    for p in [r, damselfly(&[])] {
        let mut c = Conn::open(p.port);
        c.cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
        c.cmd(&["SET", "k", "v", "PX", "1"]);
        std::thread::sleep(Duration::from_millis(20));
        assert!(c.cmd(&["DEBUG", "OBJECT", "k"]).starts_with("+Value at:"));
        assert_eq!(c.cmd(&["EXISTS", "k"]), ":0\r\n");
        assert_eq!(c.cmd(&["DEBUG", "OBJECT", "k"]), "-ERR no such key\r\n");
    }
}

/// Redis's replica expires the keys its own clients gave a TTL (a writable
/// replica's; the master knows nothing of them), never the master's.
#[test]
fn a_writable_replica_expires_only_the_keys_its_clients_gave_a_ttl() {
    let m = crate::support::redis_with(&["--enable-debug-command", "yes"]);
    let mut mc = Conn::open(m.port);
    mc.cmd(&["CONFIG", "SET", "repl-diskless-sync-delay", "0"]);
    mc.cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    mc.cmd(&["SET", "m1", "1", "PX", "100"]);
    mc.cmd(&["SET", "m2", "1", "PX", "100"]);
    let d = damselfly(&[]);
    let mut dc = Conn::open(d.port);
    dc.cmd(&["REPLICAOF", "127.0.0.1", &m.port.to_string()]);
    wait_caught_up(m.port, d.port);
    dc.cmd(&["CONFIG", "SET", "replica-read-only", "no"]);
    assert_eq!(dc.cmd(&["SET", "local", "1", "PX", "100"]), "+OK\r\n");
    assert_eq!(dc.cmd(&["DBSIZE"]), ":3\r\n");
    wait_for("the local key to expire", || {
        dc.cmd(&["DBSIZE"]) == ":2\r\n"
    });
    // The master's keys, past their TTL, read as gone but stay; a write
    // from a client makes a new key without the TTL.
    assert_eq!(dc.cmd(&["EXISTS", "m1", "m2"]), ":0\r\n");
    assert_eq!(dc.cmd(&["INCR", "m1"]), ":1\r\n");
    assert_eq!(dc.cmd(&["TTL", "m1"]), ":-1\r\n");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(dc.cmd(&["DBSIZE"]), ":2\r\n");
    dc.cmd(&["REPLICAOF", "NO", "ONE"]);
}

/// A replica saves where its data stands in the master's history (the RDB's
/// repl-id, repl-offset and repl-stream-db aux fields, as Redis 7.0's); restarted on
/// that RDB it continues with a partial resync, in the DB the stream had.
#[test]
fn a_replica_restarted_on_its_own_rdb_resyncs_partially() {
    let m = damselfly(&[]);
    let mut mc = Conn::open(m.port);
    mc.cmd(&["SELECT", "9"]);
    mc.cmd(&["SET", "a", "1"]);
    let dir = crate::support::tempdir::Dir::new("dfly-replica");
    let port = crate::support::free_port();
    let master = format!("127.0.0.1:{}", m.port);
    let start = || {
        let child =
            crate::support::spawn_damselfly(port, &dir.0, &["--replicaof", &master], Stdio::null());
        wait_for("the replica to start", || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        child
    };
    let mut child = start();
    wait_caught_up(m.port, port);
    let mut rc = Conn::open(port);
    rc.send(&["SHUTDOWN", "SAVE"]);
    let _ = child.wait();
    mc.cmd(&["SET", "b", "2"]);
    let mut child = start();
    wait_caught_up(m.port, port);
    assert_eq!(stats(m.port), (1, 1), "(sync_full, sync_partial_ok)");
    let mut rc = Conn::open(port);
    rc.cmd(&["SELECT", "9"]);
    assert_eq!(rc.cmd(&["MGET", "a", "b"]), "*2\r\n$1\r\n1\r\n$1\r\n2\r\n");
    let _ = child.kill();
    let _ = child.wait();
}
