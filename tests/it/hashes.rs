//! Hash commands, compared with redis-server; random replies (HRANDFIELD,
//! HSCAN order) are checked for their properties on both servers.

use crate::support::{damselfly, diff, redis, Conn};
use std::collections::{HashMap, HashSet};

/// Every bulk string of a reply, in order (array and map headers skipped).
pub fn bulks(reply: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < reply.len() {
        let end = match reply[i..].windows(2).position(|w| w == b"\r\n") {
            Some(p) => i + p,
            None => break,
        };
        let line = &reply[i..end];
        i = end + 2;
        if line.first() == Some(&b'$') {
            let n: usize = std::str::from_utf8(&line[1..])
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            out.push(reply[i..i + n].to_vec());
            i += n + 2;
        }
    }
    out
}

#[test]
fn hash_commands_match_redis() {
    diff(
        r#"
        HSET h a 1 b 2 c 3
        HGET h a
        HGET h z
        HGET nokey a
        HMGET h a z b
        HMGET nokey a
        HLEN h
        HLEN nokey
        HSTRLEN h a
        HSTRLEN h z
        HSTRLEN nokey a
        HEXISTS h a
        HEXISTS h z
        HEXISTS nokey a
        HKEYS h
        HVALS h
        HGETALL h
        HKEYS nokey
        HVALS nokey
        HGETALL nokey
        HSET h a 10
        HGETALL h
        HSET h a 1 a 2
        HSET h a 3 d 4 a 5
        HGETALL h
        HSETNX h a 5
        HSETNX h e 4
        HSETNX newkey f v
        HGETALL h
        HDEL h a z
        HDEL h z
        HDEL nokey a
        HGETALL h
        HMSET h x 1 y 2
        HMSET h x
        HSET h x
        HSET h x 1 y
        HSET h
        HGET h
        HSETNX h a
        HDEL h
        HSTRLEN h
        HEXISTS h
        HGETALL h
        HDEL h b c d e x y
        EXISTS h
        HSET "" "" ""
        HGET "" ""
        HSET bin "f\x00" "v\x00\xff"
        HGETALL bin
        "#,
    );
}

#[test]
fn hincrby_and_hincrbyfloat_match_redis() {
    diff(
        r#"
        HINCRBY h x 5
        HINCRBY h x -10
        HINCRBY h x abc
        HINCRBY h x 1.5
        HINCRBY h x ""
        HINCRBY h x 9223372036854775808
        HSET h big 9223372036854775807 small -9223372036854775808 s abc z 007 neg -0
        HINCRBY h big 1
        HINCRBY h big 0
        HINCRBY h small -1
        HINCRBY h s 1
        HINCRBY h z 1
        HINCRBY h neg 1
        HINCRBYFLOAT h s 1
        HINCRBYFLOAT h f 1.5
        HINCRBYFLOAT h f 1.1
        HINCRBYFLOAT h f -2.6
        HINCRBYFLOAT h f abc
        HINCRBYFLOAT h f inf
        HINCRBYFLOAT h f -inf
        HINCRBYFLOAT h f nan
        HINCRBYFLOAT h f 1e5000
        HINCRBYFLOAT h f ""
        HINCRBYFLOAT h f " 1"
        HINCRBYFLOAT h z 1
        HINCRBYFLOAT h big 1
        HINCRBYFLOAT h g 5.0e3
        HSET h huge 1e4932 sp " 1" inf inf
        HINCRBYFLOAT h huge 1e4932
        HINCRBYFLOAT h sp 1
        HINCRBYFLOAT h inf 1
        HINCRBYFLOAT h x 0.00000000000000000000000000000000000000000000000000000000000000001
        HGETALL h
        HINCRBY nokey f 3
        HINCRBYFLOAT nokey2 f 3.25
        HGETALL nokey
        HGETALL nokey2
        SET str x
        HINCRBY str f 1
        HINCRBY str f x
        HINCRBYFLOAT str f 1
        HINCRBYFLOAT str f x
        HINCRBYFLOAT str f inf
        HINCRBY h
        HINCRBYFLOAT h f
        "#,
    );
}

#[test]
fn hash_wrong_type_errors_match_redis() {
    diff(
        r#"
        SET str x
        HSET str a 1
        HMSET str a 1
        HSETNX str a 1
        HGET str a
        HMGET str a
        HDEL str a
        HLEN str
        HSTRLEN str a
        HEXISTS str a
        HKEYS str
        HVALS str
        HGETALL str
        HRANDFIELD str
        HRANDFIELD str 1
        HRANDFIELD str 1 WITHVALUES
        HRANDFIELD str x
        HSCAN str 0
        HSCAN str x
        HSCAN str 0 COUNT 0
        GET str
        HSET h a 1
        GET h
        "#,
    );
}

