//! HyperLogLog commands: PFADD, PFCOUNT, PFMERGE, PFDEBUG and PFSELFTEST.
//! An HLL is a plain string in Redis's byte format (`damselfly_core::hll`),
//! so values move between Redis and Damselfly with GET and SET.

use crate::cmd;
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::table::{Command, Keys::Range};
use damselfly_core::hll::{self, REGISTERS};
use damselfly_protocol::Args;
use damselfly_storage::{Entry, Value, ValueRef};
use std::sync::atomic::Ordering::Relaxed;

pub(crate) static COMMANDS: &[Command] = &[
    cmd!(
        "pfadd",
        -2,
        "write denyoom fast",
        Range(1, 1, 1),
        "@write @hyperloglog @fast",
        "hyperloglog",
        "2.8.9",
        pfadd
    ),
    cmd!(
        "pfcount",
        -2,
        "readonly may_replicate",
        Range(1, -1, 1),
        "@read @hyperloglog @slow",
        "hyperloglog",
        "2.8.9",
        pfcount
    ),
    cmd!(
        "pfmerge",
        -2,
        "write denyoom",
        Range(1, -1, 1),
        "@write @hyperloglog @slow",
        "hyperloglog",
        "2.8.9",
        pfmerge
    ),
    cmd!(
        "pfdebug",
        3,
        "write denyoom admin",
        Range(2, 2, 1),
        "@write @hyperloglog @admin @slow @dangerous",
        "hyperloglog",
        "2.8.9",
        pfdebug
    ),
    cmd!(
        "pfselftest",
        1,
        "admin",
        Range(0, 0, 0),
        "@hyperloglog @admin @slow @dangerous",
        "hyperloglog",
        "2.8.9",
        pfselftest
    ),
];

fn arg<'a>(args: &Args<'a>, i: usize) -> &'a [u8] {
    args.get(i).unwrap_or_default()
}

fn sparse_max(ctx: &Ctx) -> usize {
    usize::try_from(ctx.server.config.hll_sparse_max_bytes.load(Relaxed)).unwrap_or(usize::MAX)
}

/// Redis's isHLLObjectOrReply: another type is WRONGTYPE; a string that is
/// an integer, too short, without the magic, of unknown encoding or a dense
/// value of the wrong length is "not a valid HyperLogLog".
fn check(v: ValueRef<'_>) -> CmdResult {
    match v {
        ValueRef::Str(_) | ValueRef::Raw(_) => {
            hll::check(&v.string_bytes()).map_err(|_| CmdError::HllNotHll)
        }
        ValueRef::Int(_) => Err(CmdError::HllNotHll),
        _ => Err(CmdError::WrongType),
    }
}

/// The HLL at `key` as an editable buffer (checked), or None if absent.
fn hll_mut<'a>(ctx: &'a mut Ctx, key: &[u8]) -> CmdResult<Option<&'a mut Vec<u8>>> {
    let (db, now) = (ctx.db(), ctx.now);
    match ctx.shard(key).get_quiet(db, key, now) {
        None => Ok(None),
        Some(e) => {
            check(e.value())?;
            e.raw_mut(0).map(Some).ok_or(CmdError::HllNotHll)
        }
    }
}

/// PFADD key [element [element ...]]
fn pfadd(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let key = arg(args, 1);
    let max = sparse_max(ctx);
    let db = ctx.db();
    let mut updated = 0u64;
    if hll_mut(ctx, key)?.is_none() {
        let v = Value::Raw(Box::new(hll::new_sparse()));
        ctx.shard(key).put(db, Entry::new(key, v, 0));
        updated += 1;
    }
    let Some(s) = hll_mut(ctx, key)? else {
        return Err(CmdError::OutOfMemory);
    };
    for ele in args.iter().skip(2) {
        // Registers changed before a corrupt value is found stay changed,
        // unreported, as in Redis.
        if hll::add(s, ele, max).map_err(|_| CmdError::HllCorrupt)? {
            updated += 1;
        }
    }
    if updated > 0 {
        hll::invalidate(s);
        ctx.shard(key).written(db, key, "pfadd");
    }
    ctx.reply.int(i64::from(updated > 0));
    Ok(())
}

