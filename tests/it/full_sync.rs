//! A master's full sync as a replica's socket sees it: the RDB is streamed
//! (a replica that reads nothing holds only a few MB on the master),
//! replicas that ask together share one snapshot (diskless within
//! `repl-diskless-sync-delay`, disk while the file is written), and both
//! forms load into Debian's redis-server.

use crate::replica::{info_field, wait_for};
use crate::support::{damselfly, redis, Conn};
use rand::Rng;
use std::io::{BufRead, Read};
use std::time::Duration;

/// A raw replica: REPLCONF (capa eof when `eof`), then PSYNC ? -1.
fn ask_sync(port: u16, eof: bool) -> Conn {
    let mut c = Conn::open(port);
    if eof {
        assert_eq!(
            c.cmd(&["REPLCONF", "capa", "eof", "capa", "psync2"]),
            "+OK\r\n"
        );
    }
    c.send(&["PSYNC", "?", "-1"]);
    c
}

fn line(c: &mut Conn) -> String {
    let mut l = String::new();
    // Newlines may come first (keepalives).
    while l.trim().is_empty() {
        l.clear();
        c.reader.read_line(&mut l).expect("line");
    }
    l.trim_end().to_string()
}

/// Reads +FULLRESYNC and the RDB; returns the +FULLRESYNC line, the RDB's
/// header line and the RDB.
fn read_sync(c: &mut Conn) -> (String, String, Vec<u8>) {
    let full = line(c);
    assert!(full.starts_with("+FULLRESYNC "), "{full}");
    let head = line(c);
    let rdb = if let Some(mark) = head.strip_prefix("$EOF:") {
        let mut data = Vec::new();
        let mut buf = vec![0; 1 << 16];
        while !data.ends_with(mark.as_bytes()) {
            let n = c.reader.read(&mut buf).expect("rdb");
            assert!(n > 0, "the master closed inside the RDB");
            data.extend_from_slice(&buf[..n]);
        }
        data.truncate(data.len() - mark.len());
        data
    } else {
        let len: usize = head[1..].parse().expect("bulk length");
        let mut data = vec![0; len];
        c.reader.read_exact(&mut data).expect("rdb");
        data
    };
    assert!(rdb.starts_with(b"REDIS0010"), "not an RDB");
    // EOF opcode and an 8-byte checksum end a complete RDB.
    assert_eq!(rdb.get(rdb.len().saturating_sub(9)), Some(&0xff));
    (full, head, rdb)
}

