//! Replication, master side: the command stream compared with Redis 7.0's
//! for the same commands, Debian's redis-server replicating from Damselfly
//! under a concurrent write load of every type, partial resync after a
//! dropped link, WAIT, ROLE, INFO and `redis-cli --rdb`.

use crate::support::{damselfly, diff, redis, redis_in_with, tempdir, Conn, Proc};
use std::collections::BTreeMap;
use std::io::{BufRead, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A connection that asked for a full sync and now reads the stream.
struct Stream {
    conn: Conn,
}

impl Stream {
    /// `PSYNC ? -1`, then the RDB (disk form: no `capa eof` was sent).
    fn open(port: u16) -> Stream {
        let mut conn = Conn::open(port);
        conn.send(&["PSYNC", "?", "-1"]);
        let mut line = String::new();
        // Redis may send newlines (keepalives) while it prepares the RDB.
        while line.trim().is_empty() {
            line.clear();
            conn.reader.read_line(&mut line).expect("psync reply");
        }
        assert!(line.starts_with("+FULLRESYNC "), "{line}");
        line.clear();
        while line.trim().is_empty() {
            line.clear();
            conn.reader.read_line(&mut line).expect("rdb header");
        }
        let len: usize = line
            .trim()
            .strip_prefix('$')
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("bad bulk header {line:?}"));
        let mut rdb = vec![0; len];
        conn.reader.read_exact(&mut rdb).expect("rdb");
        assert!(rdb.starts_with(b"REDIS"));
        Stream { conn }
    }

    /// The next command of the stream, as strings.
    fn next(&mut self) -> Vec<String> {
        let r = &mut self.conn.reader;
        let mut line = String::new();
        r.read_line(&mut line).expect("stream");
        let n: usize = line
            .trim()
            .strip_prefix('*')
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("not a command: {line:?}"));
        (0..n)
            .map(|_| {
                line.clear();
                r.read_line(&mut line).expect("bulk header");
                let len: usize = line.trim()[1..].parse().expect("bulk length");
                let mut b = vec![0; len + 2];
                r.read_exact(&mut b).expect("bulk");
                b.truncate(len);
                String::from_utf8_lossy(&b).into_owned()
            })
            .collect()
    }

    /// Commands up to (not including) `SET __end__ 1`, PINGs left out,
    /// times and stream IDs replaced by placeholders.
    fn until_end(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            let cmd = self.next();
            if cmd.len() == 3 && cmd[1] == "__end__" {
                return out;
            }
            if cmd[0].eq_ignore_ascii_case("ping") {
                continue;
            }
            let words: Vec<String> = cmd.iter().map(|a| normalize(a)).collect();
            out.push(words.join(" "));
        }
    }
}

fn normalize(a: &str) -> String {
    let is_ms = |s: &str| s.len() == 13 && s.bytes().all(|b| b.is_ascii_digit());
    match a.split_once('-') {
        Some((ms, seq)) if is_ms(ms) && seq.bytes().all(|b| b.is_ascii_digit()) => "<id>".into(),
        _ if is_ms(a) => "<ms>".into(),
        _ => a.into(),
    }
}

/// Runs `script` on both servers (one command a line) with a stream
/// reader attached to each, and returns both streams.
fn streams(script: &str) -> (Vec<String>, Vec<String>) {
    let r = redis();
    let d = damselfly(&[]);
    let mut out = Vec::new();
    for p in [&r, &d] {
        let mut stream = Stream::open(p.port);
        let mut c = Conn::open(p.port);
        let mut blocked = Conn::open(p.port);
        c.cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
        for line in script.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if let Some(ms) = line.strip_prefix("sleep ") {
                std::thread::sleep(Duration::from_millis(ms.parse().expect("ms")));
                continue;
            }
            // `&` sends on a second connection, which blocks; the next
            // line runs once the server counts it blocked.
            if let Some(cmd) = line.strip_prefix("& ") {
                // The previous blocked command must be done first.
                poll("the last blocked client to be served", || {
                    c.cmd(&["INFO", "clients"]).contains("blocked_clients:0")
                });
                blocked.send(&crate::support::words(cmd));
                poll("the client to block", || {
                    c.cmd(&["INFO", "clients"]).contains("blocked_clients:1")
                });
                continue;
            }
            let args = crate::support::words(line);
            c.raw(&args);
        }
        c.cmd(&["SET", "__end__", "1"]);
        out.push(stream.until_end());
    }
    let d = out.pop().expect("damselfly");
    let r = out.pop().expect("redis");
    (r, d)
}

