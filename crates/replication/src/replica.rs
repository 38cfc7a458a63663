//! The replica side: following a master (REPLICAOF host port), as a Redis
//! 7.0 replica does it.
//!
//! One thread per link ("replica-link") talks to the master with blocking
//! socket I/O: the handshake (PING, AUTH, REPLCONF listening-port, REPLCONF
//! capa eof capa psync2, PSYNC), the RDB of a full sync (`$<len>` or
//! `$EOF:<mark>`, kept in memory), then the command stream, which it parses
//! and hands to the server one command at a time (`Host::master_client`).
//! It answers `REPLCONF GETACK` and sends `REPLCONF ACK <offset>` every
//! second. A link that drops, stalls past `repl-timeout` or sends garbage
//! ends and the thread connects again a second later, asking PSYNC to
//! continue from the offset it reached.
//!
//! Invariants:
//! - The offset (`ReplState::master_repl_offset`) counts exactly the bytes
//!   of the master's stream whose commands have run (a transaction's once
//!   its EXEC has), so a PSYNC after a drop asks for the first byte not
//!   applied.
//! - Nothing the master sends can panic the thread or allocate more than
//!   `MAX_BULK` per argument (plus the RDB's announced size, capped the
//!   same way for `$<len>`); a protocol error only ends the link.
//! - A full sync replaces the dataset only once the whole RDB has arrived
//!   and parsed: a transfer cut short leaves the old data in place.
//! - At most one link thread acts at a time: each link has its own stop
//!   flag, set (and its socket shut, and its gate passed) before the next
//!   link starts or REPLICAOF NO ONE shifts the replid.

use crate::state::{ReplId, Role};
use crate::Replication;
use parking_lot::Mutex;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Largest argument (and `$<len>` RDB) accepted from a master: Redis's
/// `proto-max-bulk-len` limit for the stream, more for a whole RDB.
const MAX_BULK: usize = 512 << 20;
const MAX_RDB: usize = 64 << 30;
const MAX_ARGS: usize = 1 << 20;
/// How often the link thread wakes up to check its stop flag and the ACK
/// timer while the master is silent.
const TICK: Duration = Duration::from_millis(100);

/// What the link needs from the server around it (the commands crate
/// implements it).
pub trait Host: Send + Sync + 'static {
    fn log(&self, msg: &str);
    /// Read at each connection attempt, so CONFIG SET applies to the next.
    fn settings(&self) -> Settings;
    /// Replaces the whole dataset with the RDB's (a full sync). An error
    /// leaves the dataset as it was.
    fn load_rdb(&self, rdb: &[u8]) -> Result<(), String>;
    /// The client the master's commands run as, for one link.
    fn master_client(&self, peer: &str, local: &str, fd: i64) -> Box<dyn MasterClient>;
    /// Closes the connections of our own replicas (chained replicas): our
    /// history changed under them (a full sync, a new master replid).
    fn drop_replicas(&self) {}
    /// A coordinated failover (FAILOVER) hands this server's role to the
    /// master it now follows: the next PSYNC carries `FAILOVER`.
    fn failing_over(&self) -> bool {
        false
    }
    /// The master answered that PSYNC FAILOVER: accepted (`+...`) or not.
    fn failover_answered(&self, _reply: &[u8]) {}
}

/// Runs the master's commands (replies are dropped).
pub trait MasterClient {
    fn apply(&mut self, args: &[&[u8]]);
    /// Inside a transaction: MULTI ran and EXEC has not.
    fn in_multi(&self) -> bool;
    /// The client's id (CLIENT KILL TYPE master, CLIENT LIST).
    fn id(&self) -> u64;
}

/// The settings a connection attempt reads.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// Our own port, announced with REPLCONF listening-port.
    pub listening_port: u16,
    pub masteruser: String,
    pub masterauth: String,
    /// `repl-timeout`: a silent master is dropped after this long.
    pub timeout: Duration,
    /// `repl-backlog-size`: the backlog a replica keeps of its master's
    /// stream, for its own replicas and for after a promotion.
    pub backlog_size: usize,
}

