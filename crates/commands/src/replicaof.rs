//! The replica side's server half: REPLICAOF / SLAVEOF, ROLE, the master
//! client that runs the master's stream, the full sync's dataset swap, and
//! the checks a replica adds to the dispatcher (READONLY, MASTERDOWN). The
//! link itself (handshake, RDB transfer, stream parsing, ACKs) lives in
//! `damselfly_replication::replica`.
//!
//! Invariants:
//! - The master's commands run through the normal dispatcher on the link
//!   thread, marked `from_master` (storage): they pass READONLY and
//!   MASTERDOWN, and see keys whose TTL passed on our clock (the master
//!   expires keys and sends DEL; a replica never deletes on expiry).
//! - A full sync swaps the dataset under every shard lock, only after the
//!   whole RDB parsed: clients see the old data or the new, never a mix.
//! - On a master the dispatcher's check costs one relaxed load.

use crate::client::Client;
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::state::{Server, ThreadStats};
use crate::table::{flag, Command, Entry, Keys::None as NoKeys};
use crate::{cmd, Wait};
use damselfly_protocol::{Args, Reply, Request};
use damselfly_replication::replica::{self, LinkState, MasterClient, Settings};
use damselfly_storage::Entry as KeyEntry;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Weak};
use std::time::Duration;

pub(crate) static COMMANDS: &[Command] = &[
    cmd!(
        "replicaof",
        3,
        "admin noscript stale no_async_loading",
        NoKeys,
        "@admin @slow @dangerous",
        "server",
        "5.0.0",
        replicaof
    ),
    cmd!(
        "slaveof",
        3,
        "admin noscript stale no_async_loading",
        NoKeys,
        "@admin @slow @dangerous",
        "server",
        "1.0.0",
        replicaof
    ),
];

/// Whether this server follows a master: the dispatcher's fast check.
static REPLICA: AtomicBool = AtomicBool::new(false);

/// The DB the master's stream has selected (the master client's), which
/// a full sync served to a replica of ours names as `repl-stream-db`.
static STREAM_DB: AtomicUsize = AtomicUsize::new(0);

/// The DB our replicas' stream is in (see `STREAM_DB`); 0 on a master,
/// whose stream selects its DB again after a full sync.
pub(crate) fn stream_db() -> usize {
    if REPLICA.load(Relaxed) {
        STREAM_DB.load(Relaxed)
    } else {
        0
    }
}

/// The DB a replica's master client starts in after a restart (the
/// `repl-stream-db` of the RDB it loaded).
pub(crate) fn set_stream_db(db: usize) {
    STREAM_DB.store(db, Relaxed);
}

/// Closes every replica's connection: our replication ID changed, and
/// they learn the new one by reconnecting (a partial resync).
pub(crate) fn drop_replicas(server: &Server) {
    server.clients.for_each_locked(|c| {
        if c.replica.load(Relaxed) {
            c.disconnect();
        }
    });
}

/// REPLICAOF host port | REPLICAOF NO ONE (and SLAVEOF).
fn replicaof(ctx: &mut Ctx, args: &Args) -> CmdResult {
    if crate::failover::active() {
        return Err(CmdError::Other(
            "ERR REPLICAOF not allowed while failing over.".into(),
        ));
    }
    let a1 = args.get(1).unwrap_or_default();
    let a2 = args.get(2).unwrap_or_default();
    if a1.eq_ignore_ascii_case(b"no") && a2.eq_ignore_ascii_case(b"one") {
        let _ = ctx.server.config.set_initial("replicaof", "");
        if stop(ctx.server) {
            ctx.server.host.log(&format!(
                "MASTER MODE enabled (user request from 'id={}')",
                ctx.client.id()
            ));
        }
        ctx.reply.ok();
        return Ok(());
    }
    let port = crate::args::parse_i64(a2)
        .filter(|p| (0..=65535).contains(p))
        .ok_or(CmdError::InvalidMasterPort)? as u16;
    let host = String::from_utf8_lossy(a1).into_owned();
    if ctx.server.replica.follows(&host, port) {
        ctx.reply
            .simple(b"OK Already connected to specified master");
        return Ok(());
    }
    let Some(server) = ctx.server.persistence.server.get().and_then(Weak::upgrade) else {
        return Err(CmdError::Other("ERR server is shutting down".into()));
    };
    // A master turned replica offers its own history to the new master,
    // which may share it (Redis's cached master "using myself").
    let was_master = !ctx.server.replica.following();
    // What CONFIG REWRITE writes (`replicaof host port`).
    let _ = ctx
        .server
        .config
        .set_initial("replicaof", &format!("{host} {port}"));
    follow(&server, &host, port, was_master);
    ctx.server.host.log(&format!(
        "REPLICAOF {host}:{port} enabled (user request from 'id={}')",
        ctx.client.id()
    ));
    ctx.reply.ok();
    Ok(())
}

