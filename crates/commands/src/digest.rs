//! DEBUG DIGEST and DEBUG DIGEST-VALUE: Redis 7.0's dataset digest (SHA-1
//! based; order-independent across keys and set members, ordered within
//! lists, hashes' pairs and streams), so a master and its replica can be
//! compared, as Redis's replication tests do.

use crate::args::eq;
use crate::ctx::Ctx;
use crate::error::CmdResult;
use damselfly_core::stream::StreamId;
use damselfly_protocol::Args;
use damselfly_storage::{Entry, ValueRef};

type Digest = [u8; 20];

/// Xors SHA-1(`data`) into `d`.
fn xor(d: &mut Digest, data: &[u8]) {
    let h = sha1_smol::Sha1::from(data).digest().bytes();
    for (a, b) in d.iter_mut().zip(h) {
        *a ^= b;
    }
}

/// Xors `data` in, then replaces `d` with its own SHA-1 (order matters).
fn mix(d: &mut Digest, data: &[u8]) {
    xor(d, data);
    *d = sha1_smol::Sha1::from(&d[..]).digest().bytes();
}

/// `%.17g`, as Redis prints a sorted set score into the digest.
fn g17(score: f64) -> Vec<u8> {
    let mut buf = [0u8; 64];
    // SAFETY: `buf` is writable for its full length, which snprintf is
    // told; the format takes exactly one double.
    let n = unsafe { libc::snprintf(buf.as_mut_ptr().cast(), buf.len(), c"%.17g".as_ptr(), score) };
    buf[..(n.max(0) as usize).min(buf.len())].to_vec()
}

/// Mixes one value into `d`: its type, its contents, and whether the key
/// expires (Redis's xorObjectDigest).
fn object_digest(d: &mut Digest, e: &Entry) {
    let v = e.value();
    let ty: u32 = match v {
        ValueRef::Int(_) | ValueRef::Str(_) | ValueRef::Raw(_) => 0,
        ValueRef::List(_) => 1,
        ValueRef::Set(_) => 2,
        ValueRef::ZSet(_) => 3,
        ValueRef::Hash(_) => 4,
        ValueRef::Stream(_) => 6,
    };
    mix(d, &ty.to_be_bytes());
    match v {
        ValueRef::Int(_) | ValueRef::Str(_) | ValueRef::Raw(_) => mix(d, &v.string_bytes()),
        ValueRef::List(l) => {
            for item in l.iter() {
                mix(d, item);
            }
        }
        ValueRef::Set(s) => {
            for m in s.iter() {
                xor(d, &m.to_vec());
            }
        }
        ValueRef::ZSet(z) => z.range(0, z.len(), false, |m, score| {
            let mut e = [0u8; 20];
            mix(&mut e, m);
            mix(&mut e, &g17(score));
            xor(d, &e);
        }),
        ValueRef::Hash(h) => {
            for (f, val) in h.iter() {
                let mut e = [0u8; 20];
                mix(&mut e, f);
                mix(&mut e, val);
                xor(d, &e);
            }
        }
        ValueRef::Stream(s) => {
            for entry in s.range(StreamId::MIN, StreamId::MAX, false, 0) {
                let id = format!("{}.{}", entry.id.ms, entry.id.seq);
                mix(d, id.as_bytes());
                for f in &entry.fields {
                    mix(d, f);
                }
            }
        }
    }
    if e.expire_at() != 0 {
        xor(d, b"!!expire!!");
    }
}

/// One key's contribution: its name, then its value.
fn key_digest(e: &Entry) -> Digest {
    let mut d = [0u8; 20];
    mix(&mut d, e.key());
    object_digest(&mut d, e);
    d
}

fn hex(d: &Digest) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// DEBUG DIGEST / DIGEST-VALUE key...; None for other subcommands.
pub(crate) fn run(ctx: &mut Ctx, sub: &[u8], args: &Args) -> Option<CmdResult> {
    if eq(sub, "digest") && args.len() == 2 {
        let dbnum = ctx.server.keyspace.dbnum();
        let mut per_db = vec![([0u8; 20], false); dbnum];
        ctx.each_shard(|s| {
            for (db, d) in s.dbs.iter().enumerate() {
                for e in d.table.iter() {
                    // Each key's digest goes in hashed again (xorDigest).
                    xor(&mut per_db[db].0, &key_digest(e));
                    per_db[db].1 = true;
                }
            }
        });
        let mut total = [0u8; 20];
        for (db, (keys, any)) in per_db.iter().enumerate() {
            if !any {
                continue;
            }
            mix(&mut total, &(db as u32).to_be_bytes());
            for (a, b) in total.iter_mut().zip(keys) {
                *a ^= b;
            }
        }
        ctx.reply.simple(hex(&total).as_bytes());
        return Some(Ok(()));
    }
    if eq(sub, "digest-value") {
        let db = ctx.db();
        let now = ctx.now;
        let keys: Vec<Vec<u8>> = args.iter().skip(2).map(<[u8]>::to_vec).collect();
        let mut out = Vec::with_capacity(keys.len());
        for k in &keys {
            let i = ctx.server.keyspace.shard_of(k);
            let mut d = [0u8; 20];
            ctx.with_shard(i, |s| {
                if let Some(e) = s.get_quiet(db, k, now) {
                    object_digest(&mut d, e);
                }
            });
            out.push(hex(&d));
        }
        ctx.reply.array(out.len());
        for h in out {
            ctx.reply.simple(h.as_bytes());
        }
        return Some(Ok(()));
    }
    None
}
