//! Pub/sub: SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE and their UNSUBSCRIBEs,
//! PUBLISH, SPUBLISH, PUBSUB, and keyspace notifications.
//!
//! Messages cross threads through each client's `Outbox`: a publisher, on
//! any worker, appends the message bytes to the subscriber's outbox under
//! its small mutex and wakes the subscriber's connection, which writes them
//! out between requests. A publisher never waits on a socket.
//!
//! Invariants:
//! - Lock order: shard locks, then the registry's locks, then an outbox's
//!   mutex. The registry never takes a shard lock (keyspace notifications
//!   publish while the command holds its shards).
//! - An outbox holds at most the client's `client-output-buffer-limit`
//!   (pubsub class for a subscribed client, normal otherwise): past the hard
//!   limit, or past the soft one for longer than its seconds, the outbox is
//!   closed, its bytes dropped, and the connection ends.
//! - A message to the client whose command produced it (PUBLISH to itself,
//!   a notification of its own write) goes into its reply buffer, before the
//!   command's reply, as Redis writes it; never through its outbox, which
//!   would put it after.

use crate::client::{Client, ClientInfo};
use crate::cmd;
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::table::{Command, Keys};
use damselfly_core::glob::glob_match;
use damselfly_protocol::{Args, Reply};
use parking_lot::{Mutex, RwLock};
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

pub static COMMANDS: &[Command] = &[
    cmd!(
        "subscribe",
        -2,
        "pubsub noscript loading stale",
        Keys::None,
        "@pubsub @slow",
        "pubsub",
        "2.0.0",
        subscribe
    ),
    cmd!(
        "unsubscribe",
        -1,
        "pubsub noscript loading stale",
        Keys::None,
        "@pubsub @slow",
        "pubsub",
        "2.0.0",
        unsubscribe
    ),
    cmd!(
        "psubscribe",
        -2,
        "pubsub noscript loading stale",
        Keys::None,
        "@pubsub @slow",
        "pubsub",
        "2.0.0",
        psubscribe
    ),
    cmd!(
        "punsubscribe",
        -1,
        "pubsub noscript loading stale",
        Keys::None,
        "@pubsub @slow",
        "pubsub",
        "2.0.0",
        punsubscribe
    ),
    cmd!(
        "ssubscribe",
        -2,
        "pubsub noscript loading stale",
        Keys::Range(1, -1, 1),
        "@pubsub @slow",
        "pubsub",
        "7.0.0",
        ssubscribe
    ),
    cmd!(
        "sunsubscribe",
        -1,
        "pubsub noscript loading stale",
        Keys::Range(1, -1, 1),
        "@pubsub @slow",
        "pubsub",
        "7.0.0",
        sunsubscribe
    ),
    cmd!(
        "publish",
        3,
        "pubsub loading stale fast may_replicate",
        Keys::None,
        "@pubsub @fast",
        "pubsub",
        "2.0.0",
        publish
    ),
    cmd!(
        "spublish",
        3,
        "pubsub loading stale fast may_replicate",
        Keys::Range(1, 1, 1),
        "@pubsub @fast",
        "pubsub",
        "7.0.0",
        spublish
    ),
    cmd!(
        "pubsub",
        -2,
        "",
        Keys::None,
        "@slow",
        "pubsub",
        "2.8.0",
        pubsub_help,
        PUBSUB_SUBCOMMANDS
    ),
];

static PUBSUB_SUBCOMMANDS: &[Command] = &[
    cmd!(
        "channels",
        -2,
        "pubsub loading stale",
        Keys::None,
        "@pubsub @slow",
        "pubsub",
        "2.8.0",
        pubsub_channels
    ),
    cmd!(
        "numsub",
        -2,
        "pubsub loading stale",
        Keys::None,
        "@pubsub @slow",
        "pubsub",
        "2.8.0",
        pubsub_numsub
    ),
    cmd!(
        "numpat",
        2,
        "pubsub loading stale",
        Keys::None,
        "@pubsub @slow",
        "pubsub",
        "2.8.0",
        pubsub_numpat
    ),
    cmd!(
        "shardchannels",
        -2,
        "pubsub loading stale",
        Keys::None,
        "@pubsub @slow",
        "pubsub",
        "7.0.0",
        pubsub_shardchannels
    ),
    cmd!(
        "shardnumsub",
        -2,
        "pubsub loading stale",
        Keys::None,
        "@pubsub @slow",
        "pubsub",
        "7.0.0",
        pubsub_shardnumsub
    ),
    cmd!(
        "help",
        2,
        "loading stale",
        Keys::None,
        "@slow",
        "pubsub",
        "6.2.0",
        pubsub_help
    ),
];

