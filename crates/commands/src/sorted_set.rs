//! Sorted set commands (Redis 7.0's t_zset), over `damselfly_core::zset`.
//!
//! The blocking pops (BZPOPMIN, BZPOPMAX, BZMPOP) park their client through
//! the list module's blocking machinery (`BlockOp::ZPop`/`ZMPop`).

use crate::args::{eq, int, parse_i64, parse_range_float, parse_score};
use crate::cmd;
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::table::{
    Command,
    Keys::{NumKeys, Range},
};
use damselfly_core::glob::glob_match;
use damselfly_core::zset::{Limits, ZSet};
use damselfly_protocol::{format_double, Args, Reply};
use damselfly_storage::typed;
use damselfly_storage::{Entry, Shard, Value, ValueRef};
use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;

pub(crate) static COMMANDS: &[Command] = &[
    cmd!(
        "zadd",
        -4,
        "write denyoom fast",
        Range(1, 1, 1),
        "@write @sortedset @fast",
        "sorted-set",
        "1.2.0",
        zadd
    ),
    cmd!(
        "zincrby",
        4,
        "write denyoom fast",
        Range(1, 1, 1),
        "@write @sortedset @fast",
        "sorted-set",
        "1.2.0",
        zincrby
    ),
    cmd!(
        "zrem",
        -3,
        "write fast",
        Range(1, 1, 1),
        "@write @sortedset @fast",
        "sorted-set",
        "1.2.0",
        zrem
    ),
    cmd!(
        "zcard",
        2,
        "readonly fast",
        Range(1, 1, 1),
        "@read @sortedset @fast",
        "sorted-set",
        "1.2.0",
        zcard
    ),
    cmd!(
        "zscore",
        3,
        "readonly fast",
        Range(1, 1, 1),
        "@read @sortedset @fast",
        "sorted-set",
        "1.2.0",
        zscore
    ),
    cmd!(
        "zmscore",
        -3,
        "readonly fast",
        Range(1, 1, 1),
        "@read @sortedset @fast",
        "sorted-set",
        "6.2.0",
        zmscore
    ),
    cmd!(
        "zrank",
        3,
        "readonly fast",
        Range(1, 1, 1),
        "@read @sortedset @fast",
        "sorted-set",
        "2.0.0",
        zrank
    ),
    cmd!(
        "zrevrank",
        3,
        "readonly fast",
        Range(1, 1, 1),
        "@read @sortedset @fast",
        "sorted-set",
        "2.0.0",
        zrevrank
    ),
    cmd!(
        "zcount",
        4,
        "readonly fast",
        Range(1, 1, 1),
        "@read @sortedset @fast",
        "sorted-set",
        "2.0.0",
        zcount
    ),
    cmd!(
        "zlexcount",
        4,
        "readonly fast",
        Range(1, 1, 1),
        "@read @sortedset @fast",
        "sorted-set",
        "2.8.9",
        zlexcount
    ),
    cmd!(
        "zrange",
        -4,
        "readonly",
        Range(1, 1, 1),
        "@read @sortedset @slow",
        "sorted-set",
        "1.2.0",
        zrange
    ),
    cmd!(
        "zrangestore",
        -5,
        "write denyoom",
        Range(1, 2, 1),
        "@write @sortedset @slow",
        "sorted-set",
        "6.2.0",
        zrangestore
    ),
    cmd!(
        "zrevrange",
        -4,
        "readonly",
        Range(1, 1, 1),
        "@read @sortedset @slow",
        "sorted-set",
        "1.2.0",
        zrevrange
    ),
    cmd!(
        "zrangebyscore",
        -4,
        "readonly",
        Range(1, 1, 1),
        "@read @sortedset @slow",
        "sorted-set",
        "1.0.5",
        zrangebyscore
    ),
    cmd!(
        "zrevrangebyscore",
        -4,
        "readonly",
        Range(1, 1, 1),
        "@read @sortedset @slow",
        "sorted-set",
        "2.2.0",
        zrevrangebyscore
    ),
    cmd!(
        "zrangebylex",
        -4,
        "readonly",
        Range(1, 1, 1),
        "@read @sortedset @slow",
        "sorted-set",
        "2.8.9",
        zrangebylex
    ),
    cmd!(
        "zrevrangebylex",
        -4,
        "readonly",
        Range(1, 1, 1),
        "@read @sortedset @slow",
        "sorted-set",
        "2.8.9",
        zrevrangebylex
    ),
    cmd!(
        "zremrangebyrank",
        4,
        "write",
        Range(1, 1, 1),
        "@write @sortedset @slow",
        "sorted-set",
        "2.0.0",
        zremrangebyrank
    ),
    cmd!(
        "zremrangebyscore",
        4,
        "write",
        Range(1, 1, 1),
        "@write @sortedset @slow",
        "sorted-set",
        "1.2.0",
        zremrangebyscore
    ),
    cmd!(
        "zremrangebylex",
        4,
        "write",
        Range(1, 1, 1),
        "@write @sortedset @slow",
        "sorted-set",
        "2.8.9",
        zremrangebylex
    ),
    cmd!(
        "zpopmin",
        -2,
        "write fast",
        Range(1, 1, 1),
        "@write @sortedset @fast",
        "sorted-set",
        "5.0.0",
        zpopmin
    ),
    cmd!(
        "zpopmax",
        -2,
        "write fast",
        Range(1, 1, 1),
        "@write @sortedset @fast",
        "sorted-set",
        "5.0.0",
        zpopmax
    ),
    cmd!(
        "zmpop",
        -4,
        "write",
        NumKeys {
            dest: false,
            numkeys: 1
        },
        "@write @sortedset @slow",
        "sorted-set",
        "7.0.0",
        zmpop
    ),
    cmd!(
        "bzpopmin",
        -3,
        "write noscript blocking fast",
        Range(1, -2, 1),
        "@write @sortedset @fast @blocking",
        "sorted-set",
        "5.0.0",
        bzpopmin
    ),
    cmd!(
        "bzpopmax",
        -3,
        "write noscript blocking fast",
        Range(1, -2, 1),
        "@write @sortedset @fast @blocking",
        "sorted-set",
        "5.0.0",
        bzpopmax
    ),
    cmd!(
        "bzmpop",
        -5,
        "write blocking",
        NumKeys {
            dest: false,
            numkeys: 2
        },
        "@write @sortedset @slow @blocking",
        "sorted-set",
        "7.0.0",
        bzmpop
    ),
    cmd!(
        "zrandmember",
        -2,
        "readonly",
        Range(1, 1, 1),
        "@read @sortedset @slow",
        "sorted-set",
        "6.2.0",
        zrandmember
    ),
    cmd!(
        "zunion",
        -3,
        "readonly",
        NumKeys {
            dest: false,
            numkeys: 1
        },
        "@read @sortedset @slow",
        "sorted-set",
        "6.2.0",
        zunion
    ),
    cmd!(
        "zinter",
        -3,
        "readonly",
        NumKeys {
            dest: false,
            numkeys: 1
        },
        "@read @sortedset @slow",
        "sorted-set",
        "6.2.0",
        zinter
    ),
    cmd!(
        "zdiff",
        -3,
        "readonly",
        NumKeys {
            dest: false,
            numkeys: 1
        },
        "@read @sortedset @slow",
        "sorted-set",
        "6.2.0",
        zdiff
    ),
    cmd!(
        "zunionstore",
        -4,
        "write denyoom",
        NumKeys {
            dest: true,
            numkeys: 2
        },
        "@write @sortedset @slow",
        "sorted-set",
        "2.0.0",
        zunionstore
    ),
    cmd!(
        "zinterstore",
        -4,
        "write denyoom",
        NumKeys {
            dest: true,
            numkeys: 2
        },
        "@write @sortedset @slow",
        "sorted-set",
        "2.0.0",
        zinterstore
    ),
    cmd!(
        "zdiffstore",
        -4,
        "write denyoom",
        NumKeys {
            dest: true,
            numkeys: 2
        },
        "@write @sortedset @slow",
        "sorted-set",
        "6.2.0",
        zdiffstore
    ),
    cmd!(
        "zintercard",
        -3,
        "readonly",
        NumKeys {
            dest: false,
            numkeys: 1
        },
        "@read @sortedset @slow",
        "sorted-set",
        "7.0.0",
        zintercard
    ),
    cmd!(
        "zscan",
        -3,
        "readonly",
        Range(1, 1, 1),
        "@read @sortedset @slow",
        "sorted-set",
        "2.8.0",
        zscan
    ),
];

