//! The generic path every request takes (Redis's processCommand): lookup,
//! subcommand resolution, arity, auth, locking the key shards in ascending
//! order, the handler, and the counters.

use crate::client::{Client, ReplyMode};
use crate::ctx::Ctx;
use crate::error::CmdError;
use crate::state::{Server, ThreadStats};
use crate::table::{flag, lookup, Entry, Keys};
use damselfly_protocol::{Args, Reply};
use damselfly_storage::Keyspace;
use smallvec::SmallVec;
use std::sync::atomic::Ordering::Relaxed;

thread_local! {
    /// While a connection's batch runs on this worker: the last clock
    /// reading (`mono_ns`), taken when the batch began or when its last
    /// command ended. It stands for "now" when the next command starts,
    /// so a command costs one clock reading (its end). 0 outside a batch.
    static LAST_READING: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// A batch of requests read together starts on this thread (and after
/// every wait within it). Only the connection loop calls this and
/// `batch_end`: nothing else on the worker runs commands.
pub fn batch_begin() {
    LAST_READING.with(|r| r.set(damselfly_storage::mono_ns()));
}

/// The batch is over (or about to wait): the next command reads the clock.
pub fn batch_end() {
    LAST_READING.with(|r| r.set(0));
}

fn last_reading() -> u64 {
    LAST_READING.with(std::cell::Cell::get)
}

/// Which argument of a command on one collection names the member it
/// looks up (the one worth warming): none, the third, the last, or the
/// third when the command also reads or writes the field's value.
const MEMBER_NONE: u64 = 0;
const MEMBER_THIRD: u64 = 1;
const MEMBER_LAST: u64 = 2;
const FIELD_VALUE: u64 = 3;

fn member_arg(name: &str) -> u64 {
    if !matches!(name.as_bytes().first(), Some(b'h' | b's' | b'z')) {
        return MEMBER_NONE;
    }
    match name {
        "hset" | "hsetnx" | "hget" | "hmset" | "hmget" | "hincrby" | "hincrbyfloat" | "hstrlen" => {
            FIELD_VALUE
        }
        "hexists" | "hdel" | "sadd" | "srem" | "sismember" | "smismember" | "zscore"
        | "zmscore" | "zrem" | "zrank" | "zrevrank" => MEMBER_THIRD,
        // The member follows the options and the score (of the last pair).
        "zadd" | "zincrby" => MEMBER_LAST,
        _ => MEMBER_NONE,
    }
}

/// What warming a pipelined request found out, for its run: the
/// command's table entry and, for a command on one key, that key's shard
/// and hash (`Keyspace::shard_of`, `hash_key`).
#[derive(Clone, Copy, Default)]
pub struct Hint {
    entry: Option<&'static Entry>,
    key: Option<(usize, u64)>,
}

/// Warms the cache for a request that runs soon, with the rest of its
/// pipeline: for a command on one key, the first step of
/// `Keyspace::prefetch_bucket`; its cookie (with `member_arg` in its
/// caller's bits) goes to `prefetch_entry`. Leaves in `hint` what the
/// run can reuse.
pub fn prefetch(server: &Server, db: usize, args: &Args<'_>, hint: &mut Hint) -> u64 {
    let (Some(name), Some(key)) = (args.get(0), args.get(1)) else {
        return 0;
    };
    let Some(e) = lookup(name) else {
        return 0;
    };
    hint.entry = Some(e);
    let ks = &server.keyspace;
    match e.cmd.keys {
        Keys::Range(1, 1, _) => {
            let (shard, hash) = (ks.shard_of(key), damselfly_core::table::hash_key(key));
            hint.key = Some((shard, hash));
            match ks.prefetch_bucket(db, shard, hash) {
                0 => 0,
                cookie => cookie | member_arg(e.cmd.name) << Keyspace::PREFETCH_TAG_SHIFT,
            }
        }
        // Scripts (and the other commands that count their keys): the
        // first key, the one a short script most likely reads.
        Keys::NumKeys {
            dest: false,
            numkeys,
        } => match (args.get(numkeys).map(atoi_positive), args.get(numkeys + 1)) {
            (Some(true), Some(key)) => {
                let hash = damselfly_core::table::hash_key(key);
                ks.prefetch_bucket(db, ks.shard_of(key), hash)
            }
            _ => 0,
        },
        _ => 0,
    }
}

/// `prefetch` for a request naming the same command and key as the one
/// warmed just before it (which returned `cookie` and left `prev`): a
/// one-key command reuses that work, its bucket and entry being on their
/// way already, and only a member still needs warming. None for any other
/// command (a script's first key may differ).
pub fn prefetch_again(cookie: u64, prev: Hint, hint: &mut Hint) -> Option<u64> {
    prev.key?;
    *hint = prev;
    Some(match (cookie >> Keyspace::PREFETCH_TAG_SHIFT) & 3 {
        MEMBER_NONE => 0,
        _ => cookie,
    })
}

/// The second step of `prefetch`: the key's entry. Returns the cookie
/// again when a member of the key's collection is worth warming too.
#[inline]
pub fn prefetch_entry(server: &Server, cookie: u64) -> u64 {
    server.keyspace.prefetch_entry(cookie);
    if (cookie >> Keyspace::PREFETCH_TAG_SHIFT) & 3 == MEMBER_NONE {
        0
    } else {
        cookie
    }
}

/// The steps after `prefetch_entry`, for a command on a member: the
/// member's bucket slot and node in the collection's table, and the
/// field's value where the command uses it.
pub fn prefetch_member(server: &Server, step: usize, cookie: u64, args: &Args<'_>) -> u64 {
    let at = (cookie >> Keyspace::PREFETCH_TAG_SHIFT) & 3;
    let member = match at {
        MEMBER_THIRD | FIELD_VALUE => args.get(2),
        MEMBER_LAST if args.len() > 3 => args.get(args.len() - 1),
        _ => None,
    };
    let (Some(key), Some(member)) = (args.get(1), member) else {
        return 0;
    };
    let depth = step - 1;
    let more = server
        .keyspace
        .prefetch_member(cookie, key, member, depth as u8);
    let last = if at == FIELD_VALUE { 2 } else { 1 };
    if more && depth < last {
        cookie
    } else {
        0
    }
}

/// Whether `s` is a decimal count of at least 1 (a key count worth a
/// prefetch; anything else is left to the command to refuse).
fn atoi_positive(s: &[u8]) -> bool {
    !s.is_empty()
        && s.len() <= 9
        && s.iter().all(u8::is_ascii_digit)
        && s.iter().any(|&c| c != b'0')
}

pub(crate) fn count_error(stats: &ThreadStats, err: &CmdError) {
    *stats.errors.lock().entry(err.code()).or_insert(0) += 1;
}

/// Resolves the table entry for a request, or the error to reply.
pub(crate) fn resolve(
    args: &Args<'_>,
) -> Result<&'static Entry, (Option<&'static Entry>, CmdError)> {
    resolve_known(args, None)
}

