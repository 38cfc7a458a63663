//! The Lua side: one sandboxed Lua state for EVAL scripts (and one per
//! function engine, see `functions.rs`), the `redis` library, the
//! Lua <-> RESP conversions and Redis's error formatting.
//!
//! The sandbox: user code runs with a read-only proxy as its global table
//! (reading an unknown global or writing any global is an error, as in
//! Redis 7), the libraries Redis leaves out (os, io, loadfile, dofile,
//! print, debug, ...) are gone, and the `redis`, `cjson`, `cmsgpack`,
//! `bit` and `struct` tables are read-only proxies too.

use super::{resp, Job, Running, Target, WordList};
use crate::client::Client;
use crate::ctx::Ctx;
use crate::error::CmdError;
use crate::state::{Server, ThreadStats};
use crate::table::{flag, Keys};
use damselfly_protocol::{Reply, Request};
use damselfly_storage::Locked;
use mlua::{Function, HookTriggers, Lua, MultiValue, Table, Value, VmState};
use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// Maps keyed by SHA1s and names: SipHash cost more than the rest of a
/// short script's lookups.
pub(crate) type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
pub(crate) type FastSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

/// Everything a running script's `redis.call` needs.
pub(crate) struct RunCtx<'s, 'l> {
    pub server: &'s Server,
    pub stats: &'l ThreadStats,
    pub client: Client,
    pub locked: Locked<'s>,
    pub now: u64,
    pub running: Arc<Running>,
}

/// Shebang flags of a script (`#!lua flags=...`).
#[derive(Clone, Copy, Default)]
pub(crate) struct ScriptFlags {
    pub no_writes: bool,
    pub allow_oom: bool,
    /// Runs on a replica whose master link is down under
    /// `replica-serve-stale-data no` (others get -MASTERDOWN).
    pub allow_stale: bool,
    /// The script declared its flags (a shebang, or a function): it is
    /// checked as a whole before it runs (replicas, memory), not only at
    /// each write.
    pub declared: bool,
}

pub(crate) struct Script {
    func: Function,
    flags: ScriptFlags,
}

/// The EVAL engine and the function engine.
pub struct Vm {
    lua: Lua,
    scripts: FastMap<String, Script>,
    pub(crate) functions: super::functions::Engine,
    /// Scripts (by SHA1) and functions (by name, after a 0 byte) seen to
    /// touch shards beyond their declared keys: they lock every shard up
    /// front instead of restarting (scripts that build key names from a
    /// prefix argument).
    needs_all: FastSet<Vec<u8>>,
    /// Scripts (by SHA1) whose last run ended within `QUICK_RUN_NS`: they
    /// may run on their caller's worker (functions keep theirs in the
    /// function engine, which forgets them when a library changes).
    quick: FastSet<Vec<u8>>,
}

/// A run this short may happen on the caller's worker next time: its
/// other clients wait no longer than for a large LRANGE.
pub(crate) const QUICK_RUN_NS: u64 = 1_000_000;

/// A quick script that has run this long on a worker having only read is
/// stopped there and run again on the script thread (see `Job::run_here`).
const MIGRATE_MS: u64 = 2;

const SHEBANG_FLAGS: &[&str] = &[
    "no-writes",
    "allow-oom",
    "allow-stale",
    "no-cluster",
    "allow-cross-slot-keys",
];

/// Splits a `#!lua` shebang off `body`: its flags and the body with the
/// shebang line blanked (line numbers stay right).
pub(crate) fn shebang(body: &[u8]) -> Result<(ScriptFlags, Vec<u8>), CmdError> {
    if !body.starts_with(b"#!") {
        return Ok((ScriptFlags::default(), body.to_vec()));
    }
    let Some(nl) = body.iter().position(|&c| c == b'\n') else {
        return Err(CmdError::ShebangInvalid);
    };
    let line = String::from_utf8_lossy(&body[..nl]).into_owned();
    let mut words = line.split(' ').filter(|w| !w.is_empty());
    let engine = words.next().unwrap_or_default();
    if engine != "#!lua" {
        return Err(CmdError::ShebangEngine(engine.to_string()));
    }
    let mut flags = ScriptFlags {
        declared: true,
        ..ScriptFlags::default()
    };
    for w in words {
        let Some(list) = w.strip_prefix("flags=") else {
            return Err(CmdError::ShebangOption(w.to_string()));
        };
        for f in list.split(',').filter(|f| !f.is_empty()) {
            if !SHEBANG_FLAGS.contains(&f) {
                return Err(CmdError::ShebangFlag(f.to_string()));
            }
            if f == "no-writes" {
                flags.no_writes = true;
            }
            if f == "allow-oom" {
                flags.allow_oom = true;
            }
            if f == "allow-stale" {
                flags.allow_stale = true;
            }
        }
    }
    Ok((flags, body[nl..].to_vec()))
}

pub(crate) fn sha1_hex(b: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = sha1_smol::Sha1::from(b).digest().bytes();
    let mut hex = String::with_capacity(40);
    for byte in digest {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 15)]));
    }
    hex
}

/// Creates a sandboxed Lua state: the safe standard libraries, the extra
/// libraries, the `redis` table (its call-time functions are bound per
/// run) and the read-only global proxy, kept in the registry as
/// `sandbox`. Also used by the function engine.
pub(crate) fn new_lua() -> mlua::Result<Lua> {
    let lua = Lua::new();
    let g = lua.globals();
    super::libs::register(&lua, &g)?;
    let redis = lua.create_table()?;
    redis.set("REDIS_VERSION", "7.0.15")?;
    redis.set("REDIS_VERSION_NUM", 0x07000f)?;
    for (i, n) in ["LOG_DEBUG", "LOG_VERBOSE", "LOG_NOTICE", "LOG_WARNING"]
        .iter()
        .enumerate()
    {
        redis.set(*n, i as i64)?;
    }
    redis.set("REPL_NONE", 0)?;
    redis.set("REPL_AOF", 1)?;
    redis.set("REPL_SLAVE", 2)?;
    redis.set("REPL_REPLICA", 2)?;
    redis.set("REPL_ALL", 3)?;
    redis.set(
        "error_reply",
        lua.create_function(|lua, args: MultiValue| reply_table(lua, args, "err"))?,
    )?;
    redis.set(
        "status_reply",
        lua.create_function(|lua, args: MultiValue| reply_table(lua, args, "ok"))?,
    )?;
    redis.set("replicate_commands", lua.create_function(|_, ()| Ok(true))?)?;
    redis.set("breakpoint", lua.create_function(|_, ()| Ok(false))?)?;
    redis.set("debug", lua.create_function(|_, _: MultiValue| Ok(()))?)?;
    g.set("redis", redis)?;
    lua.load(SANDBOX).set_name("=sandbox").exec()?;
    let g = lua.globals();
    let impl_: Table = g.raw_get("__impl")?;
    lua.set_named_registry_value("impl", &impl_)?;
    let sandbox: Table = g.raw_get("__sandbox")?;
    lua.set_named_registry_value("sandbox", sandbox)?;
    let real: Table = g.raw_get("__real_redis")?;
    bind_callbacks(&lua, &impl_)?;
    for (name, f) in RAISING {
        let f = match *name {
            // The callback travels as the C function's upvalue: no lookup
            // by name (two string internings) per `redis.call`.
            "call" | "pcall" => {
                let callback: Function = impl_.raw_get(*name)?;
                let finish: Function = impl_.raw_get(format!("finish_{name}"))?;
                // SAFETY: the two callbacks are the arguments on the
                // stack; `lua_pushcclosure` pops them as the upvalues of a
                // valid lua_CFunction (see `forward_command`) and leaves
                // the closure, the one result.
                unsafe {
                    lua.exec_raw::<Function>((callback, finish), |state| {
                        mlua::ffi::lua_pushcclosure(state, *f, 2);
                    })?
                }
            }
            // SAFETY: each function is a valid lua_CFunction (see `forward`).
            _ => unsafe { lua.create_c_function(*f)? },
        };
        // register_function exists only in a function library's load-time
        // `redis` table (see functions.rs).
        if *name == "register_function" {
            lua.set_named_registry_value("register_function", f)?;
        } else {
            real.raw_set(*name, f)?;
        }
    }
    impl_.raw_set(
        "register_function",
        lua.create_function(|lua, _: Table| {
            raise(
                lua,
                "ERR redis.register_function can only be called on FUNCTION LOAD command",
            )
        })?,
    )?;
    let bind: Function = g.raw_get("__bind")?;
    lua.set_named_registry_value("bind", bind)?;
    g.raw_set("__bind", Value::Nil)?;
    g.raw_set("__impl", Value::Nil)?;
    g.raw_set("__sandbox", Value::Nil)?;
    impl_.raw_set(
        "sha1hex",
        lua.create_function(|lua, packed: Table| {
            let args = unpack_args(&packed)?;
            if args.len() != 1 {
                return raise(lua, "ERR wrong number of arguments");
            }
            let s = lua.coerce_string(args.into_iter().next().unwrap_or(Value::Nil))?;
            let bytes = s.map(|s| s.as_bytes().to_vec()).unwrap_or_default();
            Ok((true, Value::String(lua.create_string(sha1_hex(&bytes))?)))
        })?,
    )?;
    impl_.raw_set(
        "set_repl",
        lua.create_function(|lua, packed: Table| {
            let args = unpack_args(&packed)?;
            if args.len() != 1 {
                return raise(lua, "ERR redis.set_repl() requires two arguments.");
            }
            let args_first = args.into_iter().next();
            let ok = match args_first {
                Some(Value::Integer(n)) => (0..=3).contains(&n),
                Some(Value::Number(n)) => (0.0..=3.0).contains(&n),
                _ => false,
            };
            if !ok {
                return raise(
                    lua,
                    "ERR Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.",
                );
            }
            // REPL_REPLICA (2) is the bit that matters: there is no AOF.
            let replicate = match args_first {
                Some(Value::Integer(n)) => n & 2 != 0,
                Some(Value::Number(n)) => (n as i64) & 2 != 0,
                _ => true,
            };
            with_active(|a| a.run.borrow_mut().replicate = replicate);
            Ok((true, Value::Nil))
        })?,
    )?;
    Ok(lua)
}

