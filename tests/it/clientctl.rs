//! CLIENT PAUSE / UNPAUSE / KILL / NO-EVICT and MEMORY STATS DOCTOR
//! MALLOC-STATS PURGE.

use crate::maxmemory::info_u64;
use crate::support::resp::read_reply;
use crate::support::{damselfly, diff, Conn};
use std::time::{Duration, Instant};

/// Polls INFO until `field` reads `want` (to a deadline).
pub(crate) fn wait_info(c: &mut Conn, field: &str, want: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while info_u64(c, field) != want {
        assert!(Instant::now() < deadline, "{field} never reached {want}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn client_control_errors_match_redis() {
    diff(
        "CLIENT PAUSE abc
         CLIENT PAUSE -1
         CLIENT PAUSE 10 foo
         CLIENT PAUSE 10 write extra
         CLIENT PAUSE 0 ALL
         CLIENT UNPAUSE
         CLIENT UNPAUSE x
         CLIENT NO-EVICT maybe
         CLIENT NO-EVICT ON
         CLIENT NO-EVICT off
         CLIENT KILL
         CLIENT KILL 1.2.3.4:5
         CLIENT KILL id abc
         CLIENT KILL id 0
         CLIENT KILL id 999
         CLIENT KILL addr 1.2.3.4:5
         CLIENT KILL type foo
         CLIENT KILL type master
         CLIENT KILL type normal skipme maybe
         CLIENT KILL maxage x
         CLIENT KILL foo bar
         CLIENT KILL id 5 addr
         CLIENT KILL user nosuchuser
         MEMORY PURGE
         MEMORY STATS extra
         MEMORY DOCTOR extra",
    );
}

#[test]
fn pause_write_holds_writes_not_reads_until_unpause() {
    let d = damselfly(&[]);
    let mut admin = Conn::open(d.port);
    let mut writer = Conn::open(d.port);
    let mut reader = Conn::open(d.port);
    admin.cmd(&["SET", "k", "old"]);
    assert_eq!(
        admin.cmd(&["CLIENT", "PAUSE", "100000", "WRITE"]),
        "+OK\r\n"
    );
    writer.send(&["SET", "k", "new"]);
    wait_info(&mut admin, "blocked_clients", 1);
    assert_eq!(reader.cmd(&["GET", "k"]), "$3\r\nold\r\n");
    // A syntax error is answered at once.
    assert!(reader.cmd(&["SET", "k"]).starts_with("-ERR wrong number"));
    // Read-only transactions run; EXEC of one that writes waits.
    assert_eq!(reader.cmd(&["MULTI"]), "+OK\r\n");
    assert_eq!(reader.cmd(&["GET", "k"]), "+QUEUED\r\n");
    assert_eq!(reader.cmd(&["EXEC"]), "*1\r\n$3\r\nold\r\n");
    assert_eq!(admin.cmd(&["CLIENT", "UNPAUSE"]), "+OK\r\n");
    assert_eq!(writer.read(), b"+OK\r\n");
    assert_eq!(reader.cmd(&["GET", "k"]), "$3\r\nnew\r\n");
    assert_eq!(info_u64(&mut admin, "blocked_clients"), 0);
}

#[test]
fn pause_all_holds_everything_and_ends_by_itself() {
    let d = damselfly(&[]);
    let mut admin = Conn::open(d.port);
    let mut other = Conn::open(d.port);
    admin.cmd(&["CLIENT", "PAUSE", "300", "ALL"]);
    // Held until the pause runs out, then answered.
    assert_eq!(other.cmd(&["PING"]), "+PONG\r\n");
}

#[test]
fn expired_keys_read_as_gone_but_stay_during_a_write_pause() {
    let d = damselfly(&[]);
    let mut c = Conn::open(d.port);
    c.cmd(&["SET", "k", "v", "PX", "1"]);
    c.cmd(&["CLIENT", "PAUSE", "100000", "WRITE"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.cmd(&["GET", "k"]) != "$-1\r\n" {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(info_u64(&mut c, "expired_keys"), 0);
    c.cmd(&["CLIENT", "UNPAUSE"]);
    assert_eq!(c.cmd(&["GET", "k"]), "$-1\r\n");
    assert_eq!(info_u64(&mut c, "expired_keys"), 1);
}

#[test]
fn client_kill_closes_the_named_connections() {
    let d = damselfly(&[]);
    let mut admin = Conn::open(d.port);
    let mut victim = Conn::open(d.port);
    let id = victim.cmd(&["CLIENT", "ID"]);
    let id = id.trim_start_matches(':').trim();
    assert_eq!(admin.cmd(&["CLIENT", "KILL", "ID", id]), ":1\r\n");
    assert!(read_reply(&mut victim.reader).is_err(), "victim still open");
    // SKIPME no includes the caller, which gets its reply, then is closed.
    let mut other = Conn::open(d.port);
    other.cmd(&["PING"]);
    let n = admin.cmd(&["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "no"]);
    assert!(n == ":2\r\n" || n == ":3\r\n", "{n}");
    assert!(read_reply(&mut admin.reader).is_err(), "caller still open");
}

#[test]
fn memory_stats_and_friends_answer() {
    let d = damselfly(&[]);
    let mut c = Conn::open(d.port);
    c.cmd(&["SET", "a", "1"]);
    let stats = c.cmd(&["MEMORY", "STATS"]);
    assert!(stats.starts_with("*58\r\n"), "{stats}");
    for field in [
        "peak.allocated",
        "keys.count",
        "db.0",
        "fragmentation.bytes",
    ] {
        assert!(stats.contains(&format!("\r\n{field}\r\n")), "{field}");
    }
    assert!(c.cmd(&["MEMORY", "DOCTOR"]).starts_with('$'));
    assert!(c.cmd(&["MEMORY", "MALLOC-STATS"]).starts_with('$'));
    assert_eq!(c.cmd(&["MEMORY", "PURGE"]), "+OK\r\n");
}

/// A MONITOR line with its time and client port blanked.
fn monitor_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes).into_owned();
    let (head, rest) = text.split_once(']').expect("monitor line");
    let (time, client) = head.split_once(' ').expect("time");
    assert!(
        time.starts_with('+') && time.len() == 1 + 10 + 1 + 6,
        "{text}"
    );
    let db = client
        .trim_start_matches('[')
        .split(' ')
        .next()
        .unwrap_or_default();
    format!("[{db}]{rest}")
}

#[test]
fn monitor_lines_match_redis() {
    let commands: &[&[&str]] = &[
        &["SET", "foo", "b\"a\\r\n\x01é"],
        &["GET", "foo"],
        &["CONFIG", "GET", "hz"],
        &["MULTI"],
        &["SET", "x", "1"],
        &["EXEC"],
        &["MULTI"],
        &["NOSUCHCOMMAND"],
        &["EXEC"],
        &["SELECT", "3"],
        &["PING"],
        &["EVAL", "return redis.call('set', KEYS[1], 'v')", "1", "k"],
    ];
    let r = crate::support::redis();
    let d = damselfly(&[]);
    let mut seen = Vec::new();
    for port in [r.port, d.port] {
        let mut mon = Conn::open(port);
        assert_eq!(mon.cmd(&["MONITOR"]), "+OK\r\n");
        let mut c = Conn::open(port);
        for args in commands {
            c.raw(args);
        }
        // Every command but CONFIG (admin) and the unknown one, plus the
        // SET the script calls.
        let lines: Vec<String> = (0..commands.len() - 1)
            .map(|_| monitor_line(&mon.read()))
            .collect();
        seen.push(lines);
    }
    assert_eq!(seen[0], seen[1]);
}

#[test]
fn pause_write_holds_scripts_that_may_write() {
    let d = damselfly(&[]);
    let mut admin = Conn::open(d.port);
    let mut reader = Conn::open(d.port);
    let mut writer = Conn::open(d.port);
    admin.cmd(&["CLIENT", "PAUSE", "100000", "WRITE"]);
    // A script that declares no writes runs.
    let ro = "#!lua flags=no-writes\nreturn 1";
    assert_eq!(reader.cmd(&["EVAL", ro, "0"]), ":1\r\n");
    writer.send(&["EVAL", "return 2", "0"]);
    wait_info(&mut admin, "blocked_clients", 1);
    admin.cmd(&["CLIENT", "UNPAUSE"]);
    assert_eq!(writer.read(), b":2\r\n");
}

/// A monitoring connection keeps serving its own requests as Redis's does:
/// its own commands are shown after their replies, commands that touch keys
/// get the replica error, a second MONITOR gets no reply, MONITOR inside
/// EXEC is refused, RESET ends monitoring.
#[test]
fn a_monitor_keeps_serving_its_own_requests() {
    let script: &[&[&str]] = &[
        &["MONITOR"],
        &["PING"],
        &["SET", "a", "b"],
        &["MONITOR"],
        &["MULTI"],
        &["RESET"],
        &["PING"],
        &["MULTI"],
        &["MONITOR"],
        &["EXEC"],
        &["MONITOR"],
        &["QUIT"],
    ];
    let r = crate::support::redis();
    let d = damselfly(&[]);
    let mut seen = Vec::new();
    for port in [r.port, d.port] {
        let mut mon = Conn::open(port);
        let mut replies = Vec::new();
        for (i, args) in script.iter().enumerate() {
            mon.send(args);
            // The second MONITOR has no reply to wait for.
            if i == 3 {
                replies.push(String::new());
                continue;
            }
            let reply = mon.read();
            let text = String::from_utf8_lossy(&reply).into_owned();
            replies.push(if text.starts_with("+") && text.contains(" [") {
                monitor_line(&reply)
            } else {
                text
            });
            // A monitor's own command's line follows its reply.
            if i == 1 || i == 4 {
                replies.push(monitor_line(&mon.read()));
            }
        }
        seen.push(replies);
    }
    assert_eq!(seen[0], seen[1]);
    assert!(
        seen[1]
            .iter()
            .any(|l| l == "-ERR Replica can't interact with the keyspace\r\n"),
        "{:?}",
        seen[1]
    );
}