/// Where the link is, in ROLE's words (Redis's replication states).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkState {
    Connect,
    Connecting,
    Handshake,
    Sync,
    Connected,
}

impl LinkState {
    pub fn name(self) -> &'static str {
        match self {
            LinkState::Connect => "connect",
            LinkState::Connecting => "connecting",
            LinkState::Handshake => "handshake",
            LinkState::Sync => "sync",
            LinkState::Connected => "connected",
        }
    }
}

/// What INFO replication and ROLE show about the link.
#[derive(Clone, Debug)]
pub struct Status {
    pub host: String,
    pub port: u16,
    pub state: LinkState,
    /// Last byte from the master (None: not connected).
    pub last_io: Option<Instant>,
    /// When the link went down (or REPLICAOF started it).
    pub down_since: Option<Instant>,
    /// Full sync transfer: total bytes (-1 for an `$EOF:` transfer) and
    /// bytes read so far, the time of the last read.
    pub sync_total: i64,
    pub sync_read: i64,
    pub sync_last_io: Option<Instant>,
    /// Offsets of the master client: bytes read, bytes applied; -1 with no
    /// master client (ROLE), and what INFO shows kept after a drop.
    pub read_offset: i64,
    pub applied_offset: i64,
    /// Whether a master client exists (the link is up and synced).
    pub has_master: bool,
    /// Id of the master client while there is one.
    pub master_client: u64,
    /// Full and partial syncs done by this replica.
    pub full_syncs: u64,
    pub partial_syncs: u64,
}

/// One link to one master: its stop flag, its status and its socket.
struct Link {
    stop: AtomicBool,
    /// Held by the link thread from its stop check through a command (or a
    /// full sync's load) and the offset that counts it; a stopper takes it
    /// after setting `stop`, so once it has, nothing more is applied and
    /// the offset names exactly what was.
    gate: Mutex<()>,
    status: Mutex<Status>,
    socket: Mutex<Option<TcpStream>>,
}

impl Link {
    fn stopped(&self) -> bool {
        self.stop.load(Relaxed)
    }
}

/// The replica side of the server: the link to the master, if following.
#[derive(Default)]
pub struct Follower {
    /// Serializes REPLICAOF calls. Held while an old link is stopped, so
    /// never taken by a link thread (whose command might wait on it).
    switch: Mutex<()>,
    link: Mutex<Option<Arc<Link>>>,
    /// Whether our replid and offset name data the master may continue
    /// (PSYNC <replid> <offset+1>), rather than `PSYNC ? -1`.
    can_continue: Arc<AtomicBool>,
}

/// Why a link ended.
#[derive(Debug)]
enum End {
    Stopped,
    Failed(String),
}

impl From<std::io::Error> for End {
    fn from(e: std::io::Error) -> End {
        End::Failed(e.to_string())
    }
}

type Res<T> = Result<T, End>;

