//! Client-side caching: CLIENT TRACKING, CACHING, GETREDIR, TRACKINGINFO
//! and the invalidation messages.
//!
//! Default mode: a read-only command run by a tracking client records
//! (key → client id) in one process-wide table; the write door's event on
//! that key removes the entry and sends each recorded client an
//! `invalidate` message. BCAST mode: the write door records the key under
//! every matching registered prefix, and the pending keys go out, one
//! message per prefix and client, after the command (or expiry pass) that
//! changed them. Messages travel like pub/sub messages (`pubsub::deliver`):
//! a RESP3 push to the client, or to its REDIRECT target (a RESP2 target
//! gets them as `__redis__:invalidate` messages while it is subscribed).
//!
//! Invariants:
//! - Lock order: shard locks, then the tracking table, then outboxes.
//! - With no tracking client the write door's check is one atomic load.
//! - An invalidation to the client whose command caused it follows that
//!   command's reply (after the whole EXEC), as Redis 7.0 sends it.

use crate::args::{eq, int};
use crate::client::ClientInfo;
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::pubsub::{deliver_after, PubSub};
use crate::table::Entry;
use damselfly_protocol::{Args, Reply};
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Weak};

/// `ClientInfo::tracking_flags` bits.
pub const FLAG_ON: usize = 1;
pub const FLAG_BROKEN: usize = 2;
pub const FLAG_BCAST: usize = 4;

/// A tracking client's mode, as its own connection sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mode {
    pub bcast: bool,
    pub optin: bool,
    pub optout: bool,
    pub noloop: bool,
}

struct Tracker {
    info: Arc<ClientInfo>,
    mode: Mode,
    /// 0: no redirection.
    redirect: u64,
    redirect_to: Weak<ClientInfo>,
    broken: bool,
    prefixes: Vec<Vec<u8>>,
}

#[derive(Default)]
struct Prefix {
    clients: HashSet<u64>,
    /// Changed keys not yet sent, each with the client that changed it
    /// (0: several, or none).
    pending: BTreeMap<Vec<u8>, u64>,
}

#[derive(Default)]
struct Inner {
    trackers: HashMap<u64, Tracker>,
    table: HashMap<Vec<u8>, HashSet<u64>>,
    items: usize,
    prefixes: BTreeMap<Vec<u8>, Prefix>,
}

/// The process-wide tracking state.
#[derive(Default)]
pub struct Tracking {
    /// Clients with tracking on (INFO tracking_clients).
    pub clients_on: AtomicUsize,
    /// BCAST keys wait to be sent.
    pending: AtomicBool,
    /// `tracking-table-max-keys` (0: no limit).
    pub max_keys: AtomicU64,
    /// Keys in the table, readable without the lock.
    keys: AtomicUsize,
    inner: Mutex<Inner>,
}

/// What an invalidation message carries.
enum Payload<'a> {
    Keys(&'a [&'a [u8]]),
    /// FLUSHDB/FLUSHALL: every key (a null).
    All,
}

impl Tracker {
    /// Sends one invalidation to the client or its redirection target.
    fn send(&mut self, payload: &Payload, limit_of: &dyn Fn(&ClientInfo) -> crate::pubsub::Limit) {
        let own_resp3 = self.info.resp.load(Relaxed) == 3;
        let target = if self.redirect == 0 {
            self.info.clone()
        } else if let Some(t) = self.redirect_to.upgrade().filter(|t| !t.gone.load(Relaxed)) {
            t
        } else {
            self.broken = true;
            self.info.tracking_flags.fetch_or(FLAG_BROKEN, Relaxed);
            if own_resp3 {
                let mut m = Reply::new();
                m.array(2);
                m.bulk(b"tracking-redir-broken");
                m.int(self.redirect as i64);
                deliver_after(&self.info, m.as_bytes(), limit_of(&self.info));
            }
            return;
        };
        let mut m = Reply::new();
        m.set_resp3(own_resp3);
        if target.resp.load(Relaxed) == 3 {
            m.array(2);
            m.bulk(b"invalidate");
        } else if self.redirect != 0 && target.subscriptions.load(Relaxed) > 0 {
            m.array(3);
            m.bulk(b"message");
            m.bulk(b"__redis__:invalidate");
        } else {
            // A RESP2 connection cannot take a push.
            return;
        }
        match payload {
            Payload::Keys(keys) => {
                m.array(keys.len());
                for k in keys.iter() {
                    m.bulk(k);
                }
            }
            Payload::All => m.null(),
        }
        deliver_after(&target, m.as_bytes(), limit_of(&target));
    }
}