/// One `client-output-buffer-limit` class: bytes, bytes, seconds (0 = none).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limit {
    pub hard: u64,
    pub soft: u64,
    pub soft_secs: u64,
}

/// A `Limit` readable on every delivery without a lock.
#[derive(Debug, Default)]
pub struct SharedLimit([AtomicU64; 3]);

impl SharedLimit {
    pub fn get(&self) -> Limit {
        let [h, s, t] = &self.0;
        Limit {
            hard: h.load(Relaxed),
            soft: s.load(Relaxed),
            soft_secs: t.load(Relaxed),
        }
    }

    pub fn set(&self, l: Limit) {
        let [h, s, t] = &self.0;
        h.store(l.hard, Relaxed);
        s.store(l.soft, Relaxed);
        t.store(l.soft_secs, Relaxed);
    }
}

/// Bytes other threads queue for a client: pub/sub messages, keyspace
/// notifications, tracking invalidations. Its connection drains it.
#[derive(Debug, Default)]
pub struct Outbox {
    inner: Mutex<OutInner>,
    /// Something to drain (bytes, or the close): a lock-free check for the
    /// connection, done before every request.
    pending: AtomicBool,
    /// The connection took bytes not yet marked written (its own thread
    /// only reads and writes it).
    took: AtomicBool,
}

#[derive(Debug, Default)]
struct OutInner {
    buf: Vec<u8>,
    /// Bytes taken by the connection and not yet written: they count
    /// against the limit too.
    inflight: usize,
    waker: Option<Waker>,
    closed: bool,
    soft_since: Option<Instant>,
}

impl OutInner {
    /// Keeps the task's waker; the connection polls once per read, so the
    /// usual case is the same waker again, which is not cloned.
    fn register(&mut self, cx: &Context<'_>) {
        if !self.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            self.waker = Some(cx.waker().clone());
        }
    }
}

impl Outbox {
    /// Queues one message (`tag` is its first byte: `*` or `>`) unless the
    /// outbox is closed; closes it when the limit is passed.
    pub fn push(&self, tag: u8, rest: &[u8], limit: Limit) {
        self.push_parts(&[tag], rest, limit);
    }

    /// Queues bytes as they are (a replica's stream); false when the
    /// outbox is closed, now or before.
    pub fn push_raw(&self, bytes: &[u8], limit: Limit) -> bool {
        self.push_parts(&[], bytes, limit)
    }

    fn push_parts(&self, head: &[u8], rest: &[u8], limit: Limit) -> bool {
        let mut g = self.inner.lock();
        if g.closed {
            return false;
        }
        g.buf.extend_from_slice(head);
        g.buf.extend_from_slice(rest);
        let used = (g.buf.len() + g.inflight) as u64;
        let over_hard = limit.hard > 0 && used >= limit.hard;
        let over_soft = limit.soft > 0 && used >= limit.soft;
        let over_soft_long = match (over_soft, g.soft_since) {
            (false, _) => {
                g.soft_since = None;
                false
            }
            (true, None) => {
                g.soft_since = Some(Instant::now());
                false
            }
            (true, Some(t)) => t.elapsed().as_secs() > limit.soft_secs,
        };
        if over_hard || over_soft_long {
            eprintln!("Client scheduled to be closed ASAP for overcoming of output buffer limits.");
            g.closed = true;
            g.buf = Vec::new();
        }
        self.pending.store(true, Relaxed);
        if let Some(w) = g.waker.take() {
            w.wake();
        }
        !g.closed
    }

    /// Moves what is queued to `out`; false when the client must be
    /// disconnected. The bytes count as in flight until `written`.
    #[inline]
    pub fn take(&self, out: &mut Reply) -> bool {
        !self.pending.load(Relaxed) || self.take_now(out)
    }

    #[inline(never)]
    fn take_now(&self, out: &mut Reply) -> bool {
        let mut g = self.inner.lock();
        self.pending.store(false, Relaxed);
        if g.closed {
            return false;
        }
        if !g.buf.is_empty() {
            out.raw(&g.buf);
            g.inflight += g.buf.len();
            self.took.store(true, Relaxed);
            g.buf.clear();
            if g.buf.capacity() > 64 * 1024 {
                g.buf = Vec::new();
            }
        }
        true
    }

    /// The connection wrote everything it had taken.
    pub fn written(&self) {
        // Only the connection's own thread touches `took`: a load and a
        // store, no read-modify-write, on every write of the connection.
        if self.took.load(Relaxed) {
            self.took.store(false, Relaxed);
            self.inner.lock().inflight = 0;
        }
    }

