//! FAILOVER (Damselfly as the old master and as the target, and mixed with
//! Debian's redis-server), replicas of a replica, and a Sentinel failover
//! with three `redis-sentinel` processes.

use crate::replica::{
    assert_same_data, info_field, start_load, stats, stop_load, wait_caught_up, wait_for,
};
use crate::support::{damselfly, diff, redis_with, which, Conn, Proc};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

/// No 5 s wait before a diskless full sync (Redis's default delay).
const NO_DELAY: [&str; 2] = ["--repl-diskless-sync-delay", "0"];

fn dfly() -> Proc {
    damselfly(&NO_DELAY)
}

fn redis() -> Proc {
    redis_with(&NO_DELAY)
}

fn follow(replica: &Proc, master: &Proc) {
    let mut c = Conn::open(replica.port);
    let port = master.port.to_string();
    assert_eq!(c.cmd(&["REPLICAOF", "127.0.0.1", &port]), "+OK\r\n");
    wait_caught_up(master.port, replica.port);
    // A Redis master counts a diskless-synced replica online only once its
    // first ACK arrived (FAILOVER TO refuses it before).
    let mut m = Conn::open(master.port);
    let online = format!("port={},state=online", replica.port);
    wait_for("the master to see its replica online", || {
        m.cmd(&["INFO", "replication"]).contains(&online)
    });
}

fn state(p: &Proc) -> String {
    info_field(
        &mut Conn::open(p.port),
        "replication",
        "master_failover_state",
    )
    .unwrap_or_default()
}

fn role(p: &Proc) -> String {
    info_field(&mut Conn::open(p.port), "replication", "role").unwrap_or_default()
}

fn wait_failover_end(p: &Proc) {
    wait_for("the failover to end", || state(p) == "no-failover");
}

#[test]
fn failover_errors_match_redis() {
    diff(
        "FAILOVER
         FAILOVER ABORT
         FAILOVER TIMEOUT 0
         FAILOVER TIMEOUT -1
         FAILOVER TIMEOUT abc
         FAILOVER TO 127.0.0.1 1
         FAILOVER TO 127.0.0.1 abc
         FAILOVER TO 127.0.0.1
         FAILOVER FORCE
         FAILOVER TO 127.0.0.1 1 FORCE
         FAILOVER TIMEOUT 10 FORCE
         FAILOVER FORCE TIMEOUT 0
         FAILOVER bla
         FAILOVER ABORT TIMEOUT 5
         FAILOVER ABORT FORCE
         FAILOVER ABORT ABORT
         FAILOVER TIMEOUT 1 TIMEOUT 2
         FAILOVER TO a 1 TO b 2
         MULTI
         FAILOVER
         EXEC
         PSYNC abc 1 FAILOVER
         COMMAND INFO failover
         # a replica whose link is down serves no replica of its own
         SLAVEOF 127.0.0.1 1
         PSYNC ? -1
         SYNC
         PSYNC abc 1 FAILOVER
         SLAVEOF NO ONE",
    );
}

/// What Sentinel sends to promote a replica and to reconfigure the others,
/// inside MULTI (CONFIG REWRITE fails without a config file, as Redis's).
#[test]
fn sentinel_reconfiguration_transactions_match_redis() {
    diff(
        "MULTI
         SLAVEOF 127.0.0.1 1
         CONFIG REWRITE
         CLIENT KILL TYPE normal
         EXEC
         # connect or connecting, by timing, on either server
         ~ROLE
         MULTI
         SLAVEOF NO ONE
         CONFIG REWRITE
         CLIENT KILL TYPE normal
         CLIENT KILL TYPE pubsub
         EXEC
         ROLE
         SLAVEOF NO ONE",
    );
}

/// The replies that need replicas: each server with one replica of its
/// own kind, compared reply for reply.
#[test]
fn failover_errors_with_replicas_match_redis() {
    let (rm, rr) = (redis(), redis());
    let (dm, dr) = (dfly(), dfly());
    follow(&rr, &rm);
    follow(&dr, &dm);
    let script: &[&[&str]] = &[
        &["FAILOVER", "TO", "127.0.0.1", "1"],
        &["FAILOVER", "TO", "localhost", "REPLICA"],
        &["FAILOVER", "TO", "127.0.0.1", "REPLICA", "FORCE"],
        &["FAILOVER", "ABORT"],
    ];
    let on_replica: &[&[&str]] = &[
        &["FAILOVER"],
        &["FAILOVER", "ABORT"],
        &["FAILOVER", "TIMEOUT", "0"],
        &["WAIT", "0", "0"],
        &[
            "PSYNC",
            "0123456789012345678901234567890123456789",
            "1",
            "FAILOVER",
        ],
    ];
    for (lines, (r, d), (rr, dr)) in [
        (script, (&rm, &dm), (&rr, &dr)),
        (on_replica, (&rr, &dr), (&rr, &dr)),
    ] {
        let (mut rc, mut dc) = (Conn::open(r.port), Conn::open(d.port));
        for line in lines {
            let fill = |p: &Proc| -> Vec<String> {
                line.iter()
                    .map(|a| a.replace("REPLICA", &p.port.to_string()))
                    .collect()
            };
            let want = String::from_utf8_lossy(&rc.raw(&fill(rr))).into_owned();
            let got = String::from_utf8_lossy(&dc.raw(&fill(dr))).into_owned();
            assert_eq!(want, got, "{line:?}");
        }
    }
}

