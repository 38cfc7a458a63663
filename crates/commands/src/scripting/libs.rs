//! The libraries Redis gives scripts besides Lua's own: `bit` (LuaBitOp's
//! API), `cjson`, `cmsgpack` and `struct`, written here in Rust with the
//! behaviour scripts rely on.

use mlua::{Lua, MultiValue, Table, Value, Variadic};

pub(crate) fn register(lua: &Lua, g: &Table) -> mlua::Result<()> {
    g.set("bit", bit(lua)?)?;
    g.set("cjson", cjson(lua)?)?;
    g.set("cmsgpack", cmsgpack(lua)?)?;
    g.set("struct", structlib(lua)?)?;
    Ok(())
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Integer(n) => Some(*n as f64),
        Value::Number(n) => Some(*n),
        Value::String(s) => s.to_str().ok()?.trim().parse().ok(),
        _ => None,
    }
}

/// LuaBitOp's conversion: round to nearest and wrap modulo 2^32.
fn tobit(v: &Value) -> mlua::Result<i32> {
    let n = number(v).ok_or_else(|| {
        mlua::Error::RuntimeError("bad argument to 'bit' function (number expected)".into())
    })?;
    let r = n.round_ties_even().rem_euclid(4_294_967_296.0);
    Ok(r as u64 as u32 as i32)
}

fn bit(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set("tobit", lua.create_function(|_, v: Value| tobit(&v))?)?;
    t.set("bnot", lua.create_function(|_, v: Value| Ok(!tobit(&v)?))?)?;
    t.set(
        "bswap",
        lua.create_function(|_, v: Value| Ok(tobit(&v)?.swap_bytes()))?,
    )?;
    type Fold = fn(i32, i32) -> i32;
    let folds: [(&str, Fold); 3] = [
        ("band", |a, b| a & b),
        ("bor", |a, b| a | b),
        ("bxor", |a, b| a ^ b),
    ];
    for (name, f) in folds {
        t.set(
            name,
            lua.create_function(move |_, args: Variadic<Value>| {
                let mut it = args.iter();
                let mut acc = tobit(it.next().unwrap_or(&Value::Nil))?;
                for v in it {
                    acc = f(acc, tobit(v)?);
                }
                Ok(acc)
            })?,
        )?;
    }
    type Shift = fn(i32, u32) -> i32;
    let shifts: [(&str, Shift); 5] = [
        ("lshift", |a, n| ((a as u32) << n) as i32),
        ("rshift", |a, n| ((a as u32) >> n) as i32),
        ("arshift", |a, n| a >> n),
        ("rol", |a, n| (a as u32).rotate_left(n) as i32),
        ("ror", |a, n| (a as u32).rotate_right(n) as i32),
    ];
    for (name, f) in shifts {
        t.set(
            name,
            lua.create_function(move |_, (a, n): (Value, Value)| {
                Ok(f(tobit(&a)?, (tobit(&n)? & 31) as u32))
            })?,
        )?;
    }
    t.set(
        "tohex",
        lua.create_function(|_, (a, n): (Value, Option<Value>)| {
            let x = tobit(&a)? as u32;
            let mut n = match n {
                Some(v) => tobit(&v)?,
                None => 8,
            };
            let upper = n < 0;
            if upper {
                n = -n;
            }
            let n = n.clamp(0, 8) as usize;
            let s = if upper {
                format!("{x:08X}")
            } else {
                format!("{x:08x}")
            };
            Ok(s[8 - n..].to_string())
        })?,
    )?;
    Ok(t)
}

// ---- cjson ----

/// `%.14g`, Lua's own number format (what cjson uses by default).
pub(crate) fn fmt_g14(n: f64) -> String {
    if n.is_nan() {
        return if n.is_sign_negative() { "-nan" } else { "nan" }.into();
    }
    if n.is_infinite() {
        return if n > 0.0 { "inf" } else { "-inf" }.into();
    }
    if n == 0.0 {
        return if n.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let sci = format!("{n:.13e}");
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let trim = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    if !(-4..14).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mant), exp.abs())
    } else {
        let decimals = (13 - exp).max(0) as usize;
        trim(&format!("{n:.decimals$}"))
    }
}

fn json_err(msg: String) -> mlua::Error {
    mlua::Error::RuntimeError(msg)
}

