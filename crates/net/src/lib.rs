//! Networking: the listener, the worker threads and the connection loop.
//! Knows nothing of commands: requests go to a `Session` the binary supplies.
//!
//! Threads: one acceptor thread blocks in accept() and hands each connection
//! to a worker, round-robin. Each worker runs a tokio current-thread runtime
//! that owns its connections for their whole life; a connection's commands
//! run on its worker's thread, so there is no hand-off per request.
//!
//! Invariants:
//! - One read, then every complete request in the buffer is executed and the
//!   replies are written with one write (pipelining costs one syscall each way).
//!   That write waits for the end of the worker's round (every connection
//!   with input has run), as Redis writes before it sleeps.
//! - A protocol error is answered with Redis's text and the connection closed.
//! - A client's buffer is bounded by `client-query-buffer-limit`; past it the
//!   connection is closed, and other clients never notice.
//! - Out-of-band output (pub/sub messages other threads queue) is drained
//!   before each request and after each batch, and whenever it arrives while
//!   the connection is idle; a client whose session says it must go (its
//!   output buffer limit) is dropped even while a write to it is stuck.
//!   During a blocked command's wait it is not drained (only the drop is
//!   watched), so the wait's reply comes first.
//! - A connection that closes (QUIT, a protocol error) drops its session's
//!   registrations before writing its last reply: once a client has read
//!   QUIT's +OK, no other client sees it (as a redirection target, say).

#![deny(clippy::unwrap_used, clippy::expect_used)]

mod http;
mod round;

pub use http::{HttpRequest, HttpResponse};

use damselfly_protocol::{parse_request, Args, Limits, Parsed, Reply, Request};
use round::{end_of_round, Counted};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

pub use tokio_rustls::rustls;

