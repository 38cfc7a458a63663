//! RDB files: "REDIS" and a 4-digit version, AUX fields, then per DB a
//! SELECTDB (and RESIZEDB hint) and its keys, each optionally preceded by
//! its expiry; EOF and the CRC-64 of everything before it.

use crate::codec::{self, Limits, Reader, RDB_VERSION, RDB_VERSION_MAX};
use crate::{Error, Result, CRC64};
use damselfly_storage::{Entry, Value};
use std::io::Write;

/// Opcodes between keys.
pub mod op {
    pub const FUNCTION2: u8 = 0xF5;
    pub const FUNCTION_PRE_GA: u8 = 0xF6;
    pub const MODULE_AUX: u8 = 0xF7;
    pub const IDLE: u8 = 0xF8;
    pub const FREQ: u8 = 0xF9;
    pub const AUX: u8 = 0xFA;
    pub const RESIZEDB: u8 = 0xFB;
    pub const EXPIRETIME_MS: u8 = 0xFC;
    pub const EXPIRETIME: u8 = 0xFD;
    pub const SELECTDB: u8 = 0xFE;
    pub const EOF: u8 = 0xFF;
}

/// Streams an RDB file into `W`, keeping the running checksum. Values are
/// encoded into one reused buffer that is flushed once it passes 64 KiB,
/// so writing takes memory for one value, not for the file.
pub struct FileWriter<W: Write> {
    w: W,
    crc: crc::Digest<'static, u64>,
    buf: Vec<u8>,
    limits: Limits,
}

const FLUSH_AT: usize = 64 * 1024;

impl<W: Write> FileWriter<W> {
    /// Starts a file: magic, version and the AUX fields given.
    pub fn new(w: W, limits: Limits, aux: &[(&str, String)]) -> std::io::Result<Self> {
        let mut fw = FileWriter {
            w,
            crc: CRC64.digest(),
            buf: Vec::with_capacity(FLUSH_AT),
            limits,
        };
        fw.buf
            .extend_from_slice(format!("REDIS{RDB_VERSION:04}").as_bytes());
        for (k, v) in aux {
            fw.buf.push(op::AUX);
            codec::write_string(&mut fw.buf, k.as_bytes());
            codec::write_string(&mut fw.buf, v.as_bytes());
        }
        fw.flush_if_full()?;
        Ok(fw)
    }

    fn flush_if_full(&mut self) -> std::io::Result<()> {
        if self.buf.len() >= FLUSH_AT {
            self.flush_buf()?;
        }
        Ok(())
    }

    fn flush_buf(&mut self) -> std::io::Result<()> {
        self.crc.update(&self.buf);
        self.w.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }

    /// A function library's source (FUNCTION2), as Redis 7.0 writes each
    /// library after the AUX fields, before the first DB.
    pub fn function(&mut self, code: &[u8]) -> std::io::Result<()> {
        self.buf.push(op::FUNCTION2);
        codec::write_string(&mut self.buf, code);
        self.flush_if_full()
    }

    /// SELECTDB, with a RESIZEDB hint when the sizes are known.
    pub fn select_db(&mut self, db: usize, sizes: Option<(u64, u64)>) -> std::io::Result<()> {
        self.buf.push(op::SELECTDB);
        codec::write_len(&mut self.buf, db as u64);
        if let Some((keys, expires)) = sizes {
            self.buf.push(op::RESIZEDB);
            codec::write_len(&mut self.buf, keys);
            codec::write_len(&mut self.buf, expires);
        }
        self.flush_if_full()
    }

    /// One key, its expiry and its value.
    pub fn entry(&mut self, e: &Entry) -> std::io::Result<()> {
        if e.expire_at() != 0 {
            self.buf.push(op::EXPIRETIME_MS);
            self.buf.extend_from_slice(&e.expire_at().to_le_bytes());
        }
        self.buf.push(codec::value_type(e.value()));
        codec::write_string(&mut self.buf, e.key());
        codec::write_object(&mut self.buf, e.value(), &self.limits);
        self.flush_if_full()
    }

    /// EOF and the checksum; returns the inner writer (to sync it).
    pub fn finish(mut self) -> std::io::Result<W> {
        self.buf.push(op::EOF);
        self.flush_buf()?;
        let crc = self.crc.finalize();
        self.w.write_all(&crc.to_le_bytes())?;
        self.w.flush()?;
        Ok(self.w)
    }
}

/// One key as a file holds it.
pub struct Loaded<'a> {
    pub db: usize,
    pub key: &'a [u8],
    pub value: Value,
    /// Unix milliseconds, 0 for none.
    pub expire_at: u64,
    /// Seconds idle when saved (LRU info), if the file says.
    pub idle: Option<u64>,
    /// LFU counter when saved, if the file says.
    pub freq: Option<u8>,
}

