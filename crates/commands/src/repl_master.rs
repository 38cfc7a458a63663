//! Replication, master side, as commands see it: SYNC, PSYNC, REPLCONF,
//! WAIT and ROLE; the dispatcher's propagation hooks; min-replicas-to-write;
//! INFO's replication fields. The stream, backlog and replica registry
//! live in `crates/replication` (`master.rs`).
//!
//! A replica is an ordinary connection that sent SYNC or PSYNC: its stream
//! goes through the connection's outbox (as pub/sub messages do), under the
//! `client-output-buffer-limit replica` class. A full sync runs on its own
//! thread: it takes the snapshot slot, locks every shard, registers the
//! replica at the current offset and begins a forkless snapshot into
//! memory under those locks, then sends `+FULLRESYNC`, the RDB and the
//! stream buffered since.

use crate::args::{eq, lossy, parse_i64};
use crate::client::ClientInfo;
use crate::cmd;
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::list::BlockOp;
use crate::state::Server;
use crate::table::{flag, Command, Entry, Keys::None as NoKeys};
use damselfly_core::list::End;
use damselfly_protocol::Args;
use damselfly_replication::{master, Link};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

pub(crate) static COMMANDS: &[Command] = &[
    cmd!(
        "psync",
        -3,
        "admin noscript no_async_loading no_multi",
        NoKeys,
        "@admin @slow @dangerous",
        "server",
        "2.8.0",
        psync
    ),
    cmd!(
        "sync",
        1,
        "admin noscript no_async_loading no_multi",
        NoKeys,
        "@admin @slow @dangerous",
        "server",
        "1.0.0",
        sync
    ),
    cmd!(
        "replconf",
        -1,
        "admin noscript loading stale allow_busy",
        NoKeys,
        "@admin @slow @dangerous",
        "server",
        "3.0.0",
        replconf
    ),
    cmd!(
        "wait",
        3,
        "noscript",
        NoKeys,
        "@slow @connection",
        "generic",
        "3.0.0",
        wait
    ),
    cmd!(
        "role",
        1,
        "noscript loading stale fast",
        NoKeys,
        "@admin @fast @dangerous",
        "server",
        "2.8.12",
        role
    ),
];

/// A replica's connection, as the stream sees it.
struct OutboxLink {
    info: Arc<ClientInfo>,
    pubsub: Arc<crate::pubsub::PubSub>,
}

impl Link for OutboxLink {
    fn send(&self, bytes: &[u8]) -> bool {
        self.info
            .outbox
            .push_raw(bytes, self.pubsub.limit_replica.get())
    }

    fn send_bulk(&self, bytes: &[u8]) -> bool {
        self.info
            .outbox
            .push_raw(bytes, crate::pubsub::Limit::default())
    }
}

fn link(server: &Server, info: &Arc<ClientInfo>) -> Arc<dyn Link> {
    Arc::new(OutboxLink {
        info: info.clone(),
        pubsub: server.pubsub.clone(),
    })
}

/// The replica's address as INFO shows it: what it announced
/// (REPLCONF ip-address), else its connection's IP.
fn replica_ip(server: &Server, info: &ClientInfo) -> String {
    if let Some(ip) = server.repl.announced(info.id).ip {
        return ip;
    }
    match info.addr.rsplit_once(':') {
        Some((ip, _)) => ip.trim_start_matches('[').trim_end_matches(']').into(),
        None => info.addr.clone(),
    }
}

fn backlog_size(server: &Server) -> usize {
    server
        .config
        .get("repl-backlog-size")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1 << 20)
}

/// PSYNC replicationid offset
fn psync(ctx: &mut Ctx, args: &Args) -> CmdResult {
    if ctx.client.info.replica.load(Relaxed) {
        return Ok(());
    }
    let replid = args.get(1).unwrap_or_default();
    let server = ctx.server;
    // An old master handing its role over (FAILOVER) asks us to promote
    // ourselves: only when we follow its very history.
    if args.get(3).is_some_and(|a| eq(a, "failover")) {
        if !server.replica.following() {
            return Err(CmdError::Other(
                "ERR PSYNC FAILOVER can't be sent to a master.".into(),
            ));
        }
        if replid != server.repl.state().replid.as_bytes() {
            return Err(CmdError::Other(
                "ERR PSYNC FAILOVER replid must match my replid.".into(),
            ));
        }
        crate::replicaof::stop(server);
        server.host.log(&format!(
            "Failover request received for replid {}; MASTER MODE enabled (failover request from 'id={} addr={}')",
            lossy(replid),
            ctx.client.id(),
            ctx.client.info.addr
        ));
    }
    sync_allowed(server)?;
    let offset = parse_i64(args.get(2).unwrap_or_default()).ok_or(CmdError::NotInteger)?;
    let info = ctx.client.info.clone();
    let ip = replica_ip(server, &info);
    let mut head = Vec::new();
    if server
        .repl
        .try_partial_sync(info.id, ip, link(server, &info), replid, offset, &mut head)
    {
        info.replica.store(true, Relaxed);
        ctx.reply.raw(&head);
        server.host.log(&format!(
            "Partial resynchronization request from {} accepted.",
            info.addr
        ));
        return Ok(());
    }
    full_sync(ctx, true)
}