#[test]
fn a_replica_that_reads_nothing_holds_only_a_few_mb_on_the_master() {
    let m = damselfly(&[]);
    let mut mc = Conn::open(m.port);
    mc.cmd(&["CONFIG", "SET", "repl-diskless-sync-delay", "0"]);
    // 30 MB that LZF cannot shrink, sent pipelined. Every byte has its top
    // bit set, so the ASCII key written later cannot turn up in a value.
    let mut rng = rand::rng();
    for batch in 0..100 {
        let mut out = Vec::new();
        for i in 0..1000 {
            let v: Vec<u8> = (0..300).map(|_| rng.random::<u8>() | 0x80).collect();
            let k = format!("k{batch}:{i}");
            out.extend(Conn::encode(&[&b"SET"[..], k.as_bytes(), &v[..]]));
        }
        mc.send_raw(&out);
        for _ in 0..1000 {
            assert_eq!(mc.read(), b"+OK\r\n");
        }
    }
    let mut r = ask_sync(m.port, true);
    let queued = |mc: &mut Conn| -> u64 {
        info_field(mc, "memory", "mem_clients_slaves")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    // The socket's buffers fill, then the replica's queue on the master.
    wait_for("the transfer to stall", || queued(&mut mc) > 2 << 20);
    std::thread::sleep(Duration::from_millis(500));
    let held = queued(&mut mc);
    assert!(
        held < 5 << 20,
        "{held} bytes queued for a replica that reads nothing"
    );
    let repl = mc.cmd(&["INFO", "replication"]);
    assert!(repl.contains("state=wait_bgsave"), "{repl}");
    // Writes go on meanwhile; the RDB is the dataset as the sync began.
    assert_eq!(mc.cmd(&["SET", "late", "1"]), "+OK\r\n");
    let (_, head, rdb) = read_sync(&mut r);
    assert!(head.starts_with("$EOF:"), "{head}");
    assert!(rdb.len() > 20 << 20, "{} bytes", rdb.len());
    assert!(!rdb.windows(4).any(|w| w == b"late"));
    // Then the stream: SELECT and the SET made during the transfer (after
    // our first ACK, as a replica finds the end mark only at the end).
    r.send(&["REPLCONF", "ACK", "0"]);
    let mut stream = Vec::new();
    while !String::from_utf8_lossy(&stream).contains("late") {
        stream.push(0);
        let n = stream.len() - 1;
        r.reader.read_exact(&mut stream[n..]).expect("stream");
    }
}

#[test]
fn replicas_asking_within_the_diskless_delay_share_one_transfer() {
    let m = damselfly(&[]);
    let mut mc = Conn::open(m.port);
    mc.cmd(&["CONFIG", "SET", "repl-diskless-sync-delay", "3"]);
    mc.cmd(&["DEBUG", "POPULATE", "1000"]);
    let mut a = ask_sync(m.port, true);
    let mut b = ask_sync(m.port, true);
    let (fa, ha, ra) = read_sync(&mut a);
    let (fb, hb, rb) = read_sync(&mut b);
    // The same point, and the same end mark: one transfer.
    assert_eq!(fa, fb);
    assert_eq!(ha, hb);
    assert_eq!(ra, rb);
    assert_eq!(
        info_field(&mut mc, "stats", "sync_full").as_deref(),
        Some("2")
    );
}

#[test]
fn replicas_asking_while_the_disk_snapshot_is_written_share_it() {
    let m = damselfly(&[]);
    let mut mc = Conn::open(m.port);
    mc.cmd(&["CONFIG", "SET", "repl-diskless-sync", "no"]);
    mc.cmd(&["DEBUG", "POPULATE", "1000"]);
    // 1 ms per key keeps the save going for a second.
    mc.cmd(&["CONFIG", "SET", "rdb-key-save-delay", "1000"]);
    let mut a = ask_sync(m.port, false);
    wait_for("the save", || {
        info_field(&mut mc, "persistence", "rdb_bgsave_in_progress").as_deref() == Some("1")
    });
    mc.cmd(&["SET", "during", "1"]);
    let mut b = ask_sync(m.port, true);
    let (fa, ha, ra) = read_sync(&mut a);
    let (fb, hb, rb) = read_sync(&mut b);
    assert_eq!(fa, fb);
    assert!(ha.starts_with('$') && !ha.starts_with("$EOF"), "{ha}");
    assert_eq!(ha, hb);
    assert_eq!(ra, rb);
    // The save was Redis's: into the configured file.
    let file = std::fs::read(m.dir.0.join("dump.rdb")).expect("dump.rdb");
    assert_eq!(file, ra);
    // Both then get the stream from the snapshot's point: the SET.
    for c in [&mut a, &mut b] {
        let mut got = Vec::new();
        while !String::from_utf8_lossy(&got).contains("during") {
            got.push(0);
            let n = got.len() - 1;
            c.reader.read_exact(&mut got[n..]).expect("stream");
        }
    }
}

#[test]
fn redis_replicas_sync_from_both_forms() {
    for diskless in ["yes", "no"] {
        let m = damselfly(&[]);
        let mut mc = Conn::open(m.port);
        mc.cmd(&["CONFIG", "SET", "repl-diskless-sync", diskless]);
        mc.cmd(&["CONFIG", "SET", "repl-diskless-sync-delay", "0"]);
        mc.cmd(&["DEBUG", "POPULATE", "5000"]);
        mc.cmd(&["HSET", "h", "f", "v"]);
        let r = redis();
        let mut rc = Conn::open(r.port);
        rc.cmd(&["REPLICAOF", "127.0.0.1", &m.port.to_string()]);
        wait_for("the redis replica", || {
            info_field(&mut rc, "replication", "master_link_status").as_deref() == Some("up")
        });
        mc.cmd(&["SET", "after", "1"]);
        wait_for("the stream", || rc.cmd(&["GET", "after"]) == "$1\r\n1\r\n");
        assert_eq!(rc.cmd(&["DBSIZE"]), ":5002\r\n", "diskless {diskless}");
        assert_eq!(rc.cmd(&["HGET", "h", "f"]), "$1\r\nv\r\n");
    }
}
