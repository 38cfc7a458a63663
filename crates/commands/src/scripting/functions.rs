//! Functions: libraries loaded with FUNCTION LOAD into their own Lua state,
//! their functions registered with `redis.register_function`, called with
//! FCALL / FCALL_RO.
//!
//! A library's code runs once, at load, with a `redis` table that only
//! registers functions and logs; the functions it registers see the full
//! `redis` library when called. Libraries live in memory only (FUNCTION
//! DUMP/RESTORE move them between servers).

use super::engine::{compile, new_lua, ScriptFlags};
use super::{flush_mode, start, Target};
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::state::Server;
use damselfly_core::glob::glob_match;
use damselfly_protocol::Args;
use mlua::{Function, Lua, MultiValue, Table, Value};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;

const FLAGS: &[&str] = &[
    "no-writes",
    "allow-oom",
    "allow-stale",
    "no-cluster",
    "allow-cross-slot-keys",
];

#[derive(Clone)]
struct Func {
    name: String,
    func: Function,
    description: Option<Vec<u8>>,
    flags: Vec<&'static str>,
}

struct Library {
    code: Vec<u8>,
    functions: Vec<Func>,
}

pub(crate) struct Engine {
    lua: Lua,
    libraries: BTreeMap<String, Library>,
    /// Functions (by the name FCALL gave) whose last run was quick.
    pub(crate) quick: super::engine::FastSet<Vec<u8>>,
}

/// Library-load environment: `redis` is the load-time API while loading,
/// the full one afterwards.
const LOADER: &str = r#"
local G, real, register_function = ...
local rawget, error, tostring = rawget, error, tostring
local loading = false
local load_api = {register_function = register_function}
for _, n in ipairs({"log", "REDIS_VERSION", "REDIS_VERSION_NUM",
                    "LOG_DEBUG", "LOG_VERBOSE", "LOG_NOTICE", "LOG_WARNING"}) do
  load_api[n] = real[n]
end
local load_redis = setmetatable({}, {
  __index = function(_, k)
    local v = load_api[k]
    if v == nil then
      error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
    end
    return v
  end,
  __newindex = function() error("Attempt to modify a readonly table", 2) end,
  __metatable = false,
})
local env = setmetatable({}, {
  __index = function(_, k)
    local v
    if loading then
      if k == "redis" then return load_redis end
    else
      v = rawget(G, k)
    end
    if v == nil then
      error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
    end
    return v
  end,
  __newindex = function() error("Attempt to modify a readonly table", 2) end,
  __metatable = false,
})
return env, function(v) loading = v end
"#;

