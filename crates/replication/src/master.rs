//! The master side: the command stream, its backlog, and the replicas fed
//! from it (SYNC/PSYNC, REPLCONF, WAIT's acknowledgements).
//!
//! How a write reaches the stream: the dispatcher brackets every top-level
//! command with `enter`/`leave`. While inside, what the command propagates
//! (its own arguments, a rewrite the handler asked for with `instead`, the
//! DELs of keys that expired under it) collects in a thread-local list;
//! `leave` appends the list to the stream, wrapped in MULTI/EXEC when it
//! holds more than one command (Redis 7.0's rule), while the command still
//! holds its shard locks. Changes made outside any command (active expiry,
//! eviction) are appended at once, under the lock of the shard they
//! changed.
//!
//! Invariants:
//! - The stream's order is the commit order: a command appends while it
//!   holds the locks of every shard it changed, so two commands that touch
//!   a common key append in the order they ran.
//! - With no backlog (no replica has ever synced) nothing is encoded or
//!   locked: `Replication::active` is one relaxed load.
//! - A replica in full sync gets the stream from the snapshot's point on:
//!   it is registered, and the snapshot begins, under every shard lock.

use crate::backlog::Backlog;
use crate::{ReplId, Replication};
use std::cell::{Cell, RefCell};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// Where a replica's bytes go: its connection's output buffer.
pub trait Link: Send + Sync {
    /// Queues stream bytes under the replica output-buffer limit; false
    /// when the connection is gone or past its limit.
    fn send(&self, bytes: &[u8]) -> bool;
    /// Queues the RDB payload, which the limit does not count (Redis
    /// counts only the stream buffered behind it).
    fn send_bulk(&self, bytes: &[u8]) -> bool;
}

/// One command to propagate, in the DB it ran in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op {
    pub db: usize,
    pub args: Vec<Vec<u8>>,
}

enum Phase {
    /// Waiting for its RDB: the stream since the snapshot point is kept
    /// here and sent after the RDB.
    Sync(Vec<u8>),
    /// Sent a diskless (`$EOF:`) RDB: the stream waits for the replica's
    /// first ACK, because a replica finds the end mark only at the end of
    /// what it has read.
    AwaitAck(Vec<u8>),
    Online,
}

struct Replica {
    id: u64,
    link: Arc<dyn Link>,
    phase: Phase,
    ip: String,
    port: u16,
    ack_offset: i64,
    ack_ms: u64,
}

/// What REPLCONF told us before the replica's PSYNC.
#[derive(Clone, Debug, Default)]
pub struct Announced {
    pub ip: Option<String>,
    pub port: u16,
    pub capa_eof: bool,
}

/// A replica as INFO and ROLE show it.
#[derive(Clone, Debug)]
pub struct ReplicaInfo {
    pub id: u64,
    pub ip: String,
    pub port: u16,
    /// `wait_bgsave` or `online`.
    pub state: &'static str,
    pub offset: i64,
    /// Seconds since its last REPLCONF ACK.
    pub lag: u64,
}

/// The stream's state: backlog, the DB the stream last selected, the
/// replicas, the sync counters.
#[derive(Default)]
pub(crate) struct Stream {
    backlog: Option<Backlog>,
    /// The DB the replicas' stream has selected; None forces a SELECT.
    seldb: Option<usize>,
    replicas: Vec<Replica>,
    announced: std::collections::HashMap<u64, Announced>,
    scratch: Vec<u8>,
    /// Unix ms since when no replica has been connected (backlog TTL).
    alone_since: u64,
    /// This server follows a master: the stream is the master's, passed
    /// on as received (`forward`); `Replication::active` stays false so
    /// nothing of our own is added to it.
    follower: bool,
    pub(crate) sync_full: u64,
    pub(crate) sync_partial_ok: u64,
    pub(crate) sync_partial_err: u64,
}