/// `redis.call` and the other `redis.*` functions that raise errors are C
/// functions (so a `return redis.call(...)` tail call keeps the script's
/// frame, whose line the error reports). Each forwards to the Rust
/// callback `impl[name]` (set in the registry table `impl`), which
/// returns (ok, value), and raises `value` as a plain string when not ok.
///
/// # Safety
/// `state` is the running Lua state that called the function, `key` is
/// NUL-terminated. `forward` holds nothing that needs dropping, so the
/// longjmp of `lua_call` or `lua_error` through it skips no destructor.
unsafe fn forward(state: *mut mlua::lua_State, key: &'static [u8]) -> std::os::raw::c_int {
    use mlua::ffi;
    // SAFETY: see the function's contract; every index used is on the stack.
    unsafe {
        // At most two slots above the arguments are used, within the
        // LUA_MINSTACK (20) Lua guarantees a C function: no checkstack,
        // which would refuse a call with 7999 arguments (unpack).
        let n = ffi::lua_gettop(state);
        // The arguments go in one table {n=N, ...}: mlua refuses a
        // callback with thousands of arguments.
        ffi::lua_createtable(state, n, 1);
        ffi::lua_insert(state, 1);
        for i in (1..=n).rev() {
            ffi::lua_rawseti(state, 1, ffi::lua_Integer::from(i));
        }
        ffi::lua_pushinteger(state, ffi::lua_Integer::from(n));
        ffi::lua_setfield(state, 1, c"n".as_ptr());
        ffi::lua_getfield(state, ffi::LUA_REGISTRYINDEX, c"impl".as_ptr());
        ffi::lua_getfield(state, -1, key.as_ptr().cast());
        ffi::lua_remove(state, -2);
        ffi::lua_insert(state, 1);
        ffi::lua_call(state, 1, 2);
        if ffi::lua_toboolean(state, -2) != 0 {
            return 1;
        }
        ffi::lua_error(state)
    }
}

/// The arguments of a `redis.call` / `redis.pcall`, as a request.
#[derive(Default)]
struct CallArgs {
    req: Request,
    /// One was neither a string nor a number.
    bad_type: bool,
}

thread_local! {
    /// Handed from `forward_command` to the `call`/`pcall` callback, and
    /// back (its buffers serve the next call).
    static CALL_ARGS: RefCell<CallArgs> = RefCell::default();
}

/// `redis.call` and `redis.pcall`: like `forward`, but the arguments are
/// read off the Lua stack straight into command strings (`CALL_ARGS`)
/// and the callback gets none: packing them into a table for the
/// callback to unpack into Lua values cost a tenth of a short script.
/// A command that passes its checks runs at once (`run_quietly`) and a
/// plain reply is pushed here; the rest goes through the callbacks, the
/// C closure's upvalues (see `new_lua`): the full path (1), which also
/// says why a command was refused, or the conversion of a reply that is
/// not plain (2).
///
/// # Safety
/// `state` is the running Lua state that called the closure made by
/// `new_lua`, whose upvalues are the callbacks. A plain reply's bytes are
/// read through the pointers `plain_reply` returns: `run.scratch` does
/// not change until the next `redis.call`. As `forward`, reading the
/// arguments uses only Lua API calls that cannot raise (`lua_type`,
/// `lua_tolstring` on strings, `lua_tonumber`), and the strings go into a
/// thread-local, so no Rust value with a destructor is live in this frame
/// when `lua_call` or `lua_error` may longjmp through it.
unsafe fn forward_command(state: *mut mlua::lua_State) -> std::os::raw::c_int {
    use mlua::ffi;
    // SAFETY: see the function's contract; every index used is on the stack.
    unsafe {
        let n = ffi::lua_gettop(state);
        CALL_ARGS.with(|a| {
            let mut a = a.borrow_mut();
            a.req.clear_owned();
            a.bad_type = false;
            for i in 1..=n {
                match ffi::lua_type(state, i) {
                    ffi::LUA_TSTRING => {
                        let mut len = 0usize;
                        let p = ffi::lua_tolstring(state, i, &mut len);
                        a.req
                            .push_arg(std::slice::from_raw_parts(p.cast::<u8>(), len));
                    }
                    ffi::LUA_TNUMBER => a.req.push_arg(&number_arg(ffi::lua_tonumber(state, i))),
                    _ => a.bad_type = true,
                }
            }
        });
        ffi::lua_settop(state, 0);
        // The common case without the Rust callback and Lua values made
        // by mlua: a command that passes its checks and replies with a
        // plain value.
        let callback = match std::panic::catch_unwind(run_quietly) {
            Ok(false) => 1,
            Ok(true) => match plain_reply() {
                Some((p, len)) => {
                    push_plain(state, std::slice::from_raw_parts(p, len));
                    plain_done();
                    return 1;
                }
                None => 2,
            },
            Err(payload) => {
                PANIC.with(|p| *p.borrow_mut() = Some(payload));
                ffi::lua_pushstring(state, c"panic in redis.call".as_ptr());
                ffi::lua_error(state)
            }
        };
        ffi::lua_pushvalue(state, ffi::lua_upvalueindex(callback));
        ffi::lua_call(state, 0, 2);
        if ffi::lua_toboolean(state, -2) != 0 {
            return 1;
        }
        ffi::lua_error(state)
    }
}

/// A number argument of `redis.call` as mlua would have converted it: an
/// integral value in i64's range as an integer, any other in shortest
/// form.
fn number_arg(n: f64) -> Vec<u8> {
    const I64_END: f64 = 9_223_372_036_854_775_808.0;
    if n.fract() == 0.0 && (-I64_END..I64_END).contains(&n) {
        (n as i64).to_string().into_bytes()
    } else {
        shortest(n).into_bytes()
    }
}

unsafe extern "C-unwind" fn c_call(state: *mut mlua::lua_State) -> std::os::raw::c_int {
    // SAFETY: Lua calls this closure (made by `new_lua`) with its
    // running state.
    unsafe { forward_command(state) }
}

unsafe extern "C-unwind" fn c_pcall(state: *mut mlua::lua_State) -> std::os::raw::c_int {
    // SAFETY: as `c_call`.
    unsafe { forward_command(state) }
}

macro_rules! raising {
    ($($fname:ident => $key:literal),* $(,)?) => {
        $(
            unsafe extern "C-unwind" fn $fname(state: *mut mlua::lua_State) -> std::os::raw::c_int {
                // SAFETY: Lua calls this with its running state; the key is
                // a NUL-terminated literal.
                unsafe { forward(state, concat!($key, "\0").as_bytes()) }
            }
        )*
        const RAISING: &[(&str, mlua::lua_CFunction)] =
            &[("call", c_call), ("pcall", c_pcall), $(($key, $fname)),*];
    };
}

raising! {
    c_setresp => "setresp",
    c_log => "log",
    c_sha1hex => "sha1hex",
    c_set_repl => "set_repl",
    c_acl_check_cmd => "acl_check_cmd",
    c_register_function => "register_function",
}

/// The arguments `forward` packed into `{n=N, ...}`.
pub(crate) fn unpack_args(t: &Table) -> mlua::Result<MultiValue> {
    let n: i64 = t.raw_get("n")?;
    (1..=n).map(|i| t.raw_get::<Value>(i)).collect()
}

/// A failed `redis.*` call: the Lua wrapper raises `msg` as a plain
/// string, marked as a library error (reported without an `ERR ` prefix).
fn raise(lua: &Lua, msg: &str) -> mlua::Result<(bool, Value)> {
    lua.set_named_registry_value("raised", msg)?;
    lua.unset_named_registry_value("raised_counted")?;
    Ok((false, Value::String(lua.create_string(msg)?)))
}

/// `redis.error_reply(msg)` and `redis.status_reply(msg)`.
fn reply_table(lua: &Lua, args: MultiValue, field: &str) -> mlua::Result<Value> {
    let t = lua.create_table()?;
    let s = match (args.len(), args.into_iter().next()) {
        (1, Some(Value::String(s))) => s.as_bytes().to_vec(),
        _ => {
            t.set("err", "ERR wrong number or type of arguments")?;
            return Ok(Value::Table(t));
        }
    };
    if field == "ok" {
        t.set("ok", lua.create_string(&s)?)?;
        return Ok(Value::Table(t));
    }
    // "-CODE msg" keeps its code; a bare word or an empty string gets ERR.
    let body = s.strip_prefix(b"-").unwrap_or(&s);
    let msg = if s.starts_with(b"-") && body.contains(&b' ')
        || !s.starts_with(b"-") && s.contains(&b' ')
    {
        body.to_vec()
    } else {
        [b"ERR ".as_slice(), body].concat()
    };
    t.set("err", lua.create_string(&msg)?)?;
    Ok(Value::Table(t))
}

/// Lua code run once per state, with the full standard library, to build
/// the sandbox. `raise` errors with a string at level 0 (no position).
const SANDBOX: &str = r#"
local G = _G
local rawget, error, tostring, setmetatable, setfenv = rawget, error, tostring, setmetatable, setfenv
local loadstring_raw, load_raw = loadstring, load
for _, n in ipairs({"print", "dofile", "loadfile", "getfenv", "setfenv", "module",
                    "require", "newproxy", "os", "io", "package", "debug"}) do
  G[n] = nil
