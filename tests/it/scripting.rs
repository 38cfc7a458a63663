//! Lua scripting and functions compared with redis-server (replies and
//! errors, RESP2 and RESP3), and a job-queue workload run by many clients
//! at once whose invariants hold only if every script is atomic.

use crate::support::{damselfly, diff, redis, Conn};
use rand::{Rng, SeedableRng};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const CONVERSIONS: &str = r#"
    EVAL "return {1,2,3,'ciao',{1,2}, 3.99, -3.99, true, false, nil, 5}" 0
    EVAL "return {ok='fine'}" 0
    EVAL "return {err='x', ok='y'}" 0
    EVAL "return {err=1}" 0
    EVAL "return {err=''}" 0
    EVAL "return {double=1.5}" 0
    EVAL "return {map={a=1}}" 0
    EVAL "return {set={a=true}}" 0
    EVAL "return {big_number='123'}" 0
    EVAL "return {verbatim_string={format='txt',string='hi'}}" 0
    EVAL "return 1e20" 0
    EVAL "return -1e20" 0
    EVAL "return 0/0" 0
    EVAL "return 3.99" 0
    EVAL "return -0.5" 0
    EVAL "return 'hello'" 0
    EVAL "return nil" 0
    EVAL "return false" 0
    EVAL "return true" 0
    EVAL "return {}" 0
    EVAL "return {1, {err='inner'}, 3}" 0
    EVAL "redis.setresp(3) return {true,false}" 0
    EVAL "redis.setresp(3); return false" 0
    EVAL "return {KEYS[1], KEYS[2], ARGV[1], ARGV[2]}" 2 k1 k2 a1 a2
    EVAL "return redis.error_reply('My Error')" 0
    EVAL "return redis.error_reply('-ERR x')" 0
    EVAL "return redis.error_reply('')" 0
    EVAL "return redis.error_reply('Foo')" 0
    EVAL "return redis.status_reply('fine')" 0
    EVAL "return redis.status_reply()" 0
    EVAL "return redis.sha1hex('')" 0
    EVAL "return {redis.replicate_commands(), redis.breakpoint(), redis.debug('x')}" 0
    EVAL "return {redis.REDIS_VERSION, redis.REDIS_VERSION_NUM, redis.LOG_WARNING, redis.REPL_ALL}" 0
    EVAL "return redis.acl_check_cmd('set','a','b')" 0
    # Replies of commands, converted to Lua and back.
    EVAL "return redis.call('set','x','1')" 0
    EVAL "return redis.call('get','x')" 0
    EVAL "return redis.call('get','nokey')" 0
    EVAL "return redis.call('incrbyfloat','fl','1.5')" 0
    EVAL "return redis.call('zadd','z','1.5','a')" 0
    EVAL "redis.setresp(3) return redis.call('zscore','z','a')" 0
    EVAL "redis.setresp(3) return redis.call('hgetall','nokey')" 0
    EVAL "redis.call('hset','h','f','v') redis.setresp(3) return redis.call('hgetall','h')" 0
    EVAL "redis.setresp(3) return redis.call('get','nokey')" 0
    EVAL "return redis.call('zrange','z',0,-1,'withscores')" 0
    EVAL "return redis.pcall('lpush','x','1')" 0
    EVAL "local t = redis.pcall('lpush','x','y') return {type(t), t.err}" 0
    EVAL "return redis.call('select', 1)" 0
    EVAL "redis.call('select', 1) redis.call('set','indb1','v') return redis.call('get','indb1')" 0
    GET indb1
    EVAL "return redis.call('ping')" 0
    # Plain replies as Lua sees them (redis.call pushes these itself).
    EVAL "local r = redis.call('set','x','1') return {type(r), r.ok, type(redis.call('incrby','x',-5))}" 0
    EVAL "return {redis.call('incrby','x',-5), type(redis.call('get','nokey')), redis.call('get','nokey') == false}" 0
    EVAL "redis.call('set','big',string.rep('ab',150000)) local v = redis.call('get','big') return {#v, string.sub(v,1,3)}" 0
    EVAL "return {redis.call('get','big') == string.rep('ab',150000), redis.call('strlen','big')}" 0
    EVAL "redis.setresp(3) return {type(redis.call('get','nokey')), redis.call('incr','n3')}" 0
    # Arrays of plain values, both ways (redis.call and c_run convert them).
    EVAL "redis.call('hset','hh','a','1','b','2') redis.call('rpush','ll','x','y') return {#redis.call('hgetall','hh'), redis.call('lrange','ll',0,-1)[2], #redis.call('lrange','none',0,-1)}" 0
    EVAL "local m = redis.call('mget','x','nokey','hh') return {type(m[2]), m[1], redis.call('zrange','z',0,-1,'withscores')[2]}" 0
    EVAL "redis.call('hset','hh','a','1','b','2') return redis.call('hgetall','hh')" 0
    EVAL "return redis.call('mget','nokey','x')" 0
    EVAL "return {1, 'a', true, false, 3.7, -2.5, nil, 5}" 0
    EVAL "return {1e20, 0/0, redis.call, -1e20, ''}" 0
    EVAL "return {1, 2, ok='fine'}" 0
    EVAL "return {1, {2, 3}, 'x'}" 0
    EVAL "redis.setresp(3) return {true, false, 1}" 0
    EVAL "local t = {1} for i = 1, 40 do t = {t, i} end return t" 0
    EVAL "return {{err='x'}, {ok='y'}, {double=2.5}, {1, {2, {3}}}, {big_number='7'}}" 0
    EVAL "return redis.call('rpush','l',1,2.5,'x')" 0
    LRANGE l 0 -1
    EVAL "return redis.call('set','n',9007199254740991)" 0
    GET n
    # A set sorted BY a constant comes back sorted to a script.
    SADD myset a b c d aa aaa azz z
    EVAL "return redis.call('sort',KEYS[1],'by','_')" 1 myset
    EVAL "return redis.call('sort',KEYS[1],'by','_','get','#','get','_:*')" 1 myset
    # Huge and self-referencing replies.
    EVAL "local t = {} for i=1,20000 do t[i]=tostring(i) end return #t" 0
    EVAL "local a = {} for i=1,7999 do a[i] = 1 end return redis.call('lpush', 'big', unpack(a))" 0