#[test]
fn the_stream_rewrites_commands_as_redis_does() {
    let (want, got) = streams(
        r##"
        SET a 1
        EXPIRE a 100
        SET b 2 EX 100
        SETEX c 100 x
        PSETEX c2 100000 x
        SET d 1 NX GET EX 100
        SET i 1 KEEPTTL GET
        SET j 1 PXAT 99999999999999
        GETSET j 2
        GETSET j2 3
        INCRBYFLOAT f 1.5
        HINCRBYFLOAT h f 1.5
        SADD s 1
        SPOP s
        SADD s2 a b
        SPOP s2 5
        SELECT 3
        SET x y
        SELECT 0
        XADD st * a 1
        EVAL "redis.call('set','k1','v'); redis.call('incr','n'); return 1" 0
        EVAL "redis.call('set','k2','v'); return 1" 0
        EVAL "return redis.call('get','k2')" 0
        EVAL "redis.call('set','sr1','1'); redis.set_repl(redis.REPL_NONE); redis.call('set','sr2','2'); redis.set_repl(redis.REPL_AOF); redis.call('set','sr3','3'); redis.set_repl(redis.REPL_ALL); redis.call('set','sr4','4')" 0
        EVAL "redis.set_repl(redis.REPL_NONE); redis.call('set','sr5','5')" 0
        MULTI
        SET m1 1
        EXEC
        MULTI
        SET m1 1
        INCR m2
        GET m1
        EXEC
        RPUSH l a b c d e
        BLPOP nx l 0
        BRPOP l 0
        BLMOVE l l2 left right 0
        BRPOPLPUSH l l3 0
        BLMPOP 0 2 nx l left count 5
        ZADD z 1 a 2 b 3 c 4 d
        BZPOPMIN z 0
        BZPOPMAX z 0
        BZMPOP 0 1 z min count 2
        LPUSH m 1 2 3
        LMPOP 1 m left count 2
        GETEX b PERSIST
        GETEX b PXAT 99999999999999
        GETEX b PERSIST
        EXPIREAT a 1
        SET g 1
        EXPIRE g 100 NX
        PEXPIREAT g 99999999999999
        DEL nosuch
        PFADD hl a b
        PFCOUNT hl
        PUBLISH ch hi
        SET e 1 PX 1
        SET t 1 PX 1
        sleep 20
        SET e 2
        GET t
        FLUSHDB
        FLUSHDB
        SELECT 5
        FLUSHALL
        SELECT 0
        SWAPDB 0 1
        SET k v
        MOVE k 3
        COPY nosuch x
        FUNCTION LOAD "#!lua name=lib1\nredis.register_function('f1', function() return 1 end)"
        FCALL f1 0
        SCRIPT LOAD "return 1"
        SCRIPT FLUSH
        FUNCTION DELETE lib1
        FUNCTION FLUSH
        XADD gs 1-1 a 1
        XADD gs 2-1 b 1
        XGROUP CREATE gs g 0
        XREADGROUP GROUP g c1 COUNT 1 STREAMS gs >
        XREADGROUP GROUP g c2 NOACK STREAMS gs >
        XREADGROUP GROUP g c1 STREAMS gs 0
        XCLAIM gs g c3 0 1-1
        XAUTOCLAIM gs g c4 0 0
        XACK gs g 1-1
        XGROUP CREATECONSUMER gs g c9
        XREADGROUP GROUP g c5 STREAMS gs >
        XADD gs 3-1 c 1
        XADD gs 4-1 d 1
        XREADGROUP GROUP g c6 STREAMS gs >
        XDEL gs 3-1
        XCLAIM gs g c7 0 3-1 4-1
        & BLPOP bl 0
        RPUSH bl x y
        & BLMOVE bl2 bl3 RIGHT LEFT 0
        EVAL "redis.call('rpush', KEYS[1], 'a'); return redis.call('incr', 'cnt')" 1 bl2
        & BZPOPMIN bz 0
        ZADD bz 1 m
        "##,
    );
    assert_eq!(
        got,
        want,
        "\ndamselfly:\n{}\nredis:\n{}",
        got.join("\n"),
        want.join("\n")
    );
}