    /// Ready when there is something to take.
    pub fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut g = self.inner.lock();
        if g.closed || !g.buf.is_empty() {
            return Poll::Ready(());
        }
        g.register(cx);
        Poll::Pending
    }

    /// Ready when the outbox was closed (while a write is pending).
    pub fn poll_closed(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut g = self.inner.lock();
        if g.closed {
            return Poll::Ready(());
        }
        g.register(cx);
        Poll::Pending
    }

    pub fn is_closed(&self) -> bool {
        self.inner.lock().closed
    }

    /// Makes the connection drop the client at its next request, or at
    /// once if it waits (its read side being shut may not stop a client
    /// that keeps sending).
    pub fn close(&self) {
        let mut g = self.inner.lock();
        g.closed = true;
        g.buf = Vec::new();
        self.pending.store(true, Relaxed);
        if let Some(w) = g.waker.take() {
            w.wake();
        }
    }

    /// Bytes queued or taken but not yet written.
    pub fn held(&self) -> usize {
        let g = self.inner.lock();
        g.buf.len() + g.inflight
    }
}

thread_local! {
    /// The client whose command runs on this thread (0: none), and the
    /// messages addressed to it meanwhile, spliced before its reply.
    static CURRENT: Cell<u64> = const { Cell::new(0) };
    static TO_SELF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// Messages to the current client that follow its reply (tracking
    /// invalidations).
    static TO_SELF_AFTER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// Which of the two buffers above hold anything (`SELF_BEFORE`,
    /// `SELF_AFTER`): a plain cell read after every command, where the
    /// buffers themselves (with destructors) cost a registration check.
    static OWN_PENDING: Cell<u8> = const { Cell::new(0) };
}

const SELF_BEFORE: u8 = 1;
const SELF_AFTER: u8 = 2;

/// Clears `bit` of `OWN_PENDING`, telling whether it was set.
#[inline]
fn take_pending(bit: u8) -> bool {
    OWN_PENDING.with(|p| {
        let v = p.get();
        p.set(v & !bit);
        v & bit != 0
    })
}

/// The client running a command on this thread (0: none).
pub(crate) fn current() -> u64 {
    CURRENT.with(Cell::get)
}

/// Appends what the current command queued for after its reply.
#[inline]
pub(crate) fn append_self_after(reply: &mut Reply) {
    if take_pending(SELF_AFTER) {
        append_self_after_now(reply);
    }
}

#[inline(never)]
fn append_self_after_now(reply: &mut Reply) {
    TO_SELF_AFTER.with(|b| {
        let mut b = b.borrow_mut();
        if !b.is_empty() {
            reply.raw(&b);
            b.clear();
        }
    });
}

/// Marks `id` as the client running a command on this thread.
pub(crate) fn set_current(id: u64) {
    CURRENT.with(|c| c.set(id));
}

/// Moves the messages the current command sent to its own client into
/// `reply` at `at` (before that command's reply).
#[inline]
pub(crate) fn splice_self(reply: &mut Reply, at: usize) {
    if take_pending(SELF_BEFORE) {
        splice_self_now(reply, at);
    }
}

#[inline(never)]
fn splice_self_now(reply: &mut Reply, at: usize) {
    TO_SELF.with(|b| {
        let mut b = b.borrow_mut();
        if !b.is_empty() {
            reply.insert(at, &b);
            b.clear();
        }
    });
}

/// Queues a message for `to`: `msg` is rendered with a `*` header, which
/// becomes `>` for a RESP3 client.
pub(crate) fn deliver(to: &ClientInfo, msg: &[u8], limit: Limit) {
    deliver_to(to, msg, limit, &TO_SELF, SELF_BEFORE);
}

/// Like `deliver`, but to the current client after its command's reply.
pub(crate) fn deliver_after(to: &ClientInfo, msg: &[u8], limit: Limit) {
    deliver_to(to, msg, limit, &TO_SELF_AFTER, SELF_AFTER);
}

fn deliver_to(
    to: &ClientInfo,
    msg: &[u8],
    limit: Limit,
    own: &'static std::thread::LocalKey<RefCell<Vec<u8>>>,
    bit: u8,
) {
    let tag = if to.resp.load(Relaxed) == 3 {
        b'>'
    } else {
        b'*'
    };
    let rest = msg.get(1..).unwrap_or_default();
    if CURRENT.with(Cell::get) == to.id {
        own.with(|b| {
            let mut b = b.borrow_mut();
            b.push(tag);
            b.extend_from_slice(rest);
        });
        OWN_PENDING.with(|p| p.set(p.get() | bit));
    } else {
        to.outbox.push(tag, rest, limit);
    }
}