"#;

/// A random Lua expression: scalars, special tables, the replies of
/// commands (plain, aggregate, error), and tables of these three deep.
fn random_value(rng: &mut impl Rng, depth: u32) -> String {
    const CALLS: &[&str] = &[
        "redis.call('get','str')",
        "redis.call('get','nokey')",
        "redis.call('incr','n')",
        "redis.call('incrby','n',-7)",
        "redis.call('lrange','l',0,-1)",
        "redis.call('lrange','nokey',0,-1)",
        "redis.call('hgetall','h')",
        "redis.call('smembers','s')",
        "redis.call('zrange','z',0,-1,'withscores')",
        "redis.call('zscore','z','b')",
        "redis.call('mget','str','nokey','n')",
        "redis.call('ping')",
        "redis.call('set','x','y')",
        "redis.call('hget','h','f1')",
        "redis.call('type','l')",
        "redis.pcall('incr','l')",
        "redis.pcall('nosuch')",
        "redis.pcall('get')",
        "redis.call('xrange','st','-','+')",
        "redis.call('xread','streams','st','0')",
        "redis.call('xread','streams','nokey','0')",
        "redis.call('xinfo','stream','st')",
        "redis.call('zrangebyscore','z','-inf','+inf','withscores')",
        "redis.call('zmscore','z','a','nokey')",
        "redis.call('smismember','s','m','x')",
        "redis.call('hmget','h','f1','nokey')",
        "redis.call('config','get','maxmemory')",
        "redis.call('incrbyfloat','fl','0.5')",
        "redis.call('lpos','l','b')",
        "redis.call('getrange','str',0,2)",
        "redis.call('zpopmin','z')",
    ];
    let kinds = if depth < 3 { 10 } else { 8 };
    match rng.random_range(0..kinds) {
        0 => rng.random_range(-1000i64..1000).to_string(),
        1 => ["0/0", "1e20", "-1e20", "3.99", "-0.5", "2^53"][rng.random_range(0..6)].to_string(),
        2 => {
            let n = rng.random_range(0..6);
            let s: String = (0..n)
                .map(|_| rng.random_range(b'a'..=b'z') as char)
                .collect();
            format!("'{s}'")
        }
        3 => ["true", "false", "nil", "redis.call"][rng.random_range(0..4)].to_string(),
        4..=6 => CALLS[rng.random_range(0..CALLS.len())].to_string(),
        7 => [
            "{ok='fine'}",
            "{err='bad'}",
            "{double=1.5}",
            "{1, 2, ok='x'}",
            "{big_number='12'}",
            "{map={a=1}}",
            "{err=3, ok='y'}",
        ][rng.random_range(0..7)]
        .to_string(),
        _ => {
            let n = rng.random_range(0..5);
            let items: Vec<String> = (0..n).map(|_| random_value(rng, depth + 1)).collect();
            format!("{{{}}}", items.join(", "))
        }
    }
}

/// Scripts returning random values, and the replies of commands converted
/// both ways, reply as Redis's do: RESP2 and RESP3 clients, with and
/// without `redis.setresp(3)`.
#[test]
fn random_script_values_convert_as_redis() {
    let (r, d) = (redis(), damselfly(&[]));
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5c41);
    for resp in ["2", "3"] {
        let mut conns = [Conn::open(r.port), Conn::open(d.port)];
        for c in &mut conns {
            c.cmd(&["HELLO", resp]);
            c.cmd(&["FLUSHALL"]);
            c.cmd(&["RPUSH", "l", "a", "b", "c"]);
            c.cmd(&["HSET", "h", "f1", "1", "f2", "x"]);
            c.cmd(&["SADD", "s", "m"]);
            c.cmd(&["ZADD", "z", "1", "a", "2.5", "b"]);
            c.cmd(&["SET", "str", "hello"]);
            c.cmd(&["SET", "n", "42"]);
            c.cmd(&["XADD", "st", "1-1", "f", "v"]);
            c.cmd(&["XADD", "st", "2-1", "a", "b", "c", "d"]);
        }
        for _ in 0..400 {
            let setresp = if rng.random_bool(0.3) {
                "redis.setresp(3) "
            } else {
                ""
            };
            let body = format!("{setresp}return {}", random_value(&mut rng, 0));
            let [a, b] = conns.each_mut().map(|c| c.cmd(&["EVAL", &body, "0"]));
            assert_eq!(a, b, "HELLO {resp}, EVAL {body}");
        }
    }
}

#[test]
fn conversions_resp2() {
    diff(CONVERSIONS);
}

#[test]
fn conversions_resp3() {
    diff(&format!("~HELLO 3\n{CONVERSIONS}"));
}

