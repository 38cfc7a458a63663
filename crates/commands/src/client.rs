//! Per-connection state, and the registry that CLIENT LIST and INFO read.

use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

/// What other threads may read about a connection. Written only by the
/// connection's own thread (plain relaxed stores, no read-modify-write).
#[derive(Debug)]
pub struct ClientInfo {
    pub id: u64,
    pub addr: String,
    pub laddr: String,
    pub fd: i64,
    pub created_ms: u64,
    pub name: Mutex<Vec<u8>>,
    pub db: AtomicUsize,
    pub last_ms: AtomicU64,
    /// Id of the last command run (index into the table), +1; 0 for none.
    pub last_cmd: AtomicUsize,
    pub resp: AtomicUsize,
    /// Commands queued in MULTI, -1 outside a transaction (CLIENT LIST).
    pub multi: AtomicI64,
    /// Messages other threads send this client (pub/sub, invalidations).
    pub outbox: crate::pubsub::Outbox,
    /// Subscribed channels, patterns, shard channels, and their sum
    /// (CLIENT LIST; the sum picks the output-buffer-limit class).
    pub sub: AtomicUsize,
    pub psub: AtomicUsize,
    pub ssub: AtomicUsize,
    pub subscriptions: AtomicUsize,
    /// CLIENT LIST's view of tracking: `redir=` (-1 when off) and the
    /// t/R/B flags (`tracking::FLAG_*`).
    pub redir: AtomicI64,
    pub tracking_flags: AtomicUsize,
    /// The connection is closing: it is no redirection target any more.
    pub gone: AtomicBool,
    /// Unprocessed query buffer bytes (CLIENT LIST `qbuf`).
    pub qbuf: AtomicUsize,
    /// The ACL user's name (CLIENT LIST `user=`).
    pub user: Mutex<String>,
    /// A replica of ours (after SYNC/PSYNC): flag `S`, type `replica`.
    pub replica: AtomicBool,
    /// The client our master's stream runs as (on a replica): flag `M`.
    pub master: AtomicBool,
    /// The replication offset after this client's last write (WAIT).
    pub woff: AtomicI64,
    /// In MONITOR mode (CLIENT LIST flag `O`).
    pub monitor: AtomicBool,
    /// Connected through the Unix socket (CLIENT LIST flag `U`).
    pub unix: AtomicBool,
    /// Bytes this client holds (query buffer and queued output), for
    /// `maxmemory-clients` and CLIENT LIST `tot-mem`.
    pub mem: AtomicU64,
    /// CLIENT NO-EVICT ON (CLIENT LIST flag `e`).
    pub no_evict: AtomicBool,
}

impl ClientInfo {
    pub fn new(id: u64, addr: String, laddr: String, fd: i64) -> ClientInfo {
        let now = damselfly_storage::now_ms();
        ClientInfo {
            id,
            addr,
            laddr,
            fd,
            created_ms: now,
            name: Mutex::new(Vec::new()),
            db: AtomicUsize::new(0),
            last_ms: AtomicU64::new(now),
            last_cmd: AtomicUsize::new(0),
            resp: AtomicUsize::new(2),
            multi: AtomicI64::new(-1),
            outbox: Default::default(),
            sub: AtomicUsize::new(0),
            psub: AtomicUsize::new(0),
            ssub: AtomicUsize::new(0),
            subscriptions: AtomicUsize::new(0),
            redir: AtomicI64::new(-1),
            tracking_flags: AtomicUsize::new(0),
            gone: AtomicBool::new(false),
            qbuf: AtomicUsize::new(0),
            user: Mutex::new("default".into()),
            replica: AtomicBool::new(false),
            master: AtomicBool::new(false),
            woff: AtomicI64::new(0),
            monitor: AtomicBool::new(false),
            unix: AtomicBool::new(false),
            mem: AtomicU64::new(0),
            no_evict: AtomicBool::new(false),
        }
    }
}

/// Registry of live connections; touched on connect and disconnect only.
#[derive(Default)]
pub struct Clients {
    next_id: AtomicU64,
    map: Mutex<BTreeMap<u64, Arc<ClientInfo>>>,
    /// The clients' `mem`, summed while `maxmemory-clients` is set.
    pub mem_total: AtomicU64,
}

impl Clients {
    pub fn register(&self, addr: String, laddr: String, fd: i64) -> Arc<ClientInfo> {
        let id = self.next_id.fetch_add(1, Relaxed) + 1;
        let info = Arc::new(ClientInfo::new(id, addr, laddr, fd));
        self.map.lock().insert(id, info.clone());
        info
    }

    pub fn get(&self, id: u64) -> Option<Arc<ClientInfo>> {
        self.map.lock().get(&id).cloned()
    }

    pub fn unregister(&self, id: u64) {
        self.map.lock().remove(&id);
    }

    pub fn list(&self) -> Vec<Arc<ClientInfo>> {
        self.map.lock().values().cloned().collect()
    }

    pub fn count(&self) -> usize {
        self.map.lock().len()
    }

