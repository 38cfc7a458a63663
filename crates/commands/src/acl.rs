//! Access control: users, their selectors (allowed commands, key and
//! channel patterns), the check every request passes, ACL LOG, and the
//! ACL command.
//!
//! Invariants:
//! - A user is shared by its connections (`Arc<User>`): ACL SETUSER changes
//!   it in place, so connected clients see new rules on their next command;
//!   ACL DELUSER marks it deleted and its clients are closed.
//! - `User::unrestricted` is true only when the user is enabled and its one
//!   selector allows every command, key and channel: the dispatcher reads
//!   that one atomic and skips the check (the default user's case).
//! - Categories come from the command table's `acl` column.

use crate::args::{eq, lossy};
use crate::cmd;
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::table::{flag, lookup, table, Command, Entry, Keys::None as NoKeys};
use damselfly_core::glob::glob_match;
use damselfly_protocol::{Args, Reply};
use parking_lot::{Mutex, RwLock};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

/// Redis's categories, in its order (ACL CAT).
pub const CATEGORIES: &[&str] = &[
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

const READ: u8 = 1;
const WRITE: u8 = 2;

fn in_category(e: &Entry, cat: &str) -> bool {
    e.cmd
        .acl
        .split_whitespace()
        .any(|c| c.strip_prefix('@') == Some(cat))
}

/// What a command's keys need: read (the key spec says `access`) and/or
/// write (`insert`, `delete`, `update`), per entry id.
fn key_needs(e: &Entry) -> u8 {
    static NEEDS: OnceLock<Vec<u8>> = OnceLock::new();
    let needs = NEEDS.get_or_init(|| {
        table()
            .all
            .iter()
            .map(|e| {
                let mut n = 0;
                for f in crate::server::key_flags(e) {
                    match *f {
                        "access" => n |= READ,
                        "insert" | "delete" | "update" => n |= WRITE,
                        _ => {}
                    }
                }
                n
            })
            .collect()
    });
    needs.get(e.id).copied().unwrap_or(READ | WRITE)
}

/// What the `nth` of a command's `count` keys needs. Commands with one key
/// spec use Redis's flags for it; those that read some keys and write
/// others are listed here.
fn key_need(e: &Entry, nth: usize, count: usize, args: &Args<'_>) -> u8 {
    let last = nth + 1 == count;
    match e.fullname.as_str() {
        // SET reads its key only with GET (Redis's variable key flags).
        "set" if !args.iter().skip(3).any(|a| eq(a, "get")) => WRITE,
        "bitfield" if bitfield_reads_only(args) => READ,
        "bitfield" => READ | WRITE,
        "pfmerge" => {
            if nth == 0 {
                READ | WRITE
            } else {
                READ
            }
        }
        "copy" => {
            if nth == 0 {
                READ
            } else {
                WRITE
            }
        }
        "rename" | "renamenx" | "smove" | "lmove" | "rpoplpush" | "blmove" | "brpoplpush" => {
            if nth == 0 {
                READ | WRITE
            } else {
                WRITE
            }
        }
        "sunionstore" | "sinterstore" | "sdiffstore" | "zunionstore" | "zinterstore"
        | "zdiffstore" | "zrangestore" | "bitop" | "geosearchstore" => {
            if nth == 0 {
                WRITE
            } else {
                READ
            }
        }
        // The source is read, the STORE/STOREDIST key (last) written.
        "sort" | "sort_ro" | "georadius" | "georadiusbymember" => {
            if last && count > 1 {
                WRITE
            } else {
                READ
            }
        }
        _ => key_needs(e),
    }
}

/// BITFIELD reads only when every operation is a GET (OVERFLOW aside);
/// anything else, unknown words included, counts as a write, as in Redis.
fn bitfield_reads_only(args: &Args<'_>) -> bool {
    let mut j = 2;
    while j < args.len() {
        let rest = args.len() - j - 1;
        let a = args.get(j).unwrap_or_default();
        if eq(a, "get") && rest >= 2 {
            j += 3;
        } else if eq(a, "overflow") && rest >= 1 {
            j += 2;
        } else {
            return false;
        }
    }
    true
}

/// The permissions of one selector: the user's root one, or a `(...)` one.
#[derive(Clone, Default, PartialEq)]
pub struct Selector {
    /// Allowed commands, a bit per table entry id (subcommands included).
    cmds: Vec<u64>,
    /// Set by `+@all`: commands added later would be allowed too.
    all_commands: bool,
    /// Command rules as written after the last `+@all`/`-@all` (ACL LIST
    /// shows them).
    rules: Vec<String>,
    /// Allowed first arguments of commands that are not allowed whole.
    firstargs: Vec<(usize, Vec<String>)>,
    keys: Vec<(u8, Vec<u8>)>,
    all_keys: bool,
    channels: Vec<Vec<u8>>,
    all_channels: bool,
}

/// Why a request is refused, most relevant last (Redis reports the most
/// relevant one over all selectors).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Denied {
    Command,
    /// The argument position of the key.
    Key(usize),
    Channel(usize),
}

fn bad(modifier: &[u8], why: &'static str) -> CmdError {
    CmdError::AclModifier {
        modifier: lossy(modifier),
        why,
    }
}

const SYNTAX: &str = "Syntax error";
const UNKNOWN: &str = "Unknown command or category name in ACL";

impl Selector {
    fn empty() -> Selector {
        Selector {
            cmds: vec![0; table().all.len().div_ceil(64)],
            ..Selector::default()
        }
    }

    fn bit(&self, id: usize) -> bool {
        self.cmds
            .get(id / 64)
            .is_some_and(|w| w & (1 << (id % 64)) != 0)
    }

    fn set_bit(&mut self, id: usize, on: bool) {
        if let Some(w) = self.cmds.get_mut(id / 64) {
            if on {
                *w |= 1 << (id % 64);
            } else {
                *w &= !(1 << (id % 64));
            }
        }
    }

    /// A command and, for a container, all its subcommands.
    fn set_command(&mut self, e: &Entry, on: bool) {
        self.firstargs.retain(|(id, _)| *id != e.id);
        self.set_bit(e.id, on);
        for s in e.subs.values() {
            self.set_bit(s.id, on);
        }
    }

    fn set_category(&mut self, cat: &str, on: bool) {
        for e in table().all.iter().filter(|e| in_category(e, cat)) {
            self.firstargs.retain(|(id, _)| *id != e.id);
            self.set_bit(e.id, on);
        }
    }