/// `resolve`, given the entry of the request's name when already known.
fn resolve_known(
    args: &Args<'_>,
    known: Option<&'static Entry>,
) -> Result<&'static Entry, (Option<&'static Entry>, CmdError)> {
    let name = args.get(0).unwrap_or_default();
    let Some(mut e) = known.or_else(|| lookup(name)) else {
        let rest = args.iter().skip(1).map(<[u8]>::to_vec).collect();
        return Err((
            None,
            CmdError::UnknownCommand {
                name: name.to_vec(),
                args: rest,
            },
        ));
    };
    if !e.subs.is_empty() && args.len() >= 2 {
        let sub = args.get(1).unwrap_or_default();
        match e.sub(sub) {
            Some(s) => e = s,
            None => {
                return Err((
                    None,
                    CmdError::UnknownSubcommand {
                        sub: sub.to_vec(),
                        cmd: e.cmd.name.to_ascii_uppercase(),
                    },
                ))
            }
        }
    }
    let argc = args.len() as i32;
    let arity = e.cmd.arity;
    if (arity > 0 && argc != arity) || argc < -arity {
        return Err((Some(e), CmdError::WrongArity(e.fullname.clone())));
    }
    Ok(e)
}

/// What the connection must wait on before the reply.
pub enum Wait {
    /// A blocking command found nothing.
    Keys(Box<crate::list::Blocked>),
    /// A script or function to run off the worker thread.
    Script(Box<crate::scripting::Job>),
    /// WAIT: replicas' acknowledgements to wait for off the worker thread.
    Acks(Box<crate::repl_master::WaitAcks>),
}