/// Starts following `host:port` (REPLICAOF, and `--replicaof` at start-up
/// with `continue_own` false).
pub fn follow(server: &Arc<Server>, host: &str, port: u16, continue_own: bool) {
    REPLICA.store(true, Relaxed);
    damselfly_storage::set_replica(true);
    // Our own replicas go, as in Redis: they reconnect to follow the new
    // master's stream through us (a partial resync when it continues ours).
    drop_replicas(server);
    crate::list::unblock_all_for_role_change(server);
    // The master client starts in the DB the stream was in (after a
    // restart, the RDB's; 0 on a master turned replica).
    let hooks = Arc::new(Hooks {
        server: Arc::downgrade(server),
        db: Arc::new(AtomicUsize::new(STREAM_DB.load(Relaxed))),
    });
    server
        .replica
        .follow(&server.repl, host, port, hooks, continue_own);
}

/// Stops following (REPLICAOF NO ONE, a FAILOVER's end); false when not
/// following. Our replicas reconnect to learn the new replid (they
/// continue from replid2).
pub(crate) fn stop(server: &Server) -> bool {
    let was = server.replica.stop(&server.repl);
    REPLICA.store(false, Relaxed);
    damselfly_storage::set_replica(false);
    if was {
        drop_replicas(server);
    }
    STREAM_DB.store(0, Relaxed);
    was
}

/// The start-up `replicaof` setting: "host port" (redis.conf) or
/// "host:port" (Dragonfly's flag).
pub fn parse_replicaof(v: &str) -> Option<(String, u16)> {
    let v = v.trim();
    let (host, port) = match v.split_once(char::is_whitespace) {
        Some((h, p)) => (h, p.trim()),
        None => v.rsplit_once(':')?,
    };
    let port = port.parse::<u16>().ok()?;
    (!host.is_empty()).then(|| (host.to_string(), port))
}

/// ROLE for a replica (the master's ROLE is the master side's): false
/// when this server is a master.
pub(crate) fn role_replica(ctx: &mut Ctx) -> bool {
    let Some(s) = ctx.server.replica.status() else {
        return false;
    };
    let r = &mut *ctx.reply;
    r.array(5);
    r.bulk(b"slave");
    r.bulk(s.host.as_bytes());
    r.int(i64::from(s.port));
    r.bulk(s.state.name().as_bytes());
    r.int(if s.has_master { s.applied_offset } else { -1 });
    true
}