const ERRORS: &str = r##"
    EVAL "return a" 0
    EVAL "a=1" 0
    EVAL "redis.call=1" 0
    EVAL "return _G.foo" 0
    EVAL "return os" 0
    EVAL "return print" 0
    EVAL "return loadfile" 0
    EVAL "return dofile" 0
    EVAL "return io" 0
    EVAL "return redis.call('nosuch')" 0
    EVAL "return redis.call('get')" 0
    EVAL "redis.call('set','x','1') return redis.call('lpush','x','1')" 0
    EVAL "return redis.call()" 0
    EVAL "return redis.call({})" 0
    EVAL "return redis.call('set','x',{})" 0
    EVAL "return redis.call('eval','return 1','0')" 0
    EVAL "return redis.call('multi')" 0
    EVAL "return redis.call('blpop','nolist',0)" 0
    EVAL "error('boom')" 0
    EVAL "error({err='boom'})" 0
    EVAL "error({err='ERR from table'})" 0
    EVAL "error('x',0)" 0
    EVAL "error(12)" 0
    EVAL "local function f()\nerror('x')\nend\nf()" 0
    EVAL "\nlocal function f()\nreturn redis.call('nosuch')\nend\nreturn f()" 0
    EVAL "return pcall(redis.call,'nosuch')" 0
    EVAL "local ok,e = pcall(redis.call,'nosuch') return e" 0
    EVAL "local ok,e = pcall(redis.call,'nosuch') error(e)" 0
    EVAL "local ok,e = pcall(error,'x') return e" 0
    EVAL "return redis.pcall('nosuch')" 0
    EVAL "local f = loadstring('x = 1') f()" 0
    EVAL "rawset(_G, 'x', 1)" 0
    EVAL "rawset(redis, 'call', 1)" 0
    EVAL "return rawget(_G, 'redis') ~= nil" 0
    EVAL "return rawget(_G, 'nosuch')" 0
    EVAL "local t = {} rawset(t, 'a', 1) return rawget(t, 'a')" 0
    EVAL "return pcall(function() return nosuch end)" 0
    EVAL "return redis.call('incr', 7.5)" 0
    EVAL "return redis.call('set', 'num', 1e15) and redis.call('get', 'num')" 0
    EVAL "return redis.call('set', 'num', -3) and redis.call('get', 'num')" 0
    EVAL "return 1+" 0
    EVAL "return redis.setresp(4)" 0
    EVAL "return redis.setresp()" 0
    EVAL "return redis.sha1hex()" 0
    EVAL "return redis.log()" 0
    EVAL "return redis.log('a','b')" 0
    EVAL "return redis.log(99,'b')" 0
    EVAL "return redis.set_repl()" 0
    EVAL "return redis.set_repl(99)" 0
    EVAL "return redis.acl_check_cmd('nosuch')" 0
    EVAL_RO "return redis.call('set','a','b')" 0
    EVAL "return 1" -1
    EVAL "return 1" 2 a
    EVAL "return 1" x
    EVAL "return 1"
    EVALSHA ffffffffffffffffffffffffffffffffffffffff 0
    EVAL "#!lua\nreturn 1" 0
    EVAL "#!lua flags=no-writes\nreturn redis.call('set','a','b')" 0
    EVAL "#!lua flags=no-writes,allow-oom\nreturn 1" 0
    EVAL "#!lua flags=\nreturn 1" 0
    EVAL "#!foo\nreturn 1" 0
    EVAL "#!lua flags=bad\nreturn 1" 0
    EVAL "#!lua name=x\nreturn 1" 0
    EVAL "#!lua" 0
    XGROUP CREATE s g $ MKSTREAM
    EVAL "return redis.pcall('xread','STREAMS','s','$')" 1 s
    EVAL "return redis.pcall('xread','BLOCK',0,'STREAMS','s','$')" 1 s
    EVAL "return redis.pcall('xreadgroup','group','g','c','BLOCK',0,'STREAMS','s','>')" 1 s
    # A script that fails midway keeps the writes it made.
    EVAL "redis.call('set','kept','1') error('after write')" 0
    GET kept
"##;

#[test]
fn errors_resp2() {
    diff(ERRORS);
}

#[test]
fn errors_resp3() {
    diff(&format!("~HELLO 3\n{ERRORS}"));
}

const SCRIPT_CACHE: &str = r#"
    SCRIPT LOAD "return 1"
    SCRIPT EXISTS e0e1f9fabfc9d4800c877a703b823ac0578ff8db ffff
    EVALSHA e0e1f9fabfc9d4800c877a703b823ac0578ff8db 0
    EVALSHA E0E1F9FABFC9D4800C877A703B823AC0578FF8DB 0
    EVALSHA_RO e0e1f9fabfc9d4800c877a703b823ac0578ff8db 0
    EVAL "return 2" 0
    EVALSHA 7f923f79fe76194c868d7e1d0820de36700eb649 0
    SCRIPT FLUSH
    SCRIPT EXISTS e0e1f9fabfc9d4800c877a703b823ac0578ff8db
    EVALSHA e0e1f9fabfc9d4800c877a703b823ac0578ff8db 0
    SCRIPT LOAD "return +"
    SCRIPT FLUSH ASYNC
    SCRIPT FLUSH SYNC
    SCRIPT FLUSH foo
    SCRIPT KILL
    SCRIPT HELP
    SCRIPT
    SCRIPT NOSUCH
"#;

#[test]
fn script_cache() {
    diff(SCRIPT_CACHE);
}

