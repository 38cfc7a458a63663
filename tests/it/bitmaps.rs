//! bitmaps commands, compared with redis-server.

use crate::support::{damselfly, diff, diff_on, redis};
use rand::{Rng, SeedableRng};

#[test]
fn setbit_and_getbit_match_redis() {
    diff(
        r##"
        SETBIT k 7 1
        GET k
        SETBIT k 7 1
        SETBIT k 7 0
        GET k
        SETBIT k 100 1
        STRLEN k
        GETBIT k 100
        GETBIT k 99
        GETBIT k 101
        GETBIT k 100000
        GETBIT missing 0
        GETBIT missing 4294967295
        SETBIT fresh 0 0
        GET fresh
        EXISTS fresh
        SETBIT k -1 1
        SETBIT k 4294967296 1
        SETBIT k abc 1
        SETBIT k 1.5 1
        SETBIT k " 1" 1
        SETBIT k 01 1
        SETBIT k 1 2
        SETBIT k 1 -1
        SETBIT k 1 10
        SETBIT k 1 x
        SETBIT k x 2
        SETBIT k 1 01
        GETBIT k -1
        GETBIT k 4294967296
        GETBIT k x
        SETBIT k
        SETBIT k 1
        SETBIT k 1 1 1
        GETBIT k
        GETBIT k 1 1
        SET n 12
        GETBIT n 2
        GETBIT n 3
        SETBIT n 6 1
        GET n
        SETBIT n 1000 1
        STRLEN n
        SET neg -1
        SETBIT neg 15 1
        GET neg
        INCR n
        SET e ""
        GETBIT e 0
        SETBIT e 3 1
        GET e
        SETBIT "bin\x00key" 9 1
        GET "bin\x00key"
        "##,
    );
}

#[test]
fn setbit_limits_follow_proto_max_bulk_len() {
    diff(
        r##"
        CONFIG SET proto-max-bulk-len 1048576
        SETBIT k 8388608 1
        GETBIT k 8388608
        SETBIT k 8388607 1
        STRLEN k
        GETBIT k 8388607
        BITCOUNT k
        BITPOS k 1
        BITPOS k 0 -1
        BITPOS k 1 -1 -1 BIT
        BITFIELD k2 SET i64 8388607 1
        STRLEN k2
        BITFIELD k2 GET i64 8388607
        BITFIELD k3 SET i64 #131071 1
        STRLEN k3
        BITFIELD k3 SET i64 #131072 1
        BITFIELD k3 GET u8 8388608
        BITCOUNT k3 -1 -1
        BITCOUNT k3 -1 -1 BIT
        BITPOS k3 1 -64 -1 BIT
        BITPOS k3 0 -64 -1 BIT
        CONFIG SET proto-max-bulk-len 536870912
        "##,
    );
}

#[test]
fn bitcount_matches_redis() {
    diff(
        r##"
        BITCOUNT missing
        BITCOUNT missing 0 -1
        BITCOUNT missing a b
        BITCOUNT missing 1
        BITCOUNT missing 1 2 3 4
        SET v abc
        BITCOUNT v
        BITCOUNT v 0 0
        BITCOUNT v 1 1
        BITCOUNT v 0 -1
        BITCOUNT v -1 -1
        BITCOUNT v -2 -1
        BITCOUNT v 1 0
        BITCOUNT v 2 100
        BITCOUNT v 100 200
        BITCOUNT v -100 -1
        BITCOUNT v -20 -30
        BITCOUNT v -30 -20
        BITCOUNT v -9223372036854775808 9223372036854775807
        BITCOUNT v 0 -1 BIT
        BITCOUNT v 0 -1 bit
        BITCOUNT v 0 -1 BYTE
        BITCOUNT v 0 -1 byte
        BITCOUNT v 1 5 BIT
        BITCOUNT v 5 17 BIT
        BITCOUNT v 7 7 BIT
        BITCOUNT v -5 -1 BIT
        BITCOUNT v -30 -20 BIT
        BITCOUNT v 20 10 BIT
        BITCOUNT v 0 23 BIT
        BITCOUNT v 0 24 BIT
        BITCOUNT v 0 -1 bitx
        BITCOUNT v 0 -1 "bit\x00x"
        BITCOUNT v x 1 bitx
        BITCOUNT v 1 x bitx
        BITCOUNT v 1
        BITCOUNT v 1 2 3
        BITCOUNT v 1 2 BIT 4
        BITCOUNT v 1.0 2
        BITCOUNT
        SET n 1234567
        BITCOUNT n
        BITCOUNT n 1 3
        SET e ""
        BITCOUNT e
        BITCOUNT e 0 -1
        BITCOUNT e 0 -1 BIT
        BITCOUNT e x
        BITCOUNT e x y
        SET big "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
        BITCOUNT big
        BITCOUNT big 3 40
        BITCOUNT big 13 333 BIT
        BITCOUNT big -333 -13 BIT
        "##,
    );
}