fn arg<'a>(args: &Args<'a>, i: usize) -> &'a [u8] {
    args.get(i).unwrap_or_default()
}

pub(crate) fn limits(ctx: &Ctx) -> Limits {
    let e = &ctx.server.config.encodings;
    Limits {
        max_entries: e.zset_max_listpack_entries.load(Relaxed).max(0) as usize,
        max_value: e.zset_max_listpack_value.load(Relaxed).max(0) as usize,
    }
}

/// Deletes `key` when its zset became empty, then reports the write.
pub(crate) fn after_write(shard: &mut Shard, db: usize, key: &[u8], event: &'static str) {
    let empty = matches!(
        shard.dbs[db].table.get(key).map(|e| e.value()),
        Some(ValueRef::ZSet(z)) if z.is_empty()
    );
    after_write_known(shard, db, key, event, empty);
}

/// `after_write` when the caller knows whether the zset is now empty.
fn after_write_known(shard: &mut Shard, db: usize, key: &[u8], event: &'static str, empty: bool) {
    shard.written(db, key, event);
    if empty {
        shard.remove(db, key);
        shard.written(db, key, "del");
    }
}

type Elems = Vec<(Vec<u8>, f64)>;

/// Members, with their scores when asked: flat in RESP2, pairs in RESP3.
fn reply_elems(r: &mut Reply, items: &[(Vec<u8>, f64)], withscores: bool) {
    if withscores && r.is_resp3() {
        r.array(items.len());
        for (m, s) in items {
            r.array(2);
            r.bulk(m);
            r.double(*s);
        }
    } else if withscores {
        r.array(items.len() * 2);
        for (m, s) in items {
            r.bulk(m);
            r.double(*s);
        }
    } else {
        r.array(items.len());
        for (m, _) in items {
            r.bulk(m);
        }
    }
}

/// Always [member, score] pairs (ZMPOP, and RESP3 pops with a count).
fn reply_pairs(r: &mut Reply, items: &[(Vec<u8>, f64)]) {
    r.array(items.len());
    for (m, s) in items {
        r.array(2);
        r.bulk(m);
        r.double(*s);
    }
}

/// A sorted set holding `items`, in the encoding Redis ends up with.
fn build(items: &[(Vec<u8>, f64)], limits: Limits) -> ZSet {
    let maxlen = items.iter().map(|(m, _)| m.len()).max().unwrap_or(0);
    let mut z = ZSet::with_hint(items.len(), maxlen, limits);
    for (m, s) in items {
        z.insert(m, *s, limits);
    }
    z
}

/// Stores `items` at `key` (deleting it when there are none); returns the
/// count stored.
pub(crate) fn store(
    ctx: &mut Ctx,
    key: &[u8],
    items: &[(Vec<u8>, f64)],
    event: &'static str,
) -> usize {
    let (db, now) = (ctx.db(), ctx.now);
    let limits = limits(ctx);
    let shard = ctx.shard(key);
    if items.is_empty() {
        if shard.contains(db, key, now) {
            shard.remove(db, key);
            shard.written(db, key, "del");
        }
        return 0;
    }
    let z = build(items, limits);
    let n = z.len();
    shard.put(db, Entry::new(key, Value::ZSet(Box::new(z)), 0));
    shard.written(db, key, event);
    n
}

// ---------------------------------------------------------------- ranges

#[derive(Clone, Copy)]
struct ScoreRange {
    min: f64,
    max: f64,
    minex: bool,
    maxex: bool,
}

fn score_bound(s: &[u8]) -> CmdResult<(f64, bool)> {
    let (s, ex) = match s.first() {
        Some(b'(') => (&s[1..], true),
        _ => (s, false),
    };
    parse_range_float(s)
        .map(|v| (v, ex))
        .ok_or(CmdError::MinMaxNotFloat)
}