const LIBRARIES: &str = r#"
    EVAL "return cjson.encode({1,2,{a=1}})" 0
    EVAL "return table.concat(cjson.decode('[0.0, -5e3, -1, 0.3e-3, 1023.2, 0e10]'), ' ')" 0
    EVAL "local d = cjson.decode('{\"keya\": \"a\", \"keyb\": \"b\"}') return {d.keya, d.keyb}" 0
    EVAL "return cjson.encode({a='x/y\\n'})" 0
    EVAL "return cjson.encode(cjson.decode('[1,\"two\",null,true,{\"k\":[]}]'))" 0
    EVAL "return {bit.tobit(1), bit.bnot(0), bit.bor(1,2,4), bit.band(7,3), bit.bxor(5,1)}" 0
    EVAL "return {bit.tohex(65535), bit.tohex(-1, -4), bit.lshift(1, 40), bit.rshift(-1, 28), bit.arshift(-256, 4)}" 0
    EVAL "return {bit.rol(1, 33), bit.ror(1, 1), bit.bswap(1)}" 0
    EVAL "return cmsgpack.unpack(cmsgpack.pack({1,2,3,'abc',{a=1}}))" 0
    EVAL "return cmsgpack.pack(1, -1, 300, -300, 70000, 'x')" 0
    EVAL "return struct.pack('HH', 1, 2)" 0
    EVAL "return {struct.unpack('HH', struct.pack('HH', 1, 2))}" 0
    EVAL "return {struct.unpack('>i', struct.pack('>i', -5))}" 0
    EVAL "return loadstring('return 1')()" 0
    EVAL "return string.rep('x', 3) .. tostring(12.5)" 0
"#;

#[test]
fn libraries() {
    diff(LIBRARIES);
}

const FUNCTIONS: &str = r##"
    FUNCTION LOAD "#!lua name=mylib\nredis.register_function('myfunc', function(keys, args) return {keys[1], args[1]} end)"
    FCALL myfunc 1 k a
    FCALL_RO myfunc 1 k a
    FCALL nofunc 0
    FCALL nofunc x
    FCALL myfunc x
    FCALL myfunc -1
    FUNCTION LOAD "#!lua name=mylib\nredis.register_function('myfunc', function(keys, args) return 1 end)"
    FUNCTION LOAD REPLACE "#!lua name=mylib\nredis.register_function{function_name='myfunc', callback=function(keys, args) return redis.call('set', keys[1], args[1]) end, flags={'no-writes'}, description='desc'}"
    FCALL myfunc 1 k a
    FCALL_RO myfunc 1 k a
    FUNCTION LIST
    FUNCTION LIST WITHCODE
    FUNCTION LIST LIBRARYNAME my*
    FUNCTION LIST LIBRARYNAME x*
    FUNCTION LIST foo
    FUNCTION LOAD "return 1"
    FUNCTION LOAD "#!lua\nreturn 1"
    FUNCTION LOAD "#!lua name=a-b\nreturn 1"
    FUNCTION LOAD "#!foo name=ab\nreturn 1"
    FUNCTION LOAD "#!lua name=ab\nreturn 1"
    FUNCTION LOAD "#!lua name=ab\nreturn +"
    FUNCTION LOAD "#!lua name=ab\nredis.call('ping')"
    FUNCTION LOAD "#!lua name=ab\nredis.register_function('myfunc', function() return 1 end)"
    FUNCTION LOAD "#!lua name=ab\nredis.register_function('x', function() return 1 end)\nredis.register_function('x', function() return 1 end)"
    FUNCTION LOAD "#!lua name=ab\nredis.register_function('a-b', function() return 1 end)"
    FUNCTION LOAD "#!lua name=ab\nredis.register_function{function_name='y', callback=function() return 1 end, flags={'bad'}}"
    FUNCTION LOAD "#!lua name=ab\nredis.register_function{function_name='y', callback=function() return 1 end, foo=1}"
    FUNCTION LOAD "#!lua name=ab\nredis.register_function('y')"
    FUNCTION LOAD "#!lua name=ab\nlocal a = b"
    FUNCTION LOAD "#!lua name=ab\nerror('oops')"
    FUNCTION LOAD "#!lua name=errlib\nredis.register_function('errf', function() return redis.call('nosuch') end)\nredis.register_function('errg', function() error('bad') end)\nredis.register_function('errh', function() return foo end)"
    FCALL errf 0
    FCALL errg 0
    FCALL errh 0
    FUNCTION STATS
    FUNCTION DELETE nolib
    FUNCTION DELETE errlib
    FUNCTION LOAD foo "#!lua name=ab\nreturn 1"
    FUNCTION RESTORE garbage
    FUNCTION RESTORE garbage FLUSH
    FUNCTION RESTORE garbage foo
    FUNCTION KILL
    FUNCTION FLUSH
    FUNCTION FLUSH ASYNC
    FUNCTION FLUSH foo
    FUNCTION LIST
    FCALL myfunc 0
    FUNCTION HELP
"##;

#[test]
fn functions_resp2() {
    diff(FUNCTIONS);
}

#[test]
fn functions_resp3() {
    diff(&format!("~HELLO 3\n{FUNCTIONS}"));
}