impl Follower {
    /// Starts following `host:port` (REPLICAOF, `--replicaof`). `continue_own`:
    /// this server was a master whose history the new master may share
    /// (Redis's "cached master using myself"): the first PSYNC offers our
    /// replid and offset. False at start-up, where nothing is known.
    pub fn follow(
        &self,
        repl: &Arc<Replication>,
        host_name: &str,
        port: u16,
        host: Arc<dyn Host>,
        continue_own: bool,
    ) {
        let _switch = self.switch.lock();
        let old = self.link.lock().take();
        if let Some(old) = old {
            stop_link(&old);
        } else {
            self.can_continue.store(continue_own, Relaxed);
        }
        repl.state().role = Role::Replica;
        repl.set_follower(true);
        let link = Arc::new(Link {
            stop: AtomicBool::new(false),
            gate: Mutex::new(()),
            status: Mutex::new(Status {
                host: host_name.to_string(),
                port,
                // Redis starts connecting inside REPLICAOF itself.
                state: LinkState::Connecting,
                last_io: None,
                down_since: Some(Instant::now()),
                sync_total: 0,
                sync_read: 0,
                sync_last_io: None,
                read_offset: -1,
                applied_offset: -1,
                has_master: false,
                master_client: 0,
                full_syncs: 0,
                partial_syncs: 0,
            }),
            socket: Mutex::new(None),
        });
        *self.link.lock() = Some(link.clone());
        let repl = repl.clone();
        let can_continue = self.can_continue.clone();
        let spawned = std::thread::Builder::new()
            .name("replica-link".into())
            .spawn({
                let link = link.clone();
                move || run(&link, &repl, &*host, &can_continue)
            });
        if let Err(e) = spawned {
            // Without a thread the link stays in "connect"; INFO shows it.
            link.status.lock().state = LinkState::Connect;
            eprintln!("cannot start the replica link thread: {e}");
        }
    }

    /// Stops following (REPLICAOF NO ONE): the data stays, a new replid
    /// starts and the old one is kept as replid2, so the old master and
    /// its other replicas can continue from us.
    pub fn stop(&self, repl: &Replication) -> bool {
        let _switch = self.switch.lock();
        let old = self.link.lock().take();
        let Some(old) = old else {
            return false;
        };
        stop_link(&old);
        repl.set_follower(false);
        let mut st = repl.state();
        st.role = Role::Master;
        st.shift_replid();
        true
    }

    /// Runs `f` while the link applies nothing (its gate held): a full
    /// sync served to a replica of ours starts at an offset that names
    /// exactly the data it snapshots.
    pub fn quiesced<R>(&self, f: impl FnOnce() -> R) -> R {
        let link = self.link.lock().clone();
        let _gate = link.as_ref().map(|l| l.gate.lock());
        f()
    }

    /// `quiesced` for a caller that holds shard locks, which the link may
    /// be waiting for with its gate held: None when the gate cannot be
    /// had within `wait`.
    pub fn try_quiesced<R>(&self, wait: Duration, f: impl FnOnce() -> R) -> Option<R> {
        let link = self.link.lock().clone();
        let _gate = match &link {
            Some(l) => Some(l.gate.try_lock_for(wait)?),
            None => None,
        };
        Some(f())
    }

    /// The link's status while following a master.
    pub fn status(&self) -> Option<Status> {
        Some(self.link.lock().as_ref()?.status.lock().clone())
    }

    /// Whether this server follows a master.
    pub fn following(&self) -> bool {
        self.link.lock().is_some()
    }

    /// Whether the link is up and synced (replica-serve-stale-data).
    pub fn link_up(&self) -> bool {
        self.link
            .lock()
            .as_ref()
            .is_some_and(|l| l.status.lock().state == LinkState::Connected)
    }

    /// Whether `host:port` is the master already followed.
    pub fn follows(&self, host: &str, port: u16) -> bool {
        self.link.lock().as_ref().is_some_and(|l| {
            let s = l.status.lock();
            s.host.eq_ignore_ascii_case(host) && s.port == port
        })
    }
}

/// Stops a link and waits until it applies nothing more.
fn stop_link(link: &Link) {
    link.stop.store(true, Relaxed);
    if let Some(s) = link.socket.lock().as_ref() {
        let _ = s.shutdown(Shutdown::Both);
    }
    drop(link.gate.lock());
}

