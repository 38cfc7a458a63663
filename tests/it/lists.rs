//! List commands and blocking pops, compared with redis-server: scripts for
//! every command, option and error in RESP2 and RESP3, and multi-client
//! blocking scenarios run on both servers with their replies compared.

use crate::support::{damselfly, diff, redis, Conn};
use std::time::{Duration, Instant};

const LISTS: &str = r#"
    RPUSH l a b c
    LPUSH l z y
    LRANGE l 0 -1
    LLEN l
    LLEN nokey
    RPUSH l ""
    RPUSH l "bin\x00val"
    LRANGE l -2 -1
    LPUSHX nokey a
    RPUSHX nokey a
    LPUSHX l front1 front2
    RPUSHX l back
    LRANGE l 0 -1
    LPOP l
    RPOP l
    LPOP l 2
    RPOP l 0
    LPOP l -1
    LPOP l x
    LPOP l 1 2
    RPOP l 1 2
    LPOP nokey
    LPOP nokey 0
    LPOP nokey 3
    RPOP nokey -1
    LPOP l 100
    EXISTS l
    LPOP l
    LPOP l 1
    RPUSH l 1 2 3 4 5 6 7 8 9 10
    LRANGE l 0 0
    LRANGE l -100 100
    LRANGE l 5 2
    LRANGE l 20 30
    LRANGE l -3 -5
    LRANGE l x 1
    LRANGE l 1 9223372036854775808
    LRANGE l -9223372036854775808 9223372036854775807
    LRANGE nokey 0 -1
    LRANGE nokey x 1
    LINDEX l 0
    LINDEX l -1
    LINDEX l 10
    LINDEX l -11
    LINDEX l x
    LINDEX nokey x
    LINDEX nokey 0
    LSET l 0 first
    LSET l -1 last
    LSET l 10 x
    LSET l -11 x
    LSET l x y
    LSET nokey 0 x
    LSET nokey x y
    LRANGE l 0 -1
    LINSERT l BEFORE 5 before5
    LINSERT l after 5 after5
    LINSERT l before nope x
    LINSERT l middle 5 x
    LINSERT nokey before 5 x
    LINSERT nokey middle 5 x
    LRANGE l 0 -1
    RPUSH r a b a c a d a
    LREM r 2 a
    LRANGE r 0 -1
    LREM r -1 a
    LRANGE r 0 -1
    LREM r 0 a
    LREM r 0 zz
    LREM r x a
    LREM nokey 1 a
    LREM r 0 b
    LREM r 0 c
    LREM r 0 d
    EXISTS r
    LTRIM l 1 -2
    LRANGE l 0 -1
    LTRIM l 2 1
    EXISTS l
    LTRIM nokey 0 1
    LTRIM nokey a b
    RPUSH l a b c
    LTRIM l -100 100
    LTRIM l x 1
    LRANGE l 0 -1
    OBJECT ENCODING l
    TYPE l
    SET s str
    LPUSH s a
    RPUSH s a
    LPUSHX s a
    RPUSHX s a
    LPOP s
    RPOP s 2
    LLEN s
    LRANGE s 0 1
    LRANGE s x 1
    LINDEX s 0
    LINDEX s x
    LSET s 0 x
    LINSERT s before a b
    LREM s 0 x
    LTRIM s 0 1
    LPOS s a
    LPOS s a RANK 0
    LMOVE s l left left
    LMOVE l s left left
    RPOPLPUSH s l
    LMPOP 1 s left
    LPUSH
    LPUSH k
    LRANGE k 0
    LPOP
    LINSERT k before a
"#;

#[test]
fn list_commands_match_redis() {
    diff(LISTS);
}

#[test]
fn list_commands_match_redis_resp3() {
    diff(&format!("~HELLO 3\n{LISTS}"));
}

