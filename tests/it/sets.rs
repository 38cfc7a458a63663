//! Set commands, compared with redis-server. Intsets reply in ascending
//! order on both servers, so most scripts use integer members; random
//! replies (SRANDMEMBER, SPOP, SSCAN order) are checked for properties.

use crate::hashes::bulks;
use crate::support::{damselfly, diff, redis, Conn};
use std::collections::HashSet;

#[test]
fn set_basics_match_redis() {
    diff(
        r#"
        SADD s 3 1 2
        SADD s 2 4
        SMEMBERS s
        SCARD s
        SCARD nokey
        SISMEMBER s 1
        SISMEMBER s 9
        SISMEMBER s x
        SISMEMBER s 01
        SISMEMBER nokey 1
        SMISMEMBER s 1 9 x
        SMISMEMBER nokey 1
        SMEMBERS nokey
        SREM s 1 9
        SREM nokey 1
        SREM s x
        SMEMBERS s
        SADD s -5 100000 9223372036854775807 -9223372036854775808 5000000000 -40000 32767 -32768
        SMEMBERS s
        OBJECT ENCODING s
        SREM s 9223372036854775807 -9223372036854775808
        SMEMBERS s
        SREM s 2 3 4 -5 100000 5000000000 -40000 32767 -32768
        EXISTS s
        SADD one x
        SMEMBERS one
        SISMEMBER one x
        SREM one x
        EXISTS one
        SADD s
        SREM s
        SCARD
        SISMEMBER s
        SMISMEMBER s
        SMEMBERS
        "#,
    );
}

#[test]
fn set_algebra_matches_redis() {
    diff(
        r#"
        SADD s 1 2 3 4 5 -5 100000 9223372036854775807
        SADD t 1 2 3 4 5 6
        SADD u 5 6 7
        SINTER s t
        SINTER t s
        SINTER s t u
        SINTER s nokey
        SINTER nokey s
        SINTER s
        SINTER s s
        SINTERSTORE d s t
        SMEMBERS d
        OBJECT ENCODING d
        SINTERSTORE d s nokey
        EXISTS d
        SINTERSTORE d s t u
        SMEMBERS d
        SUNION s t
        SUNION s t u nokey
        SUNION nokey
        SUNIONSTORE d s t nokey
        SMEMBERS d
        SUNIONSTORE d nokey
        EXISTS d
        SDIFF t s
        SDIFF s t
        SDIFF s t u
        SDIFF nokey s
        SDIFF s nokey
        SDIFF s s
        SDIFFSTORE d t s
        SMEMBERS d
        SDIFFSTORE d s s
        EXISTS d
        SET d string
        SINTERSTORE d s t
        TYPE d
        SET d string
        SUNIONSTORE d t
        SMEMBERS d
        SET d string
        SDIFFSTORE d t u
        SMEMBERS d
        SET d string EX 100
        SDIFFSTORE d t
        TTL d
        SINTERCARD 2 s t
        SINTERCARD 3 s t u
        SINTERCARD 2 s t LIMIT 1
        SINTERCARD 2 s t limit 0
        SINTERCARD 2 s t LIMIT 100
        SINTERCARD 2 s t LIMIT 1 LIMIT 3
        SINTERCARD 1 s
        SINTERCARD 2 s nokey
        SINTERCARD 0 s
        SINTERCARD x s
        SINTERCARD -1 s
        SINTERCARD 3 s t
        SINTERCARD 1 s LIMIT -1
        SINTERCARD 1 s LIMIT x
        SINTERCARD 1 s LIMIT
        SINTERCARD 1 s foo 1
        SINTERCARD 1 s t
        SINTERCARD 99999999999999999999 s
        SINTERCARD 1
        SINTER
        SDIFFSTORE d
        "#,
    );
}

#[test]
fn set_algebra_with_strings_matches_redis() {
    // One-member results and counts are order-independent.
    diff(
        r#"
        SADD a x y z 1
        SADD b y 2
        SADD c z y
        SINTER a b
        SINTER a b c
        SINTERCARD 2 a c
        SINTERSTORE d a c
        SCARD d
        SISMEMBER d z
        OBJECT ENCODING d
        SDIFFSTORE d a b c
        SCARD d
        SMISMEMBER d x 1 y z
        OBJECT ENCODING d
        SUNIONSTORE d a b
        SCARD d
        OBJECT ENCODING d
        SADD n 1 2
        SADD m 2 x
        SINTERSTORE d n m
        OBJECT ENCODING d
        SMEMBERS d
        SDIFF m a
        "#,
    );
}

