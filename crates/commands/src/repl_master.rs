//! Replication, master side, as commands see it: SYNC, PSYNC, REPLCONF,
//! WAIT and ROLE; the dispatcher's propagation hooks; min-replicas-to-write;
//! INFO's replication fields. The stream, backlog and replica registry
//! live in `crates/replication` (`master.rs`).
//!
//! A replica is an ordinary connection that sent SYNC or PSYNC: its stream
//! goes through the connection's outbox (as pub/sub messages do), under the
//! `client-output-buffer-limit replica` class. A full sync runs on its own
//! thread: it takes the snapshot slot, locks every shard, registers its
//! replicas at the current offset and begins a forkless snapshot under
//! those locks, then streams the RDB (diskless: straight from the
//! snapshot; disk: from the saved file) and the stream buffered since.

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

/// Replicas that share one full sync's snapshot, as Redis shares one RDB:
/// a diskless transfer takes every replica that asks before it starts
/// (`repl-diskless-sync-delay`, cut short by
/// `repl-diskless-sync-max-replicas`); a disk snapshot takes those that
/// ask while its file is still being written.
#[derive(Default)]
pub struct FullSyncs(parking_lot::Mutex<Groups>);

#[derive(Default)]
struct Groups {
    /// A diskless transfer gathering replicas; its thread waits out the
    /// delay, then takes them all.
    forming: Option<Vec<Member>>,
    /// The disk snapshot being written, and its +FULLRESYNC point.
    disk: Option<DiskGroup>,
}

struct DiskGroup {
    members: Vec<Member>,
    replid: damselfly_replication::ReplId,
    offset: i64,
}

/// A replica waiting for a full sync; `psync`: it gets +FULLRESYNC first.
struct Member {
    info: Arc<ClientInfo>,
    psync: bool,
}

/// RDB bytes are passed on in chunks of this size.
const CHUNK: usize = 64 << 10;
/// The snapshot goes on only while each replica has less than this queued:
/// what bounds a full sync's memory on the master.
const QUEUED_MAX: usize = 4 << 20;

fn alive(info: &ClientInfo) -> bool {
    !info.gone.load(Relaxed) && !info.outbox.is_closed()
}

/// Starts (or joins) a full sync; the replica gets everything,
/// +FULLRESYNC included, through its outbox, in order.
fn full_sync(ctx: &mut Ctx, psync: bool) -> CmdResult {
    let server = ctx.server;
    let owner = crate::persist::owner(server).ok_or(CmdError::Other("ERR".into()))?;
    let info = ctx.client.info.clone();
    info.replica.store(true, Relaxed);
    let eof = server.repl.announced(info.id).capa_eof
        && server.config.get("repl-diskless-sync").as_deref() == Some("yes");
    server
        .host
        .log(&format!("Replica {} asks for synchronization", info.addr));
    server
        .host
        .log(&format!("Full resync requested by replica {}", info.addr));
    let member = Member { info, psync };
    start_cron(server);
    let mut groups = server.full_syncs.0.lock();
    if eof {
        if let Some(forming) = groups.forming.as_mut() {
            forming.push(member);
            return Ok(());
        }
        groups.forming = Some(vec![member]);
        drop(groups);
        return spawn(move || diskless_sync(&owner));
    }
    if let Some(d) = groups.disk.as_mut() {
        let with: Vec<u64> = d.members.iter().map(|m| m.info.id).collect();
        let info = &member.info;
        let link = link(server, info);
        if server
            .repl
            .join_full_sync(info.id, replica_ip(server, info), link.clone(), &with)
        {
            if psync {
                link.send_bulk(format!("+FULLRESYNC {} {}\r\n", d.replid, d.offset).as_bytes());
            }
            server.host.log(&format!(
                "Waiting for end of BGSAVE for SYNC of replica {}",
                info.addr
            ));
            d.members.push(member);
            return Ok(());
        }
    }
    drop(groups);
    spawn(move || disk_sync(&owner, member))
}

fn spawn(f: impl FnOnce() + Send + 'static) -> CmdResult {
    match std::thread::Builder::new()
        .name("repl-sync".into())
        .spawn(f)
    {
        Ok(_) => Ok(()),
        Err(_) => Err(CmdError::Other("ERR".into())),
    }
}

/// Registers `members` at the current offset (the caller holds every
/// shard) and queues +FULLRESYNC (and `head`) to each.
fn register(
    server: &Server,
    members: &[Member],
    head: &[u8],
) -> (damselfly_replication::ReplId, i64) {
    let mut at = (damselfly_replication::ReplId::random(), 0);
    for m in members {
        let link = link(server, &m.info);
        at = server.repl.begin_full_sync(
            m.info.id,
            replica_ip(server, &m.info),
            link.clone(),
            backlog_size(server),
        );
        let mut out = Vec::new();
        if m.psync {
            out.extend_from_slice(format!("+FULLRESYNC {} {}\r\n", at.0, at.1).as_bytes());
        }
        out.extend_from_slice(head);
        link.send_bulk(&out);
    }
    at
}

