//! FAILOVER [TO host port [FORCE]] [ABORT] [TIMEOUT ms]: a coordinated
//! hand-over of the master role to one of our replicas, as Redis 7.0 does
//! it.
//!
//! 1. `waiting-for-sync`: writes are paused (`Pause::pause_failover`, apart
//!    from CLIENT PAUSE) and a watcher thread waits until the target (or,
//!    without TO, any online replica) acknowledges our whole stream. Past
//!    TIMEOUT it gives up, or with FORCE goes on anyway.
//! 2. `failover-in-progress`: we follow the target (REPLICAOF, offering our
//!    own history) and the link's PSYNC carries `FAILOVER`, which makes the
//!    target promote itself and continue our history (replid2).
//! 3. The target's answer ends it: accepted, writes resume (as a replica,
//!    so they get READONLY); rejected, we are a master again with a new
//!    replid, as after REPLICAOF NO ONE, and our replicas resync partially.
//!
//! Invariants:
//! - Writes stay paused from FAILOVER until the failover ends, so the
//!   offset the target must reach does not move (the replication cron sends
//!   no PING meanwhile).
//! - At most one failover at a time: `STATE.generation` tells a watcher
//!   thread that its failover ended (ABORT) so it stops.
//! - The target side is PSYNC's (`repl_master.rs`): `PSYNC <replid>
//!   <offset> FAILOVER` with our replid promotes us, any other replid is
//!   refused.

use crate::args::{eq, parse_i64};
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::state::Server;
use crate::table::{Command, Keys::None as NoKeys};
use crate::{cmd, persist};
use damselfly_protocol::Args;
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Duration;

pub(crate) static COMMANDS: &[Command] = &[cmd!(
    "failover",
    -1,
    "admin noscript stale",
    NoKeys,
    "@admin @slow @dangerous",
    "server",
    "6.2.0",
    failover
)];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    None,
    WaitingForSync,
    InProgress,
}

struct State {
    phase: Phase,
    /// The replica named by TO, or the one chosen.
    target: Option<(String, u16)>,
    /// Unix ms after which the wait for sync ends (0: none).
    deadline: u64,
    force: bool,
    /// Bumped at each start and end, so a watcher of an ended failover
    /// stops.
    generation: u64,
}

static STATE: Mutex<State> = Mutex::new(State {
    phase: Phase::None,
    target: None,
    deadline: 0,
    force: false,
    generation: 0,
});

/// INFO's `master_failover_state`.
pub(crate) fn state_name() -> &'static str {
    match STATE.lock().phase {
        Phase::None => "no-failover",
        Phase::WaitingForSync => "waiting-for-sync",
        Phase::InProgress => "failover-in-progress",
    }
}

/// A failover is under way (REPLICAOF and SYNC are refused meanwhile).
pub(crate) fn active() -> bool {
    STATE.lock().phase != Phase::None
}

/// We follow the target and its PSYNC must carry FAILOVER.
pub(crate) fn in_progress() -> bool {
    STATE.lock().phase == Phase::InProgress
}

fn target_name(t: &Option<(String, u16)>) -> String {
    match t {
        Some((h, p)) => format!("{h}:{p}"),
        None => "any replica".into(),
    }
}