    fn set_all(&mut self, on: bool) {
        let n = table().all.len();
        for id in 0..n {
            self.set_bit(id, on);
        }
        self.all_commands = on;
        self.rules.clear();
        self.firstargs.clear();
    }

    fn unrestricted(&self) -> bool {
        self.all_keys
            && self.all_channels
            && self.all_commands
            && table().all.iter().all(|e| self.bit(e.id))
    }

    /// Applies one selector rule.
    fn apply(&mut self, op: &[u8]) -> CmdResult {
        let s = lossy(op);
        match s.to_ascii_lowercase().as_str() {
            "allkeys" => {
                self.allow_all_keys();
                return Ok(());
            }
            "resetkeys" => {
                self.all_keys = false;
                self.keys.clear();
                return Ok(());
            }
            "allchannels" => {
                self.allow_all_channels();
                return Ok(());
            }
            "resetchannels" => {
                self.all_channels = false;
                self.channels.clear();
                return Ok(());
            }
            "allcommands" | "+@all" => {
                self.set_all(true);
                return Ok(());
            }
            "nocommands" | "-@all" => {
                self.set_all(false);
                return Ok(());
            }
            _ => {}
        }
        match op.first() {
            Some(b'~' | b'%') => self.add_key_pattern(op),
            Some(b'&') => {
                let pat = &op[1..];
                if pat == b"*" {
                    self.allow_all_channels();
                } else if self.all_channels {
                    return Err(bad(op, "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels"));
                } else if !self.channels.iter().any(|c| c == pat) {
                    self.channels.push(pat.to_vec());
                }
                Ok(())
            }
            Some(b'+' | b'-') => self.command_rule(op),
            _ => Err(bad(op, SYNTAX)),
        }
    }

    /// `+cmd`, `-cmd`, `+cmd|sub`, `+@cat`, `-@cat`, `+cmd|firstarg`: the
    /// bits change, and the rule is kept as written (replacing earlier rules
    /// on the same command or category) unless the kept rules already give
    /// these bits, as Redis 7.0 keeps them.
    fn command_rule(&mut self, op: &[u8]) -> CmdResult {
        let rule = self.apply_bits(op)?;
        let name = &rule[1..];
        let prefix = format!("{name}|");
        self.rules
            .retain(|r| r[1..] != *name && (name.contains('|') || !r[1..].starts_with(&prefix)));
        let target = (self.cmds.clone(), self.firstargs.clone());
        if self.replay(&self.rules) != target {
            self.rules.push(rule);
        }
        // Earlier rules the new one made redundant go (`+get +@read` keeps
        // `+@read`).
        let mut i = 0;
        while i < self.rules.len() {
            let mut without = self.rules.clone();
            without.remove(i);
            if self.replay(&without) == target {
                self.rules = without;
            } else {
                i += 1;
            }
        }
        Ok(())
    }

    /// The bits `rules` give, from `+@all` or `-@all`.
    fn replay(&self, rules: &[String]) -> (Vec<u64>, Vec<(usize, Vec<String>)>) {
        let mut fake = Selector::empty();
        fake.set_all(self.all_commands);
        for r in rules {
            let _ = fake.apply_bits(r.as_bytes());
        }
        (fake.cmds, fake.firstargs)
    }

    /// Applies a command or category rule to the bits only; returns the
    /// rule in its normal spelling (lower case, full command name).
    fn apply_bits(&mut self, op: &[u8]) -> CmdResult<String> {
        let s = lossy(op).to_ascii_lowercase();
        let on = s.starts_with('+');
        let name = &s[1..];
        if let Some(cat) = name.strip_prefix('@') {
            if !CATEGORIES.contains(&cat) {
                return Err(bad(op, UNKNOWN));
            }
            self.set_category(cat, on);
            return Ok(s);
        }
        let Some((cmd, sub)) = name.rsplit_once('|') else {
            let e = lookup(name.as_bytes()).ok_or_else(|| bad(op, UNKNOWN))?;
            self.set_command(e, on);
            return Ok(s);
        };
        let e = match cmd.split_once('|') {
            Some((parent, child)) => {
                let p = lookup(parent.as_bytes()).ok_or_else(|| bad(op, UNKNOWN))?;
                p.sub(child.as_bytes()).ok_or_else(|| bad(op, UNKNOWN))?;
                return Err(bad(
                    op,
                    "Allowing first-arg of a subcommand is not supported",
                ));
            }
            None => lookup(cmd.as_bytes()).ok_or_else(|| bad(op, UNKNOWN))?,
        };
        if sub.is_empty() {
            return Err(bad(op, SYNTAX));
        }
        if !e.subs.is_empty() {
            let se = e.sub(sub.as_bytes()).ok_or_else(|| bad(op, UNKNOWN))?;
            self.set_bit(se.id, on);
            return Ok(s);
        }
        // A first argument of a command without subcommands (SELECT 0,
        // DEBUG OBJECT): allowed only, never denied.
        if !on {
            return Err(bad(op, UNKNOWN));
        }
        if !self.bit(e.id) {
            match self.firstargs.iter_mut().find(|(id, _)| *id == e.id) {
                Some((_, args)) if !args.iter().any(|a| a == sub) => args.push(sub.to_string()),
                Some(_) => {}
                None => self.firstargs.push((e.id, vec![sub.to_string()])),
            }
        }
        Ok(s)
    }

    fn allow_all_keys(&mut self) {
        self.all_keys = true;
        self.keys.clear();
    }

    fn allow_all_channels(&mut self) {
        self.all_channels = true;
        self.channels.clear();
    }

    /// `~pattern`, `%R~pattern`, `%W~pattern`, `%RW~pattern`.
    fn add_key_pattern(&mut self, op: &[u8]) -> CmdResult {
        let (perm, pat) = if op[0] == b'%' {
            let tilde = op
                .iter()
                .position(|&c| c == b'~')
                .ok_or_else(|| bad(op, SYNTAX))?;
            let mut perm = 0;
            for &c in &op[1..tilde] {
                perm |= match c.to_ascii_uppercase() {
                    b'R' => READ,
                    b'W' => WRITE,
                    _ => return Err(bad(op, SYNTAX)),
                };
            }
            if perm == 0 {
                return Err(bad(op, SYNTAX));
            }
            (perm, &op[tilde + 1..])
        } else {
            (READ | WRITE, &op[1..])
        };
        if pat == b"*" && perm == READ | WRITE {
            self.allow_all_keys();
            return Ok(());
        }
        if self.all_keys {
            return Err(bad(op, "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns"));
        }
        match self.keys.iter_mut().find(|(_, p)| p == pat) {
            Some(k) => k.0 |= perm,
            None => self.keys.push((perm, pat.to_vec())),
        }
        Ok(())
    }

