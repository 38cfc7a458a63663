//! Lua scripting (EVAL, EVALSHA, their _RO forms, SCRIPT) and functions
//! (FUNCTION, FCALL, FCALL_RO), on PUC Lua 5.1 through `mlua`.
//!
//! Where a script runs: a client's EVAL does not run on its worker thread.
//! The handler only checks the arguments and hands a `Job` to the
//! connection, which hands it to the one script thread and waits for the
//! reply, like a blocked BLPOP waits. The worker stays free, so its other
//! clients get `-BUSY` from a runaway script and can send SCRIPT KILL.
//! Inside EXEC a script runs inline, under EXEC's locks.
//!
//! Invariants:
//! - A script holds every shard it touched until it ends, so it is atomic
//!   to every other client. It starts with its declared keys' shards and
//!   adds others as its commands need them (restarting with every shard,
//!   or escalating, when one is busy: see `Keyspace::script_add`).
//! - Lock order: the Lua VM mutex, then shards (ascending); no holder of a
//!   shard waits for the VM.
//! - Other clients' commands wait for shard locks with `try_lock_for` and
//!   give up with `-BUSY` once the running script has passed
//!   `busy-reply-threshold`.

mod engine;
pub(crate) mod functions;
mod libs;
mod resp;

use crate::client::{Client, ClientInfo};
use crate::cmd;
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::state::Server;
use crate::table::{Command, Entry, Keys};
use damselfly_protocol::{Args, Reply, Request};
use parking_lot::{Mutex, ReentrantMutex, ReentrantMutexGuard};
use std::cell::{RefCell, RefMut};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

pub(crate) use engine::Vm;
pub(crate) use functions::{
    fcall, fcall_ro, function_delete, function_dump, function_flush, function_kill, function_list,
    function_load, function_restore, function_stats,
};

const NUMKEYS: Keys = Keys::NumKeys {
    dest: false,
    numkeys: 2,
};

pub static COMMANDS: &[Command] = &[
    cmd!(
        "eval",
        -3,
        "noscript stale skip_monitor no_mandatory_keys",
        NUMKEYS,
        "@slow @scripting",
        "scripting",
        "2.6.0",
        eval
    ),
    cmd!(
        "evalsha",
        -3,
        "noscript stale skip_monitor no_mandatory_keys",
        NUMKEYS,
        "@slow @scripting",
        "scripting",
        "2.6.0",
        evalsha
    ),
    cmd!(
        "eval_ro",
        -3,
        "readonly noscript stale skip_monitor no_mandatory_keys",
        NUMKEYS,
        "@slow @scripting",
        "scripting",
        "7.0.0",
        eval_ro
    ),
    cmd!(
        "evalsha_ro",
        -3,
        "readonly noscript stale skip_monitor no_mandatory_keys",
        NUMKEYS,
        "@slow @scripting",
        "scripting",
        "7.0.0",
        evalsha_ro
    ),
    cmd!(
        "fcall",
        -3,
        "noscript stale skip_monitor no_mandatory_keys",
        NUMKEYS,
        "@slow @scripting",
        "scripting",
        "7.0.0",
        fcall
    ),
    cmd!(
        "fcall_ro",
        -3,
        "readonly noscript stale skip_monitor no_mandatory_keys",
        NUMKEYS,
        "@slow @scripting",
        "scripting",
        "7.0.0",
        fcall_ro
    ),
    cmd!(
        "script",
        -2,
        "",
        Keys::None,
        "@slow",
        "scripting",
        "2.6.0",
        crate::server::help_only,
        SCRIPT_SUBCOMMANDS
    ),
];