#[test]
fn function_dump_restores_libraries() {
    let d = damselfly(&[]);
    let mut c = Conn::open(d.port);
    let lib = "#!lua name=lib1\nredis.register_function('f1', function() return 7 end)";
    assert_eq!(c.cmd(&["FUNCTION", "LOAD", lib]), "$4\r\nlib1\r\n");
    let dump = c.raw(&["FUNCTION", "DUMP"]);
    let payload = bulk_payload(&dump);
    assert_eq!(c.cmd(&["FUNCTION", "FLUSH"]), "+OK\r\n");
    assert_eq!(c.cmd(&["FCALL", "f1", "0"]), "-ERR Function not found\r\n");
    assert_eq!(
        String::from_utf8_lossy(&c.raw(&[b"FUNCTION".as_slice(), b"RESTORE", &payload])),
        "+OK\r\n"
    );
    assert_eq!(c.cmd(&["FCALL", "f1", "0"]), ":7\r\n");
    assert_eq!(
        String::from_utf8_lossy(&c.raw(&[b"FUNCTION".as_slice(), b"RESTORE", &payload])),
        "-ERR Library lib1 already exists\r\n"
    );
    assert_eq!(
        String::from_utf8_lossy(&c.raw(&[
            b"FUNCTION".as_slice(),
            b"RESTORE",
            &payload,
            b"REPLACE"
        ])),
        "+OK\r\n"
    );
    let mut bad = payload.clone();
    if let Some(b) = bad.last_mut() {
        *b ^= 1;
    }
    assert_eq!(
        String::from_utf8_lossy(&c.raw(&[b"FUNCTION".as_slice(), b"RESTORE", &bad])),
        "-ERR DUMP payload version or checksum are wrong\r\n"
    );
}

const SCRIPTS_IN_MULTI: &str = r#"
    MULTI
    SET a 1
    EVAL "return redis.call('incr', 'a')" 0
    EVAL "return redis.call('get', 'undeclared')" 0
    EVAL "return x" 0
    EXEC
    GET a
"#;

#[test]
fn scripts_inside_exec() {
    diff(SCRIPTS_IN_MULTI);
}