end
local raw_setmetatable = setmetatable
local protected = raw_setmetatable({}, {__mode = "k"})
local function deny() error("Attempt to modify a readonly table", 2) end
-- A proxy's metatable shows as a read-only copy, and cannot be replaced.
local function protect(t, mt)
  local shown = {}
  for k, v in pairs(mt) do shown[k] = v end
  mt.__metatable = raw_setmetatable({}, {__index = shown, __newindex = deny, __metatable = false})
  protected[t] = true
  return raw_setmetatable(t, mt)
end
G.setmetatable = function(t, mt)
  if protected[t] then error("Attempt to modify a readonly table", 2) end
  return raw_setmetatable(t, mt)
end
local function readonly(t)
  return protect({}, {
    __index = t,
    __newindex = deny,
  })
end
local function missing(_, k)
  error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
end
-- Reads go through a table, not a function, so a global that exists is
-- found without a call; only a missing one reaches `missing` (G's own
-- metatable, set last). The metatable shown to scripts keeps G hidden.
local proxy = {}
protected[proxy] = true
raw_setmetatable(proxy, {
  __index = G,
  __newindex = deny,
  __metatable = raw_setmetatable({}, {
    __index = {
      __index = function(_, k)
        local v = rawget(G, k)
        if v == nil then missing(_, k) end
        return v
      end,
      __newindex = deny,
    },
    __newindex = deny,
    __metatable = false,
  }),
})
for _, n in ipairs({"redis", "cjson", "cmsgpack", "bit", "struct"}) do
  G["__real_" .. n] = G[n]
  G[n] = readonly(G[n])
end
G.loadstring = function(s, name)
  -- Precompiled bytecode is refused, as Redis does.
  if type(s) == "string" and s:byte(1) == 27 then
    return nil, "attempt to load a binary chunk"
  end
  local f, e = loadstring_raw(s, name)
  if f then setfenv(f, proxy) end
  return f, e
end
G.load = function(fn, name)
  local f, e = load_raw(fn, name)
  if f then setfenv(f, proxy) end
  return f, e
end
local impl = {}
G._G = proxy
__sandbox = proxy
__impl = impl
__bind = function(f, a, b) return function() return f(a, b) end end
-- As Redis's read-only tables: rawset cannot write them, and rawget on
-- the global proxy reads the globals.
local raw_rawset, raw_rawget = rawset, rawget
G.rawset = function(t, k, v)
  if protected[t] then error("Attempt to modify a readonly table", 0) end
  return raw_rawset(t, k, v)
end
G.rawget = function(t, k)
  if t == proxy then t = G end
  return raw_rawget(t, k)
end
raw_setmetatable(G, {__index = missing, __metatable = false})
"#;

/// A script error's location, taken by the message handler while the
/// failing frame is still on the stack.
#[derive(Default)]
struct Failure {
    source: Option<String>,
    line: i32,
}

/// Per-run state the `redis.*` callbacks share.
struct Run<'a, 's, 'l> {
    rc: &'a mut RunCtx<'s, 'l>,
    /// `redis.setresp`: the protocol of replies given to the script.
    resp3: bool,
    no_writes: bool,
    allow_oom: bool,
    /// Every command so far was a read: the run may still start again.
    pure: bool,
    /// `redis.set_repl`: the script's commands go to replicas.
    replicate: bool,
    /// Each `redis.call`'s reply, written here and converted to Lua.
    scratch: Reply,
}

/// A run's state, reached by the `redis.*` callbacks through `ACTIVE`.
struct Active<'a, 's, 'l> {
    run: RefCell<Run<'a, 's, 'l>>,
    failure: RefCell<Failure>,
}

thread_local! {
    /// The `Active` of the run in progress on this thread, or null. The
    /// callbacks are made once per Lua state: a scope of fresh callbacks
    /// per run cost six userdata and their collection, about a quarter of
    /// a short script's run.
    static ACTIVE: Cell<*const ()> = const { Cell::new(std::ptr::null()) };
}

/// Points `ACTIVE` at a run until dropped.
struct Bind(*const ());

