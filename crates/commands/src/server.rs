//! Server commands: FLUSHALL FLUSHDB DBSIZE CONFIG COMMAND INFO TIME ...

pub(crate) mod info;
mod introspect;
mod keys;
mod keyspecs;
mod memory;
pub mod metrics;
mod tips;

pub(crate) use introspect::key_flags;
pub use keys::movable as movable_keys;

use crate::args::{eq, lossy};
use crate::cmd;
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::table::{Command, Keys::None as NoKeys};
use damselfly_protocol::Args;

/// The Redis version we report: clients gate features on it.
pub const REDIS_VERSION: &str = "7.0.15";

static MEMORY_SUBCOMMANDS: &[Command] = &[
    cmd!(
        "purge",
        2,
        "",
        NoKeys,
        "@slow",
        "server",
        "4.0.0",
        memory::purge
    ),
    cmd!(
        "malloc-stats",
        2,
        "",
        NoKeys,
        "@slow",
        "server",
        "4.0.0",
        memory::malloc_stats
    ),
    cmd!(
        "doctor",
        2,
        "",
        NoKeys,
        "@slow",
        "server",
        "4.0.0",
        memory::doctor
    ),
    cmd!(
        "stats",
        2,
        "",
        NoKeys,
        "@slow",
        "server",
        "4.0.0",
        memory::stats
    ),
    cmd!(
        "usage",
        -3,
        "readonly",
        crate::table::Keys::Range(2, 2, 1),
        "@read @slow",
        "server",
        "4.0.0",
        memory_usage
    ),
    cmd!(
        "help",
        2,
        "loading stale",
        NoKeys,
        "@slow",
        "server",
        "4.0.0",
        memory_help
    ),
];

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
    cmd!(
        "command",
        -1,
        "loading stale",
        NoKeys,
        "@slow @connection",
        "server",
        "2.8.13",
        introspect::command_all,
        COMMAND_SUBCOMMANDS
    ),
    cmd!(
        "info",
        -1,
        "loading stale",
        NoKeys,
        "@slow @dangerous",
        "server",
        "1.0.0",
        info::info
    ),
    cmd!(
        "time",
        1,
        "loading stale fast",
        NoKeys,
        "@fast",
        "server",
        "2.6.0",
        time
    ),
    cmd!(
        "lastsave",
        1,
        "loading stale fast",
        NoKeys,
        "@admin @fast @dangerous",
        "server",
        "1.0.0",
        lastsave
    ),
    cmd!(
        "shutdown",
        -1,
        "admin noscript loading stale no_multi allow_busy",
        NoKeys,
        "@admin @slow @dangerous",
        "server",
        "1.0.0",
        shutdown
    ),
    cmd!(
        "memory",
        -2,
        "",
        NoKeys,
        "@slow",
        "server",
        "4.0.0",
        container,
        MEMORY_SUBCOMMANDS
    ),
    cmd!(
        "debug",
        -2,
        "admin noscript loading stale",
        NoKeys,
        "@admin @slow @dangerous",
        "server",
        "1.0.0",
        debug
    ),
    cmd!(
        "function",
        -2,
        "",
        NoKeys,
        "@slow",
        "scripting",
        "7.0.0",
        help_only,
        FUNCTION_SUBCOMMANDS
    ),
];

static COMMAND_SUBCOMMANDS: &[Command] = &[
    cmd!(
        "count",
        2,
        "loading stale",
        NoKeys,
        "@slow @connection",
        "server",
        "2.8.13",
        introspect::count
    ),
    cmd!(
        "info",
        -2,
        "loading stale",
        NoKeys,
        "@slow @connection",
        "server",
        "2.8.13",
        introspect::info
    ),
    cmd!(
        "docs",
        -2,
        "loading stale",
        NoKeys,
        "@slow @connection",
        "server",
        "7.0.0",
        introspect::docs
    ),
    cmd!(
        "list",
        -2,
        "loading stale",
        NoKeys,
        "@slow @connection",
        "server",
        "7.0.0",
        introspect::list
    ),
    cmd!(
        "getkeys",
        -4,
        "loading stale",
        NoKeys,
        "@slow @connection",
        "server",
        "2.8.13",
        introspect::getkeys
    ),
    cmd!(
        "getkeysandflags",
        -4,
        "loading stale",
        NoKeys,
        "@slow @connection",
        "server",
        "7.0.0",
        introspect::getkeysandflags
    ),
    cmd!(
        "help",
        2,
        "loading stale",
        NoKeys,
        "@slow @connection",
        "server",
        "5.0.0",
        introspect::help
    ),
];