/// cjson's encoder settings.
#[derive(Clone, Copy)]
struct Enc {
    max_depth: usize,
    /// `encode_invalid_numbers(true)`: NaN and infinities are written.
    invalid_numbers: bool,
}

fn encode_value(
    lua: &Lua,
    v: &Value,
    out: &mut Vec<u8>,
    depth: usize,
    cfg: Enc,
) -> mlua::Result<()> {
    match v {
        Value::Nil => out.extend_from_slice(b"null"),
        Value::LightUserData(p) if p.0.is_null() => out.extend_from_slice(b"null"),
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Integer(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::Number(n) => {
            if (n.is_nan() || n.is_infinite()) && !cfg.invalid_numbers {
                return Err(json_err(
                    "Cannot serialise number: must not be NaN or Inf".into(),
                ));
            }
            out.extend_from_slice(fmt_g14(*n).as_bytes());
        }
        Value::String(s) => encode_string(&s.as_bytes(), out),
        Value::Table(t) => {
            if depth >= cfg.max_depth {
                return Err(json_err(format!(
                    "Cannot serialise, excessive nesting ({})",
                    depth + 1
                )));
            }
            encode_table(lua, t, out, depth + 1, cfg)?
        }
        other => {
            return Err(json_err(format!(
                "Cannot serialise {}: type not supported",
                other.type_name()
            )))
        }
    }
    Ok(())
}

fn encode_string(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &c in s {
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            8 => out.extend_from_slice(b"\\b"),
            12 => out.extend_from_slice(b"\\f"),
            c if c < 32 || c == 127 => out.extend_from_slice(format!("\\u{c:04x}").as_bytes()),
            c => out.push(c),
        }
    }
    out.push(b'"');
}

fn encode_table(
    lua: &Lua,
    t: &Table,
    out: &mut Vec<u8>,
    depth: usize,
    cfg: Enc,
) -> mlua::Result<()> {
    // An array: only positive integer keys, not excessively sparse. The
    // table is walked twice rather than copied: mlua keeps a reference
    // slot per live value, and tables may be huge.
    let mut max = 0usize;
    let mut count = 0usize;
    let mut array = true;
    for pair in t.pairs::<Value, Value>() {
        let (k, _) = pair?;
        count += 1;
        let idx = match k {
            Value::Integer(n) if n >= 1 => Some(n as usize),
            Value::Number(n) if n >= 1.0 && n.fract() == 0.0 => Some(n as usize),
            _ => None,
        };
        match idx {
            Some(i) => max = max.max(i),
            None => {
                array = false;
                break;
            }
        }
    }
    if array && count > 0 {
        if max > 10 && max > count * 2 {
            return Err(json_err(
                "Cannot serialise table: excessively sparse array".into(),
            ));
        }
        out.push(b'[');
        for i in 1..=max {
            if i > 1 {
                out.push(b',');
            }
            encode_value(lua, &t.raw_get::<Value>(i)?, out, depth, cfg)?;
        }
        out.push(b']');
        return Ok(());
    }
    out.push(b'{');
    for (i, pair) in t.pairs::<Value, Value>().enumerate() {
        let (k, v) = pair?;
        if i > 0 {
            out.push(b',');
        }
        match &k {
            Value::String(s) => encode_string(&s.as_bytes(), out),
            Value::Integer(_) | Value::Number(_) => {
                let s = lua.coerce_string(k.clone())?.map(|s| s.as_bytes().to_vec());
                encode_string(&s.unwrap_or_default(), out);
            }
            _ => {
                return Err(json_err(
                    "Cannot serialise table: table key must be a number or string".into(),
                ))
            }
        }
        out.push(b':');
        encode_value(lua, &v, out, depth, cfg)?;
    }
    out.push(b'}');
    Ok(())
}

struct Json<'a> {
    s: &'a [u8],
    pos: usize,
    max: usize,
}