#[test]
fn bitpos_matches_redis() {
    diff(
        r##"
        BITPOS missing 0
        BITPOS missing 1
        BITPOS missing 2
        BITPOS missing x
        BITPOS missing 0 0 -1 bitx
        BITPOS missing 1 1 2 3 4
        SETBIT k 7 1
        BITPOS k 2
        BITPOS k -1
        BITPOS k 1 a
        BITPOS k 0 0 -1 bit
        BITPOS k 0 0 -1 bitx
        BITPOS k 0 0
        BITPOS k 1 1 2 3 4
        BITPOS k 0 x 1 bitx
        BITPOS k 0 1 x bitx
        BITPOS k 0 1 x
        BITPOS k 0 1
        BITPOS k 1 1
        BITPOS k 1
        BITPOS k 0
        SET ff "\xff\xff"
        BITPOS ff 0
        BITPOS ff 0 0
        BITPOS ff 0 1
        BITPOS ff 0 2
        BITPOS ff 0 0 -1
        BITPOS ff 0 0 1 bit
        BITPOS ff 0 0 15 bit
        BITPOS ff 0 0 16 bit
        BITPOS ff 0 3 bit
        BITPOS ff 1 100 200
        BITPOS ff 0 100 200
        BITPOS ff 0 -100 -200
        BITPOS ff 1 -100 -200
        SET v abc
        BITPOS v 1 -20 -30
        BITPOS v 1 -30 -20
        BITPOS v 1 2 1
        BITPOS v 0 2 100
        BITPOS v 1 3 10 BIT
        BITPOS v 1 2 6 BIT
        BITPOS v 1 8 8 BIT
        BITPOS v 0 1 2 BIT
        BITPOS v 0 9 10 BIT
        BITPOS v 1 -10 -1 BIT
        BITPOS v 0 -10 -1 BIT
        BITPOS v 1 -1 BIT
        BITPOS v 0 0 -1 BYTE
        BITPOS v 0 0 -1 "byte\x00zz"
        SET e ""
        BITPOS e 0
        BITPOS e 1
        BITPOS e 0 0 -1
        BITPOS e 0 1 x
        BITPOS e 0 1 x bitx
        SET n 255
        BITPOS n 1
        BITPOS n 0
        SET z "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"
        BITPOS z 1
        BITPOS z 1 3
        BITPOS z 1 3 16
        BITPOS z 1 3 17
        BITPOS z 1 0 -1 BIT
        BITPOS z 1 0 142 BIT
        BITPOS z 1 0 143 BIT
        BITPOS z 0
        BITPOS z 0 17
        BITPOS z 0 17 17
        SET o "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xfe"
        BITPOS o 0
        BITPOS o 0 0 -1
        BITPOS o 0 0 -2
        BITPOS o 0 0 142 BIT
        BITPOS o 0 0 143 BIT
        BITPOS o 0 140 BIT
        BITPOS o 1 140 BIT
        BITPOS o 1 -1 -1 BIT
        BITPOS
        BITPOS k
        "##,
    );
}

#[test]
fn bitop_matches_redis() {
    diff(
        r##"
        BITOP NOT d a b
        BITOP NOT d
        BITOP foo d a
        BITOP and d
        BITOP AND d a
        EXISTS d
        SET d x
        BITOP AND d nothing other
        EXISTS d
        SET a "\x01\x02\xff"
        SET b "\xf0"
        SET c 12
        BITOP AND d a b
        GET d
        BITOP OR d a b
        GET d
        BITOP XOR d a b c
        GET d
        BITOP NOT d a
        GET d
        BITOP NOT d missing
        EXISTS d
        BITOP AND d a missing
        GET d
        BITOP OR d missing a
        GET d
        BITOP Xor d a
        GET d
        BITOP aNd d a a a
        GET d
        BITOP "and\x00x" d a
        BITOP andx d a
        SET e ""
        BITOP OR d e
        EXISTS d
        BITOP OR d a e
        GET d
        BITOP AND a a b
        GET a
        BITOP NOT c c
        GET c
        SET t v EX 100
        BITOP OR t a
        TTL t
        SET n 123
        BITOP XOR d n a
        GET d
        BITCOUNT d
        SETBIT d 100 1
        GET d
        "##,
    );
}

