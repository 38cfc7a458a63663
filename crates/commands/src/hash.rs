//! Hash commands: HSET HSETNX HMSET HGET HMGET HDEL HLEN HSTRLEN HEXISTS
//! HKEYS HVALS HGETALL HINCRBY HINCRBYFLOAT HRANDFIELD HSCAN.

use crate::args::{eq, int, scan_cursor, scan_options};
use crate::cmd;
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::table::{Command, Keys::Range};
use damselfly_core::glob::glob_match;
use damselfly_core::hash::{Hash, Limits};
use damselfly_protocol::{Args, Reply};
use damselfly_storage::typed;
use std::sync::atomic::Ordering::Relaxed;

pub(crate) static COMMANDS: &[Command] = &[
    cmd!(
        "hset",
        -4,
        "write denyoom fast",
        Range(1, 1, 1),
        "@write @hash @fast",
        "hash",
        "2.0.0",
        hset
    ),
    cmd!(
        "hsetnx",
        4,
        "write denyoom fast",
        Range(1, 1, 1),
        "@write @hash @fast",
        "hash",
        "2.0.0",
        hsetnx
    ),
    cmd!(
        "hmset",
        -4,
        "write denyoom fast",
        Range(1, 1, 1),
        "@write @hash @fast",
        "hash",
        "2.0.0",
        hmset
    ),
    cmd!(
        "hget",
        3,
        "readonly fast",
        Range(1, 1, 1),
        "@read @hash @fast",
        "hash",
        "2.0.0",
        hget
    ),
    cmd!(
        "hmget",
        -3,
        "readonly fast",
        Range(1, 1, 1),
        "@read @hash @fast",
        "hash",
        "2.0.0",
        hmget
    ),
    cmd!(
        "hdel",
        -3,
        "write fast",
        Range(1, 1, 1),
        "@write @hash @fast",
        "hash",
        "2.0.0",
        hdel
    ),
    cmd!(
        "hlen",
        2,
        "readonly fast",
        Range(1, 1, 1),
        "@read @hash @fast",
        "hash",
        "2.0.0",
        hlen
    ),
    cmd!(
        "hstrlen",
        3,
        "readonly fast",
        Range(1, 1, 1),
        "@read @hash @fast",
        "hash",
        "3.2.0",
        hstrlen
    ),
    cmd!(
        "hexists",
        3,
        "readonly fast",
        Range(1, 1, 1),
        "@read @hash @fast",
        "hash",
        "2.0.0",
        hexists
    ),
    cmd!(
        "hkeys",
        2,
        "readonly",
        Range(1, 1, 1),
        "@read @hash @slow",
        "hash",
        "2.0.0",
        hkeys
    ),
    cmd!(
        "hvals",
        2,
        "readonly",
        Range(1, 1, 1),
        "@read @hash @slow",
        "hash",
        "2.0.0",
        hvals
    ),
    cmd!(
        "hgetall",
        2,
        "readonly",
        Range(1, 1, 1),
        "@read @hash @slow",
        "hash",
        "2.0.0",
        hgetall
    ),
    cmd!(
        "hincrby",
        4,
        "write denyoom fast",
        Range(1, 1, 1),
        "@write @hash @fast",
        "hash",
        "2.0.0",
        hincrby
    ),
    cmd!(
        "hincrbyfloat",
        4,
        "write denyoom fast",
        Range(1, 1, 1),
        "@write @hash @fast",
        "hash",
        "2.6.0",
        hincrbyfloat
    ),
    cmd!(
        "hrandfield",
        -2,
        "readonly",
        Range(1, 1, 1),
        "@read @hash @slow",
        "hash",
        "6.2.0",
        hrandfield
    ),
    cmd!(
        "hscan",
        -3,
        "readonly",
        Range(1, 1, 1),
        "@read @hash @slow",
        "hash",
        "2.8.0",
        hscan
    ),
];

fn arg<'a>(args: &Args<'a>, i: usize) -> &'a [u8] {
    args.get(i).unwrap_or_default()
}

fn limits(ctx: &Ctx) -> Limits {
    let e = &ctx.server.config.encodings;
    Limits {
        max_entries: usize::try_from(e.hash_max_listpack_entries.load(Relaxed)).unwrap_or(0),
        max_value: usize::try_from(e.hash_max_listpack_value.load(Relaxed)).unwrap_or(0),
    }
}