/// SYNC: the pre-PSYNC full synchronization (no +FULLRESYNC line).
fn sync(ctx: &mut Ctx, _args: &Args) -> CmdResult {
    if ctx.client.info.replica.load(Relaxed) {
        return Ok(());
    }
    sync_allowed(ctx.server)?;
    full_sync(ctx, false)
}

/// No replica may sync from us while we fail over, nor while we are a
/// replica whose own link is not up (we would have nothing to pass on).
fn sync_allowed(server: &Server) -> CmdResult {
    if crate::failover::active() {
        return Err(CmdError::Other(
            "NOMASTERLINK Can't SYNC while failing over".into(),
        ));
    }
    if server.replica.following() && !server.replica.link_up() {
        return Err(CmdError::NoMasterLink);
    }
    Ok(())
}

/// Starts a full sync on its own thread; the replica gets everything,
/// +FULLRESYNC included, through its outbox, in order.
fn full_sync(ctx: &mut Ctx, psync: bool) -> CmdResult {
    let server = ctx.server;
    let owner = crate::persist::owner(server).ok_or(CmdError::Other("ERR".into()))?;
    let info = ctx.client.info.clone();
    info.replica.store(true, Relaxed);
    let eof = server.repl.announced(info.id).capa_eof
        && server.config.get("repl-diskless-sync").as_deref() == Some("yes");
    server.host.log(&format!(
        "Replica {} asks for synchronization; full resync",
        info.addr
    ));
    let spawned = std::thread::Builder::new()
        .name("repl-sync".into())
        .spawn(move || run_full_sync(&owner, &info, psync, eof));
    if spawned.is_err() {
        return Err(CmdError::Other("ERR".into()));
    }
    start_cron(server);
    Ok(())
}

