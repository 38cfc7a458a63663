//! COMMAND and its subcommands, generated from the command table.
//!
//! Key specs are Redis's own data (`keys.rs`). Simplified against Redis:
//! COMMAND DOCS gives only `since`, `group` and subcommands (the table
//! holds no summaries or argument trees).

use crate::args::{eq, lossy};
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::table::{flag, lookup, table, Entry, Keys};
use damselfly_core::glob::glob_match;
use damselfly_protocol::{Args, Reply};

/// Top-level entries, in table order.
fn top_level() -> impl Iterator<Item = &'static Entry> {
    table()
        .all
        .iter()
        .copied()
        .filter(|e| !e.fullname.contains('|'))
}

/// Every entry, each command followed by its subcommands.
fn with_subcommands() -> Vec<&'static Entry> {
    let mut out = Vec::new();
    for e in top_level() {
        out.push(e);
        for s in e.cmd.subcommands {
            if let Some(se) = e.sub(s.name.as_bytes()) {
                out.push(se);
            }
        }
    }
    out
}

/// Flag names as COMMAND INFO prints them (the sentinel flags are not shown).
/// `movablekeys` is derived from the key spec, as Redis derives it;
/// `may_replicate` is hidden, as Redis hides it.
fn flag_names(e: &Entry) -> Vec<&'static str> {
    let movable = if e.cmd.keys.movable() {
        flag::MOVABLE_KEYS
    } else {
        0
    };
    let flags = e.flags | movable;
    flag::NAMES
        .iter()
        .filter(|(b, _)| {
            flags & b != 0
                && *b != flag::SENTINEL
                && *b != flag::ONLY_SENTINEL
                && *b != flag::MAY_REPLICATE
        })
        .map(|(_, n)| *n)
        .collect()
}

fn acl_categories(e: &Entry) -> Vec<&'static str> {
    e.cmd.acl.split_whitespace().collect()
}

fn lookup_data(
    data: &'static [(&'static str, &'static [&'static str])],
    name: &str,
) -> Option<&'static [&'static str]> {
    data.binary_search_by(|(n, _)| (*n).cmp(name))
        .ok()
        .map(|i| data[i].1)
}

/// The access flags of a command's keys: Redis's when it has a single key
/// spec, else a guess from the command's flags.
pub(crate) fn key_flags(e: &Entry) -> &'static [&'static str] {
    match super::keys::specs(&e.fullname) {
        [one] => one.flags,
        _ if e.has(flag::WRITE) => &["RW", "update"],
        _ => &["RO", "access"],
    }
}

fn tips(e: &Entry) -> &'static [&'static str] {
    lookup_data(super::tips::TIPS, &e.fullname).unwrap_or(&[])
}

fn range(e: &Entry) -> (i32, i32, i32) {
    e.cmd.keys.legacy_range()
}

/// One COMMAND INFO entry: the 10-element array.
fn reply_info(r: &mut Reply, e: &Entry) {
    r.array(10);
    r.bulk(e.fullname.as_bytes());
    r.int(e.cmd.arity as i64);
    let flags = flag_names(e);
    r.set(flags.len());
    for f in flags {
        r.simple(f.as_bytes());
    }
    let (first, last, step) = range(e);
    r.int(first as i64);
    r.int(last as i64);
    r.int(step as i64);
    let acl = acl_categories(e);
    r.set(acl.len());
    for c in acl {
        r.simple(c.as_bytes());
    }
    let tips = tips(e);
    r.set(tips.len());
    for t in tips {
        r.bulk(t.as_bytes());
    }
    super::keys::reply_specs(r, &e.fullname);
    reply_subcommands(r, e, reply_info);
}

fn reply_subcommands(r: &mut Reply, e: &Entry, each: fn(&mut Reply, &Entry)) {
    if e.cmd.subcommands.is_empty() {
        r.set(0);
        return;
    }
    r.array(e.cmd.subcommands.len());
    for s in e.cmd.subcommands {
        if let Some(se) = e.sub(s.name.as_bytes()) {
            each(r, se);
        }
    }
}

/// COMMAND (no subcommand): every command's INFO.
pub(super) fn command_all(ctx: &mut Ctx, _args: &Args) -> CmdResult {
    let all: Vec<_> = top_level().collect();
    ctx.reply.array(all.len());
    for e in all {
        reply_info(ctx.reply, e);
    }
    Ok(())
}

/// COMMAND COUNT
pub(super) fn count(ctx: &mut Ctx, _args: &Args) -> CmdResult {
    ctx.reply.int(top_level().count() as i64);
    Ok(())
}

/// Finds `name` or `container|sub`.
fn find(name: &[u8]) -> Option<&'static Entry> {
    match name.iter().position(|&b| b == b'|') {
        None => lookup(name),
        Some(i) => lookup(&name[..i])?.sub(&name[i + 1..]),
    }
}

/// COMMAND INFO [command-name ...]
pub(super) fn info(ctx: &mut Ctx, args: &Args) -> CmdResult {
    if args.len() == 2 {
        return command_all(ctx, args);
    }
    ctx.reply.array(args.len() - 2);
    for name in args.iter().skip(2) {
        match find(name) {
            Some(e) => reply_info(ctx.reply, e),
            None => ctx.reply.null(),
        }
    }
    Ok(())
}

fn reply_docs(r: &mut Reply, e: &Entry) {
    let subs = !e.cmd.subcommands.is_empty();
    r.map(2 + usize::from(subs));
    r.bulk(b"since");
    r.bulk(e.cmd.since.as_bytes());
    r.bulk(b"group");
    r.bulk(e.cmd.group.as_bytes());
    if subs {
        r.bulk(b"subcommands");
        r.map(e.cmd.subcommands.len());
        for s in e.cmd.subcommands {
            if let Some(se) = e.sub(s.name.as_bytes()) {
                r.bulk(se.fullname.as_bytes());
                reply_docs(r, se);
            }
        }
    }
}