    fn key_allowed(&self, key: &[u8], need: u8) -> bool {
        self.all_keys
            || self
                .keys
                .iter()
                .any(|(perm, pat)| perm & need == need && glob_match(pat, key, false))
    }

    fn channel_allowed(&self, channel: &[u8], literal: bool) -> bool {
        self.all_channels
            || self.channels.iter().any(|p| {
                if literal {
                    p == channel
                } else {
                    glob_match(p, channel, false)
                }
            })
    }

    fn check(&self, e: &Entry, args: &Args<'_>) -> Result<(), Denied> {
        if !self.bit(e.id) && !e.has(flag::NO_AUTH) {
            let first = args.get(1).map(lossy).map(|a| a.to_ascii_lowercase());
            let allowed = self
                .firstargs
                .iter()
                .any(|(id, list)| *id == e.id && first.as_ref().is_some_and(|f| list.contains(f)));
            if !allowed {
                return Err(Denied::Command);
            }
        }
        // Shard channels are keys in the table (for their cluster slot)
        // but channels to ACL.
        let shard_channels = matches!(e.cmd.name, "spublish" | "ssubscribe" | "sunsubscribe");
        if !self.all_keys && !shard_channels {
            let positions = e.key_positions(args.len(), |i| args.get(i));
            for (nth, &i) in positions.iter().enumerate() {
                let need = key_need(e, nth, positions.len(), args);
                if !self.key_allowed(args.get(i).unwrap_or_default(), need) {
                    return Err(Denied::Key(i));
                }
            }
        }
        if !self.all_channels {
            if let Some((first, literal)) = channel_args(e) {
                let last = if e.cmd.name == "publish" || e.cmd.name == "spublish" {
                    first + 1
                } else {
                    args.len()
                };
                for i in first..last.min(args.len()) {
                    if !self.channel_allowed(args.get(i).unwrap_or_default(), literal) {
                        return Err(Denied::Channel(i));
                    }
                }
            }
        }
        Ok(())
    }

    /// Keys part of the rule text: `~*`, or each pattern with its prefix.
    fn describe_keys(&self) -> String {
        if self.all_keys {
            return "~*".into();
        }
        let pats: Vec<String> = self
            .keys
            .iter()
            .map(|(perm, p)| {
                let prefix = match *perm {
                    READ => "%R~",
                    WRITE => "%W~",
                    _ => "~",
                };
                format!("{prefix}{}", lossy(p))
            })
            .collect();
        pats.join(" ")
    }

    fn describe_channels(&self) -> String {
        if self.all_channels {
            return "&*".into();
        }
        let pats: Vec<String> = self
            .channels
            .iter()
            .map(|p| format!("&{}", lossy(p)))
            .collect();
        pats.join(" ")
    }

    /// The command rules: `+@all` (future commands allowed) or `-@all`,
    /// then the kept rules.
    fn describe_commands(&self) -> String {
        let base = if self.all_commands { "+@all" } else { "-@all" };
        std::iter::once(base)
            .chain(self.rules.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The selector as rules: keys, channels, commands.
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        let keys = self.describe_keys();
        if !keys.is_empty() {
            parts.push(keys);
        }
        if self.all_channels {
            parts.push("&*".into());
        } else {
            parts.push("resetchannels".into());
            let ch = self.describe_channels();
            if !ch.is_empty() {
                parts.push(ch);
            }
        }
        parts.push(self.describe_commands());
        parts.join(" ")
    }
}

/// Where a pub/sub command's channels start, and whether they must match a
/// pattern literally (PSUBSCRIBE's patterns do).
fn channel_args(e: &Entry) -> Option<(usize, bool)> {
    match e.fullname.as_str() {
        "publish" | "subscribe" | "ssubscribe" | "spublish" => Some((1, false)),
        "psubscribe" => Some((1, true)),
        _ => None,
    }
}

/// A user's settings.
#[derive(Clone, PartialEq)]
pub struct UserState {
    pub enabled: bool,
    pub nopass: bool,
    /// SHA-256 of each password, in the order added.
    pub passwords: Vec<[u8; 32]>,
    /// `sanitize-payload` / `skip-sanitize-payload`, once set.
    pub sanitize: Option<bool>,
    pub root: Selector,
    pub selectors: Vec<Selector>,
}

impl UserState {
    /// A new user: off, no password, nothing allowed; every channel when
    /// `acl-pubsub-default` is `allchannels`.
    fn new(all_channels: bool) -> UserState {
        let mut root = Selector::empty();
        root.all_channels = all_channels;
        UserState {
            enabled: false,
            nopass: false,
            passwords: Vec::new(),
            sanitize: None,
            root,
            selectors: Vec::new(),
        }
    }

    fn apply(&mut self, op: &[u8], all_channels: bool) -> CmdResult {
        let s = lossy(op);
        match s.to_ascii_lowercase().as_str() {
            "on" => self.enabled = true,
            "off" => self.enabled = false,
            "nopass" => {
                self.nopass = true;
                self.passwords.clear();
            }
            "resetpass" => {
                self.nopass = false;
                self.passwords.clear();
            }
            "skip-sanitize-payload" => self.sanitize = Some(false),
            "sanitize-payload" => self.sanitize = Some(true),
            "clearselectors" => self.selectors.clear(),
            "reset" => {
                *self = UserState::new(all_channels);
                self.sanitize = Some(true);
            }
            _ => match op.first() {
                Some(b'>') => {
                    let h = sha256(&op[1..]);
                    if !self.passwords.contains(&h) {
                        self.passwords.push(h);
                    }
                    self.nopass = false;
                }
                Some(b'#') => {
                    let h = parse_hash(op)?;
                    if !self.passwords.contains(&h) {
                        self.passwords.push(h);
                    }
                    self.nopass = false;
                }
                Some(b'<') => self.remove_password(op, sha256(&op[1..]))?,
                Some(b'!') => {
                    let h = parse_hash(op)?;
                    self.remove_password(op, h)?;
                }
                Some(b'(') if op.ends_with(b")") && op.len() >= 2 => {
                    let mut sel = Selector::empty();
                    sel.all_channels = all_channels;
                    for w in op[1..op.len() - 1]
                        .split(|c| *c == b' ')
                        .filter(|w| !w.is_empty())
                    {
                        // An error inside a selector names the whole selector.
                        sel.apply(w).map_err(|e| match e {
                            CmdError::AclModifier { why, .. } => bad(op, why),
                            e => e,
                        })?;
                    }
                    self.selectors.push(sel);
                }
                _ => self.root.apply(op)?,
            },
        }
        Ok(())
    }