fn failover(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let mut to: Option<(String, u16)> = None;
    let mut timeout: Option<i64> = None;
    let (mut force, mut abort) = (false, false);
    let mut i = 1;
    while i < args.len() {
        let a = args.get(i).unwrap_or_default();
        let left = args.len() - i - 1;
        if eq(a, "to") && to.is_none() && left >= 2 {
            let host = String::from_utf8_lossy(args.get(i + 1).unwrap_or_default()).into_owned();
            let port =
                parse_i64(args.get(i + 2).unwrap_or_default()).ok_or(CmdError::NotInteger)?;
            to = Some((host, port.clamp(0, 65535) as u16));
            i += 3;
        } else if eq(a, "timeout") && timeout.is_none() && left >= 1 {
            timeout =
                Some(parse_i64(args.get(i + 1).unwrap_or_default()).ok_or(CmdError::NotInteger)?);
            i += 2;
        } else if eq(a, "force") && !force {
            force = true;
            i += 1;
        } else if eq(a, "abort") && !abort {
            abort = true;
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let server = ctx.server;
    if abort {
        if to.is_some() || timeout.is_some() || force {
            return Err(CmdError::Syntax);
        }
        if !active() {
            return Err(err("ERR No failover in progress."));
        }
        end(server, Some("Failover manually aborted"));
        ctx.reply.ok();
        return Ok(());
    }
    if timeout.is_some_and(|t| t <= 0) {
        return Err(err("ERR FAILOVER timeout must be greater than 0"));
    }
    if server.replica.following() {
        return Err(err("ERR FAILOVER is not valid when server is a replica."));
    }
    let replicas = server.repl.replicas();
    if replicas.is_empty() {
        return Err(err("ERR FAILOVER requires connected replicas."));
    }
    if active() {
        return Err(err("ERR FAILOVER already in progress."));
    }
    if force && (timeout.is_none() || to.is_none()) {
        return Err(err(
            "ERR FAILOVER with force option requires both a timeout and target HOST and IP.",
        ));
    }
    if let Some((host, port)) = &to {
        let Some(r) = replicas
            .iter()
            .find(|r| r.ip.eq_ignore_ascii_case(host) && r.port == *port)
        else {
            return Err(err("ERR FAILOVER target HOST and PORT is not a replica."));
        };
        if r.state != "online" {
            return Err(err("ERR FAILOVER target replica is not online."));
        }
    }
    let owner = persist::owner(server).ok_or(CmdError::Other("ERR".into()))?;
    let generation = {
        let mut st = STATE.lock();
        st.phase = Phase::WaitingForSync;
        st.target = to;
        st.deadline = timeout.map_or(0, |t| ctx.now.saturating_add(t as u64));
        st.force = force;
        st.generation += 1;
        server.host.log(&format!(
            "FAILOVER requested to {}.",
            target_name(&st.target)
        ));
        st.generation
    };
    server.pause.pause_failover(true);
    let spawned = std::thread::Builder::new()
        .name("failover".into())
        .spawn(move || watch(&owner, generation));
    if spawned.is_err() {
        end(server, Some("cannot start the failover thread"));
        return Err(CmdError::Other("ERR".into()));
    }
    ctx.reply.ok();
    Ok(())
}

fn err(s: &str) -> CmdError {
    CmdError::Other(s.into())
}

/// Waits for the target to acknowledge our whole stream (every replica
/// sends REPLCONF ACK once a second), or for the deadline.
fn watch(server: &Arc<Server>, generation: u64) {
    loop {
        std::thread::sleep(Duration::from_millis(10));
        let mut st = STATE.lock();
        if st.generation != generation || st.phase != Phase::WaitingForSync {
            return;
        }
        let offset = server.repl.state().master_repl_offset;
        let synced = server.repl.replicas().into_iter().find(|r| {
            r.state == "online"
                && r.offset == offset
                && st
                    .target
                    .as_ref()
                    .is_none_or(|(h, p)| r.ip.eq_ignore_ascii_case(h) && r.port == *p)
        });
        let target = if let Some(r) = synced {
            server.host.log(&format!(
                "Failover target {}:{} is synced, failing over.",
                r.ip, r.port
            ));
            (r.ip, r.port)
        } else if st.deadline != 0 && damselfly_storage::now_ms() >= st.deadline {
            match (st.force, st.target.clone()) {
                (true, Some(t)) => {
                    server.host.log(&format!(
                        "FAILOVER to {}:{} time out exceeded, failing over.",
                        t.0, t.1
                    ));
                    t
                }
                _ => {
                    drop(st);
                    end(server, Some("Replica never caught up before timeout"));
                    return;
                }
            }
        } else {
            continue;
        };
        st.phase = Phase::InProgress;
        st.target = Some(target.clone());
        drop(st);
        // As REPLICAOF would: we offer our own history, and the link's
        // PSYNC carries FAILOVER while the phase is InProgress.
        crate::replicaof::follow(server, &target.0, target.1, true);
        return;
    }
}

/// The target answered our PSYNC FAILOVER (called on the link thread).
pub(crate) fn answered(server: &Server, reply: &[u8]) {
    if !in_progress() {
        return;
    }
    if reply.first() == Some(&b'+') {
        end(server, None);
    } else {
        end(server, Some("Failover target rejected psync request"));
    }
}

/// Ends the failover: `why` says why it was aborted (None: it succeeded).
/// An aborted failover that already followed the target is a master
/// again (with a new replid, as after REPLICAOF NO ONE).
fn end(server: &Server, why: Option<&str>) {
    let (phase, target) = {
        let mut st = STATE.lock();
        let was = (st.phase, st.target.take());
        st.phase = Phase::None;
        st.generation += 1;
        was
    };
    if let Some(why) = why {
        server.host.log(&format!(
            "FAILOVER to {} aborted: {why}",
            target_name(&target)
        ));
        if phase == Phase::InProgress {
            crate::replicaof::stop(server);
        }
    } else {
        server
            .host
            .log(&format!("Failover to {} succeeded.", target_name(&target)));
    }
    server.pause.pause_failover(false);
}
