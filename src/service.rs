//! Glue between the network layer and the commands: one `Conn` per client,
//! and each worker's periodic active-expiry pass over its share of shards.

use damselfly_commands::dispatch::Hint;
use damselfly_commands::scripting::Job;
use damselfly_commands::server::metrics;
use damselfly_commands::{execute, Client, CmdError, Server, ThreadStats, Wait};
use damselfly_net::{Flow, HttpRequest, HttpResponse, Service, Session};
use damselfly_protocol::{Args, Limits, Reply};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

pub struct App {
    pub server: Arc<Server>,
    /// The admin listener's port (0: none); its clients skip the password
    /// with `--admin_nopass`.
    pub admin_port: u16,
    pub admin_nopass: bool,
}

pub struct Conn {
    /// Refused by protected mode: the first request gets the DENIED error
    /// and the connection closes.
    denied: bool,
    /// Past `maxclients`: told so at once and closed.
    refused: bool,
    /// Reply bytes being written (`maxmemory-clients` counts them).
    reply_pending: usize,
    server: Arc<Server>,
    stats: Arc<ThreadStats>,
    client: Client,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.closing();
    }
}

impl Session for Conn {
    fn limits(&self) -> Limits {
        Limits {
            max_bulk_len: self.server.config.proto_max_bulk_len.load(Relaxed),
            auth_required: !self.client.authenticated,
        }
    }

    fn query_buffer_limit(&self) -> usize {
        self.server.config.query_buffer_limit.load(Relaxed) as usize
    }

    type Hint = Hint;