    fn remove_password(&mut self, op: &[u8], h: [u8; 32]) -> CmdResult {
        let before = self.passwords.len();
        self.passwords.retain(|p| *p != h);
        if self.passwords.len() == before {
            return Err(bad(
                op,
                "The password you are trying to remove from the user does not exist",
            ));
        }
        Ok(())
    }

    fn check(&self, e: &Entry, args: &Args<'_>) -> Result<(), Denied> {
        let mut worst = match self.root.check(e, args) {
            Ok(()) => return Ok(()),
            Err(d) => d,
        };
        for s in &self.selectors {
            match s.check(e, args) {
                Ok(()) => return Ok(()),
                Err(d) => worst = worst.max(d),
            }
        }
        Err(worst)
    }

    /// Whether any selector lets this user subscribe to `channel`.
    fn channel_ok(&self, channel: &[u8], literal: bool) -> bool {
        std::iter::once(&self.root)
            .chain(&self.selectors)
            .any(|s| s.channel_allowed(channel, literal))
    }

    fn password_ok(&self, pass: &[u8]) -> bool {
        if !self.enabled {
            return false;
        }
        self.nopass || self.passwords.contains(&sha256(pass))
    }
}

fn sha256(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

fn hex(h: &[u8]) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_hash(op: &[u8]) -> CmdResult<[u8; 32]> {
    let digits = &op[1..];
    let err = || {
        bad(
            op,
            "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters",
        )
    };
    if digits.len() != 64
        || !digits
            .iter()
            .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err(err());
    }
    let mut out = [0u8; 32];
    for (i, pair) in digits.chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).map_err(|_| err())?;
        out[i] = u8::from_str_radix(s, 16).map_err(|_| err())?;
    }
    Ok(out)
}

/// Whether the user may read every key (Redis checks the key `*`).
pub fn reads_all_keys(user: &User) -> bool {
    let st = user.state.read();
    std::iter::once(&st.root)
        .chain(&st.selectors)
        .any(|s| s.key_allowed(b"*", READ))
}

pub struct User {
    pub name: String,
    /// Enabled and allowed everything: the dispatcher skips the check.
    pub unrestricted: AtomicBool,
    /// Removed by ACL DELUSER (or replaced by ACL LOAD): its clients close.
    pub deleted: AtomicBool,
    pub state: RwLock<UserState>,
}

impl User {
    fn new(name: &str, state: UserState) -> Arc<User> {
        let u = Arc::new(User {
            name: name.to_string(),
            unrestricted: AtomicBool::new(false),
            deleted: AtomicBool::new(false),
            state: RwLock::new(state),
        });
        u.refresh();
        u
    }

    fn refresh(&self) {
        let st = self.state.read();
        let free = st.enabled && st.root.unrestricted() && !self.deleted.load(Relaxed);
        self.unrestricted.store(free, Relaxed);
    }

    /// The user as ACL LIST prints it.
    pub fn describe(&self) -> String {
        let st = self.state.read();
        let mut out = format!(
            "user {} {}",
            self.name,
            if st.enabled { "on" } else { "off" }
        );
        if st.nopass {
            out.push_str(" nopass");
        }
        match st.sanitize {
            Some(true) => out.push_str(" sanitize-payload"),
            Some(false) => out.push_str(" skip-sanitize-payload"),
            None => {}
        }
        for p in &st.passwords {
            out.push_str(" #");
            out.push_str(&hex(p));
        }
        out.push(' ');
        out.push_str(&st.root.describe());
        for s in &st.selectors {
            out.push_str(" (");
            out.push_str(&s.describe());
            out.push(')');
        }
        out
    }
}

pub struct LogEntry {
    pub count: u64,
    pub reason: &'static str,
    pub context: &'static str,
    pub object: String,
    pub username: String,
    pub created_ms: u64,
    pub client_info: String,
}

/// The server's users and its ACL LOG.
pub struct Acl {
    users: RwLock<BTreeMap<String, Arc<User>>>,
    log: Mutex<VecDeque<LogEntry>>,
    /// `aclfile`, where ACL SAVE and ACL LOAD go.
    pub file: RwLock<String>,
    /// `acl-pubsub-default allchannels`: new users get every channel.
    pub pubsub_default_all: AtomicBool,
    /// `acllog-max-len`: ACL LOG keeps this many entries.
    log_max: std::sync::atomic::AtomicUsize,
}

impl Default for Acl {
    fn default() -> Self {
        Self::new()
    }
}

/// Splits ACL SETUSER's arguments, joining a `(` selector written over
/// several arguments.
fn merge_selectors(ops: &[&[u8]]) -> CmdResult<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut open: Option<Vec<u8>> = None;
    let mut start: &[u8] = b"";
    for op in ops {
        match open.as_mut() {
            Some(acc) => {
                acc.push(b' ');
                acc.extend_from_slice(op);
                if op.ends_with(b")") {
                    out.extend(open.take());
                }
            }
            None if op.starts_with(b"(") && !op.ends_with(b")") => {
                start = op;
                open = Some(op.to_vec());
            }
            None => out.push(op.to_vec()),
        }
    }
    match open {
        Some(_) => Err(CmdError::AclUnmatchedParen(lossy(start))),
        None => Ok(out),
    }
}

impl Acl {
    pub fn new() -> Acl {
        let acl = Acl {
            users: RwLock::new(BTreeMap::new()),
            log: Mutex::new(VecDeque::new()),
            file: RwLock::new(String::new()),
            pubsub_default_all: AtomicBool::new(false),
            log_max: std::sync::atomic::AtomicUsize::new(128),
        };
        acl.users
            .write()
            .insert("default".into(), User::new("default", default_state()));
        acl
    }

    /// Reads the ACL settings that live in CONFIG (`acl-pubsub-default`).
    pub fn sync_config(&self, config: &crate::config::Config) {
        let all = config.get("acl-pubsub-default").as_deref() == Some("allchannels");
        self.pubsub_default_all.store(all, Relaxed);
        let max = config.get("acllog-max-len").and_then(|v| v.parse().ok());
        self.log_max.store(max.unwrap_or(128), Relaxed);
        self.log.lock().truncate(self.log_max.load(Relaxed));
    }

    fn pubsub_all(&self) -> bool {
        self.pubsub_default_all.load(Relaxed)
    }