impl ScoreRange {
    fn parse(min: &[u8], max: &[u8]) -> CmdResult<ScoreRange> {
        let (min, minex) = score_bound(min)?;
        let (max, maxex) = score_bound(max)?;
        Ok(ScoreRange {
            min,
            max,
            minex,
            maxex,
        })
    }

    /// The ascending ranks `lo..hi` inside the range.
    fn ranks(&self, z: &ZSet) -> (usize, usize) {
        let r = *self;
        let lo = z.prefix_len(|s, _| if r.minex { s <= r.min } else { s < r.min });
        let hi = z.prefix_len(|s, _| if r.maxex { s < r.max } else { s <= r.max });
        (lo, hi.max(lo))
    }
}

enum Lex {
    Min,
    Max,
    Incl(Vec<u8>),
    Excl(Vec<u8>),
}

fn lex_bound(s: &[u8]) -> CmdResult<Lex> {
    match s.first() {
        Some(b'+') if s.len() == 1 => Ok(Lex::Max),
        Some(b'-') if s.len() == 1 => Ok(Lex::Min),
        Some(b'(') => Ok(Lex::Excl(s[1..].to_vec())),
        Some(b'[') => Ok(Lex::Incl(s[1..].to_vec())),
        _ => Err(CmdError::LexRangeItem),
    }
}

struct LexRange {
    min: Lex,
    max: Lex,
}

impl LexRange {
    fn parse(min: &[u8], max: &[u8]) -> CmdResult<LexRange> {
        Ok(LexRange {
            min: lex_bound(min)?,
            max: lex_bound(max)?,
        })
    }

    fn ranks(&self, z: &ZSet) -> (usize, usize) {
        let lo = z.prefix_len(|_, m| match &self.min {
            Lex::Min => false,
            Lex::Max => true,
            Lex::Incl(x) => m < &x[..],
            Lex::Excl(x) => m <= &x[..],
        });
        let hi = z.prefix_len(|_, m| match &self.max {
            Lex::Min => false,
            Lex::Max => true,
            Lex::Incl(x) => m <= &x[..],
            Lex::Excl(x) => m < &x[..],
        });
        (lo, hi.max(lo))
    }
}

/// Redis's rank clamp: ascending ranks `lo..hi` for start/end (negative
/// from the end), empty when out of range.
fn rank_range(start: i64, end: i64, len: usize) -> (usize, usize) {
    let llen = len as i64;
    let mut start = if start < 0 { start + llen } else { start };
    let mut end = if end < 0 { end + llen } else { end };
    if start < 0 {
        start = 0;
    }
    if start > end || start >= llen {
        return (0, 0);
    }
    if end >= llen {
        end = llen - 1;
    }
    (start as usize, end as usize + 1)
}

fn collect(z: &ZSet, lo: usize, hi: usize, rev: bool) -> Elems {
    let mut out = Vec::with_capacity(hi.saturating_sub(lo).min(1 << 16));
    z.range(lo, hi, rev, |m, s| out.push((m.to_vec(), s)));
    out
}

/// Ranks `lo..hi` after LIMIT offset/count, walked forwards or backwards.
fn limited(lo: usize, hi: usize, rev: bool, offset: i64, limit: i64) -> (usize, usize) {
    if offset < 0 || lo >= hi {
        return (0, 0);
    }
    let off = usize::try_from(offset).unwrap_or(usize::MAX);
    let n = if limit < 0 {
        usize::MAX
    } else {
        usize::try_from(limit).unwrap_or(usize::MAX)
    };
    if rev {
        let top = hi.saturating_sub(off);
        if top <= lo {
            return (0, 0);
        }
        (lo.max(top.saturating_sub(n)), top)
    } else {
        let a = lo.saturating_add(off);
        if a >= hi {
            return (0, 0);
        }
        (a, hi.min(a.saturating_add(n)))
    }
}

// ---------------------------------------------------------------- ZADD

/// ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]
fn zadd(ctx: &mut Ctx, args: &Args) -> CmdResult {
    zadd_generic(ctx, args, false)
}

/// ZINCRBY key increment member
fn zincrby(ctx: &mut Ctx, args: &Args) -> CmdResult {
    zadd_generic(ctx, args, true)
}

