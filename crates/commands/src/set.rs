//! Set commands: SADD SREM SCARD SISMEMBER SMISMEMBER SMEMBERS SRANDMEMBER
//! SPOP SMOVE SINTER SINTERCARD SINTERSTORE SUNION SUNIONSTORE SDIFF
//! SDIFFSTORE SSCAN.

use crate::args::{eq, int, parse_i64, scan_cursor, scan_options};
use crate::cmd;
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::table::{
    Command,
    Keys::{NumKeys, Range},
};
use damselfly_core::glob::glob_match;
use damselfly_core::set::{Member, Set};
use damselfly_protocol::{Args, Reply};
use damselfly_storage::typed;
use damselfly_storage::{Entry, Value};
use std::sync::atomic::Ordering::Relaxed;

pub(crate) static COMMANDS: &[Command] = &[
    cmd!(
        "sadd",
        -3,
        "write denyoom fast",
        Range(1, 1, 1),
        "@write @set @fast",
        "set",
        "1.0.0",
        sadd
    ),
    cmd!(
        "srem",
        -3,
        "write fast",
        Range(1, 1, 1),
        "@write @set @fast",
        "set",
        "1.0.0",
        srem
    ),
    cmd!(
        "scard",
        2,
        "readonly fast",
        Range(1, 1, 1),
        "@read @set @fast",
        "set",
        "1.0.0",
        scard
    ),
    cmd!(
        "sismember",
        3,
        "readonly fast",
        Range(1, 1, 1),
        "@read @set @fast",
        "set",
        "1.0.0",
        sismember
    ),
    cmd!(
        "smismember",
        -3,
        "readonly fast",
        Range(1, 1, 1),
        "@read @set @fast",
        "set",
        "6.2.0",
        smismember
    ),
    cmd!(
        "smembers",
        2,
        "readonly",
        Range(1, 1, 1),
        "@read @set @slow",
        "set",
        "1.0.0",
        smembers
    ),
    cmd!(
        "srandmember",
        -2,
        "readonly",
        Range(1, 1, 1),
        "@read @set @slow",
        "set",
        "1.0.0",
        srandmember
    ),
    cmd!(
        "spop",
        -2,
        "write fast",
        Range(1, 1, 1),
        "@write @set @fast",
        "set",
        "1.0.0",
        spop
    ),
    cmd!(
        "smove",
        4,
        "write fast",
        Range(1, 2, 1),
        "@write @set @fast",
        "set",
        "1.0.0",
        smove
    ),
    cmd!(
        "sinter",
        -2,
        "readonly",
        Range(1, -1, 1),
        "@read @set @slow",
        "set",
        "1.0.0",
        sinter
    ),
    // The keys follow numkeys: every shard is locked (the row's key spec
    // cannot describe them).
    cmd!(
        "sintercard",
        -3,
        "readonly",
        NumKeys {
            dest: false,
            numkeys: 1
        },
        "@read @set @slow",
        "set",
        "7.0.0",
        sintercard
    ),
    cmd!(
        "sinterstore",
        -3,
        "write denyoom",
        Range(1, -1, 1),
        "@write @set @slow",
        "set",
        "1.0.0",
        sinterstore
    ),
    cmd!(
        "sunion",
        -2,
        "readonly",
        Range(1, -1, 1),
        "@read @set @slow",
        "set",
        "1.0.0",
        sunion
    ),
    cmd!(
        "sunionstore",
        -3,
        "write denyoom",
        Range(1, -1, 1),
        "@write @set @slow",
        "set",
        "1.0.0",
        sunionstore
    ),
    cmd!(
        "sdiff",
        -2,
        "readonly",
        Range(1, -1, 1),
        "@read @set @slow",
        "set",
        "1.0.0",
        sdiff
    ),
    cmd!(
        "sdiffstore",
        -3,
        "write denyoom",
        Range(1, -1, 1),
        "@write @set @slow",
        "set",
        "1.0.0",
        sdiffstore
    ),
    cmd!(
        "sscan",
        -3,
        "readonly",
        Range(1, 1, 1),
        "@read @set @slow",
        "set",
        "2.8.0",
        sscan
    ),
];

fn arg<'a>(args: &Args<'a>, i: usize) -> &'a [u8] {
    args.get(i).unwrap_or_default()
}

