//! Persistence commands (DUMP RESTORE SAVE BGSAVE) and the process-wide
//! snapshot state: start-up load, the `save` rules and `snapshot_cron`
//! schedule, saving on shutdown, and the INFO persistence figures.
//!
//! Invariants:
//! - At most one snapshot runs at a time (`Persistence::busy`); SAVE and
//!   BGSAVE both claim it, a shutdown save waits for it.
//! - A snapshot file appears under its final name only once complete and
//!   synced (temp file, fsync, rename), so a crash leaves the previous one.

use crate::args::{eq, int};
use crate::cmd;
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::state::Server;
use crate::table::{Command, Keys::None as NoKeys, Keys::Range};
use damselfly_persistence::{dump, file, snapshot, Limits};
use damselfly_protocol::Args;
use damselfly_storage::{now_ms, Entry, Locked};
use parking_lot::Mutex;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

pub(crate) static COMMANDS: &[Command] = &[
    cmd!(
        "dump",
        2,
        "readonly",
        Range(1, 1, 1),
        "@keyspace @read @slow",
        "generic",
        "2.6.0",
        dump_cmd
    ),
    cmd!(
        "restore",
        -4,
        "write denyoom",
        Range(1, 1, 1),
        "@keyspace @write @slow @dangerous",
        "generic",
        "2.6.0",
        restore
    ),
    cmd!(
        "migrate",
        -6,
        "write all_shards",
        Range(3, 3, 1),
        "@keyspace @write @slow @dangerous",
        "generic",
        "2.6.0",
        migrate
    ),
    cmd!(
        "save",
        1,
        "admin noscript no_async_loading no_multi",
        NoKeys,
        "@admin @slow @dangerous",
        "server",
        "1.0.0",
        save
    ),
    cmd!(
        "bgsave",
        -1,
        "admin noscript no_async_loading all_shards",
        NoKeys,
        "@admin @slow @dangerous",
        "server",
        "1.0.0",
        bgsave
    ),
];

/// Snapshot state shared by every connection and the scheduler.
pub struct Persistence {
    pub(crate) server: OnceLock<Weak<Server>>,
    /// A snapshot (SAVE, BGSAVE, shutdown) is running.
    busy: AtomicBool,
    bgsave_running: AtomicBool,
    bgsave_scheduled: AtomicBool,
    last_ok: AtomicBool,
    last_bgsave_secs: AtomicI64,
    bgsave_started_ms: AtomicU64,
    last_try_secs: AtomicU64,
    saves: AtomicU64,
    pub loading: AtomicBool,
    loading_started: AtomicU64,
    loading_bytes: AtomicU64,
    loaded_keys: AtomicU64,
    loaded_expired: AtomicU64,
    keys_total: AtomicU64,
    progress: Mutex<Option<Arc<dyn Fn() -> u64 + Send + Sync>>>,
}

impl Default for Persistence {
    fn default() -> Self {
        Persistence {
            server: OnceLock::new(),
            busy: AtomicBool::new(false),
            bgsave_running: AtomicBool::new(false),
            bgsave_scheduled: AtomicBool::new(false),
            last_ok: AtomicBool::new(true),
            last_bgsave_secs: AtomicI64::new(-1),
            bgsave_started_ms: AtomicU64::new(0),
            last_try_secs: AtomicU64::new(0),
            saves: AtomicU64::new(0),
            loading: AtomicBool::new(false),
            loading_started: AtomicU64::new(0),
            loading_bytes: AtomicU64::new(0),
            loaded_keys: AtomicU64::new(0),
            loaded_expired: AtomicU64::new(0),
            keys_total: AtomicU64::new(0),
            progress: Mutex::new(None),
        }
    }
}

/// The encoding limits in force, for building loaded values.
pub fn limits(server: &Server) -> Limits {
    let e = &server.config.encodings;
    let get = |a: &AtomicI64| usize::try_from(a.load(Relaxed)).unwrap_or(0);
    Limits {
        hash: damselfly_core::hash::Limits {
            max_entries: get(&e.hash_max_listpack_entries),
            max_value: get(&e.hash_max_listpack_value),
        },
        set_max_intset: get(&e.set_max_intset_entries),
        zset: damselfly_core::zset::Limits {
            max_entries: get(&e.zset_max_listpack_entries),
            max_value: get(&e.zset_max_listpack_value),
        },
        list_fill: e.list_max_listpack_size.load(Relaxed),
    }
}

fn arg<'a>(args: &'a Args, i: usize) -> &'a [u8] {
    args.get(i).unwrap_or_default()
}

/// DUMP key
fn dump_cmd(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let key = arg(args, 1);
    let limits = limits(ctx.server);
    let (db, now) = (ctx.db(), ctx.now);
    let (shard, reply) = ctx.shard_and_reply(key);
    match shard.get(db, key, now) {
        None => reply.null(),
        Some(e) => reply.bulk(&dump::dump(e.value(), &limits)),
    }
    Ok(())
}

