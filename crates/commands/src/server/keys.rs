//! Key specs (Redis 7's description of where a command's keys are, with
//! their access flags), as data learnt from Redis 7.0.15 (`keyspecs.rs`).
//! COMMAND INFO prints them, COMMAND GETKEYSANDFLAGS takes each key's flags
//! from the spec that finds it, and the `movablekeys` flag follows from them
//! as in Redis: a command is movable when a spec is not "the key at a fixed
//! index".
//!
//! Locking and COMMAND GETKEYS still use the table row's `Keys`, which the
//! tests check against Redis's GETKEYS replies.

use super::keyspecs::KEY_SPECS;
use damselfly_protocol::Reply;

/// Where the search for a spec's keys starts.
pub(super) enum Begin {
    Index(i64),
    /// After `keyword`, searched from `startfrom` (negative: backwards from
    /// the end).
    Keyword(&'static str, i64),
    Unknown,
}

/// How the keys are found from there.
pub(super) enum Find {
    /// lastkey, keystep, limit
    Range(i64, i64, i64),
    /// keynumidx, firstkey, keystep
    KeyNum(i64, i64, i64),
    Unknown,
}

pub(super) struct Spec {
    pub notes: Option<&'static str>,
    pub flags: &'static [&'static str],
    pub begin: Begin,
    pub find: Find,
}

/// The key specs of `fullname` (`get`, `memory|usage`); none for a command
/// without keys.
pub(super) fn specs(fullname: &str) -> &'static [Spec] {
    KEY_SPECS
        .binary_search_by(|(n, _)| (*n).cmp(fullname))
        .map_or(&[], |i| KEY_SPECS[i].1)
}

/// Redis's rule for the `movablekeys` flag.
pub fn movable(fullname: &str) -> bool {
    specs(fullname)
        .iter()
        .any(|s| !matches!((&s.begin, &s.find), (Begin::Index(_), Find::Range(..))))
}

/// The key-specs element of a COMMAND INFO entry.
pub(super) fn reply_specs(r: &mut Reply, fullname: &str) {
    let specs = specs(fullname);
    r.set(specs.len());
    for s in specs {
        r.map(3 + usize::from(s.notes.is_some()));
        if let Some(n) = s.notes {
            r.bulk(b"notes");
            r.bulk(n.as_bytes());
        }
        r.bulk(b"flags");
        r.set(s.flags.len());
        for f in s.flags {
            r.simple(f.as_bytes());
        }
        r.bulk(b"begin_search");
        r.map(2);
        r.bulk(b"type");
        match s.begin {
            Begin::Index(i) => {
                r.bulk(b"index");
                r.bulk(b"spec");
                r.map(1);
                r.bulk(b"index");
                r.int(i);
            }
            Begin::Keyword(k, from) => {
                r.bulk(b"keyword");
                r.bulk(b"spec");
                r.map(2);
                r.bulk(b"keyword");
                r.bulk(k.as_bytes());
                r.bulk(b"startfrom");
                r.int(from);
            }
            Begin::Unknown => {
                r.bulk(b"unknown");
                r.bulk(b"spec");
                r.map(0);
            }
        }
        r.bulk(b"find_keys");
        r.map(2);
        r.bulk(b"type");
        let fields: [(&[u8], i64); 3] = match s.find {
            Find::Range(last, step, limit) => {
                r.bulk(b"range");
                [(b"lastkey", last), (b"keystep", step), (b"limit", limit)]
            }
            Find::KeyNum(idx, first, step) => {
                r.bulk(b"keynum");
                [
                    (b"keynumidx", idx),
                    (b"firstkey", first),
                    (b"keystep", step),
                ]
            }
            Find::Unknown => {
                r.bulk(b"unknown");
                r.bulk(b"spec");
                r.map(0);
                continue;
            }
        };
        r.bulk(b"spec");
        r.map(3);
        for (name, v) in fields {
            r.bulk(name);
            r.int(v);
        }
    }
}