/// Keyspace notification classes (`notify-keyspace-events`).
pub mod class {
    pub const KEYSPACE: u32 = 1 << 0;
    pub const KEYEVENT: u32 = 1 << 1;
    pub const GENERIC: u32 = 1 << 2;
    pub const STRING: u32 = 1 << 3;
    pub const LIST: u32 = 1 << 4;
    pub const SET: u32 = 1 << 5;
    pub const HASH: u32 = 1 << 6;
    pub const ZSET: u32 = 1 << 7;
    pub const EXPIRED: u32 = 1 << 8;
    pub const EVICTED: u32 = 1 << 9;
    pub const STREAM: u32 = 1 << 10;
    pub const KEY_MISS: u32 = 1 << 11;
    pub const MODULE: u32 = 1 << 12;
    pub const NEW: u32 = 1 << 13;
    /// `A`: every class but key-miss and new.
    pub const ALL: u32 =
        GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

    /// The flag characters, in the order CONFIG GET prints them.
    const CHARS: &[(char, u32)] = &[
        ('g', GENERIC),
        ('$', STRING),
        ('l', LIST),
        ('s', SET),
        ('h', HASH),
        ('z', ZSET),
        ('x', EXPIRED),
        ('e', EVICTED),
        ('t', STREAM),
        ('d', MODULE),
        ('n', NEW),
    ];

    /// Parses a flag string; None on an unknown character.
    pub fn parse(s: &str) -> Option<u32> {
        let mut flags = 0;
        for c in s.chars() {
            flags |= match c {
                'A' => ALL,
                'K' => KEYSPACE,
                'E' => KEYEVENT,
                'm' => KEY_MISS,
                c => CHARS.iter().find(|(ch, _)| *ch == c)?.1,
            };
        }
        Some(flags)
    }

    /// Redis's canonical spelling: `A` when every class of it is on (which
    /// hides `n`), then K, E, m.
    pub fn render(flags: u32) -> String {
        let mut s = String::new();
        if flags & ALL == ALL {
            s.push('A');
        } else {
            s.extend(
                CHARS
                    .iter()
                    .filter(|(_, f)| flags & f != 0)
                    .map(|(c, _)| *c),
            );
        }
        for (c, f) in [('K', KEYSPACE), ('E', KEYEVENT), ('m', KEY_MISS)] {
            if flags & f != 0 {
                s.push(c);
            }
        }
        s
    }

    /// The class Redis fires an event in (0: never notified).
    pub fn of(event: &str) -> u32 {
        match event {
            "expired" => EXPIRED,
            "evicted" => EVICTED,
            "new" => NEW,
            "keymiss" => KEY_MISS,
            "set" | "setrange" | "incrby" | "incrbyfloat" | "append" | "setbit" | "pfadd" => STRING,
            "georadiusstore" | "geosearchstore" => ZSET,
            // PFCOUNT's cached cardinality: a change for WATCH and
            // tracking, never notified.
            "pfcount" => 0,
            "lpush" | "rpush" | "lpop" | "rpop" | "linsert" | "lset" | "lrem" | "ltrim"
            | "sortstore" | "lmove" => LIST,
            "sadd" | "srem" | "spop" | "sinterstore" | "sunionstore" | "sdiffstore" | "smove" => {
                SET
            }
            "hset" | "hdel" | "hincrby" | "hincrbyfloat" => HASH,
            e if e.starts_with('z') => ZSET,
            e if e.starts_with('x') => STREAM,
            _ => GENERIC,
        }
    }
}

type Subscribers = Vec<Arc<ClientInfo>>;

/// Who listens to what, shared by every thread.
#[derive(Default)]
pub struct PubSub {
    channels: RwLock<HashMap<Vec<u8>, Subscribers>>,
    shard_channels: RwLock<HashMap<Vec<u8>, Subscribers>>,
    /// In the order patterns were first subscribed.
    patterns: RwLock<Vec<(Vec<u8>, Subscribers)>>,
    /// `notify-keyspace-events`, parsed.
    pub notify: AtomicU32,
    pub limit_normal: SharedLimit,
    pub limit_pubsub: SharedLimit,
    /// The replica class, for the replication stream.
    pub limit_replica: SharedLimit,
    /// Messages delivered by PUBLISH/SPUBLISH and notifications.
    pub published: AtomicU64,
}