/// Redis's integration/failover flow on three Damselflies: under a write
/// load, the master hands over to one replica; the other, dropped by the
/// old master, continues through it (a replica of a replica) and then
/// follows the new master, every step a partial resync.
#[test]
fn failover_to_a_replica_keeps_every_history_partial() {
    let (n0, n1, n2) = (dfly(), dfly(), dfly());
    follow(&n1, &n0);
    follow(&n2, &n0);
    let stop = Arc::new(AtomicBool::new(false));
    let load = start_load(n0.port, &stop);
    std::thread::sleep(Duration::from_millis(300));
    let mut c0 = Conn::open(n0.port);
    let n1_port = n1.port.to_string();
    assert_eq!(
        c0.cmd(&["FAILOVER", "TO", "127.0.0.1", &n1_port]),
        "+OK\r\n"
    );
    wait_failover_end(&n0);
    stop_load(&stop, load);
    assert_eq!(role(&n0), "slave");
    assert_eq!(role(&n1), "master");
    // n2 was dropped by n0 and reconnected to it: a replica of a replica.
    wait_caught_up(n1.port, n0.port);
    wait_caught_up(n1.port, n2.port);
    follow(&n2, &n1);
    assert_same_data(n1.port, n0.port);
    assert_same_data(n1.port, n2.port);
    assert_eq!(stats(n1.port), (0, 2), "(sync_full, sync_partial_ok) on n1");
    assert_eq!(
        stats(n0.port).0,
        2,
        "n0's only full syncs are the first two"
    );

    // Without TO: the first replica to reach the offset takes over.
    let mut c1 = Conn::open(n1.port);
    assert_eq!(c1.cmd(&["SET", "case", "1"]), "+OK\r\n");
    assert_eq!(c1.cmd(&["FAILOVER"]), "+OK\r\n");
    wait_failover_end(&n1);
    assert_eq!(role(&n1), "slave");
    let new_master = if role(&n0) == "master" { &n0 } else { &n2 };
    assert_eq!(role(new_master), "master");
    let mut cm = Conn::open(new_master.port);
    assert_eq!(cm.cmd(&["GET", "case"]), "$1\r\n1\r\n");
}

/// FAILOVER ABORT while waiting for a replica that cannot catch up, and
/// a TIMEOUT that gives up: the master stays master, writes go on.
#[test]
fn a_failover_that_cannot_sync_is_aborted_and_writes_resume() {
    let (m, r) = (dfly(), dfly());
    follow(&r, &m);
    let mut rc = Conn::open(r.port);
    let mut mc = Conn::open(m.port);
    let sink = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let sink_port = sink.local_addr().expect("addr").port().to_string();
    // The target: a replica that never acknowledges anything (a raw
    // PSYNC on a connection nobody reads).
    let mut fake = Conn::open(m.port);
    fake.send(&["REPLCONF", "listening-port", &sink_port]);
    fake.read();
    fake.send(&["PSYNC", "?", "-1"]);
    wait_for("the fake replica to be online", || {
        info_field(&mut mc, "replication", "connected_slaves").as_deref() == Some("2")
            && !mc.cmd(&["INFO", "replication"]).contains("wait_bgsave")
    });
    assert_eq!(mc.cmd(&["SET", "k", "1"]), "+OK\r\n");
    assert_eq!(
        mc.cmd(&[
            "FAILOVER",
            "TO",
            "127.0.0.1",
            &sink_port,
            "TIMEOUT",
            "60000"
        ]),
        "+OK\r\n"
    );
    assert_eq!(state(&m), "waiting-for-sync");
    assert_eq!(mc.cmd(&["GET", "k"]), "$1\r\n1\r\n");
    assert_eq!(
        mc.cmd(&["FAILOVER"]),
        "-ERR FAILOVER already in progress.\r\n"
    );
    assert_eq!(
        mc.cmd(&["REPLICAOF", "NO", "ONE"]),
        "-ERR REPLICAOF not allowed while failing over.\r\n"
    );
    // A write waits for the failover's end.
    let mut w = Conn::open(m.port);
    w.send(&["SET", "k", "2"]);
    assert_eq!(mc.cmd(&["FAILOVER", "ABORT"]), "+OK\r\n");
    assert_eq!(w.read(), b"+OK\r\n");
    assert_eq!(state(&m), "no-failover");
    assert_eq!(role(&m), "master");

    // A timeout without FORCE gives up by itself.
    assert_eq!(
        mc.cmd(&["FAILOVER", "TO", "127.0.0.1", &sink_port, "TIMEOUT", "200"]),
        "+OK\r\n"
    );
    wait_failover_end(&m);
    assert_eq!(role(&m), "master");
    assert_eq!(mc.cmd(&["SET", "k", "3"]), "+OK\r\n");
    wait_caught_up(m.port, r.port);
    assert_eq!(rc.cmd(&["GET", "k"]), "$1\r\n3\r\n");
}

