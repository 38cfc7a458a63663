//! Keyspace commands (Redis's "generic" group): DEL UNLINK EXISTS TYPE TOUCH,
//! the EXPIRE and TTL families, PERSIST, KEYS SCAN RANDOMKEY, RENAME(NX),
//! COPY MOVE SWAPDB and OBJECT.

use crate::args::{eq, int, int32};
use crate::cmd;
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::table::{
    Command,
    Keys::{None as NoKeys, Range},
};
use damselfly_core::glob::glob_match;
use damselfly_protocol::Args;
use damselfly_storage::{Entry, Shard, ValueRef};

pub(crate) static COMMANDS: &[Command] = &[
    cmd!(
        "del",
        -2,
        "write",
        Range(1, -1, 1),
        "@keyspace @write @slow",
        "generic",
        "1.0.0",
        del
    ),
    cmd!(
        "unlink",
        -2,
        "write fast",
        Range(1, -1, 1),
        "@keyspace @write @fast",
        "generic",
        "4.0.0",
        del
    ),
    cmd!(
        "exists",
        -2,
        "readonly fast",
        Range(1, -1, 1),
        "@keyspace @read @fast",
        "generic",
        "1.0.0",
        exists
    ),
    cmd!(
        "type",
        2,
        "readonly fast",
        Range(1, 1, 1),
        "@keyspace @read @fast",
        "generic",
        "1.0.0",
        type_
    ),
    cmd!(
        "touch",
        -2,
        "readonly fast",
        Range(1, -1, 1),
        "@keyspace @read @fast",
        "generic",
        "3.2.1",
        touch
    ),
    cmd!(
        "expire",
        -3,
        "write fast",
        Range(1, 1, 1),
        "@keyspace @write @fast",
        "generic",
        "1.0.0",
        expire
    ),
    cmd!(
        "pexpire",
        -3,
        "write fast",
        Range(1, 1, 1),
        "@keyspace @write @fast",
        "generic",
        "2.6.0",
        pexpire
    ),
    cmd!(
        "expireat",
        -3,
        "write fast",
        Range(1, 1, 1),
        "@keyspace @write @fast",
        "generic",
        "1.2.0",
        expireat
    ),
    cmd!(
        "pexpireat",
        -3,
        "write fast",
        Range(1, 1, 1),
        "@keyspace @write @fast",
        "generic",
        "2.6.0",
        pexpireat
    ),
    cmd!(
        "ttl",
        2,
        "readonly fast",
        Range(1, 1, 1),
        "@keyspace @read @fast",
        "generic",
        "1.0.0",
        ttl
    ),
    cmd!(
        "pttl",
        2,
        "readonly fast",
        Range(1, 1, 1),
        "@keyspace @read @fast",
        "generic",
        "2.6.0",
        pttl
    ),
    cmd!(
        "expiretime",
        2,
        "readonly fast",
        Range(1, 1, 1),
        "@keyspace @read @fast",
        "generic",
        "7.0.0",
        expiretime
    ),
    cmd!(
        "pexpiretime",
        2,
        "readonly fast",
        Range(1, 1, 1),
        "@keyspace @read @fast",
        "generic",
        "7.0.0",
        pexpiretime
    ),
    cmd!(
        "persist",
        2,
        "write fast",
        Range(1, 1, 1),
        "@keyspace @write @fast",
        "generic",
        "2.2.0",
        persist
    ),
    cmd!(
        "keys",
        2,
        "readonly",
        NoKeys,
        "@keyspace @read @slow @dangerous",
        "generic",
        "1.0.0",
        keys
    ),
    cmd!(
        "scan",
        -2,
        "readonly",
        NoKeys,
        "@keyspace @read @slow",
        "generic",
        "2.8.0",
        scan
    ),
    cmd!(
        "randomkey",
        1,
        "readonly",
        NoKeys,
        "@keyspace @read @slow",
        "generic",
        "1.0.0",
        randomkey
    ),
    cmd!(
        "rename",
        3,
        "write",
        Range(1, 2, 1),
        "@keyspace @write @slow",
        "generic",
        "1.0.0",
        rename
    ),
    cmd!(
        "renamenx",
        3,
        "write fast",
        Range(1, 2, 1),
        "@keyspace @write @fast",
        "generic",
        "1.0.0",
        renamenx
    ),
    cmd!(
        "copy",
        -3,
        "write denyoom",
        Range(1, 2, 1),
        "@keyspace @write @slow",
        "generic",
        "6.2.0",
        copy
    ),
    cmd!(
        "move",
        3,
        "write fast",
        Range(1, 1, 1),
        "@keyspace @write @fast",
        "generic",
        "1.0.0",
        move_
    ),
    cmd!(
        "swapdb",
        3,
        "write fast all_shards",
        NoKeys,
        "@keyspace @write @fast @dangerous",
        "server",
        "4.0.0",
        swapdb
    ),
    cmd!(
        "object",
        -2,
        "",
        NoKeys,
        "@slow",
        "generic",
        "2.2.3",
        object_container,
        OBJECT_SUBCOMMANDS
    ),
];