/// A listening socket and, for TLS, the configuration its connections
/// are handshaken with (on their worker, before the session opens).
pub struct Listener {
    pub tcp: std::net::TcpListener,
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// What the connection does after a request.
pub enum Flow {
    Continue,
    /// Close once the replies so far are written.
    Close,
    /// A blocked command: write the replies so far, then wait for this
    /// reply; later requests stay queued meanwhile. Dropping the future
    /// (the client went away) cancels the wait.
    Wait(Pin<Box<dyn Future<Output = Vec<u8>>>>),
    /// Not run yet (CLIENT PAUSE): write the replies so far, wait for
    /// this, then handle the same request again.
    Retry(Pin<Box<dyn Future<Output = ()>>>),
}

/// One client connection's handler.
pub trait Session {
    /// What warming a pipelined request learnt about it (its command,
    /// its key's shard and hash), handed to its run so that the run need
    /// not work it out again.
    type Hint: Copy + Default;
    /// Current protocol limits (they can change with CONFIG SET).
    fn limits(&self) -> Limits;
    /// Largest read buffer allowed before the client is dropped.
    fn query_buffer_limit(&self) -> usize;
    /// Executes one request, appending its reply; `hint` is what
    /// `prefetch` left for this very request (the default if none ran).
    fn handle(&mut self, args: &Args<'_>, hint: Self::Hint, out: &mut Reply) -> Flow;
    /// Bytes read from and written to the socket, for INFO.
    fn count_io(&mut self, read: usize, written: usize);
    /// Moves output other threads queued for this client (pub/sub
    /// messages) into `out`; false when the client must be dropped.
    fn take_pushed(&mut self, _out: &mut Reply) -> bool {
        true
    }
    /// Ready when `take_pushed` has something to do.
    fn poll_pushed(&self, _cx: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }
    /// Ready when the client must be dropped (watched while writes wait).
    fn poll_dropped(&self, _cx: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }
    /// Everything taken so far reached the socket.
    fn pushed_written(&mut self) {}
    /// Requests are about to run without a wait between them: after a
    /// read, and again after any wait within the batch.
    fn batch_begin(&mut self) {}
    /// The batch's requests have run, or it is about to wait.
    fn batch_end(&mut self) {}
    /// A pipelined request will run soon: start loading what it touches,
    /// and leave in `hint` what its run can reuse. Returns what
    /// `prefetch_more` takes once the others are started too (0: nothing).
    fn prefetch(&mut self, _args: &Args<'_>, _hint: &mut Self::Hint) -> u64 {
        0
    }
    /// `prefetch` for a request that names the same command and key as
    /// the one warmed just before it (`prev_cookie`, `prev_hint`: what
    /// that one returned and left), whose loads are on their way already.
    /// None when this request needs warming of its own after all.
    fn prefetch_again(
        &mut self,
        _prev_cookie: u64,
        _prev_hint: Self::Hint,
        _hint: &mut Self::Hint,
    ) -> Option<u64> {
        None
    }
    /// The second step of warming a request (what `prefetch` returned).
    /// Returns what `prefetch_member` takes next (0: nothing more).
    fn prefetch_more(&mut self, _cookie: u64) -> u64 {
        0
    }
    /// Step `step` (from 1) of warming a request's member in a
    /// collection, given what the step before returned: starts the loads
    /// that the previous step's (now cached) data leads to, and returns
    /// what the next step takes (0: nothing more). At most
    /// `WARM_MEMBER_STEPS` steps.
    fn prefetch_member(&mut self, _step: usize, _cookie: u64, _args: &Args<'_>) -> u64 {
        0
    }
    /// The connection is about to close (QUIT, a protocol error): drop the
    /// client's registrations now, before its last reply can be read, so
    /// that no one sees it alive after that (must be safe to repeat).
    fn closing(&mut self) {}
    /// Bytes of the query buffer not yet processed, the request about to
    /// be handled included (CLIENT LIST `qbuf`).
    fn query_pending(&mut self, _bytes: usize) {}
    /// A partly read request will take `bytes` of query buffer in all (a
    /// big argument announced by its length): the buffer is sized for it.
    fn query_expected(&mut self, _bytes: usize) {}
    /// Replies of `bytes` are being written (0: all written); a client
    /// that does not read keeps them in memory meanwhile.
    fn output_pending(&mut self, _bytes: usize) {}
    /// Whether a connection that starts like HTTP is served as HTTP.
    fn http_enabled(&self) -> bool {
        false
    }
    /// Answers an HTTP request made on the RESP port.
    fn http(&mut self, _req: &HttpRequest) -> HttpResponse {
        HttpResponse::new(404, "text/plain", "not found\n")
    }
    /// Bytes to send at once to a connection that is refused (too many
    /// clients); it is closed after them.
    fn refusal(&mut self) -> Option<Vec<u8>> {
        None
    }
    /// How long the client may stay silent between requests before it is
    /// closed (`timeout`); None: forever.
    fn idle_timeout(&self) -> Option<Duration> {
        None
    }
}

pub trait Service: Send + Sync + 'static {
    type Session: Session;
    /// A new connection on `worker`; None refuses it.
    fn open(
        &self,
        peer: SocketAddr,
        local: SocketAddr,
        fd: i64,
        worker: usize,
    ) -> Option<Self::Session>;
    /// A new connection on the Unix socket; None refuses it.
    fn open_unix(&self, _fd: i64, _worker: usize) -> Option<Self::Session> {
        None
    }
    /// Periodic work of a worker (active expiry of its shards), one short
    /// slice per call: true asks for another slice once the worker has
    /// served the connections that are ready meanwhile.
    fn tick(&self, worker: usize, workers: usize) -> bool;
    fn tick_interval(&self) -> Duration;
}

const READ_CHUNK: usize = 16 * 1024;
/// Stack of worker and blocking-pool threads: Lua scripts run there, and
/// converting their deeply nested values recurses (only address space is
/// reserved until used).
const WORKER_STACK: usize = 16 * 1024 * 1024;
/// Replies are flushed mid-batch past this size so a huge pipeline does not
/// buffer all its replies.
const FLUSH_AT: usize = 1024 * 1024;

/// How long a connection waits for a script's (or WAIT's) reply before it
/// sends the replies it already has.
const QUICK_WAIT: std::time::Duration = std::time::Duration::from_millis(1);

/// Serves `listener` with `threads` workers. Returns only on a fatal error
/// of the acceptor.
pub fn serve<S: Service>(
    listener: std::net::TcpListener,
    service: Arc<S>,
    threads: usize,
) -> std::io::Result<()> {
    serve_all(
        vec![Listener {
            tcp: listener,
            tls: None,
        }],
        service,
        threads,
    )
}

/// A connection handed to a worker: TCP with its listener's TLS
/// configuration, or the Unix socket's.
enum Handoff {
    Tcp(std::net::TcpStream, Option<tokio_rustls::TlsAcceptor>),
    Unix(std::os::unix::net::UnixStream),
}

/// Serves every listener with one set of `threads` workers: one acceptor
/// thread per listener, connections handed round-robin to the workers.
/// Returns only on a fatal error of an acceptor.
pub fn serve_all<S: Service>(
    listeners: Vec<Listener>,
    service: Arc<S>,
    threads: usize,
) -> std::io::Result<()> {
    serve_all_and_unix(listeners, None, service, threads)
}

/// `serve_all`, plus a Unix socket listener (`unixsocket`) feeding the
/// same workers from its own acceptor thread.
pub fn serve_all_and_unix<S: Service>(
    listeners: Vec<Listener>,
    unix: Option<std::os::unix::net::UnixListener>,
    service: Arc<S>,
    threads: usize,
) -> std::io::Result<()> {
    let threads = threads.max(1);
    let mut senders = Vec::with_capacity(threads);
    for worker in 0..threads {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Handoff>();
        senders.push(tx);
        let service = service.clone();
        std::thread::Builder::new()
            .name(format!("worker-{worker}"))
            .stack_size(WORKER_STACK)
            .spawn(move || {
                worker_main(service, rx, worker, threads);
            })?;
    }
    if let Some(unix) = unix {
        let senders = senders.clone();
        std::thread::Builder::new()
            .name("unix-acceptor".into())
            .spawn(move || {
                if let Err(e) = accept_unix(&unix, &senders) {
                    eprintln!("unix socket acceptor stopped: {e}");
                }
            })?;
    }
    let (first, rest) = listeners
        .split_first()
        .ok_or_else(|| std::io::Error::other("no listener"))?;
    for l in rest {
        let tcp = l.tcp.try_clone()?;
        let tls = l.tls.clone();
        let senders = senders.clone();
        std::thread::Builder::new()
            .name("acceptor".into())
            .spawn(move || {
                if let Err(e) = accept_loop(&tcp, tls, &senders) {
                    eprintln!("acceptor stopped: {e}");
                }
            })?;
    }
    accept_loop(&first.tcp, first.tls.clone(), &senders)
}

fn accept_loop(
    listener: &std::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    senders: &[tokio::sync::mpsc::UnboundedSender<Handoff>],
) -> std::io::Result<()> {
    let threads = senders.len();
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let mut next = 0;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                if senders[next]
                    .send(Handoff::Tcp(stream, acceptor.clone()))
                    .is_err()
                {
                    return Err(std::io::Error::other("worker thread exited"));
                }
                next = (next + 1) % threads;
            }
            Err(e) if is_transient(&e) => {
                // Out of descriptors or a connection reset before accept:
                // back off briefly instead of spinning.
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e),
        }
    }
}