/// Polls `f` until it is true (or panics after a generous deadline).
pub(crate) fn wait_for(mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !f() {
        assert!(std::time::Instant::now() < deadline, "condition never held");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[test]
fn runaway_script_gets_busy_replies_and_script_kill_stops_it() {
    let d = damselfly(&["--proactor_threads", "1"]);
    let mut admin = Conn::open(d.port);
    assert_eq!(
        admin.cmd(&["CONFIG", "SET", "busy-reply-threshold", "50"]),
        "+OK\r\n"
    );
    let mut runner = Conn::open(d.port);
    runner.send(&["EVAL", "while true do end", "0"]);
    // Same worker thread (one thread): it still answers, with BUSY.
    wait_for(|| admin.cmd(&["PING"]).starts_with("-BUSY"));
    assert_eq!(
        admin.cmd(&["GET", "x"]),
        "-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.\r\n"
    );
    assert_eq!(
        admin.cmd(&["FUNCTION", "KILL"]),
        "-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.\r\n"
    );
    assert_eq!(admin.cmd(&["SCRIPT", "KILL"]), "+OK\r\n");
    let reply = String::from_utf8_lossy(&runner.read()).into_owned();
    assert!(
        reply.starts_with("-ERR Script killed by user with SCRIPT KILL..."),
        "{reply}"
    );
    assert_eq!(admin.cmd(&["PING"]), "+PONG\r\n");
    assert_eq!(
        admin.cmd(&["SCRIPT", "KILL"]),
        "-NOTBUSY No scripts in execution right now.\r\n"
    );

    // pcall cannot swallow the kill.
    runner.send(&[
        "EVAL",
        "local f = function() while 1 do redis.call('ping') end end while 1 do pcall(f) end",
        "0",
    ]);
    wait_for(|| admin.cmd(&["PING"]).starts_with("-BUSY"));
    assert_eq!(admin.cmd(&["SCRIPT", "KILL"]), "+OK\r\n");
    let reply = String::from_utf8_lossy(&runner.read()).into_owned();
    assert!(reply.contains("Script killed by user"), "{reply}");

    // A script that wrote cannot be killed.
    runner.send(&["EVAL", "redis.call('set','w','1') while true do end", "0"]);
    wait_for(|| admin.cmd(&["PING"]).starts_with("-BUSY"));
    assert!(admin.cmd(&["SCRIPT", "KILL"]).starts_with("-UNKILLABLE"));
    assert!(admin.cmd(&["SHUTDOWN"]).starts_with("-UNKILLABLE"));
    admin.send(&["SHUTDOWN", "NOSAVE"]);
    let mut d = d;
    wait_for(|| matches!(d.child.try_wait(), Ok(Some(_))));
}

#[test]
fn quick_scripts_run_again_and_a_replaced_function_stays_killable() {
    let d = damselfly(&["--proactor_threads", "1"]);
    let mut admin = Conn::open(d.port);
    admin.cmd(&["CONFIG", "SET", "busy-reply-threshold", "50"]);
    // A script that ended quickly runs on its caller's worker from then on.
    for n in 1..=5 {
        let reply = admin.cmd(&["EVAL", "return redis.call('incr', KEYS[1])", "1", "c"]);
        assert_eq!(reply, format!(":{n}\r\n"));
    }
    let fcall_lib = |body: &str| {
        format!("#!lua name=lib\nredis.register_function('f', function(KEYS) {body} end)")
    };
    admin.cmd(&[
        "FUNCTION",
        "LOAD",
        &fcall_lib("return redis.call('incr', KEYS[1])"),
    ]);
    for n in 6..=8 {
        assert_eq!(admin.cmd(&["FCALL", "f", "1", "c"]), format!(":{n}\r\n"));
    }
    // The same name now spins: the one worker must still hear FUNCTION KILL.
    admin.cmd(&[
        "FUNCTION",
        "LOAD",
        "REPLACE",
        &fcall_lib("while true do end"),
    ]);
    let mut runner = Conn::open(d.port);
    runner.send(&["FCALL", "f", "0"]);
    wait_for(|| admin.cmd(&["PING"]).starts_with("-BUSY"));
    assert_eq!(admin.cmd(&["FUNCTION", "KILL"]), "+OK\r\n");
    let reply = String::from_utf8_lossy(&runner.read()).into_owned();
    assert!(reply.contains("Script killed by user"), "{reply}");
    assert_eq!(admin.cmd(&["GET", "c"]), "$1\r\n8\r\n");

    // A quick read-only script that now loops leaves the worker for the
    // script thread, where SCRIPT KILL reaches it.
    let count = "local n = 0 for i = 1, tonumber(ARGV[1]) do n = n + 1 end return n";
    for _ in 0..3 {
        assert_eq!(admin.cmd(&["EVAL", count, "0", "10"]), ":10\r\n");
    }
    runner.send(&["EVAL", count, "0", "1e15"]);
    wait_for(|| admin.cmd(&["PING"]).starts_with("-BUSY"));
    assert_eq!(admin.cmd(&["SCRIPT", "KILL"]), "+OK\r\n");
    let reply = String::from_utf8_lossy(&runner.read()).into_owned();
    assert!(reply.starts_with("-ERR Script killed by user"), "{reply}");
    assert_eq!(admin.cmd(&["EVAL", count, "0", "10"]), ":10\r\n");
}

#[test]
fn debug_set_disable_deny_scripts_lets_scripts_call_noscript_commands() {
    let d = damselfly(&[]);
    let mut c = Conn::open(d.port);
    let script = "return type(redis.call('client', 'list'))";
    assert!(c
        .cmd(&["EVAL", script, "0"])
        .starts_with("-ERR This Redis command is not allowed from script"));
    assert_eq!(
        c.cmd(&["DEBUG", "SET-DISABLE-DENY-SCRIPTS", "1"]),
        "+OK\r\n"
    );
    assert_eq!(c.cmd(&["EVAL", script, "0"]), "$6\r\nstring\r\n");
    assert_eq!(
        c.cmd(&["DEBUG", "SET-DISABLE-DENY-SCRIPTS", "0"]),
        "+OK\r\n"
    );
    assert!(c
        .cmd(&["EVAL", script, "0"])
        .starts_with("-ERR This Redis command is not allowed from script"));
}

#[test]
fn runaway_function_is_killed_with_function_kill() {
    let d = damselfly(&[]);
    let mut admin = Conn::open(d.port);
    admin.cmd(&["CONFIG", "SET", "busy-reply-threshold", "50"]);
    let lib = "#!lua name=spin\nredis.register_function('spin', function() while true do end end)";
    admin.cmd(&["FUNCTION", "LOAD", lib]);
    let mut runner = Conn::open(d.port);
    runner.send(&["FCALL", "spin", "0"]);
    wait_for(|| admin.cmd(&["PING"]).starts_with("-BUSY"));
    assert_eq!(
        admin.cmd(&["PING"]),
        "-BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.\r\n"
    );
    assert!(admin.cmd(&["FUNCTION", "STATS"]).contains("spin"));
    assert!(admin.cmd(&["SCRIPT", "KILL"]).starts_with("-BUSY"));
    assert_eq!(admin.cmd(&["FUNCTION", "KILL"]), "+OK\r\n");
    let reply = String::from_utf8_lossy(&runner.read()).into_owned();
    assert!(reply.contains("Script killed by user"), "{reply}");
    assert_eq!(admin.cmd(&["PING"]), "+PONG\r\n");
}

/// Job-queue scripts in the style of BullMQ: every key is computed inside
/// the script from a prefix argument (none is declared), payloads are
/// cjson. Only whole-script atomicity keeps the invariants.
const ADD_JOB: &str = r#"
local p = ARGV[1]
local id = redis.call('incr', p .. ':id')
redis.call('hset', p .. ':job:' .. id, 'data', ARGV[2], 'state', 'waiting')
redis.call('lpush', p .. ':wait', id)
redis.call('zadd', p .. ':prio', tonumber(ARGV[3]), id)
redis.call('hincrby', p .. ':stats', 'added', 1)
return id
"#;

const ACTIVATE: &str = r#"
local p = ARGV[1]
local id = redis.call('rpop', p .. ':wait')
if not id then return false end
redis.call('zrem', p .. ':prio', id)
redis.call('hset', p .. ':job:' .. id, 'state', 'active')
redis.call('lpush', p .. ':active', id)
return id
"#;

const COMPLETE: &str = r#"
local p = ARGV[1]
local id = redis.call('rpop', p .. ':active')
if not id then return false end
local job = cjson.decode(redis.call('hget', p .. ':job:' .. id, 'data'))
redis.call('incrby', p .. ':sum', job.n)
redis.call('hset', p .. ':job:' .. id, 'state', 'completed')
redis.call('sadd', p .. ':completed', id)
redis.call('hincrby', p .. ':stats', 'completed', 1)
return id
"#;

const CHECK: &str = r#"
local p = ARGV[1]
local added = tonumber(redis.call('hget', p .. ':stats', 'added') or '0')
local seen = redis.call('llen', p .. ':wait') + redis.call('llen', p .. ':active')
  + redis.call('scard', p .. ':completed')
local prio = redis.call('zcard', p .. ':prio')
if added ~= seen or prio ~= redis.call('llen', p .. ':wait') then
  return redis.error_reply('broken ' .. added .. ' ' .. seen .. ' ' .. prio)
end
return added
"#;

/// The payload of a bulk-string reply.
fn bulk_payload(reply: &[u8]) -> Vec<u8> {
    let nl = reply.iter().position(|&c| c == b'\n').unwrap_or(0);
    let n: usize = String::from_utf8_lossy(&reply[1..nl.saturating_sub(1)])
        .parse()
        .unwrap_or(0);
    reply[nl + 1..nl + 1 + n].to_vec()
}

fn bulk_text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn job_queue_scripts_are_atomic_under_concurrency() {
    const PRODUCERS: usize = 6;
    const JOBS: usize = 40;
    const EXTERNAL: usize = 100;
    let d = damselfly(&["--proactor_threads", "4"]);
    let port = d.port;
    let mut c = Conn::open(port);
    let sha = |c: &mut Conn, s: &str| {
        let r = bulk_text(&c.raw(&["SCRIPT", "LOAD", s]));
        r.lines().nth(1).unwrap_or_default().to_string()
    };
    let (add, activate, complete, check) = (
        sha(&mut c, ADD_JOB),
        sha(&mut c, ACTIVATE),
        sha(&mut c, COMPLETE),
        sha(&mut c, CHECK),
    );
    let done = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for t in 0..PRODUCERS {
        let add = add.clone();
        threads.push(std::thread::spawn(move || {
            let mut c = Conn::open(port);
            for j in 0..JOBS {
                let n = (t * JOBS + j) as i64;
                let payload = format!("{{\"n\":{n},\"name\":\"job/{t}\"}}");
                let r =
                    bulk_text(&c.raw(&["EVALSHA", &add, "0", "bull:q", &payload, &n.to_string()]));
                assert!(r.starts_with(':'), "{r}");
            }
        }));
    }
    let total = PRODUCERS * JOBS;
    for _ in 0..3 {
        let (activate, complete) = (activate.clone(), complete.clone());
        threads.push(std::thread::spawn(move || {
            let mut c = Conn::open(port);
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            loop {
                c.raw(&["EVALSHA", &activate, "0", "bull:q"]);
                c.raw(&["EVALSHA", &complete, "0", "bull:q"]);
                let r = bulk_text(&c.raw(&["SCARD", "bull:q:completed"]));
                if r == format!(":{total}\r\n") || std::time::Instant::now() > deadline {
                    break;
                }
            }
        }));
    }
    // Other clients use the same keys with plain commands meanwhile.
    let external = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut c = Conn::open(port);
            for _ in 0..EXTERNAL {
                c.raw(&["INCRBY", "bull:q:sum", "1"]);
                c.raw(&["HINCRBY", "bull:q:stats", "external", "1"]);
            }
            while !done.load(Ordering::Relaxed) {
                let r = bulk_text(&c.raw(&["LRANGE", "bull:q:wait", "0", "-1"]));
                assert!(r.starts_with('*'), "{r}");
            }
        })
    };
    let checker = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut c = Conn::open(port);
            let mut checks = 0;
            while !done.load(Ordering::Relaxed) {
                let r = bulk_text(&c.raw(&["EVALSHA_RO", &check, "0", "bull:q"]));
                assert!(r.starts_with(':'), "invariant broken: {r}");
                // A transaction of plain reads sees the same invariant.
                c.raw(&["MULTI"]);
                for k in ["bull:q:wait", "bull:q:active"] {
                    c.raw(&["LLEN", k]);
                }
                c.raw(&["SCARD", "bull:q:completed"]);
                c.raw(&["HGET", "bull:q:stats", "added"]);
                let r = bulk_text(&c.raw(&["EXEC"]));
                let nums: Vec<i64> = r
                    .lines()
                    .filter_map(|l| l.strip_prefix(':').and_then(|n| n.parse().ok()))
                    .collect();
                let added: i64 = r
                    .lines()
                    .skip_while(|l| !l.starts_with('$'))
                    .nth(1)
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(0);
                assert_eq!(nums.iter().sum::<i64>(), added, "{r}");
                checks += 1;
            }
            checks
        })
    };
    for t in threads {
        t.join().expect("client thread");
    }
    done.store(true, Ordering::Relaxed);
    external.join().expect("external client");
    assert!(checker.join().expect("checker") > 0);
    let sum: i64 = (0..total as i64).sum::<i64>() + EXTERNAL as i64;
    assert_eq!(
        c.cmd(&["GET", "bull:q:sum"]),
        format!("${}\r\n{sum}\r\n", sum.to_string().len())
    );
    assert_eq!(
        c.cmd(&["SCARD", "bull:q:completed"]),
        format!(":{total}\r\n")
    );
    assert_eq!(c.cmd(&["LLEN", "bull:q:wait"]), ":0\r\n");
    assert_eq!(c.cmd(&["ZCARD", "bull:q:prio"]), ":0\r\n");
    assert_eq!(
        c.cmd(&["HMGET", "bull:q:stats", "added", "completed", "external"]),
        format!(
            "*3\r\n${}\r\n{total}\r\n${}\r\n{total}\r\n$3\r\n100\r\n",
            total.to_string().len(),
            total.to_string().len()
        )
    );
    for id in [1, total / 2, total] {
        let key = format!("bull:q:job:{id}");
        assert_eq!(c.cmd(&["HGET", &key, "state"]), "$9\r\ncompleted\r\n");
    }
}

