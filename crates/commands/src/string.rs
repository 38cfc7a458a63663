//! String commands.

use crate::args::{eq, int};
use crate::cmd;
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::table::{Command, Keys::Range};
use damselfly_protocol::Args;
use damselfly_storage::{Entry, Value, ValueRef};

pub(crate) static COMMANDS: &[Command] = &[
    cmd!(
        "get",
        2,
        "readonly fast",
        Range(1, 1, 1),
        "@read @string @fast",
        "string",
        "1.0.0",
        get
    ),
    cmd!(
        "set",
        -3,
        "write denyoom",
        Range(1, 1, 1),
        "@write @string @slow",
        "string",
        "1.0.0",
        set
    ),
    cmd!(
        "setnx",
        3,
        "write denyoom fast",
        Range(1, 1, 1),
        "@write @string @fast",
        "string",
        "1.0.0",
        setnx
    ),
    cmd!(
        "setex",
        4,
        "write denyoom",
        Range(1, 1, 1),
        "@write @string @slow",
        "string",
        "2.0.0",
        setex
    ),
    cmd!(
        "psetex",
        4,
        "write denyoom",
        Range(1, 1, 1),
        "@write @string @slow",
        "string",
        "2.6.0",
        psetex
    ),
    cmd!(
        "getset",
        3,
        "write denyoom fast",
        Range(1, 1, 1),
        "@write @string @fast",
        "string",
        "1.0.0",
        getset
    ),
    cmd!(
        "getex",
        -2,
        "write fast",
        Range(1, 1, 1),
        "@write @string @fast",
        "string",
        "6.2.0",
        getex
    ),
    cmd!(
        "getdel",
        2,
        "write fast",
        Range(1, 1, 1),
        "@write @string @fast",
        "string",
        "6.2.0",
        getdel
    ),
    cmd!(
        "mget",
        -2,
        "readonly fast",
        Range(1, -1, 1),
        "@read @string @fast",
        "string",
        "1.0.0",
        mget
    ),
    cmd!(
        "mset",
        -3,
        "write denyoom",
        Range(1, -1, 2),
        "@write @string @slow",
        "string",
        "1.0.1",
        mset
    ),
    cmd!(
        "msetnx",
        -3,
        "write denyoom",
        Range(1, -1, 2),
        "@write @string @slow",
        "string",
        "1.0.1",
        msetnx
    ),
    cmd!(
        "append",
        3,
        "write denyoom fast",
        Range(1, 1, 1),
        "@write @string @fast",
        "string",
        "2.0.0",
        append
    ),
    cmd!(
        "strlen",
        2,
        "readonly fast",
        Range(1, 1, 1),
        "@read @string @fast",
        "string",
        "2.2.0",
        strlen
    ),
    cmd!(
        "getrange",
        4,
        "readonly",
        Range(1, 1, 1),
        "@read @string @slow",
        "string",
        "2.4.0",
        getrange
    ),
    cmd!(
        "substr",
        4,
        "readonly",
        Range(1, 1, 1),
        "@read @string @slow",
        "string",
        "1.0.0",
        getrange
    ),
    cmd!(
        "setrange",
        4,
        "write denyoom",
        Range(1, 1, 1),
        "@write @string @slow",
        "string",
        "2.2.0",
        setrange
    ),
    cmd!(
        "incr",
        2,
        "write denyoom fast",
        Range(1, 1, 1),
        "@write @string @fast",
        "string",
        "1.0.0",
        incr
    ),
    cmd!(
        "decr",
        2,
        "write denyoom fast",
        Range(1, 1, 1),
        "@write @string @fast",
        "string",
        "1.0.0",
        decr
    ),
    cmd!(
        "incrby",
        3,
        "write denyoom fast",
        Range(1, 1, 1),
        "@write @string @fast",
        "string",
        "1.0.0",
        incrby
    ),
    cmd!(
        "decrby",
        3,
        "write denyoom fast",
        Range(1, 1, 1),
        "@write @string @fast",
        "string",
        "1.0.0",
        decrby
    ),
    cmd!(
        "incrbyfloat",
        3,
        "write denyoom fast",
        Range(1, 1, 1),
        "@write @string @fast",
        "string",
        "2.6.0",
        incrbyfloat
    ),
    cmd!(
        "lcs",
        -3,
        "readonly",
        Range(1, 2, 1),
        "@read @string @slow",
        "string",
        "7.0.0",
        lcs
    ),
];