fn max_intset(ctx: &Ctx) -> usize {
    usize::try_from(
        ctx.server
            .config
            .encodings
            .set_max_intset_entries
            .load(Relaxed),
    )
    .unwrap_or(0)
}

fn bulk_member(reply: &mut Reply, m: Member<'_>) {
    match m {
        Member::Int(n) => reply.bulk_int(n),
        Member::Bytes(b) => reply.bulk(b),
    }
}

fn rand_below(n: usize) -> usize {
    if n <= 1 {
        0
    } else {
        rand::random_range(0..n)
    }
}

/// SADD key member [member ...]
fn sadd(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let max = max_intset(ctx);
    let key = arg(args, 1);
    let (db, now) = (ctx.db(), ctx.now);
    let shard = ctx.shard(key);
    let s = typed::write_or_create::<Set>(shard, db, key, now)?;
    let mut added = 0;
    for m in args.iter().skip(2) {
        if s.add(m, max) {
            added += 1;
        }
    }
    if added > 0 {
        shard.written(db, key, "sadd");
    }
    ctx.reply.int(added);
    Ok(())
}

/// SREM key member [member ...]
fn srem(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let key = arg(args, 1);
    let (db, now) = (ctx.db(), ctx.now);
    let shard = ctx.shard(key);
    let mut n = 0;
    if let Some(s) = typed::write::<Set>(shard, db, key, now)? {
        for m in args.iter().skip(2) {
            if s.remove(m) {
                n += 1;
                if s.is_empty() {
                    break;
                }
            }
        }
    }
    if n > 0 {
        shard.written(db, key, "srem");
        typed::drop_if_empty::<Set>(shard, db, key, now);
    }
    ctx.reply.int(n);
    Ok(())
}

/// SCARD key
fn scard(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let key = arg(args, 1);
    let (db, now) = (ctx.db(), ctx.now);
    let n = typed::read::<Set>(ctx.shard(key), db, key, now)?.map_or(0, |s| s.len());
    ctx.reply.int(n as i64);
    Ok(())
}

/// SISMEMBER key member
fn sismember(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let key = arg(args, 1);
    let (db, now) = (ctx.db(), ctx.now);
    let yes =
        typed::read::<Set>(ctx.shard(key), db, key, now)?.is_some_and(|s| s.contains(arg(args, 2)));
    ctx.reply.int(i64::from(yes));
    Ok(())
}

/// SMISMEMBER key member [member ...]
fn smismember(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let key = arg(args, 1);
    let (db, now) = (ctx.db(), ctx.now);
    let (shard, reply) = ctx.shard_and_reply(key);
    let s = typed::read::<Set>(shard, db, key, now)?;
    reply.array(args.len() - 2);
    for m in args.iter().skip(2) {
        reply.int(i64::from(s.is_some_and(|s| s.contains(m))));
    }
    Ok(())
}

/// SMEMBERS key
fn smembers(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let key = arg(args, 1);
    let (db, now) = (ctx.db(), ctx.now);
    let (shard, reply) = ctx.shard_and_reply(key);
    match typed::read::<Set>(shard, db, key, now)? {
        None => reply.set(0),
        Some(s) => {
            reply.set(s.len());
            for m in s.iter() {
                bulk_member(reply, m);
            }
        }
    }
    Ok(())
}

/// A count argument limited to -LONG_MAX..LONG_MAX, as SRANDMEMBER reads it.
fn signed_count(s: &[u8]) -> CmdResult<i64> {
    let n = int(s)?;
    if n == i64::MIN {
        return Err(CmdError::Other(format!(
            "ERR value is out of range, value must between {} and {}",
            -i64::MAX,
            i64::MAX
        )));
    }
    Ok(n)
}

/// `count` distinct random members (fewer than the set holds).
fn distinct_random(s: &Set, count: usize) -> Vec<Vec<u8>> {
    let size = s.len();
    if count.saturating_mul(3) > size {
        let mut all: Vec<Member<'_>> = s.iter().collect();
        for i in 0..count.min(all.len()) {
            let j = i + rand_below(all.len() - i);
            all.swap(i, j);
        }
        all.truncate(count);
        all.iter().map(Member::to_vec).collect()
    } else {
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        while out.len() < count {
            match s.random(rand_below) {
                Some(m) => {
                    let v = m.to_vec();
                    if seen.insert(v.clone()) {
                        out.push(v);
                    }
                }
                None => break,
            }
        }
        out
    }
}

