//! Wire protocol behaviour: pipelining, inline commands, protocol errors,
//! and clients that misbehave.

use crate::support::{damselfly, diff, redis, Conn};
use std::io::{Read, Write};

#[test]
fn pipeline_of_many_commands_answers_in_order() {
    let d = damselfly(&[]);
    let mut c = Conn::open(d.port);
    let mut batch = Vec::new();
    for i in 0..1000 {
        batch.extend(Conn::encode(&["SET", &format!("k{i}"), &i.to_string()]));
        batch.extend(Conn::encode(&["GET", &format!("k{i}")]));
    }
    c.send_raw(&batch);
    for i in 0..1000 {
        assert_eq!(c.read(), b"+OK\r\n");
        assert_eq!(
            c.read(),
            format!("${}\r\n{i}\r\n", i.to_string().len()).into_bytes()
        );
    }
}

/// The connection parses a pipeline ahead of running it (to warm the
/// cache for its keys): a request that blocks or waits for CLIENT PAUSE
/// midway still sees the ones after it run afterwards, in order.
#[test]
fn a_pipeline_that_blocks_or_pauses_midway_answers_in_order() {
    let d = damselfly(&[]);
    let mut c = Conn::open(d.port);
    let mut admin = Conn::open(d.port);
    let mut batch = Vec::new();
    for args in [
        &["SET", "a", "1"][..],
        &["GET", "a"],
        &["BLPOP", "q", "0"],
        &["INCR", "a"],
        &["GET", "a"],
    ] {
        batch.extend(Conn::encode(args));
    }
    c.send_raw(&batch);
    assert_eq!(c.read(), b"+OK\r\n");
    assert_eq!(c.read(), b"$1\r\n1\r\n");
    crate::clientctl::wait_info(&mut admin, "blocked_clients", 1);
    assert_eq!(admin.cmd(&["SET", "a", "5"]), "+OK\r\n");
    assert_eq!(admin.cmd(&["RPUSH", "q", "x"]), ":1\r\n");
    assert_eq!(c.read(), b"*2\r\n$1\r\nq\r\n$1\r\nx\r\n");
    assert_eq!(c.read(), b":6\r\n");
    assert_eq!(c.read(), b"$1\r\n6\r\n");

    assert_eq!(
        admin.cmd(&["CLIENT", "PAUSE", "100000", "WRITE"]),
        "+OK\r\n"
    );
    let mut batch = Vec::new();
    for args in [
        &["GET", "a"][..],
        &["SET", "b", "2"],
        &["GET", "b"],
        &["PING"],
    ] {
        batch.extend(Conn::encode(args));
    }
    c.send_raw(&batch);
    // The reply before the paused SET comes out while the SET waits.
    assert_eq!(c.read(), b"$1\r\n6\r\n");
    assert_eq!(admin.cmd(&["GET", "b"]), "$-1\r\n");
    assert_eq!(admin.cmd(&["CLIENT", "UNPAUSE"]), "+OK\r\n");
    assert_eq!(c.read(), b"+OK\r\n");
    assert_eq!(c.read(), b"$1\r\n2\r\n");
    assert_eq!(c.read(), b"+PONG\r\n");
}

/// Pipelined commands on members of big collections are warmed into the
/// member tables before they run (their bucket slots, nodes and values):
/// the replies stay Redis's, with members added and removed, tables
/// growing, keys of other types and malformed requests in the same batch.
#[test]
fn pipelined_member_commands_answer_as_redis_does() {
    let r = redis();
    let d = damselfly(&[]);
    let mut conns = [Conn::open(r.port), Conn::open(d.port)];
    let mut batch = Vec::new();
    let mut n = 0;
    let mut push = |batch: &mut Vec<u8>, args: &[&str]| {
        batch.extend(Conn::encode(args));
        n += 1;
    };
    push(&mut batch, &["SET", "str", "x"]);
    for i in 0..600 {
        let m = format!("element:{:012}", (i * 7919) % 500);
        let v = format!("{:032}", i);
        let score = (i % 97).to_string();
        push(&mut batch, &["HSET", "h", &m, &v]);
        push(&mut batch, &["HGET", "h", &m]);
        push(&mut batch, &["HINCRBY", "h", &m, "1"]);
        push(&mut batch, &["SADD", "s", &m]);
        push(&mut batch, &["SISMEMBER", "s", &m]);
        push(&mut batch, &["ZADD", "z", &score, &m]);
        push(
            &mut batch,
            &["ZADD", "z", "XX", "CH", &score, &m, "1", "other"],
        );
        push(&mut batch, &["ZINCRBY", "z", "2", &m]);
        push(&mut batch, &["ZSCORE", "z", &m]);
        if i % 5 == 0 {
            push(&mut batch, &["HDEL", "h", &m]);
            push(&mut batch, &["SREM", "s", &m]);
            push(&mut batch, &["ZREM", "z", &m]);
        }
        if i % 50 == 0 {
            push(&mut batch, &["ZADD", "z", "1"]);
            push(&mut batch, &["ZADD", "z"]);
            push(&mut batch, &["HSET", "h", &m]);
            push(&mut batch, &["SADD", "str", &m]);
            push(&mut batch, &["HGET", "str", &m]);
            push(&mut batch, &["ZSCORE", "nokey", &m]);
            // Scripts' first keys are warmed too, whatever the count says.
            let script = "return redis.call('incr', KEYS[1])";
            for count in ["1", "0", "2", "-1", "x", "007", "99999999999"] {
                push(&mut batch, &["EVAL", script, count, "n", &m]);
            }
            push(&mut batch, &["EVAL", script, "1"]);
            push(&mut batch, &["FCALL", "nosuch", "1", "n"]);
        }
    }
    push(&mut batch, &["HLEN", "h"]);
    push(&mut batch, &["SCARD", "s"]);
    push(&mut batch, &["ZCARD", "z"]);
    push(&mut batch, &["ZRANGE", "z", "0", "-1", "WITHSCORES"]);
    let mut replies = [Vec::new(), Vec::new()];
    for (c, out) in conns.iter_mut().zip(replies.iter_mut()) {
        c.send_raw(&batch);
        for _ in 0..n {
            out.push(String::from_utf8_lossy(&c.read()).into_owned());
        }
    }
    for (i, (a, b)) in replies[0].iter().zip(replies[1].iter()).enumerate() {
        assert_eq!(a, b, "reply {i} differs (redis, damselfly)");
    }
}