impl Json<'_> {
    fn ws(&mut self) {
        while self
            .s
            .get(self.pos)
            .is_some_and(|c| c.is_ascii_whitespace())
        {
            self.pos += 1;
        }
    }

    fn err<T>(&self, what: &str) -> mlua::Result<T> {
        Err(json_err(format!(
            "Expected {what} but found invalid token at character {}",
            self.pos + 1
        )))
    }

    /// Enters an object or array: its nesting depth, within the limit.
    fn nest(&self, depth: usize) -> mlua::Result<usize> {
        let depth = depth + 1;
        if depth > self.max {
            return Err(json_err(format!(
                "Found too many nested data structures ({depth}) at character {}",
                self.pos + 1
            )));
        }
        Ok(depth)
    }

    fn value(&mut self, lua: &Lua, depth: usize) -> mlua::Result<Value> {
        self.ws();
        let Some(&c) = self.s.get(self.pos) else {
            return self.err("value");
        };
        match c {
            b'{' => {
                let depth = self.nest(depth)?;
                self.pos += 1;
                let t = lua.create_table()?;
                self.ws();
                if self.s.get(self.pos) == Some(&b'}') {
                    self.pos += 1;
                    return Ok(Value::Table(t));
                }
                loop {
                    self.ws();
                    if self.s.get(self.pos) != Some(&b'"') {
                        return self.err("object key string");
                    }
                    let k = self.string(lua)?;
                    self.ws();
                    if self.s.get(self.pos) != Some(&b':') {
                        return self.err("colon");
                    }
                    self.pos += 1;
                    let v = self.value(lua, depth)?;
                    t.raw_set(k, v)?;
                    self.ws();
                    match self.s.get(self.pos) {
                        Some(b',') => self.pos += 1,
                        Some(b'}') => {
                            self.pos += 1;
                            return Ok(Value::Table(t));
                        }
                        _ => return self.err("comma or object end"),
                    }
                }
            }
            b'[' => {
                let depth = self.nest(depth)?;
                self.pos += 1;
                let t = lua.create_table()?;
                self.ws();
                if self.s.get(self.pos) == Some(&b']') {
                    self.pos += 1;
                    return Ok(Value::Table(t));
                }
                let mut i = 1;
                loop {
                    let v = self.value(lua, depth)?;
                    t.raw_set(i, v)?;
                    i += 1;
                    self.ws();
                    match self.s.get(self.pos) {
                        Some(b',') => self.pos += 1,
                        Some(b']') => {
                            self.pos += 1;
                            return Ok(Value::Table(t));
                        }
                        _ => return self.err("comma or array end"),
                    }
                }
            }
            b'"' => Ok(Value::String(self.string(lua)?)),
            b't' if self.s[self.pos..].starts_with(b"true") => {
                self.pos += 4;
                Ok(Value::Boolean(true))
            }
            b'f' if self.s[self.pos..].starts_with(b"false") => {
                self.pos += 5;
                Ok(Value::Boolean(false))
            }
            b'n' if self.s[self.pos..].starts_with(b"null") => {
                self.pos += 4;
                Ok(Value::LightUserData(mlua::LightUserData(
                    std::ptr::null_mut(),
                )))
            }
            b'-' | b'0'..=b'9' => {
                let start = self.pos;
                while self
                    .s
                    .get(self.pos)
                    .is_some_and(|c| matches!(c, b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'))
                {
                    self.pos += 1;
                }
                let text = std::str::from_utf8(&self.s[start..self.pos]).unwrap_or("");
                match text.parse::<f64>() {
                    Ok(n) => Ok(Value::Number(n)),
                    Err(_) => {
                        self.pos = start;
                        self.err("value")
                    }
                }
            }
            _ => self.err("value"),
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let h = self.s.get(self.pos..self.pos + 4)?;
        let v = u32::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()?;
        self.pos += 4;
        Some(v)
    }

    fn string(&mut self, lua: &Lua) -> mlua::Result<mlua::String> {
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            let Some(&c) = self.s.get(self.pos) else {
                return self.err("string end");
            };
            self.pos += 1;
            match c {
                b'"' => return lua.create_string(&out),
                b'\\' => {
                    let Some(&e) = self.s.get(self.pos) else {
                        return self.err("escape");
                    };
                    self.pos += 1;
                    match e {
                        b'"' | b'\\' | b'/' => out.push(e),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            let Some(mut cp) = self.hex4() else {
                                return self.err("unicode escape");
                            };
                            if (0xD800..0xDC00).contains(&cp)
                                && self.s.get(self.pos..self.pos + 2) == Some(b"\\u")
                            {
                                self.pos += 2;
                                let lo = self.hex4().unwrap_or(0);
                                cp = 0x10000
                                    + ((cp - 0xD800) << 10)
                                    + (lo.wrapping_sub(0xDC00) & 0x3ff);
                            }
                            let ch = char::from_u32(cp).unwrap_or('\u{fffd}');
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                        _ => return self.err("escape"),
                    }
                }
                c => out.push(c),
            }
        }
    }
}

fn cjson(lua: &Lua) -> mlua::Result<Table> {
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    use std::sync::Arc;
    let t = lua.create_table()?;
    let enc_max = Arc::new(AtomicUsize::new(1000));
    let dec_max = Arc::new(AtomicUsize::new(1000));
    let invalid = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let m = enc_max.clone();
    let inv = invalid.clone();
    t.set(
        "encode",
        lua.create_function(move |lua, args: MultiValue| {
            if args.len() != 1 {
                return Err(json_err(
                    "bad argument #1 to 'encode' (expected 1 argument)".into(),
                ));
            }
            let mut out = Vec::new();
            let cfg = Enc {
                max_depth: m.load(Relaxed),
                invalid_numbers: inv.load(Relaxed),
            };
            encode_value(lua, &args[0], &mut out, 0, cfg)?;
            lua.create_string(&out)
        })?,
    )?;
    let m = dec_max.clone();
    t.set(
        "decode",
        lua.create_function(move |lua, s: mlua::String| {
            let bytes = s.as_bytes();
            let mut p = Json {
                s: &bytes,
                pos: 0,
                max: m.load(Relaxed),
            };
            let v = p.value(lua, 0)?;
            p.ws();
            if p.pos < bytes.len() {
                return p.err("the end");
            }
            Ok(v)
        })?,
    )?;
    t.set(
        "null",
        Value::LightUserData(mlua::LightUserData(std::ptr::null_mut())),
    )?;
    for (name, limit) in [("encode_max_depth", enc_max), ("decode_max_depth", dec_max)] {
        t.set(
            name,
            lua.create_function(move |_, n: Option<f64>| {
                if let Some(n) = n {
                    if !(1.0..=2_147_483_647.0).contains(&n) {
                        return Err(json_err(format!(
                            "bad argument #1 to '{name}' (expected integer between 1 and 2147483647)"
                        )));
                    }
                    limit.store(n as usize, Relaxed);
                }
                Ok(limit.load(Relaxed))
            })?,
        )?;
    }
    t.set(
        "encode_invalid_numbers",
        lua.create_function(move |_, on: Option<Value>| {
            if let Some(v) = on {
                invalid.store(matches!(v, Value::Boolean(true)), Relaxed);
            }
            Ok(invalid.load(Relaxed))
        })?,
    )?;
    // Accepted for compatibility; this encoder has no such knobs.
    for name in [
        "encode_keep_buffer",
        "encode_number_precision",
        "encode_sparse_array",
        "decode_invalid_numbers",
    ] {
        t.set(name, lua.create_function(|_, args: MultiValue| Ok(args))?)?;
    }
    Ok(t)
}

// ---- cmsgpack ----

fn mp_encode(v: &Value, out: &mut Vec<u8>, depth: usize) -> mlua::Result<()> {
    match v {
        Value::Nil => out.push(0xc0),
        Value::LightUserData(_) => out.push(0xc0),
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(n) => mp_int(*n, out),
        Value::Number(n) => {
            if n.fract() == 0.0 && n.abs() < 9.2e18 {
                mp_int(*n as i64, out);
            } else if (*n as f32) as f64 == *n {
                out.push(0xca);
                out.extend_from_slice(&(*n as f32).to_be_bytes());
            } else {
                out.push(0xcb);
                out.extend_from_slice(&n.to_be_bytes());
            }
        }
        Value::String(s) => {
            let b = s.as_bytes();
            let n = b.len();
            if n < 32 {
                out.push(0xa0 | n as u8);
            } else if n < 256 {
                out.extend_from_slice(&[0xd9, n as u8]);
            } else if n < 65536 {
                out.push(0xda);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            } else {
                out.push(0xdb);
                out.extend_from_slice(&(n as u32).to_be_bytes());
            }
            out.extend_from_slice(&b);
        }
        Value::Table(t) if depth < 16 => {
            // Walked, not copied (see encode_table).
            let mut count = 0;
            for pair in t.pairs::<Value, Value>() {
                pair?;
                count += 1;
            }
            let len = t.raw_len();
            if len > 0 && len == count {
                mp_header(len, 0x90, 0xdc, out);
                for i in 1..=len {
                    mp_encode(&t.raw_get::<Value>(i)?, out, depth + 1)?;
                }
            } else {
                mp_header(count, 0x80, 0xde, out);
                for pair in t.pairs::<Value, Value>() {
                    let (k, v) = pair?;
                    mp_encode(&k, out, depth + 1)?;
                    mp_encode(&v, out, depth + 1)?;
                }
            }
        }
        _ => out.push(0xc0),
    }
    Ok(())
}

fn mp_header(n: usize, fix: u8, big: u8, out: &mut Vec<u8>) {
    if n < 16 {
        out.push(fix | n as u8);
    } else if n < 65536 {
        out.push(big);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(big + 1);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

fn mp_int(n: i64, out: &mut Vec<u8>) {
    if n >= 0 {
        if n < 128 {
            out.push(n as u8);
        } else if n < 256 {
            out.extend_from_slice(&[0xcc, n as u8]);
        } else if n < 65536 {
            out.push(0xcd);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        } else if n < 1 << 32 {
            out.push(0xce);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    } else if n >= -32 {
        out.push(n as i8 as u8);
    } else if n >= -128 {
        out.extend_from_slice(&[0xd0, n as i8 as u8]);
    } else if n >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(n as i16).to_be_bytes());
    } else if n >= -(1 << 31) {
        out.push(0xd2);
        out.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

struct Mp<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Mp<'_> {
    fn take(&mut self, n: usize) -> mlua::Result<&[u8]> {
        let s = self
            .b
            .get(self.pos..self.pos + n)
            .ok_or_else(|| json_err("Missing bytes in input.".into()))?;
        self.pos += n;
        Ok(s)
    }

    fn uint(&mut self, n: usize) -> mlua::Result<u64> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |a, &b| a << 8 | u64::from(b)))
    }

    fn value(&mut self, lua: &Lua, depth: usize) -> mlua::Result<Value> {
        if depth > 1000 {
            return Err(json_err("Too deep.".into()));
        }
        let c = self.take(1)?[0];
        let v = match c {
            0x00..=0x7f => Value::Integer(i64::from(c)),
            0xe0..=0xff => Value::Integer(i64::from(c as i8)),
            0xc0 => Value::Nil,
            0xc2 => Value::Boolean(false),
            0xc3 => Value::Boolean(true),
            0xcc => Value::Integer(self.uint(1)? as i64),
            0xcd => Value::Integer(self.uint(2)? as i64),
            0xce => Value::Integer(self.uint(4)? as i64),
            0xcf => Value::Number(self.uint(8)? as f64),
            0xd0 => Value::Integer(i64::from(self.uint(1)? as u8 as i8)),
            0xd1 => Value::Integer(i64::from(self.uint(2)? as u16 as i16)),
            0xd2 => Value::Integer(i64::from(self.uint(4)? as u32 as i32)),
            0xd3 => Value::Number(self.uint(8)? as i64 as f64),
            0xca => Value::Number(f64::from(f32::from_bits(self.uint(4)? as u32))),
            0xcb => Value::Number(f64::from_bits(self.uint(8)?)),
            0xa0..=0xbf => self.str(lua, usize::from(c & 0x1f))?,
            0xd9 | 0xc4 => {
                let n = self.uint(1)? as usize;
                self.str(lua, n)?
            }
            0xda | 0xc5 => {
                let n = self.uint(2)? as usize;
                self.str(lua, n)?
            }
            0xdb | 0xc6 => {
                let n = self.uint(4)? as usize;
                self.str(lua, n)?
            }
            0x90..=0x9f => self.array(lua, usize::from(c & 0x0f), depth)?,
            0xdc => {
                let n = self.uint(2)? as usize;
                self.array(lua, n, depth)?
            }
            0xdd => {
                let n = self.uint(4)? as usize;
                self.array(lua, n, depth)?
            }
            0x80..=0x8f => self.map(lua, usize::from(c & 0x0f), depth)?,
            0xde => {
                let n = self.uint(2)? as usize;
                self.map(lua, n, depth)?
            }
            0xdf => {
                let n = self.uint(4)? as usize;
                self.map(lua, n, depth)?
            }
            _ => return Err(json_err("Bad data format in input.".into())),
        };
        Ok(v)
    }

    fn str(&mut self, lua: &Lua, n: usize) -> mlua::Result<Value> {
        let s = self.take(n)?.to_vec();
        Ok(Value::String(lua.create_string(&s)?))
    }

    fn array(&mut self, lua: &Lua, n: usize, depth: usize) -> mlua::Result<Value> {
        let t = lua.create_table()?;
        for i in 0..n {
            t.raw_set(i + 1, self.value(lua, depth + 1)?)?;
        }
        Ok(Value::Table(t))
    }

    fn map(&mut self, lua: &Lua, n: usize, depth: usize) -> mlua::Result<Value> {
        let t = lua.create_table()?;
        for _ in 0..n {
            let k = self.value(lua, depth + 1)?;
            let v = self.value(lua, depth + 1)?;
            if !k.is_nil() {
                t.raw_set(k, v)?;
            }
        }
        Ok(Value::Table(t))
    }
}