/// The argument positions a spec finds in `args` (the whole command).
fn found_by(s: &Spec, args: &[&[u8]]) -> Vec<usize> {
    let argc = args.len() as i64;
    let first = match s.begin {
        Begin::Index(i) => i,
        Begin::Keyword(k, from) => {
            let hit = |i: &i64| args[*i as usize].eq_ignore_ascii_case(k.as_bytes());
            let found = if from >= 0 {
                (from..argc).find(hit)
            } else {
                (1..=argc + from).rev().find(hit)
            };
            match found {
                Some(i) => i + 1,
                None => return Vec::new(),
            }
        }
        Begin::Unknown => return Vec::new(),
    };
    let (first, last, step) = match s.find {
        Find::Range(last, step, limit) => {
            let last = if last >= 0 {
                first + last
            } else if limit <= 1 {
                argc + last
            } else {
                first + (argc - first) / limit + last
            };
            (first, last, step)
        }
        Find::KeyNum(idx, firstkey, step) => {
            let n = args
                .get((first + idx) as usize)
                .and_then(|a| crate::args::parse_i64(a))
                .unwrap_or(0);
            let from = first + firstkey;
            (from, from + (n - 1) * step, step)
        }
        Find::Unknown => return Vec::new(),
    };
    if first < 1 || step < 1 || last >= argc {
        return Vec::new();
    }
    (first..=last)
        .step_by(step as usize)
        .map(|i| i as usize)
        .collect()
}

/// The flags of a `variable_flags` spec for these arguments: SET without
/// GET only overwrites; BITFIELD without SET or INCRBY only reads; else
/// read-write (the spec's flags without `variable_flags`).
fn variable_flags(fullname: &str, args: &[&[u8]]) -> Option<&'static [&'static str]> {
    const RW: &[&str] = &["RW", "access", "update"];
    let is = |a: &[u8], w: &str| a.eq_ignore_ascii_case(w.as_bytes());
    match fullname {
        "set" if args.iter().skip(3).any(|a| is(a, "get")) => Some(RW),
        "set" => Some(&["OW", "update"]),
        "bitfield" => {
            let mut i = 2;
            while i < args.len() {
                let left = args.len() - i - 1;
                let a = args[i];
                if is(a, "get") && left >= 2 {
                    i += 2;
                } else if (is(a, "set") || is(a, "incrby")) && left >= 3 {
                    return Some(RW);
                } else if is(a, "overflow") && left >= 1 {
                    i += 1;
                }
                i += 1;
            }
            Some(&["RO", "access"])
        }
        _ => None,
    }
}

/// The access flags of the key at argument `pos`: those of the first spec
/// that finds it there, else of the last spec Redis cannot describe (SORT's
/// STORE), else of the first spec.
pub(super) fn flags_at(fullname: &str, args: &[&[u8]], pos: usize) -> &'static [&'static str] {
    if let Some(f) = variable_flags(fullname, args) {
        return f;
    }
    let specs = specs(fullname);
    specs
        .iter()
        .find(|s| found_by(s, args).contains(&pos))
        .or_else(|| {
            specs
                .iter()
                .rev()
                .find(|s| matches!(s.begin, Begin::Unknown))
        })
        .or_else(|| specs.first())
        .map_or(&[], |s| s.flags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_are_sorted_for_binary_search() {
        assert!(KEY_SPECS.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn flags_follow_the_spec_that_finds_the_key() {
        let args: Vec<&[u8]> = vec![b"zunionstore", b"d", b"2", b"a", b"b"];
        assert_eq!(flags_at("zunionstore", &args, 1), &["OW", "update"]);
        assert_eq!(flags_at("zunionstore", &args, 4), &["RO", "access"]);
        let args: Vec<&[u8]> = vec![b"sort", b"k", b"store", b"d"];
        assert_eq!(flags_at("sort", &args, 3), &["OW", "update"]);
        assert!(movable("sort") && movable("zunionstore") && !movable("get"));
    }
}