/// FUNCTION: only FLUSH works (there are no libraries to flush); the rest
/// answer that scripting is not available.
static FUNCTION_SUBCOMMANDS: &[Command] = &[
    cmd!(
        "flush",
        -2,
        "write noscript",
        NoKeys,
        "@write @slow @scripting",
        "scripting",
        "7.0.0",
        crate::scripting::function_flush
    ),
    cmd!(
        "load",
        -3,
        "write denyoom noscript",
        NoKeys,
        "@write @slow @scripting",
        "scripting",
        "7.0.0",
        crate::scripting::function_load
    ),
    cmd!(
        "delete",
        3,
        "write noscript",
        NoKeys,
        "@write @slow @scripting",
        "scripting",
        "7.0.0",
        crate::scripting::function_delete
    ),
    cmd!(
        "list",
        -2,
        "noscript",
        NoKeys,
        "@slow @scripting",
        "scripting",
        "7.0.0",
        crate::scripting::function_list
    ),
    cmd!(
        "dump",
        2,
        "noscript",
        NoKeys,
        "@slow @scripting",
        "scripting",
        "7.0.0",
        crate::scripting::function_dump
    ),
    cmd!(
        "restore",
        -3,
        "write denyoom noscript",
        NoKeys,
        "@write @slow @scripting",
        "scripting",
        "7.0.0",
        crate::scripting::function_restore
    ),
    cmd!(
        "stats",
        2,
        "noscript allow_busy",
        NoKeys,
        "@slow @scripting",
        "scripting",
        "7.0.0",
        crate::scripting::function_stats
    ),
    cmd!(
        "kill",
        2,
        "noscript allow_busy",
        NoKeys,
        "@slow @scripting",
        "scripting",
        "7.0.0",
        crate::scripting::function_kill
    ),
    cmd!(
        "help",
        2,
        "loading stale",
        NoKeys,
        "@slow @scripting",
        "scripting",
        "7.0.0",
        function_help
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
    cmd!(
        "rewrite",
        2,
        "admin noscript loading stale",
        NoKeys,
        "@admin @slow @dangerous",
        "server",
        "2.8.0",
        config_rewrite
    ),
    cmd!(
        "help",
        2,
        "loading stale",
        NoKeys,
        "@slow",
        "server",
        "5.0.0",
        config_help
    ),
];

/// Container commands reached without a subcommand fail on arity first.
pub(crate) fn help_only(_ctx: &mut Ctx, args: &Args) -> CmdResult {
    Err(CmdError::WrongArity(
        String::from_utf8_lossy(args.get(0).unwrap_or_default()).to_ascii_lowercase(),
    ))
}

/// Whether a FLUSHALL/FLUSHDB frees in the background: ASYNC, or no mode
/// with `lazyfree-lazy-user-flush yes`.
fn flush_mode(server: &crate::Server, args: &Args) -> Result<bool, CmdError> {
    match args.len() {
        1 => Ok(server.config.get("lazyfree-lazy-user-flush").as_deref() == Some("yes")),
        2 if eq(args.get(1).unwrap_or_default(), "async") => Ok(true),
        2 if eq(args.get(1).unwrap_or_default(), "sync") => Ok(false),
        _ => Err(CmdError::Syntax),
    }
}

/// FLUSHALL [ASYNC | SYNC]
fn flushall(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let lazy = flush_mode(ctx.server, args)?;
    let now = ctx.now;
    for shard in ctx.locked.iter_mut() {
        for db in 0..shard.dbs.len() {
            clear_db(shard, db, now, lazy);
        }
    }
    crate::persist::save_after_flushall(ctx.server, &mut ctx.locked);
    ctx.server.tracking.flushed(&ctx.server.pubsub);
    ctx.reply.ok();
    Ok(())
}

pub(crate) fn clear_db(shard: &mut damselfly_storage::Shard, db: usize, now: u64, lazy: bool) {
    shard.touch_watched_db(db, None, now);
    // Blocked XREADGROUPs learn that their key is gone.
    shard.waiters.mark_db(db);
    let d = &mut shard.dbs[db];
    let n = d.table.len() as u64;
    if lazy {
        damselfly_storage::lazyfree::free_table(std::mem::take(&mut d.table));
    } else {
        d.table.clear();
    }
    d.volatile = 0;
    d.expire_cursor = 0;
    shard.stats.dirty += n;
}

/// FLUSHDB [ASYNC | SYNC]
fn flushdb(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let lazy = flush_mode(ctx.server, args)?;
    let (db, now) = (ctx.db(), ctx.now);
    for shard in ctx.locked.iter_mut() {
        clear_db(shard, db, now, lazy);
    }
    ctx.server.tracking.flushed(&ctx.server.pubsub);
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
    if args.len() & 1 == 1 {
        return Err(CmdError::Syntax);
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
    ctx.server
        .config
        .apply_to(&ctx.server.pubsub, &ctx.server.tracking);
    ctx.server.acl.sync_config(&ctx.server.config);
    // A lowered limit takes effect at once, as in Redis, not only at the
    // next write (this command holds no shard).
    if pairs.iter().any(|(n, _)| eq(n, "maxmemory")) {
        crate::maxmemory::perform_evictions(ctx.server);
    }
    if pairs
        .iter()
        .any(|(n, _)| eq(n, "maxmemory") || eq(n, "maxmemory-clients"))
    {
        crate::client_evict::limit_changed(ctx.server);
    }
    // The default user's password follows requirepass (Redis's rule).
    if let Some((_, pass)) = pairs.iter().rev().find(|(n, _)| eq(n, "requirepass")) {
        ctx.server.acl.set_requirepass(pass);
    }
    ctx.reply.ok();
    Ok(())
}

/// CONFIG RESETSTAT
fn config_resetstat(ctx: &mut Ctx, _args: &Args) -> CmdResult {
    ctx.server.reset_stats();
    ctx.reply.ok();
    Ok(())
}

/// CONFIG REWRITE: writes the current settings back to the config file the
/// server started with (users too, when there is no aclfile).
fn config_rewrite(ctx: &mut Ctx, _args: &Args) -> CmdResult {
    let path = &ctx.server.config_file;
    if path.is_empty() {
        return Err(CmdError::Other(
            "ERR The server is running without a config file".into(),
        ));
    }
    let failed = |e: std::io::Error| CmdError::Other(format!("ERR Rewriting config file: {e}"));
    let old = std::fs::read_to_string(path).map_err(failed)?;
    let users = ctx
        .server
        .acl
        .file
        .read()
        .is_empty()
        .then(|| ctx.server.acl.describe_all());
    let text = ctx.server.config.rewrite_text(&old, users);
    let tmp = format!("{path}.tmp-{}", std::process::id());
    std::fs::write(&tmp, text)
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(failed)?;
    ctx.reply.ok();
    Ok(())
}

/// Replies a HELP text: the first line names the command, then the lines
/// given, then HELP itself.
pub(crate) fn reply_help(ctx: &mut Ctx, cmd: &str, lines: &[&str]) {
    ctx.reply.array(lines.len() + 3);
    ctx.reply.simple(
        format!("{cmd} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:").as_bytes(),
    );
    for l in lines {
        ctx.reply.simple(l.as_bytes());
    }
    ctx.reply.simple(b"HELP");
    ctx.reply.simple(b"    Prints this help.");
}

/// CONFIG HELP
fn config_help(ctx: &mut Ctx, _args: &Args) -> CmdResult {
    reply_help(
        ctx,
        "CONFIG",
        &[
            "GET <pattern>",
            "    Return parameters matching the glob-like <pattern> and their values.",
            "SET <directive> <value>",
            "    Set the configuration <directive> to <value>.",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
            "REWRITE",
            "    Rewrite the configuration file.",
        ],
    );
    Ok(())
}

/// TIME
fn time(ctx: &mut Ctx, _args: &Args) -> CmdResult {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    ctx.reply.array(2);
    ctx.reply.bulk(now.as_secs().to_string().as_bytes());
    ctx.reply.bulk(now.subsec_micros().to_string().as_bytes());
    Ok(())
}

/// LASTSAVE: the last successful save, or the start-up time.
fn lastsave(ctx: &mut Ctx, _args: &Args) -> CmdResult {
    let t = ctx
        .server
        .lastsave
        .load(std::sync::atomic::Ordering::Relaxed);
    ctx.reply.int(t as i64);
    Ok(())
}

/// SHUTDOWN [NOSAVE | SAVE] [NOW] [FORCE] [ABORT]
///
/// Saves first when `save` rules or `snapshot_cron` are set, or SAVE is
/// given (not with NOSAVE); a failed save cancels the shutdown unless
/// FORCE. There are no replicas to wait for, so NOW changes nothing. No
/// shutdown is ever left in progress, so ABORT always fails as Redis does
/// with none pending.
fn shutdown(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let (mut nosave, mut save, mut now, mut force, mut abort) = (false, false, false, false, false);
    for a in args.iter().skip(1) {
        if eq(a, "nosave") {
            nosave = true;
        } else if eq(a, "save") {
            save = true;
        } else if eq(a, "now") {
            now = true;
        } else if eq(a, "force") {
            force = true;
        } else if eq(a, "abort") {
            abort = true;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    if (abort && (nosave || save || now || force)) || (nosave && save) {
        return Err(CmdError::Syntax);
    }
    if abort {
        return Err(CmdError::Other("ERR No shutdown in progress.".into()));
    }
    // A script past its busy threshold may have written half its work:
    // only SHUTDOWN NOSAVE may stop the server under it.
    if !nosave
        && ctx
            .server
            .scripting
            .busy(ctx.server, ctx.client.id())
            .is_some()
    {
        return Err(CmdError::Unkillable);
    }
    let server = ctx.server;
    // Never while loading: the file on disk holds more than memory does.
    let loading = server
        .persistence
        .loading
        .load(std::sync::atomic::Ordering::Relaxed);
    if !nosave
        && !loading
        && (save || crate::persist::saving_configured(server))
        && !crate::persist::save_now(server)
        && !force
    {
        return Err(CmdError::Other(
            "ERR Errors trying to SHUTDOWN. Check logs.".into(),
        ));
    }
    ctx.server.host.shutdown();
    // Redis closes the connection without a reply.
    ctx.client.close_after_reply = true;
    Ok(())
}

/// DEBUG: LOG, SET-ACTIVE-EXPIRE, RELOAD, HELP, (in `debug.rs`) OBJECT,
/// POPULATE, SLEEP, ERROR, PROTOCOL, REPLICATE, and (in `digest.rs`) DIGEST, DIGEST-VALUE.
fn debug(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let sub = args.get(1).unwrap_or_default();
    if eq(sub, "help") && args.len() == 2 {
        reply_help(
            ctx,
            "DEBUG",
            &[
                "LOG <message>",
                "    Write <message> to the server log.",
                "SET-ACTIVE-EXPIRE <0|1>",
                "    0 pauses the background expiry of keys nobody reads; 1 resumes it.",
                "SET-DISABLE-DENY-SCRIPTS <0|1>",
                "    1 lets scripts call commands normally refused to them (for tests).",
                "RELOAD [option ...]",
                "    Save the RDB on disk and reload it back to memory. Valid <option> values:",
                "    * MERGE: conflicting keys will be loaded from RDB.",
                "    * NOFLUSH: the existing database will not be removed before load, and",
                "      conflicting keys fail the reload (Redis stops the server instead).",
                "    * NOSAVE: the database will be loaded from an existing RDB file.",
                "OBJECT <key>",
                "    Show low level info about `key` and associated value.",
                "PROTOCOL <type>",
                "    Reply with a test value of the specified type. <type> can be: string,",
                "    integer, double, bignum, null, array, set, map, attrib, push, verbatim,",
                "    true, false.",
                "POPULATE <count> [<prefix>] [<size>]",
                "    Create <count> string keys named key:<num>. If <prefix> is specified then",
                "    it is used instead of the 'key' prefix.",
                "SLEEP <seconds>",
                "    Stop the server's thread for <seconds>. Decimals allowed.",
                "ERROR <string>",
                "    Return a Redis protocol error with <string> as message.",
                "DIGEST",
                "    Output a hex signature representing the current DB content.",
                "DIGEST-VALUE <key> [<key> ...]",
                "    Output a hex signature of the values of all the specified keys.",
                "REPLICATE <command> [<arg> ...]",
                "    Send the command to the replicas, not running it here.",
            ],
        );
        return Ok(());
    }
    if eq(sub, "set-active-expire") && args.len() == 3 {
        let on = crate::args::int(args.get(2).unwrap_or_default())?;
        ctx.server.keyspace.set_active_expire(on != 0);
        ctx.reply.ok();
        return Ok(());
    }
    if eq(sub, "set-disable-deny-scripts") && args.len() == 3 {
        let on = crate::args::int(args.get(2).unwrap_or_default())?;
        ctx.server
            .scripting
            .allow_noscript
            .store(on != 0, std::sync::atomic::Ordering::Relaxed);
        ctx.reply.ok();
        return Ok(());
    }
    if eq(sub, "reload") {
        let mut how = crate::persist::Reload {
            save: true,
            flush: true,
            merge: false,
        };
        for opt in args.iter().skip(2) {
            match opt.to_ascii_lowercase().as_slice() {
                b"merge" => how.merge = true,
                b"noflush" => how.flush = false,
                b"nosave" => how.save = false,
                _ => {
                    return Err(CmdError::Other(
                        "ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options."
                            .into(),
                    ))
                }
            }
        }
        crate::persist::debug_reload(ctx.server, &ctx.locked, how)?;
        ctx.reply.ok();
        return Ok(());
    }
    if let Some(done) = crate::debug::run(ctx, sub, args) {
        return done;
    }
    if let Some(done) = crate::digest::run(ctx, sub, args) {
        return done;
    }
    if eq(sub, "log") && args.len() == 3 {
        let msg = lossy(args.get(2).unwrap_or_default());
        ctx.server.host.log(&format!("DEBUG LOG: {msg}"));
        ctx.reply.ok();
        return Ok(());
    }
    Err(CmdError::SubcommandSyntax {
        sub: sub.to_vec(),
        cmd: "DEBUG".into(),
    })
}

/// FUNCTION HELP
fn function_help(ctx: &mut Ctx, _args: &Args) -> CmdResult {
    const LINES: &[&str] = &[
        "LOAD [REPLACE] <FUNCTION CODE>",
        "    Create a new library with the given library name and code.",
        "DELETE <LIBRARY NAME>",
        "    Delete the given library.",
        "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
        "    Return general information on all the libraries:",
        "    * Library name",
        "    * The engine used to run the Library",
        "    * Library description",
        "    * Functions list",
        "    * Library code (if WITHCODE is given)",
        "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
        "STATS",
        "    Return information about the current function running:",
        "    * Function name",
        "    * Command used to run the function",
        "    * Duration in MS that the function is running",
        "    If no function is running, return nil",
        "    In addition, returns a list of available engines.",
        "KILL",
        "    Kill the current running function.",
        "FLUSH [ASYNC|SYNC]",
        "    Delete all the libraries.",
        "    When called without the optional mode argument, the behavior is determined by the",
        "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
        "    * ASYNC: Asynchronously flush the libraries.",
        "    * SYNC: Synchronously flush the libraries.",
        "DUMP",
        "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
        "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
        "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
        "    control how to handle existing libraries (default APPEND):",
        "    * FLUSH: delete all existing libraries.",
        "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
        "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
        "      libraries with the new libraries (notice that even on this option there is a chance of failure",
        "      in case of functions name collision with another library).",
    ];
    crate::server::reply_help(ctx, "FUNCTION", LINES);
    Ok(())
}

/// A container command named without a subcommand fails on arity.
fn container(_ctx: &mut Ctx, args: &Args) -> CmdResult {
    Err(CmdError::WrongArity(
        lossy(args.get(0).unwrap_or_default()).to_ascii_lowercase(),
    ))
}

/// MEMORY USAGE key [SAMPLES count]: the bytes the key and its value hold
/// (entry, key and value allocations; collections are measured, not sampled).
fn memory_usage(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let key = args.get(2).unwrap_or_default();
    let mut i = 3;
    while i < args.len() {
        let opt = args.get(i).unwrap_or_default();
        if eq(opt, "samples") && i + 1 < args.len() {
            let n = crate::args::int(args.get(i + 1).unwrap_or_default())?;
            if n < 0 {
                return Err(CmdError::Syntax);
            }
            i += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let (db, now) = (ctx.db(), ctx.now);
    let (shard, reply) = ctx.shard_and_reply(key);
    match shard.get_quiet(db, key, now) {
        None => reply.null(),
        Some(e) => {
            // The chain node (next pointer + entry) plus what the key and
            // the value own on the heap.
            let node =
                std::mem::size_of::<damselfly_storage::Entry>() + std::mem::size_of::<usize>();
            reply.int((node + e.heap_size()) as i64);
        }
    }
    Ok(())
}

/// MEMORY HELP
fn memory_help(ctx: &mut Ctx, _args: &Args) -> CmdResult {
    reply_help(
        ctx,
        "MEMORY",
        &[
            "USAGE <key> [SAMPLES <count>]",
            "    Bytes held by <key> and its value (SAMPLES is accepted; collections are measured in full).",
        ],
    );
    Ok(())
}