#[test]
fn hrandfield_and_hscan_options_match_redis() {
    diff(
        r#"
        HRANDFIELD nokey
        HRANDFIELD nokey 1
        HRANDFIELD nokey -1 WITHVALUES
        HRANDFIELD nokey x
        HSET h a 1 b 2 c 3
        HRANDFIELD h 3
        HRANDFIELD h 100
        HRANDFIELD h 100 WITHVALUES
        HRANDFIELD h 100 withvalues
        HRANDFIELD h 0
        HRANDFIELD h 0 WITHVALUES
        HRANDFIELD h x
        HRANDFIELD h 1.5
        HRANDFIELD h 1 WITHVALUES x
        HRANDFIELD h 1 foo
        HRANDFIELD h -9223372036854775808
        HRANDFIELD h -9223372036854775807 foo
        HRANDFIELD h 9223372036854775807 WITHVALUES
        HRANDFIELD h 4611686018427387904 WITHVALUES
        HRANDFIELD h -4611686018427387904 WITHVALUES
        HRANDFIELD h 4611686018427387903 WITHVALUES
        HRANDFIELD h -4611686018427387903 foo
        HSCAN h 0
        HSCAN h 0 MATCH b*
        HSCAN h 0 match [ab] count 1
        HSCAN h 0 MATCH * COUNT 100
        HSCAN h 0 COUNT 1
        HSCAN h 7 COUNT 1
        HSCAN h 0 COUNT 0
        HSCAN h 0 COUNT -1
        HSCAN h 0 COUNT x
        HSCAN h 0 MATCH
        HSCAN h 0 TYPE string
        HSCAN h 0 NOVALUES
        HSCAN h x
        HSCAN h -1
        HSCAN h 18446744073709551616
        HSCAN h ""
        HSCAN nokey 0 COUNT 0
        HSCAN nokey x
        "#,
    );
}

#[test]
fn hash_resp3_shapes_match_redis() {
    diff(
        r#"
        ~HELLO 3
        HSET h a 1 b 2 c 3
        HGETALL h
        HGETALL nokey
        HKEYS h
        HVALS nokey
        HMGET h a zz
        HMGET nokey a
        HGET h zz
        HRANDFIELD nokey
        HRANDFIELD nokey 2
        HRANDFIELD nokey 2 WITHVALUES
        HRANDFIELD h 5 WITHVALUES
        HRANDFIELD h 5
        HRANDFIELD h 0 WITHVALUES
        HSCAN h 0
        HINCRBYFLOAT h a 0.5
        HINCRBY h b 1
        HEXISTS h a
        HSETNX h a 1
        "#,
    );
}

#[test]
fn hash_encodings_follow_redis() {
    let long = "x".repeat(65);
    diff(&format!(
        r#"
        HSET h a 1
        OBJECT ENCODING h
        HSETNX h a {long}
        OBJECT ENCODING h
        HSETNX h {long} 1
        OBJECT ENCODING h
        HSET h2 a 1
        HINCRBYFLOAT h2 a 1.5
        OBJECT ENCODING h2
        HINCRBYFLOAT h2 {long} 1
        OBJECT ENCODING h2
        HSET h3 a 1 b {long}
        OBJECT ENCODING h3
        HDEL h3 b
        OBJECT ENCODING h3
        CONFIG SET hash-max-listpack-entries 2
        HSET h4 a 1 b 2
        OBJECT ENCODING h4
        HGETALL h4
        HSET h4 c 3
        OBJECT ENCODING h4
        HDEL h4 c
        OBJECT ENCODING h4
        CONFIG SET hash-max-listpack-entries 0
        HSET h5 a 1
        OBJECT ENCODING h5
        CONFIG SET hash-max-listpack-entries 512
        CONFIG SET hash-max-listpack-value 3
        HSET h6 abc def
        OBJECT ENCODING h6
        HSET h6 abcd e
        OBJECT ENCODING h6
        HSET h7 a 1234
        OBJECT ENCODING h7
        HGET h7 a
        "#
    ));
}