impl Bind {
    fn new(active: &Active<'_, '_, '_>) -> Bind {
        let ptr = (active as *const Active<'_, '_, '_>).cast::<()>();
        Bind(ACTIVE.with(|a| a.replace(ptr)))
    }
}

impl Drop for Bind {
    fn drop(&mut self) {
        ACTIVE.with(|a| a.set(self.0));
    }
}

/// Calls `f` with the run in progress on this thread, if any.
fn with_active<R>(f: impl FnOnce(&Active<'_, '_, '_>) -> R) -> Option<R> {
    let ptr = ACTIVE.with(Cell::get);
    if ptr.is_null() {
        return None;
    }
    // SAFETY: a non-null ACTIVE was set by `Bind::new` from an `Active`
    // that `execute` declares before the `Bind` and so outlives it; the
    // Bind puts the previous value back when it drops, unwinding
    // included, so the pointer never outlives the run. The pointer is
    // thread-local, so only this thread, inside that run, reads it. `f`
    // is generic over the lifetimes, so the reference cannot leave it.
    let active = unsafe { &*ptr.cast::<Active<'_, '_, '_>>() };
    Some(f(active))
}

/// A `redis.*` callback called with no run on this thread (by a function
/// library while it loads).
fn unbound(lua: &Lua) -> mlua::Result<(bool, Value)> {
    raise(lua, "ERR This Redis command is not allowed from script")
}

/// What each run uses from its Lua state, looked up once.
struct Glue {
    /// `c_run`, with the message handler (which notes where the script
    /// failed) as its upvalue.
    runner: Function,
    /// The run hook (`execute`'s) is installed: it stays from run to run
    /// (installing it costs an allocation), until a run that was stopped
    /// (its hook replaced) or a FUNCTION LOAD (its own hook) removes it.
    hooked: Cell<bool>,
}

/// Someone replaced or removed `lua`'s hook: the next run installs the
/// run hook again.
pub(crate) fn hook_removed(lua: &Lua) {
    if let Some(g) = lua.app_data_ref::<Glue>() {
        g.hooked.set(false);
    }
}

thread_local! {
    /// `redis.call`'s reply buffer, kept from run to run on this thread (a
    /// fresh one would be allocated by each run's first call).
    static SCRATCH: RefCell<Reply> = RefCell::default();
}

/// Makes the run-time `redis.*` callbacks (`impl[name]`, see `forward`)
/// and the message handler; each reaches the run through `ACTIVE`.
fn bind_callbacks(lua: &Lua, impl_: &Table) -> mlua::Result<()> {
    for (name, raising) in [("call", true), ("pcall", false)] {
        impl_.raw_set(
            name,
            lua.create_function(move |lua, ()| {
                let args = CALL_ARGS.with(|a| std::mem::take(&mut *a.borrow_mut()));
                let result =
                    with_active(|a| redis_call(lua, &mut a.run.borrow_mut(), &args, raising))
                        .unwrap_or_else(|| unbound(lua));
                let mut args = args;
                args.req.trim_owned();
                CALL_ARGS.with(|a| *a.borrow_mut() = args);
                result
            })?,
        )?;
        // The reply of a command `run_quietly` ran, when not plain.
        impl_.raw_set(
            format!("finish_{name}"),
            lua.create_function(move |lua, ()| {
                CALL_ARGS.with(|a| a.borrow_mut().req.trim_owned());
                with_active(|a| finish(lua, &mut a.run.borrow_mut(), raising))
                    .unwrap_or_else(|| unbound(lua))
            })?,
        )?;
    }
    impl_.raw_set(
        "setresp",
        lua.create_function(|lua, packed: Table| {
            let args = unpack_args(&packed)?;
            if args.len() != 1 {
                return raise(lua, "ERR redis.setresp() requires one argument.");
            }
            let v = match args.into_iter().next() {
                Some(Value::Integer(n)) => n as f64,
                Some(Value::Number(n)) => n,
                _ => 0.0,
            };
            if v != 2.0 && v != 3.0 {
                return raise(lua, "ERR RESP version must be 2 or 3.");
            }
            with_active(|a| a.run.borrow_mut().resp3 = v == 3.0);
            Ok((true, Value::Nil))
        })?,
    )?;
    impl_.raw_set(
        "log",
        lua.create_function(|lua, packed: Table| {
            let args = unpack_args(&packed)?;
            with_active(|a| redis_log(lua, a.run.borrow().rc.server, args))
                .unwrap_or_else(|| unbound(lua))
        })?,
    )?;
    // While a library loads (no run), it only checks that the command
    // exists.
    impl_.raw_set(
        "acl_check_cmd",
        lua.create_function(|lua, packed: Table| {
            let args = unpack_args(&packed)?;
            if let Some(r) = with_active(|a| acl_check_cmd(lua, &a.run.borrow(), args.clone())) {
                return r;
            }
            let name = args
                .into_iter()
                .next()
                .and_then(|v| lua.coerce_string(v).ok().flatten());
            match name.and_then(|n| crate::table::lookup(&n.as_bytes())) {
                Some(_) => Ok((true, Value::Boolean(true))),
                None => raise(lua, INVALID_ACL_CHECK),
            }
        })?,
    )?;
    let handler = lua.create_function(|lua, err: Value| {
        with_active(|a| {
            let mut f = a.failure.borrow_mut();
            let mut level = 1;
            while let Some(d) = lua.inspect_stack(level) {
                let src = d.source();
                // Our own helper chunks are named "=..."; skip them and C.
                if src.what != "C" && src.source.as_deref().is_some_and(|s| !s.starts_with('=')) {
                    f.source = src.source.map(|s| s.into_owned());
                    f.line = d.curr_line();
                    break;
                }
                level += 1;
            }
        });
        Ok(err)
    })?;
    // SAFETY: the handler is the one argument on the stack;
    // `lua_pushcclosure` pops it as the upvalue of `c_run` (a valid
    // lua_CFunction) and leaves the closure, the one result.
    let runner = unsafe {
        lua.exec_raw::<Function>(handler, |state| {
            mlua::ffi::lua_pushcclosure(state, c_run, 1);
        })?
    };
    lua.set_app_data(Glue {
        runner,
        hooked: Cell::new(false),
    });
    Ok(())
}

impl Vm {
    pub fn new() -> mlua::Result<Vm> {
        Ok(Vm {
            lua: new_lua()?,
            scripts: FastMap::default(),
            functions: super::functions::Engine::new()?,
            needs_all: Default::default(),
            quick: Default::default(),
        })
    }

    fn needs_all_key(target: &Target) -> Vec<u8> {
        match target {
            Target::Body(b) => b.sha.as_bytes().to_vec(),
            Target::Sha(sha) => sha.clone(),
            Target::Function(name) => [&[0u8][..], name].concat(),
        }
    }

    /// Whether `target` is known to touch shards it did not declare.
    pub(crate) fn needs_all(&self, target: &Target) -> bool {
        !self.needs_all.is_empty() && self.needs_all.contains(&Self::needs_all_key(target))
    }

    pub(crate) fn set_needs_all(&mut self, target: &Target) {
        self.needs_all.insert(Self::needs_all_key(target));
    }

    /// Whether `target` ended quickly last time it ran.
    pub(crate) fn is_quick(&self, target: &Target) -> bool {
        let (set, key) = self.quick_key(target);
        set.contains(key)
    }

    fn quick_key<'t>(&self, target: &'t Target) -> (&FastSet<Vec<u8>>, &'t [u8]) {
        match target {
            Target::Body(b) => (&self.quick, b.sha.as_bytes()),
            Target::Sha(sha) => (&self.quick, sha),
            Target::Function(name) => (&self.functions.quick, name),
        }
    }

    /// Records whether `target`'s run was quick (a target flushed or
    /// deleted meanwhile is not recorded).
    pub(crate) fn set_quick(&mut self, target: &Target, quick: bool) {
        // Most runs change nothing: the lookups below are for a change.
        if self.is_quick(target) == quick {
            return;
        }
        let (key, exists) = match target {
            Target::Body(b) => (b.sha.as_bytes(), self.scripts.contains_key(&b.sha)),
            Target::Sha(sha) => (
                &sha[..],
                std::str::from_utf8(sha).is_ok_and(|s| self.scripts.contains_key(s)),
            ),
            Target::Function(name) => (&name[..], self.functions.find(name).is_ok()),
        };
        let set = match target {
            Target::Function(_) => &mut self.functions.quick,
            _ => &mut self.quick,
        };
        if quick && exists {
            set.insert(key.to_vec());
        } else {
            set.remove(key);
        }
    }

    pub fn script_count(&self) -> usize {
        self.scripts.len()
    }

    pub fn has_script(&self, sha: &[u8]) -> bool {
        std::str::from_utf8(sha).is_ok_and(|s| self.scripts.contains_key(s))
    }

    pub fn flush_scripts(&mut self) -> mlua::Result<()> {
        self.scripts.clear();
        self.needs_all.clear();
        self.quick.clear();
        self.lua = new_lua()?;
        Ok(())
    }

    /// Compiles and caches a script body (SCRIPT LOAD, EVAL), returning
    /// its SHA1.
    pub fn load_script(&mut self, body: &[u8]) -> Result<String, CmdError> {
        self.load_script_as(body, sha1_hex(body))
    }

    /// `load_script` for a body whose SHA1 is known.
    fn load_script_as(&mut self, body: &[u8], sha: String) -> Result<String, CmdError> {
        if self.scripts.contains_key(&sha) {
            return Ok(sha);
        }
        let (flags, code) = shebang(body)?;
        let func = compile(&self.lua, &code, "@user_script").map_err(|m| {
            CmdError::Other(format!("ERR Error compiling script (new function): {m}"))
        })?;
        self.scripts.insert(sha.clone(), Script { func, flags });
        Ok(sha)
    }

    /// Runs a job, writing its reply (or its error) into `out`.
    pub fn run(&mut self, rc: &mut RunCtx, job: &Job, out: &mut Reply) -> Result<(), CmdError> {
        if let Target::Body(b) = &job.target {
            if !self.scripts.contains_key(&b.sha) {
                self.load_script_as(&b.body, b.sha.clone())?;
            }
        }
        let bound;
        // A script gets KEYS and ARGV as globals (set by `c_run`), a
        // function as the arguments it is bound to here.
        let (lua, func, flags, name, words) = match &job.target {
            Target::Body(b) => {
                let s = self.scripts.get(&b.sha).ok_or(CmdError::NoScript)?;
                let name = Cow::Borrowed(b.sha.as_str());
                (&self.lua, &s.func, s.flags, name, Some(job))
            }
            Target::Sha(sha) => {
                let (name, s) = std::str::from_utf8(sha)
                    .ok()
                    .and_then(|name| Some((name, self.scripts.get(name)?)))
                    .ok_or(CmdError::NoScript)?;
                (&self.lua, &s.func, s.flags, Cow::Borrowed(name), Some(job))
            }
            Target::Function(name) => {
                let (func, flags) = self.functions.find(name)?;
                let lua = self.functions.lua();
                let keys = list(lua, job.keys()).map_err(lua_err)?;
                let argv = list(lua, job.argv()).map_err(lua_err)?;
                let bind: Function = lua.named_registry_value("bind").map_err(lua_err)?;
                bound = bind.call::<Function>((func, keys, argv)).map_err(lua_err)?;
                (lua, &bound, flags, String::from_utf8_lossy(name), None)
            }
        };
        // A script that declared flags and may write (whatever the _RO
        // command says) is refused under maxmemory, then without enough
        // good replicas, then on a read-only replica, then by the _RO
        // commands: Redis 7.0's order (its processCommand sees such a
        // script as a write command).
        let may_write = flags.declared && !flags.no_writes;
        if may_write && !flags.allow_oom && crate::maxmemory::over_limit(rc.server) {
            return Err(CmdError::OutOfMemory);
        }
        if may_write && crate::repl_master::too_few_replicas(rc.server) {
            return Err(CmdError::NoReplicas);
        }
        if may_write && crate::replicaof::script_write_refused(rc.server) {
            return Err(CmdError::ReadOnlyReplica);
        }
        // Scripts without flags too: they never declared allow-stale.
        if !flags.allow_stale && crate::replicaof::stale(rc.server) {
            return Err(CmdError::MasterDown);
        }
        if may_write && job.read_only {
            return Err(CmdError::ScriptRoWithWriteFlag);
        }
        let no_writes = flags.no_writes || job.read_only;
        execute(
            lua,
            rc,
            func,
            words,
            (no_writes, flags.allow_oom),
            &name,
            out,
        )
    }
}

/// Compiles `code` as a chunk named `name`, sandboxed. The error is Lua's
/// message (`user_script:1: ...`).
pub(crate) fn compile(lua: &Lua, code: &[u8], name: &str) -> Result<Function, String> {
    let env: Table = lua
        .named_registry_value("sandbox")
        .map_err(|e| e.to_string())?;
    lua.load(code)
        .set_name(name)
        .set_environment(env)
        .set_mode(mlua::ChunkMode::Text)
        .into_function()
        .map_err(|e| match e {
            mlua::Error::SyntaxError { message, .. } => message,
            e => e.to_string(),
        })
}

fn lua_err(e: mlua::Error) -> CmdError {
    CmdError::Other(format!("ERR {e}"))
}

fn list(lua: &Lua, items: WordList<'_>) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(items.len(), 0)?;
    for (i, k) in items.iter().enumerate() {
        t.raw_set(i + 1, lua.create_string(k)?)?;
    }
    Ok(t)
}

thread_local! {
    /// The script job `c_run` sets KEYS and ARGV from (null: a function,
    /// which gets them bound as arguments). Set by `execute` for the
    /// length of its call.
    static RUN_JOB: Cell<*const Job> = const { Cell::new(std::ptr::null()) };
    /// Where `c_run` writes the reply of a script that returned a table
    /// (see `table_reply`), and whether it did. Set by `execute`.
    static RUN_OUT: Cell<(*mut Reply, bool)> = const { Cell::new((std::ptr::null_mut(), false)) };
}

/// How deep the walks without mlua follow nesting: a script's returned
/// tables (`table_reply`; deeper ones, and Redis's own limit `MAX_DEPTH`,
/// are left to `lua_to_resp`) and a command's arrays (`plain_tree`;
/// deeper ones to `finish`).
const RAW_DEPTH: i32 = 32;

/// What `table_reply` does with a table, by its reply fields (the order
/// `table_to_resp` reads them in).
#[derive(Clone, Copy)]
enum Shape {
    Array,
    Error,
    Status,
    Double,
    /// A big number, map, set or verbatim string: `lua_to_resp`'s.
    Other,
}

/// The shape of the table at the top of the stack; an error's, status's
/// or double's value is left above it.
///
/// # Safety
/// As `table_reply`.
unsafe fn shape(state: *mut mlua::lua_State) -> Shape {
    use mlua::ffi;
    // SAFETY: see `table_reply`; each look pops what it pushed unless it
    // returns the value it found. The loops walk borrowed arrays: an
    // array's by-value iterator has a destructor, which a longjmp from
    // `lua_pushstring` would skip.
    unsafe {
        let field = |name: &std::ffi::CStr| {
            ffi::lua_pushstring(state, name.as_ptr());
            ffi::lua_rawget(state, -2);
            ffi::lua_type(state, -1)
        };
        for &(name, kind, shape) in &[
            (c"err", ffi::LUA_TSTRING, Shape::Error),
            (c"ok", ffi::LUA_TSTRING, Shape::Status),
            (c"double", ffi::LUA_TNUMBER, Shape::Double),
        ] {
            if field(name) == kind {
                return shape;
            }
            ffi::lua_pop(state, 1);
        }
        for &(name, kind) in &[
            (c"big_number", ffi::LUA_TSTRING),
            (c"map", ffi::LUA_TTABLE),
            (c"set", ffi::LUA_TTABLE),
            (c"verbatim_string", ffi::LUA_TTABLE),
        ] {
            let t = field(name);
            ffi::lua_pop(state, 1);
            if t == kind {
                return Shape::Other;
            }
        }
        Shape::Array
    }
}

/// Writes the reply of a script's result, the table at the top of the
/// stack, to `out` as `lua_to_resp` would, for tables of arrays, errors,
/// statuses, doubles and scalars nested up to `RAW_DEPTH`; the walk's
/// state lives on the Lua stack (a table and its next index per level).
/// False (with `out` and the stack as they were): a table `lua_to_resp`
/// converts, because it is an error reply itself (the error stats look at
/// it), holds another type, nests deeper, or has an error that is not
/// UTF-8.
///
/// # Safety
/// `state` is running a C function with a table at the top of the stack
/// and three free stack slots. `lua_pushstring` and `lua_checkstack` may
/// raise a memory error (a longjmp); nothing here has a destructor, and
/// what was written then is cut by `execute`.
unsafe fn table_reply(state: *mut mlua::lua_State, out: &mut Reply, resp3: bool) -> bool {
    use mlua::ffi;
    // SAFETY: see the function's contract. Each level pushes its table and
    // its next index after `lua_checkstack` made room for them and the
    // next level's look at fields.
    unsafe {
        let base = ffi::lua_gettop(state);
        let start = out.len();
        let give_up = |out: &mut Reply| {
            out.truncate(start);
            ffi::lua_settop(state, base);
            false
        };
        match shape(state) {
            Shape::Array => {}
            Shape::Error | Shape::Status | Shape::Double => {
                ffi::lua_settop(state, base);
                return false;
            }
            Shape::Other => return give_up(out),
        }
        ffi::lua_pushvalue(state, -1);
        let mut depth = 0;
        // The table at the top has no index above it yet: write its header.
        loop {
            let mut len = 0;
            while {
                ffi::lua_rawgeti(state, -1, len + 1);
                let more = ffi::lua_type(state, -1) != ffi::LUA_TNIL;
                ffi::lua_pop(state, 1);
                more
            } {
                len += 1;
            }
            out.array(len as usize);
            ffi::lua_pushinteger(state, 1);
            depth += 1;
            // Walk the levels until one needs a header (a nested array).
            loop {
                let i = ffi::lua_tointeger(state, -1);
                ffi::lua_rawgeti(state, -2, i as ffi::lua_Integer);
                let t = ffi::lua_type(state, -1);
                if t == ffi::LUA_TNIL {
                    ffi::lua_pop(state, 3);
                    depth -= 1;
                    if depth == 0 {
                        ffi::lua_settop(state, base);
                        return true;
                    }
                    continue;
                }
                ffi::lua_pushinteger(state, i + 1);
                ffi::lua_replace(state, -3);
                match t {
                    ffi::LUA_TSTRING => {
                        let mut n = 0usize;
                        let p = ffi::lua_tolstring(state, -1, &mut n);
                        out.bulk(std::slice::from_raw_parts(p.cast::<u8>(), n));
                    }
                    ffi::LUA_TNUMBER => out.int(to_i64(ffi::lua_tonumber(state, -1))),
                    ffi::LUA_TBOOLEAN => match (resp3, ffi::lua_toboolean(state, -1) != 0) {
                        (true, b) => out.bool(b),
                        (false, true) => out.int(1),
                        (false, false) => out.null(),
                    },
                    ffi::LUA_TTABLE => {
                        if depth >= RAW_DEPTH || ffi::lua_checkstack(state, 4) == 0 {
                            return give_up(out);
                        }
                        match shape(state) {
                            Shape::Array => break,
                            Shape::Error => {
                                let mut n = 0usize;
                                let p = ffi::lua_tolstring(state, -1, &mut n);
                                let bytes = std::slice::from_raw_parts(p.cast::<u8>(), n);
                                let Ok(msg) = std::str::from_utf8(bytes) else {
                                    return give_up(out);
                                };
                                out.error(msg);
                                ffi::lua_pop(state, 1);
                            }
                            Shape::Status => {
                                let mut n = 0usize;
                                let p = ffi::lua_tolstring(state, -1, &mut n);
                                out.simple(std::slice::from_raw_parts(p.cast::<u8>(), n));
                                ffi::lua_pop(state, 1);
                            }
                            Shape::Double => {
                                out.double(ffi::lua_tonumber(state, -1));
                                ffi::lua_pop(state, 1);
                            }
                            Shape::Other => return give_up(out),
                        }
                    }
                    _ => out.null(),
                }
                ffi::lua_pop(state, 1);
            }
        }
    }
}

/// A run's entry point, called with the function to run; its upvalue is
/// the message handler (see `bind_callbacks`). Sets the KEYS and ARGV
/// globals of a script (fresh tables each run, as Redis makes them) and
/// calls the function under the handler, returning what `xpcall` would:
/// whether it succeeded, then its first result or its error. One
/// protected call from Rust per run instead of two (`exec_raw` for the
/// globals, then the call), each allocating closures.
///
/// # Safety
/// Lua calls it with its running state and at least one argument. It
/// uses at most five stack slots (LUA_MINSTACK is 20). A Lua memory error
/// longjmps out of it, and no Rust value with a destructor is live here
/// (the job is read through the pointer `execute` set).
unsafe extern "C-unwind" fn c_run(state: *mut mlua::lua_State) -> std::os::raw::c_int {
    use mlua::ffi;
    // SAFETY: see the function's contract. `RUN_JOB` is null or points to
    // the job `execute` borrows for the whole call.
    unsafe {
        ffi::lua_settop(state, 1);
        ffi::lua_pushvalue(state, ffi::lua_upvalueindex(1));
        if let Some(job) = RUN_JOB.get().as_ref() {
            // Borrowed: an array's by-value iterator has a destructor.
            for &(name, items) in &[(c"KEYS", job.keys()), (c"ARGV", job.argv())] {
                let n = i32::try_from(items.len()).unwrap_or(i32::MAX);
                ffi::lua_createtable(state, n, 0);
                for (i, item) in (1..=n).zip(items.iter()) {
                    ffi::lua_pushlstring(state, item.as_ptr().cast(), item.len());
                    ffi::lua_rawseti(state, -2, ffi::lua_Integer::from(i));
                }
                ffi::lua_setfield(state, ffi::LUA_GLOBALSINDEX, name.as_ptr());
            }
        }
        ffi::lua_pushvalue(state, 1);
        let ok = ffi::lua_pcall(state, 0, 1, 2) == 0;
        let (out, _) = RUN_OUT.get();
        if ok && ffi::lua_type(state, -1) == ffi::LUA_TTABLE {
            if let Some(out) = out.as_mut() {
                let resp3 = with_active(|a| a.run.try_borrow().is_ok_and(|r| r.resp3));
                if table_reply(state, out, resp3.unwrap_or(false)) {
                    RUN_OUT.set((out, true));
                }
            }
        }
        ffi::lua_pushboolean(state, std::os::raw::c_int::from(ok));
        ffi::lua_insert(state, -2);
        2
    }
}

/// Calls `func` under a message handler with `redis.call` and friends
/// bound to `rc`, and converts its result (or error) into `out`. `script`:
/// the job whose keys and arguments become KEYS and ARGV (None for a
/// function, bound to them already).
pub(crate) fn execute(
    lua: &Lua,
    rc: &mut RunCtx,
    func: &Function,
    script: Option<&Job>,
    (no_writes, allow_oom): (bool, bool),
    name: &str,
    out: &mut Reply,
) -> Result<(), CmdError> {
    let running = rc.running.clone();
    let (runner, hooked) = {
        let glue = lua
            .app_data_ref::<Glue>()
            .ok_or_else(|| CmdError::Other("ERR no script glue".into()))?;
        let hooked = glue.hooked.replace(true);
        (glue.runner.clone(), hooked)
    };
    if !hooked {
        // Every run of this Lua state shares `running` (its Scripting's).
        let hook_running = running.clone();
        lua.set_hook(
            HookTriggers::new().every_nth_instruction(100_000),
            move |lua, _| {
                if hook_running.inline.load(Relaxed)
                    && hook_running.ran_ms() > MIGRATE_MS
                    && with_active(|a| a.run.try_borrow().is_ok_and(|r| r.pure)).unwrap_or(false)
                {
                    hook_running.migrate.store(true, Relaxed);
                }
                if hook_running.stopping() {
                    trap_every_line(lua, &hook_running);
                    return Err(mlua::Error::RuntimeError("killed".into()));
                }
                Ok(VmState::Continue)
            },
        );
    }
    let active = Active {
        run: RefCell::new(Run {
            rc,
            resp3: false,
            no_writes,
            allow_oom,
            pure: true,
            replicate: true,
            scratch: SCRATCH.take(),
        }),
        failure: RefCell::new(Failure::default()),
    };
    let result = (|| {
        let bound = Bind::new(&active);
        // The run's status and its first result (the rest are dropped, as
        // Redis replies with the first only).
        let job = RUN_JOB.replace(script.map_or(std::ptr::null(), std::ptr::from_ref));
        let start = out.len();
        let prev_out = RUN_OUT.replace((std::ptr::from_mut(out), false));
        let called = runner.call::<(Value, Value)>(func);
        let (_, written) = RUN_OUT.replace(prev_out);
        RUN_JOB.set(job);
        if let Some(payload) = PANIC.with(|p| p.borrow_mut().take()) {
            std::panic::resume_unwind(payload);
        }
        let (status, value) = match called {
            Ok(v) => v,
            Err(e) => {
                out.truncate(start);
                return Err(e);
            }
        };
        drop(bound);
        if written {
            // `c_run` wrote the reply of a table (not an error reply).
            running.error_counted.store(false, Relaxed);
            return Ok(Ok(()));
        }
        let ok = matches!(status, Value::Boolean(true));
        running
            .error_counted
            .store(already_counted(lua, ok, &value), Relaxed);
        let lua_resp3 = active.run.borrow().resp3;
        if ok {
            let start = out.len();
            let done = lua_to_resp(lua, &value, out, lua_resp3);
            if done.is_err() {
                out.truncate(start);
            }
            return done.map(Ok);
        }
        Ok(Err(error_text(
            lua,
            &running,
            value,
            &active.failure.borrow(),
            name,
        )))
    })();
    // A stopped run's hook fails every line (`trap_every_line`): it goes.
    if running.stopping() {
        lua.remove_hook();
        hook_removed(lua);
    }
    SCRATCH.set(active.run.into_inner().scratch);
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(text)) => Err(CmdError::Script(text)),
        Err(e) => Err(lua_err(e)),
    }
}