/// Runs of pipelined requests on one key share what warming found for the
/// first (its command, shard and hash): the runs below change command,
/// case, DB, type and subcommand under it.
#[test]
fn pipelined_runs_on_one_key_answer_as_redis_does() {
    let r = redis();
    let d = damselfly(&[]);
    let mut batch = Vec::new();
    let mut n = 0;
    let mut push = |args: &[&str]| {
        batch.extend(Conn::encode(args));
        n += 1;
    };
    let script = "return redis.call('incr', KEYS[1])";
    for i in 0..40 {
        let v = format!("v{i}");
        for _ in 0..3 {
            push(&["LPUSH", "q", &v]);
        }
        push(&["lpush", "q", &v]);
        push(&["LPUSH", "q", &v, "w"]);
        push(&["LPUSH", "q", &v]);
        push(&["LPUSH", "q2", &v]);
        push(&["RPUSH", "q", &v]);
        push(&["LPUSH", "q"]);
        push(&["HSET", "q", "f", &v]);
        push(&["LLEN", "q"]);
        push(&["HSET", "h", "f", &v]);
        push(&["HSET", "h", "g", &v]);
        push(&["HGET", "h", "f"]);
        push(&["HGET", "h", "g"]);
        push(&["HINCRBY", "h", "n", "1"]);
        push(&["HINCRBY", "h", "n", "1"]);
        push(&["INCR", "c"]);
        push(&["INCR", "c"]);
        push(&["GET", "c"]);
        push(&["GET", "c"]);
        push(&["SELECT", if i % 2 == 0 { "1" } else { "0" }]);
        push(&["INCR", "c"]);
        push(&["INCR", "c"]);
        push(&["OBJECT", "ENCODING", "c"]);
        push(&["OBJECT", "ENCODING", "q"]);
        push(&["OBJECT", "FREQ", "q"]);
        push(&["EVAL", script, "1", "e1"]);
        push(&["EVAL", script, "1", "e2"]);
        push(&["EVAL", script, "1", "e2"]);
        push(&["DEL", "c"]);
        push(&["DEL", "c"]);
        push(&["SET", "c", &v]);
        push(&["INCR", "c"]);
    }
    for key in ["q", "h", "c", "e1", "e2"] {
        push(&["DUMP", key]);
    }
    let mut replies = [Vec::new(), Vec::new()];
    for (port, out) in [r.port, d.port].into_iter().zip(replies.iter_mut()) {
        let mut c = Conn::open(port);
        c.send_raw(&batch);
        for _ in 0..n {
            out.push(String::from_utf8_lossy(&c.read()).into_owned());
        }
    }
    for (i, (a, b)) in replies[0].iter().zip(replies[1].iter()).enumerate() {
        assert_eq!(a, b, "reply {i} differs (redis, damselfly)");
    }
}

#[test]
fn inline_commands_work_like_telnet() {
    let d = damselfly(&[]);
    let mut c = Conn::open(d.port);
    c.send_raw(b"SET greeting \"hello world\"\r\nGET greeting\r\n\r\nPING\n");
    assert_eq!(c.read(), b"+OK\r\n");
    assert_eq!(c.read(), b"$11\r\nhello world\r\n");
    assert_eq!(c.read(), b"+PONG\r\n");
}