#[test]
fn bitfield_matches_redis() {
    diff(
        r##"
        BITFIELD k
        EXISTS k
        BITFIELD k GET
        BITFIELD k GET i8
        BITFIELD k foo
        BITFIELD k GET x8 0
        BITFIELD k GET i0 0
        BITFIELD k GET i65 0
        BITFIELD k GET u64 0
        BITFIELD k GET u63 0
        BITFIELD k GET i64 0
        BITFIELD k GET I8 0
        BITFIELD k GET U8 0
        BITFIELD k GET i08 0
        BITFIELD k GET "i+8" 0
        BITFIELD k GET i-1 0
        BITFIELD k GET "i8\x00zz" 0
        BITFIELD k GET i 0
        BITFIELD k GET i8 -1
        BITFIELD k GET i8 #-1
        BITFIELD k GET i8 #1 GET i8 #
        BITFIELD k GET i8 #01
        BITFIELD k GET i8 "# 1"
        BITFIELD k GET i8 #9223372036854775807
        BITFIELD k GET i8 #1152921504606846976
        BITFIELD k GET i8 #2305843009213693952
        BITFIELD k GET i8 4294967295
        BITFIELD k GET i8 4294967296
        BITFIELD k SET i8 0 x
        BITFIELD k SET i8 0 1.5
        BITFIELD k INCRBY i8 0 x
        BITFIELD k OVERFLOW bogus
        BITFIELD k OVERFLOW
        BITFIELD k OVERFLOW sat GET i8 0 OVERFLOW
        BITFIELD k "get\x00x" i8 0
        EXISTS k
        BITFIELD k SET i8 0 -100 GET i8 0 GET u8 0
        GET k
        BITFIELD k SET u8 0 255 GET u8 0 SET i8 0 1
        BITFIELD k INCRBY u2 100 1 INCRBY u2 100 1 INCRBY u2 100 1 INCRBY u2 100 1
        STRLEN k
        BITFIELD k OVERFLOW SAT INCRBY u2 102 5 INCRBY u2 102 -5 OVERFLOW FAIL INCRBY u2 102 5
        BITFIELD k OVERFLOW FAIL INCRBY i8 0 200 INCRBY i8 0 -200 GET i8 0
        BITFIELD k SET i8 0 -9223372036854775808
        BITFIELD k OVERFLOW SAT SET i8 0 -9223372036854775808 GET i8 0
        BITFIELD k OVERFLOW SAT SET i8 0 9223372036854775807 GET i8 0
        BITFIELD k OVERFLOW SAT SET i8 0 -129 GET i8 0
        BITFIELD k OVERFLOW SAT SET u8 0 -1 GET u8 0
        BITFIELD k OVERFLOW FAIL SET u8 0 -1 GET u8 0
        BITFIELD k OVERFLOW WRAP SET u8 0 -1 GET u8 0
        BITFIELD k OVERFLOW WRAP SET u8 0 256 GET u8 0
        BITFIELD k OVERFLOW SAT SET u8 0 256 GET u8 0
        BITFIELD k OVERFLOW FAIL SET i8 0 128 SET i8 0 -128 SET i8 0 -129
        BITFIELD k OVERFLOW SAT SET i64 0 -1 INCRBY i64 0 -9223372036854775808
        BITFIELD k INCRBY i64 0 -1 INCRBY i64 0 -1
        BITFIELD k OVERFLOW WRAP SET i64 0 9223372036854775807 INCRBY i64 0 1
        BITFIELD k OVERFLOW SAT SET i64 0 9223372036854775807 INCRBY i64 0 1 INCRBY i64 0 -9223372036854775808
        BITFIELD k OVERFLOW FAIL INCRBY i64 0 9223372036854775807 INCRBY i64 0 -9223372036854775808 INCRBY i64 0 -9223372036854775808
        BITFIELD k OVERFLOW SAT SET u63 0 9223372036854775807 INCRBY u63 0 1 INCRBY u63 0 -9223372036854775808
        BITFIELD k OVERFLOW WRAP INCRBY u63 0 9223372036854775807 INCRBY u63 0 -9223372036854775808
        BITFIELD k SET i1 5 -1 GET i1 5 GET u1 5 SET u1 5 1 INCRBY i1 5 1
        BITFIELD k SET i13 #3 1234 GET i13 39 GET i13 #3 INCRBY i13 #3 7000 OVERFLOW SAT INCRBY i13 #3 -20000
        BITFIELD k SET u7 3 100 GET u7 3 GET u5 5 GET i9 1
        BITFIELD new OVERFLOW FAIL INCRBY u2 100 5
        STRLEN new
        GET new
        SET n 12345
        BITFIELD n GET u8 0 GET i16 8
        BITFIELD n SET u8 0 48
        GET n
        SET s hello
        BITFIELD s GET u8 0 GET u8 32 GET u8 40 GET i64 30
        BITFIELD_RO s GET u8 0 GET u8 32 GET u8 40 GET i64 30
        BITFIELD_RO s
        BITFIELD_RO
        BITFIELD
        BITFIELD_RO s SET x 0 1
        BITFIELD_RO s SET i8 0 x
        BITFIELD_RO s OVERFLOW sat GET i8 0
        BITFIELD_RO s OVERFLOW bad GET i8 0
        BITFIELD_RO s INCRBY i8 0 1
        BITFIELD_RO s GET i8 0 INCRBY i8 x
        BITFIELD_RO s SET i8 0 1 GET x 0
        BITFIELD_RO nokey GET i8 0
        EXISTS nokey
        GET s
        "##,
    );
}

