//! String commands, compared with redis-server.

use crate::support::{damselfly, diff, diff_on, redis, Conn};
use std::time::Duration;

#[test]
fn set_options_match_redis() {
    diff(
        r#"
        SET k v
        GET k
        SET k v NX
        SET k v2 XX
        GET k
        SET k v3 XX GET
        SET new v NX GET
        SET k v EX 0
        SET k v EX -1
        SET k v EX abc
        SET k v PX 100 EX 100
        SET k v KEEPTTL EX 10
        SET k v EX 10 KEEPTTL
        SET k v NX XX
        SET k v XX NX
        SET k v BOGUS
        SET k v EX
        SET k v EX 9223372036854775807
        SET k v PX 9223372036854775807
        SET k v PXAT 9223372036854775807
        SET k v EXAT 9223372036854775807
        SET k v EXAT 9223372036854775
        SET k v EX 1.5
        SET k v PX " 10"
        SET "" ""
        GET ""
        SET "bin\x00key" "bin\x00val"
        GET "bin\x00key"
        SET k 12345
        GET k
        SET k -0
        GET k
        SET k 007
        GET k
        SET k -9223372036854775808
        GET k
        SET k 9223372036854775808
        GET k
        "#,
    );
}

#[test]
fn set_repeated_and_mixed_case_options_follow_redis_rules() {
    diff(
        r#"
        SET k v EX 10 EX 20
        SET k v px 10000 PX 20000
        SET k v ex 10 px 20
        SET k v exat 10 pxat 20
        SET k v nx nx
        GET k
        SET k v xx xx
        SET k v2 get get
        SET k v keepttl keepttl
        SET k v KeepTTL Get Xx
        SET k v PERSIST
        SET k v GET NX
        SET k v2 GET XX PX 100000
        SET k v "nx\x00trailing"
        SET k2 v "nx\x00trailing"
        SET k3 v "ex\x00q" 100
        GET k3
        SET k v "n"
        SET k v "nxx"
        SET
        SET k
        "#,
    );
}

#[test]
fn set_get_option_replies_old_value_and_respects_conditions() {
    diff(
        r#"
        SET k old GET
        SET k new GET
        SET k newer NX GET
        GET k
        SET missing v XX GET
        GET missing
        SET k 100 GET
        SET k x GET
        SET k v GET EX 0
        GET k
        "#,
    );
}

#[test]
fn setnx_setex_psetex_getset_match_redis() {
    diff(
        r#"
        SETNX k v
        SETNX k v2
        GET k
        SETNX k
        SETNX k v extra
        SETEX k 100 v3
        GET k
        SETEX k 0 v
        SETEX k -5 v
        SETEX k abc v
        SETEX k 9223372036854775807 v
        SETEX k 9223372036854775 v
        SETEX k 10
        PSETEX k 100000 v4
        GET k
        PSETEX k 0 v
        PSETEX k -1 v
        PSETEX k 1.5 v
        PSETEX k 9223372036854775807 v
        GETSET k v5
        GETSET k 42
        GETSET k x
        GETSET fresh v
        GET fresh
        GETSET k
        SETNX "" empty
        GET ""
        SETNX "\x00\xff" "\x01\x02"
        GET "\x00\xff"
        "#,
    );
}

#[test]
fn getex_and_getdel_match_redis() {
    diff(
        r#"
        SET k v
        GETEX k
        GETEX k EX 100
        GETEX k PX 100000
        GETEX k EXAT 99999999999
        GETEX k PXAT 99999999999000
        GETEX k PERSIST
        GETEX k persist persist
        GETEX k EX 10 PERSIST
        GETEX k PERSIST EX 10
        GETEX k EX 10 PX 10
        GETEX k EX 10 EX 20
        GETEX k EX
        GETEX k NX
        GETEX k XX
        GETEX k GET
        GETEX k KEEPTTL
        GETEX k BOGUS
        GETEX k EX 0
        GETEX k EX -1
        GETEX k EX abc
        GETEX k PX 9223372036854775807
        GETEX k EX 9223372036854775807
        GETEX missing EX abc
        GETEX missing EX 0
        GETEX missing BOGUS
        GETEX missing
        GETEX k EXAT 1
        GET k
        EXISTS k
        SET k v
        GETEX k PXAT 1
        EXISTS k
        SET n 12
        GETEX n EX 100
        GETEX
        GETDEL n
        GETDEL n
        EXISTS n
        GETDEL missing
        GETDEL
        GETDEL a b
        SET "" ""
        GETDEL ""
        "#,
    );
}