fn valid_name(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

fn other(msg: String) -> CmdError {
    CmdError::Other(msg)
}

impl Engine {
    pub fn new() -> mlua::Result<Engine> {
        let lua = new_lua()?;
        let real: Table = lua.globals().raw_get("__real_redis")?;
        let register: Function = lua.named_registry_value("register_function")?;
        let (env, set_loading): (Table, Function) =
            lua.load(LOADER)
                .set_name("=loader")
                .call((lua.globals(), real, register))?;
        lua.set_named_registry_value("sandbox", env)?;
        lua.set_named_registry_value("set_loading", set_loading)?;
        Ok(Engine {
            lua,
            libraries: BTreeMap::new(),
            quick: Default::default(),
        })
    }

    pub fn lua(&self) -> &Lua {
        &self.lua
    }

    pub fn counts(&self) -> (usize, usize) {
        (
            self.libraries.len(),
            self.libraries.values().map(|l| l.functions.len()).sum(),
        )
    }

    /// The function `name` and its flags (FCALL_RO's check comes with the
    /// run, after the OOM check, as in Redis).
    pub fn find(&self, name: &[u8]) -> Result<(Function, ScriptFlags), CmdError> {
        let f = self
            .libraries
            .values()
            .flat_map(|l| &l.functions)
            .find(|f| f.name.as_bytes().eq_ignore_ascii_case(name))
            .ok_or_else(|| other("ERR Function not found".into()))?;
        let no_writes = f.flags.contains(&"no-writes");
        Ok((
            f.func.clone(),
            ScriptFlags {
                no_writes,
                allow_oom: f.flags.contains(&"allow-oom"),
                allow_stale: f.flags.contains(&"allow-stale"),
                declared: true,
            },
        ))
    }

    /// FUNCTION LOAD: compiles and runs the library code, registering its
    /// functions; returns the library name.
    pub fn load(&mut self, code: &[u8], replace: bool) -> Result<String, CmdError> {
        let (name, body) = parse_header(code)?;
        if self.libraries.contains_key(&name) && !replace {
            return Err(other(format!("ERR Library '{name}' already exists")));
        }
        let func = compile(&self.lua, &body, "@user_function")
            .map_err(|m| other(format!("ERR Error compiling function: {m}")))?;
        let registered: RefCell<Vec<Func>> = RefCell::new(Vec::new());
        let lua = &self.lua;
        let run = lua.scope(|scope| {
            let impl_: Table = lua.named_registry_value("impl")?;
            let reg = scope.create_function(|lua, packed: Table| {
                let args = super::engine::unpack_args(&packed)?;
                let r = register(lua, args, &registered.borrow());
                match r {
                    Ok(f) => {
                        registered.borrow_mut().push(f);
                        Ok((true, Value::Nil))
                    }
                    Err(msg) => {
                        lua.set_named_registry_value("raised", msg.as_str())?;
                        Ok((false, Value::String(lua.create_string(&msg)?)))
                    }
                }
            })?;
            let outside: Value = impl_.raw_get("register_function")?;
            impl_.raw_set("register_function", reg)?;
            let set_loading: Function = lua.named_registry_value("set_loading")?;
            set_loading.call::<()>(true)?;
            // Library code gets half a second, as in Redis.
            let start = std::time::Instant::now();
            lua.set_hook(
                mlua::HookTriggers::new().every_nth_instruction(100_000),
                move |_, _| {
                    if start.elapsed() > std::time::Duration::from_millis(500) {
                        return Err(mlua::Error::RuntimeError("FUNCTION LOAD timeout".into()));
                    }
                    Ok(mlua::VmState::Continue)
                },
            );
            let r = super::engine::protected_call(lua, func);
            lua.remove_hook();
            super::engine::hook_removed(lua);
            set_loading.call::<()>(false)?;
            impl_.raw_set("register_function", outside)?;
            Ok(r.map(|r| {
                r.map_err(|m| {
                    if start.elapsed() > std::time::Duration::from_millis(500) {
                        "FUNCTION LOAD timeout".to_string()
                    } else {
                        m
                    }
                })
            }))
        });
        match run {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(msg))) => {
                return Err(other(format!("ERR Error registering functions: {msg}")))
            }
            Ok(Err(e)) | Err(e) => return Err(other(format!("ERR {e}"))),
        }
        let functions = registered.into_inner();
        if functions.is_empty() {
            return Err(other("ERR No functions registered".into()));
        }
        for f in &functions {
            let clash = self
                .libraries
                .iter()
                .any(|(l, lib)| *l != name && lib.functions.iter().any(|g| g.name == f.name));
            if clash {
                return Err(other(format!("ERR Function {} already exists", f.name)));
            }
        }
        self.libraries.insert(
            name.clone(),
            Library {
                code: code.to_vec(),
                functions,
            },
        );
        Ok(name)
    }
}

/// `#!lua name=<lib>`: the library name and the code with the header
/// line blanked.
fn parse_header(code: &[u8]) -> Result<(String, Vec<u8>), CmdError> {
    if !code.starts_with(b"#!") {
        return Err(other("ERR Missing library metadata".into()));
    }
    let nl = code.iter().position(|&c| c == b'\n').unwrap_or(code.len());
    let line = String::from_utf8_lossy(&code[..nl]).into_owned();
    let mut words = line.split(' ').filter(|w| !w.is_empty());
    let engine = words.next().unwrap_or_default().trim_start_matches("#!");
    if !engine.eq_ignore_ascii_case("lua") {
        return Err(other(format!("ERR Engine '{engine}' not found")));
    }
    let mut name = None;
    for w in words {
        match w.strip_prefix("name=") {
            Some(_) if name.is_some() => {
                return Err(other(
                    "ERR Invalid metadata value, name argument was given multiple times".into(),
                ))
            }
            Some(n) => {
                let n = n
                    .strip_prefix('"')
                    .and_then(|n| n.strip_suffix('"'))
                    .unwrap_or(n);
                name = Some(n.to_string());
            }
            None => return Err(other(format!("ERR Invalid metadata value given: {w}"))),
        }
    }
    let Some(name) = name else {
        return Err(other("ERR Library name was not given".into()));
    };
    if !valid_name(name.as_bytes()) {
        return Err(other(
            "ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long"
                .into(),
        ));
    }
    Ok((name, code[nl..].to_vec()))
}

