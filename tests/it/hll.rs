//! HyperLogLog commands, compared with redis-server: replies and the raw
//! bytes of every value (GET), so values move between the two servers.

use crate::support::{damselfly, diff, diff_on, redis, Conn};
use rand::{Rng, SeedableRng};

#[test]
fn pfadd_and_pfcount_match_redis() {
    diff(
        r#"
        PFADD h
        GET h
        PFCOUNT h
        PFADD h a b c
        GET h
        PFADD h a b c
        PFCOUNT h
        GET h
        GETRANGE h 15 15
        PFADD h a b c
        GETRANGE h 15 15
        PFADD h 1 2 3
        GETRANGE h 15 15
        GET h
        PFADD h ""
        PFCOUNT h
        PFCOUNT nosuch
        PFADD h2 x y z w
        PFCOUNT h h2
        PFCOUNT h h2 nosuch
        PFCOUNT nosuch nosuch2
        GET h
        EXISTS nosuch
        PFADD
        PFCOUNT
        TYPE h
        OBJECT ENCODING h
        "#,
    );
}

/// Many elements, through the sparse -> dense promotion at several limits.
#[test]
fn promotion_to_dense_matches_redis() {
    let mut script = String::new();
    for limit in ["3000", "200", "0", "12000"] {
        script.push_str(&format!(
            "CONFIG SET hll-sparse-max-bytes {limit}\nDEL h{limit}\n"
        ));
        for i in 0..60 {
            let eles: Vec<String> = (0..25).map(|j| format!("e{}", i * 25 + j)).collect();
            script.push_str(&format!("PFADD h{limit} {}\n", eles.join(" ")));
            script.push_str(&format!("PFCOUNT h{limit}\n"));
            if i % 7 == 0 {
                script.push_str(&format!("GET h{limit}\n"));
            }
        }
        script.push_str(&format!("GET h{limit}\nPFDEBUG ENCODING h{limit}\n"));
    }
    script.push_str("CONFIG SET hll-sparse-max-bytes 3000\nCONFIG GET hll-sparse-max-bytes\n");
    script.push_str("CONFIG SET hll-sparse-max-bytes 1kb\nCONFIG GET hll-sparse-max-bytes\n");
    script.push_str("CONFIG SET hll-sparse-max-bytes -1\nCONFIG SET hll-sparse-max-bytes x\n");
    diff(&script);
}

/// Large cardinalities: registers above 32 force dense, and the estimate
/// stays the same as Redis's.
#[test]
fn large_cardinalities_match_redis() {
    let mut script = String::new();
    for i in 0..200 {
        let eles: Vec<String> = (0..250).map(|j| format!("{}", i * 250 + j)).collect();
        script.push_str(&format!("PFADD big {}\n", eles.join(" ")));
        if i % 10 == 0 {
            script.push_str("PFCOUNT big\n");
        }
    }
    script.push_str("PFCOUNT big\nGET big\nPFCOUNT big nosuch\n");
    diff(&script);
}

#[test]
fn pfmerge_matches_redis() {
    let mut script = String::from(
        r#"
        PFADD a{t} a b c
        PFADD b{t} b c d
        PFADD c{t} c d e
        PFMERGE m{t} a{t} b{t} c{t}
        GET m{t}
        PFCOUNT m{t}
        PFMERGE m{t}
        GET m{t}
        PFMERGE m{t} a{t}
        GET m{t}
        PFMERGE new{t}
        GET new{t}
        PFMERGE new2{t} nosuch{t}
        GET new2{t}
        PFMERGE a{t} b{t}
        GET a{t}
        PFCOUNT a{t} b{t} c{t}
        PFDEBUG TODENSE c{t}
        PFMERGE d{t} a{t} c{t}
        GET d{t}
        PFDEBUG ENCODING d{t}
        PFMERGE a{t} c{t}
        PFDEBUG ENCODING a{t}
        GET a{t}
        PFMERGE
        "#,
    );
    // A merge whose result is too big to stay sparse.
    for i in 0..40 {
        let eles: Vec<String> = (0..25).map(|j| format!("x{}", i * 25 + j)).collect();
        script.push_str(&format!("PFADD s1{{t}} {}\n", eles.join(" ")));
        let eles: Vec<String> = (0..25).map(|j| format!("y{}", i * 25 + j)).collect();
        script.push_str(&format!("PFADD s2{{t}} {}\n", eles.join(" ")));
    }
    script
        .push_str("PFMERGE s3{t} s1{t} s2{t}\nGET s3{t}\nPFDEBUG ENCODING s3{t}\nPFCOUNT s3{t}\n");
    script.push_str("PFCOUNT s1{t} s2{t}\nPFMERGE s1{t} s2{t}\nGET s1{t}\n");
    diff(&script);
}