/// After the RDB: each replica still there gets `tail` (the `$EOF:` form's
/// end mark, sent as its phase changes, so that its first ACK cannot come
/// before), then the stream buffered since the snapshot (for the `$EOF:`
/// form after that ACK).
fn finish(server: &Server, members: &[Member], eof: bool, tail: &[u8], bytes: u64) {
    for m in members {
        if server.repl.finish_full_sync(m.info.id, tail, eof) {
            server.host.log(&format!(
                "Synchronization with replica {} succeeded ({bytes} bytes)",
                m.info.addr
            ));
        }
    }
}

fn fail(server: &Server, members: &[Member], why: &str) {
    server.host.log(why);
    for m in members {
        server.repl.abort_full_sync(m.info.id);
        disconnect(server, m.info.id);
    }
}

/// The replicas a transfer still feeds. `ready` waits (holding no lock)
/// until every one has less than QUEUED_MAX queued; a replica that drains
/// nothing for `repl-timeout` seconds is dropped. False once none is left.
struct Readers {
    infos: parking_lot::Mutex<Vec<Arc<ClientInfo>>>,
    timeout: std::time::Duration,
}

impl Readers {
    fn new(server: &Server, members: &[Member]) -> Arc<Readers> {
        let secs = server
            .config
            .get("repl-timeout")
            .and_then(|v| v.parse().ok())
            .unwrap_or(60u64);
        Arc::new(Readers {
            infos: parking_lot::Mutex::new(members.iter().map(|m| m.info.clone()).collect()),
            timeout: std::time::Duration::from_secs(secs.max(1)),
        })
    }

    fn send(&self, bytes: &[u8]) {
        self.infos
            .lock()
            .retain(|i| i.outbox.push_raw(bytes, crate::pubsub::Limit::default()));
    }