/// A target that refuses PSYNC (ACL): the old master is a master again,
/// under a new replid its replicas continue partially.
#[test]
fn a_failover_the_target_rejects_is_rolled_back() {
    let (m, r) = (dfly(), dfly());
    follow(&r, &m);
    let mut rc = Conn::open(r.port);
    assert_eq!(rc.cmd(&["ACL", "SETUSER", "default", "-psync"]), "+OK\r\n");
    let mut mc = Conn::open(m.port);
    let before = stats(m.port);
    let port = r.port.to_string();
    assert_eq!(mc.cmd(&["FAILOVER", "TO", "127.0.0.1", &port]), "+OK\r\n");
    wait_failover_end(&m);
    assert_eq!(role(&m), "master");
    assert_eq!(role(&r), "slave");
    assert_eq!(rc.cmd(&["ACL", "SETUSER", "default", "+psync"]), "+OK\r\n");
    assert_eq!(mc.cmd(&["SET", "after", "1"]), "+OK\r\n");
    wait_caught_up(m.port, r.port);
    assert_eq!(rc.cmd(&["GET", "after"]), "$1\r\n1\r\n");
    let after = stats(m.port);
    assert_eq!(after.0, before.0, "no full sync after the rollback");
    assert!(after.1 > before.1, "the replica continued partially");
}

/// Mixed: a Redis master fails over to a Damselfly replica, then the
/// Damselfly master fails over back to the Redis replica; each PSYNC is
/// partial and the data is the same everywhere.
#[test]
fn failover_between_redis_and_damselfly_both_ways() {
    let (r, d) = (redis(), dfly());
    follow(&d, &r);
    let mut rc = Conn::open(r.port);
    let mut dc = Conn::open(d.port);
    for i in 0..50 {
        rc.cmd(&["SET", &format!("k{i}"), &i.to_string()]);
    }
    rc.cmd(&["SELECT", "3"]);
    rc.cmd(&["HSET", "h", "f", "v"]);
    let dport = d.port.to_string();
    assert_eq!(rc.cmd(&["FAILOVER", "TO", "127.0.0.1", &dport]), "+OK\r\n");
    wait_failover_end(&r);
    assert_eq!(role(&d), "master");
    assert_eq!(role(&r), "slave");
    wait_caught_up(d.port, r.port);
    assert_eq!(stats(d.port), (0, 1), "Redis continued from Damselfly");
    dc.cmd(&["SELECT", "3"]);
    assert_eq!(dc.cmd(&["HSET", "h", "g", "w"]), ":1\r\n");
    wait_caught_up(d.port, r.port);
    assert_eq!(rc.cmd(&["HGET", "h", "g"]), "$1\r\nw\r\n");

    let rport = r.port.to_string();
    assert_eq!(dc.cmd(&["FAILOVER", "TO", "127.0.0.1", &rport]), "+OK\r\n");
    wait_failover_end(&d);
    assert_eq!(role(&r), "master");
    assert_eq!(role(&d), "slave");
    rc.cmd(&["SET", "back", "1"]);
    wait_caught_up(r.port, d.port);
    assert_same_data(r.port, d.port);
    assert_eq!(stats(r.port).0, 1, "Redis's only full sync is the first");
}