fn accept_unix(
    listener: &std::os::unix::net::UnixListener,
    senders: &[tokio::sync::mpsc::UnboundedSender<Handoff>],
) -> std::io::Result<()> {
    let mut next = 0;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                if senders[next].send(Handoff::Unix(stream)).is_err() {
                    return Err(std::io::Error::other("worker thread exited"));
                }
                next = (next + 1) % senders.len();
            }
            Err(e) if is_transient(&e) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(e),
        }
    }
}

fn is_transient(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | Interrupted | WouldBlock
    ) || e.raw_os_error().is_some_and(|c| c == 24 || c == 23)
}

fn worker_main<S: Service>(
    service: Arc<S>,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Handoff>,
    worker: usize,
    workers: usize,
) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_stack_size(WORKER_STACK)
        // WAIT's polls run on the blocking pool: a few threads per worker
        // are plenty, and a burst of them must not start hundreds.
        .max_blocking_threads(16)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("worker {worker}: cannot start runtime: {e}");
            return;
        }
    };
    let local = tokio::task::LocalSet::new();
    let ticker = service.clone();
    local.spawn_local(async move {
        let mut interval = tokio::time::interval(ticker.tick_interval());
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            // Deferred, so the I/O driver is polled between slices.
            while ticker.tick(worker, workers) {
                tokio::task::yield_now().await;
            }
        }
    });
    local.block_on(&rt, async move {
        while let Some(handoff) = rx.recv().await {
            let (std_stream, tls) = match handoff {
                Handoff::Tcp(s, tls) => (s, tls),
                Handoff::Unix(s) => {
                    let _ = s.set_nonblocking(true);
                    let fd = {
                        use std::os::fd::AsRawFd;
                        i64::from(s.as_raw_fd())
                    };
                    let Ok(stream) = tokio::net::UnixStream::from_std(s) else {
                        continue;
                    };
                    if let Some(session) = service.open_unix(fd, worker) {
                        tokio::task::spawn_local(Counted::new(connection(stream, session)));
                    }
                    continue;
                }
            };
            let _ = std_stream.set_nonblocking(true);
            let (Ok(peer), Ok(local_addr)) = (std_stream.peer_addr(), std_stream.local_addr())
            else {
                continue;
            };
            let fd = raw_fd(&std_stream);
            let Ok(stream) = TcpStream::from_std(std_stream) else {
                continue;
            };
            match tls {
                None => {
                    let Some(session) = service.open(peer, local_addr, fd, worker) else {
                        continue;
                    };
                    tokio::task::spawn_local(Counted::new(connection(stream, session)));
                }
                Some(acceptor) => {
                    // The handshake runs in the connection's own task so
                    // that a slow or failing client holds up no one else.
                    let service = service.clone();
                    tokio::task::spawn_local(Counted::new(async move {
                        let Ok(stream) = acceptor.accept(stream).await else {
                            return;
                        };
                        if let Some(session) = service.open(peer, local_addr, fd, worker) {
                            connection(stream, session).await;
                        }
                    }));
                }
            }
        }
    });
}