/// Appends one command in RESP to `out`.
pub fn encode(out: &mut Vec<u8>, args: &[impl AsRef<[u8]>]) {
    out.push(b'*');
    out.extend_from_slice(args.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    for a in args {
        let a = a.as_ref();
        out.push(b'$');
        out.extend_from_slice(a.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

impl Stream {
    fn select(&mut self, db: usize) {
        if self.seldb != Some(db) {
            let n = db.to_string();
            encode(&mut self.scratch, &[&b"SELECT"[..], n.as_bytes()]);
            self.seldb = Some(db);
        }
    }
}

impl Replication {
    /// Whether writes must be propagated (a backlog exists).
    pub fn active(&self) -> bool {
        self.active.load(Relaxed)
    }

    /// Appends `ops` to the stream as one unit (MULTI/EXEC around more
    /// than one). Call with the shard locks of every key they changed.
    /// Returns the offset after them, None when nothing was appended.
    pub fn append(&self, ops: &[Op]) -> Option<i64> {
        if ops.is_empty() || !self.active() {
            return None;
        }
        let mut g = self.inner.lock();
        let s = &mut g.stream;
        s.scratch.clear();
        let wrap = ops.len() > 1;
        if wrap {
            s.select(ops[0].db);
            encode(&mut s.scratch, &[b"MULTI"]);
        }
        for op in ops {
            s.select(op.db);
            encode(&mut s.scratch, &op.args);
        }
        if wrap {
            encode(&mut s.scratch, &[b"EXEC"]);
        }
        let bytes = std::mem::take(&mut s.scratch);
        feed(&mut g, &bytes);
        g.stream.scratch = bytes;
        Some(g.state.master_repl_offset)
    }

    /// Appends bytes that are no command of ours (the PING that keeps
    /// replicas' links alive, or a master's stream a replica passes on).
    pub fn feed_raw(&self, bytes: &[u8]) {
        if !self.active() {
            return;
        }
        feed(&mut self.inner.lock(), bytes);
    }

    /// Creates the backlog if there is none (the first replica), or
    /// resizes it (CONFIG SET repl-backlog-size).
    pub fn ensure_backlog(&self, size: usize) {
        let mut g = self.inner.lock();
        match &mut g.stream.backlog {
            Some(b) if b.size() != size => b.resize(size),
            Some(_) => {}
            None => {
                g.stream.backlog = Some(Backlog::new(size));
                g.stream.seldb = None;
                g.stream.alone_since = now_ms();
                self.active.store(!g.stream.follower, Relaxed);
            }
        }
    }

    /// This server starts (true) or stops following a master. A follower
    /// adds nothing of its own to the stream; a promoted one selects its
    /// DB again before its first command (its replicas are in the old
    /// master's).
    pub fn set_follower(&self, on: bool) {
        let mut g = self.inner.lock();
        g.stream.follower = on;
        g.stream.seldb = None;
        self.active
            .store(!on && g.stream.backlog.is_some(), Relaxed);
    }

    /// A follower passes on what it applied of its master's stream
    /// (`bytes`, whole commands or transactions) to its backlog and its
    /// own replicas, unchanged, so they share the master's offsets; the
    /// offset becomes `offset`, the master's after them.
    pub fn forward(&self, bytes: &[u8], offset: i64) {
        let mut g = self.inner.lock();
        if g.stream.backlog.is_some() && !bytes.is_empty() {
            feed(&mut g, bytes);
        }
        g.state.master_repl_offset = offset;
    }

    /// A follower's full sync from its master starts a new history at
    /// `offset`: the backlog restarts empty (created if there was none,
    /// so replicas of ours can continue from us later) and our replicas
    /// are dropped from the registry (the caller closes them).
    pub fn restart_history(&self, id: ReplId, offset: i64, backlog_size: usize) {
        let mut g = self.inner.lock();
        g.state.replid = id;
        g.state.master_repl_offset = offset;
        g.state.clear_replid2();
        g.stream.backlog = Some(Backlog::new(backlog_size));
        g.stream.replicas.clear();
        g.stream.seldb = None;
        g.stream.alone_since = now_ms();
        self.active.store(!g.stream.follower, Relaxed);
    }

    /// Drops the backlog once no replica has been connected for
    /// `ttl_secs` (repl-backlog-ttl; 0 keeps it forever), starting a new
    /// history as Redis does, since no one can continue the old one.
    /// Returns whether it dropped it.
    pub fn expire_backlog(&self, ttl_secs: u64) -> bool {
        let mut g = self.inner.lock();
        let now = now_ms();
        // A replica keeps its backlog (its master's history) for good.
        if !g.stream.replicas.is_empty() || g.stream.backlog.is_none() || g.stream.follower {
            g.stream.alone_since = now;
            return false;
        }
        if ttl_secs == 0 || now.saturating_sub(g.stream.alone_since) < ttl_secs * 1000 {
            return false;
        }
        g.stream.backlog = None;
        self.active.store(false, Relaxed);
        g.state.replid = ReplId::random();
        g.state.clear_replid2();
        true
    }

    /// REPLCONF listening-port / ip-address / capa, before PSYNC.
    pub fn announce(&self, client: u64, f: impl FnOnce(&mut Announced)) {
        let mut g = self.inner.lock();
        f(g.stream.announced.entry(client).or_default());
    }

    pub fn announced(&self, client: u64) -> Announced {
        let g = self.inner.lock();
        g.stream.announced.get(&client).cloned().unwrap_or_default()
    }

    /// Registers a replica for a full sync at the current offset and
    /// returns the (replid, offset) of +FULLRESYNC. The caller holds every
    /// shard lock and begins the snapshot under the same locks.
    pub fn begin_full_sync(
        &self,
        client: u64,
        ip: String,
        link: Arc<dyn Link>,
        backlog_size: usize,
    ) -> (ReplId, i64) {
        self.ensure_backlog(backlog_size);
        let mut g = self.inner.lock();
        g.stream.replicas.retain(|r| r.id != client);
        let port = g.stream.announced.get(&client).map_or(0, |a| a.port);
        let offset = g.state.master_repl_offset;
        g.stream.replicas.push(Replica {
            id: client,
            link,
            phase: Phase::Sync(Vec::new()),
            ip,
            port,
            ack_offset: 0,
            ack_ms: now_ms(),
        });
        // The replica starts in DB 0 (our RDB names no stream DB), so the
        // next command selects its DB again.
        g.stream.seldb = None;
        g.stream.sync_full += 1;
        (g.state.replid, offset)
    }

    /// Registers a replica for a full sync that shares the snapshot of one
    /// already begun for `with` (the first of those still waiting for it):
    /// it gets a copy of what the stream buffered since that snapshot's
    /// point. False when none of them is still waiting.
    pub fn join_full_sync(
        &self,
        client: u64,
        ip: String,
        link: Arc<dyn Link>,
        with: &[u64],
    ) -> bool {
        let mut g = self.inner.lock();
        let buffered = g.stream.replicas.iter().find_map(|r| match &r.phase {
            Phase::Sync(b) if with.contains(&r.id) => Some(b.clone()),
            _ => None,
        });
        let Some(buffered) = buffered else {
            return false;
        };
        g.stream.replicas.retain(|r| r.id != client);
        let port = g.stream.announced.get(&client).map_or(0, |a| a.port);
        g.stream.replicas.push(Replica {
            id: client,
            link,
            phase: Phase::Sync(buffered),
            ip,
            port,
            ack_offset: 0,
            ack_ms: now_ms(),
        });
        g.stream.sync_full += 1;
        true
    }

    /// Sends a replica what is left of its snapshot (`payload`: the framed
    /// RDB, or only the `$EOF:` form's end mark when the rest was streamed
    /// already) and what the stream buffered since (after its first ACK for
    /// the `$EOF:` form), then streams to it live. False when the replica
    /// went away meanwhile.
    pub fn finish_full_sync(&self, client: u64, payload: &[u8], eof: bool) -> bool {
        let mut g = self.inner.lock();
        let Some(i) = g.stream.replicas.iter().position(|r| r.id == client) else {
            return false;
        };
        let r = &mut g.stream.replicas[i];
        let buffered = match std::mem::replace(&mut r.phase, Phase::Online) {
            Phase::Sync(b) | Phase::AwaitAck(b) => b,
            Phase::Online => Vec::new(),
        };
        let ok = if eof {
            r.phase = Phase::AwaitAck(buffered);
            r.link.send_bulk(payload)
        } else {
            r.link.send_bulk(payload) && (buffered.is_empty() || r.link.send(&buffered))
        };
        if !ok {
            g.stream.replicas.remove(i);
        }
        ok
    }

    /// Drops a replica whose full sync failed, counting nothing else.
    pub fn abort_full_sync(&self, client: u64) {
        self.remove_replica(client);
    }

    /// PSYNC `replid` `offset`: when our history continues the replica's
    /// and the backlog still holds its next byte, registers it online,
    /// queues the missing bytes after `reply` and returns true. Otherwise
    /// counts a failed partial sync and returns false (the caller falls
    /// back to a full sync).
    pub fn try_partial_sync(
        &self,
        client: u64,
        ip: String,
        link: Arc<dyn Link>,
        replid: &[u8],
        offset: i64,
        reply: &mut Vec<u8>,
    ) -> bool {
        let mut g = self.inner.lock();
        let known = ReplId::parse(replid).is_some_and(|id| g.state.continues(&id, offset));
        let missing = match (&g.stream.backlog, known) {
            (Some(b), true) => b.since(offset, g.state.master_repl_offset),
            _ => None,
        };
        let Some(missing) = missing else {
            // `PSYNC ? -1` asks for a full sync: not a failed partial one.
            if replid != b"?" {
                g.stream.sync_partial_err += 1;
            }
            return false;
        };
        reply.extend_from_slice(b"+CONTINUE ");
        reply.extend_from_slice(g.state.replid.as_bytes());
        reply.extend_from_slice(b"\r\n");
        if !missing.is_empty() && !link.send(&missing) {
            return false;
        }
        let port = g.stream.announced.get(&client).map_or(0, |a| a.port);
        g.stream.replicas.retain(|r| r.id != client);
        g.stream.replicas.push(Replica {
            id: client,
            link,
            phase: Phase::Online,
            ip,
            port,
            ack_offset: offset - 1,
            ack_ms: now_ms(),
        });
        g.stream.sync_partial_ok += 1;
        true
    }

    /// REPLCONF ACK `offset`.
    pub fn ack(&self, client: u64, offset: i64) {
        let mut g = self.inner.lock();
        let Some(i) = g.stream.replicas.iter().position(|r| r.id == client) else {
            return;
        };
        let r = &mut g.stream.replicas[i];
        r.ack_offset = r.ack_offset.max(offset);
        r.ack_ms = now_ms();
        if let Phase::AwaitAck(buf) = &mut r.phase {
            let buf = std::mem::take(buf);
            r.phase = Phase::Online;
            if !buf.is_empty() && !r.link.send(&buf) {
                g.stream.replicas.remove(i);
            }
        }
    }

    /// The connection of `client` closed.
    pub fn remove_replica(&self, client: u64) {
        let mut g = self.inner.lock();
        g.stream.replicas.retain(|r| r.id != client);
        g.stream.announced.remove(&client);
        g.stream.alone_since = now_ms();
    }

    pub fn is_replica(&self, client: u64) -> bool {
        self.inner
            .lock()
            .stream
            .replicas
            .iter()
            .any(|r| r.id == client)
    }

    pub fn replicas(&self) -> Vec<ReplicaInfo> {
        let g = self.inner.lock();
        let now = now_ms();
        g.stream
            .replicas
            .iter()
            .map(|r| ReplicaInfo {
                id: r.id,
                ip: r.ip.clone(),
                port: r.port,
                state: match r.phase {
                    Phase::Sync(_) => "wait_bgsave",
                    Phase::AwaitAck(_) | Phase::Online => "online",
                },
                offset: r.ack_offset,
                lag: now.saturating_sub(r.ack_ms) / 1000,
            })
            .collect()
    }

    /// Replicas online whose last ACK is at most `max_lag` seconds old
    /// (min-replicas-to-write's "good" replicas).
    pub fn good_replicas(&self, max_lag: u64) -> usize {
        self.replicas()
            .iter()
            .filter(|r| r.state == "online" && r.lag <= max_lag)
            .count()
    }

    /// Online replicas that acknowledged at least `offset` (WAIT).
    pub fn acked(&self, offset: i64) -> usize {
        let g = self.inner.lock();
        g.stream
            .replicas
            .iter()
            .filter(|r| matches!(r.phase, Phase::Online) && r.ack_offset >= offset)
            .count()
    }

    /// INFO's backlog fields: (active, size, first byte offset, histlen).
    pub fn backlog_info(&self) -> (bool, usize, i64, usize) {
        let g = self.inner.lock();
        match &g.stream.backlog {
            Some(b) => (
                true,
                b.size(),
                g.state.master_repl_offset - b.histlen() as i64 + 1,
                b.histlen(),
            ),
            None => (false, 0, 0, 0),
        }
    }

    /// INFO stats: sync_full, sync_partial_ok, sync_partial_err.
    pub fn sync_counters(&self) -> (u64, u64, u64) {
        let g = self.inner.lock();
        let s = &g.stream;
        (s.sync_full, s.sync_partial_ok, s.sync_partial_err)
    }

    pub fn reset_sync_counters(&self) {
        let mut g = self.inner.lock();
        let s = &mut g.stream;
        (s.sync_full, s.sync_partial_ok, s.sync_partial_err) = (0, 0, 0);
    }
}

/// Adds `bytes` to the backlog, the offset and every replica.
fn feed(g: &mut crate::Inner, bytes: &[u8]) {
    let Some(b) = g.stream.backlog.as_mut() else {
        return;
    };
    b.append(bytes);
    g.state.master_repl_offset += bytes.len() as i64;
    g.stream.replicas.retain_mut(|r| match &mut r.phase {
        Phase::Sync(buf) | Phase::AwaitAck(buf) => {
            buf.extend_from_slice(bytes);
            true
        }
        Phase::Online => r.link.send(bytes),
    });
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

thread_local! {
    /// Nesting of top-level commands on this thread (0: outside any).
    static DEPTH: Cell<u32> = const { Cell::new(0) };
    /// Whether the top-level command running here propagates (read by code
    /// that has no server at hand: blocked clients served by it).
    static PROPAGATING: Cell<bool> = const { Cell::new(false) };
    /// The top-level command holds no shard for its run (see `enter`).
    static WALKS: Cell<bool> = const { Cell::new(false) };
    /// Commands running now are not propagated (a script's
    /// `redis.set_repl(redis.REPL_NONE)`); expiries still are.
    static SILENT: Cell<bool> = const { Cell::new(false) };
    static PENDING: RefCell<Pending> = const {
        RefCell::new(Pending { ops: Vec::new(), instead: Vec::new(), server_changes: 0 })
    };
    /// Something was queued in `PENDING` since it was last emptied: most
    /// commands queue nothing (reads, or no replica), and this flag
    /// spares them the queue's borrow twice per command.
    static QUEUED: Cell<bool> = const { Cell::new(false) };
}

/// Changes this thread's queue (and flags it as worth looking at).
fn queue<R>(f: impl FnOnce(&mut Pending) -> R) -> R {
    QUEUED.set(true);
    PENDING.with(|p| f(&mut p.borrow_mut()))
}

#[derive(Default)]
struct Pending {
    ops: Vec<Op>,
    /// What the running command asked to propagate instead of itself.
    instead: Vec<Vec<Vec<u8>>>,
    /// Keys the server removed (expiry) during commands on this thread:
    /// their changes are not the command's own.
    server_changes: u64,
}

/// A top-level command starts on this thread. `walks`: it holds no shard
/// for its run but visits shards one at a time (KEYS, SCAN, RANDOMKEY):
/// the keys that expire under it go out at once, while the visited shard
/// is locked, since by `leave` another command may have recreated them.
pub fn enter(repl: &Replication, walks: bool) {
    DEPTH.with(|d| d.set(d.get() + 1));
    PROPAGATING.with(|p| p.set(repl.active()));
    WALKS.with(|w| w.set(walks));
}

/// Whether the running command's changes go to replicas.
pub fn propagating() -> bool {
    PROPAGATING.with(Cell::get)
}

/// A top-level command ends: what it propagated is appended, as one unit.
/// Call while it still holds its shard locks. Returns the stream's offset
/// after the command's last byte when it appended anything (WAIT waits
/// for replicas to reach it).
pub fn leave(repl: &Replication) -> Option<i64> {
    let depth = DEPTH.with(|d| {
        let n = d.get().saturating_sub(1);
        d.set(n);
        n
    });
    if depth > 0 {
        return None;
    }
    append_pending(repl)
}

/// Appends what the top-level command running here queued so far, as one
/// unit, before it serves blocked clients (whose pops Redis sends after
/// the command). Returns the offset after it, if it appended.
pub fn flush(repl: &Replication) -> Option<i64> {
    if DEPTH.with(Cell::get) != 1 {
        return None;
    }
    append_pending(repl)
}

/// Appends this thread's queue as one unit.
#[inline]
fn append_pending(repl: &Replication) -> Option<i64> {
    if !QUEUED.replace(false) {
        return None;
    }
    append_queued(repl)
}

#[inline(never)]
fn append_queued(repl: &Replication) -> Option<i64> {
    let ops = PENDING.with(|p| {
        let mut p = p.borrow_mut();
        if p.ops.is_empty() && p.instead.is_empty() {
            return None;
        }
        p.instead.clear();
        // Nothing queued (no replica, or a read): the empty queue stays.
        (!p.ops.is_empty()).then(|| std::mem::take(&mut p.ops))
    })?;
    repl.append(&ops)
}

/// The running command propagates `args` (one or more calls) instead of
/// its own arguments: EXPIRE as PEXPIREAT, SPOP as SREM...
pub fn instead(args: Vec<Vec<u8>>) {
    queue(|p| p.instead.push(args));
}

/// The running command changed data: queues its propagation, `args` or
/// what it asked to propagate instead.
pub fn command(db: usize, args: impl FnOnce() -> Vec<Vec<u8>>) {
    queue(|p| {
        if SILENT.with(Cell::get) {
            p.instead.clear();
        } else if p.instead.is_empty() {
            let args = args();
            p.ops.push(Op { db, args });
        } else {
            // An empty rewrite is "nothing": the command's effects were
            // queued with `also` (XREADGROUP's claims...).
            let instead = std::mem::take(&mut p.instead);
            let real = instead.into_iter().filter(|a| !a.is_empty());
            p.ops.extend(real.map(|args| Op { db, args }));
        }
    });
}

/// The running command is not propagated itself: its effects are queued
/// with `also`.
pub fn nothing() {
    instead(Vec::new());
}

/// Forgets a rewrite the running command asked for but did not need (it
/// changed nothing).
pub fn discard_instead() {
    PENDING.with(|p| p.borrow_mut().instead.clear());
}

/// Queues a command on behalf of someone else than the running command
/// (a blocked client served by it: BLPOP's pop as LPOP).
pub fn also(db: usize, args: Vec<Vec<u8>>) {
    if SILENT.with(Cell::get) {
        return;
    }
    queue(|p| p.ops.push(Op { db, args }));
}

/// Silences (or not) the propagation of the commands run from now on this
/// thread; returns the previous setting.
pub fn set_silent(on: bool) -> bool {
    SILENT.with(|s| s.replace(on))
}

/// The server removed a key (expired or evicted): DEL, queued with the
/// running command, or appended at once outside any (the caller holds the
/// key's shard lock).
pub fn deleted(repl: &Replication, db: usize, key: &[u8]) {
    let op = Op {
        db,
        args: vec![b"DEL".to_vec(), key.to_vec()],
    };
    if DEPTH.with(Cell::get) == 0 {
        repl.append(&[op]);
        return;
    }
    if WALKS.with(Cell::get) {
        repl.append(&[op]);
        PENDING.with(|p| p.borrow_mut().server_changes += 1);
        return;
    }
    queue(|p| {
        p.ops.push(op);
        p.server_changes += 1;
    });
}

/// Changes the server made on this thread so far (to tell a command's own
/// changes from the expiries it ran into).
pub fn server_changes() -> u64 {
    PENDING.with(|p| p.borrow().server_changes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;

    #[derive(Default)]
    struct Sink(Mutex<Vec<u8>>);

    impl Link for Sink {
        fn send(&self, bytes: &[u8]) -> bool {
            self.0.lock().extend_from_slice(bytes);
            true
        }
        fn send_bulk(&self, bytes: &[u8]) -> bool {
            self.send(bytes)
        }
    }

    fn args(a: &[&str]) -> Vec<Vec<u8>> {
        a.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    #[test]
    fn nothing_is_kept_before_the_first_replica() {
        let r = Replication::default();
        r.append(&[Op {
            db: 0,
            args: args(&["SET", "a", "1"]),
        }]);
        assert_eq!(r.state().master_repl_offset, 0);
        assert_eq!(r.backlog_info(), (false, 0, 0, 0));
    }

    #[test]
    fn the_stream_selects_wraps_and_counts_bytes() {
        let r = Replication::default();
        let sink = Arc::new(Sink::default());
        let (_, off) = r.begin_full_sync(7, "127.0.0.1".into(), sink.clone(), 1 << 20);
        enter(&r, false);
        assert!(propagating());
        leave(&r);
        assert_eq!(off, 0);
        r.append(&[Op {
            db: 0,
            args: args(&["set", "a", "1"]),
        }]);
        assert!(r.finish_full_sync(7, b"$3\r\nRDB", false));
        enter(&r, false);
        command(2, || args(&["incr", "n"]));
        nothing();
        command(2, || args(&["xreadgroup"]));
        instead(args(&["SREM", "s", "x"]));
        command(2, || args(&["spop", "s"]));
        leave(&r);
        let want = "$3\r\nRDB*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nset\r\n$1\r\na\r\n$1\r\n1\r\n\
                    *2\r\n$6\r\nSELECT\r\n$1\r\n2\r\n*1\r\n$5\r\nMULTI\r\n*2\r\n$4\r\nincr\r\n$1\r\nn\r\n\
                    *3\r\n$4\r\nSREM\r\n$1\r\ns\r\n$1\r\nx\r\n*1\r\n$4\r\nEXEC\r\n";
        assert_eq!(String::from_utf8_lossy(&sink.0.lock()), want);
        assert_eq!(r.state().master_repl_offset, want.len() as i64 - 7);
        assert_eq!(r.replicas()[0].state, "online");
    }

    #[test]
    fn a_diskless_rdb_is_followed_by_the_stream_after_the_first_ack() {
        let r = Replication::default();
        let sink = Arc::new(Sink::default());
        r.begin_full_sync(7, "ip".into(), sink.clone(), 1 << 20);
        r.append(&[Op {
            db: 0,
            args: args(&["set", "a", "1"]),
        }]);
        assert!(r.finish_full_sync(7, b"$EOF:mark", true));
        r.append(&[Op {
            db: 0,
            args: args(&["del", "a"]),
        }]);
        assert_eq!(&sink.0.lock()[..], b"$EOF:mark");
        r.ack(7, 0);
        let all = String::from_utf8_lossy(&sink.0.lock()).into_owned();
        assert!(all.starts_with("$EOF:mark*2\r\n$6\r\nSELECT"), "{all}");
        assert!(all.ends_with("*2\r\n$3\r\ndel\r\n$1\r\na\r\n"), "{all}");
    }

    #[test]
    fn partial_sync_sends_only_the_missing_bytes() {
        let r = Replication::default();
        let first = Arc::new(Sink::default());
        let (id, _) = r.begin_full_sync(1, "ip".into(), first, 1 << 20);
        r.append(&[Op {
            db: 0,
            args: args(&["set", "a", "1"]),
        }]);
        let upto = r.state().master_repl_offset;
        r.append(&[Op {
            db: 0,
            args: args(&["del", "a"]),
        }]);
        r.remove_replica(1);
        let again = Arc::new(Sink::default());
        let mut reply = Vec::new();
        assert!(r.try_partial_sync(
            2,
            "ip".into(),
            again.clone(),
            id.as_bytes(),
            upto + 1,
            &mut reply
        ));
        assert_eq!(reply, format!("+CONTINUE {id}\r\n").into_bytes());
        assert_eq!(&again.0.lock()[..], b"*2\r\n$3\r\ndel\r\n$1\r\na\r\n");
        assert!(!r.try_partial_sync(3, "ip".into(), again.clone(), b"nope", 1, &mut reply));
        assert_eq!(r.sync_counters(), (1, 1, 1));
    }

    #[test]
    fn the_backlog_goes_with_a_new_history_after_its_ttl() {
        let r = Replication::default();
        let old = r.state().replid;
        let sink = Arc::new(Sink::default());
        r.begin_full_sync(1, "ip".into(), sink, 100);
        assert!(!r.expire_backlog(1));
        r.remove_replica(1);
        assert!(!r.expire_backlog(0));
        assert!(!r.expire_backlog(3600));
        r.inner.lock().stream.alone_since = 0;
        assert!(r.expire_backlog(3600));
        assert!(!r.active());
        assert_ne!(r.state().replid, old);
    }

    #[test]
    fn expiries_met_by_a_walk_are_appended_at_once() {
        let r = Replication::default();
        r.ensure_backlog(100);
        enter(&r, true);
        deleted(&r, 0, b"k");
        let after_del = r.state().master_repl_offset;
        assert!(after_del > 0);
        leave(&r);
        assert_eq!(r.state().master_repl_offset, after_del);
    }

    #[test]
    fn expiries_outside_commands_are_appended_at_once() {
        let r = Replication::default();
        r.ensure_backlog(100);
        deleted(&r, 0, b"k");
        assert!(r.state().master_repl_offset > 0);
        assert_eq!(server_changes(), 0);
    }
}