/// INFO replication's fields from `role` to `replica_announced` (the rest
/// are the master side's).
pub fn info_role(server: &Server, line: &mut dyn FnMut(&str, &dyn std::fmt::Display)) {
    let Some(s) = server.replica.status() else {
        line("role", &"master");
        return;
    };
    let secs = |t: Option<std::time::Instant>| t.map_or(-1, |t| t.elapsed().as_secs() as i64);
    let up = s.state == LinkState::Connected;
    let offset = server.repl.state().master_repl_offset;
    line("role", &"slave");
    line("master_host", &s.host);
    line("master_port", &s.port);
    line("master_link_status", &if up { "up" } else { "down" });
    line(
        "master_last_io_seconds_ago",
        &if s.has_master { secs(s.last_io) } else { -1 },
    );
    let syncing = s.state == LinkState::Sync;
    line("master_sync_in_progress", &u8::from(syncing));
    let (read, applied) = if s.has_master {
        (s.read_offset, s.applied_offset)
    } else {
        (offset, offset)
    };
    line("slave_read_repl_offset", &read);
    line("slave_repl_offset", &applied);
    if syncing {
        line("master_sync_total_bytes", &s.sync_total);
        line("master_sync_read_bytes", &s.sync_read);
        let left = if s.sync_total < 0 {
            -1
        } else {
            s.sync_total - s.sync_read
        };
        line("master_sync_left_bytes", &left);
        let perc = if s.sync_total > 0 {
            s.sync_read as f64 * 100.0 / s.sync_total as f64
        } else {
            0.0
        };
        line("master_sync_perc", &format!("{perc:.2}"));
        line("master_sync_last_io_seconds_ago", &secs(s.sync_last_io));
    }
    if !up {
        line("master_link_down_since_seconds", &secs(s.down_since));
    }
    let cfg = |k: &str, d: &str| server.config.get(k).unwrap_or_else(|| d.to_string());
    line("slave_priority", &cfg("replica-priority", "100"));
    line(
        "slave_read_only",
        &u8::from(cfg("replica-read-only", "yes") == "yes"),
    );
    line(
        "replica_announced",
        &u8::from(cfg("replica-announced", "yes") == "yes"),
    );
}

/// The refusal a replica adds before a command runs: MASTERDOWN while the
/// link is down with replica-serve-stale-data off, READONLY for a write
/// with replica-read-only on. Never for the master's own commands.
pub(crate) fn refusal(server: &Server, e: &Entry, client: &Client) -> Option<CmdError> {
    if !REPLICA.load(Relaxed) || damselfly_storage::from_master() {
        return None;
    }
    if !e.has(flag::STALE) && stale(server) {
        return Some(CmdError::MasterDown);
    }
    let read_only = server.config.get("replica-read-only").as_deref() != Some("no");
    if read_only && writes(e, client) {
        return Some(CmdError::ReadOnlyReplica);
    }
    None
}

/// This is a replica serving no stale data whose link to its master is
/// down (and the command is not the master's): only `stale` commands run.
pub(crate) fn stale(server: &Server) -> bool {
    REPLICA.load(Relaxed)
        && !damselfly_storage::from_master()
        && server.config.get("replica-serve-stale-data").as_deref() == Some("no")
        && !server.replica.link_up()
}

/// Whether a script's write must be refused: a read-only replica (Redis
/// checks each write a script makes).
pub(crate) fn script_write_refused(server: &Server) -> bool {
    REPLICA.load(Relaxed)
        && !damselfly_storage::from_master()
        && server.config.get("replica-read-only").as_deref() != Some("no")
}

/// A replica with `replica-ignore-maxmemory yes` (the default) neither
/// evicts nor refuses anything for maxmemory: its master decides.
pub(crate) fn ignores_maxmemory(server: &Server) -> bool {
    REPLICA.load(Relaxed) && server.config.get("replica-ignore-maxmemory").as_deref() != Some("no")
}

/// Redis's "is write command": the write flag, or EXEC of a queue holding
/// a write. (Scripts are judged by their flags before they run, in the
/// script engine, and those without flags write by write.)
fn writes(e: &Entry, client: &Client) -> bool {
    e.has(flag::WRITE)
        || (e.cmd.name == "exec"
            && client
                .multi
                .as_ref()
                .is_some_and(|m| m.queue.iter().any(|(q, _)| q.has(flag::WRITE))))
}

