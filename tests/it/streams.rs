//! Stream commands, compared with redis-server (replies that carry times,
//! idle counters or generated IDs are sent but not compared: `~`).

use crate::lists::{compare, text, wait_blocked};
use crate::support::{diff, Conn};

const BASICS: &str = r#"
    XADD s 1-1 a 1 b 2
    XADD s 1-2 a 3 b 4
    XADD s 1 c 5
    XADD s 1-2 c 5
    XADD s 0-0 c 5
    XADD s 0 c 5
    XADD fresh 0-0 c 5
    EXISTS fresh
    XADD s 2-* a 5
    XADD s 2-* a 6
    XADD s 1-* a 6
    XADD s 5 a 7 b 8 c 9
    XADD s 6-0 a 7
    XADD s 7-0 x
    XADD s
    XADD s *
    XADD s * f
    XADD s NOMKSTREAM
    XADD s abc f v
    XADD s - f v
    XADD s + f v
    XADD s 1-x f v
    XADD s -1 f v
    XADD s 18446744073709551616 f v
    XADD s 18446744073709551615-18446744073709551615 f v
    XADD s 18446744073709551615-18446744073709551615 f v
    XADD s * f v
    XADD s 18446744073709551615-* f v
    XLEN s
    XADD nomk NOMKSTREAM * f v
    EXISTS nomk
    XADD str-key 10 f v
    SET str 1
    XADD str * f v
    XADD str 0-0 f v
    XLEN str
    XLEN nosuch
    TYPE s
    OBJECT ENCODING s
    XADD t 00010-0001 f v
    XADD t " 20" f v
    XADD t +30 f v
    XADD t 40-+1 f v
    XADD t 50--0 f v
    XRANGE t - +
    XADD u 1-18446744073709551615 f v
    XADD u 1-* f v
    XADD u 2-* f v
    XRANGE u - +
"#;

#[test]
fn xadd_and_ids_match_redis() {
    diff(BASICS);
}

#[test]
fn xadd_and_ids_match_redis_resp3() {
    diff(&format!("~HELLO 3\n{BASICS}"));
}

