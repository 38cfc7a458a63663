//! Stream commands: XADD XLEN XRANGE XREVRANGE XDEL XTRIM XREAD XGROUP
//! XREADGROUP XACK XPENDING XCLAIM XAUTOCLAIM XINFO XSETID.
//!
//! Blocking XREAD/XREADGROUP park on the list module's waiter machinery
//! (`BlockOp::Stream`); `serve_waiters` runs them when a key they wait on is
//! written: an XREAD is served once the stream's last ID passes the one it
//! waits after, an XREADGROUP once its group has undelivered entries, and an
//! XREADGROUP whose key vanished, changed type or lost its group is released
//! with Redis's error.

use crate::args::{eq, parse_i64};
use crate::cmd;
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::list::{block, BlockOp, Waiter};
use crate::table::{
    Command,
    Keys::{self, None as NoKeys, Range},
};
use damselfly_core::stream::{
    Group, Limits, Nack, Stream, StreamEntry, StreamId, Trim, INVALID_ENTRIES_READ,
};
use damselfly_protocol::{Args, Reply};
use damselfly_replication::master;
use damselfly_storage::{typed, Entry, Locked, Shard, Value, ValueMut, ValueRef};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

pub(crate) static COMMANDS: &[Command] = &[
    cmd!(
        "xadd",
        -5,
        "write denyoom fast",
        Range(1, 1, 1),
        "@write @stream @fast",
        "stream",
        "5.0.0",
        xadd
    ),
    cmd!(
        "xlen",
        2,
        "readonly fast",
        Range(1, 1, 1),
        "@read @stream @fast",
        "stream",
        "5.0.0",
        xlen
    ),
    cmd!(
        "xrange",
        -4,
        "readonly",
        Range(1, 1, 1),
        "@read @stream @slow",
        "stream",
        "5.0.0",
        xrange
    ),
    cmd!(
        "xrevrange",
        -4,
        "readonly",
        Range(1, 1, 1),
        "@read @stream @slow",
        "stream",
        "5.0.0",
        xrevrange
    ),
    cmd!(
        "xdel",
        -3,
        "write fast",
        Range(1, 1, 1),
        "@write @stream @fast",
        "stream",
        "5.0.0",
        xdel
    ),
    cmd!(
        "xtrim",
        -4,
        "write",
        Range(1, 1, 1),
        "@write @stream @slow",
        "stream",
        "5.0.0",
        xtrim
    ),
    cmd!(
        "xread",
        -4,
        "readonly blocking",
        Keys::Streams,
        "@read @stream @slow @blocking",
        "stream",
        "5.0.0",
        xread
    ),
    cmd!(
        "xreadgroup",
        -7,
        "write blocking",
        Keys::Streams,
        "@write @stream @slow @blocking",
        "stream",
        "5.0.0",
        xreadgroup
    ),
    cmd!(
        "xack",
        -4,
        "write fast",
        Range(1, 1, 1),
        "@write @stream @fast",
        "stream",
        "5.0.0",
        xack
    ),
    cmd!(
        "xpending",
        -3,
        "readonly",
        Range(1, 1, 1),
        "@read @stream @slow",
        "stream",
        "5.0.0",
        xpending
    ),
    cmd!(
        "xclaim",
        -6,
        "write fast",
        Range(1, 1, 1),
        "@write @stream @fast",
        "stream",
        "5.0.0",
        xclaim
    ),
    cmd!(
        "xautoclaim",
        -6,
        "write fast",
        Range(1, 1, 1),
        "@write @stream @fast",
        "stream",
        "6.2.0",
        xautoclaim
    ),
    cmd!(
        "xsetid",
        -3,
        "write denyoom fast",
        Range(1, 1, 1),
        "@write @stream @fast",
        "stream",
        "5.0.0",
        xsetid
    ),
    cmd!(
        "xgroup",
        -2,
        "",
        NoKeys,
        "@slow",
        "stream",
        "5.0.0",
        container,
        XGROUP_SUBCOMMANDS
    ),
    cmd!(
        "xinfo",
        -2,
        "",
        NoKeys,
        "@slow",
        "stream",
        "5.0.0",
        container,
        XINFO_SUBCOMMANDS
    ),
];

static XGROUP_SUBCOMMANDS: &[Command] = &[
    cmd!(
        "create",
        -5,
        "write denyoom",
        Range(2, 2, 1),
        "@write @stream @slow",
        "stream",
        "5.0.0",
        xgroup
    ),
    cmd!(
        "createconsumer",
        5,
        "write denyoom",
        Range(2, 2, 1),
        "@write @stream @slow",
        "stream",
        "6.2.0",
        xgroup
    ),
    cmd!(
        "delconsumer",
        5,
        "write",
        Range(2, 2, 1),
        "@write @stream @slow",
        "stream",
        "5.0.0",
        xgroup
    ),
    cmd!(
        "destroy",
        4,
        "write",
        Range(2, 2, 1),
        "@write @stream @slow",
        "stream",
        "5.0.0",
        xgroup
    ),
    cmd!(
        "help",
        2,
        "loading stale",
        NoKeys,
        "@stream @slow",
        "stream",
        "5.0.0",
        xgroup_help
    ),
    cmd!(
        "setid",
        -5,
        "write",
        Range(2, 2, 1),
        "@write @stream @slow",
        "stream",
        "5.0.0",
        xgroup
    ),
];

static XINFO_SUBCOMMANDS: &[Command] = &[
    cmd!(
        "consumers",
        4,
        "readonly",
        Range(2, 2, 1),
        "@read @stream @slow",
        "stream",
        "5.0.0",
        xinfo_consumers
    ),
    cmd!(
        "groups",
        3,
        "readonly",
        Range(2, 2, 1),
        "@read @stream @slow",
        "stream",
        "5.0.0",
        xinfo_groups
    ),
    cmd!(
        "help",
        2,
        "loading stale",
        NoKeys,
        "@stream @slow",
        "stream",
        "5.0.0",
        xinfo_help
    ),
    cmd!(
        "stream",
        -3,
        "readonly",
        Range(2, 2, 1),
        "@read @stream @slow",
        "stream",
        "5.0.0",
        xinfo_stream
    ),
];

fn arg<'a>(args: &Args<'a>, i: usize) -> &'a [u8] {
    args.get(i).unwrap_or_default()
}

/// XGROUP/XINFO without a subcommand fail on arity before reaching here.
fn container(_ctx: &mut Ctx, args: &Args) -> CmdResult {
    Err(CmdError::WrongArity(
        String::from_utf8_lossy(arg(args, 0)).to_ascii_lowercase(),
    ))
}

fn limits(ctx: &Ctx) -> Limits {
    let e = &ctx.server.config.encodings;
    Limits {
        max_entries: e.stream_node_max_entries.load(Relaxed).max(0) as usize,
        max_bytes: e.stream_node_max_bytes.load(Relaxed).max(0) as usize,
    }
}

// ---------------------------------------------------------------------------
// ID parsing, with Redis's number rules.

