//! Streams in DUMP payloads and RDB files, exchanged with a real
//! redis-server both ways: byte-identical payloads for streams built by the
//! same commands, and identical XINFO STREAM FULL / XRANGE / XPENDING after
//! RESTORE or a file load on either side.

use crate::support::{damselfly, diff, free_port, redis, redis_in, spawn_damselfly, tempdir, Conn};
use std::process::Stdio;

/// Commands that build streams deterministically (explicit IDs, no
/// consumers): every node layout feature Redis has.
fn deterministic_script() -> String {
    let mut s = String::from(
        r#"
        CONFIG SET stream-node-max-entries 7
        XADD plain 1-1 a 1 b hello
        XADD plain 1-2 a 2 b world
        XADD plain 5-0 x y
        XDEL plain 1-2
        XADD ints 0-1 n 0
        XADD ints 0-2 n -1
        XADD ints 0-3 n 127 m 4095
        XADD ints 0-4 n -4096 m 32767
        XADD ints 0-5 n -32768 m 8388607
        XADD ints 0-6 n 2147483647 m -2147483648
        XADD ints 0-7 n 9223372036854775807 m -9223372036854775808
        XADD ints 0-8 n 007 m 1.5
        XADD ints 3-18446744073709551615 n 18446744073709551616
        XADD ints 18446744073709551615-0 "" ""
        XADD empty MAXLEN 0 1-1 f v
        XADD empty MAXLEN 0 2-1 f v
        XGROUP CREATE empty g $
        XADD gone 1-1 f v
        XDEL gone 1-1
        XGROUP CREATE plain g1 0
        XGROUP CREATE plain g2 $
        XGROUP CREATE plain g3 1-1 ENTRIESREAD 1
        XGROUP CREATE plain 12345 0
        XSETID plain 9-9 ENTRIESADDED 40 MAXDELETEDID 8-0
        "#,
    );
    for i in 1..=60 {
        let long = "v".repeat(i * 3);
        let fields = match i % 4 {
            0 => format!("a {i} b {long}"),
            1 => format!("a {i} b x{i}"),
            2 => format!("a {i} c {long}"),
            _ => format!("z {i}"),
        };
        s.push_str(&format!("XADD big {}-{} {fields}\n", 1000 + i / 3, i % 3));
    }
    s.push_str(
        "XDEL big 1001-0 1005-2 1010-1\nXTRIM big MAXLEN 50\nXTRIM big MAXLEN ~ 40\n\
         CONFIG SET stream-node-max-entries 0\nCONFIG SET stream-node-max-bytes 300\n",
    );
    for i in 1..=30 {
        s.push_str(&format!(
            "XADD bytes {i}-0 field{} {}\n",
            i % 2,
            "w".repeat(i * 7)
        ));
    }
    s.push_str(&format!("XADD huge 1-0 f {}\n", "h".repeat(5000)));
    s.push_str(&format!(
        "XADD huge 2-0 f {}\nXADD huge 3-0 f short\n",
        "abc".repeat(30)
    ));
    s.push_str("CONFIG SET stream-node-max-bytes 4096\nCONFIG SET stream-node-max-entries 100\n");
    s
}

const KEYS: [&str; 7] = ["plain", "ints", "empty", "gone", "big", "bytes", "huge"];

#[test]
fn stream_dump_payloads_match_redis_byte_for_byte() {
    let mut script = deterministic_script();
    for k in KEYS {
        script.push_str(&format!("DUMP {k}\nXINFO STREAM {k} FULL\n"));
    }
    diff(&script);
}

fn run(c: &mut Conn, script: &str) {
    for line in script.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let reply = c.raw(&crate::support::words(line));
        assert!(
            !reply.starts_with(b"-"),
            "{line}: {}",
            String::from_utf8_lossy(&reply)
        );
    }
}

/// Streams with consumers, pending entries, claims, acks and deleted
/// consumers on top of the deterministic ones.
fn build_with_consumers(c: &mut Conn) {
    run(c, &deterministic_script());
    run(
        c,
        r#"
        XADD cg 1-0 f 1
        XADD cg 2-0 f 2
        XADD cg 3-0 f 3
        XADD cg 4-0 f 4
        XADD cg 5-0 f 5
        XGROUP CREATE cg g 0
        XGROUP CREATE cg other $
        XGROUP CREATECONSUMER cg other idle
        XREADGROUP GROUP g alice COUNT 2 STREAMS cg >
        XREADGROUP GROUP g bob COUNT 2 STREAMS cg >
        XREADGROUP GROUP g carol STREAMS cg >
        XCLAIM cg g alice 0 3-0 RETRYCOUNT 7
        XACK cg g 2-0
        XGROUP DELCONSUMER cg g carol
        XDEL cg 4-0
        XREADGROUP GROUP g1 dave COUNT 1 STREAMS plain >
        XADD plain 10-0 x z
        XREADGROUP GROUP g2 erin STREAMS plain >
        "#,
    );
}