/// Runs one request and appends its reply. A blocking command that has to
/// wait, or a script, appends nothing and returns what the connection must
/// wait on. CLIENT REPLY OFF/SKIP drop the reply (not pub/sub
/// confirmations, nor messages the command sent to its own client).
/// `hint` is what `prefetch` left for this request (the default if none).
pub fn execute(
    server: &Server,
    stats: &ThreadStats,
    client: &mut Client,
    args: &Args<'_>,
    hint: Hint,
    reply: &mut Reply,
) -> Option<Wait> {
    let start = reply.len();
    crate::pubsub::set_current(client.id());
    let (blocked, name) = execute_inner(server, stats, client, args, hint, reply);
    server.tracking.flush_bcast(&server.pubsub);
    crate::pubsub::set_current(0);
    let silenced = matches!(client.reply_mode, ReplyMode::Off | ReplyMode::Skip);
    if silenced && !name.is_some_and(|e| crate::pubsub::confirms(e.cmd.name)) {
        reply.truncate(start);
    }
    crate::pubsub::splice_self(reply, start);
    crate::pubsub::append_self_after(reply);
    // CLIENT CACHING applies to the next command (all of a transaction's).
    let client_cmd = name.is_some_and(|e| e.fullname.starts_with("client|"));
    if !client_cmd && client.multi.is_none() {
        client.caching = false;
    }
    client.reply_mode = match client.reply_mode {
        ReplyMode::Skip => ReplyMode::On,
        ReplyMode::SkipNext => ReplyMode::Skip,
        m => m,
    };
    blocked
}

