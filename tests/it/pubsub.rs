//! Pub/sub compared with redis-server over several connections (RESP2 and
//! RESP3), messages crossing worker threads, and a subscriber that never
//! reads being dropped while publishers carry on.

use crate::support::{damselfly, redis, words, Conn, Proc};

/// Runs `script` on both servers and compares every reply. Each line is
/// `C[:N] command` or `C[:N] .`: on connection C send the command (or
/// nothing, for `.`) and read N replies (default 1). A `~` before the
/// command sends it without comparing its replies (HELLO's client id);
/// `$idC` stands for connection C's client id (C opened first).
pub fn diff_conns(script: &str) {
    let r = redis();
    let d = damselfly(&[]);
    let want = run_conns(&r, script);
    let got = run_conns(&d, script);
    let mut failures = Vec::new();
    for ((line, w), (_, g)) in want.iter().zip(&got) {
        if w != g {
            failures.push(format!(
                "  {line}\n    redis:     {:?}\n    damselfly: {:?}",
                String::from_utf8_lossy(w),
                String::from_utf8_lossy(g)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "replies differ from redis-server:\n{}",
        failures.join("\n")
    );
}

fn run_conns(p: &Proc, script: &str) -> Vec<(String, Vec<u8>)> {
    let mut conns: Vec<Conn> = Vec::new();
    let mut ids: Vec<String> = Vec::new();
    Conn::open(p.port).cmd(&["FLUSHALL"]);
    let mut out = Vec::new();
    for line in script.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (head, rest) = line.split_once(' ').unwrap_or((line, "."));
        let (c, n) = match head.split_once(':') {
            Some((c, n)) => (c, n.parse::<usize>().expect("count")),
            None => (head, 1),
        };
        let c: usize = c.parse().expect("connection number");
        while conns.len() <= c {
            let mut conn = Conn::open(p.port);
            let id = conn.cmd(&["CLIENT", "ID"]);
            ids.push(id.trim_start_matches(':').trim_end().to_string());
            conns.push(conn);
        }
        let mut rest = rest.to_string();
        for (i, id) in ids.iter().enumerate() {
            rest = rest.replace(&format!("$id{i}"), id);
        }
        let (compare, cmd) = match rest.trim().strip_prefix('~') {
            Some(r) => (false, r.trim()),
            None => (true, rest.trim()),
        };
        if cmd != "." {
            conns[c].send(&words(cmd));
        }
        let mut bytes = Vec::new();
        for _ in 0..n {
            bytes.extend(conns[c].read());
        }
        if compare {
            out.push((line.to_string(), bytes));
        }
    }
    out
}

const BASICS: &str = r#"
    1:2 SUBSCRIBE chan1 chan2
    0 PUBLISH chan1 hello
    0 PUBLISH chan2 world
    0 PUBLISH nobody x
    1:2 .
    1 PING
    1 PING foo
    1 GET x
    1 MULTI
    1 CLIENT ID
    1 UNSUBSCRIBE chan1
    0 PUBLISH chan1 hello
    0 PUBLISH chan2 world
    1 .
    0 PUBSUB NUMSUB chan1 chan2 none
    0 PUBSUB CHANNELS
    0 PUBSUB CHANNELS ch*
    0 PUBSUB CHANNELS x*
    0 PUBSUB CHANNELS a b
    0 PUBSUB NUMPAT
    1 UNSUBSCRIBE chan2
    1 UNSUBSCRIBE
    1 PING
    1 UNSUBSCRIBE foo
    1:3 SUBSCRIBE chan1 chan1 chan1
    0 PUBLISH chan1 once
    1 .
    1 RESET
    0 PUBLISH chan1 gone
    1 PING
    2:3 PSUBSCRIBE foo.* bar.* h?llo
    0 PUBLISH foo.1 a
    0 PUBLISH barfoo.1 b
    0 PUBLISH hallo c
    0 PUBLISH foo1 d
    2:2 .
    2 SUBSCRIBE foo.bar
    0 PUBLISH foo.bar both
    2:2 .
    0 PUBSUB NUMPAT
    2 PUNSUBSCRIBE foo.*
    2 PUNSUBSCRIBE nothing.*
    0 PUBLISH foo.1 gone
    0 PUBLISH bar.x kept
    2 .
    2 PUNSUBSCRIBE bar.*
    2 PUNSUBSCRIBE h?llo
    2 PUNSUBSCRIBE
    2 UNSUBSCRIBE
    2 PUNSUBSCRIBE
    2 PING
    3:2 PSUBSCRIBE [a-c]x \*lit
    0 PUBLISH bx 1
    0 PUBLISH *lit 2
    0 PUBLISH xlit 3
    3:2 .
    3 RESET
    0 SUBSCRIBE
    0 PSUBSCRIBE
    0 PUBLISH x
    0 PUBSUB
    0 PUBSUB NOSUCH
    0 PUBSUB NUMPAT x
    0 PUBSUB HELP
    0 EXEC x
    1 SUBSCRIBE s
    1 EXEC
    1 RESET
    0 COMMAND INFO subscribe publish pubsub|numsub ssubscribe spublish
"#;

#[test]
fn subscribe_publish_resp2() {
    diff_conns(BASICS);
}

#[test]
fn subscribe_publish_resp3() {
    let mut s = String::from("0 ~HELLO 3\n1 ~HELLO 3\n2 ~HELLO 3\n3 ~HELLO 3\n");
    // In RESP3 there is no subscribe mode: the commands RESP2 refuses run.
    s.extend(
        BASICS
            .lines()
            .filter(|l| !matches!(l.trim(), "1 MULTI" | "1 CLIENT ID"))
            .map(|l| format!("{l}\n")),
    );
    s.push_str(
        r#"
        1 SUBSCRIBE me
        1 PUBLISH me self
        1 SET k v
        1 MULTI
        1 PUBLISH me inside
        1 PING
        1 EXEC
        1 UNSUBSCRIBE me
        "#,
    );
    diff_conns(&s);
}

#[test]
fn shard_channels() {
    diff_conns(
        r#"
        1 SSUBSCRIBE chan1
        1 SSUBSCRIBE chan2
        2 SUBSCRIBE chan1
        0 SPUBLISH chan1 hello
        0 PUBLISH chan1 plain
        0 SPUBLISH chan2 world
        1:2 .
        2 .
        0 PUBSUB SHARDNUMSUB chan1 chan2 none
        0 PUBSUB SHARDCHANNELS chan1
        0 PUBSUB SHARDCHANNELS x*
        0 PUBSUB NUMSUB chan1
        1 GET x
        1:3 SSUBSCRIBE a a a
        1 SUNSUBSCRIBE chan1
        1 SUNSUBSCRIBE chan1
        1 SUNSUBSCRIBE a
        1 SUNSUBSCRIBE chan2
        1 SUNSUBSCRIBE
        0 SPUBLISH chan1 gone
        0 MULTI
        0 SSUBSCRIBE x
        0 EXEC
        0 MULTI
        0 SUBSCRIBE y
        0 EXEC
        0 RESET
        "#,
    );
}

#[test]
fn client_reply_off_keeps_pubsub_confirmations() {
    diff_conns(
        r#"
        1 ~HELLO 3
        1:0 CLIENT REPLY OFF
        1 SUBSCRIBE channel
        1 PSUBSCRIBE ch*
        1:0 CLIENT REPLY OFF
        0 PUBLISH channel hello
        1:2 .
        1 UNSUBSCRIBE channel
        1 PUNSUBSCRIBE ch*
        1:0 CLIENT REPLY SKIP
        1:0 PING still-off
        1 CLIENT REPLY ON
        1:0 CLIENT REPLY SKIP
        1:0 PING skipped
        1 PING seen
        1:0 CLIENT REPLY OFF
        1:0 SET a b
        1 CLIENT REPLY ON
        1 GET a
        1 CLIENT REPLY maybe
        "#,
    );
}

#[test]
fn client_list_shows_subscriptions() {
    let d = damselfly(&[]);
    let mut s = Conn::open(d.port);
    let mut c = Conn::open(d.port);
    s.send(&["SUBSCRIBE", "a", "b"]);
    s.read();
    s.read();
    s.send(&["PSUBSCRIBE", "p*"]);
    s.read();
    s.send(&["SSUBSCRIBE", "s"]);
    s.read();
    let list = c.cmd(&["CLIENT", "LIST", "TYPE", "pubsub"]);
    assert!(list.contains("flags=P"), "{list}");
    assert!(list.contains("sub=2 psub=1 ssub=1"), "{list}");
    let normal = c.cmd(&["CLIENT", "LIST", "TYPE", "normal"]);
    assert_eq!(normal.matches("id=").count(), 1, "{normal}");
    let info = c.cmd(&["INFO", "stats"]);
    assert!(info.contains("pubsub_channels:2\r\n"), "{info}");
    assert!(info.contains("pubsub_patterns:1\r\n"), "{info}");
    assert!(info.contains("pubsubshard_channels:1\r\n"), "{info}");
}

/// Subscribers on every worker thread receive a message published from any
/// of them.
#[test]
fn publish_reaches_subscribers_on_every_thread() {
    let d = damselfly(&["--proactor_threads", "4"]);
    // Connections are handed to workers round-robin: 12 of them cover
    // every thread several times.
    let mut subs: Vec<Conn> = (0..12).map(|_| Conn::open(d.port)).collect();
    for (i, s) in subs.iter_mut().enumerate() {
        if i % 2 == 0 {
            s.send(&["SUBSCRIBE", "news"]);
        } else {
            s.send(&["PSUBSCRIBE", "ne*"]);
        }
        s.read();
    }
    for round in 0..3 {
        let mut publisher = Conn::open(d.port);
        let msg = format!("m{round}");
        assert_eq!(publisher.cmd(&["PUBLISH", "news", &msg]), ":12\r\n");
        for (i, s) in subs.iter_mut().enumerate() {
            let got = String::from_utf8_lossy(&s.read()).into_owned();
            let want = if i % 2 == 0 {
                format!("*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\n{msg}\r\n")
            } else {
                format!("*4\r\n$8\r\npmessage\r\n$3\r\nne*\r\n$4\r\nnews\r\n$2\r\n{msg}\r\n")
            };
            assert_eq!(got, want, "subscriber {i}");
        }
    }
}

/// A subscriber that never reads is disconnected once its buffered messages
/// pass the pubsub output buffer limit; PUBLISH keeps answering throughout.
#[test]
fn slow_subscriber_is_dropped_at_the_output_buffer_limit() {
    let d = damselfly(&[]);
    let mut admin = Conn::open(d.port);
    assert_eq!(
        admin.cmd(&[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "pubsub 1mb 512kb 60"
        ]),
        "+OK\r\n"
    );
    let mut lazy = Conn::open(d.port);
    lazy.send(&["SUBSCRIBE", "firehose"]);
    lazy.read();
    let mut publisher = Conn::open(d.port);
    let payload = "x".repeat(64 * 1024);
    let mut dropped = false;
    // The kernel's socket buffers absorb a few MiB before the server
    // buffers anything; 2000 × 64 KiB is far past both.
    for _ in 0..2000 {
        let n = publisher.cmd(&["PUBLISH", "firehose", &payload]);
        if n == ":0\r\n" {
            dropped = true;
            break;
        }
        assert_eq!(n, ":1\r\n");
    }
    assert!(dropped, "the slow subscriber was never disconnected");
    assert_eq!(
        publisher.cmd(&["PUBSUB", "NUMSUB", "firehose"]),
        "*2\r\n$8\r\nfirehose\r\n:0\r\n"
    );
    let list = publisher.cmd(&["CLIENT", "LIST"]);
    assert!(!list.contains("sub=1"), "{list}");
}

/// Runs `script` (one command per line) on one connection while another
/// has PSUBSCRIBEd to every keyspace and keyevent channel, and returns the
/// replies and the notifications, in order. `sleep N` waits N ms.
fn notifications(p: &Proc, flags: &str, script: &str) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut cmd = Conn::open(p.port);
    let mut sub = Conn::open(p.port);
    cmd.cmd(&["FLUSHALL"]);
    cmd.cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    cmd.cmd(&["CONFIG", "SET", "notify-keyspace-events", flags]);
    sub.send(&["PSUBSCRIBE", "__key*__:*"]);
    sub.read();
    sub.send(&["SUBSCRIBE", "end"]);
    sub.read();
    let mut replies = Vec::new();
    for line in script.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(ms) = line.strip_prefix("sleep ") {
            std::thread::sleep(std::time::Duration::from_millis(ms.parse().expect("ms")));
            continue;
        }
        replies.push(cmd.raw(&words(line)));
    }
    cmd.cmd(&["PUBLISH", "end", "."]);
    let mut events = Vec::new();
    loop {
        let m = sub.read();
        if m.starts_with(b"*3\r\n$7\r\nmessage\r\n$3\r\nend\r\n") {
            break;
        }
        events.push(m);
    }
    cmd.cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "1"]);
    cmd.cmd(&["CONFIG", "SET", "notify-keyspace-events", ""]);
    (replies, events)
}