/// A big hash (table encoding) keeps every field through HSET/HDEL/HINCRBY.
#[test]
fn big_hashes_match_redis() {
    let mut script = String::from("CONFIG SET hash-max-listpack-entries 16\n");
    for i in 0..200 {
        script.push_str(&format!("HSET big f{i} {i}\n"));
    }
    script.push_str("OBJECT ENCODING big\nHLEN big\n");
    for i in (0..200).step_by(7) {
        script.push_str(&format!(
            "HGET big f{i}\nHINCRBY big f{i} 3\nHDEL big f{}\n",
            i + 1
        ));
    }
    script
        .push_str("HLEN big\nHMGET big f0 f1 f2 f3 nope\nHSTRLEN big f199\nOBJECT ENCODING big\n");
    diff(&script);
}

fn hash_pairs(c: &mut Conn, key: &str) -> HashMap<Vec<u8>, Vec<u8>> {
    let b = bulks(&c.raw(&["HGETALL", key]));
    b.chunks(2).map(|p| (p[0].clone(), p[1].clone())).collect()
}

/// HRANDFIELD's random replies have Redis's shape on both servers: distinct
/// fields for a positive count, repeats allowed for a negative one, values
/// that belong to their fields.
#[test]
fn hrandfield_properties_hold_on_both_servers() {
    let (r, d) = (redis(), damselfly(&[]));
    for port in [r.port, d.port] {
        let mut c = Conn::open(port);
        for (key, n) in [("small", 5usize), ("big", 300)] {
            for i in 0..n {
                c.cmd(&["HSET", key, &format!("f{i}"), &format!("v{i}")]);
            }
            let all = hash_pairs(&mut c, key);
            for count in [1usize, 3, n / 2, n - 1, n, n + 10] {
                let got = bulks(&c.raw(&["HRANDFIELD", key, &count.to_string()]));
                assert_eq!(got.len(), count.min(n), "{port} {key} {count}");
                let set: HashSet<_> = got.iter().collect();
                assert_eq!(set.len(), got.len(), "distinct fields");
                assert!(got.iter().all(|f| all.contains_key(f)));
                let got = bulks(&c.raw(&["HRANDFIELD", key, &count.to_string(), "WITHVALUES"]));
                assert_eq!(got.len(), 2 * count.min(n));
                for p in got.chunks(2) {
                    assert_eq!(all.get(&p[0]), Some(&p[1]));
                }
            }
            let got = bulks(&c.raw(&["HRANDFIELD", key, "-50", "WITHVALUES"]));
            assert_eq!(got.len(), 100);
            for p in got.chunks(2) {
                assert_eq!(all.get(&p[0]), Some(&p[1]));
            }
            // Every field shows up eventually.
            let mut seen = HashSet::new();
            for _ in 0..20 {
                for f in bulks(&c.raw(&["HRANDFIELD", key, "-100"])) {
                    seen.insert(f);
                }
            }
            if n == 5 {
                assert_eq!(seen.len(), 5);
            }
            let one = bulks(&c.raw(&["HRANDFIELD", key]));
            assert!(all.contains_key(&one[0]));
        }
        c.cmd(&["HELLO", "3"]);
        let reply = c.raw(&["HRANDFIELD", "small", "-3", "WITHVALUES"]);
        assert!(
            reply.starts_with(b"*3\r\n*2\r\n"),
            "{port}: {:?}",
            String::from_utf8_lossy(&reply)
        );
    }
}

/// HSCAN of a table-encoded hash returns every field present for the whole
/// scan, while other fields are added and removed between the calls.
#[test]
fn hscan_returns_every_stable_field_across_resizes() {
    let d = damselfly(&[]);
    let mut c = Conn::open(d.port);
    for i in 0..600 {
        c.cmd(&["HSET", "h", &format!("stable{i}"), "v"]);
    }
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "h"]), "$9\r\nhashtable\r\n");
    let mut seen = HashSet::new();
    let mut cursor = "0".to_string();
    let mut round = 0;
    let mut churn: Vec<String> = Vec::new();
    loop {
        let reply = c.raw(&["HSCAN", "h", &cursor, "COUNT", "20"]);
        let b = bulks(&reply);
        cursor = String::from_utf8_lossy(&b[0]).into_owned();
        for p in b[1..].chunks(2) {
            seen.insert(p[0].clone());
        }
        round += 1;
        // Grow, then shrink, the table between calls.
        if round % 2 == 1 {
            for i in 0..400 {
                let f = format!("churn{round}:{i}");
                c.cmd(&["HSET", "h", &f, "x"]);
                churn.push(f);
            }
        } else {
            for f in churn.drain(..) {
                c.cmd(&["HDEL", "h", &f]);
            }
        }
        if cursor == "0" {
            break;
        }
    }
    for i in 0..600 {
        assert!(
            seen.contains(format!("stable{i}").as_bytes()),
            "stable{i} missing"
        );
    }
}
