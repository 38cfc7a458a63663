//! MULTI, EXEC, DISCARD, WATCH and UNWATCH.
//!
//! Between MULTI and EXEC the dispatcher queues every command (after the
//! generic checks) except the few that act on the transaction itself. EXEC
//! locks the union of the shards of every queued command and every watched
//! key once, in ascending order, and runs the commands under that one lock
//! set, so the transaction is atomic to every other client; clients blocked
//! on keys are served once, after the whole EXEC.
//!
//! A watch is a registration in the key's shard (`Shard::watch`) sharing the
//! client's dirty flag; the write door and the flush/swap paths set it.

use crate::client::Client;
use crate::cmd;
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::state::Server;
use crate::table::{flag, Command, Entry, Keys};
use damselfly_protocol::{Args, Request};
use smallvec::SmallVec;
use std::sync::atomic::Ordering::Relaxed;

pub static COMMANDS: &[Command] = &[
    cmd!(
        "discard",
        1,
        "noscript loading stale fast allow_busy",
        Keys::None,
        "@fast @transaction",
        "transactions",
        "2.0.0",
        discard
    ),
    cmd!(
        "exec",
        1,
        "noscript loading stale skip_slowlog",
        Keys::None,
        "@slow @transaction",
        "transactions",
        "1.2.0",
        exec
    ),
    cmd!(
        "multi",
        1,
        "noscript loading stale fast allow_busy",
        Keys::None,
        "@fast @transaction",
        "transactions",
        "1.2.0",
        multi
    ),
    cmd!(
        "unwatch",
        1,
        "noscript loading stale fast allow_busy",
        Keys::None,
        "@fast @transaction",
        "transactions",
        "2.2.0",
        unwatch
    ),
    cmd!(
        "watch",
        -2,
        "noscript loading stale fast allow_busy",
        Keys::Range(1, -1, 1),
        "@fast @transaction",
        "transactions",
        "2.2.0",
        watch
    ),
];

/// Commands that run at once inside MULTI instead of being queued.
pub(crate) fn runs_in_multi(e: &Entry) -> bool {
    matches!(
        e.cmd.name,
        "exec" | "discard" | "multi" | "watch" | "quit" | "reset"
    )
}

/// Commands without key arguments that visit shards themselves (one at a
/// time when run alone): inside EXEC they need every shard held already.
pub(crate) fn visits_shards(e: &Entry) -> bool {
    crate::scripting::is_script(e)
        || matches!(
            e.cmd.name,
            "keys" | "scan" | "randomkey" | "dbsize" | "info" | "config" | "debug"
        )
        || e.fullname == "memory|stats"
}

/// Queues a command of an open transaction.
pub(crate) fn queue(client: &mut Client, e: &'static Entry, args: &Args<'_>) {
    if let Some(m) = &mut client.multi {
        m.bytes += args.iter().map(<[u8]>::len).sum::<usize>();
        m.queue.push((e, Request::from_owned(&args.to_vec())));
        client.info.multi.store(m.queue.len() as i64, Relaxed);
    }
}

/// MULTI
fn multi(ctx: &mut Ctx, _args: &Args) -> CmdResult {
    if ctx.client.multi.is_some() {
        return Err(CmdError::MultiNested);
    }
    ctx.client.begin_multi();
    ctx.reply.ok();
    Ok(())
}

/// DISCARD
fn discard(ctx: &mut Ctx, _args: &Args) -> CmdResult {
    if ctx.client.end_multi().is_none() {
        return Err(CmdError::DiscardWithoutMulti);
    }
    unwatch_all(ctx);
    ctx.reply.ok();
    Ok(())
}

/// WATCH key [key ...]
fn watch(ctx: &mut Ctx, args: &Args) -> CmdResult {
    if ctx.client.multi.is_some() {
        return Err(CmdError::WatchInMulti);
    }
    let (db, now, id) = (ctx.db(), ctx.now, ctx.client.id());
    let dirty = ctx.client.watch_dirty.clone();
    for key in args.iter().skip(1) {
        if ctx
            .client
            .watches
            .iter()
            .any(|(d, k)| *d == db && k.as_slice() == key)
        {
            continue;
        }
        ctx.shard(key).watch(db, key, id, &dirty, now);
        ctx.client.watches.push((db, key.to_vec()));
    }
    ctx.reply.ok();
    Ok(())
}

/// UNWATCH
fn unwatch(ctx: &mut Ctx, _args: &Args) -> CmdResult {
    unwatch_all(ctx);
    ctx.reply.ok();
    Ok(())
}

