//! List commands, and the blocking machinery BLPOP & co. stand on.
//!
//! Blocking (see ARCHITECTURE.md, "Blocking"): a blocking command that finds
//! nothing to pop registers a `Waiter` on each of its keys, in the queues of
//! the key shards it holds, and hands a `Blocked` back to the dispatcher. A
//! write to a waited-on key marks it ready (the write door); before the
//! dispatcher releases the locks of the command that did it, `serve_ready`
//! runs each ready key's waiters in FIFO order, popping on their behalf and
//! delivering the reply bytes. The blocked connection awaits that delivery,
//! its timeout, or its socket closing; `BlockGuard` deregisters it on every
//! path.

use crate::args::{eq, int};
use crate::cmd;
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::state::Server;
use crate::table::{
    Command,
    Keys::{NumKeys, Range},
};
use damselfly_core::list::{End, List};
use damselfly_protocol::{Args, Reply};
use damselfly_storage::typed;
use damselfly_storage::{Entry, Keyspace, Locked, Shard, Value, ValueRef};
use parking_lot::Mutex;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::Duration;

pub(crate) static COMMANDS: &[Command] = &[
    cmd!(
        "lpush",
        -3,
        "write denyoom fast",
        Range(1, 1, 1),
        "@write @list @fast",
        "list",
        "1.0.0",
        lpush
    ),
    cmd!(
        "rpush",
        -3,
        "write denyoom fast",
        Range(1, 1, 1),
        "@write @list @fast",
        "list",
        "1.0.0",
        rpush
    ),
    cmd!(
        "lpushx",
        -3,
        "write denyoom fast",
        Range(1, 1, 1),
        "@write @list @fast",
        "list",
        "2.2.0",
        lpushx
    ),
    cmd!(
        "rpushx",
        -3,
        "write denyoom fast",
        Range(1, 1, 1),
        "@write @list @fast",
        "list",
        "2.2.0",
        rpushx
    ),
    cmd!(
        "lpop",
        -2,
        "write fast",
        Range(1, 1, 1),
        "@write @list @fast",
        "list",
        "1.0.0",
        lpop
    ),
    cmd!(
        "rpop",
        -2,
        "write fast",
        Range(1, 1, 1),
        "@write @list @fast",
        "list",
        "1.0.0",
        rpop
    ),
    cmd!(
        "llen",
        2,
        "readonly fast",
        Range(1, 1, 1),
        "@read @list @fast",
        "list",
        "1.0.0",
        llen
    ),
    cmd!(
        "lrange",
        4,
        "readonly",
        Range(1, 1, 1),
        "@read @list @slow",
        "list",
        "1.0.0",
        lrange
    ),
    cmd!(
        "lindex",
        3,
        "readonly",
        Range(1, 1, 1),
        "@read @list @slow",
        "list",
        "1.0.0",
        lindex
    ),
    cmd!(
        "lset",
        4,
        "write denyoom",
        Range(1, 1, 1),
        "@write @list @slow",
        "list",
        "1.0.0",
        lset
    ),
    cmd!(
        "linsert",
        5,
        "write denyoom",
        Range(1, 1, 1),
        "@write @list @slow",
        "list",
        "2.2.0",
        linsert
    ),
    cmd!(
        "lrem",
        4,
        "write",
        Range(1, 1, 1),
        "@write @list @slow",
        "list",
        "1.0.0",
        lrem
    ),
    cmd!(
        "ltrim",
        4,
        "write",
        Range(1, 1, 1),
        "@write @list @slow",
        "list",
        "1.0.0",
        ltrim
    ),
    cmd!(
        "lpos",
        -3,
        "readonly",
        Range(1, 1, 1),
        "@read @list @slow",
        "list",
        "6.0.6",
        lpos
    ),
    cmd!(
        "lmove",
        5,
        "write denyoom",
        Range(1, 2, 1),
        "@write @list @slow",
        "list",
        "6.2.0",
        lmove
    ),
    cmd!(
        "rpoplpush",
        3,
        "write denyoom",
        Range(1, 2, 1),
        "@write @list @slow",
        "list",
        "1.2.0",
        rpoplpush
    ),
    cmd!(
        "lmpop",
        -4,
        "write",
        NumKeys {
            dest: false,
            numkeys: 1
        },
        "@write @list @slow",
        "list",
        "7.0.0",
        lmpop
    ),
    cmd!(
        "blpop",
        -3,
        "write noscript blocking",
        Range(1, -2, 1),
        "@write @list @slow @blocking",
        "list",
        "2.0.0",
        blpop
    ),
    cmd!(
        "brpop",
        -3,
        "write noscript blocking",
        Range(1, -2, 1),
        "@write @list @slow @blocking",
        "list",
        "2.0.0",
        brpop
    ),
    cmd!(
        "blmove",
        6,
        "write denyoom noscript blocking",
        Range(1, 2, 1),
        "@write @list @slow @blocking",
        "list",
        "6.2.0",
        blmove
    ),
    cmd!(
        "brpoplpush",
        4,
        "write denyoom noscript blocking",
        Range(1, 2, 1),
        "@write @list @slow @blocking",
        "list",
        "2.2.0",
        brpoplpush
    ),
    cmd!(
        "blmpop",
        -5,
        "write blocking",
        NumKeys {
            dest: false,
            numkeys: 2
        },
        "@write @list @slow @blocking",
        "list",
        "7.0.0",
        blmpop
    ),
];