impl PubSub {
    /// Ids of the clients logged in as `user` holding a subscription that
    /// `allowed(channel, literal)` refuses: channels and shard channels are
    /// matched against the user's patterns, a pattern subscription only by
    /// an identical pattern (Redis's rule).
    pub fn subscribers_denied(
        &self,
        user: &str,
        allowed: impl Fn(&[u8], bool) -> bool,
    ) -> Vec<u64> {
        let mut out = Vec::new();
        let mut scan = |subs: &Subscribers, ch: &[u8], literal: bool| {
            for c in subs {
                if !out.contains(&c.id) && *c.user.lock() == user && !allowed(ch, literal) {
                    out.push(c.id);
                }
            }
        };
        for (ch, subs) in self.channels.read().iter() {
            scan(subs, ch, false);
        }
        for (ch, subs) in self.shard_channels.read().iter() {
            scan(subs, ch, false);
        }
        for (pat, subs) in self.patterns.read().iter() {
            scan(subs, pat, true);
        }
        out
    }
}

/// The three kinds of subscription.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Channel,
    Pattern,
    Shard,
}

impl Kind {
    fn names(self) -> (&'static [u8], &'static [u8]) {
        match self {
            Kind::Channel => (b"subscribe", b"unsubscribe"),
            Kind::Pattern => (b"psubscribe", b"punsubscribe"),
            Kind::Shard => (b"ssubscribe", b"sunsubscribe"),
        }
    }

    fn set(self, subs: &mut Subscriptions) -> &mut HashSet<Vec<u8>> {
        match self {
            Kind::Channel => &mut subs.channels,
            Kind::Pattern => &mut subs.patterns,
            Kind::Shard => &mut subs.shard,
        }
    }

    /// The count a (un)subscribe confirmation reports: shard channels are
    /// counted apart from the rest, as Redis 7.0 does.
    fn count(self, subs: &Subscriptions) -> usize {
        match self {
            Kind::Shard => subs.shard.len(),
            _ => subs.channels.len() + subs.patterns.len(),
        }
    }
}

/// A client's own subscriptions.
#[derive(Default)]
pub struct Subscriptions {
    pub channels: HashSet<Vec<u8>>,
    pub patterns: HashSet<Vec<u8>>,
    pub shard: HashSet<Vec<u8>>,
}

impl Subscriptions {
    pub fn total(&self) -> usize {
        self.channels.len() + self.patterns.len() + self.shard.len()
    }
}

fn remove_client(list: &mut Subscribers, id: u64) {
    list.retain(|c| c.id != id);
}

impl PubSub {
    fn add(&self, kind: Kind, name: &[u8], who: &Arc<ClientInfo>) {
        let map = match kind {
            Kind::Channel => &self.channels,
            Kind::Shard => &self.shard_channels,
            Kind::Pattern => {
                let mut pats = self.patterns.write();
                match pats.iter_mut().find(|(p, _)| p == name) {
                    Some((_, list)) => list.push(who.clone()),
                    None => pats.push((name.to_vec(), vec![who.clone()])),
                }
                return;
            }
        };
        map.write()
            .entry(name.to_vec())
            .or_default()
            .push(who.clone());
    }

    fn remove(&self, kind: Kind, name: &[u8], id: u64) {
        let map = match kind {
            Kind::Channel => &self.channels,
            Kind::Shard => &self.shard_channels,
            Kind::Pattern => {
                let mut pats = self.patterns.write();
                if let Some(i) = pats.iter().position(|(p, _)| p == name) {
                    remove_client(&mut pats[i].1, id);
                    if pats[i].1.is_empty() {
                        pats.remove(i);
                    }
                }
                return;
            }
        };
        let mut map = map.write();
        if let Some(list) = map.get_mut(name) {
            remove_client(list, id);
            if list.is_empty() {
                map.remove(name);
            }
        }
    }

    pub(crate) fn limit_for(&self, c: &ClientInfo) -> Limit {
        if c.subscriptions.load(Relaxed) > 0 {
            self.limit_pubsub.get()
        } else {
            self.limit_normal.get()
        }
    }

    /// PUBLISH: delivers to the channel's subscribers, then to every
    /// matching pattern's; returns how many received it.
    pub fn publish(&self, channel: &[u8], msg: &[u8]) -> usize {
        let mut n = 0;
        let mut buf = Reply::new();
        {
            let map = self.channels.read();
            if let Some(list) = map.get(channel) {
                message(&mut buf, &[b"message", channel, msg]);
                for c in list {
                    deliver(c, buf.as_bytes(), self.limit_for(c));
                }
                n += list.len();
            }
        }
        let pats = self.patterns.read();
        for (pat, list) in pats.iter() {
            if glob_match(pat, channel, false) {
                buf.clear();
                message(&mut buf, &[b"pmessage", pat, channel, msg]);
                for c in list {
                    deliver(c, buf.as_bytes(), self.limit_for(c));
                }
                n += list.len();
            }
        }
        self.published.fetch_add(n as u64, Relaxed);
        n
    }