static SCRIPT_SUBCOMMANDS: &[Command] = &[
    cmd!(
        "debug",
        3,
        "noscript",
        Keys::None,
        "@slow @scripting",
        "scripting",
        "3.2.0",
        script_debug
    ),
    cmd!(
        "flush",
        -2,
        "noscript",
        Keys::None,
        "@slow @scripting",
        "scripting",
        "2.6.0",
        script_flush
    ),
    cmd!(
        "load",
        3,
        "noscript stale",
        Keys::None,
        "@slow @scripting",
        "scripting",
        "2.6.0",
        script_load
    ),
    cmd!(
        "kill",
        2,
        "noscript allow_busy",
        Keys::None,
        "@slow @scripting",
        "scripting",
        "2.6.0",
        script_kill
    ),
    cmd!(
        "exists",
        -3,
        "noscript",
        Keys::None,
        "@slow @scripting",
        "scripting",
        "2.6.0",
        script_exists
    ),
    cmd!(
        "help",
        2,
        "loading stale",
        Keys::None,
        "@slow @scripting",
        "scripting",
        "5.0.0",
        script_help
    ),
];

/// What runs: a script body, a cached script, or a function.
#[derive(Clone)]
pub(crate) enum Target {
    /// The body and its SHA1, shared with `Scripting::shas`.
    Body(Arc<ScriptBody>),
    Sha(Vec<u8>),
    Function(Vec<u8>),
}

/// A script or function call, handed from the handler to whoever runs it.
pub struct Job {
    target: Target,
    /// Its keys, then its arguments (one buffer for all).
    words: Request,
    /// How many of `words` are keys.
    keys: usize,
    db: usize,
    resp3: bool,
    /// EVAL_RO, EVALSHA_RO, FCALL_RO.
    read_only: bool,
    /// The command (its failed calls are counted after the run).
    entry: Option<&'static crate::table::Entry>,
    /// A function's whole request (FUNCTION STATS); empty for a script.
    command: Vec<Vec<u8>>,
    /// The caller's ACL user: the script's commands run as it.
    user: Arc<crate::acl::User>,
}

/// The script running now, read by other clients (BUSY, SCRIPT KILL).
#[derive(Default)]
pub(crate) struct Running {
    /// Start time in ms (monotonic, from `mono_ns`), 0 when none runs.
    pub started: AtomicU64,
    pub kill: AtomicBool,
    /// The run touched a shard it could not take before any effect: it
    /// stops and starts again holding every shard.
    pub restart: AtomicBool,
    /// The run is on its caller's worker (see `Job::run_here`).
    pub inline: AtomicBool,
    /// An inline run went on too long before any effect: it stops, and
    /// the script thread runs it again.
    pub migrate: AtomicBool,
    pub wrote: AtomicBool,
    /// The run ended in an error a `redis.call` already counted in the
    /// error stats (the reply is not counted again).
    pub error_counted: AtomicBool,
    pub function: AtomicBool,
    /// The client that runs it (its own commands are not refused).
    pub client: AtomicU64,
    /// The function's name and its FCALL command (FUNCTION STATS).
    pub current: Mutex<Vec<Vec<u8>>>,
}

/// Scripting state shared by every thread.
pub struct Scripting {
    /// Re-entrant so that EXEC can take it before its shards and the
    /// scripting commands it runs take it again on the same thread.
    vm: ReentrantMutex<RefCell<Option<Vm>>>,
    pub(crate) running: Arc<Running>,
    /// The pseudo-client scripts' commands run as.
    info: Arc<ClientInfo>,
    /// Its WATCH flag (it never WATCHes), shared by every run's client.
    watch_dirty: Arc<AtomicBool>,
    /// Library and function counts for INFO/FUNCTION STATS readers that
    /// must not wait for a running script.
    pub(crate) libraries: AtomicUsize,
    pub(crate) functions: AtomicUsize,
    pub(crate) scripts: AtomicI64,
    /// Each library's source, for snapshots, which must not wait for the
    /// VM (they begin holding every shard; a script holds the VM).
    pub(crate) library_codes: Mutex<Vec<Vec<u8>>>,
    /// The SHA1 of each script body EVAL saw lately: a lookup costs a
    /// tenth of hashing a short body again, and less for a long one.
    shas: Mutex<ShaCache>,
    /// DEBUG SET-DISABLE-DENY-SCRIPTS: scripts may call `noscript`
    /// commands (Redis's test hook).
    pub(crate) allow_noscript: AtomicBool,
}