fn arg<'a>(args: &Args<'a>, i: usize) -> &'a [u8] {
    args.get(i).unwrap_or_default()
}

fn end_of(name: &[u8]) -> CmdResult<End> {
    if eq(name, "left") {
        Ok(End::Head)
    } else if eq(name, "right") {
        Ok(End::Tail)
    } else {
        Err(CmdError::Syntax)
    }
}

/// The shard of `key` among the held ones (the key spec locked it).
fn held<'a>(ks: &Keyspace, locked: &'a mut Locked<'_>, key: &[u8]) -> &'a mut Shard {
    let idx = ks.shard_of(key);
    match locked.get(idx) {
        Some(s) => s,
        None => panic!("shard {idx} of key not locked: the command's key spec is wrong"),
    }
}

/// `list-max-listpack-size`, which shapes the nodes of a list made now.
pub(crate) fn list_fill(ctx: &Ctx) -> i64 {
    ctx.server
        .config
        .encodings
        .list_max_listpack_size
        .load(Relaxed)
}

/// Pushes `values` at `end`, creating the list (nodes shaped by `fill`);
/// returns the new length.
fn push_values<'v>(
    shard: &mut Shard,
    db: usize,
    key: &[u8],
    now: u64,
    end: End,
    values: impl Iterator<Item = &'v [u8]>,
    event: &'static str,
    fill: i64,
) -> CmdResult<usize> {
    let len = match typed::write::<List>(shard, db, key, now)? {
        Some(l) => {
            values.for_each(|v| l.push(end, v));
            l.len()
        }
        None => {
            let mut l = List::with_fill(fill);
            values.for_each(|v| l.push(end, v));
            let n = l.len();
            shard.put(db, Entry::new(key, Value::List(Box::new(l)), 0));
            n
        }
    };
    shard.written(db, key, event);
    Ok(len)
}

/// Pops up to `n` elements of the list at `key` (which must be a list),
/// removing the key once empty.
fn pop_values(
    shard: &mut Shard,
    db: usize,
    key: &[u8],
    now: u64,
    end: End,
    n: usize,
) -> Vec<Vec<u8>> {
    let Ok(Some(l)) = typed::write::<List>(shard, db, key, now) else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(n.min(l.len()));
    while out.len() < n {
        match l.pop(end) {
            Some(v) => out.push(v),
            None => break,
        }
    }
    let empty = l.is_empty();
    if empty {
        shard.remove(db, key);
    }
    shard.written(db, key, if end == End::Head { "lpop" } else { "rpop" });
    if empty {
        shard.notify(db, key, "del");
    }
    out
}

/// LMOVE's core: None when `src` is missing; WRONGTYPE when either key
/// holds another type (nothing is popped then).
#[allow(clippy::too_many_arguments)]
fn move_value(
    ks: &Keyspace,
    locked: &mut Locked<'_>,
    db: usize,
    now: u64,
    src: &[u8],
    dst: &[u8],
    from: End,
    to: End,
    fill: i64,
) -> CmdResult<Option<Vec<u8>>> {
    if typed::write::<List>(held(ks, locked, src), db, src, now)?.is_none() {
        return Ok(None);
    }
    typed::write::<List>(held(ks, locked, dst), db, dst, now)?;
    let shard = held(ks, locked, src);
    let Some(l) = typed::write::<List>(shard, db, src, now)? else {
        return Ok(None);
    };
    let Some(v) = l.pop(from) else {
        return Ok(None);
    };
    // Redis notifies the push before the pop.
    let shard = held(ks, locked, dst);
    push_values(
        shard,
        db,
        dst,
        now,
        to,
        std::iter::once(&v[..]),
        if to == End::Head { "lpush" } else { "rpush" },
        fill,
    )?;
    let shard = held(ks, locked, src);
    shard.written(db, src, if from == End::Head { "lpop" } else { "rpop" });
    // Only now may the source go: for src == dst the list got its element back.
    if let Ok(Some(l)) = typed::write::<List>(shard, db, src, now) {
        if l.is_empty() {
            shard.remove(db, src);
            shard.written(db, src, "del");
        }
    }
    Ok(Some(v))
}