    /// SPUBLISH: shard channel subscribers only.
    pub fn spublish(&self, channel: &[u8], msg: &[u8]) -> usize {
        let map = self.shard_channels.read();
        let Some(list) = map.get(channel) else {
            return 0;
        };
        let mut buf = Reply::new();
        message(&mut buf, &[b"smessage", channel, msg]);
        for c in list {
            deliver(c, buf.as_bytes(), self.limit_for(c));
        }
        self.published.fetch_add(list.len() as u64, Relaxed);
        list.len()
    }

    /// Channels with subscribers (INFO pubsub_channels).
    pub fn channel_count(&self) -> usize {
        self.channels.read().len()
    }

    pub fn shard_channel_count(&self) -> usize {
        self.shard_channels.read().len()
    }

    pub fn pattern_count(&self) -> usize {
        self.patterns.read().len()
    }

    /// Whether anyone listens at all (cheap test before rendering a
    /// notification).
    fn any_listener(&self) -> bool {
        !self.patterns.read().is_empty() || !self.channels.read().is_empty()
    }
}

/// A message as an array of bulk strings (RESP2 header; `deliver` turns it
/// into a push for RESP3 clients).
fn message(buf: &mut Reply, parts: &[&[u8]]) {
    buf.array(parts.len());
    for p in parts {
        buf.bulk(p);
    }
}

impl PubSub {
    /// Whether events of `class` are notified at all.
    pub fn notifies(&self, class: u32) -> bool {
        let flags = self.notify.load(Relaxed);
        flags & class != 0 && flags & (class::KEYSPACE | class::KEYEVENT) != 0
    }

    /// A write-door event as keyspace notifications, as configured.
    #[inline]
    pub fn notify_event(&self, db: usize, key: &[u8], event: &'static str) {
        let flags = self.notify.load(Relaxed);
        if flags & (class::KEYSPACE | class::KEYEVENT) != 0 {
            self.notify_event_now(flags, db, key, event);
        }
    }

    #[inline(never)]
    fn notify_event_now(&self, flags: u32, db: usize, key: &[u8], event: &'static str) {
        if flags & class::of(event) == 0 || !self.any_listener() {
            return;
        }
        if flags & class::KEYSPACE != 0 {
            let mut ch = format!("__keyspace@{db}__:").into_bytes();
            ch.extend_from_slice(key);
            self.publish(&ch, event.as_bytes());
        }
        if flags & class::KEYEVENT != 0 {
            let ch = format!("__keyevent@{db}__:{event}");
            self.publish(ch.as_bytes(), key);
        }
    }
}

/// Records the client's subscription counts where CLIENT LIST reads them.
fn publish_counts(client: &Client) {
    let s = &client.subs;
    let info = &client.info;
    info.sub.store(s.channels.len(), Relaxed);
    info.psub.store(s.patterns.len(), Relaxed);
    info.ssub.store(s.shard.len(), Relaxed);
    info.subscriptions.store(s.total(), Relaxed);
}

fn confirm(reply: &mut Reply, verb: &[u8], name: Option<&[u8]>, count: usize) {
    reply.push(3);
    reply.bulk(verb);
    match name {
        Some(n) => reply.bulk(n),
        None => reply.null(),
    }
    reply.int(count as i64);
}

fn do_subscribe(ctx: &mut Ctx, args: &Args, kind: Kind) -> CmdResult {
    let ps = &ctx.server.pubsub;
    let info = ctx.client.info.clone();
    for name in args.iter().skip(1) {
        if kind.set(&mut ctx.client.subs).insert(name.to_vec()) {
            ps.add(kind, name, &info);
        }
        let count = kind.count(&ctx.client.subs);
        confirm(ctx.reply, kind.names().0, Some(name), count);
    }
    publish_counts(ctx.client);
    Ok(())
}

fn do_unsubscribe(ctx: &mut Ctx, args: &Args, kind: Kind) -> CmdResult {
    let names: Vec<Vec<u8>> = if args.len() > 1 {
        args.iter().skip(1).map(<[u8]>::to_vec).collect()
    } else {
        kind.set(&mut ctx.client.subs).iter().cloned().collect()
    };
    let verb = kind.names().1;
    if names.is_empty() {
        let count = kind.count(&ctx.client.subs);
        confirm(ctx.reply, verb, None, count);
    }
    let ps = &ctx.server.pubsub;
    let id = ctx.client.id();
    for name in &names {
        if kind.set(&mut ctx.client.subs).remove(name) {
            ps.remove(kind, name, id);
        }
        let count = kind.count(&ctx.client.subs);
        confirm(ctx.reply, verb, Some(name), count);
    }
    publish_counts(ctx.client);
    Ok(())
}