/// When a SET-family command makes the key expire.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expiry {
    Keep,
    Clear,
    At(u64),
}

/// Turns a relative or absolute expire argument into Unix ms, with Redis's
/// checks: non-integers fail, non-positive and overflowing values are an
/// invalid expire time for `cmd`.
pub(crate) fn expire_at(
    arg: &[u8],
    unit_ms: i64,
    absolute: bool,
    now: u64,
    cmd: &'static str,
) -> CmdResult<u64> {
    let v = int(arg)?;
    if v <= 0 || (unit_ms == 1000 && v > i64::MAX / 1000) {
        return Err(CmdError::InvalidExpire(cmd));
    }
    let ms = v * unit_ms;
    if absolute {
        return Ok(ms as u64);
    }
    if ms > i64::MAX - now as i64 {
        return Err(CmdError::InvalidExpire(cmd));
    }
    Ok(ms as u64 + now)
}

/// Reads a string key: None when absent, WRONGTYPE when not a string.
pub(crate) fn read_string(ctx: &mut Ctx, key: &[u8]) -> CmdResult<Option<Value>> {
    let (db, now) = (ctx.db(), ctx.now);
    match ctx.shard(key).get(db, key, now) {
        None => Ok(None),
        Some(e) if e.value().is_string() => Ok(Some(e.to_value())),
        Some(_) => Err(CmdError::WrongType),
    }
}

/// Replies a value already known to be a string.
pub(crate) fn reply_value(ctx: &mut Ctx, v: &Value) {
    match v {
        Value::Int(n) => ctx.reply.bulk_int(*n),
        other => ctx.reply.bulk(&other.string_bytes()),
    }
}

/// An option word compared as Redis compares it: as a C string, so the
/// argument ends at its first NUL byte, case-insensitively.
fn opt_is(arg: &[u8], word: &str) -> bool {
    let end = arg.iter().position(|&c| c == 0).unwrap_or(arg.len());
    eq(&arg[..end], word)
}

/// A stored string's length without rendering integers.
fn value_len(v: ValueRef<'_>) -> usize {
    match v {
        ValueRef::Int(n) => {
            let digits = n
                .unsigned_abs()
                .checked_ilog10()
                .map_or(1, |d| d as usize + 1);
            digits + usize::from(n < 0)
        }
        ValueRef::Str(s) => s.len(),
        ValueRef::Raw(v) => v.len(),
        _ => 0,
    }
}

/// Fails when a string of `len` bytes grown by `extra` bytes would exceed
/// proto-max-bulk-len.
fn check_string_length(ctx: &Ctx, len: u64, extra: u64) -> CmdResult {
    let max = ctx
        .server
        .config
        .proto_max_bulk_len
        .load(std::sync::atomic::Ordering::Relaxed);
    match len.checked_add(extra) {
        Some(total) if total <= max => Ok(()),
        _ => Err(CmdError::StringTooLong),
    }
}

/// GET key
fn get(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let key = args.get(1).unwrap_or_default();
    get_generic(ctx, key).map(|_| ())
}