/// SRANDMEMBER key [count]
fn srandmember(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let key = arg(args, 1);
    let (db, now) = (ctx.db(), ctx.now);
    if args.len() == 2 {
        let (shard, reply) = ctx.shard_and_reply(key);
        match typed::read::<Set>(shard, db, key, now)?.and_then(|s| s.random(rand_below)) {
            Some(m) => bulk_member(reply, m),
            None => reply.null(),
        }
        return Ok(());
    }
    if args.len() > 3 {
        return Err(CmdError::Syntax);
    }
    let count = signed_count(arg(args, 2))?;
    let (shard, reply) = ctx.shard_and_reply(key);
    let Some(s) = typed::read::<Set>(shard, db, key, now)? else {
        reply.array(0);
        return Ok(());
    };
    if count == 0 {
        reply.array(0);
    } else if count < 0 {
        let n = usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX);
        reply.array(n);
        if n.saturating_mul(4) >= s.len() {
            // Many picks: index one list of every member (exactly uniform).
            let all: Vec<Member<'_>> = s.iter().collect();
            for _ in 0..n {
                if let Some(&m) = all.get(rand_below(all.len())) {
                    bulk_member(reply, m);
                }
            }
        } else {
            for _ in 0..n {
                if let Some(m) = s.random(rand_below) {
                    bulk_member(reply, m);
                }
            }
        }
    } else if count as usize >= s.len() {
        reply.array(s.len());
        for m in s.iter() {
            bulk_member(reply, m);
        }
    } else {
        let picks = distinct_random(s, count as usize);
        reply.array(picks.len());
        for m in &picks {
            reply.bulk(m);
        }
    }
    Ok(())
}

/// SPOP key [count]
fn spop(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let key = arg(args, 1);
    let (db, now) = (ctx.db(), ctx.now);
    if args.len() == 2 {
        let shard = ctx.shard(key);
        let popped = match typed::write::<Set>(shard, db, key, now)? {
            Some(s) => s.pop_random(rand_below),
            None => None,
        };
        match popped {
            Some(m) => {
                shard.written(db, key, "spop");
                typed::drop_if_empty::<Set>(shard, db, key, now);
                ctx.reply.bulk(&m);
                crate::repl_master::instead(ctx.server, &[b"SREM", key, &m]);
            }
            None => ctx.reply.null(),
        }
        return Ok(());
    }
    if args.len() > 3 {
        return Err(CmdError::Syntax);
    }
    let count = parse_i64(arg(args, 2))
        .filter(|n| *n >= 0)
        .ok_or_else(|| CmdError::Other("ERR value is out of range, must be positive".into()))?;
    let (shard, reply) = ctx.shard_and_reply(key);
    let Some(s) = typed::write::<Set>(shard, db, key, now)? else {
        reply.set(0);
        return Ok(());
    };
    if count == 0 {
        reply.set(0);
        return Ok(());
    }
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    if count >= s.len() {
        reply.set(s.len());
        for m in s.iter() {
            bulk_member(reply, m);
        }
        shard.remove(db, key);
        shard.written(db, key, "spop");
        shard.written(db, key, "del");
        crate::repl_master::instead(ctx.server, &[b"DEL", key]);
        return Ok(());
    }
    let picks = distinct_random(s, count);
    for m in &picks {
        s.remove(m);
    }
    shard.written(db, key, "spop");
    reply.set(picks.len());
    for m in &picks {
        reply.bulk(m);
    }
    if ctx.server.repl.active() {
        let mut srem: Vec<&[u8]> = vec![b"SREM", key];
        srem.extend(picks.iter().map(|m| &m[..]));
        crate::repl_master::instead(ctx.server, &srem);
    }
    Ok(())
}