#[test]
fn replication_commands_reply_as_redis_does() {
    diff(
        r#"
        ROLE
        WAIT 0 0
        WAIT 1 x
        WAIT x 0
        WAIT 0 -1
        WAIT 0
        REPLCONF
        REPLCONF listening-port
        REPLCONF listening-port 7000
        REPLCONF listening-port abc
        REPLCONF capa eof capa psync2
        REPLCONF nosuch 1
        PSYNC x
        CONFIG GET repl-backlog-size
        CONFIG GET min-replicas-to-write
        CONFIG GET min-slaves-max-lag
        CONFIG GET repl-diskless-sync
        CONFIG SET repl-backlog-size 2mb
        CONFIG GET repl-backlog-size
        CONFIG SET repl-backlog-size 0
        CONFIG GET repl-ping-replica-period
        "#,
    );
}

/// redis-server following `master_port`, with no persistence.
fn redis_replica_of(master_port: u16) -> Proc {
    let port = master_port.to_string();
    redis_in_with(
        tempdir::Dir::new("replica"),
        &["--replicaof", "127.0.0.1", &port],
    )
}

/// Polls `f` until it holds, for a generous while.
fn poll(what: &str, f: impl FnMut() -> bool) {
    poll_or(what, f, String::new);
}

/// `poll`, saying `context()` if it times out.
fn poll_or(what: &str, mut f: impl FnMut() -> bool, context: impl Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !f() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}\n{}",
            context()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn poll_caught_up(master: u16, replica: u16) {
    poll_or(
        "the replica to catch up",
        || caught_up(master, replica),
        || {
            format!(
                "{:?}\n{:?}",
                info(master, "replication"),
                info(replica, "replication")
            )
        },
    );
}