/// Replies with the string at `key` (or null), as GET does; reports whether
/// the key was there.
fn get_generic(ctx: &mut Ctx, key: &[u8]) -> CmdResult<bool> {
    let (db, now) = (ctx.db(), ctx.now);
    let (shard, reply) = ctx.shard_and_reply(key);
    match shard.get(db, key, now) {
        None => {
            reply.null();
            Ok(false)
        }
        Some(e) => match e.value() {
            ValueRef::Int(n) => {
                reply.bulk_int(n);
                Ok(true)
            }
            ValueRef::Str(s) => {
                reply.bulk(s);
                Ok(true)
            }
            ValueRef::Raw(v) => {
                reply.bulk(v);
                Ok(true)
            }
            _ => Err(CmdError::WrongType),
        },
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Cond {
    Always,
    Nx,
    Xx,
}

/// Which expire option was given, with its unit and whether it is absolute.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ExpireKind {
    Ex,
    Px,
    ExAt,
    PxAt,
}

impl ExpireKind {
    fn unit_ms(self) -> i64 {
        match self {
            ExpireKind::Ex | ExpireKind::ExAt => 1000,
            ExpireKind::Px | ExpireKind::PxAt => 1,
        }
    }

    fn absolute(self) -> bool {
        matches!(self, ExpireKind::ExAt | ExpireKind::PxAt)
    }
}

/// The options of SET (and, minus NX/XX/GET/KEEPTTL plus PERSIST, GETEX).
struct ExtOpts<'a> {
    cond: Cond,
    get: bool,
    keepttl: bool,
    persist: bool,
    expire: Option<(ExpireKind, &'a [u8])>,
}

/// Parses SET's or GETEX's options from `args[from..]`. An option that
/// conflicts with one already given is a syntax error; repeating the same
/// option is allowed (the last expire value wins).
fn parse_ext<'a>(args: &Args<'a>, from: usize, for_set: bool) -> CmdResult<ExtOpts<'a>> {
    let mut o = ExtOpts {
        cond: Cond::Always,
        get: false,
        keepttl: false,
        persist: false,
        expire: None,
    };
    let mut i = from;
    while i < args.len() {
        let opt = args.get(i).unwrap_or_default();
        let next = args.get(i + 1);
        let expire_kind = if opt_is(opt, "ex") {
            Some(ExpireKind::Ex)
        } else if opt_is(opt, "px") {
            Some(ExpireKind::Px)
        } else if opt_is(opt, "exat") {
            Some(ExpireKind::ExAt)
        } else if opt_is(opt, "pxat") {
            Some(ExpireKind::PxAt)
        } else {
            None
        };
        if for_set && opt_is(opt, "nx") && o.cond != Cond::Xx {
            o.cond = Cond::Nx;
        } else if for_set && opt_is(opt, "xx") && o.cond != Cond::Nx {
            o.cond = Cond::Xx;
        } else if for_set && opt_is(opt, "get") {
            o.get = true;
        } else if for_set && opt_is(opt, "keepttl") && !o.persist && o.expire.is_none() {
            o.keepttl = true;
        } else if !for_set && opt_is(opt, "persist") && !o.keepttl && o.expire.is_none() {
            o.persist = true;
        } else if let (Some(kind), Some(n)) = (expire_kind, next) {
            let compatible = match o.expire {
                None => true,
                Some((k, _)) => k == kind,
            };
            if o.keepttl || o.persist || !compatible {
                return Err(CmdError::Syntax);
            }
            o.expire = Some((kind, n));
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    Ok(o)
}

/// SET key value [NX | XX] [GET] [EX s | PX ms | EXAT ts | PXAT ms-ts | KEEPTTL]
fn set(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let key = args.get(1).unwrap_or_default();
    let value = args.get(2).unwrap_or_default();
    let o = parse_ext(args, 3, true)?;
    let pxat_given = o
        .expire
        .is_some_and(|(kind, _)| kind.absolute() && kind.unit_ms() == 1);
    if o.get && (o.expire.is_none() || pxat_given) && ctx.server.repl.active() {
        // Replicas get the SET without its GET (Redis 7.0).
        let argv: Vec<&[u8]> = args
            .iter()
            .enumerate()
            .filter(|(i, a)| *i < 3 || !crate::args::eq(a, "get"))
            .map(|(_, a)| a)
            .collect();
        crate::repl_master::instead(ctx.server, &argv);
    }
    let expiry = match o.expire {
        Some((kind, n)) => {
            let at = expire_at(n, kind.unit_ms(), kind.absolute(), ctx.now, "set")?;
            // Replicas get SET key value PXAT ms unless PXAT was given
            // (Redis 7.0's rewrite; used only if the SET happens).
            if !pxat_given {
                set_pxat_instead(ctx, key, value, at);
            }
            Expiry::At(at)
        }
        None if o.keepttl => Expiry::Keep,
        None => Expiry::Clear,
    };
    set_generic(ctx, key, value, o.cond, expiry, o.get, SetReply::Ok)
}

/// What SET-family commands reply when they do not return the old value.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SetReply {
    /// `+OK` when set, null when the condition failed (SET, SETEX, PSETEX).
    Ok,
    /// `:1` when set, `:0` when not (SETNX).
    Int,
}