/// The link thread: connect, sync, stream; on any failure wait a second
/// and start again, until stopped.
fn run(link: &Link, repl: &Replication, host: &dyn Host, can_continue: &AtomicBool) {
    let (name, port) = {
        let s = link.status.lock();
        (s.host.clone(), s.port)
    };
    loop {
        if link.stopped() {
            return;
        }
        match session(link, repl, host, can_continue, &name, port) {
            Ok(()) | Err(End::Stopped) => {}
            Err(End::Failed(why)) => {
                if !link.stopped() {
                    host.log(&why);
                }
            }
        }
        *link.socket.lock() = None;
        {
            let mut s = link.status.lock();
            if s.state == LinkState::Connected || s.down_since.is_none() {
                s.down_since = Some(Instant::now());
            }
            s.state = LinkState::Connect;
            s.last_io = None;
            s.has_master = false;
            s.master_client = 0;
        }
        if link.stopped() {
            return;
        }
        // Redis retries once a second (replicationCron).
        let until = Instant::now() + Duration::from_secs(1);
        while Instant::now() < until && !link.stopped() {
            std::thread::sleep(TICK);
        }
    }
}

/// A connection to the master with a read buffer.
struct Conn<'a> {
    sock: TcpStream,
    buf: Vec<u8>,
    pos: usize,
    link: &'a Link,
    timeout: Duration,
    last_io: Instant,
}

impl Conn<'_> {
    fn unread(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// Reads more bytes; Ok(0) when the read timed out (a tick passed).
    fn fill(&mut self) -> Res<usize> {
        if self.link.stopped() {
            return Err(End::Stopped);
        }
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > (1 << 20) {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let mut chunk = [0u8; 64 * 1024];
        match self.sock.read(&mut chunk) {
            Ok(0) => Err(End::Failed(match self.state() {
                LinkState::Connected => "Connection with master lost.".into(),
                _ => "I/O error trying to sync with MASTER: connection lost".into(),
            })),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                self.last_io = Instant::now();
                self.link.status.lock().last_io = Some(self.last_io);
                Ok(n)
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if self.last_io.elapsed() > self.timeout {
                    // Redis's replica words it by the step it timed out in.
                    return Err(End::Failed(match self.state() {
                        LinkState::Sync => "Timeout receiving bulk data from MASTER... If the problem persists try to set the 'repl-timeout' parameter in redis.conf to a larger value.".into(),
                        LinkState::Connected => "MASTER timeout: no data nor PING received...".into(),
                        _ => "Timeout connecting to the MASTER...".into(),
                    }));
                }
                Ok(0)
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => Ok(0),
            Err(e) => Err(e.into()),
        }
    }

    fn state(&self) -> LinkState {
        self.link.status.lock().state
    }

    fn send(&mut self, args: &[&[u8]]) -> Res<()> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        self.sock.write_all(&out)?;
        Ok(())
    }

    /// One `\r\n`-terminated line, without the terminator. Lone `\n`s
    /// before it (a master's keepalive while it prepares an RDB) are
    /// skipped.
    fn line(&mut self) -> Res<Vec<u8>> {
        loop {
            while self.unread().first() == Some(&b'\n') {
                self.pos += 1;
            }
            if let Some(i) = self.unread().windows(2).position(|w| w == b"\r\n") {
                let line = self.unread()[..i].to_vec();
                self.pos += i + 2;
                return Ok(line);
            }
            if self.unread().len() > 64 * 1024 {
                return Err(End::Failed("protocol error: line too long".into()));
            }
            self.fill()?;
        }
    }

    /// Sends a command and reads its one-line reply.
    fn call(&mut self, args: &[&[u8]]) -> Res<Vec<u8>> {
        self.send(args)?;
        self.line()
    }
}

fn set_state(link: &Link, state: LinkState) {
    link.status.lock().state = state;
}

fn connect(name: &str, port: u16, timeout: Duration) -> Res<TcpStream> {
    let addrs = (name, port)
        .to_socket_addrs()
        .map_err(|e| End::Failed(format!("cannot resolve {name}: {e}")))?;
    let mut last = End::Failed(format!("no address for {name}"));
    for a in addrs {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(s) => return Ok(s),
            Err(e) => last = e.into(),
        }
    }
    Err(last)
}

