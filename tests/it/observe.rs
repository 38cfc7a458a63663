//! INFO's fields against redis-server's, SLOWLOG, LATENCY.

use crate::support::{damselfly, diff, redis, Conn};
use std::collections::BTreeSet;

/// Field names of INFO's reply (sections as `# Name`), in order.
fn info_fields(c: &mut Conn, section: &str) -> Vec<String> {
    c.cmd(&["INFO", section])
        .split("\r\n")
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|l| l.split(':').next().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn info_everything_has_redis_fields() {
    let r = redis();
    let d = damselfly(&[]);
    let mut rc = Conn::open(r.port);
    let mut dc = Conn::open(d.port);
    for c in [&mut rc, &mut dc] {
        c.cmd(&["CONFIG", "RESETSTAT"]);
        c.cmd(&["SET", "a", "1"]);
        c.cmd(&["SET", "b", "1", "EX", "100"]);
        c.cmd(&["GET", "a"]);
        c.cmd(&["INCR", "nosuch-type-a"]);
        c.cmd(&["LPUSH", "a", "x"]);
    }
    for section in ["everything", "default", "memory", "stats", "commandstats"] {
        let want: BTreeSet<String> = info_fields(&mut rc, section)
            .into_iter()
            .filter(|f| {
                !f.starts_with("cmdstat_info") && !f.starts_with("latency_percentiles_usec_info")
            })
            .collect();
        let got: BTreeSet<String> = info_fields(&mut dc, section)
            .into_iter()
            .filter(|f| !f.starts_with("damselfly_"))
            .filter(|f| {
                !f.starts_with("cmdstat_info") && !f.starts_with("latency_percentiles_usec_info")
            })
            .collect();
        let missing: Vec<_> = want.difference(&got).collect();
        let extra: Vec<_> = got.difference(&want).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "INFO {section}: missing {missing:?}, extra {extra:?}"
        );
    }
    // Several sections at once, in Redis's order.
    let two = dc.cmd(&["INFO", "keyspace", "server"]);
    let server_at = two.find("# Server").expect("server section");
    let keyspace_at = two.find("# Keyspace").expect("keyspace section");
    assert!(server_at < keyspace_at);
    assert!(two.contains("db0:keys=3,expires=1,"));
}

#[test]
fn info_latencystats_reports_percentiles() {
    let d = damselfly(&[]);
    let mut c = Conn::open(d.port);
    c.cmd(&["SET", "a", "1"]);
    let text = c.cmd(&["INFO", "latencystats"]);
    let line = text
        .split("\r\n")
        .find(|l| l.starts_with("latency_percentiles_usec_set:"))
        .expect("set percentiles");
    let values: Vec<&str> = line
        .split(':')
        .nth(1)
        .unwrap_or_default()
        .split(',')
        .collect();
    assert_eq!(values.len(), 3);
    assert!(values[0].starts_with("p50=") && values[2].starts_with("p99.9="));
}

#[test]
fn slowlog_errors_and_help_match_redis() {
    diff(
        "SLOWLOG GET -2
         SLOWLOG GET x
         SLOWLOG GET 1 2
         SLOWLOG HELP
         SLOWLOG NOPE
         SLOWLOG
         CONFIG SET slowlog-log-slower-than -2
         CONFIG SET slowlog-max-len -1
         LATENCY HELP
         LATENCY HELP xxx
         LATENCY HISTORY nosuch
         LATENCY RESET nosuch other
         LATENCY GRAPH nosuch
         LATENCY LATEST
         LATENCY HISTOGRAM nosuch
         CONFIG SET latency-monitor-threshold -1
         CONFIG SET latency-tracking maybe
         CONFIG GET latency-tracking-info-percentiles
         CONFIG SET latency-tracking-info-percentiles \"50 101\"",
    );
}

#[test]
fn slowlog_keeps_the_newest_entries_trimmed_and_redacted() {
    let d = damselfly(&[]);
    let mut c = Conn::open(d.port);
    c.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]);
    c.cmd(&["CONFIG", "SET", "slowlog-max-len", "10"]);
    c.cmd(&["SLOWLOG", "RESET"]);
    c.cmd(&["CLIENT", "SETNAME", "me"]);
    let long = "A".repeat(129);
    c.cmd(&["SET", "k", &long]);
    let mut many = vec!["SADD", "s"];
    let members: Vec<String> = (0..40).map(|i| i.to_string()).collect();
    many.extend(members.iter().map(String::as_str));
    c.cmd(&many);
    c.cmd(&["AUTH", "secret"]);
    // SLOWLOG RESET itself, CLIENT SETNAME, SET, SADD, AUTH.
    assert_eq!(c.cmd(&["SLOWLOG", "LEN"]), ":5\r\n");
    let got = c.cmd(&["SLOWLOG", "GET"]);
    // Newest first: AUTH redacted, SADD cut at 32 arguments, SET's long
    // value cut at 128 bytes.
    assert!(got.contains("$4\r\nAUTH\r\n$10\r\n(redacted)\r\n"), "{got}");
    assert!(got.contains("\r\n... (11 more arguments)\r\n"), "{got}");
    assert!(
        got.contains(&format!("{}... (1 more bytes)", "A".repeat(128))),
        "{got}"
    );
    assert!(got.contains("$2\r\nme\r\n"), "{got}");
    assert_eq!(c.cmd(&["SLOWLOG", "GET", "1"]).matches("*6\r\n").count(), 1);
    c.cmd(&["CONFIG", "SET", "slowlog-max-len", "2"]);
    c.cmd(&["PING"]);
    assert_eq!(c.cmd(&["SLOWLOG", "LEN"]), ":2\r\n");
    c.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "-1"]);
    c.cmd(&["SLOWLOG", "RESET"]);
    c.cmd(&["SET", "k", "v"]);
    assert_eq!(c.cmd(&["SLOWLOG", "LEN"]), ":0\r\n");
}