/// SMOVE source destination member
fn smove(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let max = max_intset(ctx);
    let (src, dst, member) = (arg(args, 1), arg(args, 2), arg(args, 3));
    let (db, now) = (ctx.db(), ctx.now);
    let src_member = match typed::write::<Set>(ctx.shard(src), db, src, now)? {
        None => {
            ctx.reply.int(0);
            return Ok(());
        }
        Some(s) => s.contains(member),
    };
    typed::write::<Set>(ctx.shard(dst), db, dst, now)?;
    if src == dst {
        ctx.reply.int(i64::from(src_member));
        return Ok(());
    }
    if !src_member {
        ctx.reply.int(0);
        return Ok(());
    }
    let shard = ctx.shard(src);
    if let Some(s) = typed::write::<Set>(shard, db, src, now)? {
        s.remove(member);
    }
    shard.written(db, src, "srem");
    typed::drop_if_empty::<Set>(shard, db, src, now);
    let shard = ctx.shard(dst);
    if typed::write_or_create::<Set>(shard, db, dst, now)?.add(member, max) {
        shard.written(db, dst, "sadd");
    }
    ctx.reply.int(1);
    Ok(())
}

/// Type-checks every key in order; Ok(false) when one is missing. The
/// STORE forms look their sources up as reads too (hits, misses and
/// keymiss events), as Redis 7.0 does.
fn all_present(ctx: &mut Ctx, keys: &[&[u8]]) -> CmdResult<bool> {
    let (db, now) = (ctx.db(), ctx.now);
    let mut present = true;
    for &k in keys {
        present &= typed::read::<Set>(ctx.shard(k), db, k, now)?.is_some();
    }
    Ok(present)
}

/// The intersection of the sets at `keys`, in the order of the smallest.
fn intersect(ctx: &mut Ctx, keys: &[&[u8]]) -> CmdResult<Vec<Vec<u8>>> {
    if !all_present(ctx, keys)? {
        return Ok(Vec::new());
    }
    let (db, now) = (ctx.db(), ctx.now);
    let mut sized: Vec<(usize, &[u8])> = Vec::with_capacity(keys.len());
    for &k in keys {
        let n = typed::write::<Set>(ctx.shard(k), db, k, now)?.map_or(0, |s| s.len());
        sized.push((n, k));
    }
    sized.sort_by_key(|(n, _)| *n);
    let Some(&(_, first)) = sized.first() else {
        return Ok(Vec::new());
    };
    let mut out: Vec<Vec<u8>> = match typed::write::<Set>(ctx.shard(first), db, first, now)? {
        Some(s) => s.iter().map(|m| m.to_vec()).collect(),
        None => Vec::new(),
    };
    for &(_, k) in &sized[1..] {
        if out.is_empty() {
            break;
        }
        if let Some(s) = typed::write::<Set>(ctx.shard(k), db, k, now)? {
            out.retain(|m| s.contains(m));
        }
    }
    Ok(out)
}

fn keys_from<'a>(args: &Args<'a>, from: usize) -> Vec<&'a [u8]> {
    args.iter().skip(from).collect()
}

/// Replies `members` as a set.
fn reply_set(reply: &mut Reply, members: impl ExactSizeIterator<Item = impl AsRef<[u8]>>) {
    reply.set(members.len());
    for m in members {
        reply.bulk(m.as_ref());
    }
}

/// Stores `result` at `dst` (deleting `dst` when empty) and replies its size.
fn store(ctx: &mut Ctx, dst: &[u8], result: Set, event: &'static str) {
    let (db, now) = (ctx.db(), ctx.now);
    let n = result.len();
    let shard = ctx.shard(dst);
    if n == 0 {
        if shard.contains(db, dst, now) {
            shard.remove(db, dst);
            shard.written(db, dst, "del");
        }
    } else {
        shard.put(db, Entry::new(dst, Value::Set(Box::new(result)), 0));
        shard.written(db, dst, event);
    }
    ctx.reply.int(n as i64);
}

fn build(members: impl Iterator<Item = Vec<u8>>, max: usize) -> Set {
    let mut s = Set::new();
    for m in members {
        s.add(&m, max);
    }
    s
}

/// SINTER key [key ...]
fn sinter(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let out = intersect(ctx, &keys_from(args, 1))?;
    reply_set(ctx.reply, out.iter());
    Ok(())
}

/// SINTERSTORE destination key [key ...]
fn sinterstore(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let out = intersect(ctx, &keys_from(args, 2))?;
    let result = build(out.into_iter(), max_intset(ctx));
    store(ctx, arg(args, 1), result, "sinterstore");
    Ok(())
}

