//! SLOWLOG: commands that ran at least `slowlog-log-slower-than` µs, the
//! newest `slowlog-max-len` of them.

use crate::args::parse_i64;
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use damselfly_protocol::Args;
use parking_lot::Mutex;
use std::collections::VecDeque;

/// Arguments kept per entry, and bytes kept per argument (Redis's limits).
const MAX_ARGS: usize = 32;
const MAX_ARG_LEN: usize = 128;

pub struct Entry {
    id: u64,
    time: u64,
    usec: u64,
    args: Vec<Vec<u8>>,
    peer: String,
    name: Vec<u8>,
}

#[derive(Default)]
pub struct SlowLog {
    entries: Mutex<VecDeque<Entry>>,
    next_id: std::sync::atomic::AtomicU64,
}

/// Which arguments of a command carry secrets: they are logged as
/// `(redacted)`.
fn redacted(args: &Args) -> impl Fn(usize) -> bool {
    let word = |i: usize| args.get(i).unwrap_or_default().to_ascii_lowercase();
    let name = word(0);
    let sub = word(1);
    let mut from = usize::MAX;
    let mut only: Vec<usize> = Vec::new();
    match (name.as_slice(), sub.as_slice()) {
        (b"auth", _) => from = 1,
        (b"acl", b"setuser") => from = 3,
        (b"config", b"set") => {
            for i in (2..args.len()).step_by(2) {
                if matches!(word(i).as_slice(), b"masterauth" | b"requirepass") {
                    only.push(i + 1);
                }
            }
        }
        (b"hello", _) | (b"migrate", _) => {
            for i in 1..args.len() {
                match word(i).as_slice() {
                    b"auth" if name == b"hello" => only.extend([i + 1, i + 2]),
                    b"auth" => only.push(i + 1),
                    b"auth2" => only.extend([i + 1, i + 2]),
                    _ => {}
                }
            }
        }
        _ => {}
    }
    move |i| i >= from || only.contains(&i)
}

impl SlowLog {
    /// Logs a command that took `usec`.
    pub fn push(&self, ctx: &Ctx, args: &Args, usec: u64, max_len: usize) {
        if max_len == 0 {
            return;
        }
        self.add(entry(&ctx.client.info, args, usec), max_len);
    }

    /// Logs an entry made earlier (a blocked command, when it is served or
    /// times out), numbered and timed now.
    pub fn add(&self, mut entry: Entry, max_len: usize) {
        if max_len == 0 {
            return;
        }
        entry.id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        entry.time = damselfly_storage::now_ms() / 1000;
        let mut e = self.entries.lock();
        e.push_front(entry);
        e.truncate(max_len);
    }

    pub fn reset(&self) {
        self.entries.lock().clear();
    }
}

/// SLOWLOG GET [count]
pub(crate) fn get(ctx: &mut Ctx, args: &Args) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::SubcommandSyntax {
            sub: args.get(1).unwrap_or_default().to_vec(),
            cmd: "SLOWLOG".into(),
        });
    }
    let count = match args.get(2) {
        None => 10,
        Some(a) => match parse_i64(a) {
            Some(n) if n >= -1 => n,
            _ => return Err(CmdError::SlowlogCount),
        },
    };
    let log = ctx.server.observe.slowlog.entries.lock();
    let n = if count == -1 {
        log.len()
    } else {
        (count as usize).min(log.len())
    };
    let r = &mut *ctx.reply;
    r.array(n);
    for e in log.iter().take(n) {
        r.array(6);
        r.int(e.id as i64);
        r.int(e.time as i64);
        r.int(e.usec as i64);
        r.array(e.args.len());
        for a in &e.args {
            r.bulk(a);
        }
        r.bulk(e.peer.as_bytes());
        r.bulk(&e.name);
    }
    Ok(())
}

/// SLOWLOG LEN
pub(crate) fn len(ctx: &mut Ctx, _args: &Args) -> CmdResult {
    let n = ctx.server.observe.slowlog.entries.lock().len();
    ctx.reply.int(n as i64);
    Ok(())
}

/// SLOWLOG RESET
pub(crate) fn reset(ctx: &mut Ctx, _args: &Args) -> CmdResult {
    ctx.server.observe.slowlog.reset();
    ctx.reply.ok();
    Ok(())
}

/// SLOWLOG HELP
pub(crate) fn help(ctx: &mut Ctx, _args: &Args) -> CmdResult {
    crate::server::reply_help(
        ctx,
        "SLOWLOG",
        &[
            "GET [<count>]",
            "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
            "    Entries are made of:",
            "    id, timestamp, time in microseconds, arguments array, client IP and port,",
            "    client name",
            "LEN",
            "    Return the length of the slowlog.",
            "RESET",
            "    Reset the slowlog.",
        ],
    );
    Ok(())
}

impl Entry {
    /// What the command took, in µs (a blocked command adds its serving).
    pub fn usec(&self) -> u64 {
        self.usec
    }
}

/// An entry for `args` run by `client` in `usec`, not yet logged.
pub fn entry(client: &crate::client::ClientInfo, args: &Args, usec: u64) -> Entry {
    let hide = redacted(args);
    let argc = args.len();
    let kept = if argc > MAX_ARGS { MAX_ARGS - 1 } else { argc };
    let mut logged: Vec<Vec<u8>> = (0..kept)
        .map(|i| {
            if hide(i) {
                return b"(redacted)".to_vec();
            }
            let a = args.get(i).unwrap_or_default();
            if a.len() > MAX_ARG_LEN {
                let mut v = a[..MAX_ARG_LEN].to_vec();
                v.extend_from_slice(
                    format!("... ({} more bytes)", a.len() - MAX_ARG_LEN).as_bytes(),
                );
                v
            } else {
                a.to_vec()
            }
        })
        .collect();
    if kept < argc {
        logged.push(format!("... ({} more arguments)", argc - kept).into_bytes());
    }
    Entry {
        id: 0,
        time: 0,
        usec,
        args: logged,
        peer: client.addr.clone(),
        name: client.name.lock().clone(),
    }
}