fn protocol_error_closes(input: &[u8], expect: &str) {
    let d = damselfly(&[]);
    let mut s = std::net::TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    s.write_all(input).unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&got),
        format!("-ERR Protocol error: {expect}\r\n")
    );
    // The server keeps serving everyone else.
    assert_eq!(Conn::open(d.port).cmd(&["PING"]), "+PONG\r\n");
}

#[test]
fn protocol_errors_reply_redis_text_and_close() {
    protocol_error_closes(b"*3000000000\r\n", "invalid multibulk length");
    protocol_error_closes(
        b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n",
        "expected '$', got 'f'",
    );
    protocol_error_closes(b"*1\r\n$-10\r\n", "invalid bulk length");
    protocol_error_closes(b"*1\r\n$2000000000\r\n", "invalid bulk length");
    protocol_error_closes(b"set \"\"\"k\"\"\" v\r\n", "unbalanced quotes in request");
    protocol_error_closes(&vec![b'a'; 70 * 1024], "too big inline request");
    protocol_error_closes(
        &[b"*".as_slice(), &vec![b'1'; 70 * 1024]].concat(),
        "too big mbulk count string",
    );
}

#[test]
fn client_vanishing_mid_command_harms_nobody() {
    let d = damselfly(&[]);
    for _ in 0..20 {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", d.port)).unwrap();
        s.write_all(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100000\r\npartial")
            .unwrap();
        drop(s);
    }
    let mut c = Conn::open(d.port);
    assert_eq!(c.cmd(&["SET", "k", "v"]), "+OK\r\n");
    assert_eq!(c.cmd(&["GET", "k"]), "$1\r\nv\r\n");
}

#[test]
fn large_value_round_trips() {
    let d = damselfly(&[]);
    let mut c = Conn::open(d.port);
    let big = vec![b'x'; 20 * 1024 * 1024];
    assert_eq!(c.raw(&[&b"SET"[..], b"big", &big]), b"+OK\r\n");
    let got = c.raw(&["GET", "big"]);
    assert_eq!(got.len(), big.len() + 13);
}

#[test]
fn errors_and_unknown_commands_match_redis() {
    diff(
        r#"
        foo bar baz
        "" x
        GET
        get a b
        PING a b
        CONFIG
        CONFIG foo
        SELECT 99
        SELECT abc
        HELLO 4
        HELLO abc
        ECHO "with\r\nnewline"
        "#,
    );
}

#[test]
fn resp3_replies_match_redis() {
    diff(
        r#"
        # The client id in HELLO's map differs with connection history.
        ~HELLO 3
        SET k v
        GET k
        GET missing
        SET k v GET
        SET n 1 NX GET
        ~HELLO 2
        GET missing
        "#,
    );
}

/// DEBUG PROTOCOL's sample of every RESP type, to a client and to a
/// script, on each protocol: a script sees RESP3 types as tables,
/// attributes not at all, and a push as nil.
#[test]
fn debug_protocol_samples_match_redis() {
    let r = crate::support::redis_with(&["--enable-debug-command", "yes"]);
    let d = damselfly(&[]);
    let kinds = [
        "string", "integer", "double", "bignum", "null", "array", "set", "map", "attrib",
        "verbatim", "true", "false", "nosuch",
    ];
    let mut script = String::from("DEBUG SET-DISABLE-DENY-SCRIPTS 1\nDEBUG PROTOCOL\n");
    for hello in ["2", "3"] {
        script.push_str(&format!("~HELLO {hello}\nDEBUG PROTOCOL push\n"));
        for kind in kinds {
            script.push_str(&format!("DEBUG PROTOCOL {kind}\n"));
            for lua in ["2", "3"] {
                script.push_str(&format!(
                    "EVAL \"redis.setresp({lua}) return redis.call('debug','protocol','{kind}')\" 0\n"
                ));
            }
        }
        script.push_str(
            "EVAL \"redis.setresp(3) return redis.call('debug','protocol','push')\" 0\n\
             EVAL \"return {big_number='123\\r\\n4'}\" 0\n",
        );
    }
    // Last: a push comes with a second reply, read as the next line's.
    script.push_str("DEBUG PROTOCOL push\nPING\n");
    crate::support::diff_on(&r, &d, &script);
}

#[test]
fn bulk_longer_than_proto_max_bulk_len_is_refused_and_others_keep_working() {
    let d = damselfly(&[]);
    let mut admin = Conn::open(d.port);
    assert_eq!(
        admin.cmd(&["CONFIG", "SET", "proto-max-bulk-len", "1mb"]),
        "+OK\r\n"
    );
    let mut s = std::net::TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    s.write_all(format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${}\r\n", 2 * 1024 * 1024).as_bytes())
        .unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"-ERR Protocol error: invalid bulk length\r\n");
    assert_eq!(admin.cmd(&["SET", "k", "v"]), "+OK\r\n");
}
