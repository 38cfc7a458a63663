//! DEBUG subcommands that look at or build data: OBJECT, POPULATE, SLEEP,
//! ERROR, PROTOCOL (LOG, RELOAD and SET-ACTIVE-EXPIRE live beside DEBUG in
//! `server.rs`).

use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use damselfly_protocol::Args;
use damselfly_storage::{Entry, Shard, ValueRef};

/// Handles `sub` when it is one of ours; `None` leaves it to the caller.
pub(crate) fn run(ctx: &mut Ctx, sub: &[u8], args: &Args) -> Option<CmdResult> {
    let is = |name: &str| sub.eq_ignore_ascii_case(name.as_bytes());
    Some(match args.len() {
        3 if is("object") => object(ctx, args.get(2).unwrap_or_default()),
        3 if is("sleep") => {
            sleep(args.get(2).unwrap_or_default());
            ctx.reply.ok();
            Ok(())
        }
        3 if is("error") => {
            let text = String::from_utf8_lossy(args.get(2).unwrap_or_default());
            ctx.reply.error(&text);
            Ok(())
        }
        3 if is("protocol") => protocol(ctx, args.get(2).unwrap_or_default()),
        3..=5 if is("populate") => populate(ctx, args),
        n if n >= 3 && is("replicate") => {
            // Straight into the stream, as the test suite uses it to make
            // a replica fail a command.
            let argv: Vec<&[u8]> = args.iter().skip(2).collect();
            let mut bytes = Vec::new();
            damselfly_replication::master::encode(&mut bytes, &argv);
            ctx.server.repl.feed_raw(&bytes);
            ctx.reply.ok();
            Ok(())
        }
        _ => return None,
    })
}

/// DEBUG PROTOCOL type: a fixed sample reply of each RESP type, written as
/// the client's protocol carries it (clients and scripts test their
/// parsers against these).
fn protocol(ctx: &mut Ctx, kind: &[u8]) -> CmdResult {
    let out = &mut *ctx.reply;
    let kind = kind.to_ascii_lowercase();
    match kind.as_slice() {
        b"string" => out.bulk(b"Hello World"),
        b"integer" => out.int(12345),
        b"double" => out.double(3.141),
        b"bignum" => out.big_number(b"1234567999999999999999999999999999999"),
        b"null" => out.null(),
        b"array" | b"set" => {
            if kind == b"set" {
                out.set(3);
            } else {
                out.array(3);
            }
            (0..3).for_each(|i| out.int(i));
        }
        b"map" => {
            out.map(3);
            for i in 0..3 {
                out.int(i);
                out.bool(i == 1);
            }
        }
        b"attrib" => {
            if out.is_resp3() {
                out.attribute(1);
                out.bulk(b"key-popularity");
                out.array(2);
                out.bulk(b"key:123");
                out.int(90);
            }
            out.bulk(b"Some real reply following the attribute");
        }
        b"push" => {
            if !out.is_resp3() {
                return Err(CmdError::Resp2NotSupported);
            }
            out.push(2);
            out.bulk(b"server-cpu-usage");
            out.int(42);
            // A client that drops pushes still gets a reply to wait for.
            out.bulk(b"Some real reply following the push reply");
        }
        b"verbatim" => out.verbatim("txt", b"This is a verbatim\nstring"),
        b"true" => out.bool(true),
        b"false" => out.bool(false),
        _ => return Err(CmdError::DebugProtocolType),
    }
    Ok(())
}

/// Runs `f` on `key`'s shard: the one the command already holds (inside
/// EXEC every shard is held), else locked for the call. DEBUG has no key
/// spec, so outside EXEC nothing is held and the lock order is kept.
fn with_shard<T>(ctx: &mut Ctx, key: &[u8], f: impl FnOnce(&mut Shard) -> T) -> T {
    let idx = ctx.server.keyspace.shard_of(key);
    match ctx.locked.get(idx) {
        Some(s) => f(s),
        None => f(&mut ctx.server.keyspace.lock_one(idx)),
    }
}