    fn ready(&self, server: &Server) -> bool {
        let since = std::time::Instant::now();
        loop {
            {
                let mut infos = self.infos.lock();
                infos.retain(|i| alive(i));
                if infos.is_empty() {
                    return false;
                }
                if infos.iter().all(|i| i.outbox.held() < QUEUED_MAX) {
                    return true;
                }
                if since.elapsed() > self.timeout {
                    infos.retain(|i| {
                        let stuck = i.outbox.held() >= QUEUED_MAX;
                        if stuck {
                            server.host.log(&format!(
                                "Disconnecting timedout replica (full sync): {}",
                                i.addr
                            ));
                            disconnect(server, i.id);
                        }
                        !stuck
                    });
                    continue;
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}

/// The snapshot's writer for a diskless transfer: bytes collect into
/// chunks that go to every reader's outbox. Writers paying a shard's debt
/// may write through it too; they never wait.
struct Fanout {
    readers: Arc<Readers>,
    buf: Vec<u8>,
    bytes: u64,
}

impl std::io::Write for Fanout {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        self.bytes += b.len() as u64;
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            self.readers.send(&self.buf);
            self.buf.clear();
        }
        Ok(())
    }
}

/// A diskless full sync: waits out `repl-diskless-sync-delay` for more
/// replicas, then streams one snapshot to all of them as `$EOF:<mark>`,
/// the RDB, `<mark>`.
fn diskless_sync(server: &Arc<Server>) {
    let get = |k: &str| -> u64 {
        server
            .config
            .get(k)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let delay = std::time::Duration::from_secs(get("repl-diskless-sync-delay"));
    let max = get("repl-diskless-sync-max-replicas") as usize;
    let groups = &server.full_syncs.0;
    let started = std::time::Instant::now();
    let waiting = || {
        groups
            .lock()
            .forming
            .as_ref()
            .map_or(0, |f| f.iter().filter(|m| alive(&m.info)).count())
    };
    while started.elapsed() < delay && !(max > 0 && waiting() >= max) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // Until the slot is ours more replicas may join; if every one left,
    // the group goes (under its lock, so that none joins it meanwhile).
    while !crate::persist::claim(server) {
        {
            let mut g = groups.lock();
            let alive_left = g
                .forming
                .as_ref()
                .is_some_and(|f| f.iter().any(|m| alive(&m.info)));
            if !alive_left {
                g.forming = None;
                return;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let members: Vec<Member> = groups
        .lock()
        .forming
        .take()
        .unwrap_or_default()
        .into_iter()
        .filter(|m| alive(&m.info))
        .collect();
    if members.is_empty() {
        crate::persist::release(server);
        return;
    }
    server.host.log(&format!(
        "Starting BGSAVE for SYNC with target: replicas sockets ({} replicas)",
        members.len()
    ));
    let mark = damselfly_replication::ReplId::random();
    let readers = Readers::new(server, &members);
    let out = Fanout {
        readers: readers.clone(),
        buf: Vec::with_capacity(CHUNK * 2),
        bytes: 0,
    };
    let ks = &server.keyspace;
    crate::persist::diskless_save_running(server, true);
    // A replica of a replica: the snapshot and the offset it starts from
    // are taken while our own link applies nothing.
    let begun = server.replica.quiesced(|| {
        let mut all = ks.lock_all();
        register(server, &members, format!("$EOF:{mark}\r\n").as_bytes());
        let mut aux = crate::persist::aux_fields().to_vec();
        aux.extend(repl_fields(server));
        damselfly_persistence::snapshot::begin_stream(
            ks,
            &mut all,
            out,
            crate::persist::limits(server),
            &aux,
            &crate::scripting::functions::library_codes(server),
            save_delay(server),
        )
    });
    let result = begun.and_then(|s| s.finish(ks, || readers.ready(server)));
    crate::persist::diskless_save_running(server, false);
    crate::persist::release(server);
    match result {
        Ok(mut out) => {
            let _ = std::io::Write::flush(&mut out);
            finish(server, &members, true, mark.as_bytes(), out.bytes);
        }
        Err(e) => fail(server, &members, &format!("Diskless full sync failed: {e}")),
    }
}

/// Redis's rdb-key-save-delay holds back the replicas' snapshot too.
fn save_delay(server: &Server) -> u64 {
    server
        .config
        .get("rdb-key-save-delay")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A disk-based full sync: a save into the configured file (which more
/// replicas may join while it is written), then `$<len>` and the file,
/// read in chunks as the replicas take them.
fn disk_sync(server: &Arc<Server>, first: Member) {
    // One snapshot at a time: a running BGSAVE owns the shards' marks.
    while !crate::persist::claim(server) {
        if !alive(&first.info) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let groups = &server.full_syncs.0;
    let ks = &server.keyspace;
    // A replica of a replica: the snapshot and the offset it starts from
    // are taken while our own link applies nothing.
    let begun = server.replica.quiesced(|| {
        let mut all = ks.lock_all();
        let (replid, offset) = register(server, std::slice::from_ref(&first), b"");
        let snap = crate::persist::begin_sync_save(server, &mut all);
        match snap {
            Ok(snap) => {
                groups.lock().disk = Some(DiskGroup {
                    members: vec![first],
                    replid,
                    offset,
                });
                Ok(snap)
            }
            Err(e) => Err((e, first)),
        }
    });
    let snap = match begun {
        Ok(s) => s,
        Err((e, first)) => {
            crate::persist::sync_save_done(server, &Err(std::io::Error::other(e.to_string())));
            crate::persist::release(server);
            fail(
                server,
                &[first],
                &format!("Can't save for a replica's sync: {e}"),
            );
            return;
        }
    };
    let path = snap.target().to_path_buf();
    let saved = snap.finish(ks);
    crate::persist::sync_save_done(server, &saved);
    let members = groups
        .lock()
        .disk
        .take()
        .map(|d| d.members)
        .unwrap_or_default();
    // Opened before the slot is given back: a later save renames a new
    // file over this one, and the open file stays this snapshot.
    let file = saved.and_then(|_| std::fs::File::open(&path));
    crate::persist::release(server);
    let mut file = match file {
        Ok(f) => f,
        Err(e) => {
            return fail(
                server,
                &members,
                &format!("Can't send the RDB to replicas: {e}"),
            )
        }
    };
    let len = file.metadata().map_or(0, |m| m.len());
    let readers = Readers::new(server, &members);
    readers.send(format!("${len}\r\n").as_bytes());
    let mut chunk = vec![0; CHUNK];
    let mut sent = 0u64;
    while sent < len {
        if !readers.ready(server) {
            return fail(server, &members, "Full sync: every replica went away");
        }
        let n = match std::io::Read::read(&mut file, &mut chunk) {
            Ok(0) => return fail(server, &members, "Full sync: the RDB file was cut short"),
            Ok(n) => n.min((len - sent) as usize),
            Err(e) => return fail(server, &members, &format!("Full sync: {e}")),
        };
        readers.send(&chunk[..n]);
        sent += n as u64;
    }
    finish(server, &members, false, &[], len);
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
    ctx.wait = Some(Box::new(WaitAcks {
        server: owner,
        offset,
        want: want.max(0) as usize,
        deadline: if timeout == 0 {
            0
        } else {
            ctx.now.saturating_add(timeout as u64)
        },
        info: ctx.client.info.clone(),
    }));
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
        BlockOp::Move {
            dst,
            rpoplpush: true,
            ..
        } => vec![b"RPOPLPUSH", key, dst],
        BlockOp::Move { dst, from, to, .. } => vec![b"LMOVE", key, dst, end(from), end(to)],
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
    // Not `then_some`: that builds the error, and drops it, every time.
    if e.has(flag::WRITE) && too_few_replicas(server) {
        Some(CmdError::NoReplicas)
    } else {
        None
    }
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
    server
        .replica
        .try_quiesced(wait, || repl_fields(server))
        .unwrap_or_default()
}

/// The replication point an RDB names, for a caller that holds every shard
/// and, on a replica, the link's gate: the DB our stream is in (which a
/// replica's master client starts in: a passed-on stream selects no DB
/// again for it), the replid and the offset.
pub(crate) fn repl_fields(server: &Server) -> Vec<(&'static str, String)> {
    let st = server.repl.state().clone();
    vec![
        ("repl-stream-db", crate::replicaof::stream_db().to_string()),
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