fn info(port: u16, section: &str) -> BTreeMap<String, String> {
    let text: String = redis::cmd("INFO")
        .arg(section)
        .query(&mut conn(port, 0))
        .expect("info");
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn conn(port: u16, db: usize) -> redis::Connection {
    redis::Client::open(format!("redis://127.0.0.1:{port}/{db}"))
        .and_then(|c| c.get_connection())
        .expect("connect")
}

/// The replica is linked and has everything the master streamed.
fn caught_up(master: u16, replica: u16) -> bool {
    let m = info(master, "replication");
    let r = info(replica, "replication");
    r.get("master_link_status").map(String::as_str) == Some("up")
        && r.get("master_sync_in_progress").map(String::as_str) == Some("0")
        && m.get("master_repl_offset") == r.get("slave_repl_offset")
}

/// One worker of the random write load: every type, TTLs (long ones, and
/// short ones under the `tmp:` prefix that expire during the run), MULTI
/// and EVAL.
fn load(port: u16, seed: u64, ops: usize) {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut c = conn(port, 0);
    for _ in 0..ops {
        let k = rng.random_range(0..40);
        let db = if rng.random_bool(0.2) { 2 } else { 0 };
        let v = rng.random_range(0..1000).to_string();
        let mut p = redis::pipe();
        p.cmd("SELECT").arg(db).ignore();
        match rng.random_range(0..26) {
            0 => p.cmd("SET").arg(format!("s{k}")).arg(&v),
            1 => p
                .cmd("SET")
                .arg(format!("s{k}"))
                .arg(&v)
                .arg("EX")
                .arg(1000),
            2 => p.cmd("INCRBY").arg(format!("n{k}")).arg(&v),
            3 => p.cmd("INCRBYFLOAT").arg(format!("f{k}")).arg("1.25"),
            4 => p.cmd("APPEND").arg(format!("s{k}")).arg(&v),
            5 => p.cmd("EXPIRE").arg(format!("s{k}")).arg(500),
            6 => p
                .cmd("SET")
                .arg(format!("tmp:{k}"))
                .arg(&v)
                .arg("PX")
                .arg(rng.random_range(1..30)),
            7 => p.cmd("RPUSH").arg(format!("l{k}")).arg(&v).arg("x"),
            8 => p.cmd("LPOP").arg(format!("l{k}")),
            9 => p
                .cmd("LMOVE")
                .arg(format!("l{k}"))
                .arg(format!("l{}", (k + 1) % 40))
                .arg("LEFT")
                .arg("RIGHT"),
            10 => p.cmd("HSET").arg(format!("h{k}")).arg(&v).arg(k),
            11 => p
                .cmd("HINCRBYFLOAT")
                .arg(format!("h{k}"))
                .arg("f")
                .arg("0.5"),
            12 => p.cmd("SADD").arg(format!("set{k}")).arg(&v),
            13 => p.cmd("SPOP").arg(format!("set{k}")),
            14 => p.cmd("ZADD").arg(format!("z{k}")).arg(&v).arg(&v),
            15 => p.cmd("ZPOPMIN").arg(format!("z{k}")),
            16 => p
                .cmd("XADD")
                .arg(format!("x{k}"))
                .arg("MAXLEN")
                .arg("~")
                .arg(50)
                .arg("*")
                .arg("f")
                .arg(&v),
            17 => p.cmd("DEL").arg(format!("s{k}")).arg(format!("l{k}")),
            18 => p
                .atomic()
                .cmd("INCR")
                .arg(format!("n{k}"))
                .cmd("RPUSH")
                .arg(format!("l{k}"))
                .arg(&v)
                .cmd("SPOP")
                .arg(format!("set{k}")),
            19 => p
                .cmd("EVAL")
                .arg(
                    "redis.call('incr', KEYS[1]); redis.call('spop', KEYS[2]); \
                     return redis.call('rpush', KEYS[3], ARGV[1])",
                )
                .arg(3)
                .arg(format!("n{k}"))
                .arg(format!("set{k}"))
                .arg(format!("l{k}"))
                .arg(&v),
            20 => p.cmd("SPOP").arg(format!("set{k}")).arg(3),
            21 => p
                .cmd("XGROUP")
                .arg("CREATE")
                .arg(format!("x{k}"))
                .arg("g")
                .arg(0)
                .arg("MKSTREAM"),
            22 => p
                .cmd("XREADGROUP")
                .arg("GROUP")
                .arg("g")
                .arg(format!("c{}", k % 3))
                .arg("COUNT")
                .arg(2)
                .arg("STREAMS")
                .arg(format!("x{k}"))
                .arg(">"),
            23 => p
                .cmd("XAUTOCLAIM")
                .arg(format!("x{k}"))
                .arg("g")
                .arg("c9")
                .arg(0)
                .arg(0)
                .arg("COUNT")
                .arg(1),
            24 => p
                .cmd("XREADGROUP")
                .arg("GROUP")
                .arg("g")
                .arg("n")
                .arg("NOACK")
                .arg("STREAMS")
                .arg(format!("x{k}"))
                .arg(">"),
            _ => p.cmd("GETEX").arg(format!("s{k}")).arg("PX").arg(900_000),
        };
        // Wrong types are part of the load: they must change nothing.
        let _: redis::RedisResult<redis::Value> = p.query(&mut c);
    }
}

/// Every key of both servers (short-lived `tmp:` keys aside) with its
/// type, a canonical form of its value, and its TTL rounded to minutes.
fn dataset(port: u16) -> BTreeMap<(usize, String), String> {
    let mut out = BTreeMap::new();
    for db in [0usize, 2] {
        let mut c = conn(port, db);
        let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut c).expect("keys");
        for k in keys.into_iter().filter(|k| !k.starts_with("tmp:")) {
            let t: String = redis::cmd("TYPE").arg(&k).query(&mut c).expect("type");
            let value = match t.as_str() {
                "string" => redis::cmd("GET")
                    .arg(&k)
                    .query::<String>(&mut c)
                    .expect("get"),
                "list" => format!(
                    "{:?}",
                    redis::cmd("LRANGE")
                        .arg(&k)
                        .arg(0)
                        .arg(-1)
                        .query::<Vec<String>>(&mut c)
                        .expect("lrange")
                ),
                "hash" => format!(
                    "{:?}",
                    redis::cmd("HGETALL")
                        .arg(&k)
                        .query::<BTreeMap<String, String>>(&mut c)
                        .expect("hgetall")
                ),
                "set" => {
                    let mut m: Vec<String> = redis::cmd("SMEMBERS")
                        .arg(&k)
                        .query(&mut c)
                        .expect("smembers");
                    m.sort();
                    format!("{m:?}")
                }
                "zset" => format!(
                    "{:?}",
                    redis::cmd("ZRANGE")
                        .arg(&k)
                        .arg(0)
                        .arg(-1)
                        .arg("WITHSCORES")
                        .query::<Vec<String>>(&mut c)
                        .expect("zrange")
                ),
                "stream" => stream_value(&mut c, &k),
                other => other.to_string(),
            };
            let ttl: i64 = redis::cmd("TTL").arg(&k).query(&mut c).expect("ttl");
            let ttl = if ttl < 0 { ttl } else { (ttl + 30) / 60 };
            out.insert((db, k), format!("{t} {value} ttl~{ttl}m"));
        }
    }
    out
}