#[cfg(unix)]
fn raw_fd(s: &std::net::TcpStream) -> i64 {
    use std::os::fd::AsRawFd;
    i64::from(s.as_raw_fd())
}

#[cfg(not(unix))]
fn raw_fd(_s: &std::net::TcpStream) -> i64 {
    -1
}

/// Pipelined requests warmed together: enough for their memory loads to
/// overlap, few enough that the first is still cached when it runs.
const WARM_MAX: usize = 16;
/// The most `prefetch_member` steps a warmed request takes after its
/// entry (a member's bucket slot, node and value in its collection).
const WARM_MEMBER_STEPS: usize = 3;

/// Requests `warm` parsed ahead (with the batch's limits, as the loop
/// parses them), run in order before the buffer is parsed further.
struct Ahead<H> {
    reqs: Vec<Request>,
    /// Each request's hint, grown with `reqs` (a connection that never
    /// pipelines holds none).
    hints: Vec<H>,
    consumed: [usize; WARM_MAX],
    next: usize,
    len: usize,
}

impl<H> Default for Ahead<H> {
    fn default() -> Self {
        Ahead {
            reqs: Vec::new(),
            hints: Vec::new(),
            consumed: [0; WARM_MAX],
            next: 0,
            len: 0,
        }
    }
}

impl<H: Copy> Ahead<H> {
    /// The next request parsed ahead (read in place, not moved out): its
    /// slot, length and hint.
    fn take(&mut self) -> Option<(usize, usize, H)> {
        if self.next == self.len {
            return None;
        }
        let i = self.next;
        self.next += 1;
        Some((i, self.consumed[i], self.hints[i]))
    }

    fn clear(&mut self) {
        self.next = 0;
        self.len = 0;
    }