fn execute_inner(
    server: &Server,
    stats: &ThreadStats,
    client: &mut Client,
    args: &Args<'_>,
    hint: Hint,
    reply: &mut Reply,
) -> (Option<Wait>, Option<&'static Entry>) {
    let e = match resolve_known(args, hint.entry) {
        Ok(e) => e,
        Err((e, err)) => {
            if let Some(e) = e {
                stats.commands[e.id].rejected.add(1);
            }
            reject(stats, client, reply, &err, e);
            return (None, None);
        }
    };
    let name = Some(e);
    if !client.authenticated && !e.has(flag::NO_AUTH) {
        stats.commands[e.id].rejected.add(1);
        reject(stats, client, reply, &CmdError::NoAuth, Some(e));
        return (None, name);
    }
    if client.in_subscribe_mode() && !crate::pubsub::allowed_when_subscribed(e.cmd.name) {
        stats.commands[e.id].rejected.add(1);
        let err = CmdError::SubscribeContext(e.fullname.clone());
        reject(stats, client, reply, &err, Some(e));
        return (None, name);
    }
    // One relaxed load for an unrestricted user (the default user's case).
    if !client.user.unrestricted.load(Relaxed) {
        if client.user.deleted.load(Relaxed) {
            client.close_after_reply = true;
            return (None, name);
        }
        if let Err(err) = crate::acl::check(server, client, e, args) {
            stats.commands[e.id].rejected.add(1);
            let err = if e.cmd.name == "exec" {
                client.end_multi();
                CmdError::ExecRejected(Box::new(err))
            } else {
                err
            };
            reject(stats, client, reply, &err, Some(e));
            return (None, name);
        }
    }
    if client.monitor && e.has(flag::READONLY | flag::WRITE | flag::MAY_REPLICATE) {
        stats.commands[e.id].rejected.add(1);
        reject(stats, client, reply, &CmdError::ReplicaKeyspace, Some(e));
        return (None, name);
    }
    // Our master's commands must all run, in order (Redis's "must obey"
    // client): no MISCONF, no BUSY, no OOM, no eviction for them.
    let from_master = damselfly_storage::from_master();
    // Matched, not `filter`ed: filtering an `Option<CmdError>` drops it
    // through a call after every command.
    let refused = match crate::persist::refusal(server, e) {
        Some(err) if !from_master => Some(err),
        _ => match crate::replicaof::refusal(server, e, client) {
            Some(err) => Some(err),
            None if from_master => None,
            None => crate::repl_master::refusal(server, e),
        },
    };
    if let Some(err) = refused {
        stats.commands[e.id].rejected.add(1);
        reject(stats, client, reply, &err, Some(e));
        return (None, name);
    }
    if !e.has(flag::ALLOW_BUSY) && !from_master {
        if let Some(err) = server.scripting.busy(server, client.id()) {
            stats.commands[e.id].rejected.add(1);
            reject(stats, client, reply, &err, Some(e));
            return (None, name);
        }
    }
    if server.config.maxmemory.load(Relaxed) != 0 && !crate::replicaof::ignores_maxmemory(server) {
        let full = crate::maxmemory::perform_evictions(server);
        // Invalidations of the keys just evicted reach this client before
        // its reply, as in Redis (eviction runs before the command).
        crate::pubsub::append_self_after(reply);
        if !client.info.outbox.take(reply) {
            client.close_after_reply = true;
        }
        if full && !from_master && crate::maxmemory::refused_when_full(e, client) {
            stats.commands[e.id].rejected.add(1);
            reject(stats, client, reply, &CmdError::OutOfMemory, Some(e));
            return (None, name);
        }
    }
    if client.multi.is_some() {
        if e.has(flag::NO_MULTI) {
            stats.commands[e.id].rejected.add(1);
            reject(stats, client, reply, &CmdError::NotInMulti, Some(e));
            return (None, name);
        }
        if !crate::transactions::runs_in_multi(e) {
            crate::transactions::queue(client, e, args);
            reply.simple(b"QUEUED");
            return (None, name);
        }
    }
    let ks = &server.keyspace;
    // The key's shard and hash, as warming found them (the hint was made
    // for the command's top-level entry: a subcommand's first argument is
    // no key of it).
    let known = hint
        .key
        .filter(|_| hint.entry.is_some_and(|h| std::ptr::eq(h, e)));
    // Waiting for a shard a script holds ends in BUSY once the script has
    // run past its threshold.
    let id = client.id();
    let abort = || !from_master && server.scripting.busy(server, id).is_some();
    // A read leaves a snapshot's debt to the snapshot's thread.
    let read = e.has(flag::READONLY);
    // With the latency monitor on, a long wait for the shard locks (a
    // snapshot's debt paid, another holder) is reported as `shard-lock`.
    let lock_watch =
        (server.config.observe.latency_threshold.load(Relaxed) > 0).then(std::time::Instant::now);
    let locked = if e.has(flag::ALL_SHARDS) {
        ks.lock_all_or_abort(abort)
    } else if e.has(flag::SKIP_MONITOR) && crate::scripting::is_script(e) {
        // A script takes the Lua VM, then its shards, when it runs.
        Some(ks.lock_none())
    } else if let (Keys::Range(1, 1, _), Some(key)) = (e.cmd.keys, args.get(1)) {
        // One key (GET, SET, LPUSH, HSET...): no position list to build,
        // nothing to sort.
        let shard = known.map_or_else(|| ks.shard_of(key), |(shard, _)| shard);
        if read {
            ks.read_single_or_abort(shard, abort)
        } else if e.has(flag::MOVABLE_KEYS) {
            ks.lock_single_or_abort(shard, abort)
        } else {
            // Its one key is all it changes (MOVE's other DB included).
            ks.lock_key_or_abort(shard, key, abort)
        }
    } else {
        let mut shards: SmallVec<[usize; 4]> = SmallVec::new();
        for i in e.key_positions(args.len(), |i| args.get(i)) {
            if let Some(k) = args.get(i) {
                shards.push(ks.shard_of(k));
            }
        }
        match shards.len() {
            0 => Some(ks.lock_none()),
            _ if read => ks.read_or_abort(&mut shards, abort),
            _ => ks.lock_or_abort(&mut shards, abort),
        }
    };
    if let Some(t) = lock_watch {
        crate::observe::latency_event(server, "shard-lock", t.elapsed().as_millis() as u64);
    }
    let Some(locked) = locked else {
        let err = server
            .scripting
            .busy(server, id)
            .unwrap_or(CmdError::BusyScript);
        stats.commands[e.id].rejected.add(1);
        reject(stats, client, reply, &err, Some(e));
        return (None, name);
    };
    let now = match last_reading() {
        0 => damselfly_storage::now_ms(),
        t => damselfly_storage::ms_at(t),
    };
    let mut ctx = Ctx {
        server,
        stats,
        client,
        reply,
        locked,
        now,
        block: None,
        script: None,
        wait: None,
    };
    let walks = ctx.locked.is_empty();
    damselfly_replication::master::enter(&server.repl, walks);
    match (known, args.get(1)) {
        (Some((_, hash)), Some(key)) => {
            damselfly_core::table::with_known_hash(key, hash, || call(&mut ctx, e, args));
        }
        _ => call(&mut ctx, e, args),
    }
    // Propagated while the locks are held: the stream's order is the
    // commit order. The command first, then the pops of the clients it
    // serves.
    if let Some(off) = damselfly_replication::master::flush(&server.repl) {
        ctx.client.info.woff.store(off, Relaxed);
    }
    // Clients blocked on keys this command made ready are served before
    // anyone else can see the keys (after a whole EXEC, not after each of
    // its commands).
    crate::list::serve_ready(server, ctx.stats, &mut ctx.locked, now);
    damselfly_replication::master::leave(&server.repl);
    drop(ctx.locked);
    if let Some(job) = ctx.script.take() {
        return (Some(Wait::Script(job)), name);
    }
    if let Some(acks) = ctx.wait.take() {
        return (Some(Wait::Acks(acks)), name);
    }
    (ctx.block.take().map(Wait::Keys), name)
}

