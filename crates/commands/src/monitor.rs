//! MONITOR: every command run by anyone, as one line per command in Redis's
//! format, queued for each monitoring connection.
//!
//! Invariant: with no monitor connected, feeding costs one atomic load.

use crate::client::Client;
use crate::table::{flag, Entry};
use damselfly_protocol::Args;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

/// Lines waiting for one monitoring connection.
#[derive(Default)]
pub struct Queue {
    inner: Mutex<(Vec<u8>, Option<Waker>)>,
}

impl Queue {
    fn push(&self, line: &[u8]) {
        let mut q = self.inner.lock();
        q.0.extend_from_slice(line);
        if let Some(w) = q.1.take() {
            w.wake();
        }
    }

    /// Moves the queued lines out.
    pub fn take(&self) -> Vec<u8> {
        std::mem::take(&mut self.inner.lock().0)
    }

    /// Ready once lines are queued.
    pub fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut q = self.inner.lock();
        if q.0.is_empty() {
            q.1 = Some(cx.waker().clone());
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    }
}

#[derive(Default)]
pub struct Monitors {
    any: AtomicBool,
    list: Mutex<Vec<(u64, Arc<Queue>)>>,
}

impl Monitors {
    pub fn add(&self, client: u64) -> Arc<Queue> {
        let q = Arc::new(Queue::default());
        let mut l = self.list.lock();
        l.push((client, q.clone()));
        self.any.store(true, Relaxed);
        q
    }

    pub fn remove(&self, client: u64) {
        let mut l = self.list.lock();
        l.retain(|(id, _)| *id != client);
        self.any.store(!l.is_empty(), Relaxed);
    }

    /// Feeds a command that ran (admin and skip_monitor commands are not
    /// shown, as in Redis).
    pub(crate) fn feed(&self, e: &Entry, client: &Client, args: &Args) {
        if !self.any.load(Relaxed) || e.has(flag::ADMIN | flag::SKIP_MONITOR) {
            return;
        }
        self.push(client, args);
    }

    /// Feeds a script call (EVAL, FCALL and their variants, which are
    /// `skip_monitor`) before it runs, so its line precedes the lines of
    /// the commands the script calls, as in Redis.
    pub(crate) fn feed_script(&self, e: &Entry, client: &Client, args: &Args) {
        if self.any.load(Relaxed) && e.has(flag::SKIP_MONITOR) && e.cmd.group == "scripting" {
            self.push(client, args);
        }
    }

    fn push(&self, client: &Client, args: &Args) {
        let now_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        let from = if client.in_script {
            "lua"
        } else {
            &client.info.addr
        };
        let line = format_line(now_us, client.db, from, args);
        for (id, q) in self.list.lock().iter() {
            if *id != client.id() {
                q.push(&line);
            }
        }
    }
}

/// MONITOR: this connection receives every later command's line.
pub(crate) fn monitor(ctx: &mut crate::ctx::Ctx, _args: &Args) -> crate::error::CmdResult {
    if ctx.client.monitor.is_none() {
        ctx.client.monitor = Some(ctx.server.monitors.add(ctx.client.id()));
    }
    ctx.reply.ok();
    Ok(())
}

pub(crate) static COMMANDS: &[crate::table::Command] = &[crate::cmd!(
    "monitor",
    1,
    "admin noscript loading stale",
    crate::table::Keys::None,
    "@admin @slow @dangerous",
    "server",
    "1.0.0",
    monitor
)];

/// `+1339518083.107412 [0 127.0.0.1:60866] "keys" "*"` and CRLF.
fn format_line(now_us: u64, db: usize, addr: &str, args: &Args) -> Vec<u8> {
    let mut out = format!(
        "+{}.{:06} [{db} {addr}]",
        now_us / 1_000_000,
        now_us % 1_000_000
    )
    .into_bytes();
    for a in args.iter() {
        out.extend_from_slice(b" \"");
        for &b in a {
            match b {
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'"' => out.extend_from_slice(b"\\\""),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                0x07 => out.extend_from_slice(b"\\a"),
                0x08 => out.extend_from_slice(b"\\b"),
                0x20..=0x7e => out.push(b),
                _ => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
            }
        }
        out.push(b'"');
    }
    out.extend_from_slice(b"\r\n");
    out
}