    /// Ends every other connection `f` picks at once (ACL changes): each
    /// leaves the registry now, so CLIENT LIST no longer shows it, and its
    /// socket's read side is shut so its task ends. True when `f` picked
    /// `me`, which the caller closes after its reply.
    pub fn kill_where(&self, me: u64, mut f: impl FnMut(&ClientInfo) -> bool) -> bool {
        let mut picked_me = false;
        self.map.lock().retain(|id, c| {
            if !f(c) {
                return true;
            }
            if *id == me {
                picked_me = true;
                return true;
            }
            // Still under the registry lock: the descriptor is this
            // connection's (see `disconnect`). A client still sending
            // would keep its read side busy: its outbox closes too, which
            // drops it before its next request.
            c.disconnect();
            c.outbox.close();
            c.gone.store(true, std::sync::atomic::Ordering::Relaxed);
            false
        });
        picked_me
    }

    /// Runs `f` on every live connection with the registry locked: a
    /// connection unregisters (under this lock) before its socket closes,
    /// so every descriptor seen here is still that connection's.
    pub fn for_each_locked(&self, mut f: impl FnMut(&ClientInfo)) {
        for c in self.map.lock().values() {
            f(c);
        }
    }
}

impl ClientInfo {
    /// Ends the connection from another thread (CLIENT KILL): shutting its
    /// socket's read side makes the connection's pending or next read see
    /// end-of-file, and it closes as if the client had gone. Call only
    /// through `Clients::for_each_locked`.
    pub fn disconnect(&self) {
        if self.fd < 0 {
            return;
        }
        // SAFETY: shutdown takes no pointers; `fd` is this connection's
        // open socket for as long as the client is registered, and the
        // caller holds the registry lock (see for_each_locked), so the
        // descriptor cannot have been closed and reused meanwhile.
        unsafe { libc::shutdown(self.fd as libc::c_int, libc::SHUT_RD) };
    }
}

/// State of one connection, owned by its thread.
pub struct Client {
    pub info: Arc<ClientInfo>,
    pub db: usize,
    pub resp3: bool,
    pub authenticated: bool,
    /// The ACL user this connection runs as (the default user until AUTH).
    pub user: Arc<crate::acl::User>,
    /// Set by QUIT (and protocol errors): close once the reply is written.
    pub close_after_reply: bool,
    /// The open transaction, between MULTI and EXEC/DISCARD.
    pub multi: Option<Multi>,
    /// WATCHed (db, key)s.
    pub watches: Vec<(usize, Vec<u8>)>,
    /// Set by the write door when a watched key changes.
    pub watch_dirty: Arc<AtomicBool>,
    /// True while EXEC runs the queued commands: blocking commands reply as
    /// if they timed out.
    pub in_exec: bool,
    /// Pub/sub subscriptions.
    pub subs: crate::pubsub::Subscriptions,
    /// CLIENT REPLY.
    pub reply_mode: ReplyMode,
    /// CLIENT TRACKING's mode while on.
    pub tracking: Option<crate::tracking::Mode>,
    /// CLIENT CACHING YES/NO given for the next command.
    pub caching: bool,
    /// Set by MONITOR: the lines this connection is sent.
    pub monitor: bool,
    /// The pseudo-client a Lua script's commands run as.
    pub in_script: bool,
}

/// CLIENT REPLY ON / OFF / SKIP.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ReplyMode {
    On,
    Off,
    /// SKIP was just given: the next command's reply is dropped.
    SkipNext,
    /// This command's reply is dropped.
    Skip,
}

/// A transaction being queued.
#[derive(Default)]
pub struct Multi {
    pub queue: Vec<(&'static crate::table::Entry, damselfly_protocol::Request)>,
    /// A command was rejected while queueing: EXEC aborts.
    pub aborted: bool,
    /// Bytes of the queued commands' arguments (`maxmemory-clients`).
    pub bytes: usize,
}

impl Client {
    pub fn new(info: Arc<ClientInfo>, user: Arc<crate::acl::User>, authenticated: bool) -> Client {
        Client::with_watch_flag(info, user, authenticated, Arc::default())
    }

    /// `new`, with the flag its WATCHes would set shared with others: the
    /// scripts' pseudo-client, made for every run, never WATCHes.
    pub(crate) fn with_watch_flag(
        info: Arc<ClientInfo>,
        user: Arc<crate::acl::User>,
        authenticated: bool,
        watch_dirty: Arc<AtomicBool>,
    ) -> Client {
        Client {
            info,
            user,
            db: 0,
            resp3: false,
            authenticated,
            close_after_reply: false,
            multi: None,
            watches: Vec::new(),
            watch_dirty,
            in_exec: false,
            subs: Default::default(),
            reply_mode: ReplyMode::On,
            tracking: None,
            caching: false,
            monitor: false,
            in_script: false,
        }
    }

    pub fn id(&self) -> u64 {
        self.info.id
    }

    /// In RESP2 subscribe mode only (un)subscribe, PING, QUIT and RESET run.
    pub fn in_subscribe_mode(&self) -> bool {
        !self.resp3 && self.subs.total() > 0
    }

    pub fn select(&mut self, db: usize) {
        self.db = db;
        self.info.db.store(db, Relaxed);
    }
}

impl Client {
    /// Opens a transaction (MULTI).
    pub fn begin_multi(&mut self) {
        self.multi = Some(Multi::default());
        self.info.multi.store(0, Relaxed);
    }

    /// Closes the transaction, returning it.
    pub fn end_multi(&mut self) -> Option<Multi> {
        self.info.multi.store(-1, Relaxed);
        self.multi.take()
    }

    /// Marks the open transaction failed, if any (a rejected command).
    pub fn flag_multi(&mut self) {
        if let Some(m) = &mut self.multi {
            m.aborted = true;
        }
    }
}