fn set_pairs(ctx: &mut Ctx, args: &Args) -> CmdResult<i64> {
    let lim = limits(ctx);
    let key = arg(args, 1);
    let (db, now) = (ctx.db(), ctx.now);
    let shard = ctx.shard(key);
    let h = typed::write_or_create::<Hash>(shard, db, key, now)?;
    let mut added = 0;
    let mut i = 2;
    while i + 1 < args.len() {
        if h.set(arg(args, i), arg(args, i + 1), lim) {
            added += 1;
        }
        i += 2;
    }
    shard.written(db, key, "hset");
    Ok(added)
}

/// HSET key field value [field value ...]
fn hset(ctx: &mut Ctx, args: &Args) -> CmdResult {
    if args.len() % 2 == 1 {
        return Err(CmdError::WrongArity("hset".into()));
    }
    let n = set_pairs(ctx, args)?;
    ctx.reply.int(n);
    Ok(())
}

/// HMSET key field value [field value ...]
fn hmset(ctx: &mut Ctx, args: &Args) -> CmdResult {
    if args.len() % 2 == 1 {
        return Err(CmdError::WrongArity("hmset".into()));
    }
    set_pairs(ctx, args)?;
    ctx.reply.ok();
    Ok(())
}

/// HSETNX key field value
fn hsetnx(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let lim = limits(ctx);
    let (key, field) = (arg(args, 1), arg(args, 2));
    let (db, now) = (ctx.db(), ctx.now);
    let shard = ctx.shard(key);
    let h = typed::write_or_create::<Hash>(shard, db, key, now)?;
    if h.contains(field) {
        ctx.reply.int(0);
        return Ok(());
    }
    h.set(field, arg(args, 3), lim);
    shard.written(db, key, "hset");
    ctx.reply.int(1);
    Ok(())
}

/// HGET key field
fn hget(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let key = arg(args, 1);
    let (db, now) = (ctx.db(), ctx.now);
    let (shard, reply) = ctx.shard_and_reply(key);
    match typed::read::<Hash>(shard, db, key, now)?.and_then(|h| h.get(arg(args, 2))) {
        Some(v) => reply.bulk(v),
        None => reply.null(),
    }
    Ok(())
}

/// HMGET key field [field ...]
fn hmget(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let key = arg(args, 1);
    let (db, now) = (ctx.db(), ctx.now);
    let (shard, reply) = ctx.shard_and_reply(key);
    let h = typed::read::<Hash>(shard, db, key, now)?;
    reply.array(args.len() - 2);
    for f in args.iter().skip(2) {
        match h.and_then(|h| h.get(f)) {
            Some(v) => reply.bulk(v),
            None => reply.null(),
        }
    }
    Ok(())
}

/// HDEL key field [field ...]
fn hdel(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let key = arg(args, 1);
    let (db, now) = (ctx.db(), ctx.now);
    let shard = ctx.shard(key);
    let mut n = 0;
    if let Some(h) = typed::write::<Hash>(shard, db, key, now)? {
        for f in args.iter().skip(2) {
            if h.remove(f) {
                n += 1;
                if h.is_empty() {
                    break;
                }
            }
        }
    }
    if n > 0 {
        shard.written(db, key, "hdel");
        typed::drop_if_empty::<Hash>(shard, db, key, now);
    }
    ctx.reply.int(n);
    Ok(())
}

/// HLEN key
fn hlen(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let key = arg(args, 1);
    let (db, now) = (ctx.db(), ctx.now);
    let n = typed::read::<Hash>(ctx.shard(key), db, key, now)?.map_or(0, |h| h.len());
    ctx.reply.int(n as i64);
    Ok(())
}

/// HSTRLEN key field
fn hstrlen(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let key = arg(args, 1);
    let (db, now) = (ctx.db(), ctx.now);
    let n = typed::read::<Hash>(ctx.shard(key), db, key, now)?
        .and_then(|h| h.get(arg(args, 2)))
        .map_or(0, <[u8]>::len);
    ctx.reply.int(n as i64);
    Ok(())
}