/// One `redis.register_function` call, validated.
fn register(lua: &Lua, args: MultiValue, have: &[Func]) -> Result<Func, String> {
    let _ = lua;
    let mut it = args.into_iter();
    let (name, func, description, flags) = match (it.next(), it.next(), it.next()) {
        (Some(Value::String(n)), Some(Value::Function(f)), None) => (n, f, None, Vec::new()),
        (Some(Value::Table(t)), None, None) => {
            let mut name = None;
            let mut func = None;
            let mut description = None;
            let mut flags = Vec::new();
            for pair in t.pairs::<Value, Value>() {
                let (k, v) = pair.map_err(|e| e.to_string())?;
                let key = match &k {
                    Value::String(s) => s.to_string_lossy(),
                    _ => return Err("ERR named argument key given to redis.register_function is not a string".into()),
                };
                match (key.as_str(), v) {
                    ("function_name", Value::String(s)) => name = Some(s),
                    ("callback", Value::Function(f)) => func = Some(f),
                    ("description", Value::String(s)) => description = Some(s.as_bytes().to_vec()),
                    ("flags", Value::Table(ft)) => {
                        for f in ft.sequence_values::<Value>() {
                            let f = match f {
                                Ok(Value::String(s)) => s.to_string_lossy(),
                                _ => return Err("ERR unknown flag given".into()),
                            };
                            match FLAGS.iter().find(|x| **x == f) {
                                Some(x) => flags.push(*x),
                                None => return Err("ERR unknown flag given".into()),
                            }
                        }
                    }
                    ("function_name", _) => return Err("ERR function_name argument given to redis.register_function must be a string".into()),
                    ("callback", _) => return Err("ERR callback argument given to redis.register_function must be a function".into()),
                    ("description", _) => return Err("ERR description argument given to redis.register_function must be a string".into()),
                    ("flags", _) => return Err("ERR flags argument to redis.register_function must be a table representing function flags".into()),
                    _ => return Err("ERR unknown argument given to redis.register_function".into()),
                }
            }
            let Some(name) = name else {
                return Err("ERR redis.register_function must get a function name argument".into());
            };
            let Some(func) = func else {
                return Err("ERR redis.register_function must get a callback argument".into());
            };
            (name, func, description, flags)
        }
        (Some(Value::String(_)), Some(_), None) => {
            return Err("ERR second argument to redis.register_function must be a function".into())
        }
        (Some(_), Some(_), None) => {
            return Err("ERR first argument to redis.register_function must be a string".into())
        }
        (Some(_), None, None) => return Err("ERR calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).".into()),
        _ => return Err("ERR wrong number of arguments to redis.register_function".into()),
    };
    let name = name.to_string_lossy();
    if !valid_name(name.as_bytes()) {
        // Redis 7.0 names the library in this message, even for a function.
        return Err("ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long".into());
    }
    if have.iter().any(|f| f.name == name) {
        return Err("ERR Function already exists in the library".into());
    }
    Ok(Func {
        name,
        func,
        description,
        flags,
    })
}

fn update_counts(ctx: &Ctx, e: &mut Engine) {
    record(&ctx.server.scripting, e);
}

/// The libraries changed: keeps the counts and the libraries' sources
/// where readers that must not wait for the VM find them, and forgets
/// which functions ran quickly (a name may now run other code).
fn record(sc: &super::Scripting, e: &mut Engine) {
    e.quick.clear();
    let (l, f) = e.counts();
    sc.libraries.store(l, Relaxed);
    sc.functions.store(f, Relaxed);
    *sc.library_codes.lock() = e.libraries.values().map(|l| l.code.clone()).collect();
}