/// Whether the script's result (`ok`) or error is an error that a
/// `redis.call` already counted in the error stats: a table marked
/// `ignore_error_stats_update` (as Redis marks them) or the string that
/// `redis.call` just raised.
fn already_counted(lua: &Lua, ok: bool, value: &Value) -> bool {
    match value {
        Value::Table(t) => {
            t.raw_get::<Value>("err").is_ok_and(|v| !v.is_nil())
                && t.raw_get::<bool>("ignore_error_stats_update")
                    .unwrap_or(false)
        }
        Value::String(s) if !ok => {
            let raised: Option<mlua::String> = lua.named_registry_value("raised").ok();
            raised.is_some_and(|r| r.as_bytes() == s.as_bytes())
                && lua
                    .named_registry_value::<bool>("raised_counted")
                    .unwrap_or(false)
        }
        _ => false,
    }
}

/// From now on the script fails on every line, so a pcall in it cannot
/// swallow a kill or a restart.
fn trap_every_line(lua: &Lua, running: &Arc<Running>) {
    let again = running.clone();
    lua.set_hook(HookTriggers::EVERY_LINE, move |_, _| {
        if again.stopping() {
            return Err(mlua::Error::RuntimeError("killed".into()));
        }
        Ok(VmState::Continue)
    });
}

