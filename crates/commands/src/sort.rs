//! SORT and SORT_RO.
//!
//! Both carry the `all_shards` flag: BY and GET name keys built from the
//! sorted elements, and STORE writes a destination found anywhere in the
//! arguments, so every shard is held for the whole command.

use crate::args::{eq, int, parse_sort_weight};
use crate::cmd;
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::table::{
    Command,
    Keys::{Range, SortStore},
};
use damselfly_core::list::{End, List};
use damselfly_protocol::Args;
use damselfly_storage::{Entry, Value, ValueRef};
use std::cmp::Ordering;

pub(crate) static COMMANDS: &[Command] = &[
    cmd!(
        "sort",
        -2,
        "write denyoom all_shards",
        SortStore,
        "@write @set @sortedset @list @slow @dangerous",
        "generic",
        "1.0.0",
        sort
    ),
    cmd!(
        "sort_ro",
        -2,
        "readonly movablekeys all_shards",
        Range(1, 1, 1),
        "@read @set @sortedset @list @slow @dangerous",
        "generic",
        "7.0.0",
        sort_ro
    ),
];

/// SORT key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC]
/// [ALPHA] [STORE destination]
fn sort(ctx: &mut Ctx, args: &Args) -> CmdResult {
    run(ctx, args, false)
}

/// SORT_RO key [BY pattern] [LIMIT offset count] [GET pattern ...]
/// [ASC|DESC] [ALPHA]
fn sort_ro(ctx: &mut Ctx, args: &Args) -> CmdResult {
    run(ctx, args, true)
}

struct Options<'a> {
    by: Option<&'a [u8]>,
    dontsort: bool,
    gets: Vec<&'a [u8]>,
    desc: bool,
    alpha: bool,
    offset: i64,
    count: i64,
    store: Option<&'a [u8]>,
}