/// Every library's source, for a snapshot (FUNCTION2 records).
pub fn library_codes(server: &Server) -> Vec<Vec<u8>> {
    server.scripting.library_codes.lock().clone()
}

/// Loads one library a snapshot holds; a name already taken is an
/// error unless `replace`.
pub fn load_from_snapshot(server: &Server, code: &[u8], replace: bool) -> Result<(), String> {
    let sc = &server.scripting;
    let lock = sc.lock_vm(server, 0).map_err(|e| e.to_string())?;
    let mut vm = lock.vm().map_err(|e| e.to_string())?;
    let loaded = vm.functions.load(code, replace).map(drop);
    record(sc, &mut vm.functions);
    loaded.map_err(|e| e.to_string())
}

/// Drops every library (FUNCTION FLUSH; DEBUG RELOAD, with the keys), for
/// `caller` (0: the server itself).
pub fn clear(server: &Server, caller: u64) -> CmdResult {
    let sc = &server.scripting;
    let lock = sc.lock_vm(server, caller)?;
    let mut vm = lock.vm()?;
    vm.functions = Engine::new().map_err(|e| other(format!("ERR {e}")))?;
    record(sc, &mut vm.functions);
    Ok(())
}

/// FCALL function numkeys [key ...] [arg ...]
pub(crate) fn fcall(ctx: &mut Ctx, args: &Args) -> CmdResult {
    fcall_generic(ctx, args, false)
}

/// FCALL_RO function numkeys [key ...] [arg ...]
pub(crate) fn fcall_ro(ctx: &mut Ctx, args: &Args) -> CmdResult {
    fcall_generic(ctx, args, true)
}

/// The function is looked up before numkeys is parsed, as Redis does.
/// (Taking the VM here keeps the lock order: the dispatcher holds no
/// shard for FCALL, and EXEC took the VM before its shards.)
fn fcall_generic(ctx: &mut Ctx, args: &Args, read_only: bool) -> CmdResult {
    let name = args.get(1).unwrap_or_default().to_vec();
    {
        let sc = &ctx.server.scripting;
        let lock = sc.lock_vm(ctx.server, ctx.client.id())?;
        let vm = lock.vm()?;
        vm.functions.find(&name)?;
    }
    start(ctx, args, Target::Function(name), read_only)
}

/// FUNCTION LOAD [REPLACE] function-code
pub(crate) fn function_load(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let mut replace = false;
    let mut i = 2;
    while i + 1 < args.len() {
        let a = args.get(i).unwrap_or_default();
        if crate::args::eq(a, "replace") {
            replace = true;
        } else {
            return Err(other(format!(
                "ERR Unknown option given: {}",
                crate::args::lossy(a)
            )));
        }
        i += 1;
    }
    let code = args.get(args.len() - 1).unwrap_or_default();
    let sc = &ctx.server.scripting;
    let lock = sc.lock_vm(ctx.server, ctx.client.id())?;
    let mut vm = lock.vm()?;
    let name = vm.functions.load(code, replace)?;
    update_counts(ctx, &mut vm.functions);
    ctx.reply.bulk(name.as_bytes());
    Ok(())
}

/// FUNCTION DELETE library-name
pub(crate) fn function_delete(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let name = crate::args::lossy(args.get(2).unwrap_or_default());
    let sc = &ctx.server.scripting;
    let lock = sc.lock_vm(ctx.server, ctx.client.id())?;
    let mut vm = lock.vm()?;
    if vm.functions.libraries.remove(&name).is_none() {
        return Err(other("ERR Library not found".into()));
    }
    update_counts(ctx, &mut vm.functions);
    ctx.reply.ok();
    Ok(())
}

/// FUNCTION FLUSH [ASYNC | SYNC]
pub(crate) fn function_flush(ctx: &mut Ctx, args: &Args) -> CmdResult {
    flush_mode(args, "FUNCTION")?;
    clear(ctx.server, ctx.client.id())?;
    ctx.reply.ok();
    Ok(())
}