#[test]
fn mget_mset_msetnx_match_redis() {
    diff(
        r#"
        MSET a 1 b 2 c three
        MGET a b c missing a
        MGET missing
        MGET
        MSET a
        MSET a 1 b
        MSET
        MSET a 1 a 2
        GET a
        MSETNX a 1 x 2
        MGET x
        MSETNX x 1 y 2
        MGET x y
        MSETNX z 1 z 2
        GET z
        MSETNX z 3 z 4
        GET z
        MSETNX q
        MSETNX q 1 r
        MSET "" e "\x00" "\xff"
        MGET "" "\x00"
        "#,
    );
}

#[test]
fn append_and_strlen_match_redis() {
    diff(
        r#"
        APPEND k hello
        APPEND k " world"
        GET k
        STRLEN k
        APPEND k ""
        APPEND e ""
        EXISTS e
        STRLEN e
        SET n 123
        STRLEN n
        APPEND n 4
        GET n
        INCR n
        SET neg -42
        STRLEN neg
        SET m -9223372036854775808
        STRLEN m
        SET z 0
        STRLEN z
        APPEND bin "\x00\x01"
        APPEND bin "\x00"
        GET bin
        STRLEN bin
        STRLEN missing
        STRLEN
        STRLEN a b
        APPEND k
        APPEND
        "#,
    );
}

#[test]
fn getrange_and_substr_match_redis() {
    diff(
        r#"
        SET s "Hello World"
        GETRANGE s 0 3
        GETRANGE s 0 -1
        GETRANGE s -4 -1
        GETRANGE s 5 3
        GETRANGE s 5 5000
        GETRANGE s -5000 10000
        GETRANGE s 0 -100
        GETRANGE s -1 -5
        GETRANGE s -5 -1
        GETRANGE s 0 4294967297
        GETRANGE s -9223372036854775808 9223372036854775807
        GETRANGE s 9223372036854775807 -9223372036854775808
        GETRANGE s 11 11
        GETRANGE s 10 10
        GETRANGE s a 1
        GETRANGE s 1 b
        GETRANGE s 1.0 2
        GETRANGE missing 0 -1
        GETRANGE missing a 1
        SET n 1234
        GETRANGE n 0 2
        GETRANGE n -3 -1
        GETRANGE n 3 5000
        SET e ""
        GETRANGE e 0 -1
        GETRANGE e 0 0
        SUBSTR s 0 4
        SUBSTR s -3 -1
        SUBSTR n 1 1
        SUBSTR s 0
        GETRANGE s 0
        GETRANGE s 0 1 2
        "#,
    );
}

#[test]
fn setrange_matches_redis() {
    diff(
        r#"
        SETRANGE k 0 foo
        GET k
        SETRANGE k 1 b
        GET k
        SETRANGE k 5 bar
        GET k
        SETRANGE k 0 ""
        SETRANGE k 100 ""
        STRLEN k
        SETRANGE new 0 ""
        EXISTS new
        SETRANGE new 3 x
        GET new
        SETRANGE k -1 x
        SETRANGE k -1 ""
        SETRANGE missing -1 ""
        SETRANGE k abc x
        SETRANGE k 1.5 x
        SETRANGE k 536870908 world
        SETRANGE huge 536870908 world
        SETRANGE huge 9223372036854775807 A
        SETRANGE huge 2147483647 A
        SETRANGE huge 9223372036854775807 ""
        EXISTS huge
        SET n 1234
        SETRANGE n 0 2
        GET n
        INCR n
        SETRANGE n 5 2
        GET n
        SETRANGE n 0 ""
        SETRANGE bin 2 "\x00\xff"
        GET bin
        SETRANGE k 0
        SETRANGE
        "#,
    );
}

#[test]
fn incr_family_matches_redis() {
    diff(
        r#"
        INCR k
        INCR k
        INCRBY k 10
        DECR k
        DECRBY k 5
        GET k
        INCRBY k -100
        DECRBY k -100
        SET k 9223372036854775807
        INCR k
        INCRBY k 0
        DECR k
        SET k -9223372036854775808
        DECR k
        INCRBY k -1
        INCR k
        DECRBY k 9223372036854775807
        DECRBY k -9223372036854775808
        DECRBY fresh -9223372036854775808
        EXISTS fresh
        INCRBY k 9223372036854775808
        INCRBY k abc
        INCRBY k 1.5
        INCRBY k " 1"
        INCRBY k ""
        INCRBY k +1
        DECRBY k 01
        SET s " 11"
        INCR s
        SET s "11 "
        INCR s
        SET s "1.0"
        INCR s
        SET s ""
        INCR s
        SET s "0x10"
        INCR s
        SET s "-0"
        INCR s
        SET s "00"
        DECR s
        SET s "9223372036854775808"
        INCR s
        SET s "12\x003"
        INCR s
        SET big 4294967296
        INCR big
        INCRBY big 17179869184
        DECRBY big 17179869184
        DECRBY big 99999999999
        INCRBY neg -9223372036854775808
        INCR
        INCR a b
        INCRBY k
        DECRBY k 1 2
        DECR
        "#,
    );
}