/// A script body EVAL saw, with its SHA1 (hex).
pub(crate) struct ScriptBody {
    pub(crate) body: Vec<u8>,
    pub(crate) sha: String,
}

/// A `ScriptBody` found by its body's bytes.
struct ByBody(Arc<ScriptBody>);

impl std::borrow::Borrow<[u8]> for ByBody {
    fn borrow(&self) -> &[u8] {
        &self.0.body
    }
}

impl PartialEq for ByBody {
    fn eq(&self, other: &Self) -> bool {
        self.0.body == other.0.body
    }
}

impl Eq for ByBody {}

impl std::hash::Hash for ByBody {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.0.body.hash(h);
    }
}

#[derive(Default)]
struct ShaCache {
    set: std::collections::HashSet<ByBody, foldhash::fast::RandomState>,
    /// Body bytes held.
    bytes: usize,
}

/// The most body bytes `Scripting::shas` keeps; past it, it starts over.
const SHA_CACHE_BYTES: usize = 4 << 20;

impl Default for Scripting {
    fn default() -> Self {
        Scripting {
            vm: ReentrantMutex::new(RefCell::new(None)),
            running: Arc::default(),
            info: Arc::new(ClientInfo::new(0, String::new(), String::new(), -1)),
            watch_dirty: Arc::default(),
            libraries: AtomicUsize::new(0),
            functions: AtomicUsize::new(0),
            scripts: AtomicI64::new(0),
            library_codes: Mutex::new(Vec::new()),
            shas: Mutex::default(),
            allow_noscript: AtomicBool::new(false),
        }
    }
}

impl Running {
    /// Killed, starting again, or moving to the script thread: the script
    /// must stop.
    pub(crate) fn stopping(&self) -> bool {
        self.kill.load(Relaxed) || self.restart.load(Relaxed) || self.migrate.load(Relaxed)
    }

    /// Milliseconds the running script has run.
    pub(crate) fn ran_ms(&self) -> u64 {
        mono_ms().saturating_sub(self.started.load(Relaxed))
    }
}

fn mono_ms() -> u64 {
    (damselfly_storage::mono_ns() / 1_000_000).max(1)
}

impl Scripting {
    /// The error a command of client `id` gets while a script is past its
    /// busy threshold, if any.
    #[inline]
    pub fn busy(&self, server: &Server, id: u64) -> Option<CmdError> {
        match self.running.started.load(Relaxed) {
            0 => None,
            started => self.busy_running(server, id, started),
        }
    }

    #[inline(never)]
    fn busy_running(&self, server: &Server, id: u64, started: u64) -> Option<CmdError> {
        if self.running.client.load(Relaxed) == id {
            return None;
        }
        let threshold = server
            .config
            .get("busy-reply-threshold")
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(5000);
        if mono_ms().saturating_sub(started) < threshold {
            return None;
        }
        Some(if self.running.function.load(Relaxed) {
            CmdError::BusyFunction
        } else {
            CmdError::BusyScript
        })
    }

    /// A script body with its SHA1: the one EVAL saw last time, shared
    /// (no copy of the body, no SHA1 to compute).
    fn body_of(&self, body: &[u8]) -> Arc<ScriptBody> {
        let mut shas = self.shas.lock();
        if let Some(known) = shas.set.get(body) {
            return known.0.clone();
        }
        let known = Arc::new(ScriptBody {
            body: body.to_vec(),
            sha: engine::sha1_hex(body),
        });
        if shas.bytes + body.len() > SHA_CACHE_BYTES {
            *shas = ShaCache::default();
        }
        shas.bytes += body.len();
        shas.set.insert(ByBody(known.clone()));
        known
    }