const POS_MOVE_MPOP: &str = r#"
    RPUSH l a b c a b c a
    LPOS l a
    LPOS l c
    LPOS l z
    LPOS l a RANK 2
    LPOS l a RANK -1
    LPOS l a RANK -2
    LPOS l a RANK 5
    LPOS l a COUNT 0
    LPOS l a COUNT 2
    LPOS l a COUNT 2 RANK -1
    LPOS l a COUNT 0 MAXLEN 4
    LPOS l a MAXLEN 1
    LPOS l c MAXLEN 1
    LPOS l a RANK 0
    LPOS l a RANK x
    LPOS l a COUNT -1
    LPOS l a COUNT x
    LPOS l a MAXLEN -1
    LPOS l a MAXLEN x
    LPOS l a RANK -9223372036854775808
    LPOS l a RANK 9223372036854775807
    LPOS l a RANK
    LPOS l a FOO 1
    LPOS l a COUNT 1 COUNT 2
    LPOS nokey a
    LPOS nokey a COUNT 0
    LPOS nokey a RANK 0
    LMOVE l dst LEFT RIGHT
    LMOVE l dst right left
    LMOVE l dst Left Left
    LMOVE l dst up left
    LMOVE l dst left down
    LMOVE nokey dst left left
    LRANGE dst 0 -1
    RPOPLPUSH l dst
    RPOPLPUSH nokey dst
    RPUSH one x
    LMOVE one one left right
    LRANGE one 0 -1
    RPOPLPUSH one one
    RPUSH two x y
    LMOVE two two left right
    LRANGE two 0 -1
    LMOVE one other left left
    EXISTS one
    SET s str
    LMOVE nokey s left left
    LMOVE two s left left
    LRANGE two 0 -1
    LMPOP 1 l LEFT
    LMPOP 1 l right COUNT 2
    LMPOP 2 nokey l left COUNT 100
    LMPOP 2 nokey l left
    LMPOP 0 l left
    LMPOP -1 l left
    LMPOP x l left
    LMPOP 3 a b left
    LMPOP 1 a b left
    LMPOP 1 a middle
    LMPOP 1 a left count
    LMPOP 1 a left count 0
    LMPOP 1 a left count -1
    LMPOP 1 a left count x
    LMPOP 1 a left count 1 count 2
    LMPOP 1 a left foo
    LMPOP 2 s two left
    LMPOP 2 two s left
    LMPOP 2 a
    LMPOP 1
"#;

#[test]
fn lpos_lmove_lmpop_match_redis() {
    diff(POS_MOVE_MPOP);
}

#[test]
fn lpos_lmove_lmpop_match_redis_resp3() {
    diff(&format!("~HELLO 3\n{POS_MOVE_MPOP}"));
}

const BLOCKING_IMMEDIATE: &str = r#"
    RPUSH l a b c d e
    BLPOP l 0
    BRPOP nokey l 0
    BLPOP l 1.5
    BLMOVE l dst left right 0
    BRPOPLPUSH l dst 0
    BLMPOP 0 2 nokey dst right COUNT 5
    BLPOP nokey 0.01
    BRPOP nokey 0.001
    BLMOVE nokey dst left left 0.01
    BRPOPLPUSH nokey dst 0.01
    BLMPOP 0.01 1 nokey left
    BLMPOP 0.01 1 nokey left COUNT 2
    BLPOP l -1
    BLPOP l x
    BLPOP l nan
    BLPOP l inf
    BLPOP l 1e400
    BLPOP l ""
    BLPOP l " 1"
    BLMOVE l dst up left 0
    BLMOVE l dst left left -1
    BLMOVE l dst left left x
    BRPOPLPUSH l dst -0.5
    BRPOPLPUSH l dst foo
    BLMPOP -1 1 l left
    BLMPOP x 1 l left
    BLMPOP 0 0 l left
    BLMPOP -1 x l left
    BLMPOP 0 3 a b left
    BLMPOP -1 1 a middle
    BLMPOP 0 1 a left count 0
    SET s str
    BLPOP s 0
    BLPOP nokey s 0
    BLMOVE s dst left left 0
    RPUSH l a
    BLMOVE l s left left 0
    BLMPOP 0 2 s l left
    BLPOP
    BLPOP k
    BLMPOP 0 1
"#;

#[test]
fn blocking_commands_that_need_not_block_match_redis() {
    diff(BLOCKING_IMMEDIATE);
    diff(&format!("~HELLO 3\n{BLOCKING_IMMEDIATE}"));
}

#[test]
fn client_unblock_errors_match_redis() {
    diff(
        r#"
        CLIENT UNBLOCK x
        CLIENT UNBLOCK 1 foo
        CLIENT UNBLOCK 1 timeout x
        CLIENT UNBLOCK 99999
        CLIENT UNBLOCK -1 error
        CLIENT UNBLOCK
        "#,
    );
}

