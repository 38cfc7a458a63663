//! CLIENT KILL, PAUSE, UNPAUSE and NO-EVICT: acting on other connections.

use crate::args::{eq, lossy, parse_i64};
use crate::client::ClientInfo;
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use damselfly_protocol::Args;

/// CLIENT PAUSE timeout [WRITE | ALL]
pub(crate) fn pause(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let ms = parse_i64(args.get(2).unwrap_or_default()).ok_or(CmdError::InvalidTimeout)?;
    if ms < 0 {
        return Err(CmdError::TimeoutNegative);
    }
    let all = match args.len() {
        3 => true,
        4 if eq(args.get(3).unwrap_or_default(), "all") => true,
        4 if eq(args.get(3).unwrap_or_default(), "write") => false,
        4 => return Err(CmdError::PauseMode),
        _ => {
            return Err(CmdError::SubcommandSyntax {
                sub: args.get(1).unwrap_or_default().to_vec(),
                cmd: "CLIENT".into(),
            })
        }
    };
    let end = damselfly_storage::now_ms().saturating_add(ms as u64);
    ctx.server.pause.pause(end, all);
    ctx.reply.ok();
    Ok(())
}

/// CLIENT UNPAUSE
pub(crate) fn unpause(ctx: &mut Ctx, _args: &Args) -> CmdResult {
    ctx.server.pause.unpause();
    ctx.reply.ok();
    Ok(())
}

/// CLIENT NO-EVICT ON|OFF: whether `maxmemory-clients` may close this
/// client.
pub(crate) fn no_evict(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let v = args.get(2).unwrap_or_default();
    if !eq(v, "on") && !eq(v, "off") {
        return Err(CmdError::Syntax);
    }
    ctx.client
        .info
        .no_evict
        .store(eq(v, "on"), std::sync::atomic::Ordering::Relaxed);
    ctx.reply.ok();
    Ok(())
}

/// Which connections a CLIENT KILL names.
#[derive(Default)]
struct Filter {
    id: Option<u64>,
    addr: Option<String>,
    laddr: Option<String>,
    user: Option<String>,
    normal_only: bool,
    /// TYPE master: only the client our master's stream runs as.
    master_only: bool,
    none: bool,
    replicas_only: bool,
    max_age: Option<u64>,
    skip_me: bool,
}

impl Filter {
    fn parse(args: &Args) -> CmdResult<Filter> {
        let mut f = Filter {
            skip_me: true,
            ..Default::default()
        };
        let mut i = 2;
        while i < args.len() {
            let (Some(opt), Some(v)) = (args.get(i), args.get(i + 1)) else {
                return Err(CmdError::Syntax);
            };
            if eq(opt, "id") {
                match parse_i64(v) {
                    Some(n) if n > 0 => f.id = Some(n as u64),
                    _ => return Err(CmdError::ClientIdNotPositive),
                }
            } else if eq(opt, "addr") {
                f.addr = Some(lossy(v));
            } else if eq(opt, "laddr") {
                f.laddr = Some(lossy(v));
            } else if eq(opt, "user") {
                let user = lossy(v);
                if user != "default" {
                    return Err(CmdError::NoSuchUser(user));
                }
                f.user = Some(user);
            } else if eq(opt, "type") {
                // Replicas and (on a replica) the master client are told
                // apart; pub/sub connections are not yet.
                match lossy(v).to_ascii_lowercase().as_str() {
                    "normal" => f.normal_only = true,
                    "master" => f.master_only = true,
                    "replica" | "slave" => f.replicas_only = true,
                    "pubsub" => f.none = true,
                    _ => return Err(CmdError::UnknownClientType(lossy(v))),
                }
            } else if eq(opt, "skipme") {
                f.skip_me = if eq(v, "yes") {
                    true
                } else if eq(v, "no") {
                    false
                } else {
                    return Err(CmdError::Syntax);
                };
            } else if eq(opt, "maxage") {
                match parse_i64(v) {
                    Some(n) if n >= 0 => f.max_age = Some(n as u64),
                    _ => return Err(CmdError::Syntax),
                }
            } else {
                return Err(CmdError::Syntax);
            }
            i += 2;
        }
        Ok(f)
    }

    fn matches(&self, c: &ClientInfo, me: u64, now_ms: u64) -> bool {
        let replica = c.replica.load(std::sync::atomic::Ordering::Relaxed);
        !self.none
            && (!self.replicas_only || replica)
            && (!self.normal_only || !replica)
            && self.id.is_none_or(|id| c.id == id)
            && self.addr.as_ref().is_none_or(|a| *a == c.addr)
            && self.laddr.as_ref().is_none_or(|a| *a == c.laddr)
            && self
                .max_age
                .is_none_or(|age| now_ms.saturating_sub(c.created_ms) / 1000 >= age)
            && !(self.skip_me && c.id == me)
    }
}

/// CLIENT KILL ip:port | CLIENT KILL <filter value> ...
pub(crate) fn kill(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let old_form = args.len() == 3;
    let filter = if old_form {
        Filter {
            addr: Some(lossy(args.get(2).unwrap_or_default())),
            ..Default::default()
        }
    } else {
        Filter::parse(args)?
    };
    let me = ctx.client.id();
    let now = damselfly_storage::now_ms();
    let mut killed = 0;
    let mut kill_me = false;
    let master = ctx
        .server
        .replica
        .status()
        .filter(|s| s.has_master)
        .map(|s| s.master_client);
    ctx.server.clients.for_each_locked(|c| {
        let is_master = Some(c.id) == master;
        if !filter.matches(c, me, now)
            || (filter.master_only && !is_master)
            || (filter.normal_only && is_master)
        {
            return;
        }
        killed += 1;
        if c.id == me {
            kill_me = true;
        } else {
            c.disconnect();
        }
    });
    if kill_me {
        ctx.client.close_after_reply = true;
    }
    if old_form {
        if killed == 0 {
            return Err(CmdError::NoSuchClient);
        }
        ctx.reply.ok();
    } else {
        ctx.reply.int(killed);
    }
    Ok(())
}
