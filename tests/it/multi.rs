//! MULTI/EXEC/DISCARD/WATCH/UNWATCH compared with redis-server: queueing and
//! its errors, EXEC's replies, WATCH against every kind of change, and
//! transactions seen by other clients (atomicity, blocked pops).

use crate::lists::{compare, text, wait_blocked};
use crate::support::{damselfly, diff, Conn};

const QUEUEING: &str = r#"
    EXEC
    DISCARD
    MULTI
    MULTI
    WATCH x
    SET a 1
    INCR a
    LPUSH a x
    GET a
    EXEC
    MULTI
    SET a 1
    NOSUCHCOMMAND x y
    SET b 2
    EXEC
    EXISTS a b
    MULTI
    GET
    EXEC
    MULTI
    SHUTDOWN
    EXEC
    MULTI
    SET x 1
    DISCARD
    GET x
    EXEC
    MULTI
    EXEC
    MULTI
    SELECT 3
    SET y 1
    SELECT 0
    EXISTS y
    EXEC
    MULTI
    RESET
    EXEC
    MULTI
    PING
    ECHO hi
    DBSIZE
    KEYS *
    FLUSHDB
    DBSIZE
    EXEC
    UNWATCH
"#;

#[test]
fn queueing_and_exec_resp2() {
    diff(QUEUEING);
}

#[test]
fn queueing_and_exec_resp3() {
    diff(&format!("~HELLO 3\n{QUEUEING}"));
}

const BLOCKING: &str = r#"
    SET str x
    MULTI
    BLPOP nolist 0
    BRPOP nolist 1
    BLMOVE nolist dst LEFT RIGHT 0
    BRPOPLPUSH nolist dst 0
    BLMPOP 0 1 nolist LEFT
    BZPOPMIN nozset 0
    BZPOPMAX nozset 0
    BZMPOP 0 1 nozset MIN
    BLPOP str 0
    BLPOP nolist -1
    RPUSH l a
    BLPOP l 0
    EXEC
"#;

#[test]
fn blocking_commands_inside_exec_do_not_block() {
    diff(BLOCKING);
    diff(&format!("~HELLO 3\n{BLOCKING}"));
}

const WATCHES: &str = r#"
    SET x 30
    WATCH x
    SET x 40
    MULTI
    PING
    EXEC
    WATCH x
    MULTI
    PING
    EXEC
    SET x 1
    WATCH x nokey x
    UNWATCH
    SET x 2
    MULTI
    PING
    EXEC
    WATCH x
    EXPIRE x 10
    MULTI
    PING
    EXEC
    WATCH x
    SET x 10
    MULTI
    DISCARD
    MULTI
    INCR x
    EXEC
    WATCH x
    FLUSHALL
    MULTI
    PING
    EXEC
    WATCH x
    FLUSHDB
    MULTI
    PING
    EXEC
    SET x 1
    WATCH x
    FLUSHDB
    MULTI
    PING
    EXEC
    SELECT 5
    SET x 30
    WATCH x
    SELECT 1
    SET x 10
    SELECT 5
    MULTI
    PING
    EXEC
    FLUSHALL
    SELECT 0
    SET x 30
    WATCH x
    SWAPDB 0 1
    MULTI
    PING
    EXEC
    FLUSHALL
    SELECT 1
    SET x 30
    SELECT 0
    WATCH x
    SWAPDB 0 1
    MULTI
    PING
    EXEC
    LPUSH foo bar
    WATCH foo
    SORT emptylist STORE foo
    MULTI
    PING
    EXEC
    WATCH y
    SET y 1
    MULTI
    GET y
    EXEC
    EXEC
"#;

#[test]
fn watch_resp2() {
    diff(WATCHES);
}

#[test]
fn watch_resp3() {
    diff(&format!("~HELLO 3\n{WATCHES}"));
}

/// Keys already expired when watched: their removal (lazy, FLUSHDB,
/// SWAPDB with nothing or another stale key) is no change; a live watched
/// key that expires before EXEC fails it. The test servers refuse DEBUG, so
/// the transcript was taken from redis-server 7.0.15 started with
/// `--enable-debug-command yes`.
#[test]
fn watch_and_stale_keys() {
    let d = damselfly(&[]);
    let mut c = Conn::open(d.port);
    let mut got = String::new();
    for line in STALE.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(secs) = line.strip_prefix("sleep ") {
            std::thread::sleep(std::time::Duration::from_secs_f64(secs.parse().unwrap()));
            continue;
        }
        got.push_str(&text(c.raw(&crate::support::words(line))));
    }
    assert_eq!(got, REDIS_STALE);
}