    pub fn default_user(&self) -> Arc<User> {
        match self.users.read().get("default") {
            Some(u) => u.clone(),
            None => User::new("default", default_state()),
        }
    }

    pub fn user(&self, name: &str) -> Option<Arc<User>> {
        self.users.read().get(name).cloned()
    }

    /// Whether a new connection starts authenticated (as the default user).
    pub fn default_nopass(&self) -> bool {
        let st_user = self.default_user();
        let st = st_user.state.read();
        st.enabled && st.nopass
    }

    /// ACL SETUSER: every rule is checked on a copy before the user changes.
    pub fn set_user(&self, name: &str, ops: &[&[u8]]) -> CmdResult {
        self.apply_user(name, ops, false)
    }

    /// A config file's `user` line: the user is defined from scratch (the
    /// default user too), as an ACL file defines it.
    pub fn define_user(&self, name: &str, ops: &[&[u8]]) -> CmdResult {
        self.apply_user(name, ops, true)
    }

    fn apply_user(&self, name: &str, ops: &[&[u8]], fresh: bool) -> CmdResult {
        let ops = merge_selectors(ops)?;
        let existing = self.user(name);
        let mut st = match &existing {
            Some(u) if !fresh => u.state.read().clone(),
            _ => UserState::new(self.pubsub_all()),
        };
        for op in &ops {
            st.apply(op, self.pubsub_all())?;
        }
        match existing {
            Some(u) => {
                *u.state.write() = st;
                u.refresh();
            }
            None => {
                self.users
                    .write()
                    .insert(name.to_string(), User::new(name, st));
            }
        }
        Ok(())
    }

    /// `requirepass`: the default user's one password, or nopass when empty.
    pub fn set_requirepass(&self, pass: &[u8]) {
        let u = self.default_user();
        {
            let mut st = u.state.write();
            st.passwords.clear();
            if pass.is_empty() {
                st.nopass = true;
            } else {
                st.nopass = false;
                st.passwords.push(sha256(pass));
            }
        }
        u.refresh();
    }

    /// AUTH: the user if the password is right and the user enabled.
    pub fn authenticate(&self, user: &[u8], pass: &[u8]) -> Option<Arc<User>> {
        let u = self.user(std::str::from_utf8(user).ok()?)?;
        let ok = u.state.read().password_ok(pass);
        ok.then_some(u)
    }

    fn delete(&self, names: &[String]) -> usize {
        let mut users = self.users.write();
        let mut n = 0;
        for name in names {
            if let Some(u) = users.remove(name) {
                u.deleted.store(true, Relaxed);
                u.refresh();
                n += 1;
            }
        }
        n
    }

    pub fn log_event(
        &self,
        reason: &'static str,
        context: &'static str,
        object: String,
        username: String,
        client_info: String,
    ) {
        let now = damselfly_storage::now_ms();
        let mut log = self.log.lock();
        // A repeat of a recent entry counts there instead of adding a line.
        let similar = log.iter().take(10).position(|l| {
            l.reason == reason
                && l.context == context
                && l.object == object
                && l.username == username
                && now.saturating_sub(l.created_ms) < 60_000
        });
        if let Some(i) = similar {
            if let Some(mut l) = log.remove(i) {
                l.count += 1;
                l.created_ms = now;
                l.client_info = client_info;
                log.push_front(l);
            }
            return;
        }
        log.push_front(LogEntry {
            count: 1,
            reason,
            context,
            object,
            username,
            created_ms: now,
            client_info,
        });
        log.truncate(self.log_max.load(Relaxed));
    }

    /// Every user, as ACL LIST and ACL SAVE write them.
    pub fn describe_all(&self) -> Vec<String> {
        self.users.read().values().map(|u| u.describe()).collect()
    }

    /// Replaces every user with the lines of an ACL file (`user NAME
    /// rules...`); on any error nothing changes.
    pub fn load_lines(&self, text: &str) -> Result<(), String> {
        let mut fresh: BTreeMap<String, UserState> = BTreeMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let words: Vec<&str> = line.split_whitespace().collect();
            if words.first() != Some(&"user") || words.len() < 2 {
                return Err(format!("line {}: should start with user keyword", n + 1));
            }
            let name = words[1];
            if fresh.contains_key(name) {
                return Err(format!("{}: Duplicate user '{name}' found", n + 1));
            }
            let mut st = UserState::new(self.pubsub_all());
            let ops: Vec<&[u8]> = words[2..].iter().map(|w| w.as_bytes()).collect();
            for op in merge_selectors(&ops).map_err(|e| format!("{}: {e}", n + 1))? {
                st.apply(&op, self.pubsub_all()).map_err(|e| {
                    let msg = e.to_string();
                    format!("{}: {}", n + 1, msg.trim_start_matches("ERR "))
                })?;
            }
            fresh.insert(name.to_string(), st);
        }
        let mut users = self.users.write();
        fresh.entry("default".into()).or_insert_with(default_state);
        // Users that went are deleted (their clients close).
        for (name, old) in users.iter() {
            if !fresh.contains_key(name) {
                old.deleted.store(true, Relaxed);
                old.refresh();
            }
        }
        let mut next = BTreeMap::new();
        for (name, st) in fresh {
            // Only the default user keeps its identity (and its clients);
            // every other user is new, as after Redis's ACL LOAD.
            let kept = users.get(&name).filter(|_| name == "default");
            if let Some(old) = users.get(&name).filter(|_| name != "default") {
                old.deleted.store(true, Relaxed);
                old.refresh();
            }
            let u = match kept {
                Some(u) => {
                    *u.state.write() = st;
                    u.refresh();
                    u.clone()
                }
                None => User::new(&name, st),
            };
            next.insert(name, u);
        }
        *users = next;
        Ok(())
    }

    pub fn load_file(&self) -> Result<(), String> {
        let path = self.file.read().clone();
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("Error loading ACLs, opening file '{path}': {e}"))?;
        self.load_lines(&text)
    }

    pub fn save_file(&self) -> std::io::Result<()> {
        let path = self.file.read().clone();
        let mut text = self.describe_all().join("\n");
        text.push('\n');
        let tmp = format!("{path}.tmp-{}", std::process::id());
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, &path)
    }
}

/// The user the master's commands run as on a replica: allowed everything
/// (Redis's master client has no user).
pub fn superuser() -> Arc<User> {
    User::new("(superuser)", default_state())
}