/// The server seen from the link thread.
struct Hooks {
    server: Weak<Server>,
    /// The DB the master's stream had selected when the last connection
    /// ended: a partial resync continues in it (the master sends no SELECT
    /// for it again, as Redis's replica keeps its cached master client).
    db: Arc<AtomicUsize>,
}

impl Hooks {
    fn server(&self) -> Option<Arc<Server>> {
        self.server.upgrade()
    }
}

impl replica::Host for Hooks {
    fn log(&self, msg: &str) {
        if let Some(s) = self.server() {
            s.host.log(msg);
        }
    }

    fn settings(&self) -> Settings {
        let Some(s) = self.server() else {
            return Settings::default();
        };
        let get = |k: &str| s.config.get(k).unwrap_or_default();
        Settings {
            listening_port: s.port,
            masteruser: get("masteruser"),
            masterauth: get("masterauth"),
            timeout: Duration::from_secs(get("repl-timeout").parse().unwrap_or(60)),
            backlog_size: get("repl-backlog-size").parse().unwrap_or(1 << 20),
        }
    }

    fn drop_replicas(&self) {
        if let Some(s) = self.server() {
            drop_replicas(&s);
        }
    }

    fn failing_over(&self) -> bool {
        crate::failover::in_progress()
    }

    fn failover_answered(&self, reply: &[u8]) {
        if let Some(s) = self.server() {
            crate::failover::answered(&s, reply);
        }
    }

    fn load_rdb(&self, rdb: &[u8]) -> Result<(), String> {
        let server = self.server().ok_or("server gone")?;
        // A full sync's stream continues in the DB the RDB names (a
        // replica serving us names its master client's), else DB 0.
        let db = load_rdb(&server, rdb)?;
        self.db.store(db, Relaxed);
        STREAM_DB.store(db, Relaxed);
        Ok(())
    }

    fn master_client(&self, peer: &str, local: &str, fd: i64) -> Box<dyn MasterClient> {
        let Some(server) = self.server() else {
            return Box::new(Gone);
        };
        let info = server
            .clients
            .register(peer.to_string(), local.to_string(), fd);
        *info.user.lock() = "(superuser)".into();
        info.master.store(true, Relaxed);
        let mut client = Client::new(info, crate::acl::superuser(), true);
        client.select(self.db.load(Relaxed));
        STREAM_DB.store(client.db, Relaxed);
        Box::new(Master {
            stats: server.thread_stats(),
            server,
            client,
            reply: Reply::new(),
            failed: false,
            db: self.db.clone(),
        })
    }
}

/// A link outliving the server (shutdown): commands go nowhere.
struct Gone;

impl MasterClient for Gone {
    fn apply(&mut self, _args: &[&[u8]]) {}

    fn in_multi(&self) -> bool {
        false
    }

    fn id(&self) -> u64 {
        0
    }
}

/// The master client: runs the stream's commands as the master.
struct Master {
    server: Arc<Server>,
    stats: Arc<ThreadStats>,
    client: Client,
    reply: Reply,
    /// The last command replied an error.
    failed: bool,
    /// Where the DB selected at the end of this connection is kept.
    db: Arc<AtomicUsize>,
}

impl MasterClient for Master {
    fn apply(&mut self, args: &[&[u8]]) {
        let req = Request::from_owned(args);
        let args = req.args(&[]);
        damselfly_storage::set_from_master(true);
        let wait = crate::execute(
            &self.server,
            &self.stats,
            &mut self.client,
            &args,
            crate::dispatch::Hint::default(),
            &mut self.reply,
        );
        // This is the link's own thread: a script runs here, in order. A
        // blocking command (masters send none) is answered as timed out.
        if let Some(Wait::Script(job)) = wait {
            job.run(&self.server, self.client.id());
        }
        damselfly_storage::set_from_master(false);
        STREAM_DB.store(self.client.db, Relaxed);
        self.failed = self.reply.as_bytes().first() == Some(&b'-');
        if self.failed {
            // Redis's replica logs an error reply to its master this way
            // (the data may have diverged).
            let err = String::from_utf8_lossy(self.reply.as_bytes());
            let known = crate::table::lookup(args.get(0).unwrap_or_default()).is_some();
            let name = if known {
                String::from_utf8_lossy(args.get(0).unwrap_or_default()).to_lowercase()
            } else {
                "<unknown>".into()
            };
            self.server.host.log(&format!(
                "== CRITICAL == This replica is sending an error to its master: '{}' after processing the command '{name}'",
                err.trim_start_matches('-').trim_end()
            ));
        }
        self.reply.clear();
        // Messages queued for the master client (it never subscribes, but
        // a tracking redirect could name it) are dropped.
        self.client.info.outbox.take(&mut self.reply);
        self.reply.clear();
    }