/// HEXISTS key field
fn hexists(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let key = arg(args, 1);
    let (db, now) = (ctx.db(), ctx.now);
    let yes = typed::read::<Hash>(ctx.shard(key), db, key, now)?
        .is_some_and(|h| h.contains(arg(args, 2)));
    ctx.reply.int(i64::from(yes));
    Ok(())
}

#[derive(Clone, Copy, PartialEq)]
enum Part {
    Keys,
    Vals,
    All,
}

fn get_all(ctx: &mut Ctx, args: &Args, part: Part) -> CmdResult {
    let key = arg(args, 1);
    let (db, now) = (ctx.db(), ctx.now);
    let (shard, reply) = ctx.shard_and_reply(key);
    let h = typed::read::<Hash>(shard, db, key, now)?;
    let n = h.map_or(0, |h| h.len());
    if part == Part::All {
        reply.map(n);
    } else {
        reply.array(n);
    }
    if let Some(h) = h {
        for (f, v) in h.iter() {
            if part != Part::Vals {
                reply.bulk(f);
            }
            if part != Part::Keys {
                reply.bulk(v);
            }
        }
    }
    Ok(())
}

/// HKEYS key
fn hkeys(ctx: &mut Ctx, args: &Args) -> CmdResult {
    get_all(ctx, args, Part::Keys)
}

/// HVALS key
fn hvals(ctx: &mut Ctx, args: &Args) -> CmdResult {
    get_all(ctx, args, Part::Vals)
}

/// HGETALL key
fn hgetall(ctx: &mut Ctx, args: &Args) -> CmdResult {
    get_all(ctx, args, Part::All)
}

/// HINCRBY key field increment
fn hincrby(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let by = int(arg(args, 3))?;
    let lim = limits(ctx);
    let (key, field) = (arg(args, 1), arg(args, 2));
    let (db, now) = (ctx.db(), ctx.now);
    let shard = ctx.shard(key);
    let h = typed::write_or_create::<Hash>(shard, db, key, now)?;
    let cur = match h.get(field) {
        Some(v) => damselfly_core::set::parse_i64(v)
            .ok_or_else(|| CmdError::Other("ERR hash value is not an integer".into()))?,
        None => 0,
    };
    let new = cur.checked_add(by).ok_or(CmdError::Overflow)?;
    h.set(field, damselfly_core::set::format_i64(new).as_bytes(), lim);
    shard.written(db, key, "hincrby");
    ctx.reply.int(new);
    Ok(())
}

/// HINCRBYFLOAT key field increment
fn hincrbyfloat(ctx: &mut Ctx, args: &Args) -> CmdResult {
    use damselfly_core::ldouble::{add, is_valid, LdError};
    let by = arg(args, 3);
    if !is_valid(by) {
        return Err(CmdError::NotFloat);
    }
    if add(b"0", by) == Err(LdError::NanOrInfinity) {
        return Err(CmdError::Other("ERR value is NaN or Infinity".into()));
    }
    let lim = limits(ctx);
    let (key, field) = (arg(args, 1), arg(args, 2));
    let (db, now) = (ctx.db(), ctx.now);
    let shard = ctx.shard(key);
    let h = typed::write_or_create::<Hash>(shard, db, key, now)?;
    let cur = h.get(field).unwrap_or(b"0");
    let sum = add(cur, by).map_err(|e| match e {
        LdError::BadValue => CmdError::Other("ERR hash value is not a float".into()),
        LdError::BadIncrement => CmdError::NotFloat,
        LdError::NanOrInfinity => CmdError::NanOrInfinity,
    })?;
    h.set(field, &sum, lim);
    shard.written(db, key, "hincrbyfloat");
    ctx.reply.bulk(&sum);
    // The result, not the increment: float formatting may differ elsewhere.
    crate::repl_master::instead(ctx.server, &[b"HSET", key, field, &sum]);
    Ok(())
}

/// One HRANDFIELD element: the field, or with values a pair (a two-element
/// array in RESP3, flat in RESP2).
fn reply_pick(reply: &mut Reply, withvalues: bool, f: &[u8], v: &[u8]) {
    if withvalues && reply.is_resp3() {
        reply.array(2);
    }
    reply.bulk(f);
    if withvalues {
        reply.bulk(v);
    }
}