fn run_full_sync(server: &Arc<Server>, info: &Arc<ClientInfo>, psync: bool, eof: bool) {
    // repl-diskless-sync-delay: Redis waits for more replicas to share one
    // diskless transfer; each replica gets its own snapshot here, so the
    // wait only postpones it (as a test that sets it expects).
    let delay: u64 = server
        .config
        .get("repl-diskless-sync-delay")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if eof && delay > 0 {
        std::thread::sleep(std::time::Duration::from_secs(delay));
    }
    // One snapshot at a time: a running BGSAVE owns the shards' marks.
    while !crate::persist::claim(server) {
        if info.gone.load(Relaxed) || info.outbox.is_closed() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let ks = &server.keyspace;
    let ip = replica_ip(server, info);
    let link = link(server, info);
    // A replica of a replica: the snapshot and the offset it starts from
    // are taken while our own link applies nothing.
    let begun = server.replica.quiesced(|| {
        let mut all = ks.lock_all();
        let (replid, offset) =
            server
                .repl
                .begin_full_sync(info.id, ip, link.clone(), backlog_size(server));
        if psync {
            link.send_bulk(format!("+FULLRESYNC {replid} {offset}\r\n").as_bytes());
        }
        // The DB our stream is in, which the replica's master client
        // starts in (a replica passes on its master's stream, which
        // selects no DB again for it).
        let mut aux = crate::persist::aux_fields().to_vec();
        aux.push(("repl-stream-db", crate::replicaof::stream_db().to_string()));
        aux.push(("repl-id", replid.to_string()));
        aux.push(("repl-offset", offset.to_string()));
        damselfly_persistence::snapshot::begin_memory(
            ks,
            &mut all,
            crate::persist::limits(server),
            &aux,
            &crate::scripting::functions::library_codes(server),
        )
    });
    let rdb = begun.and_then(|s| s.finish(ks));
    crate::persist::release(server);
    let rdb = match rdb {
        Ok(rdb) => rdb,
        Err(e) => {
            server
                .host
                .log(&format!("Can't produce the RDB for a replica: {e}"));
            server.repl.abort_full_sync(info.id);
            disconnect(server, info.id);
            return;
        }
    };
    let payload = frame(&rdb, eof);
    if server.repl.finish_full_sync(info.id, &payload, eof) {
        server.host.log(&format!(
            "Synchronization with replica {} succeeded ({} bytes)",
            info.addr,
            rdb.len()
        ));
    }
}

/// The RDB as the replica reads it: `$<len>\r\n<rdb>`, or with
/// `capa eof` and diskless sync `$EOF:<mark>\r\n<rdb><mark>`.
fn frame(rdb: &[u8], eof: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(rdb.len() + 100);
    if eof {
        let mark = damselfly_replication::ReplId::random();
        out.extend_from_slice(b"$EOF:");
        out.extend_from_slice(mark.as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(rdb);
        out.extend_from_slice(mark.as_bytes());
    } else {
        out.extend_from_slice(format!("${}\r\n", rdb.len()).as_bytes());
        out.extend_from_slice(rdb);
    }
    out
}

fn disconnect(server: &Server, id: u64) {
    server.clients.for_each_locked(|c| {
        if c.id == id {
            c.disconnect();
        }
    });
}

/// The once-a-second replication cron: PINGs replicas every
/// `repl-ping-replica-period` seconds (so their links do not time out) and
/// applies `repl-backlog-size`. Started with the first replica.
fn start_cron(server: &Server) {
    static STARTED: std::sync::Once = std::sync::Once::new();
    let Some(owner) = crate::persist::owner(server) else {
        return;
    };
    STARTED.call_once(move || {
        let weak = Arc::downgrade(&owner);
        drop(owner);
        let _ = std::thread::Builder::new()
            .name("repl-cron".into())
            .spawn(move || {
                let mut ticks = 0u64;
                loop {
                    std::thread::sleep(std::time::Duration::from_secs(1));
                    let Some(server) = weak.upgrade() else {
                        return;
                    };
                    ticks += 1;
                    let ttl = server
                        .config
                        .get("repl-backlog-ttl")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(3600);
                    if server.repl.expire_backlog(ttl) {
                        server
                            .host
                            .log("Replication backlog freed after its TTL without replicas");
                        continue;
                    }
                    // A replica's backlog (its master's stream) too.
                    if server.repl.backlog_info().0 {
                        server.repl.ensure_backlog(backlog_size(&server));
                    }
                    drop_timed_out(&server);
                    let period = server
                        .config
                        .get("repl-ping-replica-period")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(10u64)
                        .max(1);
                    // No PING while a failover waits for a replica to
                    // reach our offset.
                    if ticks % period == 0
                        && !server.repl.replicas().is_empty()
                        && !crate::failover::active()
                    {
                        let mut ping = Vec::new();
                        master::encode(&mut ping, &[b"ping"]);
                        server.repl.feed_raw(&ping);
                    }
                }
            });
    });
}

/// Online replicas silent (no REPLCONF ACK) for longer than `repl-timeout`
/// seconds are disconnected, as Redis does.
fn drop_timed_out(server: &Server) {
    let timeout: u64 = server
        .config
        .get("repl-timeout")
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    for r in server.repl.replicas() {
        if r.state == "online" && timeout > 0 && r.lag > timeout {
            server.host.log(&format!(
                "Disconnecting timedout replica: {}:{}",
                r.ip, r.port
            ));
            server.repl.remove_replica(r.id);
            disconnect(server, r.id);
        }
    }
}

/// REPLCONF option value [option value ...]
fn replconf(ctx: &mut Ctx, args: &Args) -> CmdResult {
    if args.len() % 2 == 0 {
        return Err(CmdError::Syntax);
    }
    let id = ctx.client.id();
    let repl = &ctx.server.repl;
    let mut i = 1;
    while i + 1 < args.len() {
        let opt = args.get(i).unwrap_or_default();
        let v = args.get(i + 1).unwrap_or_default();
        if eq(opt, "listening-port") {
            let port = parse_i64(v).ok_or(CmdError::NotInteger)?;
            repl.announce(id, |a| a.port = port.clamp(0, 65535) as u16);
        } else if eq(opt, "ip-address") {
            if v.is_empty() || v.len() >= 46 {
                return Err(CmdError::Other(format!(
                    "ERR REPLCONF ip-address provided by replica instance is too long: {} bytes",
                    v.len()
                )));
            }
            repl.announce(id, |a| a.ip = Some(lossy(v)));
        } else if eq(opt, "capa") {
            if eq(v, "eof") {
                repl.announce(id, |a| a.capa_eof = true);
            }
        } else if eq(opt, "ack") {
            // A replica's acknowledgement gets no reply.
            if ctx.client.info.replica.load(Relaxed) {
                if let Some(off) = parse_i64(v) {
                    repl.ack(id, off);
                }
            }
            return Ok(());
        } else if eq(opt, "getack") {
            // Asked of replicas by their master; as a master we have none
            // to answer, and Redis sends no reply either.
            return Ok(());
        } else if eq(opt, "rdb-only") || eq(opt, "rdb-filter-only") {
            // Accepted, as Redis accepts them from redis-cli --rdb; the
            // replica still gets the stream after the RDB, which such a
            // client simply stops reading.
        } else {
            return Err(CmdError::Other(format!(
                "ERR Unrecognized REPLCONF option: {}",
                lossy(opt)
            )));
        }
        i += 2;
    }
    ctx.reply.ok();
    Ok(())
}

/// What WAIT waits for, off the worker thread.
pub struct WaitAcks {
    server: Arc<Server>,
    offset: i64,
    want: usize,
    /// Unix ms, 0 for no timeout.
    deadline: u64,
    info: Arc<ClientInfo>,
}

impl WaitAcks {
    /// Polls the replicas' acknowledgements until enough reached the
    /// offset, the deadline passes or the client goes; returns the reply.
    pub fn run(self) -> Vec<u8> {
        let mut n = self.server.repl.acked(self.offset);
        while n < self.want
            && (self.deadline == 0 || damselfly_storage::now_ms() < self.deadline)
            && !self.info.gone.load(Relaxed)
            && !self.info.outbox.is_closed()
        {
            std::thread::sleep(std::time::Duration::from_millis(5));
            n = self.server.repl.acked(self.offset);
        }
        format!(":{n}\r\n").into_bytes()
    }
}

/// WAIT numreplicas timeout
fn wait(ctx: &mut Ctx, args: &Args) -> CmdResult {
    if ctx.server.replica.following() {
        return Err(CmdError::Other("ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated.".into()));
    }
    let want = parse_i64(args.get(1).unwrap_or_default()).ok_or(CmdError::NotInteger)?;
    let timeout = parse_i64(args.get(2).unwrap_or_default()).ok_or(CmdError::InvalidTimeout)?;
    if timeout < 0 {
        return Err(CmdError::TimeoutNegative);
    }
    let repl = &ctx.server.repl;
    // Where the stream was after this client's last write.
    let offset = ctx.client.info.woff.load(Relaxed);
    let acked = repl.acked(offset);
    if ctx.client.in_exec || acked as i64 >= want || !repl.active() {
        ctx.reply.int(acked as i64);
        return Ok(());
    }
    let mut getack = Vec::new();
    master::encode(&mut getack, &[&b"REPLCONF"[..], b"GETACK", b"*"]);
    repl.feed_raw(&getack);
    let owner = crate::persist::owner(ctx.server).ok_or(CmdError::Other("ERR".into()))?;
    ctx.wait = Some(WaitAcks {
        server: owner,
        offset,
        want: want.max(0) as usize,
        deadline: if timeout == 0 {
            0
        } else {
            ctx.now.saturating_add(timeout as u64)
        },
        info: ctx.client.info.clone(),
    });
    Ok(())
}

/// ROLE, for a master: its offset and each replica's address and
/// acknowledged offset.
fn role(ctx: &mut Ctx, _args: &Args) -> CmdResult {
    if crate::replicaof::role_replica(ctx) {
        return Ok(());
    }
    let repl = &ctx.server.repl;
    let offset = repl.state().master_repl_offset;
    let replicas = repl.replicas();
    let r = &mut *ctx.reply;
    r.array(3);
    r.bulk(b"master");
    r.int(offset);
    r.array(replicas.len());
    for rep in &replicas {
        r.array(3);
        r.bulk(rep.ip.as_bytes());
        r.bulk(rep.port.to_string().as_bytes());
        r.bulk(rep.offset.to_string().as_bytes());
    }
    Ok(())
}

/// Whether this command's changes may go to replicas (Redis propagates
/// write commands, and PFCOUNT and PUBLISH, flagged may_replicate).
fn propagates(e: &Entry) -> bool {
    e.has(flag::WRITE) || matches!(e.cmd.name, "pfcount" | "publish")
}

/// What `after` compares: the command's DB and the changes counted before.
pub(crate) struct Before {
    db: usize,
    changes: u64,
}

/// Changes made in the shards the command holds, less the keys the
/// server removed meanwhile (their DELs are propagated on their own).
fn changes(ctx: &mut Ctx) -> u64 {
    let dirty: u64 = ctx.locked.iter_mut().map(|s| s.stats.dirty).sum();
    dirty.wrapping_sub(master::server_changes())
}

/// Before a handler runs: None (one relaxed load) when nothing is
/// propagated.
pub(crate) fn before(ctx: &mut Ctx, e: &Entry) -> Option<Before> {
    // Our master's commands are its stream's, not ours (see replicaof.rs).
    if !ctx.server.repl.active() || !propagates(e) || damselfly_storage::from_master() {
        return None;
    }
    Some(Before {
        db: ctx.client.db,
        changes: changes(ctx),
    })
}

/// After the handler: a command that changed something is queued for the
/// stream, as itself or as the rewrite it asked for. PUBLISH always is, and
/// so are, when they succeed, the flushes and SWAPDB (even of nothing) and
/// the writes that hold no shard (FUNCTION LOAD, DELETE, FLUSH, RESTORE),
/// as Redis propagates them.
pub(crate) fn after(ctx: &mut Ctx, e: &Entry, args: &Args, b: Before, ok: bool) {
    let forced = e.cmd.name == "publish"
        || (ok
            && (matches!(e.cmd.name, "flushall" | "flushdb" | "swapdb")
                || (e.has(flag::WRITE) && ctx.locked.is_empty())));
    if forced || changes(ctx) != b.changes {
        master::command(b.db, || args.iter().map(<[u8]>::to_vec).collect());
    } else {
        master::discard_instead();
    }
}

/// A blocked client served by someone else's push: its pop goes to the
/// stream as the non-blocking command it amounts to (BLPOP as LPOP...).
pub(crate) fn served_pop(db: usize, op: &BlockOp, key: &[u8]) {
    // Lower case, as Redis 7.0 writes the served LMOVE.
    let end = |e: &End| -> &[u8] {
        match e {
            End::Head => b"left",
            End::Tail => b"right",
        }
    };
    let args: Vec<&[u8]> = match op {
        BlockOp::Pop(End::Head) => vec![b"LPOP", key],
        BlockOp::Pop(End::Tail) => vec![b"RPOP", key],
        BlockOp::MPop(e, count) => {
            let pop: &[u8] = if matches!(e, End::Head) {
                b"LPOP"
            } else {
                b"RPOP"
            };
            return also(db, &[pop, key, count.to_string().as_bytes()]);
        }
        BlockOp::Move { dst, from, to } => vec![b"LMOVE", key, dst, end(from), end(to)],
        BlockOp::ZPop { max } => vec![if *max { b"ZPOPMAX" } else { b"ZPOPMIN" }, key],
        BlockOp::ZMPop { max, count } => {
            let pop: &[u8] = if *max { b"ZPOPMAX" } else { b"ZPOPMIN" };
            return also(db, &[pop, key, count.to_string().as_bytes()]);
        }
        BlockOp::Stream(_) => return,
    };
    also(db, &args);
}

fn also(db: usize, args: &[&[u8]]) {
    master::also(db, args.iter().map(|a| a.to_vec()).collect());
}

/// min-replicas-to-write: a write refused while fewer good replicas are
/// connected (one relaxed load when the option is off).
pub(crate) fn refusal(server: &Server, e: &Entry) -> Option<CmdError> {
    (e.has(flag::WRITE) && too_few_replicas(server)).then_some(CmdError::NoReplicas)
}

/// Fewer replicas than min-replicas-to-write acknowledged within
/// min-replicas-max-lag seconds (false when either is 0).
pub(crate) fn too_few_replicas(server: &Server) -> bool {
    let min = server.config.min_replicas_to_write.load(Relaxed);
    if min == 0 {
        return false;
    }
    let lag = server.config.min_replicas_max_lag.load(Relaxed);
    lag != 0 && (server.repl.good_replicas(lag) as u64) < min
}

/// INFO's replication section, for a master.
pub fn info_replication(server: &Server, line: &mut dyn FnMut(&str, &dyn std::fmt::Display)) {
    let repl = &server.repl;
    let state = repl.state().clone();
    let replicas = repl.replicas();
    let (active, _, first, histlen) = repl.backlog_info();
    crate::replicaof::info_role(server, &mut *line);
    line("connected_slaves", &replicas.len());
    for (i, r) in replicas.iter().enumerate() {
        line(
            &format!("slave{i}"),
            &format_args!(
                "ip={},port={},state={},offset={},lag={}",
                r.ip, r.port, r.state, r.offset, r.lag
            ),
        );
    }
    line("master_failover_state", &crate::failover::state_name());
    line("master_replid", &state.replid);
    line("master_replid2", &state.replid2);
    line("master_repl_offset", &state.master_repl_offset);
    line("second_repl_offset", &state.second_repl_offset);
    line("repl_backlog_active", &(active as u8));
    line("repl_backlog_size", &backlog_size(server));
    line("repl_backlog_first_byte_offset", &first);
    line("repl_backlog_histlen", &histlen);
}

/// The replication fields an RDB saved to disk carries (Redis's
/// `repl-stream-db`, `repl-id`, `repl-offset`), so that after a restart
/// replicas continue from us, or we from our master, with a partial
/// resync: a replica's always, a master's while it has a backlog.
/// Called under every shard lock, where the offset names the data (on a
/// replica, once its link is between commands: see `try_quiesced`).
pub(crate) fn rdb_aux(server: &Server) -> Vec<(&'static str, String)> {
    let following = server.replica.following();
    if !following && !server.repl.backlog_info().0 {
        return Vec::new();
    }
    let wait = std::time::Duration::from_millis(50);
    let Some(st) = server.replica.try_quiesced(wait, || {
        (server.repl.state().clone(), crate::replicaof::stream_db())
    }) else {
        return Vec::new();
    };
    let (st, db) = st;
    vec![
        ("repl-stream-db", db.to_string()),
        ("repl-id", st.replid.to_string()),
        ("repl-offset", st.master_repl_offset.to_string()),
    ]
}

/// Keys the last RDB load found expired, by DB and name.
static EXPIRED_AT_LOAD: parking_lot::Mutex<Vec<(usize, Vec<u8>)>> =
    parking_lot::Mutex::new(Vec::new());

pub(crate) fn set_expired_at_load(keys: Vec<(usize, Vec<u8>)>) {
    *EXPIRED_AT_LOAD.lock() = keys;
}

/// At start-up, after loading an RDB with the fields of `rdb_aux`: a
/// replica takes them as the point its master's history reached (returns
/// true: its first PSYNC offers them); a master keeps the old history as
/// replid2 under a new replid, with an empty backlog from that offset, so
/// its old replicas continue partially (Redis 7.0 does both). The keys
/// the load found expired go into that backlog as DELs, as the replicas
/// still hold them.
pub fn restore_from_rdb(server: &Server, aux: &[(Vec<u8>, Vec<u8>)], replica: bool) -> bool {
    let expired = std::mem::take(&mut *EXPIRED_AT_LOAD.lock());
    let get = |k: &str| {
        aux.iter()
            .find(|(n, _)| n == k.as_bytes())
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    };
    let id = get("repl-id").and_then(|v| damselfly_replication::ReplId::parse(v.as_bytes()));
    let offset = get("repl-offset").and_then(|v| v.parse::<i64>().ok());
    let (Some(id), Some(offset)) = (id, offset.filter(|&o| o >= 0)) else {
        return false;
    };
    let db = get("repl-stream-db")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    {
        let mut st = server.repl.state();
        st.replid = id;
        st.master_repl_offset = offset;
        if !replica {
            st.shift_replid();
        }
    }
    if replica {
        crate::replicaof::set_stream_db(db);
        return true;
    }
    server.repl.ensure_backlog(backlog_size(server));
    let del: &[u8] = if server.config.get("lazyfree-lazy-expire").as_deref() == Some("yes") {
        b"UNLINK"
    } else {
        b"DEL"
    };
    for (db, key) in expired {
        server.repl.append(&[master::Op {
            db,
            args: vec![del.to_vec(), key],
        }]);
    }
    true
}

/// INFO stats: sync_full, sync_partial_ok, sync_partial_err.
pub fn sync_counters(server: &Server) -> (u64, u64, u64) {
    server.repl.sync_counters()
}

/// The running command is propagated as `args` instead of itself (called
/// once per command it amounts to); nothing is built while no replica
/// has ever synced.
pub(crate) fn instead(server: &Server, args: &[&[u8]]) {
    if server.repl.active() {
        master::instead(args.iter().map(|a| a.to_vec()).collect());
    }
}