fn zadd_generic(ctx: &mut Ctx, args: &Args, incr_cmd: bool) -> CmdResult {
    let (mut nx, mut xx, mut ch, mut incr, mut gt, mut lt) =
        (false, false, false, incr_cmd, false, false);
    let mut i = 2;
    while i < args.len() {
        let o = arg(args, i);
        if eq(o, "nx") {
            nx = true;
        } else if eq(o, "xx") {
            xx = true;
        } else if eq(o, "ch") {
            ch = true;
        } else if eq(o, "incr") {
            incr = true;
        } else if eq(o, "gt") {
            gt = true;
        } else if eq(o, "lt") {
            lt = true;
        } else {
            break;
        }
        i += 1;
    }
    let elements = args.len() - i;
    if !elements.is_multiple_of(2) || elements == 0 {
        return Err(CmdError::Syntax);
    }
    if nx && xx {
        return Err(CmdError::ZaddXxNx);
    }
    if (nx && (gt || lt)) || (gt && lt) {
        return Err(CmdError::ZaddGtLtNx);
    }
    if incr && elements > 2 {
        return Err(CmdError::ZaddIncrPair);
    }
    // One pair is the usual case: no allocation for it.
    let mut pairs: smallvec::SmallVec<[(f64, &[u8]); 2]> = smallvec::SmallVec::new();
    for j in (i..args.len()).step_by(2) {
        let score = parse_score(arg(args, j)).ok_or(CmdError::NotFloat)?;
        pairs.push((score, arg(args, j + 1)));
    }
    let key = arg(args, 1);
    let (db, now) = (ctx.db(), ctx.now);
    let limits = limits(ctx);
    let shard = ctx.shard(key);
    // One keyspace probe: XX never creates the key, the others create it
    // (an empty zset, removed below if nothing went in).
    let (z, exists) = if xx {
        let z = typed::write::<ZSet>(shard, db, key, now)?;
        let exists = z.is_some();
        (z, exists)
    } else {
        let hint = pairs.first().map_or(0, |p| p.1.len());
        let (z, created) =
            typed::write_or_make(shard, db, key, now, || ZSet::with_hint(1, hint, limits))?;
        (Some(z), !created)
    };
    let (mut added, mut updated, mut processed) = (0i64, 0i64, 0i64);
    let mut last = 0.0;
    let mut nan = false;
    let plain = !(nx || xx || incr || lt || gt);
    if let Some(z) = z {
        for &(score, member) in &pairs {
            if plain {
                // No condition: `insert` looks the member up once and
                // says whether it was new (a parsed score is never NaN).
                match z.insert(member, score, limits) {
                    Some(cur) => updated += i64::from(cur != score),
                    None => added += 1,
                }
                processed += 1;
                last = score;
                continue;
            }
            match z.score(member) {
                Some(cur) => {
                    if nx {
                        continue;
                    }
                    let new = if incr { cur + score } else { score };
                    if new.is_nan() {
                        nan = true;
                        break;
                    }
                    if (lt && new >= cur) || (gt && new <= cur) {
                        continue;
                    }
                    processed += 1;
                    last = new;
                    if new != cur {
                        z.insert(member, new, limits);
                        updated += 1;
                    }
                }
                None => {
                    if xx {
                        continue;
                    }
                    z.insert(member, score, limits);
                    added += 1;
                    processed += 1;
                    last = score;
                }
            }
        }
        let empty = z.is_empty();
        if added + updated > 0 {
            after_write_known(shard, db, key, if incr { "zincr" } else { "zadd" }, empty);
        } else if !exists {
            // Nothing went in (cannot happen for a new key, but never
            // leave an empty zset behind).
            after_write_known(shard, db, key, "zadd", empty);
        }
    }
    if nan {
        return Err(CmdError::ScoreNan);
    }
    if incr {
        if processed > 0 {
            ctx.reply.double(last);
        } else {
            ctx.reply.null();
        }
    } else {
        ctx.reply.int(if ch { added + updated } else { added });
    }
    Ok(())
}

// ---------------------------------------------------------------- simple reads

/// ZREM key member [member ...]
fn zrem(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let key = arg(args, 1);
    let (db, now) = (ctx.db(), ctx.now);
    let shard = ctx.shard(key);
    let mut n = 0;
    if let Some(z) = typed::write::<ZSet>(shard, db, key, now)? {
        for m in args.iter().skip(2) {
            if z.remove(m).is_some() {
                n += 1;
                if z.is_empty() {
                    break;
                }
            }
        }
        if n > 0 {
            after_write(shard, db, key, "zrem");
        }
    }
    ctx.reply.int(n);
    Ok(())
}

/// ZCARD key
fn zcard(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let key = arg(args, 1);
    let (db, now) = (ctx.db(), ctx.now);
    let n = typed::read::<ZSet>(ctx.shard(key), db, key, now)?.map_or(0, |z| z.len());
    ctx.reply.int(n as i64);
    Ok(())
}

/// ZSCORE key member
fn zscore(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let key = arg(args, 1);
    let (db, now) = (ctx.db(), ctx.now);
    let s = typed::read::<ZSet>(ctx.shard(key), db, key, now)?.and_then(|z| z.score(arg(args, 2)));
    match s {
        Some(s) => ctx.reply.double(s),
        None => ctx.reply.null(),
    }
    Ok(())
}

/// ZMSCORE key member [member ...]
fn zmscore(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let key = arg(args, 1);
    let (db, now) = (ctx.db(), ctx.now);
    let (shard, reply) = ctx.shard_and_reply(key);
    let z = typed::read::<ZSet>(shard, db, key, now)?;
    reply.array(args.len() - 2);
    for m in args.iter().skip(2) {
        match z.as_ref().and_then(|z| z.score(m)) {
            Some(s) => reply.double(s),
            None => reply.null(),
        }
    }
    Ok(())
}

fn rank_generic(ctx: &mut Ctx, args: &Args, rev: bool) -> CmdResult {
    let key = arg(args, 1);
    let (db, now) = (ctx.db(), ctx.now);
    let r = typed::read::<ZSet>(ctx.shard(key), db, key, now)?.and_then(|z| {
        let (r, _) = z.rank(arg(args, 2))?;
        Some(if rev { z.len() - 1 - r } else { r })
    });
    match r {
        Some(r) => ctx.reply.int(r as i64),
        None => ctx.reply.null(),
    }
    Ok(())
}

/// ZRANK key member
fn zrank(ctx: &mut Ctx, args: &Args) -> CmdResult {
    rank_generic(ctx, args, false)
}

/// ZREVRANK key member
fn zrevrank(ctx: &mut Ctx, args: &Args) -> CmdResult {
    rank_generic(ctx, args, true)
}

/// ZCOUNT key min max
fn zcount(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let range = ScoreRange::parse(arg(args, 2), arg(args, 3))?;
    let key = arg(args, 1);
    let (db, now) = (ctx.db(), ctx.now);
    let n = typed::read::<ZSet>(ctx.shard(key), db, key, now)?.map_or(0, |z| {
        let (lo, hi) = range.ranks(z);
        hi - lo
    });
    ctx.reply.int(n as i64);
    Ok(())
}

/// ZLEXCOUNT key min max
fn zlexcount(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let range = LexRange::parse(arg(args, 2), arg(args, 3))?;
    let key = arg(args, 1);
    let (db, now) = (ctx.db(), ctx.now);
    let n = typed::read::<ZSet>(ctx.shard(key), db, key, now)?.map_or(0, |z| {
        let (lo, hi) = range.ranks(z);
        hi - lo
    });
    ctx.reply.int(n as i64);
    Ok(())
}

// ---------------------------------------------------------------- ZRANGE family

#[derive(Clone, Copy, PartialEq)]
enum By {
    Auto,
    Rank,
    Score,
    Lex,
}

