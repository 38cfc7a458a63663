//! Keyspace commands (Redis's "generic" group).

use crate::cmd;
use crate::ctx::Ctx;
use crate::error::CmdResult;
use crate::table::{Command, Keys::Range};
use damselfly_protocol::Args;

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
        "exists",
        -2,
        "readonly fast",
        Range(1, -1, 1),
        "@keyspace @read @fast",
        "generic",
        "1.0.0",
        exists
    ),
];

/// DEL key [key ...]
fn del(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let (db, now) = (ctx.db(), ctx.now);
    let mut n = 0;
    for key in args.iter().skip(1) {
        let shard = ctx.shard(key);
        if shard.contains(db, key, now) && shard.remove(db, key).is_some() {
            shard.written(db, key, "del");
            n += 1;
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
        if ctx.shard(key).contains(db, key, now) {
            n += 1;
        }
    }
    ctx.reply.int(n);
    Ok(())
}