fn cmsgpack(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set(
        "pack",
        lua.create_function(|lua, args: MultiValue| {
            if args.is_empty() {
                return Err(json_err("MessagePack pack needs input.".into()));
            }
            let mut out = Vec::new();
            for v in args.iter() {
                mp_encode(v, &mut out, 0)?;
            }
            lua.create_string(&out)
        })?,
    )?;
    t.set(
        "unpack",
        lua.create_function(|lua, s: mlua::String| {
            let b = s.as_bytes();
            let mut p = Mp { b: &b, pos: 0 };
            let mut out = Vec::new();
            while p.pos < b.len() {
                out.push(p.value(lua, 0)?);
            }
            Ok(MultiValue::from_iter(out))
        })?,
    )?;
    // unpack_limit(data, limit, offset): up to `limit` objects (0: all)
    // from byte `offset`, after the offset to continue from (-1 at the end).
    let limited = |lua: &Lua, s: mlua::String, limit: usize, offset: i64| {
        let b = s.as_bytes();
        if offset < 0 || offset as usize > b.len() {
            return Err(json_err("Start offset greater than input length.".into()));
        }
        let mut p = Mp {
            b: &b,
            pos: offset as usize,
        };
        let mut vals = Vec::new();
        while p.pos < b.len() && (limit == 0 || vals.len() < limit) {
            vals.push(p.value(lua, 0)?);
        }
        let next = if p.pos >= b.len() { -1 } else { p.pos as i64 };
        let mut out = vec![Value::Integer(next)];
        out.extend(vals);
        Ok(MultiValue::from_iter(out))
    };
    t.set(
        "unpack_one",
        lua.create_function(move |lua, (s, offset): (mlua::String, Option<i64>)| {
            limited(lua, s, 1, offset.unwrap_or(0))
        })?,
    )?;
    t.set(
        "unpack_limit",
        lua.create_function(
            move |lua, (s, limit, offset): (mlua::String, Option<i64>, Option<i64>)| {
                limited(
                    lua,
                    s,
                    limit.unwrap_or(0).max(0) as usize,
                    offset.unwrap_or(0),
                )
            },
        )?,
    )?;
    Ok(t)
}

