//! Connection commands: PING ECHO QUIT RESET SELECT HELLO AUTH CLIENT.

use crate::args::{eq, int, lossy};
use crate::client::ReplyMode;
use crate::cmd;
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::table::{Command, Keys::None as NoKeys};
use damselfly_protocol::Args;
use std::sync::atomic::Ordering::Relaxed;

pub(crate) static COMMANDS: &[Command] = &[
    cmd!(
        "ping",
        -1,
        "fast sentinel",
        NoKeys,
        "@fast @connection",
        "connection",
        "1.0.0",
        ping
    ),
    cmd!(
        "echo",
        2,
        "loading stale fast",
        NoKeys,
        "@fast @connection",
        "connection",
        "1.0.0",
        echo
    ),
    cmd!(
        "quit",
        -1,
        "allow_busy noscript loading stale fast no_auth",
        NoKeys,
        "@fast @connection",
        "connection",
        "1.0.0",
        quit
    ),
    cmd!(
        "readonly",
        1,
        "loading stale fast",
        NoKeys,
        "@fast @connection",
        "cluster",
        "3.0.0",
        cluster_only
    ),
    cmd!(
        "readwrite",
        1,
        "loading stale fast",
        NoKeys,
        "@fast @connection",
        "cluster",
        "3.0.0",
        cluster_only
    ),
    cmd!(
        "reset",
        1,
        "noscript loading stale fast no_auth allow_busy",
        NoKeys,
        "@fast @connection",
        "connection",
        "6.2.0",
        reset
    ),
    cmd!(
        "select",
        2,
        "loading stale fast",
        NoKeys,
        "@fast @connection",
        "connection",
        "1.0.0",
        select
    ),
    cmd!(
        "hello",
        -1,
        "noscript loading stale fast no_auth allow_busy sentinel",
        NoKeys,
        "@fast @connection",
        "connection",
        "6.0.0",
        hello
    ),
    cmd!(
        "auth",
        -2,
        "noscript loading stale fast no_auth allow_busy sentinel",
        NoKeys,
        "@fast @connection",
        "connection",
        "1.0.0",
        auth
    ),
    cmd!(
        "client",
        -2,
        "sentinel",
        NoKeys,
        "@slow",
        "connection",
        "2.4.0",
        client_help,
        CLIENT_SUBCOMMANDS
    ),
];

static CLIENT_SUBCOMMANDS: &[Command] = &[
    cmd!(
        "kill",
        -3,
        "admin noscript loading stale",
        NoKeys,
        "@admin @slow @dangerous @connection",
        "connection",
        "2.4.0",
        crate::client_admin::kill
    ),
    cmd!(
        "pause",
        -3,
        "admin noscript loading stale",
        NoKeys,
        "@admin @slow @dangerous @connection",
        "connection",
        "2.9.50",
        crate::client_admin::pause
    ),
    cmd!(
        "unpause",
        2,
        "admin noscript loading stale",
        NoKeys,
        "@admin @slow @dangerous @connection",
        "connection",
        "6.2.0",
        crate::client_admin::unpause
    ),
    cmd!(
        "no-evict",
        3,
        "admin noscript loading stale",
        NoKeys,
        "@admin @slow @dangerous @connection",
        "connection",
        "7.0.0",
        crate::client_admin::no_evict
    ),
    cmd!(
        "id",
        2,
        "noscript loading stale",
        NoKeys,
        "@slow @connection",
        "connection",
        "5.0.0",
        client_id
    ),
    cmd!(
        "setname",
        3,
        "noscript loading stale",
        NoKeys,
        "@slow @connection",
        "connection",
        "2.6.9",
        client_setname
    ),
    cmd!(
        "getname",
        2,
        "noscript loading stale",
        NoKeys,
        "@slow @connection",
        "connection",
        "2.6.9",
        client_getname
    ),
    cmd!(
        "info",
        2,
        "noscript loading stale",
        NoKeys,
        "@slow @connection",
        "connection",
        "6.2.0",
        client_info
    ),
    cmd!(
        "list",
        -2,
        "admin noscript loading stale",
        NoKeys,
        "@admin @slow @dangerous @connection",
        "connection",
        "2.4.0",
        client_list
    ),
    cmd!(
        "help",
        2,
        "loading stale",
        NoKeys,
        "@slow @connection",
        "connection",
        "5.0.0",
        client_help
    ),
    cmd!(
        "tracking",
        -3,
        "noscript loading stale",
        NoKeys,
        "@slow @connection",
        "connection",
        "6.0.0",
        crate::tracking::client_tracking
    ),
    cmd!(
        "caching",
        3,
        "noscript loading stale",
        NoKeys,
        "@slow @connection",
        "connection",
        "6.0.0",
        crate::tracking::client_caching
    ),
    cmd!(
        "getredir",
        2,
        "noscript loading stale",
        NoKeys,
        "@slow @connection",
        "connection",
        "6.0.0",
        crate::tracking::client_getredir
    ),
    cmd!(
        "trackinginfo",
        2,
        "noscript loading stale",
        NoKeys,
        "@slow @connection",
        "connection",
        "6.2.0",
        crate::tracking::client_trackinginfo
    ),
    cmd!(
        "reply",
        3,
        "noscript loading stale",
        NoKeys,
        "@slow @connection",
        "connection",
        "3.2.0",
        client_reply
    ),
    cmd!(
        "unblock",
        -3,
        "admin noscript loading stale",
        NoKeys,
        "@admin @slow @dangerous @connection",
        "connection",
        "5.0.0",
        client_unblock
    ),
];