/// One connection: handshake, sync, then the stream until it ends.
fn session(
    link: &Link,
    repl: &Replication,
    host: &dyn Host,
    can_continue: &AtomicBool,
    name: &str,
    port: u16,
) -> Res<()> {
    let settings = host.settings();
    let timeout = settings.timeout.max(Duration::from_secs(1));
    host.log(&format!("Connecting to MASTER {name}:{port}"));
    host.log("MASTER <-> REPLICA sync started");
    set_state(link, LinkState::Connecting);
    let sock = connect(name, port, timeout).map_err(|e| match e {
        End::Failed(e) => End::Failed(format!("Error condition on socket for SYNC: {e}")),
        e => e,
    })?;
    host.log("Non blocking connect for SYNC fired the event.");
    sock.set_read_timeout(Some(TICK))?;
    sock.set_write_timeout(Some(timeout))?;
    let _ = sock.set_nodelay(true);
    *link.socket.lock() = Some(sock.try_clone()?);
    if link.stopped() {
        return Err(End::Stopped);
    }
    let mut c = Conn {
        sock,
        buf: Vec::new(),
        pos: 0,
        link,
        timeout,
        last_io: Instant::now(),
    };
    set_state(link, LinkState::Handshake);
    // Redis accepts -NOAUTH to PING: AUTH comes next.
    let pong = c.call(&[b"PING"])?;
    if pong.first() == Some(&b'-') && !pong.starts_with(b"-NOAUTH") && !pong.starts_with(b"-NOPERM")
    {
        return Err(End::Failed(format!(
            "Error reply to PING from master: '{}'",
            String::from_utf8_lossy(&pong[..pong.len().min(200)])
        )));
    }
    host.log("Master replied to PING, replication can continue...");
    if !settings.masterauth.is_empty() {
        let mut args: Vec<&[u8]> = vec![b"AUTH"];
        if !settings.masteruser.is_empty() {
            args.push(settings.masteruser.as_bytes());
        }
        args.push(settings.masterauth.as_bytes());
        let r = c.call(&args)?;
        if r.first() == Some(&b'-') {
            return Err(End::Failed(format!(
                "Unable to AUTH to MASTER: {}",
                String::from_utf8_lossy(&r[..r.len().min(200)])
            )));
        }
    }
    // Errors to REPLCONF are not fatal (older masters), as in Redis.
    let lport = settings.listening_port.to_string();
    c.call(&[b"REPLCONF", b"listening-port", lport.as_bytes()])?;
    c.call(&[b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"])?;
    let (id, offset) = {
        let st = repl.state();
        (st.replid, st.master_repl_offset)
    };
    let next = (offset + 1).to_string();
    let failover = host.failing_over();
    let r = if can_continue.load(Relaxed) {
        host.log(&format!(
            "Trying a partial resynchronization (request {id}:{next})."
        ));
        let mut psync: Vec<&[u8]> = vec![b"PSYNC", id.as_bytes(), next.as_bytes()];
        if failover {
            psync.push(b"FAILOVER");
        }
        c.call(&psync)?
    } else {
        host.log("Partial resynchronization not possible (no cached master)");
        c.call(&[b"PSYNC", b"?", b"-1"])?
    };
    if failover {
        host.failover_answered(&r);
    }
    let mut words = r.split(|&b| b == b' ');
    match words.next().unwrap_or_default() {
        b"+FULLRESYNC" => {
            let id = words.next().and_then(ReplId::parse);
            let off = words
                .next()
                .and_then(|w| std::str::from_utf8(w).ok())
                .and_then(|w| w.parse::<i64>().ok());
            let (Some(id), Some(off)) = (id, off) else {
                return Err(failed("PSYNC", &r));
            };
            full_sync(
                &mut c,
                link,
                repl,
                host,
                can_continue,
                (id, off),
                settings.backlog_size,
            )?;
        }
        b"+CONTINUE" => {
            if let Some(new) = words.next().and_then(ReplId::parse) {
                let mut st = repl.state();
                if new != st.replid {
                    // The master's history moved on (a failover): ours
                    // continues as replid2, and our replicas reconnect to
                    // learn the new ID.
                    st.shift_replid();
                    st.replid = new;
                    drop(st);
                    host.drop_replicas();
                }
            }
            repl.ensure_backlog(settings.backlog_size);
            let mut s = link.status.lock();
            s.partial_syncs += 1;
            drop(s);
            host.log("Successful partial resynchronization with master.");
            host.log("MASTER <-> REPLICA sync: Master accepted a Partial Resynchronization.");
        }
        _ if r.starts_with(b"-NOMASTERLINK") || r.starts_with(b"-LOADING") => {
            return Err(End::Failed(format!(
                "Master is currently unable to PSYNC but should be in the future: {}",
                String::from_utf8_lossy(&r[..r.len().min(200)])
            )));
        }
        _ => return Err(failed("PSYNC", &r)),
    }
    stream(c, link, repl, host)
}

fn failed(what: &str, reply: &[u8]) -> End {
    End::Failed(format!(
        "Unexpected reply to {what} from master: {}",
        String::from_utf8_lossy(&reply[..reply.len().min(200)])
    ))
}

/// Reads the RDB after +FULLRESYNC and loads it.
fn full_sync(
    c: &mut Conn<'_>,
    link: &Link,
    repl: &Replication,
    host: &dyn Host,
    can_continue: &AtomicBool,
    (id, offset): (ReplId, i64),
    backlog_size: usize,
) -> Res<()> {
    host.log(&format!("Full resync from master: {id}:{offset}"));
    {
        let mut s = link.status.lock();
        s.state = LinkState::Sync;
        s.sync_total = -1;
        s.sync_read = 0;
        s.sync_last_io = Some(Instant::now());
    }
    let head = c.line()?;
    let rdb = if let Some(mark) = head.strip_prefix(b"$EOF:") {
        if mark.len() != 40 {
            return Err(failed("the RDB transfer", &head));
        }
        host.log("MASTER <-> REPLICA sync: receiving streamed RDB from master with EOF to memory");
        read_until_mark(c, link, mark)?
    } else {
        let len = head
            .strip_prefix(b"$")
            .and_then(|l| std::str::from_utf8(l).ok())
            .and_then(|l| l.parse::<usize>().ok())
            .filter(|&n| n <= MAX_RDB)
            .ok_or_else(|| failed("the RDB transfer", &head))?;
        link.status.lock().sync_total = len as i64;
        host.log(&format!(
            "MASTER <-> REPLICA sync: receiving {len} bytes from master to memory"
        ));
        read_exact_len(c, link, len)?
    };
    // The data is about to change history: until loaded, no PSYNC may
    // offer the old replid with the old offset.
    {
        let _gate = link.gate.lock();
        if link.stopped() {
            return Err(End::Stopped);
        }
        can_continue.store(false, Relaxed);
        host.drop_replicas();
        host.log("MASTER <-> REPLICA sync: Flushing old data");
        host.log("MASTER <-> REPLICA sync: Loading DB in memory");
        host.load_rdb(&rdb).map_err(|e| {
            End::Failed(format!(
                "Failed trying to load the MASTER synchronization DB from socket: {e}"
            ))
        })?;
        repl.restart_history(id, offset, backlog_size);
    }
    can_continue.store(true, Relaxed);
    let mut s = link.status.lock();
    s.full_syncs += 1;
    drop(s);
    host.log("MASTER <-> REPLICA sync: Finished with success");
    Ok(())
}

fn progress(link: &Link, read: usize) {
    let mut s = link.status.lock();
    s.sync_read = read as i64;
    s.sync_last_io = Some(Instant::now());
}

fn read_exact_len(c: &mut Conn<'_>, link: &Link, len: usize) -> Res<Vec<u8>> {
    while c.unread().len() < len {
        progress(link, c.unread().len());
        c.fill()?;
    }
    let rdb = c.unread()[..len].to_vec();
    c.pos += len;
    progress(link, len);
    Ok(rdb)
}

/// Diskless transfer: the RDB ends with the 40-byte mark the header named.
fn read_until_mark(c: &mut Conn<'_>, link: &Link, mark: &[u8]) -> Res<Vec<u8>> {
    let mark = mark.to_vec();
    loop {
        let data = c.unread();
        if data.len() >= mark.len() && data.ends_with(&mark) {
            let rdb = data[..data.len() - mark.len()].to_vec();
            c.pos = c.buf.len();
            progress(link, rdb.len());
            return Ok(rdb);
        }
        if data.len() > MAX_RDB {
            return Err(End::Failed("RDB transfer too large".into()));
        }
        progress(link, data.len());
        c.fill()?;
    }
}

/// Applies the master's command stream until the link ends.
fn stream(mut c: Conn<'_>, link: &Link, repl: &Replication, host: &dyn Host) -> Res<()> {
    let (peer, local, fd) = {
        let peer = c
            .sock
            .peer_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let local = c
            .sock
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        (peer, local, raw_fd(&c.sock))
    };
    let mut client = host.master_client(&peer, &local, fd);
    let mut offset = repl.state().master_repl_offset;
    // Bytes of a transaction still open (MULTI and what it queued): they
    // count only once its EXEC ran, so a link dropped inside a
    // transaction resumes at its MULTI (the client's queue is lost).
    let mut pending = 0i64;
    // Their bytes, passed on to our backlog and replicas as one unit.
    let mut applied: Vec<u8> = Vec::new();
    {
        let mut s = link.status.lock();
        s.state = LinkState::Connected;
        s.has_master = true;
        s.master_client = client.id();
        s.read_offset = offset;
        s.applied_offset = offset;
        s.down_since = None;
        s.last_io = Some(Instant::now());
    }
    // The first ACK goes out at once, as Redis's replica sends one on sync.
    let mut last_ack = Instant::now();
    c.send(&[b"REPLCONF", b"ACK", offset.to_string().as_bytes()])?;
    let mut spans: Vec<(usize, usize)> = Vec::new();
    loop {
        loop {
            let start = c.pos;
            let used = match parse_command(&c.buf[start..], &mut spans) {
                Ok(Some(n)) => n,
                Ok(None) => break,
                Err(why) => return Err(End::Failed(format!("protocol error from master: {why}"))),
            };
            let arg = |i: usize| {
                spans
                    .get(i)
                    .map_or(&b""[..], |&(a, b)| &c.buf[start + a..start + b])
            };
            let getack = spans.len() >= 2
                && arg(0).eq_ignore_ascii_case(b"replconf")
                && arg(1).eq_ignore_ascii_case(b"getack");
            if getack {
                // The ACK names the offset before the GETACK itself.
                let off = offset.to_string();
                c.send(&[b"REPLCONF", b"ACK", off.as_bytes()])?;
                last_ack = Instant::now();
            }
            let data = &c.buf[start..start + used];
            let args: Vec<&[u8]> = spans.iter().map(|&(a, b)| &data[a..b]).collect();
            // A command and the offset that counts it go together: a
            // stopped link applies nothing more (see `Link::gate`).
            let _gate = link.gate.lock();
            if link.stopped() {
                return Err(End::Stopped);
            }
            if !getack && !args.is_empty() {
                client.apply(&args);
            }
            applied.extend_from_slice(data);
            c.pos = start + used;
            pending += used as i64;
            if !client.in_multi() {
                offset += pending;
                pending = 0;
                repl.forward(&applied, offset);
                applied.clear();
            }
            let mut s = link.status.lock();
            s.applied_offset = offset;
            s.read_offset = offset + pending + c.unread().len() as i64;
        }
        if last_ack.elapsed() >= Duration::from_secs(1) {
            c.send(&[b"REPLCONF", b"ACK", offset.to_string().as_bytes()])?;
            last_ack = Instant::now();
        }
        if c.fill()? > 0 {
            link.status.lock().read_offset = offset + pending + c.unread().len() as i64;
        }
    }
}

#[cfg(unix)]
fn raw_fd(s: &TcpStream) -> i64 {
    use std::os::fd::AsRawFd;
    i64::from(s.as_raw_fd())
}

/// Parses one multibulk command at the start of `buf`: Ok(Some(bytes
/// used)) with each argument's range in `spans`, Ok(None) when more bytes
/// are needed, Err on anything that is not a well-formed command.
fn parse_command(buf: &[u8], spans: &mut Vec<(usize, usize)>) -> Result<Option<usize>, String> {
    spans.clear();
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    if first != b'*' {
        return Err(format!("expected '*', got byte {first}"));
    }
    let Some((n, mut at)) = number(buf, 1)? else {
        return Ok(None);
    };
    if n > MAX_ARGS {
        return Err("too many arguments".into());
    }
    for _ in 0..n {
        match buf.get(at) {
            None => return Ok(None),
            Some(b'$') => {}
            Some(&b) => return Err(format!("expected '$', got byte {b}")),
        }
        let Some((len, body)) = number(buf, at + 1)? else {
            return Ok(None);
        };
        if len > MAX_BULK {
            return Err("argument too long".into());
        }
        let end = body + len;
        if buf.len() < end + 2 {
            return Ok(None);
        }
        if &buf[end..end + 2] != b"\r\n" {
            return Err("argument not followed by CRLF".into());
        }
        spans.push((body, end));
        at = end + 2;
    }
    Ok(Some(at))
}

/// A decimal number from `at` to `\r\n`: (value, index after the CRLF).
fn number(buf: &[u8], at: usize) -> Result<Option<(usize, usize)>, String> {
    let rest = buf.get(at..).unwrap_or_default();
    let Some(i) = rest.iter().position(|b| !b.is_ascii_digit()) else {
        if rest.len() > 19 {
            return Err("length too long".into());
        }
        return Ok(None);
    };
    if rest[i] != b'\r' {
        return Err("bad length".into());
    }
    let digits = &rest[..i];
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return Err("bad length".into());
    }
    match rest.get(i + 1) {
        None => return Ok(None),
        Some(b'\n') => {}
        Some(_) => return Err("bad line ending".into()),
    }
    let n = std::str::from_utf8(digits)
        .ok()
        .and_then(|d| d.parse::<usize>().ok())
        .ok_or("bad length")?;
    Ok(Some((n, at + i + 2)))
}

#[cfg(test)]
mod tests {
    use super::*;

    type Parsed = Option<(usize, Vec<Vec<u8>>)>;

    fn parse(buf: &[u8]) -> Result<Parsed, String> {
        let mut spans = Vec::new();
        Ok(parse_command(buf, &mut spans)?
            .map(|n| (n, spans.iter().map(|&(a, b)| buf[a..b].to_vec()).collect())))
    }

    #[test]
    fn a_command_parses_with_its_length() {
        let cmd = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n*1\r\n";
        let (n, args) = parse(cmd).unwrap().unwrap();
        assert_eq!(n, cmd.len() - 4);
        assert_eq!(args, vec![b"SET".to_vec(), b"k".to_vec(), Vec::new()]);
    }

    #[test]
    fn every_prefix_of_a_command_wants_more() {
        let cmd = b"*2\r\n$4\r\nPING\r\n$10\r\n0123456789\r\n";
        for cut in 0..cmd.len() {
            assert_eq!(parse(&cmd[..cut]).unwrap(), None, "cut at {cut}");
        }
        assert!(parse(cmd).unwrap().is_some());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            &b"+OK\r\n"[..],
            b"*x\r\n",
            b"*1\r\n+a\r\n",
            b"*1\r\n$3\r\nabcd\r\n",
            b"*1\r\n$-1\r\n",
            b"*99999999999999999999\r\n",
            b"*1\r\n$999999999999\r\n",
            b"*1\n",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
