//! The command table: one row of data per command, which drives lookup,
//! arity checks, key extraction (hence locking), COMMAND and INFO
//! commandstats. Each group module contributes its rows.

use crate::ctx::Ctx;
use crate::error::CmdResult;
use damselfly_protocol::Args;
use std::collections::HashMap;
use std::sync::OnceLock;

pub type Handler = fn(&mut Ctx<'_, '_>, &Args<'_>) -> CmdResult;

/// Flag bits, parsed from the row's flag words.
pub mod flag {
    pub const WRITE: u32 = 1;
    pub const READONLY: u32 = 1 << 1;
    pub const DENYOOM: u32 = 1 << 2;
    pub const ADMIN: u32 = 1 << 3;
    pub const PUBSUB: u32 = 1 << 4;
    pub const NOSCRIPT: u32 = 1 << 5;
    pub const BLOCKING: u32 = 1 << 6;
    pub const LOADING: u32 = 1 << 7;
    pub const STALE: u32 = 1 << 8;
    pub const SKIP_MONITOR: u32 = 1 << 9;
    pub const SKIP_SLOWLOG: u32 = 1 << 10;
    pub const FAST: u32 = 1 << 11;
    pub const NO_AUTH: u32 = 1 << 12;
    pub const MAY_REPLICATE: u32 = 1 << 13;
    pub const NO_MANDATORY_KEYS: u32 = 1 << 14;
    pub const NO_MULTI: u32 = 1 << 15;
    pub const MOVABLE_KEYS: u32 = 1 << 16;
    pub const ALLOW_BUSY: u32 = 1 << 17;
    pub const NO_ASYNC_LOADING: u32 = 1 << 18;
    pub const SENTINEL: u32 = 1 << 19;
    pub const ONLY_SENTINEL: u32 = 1 << 20;
    /// Ours, not Redis's: the command locks every shard (FLUSHALL, SWAPDB).
    pub const ALL_SHARDS: u32 = 1 << 31;

    /// Names as COMMAND INFO prints them, in Redis's order.
    pub const NAMES: &[(u32, &str)] = &[
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (PUBSUB, "pubsub"),
        (NOSCRIPT, "noscript"),
        (BLOCKING, "blocking"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (SKIP_MONITOR, "skip_monitor"),
        (SKIP_SLOWLOG, "skip_slowlog"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        (MAY_REPLICATE, "may_replicate"),
        (SENTINEL, "sentinel"),
        (ONLY_SENTINEL, "only_sentinel"),
        (NO_MANDATORY_KEYS, "no_mandatory_keys"),
        (NO_ASYNC_LOADING, "no_async_loading"),
        (NO_MULTI, "no_multi"),
        (MOVABLE_KEYS, "movablekeys"),
        (ALLOW_BUSY, "allow_busy"),
    ];

    pub fn parse(words: &str) -> u32 {
        let mut bits = 0;
        for w in words.split_whitespace() {
            if w == "all_shards" {
                bits |= ALL_SHARDS;
            } else if let Some((b, _)) = NAMES.iter().find(|(_, n)| *n == w) {
                bits |= b;
            } else {
                panic!("unknown command flag {w}");
            }
        }
        bits
    }
}

/// How a command's keys are found in its arguments.
#[derive(Clone, Copy)]
pub enum Keys {
    None,
    /// first, last (negative: from the end), step, as COMMAND INFO reports.
    Range(i32, i32, i32),
    /// A count of keys at argument `numkeys`, the keys right after it
    /// (ZUNION, ZMPOP...), after a fixed destination key at argument 1 when
    /// `dest` (the *STORE forms). COMMAND INFO's legacy range is (1,1,1)
    /// with a destination, (0,0,0) without.
    NumKeys {
        dest: bool,
        numkeys: usize,
    },
    /// SORT: the key at 1, and the destination after the last STORE that
    /// is not the argument of LIMIT, GET or BY.
    SortStore,
    /// GEORADIUS and GEORADIUSBYMEMBER: the key at 1, the arguments after
    /// the first STORE and the first STOREDIST from the given argument on
    /// (Redis's key specs), and the one after the last STORE or STOREDIST
    /// (where the command stores).
    GeoStore(usize),
    /// XREAD/XREADGROUP: the first half of the arguments after STREAMS.
    Streams,
}

impl Keys {
    /// Whether the keys' positions depend on the arguments (COMMAND INFO's
    /// `movablekeys`).
    pub fn movable(&self) -> bool {
        !matches!(self, Keys::None | Keys::Range(..))
    }

    /// The (first, last, step) triple COMMAND INFO reports.
    pub fn legacy_range(&self) -> (i32, i32, i32) {
        match *self {
            Keys::None => (0, 0, 0),
            Keys::Range(f, l, s) => (f, l, s),
            Keys::NumKeys { dest: true, .. } => (1, 1, 1),
            Keys::NumKeys { dest: false, .. } => (0, 0, 0),
            Keys::SortStore | Keys::GeoStore(_) => (1, 1, 1),
            Keys::Streams => (0, 0, 0),
        }
    }
}

pub struct Command {
    pub name: &'static str,
    pub arity: i32,
    pub flags: &'static str,
    pub keys: Keys,
    pub acl: &'static str,
    pub group: &'static str,
    pub since: &'static str,
    pub handler: Handler,
    pub subcommands: &'static [Command],
}

/// A row with its parsed flags and its index (for per-command counters).
pub struct Entry {
    pub cmd: &'static Command,
    pub flags: u32,
    pub id: usize,
    /// `get`, or `config|get` for a subcommand.
    pub fullname: String,
    pub subs: HashMap<String, &'static Entry>,
}

/// Shorthand for a table row.
#[macro_export]
macro_rules! cmd {
    ($name:literal, $arity:expr, $flags:literal, $keys:expr, $acl:literal, $group:literal, $since:literal, $handler:path) => {
        $crate::cmd!(
            $name,
            $arity,
            $flags,
            $keys,
            $acl,
            $group,
            $since,
            $handler,
            &[]
        )
    };
    ($name:literal, $arity:expr, $flags:literal, $keys:expr, $acl:literal, $group:literal, $since:literal, $handler:path, $subs:expr) => {
        $crate::table::Command {
            name: $name,
            arity: $arity,
            flags: $flags,
            keys: $keys,
            acl: $acl,
            group: $group,
            since: $since,
            handler: $handler,
            subcommands: $subs,
        }
    };
}

pub struct Table {
    /// Keyed by lower-case name bytes; foldhash because SipHash showed up
    /// in the per-command profile.
    pub by_name: HashMap<Vec<u8>, &'static Entry, foldhash::fast::FixedState>,
    /// Every entry, subcommands included, indexed by `Entry::id`.
    pub all: Vec<&'static Entry>,
    /// The top-level commands of at most 16 bytes again, open-addressed
    /// by `fold_index` (linear probing, a quarter full): the dispatcher
    /// compares the request's bytes as two words, with no lowercase copy.
    by_fold: Box<[Option<FoldSlot>]>,
}

/// Slots of `Table::by_fold` (a power of two, at least 4x the commands).
const FOLD_SLOTS: usize = 1024;
const ALL_20: u64 = 0x2020_2020_2020_2020;

/// A command name as two little-endian words (zero-padded), with the
/// `0x20` bits that make its letters lowercase: a request's name matches
/// when `(word | mask) == lower` for both words and the lengths agree.
#[derive(Clone, Copy)]
struct FoldSlot {
    lower: [u64; 2],
    mask: [u64; 2],
    len: usize,
    entry: &'static Entry,
}

/// `name` (at most 16 bytes) as two zero-padded words.
fn words(name: &[u8]) -> [u64; 2] {
    match name.split_at_checked(8) {
        Some((a, b)) => [le_word(a), le_word(b)],
        None => [le_word(name), 0],
    }
}

/// Up to 8 bytes as a little-endian word, zero-padded, with at most two
/// loads (overlapping ones write the same bytes to the same places).
fn le_word(s: &[u8]) -> u64 {
    let n = s.len();
    let at = |i: usize| u64::from(s[i]) << (8 * i);
    let u32_at = |i: usize| {
        let mut w = [0u8; 4];
        w.copy_from_slice(&s[i..i + 4]);
        u64::from(u32::from_le_bytes(w)) << (8 * i)
    };
    match n {
        0 => 0,
        1..=3 => at(0) | at(n / 2) | at(n - 1),
        4..=7 => u32_at(0) | u32_at(n - 4),
        _ => {
            let mut w = [0u8; 8];
            w.copy_from_slice(&s[..8]);
            u64::from_le_bytes(w)
        }
    }
}

/// Where a name's probe starts: every byte with `0x20` set, so both cases
/// of a letter land alike (other bytes merged this way are told apart by
/// the comparison).
fn fold_index(w: [u64; 2], len: usize) -> usize {
    let h = ((w[0] | ALL_20).wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ^ (w[1] | ALL_20).wrapping_mul(0xc2b2_ae3d_27d4_eb4f)
        ^ len as u64)
        .wrapping_mul(0x0100_0000_01b3);
    (h >> 54) as usize & (FOLD_SLOTS - 1)
}

fn groups() -> impl Iterator<Item = &'static Command> {
    crate::connection::COMMANDS
        .iter()
        .chain(crate::string::COMMANDS)
        .chain(crate::generic::COMMANDS)
        .chain(crate::server::COMMANDS)
        .chain(crate::list::COMMANDS)
        .chain(crate::hash::COMMANDS)
        .chain(crate::set::COMMANDS)
        .chain(crate::sorted_set::COMMANDS)
        .chain(crate::bitmap::COMMANDS)
        .chain(crate::hyperloglog::COMMANDS)
        .chain(crate::geo::COMMANDS)
        .chain(crate::sort::COMMANDS)
        .chain(crate::stream::COMMANDS)
        .chain(crate::repl_master::COMMANDS)
        .chain(crate::transactions::COMMANDS)
        .chain(crate::pubsub::COMMANDS)
        .chain(crate::observe::COMMANDS)
        .chain(crate::monitor::COMMANDS)
        .chain(crate::acl::COMMANDS)
        .chain(crate::persist::COMMANDS)
        .chain(crate::scripting::COMMANDS)
        .chain(crate::cluster::COMMANDS)
        .chain(crate::replicaof::COMMANDS)
        .chain(crate::failover::COMMANDS)
}

pub fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut all = Vec::new();
        let mut by_name = HashMap::with_hasher(foldhash::fast::FixedState::default());
        let mut by_fold: Box<[Option<FoldSlot>]> = vec![None; FOLD_SLOTS].into_boxed_slice();
        for cmd in groups() {
            let e = build(cmd, None, &mut all);
            let name = cmd.name.as_bytes();
            by_name.insert(name.to_vec(), e);
            if name.len() > 16 {
                continue;
            }
            let lower = words(name);
            let letters: Vec<u8> = name
                .iter()
                .map(|c| if c.is_ascii_lowercase() { 0x20 } else { 0 })
                .collect();
            let mut i = fold_index(lower, name.len());
            while by_fold[i].is_some() {
                i = (i + 1) & (FOLD_SLOTS - 1);
            }
            by_fold[i] = Some(FoldSlot {
                lower,
                mask: words(&letters),
                len: name.len(),
                entry: e,
            });
        }
        Table {
            by_name,
            all,
            by_fold,
        }
    })
}