/// PFCOUNT key [key ...]
fn pfcount(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let (db, now) = (ctx.db(), ctx.now);
    if args.len() > 2 {
        let mut max = Box::new([0u8; REGISTERS]);
        for key in args.iter().skip(1) {
            let Some(e) = ctx.shard(key).get(db, key, now) else {
                continue;
            };
            check(e.value())?;
            hll::merge_into(&mut max, &e.value().string_bytes())
                .map_err(|_| CmdError::HllCorrupt)?;
        }
        ctx.reply.int(hll::count_registers(&max) as i64);
        return Ok(());
    }
    let key = arg(args, 1);
    let shard = ctx.shard(key);
    let Some(e) = shard.get(db, key, now) else {
        ctx.reply.int(0);
        return Ok(());
    };
    check(e.value())?;
    if let Some(card) = hll::cached(&e.value().string_bytes()) {
        ctx.reply.int(card as i64);
        return Ok(());
    }
    let card = hll::count(&e.value().string_bytes()).map_err(|_| CmdError::HllCorrupt)?;
    if let Some(s) = e.raw_mut(0) {
        hll::set_cached(s, card);
    }
    // Caching changes the value: WATCH sees it, as in Redis (which sends no
    // keyspace event for it).
    shard.written(db, key, "pfcount");
    ctx.reply.int(card as i64);
    Ok(())
}

/// PFMERGE destkey [sourcekey [sourcekey ...]]
fn pfmerge(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let (db, now) = (ctx.db(), ctx.now);
    let limit = sparse_max(ctx);
    let mut max = Box::new([0u8; REGISTERS]);
    let mut dense = false;
    // The destination is a source too.
    for key in args.iter().skip(1) {
        let Some(e) = ctx.shard(key).get(db, key, now) else {
            continue;
        };
        check(e.value())?;
        let s = e.value().string_bytes();
        dense |= !hll::is_sparse(&s);
        hll::merge_into(&mut max, &s).map_err(|_| CmdError::HllCorrupt)?;
    }
    let dest = arg(args, 1);
    if hll_mut(ctx, dest)?.is_none() {
        let v = Value::Raw(Box::new(hll::new_sparse()));
        ctx.shard(dest).put(db, Entry::new(dest, v, 0));
    }
    let Some(s) = hll_mut(ctx, dest)? else {
        return Err(CmdError::OutOfMemory);
    };
    if dense {
        hll::to_dense(s).map_err(|_| CmdError::HllCorrupt)?;
    }
    for (i, &v) in max.iter().enumerate() {
        if v != 0 {
            hll::set_register(s, i, v, limit).map_err(|_| CmdError::HllCorrupt)?;
        }
    }
    hll::invalidate(s);
    ctx.shard(dest).written(db, dest, "pfadd");
    ctx.reply.ok();
    Ok(())
}

/// PFDEBUG subcommand key
fn pfdebug(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let sub = arg(args, 1);
    let key = arg(args, 2);
    let Some(s) = hll_mut(ctx, key)? else {
        return Err(CmdError::PfdebugNoKey);
    };
    let lower = sub.to_ascii_lowercase();
    match lower.as_slice() {
        b"getreg" => {
            let converted = hll::to_dense(s).map_err(|_| CmdError::HllCorrupt)?;
            let regs = hll::registers(s).map_err(|_| CmdError::HllCorrupt)?;
            if converted {
                ctx.shard(key).stats.dirty += 1;
            }
            ctx.reply.array(REGISTERS);
            for r in regs.iter() {
                ctx.reply.int(i64::from(*r));
            }
        }
        b"decode" => {
            if !hll::is_sparse(s) {
                return Err(CmdError::PfdebugNotSparse);
            }
            let text = hll::decode_sparse(s);
            ctx.reply.bulk(text.as_bytes());
        }
        b"encoding" => {
            let name: &[u8] = if hll::is_sparse(s) {
                b"sparse"
            } else {
                b"dense"
            };
            ctx.reply.simple(name);
        }
        b"todense" => {
            let converted = hll::to_dense(s).map_err(|_| CmdError::HllCorrupt)?;
            if converted {
                ctx.shard(key).stats.dirty += 1;
            }
            ctx.reply.int(i64::from(converted));
        }
        _ => return Err(CmdError::PfdebugUnknown(sub.to_vec())),
    }
    Ok(())
}

/// PFSELFTEST
fn pfselftest(ctx: &mut Ctx, _args: &Args) -> CmdResult {
    hll::self_test().map_err(CmdError::HllSelfTest)?;
    ctx.reply.ok();
    Ok(())
}