/// CLIENT UNBLOCK client-id [TIMEOUT | ERROR]
fn client_unblock(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let id = int(args.get(2).unwrap_or_default())?;
    let error = match args.len() {
        3 => false,
        4 if eq(args.get(3).unwrap_or_default(), "timeout") => false,
        4 if eq(args.get(3).unwrap_or_default(), "error") => true,
        4 => {
            return Err(CmdError::Other(
                "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR".into(),
            ))
        }
        _ => {
            return Err(CmdError::SubcommandSyntax {
                sub: args.get(1).unwrap_or_default().to_vec(),
                cmd: "CLIENT".into(),
            })
        }
    };
    let done = u64::try_from(id).is_ok_and(|id| crate::list::unblock_client(ctx.server, id, error));
    ctx.reply.int(i64::from(done));
    Ok(())
}

/// CLIENT REPLY ON|OFF|SKIP
fn client_reply(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let mode = args.get(2).unwrap_or_default();
    if eq(mode, "on") {
        ctx.client.reply_mode = ReplyMode::On;
        ctx.reply.ok();
    } else if eq(mode, "off") {
        ctx.client.reply_mode = ReplyMode::Off;
    } else if eq(mode, "skip") {
        if ctx.client.reply_mode != ReplyMode::Off {
            ctx.client.reply_mode = ReplyMode::SkipNext;
        }
    } else {
        return Err(CmdError::Syntax);
    }
    Ok(())
}

/// PING [message]
fn ping(ctx: &mut Ctx, args: &Args) -> CmdResult {
    if args.len() > 2 {
        return Err(CmdError::WrongArity("ping".into()));
    }
    // RESP2 subscribe mode answers with a message-shaped array.
    if ctx.client.in_subscribe_mode() {
        ctx.reply.array(2);
        ctx.reply.bulk(b"pong");
        ctx.reply.bulk(args.get(1).unwrap_or_default());
        return Ok(());
    }
    match args.get(1) {
        Some(m) => ctx.reply.bulk(m),
        None => ctx.reply.simple(b"PONG"),
    }
    Ok(())
}

/// ECHO message
fn echo(ctx: &mut Ctx, args: &Args) -> CmdResult {
    ctx.reply.bulk(args.get(1).unwrap_or_default());
    Ok(())
}

/// READONLY, READWRITE and every CLUSTER subcommand: without cluster mode
/// Redis answers that it has none.
pub(crate) fn cluster_only(_ctx: &mut Ctx, _args: &Args) -> CmdResult {
    Err(CmdError::ClusterDisabled)
}