#[test]
fn incrbyfloat_matches_redis() {
    diff(
        r#"
        INCRBYFLOAT f 10.5
        INCRBYFLOAT f 0.1
        INCRBYFLOAT f -5.0e3
        INCRBYFLOAT f 1.1
        INCRBYFLOAT f 2.2
        GET f
        INCRBYFLOAT i 3
        SET i 17179869184
        INCRBYFLOAT i 1.5
        INCRBYFLOAT i 17179869184
        INCRBYFLOAT i abc
        INCRBYFLOAT i ""
        INCRBYFLOAT i " 1"
        INCRBYFLOAT i "1 "
        INCRBYFLOAT i nan
        INCRBYFLOAT i inf
        INCRBYFLOAT i -inf
        INCRBYFLOAT i 1e400
        INCRBYFLOAT i 1e5000
        INCRBYFLOAT i 0x10
        INCRBYFLOAT i "1\x002"
        SET s " 11"
        INCRBYFLOAT s 1
        SET s "11 "
        INCRBYFLOAT s 1
        SET s foo
        INCRBYFLOAT s 1
        SET s 1
        SETRANGE s 2 2
        INCRBYFLOAT s 1
        SET z 0
        INCRBYFLOAT z -0
        INCRBYFLOAT z 0.0
        INCRBYFLOAT z -0.0
        SET d 1.5
        INCRBYFLOAT d -1.5
        GET d
        INCRBYFLOAT d 1.23456789012345678
        INCRBYFLOAT d 1e20
        INCRBYFLOAT d -1e20
        SET n 5e3
        INCRBYFLOAT n 1
        INCRBYFLOAT
        INCRBYFLOAT f
        INCRBYFLOAT f 1 2
        "#,
    );
}

#[test]
fn lcs_matches_redis() {
    diff(
        r#"
        MSET a ohmytext b mynewtext
        LCS a b
        LCS a b LEN
        LCS a b IDX
        LCS a b IDX WITHMATCHLEN
        LCS a b IDX MINMATCHLEN 4
        LCS a b IDX MINMATCHLEN 4 WITHMATCHLEN
        LCS a b IDX MINMATCHLEN -5 WITHMATCHLEN
        LCS a b WITHMATCHLEN
        LCS a b MINMATCHLEN 2
        LCS a b LEN WITHMATCHLEN
        LCS a b IDX LEN
        LCS a b LEN IDX
        LCS a b MINMATCHLEN
        LCS a b MINMATCHLEN x
        LCS a b MINMATCHLEN 1.5
        LCS a b BOGUS
        LCS a b "idx\x00junk"
        LCS a missing
        LCS missing a IDX
        LCS missing missing2 LEN
        LCS a a
        LCS a a IDX WITHMATCHLEN
        MSET x "" y ""
        LCS x y IDX
        MSET n1 12345 n2 -2345
        LCS n1 n2 IDX WITHMATCHLEN
        MSET p "\x00ab\xffcd" q "ab\x00\xffc"
        LCS p q
        LCS p q IDX WITHMATCHLEN
        LCS a
        LCS
        ~HELLO 3
        LCS a b IDX WITHMATCHLEN
        LCS a b LEN
        LCS a b
        "#,
    );
}