fn default_state() -> UserState {
    let mut st = UserState::new(true);
    st.enabled = true;
    st.nopass = true;
    st.root.set_all(true);
    st.root.allow_all_keys();
    st.root.allow_all_channels();
    st
}

/// The dispatcher's check for a restricted user: the error to reply, with
/// the refusal logged.
pub fn check(
    ctx_server: &crate::state::Server,
    client: &crate::client::Client,
    e: &Entry,
    args: &Args<'_>,
) -> CmdResult {
    check_as(ctx_server, client, e, args, Via::Client)
}

/// EXEC's check of each queued command: the rules may have changed since
/// it was queued.
pub(crate) fn check_queued(
    server: &crate::state::Server,
    client: &crate::client::Client,
    e: &Entry,
    args: &Args<'_>,
) -> CmdResult {
    check_as(server, client, e, args, Via::Exec)
}

/// A script's `redis.call`: the caller's user, logged in the `lua` context.
pub(crate) fn check_script(
    server: &crate::state::Server,
    client: &crate::client::Client,
    e: &Entry,
    args: &Args<'_>,
) -> CmdResult {
    check_as(server, client, e, args, Via::Script)
}

/// Whether `user` may run the command, logging nothing
/// (`redis.acl_check_cmd`).
pub(crate) fn permits(user: &User, e: &Entry, args: &Args<'_>) -> bool {
    user.unrestricted.load(std::sync::atomic::Ordering::Relaxed)
        || user.state.read().check(e, args).is_ok()
}

/// How the checked command arrived, which decides its error text.
#[derive(Clone, Copy, PartialEq)]
enum Via {
    Client,
    Exec,
    Script,
}

fn check_as(
    ctx_server: &crate::state::Server,
    client: &crate::client::Client,
    e: &Entry,
    args: &Args<'_>,
    via: Via,
) -> CmdResult {
    let in_exec = via == Via::Exec;
    let user = &client.user;
    let denied = {
        let st = user.state.read();
        match st.check(e, args) {
            Ok(()) => return Ok(()),
            Err(d) => d,
        }
    };
    let context = if client.in_script {
        "lua"
    } else if client.multi.is_some() || client.in_exec {
        "multi"
    } else {
        "toplevel"
    };
    let (reason, object, err) = match denied {
        Denied::Command => (
            "command",
            e.fullname.clone(),
            CmdError::NoPermCommand(e.fullname.clone()),
        ),
        Denied::Key(i) => (
            "key",
            lossy(args.get(i).unwrap_or_default()),
            CmdError::NoPermKey,
        ),
        Denied::Channel(i) => (
            "channel",
            lossy(args.get(i).unwrap_or_default()),
            CmdError::NoPermChannel,
        ),
    };
    let running = if in_exec {
        crate::table::lookup(b"exec").unwrap_or(e)
    } else {
        e
    };
    ctx_server.acl.log_event(
        reason,
        context,
        object,
        user.name.clone(),
        crate::connection::describe_client(&client.info, running),
    );
    if via == Via::Script {
        return Err(CmdError::ScriptNoPerm(match denied {
            Denied::Command => "can't run this command or subcommand",
            Denied::Key(_) => {
                "can't access at least one of the keys mentioned in the command arguments"
            }
            Denied::Channel(_) => "can't publish to the channel mentioned in the command",
        }));
    }
    if in_exec {
        return Err(CmdError::NoPermSinceQueued(match denied {
            Denied::Command => "no permission to execute the command or subcommand",
            Denied::Key(_) => "no permission to touch the specified keys",
            Denied::Channel(_) => "no permission to access one of the channels used as arguments",
        }));
    }
    Err(err)
}

pub(crate) static COMMANDS: &[Command] = &[cmd!(
    "acl",
    -2,
    "sentinel",
    NoKeys,
    "@slow",
    "server",
    "6.0.0",
    acl_help,
    SUBCOMMANDS
)];

static SUBCOMMANDS: &[Command] = &[
    cmd!(
        "cat",
        -2,
        "noscript loading stale sentinel",
        NoKeys,
        "@slow",
        "server",
        "6.0.0",
        acl_cat
    ),
    cmd!(
        "deluser",
        -3,
        "admin noscript loading stale sentinel",
        NoKeys,
        "@admin @slow @dangerous",
        "server",
        "6.0.0",
        acl_deluser
    ),
    cmd!(
        "dryrun",
        -4,
        "admin noscript loading stale sentinel",
        NoKeys,
        "@admin @slow @dangerous",
        "server",
        "7.0.0",
        acl_dryrun
    ),
    cmd!(
        "genpass",
        -2,
        "noscript loading stale sentinel",
        NoKeys,
        "@slow",
        "server",
        "6.0.0",
        acl_genpass
    ),
    cmd!(
        "getuser",
        3,
        "admin noscript loading stale sentinel",
        NoKeys,
        "@admin @slow @dangerous",
        "server",
        "6.0.0",
        acl_getuser
    ),
    cmd!(
        "help",
        2,
        "loading stale sentinel",
        NoKeys,
        "@slow",
        "server",
        "6.0.0",
        acl_help
    ),
    cmd!(
        "list",
        2,
        "admin noscript loading stale sentinel",
        NoKeys,
        "@admin @slow @dangerous",
        "server",
        "6.0.0",
        acl_list
    ),
    cmd!(
        "load",
        2,
        "admin noscript loading stale sentinel",
        NoKeys,
        "@admin @slow @dangerous",
        "server",
        "6.0.0",
        acl_load
    ),
    cmd!(
        "log",
        -2,
        "admin noscript loading stale sentinel",
        NoKeys,
        "@admin @slow @dangerous",
        "server",
        "6.0.0",
        acl_log
    ),
    cmd!(
        "save",
        2,
        "admin noscript loading stale sentinel",
        NoKeys,
        "@admin @slow @dangerous",
        "server",
        "6.0.0",
        acl_save
    ),
    cmd!(
        "setuser",
        -3,
        "admin noscript loading stale sentinel",
        NoKeys,
        "@admin @slow @dangerous",
        "server",
        "6.0.0",
        acl_setuser
    ),
    cmd!(
        "users",
        2,
        "admin noscript loading stale sentinel",
        NoKeys,
        "@admin @slow @dangerous",
        "server",
        "6.0.0",
        acl_users
    ),
    cmd!(
        "whoami",
        2,
        "noscript loading stale sentinel",
        NoKeys,
        "@slow",
        "server",
        "6.0.0",
        acl_whoami
    ),
];

fn arg<'a>(args: &'a Args<'_>, i: usize) -> &'a [u8] {
    args.get(i).unwrap_or_default()
}