/// The ZRANGE family. `src` is the index of the source key (1, or 2 for
/// ZRANGESTORE whose destination is argument 1); `by`/`rev` are fixed by
/// the legacy commands and free (Auto/None) for ZRANGE and ZRANGESTORE.
fn zrange_generic(
    ctx: &mut Ctx,
    args: &Args,
    src: usize,
    mut by: By,
    mut rev: Option<bool>,
) -> CmdResult {
    let storing = src == 2;
    let (mut withscores, mut offset, mut limit) = (false, 0i64, -1i64);
    let mut j = src + 3;
    while j < args.len() {
        let a = arg(args, j);
        let left = args.len() - j - 1;
        if !storing && eq(a, "withscores") {
            withscores = true;
        } else if eq(a, "limit") && left >= 2 {
            offset = int(arg(args, j + 1))?;
            limit = int(arg(args, j + 2))?;
            j += 2;
        } else if rev.is_none() && eq(a, "rev") {
            rev = Some(true);
        } else if by == By::Auto && eq(a, "bylex") {
            by = By::Lex;
        } else if by == By::Auto && eq(a, "byscore") {
            by = By::Score;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let rev = rev.unwrap_or(false);
    if by == By::Auto {
        by = By::Rank;
    }
    if limit != -1 && by == By::Rank {
        return Err(CmdError::ZrangeLimitNeedsBy);
    }
    if withscores && by == By::Lex {
        return Err(CmdError::ZrangeWithscoresBylex);
    }
    let (mut a, mut b) = (arg(args, src + 1), arg(args, src + 2));
    if rev && by != By::Rank {
        std::mem::swap(&mut a, &mut b);
    }
    enum Spec {
        Rank(i64, i64),
        Score(ScoreRange),
        Lex(LexRange),
    }
    let spec = match by {
        By::Score => Spec::Score(ScoreRange::parse(a, b)?),
        By::Lex => Spec::Lex(LexRange::parse(a, b)?),
        _ => Spec::Rank(int(a)?, int(b)?),
    };
    let key = arg(args, src);
    let (db, now) = (ctx.db(), ctx.now);
    let items = match typed::read::<ZSet>(ctx.shard(key), db, key, now)? {
        None => Vec::new(),
        Some(z) => {
            let (lo, hi) = match &spec {
                Spec::Rank(s, e) => {
                    let (lo, hi) = rank_range(*s, *e, z.len());
                    if rev && lo < hi {
                        (z.len() - hi, z.len() - lo)
                    } else {
                        (lo, hi)
                    }
                }
                Spec::Score(r) => {
                    let (lo, hi) = r.ranks(z);
                    limited(lo, hi, rev, offset, limit)
                }
                Spec::Lex(r) => {
                    let (lo, hi) = r.ranks(z);
                    limited(lo, hi, rev, offset, limit)
                }
            };
            collect(z, lo, hi, rev)
        }
    };
    if storing {
        let n = store(ctx, arg(args, 1), &items, "zrangestore");
        ctx.reply.int(n as i64);
    } else {
        reply_elems(ctx.reply, &items, withscores);
    }
    Ok(())
}

/// ZRANGE key start stop [BYSCORE|BYLEX] [REV] [LIMIT offset count] [WITHSCORES]
fn zrange(ctx: &mut Ctx, args: &Args) -> CmdResult {
    zrange_generic(ctx, args, 1, By::Auto, None)
}

/// ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count]
fn zrangestore(ctx: &mut Ctx, args: &Args) -> CmdResult {
    zrange_generic(ctx, args, 2, By::Auto, None)
}

fn zrevrange(ctx: &mut Ctx, args: &Args) -> CmdResult {
    zrange_generic(ctx, args, 1, By::Rank, Some(true))
}

fn zrangebyscore(ctx: &mut Ctx, args: &Args) -> CmdResult {
    zrange_generic(ctx, args, 1, By::Score, Some(false))
}

fn zrevrangebyscore(ctx: &mut Ctx, args: &Args) -> CmdResult {
    zrange_generic(ctx, args, 1, By::Score, Some(true))
}

fn zrangebylex(ctx: &mut Ctx, args: &Args) -> CmdResult {
    zrange_generic(ctx, args, 1, By::Lex, Some(false))
}

fn zrevrangebylex(ctx: &mut Ctx, args: &Args) -> CmdResult {
    zrange_generic(ctx, args, 1, By::Lex, Some(true))
}

// ---------------------------------------------------------------- ZREMRANGEBY*

fn zremrange_generic(ctx: &mut Ctx, args: &Args, by: By) -> CmdResult {
    let (a, b) = (arg(args, 2), arg(args, 3));
    enum Spec {
        Rank(i64, i64),
        Score(ScoreRange),
        Lex(LexRange),
    }
    let (spec, event) = match by {
        By::Score => (Spec::Score(ScoreRange::parse(a, b)?), "zremrangebyscore"),
        By::Lex => (Spec::Lex(LexRange::parse(a, b)?), "zremrangebylex"),
        _ => (Spec::Rank(int(a)?, int(b)?), "zremrangebyrank"),
    };
    let key = arg(args, 1);
    let (db, now) = (ctx.db(), ctx.now);
    let shard = ctx.shard(key);
    let mut n = 0;
    if let Some(z) = typed::write::<ZSet>(shard, db, key, now)? {
        let (lo, hi) = match &spec {
            Spec::Rank(s, e) => rank_range(*s, *e, z.len()),
            Spec::Score(r) => r.ranks(z),
            Spec::Lex(r) => r.ranks(z),
        };
        n = z.remove_range(lo, hi, |_, _| {});
        if n > 0 {
            after_write(shard, db, key, event);
        }
    }
    ctx.reply.int(n as i64);
    Ok(())
}

fn zremrangebyrank(ctx: &mut Ctx, args: &Args) -> CmdResult {
    zremrange_generic(ctx, args, By::Rank)
}

fn zremrangebyscore(ctx: &mut Ctx, args: &Args) -> CmdResult {
    zremrange_generic(ctx, args, By::Score)
}

fn zremrangebylex(ctx: &mut Ctx, args: &Args) -> CmdResult {
    zremrange_generic(ctx, args, By::Lex)
}

// ---------------------------------------------------------------- pops

/// Pops up to `count` elements from the zset at `key` (lowest first for
/// min); None when there is no such key.
fn pop(ctx: &mut Ctx, key: &[u8], max: bool, count: usize) -> CmdResult<Option<Elems>> {
    let (db, now) = (ctx.db(), ctx.now);
    pop_at(ctx.shard(key), db, key, now, max, count)
}

/// `pop` on a shard already in hand (also serves blocked clients).
pub(crate) fn pop_at(
    shard: &mut Shard,
    db: usize,
    key: &[u8],
    now: u64,
    max: bool,
    count: usize,
) -> CmdResult<Option<Elems>> {
    let Some(z) = typed::write::<ZSet>(shard, db, key, now)? else {
        return Ok(None);
    };
    let n = count.min(z.len());
    let (lo, hi) = if max { (z.len() - n, z.len()) } else { (0, n) };
    let items = collect(z, lo, hi, max);
    z.remove_range(lo, hi, |_, _| {});
    if !items.is_empty() {
        after_write(shard, db, key, if max { "zpopmax" } else { "zpopmin" });
    }
    Ok(Some(items))
}

/// BZPOPMIN/BZPOPMAX's reply: `[key, member, score]`.
pub(crate) fn reply_bzpop(r: &mut Reply, key: &[u8], items: &[(Vec<u8>, f64)]) {
    r.array(3);
    r.bulk(key);
    match items.first() {
        Some((m, s)) => {
            r.bulk(m);
            r.double(*s);
        }
        None => {
            r.bulk(b"");
            r.double(0.0);
        }
    }
}

/// ZMPOP/BZMPOP's reply: `[key, [[member, score]...]]`.
pub(crate) fn reply_zmpop(r: &mut Reply, key: &[u8], items: &[(Vec<u8>, f64)]) {
    r.array(2);
    r.bulk(key);
    reply_pairs(r, items);
}

fn zpop_generic(ctx: &mut Ctx, args: &Args, max: bool) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::Syntax);
    }
    let count = match args.get(2) {
        None => None,
        Some(c) => match parse_i64(c) {
            Some(n) if n >= 0 => Some(n as usize),
            _ => return Err(CmdError::OutOfRangePositive),
        },
    };
    let items = pop(ctx, arg(args, 1), max, count.unwrap_or(1))?.unwrap_or_default();
    if count.is_some() && ctx.reply.is_resp3() {
        reply_pairs(ctx.reply, &items);
    } else {
        ctx.reply.array(items.len() * 2);
        for (m, s) in &items {
            ctx.reply.bulk(m);
            ctx.reply.double(*s);
        }
    }
    Ok(())
}