const RANGES: &str = r#"
    XADD s 1-0 a 1
    XADD s 1-1 a 2
    XADD s 2-0 a 3 b 4
    XADD s 3-5 other x
    XADD s 4-0 a 5
    XADD s 18446744073709551615-0 a 6
    XRANGE s - +
    XRANGE s - + COUNT 2
    XRANGE s - + COUNT 0
    XRANGE s - + COUNT -5
    XRANGE s - + COUNT abc
    XRANGE s - + COUNT
    XRANGE s - + LIMIT 1
    XRANGE s - + COUNT 1 COUNT 3
    XRANGE s 1 1
    XRANGE s 1-1 2
    XRANGE s (1-0 +
    XRANGE s - (4-0
    XRANGE s (1-1 (3-5
    XRANGE s (- +
    XRANGE s - (+
    XRANGE s ( +
    XRANGE s (18446744073709551615-18446744073709551615 +
    XRANGE s - (0-0
    XRANGE s 5 1
    XRANGE s abc +
    XRANGE s - abc
    XREVRANGE s + -
    XREVRANGE s + - COUNT 3
    XREVRANGE s (4-0 -
    XREVRANGE s + (1-1
    XREVRANGE s 3 2
    XREVRANGE s - +
    XRANGE nosuch - +
    XRANGE nosuch - + COUNT 0
    XREVRANGE nosuch + -
    SET str x
    XRANGE str - +
    XRANGE str - + COUNT 0
    XRANGE str abc +
    XDEL s 1-1 2-0 9-9
    XDEL s 1-1
    XDEL s abc
    XDEL s 1-0 abc
    XRANGE s - +
    XDEL nosuch 1-1
    XDEL nosuch abc
    XDEL str 1-1
    XDEL s 1-0 3-5 4-0 18446744073709551615-0
    XLEN s
    EXISTS s
    XRANGE s - +
"#;

#[test]
fn ranges_and_deletes_match_redis() {
    diff(RANGES);
}

#[test]
fn ranges_and_deletes_match_redis_resp3() {
    diff(&format!("~HELLO 3\n{RANGES}"));
}

const TRIMS: &str = r#"
    CONFIG SET stream-node-max-entries 10
    XADD s 1 f v
    XADD s 2 f v
    XADD s 3 f v
    XADD s 4 f v
    XADD s 5 f v
    XADD s 6 f v
    XADD s 7 f v
    XADD s 8 f v
    XADD s 9 f v
    XADD s 10 f v
    XADD s 11 f v
    XADD s 12 f v
    XADD s 13 f v
    XADD s 14 f v
    XADD s 15 f v
    XADD s 16 f v
    XADD s 17 f v
    XADD s 18 f v
    XADD s 19 f v
    XADD s 20 f v
    XADD s 21 f v
    XADD s 22 f v
    XADD s 23 f v
    XADD s 24 f v
    XADD s 25 f v
    XTRIM s MAXLEN ~ 20
    XLEN s
    XTRIM s MAXLEN ~ 1 LIMIT 5
    XTRIM s MAXLEN ~ 1 LIMIT 10
    XLEN s
    XTRIM s MAXLEN = 12
    XLEN s
    XTRIM s MINID 14
    XRANGE s - + COUNT 1
    XTRIM s MINID ~ 22
    XLEN s
    XTRIM s MINID = 22
    XRANGE s - +
    XTRIM s MAXLEN 1 LIMIT 30
    XTRIM s MAXLEN 1 LIMIT 0
    XTRIM s MAXLEN -1
    XTRIM s MAXLEN abc
    XTRIM s MAXLEN 1 MINID 1
    XTRIM s MINID abc
    XTRIM s LIMIT 10
    XTRIM s FOO 1
    XTRIM s MAXLEN ~ 1 LIMIT -1
    XTRIM s MAXLEN
    XTRIM nosuch MAXLEN 1
    XTRIM nosuch FOO
    SET str x
    XTRIM str MAXLEN 1
    XADD s MAXLEN 2 26 f v
    XRANGE s - +
    XADD s MAXLEN = 1 27 f v
    XADD s MINID 30 28 f v
    XRANGE s - +
    XADD s MAXLEN ~ 0 LIMIT 1 29 f v
    XADD s MAXLEN 0 LIMIT 1 30 f v
    XADD s MAXLEN -1 31 f v
    XADD s MAXLEN 1 MINID 1 31 f v
    XADD s LIMIT 1 31 f v
    XADD s MAXLEN 0 32 f v
    XLEN s
    XINFO STREAM s
    ~XADD e MAXLEN 0 * a b
    XLEN e
    XTRIM s MAXLEN 0
    XADD s MAXLEN ~ 5 NOMKSTREAM 40 f v
    CONFIG SET stream-node-max-entries 100
"#;

const NODES: &str = r#"
    CONFIG SET stream-node-max-entries 3
    XADD n 1-1 a 1 b 1
    XADD n 2-2 a 2 b 4
    XADD n 3-0 a 3 b 9
    XADD n 4-1 a 4 b 16
    XADD n 5-2 a "" b yyyyyyyyyyyyyyy
    XADD n 6-0 a 6 b 36
    XADD n 7-1 other 7 more x7
    XADD n 8-2 a 8 b 64
    XADD n 9-0 a 9 b 81
    XADD n 10-1 a "" b yyyyyyyyyyyyyyyyyyyyyyyyyyyyyy
    XADD n 11-2 a 11 b 121
    XADD n 12-0 a 12 b 144
    XADD n 13-1 a 13 b 169
    XADD n 14-2 other 14 more x14
    XADD n 15-0 a "" b yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy
    XADD n 16-1 a 16 b 256
    XADD n 17-2 a 17 b 289
    XADD n 18-0 a 18 b 324
    XADD n 19-1 a 19 b 361
    XADD n 20-2 a "" b yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy
    XADD n 21-0 other 21 more x21
    XADD n 22-1 a 22 b 484
    XADD n 23-2 a 23 b 529
    XADD n 24-0 a 24 b 576
    XADD n 25-1 a "" b yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy
    XADD n 26-2 a 26 b 676
    XADD n 27-0 a 27 b 729
    XADD n 28-1 other 28 more x28
    XADD n 29-2 a 29 b 841
    XADD n 30-0 a "" b yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy
    XADD n 31-1 a 31 b 961
    XADD n 32-2 a 32 b 1024
    XADD n 33-0 a 33 b 1089
    XADD n 34-1 a 34 b 1156
    XADD n 35-2 other 35 more x35
    XADD n 36-0 a 36 b 1296
    XADD n 37-1 a 37 b 1369
    XADD n 38-2 a 38 b 1444
    XADD n 39-0 a 39 b 1521
    XDEL n 2-2 3-0 4-1 10-1 11-2 12-0
    XRANGE n - + COUNT 5
    XRANGE n 5 20
    XRANGE n (9-0 + COUNT 4
    XREVRANGE n + - COUNT 7
    XREVRANGE n 30 (12-0
    XREVRANGE n + - COUNT 50
    XINFO STREAM n
    XTRIM n MAXLEN ~ 30
    XINFO STREAM n
    XTRIM n MINID ~ 15-0
    XRANGE n - + COUNT 3
    XTRIM n MAXLEN 10
    XRANGE n - +
    XREAD COUNT 3 STREAMS n 20
    XDEL n 30-0 31-1 32-2
    XINFO STREAM n
    CONFIG SET stream-node-max-bytes 40
    XADD m 1 a 1
    XADD m 2 a 2
    XADD m 3 abcdefghijklmnopqrstuvwxyz 1
    XADD m 4 a 4
    XINFO STREAM m
    XTRIM m MAXLEN ~ 2
    XRANGE m - +
    CONFIG SET stream-node-max-bytes 4096
    CONFIG SET stream-node-max-entries 100
"#;

/// Ranges, deletes and trims over many small nodes.
#[test]
fn entries_across_nodes_match_redis() {
    diff(NODES);
}

#[test]
fn trimming_matches_redis() {
    diff(TRIMS);
}

const GROUPS: &str = r#"
    XGROUP CREATE s g $
    XGROUP CREATE s g $ MKSTREAM
    XGROUP CREATE s g $ MKSTREAM
    XGROUP CREATE s g2 0 ENTRIESREAD 5
    XGROUP CREATE s g3 0 ENTRIESREAD -2
    XGROUP CREATE s g3 0 ENTRIESREAD abc
    XGROUP CREATE s g3 0 FOO
    XGROUP CREATE s g3 abc
    XGROUP CREATE s g3 0 MKSTREAM ENTRIESREAD 1 MKSTREAM
    XGROUP CREATE s g4 - 
    XGROUP CREATE s g4 0 ENTRIESREAD
    XGROUP SETID s g 0
    XGROUP SETID s g 0 ENTRIESREAD 3
    XGROUP SETID s g 0 ENTRIESREAD -3
    XGROUP SETID s g 0 FOO 3
    XGROUP SETID s g 0 ENTRIESREAD
    XGROUP SETID s nog 0
    XGROUP SETID s g abc
    XGROUP SETID s g -
    XGROUP SETID nosuch g 0
    XGROUP CREATECONSUMER s g alice
    XGROUP CREATECONSUMER s g alice
    XGROUP CREATECONSUMER s nog alice
    XGROUP DELCONSUMER s g alice
    XGROUP DELCONSUMER s g nobody
    XGROUP DELCONSUMER s nog alice
    XGROUP DESTROY s g4
    XGROUP DESTROY s g2
    XGROUP DESTROY nosuch g
    XGROUP FOO s g
    XGROUP
    XGROUP CREATE s
    XGROUP HELP
    XGROUP HELP x
    XGROUP help
    SET str x
    XGROUP CREATE str g $
    XGROUP CREATE str g $ MKSTREAM
    XINFO GROUPS s
    XINFO HELP
    XINFO FOO
    XINFO GROUPS nosuch
    XINFO GROUPS str
    XINFO CONSUMERS s nog
    XINFO STREAM s FULL COUNT
    XINFO STREAM s FOO
    XINFO STREAM s FULL COUNT abc
    XINFO STREAM s FULL LIMIT 1
    XINFO STREAM nosuch
    XGROUP CREATE w g $ MKSTREAM
    XGROUP CREATE w g2 $
    WATCH w
    XGROUP DESTROY w g
    XGROUP SETID w g2 0
    XGROUP CREATECONSUMER w g2 c
    XREADGROUP GROUP g2 c STREAMS w >
    XACK w g2 1-0
    XGROUP DELCONSUMER w g2 c
    MULTI
    PING
    EXEC
"#;

#[test]
fn group_management_matches_redis() {
    diff(GROUPS);
}

#[test]
fn group_management_matches_redis_resp3() {
    diff(&format!("~HELLO 3\n{GROUPS}"));
}

const READS: &str = r#"
    XADD s 1-0 a 1
    XADD s 2-0 b 2
    XADD s 3-0 c 3
    XADD s2 5-0 z 1
    XREAD STREAMS s 0
    XREAD COUNT 2 STREAMS s 0
    XREAD COUNT 2 STREAMS s s2 0 0
    XREAD STREAMS s s2 nosuch 1 0 0
    XREAD STREAMS s 3
    XREAD STREAMS s $
    XREAD BLOCK 10 STREAMS s 0
    XREAD COUNT -1 STREAMS s 2
    XREAD COUNT abc STREAMS s 0
    XREAD BLOCK abc STREAMS s 0
    XREAD BLOCK -1 STREAMS s 0
    XREAD BLOCK 1.5 STREAMS s 0
    XREAD STREAMS s
    XREAD STREAMS s s2 0
    XREAD STREAMS s >
    XREAD STREAMS s abc
    XREAD STREAMS s -
    XREAD GROUP g c STREAMS s 0
    XREAD NOACK STREAMS s 0
    XREAD FOO STREAMS s 0
    XREAD COUNT 1
    XREAD STREAMS s 18446744073709551615-18446744073709551615
    SET str x
    XREAD STREAMS str 0
    XREAD STREAMS s str 0 0
    XREADGROUP GROUP g c STREAMS s >
    XGROUP CREATE s g 0
    XGROUP CREATE streams g 0 MKSTREAM
    XREADGROUP GROUP streams c STREAMS s >
    XREADGROUP GROUP g streams STREAMS streams >
    XREAD COUNT 1 STREAMS streams 0
    XREAD BLOCK 1 COUNT 1 NOACK STREAMS s 0
    XREADGROUP GROUP g c STREAMS s $
    XREADGROUP STREAMS s >
    XREADGROUP GROUP g c STREAMS s
    XREADGROUP GROUP g c STREAMS s s2 > >
    XREADGROUP GROUP g c COUNT 1 STREAMS s >
    XINFO GROUPS s
    XREADGROUP GROUP g c STREAMS s 0
    XREADGROUP GROUP g c2 STREAMS s >
    XREADGROUP GROUP g c2 STREAMS s >
    XREADGROUP GROUP g c2 BLOCK 10 STREAMS s >
    XREADGROUP GROUP g c STREAMS s 0
    XREADGROUP GROUP g c2 STREAMS s 0
    XREADGROUP GROUP g c2 COUNT 1 STREAMS s 2-0
    XREADGROUP GROUP g c2 STREAMS s abc
    XDEL s 2-0
    XREADGROUP GROUP g c2 STREAMS s 0
    XINFO GROUPS s
    XACK s g 1-0 2-0 2-0 9-0
    XACK s g abc
    XACK s nog 1-0
    XACK nosuch g 1-0
    XACK str g 1-0
    XPENDING s g
    XGROUP SETID s g 0
    XREADGROUP GROUP g c3 NOACK STREAMS s >
    XPENDING s g
    XREADGROUP GROUP g c3 STREAMS s 0
    XGROUP SETID s g 0
    XREADGROUP GROUP g c4 STREAMS s >
    XPENDING s g
    ~XPENDING s g - + 10 c3
    XPENDING s nog
    XPENDING nosuch g
    XPENDING str g
    XPENDING s g -
    XPENDING s g - +
    XPENDING s g - + abc
    XPENDING s g IDLE abc - + 10
    XPENDING s g IDLE 10 - +
    XPENDING s g - + 10 nobody
    XPENDING s g (- + 10
    ~XPENDING s g - + 10 c4 extra
    XPENDING s g IDLE 1000000 - + 10
    XPENDING s g IDLE 1000000 - + 10 c4
    XPENDING s g - + 0
    XPENDING s g - + -1
    XGROUP DELCONSUMER s g c4
    XPENDING s g
    ~XINFO CONSUMERS s g
    XGROUP DESTROY s g
    XINFO GROUPS s
"#;

#[test]
fn reads_groups_and_acks_match_redis() {
    diff(READS);
}

#[test]
fn reads_groups_and_acks_match_redis_resp3() {
    diff(&format!("~HELLO 3\n{READS}"));
}

const CLAIMS: &str = r#"
    XADD s 1-0 a 1
    XADD s 2-0 b 2
    XADD s 3-0 c 3
    XADD s 4-0 d 4
    XGROUP CREATE s g 0
    XREADGROUP GROUP g alice STREAMS s >
    XCLAIM s g bob 0 1-0 2-0 TIME 1000
    XCLAIM s g bob 0 1-0 JUSTID
    XCLAIM s g bob 0 3-0 RETRYCOUNT 7 TIME 2000
    XCLAIM s g bob 0 9-0
    XCLAIM s g bob 0 9-0 FORCE
    XCLAIM s g bob 100000000 4-0
    XCLAIM s g bob abc 4-0
    XCLAIM s g bob 0 4-0 IDLE abc
    XCLAIM s g bob 0 4-0 TIME abc
    XCLAIM s g bob 0 4-0 RETRYCOUNT abc
    XCLAIM s g bob 0 4-0 LASTID abc
    XCLAIM s g bob 0 4-0 FOO
    XCLAIM s g bob 0 abc
    XCLAIM s nog bob 0 1-0
    XCLAIM nosuch g bob 0 1-0
    XCLAIM s g bob 0 4-0 LASTID 10-0 JUSTID
    XINFO GROUPS s
    XPENDING s g
    XDEL s 2-0
    XCLAIM s g carol 0 2-0 JUSTID
    XPENDING s g
    XADD s 5-0 e 5
    XCLAIM s g carol 0 5-0 FORCE TIME 3000 JUSTID
    XPENDING s g
    XAUTOCLAIM s g dave 0 0 COUNT 2
    XAUTOCLAIM s g dave 0 0 COUNT 2 JUSTID
    XAUTOCLAIM s g dave 0 - JUSTID
    XDEL s 4-0
    XAUTOCLAIM s g erin 0 0
    XAUTOCLAIM s g erin 0 (1-0
    XAUTOCLAIM s g erin 0 0 COUNT 0
    XAUTOCLAIM s g erin 0 0 COUNT 1152921504606846976
    XAUTOCLAIM s g erin 0 0 COUNT abc
    XAUTOCLAIM s g erin 0 0 FOO
    XAUTOCLAIM s g erin abc 0
    XAUTOCLAIM s g erin 0 abc
    XAUTOCLAIM s nog erin 0 0
    XAUTOCLAIM nosuch g erin 0 0
    XAUTOCLAIM s g erin 100000000 0
    XPENDING s g
    SET str x
    XCLAIM str g bob 0 1-0
    XAUTOCLAIM str g bob 0 0
    XCLAIM s g newbie 100000000 1-0
    XAUTOCLAIM s g newbie2 100000000 0
    XAUTOCLAIM s g newbie3 0 99-0
    XINFO GROUPS s
"#;

#[test]
fn claims_match_redis() {
    diff(CLAIMS);
}

#[test]
fn claims_match_redis_resp3() {
    diff(&format!("~HELLO 3\n{CLAIMS}"));
}

const INFO: &str = r#"
    CONFIG SET stream-node-max-entries 2
    XADD s 100 a 1
    XADD s 101 b 1
    XADD s 102 c 1
    XADD s 103 e 1
    XADD s 104 f 1 g 2
    XINFO STREAM s
    XGROUP CREATE s g1 0
    XGROUP CREATE s g2 0
    XGROUP CREATE s g3 $
    ~XREADGROUP GROUP g1 Alice COUNT 1 STREAMS s >
    ~XREADGROUP GROUP g1 Bob COUNT 1 STREAMS s >
    ~XREADGROUP GROUP g1 Bob NOACK COUNT 1 STREAMS s >
    ~XREADGROUP GROUP g2 Charlie COUNT 4 STREAMS s >
    XCLAIM s g1 Alice 0 100-0 TIME 1 JUSTID
    XCLAIM s g1 Bob 0 101-0 TIME 2 JUSTID
    XCLAIM s g2 Charlie 0 100-0 101-0 102-0 103-0 TIME 3 JUSTID
    XDEL s 103
    XINFO STREAM s
    XINFO GROUPS s
    ~XINFO STREAM s FULL COUNT 1
    XDEL s 101
    XINFO GROUPS s
    XTRIM s MINID = 102
    XINFO GROUPS s
    XADD s 105 h 1
    XINFO GROUPS s
    XSETID s 200-0
    XSETID s 1-0
    XSETID s 300-0 ENTRIESADDED 1
    XSETID s 300-0 ENTRIESADDED 100 MAXDELETEDID 400-0
    XSETID s 300-0 ENTRIESADDED 100 MAXDELETEDID 150-0
    XSETID s 300-0 ENTRIESADDED -1
    XSETID s 300-0 ENTRIESADDED
    XSETID s 300-0 FOO 1
    XSETID s 100-0 MAXDELETEDID 50-0
    XSETID s abc
    XSETID nosuch 1-0
    XSETID s 300-0 MAXDELETEDID abc
    XINFO STREAM s
    XINFO GROUPS s
    XADD x 1-0 data a
    XADD x 2-0 data a
    XADD x 3-0 data a
    XADD x 4-0 data a
    XADD x 5-0 data a
    XDEL x 3-0
    XGROUP CREATE x g1 0
    XGROUP CREATE x g2 0 ENTRIESREAD 2
    XINFO GROUPS x
    XREADGROUP GROUP g1 c COUNT 1 STREAMS x >
    XINFO GROUPS x
    XREADGROUP GROUP g1 c COUNT 3 STREAMS x >
    XINFO GROUPS x
    XTRIM x MAXLEN 0
    XINFO STREAM x
    XINFO GROUPS x
    XDEL nothing 1
    XGROUP CREATE e g 0 MKSTREAM
    XINFO STREAM e
    XINFO GROUPS e
    XINFO STREAM e FULL
    ~MEMORY USAGE e
    CONFIG SET stream-node-max-entries 100
"#;

#[test]
fn xinfo_lag_and_xsetid_match_redis() {
    diff(INFO);
}

#[test]
fn xinfo_lag_and_xsetid_match_redis_resp3() {
    diff(&format!("~HELLO 3\n{INFO}"));
}

const KEYSPACE: &str = r#"
    XADD s 1-0 a 1
    XGROUP CREATE s g 0
    XREADGROUP GROUP g c STREAMS s >
    TYPE s
    OBJECT ENCODING s
    SCAN 0 TYPE stream
    RENAME s t
    XRANGE t - +
    COPY t u
    XADD u 2-0 b 2
    XLEN t
    XPENDING u g
    MOVE u 1
    SELECT 1
    XLEN u
    SELECT 0
    DEL t
    EXISTS t
    XADD big MAXLEN 3 1 f v
    LPUSH s x
    XADD s 1 a b
    XLEN s
    XRANGE s - +
    XREVRANGE s + -
    XDEL s 1
    XTRIM s MAXLEN 1
    XREAD STREAMS s 0
    XREADGROUP GROUP g c STREAMS s >
    XGROUP CREATE s g 0
    XGROUP SETID s g 0
    XACK s g 1
    XPENDING s g
    XCLAIM s g c 0 1
    XAUTOCLAIM s g c 0 0
    XINFO STREAM s
    XINFO GROUPS s
    XINFO CONSUMERS s g
    XSETID s 1
    SORT big
    COMMAND GETKEYS XREAD COUNT 1 STREAMS a b 0 0
    COMMAND GETKEYS XREADGROUP GROUP streams c STREAMS s >
    COMMAND GETKEYS XREAD STREAMS a 0 0
    COMMAND GETKEYS XREAD FOO STREAMS a b 0 0
    COMMAND GETKEYS XREAD STREAMS
    COMMAND GETKEYS XADD s * f v
    COMMAND GETKEYS XGROUP CREATE s g $
    COMMAND GETKEYS XINFO STREAM s
    MULTI
    XADD m 1-0 a 1
    XREAD BLOCK 0 STREAMS m 0
    XREAD BLOCK 0 STREAMS m $
    XREADGROUP GROUP g c BLOCK 0 STREAMS m >
    EXEC
"#;

#[test]
fn keyspace_commands_handle_streams_like_redis() {
    diff(KEYSPACE);
}

#[test]
fn memory_usage_is_reported() {
    let d = crate::support::damselfly(&[]);
    let mut c = Conn::open(d.port);
    for i in 1..=1000 {
        c.cmd(&[
            "XADD",
            "s",
            &format!("{i}-0"),
            "temperature",
            "21",
            "humidity",
            "40",
        ]);
    }
    let n: usize = c
        .cmd(&["MEMORY", "USAGE", "s"])
        .trim_start_matches(':')
        .trim()
        .parse()
        .unwrap();
    // Redis 7.0.15 reports 22248 bytes for this stream (about 22 a entry);
    // the packed nodes must not take more.
    assert!(n > 5_000 && n < 22_248, "{n}");
}

// ---------------------------------------------------------------------------
// Blocking, compared with redis-server.

#[test]
fn blocked_xread_is_served_by_xadd_on_any_of_its_keys() {
    compare(|port| {
        let mut ctl = Conn::open(port);
        ctl.cmd(&["FLUSHALL"]);
        ctl.cmd(&["XADD", "b", "1-0", "old", "x"]);
        let mut c1 = Conn::open(port);
        let mut c2 = Conn::open(port);
        c1.send(&[
            "XREAD", "BLOCK", "0", "STREAMS", "a", "b", "b", "$", "$", "$",
        ]);
        wait_blocked(&mut ctl, 1);
        c2.send(&["XREAD", "COUNT", "1", "BLOCK", "0", "STREAMS", "b", "1-0"]);
        wait_blocked(&mut ctl, 2);
        let mut out = vec![ctl.cmd(&["XADD", "a", "1-0", "f", "v"])];
        out.push(text(c1.read()));
        out.push(ctl.cmd(&["XADD", "b", "2-0", "f", "v"]));
        out.push(ctl.cmd(&["XADD", "b", "3-0", "f", "v"]));
        out.push(text(c2.read()));
        wait_blocked(&mut ctl, 0);
        out
    });
}

#[test]
fn blocked_xread_ignores_deletes_and_type_changes() {
    compare(|port| {
        let mut ctl = Conn::open(port);
        ctl.cmd(&["FLUSHALL"]);
        let mut c = Conn::open(port);
        c.cmd(&["HELLO", "3"]);
        c.send(&["XREAD", "BLOCK", "0", "STREAMS", "s", "$"]);
        wait_blocked(&mut ctl, 1);
        let mut out = vec![ctl.cmd(&["SET", "s", "x"])];
        out.push(ctl.cmd(&["DEL", "s"]));
        out.push(ctl.cmd(&["FLUSHALL"]));
        out.push(ctl.cmd(&["XADD", "s", "5-0", "f", "v"]));
        out.push(text(c.read()));
        out
    });
}

#[test]
fn blocked_xreadgroup_gets_entries_or_the_right_error() {
    compare(|port| {
        let mut ctl = Conn::open(port);
        ctl.cmd(&["FLUSHALL"]);
        ctl.cmd(&["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
        let mut c1 = Conn::open(port);
        let mut c2 = Conn::open(port);
        c1.send(&[
            "XREADGROUP",
            "GROUP",
            "g",
            "a",
            "BLOCK",
            "0",
            "STREAMS",
            "s",
            ">",
        ]);
        wait_blocked(&mut ctl, 1);
        c2.send(&[
            "XREADGROUP",
            "GROUP",
            "g",
            "b",
            "COUNT",
            "1",
            "BLOCK",
            "0",
            "NOACK",
            "STREAMS",
            "s",
            ">",
        ]);
        wait_blocked(&mut ctl, 2);
        let mut out = vec![ctl.cmd(&["XADD", "s", "1-0", "f", "v"])];
        out.push(text(c1.read()));
        out.push(ctl.cmd(&["XADD", "s", "2-0", "f", "v"]));
        out.push(text(c2.read()));
        out.push(ctl.cmd(&["XPENDING", "s", "g"]));
        c1.send(&[
            "XREADGROUP",
            "GROUP",
            "g",
            "a",
            "BLOCK",
            "0",
            "STREAMS",
            "s",
            ">",
        ]);
        wait_blocked(&mut ctl, 1);
        out.push(ctl.cmd(&["XGROUP", "DESTROY", "s", "g"]));
        out.push(text(c1.read()));
        ctl.cmd(&["XGROUP", "CREATE", "s", "g", "$"]);
        c1.send(&[
            "XREADGROUP",
            "GROUP",
            "g",
            "a",
            "BLOCK",
            "0",
            "STREAMS",
            "s",
            ">",
        ]);
        wait_blocked(&mut ctl, 1);
        out.push(ctl.cmd(&["DEL", "s"]));
        out.push(text(c1.read()));
        ctl.cmd(&["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
        c1.send(&[
            "XREADGROUP",
            "GROUP",
            "g",
            "a",
            "BLOCK",
            "0",
            "STREAMS",
            "s",
            ">",
        ]);
        wait_blocked(&mut ctl, 1);
        out.push(ctl.cmd(&["FLUSHALL"]));
        out.push(text(c1.read()));
        wait_blocked(&mut ctl, 0);
        out
    });
}

#[test]
fn blocked_stream_reads_time_out_and_unblock() {
    compare(|port| {
        let mut ctl = Conn::open(port);
        ctl.cmd(&["FLUSHALL"]);
        let mut c = Conn::open(port);
        let mut out = vec![text(c.raw(&["XREAD", "BLOCK", "20", "STREAMS", "s", "$"]))];
        c.cmd(&["HELLO", "3"]);
        out.push(text(c.raw(&["XREAD", "BLOCK", "20", "STREAMS", "s", "$"])));
        let id = c.cmd(&["CLIENT", "ID"]);
        let id = id.trim_start_matches(':').trim().to_string();
        c.send(&["XREAD", "BLOCK", "0", "STREAMS", "s", "$"]);
        wait_blocked(&mut ctl, 1);
        out.push(ctl.cmd(&["CLIENT", "UNBLOCK", &id, "ERROR"]));
        out.push(text(c.read()));
        out
    });
}

#[test]
fn xsetid_xdel_and_xtrim_do_not_wake_stream_readers() {
    compare(|port| {
        let mut ctl = Conn::open(port);
        ctl.cmd(&["FLUSHALL"]);
        ctl.cmd(&["XADD", "s", "1-0", "f", "v"]);
        ctl.cmd(&["XGROUP", "CREATE", "s", "g", "$"]);
        let mut c1 = Conn::open(port);
        let mut c2 = Conn::open(port);
        c1.send(&["XREAD", "BLOCK", "0", "STREAMS", "s", "$"]);
        wait_blocked(&mut ctl, 1);
        c2.send(&[
            "XREADGROUP",
            "GROUP",
            "g",
            "c",
            "BLOCK",
            "0",
            "STREAMS",
            "s",
            ">",
        ]);
        wait_blocked(&mut ctl, 2);
        let mut out = vec![ctl.cmd(&["XSETID", "s", "100-0"])];
        out.push(ctl.cmd(&["XDEL", "s", "1-0"]));
        out.push(ctl.cmd(&["XTRIM", "s", "MAXLEN", "0"]));
        out.push(ctl.cmd(&["XGROUP", "SETID", "s", "g", "0"]));
        out.push(
            ctl.cmd(&["INFO", "clients"])
                .contains("blocked_clients:2")
                .to_string(),
        );
        out.push(ctl.cmd(&["XADD", "s", "200-0", "f", "v"]));
        out.push(text(c1.read()));
        out.push(text(c2.read()));
        out
    });
}

/// A random mix of stream and group commands (fixed seed), replayed on
/// both servers: entries, trimming, PELs, lag and entries-read must agree.
#[test]
fn random_stream_workload_matches_redis() {
    use rand::{Rng, SeedableRng};
    let seed = std::env::var("STREAM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut script = vec!["CONFIG SET stream-node-max-entries 4".to_string()];
    let mut ms = 1u64;
    for _ in 0..600 {
        let pick = rng.random_range(1..ms.max(2) + 5);
        let line = match rng.random_range(0..24) {
            20 => format!(
                "XREADGROUP GROUP g{} c{} COUNT {} STREAMS s {pick}",
                rng.random_range(0..3),
                rng.random_range(0..3),
                rng.random_range(0..4)
            ),
            21 => format!("XREVRANGE s + ({pick} COUNT 3"),
            22 => format!("XREAD COUNT 2 STREAMS s {pick}"),
            23 => format!("XSETID s {}", ms + rng.random_range(0..3)),
            0..=5 => {
                ms += rng.random_range(0..3);
                let f = if rng.random_bool(0.8) { "a" } else { "b" };
                format!("XADD s {ms}-* {f} {ms}")
            }
            6 => format!("XDEL s {pick}-0 {pick}-1"),
            7 => format!(
                "XTRIM s MAXLEN {} {}",
                ["=", "~"][rng.random_range(0..2)],
                rng.random_range(0..40)
            ),
            8 => format!(
                "XTRIM s MINID {} {pick}",
                ["=", "~"][rng.random_range(0..2)]
            ),
            9 => format!(
                "XGROUP CREATE s g{} {}",
                rng.random_range(0..3),
                ["0", "$", &format!("{pick}")][rng.random_range(0..3)]
            ),
            10 => format!("XGROUP SETID s g{} {pick}", rng.random_range(0..3)),
            11..=13 => format!(
                "XREADGROUP GROUP g{} c{} COUNT {} {}STREAMS s >",
                rng.random_range(0..3),
                rng.random_range(0..3),
                rng.random_range(1..5),
                ["", "NOACK "][usize::from(rng.random_bool(0.2))]
            ),
            14 => format!(
                "XACK s g{} {pick}-0 {pick}-1 {}-0",
                rng.random_range(0..3),
                pick + 1
            ),
            15 => format!(
                "XCLAIM s g{} c{} 0 {pick}-0 {pick}-1 TIME 1000 JUSTID",
                rng.random_range(0..3),
                rng.random_range(0..3)
            ),
            16 => format!(
                "XAUTOCLAIM s g{} c{} 0 {pick} COUNT 3 JUSTID",
                rng.random_range(0..3),
                rng.random_range(0..3)
            ),
            17 => format!(
                "XGROUP DELCONSUMER s g{} c{}",
                rng.random_range(0..3),
                rng.random_range(0..3)
            ),
            18 => format!("XPENDING s g{}", rng.random_range(0..3)),
            _ => "XINFO STREAM s".to_string(),
        };
        script.push(line);
        if rng.random_bool(0.2) {
            script.push("XINFO GROUPS s".into());
        }
    }
    script.push("XRANGE s - +".into());
    script.push("CONFIG SET stream-node-max-entries 100".into());
    diff(&script.join("\n"));
}

/// Nodes split on stream-node-max-bytes where Redis's listpacks do, so
/// XINFO's node counts and `~` trimming agree for entries of any size.
#[test]
fn byte_limited_nodes_match_redis() {
    let mut script = Vec::new();
    for (i, size) in [3usize, 40, 70, 100, 130, 300, 1000, 5000]
        .iter()
        .cycle()
        .take(240)
        .enumerate()
    {
        let value = if i % 3 == 0 {
            (i * 7919).to_string()
        } else {
            "v".repeat(*size)
        };
        let fields = if i % 5 == 0 { "other" } else { "f" };
        script.push(format!(
            "XADD s {}-{} {fields} {value} n {i}",
            1 + i / 4,
            i % 4
        ));
        if i % 40 == 39 {
            script.push("XINFO STREAM s".into());
        }
    }
    script.push("XDEL s 10-1 11-0 30-2".into());
    script.push("XINFO STREAM s".into());
    script.push("XTRIM s MAXLEN ~ 200".into());
    script.push("XTRIM s MAXLEN ~ 100".into());
    script.push("XTRIM s MINID ~ 40".into());
    script.push("XINFO STREAM s".into());
    script.push("CONFIG SET stream-node-max-bytes 0".into());
    script.push("CONFIG SET stream-node-max-entries 0".into());
    for i in 0..300 {
        script.push(format!("XADD t {i}-1 f {}", "x".repeat(i)));
    }
    script.push("XINFO STREAM t".into());
    script.push("CONFIG SET stream-node-max-bytes 4096".into());
    script.push("CONFIG SET stream-node-max-entries 100".into());
    diff(&script.join("\n"));
}