/// The shared body of SET, SETNX, SETEX, PSETEX and GETSET.
fn set_generic(
    ctx: &mut Ctx,
    key: &[u8],
    value: &[u8],
    cond: Cond,
    expiry: Expiry,
    want_get: bool,
    replies: SetReply,
) -> CmdResult {
    if want_get {
        // The old value is read (and replied) as GET would, type check first.
        if let Some(v) = read_string(ctx, key)? {
            reply_value(ctx, &v);
        } else {
            ctx.reply.null();
        }
    }
    let (db, now) = (ctx.db(), ctx.now);
    let (shard, reply) = ctx.shard_and_reply(key);
    let old_expire = shard.get_quiet(db, key, now).map(|e| e.expire_at());
    let proceed = match cond {
        Cond::Always => true,
        Cond::Nx => old_expire.is_none(),
        Cond::Xx => old_expire.is_some(),
    };
    if proceed {
        let at = match expiry {
            Expiry::Keep => old_expire.unwrap_or(0),
            Expiry::Clear => 0,
            Expiry::At(at) => at,
        };
        shard.put_string(db, key, value, at);
        shard.written(db, key, "set");
        if let Expiry::At(_) = expiry {
            shard.notify(db, key, "expire");
        }
    }
    if !want_get {
        match (replies, proceed) {
            (SetReply::Ok, true) => reply.ok(),
            (SetReply::Ok, false) => reply.null(),
            (SetReply::Int, p) => reply.int(i64::from(p)),
        }
    }
    Ok(())
}

/// SETNX key value
fn setnx(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let key = args.get(1).unwrap_or_default();
    let value = args.get(2).unwrap_or_default();
    set_generic(
        ctx,
        key,
        value,
        Cond::Nx,
        Expiry::Clear,
        false,
        SetReply::Int,
    )
}

/// SETEX key seconds value
fn setex(ctx: &mut Ctx, args: &Args) -> CmdResult {
    set_with_ttl(ctx, args, 1000, "setex")
}

/// PSETEX key milliseconds value
fn psetex(ctx: &mut Ctx, args: &Args) -> CmdResult {
    set_with_ttl(ctx, args, 1, "psetex")
}

fn set_with_ttl(ctx: &mut Ctx, args: &Args, unit_ms: i64, name: &'static str) -> CmdResult {
    let key = args.get(1).unwrap_or_default();
    let ttl = args.get(2).unwrap_or_default();
    let value = args.get(3).unwrap_or_default();
    let at = expire_at(ttl, unit_ms, false, ctx.now, name)?;
    set_pxat_instead(ctx, key, value, at);
    set_generic(
        ctx,
        key,
        value,
        Cond::Always,
        Expiry::At(at),
        false,
        SetReply::Ok,
    )
}

fn set_pxat_instead(ctx: &Ctx, key: &[u8], value: &[u8], at: u64) {
    if ctx.server.repl.active() {
        let at = at.to_string();
        crate::repl_master::instead(ctx.server, &[b"SET", key, value, b"PXAT", at.as_bytes()]);
    }
}

/// GETSET key value
fn getset(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let key = args.get(1).unwrap_or_default();
    let value = args.get(2).unwrap_or_default();
    if ctx.server.repl.active() {
        // Replicas get a SET (Redis 7.0).
        crate::repl_master::instead(ctx.server, &[&b"SET"[..], key, value]);
    }
    set_generic(
        ctx,
        key,
        value,
        Cond::Always,
        Expiry::Clear,
        true,
        SetReply::Ok,
    )
}