/// `full_key_access`: the user may read every key (BY and GET patterns
/// read keys no key spec names, so ACL needs that).
fn parse<'a>(args: &Args<'a>, readonly: bool, full_key_access: bool) -> CmdResult<Options<'a>> {
    let mut o = Options {
        by: None,
        dontsort: false,
        gets: Vec::new(),
        desc: false,
        alpha: false,
        offset: 0,
        count: -1,
        store: None,
    };
    let argc = args.len();
    let mut j = 2;
    while j < argc {
        let a = args.get(j).unwrap_or_default();
        let left = argc - j - 1;
        if eq(a, "asc") {
            o.desc = false;
        } else if eq(a, "desc") {
            o.desc = true;
        } else if eq(a, "alpha") {
            o.alpha = true;
        } else if eq(a, "limit") && left >= 2 {
            o.offset = int(args.get(j + 1).unwrap_or_default())?;
            o.count = int(args.get(j + 2).unwrap_or_default())?;
            j += 2;
        } else if eq(a, "store") && left >= 1 && !readonly {
            o.store = args.get(j + 1);
            j += 1;
        } else if eq(a, "by") && left >= 1 {
            let p = args.get(j + 1).unwrap_or_default();
            o.dontsort = !p.contains(&b'*');
            if !o.dontsort && !full_key_access {
                return Err(CmdError::SortDenied("BY"));
            }
            o.by = Some(p);
            j += 1;
        } else if eq(a, "get") && left >= 1 {
            if !full_key_access {
                return Err(CmdError::SortDenied("GET"));
            }
            o.gets.push(args.get(j + 1).unwrap_or_default());
            j += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    Ok(o)
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    List,
    Set,
    ZSet,
}

/// The value `pattern` names for `elem`: `#` is the element itself, the
/// first `*` is replaced by it, and a non-empty `->field` after that star
/// reads a hash field. Missing keys, fields and wrong types give None.
fn lookup(ctx: &mut Ctx, pattern: &[u8], elem: &[u8]) -> Option<Vec<u8>> {
    if pattern == b"#" {
        return Some(elem.to_vec());
    }
    let star = pattern.iter().position(|&c| c == b'*')?;
    let after = &pattern[star + 1..];
    let (postfix, field) = match after.windows(2).position(|w| w == b"->") {
        Some(f) if f + 2 < after.len() => (&after[..f], Some(&after[f + 2..])),
        _ => (after, None),
    };
    let mut key = Vec::with_capacity(pattern.len() + elem.len());
    key.extend_from_slice(&pattern[..star]);
    key.extend_from_slice(elem);
    key.extend_from_slice(postfix);
    let (db, now) = (ctx.db(), ctx.now);
    let e = ctx.shard(&key).get(db, &key, now)?;
    match field {
        Some(f) => match e.value() {
            ValueRef::Hash(h) => h.get(f).map(<[u8]>::to_vec),
            _ => None,
        },
        None => e
            .value()
            .is_string()
            .then(|| e.value().string_bytes().into_owned()),
    }
}

enum Weight {
    None,
    Score(f64),
    Text(Option<Vec<u8>>),
}

fn run(ctx: &mut Ctx, args: &Args, readonly: bool) -> CmdResult {
    let full = ctx
        .client
        .user
        .unrestricted
        .load(std::sync::atomic::Ordering::Relaxed)
        || crate::acl::reads_all_keys(&ctx.client.user);
    let mut o = parse(args, readonly, full)?;
    let key = args.get(1).unwrap_or_default();
    let (db, now) = (ctx.db(), ctx.now);

    // Load the elements: lists in order, sets in iteration order, sorted
    // sets by rank. Without sorting, lists and sorted sets read backwards
    // for DESC.
    let (kind, mut elems): (Kind, Vec<Vec<u8>>) = match ctx.shard(key).get(db, key, now) {
        None => (Kind::List, Vec::new()),
        Some(e) => match e.value() {
            ValueRef::List(l) => (Kind::List, l.iter().map(<[u8]>::to_vec).collect()),
            ValueRef::Set(s) => (Kind::Set, s.iter().map(|m| m.to_vec()).collect()),
            ValueRef::ZSet(z) => {
                let mut v = Vec::with_capacity(z.len());
                z.range(0, z.len(), false, |m, _| v.push(m.to_vec()));
                (Kind::ZSet, v)
            }
            _ => return Err(CmdError::WrongType),
        },
    };

    // A set has no order of its own: stored (replicated) results, and
    // results given to a script, are made deterministic by sorting the
    // elements themselves.
    if o.dontsort && kind == Kind::Set && (o.store.is_some() || ctx.client.in_script) {
        o.dontsort = false;
        o.alpha = true;
        o.by = None;
    }

    let len = elems.len() as i64;
    let mut start = o.offset.max(0);
    let mut end = if o.count < 0 {
        len - 1
    } else {
        start.saturating_add(o.count).saturating_sub(1)
    };
    if start >= len {
        start = len - 1;
        end = len - 2;
    }
    if end >= len {
        end = len - 1;
    }

    if o.dontsort {
        if o.desc && kind != Kind::Set {
            elems.reverse();
        }
    } else {
        let mut weights: Vec<Weight> = Vec::with_capacity(elems.len());
        let mut bad = false;
        for e in &elems {
            let w = if o.alpha {
                match o.by {
                    Some(p) => Weight::Text(lookup(ctx, p, e)),
                    None => Weight::None,
                }
            } else {
                let v = match o.by {
                    Some(p) => lookup(ctx, p, e),
                    None => Some(e.clone()),
                };
                match v {
                    None => Weight::Score(0.0),
                    Some(v) => match parse_sort_weight(&v) {
                        Some(f) => Weight::Score(f),
                        None => {
                            bad = true;
                            Weight::Score(0.0)
                        }
                    },
                }
            };
            weights.push(w);
        }
        if bad {
            return Err(CmdError::SortNotDouble);
        }
        let mut pairs: Vec<(Vec<u8>, Weight)> = elems.into_iter().zip(weights).collect();
        let desc = o.desc;
        pairs.sort_by(|(e1, w1), (e2, w2)| {
            let c = match (w1, w2) {
                (Weight::Score(a), Weight::Score(b)) => a
                    .partial_cmp(b)
                    .unwrap_or(Ordering::Equal)
                    .then_with(|| e1.cmp(e2)),
                (Weight::Text(a), Weight::Text(b)) => a.cmp(b),
                _ => e1.cmp(e2),
            };
            if desc {
                c.reverse()
            } else {
                c
            }
        });
        elems = pairs.into_iter().map(|(e, _)| e).collect();
    }

    let picked: &[Vec<u8>] = if end >= start && start >= 0 {
        &elems[start as usize..=end as usize]
    } else {
        &[]
    };

    match o.store {
        None => {
            ctx.reply.array(picked.len() * o.gets.len().max(1));
            for e in picked {
                if o.gets.is_empty() {
                    ctx.reply.bulk(e);
                }
                for g in &o.gets {
                    match lookup(ctx, g, e) {
                        Some(v) => ctx.reply.bulk(&v),
                        None => ctx.reply.null(),
                    }
                }
            }
        }
        Some(dst) => {
            let mut list = List::with_fill(crate::list::list_fill(ctx));
            for e in picked {
                if o.gets.is_empty() {
                    list.push(End::Tail, e);
                }
                for g in &o.gets {
                    let v = lookup(ctx, g, e).unwrap_or_default();
                    list.push(End::Tail, &v);
                }
            }
            let n = list.len();
            let shard = ctx.shard(dst);
            if n > 0 {
                shard.put(db, Entry::new(dst, Value::List(Box::new(list)), 0));
                shard.written(db, dst, "sortstore");
            } else if shard.contains(db, dst, now) {
                shard.remove(db, dst);
                shard.written(db, dst, "del");
            }
            ctx.reply.int(n as i64);
        }
    }
    Ok(())
}