fn build(
    cmd: &'static Command,
    parent: Option<&str>,
    all: &mut Vec<&'static Entry>,
) -> &'static Entry {
    let fullname = match parent {
        Some(p) => format!("{p}|{}", cmd.name),
        None => cmd.name.to_string(),
    };
    let mut subs = HashMap::new();
    for s in cmd.subcommands {
        subs.insert(s.name.to_string(), build(s, Some(cmd.name), all));
    }
    // Entries live for the whole process; leaking them gives 'static rows.
    let e: &'static Entry = Box::leak(Box::new(Entry {
        cmd,
        // Redis derives `movablekeys` from the key specs; so do we.
        flags: flag::parse(cmd.flags)
            | if crate::server::movable_keys(&fullname) {
                flag::MOVABLE_KEYS
            } else {
                0
            },
        id: all.len(),
        fullname,
        subs,
    }));
    all.push(e);
    e
}

/// Looks a command name up, case-insensitively.
pub fn lookup(name: &[u8]) -> Option<&'static Entry> {
    if name.len() > 16 {
        return lookup_long(name);
    }
    let slots = &table().by_fold;
    let w = words(name);
    let mut i = fold_index(w, name.len());
    while let Some(s) = &slots[i] {
        if s.len == name.len() && w[0] | s.mask[0] == s.lower[0] && w[1] | s.mask[1] == s.lower[1] {
            return Some(s.entry);
        }
        i = (i + 1) & (FOLD_SLOTS - 1);
    }
    None
}