/// GETEX key [EX s | PX ms | EXAT ts | PXAT ms-ts | PERSIST]
fn getex(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let key = args.get(1).unwrap_or_default();
    let o = parse_ext(args, 2, false)?;
    let Some(v) = read_string(ctx, key)? else {
        ctx.reply.null();
        return Ok(());
    };
    let at = match o.expire {
        Some((kind, n)) => Some((
            expire_at(n, kind.unit_ms(), kind.absolute(), ctx.now, "getex")?,
            kind.absolute(),
        )),
        None => None,
    };
    reply_value(ctx, &v);
    let (db, now) = (ctx.db(), ctx.now);
    let shard = ctx.shard(key);
    match at {
        Some((at, true)) if at <= now => {
            // An absolute time already past deletes the key, as Redis does.
            shard.remove(db, key);
            shard.written(db, key, "del");
            crate::repl_master::instead(ctx.server, &[b"DEL", key]);
        }
        Some((at, _)) => {
            shard.set_expire(db, key, at);
            shard.written(db, key, "expire");
            let at = at.to_string();
            crate::repl_master::instead(ctx.server, &[b"PEXPIREAT", key, at.as_bytes()]);
        }
        None if o.persist => {
            let had = shard.get_quiet(db, key, now).map_or(0, |e| e.expire_at());
            if had != 0 {
                shard.set_expire(db, key, 0);
                shard.written(db, key, "persist");
                crate::repl_master::instead(ctx.server, &[b"PERSIST", key]);
            }
        }
        None => {}
    }
    Ok(())
}

/// GETDEL key
fn getdel(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let key = args.get(1).unwrap_or_default();
    let Some(v) = read_string(ctx, key)? else {
        ctx.reply.null();
        return Ok(());
    };
    reply_value(ctx, &v);
    let db = ctx.db();
    let shard = ctx.shard(key);
    if shard.remove(db, key).is_some() {
        shard.written(db, key, "del");
    }
    Ok(())
}

/// MGET key [key ...]
fn mget(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let (db, now) = (ctx.db(), ctx.now);
    ctx.reply.array(args.len().saturating_sub(1));
    for key in args.iter().skip(1) {
        let (shard, reply) = ctx.shard_and_reply(key);
        match shard.get(db, key, now).map(|e| e.value()) {
            Some(ValueRef::Int(n)) => reply.bulk_int(n),
            Some(ValueRef::Str(s)) => reply.bulk(s),
            Some(ValueRef::Raw(v)) => reply.bulk(v),
            _ => reply.null(),
        }
    }
    Ok(())
}

/// MSET key value [key value ...]
fn mset(ctx: &mut Ctx, args: &Args) -> CmdResult {
    if args.len().is_multiple_of(2) {
        return Err(CmdError::WrongArity("mset".into()));
    }
    mset_all(ctx, args);
    ctx.reply.ok();
    Ok(())
}

fn mset_all(ctx: &mut Ctx, args: &Args) {
    let db = ctx.db();
    let mut i = 1;
    while let (Some(key), Some(value)) = (args.get(i), args.get(i + 1)) {
        let shard = ctx.shard(key);
        shard.put_string(db, key, value, 0);
        shard.written(db, key, "set");
        i += 2;
    }
}

/// MSETNX key value [key value ...]
fn msetnx(ctx: &mut Ctx, args: &Args) -> CmdResult {
    if args.len().is_multiple_of(2) {
        return Err(CmdError::WrongArity("msetnx".into()));
    }
    let (db, now) = (ctx.db(), ctx.now);
    let mut i = 1;
    while let Some(key) = args.get(i) {
        if ctx.shard(key).contains(db, key, now) {
            ctx.reply.int(0);
            return Ok(());
        }
        i += 2;
    }
    mset_all(ctx, args);
    ctx.reply.int(1);
    Ok(())
}

/// APPEND key value
fn append(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let key = args.get(1).unwrap_or_default();
    let extra = args.get(2).unwrap_or_default();
    let (db, now) = (ctx.db(), ctx.now);
    let old_len = match ctx.shard(key).get_quiet(db, key, now) {
        None => None,
        Some(e) if e.value().is_string() => Some(value_len(e.value())),
        Some(_) => return Err(CmdError::WrongType),
    };
    let total = match old_len {
        None => {
            let shard = ctx.shard(key);
            shard.put_string(db, key, extra, 0);
            extra.len()
        }
        Some(len) => {
            check_string_length(ctx, len as u64, extra.len() as u64)?;
            let shard = ctx.shard(key);
            if let Some(e) = shard.get_quiet(db, key, now) {
                let buf = e.raw_mut(len + extra.len()).ok_or(CmdError::OutOfMemory)?;
                buf[len..].copy_from_slice(extra);
            }
            len + extra.len()
        }
    };
    ctx.shard(key).written(db, key, "append");
    ctx.reply.int(total as i64);
    Ok(())
}