/// A stream's entries, and per group its position and pending entries
/// (owner and delivery count; idle times are each server's own).
fn stream_value(c: &mut redis::Connection, k: &str) -> String {
    use redis::Value as V;
    let entries: V = redis::cmd("XRANGE")
        .arg(k)
        .arg("-")
        .arg("+")
        .query(c)
        .expect("xrange");
    let groups: Vec<std::collections::HashMap<String, V>> = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(k)
        .query(c)
        .expect("xinfo");
    let mut out = format!("{entries:?}");
    for grp in groups {
        let text = |f: &str| match grp.get(f) {
            Some(V::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
            other => format!("{other:?}"),
        };
        let name = text("name");
        let pending: Vec<(String, String, i64, i64)> = redis::cmd("XPENDING")
            .arg(k)
            .arg(&name)
            .arg("-")
            .arg("+")
            .arg(1000)
            .query(c)
            .expect("xpending");
        let pending: Vec<_> = pending
            .into_iter()
            .map(|(id, who, _, n)| (id, who, n))
            .collect();
        out += &format!(" group {name} at {} {pending:?}", text("last-delivered-id"));
    }
    out
}

fn assert_same_data(master: u16, replica: u16) {
    let m = dataset(master);
    let r = dataset(replica);
    let diffs: Vec<String> = m
        .iter()
        .filter(|(k, v)| r.get(*k) != Some(*v))
        .map(|(k, v)| format!("{k:?}: master {v} / replica {:?}", r.get(k)))
        .chain(
            r.keys()
                .filter(|k| !m.contains_key(*k))
                .map(|k| format!("{k:?}: only on the replica")),
        )
        .collect();
    assert!(m.len() > 50, "the load wrote too little: {}", m.len());
    assert!(
        diffs.is_empty(),
        "{} differences:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}

#[test]
fn redis_replica_syncs_under_a_write_load_and_resyncs_partially() {
    // Redis's default diskless delay (5 s) would let the load finish first.
    let master = damselfly(&["--repl-diskless-sync-delay", "0"]);
    let port = master.port;
    load(port, 1, 300);
    // The replica attaches while four clients write.
    let workers: Vec<_> = (0..4)
        .map(|i| std::thread::spawn(move || load(port, 10 + i, 1500)))
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    let replica = redis_replica_of(port);
    for w in workers {
        w.join().expect("load");
    }
    poll_caught_up(port, replica.port);
    assert_same_data(port, replica.port);
    let stats = info(port, "stats");
    assert_eq!(stats["sync_full"], "1");
    let repl = info(port, "replication");
    assert_eq!(repl["connected_slaves"], "1");
    assert!(
        repl["slave0"].contains("state=online"),
        "{}",
        repl["slave0"]
    );
    assert!(
        repl["slave0"].contains(&format!("port={}", replica.port)),
        "{}",
        repl["slave0"]
    );
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .arg("TYPE")
        .arg("replica")
        .query(&mut conn(port, 0))
        .expect("client list");
    assert!(list.contains("flags=S"), "{list}");

    // Drop the link: the replica reconnects and continues from the backlog.
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("replica")
        .query(&mut conn(port, 0))
        .expect("client kill");
    assert_eq!(killed, 1);
    load(port, 99, 500);
    poll("the partial resync", || {
        info(port, "stats")["sync_partial_ok"] == "1" && caught_up(port, replica.port)
    });
    assert_eq!(info(port, "stats")["sync_full"], "1");
    assert_same_data(port, replica.port);

    // WAIT counts the replica once it acknowledged the writes before it.
    let mut c = conn(port, 0);
    let _: () = redis::cmd("SET")
        .arg("w")
        .arg(1)
        .query(&mut c)
        .expect("set");
    // A bounded WAIT: a replica that never acknowledges fails the test
    // instead of hanging it (it acknowledges every second).
    let n: i64 = redis::cmd("WAIT")
        .arg(1)
        .arg(120_000)
        .query(&mut c)
        .expect("wait");
    assert_eq!(n, 1, "the replica did not acknowledge within 120 s");
    let role: redis::Value = redis::cmd("ROLE").query(&mut c).expect("role");
    let text = format!("{role:?}");
    assert!(
        text.contains("master") && text.contains(&replica.port.to_string()),
        "{text}"
    );

    let metrics = http_get(port, "/metrics");
    let lag = format!(
        "dragonfly_connected_replica_lag_records{{replica_ip=\"127.0.0.1\",replica_port=\"{}\",replica_state=\"online\"}}",
        replica.port
    );
    assert!(metrics.contains(&lag), "{metrics}");
    for line in [
        "dragonfly_master 1",
        "dragonfly_replication_connected_replicas 1",
        "dragonfly_replication_full_syncs_total 1",
    ] {
        assert!(
            metrics.contains(&format!("\n{line}\n")),
            "{line}: {metrics}"
        );
    }
}

fn http_get(port: u16, path: &str) -> String {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    // One write: the server tells HTTP from RESP by the first bytes.
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
    s.write_all(request.as_bytes()).expect("request");
    let mut body = String::new();
    s.read_to_string(&mut body).expect("response");
    body
}

#[test]
fn min_replicas_to_write_refuses_writes_as_redis_does() {
    diff(
        r##"
        SET x 1
        CONFIG SET min-replicas-to-write 1
        SET x 2
        GET x
        EVAL "#!lua flags=no-writes\nreturn redis.call('get','x')" 1 x
        EVAL "return redis.call('get','x')" 1 x
        EVAL "#!lua\nreturn redis.call('get','x')" 1 x
        EVAL "return redis.call('set','x', 1)" 1 x
        EVAL_RO "return redis.call('get','x')" 1 x
        MULTI
        SET x 3
        GET x
        EXEC
        CONFIG SET min-replicas-max-lag 0
        SET x 4
        CONFIG SET min-replicas-to-write 0
        "##,
    );
}

#[test]
fn min_replicas_to_write_refuses_writes_without_good_replicas() {
    let d = damselfly(&[]);
    let mut c = Conn::open(d.port);
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "min-replicas-to-write", "1"]),
        "+OK\r\n"
    );
    assert_eq!(
        c.cmd(&["SET", "k", "v"]),
        "-NOREPLICAS Not enough good replicas to write.\r\n"
    );
    assert_eq!(c.cmd(&["GET", "k"]), "$-1\r\n");
    let replica = redis_replica_of(d.port);
    poll_caught_up(d.port, replica.port);
    assert_eq!(c.cmd(&["SET", "k", "v"]), "+OK\r\n");
}