/// ACL CAT [category]
fn acl_cat(ctx: &mut Ctx, args: &Args) -> CmdResult {
    match args.get(2) {
        None => {
            ctx.reply.array(CATEGORIES.len());
            for c in CATEGORIES {
                ctx.reply.bulk(c.as_bytes());
            }
        }
        Some(_) if args.len() > 3 => {
            return Err(CmdError::SubcommandSyntax {
                sub: arg(args, 1).to_vec(),
                cmd: "ACL".into(),
            })
        }
        Some(given) => {
            let cat = lossy(given).to_ascii_lowercase();
            if !CATEGORIES.contains(&cat.as_str()) {
                return Err(CmdError::Other(format!(
                    "ERR Unknown category '{}'",
                    lossy(given)
                )));
            }
            let names: Vec<&str> = table()
                .all
                .iter()
                .filter(|e| in_category(e, &cat))
                .map(|e| e.fullname.as_str())
                .collect();
            ctx.reply.array(names.len());
            for n in names {
                ctx.reply.bulk(n.as_bytes());
            }
        }
    }
    Ok(())
}

/// ACL DELUSER username [username ...]
fn acl_deluser(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let names: Vec<String> = (2..args.len()).map(|i| lossy(arg(args, i))).collect();
    if names.iter().any(|n| n == "default") {
        return Err(CmdError::Other(
            "ERR The 'default' user cannot be removed".into(),
        ));
    }
    let n = ctx.server.acl.delete(&names);
    // A deleted user's connections close at once, as in Redis.
    kill_clients(ctx, |c| names.contains(&*c.user.lock()));
    ctx.reply.int(n as i64);
    Ok(())
}

/// ACL DRYRUN username command [arg ...]
fn acl_dryrun(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let name = lossy(arg(args, 2));
    let user = ctx
        .server
        .acl
        .user(&name)
        .ok_or(CmdError::AclNoSuchUser(name))?;
    let req = damselfly_protocol::Request::from_owned(
        &(3..args.len()).map(|i| arg(args, i)).collect::<Vec<_>>(),
    );
    let cmd_args = req.args(&[]);
    let cname = arg(args, 3);
    let mut e = lookup(cname)
        .ok_or_else(|| CmdError::Other(format!("ERR Command '{}' not found", lossy(cname))))?;
    if !e.subs.is_empty() && cmd_args.len() >= 2 {
        if let Some(s) = e.sub(arg(&cmd_args, 1)) {
            e = s;
        }
    }
    let argc = cmd_args.len() as i32;
    let arity = e.cmd.arity;
    if (arity > 0 && argc != arity) || argc < -arity {
        return Err(CmdError::WrongArity(e.fullname.clone()));
    }
    let res = user.state.read().check(e, &cmd_args);
    match res {
        Ok(()) => ctx.reply.ok(),
        Err(Denied::Command) => ctx.reply.bulk(
            format!(
                "This user has no permissions to run the '{}' command",
                e.fullname
            )
            .as_bytes(),
        ),
        Err(Denied::Key(i)) => ctx.reply.bulk(
            format!(
                "This user has no permissions to access the '{}' key",
                lossy(arg(&cmd_args, i))
            )
            .as_bytes(),
        ),
        Err(Denied::Channel(i)) => ctx.reply.bulk(
            format!(
                "This user has no permissions to access the '{}' channel",
                lossy(arg(&cmd_args, i))
            )
            .as_bytes(),
        ),
    }
    Ok(())
}

/// ACL GENPASS [bits]
fn acl_genpass(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let bits = match args.get(2) {
        Some(b) => crate::args::int(b)?,
        None => 256,
    };
    if bits <= 0 || bits > 4096 {
        return Err(CmdError::Other("ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096".into()));
    }
    let chars = (bits as usize).div_ceil(4);
    let bytes: Vec<u8> = (0..chars.div_ceil(2))
        .map(|_| rand::random::<u8>())
        .collect();
    let mut s = hex(&bytes);
    s.truncate(chars);
    ctx.reply.bulk(s.as_bytes());
    Ok(())
}

fn reply_selector(r: &mut Reply, s: &Selector) {
    r.bulk(b"commands");
    r.bulk(s.describe_commands().as_bytes());
    r.bulk(b"keys");
    r.bulk(s.describe_keys().as_bytes());
    r.bulk(b"channels");
    r.bulk(s.describe_channels().as_bytes());
}

/// ACL GETUSER username
fn acl_getuser(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let Some(user) = ctx.server.acl.user(&lossy(arg(args, 2))) else {
        ctx.reply.null();
        return Ok(());
    };
    let st = user.state.read();
    let r = &mut *ctx.reply;
    r.map(6);
    r.bulk(b"flags");
    let mut flags = vec![if st.enabled { "on" } else { "off" }];
    if st.nopass {
        flags.push("nopass");
    }
    match st.sanitize {
        Some(true) => flags.push("sanitize-payload"),
        Some(false) => flags.push("skip-sanitize-payload"),
        None => {}
    }
    r.set(flags.len());
    for f in flags {
        r.bulk(f.as_bytes());
    }
    r.bulk(b"passwords");
    r.array(st.passwords.len());
    for p in &st.passwords {
        r.bulk(hex(p).as_bytes());
    }
    reply_selector(r, &st.root);
    r.bulk(b"selectors");
    r.array(st.selectors.len());
    for s in &st.selectors {
        r.map(3);
        reply_selector(r, s);
    }
    Ok(())
}

/// ACL HELP
fn acl_help(ctx: &mut Ctx, args: &Args) -> CmdResult {
    if args.len() == 1 {
        return Err(CmdError::WrongArity("acl".into()));
    }
    crate::server::reply_help(
        ctx,
        "ACL",
        &[
            "CAT [<category>]",
            "    List all commands that belong to <category>, or all command categories",
            "    when no category is specified.",
            "DELUSER <username> [<username> ...]",
            "    Delete a list of users.",
            "DRYRUN <username> <command> [<arg> ...]",
            "    Returns whether the user can execute the given command without executing the command.",
            "GETUSER <username>",
            "    Get the user's details.",
            "GENPASS [<bits>]",
            "    Generate a secure 256-bit user password. The optional `bits` argument can",
            "    be used to specify a different size.",
            "LIST",
            "    Show users details in config file format.",
            "LOAD",
            "    Reload users from the ACL file.",
            "LOG [<count> | RESET]",
            "    Show the ACL log entries.",
            "SAVE",
            "    Save the current config to the ACL file.",
            "SETUSER <username> <attribute> [<attribute> ...]",
            "    Create or modify a user with the specified attributes.",
            "USERS",
            "    List all the registered usernames.",
            "WHOAMI",
            "    Return the current connection username.",
        ],
    );
    Ok(())
}

