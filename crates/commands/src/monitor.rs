//! MONITOR: every command run by anyone, as one line per command in Redis's
//! format, queued in each monitoring client's outbox (the one pub/sub
//! messages use), so a monitoring connection keeps reading its own
//! requests: RESET and QUIT end it, commands that touch keys get Redis's
//! replica error, the rest run and are shown too.
//!
//! Invariant: with no monitor connected, feeding costs one atomic load.

use crate::client::{Client, ClientInfo};
use crate::pubsub::PubSub;
use crate::state::Server;
use crate::table::{flag, Entry};
use damselfly_protocol::Args;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;

#[derive(Default)]
pub struct Monitors {
    any: AtomicBool,
    list: Mutex<Vec<Arc<ClientInfo>>>,
}

impl Monitors {
    fn add(&self, client: Arc<ClientInfo>) {
        let mut l = self.list.lock();
        client.monitor.store(true, Relaxed);
        l.push(client);
        self.any.store(true, Relaxed);
    }

    fn remove(&self, client: u64) {
        let mut l = self.list.lock();
        l.retain(|c| c.id != client);
        self.any.store(!l.is_empty(), Relaxed);
    }

    /// Feeds a command that ran (admin and skip_monitor commands are not
    /// shown, as in Redis).
    pub(crate) fn feed(&self, ps: &PubSub, e: &Entry, client: &Client, args: &Args) {
        if !self.any.load(Relaxed) || e.has(flag::ADMIN | flag::SKIP_MONITOR) {
            return;
        }
        self.push(ps, client, args);
    }

    /// Feeds a script call (EVAL, FCALL and their variants, which are
    /// `skip_monitor`) before it runs, so its line precedes the lines of
    /// the commands the script calls, as in Redis.
    pub(crate) fn feed_script(&self, ps: &PubSub, e: &Entry, client: &Client, args: &Args) {
        if self.any.load(Relaxed) && e.has(flag::SKIP_MONITOR) && e.cmd.group == "scripting" {
            self.push(ps, client, args);
        }
    }

    /// Queues the line for every monitor, the issuing one included (its
    /// line follows its reply, as in Redis). A monitor is a normal client
    /// for `client-output-buffer-limit`.
    fn push(&self, ps: &PubSub, client: &Client, args: &Args) {
        let now_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        let from = if client.in_script {
            "lua"
        } else {
            &client.info.addr
        };
        let line = format_line(now_us, client.db, from, args);
        for c in self.list.lock().iter() {
            c.outbox.push(b'+', &line, ps.limit_for(c));
        }
    }
}

/// Ends a client's MONITOR mode (RESET, disconnect).
pub fn stop(server: &Server, client: &mut Client) {
    if client.monitor {
        client.monitor = false;
        client.info.monitor.store(false, Relaxed);
        server.monitors.remove(client.id());
    }
}

/// MONITOR: this connection receives every later command's line. A second
/// MONITOR gets no reply at all, as in Redis.
pub(crate) fn monitor(ctx: &mut crate::ctx::Ctx, _args: &Args) -> crate::error::CmdResult {
    if ctx.client.in_exec || ctx.client.in_script {
        return Err(crate::error::CmdError::MonitorDenyBlocking);
    }
    if !ctx.client.monitor {
        ctx.client.monitor = true;
        ctx.server.monitors.add(ctx.client.info.clone());
        ctx.reply.ok();
    }
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

/// `1339518083.107412 [0 127.0.0.1:60866] "keys" "*"` and CRLF (the `+`
/// is the outbox's tag byte).
fn format_line(now_us: u64, db: usize, addr: &str, args: &Args) -> Vec<u8> {
    let mut out = format!(
        "{}.{:06} [{db} {addr}]",
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