    /// Locks the VM if it is free and `target` is known to end quickly.
    fn try_lock_quick(&self, target: &Target) -> Option<VmLock<'_>> {
        let g = self.vm.try_lock()?;
        let quick = g
            .try_borrow()
            .ok()
            .is_some_and(|vm| vm.as_ref().is_some_and(|vm| vm.is_quick(target)));
        quick.then_some(VmLock(g))
    }

    /// Locks the VM (creating it on first use). Waits while a script runs,
    /// giving up with BUSY once it has run too long. Nobody calls this
    /// while holding a shard (EXEC takes it before its shards).
    pub(crate) fn lock_vm(&self, server: &Server, id: u64) -> Result<VmLock<'_>, CmdError> {
        let g = loop {
            if let Some(g) = self.vm.try_lock_for(Duration::from_millis(2)) {
                break g;
            }
            if let Some(e) = self.busy(server, id) {
                return Err(e);
            }
        };
        {
            let mut cell = g
                .try_borrow_mut()
                .map_err(|_| CmdError::Other("ERR the Lua engine is in use".into()))?;
            if cell.is_none() {
                *cell = Some(Vm::new().map_err(|e| CmdError::Other(format!("ERR {e}")))?);
            }
        }
        Ok(VmLock(g))
    }
}

/// The held VM lock.
pub(crate) struct VmLock<'a>(ReentrantMutexGuard<'a, RefCell<Option<Vm>>>);

impl VmLock<'_> {
    /// The VM, borrowed for one command or one run.
    pub(crate) fn vm(&self) -> Result<RefMut<'_, Vm>, CmdError> {
        self.0
            .try_borrow_mut()
            .ok()
            .and_then(|b| RefMut::filter_map(b, Option::as_mut).ok())
            .ok_or_else(|| CmdError::Other("ERR the Lua engine is in use".into()))
    }
}

/// Arguments `from..to` of a script's `Job::words` (its keys, or its
/// arguments).
#[derive(Clone, Copy)]
pub(crate) struct WordList<'a> {
    args: Args<'a>,
    from: usize,
    to: usize,
}

impl<'a> WordList<'a> {
    pub(crate) fn len(&self) -> usize {
        self.to - self.from
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn iter(&self) -> impl ExactSizeIterator<Item = &'a [u8]> + 'a {
        let args = self.args;
        (self.from..self.to).map(move |i| args.get(i).unwrap_or_default())
    }
}

/// Parses `numkeys key... arg...` from argument 2 on: copies of the keys
/// then the arguments, packed in one owned request, and the key count.
fn keys_and_args(args: &Args, function: bool) -> CmdResult<(Request, usize)> {
    let n = match crate::args::int(args.get(2).unwrap_or_default()) {
        Ok(n) => n,
        Err(_) if function => {
            return Err(CmdError::Other("ERR Bad number of keys provided".into()))
        }
        Err(e) => return Err(e),
    };
    if n < 0 {
        return Err(CmdError::NumKeysNegative);
    }
    let n = n as usize;
    if n > args.len() - 3 {
        return Err(CmdError::NumKeysTooMany);
    }
    let mut words = Request::new();
    words.clear_owned();
    let bytes = args.iter().skip(3).map(<[u8]>::len).sum();
    words.reserve_owned(args.len() - 3, bytes);
    for word in args.iter().skip(3) {
        words.push_arg(word);
    }
    Ok((words, n))
}

/// Starts a script or function: inline inside EXEC, else handed to the
/// connection (`ctx.script`) to run off the worker thread.
pub(crate) fn start(ctx: &mut Ctx, args: &Args, target: Target, read_only: bool) -> CmdResult {
    let function = matches!(target, Target::Function(_));
    let (words, keys) = keys_and_args(args, function)?;
    // FUNCTION STATS shows a function's whole command.
    let shown = if function { args.len() } else { 0 };
    let job = Job {
        entry: crate::table::lookup(args.get(0).unwrap_or_default()),
        target,
        words,
        keys,
        db: ctx.db(),
        resp3: ctx.client.resp3,
        read_only,
        command: args.iter().take(shown).map(<[u8]>::to_vec).collect(),
        user: ctx.client.user.clone(),
    };
    if ctx.client.in_exec {
        // EXEC took the VM before its shards and holds every shard.
        let lock = ctx.server.scripting.lock_vm(ctx.server, ctx.client.id())?;
        let locked = std::mem::replace(&mut ctx.locked, ctx.server.keyspace.lock_none());
        let (locked, bytes) = run(
            ctx.server,
            &lock,
            ctx.client.id(),
            locked,
            ctx.now,
            &job,
            false,
        );
        ctx.locked = locked;
        let bytes = bytes.unwrap_or_default();
        let running = &ctx.server.scripting.running;
        if bytes.starts_with(b"-") && running.error_counted.load(Relaxed) {
            // A `redis.call` counted this error already: only the failed
            // call is left to count.
            let name = args.get(0).unwrap_or_default();
            if let Some(e) = crate::table::lookup(name) {
                ctx.stats.commands[e.id].failed.add(1);
            }
            ctx.reply.raw(&bytes);
            return Ok(());
        }
        return reply_bytes(ctx.reply, bytes);
    }
    ctx.script = Some(Box::new(job));
    Ok(())
}

/// Copies a finished run's reply; an error reply goes through the
/// dispatcher so it is counted as the command's failure.
fn reply_bytes(reply: &mut Reply, bytes: Vec<u8>) -> CmdResult {
    if let Some(rest) = bytes.strip_prefix(b"-") {
        let text = rest.strip_suffix(b"\r\n").unwrap_or(rest);
        return Err(CmdError::Script(String::from_utf8_lossy(text).into_owned()));
    }
    reply.raw(&bytes);
    Ok(())
}

impl Job {
    pub(crate) fn keys(&self) -> WordList<'_> {
        self.words_between(0, self.keys)
    }