#[test]
fn quicklist_encoding_and_large_values() {
    let big = "x".repeat(10_000);
    diff(&format!(
        "RPUSH l {big} small\nOBJECT ENCODING l\nLINDEX l 0\nLPOS l {big}\nLREM l 1 {big}\nLRANGE l 0 -1"
    ));
}

// ---------------------------------------------------------------------------
// Blocking with several clients, run on both servers and compared.

/// Polls INFO until `n` clients are blocked.
pub(crate) fn wait_blocked(c: &mut Conn, n: usize) {
    let want = format!("blocked_clients:{n}\r\n");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if c.cmd(&["INFO", "clients"]).contains(&want) {
            return;
        }
        assert!(Instant::now() < deadline, "never saw {want:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

pub(crate) fn text(b: Vec<u8>) -> String {
    String::from_utf8_lossy(&b).into_owned()
}

/// Runs `scenario` against redis-server and damselfly; the transcripts
/// must be identical.
pub(crate) fn compare(scenario: impl Fn(u16) -> Vec<String>) {
    let r = redis();
    let d = damselfly(&[]);
    let want = scenario(r.port);
    let got = scenario(d.port);
    assert_eq!(want, got, "redis (left) and damselfly (right) differ");
}

#[test]
fn waiters_on_one_key_are_served_in_fifo_order() {
    compare(|port| {
        let mut ctl = Conn::open(port);
        ctl.cmd(&["FLUSHALL"]);
        let mut c1 = Conn::open(port);
        let mut c2 = Conn::open(port);
        let mut c3 = Conn::open(port);
        c1.send(&["BLPOP", "k", "0"]);
        wait_blocked(&mut ctl, 1);
        c2.send(&["BRPOP", "k", "other", "0"]);
        wait_blocked(&mut ctl, 2);
        c3.send(&["BLMPOP", "0", "1", "k", "LEFT", "COUNT", "5"]);
        wait_blocked(&mut ctl, 3);
        let mut out = vec![ctl.cmd(&["RPUSH", "k", "a", "b", "c", "d"])];
        // The pushes and the pops they feed are one step: nothing is left.
        out.push(ctl.cmd(&["EXISTS", "k"]));
        out.push(text(c1.read()));
        out.push(text(c2.read()));
        out.push(text(c3.read()));
        wait_blocked(&mut ctl, 0);
        out
    });
}

#[test]
fn blmove_chains_into_a_blocked_pop_on_its_destination() {
    compare(|port| {
        let mut ctl = Conn::open(port);
        ctl.cmd(&["FLUSHALL"]);
        let mut mover = Conn::open(port);
        let mut popper = Conn::open(port);
        let mut legacy = Conn::open(port);
        popper.send(&["BLPOP", "dst", "0"]);
        wait_blocked(&mut ctl, 1);
        mover.send(&["BLMOVE", "src", "dst", "RIGHT", "LEFT", "0"]);
        wait_blocked(&mut ctl, 2);
        legacy.send(&["BRPOPLPUSH", "src2", "dst2", "0"]);
        wait_blocked(&mut ctl, 3);
        let mut out = vec![ctl.cmd(&["LPUSH", "src", "x", "y"])];
        out.push(text(mover.read()));
        out.push(text(popper.read()));
        out.push(ctl.cmd(&["LRANGE", "src", "0", "-1"]));
        out.push(ctl.cmd(&["EXISTS", "dst"]));
        out.push(ctl.cmd(&["RPUSH", "src2", "v"]));
        out.push(text(legacy.read()));
        out.push(ctl.cmd(&["LRANGE", "dst2", "0", "-1"]));
        out
    });
}

#[test]
fn wrong_destination_type_errors_the_waiter_and_keeps_the_value() {
    compare(|port| {
        let mut ctl = Conn::open(port);
        ctl.cmd(&["FLUSHALL"]);
        let mut c = Conn::open(port);
        c.send(&["BRPOPLPUSH", "blist", "target", "0"]);
        wait_blocked(&mut ctl, 1);
        let mut out = vec![ctl.cmd(&["SET", "target", "nolist"])];
        out.push(ctl.cmd(&["LPUSH", "blist", "foo"]));
        out.push(text(c.read()));
        out.push(ctl.cmd(&["LRANGE", "blist", "0", "-1"]));
        out.push(ctl.cmd(&["GET", "target"]));
        out
    });
}

#[test]
fn timeouts_reply_null_in_each_protocol() {
    compare(|port| {
        let mut ctl = Conn::open(port);
        ctl.cmd(&["FLUSHALL"]);
        let mut c2 = Conn::open(port);
        let mut c3 = Conn::open(port);
        c3.cmd(&["HELLO", "3"]);
        let mut out = Vec::new();
        for cmd in [
            vec!["BLPOP", "k", "0.05"],
            vec!["BLMOVE", "k", "d", "LEFT", "LEFT", "0.05"],
            vec!["BLMPOP", "0.05", "1", "k", "LEFT"],
        ] {
            out.push(text(c2.raw(&cmd)));
            out.push(text(c3.raw(&cmd)));
        }
        wait_blocked(&mut ctl, 0);
        out
    });
}

#[test]
fn a_waiter_on_several_keys_is_served_once_by_whichever_comes_first() {
    compare(|port| {
        let mut ctl = Conn::open(port);
        ctl.cmd(&["FLUSHALL"]);
        let mut c = Conn::open(port);
        c.send(&["BLPOP", "a", "b", "a", "c", "0"]);
        wait_blocked(&mut ctl, 1);
        let mut out = vec![ctl.cmd(&["RPUSH", "c", "1"])];
        out.push(text(c.read()));
        wait_blocked(&mut ctl, 0);
        // Its registrations on a and b are gone: these pushes stay.
        out.push(ctl.cmd(&["RPUSH", "a", "1"]));
        out.push(ctl.cmd(&["RPUSH", "b", "1"]));
        out.push(ctl.cmd(&["LLEN", "a"]));
        out.push(ctl.cmd(&["LLEN", "b"]));
        out
    });
}

#[test]
fn blocked_clients_survive_flushall_deletes_and_type_changes() {
    compare(|port| {
        let mut ctl = Conn::open(port);
        ctl.cmd(&["FLUSHALL"]);
        let mut c = Conn::open(port);
        c.send(&["BLPOP", "k", "0"]);
        wait_blocked(&mut ctl, 1);
        let mut out = vec![ctl.cmd(&["FLUSHALL"])];
        out.push(ctl.cmd(&["SET", "k", "str"]));
        out.push(ctl.cmd(&["DEL", "k"]));
        out.push(
            ctl.cmd(&["INFO", "clients"])
                .contains("blocked_clients:1")
                .to_string(),
        );
        out.push(ctl.cmd(&["RPUSH", "k", "v"]));
        out.push(text(c.read()));
        out
    });
}

#[test]
fn swapdb_and_select_wake_the_right_waiters() {
    compare(|port| {
        let mut ctl = Conn::open(port);
        ctl.cmd(&["FLUSHALL"]);
        let mut c = Conn::open(port);
        c.cmd(&["SELECT", "9"]);
        c.send(&["BLPOP", "k", "0"]);
        wait_blocked(&mut ctl, 1);
        // A push in another DB does not wake it.
        let mut out = vec![ctl.cmd(&["RPUSH", "k", "db0"])];
        out.push(ctl.cmd(&["SWAPDB", "0", "9"]));
        out.push(text(c.read()));
        out.push(ctl.cmd(&["EXISTS", "k"]));
        out
    });
}

#[test]
fn client_unblock_releases_with_timeout_or_error() {
    compare(|port| {
        let mut ctl = Conn::open(port);
        ctl.cmd(&["FLUSHALL"]);
        let mut c = Conn::open(port);
        let id = c
            .cmd(&["CLIENT", "ID"])
            .trim_start_matches(':')
            .trim()
            .to_string();
        let mut out = Vec::new();
        c.send(&["BLPOP", "k", "0"]);
        wait_blocked(&mut ctl, 1);
        out.push(ctl.cmd(&["CLIENT", "UNBLOCK", &id]));
        out.push(text(c.read()));
        c.send(&["BLMOVE", "k", "d", "LEFT", "LEFT", "0"]);
        wait_blocked(&mut ctl, 1);
        out.push(ctl.cmd(&["CLIENT", "UNBLOCK", &id, "ERROR"]));
        out.push(text(c.read()));
        out.push(ctl.cmd(&["CLIENT", "UNBLOCK", &id, "TIMEOUT"]));
        wait_blocked(&mut ctl, 0);
        out
    });
}

#[test]
fn requests_pipelined_behind_a_blocked_one_wait_their_turn() {
    compare(|port| {
        let mut ctl = Conn::open(port);
        ctl.cmd(&["FLUSHALL"]);
        let mut c = Conn::open(port);
        let mut batch = Conn::encode(&["PING", "before"]);
        batch.extend(Conn::encode(&["BLPOP", "k", "0"]));
        batch.extend(Conn::encode(&["LLEN", "k"]));
        batch.extend(Conn::encode(&["PING", "after"]));
        c.send_raw(&batch);
        let mut out = vec![text(c.read())];
        wait_blocked(&mut ctl, 1);
        out.push(ctl.cmd(&["RPUSH", "k", "a", "b"]));
        out.push(text(c.read()));
        out.push(text(c.read()));
        out.push(text(c.read()));
        out
    });
}

#[test]
fn a_client_that_disconnects_while_blocked_is_forgotten() {
    compare(|port| {
        let mut ctl = Conn::open(port);
        ctl.cmd(&["FLUSHALL"]);
        let mut gone = Conn::open(port);
        gone.send(&["BLPOP", "k", "0"]);
        let mut stays = Conn::open(port);
        wait_blocked(&mut ctl, 1);
        stays.send(&["BLPOP", "k", "0"]);
        wait_blocked(&mut ctl, 2);
        drop(gone);
        wait_blocked(&mut ctl, 1);
        let mut out = vec![ctl.cmd(&["RPUSH", "k", "a", "b"])];
        out.push(text(stays.read()));
        out.push(ctl.cmd(&["LRANGE", "k", "0", "-1"]));
        out
    });
}

/// Many pushers on both worker threads against many blocked poppers: every
/// value is delivered exactly once.
#[test]
fn concurrent_pushers_and_blocked_poppers_lose_nothing() {
    let d = damselfly(&[]);
    let port = d.port;
    let poppers: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(move || {
                let mut c = Conn::open(port);
                let mut got = Vec::new();
                for _ in 0..50 {
                    let r = text(c.raw(&["BLPOP", "q1", "q2", "5"]));
                    got.push(r);
                }
                got
            })
        })
        .collect();
    let pushers: Vec<_> = (0..4)
        .map(|p| {
            std::thread::spawn(move || {
                let mut c = Conn::open(port);
                for i in 0..100 {
                    let key = if i % 2 == 0 { "q1" } else { "q2" };
                    c.raw(&["RPUSH", key, &format!("{p}-{i}")]);
                }
            })
        })
        .collect();
    for p in pushers {
        p.join().expect("pusher");
    }
    let mut all: Vec<String> = poppers
        .into_iter()
        .flat_map(|p| p.join().expect("popper"))
        .collect();
    assert!(
        all.iter().all(|r| r.starts_with("*2\r\n")),
        "a pop timed out"
    );
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 400);
    let mut c = Conn::open(port);
    assert!(c.cmd(&["INFO", "clients"]).contains("blocked_clients:0"));
}