#[test]
fn set_wrong_type_errors_match_redis() {
    diff(
        r#"
        SET str x
        SADD s 1 2
        SADD str 1
        SREM str 1
        SCARD str
        SISMEMBER str 1
        SMISMEMBER str 1
        SMEMBERS str
        SRANDMEMBER str
        SRANDMEMBER str 1
        SRANDMEMBER str x
        SPOP str
        SPOP str 1
        SPOP str x
        SINTER s str
        SINTER nokey str
        SINTER str nokey
        SINTERSTORE d nokey str
        SINTERSTORE d s str
        SINTERCARD 2 nokey str
        SUNION nokey str
        SUNIONSTORE d s str
        SDIFF nokey str
        SDIFF str nokey
        SDIFF s str
        SDIFFSTORE d s str
        SSCAN str 0
        SSCAN str x
        SSCAN str 0 COUNT 0
        SMOVE str s 1
        SMOVE s str 1
        SMOVE s str 9
        SMOVE nokey str 1
        SMEMBERS s
        EXISTS d
        GET str
        "#,
    );
}

#[test]
fn smove_matches_redis() {
    diff(
        r#"
        SADD s 1 2 3
        SADD t 3 4
        SMOVE s t 2
        SMOVE s t 3
        SMOVE s t 77
        SMEMBERS s
        SMEMBERS t
        SMOVE s s 1
        SMOVE s s 77
        SMOVE s new 1
        EXISTS s
        SMEMBERS new
        SMOVE nokey t 1
        SADD u x
        SMOVE u t x
        OBJECT ENCODING t
        SCARD t
        EXISTS u
        "#,
    );
}

#[test]
fn srandmember_and_spop_options_match_redis() {
    diff(
        r#"
        SRANDMEMBER nokey
        SRANDMEMBER nokey 5
        SRANDMEMBER nokey -5
        SRANDMEMBER nokey x
        SPOP nokey
        SPOP nokey 3
        SPOP nokey 0
        SPOP nokey -1
        SPOP nokey x
        SADD s 1 2 3
        SRANDMEMBER s 100
        SRANDMEMBER s 3
        SRANDMEMBER s 0
        SRANDMEMBER s x
        SRANDMEMBER s 1.5
        SRANDMEMBER s 1 2
        SRANDMEMBER s -9223372036854775808
        SRANDMEMBER s 9223372036854775808
        SPOP s 0
        SPOP s -1
        SPOP s x
        SPOP s 1 2
        SPOP s 9223372036854775808
        SPOP s 100
        EXISTS s
        SADD s 5
        SPOP s
        EXISTS s
        SADD s 1 2 3
        SPOP s 3
        EXISTS s
        "#,
    );
}

#[test]
fn sscan_options_match_redis() {
    diff(
        r#"
        SADD s 1 2 3 10 20
        SSCAN s 0
        SSCAN s 0 MATCH 1*
        SSCAN s 0 match *0 count 1
        SSCAN s 0 COUNT 1
        SSCAN s 5 COUNT 1
        SSCAN s 0 COUNT 0
        SSCAN s 0 COUNT x
        SSCAN s 0 MATCH
        SSCAN s 0 TYPE set
        SSCAN s x
        SSCAN s -1
        SSCAN nokey 0 COUNT 0
        SSCAN nokey x
        SSCAN s
        "#,
    );
}

#[test]
fn set_resp3_shapes_match_redis() {
    diff(
        r#"
        ~HELLO 3
        SADD s 1 2 3
        SADD t 2 3 4
        SMEMBERS s
        SMEMBERS nokey
        SINTER s t
        SINTER s nokey
        SUNION s t
        SUNION nokey
        SDIFF s t
        SDIFF nokey s
        SPOP nokey 2
        SPOP nokey
        SPOP s 0
        SRANDMEMBER s 100
        SRANDMEMBER s 0
        SRANDMEMBER nokey 2
        SRANDMEMBER nokey
        SMISMEMBER s 1 5
        SISMEMBER s 1
        SINTERCARD 2 s t
        SSCAN s 0
        SPOP t 100
        "#,
    );
}

#[test]
fn set_encodings_follow_redis() {
    diff(
        r#"
        SADD s 1 2
        OBJECT ENCODING s
        SADD s x
        OBJECT ENCODING s
        SREM s x
        OBJECT ENCODING s
        SADD n 01
        OBJECT ENCODING n
        SADD n2 -0
        OBJECT ENCODING n2
        SADD n3 9223372036854775808
        OBJECT ENCODING n3
        SADD n4 -9223372036854775808
        OBJECT ENCODING n4
        SADD n5 " 1"
        OBJECT ENCODING n5
        CONFIG SET set-max-intset-entries 3
        SADD c 1 2 3
        OBJECT ENCODING c
        SADD c 3
        OBJECT ENCODING c
        SADD c 4
        OBJECT ENCODING c
        SADD c2 1 2 3 4
        OBJECT ENCODING c2
        SADD c3 1 2 3
        SUNIONSTORE d c3 c3
        OBJECT ENCODING d
        SADD c4 4
        SUNIONSTORE d c3 c4
        OBJECT ENCODING d
        CONFIG SET set-max-intset-entries 0
        SADD z 1
        OBJECT ENCODING z
        CONFIG SET set-max-intset-entries 512
        "#,
    );
}