    fn handle(&mut self, args: &Args<'_>, hint: Hint, out: &mut Reply) -> Flow {
        if self.denied {
            out.error(&damselfly_commands::CmdError::ProtectedMode.to_string());
            return Flow::Close;
        }
        if self.server.pause.on() {
            if let Some(wait) =
                damselfly_commands::dispatch::pause_wait(&self.server, &self.client, args)
            {
                return Flow::Retry(Box::pin(wait.wait(tokio::time::sleep)));
            }
        }
        match execute(&self.server, &self.stats, &mut self.client, args, hint, out) {
            Some(Wait::Keys(blocked)) => {
                let sleep = blocked.timeout().map(tokio::time::sleep);
                return Flow::Wait(Box::pin(blocked.wait(self.server.clone(), sleep)));
            }
            // A script known to end quickly runs here; any other runs on
            // the script thread, so this worker keeps serving its other
            // clients (who may need to send SCRIPT KILL).
            Some(Wait::Script(job)) => {
                let id = self.client.id();
                let here = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    job.run_here(&self.server, id)
                }));
                match here.unwrap_or_else(|_| Ok(aborted_script())) {
                    Ok(bytes) => out.raw(&bytes),
                    Err(job) => {
                        let server = self.server.clone();
                        return Flow::Wait(Box::pin(run_script(server, id, job)));
                    }
                }
            }
            // WAIT polls the replicas' acknowledgements off the worker.
            Some(Wait::Acks(acks)) => {
                return Flow::Wait(Box::pin(async move {
                    tokio::task::spawn_blocking(move || acks.run())
                        .await
                        .unwrap_or_else(|_| b":0\r\n".to_vec())
                }));
            }
            None => {}
        }
        if self.client.close_after_reply {
            Flow::Close
        } else {
            Flow::Continue
        }
    }

    fn count_io(&mut self, read: usize, written: usize) {
        self.stats.net_input.add(read as u64);
        self.stats.net_output.add(written as u64);
    }

    fn take_pushed(&mut self, out: &mut Reply) -> bool {
        self.client.info.outbox.take(out)
    }

    fn poll_pushed(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.client.info.outbox.poll_ready(cx)
    }

    fn poll_dropped(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.client.info.outbox.poll_closed(cx)
    }

    fn pushed_written(&mut self) {
        self.client.info.outbox.written();
    }

    fn batch_begin(&mut self) {
        damselfly_commands::dispatch::batch_begin();
    }

    fn batch_end(&mut self) {
        damselfly_commands::dispatch::batch_end();
    }

    fn prefetch(&mut self, args: &Args<'_>, hint: &mut Hint) -> u64 {
        damselfly_commands::dispatch::prefetch(&self.server, self.client.db, args, hint)
    }

    fn prefetch_again(
        &mut self,
        prev_cookie: u64,
        prev_hint: Hint,
        hint: &mut Hint,
    ) -> Option<u64> {
        damselfly_commands::dispatch::prefetch_again(prev_cookie, prev_hint, hint)
    }

    fn prefetch_more(&mut self, cookie: u64) -> u64 {
        damselfly_commands::dispatch::prefetch_entry(&self.server, cookie)
    }

    fn prefetch_member(&mut self, step: usize, cookie: u64, args: &Args<'_>) -> u64 {
        damselfly_commands::dispatch::prefetch_member(&self.server, step, cookie, args)
    }

    fn closing(&mut self) {
        damselfly_commands::release_client(&self.server, &mut self.client);
        self.server.repl.remove_replica(self.client.id());
        damselfly_commands::monitor::stop(&self.server, &mut self.client);
        damselfly_commands::client_evict::forget(&self.server, &self.client.info);
        self.server.clients.unregister(self.client.id());
    }

    fn query_pending(&mut self, bytes: usize) {
        self.client.info.qbuf.store(bytes, Relaxed);
        self.account_memory(bytes);
    }

    /// The buffer is sized for the announced request, as Redis sizes its
    /// query buffer for a big argument, and counts as held at once.
    fn query_expected(&mut self, bytes: usize) {
        self.account_memory(bytes);
    }

    fn output_pending(&mut self, bytes: usize) {
        if self.reply_pending != bytes {
            self.reply_pending = bytes;
            self.account_memory(self.client.info.qbuf.load(Relaxed));
        }
    }

    fn refusal(&mut self) -> Option<Vec<u8>> {
        self.refused
            .then(|| format!("-{}\r\n", CmdError::MaxClients).into_bytes())
    }

    /// `timeout` seconds, except for subscribers and monitors (Redis's
    /// rule; a blocked client is waiting on its command, not idle).
    fn idle_timeout(&self) -> Option<Duration> {
        let secs = self.server.config.idle_timeout.load(Relaxed);
        let exempt = self.client.monitor || self.client.info.subscriptions.load(Relaxed) > 0;
        (secs > 0 && !exempt).then(|| Duration::from_secs(secs))
    }

    fn http_enabled(&self) -> bool {
        self.server
            .config
            .get("primary_port_http_enabled")
            .as_deref()
            != Some("false")
    }

    /// `/metrics` and `/healthz` are open (scrapers and probes carry no
    /// password); `/` asks for HTTP basic auth as user `default` when a
    /// password is set.
    fn http(&mut self, req: &HttpRequest) -> HttpResponse {
        if !matches!(req.method.as_str(), "GET" | "HEAD") {
            return HttpResponse::new(405, "text/plain", "method not allowed\n");
        }
        match req.path.as_str() {
            "/metrics" => HttpResponse::new(
                200,
                "text/plain; version=0.0.4",
                metrics::prometheus(&self.server),
            ),
            "/healthz" => HttpResponse::new(200, "text/plain", "OK\n"),
            "/" if !basic_auth_ok(
                &self.server.config.get("requirepass").unwrap_or_default(),
                req.header("authorization"),
            ) =>
            {
                let mut r = HttpResponse::new(401, "text/plain", "authentication required\n");
                r.headers
                    .push(("WWW-Authenticate", "Basic realm=\"damselfly\"".into()));
                r
            }
            "/" => HttpResponse::new(200, "text/plain", metrics::status_page(&self.server)),
            _ => HttpResponse::new(404, "text/plain", "not found\n"),
        }
    }
}

/// Bytes a watched key or a subscription is counted as for
/// `maxmemory-clients`.
const ENTRY_COST: usize = 64;

impl Conn {
    /// `maxmemory-clients`: what this client holds, its query buffer
    /// taking `query` bytes.
    fn account_memory(&self, query: usize) {
        if damselfly_commands::client_evict::enabled(&self.server) {
            let info = &self.client.info;
            let c = &self.client;
            let queued = c.multi.as_ref().map_or(0, |m| m.bytes);
            // Watched keys and subscriptions at an estimated cost each
            // (their bookkeeping in the registries), as Redis counts them.
            let entries = (c.watches.len() + c.subs.total()) * ENTRY_COST;
            let held = query + info.outbox.held() + queued + entries + self.reply_pending;
            damselfly_commands::client_evict::account(&self.server, info, held as u64);
        }
    }
}

/// The longest a worker runs active expiry before serving its ready
/// connections again: bounds the wait a mass expiry adds to a request.
const EXPIRE_SLICE: Duration = Duration::from_micros(200);