    /// `Request::shrink` for every slot, once none holds a request still
    /// to run.
    fn shrink(&mut self) {
        if self.next == self.len {
            self.reqs.iter_mut().for_each(Request::shrink);
        }
    }
}

/// The request about to run (`first`) has more behind it in `input`:
/// parses up to `WARM_MAX` of them into `ahead` and warms the cache for
/// all, each step for every request before the next step, so that their
/// memory loads overlap instead of each stalling its command in turn.
/// Returns `first`'s hint.
/// `first` was parsed from the front of `first_input`; `input` is what
/// follows it.
fn warm<T: Session>(
    first: &Request,
    first_input: &[u8],
    input: &[u8],
    limits: &Limits,
    session: &mut T,
    ahead: &mut Ahead<T::Hint>,
) -> T::Hint {
    let mut cookies = [0u64; WARM_MAX + 1];
    // Member steps each request has taken (`prefetch_member`).
    let mut steps = [0u8; WARM_MAX + 1];
    let mut starts = [0usize; WARM_MAX];
    let mut first_hint = T::Hint::default();
    let first_args = first.args(first_input);
    if !first_args.is_empty() {
        cookies[0] = session.prefetch(&first_args, &mut first_hint);
    }
    // The head (`Request::head`) of the request warmed last: a request
    // with the same one names the same command and key.
    let mut prev_head = first.head(first_input);
    let mut n = 0;
    let mut pos = 0;
    while n < WARM_MAX && pos < input.len() {
        if ahead.reqs.len() == n {
            ahead.reqs.push(Request::new());
            ahead.hints.push(T::Hint::default());
        }
        let Ok(Parsed::Complete { consumed }) =
            parse_request(&input[pos..], limits, &mut ahead.reqs[n])
        else {
            break;
        };
        let req = &ahead.reqs[n];
        let args = req.args(&input[pos..]);
        let head = req.head(&input[pos..]);
        let mut hint = T::Hint::default();
        if !args.is_empty() {
            let prev_cookie = cookies[n];
            let prev_hint = match n {
                0 => first_hint,
                _ => ahead.hints[n - 1],
            };
            let again = match (head, prev_head) {
                (Some(h), Some(p)) if h == p => {
                    session.prefetch_again(prev_cookie, prev_hint, &mut hint)
                }
                _ => None,
            };
            let mut c = match again {
                Some(c) => c,
                None => session.prefetch(&args, &mut hint),
            };
            // The same key and member kind as the request before (a run
            // of HSETs on one hash): its entry is on its way or cached,
            // so the member's first load starts now, a whole pass earlier
            // than the others', giving it more time to arrive.
            if c != 0 && c == prev_cookie {
                c = session.prefetch_more(c);
                if c != 0 {
                    c = session.prefetch_member(1, c, &args);
                    steps[n + 1] = 1;
                }
            }
            cookies[n + 1] = c;
        }
        prev_head = head;
        ahead.hints[n] = hint;
        starts[n] = pos;
        ahead.consumed[n] = consumed;
        pos += consumed;
        n += 1;
    }
    ahead.next = 0;
    ahead.len = n;
    let mut more = false;
    for (c, _) in cookies[..=n]
        .iter_mut()
        .zip(&steps)
        .filter(|(c, s)| **c != 0 && **s == 0)
    {
        *c = session.prefetch_more(*c);
    }
    more |= cookies[..=n].iter().any(|c| *c != 0);
    for _ in 0..WARM_MEMBER_STEPS {
        if !more {
            break;
        }
        more = false;
        for i in 0..=n {
            let c = &mut cookies[i];
            if *c == 0 {
                continue;
            }
            let step = usize::from(steps[i]) + 1;
            if step > WARM_MEMBER_STEPS {
                *c = 0;
                continue;
            }
            steps[i] += 1;
            *c = match i {
                0 => session.prefetch_member(step, *c, &first_args),
                _ => {
                    let args = ahead.reqs[i - 1].args(&input[starts[i - 1]..]);
                    session.prefetch_member(step, *c, &args)
                }
            };
            more |= *c != 0;
        }
    }
    first_hint
}

