//! CLIENT PAUSE / UNPAUSE: while a pause lasts, commands it covers (all of
//! them, or with WRITE those that may write or replicate) wait before
//! running; their connection awaits `Pause::wait`, then runs them.
//! Commands queued in MULTI are not held; EXEC is, when its queue writes.
//! While writes are paused, keys are not deleted by expiry (they read as
//! gone) and none are evicted, as in Redis.

use crate::client::Client;
use crate::state::Server;
use crate::table::{flag, Entry};
use damselfly_protocol::Args;
use parking_lot::Mutex;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::Duration;

#[derive(Default)]
struct State {
    /// Unix ms the pause ends at; 0 when none.
    end_ms: u64,
    all: bool,
    wakers: Vec<Waker>,
}

#[derive(Default)]
pub struct Pause {
    state: Mutex<State>,
    /// A pause may be in force: the per-command check is one load when not.
    on: AtomicBool,
    /// Clients waiting on the pause (INFO blocked_clients counts them).
    pub waiting: AtomicUsize,
    /// FAILOVER's own pause of writes, apart from CLIENT PAUSE's (CLIENT
    /// UNPAUSE does not end it), until the failover ends.
    failover: AtomicBool,
}

/// Whether a command counts as a write for CLIENT PAUSE WRITE.
fn writes(e: &Entry, args: &Args) -> bool {
    // PFCOUNT (it may rewrite its cached cardinality) and PUBLISH (it is
    // propagated) are `may_replicate`, which COMMAND INFO does not show.
    if e.has(flag::WRITE | flag::MAY_REPLICATE) {
        return true;
    }
    // EVAL may write unless its shebang says `no-writes`. EVALSHA and
    // FCALL are not held: their flags live in the Lua VM, which a running
    // script keeps locked, so they cannot be looked up here.
    if e.cmd.name == "eval" {
        let body = args.get(1).unwrap_or_default();
        let first = body.split(|&b| b == b'\n').next().unwrap_or_default();
        return !(first.starts_with(b"#!") && first.windows(9).any(|w| w == b"no-writes"));
    }
    false
}

/// Whether `e` (with `args`) counts as a write; EXEC when its queue writes.
fn may_write(e: &Entry, args: &Args, client: &Client) -> bool {
    if writes(e, args) {
        return true;
    }
    e.cmd.name == "exec"
        && client
            .multi
            .as_ref()
            .is_some_and(|m| m.queue.iter().any(|(q, req)| writes(q, &req.args(&[]))))
}

impl Pause {
    /// CLIENT PAUSE: a longer end or a wider kind extends a running pause.
    pub fn pause(&self, end_ms: u64, all: bool) {
        let mut s = self.state.lock();
        let running = s.end_ms > damselfly_storage::now_ms();
        s.all = all || (running && s.all);
        s.end_ms = if running {
            s.end_ms.max(end_ms)
        } else {
            end_ms
        };
        damselfly_storage::set_expiry_paused_until(s.end_ms);
        self.on.store(true, Relaxed);
    }

    /// CLIENT UNPAUSE: ends the pause and releases everyone waiting.
    pub fn unpause(&self) {
        let wakers = {
            let mut s = self.state.lock();
            s.end_ms = 0;
            s.all = false;
            std::mem::take(&mut s.wakers)
        };
        let failover = self.failover.load(Relaxed);
        damselfly_storage::set_expiry_paused_until(if failover { u64::MAX } else { 0 });
        self.on.store(failover, Relaxed);
        wakers.into_iter().for_each(Waker::wake);
    }

    /// FAILOVER pauses writes (true) until it ends (false).
    pub fn pause_failover(&self, on: bool) {
        let wakers = {
            let mut s = self.state.lock();
            self.failover.store(on, Relaxed);
            let running = s.end_ms > damselfly_storage::now_ms();
            damselfly_storage::set_expiry_paused_until(if on { u64::MAX } else { s.end_ms });
            self.on.store(on || running, Relaxed);
            if on {
                return;
            }
            std::mem::take(&mut s.wakers)
        };
        wakers.into_iter().for_each(Waker::wake);
    }

    /// Whether a pause holds a command (`writes`: it may write) now; when
    /// it does, until when (Unix ms; FAILOVER's has no end of its own, so
    /// its waiters look again every second).
    fn holds(&self, writes: bool) -> Option<u64> {
        let s = self.state.lock();
        let now = damselfly_storage::now_ms();
        if writes && self.failover.load(Relaxed) {
            return Some(s.end_ms.max(now + 1000));
        }
        (s.end_ms > now && (s.all || writes)).then_some(s.end_ms)
    }

    /// Whether the per-command check is needed at all.
    pub fn on(&self) -> bool {
        self.on.load(Relaxed)
    }

    /// Whether a pause of any kind (CLIENT PAUSE, ALL or WRITE, or
    /// FAILOVER's) is in force: the dataset then holds still, so eviction
    /// waits too, as in Redis 7.0.
    pub fn freezes_dataset(&self) -> bool {
        if !self.on() {
            return false;
        }
        let s = self.state.lock();
        self.failover.load(Relaxed) || s.end_ms > damselfly_storage::now_ms()
    }

    /// The wait a connection must do before running `e`, if any.
    pub fn must_wait(
        server: &Arc<Server>,
        e: &Entry,
        args: &Args,
        client: &Client,
    ) -> Option<PauseWait> {
        if client.multi.is_some() && e.cmd.name != "exec" {
            return None;
        }
        let writes = may_write(e, args, client);
        server.pause.holds(writes)?;
        Some(PauseWait {
            server: server.clone(),
            writes,
        })
    }
}

/// A command held by a pause.
pub struct PauseWait {
    server: Arc<Server>,
    writes: bool,
}

impl PauseWait {
    /// Completes when the pause no longer holds the command: at UNPAUSE, or
    /// at the pause's end (`sleep` makes the timer).
    pub fn wait<S: Future<Output = ()>>(
        self,
        sleep: impl Fn(Duration) -> S,
    ) -> impl Future<Output = ()> {
        async move {
            let pause = &self.server.pause;
            pause.waiting.fetch_add(1, Relaxed);
            let _done = Waiting(&pause.waiting);
            while let Some(end) = pause.holds(self.writes) {
                let left = end.saturating_sub(damselfly_storage::now_ms());
                let mut timer = std::pin::pin!(sleep(Duration::from_millis(left)));
                std::future::poll_fn(|cx| {
                    if timer.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(());
                    }
                    let mut s = pause.state.lock();
                    if s.end_ms == 0 && !(self.writes && pause.failover.load(Relaxed)) {
                        return Poll::Ready(());
                    }
                    s.wakers.push(cx.waker().clone());
                    Poll::Pending
                })
                .await;
            }
        }
    }
}

/// Counts a client in `Pause::waiting` while it waits.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}