#[test]
fn read_only_scripts_refuse_may_replicate_commands_as_redis() {
    diff(
        r##"
        EVAL_RO "return redis.call('publish','ch','msg')" 0
        EVAL "#!lua flags=no-writes\nreturn redis.call('publish','ch','msg')" 0
        EVAL "return redis.call('publish','ch','msg')" 0
        PFADD h a
        EVAL_RO "return redis.call('pfcount',KEYS[1])" 1 h
        "##,
    );
}

/// A message a script publishes to its own caller reaches it before the
/// script's reply (inside EXEC too), as Redis 7.0 writes it. Each message
/// is read as one reply, so the stream stays compared byte for byte.
#[test]
fn script_publish_to_its_own_client_precedes_the_reply() {
    diff(
        r#"
        ~HELLO 3
        SUBSCRIBE ch
        EVAL "redis.call('publish','ch','hi') return 1" 0
        PING
        EVAL "return redis.call('publish','ch','again')" 0
        PING
        MULTI
        EVAL "return redis.call('publish','ch','x')" 0
        PUBLISH ch y
        EXEC
        PING
        PING
        "#,
    );
}

/// Scripts with declared flags are refused up front when memory is full
/// unless they cannot write; redis.call's refusals and errors are counted
/// once in the error stats; redis.acl_check_cmd asks the caller's ACL.
#[test]
fn script_flags_under_oom_error_stats_and_acl_checks() {
    diff(
        r##"
        SET x 123
        CONFIG SET maxmemory 1
        EVAL "#!lua\nreturn 1" 0
        EVAL "#!lua flags=\nreturn 1" 0
        EVAL "#!lua flags=allow-oom\nredis.call('set','x',1) return 1" 1 x
        EVAL "#!lua flags=no-writes\nreturn redis.call('get','x')" 1 x
        EVAL_RO "return redis.call('get','x')" 1 x
        EVAL_RO "#!lua\nreturn 1" 0
        EVAL_RO "#!lua flags=allow-oom\nreturn 1" 0
        EVAL_RO "#!lua flags=no-writes\nreturn 1" 0
        FUNCTION LOAD "#!lua name=tlib\nredis.register_function('wf', function() return 1 end)"
        FCALL_RO wf 0
        FCALL wf 0
        CONFIG SET min-replicas-to-write 1
        EVAL_RO "#!lua\nreturn 1" 0
        EVAL "#!lua flags=allow-oom\nreturn 1" 0
        EVAL "#!lua flags=no-writes\nreturn 1" 0
        FCALL_RO wf 0
        CONFIG SET maxmemory 0
        EVAL_RO "#!lua\nreturn 1" 0
        EVAL_RO "#!lua flags=no-writes\nreturn 1" 0
        CONFIG SET min-replicas-to-write 0
        EVAL_RO "#!lua\nreturn 1" 0
        CONFIG SET maxmemory 1
        EVAL "#!lua flags=no-writes\nredis.call('set','x',1)" 1 x
        CONFIG RESETSTAT
        EVAL "return redis.call('set','x','y')" 1 x
        EVAL "local t = redis.pcall('set','x','y') return {t['err'], t['ignore_error_stats_update']}" 1 x
        EVAL "return redis.pcall('set','x','y')" 1 x
        INFO errorstats
        CONFIG SET maxmemory 0
        CONFIG RESETSTAT
        EVAL "return redis.call('select',99)" 0
        EVAL "local t = redis.pcall('select',99) return t['err']" 0
        EVAL_RO "return redis.call('set','x','y')" 1 x
        EVAL "return redis.call('nosuchcommand')" 0
        EVAL "return redis.error_reply('MY_ERR custom')" 0
        EVAL "return nil + 1" 0
        INFO errorstats
        CONFIG RESETSTAT
        MULTI
        EVAL "return redis.call('select',99)" 0
        EVAL "return redis.pcall('select',99)" 0
        EVAL "return redis.error_reply('MINE x')" 0
        EXEC
        INFO errorstats
        FCALL_RO wf 0
        ACL SETUSER bob on >123 +@scripting +set ~x*
        AUTH bob 123
        EVAL "return redis.acl_check_cmd('set','xx',1)" 1 xx
        EVAL "return redis.acl_check_cmd('hset','xx','f',1)" 1 xx
        EVAL "return redis.acl_check_cmd('set','yy',1)" 0
        EVAL "return redis.acl_check_cmd('invalid-cmd','arg')" 0
        "##,
    );
}