/// ZPOPMIN key [count]
fn zpopmin(ctx: &mut Ctx, args: &Args) -> CmdResult {
    zpop_generic(ctx, args, false)
}

/// ZPOPMAX key [count]
fn zpopmax(ctx: &mut Ctx, args: &Args) -> CmdResult {
    zpop_generic(ctx, args, true)
}

/// Parses `numkeys key... MIN|MAX [COUNT count]` with numkeys at `at`:
/// the key positions, max, and the count.
fn zmpop_args(args: &Args, at: usize) -> CmdResult<(std::ops::Range<usize>, bool, usize)> {
    let numkeys = match parse_i64(arg(args, at)) {
        Some(n) if n >= 1 => n as usize,
        _ => return Err(CmdError::NumkeysNotPositive),
    };
    let where_idx = numkeys.saturating_add(at + 1);
    if where_idx >= args.len() {
        return Err(CmdError::Syntax);
    }
    let w = arg(args, where_idx);
    let max = if eq(w, "min") {
        false
    } else if eq(w, "max") {
        true
    } else {
        return Err(CmdError::Syntax);
    };
    let mut count: Option<usize> = None;
    let mut j = where_idx + 1;
    while j < args.len() {
        if count.is_none() && eq(arg(args, j), "count") && j + 1 < args.len() {
            j += 1;
            match parse_i64(arg(args, j)) {
                Some(n) if n >= 1 => count = Some(n as usize),
                _ => return Err(CmdError::CountNotPositive),
            }
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    Ok((at + 1..where_idx, max, count.unwrap_or(1)))
}

/// Pops from the first non-empty zset among `keys`, replying as ZMPOP (or
/// as BZPOPMIN/BZPOPMAX when `single`). WRONGTYPE stops at the first key
/// of another type. False: all empty.
fn mpop_first(
    ctx: &mut Ctx,
    args: &Args,
    keys: std::ops::Range<usize>,
    max: bool,
    count: usize,
    single: bool,
) -> CmdResult<bool> {
    let (db, now) = (ctx.db(), ctx.now);
    for i in keys {
        let key = arg(args, i);
        let nonempty = match typed::write::<ZSet>(ctx.shard(key), db, key, now)? {
            Some(z) => !z.is_empty(),
            None => false,
        };
        if !nonempty {
            continue;
        }
        let items = pop(ctx, key, max, count)?.unwrap_or_default();
        if single {
            reply_bzpop(ctx.reply, key, &items);
        } else {
            reply_zmpop(ctx.reply, key, &items);
        }
        // Replicas get the plain pop this amounted to (Redis 7.0).
        let name: &[u8] = if max { b"ZPOPMAX" } else { b"ZPOPMIN" };
        let n = items.len().to_string();
        let with_count = [name, key, n.as_bytes()];
        crate::repl_master::instead(ctx.server, &with_count[..if single { 2 } else { 3 }]);
        return Ok(true);
    }
    Ok(false)
}

/// ZMPOP numkeys key [key ...] MIN|MAX [COUNT count]
fn zmpop(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let (keys, max, count) = zmpop_args(args, 1)?;
    if !mpop_first(ctx, args, keys, max, count, false)? {
        ctx.reply.null_array();
    }
    Ok(())
}

/// BZPOPMIN/BZPOPMAX key [key ...] timeout
fn bzpop_generic(ctx: &mut Ctx, args: &Args, max: bool) -> CmdResult {
    let timeout = crate::list::parse_timeout(arg(args, args.len() - 1))?;
    let keys = 1..args.len() - 1;
    if mpop_first(ctx, args, keys.clone(), max, 1, true)? {
        return Ok(());
    }
    let keys = keys.map(|i| arg(args, i).to_vec()).collect();
    crate::list::block(ctx, keys, crate::list::BlockOp::ZPop { max }, timeout);
    Ok(())
}

/// BZPOPMIN key [key ...] timeout
fn bzpopmin(ctx: &mut Ctx, args: &Args) -> CmdResult {
    bzpop_generic(ctx, args, false)
}

/// BZPOPMAX key [key ...] timeout
fn bzpopmax(ctx: &mut Ctx, args: &Args) -> CmdResult {
    bzpop_generic(ctx, args, true)
}

/// BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count]
fn bzmpop(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let (keys, max, count) = zmpop_args(args, 2)?;
    let timeout = crate::list::parse_timeout(arg(args, 1))?;
    if mpop_first(ctx, args, keys.clone(), max, count, false)? {
        return Ok(());
    }
    let keys = keys.map(|i| arg(args, i).to_vec()).collect();
    let op = crate::list::BlockOp::ZMPop { max, count };
    crate::list::block(ctx, keys, op, timeout);
    Ok(())
}

// ---------------------------------------------------------------- ZRANDMEMBER

/// ZRANDMEMBER key [count [WITHSCORES]]
fn zrandmember(ctx: &mut Ctx, args: &Args) -> CmdResult {
    use rand::Rng;
    let key = arg(args, 1);
    let (db, now) = (ctx.db(), ctx.now);
    if args.len() == 2 {
        let (shard, reply) = ctx.shard_and_reply(key);
        match typed::read::<ZSet>(shard, db, key, now)? {
            Some(z) if !z.is_empty() => {
                let k = rand::rng().random_range(0..z.len());
                match z.get(k) {
                    Some((m, _)) => reply.bulk(&m),
                    None => reply.null(),
                }
            }
            _ => reply.null(),
        }
        return Ok(());
    }
    let l = match parse_i64(arg(args, 2)) {
        Some(i64::MIN) => return Err(CmdError::OutOfRangeLong),
        Some(n) => n,
        None => return Err(CmdError::NotInteger),
    };
    let mut withscores = false;
    if args.len() > 4 || (args.len() == 4 && !eq(arg(args, 3), "withscores")) {
        return Err(CmdError::Syntax);
    } else if args.len() == 4 {
        withscores = true;
        if !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&l) {
            return Err(CmdError::OutOfRange);
        }
    }
    let (shard, reply) = ctx.shard_and_reply(key);
    let Some(z) = typed::read::<ZSet>(shard, db, key, now)? else {
        reply.array(0);
        return Ok(());
    };
    if l == 0 || z.is_empty() {
        reply.array(0);
        return Ok(());
    }
    let mut rng = rand::rng();
    let emit = |reply: &mut Reply, m: &[u8], s: f64| {
        if withscores && reply.is_resp3() {
            reply.array(2);
        }
        reply.bulk(m);
        if withscores {
            reply.double(s);
        }
    };
    let header = |reply: &mut Reply, n: usize| {
        if withscores && !reply.is_resp3() {
            reply.array(n * 2);
        } else {
            reply.array(n);
        }
    };
    if l < 0 {
        let n = l.unsigned_abs() as usize;
        header(reply, n);
        for _ in 0..n {
            let k = rng.random_range(0..z.len());
            if let Some((m, s)) = z.get(k) {
                emit(reply, &m, s);
            }
        }
        return Ok(());
    }
    let n = l as usize;
    if n >= z.len() {
        header(reply, z.len());
        z.range(0, z.len(), false, |m, s| emit(reply, m, s));
        return Ok(());
    }
    header(reply, n);
    for k in rand::seq::index::sample(&mut rng, z.len(), n) {
        if let Some((m, s)) = z.get(k) {
            emit(reply, &m, s);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- set operations

#[derive(Clone, Copy, PartialEq)]
enum SetOp {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy)]
enum Agg {
    Sum,
    Min,
    Max,
}

fn aggregate(t: &mut f64, v: f64, agg: Agg) {
    match agg {
        Agg::Sum => {
            *t += v;
            if t.is_nan() {
                *t = 0.0;
            }
        }
        Agg::Min => {
            if v < *t {
                *t = v;
            }
        }
        Agg::Max => {
            if v > *t {
                *t = v;
            }
        }
    }
}

struct Src {
    elems: Elems,
    index: HashMap<Vec<u8>, f64>,
    weight: f64,
}

impl Src {
    fn find(&self, m: &[u8]) -> Option<f64> {
        self.index.get(m).copied()
    }
}

/// A source's elements: a zset's, or a set's with score 1. The STORE
/// forms look sources up as reads too (hits, misses, keymiss), as Redis 7.0.
fn read_source(ctx: &mut Ctx, key: &[u8]) -> CmdResult<Elems> {
    let (db, now) = (ctx.db(), ctx.now);
    let e = ctx.shard(key).get(db, key, now);
    match e {
        None => Ok(Vec::new()),
        Some(e) => match e.value() {
            ValueRef::ZSet(z) => Ok(z.to_vec()),
            // Sets take part with score 1 for each member.
            ValueRef::Set(set) => Ok(set.iter().map(|m| (m.to_vec(), 1.0)).collect()),
            _ => Err(CmdError::WrongType),
        },
    }
}

/// ZUNION/ZINTER/ZDIFF[STORE] and ZINTERCARD.
fn zsetop(
    ctx: &mut Ctx,
    args: &Args,
    op: SetOp,
    name: &'static str,
    dest: bool,
    cardonly: bool,
) -> CmdResult {
    let nk_idx = if dest { 2 } else { 1 };
    let setnum = int(arg(args, nk_idx))?;
    if setnum < 1 {
        return Err(CmdError::AtLeastOneKey(name));
    }
    if setnum > (args.len() - nk_idx - 1) as i64 {
        return Err(CmdError::Syntax);
    }
    let setnum = setnum as usize;
    let mut srcs = Vec::with_capacity(setnum);
    for i in 0..setnum {
        let elems = read_source(ctx, arg(args, nk_idx + 1 + i))?;
        srcs.push(Src {
            elems,
            index: HashMap::new(),
            weight: 1.0,
        });
    }
    let mut j = nk_idx + 1 + setnum;
    let mut agg = Agg::Sum;
    let mut withscores = false;
    let mut limit: usize = 0;
    while j < args.len() {
        let remaining = args.len() - j;
        let a = arg(args, j);
        if op != SetOp::Diff && !cardonly && remaining > setnum && eq(a, "weights") {
            j += 1;
            for s in srcs.iter_mut() {
                s.weight = parse_score(arg(args, j)).ok_or(CmdError::WeightNotFloat)?;
                j += 1;
            }
        } else if op != SetOp::Diff && !cardonly && remaining >= 2 && eq(a, "aggregate") {
            let v = arg(args, j + 1);
            agg = if eq(v, "sum") {
                Agg::Sum
            } else if eq(v, "min") {
                Agg::Min
            } else if eq(v, "max") {
                Agg::Max
            } else {
                return Err(CmdError::Syntax);
            };
            j += 2;
        } else if !dest && !cardonly && eq(a, "withscores") {
            withscores = true;
            j += 1;
        } else if cardonly && remaining >= 2 && eq(a, "limit") {
            limit = match parse_i64(arg(args, j + 1)) {
                Some(n) if n >= 0 => n as usize,
                _ => return Err(CmdError::LimitNegative),
            };
            j += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    if op != SetOp::Diff {
        // Smallest first, as Redis orders its inputs (this decides the
        // order the scores are summed in).
        srcs.sort_by_key(|s| s.elems.len());
    }
    for s in srcs.iter_mut().skip(1) {
        s.index = s.elems.iter().cloned().collect();
    }
    let mut result: Elems = Vec::new();
    match op {
        SetOp::Inter => {
            if srcs.iter().all(|s| !s.elems.is_empty()) {
                'outer: for (m, s0) in &srcs[0].elems {
                    let mut score = srcs[0].weight * s0;
                    if score.is_nan() {
                        score = 0.0;
                    }
                    for s in &srcs[1..] {
                        match s.find(m) {
                            Some(v) => aggregate(&mut score, v * s.weight, agg),
                            None => continue 'outer,
                        }
                    }
                    result.push((m.clone(), score));
                    if cardonly && limit > 0 && result.len() >= limit {
                        break;
                    }
                }
            }
        }
        SetOp::Union => {
            let mut acc: HashMap<Vec<u8>, f64> = HashMap::new();
            for s in &srcs {
                for (m, v) in &s.elems {
                    let mut score = s.weight * v;
                    if score.is_nan() {
                        score = 0.0;
                    }
                    match acc.get_mut(m) {
                        Some(t) => aggregate(t, score, agg),
                        None => {
                            acc.insert(m.clone(), score);
                        }
                    }
                }
            }
            result = acc.into_iter().collect();
        }
        SetOp::Diff => {
            for (m, v) in &srcs[0].elems {
                if !srcs[1..].iter().any(|s| s.find(m).is_some()) {
                    result.push((m.clone(), *v));
                }
            }
        }
    }
    if cardonly {
        ctx.reply.int(result.len() as i64);
        return Ok(());
    }
    result.sort_by(|a, b| damselfly_core::zset::cmp_elem(a.1, &a.0, b.1, &b.0));
    if dest {
        let event = match op {
            SetOp::Union => "zunionstore",
            SetOp::Inter => "zinterstore",
            SetOp::Diff => "zdiffstore",
        };
        let n = store(ctx, arg(args, 1), &result, event);
        ctx.reply.int(n as i64);
    } else {
        reply_elems(ctx.reply, &result, withscores);
    }
    Ok(())
}

fn zunion(ctx: &mut Ctx, args: &Args) -> CmdResult {
    zsetop(ctx, args, SetOp::Union, "zunion", false, false)
}

fn zinter(ctx: &mut Ctx, args: &Args) -> CmdResult {
    zsetop(ctx, args, SetOp::Inter, "zinter", false, false)
}

fn zdiff(ctx: &mut Ctx, args: &Args) -> CmdResult {
    zsetop(ctx, args, SetOp::Diff, "zdiff", false, false)
}

fn zunionstore(ctx: &mut Ctx, args: &Args) -> CmdResult {
    zsetop(ctx, args, SetOp::Union, "zunionstore", true, false)
}

fn zinterstore(ctx: &mut Ctx, args: &Args) -> CmdResult {
    zsetop(ctx, args, SetOp::Inter, "zinterstore", true, false)
}

fn zdiffstore(ctx: &mut Ctx, args: &Args) -> CmdResult {
    zsetop(ctx, args, SetOp::Diff, "zdiffstore", true, false)
}

fn zintercard(ctx: &mut Ctx, args: &Args) -> CmdResult {
    zsetop(ctx, args, SetOp::Inter, "zintercard", false, true)
}

// ---------------------------------------------------------------- ZSCAN

/// ZSCAN key cursor [MATCH pattern] [COUNT count]
fn zscan(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let cursor = crate::args::scan_cursor(arg(args, 2))?;
    let key = arg(args, 1);
    let (db, now) = (ctx.db(), ctx.now);
    let (shard, reply) = ctx.shard_and_reply(key);
    let Some(z) = typed::read::<ZSet>(shard, db, key, now)? else {
        reply.array(2);
        reply.bulk(b"0");
        reply.array(0);
        return Ok(());
    };
    let (count, pattern) = crate::args::scan_options(args, 3)?;
    let mut out: Vec<(Vec<u8>, f64)> = Vec::new();
    let next = z.scan(cursor, count, |m, s| {
        if pattern.is_none_or(|p| glob_match(p, m, false)) {
            out.push((m.to_vec(), s));
        }
    });
    reply.array(2);
    reply.bulk(next.to_string().as_bytes());
    reply.array(out.len() * 2);
    for (m, s) in &out {
        reply.bulk(m);
        // Redis prints scores as `%.17Lg` of the score widened to long
        // double: the same digits as `%.17g` of the double, in both encodings.
        reply.bulk(format_double(*s).as_bytes());
    }
    Ok(())
}