/// ACL LIST
fn acl_list(ctx: &mut Ctx, _args: &Args) -> CmdResult {
    let lines = ctx.server.acl.describe_all();
    ctx.reply.array(lines.len());
    for l in lines {
        ctx.reply.bulk(l.as_bytes());
    }
    Ok(())
}

/// ACL LOAD
fn acl_load(ctx: &mut Ctx, _args: &Args) -> CmdResult {
    if ctx.server.acl.file.read().is_empty() {
        return Err(CmdError::AclNoFile);
    }
    ctx.server
        .acl
        .load_file()
        .map_err(|e| CmdError::Other(format!("ERR {e}")))?;
    // Every user but the default one was replaced: their clients close at
    // once, as in Redis.
    kill_clients(ctx, |c| *c.user.lock() != "default");
    ctx.reply.ok();
    Ok(())
}

/// ACL SAVE
fn acl_save(ctx: &mut Ctx, _args: &Args) -> CmdResult {
    if ctx.server.acl.file.read().is_empty() {
        return Err(CmdError::AclNoFile);
    }
    ctx.server
        .acl
        .save_file()
        .map_err(|_| CmdError::Other("ERR There was an error trying to save the ACLs. Please check the server logs for more information".into()))?;
    ctx.reply.ok();
    Ok(())
}

/// ACL LOG [count | RESET]
fn acl_log(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let mut count = usize::MAX;
    if let Some(a) = args.get(2) {
        if eq(a, "reset") {
            ctx.server.acl.log.lock().clear();
            ctx.reply.ok();
            return Ok(());
        }
        count = crate::args::int(a)?.max(0) as usize;
    }
    if args.len() > 3 {
        return Err(CmdError::Syntax);
    }
    let now = damselfly_storage::now_ms();
    let log = ctx.server.acl.log.lock();
    let n = log.len().min(count);
    let r = &mut *ctx.reply;
    r.array(n);
    for l in log.iter().take(n) {
        r.map(7);
        r.bulk(b"count");
        r.int(l.count as i64);
        r.bulk(b"reason");
        r.bulk(l.reason.as_bytes());
        r.bulk(b"context");
        r.bulk(l.context.as_bytes());
        r.bulk(b"object");
        r.bulk(l.object.as_bytes());
        r.bulk(b"username");
        r.bulk(l.username.as_bytes());
        r.bulk(b"age-seconds");
        r.double(now.saturating_sub(l.created_ms) as f64 / 1000.0);
        r.bulk(b"client-info");
        r.bulk(l.client_info.as_bytes());
    }
    Ok(())
}

/// ACL SETUSER username [rule ...]
fn acl_setuser(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let name = lossy(arg(args, 2));
    if arg(args, 2).iter().any(|&c| c == b' ' || c == 0) {
        return Err(CmdError::Other(
            "ERR Usernames can't contain spaces or null characters".into(),
        ));
    }
    let ops: Vec<&[u8]> = (3..args.len()).map(|i| arg(args, i)).collect();
    ctx.server.acl.set_user(&name, &ops)?;
    kill_revoked_subscribers(ctx, &name);
    ctx.reply.ok();
    Ok(())
}

/// Closes, at once, the clients of `user` subscribed to something its
/// channel rules no longer allow (Redis 7.0 does the same).
fn kill_revoked_subscribers(ctx: &mut Ctx, user: &str) {
    let Some(u) = ctx.server.acl.user(user) else {
        return;
    };
    let ids = {
        let st = u.state.read();
        ctx.server
            .pubsub
            .subscribers_denied(user, |ch, literal| st.channel_ok(ch, literal))
    };
    if !ids.is_empty() {
        kill_clients(ctx, |c| ids.contains(&c.id));
    }
}

/// Closes the clients `f` picks now (this one after its reply).
fn kill_clients(ctx: &mut Ctx, f: impl FnMut(&crate::client::ClientInfo) -> bool) {
    if ctx.server.clients.kill_where(ctx.client.id(), f) {
        ctx.client.close_after_reply = true;
    }
}

/// ACL USERS
fn acl_users(ctx: &mut Ctx, _args: &Args) -> CmdResult {
    let names: Vec<String> = ctx.server.acl.users.read().keys().cloned().collect();
    ctx.reply.array(names.len());
    for n in names {
        ctx.reply.bulk(n.as_bytes());
    }
    Ok(())
}

/// ACL WHOAMI
fn acl_whoami(ctx: &mut Ctx, _args: &Args) -> CmdResult {
    ctx.reply.bulk(ctx.client.user.name.as_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(ops: &[&str]) -> Result<String, CmdError> {
        let acl = Acl::new();
        let ops: Vec<&[u8]> = ops.iter().map(|s| s.as_bytes()).collect();
        acl.set_user("u", &ops)?;
        Ok(acl.user("u").map(|u| u.describe()).unwrap_or_default())
    }

    #[test]
    fn rules_are_described_as_redis_does() {
        assert_eq!(
            user(&["reset"]).unwrap(),
            "user u off sanitize-payload resetchannels -@all"
        );
        assert_eq!(
            user(&["on", "nopass", "allkeys", "allchannels", "allcommands"]).unwrap(),
            "user u on nopass ~* &* +@all"
        );
        assert_eq!(
            user(&["on", "~k*", "+@all", "-flushall", "+config|get"]).unwrap(),
            "user u on ~k* resetchannels +@all -flushall"
        );
    }

    #[test]
    fn bad_rules_name_the_modifier() {
        let e = user(&["~*", "~a"]).unwrap_err().to_string();
        assert!(e.starts_with("ERR Error in ACL SETUSER modifier '~a': Adding a pattern"));
        assert!(user(&["+nosuch"])
            .unwrap_err()
            .to_string()
            .contains("Unknown command"));
        assert!(user(&["#abc"]).is_err());
        assert!(matches!(
            user(&["(~x", "+get"]),
            Err(CmdError::AclUnmatchedParen(_))
        ));
    }

    #[test]
    fn default_user_is_unrestricted_until_restricted() {
        let acl = Acl::new();
        assert!(acl.default_user().unrestricted.load(Relaxed));
        acl.set_user("default", &[b"-flushall"]).unwrap();
        assert!(!acl.default_user().unrestricted.load(Relaxed));
    }
}