/// Drops every watch of the client (their shards are held, or none is).
pub(crate) fn unwatch_all(ctx: &mut Ctx) {
    let watches = std::mem::take(&mut ctx.client.watches);
    let id = ctx.client.id();
    for (db, key) in &watches {
        let i = ctx.server.keyspace.shard_of(key);
        ctx.with_shard(i, |s| s.unwatch(*db, key, id));
    }
    ctx.client.watch_dirty.store(false, Relaxed);
}

/// A closing connection: its transaction and watches go (no locks held).
pub fn release(server: &Server, client: &mut Client) {
    client.info.gone.store(true, Relaxed);
    client.end_multi();
    crate::pubsub::unsubscribe_all(server, client);
    if client.tracking.take().is_some() {
        server.tracking.disable(client.id());
    }
    let id = client.id();
    for (db, key) in std::mem::take(&mut client.watches) {
        let i = server.keyspace.shard_of(&key);
        server.keyspace.lock_one(i).unwatch(db, &key, id);
    }
}

/// EXEC
fn exec(ctx: &mut Ctx, _args: &Args) -> CmdResult {
    let Some(multi) = ctx.client.end_multi() else {
        return Err(CmdError::ExecWithoutMulti);
    };
    if multi.aborted {
        unwatch_all(ctx);
        return Err(CmdError::ExecAbort);
    }
    let server = ctx.server;
    let ks = &server.keyspace;
    let mut all = false;
    let mut shards: SmallVec<[usize; 4]> = SmallVec::new();
    for (e, req) in &multi.queue {
        if e.has(flag::ALL_SHARDS) || visits_shards(e) {
            all = true;
            break;
        }
        let args = req.args(&[]);
        for i in e.key_positions(args.len(), |i| args.get(i)) {
            if let Some(k) = args.get(i) {
                shards.push(ks.shard_of(k));
            }
        }
    }
    if !all {
        shards.extend(ctx.client.watches.iter().map(|(_, k)| ks.shard_of(k)));
    }
    // The dispatcher held nothing for EXEC itself (no keys). Waiting
    // behind a script that runs past its busy threshold ends in BUSY with
    // the transaction still open, as when Redis refuses EXEC then.
    let id = ctx.client.id();
    let abort = || server.scripting.busy(server, id).is_some();
    // The Lua VM comes before any shard (a script holding it may wait for
    // shards): a transaction with a scripting command takes it first.
    let needs_vm = multi.queue.iter().any(|(e, _)| e.cmd.group == "scripting");
    let taken = (|| {
        let vm = match needs_vm {
            true => Some(server.scripting.lock_vm(server, id)?),
            false => None,
        };
        let locked = if all {
            ks.lock_all_or_abort(abort)
        } else if shards.is_empty() {
            Some(ks.lock_none())
        } else {
            ks.lock_or_abort(&mut shards, abort)
        };
        let busy = || {
            server
                .scripting
                .busy(server, id)
                .unwrap_or(CmdError::BusyScript)
        };
        locked.map(|l| (vm, l)).ok_or_else(busy)
    })();
    let (vm, locked) = match taken {
        Ok(t) => t,
        Err(err) => {
            ctx.client
                .info
                .multi
                .store(multi.queue.len() as i64, Relaxed);
            ctx.client.multi = Some(multi);
            return Err(err);
        }
    };
    ctx.locked = locked;
    let (now, id) = (ctx.now, ctx.client.id());
    let mut dirty = ctx.client.watch_dirty.load(Relaxed);
    if !dirty {
        let watches = std::mem::take(&mut ctx.client.watches);
        dirty = watches.iter().any(|(db, k)| {
            ctx.locked
                .get(ks.shard_of(k))
                .is_some_and(|s| s.watched_expired(*db, k, id, now))
        });
        ctx.client.watches = watches;
    }
    unwatch_all(ctx);
    if dirty {
        ctx.reply.null_array();
        return Ok(());
    }
    ctx.reply.array(multi.queue.len());
    ctx.client.in_exec = true;
    // CLIENT LIST inside EXEC still shows the transaction, as Redis does.
    let info = ctx.client.info.clone();
    info.multi.store(multi.queue.len() as i64, Relaxed);
    for (e, req) in &multi.queue {
        let args = req.args(&[]);
        if !ctx.client.user.unrestricted.load(Relaxed) {
            if let Err(err) = crate::acl::check_queued(ctx.server, ctx.client, e, &args) {
                ctx.reply.error(&err.to_string());
                continue;
            }
        }
        crate::dispatch::call(ctx, e, &args);
    }
    ctx.client.in_exec = false;
    info.multi.store(-1, Relaxed);
    drop(vm);
    Ok(())
}