/// RESTORE key ttl serialized-value [REPLACE] [ABSTTL] [IDLETIME seconds]
/// [FREQ frequency]
///
/// FREQ sets the key's LFU counter (OBJECT FREQ), which accesses do not
/// change yet.
fn restore(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let (mut replace, mut absttl) = (false, false);
    let (mut idle, mut freq): (Option<i64>, Option<i64>) = (None, None);
    let mut j = 4;
    while j < args.len() {
        let a = arg(args, j);
        let more = j + 1 < args.len();
        if eq(a, "replace") {
            replace = true;
        } else if eq(a, "absttl") {
            absttl = true;
        } else if eq(a, "idletime") && more && freq.is_none() {
            let n = int(arg(args, j + 1))?;
            if n < 0 {
                return Err(CmdError::Other(
                    "ERR Invalid IDLETIME value, must be >= 0".into(),
                ));
            }
            idle = Some(n);
            j += 1;
        } else if eq(a, "freq") && more && idle.is_none() {
            let n = int(arg(args, j + 1))?;
            if !(0..=255).contains(&n) {
                return Err(CmdError::Other(
                    "ERR Invalid FREQ value, must be >= 0 and <= 255".into(),
                ));
            }
            freq = Some(n);
            j += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let key = arg(args, 1);
    let (db, now) = (ctx.db(), ctx.now);
    if !replace && ctx.shard(key).contains(db, key, now) {
        return Err(CmdError::BusyKey);
    }
    let ttl = int(arg(args, 2))?;
    if ttl < 0 {
        return Err(CmdError::Other(
            "ERR Invalid TTL value, must be >= 0".into(),
        ));
    }
    let payload = arg(args, 3);
    if dump::verify(payload).is_err() {
        return Err(CmdError::DumpPayload);
    }
    let limits = limits(ctx.server);
    let value = dump::restore(payload, &limits).map_err(|_| CmdError::BadDataFormat)?;
    let shard = ctx.shard(key);
    let deleted = replace && shard.contains(db, key, now) && shard.remove(db, key).is_some();
    let expire_at = match (ttl, absttl) {
        (0, _) => 0,
        (t, true) => t as u64,
        (t, false) => now.saturating_add(t as u64),
    };
    if expire_at != 0 && expire_at <= now {
        if deleted {
            shard.written(db, key, "del");
        }
        ctx.reply.ok();
        return Ok(());
    }
    let mut entry = Entry::new(key, value, expire_at);
    if let Some(secs) = idle {
        entry.restore_idle(secs as u64);
    }
    if let Some(f) = freq {
        entry.restore_freq(f as u8);
    }
    shard.put(db, entry);
    shard.written(db, key, "restore");
    ctx.reply.ok();
    Ok(())
}

/// MIGRATE host port key|"" destination-db timeout [COPY] [REPLACE]
/// [AUTH password] [AUTH2 username password] [KEYS key [key ...]]
///
/// Holds every shard while it talks to the target, as Redis blocks while
/// it migrates. Connections are not cached: each MIGRATE opens its own.
fn migrate(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let (mut copy, mut replace) = (false, false);
    let mut auth: Vec<&[u8]> = Vec::new();
    let mut keys: Vec<&[u8]> = vec![arg(args, 3)];
    let mut j = 6;
    while j < args.len() {
        let a = arg(args, j);
        let left = args.len() - j - 1;
        if eq(a, "copy") {
            copy = true;
        } else if eq(a, "replace") {
            replace = true;
        } else if eq(a, "auth") && left >= 1 {
            auth = vec![arg(args, j + 1)];
            j += 1;
        } else if eq(a, "auth2") && left >= 2 {
            auth = vec![arg(args, j + 1), arg(args, j + 2)];
            j += 2;
        } else if eq(a, "keys") {
            if !arg(args, 3).is_empty() {
                return Err(CmdError::Other(
                    "ERR When using MIGRATE KEYS option, the key argument must be set to the empty string".into(),
                ));
            }
            keys = args.iter().skip(j + 1).collect();
            break;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let timeout = int(arg(args, 5))?;
    let dest_db = int(arg(args, 4))?;
    let timeout = Duration::from_millis(if timeout <= 0 { 1000 } else { timeout as u64 });
    let (db, now) = (ctx.db(), ctx.now);
    let limits = limits(ctx.server);
    // (key, ttl, payload) of the keys that exist.
    let mut found: Vec<(&[u8], u64, Vec<u8>)> = Vec::new();
    for &k in &keys {
        if let Some(e) = ctx.shard(k).get_quiet(db, k, now) {
            let ttl = if e.expire_at() == 0 {
                0
            } else {
                e.expire_at().saturating_sub(now).max(1)
            };
            found.push((k, ttl, dump::dump(e.value(), &limits)));
        }
    }
    if found.is_empty() {
        ctx.reply.simple(b"NOKEY");
        return Ok(());
    }
    let mut out = Vec::new();
    let push = |out: &mut Vec<u8>, parts: &[&[u8]]| {
        out.extend_from_slice(format!("*{}\r\n", parts.len()).as_bytes());
        for p in parts {
            out.extend_from_slice(format!("${}\r\n", p.len()).as_bytes());
            out.extend_from_slice(p);
            out.extend_from_slice(b"\r\n");
        }
    };
    if !auth.is_empty() {
        let mut parts: Vec<&[u8]> = vec![b"AUTH"];
        parts.extend(&auth);
        push(&mut out, &parts);
    }
    let db_text = dest_db.to_string();
    push(&mut out, &[b"SELECT", db_text.as_bytes()]);
    for (k, ttl, payload) in &found {
        let ttl = ttl.to_string();
        let mut parts: Vec<&[u8]> = vec![b"RESTORE", k, ttl.as_bytes(), payload];
        if replace {
            parts.push(b"REPLACE");
        }
        push(&mut out, &parts);
    }
    let host = String::from_utf8_lossy(arg(args, 1)).into_owned();
    let port = String::from_utf8_lossy(arg(args, 2)).into_owned();
    let connect_err = || CmdError::Other("IOERR error or timeout connecting to the client".into());
    let read_err = || CmdError::Other("IOERR error or timeout reading to target instance".into());
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&(
        host.as_str(),
        port.parse::<u16>().map_err(|_| connect_err())?,
    ))
    .ok()
    .and_then(|mut a| a.next())
    .ok_or_else(connect_err)?;
    let write_err = || CmdError::Other("IOERR error or timeout writing to target instance".into());
    // Redis connects without blocking, so a refused connection shows up
    // when it writes.
    let stream = std::net::TcpStream::connect_timeout(&addr, timeout).map_err(|e| {
        if e.kind() == std::io::ErrorKind::ConnectionRefused {
            write_err()
        } else {
            connect_err()
        }
    })?;
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = stream.set_write_timeout(Some(timeout));
    use std::io::{BufRead, Write};
    (&stream).write_all(&out).map_err(|_| write_err())?;
    let mut reader = std::io::BufReader::new(&stream);
    let mut line = String::new();
    let mut read_line = |line: &mut String| -> CmdResult<bool> {
        line.clear();
        match reader.read_line(line) {
            Ok(n) if n > 0 => Ok(line.starts_with('-')),
            _ => Err(read_err()),
        }
    };
    let target_error = |line: &str| {
        CmdError::Other(format!(
            "ERR Target instance replied with error: {}",
            line.trim_end().trim_start_matches('-')
        ))
    };
    let mut error = None;
    for _ in 0..1 + usize::from(!auth.is_empty()) {
        if read_line(&mut line)? && error.is_none() {
            error = Some(target_error(&line));
        }
    }
    let mut moved = Vec::new();
    for (k, _, _) in &found {
        if read_line(&mut line)? {
            if error.is_none() {
                error = Some(target_error(&line));
            }
        } else {
            moved.push(*k);
        }
    }
    if !copy {
        for k in moved {
            let shard = ctx.shard(k);
            if shard.remove(db, k).is_some() {
                shard.written(db, k, "del");
            }
        }
    }
    match error {
        Some(e) => Err(e),
        None => {
            ctx.reply.ok();
            Ok(())
        }
    }
}

/// SAVE
fn save(ctx: &mut Ctx, _args: &Args) -> CmdResult {
    if !claim(ctx.server) {
        return Err(CmdError::Other(
            "ERR Background save already in progress".into(),
        ));
    }
    let ok = run_save(ctx.server, false);
    release(ctx.server);
    if ok {
        ctx.reply.ok();
        Ok(())
    } else {
        Err(CmdError::Other("ERR".into()))
    }
}

/// BGSAVE [SCHEDULE]
fn bgsave(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let schedule = match args.len() {
        1 => false,
        2 if eq(arg(args, 1), "schedule") => true,
        _ => return Err(CmdError::Syntax),
    };
    let p = &ctx.server.persistence;
    if p.busy.load(Relaxed) {
        if schedule {
            p.bgsave_scheduled.store(true, Relaxed);
            ctx.reply.simple(b"Background saving scheduled");
            return Ok(());
        }
        return Err(CmdError::Other(
            "ERR Background save already in progress".into(),
        ));
    }
    match start_bgsave(ctx.server, &mut ctx.locked) {
        Ok(()) => {
            ctx.reply.simple(b"Background saving started");
            Ok(())
        }
        Err(Started::Busy) => Err(CmdError::Other(
            "ERR Background save already in progress".into(),
        )),
        Err(Started::Failed) => Err(CmdError::Other("ERR".into())),
    }
}

/// Takes the one-snapshot-at-a-time slot (a replica's full sync too).
pub(crate) fn claim(server: &Server) -> bool {
    server
        .persistence
        .busy
        .compare_exchange(false, true, Relaxed, Relaxed)
        .is_ok()
}

pub(crate) fn release(server: &Server) {
    server.persistence.busy.store(false, Relaxed);
}

enum Started {
    Busy,
    Failed,
}

/// Begins a snapshot and finishes it on its own thread. The snapshot's
/// contents are fixed before this returns.
/// `all` holds every shard (BGSAVE is `all_shards`; the scheduler locks
/// them all).
fn start_bgsave(server: &Server, all: &mut Locked<'_>) -> Result<(), Started> {
    let p = &server.persistence;
    let Some(owner) = p.server.get().and_then(Weak::upgrade) else {
        return Err(Started::Failed);
    };
    if !claim(server) {
        return Err(Started::Busy);
    }
    p.bgsave_scheduled.store(false, Relaxed);
    let snap = match begin(server, all) {
        Ok(s) => s,
        Err(e) => {
            server.host.log(&format!("Can't save in background: {e}"));
            finished(server, true, Err(()));
            release(server);
            return Err(Started::Failed);
        }
    };
    p.bgsave_running.store(true, Relaxed);
    p.bgsave_started_ms.store(now_ms(), Relaxed);
    server.host.log("Background saving started");
    let spawned = std::thread::Builder::new()
        .name("bgsave".into())
        .spawn(move || {
            background_priority();
            let result = snap.finish(&owner.keyspace);
            let ok = report(&owner, &result, true);
            finished(&owner, true, if ok { Ok(()) } else { Err(()) });
            owner.persistence.bgsave_running.store(false, Relaxed);
            release(&owner);
        });
    if spawned.is_err() {
        p.bgsave_running.store(false, Relaxed);
        finished(server, true, Err(()));
        release(server);
        return Err(Started::Failed);
    }
    Ok(())
}

/// Puts the calling thread (a snapshot's walk) below every worker in the
/// CPU scheduler's eyes (Linux `SCHED_IDLE`): a worker that wakes with
/// requests preempts it at once instead of waiting out its time slice
/// (measured: with both on one core, a BGSAVE loop took 70% of it and
/// SETs saw p99 in the hundreds of ms). The walk then runs on idle CPU
/// time; a write still pays its own key's or shard's share first, so a
/// busy server's snapshot advances with its writes.
pub(crate) fn background_priority() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: pid 0 is the calling thread; `param` is a valid
        // sched_param that outlives the call. A failure (a sandbox that
        // forbids it) only leaves the normal priority.
        unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
    }
}

/// A disk-based full sync's save, which Redis 7.0 also makes into the
/// configured file (a background save in INFO). The caller holds the
/// snapshot slot and every shard; `sync_save_done` reports the end.
pub(crate) fn begin_sync_save(
    server: &Server,
    all: &mut Locked<'_>,
) -> std::io::Result<snapshot::Snapshot> {
    let p = &server.persistence;
    let snap = begin_with(server, all, crate::repl_master::repl_fields(server))?;
    p.bgsave_running.store(true, Relaxed);
    p.bgsave_started_ms.store(now_ms(), Relaxed);
    server
        .host
        .log("Starting BGSAVE for SYNC with target: disk");
    Ok(snap)
}

/// A diskless full sync's snapshot shows as a background save in INFO
/// (`rdb_bgsave_in_progress`), as Redis's RDB child for sockets does.
pub(crate) fn diskless_save_running(server: &Server, running: bool) {
    let p = &server.persistence;
    if running {
        p.bgsave_started_ms.store(now_ms(), Relaxed);
    }
    p.bgsave_running.store(running, Relaxed);
}

pub(crate) fn sync_save_done(server: &Server, result: &std::io::Result<snapshot::Saved>) -> bool {
    let ok = report(server, result, true);
    finished(server, true, if ok { Ok(()) } else { Err(()) });
    server.persistence.bgsave_running.store(false, Relaxed);
    ok
}

/// The AUX fields Redis 7.0 writes at the top of an RDB.
pub(crate) fn aux_fields() -> [(&'static str, String); 5] {
    [
        ("redis-ver", crate::server::REDIS_VERSION.to_string()),
        ("redis-bits", "64".to_string()),
        ("ctime", (now_ms() / 1000).to_string()),
        ("used-mem", crate::server::info::rss_bytes().to_string()),
        ("aof-base", "0".to_string()),
    ]
}

/// The server as an `Arc`, for work that outlives a command (a thread).
pub(crate) fn owner(server: &Server) -> Option<Arc<Server>> {
    server.persistence.server.get().and_then(Weak::upgrade)
}

/// Begins a snapshot into the configured file; `all` holds every shard.
fn begin(server: &Server, all: &mut Locked<'_>) -> std::io::Result<snapshot::Snapshot> {
    begin_with(server, all, crate::repl_master::rdb_aux(server))
}

/// `begin` with the replication fields the caller read (a replica's sync
/// save holds the link's gate already).
fn begin_with(
    server: &Server,
    all: &mut Locked<'_>,
    repl: Vec<(&'static str, String)>,
) -> std::io::Result<snapshot::Snapshot> {
    let target = target_path(server);
    let mut aux = aux_fields().to_vec();
    aux.extend(repl);
    let delay = server
        .config
        .get("rdb-key-save-delay")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    let functions = crate::scripting::functions::library_codes(server);
    let snap = snapshot::begin(
        &server.keyspace,
        all,
        &target,
        limits(server),
        &aux,
        &functions,
        delay,
    )?;
    let p = &server.persistence;
    p.keys_total.store(snap.keys_total, Relaxed);
    *p.progress.lock() = Some(snap.progress());
    Ok(snap)
}

/// FLUSHALL with `save` rules or a cron saves the emptied keyspace, as
/// Redis does, so a restart does not bring the data back. `all` holds every
/// shard. With a snapshot running (it would need those locks to finish),
/// a BGSAVE is scheduled for after it instead.
pub(crate) fn save_after_flushall(server: &Server, all: &mut Locked<'_>) {
    if !saving_configured(server) {
        return;
    }
    if !claim(server) {
        server.persistence.bgsave_scheduled.store(true, Relaxed);
        return;
    }
    let result = begin(server, all).and_then(|s| s.finish_held(all));
    let ok = report(server, &result, false);
    finished(server, false, if ok { Ok(()) } else { Err(()) });
    release(server);
}

/// Runs a whole save on this thread; the caller holds `busy` and no shard.
fn run_save(server: &Server, background: bool) -> bool {
    let begun = begin(server, &mut server.keyspace.lock_all());
    let result = begun.and_then(|s| s.finish(&server.keyspace));
    let ok = report(server, &result, background);
    finished(server, background, if ok { Ok(()) } else { Err(()) });
    ok
}

fn report(server: &Server, result: &std::io::Result<snapshot::Saved>, background: bool) -> bool {
    match result {
        Ok(s) => {
            server.host.log(&format!(
                "DB saved on disk ({} keys, {} bytes){}",
                s.keys,
                s.bytes,
                if background {
                    " by background save"
                } else {
                    ""
                }
            ));
            true
        }
        Err(e) => {
            server.host.log(&format!("Failed saving the DB: {e}"));
            false
        }
    }
}

fn finished(server: &Server, background: bool, result: Result<(), ()>) {
    let p = &server.persistence;
    let now = now_ms();
    p.last_try_secs.store(now / 1000, Relaxed);
    *p.progress.lock() = None;
    if background {
        let started = p.bgsave_started_ms.load(Relaxed);
        let secs = if started == 0 {
            0
        } else {
            (now.saturating_sub(started) / 1000) as i64
        };
        p.last_bgsave_secs.store(secs, Relaxed);
    }
    match result {
        Ok(()) => {
            p.last_ok.store(true, Relaxed);
            p.saves.fetch_add(1, Relaxed);
            server.lastsave.store(now / 1000, Relaxed);
        }
        Err(()) => {
            if background {
                p.last_ok.store(false, Relaxed);
            }
        }
    }
}

/// `dir`/`dbfilename`, with Dragonfly's `{timestamp}` macro expanded.
fn target_path(server: &Server) -> PathBuf {
    let dir = server.config.get("dir").unwrap_or_default();
    let name = server.config.get("dbfilename").unwrap_or_default();
    let name = name.replace("{timestamp}", &timestamp(now_ms() / 1000));
    let dir = if dir.is_empty() { ".".to_string() } else { dir };
    PathBuf::from(dir).join(name)
}

/// `YYYY-MM-DDTHH:MM:SS` in UTC, as Dragonfly's `{timestamp}` (sorts by time).
fn timestamp(secs: u64) -> String {
    let (days, rem) = (secs / 86400, secs % 86400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z.rem_euclid(146097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The snapshot to load at start-up: `dbfilename` in `dir`, or with a
/// `{timestamp}` macro the newest file it matches (temp files never match:
/// they end in `.tmp`).
pub fn startup_file(dir: &std::path::Path, dbfilename: &str) -> Option<PathBuf> {
    let Some((pre, post)) = dbfilename.split_once("{timestamp}") else {
        let p = dir.join(dbfilename);
        return p.is_file().then_some(p);
    };
    let mut best: Option<(std::time::SystemTime, String)> = None;
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".tmp")
            || name.len() < pre.len() + post.len()
            || !name.starts_with(pre)
            || !name.ends_with(post)
            || !e.path().is_file()
        {
            continue;
        }
        let mtime = e
            .metadata()
            .and_then(|m| m.modified())
            .unwrap_or(std::time::UNIX_EPOCH);
        if best.as_ref().is_none_or(|(t, n)| (mtime, &name) > (*t, n)) {
            best = Some((mtime, name));
        }
    }
    best.map(|(_, n)| dir.join(n))
}

/// Loads an RDB file into the (empty) keyspace. The error names the file
/// and what is wrong with it.
pub fn load_file(
    server: &Server,
    path: &std::path::Path,
    merge: bool,
) -> Result<file::LoadStats, String> {
    let p = &server.persistence;
    let size = std::fs::metadata(path).map_or(0, |m| m.len());
    let loading = Loading::begin(server, size);
    let result = load_into(server, path, merge);
    drop(loading);
    if let Ok(s) = &result {
        p.loaded_keys.store(s.keys_loaded, Relaxed);
        p.loaded_expired.store(s.keys_expired, Relaxed);
    }
    result
}

/// The dataset is loading (start-up file, a replica's full sync): clients
/// get `-LOADING` and INFO's loading fields until this is dropped.
pub(crate) struct Loading<'a>(&'a Persistence);

impl<'a> Loading<'a> {
    pub(crate) fn begin(server: &'a Server, bytes: u64) -> Loading<'a> {
        let p = &server.persistence;
        p.loading_started.store(now_ms() / 1000, Relaxed);
        p.loading_bytes.store(bytes, Relaxed);
        p.loading.store(true, Relaxed);
        Loading(p)
    }
}

impl Drop for Loading<'_> {
    fn drop(&mut self) {
        self.0.loading.store(false, Relaxed);
    }
}

/// `key-load-delay` (a testing knob, as in Redis): called once per key
/// loaded, it sleeps that many microseconds, or with a negative value one
/// microsecond every that many keys.
pub(crate) fn key_load_delay(server: &Server) -> impl FnMut() {
    let delay: i64 = server
        .config
        .get("key-load-delay")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut keys = 0i64;
    move || {
        keys += 1;
        let us = match delay {
            0 => 0,
            d if d > 0 => d as u64,
            d => u64::from(keys % d == 0),
        };
        if us > 0 {
            std::thread::sleep(std::time::Duration::from_micros(us));
        }
    }
}

fn load_into(
    server: &Server,
    path: &std::path::Path,
    merge: bool,
) -> Result<file::LoadStats, String> {
    let data = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let ks = &server.keyspace;
    let limits = limits(server);
    // Keys already expired are counted and dropped, and kept by name: a
    // master that restarts continuing its replication history sends
    // their DELs (`repl_master::restore_from_rdb`).
    let now = now_ms();
    let mut expired = Vec::new();
    let mut delay = key_load_delay(server);
    // Each library is loaded as it is read, before the keys that follow
    // it (as Redis does): one that clashes fails the load before any key
    // is in.
    let mut library_error = None;
    let library = |code: &[u8]| {
        crate::scripting::functions::load_from_snapshot(server, code, merge).map_err(|e| {
            library_error = Some(e);
            damselfly_persistence::Error::Bad("function library")
        })
    };
    let loaded = file::load(
        &data,
        &limits,
        ks.dbnum(),
        0,
        |l| {
            delay();
            if l.expire_at != 0 && now > l.expire_at {
                expired.push((l.db, l.key.to_vec()));
                return Ok(());
            }
            let mut e = Entry::new(l.key, l.value, l.expire_at);
            if let Some(idle) = l.idle {
                e.restore_idle(idle as u64);
            }
            if let Some(f) = l.freq {
                e.restore_freq(f);
            }
            match ks.lock_one(ks.shard_of(l.key)).put(l.db, e) {
                Some(_) if !merge => Err(damselfly_persistence::Error::Bad("duplicate key")),
                _ => Ok(()),
            }
        },
        library,
    );
    let mut stats = loaded.map_err(|e| match library_error.take() {
        Some(lib) => format!(
            "{}: cannot load its function libraries: {lib}",
            path.display()
        ),
        None => format!("{} is not a valid RDB file: {e}", path.display()),
    })?;
    stats.keys_loaded -= expired.len() as u64;
    stats.keys_expired += expired.len() as u64;
    crate::repl_master::set_expired_at_load(expired);
    Ok(stats)
}

/// Registers the process's `Arc<Server>` (BGSAVE's thread needs one) and
/// starts the scheduler thread for `save` rules, `snapshot_cron` and
/// BGSAVE SCHEDULE.
pub fn init(server: &Arc<Server>) {
    let _ = server.persistence.server.set(Arc::downgrade(server));
    let weak = Arc::downgrade(server);
    let _ = std::thread::Builder::new()
        .name("snapshot-schedule".into())
        .spawn(move || {
            let mut last_minute = now_ms() / 60_000;
            loop {
                std::thread::sleep(Duration::from_millis(200));
                let Some(server) = weak.upgrade() else { return };
                let minute = now_ms() / 60_000;
                let cron_due = minute != last_minute && cron_matches(&server, minute);
                last_minute = minute;
                if server.persistence.busy.load(Relaxed) || server.persistence.loading.load(Relaxed)
                {
                    continue;
                }
                let due = cron_due
                    || server.persistence.bgsave_scheduled.load(Relaxed)
                    || rule_due(&server);
                if due {
                    let _ = start_bgsave(&server, &mut server.keyspace.lock_all());
                }
            }
        });
}

fn dirty(server: &Server) -> u64 {
    let ks = &server.keyspace;
    (0..ks.shard_count()).map(|i| ks.peek(i).stats.dirty).sum()
}

/// Redis's rule: some `save <seconds> <changes>` pair has at least
/// `changes` changes and more than `seconds` since the last save; after a
/// failure, retried no sooner than 5 seconds later.
fn rule_due(server: &Server) -> bool {
    let rules = save_rules(server);
    if rules.is_empty() {
        return false;
    }
    let p = &server.persistence;
    let now = now_ms() / 1000;
    if !p.last_ok.load(Relaxed) && now.saturating_sub(p.last_try_secs.load(Relaxed)) <= 5 {
        return false;
    }
    let since = now.saturating_sub(server.lastsave.load(Relaxed));
    let changes = dirty(server);
    rules.iter().any(|&(secs, n)| changes >= n && since > secs)
}

fn save_rules(server: &Server) -> Vec<(u64, u64)> {
    let words: Vec<u64> = server
        .config
        .get("save")
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    words.chunks_exact(2).map(|c| (c[0], c[1])).collect()
}

fn cron_matches(server: &Server, minute: u64) -> bool {
    let spec = server.config.get("snapshot_cron").unwrap_or_default();
    !spec.trim().is_empty() && Cron::parse(&spec).is_some_and(|c| c.matches(minute))
}

/// Whether SHUTDOWN and SIGTERM save: `save` rules or a cron are set, and
/// no snapshot is loading (saving a half-loaded dataset would lose data).
pub fn saving_configured(server: &Server) -> bool {
    if server.persistence.loading.load(Relaxed) {
        return false;
    }
    !save_rules(server).is_empty()
        || !server
            .config
            .get("snapshot_cron")
            .unwrap_or_default()
            .trim()
            .is_empty()
}

/// A foreground save for SHUTDOWN, SIGTERM and DEBUG RELOAD: waits for a
/// running BGSAVE, then saves. True on success.
pub fn save_now(server: &Server) -> bool {
    while !claim(server) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let ok = run_save(server, false);
    release(server);
    ok
}

/// `-MISCONF` applies: the last background save failed, `save` rules are
/// set, and stop-writes-on-bgsave-error is on.
pub fn writes_refused(server: &Server) -> bool {
    !server.persistence.last_ok.load(Relaxed)
        && server
            .config
            .get("stop-writes-on-bgsave-error")
            .is_some_and(|v| v == "yes")
        && !save_rules(server).is_empty()
}

/// The error a command gets before it runs, if persistence forbids it:
/// `-LOADING` while the dataset loads (commands without the `loading`
/// flag), `-MISCONF` for writes and PING after a failed background save.
pub(crate) fn refusal(server: &Server, e: &crate::table::Entry) -> Option<CmdError> {
    use crate::table::flag;
    let p = &server.persistence;
    if p.loading.load(Relaxed) && !e.has(flag::LOADING) {
        return Some(CmdError::Loading);
    }
    if !p.last_ok.load(Relaxed)
        && (e.has(flag::WRITE) || e.cmd.name == "ping")
        && writes_refused(server)
    {
        return Some(CmdError::Misconf);
    }
    None
}

/// DEBUG RELOAD's options.
#[derive(Clone, Copy)]
pub struct Reload {
    /// Save first (not NOSAVE).
    pub save: bool,
    /// Empty the keys and libraries before loading (not NOFLUSH).
    pub flush: bool,
    /// Keys and libraries in the file replace those in memory (MERGE);
    /// without it a clash fails the load.
    pub merge: bool,
}

/// DEBUG RELOAD: save, empty the keyspace, load the file back. Not inside
/// EXEC, whose locks it would need to give up. A clash under NOFLUSH
/// fails the command; Redis stops the server instead.
pub fn debug_reload(server: &Server, locked: &Locked<'_>, how: Reload) -> CmdResult {
    if !locked.is_empty() {
        return Err(CmdError::Other(
            "ERR DEBUG RELOAD is not supported inside MULTI".into(),
        ));
    }
    while !claim(server) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let path = target_path(server);
    let result = if !how.save || run_save(server, false) {
        if how.flush {
            let mut all = server.keyspace.lock_all();
            for shard in all.iter_mut() {
                for db in 0..shard.dbs.len() {
                    shard.touch_watched_db(db, None, now_ms());
                    let d = &mut shard.dbs[db];
                    d.table.clear();
                    d.volatile = 0;
                }
            }
        }
        let cleared = if how.flush {
            crate::scripting::functions::clear(server, 0).map_err(|e| e.to_string())
        } else {
            Ok(())
        };
        let loaded = cleared.and_then(|()| load_file(server, &path, how.merge));
        crate::repl_master::set_expired_at_load(Vec::new());
        loaded.map(|_| ()).map_err(|e| {
            server.host.log(&e);
            CmdError::Other("ERR Error trying to load the RDB dump".into())
        })
    } else {
        Err(CmdError::Other(
            "ERR Error trying to save the DB, check server logs.".into(),
        ))
    };
    release(server);
    result
}

/// The INFO persistence fields we fill (the rest are Redis's idle values).
pub struct InfoFields {
    pub loading: bool,
    pub bgsave_in_progress: bool,
    pub last_ok: bool,
    pub last_bgsave_secs: i64,
    pub current_bgsave_secs: i64,
    pub saves: u64,
    pub keys_processed: u64,
    pub keys_total: u64,
    pub loaded_keys: u64,
    pub loaded_expired: u64,
    pub loading_started: u64,
    pub loading_bytes: u64,
}

pub fn info_fields(server: &Server) -> InfoFields {
    let p = &server.persistence;
    let running = p.bgsave_running.load(Relaxed);
    let progress = p.progress.lock().as_ref().map_or(0, |f| f());
    InfoFields {
        loading: p.loading.load(Relaxed),
        bgsave_in_progress: running,
        last_ok: p.last_ok.load(Relaxed),
        last_bgsave_secs: p.last_bgsave_secs.load(Relaxed),
        current_bgsave_secs: if running {
            (now_ms().saturating_sub(p.bgsave_started_ms.load(Relaxed)) / 1000) as i64
        } else {
            -1
        },
        saves: p.saves.load(Relaxed),
        keys_processed: progress,
        keys_total: if running {
            p.keys_total.load(Relaxed)
        } else {
            0
        },
        loaded_keys: p.loaded_keys.load(Relaxed),
        loaded_expired: p.loaded_expired.load(Relaxed),
        loading_started: p.loading_started.load(Relaxed),
        loading_bytes: p.loading_bytes.load(Relaxed),
    }
}

/// A crontab line (minute hour day-of-month month day-of-week), evaluated
/// in UTC. Fields take `*` (or `?`), numbers, three-letter month and day
/// names, ranges `a-b`, steps `/n` and lists. Dragonfly's six-field form
/// (seconds first) is accepted; schedules have minute granularity, so it
/// fires once in each matching minute. As in Vixie cron, when both day
/// fields are restricted either may match.
pub struct Cron {
    minute: u64,
    hour: u64,
    dom: u64,
    month: u64,
    dow: u64,
    dom_any: bool,
    dow_any: bool,
}

impl Cron {
    pub fn parse(spec: &str) -> Option<Cron> {
        let f: Vec<&str> = spec.split_whitespace().collect();
        let fields = match f.as_slice() {
            [sec, rest @ ..] if rest.len() == 5 => {
                field(sec, 0, 59, &[])?;
                rest
            }
            all => all,
        };
        let [mi, h, dom, mo, dow] = fields else {
            return None;
        };
        const MONTHS: &[&str] = &[
            "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
        ];
        const DAYS: &[&str] = &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
        Some(Cron {
            minute: field(mi, 0, 59, &[])?,
            hour: field(h, 0, 23, &[])?,
            dom: field(dom, 1, 31, &[])?,
            month: field(mo, 1, 12, MONTHS)?,
            // 7 is Sunday too.
            dow: {
                let b = field(dow, 0, 7, DAYS)?;
                (b | (b >> 7)) & 0x7F
            },
            dom_any: dom.starts_with('*'),
            dow_any: dow.starts_with('*'),
        })
    }

    /// Whether the minute `minute` (minutes since the epoch) matches.
    pub fn matches(&self, minute: u64) -> bool {
        let days = minute / 1440;
        let (_, month, day) = civil_from_days(days as i64);
        let weekday = (days + 4) % 7; // 1970-01-01 was a Thursday
        let bit = |set: u64, v: u64| set >> v & 1 == 1;
        let dom_ok = bit(self.dom, u64::from(day));
        let dow_ok = bit(self.dow, weekday);
        let day_ok = match (self.dom_any, self.dow_any) {
            (false, false) => dom_ok || dow_ok,
            _ => dom_ok && dow_ok,
        };
        bit(self.minute, minute % 60)
            && bit(self.hour, minute / 60 % 24)
            && bit(self.month, u64::from(month))
            && day_ok
    }
}

/// One cron field as a bit set of the values it allows; `names` spell the
/// values from `lo` up (months from 1, days from 0).
fn field(s: &str, lo: u64, hi: u64, names: &[&str]) -> Option<u64> {
    let value = |v: &str| -> Option<u64> {
        v.parse().ok().or_else(|| {
            let i = names.iter().position(|n| n.eq_ignore_ascii_case(v))?;
            Some(lo + i as u64)
        })
    };
    let mut set = 0u64;
    for part in s.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, st)) => (r, st.parse::<u64>().ok().filter(|&n| n > 0)?),
            None => (part, 1),
        };
        let (a, b) = if range == "*" || range == "?" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a)?, value(b)?)
        } else {
            let a: u64 = value(range)?;
            (a, if part.contains('/') { hi } else { a })
        };
        if a < lo || b > hi || a > b {
            return None;
        }
        let mut v = a;
        while v <= b {
            set |= 1 << v;
            v += step;
        }
    }
    Some(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn snapshot_threads_run_at_idle_priority() {
        let policy = std::thread::spawn(|| {
            background_priority();
            // SAFETY: queries the calling thread's policy; no pointers.
            unsafe { libc::sched_getscheduler(0) }
        })
        .join()
        .unwrap();
        assert_eq!(policy, libc::SCHED_IDLE);
        // The calling thread is untouched.
        // SAFETY: as above.
        assert_eq!(unsafe { libc::sched_getscheduler(0) }, libc::SCHED_OTHER);
    }

    #[test]
    fn timestamps_are_utc_calendar_times() {
        assert_eq!(timestamp(0), "1970-01-01T00:00:00");
        assert_eq!(timestamp(1_700_000_000), "2023-11-14T22:13:20");
        assert_eq!(timestamp(951_782_400), "2000-02-29T00:00:00");
    }

    #[test]
    fn cron_fields_and_days() {
        let every5 = Cron::parse("*/5 * * * *").unwrap();
        assert!(every5.matches(10) && !every5.matches(11));
        // 2023-11-14T22:13 UTC was a Tuesday.
        let m = 1_700_000_000 / 60;
        assert!(Cron::parse("13 22 * * *").unwrap().matches(m));
        assert!(Cron::parse("13 22 14 11 *").unwrap().matches(m));
        assert!(Cron::parse("13 22 * * 2").unwrap().matches(m));
        assert!(!Cron::parse("13 22 * * 3").unwrap().matches(m));
        // Either day field may match when both are given.
        assert!(Cron::parse("13 22 1 * 2").unwrap().matches(m));
        assert!(Cron::parse("0-59/13 20-23 * * 1-5").unwrap().matches(m));
        // Names, `?` and Dragonfly's leading seconds field.
        assert!(Cron::parse("13 22 ? NOV tue").unwrap().matches(m));
        assert!(Cron::parse("13 22 * * MON-FRI").unwrap().matches(m));
        assert!(Cron::parse("0 13 22 * * *").unwrap().matches(m));
        assert!(Cron::parse("61 13 22 * * *").is_none());
        for bad in [
            "",
            "* * * *",
            "60 * * * *",
            "*/0 * * * *",
            "a * * * *",
            "5-1 * * * *",
        ] {
            assert!(Cron::parse(bad).is_none(), "{bad}");
        }
    }
}