/// A big set (table encoding) keeps every member through adds and removes.
#[test]
fn big_sets_match_redis() {
    let mut script = String::new();
    for i in 0..300 {
        script.push_str(&format!("SADD big m{i} {i}\n"));
    }
    script.push_str("SCARD big\nOBJECT ENCODING big\n");
    for i in (0..300).step_by(5) {
        script.push_str(&format!(
            "SREM big m{i} {}\nSISMEMBER big m{}\n",
            i + 1,
            i + 2
        ));
    }
    script.push_str("SCARD big\nSMISMEMBER big m0 m1 m2 1 2 3\nSINTERCARD 1 big\n");
    script.push_str("SADD ints 1 2 3 4 5 6 7 8 9 10\nSINTER ints big\nSDIFF ints big\n");
    script.push_str("SINTERSTORE d big ints\nSMEMBERS d\nOBJECT ENCODING d\n");
    diff(&script);
}

fn members(c: &mut Conn, key: &str) -> HashSet<Vec<u8>> {
    bulks(&c.raw(&["SMEMBERS", key])).into_iter().collect()
}

/// SRANDMEMBER and SPOP return members with Redis's counting rules on both
/// servers, for intsets and tables.
#[test]
fn srandmember_and_spop_properties_hold_on_both_servers() {
    let (r, d) = (redis(), damselfly(&[]));
    for port in [r.port, d.port] {
        let mut c = Conn::open(port);
        for (key, n, prefix) in [("ints", 50usize, ""), ("strs", 300, "m")] {
            for i in 0..n {
                c.cmd(&["SADD", key, &format!("{prefix}{i}")]);
            }
            let all = members(&mut c, key);
            assert_eq!(all.len(), n);
            for count in [1usize, 3, n / 2, n - 1, n, n + 10] {
                let got = bulks(&c.raw(&["SRANDMEMBER", key, &count.to_string()]));
                assert_eq!(got.len(), count.min(n), "{port} {key} {count}");
                let set: HashSet<_> = got.iter().cloned().collect();
                assert_eq!(set.len(), got.len(), "distinct members");
                assert!(set.is_subset(&all));
            }
            let got = bulks(&c.raw(&["SRANDMEMBER", key, "-500"]));
            assert_eq!(got.len(), 500);
            assert!(got.iter().all(|m| all.contains(m)));
            let mut seen = HashSet::new();
            for _ in 0..10 {
                seen.extend(bulks(&c.raw(&["SRANDMEMBER", key, "-500"])));
            }
            if n == 50 {
                assert_eq!(seen.len(), 50);
            }
            // SPOP: popped members leave the set, and all come out once.
            let mut popped = HashSet::new();
            for count in [1usize, 7, n / 3] {
                for m in bulks(&c.raw(&["SPOP", key, &count.to_string()])) {
                    assert!(popped.insert(m.clone()), "popped twice");
                    assert!(all.contains(&m));
                }
            }
            let one = bulks(&c.raw(&["SPOP", key]));
            assert!(popped.insert(one[0].clone()));
            let rest = members(&mut c, key);
            assert!(rest.is_disjoint(&popped));
            assert_eq!(rest.len() + popped.len(), n);
            let last = bulks(&c.raw(&["SPOP", key, &n.to_string()]));
            assert_eq!(last.len(), rest.len());
            assert_eq!(c.cmd(&["EXISTS", key]), ":0\r\n");
        }
    }
}

/// SSCAN of a table-encoded set returns every member present for the whole
/// scan while the table grows and shrinks between calls.
#[test]
fn sscan_returns_every_stable_member_across_resizes() {
    let d = damselfly(&[]);
    let mut c = Conn::open(d.port);
    for i in 0..500 {
        c.cmd(&["SADD", "s", &format!("stable{i}")]);
    }
    let mut seen = HashSet::new();
    let mut cursor = "0".to_string();
    let mut round = 0;
    let mut churn: Vec<String> = Vec::new();
    loop {
        let b = bulks(&c.raw(&["SSCAN", "s", &cursor, "COUNT", "20"]));
        cursor = String::from_utf8_lossy(&b[0]).into_owned();
        seen.extend(b[1..].iter().cloned());
        round += 1;
        if round % 2 == 1 {
            for i in 0..400 {
                let m = format!("churn{round}:{i}");
                c.cmd(&["SADD", "s", &m]);
                churn.push(m);
            }
        } else {
            for m in churn.drain(..) {
                c.cmd(&["SREM", "s", &m]);
            }
        }
        if cursor == "0" {
            break;
        }
    }
    for i in 0..500 {
        assert!(
            seen.contains(format!("stable{i}").as_bytes()),
            "stable{i} missing"
        );
    }
}