#[test]
fn lcs_of_the_suite_rna_strings_matches_redis() {
    let rna1 = "CACCTTCCCAGGTAACAAACCAACCAACTTTCGATCTCTTGTAGATCTGTTCTCTAAACGAACTTTAAAATCTGTGTGGCTGTCACTCGGCTGCATGCTTAGTGCACTCACGCAGTATAATTAATAACTAATTACTGTCGTTGACAGGACACGAGTAACTCGTCTATCTTCTGCAGGCTGCTTACGGTTTCGTCCGTGTTGCAGCCGATCATCAGCACATCTAGGTTTCGTCCGGGTGTG";
    let rna2 = "ATTAAAGGTTTATACCTTCCCAGGTAACAAACCAACCAACTTTCGATCTCTTGTAGATCTGTTCTCTAAACGAACTTTAAAATCTGTGTGGCTGTCACTCGGCTGCATGCTTAGTGCACTCACGCAGTATAATTAATAACTAATTACTGTCGTTGACAGGACACGAGTAACTCGTCTATCTTCTGCAGGCTGCTTACGGTTTCGTCCGTGTTGCAGCCGATCATCAGCACATCTAGGTTT";
    diff(&format!(
        "SET v1 {rna1}\nSET v2 {rna2}\nLCS v1 v2\nLCS v1 v2 LEN\nLCS v1 v2 IDX\n\
         LCS v1 v2 IDX WITHMATCHLEN\nLCS v1 v2 IDX WITHMATCHLEN MINMATCHLEN 5\nLCS v2 v1 IDX"
    ));
}

#[test]
fn lcs_of_random_strings_matches_redis() {
    let r = redis();
    let d = damselfly(&[]);
    let mut script = String::new();
    for round in 0..60 {
        let alphabet = if round % 2 == 0 { "ab" } else { "abcd" };
        let gen = |n: usize| -> String {
            (0..n)
                .map(|_| {
                    let i = rand::random::<u32>() as usize % alphabet.len();
                    &alphabet[i..=i]
                })
                .collect()
        };
        let (la, lb) = (
            rand::random::<u32>() as usize % 40,
            rand::random::<u32>() as usize % 40,
        );
        let (a, b) = (gen(la), gen(lb));
        script.push_str(&format!(
            "SET a \"{a}\"\nSET b \"{b}\"\nLCS a b\nLCS a b IDX WITHMATCHLEN\nLCS a b IDX MINMATCHLEN 2\n"
        ));
    }
    diff_on(&r, &d, &script);
}

#[test]
fn lcs_refuses_tables_over_proto_max_bulk_len() {
    let big_a = "a".repeat(12000);
    let big_b = "b".repeat(12000);
    diff(&format!(
        "SET a {big_a}\nSET b {big_b}\nLCS a b\nLCS a b LEN\nLCS a b IDX LEN\nLCS a missing LEN"
    ));
}

#[test]
fn string_commands_reply_in_resp3() {
    diff(
        r#"
        ~HELLO 3
        GET missing
        SET k v
        SET k v2 GET
        SET k v NX
        SET k2 v XX GET
        SETNX k v
        GETSET k 5
        GETSET missing2 x
        GETEX k
        GETEX missing
        GETDEL missing
        MGET k missing k2
        INCR k
        INCRBYFLOAT k 1.5
        GETRANGE missing 0 -1
        STRLEN k
        APPEND k x
        SETRANGE k 0 z
        "#,
    );
}

#[test]
fn wrong_arity_errors_match_redis() {
    diff(
        r#"
        GET
        GET a b
        SET
        SETNX a
        SETEX a 1
        PSETEX a 1
        GETSET a
        GETEX
        GETDEL
        MGET
        MSET a
        MSETNX a
        APPEND a
        STRLEN
        GETRANGE a 1
        SUBSTR a 1
        SETRANGE a 1
        INCR
        DECR
        INCRBY a
        DECRBY a
        INCRBYFLOAT a
        LCS a
        "#,
    );
}

/// Runs `steps` on a fresh connection to Redis and to Damselfly at the same
/// pace (a step `None` sleeps), and asserts identical replies.
fn timed(steps: &[Option<&str>], pause: Duration) {
    let r = redis();
    let d = damselfly(&[]);
    let mut rc = Conn::open(r.port);
    let mut dc = Conn::open(d.port);
    for step in steps {
        match step {
            None => std::thread::sleep(pause),
            Some(line) => {
                let args = crate::support::words(line);
                let want = rc.raw(&args);
                let got = dc.raw(&args);
                assert_eq!(
                    String::from_utf8_lossy(&want),
                    String::from_utf8_lossy(&got),
                    "{line}"
                );
            }
        }
    }
}