/// STRLEN key
fn strlen(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let key = args.get(1).unwrap_or_default();
    let (db, now) = (ctx.db(), ctx.now);
    let (shard, reply) = ctx.shard_and_reply(key);
    match shard.get(db, key, now) {
        None => reply.int(0),
        Some(e) if e.value().is_string() => reply.int(value_len(e.value()) as i64),
        Some(_) => return Err(CmdError::WrongType),
    }
    Ok(())
}

/// The byte range GETRANGE returns from a string of `len` bytes, or None
/// for an empty result. Negative indexes count from the end; the arithmetic
/// wraps as Redis's unsigned C arithmetic does.
fn getrange_bounds(len: usize, start: i64, end: i64) -> Option<(usize, usize)> {
    if start < 0 && end < 0 && start > end {
        return None;
    }
    let len_i = len as i64;
    let mut start = if start < 0 {
        len_i.wrapping_add(start)
    } else {
        start
    };
    let mut end = if end < 0 {
        len_i.wrapping_add(end)
    } else {
        end
    };
    start = start.max(0);
    end = end.max(0);
    if end >= len_i {
        end = len_i - 1;
    }
    if len == 0 || start > end {
        return None;
    }
    Some((start as usize, end as usize))
}

/// GETRANGE key start end (and SUBSTR)
fn getrange(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let key = args.get(1).unwrap_or_default();
    let start = int(args.get(2).unwrap_or_default())?;
    let end = int(args.get(3).unwrap_or_default())?;
    let (db, now) = (ctx.db(), ctx.now);
    let (shard, reply) = ctx.shard_and_reply(key);
    let Some(e) = shard.get(db, key, now) else {
        reply.bulk(b"");
        return Ok(());
    };
    if !e.value().is_string() {
        return Err(CmdError::WrongType);
    }
    let bytes = e.value().string_bytes();
    match getrange_bounds(bytes.len(), start, end) {
        Some((s, t)) => reply.bulk(bytes.get(s..=t).unwrap_or_default()),
        None => reply.bulk(b""),
    }
    Ok(())
}

/// SETRANGE key offset value
fn setrange(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let key = args.get(1).unwrap_or_default();
    let offset = int(args.get(2).unwrap_or_default())?;
    let patch = args.get(3).unwrap_or_default();
    if offset < 0 {
        return Err(CmdError::OffsetOutOfRange);
    }
    let (db, now) = (ctx.db(), ctx.now);
    let old = match ctx.shard(key).get_quiet(db, key, now) {
        None => None,
        Some(e) if e.value().is_string() => Some(value_len(e.value())),
        Some(_) => return Err(CmdError::WrongType),
    };
    if patch.is_empty() {
        ctx.reply.int(old.unwrap_or(0) as i64);
        return Ok(());
    }
    check_string_length(ctx, offset as u64, patch.len() as u64)?;
    let offset = offset as usize;
    let shard = ctx.shard(key);
    if shard.get_quiet(db, key, now).is_none() {
        shard.put(db, Entry::new(key, Value::Raw(Box::default()), 0));
    }
    let need = offset.saturating_add(patch.len());
    let Some(e) = shard.get_quiet(db, key, now) else {
        return Err(CmdError::OutOfMemory);
    };
    let buf = e.raw_mut(need).ok_or(CmdError::OutOfMemory)?;
    buf[offset..need].copy_from_slice(patch);
    let total = buf.len();
    shard.written(db, key, "setrange");
    ctx.reply.int(total as i64);
    Ok(())
}

