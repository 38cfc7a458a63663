//! Server commands: FLUSHALL FLUSHDB DBSIZE CONFIG COMMAND INFO TIME ...

use crate::args::eq;
use crate::cmd;
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::table::{Command, Keys::None as NoKeys};
use damselfly_protocol::Args;

/// The Redis version we report: clients gate features on it.
pub const REDIS_VERSION: &str = "7.0.15";

pub(crate) static COMMANDS: &[Command] = &[
    cmd!(
        "flushall",
        -1,
        "write all_shards",
        NoKeys,
        "@keyspace @write @slow @dangerous",
        "server",
        "1.0.0",
        flushall
    ),
    cmd!(
        "flushdb",
        -1,
        "write all_shards",
        NoKeys,
        "@keyspace @write @slow @dangerous",
        "server",
        "1.0.0",
        flushdb
    ),
    cmd!(
        "dbsize",
        1,
        "readonly fast",
        NoKeys,
        "@keyspace @read @fast",
        "server",
        "1.0.0",
        dbsize
    ),
    cmd!(
        "config",
        -2,
        "",
        NoKeys,
        "@slow",
        "server",
        "2.0.0",
        help_only,
        CONFIG_SUBCOMMANDS
    ),
];

static CONFIG_SUBCOMMANDS: &[Command] = &[
    cmd!(
        "get",
        -3,
        "admin noscript loading stale",
        NoKeys,
        "@admin @slow @dangerous",
        "server",
        "2.0.0",
        config_get
    ),
    cmd!(
        "set",
        -4,
        "admin noscript loading stale",
        NoKeys,
        "@admin @slow @dangerous",
        "server",
        "2.0.0",
        config_set
    ),
    cmd!(
        "resetstat",
        2,
        "admin noscript loading stale",
        NoKeys,
        "@admin @slow @dangerous",
        "server",
        "2.0.0",
        config_resetstat
    ),
];

/// Container commands reached without a subcommand fail on arity first.
fn help_only(_ctx: &mut Ctx, args: &Args) -> CmdResult {
    Err(CmdError::WrongArity(
        String::from_utf8_lossy(args.get(0).unwrap_or_default()).to_ascii_lowercase(),
    ))
}

fn flush_mode(args: &Args) -> CmdResult {
    match args.len() {
        1 => Ok(()),
        2 if eq(args.get(1).unwrap_or_default(), "async")
            || eq(args.get(1).unwrap_or_default(), "sync") =>
        {
            Ok(())
        }
        _ => Err(CmdError::Syntax),
    }
}

/// FLUSHALL [ASYNC | SYNC]
fn flushall(ctx: &mut Ctx, args: &Args) -> CmdResult {
    flush_mode(args)?;
    for shard in ctx.locked.iter_mut() {
        for db in 0..shard.dbs.len() {
            clear_db(shard, db);
        }
    }
    ctx.reply.ok();
    Ok(())
}

fn clear_db(shard: &mut damselfly_storage::Shard, db: usize) {
    let d = &mut shard.dbs[db];
    let n = d.table.len() as u64;
    d.table.clear();
    d.volatile = 0;
    d.expire_cursor = 0;
    shard.stats.dirty += n;
}

/// FLUSHDB [ASYNC | SYNC]
fn flushdb(ctx: &mut Ctx, args: &Args) -> CmdResult {
    flush_mode(args)?;
    let db = ctx.db();
    for shard in ctx.locked.iter_mut() {
        clear_db(shard, db);
    }
    ctx.reply.ok();
    Ok(())
}

/// DBSIZE
fn dbsize(ctx: &mut Ctx, _args: &Args) -> CmdResult {
    let db = ctx.db();
    let n: usize = ctx.each_shard(|s| s.dbs[db].len()).into_iter().sum();
    ctx.reply.int(n as i64);
    Ok(())
}

/// CONFIG GET parameter [parameter ...]
fn config_get(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let pats: Vec<&[u8]> = args.iter().skip(2).collect();
    let found = ctx.server.config.matching(&pats);
    ctx.reply.map(found.len());
    for (k, v) in found {
        ctx.reply.bulk(k.as_bytes());
        ctx.reply.bulk(v.as_bytes());
    }
    Ok(())
}

/// CONFIG SET parameter value [parameter value ...]
fn config_set(ctx: &mut Ctx, args: &Args) -> CmdResult {
    if args.len() % 2 != 0 {
        return Err(CmdError::WrongArity("config|set".into()));
    }
    let pairs: Vec<(&[u8], &[u8])> = (2..args.len())
        .step_by(2)
        .map(|i| {
            (
                args.get(i).unwrap_or_default(),
                args.get(i + 1).unwrap_or_default(),
            )
        })
        .collect();
    ctx.server.config.set_many(&pairs)?;
    ctx.reply.ok();
    Ok(())
}

/// CONFIG RESETSTAT
fn config_resetstat(ctx: &mut Ctx, _args: &Args) -> CmdResult {
    ctx.server.reset_stats();
    ctx.reply.ok();
    Ok(())
}