/// Three redis-sentinels watch a Damselfly master and two Damselfly
/// replicas: the master dies, they promote a replica, the other follows
/// it with the data, and the old master rejoins as a replica.
#[test]
fn sentinels_promote_a_damselfly_replica_and_the_old_master_rejoins() {
    let Some(sentinel_bin) = which("redis-sentinel") else {
        panic!("redis-sentinel is not installed: run the README's test command, which installs it");
    };
    let mut m = dfly();
    let (r1, r2) = (dfly(), dfly());
    follow(&r1, &m);
    follow(&r2, &m);
    let mut mc = Conn::open(m.port);
    for i in 0..100 {
        mc.cmd(&["SET", &format!("k{i}"), &i.to_string()]);
    }
    wait_caught_up(m.port, r1.port);
    wait_caught_up(m.port, r2.port);
    let sentinels: Vec<Sentinel> = (0..3)
        .map(|_| Sentinel::start(&sentinel_bin, m.port))
        .collect();
    let addr = |s: &Sentinel| -> Option<u16> {
        let reply = Conn::open(s.port).cmd(&["SENTINEL", "get-master-addr-by-name", "mymaster"]);
        reply
            .lines()
            .filter(|l| !l.starts_with(['*', '$']))
            .nth(1)?
            .parse()
            .ok()
    };
    // Every sentinel knows both replicas and the others before the kill.
    wait_for("the sentinels to discover replicas and each other", || {
        sentinels.iter().all(|s| {
            let mut c = Conn::open(s.port);
            let reps = c.cmd(&["SENTINEL", "replicas", "mymaster"]);
            let sents = c.cmd(&["SENTINEL", "sentinels", "mymaster"]);
            reps.matches("flags").count() == 2 && sents.matches("flags").count() == 2
        })
    });
    drop(mc);
    let _ = m.child.kill();
    let _ = m.child.wait();
    wait_for("a replica promoted by the sentinels", || {
        sentinels
            .iter()
            .all(|s| addr(s).is_some_and(|p| p == r1.port || p == r2.port))
    });
    let new_port = addr(&sentinels[0]).unwrap_or_default();
    let (new, other) = if new_port == r1.port {
        (&r1, &r2)
    } else {
        (&r2, &r1)
    };
    assert_eq!(role(new), "master");
    wait_for("the other replica to follow the new master", || {
        let mut c = Conn::open(other.port);
        info_field(&mut c, "replication", "master_port") == Some(new.port.to_string())
            && info_field(&mut c, "replication", "master_link_status").as_deref() == Some("up")
    });
    let mut nc = Conn::open(new.port);
    assert_eq!(nc.cmd(&["SET", "after", "failover"]), "+OK\r\n");
    wait_caught_up(new.port, other.port);
    assert_eq!(Conn::open(other.port).cmd(&["GET", "k42"]), "$2\r\n42\r\n");
    assert_eq!(
        Conn::open(other.port).cmd(&["GET", "after"]),
        "$8\r\nfailover\r\n"
    );
    // The other replica continued from the promoted one's replid2.
    assert_eq!(stats(new.port).0, 0, "no full sync after the promotion");
    // The old master comes back on its port and is turned into a replica.
    m.child =
        crate::support::spawn_damselfly(m.port, &m.dir.0, &NO_DELAY, std::process::Stdio::null());
    wait_for("the old master to listen", || {
        std::net::TcpStream::connect(("127.0.0.1", m.port)).is_ok()
    });
    wait_for("the old master to rejoin as a replica", || {
        let mut c = Conn::open(m.port);
        info_field(&mut c, "replication", "master_port") == Some(new.port.to_string())
            && info_field(&mut c, "replication", "master_link_status").as_deref() == Some("up")
    });
    wait_caught_up(new.port, m.port);
    assert_eq!(
        Conn::open(m.port).cmd(&["GET", "after"]),
        "$8\r\nfailover\r\n"
    );
}

/// One redis-sentinel watching `mymaster`, killed when dropped. Settings
/// as short as Sentinel allows, so the failover takes seconds.
struct Sentinel {
    child: std::process::Child,
    port: u16,
    _dir: crate::support::tempdir::Dir,
}