#[test]
fn resp3_replies_match_redis() {
    diff(
        r##"
        ~HELLO 3
        SETBIT k 3 1
        GETBIT k 3
        BITCOUNT k
        BITPOS k 1
        BITOP NOT d k
        GET d
        BITFIELD k OVERFLOW FAIL INCRBY u2 0 5 GET u4 0 SET i8 8 -1
        BITFIELD_RO k GET u4 0
        BITFIELD k
        BITFIELD_RO k INCRBY u2 0 1
        SETBIT k -1 0
        "##,
    );
}

/// Random command mixes over a few keys, replayed on both servers.
#[test]
fn random_bit_commands_match_redis() {
    let r = redis();
    let d = damselfly(&[]);
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xb175);
    let mut script = String::new();
    for _ in 0..1500 {
        let key = ["a", "b", "c"][rng.random_range(0..3)];
        let line = match rng.random_range(0..9) {
            0 | 1 => format!(
                "SETBIT {key} {} {}",
                rng.random_range(0..400),
                rng.random_range(0..2)
            ),
            2 => format!("GETBIT {key} {}", rng.random_range(0..420)),
            3 => {
                let (s, e) = (rng.random_range(-60..60), rng.random_range(-60..60));
                let unit = ["", "BIT", "BYTE"][rng.random_range(0..3)];
                format!("BITCOUNT {key} {s} {e} {unit}")
            }
            4 => {
                let bit = rng.random_range(0..2);
                match rng.random_range(0..4) {
                    0 => format!("BITPOS {key} {bit}"),
                    1 => format!("BITPOS {key} {bit} {}", rng.random_range(-60..60)),
                    2 => format!(
                        "BITPOS {key} {bit} {} {}",
                        rng.random_range(-60..60),
                        rng.random_range(-60..60)
                    ),
                    _ => format!(
                        "BITPOS {key} {bit} {} {} BIT",
                        rng.random_range(-450..450),
                        rng.random_range(-450..450)
                    ),
                }
            }
            5 => {
                let op = ["AND", "OR", "XOR", "NOT"][rng.random_range(0..4)];
                if op == "NOT" {
                    format!("BITOP NOT {key} a")
                } else {
                    format!("BITOP {op} {key} a b c")
                }
            }
            _ => {
                let mut l = format!("BITFIELD {key}");
                for _ in 0..rng.random_range(1..5) {
                    let signed = rng.random_bool(0.5);
                    let bits = rng.random_range(1..=if signed { 64 } else { 63 });
                    let ty = format!("{}{bits}", if signed { 'i' } else { 'u' });
                    let off = if rng.random_bool(0.2) {
                        format!("#{}", rng.random_range(0..6))
                    } else {
                        rng.random_range(0..300).to_string()
                    };
                    let v: i64 = match rng.random_range(0..3) {
                        0 => rng.random_range(-300..300),
                        1 => rng.random(),
                        _ => [i64::MIN, i64::MAX, -1, 0][rng.random_range(0..4)],
                    };
                    match rng.random_range(0..4) {
                        0 => l += &format!(" GET {ty} {off}"),
                        1 => l += &format!(" SET {ty} {off} {v}"),
                        2 => l += &format!(" INCRBY {ty} {off} {v}"),
                        _ => {
                            l += [" OVERFLOW WRAP", " OVERFLOW SAT", " OVERFLOW FAIL"]
                                [rng.random_range(0..3)]
                        }
                    }
                }
                l
            }
        };
        script.push_str(&line);
        script.push('\n');
        if rng.random_range(0..50) == 0 {
            script.push_str(&format!("GET {key}\n"));
        }
    }
    script.push_str("GET a\nGET b\nGET c\n");
    diff_on(&r, &d, &script);
}