static OBJECT_SUBCOMMANDS: &[Command] = &[
    cmd!(
        "encoding",
        3,
        "readonly",
        Range(2, 2, 1),
        "@keyspace @read @slow",
        "generic",
        "2.2.3",
        object_encoding
    ),
    cmd!(
        "freq",
        3,
        "readonly",
        Range(2, 2, 1),
        "@keyspace @read @slow",
        "generic",
        "4.0.0",
        object_freq
    ),
    cmd!(
        "help",
        2,
        "loading stale",
        NoKeys,
        "@keyspace @slow",
        "generic",
        "6.2.0",
        object_help
    ),
    cmd!(
        "idletime",
        3,
        "readonly",
        Range(2, 2, 1),
        "@keyspace @read @slow",
        "generic",
        "2.2.3",
        object_idletime
    ),
    cmd!(
        "refcount",
        3,
        "readonly",
        Range(2, 2, 1),
        "@keyspace @read @slow",
        "generic",
        "2.2.3",
        object_refcount
    ),
];

fn arg<'a>(args: &Args<'a>, i: usize) -> &'a [u8] {
    args.get(i).unwrap_or_default()
}

/// DEL key [key ...] and UNLINK key [key ...]. UNLINK (and DEL with
/// `lazyfree-lazy-user-del yes`) frees big values in the background.
fn del(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let (db, now) = (ctx.db(), ctx.now);
    let unlink = arg(args, 0).eq_ignore_ascii_case(b"unlink");
    let server = ctx.server;
    let mut n = 0;
    for key in args.iter().skip(1) {
        let shard = ctx.shard(key);
        if !shard.contains(db, key, now) {
            continue;
        }
        if let Some(e) = shard.remove(db, key) {
            shard.written(db, key, "del");
            n += 1;
            let lazy = damselfly_storage::lazyfree::worth(&e)
                && (unlink
                    || server.config.get("lazyfree-lazy-user-del").as_deref() == Some("yes"));
            if lazy {
                damselfly_storage::lazyfree::free(e);
            }
        }
    }
    ctx.reply.int(n);
    Ok(())
}

/// EXISTS key [key ...]
fn exists(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let (db, now) = (ctx.db(), ctx.now);
    let mut n = 0;
    for key in args.iter().skip(1) {
        if ctx.shard(key).get_notouch(db, key, now).is_some() {
            n += 1;
        }
    }
    ctx.reply.int(n);
    Ok(())
}

/// TYPE key
fn type_(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let key = arg(args, 1);
    let (db, now) = (ctx.db(), ctx.now);
    let name = match ctx.shard(key).get_notouch(db, key, now) {
        Some(e) => e.value().type_name(),
        None => "none",
    };
    ctx.reply.simple(name.as_bytes());
    Ok(())
}

/// TOUCH key [key ...]
fn touch(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let (db, now) = (ctx.db(), ctx.now);
    let mut n = 0;
    for key in args.iter().skip(1) {
        if ctx.shard(key).get(db, key, now).is_some() {
            n += 1;
        }
    }
    ctx.reply.int(n);
    Ok(())
}

/// The EXPIRE family's conditions.
#[derive(Default, Clone, Copy)]
struct ExpireCond {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
}