#[test]
fn redis_cli_rdb_writes_a_file_redis_check_rdb_accepts() {
    let d = damselfly(&[]);
    let mut c = conn(d.port, 0);
    for i in 0..100 {
        let _: () = redis::cmd("RPUSH")
            .arg("l")
            .arg(i)
            .query(&mut c)
            .expect("rpush");
        let _: () = redis::cmd("SET")
            .arg(format!("k{i}"))
            .arg(i)
            .query(&mut c)
            .expect("set");
    }
    let dir = tempdir::Dir::new("cli-rdb");
    let file = dir.0.join("out.rdb");
    let status = Command::new("redis-cli")
        .args(["-p", &d.port.to_string(), "--rdb"])
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("redis-cli");
    assert!(status.success());
    let out = Command::new("redis-check-rdb")
        .arg(&file)
        .output()
        .expect("redis-check-rdb");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("RDB looks OK"), "{text}");
}

#[test]
fn a_replica_past_the_backlog_syncs_fully_again() {
    let d = damselfly(&[
        "--repl-diskless-sync-delay",
        "0",
        "--repl-backlog-size",
        "16kb",
    ]);
    let replica = redis_replica_of(d.port);
    poll_caught_up(d.port, replica.port);
    let mut c = conn(d.port, 0);
    // The replica is stopped so it cannot reconnect before the writes.
    signal(&replica, "-STOP");
    let _: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("replica")
        .query(&mut c)
        .expect("client kill");
    poll("the link to drop", || {
        info(d.port, "replication")["connected_slaves"] == "0"
    });
    // Far more than the backlog holds.
    for i in 0..200 {
        let _: () = redis::cmd("SET")
            .arg(format!("k{i}"))
            .arg("v".repeat(1000))
            .query(&mut c)
            .expect("set");
    }
    signal(&replica, "-CONT");
    poll_or(
        "a second full sync",
        || info(d.port, "stats")["sync_full"] == "2" && caught_up(d.port, replica.port),
        || format!("{:?}", info(d.port, "stats")),
    );
    let n: i64 = redis::cmd("DBSIZE")
        .query(&mut conn(replica.port, 0))
        .expect("dbsize");
    assert_eq!(n, 200);
    assert_eq!(info(d.port, "stats")["sync_partial_err"], "1");
}

