//! String commands.

use crate::args::{eq, int};
use crate::cmd;
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::table::{Command, Keys::Range};
use damselfly_protocol::Args;
use damselfly_storage::{Entry, Value};

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
        Some(e) if e.value.is_string() => Ok(Some(e.value.clone())),
        Some(_) => Err(CmdError::WrongType),
    }
}

pub(crate) fn reply_value(ctx: &mut Ctx, v: &Value) {
    match v {
        Value::Int(n) => ctx.reply.bulk_int(*n),
        Value::Str(s) => ctx.reply.bulk(s),
    }
}

/// GET key
fn get(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let key = args.get(1).unwrap_or_default();
    let (db, now) = (ctx.db(), ctx.now);
    let (shard, reply) = ctx.shard_and_reply(key);
    match shard.get(db, key, now) {
        None => reply.null(),
        Some(e) => match &e.value {
            Value::Int(n) => reply.bulk_int(*n),
            Value::Str(s) => reply.bulk(s),
        },
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Cond {
    Always,
    Nx,
    Xx,
}

/// SET key value [NX | XX] [GET] [EX s | PX ms | EXAT ts | PXAT ms-ts | KEEPTTL]
fn set(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let key = args.get(1).unwrap_or_default();
    let value = args.get(2).unwrap_or_default();
    let mut cond = Cond::Always;
    let mut want_get = false;
    let mut expiry = Expiry::Clear;
    let mut expire_arg: Option<(&[u8], i64, bool)> = None;
    let mut keepttl = false;
    let mut i = 3;
    while i < args.len() {
        let opt = args.get(i).unwrap_or_default();
        let next = args.get(i + 1);
        let has_expire = expire_arg.is_some() || keepttl;
        if eq(opt, "nx") && cond != Cond::Xx {
            cond = Cond::Nx;
        } else if eq(opt, "xx") && cond != Cond::Nx {
            cond = Cond::Xx;
        } else if eq(opt, "get") {
            want_get = true;
        } else if eq(opt, "keepttl") && !has_expire {
            keepttl = true;
        } else if let (Some(n), false) = (next, has_expire) {
            let (unit, abs) = if eq(opt, "ex") {
                (1000, false)
            } else if eq(opt, "px") {
                (1, false)
            } else if eq(opt, "exat") {
                (1000, true)
            } else if eq(opt, "pxat") {
                (1, true)
            } else {
                return Err(CmdError::Syntax);
            };
            expire_arg = Some((n, unit, abs));
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if let Some((n, unit, abs)) = expire_arg {
        expiry = Expiry::At(expire_at(n, unit, abs, ctx.now, "set")?);
    } else if keepttl {
        expiry = Expiry::Keep;
    }
    set_generic(ctx, key, Value::from_bytes(value), cond, expiry, want_get)
}

/// The shared body of SET, SETNX, SETEX, PSETEX and GETSET.
fn set_generic(
    ctx: &mut Ctx,
    key: &[u8],
    value: Value,
    cond: Cond,
    expiry: Expiry,
    want_get: bool,
) -> CmdResult {
    let (db, now) = (ctx.db(), ctx.now);
    let shard = ctx.shard(key);
    let old = shard
        .get_quiet(db, key, now)
        .map(|e| (e.value.clone(), e.expire_at));
    if want_get {
        if let Some((v, _)) = &old {
            if !v.is_string() {
                return Err(CmdError::WrongType);
            }
        }
    }
    let proceed = match cond {
        Cond::Always => true,
        Cond::Nx => old.is_none(),
        Cond::Xx => old.is_some(),
    };
    if proceed {
        let at = match expiry {
            Expiry::Keep => old.as_ref().map_or(0, |(_, at)| *at),
            Expiry::Clear => 0,
            Expiry::At(at) => at,
        };
        shard.put(db, Entry::new(key, value, at));
        shard.written(db, key, "set");
    }
    if want_get {
        match old {
            Some((v, _)) => reply_value(ctx, &v),
            None => ctx.reply.null(),
        }
    } else if proceed {
        ctx.reply.ok();
    } else {
        ctx.reply.null();
    }
    Ok(())
}