    fn in_multi(&self) -> bool {
        self.client.multi.is_some()
    }

    fn id(&self) -> u64 {
        self.client.id()
    }
}

impl Drop for Master {
    fn drop(&mut self) {
        self.db.store(self.client.db, Relaxed);
        crate::release_client(&self.server, &mut self.client);
        self.server.clients.unregister(self.client.id());
    }
}

/// A full sync: parses the whole RDB (keys whose TTL passed are kept: the
/// master will send their DEL), then empties every DB and stores the keys
/// under all shard locks. Returns the DB the stream continues in.
fn load_rdb(server: &Server, rdb: &[u8]) -> Result<usize, String> {
    let ks = &server.keyspace;
    let limits = crate::persist::limits(server);
    let mut keys: Vec<(usize, KeyEntry)> = Vec::new();
    // Clients get -LOADING until the keys are in, as from a Redis replica.
    let loading = crate::persist::Loading::begin(server, rdb.len() as u64);
    let mut delay = crate::persist::key_load_delay(server);
    // The libraries are loaded below, as the master's commands, once the
    // keys are in.
    let mut libraries: Vec<Vec<u8>> = Vec::new();
    let stats = damselfly_persistence::file::load(
        rdb,
        &limits,
        ks.dbnum(),
        0,
        |l| {
            delay();
            keys.push((l.db, KeyEntry::new(l.key, l.value, l.expire_at)));
            Ok(())
        },
        |code| {
            libraries.push(code.to_vec());
            Ok(())
        },
    )
    .map_err(|e| e.to_string())?;
    let stream_db = stats
        .aux
        .iter()
        .find(|(k, _)| k == b"repl-stream-db")
        .and_then(|(_, v)| std::str::from_utf8(v).ok()?.parse::<usize>().ok())
        .filter(|&db| db < ks.dbnum())
        .unwrap_or(0);
    let now = damselfly_storage::now_ms();
    {
        let mut all = ks.lock_all();
        for shard in all.iter_mut() {
            for db in 0..shard.dbs.len() {
                crate::server::clear_db(shard, db, now, false);
            }
        }
        for (db, e) in keys {
            let i = ks.shard_of(e.key());
            if let Some(shard) = all.get(i) {
                shard.put(db, e);
            }
        }
    }
    // FUNCTION LOAD below runs as a command, which -LOADING would refuse.
    drop(loading);
    server.tracking.flushed(&server.pubsub);
    // The master's function libraries replace ours, as its keys did.
    let Some(server) = server.persistence.server.get().and_then(Weak::upgrade) else {
        return Ok(stream_db);
    };
    let info = Arc::new(crate::ClientInfo::new(0, String::new(), String::new(), -1));
    let mut master = Master {
        stats: server.thread_stats(),
        client: Client::new(info, crate::acl::superuser(), true),
        server,
        reply: Reply::new(),
        failed: false,
        db: Default::default(),
    };
    master.apply(&[b"FUNCTION", b"FLUSH"]);
    for code in &libraries {
        master.apply(&[b"FUNCTION", b"LOAD", b"REPLACE", code]);
        if master.failed {
            return Err("a function library of the master's RDB does not load".into());
        }
    }
    Ok(stream_db)
}