/// The shared body of INCR, DECR, INCRBY and DECRBY. The key keeps its TTL.
fn incr_by(ctx: &mut Ctx, key: &[u8], by: i64) -> CmdResult {
    let (db, now) = (ctx.db(), ctx.now);
    let (shard, reply) = ctx.shard_and_reply(key);
    let new = match shard.get_quiet(db, key, now) {
        Some(e) => {
            let cur = match e.value() {
                ValueRef::Int(n) => n,
                ValueRef::Str(s) => int(s)?,
                ValueRef::Raw(v) => int(v)?,
                _ => return Err(CmdError::WrongType),
            };
            let new = cur.checked_add(by).ok_or(CmdError::Overflow)?;
            e.set_value(Value::Int(new));
            new
        }
        None => {
            shard.put(db, Entry::new(key, Value::Int(by), 0));
            by
        }
    };
    shard.written(db, key, "incrby");
    reply.int(new);
    Ok(())
}

/// INCR key
fn incr(ctx: &mut Ctx, args: &Args) -> CmdResult {
    incr_by(ctx, args.get(1).unwrap_or_default(), 1)
}

/// DECR key
fn decr(ctx: &mut Ctx, args: &Args) -> CmdResult {
    incr_by(ctx, args.get(1).unwrap_or_default(), -1)
}

/// INCRBY key increment
fn incrby(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let by = int(args.get(2).unwrap_or_default())?;
    incr_by(ctx, args.get(1).unwrap_or_default(), by)
}

/// DECRBY key decrement
fn decrby(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let by = int(args.get(2).unwrap_or_default())?;
    if by == i64::MIN {
        return Err(CmdError::DecrementOverflow);
    }
    incr_by(ctx, args.get(1).unwrap_or_default(), -by)
}

/// INCRBYFLOAT key increment: long double arithmetic, as Redis. The key keeps
/// its TTL.
fn incrbyfloat(ctx: &mut Ctx, args: &Args) -> CmdResult {
    use damselfly_core::ldouble::{add, LdError};
    let key = args.get(1).unwrap_or_default();
    let by = args.get(2).unwrap_or_default();
    let (db, now, server) = (ctx.db(), ctx.now, ctx.server);
    let (shard, reply) = ctx.shard_and_reply(key);
    let cur: Vec<u8> = match shard.get_quiet(db, key, now) {
        Some(e) if e.value().is_string() => e.value().string_bytes().into_owned(),
        Some(_) => return Err(CmdError::WrongType),
        None => b"0".to_vec(),
    };
    let sum = add(&cur, by).map_err(|e| match e {
        LdError::BadValue | LdError::BadIncrement => CmdError::NotFloat,
        LdError::NanOrInfinity => CmdError::NanOrInfinity,
    })?;
    reply.bulk(&sum);
    // The result, not the increment: float formatting may differ elsewhere.
    crate::repl_master::instead(server, &[b"SET", key, &sum, b"KEEPTTL"]);
    match shard.get_quiet(db, key, now) {
        Some(e) => e.set_value(Value::from_vec(sum)),
        None => {
            shard.put(db, Entry::new(key, Value::from_vec(sum), 0));
        }
    }
    shard.written(db, key, "incrbyfloat");
    Ok(())
}

/// One matching range LCS IDX reports: (a_start, a_end, b_start, b_end).
type LcsRange = (usize, usize, usize, usize);

/// LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN]
fn lcs(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let ka = args.get(1).unwrap_or_default();
    let kb = args.get(2).unwrap_or_default();
    let (db, now) = (ctx.db(), ctx.now);
    let va = ctx.shard(ka).get(db, ka, now).map(|e| e.to_value());
    let vb = ctx.shard(kb).get(db, kb, now).map(|e| e.to_value());
    if va.as_ref().is_some_and(|v| !v.is_string()) || vb.as_ref().is_some_and(|v| !v.is_string()) {
        return Err(CmdError::LcsNotString);
    }
    let mut get_len = false;
    let mut get_idx = false;
    let mut with_match_len = false;
    let mut min_match_len: i64 = 0;
    let mut i = 3;
    while i < args.len() {
        let opt = args.get(i).unwrap_or_default();
        if opt_is(opt, "idx") {
            get_idx = true;
        } else if opt_is(opt, "len") {
            get_len = true;
        } else if opt_is(opt, "withmatchlen") {
            with_match_len = true;
        } else if let (true, Some(n)) = (opt_is(opt, "minmatchlen"), args.get(i + 1)) {
            min_match_len = int(n)?.max(0);
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if get_idx && get_len {
        return Err(CmdError::LcsIdxAndLen);
    }
    let a = va.as_ref().map(|v| v.string_bytes()).unwrap_or_default();
    let b = vb.as_ref().map(|v| v.string_bytes()).unwrap_or_default();
    if a.len() as u64 >= u64::from(u32::MAX) - 1 || b.len() as u64 >= u64::from(u32::MAX) - 1 {
        return Err(CmdError::LcsTooLong);
    }
    let (alen, blen) = (a.len(), b.len());
    let cells = (alen as u64 + 1) * (blen as u64 + 1);
    let bytes = cells.checked_mul(4);
    let max = ctx
        .server
        .config
        .proto_max_bulk_len
        .load(std::sync::atomic::Ordering::Relaxed);
    match bytes {
        Some(n) if n > max => return Err(CmdError::LcsOverLimit),
        None => return Err(CmdError::LcsNoMemory),
        _ => {}
    }
    let Ok(cells) = usize::try_from(cells) else {
        return Err(CmdError::LcsNoMemory);
    };
    let mut table: Vec<u32> = Vec::new();
    if table.try_reserve_exact(cells).is_err() {
        return Err(CmdError::LcsNoMemory);
    }
    table.resize(cells, 0);
    // table[i * (blen + 1) + j] = LCS length of a[..i] and b[..j].
    let w = blen + 1;
    for i in 1..=alen {
        for j in 1..=blen {
            table[i * w + j] = if a[i - 1] == b[j - 1] {
                table[(i - 1) * w + j - 1] + 1
            } else {
                table[(i - 1) * w + j].max(table[i * w + j - 1])
            };
        }
    }
    let total = table[alen * w + blen];
    if get_len {
        ctx.reply.int(i64::from(total));
        return Ok(());
    }
    // Walk back from the end, collecting the common subsequence and the
    // contiguous ranges it is made of (last ranges first, as Redis reports).
    let mut common = vec![0u8; total as usize];
    let mut left = total as usize;
    let mut ranges: Vec<LcsRange> = Vec::new();
    let mut current: Option<LcsRange> = None;
    let (mut i, mut j) = (alen, blen);
    let keep = |r: LcsRange, out: &mut Vec<LcsRange>| {
        let len = (r.1 - r.0 + 1) as i64;
        if min_match_len == 0 || len >= min_match_len {
            out.push(r);
        }
    };
    while i > 0 && j > 0 {
        if a[i - 1] == b[j - 1] {
            left -= 1;
            common[left] = a[i - 1];
            let r = match current {
                Some((s, e, bs, be)) if s == i && bs == j => (s - 1, e, bs - 1, be),
                Some(r) => {
                    keep(r, &mut ranges);
                    (i - 1, i - 1, j - 1, j - 1)
                }
                None => (i - 1, i - 1, j - 1, j - 1),
            };
            i -= 1;
            j -= 1;
            if r.0 == 0 || r.2 == 0 {
                keep(r, &mut ranges);
                current = None;
            } else {
                current = Some(r);
            }
        } else {
            if table[(i - 1) * w + j] > table[i * w + j - 1] {
                i -= 1;
            } else {
                j -= 1;
            }
            if let Some(r) = current.take() {
                keep(r, &mut ranges);
            }
        }
    }
    if !get_idx {
        ctx.reply.bulk(&common);
        return Ok(());
    }
    let reply = &mut *ctx.reply;
    reply.map(2);
    reply.bulk(b"matches");
    reply.array(ranges.len());
    for (s, e, bs, be) in ranges {
        reply.array(if with_match_len { 3 } else { 2 });
        reply.array(2);
        reply.int(s as i64);
        reply.int(e as i64);
        reply.array(2);
        reply.int(bs as i64);
        reply.int(be as i64);
        if with_match_len {
            reply.int((e - s + 1) as i64);
        }
    }
    reply.bulk(b"len");
    reply.int(i64::from(total));
    Ok(())
}