/// `lookup` for names longer than 16 bytes (rare: a lowercase copy).
fn lookup_long(name: &[u8]) -> Option<&'static Entry> {
    if name.len() > 32 {
        return None;
    }
    let mut buf = [0u8; 32];
    let lower = &mut buf[..name.len()];
    lower.copy_from_slice(name);
    lower.make_ascii_lowercase();
    table().by_name.get(&*lower).copied()
}

impl Entry {
    pub fn has(&self, f: u32) -> bool {
        self.flags & f != 0
    }

    pub fn sub(&self, name: &[u8]) -> Option<&'static Entry> {
        let lower = String::from_utf8_lossy(name).to_ascii_lowercase();
        self.subs.get(&lower).copied()
    }

    /// Positions of the key arguments in a request of `argc` arguments;
    /// `arg(i)` reads argument `i` (for a numkeys count).
    pub fn key_positions<'a>(
        &self,
        argc: usize,
        arg: impl Fn(usize) -> Option<&'a [u8]>,
    ) -> smallvec::SmallVec<[usize; 4]> {
        let (first, last, step) = match self.cmd.keys {
            Keys::None => (0, -1, 1),
            Keys::Range(f, l, s) => {
                let last = if l < 0 {
                    argc as i32 + l
                } else {
                    l.min(argc as i32 - 1)
                };
                (f, last, s.max(1))
            }
            Keys::NumKeys { dest, numkeys } => {
                let mut out = smallvec::SmallVec::new();
                if dest && argc > 1 {
                    out.push(1);
                }
                let n = arg(numkeys)
                    .and_then(crate::args::parse_i64)
                    .unwrap_or(0)
                    .max(0) as u64;
                let room = argc.saturating_sub(numkeys + 1) as u64;
                for i in 0..n.min(room) as usize {
                    out.push(numkeys + 1 + i);
                }
                return out;
            }
            Keys::SortStore => {
                let mut out = smallvec::SmallVec::new();
                if argc > 1 {
                    out.push(1);
                }
                let mut store = None;
                let mut i = 2;
                while i < argc {
                    let a = arg(i).unwrap_or_default();
                    if a.eq_ignore_ascii_case(b"limit") {
                        i += 2;
                    } else if a.eq_ignore_ascii_case(b"get") || a.eq_ignore_ascii_case(b"by") {
                        i += 1;
                    } else if a.eq_ignore_ascii_case(b"store") && i + 1 < argc {
                        store = Some(i + 1);
                    }
                    i += 1;
                }
                out.extend(store);
                return out;
            }
            Keys::GeoStore(from) => {
                let mut out = smallvec::SmallVec::new();
                if argc > 1 {
                    out.push(1);
                }
                let is = |i: usize, w: &[u8]| arg(i).unwrap_or_default().eq_ignore_ascii_case(w);
                // Redis's key specs: the first STORE, then the first
                // STOREDIST, from argument `from` on.
                for word in [b"store".as_slice(), b"storedist"] {
                    if let Some(i) = (from..argc.saturating_sub(1)).find(|&i| is(i, word)) {
                        out.push(i + 1);
                    }
                }
                // The key the command really writes: after the last of them.
                let mut last = None;
                let mut i = 5;
                while i + 1 < argc {
                    if is(i, b"store") || is(i, b"storedist") {
                        last = Some(i + 1);
                        i += 1;
                    }
                    i += 1;
                }
                if let Some(l) = last.filter(|l| !out.contains(l)) {
                    out.push(l);
                }
                return out;
            }
            Keys::Streams => return crate::stream::stream_key_positions(argc, arg).collect(),
        };
        let first = if first <= 0 { argc as i32 } else { first };
        (first..=last)
            .step_by(step as usize)
            .map(|i| i as usize)
            .collect()
    }
}