fn bulk(reply: &[u8]) -> Vec<u8> {
    let text_end = reply
        .windows(2)
        .position(|w| w == b"\r\n")
        .expect("bulk header");
    assert_eq!(reply[0], b'$', "{}", String::from_utf8_lossy(reply));
    let n: usize = std::str::from_utf8(&reply[1..text_end])
        .expect("len")
        .parse()
        .expect("len");
    reply[text_end + 2..text_end + 2 + n].to_vec()
}

/// What must read the same on both servers for `key`.
fn views(c: &mut Conn, key: &str) -> Vec<Vec<u8>> {
    let mut out = vec![
        c.raw(&["XINFO", "STREAM", key, "FULL"]),
        c.raw(&["XRANGE", key, "-", "+"]),
        c.raw(&["XINFO", "GROUPS", key]),
        c.raw(&["OBJECT", "ENCODING", key]),
    ];
    let groups = ["g", "g1", "g2", "g3", "other", "12345"];
    for g in groups {
        out.push(c.raw(&["XPENDING", key, g]));
    }
    out
}

fn assert_same_views(a: &mut Conn, b: &mut Conn, key: &str) {
    for (x, y) in views(a, key).into_iter().zip(views(b, key)) {
        assert_eq!(
            String::from_utf8_lossy(&x),
            String::from_utf8_lossy(&y),
            "key {key}"
        );
    }
}

const ALL_KEYS: [&str; 8] = [
    "plain", "ints", "empty", "gone", "big", "bytes", "huge", "cg",
];

/// Copies every stream from `from` to `to` by DUMP/RESTORE; both then read
/// the same and DUMP the same bytes.
fn restore_across(from: u16, to: u16) {
    let (mut a, mut b) = (Conn::open(from), Conn::open(to));
    for key in ALL_KEYS {
        let payload = bulk(&a.raw(&["DUMP", key]));
        let ok = b.raw(&[b"RESTORE".as_slice(), key.as_bytes(), b"0", &payload]);
        assert_eq!(
            ok,
            b"+OK\r\n",
            "RESTORE {key}: {}",
            String::from_utf8_lossy(&ok)
        );
        assert_same_views(&mut a, &mut b, key);
        assert_eq!(
            bulk(&b.raw(&["DUMP", key])),
            payload,
            "DUMP of {key} after RESTORE"
        );
    }
}

#[test]
fn streams_restore_both_ways_and_read_the_same() {
    let (r, d) = (redis(), damselfly(&[]));
    build_with_consumers(&mut Conn::open(r.port));
    restore_across(r.port, d.port);
    let (r2, d2) = (redis(), damselfly(&[]));
    build_with_consumers(&mut Conn::open(d2.port));
    restore_across(d2.port, r2.port);
}

fn save(port: u16) {
    assert_eq!(Conn::open(port).raw(&["SAVE"]), b"+OK\r\n");
}

fn compare_all(a: u16, b: u16) {
    let (mut x, mut y) = (Conn::open(a), Conn::open(b));
    assert_eq!(x.raw(&["DBSIZE"]), y.raw(&["DBSIZE"]));
    for key in ALL_KEYS {
        assert_same_views(&mut x, &mut y, key);
        assert_eq!(
            x.raw(&["DUMP", key]),
            y.raw(&["DUMP", key]),
            "DUMP of {key}"
        );
    }
}

#[test]
fn stream_rdb_files_round_trip_redis_damselfly_redis() {
    let r = redis();
    build_with_consumers(&mut Conn::open(r.port));
    save(r.port);
    let dir = tempdir::Dir::new("stream-rdb");
    std::fs::copy(r.dir.0.join("dump.rdb"), dir.0.join("dump.rdb")).expect("copy");
    let port = free_port();
    let mut child = Killed(spawn_damselfly(port, &dir.0, &[], Stdio::null()));
    wait_pong(port, &mut child.0);
    compare_all(r.port, port);
    save(port);
    let back = tempdir::Dir::new("stream-rdb-back");
    std::fs::copy(dir.0.join("dump.rdb"), back.0.join("dump.rdb")).expect("copy");
    let r2 = redis_in(back);
    compare_all(r.port, r2.port);
}

struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_pong(port: u16, child: &mut std::process::Child) {
    for _ in 0..3000 {
        assert!(
            child.try_wait().ok().flatten().is_none(),
            "damselfly exited while loading"
        );
        if let Ok(s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            drop(s);
            if Conn::open(port).raw(&["PING"]) == b"+PONG\r\n" {
                return;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("damselfly never answered PING");
}

/// A DUMP payload: body, RDB version, CRC-64.
fn payload(body: &[u8], version: u16) -> Vec<u8> {
    let mut p = body.to_vec();
    p.extend_from_slice(&version.to_le_bytes());
    let crc = crc::Crc::<u64>::new(&crc::CRC_64_REDIS).checksum(&p);
    p.extend_from_slice(&crc.to_le_bytes());
    p
}

fn id(ms: u64, seq: u64) -> Vec<u8> {
    [ms.to_be_bytes(), seq.to_be_bytes()].concat()
}

/// One node keyed 1-1: entries 1-1 (a 1 b hello), 1-2 deleted (a 2 b
/// world), 5-0 (x y), as Redis 7.0 lays it out.
fn node() -> Vec<u8> {
    let mut n = vec![0x10];
    n.extend(id(1, 1));
    n.extend_from_slice(
        b"@HH\x00\x00\x00\x19\x00\x02\x01\x01\x01\x02\x01\x81a\x02\x81b\x02\x00\x01\x02\x01\x00\x01\x00\x01\x01\x01\x85hello\x06\x05\x01\x03\x01\x00\x01\x01\x01\x02\x01\x85world\x06\x05\x01\x00\x01\x04\x01\xdf\xff\x02\x01\x01\x81x\x02\x81y\x02\x06\x01\xff",
    );
    n
}

/// Type 15 (Redis 5 and 6): no first/deleted IDs, no read counters; Redis
/// 7.0 derives them on load, and so must we.
#[test]
fn redis_6_stream_payloads_load_as_in_redis_7() {
    let mut body = vec![15, 1];
    body.extend(node());
    body.extend_from_slice(b"\x02\x05\x00"); // length 2, last ID 5-0
    body.extend_from_slice(b"\x02\x01g\x01\x01"); // group g at 1-1
    body.push(1);
    body.extend(id(1, 1));
    body.extend_from_slice(&1_700_000_000_000u64.to_le_bytes());
    body.push(3);
    body.extend_from_slice(b"\x01\x05alice");
    body.extend_from_slice(&1_700_000_000_123u64.to_le_bytes());
    body.push(1);
    body.extend(id(1, 1));
    body.extend_from_slice(b"\x01h\x05\x00\x00\x00"); // group h at 5-0, nothing pending
                                                      // No nodes, length 0, last ID 7-2, no groups.
    let empty = [15, 0, 0, 7, 2, 0];
    let p = payload(&body, 9);
    let e = payload(&empty, 9);
    let (r, d) = (redis(), damselfly(&[]));
    for port in [r.port, d.port] {
        let mut c = Conn::open(port);
        assert_eq!(c.raw(&[b"RESTORE".as_slice(), b"s", b"0", &p]), b"+OK\r\n");
        assert_eq!(c.raw(&[b"RESTORE".as_slice(), b"e", b"0", &e]), b"+OK\r\n");
    }
    let (mut a, mut b) = (Conn::open(r.port), Conn::open(d.port));
    for key in ["s", "e"] {
        assert_same_views(&mut a, &mut b, key);
        assert_eq!(
            a.raw(&["DUMP", key]),
            b.raw(&["DUMP", key]),
            "DUMP of {key}"
        );
    }
}

/// Payloads whose inconsistency Redis 7.0 catches without deep
/// sanitization get the same error here.
#[test]
fn inconsistent_stream_payloads_are_refused_as_in_redis() {
    let with_group = |pel_id: (u64, u64), consumer_id: (u64, u64)| {
        let mut body = vec![19, 1];
        body.extend(node());
        body.extend_from_slice(b"\x02\x05\x00\x01\x01\x01\x02\x03");
        body.extend_from_slice(b"\x01\x01g\x05\x00\x03\x01");
        body.extend(id(pel_id.0, pel_id.1));
        body.extend_from_slice(&7u64.to_le_bytes());
        body.extend_from_slice(b"\x01\x01\x01c");
        body.extend_from_slice(&7u64.to_le_bytes());
        body.push(1);
        body.extend(id(consumer_id.0, consumer_id.1));
        payload(&body, 10)
    };
    let good = with_group((1, 1), (1, 1));
    let orphan = with_group((1, 1), (5, 0));
    let mut dup_group = vec![19, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
    dup_group.extend_from_slice(b"\x01g\x00\x00\x00\x00\x00\x01g\x00\x00\x00\x00\x00");
    let dup_group = payload(&dup_group, 10);
    let mut script = String::new();
    for (k, p) in [("good", &good), ("orphan", &orphan), ("dup", &dup_group)] {
        let hex: String = p.iter().map(|b| format!("\\x{b:02x}")).collect();
        script.push_str(&format!("RESTORE {k} 0 \"{hex}\"\nEXISTS {k}\n"));
    }
    script.push_str("XPENDING good g - + 10\n");
    diff(&script);
}