/// Calls `func` with no arguments, returning a failure as Redis words it
/// (a `redis.*` library error as is, any other with `ERR `).
pub(crate) fn protected_call(lua: &Lua, func: Function) -> mlua::Result<Result<(), String>> {
    let xpcall: Function = lua.globals().raw_get("xpcall")?;
    let handler = lua.create_function(|_, e: Value| Ok(e))?;
    let mut ret = xpcall.call::<MultiValue>((func, handler))?.into_iter();
    if matches!(ret.next(), Some(Value::Boolean(true))) {
        return Ok(Ok(()));
    }
    let err = ret.next().unwrap_or(Value::Nil);
    let raised: Option<mlua::String> = lua.named_registry_value("raised").ok();
    let _ = lua.unset_named_registry_value("raised");
    Ok(Err(match err {
        Value::String(s) if raised.is_some_and(|r| r.as_bytes() == s.as_bytes()) => {
            s.to_string_lossy()
        }
        Value::String(s) => format!("ERR {}", s.to_string_lossy()),
        other => format!("ERR {}", other.to_string().unwrap_or_default()),
    }))
}

/// Redis's text for a script that failed with `err`.
fn error_text(lua: &Lua, running: &Running, err: Value, f: &Failure, name: &str) -> String {
    let raised: Option<mlua::String> = lua.named_registry_value("raised").ok();
    let msg = if running.kill.load(Relaxed) {
        CmdError::ScriptKilled.to_string()
    } else {
        match &err {
            Value::Table(t) => match t.raw_get::<Value>("err") {
                Ok(Value::String(s)) => s.to_string_lossy(),
                _ => "ERR unknown error".to_string(),
            },
            Value::String(s) => {
                let text = s.to_string_lossy();
                if raised.is_some_and(|r| r.as_bytes() == s.as_bytes()) {
                    text
                } else {
                    format!("ERR {text}")
                }
            }
            Value::Integer(_) | Value::Number(_) => {
                let s = lua.coerce_string(err.clone()).ok().flatten();
                format!("ERR {}", s.map(|s| s.to_string_lossy()).unwrap_or_default())
            }
            Value::Error(e) => format!("ERR {e}"),
            _ => "ERR unknown error".to_string(),
        }
    };
    let _ = lua.unset_named_registry_value("raised");
    match &f.source {
        Some(src) => format!("{msg} script: {name}, on {src}:{}.", f.line),
        None => format!("{msg} script: {name}"),
    }
}

/// redis.log(level, message, ...)
fn redis_log(lua: &Lua, server: &Server, args: MultiValue) -> mlua::Result<(bool, Value)> {
    if args.len() < 2 {
        return raise(lua, "ERR redis.log() requires two arguments or more.");
    }
    let mut it = args.into_iter();
    let level = match it.next() {
        Some(Value::Integer(n)) => n as f64,
        Some(Value::Number(n)) => n,
        _ => return raise(lua, "ERR First argument must be a number (log level)."),
    };
    if !(0.0..=3.0).contains(&level) {
        return raise(lua, "ERR Invalid debug level.");
    }
    let mut line = String::new();
    for (i, v) in it.enumerate() {
        if i > 0 {
            line.push(' ');
        }
        if let Some(s) = lua.coerce_string(v)? {
            line.push_str(&s.to_string_lossy());
        }
    }
    server.host.log(&line);
    Ok((true, Value::Nil))
}

const INVALID_ACL_CHECK: &str = "ERR Invalid command passed to redis.acl_check_cmd()";

/// redis.acl_check_cmd(command, args...): whether the script's user may
/// run it (true, or nil for a denial).
fn acl_check_cmd(lua: &Lua, run: &Run, args: MultiValue) -> mlua::Result<(bool, Value)> {
    let mut argv: Vec<Vec<u8>> = Vec::with_capacity(args.len());
    for v in args {
        match lua.coerce_string(v)? {
            Some(s) => argv.push(s.as_bytes().to_vec()),
            None => return raise(lua, &CmdError::ScriptArgType.to_string()),
        }
    }
    let req = Request::from_owned(&argv);
    let args = req.args(&[]);
    let e = match crate::dispatch::resolve(&args) {
        Ok(e) | Err((Some(e), CmdError::WrongArity(_))) => e,
        Err(_) => return raise(lua, INVALID_ACL_CHECK),
    };
    let ok = crate::acl::permits(&run.rc.client.user, e, &args);
    Ok((true, if ok { Value::Boolean(true) } else { Value::Nil }))
}

/// Why `redis.call` did not run a command: the error, whether it is
/// counted as a rejected call (`refused`) of `cmd`.
struct Refusal {
    err: CmdError,
    refused: bool,
    cmd: Option<&'static crate::table::Entry>,
}

/// The checks `redis.call` makes before it runs a command, in Redis's
/// order; they change nothing. The command's entry, or why not.
fn admit(run: &Run, call_args: &CallArgs) -> Result<&'static crate::table::Entry, Refusal> {
    let fail = |err| Refusal {
        err,
        refused: false,
        cmd: None,
    };
    let refuse = |err, cmd| Refusal {
        err,
        refused: true,
        cmd,
    };
    if call_args.req.is_empty() && !call_args.bad_type {
        return Err(fail(CmdError::ScriptNoArgs));
    }
    if call_args.bad_type {
        return Err(fail(CmdError::ScriptArgType));
    }
    let args = call_args.req.args(&[]);
    let e = match crate::dispatch::resolve(&args) {
        Ok(e) => e,
        Err((e, CmdError::WrongArity(_))) => return Err(refuse(CmdError::ScriptWrongArity, e)),
        Err(_) => return Err(refuse(CmdError::ScriptUnknownCommand, None)),
    };
    let server = run.rc.server;
    if e.has(flag::NOSCRIPT) && !server.scripting.allow_noscript.load(Relaxed) {
        return Err(refuse(CmdError::ScriptNotAllowed, Some(e)));
    }
    if !run.rc.client.user.unrestricted.load(Relaxed) {
        if let Err(err) = crate::acl::check_script(server, &run.rc.client, e, &args) {
            return Err(refuse(err, Some(e)));
        }
    }
    // PUBLISH and the like (`may_replicate`) count as writes here, as in Redis.
    if run.no_writes && e.has(flag::WRITE | flag::MAY_REPLICATE) {
        return Err(refuse(CmdError::ScriptWriteInReadOnly, Some(e)));
    }
    if !e.has(flag::STALE) && crate::replicaof::stale(server) {
        return Err(refuse(CmdError::ScriptStale, Some(e)));
    }
    // The server-state checks apply until the script's first write; after
    // it, failing would break the script's atomicity (Redis's rule).
    let wrote = run.rc.running.wrote.load(Relaxed);
    if e.has(flag::WRITE) && !wrote {
        if crate::replicaof::script_write_refused(server) {
            return Err(refuse(CmdError::ReadOnlyReplica, Some(e)));
        }
        if let Some(err) = crate::repl_master::refusal(server, e) {
            return Err(refuse(err, Some(e)));
        }
    }
    // As Redis: under maxmemory, a script's first write that may grow
    // memory is refused; later ones are not (that would break atomicity).
    if e.has(flag::DENYOOM) && !run.allow_oom && !wrote && crate::maxmemory::over_limit(server) {
        return Err(refuse(CmdError::OutOfMemory, Some(e)));
    }
    Ok(e)
}