fn expire_cond(args: &Args) -> CmdResult<ExpireCond> {
    let mut c = ExpireCond::default();
    for opt in args.iter().skip(3) {
        if eq(opt, "nx") {
            c.nx = true;
        } else if eq(opt, "xx") {
            c.xx = true;
        } else if eq(opt, "gt") {
            c.gt = true;
        } else if eq(opt, "lt") {
            c.lt = true;
        } else {
            return Err(CmdError::UnsupportedOption(opt.to_vec()));
        }
    }
    if c.nx && (c.xx || c.gt || c.lt) {
        return Err(CmdError::ExpireNxConflict);
    }
    if c.gt && c.lt {
        return Err(CmdError::ExpireGtLtConflict);
    }
    Ok(c)
}

/// EXPIRE / PEXPIRE / EXPIREAT / PEXPIREAT key time [NX | XX | GT | LT]
fn expire_generic(
    ctx: &mut Ctx,
    args: &Args,
    seconds: bool,
    absolute: bool,
    name: &'static str,
) -> CmdResult {
    let key = arg(args, 1);
    let cond = expire_cond(args)?;
    let mut when = int(arg(args, 2))?;
    if seconds {
        when = when
            .checked_mul(1000)
            .ok_or(CmdError::InvalidExpire(name))?;
    }
    let now = ctx.now as i64;
    if !absolute {
        when = when.checked_add(now).ok_or(CmdError::InvalidExpire(name))?;
    }
    let (db, now_ms) = (ctx.db(), ctx.now);
    let shard = ctx.shard(key);
    let Some(e) = shard.get_quiet(db, key, now_ms) else {
        ctx.reply.int(0);
        return Ok(());
    };
    let current = (e.expire_at() != 0).then_some(e.expire_at() as i64);
    let refused = (cond.nx && current.is_some())
        || (cond.xx && current.is_none())
        || (cond.gt && current.is_none_or(|t| when <= t))
        || (cond.lt && current.is_some_and(|t| when >= t));
    if refused {
        ctx.reply.int(0);
        return Ok(());
    }
    if when <= now {
        // Already in the past: the key goes now, as Redis does.
        shard.remove(db, key);
        shard.written(db, key, "del");
        crate::repl_master::instead(ctx.server, &[b"DEL", key]);
    } else {
        shard.set_expire(db, key, when as u64);
        shard.written(db, key, "expire");
        // Replicas get the absolute time (Redis 7.0: PEXPIREAT, the
        // condition flags kept).
        if ctx.server.repl.active() {
            let at = when.to_string();
            let mut argv: Vec<&[u8]> = args.iter().collect();
            if name != "pexpireat" {
                argv[0] = b"PEXPIREAT";
            }
            argv[2] = at.as_bytes();
            crate::repl_master::instead(ctx.server, &argv);
        }
    }
    ctx.reply.int(1);
    Ok(())
}

fn expire(ctx: &mut Ctx, args: &Args) -> CmdResult {
    expire_generic(ctx, args, true, false, "expire")
}

fn pexpire(ctx: &mut Ctx, args: &Args) -> CmdResult {
    expire_generic(ctx, args, false, false, "pexpire")
}

fn expireat(ctx: &mut Ctx, args: &Args) -> CmdResult {
    expire_generic(ctx, args, true, true, "expireat")
}

fn pexpireat(ctx: &mut Ctx, args: &Args) -> CmdResult {
    expire_generic(ctx, args, false, true, "pexpireat")
}

/// TTL, PTTL, EXPIRETIME, PEXPIRETIME: -2 for a missing key, -1 for a key
/// without expiry.
fn ttl_generic(ctx: &mut Ctx, args: &Args, ms: bool, absolute: bool) -> CmdResult {
    let key = arg(args, 1);
    let (db, now) = (ctx.db(), ctx.now);
    let at = match ctx.shard(key).get_notouch(db, key, now) {
        None => {
            ctx.reply.int(-2);
            return Ok(());
        }
        Some(e) => e.expire_at(),
    };
    if at == 0 {
        ctx.reply.int(-1);
        return Ok(());
    }
    let v = if absolute { at } else { at.saturating_sub(now) };
    let v = if ms { v } else { (v + 500) / 1000 };
    ctx.reply.int(i64::try_from(v).unwrap_or(i64::MAX));
    Ok(())
}

