//! Scripts lock only the shards they need: a running script leaves the
//! other shards to other clients, and scripts that touch keys they did not
//! declare (restart, escalation) stay atomic and never deadlock, mixed
//! with transactions and multi-key commands on several worker threads.

use crate::scripting::wait_for;
use crate::support::{damselfly, Conn};
use damselfly_core::slot::key_shard;

/// The server's shard of `key` (256 shards).
fn shard(key: &str) -> usize {
    key_shard(key.as_bytes(), 256)
}

#[test]
fn running_script_with_declared_keys_leaves_other_shards_free() {
    let d = damselfly(&["--proactor_threads", "2"]);
    let mut admin = Conn::open(d.port);
    // No BUSY replies during this test: only the locks matter.
    admin.cmd(&["CONFIG", "SET", "busy-reply-threshold", "1000000"]);
    let lib = "#!lua name=spin\n\
               redis.register_function('spin', function(keys) \
               redis.call('get', keys[1]) while true do end end)";
    assert_eq!(admin.cmd(&["FUNCTION", "LOAD", lib]), "$4\r\nspin\r\n");
    let held = "{a}held";
    let others: Vec<String> = (0..40)
        .map(|i| format!("{{o{i}}}k"))
        .filter(|k| shard(k) != shard(held))
        .collect();
    let mut runner = Conn::open(d.port);
    runner.send(&["FCALL", "spin", "1", held]);
    let running = |c: &mut Conn| c.cmd(&["FUNCTION", "STATS"]).contains("spin");
    wait_for(|| running(&mut admin));

    // Clients on every other shard are served meanwhile, on both threads.
    for (n, key) in others.iter().enumerate() {
        let mut c = Conn::open(d.port);
        assert_eq!(c.cmd(&["SET", key, &n.to_string()]), "+OK\r\n");
        assert!(c.cmd(&["GET", key]).ends_with(&format!("{n}\r\n")));
    }
    let mut c = Conn::open(d.port);
    let pairs: Vec<&str> = others
        .iter()
        .take(5)
        .flat_map(|k| [k.as_str(), "m"])
        .collect();
    let mut mset = vec!["MSET"];
    mset.extend(pairs);
    assert_eq!(c.cmd(&mset), "+OK\r\n");
    c.cmd(&["MULTI"]);
    c.cmd(&["INCR", &others[6]]);
    c.cmd(&["DEL", &others[7]]);
    c.cmd(&["LPUSH", &others[7], "x"]);
    assert_eq!(c.cmd(&["EXEC"]), "*3\r\n:7\r\n:1\r\n:1\r\n");
    assert!(running(&mut admin), "the script still runs");

    assert_eq!(admin.cmd(&["FUNCTION", "KILL"]), "+OK\r\n");
    let reply = String::from_utf8_lossy(&runner.read()).into_owned();
    assert!(reply.contains("Script killed by user"), "{reply}");
}

/// Moves ARGV[1] from KEYS[1] to KEYS[2], counting the move in KEYS[3].
const DECLARED: &str = "local a = tonumber(redis.call('get', KEYS[1])) \
    redis.call('set', KEYS[1], a - ARGV[1]) \
    redis.call('incrby', KEYS[2], ARGV[1]) \
    redis.call('incr', KEYS[3]) return 1";

/// The same with keys named in ARGV, reading first (a busy shard makes
/// the run start again holding every shard).
const UNDECLARED_READ_FIRST: &str = "local a = tonumber(redis.call('get', ARGV[1])) \
    local b = tonumber(redis.call('get', ARGV[2])) \
    redis.call('set', ARGV[1], a - ARGV[3]) \
    redis.call('set', ARGV[2], b + ARGV[3]) \
    redis.call('incr', ARGV[4]) return 2";

/// Keys named in ARGV, writing first (a busy shard after that makes the
/// run escalate while it holds what it has).
const UNDECLARED_WRITE_FIRST: &str = "redis.call('incr', ARGV[4]) \
    redis.call('decrby', ARGV[1], ARGV[3]) \
    redis.call('incrby', ARGV[2], ARGV[3]) return 3";

/// Sums every account and every list's length in one atomic look.
const TOTALS: &str = "local s = 0 for i = 1, tonumber(ARGV[1]) do \
    s = s + tonumber(redis.call('get', 'acct:' .. (i - 1))) end \
    local l = 0 for i = 1, tonumber(ARGV[1]) do \
    l = l + redis.call('llen', 'list:' .. (i - 1)) end return {s, l}";

const ACCOUNTS: usize = 12;
const START: i64 = 1000;
const ITEMS: usize = 4;

/// A small deterministic generator (no timing, reproducible per client).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n
    }
}

fn int(reply: &[u8]) -> i64 {
    let s = String::from_utf8_lossy(reply);
    let s = s.trim_end();
    let digits = s
        .rsplit('\n')
        .next()
        .unwrap_or(s)
        .trim_start_matches([':', '$']);
    digits
        .parse()
        .unwrap_or_else(|_| panic!("not a number: {s}"))
}