fn signal(p: &Proc, sig: &str) {
    let status = Command::new("kill")
        .arg(sig)
        .arg(p.child.id().to_string())
        .status()
        .expect("kill");
    assert!(status.success());
}

#[test]
fn a_replica_that_stops_reading_is_dropped_at_its_output_limit() {
    let d = damselfly(&[]);
    let mut c = Conn::open(d.port);
    assert_eq!(
        c.cmd(&[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "replica 1mb 0 0"
        ]),
        "+OK\r\n"
    );
    // A replica that reads its RDB, then nothing more.
    let stuck = Stream::open(d.port);
    assert_eq!(info(d.port, "replication")["connected_slaves"], "1");
    let value = "x".repeat(100_000);
    poll("the replica to be dropped", || {
        c.cmd(&["SET", "big", &value]);
        info(d.port, "replication")["connected_slaves"] == "0"
    });
    // Its connection ends too, though it never reads again.
    poll("the replica's connection to close", || {
        !c.cmd(&["CLIENT", "LIST", "TYPE", "replica"])
            .contains("flags=S")
    });
    drop(stuck);
}

#[test]
fn a_replica_silent_past_repl_timeout_is_disconnected() {
    let d = damselfly(&["--repl-timeout", "1"]);
    let _silent = Stream::open(d.port);
    assert_eq!(info(d.port, "replication")["connected_slaves"], "1");
    poll("the silent replica to be dropped", || {
        info(d.port, "replication")["connected_slaves"] == "0"
    });
}

#[test]
fn debug_digest_matches_redis() {
    let r = crate::support::redis_with(&["--enable-debug-command", "yes"]);
    crate::support::diff_on(
        &r,
        &damselfly(&[]),
        r#"
        DEBUG DIGEST
        SET s hello
        SET n 12345
        RPUSH l a b c 7
        SADD st x y 1 2
        SADD ints 1 2 3
        ZADD z 1.5 a 2 b 3 7 0.1 c
        HSET h f v g w
        XADD x 1-1 a 1 b 2
        XADD x 2-0 c 3
        SET e v EX 100
        DEBUG DIGEST-VALUE s n l st ints z h x e nosuch
        DEBUG DIGEST
        SELECT 3
        SET s other
        DEBUG DIGEST
        "#,
    );
}

#[test]
fn a_damselfly_replica_continues_in_the_streams_db_after_a_partial_resync() {
    let m = damselfly(&[]);
    let d = damselfly(&[]);
    let mut mc = Conn::open(m.port);
    mc.cmd(&["SELECT", "9"]);
    mc.cmd(&["SET", "a", "1"]);
    let mut dc = Conn::open(d.port);
    let port = m.port.to_string();
    assert_eq!(dc.cmd(&["REPLICAOF", "127.0.0.1", &port]), "+OK\r\n");
    poll("the first sync", || {
        info(d.port, "replication")
            .get("master_link_status")
            .map(String::as_str)
            == Some("up")
    });
    mc.cmd(&["SET", "b", "1"]);
    poll("b on the replica", || conn_db_get(d.port, 9, "b").is_some());
    assert_eq!(dc.cmd(&["CLIENT", "KILL", "TYPE", "master"]), ":1\r\n");
    poll("the partial resync", || {
        info(m.port, "stats")["sync_partial_ok"] == "1"
    });
    // The master sends no SELECT again: the replica is still in DB 9.
    mc.cmd(&["SET", "c", "1"]);
    poll("c on the replica", || conn_db_get(d.port, 9, "c").is_some());
    assert_eq!(conn_db_get(d.port, 0, "c"), None);
}