/// What a load found besides keys.
#[derive(Debug, Default)]
pub struct LoadStats {
    pub version: u32,
    pub keys_loaded: u64,
    pub keys_expired: u64,
    /// Keys of empty collections, skipped as Redis skips them.
    pub empty_skipped: u64,
    pub aux: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Reads a whole RDB file: checks its checksum (the last 8 bytes; 0 means
/// none was written) before anything is loaded, then hands each live key
/// to `sink`, whose error (a duplicate key, say) stops the load. Keys already expired at `now_ms` are counted and dropped,
/// as a Redis master does. `dbnum` bounds SELECTDB. Each function
/// library's source goes to `library` when it is read (a Redis file holds
/// them before its keys; the persistence crate knows no scripting); its
/// error stops the load too.
pub fn load(
    data: &[u8],
    limits: &Limits,
    dbnum: usize,
    now_ms: u64,
    mut sink: impl FnMut(Loaded<'_>) -> Result<()>,
    mut library: impl FnMut(&[u8]) -> Result<()>,
) -> Result<LoadStats> {
    let magic = data.get(..9).ok_or(Error::NotRdb)?;
    if &magic[..5] != b"REDIS" || !magic[5..].iter().all(u8::is_ascii_digit) {
        return Err(Error::NotRdb);
    }
    let version: u32 = std::str::from_utf8(&magic[5..])
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(Error::NotRdb)?;
    if version == 0 || version > u32::from(RDB_VERSION_MAX) {
        return Err(Error::Version(version));
    }
    let mut stats = LoadStats {
        version,
        ..LoadStats::default()
    };
    // The body ends with EOF; RDB 5 and later add the checksum after it.
    let body = if version >= 5 {
        let at = data
            .len()
            .checked_sub(8)
            .filter(|&n| n > 9)
            .ok_or(Error::Truncated)?;
        let mut sum = [0u8; 8];
        sum.copy_from_slice(&data[at..]);
        let sum = u64::from_le_bytes(sum);
        if sum != 0 && sum != CRC64.checksum(&data[..at]) {
            return Err(Error::Checksum);
        }
        &data[..at]
    } else {
        data
    };
    let mut r = Reader::new(&body[9..]);
    let mut db = 0usize;
    let mut expire_at = 0u64;
    let mut idle = None;
    let mut freq = None;
    loop {
        let t = r.byte()?;
        match t {
            op::EOF => break,
            op::SELECTDB => {
                let n = r.length()?;
                if n >= dbnum as u64 {
                    return Err(Error::Bad("DB index out of range for --dbnum"));
                }
                db = n as usize;
            }
            op::RESIZEDB => {
                r.length()?;
                r.length()?;
            }
            op::AUX => {
                let k = r.string()?.into_owned();
                let v = r.string()?.into_owned();
                stats.aux.push((k, v));
            }
            op::EXPIRETIME_MS => expire_at = r.u64_le()?,
            op::EXPIRETIME => expire_at = u64::from(r.u32_le()?) * 1000,
            op::IDLE => idle = Some(r.length()?),
            op::FREQ => freq = Some(r.byte()?),
            op::FUNCTION2 => library(&r.string()?)?,
            op::FUNCTION_PRE_GA => return Err(Error::Unsupported("pre-release function")),
            op::MODULE_AUX => {
                let id = r.length()?;
                return Err(Error::Module(codec::module_type_name(id)));
            }
            _ => {
                let key = r.string()?;
                match codec::read_value(t, &mut r, limits) {
                    Ok(value) => {
                        if expire_at != 0 && now_ms > expire_at {
                            stats.keys_expired += 1;
                        } else {
                            stats.keys_loaded += 1;
                            sink(Loaded {
                                db,
                                key: &key,
                                value,
                                expire_at,
                                idle,
                                freq,
                            })?;
                        }
                    }
                    Err(Error::EmptyKey) => stats.empty_skipped += 1,
                    Err(e) => return Err(e),
                }
                expire_at = 0;
                idle = None;
                freq = None;
            }
        }
    }
    if version >= 5 && r.remaining() != 0 {
        return Err(Error::Bad("data between EOF and the checksum"));
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_round_trips_with_expiry_and_dbs() {
        let mut w = FileWriter::new(
            Vec::new(),
            Limits::default(),
            &[("redis-ver", "7.0.15".into())],
        )
        .unwrap();
        w.select_db(0, Some((1, 0))).unwrap();
        w.entry(&Entry::new(b"a", Value::Int(1), 0)).unwrap();
        w.select_db(3, None).unwrap();
        w.entry(&Entry::new(b"b", Value::from_bytes(b"x"), u64::MAX / 2))
            .unwrap();
        w.entry(&Entry::new(b"gone", Value::from_bytes(b"x"), 5))
            .unwrap();
        let file = w.finish().unwrap();
        let mut got = Vec::new();
        let stats = load(
            &file,
            &Limits::default(),
            16,
            1000,
            |l| {
                got.push((l.db, l.key.to_vec(), l.value, l.expire_at));
                Ok(())
            },
            |_| Ok(()),
        )
        .unwrap();
        assert_eq!(stats.keys_loaded, 2);
        assert_eq!(stats.keys_expired, 1);
        assert_eq!(
            got[1],
            (3, b"b".to_vec(), Value::from_bytes(b"x"), u64::MAX / 2)
        );
        let mut bad = file.clone();
        let n = bad.len();
        bad[n - 1] ^= 0xFF;
        assert!(matches!(
            load(&bad, &Limits::default(), 16, 0, |_| Ok(()), |_| Ok(())),
            Err(Error::Checksum)
        ));
        for cut in 0..file.len() - 1 {
            assert!(load(
                &file[..cut],
                &Limits::default(),
                16,
                0,
                |_| Ok(()),
                |_| Ok(())
            )
            .is_err());
        }
        assert!(load(&file, &Limits::default(), 2, 0, |_| Ok(()), |_| Ok(())).is_err());
    }
}