/// QUIT
fn quit(ctx: &mut Ctx, _args: &Args) -> CmdResult {
    ctx.reply.ok();
    ctx.client.close_after_reply = true;
    Ok(())
}

/// RESET
fn reset(ctx: &mut Ctx, _args: &Args) -> CmdResult {
    ctx.client.end_multi();
    crate::transactions::unwatch_all(ctx);
    crate::pubsub::unsubscribe_all(ctx.server, ctx.client);
    crate::monitor::stop(ctx.server, ctx.client);
    ctx.client.reply_mode = ReplyMode::On;
    if ctx.client.tracking.take().is_some() {
        ctx.server.tracking.disable(ctx.client.id());
    }
    ctx.client.select(0);
    ctx.client.resp3 = false;
    ctx.reply.set_resp3(false);
    ctx.client.info.resp.store(2, Relaxed);
    ctx.client.info.name.lock().clear();
    ctx.client.user = ctx.server.acl.default_user();
    *ctx.client.info.user.lock() = "default".into();
    ctx.client.authenticated = ctx.server.acl.default_nopass();
    ctx.reply.simple(b"RESET");
    Ok(())
}

/// SELECT index
fn select(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let idx = int(args.get(1).unwrap_or_default())?;
    if idx < 0 || idx as usize >= ctx.server.keyspace.dbnum() {
        return Err(CmdError::DbIndexOutOfRange);
    }
    ctx.client.select(idx as usize);
    ctx.reply.ok();
    Ok(())
}

/// Authenticates the connection as `user`; a failure is logged (ACL LOG)
/// and costs nothing more than the reply.
fn check_password(ctx: &mut Ctx, user: &[u8], pass: &[u8]) -> CmdResult {
    match ctx.server.acl.authenticate(user, pass) {
        Some(u) => {
            *ctx.client.info.user.lock() = u.name.clone();
            ctx.client.user = u;
            ctx.client.authenticated = true;
            Ok(())
        }
        None => {
            let info = ctx.client.info.clone();
            let line = describe_line(&info, true, Some("auth"));
            ctx.server.acl.log_event(
                "auth",
                if ctx.client.multi.is_some() {
                    "multi"
                } else {
                    "toplevel"
                },
                "AUTH".into(),
                lossy(user),
                line,
            );
            Err(CmdError::WrongPass)
        }
    }
}

/// AUTH [username] password
fn auth(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let (user, pass) = match args.len() {
        2 => (&b"default"[..], args.get(1).unwrap_or_default()),
        3 => (
            args.get(1).unwrap_or_default(),
            args.get(2).unwrap_or_default(),
        ),
        _ => return Err(CmdError::Syntax),
    };
    if args.len() == 2 && ctx.server.acl.default_nopass() {
        return Err(CmdError::AuthNotConfigured);
    }
    check_password(ctx, user, pass)?;
    ctx.reply.ok();
    Ok(())
}

/// HELLO [protover [AUTH username password] [SETNAME clientname]]
fn hello(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let mut resp3 = ctx.client.resp3;
    let mut i = 1;
    if let Some(v) = args.get(1) {
        let ver = crate::args::parse_i64(v).ok_or(CmdError::ProtocolVersionNotInteger)?;
        if !(2..=3).contains(&ver) {
            return Err(CmdError::UnsupportedProtocol);
        }
        resp3 = ver == 3;
        i = 2;
    }
    let mut name = None;
    while i < args.len() {
        let opt = args.get(i).unwrap_or_default();
        let more = args.len() - i - 1;
        if eq(opt, "auth") && more >= 2 {
            let (u, p) = (
                args.get(i + 1).unwrap_or_default(),
                args.get(i + 2).unwrap_or_default(),
            );
            check_password(ctx, u, p)?;
            i += 3;
        } else if eq(opt, "setname") && more >= 1 {
            let n = args.get(i + 1).unwrap_or_default();
            validate_name(n)?;
            name = Some(n.to_vec());
            i += 2;
        } else {
            return Err(CmdError::Other(format!(
                "ERR Syntax error in HELLO option '{}'",
                lossy(opt)
            )));
        }
    }
    if !ctx.client.authenticated {
        return Err(CmdError::Other(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time".into(),
        ));
    }
    if let Some(n) = name {
        *ctx.client.info.name.lock() = n;
    }
    ctx.client.resp3 = resp3;
    ctx.client
        .info
        .resp
        .store(if resp3 { 3 } else { 2 }, Relaxed);
    ctx.reply.set_resp3(resp3);
    let r = &mut *ctx.reply;
    r.map(7);
    r.bulk(b"server");
    r.bulk(b"redis");
    r.bulk(b"version");
    r.bulk(crate::server::REDIS_VERSION.as_bytes());
    r.bulk(b"proto");
    r.int(if resp3 { 3 } else { 2 });
    r.bulk(b"id");
    r.int(ctx.client.id() as i64);
    r.bulk(b"mode");
    r.bulk(b"standalone");
    r.bulk(b"role");
    r.bulk(b"master");
    r.bulk(b"modules");
    r.array(0);
    Ok(())
}