/// Where a worker's active-expiry cycle stands between its slices.
#[derive(Clone, Copy)]
struct ExpireCycle {
    /// Expiry time spent so far in this cycle (the budget counts time
    /// spent expiring, not the wall time the cycle spans).
    spent: Duration,
    /// The shard and DB to continue with.
    shard: usize,
    db: usize,
}

thread_local! {
    /// This worker's cycle in progress, if any.
    static EXPIRE_CYCLE: std::cell::Cell<Option<ExpireCycle>> = const { std::cell::Cell::new(None) };
}

/// Whether an `Authorization: Basic` header carries user `default` and
/// `password` (always true when no password is set).
fn basic_auth_ok(password: &str, header: Option<&str>) -> bool {
    use base64::Engine as _;
    if password.is_empty() {
        return true;
    }
    let Some(encoded) = header.and_then(|h| h.strip_prefix("Basic ")) else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    decoded == format!("default:{password}").as_bytes()
}

/// TCP keepalive on a client socket, probing after `secs` idle seconds, as
/// Redis's `tcp-keepalive` does (0: off). Failures are ignored: the
/// connection works without it.
fn set_keepalive(fd: i64, secs: i32) {
    let Ok(fd) = libc::c_int::try_from(fd) else {
        return;
    };
    let set = |level: libc::c_int, name: libc::c_int, value: libc::c_int| {
        // SAFETY: `fd` is the open socket of the connection being set up,
        // owned by the caller for the whole call; the option value is a
        // c_int local that outlives the call, and its size is passed.
        unsafe {
            libc::setsockopt(
                fd,
                level,
                name,
                (&value as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        }
    };
    set(libc::SOL_SOCKET, libc::SO_KEEPALIVE, i32::from(secs > 0));
    if secs > 0 {
        set(libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, secs);
        set(libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, (secs / 3).max(1));
        set(libc::IPPROTO_TCP, libc::TCP_KEEPCNT, 3);
    }
}

impl Service for App {
    type Session = Conn;

    fn open(&self, peer: SocketAddr, local: SocketAddr, fd: i64, _worker: usize) -> Option<Conn> {
        let keepalive = self.server.config.get("tcp-keepalive");
        if let Some(secs) = keepalive.and_then(|v| v.parse::<i32>().ok()) {
            set_keepalive(fd, secs);
        }
        let admin = local.port() == self.admin_port && self.admin_port != 0;
        Some(self.open_client(
            peer.to_string(),
            local.to_string(),
            fd,
            peer.ip().is_loopback(),
            admin,
        ))
    }

    /// A Unix socket client: local to the machine (protected mode lets it
    /// in), shown as `path:0`, as Redis shows it.
    fn open_unix(&self, fd: i64, _worker: usize) -> Option<Conn> {
        let path = self.server.config.get("unixsocket").unwrap_or_default();
        let addr = format!("{path}:0");
        let conn = self.open_client(addr.clone(), addr, fd, true, false);
        conn.client.info.unix.store(true, Relaxed);
        Some(conn)
    }

    /// Periodic work: the tracking table's size limit, pending BCAST
    /// invalidations, active expiry.
    fn tick(&self, worker: usize, workers: usize) -> bool {
        damselfly_storage::calibrate_clock();
        let s = &self.server;
        let continuing = EXPIRE_CYCLE.with(|c| c.get()).is_some();
        if !continuing {
            s.tracking.enforce_limit(&s.pubsub);
            s.tracking.flush_bcast(&s.pubsub);
        }
        let more = self.expire_slice(worker, workers);
        // Keys expired by this slice reach BCAST trackers now.
        s.tracking.flush_bcast(&s.pubsub);
        more
    }

    fn tick_interval(&self) -> Duration {
        let hz = self.server.config.hz.load(Relaxed).clamp(1, 500);
        Duration::from_millis(1000 / hz)
    }
}

impl App {
    /// A new client's session, whatever it came through.
    fn open_client(
        &self,
        peer: String,
        local: String,
        fd: i64,
        local_peer: bool,
        admin: bool,
    ) -> Conn {
        let stats = self.server.thread_stats();
        // Redis's rule: refused when the clients already connected reach
        // maxclients (the connection is told so, then closed).
        let refused =
            self.server.clients.count() as u64 >= self.server.config.maxclients.load(Relaxed);
        if refused {
            self.server.rejected_connections.fetch_add(1, Relaxed);
        } else {
            stats.connections.add(1);
        }
        let info = self.server.clients.register(peer, local, fd);
        let nopass = self.server.acl.default_nopass();
        let authenticated = nopass || (admin && self.admin_nopass);
        // Redis's protected mode: with no password on the default user,
        // only loopback clients are served.
        let denied = nopass
            && !local_peer
            && self.server.config.get("protected-mode").as_deref() == Some("yes");
        Conn {
            denied,
            refused,
            reply_pending: 0,
            server: self.server.clone(),
            stats,
            client: Client::new(info, self.server.acl.default_user(), authenticated),
        }
    }

    /// One slice of active expiry, Redis's "fast enough" cycle per shard:
    /// sweep buckets of each DB holding volatile keys and keep going while
    /// more than a tenth of what was examined had expired. A cycle (one per
    /// tick) may spend a quarter of the tick (times `active-expire-effort`),
    /// as Redis's slow cycle does, but in slices of at most
    /// `EXPIRE_SLICE`, each holding one shard at a time, with the worker
    /// serving its clients in between; Redis spends its quarter in one go,
    /// which a mass expiry turns into a 25 ms stall every 100 ms. Returns
    /// whether the cycle wants another slice.
    fn expire_slice(&self, worker: usize, workers: usize) -> bool {
        let ks = &self.server.keyspace;
        if damselfly_storage::is_replica() && ks.active_expire() {
            // Only the keys this replica's own clients gave a TTL.
            let now = damselfly_storage::now_ms();
            for shard_idx in (worker..ks.shard_count()).step_by(workers.max(1)) {
                if let Some(mut shard) = ks.try_lock_one(shard_idx) {
                    if !shard.local_volatile.is_empty() {
                        shard.expire_local(now);
                    }
                }
            }
            EXPIRE_CYCLE.with(|c| c.set(None));
            return false;
        }
        if !ks.active_expire() || !damselfly_storage::expiry_deletes(damselfly_storage::now_ms()) {
            EXPIRE_CYCLE.with(|c| c.set(None));
            return false;
        }
        let hz = self.server.config.hz.load(Relaxed).clamp(1, 500);
        let effort = self
            .server
            .config
            .get("active-expire-effort")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(1);
        let budget = Duration::from_micros(250_000 / hz * effort as u64);
        let slice_start = Instant::now();
        let mut cycle = EXPIRE_CYCLE.with(|c| c.get()).unwrap_or(ExpireCycle {
            spent: Duration::ZERO,
            shard: worker,
            db: 0,
        });
        let slice = EXPIRE_SLICE.min(budget.saturating_sub(cycle.spent));
        let mut out_of_time = false;
        while cycle.shard < ks.shard_count() && !out_of_time {
            // A busy shard is skipped until the next tick: a long script
            // holds every shard, and this worker must keep serving. Expiry
            // removes only keys whose time has passed, so a snapshot owed
            // this shard need not be written first (`try_lock_one` is a
            // non-blocking `peek`).
            let Some(mut shard) = ks.try_lock_one(cycle.shard) else {
                cycle.db = 0;
                cycle.shard += workers.max(1);
                continue;
            };
            while cycle.db < shard.dbs.len() {
                // Most DBs of most shards hold no volatile keys: skip
                // them before reading any clock (this runs hz × shards
                // × dbs times a second even when idle).
                if shard.dbs[cycle.db].volatile > 0 {
                    let now = damselfly_storage::now_ms();
                    let (examined, expired) = shard.expire_step(cycle.db, 16 * effort, now);
                    if slice_start.elapsed() > slice {
                        out_of_time = true;
                        // This DB may hold more: continue here.
                        if examined > 0 && expired * 10 >= examined {
                            break;
                        }
                    } else if examined > 0 && expired * 10 >= examined {
                        continue;
                    }
                }
                cycle.db += 1;
                if out_of_time {
                    break;
                }
            }
            if cycle.db >= ks.dbnum() {
                cycle.db = 0;
                cycle.shard += workers.max(1);
            }
        }
        let took = slice_start.elapsed();
        cycle.spent += took;
        damselfly_commands::observe::latency_event(
            &self.server,
            "expire-cycle",
            took.as_millis() as u64,
        );
        let more = cycle.shard < ks.shard_count() && cycle.spent < budget;
        EXPIRE_CYCLE.with(|c| c.set(more.then_some(cycle)));
        more
    }
}

#[cfg(test)]
mod tests {
    use super::basic_auth_ok;

    #[test]
    fn basic_auth_wants_user_default_and_the_password() {
        assert!(basic_auth_ok("", None));
        assert!(!basic_auth_ok("pw", None));
        // base64("default:pw") and base64("other:pw").
        assert!(basic_auth_ok("pw", Some("Basic ZGVmYXVsdDpwdw==")));
        assert!(!basic_auth_ok("pw", Some("Basic b3RoZXI6cHc=")));
        assert!(!basic_auth_ok("pw", Some("Basic !!!")));
        assert!(!basic_auth_ok("pw", Some("Bearer ZGVmYXVsdDpwdw==")));
    }

    use super::set_keepalive;
    use std::os::fd::AsRawFd;

    fn get(fd: i32, level: libc::c_int, name: libc::c_int) -> libc::c_int {
        let mut v: libc::c_int = -1;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: fd is a live socket owned by the test; v and len are
        // locals of the sizes passed.
        unsafe {
            libc::getsockopt(
                fd,
                level,
                name,
                (&mut v as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        v
    }

    #[test]
    fn keepalive_is_set_on_the_socket() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let s = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let fd = s.as_raw_fd();
        set_keepalive(i64::from(fd), 120);
        assert_eq!(get(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE), 1);
        assert_eq!(get(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE), 120);
        set_keepalive(i64::from(fd), 0);
        assert_eq!(get(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE), 0);
    }
}

/// A script waiting for the script thread, or running there.
struct ScriptRun {
    job: Job,
    server: Arc<Server>,
    caller: u64,
    state: Arc<AtomicU8>,
    reply: tokio::sync::oneshot::Sender<Vec<u8>>,
}

const SCRIPT_QUEUED: u8 = 0;
const SCRIPT_STARTED: u8 = 1;
const SCRIPT_CANCELLED: u8 = 2;

/// Scripts run one at a time (they share the Lua VM lock), so one thread
/// runs them all, in arrival order. A blocking-pool thread per EVAL cost a
/// hand-off each way and a contended VM lock: ~40 µs of CPU per EVAL, 13x
/// Redis's, at 50 pipelining clients.
fn script_thread() -> Option<&'static std::sync::mpsc::Sender<ScriptRun>> {
    static RUNNER: OnceLock<Option<std::sync::mpsc::Sender<ScriptRun>>> = OnceLock::new();
    RUNNER
        .get_or_init(|| {
            let (tx, rx) = std::sync::mpsc::channel::<ScriptRun>();
            std::thread::Builder::new()
                .name("scripts".into())
                // As a worker's: deep scripts (cjson, nested pcall) recurse
                // on the C stack.
                .stack_size(16 * 1024 * 1024)
                .spawn(move || {
                    for run in rx {
                        let started = run.state.compare_exchange(
                            SCRIPT_QUEUED,
                            SCRIPT_STARTED,
                            Relaxed,
                            Relaxed,
                        );
                        if started.is_err() {
                            continue;
                        }
                        let (job, server, caller) = (run.job, run.server, run.caller);
                        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            job.run(&server, caller)
                        }))
                        .unwrap_or_else(|_| aborted_script());
                        let _ = run.reply.send(out);
                    }
                })
                .ok()
                .map(|_| tx)
        })
        .as_ref()
}