#[test]
fn expire_options_make_keys_expire_like_redis() {
    timed(
        &[
            Some("SET a v PX 150"),
            Some("PSETEX b 150 v"),
            Some("SET c v"),
            Some("GETEX c PX 150"),
            Some("SET d v PX 150"),
            Some("GETEX d PERSIST"),
            Some("SET e 1 PX 150"),
            Some("INCR e"),
            Some("SET f v PX 150"),
            Some("APPEND f x"),
            Some("SET g v PX 150"),
            Some("SETRANGE g 0 x"),
            Some("SET h v PX 150"),
            Some("SET h v2 KEEPTTL"),
            Some("SET i v PX 150"),
            Some("SET i v2"),
            Some("SET j v PX 150"),
            Some("GETSET j v2"),
            Some("SET k 1.5 PX 150"),
            Some("INCRBYFLOAT k 1"),
            Some("SET l v PX 150"),
            Some("SETNX l v2"),
            Some("MGET a b c d e f g h i j k l"),
            None,
            Some("MGET a b c d e f g h i j k l"),
            Some("SETNX l v3"),
            Some("MSETNX a 1 b 2"),
            Some("MGET a b"),
        ],
        Duration::from_millis(400),
    );
}

#[test]
fn setex_keys_expire() {
    timed(
        &[
            Some("SETEX a 1 v"),
            Some("GET a"),
            Some("SET b v EXAT 1"),
            Some("GET b"),
            Some("SET c v PXAT 1 GET"),
            Some("GET c"),
            None,
            Some("GET a"),
        ],
        Duration::from_millis(1200),
    );
}

/// `keyspace_hits` and `keyspace_misses` from INFO stats.
fn hits_misses(c: &mut Conn) -> (u64, u64) {
    let info = c.cmd(&["INFO", "stats"]);
    let field = |name: &str| -> u64 {
        info.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(u64::MAX)
    };
    (field("keyspace_hits:"), field("keyspace_misses:"))
}

#[test]
fn reads_count_hits_and_misses_like_redis_and_writes_do_not() {
    let r = redis();
    let d = damselfly(&[]);
    let script = [
        "SET k v",
        "SET n 1",
        "GET k",
        "GET missing",
        "MGET k n missing",
        "STRLEN k",
        "STRLEN missing",
        "GETRANGE k 0 -1",
        "GETRANGE missing 0 -1",
        "SUBSTR k 0 1",
        "GETEX k",
        "GETEX missing",
        "GETDEL missing",
        "SET k v2 GET",
        "SET missing2 v GET",
        "GETSET k v3",
        "SETNX k v",
        "SETEX k 100 v",
        "PSETEX k 100000 v",
        "MSETNX k v x y",
        "MSET a 1 b 2",
        "APPEND k x",
        "SETRANGE k 0 y",
        "INCR n",
        "INCRBYFLOAT n 1.5",
        "DECRBY n 1",
        "LCS k missing3",
        "GETDEL k",
    ];
    let mut rc = Conn::open(r.port);
    let mut dc = Conn::open(d.port);
    for c in [&mut rc, &mut dc] {
        c.cmd(&["FLUSHALL"]);
        c.cmd(&["CONFIG", "RESETSTAT"]);
    }
    for line in script {
        let args = crate::support::words(line);
        rc.raw(&args);
        dc.raw(&args);
        assert_eq!(hits_misses(&mut rc), hits_misses(&mut dc), "after {line}");
    }
}

#[test]
fn strings_edited_in_place_report_raw_encoding_like_redis() {
    diff(
        r#"
        SET a 12
        OBJECT ENCODING a
        APPEND a 3
        OBJECT ENCODING a
        GET a
        INCR a
        SET b hello
        SETRANGE b 1 E
        OBJECT ENCODING b
        GET b
        SETBIT c 7 1
        OBJECT ENCODING c
        SET d short
        OBJECT ENCODING d
        SETRANGE e 3 x
        GET e
        "#,
    );
}

#[test]
fn appending_many_small_pieces_builds_the_whole_value() {
    let d = crate::support::damselfly(&[]);
    let mut c = crate::support::Conn::open(d.port);
    let piece = "0123456789abcdef";
    let mut batch = Vec::new();
    for _ in 0..20_000 {
        batch.extend(crate::support::Conn::encode(&["APPEND", "log", piece]));
    }
    c.send_raw(&batch);
    for i in 1..=20_000 {
        assert_eq!(c.read(), format!(":{}\r\n", i * piece.len()).into_bytes());
    }
    assert_eq!(
        c.cmd(&["STRLEN", "log"]),
        format!(":{}\r\n", 20_000 * piece.len())
    );
    let got = c.raw(&["GETRANGE", "log", "-16", "-1"]);
    assert_eq!(got, format!("$16\r\n{piece}\r\n").into_bytes());
}