impl Tracking {
    fn limit_of(ps: &PubSub) -> impl Fn(&ClientInfo) -> crate::pubsub::Limit + '_ {
        move |c| ps.limit_for(c)
    }

    /// The write door's event for `key`, changed by client `by` (0: none).
    /// Whether any client tracks or any key is tracked (else a write has
    /// nobody to invalidate).
    pub fn active(&self) -> bool {
        self.clients_on.load(Relaxed) != 0 || self.keys.load(Relaxed) != 0
    }

    pub fn invalidate(&self, ps: &PubSub, key: &[u8], by: u64, expired: bool) {
        if !self.active() {
            return;
        }
        let limit_of = Self::limit_of(ps);
        let mut inner = self.inner.lock();
        let inner = &mut *inner;
        if let Some(ids) = inner.table.remove(key) {
            inner.items -= ids.len();
            self.keys.store(inner.table.len(), Relaxed);
            for id in ids {
                let Some(t) = inner.trackers.get_mut(&id) else {
                    continue;
                };
                if t.mode.bcast || (t.mode.noloop && id == by) {
                    continue;
                }
                t.send(&Payload::Keys(&[key]), &limit_of);
            }
        }
        // Expiry is nobody's change: NOLOOP clients hear of it too.
        let by = if expired { 0 } else { by };
        for (prefix, p) in inner.prefixes.iter_mut() {
            if key.starts_with(prefix) {
                p.pending
                    .entry(key.to_vec())
                    .and_modify(|who| {
                        if *who != by {
                            *who = 0;
                        }
                    })
                    .or_insert(by);
                self.pending.store(true, Relaxed);
            }
        }
    }

    /// Sends the BCAST keys changed since the last call: one message per
    /// prefix and client.
    #[inline]
    pub fn flush_bcast(&self, ps: &PubSub) {
        // A plain load first: this runs after every command, and a swap
        // would be a locked instruction on a shared line each time.
        if self.pending.load(Relaxed) && self.pending.swap(false, Relaxed) {
            self.flush_bcast_now(ps);
        }
    }

    #[inline(never)]
    fn flush_bcast_now(&self, ps: &PubSub) {
        let limit_of = Self::limit_of(ps);
        let mut inner = self.inner.lock();
        let inner = &mut *inner;
        for p in inner.prefixes.values_mut() {
            if p.pending.is_empty() {
                continue;
            }
            let pending = std::mem::take(&mut p.pending);
            for id in &p.clients {
                let Some(t) = inner.trackers.get_mut(id) else {
                    continue;
                };
                let keys: Vec<&[u8]> = pending
                    .iter()
                    .filter(|(_, by)| !(t.mode.noloop && **by == *id))
                    .map(|(k, _)| k.as_slice())
                    .collect();
                if !keys.is_empty() {
                    t.send(&Payload::Keys(&keys), &limit_of);
                }
            }
        }
    }

    /// FLUSHDB/FLUSHALL: every tracking client hears that everything
    /// changed, and the table starts empty.
    pub fn flushed(&self, ps: &PubSub) {
        if self.clients_on.load(Relaxed) == 0 && self.keys.load(Relaxed) == 0 {
            return;
        }
        let limit_of = Self::limit_of(ps);
        let mut inner = self.inner.lock();
        for t in inner.trackers.values_mut() {
            t.send(&Payload::All, &limit_of);
        }
        inner.table.clear();
        inner.items = 0;
        self.keys.store(0, Relaxed);
    }

    /// Records that client `id` read `keys`, then keeps the table within
    /// `tracking-table-max-keys`.
    fn remember(&self, ps: &PubSub, id: u64, keys: &[&[u8]]) {
        {
            let mut inner = self.inner.lock();
            for k in keys {
                if inner.table.entry(k.to_vec()).or_default().insert(id) {
                    inner.items += 1;
                }
            }
            self.keys.store(inner.table.len(), Relaxed);
        }
        self.enforce_limit(ps);
    }

    /// Evicts keys past `tracking-table-max-keys`, invalidating them (the
    /// periodic tick calls this too, as Redis's cron does).
    pub fn enforce_limit(&self, ps: &PubSub) {
        let max = self.max_keys.load(Relaxed) as usize;
        if max == 0 || self.keys.load(Relaxed) <= max {
            return;
        }
        let limit_of = Self::limit_of(ps);
        let mut inner = self.inner.lock();
        let inner = &mut *inner;
        while inner.table.len() > max {
            let Some(key) = inner.table.keys().next().cloned() else {
                break;
            };
            let ids = inner.table.remove(&key).unwrap_or_default();
            inner.items -= ids.len();
            for id in ids {
                if let Some(t) = inner.trackers.get_mut(&id) {
                    if !t.mode.bcast {
                        t.send(&Payload::Keys(&[&key]), &limit_of);
                    }
                }
            }
        }
        self.keys.store(inner.table.len(), Relaxed);
    }

    /// Turns tracking off for `id` (CLIENT TRACKING OFF, RESET, its end).
    /// Its keys stay in the table until they change (as in Redis).
    pub fn disable(&self, id: u64) {
        let mut inner = self.inner.lock();
        let Some(t) = inner.trackers.remove(&id) else {
            return;
        };
        t.info.redir.store(-1, Relaxed);
        t.info.tracking_flags.store(0, Relaxed);
        self.clients_on.fetch_sub(1, Relaxed);
        for p in &t.prefixes {
            if let Some(entry) = inner.prefixes.get_mut(p) {
                entry.clients.remove(&id);
                if entry.clients.is_empty() {
                    inner.prefixes.remove(p);
                }
            }
        }
    }

    /// INFO: (tracking_total_keys, tracking_total_items, tracking_total_prefixes).
    pub fn totals(&self) -> (usize, usize, usize) {
        let inner = self.inner.lock();
        (inner.table.len(), inner.items, inner.prefixes.len())
    }
}