const STALE: &str = r#"
FLUSHALL
DEBUG SET-ACTIVE-EXPIRE 0
SET x foo PX 1
sleep 0.01
WATCH x
MULTI
PING
EXEC
SET x foo PX 1
sleep 0.01
WATCH x
EXISTS x
MULTI
PING
EXEC
SET x foo PX 1
sleep 0.01
WATCH x
FLUSHDB
MULTI
PING
EXEC
SET k 1 PX 20
WATCH k
sleep 0.05
MULTI
INCR k
EXEC
FLUSHALL
SELECT 1
SET x foo PX 1
sleep 0.01
WATCH x
SWAPDB 0 1
MULTI
PING
EXEC
FLUSHALL
SELECT 0
SET x foo PX 1
sleep 0.01
SELECT 1
WATCH x
SWAPDB 0 1
MULTI
PING
EXEC
FLUSHALL
DEBUG SET-ACTIVE-EXPIRE 0
SELECT 1
SET x foo PX 1
SELECT 0
SET x bar PX 1
sleep 0.01
SELECT 1
WATCH x
SWAPDB 0 1
MULTI
PING
EXEC
DEBUG SET-ACTIVE-EXPIRE 1
"#;

const REDIS_STALE: &str = "+OK\r\n+OK\r\n+OK\r\n+OK\r\n+OK\r\n+QUEUED\r\n*1\r\n+PONG\r\n+OK\r\n+OK\r\n:0\r\n+OK\r\n+QUEUED\r\n*1\r\n+PONG\r\n+OK\r\n+OK\r\n+OK\r\n+OK\r\n+QUEUED\r\n*1\r\n+PONG\r\n+OK\r\n+OK\r\n+OK\r\n+QUEUED\r\n*-1\r\n+OK\r\n+OK\r\n+OK\r\n+OK\r\n+OK\r\n+OK\r\n+QUEUED\r\n*1\r\n+PONG\r\n+OK\r\n+OK\r\n+OK\r\n+OK\r\n+OK\r\n+OK\r\n+OK\r\n+QUEUED\r\n*1\r\n+PONG\r\n+OK\r\n+OK\r\n+OK\r\n+OK\r\n+OK\r\n+OK\r\n+OK\r\n+OK\r\n+OK\r\n+OK\r\n+QUEUED\r\n*1\r\n+PONG\r\n+OK\r\n";

#[test]
fn another_clients_write_fails_the_exec() {
    compare(|port| {
        let mut a = Conn::open(port);
        let mut b = Conn::open(port);
        a.cmd(&["FLUSHALL"]);
        let mut out = vec![a.cmd(&["WATCH", "k", "other"])];
        out.push(a.cmd(&["MULTI"]));
        out.push(a.cmd(&["SET", "k", "mine"]));
        out.push(b.cmd(&["SET", "k", "theirs"]));
        out.push(a.cmd(&["EXEC"]));
        out.push(a.cmd(&["GET", "k"]));
        // Watches end with the EXEC; a watching client that leaves is
        // forgotten.
        out.push(b.cmd(&["WATCH", "k"]));
        drop(b);
        out.push(a.cmd(&["MULTI"]));
        out.push(a.cmd(&["SET", "k", "again"]));
        out.push(a.cmd(&["EXEC"]));
        out
    });
}

#[test]
fn a_blocked_pop_sees_only_the_end_of_a_transaction() {
    compare(|port| {
        let mut ctl = Conn::open(port);
        ctl.cmd(&["FLUSHALL"]);
        let mut popper = Conn::open(port);
        popper.send(&["BLPOP", "l", "0"]);
        wait_blocked(&mut ctl, 1);
        let mut out = vec![ctl.cmd(&["MULTI"])];
        out.push(ctl.cmd(&["LPUSH", "l", "a"]));
        out.push(ctl.cmd(&["LPUSH", "l", "b"]));
        out.push(ctl.cmd(&["LPOP", "l"]));
        out.push(ctl.cmd(&["EXEC"]));
        out.push(text(popper.read()));
        popper.send(&["BLPOP", "l2", "0"]);
        wait_blocked(&mut ctl, 1);
        out.push(ctl.cmd(&["MULTI"]));
        out.push(ctl.cmd(&["LPUSH", "l2", "a"]));
        out.push(ctl.cmd(&["DEL", "l2"]));
        out.push(ctl.cmd(&["EXEC"]));
        out.push(ctl.cmd(&["LPUSH", "l2", "c"]));
        out.push(text(popper.read()));
        out
    });
}