fn aborted_script() -> Vec<u8> {
    format!("-{}\r\n", CmdError::ScriptAborted).into_bytes()
}

/// Runs `job` on the script thread and waits for its reply. A job still
/// queued when the running script passes its busy threshold gets -BUSY, as
/// Redis answers every other client then.
async fn run_script(server: Arc<Server>, caller: u64, job: Job) -> Vec<u8> {
    let Some(runner) = script_thread() else {
        return aborted_script();
    };
    let (reply, mut done) = tokio::sync::oneshot::channel();
    let state = Arc::new(AtomicU8::new(SCRIPT_QUEUED));
    let run = ScriptRun {
        job,
        server: server.clone(),
        caller,
        state: state.clone(),
        reply,
    };
    if runner.send(run).is_err() {
        return aborted_script();
    }
    loop {
        tokio::select! {
            biased;
            out = &mut done => return out.unwrap_or_else(|_| aborted_script()),
            () = tokio::time::sleep(Duration::from_millis(10)) => {
                if let Some(err) = server.scripting.busy(&server, caller) {
                    let cancelled = state
                        .compare_exchange(SCRIPT_QUEUED, SCRIPT_CANCELLED, Relaxed, Relaxed)
                        .is_ok();
                    if cancelled {
                        return format!("-{err}\r\n").into_bytes();
                    }
                }
            }
        }
    }
}