/// SINTERCARD numkeys key [key ...] [LIMIT limit]
fn sintercard(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let numkeys = parse_i64(arg(args, 1))
        .filter(|n| *n > 0)
        .ok_or_else(|| CmdError::Other("ERR numkeys should be greater than 0".into()))?;
    let numkeys = usize::try_from(numkeys).unwrap_or(usize::MAX);
    if numkeys > args.len() - 2 {
        return Err(CmdError::Other(
            "ERR Number of keys can't be greater than number of args".into(),
        ));
    }
    let mut limit = 0usize;
    let mut i = 2 + numkeys;
    while i < args.len() {
        match args.get(i + 1) {
            Some(v) if eq(arg(args, i), "limit") => {
                limit = parse_i64(v)
                    .filter(|n| *n >= 0)
                    .and_then(|n| usize::try_from(n).ok())
                    .ok_or_else(|| CmdError::Other("ERR LIMIT can't be negative".into()))?;
                i += 2;
            }
            _ => return Err(CmdError::Syntax),
        }
    }
    let keys: Vec<&[u8]> = args.iter().skip(2).take(numkeys).collect();
    let n = intersect(ctx, &keys)?.len();
    let n = if limit > 0 { n.min(limit) } else { n };
    ctx.reply.int(n as i64);
    Ok(())
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Union,
    Diff,
}

fn union_diff(ctx: &mut Ctx, keys: &[&[u8]], op: Op) -> CmdResult<Set> {
    all_present(ctx, keys)?;
    let max = max_intset(ctx);
    let (db, now) = (ctx.db(), ctx.now);
    let mut result = Set::new();
    for (i, &k) in keys.iter().enumerate() {
        let Some(s) = typed::write::<Set>(ctx.shard(k), db, k, now)? else {
            if op == Op::Diff && i == 0 {
                return Ok(result);
            }
            continue;
        };
        if op == Op::Union || i == 0 {
            for m in s.iter() {
                result.add_member(m, max);
            }
        } else {
            if result.is_empty() {
                break;
            }
            let gone: Vec<Vec<u8>> = if s.len() < result.len() {
                s.iter().map(|m| m.to_vec()).collect()
            } else {
                result
                    .iter()
                    .filter(|m| s.contains_member(*m))
                    .map(|m| m.to_vec())
                    .collect()
            };
            for m in gone {
                result.remove(&m);
            }
        }
    }
    Ok(result)
}

fn reply_whole(reply: &mut Reply, s: &Set) {
    reply.set(s.len());
    for m in s.iter() {
        bulk_member(reply, m);
    }
}

/// SUNION key [key ...]
fn sunion(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let s = union_diff(ctx, &keys_from(args, 1), Op::Union)?;
    reply_whole(ctx.reply, &s);
    Ok(())
}

/// SUNIONSTORE destination key [key ...]
fn sunionstore(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let s = union_diff(ctx, &keys_from(args, 2), Op::Union)?;
    store(ctx, arg(args, 1), s, "sunionstore");
    Ok(())
}

/// SDIFF key [key ...]
fn sdiff(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let s = union_diff(ctx, &keys_from(args, 1), Op::Diff)?;
    reply_whole(ctx.reply, &s);
    Ok(())
}

/// SDIFFSTORE destination key [key ...]
fn sdiffstore(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let s = union_diff(ctx, &keys_from(args, 2), Op::Diff)?;
    store(ctx, arg(args, 1), s, "sdiffstore");
    Ok(())
}

/// SSCAN key cursor [MATCH pattern] [COUNT count]
fn sscan(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let cursor = scan_cursor(arg(args, 2))?;
    let key = arg(args, 1);
    let (db, now) = (ctx.db(), ctx.now);
    let (shard, reply) = ctx.shard_and_reply(key);
    let Some(s) = typed::read::<Set>(shard, db, key, now)? else {
        reply.array(2);
        reply.bulk(b"0");
        reply.array(0);
        return Ok(());
    };
    let (count, pattern) = scan_options(args, 3)?;
    let mut items: Vec<Vec<u8>> = Vec::new();
    let next = s.scan(cursor, count, |m| {
        let v = m.to_vec();
        if pattern.is_none_or(|p| glob_match(p, &v, false)) {
            items.push(v);
        }
    });
    reply.array(2);
    reply.bulk(next.to_string().as_bytes());
    reply.array(items.len());
    for m in &items {
        reply.bulk(m);
    }
    Ok(())
}