    pub(crate) fn argv(&self) -> WordList<'_> {
        self.words_between(self.keys, self.words.len())
    }

    fn words_between(&self, from: usize, to: usize) -> WordList<'_> {
        WordList {
            args: self.words.args(&[]),
            from,
            to,
        }
    }

    /// Runs the job on the calling thread, waiting for the VM: takes the
    /// VM, then the shards of its declared keys (every shard for a script
    /// or function known to touch others), runs, serves clients blocked
    /// on keys it filled, and returns the reply bytes in the caller's
    /// protocol.
    pub fn run(self, server: &Server, caller: u64) -> Vec<u8> {
        // Queued behind a script that has run too long: BUSY, as Redis
        // answers every client while one runs.
        match server.scripting.lock_vm(server, caller) {
            Ok(lock) => self
                .run_locked(server, caller, lock, false)
                .unwrap_or_default(),
            Err(err) => {
                count_script_error(server, &err.to_string());
                format!("-{err}\r\n").into_bytes()
            }
        }
    }

    /// Runs the job at once on the calling thread (its caller's worker)
    /// when the VM is free and the script ended quickly last time, else
    /// hands it back. A quick script costs its worker's other clients a
    /// few microseconds; the hand-off to the script thread costs two
    /// thread wake-ups, several times the run itself. A run that goes on
    /// past `MIGRATE_MS` having only read is stopped and handed back too,
    /// so the script thread runs it where SCRIPT KILL can reach it.
    pub fn run_here(self, server: &Server, caller: u64) -> Result<Vec<u8>, Job> {
        let Some(lock) = server.scripting.try_lock_quick(&self.target) else {
            return Err(self);
        };
        self.run_locked(server, caller, lock, true).ok_or(self)
    }

    /// Runs the job holding the VM; `None`: an inline run was stopped
    /// before any effect, to run again on the script thread.
    fn run_locked(
        &self,
        server: &Server,
        caller: u64,
        lock: VmLock<'_>,
        inline: bool,
    ) -> Option<Vec<u8>> {
        let ks = &server.keyspace;
        let all = lock.vm().map_or(true, |vm| vm.needs_all(&self.target));
        let locked = if all {
            ks.lock_all()
        } else {
            let mut shards: smallvec::SmallVec<[usize; 4]> =
                self.keys().iter().map(|k| ks.shard_of(k)).collect();
            ks.lock(&mut shards)
        };
        let now = damselfly_storage::now_ms();
        // The script's writes count as the caller's (NOLOOP tracking, and
        // messages to itself around the reply), as on its worker thread.
        crate::pubsub::set_current(caller);
        damselfly_replication::master::enter(&server.repl, false);
        let (mut locked, bytes) = run(server, &lock, caller, locked, now, self, inline);
        let counted = server.scripting.running.error_counted.load(Relaxed);
        crate::tracking::after_script(server, caller, self.keys());
        // The script's effects go out as one MULTI/EXEC, under its locks,
        // before the pops of the clients it serves.
        let woff = damselfly_replication::master::flush(&server.repl);
        crate::list::serve_ready(server, &server.thread_stats(), &mut locked, now);
        damselfly_replication::master::leave(&server.repl);
        drop(locked);
        drop(lock);
        // The script's writes are its caller's (WAIT).
        if let (Some(off), Some(c)) = (woff, server.clients.get(caller)) {
            c.woff.store(off, Relaxed);
        }
        server.tracking.flush_bcast(&server.pubsub);
        crate::pubsub::set_current(0);

        let bytes = bytes?;
        // The dispatcher saw EVAL succeed (it only queued the job): an
        // error reply is counted here (the command's failed calls, and
        // INFO errorstats unless a `redis.call` counted it already).
        if let (true, Some(e)) = (bytes.starts_with(b"-"), self.entry) {
            server.thread_stats().commands[e.id].failed.add(1);
        }
        if let Some(rest) = bytes.strip_prefix(b"-").filter(|_| !counted) {
            count_script_error(
                server,
                &String::from_utf8_lossy(rest.strip_suffix(b"\r\n").unwrap_or(rest)),
            );
        }
        let mut framed = damselfly_protocol::Reply::from_bytes(bytes, self.resp3);
        crate::pubsub::splice_self(&mut framed, 0);
        crate::pubsub::append_self_after(&mut framed);
        Some(framed.into_bytes())
    }
}