/// Drops every subscription of a client without replying (RESET, the
/// connection's end).
pub fn unsubscribe_all(server: &crate::state::Server, client: &mut Client) {
    let id = client.id();
    for kind in [Kind::Channel, Kind::Pattern, Kind::Shard] {
        for name in std::mem::take(kind.set(&mut client.subs)) {
            server.pubsub.remove(kind, &name, id);
        }
    }
    publish_counts(client);
}

/// SUBSCRIBE channel [channel ...]
fn subscribe(ctx: &mut Ctx, args: &Args) -> CmdResult {
    do_subscribe(ctx, args, Kind::Channel)
}

/// UNSUBSCRIBE [channel [channel ...]]
fn unsubscribe(ctx: &mut Ctx, args: &Args) -> CmdResult {
    do_unsubscribe(ctx, args, Kind::Channel)
}

/// PSUBSCRIBE pattern [pattern ...]
fn psubscribe(ctx: &mut Ctx, args: &Args) -> CmdResult {
    do_subscribe(ctx, args, Kind::Pattern)
}

/// PUNSUBSCRIBE [pattern [pattern ...]]
fn punsubscribe(ctx: &mut Ctx, args: &Args) -> CmdResult {
    do_unsubscribe(ctx, args, Kind::Pattern)
}

/// SSUBSCRIBE shardchannel [shardchannel ...]
fn ssubscribe(ctx: &mut Ctx, args: &Args) -> CmdResult {
    // Inside EXEC the client is one that cannot block; Redis 7.0 excuses
    // SUBSCRIBE from that rule but not SSUBSCRIBE.
    if ctx.client.in_exec {
        return Err(CmdError::DenyBlocking("SSUBSCRIBE"));
    }
    do_subscribe(ctx, args, Kind::Shard)
}

/// SUNSUBSCRIBE [shardchannel [shardchannel ...]]
fn sunsubscribe(ctx: &mut Ctx, args: &Args) -> CmdResult {
    do_unsubscribe(ctx, args, Kind::Shard)
}

/// PUBLISH channel message
fn publish(ctx: &mut Ctx, args: &Args) -> CmdResult {
    do_publish(ctx, args, PubSub::publish)
}

/// SPUBLISH shardchannel message
fn spublish(ctx: &mut Ctx, args: &Args) -> CmdResult {
    do_publish(ctx, args, PubSub::spublish)
}

fn do_publish(ctx: &mut Ctx, args: &Args, f: fn(&PubSub, &[u8], &[u8]) -> usize) -> CmdResult {
    let (channel, msg) = (
        args.get(1).unwrap_or_default(),
        args.get(2).unwrap_or_default(),
    );
    let n = f(&ctx.server.pubsub, channel, msg);
    ctx.reply.int(n as i64);
    Ok(())
}

fn reply_names(ctx: &mut Ctx, args: &Args, map: &RwLock<HashMap<Vec<u8>, Subscribers>>) {
    let pat = args.get(2);
    let names: Vec<Vec<u8>> = map
        .read()
        .keys()
        .filter(|k| pat.is_none_or(|p| glob_match(p, k, false)))
        .cloned()
        .collect();
    ctx.reply.array(names.len());
    for n in &names {
        ctx.reply.bulk(n);
    }
}

fn reply_numsub(ctx: &mut Ctx, args: &Args, map: &RwLock<HashMap<Vec<u8>, Subscribers>>) {
    let counts: Vec<(&[u8], usize)> = {
        let map = map.read();
        args.iter()
            .skip(2)
            .map(|c| (c, map.get(c).map_or(0, Vec::len)))
            .collect()
    };
    ctx.reply.array(counts.len() * 2);
    for (c, n) in counts {
        ctx.reply.bulk(c);
        ctx.reply.int(n as i64);
    }
}

fn check_pattern_arity(args: &Args) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::SubcommandSyntax {
            sub: args.get(1).unwrap_or_default().to_vec(),
            cmd: "PUBSUB".into(),
        });
    }
    Ok(())
}

/// PUBSUB CHANNELS [pattern]
fn pubsub_channels(ctx: &mut Ctx, args: &Args) -> CmdResult {
    names_or_counts(ctx, args, false, false)
}

/// PUBSUB SHARDCHANNELS [pattern]
fn pubsub_shardchannels(ctx: &mut Ctx, args: &Args) -> CmdResult {
    names_or_counts(ctx, args, true, false)
}

/// PUBSUB NUMSUB [channel [channel ...]]
fn pubsub_numsub(ctx: &mut Ctx, args: &Args) -> CmdResult {
    names_or_counts(ctx, args, false, true)
}