#[test]
fn mixed_scripts_transactions_and_multikey_commands_are_serializable() {
    const CLIENTS: usize = 8;
    const OPS: usize = 250;
    let d = damselfly(&["--proactor_threads", "4"]);
    let port = d.port;
    let mut c = Conn::open(port);
    for i in 0..ACCOUNTS {
        c.cmd(&["SET", &format!("acct:{i}"), &START.to_string()]);
        for _ in 0..ITEMS {
            c.cmd(&["RPUSH", &format!("list:{i}"), "item"]);
        }
    }
    let lib = "#!lua name=bank\nredis.register_function('move', function(keys, argv) \
         redis.call('decrby', keys[1], argv[1]) redis.call('incrby', keys[2], argv[1]) \
         redis.call('incr', keys[3]) return 4 end)\n\
         redis.register_function('move_argv', function(keys, argv) \
         local a = tonumber(redis.call('get', argv[1])) \
         redis.call('set', argv[1], a - argv[3]) redis.call('incrby', argv[2], argv[3]) \
         redis.call('incr', argv[4]) return 5 end)";
    assert_eq!(c.cmd(&["FUNCTION", "LOAD", lib]), "$4\r\nbank\r\n");
    let total_money = START * ACCOUNTS as i64;
    let total_items = (ITEMS * ACCOUNTS) as i64;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let checker = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut c = Conn::open(port);
            let n = ACCOUNTS.to_string();
            let mut looks = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let r = String::from_utf8_lossy(&c.raw(&["EVAL_RO", TOTALS, "0", &n])).into_owned();
                assert_eq!(r, format!("*2\r\n:{total_money}\r\n:{total_items}\r\n"));
                let keys: Vec<String> = (0..ACCOUNTS).map(|i| format!("acct:{i}")).collect();
                let mut mget = vec!["MGET".to_string()];
                mget.extend(keys);
                let r = String::from_utf8_lossy(&c.raw(&mget)).into_owned();
                let sum: i64 = r
                    .lines()
                    .skip(1)
                    .filter(|l| !l.starts_with('$'))
                    .map(|l| l.parse::<i64>().expect("number"))
                    .sum();
                assert_eq!(sum, total_money, "{r}");
                looks += 1;
            }
            looks
        })
    };
    let workers: Vec<_> = (0..CLIENTS)
        .map(|t| {
            std::thread::spawn(move || {
                let mut c = Conn::open(port);
                let mut rng = Lcg(t as u64 * 7919 + 1);
                let mut net = vec![0i64; ACCOUNTS];
                let mut moves = 0i64;
                for op in 0..OPS {
                    // A script seen to need more than its declared shards
                    // locks them all from then on: fresh copies (a comment
                    // makes a new SHA1) keep the restart and escalation
                    // paths busy.
                    let fresh = |body: &str| format!("{body} -- {t}/{op}");
                    let src = rng.below(ACCOUNTS);
                    let dst = (src + 1 + rng.below(ACCOUNTS - 1)) % ACCOUNTS;
                    let (s, t) = (format!("acct:{src}"), format!("acct:{dst}"));
                    let amt = (1 + rng.below(9)).to_string();
                    let kind = rng.below(7);
                    let r = match kind {
                        0 => c.raw(&["EVAL", DECLARED, "3", &s, &t, "ops", &amt]),
                        1 => {
                            let body = fresh(UNDECLARED_READ_FIRST);
                            c.raw(&["EVAL", &body, "0", &s, &t, &amt, "ops"])
                        }
                        2 => {
                            let body = fresh(UNDECLARED_WRITE_FIRST);
                            c.raw(&["EVAL", &body, "0", &s, &t, &amt, "ops"])
                        }
                        3 => c.raw(&["FCALL", "move", "3", &s, &t, "ops", &amt]),
                        4 => c.raw(&["FCALL", "move_argv", "0", &s, &t, &amt, "ops"]),
                        5 => {
                            c.raw(&["MULTI"]);
                            c.raw(&["DECRBY", &s, &amt]);
                            c.raw(&["INCRBY", &t, &amt]);
                            c.raw(&["EVAL", "return redis.call('incr', KEYS[1])", "1", "ops"]);
                            c.raw(&["EXEC"])
                        }
                        _ => {
                            // A multi-key command between two lists: moves
                            // nothing when the source is empty.
                            let (ls, lt) = (format!("list:{src}"), format!("list:{dst}"));
                            c.raw(&["LMOVE", &ls, &lt, "LEFT", "RIGHT"]);
                            continue;
                        }
                    };
                    let text = String::from_utf8_lossy(&r).into_owned();
                    assert!(text.starts_with(':') || text.starts_with('*'), "{text}");
                    let a: i64 = amt.parse().expect("amount");
                    net[src] -= a;
                    net[dst] += a;
                    moves += 1;
                }
                (net, moves)
            })
        })
        .collect();
    let mut net = [0i64; ACCOUNTS];
    let mut moves = 0;
    for w in workers {
        let (n, m) = w.join().expect("client");
        for (total, x) in net.iter_mut().zip(n) {
            *total += x;
        }
        moves += m;
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(checker.join().expect("checker") > 0);
    // The serial result: every move applied once.
    for (i, n) in net.iter().enumerate() {
        assert_eq!(
            int(&c.raw(&["GET", &format!("acct:{i}")])),
            START + n,
            "acct:{i}"
        );
    }
    assert_eq!(int(&c.raw(&["GET", "ops"])), moves);
    let items: i64 = (0..ACCOUNTS)
        .map(|i| int(&c.raw(&["LLEN", &format!("list:{i}")])))
        .sum();
    assert_eq!(items, total_items);
}