/// Writes `bytes`, giving up (false) when the socket fails or the session
/// says the client must go: a subscriber that never reads is dropped even
/// though its socket buffer is full.
async fn send<T: Session, IO: AsyncWrite + Unpin>(
    stream: &mut IO,
    bytes: &[u8],
    session: &T,
) -> bool {
    // `biased`: a fixed polling order needs no random number per write.
    tokio::select! {
        biased;
        r = stream.write_all(bytes) => r.is_ok(),
        () = std::future::poll_fn(|cx| session.poll_dropped(cx)) => false,
    }
}

/// Writes and clears `out` if it holds anything; false on failure.
async fn flush<T: Session, IO: AsyncWrite + Unpin>(
    stream: &mut IO,
    out: &mut Reply,
    session: &mut T,
) -> bool {
    if out.is_empty() {
        return true;
    }
    session.output_pending(out.len());
    if !send(stream, out.as_bytes(), session).await {
        return false;
    }
    session.output_pending(0);
    session.pushed_written();
    session.count_io(0, out.len());
    out.clear();
    true
}

/// Completes after `idle`, or never.
async fn idle_expired(idle: Option<Duration>) {
    match idle {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

/// The life of one connection: read, execute everything complete, write.
async fn connection<T: Session, IO: AsyncRead + AsyncWrite + Unpin>(
    mut stream: IO,
    mut session: T,
) {
    let mut inbuf: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let mut req = Request::new();
    let mut ahead = Ahead::<T::Hint>::default();
    let mut out = Reply::new();
    let mut need = 0usize;
    let mut first = true;
    if let Some(bytes) = session.refusal() {
        session.closing();
        let _ = stream.write_all(&bytes).await;
        let _ = stream.shutdown().await;
        return;
    }
    loop {
        if !session.take_pushed(&mut out) || !flush(&mut stream, &mut out, &mut session).await {
            return;
        }
        let spare = inbuf.capacity() - inbuf.len();
        let want = need.saturating_sub(inbuf.len()).max(READ_CHUNK);
        if spare < want {
            inbuf.reserve(want);
        }
        let idle = session.idle_timeout();
        // `biased`: no random number per read; pushed output is drained
        // at the top of the loop and before each request either way.
        let read = tokio::select! {
            biased;
            r = stream.read_buf(&mut inbuf) => Some(r),
            () = std::future::poll_fn(|cx| session.poll_pushed(cx)) => None,
            () = idle_expired(idle) => {
                session.closing();
                return;
            }
        };
        let n = match read {
            None => continue,
            Some(Ok(0) | Err(_)) => return,
            Some(Ok(n)) => n,
        };
        session.count_io(n, 0);
        if first && session.http_enabled() {
            match http::sniff(&inbuf) {
                None => continue,
                Some(true) => {
                    http::serve(&mut stream, inbuf, |req| session.http(req)).await;
                    return;
                }
                Some(false) => {}
            }
        }
        first = false;
        session.batch_begin();
        let limits = session.limits();
        let mut pos = 0;
        let mut open = true;
        need = 0;
        ahead.clear();
        while pos < inbuf.len() {
            let input = &inbuf[pos..];
            let mut hint = T::Hint::default();
            // The slot in `ahead` holding the request, if it was parsed
            // ahead; else it is in `req`.
            let mut slot = None;
            let parsed = match ahead.take() {
                Some((i, consumed, warmed)) => {
                    hint = warmed;
                    slot = Some(i);
                    Ok(Parsed::Complete { consumed })
                }
                None => {
                    let parsed = parse_request(input, &limits, &mut req);
                    // More requests follow (a pipeline): parse the next
                    // few now and warm the cache for all of them.
                    if let Ok(Parsed::Complete { consumed }) = parsed {
                        if consumed < input.len() {
                            hint = warm(
                                &req,
                                input,
                                &input[consumed..],
                                &limits,
                                &mut session,
                                &mut ahead,
                            );
                        }
                    }
                    parsed
                }
            };
            match parsed {
                Ok(Parsed::Complete { consumed }) => {
                    // Messages queued before this request precede its reply.
                    if !session.take_pushed(&mut out) {
                        return;
                    }
                    let req = slot.map_or(&req, |i| &ahead.reqs[i]);
                    let flow = if req.is_empty() {
                        Flow::Continue
                    } else {
                        session.query_pending(input.len());
                        session.handle(&req.args(input), hint, &mut out)
                    };
                    pos += consumed;
                    match flow {
                        Flow::Continue => {}
                        Flow::Close => {
                            open = false;
                            break;
                        }
                        Flow::Retry(wait) => {
                            pos -= consumed;
                            // The request runs again: parse from it anew.
                            ahead.clear();
                            session.batch_end();
                            if !flush(&mut stream, &mut out, &mut session).await {
                                return;
                            }
                            wait.await;
                            session.batch_begin();
                            continue;
                        }
                        Flow::Wait(mut reply) => {
                            session.batch_end();
                            // Most waits (a script) end within a millisecond:
                            // their reply joins the batch's one write. Only a
                            // longer one sends what is ready first.
                            let quick = tokio::select! {
                                biased;
                                bytes = &mut reply => Some(bytes),
                                () = tokio::time::sleep(QUICK_WAIT) => None,
                            };
                            if let Some(bytes) = quick {
                                out.raw(&bytes);
                            } else {
                                if !flush(&mut stream, &mut out, &mut session).await {
                                    return;
                                }
                                // Wait for the reply while watching the socket:
                                // what arrives is queued, EOF abandons the wait.
                                loop {
                                    if inbuf.capacity() - inbuf.len() < READ_CHUNK {
                                        inbuf.reserve(READ_CHUNK);
                                    }
                                    tokio::select! {
                                        bytes = &mut reply => {
                                            out.raw(&bytes);
                                            break;
                                        }
                                        r = stream.read_buf(&mut inbuf) => match r {
                                            Ok(0) | Err(_) => return,
                                            Ok(m) => {
                                                session.count_io(m, 0);
                                                if inbuf.len() > session.query_buffer_limit() {
                                                    eprintln!("closing client that reached max query buffer length");
                                                    return;
                                                }
                                            }
                                        },
                                        () = std::future::poll_fn(|cx| session.poll_dropped(cx)) => return,
                                    }
                                }
                            }
                            session.batch_begin();
                        }
                    }
                    if out.len() >= FLUSH_AT {
                        session.batch_end();
                        if !flush(&mut stream, &mut out, &mut session).await {
                            return;
                        }
                        session.batch_begin();
                    }
                }
                Ok(Parsed::Incomplete { hint }) => {
                    need = hint;
                    break;
                }
                Err(e) => {
                    out.error(&format!("ERR {e}"));
                    open = false;
                    break;
                }
            }
        }
        session.batch_end();
        inbuf.drain(..pos);
        session.query_pending(inbuf.len());
        if need > inbuf.len() {
            session.query_expected(need);
        }
        if inbuf.capacity() > 4 * READ_CHUNK && inbuf.len() < READ_CHUNK && need == 0 {
            inbuf.shrink_to(READ_CHUNK);
        }
        if !open {
            session.closing();
        } else {
            if !out.is_empty() {
                // The replies wait until this worker has run every
                // connection with input ready (Redis writes in
                // `beforeSleep`): the first write of the round wakes a
                // sleeping client, which is usually still running when the
                // later ones reach it, so a round costs one wake-up per
                // client process rather than one per write (each a
                // cross-CPU interrupt).
                session.output_pending(out.len());
                end_of_round().await;
            }
            // Messages that arrived during the batch follow its replies.
            if !session.take_pushed(&mut out) {
                return;
            }
        }
        if !flush(&mut stream, &mut out, &mut session).await {
            return;
        }
        out.shrink(FLUSH_AT);
        req.shrink();
        ahead.shrink();
        if !open {
            let _ = stream.shutdown().await;
            return;
        }
        if inbuf.len() > session.query_buffer_limit() {
            eprintln!("closing client that reached max query buffer length");
            return;
        }
    }
}