#[cfg(test)]
mod lookup_tests {
    use super::*;

    #[test]
    fn words_pack_bytes_little_endian_zero_padded() {
        let data: Vec<u8> = (1..=16).collect();
        for n in 0..=16 {
            let mut buf = [0u8; 16];
            buf[..n].copy_from_slice(&data[..n]);
            let want = [
                u64::from_le_bytes(buf[..8].try_into().unwrap()),
                u64::from_le_bytes(buf[8..].try_into().unwrap()),
            ];
            assert_eq!(words(&data[..n]), want, "{n}");
        }
    }

    #[test]
    fn lookup_finds_every_command_in_any_case_and_nothing_else() {
        for name in table().by_name.keys() {
            let e = lookup(name).unwrap();
            assert_eq!(e.cmd.name.as_bytes(), &name[..]);
            assert!(std::ptr::eq(lookup(&name.to_ascii_uppercase()).unwrap(), e));
            let mut mixed = name.clone();
            mixed[0] = mixed[0].to_ascii_uppercase();
            assert!(std::ptr::eq(lookup(&mixed).unwrap(), e));
        }
        // `| 0x20` folds these onto letters; the comparison must not.
        for bad in [
            &b"GE\x14"[..],
            b"S@T",
            b"s`t",
            b"",
            b"gett",
            b"ge",
            b"set\0",
            b"GEORADIUSBYMEMBER_RO_",
            b"restore\x0dasking",
        ] {
            assert!(lookup(bad).is_none(), "{bad:?}");
        }
    }
}