fn conn_db_get(port: u16, db: usize, key: &str) -> Option<String> {
    redis::cmd("GET")
        .arg(key)
        .query(&mut conn(port, db))
        .expect("get")
}

#[test]
fn a_served_brpoplpush_reaches_replicas_as_rpoplpush() {
    let m = damselfly(&[]);
    let mut s = Stream::open(m.port);
    let mut c = Conn::open(m.port);
    for (cmd, shape) in [
        ("BRPOPLPUSH", "RPOPLPUSH a b"),
        ("BLMOVE", "lmove a b right left"),
    ] {
        let mut blocked = Conn::open(m.port);
        if cmd == "BLMOVE" {
            blocked.send(&["BLMOVE", "a", "b", "RIGHT", "LEFT", "0"]);
        } else {
            blocked.send(&["BRPOPLPUSH", "a", "b", "0"]);
        }
        poll("the client to block", || {
            info(m.port, "clients")["blocked_clients"] == "1"
        });
        c.cmd(&["LPUSH", "a", "foo"]);
        assert_eq!(blocked.read(), b"$3\r\nfoo\r\n");
        c.cmd(&["SET", "__end__", "1"]);
        let got = s.until_end().join("\n").to_lowercase();
        assert!(got.ends_with(&shape.to_lowercase()), "{cmd}: {got}");
    }
}

#[test]
fn debug_replicate_sends_a_command_down_the_stream_only() {
    let m = damselfly(&[]);
    let mut s = Stream::open(m.port);
    let mut c = Conn::open(m.port);
    assert_eq!(
        c.cmd(&["DEBUG", "REPLICATE", "fake-command-1", "a"]),
        "+OK\r\n"
    );
    c.cmd(&["SET", "__end__", "1"]);
    let got = s.until_end();
    assert!(got.iter().any(|l| l == "fake-command-1 a"), "{got:?}");
    assert_eq!(c.cmd(&["EXISTS", "a"]), ":0\r\n");
}

/// Scripts on a replica, against redis-server: one whose flags allow
/// writes is refused whole on a read-only replica (one without flags
/// only at its first write), and while the master link is down under
/// `replica-serve-stale-data no` only `allow-stale` scripts run, calling
/// only commands that may run stale.
#[test]
fn scripts_on_read_only_and_stale_replicas_match_redis() {
    diff(
        r##"
        FUNCTION LOAD "#!lua name=t\nredis.register_function('w', function() return redis.call('set','x','1') end)\nredis.register_function{function_name='r', callback=function() return redis.call('get','x') end, flags={'no-writes'}}\nredis.register_function{function_name='s', callback=function() return 1 end, flags={'allow-stale'}}\nredis.register_function{function_name='sr', callback=function() return redis.call('get','x') end, flags={'allow-stale','no-writes'}}\nredis.register_function{function_name='si', callback=function() return redis.call('info','server'):sub(1,8) end, flags={'allow-stale','no-writes'}}"
        # The master is unreachable: the link stays down.
        REPLICAOF 127.0.0.1 1
        FCALL w 0
        FCALL_RO w 0
        FCALL r 0
        FCALL s 0
        FCALL sr 0
        EVAL "#!lua\nreturn 1" 0
        EVAL_RO "#!lua\nreturn 1" 0
        EVAL "#!lua flags=no-writes\nreturn 1" 0
        EVAL "#!lua flags=allow-stale\nreturn redis.call('set','y',1)" 0
        EVAL "return redis.call('set','y',1)" 0
        EVAL "return redis.call('get','y')" 0
        EVAL_RO "return 1" 0
        CONFIG SET replica-serve-stale-data no
        CONFIG SET replica-read-only no
        FCALL w 0
        FCALL_RO r 0
        FCALL s 0
        FCALL sr 0
        FCALL si 0
        EVAL "return 1" 0
        EVAL_RO "return 1" 0
        EVAL "#!lua flags=no-writes\nreturn 1" 0
        EVAL "#!lua flags=allow-stale\nreturn redis.call('set','y',1)" 0
        EVAL "#!lua flags=allow-stale,no-writes\nreturn redis.call('get','y')" 0
        GET x
        REPLICAOF NO ONE
        CONFIG SET replica-serve-stale-data yes
        CONFIG SET replica-read-only yes
        FCALL w 0
        "##,
    );
}