/// Runs an admitted command holding its shards (see `take_shards`): its
/// reply goes to `run.scratch`.
fn run_admitted(run: &mut Run, e: &'static crate::table::Entry, args: &damselfly_protocol::Args) {
    if e.has(flag::WRITE) {
        run.rc.running.wrote.store(true, Relaxed);
    }
    if !e.has(flag::READONLY) {
        run.pure = false;
    }
    // The run's scratch buffer: its first write would allocate anew.
    let mut reply = std::mem::replace(&mut run.scratch, Reply::new());
    reply.clear();
    reply.set_resp3(run.resp3);
    let rc = &mut *run.rc;
    let locked = std::mem::replace(&mut rc.locked, rc.server.keyspace.lock_none());
    let mut ctx = Ctx {
        server: rc.server,
        stats: rc.stats,
        client: &mut rc.client,
        reply: &mut reply,
        locked,
        now: rc.now,
        block: None,
        script: None,
        wait: None,
    };
    let was_silent = damselfly_replication::master::set_silent(!run.replicate);
    crate::dispatch::call(&mut ctx, e, args);
    damselfly_replication::master::set_silent(was_silent);
    rc.locked = ctx.locked;
    run.scratch = reply;
}

/// The Lua value of a failed `redis.call` (raised as a plain string) or
/// `redis.pcall` (an error table). `counted`: the error is already in the
/// error stats (as Redis marks it), so the script's reply, if it ends
/// with it, is not counted again.
fn fail_as(lua: &Lua, e: CmdError, counted: bool, raising: bool) -> mlua::Result<(bool, Value)> {
    let msg = e.to_string();
    if raising {
        let r = raise(lua, &msg);
        if counted {
            lua.set_named_registry_value("raised_counted", true)?;
        }
        r
    } else {
        let t = lua.create_table()?;
        t.raw_set("err", msg)?;
        if counted {
            t.raw_set("ignore_error_stats_update", true)?;
        }
        Ok((true, Value::Table(t)))
    }
}

/// The Lua value of the reply in `run.scratch`.
fn finish(lua: &Lua, run: &mut Run, raising: bool) -> mlua::Result<(bool, Value)> {
    let bytes = run.scratch.as_bytes();
    let result = if let Some(rest) = bytes.strip_prefix(b"-") {
        let text = rest.strip_suffix(b"\r\n").unwrap_or(rest);
        let text = String::from_utf8_lossy(text).into_owned();
        // `dispatch::call` counted it.
        fail_as(lua, CmdError::Script(text), true, raising)
    } else {
        resp::to_lua(lua, bytes).map(|v| (true, v))
    };
    run.scratch.shrink(64 << 10);
    result
}

/// redis.call / redis.pcall: runs one command through the table, as the
/// script's pseudo-client, with the script's locks.
fn redis_call(
    lua: &Lua,
    run: &mut Run,
    call_args: &CallArgs,
    raising: bool,
) -> mlua::Result<(bool, Value)> {
    if run.rc.running.stopping() {
        return Err(mlua::Error::RuntimeError("killed".into()));
    }
    let e = match admit(run, call_args) {
        Ok(e) => e,
        Err(r) => {
            // Refused before it ran: counted as an error reply and, for a
            // known command, a rejected call (Redis's script call path).
            if r.refused {
                crate::dispatch::count_error(run.rc.stats, &r.err);
                if let Some(cmd) = r.cmd {
                    run.rc.stats.commands[cmd.id].rejected.add(1);
                }
            }
            return fail_as(lua, r.err, r.refused, raising);
        }
    };
    let args = call_args.req.args(&[]);
    if !take_shards(run, e, &args) {
        run.rc.running.restart.store(true, Relaxed);
        trap_every_line(lua, &run.rc.running);
        return Err(mlua::Error::RuntimeError("restart".into()));
    }
    run_admitted(run, e, &args);
    finish(lua, run, raising)
}

/// `redis.call` without Lua values: runs the command in `CALL_ARGS` if
/// the run is not stopping, every check passes and its shards are taken;
/// its reply is then in `run.scratch`. False: nothing was run (the full
/// path, `redis_call`, goes over it again and says why).
fn run_quietly() -> bool {
    with_active(|a| {
        let Ok(mut run) = a.run.try_borrow_mut() else {
            return false;
        };
        if run.rc.running.stopping() {
            return false;
        }
        CALL_ARGS.with(|c| {
            let Ok(c) = c.try_borrow() else {
                return false;
            };
            let Ok(e) = admit(&run, &c) else {
                return false;
            };
            let args = c.req.args(&[]);
            if !take_shards(&mut run, e, &args) {
                return false;
            }
            run_admitted(&mut run, e, &args);
            true
        })
    })
    .unwrap_or(false)
}

/// A reply value `forward_command` gives to Lua itself, other than an
/// array (pointers into `run.scratch`, valid until the next
/// `redis.call`).
#[derive(Clone, Copy)]
enum Scalar {
    Int(i64),
    Bulk(*const u8, usize),
    Status(*const u8, usize),
    /// RESP2's null bulk string or null array.
    False,
}

/// The scalar at the front of `b`, and the bytes after it.
fn scalar_at(b: &[u8]) -> Option<(Scalar, &[u8])> {
    let (&tag, rest) = b.split_first()?;
    let end = rest.iter().position(|&c| c == b'\r')?;
    let head = &rest[..end];
    let body = rest.get(end + 2..)?;
    match tag {
        b':' => Some((Scalar::Int(crate::args::parse_i64(head)?), body)),
        b'+' => Some((Scalar::Status(head.as_ptr(), head.len()), body)),
        b'$' => match usize::try_from(crate::args::parse_i64(head)?) {
            Ok(n) => Some((Scalar::Bulk(body.get(..n)?.as_ptr(), n), body.get(n + 2..)?)),
            Err(_) => Some((Scalar::False, body)),
        },
        _ => None,
    }
}

/// An array's header after its `*`: its length (None: a null array) and
/// the bytes after the header.
fn array_header(rest: &[u8]) -> Option<(Option<usize>, &[u8])> {
    let end = rest.iter().position(|&c| c == b'\r')?;
    let n = crate::args::parse_i64(&rest[..end])?;
    Some((usize::try_from(n).ok(), rest.get(end + 2..)?))
}

/// The bytes after the plain value at the front of `b`: a scalar, or an
/// array of plain values nested at most `depth` deep.
fn plain_tree(b: &[u8], depth: i32) -> Option<&[u8]> {
    let Some(rest) = b.strip_prefix(b"*") else {
        return scalar_at(b).map(|(_, after)| after);
    };
    if depth == 0 {
        return None;
    }
    let (n, mut left) = array_header(rest)?;
    for _ in 0..n.unwrap_or(0) {
        left = plain_tree(left, depth - 1)?;
    }
    Some(left)
}

/// The bytes of the reply `run_quietly` left, if plain (`plain_tree`):
/// a scalar, or RESP2 arrays of scalars. None: an error, a RESP3 type or
/// deeper nesting, for `finish`.
fn plain_reply() -> Option<(*const u8, usize)> {
    with_active(|a| {
        let run = a.run.try_borrow().ok()?;
        let b = run.scratch.as_bytes();
        plain_tree(b, RAW_DEPTH)?;
        Some((b.as_ptr(), b.len()))
    })
    .flatten()
}

/// Pushes the Lua value of a reply `plain_tree` checked. Each open array
/// keeps its table, next index and length on the Lua stack.
///
/// # Safety
/// As `push_scalar`; `b` holds a value `plain_tree` accepted, so at most
/// `RAW_DEPTH` arrays are open at once (`lua_checkstack` makes room for
/// each; it and the pushes may raise a memory error, and nothing here has
/// a destructor).
unsafe fn push_plain(state: *mut mlua::lua_State, mut b: &[u8]) {
    use mlua::ffi;
    // SAFETY: see the function's contract.
    unsafe {
        let mut open = 0;
        loop {
            if let Some(rest) = b.strip_prefix(b"*") {
                let Some((n, after)) = array_header(rest) else {
                    return;
                };
                b = after;
                match n {
                    None => ffi::lua_pushboolean(state, 0),
                    Some(n) => {
                        ffi::lua_createtable(state, i32::try_from(n).unwrap_or(i32::MAX), 0);
                        if n > 0 {
                            ffi::lua_checkstack(state, 4);
                            ffi::lua_pushinteger(state, 1);
                            ffi::lua_pushinteger(state, n as ffi::lua_Integer);
                            open += 1;
                            continue;
                        }
                    }
                }
            } else {
                let Some((v, after)) = scalar_at(b) else {
                    return;
                };
                push_scalar(state, v);
                b = after;
            }
            // A whole value is at the top (table, index, length, value
            // below it): it goes into its array, and a full array is the
            // whole value in turn.
            loop {
                if open == 0 {
                    return;
                }
                let i = ffi::lua_tointeger(state, -3);
                let n = ffi::lua_tointeger(state, -2);
                ffi::lua_rawseti(state, -4, i);
                if i < n {
                    ffi::lua_pushinteger(state, i + 1);
                    ffi::lua_replace(state, -3);
                    break;
                }
                ffi::lua_pop(state, 2);
                open -= 1;
            }
        }
    }
}