/// FUNCTION KILL
pub(crate) fn function_kill(ctx: &mut Ctx, _args: &Args) -> CmdResult {
    super::kill(ctx, true)
}

/// FUNCTION LIST [LIBRARYNAME library-name-pattern] [WITHCODE]
pub(crate) fn function_list(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let mut pattern: Option<Vec<u8>> = None;
    let mut code = false;
    let mut i = 2;
    while i < args.len() {
        let a = args.get(i).unwrap_or_default();
        if crate::args::eq(a, "withcode") {
            if code {
                return Err(other("ERR Unknown argument withcode".into()));
            }
            code = true;
        } else if crate::args::eq(a, "libraryname") {
            if pattern.is_some() {
                return Err(other("ERR Unknown argument libraryname".into()));
            }
            let Some(p) = args.get(i + 1) else {
                return Err(other("ERR library name argument was not given".into()));
            };
            pattern = Some(p.to_vec());
            i += 1;
        } else {
            return Err(other(format!(
                "ERR Unknown argument {}",
                crate::args::lossy(a)
            )));
        }
        i += 1;
    }
    let sc = &ctx.server.scripting;
    let lock = sc.lock_vm(ctx.server, ctx.client.id())?;
    let vm = lock.vm()?;
    let libs: Vec<(&String, &Library)> = vm
        .functions
        .libraries
        .iter()
        .filter(|(n, _)| {
            pattern
                .as_ref()
                .is_none_or(|p| glob_match(p, n.as_bytes(), false))
        })
        .collect();
    let r = &mut *ctx.reply;
    r.array(libs.len());
    for (name, lib) in libs {
        r.map(3 + usize::from(code));
        r.bulk(b"library_name");
        r.bulk(name.as_bytes());
        r.bulk(b"engine");
        r.bulk(b"LUA");
        r.bulk(b"functions");
        r.array(lib.functions.len());
        for f in &lib.functions {
            r.map(3);
            r.bulk(b"name");
            r.bulk(f.name.as_bytes());
            r.bulk(b"description");
            match &f.description {
                Some(d) => r.bulk(d),
                None => r.null(),
            }
            r.bulk(b"flags");
            r.set(f.flags.len());
            for fl in &f.flags {
                r.simple(fl.as_bytes());
            }
        }
        if code {
            r.bulk(b"library_code");
            r.bulk(&lib.code);
        }
    }
    Ok(())
}

const DUMP_VERSION: u16 = 10;
const OPCODE_FUNCTION: u8 = 245;

fn crc64(b: &[u8]) -> u64 {
    crc::Crc::<u64>::new(&crc::CRC_64_REDIS).checksum(b)
}

/// An RDB string length.
fn put_len(out: &mut Vec<u8>, n: usize) {
    if n < 64 {
        out.push(n as u8);
    } else if n < 16384 {
        out.push(0x40 | (n >> 8) as u8);
        out.push(n as u8);
    } else if n <= u32::MAX as usize {
        out.push(0x80);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&(n as u64).to_be_bytes());
    }
}

fn get_len(b: &[u8], pos: &mut usize) -> Option<usize> {
    let c = *b.get(*pos)?;
    *pos += 1;
    match c >> 6 {
        0 => Some(usize::from(c & 0x3f)),
        1 => {
            let d = *b.get(*pos)?;
            *pos += 1;
            Some(usize::from(c & 0x3f) << 8 | usize::from(d))
        }
        _ if c == 0x80 => {
            let s = b.get(*pos..*pos + 4)?;
            *pos += 4;
            Some(u32::from_be_bytes(s.try_into().ok()?) as usize)
        }
        _ if c == 0x81 => {
            let s = b.get(*pos..*pos + 8)?;
            *pos += 8;
            usize::try_from(u64::from_be_bytes(s.try_into().ok()?)).ok()
        }
        _ => None,
    }
}