fn count_script_error(server: &Server, text: &str) {
    crate::dispatch::count_error(&server.thread_stats(), &CmdError::Script(text.to_owned()));
}

/// Runs `job` with the VM and `locked` (its declared shards, or every
/// shard), returning the locks and the reply bytes. A run that needs a
/// shard it cannot take before it has had any effect starts again
/// holding every shard; one that could not take it after an effect
/// escalates. Either way the script is remembered as one that needs them
/// all.
fn run<'s>(
    server: &'s Server,
    lock: &VmLock<'_>,
    caller: u64,
    mut locked: damselfly_storage::Locked<'s>,
    now: u64,
    job: &Job,
    inline: bool,
) -> (damselfly_storage::Locked<'s>, Option<Vec<u8>>) {
    let sc = &server.scripting;
    let mut out = Reply::new();
    out.set_resp3(job.resp3);
    let mut vm = match lock.vm() {
        Ok(vm) => vm,
        Err(e) => {
            out.error(&e.to_string());
            return (locked, Some(out.into_bytes()));
        }
    };
    let stats = server.thread_stats();
    let running = &sc.running;
    running.kill.store(false, Relaxed);
    running.restart.store(false, Relaxed);
    running.migrate.store(false, Relaxed);
    running.inline.store(inline, Relaxed);
    running.wrote.store(false, Relaxed);
    running.error_counted.store(false, Relaxed);
    running
        .function
        .store(matches!(job.target, Target::Function(_)), Relaxed);
    running.client.store(caller, Relaxed);
    if let Target::Function(name) = &job.target {
        let mut cur = running.current.lock();
        cur.clear();
        cur.push(name.clone());
        cur.extend(job.command.iter().cloned());
    }
    let began = damselfly_storage::mono_ns();
    running.started.store(mono_ms(), Relaxed);
    loop {
        let mut client = Client::with_watch_flag(
            sc.info.clone(),
            job.user.clone(),
            true,
            sc.watch_dirty.clone(),
        );
        client.select(job.db);
        client.in_exec = true;
        client.in_script = true;
        let mut rc = engine::RunCtx {
            server,
            stats: &stats,
            client,
            locked,
            now,
            running: running.clone(),
        };
        let escalations = server.keyspace.escalations();
        let result = vm.run(&mut rc, job, &mut out);
        locked = rc.locked;
        // A run that had to escalate takes every shard up front next time.
        if server.keyspace.escalations() != escalations {
            vm.set_needs_all(&job.target);
        }
        if running.migrate.swap(false, Relaxed) {
            // It had only read (see the hook in `engine::execute`): no
            // one can tell it ran. The script thread runs it again.
            vm.set_quick(&job.target, false);
            running.inline.store(false, Relaxed);
            running.started.store(0, Relaxed);
            return (locked, None);
        }
        if running.restart.swap(false, Relaxed) {
            // Nothing was written or sent: no one can tell the first
            // attempt happened. The VM is still held, so taking shards
            // in order now is safe.
            vm.set_needs_all(&job.target);
            running.wrote.store(false, Relaxed);
            drop(locked);
            locked = server.keyspace.lock_all();
            out = Reply::new();
            out.set_resp3(job.resp3);
            continue;
        }
        if let Err(e) = result {
            out.error(&e.to_string());
        }
        break;
    }
    let took = damselfly_storage::mono_ns().saturating_sub(began);
    let quick = took < engine::QUICK_RUN_NS && !running.kill.load(Relaxed);
    vm.set_quick(&job.target, quick);
    running.inline.store(false, Relaxed);
    running.started.store(0, Relaxed);
    sc.scripts.store(vm.script_count() as i64, Relaxed);
    (locked, Some(out.into_bytes()))
}