/// After a read-only command: remember its keys for a tracking client in
/// default mode (OPTIN only after CLIENT CACHING YES, OPTOUT unless after
/// CLIENT CACHING NO).
pub(crate) fn after_read(ctx: &mut Ctx, e: &Entry, args: &Args) {
    // The read-only script commands are not reads themselves: what their
    // script reads decides (Redis's rule).
    if matches!(e.cmd.name, "eval_ro" | "evalsha_ro" | "fcall_ro") {
        return;
    }
    if ctx.client.in_script {
        SCRIPT_READ.with(|r| r.set(true));
        return;
    }
    let Some(mode) = ctx.client.tracking else {
        return;
    };
    if mode.bcast || (mode.optin && !ctx.client.caching) || (mode.optout && ctx.client.caching) {
        return;
    }
    let keys: Vec<&[u8]> = e
        .key_positions(args.len(), |i| args.get(i))
        .into_iter()
        .filter_map(|i| args.get(i))
        .collect();
    if !keys.is_empty() {
        let s = ctx.server;
        s.tracking.remember(&s.pubsub, ctx.client.id(), &keys);
    }
}

thread_local! {
    /// A command run by the script on this thread was a read.
    static SCRIPT_READ: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// After a script: if it ran a read-only command, its caller (when
/// tracking in default mode) tracks every key the script declared.
pub(crate) fn after_script(
    server: &crate::state::Server,
    caller: u64,
    keys: crate::scripting::WordList<'_>,
) {
    if !SCRIPT_READ.with(|r| r.replace(false)) || keys.is_empty() {
        return;
    }
    let t = &server.tracking;
    let default_mode = t
        .inner
        .lock()
        .trackers
        .get(&caller)
        .is_some_and(|tr| !tr.mode.bcast);
    if default_mode {
        let keys: Vec<&[u8]> = keys.iter().collect();
        t.remember(&server.pubsub, caller, &keys);
    }
}

fn overlap(a: &[u8], b: &[u8]) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX p ...] [BCAST] [OPTIN]
/// [OPTOUT] [NOLOOP]
pub(crate) fn client_tracking(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let mut mode = Mode::default();
    let mut redirect: Option<Arc<ClientInfo>> = None;
    let mut redirect_id = 0u64;
    let mut prefixes: Vec<&[u8]> = Vec::new();
    let mut i = 3;
    while i < args.len() {
        let opt = args.get(i).unwrap_or_default();
        let more = i + 1 < args.len();
        if eq(opt, "redirect") && more {
            i += 1;
            if redirect_id != 0 {
                return Err(CmdError::Other(
                    "ERR A client can only redirect to a single other client".into(),
                ));
            }
            let id = int(args.get(i).unwrap_or_default())?;
            let target = u64::try_from(id)
                .ok()
                .and_then(|id| ctx.server.clients.get(id))
                .ok_or(CmdError::Other(
                    "ERR The client ID you want redirect to does not exist".into(),
                ))?;
            redirect_id = target.id;
            redirect = Some(target);
        } else if eq(opt, "bcast") {
            mode.bcast = true;
        } else if eq(opt, "optin") {
            mode.optin = true;
        } else if eq(opt, "optout") {
            mode.optout = true;
        } else if eq(opt, "noloop") {
            mode.noloop = true;
        } else if eq(opt, "prefix") && more {
            i += 1;
            prefixes.push(args.get(i).unwrap_or_default());
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    let on_off = args.get(2).unwrap_or_default();
    let id = ctx.client.id();
    let tracking = &ctx.server.tracking;
    if eq(on_off, "off") {
        ctx.client.caching = false;
        if ctx.client.tracking.take().is_some() {
            tracking.disable(id);
        }
        ctx.reply.ok();
        return Ok(());
    }
    if !eq(on_off, "on") {
        return Err(CmdError::Syntax);
    }
    let err = |s: &str| Err(CmdError::Other(format!("ERR {s}")));
    if !mode.bcast && !prefixes.is_empty() {
        return err("PREFIX option requires BCAST mode to be enabled");
    }
    let old = ctx.client.tracking;
    if old.is_some_and(|o| o.bcast != mode.bcast) {
        return err("You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.");
    }
    if mode.bcast && (mode.optin || mode.optout) {
        return err("OPTIN and OPTOUT are not compatible with BCAST");
    }
    if mode.optin && mode.optout {
        return err("You can't specify both OPTIN mode and OPTOUT mode");
    }
    if old.is_some_and(|o| (mode.optin && o.optout) || (mode.optout && o.optin)) {
        return err("You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.");
    }
    let mut inner = tracking.inner.lock();
    let existing: Vec<Vec<u8>> = inner
        .trackers
        .get(&id)
        .map(|t| t.prefixes.clone())
        .unwrap_or_default();
    if mode.bcast {
        for (j, p) in prefixes.iter().enumerate() {
            if let Some(e) = existing.iter().find(|e| overlap(e, p)) {
                return err(&format!(
                    "Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.",
                    String::from_utf8_lossy(p),
                    String::from_utf8_lossy(e)
                ));
            }
            if let Some(o) = prefixes
                .iter()
                .enumerate()
                .find(|(k, o)| *k != j && overlap(o, p))
            {
                return err(&format!(
                    "Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.",
                    String::from_utf8_lossy(p),
                    String::from_utf8_lossy(o.1)
                ));
            }
        }
    }
    if old.is_none() {
        tracking.clients_on.fetch_add(1, Relaxed);
    }
    let mut new_prefixes: Vec<Vec<u8>> = prefixes.iter().map(|p| p.to_vec()).collect();
    if mode.bcast && new_prefixes.is_empty() {
        new_prefixes.push(Vec::new());
    }
    for p in &new_prefixes {
        inner
            .prefixes
            .entry(p.clone())
            .or_default()
            .clients
            .insert(id);
    }
    let t = inner.trackers.entry(id).or_insert_with(|| Tracker {
        info: ctx.client.info.clone(),
        mode,
        redirect: 0,
        redirect_to: Weak::new(),
        broken: false,
        prefixes: Vec::new(),
    });
    t.mode = mode;
    t.redirect = redirect_id;
    t.redirect_to = redirect.as_ref().map(Arc::downgrade).unwrap_or_default();
    t.broken = false;
    let flags = FLAG_ON | if mode.bcast { FLAG_BCAST } else { 0 };
    t.info.tracking_flags.store(flags, Relaxed);
    t.info.redir.store(redirect_id as i64, Relaxed);
    for p in new_prefixes {
        if !t.prefixes.contains(&p) {
            t.prefixes.push(p);
        }
    }
    drop(inner);
    ctx.client.tracking = Some(mode);
    ctx.client.caching = false;
    ctx.reply.ok();
    Ok(())
}

/// CLIENT CACHING YES|NO
pub(crate) fn client_caching(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let Some(mode) = ctx.client.tracking else {
        return Err(CmdError::Other("ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled".into()));
    };
    let opt = args.get(2).unwrap_or_default();
    if eq(opt, "yes") {
        if !mode.optin {
            return Err(CmdError::Other(
                "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode."
                    .into(),
            ));
        }
    } else if eq(opt, "no") {
        if !mode.optout {
            return Err(CmdError::Other(
                "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode."
                    .into(),
            ));
        }
    } else {
        return Err(CmdError::Syntax);
    }
    ctx.client.caching = true;
    ctx.reply.ok();
    Ok(())
}

/// CLIENT GETREDIR
pub(crate) fn client_getredir(ctx: &mut Ctx, _args: &Args) -> CmdResult {
    let id = ctx.client.id();
    let redirect = match ctx.client.tracking {
        None => -1,
        Some(_) => ctx
            .server
            .tracking
            .inner
            .lock()
            .trackers
            .get(&id)
            .map_or(0, |t| t.redirect as i64),
    };
    ctx.reply.int(redirect);
    Ok(())
}

/// CLIENT TRACKINGINFO
pub(crate) fn client_trackinginfo(ctx: &mut Ctx, _args: &Args) -> CmdResult {
    let id = ctx.client.id();
    let (redirect, broken, mut prefixes) = {
        let inner = ctx.server.tracking.inner.lock();
        match inner.trackers.get(&id) {
            Some(t) => (t.redirect as i64, t.broken, t.prefixes.clone()),
            None => (-1, false, Vec::new()),
        }
    };
    prefixes.sort();
    let mut flags: Vec<&str> = Vec::new();
    match ctx.client.tracking {
        None => flags.push("off"),
        Some(m) => {
            flags.push("on");
            let caching = ctx.client.caching;
            for (on, name) in [
                (m.bcast, "bcast"),
                (m.optin, "optin"),
                (m.optout, "optout"),
                (m.optin && caching, "caching-yes"),
                (m.optout && caching, "caching-no"),
                (m.noloop, "noloop"),
                (broken, "broken_redirect"),
            ] {
                if on {
                    flags.push(name);
                }
            }
        }
    }
    let r = &mut *ctx.reply;
    r.map(3);
    r.bulk(b"flags");
    r.set(flags.len());
    for f in flags {
        r.bulk(f.as_bytes());
    }
    r.bulk(b"redirect");
    r.int(if ctx.client.tracking.is_some() {
        redirect.max(0)
    } else {
        -1
    });
    r.bulk(b"prefixes");
    r.array(prefixes.len());
    for p in &prefixes {
        r.bulk(p);
    }
    Ok(())
}

/// The keyspace's event sink: keyspace notifications, then tracking.
pub struct Sink {
    pub pubsub: Arc<PubSub>,
    pub tracking: Arc<Tracking>,
    /// Expired and evicted keys go to replicas as DEL.
    pub repl: Arc<damselfly_replication::Replication>,
}

impl damselfly_storage::Events for Sink {
    fn wants_new(&self) -> bool {
        self.pubsub.notifies(crate::pubsub::class::NEW)
    }

    fn event(&self, db: usize, key: &[u8], event: &'static str) {
        self.pubsub.notify_event(db, key, event);
        // A replica's stream is its master's: its own expiries (keys its
        // clients gave a TTL) are not propagated, as in Redis.
        if (event == "expired" || event == "evicted")
            && self.repl.active()
            && !damselfly_storage::is_replica()
        {
            damselfly_replication::master::deleted(&self.repl, db, key);
        }
        if self.tracking.active() && event != "new" && event != "keymiss" {
            let by = crate::pubsub::current();
            self.tracking
                .invalidate(&self.pubsub, key, by, event == "expired");
        }
    }
}
