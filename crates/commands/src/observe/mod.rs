//! Watching the server run: per-command latency histograms, SLOWLOG and
//! the latency monitor, all fed by `after_call` once per executed command.
//!
//! Invariant: the hot path costs one histogram increment (a plain
//! per-thread counter) and two relaxed loads; the slowlog and latency
//! monitor locks are only taken for commands over their thresholds.

mod histogram;
mod latency;
pub(crate) mod slowlog;

pub use histogram::Histogram;

use crate::cmd;
use crate::ctx::Ctx;
use crate::table::{flag, Command, Entry, Keys::None as NoKeys};
use damselfly_protocol::Args;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};

/// Typed copies of the CONFIG parameters read after every command.
pub struct Settings {
    /// `slowlog-log-slower-than` (µs; negative turns the slowlog off).
    pub slower_than: AtomicI64,
    pub slowlog_max_len: AtomicU64,
    /// `latency-monitor-threshold` (ms; 0 turns the monitor off).
    pub latency_threshold: AtomicU64,
    /// `latency-tracking`: per-command histograms.
    pub tracking: AtomicBool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            slower_than: AtomicI64::new(10_000),
            slowlog_max_len: AtomicU64::new(128),
            latency_threshold: AtomicU64::new(0),
            tracking: AtomicBool::new(true),
        }
    }
}

/// The server-wide logs.
#[derive(Default)]
pub struct Observe {
    pub slowlog: slowlog::SlowLog,
    pub latency: latency::Monitor,
}

/// Records a command that took `ns`: its histogram, and the slowlog and
/// latency monitor when it was slow enough.
pub(crate) fn after_call(ctx: &mut Ctx, e: &Entry, args: &Args, ns: u64) {
    let s = &ctx.server.config.observe;
    if s.tracking.load(Relaxed) {
        if let Some(c) = ctx.stats.commands.get(e.id) {
            c.hist.get_or_init(Histogram::default).record(ns);
        }
    }
    let usec = ns / 1000;
    let slower_than = s.slower_than.load(Relaxed);
    // A script's own commands are not logged, only the script (as Redis).
    if slower_than >= 0 && !e.has(flag::SKIP_SLOWLOG) && !ctx.client.in_script {
        // A command that blocked is logged when it is served or times
        // out, as in Redis (so after the command that served it).
        if let Some(blocked) = ctx.block.as_mut() {
            blocked.slowlog = Some(slowlog::entry(&ctx.client.info, args, usec));
        } else if usec >= slower_than as u64 {
            let max = s.slowlog_max_len.load(Relaxed) as usize;
            ctx.server.observe.slowlog.push(ctx, args, usec, max);
        }
    }
    let event = if e.has(flag::FAST) {
        "fast-command"
    } else {
        "command"
    };
    latency_event(ctx.server, event, usec / 1000);
}

/// Logs a blocked command's slowlog entry when its wait ends, if it took
/// long enough by the threshold in force then.
pub(crate) fn log_unblocked(server: &crate::state::Server, entry: slowlog::Entry) {
    let s = &server.config.observe;
    let slower_than = s.slower_than.load(Relaxed);
    if slower_than >= 0 && entry.usec() >= slower_than as u64 {
        let max = s.slowlog_max_len.load(Relaxed) as usize;
        server.observe.slowlog.add(entry, max);
    }
}

/// Records `ms` for a server event (`expire-cycle`, `eviction-cycle`) when
/// it reaches `latency-monitor-threshold`.
pub fn latency_event(server: &crate::state::Server, event: &str, ms: u64) {
    let threshold = server.config.observe.latency_threshold.load(Relaxed);
    if threshold > 0 && ms >= threshold {
        server.observe.latency.add(event, ms);
    }
}

/// INFO latencystats.
pub(crate) fn latencystats(ctx: &Ctx, out: &mut String) {
    latency::info_lines(ctx, out);
}

static SLOWLOG_SUBCOMMANDS: &[Command] = &[
    cmd!(
        "len",
        2,
        "admin loading stale",
        NoKeys,
        "@admin @slow @dangerous",
        "server",
        "2.2.12",
        slowlog::len
    ),
    cmd!(
        "help",
        2,
        "loading stale",
        NoKeys,
        "@slow",
        "server",
        "6.2.0",
        slowlog::help
    ),
    cmd!(
        "reset",
        2,
        "admin loading stale",
        NoKeys,
        "@admin @slow @dangerous",
        "server",
        "2.2.12",
        slowlog::reset
    ),
    cmd!(
        "get",
        -2,
        "admin loading stale",
        NoKeys,
        "@admin @slow @dangerous",
        "server",
        "2.2.12",
        slowlog::get
    ),
];

static LATENCY_SUBCOMMANDS: &[Command] = &[
    cmd!(
        "doctor",
        2,
        "admin noscript loading stale",
        NoKeys,
        "@admin @slow @dangerous",
        "server",
        "2.8.13",
        latency::doctor
    ),
    cmd!(
        "graph",
        3,
        "admin noscript loading stale",
        NoKeys,
        "@admin @slow @dangerous",
        "server",
        "2.8.13",
        latency::graph
    ),
    cmd!(
        "histogram",
        -2,
        "admin noscript loading stale",
        NoKeys,
        "@admin @slow @dangerous",
        "server",
        "7.0.0",
        latency::histogram
    ),
    cmd!(
        "history",
        3,
        "admin noscript loading stale",
        NoKeys,
        "@admin @slow @dangerous",
        "server",
        "2.8.13",
        latency::history
    ),
    cmd!(
        "reset",
        -2,
        "admin noscript loading stale",
        NoKeys,
        "@admin @slow @dangerous",
        "server",
        "2.8.13",
        latency::reset
    ),
    cmd!(
        "latest",
        2,
        "admin noscript loading stale",
        NoKeys,
        "@admin @slow @dangerous",
        "server",
        "2.8.13",
        latency::latest
    ),
    cmd!(
        "help",
        2,
        "loading stale",
        NoKeys,
        "@slow",
        "server",
        "2.8.13",
        latency::help
    ),
];

pub(crate) static COMMANDS: &[Command] = &[
    cmd!(
        "slowlog",
        -2,
        "",
        NoKeys,
        "@slow",
        "server",
        "2.2.12",
        crate::server::help_only,
        SLOWLOG_SUBCOMMANDS
    ),
    cmd!(
        "latency",
        -2,
        "",
        NoKeys,
        "@slow",
        "server",
        "2.8.13",
        crate::server::help_only,
        LATENCY_SUBCOMMANDS
    ),
];
