//! A command's reply (RESP2 or RESP3 bytes, as our own commands write
//! them) converted to the Lua value `redis.call` returns, by Redis 7's
//! rules: status -> {ok=...}, error -> {err=...}, RESP2 nulls -> false,
//! RESP3 null -> nil, double -> {double=n}, map -> {map={...}},
//! set -> {set={k=true}}, big number -> {big_number=s},
//! verbatim -> {verbatim_string={format=f, string=s}}; attributes are
//! skipped.

use mlua::{Lua, Table, Value};

pub(crate) fn to_lua(lua: &Lua, bytes: &[u8]) -> mlua::Result<Value> {
    let mut pos = 0;
    parse(lua, bytes, &mut pos)
}

fn line<'a>(b: &'a [u8], pos: &mut usize) -> &'a [u8] {
    let rest = b.get(*pos..).unwrap_or_default();
    let end = rest
        .windows(2)
        .position(|w| w == b"\r\n")
        .unwrap_or(rest.len());
    *pos += end + 2;
    &rest[..end]
}

fn num(s: &[u8]) -> i64 {
    std::str::from_utf8(s)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn bulk<'a>(b: &'a [u8], pos: &mut usize, len: i64) -> &'a [u8] {
    let start = (*pos).min(b.len());
    let end = (start + len.max(0) as usize).min(b.len());
    *pos = end + 2;
    &b[start..end]
}

fn single(lua: &Lua, key: &str, v: Value) -> mlua::Result<Value> {
    let t = lua.create_table()?;
    t.raw_set(key, v)?;
    Ok(Value::Table(t))
}

fn parse(lua: &Lua, b: &[u8], pos: &mut usize) -> mlua::Result<Value> {
    let Some(&tag) = b.get(*pos) else {
        return Ok(Value::Nil);
    };
    *pos += 1;
    let head = line(b, pos);
    Ok(match tag {
        b'+' => single(lua, "ok", Value::String(lua.create_string(head)?))?,
        b'-' => single(lua, "err", Value::String(lua.create_string(head)?))?,
        b':' => Value::Integer(num(head)),
        b'$' => {
            let n = num(head);
            if n < 0 {
                Value::Boolean(false)
            } else {
                Value::String(lua.create_string(bulk(b, pos, n))?)
            }
        }
        // A push (only DEBUG PROTOCOL writes one to a script) reads as nil.
        b'>' => {
            for _ in 0..num(head).max(0) {
                parse(lua, b, pos)?;
            }
            Value::Nil
        }
        b'*' => {
            let n = num(head);
            if n < 0 {
                return Ok(Value::Boolean(false));
            }
            let t = lua.create_table_with_capacity(n as usize, 0)?;
            for i in 0..n {
                t.raw_set(i + 1, parse(lua, b, pos)?)?;
            }
            Value::Table(t)
        }
        b'_' => Value::Nil,
        b'#' => Value::Boolean(head == b"t"),
        b',' => {
            let s = String::from_utf8_lossy(head);
            let d = match s.as_ref() {
                "inf" => f64::INFINITY,
                "-inf" => f64::NEG_INFINITY,
                s => s.parse().unwrap_or(f64::NAN),
            };
            single(lua, "double", Value::Number(d))?
        }
        b'(' => single(lua, "big_number", Value::String(lua.create_string(head)?))?,
        b'=' => {
            let body = bulk(b, pos, num(head));
            let (fmt, text) = if body.len() >= 4 {
                (&body[..3], &body[4..])
            } else {
                (&b""[..], body)
            };
            let t = lua.create_table()?;
            t.raw_set("format", lua.create_string(fmt)?)?;
            t.raw_set("string", lua.create_string(text)?)?;
            single(lua, "verbatim_string", Value::Table(t))?
        }
        b'%' => {
            let n = num(head);
            let m: Table = lua.create_table()?;
            for _ in 0..n {
                let k = parse(lua, b, pos)?;
                let v = parse(lua, b, pos)?;
                if !k.is_nil() {
                    m.raw_set(k, v)?;
                }
            }
            single(lua, "map", Value::Table(m))?
        }
        b'~' => {
            let n = num(head);
            let m: Table = lua.create_table()?;
            for _ in 0..n {
                let k = parse(lua, b, pos)?;
                if !k.is_nil() {
                    m.raw_set(k, true)?;
                }
            }
            single(lua, "set", Value::Table(m))?
        }
        // Scripts are not shown attributes: the reply they describe is.
        b'|' => {
            for _ in 0..num(head).max(0) * 2 {
                parse(lua, b, pos)?;
            }
            parse(lua, b, pos)?
        }
        _ => Value::Nil,
    })
}