#[test]
fn latency_histogram_counts_calls_per_command() {
    let d = damselfly(&[]);
    let mut c = Conn::open(d.port);
    c.cmd(&["CONFIG", "RESETSTAT"]);
    c.cmd(&["SET", "a", "b"]);
    c.cmd(&["SET", "c", "d"]);
    c.cmd(&["CLIENT", "ID"]);
    let h = c.cmd(&["LATENCY", "HISTOGRAM", "set", "client", "blabla"]);
    assert!(
        h.starts_with("*4\r\n$3\r\nset\r\n*4\r\n$5\r\ncalls\r\n:2\r\n$14\r\nhistogram_usec\r\n"),
        "{h}"
    );
    assert!(
        h.contains("$9\r\nclient|id\r\n*4\r\n$5\r\ncalls\r\n:1\r\n"),
        "{h}"
    );
    // With a threshold of 0 the monitor records nothing.
    assert_eq!(c.cmd(&["LATENCY", "LATEST"]), "*0\r\n");
    assert!(c.cmd(&["LATENCY", "DOCTOR"]).len() > 10);
}

/// The argument lists of SLOWLOG GET's entries, newest first.
fn slowlog_commands(c: &mut Conn) -> Vec<String> {
    let raw = String::from_utf8_lossy(&c.raw(&["SLOWLOG", "GET"])).into_owned();
    // Each entry: id, time, usec, [args...], peer, name. Keep the args'
    // bulk strings by walking the nested arrays' headers.
    let mut out = Vec::new();
    let mut lines = raw.split("\r\n").peekable();
    lines.next();
    while let Some(l) = lines.next() {
        if l == "*6" {
            for _ in 0..3 {
                lines.next();
            }
            let n: usize = lines
                .next()
                .and_then(|h| h.strip_prefix('*'))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            let args: Vec<&str> = (0..n)
                .map(|_| {
                    lines.next();
                    lines.next().unwrap_or_default()
                })
                .collect();
            out.push(args.join(" "));
        }
    }
    out
}

#[test]
fn a_blocked_command_is_slowlogged_when_served_or_timed_out() {
    let r = crate::support::redis();
    let d = damselfly(&[]);
    let mut seen = Vec::new();
    for port in [r.port, d.port] {
        let mut c = Conn::open(port);
        let mut waiter = Conn::open(port);
        c.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]);
        waiter.send(&["BLPOP", "l", "0"]);
        while !c.cmd(&["INFO", "clients"]).contains("blocked_clients:1") {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        c.cmd(&["MULTI"]);
        c.cmd(&["LPUSH", "l", "foo"]);
        c.cmd(&["SLOWLOG", "RESET"]);
        c.cmd(&["EXEC"]);
        waiter.read();
        let served = slowlog_commands(&mut c);
        c.cmd(&["SLOWLOG", "RESET"]);
        waiter.cmd(&["BLPOP", "none", "0.01"]);
        let timed_out = slowlog_commands(&mut c);
        seen.push((served.first().cloned(), timed_out.last().cloned()));
    }
    assert_eq!(seen[0], seen[1]);
    assert_eq!(seen[1].0.as_deref(), Some("BLPOP l 0"));
}

/// A worker's clock comes from the TSC once it has measured it (a second
/// after start, where the kernel trusts the TSC): command durations and
/// the Unix time that expiry reads must still agree with the real clock.
#[test]
fn durations_and_expiry_keep_to_the_clock_after_calibration() {
    let d = damselfly(&[]);
    let mut c = Conn::open(d.port);
    std::thread::sleep(std::time::Duration::from_millis(1300));
    let number = |s: &str, field: &str| -> u64 {
        s.split(field)
            .nth(1)
            .and_then(|r| r.split(|ch: char| !ch.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    c.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "100000"]);
    c.cmd(&["CONFIG", "RESETSTAT"]);
    c.cmd(&["SLOWLOG", "RESET"]);
    assert_eq!(c.cmd(&["DEBUG", "SLEEP", "0.2"]), "+OK\r\n");
    // id, time, duration: the third integer of the one entry.
    let entry = c.cmd(&["SLOWLOG", "GET"]);
    let usec: u64 = entry
        .split("\r\n")
        .filter_map(|l| l.strip_prefix(':'))
        .nth(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!((200_000..20_000_000).contains(&usec), "{entry}");
    let stats = c.cmd(&["INFO", "commandstats"]);
    assert!(
        (200_000..20_000_000).contains(&number(&stats, "cmdstat_debug:calls=1,usec=")),
        "{stats}"
    );
    // Expiry: relative and absolute times land where the clock says.
    c.cmd(&["SET", "k", "v", "PX", "300"]);
    let pttl = number(&c.cmd(&["PTTL", "k"]), ":");
    assert!((1..=300).contains(&pttl), "{pttl}");
    let unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|t| t.as_millis() as u64)
        .unwrap_or(0);
    c.cmd(&["SET", "a", "v"]);
    c.cmd(&["PEXPIREAT", "a", &(unix_ms + 60_000).to_string()]);
    let pttl = number(&c.cmd(&["PTTL", "a"]), ":");
    assert!((30_000..=60_000).contains(&pttl), "{pttl}");
    std::thread::sleep(std::time::Duration::from_millis(400));
    assert_eq!(c.cmd(&["EXISTS", "k"]), ":0\r\n");
    assert_eq!(c.cmd(&["EXISTS", "a"]), ":1\r\n");
}