/// DEBUG OBJECT key: Redis's one line of low-level facts. The address is
/// the value's own; `serializedlength` is the length of the value's RDB
/// encoding (what DUMP holds between the type byte and the trailer); `lru`
/// is the access clock in seconds on Redis's 24 bits.
fn object(ctx: &mut Ctx, key: &[u8]) -> CmdResult {
    let db = ctx.db();
    let limits = crate::persist::limits(ctx.server);
    let clock = damselfly_storage::clock_secs();
    // The key as stored, even past its TTL (Redis looks it up in the dict
    // directly; a replica's test relies on it).
    let line = with_shard(ctx, key, |s| {
        let e = s.dbs.get_mut(db)?.table.get_mut(key)?;
        Some(describe(e, &limits, clock))
    })
    .ok_or(CmdError::NoSuchKey)?;
    ctx.reply.simple(line.as_bytes());
    Ok(())
}

fn describe(e: &Entry, limits: &damselfly_persistence::Limits, clock: u32) -> String {
    let refcount = match e.value() {
        ValueRef::Int(n) if (0..10000).contains(&n) => i32::MAX,
        _ => 1,
    };
    let mut serialized = Vec::new();
    damselfly_persistence::codec::write_object(&mut serialized, e.value(), limits);
    let mut line = format!(
        "Value at:{:p} refcount:{refcount} encoding:{} serializedlength:{} lru:{} lru_seconds_idle:{}",
        e.addr(),
        e.value().encoding(),
        serialized.len(),
        e.clock(),
        e.idle_secs(clock)
    );
    if let ValueRef::List(l) = e.value() {
        let nodes = damselfly_persistence::codec::list_nodes(l, limits.list_fill);
        let count = nodes.len().max(1);
        let bytes: usize = nodes.iter().map(Vec::len).sum();
        line.push_str(&format!(
            " ql_nodes:{} ql_avg_node:{:.2} ql_listpack_max:{} ql_compressed:0 ql_uncompressed_size:{bytes}",
            nodes.len(),
            l.len() as f64 / count as f64,
            limits.list_fill
        ));
    }
    line
}

/// DEBUG SLEEP seconds: blocks this worker thread (Redis blocks its only
/// one); a non-number sleeps 0 seconds, as Redis's `strtod` reads it.
fn sleep(arg: &[u8]) {
    let secs = crate::args::parse_f64(arg).unwrap_or(0.0);
    if secs > 0.0 && secs.is_finite() {
        std::thread::sleep(std::time::Duration::from_secs_f64(secs.min(86_400.0)));
    }
}

/// DEBUG POPULATE count [prefix] [size]: string keys `prefix:N` holding
/// `value:N` (with a size, cut or padded with zero bytes to it); existing
/// keys are left alone.
fn populate(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let count = crate::args::parse_i64(args.get(2).unwrap_or_default())
        .filter(|n| *n >= 0)
        .ok_or(CmdError::MustBePositive)?;
    let prefix = args.get(3).unwrap_or(b"key");
    // A size of 0 means none, as in Redis.
    let size = match args.get(4) {
        None => 0,
        Some(s) => crate::args::parse_i64(s)
            .filter(|n| *n >= 0)
            .ok_or(CmdError::MustBePositive)? as usize,
    };
    let (db, now) = (ctx.db(), ctx.now);
    for i in 0..count {
        let mut key = prefix.to_vec();
        key.extend_from_slice(format!(":{i}").as_bytes());
        let mut value = format!("value:{i}").into_bytes();
        if size > 0 {
            value.resize(size, 0);
        }
        with_shard(ctx, &key, |s| {
            if !s.contains(db, &key, now) {
                s.put_string(db, &key, &value, 0);
            }
        });
    }
    ctx.reply.ok();
    Ok(())
}