#[test]
fn invalid_and_corrupt_values_get_redis_errors() {
    diff(
        r#"
        SET str bar
        PFADD str 1
        PFCOUNT str
        PFMERGE x str
        PFMERGE str x
        SET int 12345
        PFADD int a
        PFCOUNT int
        LPUSH list a
        PFADD list a
        PFCOUNT list
        PFCOUNT list str
        PFMERGE list
        PFCOUNT str list
        SET long 01234567890123456789
        PFCOUNT long
        PFADD h a b c
        APPEND h hello
        PFCOUNT h
        PFADD h x
        PFCOUNT h h
        PFMERGE m h
        DEL h
        PFADD h a b c
        SETRANGE h 0 0123
        PFCOUNT h
        DEL h
        PFADD h a b c
        SETRANGE h 4 x
        PFCOUNT h
        DEL h
        PFADD h a b c
        SETRANGE h 4 "\x00"
        PFCOUNT h
        DEL h
        PFADD h a b c
        PFDEBUG TODENSE h
        APPEND h x
        PFCOUNT h
        PFADD h z
        SET short "HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
        PFCOUNT short
        SET empty "HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80"
        PFCOUNT empty
        PFADD empty a
        GET empty
        SET half "HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\x7f"
        PFCOUNT half
        PFADD half a b c d
        GET half
        SET cached "HYLL\x01\x00\x00\x00\x39\x05\x00\x00\x00\x00\x00\x00\x7f\xff"
        PFCOUNT cached
        PFCOUNT cached cached
        "#,
    );
}

#[test]
fn pfdebug_matches_redis() {
    diff(
        r#"
        PFADD h a b c d e f
        PFDEBUG ENCODING h
        PFDEBUG DECODE h
        PFDEBUG GETREG h
        PFDEBUG ENCODING h
        PFDEBUG DECODE h
        PFDEBUG TODENSE h
        PFADD h2 1 2 3
        PFDEBUG TODENSE h2
        PFDEBUG TODENSE h2
        GET h2
        PFDEBUG GETREG h2
        PFDEBUG encoding nosuch
        PFDEBUG nosuch h2
        PFDEBUG nosuch nosuch
        SET s x
        PFDEBUG ENCODING s
        PFDEBUG
        PFDEBUG ENCODING h h2
        PFSELFTEST
        PFSELFTEST x
        "#,
    );
}

#[test]
fn resp3_replies_match_redis() {
    diff(
        r#"
        ~HELLO 3
        PFADD h a b c
        PFCOUNT h
        PFCOUNT h nosuch
        PFMERGE m h
        PFDEBUG ENCODING h
        PFDEBUG GETREG h
        SET s x
        PFCOUNT s
        "#,
    );
}

/// The raw value of an HLL reply (a RESP2 bulk string).
fn bulk(reply: &[u8]) -> Vec<u8> {
    let nl = reply.iter().position(|&b| b == b'\n').expect("bulk header");
    reply[nl + 1..reply.len() - 2].to_vec()
}

/// HLLs built by one server, copied with GET/SET into the other, count the
/// same there, and keep working (PFADD, PFMERGE) byte for byte alike.
#[test]
fn values_round_trip_between_redis_and_damselfly() {
    let r = redis();
    let d = damselfly(&[]);
    let mut rc = Conn::open(r.port);
    let mut dc = Conn::open(d.port);
    for n in [0usize, 1, 10, 300, 2000, 50_000] {
        round_trip(&mut rc, &mut dc, &format!("r2d{n}"), n);
        round_trip(&mut dc, &mut rc, &format!("d2r{n}"), n);
    }
}