fn rand_below(n: usize) -> usize {
    if n <= 1 {
        0
    } else {
        rand::random_range(0..n)
    }
}

/// HRANDFIELD key [count [WITHVALUES]]
fn hrandfield(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let key = arg(args, 1);
    let (db, now) = (ctx.db(), ctx.now);
    if args.len() == 2 {
        let (shard, reply) = ctx.shard_and_reply(key);
        match typed::read::<Hash>(shard, db, key, now)?.and_then(|h| h.random(rand_below)) {
            Some((f, _)) => reply.bulk(f),
            None => reply.null(),
        }
        return Ok(());
    }
    let count = int(arg(args, 2))?;
    if count == i64::MIN {
        return Err(CmdError::Other(format!(
            "ERR value is out of range, value must between {} and {}",
            -i64::MAX,
            i64::MAX
        )));
    }
    let withvalues = args.len() == 4 && eq(arg(args, 3), "withvalues");
    if args.len() > 4 || (args.len() == 4 && !withvalues) {
        return Err(CmdError::Syntax);
    }
    if withvalues && !(-i64::MAX / 2..=i64::MAX / 2).contains(&count) {
        return Err(CmdError::Other("ERR value is out of range".into()));
    }
    let (shard, reply) = ctx.shard_and_reply(key);
    let Some(h) = typed::read::<Hash>(shard, db, key, now)? else {
        reply.array(0);
        return Ok(());
    };
    let flat = withvalues && !reply.is_resp3();
    let header = |reply: &mut Reply, n: usize| reply.array(if flat { n * 2 } else { n });
    if count == 0 {
        reply.array(0);
        return Ok(());
    }
    let size = h.len();
    if count < 0 {
        let n = usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX);
        header(reply, n);
        if n.saturating_mul(4) >= size {
            // Many picks: index one list of every pair (exactly uniform).
            let all: Vec<(&[u8], &[u8])> = h.iter().collect();
            for _ in 0..n {
                if let Some(&(f, v)) = all.get(rand_below(all.len())) {
                    reply_pick(reply, withvalues, f, v);
                }
            }
        } else {
            for _ in 0..n {
                if let Some((f, v)) = h.random(rand_below) {
                    reply_pick(reply, withvalues, f, v);
                }
            }
        }
        return Ok(());
    }
    let count = count as usize;
    if count >= size {
        header(reply, size);
        for (f, v) in h.iter() {
            reply_pick(reply, withvalues, f, v);
        }
        return Ok(());
    }
    let picks: Vec<(&[u8], &[u8])> = if count.saturating_mul(3) > size {
        // Many of them: shuffle the front of the whole list.
        let mut all: Vec<(&[u8], &[u8])> = h.iter().collect();
        for i in 0..count {
            let j = i + rand_below(all.len() - i);
            all.swap(i, j);
        }
        all.truncate(count);
        all
    } else {
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        while out.len() < count {
            if let Some((f, v)) = h.random(rand_below) {
                if seen.insert(f) {
                    out.push((f, v));
                }
            }
        }
        out
    };
    header(reply, picks.len());
    for (f, v) in picks {
        reply_pick(reply, withvalues, f, v);
    }
    Ok(())
}

/// HSCAN key cursor [MATCH pattern] [COUNT count]
fn hscan(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let cursor = scan_cursor(arg(args, 2))?;
    let key = arg(args, 1);
    let (db, now) = (ctx.db(), ctx.now);
    let (shard, reply) = ctx.shard_and_reply(key);
    let Some(h) = typed::read::<Hash>(shard, db, key, now)? else {
        reply.array(2);
        reply.bulk(b"0");
        reply.array(0);
        return Ok(());
    };
    let (count, pattern) = scan_options(args, 3)?;
    let mut items: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let next = h.scan(cursor, count, |f, v| {
        if pattern.is_none_or(|p| glob_match(p, f, false)) {
            items.push((f.to_vec(), v.to_vec()));
        }
    });
    reply.array(2);
    reply.bulk(next.to_string().as_bytes());
    reply.array(items.len() * 2);
    for (f, v) in &items {
        reply.bulk(f);
        reply.bulk(v);
    }
    Ok(())
}