fn push_generic(ctx: &mut Ctx, args: &Args, end: End, existing_only: bool) -> CmdResult {
    let key = arg(args, 1);
    let (db, now) = (ctx.db(), ctx.now);
    // LPUSHX/RPUSHX look first; push_values' own lookup type-checks.
    if existing_only && typed::write::<List>(ctx.shard(key), db, key, now)?.is_none() {
        ctx.reply.int(0);
        return Ok(());
    }
    let event = if end == End::Head { "lpush" } else { "rpush" };
    let fill = list_fill(ctx);
    let shard = ctx.shard(key);
    let n = push_values(shard, db, key, now, end, args.iter().skip(2), event, fill)?;
    ctx.reply.int(n as i64);
    Ok(())
}

fn lpush(ctx: &mut Ctx, args: &Args) -> CmdResult {
    push_generic(ctx, args, End::Head, false)
}

fn rpush(ctx: &mut Ctx, args: &Args) -> CmdResult {
    push_generic(ctx, args, End::Tail, false)
}

fn lpushx(ctx: &mut Ctx, args: &Args) -> CmdResult {
    push_generic(ctx, args, End::Head, true)
}

fn rpushx(ctx: &mut Ctx, args: &Args) -> CmdResult {
    push_generic(ctx, args, End::Tail, true)
}

/// LPOP/RPOP key [count]
fn pop_generic(ctx: &mut Ctx, args: &Args, end: End) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::WrongArity(
            if end == End::Head { "lpop" } else { "rpop" }.into(),
        ));
    }
    let count = if args.len() == 3 {
        let n = crate::args::parse_i64(arg(args, 2))
            .filter(|n| *n >= 0)
            .ok_or(CmdError::MustBePositive)?;
        Some(usize::try_from(n).unwrap_or(usize::MAX))
    } else {
        None
    };
    let key = arg(args, 1);
    let (db, now) = (ctx.db(), ctx.now);
    let shard = ctx.shard(key);
    if typed::write::<List>(shard, db, key, now)?.is_none() {
        match count {
            Some(_) => ctx.reply.null_array(),
            None => ctx.reply.null(),
        }
        return Ok(());
    }
    match count {
        None => {
            let v = pop_values(shard, db, key, now, end, 1);
            match v.first() {
                Some(v) => ctx.reply.bulk(v),
                None => ctx.reply.null(),
            }
        }
        Some(0) => ctx.reply.array(0),
        Some(n) => {
            let vs = pop_values(shard, db, key, now, end, n);
            ctx.reply.array(vs.len());
            for v in &vs {
                ctx.reply.bulk(v);
            }
        }
    }
    Ok(())
}

fn lpop(ctx: &mut Ctx, args: &Args) -> CmdResult {
    pop_generic(ctx, args, End::Head)
}

fn rpop(ctx: &mut Ctx, args: &Args) -> CmdResult {
    pop_generic(ctx, args, End::Tail)
}

fn llen(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let key = arg(args, 1);
    let (db, now) = (ctx.db(), ctx.now);
    let n = typed::read::<List>(ctx.shard(key), db, key, now)?.map_or(0, |l| l.len());
    ctx.reply.int(n as i64);
    Ok(())
}

fn lrange(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let key = arg(args, 1);
    let (start, stop) = (int(arg(args, 2))?, int(arg(args, 3))?);
    let (db, now) = (ctx.db(), ctx.now);
    let (shard, reply) = ctx.shard_and_reply(key);
    match typed::read::<List>(shard, db, key, now)? {
        None => reply.array(0),
        Some(l) => {
            let (s, e) = l.range_bounds(start, stop).unwrap_or((0, 0));
            reply.array(e - s);
            for v in l.range(start, stop) {
                reply.bulk(v);
            }
        }
    }
    Ok(())
}

fn lindex(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let key = arg(args, 1);
    let (db, now) = (ctx.db(), ctx.now);
    let (shard, reply) = ctx.shard_and_reply(key);
    let Some(l) = typed::read::<List>(shard, db, key, now)? else {
        reply.null();
        return Ok(());
    };
    let i = int(arg(args, 2))?;
    match l.get(i) {
        Some(v) => reply.bulk(v),
        None => reply.null(),
    }
    Ok(())
}

fn lset(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let key = arg(args, 1);
    let (db, now) = (ctx.db(), ctx.now);
    let shard = ctx.shard(key);
    let Some(l) = typed::write::<List>(shard, db, key, now)? else {
        return Err(CmdError::NoSuchKey);
    };
    let i = int(arg(args, 2))?;
    if !l.set(i, arg(args, 3)) {
        return Err(CmdError::IndexOutOfRange);
    }
    shard.written(db, key, "lset");
    ctx.reply.ok();
    Ok(())
}

fn linsert(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let key = arg(args, 1);
    let after = match arg(args, 2) {
        w if eq(w, "after") => true,
        w if eq(w, "before") => false,
        _ => return Err(CmdError::Syntax),
    };
    let (db, now) = (ctx.db(), ctx.now);
    let shard = ctx.shard(key);
    let Some(l) = typed::write::<List>(shard, db, key, now)? else {
        ctx.reply.int(0);
        return Ok(());
    };
    if !l.insert(after, arg(args, 3), arg(args, 4)) {
        ctx.reply.int(-1);
        return Ok(());
    }
    let n = l.len();
    shard.written(db, key, "linsert");
    ctx.reply.int(n as i64);
    Ok(())
}

