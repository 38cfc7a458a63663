//! zsets commands, compared with redis-server.

use crate::support::diff;

const BASICS: &str = r#"
    ZADD z 1 a 2 b 3 c
    ZADD z 1 a
    ZADD z 5 a 5 d
    ZADD z CH 6 a 6 e 6 e
    ZADD z NX 9 a 9 f
    ZADD z XX 10 a 10 g
    ZADD z XX CH 11 a 11 h
    ZADD z GT 1 a
    ZADD z GT CH 20 a
    ZADD z LT CH 30 a
    ZADD z LT CH 2 a
    ZADD z INCR 5 a
    ZADD z INCR -inf a
    ZADD z INCR +inf a
    ZADD z INCR GT 1 b
    ZADD z INCR LT 1 b
    ZADD z INCR NX 1 b
    ZADD z INCR XX 1 nosuch
    ZADD z NX XX 1 a
    ZADD z GT LT 1 a
    ZADD z NX GT 1 a
    ZADD z NX LT 1 a
    ZADD z INCR 1 a 2 b
    ZADD z 1
    ZADD z 1 a 2
    ZADD z nan a
    ZADD z abc a
    ZADD z " 1" a
    ZADD z "1 " a
    ZADD z "" a
    ZADD z 1e400 a
    ZADD z 1e-400 a
    ZADD z 0x10 hex
    ZADD z 1.5e3 sci
    ZADD z -0 negzero
    ZSCORE z negzero
    ZADD z inf pinf -inf ninf +inf pinf2 Infinity pinf3
    ZRANGE z 0 -1 WITHSCORES
    ZADD z ch 1 x
    ZADD z Nx Xx 1 x
    ZADD z GT xx 100 x
    ZADD nokey XX 1 a
    ZADD nokey XX INCR 1 a
    EXISTS nokey
    ZINCRBY z 2.5 b
    ZINCRBY z 1 newmember
    ZINCRBY z abc b
    ZINCRBY z xx b
    ZINCRBY zi inf m
    ZINCRBY zi -inf m
    ZSCORE zi m
    ZCARD z
    ZCARD nokey
    ZSCORE z a
    ZSCORE z nosuch
    ZSCORE nokey a
    ZMSCORE z a nosuch b
    ZMSCORE nokey a b
    ZRANK z a
    ZREVRANK z a
    ZRANK z nosuch
    ZRANK nokey a
    ZREM z a nosuch b
    ZREM nokey a
    ZRANGE z 0 -1 WITHSCORES
    SET str v
    ZADD str 1 a
    ZINCRBY str 1 a
    ZCARD str
    ZSCORE str a
    ZMSCORE str a
    ZRANK str a
    ZREM str a
    ZRANGE str 0 -1
    ZCOUNT str 0 1
    ZLEXCOUNT str - +
    ZPOPMIN str
    ZRANDMEMBER str
    ZSCAN str 0
    ZREMRANGEBYRANK str 0 1
    ZUNION 1 str
    ZINTERSTORE d 1 str
    ZMPOP 1 str MIN
    ZADD del 1 a
    ZREM del a
    EXISTS del
    ZADD ff 0.1 a 1e20 b 1e-5 c 123456789.123 d 3.0000000000000004 e -1.5e-300 f
    ZRANGE ff 0 -1 WITHSCORES
    ZSCORE ff a
    ZMSCORE ff a b c
"#;

#[test]
fn basics_resp2() {
    diff(BASICS);
}

#[test]
fn basics_resp3() {
    diff(&format!("~HELLO 3\n{BASICS}"));
}