// ---- struct ----

/// The width of an integer option: b/B 1, h/H 2, l/L 8, i/I its size
/// (default 4), at most 8.
fn int_size(c: u8, size: Option<usize>) -> usize {
    match c {
        b'b' | b'B' => 1,
        b'h' | b'H' => 2,
        b'l' | b'L' => 8,
        _ => size.unwrap_or(4).clamp(1, 8),
    }
}

/// A struct format string as (option, optional size) pairs: `i4` -> (b'i', Some(4)).
fn format_items(f: &[u8]) -> Vec<(u8, Option<usize>)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < f.len() {
        let c = f[i];
        i += 1;
        let start = i;
        while i < f.len() && f[i].is_ascii_digit() {
            i += 1;
        }
        let size = std::str::from_utf8(&f[start..i])
            .ok()
            .and_then(|d| d.parse().ok());
        out.push((c, size));
    }
    out
}

fn structlib(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set(
        "pack",
        lua.create_function(|_, (fmt, args): (mlua::String, Variadic<Value>)| {
            let mut out = Vec::new();
            let mut little = true;
            let mut it = args.iter();
            let f = fmt.as_bytes();
            for (c, size) in format_items(&f) {
                match c {
                    b'<' => little = true,
                    b'>' => little = false,
                    b'!' | b' ' => {}
                    b'b' | b'B' | b'h' | b'H' | b'i' | b'I' | b'l' | b'L' => {
                        let n = int_size(c, size);
                        let v = number(it.next().unwrap_or(&Value::Nil)).unwrap_or(0.0) as i64;
                        let bytes = v.to_le_bytes();
                        let mut part = bytes[..n].to_vec();
                        if !little {
                            part.reverse();
                        }
                        out.extend_from_slice(&part);
                    }
                    b'd' => {
                        let v = number(it.next().unwrap_or(&Value::Nil)).unwrap_or(0.0);
                        let b = if little {
                            v.to_le_bytes()
                        } else {
                            v.to_be_bytes()
                        };
                        out.extend_from_slice(&b);
                    }
                    b'f' => {
                        let v = number(it.next().unwrap_or(&Value::Nil)).unwrap_or(0.0) as f32;
                        let b = if little {
                            v.to_le_bytes()
                        } else {
                            v.to_be_bytes()
                        };
                        out.extend_from_slice(&b);
                    }
                    b's' | b'c' => {
                        let v = match it.next() {
                            Some(Value::String(s)) => s.as_bytes().to_vec(),
                            _ => Vec::new(),
                        };
                        match (c, size) {
                            (b'c', Some(n)) => {
                                let mut v = v;
                                v.resize(n, 0);
                                out.extend_from_slice(&v);
                            }
                            (b'c', None) => out.extend_from_slice(&v),
                            _ => {
                                out.extend_from_slice(&v);
                                out.push(0);
                            }
                        }
                    }
                    _ => return Err(json_err(format!("invalid format option '{}'", c as char))),
                }
            }
            Ok(mlua::BString::from(out))
        })?,
    )?;
    t.set(
        "unpack",
        lua.create_function(
            |lua, (fmt, data, init): (mlua::String, mlua::String, Option<usize>)| {
                let f = fmt.as_bytes();
                let d = data.as_bytes();
                let mut pos = init.unwrap_or(1).saturating_sub(1);
                let mut little = true;
                let mut out = Vec::new();
                let short = || json_err("data string too short".into());
                for (c, size) in format_items(&f) {
                    match c {
                        b'<' => little = true,
                        b'>' => little = false,
                        b'!' | b' ' => {}
                        b'b' | b'B' | b'h' | b'H' | b'i' | b'I' | b'l' | b'L' => {
                            let n = int_size(c, size);
                            let mut part = d.get(pos..pos + n).ok_or_else(short)?.to_vec();
                            pos += n;
                            if !little {
                                part.reverse();
                            }
                            let signed = c.is_ascii_lowercase();
                            let mut buf = [0u8; 8];
                            buf[..n].copy_from_slice(&part);
                            if signed && n < 8 && part[n - 1] & 0x80 != 0 {
                                for b in buf.iter_mut().skip(n) {
                                    *b = 0xff;
                                }
                            }
                            let v = i64::from_le_bytes(buf);
                            out.push(Value::Number(if signed {
                                v as f64
                            } else {
                                v as u64 as f64
                            }));
                        }
                        b'd' => {
                            let mut b = [0u8; 8];
                            b.copy_from_slice(d.get(pos..pos + 8).ok_or_else(short)?);
                            pos += 8;
                            let v = if little {
                                f64::from_le_bytes(b)
                            } else {
                                f64::from_be_bytes(b)
                            };
                            out.push(Value::Number(v));
                        }
                        b'f' => {
                            let mut b = [0u8; 4];
                            b.copy_from_slice(d.get(pos..pos + 4).ok_or_else(short)?);
                            pos += 4;
                            let v = if little {
                                f32::from_le_bytes(b)
                            } else {
                                f32::from_be_bytes(b)
                            };
                            out.push(Value::Number(f64::from(v)));
                        }
                        b'c' => {
                            let n = size.unwrap_or(0);
                            let s = d.get(pos..pos + n).ok_or_else(short)?;
                            pos += n;
                            out.push(Value::String(lua.create_string(s)?));
                        }
                        b's' => {
                            let rest = d.get(pos..).unwrap_or_default();
                            let end = rest.iter().position(|&b| b == 0).ok_or_else(short)?;
                            out.push(Value::String(lua.create_string(&rest[..end])?));
                            pos += end + 1;
                        }
                        _ => {
                            return Err(json_err(format!("invalid format option '{}'", c as char)))
                        }
                    }
                }
                out.push(Value::Number((pos + 1) as f64));
                Ok(MultiValue::from_iter(out))
            },
        )?,
    )?;
    Ok(t)
}