/// COMMAND DOCS [command-name ...]
pub(super) fn docs(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let found: Vec<&Entry> = if args.len() == 2 {
        top_level().collect()
    } else {
        args.iter().skip(2).filter_map(find).collect()
    };
    ctx.reply.map(found.len());
    for e in found {
        ctx.reply.bulk(e.fullname.as_bytes());
        reply_docs(ctx.reply, e);
    }
    Ok(())
}

/// COMMAND LIST [FILTERBY MODULE name | ACLCAT category | PATTERN pattern]
pub(super) fn list(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let all = with_subcommands();
    let chosen: Vec<&Entry> = match args.len() {
        2 => all,
        5 if eq(args.get(2).unwrap_or_default(), "filterby") => {
            let kind = args.get(3).unwrap_or_default();
            let v = args.get(4).unwrap_or_default();
            if eq(kind, "module") {
                Vec::new()
            } else if eq(kind, "aclcat") {
                let cat = lossy(v);
                all.into_iter()
                    .filter(|e| {
                        acl_categories(e)
                            .iter()
                            .any(|c| c[1..].eq_ignore_ascii_case(&cat))
                    })
                    .collect()
            } else if eq(kind, "pattern") {
                all.into_iter()
                    .filter(|e| glob_match(v, e.fullname.as_bytes(), true))
                    .collect()
            } else {
                return Err(CmdError::Syntax);
            }
        }
        _ => return Err(CmdError::Syntax),
    };
    ctx.reply.array(chosen.len());
    for e in chosen {
        ctx.reply.bulk(e.fullname.as_bytes());
    }
    Ok(())
}

/// The entry and key positions of the command in `args[2..]`.
fn keys_of(args: &Args) -> CmdResult<(&'static Entry, Vec<usize>)> {
    let inner: Vec<&[u8]> = args.iter().skip(2).collect();
    let mut e = lookup(inner[0]).ok_or_else(invalid_command)?;
    if !e.subs.is_empty() && inner.len() >= 2 {
        e = e.sub(inner[1]).ok_or_else(invalid_command)?;
    }
    let argc = inner.len() as i32;
    let arity = e.cmd.arity;
    if (arity > 0 && argc != arity) || argc < -arity {
        return Err(CmdError::Other(
            "ERR Invalid number of arguments specified for command".into(),
        ));
    }
    if matches!(e.cmd.keys, Keys::None) {
        return Err(CmdError::Other(
            "ERR The command has no key arguments".into(),
        ));
    }
    // A numkeys count must name at least one key, all of them present;
    // otherwise the command has no keys here.
    let bad_count = match e.cmd.keys {
        Keys::NumKeys { numkeys, .. } => {
            let room = inner.len().saturating_sub(numkeys + 1) as i64;
            let n = inner.get(numkeys).and_then(|a| crate::args::parse_i64(a));
            !n.is_some_and(|n| (1..=room).contains(&n))
        }
        _ => false,
    };
    let pos: Vec<usize> = if bad_count {
        Vec::new()
    } else {
        e.key_positions(inner.len(), |i| inner.get(i).copied())
            .into_iter()
            .map(|i| i + 2)
            .collect()
    };
    // Redis: no keys is an error, unless the command's keys are optional
    // (EVAL, FCALL), which answer an empty list.
    if pos.is_empty() && !e.has(flag::NO_MANDATORY_KEYS) {
        return Err(CmdError::Other(
            "ERR Invalid arguments specified for command".into(),
        ));
    }
    Ok((e, pos))
}

fn invalid_command() -> CmdError {
    CmdError::Other("ERR Invalid command specified".into())
}

/// COMMAND GETKEYS command [arg ...]
pub(super) fn getkeys(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let (_, pos) = keys_of(args)?;
    ctx.reply.array(pos.len());
    for i in pos {
        ctx.reply.bulk(args.get(i).unwrap_or_default());
    }
    Ok(())
}

/// COMMAND GETKEYSANDFLAGS command [arg ...]
pub(super) fn getkeysandflags(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let (e, pos) = keys_of(args)?;
    let inner: Vec<&[u8]> = args.iter().skip(2).collect();
    ctx.reply.array(pos.len());
    for i in pos {
        let kf = super::keys::flags_at(&e.fullname, &inner, i - 2);
        ctx.reply.array(2);
        ctx.reply.bulk(args.get(i).unwrap_or_default());
        ctx.reply.set(kf.len());
        for f in kf {
            ctx.reply.simple(f.as_bytes());
        }
    }
    Ok(())
}

/// COMMAND HELP
pub(super) fn help(ctx: &mut Ctx, _args: &Args) -> CmdResult {
    super::reply_help(
        ctx,
        "COMMAND",
        &[
            "(no subcommand)",
            "    Return details about all Redis commands.",
            "COUNT",
            "    Return the total number of commands in this Redis server.",
            "LIST",
            "    Return a list of all commands in this Redis server.",
            "INFO [<command-name> ...]",
            "    Return details about multiple Redis commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
            "DOCS [<command-name> ...]",
            "    Return documentation details about multiple Redis commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
            "GETKEYS <full-command>",
            "    Return the keys from a full Redis command.",
            "GETKEYSANDFLAGS <full-command>",
            "    Return the keys and the access flags from a full Redis command.",
        ],
    );
    Ok(())
}