/// SCRIPT DEBUG NO and its errors as Redis replies them (YES and SYNC,
/// the Lua debugger, are refused: see README).
#[test]
fn script_debug_no_and_errors() {
    diff(
        r#"
        SCRIPT DEBUG NO
        SCRIPT DEBUG no
        SCRIPT DEBUG foo
        SCRIPT DEBUG
        SCRIPT DEBUG yes no
        EVAL "return redis.call('script','debug','no')" 0
        MULTI
        SCRIPT DEBUG NO
        EXEC
        "#,
    );
    let d = damselfly(&[]);
    let mut c = Conn::open(d.port);
    for mode in ["YES", "sync"] {
        assert!(c
            .cmd(&["SCRIPT", "DEBUG", mode])
            .starts_with("-ERR SCRIPT DEBUG YES/SYNC is not supported"));
    }
}

/// CLUSTER without cluster mode, and its `noscript` subcommands refused
/// from scripts and functions.
#[test]
fn cluster_commands_without_cluster_mode() {
    diff(
        r#"
        CLUSTER INFO
        CLUSTER HELP
        CLUSTER KEYSLOT a
        CLUSTER RESET HARD
        CLUSTER
        CLUSTER FOO
        CLUSTER INFO x
        EVAL "redis.call('cluster','reset','hard')" 0
        EVAL "return redis.call('cluster','info')" 0
        EVAL "return redis.pcall('cluster','reset')" 0
        COMMAND INFO cluster|reset
        "#,
    );
}