fn round_trip(from: &mut Conn, to: &mut Conn, key: &str, n: usize) {
    from.cmd(&["DEL", key]);
    from.cmd(&["PFADD", key]);
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let mut cmd = vec!["PFADD".to_string(), key.to_string()];
        cmd.extend(chunk.iter().map(|i| format!("m{i}")));
        from.raw(&cmd);
    }
    let count_from = from.cmd(&["PFCOUNT", key]);
    let value = bulk(&from.raw(&["GET", key]));
    assert_eq!(
        to.raw(&[b"SET".as_slice(), key.as_bytes(), &value]),
        b"+OK\r\n"
    );
    assert_eq!(to.cmd(&["PFCOUNT", key]), count_from, "{key}");
    // Invalidate the cache on both and recount from the registers.
    from.cmd(&["PFADD", key, "extra-element"]);
    to.cmd(&["PFADD", key, "extra-element"]);
    assert_eq!(
        to.cmd(&["PFCOUNT", key]),
        from.cmd(&["PFCOUNT", key]),
        "{key}"
    );
    assert_eq!(to.raw(&["GET", key]), from.raw(&["GET", key]), "{key}");
}

/// Random damage to HLL values gets the same reply from both servers
/// (never a crash), and the damaged values stay byte-identical.
#[test]
fn corrupted_values_behave_like_redis() {
    let r = redis();
    let d = damselfly(&[]);
    let mut rc = Conn::open(r.port);
    let mut dc = Conn::open(d.port);
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x411);
    for round in 0..200 {
        let n = rng.random_range(0..3000);
        let mut cmd = vec!["PFADD".to_string(), "h".to_string()];
        cmd.extend((0..n).map(|i| format!("{round}-{i}")));
        rc.cmd(&["DEL", "h"]);
        dc.cmd(&["DEL", "h"]);
        assert_eq!(rc.raw(&cmd), dc.raw(&cmd));
        for _ in 0..rng.random_range(1..6) {
            let len: usize = dc.cmd(&["STRLEN", "h"])[1..]
                .trim()
                .parse()
                .expect("strlen");
            let pos = rng.random_range(0..len).to_string();
            let byte = [rng.random::<u8>()];
            let set = [b"SETRANGE".as_slice(), b"h", pos.as_bytes(), &byte];
            assert_eq!(rc.raw(&set), dc.raw(&set));
        }
        for c in [
            vec!["PFCOUNT", "h"],
            vec!["PFADD", "h", "a", "b", "c", "d"],
            vec!["PFCOUNT", "h", "h"],
            vec!["PFMERGE", "m", "h"],
            vec!["GET", "h"],
            vec!["GET", "m"],
        ] {
            assert_eq!(
                String::from_utf8_lossy(&rc.raw(&c)),
                String::from_utf8_lossy(&dc.raw(&c)),
                "round {round}: {c:?}"
            );
        }
    }
}

/// Random PFADD/PFMERGE/PFCOUNT mixes over a few keys.
#[test]
fn random_commands_match_redis() {
    let r = redis();
    let d = damselfly(&[]);
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x1109);
    let mut script = String::from("CONFIG SET hll-sparse-max-bytes 600\n");
    for _ in 0..800 {
        let key = ["a{t}", "b{t}", "c{t}"][rng.random_range(0..3)];
        let line = match rng.random_range(0..6) {
            0..=2 => {
                let eles: Vec<String> = (0..rng.random_range(0..30))
                    .map(|_| rng.random_range(0..5000).to_string())
                    .collect();
                format!("PFADD {key} {}", eles.join(" "))
            }
            3 => format!("PFCOUNT {key}"),
            4 => "PFCOUNT a{t} b{t} c{t}".to_string(),
            _ => format!("PFMERGE {key} a{{t}} b{{t}}"),
        };
        script.push_str(&line);
        script.push('\n');
        if rng.random_range(0..20) == 0 {
            script.push_str(&format!("GET {key}\n"));
        }
    }
    script.push_str("GET a{t}\nGET b{t}\nGET c{t}\nCONFIG SET hll-sparse-max-bytes 3000\n");
    diff_on(&r, &d, &script);
}