/// EVAL script numkeys [key ...] [arg ...]
fn eval(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let body = ctx
        .server
        .scripting
        .body_of(args.get(1).unwrap_or_default());
    start(ctx, args, Target::Body(body), false)
}

/// EVAL_RO script numkeys [key ...] [arg ...]
fn eval_ro(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let body = ctx
        .server
        .scripting
        .body_of(args.get(1).unwrap_or_default());
    start(ctx, args, Target::Body(body), true)
}

/// EVALSHA sha1 numkeys [key ...] [arg ...]
fn evalsha(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let sha = args.get(1).unwrap_or_default().to_ascii_lowercase();
    start(ctx, args, Target::Sha(sha), false)
}

/// EVALSHA_RO sha1 numkeys [key ...] [arg ...]
fn evalsha_ro(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let sha = args.get(1).unwrap_or_default().to_ascii_lowercase();
    start(ctx, args, Target::Sha(sha), true)
}

/// SCRIPT LOAD script
fn script_load(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let body = args.get(2).unwrap_or_default();
    let sc = &ctx.server.scripting;
    let lock = sc.lock_vm(ctx.server, ctx.client.id())?;
    let mut vm = lock.vm()?;
    let sha = vm.load_script(body)?;
    sc.scripts.store(vm.script_count() as i64, Relaxed);
    ctx.reply.bulk(sha.as_bytes());
    Ok(())
}

/// SCRIPT EXISTS sha1 [sha1 ...]
fn script_exists(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let sc = &ctx.server.scripting;
    let lock = sc.lock_vm(ctx.server, ctx.client.id())?;
    let vm = lock.vm()?;
    ctx.reply.array(args.len() - 2);
    for sha in args.iter().skip(2) {
        ctx.reply
            .int(i64::from(vm.has_script(&sha.to_ascii_lowercase())));
    }
    Ok(())
}

/// SCRIPT FLUSH [ASYNC | SYNC]
fn script_flush(ctx: &mut Ctx, args: &Args) -> CmdResult {
    flush_mode(args, "SCRIPT")?;
    let sc = &ctx.server.scripting;
    let lock = sc.lock_vm(ctx.server, ctx.client.id())?;
    let mut vm = lock.vm()?;
    vm.flush_scripts()
        .map_err(|e| CmdError::Other(format!("ERR {e}")))?;
    sc.scripts.store(0, Relaxed);
    ctx.reply.ok();
    Ok(())
}