fn ttl(ctx: &mut Ctx, args: &Args) -> CmdResult {
    ttl_generic(ctx, args, false, false)
}

fn pttl(ctx: &mut Ctx, args: &Args) -> CmdResult {
    ttl_generic(ctx, args, true, false)
}

fn expiretime(ctx: &mut Ctx, args: &Args) -> CmdResult {
    ttl_generic(ctx, args, false, true)
}

fn pexpiretime(ctx: &mut Ctx, args: &Args) -> CmdResult {
    ttl_generic(ctx, args, true, true)
}

/// PERSIST key
fn persist(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let key = arg(args, 1);
    let (db, now) = (ctx.db(), ctx.now);
    let shard = ctx.shard(key);
    let volatile = shard
        .get_quiet(db, key, now)
        .is_some_and(|e| e.expire_at() != 0);
    if volatile {
        shard.set_expire(db, key, 0);
        shard.written(db, key, "persist");
    }
    ctx.reply.int(i64::from(volatile));
    Ok(())
}

/// KEYS pattern: expired keys are left out (not deleted), as Redis does.
fn keys(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let pat = arg(args, 1);
    let all = pat == b"*";
    let (db, now) = (ctx.db(), ctx.now);
    let found: Vec<Vec<Vec<u8>>> = ctx.each_shard(|s| {
        s.dbs[db]
            .table
            .iter()
            .filter(|e| !e.is_expired(now) && (all || glob_match(pat, e.key(), false)))
            .map(|e| e.key().to_vec())
            .collect()
    });
    let n = found.iter().map(Vec::len).sum();
    ctx.reply.array(n);
    for k in found.iter().flatten() {
        ctx.reply.bulk(k);
    }
    Ok(())
}

/// SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]
///
/// The cursor packs the shard index in its low bits and that shard's table
/// cursor above them. Shards are walked in ascending order and each shard's
/// table in reverse-binary order, so a key present for the whole scan is
/// returned at least once whatever resizes happen between calls.
fn scan(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let cursor = crate::args::scan_cursor(arg(args, 1))?;
    let mut count: i64 = 10;
    let mut pattern: Option<&[u8]> = None;
    let mut type_name: Option<&[u8]> = None;
    let mut i = 2;
    while i < args.len() {
        let opt = arg(args, i);
        let has_value = i + 1 < args.len();
        if eq(opt, "count") && has_value {
            count = int(arg(args, i + 1))?;
            if count < 1 {
                return Err(CmdError::Syntax);
            }
        } else if eq(opt, "match") && has_value {
            let p = arg(args, i + 1);
            pattern = (p != b"*").then_some(p);
        } else if eq(opt, "type") && has_value {
            type_name = Some(arg(args, i + 1));
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }

    let (db, now) = (ctx.db(), ctx.now);
    let shards = ctx.server.keyspace.shard_count();
    let bits = shards.trailing_zeros();
    let mut shard = (cursor as usize) & (shards - 1);
    let mut table_cursor = cursor >> bits;
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    let mut budget = count.saturating_mul(10);
    let mut keys: Vec<Vec<u8>> = Vec::new();
    let next = loop {
        let next_table = ctx.with_shard(shard, |s| {
            scan_shard(
                s,
                db,
                now,
                table_cursor,
                count,
                &mut budget,
                pattern,
                type_name,
                &mut keys,
            )
        });
        if next_table != 0 {
            break (next_table << bits) | shard as u64;
        }
        shard += 1;
        table_cursor = 0;
        if shard == shards {
            break 0;
        }
        if keys.len() >= count || budget == 0 {
            break shard as u64;
        }
    };
    ctx.reply.array(2);
    ctx.reply.bulk(next.to_string().as_bytes());
    ctx.reply.array(keys.len());
    for k in &keys {
        ctx.reply.bulk(k);
    }
    Ok(())
}

/// Walks one shard's table from `cursor` until `count` keys are gathered or
/// the bucket budget runs out; returns the next table cursor (0: shard done).
#[allow(clippy::too_many_arguments)]
fn scan_shard(
    s: &mut Shard,
    db: usize,
    now: u64,
    mut cursor: u64,
    count: usize,
    budget: &mut usize,
    pattern: Option<&[u8]>,
    type_name: Option<&[u8]>,
    keys: &mut Vec<Vec<u8>>,
) -> u64 {
    if s.dbs[db].is_empty() {
        return 0;
    }
    let mut expired: Vec<Vec<u8>> = Vec::new();
    loop {
        cursor = s.dbs[db].table.scan_bucket(cursor, |e| {
            if pattern.is_some_and(|p| !glob_match(p, e.key(), false)) {
                return;
            }
            if e.is_expired(now) {
                expired.push(e.key().to_vec());
                return;
            }
            if type_name.is_some_and(|t| !t.eq_ignore_ascii_case(e.value().type_name().as_bytes()))
            {
                return;
            }
            keys.push(e.key().to_vec());
        });
        *budget = budget.saturating_sub(1);
        if cursor == 0 || keys.len() >= count || *budget == 0 {
            break;
        }
    }
    // Expired keys met on the way are deleted, as a lookup would.
    for k in expired {
        s.get_quiet(db, &k, now);
    }
    cursor
}

/// RANDOMKEY: a shard chosen in proportion to its size, then a random key
/// of it; an expired pick is deleted and the draw repeated.
fn randomkey(ctx: &mut Ctx, _args: &Args) -> CmdResult {
    let (db, now) = (ctx.db(), ctx.now);
    // While CLIENT PAUSE holds writes, expired keys cannot be deleted: after
    // this many expired picks one is returned anyway, as Redis does.
    let mut tries = 100;
    let shards = ctx.server.keyspace.shard_count();
    loop {
        tries -= 1;
        // A random shard first: with keys spread by hash, shards hold
        // about as many keys each, and one lock beats reading all 256
        // sizes. A sparse keyspace falls through to the exact pick.
        for _ in 0..8 {
            let shard = rand::random_range(0..shards);
            let found = ctx.with_shard(shard, |s| {
                let e = s.dbs[db].table.random(|n| rand::random_range(0..n))?;
                Some((e.key().to_vec(), e.is_expired(now)))
            });
            match found {
                Some((key, false)) => {
                    ctx.reply.bulk(&key);
                    return Ok(());
                }
                Some((_, true)) => break,
                None => {}
            }
        }
        let sizes = ctx.each_shard(|s| s.dbs[db].len());
        let total: usize = sizes.iter().sum();
        if total == 0 {
            ctx.reply.null();
            return Ok(());
        }
        let mut pick = rand::random_range(0..total);
        let mut shard = 0;
        for (i, n) in sizes.iter().enumerate() {
            if pick < *n {
                shard = i;
                break;
            }
            pick -= n;
        }
        let found = ctx.with_shard(shard, |s| {
            let e = s.dbs[db].table.random(|n| rand::random_range(0..n))?;
            let (key, expired) = (e.key().to_vec(), e.is_expired(now));
            if expired && (tries > 0 || damselfly_storage::expiry_deletes(now)) {
                s.get_quiet(db, &key, now);
                return None;
            }
            Some(key)
        });
        if let Some(key) = found {
            ctx.reply.bulk(&key);
            return Ok(());
        }
    }
}

/// RENAME and RENAMENX: both keys' shards are locked by the key spec, so the
/// move is atomic even across shards.
fn rename_generic(ctx: &mut Ctx, args: &Args, nx: bool) -> CmdResult {
    let (src, dst) = (arg(args, 1), arg(args, 2));
    let (db, now) = (ctx.db(), ctx.now);
    if !ctx.shard(src).contains(db, src, now) {
        return Err(CmdError::NoSuchKey);
    }
    if src == dst {
        if nx {
            ctx.reply.int(0);
        } else {
            ctx.reply.ok();
        }
        return Ok(());
    }
    if ctx.shard(dst).contains(db, dst, now) {
        if nx {
            ctx.reply.int(0);
            return Ok(());
        }
        ctx.shard(dst).remove(db, dst);
    }
    let shard = ctx.shard(src);
    let Some(e) = shard.remove(db, src) else {
        return Err(CmdError::NoSuchKey);
    };
    let moved = e.renamed(dst);
    // Redis's order of events: new (dst), rename_from, rename_to.
    ctx.shard(dst).put(db, moved);
    ctx.shard(src).written(db, src, "rename_from");
    ctx.shard(dst).written(db, dst, "rename_to");
    if nx {
        ctx.reply.int(1);
    } else {
        ctx.reply.ok();
    }
    Ok(())
}

fn rename(ctx: &mut Ctx, args: &Args) -> CmdResult {
    rename_generic(ctx, args, false)
}

fn renamenx(ctx: &mut Ctx, args: &Args) -> CmdResult {
    rename_generic(ctx, args, true)
}

/// A DB index given by a client: out of range is an error.
fn db_index(ctx: &Ctx, id: i32) -> CmdResult<usize> {
    usize::try_from(id)
        .ok()
        .filter(|&i| i < ctx.server.keyspace.dbnum())
        .ok_or(CmdError::DbIndexOutOfRange)
}

/// COPY source destination [DB destination-db] [REPLACE]
fn copy(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let (src, dst) = (arg(args, 1), arg(args, 2));
    let (db, now) = (ctx.db(), ctx.now);
    let mut dst_db = db;
    let mut replace = false;
    let mut i = 3;
    while i < args.len() {
        let opt = arg(args, i);
        if eq(opt, "replace") {
            replace = true;
        } else if eq(opt, "db") && i + 1 < args.len() {
            dst_db = db_index(ctx, int32(arg(args, i + 1))?)?;
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if db == dst_db && src == dst {
        return Err(CmdError::SameObject);
    }
    let Some((value, at)) = ctx
        .shard(src)
        .get(db, src, now)
        .map(|e| (e.to_value(), e.expire_at()))
    else {
        ctx.reply.int(0);
        return Ok(());
    };
    let shard = ctx.shard(dst);
    if shard.contains(dst_db, dst, now) {
        if !replace {
            ctx.reply.int(0);
            return Ok(());
        }
        // Replaced as Redis does it, deleted then added: `new` fires.
        shard.remove(dst_db, dst);
    }
    shard.put(dst_db, Entry::new(dst, value, at));
    shard.written(dst_db, dst, "copy_to");
    ctx.reply.int(1);
    Ok(())
}

/// MOVE key db: both DBs' slices of the key live in the same shard.
fn move_(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let key = arg(args, 1);
    let (db, now) = (ctx.db(), ctx.now);
    let dst_db = db_index(ctx, int32(arg(args, 2))?)?;
    if dst_db == db {
        return Err(CmdError::SameObject);
    }
    let shard = ctx.shard(key);
    if !shard.contains(db, key, now) || shard.contains(dst_db, key, now) {
        ctx.reply.int(0);
        return Ok(());
    }
    let Some(e) = shard.remove(db, key) else {
        ctx.reply.int(0);
        return Ok(());
    };
    shard.put(dst_db, e);
    shard.written(db, key, "move_from");
    shard.written(dst_db, key, "move_to");
    ctx.reply.int(1);
    Ok(())
}

/// SWAPDB index1 index2: every shard is held, so the swap is atomic.
fn swapdb(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let a = int32(arg(args, 1)).map_err(|_| CmdError::InvalidFirstDb)?;
    let b = int32(arg(args, 2)).map_err(|_| CmdError::InvalidSecondDb)?;
    let (a, b) = (db_index(ctx, a)?, db_index(ctx, b)?);
    let mut first = true;
    let now = ctx.now;
    for shard in ctx.locked.iter_mut() {
        if a != b {
            shard.touch_watched_db(a, Some(b), now);
            shard.touch_watched_db(b, Some(a), now);
        }
        shard.swap_dbs(a, b);
        if first {
            // One change for the whole swap, as Redis counts it.
            shard.stats.dirty += 1;
            first = false;
        }
    }
    ctx.reply.ok();
    Ok(())
}

/// OBJECT without a subcommand fails on arity before reaching here.
fn object_container(_ctx: &mut Ctx, _args: &Args) -> CmdResult {
    Err(CmdError::WrongArity("object".into()))
}

/// Runs `f` on the key of OBJECT's subcommand; a missing key replies null.
fn object_lookup(
    ctx: &mut Ctx,
    args: &Args,
    f: impl FnOnce(&Entry) -> CmdResult<i64>,
) -> CmdResult {
    let key = arg(args, 2);
    let (db, now) = (ctx.db(), ctx.now);
    let v = match ctx.shard(key).get_notouch_nonotify(db, key, now) {
        None => None,
        Some(e) => Some(f(e)?),
    };
    match v {
        None => ctx.reply.null(),
        Some(n) => ctx.reply.int(n),
    }
    Ok(())
}

fn lfu_policy(ctx: &Ctx) -> bool {
    ctx.server
        .config
        .get("maxmemory-policy")
        .is_some_and(|p| p.contains("lfu"))
}

/// OBJECT ENCODING key
fn object_encoding(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let key = arg(args, 2);
    let (db, now) = (ctx.db(), ctx.now);
    match ctx.shard(key).get_notouch_nonotify(db, key, now) {
        None => ctx.reply.null(),
        Some(e) => {
            let enc = e.value().encoding();
            ctx.reply.bulk(enc.as_bytes());
        }
    }
    Ok(())
}

/// OBJECT FREQ key: the key's LFU counter, decayed to now.
fn object_freq(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let lfu = lfu_policy(ctx);
    object_lookup(ctx, args, |e| {
        if lfu {
            Ok(i64::from(damselfly_storage::evict::lfu_decayed(e.lfu())))
        } else {
            Err(CmdError::LfuNotSelected)
        }
    })
}

/// OBJECT IDLETIME key
fn object_idletime(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let lfu = lfu_policy(ctx);
    let now = damselfly_storage::clock_secs();
    object_lookup(ctx, args, |e| {
        if lfu {
            Err(CmdError::LfuSelected)
        } else {
            Ok(i64::from(e.idle_secs(now)))
        }
    })
}

/// OBJECT REFCOUNT key: Redis shares the integers 0..9999 (refcount
/// INT_MAX) unless an LRU/LFU maxmemory policy is in force.
fn object_refcount(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let shared_ok = {
        let policy = ctx
            .server
            .config
            .get("maxmemory-policy")
            .unwrap_or_default();
        let maxmemory = ctx.server.config.get("maxmemory").unwrap_or_default();
        maxmemory.is_empty()
            || maxmemory == "0"
            || !(policy.contains("lru") || policy.contains("lfu"))
    };
    object_lookup(ctx, args, |e| {
        Ok(match e.value() {
            ValueRef::Int(n) if shared_ok && (0..10000).contains(&n) => i64::from(i32::MAX),
            _ => 1,
        })
    })
}

/// OBJECT HELP
fn object_help(ctx: &mut Ctx, _args: &Args) -> CmdResult {
    let lines = [
        "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "ENCODING <key>",
        "    Return the kind of internal representation used in order to store the value",
        "    associated with a <key>.",
        "FREQ <key>",
        "    Return the access frequency index of the <key>. The returned integer is",
        "    proportional to the logarithm of the recent access frequency of the key.",
        "IDLETIME <key>",
        "    Return the idle time of the <key>, that is the approximated number of",
        "    seconds elapsed since the last access to the key.",
        "REFCOUNT <key>",
        "    Return the number of references of the value associated with the specified",
        "    <key>.",
        "HELP",
        "    Prints this help.",
    ];
    ctx.reply.array(lines.len());
    for l in lines {
        ctx.reply.simple(l.as_bytes());
    }
    Ok(())
}

#[cfg(test)]
mod tests {

    #[test]
    fn cursors_parse_like_strtoul() {
        assert_eq!(crate::args::scan_cursor(b""), Ok(0));
        assert_eq!(crate::args::scan_cursor(b"0"), Ok(0));
        assert_eq!(crate::args::scan_cursor(b"+5"), Ok(5));
        assert_eq!(crate::args::scan_cursor(b"-1"), Ok(u64::MAX));
        assert_eq!(
            crate::args::scan_cursor(b"18446744073709551615"),
            Ok(u64::MAX)
        );
        assert!(crate::args::scan_cursor(b"18446744073709551616").is_err());
        assert!(crate::args::scan_cursor(b" 5").is_err());
        assert!(crate::args::scan_cursor(b"-").is_err());
        assert!(crate::args::scan_cursor(b"1.5").is_err());
        assert!(crate::args::scan_cursor(b"5 ").is_err());
    }
}