impl Sentinel {
    fn start(bin: &std::path::Path, master: u16) -> Sentinel {
        let dir = crate::support::tempdir::Dir::new("sentinel");
        let port = crate::support::free_port();
        let conf = dir.0.join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\ndaemonize no\ndir {}\n\
                 sentinel monitor mymaster 127.0.0.1 {master} 2\n\
                 sentinel down-after-milliseconds mymaster 1000\n\
                 sentinel failover-timeout mymaster 5000\n\
                 sentinel parallel-syncs mymaster 2\n",
                dir.0.display()
            ),
        )
        .expect("sentinel.conf");
        let child = std::process::Command::new(bin)
            .arg(&conf)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn redis-sentinel");
        wait_for("the sentinel to answer", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Sentinel {
            child,
            port,
            _dir: dir,
        }
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A master restarted from the RDB it saved at shutdown keeps its history
/// (as replid2, the keys that expired meanwhile sent as DELs), and a
/// replica restarted from its own RDB offers its point to its master:
/// both resync partially, as with Redis 7.0.
#[test]
fn restarts_from_an_rdb_resync_partially() {
    let mut m = dfly();
    let mut r = damselfly(&["--repl-diskless-sync-delay", "0", "--save", "3600 1"]);
    follow(&r, &m);
    let mut mc = Conn::open(m.port);
    for i in 0..100 {
        mc.cmd(&["SET", &format!("k{i}"), &i.to_string()]);
    }
    mc.cmd(&["SET", "short", "x", "PX", "50"]);
    wait_caught_up(m.port, r.port);
    let replid = info_field(&mut mc, "replication", "master_replid");
    let offset = info_field(&mut mc, "replication", "master_repl_offset");
    Conn::open(m.port).send(&["SHUTDOWN", "SAVE"]);
    let _ = m.child.wait();
    std::thread::sleep(Duration::from_millis(100));
    m.child =
        crate::support::spawn_damselfly(m.port, &m.dir.0, &NO_DELAY, std::process::Stdio::null());
    wait_for("the master to listen", || {
        std::net::TcpStream::connect(("127.0.0.1", m.port)).is_ok()
    });
    let mut mc = Conn::open(m.port);
    assert_eq!(info_field(&mut mc, "replication", "master_replid2"), replid);
    let second = offset
        .as_deref()
        .and_then(|o| o.parse::<i64>().ok())
        .map(|o| (o + 1).to_string());
    assert_eq!(
        info_field(&mut mc, "replication", "second_repl_offset"),
        second
    );
    wait_caught_up(m.port, r.port);
    assert_eq!(
        stats(m.port),
        (0, 1),
        "(sync_full, sync_partial_ok) after the master's restart"
    );
    assert_eq!(Conn::open(r.port).cmd(&["EXISTS", "short"]), ":0\r\n");

    // The replica restarts from its own RDB, following the master again.
    Conn::open(r.port).send(&["SHUTDOWN", "SAVE"]);
    let _ = r.child.wait();
    mc.cmd(&["SET", "while", "down"]);
    let mport = m.port.to_string();
    let flags = [
        "--repl-diskless-sync-delay",
        "0",
        "--replicaof",
        &format!("127.0.0.1:{mport}"),
    ];
    r.child =
        crate::support::spawn_damselfly(r.port, &r.dir.0, &flags, std::process::Stdio::null());
    wait_for("the replica to listen", || {
        std::net::TcpStream::connect(("127.0.0.1", r.port)).is_ok()
    });
    wait_caught_up(m.port, r.port);
    assert_eq!(
        stats(m.port),
        (0, 2),
        "(sync_full, sync_partial_ok) after the replica's restart"
    );
    assert_same_data(m.port, r.port);
}

/// A chain across both servers under a write load in two DBs: Redis
/// master, Damselfly replica, Redis replica of the Damselfly replica (which
/// starts its stream in the DB the RDB names), and a Damselfly replica of
/// that Redis replica.
#[test]
fn a_chain_through_damselfly_and_redis_replicas_converges() {
    let (top, mid, low, bottom) = (redis(), dfly(), redis(), dfly());
    let mut tc = Conn::open(top.port);
    tc.cmd(&["CONFIG", "SET", "repl-backlog-size", "64mb"]);
    follow(&mid, &top);
    let stop = Arc::new(AtomicBool::new(false));
    let load = start_load(top.port, &stop);
    std::thread::sleep(Duration::from_millis(300));
    let mut lc = Conn::open(low.port);
    let mport = mid.port.to_string();
    assert_eq!(lc.cmd(&["REPLICAOF", "127.0.0.1", &mport]), "+OK\r\n");
    let lport = low.port.to_string();
    let mut bc = Conn::open(bottom.port);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(bc.cmd(&["REPLICAOF", "127.0.0.1", &lport]), "+OK\r\n");
    std::thread::sleep(Duration::from_millis(500));
    stop_load(&stop, load);
    assert_same_data(top.port, mid.port);
    assert_same_data(top.port, low.port);
    assert_same_data(top.port, bottom.port);
    assert_eq!(stats(mid.port).0, 1, "the Redis replica's one full sync");
}