/// FUNCTION DUMP: every library's code, in DUMP's framing (payload,
/// RDB version, CRC64).
pub(crate) fn function_dump(ctx: &mut Ctx, _args: &Args) -> CmdResult {
    let sc = &ctx.server.scripting;
    let lock = sc.lock_vm(ctx.server, ctx.client.id())?;
    let vm = lock.vm()?;
    let mut out = Vec::new();
    for lib in vm.functions.libraries.values() {
        out.push(OPCODE_FUNCTION);
        put_len(&mut out, lib.code.len());
        out.extend_from_slice(&lib.code);
    }
    out.extend_from_slice(&DUMP_VERSION.to_le_bytes());
    let crc = crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    ctx.reply.bulk(&out);
    Ok(())
}

/// FUNCTION RESTORE serialized-value [FLUSH | APPEND | REPLACE]
pub(crate) fn function_restore(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let payload = args.get(2).unwrap_or_default();
    let policy = match args.get(3) {
        None => "append",
        Some(p) if args.len() == 4 => {
            if crate::args::eq(p, "flush") {
                "flush"
            } else if crate::args::eq(p, "append") {
                "append"
            } else if crate::args::eq(p, "replace") {
                "replace"
            } else {
                return Err(other(
                    "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE."
                        .into(),
                ));
            }
        }
        Some(_) => {
            return Err(CmdError::SubcommandSyntax {
                sub: args.get(1).unwrap_or_default().to_vec(),
                cmd: "FUNCTION".into(),
            })
        }
    };
    let bad = || other("ERR DUMP payload version or checksum are wrong".into());
    if payload.len() < 10 {
        return Err(bad());
    }
    let (body, footer) = payload.split_at(payload.len() - 10);
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    let crc = u64::from_le_bytes(footer[2..].try_into().map_err(|_| bad())?);
    if version > DUMP_VERSION || crc64(&payload[..payload.len() - 8]) != crc {
        return Err(bad());
    }
    let mut codes = Vec::new();
    let mut pos = 0;
    while pos < body.len() {
        if body[pos] != OPCODE_FUNCTION {
            return Err(other("ERR given type is not a function".into()));
        }
        pos += 1;
        let n = get_len(body, &mut pos).ok_or_else(bad)?;
        let code = body.get(pos..pos + n).ok_or_else(bad)?;
        pos += n;
        codes.push(code.to_vec());
    }
    let sc = &ctx.server.scripting;
    let lock = sc.lock_vm(ctx.server, ctx.client.id())?;
    let mut vm = lock.vm()?;
    let mut fresh = Engine::new().map_err(|e| other(format!("ERR {e}")))?;
    if policy != "flush" {
        for lib in vm.functions.libraries.values() {
            fresh.load(&lib.code, false)?;
        }
    }
    for code in &codes {
        if policy == "append" {
            if let Ok((name, _)) = parse_header(code) {
                if fresh.libraries.contains_key(&name) {
                    return Err(other(format!("ERR Library {name} already exists")));
                }
            }
        }
        fresh.load(code, policy == "replace")?;
    }
    vm.functions = fresh;
    update_counts(ctx, &mut vm.functions);
    ctx.reply.ok();
    Ok(())
}

/// FUNCTION STATS
pub(crate) fn function_stats(ctx: &mut Ctx, _args: &Args) -> CmdResult {
    let sc = &ctx.server.scripting;
    let r = &mut *ctx.reply;
    r.map(2);
    r.bulk(b"running_script");
    let started = sc.running.started.load(Relaxed);
    if started == 0 || !sc.running.function.load(Relaxed) {
        r.null();
    } else {
        let cur = sc.running.current.lock().clone();
        r.map(3);
        r.bulk(b"name");
        r.bulk(cur.first().map(Vec::as_slice).unwrap_or_default());
        r.bulk(b"command");
        r.array(cur.len().saturating_sub(1));
        for a in cur.iter().skip(1) {
            r.bulk(a);
        }
        r.bulk(b"duration_ms");
        r.int(super::mono_ms().saturating_sub(started) as i64);
    }
    r.bulk(b"engines");
    r.map(1);
    r.bulk(b"LUA");
    r.map(2);
    r.bulk(b"libraries_count");
    r.int(sc.libraries.load(Relaxed) as i64);
    r.bulk(b"functions_count");
    r.int(sc.functions.load(Relaxed) as i64);
    Ok(())
}