/// Redis's string2ull: a canonical non-negative integer, or else what C's
/// strtoull accepts over the whole string (leading space, a sign).
fn parse_u64(s: &[u8]) -> Option<u64> {
    if let Some(v) = parse_i64(s) {
        return u64::try_from(v).ok();
    }
    let start = s.iter().position(|c| !c.is_ascii_whitespace())?;
    let mut rest = &s[start..];
    let neg = match rest.first() {
        Some(b'-') => {
            rest = &rest[1..];
            true
        }
        Some(b'+') => {
            rest = &rest[1..];
            false
        }
        _ => false,
    };
    if rest.is_empty() || !rest.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: u64 = 0;
    for &d in rest {
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

/// A parsed ID argument: the ID, and whether its sequence was given (false
/// for XADD's `ms-*`).
fn parse_id_full(
    s: &[u8],
    missing_seq: u64,
    strict: bool,
    allow_star_seq: bool,
) -> CmdResult<(StreamId, bool)> {
    // Redis copies the argument into a 128-byte C string.
    if s.len() > 127 {
        return Err(CmdError::StreamId);
    }
    let s = match s.iter().position(|&c| c == 0) {
        Some(i) => &s[..i],
        None => s,
    };
    if strict && (s == b"-" || s == b"+") {
        return Err(CmdError::StreamId);
    }
    if s == b"-" {
        return Ok((StreamId::MIN, true));
    }
    if s == b"+" {
        return Ok((StreamId::MAX, true));
    }
    let (ms, seq) = match s.iter().position(|&c| c == b'-') {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let ms = parse_u64(ms).ok_or(CmdError::StreamId)?;
    match seq {
        Some(b"*") if allow_star_seq => Ok((StreamId::new(ms, 0), false)),
        Some(seq) => Ok((
            StreamId::new(ms, parse_u64(seq).ok_or(CmdError::StreamId)?),
            true,
        )),
        None => Ok((StreamId::new(ms, missing_seq), true)),
    }
}

/// A strict ID (no `-` or `+`); a missing sequence is 0.
fn parse_strict(s: &[u8]) -> CmdResult<StreamId> {
    parse_id_full(s, 0, true, false).map(|x| x.0)
}

/// A range bound: `-`, `+`, an ID, or `(ID` (exclusive; then strict).
fn parse_interval(s: &[u8], missing_seq: u64) -> CmdResult<(StreamId, bool)> {
    if s.len() > 1 && s[0] == b'(' {
        let id = parse_id_full(&s[1..], missing_seq, true, false)?.0;
        Ok((id, true))
    } else {
        Ok((parse_id_full(s, missing_seq, false, false)?.0, false))
    }
}

/// The inclusive start of a range from its argument.
fn range_start(s: &[u8]) -> CmdResult<StreamId> {
    let (id, ex) = parse_interval(s, 0)?;
    if ex {
        id.next().ok_or(CmdError::InvalidStartId)
    } else {
        Ok(id)
    }
}

/// The inclusive end of a range from its argument.
fn range_end(s: &[u8]) -> CmdResult<StreamId> {
    let (id, ex) = parse_interval(s, u64::MAX)?;
    if ex {
        id.prev().ok_or(CmdError::InvalidEndId)
    } else {
        Ok(id)
    }
}

/// A count option: an integer, negatives meaning 0.
fn count_arg(s: &[u8]) -> CmdResult<u64> {
    Ok(crate::args::int(s)?.max(0) as u64)
}

// ---------------------------------------------------------------------------
// Replies.

fn reply_id(r: &mut Reply, id: StreamId) {
    r.bulk(id.to_string().as_bytes());
}

fn reply_fields<F: AsRef<[u8]>>(r: &mut Reply, id: StreamId, fields: &[F]) {
    r.array(2);
    reply_id(r, id);
    r.array(fields.len());
    for f in fields {
        r.bulk(f.as_ref());
    }
}

fn reply_entry(r: &mut Reply, e: &StreamEntry) {
    reply_fields(r, e.id, &e.fields);
}

/// The live entries of `start..=end` (at most `count`, 0: all) as an array,
/// written straight from the nodes.
fn reply_range(r: &mut Reply, s: &Stream, start: StreamId, end: StreamId, rev: bool, count: usize) {
    let mut body = Reply::new();
    body.set_resp3(r.is_resp3());
    let n = s.visit(start, end, rev, count, |id, fields| {
        reply_fields(&mut body, id, fields)
    });
    r.array(n);
    r.raw(body.as_bytes());
}

/// The entries after `after` (none after the largest ID).
fn reply_after(r: &mut Reply, s: &Stream, after: StreamId, count: usize) {
    match after.next() {
        Some(start) => reply_range(r, s, start, StreamId::MAX, false, count),
        None => r.array(0),
    }
}

fn reply_entries(r: &mut Reply, es: &[StreamEntry]) {
    r.array(es.len());
    for e in es {
        reply_entry(r, e);
    }
}

// ---------------------------------------------------------------------------
// XADD / XTRIM.

struct TrimArgs {
    trim: Option<Trim>,
    approx: bool,
    limit: u64,
    nomkstream: bool,
    /// XADD: the ID (None for `*`) and whether its sequence was given.
    id: Option<(StreamId, bool)>,
    /// Index of the first argument after the options (XADD: the ID).
    next: usize,
}

/// The shared option parser of XADD (`xadd`) and XTRIM.
fn parse_trim_args(ctx: &Ctx, args: &Args, xadd: bool) -> CmdResult<TrimArgs> {
    let mut t = TrimArgs {
        trim: None,
        approx: false,
        limit: 0,
        nomkstream: false,
        id: None,
        next: args.len(),
    };
    let mut limit_given = false;
    let mut i = 2;
    while i < args.len() {
        let more = args.len() - 1 - i;
        let opt = arg(args, i);
        if xadd && opt == b"*" {
            t.next = i;
            break;
        } else if (eq(opt, "maxlen") || eq(opt, "minid")) && more > 0 {
            if t.trim.is_some() {
                return Err(CmdError::MaxlenMinidConflict);
            }
            t.approx = false;
            let next = arg(args, i + 1);
            if more >= 2 && next == b"~" {
                t.approx = true;
                i += 1;
            } else if more >= 2 && next == b"=" {
                i += 1;
            }
            let v = arg(args, i + 1);
            t.trim = Some(if eq(opt, "maxlen") {
                let n = crate::args::int(v)?;
                if n < 0 {
                    return Err(CmdError::MaxlenNegative);
                }
                Trim::MaxLen(n as u64)
            } else {
                Trim::MinId(parse_strict(v)?)
            });
            i += 1;
        } else if eq(opt, "limit") && more > 0 {
            let n = crate::args::int(arg(args, i + 1))?;
            if n < 0 {
                return Err(CmdError::StreamLimitNegative);
            }
            t.limit = n as u64;
            limit_given = true;
            i += 1;
        } else if xadd && eq(opt, "nomkstream") {
            t.nomkstream = true;
        } else if xadd {
            t.id = Some(parse_id_full(opt, 0, true, true)?);
            t.next = i;
            break;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if t.limit != 0 && t.trim.is_none() {
        return Err(CmdError::LimitWithoutTrim);
    }
    if !xadd && t.trim.is_none() {
        return Err(CmdError::XtrimNoStrategy);
    }
    if limit_given {
        if !t.approx {
            return Err(CmdError::LimitWithoutApprox);
        }
    } else if t.approx {
        let per_node = ctx
            .server
            .config
            .encodings
            .stream_node_max_entries
            .load(Relaxed);
        t.limit = match per_node.checked_mul(100) {
            Some(l) if l > 0 && l <= 1_000_000 => l as u64,
            _ => 10_000,
        };
    } else {
        t.limit = 0;
    }
    Ok(t)
}

/// XADD key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT count]] *|id field value [field value ...]
fn xadd(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let key = arg(args, 1);
    let t = parse_trim_args(ctx, args, true)?;
    let fields_at = t.next + 1;
    let n = args.len().saturating_sub(fields_at);
    if n < 2 || n % 2 == 1 {
        return Err(CmdError::WrongArity("xadd".into()));
    }
    if let Some((id, true)) = t.id {
        if id.is_zero() {
            return Err(CmdError::XaddIdZero);
        }
    }
    let limits = limits(ctx);
    let (db, now) = (ctx.db(), ctx.now);
    let shard = ctx.shard(key);
    let exists = typed::write::<Stream>(shard, db, key, now)?.is_some();
    if !exists {
        if t.nomkstream {
            ctx.reply.null();
            return Ok(());
        }
        shard.put(db, Entry::new(key, Value::Stream(Box::default()), 0));
    }
    let Some(s) = typed::write::<Stream>(shard, db, key, now)? else {
        return Err(CmdError::WrongType);
    };
    let result = add_entry(s, &t, args, fields_at, now, limits);
    let id = match result {
        Ok(id) => id,
        Err(e) => {
            // Redis creates the key before it checks the ID.
            if !exists {
                shard.written(db, key, "xadd");
            }
            return Err(e);
        }
    };
    let trimmed = t.trim.map_or(0, |how| s.trim(how, t.approx, t.limit));
    shard.written(db, key, "xadd");
    if trimmed > 0 {
        shard.notify(db, key, "xtrim");
    }
    reply_id(ctx.reply, id);
    // Replicas get the ID this server chose (for `*` and `ms-*`).
    if ctx.server.repl.active() {
        let id = id.to_string();
        let mut argv: Vec<&[u8]> = args.iter().collect();
        if let Some(a) = argv.get_mut(t.next) {
            *a = id.as_bytes();
        }
        crate::repl_master::instead(ctx.server, &argv);
    }
    Ok(())
}

fn add_entry(
    s: &mut Stream,
    t: &TrimArgs,
    args: &Args,
    fields_at: usize,
    now: u64,
    limits: Limits,
) -> CmdResult<StreamId> {
    if s.last_id == StreamId::MAX {
        return Err(CmdError::StreamExhausted);
    }
    let id = match t.id {
        None => s.auto_id(now).ok_or(CmdError::StreamExhausted)?,
        Some((id, true)) => id,
        Some((id, false)) if id.ms == s.last_id.ms && s.last_id.seq == u64::MAX => {
            return Err(CmdError::ElementsTooLarge)
        }
        Some((id, false)) => s.seq_id(id.ms).ok_or(CmdError::XaddIdTooSmall)?,
    };
    if id <= s.last_id {
        return Err(CmdError::XaddIdTooSmall);
    }
    let fields: Vec<&[u8]> = args.iter().skip(fields_at).collect();
    s.append(id, &fields, limits);
    Ok(id)
}

/// XTRIM key MAXLEN|MINID [=|~] threshold [LIMIT count]
fn xtrim(ctx: &mut Ctx, args: &Args) -> CmdResult {
    remove_entries(
        ctx,
        args,
        "xtrim",
        |ctx| parse_trim_args(ctx, args, false),
        |s, t| t.trim.map_or(0, |how| s.trim(how, t.approx, t.limit)),
    )
}

/// XDEL/XTRIM: 0 for a missing key (checked before the arguments, as
/// Redis does); else parses the arguments, runs `op` and reports the
/// write when it removed anything.
fn remove_entries<T>(
    ctx: &mut Ctx,
    args: &Args,
    event: &'static str,
    parse: impl FnOnce(&Ctx) -> CmdResult<T>,
    op: impl FnOnce(&mut Stream, T) -> u64,
) -> CmdResult {
    let key = arg(args, 1);
    let (db, now) = (ctx.db(), ctx.now);
    if typed::write::<Stream>(ctx.shard(key), db, key, now)?.is_none() {
        ctx.reply.int(0);
        return Ok(());
    }
    let parsed = parse(ctx)?;
    let shard = ctx.shard(key);
    let Some(s) = typed::write::<Stream>(shard, db, key, now)? else {
        return Err(CmdError::WrongType);
    };
    let n = op(s, parsed);
    if n > 0 {
        shard.written(db, key, event);
    }
    ctx.reply.int(n as i64);
    Ok(())
}

// ---------------------------------------------------------------------------
// XLEN XRANGE XREVRANGE XDEL XSETID.

/// XLEN key
fn xlen(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let key = arg(args, 1);
    let (db, now) = (ctx.db(), ctx.now);
    let n = typed::read::<Stream>(ctx.shard(key), db, key, now)?.map_or(0, |s| s.len());
    ctx.reply.int(n as i64);
    Ok(())
}

fn range_generic(ctx: &mut Ctx, args: &Args, rev: bool) -> CmdResult {
    let key = arg(args, 1);
    let (a, b) = if rev { (3, 2) } else { (2, 3) };
    let start = range_start(arg(args, a))?;
    let end = range_end(arg(args, b))?;
    let mut count: Option<u64> = None;
    let mut i = 4;
    while i < args.len() {
        if eq(arg(args, i), "count") && i + 1 < args.len() {
            count = Some(count_arg(arg(args, i + 1))?);
            i += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let (db, now) = (ctx.db(), ctx.now);
    let (shard, reply) = ctx.shard_and_reply(key);
    let Some(s) = typed::read::<Stream>(shard, db, key, now)? else {
        reply.array(0);
        return Ok(());
    };
    match count {
        Some(0) => reply.null_array(),
        c => {
            let c = usize::try_from(c.unwrap_or(0)).unwrap_or(usize::MAX);
            reply_range(reply, s, start, end, rev, c);
        }
    }
    Ok(())
}

/// XRANGE key start end [COUNT count]
fn xrange(ctx: &mut Ctx, args: &Args) -> CmdResult {
    range_generic(ctx, args, false)
}

/// XREVRANGE key end start [COUNT count]
fn xrevrange(ctx: &mut Ctx, args: &Args) -> CmdResult {
    range_generic(ctx, args, true)
}

/// XDEL key id [id ...]
fn xdel(ctx: &mut Ctx, args: &Args) -> CmdResult {
    remove_entries(
        ctx,
        args,
        "xdel",
        |_| {
            args.iter()
                .skip(2)
                .map(parse_strict)
                .collect::<CmdResult<Vec<_>>>()
        },
        |s, ids| ids.into_iter().filter(|id| s.delete(*id)).count() as u64,
    )
}

/// XSETID key last-id [ENTRIESADDED entries-added] [MAXDELETEDID max-deleted-id]
fn xsetid(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let key = arg(args, 1);
    let id = parse_strict(arg(args, 2))?;
    let mut entries_added: Option<u64> = None;
    let mut max_deleted = StreamId::MIN;
    let mut i = 3;
    while i < args.len() {
        let more = args.len() - 1 - i;
        let opt = arg(args, i);
        if eq(opt, "entriesadded") && more > 0 {
            let n = crate::args::int(arg(args, i + 1))?;
            if n < 0 {
                return Err(CmdError::EntriesAddedNegative);
            }
            entries_added = Some(n as u64);
        } else if eq(opt, "maxdeletedid") && more > 0 {
            max_deleted = parse_strict(arg(args, i + 1))?;
            if id < max_deleted {
                return Err(CmdError::XsetidSmaller("the provided max_deleted_entry_id"));
            }
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    let (db, now) = (ctx.db(), ctx.now);
    let shard = ctx.shard(key);
    let Some(s) = typed::write::<Stream>(shard, db, key, now)? else {
        return Err(CmdError::NoSuchKey);
    };
    if !s.is_empty() {
        let top = s.edge(true).map_or(StreamId::MIN, |e| e.id);
        if id < top {
            return Err(CmdError::XsetidSmaller("the target stream top item"));
        }
        if entries_added.is_some_and(|n| n < s.len()) {
            return Err(CmdError::XsetidEntriesAdded);
        }
    }
    if id < s.max_deleted {
        return Err(CmdError::XsetidSmaller("current max_deleted_entry_id"));
    }
    s.last_id = id;
    if let Some(n) = entries_added {
        s.entries_added = n;
    }
    if !max_deleted.is_zero() {
        s.max_deleted = max_deleted;
    }
    shard.written(db, key, "xsetid");
    ctx.reply.ok();
    Ok(())
}

// ---------------------------------------------------------------------------
// XREAD / XREADGROUP.

/// What a blocked XREAD/XREADGROUP waits for.
#[derive(Debug, Clone)]
pub struct StreamWait {
    /// Each key (first occurrence) and the ID it waits after (XREAD).
    ids: Vec<(Vec<u8>, StreamId)>,
    /// XREADGROUP: group, consumer, NOACK.
    group: Option<(Vec<u8>, Vec<u8>, bool)>,
    count: usize,
}

/// The key positions of XREAD/XREADGROUP: the first half of what follows
/// the STREAMS option. The options before it are skipped as the handler
/// parses them, since a group or consumer may itself be spelled `streams`;
/// where they do not parse (the handler will fail), the first `streams`
/// argument is taken, as Redis's key spec does for COMMAND GETKEYS.
pub(crate) fn stream_key_positions<'a>(
    argc: usize,
    arg: impl Fn(usize) -> Option<&'a [u8]>,
) -> std::ops::Range<usize> {
    let mut i = 1;
    let parsed = loop {
        let Some(a) = arg(i) else {
            break None;
        };
        if eq(a, "block") || eq(a, "count") {
            i += 2;
        } else if eq(a, "group") {
            i += 3;
        } else if eq(a, "noack") {
            i += 1;
        } else if eq(a, "streams") {
            break Some(i);
        } else {
            break None;
        }
    };
    let found = parsed.or_else(|| (1..argc).find(|&i| arg(i).is_some_and(|a| eq(a, "streams"))));
    let Some(at) = found else {
        return 0..0;
    };
    let n = (argc - at - 1) / 2;
    at + 1..at + 1 + n
}

/// Redis's millisecond timeout: an integer, not negative; 0 blocks forever.
fn parse_block_ms(s: &[u8]) -> CmdResult<Option<Duration>> {
    let v = parse_i64(s).ok_or(CmdError::InvalidTimeout)?;
    if v < 0 {
        return Err(CmdError::TimeoutNegative);
    }
    Ok((v > 0).then(|| Duration::from_millis(v as u64)))
}

fn xread(ctx: &mut Ctx, args: &Args) -> CmdResult {
    xread_generic(ctx, args, false)
}

fn xreadgroup(ctx: &mut Ctx, args: &Args) -> CmdResult {
    xread_generic(ctx, args, true)
}

/// XREAD [COUNT count] [BLOCK ms] STREAMS key [key ...] id [id ...]
/// XREADGROUP GROUP group consumer [COUNT count] [BLOCK ms] [NOACK] STREAMS key [key ...] id [id ...]
fn xread_generic(ctx: &mut Ctx, args: &Args, group_cmd: bool) -> CmdResult {
    let mut timeout: Option<Option<Duration>> = None;
    let mut count = 0u64;
    let mut streams_at = 0;
    let mut nkeys = 0;
    let mut noack = false;
    let mut group: Option<(&[u8], &[u8])> = None;
    let mut i = 1;
    while i < args.len() {
        let more = args.len() - i - 1;
        let o = arg(args, i);
        if eq(o, "block") && more > 0 {
            i += 1;
            timeout = Some(parse_block_ms(arg(args, i))?);
        } else if eq(o, "count") && more > 0 {
            i += 1;
            count = count_arg(arg(args, i))?;
        } else if eq(o, "streams") && more > 0 {
            streams_at = i + 1;
            let n = args.len() - streams_at;
            if n & 1 == 1 {
                return Err(if group_cmd {
                    CmdError::StreamsUnbalanced("XREADGROUP", '>')
                } else {
                    CmdError::StreamsUnbalanced("XREAD", '$')
                });
            }
            nkeys = n / 2;
            break;
        } else if eq(o, "group") && more >= 2 {
            if !group_cmd {
                return Err(CmdError::XreadOnlyGroup("GROUP"));
            }
            group = Some((arg(args, i + 1), arg(args, i + 2)));
            i += 2;
        } else if eq(o, "noack") {
            if !group_cmd {
                return Err(CmdError::XreadOnlyGroup("NOACK"));
            }
            noack = true;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if streams_at == 0 {
        return Err(CmdError::Syntax);
    }
    if group_cmd && group.is_none() {
        return Err(CmdError::MissingGroup);
    }
    if timeout.is_some() && ctx.client.in_script {
        return Err(CmdError::BlockInScript(if group_cmd {
            "xreadgroup"
        } else {
            "xread"
        }));
    }
    let (db, now) = (ctx.db(), ctx.now);
    // Resolve each key's ID: None stands for `>`.
    let mut ids: Vec<Option<StreamId>> = Vec::with_capacity(nkeys);
    for k in 0..nkeys {
        let key = arg(args, streams_at + k);
        let id_arg = arg(args, streams_at + nkeys + k);
        let s = typed::read::<Stream>(ctx.shard(key), db, key, now)?;
        if let Some((g, _)) = group {
            if s.is_none_or(|s| !s.groups.contains_key(g)) {
                return Err(CmdError::NoGroup {
                    key: key.to_vec(),
                    group: g.to_vec(),
                    read: true,
                });
            }
        }
        if id_arg == b"$" {
            if group_cmd {
                return Err(CmdError::DollarInXreadgroup);
            }
            ids.push(Some(s.map_or(StreamId::MIN, |s| s.last_id)));
        } else if id_arg == b">" {
            if !group_cmd {
                return Err(CmdError::GtOutsideXreadgroup);
            }
            ids.push(None);
        } else {
            ids.push(Some(parse_strict(id_arg)?));
        }
    }
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    // Serve what can be served now.
    // The reply's protocol, not the client's: a script's calls follow
    // `redis.setresp`.
    let mut out = Reply::new();
    out.set_resp3(ctx.reply.is_resp3());
    let mut served = 0;
    for (k, id) in ids.iter().enumerate() {
        let key = arg(args, streams_at + k);
        let shard = ctx.shard(key);
        // Redis looks every key up a second time to serve it: hits, misses
        // and keymiss events count twice.
        shard.get(db, key, now);
        let Some(s) = typed::write::<Stream>(shard, db, key, now)? else {
            continue;
        };
        match group {
            None => {
                let after = id.unwrap_or(StreamId::MAX);
                if s.edge(true).is_some_and(|e| e.id > after) {
                    served += 1;
                    reply_key_entries(&mut out, key, |r| reply_after(r, s, after, count));
                }
            }
            Some((g, consumer)) => {
                let stream_top = s.edge(true).map(|e| e.id);
                let Some(grp) = s.groups.get_mut(g) else {
                    continue;
                };
                // The consumer is made (or seen) only by a read that is
                // answered now, as in Redis 7.0.
                let serve_now = id.is_some() || stream_top.is_some_and(|top| top > grp.last_id);
                let created = serve_now && grp.consumer(consumer, Some(now)).1;
                match id {
                    Some(after) => {
                        // Like `>`, an explicit ID means "after this one".
                        let start = after.next();
                        served += 1;
                        reply_key_entries(&mut out, key, |r| {
                            reply_history(r, s, g, consumer, start, count, now)
                        });
                        shard.stats.dirty += 1;
                    }
                    None => {
                        if serve_now {
                            served += 1;
                            let es = deliver_new(s, g, consumer, noack, count, now);
                            reply_key_entries(&mut out, key, |r| reply_entries(r, &es));
                            let d = Delivered {
                                db,
                                key,
                                g,
                                consumer,
                            };
                            d.propagate(s, noack, created, &es);
                            shard.stats.dirty += 1;
                        }
                    }
                }
                if created {
                    shard.notify(db, key, "xgroup-createconsumer");
                }
            }
        }
    }
    // A group read reaches replicas as its effects (Redis 7.0): the claims
    // queued above, not the read itself (a history read, not at all).
    if group.is_some() && master::propagating() {
        master::nothing();
    }
    if served > 0 {
        if ctx.reply.is_resp3() {
            ctx.reply.map(served);
        } else {
            ctx.reply.array(served);
        }
        ctx.reply.raw(out.as_bytes());
        return Ok(());
    }
    let Some(timeout) = timeout else {
        ctx.reply.null_array();
        return Ok(());
    };
    let mut wait_ids: Vec<(Vec<u8>, StreamId)> = Vec::new();
    for (k, id) in ids.iter().enumerate() {
        let key = arg(args, streams_at + k);
        if !wait_ids.iter().any(|(x, _)| x == key) {
            wait_ids.push((key.to_vec(), id.unwrap_or(StreamId::MAX)));
        }
    }
    let keys = wait_ids.iter().map(|(k, _)| k.clone()).collect();
    let wait = StreamWait {
        ids: wait_ids,
        group: group.map(|(g, c)| (g.to_vec(), c.to_vec(), noack)),
        count,
    };
    block(ctx, keys, BlockOp::Stream(Box::new(wait)), timeout);
    Ok(())
}

/// One stream's part of an XREAD reply: `[key, entries]` (a map entry in
/// RESP3; the caller writes the header).
fn reply_key_entries(r: &mut Reply, key: &[u8], body: impl FnOnce(&mut Reply)) {
    if !r.is_resp3() {
        r.array(2);
    }
    r.bulk(key);
    body(r);
}

/// Delivers up to `count` (0: all) entries after group `g`'s last ID to
/// `consumer`, recording them as pending unless `noack`.
fn deliver_new(
    s: &mut Stream,
    g: &[u8],
    consumer: &[u8],
    noack: bool,
    count: usize,
    now: u64,
) -> Vec<StreamEntry> {
    let Some(last) = s.groups.get(g).map(|grp| grp.last_id) else {
        return Vec::new();
    };
    let Some(start) = last.next() else {
        return Vec::new();
    };
    let es = s.range(start, StreamId::MAX, false, count);
    let mut grp = match s.groups.remove(g) {
        Some(grp) => grp,
        None => return Vec::new(),
    };
    for e in &es {
        s.advance_group(&mut grp, e.id);
        if !noack {
            grp.deliver(e.id, consumer, now);
        }
    }
    s.groups.insert(g.to_vec(), grp);
    es
}

/// Entries a group handed to a consumer (XREADGROUP, XCLAIM, XAUTOCLAIM),
/// for replicas.
struct Delivered<'a> {
    db: usize,
    key: &'a [u8],
    g: &'a [u8],
    consumer: &'a [u8],
}

impl Delivered<'_> {
    /// A read of new entries as Redis 7.0 propagates it: one XCLAIM per
    /// pending entry, or with NOACK the group's new position.
    fn propagate(&self, s: &Stream, noack: bool, created: bool, es: &[StreamEntry]) {
        if !master::propagating() || es.is_empty() {
            return;
        }
        let Some(grp) = s.groups.get(self.g) else {
            return;
        };
        if noack {
            if created {
                self.also(&[
                    b"XGROUP",
                    b"CREATECONSUMER",
                    self.key,
                    self.g,
                    self.consumer,
                ]);
            }
            let (last, read) = (grp.last_id.to_string(), grp.entries_read.to_string());
            let setid: [&[u8]; 7] = [
                b"XGROUP",
                b"SETID",
                self.key,
                self.g,
                last.as_bytes(),
                b"ENTRIESREAD",
                read.as_bytes(),
            ];
            self.also(&setid);
            return;
        }
        for e in es {
            if let Some(nack) = grp.pel.get(&e.id) {
                // The group's position was this entry when it was read.
                self.xclaim(self.consumer, e.id, nack, e.id);
            }
        }
    }

    /// One entry pending for `consumer` (as `nack` says) as an `XCLAIM ...
    /// FORCE JUSTID`, which recreates it on a replica exactly.
    fn xclaim(&self, consumer: &[u8], id: StreamId, nack: &Nack, last: StreamId) {
        let (id, time, count, last) = (
            id.to_string(),
            nack.delivery_time.to_string(),
            nack.delivery_count.to_string(),
            last.to_string(),
        );
        self.also(&[
            b"XCLAIM",
            self.key,
            self.g,
            consumer,
            b"0",
            id.as_bytes(),
            b"TIME",
            time.as_bytes(),
            b"RETRYCOUNT",
            count.as_bytes(),
            b"FORCE",
            b"JUSTID",
            b"LASTID",
            last.as_bytes(),
        ]);
    }

    fn also(&self, args: &[&[u8]]) {
        master::also(self.db, args.iter().map(|a| a.to_vec()).collect());
    }
}

/// XREADGROUP with an explicit ID: the consumer's own pending entries
/// from `start`, each delivered again (deleted ones as `[id, nil]`).
fn reply_history(
    r: &mut Reply,
    s: &mut Stream,
    g: &[u8],
    consumer: &[u8],
    start: Option<StreamId>,
    count: usize,
    now: u64,
) {
    let c = start.and_then(|_| s.groups.get(g)?.consumers.get(consumer));
    let ids: Vec<StreamId> = match (c, start) {
        (Some(c), Some(start)) => {
            let it = c.pel.range(start..).copied();
            if count == 0 {
                it.collect()
            } else {
                it.take(count).collect()
            }
        }
        _ => Vec::new(),
    };
    r.array(ids.len());
    for id in ids {
        match s.get(id) {
            Some(e) => {
                reply_entry(r, &e);
                if let Some(n) = s.groups.get_mut(g).and_then(|grp| grp.pel.get_mut(&id)) {
                    n.delivery_time = now;
                    n.delivery_count += 1;
                }
            }
            None => {
                r.array(2);
                reply_id(r, id);
                r.null_array();
            }
        }
    }
}

/// Serves the stream waiters of a key just written, in queue order: an
/// XREAD once the stream's last ID passes the one it waits after, an
/// XREADGROUP once its group has new entries, or with an error once its
/// key or group is gone.
pub(crate) fn serve_waiters(
    stats: &crate::state::ThreadStats,
    locked: &mut Locked<'_>,
    idx: usize,
    db: usize,
    key: &[u8],
    now: u64,
) {
    let Some(shard) = locked.get(idx) else {
        return;
    };
    for (token, wr) in shard.waiters.queue(db, key) {
        let Ok(w) = wr.downcast::<Waiter>() else {
            continue;
        };
        let BlockOp::Stream(sw) = &w.op else {
            continue;
        };
        if w.is_claimed() {
            shard.waiters.remove(db, key, token);
            continue;
        }
        let outcome = match ready(shard, db, key, now, sw) {
            Ready::No => continue,
            Ready::Error(e) => Err(e),
            Ready::Yes => Ok(()),
        };
        if !w.claim() {
            continue;
        }
        shard.waiters.remove(db, key, token);
        let mut reply = Reply::new();
        reply.set_resp3(w.resp3);
        match outcome {
            Err(e) => {
                // The blocked XREADGROUP fails now: count it as Redis does.
                crate::dispatch::count_error(stats, &e);
                if let Some(x) = crate::table::lookup(b"xreadgroup") {
                    stats.commands[x.id].failed.add(1);
                }
                reply.error(&e.to_string())
            }
            Ok(()) => serve_one(shard, db, key, now, sw, &mut reply),
        }
        w.deliver(reply.as_bytes().to_vec());
    }
}

enum Ready {
    No,
    Yes,
    Error(CmdError),
}

fn ready(shard: &mut Shard, db: usize, key: &[u8], now: u64, sw: &StreamWait) -> Ready {
    let s = match shard.get_quiet(db, key, now).map(|e| e.value()) {
        Some(ValueRef::Stream(s)) => s,
        _ if sw.group.is_some() => return Ready::Error(CmdError::StreamKeyGone),
        _ => return Ready::No,
    };
    let after = match &sw.group {
        None => sw
            .ids
            .iter()
            .find(|(k, _)| k == key)
            .map_or(StreamId::MAX, |x| x.1),
        Some((g, _, _)) => match s.groups.get(g) {
            Some(grp) => grp.last_id,
            None => return Ready::Error(CmdError::BlockedGroupGone),
        },
    };
    // Only entries wake a reader (XSETID moves the last ID without any,
    // and Redis does not wake readers for it).
    if s.edge(true).is_some_and(|e| e.id > after) {
        Ready::Yes
    } else {
        Ready::No
    }
}

fn serve_one(shard: &mut Shard, db: usize, key: &[u8], now: u64, sw: &StreamWait, r: &mut Reply) {
    let Some(ValueMut::Stream(s)) = shard.get_quiet(db, key, now).map(|e| e.value_mut()) else {
        return;
    };
    if r.is_resp3() {
        r.map(1);
    } else {
        r.array(1);
    }
    match &sw.group {
        None => {
            let after = sw
                .ids
                .iter()
                .find(|(k, _)| k == key)
                .map_or(StreamId::MAX, |x| x.1);
            reply_key_entries(r, key, |r| reply_after(r, s, after, sw.count));
        }
        Some((g, c, noack)) => {
            let created = s
                .groups
                .get_mut(g)
                .is_some_and(|grp| grp.consumer(c, Some(now)).1);
            let es = deliver_new(s, g, c, *noack, sw.count, now);
            reply_key_entries(r, key, |r| reply_entries(r, &es));
            let d = Delivered {
                db,
                key,
                g,
                consumer: c,
            };
            d.propagate(s, *noack, created, &es);
            shard.stats.dirty += 1;
            if created {
                shard.notify(db, key, "xgroup-createconsumer");
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Consumer groups.

/// The stream at `key` for writing, or the XGROUP "needs the key" error.
fn group_of<'a>(s: &'a mut Stream, key: &[u8], g: &[u8]) -> CmdResult<&'a mut Group> {
    s.groups.get_mut(g).ok_or_else(|| CmdError::NoGroupForKey {
        group: g.to_vec(),
        key: key.to_vec(),
    })
}

/// XGROUP CREATE|SETID|DESTROY|CREATECONSUMER|DELCONSUMER key group ...
fn xgroup(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let sub = arg(args, 1);
    let key = arg(args, 2);
    let g = arg(args, 3);
    let mut mkstream = false;
    let mut entries_read = INVALID_ENTRIES_READ;
    let syntax = || CmdError::SubcommandSyntax {
        sub: sub.to_vec(),
        cmd: "XGROUP".into(),
    };
    let entries_read_arg = |v: &[u8]| -> CmdResult<i64> {
        let n = crate::args::int(v)?;
        if n < 0 && n != INVALID_ENTRIES_READ {
            return Err(CmdError::EntriesReadInvalid);
        }
        Ok(n)
    };
    if eq(sub, "create") {
        let mut i = 5;
        while i < args.len() {
            if eq(arg(args, i), "mkstream") {
                mkstream = true;
                i += 1;
            } else if eq(arg(args, i), "entriesread") && i + 1 < args.len() {
                entries_read = entries_read_arg(arg(args, i + 1))?;
                i += 2;
            } else {
                return Err(syntax());
            }
        }
    }
    let (db, now) = (ctx.db(), ctx.now);
    let shard = ctx.shard(key);
    let exists = typed::write::<Stream>(shard, db, key, now)?.is_some();
    if !mkstream && !exists {
        return Err(CmdError::XgroupNeedsKey);
    }
    if eq(sub, "create") {
        if args.len() > 8 {
            return Err(syntax());
        }
        let id = match arg(args, 4) {
            b"$" => {
                typed::write::<Stream>(shard, db, key, now)?.map_or(StreamId::MIN, |s| s.last_id)
            }
            other => parse_strict(other)?,
        };
        if !exists {
            shard.put(db, Entry::new(key, Value::Stream(Box::default()), 0));
        }
        let Some(s) = typed::write::<Stream>(shard, db, key, now)? else {
            return Err(CmdError::WrongType);
        };
        if s.groups.contains_key(g) {
            return Err(CmdError::BusyGroup);
        }
        s.groups.insert(g.to_vec(), Group::new(id, entries_read));
        if exists {
            shard.stats.dirty += 1;
            shard.notify(db, key, "xgroup-create");
        } else {
            shard.written(db, key, "xgroup-create");
        }
        ctx.reply.ok();
        return Ok(());
    }
    let Some(s) = typed::write::<Stream>(shard, db, key, now)? else {
        return Err(CmdError::XgroupNeedsKey);
    };
    if eq(sub, "setid") {
        if args.len() != 5 && args.len() != 7 {
            group_of(s, key, g)?;
            return Err(syntax());
        }
        let last = s.last_id;
        let grp = group_of(s, key, g)?;
        let id = match arg(args, 4) {
            b"$" => last,
            other => parse_id_full(other, 0, false, false)?.0,
        };
        if args.len() == 7 {
            if !eq(arg(args, 5), "entriesread") {
                return Err(syntax());
            }
            entries_read = entries_read_arg(arg(args, 6))?;
        }
        grp.last_id = id;
        grp.entries_read = entries_read;
        // Group changes are not key changes to WATCH (as in Redis).
        shard.stats.dirty += 1;
        shard.notify(db, key, "xgroup-setid");
        ctx.reply.ok();
    } else if eq(sub, "destroy") {
        if s.groups.remove(g).is_some() {
            shard.stats.dirty += 1;
            shard.notify(db, key, "xgroup-destroy");
            // Wakes the XREADGROUPs blocked on it, for their NOGROUP error.
            shard.waiters.mark(db, key);
            ctx.reply.int(1);
        } else {
            ctx.reply.int(0);
        }
    } else if eq(sub, "createconsumer") {
        let (_, created) = group_of(s, key, g)?.consumer(arg(args, 4), Some(now));
        if created {
            shard.stats.dirty += 1;
            shard.notify(db, key, "xgroup-createconsumer");
        }
        ctx.reply.int(i64::from(created));
    } else {
        let deleted = group_of(s, key, g)?.delete_consumer(arg(args, 4));
        shard.stats.dirty += 1;
        if deleted.is_some() {
            shard.notify(db, key, "xgroup-delconsumer");
        }
        ctx.reply.int(deleted.unwrap_or(0) as i64);
    }
    Ok(())
}

fn reply_help(r: &mut Reply, lines: &[&str]) {
    r.array(lines.len());
    for l in lines {
        r.simple(l.as_bytes());
    }
}

/// XGROUP HELP
fn xgroup_help(ctx: &mut Ctx, _args: &Args) -> CmdResult {
    reply_help(
        ctx.reply,
        &[
            "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "CREATE <key> <groupname> <id|$> [option]",
            "    Create a new consumer group. Options are:",
            "    * MKSTREAM",
            "      Create the empty stream if it does not exist.",
            "    * ENTRIESREAD entries_read",
            "      Set the group's entries_read counter (internal use).",
            "CREATECONSUMER <key> <groupname> <consumer>",
            "    Create a new consumer in the specified group.",
            "DELCONSUMER <key> <groupname> <consumer>",
            "    Remove the specified consumer.",
            "DESTROY <key> <groupname>",
            "    Remove the specified group.",
            "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
            "    Set the current group ID and entries_read counter.",
            "HELP",
            "    Prints this help.",
        ],
    );
    Ok(())
}

/// The stream and group of XACK/XPENDING/XCLAIM/XAUTOCLAIM: WRONGTYPE
/// first, then None when either is missing.
fn stream_and_group<'a>(
    shard: &'a mut Shard,
    db: usize,
    key: &[u8],
    g: &[u8],
    now: u64,
) -> CmdResult<Option<&'a mut Stream>> {
    match typed::write::<Stream>(shard, db, key, now)? {
        Some(s) if s.groups.contains_key(g) => Ok(Some(s)),
        _ => Ok(None),
    }
}

/// XACK key group id [id ...]
fn xack(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let (key, g) = (arg(args, 1), arg(args, 2));
    let (db, now) = (ctx.db(), ctx.now);
    if stream_and_group(ctx.shard(key), db, key, g, now)?.is_none() {
        ctx.reply.int(0);
        return Ok(());
    }
    let ids = args
        .iter()
        .skip(3)
        .map(parse_strict)
        .collect::<CmdResult<Vec<_>>>()?;
    let shard = ctx.shard(key);
    let mut n = 0;
    if let Some(grp) = stream_and_group(shard, db, key, g, now)?.and_then(|s| s.groups.get_mut(g)) {
        n = ids.into_iter().filter(|id| grp.ack(*id)).count();
    }
    if n > 0 {
        shard.stats.dirty += 1;
    }
    ctx.reply.int(n as i64);
    Ok(())
}

/// XPENDING key group [[IDLE min-idle-time] start end count [consumer]]
fn xpending(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let (key, g) = (arg(args, 1), arg(args, 2));
    let argc = args.len();
    if argc != 3 && !(6..=9).contains(&argc) {
        return Err(CmdError::Syntax);
    }
    let mut range = None;
    if argc >= 6 {
        let mut at = 3;
        let mut min_idle = 0i64;
        if eq(arg(args, 3), "idle") {
            min_idle = crate::args::int(arg(args, 4))?;
            if argc < 8 {
                return Err(CmdError::Syntax);
            }
            at += 2;
        }
        let count = count_arg(arg(args, at + 2))?;
        let start = range_start(arg(args, at))?;
        let end = range_end(arg(args, at + 1))?;
        let consumer = (at + 3 < argc).then(|| arg(args, at + 3));
        range = Some((min_idle, start, end, count, consumer));
    }
    let (db, now) = (ctx.db(), ctx.now);
    let (shard, reply) = ctx.shard_and_reply(key);
    let Some(grp) = stream_and_group(shard, db, key, g, now)?.and_then(|s| s.groups.get(g)) else {
        return Err(CmdError::NoGroup {
            key: key.to_vec(),
            group: g.to_vec(),
            read: false,
        });
    };
    let Some((min_idle, start, end, count, consumer)) = range else {
        reply.array(4);
        reply.int(grp.pel.len() as i64);
        match (grp.pel.keys().next(), grp.pel.keys().next_back()) {
            (Some(first), Some(last)) => {
                reply_id(reply, *first);
                reply_id(reply, *last);
                let busy: Vec<_> = grp
                    .consumers
                    .iter()
                    .filter(|(_, c)| !c.pel.is_empty())
                    .collect();
                reply.array(busy.len());
                for (name, c) in busy {
                    reply.array(2);
                    reply.bulk(name);
                    reply.bulk_int(c.pel.len() as i64);
                }
            }
            _ => {
                reply.null();
                reply.null();
                reply.null_array();
            }
        }
        return Ok(());
    };
    let ids: Vec<StreamId> = match consumer {
        Some(name) => match grp.consumers.get(name) {
            Some(c) => c.pel.range(start..).copied().collect(),
            None => {
                reply.array(0);
                return Ok(());
            }
        },
        None => grp.pel.range(start..).map(|(id, _)| *id).collect(),
    };
    let mut rows = Vec::new();
    let mut left = count;
    for id in ids {
        if left == 0 || id > end {
            break;
        }
        let Some(n) = grp.pel.get(&id) else {
            continue;
        };
        let idle = now.saturating_sub(n.delivery_time) as i64;
        if min_idle != 0 && idle < min_idle {
            continue;
        }
        left -= 1;
        rows.push((id, n.consumer.clone(), idle, n.delivery_count));
    }
    reply.array(rows.len());
    for (id, c, idle, dc) in rows {
        reply.array(4);
        reply_id(reply, id);
        reply.bulk(&c);
        reply.int(idle);
        reply.int(dc as i64);
    }
    Ok(())
}

/// XCLAIM key group consumer min-idle-time id [id ...] [IDLE ms] [TIME unix-time-ms] [RETRYCOUNT count] [FORCE] [JUSTID] [LASTID lastid]
fn xclaim(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let (key, g, consumer) = (arg(args, 1), arg(args, 2), arg(args, 3));
    let (db, now) = (ctx.db(), ctx.now);
    if stream_and_group(ctx.shard(key), db, key, g, now)?.is_none() {
        return Err(CmdError::NoGroup {
            key: key.to_vec(),
            group: g.to_vec(),
            read: false,
        });
    }
    let min_idle = parse_i64(arg(args, 4))
        .ok_or(CmdError::InvalidArgFor("min-idle-time", "XCLAIM"))?
        .max(0);
    let mut j = 5;
    let mut ids = Vec::new();
    while j < args.len() {
        match parse_strict(arg(args, j)) {
            Ok(id) => ids.push(id),
            Err(_) => break,
        }
        j += 1;
    }
    let (mut force, mut justid) = (false, false);
    let mut retry: Option<i64> = None;
    let mut delivery: Option<i64> = None;
    let mut last_id = StreamId::MIN;
    let now_i = now as i64;
    while j < args.len() {
        let more = args.len() - 1 - j;
        let opt = arg(args, j);
        if eq(opt, "force") {
            force = true;
        } else if eq(opt, "justid") {
            justid = true;
        } else if eq(opt, "idle") && more > 0 {
            j += 1;
            let v =
                parse_i64(arg(args, j)).ok_or(CmdError::InvalidArgFor("IDLE option", "XCLAIM"))?;
            delivery = Some(now_i.wrapping_sub(v));
        } else if eq(opt, "time") && more > 0 {
            j += 1;
            delivery = Some(
                parse_i64(arg(args, j)).ok_or(CmdError::InvalidArgFor("TIME option", "XCLAIM"))?,
            );
        } else if eq(opt, "retrycount") && more > 0 {
            j += 1;
            retry = Some(
                parse_i64(arg(args, j))
                    .ok_or(CmdError::InvalidArgFor("RETRYCOUNT option", "XCLAIM"))?,
            );
        } else if eq(opt, "lastid") && more > 0 {
            j += 1;
            last_id = parse_strict(arg(args, j))?;
        } else {
            return Err(CmdError::XclaimOption(opt.to_vec()));
        }
        j += 1;
    }
    let delivery = match delivery {
        Some(t) if (0..=now_i).contains(&t) => t as u64,
        _ => now,
    };
    let (shard, reply) = ctx.shard_and_reply(key);
    let Some(s) = stream_and_group(shard, db, key, g, now)? else {
        return Err(CmdError::WrongType);
    };
    let Some(mut grp) = s.groups.remove(g) else {
        return Err(CmdError::WrongType);
    };
    if last_id > grp.last_id {
        grp.last_id = last_id;
    }
    let mut out = Reply::new();
    out.set_resp3(reply.is_resp3());
    let mut n = 0;
    let mut claim = Claim {
        consumer,
        now,
        min_idle,
        justid,
        created: None,
        taken: Vec::new(),
    };
    for id in ids {
        let entry = if justid { None } else { s.get(id) };
        if !s.contains(id) {
            claim.gone(&grp, id);
            grp.ack(id);
            continue;
        }
        let fresh = match grp.pel.entry(id) {
            std::collections::btree_map::Entry::Occupied(_) => false,
            std::collections::btree_map::Entry::Vacant(_) if !force => continue,
            std::collections::btree_map::Entry::Vacant(v) => {
                // FORCE: a pending entry owned by nobody yet.
                v.insert(Nack {
                    delivery_time: now,
                    delivery_count: 1,
                    consumer: Vec::new(),
                });
                true
            }
        };
        if !claim.take(&mut grp, id, !fresh, delivery, retry) {
            continue;
        }
        n += 1;
        match (&entry, justid) {
            (_, true) => reply_id(&mut out, id),
            (Some(e), false) => reply_entry(&mut out, e),
            (None, false) => out.null(),
        }
    }
    claim.propagate(db, key, g, &grp);
    s.groups.insert(g.to_vec(), grp);
    shard.stats.dirty += 1;
    if claim.created == Some(true) {
        shard.notify(db, key, "xgroup-createconsumer");
    }
    reply.array(n);
    reply.raw(out.as_bytes());
    Ok(())
}

/// The step XCLAIM and XAUTOCLAIM share: hand pending entry `id` to the
/// consumer (created on the first claim), unless `check_idle` and it has
/// been idle less than `min_idle`; false when the entry is skipped.
struct Claim<'a> {
    consumer: &'a [u8],
    now: u64,
    min_idle: i64,
    justid: bool,
    /// Set on the first claim: whether the consumer was created by it.
    created: Option<bool>,
    /// What was claimed (None) or found deleted (its pending record as it
    /// was), in order, for replicas.
    taken: Vec<(StreamId, Option<Nack>)>,
}

impl Claim<'_> {
    fn take(
        &mut self,
        grp: &mut Group,
        id: StreamId,
        check_idle: bool,
        delivery: u64,
        retry: Option<i64>,
    ) -> bool {
        if let Some(nack) = grp.pel.get(&id) {
            let idle = self.now as i64 - nack.delivery_time as i64;
            if check_idle && self.min_idle != 0 && idle < self.min_idle {
                return false;
            }
        }
        if self.created.is_none() {
            self.created = Some(grp.consumer(self.consumer, Some(self.now)).1);
        }
        grp.reassign(id, self.consumer);
        if master::propagating() {
            self.taken.push((id, None));
        }
        if let Some(nack) = grp.pel.get_mut(&id) {
            nack.delivery_time = delivery;
            if let Some(rc) = retry.filter(|r| *r >= 0) {
                nack.delivery_count = rc as u64;
            } else if !self.justid {
                nack.delivery_count += 1;
            }
        }
        true
    }

    /// Queues the claims for replicas (XCLAIM and XAUTOCLAIM reach them as
    /// one `XCLAIM ... FORCE JUSTID` per entry, entries gone as XACK) in
    /// place of the command itself.
    fn propagate(&self, db: usize, key: &[u8], g: &[u8], grp: &Group) {
        if !master::propagating() {
            return;
        }
        let d = Delivered {
            db,
            key,
            g,
            consumer: self.consumer,
        };
        for (id, gone) in &self.taken {
            match gone {
                // Redis sends a deleted entry's old record: the replica
                // finds the entry gone too and drops it from the PEL.
                Some(nack) => d.xclaim(&nack.consumer, *id, nack, grp.last_id),
                None => {
                    if let Some(nack) = grp.pel.get(id) {
                        d.xclaim(self.consumer, *id, nack, grp.last_id);
                    }
                }
            }
        }
        master::nothing();
    }

    /// Pending entry `id` is gone from the stream: noted (for replicas)
    /// before the caller drops it from the PEL.
    fn gone(&mut self, grp: &Group, id: StreamId) {
        if master::propagating() {
            if let Some(nack) = grp.pel.get(&id) {
                self.taken.push((id, Some(nack.clone())));
            }
        }
    }
}

/// XAUTOCLAIM key group consumer min-idle-time start [COUNT count] [JUSTID]
fn xautoclaim(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let (key, g, consumer) = (arg(args, 1), arg(args, 2), arg(args, 3));
    let min_idle = parse_i64(arg(args, 4))
        .ok_or(CmdError::InvalidArgFor("min-idle-time", "XAUTOCLAIM"))?
        .max(0);
    let start = range_start(arg(args, 5))?;
    let mut count: i64 = 100;
    let mut justid = false;
    let mut j = 6;
    while j < args.len() {
        let more = args.len() - 1 - j;
        let opt = arg(args, j);
        if eq(opt, "count") && more > 0 {
            let max = i64::MAX / 16;
            count = parse_i64(arg(args, j + 1))
                .filter(|c| (1..=max).contains(c))
                .ok_or(CmdError::XautoclaimCount)?;
            j += 1;
        } else if eq(opt, "justid") {
            justid = true;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let (db, now) = (ctx.db(), ctx.now);
    if stream_and_group(ctx.shard(key), db, key, g, now)?.is_none() {
        return Err(CmdError::NoGroup {
            key: key.to_vec(),
            group: g.to_vec(),
            read: false,
        });
    }
    let (shard, reply) = ctx.shard_and_reply(key);
    let Some(s) = stream_and_group(shard, db, key, g, now)? else {
        return Err(CmdError::WrongType);
    };
    let Some(mut grp) = s.groups.remove(g) else {
        return Err(CmdError::WrongType);
    };
    let mut attempts = count.saturating_mul(10);
    let keys: Vec<StreamId> = grp.pel.range(start..).map(|(k, _)| *k).collect();
    let mut at = 0;
    let mut claimed = Reply::new();
    claimed.set_resp3(reply.is_resp3());
    let mut n = 0;
    let mut deleted = Vec::new();
    let mut claim = Claim {
        consumer,
        now,
        min_idle,
        justid,
        created: None,
        taken: Vec::new(),
    };
    while attempts > 0 {
        attempts -= 1;
        if count == 0 || at >= keys.len() {
            break;
        }
        let id = keys[at];
        at += 1;
        if !s.contains(id) {
            claim.gone(&grp, id);
            grp.ack(id);
            deleted.push(id);
            count -= 1;
            continue;
        }
        if !claim.take(&mut grp, id, true, now, None) {
            continue;
        }
        if justid {
            reply_id(&mut claimed, id);
        } else {
            match s.get(id) {
                Some(e) => reply_entry(&mut claimed, &e),
                None => claimed.null(),
            }
        }
        n += 1;
        count -= 1;
    }
    let cursor = keys.get(at).copied().unwrap_or(StreamId::MIN);
    claim.propagate(db, key, g, &grp);
    s.groups.insert(g.to_vec(), grp);
    shard.stats.dirty += 1;
    if claim.created == Some(true) {
        shard.notify(db, key, "xgroup-createconsumer");
    }
    reply.array(3);
    reply_id(reply, cursor);
    reply.array(n);
    reply.raw(claimed.as_bytes());
    reply.array(deleted.len());
    for id in deleted {
        reply_id(reply, id);
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// XINFO.

/// XINFO HELP
fn xinfo_help(ctx: &mut Ctx, _args: &Args) -> CmdResult {
    reply_help(
        ctx.reply,
        &[
            "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "CONSUMERS <key> <groupname>",
            "    Show consumers of <groupname>.",
            "GROUPS <key>",
            "    Show the stream consumer groups.",
            "STREAM <key> [FULL [COUNT <count>]",
            "    Show information about the stream.",
            "HELP",
            "    Prints this help.",
        ],
    );
    Ok(())
}

fn xinfo_read<'a>(ctx: &'a mut Ctx, key: &[u8]) -> CmdResult<(&'a Stream, &'a mut Reply, u64)> {
    let (db, now) = (ctx.db(), ctx.now);
    let (shard, reply) = ctx.shard_and_reply(key);
    match typed::read::<Stream>(shard, db, key, now)? {
        Some(s) => Ok((s, reply, now)),
        None => Err(CmdError::NoSuchKey),
    }
}

fn reply_lag(r: &mut Reply, s: &Stream, g: &Group) {
    if g.entries_read == INVALID_ENTRIES_READ {
        r.null();
    } else {
        r.int(g.entries_read);
    }
    r.bulk(b"lag");
    match s.lag(g) {
        Some(l) => r.int(l),
        None => r.null(),
    }
}

/// XINFO GROUPS key
fn xinfo_groups(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let (s, r, _) = xinfo_read(ctx, arg(args, 2))?;
    r.array(s.groups.len());
    for (name, g) in &s.groups {
        r.map(6);
        r.bulk(b"name");
        r.bulk(name);
        r.bulk(b"consumers");
        r.int(g.consumers.len() as i64);
        r.bulk(b"pending");
        r.int(g.pel.len() as i64);
        r.bulk(b"last-delivered-id");
        reply_id(r, g.last_id);
        r.bulk(b"entries-read");
        reply_lag(r, s, g);
    }
    Ok(())
}

/// XINFO CONSUMERS key group
fn xinfo_consumers(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let (key, gname) = (arg(args, 2), arg(args, 3));
    let (s, r, now) = xinfo_read(ctx, key)?;
    let Some(g) = s.groups.get(gname) else {
        return Err(CmdError::NoGroupForKey {
            group: gname.to_vec(),
            key: key.to_vec(),
        });
    };
    r.array(g.consumers.len());
    for (name, c) in &g.consumers {
        r.map(3);
        r.bulk(b"name");
        r.bulk(name);
        r.bulk(b"pending");
        r.int(c.pel.len() as i64);
        r.bulk(b"idle");
        r.int(now.saturating_sub(c.seen_time) as i64);
    }
    Ok(())
}

/// XINFO STREAM key [FULL [COUNT count]]
fn xinfo_stream(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let key = arg(args, 2);
    let mut full = None;
    let syntax = || CmdError::SubcommandSyntax {
        sub: arg(args, 1).to_vec(),
        cmd: "XINFO".into(),
    };
    if args.len() > 3 {
        if !eq(arg(args, 3), "full") {
            return Err(syntax());
        }
        let mut count = 10u64;
        if args.len() > 4 {
            if args.len() != 6 || !eq(arg(args, 4), "count") {
                return Err(syntax());
            }
            count = count_arg(arg(args, 5))?;
        }
        full = Some(usize::try_from(count).unwrap_or(usize::MAX));
    }
    let (s, r, _) = xinfo_read(ctx, key)?;
    r.map(if full.is_some() { 9 } else { 10 });
    r.bulk(b"length");
    r.int(s.len() as i64);
    r.bulk(b"radix-tree-keys");
    r.int(s.node_count() as i64);
    r.bulk(b"radix-tree-nodes");
    r.int(s.rax_nodes() as i64);
    r.bulk(b"last-generated-id");
    reply_id(r, s.last_id);
    r.bulk(b"max-deleted-entry-id");
    reply_id(r, s.max_deleted);
    r.bulk(b"entries-added");
    r.int(s.entries_added as i64);
    r.bulk(b"recorded-first-entry-id");
    reply_id(r, s.first_id);
    let Some(count) = full else {
        r.bulk(b"groups");
        r.int(s.groups.len() as i64);
        for (name, last) in [(&b"first-entry"[..], false), (b"last-entry", true)] {
            r.bulk(name);
            match s.edge(last) {
                Some(e) => reply_entry(r, &e),
                None => r.null(),
            }
        }
        return Ok(());
    };
    let take = |n: usize| if count == 0 { n } else { n.min(count) };
    r.bulk(b"entries");
    reply_range(r, s, StreamId::MIN, StreamId::MAX, false, count);
    r.bulk(b"groups");
    r.array(s.groups.len());
    for (name, g) in &s.groups {
        r.map(7);
        r.bulk(b"name");
        r.bulk(name);
        r.bulk(b"last-delivered-id");
        reply_id(r, g.last_id);
        r.bulk(b"entries-read");
        reply_lag(r, s, g);
        r.bulk(b"pel-count");
        r.int(g.pel.len() as i64);
        r.bulk(b"pending");
        r.array(take(g.pel.len()));
        for (id, n) in g.pel.iter().take(take(g.pel.len())) {
            r.array(4);
            reply_id(r, *id);
            r.bulk(&n.consumer);
            r.int(n.delivery_time as i64);
            r.int(n.delivery_count as i64);
        }
        r.bulk(b"consumers");
        r.array(g.consumers.len());
        for (cname, c) in &g.consumers {
            r.map(4);
            r.bulk(b"name");
            r.bulk(cname);
            r.bulk(b"seen-time");
            r.int(c.seen_time as i64);
            r.bulk(b"pel-count");
            r.int(c.pel.len() as i64);
            r.bulk(b"pending");
            r.array(take(c.pel.len()));
            for id in c.pel.iter().take(take(c.pel.len())) {
                let n = g.pel.get(id);
                r.array(3);
                reply_id(r, *id);
                r.int(n.map_or(0, |n| n.delivery_time as i64));
                r.int(n.map_or(0, |n| n.delivery_count as i64));
            }
        }
    }
    Ok(())
}