/// PUBSUB SHARDNUMSUB [shardchannel [shardchannel ...]]
fn pubsub_shardnumsub(ctx: &mut Ctx, args: &Args) -> CmdResult {
    names_or_counts(ctx, args, true, true)
}

fn names_or_counts(ctx: &mut Ctx, args: &Args, shard: bool, counts: bool) -> CmdResult {
    let ps = &ctx.server.pubsub;
    let map = if shard {
        &ps.shard_channels
    } else {
        &ps.channels
    };
    if counts {
        reply_numsub(ctx, args, map);
    } else {
        check_pattern_arity(args)?;
        reply_names(ctx, args, map);
    }
    Ok(())
}

/// PUBSUB NUMPAT
fn pubsub_numpat(ctx: &mut Ctx, _args: &Args) -> CmdResult {
    ctx.reply.int(ctx.server.pubsub.pattern_count() as i64);
    Ok(())
}

/// PUBSUB HELP
fn pubsub_help(ctx: &mut Ctx, args: &Args) -> CmdResult {
    if args.len() == 1 {
        return Err(CmdError::WrongArity("pubsub".into()));
    }
    crate::server::reply_help(
        ctx,
        "PUBSUB",
        &[
            "CHANNELS [<pattern>]",
            "    Return the currently active channels matching a <pattern> (default: '*').",
            "NUMPAT",
            "    Return number of subscriptions to patterns.",
            "NUMSUB [<channel> ...]",
            "    Return the number of subscribers for the specified channels, excluding",
            "    pattern subscriptions(default: no channels).",
            "SHARDCHANNELS [<pattern>]",
            "    Return the currently active shard level channels matching a <pattern> (default: '*').",
            "SHARDNUMSUB [<shardchannel> ...]",
            "    Return the number of subscribers for the specified shard level channel(s)",
        ],
    );
    Ok(())
}

/// Commands a RESP2 client may run while subscribed.
pub(crate) fn allowed_when_subscribed(name: &str) -> bool {
    matches!(
        name,
        "subscribe"
            | "unsubscribe"
            | "psubscribe"
            | "punsubscribe"
            | "ssubscribe"
            | "sunsubscribe"
            | "ping"
            | "quit"
            | "reset"
    )
}

/// Commands whose reply is a push confirmation: CLIENT REPLY OFF/SKIP do
/// not silence them.
pub(crate) fn confirms(name: &str) -> bool {
    allowed_when_subscribed(name) && !matches!(name, "ping" | "quit" | "reset")
}

/// Checks a `notify-keyspace-events` value.
pub fn parse_notify(value: &str) -> Result<u32, String> {
    class::parse(value)
        .ok_or_else(|| "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbox_closes_past_the_hard_limit_counting_bytes_in_flight() {
        let o = Outbox::default();
        let limit = Limit {
            hard: 10,
            soft: 0,
            soft_secs: 0,
        };
        o.push(b'*', b"1234", limit);
        let mut out = Reply::new();
        assert!(o.take(&mut out));
        assert_eq!(out.as_bytes(), b"*1234");
        // Five bytes in flight plus five queued reach the limit.
        o.push(b'>', b"abcd", limit);
        assert!(o.is_closed());
        assert!(!o.take(&mut out));
    }

    #[test]
    fn outbox_written_frees_the_in_flight_bytes() {
        let o = Outbox::default();
        let limit = Limit {
            hard: 10,
            soft: 0,
            soft_secs: 0,
        };
        let mut out = Reply::new();
        o.push(b'*', b"1234", limit);
        assert!(o.take(&mut out));
        o.written();
        o.push(b'*', b"1234", limit);
        assert!(!o.is_closed());
    }

    #[test]
    fn soft_limit_allows_a_burst_shorter_than_its_seconds() {
        let o = Outbox::default();
        let limit = Limit {
            hard: 0,
            soft: 4,
            soft_secs: 60,
        };
        o.push(b'*', b"1234", limit);
        o.push(b'*', b"1234", limit);
        assert!(!o.is_closed());
    }

    #[test]
    fn notify_flags_render_as_redis_does() {
        for (given, canonical) in [
            ("gKE", "gKE"),
            ("$lshzxeKE", "$lshzxeKE"),
            ("KA", "AK"),
            ("AKEnm", "AKEm"),
            ("gtdn", "gtdn"),
            ("", ""),
        ] {
            let flags = class::parse(given).unwrap_or(u32::MAX);
            assert_eq!(class::render(flags), canonical, "{given}");
        }
        assert!(class::parse("Z").is_none());
    }
}