/// The wait CLIENT PAUSE imposes on this request before it runs, if any
/// (requests that fail their checks are answered at once).
pub fn pause_wait(
    server: &std::sync::Arc<Server>,
    client: &Client,
    args: &Args<'_>,
) -> Option<crate::pause::PauseWait> {
    let e = resolve(args).ok()?;
    crate::pause::Pause::must_wait(server, e, args, client)
}

/// A request refused before it ran: its error, counted, and a failed
/// transaction if one is open.
/// A refused EXEC discards the transaction and says why, as Redis does.
fn reject(
    stats: &ThreadStats,
    client: &mut Client,
    reply: &mut Reply,
    err: &CmdError,
    e: Option<&Entry>,
) {
    count_error(stats, err);
    if e.is_some_and(|e| e.cmd.name == "exec") && !matches!(err, CmdError::ExecRejected(_)) {
        client.end_multi();
        let err = CmdError::ExecRejected(Box::new(err.clone()));
        reply.error(&err.to_string());
        return;
    }
    reply.error(&err.to_string());
    client.flag_multi();
}

/// Runs a resolved command's handler with the shards `ctx` holds, counts
/// it and renders its error (EXEC calls this for each queued command).
pub(crate) fn call(ctx: &mut Ctx<'_, '_>, e: &'static Entry, args: &Args<'_>) {
    ctx.server
        .monitors
        .feed_script(&ctx.server.pubsub, e, ctx.client, args);
    let propagating = crate::repl_master::before(ctx, e);
    // A script's commands read the clock themselves: the script's own
    // work between them is no part of their time.
    let chained = match last_reading() {
        t if t != 0 && !ctx.client.in_script => Some(t),
        _ => None,
    };
    let start = chained.unwrap_or_else(damselfly_storage::mono_ns);
    let at = ctx.reply.len();
    let result = (e.cmd.handler)(ctx, args);
    if let Some(p) = propagating {
        crate::repl_master::after(ctx, e, args, p, result.is_ok());
    }
    // Inside EXEC, what a command sent to its own client precedes that
    // command's reply within EXEC's array (Redis 7.0 writes it there). A
    // script's commands reply to the script: their messages wait for the
    // script's own reply.
    if ctx.client.in_exec && !ctx.client.in_script {
        crate::pubsub::splice_self(ctx.reply, at);
    }
    if e.has(flag::READONLY) {
        crate::tracking::after_read(ctx, e, args);
    }
    let end = damselfly_storage::mono_ns();
    if chained.is_some() {
        LAST_READING.with(|r| r.set(end));
    }
    let ns = end.saturating_sub(start);
    let usec = ns / 1000;
    crate::observe::after_call(ctx, e, args, ns);
    ctx.server
        .monitors
        .feed(&ctx.server.pubsub, e, ctx.client, args);
    let stats = ctx.stats;
    let c = &stats.commands[e.id];
    c.calls.add(1);
    c.usec.add(usec);
    stats.total_commands.add(1);
    ctx.client.info.last_cmd.store(e.id + 1, Relaxed);
    ctx.client.info.last_ms.store(ctx.now, Relaxed);
    if let Err(err) = result {
        c.failed.add(1);
        count_error(stats, &err);
        ctx.reply.error(&err.to_string());
    }
}