fn diff_notifications(flags: &str, script: &str) {
    let r = redis();
    let d = damselfly(&[]);
    let (want_r, want_e) = notifications(&r, flags, script);
    let (got_r, got_e) = notifications(&d, flags, script);
    assert_same("replies", &want_r, &got_r);
    assert_same("notifications", &want_e, &got_e);
}

/// Fails at the first difference, showing a little context.
fn assert_same(what: &str, want: &[Vec<u8>], got: &[Vec<u8>]) {
    let show = |m: &Vec<u8>| String::from_utf8_lossy(m).replace("\r\n", " ");
    let first = (0..want.len().max(got.len())).find(|&i| want.get(i) != got.get(i));
    if let Some(i) = first {
        let lo = i.saturating_sub(3);
        let ctx = |v: &[Vec<u8>]| {
            v.iter()
                .skip(lo)
                .take(7)
                .map(show)
                .collect::<Vec<_>>()
                .join("\n    ")
        };
        panic!(
            "{what} differ at {i}:\n  redis:\n    {}\n  damselfly:\n    {}",
            ctx(want),
            ctx(got)
        );
    }
}

const WRITES: &str = r#"
    SET s v
    SET s v2 EX 100
    SET s v3 KEEPTTL
    SET s v4 PX 100000 GET
    SETNX s x
    SETNX s2 x
    SETEX s3 100 v
    PSETEX s3 100000 v
    GETSET s z
    GETDEL s
    GETDEL s
    SET s 1
    GETEX s EX 100
    GETEX s PERSIST
    INCR s
    INCRBY s 5
    DECR s
    DECRBY s 2
    INCRBYFLOAT s 1.5
    APPEND s xyz
    APPEND new abc
    SETRANGE s 1 Q
    SETRANGE empty 0 ""
    SETBIT b 7 1
    BITFIELD bf SET u8 0 200
    BITOP OR dest b bf
    MSET m1 1 m2 2
    MSETNX m3 3 m1 x
    MSETNX m4 4 m5 5
    EXPIRE m1 100
    PEXPIRE m1 100000
    EXPIREAT m1 99999999999
    EXPIRE m1 0
    EXPIRE nokey 10
    PERSIST m2
    EXPIRE m2 100
    PERSIST m2
    RENAME m2 m9
    RENAMENX m9 m4
    RENAMENX m9 m8
    COPY m8 c1
    COPY m8 c1 REPLACE
    MOVE c1 3
    DEL m3 m4 m5 nokey
    UNLINK m8
    TOUCH c1 s
    SWAPDB 0 3
    SWAPDB 0 3
    LPUSH l a b c
    RPUSH l d
    LPUSHX l e
    RPUSHX nolist e
    LINSERT l BEFORE a z
    LSET l 0 y
    LREM l 1 z
    LTRIM l 0 3
    LPOP l
    RPOP l 2
    LMOVE l l2 LEFT RIGHT
    RPOPLPUSH l l2
    LMPOP 1 l2 LEFT COUNT 5
    LPOP l 10
    SADD st a b c
    SADD st a
    SREM st a x
    SMOVE st st2 b
    SPOP st
    SADD st d
    SPOP st 2
    SADD st a b
    SADD st2 b
    SINTERSTORE sdst st st2
    SUNIONSTORE sdst st st2
    SDIFFSTORE sdst st st2
    SINTERSTORE sdst none1 none2
    HSET h f 1 g 2
    HSETNX h f 3
    HSETNX h k 3
    HMSET h a 1
    HINCRBY h f 3
    HINCRBYFLOAT h f 1.5
    HDEL h f g a k
    ZADD z 1 a 2 b 3 c
    ZADD z INCR 5 a
    ZINCRBY z 1 b
    ZREM z c
    ZADD z 3 c 4 d 5 e
    ZREMRANGEBYSCORE z 4 4
    ZREMRANGEBYRANK z 0 0
    ZREMRANGEBYLEX z [a [b
    ZPOPMIN z
    ZPOPMAX z
    ZADD z 1 a 2 b
    ZUNIONSTORE zd 1 z
    ZINTERSTORE zd 2 z z
    ZDIFFSTORE zd 1 z
    ZRANGESTORE zr z 0 -1
    ZMPOP 1 z MIN COUNT 10
    PFADD hll a b c
    PFADD hll a
    PFCOUNT hll
    PFMERGE hll2 hll
    GEOADD geo 13.361389 38.115556 Palermo 15.087269 37.502669 Catania
    GEOSEARCHSTORE geo2 geo FROMLONLAT 15 37 BYRADIUS 200 km ASC
    GEORADIUS geo 15 37 200 km STORE geo3
    XADD xs 1-1 f v
    XADD xs 2-1 f v
    XADD xs MAXLEN 1 3-1 f v
    XDEL xs 3-1 9-9
    XTRIM xs MAXLEN 0
    XSETID xs 5-5
    XGROUP CREATE xs g $
    XGROUP CREATE xs2 g $ MKSTREAM
    XGROUP CREATECONSUMER xs g alice
    XADD xs 6-1 f v
    XREADGROUP GROUP g bob STREAMS xs >
    XCLAIM xs g carol 0 6-1
    XAUTOCLAIM xs g dave 0 0
    XACK xs g 6-1
    XGROUP DELCONSUMER xs g bob
    XGROUP SETID xs g 0
    XGROUP DESTROY xs g
    RPUSH sortme 3 1 2
    SORT sortme STORE sorted
    SORT nosuch STORE sorted
    SET e1 v PX 1
    sleep 5
    GET e1
    SET e2 v PX 1
    sleep 5
    EXISTS e2
    GET missing
    FLUSHDB
"#;

#[test]
fn keyspace_and_keyevent_notifications_for_every_write() {
    diff_notifications("KEA", WRITES);
}

#[test]
fn notification_classes_filter_events() {
    for flags in [
        "Kg", "E$", "Kl", "Es", "Kh", "Ez", "Kx", "KEn", "KEgx", "KEgn",
    ] {
        diff_notifications(flags, WRITES);
    }
}

#[test]
fn notify_keyspace_events_config_is_canonical() {
    crate::support::diff(
        r#"
        CONFIG SET notify-keyspace-events gKE
        CONFIG GET notify-keyspace-events
        CONFIG SET notify-keyspace-events $lshzxeKE
        CONFIG GET notify-keyspace-events
        CONFIG SET notify-keyspace-events KA
        CONFIG GET notify-keyspace-events
        CONFIG SET notify-keyspace-events AKEnm
        CONFIG GET notify-keyspace-events
        CONFIG SET notify-keyspace-events gtdn
        CONFIG GET notify-keyspace-events
        CONFIG SET notify-keyspace-events Z
        CONFIG SET notify-keyspace-events ""
        CONFIG GET notify-keyspace-events
        CONFIG GET client-output-buffer-limit
        CONFIG SET client-output-buffer-limit "pubsub 1mb 500kb 10"
        CONFIG GET client-output-buffer-limit
        CONFIG SET client-output-buffer-limit "normal 1 2 3 replica 4 5 6"
        CONFIG GET client-output-buffer-limit
        CONFIG SET client-output-buffer-limit "foo 1 1 1"
        CONFIG SET client-output-buffer-limit "pubsub 1 1"
        CONFIG SET client-output-buffer-limit "pubsub 1x 1 1"
        CONFIG SET client-output-buffer-limit "pubsub -1 1 1"
        CONFIG SET client-output-buffer-limit "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"
        "#,
    );
}

/// A RESP3 client notified of its own writes gets the push before the
/// command's reply (inside EXEC's array for queued commands), as Redis 7.0.
#[test]
fn own_notifications_precede_the_reply_in_resp3() {
    diff_conns(
        r#"
        0 ~HELLO 3
        0 CONFIG SET notify-keyspace-events KA
        0 PSUBSCRIBE __keyspace@0__:*
        0:2 SET k v
        0:3 SET k2 v EX 100
        0 MULTI
        0 INCR n
        0 GET k
        0 EXEC
        0 .
        0 GET nothing
        0 CONFIG SET notify-keyspace-events ""
        0 SET k3 v
        "#,
    );
}

/// keymiss events (class m): STORE forms read their sources as reads (an
/// event per missing source, and keyspace_misses), OBJECT fires none.
#[test]
fn keymiss_events_for_store_commands_and_lookups() {
    diff_notifications(
        "KEm",
        r#"
        SADD set a
        ZADD z 1 a
        SET s v
        SINTERSTORE d m1 m2
        SUNIONSTORE d m1 set
        SDIFFSTORE d m1 set
        SINTERCARD 2 m1 m2
        ZUNIONSTORE d 2 m1 z
        ZINTERSTORE d 2 m1 m2
        ZDIFFSTORE d 2 m1 z
        ZRANGESTORE d m1 0 -1
        SORT m1 STORE d
        BITOP OR d m1 s
        COPY m1 d
        COPY set d2
        OBJECT ENCODING m1
        OBJECT FREQ m1
        TYPE m1
        EXISTS m1
        GETDEL m1
        XADD st 1-1 f v
        XGROUP CREATE st g 0
        XREAD STREAMS st m1 0 0
        XREAD COUNT 1 STREAMS m1 st $ $
        XREADGROUP GROUP g c STREAMS st >
        CONFIG RESETSTAT
        SINTERSTORE d m1 set
        ZUNIONSTORE d 2 m1 set
        COPY m1 d
        OBJECT ENCODING m1
        "#,
    );
}