/// Lists spread over many packed nodes (small and byte-sized
/// `list-max-listpack-size`) answer every command as Redis does.
#[test]
fn lists_across_many_nodes_match_redis() {
    for fill in ["1", "2", "3", "-1"] {
        diff(&format!(
            r#"
            CONFIG SET list-max-listpack-size {fill}
            RPUSH l a b c d e f g h i j
            LPUSH l 1 2 3 4 5
            OBJECT ENCODING l
            LRANGE l 0 -1
            LRANGE l 3 9
            LRANGE l -4 -2
            LINDEX l 0
            LINDEX l 7
            LINDEX l -3
            LINSERT l BEFORE e x
            LINSERT l AFTER 5 y
            LSET l 4 {long}
            LSET l -1 z
            LRANGE l 0 -1
            LPOS l a
            LPOS l x RANK -1 COUNT 0
            RPUSH l a a a
            LREM l 2 a
            LREM l -1 a
            LRANGE l 0 -1
            LTRIM l 2 -3
            LRANGE l 0 -1
            LMOVE l m LEFT RIGHT
            RPOPLPUSH l m
            LPOP l 3
            RPOP l 2
            LLEN l
            LRANGE l 0 -1
            LRANGE m 0 -1
            SORT l ALPHA STORE s
            LRANGE s 0 -1
            DEL l m s
            "#,
            long = "v".repeat(5000),
        ));
    }
}