/// The optional ASYNC | SYNC of SCRIPT FLUSH and FUNCTION FLUSH (both
/// flush at once: there is nothing large to free in the background).
pub(crate) fn flush_mode(args: &Args, cmd: &str) -> CmdResult {
    match args.len() {
        2 => Ok(()),
        3 => {
            let m = args.get(2).unwrap_or_default();
            if crate::args::eq(m, "async") || crate::args::eq(m, "sync") {
                Ok(())
            } else {
                Err(CmdError::Other(format!(
                    "ERR {cmd} FLUSH only {} SYNC|ASYNC option",
                    if cmd == "SCRIPT" {
                        "support"
                    } else {
                        "supports"
                    }
                )))
            }
        }
        _ => Err(CmdError::SubcommandSyntax {
            sub: args.get(1).unwrap_or_default().to_vec(),
            cmd: cmd.into(),
        }),
    }
}

/// SCRIPT KILL
fn script_kill(ctx: &mut Ctx, _args: &Args) -> CmdResult {
    kill(ctx, false)
}

/// SCRIPT KILL and FUNCTION KILL: stop the running script if it has not
/// written.
pub(crate) fn kill(ctx: &mut Ctx, function: bool) -> CmdResult {
    let r = &ctx.server.scripting.running;
    if r.started.load(Relaxed) == 0 {
        return Err(CmdError::NotBusy);
    }
    if r.function.load(Relaxed) != function {
        return Err(if function {
            CmdError::BusyScript
        } else {
            CmdError::BusyFunction
        });
    }
    if r.wrote.load(Relaxed) {
        return Err(CmdError::Unkillable);
    }
    r.kill.store(true, Relaxed);
    ctx.reply.ok();
    Ok(())
}

/// SCRIPT DEBUG YES|SYNC|NO
/// NO is what scripts always run as; the Lua debugger (YES, SYNC) is not
/// there, so asking for it is an error rather than a silent no-op.
fn script_debug(ctx: &mut Ctx, args: &Args) -> CmdResult {
    // Redis refuses it while replies are pending (a pipeline, EXEC).
    if !ctx.reply.is_empty() || ctx.client.in_exec {
        return Err(CmdError::ScriptDebugPipeline);
    }
    let mode = args.get(2).unwrap_or_default();
    if crate::args::eq(mode, "no") {
        ctx.reply.ok();
        Ok(())
    } else if crate::args::eq(mode, "yes") || crate::args::eq(mode, "sync") {
        Err(CmdError::ScriptDebugAbsent)
    } else {
        Err(CmdError::ScriptDebugMode)
    }
}

/// SCRIPT HELP
fn script_help(ctx: &mut Ctx, _args: &Args) -> CmdResult {
    const LINES: &[&str] = &[
        "DEBUG (YES|SYNC|NO)",
        "    Set the debug mode for subsequent scripts executed.",
        "EXISTS <sha1> [<sha1> ...]",
        "    Return information about the existence of the scripts in the script cache.",
        "FLUSH [ASYNC|SYNC]",
        "    Flush the Lua scripts cache. Very dangerous on replicas.",
        "    When called without the optional mode argument, the behavior is determined by the",
        "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
        "    * ASYNC: Asynchronously flush the scripts cache.",
        "    * SYNC: Synchronously flush the scripts cache.",
        "KILL",
        "    Kill the currently executing Lua script.",
        "LOAD <script>",
        "    Load a script into the scripts cache without executing it.",
    ];
    crate::server::reply_help(ctx, "SCRIPT", LINES);
    Ok(())
}

/// Whether `e` is a script or function call (EXEC locks every shard for
/// one, since a script may touch keys it did not declare).
pub(crate) fn is_script(e: &Entry) -> bool {
    matches!(
        e.cmd.name,
        "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro"
    )
}