const RANGES: &str = r#"
    ZADD z 1 a 2 b 3 c 4 d 5 e 5 f -inf g +inf h
    ZRANGE z 0 -1
    ZRANGE z 0 -1 WITHSCORES
    ZRANGE z 2 3
    ZRANGE z -3 -1
    ZRANGE z -100 100
    ZRANGE z 5 2
    ZRANGE z 100 200
    ZRANGE z 0 -1 REV
    ZRANGE z 1 2 REV WITHSCORES
    ZRANGE z 0 1 LIMIT 0 1
    ZRANGE z 0 1 LIMIT 0 -1
    ZRANGE z 0 1 LIMIT 5 -1
    ZRANGE z 0 1 BYLEX WITHSCORES
    ZRANGE z 0 1 BYSCORE BYLEX
    ZRANGE z 0 1 REV REV
    ZRANGE z 0 1 BOGUS
    ZRANGE z a 1
    ZRANGE z 0 1 LIMIT 1
    ZRANGE z 0 1 LIMIT a 1
    ZRANGE z 2 4 BYSCORE
    ZRANGE z (2 4 BYSCORE WITHSCORES
    ZRANGE z 2 (4 BYSCORE
    ZRANGE z (2 (4 BYSCORE
    ZRANGE z (2 (2 BYSCORE
    ZRANGE z 2 2 BYSCORE
    ZRANGE z 4 2 BYSCORE
    ZRANGE z -inf +inf BYSCORE WITHSCORES
    ZRANGE z -inf +inf BYSCORE LIMIT 1 3
    ZRANGE z -inf +inf BYSCORE LIMIT -1 3
    ZRANGE z -inf +inf BYSCORE LIMIT 2 -1
    ZRANGE z -inf +inf BYSCORE LIMIT 20 -1
    ZRANGE z +inf -inf BYSCORE REV WITHSCORES
    ZRANGE z 4 2 BYSCORE REV
    ZRANGE z 5 (2 BYSCORE REV LIMIT 1 2
    ZRANGE z abc 2 BYSCORE
    ZRANGE z ( 2 BYSCORE
    ZRANGE z "(" 2 BYSCORE
    ZRANGE z " 1" 2 BYSCORE
    ZRANGE z nan 2 BYSCORE
    ZRANGEBYSCORE z 2 4
    ZRANGEBYSCORE z 2 4 WITHSCORES LIMIT 1 1
    ZRANGEBYSCORE z 2 4 REV
    ZRANGEBYSCORE z 2 4 BYSCORE
    ZREVRANGEBYSCORE z 4 2
    ZREVRANGEBYSCORE z 4 2 WITHSCORES
    ZREVRANGEBYSCORE z (4 (2
    ZREVRANGEBYSCORE z +inf -inf LIMIT 2 2
    ZREVRANGE z 0 2
    ZREVRANGE z 0 2 WITHSCORES
    ZREVRANGE z 0 2 LIMIT 0 1
    ZCOUNT z 2 4
    ZCOUNT z (2 4
    ZCOUNT z -inf +inf
    ZCOUNT z 4 2
    ZCOUNT z a b
    ZCOUNT nokey 0 1
    ZCOUNT nokey a b
    ZADD l 0 a 0 b 0 c 0 d 0 e 0 f 0 g
    ZRANGEBYLEX l - +
    ZRANGEBYLEX l [b [d
    ZRANGEBYLEX l (b (d
    ZRANGEBYLEX l (b +
    ZRANGEBYLEX l - (c
    ZRANGEBYLEX l + -
    ZRANGEBYLEX l [d [b
    ZRANGEBYLEX l - + LIMIT 1 2
    ZRANGEBYLEX l - + LIMIT -1 2
    ZRANGEBYLEX l b d
    ZRANGEBYLEX l +a +
    ZRANGEBYLEX l [b
    ZREVRANGEBYLEX l + -
    ZREVRANGEBYLEX l [d [b
    ZREVRANGEBYLEX l (d - LIMIT 1 1
    ZRANGE l [b [d BYLEX
    ZRANGE l [d [b BYLEX REV
    ZRANGE l [d [b BYLEX REV LIMIT 0 2
    ZLEXCOUNT l - +
    ZLEXCOUNT l [b (d
    ZLEXCOUNT l a b
    ZLEXCOUNT nokey - +
    ZRANGESTORE dst z 0 -1
    ZRANGE dst 0 -1 WITHSCORES
    ZRANGESTORE dst z 2 4 BYSCORE
    ZRANGE dst 0 -1 WITHSCORES
    ZRANGESTORE dst z 4 2 BYSCORE REV LIMIT 0 1
    ZRANGE dst 0 -1 WITHSCORES
    ZRANGESTORE dst l [b [d BYLEX
    ZRANGE dst 0 -1
    ZRANGESTORE dst z 0 -1 WITHSCORES
    ZRANGESTORE dst z 5 3
    EXISTS dst
    SET dst x
    ZRANGESTORE dst nokey 0 -1
    EXISTS dst
    ZRANGESTORE dst z 0 1 LIMIT 0 1
    ZRANGE z 0 -1 BYSCORE LIMIT 0 1 WITHSCORES
"#;

#[test]
fn ranges_resp2() {
    diff(RANGES);
}

#[test]
fn ranges_resp3() {
    diff(&format!("~HELLO 3\n{RANGES}"));
}

const REMOVALS: &str = r#"
    ZADD z 1 a 2 b 3 c 4 d 5 e
    ZREMRANGEBYRANK z 0 0
    ZREMRANGEBYRANK z -1 -1
    ZREMRANGEBYRANK z 5 10
    ZREMRANGEBYRANK z a 1
    ZRANGE z 0 -1
    ZREMRANGEBYSCORE z (2 3
    ZREMRANGEBYSCORE z a 3
    ZRANGE z 0 -1
    ZREMRANGEBYSCORE z -inf +inf
    EXISTS z
    ZADD l 0 a 0 b 0 c 0 d
    ZREMRANGEBYLEX l [b (d
    ZREMRANGEBYLEX l x y
    ZRANGE l 0 -1
    ZREMRANGEBYLEX l - +
    EXISTS l
    ZREMRANGEBYRANK nokey 0 1
    ZADD p 1 a 2 b 3 c 4 d 5 e
    ZPOPMIN p
    ZPOPMAX p
    ZPOPMIN p 2
    ZPOPMIN p 0
    ZPOPMIN p -1
    ZPOPMIN p abc
    ZPOPMIN p 1 2
    ZPOPMAX p 10
    EXISTS p
    ZPOPMIN nokey
    ZPOPMIN nokey 2
    ZADD m1 1 a 2 b
    ZADD m2 3 c 4 d
    ZMPOP 2 nokey m1 MIN
    ZMPOP 2 m1 m2 MAX COUNT 5
    ZMPOP 2 m1 m2 MAX COUNT 5
    ZMPOP 1 m2 min count 1
    ZMPOP 1 nokey MIN
    ZMPOP 0 m1 MIN
    ZMPOP abc m1 MIN
    ZMPOP 3 m1 MIN
    ZMPOP 1 m1 LEFT
    ZMPOP 1 m1 MIN COUNT 0
    ZMPOP 1 m1 MIN COUNT
    ZMPOP 1 m1 MIN COUNT 1 COUNT 1
    ZMPOP 1 m1 MIN BOGUS
    ZADD one 1 a
    ZRANDMEMBER one
    ZRANDMEMBER one 1
    ZRANDMEMBER one 5 WITHSCORES
    ZRANDMEMBER one -3 WITHSCORES
    ZRANDMEMBER one 0
    ZRANDMEMBER nokey
    ZRANDMEMBER nokey 5
    ZRANDMEMBER one abc
    ZRANDMEMBER one -9223372036854775808
    ZRANDMEMBER one -4611686018427387904 WITHSCORES
    ZRANDMEMBER one 4611686018427387904 WITHSCORES
    ZRANDMEMBER one 1 WITHSCORE
    ZRANDMEMBER one 1 WITHSCORES x
    ZSCAN one 0
    ZSCAN one 0 COUNT 0
    ZSCAN one 0 COUNT abc
    ZSCAN one 0 MATCH x*
    ZSCAN one 0 TYPE zset
    ZSCAN one abc
    ZSCAN nokey 0 BOGUS
    ZADD sc 0.1 a 1e20 b 1.5 c -0 d
    ZSCAN sc 0
"#;

#[test]
fn removals_and_pops_resp2() {
    diff(REMOVALS);
}

#[test]
fn removals_and_pops_resp3() {
    diff(&format!("~HELLO 3\n{REMOVALS}"));
}

const SETOPS: &str = r#"
    ZADD a 1 x 2 y 3 z
    ZADD b 10 y 20 z 30 w
    ZADD c 100 z
    ZUNION 2 a b
    ZUNION 2 a b WITHSCORES
    ZUNION 2 a b WEIGHTS 2 3 WITHSCORES
    ZUNION 2 a b AGGREGATE MIN WITHSCORES
    ZUNION 2 a b AGGREGATE max WITHSCORES
    ZUNION 2 a nokey WITHSCORES
    ZINTER 2 a b WITHSCORES
    ZINTER 3 a b c WITHSCORES
    ZINTER 2 a nokey
    ZINTER 2 a b WEIGHTS 1 -1 AGGREGATE MAX WITHSCORES
    ZDIFF 2 a b WITHSCORES
    ZDIFF 1 a
    ZDIFF 2 nokey a
    ZDIFF 2 a b WEIGHTS 1 2
    ZDIFF 2 a b AGGREGATE SUM
    ZUNION 0 a
    ZUNION -1 a
    ZUNION abc a
    ZUNION 3 a b
    ZUNION 2 a b WEIGHTS 1
    ZUNION 2 a b WEIGHTS 1 abc
    ZUNION 2 a b WEIGHTS 1 nan
    ZUNION 2 a b AGGREGATE avg
    ZUNION 2 a b AGGREGATE
    ZUNION 2 a b BOGUS
    ZUNIONSTORE d 2 a b
    ZRANGE d 0 -1 WITHSCORES
    ZUNIONSTORE d 2 a b WITHSCORES
    ZINTERSTORE d 2 a b WEIGHTS 2 0.5
    ZRANGE d 0 -1 WITHSCORES
    ZINTERSTORE d 2 a nokey
    EXISTS d
    ZDIFFSTORE d 2 a b
    ZRANGE d 0 -1 WITHSCORES
    ZDIFFSTORE d 2 a a
    EXISTS d
    ZUNIONSTORE d 0 a
    ZINTERCARD 2 a b
    ZINTERCARD 2 a b LIMIT 1
    ZINTERCARD 2 a b LIMIT 0
    ZINTERCARD 2 a b LIMIT -1
    ZINTERCARD 0 a
    ZINTERCARD 2 a b WITHSCORES
    ZINTERCARD 2 a nokey
    ZADD inf1 inf x -inf y 5 z
    ZADD inf2 -inf x inf y inf z
    ZUNION 2 inf1 inf2 WITHSCORES
    ZINTER 2 inf1 inf2 WITHSCORES
    ZUNION 2 inf1 inf2 WEIGHTS 0 1 WITHSCORES
    ZINTER 2 inf1 inf2 WEIGHTS 1 0 WITHSCORES
    ZINTER 2 inf1 inf2 WEIGHTS 1 0 AGGREGATE MIN WITHSCORES
    ZINTER 2 inf1 inf2 WEIGHTS 1 0 AGGREGATE MAX WITHSCORES
    SET s v
    ZUNION 2 a s
    ZUNIONSTORE s 1 a
    TYPE s
"#;

#[test]
fn set_operations_resp2() {
    diff(SETOPS);
}

#[test]
fn set_operations_resp3() {
    diff(&format!("~HELLO 3\n{SETOPS}"));
}

#[test]
fn encodings_follow_the_thresholds() {
    diff(
        r#"
        CONFIG SET zset-max-listpack-entries 4
        CONFIG SET zset-max-listpack-value 8
        ZADD z 1 a 2 b 3 c 4 d
        OBJECT ENCODING z
        ZADD z 5 e
        OBJECT ENCODING z
        ZREM z a b c
        OBJECT ENCODING z
        ZRANGESTORE d z 0 -1
        OBJECT ENCODING d
        ZADD long 1 aaaaaaaaaaaaaaa
        OBJECT ENCODING long
        ZADD short 1 a
        ZADD short 2 aaaaaaaaaaaaaaa
        OBJECT ENCODING short
        ZREM short aaaaaaaaaaaaaaa
        OBJECT ENCODING short
        ZUNIONSTORE u 1 short
        OBJECT ENCODING u
        ZADD big 1 a 2 b 3 c 4 d 5 e 6 f
        OBJECT ENCODING big
        ZADD neg -0 a
        ZSCORE neg a
        ZADD neg2 1 a 2 b 3 c 4 d 5 e -0 z
        ZSCORE neg2 z
        ZRANGE neg2 0 0 WITHSCORES
        ~ZSCAN neg2 0 COUNT 100
        ZADD neg3 -0 a
        ZSCAN neg3 0
        CONFIG SET zset-max-listpack-entries 0
        ZADD zero 1 a
        OBJECT ENCODING zero
        "#,
    );
}

#[test]
fn large_sets_rank_and_range_like_redis() {
    let mut script = String::from("CONFIG SET zset-max-listpack-entries 16\n");
    for i in 0..300 {
        script.push_str(&format!("~ZADD big {} m{}\n", (i * 37) % 101, i));
    }
    script.push_str(
        "ZCARD big\nOBJECT ENCODING big\nZRANGE big 0 -1 WITHSCORES\nZRANGE big 10 20 REV\n\
         ZRANK big m17\nZREVRANK big m17\nZCOUNT big 10 (50\nZRANGEBYSCORE big 40 60 LIMIT 5 10\n\
         ZREVRANGEBYSCORE big 60 40 LIMIT 5 10 WITHSCORES\nZREMRANGEBYSCORE big 10 20\n\
         ZREMRANGEBYRANK big 5 30\nZRANGE big 0 -1\nZPOPMIN big 3\nZPOPMAX big 3\nZCARD big\n",
    );
    diff(&script);
}

#[test]
fn edge_cases_match_redis() {
    diff(
        r#"
        SET str v
        ZPOPMIN str 0
        ZPOPMIN nokey 0
        ZRANDMEMBER str 0
        ZRANDMEMBER nokey 0
        ZADD z 1 a 2 b
        ZMPOP 2 nokey str MIN
        ZMPOP 2 z str MIN COUNT 1
        ZINTERCARD 2 z str
        ZINTERCARD 2 nokey str
        ZDIFF 2 nokey str
        ZSCAN z 0 MATCH a
        ZSCAN z 0 MATCH
        ZSCAN z 0 COUNT 1 MATCH b*
        ZSCAN str abc
        ZRANGESTORE dst str 0 -1
        ZREMRANGEBYSCORE str 0 1
        ZREMRANGEBYLEX str a b
        ZREMRANGEBYLEX z a b
        ZCOUNT z "(1" "(2"
        ZCOUNT z "1\x002" 3
        ZADD z "1\x002" c
        COMMAND GETKEYS ZUNIONSTORE d 2 a b WEIGHTS 1 2
        COMMAND GETKEYS ZUNION 2 a b
        COMMAND GETKEYS ZMPOP 2 a b MIN
        COMMAND GETKEYS ZINTERCARD 1 a
        COMMAND GETKEYS ZRANGESTORE d s 0 1
        ZADD z 1 a 2 b 3 c
        ZUNIONSTORE {t}d 2 z z
        ZUNIONSTORE z 2 z z WEIGHTS 2 3
        ZRANGE z 0 -1 WITHSCORES
        ZINTERSTORE z 1 z AGGREGATE MIN WEIGHTS 0.5
        ZRANGE z 0 -1 WITHSCORES
        ZINCRBY z 1.1 a
        ZINCRBY z 0.1 a
        ZADD z INCR 0.2 a
        ZSCORE z a
        "#,
    );
}

#[test]
fn plain_sets_take_part_in_zset_operations_with_score_one() {
    crate::support::diff(
        r#"
        SADD s a b c
        SADD ints 1 2 3
        ZADD z 5 a 7 x
        ZUNION 2 s z WITHSCORES
        ZINTER 2 s z WITHSCORES
        ZDIFF 2 s z WITHSCORES
        ZUNIONSTORE out 3 s z ints WEIGHTS 2 3 4
        ZRANGE out 0 -1 WITHSCORES
        ZINTERSTORE out2 2 s z AGGREGATE MAX
        ZRANGE out2 0 -1 WITHSCORES
        ZINTERCARD 2 s z
        ZDIFFSTORE out3 2 ints z
        ZRANGE out3 0 -1 WITHSCORES
        "#,
    );
}

#[test]
fn zscan_prints_scores_like_redis_in_both_encodings() {
    let mut script = String::from(
        "ZADD small 1.1 a 1e-5 b 123456789.123 c 9.8813129168249309e-323 d\nZSCAN small 0\n",
    );
    for j in 0..200 {
        script.push_str(&format!("ZADD big 1.1 m{j}\n"));
    }
    script.push_str("ZADD big 123456789.123 x 1e-5 y 1e20 z 9.8813129168249309e-323 w -inf n\n");
    script.push_str("ZREM big ");
    for j in 0..200 {
        script.push_str(&format!("m{j} "));
    }
    script.push('\n');
    // One member per call: the table's order is ours, the scores must match.
    for m in ["x", "y", "z", "w", "n"] {
        script.push_str(&format!("ZSCAN big 0 COUNT 1000 MATCH {m}\n"));
    }
    crate::support::diff(&script);
}

// ---------------------------------------------------------------------------
// Blocking pops.

use crate::lists::{compare, text, wait_blocked};
use crate::support::Conn;

const BLOCKING_IMMEDIATE: &str = r#"
    ZADD z 1 a 2 b 3 c 4 d 5 e
    ZADD y 1.5 m
    BZPOPMIN z 0
    BZPOPMAX z 0
    BZPOPMIN nokey y z 0
    BZPOPMAX nokey z 0.01
    BZMPOP 0 2 nokey z MIN
    BZMPOP 0 1 z MAX COUNT 10
    EXISTS z
    BZPOPMIN nokey 0.01
    BZPOPMAX nokey other 0.001
    BZMPOP 0.01 1 nokey MIN
    BZMPOP 0.01 2 nokey other MAX COUNT 3
    BZPOPMIN k -1
    BZPOPMIN k x
    BZPOPMIN k nan
    BZPOPMIN k inf
    BZPOPMIN k 1e400
    BZPOPMIN k ""
    BZPOPMAX k -0.5
    BZMPOP -1 1 k MIN
    BZMPOP x 1 k MIN
    BZMPOP 0 0 k MIN
    BZMPOP -1 x k MIN
    BZMPOP 0 3 a b MIN
    BZMPOP -1 1 a middle
    BZMPOP 0 1 a MIN COUNT 0
    BZMPOP 0 1 a MIN COUNT -1
    BZMPOP 0 1 a MIN COUNT 1 COUNT 2
    BZMPOP 0 1 a MIN foo
    SET s str
    BZPOPMIN s 0
    BZPOPMAX nokey s 0
    BZMPOP 0 2 s y MIN
    ZADD y 2 n
    BZMPOP 0 2 y s MAX
    BZPOPMIN
    BZPOPMIN k
    BZMPOP 0 1
    BZMPOP 0 1 k
"#;

#[test]
fn blocking_zset_pops_that_need_not_block_match_redis() {
    diff(BLOCKING_IMMEDIATE);
    diff(&format!("~HELLO 3\n{BLOCKING_IMMEDIATE}"));
}

#[test]
fn zset_waiters_are_served_in_fifo_order_by_one_zadd() {
    compare(|port| {
        let mut ctl = Conn::open(port);
        ctl.cmd(&["FLUSHALL"]);
        let mut c1 = Conn::open(port);
        let mut c2 = Conn::open(port);
        let mut c3 = Conn::open(port);
        c3.cmd(&["HELLO", "3"]);
        c1.send(&["BZPOPMIN", "z", "0"]);
        wait_blocked(&mut ctl, 1);
        c2.send(&["BZPOPMAX", "other", "z", "0"]);
        wait_blocked(&mut ctl, 2);
        c3.send(&["BZMPOP", "0", "1", "z", "MIN", "COUNT", "5"]);
        wait_blocked(&mut ctl, 3);
        let mut out = vec![ctl.cmd(&["ZADD", "z", "1", "a", "2", "b", "3", "c", "4.5", "d"])];
        // The add and the pops it feeds are one step: nothing is left.
        out.push(ctl.cmd(&["EXISTS", "z"]));
        out.push(text(c1.read()));
        out.push(text(c2.read()));
        out.push(text(c3.read()));
        wait_blocked(&mut ctl, 0);
        out
    });
}

#[test]
fn zincrby_and_zunionstore_wake_zset_waiters() {
    compare(|port| {
        let mut ctl = Conn::open(port);
        ctl.cmd(&["FLUSHALL"]);
        let mut c1 = Conn::open(port);
        let mut c2 = Conn::open(port);
        c1.send(&["BZPOPMAX", "z", "0"]);
        wait_blocked(&mut ctl, 1);
        let mut out = vec![ctl.cmd(&["ZINCRBY", "z", "2.5", "m"])];
        out.push(text(c1.read()));
        c2.send(&["BZMPOP", "0", "1", "dst", "MAX", "COUNT", "2"]);
        wait_blocked(&mut ctl, 1);
        out.push(ctl.cmd(&["ZADD", "src", "1", "a", "2", "b", "3", "c"]));
        out.push(ctl.cmd(&["ZUNIONSTORE", "dst", "1", "src"]));
        out.push(text(c2.read()));
        out.push(ctl.cmd(&["ZRANGE", "dst", "0", "-1", "WITHSCORES"]));
        out
    });
}

#[test]
fn zset_waiters_ignore_lists_and_list_waiters_ignore_zsets() {
    compare(|port| {
        let mut ctl = Conn::open(port);
        ctl.cmd(&["FLUSHALL"]);
        let mut zc = Conn::open(port);
        let mut lc = Conn::open(port);
        zc.send(&["BZPOPMIN", "k", "0"]);
        wait_blocked(&mut ctl, 1);
        lc.send(&["BLPOP", "k", "0"]);
        wait_blocked(&mut ctl, 2);
        // A list at k serves the list waiter behind the zset one.
        let mut out = vec![ctl.cmd(&["RPUSH", "k", "v"])];
        out.push(text(lc.read()));
        wait_blocked(&mut ctl, 1);
        // Another type, then a delete, leave the zset waiter blocked.
        out.push(ctl.cmd(&["SET", "k", "str"]));
        out.push(ctl.cmd(&["DEL", "k"]));
        out.push(
            ctl.cmd(&["INFO", "clients"])
                .contains("blocked_clients:1")
                .to_string(),
        );
        out.push(ctl.cmd(&["ZADD", "k", "7", "m"]));
        out.push(text(zc.read()));
        wait_blocked(&mut ctl, 0);
        out
    });
}

#[test]
fn zset_timeouts_reply_null_in_each_protocol() {
    compare(|port| {
        let mut ctl = Conn::open(port);
        ctl.cmd(&["FLUSHALL"]);
        let mut c2 = Conn::open(port);
        let mut c3 = Conn::open(port);
        c3.cmd(&["HELLO", "3"]);
        let mut out = Vec::new();
        for cmd in [
            vec!["BZPOPMIN", "k", "0.05"],
            vec!["BZPOPMAX", "k", "j", "0.05"],
            vec!["BZMPOP", "0.05", "1", "k", "MAX", "COUNT", "2"],
        ] {
            out.push(text(c2.raw(&cmd)));
            out.push(text(c3.raw(&cmd)));
        }
        wait_blocked(&mut ctl, 0);
        out
    });
}

#[test]
fn a_zset_waiter_on_several_keys_is_served_once() {
    compare(|port| {
        let mut ctl = Conn::open(port);
        ctl.cmd(&["FLUSHALL"]);
        let mut c = Conn::open(port);
        c.send(&["BZPOPMIN", "a", "b", "a", "c", "0"]);
        wait_blocked(&mut ctl, 1);
        let mut out = vec![ctl.cmd(&["ZADD", "c", "1", "x"])];
        out.push(text(c.read()));
        wait_blocked(&mut ctl, 0);
        out.push(ctl.cmd(&["ZADD", "a", "1", "x"]));
        out.push(ctl.cmd(&["ZADD", "b", "1", "x"]));
        out.push(ctl.cmd(&["ZCARD", "a"]));
        out.push(ctl.cmd(&["ZCARD", "b"]));
        out
    });
}

#[test]
fn client_unblock_releases_a_zset_waiter() {
    compare(|port| {
        let mut ctl = Conn::open(port);
        ctl.cmd(&["FLUSHALL"]);
        let mut c = Conn::open(port);
        let id = c.cmd(&["CLIENT", "ID"]);
        let id = id.trim_start_matches(':').trim().to_string();
        c.send(&["BZMPOP", "0", "1", "z", "MIN"]);
        wait_blocked(&mut ctl, 1);
        let mut out = vec![ctl.cmd(&["CLIENT", "UNBLOCK", &id, "ERROR"])];
        out.push(text(c.read()));
        c.send(&["BZPOPMAX", "z", "0"]);
        wait_blocked(&mut ctl, 1);
        out.push(ctl.cmd(&["CLIENT", "UNBLOCK", &id]));
        out.push(text(c.read()));
        out
    });
}

#[test]
fn rename_and_move_wake_zset_waiters_and_resp3_gets_doubles() {
    compare(|port| {
        let mut ctl = Conn::open(port);
        ctl.cmd(&["FLUSHALL"]);
        let mut c1 = Conn::open(port);
        let mut c2 = Conn::open(port);
        c1.cmd(&["HELLO", "3"]);
        c1.send(&["BZPOPMIN", "w", "0"]);
        wait_blocked(&mut ctl, 1);
        let mut out = vec![ctl.cmd(&["ZADD", "tmp", "2.5", "x", "3", "y"])];
        out.push(ctl.cmd(&["RENAME", "tmp", "w"]));
        out.push(text(c1.read()));
        c2.send(&["BZMPOP", "0", "1", "w2", "MAX", "COUNT", "3"]);
        wait_blocked(&mut ctl, 1);
        out.push(ctl.cmd(&["SELECT", "1"]));
        out.push(ctl.cmd(&["ZADD", "w2", "1", "a", "-inf", "b"]));
        out.push(ctl.cmd(&["MOVE", "w2", "0"]));
        out.push(text(c2.read()));
        out.push(ctl.cmd(&["SELECT", "0"]));
        out.push(ctl.cmd(&["ZRANGE", "w", "0", "-1", "WITHSCORES"]));
        out.push(ctl.cmd(&["EXISTS", "w2"]));
        out
    });
}

/// The packed encoding's every member and score form (integer-looking
/// members, small and large integral scores, f32- and f64-only scores,
/// infinities, -0, ties broken by member bytes) reads back as Redis's, and
/// conversions keep order and scores.
#[test]
fn packed_member_and_score_forms_match_redis() {
    diff(
        r#"
        ZADD z 0 a 2047 b 2048 c -1 d -4096 e -4097 f 1e10 g -3e15 h 9.2e18 i 0.5 j 1.1 k inf l -inf m -0 n
        ZADD z 7 12 7 -5 7 007 7 -0 7 9223372036854775807 7 -9223372036854775808 7 123456789 7 abc
        ZADD z 100 member:042 100 member:041 100 looooooooooooooooooooooooooooooooooooooooooooong
        OBJECT ENCODING z
        ZRANGE z 0 -1 WITHSCORES
        ZREVRANGE z 0 -1 WITHSCORES
        ZSCORE z n
        ZSCORE z 12
        ZSCORE z 007
        ZMSCORE z -5 -0 9223372036854775807 nosuch
        ZRANK z 123456789
        ZREVRANK z abc
        ZRANGEBYSCORE z 7 7
        ZRANGEBYLEX z 7 - +
        ZRANGE z (0 (2048 BYSCORE LIMIT 1 3
        ZINCRBY z 2041 12
        ZADD z XX CH 3000 member:042
        ZREM z 007 -9223372036854775808 nosuch
        ZRANGE z 0 -1 WITHSCORES
        ZPOPMIN z 2
        ZPOPMAX z 2
        ZREMRANGEBYRANK z 1 2
        ZREMRANGEBYSCORE z 7 7
        ZRANGE z 0 -1 WITHSCORES
        CONFIG SET zset-max-listpack-entries 3
        ZADD z 1 x
        OBJECT ENCODING z
        ZRANGE z 0 -1 WITHSCORES
        ZUNIONSTORE u 1 z
        OBJECT ENCODING u
        ZRANGESTORE r z 0 1
        OBJECT ENCODING r
        ZRANGE r 0 -1 WITHSCORES
        CONFIG SET zset-max-listpack-entries 128
        ZUNIONSTORE u 1 z
        OBJECT ENCODING u
        ZRANGE u 0 -1 WITHSCORES
        "#,
    );
}