/// Pushes a scalar of a plain reply (see `push_plain`).
///
/// # Safety
/// As `forward_command`: `state` is running it, with a free stack slot
/// more than the value takes (a status takes two), and the value's
/// pointers are into the unchanged `run.scratch`.
unsafe fn push_scalar(state: *mut mlua::lua_State, v: Scalar) {
    use mlua::ffi;
    // SAFETY: see the function's contract.
    unsafe {
        match v {
            Scalar::Int(n) => ffi::lua_pushinteger(state, n as ffi::lua_Integer),
            Scalar::Bulk(p, n) => {
                ffi::lua_pushlstring(state, p.cast(), n);
            }
            Scalar::Status(p, n) => {
                ffi::lua_createtable(state, 0, 1);
                ffi::lua_pushlstring(state, p.cast(), n);
                ffi::lua_setfield(state, -2, c"ok".as_ptr());
            }
            Scalar::False => ffi::lua_pushboolean(state, 0),
        }
    }
}

/// After a plain reply went to Lua: the reply buffer and the argument
/// buffer give back what a large one took, as `finish` and the full path
/// do.
fn plain_done() {
    with_active(|a| {
        if let Ok(mut run) = a.run.try_borrow_mut() {
            run.scratch.shrink(64 << 10);
        }
    });
    CALL_ARGS.with(|c| {
        if let Ok(mut c) = c.try_borrow_mut() {
            c.req.trim_owned();
        }
    });
}

thread_local! {
    /// A panic caught in `forward_command`, resumed once the run is back
    /// in Rust (`execute`), as mlua does for its callbacks.
    static PANIC: RefCell<Option<Box<dyn std::any::Any + Send>>> = const { RefCell::new(None) };
}

/// Adds the shards `e` needs to the script's locks (every shard for a
/// command that walks them or is flagged `all_shards`). False: a shard
/// was busy while the run may still restart (see `Keyspace::script_add`).
fn take_shards(run: &mut Run, e: &crate::table::Entry, args: &damselfly_protocol::Args) -> bool {
    let ks = &run.rc.server.keyspace;
    let locked = &mut run.rc.locked;
    if locked.len() == ks.shard_count() {
        return true;
    }
    let mut shards: smallvec::SmallVec<[usize; 4]> = smallvec::SmallVec::new();
    if e.has(flag::ALL_SHARDS) || crate::transactions::visits_shards(e) {
        shards.extend(0..ks.shard_count());
    } else if let (Keys::Range(1, 1, _), Some(key)) = (e.cmd.keys, args.get(1)) {
        // One key (most calls), most often in a shard the script holds.
        let i = ks.shard_of(key);
        if locked.holds(i) {
            return true;
        }
        shards.push(i);
    } else {
        for i in e.key_positions(args.len(), |i| args.get(i)) {
            if let Some(k) = args.get(i) {
                shards.push(ks.shard_of(k));
            }
        }
        shards.sort_unstable();
    }
    // A restarted attempt must leave no trace: not even a keymiss event.
    let may_restart = run.pure
        && !run
            .rc
            .server
            .pubsub
            .notifies(crate::pubsub::class::KEY_MISS);
    shards
        .into_iter()
        .all(|i| ks.script_add(locked, i, may_restart))
}

/// A number argument of `redis.call` as Redis 7 writes it: the shortest
/// text that reads back as the same double (9007199254740991, 0.1, 1e+21).
fn shortest(n: f64) -> String {
    if n.is_nan() {
        return "nan".into();
    }
    if n.is_infinite() {
        return if n > 0.0 { "inf" } else { "-inf" }.into();
    }
    let a = n.abs();
    if a == 0.0 || (1e-7..1e21).contains(&a) {
        return format!("{n}");
    }
    let e = format!("{n:e}");
    match e.split_once('e') {
        Some((m, x)) if !x.starts_with('-') => format!("{m}e+{x}"),
        Some((m, x)) => format!("{m}e{x}"),
        None => e,
    }
}

/// C's `(long long)` cast of a double as x86-64 does it: NaN and
/// out-of-range values become i64::MIN.
fn to_i64(n: f64) -> i64 {
    if n.is_nan() || !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&n) {
        i64::MIN
    } else {
        n as i64
    }
}

/// Nesting at which Redis's conversion runs out of Lua stack.
const MAX_DEPTH: usize = 7995;

/// Where the conversion of one table stands. The tables themselves, and
/// a walk's last key and pending value, live in Lua tables indexed by
/// depth (`Walk`): mlua holds a reference slot per live value, a few
/// thousand at most, and a self-referencing table nests 7995 deep.
enum Frame {
    Array {
        next: usize,
        len: usize,
    },
    /// A map's or set's walk (`set`: keys only).
    Pairs {
        set: bool,
    },
}

/// The Lua-side state of the frames: at depth d, `tables[d]`, and for a
/// walk `keys[d]` (last key) and `values[d]` (a map value to emit next).
struct Walk {
    tables: Table,
    keys: Table,
    values: Table,
}

/// Counts a table's entries (the header of a map or set reply).
fn count_pairs(next: &Function, t: &Table) -> mlua::Result<usize> {
    let mut n = 0;
    let mut key = Value::Nil;
    loop {
        let (k, _): (Value, Value) = next.call((t, key))?;
        if k.is_nil() {
            return Ok(n);
        }
        n += 1;
        key = k;
    }
}

/// Converts a script's return value into a reply. `lua_resp3` is the
/// script's `redis.setresp` (it decides how booleans convert). Iterative,
/// so a self-referencing table costs no native stack.
pub(crate) fn lua_to_resp(
    lua: &Lua,
    v: &Value,
    out: &mut Reply,
    lua_resp3: bool,
) -> mlua::Result<()> {
    if !matches!(v, Value::Table(_)) {
        scalar_to_resp(v, out, lua_resp3);
        return Ok(());
    }
    let next: Function = lua.globals().raw_get("next")?;
    let walk = Walk {
        tables: lua.create_table()?,
        keys: lua.create_table()?,
        values: lua.create_table()?,
    };
    let mut stack: Vec<Frame> = Vec::new();
    let mut cur = Some(v.clone());
    loop {
        if let Some(v) = cur.take() {
            match v {
                Value::Table(_) if stack.len() >= MAX_DEPTH => {
                    out.error("ERR reached lua stack limit");
                }
                Value::Table(t) => {
                    if let Some((frame, t)) = table_to_resp(&next, t, out)? {
                        stack.push(frame);
                        walk.tables.raw_set(stack.len(), t)?;
                    }
                }
                v => scalar_to_resp(&v, out, lua_resp3),
            }
        }
        let d = stack.len();
        let Some(frame) = stack.last_mut() else {
            return Ok(());
        };
        let t: Table = walk.tables.raw_get(d)?;
        match frame {
            Frame::Array { next: i, len } => {
                if *i > *len {
                    stack.pop();
                } else {
                    cur = Some(t.raw_get(*i)?);
                    *i += 1;
                }
            }
            Frame::Pairs { set } => {
                let pending: Value = walk.values.raw_get(d)?;
                if !pending.is_nil() {
                    walk.values.raw_set(d, Value::Nil)?;
                    cur = Some(pending);
                } else {
                    let key: Value = walk.keys.raw_get(d)?;
                    let (k, v): (Value, Value) = next.call((&t, key))?;
                    if k.is_nil() {
                        stack.pop();
                    } else {
                        walk.keys.raw_set(d, &k)?;
                        if !*set {
                            walk.values.raw_set(d, v)?;
                        }
                        cur = Some(k);
                    }
                }
            }
        }
        if stack.len() < d {
            walk.tables.raw_set(d, Value::Nil)?;
            walk.keys.raw_set(d, Value::Nil)?;
            walk.values.raw_set(d, Value::Nil)?;
        }
    }
}

fn scalar_to_resp(v: &Value, out: &mut Reply, lua_resp3: bool) {
    match v {
        Value::String(s) => out.bulk(&s.as_bytes()),
        Value::Integer(n) => out.int(*n),
        Value::Number(n) => out.int(to_i64(*n)),
        Value::Boolean(b) => {
            if lua_resp3 {
                out.bool(*b);
            } else if *b {
                out.int(1);
            } else {
                out.null();
            }
        }
        _ => out.null(),
    }
}

/// Writes a table's reply, or its aggregate header and returns the walk
/// of the elements still to convert.
fn table_to_resp(
    next: &Function,
    t: Table,
    out: &mut Reply,
) -> mlua::Result<Option<(Frame, Table)>> {
    if let Value::String(s) = t.raw_get::<Value>("err")? {
        out.error(&s.to_string_lossy());
        return Ok(None);
    }
    if let Value::String(s) = t.raw_get::<Value>("ok")? {
        out.simple(&s.as_bytes());
        return Ok(None);
    }
    match t.raw_get::<Value>("double")? {
        Value::Number(n) => {
            out.double(n);
            return Ok(None);
        }
        Value::Integer(n) => {
            out.double(n as f64);
            return Ok(None);
        }
        _ => {}
    }
    if let Value::String(s) = t.raw_get::<Value>("big_number")? {
        out.big_number(&s.as_bytes());
        return Ok(None);
    }
    for (field, set) in [("map", false), ("set", true)] {
        if let Value::Table(m) = t.raw_get::<Value>(field)? {
            let n = count_pairs(next, &m)?;
            if set {
                out.set(n);
            } else {
                out.map(n);
            }
            return Ok(Some((Frame::Pairs { set }, m)));
        }
    }
    if let Value::Table(v) = t.raw_get::<Value>("verbatim_string")? {
        let fmt: Value = v.raw_get("format")?;
        let s: Value = v.raw_get("string")?;
        if let (Value::String(fmt), Value::String(s)) = (fmt, s) {
            out.verbatim(&fmt.to_string_lossy(), &s.as_bytes());
            return Ok(None);
        }
    }
    let mut len = 0;
    while !t.raw_get::<Value>(len + 1)?.is_nil() {
        len += 1;
    }
    out.array(len);
    Ok(Some((Frame::Array { next: 1, len }, t)))
}