fn lrem(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let key = arg(args, 1);
    let count = int(arg(args, 2))?;
    let (db, now) = (ctx.db(), ctx.now);
    let shard = ctx.shard(key);
    let Some(l) = typed::write::<List>(shard, db, key, now)? else {
        ctx.reply.int(0);
        return Ok(());
    };
    let n = l.remove(count, arg(args, 3));
    let empty = l.is_empty();
    if n > 0 {
        if empty {
            shard.remove(db, key);
        }
        shard.written(db, key, "lrem");
    }
    ctx.reply.int(n as i64);
    Ok(())
}

fn ltrim(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let key = arg(args, 1);
    let (start, stop) = (int(arg(args, 2))?, int(arg(args, 3))?);
    let (db, now) = (ctx.db(), ctx.now);
    let shard = ctx.shard(key);
    if let Some(l) = typed::write::<List>(shard, db, key, now)? {
        l.trim(start, stop);
        let empty = l.is_empty();
        if empty {
            shard.remove(db, key);
        }
        shard.written(db, key, "ltrim");
    }
    ctx.reply.ok();
    Ok(())
}

/// LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]
fn lpos(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let key = arg(args, 1);
    let (mut rank, mut count, mut maxlen) = (1i64, None::<i64>, 0i64);
    let mut i = 3;
    while i < args.len() {
        let opt = arg(args, i);
        if i + 1 >= args.len() {
            return Err(CmdError::Syntax);
        }
        let v = arg(args, i + 1);
        if eq(opt, "rank") {
            rank = int(v)?;
            if rank == 0 {
                return Err(CmdError::LposRankZero);
            }
        } else if eq(opt, "count") {
            count = Some(
                crate::args::parse_i64(v)
                    .filter(|n| *n >= 0)
                    .ok_or(CmdError::LposNegative("COUNT"))?,
            );
        } else if eq(opt, "maxlen") {
            maxlen = crate::args::parse_i64(v)
                .filter(|n| *n >= 0)
                .ok_or(CmdError::LposNegative("MAXLEN"))?;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    let (db, now) = (ctx.db(), ctx.now);
    let (shard, reply) = ctx.shard_and_reply(key);
    let Some(l) = typed::read::<List>(shard, db, key, now)? else {
        match count {
            Some(_) => reply.array(0),
            None => reply.null(),
        }
        return Ok(());
    };
    let as_usize = |n: i64| usize::try_from(n).unwrap_or(usize::MAX);
    match count {
        None => match l.positions(arg(args, 2), rank, 1, as_usize(maxlen)).first() {
            Some(p) => reply.int(*p as i64),
            None => reply.null(),
        },
        Some(c) => {
            let ps = l.positions(arg(args, 2), rank, as_usize(c), as_usize(maxlen));
            reply.array(ps.len());
            for p in ps {
                reply.int(p as i64);
            }
        }
    }
    Ok(())
}

fn lmove_generic(ctx: &mut Ctx, src: &[u8], dst: &[u8], from: End, to: End) -> CmdResult {
    let (db, now) = (ctx.db(), ctx.now);
    let fill = list_fill(ctx);
    match move_value(
        &ctx.server.keyspace,
        &mut ctx.locked,
        db,
        now,
        src,
        dst,
        from,
        to,
        fill,
    )? {
        Some(v) => ctx.reply.bulk(&v),
        None => ctx.reply.null(),
    }
    Ok(())
}

fn lmove(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let (from, to) = (end_of(arg(args, 3))?, end_of(arg(args, 4))?);
    lmove_generic(ctx, arg(args, 1), arg(args, 2), from, to)
}

fn rpoplpush(ctx: &mut Ctx, args: &Args) -> CmdResult {
    lmove_generic(ctx, arg(args, 1), arg(args, 2), End::Tail, End::Head)
}

/// Where LMPOP/BLMPOP keep their keys: `numkeys` at `at`, keys after it.
/// None when numkeys is invalid or runs past the arguments, in which case
/// the command fails before touching any key.
pub(crate) fn mpop_keys(args: &Args, at: usize) -> Option<std::ops::Range<usize>> {
    let n = crate::args::parse_i64(args.get(at)?)?;
    let n = usize::try_from(n).ok().filter(|n| *n > 0)?;
    let first = at + 1;
    (n <= args.len().saturating_sub(first + 1)).then_some(first..first + n)
}

/// Parses `numkeys key... LEFT|RIGHT [COUNT n]` from `at`.
fn mpop_args(args: &Args, at: usize) -> CmdResult<(std::ops::Range<usize>, End, usize)> {
    let n = crate::args::parse_i64(arg(args, at)).filter(|n| *n > 0);
    if n.is_none() {
        return Err(CmdError::NumkeysNotPositive);
    }
    let keys = mpop_keys(args, at).ok_or(CmdError::Syntax)?;
    let end = end_of(arg(args, keys.end))?;
    let mut count = 1usize;
    let mut i = keys.end + 1;
    let mut seen = false;
    while i < args.len() {
        if eq(arg(args, i), "count") && i + 1 < args.len() && !seen {
            let c = crate::args::parse_i64(arg(args, i + 1))
                .filter(|c| *c > 0)
                .ok_or(CmdError::CountNotPositive)?;
            count = usize::try_from(c).unwrap_or(usize::MAX);
            seen = true;
            i += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    Ok((keys, end, count))
}

/// Pops from the first non-empty list among `keys`: `[key, [values]]`.
/// WRONGTYPE stops at the first key of another type. False: all empty.
fn mpop_first(
    ctx: &mut Ctx,
    args: &Args,
    keys: std::ops::Range<usize>,
    end: End,
    count: usize,
) -> CmdResult<bool> {
    let (db, now) = (ctx.db(), ctx.now);
    for i in keys {
        let key = arg(args, i);
        let shard = ctx.shard(key);
        if typed::write::<List>(shard, db, key, now)?.is_none() {
            continue;
        }
        let vs = pop_values(shard, db, key, now, end, count);
        reply_mpop(ctx.reply, key, &vs);
        // LMPOP and BLMPOP go to replicas as the pop they did (Redis 7.0).
        let n = vs.len().to_string();
        crate::repl_master::instead(ctx.server, &[pop_name(end), key, n.as_bytes()]);
        return Ok(true);
    }
    Ok(false)
}

fn reply_mpop(reply: &mut Reply, key: &[u8], vs: &[Vec<u8>]) {
    reply.array(2);
    reply.bulk(key);
    reply.array(vs.len());
    for v in vs {
        reply.bulk(v);
    }
}

fn lmpop(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let (keys, end, count) = mpop_args(args, 1)?;
    if !mpop_first(ctx, args, keys, end, count)? {
        ctx.reply.null_array();
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Blocking.

/// Redis's blocking timeout: seconds as a (long) double; 0 blocks forever.
pub(crate) fn parse_timeout(s: &[u8]) -> CmdResult<Option<Duration>> {
    let v = crate::args::parse_f64(s).ok_or(CmdError::TimeoutNotFloat)?;
    let ms = v * 1000.0;
    // Redis converts to a long long; what does not fit comes out negative.
    if !(ms > -1.0 && ms < 9.2e18) {
        return Err(CmdError::TimeoutNegative);
    }
    if ms <= 0.0 {
        return Ok(None);
    }
    Ok(Some(
        Duration::from_micros((ms * 1000.0) as u64).max(Duration::from_millis(1)),
    ))
}

/// What a blocked client asked for, run on its behalf when a key is ready.
#[derive(Debug, Clone)]
pub enum BlockOp {
    /// BLPOP/BRPOP: replies `[key, value]`.
    Pop(End),
    /// BLMOVE/BRPOPLPUSH: replies the moved value. `rpoplpush`: served,
    /// it propagates as RPOPLPUSH rather than LMOVE (Redis 7.0).
    Move {
        dst: Vec<u8>,
        from: End,
        to: End,
        rpoplpush: bool,
    },
    /// BLMPOP: replies `[key, [values]]`.
    MPop(End, usize),
    /// BZPOPMIN/BZPOPMAX: replies `[key, member, score]`.
    ZPop { max: bool },
    /// BZMPOP: replies `[key, [[member, score]...]]`.
    ZMPop { max: bool, count: usize },
    /// XREAD/XREADGROUP: served by `stream::serve_waiters`.
    Stream(Box<crate::stream::StreamWait>),
}

impl BlockOp {
    /// Whether it pops from a sorted set (else from a list; None for stream
    /// reads). As in Redis 7.0, a ready key serves only the waiters of its
    /// current type; the others stay blocked.
    fn wants_zset(&self) -> Option<bool> {
        match self {
            BlockOp::Stream(_) => None,
            _ => Some(matches!(self, BlockOp::ZPop { .. } | BlockOp::ZMPop { .. })),
        }
    }
}

#[derive(Default)]
struct WaitState {
    /// Someone decided this waiter's outcome (served, timed out, unblocked,
    /// gone): nobody else may.
    claimed: bool,
    outcome: Option<Vec<u8>>,
    waker: Option<Waker>,
}

/// A client blocked on keys.
pub struct Waiter {
    pub token: u64,
    pub client_id: u64,
    pub db: usize,
    /// The keys it waits on, deduplicated, in the order given.
    pub keys: Vec<Vec<u8>>,
    pub op: BlockOp,
    pub resp3: bool,
    state: Mutex<WaitState>,
}

impl Waiter {
    /// Takes the right to decide the outcome; false if already taken.
    pub fn claim(&self) -> bool {
        let mut s = self.state.lock();
        !std::mem::replace(&mut s.claimed, true)
    }

    pub(crate) fn is_claimed(&self) -> bool {
        self.state.lock().claimed
    }

    /// Hands the reply to the blocked connection (after a successful claim).
    pub fn deliver(&self, bytes: Vec<u8>) {
        let waker = {
            let mut s = self.state.lock();
            s.outcome = Some(bytes);
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    fn poll_outcome(&self, cx: &mut std::task::Context<'_>) -> Poll<Vec<u8>> {
        let mut s = self.state.lock();
        match s.outcome.take() {
            Some(b) => Poll::Ready(b),
            None => {
                s.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// The reply of a timeout (and of CLIENT UNBLOCK ... TIMEOUT).
    pub fn timeout_reply(&self) -> Vec<u8> {
        let mut r = Reply::new();
        r.set_resp3(self.resp3);
        r.null_array();
        r.as_bytes().to_vec()
    }

    /// CLIENT UNBLOCK: true if it was blocked and is now released.
    pub fn unblock(&self, error: bool) -> bool {
        if error {
            return self.fail(&CmdError::Unblocked);
        }
        if !self.claim() {
            return false;
        }
        self.deliver(self.timeout_reply());
        true
    }

    /// Releases the client with `err` as its reply; false if it was not
    /// blocked any more.
    pub fn fail(&self, err: &CmdError) -> bool {
        if !self.claim() {
            return false;
        }
        let mut r = Reply::new();
        r.error(&err.to_string());
        self.deliver(r.as_bytes().to_vec());
        true
    }
}

/// A command that blocked: the connection waits on it.
pub struct Blocked {
    waiter: Arc<Waiter>,
    timeout: Option<Duration>,
    /// The slowlog entry of the blocking call, logged when the wait ends.
    pub(crate) slowlog: Option<crate::observe::slowlog::Entry>,
}

impl Blocked {
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// The reply bytes, once served, timed out (when `sleep` completes) or
    /// unblocked. Dropping the future (client gone) deregisters the client
    /// just the same.
    pub fn wait<S: Future<Output = ()>>(
        self,
        server: Arc<Server>,
        sleep: Option<S>,
    ) -> impl Future<Output = Vec<u8>> {
        let guard = BlockGuard {
            server,
            waiter: self.waiter.clone(),
        };
        let w = self.waiter;
        let mut slow = self.slowlog;
        let mut sleep = sleep.map(Box::pin);
        std::future::poll_fn(move |cx| {
            let outcome = if let Poll::Ready(b) = w.poll_outcome(cx) {
                Poll::Ready(b)
            } else {
                match sleep.as_mut().map(|s| s.as_mut().poll(cx)) {
                    Some(Poll::Ready(())) => {
                        sleep = None;
                        if w.claim() {
                            Poll::Ready(w.timeout_reply())
                        } else {
                            // Served in the meantime: its reply is on the way.
                            w.poll_outcome(cx)
                        }
                    }
                    _ => Poll::Pending,
                }
            };
            if outcome.is_ready() {
                if let Some(entry) = slow.take() {
                    crate::observe::log_unblocked(&guard.server, entry);
                }
            }
            outcome
        })
    }
}

/// Deregisters a waiter from its keys and the blocked-clients table.
pub struct BlockGuard {
    server: Arc<Server>,
    waiter: Arc<Waiter>,
}

impl Drop for BlockGuard {
    fn drop(&mut self) {
        let w = &self.waiter;
        w.claim();
        let ks = &self.server.keyspace;
        let mut shards: smallvec::SmallVec<[usize; 4]> =
            w.keys.iter().map(|k| ks.shard_of(k)).collect();
        let mut locked = ks.lock(&mut shards);
        for k in &w.keys {
            if let Some(s) = locked.get(ks.shard_of(k)) {
                s.waiters.remove(w.db, k, w.token);
            }
        }
        drop(locked);
        let mut blocked = self.server.blocked.lock();
        if blocked
            .get(&w.client_id)
            .is_some_and(|x| x.token == w.token)
        {
            blocked.remove(&w.client_id);
        }
    }
}

static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

/// Registers the client on `keys` (their shards are held) and parks it.
pub(crate) fn block(ctx: &mut Ctx, keys: Vec<Vec<u8>>, op: BlockOp, timeout: Option<Duration>) {
    if ctx.client.in_exec {
        // Inside EXEC nothing blocks: the command answers as if its time
        // had run out (BLMOVE with a null bulk, the others a null array).
        match op {
            BlockOp::Move { .. } => ctx.reply.null(),
            _ => ctx.reply.null_array(),
        }
        return;
    }
    let mut uniq: Vec<Vec<u8>> = Vec::with_capacity(keys.len());
    for k in keys {
        if !uniq.contains(&k) {
            uniq.push(k);
        }
    }
    let w = Arc::new(Waiter {
        token: NEXT_TOKEN.fetch_add(1, Relaxed),
        client_id: ctx.client.id(),
        db: ctx.db(),
        keys: uniq,
        op,
        resp3: ctx.client.resp3,
        state: Mutex::new(WaitState::default()),
    });
    let db = ctx.db();
    for k in &w.keys {
        let wr: damselfly_storage::WaiterRef = w.clone();
        ctx.shard(k).waiters.add(db, k, w.token, wr);
    }
    ctx.server.blocked.lock().insert(w.client_id, w.clone());
    ctx.block = Some(Box::new(Blocked {
        waiter: w,
        timeout,
        slowlog: None,
    }));
}

fn bpop(ctx: &mut Ctx, args: &Args, end: End) -> CmdResult {
    let timeout = parse_timeout(arg(args, args.len() - 1))?;
    let (db, now) = (ctx.db(), ctx.now);
    let keys = 1..args.len() - 1;
    for i in keys.clone() {
        let key = arg(args, i);
        let shard = ctx.shard(key);
        if typed::write::<List>(shard, db, key, now)?.is_none() {
            continue;
        }
        let vs = pop_values(shard, db, key, now, end, 1);
        if let Some(v) = vs.first() {
            ctx.reply.array(2);
            ctx.reply.bulk(key);
            ctx.reply.bulk(v);
            crate::repl_master::instead(ctx.server, &[pop_name(end), key]);
            return Ok(());
        }
    }
    let keys = keys.map(|i| arg(args, i).to_vec()).collect();
    block(ctx, keys, BlockOp::Pop(end), timeout);
    Ok(())
}

/// The non-blocking pop a blocking one amounts to, for replicas.
fn pop_name(end: End) -> &'static [u8] {
    match end {
        End::Head => b"LPOP",
        End::Tail => b"RPOP",
    }
}

fn blpop(ctx: &mut Ctx, args: &Args) -> CmdResult {
    bpop(ctx, args, End::Head)
}

fn brpop(ctx: &mut Ctx, args: &Args) -> CmdResult {
    bpop(ctx, args, End::Tail)
}

fn bmove_generic(
    ctx: &mut Ctx,
    src: &[u8],
    dst: &[u8],
    from: End,
    to: End,
    timeout: Option<Duration>,
    rpoplpush: bool,
) -> CmdResult {
    let (db, now) = (ctx.db(), ctx.now);
    if typed::write::<List>(ctx.shard(src), db, src, now)?.is_some() {
        return lmove_generic(ctx, src, dst, from, to);
    }
    let op = BlockOp::Move {
        dst: dst.to_vec(),
        from,
        to,
        rpoplpush,
    };
    block(ctx, vec![src.to_vec()], op, timeout);
    Ok(())
}

fn blmove(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let (from, to) = (end_of(arg(args, 3))?, end_of(arg(args, 4))?);
    let timeout = parse_timeout(arg(args, 5))?;
    let moved = [
        b"LMOVE",
        arg(args, 1),
        arg(args, 2),
        arg(args, 3),
        arg(args, 4),
    ];
    crate::repl_master::instead(ctx.server, &moved);
    bmove_generic(ctx, arg(args, 1), arg(args, 2), from, to, timeout, false)
}

fn brpoplpush(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let timeout = parse_timeout(arg(args, 3))?;
    crate::repl_master::instead(ctx.server, &[b"RPOPLPUSH", arg(args, 1), arg(args, 2)]);
    bmove_generic(
        ctx,
        arg(args, 1),
        arg(args, 2),
        End::Tail,
        End::Head,
        timeout,
        true,
    )
}

fn blmpop(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let (keys, end, count) = mpop_args(args, 2)?;
    let timeout = parse_timeout(arg(args, 1))?;
    if mpop_first(ctx, args, keys.clone(), end, count)? {
        return Ok(());
    }
    let keys = keys.map(|i| arg(args, i).to_vec()).collect();
    block(ctx, keys, BlockOp::MPop(end, count), timeout);
    Ok(())
}

/// Serves the clients blocked on keys that the command just run made ready,
/// before its locks are released: a push and the pops it feeds are one
/// atomic step to every other client. Serving may make more keys ready
/// (BLMOVE's destination); it loops until none is left.
#[inline]
pub(crate) fn serve_ready<'s>(
    server: &'s Server,
    stats: &crate::state::ThreadStats,
    locked: &mut Locked<'s>,
    now: u64,
) {
    // The usual case: nobody is blocked on a key this command touched.
    if locked.iter_mut().any(|s| s.waiters.has_ready()) {
        serve_all_ready(server, stats, locked, now);
    }
}

#[inline(never)]
fn serve_all_ready<'s>(
    server: &'s Server,
    stats: &crate::state::ThreadStats,
    locked: &mut Locked<'s>,
    now: u64,
) {
    loop {
        let mut work = Vec::new();
        for (idx, s) in locked.iter_indexed_mut() {
            if s.waiters.has_ready() {
                for (db, key) in s.waiters.take_ready() {
                    work.push((idx, db, key));
                }
            }
        }
        if work.is_empty() {
            return;
        }
        let fill = server.config.encodings.list_max_listpack_size.load(Relaxed);
        for (idx, db, key) in work {
            crate::stream::serve_waiters(stats, locked, idx, db, &key, now);
            serve_key(&server.keyspace, locked, idx, db, &key, now, fill);
        }
    }
}

fn serve_key<'s>(
    ks: &'s Keyspace,
    locked: &mut Locked<'s>,
    idx: usize,
    db: usize,
    key: &[u8],
    now: u64,
    fill: i64,
) {
    loop {
        let Some(shard) = locked.get(idx) else {
            return;
        };
        let zset = match shard.get_quiet(db, key, now).map(|e| e.value()) {
            Some(ValueRef::List(l)) if !l.is_empty() => false,
            Some(ValueRef::ZSet(z)) if !z.is_empty() => true,
            _ => return,
        };
        // The first live waiter that pops this type, in queue order.
        let mut found = None;
        for (token, wr) in shard.waiters.queue(db, key) {
            match wr.downcast::<Waiter>() {
                Ok(w) if !w.is_claimed() => {
                    if w.op.wants_zset() == Some(zset) {
                        found = Some((token, w));
                        break;
                    }
                }
                _ => shard.waiters.remove(db, key, token),
            }
        }
        let Some((token, w)) = found else {
            return;
        };
        if let BlockOp::Move { dst, .. } = &w.op {
            if !ks.add_lock(locked, ks.shard_of(dst)) {
                // The locks were let go and retaken: look again.
                continue;
            }
            // A snapshot may be owed the destination's shard by key.
            ks.touch(locked, ks.shard_of(dst), dst);
        }
        if !w.claim() {
            continue;
        }
        if let Some(s) = locked.get(idx) {
            s.waiters.remove(db, key, token);
        }
        let mut reply = Reply::new();
        reply.set_resp3(w.resp3);
        if let Err(e) = run_for(ks, locked, &w, key, now, &mut reply, fill) {
            reply.clear();
            reply.error(&e.to_string());
        }
        w.deliver(reply.as_bytes().to_vec());
    }
}

/// Runs a waiter's pop on `key` (a non-empty list or sorted set, as the
/// waiter wants, in a held shard).
fn run_for(
    ks: &Keyspace,
    locked: &mut Locked<'_>,
    w: &Waiter,
    key: &[u8],
    now: u64,
    reply: &mut Reply,
    fill: i64,
) -> CmdResult {
    let db = w.db;
    crate::repl_master::served_pop(db, &w.op, key);
    match &w.op {
        BlockOp::Pop(end) => {
            let vs = pop_values(held(ks, locked, key), db, key, now, *end, 1);
            reply.array(2);
            reply.bulk(key);
            reply.bulk(vs.first().map_or(&[][..], |v| &v[..]));
        }
        BlockOp::MPop(end, count) => {
            let vs = pop_values(held(ks, locked, key), db, key, now, *end, *count);
            reply_mpop(reply, key, &vs);
        }
        BlockOp::Move { dst, from, to, .. } => {
            match move_value(ks, locked, db, now, key, dst, *from, *to, fill)? {
                Some(v) => reply.bulk(&v),
                None => reply.null(),
            }
        }
        BlockOp::ZPop { max } => {
            let shard = held(ks, locked, key);
            let items = crate::sorted_set::pop_at(shard, db, key, now, *max, 1)?;
            crate::sorted_set::reply_bzpop(reply, key, &items.unwrap_or_default());
        }
        BlockOp::ZMPop { max, count } => {
            let shard = held(ks, locked, key);
            let items = crate::sorted_set::pop_at(shard, db, key, now, *max, *count)?;
            crate::sorted_set::reply_zmpop(reply, key, &items.unwrap_or_default());
        }
        // Stream reads are served by `stream::serve_waiters`, never here.
        BlockOp::Stream(_) => {}
    }
    Ok(())
}

/// A master turning replica releases every client blocked on keys with
/// -UNBLOCKED, as Redis 7.0 does: the master's writes must not serve them.
/// (Redis also closes their connections after that reply; they stay open
/// here.)
pub(crate) fn unblock_all_for_role_change(server: &Server) {
    let waiters: Vec<_> = server.blocked.lock().values().cloned().collect();
    for w in waiters {
        w.fail(&CmdError::UnblockedRoleChange);
    }
}

/// CLIENT UNBLOCK: releases client `id` if blocked.
pub(crate) fn unblock_client(server: &Server, id: u64, error: bool) -> bool {
    let w = server.blocked.lock().get(&id).cloned();
    w.is_some_and(|w| w.unblock(error))
}