fn validate_name(n: &[u8]) -> CmdResult {
    if n.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
        return Err(CmdError::InvalidClientName);
    }
    Ok(())
}

/// CLIENT ID
fn client_id(ctx: &mut Ctx, _args: &Args) -> CmdResult {
    ctx.reply.int(ctx.client.id() as i64);
    Ok(())
}

/// CLIENT SETNAME connection-name
fn client_setname(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let n = args.get(2).unwrap_or_default();
    validate_name(n)?;
    *ctx.client.info.name.lock() = n.to_vec();
    ctx.reply.ok();
    Ok(())
}

/// CLIENT GETNAME
fn client_getname(ctx: &mut Ctx, _args: &Args) -> CmdResult {
    let name = ctx.client.info.name.lock().clone();
    if name.is_empty() {
        ctx.reply.null();
    } else {
        ctx.reply.bulk(&name);
    }
    Ok(())
}

fn describe(ctx: &Ctx, c: &crate::client::ClientInfo) -> String {
    let me = c.id == ctx.client.id();
    describe_line(c, me, me.then_some("client|list"))
}

/// A client's line for ACL LOG: as CLIENT LIST shows it, running `e`.
pub(crate) fn describe_client(c: &crate::client::ClientInfo, e: &crate::table::Entry) -> String {
    describe_line(c, true, Some(&e.fullname))
}

/// A CLIENT LIST line; `cmd` overrides the last command run.
fn describe_line(c: &crate::client::ClientInfo, me: bool, cmd: Option<&str>) -> String {
    let now = damselfly_storage::now_ms();
    let cmd = match (cmd, c.last_cmd.load(Relaxed)) {
        (Some(name), _) => name.to_string(),
        (None, 0) => "NULL".to_string(),
        (None, n) => crate::table::table()
            .all
            .get(n - 1)
            .map_or("NULL".into(), |e| e.fullname.clone()),
    };
    let multi = c.multi.load(Relaxed);
    format!(
        "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} multi={} qbuf={} qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem={} events=r cmd={} user={} redir={} resp={}",
        c.id,
        c.addr,
        c.laddr,
        c.fd,
        String::from_utf8_lossy(&c.name.lock()),
        now.saturating_sub(c.created_ms) / 1000,
        if me { 0 } else { now.saturating_sub(c.last_ms.load(Relaxed)) / 1000 },
        flags(c),
        c.db.load(Relaxed),
        c.sub.load(Relaxed),
        c.psub.load(Relaxed),
        c.ssub.load(Relaxed),
        multi,
        c.qbuf.load(Relaxed),
        c.mem.load(Relaxed),
        cmd,
        c.user.lock(),
        c.redir.load(Relaxed),
        c.resp.load(Relaxed),
    )
}

/// CLIENT LIST's flags, in Redis's order: O monitor or S replica, M master, P subscribed, x in MULTI,
/// t tracking, R its redirection broken, B broadcasting; N none.
fn flags(c: &crate::client::ClientInfo) -> String {
    use crate::tracking::{FLAG_BCAST, FLAG_BROKEN, FLAG_ON};
    let mut f = String::new();
    if c.monitor.load(Relaxed) {
        f.push('O');
    } else if c.replica.load(Relaxed) {
        f.push('S');
    }
    if c.master.load(Relaxed) {
        f.push('M');
    }
    if c.subscriptions.load(Relaxed) > 0 {
        f.push('P');
    }
    if c.multi.load(Relaxed) >= 0 {
        f.push('x');
    }
    let t = c.tracking_flags.load(Relaxed);
    for (bit, ch) in [(FLAG_ON, 't'), (FLAG_BROKEN, 'R'), (FLAG_BCAST, 'B')] {
        if t & bit != 0 {
            f.push(ch);
        }
    }
    if c.unix.load(Relaxed) {
        f.push('U');
    }
    if c.no_evict.load(Relaxed) {
        f.push('e');
    }
    if f.is_empty() {
        f.push('N');
    }
    f
}

/// CLIENT INFO
fn client_info(ctx: &mut Ctx, _args: &Args) -> CmdResult {
    let info = ctx.client.info.clone();
    let line = describe(ctx, &info).replace("cmd=client|list", "cmd=client|info");
    ctx.reply.verbatim("txt", format!("{line}\n").as_bytes());
    Ok(())
}

/// CLIENT LIST [TYPE type] [ID id ...]
fn client_list(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let mut ids: Option<Vec<u64>> = None;
    let mut kind: Option<bool> = None;
    let mut replicas: Option<bool> = None;
    let mut master: Option<bool> = None;
    let mut i = 2;
    while i < args.len() {
        let opt = args.get(i).unwrap_or_default();
        if eq(opt, "type") && i + 1 < args.len() {
            let t = args.get(i + 1).unwrap_or_default();
            if !["normal", "master", "replica", "slave", "pubsub"]
                .iter()
                .any(|n| eq(t, n))
            {
                return Err(CmdError::Other(format!(
                    "ERR Unknown client type '{}'",
                    lossy(t)
                )));
            }
            // Subscribed clients are of type pubsub, replicas of type
            // replica, the client our master's stream runs as of type master.
            kind = Some(eq(t, "pubsub")).filter(|_| eq(t, "normal") || eq(t, "pubsub"));
            replicas = Some(eq(t, "replica") || eq(t, "slave"));
            master = Some(eq(t, "master"));
            if kind.is_none() && replicas == Some(false) && master == Some(false) {
                ids = Some(Vec::new());
            }
            i += 2;
        } else if eq(opt, "id") && i + 1 < args.len() {
            let mut v = Vec::new();
            for a in (i + 1..args.len()).filter_map(|j| args.get(j)) {
                match crate::args::parse_i64(a) {
                    Some(n) if n > 0 => v.push(n as u64),
                    _ => return Err(CmdError::Other("ERR Invalid client ID".into())),
                }
            }
            ids = Some(v);
            break;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let mut out = String::new();
    for c in ctx.server.clients.list() {
        if ids.as_ref().is_some_and(|v| !v.contains(&c.id)) {
            continue;
        }
        if kind.is_some_and(|pubsub| pubsub != (c.subscriptions.load(Relaxed) > 0)) {
            continue;
        }
        if replicas.is_some_and(|r| r != c.replica.load(Relaxed)) {
            continue;
        }
        if master.is_some_and(|m| m != c.master.load(Relaxed)) {
            continue;
        }
        out.push_str(&describe(ctx, &c));
        out.push('\n');
    }
    ctx.reply.verbatim("txt", out.as_bytes());
    Ok(())
}

/// CLIENT HELP
fn client_help(ctx: &mut Ctx, args: &Args) -> CmdResult {
    if args.len() == 1 {
        return Err(CmdError::WrongArity("client".into()));
    }
    crate::server::reply_help(
        ctx,
        "CLIENT",
        &[
            "GETNAME",
            "    Return the name of the current connection.",
            "ID",
            "    Return the ID of the current connection.",
            "INFO",
            "    Return information about the current client connection.",
            "LIST [options ...]",
            "    Return information about client connections. Options:",
            "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
            "      Return clients of specified type.",
            "SETNAME <name>",
            "    Assign the name <name> to the current connection.",
        ],
    );
    Ok(())
}
